"""Soak test: thousands of predictions (and optionally model re-creations) in one process,
printing resident memory and OS thread count as it goes, so a slow leak shows as a rising column.

    python -m benchmarks.soak                              # 5000 predictions, random 0.25/128 model
    python -m benchmarks.soak --model m.npz --iterations 20000 --threads 2
    python -m benchmarks.soak --images ../shared/images/samples --reload-every 500

    python -m benchmarks.soak --pipeline --iterations 10000 --model m.npz   # predict's pipeline

--pipeline streams the images (a lazy, endless cycle of the files) through tinymobile.pipeline,
as `tinymobile predict DIR` does, reporting RSS every --report-every images: it must stay flat
(the pipeline holds a bounded window of images, never all of them).

Exit status 1 when RSS grew by more than --max-growth-mb between the first report after warm-up
and the end (default 16 MB), else 0. Not part of `make test` (it runs for minutes).
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

import tinymobile

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "images" / "samples"


def proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def make_model(args):
    if args.model:
        return tinymobile.load(args.model, threads=args.threads)
    return tinymobile.build(alpha=args.alpha, resolution=args.resolution, threads=args.threads)


def inputs(args):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in [(480, 640), (224, 224), (97, 61)]]
    folder = Path(args.images) if args.images else SAMPLES
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")) \
        if folder.is_dir() else []
    return arrays + files


class RssReport:
    """The soak's progress rows (count, seconds, rate, RSS, threads) every ``report_every``
    counts, the RSS at ``warmup`` taken as the baseline, and the verdict on its growth.
    ``rate(count, seconds)`` gives the third column for ``count`` more items in ``seconds``."""

    def __init__(self, args, title: str, rate_header: str, rate):
        self.args, self.rate = args, rate
        self.baseline = None
        self.t0 = self.last_t = time.perf_counter()
        self.last_i = 0
        print(f"{title:>10} {'seconds':>9} {rate_header:>12} {'RSS MB':>9} {'threads':>8}")

    def step(self, i: int) -> None:
        args = self.args
        if not (i == args.warmup or i % args.report_every == 0 or i == args.iterations):
            return
        gc.collect()
        now = time.perf_counter()
        rss = proc_status("VmRSS") / 1024
        rate = self.rate(i - self.last_i, now - self.last_t)
        print(f"{i:>10} {now - self.t0:>9.1f} {rate:>12.2f} {rss:>9.1f} {proc_status('Threads'):>8}",
              flush=True)
        self.last_t, self.last_i = now, i
        if i == args.warmup:
            self.baseline = rss

    def verdict(self) -> int:
        growth = proc_status("VmRSS") / 1024 - (self.baseline or 0)
        print(f"RSS growth after warm-up: {growth:+.1f} MB (limit {self.args.max_growth_mb} MB)")
        return 1 if self.baseline is not None and growth > self.args.max_growth_mb else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a tinymobile .npz (default: a random model, see --alpha)")
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--report-every", type=int, default=500)
    ap.add_argument("--reload-every", type=int, default=0,
                    help="drop the model and create it again every N iterations (0: never)")
    ap.add_argument("--images", help="a folder of images to cycle through (default: ../shared samples)")
    ap.add_argument("--max-growth-mb", type=float, default=16.0)
    ap.add_argument("--pipeline", action="store_true",
                    help="stream --iterations image files through tinymobile.pipeline")
    ap.add_argument("--jobs", type=int, default=None, help="pipeline workers (default: per core)")
    args = ap.parse_args(argv)

    model = make_model(args)
    if args.pipeline:
        return soak_pipeline(model, args)
    images = inputs(args)
    print(f"soak: {model!r}, {len(images)} inputs ({sum(isinstance(i, Path) for i in images)} files), "
          f"{args.iterations} iterations")
    report = RssReport(args, "iteration", "per call ms", lambda n, dt: 1000 * dt / max(n, 1))
    for i in range(1, args.iterations + 1):
        if args.reload_every and i % args.reload_every == 0:
            del model
            gc.collect()
            model = make_model(args)
        img = images[i % len(images)]
        probs = model.predict(img) if i % 10 else model.predict(images[:3])
        if not np.isfinite(probs).all():
            print(f"iteration {i}: non-finite probabilities", file=sys.stderr)
            return 2
        report.step(i)
    return report.verdict()


def soak_pipeline(model, args) -> int:
    import itertools

    from tinymobile import pipeline
    files = [str(p) for p in inputs(args) if isinstance(p, Path)]
    if args.images is None:
        dev = SAMPLES.parent / "imagenet-dev"
        files += sorted(str(p) for p in dev.glob("*.JPEG"))
    if not files:
        print("soak: no image files", file=sys.stderr)
        return 2
    stream = itertools.islice(itertools.cycle(files), args.iterations)
    print(f"soak --pipeline: {model!r}, {len(files)} files cycled, {args.iterations} images")
    report = RssReport(args, "images", "images/s", lambda n, dt: n / max(dt, 1e-9))
    for r in pipeline.run(model, stream, jobs=args.jobs):
        if r.error is not None or not np.isfinite(r.logits).all():
            print(f"image {r.index + 1}: {r.error or 'non-finite logits'}", file=sys.stderr)
            return 2
        report.step(r.index + 1)
    return report.verdict()


if __name__ == "__main__":
    sys.exit(main())
