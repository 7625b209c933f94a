"""CLI details users hit with their own models: output names, overwriting, labels files with
comments, class-folder evaluation, width multipliers printed as given, input sizes."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES, MODELS, SHARED
from tinymobile import cli
from helpers.cli import run as _run
from tinymobile.converters.netbuild import alpha_of
from tinymobile.labels import read_labels
from tinymobile.network import mobilenet_v1

USER_MODELS = SHARED / "user-models"


def test_shipped_labels_file_reads_back_as_1000_labels(tmp_path):
    """imagenet_labels.txt starts with '#' comment lines (source, licence): not labels."""
    from importlib import resources
    shipped = resources.files("tinymobile").joinpath("data/imagenet_labels.txt")
    text = shipped.read_text("utf-8")
    assert text.startswith("#")
    path = tmp_path / "imagenet_labels.txt"
    path.write_text(text, "utf-8")
    labels = read_labels(path, 1000)
    assert len(labels) == 1000 and labels[0].startswith("tench")
    assert read_labels(path, 1001)[0] == "background"
    # a user's file with a comment header and blank trailing lines
    (tmp_path / "mine.txt").write_text("# my classes\n  # exported 2026\ndaisy\nrose\n\n", "utf-8")
    assert read_labels(tmp_path / "mine.txt", 2) == ["daisy", "rose"]


@pytest.mark.skipif(not MODELS.is_dir(), reason="../shared is not present")
def test_convert_with_the_shipped_labels(capsys, tmp_path):
    from importlib import resources
    labels = tmp_path / "labels.txt"
    labels.write_text(resources.files("tinymobile").joinpath("data/imagenet_labels.txt")
                      .read_text("utf-8"), "utf-8")
    src = SHARED / "fixtures" / "mobilenet_0.25_128_f32.tflite"
    code, out, err = _run(capsys, "convert", src, "-o", tmp_path / "m.npz", "--labels", labels)
    assert code == 0, err
    assert tinymobile.load(tmp_path / "m.npz").labels[0].startswith("tench")


def _keras2_weights(path, net):
    """Write ``net`` as a Keras 2 keras-applications weights file (BatchNorm as identity)."""
    h5py = pytest.importorskip("h5py")
    names = []
    with h5py.File(path, "w") as f:
        def layer(name, arrays):
            g = f.create_group(name)
            wn = [f"{name}/{k}:0" for k in range(len(arrays))]
            for n, a in zip(wn, arrays):
                g.create_dataset(n, data=a)
            g.attrs["weight_names"] = np.array([n.encode() for n in wn])
            names.append(name.encode())

        def bn(name, bias):  # gamma 1, beta = the bias, mean 0, var + eps = 1
            c = len(bias)
            layer(name, [np.ones(c, np.float32), bias, np.zeros(c, np.float32),
                         np.full(c, 1 - 1e-3, np.float32)])
        conv0 = net.layers[0]
        layer("conv1", [conv0.w])
        bn("conv1_bn", conv0.b)
        k = 0
        for lay in net.layers[1:]:
            if lay.kind == "depthwise3x3":
                k += 1
                if lay.stride == 2:
                    layer(f"conv_pad_{k}", [])
                layer(f"conv_dw_{k}", [lay.w[:, :, :, None]])
                bn(f"conv_dw_{k}_bn", lay.b)
            elif lay.kind == "pointwise":
                layer(f"conv_pw_{k}", [lay.w[None, None]])
                bn(f"conv_pw_{k}_bn", lay.b)
            elif lay.kind == "fully_connected":
                layer("conv_preds", [lay.w[None, None], lay.b])
        f.attrs["layer_names"] = np.array(names)


def test_alpha_035_prints_as_035(capsys, tmp_path):
    net = mobilenet_v1(alpha=0.35, resolution=96, num_classes=10)
    assert net.layers[0].cout == 11 and alpha_of(net.layers) == 0.35
    assert alpha_of(mobilenet_v1(alpha=0.75, resolution=96).layers) == 0.75
    src = tmp_path / "mobilenet_3_5_96_tf.h5"  # keras-applications naming: alpha 0.35, 96 px
    _keras2_weights(src, net)
    code, out, err = _run(capsys, "convert", src, "-o", tmp_path / "m.npz")
    assert code == 0, err
    assert "alpha=0.35 resolution=96 10 classes" in out
    model = tinymobile.load(tmp_path / "m.npz")
    assert model.alpha == 0.35 and "alpha=0.35" in model.summary()
    # BatchNorm folded as identity (up to its epsilon): the network's own answers
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    want = tinymobile.Model(net, threads=1).forward(x)
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/user-models is not present")
def test_convert_options_and_printed_line(capsys, tmp_path):
    src = USER_MODELS / "e_nonsquare.keras"
    code, out, err = _run(capsys, "convert", src, "-o", tmp_path / "m.npz")
    assert code == 0, err
    assert "input=128x160 (height x width)" in out and "crop 1," in out
    assert "note: the file does not say how the model's input is normalised" in err
    code, out, err = _run(capsys, "convert", src, "-o", tmp_path / "m.npz", "--force",
                          "--resolution", "96x128", "--crop", "0.875", "--mean", "1,2,3",
                          "--std", "2")
    assert code == 0, err
    assert "input=96x128" in out and "crop 0.875, input (RGB - (1, 2, 3)) / 2" in out
    assert "normalised" not in err and "the file's input is 128x160; converted for 96x128" in err
    m = tinymobile.load(tmp_path / "m.npz")
    assert m.input_size == (96, 128) and m.network.crop == 0.875
    for bad, words in ((["--resolution", "12y5"], "expected R or HxW"),
                       (["--crop", "2"], "crop 2"), (["--std", "0"], "--std")):
        code, _, err = _run(capsys, "convert", src, "-o", tmp_path / "x.npz", *bad)
        assert code != 0 and words in err and "Traceback" not in err
        assert not (tmp_path / "x.npz").exists()
    code, _, err = _run(capsys, "convert", src, "-o", tmp_path / "x.npz", "--mean", "1,2")
    assert code == 2 and "one or three numbers" in err


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/user-models is not present")
def test_binary_model_predicts_and_classifies_both_classes(capsys, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("# cats vs dogs\ncat\ndog\n")
    code, out, err = _run(capsys, "convert", USER_MODELS / "g_binary.keras", "-o",
                          tmp_path / "b.npz", "--labels", labels)
    assert code == 0 and "binary classifier (1 logit, sigmoid)" in out, err
    m = tinymobile.load(tmp_path / "b.npz")
    img = IMAGES / "samples" / "cat.bmp"
    p = m.predict(str(img))
    z = float(m.logits(m.preprocess(str(img)))[0, 0])
    np.testing.assert_allclose(p, [1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))], rtol=1e-5)
    assert sorted(l for l, _ in m.classify(str(img))) == ["cat", "dog"]
    code, out, _ = _run(capsys, "-q", "predict", img, "--model", tmp_path / "b.npz")
    assert code == 0 and "cat" in out and "dog" in out


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/user-models is not present")
def test_eval_takes_class_folders(capsys, tmp_path):
    """DIR/<class>/*.jpg, the folders named like the model's labels (the user's own classes)."""
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["daisy", "rose", "tulip", "iris", "lily"]) + "\n")
    model = tmp_path / "m.npz"
    code, _, err = _run(capsys, "convert", USER_MODELS / "a_transfer.keras", "-o", model,
                        "--labels", labels)
    assert code == 0, err
    m = tinymobile.load(model)
    photos = sorted((IMAGES / "imagenet-dev").glob("*.JPEG"))[:6]
    assert len(photos) == 6
    data = tmp_path / "flowers"
    truth = {}
    for k, p in enumerate(photos):
        top = int(np.argmax(m.predict(str(p))))
        cls = m.labels[top] if k % 2 == 0 else m.labels[(top + 1) % 5]  # half right
        os.makedirs(data / cls, exist_ok=True)
        shutil.copy(p, data / cls / p.name)
        truth[p.name] = cls
    code, out, err = _run(capsys, "-q", "eval", data, "--model", model)
    assert code == 0, err
    assert out.startswith("top-1 0.500") and "(6 images" in out


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/user-models is not present")
def test_nonsquare_image_api(tmp_path):
    """predict resizes to the model's own (H, W); forward takes other sizes too."""
    net = tinymobile.convert(USER_MODELS / "e_nonsquare.keras", tmp_path / "m.npz")
    m = tinymobile.load(tmp_path / "m.npz")
    assert m.input_size == (128, 160) == tuple(net.input_size)
    img = str(IMAGES / "samples" / "grace_hopper.bmp")
    assert m.preprocess(img).shape == (1, 128, 160, 3)
    assert m.predict(img).shape == (5,)
    assert m.forward(np.zeros((1, 160, 128, 3), np.float32)).shape == (1, 5)
    with pytest.raises(tinymobile.TinyMobileError):
        m.resolution  # not square: input_size says it


@pytest.mark.parametrize("top", ["0", "-3"])
def test_predict_top_below_one_is_refused(capsys, tmp_path, top):
    from helpers.cli import one_error_line
    m = tmp_path / "m.npz"
    from tinymobile import model_format
    model_format.save(mobilenet_v1(0.25, 32, 4), m)
    img = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(img)
    code, out, err = _run(capsys, "predict", img, "--model", m, "--top", top)
    assert code == 1 and out == "" and "--top must be at least 1" in one_error_line(err)


def test_bench_out_that_is_a_file_is_refused_before_timing(capsys, tmp_path):
    """--out names a folder: a file there is refused at once (it was an error after the whole
    run, 'File exists') and left as it was."""
    from helpers.cli import one_error_line
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    code, out, err = _run(capsys, "bench", "--alpha", "0.25", "--resolution", "32", "--no-peers",
                          "--runs", "1", "--warmup", "0", "--threads", "1", "--out", mine)
    assert code == 1 and "--out" in one_error_line(err) and "machine:" not in out
    assert mine.read_text() == "mine"


def test_a_labels_file_with_a_byte_order_mark_and_crlf_reads_clean(tmp_path):
    """Notepad's 'UTF-8 with BOM' and Windows line ends: the first class is 'cat', not
    '\\ufeffcat' (an invisible character in every output naming it)."""
    p = tmp_path / "labels.txt"
    p.write_bytes("\ufeffcat\r\ndog\r\nÄpfel\r\n".encode("utf-8"))
    assert read_labels(p, 3) == ["cat", "dog", "Äpfel"]


def test_an_excel_labels_tsv_with_a_byte_order_mark_reads(tmp_path):
    """Excel's 'UTF-8' export starts with a BOM: the first column is still 'file'."""
    p = tmp_path / "LABELS.tsv"
    p.write_bytes("\ufefffile\tclass_1000\r\na.jpg\t3\r\nb.jpg\t7\r\n".encode("utf-8"))
    assert cli.read_labels_tsv(str(p), 1000) == {"a.jpg": 3, "b.jpg": 7}


def test_a_model_whose_logits_overflow_gives_errors_not_nan(capsys, tmp_path):
    """predict / eval on a model whose weights overflow float32: an error line per image and
    exit 1, never 'probability: NaN' in the JSON (invalid JSON, and exit 0) nor an accuracy."""
    from helpers.cli import one_error_line
    from PIL import Image
    from tinymobile import model_format
    net = mobilenet_v1(0.25, 32, 2)
    net.layers[-1].w[:] = 3e38
    m = tmp_path / "overflow.npz"
    model_format.save(net, m)
    for c in ("0", "1"):
        (tmp_path / "data" / c).mkdir(parents=True)
        Image.fromarray(np.full((9, 9, 3), 200, np.uint8)).save(tmp_path / "data" / c / "x.png")
    img = tmp_path / "data" / "0" / "x.png"
    code, out, err = _run(capsys, "predict", img, "--model", m, "-f", "json")
    assert code == 1 and "NaN" not in out and "non-finite" in err and "x.png" in err
    code, out, err = _run(capsys, "-q", "eval", tmp_path / "data", "--model", m)
    assert code == 1 and "top-1" not in out and "non-finite" in one_error_line(err)
    with pytest.raises(tinymobile.TinyMobileError, match="non-finite"):
        tinymobile.load(m).probabilities(np.array([[np.nan, 0.0]], np.float32))


@pytest.mark.parametrize("src", ["fixtures/mobilenet_0.25_128_f32.tflite",
                                 "user-models/a_transfer.keras"])
def test_convert_says_when_resolution_overrides_the_files_own_size(capsys, tmp_path, src):
    """--resolution on a file that records its input size runs the model at another size than
    it was made for (its answers differ from the original's): convert says so in a note."""
    path = SHARED / src
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    own = tinymobile.convert(path, tmp_path / "own.npz").input_size
    code, out, err = _run(capsys, "convert", path, "-o", tmp_path / "m.npz", "--resolution", "96")
    assert code == 0, err
    assert f"note: the file's input is {own[0]}x{own[1]}; converted for 96x96" in err
    code, out, err = _run(capsys, "convert", path, "-o", tmp_path / "m2.npz", "--resolution",
                          f"{own[0]}x{own[1]}")
    assert code == 0 and "file's input is" not in err


@pytest.mark.parametrize("bad,words", [(["--runs", "0"], "--runs"), (["--runs", "-1"], "--runs"),
                                       (["--warmup", "-5"], "--warmup"), (["--batch", "0"], "--batch")])
def test_bench_counts_are_checked_first(capsys, bad, words):
    from helpers.cli import one_error_line
    code, out, err = _run(capsys, "bench", "--alpha", "0.25", "--resolution", "32", "--no-peers",
                          "--threads", "1", *bad)
    assert code == 1 and words in one_error_line(err) and "machine:" not in out
