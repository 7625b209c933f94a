"""The compiled C kernels: ISA selection, thread pools and pointer helpers.

``TINYMOBILE_ISA=scalar|avx2|avx512|avxvnni|avx512vnni|neon`` forces the default ISA (tests run
every ISA explicitly);
``TINYMOBILE_CORE=a53|a55|in-order|a72|a76|out-of-order`` the ARM core the aarch64 float GEMM is
scheduled for (by default read from /proc/cpuinfo; see :func:`arm_core`).
"""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np

from ._native import ffi, lib
from .errors import TinyMobileError

#: ISA names by index (csrc/tinymobile.h TM_ISA_*), read from the C side (tm_isa_name).
ISA_NAMES = tuple(ffi.string(lib.tm_isa_name(i)).decode() for i in range(lib.TM_ISA_COUNT))


def available_isas() -> List[str]:
    """ISAs that this build and this CPU can run, scalar first."""
    return [name for i, name in enumerate(ISA_NAMES) if lib.tm_f32_kernels_for(i) != ffi.NULL]


CORE_VALUES = ("a53", "a55", "cortex-a53", "cortex-a55", "in-order",
               "a72", "a76", "cortex-a72", "cortex-a76", "out-of-order")


def arm_core() -> str:
    """``"in-order"`` or ``"out-of-order"``: the kind of ARM core the aarch64 float GEMM is
    scheduled for in this process (Cortex-A53/A55: Pi 3, Zero 2 W; Cortex-A72/A76: Pi 4, Pi 5).
    TINYMOBILE_CORE forces it; otherwise, on aarch64, the CPU parts in /proc/cpuinfo of the cores
    this process may run on decide (in-order if any is). Elsewhere there is one schedule and the
    answer is ``"out-of-order"``."""
    core = lib.tm_arm_core()
    if core < 0:
        raise TinyMobileError(f"TINYMOBILE_CORE={os.environ.get('TINYMOBILE_CORE')!r} is not one "
                              f"of {', '.join(CORE_VALUES)}")
    return "in-order" if core == lib.TM_CORE_IN_ORDER else "out-of-order"


def gemm_kernel(isa: Optional[str] = None) -> str:
    """The name of the float GEMM ukernel the table of ``isa`` (default: :func:`default_isa`) uses,
    e.g. ``tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53``."""
    return ffi.string(kernel_table(isa).igemm_name).decode()


def default_isa() -> str:
    """The ISA a model uses unless told otherwise: the best available one, or TINYMOBILE_ISA."""
    arm_core()  # an invalid TINYMOBILE_CORE is refused with its own message
    isa = lib.tm_default_isa()
    if isa < 0:
        raise TinyMobileError(f"TINYMOBILE_ISA={os.environ.get('TINYMOBILE_ISA')!r} is not one of "
                              f"the ISAs this machine runs: {available_isas()}")
    return ISA_NAMES[isa]


def kernel_table(isa: Optional[str] = None, lookup=None):
    """The C kernel table of ``isa`` (default: :func:`default_isa`): ``tm_f32_kernels*``, or what
    ``lookup`` (another ``tm_*_kernels_for``) returns."""
    name = default_isa() if isa is None else isa
    arm_core()
    if name not in ISA_NAMES:
        raise TinyMobileError(f"unknown ISA {name!r}; expected one of {ISA_NAMES}")
    table = (lookup or lib.tm_f32_kernels_for)(ISA_NAMES.index(name))
    if table == ffi.NULL:
        raise TinyMobileError(f"ISA {name!r} is not available here; available: {available_isas()}")
    return table


def aligned_empty(size: int, dtype) -> np.ndarray:
    """An uninitialised 1-d array of ``size`` elements starting on a 64-byte boundary (packed
    weights: vector loads never straddle cache lines needlessly)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(size * itemsize + 64, np.uint8)
    offset = -raw.ctypes.data % 64
    return raw[offset:offset + size * itemsize].view(dtype)


def default_threads() -> int:
    """TINYMOBILE_NUM_THREADS if set, else the number of cores this process may use."""
    env = os.environ.get("TINYMOBILE_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise TinyMobileError(f"TINYMOBILE_NUM_THREADS={env!r} is not an integer") from None
        if n < 1:
            raise TinyMobileError(f"TINYMOBILE_NUM_THREADS={env!r} must be at least 1")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def create_pool(threads: int):
    """A C thread pool of ``threads`` threads (the caller included), or NULL for one thread."""
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise TinyMobileError(f"threads must be a positive integer, got {threads!r}")
    if threads == 1:
        return ffi.NULL
    pool = lib.tm_pool_create(int(threads))
    if pool == ffi.NULL:
        raise TinyMobileError(f"could not start a pool of {threads} threads")
    return ffi.gc(pool, lib.tm_pool_destroy)


def fptr(a: np.ndarray):
    """A ``float[]`` view of a C-contiguous float32 array (no copy), usable wherever C takes a
    ``float*``. It keeps ``a`` alive, so a temporary array stays valid while the view is held."""
    return ffi.from_buffer("float[]", a)


def fma_peak_gflops(isa: Optional[str] = None, seconds: float = 0.2) -> float:
    """GFLOP/s one core reaches on a pure FMA loop (0 for the scalar ISA)."""
    name = default_isa() if isa is None else isa
    return float(lib.tm_fma_peak_gflops(ISA_NAMES.index(name), seconds))
