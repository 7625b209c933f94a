"""Images in, network input out: decoding to RGB, TensorFlow's central crop, bilinear resize,
normalisation. Arrays are (H, W, 3) uint8 RGB until normalised, then float32 NHWC."""
from __future__ import annotations

import ctypes
import functools
import os
from typing import Any, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from .errors import ImageError
from .network import SLIM_CROP

#: File name endings (lower case) taken as images when a directory is given (predict, eval, quantize).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pnm")


def image_files(directory: str, recursive: bool = False,
                extensions: Tuple[str, ...] = IMAGE_EXTENSIONS) -> List[str]:
    """The image files (by ``extensions``, any case) directly in ``directory``, or with
    ``recursive`` in its subfolders too (hidden ones and symlinked folders not searched), sorted
    by path. Hidden files (names starting with ".": macOS' ``._IMG_1234.jpg`` AppleDouble
    metadata on a USB stick) are not images of the folder."""
    def images(root: str, names: List[str]) -> List[str]:
        return [os.path.join(root, f) for f in names if not f.startswith(".")
                and f.lower().endswith(extensions) and os.path.isfile(os.path.join(root, f))]

    if not recursive:
        return sorted(images(directory, os.listdir(directory)))
    found: List[str] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += images(root, files)
    return sorted(found)


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
    (alpha dropped), CMYK, YCbCr, 16-bit (I;16: 0..65535 scaled to 0..255), 32-bit integer (I:
    values in 0..65535, 8-bit ones as they are, else scaled as 16-bit) and float (F) images;
    turned upright by their EXIF Orientation tag, as image viewers show them (:func:`upright`):
    files, and PIL images as ``Image.open`` returns them; a PIL image made from one (``convert``,
    ``rotate``, ``transpose``, ``crop``...) keeps the tag though it may already be turned, and is
    taken as it is.
    Arrays may be (H, W) grayscale, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA;
    integer arrays must hold 0..255, float arrays finite values in [0, 255] (not all in (0, 1]:
    the [0, 1] convention of matplotlib and skimage, refused as ambiguous), bool arrays become
    0 / 255. Anything else raises :class:`~tinymobile.errors.ImageError`."""
    if isinstance(img, (str, os.PathLike)):
        return _read_file(os.fspath(img))
    if _is_pil_image(img):
        return _from_pil(_upright_pil(img))
    if isinstance(img, np.ndarray):
        return _from_array(img)
    raise ImageError(f"expected an image path, a PIL image or an array, got {type(img).__name__}")


def _is_pil_image(img: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(img, Image.Image)


#: EXIF Orientation (tag 274) -> the Pillow transpose that shows the stored pixels upright.
_ORIENTATION_TAG = 0x0112
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def orientation(im) -> int:
    """The EXIF Orientation (1..8) of a PIL image; 1 (as stored) where it has none, an
    out-of-range value or EXIF data Pillow cannot parse (what image viewers do then too)."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 — a damaged EXIF block does not make the pixels unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(im):
    """A loaded PIL image turned as its EXIF Orientation says (what a phone photo looks like in
    any viewer; TensorFlow's decoders and Keras' ``load_img`` ignore the tag), or ``im`` itself
    where it needs no turning. Called once per image: the copy keeps the image's metadata, and
    an image turned by hand with ``transpose`` keeps its tag too (``ImageOps.exif_transpose``
    drops it), which is why a caller's PIL image is turned only as it came from the file
    (:func:`_upright_pil`)."""
    o = orientation(im)
    if o == 1:
        return im
    from PIL import Image
    return im.transpose(getattr(Image.Transpose, _UPRIGHT[o]))


def _upright_pil(im):
    """``upright`` of a caller's PIL image straight from ``Image.open`` (loaded first: some
    formats keep EXIF after the pixels), with one-line errors for an image that cannot be
    loaded. An image Pillow made from another (``format`` None: ``convert``, ``rotate``,
    ``transpose``, ``copy``...) keeps the source's EXIF, so its tag cannot say whether the pixels
    were turned already (by hand, as ``rotate(-90)`` for tag 6): it is taken as it is, not
    turned a second time."""
    try:
        im.load()
    except Exception as e:  # noqa: BLE001 — a truncated or damaged file behind the image
        raise ImageError(f"image could not be loaded ({type(e).__name__}: {e})") from None
    return upright(im) if getattr(im, "format", None) is not None else im


def read_image(path: "os.PathLike[str] | str", draft: Optional[Tuple[int, int]] = None,
               copy: bool = True) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB, with the checks and one-line errors of
    ``to_rgb_array``.

    The image comes upright by its EXIF Orientation (:func:`upright`). draft: (width, height)
    of the upright image; a JPEG at least twice as large on both sides is decoded at 1/2, 1/4
    or 1/8 scale (libjpeg's DCT scaling, Pillow's ``draft``), never below this size: faster,
    but not the same pixels as a full decode (``--fast-decode``). copy=False may return a
    read-only array."""
    return _read_file(os.fspath(path), draft, copy)


def _decode(path: str, draft: Optional[Tuple[int, int]] = None):
    """The loaded PIL image of an image file (the caller closes it), with one-line errors."""
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("reading image files needs Pillow: pip install Pillow") from None
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image file (predict a list of its "
                         "images: tinymobile.preprocess.image_files(folder))")
    if not os.path.isfile(path):  # also keeps FIFOs and devices (/dev/zero) out
        raise ImageError(f"{path}: no such image file")
    try:
        im = Image.open(path)
        try:
            _check_pixels(im, path)
            if draft is not None and im.format == "JPEG":
                if orientation(im) >= 5:  # stored sideways: the draft's sides swap
                    draft = (draft[1], draft[0])
                im.draft("RGB", (max(1, int(draft[0])), max(1, int(draft[1]))))
            im.load()
            turned = upright(im)
        except BaseException:
            im.close()
            raise
        if turned is not im:
            im.close()
        return turned
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # noqa: BLE001 — OSError, ValueError, SyntaxError and whatever a damaged file makes a decoder raise
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def _read_file(path: str, draft: Optional[Tuple[int, int]] = None, copy: bool = True) -> np.ndarray:
    im = _decode(path, draft)
    try:
        return _from_pil(im, copy)
    finally:
        im.close()


def _check_pixels(im, where: str = "image") -> None:
    limit = max_image_pixels()
    if im.width * im.height > limit:
        raise ImageError(f"{where}: image too large ({im.width}x{im.height} = "
                         f"{im.width * im.height:,} pixels, more than the {limit:,} allowed)")


def _from_pil(im, copy: bool = True) -> np.ndarray:
    if im.width < 1 or im.height < 1:
        raise ImageError(f"image has no pixels ({im.width}x{im.height})")
    _check_pixels(im)
    try:
        if im.mode.startswith("I;16"):  # 16-bit: 0..65535 -> 0..255
            a = np.asarray(im, dtype=np.float64) / 257.0
            return _from_array(np.round(np.clip(a, 0, 255)).astype(np.uint8))
        if im.mode == "I":  # 32-bit integers: 8-bit values as they are, 16-bit ones scaled
            a = np.asarray(im, dtype=np.float64)
            lo, hi = a.min(), a.max()
            if lo < 0 or hi > 65535:
                raise ImageError(f"32-bit integer image values {lo:.0f}..{hi:.0f} are outside "
                                 "0..65535 (8- or 16-bit data): scale it to 0..255 first")
            a = np.clip(a / (257.0 if hi > 255 else 1.0), 0, 255)
            return _from_array(np.round(a).astype(np.uint8))
        if im.mode == "F":
            return _from_array(np.asarray(im, dtype=np.float32))
        if im.mode != "RGB":
            im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA", "LA") else im.convert("RGB")
        a = np.asarray(im, dtype=np.uint8)
        return a.copy() if copy else a
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
        lo, hi = a.min(), a.max()
        if lo < 0 or hi > 255:
            raise ImageError(f"float image values must be in [0, 255] (got {lo}..{hi})")
        if 0 < hi <= 1:  # matplotlib's / skimage's float images: read as 0..255 they are black
            raise ImageError(f"float image values are all in [0, 1] (max {hi}): tinymobile reads "
                             "float pixels as 0..255; multiply by 255 (or pass uint8)")
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


def resize_bilinear(img: np.ndarray, size: Union[int, Tuple[int, int]]) -> np.ndarray:
    """Bilinear resize of (H, W, C) to (size, size, C) (or (h, w, C) for size = (h, w)) float32,
    half-pixel centres (TF2's default, no antialiasing)."""
    h, w = img.shape[:2]
    oh, ow = _size(size)
    y0, y1, wy = _axis_weights(h, oh)
    x0, x1, wx = _axis_weights(w, ow)
    # Gather the needed rows before converting: a huge image costs `size` float rows, not itself.
    rows = (img[y0].astype(np.float32) * (1 - wy)[:, None, None]
            + img[y1].astype(np.float32) * wy[:, None, None])
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def _size(resolution: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    """(height, width) of a resolution given as one int (square) or a pair."""
    if isinstance(resolution, (tuple, list)):
        return int(resolution[0]), int(resolution[1])
    return int(resolution), int(resolution)


def crop_box(h: int, w: int, fraction: float = SLIM_CROP) -> Tuple[int, int, int, int]:
    """(top, left, height, width) of ``central_crop``'s window on an h x w image."""
    if fraction >= 1.0:
        return 0, 0, h, w
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    if h - 2 * top > 0 and w - 2 * left > 0:
        return top, left, h - 2 * top, w - 2 * left
    return 0, 0, h, w


@functools.lru_cache(maxsize=64)
def _c_axis(src: int, dst: int, offset: int):
    """_axis_weights as the C kernel takes them: int32 indices shifted by ``offset`` (the crop's
    first row or column), float32 weights on the second index."""
    i0, i1, wt = _axis_weights(src, dst)
    return (np.ascontiguousarray(i0 + offset, np.int32), np.ascontiguousarray(i1 + offset, np.int32),
            np.ascontiguousarray(wt, np.float32))


def _norm_kind(mean: np.ndarray, std: np.ndarray) -> Optional[int]:
    """1: float64 arithmetic (NumPy's result for float64 mean / std), 0: float32, None: other."""
    dtypes = {np.asarray(mean).dtype, np.asarray(std).dtype}
    if dtypes == {np.dtype(np.float64)}:
        return 1
    if dtypes == {np.dtype(np.float32)}:
        return 0
    return None


class Pixels(NamedTuple):
    """uint8 RGB pixels for the C pass without a copy: rows ``row_bytes`` apart, pixels
    ``pixel_bytes`` apart (3, or 4 for Pillow's RGBX memory); ``keep`` holds their owner."""
    pointer: Any
    height: int
    width: int
    row_bytes: int
    pixel_bytes: int
    keep: Any


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [("format", ctypes.c_char_p), ("name", ctypes.c_char_p),
                         ("metadata", ctypes.c_char_p), ("flags", ctypes.c_int64),
                         ("n_children", ctypes.c_int64),
                         ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))),
                         ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p),
                         ("private_data", ctypes.c_void_p)]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [("length", ctypes.c_int64), ("null_count", ctypes.c_int64),
                        ("offset", ctypes.c_int64), ("n_buffers", ctypes.c_int64),
                        ("n_children", ctypes.c_int64), ("buffers", ctypes.POINTER(ctypes.c_void_p)),
                        ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
                        ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p),
                        ("private_data", ctypes.c_void_p)]


def _capsule_pointer(capsule, name: bytes) -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get(capsule, name)


def pil_pixels(im) -> Optional[Pixels]:
    """A zero-copy view of a loaded RGB PIL image's memory (Pillow >= 11.2 exports it through the
    Arrow C data interface as fixed-size lists of 4 bytes, RGBX), or None where that is not
    available (older Pillow, another mode or layout, an image in several blocks): then the
    caller converts it to an array. Valid while the image and ``keep`` live."""
    if im.mode != "RGB" or not hasattr(im, "__arrow_c_array__"):
        return None
    try:
        schema_capsule, array_capsule = im.__arrow_c_array__()
        schema = _ArrowSchema.from_address(_capsule_pointer(schema_capsule, b"arrow_schema"))
        array = _ArrowArray.from_address(_capsule_pointer(array_capsule, b"arrow_array"))
        if schema.format != b"+w:4" or schema.n_children != 1 or \
                schema.children[0].contents.format != b"C" or array.n_children != 1 or \
                array.length != im.width * im.height or array.null_count not in (0, -1):
            return None
        child = array.children[0].contents
        if child.n_buffers != 2 or not child.buffers[1] or \
                child.length < 4 * (array.offset + array.length):
            return None
        address = child.buffers[1] + child.offset + 4 * array.offset
    except Exception:  # noqa: BLE001 — any surprise: the copying path
        return None
    from ._native import ffi
    return Pixels(ffi.cast("uint8_t *", address), im.height, im.width, 4 * im.width, 4,
                  (im, schema_capsule, array_capsule))


def _array_pixels(rgb: np.ndarray) -> Pixels:
    from ._native import ffi
    rgb = np.ascontiguousarray(rgb)
    return Pixels(ffi.from_buffer("uint8_t[]", rgb), rgb.shape[0], rgb.shape[1], rgb.strides[0], 3, rgb)


def resize_normalize(rgb: "np.ndarray | Pixels", resolution: Union[int, Tuple[int, int]],
                     mean: np.ndarray, std: np.ndarray, crop: float = SLIM_CROP,
                     out: Optional[np.ndarray] = None,
                     quantize: Optional[Tuple[float, int, str]] = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB (an array, or :class:`Pixels`) -> central crop, bilinear resize,
    (x - mean) / std: (h, w, 3) float32; with ``quantize`` = (scale, zero_point, dtype) the
    network input of a quantized model, (h, w, 3) of that dtype (fixedpoint.quantize).

    One C pass (no GIL held, no float copy of the image), bit-identical to ``central_crop`` +
    ``resize_bilinear`` + the normalisation in NumPy (the fallback for means / stds that are
    neither float32 nor float64). ``out``: a C-contiguous array of the result's shape and dtype
    to fill."""
    oh, ow = _size(resolution)
    mean = np.asarray(mean)
    std = np.asarray(std)
    kind = _norm_kind(mean, std)
    dtype = np.dtype(quantize[2] if quantize is not None else np.float32)
    if out is None:
        out = np.empty((oh, ow, 3), dtype)
    elif out.shape != (oh, ow, 3) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous ({oh}, {ow}, 3) {dtype} array")
    usable = kind is not None and mean.shape == (3,) and std.shape == (3,) and (
        isinstance(rgb, Pixels) or (rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3))
    if not usable:
        if isinstance(rgb, Pixels):
            rgb = _pixels_array(rgb)
        x = _reference_resize_normalize(rgb, (oh, ow), mean, std, crop)
        if quantize is not None:
            from .fixedpoint import quantize as reference_quantize
            x = reference_quantize(x, quantize[0], quantize[1], quantize[2])
        out[...] = x
        return out
    px = rgb if isinstance(rgb, Pixels) else _array_pixels(rgb)
    top, left, ch, cw = crop_box(px.height, px.width, crop)
    y0, y1, wy = _c_axis(ch, oh, top)
    x0, x1, wx = _c_axis(cw, ow, left)
    from ._native import ffi, lib
    m = np.ascontiguousarray(mean, np.float64)
    s = np.ascontiguousarray(std, np.float64)
    if quantize is None:
        scratch, params, q_out = out, ffi.NULL, ffi.NULL
    else:
        info = np.iinfo(dtype)
        scratch = np.empty(ow * 3, np.float32)
        params = ffi.new("tm_quantize_params *", {
            "scale": float(np.float32(quantize[0])), "zero_point": int(quantize[1]),
            "min": int(info.min), "max": int(info.max)})
        q_out = ffi.from_buffer("uint8_t[]", out.view(np.uint8), require_writable=True)
    lib.tm_u8_resize_bilinear_rgb__scalar(
        oh, ow, px.pointer, px.row_bytes, px.pixel_bytes,
        ffi.from_buffer("int32_t[]", y0), ffi.from_buffer("int32_t[]", y1),
        ffi.from_buffer("float[]", wy), ffi.from_buffer("int32_t[]", x0),
        ffi.from_buffer("int32_t[]", x1), ffi.from_buffer("float[]", wx),
        ffi.from_buffer("double[]", m), ffi.from_buffer("double[]", s), kind,
        ffi.from_buffer("float[]", scratch, require_writable=True), params, q_out)
    return out


def _pixels_array(px: Pixels) -> np.ndarray:
    """A Pixels view as an (H, W, 3) uint8 array (a copy)."""
    from ._native import ffi
    raw = np.frombuffer(ffi.buffer(px.pointer, px.row_bytes * px.height), np.uint8)
    rows = raw.reshape(px.height, px.row_bytes)[:, :px.width * px.pixel_bytes]
    return np.ascontiguousarray(rows.reshape(px.height, px.width, px.pixel_bytes)[:, :, :3])


def decode_resize(path: "os.PathLike[str] | str", resolution: Union[int, Tuple[int, int]],
                  mean: np.ndarray, std: np.ndarray, crop: float = SLIM_CROP,
                  draft: Optional[Tuple[int, int]] = None,
                  quantize: Optional[Tuple[float, int, str]] = None) -> np.ndarray:
    """An image file -> the network input, as ``resize_normalize(read_image(path, draft), ...)``
    but reading an RGB image's decoded pixels in place (no (H, W, 3) copy)."""
    path = os.fspath(path)
    im = _decode(path, draft)
    try:
        px = pil_pixels(im)
        src = px if px is not None else _from_pil(im, copy=False)
        return resize_normalize(src, resolution, mean, std, crop, quantize=quantize)
    finally:
        px = src = None
        im.close()


def _reference_resize_normalize(rgb: np.ndarray, size: Tuple[int, int], mean: np.ndarray,
                                std: np.ndarray, crop: float) -> np.ndarray:
    """The NumPy preprocessing (the C pass's oracle): crop, resize, normalise."""
    if crop < 1.0:
        rgb = central_crop(rgb, crop)
    x = resize_bilinear(rgb, size)
    return ((x - mean) / std).astype(np.float32)


def preprocess(img: Any, resolution: Union[int, Tuple[int, int]], mean: np.ndarray,
               std: np.ndarray, crop: float = SLIM_CROP) -> np.ndarray:
    """One image -> network input (h, w, 3) float32: crop, resize, normalise."""
    return resize_normalize(to_rgb_array(img), resolution, mean, std, crop)


def as_image_list(images: Any) -> (List[Any], bool):
    """(list of single images, whether the input was a batch)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images), True
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("empty list of images")
        return list(images), True
    return [images], False
