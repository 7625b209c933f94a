"""The throughput pipeline (issue 14): the C preprocessing is bit-identical to the NumPy one,
the threaded, batched pipeline gives exactly one-by-one answers in input order, and it holds a
bounded number of images whatever the input size."""
from __future__ import annotations

import itertools
import os
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinymobile
from tinymobile import cli, pipeline
from tinymobile.preprocess import (_pixels_array, _reference_resize_normalize, central_crop,
                                   decode_resize, pil_pixels, preprocess, read_image,
                                   resize_normalize, to_rgb_array)
from tinymobile.fixedpoint import quantize

from conftest import IMAGES, MODELS

DEV = IMAGES / "imagenet-dev"


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


# ---- the C preprocessing against the NumPy one ------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), oh=st.integers(1, 40), ow=st.integers(1, 40),
       crop=st.sampled_from([1.0, 0.875, 0.5, 0.3, 0.01]), f64=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_c_resize_is_bit_identical_to_numpy(h, w, oh, ow, crop, f64, seed):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), np.uint8)
    dtype = np.float64 if f64 else np.float32
    mean = rng.uniform(0, 255, 3).astype(dtype)
    std = rng.uniform(0.5, 100, 3).astype(dtype)
    want = _reference_resize_normalize(rgb, (oh, ow), mean, std, crop)
    got = resize_normalize(rgb, (oh, ow), mean, std, crop)
    assert got.shape == (oh, ow, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(bits(got), bits(want))


def test_c_resize_on_real_photos_and_views():
    mean, std = np.full(3, 127.5), np.full(3, 127.5)
    for path in sorted(DEV.glob("*.JPEG"))[:10]:
        rgb = to_rgb_array(str(path))
        for size in (160, 224, (192, 256)):
            want = _reference_resize_normalize(rgb, size if isinstance(size, tuple) else (size, size),
                                               mean, std, 0.875)
            np.testing.assert_array_equal(bits(resize_normalize(rgb, size, mean, std)), bits(want))
        # a non-contiguous view (every other column) and a read-only decode
        view = rgb[:, ::2]
        np.testing.assert_array_equal(
            bits(resize_normalize(view, 128, mean, std)),
            bits(_reference_resize_normalize(view, (128, 128), mean, std, 0.875)))
        ro = read_image(path, copy=False)
        np.testing.assert_array_equal(ro, rgb)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 50), w=st.integers(1, 50), oh=st.integers(1, 30), ow=st.integers(1, 30),
       dtype=st.sampled_from(["uint8", "int8"]), scale=st.floats(0.003, 0.05),
       zp=st.integers(-128, 127), seed=st.integers(0, 2**31 - 1))
def test_fused_quantized_output_equals_quantize_of_the_float_output(h, w, oh, ow, dtype, scale, zp, seed):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), np.uint8)
    mean, std = np.full(3, 127.5, np.float32), np.full(3, 127.5, np.float32)
    want = quantize(_reference_resize_normalize(rgb, (oh, ow), mean, std, 0.875), scale, zp, dtype)
    got = resize_normalize(rgb, (oh, ow), mean, std, 0.875, quantize=(scale, zp, dtype))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)


def test_decoding_in_place_equals_decoding_to_an_array(tmp_path):
    """decode_resize reads Pillow's RGBX memory in place; it must equal the array path, for RGB
    JPEGs, a grayscale PNG and a palette GIF (those go through the array path)."""
    from PIL import Image
    photos = sorted(DEV.glob("*.JPEG"))[:6]
    Image.open(photos[0]).convert("L").save(tmp_path / "gray.png")
    Image.open(photos[1]).convert("P").save(tmp_path / "palette.gif")
    mean, std = np.full(3, 127.5, np.float32), np.full(3, 127.5, np.float32)
    for path in photos + [tmp_path / "gray.png", tmp_path / "palette.gif"]:
        for quant in (None, (0.0078125, 128, "uint8")):
            for draft in (None, (183, 183)):
                want = resize_normalize(read_image(path, draft=draft), (160, 128), mean, std,
                                        quantize=quant)
                got = decode_resize(path, (160, 128), mean, std, draft=draft, quantize=quant)
                np.testing.assert_array_equal(got, want)
    with Image.open(photos[0]) as im:
        im.load()
        px = pil_pixels(im)
        if px is None:
            pytest.skip("this Pillow does not export image memory (Arrow, Pillow >= 11.2)")
        assert px.pixel_bytes == 4 and (px.height, px.width) == (im.height, im.width)
        np.testing.assert_array_equal(_pixels_array(px), np.asarray(im))


def test_preprocess_matches_the_previous_definition():
    """preprocess() = central_crop + resize_bilinear + (x - mean) / std, as before the C pass."""
    from tinymobile.preprocess import resize_bilinear
    rgb = np.random.default_rng(1).integers(0, 256, (97, 61, 3), np.uint8)
    mean, std = np.array([123.7, 116.3, 103.5]), np.array([58.4, 57.1, 57.4])
    want = ((resize_bilinear(central_crop(rgb, 0.875), 64) - mean) / std).astype(np.float32)
    np.testing.assert_array_equal(bits(preprocess(rgb, 64, mean, std)), bits(want))


def test_other_mean_dtypes_fall_back_to_numpy():
    rgb = np.random.default_rng(2).integers(0, 256, (20, 30, 3), np.uint8)
    mean, std = np.full(3, 128, np.int64), np.full(3, 2, np.int64)
    np.testing.assert_array_equal(
        resize_normalize(rgb, 8, mean, std), _reference_resize_normalize(rgb, (8, 8), mean, std, 0.875))


@settings(max_examples=100, deadline=None)
@given(scale=st.floats(1e-3, 10), zp=st.integers(-128, 255), dtype=st.sampled_from(["uint8", "int8"]),
       seed=st.integers(0, 2**31 - 1))
def test_c_quantize_equals_the_reference(scale, zp, dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == "int8":
        zp = int(np.clip(zp, -128, 127))
    s = np.float32(scale)
    # exact halves (ties), values around them, far outside the range, zeros of both signs
    k = rng.integers(-400, 400, 200).astype(np.float32)
    x = np.concatenate([(k + 0.5) * s, k * s, np.nextafter((k + 0.5) * s, np.float32(np.inf)),
                        rng.uniform(-3000, 3000, 200).astype(np.float32) * s,
                        np.array([0.0, -0.0, 1e30, -1e30], np.float32)]).astype(np.float32)
    np.testing.assert_array_equal(pipeline.quantize_image(x, scale, zp, dtype),
                                  quantize(x, scale, zp, dtype))


# ---- the ordered, bounded map ------------------------------------------------------------------

def test_ordered_map_keeps_order_and_a_bounded_window():
    pulled = []

    def items():
        for i in range(200):
            pulled.append(i)
            yield i

    def slow_square(i):
        time.sleep(0.001 * (i % 3))  # finish out of order
        return i * i

    out = []
    for k, v in enumerate(pipeline.ordered_map(slow_square, items(), jobs=3, ahead=5)):
        out.append(v)
        assert len(pulled) <= k + 1 + 5  # never more than `ahead` submitted beyond what is out
    assert out == [i * i for i in range(200)]


def test_ordered_map_raises_in_order_and_stops_its_threads():
    def fn(i):
        if i == 7:
            raise KeyError(i)
        return i

    before = threading.active_count()
    gen = pipeline.ordered_map(fn, range(100), jobs=2)
    assert list(itertools.islice(gen, 7)) == list(range(7))
    with pytest.raises(KeyError):
        next(gen)
    gen2 = pipeline.ordered_map(fn, range(5), jobs=2)
    next(gen2)
    gen2.close()  # early close: cancels and joins
    time.sleep(0.05)
    assert threading.active_count() <= before
    assert list(pipeline.ordered_map(fn, range(5), jobs=0)) == list(range(5))


# ---- the pipeline against one-by-one answers ---------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The real uint8 0.5_160 model (integer kernels) and a float model with its weights."""
    src = MODELS / "mobilenet_v1_0.5_160_quant.tflite"
    if not src.exists():
        pytest.skip("../shared is not present")
    d = tmp_path_factory.mktemp("pipeline")
    assert cli.main(["-q", "convert", str(src), "-o", str(d / "q.npz")]) == 0
    assert cli.main(["-q", "convert", str(src), "-o", str(d / "f.npz"), "--dequantize"]) == 0
    return {"uint8": tinymobile.load(d / "q.npz", threads=2),
            "float32": tinymobile.load(d / "f.npz", threads=2)}


@pytest.fixture(scope="module")
def mixed_images(tmp_path_factory):
    """Paths of real photos with an unreadable file, a PIL image and an array among them."""
    from PIL import Image
    paths = [str(p) for p in sorted(DEV.glob("*.JPEG"))[:21]]
    bad = tmp_path_factory.mktemp("bad") / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    items = paths[:5] + [str(bad)] + paths[5:12] + [Image.open(paths[12]).convert("RGB")] \
        + [to_rgb_array(paths[13])] + paths[14:]
    return items


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("batch,jobs,streams", [(1, 0, 1), (3, 1, 1), (16, 3, 1), (64, 2, 1),
                                                (2, 2, 2), (3, 0, 3)])
def test_pipeline_equals_one_by_one(models, mixed_images, dtype, batch, jobs, streams):
    model = models[dtype]
    results = list(pipeline.run(model, mixed_images, batch=batch, jobs=jobs, streams=streams))
    assert [r.index for r in results] == list(range(len(mixed_images)))
    for r, image in zip(results, mixed_images):
        assert r.image is image
        if isinstance(image, str) and image.endswith("broken.jpg"):
            assert r.logits is None and "broken.jpg" in r.error
            continue
        assert r.error is None
        alone = model.logits(model.preprocess(image))[0]
        np.testing.assert_array_equal(r.logits, alone)
        top = model.classify(image, top=1)[0]
        assert model.labels[int(np.argmax(r.logits))] == top[0]


def test_pipeline_reads_iterators_lazily(models):
    paths = [str(p) for p in sorted(DEV.glob("*.JPEG"))[:6]]
    pulled = []

    def gen():
        for p in itertools.cycle(paths):
            pulled.append(p)
            yield p

    it = pipeline.run(models["uint8"], gen(), batch=4, jobs=2)
    first = [next(it) for _ in range(10)]
    it.close()
    assert [r.index for r in first] == list(range(10))
    assert len(pulled) <= 10 + 4 + 2 * 2 + 4  # the window: batch + 2 * jobs ahead


def test_pipeline_rejects_bad_settings(models):
    with pytest.raises(tinymobile.InputError, match="batch"):
        list(pipeline.run(models["uint8"], ["x"], batch=0))
    with pytest.raises(tinymobile.InputError, match="jobs"):
        list(pipeline.run(models["uint8"], ["x"], jobs=-1))
    with pytest.raises(tinymobile.InputError, match="streams"):
        list(pipeline.run(models["uint8"], ["x"], streams=0))
    # fractions are refused, not truncated (batch=2.5 ran batches of 2); whole floats are counts
    for name, value in (("batch", 2.5), ("jobs", 1.5), ("streams", 1.2), ("batch", "4"),
                        ("jobs", True), ("batch", float("nan"))):
        with pytest.raises(tinymobile.InputError, match=f"{name} must be an integer"):
            list(pipeline.run(models["uint8"], ["x"], **{name: value}))
    image = str(sorted(DEV.glob("*.JPEG"))[0])
    results = list(pipeline.run(models["uint8"], [image] * 3, batch=2.0, jobs=np.int64(1)))
    assert [r.error for r in results] == [None] * 3


def test_fast_decode_decodes_large_jpegs_smaller(models):
    path = sorted(DEV.glob("*.JPEG"))[0]
    full = read_image(path)
    small = read_image(path, draft=(183, 183))
    assert small.shape[0] < full.shape[0] and min(small.shape[:2]) >= 183 * 0.99
    stages = pipeline.Stages(models["uint8"], fast_decode=True)
    assert stages.draft == (183, 183)  # ceil(160 / 0.875): the crop stays >= the input
    exact = list(pipeline.run(models["uint8"], [str(path)] * 2, jobs=1))
    fast = list(pipeline.run(models["uint8"], [str(path)] * 2, jobs=1, fast_decode=True))
    np.testing.assert_array_equal(exact[0].logits, models["uint8"].logits(models["uint8"].preprocess(str(path)))[0])
    assert fast[0].logits.shape == exact[0].logits.shape


def test_cli_predict_same_output_for_any_jobs_and_batch(models, tmp_path, capsys):
    model_file = tmp_path / "q.npz"
    from tinymobile import model_format
    model_format.save(models["uint8"].network, model_file)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted(DEV.glob("*.JPEG"))[:9]:
        os.symlink(p, folder / p.name)
    outs = []
    for extra in ([], ["--jobs", "0", "--batch", "1"], ["-j", "3", "-b", "4"],
                  ["-b", "2", "--streams", "2"], ["-b", "2", "--threads", "2"], ["-b", "2"]):
        assert cli.main(["-q", "predict", str(folder), "-m", str(model_file), "-f", "json", *extra]) == 0
        outs.append(capsys.readouterr().out)
    assert all(o == outs[0] for o in outs) and len(outs[0].splitlines()) == 9
    assert cli.main(["-q", "predict", str(folder), "-m", str(model_file), "--jobs", "-1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--jobs" in err


def test_binary_sigmoid_model_through_the_pipeline_cli_and_probabilities(tmp_path, capsys):
    """A single-logit sigmoid model: predict (pipeline) and the CLI give [1 - s, s], never a
    softmax of one logit (always 1.0)."""
    from tinymobile import model_format
    from tinymobile.model import Model
    net = tinymobile.build(0.25, 64, num_classes=1, threads=1).network
    net.output_activation = "sigmoid"
    model = Model(net, threads=1)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (70, 80, 3), np.uint8) for _ in range(3)]
    probs = model.predict(images, jobs=2)
    assert probs.shape == (3, 2)
    np.testing.assert_array_equal(probs[1], model.predict(images[1]))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    path = tmp_path / "b.npz"
    model_format.save(net, path)
    from PIL import Image
    Image.fromarray(images[0]).save(tmp_path / "a.png")
    assert cli.main(["-q", "predict", str(tmp_path / "a.png"), "-m", str(path), "-f", "json"]) == 0
    import json
    top = json.loads(capsys.readouterr().out)["top"][0]
    want = model.classify(str(tmp_path / "a.png"), top=1)[0]
    assert (top["label"], top["probability"]) == (want[0], round(want[1], 6))


def test_a_batch_larger_than_the_images_allocates_for_the_images():
    """batch is an upper bound: 3 images with batch=10**12 need a buffer of 3, not 10**12 rows
    (that was a MemoryError for 12 PB)."""
    m = tinymobile.build(alpha=0.25, resolution=32, num_classes=4, threads=1)
    images = [np.full((9, 9, 3), v, np.uint8) for v in (0, 100, 200)]
    np.testing.assert_array_equal(m.predict(images, batch=10**12), m.predict(images))
    assert len(list(pipeline.run(m, images, batch=10**12))) == 3
