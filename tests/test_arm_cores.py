"""ARM core detection (csrc/arm_cores.c) and TINYMOBILE_CORE: the cpuinfo parser runs on every
machine (it is plain C), on sample /proc/cpuinfo files of the boards it must tell apart; the
kernels it picks are run under qemu by tests/arm/kernel_check.c (both forced)."""
import os
import platform
import struct

import pytest

import tinymobile
from tinymobile import kernels
from tinymobile._native import lib
from tinymobile.errors import TinyMobileError

CPUINFO = os.path.join(os.path.dirname(__file__), "arm", "cpuinfo")


@pytest.mark.parametrize("name, want", [
    ("pi3.txt", lib.TM_CORE_IN_ORDER),             # 4x Cortex-A53 (0xd03)
    ("pi4.txt", lib.TM_CORE_OUT_OF_ORDER),         # 4x Cortex-A72 (0xd08)
    ("pi5.txt", lib.TM_CORE_OUT_OF_ORDER),         # 4x Cortex-A76 (0xd0b)
    ("rk3399.txt", lib.TM_CORE_IN_ORDER),          # big.LITTLE 4x A53 + 2x A72: the in-order one
    ("snapdragon855.txt", lib.TM_CORE_IN_ORDER),   # Kryo 485 silver (Qualcomm 0x805) + gold
    ("x86.txt", lib.TM_CORE_UNKNOWN),              # no CPU part at all
])
def test_cpuinfo_classification(name, want):
    assert lib.tm_arm_core_from_cpuinfo(os.path.join(CPUINFO, name).encode(), 0) == want


def test_missing_cpuinfo_is_unknown(tmp_path):
    assert lib.tm_arm_core_from_cpuinfo(str(tmp_path / "absent").encode(), 0) == lib.TM_CORE_UNKNOWN


def test_big_cores_only_is_out_of_order(tmp_path):
    # the RK3399's two A72s alone (a process pinned to them, as affinity would restrict it)
    text = open(os.path.join(CPUINFO, "rk3399.txt")).read().split("\n\n")
    (tmp_path / "big.txt").write_text("\n\n".join(b for b in text if "0xd08" in b) + "\n")
    assert lib.tm_arm_core_from_cpuinfo(str(tmp_path / "big.txt").encode(), 0) == lib.TM_CORE_OUT_OF_ORDER


@pytest.mark.parametrize("value, want", [("a53", "in-order"), ("a55", "in-order"),
                                         ("in-order", "in-order"), ("a72", "out-of-order"),
                                         ("cortex-a76", "out-of-order")])
def test_core_env(monkeypatch, value, want):
    monkeypatch.setenv("TINYMOBILE_CORE", value)
    if platform.machine().lower() in ("aarch64", "arm64") and struct.calcsize("P") == 8:
        assert kernels.arm_core() == want
    else:  # one schedule on this build: a valid value is accepted and changes nothing
        assert kernels.arm_core() == "out-of-order"
    assert tinymobile.isa() in kernels.ISA_NAMES


def test_invalid_core_env_is_refused(monkeypatch):
    monkeypatch.setenv("TINYMOBILE_CORE", "a9000")
    with pytest.raises(TinyMobileError, match="TINYMOBILE_CORE='a9000'"):
        tinymobile.isa()
    with pytest.raises(TinyMobileError, match="TINYMOBILE_CORE"):
        kernels.kernel_table("scalar")


def test_gemm_kernel_named():
    assert kernels.gemm_kernel("scalar") == "tm_f32_igemm_4x4__scalar"
    assert kernels.gemm_kernel().startswith("tm_f32_igemm_")
