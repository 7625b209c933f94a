"""Would fusing each depthwise layer with its pointwise layer per band of rows pay? An upper
bound: each (depthwise, pointwise) pair of MobileNet v1 1.0_224 on whole maps, against the same
work done band by band on buffers that stay in cache (what a fused pass would touch), without
the halo rows a real fused pass would recompute. Minimum of many runs, one thread.

Every map here is hot (repeated on the same buffers), which is what made this bound small
(+0.1 %); in a whole pass the first layers' 1.6-3.2 MB maps have left the caches before the next
layer reads them, and fusing them did pay: see benchmarks/fusion_ab.py and tinymobile/fusion.py.

    python -m benchmarks.fusion_bound [--isa avx512] [--runs 300]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tinymobile import kernels
from tinymobile.operators import Depthwise3x3Op, PointwiseOp

#: (input size, channels in, channels out, depthwise stride) of blocks 1-5 and 7 of 1.0_224.
PAIRS = [(112, 32, 64, 1), (112, 64, 128, 2), (56, 128, 128, 1), (56, 128, 256, 2),
         (28, 256, 256, 1), (14, 512, 512, 1)]
BAND_ROWS = 8  # output rows of a band


def best_ms(fn, runs: int) -> float:
    for _ in range(5):
        fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def pair_steps(kern, pool, rng, rows: int, width: int, cin: int, cout: int, stride: int):
    """Bound depthwise and pointwise steps on an input of ``rows`` x ``width`` pixels."""
    dw = Depthwise3x3Op(kern, pool, rng.standard_normal((3, 3, cin)).astype(np.float32),
                        np.zeros(cin, np.float32), stride, "tf_same", (0.0, 6.0))
    pw = PointwiseOp(kern, pool, rng.standard_normal((cin, cout)).astype(np.float32),
                     np.zeros(cout, np.float32), (0.0, 6.0))
    x = kernels.aligned_empty(rows * width * cin, np.float32).reshape(1, rows, width, cin)
    x[...] = rng.random(x.shape, np.float32)
    shapes = [dw.output_shape(x.shape)]
    shapes.append(pw.output_shape(shapes[0]))
    y, z = (kernels.aligned_empty(int(np.prod(s)), np.float32).reshape(s) for s in shapes)
    steps = [dw.bind(x, y), pw.bind(y, z)]
    for s in steps:
        n = s.workspace_size
        s.setup(kernels.aligned_empty(n, np.uint8) if n else None)
    return steps, shapes[0][1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--isa", default=None, help="kernel table (default: this CPU's best)")
    p.add_argument("--runs", type=int, default=300)
    args = p.parse_args(argv)
    isa = args.isa or kernels.default_isa()
    kern, pool, rng = kernels.kernel_table(isa), kernels.create_pool(1), np.random.default_rng(0)
    print(f"isa={isa}; ms, minimum of {args.runs} runs")
    total_full = total_band = 0.0
    for size, cin, cout, stride in PAIRS:
        (dw, pw), out_rows = pair_steps(kern, pool, rng, size, size, cin, cout, stride)
        full = best_ms(lambda: (dw(), pw()), args.runs)
        (bdw, bpw), band_rows = pair_steps(kern, pool, rng, BAND_ROWS * stride, size, cin, cout, stride)
        band = best_ms(lambda: (bdw(), bpw()), args.runs) * out_rows / band_rows
        total_full, total_band = total_full + full, total_band + band
        print(f"{size}x{size}x{cin} -> {cout}, stride {stride}: whole maps {full:.4f}, "
              f"in-cache bands of {band_rows} rows {band:.4f} ({100 * (1 - band / full):+.1f} %)")
    print(f"all pairs: {total_full:.4f} -> {total_band:.4f} ({100 * (1 - total_band / total_full):+.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
