"""Writes the C source of the cffi extension ``tinymobile._native`` (from csrc/build_ffi.py)
without compiling it, and the compiler flags build_ffi.py uses, so that a cross compiler can
build the extension for another architecture.

Usage: python tests/arm/emit_ffi.py OUT.c
  writes OUT.c and OUT.flags (one line).
"""
import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-2])
    out = sys.argv[1]
    build = runpy.run_path(os.path.join(ROOT, "csrc", "build_ffi.py"))
    build["ffi"].emit_c_code(out)
    with open(os.path.splitext(out)[0] + ".flags", "w", encoding="utf-8") as f:
        f.write(" ".join(build["compile_args"]()) + "\n")
