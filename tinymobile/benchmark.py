"""Benchmark harness in the manner of TFLite's benchmark_model: warm-up, interleaved timed runs
of several engines in one process, medians and minimums, per-layer profile, machine facts.

Everything here measures; nothing asserts a speed (speed goals live in benchmarks/, as ratios)."""
from __future__ import annotations

import os
import platform
import resource
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from . import kernels
from .model import Model


def cpu_info() -> Dict[str, object]:
    """CPU model name, usable cores, kernel ISA and the measured single-core FMA peak."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    isa = kernels.default_isa()
    return {"cpu": name, "machine": platform.machine(), "cores": kernels.default_threads(),
            "isa": isa, "fma_peak_gflops_per_core": round(kernels.fma_peak_gflops(isa), 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024


def interleaved(engines: Dict[str, Callable[[], object]], warmup: int = 5, runs: int = 50,
                max_seconds: Optional[float] = None) -> Dict[str, List[float]]:
    """Time each engine ``runs`` times, round-robin (so machine noise hits all alike), after
    ``warmup`` untimed rounds. Returns seconds per run for each engine."""
    for _ in range(warmup):
        for fn in engines.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in engines}
    start = time.perf_counter()
    for _ in range(runs):
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - start > max_seconds and len(times[name]) >= 5:
            break
    return times


def summarize(times: List[float], macs: int, batch: int = 1) -> Dict[str, float]:
    """Median / min latency (ms), throughput (images/s) and GFLOP/s of the median."""
    med = float(np.median(times))
    return {"median_ms": med * 1e3, "min_ms": float(np.min(times)) * 1e3,
            "images_per_s": batch / med, "gflops": 2 * macs * batch / med / 1e9, "runs": len(times)}


def profile(model: Model, batch: int = 1, warmup: int = 3, runs: int = 20) -> List[Dict[str, object]]:
    """Median wall time and GFLOP/s of every layer of ``model``."""
    runner = model._runner
    plan = runner.acquire(batch)
    try:
        plan.input[...] = np.random.default_rng(0).uniform(-1, 1, plan.input.shape)
        for _ in range(warmup):
            plan.run()
        per_run = np.array([plan.run_timed() for _ in range(runs)])
    finally:
        runner.release(plan)
    med = np.median(per_run, axis=0)
    rows = []
    for row, t in zip(model.network.summary_rows(), med):
        rows.append({"layer": row.name, "kind": row.kind, "ms": float(t) * 1e3,
                     "gflops": 2 * row.macs * batch / t / 1e9 if t > 0 else 0.0,
                     "share": float(t / med.sum())})
    return rows


def format_profile(rows: List[Dict[str, object]]) -> str:
    lines = [f"{'layer':<8} {'kind':<13} {'ms':>8} {'GFLOP/s':>8} {'share':>6}"]
    for r in rows:
        lines.append(f"{r['layer']:<8} {r['kind']:<13} {r['ms']:>8.3f} {r['gflops']:>8.1f} "
                     f"{100 * r['share']:>5.1f}%")
    return "\n".join(lines)


def input_for(model: Model, batch: int = 1) -> np.ndarray:
    r = model.resolution
    return np.random.default_rng(0).uniform(-1, 1, (batch, r, r, 3)).astype(np.float32)


def default_threads_env() -> None:
    """Keep NumPy's BLAS from spinning threads that compete with the engines being timed."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
