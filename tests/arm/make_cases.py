"""Reference cases for the C kernel check (tests/arm/kernel_check.c), computed by the NumPy
reference (tinymobile.reference) on the build machine.

Usage: python tests/arm/make_cases.py OUT.bin

File layout (little-endian, what kernel_check.c reads):
    b"TMCASES1", int32 case count, then per case:
    int32 op (0 conv3x3, 1 dwconv3x3, 2 pointwise, 3 avgpool)
    int32 dims[10]   conv/dwconv: batch, h, w, cin, cout, stride, pad_top, pad_left, oh, ow
                     pointwise:   m, k, n, 0...;  avgpool: batch, pixels, channels, 0...
    float32 min, max (the clamp; +-inf for none)
    int32 name length, name bytes (no terminator)
    5 arrays, each int32 count + float32 data: input, weights, bias, expected, tolerance

Weights are in the layouts the packing functions take: conv (3, 3, cin, cout) = (9 * cin) x cout
row-major, dwconv (3, 3, c), pointwise (k, n). The tolerance of each output element is a
rigorous float32 accumulation bound: 2 * (K + 2) * 2**-23 * (|x| conv |w| + |b|), K the number of
terms summed, so any summation order passes and a missing or doubled term fails.
"""
from __future__ import annotations

import struct
import sys
from typing import List, Tuple

import numpy as np

from tinymobile import reference
from tinymobile.network import conv_output

OPS = {"conv3x3": 0, "dwconv3x3": 1, "pointwise": 2, "avgpool": 3}
INF = float("inf")
CLAMPS = [(-INF, INF), (0.0, 6.0), (0.0, INF), (-0.25, 0.5)]
CLAMP_NAMES = {(-INF, INF): "none", (0.0, 6.0): "relu6", (0.0, INF): "relu", (-0.25, 0.5): "narrow"}
EPS = 2.0 ** -23


def _tolerance(magnitude: np.ndarray, terms: int) -> np.ndarray:
    return (2.0 * (terms + 2) * EPS * magnitude).astype(np.float32)


class Writer:
    def __init__(self):
        self.records: List[bytes] = []

    def add(self, op: str, dims: List[int], clamp: Tuple[float, float], name: str,
            arrays: List[np.ndarray]) -> None:
        dims = list(dims) + [0] * (10 - len(dims))
        rec = [struct.pack("<i10i2f", OPS[op], *dims, clamp[0], clamp[1]),
               struct.pack("<i", len(name)), name.encode("ascii")]
        for a in arrays:
            a = np.ascontiguousarray(a, dtype="<f4").ravel()
            rec += [struct.pack("<i", a.size), a.tobytes()]
        self.records.append(b"".join(rec))

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(b"TMCASES1" + struct.pack("<i", len(self.records)))
            for r in self.records:
                f.write(r)


def conv_cases(out: Writer, rng: np.random.Generator) -> None:
    shapes = [(1, 1, 1), (1, 2, 3), (1, 3, 3), (2, 5, 7), (1, 8, 8), (1, 9, 4), (1, 16, 15)]
    cins = [3, 1, 5, 8, 2, 4]
    couts = [1, 3, 8, 9, 17, 32, 4, 16, 5]
    i = 0
    for (batch, h, w) in shapes:
        for stride in (1, 2):
            for padding in ("tf_same", "symmetric"):
                for _ in range(2):
                    cin, cout = cins[i % len(cins)], couts[i % len(couts)]
                    clamp = CLAMPS[i % len(CLAMPS)]
                    i += 1
                    x = rng.uniform(-1, 1, (batch, h, w, cin)).astype(np.float32)
                    wt = (rng.standard_normal((3, 3, cin, cout)) * 2 / np.sqrt(9 * cin)).astype(np.float32)
                    b = rng.uniform(-1, 1, cout).astype(np.float32)
                    y = reference.conv3x3(x, wt, b, stride, padding, clamp)
                    mag = reference.conv3x3(np.abs(x), np.abs(wt), np.abs(b), stride, padding)
                    oh, top = conv_output(h, stride, padding)
                    ow, left = conv_output(w, stride, padding)
                    name = (f"conv3x3 n={batch} {h}x{w}x{cin}->{cout} s={stride} {padding} "
                            f"{CLAMP_NAMES[clamp]}")
                    out.add("conv3x3", [batch, h, w, cin, cout, stride, top, left, oh, ow], clamp,
                            name, [x, wt, b, y, _tolerance(mag, 9 * cin)])


def dwconv_cases(out: Writer, rng: np.random.Generator) -> None:
    shapes = [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 4, 5), (2, 5, 7), (1, 7, 9), (1, 8, 16),
              (1, 9, 17), (1, 14, 14), (1, 3, 33)]
    channels = [1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33, 64, 2, 6]
    i = 0
    for (batch, h, w) in shapes:
        for stride in (1, 2):
            for padding in ("tf_same", "symmetric"):
                for _ in range(3):
                    c = channels[i % len(channels)]
                    clamp = CLAMPS[i % len(CLAMPS)]
                    i += 1
                    x = rng.uniform(-1, 1, (batch, h, w, c)).astype(np.float32)
                    wt = (rng.standard_normal((3, 3, c)) * 0.8).astype(np.float32)
                    b = rng.uniform(-1, 1, c).astype(np.float32)
                    y = reference.depthwise3x3(x, wt, b, stride, padding, clamp)
                    mag = reference.depthwise3x3(np.abs(x), np.abs(wt), np.abs(b), stride, padding)
                    oh, top = conv_output(h, stride, padding)
                    ow, left = conv_output(w, stride, padding)
                    name = (f"dwconv3x3 n={batch} {h}x{w}x{c} s={stride} {padding} "
                            f"{CLAMP_NAMES[clamp]}")
                    out.add("dwconv3x3", [batch, h, w, c, c, stride, top, left, oh, ow], clamp,
                            name, [x, wt, b, y, _tolerance(mag, 9)])


def pointwise_cases(out: Writer, rng: np.random.Generator) -> None:
    ms = [1, 2, 3, 5, 7, 8, 9, 13, 17, 64, 67]
    ks = [1, 2, 3, 4, 5, 8, 16, 33, 64, 128, 7]
    ns = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 64]
    shapes = []
    i = 0
    for m in ms:
        for _ in range(4):
            shapes.append((m, ks[i % len(ks)], ns[i % len(ns)]))
            i += 1
    # Threaded splits: large weights with few rows (column blocks), many rows (L2 row blocks).
    shapes += [(7, 256, 300), (49, 512, 24), (1100, 128, 16), (1, 1024, 1001)]
    for i, (m, k, n) in enumerate(shapes):
        clamp = CLAMPS[i % len(CLAMPS)]
        x = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        wt = (rng.standard_normal((k, n)) * 2 / np.sqrt(k)).astype(np.float32)
        b = rng.uniform(-1, 1, n).astype(np.float32)
        y = reference.pointwise(x, wt, b, clamp)
        mag = reference.pointwise(np.abs(x), np.abs(wt), np.abs(b))
        out.add("pointwise", [m, k, n], clamp, f"pointwise {m}x{k}->{n} {CLAMP_NAMES[clamp]}",
                [x, wt, b, y, _tolerance(mag, k)])


def avgpool_cases(out: Writer, rng: np.random.Generator) -> None:
    for batch, pixels, c in [(1, 1, 1), (1, 1, 5), (1, 4, 3), (2, 7, 8), (1, 49, 17),
                             (1, 49, 1024), (2, 9, 33), (1, 16, 4), (3, 25, 6)]:
        x = rng.uniform(-1, 1, (batch, pixels, 1, c)).astype(np.float32)
        y = reference.average_pool(x)
        mag = reference.average_pool(np.abs(x))
        out.add("avgpool", [batch, pixels, c], (-INF, INF), f"avgpool n={batch} {pixels}px x {c}",
                [x, np.zeros(0, np.float32), np.zeros(0, np.float32), y, _tolerance(mag, pixels)])


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__.splitlines()[3], file=sys.stderr)
        return 2
    rng = np.random.default_rng(20261126)
    out = Writer()
    conv_cases(out, rng)
    dwconv_cases(out, rng)
    pointwise_cases(out, rng)
    avgpool_cases(out, rng)
    out.save(argv[1])
    print(f"{argv[1]}: {len(out.records)} reference cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
