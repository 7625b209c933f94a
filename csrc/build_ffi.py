"""cffi (API mode) build of the C kernels into ``tinymobile._native``.

The declarations are read from csrc/tinymobile.h (between the TM_CDEF markers), so a prototype
that disagrees with its definition is a compile error.
"""
import glob
import os
import re

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


def compile_args() -> list:
    """Compiler flags of the extension: no target flags on any machine, the compiler's defaults.

    Kernels for an ISA beyond the defaults carry their own target (x86: function attributes;
    32-bit ARM: the NEON files' TM_NEON_BEGIN pragma; aarch64 udot: a pragma) and run only where
    dispatch.c finds the CPU has it. So a 32-bit ARM wheel built on a Pi 2/3/4 (piwheels builds on
    ARMv7 and serves the same wheel to ARMv6) still runs on a Pi 1 / Zero, on the scalar kernels:
    Raspberry Pi OS 32-bit's compiler defaults to ARMv6 + VFP."""
    return ["-O3", "-fno-strict-aliasing"]


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
