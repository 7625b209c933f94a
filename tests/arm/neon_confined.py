"""Checks that a 32-bit ARM build has NEON instructions only in its NEON kernels (`make test-arm`).

Usage: python tests/arm/neon_confined.py OBJDUMP CSRC FILE [FILE...]

Disassembles FILE (the armv7 extension, or a library of ARM-state objects) and finds every
function that holds a NEON instruction: in ARM state, Advanced SIMD data processing is encoded
0xF2xxxxxx / 0xF3xxxxxx and Advanced SIMD element and structure loads and stores 0xF4 with bit
20 clear (ARMv6 has no other instructions there; PLD/PLI are 0xF5/0xF7 and 0xF4 with bit 20
set). Only the functions defined between TM_NEON_BEGIN and TM_NEON_END in the C files under CSRC
(compiled for NEON, run only where the CPU has it), and the compiler's clones of them, may hold
them: anything else, dispatch and the scalar kernels included, must run on an ARMv6 Pi 1 / Zero.
Fails too when no NEON instruction is found at all (the check would be blind). The core <-> NEON
register moves (VDUP, VMOV scalar) share their encoding space with VFP and are not told apart.
"""
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+([0-9a-f]{8})\s+(\S+)")


def is_neon(word: int) -> bool:
    top = word >> 24
    return top in (0xF2, 0xF3) or (top == 0xF4 and not word & (1 << 20))


DEFINITION = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\([^;]*$", re.M)


def neon_region_functions(csrc: str) -> set:
    """Names of the functions defined between TM_NEON_BEGIN and TM_NEON_END in CSRC's C files."""
    names = set()
    for path in sorted(Path(csrc).rglob("*.c")):
        text = path.read_text(encoding="utf-8")
        for begin in re.finditer(r"^TM_NEON_BEGIN$", text, re.M):
            end = text.find("\nTM_NEON_END", begin.end())
            region = text[begin.end():end if end >= 0 else len(text)]
            names.update(m.group(1) for m in DEFINITION.finditer(region)
                         if m.group(1) not in ("if", "for", "while", "switch", "return", "sizeof"))
    return names


def neon_by_function(objdump: str, path: str) -> Counter:
    out = subprocess.run([objdump, "-d", path],
                         check=True, capture_output=True, text=True).stdout
    found, function = Counter(), "?"
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            function = m.group(1)
            continue
        m = INSTRUCTION.match(line)
        if m and not m.group(2).startswith(".") and is_neon(int(m.group(1), 16)):
            found[function] += 1
    return found


def main(argv) -> int:
    if len(argv) < 4:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    objdump, allowed, status = argv[1], neon_region_functions(argv[2]), 0
    for path in argv[3:]:
        found = neon_by_function(objdump, path)
        kernels = {f: n for f, n in found.items() if f.split(".")[0] in allowed}
        stray = {f: n for f, n in found.items() if f not in kernels}
        print(f"{path}: NEON instructions in {len(kernels)} of the {len(allowed)} functions of the "
              f"NEON regions ({sum(kernels.values())} instructions: {', '.join(sorted(kernels))})")
        if stray:
            status = 1
            for f, n in sorted(stray.items()):
                print(f"FAIL {path}: {n} NEON instructions in {f}, outside the NEON kernels")
        if not kernels:
            status = 1
            print(f"FAIL {path}: no NEON instruction found at all (is it an ARM-state 32-bit build?)")
    print(f"neon-confined: {'ok' if status == 0 else 'FAILED'}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
