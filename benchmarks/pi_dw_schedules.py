"""Candidate schedules for the in-order aarch64 depthwise 3x3 loop, put through llvm-mca.

    python -m benchmarks.pi_dw_schedules [--quick]       (make pi-model reports it too)

Issue #15 asks for >= 0.6 of the FMA peak on llvm-mca's cortex-a53 model for the depthwise row.
The shipped in-order kernel (csrc/f32-dwconv/tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53.c)
computes one output row per call. This module generates the loop of a kernel that would compute
R output rows per call, each input row vector loaded once and used by the FMAs of every output
row under it (stride 1: R + 2 input rows for R output rows, stride 2: 2 R + 1), for R = 1 .. 16,
strides 1 and 2, every pixel group that fits the 32 vector registers and two policies each for
the taps and the clamp bounds, and reports the best share per (stride, R) on the cortex-a53 and
cortex-a72 models. Nothing here is compiled into the package: it measures, before anyone writes
such a kernel, what the model would give it.

The loop is the shipped kernel's: per iteration one packed 8-channel weight block, as two
4-channel halves; per half and input row one burst of loads (the row's taps unless held, its
columns), then the row's FMAs back to back (tap by tap across the group and the output rows the
row feeds, so an accumulator is touched once every `rows fed x pixels` FMAs); an output row is
clamped and stored in the burst after its last input row and its accumulators take the bias of
the row that starts there (so at most 3 rows at stride 1, 2 at stride 2, hold accumulators at a
time, whatever R is). Bursts, because on the A53 model anything issued behind an FMA waits for
it to write back (10 cycles), so each switch from FMAs to anything else costs about 6 cycles.

Every candidate is checked before it is timed (`check`): each output vector is its bias, then
its 9 FMAs in row-major tap order (ky outer, kx inner: the order of every tinymobile float
depthwise kernel, so a kernel built from the schedule gives the same bits) with the right input
row, column and tap in the registers named, then max and min with the bounds, then one store;
at most 32 vector registers; and only instruction forms a real Cortex-A53 runs at the rate the
model charges (ldr / str q, ld1r, fmla / fmax / fmin .4s, integer adds; no ld2 / ld3 / ld4
structure loads, which the model prices far below what an A53 takes).

What bounds them on the model: it issues one vector instruction a cycle (no two of loads,
stores, FMAs, clamps pair; only integer arithmetic pairs with a load or store), so per 4-channel
output vector its 9 FMAs come with a bias load, two clamps and a store: 13 cycles, 9/13 = 0.69,
before any input load or switch; the input loads (about (P + 2) / P per output row at stride 1)
and one switch per input row bring it down from there. More output rows per call cut the input
loads per output only where the register file still holds a wide pixel group: 3 rows of
accumulators, a row of inputs and 9 taps leave room for 4-5 pixels.
"""
import argparse
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TRIPLE = "aarch64-linux-gnu"
MODELS = ("cortex-a53", "cortex-a72")
ALLOWED = {"ldr", "str", "ld1r", "fmla", "fmax", "fmin", "add", "subs", "b.ne"}

# Integer registers of the rendered loop (only their dependencies matter to llvm-mca):
#   x19 input (this 8-channel block, row 0, column 0), x18 output (row 0, pixel 0), x20 weights,
#   x21 / x22 min / max, x8 loop counter; x10-x12 1-3 channel strides, x13 4 channel strides,
#   x14 an input row, x5 an output row; x0 / x1 input row bases, x9 / x15 input column temps,
#   x2 / x3 output row bases, x6 / x7 output column temps.
_COL = ("", ", x10", ", x11", ", x12")


@dataclass(frozen=True)
class Candidate:
    """One schedule: `rows` output rows per call, `pixels` output pixels per group (4 channels
    each); taps "held" (a half's 9 taps loaded once, 9 registers) or "per-row" (each input row's
    3 taps per output row it feeds, loaded in its burst); bounds "held" (two registers for the
    whole loop) or "reloaded" (ld1r into two free input registers before each clamp)."""
    stride: int
    rows: int
    pixels: int
    taps: str = "held"
    bounds: str = "held"

    @property
    def input_rows(self) -> int:
        return (self.rows - 1) * self.stride + 3

    @property
    def columns(self) -> int:
        return (self.pixels - 1) * self.stride + 3

    @property
    def live_rows(self) -> int:
        """Output rows whose accumulators are live at once (rows r with 0 <= iy - r s <= 2)."""
        return min(self.rows, 3 if self.stride == 1 else 2)

    def label(self) -> str:
        return (f"stride {self.stride}, {self.rows} rows x {self.pixels} pixels, taps {self.taps}, "
                f"bounds {self.bounds}")


def fed(c: Candidate, iy: int) -> List[Tuple[int, int]]:
    """(output row, ky) of every output row that input row iy feeds, in row order."""
    return [(r, iy - c.stride * r) for r in range(c.rows) if 0 <= iy - c.stride * r <= 2]


def registers(c: Candidate) -> Dict[str, int]:
    """First vector register of each role and the number used."""
    acc = 0
    inp = acc + c.live_rows * c.pixels
    tap = inp + c.columns
    ntap = 9 if c.taps == "held" else 3 * max(len(fed(c, iy)) for iy in range(c.input_rows))
    bound = tap + ntap
    used = bound + (2 if c.bounds == "held" else 0)
    return {"acc": acc, "in": inp, "tap": tap, "bound": bound, "used": used}


def ops(c: Candidate) -> Optional[List[tuple]]:
    """The semantic operations of one loop iteration (two 4-channel halves), in program order;
    None if the candidate does not fit 32 vector registers. Each op: ("in", reg, iy, col),
    ("tap", reg, k), ("bias", reg), ("bound", reg, "min"|"max"), ("fma", acc, x, k),
    ("max" | "min", reg, bound_reg), ("st", reg, row, pixel), ("half", h) (what follows reads
    and writes half h's channels), ("int", text) (integer instruction or branch)."""
    reg = registers(c)
    if reg["used"] > 32:
        return None
    P, s = c.pixels, c.stride
    acc = lambda r, j: reg["acc"] + (r % c.live_rows) * P + j
    lo, hi = ((reg["bound"], reg["bound"] + 1) if c.bounds == "held" else (reg["in"], reg["in"] + 1))
    out: List[tuple] = []
    if c.bounds == "held":
        out += [("bound", lo, "min"), ("bound", hi, "max")]
    out.append(("int", "0:"))

    def finish(r: int) -> None:
        if c.bounds != "held":
            out.extend([("bound", lo, "min"), ("bound", hi, "max")])
        out.extend(("max", acc(r, j), lo) for j in range(P))
        out.extend(("min", acc(r, j), hi) for j in range(P))
        for j in range(P):
            out.append(("st", acc(r, j), r, j))
            if j % 4 == 0 and j + 4 < P:  # the next 4 pixels' address, 4 stores ahead
                out.append(("int", f"add x{6 + (j // 4) % 2}, x{2 + r % 2 if j < 4 else 6 + (j // 4 + 1) % 2}, x13"))
        out.append(("int", f"add x{2 + (r + 1) % 2}, x{2 + r % 2}, x5"))  # next output row

    for h in range(2):
        out.append(("half", h))
        out.append(("int", f"add x0, x19, #{16 * h}"))
        out.append(("int", f"add x2, x18, #{16 * h}"))
        for iy in range(c.input_rows):
            if iy >= 3 and (iy - 3) % s == 0 and (iy - 3) // s < c.rows:
                finish((iy - 3) // s)             # the row whose last input row was iy - 1
            for r, ky in fed(c, iy):
                if ky == 0:
                    out.extend(("bias", acc(r, j)) for j in range(P))
            taps: Dict[Tuple[int, int], int] = {}
            if c.taps == "held":
                if iy == 0:
                    out.extend(("tap", reg["tap"] + k, k) for k in range(9))
                for r, ky in fed(c, iy):
                    for kx in range(3):
                        taps[(r, kx)] = reg["tap"] + 3 * ky + kx
            else:
                for slot, (r, ky) in enumerate(fed(c, iy)):
                    for kx in range(3):
                        taps[(r, kx)] = reg["tap"] + 3 * slot + kx
                        out.append(("tap", taps[(r, kx)], 3 * ky + kx))
            base = f"x{iy % 2}"
            for col in range(c.columns):
                out.append(("in", reg["in"] + col, iy, col))
                if col == 0:  # the next input row's base, a burst ahead
                    out.append(("int", f"add x{(iy + 1) % 2}, {base}, x14"))
                if col % 4 == 0 and col + 4 < c.columns:  # the next 4 columns' address
                    src = base if col < 4 else f"x{9 + 6 * ((col // 4 + 1) % 2)}"
                    out.append(("int", f"add x{9 + 6 * ((col // 4) % 2)}, {src}, x13"))
            for kx in range(3):
                for r, ky in fed(c, iy):
                    for j in range(P):
                        out.append(("fma", acc(r, j), reg["in"] + j * s + kx, taps[(r, kx)]))
        finish(c.rows - 1)
    out += [("int", "add x20, x20, #320"), ("int", "add x19, x19, #32"),
            ("int", "add x18, x18, #32"), ("int", "subs x8, x8, #1"), ("int", "b.ne 0b")]
    return out


def render(seq: List[tuple], c: Candidate) -> List[str]:
    """The ops as aarch64 assembly (the loop from its `0:` label to the back branch)."""
    lines: List[str] = []
    h = 0
    lo_hi = {"min": "x21", "max": "x22"}
    for op in seq:
        kind = op[0]
        if kind == "half":
            h = op[1]
        elif kind == "int":
            lines.append(op[1])
        elif kind == "in":
            _, r, iy, col = op
            base = f"x{iy % 2}" if col < 4 else f"x{9 + 6 * ((col // 4 - 1) % 2)}"
            lines.append(f"ldr q{r}, [{base}{_COL[col % 4]}]")
        elif kind == "tap":
            lines.append(f"ldr q{op[1]}, [x20, #{32 + 32 * op[2] + 16 * h}]")
        elif kind == "bias":
            lines.append(f"ldr q{op[1]}, [x20, #{16 * h}]")
        elif kind == "bound":
            lines.append(f"ld1r {{v{op[1]}.4s}}, [{lo_hi[op[2]]}]")
        elif kind == "fma":
            lines.append(f"fmla v{op[1]}.4s, v{op[2]}.4s, v{op[3]}.4s")
        elif kind in ("max", "min"):
            lines.append(f"f{kind} v{op[1]}.4s, v{op[1]}.4s, v{op[2]}.4s")
        elif kind == "st":
            _, r, row, j = op
            base = f"x{2 + row % 2}" if j < 4 else f"x{6 + (j // 4 - 1) % 2}"
            lines.append(f"str q{r}, [{base}{_COL[j % 4]}]")
    return lines


def check(seq: List[tuple], c: Candidate) -> List[str]:
    """What is wrong with a schedule (empty: nothing): every output vector of both halves is
    stored once, as its bias, then its 9 taps' FMAs in row-major order with the right input
    row, column and tap, then max and min with the bounds; registers within v0..v31."""
    s = c.stride
    content: Dict[int, tuple] = {}
    stored: Dict[Tuple[int, int, int], int] = {}
    errors: List[str] = []
    h = 0
    for i, op in enumerate(seq):
        kind = op[0]
        regs = [x for x in op[1:] if isinstance(x, int)] if kind in ("fma", "max", "min") else (
            [op[1]] if kind in ("in", "tap", "bias", "bound", "st") else [])
        if any(not 0 <= r < 32 for r in regs):
            errors.append(f"op {i}: register out of v0..v31: {op}")
            continue
        if kind == "half":
            h = op[1]
        elif kind == "in":
            content[op[1]] = ("in", h, op[2], op[3])
        elif kind == "tap":
            content[op[1]] = ("tap", h, op[2])
        elif kind == "bias":
            content[op[1]] = ("acc", h, (), ())
        elif kind == "bound":
            content[op[1]] = ("bound", op[2])
        elif kind == "fma":
            a, x, k = content.get(op[1]), content.get(op[2]), content.get(op[3])
            if not (a and a[0] == "acc" and a[1] == h and not a[3] and x and x[0] == "in"
                    and x[1] == h and k and k[0] == "tap" and k[1] == h):
                errors.append(f"op {i}: fma on {a}, {x}, {k}")
                continue
            content[op[1]] = ("acc", h, a[2] + ((x[2], x[3], k[2]),), ())
        elif kind in ("max", "min"):
            a, b = content.get(op[1]), content.get(op[2])
            # fmax with the lower bound, fmin with the upper one
            if not (a and a[0] == "acc" and b == ("bound", "min" if kind == "max" else "max")):
                errors.append(f"op {i}: {kind} of {a} with {b}")
                continue
            content[op[1]] = ("acc", h, a[2], a[3] + (kind,))
        elif kind == "st":
            _, r, row, j = op
            a = content.get(r)
            want = tuple((row * s + ky, j * s + kx, 3 * ky + kx) for ky in range(3) for kx in range(3))
            if not (a and a[0] == "acc" and a[1] == h and a[2] == want and a[3] == ("max", "min")):
                errors.append(f"op {i}: output (half {h}, row {row}, pixel {j}) stored as {a}")
            stored[(h, row, j)] = stored.get((h, row, j), 0) + 1
    for key in ((h, r, j) for h in range(2) for r in range(c.rows) for j in range(c.pixels)):
        if stored.get(key) != 1:
            errors.append(f"output (half, row, pixel) {key} stored {stored.get(key, 0)} times")
    return errors


def loop_lines(c: Candidate) -> Optional[List[str]]:
    """The checked loop of `c` as assembly, or None if it does not fit the registers."""
    seq = ops(c)
    if seq is None:
        return None
    errors = check(seq, c)
    if errors:
        raise AssertionError(f"{c.label()}: " + "; ".join(errors[:3]))
    lines = render(seq, c)
    lines = lines[lines.index("0:"):]  # the bounds' loads ahead of the loop are not in it
    bad = {x.split()[0] for x in lines[1:]} - ALLOWED
    if bad:
        raise AssertionError(f"{c.label()}: instruction forms outside the allowed set: {bad}")
    return lines


def candidates(stride: int, rows: int) -> List[Candidate]:
    out = []
    for p in range(1, 17):
        for taps in ("held", "per-row"):
            for bounds in ("held", "reloaded"):
                c = Candidate(stride, rows, p, taps, bounds)
                if registers(c)["used"] <= 32:
                    out.append(c)
    return out


def measure(c: Candidate, cpu: str) -> Optional[float]:
    """llvm-mca cycles per loop iteration of `c` on `cpu`."""
    from benchmarks.pi_model import mca_cycles
    lines = loop_lines(c)
    body = lines[1:]  # mca_source gives the back branch a named label
    return mca_cycles(body, TRIPLE, cpu, iterations=100)


ROWS = {1: (1, 2, 3, 4, 8, 16), 2: (1, 2, 3, 4, 8, 16)}


def survey(rows: Optional[Dict[int, Tuple[int, ...]]] = None) -> dict:
    """The best candidate per (stride, rows) on the cortex-a53 model (its cortex-a72 share
    beside it), and the FMA peak cycles used for the shares."""
    from benchmarks.pi_model import fma_peak
    rows = rows or ROWS
    peaks = {cpu: fma_peak(TRIPLE, cpu) for cpu in MODELS}
    best = []
    for stride, rs in rows.items():
        for r in rs:
            scored = []
            for c in candidates(stride, r):
                cyc = measure(c, "cortex-a53")
                if cyc:
                    fmas = 9 * c.rows * c.pixels * 2
                    scored.append((fmas * peaks["cortex-a53"] / cyc, cyc, fmas, c))
            if not scored:
                continue
            share, cyc, fmas, c = max(scored, key=lambda t: t[0])
            c72 = measure(c, "cortex-a72")
            best.append({"stride": stride, "rows": r, "pixels": c.pixels, "taps": c.taps,
                         "bounds": c.bounds, "vector_registers": registers(c)["used"],
                         "fmas": fmas, "cycles": {"cortex-a53": cyc, "cortex-a72": c72},
                         "fma_share": {"cortex-a53": share,
                                       "cortex-a72": fmas * peaks["cortex-a72"] / c72 if c72 else None},
                         "candidates": len(scored)})
    return {"peaks": peaks, "best": best}


def markdown(result: dict) -> List[str]:
    lines = ["## Depthwise with several output rows per call: generated schedules", "",
             "Not in the package: the best checked schedule (same FMA order as the kernels, <= 32 "
             "vector registers, no structure loads) per stride and output rows per call, from "
             "`benchmarks/pi_dw_schedules.py`; 1 row is the shipped kernel's scheme.", "",
             "| stride | rows per call | pixels | taps | bounds | vector regs | a53 cycles / FMAs "
             "| a53 share | a72 share |", "|---|---|---|---|---|---|---|---|---|"]
    for b in result["best"]:
        a72 = b["fma_share"]["cortex-a72"]
        lines.append(f"| {b['stride']} | {b['rows']} | {b['pixels']} | {b['taps']} | {b['bounds']} | "
                     f"{b['vector_registers']} | {b['cycles']['cortex-a53']:.0f} / {b['fmas']} | "
                     f"{b['fma_share']['cortex-a53']:.2f} | {'n/a' if a72 is None else format(a72, '.2f')} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="rows per call 1-3 only")
    args = ap.parse_args(argv)
    rows = {1: (1, 2, 3), 2: (1, 2, 3)} if args.quick else None
    print("\n".join(markdown(survey(rows))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
