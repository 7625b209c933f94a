"""--fast-decode's effect: top-1 / top-5 on ../shared/images/imagenet-dev (LABELS.tsv) with the
exact and the reduced-scale JPEG decode, how many top-1 answers change, and the decode +
preprocess time per image (one thread, median of --rounds).

    python -m benchmarks.fast_decode                      # the real uint8 models of ../shared
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tinymobile
from tinymobile import cli, pipeline

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEV = SHARED / "images" / "imagenet-dev"
NAMES = ["0.25_128", "0.5_160", "0.75_192"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    truth = cli.read_labels_tsv(str(DEV / "LABELS.tsv"), 1001)
    paths = [str(DEV / f) for f in truth]
    labels = np.array(list(truth.values()))
    print(f"{len(paths)} imagenet-dev images; decode + preprocess ms/img on one thread")
    print(f"{'model':<10} {'top-1 exact':>11} {'top-1 fast':>10} {'top-5 exact':>11} {'top-5 fast':>10} "
          f"{'top-1 changed':>13} {'ms exact':>9} {'ms fast':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            npz = Path(tmp) / f"{name}.npz"
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli.main(["-q", "convert", str(SHARED / "models" / f"mobilenet_v1_{name}_quant.tflite"),
                                 "-o", str(npz)]) == 0
            model = tinymobile.load(npz)
            row = {}
            for fast in (False, True):
                logits = pipeline.logits_of(model, paths, fast_decode=fast)
                order = np.argsort(-logits, axis=1, kind="stable")[:, :5]
                stages = pipeline.Stages(model, fast_decode=fast)
                times = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    for p in paths:
                        stages.prepare(p)
                    times.append((time.perf_counter() - t0) / len(paths) * 1e3)
                row[fast] = (order, float(np.mean(order[:, 0] == labels)),
                             float(np.mean((order == labels[:, None]).any(axis=1))), statistics.median(times))
            changed = int(np.sum(row[False][0][:, 0] != row[True][0][:, 0]))
            print(f"{name:<10} {row[False][1]:>11.2f} {row[True][1]:>10.2f} {row[False][2]:>11.2f} "
                  f"{row[True][2]:>10.2f} {changed:>13} {row[False][3]:>9.2f} {row[True][3]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
