"""`make bench-int8`: quantized MobileNet v1 0.75_192 (real Coral weights) on tinymobile's integer
kernels against TFLite on the same file, and against tinymobile's float engine on the same
weights dequantized. One process, interleaved runs (machine noise hits every engine alike),
medians and minima; then tinymobile's per-layer profile with the ukernel that ran each layer.
Results: benchmarks/results/int8-*.json.

    python -m benchmarks.bench_int8                 # 1 thread, 0.75_192 and 1.0_224 (Coral)
    python -m benchmarks.bench_int8 --threads 1 2 --runs 100 --model mobilenet_v1_0.5_160_quant

Engines, per model:
  tinymobile     our integer kernels (uint8 domain; AVX-512 VNNI / AVX-VNNI / AVX2 / NEON / scalar)
  tflite         TFLite's default interpreter (XNNPACK delegate where it takes the graph)
  tflite-nodeleg TFLite's builtin optimized kernels without the default delegates (ruy/gemmlowp)
  tinymobile-f32 the float engine on the dequantized weights (the "int8 against float" line)

Models: the uint8 Coral file, and (when ai-edge-quantizer is installed) an int8 model with
per-channel weights made from the same weights, which is what TFLite's XNNPACK runs as QS8.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tinymobile.benchmark import default_threads_env

default_threads_env()

import numpy as np  # noqa: E402

import tinymobile  # noqa: E402
from tinymobile import benchmark  # noqa: E402
from tinymobile.convert import convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models"
IMAGES = ROOT.parent / "shared" / "images"
RESULTS = ROOT / "benchmarks" / "results"
#: The Coral uint8 files the issue #15 targets are set on.
DEFAULT_MODELS = ("mobilenet_v1_0.75_192_quant", "mobilenet_v1_1.0_224_quant_embedding_extractor")


def tflite_engine(path: str, threads: int, delegates: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]

    def run(x):
        it.set_tensor(inp, x)
        it.invoke()

    return run


def int8_model(src: str, workdir: Path, calibration: np.ndarray):
    """The int8 per-channel copy of ``src`` (None without ai-edge-quantizer)."""
    try:
        import ai_edge_quantizer  # noqa: F401
    except ImportError:
        return None
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import int8_models
    return int8_models.int8_from_coral(src, calibration, workdir / "int8.tflite")


def bench(name: str, q_npz: str, tflite: str, f32_npz: str, threads: int, runs: int) -> dict:
    qm = tinymobile.load(q_npz, threads=threads)
    fm = tinymobile.load(f32_npz, threads=threads)
    rng = np.random.default_rng(0)
    lo, hi = (0, 255) if qm.dtype == "uint8" else (-128, 127)
    xq = rng.integers(lo, hi + 1, (1, qm.resolution, qm.resolution, 3)).astype(qm.dtype)
    xf = rng.uniform(-1, 1, (1, fm.resolution, fm.resolution, 3)).astype(np.float32)
    engines = {"tinymobile": lambda: qm.forward(xq),
               "tflite": (lambda run: lambda: run(xq))(tflite_engine(tflite, threads, True)),
               "tflite-nodeleg": (lambda run: lambda: run(xq))(tflite_engine(tflite, threads, False)),
               "tinymobile-f32": lambda: fm.forward(xf)}
    times = benchmark.interleaved(engines, warmup=5, runs=runs)
    stats = {k: benchmark.summarize(v, qm.macs) for k, v in times.items()}
    ours = stats["tinymobile"]["median_ms"]
    print(f"\n{name} ({qm.dtype}, isa={qm.isa})  threads={threads}  ({qm.macs / 1e6:.0f} M mult-adds)")
    print(f"  {'engine':<15} {'median ms':>10} {'min ms':>8} {'GOP/s':>8} {'its time / ours':>16}")
    for k, s in stats.items():
        s["ratio_to_tinymobile"] = s["median_ms"] / ours
        print(f"  {k:<15} {s['median_ms']:>10.3f} {s['min_ms']:>8.3f} {s['gflops']:>8.1f} "
              f"{s['ratio_to_tinymobile']:>16.2f}")
    layers = benchmark.profile(qm)
    print(benchmark.format_profile(layers))
    return {"name": name, "dtype": qm.dtype, "isa": qm.isa, "threads": threads, "macs": qm.macs,
            "engines": stats, "profile": layers}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS),
                   help="../shared/models stems (default: the two Coral uint8 files of issue #15)")
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--no-int8", action="store_true", help="skip the int8 per-channel models")
    args = p.parse_args(argv)
    for stem in args.model:
        if not (MODELS / f"{stem}.tflite").exists():
            print(f"{MODELS / (stem + '.tflite')} not found (the benchmark needs ../shared/models)")
            return 1
    info = benchmark.cpu_info()
    print("cpu:", info)
    rows = []
    for stem in args.model:
        src = MODELS / f"{stem}.tflite"
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            convert(str(src), tmp / "q.npz")
            convert(str(src), tmp / "f32.npz", dequantize=True)
            models = [(stem, str(tmp / "q.npz"), str(src))]
            if not args.no_int8:
                m = tinymobile.load(tmp / "q.npz", threads=1)
                samples = sorted(str(q) for q in (IMAGES / "samples").iterdir())
                calib = m.preprocess(samples)  # (RGB - 128) / 128, the float copy's input
                path = int8_model(str(src), tmp, calib)
                if path is not None:
                    convert(path, tmp / "q8.npz")
                    models.append((stem.replace("_quant", "_int8"), str(tmp / "q8.npz"), path))
            for name, npz, tfl in models:
                for t in args.threads:
                    rows.append(bench(name, npz, tfl, str(tmp / "f32.npz"), t, args.runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / time.strftime("int8-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({"cpu": info, "results": rows}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
