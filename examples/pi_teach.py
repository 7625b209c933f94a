"""Teach a Raspberry Pi your own classes: collect a few camera frames per class (or use folders),
train a classifier head on the device, then classify live.

    python examples/pi_teach.py collect ripe unripe        # camera: 10 frames per class
    python examples/pi_teach.py train                      # -> teach/model.npz
    python examples/pi_teach.py live                       # classify camera frames, Ctrl-C stops
    python examples/pi_teach.py live photos/               # ... or the images of a folder

``collect`` saves frames under ``teach/<class>/`` (Enter takes the next frame, or ``--every S``
seconds); photos you already have can go there instead (one folder per class, any image format
tinymobile reads). ``train`` is ``tinymobile train teach/ --model BASE -o teach/model.npz``:
features of every photo from the base model (``--model``, default mobilenet_v1_0.5_160_quant,
downloaded on first use; an integer model stays integer), a new last layer fitted in NumPy in
well under a second. Train again after adding photos or classes (a model file can also grow
without the old photos: ``tinymobile train NEW/ --model teach/model.npz --add -o ...``).

The camera needs picamera2 (Raspberry Pi OS: ``sudo apt install python3-picamera2``, in a venv
made with ``--system-site-packages``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Iterator, List, Tuple

import numpy as np

import tinymobile

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
DEFAULT_BASE = "mobilenet_v1_0.5_160_quant"


def camera_frames(size: int = 320) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames from the Pi camera, forever (ImportError without picamera2)."""
    from picamera2 import Picamera2  # optional: only for the camera

    camera = Picamera2()
    camera.configure(camera.create_preview_configuration(main={"size": (size, size), "format": "RGB888"}))
    camera.start()

    def frames():
        try:
            while True:
                yield np.ascontiguousarray(camera.capture_array()[:, :, 2::-1])  # BGR in memory
        finally:
            camera.stop()
    return frames()


def folder_images(folder: str) -> Iterator[Tuple[str, str]]:
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(IMAGE_EXTENSIONS):
            yield name, os.path.join(folder, name)


def collect(root: str, classes: List[str], count: int, every: float) -> int:
    from PIL import Image
    from tinymobile.heads import check_label
    frames = camera_frames()
    for name in classes:
        check_label(name)
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        start = len(os.listdir(folder))
        print(f"class {name!r}: {count} frames into {folder}/")
        for k in range(count):
            if every > 0:
                time.sleep(every)
            else:
                input(f"  point the camera at {name} and press Enter ({k + 1}/{count}) ")
            path = os.path.join(folder, f"{name}_{start + k:04d}.jpg")
            Image.fromarray(next(frames)).save(path, quality=95)
    return 0


def train(root: str, base: str, out: str, method: str, validate: float) -> int:
    from tinymobile.cli import IMAGE_EXTENSIONS as EXTENSIONS, load_model
    from tinymobile.training import class_folders
    paths, labels = class_folders(root, EXTENSIONS)
    model = load_model(base)
    new = model.train_classifier(paths, labels, method=method, progress=True,
                                 validate=validate or None)
    new.save(out, overwrite=True)
    print(f"wrote {out}: {new.training_report.summary()}")
    return 0


def live(model_path: str, folder: str, top: int) -> int:
    model = tinymobile.load(model_path)
    print(f"{model!r}: {', '.join(model.labels)}", flush=True)
    if folder:
        if not os.path.isdir(folder):
            print(f"error: {folder}: not a folder", file=sys.stderr)
            return 1
        frames = ((name, img) for name, img in folder_images(folder))
    else:
        frames = ((f"frame {n}", f) for n, f in enumerate(camera_frames()))
    try:
        for name, image in frames:
            t0 = time.perf_counter()
            best = model.classify(image, top=top)
            ms = (time.perf_counter() - t0) * 1e3
            print(f"{name}: " + ", ".join(f"{label} {p:.0%}" for label, p in best) + f"  ({ms:.0f} ms)",
                  flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="teach", help="one folder per class (default teach/)")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("collect", help="save camera frames per class")
    p.add_argument("classes", nargs="+")
    p.add_argument("--count", type=int, default=10, help="frames per class (10)")
    p.add_argument("--every", type=float, default=0, help="seconds between frames (default: Enter)")
    p = sub.add_parser("train", help="train the classifier on --dir")
    p.add_argument("--model", default=DEFAULT_BASE, help=f"base model (default {DEFAULT_BASE})")
    p.add_argument("--method", choices=("logistic", "imprint"))
    p.add_argument("--validate", type=float, default=0, help="held-out fraction to report (e.g. 0.2)")
    p = sub.add_parser("live", help="classify camera frames (or a folder's images)")
    p.add_argument("folder", nargs="?")
    p.add_argument("--top", type=int, default=2)
    args = parser.parse_args(argv)
    out = os.path.join(args.dir, "model.npz")
    try:
        if args.step == "collect":
            return collect(args.dir, args.classes, args.count, args.every)
        if args.step == "train":
            return train(args.dir, args.model, out, args.method, args.validate)
        return live(out, args.folder, args.top)
    except ImportError:
        print("no camera: picamera2 is not installed (sudo apt install python3-picamera2); "
              "put photos in one folder per class instead", file=sys.stderr)
        return 2
    except tinymobile.TinyMobileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
