"""Few-shot accuracy of the new-head methods (issue #13): coarse categories built from
../shared/images/imagenet-dev (one photo per ImageNet class, every 10th class) and
../shared/images/samples, K training photos per category, the rest of the category's photos as
the test set, averaged over many random episodes.

    python -m benchmarks.fewshot                        # K = 1, 5, 10; imprint and logistic
    python -m benchmarks.fewshot --augment none flip crops --episodes 200

Features: the 1.0_224 uint8 embedding extractor (../shared/models), computed once per view
(original, mirror, corner crops and their mirrors) and cached in --cache. Augmentation adds the
training photos' extra views to the training set (test photos: the original view only).
Categories with fewer than K + 1 photos are left out of that K (said in the output). "int head":
the same heads quantized as ``tinymobile train`` quantizes them for this uint8 base, evaluated
with the integer kernels' fixed-point arithmetic (what the saved model answers).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEV = SHARED / "images" / "imagenet-dev"
SAMPLES = SHARED / "images" / "samples"
EXTRACTOR = SHARED / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"

#: Coarse-category tasks: category -> ImageNet class indices (0..999) of imagenet-dev photos, plus
#: sample photos. "animals": mostly animals (the issue's dog / bird / fish / insect kind); "mixed":
#: animals and man-made things (vehicle / structure / clothing: harder, vehicle and structure are
#: often confused).
TASKS: Dict[str, Dict[str, tuple]] = {
    "animals": {
        "dog": (list(range(160, 261, 10)), []),
        "bird": ([10, 20, 80, 90, 100, 130, 140], ["parrot.jpg", "bird.bmp", "owl.jpg"]),
        "mammal": ([150, 270, 280, 290, 330, 340, 350, 360, 370, 380], ["cat.bmp"]),
        "invertebrate": ([70, 110, 120, 300, 310, 320], ["dragonfly.bmp"]),
        "fish/reptile/amphibian": ([0, 30, 40, 50, 60, 390], []),
        "vehicle": ([450, 510, 660, 670, 690, 780, 820, 870, 880], []),
        "food": ([930, 940, 950, 960, 990], ["hot_dog.jpg"]),
    },
    "mixed": {
        "dog": (list(range(160, 261, 10)), []),
        "bird": ([10, 20, 80, 90, 100, 130, 140], ["parrot.jpg", "bird.bmp", "owl.jpg"]),
        "mammal": ([150, 270, 280, 290, 330, 340, 350, 360, 370, 380], ["cat.bmp"]),
        "invertebrate": ([70, 110, 120, 300, 310, 320], ["dragonfly.bmp"]),
        "vehicle": ([450, 510, 660, 670, 690, 780, 820, 870, 880], []),
        "structure": ([410, 460, 500, 540, 580, 860, 900], []),
        "clothing": ([400, 490, 560, 570, 610, 630, 770], []),
    },
}


def dataset(task: str) -> List[tuple]:
    """[(path, category)] of every photo of TASKS[task]."""
    with open(DEV / "LABELS.tsv", newline="") as f:
        by_class = {int(r["class_1000"]): r["file"] for r in csv.DictReader(f, delimiter="\t")}
    out = []
    for cat, (classes, samples) in TASKS[task].items():
        out += [(str(DEV / by_class[c]), cat) for c in classes]
        out += [(str(SAMPLES / s), cat) for s in samples]
    return out


def features(paths: List[str], augment: str, cache: Path) -> np.ndarray:
    """(N, V, D) features of every view of every photo (cached)."""
    from tinymobile.augment import views
    from tinymobile.cli import load_model
    from tinymobile.preprocess import to_rgb_array
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / f"fewshot-{augment}-{len(paths)}-{hashlib.sha1(repr(paths).encode()).hexdigest()[:10]}.npz"
    if f.exists():
        with np.load(f, allow_pickle=False) as z:
            if list(z["paths"]) == paths:
                return z["features"]
    model = load_model(str(EXTRACTOR))
    out = []
    t0 = time.perf_counter()
    for p in paths:
        out.append(model.features(views(to_rgb_array(p), augment)))
    print(f"features ({augment}): {len(paths)} photos x {out[0].shape[0]} views in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    feats = np.stack(out)
    np.savez(f, paths=np.array(paths), features=feats)
    return feats


def integer_top1(head, pool_q, x_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Top-1 of the deployed integer head (uint8, quantized as tinymobile train does) on test
    features, by the fixed-point arithmetic of the integer kernels."""
    from tinymobile import heads
    from tinymobile.fixedpoint import Requant, requantize
    scale, zp = pool_q
    q = lambda x: np.clip(np.round(x / np.float32(scale)) + zp, 0, 255)
    qh = heads.quantize_head(head.w, head.b, scale, zp, "uint8", q(x_train))
    acc = (q(x_test).astype(np.int64) - zp) @ (qh.w.astype(np.int64) - qh.weight_zero_point) + qh.b
    rq = Requant(zp, qh.weight_zero_point, qh.multiplier, qh.shift, qh.output_zero_point, (0, 255), "uint8")
    return requantize(acc, rq).astype(np.int64).argmax(axis=1)


def episode_accuracy(feats: np.ndarray, cats: np.ndarray, k: int, episodes: int,
                     methods: List[str], pool_q=None) -> dict:
    from tinymobile import heads
    names = [c for c in dict.fromkeys(cats) if (cats == c).sum() >= k + 1]
    res = {m: [] for m in methods}
    res_int = {m: [] for m in methods}
    fit_s = {m: [] for m in methods}
    l2s = []
    for e in range(episodes):
        rng = np.random.default_rng(1000 * k + e)
        train, test = [], []
        for c in names:
            idx = rng.permutation(np.flatnonzero(cats == c))
            train += [(i, c) for i in idx[:k]]
            test += [(i, c) for i in idx[k:]]
        state = heads.TrainingState.empty(feats.shape[2])
        x = np.concatenate([feats[i] for i, _ in train])
        labels = [c for i, c in train for _ in range(feats.shape[1])]
        state.add(x, labels, groups=[i for i, _ in train for _ in range(feats.shape[1])])
        xt = feats[[i for i, _ in test], 0]
        yt = np.array([state.classes.index(c) for _, c in test])
        for m in methods:
            head = heads.fit(state, m)
            fit_s[m].append(head.seconds)
            if m == "logistic":
                l2s.append(head.l2)
            pred = (xt @ head.w + head.b).argmax(axis=1)
            res[m].append(float((pred == yt).mean()))
            if pool_q is not None:
                res_int[m].append(float((integer_top1(head, pool_q, x, xt) == yt).mean()))
    out = {"categories": names, "test_per_episode": len(test), "episodes": episodes}
    for m in methods:
        a = np.array(res[m])
        out[m] = {"top1": float(a.mean()), "stderr": float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0,
                  "fit_ms_median": 1000 * float(np.median(fit_s[m]))}
        if res_int[m]:
            out[m]["top1_integer_head"] = float(np.mean(res_int[m]))
    if l2s:
        vals, counts = np.unique(l2s, return_counts=True)
        out["logistic"]["l2_chosen"] = {f"{v:g}": int(n) for v, n in zip(vals, counts)}
    return out


def export(root: Path, task: str, k: int) -> int:
    """One episode as folders: K photos per category under train/, the rest under test/."""
    data = dataset(task)
    rng = np.random.default_rng(0)
    for cat in dict.fromkeys(c for _, c in data):
        paths = [p for p, c in data if c == cat]
        if len(paths) < k + 1:
            continue
        order = rng.permutation(len(paths))
        name = cat.replace("/", "-")
        for split, idx in (("train", order[:k]), ("test", order[k:])):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in idx:
                link = folder / os.path.basename(paths[i])
                if not link.exists():
                    link.symlink_to(os.path.abspath(paths[i]))
    print(f"wrote {root}/train and {root}/test ({task}, K={k})")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--k", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--augment", nargs="+", default=["none", "flip", "crops"])
    ap.add_argument("--methods", nargs="+", default=["imprint", "logistic"])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "tinymobile-fewshot")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--export", type=Path, metavar="DIR",
                    help="write one episode (--task's first, K's first, seed 0) as DIR/train/<category>/ "
                         "and DIR/test/<category>/ (symbolic links) for tinymobile train / eval, and stop")
    args = ap.parse_args(argv)
    if args.export:
        return export(args.export, args.task[0], args.k[0])
    from tinymobile.cli import load_model
    net = load_model(str(EXTRACTOR)).network
    pq = net.layers[net.pool_index].quant
    pool_q = (float(pq.output_scale), int(pq.output_zero_point))
    results = {}
    for task, aug in [(t, a) for t in args.task for a in args.augment]:
        data = dataset(task)
        paths = [p for p, _ in data]
        cats = np.array([c for _, c in data])
        feats = features(paths, aug, args.cache)
        for k in args.k:
            r = episode_accuracy(feats, cats, k, args.episodes, args.methods, pool_q)
            results[f"{task}/{aug}/K={k}"] = r
            line = "  ".join(f"{m} {r[m]['top1']:.3f}±{r[m]['stderr']:.3f} (int head "
                             f"{r[m]['top1_integer_head']:.3f}, fit {r[m]['fit_ms_median']:.1f} ms)"
                             for m in args.methods)
            print(f"{task:<7} augment={aug:<5} K={k:<2} {len(r['categories'])} categories, "
                  f"{r['test_per_episode']} test photos/episode, {r['episodes']} episodes: {line}"
                  + (f"  l2 {r['logistic'].get('l2_chosen')}" if "logistic" in r else ""))
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
