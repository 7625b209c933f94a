"""Reference cases for the C kernel check (tests/arm/kernel_check.c), computed by the NumPy
references (tinymobile.reference, tinymobile.quantized_reference) on the build machine.

Usage: python tests/arm/make_cases.py OUT.bin

File layout (little-endian, what kernel_check.c reads):
    b"TMCASES2", int32 case count, then per case:
    int32 op   float32: 0 conv3x3, 1 dwconv3x3, 2 pointwise, 3 avgpool;
               uint8 ("qu8"): 4 conv3x3, 5 dwconv3x3, 6 pointwise, 7 avgpool;
               float32: 8 maxpool (exact: tolerance 0)
    int32 dims[10]   conv/dwconv: batch, h, w, cin, cout, stride, pad_top, pad_left, oh, ow
                     pointwise:   m, k, n, 0...;  avgpool, maxpool: batch, pixels, channels, 0...
    float32 min, max (float clamp; +-inf for none)
    int32 q[8]       qu8: input zero point, output zero point, clamp lo, clamp hi (all in the
                     kernels' uint8 domain), pool mode, pool value offset, pool multiplier, shift
    int32 name length, name bytes (no terminator)
    int32 array count, then per array: int32 dtype (0 float32, 1 uint8, 2 int16, 3 int32),
                     int32 element count, the elements
    float32 arrays: input, weights, bias, expected, tolerance
    qu8 arrays:     input (uint8 domain), weights minus their zero point (int16), bias,
                    multiplier, shift (int32, per output channel), expected (uint8 domain)

Weights are in the layouts the packing functions take: conv (3, 3, cin, cout) = (9 * cin) x cout
row-major, dwconv (3, 3, c), pointwise (k, n). The tolerance of each float output is a rigorous
float32 accumulation bound: 2 * (K + 2) * 2**-23 * (|x| conv |w| + |b|), K the number of terms
summed, so any summation order passes and a missing or doubled term fails. Quantized outputs
must be bit-exact (TFLite's arithmetic).
"""
from __future__ import annotations

import struct
import sys
from typing import List, Tuple

import numpy as np

from tinymobile import quantized_reference as qr
from tinymobile import reference
from tinymobile.network import conv_output

OPS = {"conv3x3": 0, "dwconv3x3": 1, "pointwise": 2, "avgpool": 3,
       "qu8_conv3x3": 4, "qu8_dwconv3x3": 5, "qu8_pointwise": 6, "qu8_avgpool": 7, "maxpool": 8}
DTYPES = {np.dtype("<f4"): 0, np.dtype("u1"): 1, np.dtype("<i2"): 2, np.dtype("<i4"): 3}
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
            arrays: List[np.ndarray], q: List[int] = ()) -> None:
        dims = list(dims) + [0] * (10 - len(dims))
        q = list(q) + [0] * (8 - len(q))
        rec = [struct.pack("<i10i2f8i", OPS[op], *dims, clamp[0], clamp[1], *q),
               struct.pack("<i", len(name)), name.encode("ascii"), struct.pack("<i", len(arrays))]
        for a in arrays:
            a = np.ascontiguousarray(a)
            a = a.astype(a.dtype.newbyteorder("<")).ravel()
            rec += [struct.pack("<ii", DTYPES[a.dtype], a.size), a.tobytes()]
        self.records.append(b"".join(rec))

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(b"TMCASES2" + struct.pack("<i", len(self.records)))
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


def _dwconv_case(out: Writer, rng: np.random.Generator, batch: int, h: int, w: int, c: int,
                 stride: int, padding: str, clamp) -> None:
    """One depthwise case: random input, weights, bias; the reference output and tolerance."""
    x = rng.uniform(-1, 1, (batch, h, w, c)).astype(np.float32)
    wt = (rng.standard_normal((3, 3, c)) * 0.8).astype(np.float32)
    b = rng.uniform(-1, 1, c).astype(np.float32)
    y = reference.depthwise3x3(x, wt, b, stride, padding, clamp)
    mag = reference.depthwise3x3(np.abs(x), np.abs(wt), np.abs(b), stride, padding)
    oh, top = conv_output(h, stride, padding)
    ow, left = conv_output(w, stride, padding)
    out.add("dwconv3x3", [batch, h, w, c, c, stride, top, left, oh, ow], clamp,
            f"dwconv3x3 n={batch} {h}x{w}x{c} s={stride} {padding} {CLAMP_NAMES[clamp]}",
            [x, wt, b, y, _tolerance(mag, 9)])


def dwconv_cases(out: Writer, rng: np.random.Generator) -> None:
    shapes = [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 4, 5), (2, 5, 7), (1, 7, 9), (1, 8, 16),
              (1, 9, 17), (1, 14, 14), (1, 3, 33)]
    channels = [1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33, 64, 2, 6]
    i = 0
    for (batch, h, w) in shapes:
        for stride in (1, 2):
            for padding in ("tf_same", "symmetric"):
                for _ in range(3):
                    _dwconv_case(out, rng, batch, h, w, channels[i % len(channels)], stride,
                                 padding, CLAMPS[i % len(CLAMPS)])
                    i += 1
    # Rows wide enough for the aarch64 in-order kernel's groups (10 pixels at stride 1, 8 at
    # stride 2) with channel counts that are multiples of 8 (its assembly) and not.
    for k, (h, w, c) in enumerate([(3, 24, 8), (2, 40, 16), (3, 21, 24), (2, 57, 8), (2, 12, 40),
                                   (2, 31, 12)]):
        for stride in (1, 2):
            for padding in ("tf_same", "symmetric"):
                _dwconv_case(out, rng, 1, h, w, c, stride, padding,
                             CLAMPS[(k + stride) % len(CLAMPS)])


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


def maxpool_cases(out: Writer, rng: np.random.Generator) -> None:
    """Every vector path (NEON: 16 and 4 channels) and tail length; max is exact."""
    for batch, pixels, c in [(1, 1, 1), (1, 1, 5), (1, 4, 3), (2, 7, 8), (1, 49, 17),
                             (1, 25, 256), (2, 9, 33), (1, 16, 4), (3, 25, 6), (1, 9, 31)]:
        x = rng.uniform(-1, 1, (batch, pixels, 1, c)).astype(np.float32)
        y = reference.max_pool(x)
        out.add("maxpool", [batch, pixels, c], (-INF, INF), f"maxpool n={batch} {pixels}px x {c}",
                [x, np.zeros(0, np.float32), np.zeros(0, np.float32), y,
                 np.zeros(y.shape, np.float32)])


# ---- quantized ------------------------------------------------------------------------------
def _domain(a: np.ndarray) -> np.ndarray:
    """The kernels' uint8 domain: uint8 as is, int8 + 128."""
    return a.view(np.uint8) ^ np.uint8(0x80) if a.dtype == np.int8 else a


def _requant(rng, cout: int, dtype: str, per_channel: bool) -> qr.Requant:
    """Parameters like real models': multipliers in [2^30, 2^31), right shifts (now and then
    none), zero points anywhere in range, a ReLU-like clamp."""
    lo, hi = qr.DTYPE_RANGE[dtype]
    n = cout if per_channel else 1
    mult = rng.integers(1 << 30, (1 << 31) - 1, n, dtype=np.int64).astype(np.int32)
    shift = rng.integers(-14, 1, n).astype(np.int32)
    if per_channel:  # symmetric int8 weights, zero point 0 (TFLite's per-channel scheme)
        wzp = np.zeros(n, np.int32)
    else:
        wzp = np.array([rng.integers(0, 256) if dtype == "uint8" else rng.integers(-128, 128)], np.int32)
    c_lo = int(rng.integers(lo, lo + 60))
    c_hi = int(rng.integers(max(c_lo, hi - 60), hi + 1))
    return qr.Requant(int(rng.integers(lo, hi + 1)), np.repeat(wzp, cout // n),
                      np.repeat(mult, cout // n), np.repeat(shift, cout // n),
                      int(rng.integers(lo, hi + 1)), (c_lo, c_hi), dtype)


def _qweights(rng, shape, dtype: str, per_channel: bool) -> np.ndarray:
    wdtype = "int8" if (per_channel or dtype == "int8") else "uint8"
    lo, hi = qr.DTYPE_RANGE[wdtype]
    return rng.integers(-127 if per_channel else lo, hi + 1, shape).astype(wdtype)


def _qinput(rng, shape, dtype: str) -> np.ndarray:
    lo, hi = qr.DTYPE_RANGE[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _qadd(out: Writer, op: str, dims, name: str, x, w, b, rq: qr.Requant, y) -> None:
    off = 128 if rq.dtype == "int8" else 0
    wprime = w.astype(np.int16) - np.asarray(rq.weight_zero_point, np.int16)
    q = [rq.input_zero_point + off, rq.output_zero_point + off, rq.clamp[0] + off, rq.clamp[1] + off]
    out.add(op, dims, (0.0, 0.0), name,
            [_domain(x), wprime, b.astype(np.int32), np.asarray(rq.multiplier, np.int32),
             np.asarray(rq.shift, np.int32), _domain(y)], q)


def qu8_cases(out: Writer, rng: np.random.Generator) -> None:
    """Same shape coverage as the float cases; uint8 (per-tensor) and int8 (per-channel)."""
    i = 0
    for (batch, h, w) in [(1, 1, 1), (1, 2, 3), (2, 5, 7), (1, 8, 8), (1, 9, 4), (1, 13, 11)]:
        for stride in (1, 2):
            for padding in ("tf_same", "symmetric"):
                dtype, per_channel = (("uint8", False), ("int8", True))[i % 2]
                cin, cout = [3, 1, 5, 8, 2][i % 5], [1, 3, 8, 9, 17, 32, 4, 16, 5][i % 9]
                c = [1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33, 64, 2, 6][i % 14]
                i += 1
                oh, top = conv_output(h, stride, padding)
                ow, left = conv_output(w, stride, padding)
                x = _qinput(rng, (batch, h, w, cin), dtype)
                wt = _qweights(rng, (3, 3, cin, cout), dtype, per_channel)
                b = rng.integers(-40000, 40000, cout).astype(np.int32)
                rq = _requant(rng, cout, dtype, per_channel)
                _qadd(out, "qu8_conv3x3", [batch, h, w, cin, cout, stride, top, left, oh, ow],
                      f"qu8 conv3x3 {dtype} n={batch} {h}x{w}x{cin}->{cout} s={stride} {padding}",
                      x, wt, b, rq, qr.conv3x3(x, wt, b, stride, padding, rq))
                for dtype, per_channel in (("uint8", False), ("int8", True)):
                    x = _qinput(rng, (batch, h, w, c), dtype)
                    wt = _qweights(rng, (3, 3, c), dtype, per_channel)
                    b = rng.integers(-40000, 40000, c).astype(np.int32)
                    rq = _requant(rng, c, dtype, per_channel)
                    _qadd(out, "qu8_dwconv3x3", [batch, h, w, c, c, stride, top, left, oh, ow],
                          f"qu8 dwconv3x3 {dtype} n={batch} {h}x{w}x{c} s={stride} {padding}",
                          x, wt, b, rq, qr.depthwise3x3(x, wt, b, stride, padding, rq))
                    c = [1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33, 64, 2, 6][(i + 7) % 14]
    shapes = [(1, 1, 1), (2, 3, 5), (3, 16, 8), (5, 17, 9), (7, 33, 16), (8, 64, 17), (9, 2, 33),
              (13, 31, 4), (17, 15, 64), (64, 48, 24), (67, 9, 3), (49, 1024, 40), (600, 128, 40),
              (1, 1024, 1001), (7, 256, 300)]
    for j, (m, k, n) in enumerate(shapes):
        dtype, per_channel = (("uint8", False), ("int8", True))[j % 2]
        x = _qinput(rng, (m, k), dtype)
        wt = _qweights(rng, (k, n), dtype, per_channel)
        b = rng.integers(-40000, 40000, n).astype(np.int32)
        rq = _requant(rng, n, dtype, per_channel)
        _qadd(out, "qu8_pointwise", [m, k, n], f"qu8 pointwise {dtype} {m}x{k}->{n}",
              x, wt, b, rq, qr.pointwise(x, wt, b, rq))
    for j, (batch, pixels, c) in enumerate([(1, 1, 5), (2, 7, 8), (1, 49, 17), (1, 49, 1024),
                                            (3, 25, 6)]):
        for dtype in ("uint8", "int8"):
            lo, hi = qr.DTYPE_RANGE[dtype]
            x = _qinput(rng, (batch, pixels, 1, c), dtype)
            off = 128 if dtype == "int8" else 0
            clamp = (int(rng.integers(lo, lo + 40)), int(rng.integers(hi - 40, hi + 1)))
            y = qr.average_pool(x, clamp)
            out.add("qu8_avgpool", [batch, pixels, c], (0.0, 0.0),
                    f"qu8 average_pool_2d {dtype} n={batch} {pixels}px x {c}",
                    [_domain(x), _domain(y)], [off, off, clamp[0] + off, clamp[1] + off, 0, off])
        x = _qinput(rng, (batch, pixels, 1, c), "int8")
        in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        mult, shift = qr.quantize_multiplier(float(rng.uniform(0.05, 3.0)))
        y = qr.mean(x, in_zp, out_zp, mult, shift, (-128, 127))
        m2, s2 = qr.mean_multiplier(mult, shift, pixels)
        out.add("qu8_avgpool", [batch, pixels, c], (0.0, 0.0),
                f"qu8 mean int8 n={batch} {pixels}px x {c}", [_domain(x), _domain(y)],
                [in_zp + 128, out_zp + 128, 0, 255, 1, 128, m2, s2])


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
    maxpool_cases(out, rng)
    qu8_cases(out, rng)
    out.save(argv[1])
    print(f"{argv[1]}: {len(out.records)} reference cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
