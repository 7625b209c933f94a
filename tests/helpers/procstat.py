"""Process figures from /proc/self/status (Linux): resident memory and OS thread count (which,
unlike threading.active_count(), includes the C thread pools' threads)."""
import gc


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_bytes() -> int:
    gc.collect()
    return _status("VmRSS") * 1024


def os_threads() -> int:
    return _status("Threads")
