"""Images in, network input out: decoding to RGB, TensorFlow's central crop, bilinear resize,
normalisation. Arrays are (H, W, 3) uint8 RGB until normalised, then float32 NHWC."""
from __future__ import annotations

import os
from typing import Any, List, Sequence

import numpy as np

from .errors import ImageError

#: Fraction of each side kept by the central crop (TF-slim's evaluation preprocessing).
CENTRAL_FRACTION = 0.875


def to_rgb_array(img: Any) -> np.ndarray:
    """A file path, a PIL image or an array -> (H, W, 3) uint8 RGB.

    Arrays may be (H, W) grayscale, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; integer arrays
    must hold 0..255, float arrays finite values in [0, 255]."""
    if isinstance(img, (str, os.PathLike)):
        return _read_file(os.fspath(img))
    if _is_pil_image(img):
        return _from_pil(img)
    if isinstance(img, np.ndarray):
        return _from_array(img)
    raise ImageError(f"expected an image path, a PIL image or an array, got {type(img).__name__}")


def _is_pil_image(img: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(img, Image.Image)


def _read_file(path: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("reading image files needs Pillow: pip install Pillow") from None
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            return _from_pil(im)
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None


def _from_pil(im) -> np.ndarray:
    if im.width < 1 or im.height < 1:
        raise ImageError(f"image has no pixels ({im.width}x{im.height})")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(a / (257.0 if a.max() > 255 else 1.0), 0, 255)
        return _from_array(np.round(a).astype(np.uint8))
    if im.mode != "RGB":
        im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "LA", "PA") else im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"image array has no pixels (shape {a.shape})")
    a = a[:, :, :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "iu":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ImageError(f"integer image values must be in 0..255 (got {a.min()}..{a.max()})")
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("image array contains NaN or infinity")
        if a.min() < 0 or a.max() > 255:
            raise ImageError(f"float image values must be in [0, 255] (got {a.min()}..{a.max()})")
        return np.round(a).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {a.dtype}")


def central_crop(img: np.ndarray, fraction: float = CENTRAL_FRACTION) -> np.ndarray:
    """Keep the central ``fraction`` of each side, as ``tf.image.central_crop`` does."""
    h, w = img.shape[:2]
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    return img[top:h - top, left:w - left] if h - 2 * top > 0 and w - 2 * left > 0 else img


def _axis_weights(src: int, dst: int):
    """Source indices and weights of a half-pixel-centre bilinear resize along one axis."""
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0, src - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def resize_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (H, W, C) to (size, size, C) float32, half-pixel centres (TF2's default,
    no antialiasing)."""
    h, w = img.shape[:2]
    y0, y1, wy = _axis_weights(h, size)
    x0, x1, wx = _axis_weights(w, size)
    a = img.astype(np.float32)
    rows = a[y0] * (1 - wy)[:, None, None] + a[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def preprocess(img: Any, resolution: int, mean: np.ndarray, std: np.ndarray,
               crop: float = CENTRAL_FRACTION) -> np.ndarray:
    """One image -> network input (resolution, resolution, 3) float32: crop, resize, normalise."""
    rgb = to_rgb_array(img)
    if crop < 1.0:
        rgb = central_crop(rgb, crop)
    x = resize_bilinear(rgb, resolution)
    return ((x - mean) / std).astype(np.float32)


def as_image_list(images: Any) -> (List[Any], bool):
    """(list of single images, whether the input was a batch)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images), True
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("empty list of images")
        return list(images), True
    return [images], False
