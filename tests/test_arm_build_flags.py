"""csrc/build_ffi.py picks NEON flags for every 32-bit ARM Python a Raspberry Pi runs, and none
elsewhere (the emulated ARM runs of `make test-arm` check that the result really runs NEON)."""
import runpy
from pathlib import Path

import pytest

compile_args = runpy.run_path(str(Path(__file__).resolve().parents[1] / "csrc" / "build_ffi.py"))["compile_args"]
NEON32 = ["-march=armv7-a", "-mfpu=neon-vfpv4"]


@pytest.mark.parametrize("machine,pointer_bytes", [
    ("armv7l", 4),    # Raspberry Pi OS 32-bit on a 32-bit kernel (Pi 2, 3)
    ("armv8l", 4),    # 32-bit personality on ARMv8
    ("aarch64", 4),   # Raspberry Pi OS 32-bit on a Pi 4/5: 64-bit kernel, 32-bit Python
])
def test_32bit_arm_gets_armv7_neon_with_fma(machine, pointer_bytes):
    assert compile_args(machine, pointer_bytes)[-2:] == NEON32


@pytest.mark.parametrize("machine,pointer_bytes", [
    ("aarch64", 8),   # NEON is baseline on aarch64
    ("armv6l", 4),    # Pi 1 / Zero: no NEON, scalar kernels
    ("x86_64", 8),
])
def test_other_targets_get_no_arm_flags(machine, pointer_bytes):
    args = compile_args(machine, pointer_bytes)
    assert not any(a.startswith(("-march", "-mfpu")) for a in args)
