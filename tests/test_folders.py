"""Folders as users have them, through ``tinymobile predict DIR``: many small files of mixed
formats, non-images, hidden files (macOS' ``._IMG.jpg`` AppleDouble files on a USB stick),
symlinks, subfolders. Every result line must belong to its file: each is compared with the
model's answer for that file alone (a result matched to the wrong file is the worst case)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import tinymobile
from helpers.cli import run as _run
from tinymobile import model_format


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = tinymobile.build(0.25, 32, num_classes=7, threads=1)
    path = tmp_path_factory.mktemp("folders") / "m.npz"
    model_format.save(model.network, path)
    return path


def _folder(root, n=150):
    """n small random images (5 formats, 5 sizes) named by number, plus the awkward things."""
    from PIL import Image
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n):
        ext = ("png", "jpg", "bmp", "PNG", "jpeg")[i % 5]
        a = rng.integers(0, 256, (8 + i % 7, 9 + i % 5, 3), np.uint8)
        Image.fromarray(a).save(root / f"img_{i:04d}.{ext}")
    (root / "notes.txt").write_text("not an image")
    (root / "._img_0001.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS metadata
    (root / ".hidden.jpg").write_bytes(b"")
    os.symlink("img_0003.PNG", root / "link.png")        # a symlink to an image: an image
    os.symlink("missing.png", root / "broken.png")       # a dangling one: nothing
    (root / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), np.uint8)).save(root / "sub" / "inner.png")
    return root


@pytest.mark.parametrize("extra", [[], ["-j", "0", "-b", "1"], ["-j", "3", "-b", "7", "--streams", "2"]])
def test_every_result_is_its_files_answer(model_file, tmp_path, capsys, extra):
    folder = _folder(tmp_path / "photos")
    code, out, err = _run(capsys, "-q", "predict", folder, "-m", model_file, "-f", "json",
                          "-k", "7", *extra)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    names = [os.path.basename(r["image"]) for r in rows]
    # the images directly in the folder, sorted; hidden files, non-images, the dangling link
    # and the subfolder are not images of the folder
    assert names == sorted([f"img_{i:04d}.{e}" for i, e in
                            zip(range(150), ["png", "jpg", "bmp", "PNG", "jpeg"] * 30)]
                           + ["link.png"])
    model = tinymobile.load(model_file, threads=1)
    for r in rows:
        want = model.predict(r["image"])
        got = np.zeros(7)
        for t in r["top"]:
            got[t["index"]] = t["probability"]
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=r["image"])
    by_name = {os.path.basename(r["image"]): r["top"] for r in rows}
    assert by_name["link.png"] == by_name["img_0003.PNG"]
    assert len({json.dumps(r["top"]) for r in rows}) > 100  # the answers differ between files


def test_a_folder_of_class_folders_says_that_subfolders_are_not_searched(model_file, tmp_path,
                                                                         capsys):
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    code, _, err = _run(capsys, "predict", tmp_path / "photos", "-m", model_file)
    assert code == 1
    line = err.strip()
    assert "\n" not in line and "no image files" in line
    assert "not searched" in line and "2 subfolders" in line
    assert str(tmp_path / "photos" / "*" / "*") in line  # which works:
    from PIL import Image
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "photos" / "cat" / "a.png")
    code, out, _ = _run(capsys, "-q", "predict", tmp_path / "photos" / "*" / "*", "-m", model_file)
    assert code == 0 and out.count("a.png") == 1
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, "predict", tmp_path / "empty", "-m", model_file)
    assert code == 1 and "no image files" in err and "subfolder" not in err


def test_eval_matches_class_folders_to_labels_in_any_unicode_normalisation(tmp_path, capsys):
    """A labels file typed on a Mac may hold "Äpfel" decomposed (NFD), the folder name composed
    (NFC), or the other way round: the same class for eval (it said the class is not one of
    the model's)."""
    from PIL import Image
    model = tinymobile.build(0.25, 32, num_classes=5, threads=1)
    net = model.network
    net.labels = ["A\u0308pfel", "b", "c", "d", "e"]
    model_format.save(net, tmp_path / "m.npz")
    rng = np.random.default_rng(1)
    for name in ("\u00c4pfel", "b"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (9, 9, 3), np.uint8)).save(
                tmp_path / "photos" / name / f"{i}.png")
    code, out, err = _run(capsys, "-q", "eval", tmp_path / "photos", "-m", tmp_path / "m.npz")
    assert code == 0, err
    assert "(4 images, 2 classes)" in out
