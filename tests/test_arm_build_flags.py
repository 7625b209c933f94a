"""One 32-bit ARM build runs on every Raspberry Pi: csrc/build_ffi.py gives no target flags (a
wheel piwheels builds on an ARMv7 Pi is served to ARMv6 Pi 1 / Zero too), and every C file with
NEON code that 32-bit ARM compiles asks for NEON itself (TM_NEON_BEGIN, csrc/internal.h) before
its first NEON type, intrinsic or NEON include; dispatch.c picks it only on CPUs with NEON and
FMA. `make test-arm` runs the result on emulated ARMv6 / ARMv7 CPUs with and without NEON and
disassembles it (tests/arm/neon_confined.py)."""
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
compile_args = runpy.run_path(str(ROOT / "csrc" / "build_ffi.py"))["compile_args"]
#: a NEON vector type, arm_neon.h, or the quantized helpers whose NEON half needs NEON on
NEON_USE = re.compile(r"\b(?:float|u?int|poly)(?:8|16|32|64)x\d+(?:x\d)?_t\b|<arm_neon\.h>"
                      r"|\bv(?:ld|st)[1-4]q?_|\bv(?:add|mul|fma|dup)q?_n?_?[suf]\d")
AARCH64_ONLY = re.compile(r"^#if.*(?:__aarch64__|TM_HAVE_NEONDOT)", re.M)


def test_no_target_flags_on_any_machine():
    args = compile_args()
    assert not any(a.startswith(("-march", "-mfpu", "-mcpu", "-mtune", "-mfloat-abi")) for a in args), args


def neon_sources():
    files = sorted((ROOT / "csrc").glob("*.c")) + sorted((ROOT / "csrc").glob("*/*.c"))
    out = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        first_if = re.search(r"^#if.*$", text, re.M)
        if NEON_USE.search(text) and not (first_if and AARCH64_ONLY.match(first_if.group(0))):
            out.append(f)
    return out


def test_the_check_finds_the_neon_sources():
    names = {f.name for f in neon_sources()}
    assert {"tm_f32_avgpool__neon.c", "tm_qu8_gemm_4x8__neon.c", "fma_peak_probe.c"} <= names, names
    assert not any("scalar" in n or "avx" in n for n in names), names


@pytest.mark.parametrize("path", neon_sources(), ids=lambda p: p.name)
def test_neon_code_compiled_for_32_bit_arm_opens_with_tm_neon_begin(path):
    text = path.read_text(encoding="utf-8")
    begin = text.find("TM_NEON_BEGIN")
    first_use = min(m.start() for m in (NEON_USE.search(text), re.search(r'#include "(?:\.\./)?qu8_requant\.h"', text)) if m)
    assert 0 <= begin < first_use, f"{path.name}: NEON used before TM_NEON_BEGIN (or no TM_NEON_BEGIN)"
    assert text.find("TM_NEON_END", begin) > begin, f"{path.name}: TM_NEON_BEGIN without TM_NEON_END"
