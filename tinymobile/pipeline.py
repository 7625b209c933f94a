"""Many images through a model at full machine speed: decoding and preprocessing run in worker
threads ahead of inference, images are batched, results come out in input order.

    for r in pipeline.run(model, paths):          # r.index, r.image, r.logits, r.error
        ...

Pillow's JPEG decoder and tinymobile's C preprocessing and kernels release the GIL, so the
workers and the inference (the calling thread, on the model's own thread pool) overlap on every
core. Memory is bounded whatever the number of images: at most ``batch + 2 * jobs`` images are
decoded ahead of the results handed out (a window of futures, never a list of every image), and
the input iterable is consumed lazily.

Every result equals what one-by-one ``Model.classify`` / ``Model.logits`` gives for that image:
the same preprocessing (bit-identical C version of preprocess.py's NumPy one), and the kernels
compute each image of a batch exactly as alone.
"""
from __future__ import annotations

import collections
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Tuple

import numpy as np

from .errors import ImageError, InputError, TinyMobileError
from .fixedpoint import dequantize
from .preprocess import SLIM_CROP, decode_resize, resize_normalize, to_rgb_array

#: Images per forward call (16 was fastest on the 2-core EPYC for the 0.5_160 and 1.0_224 models:
#: see docs/SCALE.md).
DEFAULT_BATCH = 16


def default_jobs() -> int:
    """Decode / preprocess worker threads: one per usable core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Result(NamedTuple):
    """One image's outcome: ``logits`` (classes,) float32 (dequantized for a quantized model; the
    pooled features for a feature extractor), or ``error``, a one-line message."""
    index: int
    image: Any
    logits: Optional[np.ndarray]
    error: Optional[str]


# ---- an ordered, bounded parallel map ----------------------------------------------------------

def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], jobs: int,
                ahead: Optional[int] = None) -> Iterator[Any]:
    """``map(fn, items)`` on ``jobs`` threads, results in input order, at most ``ahead`` (default
    2 * jobs) calls submitted and not yet handed out. An exception raised by ``fn`` is raised
    when its item's turn comes. ``jobs`` = 0 runs ``fn`` in the caller (no threads). Closing the
    generator early cancels what has not started and waits for what has."""
    if jobs <= 0:
        yield from map(fn, items)
        return
    ahead = max(1, ahead if ahead is not None else 2 * jobs)
    it = iter(items)
    pending: "collections.deque[Future]" = collections.deque()
    ex = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tinymobile-pipeline")
    try:
        for item in it:
            pending.append(ex.submit(fn, item))
            if len(pending) >= ahead:
                break
        while pending:
            fut = pending.popleft()
            for item in it:  # keep the window full: one in for each one out
                pending.append(ex.submit(fn, item))
                break
            yield fut.result()
    finally:
        for fut in pending:
            fut.cancel()
        ex.shutdown(wait=True)


# ---- the model's two stages --------------------------------------------------------------------

def input_geometry(network) -> Tuple[Tuple[int, int], float]:
    """((height, width), central-crop fraction) of the image API's preprocessing."""
    size = getattr(network, "input_size", None)
    if size is None:
        size = (network.resolution, network.resolution)
    crop = getattr(network, "crop", None)
    return (int(size[0]), int(size[1])), float(SLIM_CROP if crop is None else crop)


def _quantized(model) -> bool:
    return getattr(model, "dtype", "float32") in ("uint8", "int8")


def quantize_image(x: np.ndarray, scale: float, zero_point: int, dtype: str,
                   out: Optional[np.ndarray] = None) -> np.ndarray:
    """Preprocessed float32 input -> the quantized network input of ``dtype`` ("uint8" or
    "int8"), as ``Model.quantize_input`` (round half away from zero, saturate), in one C
    pass."""
    from ._native import ffi, lib
    info = np.iinfo(dtype)
    x = np.ascontiguousarray(x, np.float32)
    if out is None:
        out = np.empty(x.shape, dtype)
    lib.tm_f32_quantize__scalar(x.size, ffi.from_buffer("float[]", x), float(np.float32(scale)),
                                int(zero_point), int(info.min), int(info.max),
                                ffi.from_buffer("uint8_t[]", out.view(np.uint8), require_writable=True))
    return out


class Stages:
    """``prepare(image) -> network input (h, w, 3)`` (thread-safe, run by the workers) and
    ``infer(batch) -> float32 logits (N, classes)`` of one model."""

    def __init__(self, model, fast_decode: bool = False):
        network = model.network
        self.size, self.crop = input_geometry(network)
        self.mean = np.asarray(network.input_mean)
        self.std = np.asarray(network.input_std)
        self.quantized = _quantized(model)
        # forward's input dtype: the model's, or uint8 for an int8 model with uint8 input (whose
        # input_quantization is then that of the uint8 tensor)
        self.dtype = np.dtype(model.input_dtype) if self.quantized else np.dtype(np.float32)
        if self.quantized:
            self.in_scale, self.in_zp = model.input_quantization
            self.out_scale, self.out_zp = model.output_quantization
        self.model = model
        # --fast-decode: a JPEG is decoded at a reduced scale while its central crop still has
        # at least the model's input size.
        h, w = self.size
        self.draft = (math.ceil(w / self.crop), math.ceil(h / self.crop)) if fast_decode else None

    def prepare(self, image: Any) -> np.ndarray:
        q = (self.in_scale, self.in_zp, self.dtype.name) if self.quantized else None
        if isinstance(image, (str, os.PathLike)):
            return decode_resize(image, self.size, self.mean, self.std, self.crop, self.draft, q)
        return resize_normalize(to_rgb_array(image), self.size, self.mean, self.std, self.crop,
                                quantize=q)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        y = self.model.forward(batch)
        if self.quantized:
            return dequantize(y, self.out_scale, self.out_zp)
        return y


# ---- the pipeline ------------------------------------------------------------------------------

def _whole(value: Any, name: str) -> int:
    """value as an int if it is a whole number (an int, a NumPy integer, or a float such as
    16.0), else InputError naming it: int() would truncate 2.5 to 2 without a word."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, (float, np.floating)) or not float(value).is_integer():
        raise InputError(f"{name} must be an integer, got {value!r}")
    return int(value)


def run(model, images: Iterable[Any], batch: Optional[int] = None, jobs: Optional[int] = None,
        fast_decode: bool = False, streams: int = 1) -> Iterator[Result]:
    """Yield a :class:`Result` per image of ``images`` (paths, PIL images or (H, W, 3) arrays;
    any iterable, read lazily), in input order.

    batch: images per forward call (default DEFAULT_BATCH); jobs: decode / preprocess worker
    threads (default one per core; 0: everything in the calling thread); fast_decode: JPEGs
    much larger than the input decoded at reduced scale (not TF-slim's exact pixels); streams:
    forward calls running at once (1: in the calling thread, on the model's thread pool; with a
    one-thread model, streams = cores runs one batch per core, each on one thread, which on a
    2-core machine beat one batch on a 2-thread pool: docs/SCALE.md). Images that cannot be
    read give a Result with ``error`` set and the others go on."""
    batch = DEFAULT_BATCH if batch is None else _whole(batch, "batch")
    jobs = default_jobs() if jobs is None else _whole(jobs, "jobs")
    streams = _whole(streams, "streams")
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    if jobs < 0:
        raise InputError(f"jobs must be at least 0, got {jobs}")
    if streams < 1:
        raise InputError(f"streams must be at least 1, got {streams}")
    if hasattr(images, "__len__"):  # the buffers need no more rows than there are images
        batch = max(1, min(batch, len(images)))
    stages = Stages(model, fast_decode)

    def prepare(item):
        try:
            return item, stages.prepare(item), None
        except TinyMobileError as e:
            return item, None, str(e)

    h, w = stages.size
    prepared = ordered_map(prepare, images, jobs, ahead=batch + 2 * jobs)

    def batches():
        """(window of (index, image, error), input buffer, images in it) per forward call; one
        buffer reused when calls run one at a time, a new one per call otherwise."""
        buf = np.empty((batch, h, w, 3), stages.dtype)
        window, filled = [], 0
        for index, (image, x, err) in enumerate(prepared):
            window.append((index, image, err))
            if x is not None:
                buf[filled] = x
                filled += 1
                if filled == batch:
                    yield window, buf, filled
                    window, filled = [], 0
                    if streams > 1:
                        buf = np.empty((batch, h, w, 3), stages.dtype)
        if window:
            yield window, buf, filled

    def infer(item):
        window, buf, filled = item
        return list(_flush(stages, buf, filled, window))

    outputs = ordered_map(infer, batches(), streams if streams > 1 else 0, ahead=streams)
    try:
        for results in outputs:
            yield from results
    finally:
        outputs.close()
        prepared.close()


def _flush(stages: Stages, buf: np.ndarray, filled: int, window) -> Iterator[Result]:
    logits = stages.infer(buf[:filled]) if filled else None
    k = 0
    for index, image, err in window:
        if err is not None:
            yield Result(index, image, None, err)
        else:
            yield Result(index, image, logits[k], None)
            k += 1


def logits_of(model, images: Iterable[Any], batch: Optional[int] = None,
              jobs: Optional[int] = None, fast_decode: bool = False, streams: int = 1) -> np.ndarray:
    """float32 logits (N, classes) of every image, in order (``Model.predict``'s batch path);
    the first image that cannot be read raises its ImageError."""
    rows = []
    for r in run(model, images, batch=batch, jobs=jobs, fast_decode=fast_decode, streams=streams):
        if r.error is not None:
            raise ImageError(r.error)
        rows.append(r.logits)
    if not rows:
        raise ImageError("empty list of images")
    return np.stack(rows)
