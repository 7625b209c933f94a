"""cffi (API mode) build of the C kernels into ``tinymobile._native``.

The declarations are read from csrc/tinymobile.h (between the TM_CDEF markers), so a prototype
that disagrees with its definition is a compile error.
"""
import glob
import os
import platform
import re
import struct

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def cdef_from_header(path: str) -> str:
    text = open(path, encoding="utf-8").read()
    body = text.split("/* TM_CDEF_BEGIN */", 1)[1].split("/* TM_CDEF_END */", 1)[0]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))


def c_sources() -> list:
    """Every kernel and operator source, relative to the project root (setuptools wants that)."""
    files = sorted(glob.glob(os.path.join(HERE, "*.c")) + glob.glob(os.path.join(HERE, "*", "*.c")))
    return [os.path.relpath(f, os.path.dirname(HERE)) for f in files]


def compile_args(machine: str = None, pointer_bytes: int = None) -> list:
    """Compiler flags for a target, by default this interpreter's: ``machine`` as
    platform.machine() reports it, ``pointer_bytes`` the Python's pointer size.

    32-bit ARM gets NEON with FMA (ARMv7-A, neon-vfpv4): Raspberry Pi OS 32-bit's compiler
    defaults to ARMv6 (no NEON even with -mfpu), and on a Pi 4/5 its 64-bit kernel reports
    "aarch64" to a 32-bit Python. The float ABI stays the compiler's default (hard on armhf).
    ARMv6 (Pi 1, Zero) has no NEON and keeps the defaults: the scalar kernels."""
    args = ["-O3", "-fno-strict-aliasing"]
    machine = (machine or platform.machine()).lower()
    pointer_bytes = pointer_bytes or struct.calcsize("P")
    arm32 = machine.startswith(("armv7", "armv8")) or (machine in ("aarch64", "arm64") and pointer_bytes == 4)
    if arm32:
        args += ["-march=armv7-a", "-mfpu=neon-vfpv4"]
    return args


ffi = FFI()
ffi.cdef(cdef_from_header(os.path.join(HERE, "tinymobile.h")))
ffi.set_source(
    "tinymobile._native",
    '#include "tinymobile.h"',
    sources=c_sources(),
    include_dirs=[os.path.relpath(HERE, os.path.dirname(HERE))],
    extra_compile_args=compile_args(),
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
