"""Head-fitting speed (issue #13: fitting the head on 1000 images takes under a second): the time
``tinymobile.heads.fit`` takes on 1000 real embeddings (1.0_224 uint8 embedding extractor, the 107
photos of ../shared/images (imagenet-dev + samples) in 10 views each: the photo, its mirror, four
corner crops and their mirrors), 10 classes (ImageNet index // 100; the samples by their subject),
for imprinting and for logistic regression with the L2 cross-validation. Feature extraction is
not timed here (that is the engine's forward pass, see `make bench`).

    python -m benchmarks.bench_train [--images 1000] [--repeat 5]

Prints median and minimum seconds per fit (state + fit, what ``train`` spends after the features),
the CV's chosen L2 and its fold/grid sizes; and the same fit with NumPy's BLAS on its default
threads instead of one (tinymobile.blas), interleaved in the same process.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLE_CLASS = {"cat.bmp": 2, "bird.bmp": 0, "parrot.jpg": 0, "owl.jpg": 0, "dragonfly.bmp": 3,
                "grace_hopper.bmp": 4, "hot_dog.jpg": 9}


def embeddings(cache: Path):
    """(features (P, 10, D), class per photo (P,)) cached in ``cache``."""
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return z["features"], z["labels"]
    from tinymobile.augment import views
    from tinymobile.cli import load_model
    from tinymobile.preprocess import to_rgb_array
    dev = SHARED / "images" / "imagenet-dev"
    with open(dev / "LABELS.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    photos = [(dev / r["file"], int(r["class_1000"]) // 100) for r in rows]
    photos += [(SHARED / "images" / "samples" / s, c) for s, c in SAMPLE_CLASS.items()]
    model = load_model(str(SHARED / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"))
    feats = np.stack([model.features(views(to_rgb_array(str(p)), "crops")) for p, _ in photos])
    labels = np.array([c for _, c in photos])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, features=feats, labels=labels)
    return feats, labels


def main(argv=None) -> int:
    from tinymobile import heads
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/tinymobile-bench-train.npz"))
    args = ap.parse_args(argv)
    feats, photo_class = embeddings(args.cache)
    p, v, d = feats.shape
    x = feats.reshape(p * v, d)[:args.images]
    groups = np.repeat(np.arange(p), v)[:args.images]
    labels = [f"class{photo_class[g]}" for g in groups]
    print(f"{len(x)} embeddings of {d} features, {len(set(labels))} classes, "
          f"{len(np.unique(groups))} photos")
    for method in ("imprint", "logistic"):
        times = {"fit": [], "fit, BLAS default threads": []}
        for _ in range(args.repeat):  # interleaved: machine noise hits both alike
            for how in times:
                state = heads.TrainingState.empty(d)
                t0 = time.perf_counter()
                state.add(x, labels, groups=groups)
                if how == "fit":
                    head = heads.fit(state, method)
                else:  # the same fit without tinymobile.blas.one_thread
                    head = heads._fit(state, method, heads.DEFAULT_SCALE, None, heads.L2_GRID, None)
                times[how].append(time.perf_counter() - t0)
        extra = ""
        if head.cv is not None:
            extra = (f"  l2 {head.l2:g} by {head.cv.folds}-fold CV over {len(head.cv.grid)} "
                     "strengths")
        for how, t in times.items():
            print(f"{method:<9} {how:<26} median {np.median(t):.3f} s  min {np.min(t):.3f} s "
                  f"({args.repeat} runs){extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
