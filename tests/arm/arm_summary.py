"""pytest plugin for the emulated runs: the very last line of output is
"LABEL: N passed, N failed" with LABEL from TM_ARM_LABEL (e.g. aarch64-python), so every run of
`make test-arm` names its architecture and closes the same way."""
import os

_counts = {}


def pytest_terminal_summary(terminalreporter):
    stats = terminalreporter.stats
    _counts["passed"] = len(stats.get("passed", []))
    _counts["failed"] = len(stats.get("failed", [])) + len(stats.get("error", []))


def pytest_unconfigure(config):
    if _counts:
        label = os.environ.get("TM_ARM_LABEL", "arm-python")
        print(f"{label}: {_counts['passed']} passed, {_counts['failed']} failed", flush=True)
