"""Benchmark harness in the manner of TFLite's benchmark_model: warm-up, interleaved timed runs
of several engines in one process, medians and minimums, per-layer profile, machine facts.

Everything here measures; nothing asserts a speed (speed goals live in benchmarks/, as ratios)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from . import kernels, peers
from .errors import TinyMobileError
from .model import Model, build, load


def cpu_info() -> Dict[str, object]:
    """CPU model name, usable cores, kernel ISA and the measured single-core FMA peak."""
    name = platform.processor() or platform.machine()
    flags: List[str] = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")) and name in (
                        platform.processor(), platform.machine()):
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    have = set(line.split(":", 1)[1].split())
                    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in have]
    except OSError:
        pass
    isa = kernels.default_isa()
    return {"cpu": name, "machine": platform.machine(), "cores": kernels.default_threads(),
            "isa": isa, "x86_flags": " ".join(flags) or "-",
            "fma_peak_gflops_per_core": round(kernels.fma_peak_gflops(isa), 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024


#: Each block of an engine's timed runs follows untimed runs of it lasting this long (seconds).
LEAD_IN_S = 0.05


def interleaved(engines: Dict[str, Callable[[], object]], warmup: int = 5, runs: int = 50,
                max_seconds: Optional[float] = None, block: int = 5,
                lead_in_s: float = LEAD_IN_S) -> Dict[str, List[float]]:
    """Time each engine ``runs`` times after ``warmup`` untimed rounds, in rounds of ``block``
    consecutive runs per engine (so slow drifts of a shared machine hit all engines alike).
    Each block starts with untimed runs of the engine for ``lead_in_s`` seconds (at least one;
    one alone when there is one engine):
    thread pools that spin after a job would otherwise steal the cores from the next engine's
    runs and charge it for their idling. On the 2-core EPYC at two threads that lasted ~10 ms
    after tinymobile's pool, ~40 ms after ONNX Runtime's (TFLite's runs after it took 5.6-6.1 ms
    for seven runs, then 3.2), so one untimed run was not enough. Returns seconds per run for
    each engine."""
    for _ in range(warmup):
        for fn in engines.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in engines}
    start = time.perf_counter()
    while min(len(v) for v in times.values()) < runs:
        for name, fn in engines.items():
            lead = time.perf_counter()
            fn()
            while len(engines) > 1 and time.perf_counter() - lead < lead_in_s:
                fn()
            for _ in range(min(block, runs - len(times[name]))):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - start > max_seconds and \
                min(len(v) for v in times.values()) >= 5:
            break
    return times


def summarize(times: List[float], macs: int, batch: int = 1) -> Dict[str, float]:
    """Median / min latency (ms), throughput (images/s) and GFLOP/s of the median."""
    med = float(np.median(times))
    return {"median_ms": med * 1e3, "min_ms": float(np.min(times)) * 1e3,
            "images_per_s": batch / med, "gflops": 2 * macs * batch / med / 1e9, "runs": len(times)}


def profile(model: Model, batch: int = 1, warmup: int = 3, runs: int = 20) -> List[Dict[str, object]]:
    """Median wall time and GFLOP/s of every step of a pass of ``model``: a row per layer, and
    one for the first layers where they run fused (layer "conv0..dw4", kind "fused", the
    kernels of its layers)."""
    runner = model._runner
    plan = runner.acquire(batch)
    try:
        plan.input[...] = input_for(model, batch).view(plan.input.dtype)
        for _ in range(warmup):
            plan.run()
        per_run = np.array([plan.run_timed() for _ in range(runs)])
    finally:
        runner.release(plan)
    med = np.median(per_run, axis=0)
    summary = model.network.summary_rows()
    rows = []
    for (first, end), t in zip(plan.unit_layers, med):
        layers = summary[first:end]
        kernels = []
        for op, out in zip(runner.ops[first:end], plan.outputs[first:end]):
            name = op.kernel_path(rows=int(np.prod(out.shape[:-1])))
            if name not in kernels:
                kernels.append(name)
        macs = sum(row.macs for row in layers)
        fused = end - first > 1
        rows.append({"layer": f"{layers[0].name}..{layers[-1].name}" if fused else layers[0].name,
                     "kind": "fused" if fused else layers[0].kind, "ms": float(t) * 1e3,
                     "gflops": 2 * macs * batch / t / 1e9 if t > 0 else 0.0,
                     "share": float(t / med.sum()),
                     "kernel": ("row by row: " if fused else "") + ", ".join(kernels)})
    return rows


def format_profile(rows: List[Dict[str, object]]) -> str:
    """The profile as a table, the ukernel that ran each layer in the last column."""
    lines = [f"{'layer':<10} {'kind':<13} {'ms':>8} {'GFLOP/s':>8} {'share':>6}  kernel"]
    for r in rows:
        lines.append(f"{r['layer']:<10} {r['kind']:<13} {r['ms']:>8.3f} {r['gflops']:>8.1f} "
                     f"{100 * r['share']:>5.1f}%  {r.get('kernel', '')}")
    return "\n".join(lines)


def input_for(model: Model, batch: int = 1) -> np.ndarray:
    r = model.resolution
    dtype = model.dtype  # a quantized model takes quantized input
    if dtype in ("uint8", "int8"):
        info = np.iinfo(dtype)
        return np.random.default_rng(0).integers(info.min, info.max + 1, (batch, r, r, 3)).astype(dtype)
    return np.random.default_rng(0).uniform(-1, 1, (batch, r, r, 3)).astype(np.float32)


def default_threads_env() -> None:
    """Keep NumPy's BLAS from spinning threads that compete with the engines being timed."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def compare(name: str, model: Model, tflite_path, threads: int, batch: int, warmup: int, runs: int,
            with_peers: bool) -> dict:
    x = input_for(model, batch)
    engines = {"tinymobile": lambda: model.forward(x)}
    if with_peers and not model.is_quantized:
        # (quantized models: see benchmarks/bench_int8.py for TFLite on the same .tflite file)
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
    print(f"  {'engine':<12} {'median ms':>10} {'min ms':>8} {'img/s':>8} {'GFLOP/s':>8} {'ours/its time':>14}")
    for k, s in stats.items():
        print(f"  {k:<12} {s['median_ms']:>10.3f} {s['min_ms']:>8.3f} {s['images_per_s']:>8.1f} "
              f"{s['gflops']:>8.1f} {ours / s['median_ms']:>14.3f}")
    return {"name": name, "threads": threads, "batch": batch, "macs": model.macs, "engines": stats}


def sweep(threads: int, runs: int) -> list:
    """Latency of the 16 alpha x resolution variants (random weights, our engine)."""
    rows = []
    print(f"\nalpha x resolution sweep, threads={threads}")
    for alpha in (0.25, 0.5, 0.75, 1.0):
        for res in (128, 160, 192, 224):
            m = build(alpha, res, threads=threads)
            x = input_for(m)
            t = interleaved({"m": lambda: m.forward(x)}, warmup=3, runs=runs, max_seconds=3)["m"]
            s = summarize(t, m.macs)
            rows.append({"alpha": alpha, "resolution": res, "macs": m.macs, **s})
            print(f"  {alpha:<5} {res:<4} {m.macs / 1e6:>7.0f} M  {s['median_ms']:>8.3f} ms  {s['gflops']:>6.1f} GFLOP/s")
    return rows


def separable_vs_full(threads: int, runs: int) -> dict:
    sep = build(1.0, 224, threads=threads)
    full = build(1.0, 224, separable=False, threads=threads)
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



def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark_model-style options shared by `tinymobile bench` and `make bench`."""
    p.add_argument("--model", "-m", help="a tinymobile .npz model")
    p.add_argument("--tflite", help="a .tflite file with the same weights, for the TFLite column")
    p.add_argument("--alpha", "-a", type=float, help="random-weight model of this width")
    p.add_argument("--resolution", "-r", type=int, default=224, help="with --alpha (224)")
    p.add_argument("--threads", "-t", type=int, nargs="+", default=None, help="thread counts to time")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--profile", action="store_true", help="per-layer time and GFLOP/s")
    p.add_argument("--no-peers", action="store_true", help="skip ONNX Runtime and TFLite")
    p.add_argument("--sweep", action="store_true", help="also the 16 alpha x resolution variants "
                   "and the full-convolution model")
    p.add_argument("--out", type=Path, default=None, help="folder for the JSON (and PNG) results")


def run(args: argparse.Namespace, models: Optional[list] = None) -> dict:
    """Time each (name, model factory(threads) -> (Model, tflite path or None), thread counts)
    of ``models`` (default: --model or --alpha/--resolution), print, and save when --out is set."""
    for option, value, least in (("--runs", args.runs, 1), ("--warmup", args.warmup, 0),
                                 ("--batch", args.batch, 1)):
        if value < least:
            raise TinyMobileError(f"{option} must be at least {least}, got {value}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise TinyMobileError(f"--out {args.out}: exists and is not a folder (--out names the "
                              "folder the results are saved in)")
    info = cpu_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": info, "comparisons": []}
    if models is None:
        if args.model:
            factory = lambda t: (load(args.model, threads=t), args.tflite)  # noqa: E731
            name = os.path.basename(args.model)
        else:
            alpha = 1.0 if args.alpha is None else args.alpha
            factory = lambda t: (build(alpha, args.resolution, threads=t), args.tflite)  # noqa: E731
            name = f"random {alpha:g}_{args.resolution}"
        models = [(name, factory, args.threads or [kernels.default_threads()])]
    for name, factory, thread_list in models:
        for t in thread_list:
            m, tfl = factory(t)
            row = compare(name, m, tfl, t, args.batch, args.warmup, args.runs, not args.no_peers)
            if args.profile:
                row["profile"] = profile(m, args.batch)
                print(format_profile(row["profile"]))
            report["comparisons"].append(row)
    if args.sweep:
        report["sweep"] = sweep(1, max(10, args.runs // 4))
        report["separable_vs_full"] = separable_vs_full(1, 5)
    report["peak_rss_mb"] = peak_rss_mb()
    print(f"\npeak RSS {report['peak_rss_mb']:.0f} MiB")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
        print(f"saved {stem.with_suffix('.json')}")
        if "sweep" in report and plot(report["sweep"], stem.with_suffix(".png")):
            print(f"saved {stem.with_suffix('.png')}")
    return report
