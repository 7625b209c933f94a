"""``tinymobile train`` and ``tinymobile eval`` on a folder-per-class layout (issue #13)."""
from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

import tinymobile
from tinymobile import cli
from helpers.cli import one_error_line as one_error, run

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
DEV = os.path.join(SHARED, "images", "imagenet-dev")
SAMPLES = os.path.join(SHARED, "images", "samples")
BASE = os.path.join(SHARED, "models", "mobilenet_v1_0.25_128_quant.tflite")

pytestmark = pytest.mark.skipif(not os.path.isfile(BASE), reason="../shared is not present")


@pytest.fixture()
def data(tmp_path):
    """tmp/data/{critter,dog,thing}/ with 6 photos each (copies), and tmp/more/cat/ with 2."""
    files = sorted(f for f in os.listdir(DEV) if f.endswith(".JPEG"))
    for name, chunk in (("critter", files[0:6]), ("dog", files[16:22]), ("thing", files[40:46])):
        os.makedirs(tmp_path / "data" / name)
        for f in chunk:
            shutil.copy(os.path.join(DEV, f), tmp_path / "data" / name / f)
    os.makedirs(tmp_path / "more" / "cat")
    shutil.copy(os.path.join(SAMPLES, "cat.bmp"), tmp_path / "more" / "cat")
    shutil.copy(os.path.join(DEV, "n02128925_jaguar.JPEG"), tmp_path / "more" / "cat")
    return tmp_path


def test_train_predict_add_eval(capsys, data):
    out_npz = data / "mine.npz"
    code, out, err = run(capsys, "-q", "train", data / "data", "--model", BASE, "-o", out_npz,
                         "--validate", "0.2")
    assert code == 0, err
    line = out.strip()
    assert line.startswith(f"wrote {out_npz}: 3 classes (critter 5, dog 5, thing 5); logistic")
    assert re.search(r"validation top-1 [01]\.\d{3} on 3 held-out images", line)
    assert re.search(r"\d+\.\d s \(features", line)
    model = tinymobile.load(out_npz)
    assert model.labels == ["critter", "dog", "thing"] and model.dtype == "uint8"
    # predict names the new classes
    code, out, _ = run(capsys, "-q", "predict", data / "data" / "dog", "--model", out_npz, "-k", "1")
    assert code == 0 and out.count("% dog") >= 4
    # an existing -o is refused, --force replaces it
    before = out_npz.read_bytes()
    code, _, err = run(capsys, "-q", "train", data / "data", "--model", BASE, "-o", out_npz)
    assert code == 1 and "exists" in one_error(err) and out_npz.read_bytes() == before
    # --add: a new class without the old photos
    code, out, err = run(capsys, "-q", "train", data / "more", "--model", out_npz, "--add",
                         "-o", data / "mine2.npz")
    assert code == 0, err
    assert "4 classes (critter 5, dog 5, thing 5, cat 2)" in out
    # eval on the folder layout: top-1 / top-5 and a confusion table
    code, out, err = run(capsys, "-q", "eval", data / "data", "--model", data / "mine2.npz")
    assert code == 0, err
    lines = out.splitlines()
    m = re.match(r"top-1 (\d\.\d{3})  top-5 (\d\.\d{3})  \(18 images, 3 classes\)", lines[0])
    assert m and float(m.group(2)) == 1.0
    assert lines[1].split()[-1] == "recall" and len(lines) == 5
    counts = np.array([[int(v) for v in l.split()[2:-1]] for l in lines[2:]])
    assert counts.sum(axis=1).tolist() == [6, 6, 6]
    assert np.trace(counts[:, :3]) / 18 == pytest.approx(float(m.group(1)), abs=1e-3)


def test_train_imprint_no_embeddings(capsys, data):
    code, out, err = run(capsys, "-q", "train", data / "data", "--model", BASE, "-o", data / "i.npz",
                         "--method", "imprint", "--no-embeddings")
    assert code == 0, err and "imprint" in out
    with np.load(data / "i.npz", allow_pickle=False) as z:
        assert "head/sums" in z and "head/embeddings" not in z
    code, _, err = run(capsys, "-q", "train", data / "more", "--model", data / "i.npz", "--add",
                       "--method", "logistic", "-o", data / "i2.npz")
    assert code == 1 and "imprint" in one_error(err) and not (data / "i2.npz").exists()


def test_train_bad_input(capsys, data):
    def error(*argv):
        code, out, err = run(capsys, "-q", "train", *argv)
        assert code != 0 and not out
        return one_error(err)

    os.makedirs(data / "data" / "empty")
    assert "empty: class folder has no image files" in error(data / "data", "--model", BASE, "-o", data / "o.npz")
    os.rmdir(data / "data" / "empty")
    assert "two classes" in error(data / "more", "--model", BASE, "-o", data / "o.npz")
    assert "no training state" in error(data / "more", "--model", BASE, "--add", "-o", data / "o.npz")
    assert "between 0 and 1" in error(data / "data", "--model", BASE, "-o", data / "o.npz", "--validate", "2")
    assert "no class folders" in error(data / "more" / "cat", "--model", BASE, "-o", data / "o.npz")
    assert not (data / "o.npz").exists()
    # an unreadable image: a warning, skipped, said in the summary
    (data / "data" / "dog" / "broken.jpg").write_bytes(b"nope")
    code, out, err = run(capsys, "-q", "train", data / "data", "--model", BASE, "-o", data / "o.npz")
    assert code == 0
    assert "tinymobile: warning:" in err and "broken.jpg" in err
    assert "1 unreadable image skipped" in out and "dog 6" in out


def test_eval_folder_with_unknown_class(capsys, data):
    code, _, err = run(capsys, "-q", "eval", data / "data", "--model", BASE)
    assert code == 1 and "'critter' is not one of the model's 1001 classes" in one_error(err)
