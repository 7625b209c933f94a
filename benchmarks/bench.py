"""`make bench`: tinymobile against ONNX Runtime and TFLite on the same weights (the float
fixtures in ../shared), in one process, interleaved runs, medians; then latency against
mult-adds for the 16 alpha x resolution variants and the paper's separable-vs-full-convolution
comparison; the default suite prints each model's per-layer profile with the ukernel that ran
every layer. Results: benchmarks/results/*.json (+ .png when matplotlib is installed).

    python -m benchmarks.bench                    # the default suite (a few minutes)
    python -m benchmarks.bench --alpha 0.5 --resolution 160 --threads 1 2 --profile
    python -m benchmarks.bench --model m.npz --tflite m.tflite --runs 100
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinymobile.benchmark import default_threads_env

default_threads_env()  # before NumPy starts its BLAS threads

import tinymobile  # noqa: E402
from tinymobile import benchmark  # noqa: E402
from tinymobile.model import Model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
RESULTS = ROOT / "benchmarks" / "results"
FIXTURE_STEMS = {("1.0", 224): "1_0", ("0.5", 160): "5_0", ("0.25", 128): "2_5"}


def fixture_factory(alpha: str, weights_resolution: int, resolution: int):
    """Model factory with the ../shared fixture weights (run at ``resolution``) and the TFLite file
    holding the same weights; random weights and no TFLite file without ../shared."""
    stem = FIXTURE_STEMS[(alpha, weights_resolution)]
    h5 = FIXTURES / f"mobilenet_{stem}_{weights_resolution}_tf.h5"
    tflite = FIXTURES / f"mobilenet_{alpha}_{weights_resolution}_f32.tflite"

    def factory(threads):
        if not h5.exists():
            return tinymobile.build(float(alpha), resolution, threads=threads), None
        from tinymobile.converters import keras_h5
        return Model(keras_h5.load(str(h5), resolution), threads=threads), str(tflite)

    return factory


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchmark.add_arguments(p)
    p.set_defaults(out=RESULTS)
    args = p.parse_args(argv)
    models = None
    if not (args.model or args.alpha):
        args.sweep = True
        args.profile = True  # per layer: time and the ukernel that ran it
        models = [("1.0_224", fixture_factory("1.0", 224, 224), args.threads or [1, 2]),
                  ("0.25_128", fixture_factory("0.25", 128, 128), [1]),
                  ("0.25_224", fixture_factory("0.25", 128, 224), [1])]
    benchmark.run(args, models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
