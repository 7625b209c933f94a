"""Writes the C source of the cffi extension ``tinymobile._native`` (from csrc/build_ffi.py)
without compiling it, so a cross compiler can build it for another architecture.

Usage: python tests/arm/emit_ffi.py OUT.c
"""
import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    ffi = runpy.run_path(os.path.join(ROOT, "csrc", "build_ffi.py"))["ffi"]
    ffi.emit_c_code(sys.argv[1])
