"""NumPy's BLAS on one thread for a while: the head fit's matrix products are small (1000 x 1024
by 10), and OpenBLAS's threads cost more than they give there, ten times more on a busy machine
(measured: 0.3 s single-threaded vs 3-5 s with the default threads for the same fit while other
processes ran). One thread also makes the fit's sums the same on every machine.

Finds the OpenBLAS NumPy loaded (Linux: /proc/self/maps; the scipy-openblas of NumPy's wheels
or a system libopenblas) and calls its ``*_set_num_threads``, as threadpoolctl does; anything
else (Accelerate, MKL, no /proc): a no-op. The thread count is global to the process: NumPy
calls made by other Python threads meanwhile also run on one thread.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Iterator, Optional, Tuple

_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads"))
_lock = threading.Lock()
_api: Optional[Tuple] = None
_searched = False


def _find() -> Optional[Tuple]:
    import numpy  # noqa: F401  (loads the BLAS)
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                return getattr(lib, set_name), getattr(lib, get_name)
    return None


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the body with NumPy's OpenBLAS on one thread (restored afterwards)."""
    global _api, _searched
    with _lock:
        if not _searched:
            _api, _searched = _find(), True
    if _api is None:
        yield
        return
    set_threads, get_threads = _api
    with _lock:
        old = int(get_threads())
        set_threads(1)
    try:
        yield
    finally:
        with _lock:
            set_threads(old)
