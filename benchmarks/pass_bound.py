"""How far is a forward pass from its layers run alone? For a float MobileNet v1 (random
weights), each layer's time inside a whole pass (per-unit minima of ``Plan.run_timed``, the
first layers fused where the plan fuses them) beside the same layer run alone, over and over on
its own buffers, so its weights and maps stay as close to the core as they fit ("hot"). The sum
of the hot times is a floor for the pass on this machine with these kernels; the gap between the
two columns is what a pass loses to weights and maps that have left the caches since the layer
last ran, to layer boundaries and to Python's timing calls (about 1 us a call, in both columns).

    python -m benchmarks.pass_bound [--alpha 1.0] [--resolution 224] [--threads 1] [--runs 300]
"""
from __future__ import annotations

import argparse
import time
from typing import List

import numpy as np

import tinymobile
from tinymobile import kernels
from tinymobile.benchmark import input_for

from .fusion_bound import best_ms


def hot_layer_ms(op, in_shape, runs: int, rng: np.random.Generator) -> float:
    """One layer alone on its own input (uniform [0, 1)) and output buffers, repeated."""
    x = kernels.aligned_empty(int(np.prod(in_shape)), np.float32).reshape(in_shape)
    x[...] = rng.random(in_shape, np.float32)
    out_shape = op.output_shape(in_shape)
    y = kernels.aligned_empty(int(np.prod(out_shape)), np.float32).reshape(out_shape)
    step = op.bind(x, y)
    size = step.workspace_size
    step.setup(kernels.aligned_empty(size, np.uint8) if size else None)
    return best_ms(step, runs)


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args(argv)

    model = tinymobile.build(args.alpha, args.resolution, threads=args.threads)
    runner = model._runner
    plan = runner.acquire(1)
    plan.input[...] = input_for(model, 1)
    for _ in range(20):
        plan.run()
    pass_ms = np.array([plan.run_timed() for _ in range(args.runs)]) * 1e3
    unit_min = pass_ms.min(0)

    names = [row.name for row in model.network.summary_rows()]
    shapes = [(1, args.resolution, args.resolution, 3)]
    for op in runner.ops:
        shapes.append(op.output_shape(shapes[-1]))
    rng = np.random.default_rng(0)
    hot = [hot_layer_ms(op, shapes[i], args.runs, rng) for i, op in enumerate(runner.ops)]

    print(f"MobileNet v1 {args.alpha}_{args.resolution} (random weights), "
          f"threads {args.threads}, isa {runner.isa}; minima of {args.runs} runs, ms")
    print(f"{'unit':28s} {'in pass':>8s} {'alone':>8s} {'gap':>7s}")
    for (first, last), t in zip(plan.unit_layers, unit_min):
        label = names[first] if last - first == 1 else f"{names[first]}..{names[last - 1]} fused"
        alone = sum(hot[first:last])
        print(f"{label:28s} {t:8.4f} {alone:8.4f} {t - alone:+7.4f}")
    whole = pass_ms.sum(1)
    print(f"{'whole pass':28s} {whole.min():8.4f} {sum(hot):8.4f} {whole.min() - sum(hot):+7.4f}"
          f"   (pass median {np.median(whole):.4f}; the pass is "
          f"{whole.min() / sum(hot):.3f}x the sum of its layers alone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
