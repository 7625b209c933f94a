"""Every case of ../shared/user-models/cases.json, through the CLI and through the API.

The manifest lists model files as users bring them (Keras transfer-learning heads, nested and
Sequential models, full-model .h5, weights-only .h5, float and full-integer TFLite exports, and
files that must be refused) with TensorFlow's / TFLite's outputs. Each ``match`` case is converted
with ``tinymobile convert FILE -o OUT.npz [convert_args]`` and with ``tinymobile.convert``, and the
model must reproduce the reference (its README gives the rules, restated in ``_check``); each
``refuse`` case must exit non-zero with one line naming the problem, and raise a TinyMobileError
from the API.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES, SHARED
from tinymobile import cli
from helpers.cli import run as _run
from tinymobile.convert import load_source
from tinymobile.errors import TinyMobileError
from tinymobile.fixedpoint import dequantize, sigmoid, softmax

USER_MODELS = SHARED / "user-models"
MANIFEST = USER_MODELS / "cases.json"
CASES: List[Dict] = (json.loads(MANIFEST.read_text())["cases"] if MANIFEST.is_file() else [])
pytestmark = pytest.mark.skipif(not CASES, reason="../shared/user-models is not present")

#: Arguments a case needs beyond its manifest entry, and why. TFLiteConverter folds
#: Rescaling(1/255) (a multiply with no offset) into the first convolution's weights, so the
#: .tflite of f_rescale255 keeps no trace that its input is RGB 0..255: no converter can read it
#: from the file. convert says which normalisation it assumed (test below); the user sets it.
EXTRA_ARGS = {"f_rescale255.tflite": ["--mean", "0", "--std", "1"]}

FORWARD_TOL = 1e-4      # max|diff| / std(y)
PREDICT_TOL = 1e-3      # max|diff| of probabilities
FLOAT_IO_TOL = 1e-6     # quantized models with float I/O: logits vs dequantized y_pre


def _args(case) -> List[str]:
    return list(case["convert_args"]) + EXTRA_ARGS.get(case["file"], [])


def _api_kwargs(args: List[str]) -> Dict:
    """The API equivalents of the CLI arguments the manifest uses."""
    kw, i = {}, 0
    while i < len(args):
        key, value = args[i].lstrip("-"), args[i + 1]
        kw[key] = float(value) if key in ("crop", "mean", "std") else value
        i += 2
    return kw


def _ref(case):
    return np.load(USER_MODELS / case["ref"], allow_pickle=False)


def _distinct_rows(y: np.ndarray, tol: float) -> None:
    """The reference outputs must differ between the inputs (a reference that gives every input
    the same answer proves nothing): every pair of rows by far more than the tolerance."""
    y = y.reshape(len(y), -1).astype(np.float64)
    for i in range(len(y)):
        for j in range(i):
            assert np.abs(y[i] - y[j]).max() > 100 * tol, (i, j)


def _check(case, model: tinymobile.Model) -> float:
    """Compare ``model`` with the case's reference; returns the measured figure (max|diff|/std
    for forward, max|diff| for predict_raw and float-I/O quantized, 0 for bit-exact)."""
    ref = _ref(case)
    x, y = ref["x"], ref["y"]
    assert model.input_size == tuple(case["input_hw"])
    classes = case["classes"]
    assert model.network.num_outputs == (classes or model.network.feature_size)
    assert model.network.has_classifier == bool(classes)
    compare = case["compare"]
    if compare == "forward":
        out = model.forward(x)
        if case["y_is"] == "probs":
            # the model stores logits; its own output activation gives the probabilities
            out = sigmoid(out) if classes == 1 else softmax(out)
            assert model.network.output_activation == ("sigmoid" if classes == 1 else "softmax")
        tol = FORWARD_TOL * float(y.std())
        _distinct_rows(y, tol)
        diff = float(np.abs(out - y).max())
        assert diff <= tol, f"max|diff|/std = {diff / y.std():.2e}"
        if classes == 1:
            assert ((out > 0.5) == (y > 0.5)).all()
            probs = model.predict(list(np.zeros((2, 8, 8, 3), np.uint8)))
            assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1)
        else:
            assert (out.argmax(1) == y.argmax(1)).all()
        return diff / float(y.std())
    if compare == "predict_raw":
        assert x.dtype == np.uint8 and x.shape[1:3] == tuple(case["input_hw"])
        probs = model.predict(list(x))
        _distinct_rows(y, PREDICT_TOL)
        diff = float(np.abs(probs - y).max())
        assert diff <= PREDICT_TOL, f"max|diff| = {diff:.2e}"
        assert (probs.argmax(1) == y.argmax(1)).all()
        return diff
    assert compare == "quantized"
    assert model.is_quantized
    want = ref["y_pre"] if case["pre_softmax"] else y
    _distinct_rows(want.astype(np.int64), 0.01)
    if case["io"] == "float":
        assert x.dtype == np.float32
        xq = model.quantize_input(x)
        np.testing.assert_array_equal(model.forward(xq), want)
        logits = model.logits(x)
        want_f = dequantize(want, float(ref["y_pre_scale"]), int(ref["y_pre_zero_point"]))
        diff = float(np.abs(logits - want_f).max())
        assert diff <= FLOAT_IO_TOL
        return diff
    assert model.input_dtype == case["io"] and x.dtype == np.dtype(case["io"])
    out = model.forward(x)
    np.testing.assert_array_equal(out, want)  # bit-exact with TFLite's reference kernels
    assert (out.astype(np.int64).argmax(1) == want.astype(np.int64).argmax(1)).all()
    return 0.0


MATCH = [c for c in CASES if c["expect"] == "match"]
REFUSE = [c for c in CASES if c["expect"] == "refuse"]


@pytest.mark.parametrize("case", MATCH, ids=[c["file"] for c in MATCH])
def test_case_through_the_cli(case, capsys, tmp_path):
    dst = tmp_path / "model.npz"
    code, out, err = _run(capsys, "convert", USER_MODELS / case["file"], "-o", dst, *_args(case))
    assert code == 0, err
    assert out.startswith(f"wrote {dst}")
    model = tinymobile.load(dst, threads=1)
    _check(case, model)
    # predict on a photo: one line naming the classes (both of a binary model)
    if case["classes"]:
        image = IMAGES / "samples" / "cat.bmp"
        code, out, err = _run(capsys, "-q", "predict", image, "--model", dst, "--top", "9")
        assert code == 0, err
        shown = out.count("%")
        assert shown == (2 if case["classes"] == 1 else case["classes"])


@pytest.mark.parametrize("case", MATCH, ids=[c["file"] for c in MATCH])
def test_case_through_the_api(case, tmp_path):
    kw = _api_kwargs(_args(case))
    net = tinymobile.convert(USER_MODELS / case["file"], tmp_path / "m.npz", **kw)
    from_file = tinymobile.load(tmp_path / "m.npz", threads=1)
    _check(case, from_file)
    # the file holds everything: the model straight from the converter answers the same
    direct = tinymobile.Model(net, threads=1)
    x = _ref(case)["x"]
    if case["compare"] == "predict_raw":
        np.testing.assert_array_equal(direct.predict(list(x)), from_file.predict(list(x)))
    elif case.get("io") == "float":
        np.testing.assert_array_equal(direct.logits(x), from_file.logits(x))
    else:
        np.testing.assert_array_equal(direct.forward(x), from_file.forward(x))


@pytest.mark.parametrize("case", REFUSE, ids=[c["file"] for c in REFUSE])
def test_refused_case_through_the_cli(case, capsys, tmp_path):
    dst = tmp_path / "model.npz"
    code, out, err = _run(capsys, "convert", USER_MODELS / case["file"], "-o", dst, *_args(case))
    lines = [l for l in err.splitlines() if l.strip()]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("tinymobile: error: ")
    for word in case["refuse_words"]:
        assert word.lower() in lines[0].lower(), lines[0]
    assert not dst.exists()


@pytest.mark.parametrize("case", REFUSE, ids=[c["file"] for c in REFUSE])
def test_refused_case_through_the_api(case, tmp_path):
    with pytest.raises(TinyMobileError) as e:
        tinymobile.convert(USER_MODELS / case["file"], tmp_path / "m.npz")
    for word in case["refuse_words"]:
        assert word.lower() in str(e.value).lower()
    assert "\n" not in str(e.value)
    with pytest.raises(TinyMobileError):
        load_source(USER_MODELS / case["file"])


def test_dynamic_range_file_converts_with_dequantize(tmp_path):
    """The refusal's advice works: --dequantize gives a float model that follows TFLite's own
    (dequantized-weight) answers."""
    case = next(c for c in CASES if c["kind"] == "tflite-dynamic")
    net = tinymobile.convert(USER_MODELS / case["file"], tmp_path / "m.npz", dequantize=True)
    ref = _ref(case)
    model = tinymobile.load(tmp_path / "m.npz", threads=1)
    probs = softmax(model.forward(ref["x"]))
    assert not net.is_quantized
    assert (probs.argmax(1) == ref["y"].argmax(1)).all()


def test_every_manifest_file_is_a_case():
    """The harness runs every case of the manifest, and the manifest covers every model file."""
    files = {c["file"] for c in CASES}
    on_disk = {f for f in os.listdir(USER_MODELS) if f.endswith((".keras", ".h5", ".tflite"))}
    assert files == on_disk
    assert len(MATCH) + len(REFUSE) == len(CASES)


def test_undetectable_input_range_is_said(capsys, tmp_path):
    """A Keras-exported float TFLite graph does not say how its input is normalised; convert
    states the normalisation it assumed, so the case in EXTRA_ARGS is visible, not silent."""
    code, out, err = _run(capsys, "convert", USER_MODELS / "f_rescale255.tflite", "-o",
                          tmp_path / "m.npz", "--crop", "1.0")
    assert code == 0
    assert "input (RGB - 127.5) / 127.5" in out
    assert "assumed" in err and "--mean/--std" in err
    # where the graph says it (f_rescale127: MUL 1/127.5, ADD -1) nothing is assumed
    code, out, err = _run(capsys, "convert", USER_MODELS / "f_rescale127.tflite", "-o",
                          tmp_path / "m2.npz")
    assert code == 0 and "input (RGB - 127.5) / 127.5" in out and "assumed" not in err


def _keras2_weights_only(tmp_path, case: str):
    """``case``.h5 (a full model in the Keras 2 layout) without its model_config: what Keras 2's
    ``model.save_weights('w.h5')`` writes for the same model."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "weights.h5"
    path.write_bytes((USER_MODELS / f"{case}.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        del f.attrs["model_config"]
    return path


def test_keras2_weights_only_transfer_model_is_keras_made(capsys, tmp_path):
    """A user's Keras 2 weights-only file (not a keras-applications file name: --resolution
    given) is converted as the other Keras-made files are: the whole image (crop 1.0; it was
    the official 0.875, so predict differed from the user's Keras model on every photo), and
    convert says what the weights cannot tell: the input normalisation and the classifier's
    activation."""
    path = _keras2_weights_only(tmp_path, "a_transfer")
    net = load_source(path, resolution=160)
    assert net.crop == 1.0 and net.normalisation_assumed and net.head_activation_assumed
    code, out, err = _run(capsys, "convert", path, "-o", tmp_path / "m.npz", "-r", "160")
    assert code == 0 and "crop 1," in out
    assert "normalised: assumed" in err
    assert "activation" in err and "assumed softmax" in err
    ref = _ref(next(c for c in MATCH if c["file"] == "a_transfer.keras"))
    model = tinymobile.load(tmp_path / "m.npz")
    y = ref["y"]
    assert np.abs(softmax(model.forward(ref["x"])) - y).max() <= FORWARD_TOL * y.std()
    # where the file records the activation, nothing about it is said
    code, out, err = _run(capsys, "convert", USER_MODELS / "a_transfer.h5", "-o", tmp_path / "k.npz")
    assert code == 0 and "activation" not in err


def test_keras_applications_weights_keep_the_official_conventions(capsys, tmp_path):
    src = SHARED / "fixtures" / "mobilenet_2_5_128_tf.h5"
    net = load_source(src)
    assert net.crop == 0.875 and not net.normalisation_assumed and not net.head_activation_assumed
    code, out, err = _run(capsys, "convert", src, "-o", tmp_path / "m.npz")
    assert code == 0 and "assumed" not in err


def _keras2_nested_weights_only(tmp_path, pooling: bool):
    """a_transfer's weights as Keras 2's save_weights writes a model with the MobileNet nested
    (``Sequential([base, GlobalAveragePooling2D(), Dense(5)])``): the top level lists the layers
    [input, base, (pooling,) dense]; the base's group holds every weight of the body
    (``conv1/kernel:0``...) and nothing records its weightless layers (``conv_pad_2``...)."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / ("nested.h5" if pooling else "nested_no_pool.h5")
    with h5py.File(USER_MODELS / "a_transfer.h5", "r") as f, h5py.File(path, "w") as out:
        src = f["model_weights"]
        inner = [n.decode() if isinstance(n, bytes) else n for n in src.attrs["layer_names"]]
        top = ["input_1", "mobilenet_0.25_160"] + (["global_average_pooling2d"] if pooling else []) \
            + ["dense"]
        out.attrs["layer_names"] = [n.encode() for n in top]
        base = out.create_group("mobilenet_0.25_160")
        names = []
        for layer in inner:
            if layer in ("input_layer", "global_average_pooling2d", "dropout", "dense"):
                continue
            for w in src[layer].attrs.get("weight_names", []):
                w = w.decode() if isinstance(w, bytes) else w
                base.create_dataset(f"{w}:0", data=src[layer][w][()])
                names.append(f"{w}:0".encode())
        base.attrs["weight_names"] = names
        for layer in top[:1] + top[2:-1]:
            out.create_group(layer).attrs["weight_names"] = []
        dense = out.create_group("dense")
        ws = [w.decode() if isinstance(w, bytes) else w for w in src["dense"].attrs["weight_names"]]
        for w in ws:
            dense.create_dataset(w, data=src["dense"][w][()])
        dense.attrs["weight_names"] = [w.encode() for w in ws]
    return path


def test_keras2_weights_only_with_a_nested_mobilenet(tmp_path):
    """The nested base's weightless layers are not in the file: its stride-2 blocks were taken
    from conv_pad_k names that are not there (every block at stride 1: max|diff| 0.89 of the
    probabilities, converted without a word). keras.applications' MobileNet has its stride-2
    blocks at 2, 4, 6 and 12; its pooling, inside the base, is refused as unknown."""
    net = load_source(_keras2_nested_weights_only(tmp_path, pooling=True), resolution=160)
    assert [l.stride for l in net.layers if l.kind == "depthwise3x3"] == \
        [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    ref = _ref(next(c for c in MATCH if c["file"] == "a_transfer.keras"))
    y = ref["y"]
    out = softmax(tinymobile.Model(net, threads=1).forward(ref["x"]))
    assert np.abs(out - y).max() <= FORWARD_TOL * y.std()
    with pytest.raises(TinyMobileError, match="pooling.*not recorded.*\\.keras"):
        load_source(_keras2_nested_weights_only(tmp_path, pooling=False), resolution=160)
