"""tinymobile.convert: every source format -> format-v1 .npz that reproduces TensorFlow's outputs."""
from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
import shutil
import tarfile
import zipfile

import numpy as np
import pytest

import tinymobile
from tinymobile import reference
from tinymobile.convert import convert, load_source
from tinymobile.converters import archive, tflite_file, tflite_model
from tinymobile.errors import ModelFormatError, TinyMobileError

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
FIXTURES = os.path.join(SHARED, "fixtures")
IMAGES_DIR = os.path.join(SHARED, "images")
MODELS = os.path.join(SHARED, "models")
FIXTURE_FILES = sorted(f for f in glob.glob(os.path.join(FIXTURES, "*"))
                       if not os.path.basename(f).startswith("reference_"))

pytestmark = pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="../shared is not present")


def _reference_for(path: str) -> str:
    """reference_{α}_{r}.npz of a fixture file (α and r from its name)."""
    base = os.path.basename(path)
    for alpha, res, stem in (("0.25", 128, "2_5"), ("0.5", 160, "5_0"), ("1.0", 224, "1_0")):
        if f"_{alpha}_{res}" in base or f"mobilenet_{stem}_{res}" in base:
            return os.path.join(FIXTURES, f"reference_{alpha}_{res}.npz")
    raise AssertionError(f"no reference for {base}")


def _check_reproduces(model_path: str, ref_path: str) -> tinymobile.Model:
    from conftest import assert_outputs_differ
    ref = np.load(ref_path, allow_pickle=False)
    assert_outputs_differ(ref["y"])
    model = tinymobile.load(model_path)
    y = model.forward(ref["x"])
    tol = 1e-4 * float(ref["y"].std())
    assert np.abs(y - ref["y"]).max() <= tol
    assert (y.argmax(1) == ref["y"].argmax(1)).all()
    return model


@pytest.mark.parametrize("src", FIXTURE_FILES, ids=os.path.basename)
def test_every_fixture_converts_and_reproduces_tensorflow(src, tmp_path):
    dst = tmp_path / "model.npz"
    net = tinymobile.convert(src, dst)  # the public entry point
    ref = _reference_for(src)
    model = _check_reproduces(str(dst), ref)
    assert model.resolution == np.load(ref)["x"].shape[1]
    assert model.alpha == pytest.approx(float(os.path.basename(ref).split("_")[1]))
    assert net.activation == "relu6" and net.padding == "tf_same"
    assert model.num_classes == 1000
    # 1000-class models get the packaged ImageNet names.
    assert model.labels[0].startswith("tench") and len(model.labels) == 1000


USER_MODELS = os.path.join(SHARED, "user-models")


@pytest.mark.skipif(not os.path.isdir(USER_MODELS), reason="../shared/user-models is not present")
def test_keras_zip_takes_input_size_from_config(tmp_path):
    src = os.path.join(USER_MODELS, "a_transfer.keras")
    with zipfile.ZipFile(src) as z:
        config = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    # Only config.json knows the size: change it there (the network is convolutional).
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 96, 128, 3]
    keras_file = tmp_path / "model.keras"
    with zipfile.ZipFile(keras_file, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    assert load_source(keras_file).input_size == (96, 128)
    assert load_source(keras_file, resolution=64).input_size == (64, 64)
    # No fixed size in the config and none given: refused, no default.
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, None, None, 3]
    with zipfile.ZipFile(keras_file, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    with pytest.raises(ModelFormatError, match="no fixed height and width.*--resolution"):
        load_source(keras_file)
    # Without the weights member it is refused with a clear message.
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("config.json", json.dumps(config))
    with pytest.raises(ModelFormatError, match="model.weights.h5"):
        convert(bad, tmp_path / "x.npz")


def test_keras_resolution_sources(tmp_path):
    h5 = os.path.join(FIXTURES, "mobilenet_2_5_128_tf.h5")
    assert load_source(h5).resolution == 128            # keras-applications file name
    assert load_source(h5, resolution=96).resolution == 96  # explicit --resolution
    renamed = tmp_path / "weights.h5"
    shutil.copy(h5, renamed)
    with pytest.raises(ModelFormatError, match="does not record the input size.*--resolution"):
        load_source(renamed)                             # nothing to go by: refused, no default
    assert load_source(renamed, resolution="96x128").input_size == (96, 128)
    with pytest.raises(TinyMobileError, match="out of range"):
        load_source(h5, resolution=0)


def test_keras2_no_top_file_is_a_feature_extractor(tmp_path):
    h5py = pytest.importorskip("h5py")
    src = os.path.join(FIXTURES, "mobilenet_2_5_128_tf.h5")
    no_top = tmp_path / "mobilenet_2_5_128_tf_no_top.h5"
    shutil.copy(src, no_top)
    with h5py.File(no_top, "r+") as f:
        names = [n for n in f.attrs["layer_names"]
                 if (n.decode() if isinstance(n, bytes) else n) not in ("conv_preds", "reshape_2",
                                                                         "predictions")]
        for gone in ("conv_preds",):
            del f[gone]
        f.attrs["layer_names"] = names
    net = convert(no_top, tmp_path / "features.npz")
    assert not net.has_classifier and net.labels is None
    model = tinymobile.load(tmp_path / "features.npz")
    assert model.resolution == 128
    x = np.load(os.path.join(FIXTURES, "reference_0.25_128.npz"))["x"]
    full = load_source(src)
    expected = reference.forward(full, x, until="pool")
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-4, atol=1e-4 * expected.std())


def _tgz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def test_tf_slim_archive(tmp_path):
    tfl = open(os.path.join(FIXTURES, "mobilenet_0.25_128_f32.tflite"), "rb").read()
    good = tmp_path / "mobilenet_v1_0.25_128.tgz"
    _tgz(good, [("./mobilenet_v1_0.25_128.ckpt.meta", b"x" * 1000),
                ("./mobilenet_v1_0.25_128_info.txt", b"info"),
                ("./evil.tflite", None),  # a link: ignored
                ("./mobilenet_v1_0.25_128.tflite", tfl)])
    convert(good, tmp_path / "m.npz")
    _check_reproduces(str(tmp_path / "m.npz"), os.path.join(FIXTURES, "reference_0.25_128.npz"))
    # Two models: the one named like the archive wins; otherwise a clear error.
    two = tmp_path / "mobilenet_v1_0.25_128.tar.gz"
    _tgz(two, [("../../other.tflite", b"junk"), ("a/mobilenet_v1_0.25_128.tflite", tfl)])
    assert archive.read_tflite_from_tgz(str(two)) == tfl
    ambiguous = tmp_path / "x.tgz"
    _tgz(ambiguous, [("a.tflite", tfl), ("b.tflite", tfl)])
    with pytest.raises(ModelFormatError, match="several"):
        convert(ambiguous, tmp_path / "m2.npz")
    empty = tmp_path / "empty.tgz"
    _tgz(empty, [("readme.txt", b"hello")])
    with pytest.raises(ModelFormatError, match="no .tflite"):
        convert(empty, tmp_path / "m3.npz")
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFormatError):
        convert(truncated, tmp_path / "m4.npz")
    assert not (tmp_path / "m4.npz").exists()


def test_archive_decompression_is_capped(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.tgz"
    _tgz(bomb, [("zeros.bin", bytes(4 << 20)), ("m.tflite", b"x")])
    monkeypatch.setattr(archive, "MAX_STREAM_BYTES", 1 << 20)
    with pytest.raises(ModelFormatError, match="decompresses to more than"):
        archive.read_tflite_from_tgz(str(bomb))


def test_quantized_model_converts_quantized_or_dequantized(tmp_path):
    src = os.path.join(MODELS, "mobilenet_v1_0.25_128_quant.tflite")
    qnet = convert(src, tmp_path / "q8.npz")  # integer model: kept quantized (format version 2)
    qmodel = tinymobile.load(tmp_path / "q8.npz")
    assert qmodel.is_quantized and qmodel.dtype == "uint8"
    assert qnet.labels[0] == "background" and qmodel.num_classes == 1001
    net = convert(src, tmp_path / "q.npz", dequantize=True)
    model = tinymobile.load(tmp_path / "q.npz")
    assert (model.resolution, model.alpha, model.num_classes) == (128, 0.25, 1001)
    # Labels travel from the file's associated imagenet_labels.txt, background first.
    assert model.labels[0] == "background" and model.labels[1].startswith("tench")
    # uint8 input with scale 1/128 and zero point 128: (RGB - 128) / 128.
    np.testing.assert_array_equal(net.input_mean, [128, 128, 128])
    np.testing.assert_array_equal(net.input_std, [128, 128, 128])


def test_dequantized_weights_and_biases(tmp_path):
    src = os.path.join(MODELS, "mobilenet_v1_0.25_128_quant.tflite")
    model = tflite_file.read(src)
    net = tflite_model.to_network(model, dequantize=True)
    conv0 = next(op for op in model.operators if op.opcode == "CONV_2D")
    w, b, x = (model.tensors[i] for i in (conv0.inputs[1], conv0.inputs[2], conv0.inputs[0]))
    qw = w.quantization
    expected_w = (w.data.astype(np.float64) - qw.zero_point[0]) * qw.scale[0]
    np.testing.assert_allclose(net.layers[0].w, expected_w.transpose(1, 2, 3, 0), rtol=1e-6)
    expected_b = b.data.astype(np.float64) * x.quantization.scale[0] * qw.scale[0]
    np.testing.assert_allclose(net.layers[0].b, expected_b, rtol=1e-6)


def test_labels_file_overrides_and_is_checked(tmp_path):
    src = os.path.join(FIXTURES, "mobilenet_0.25_128_f32.tflite")
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(1000)) + "\n\n")
    convert(src, tmp_path / "m.npz", labels=labels)
    assert tinymobile.load(tmp_path / "m.npz").labels[999] == "class 999"
    labels.write_text("a\nb\n")
    with pytest.raises(TinyMobileError, match="2 labels for a model with 1000 classes"):
        convert(src, tmp_path / "m2.npz", labels=labels)
    with pytest.raises(TinyMobileError, match="no such labels file"):
        convert(src, tmp_path / "m3.npz", labels=tmp_path / "missing.txt")
    # 1000 names for a 1001-class model: background goes first.
    labels.write_text("".join(f"c{i}\n" for i in range(1000)))
    quant = os.path.join(MODELS, "mobilenet_v1_0.25_128_quant.tflite")
    net = convert(quant, tmp_path / "m4.npz", dequantize=True, labels=labels)
    assert net.labels[:2] == ["background", "c0"]


def test_embedding_extractor_converts_without_classifier(tmp_path):
    src = os.path.join(MODELS, "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite")
    net = convert(src, tmp_path / "e.npz", dequantize=True)
    assert not net.has_classifier and net.num_outputs == 1024 and net.labels is None
    with pytest.raises(TinyMobileError, match="feature extractor"):
        convert(src, tmp_path / "e2.npz", dequantize=True,
                labels=os.path.join(MODELS, "imagenet_labels.txt"))


def test_unknown_and_missing_sources(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a model")
    with pytest.raises(ModelFormatError, match="unknown model format"):
        convert(junk, tmp_path / "x.npz")
    with pytest.raises(ModelFormatError, match="no such file"):
        convert(tmp_path / "missing.tflite", tmp_path / "x.npz")
    npz = tmp_path / "m.npz"
    convert(os.path.join(FIXTURES, "mobilenet_0.25_128_f32.tflite"), npz)
    with pytest.raises(ModelFormatError, match="nothing to convert"):
        convert(npz, tmp_path / "y.npz")


def test_a_savedmodel_folder_says_how_to_export_it(tmp_path, capsys):
    """model.save('my_model') in TF 2.x writes a SavedModel folder; convert and --model (predict,
    train, eval) said only "is a directory": they name the format and the exports that convert."""
    from helpers.cli import run
    saved = tmp_path / "my_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="SavedModel.*TFLiteConverter.*\\.keras"):
        convert(saved, tmp_path / "x.npz")
    for argv in (["convert", saved, "-o", tmp_path / "y.npz"],
                 ["predict", os.path.join(IMAGES_DIR, "samples", "cat.bmp"), "--model", saved]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "SavedModel" in err, (argv, err)
    with pytest.raises(ModelFormatError, match="is a directory, not a model file$"):
        convert(saved / "variables", tmp_path / "x.npz")  # any other folder: as before


# --- graph variants, made by editing a parsed fixture --------------------------------------------

def _fixture_graph() -> tflite_file.TFLiteModel:
    return tflite_file.read(os.path.join(FIXTURES, "mobilenet_0.25_128_f32.tflite"))


def _insert_pad_before(model, op_index: int, pads) -> tflite_file.TFLiteModel:
    """Put PAD(pads) in front of operator ``op_index`` and make that operator VALID."""
    ops = [dataclasses.replace(o) for o in model.operators]
    tensors = list(model.tensors)
    target = ops[op_index]
    src = tensors[target.inputs[0]]
    n = len(tensors)
    pad_const = tflite_file.Tensor(n, "paddings", (4, 2), "int32", 0,
                                   np.asarray(pads, np.int32))
    padded_shape = (src.shape[0], src.shape[1] + pads[1][0] + pads[1][1],
                    src.shape[2] + pads[2][0] + pads[2][1], src.shape[3])
    padded = tflite_file.Tensor(n + 1, "padded", padded_shape, "float32", 0)
    tensors += [pad_const, padded]
    pad_op = tflite_file.Operator(-1, "PAD", 1, (target.inputs[0], n), (n + 1,), {})
    target.inputs = (n + 1,) + target.inputs[1:]
    target.options = dict(target.options, padding="VALID")
    ops.insert(op_index, pad_op)
    for k, o in enumerate(ops):
        o.index = k
    return dataclasses.replace(model, tensors=tensors, operators=ops)


def test_explicit_pad_equal_to_tf_same_is_accepted():
    model = _fixture_graph()
    base = tflite_model.to_network(model)
    # conv0 (stride 2 on 128 px): TF SAME pads 0 before, 1 after.
    padded = _insert_pad_before(model, 0, [[0, 0], [0, 1], [0, 1], [0, 0]])
    net = tflite_model.to_network(padded)
    assert net.padding == "tf_same"
    x = np.load(os.path.join(FIXTURES, "reference_0.25_128.npz"))["x"][:1]
    np.testing.assert_array_equal(reference.forward(net, x), reference.forward(base, x))


def test_symmetric_pad_mixed_with_tf_same_is_a_clear_error():
    padded = _insert_pad_before(_fixture_graph(), 0, [[0, 0], [1, 1], [1, 1], [0, 0]])
    with pytest.raises(ModelFormatError, match="mix TensorFlow SAME and symmetric"):
        tflite_model.to_network(padded)


def test_unsupported_graphs_give_clear_errors():
    model = _fixture_graph()
    ops = [dataclasses.replace(o) for o in model.operators]
    ops[0].options = dict(ops[0].options, fused_activation="TANH")
    with pytest.raises(ModelFormatError, match="activations"):
        tflite_model.to_network(dataclasses.replace(model, operators=ops))
    ops = [dataclasses.replace(o) for o in model.operators]
    ops[1].opcode = "L2_POOL_2D"
    with pytest.raises(ModelFormatError, match="unsupported operator.*L2_POOL_2D"):
        tflite_model.to_network(dataclasses.replace(model, operators=ops))
    ops = [dataclasses.replace(o) for o in model.operators]
    ops[1].options = dict(ops[1].options, stride_w=2, stride_h=1)
    with pytest.raises(ModelFormatError, match="strides"):
        tflite_model.to_network(dataclasses.replace(model, operators=ops))


def test_missing_h5py_names_the_extra(monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(ModelFormatError, match=r"tinymobile\[convert\]"):
        convert(os.path.join(FIXTURES, "mobilenet_2_5_128_tf.h5"), tmp_path / "m.npz")


def test_convert_never_overwrites_a_file_unasked(tmp_path):
    """tinymobile.convert refuses an existing dst (the source itself too) unless force=True, as
    the CLI and Model.save do; the file is left as it was."""
    from conftest import FIXTURES, require_shared
    require_shared()
    src = tmp_path / "m.tflite"
    shutil.copy(FIXTURES / "mobilenet_0.25_128_f32.tflite", src)
    mine = tmp_path / "m.npz"
    mine.write_bytes(b"mine")
    for dst in (mine, src):
        before = dst.read_bytes()
        with pytest.raises(TinyMobileError, match="exists"):
            tinymobile.convert(src, dst)
        assert dst.read_bytes() == before
    tinymobile.convert(src, mine, force=True)
    assert tinymobile.load(mine).num_classes == 1000
