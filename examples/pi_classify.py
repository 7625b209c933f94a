"""Classify camera frames on a Raspberry Pi, or the images of a folder.

    python examples/pi_classify.py                 # Pi camera (or ./frames/ without picamera2)
    python examples/pi_classify.py photos/         # the images of a folder

With a folder, classifies each image once. Without one, captures frames from the camera with
picamera2 (Raspberry Pi OS: ``sudo apt install python3-picamera2``, visible in a venv made with
``--system-site-packages``) until Ctrl-C; when picamera2 is not installed, it falls back to the
folder ``frames/``.
Prints the top labels and the time each frame took. ``--model`` defaults to the official
α 0.5 / 160 px model, downloaded into tinymobile's cache on first use.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Iterator, Tuple

import numpy as np

import tinymobile
from tinymobile.stream import classify_latest

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
FALLBACK_FOLDER = "frames"


def folder_frames(folder: str) -> Iterator[Tuple[str, str]]:
    """(name, path) of every image file in ``folder``, sorted by name."""
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(IMAGE_EXTENSIONS):
            yield name, os.path.join(folder, name)


def camera_frames(size: int) -> Iterator[Tuple[str, np.ndarray]]:
    """(frame number, (H, W, 3) uint8 RGB) from the Pi camera, forever. ImportError without
    picamera2 (raised here, not at the first frame)."""
    from picamera2 import Picamera2  # optional: only for the camera loop

    return _capture(Picamera2(), size)


def _capture(camera, size: int) -> Iterator[Tuple[str, np.ndarray]]:
    # A small preview stream: the model resizes to its resolution anyway. Picamera2's "RGB888"
    # is B, G, R byte order in memory, so the channels are flipped below.
    camera.configure(camera.create_preview_configuration(main={"size": (size, size), "format": "RGB888"}))
    camera.start()
    try:
        n = 0
        while True:
            frame = camera.capture_array()
            yield f"frame {n}", np.ascontiguousarray(frame[:, :, 2::-1])
            n += 1
    finally:
        camera.stop()


def default_model() -> str:
    """mobilenet_v1_0.5_160 from tinymobile's cache, downloaded and converted on first use."""
    from tinymobile.download import download

    return str(download("mobilenet_v1_0.5_160"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="classify the images of this folder (default: the camera)")
    parser.add_argument("--model", help="a tinymobile .npz model (default: mobilenet_v1_0.5_160, downloaded)")
    parser.add_argument("--top", type=int, default=3, help="labels to print per frame")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    args = parser.parse_args()
    if args.folder and not os.path.isdir(args.folder):
        parser.error(f"{args.folder}: not a folder")

    try:
        model = tinymobile.load(args.model or default_model(), threads=args.threads)
    except tinymobile.TinyMobileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{model!r}  ({tinymobile.isa()} kernels)", flush=True)

    live = False
    if args.folder:
        frames = folder_frames(args.folder)
    else:
        try:
            frames = camera_frames(size=2 * model.resolution)
            live = True
        except ImportError:
            if not os.path.isdir(FALLBACK_FOLDER):
                print(f"no camera (picamera2 is not installed: sudo apt install python3-picamera2) "
                      f"and no {FALLBACK_FOLDER}/ folder: give a folder of images", file=sys.stderr)
                return 2
            print(f"picamera2 is not installed: classifying the images of {FALLBACK_FOLDER}/")
            frames = folder_frames(FALLBACK_FOLDER)
    failed = 0
    try:
        if live:
            # The camera delivers frames faster than the model may classify them: a background
            # reader keeps only the newest, so each result is for a frame at most one
            # inference old (no backlog), and the dropped ones are counted.
            for r in classify_latest(model, frames, top=args.top, named=True):
                labels = ", ".join(f"{label} {p:.0%}" for label, p in r.top)
                print(f"{r.name}: {labels}  ({r.latency * 1e3:.0f} ms after capture, "
                      f"{r.dropped} frames dropped)", flush=True)
        for name, image in ([] if live else frames):
            t0 = time.perf_counter()
            try:
                top = model.classify(image, top=args.top)
            except tinymobile.ImageError as e:  # an unreadable file: say so, go on with the rest
                print(f"error: {e}", file=sys.stderr)
                failed += 1
                continue
            ms = (time.perf_counter() - t0) * 1e3
            labels = ", ".join(f"{label} {p:.0%}" for label, p in top)
            print(f"{name}: {labels}  ({ms:.0f} ms)", flush=True)
    except KeyboardInterrupt:
        pass
    except tinymobile.TinyMobileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
