"""The public API: load/save, predict/classify/features on images, errors that name the problem,
planned buffers, ISA and thread selection."""
import threading
import tracemalloc

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES, ISAS, fixture_network, require_shared
from tinymobile import model_format
from tinymobile.errors import ImageError, InputError, ModelFormatError, TinyMobileError


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory):
    net, _, _ = fixture_network("0.25", 128)
    net.labels = [f"class {i}" for i in range(1000)]
    path = tmp_path_factory.mktemp("models") / "m.npz"
    model_format.save(net, path)
    return path


def test_load_round_trip_reproduces_tensorflow(small_model_path):
    _, x, y = fixture_network("0.25", 128)
    m = tinymobile.load(small_model_path, threads=1)
    assert np.abs(m.forward(x) - y).max() <= 1e-4 * y.std()
    assert m.labels[3] == "class 3" and m.num_classes == 1000 and m.resolution == 128


def test_predict_classify_features_on_images(small_model_path):
    require_shared()
    m = tinymobile.load(small_model_path)
    path = IMAGES / "samples" / "grace_hopper.bmp"
    probs = m.predict(str(path))
    assert probs.shape == (1000,) and abs(probs.sum() - 1) < 1e-5
    top = m.classify(path, top=3)
    assert [p for _, p in top] == sorted([p for _, p in top], reverse=True)
    assert top[0][0] == m.labels[int(probs.argmax())]
    from PIL import Image
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
        assert np.array_equal(m.predict(im), probs)
    assert np.array_equal(m.predict(arr), probs)
    batch = m.predict([arr, arr[::-1]])
    assert batch.shape == (2, 1000) and np.array_equal(batch[0], probs)
    assert m.features(arr).shape == (256,)
    # grayscale and RGBA are converted
    assert m.predict(arr[:, :, 0]).shape == (1000,)
    assert m.predict(np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)])).shape == (1000,)


def test_preprocessing_uses_the_model_file(small_model_path):
    """Changing mean/std in the file changes what predict feeds the network."""
    m = tinymobile.load(small_model_path)
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    x = m.preprocess(img)
    assert x.shape == (1, 128, 128, 3) and -1.0 <= x.min() and x.max() <= 1.0
    m.network.input_mean = np.zeros(3, np.float32)
    assert m.preprocess(img).min() >= 0.0


def test_classify_without_labels_uses_indices():
    m = tinymobile.build(alpha=0.25, resolution=64, num_classes=7, threads=1)
    labels = [label for label, _ in m.classify(np.zeros((10, 10, 3), np.uint8), top=7)]
    assert sorted(labels) == [str(i) for i in range(7)]


@pytest.mark.parametrize("bad", [
    np.zeros((1, 31, 128, 3), np.float32), np.zeros((1, 128, 4097, 3), np.float32),
    np.zeros((1, 128, 128, 4), np.float32), np.zeros((128, 128, 3), np.float32),
    np.zeros((0, 128, 128, 3), np.float32), np.full((1, 128, 128, 3), np.nan, np.float32),
    np.array([["a"]])])
def test_forward_rejects_bad_input(small_model_path, bad):
    m = tinymobile.load(small_model_path, threads=1)
    with pytest.raises(InputError):
        m.forward(bad)


@pytest.mark.parametrize("hw", [(127, 128), (32, 32), (96, 161), (224, 224)])
def test_forward_runs_any_input_size(hw):
    """The network is convolutional up to its global pool: forward takes (N, H, W, 3) for any
    H, W >= 32, each shape with its own plan, and equals the NumPy reference at that size."""
    from tinymobile import reference
    m = tinymobile.build(alpha=0.25, resolution=(128, 96), num_classes=10, threads=1)
    x = np.random.default_rng(hw[0]).uniform(-1, 1, (2,) + hw + (3,)).astype(np.float32)
    want = reference.forward(m.network, x)
    y = m.forward(x)
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
    assert np.array_equal(m.forward(x), y)                       # the kept plan, same answer
    assert m.forward(np.zeros((1, 128, 96, 3), np.float32)).shape == (1, 10)  # own size too


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 12345, -1])
def test_forward_rejects_a_single_non_finite_value(small_model_path, value, where):
    """The check is made while copying the input in (one pass in C): one bad value anywhere."""
    m = tinymobile.load(small_model_path, threads=1)
    x = np.zeros((2, 128, 128, 3), np.float32)
    x.reshape(-1)[where] = value
    with pytest.raises(InputError, match="NaN or infinity"):
        m.forward(x)
    ok = np.full_like(x, np.finfo(np.float32).max)
    ok[0, 0, 0, 0] = np.finfo(np.float32).tiny / 2  # subnormal: finite
    m.forward(ok[:1])  # finite extremes pass the check (the logits may overflow: not its job)
    y = m.forward(np.zeros_like(x[:1]))  # the plan is usable after a rejected input
    assert np.isfinite(y).all()


@pytest.mark.parametrize("bad", [np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 5), np.uint8),
                                 np.full((4, 4, 3), np.inf), np.full((4, 4, 3), 300, np.int32),
                                 "/nonexistent/image.jpg", 42])
def test_predict_rejects_bad_images(small_model_path, bad):
    m = tinymobile.load(small_model_path, threads=1)
    with pytest.raises(ImageError):
        m.predict(bad)


def test_unreadable_image_file(tmp_path, small_model_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg"):
        tinymobile.load(small_model_path).predict(p)


def test_errors_are_value_errors():
    assert issubclass(TinyMobileError, ValueError)
    for cls in (ModelFormatError, ImageError, InputError):
        assert issubclass(cls, TinyMobileError)


def test_warm_forward_allocates_nothing_large(small_model_path):
    m = tinymobile.load(small_model_path, threads=2)
    x = np.zeros((1, 128, 128, 3), np.float32)
    m.forward(x)
    m.forward(x)
    tracemalloc.start()
    try:
        for _ in range(3):
            m.forward(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The logits copy (4 kB) is the only array a warm call makes, plus NumPy's own small
    # temporaries (about 34 kB with numpy 1.24); planning buffers again would take two
    # ping-pong buffers of 256 kB each for this model.
    assert peak < 64 * 1024, peak


def test_threads_argument_and_environment(monkeypatch, small_model_path):
    assert tinymobile.load(small_model_path, threads=3).threads == 3
    monkeypatch.setenv("TINYMOBILE_NUM_THREADS", "2")
    assert tinymobile.load(small_model_path).threads == 2
    monkeypatch.setenv("TINYMOBILE_NUM_THREADS", "zero")
    with pytest.raises(TinyMobileError, match="TINYMOBILE_NUM_THREADS"):
        tinymobile.load(small_model_path)
    with pytest.raises(TinyMobileError, match="threads"):
        tinymobile.load(small_model_path, threads=0)


def test_isa_environment_forces_a_path(monkeypatch, small_model_path):
    for name in ISAS:
        monkeypatch.setenv("TINYMOBILE_ISA", name)
        assert tinymobile.isa() == name
        assert tinymobile.load(small_model_path, threads=1).isa == name
    monkeypatch.setenv("TINYMOBILE_ISA", "sse9")
    with pytest.raises(TinyMobileError, match="TINYMOBILE_ISA"):
        tinymobile.isa()


def test_shared_model_across_threads_gives_serial_answers(small_model_path):
    _, x, _ = fixture_network("0.25", 128)
    m = tinymobile.load(small_model_path, threads=2)
    expected = [m.forward(x[i:i + 1]) for i in range(4)]
    results, errors = {}, []

    def worker(t):
        try:
            for rep in range(5):
                i = (t + rep) % 4
                results[(t, rep)] = (i, m.forward(x[i:i + 1]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, out in results.values():
        assert np.array_equal(out, expected[i])


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.uint16])
def test_float_forward_refuses_integer_pixels(small_model_path, dtype):
    """forward / logits of a float model take the preprocessed image: an integer array there is
    raw pixels (0..255 where the network wants [-1, 1]), refused, pointing at predict."""
    m = tinymobile.load(small_model_path, threads=1)
    pixels = np.random.default_rng(0).integers(0, 256, (1, 128, 128, 3)).astype(dtype)
    for call in (m.forward, m.logits):
        with pytest.raises(InputError, match=r"preprocess.*predict"):
            call(pixels)
    np.testing.assert_array_equal(m.forward(m.preprocess(pixels[0])),
                                  m.forward(m.preprocess(pixels[0]).astype(np.float64)))


def test_quantize_input_refuses_integer_pixels():
    """A quantized model's quantize_input takes the preprocessed float image, not its pixels."""
    m = tinymobile.build(alpha=0.25, resolution=32, num_classes=3, threads=1)
    from tinymobile.quantize import quantize_model
    q = tinymobile.Model(quantize_model(m, [np.full((32, 32, 3), 128, np.uint8)]), threads=1)
    with pytest.raises(InputError, match=r"preprocess.*predict"):
        q.quantize_input(np.zeros((1, 32, 32, 3), np.uint8))
    assert q.quantize_input(np.zeros((1, 32, 32, 3), np.float32)).dtype == np.dtype(q.input_dtype)


def test_classify_top_is_a_positive_integer(small_model_path):
    """top > classes gives them all; top < 1 and non-integers are refused, not read as 1 / int()."""
    m = tinymobile.load(small_model_path, threads=1)
    img = np.zeros((8, 8, 3), np.uint8)
    assert len(m.classify(img, top=10_000)) == m.num_classes
    assert len(m.classify(img, top=np.int64(3))) == 3
    for bad in (0, -1, 2.5, None, "3", True):
        with pytest.raises(InputError, match="top"):
            m.classify(img, top=bad)


@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=float("inf")), "alpha"), (dict(alpha="0.5"), "alpha"), (dict(alpha=None), "alpha"),
    (dict(alpha=float("nan")), "alpha"), (dict(alpha=0), "alpha"),
    (dict(alpha=40.0), "too large"),  # 20 GB of weights: refused before allocating any
    (dict(num_classes=-1), "num_classes"), (dict(num_classes=2.5), "num_classes"),
    (dict(num_classes=10**7), "num_classes"), (dict(num_classes="10"), "num_classes"),
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"),
])
def test_build_refuses_bad_arguments_in_one_error(kwargs, match):
    args = dict(alpha=0.25, resolution=32, threads=1)
    args.update(kwargs)
    with pytest.raises(TinyMobileError, match=match):
        tinymobile.build(**args)


def test_build_accepts_odd_widths_and_sizes():
    for alpha, res in [(0.3, 97), (1e-3, 1), (2.0, 33)]:
        m = tinymobile.build(alpha=alpha, resolution=res, num_classes=3, threads=1)
        assert m.predict(np.zeros((5, 5, 3), np.uint8)).shape == (3,)
