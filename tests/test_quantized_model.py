"""Quantized models through the public API: format version 2 round trip and refusals, the
Model calls (forward / predict / classify / features / threads), the CLI."""
import io
from contextlib import redirect_stdout

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES, ISAS, MODELS, require_shared
from tinymobile import model_format, reference
from tinymobile import quantized_reference as qr
from tinymobile.errors import InputError, ModelFormatError
from tinymobile.model import Model

SMALL = "mobilenet_v1_0.25_128_quant"
EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor"


@pytest.fixture(scope="module")
def q_npz(tmp_path_factory):
    require_shared()
    from tinymobile.convert import convert
    dst = tmp_path_factory.mktemp("q") / "q.npz"
    convert(str(MODELS / f"{SMALL}.tflite"), dst)
    return dst


@pytest.fixture()
def arrays(q_npz):
    with np.load(q_npz, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write(tmp_path, arrays):
    p = tmp_path / "m.npz"
    np.savez(p, **arrays)
    return p


def test_round_trip_and_version(tmp_path, q_npz, arrays):
    assert int(arrays["version"]) == 2 and str(arrays["quantization"]) == "uint8"
    net = model_format.load(q_npz)
    back = model_format.to_arrays(net)
    assert set(back) == set(arrays)
    for k in arrays:
        assert np.array_equal(back[k], arrays[k]), k


def test_unknown_version_is_refused(tmp_path, arrays):
    arrays["version"] = np.array(4)
    with pytest.raises(ModelFormatError, match="unsupported model format version 4"):
        tinymobile.load(write(tmp_path, arrays))


@pytest.mark.parametrize("key, value, message", [
    ("pw3/w", np.zeros((3, 3), np.uint8), "'pw3/w' has shape"),
    ("pw3/w", None, "no 'pw3/w' array"),
    ("dw2/b", np.zeros(8, np.float32), "'dw2/b' must be int32"),
    ("conv0/clamp", np.array([0, 300], np.int32), "'conv0/clamp'"),
    ("pw1/multiplier", np.array([-5], np.int32), "multipliers must be >= 0"),
    ("pw1/shift", np.array([40], np.int32), "shifts in -31..30"),
    ("pool/mode", np.array("max"), "'pool/mode'"),
    ("quantization", np.array("int4"), "'quantization'"),
    ("fc/out_scale", np.array(-1.0, np.float32), "'fc/out_scale' must be finite and positive"),
    ("input/zero_point", np.array(999, np.int32), "'input/zero_point'"),
    ("dw1/w_scale", np.ones(5, np.float32), "'dw1/w_scale' must be 1-d with 1 or"),
])
def test_malformed_files_are_refused_by_name(tmp_path, arrays, key, value, message):
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    with pytest.raises(ModelFormatError, match=message.replace("(", r"\(").replace("[", r"\[")):
        tinymobile.load(write(tmp_path, arrays))


def test_quantized_model_api(q_npz):
    model = tinymobile.load(q_npz, threads=1)
    assert isinstance(model, Model) and model.dtype == "uint8"
    assert (model.resolution, model.num_classes, model.labels[0]) == (128, 1001, "background")
    assert model.input_quantization == (0.0078125, 128)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 128, 128, 3)).astype(np.uint8)
    y = model.forward(x)
    assert y.dtype == np.uint8 and y.shape == (3, 1001)
    np.testing.assert_array_equal(y, qr.forward(model.network, x))
    for isa in ISAS:
        for threads in (1, 2, 3):
            np.testing.assert_array_equal(
                tinymobile.load(q_npz, threads=threads, isa=isa).forward(x), y)
    with pytest.raises(InputError, match="takes uint8"):
        model.forward(x.astype(np.float32))
    with pytest.raises(InputError, match="expects"):
        model.forward(x[:, :16])  # below the 32-pixel minimum of another input size
    scale, zp = model.output_quantization
    assert scale > 0 and 0 <= zp <= 255
    probs = model.predict(str(IMAGES / "samples" / "cat.bmp"))
    assert probs.shape == (1001,) and abs(float(probs.sum()) - 1) < 1e-5
    top = model.classify(str(IMAGES / "samples" / "cat.bmp"), top=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert model.labels[int(probs.argmax())] == top[0][0]
    # predict = softmax of the dequantized logits of the quantized preprocessed image
    xq = model.quantize_input(model.preprocess(str(IMAGES / "samples" / "cat.bmp")))
    logits = qr.dequantize(model.forward(xq), scale, zp)
    np.testing.assert_allclose(probs, reference.softmax(logits)[0], rtol=1e-6)
    feats = model.features([str(IMAGES / "samples" / "cat.bmp")] * 2)
    assert feats.shape == (2, 256) and feats.dtype == np.float32 and (feats >= 0).all()
    assert "quantized uint8" in model.summary()


def test_embedding_extractor_features(tmp_path):
    require_shared()
    from tinymobile.convert import convert
    convert(str(MODELS / f"{EXTRACTOR}.tflite"), tmp_path / "e.npz")
    model = tinymobile.load(tmp_path / "e.npz", threads=2)
    assert model.num_classes == 0
    img = str(IMAGES / "samples" / "parrot.jpg")
    f = model.features(img)
    assert f.shape == (1024,)
    q = model.forward(model.quantize_input(model.preprocess(img)))
    np.testing.assert_array_equal(f, qr.dequantize(q, *model.output_quantization)[0])
    with pytest.raises(tinymobile.TinyMobileError, match="feature extractor"):
        model.predict(img)


def test_cli_eval_and_predict_on_a_quantized_model(q_npz):
    from tinymobile import cli
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["-q", "eval", str(IMAGES / "imagenet-dev"), "-m", str(q_npz)]) == 0
    top1 = float(out.getvalue().split()[1])
    assert 0.3 <= top1 <= 1.0
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["-q", "predict", str(IMAGES / "samples" / "grace_hopper.bmp"),
                         "-m", str(q_npz), "-k", "1"]) == 0
    assert "grace_hopper.bmp" in out.getvalue()
