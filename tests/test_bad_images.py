"""Bad and unusual images: every Pillow mode a camera or a web page produces is converted, anything
unusable is an ImageError naming the problem, huge images are refused before decoding, and the
probabilities of every accepted input are finite."""
import io
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import tinymobile
from conftest import IMAGES, require_shared
from helpers.fuzzing import memory_limit, mutate, mutations, time_limit
from tinymobile import preprocess
from tinymobile.errors import ImageError


@pytest.fixture(scope="module")
def model():
    return tinymobile.build(alpha=0.25, resolution=32, num_classes=10, threads=1)


def assert_probabilities(p):
    assert p.shape[-1] == 10 and np.isfinite(p).all()
    assert np.allclose(p.sum(-1), 1.0, atol=1e-5) and p.min() >= 0


def save(im, path, **kw):
    im.save(path, **kw)
    return path


def gradient(w=23, h=17):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)


# ---- files of every mode ----------------------------------------------------------------------
def mode_files(tmp):
    rgb = Image.fromarray(gradient())
    p = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    p.info["transparency"] = 0
    la = rgb.convert("LA")
    return {
        "rgb.png": save(rgb, tmp / "rgb.png"),
        "gray.png": save(rgb.convert("L"), tmp / "gray.png"),
        "bilevel.png": save(rgb.convert("1"), tmp / "bilevel.png"),
        "la.png": save(la, tmp / "la.png"),
        "rgba.png": save(rgb.convert("RGBA"), tmp / "rgba.png"),
        "palette.png": save(p, tmp / "palette.png"),
        "palette_transparent.png": save(p, tmp / "palette_transparent.png", transparency=0),
        "palette.gif": save(p, tmp / "palette.gif"),
        "gray16.png": save(Image.fromarray((gradient()[:, :, 0].astype(np.uint16) * 257)), tmp / "gray16.png"),
        "cmyk.jpg": save(rgb.convert("CMYK"), tmp / "cmyk.jpg"),
        "ycbcr.jpg": save(rgb, tmp / "ycbcr.jpg"),
        "int32.tif": save(Image.fromarray(gradient()[:, :, 0].astype(np.int32)), tmp / "int32.tif"),
        "float.tif": save(Image.fromarray(gradient()[:, :, 0].astype(np.float32)), tmp / "float.tif"),
        "rgb.bmp": save(rgb, tmp / "rgb.bmp"),
        "rgb.webp": save(rgb, tmp / "rgb.webp") if "WEBP" in Image.SAVE else save(rgb, tmp / "rgb2.png"),
        "one_pixel.png": save(Image.new("RGB", (1, 1), (10, 200, 30)), tmp / "one_pixel.png"),
        "one_row.png": save(Image.new("L", (57, 1), 99), tmp / "one_row.png"),
        "one_column.png": save(Image.new("RGB", (1, 57), (1, 2, 3)), tmp / "one_column.png"),
    }


def test_every_mode_gives_finite_probabilities(tmp_path, model):
    files = mode_files(tmp_path)
    modes = {name: Image.open(p).mode for name, p in files.items()}
    assert {"L", "1", "LA", "RGBA", "P", "CMYK", "I", "F"} <= set(modes.values()), modes
    assert modes["gray16.png"].startswith("I")
    for name, p in files.items():
        rgb = preprocess.to_rgb_array(p)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, name
        assert_probabilities(model.predict(p))
    assert_probabilities(model.predict(list(files.values())))


def test_modes_convert_to_the_expected_pixels(tmp_path):
    files = mode_files(tmp_path)
    g = gradient()
    assert np.array_equal(preprocess.to_rgb_array(files["rgb.png"]), g)
    gray = np.asarray(Image.fromarray(g).convert("L"))
    assert np.array_equal(preprocess.to_rgb_array(files["gray.png"]), np.stack([gray] * 3, -1))
    # 16-bit: v * 257 comes back as v; 8-bit TIFFs (I, F) keep their values
    for name in ("gray16.png", "int32.tif", "float.tif"):
        assert np.array_equal(preprocess.to_rgb_array(files[name]), np.stack([g[:, :, 0]] * 3, -1)), name
    assert np.array_equal(preprocess.to_rgb_array(files["one_pixel.png"]), [[[10, 200, 30]]])


def test_dark_16_bit_image_stays_dark(tmp_path):
    """A 16-bit image whose values are all below 256 is nearly black, not an 8-bit image."""
    p = save(Image.fromarray(np.full((8, 8), 200, np.uint16)), tmp_path / "dark16.png")
    assert Image.open(p).mode.startswith("I;16")
    assert preprocess.to_rgb_array(p).max() <= 1


@pytest.mark.parametrize("mode", ["LAB", "HSV", "YCbCr", "CMYK", "I;16", "I;16B", "1", "PA", "RGBX",
                                  "RGBa", "La"])
def test_in_memory_pil_images_of_any_mode(model, mode):
    im = Image.new(mode, (5, 4))
    try:
        rgb = preprocess.to_rgb_array(im)
    except ImageError as e:
        assert mode in str(e)  # a mode Pillow cannot convert: a clear error naming it
        return
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert_probabilities(model.predict(im))


# ---- unreadable files -------------------------------------------------------------------------
def test_unreadable_files(tmp_path, model):
    require_shared()
    jpg = (IMAGES / "samples" / "owl.jpg").read_bytes()
    cases = {
        "empty.jpg": b"",
        "text.png": b"hello, I am not an image\n",
        "truncated.jpg": jpg[: len(jpg) // 3],
        "header_only.png": b"\x89PNG\r\n\x1a\n" + bytes(30),
        "garbage.bmp": b"BM" + os.urandom(200),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with time_limit(10):
            with pytest.raises(ImageError, match=name):
                model.predict(tmp_path / name)
    with pytest.raises(ImageError, match="is a folder, not an image file.*image_files"):
        model.predict(tmp_path)  # a directory: not called a missing file
    with pytest.raises(ImageError, match="no such image"):
        model.predict(tmp_path / "missing.jpg")


def test_devices_and_fifos_are_refused_without_blocking(tmp_path, model):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    with time_limit(5):
        for p in (fifo, "/dev/zero", "/dev/null"):
            with pytest.raises(ImageError):
                model.predict(p)


# ---- huge images ------------------------------------------------------------------------------
def png_header_only(path, width, height):
    """A PNG whose header declares width x height (RGB) and whose data is a few bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns, we refuse
@pytest.mark.parametrize("side", [10_000, 20_000, 60_000])
def test_huge_images_are_refused_before_decoding(tmp_path, model, side):
    """100 MP is in Pillow's warning-only range (1x..2x its limit), 400 MP and 3.6 GP in its error
    range: all are ImageErrors, raised before a pixel is decoded."""
    p = png_header_only(tmp_path / f"huge{side}.png", side, side)
    with time_limit(10), memory_limit(512 << 20):
        with pytest.raises(ImageError, match="too large"):
            model.predict(p)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_follows_pillow_setting(tmp_path, model, monkeypatch):
    p = save(Image.fromarray(gradient(40, 30)), tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large"):
        model.predict(p)
    with pytest.raises(ImageError, match="too large"):
        model.predict(Image.new("RGB", (40, 30)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert preprocess.max_image_pixels() == preprocess.DEFAULT_MAX_PIXELS
    assert_probabilities(model.predict(p))


def test_large_array_resize_does_not_copy_the_whole_image(model):
    """Resizing gathers the rows it needs before converting to float."""
    import tracemalloc
    big = np.zeros((3000, 4000, 3), np.uint8)  # 36 MB; as float32 it would be 144 MB
    tracemalloc.start()
    try:
        model.predict(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, peak


# ---- arrays -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,match", [
    (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
    (np.full((4, 4, 3), -np.inf), "NaN or infinity"),
    (np.full((4, 4, 3), -1.0), r"\[0, 255\]"),
    (np.full((4, 4, 3), 255.5), r"\[0, 255\]"),
    # matplotlib's imread of a PNG, skimage's img_as_float: [0, 1] floats, not 0..255 ones
    (np.full((4, 4, 3), 0.5, np.float32), r"\[0, 1\].*255"),
    (np.linspace(0, 1, 48).reshape(4, 4, 3), r"\[0, 1\].*255"),
    (np.full((2, 4, 4, 3), 0.25, np.float16), r"\[0, 1\].*255"),  # a batch
    (np.full((4, 4, 3), 300, np.int32), "0..255"),
    (np.full((4, 4, 3), -3, np.int8), "0..255"),
    (np.full((4, 4, 3), 1000, np.uint16), "0..255"),
    (np.zeros(5, np.uint8), "shape"),
    (np.zeros((2, 2, 2, 2, 3), np.uint8), "shape"),
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.zeros((4, 4, 5), np.uint8), "shape"),
    (np.zeros((0, 4, 3), np.uint8), "no pixels"),
    (np.zeros((4, 0), np.uint8), "no pixels"),
    (np.zeros((4, 4, 3), np.complex64), "dtype"),
    (np.full((4, 4, 3), "a"), "dtype"),
    (np.zeros((4, 4, 3), object), "dtype"),
    (np.zeros((2, 4, 4, 3), np.float32) * np.nan, "NaN"),  # a batch
])
def test_bad_arrays_are_image_errors(model, bad, match):
    with pytest.raises(ImageError, match=match):
        model.predict(bad)


def test_bool_arrays_are_black_and_white(model):
    mask = np.zeros((6, 7), bool)
    mask[2:4, 3:5] = True
    rgb = preprocess.to_rgb_array(mask)
    assert np.array_equal(rgb, np.stack([mask.astype(np.uint8) * 255] * 3, -1))
    assert_probabilities(model.predict(mask))
    assert np.array_equal(preprocess.to_rgb_array(np.dstack([mask] * 3)), rgb)


def test_non_contiguous_and_odd_dtype_arrays(model):
    g = gradient(30, 20)
    expected = model.predict(g)
    for variant in (np.asfortranarray(g), g.astype(np.int64), g.astype(np.float16), g.astype(np.float64),
                    np.dstack([g, np.full(g.shape[:2], 7, np.uint8)])):  # RGBA: alpha dropped
        np.testing.assert_array_equal(model.predict(variant), expected)
    assert_probabilities(model.predict(g[::-1, ::2]))


@st.composite
def images(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    kind = draw(st.sampled_from(["uint8", "int16", "float32", "float64", "bool"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "bool":
        return rng.random(shape) < 0.5
    if kind.startswith("float"):
        extreme = draw(st.sampled_from([None, 0.0, 255.0]))
        a = rng.uniform(0, 255, shape) if extreme is None else np.full(shape, extreme)
        if 0 < a.max() <= 1:  # all in (0, 1]: refused as ambiguous (test_bad_arrays...)
            a.flat[0] = 255.0
        return a.astype(kind)
    return rng.integers(0, 256, shape).astype(kind)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(img=images())
def test_every_accepted_array_gives_finite_probabilities(model, img):
    assert_probabilities(model.predict(img))


def test_non_finite_logits_are_an_error_not_nan(model):
    """A model whose weights overflow float32 must not hand out NaN probabilities."""
    import copy
    m = tinymobile.model.Model(copy.deepcopy(model.network), threads=1)
    fc = m.network.layers[-1]
    fc.w[:] = 3e38
    m = tinymobile.model.Model(m.network, threads=1)
    with pytest.raises(tinymobile.TinyMobileError, match="non-finite"):
        m.predict(np.full((8, 8, 3), 255, np.uint8))


# ---- fuzzed image files -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["parrot.jpg", "cat.bmp", "rgba.png"])
def test_mutated_image_files_predict_or_raise_image_error(model, tmp_path_factory, name):
    require_shared()
    directory = tmp_path_factory.mktemp("imgfuzz")
    if name == "rgba.png":
        b = io.BytesIO()
        Image.fromarray(gradient(64, 48)).convert("RGBA").save(b, "PNG")
        seed = b.getvalue()
    else:
        seed = (IMAGES / "samples" / name).read_bytes()
    outcomes = []

    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(ops=mutations(len(seed)))
    def case(ops):
        p = directory / name
        p.write_bytes(mutate(seed, ops))
        with time_limit(15), memory_limit(1 << 30):
            try:
                assert_probabilities(model.predict(p))
                outcomes.append("ok")
            except ImageError:
                outcomes.append("refused")

    case()
    assert outcomes


@pytest.mark.parametrize("values", [np.arange(600) * 2000, np.arange(600) - 300])
def test_32_bit_integer_images_beyond_16_bits_are_refused(model, values):
    """Mode I holds 8-bit values as they are and 16-bit ones scaled; values past 0..65535 were
    clipped (a 0..1.2 M image came out 94 % white, negatives black), now refused by name."""
    im = Image.fromarray(values.reshape(20, 30).astype(np.int32))
    with pytest.raises(ImageError, match=r"32-bit integer image.*0\.\.65535"):
        model.predict(im)
    ok = Image.fromarray((np.arange(600) * 100).reshape(20, 30).astype(np.int32))  # 16-bit range
    assert np.array_equal(preprocess.to_rgb_array(ok)[:, :, 0],
                          np.round(np.asarray(ok, np.float64) / 257).astype(np.uint8))
