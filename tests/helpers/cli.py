"""Running the command line inside a test: the exit code and what it printed."""
from __future__ import annotations

from tinymobile import cli


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``tinymobile argv`` (arguments converted with str)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single ``tinymobile: error: ...`` line of ``err``; fails the test on anything else
    (more lines, a traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("tinymobile: error: ") and "Traceback" not in err
    return lines[0]
