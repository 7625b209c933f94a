"""`make bench`: tinymobile against ONNX Runtime and TFLite on the same weights, in one process,
interleaved runs, medians; then latency against mult-adds for the 16 alpha x resolution variants
and the paper's separable-vs-full-convolution comparison. Results: benchmarks/results/*.json
(+ .png when matplotlib is installed).

    python -m benchmarks.bench                    # the default suite (~3 minutes)
    python -m benchmarks.bench --alpha 0.5 --resolution 160 --threads 1 2 --profile
    python -m benchmarks.bench --model m.npz --tflite m.tflite --runs 100
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tinymobile.benchmark import default_threads_env

default_threads_env()  # before NumPy starts its BLAS threads

import numpy as np  # noqa: E402

import tinymobile  # noqa: E402
from tinymobile import peers  # noqa: E402
from tinymobile.benchmark import (cpu_info, format_profile, input_for, interleaved, peak_rss_mb,  # noqa: E402
                                  profile, summarize)
from tinymobile.model import Model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
RESULTS = ROOT / "benchmarks" / "results"
FIXTURE_STEMS = {("1.0", 224): "1_0", ("0.5", 160): "5_0", ("0.25", 128): "2_5"}


def fixture_model(alpha: str, weights_resolution: int, resolution: int, threads: int):
    """(Model, tflite path) with the ../shared fixture weights, or (None, None) without them."""
    stem = FIXTURE_STEMS[(alpha, weights_resolution)]
    h5 = FIXTURES / f"mobilenet_{stem}_{weights_resolution}_tf.h5"
    if not h5.exists():
        return None, None
    from tinymobile.converters import keras_h5
    net = keras_h5.load(str(h5), resolution)
    return Model(net, threads=threads), str(FIXTURES / f"mobilenet_{alpha}_{weights_resolution}_f32.tflite")


def compare(name: str, model: Model, tflite_path, threads: int, batch: int, warmup: int, runs: int,
            with_peers: bool) -> dict:
    x = input_for(model, batch)
    engines = {"tinymobile": lambda: model.forward(x)}
    if with_peers:
        ort = peers.onnxruntime_runner(model.network, threads, batch)
        if ort is not None:
            engines["onnxruntime"] = lambda: ort(x)
        if tflite_path and os.path.exists(tflite_path):
            tfl = peers.tflite_runner(tflite_path, threads, model.resolution, batch)
            if tfl is not None:
                engines["tflite"] = lambda: tfl(x)
    times = interleaved(engines, warmup=warmup, runs=runs)
    stats = {k: summarize(v, model.macs, batch) for k, v in times.items()}
    ours = stats["tinymobile"]["median_ms"]
    for k, s in stats.items():
        s["ratio_to_tinymobile"] = s["median_ms"] / ours
    print(f"\n{name}  threads={threads} batch={batch}  ({model.macs / 1e6:.0f} M mult-adds)")
    print(f"  {'engine':<12} {'median ms':>10} {'min ms':>8} {'img/s':>8} {'GFLOP/s':>8} {'tinymobile / it':>16}")
    for k, s in stats.items():
        print(f"  {k:<12} {s['median_ms']:>10.3f} {s['min_ms']:>8.3f} {s['images_per_s']:>8.1f} "
              f"{s['gflops']:>8.1f} {ours / s['median_ms']:>16.3f}")
    return {"name": name, "threads": threads, "batch": batch, "macs": model.macs, "engines": stats}


def sweep(threads: int, runs: int) -> list:
    """Latency of the 16 alpha x resolution variants (random weights, our engine)."""
    rows = []
    print(f"\nalpha x resolution sweep, threads={threads}")
    for alpha in (0.25, 0.5, 0.75, 1.0):
        for res in (128, 160, 192, 224):
            m = tinymobile.build(alpha, res, threads=threads)
            x = input_for(m)
            t = interleaved({"m": lambda: m.forward(x)}, warmup=3, runs=runs, max_seconds=3)["m"]
            s = summarize(t, m.macs)
            rows.append({"alpha": alpha, "resolution": res, "macs": m.macs, **s})
            print(f"  {alpha:<5} {res:<4} {m.macs / 1e6:>7.0f} M  {s['median_ms']:>8.3f} ms  {s['gflops']:>6.1f} GFLOP/s")
    return rows


def separable_vs_full(threads: int, runs: int) -> dict:
    sep = tinymobile.build(1.0, 224, threads=threads)
    full = tinymobile.build(1.0, 224, separable=False, threads=threads)
    xs, xf = input_for(sep), input_for(full)
    t = interleaved({"separable": lambda: sep.forward(xs), "full": lambda: full.forward(xf)},
                    warmup=1, runs=runs, max_seconds=20)
    ts, tf = np.median(t["separable"]), np.median(t["full"])
    out = {"separable_ms": ts * 1e3, "full_ms": tf * 1e3, "latency_ratio": tf / ts,
           "macs_ratio": full.macs / sep.macs, "separable_macs": sep.macs, "full_macs": full.macs,
           "separable_params": sep.params, "full_params": full.params}
    print(f"\nfull convolution vs depthwise separable (1.0_224, threads={threads}): "
          f"{tf * 1e3:.1f} ms vs {ts * 1e3:.2f} ms = {tf / ts:.2f}x latency for "
          f"{full.macs / sep.macs:.2f}x mult-adds ({full.macs / 1e6:.0f} M vs {sep.macs / 1e6:.0f} M)")
    return out


def plot(rows: list, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for alpha in sorted({r["alpha"] for r in rows}):
        pts = [r for r in rows if r["alpha"] == alpha]
        ax.plot([r["macs"] / 1e6 for r in pts], [r["median_ms"] for r in pts], "o-", label=f"alpha {alpha}")
        for r in pts:
            ax.annotate(str(r["resolution"]), (r["macs"] / 1e6, r["median_ms"]), fontsize=7,
                        xytext=(3, -8), textcoords="offset points")
    ax.set_xlabel("mult-adds (millions)")
    ax.set_ylabel("latency, median (ms)")
    ax.set_title("tinymobile MobileNet v1, float32, 1 thread")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a tinymobile .npz model (default: the suite)")
    p.add_argument("--tflite", help="a .tflite file with the same weights, for the TFLite column")
    p.add_argument("--alpha", type=float, help="random-weight model of this width")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--threads", type=int, nargs="+", default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--profile", action="store_true", help="per-layer time and GFLOP/s")
    p.add_argument("--no-peers", action="store_true", help="skip ONNX Runtime and TFLite")
    p.add_argument("--no-sweep", action="store_true", help="skip the 16-variant sweep and the full-conv model")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    info = cpu_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": info, "comparisons": []}
    with_peers = not args.no_peers
    if args.model or args.alpha:
        for t in args.threads or [1]:
            if args.model:
                m, tfl, name = tinymobile.load(args.model, threads=t), args.tflite, os.path.basename(args.model)
            else:
                m = tinymobile.build(args.alpha, args.resolution, threads=t)
                tfl, name = args.tflite, f"random {args.alpha:g}_{args.resolution}"
            report["comparisons"].append(compare(name, m, tfl, t, args.batch, args.warmup, args.runs, with_peers))
            if args.profile:
                rows = profile(m, args.batch)
                report["comparisons"][-1]["profile"] = rows
                print(format_profile(rows))
    else:
        suite = [("1.0", 224, 224, args.threads or [1, 2]), ("0.25", 128, 128, [1]), ("0.25", 128, 224, [1])]
        for alpha, wres, res, thread_list in suite:
            for t in thread_list:
                m, tfl = fixture_model(alpha, wres, res, t)
                name = f"{alpha}_{res} (fixture weights)"
                if m is None:
                    m, tfl, name = tinymobile.build(float(alpha), res, threads=t), None, f"{alpha}_{res} (random)"
                report["comparisons"].append(compare(name, m, tfl, t, args.batch, args.warmup, args.runs, with_peers))
                if args.profile:
                    rows = profile(m, args.batch)
                    report["comparisons"][-1]["profile"] = rows
                    print(format_profile(rows))
    if not args.no_sweep:
        report["sweep"] = sweep(1, max(10, args.runs // 4))
        report["separable_vs_full"] = separable_vs_full(1, 5)
    report["peak_rss_mb"] = peak_rss_mb()
    print(f"\npeak RSS {report['peak_rss_mb']:.0f} MiB")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"saved {stem.with_suffix('.json')}")
    if "sweep" in report and plot(report["sweep"], stem.with_suffix(".png")):
        print(f"saved {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
