"""Does fusing the first layers pay (tinymobile/fusion.py, csrc/fused_op.c)? Whole forward passes
of random-weight models, layer by layer against the first K layers fused, interleaved in one
process (one pass of each in turn), medians and minima, plus the fused step's own time.

    python -m benchmarks.fusion_ab [--models 1.0:224 0.25:128] [--threads 1] [--chains 0 4 8]
                                   [--runs 300] [--any-size]

``--chains``: the longest chains to try (0: unfused; each is capped by the fusion rule, so a
model the rule leaves unfused shows only K0 unless ``--any-size`` lifts the first-map limit).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tinymobile
from tinymobile import fusion, runner
from tinymobile.benchmark import default_threads_env


def plans(model, threads: int, chains):
    """{K: plan} for each chain length K (0: layer by layer)."""
    rule, out = fusion.fused_prefix, {}
    try:
        for k in chains:
            runner.fused_prefix = lambda ops, shapes, k=k: min(rule(ops, shapes), k)
            plan = runner.Runner(model.network, threads=threads, fuse=k >= 2).acquire(1)
            plan.input[...] = np.random.default_rng(0).uniform(-1, 1, plan.input.shape)
            out[k] = plan
    finally:
        runner.fused_prefix = rule
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["1.0:224"], help="alpha:resolution")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chains", type=int, nargs="+", default=[0, 4, 8])
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--any-size", action="store_true", help="fuse whatever the first map's size")
    args = p.parse_args(argv)
    default_threads_env()
    if args.any_size:
        fusion.FUSE_MAP_BYTES = 0
    for spec in args.models:
        alpha, res = spec.split(":")
        by_k = plans(tinymobile.build(float(alpha), int(res)), args.threads, args.chains)
        for plan in by_k.values():
            for _ in range(10):
                plan.run()
        times = {k: [] for k in by_k}
        for _ in range(args.runs):
            for k, plan in by_k.items():
                t0 = time.perf_counter()
                plan.run()
                times[k].append(time.perf_counter() - t0)
        base = np.median(times[min(by_k)])
        print(f"{spec}, {args.threads} thread(s), ms over {args.runs} interleaved passes:")
        for k, plan in by_k.items():
            t = np.array(times[k]) * 1e3
            first = np.array([plan.run_timed()[0] for _ in range(50)]).min() * 1e3
            what = f"first {plan.fused} layers fused ({first:.3f} ms)" if plan.fused else "layer by layer"
            print(f"  K={k}: median {np.median(t):.3f}  min {t.min():.3f}  "
                  f"({np.median(t) / (base * 1e3):.3f} of K={min(by_k)})  {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
