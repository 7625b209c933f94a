"""A second build of the C kernels with AddressSanitizer + UndefinedBehaviorSanitizer (gcc), for
``make test-sanitize``; the normal build (csrc/build_ffi.py) is untouched.

    python csrc/build_sanitize.py build/sanitize     # prints the path of the built module

The module keeps the name ``tinymobile._native`` (its init function must match), and the tests
load it in place of the normal one when TINYMOBILE_NATIVE_MODULE names its path (tests/conftest.py).
Python is not built with ASan, so the run needs LD_PRELOAD=$(gcc -print-file-name=libasan.so)
and ASAN_OPTIONS=detect_leaks=0 (the interpreter's own allocations look like leaks to ASan).
"""
import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from build_ffi import c_sources, cdef_from_header, compile_args  # noqa: E402

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def build(out_dir: str) -> str:
    root = os.path.dirname(HERE)
    ffi = FFI()
    ffi.cdef(cdef_from_header(os.path.join(HERE, "tinymobile.h")))
    ffi.set_source(
        "tinymobile._native",
        '#include "tinymobile.h"',
        sources=[os.path.join(root, s) for s in c_sources()],
        include_dirs=[HERE],
        # -O1 keeps the vector code paths (intrinsics) while giving usable reports.
        # -fno-wrapv: Python's CFLAGS carry -fwrapv, which would hide signed overflow from UBSan.
        # The target flags of the normal build (NEON on 32-bit ARM), with -O1 instead of -O3.
        extra_compile_args=[a for a in compile_args() if not a.startswith("-O")]
        + ["-O1", "-g", "-fno-strict-aliasing", "-fno-wrapv"] + SANITIZE,
        extra_link_args=SANITIZE,
        libraries=["m", "pthread"],
    )
    os.makedirs(out_dir, exist_ok=True)
    ffi.compile(tmpdir=out_dir, verbose=False)
    built = glob.glob(os.path.join(out_dir, "tinymobile", "_native*.so"))
    if len(built) != 1:
        raise SystemExit(f"expected one built module under {out_dir}, found {built}")
    return os.path.abspath(built[0])


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "sanitize")))
