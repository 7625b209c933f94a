"""Images in, network input out: decoding to RGB, TensorFlow's central crop, bilinear resize,
normalisation. Arrays are (H, W, 3) uint8 RGB until normalised, then float32 NHWC."""
from __future__ import annotations

import os
from typing import Any, List, Tuple

import numpy as np

from .errors import ImageError
from .network import SLIM_CROP

#: File name endings (lower case) taken as images when a directory is given (predict, eval, quantize).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pnm")


def image_files(directory: str) -> List[str]:
    """The image files directly in ``directory`` (by IMAGE_EXTENSIONS, any case), sorted by path."""
    return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, f)))


#: Images with more pixels than this are refused before decoding (Pillow's own limit, 89.5 MP by
#: default: Pillow only warns between 1x and 2x of it; tinymobile refuses the whole range).
DEFAULT_MAX_PIXELS = 89_478_485


def max_image_pixels() -> int:
    """The pixel limit for image files: Pillow's ``Image.MAX_IMAGE_PIXELS`` (a user may change it;
    ``None`` there disables Pillow's check, and tinymobile then uses DEFAULT_MAX_PIXELS)."""
    try:
        from PIL import Image
    except ImportError:
        return DEFAULT_MAX_PIXELS
    limit = getattr(Image, "MAX_IMAGE_PIXELS", None)
    return int(limit) if limit else DEFAULT_MAX_PIXELS


def to_rgb_array(img: Any) -> np.ndarray:
    """A file path, a PIL image or an array -> (H, W, 3) uint8 RGB.

    Files and PIL images of any Pillow mode: grayscale, palette (with transparency), RGBA and LA
    (alpha dropped), CMYK, YCbCr, 16-bit (I;16: 0..65535 scaled to 0..255), 32-bit integer (I) and
    float (F) images. Arrays may be (H, W) grayscale, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA;
    integer arrays must hold 0..255, float arrays finite values in [0, 255], bool arrays become
    0 / 255. Anything else raises :class:`~tinymobile.errors.ImageError`."""
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
    if not os.path.isfile(path):  # also keeps FIFOs and devices (/dev/zero) out
        raise ImageError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            _check_pixels(im, path)
            im.load()
            return _from_pil(im)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # noqa: BLE001 — OSError, ValueError, SyntaxError and whatever a damaged file makes a decoder raise
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def _check_pixels(im, where: str = "image") -> None:
    limit = max_image_pixels()
    if im.width * im.height > limit:
        raise ImageError(f"{where}: image too large ({im.width}x{im.height} = "
                         f"{im.width * im.height:,} pixels, more than the {limit:,} allowed)")


def _from_pil(im) -> np.ndarray:
    if im.width < 1 or im.height < 1:
        raise ImageError(f"image has no pixels ({im.width}x{im.height})")
    _check_pixels(im)
    try:
        if im.mode.startswith("I;16"):  # 16-bit: 0..65535 -> 0..255
            a = np.asarray(im, dtype=np.float64) / 257.0
            return _from_array(np.round(np.clip(a, 0, 255)).astype(np.uint8))
        if im.mode == "I":  # 32-bit integers: 8-bit values as they are, 16-bit ones scaled
            a = np.asarray(im, dtype=np.float64)
            a = np.clip(a / (257.0 if a.max() > 255 else 1.0), 0, 255)
            return _from_array(np.round(a).astype(np.uint8))
        if im.mode == "F":
            return _from_array(np.asarray(im, dtype=np.float32))
        if im.mode != "RGB":
            im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA", "LA") else im.convert("RGB")
        return np.asarray(im, dtype=np.uint8).copy()
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 — conversions Pillow does not support (LAB, ...), decoding errors
        raise ImageError(f"cannot convert a {im.mode} image to RGB ({type(e).__name__}: {e})") from None


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageError(f"image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"image array has no pixels (shape {a.shape})")
    a = a[:, :, :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype.kind in "iu":
        if a.min() < 0 or a.max() > 255:
            raise ImageError(f"integer image values must be in 0..255 (got {a.min()}..{a.max()}); "
                             "scale 16-bit data first (a // 257)")
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("image array contains NaN or infinity")
        if a.min() < 0 or a.max() > 255:
            raise ImageError(f"float image values must be in [0, 255] (got {a.min()}..{a.max()})")
        return np.round(a).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {a.dtype} (expected unsigned or signed integers, "
                     "floats or bools)")


def central_crop(img: np.ndarray, fraction: float = SLIM_CROP) -> np.ndarray:
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


def resize_bilinear(img: np.ndarray, size: "int | Tuple[int, int]") -> np.ndarray:
    """Bilinear resize of (H, W, C) to (size, size, C) -- or (height, width, C) for a ``size``
    (height, width) -- float32, half-pixel centres (TF2's default, no antialiasing)."""
    out_h, out_w = (size, size) if isinstance(size, (int, np.integer)) else size
    h, w = img.shape[:2]
    y0, y1, wy = _axis_weights(h, out_h)
    x0, x1, wx = _axis_weights(w, out_w)
    # Gather the needed rows before converting: a huge image costs `size` float rows, not itself.
    rows = (img[y0].astype(np.float32) * (1 - wy)[:, None, None]
            + img[y1].astype(np.float32) * wy[:, None, None])
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def preprocess(img: Any, resolution: "int | Tuple[int, int]", mean: np.ndarray, std: np.ndarray,
               crop: float = SLIM_CROP) -> np.ndarray:
    """One image -> network input (H, W, 3) float32 for ``resolution`` H = W or (H, W): central
    crop of ``crop`` of each side (1.0: none), bilinear resize, (x - mean) / std."""
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
