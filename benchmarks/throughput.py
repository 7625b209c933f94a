"""`make bench-throughput`: images per second classifying a folder of JPEGs, end to end.

Engines, on the same images (the 100 imagenet-dev JPEGs of ../shared repeated to --images
files) and the same models:
  cli          `tinymobile predict DIR -f json` as a user runs it (whole process: start-up,
               model load, decode, preprocess, inference, output)
  api          `Model.predict(paths)` in this process (the same pipeline, no start-up)
  tflite loop  benchmarks/tflite_loop.py: Pillow decode, central crop, bilinear resize, invoke on
               2 threads, one image after the other (whole process, like cli)
  ort loop     benchmarks/ort_loop.py: the same loop on ONNX Runtime (float models only)
  ray 1 / 2    tinymobile.ray_data.classify on a local Ray with 1 actor x all cores and
               2 actors x half the cores (Ray started beforehand, not timed)
CPU ms/img: user + system CPU time of the run per image (all threads; not for Ray), what the
work costs whatever the neighbours do. Rounds interleave the engines (each engine runs once per round) so a busy neighbour slows all of
them alike; the median and best round are reported. JSON (and a PNG with matplotlib) under
benchmarks/results/.

    python -m benchmarks.throughput                       # 3 models, 900 images, 3 rounds
    python -m benchmarks.throughput --models uint8_0.5_160 --rounds 1 --images 200 --no-ray
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from tinymobile.benchmark import cpu_info, default_threads_env

default_threads_env()

import tinymobile  # noqa: E402
from tinymobile import cli, pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "results"
#: name -> (TFLite file the model converts from, whether ONNX Runtime can run it)
MODELS = {
    "uint8_0.5_160": (SHARED / "models" / "mobilenet_v1_0.5_160_quant.tflite", False),
    "float_0.5_160": (SHARED / "fixtures" / "mobilenet_0.5_160_f32.tflite", True),
    "float_1.0_224": (SHARED / "fixtures" / "mobilenet_1.0_224_f32.tflite", True),
}


def load_average() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def image_folder(dst: Path, count: int) -> Path:
    """``count`` JPEGs: the imagenet-dev ones, repeated (symbolic links, distinct names)."""
    src = sorted((SHARED / "images" / "imagenet-dev").glob("*.JPEG"))
    if not src:
        raise SystemExit("needs ../shared/images/imagenet-dev")
    dst.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        os.symlink(src[k % len(src)], dst / f"{k:05d}_{src[k % len(src)].name}")
    return dst


#: CPU seconds (user + system) the last engine run used, or None where it cannot be told (Ray's
#: actors are other processes).
LAST_CPU: List[Optional[float]] = [None]


def _cpu(who) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed_process(argv: List[str]) -> float:
    c0 = _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    LAST_CPU[0] = _cpu(resource.RUSAGE_CHILDREN) - c0
    return wall


def timed_call(fn: Callable[[], object]) -> float:
    c0 = _cpu(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    LAST_CPU[0] = _cpu(resource.RUSAGE_SELF) - c0
    return wall


def engines_for(name: str, npz: Path, tflite: Path, onnx_ok: bool, folder: Path, paths: List[str],
                cores: int, with_ray: bool, sweep: List[str] = ()) -> Dict[str, Callable[[], float]]:
    """name -> a function that classifies every image once and returns the seconds it took."""
    py = sys.executable
    out: Dict[str, Callable[[], float]] = {
        "cli": lambda: timed_process([py, "-m", "tinymobile", "predict", str(folder), "-m", str(npz),
                                      "-f", "json", "-q"]),
        "tflite loop": lambda: timed_process([py, str(ROOT / "benchmarks" / "tflite_loop.py"),
                                              str(tflite), str(folder), str(cores)]),
    }
    model = tinymobile.load(npz)

    out["api"] = lambda: timed_call(lambda: model.predict(paths))
    for conf in sweep:  # "threads,jobs,batch[,streams]": pipeline settings, to pick defaults
        t, j, b, st = ([int(v) for v in conf.split(",")] + [1])[:4]
        m = tinymobile.load(npz, threads=t)
        out[f"api t{t} j{j} b{b} s{st}"] = lambda m=m, j=j, b=b, st=st: timed_call(
            lambda: pipeline.logits_of(m, paths, jobs=j, batch=b, streams=st))
    if onnx_ok and _importable("onnxruntime") and _importable("onnx"):
        out["ort loop"] = lambda: timed_process([py, str(ROOT / "benchmarks" / "ort_loop.py"),
                                                 str(npz), str(folder), str(cores)])
    if with_ray:
        import ray

        from tinymobile import ray_data
        ds = ray.data.from_items([{"path": p} for p in paths])
        for actors in (1, 2):
            def ray_run(actors=actors) -> float:
                t0 = time.perf_counter()
                ray_data.classify(ds, npz, actors=actors, threads_per_actor=max(1, cores // actors),
                                  batch_size=64).materialize()
                LAST_CPU[0] = None
                return time.perf_counter() - t0
            out[f"ray {actors} actor{'s' if actors > 1 else ''}"] = ray_run
    return out


def _importable(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def plot(report: dict, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    models = list(report["models"])
    engines = []
    for m in models:
        for e in report["models"][m]["engines"]:
            if e not in engines:
                engines.append(e)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(engines)
    for k, e in enumerate(engines):
        xs, ys = [], []
        for i, m in enumerate(models):
            s = report["models"][m]["engines"].get(e)
            if s:
                xs.append(i + k * width)
                ys.append(s["median_images_per_s"])
        ax.bar(xs, ys, width, label=e)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(models))], models)
    ax.set_ylabel("images / s (median round; higher is better)")
    ax.set_title(f"classifying {report['images']} JPEGs, {report['machine']['cores']} cores")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    ap.add_argument("--images", type=int, default=900)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-cli", action="store_true", help="skip the whole-process engines")
    ap.add_argument("--sweep", nargs="*", default=[], metavar="T,J,B[,S]",
                    help="also time the pipeline with model threads T, jobs J, batch B, streams S")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    cores = tinymobile.kernels.default_threads()
    with_ray = not args.no_ray and _importable("ray") and _importable("ray.data")
    tmp = Path(tempfile.mkdtemp(prefix="tinymobile-throughput-"))
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": cpu_info(),
              "images": args.images, "rounds": args.rounds, "load_average_before": load_average(),
              "models": {}}
    try:
        # Byte-compile the package first, as a pip install does (an editable install under
        # PYTHONDONTWRITEBYTECODE=1 would compile every module at each CLI start).
        import compileall
        compileall.compile_dir(str(ROOT / "tinymobile"), quiet=1)
        folder = image_folder(tmp / "images", args.images)
        paths = [str(p) for p in sorted(folder.iterdir())]
        if with_ray:
            import ray
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
        print(f"machine: {report['machine']['cpu']}, {cores} cores; load average "
              f"{report['load_average_before']}; {args.images} images, {args.rounds} rounds")
        for name in args.models:
            tflite, onnx_ok = MODELS[name]
            npz = tmp / f"{name}.npz"
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli.main(["-q", "convert", str(tflite), "-o", str(npz)]) == 0
            engines = engines_for(name, npz, tflite, onnx_ok, folder, paths, cores, with_ray,
                                  args.sweep)
            if args.no_cli:
                engines = {e: f for e, f in engines.items() if e not in ("cli", "ort loop")}
            for fn in engines.values():  # warm-up: page cache, imports, Ray actors' first start
                fn()
            times: Dict[str, List[float]] = {e: [] for e in engines}
            cpu: Dict[str, List[float]] = {e: [] for e in engines}
            for _ in range(args.rounds):
                for e, fn in engines.items():
                    times[e].append(fn())
                    if LAST_CPU[0] is not None:
                        cpu[e].append(LAST_CPU[0])
            base = args.images / statistics.median(times["tflite loop"])
            stats = {}
            print(f"\n{name}")
            print(f"  {'engine':<14} {'median img/s':>12} {'best img/s':>11} {'÷ tflite loop':>14} "
                  f"{'CPU ms/img':>11}")
            for e, ts in times.items():
                med = args.images / statistics.median(ts)
                cpu_ms = 1e3 * statistics.median(cpu[e]) / args.images if cpu[e] else None
                stats[e] = {"seconds": ts, "median_images_per_s": med,
                            "best_images_per_s": args.images / min(ts), "ratio_to_tflite_loop": med / base,
                            "cpu_ms_per_image": cpu_ms}
                print(f"  {e:<14} {med:>12.0f} {args.images / min(ts):>11.0f} {med / base:>14.2f} "
                      f"{cpu_ms if cpu_ms is not None else float('nan'):>11.2f}")
            report["models"][name] = {"engines": stats}
        report["load_average_after"] = load_average()
        print(f"\nload average after: {report['load_average_after']}")
    finally:
        if with_ray:
            import ray
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report["load_note"] = ("os.getloadavg() before and after: the machine is shared; a busy "
                           "neighbour slows every engine, the interleaved rounds share it")
    stem = args.out / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"saved {stem.with_suffix('.json')}")
    if plot(report, stem.with_suffix(".png")):
        print(f"saved {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
