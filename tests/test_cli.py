"""The ``tinymobile`` command line, run in-process through ``cli.main`` (and once as a process)."""
from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

from tinymobile import cli
from helpers.cli import one_error_line as _one_error_line, run
from tinymobile import download as dl
from tinymobile import preprocess

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
FIXTURES = os.path.join(SHARED, "fixtures")
SAMPLES = os.path.join(SHARED, "images", "samples")
DEV = os.path.join(SHARED, "images", "imagenet-dev")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="../shared is not present")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    assert cli.main(["-q", "convert", os.path.join(FIXTURES, "mobilenet_0.25_128_f32.tflite"),
                     "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize("command", [[], ["predict"], ["convert"], ["download"], ["summary"],
                                     ["eval"]])
def test_help_everywhere(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: tinymobile")


def test_usage_errors_are_one_line(capsys):
    code, _, err = run(capsys, "bogus")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid choice" in err
    code, _, err = run(capsys, "predict", "x.jpg", "--format", "xml")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_convert(capsys, tmp_path):
    dst = tmp_path / "out.npz"
    code, out, err = run(capsys, "convert", os.path.join(FIXTURES, "mobilenet_2_5_128_tf.h5"),
                         "-o", dst)
    assert code == 0 and dst.is_file()
    assert "alpha=0.25 resolution=128 1000 classes" in out
    quant = os.path.join(SHARED, "models", "mobilenet_v1_0.25_128_quant.tflite")
    code, out, err = run(capsys, "convert", quant, "-o", tmp_path / "q.npz")
    assert code == 0 and "1001 classes (with labels, quantized uint8" in out
    code, _, err = run(capsys, "convert", quant, "-o", tmp_path / "q.npz", "--dequantize")
    assert code == 1 and "exists; not overwriting" in _one_error_line(err)
    code, out, _ = run(capsys, "convert", quant, "-o", tmp_path / "q.npz", "--dequantize", "--force")
    assert code == 0 and "1001 classes (with labels" in out
    code, _, err = run(capsys, "convert", tmp_path / "missing.tflite", "-o", tmp_path / "x.npz")
    assert code == 1 and "no such file" in _one_error_line(err)


def test_debug_shows_the_traceback(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"junk junk junk junk")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    plain = subprocess.run([sys.executable, "-m", "tinymobile", "convert", str(junk)],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1 and "unknown model format" in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "tinymobile", "--debug", "convert", str(junk)],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_predict_formats(capsys, small_model):
    images = [os.path.join(SAMPLES, f) for f in ("cat.bmp", "parrot.jpg")]
    code, out, _ = run(capsys, "-q", "predict", *images, "--model", small_model, "--top", "3")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(images[0] + ": ")
    assert lines[0].count("%") == 3
    code, out, _ = run(capsys, "predict", *images, "--model", small_model, "-f", "json", "-k", "4")
    rows = [json.loads(l) for l in out.splitlines()]
    assert [r["image"] for r in rows] == images and all(len(r["top"]) == 4 for r in rows)
    for r in rows:
        probs = [t["probability"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    code, out, _ = run(capsys, "predict", *images, "--model", small_model, "-f", "csv", "-k", "2")
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["image", "label_1", "index_1", "probability_1", "label_2", "index_2",
                        "probability_2"]
    assert [row[0] for row in table[1:]] == images
    # The same probabilities whatever the format, and as the Python API gives them.
    import tinymobile
    probs = tinymobile.load(small_model).predict(images[1])
    assert int(table[2][2]) == int(np.argmax(probs))
    assert float(table[2][3]) == pytest.approx(float(probs.max()), abs=1e-6)


def test_predict_directories_globs_and_bad_images(capsys, small_model, tmp_path):
    code, out, err = run(capsys, "predict", SAMPLES, "--model", small_model, "-k", "1")
    n = len([f for f in os.listdir(SAMPLES) if f.lower().endswith(preprocess.IMAGE_EXTENSIONS)])
    assert code == 0 and len(out.splitlines()) == n
    assert "predict" in err  # the progress bar goes to stderr, never stdout
    code, out, _ = run(capsys, "-q", "predict", os.path.join(SAMPLES, "*.jpg"), "--model",
                       small_model)
    assert code == 0 and all(l.split(":")[0].endswith(".jpg") for l in out.splitlines())
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    code, out, err = run(capsys, "-q", "predict", bad, os.path.join(SAMPLES, "cat.bmp"),
                         "--model", small_model)
    assert code == 1 and len(out.splitlines()) == 1 and "cat.bmp" in out
    assert "bad.jpg" in err and "Traceback" not in err
    code, _, err = run(capsys, "predict", str(tmp_path / "nothing*.png"), "--model", small_model)
    assert code == 1 and "no file matches" in _one_error_line(err)
    code, _, err = run(capsys, "predict", bad, "--model", tmp_path / "missing.npz")
    assert code == 1 and "no such model file" in _one_error_line(err)


def test_predict_default_model_offline_says_how_to_pass_one(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYMOBILE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TINYMOBILE_BASE_URL", "http://127.0.0.1:9/")
    code, _, err = run(capsys, "-q", "predict", os.path.join(SAMPLES, "cat.bmp"))
    assert code == 1 and "--model FILE" in _one_error_line(err) and "not in the cache" in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


class _Serve(http.server.BaseHTTPRequestHandler):
    body = b""
    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        if not self.path.endswith("/mobilenet_v1_1.0_224.tgz"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_predict_default_model_is_downloaded_once(capsys, monkeypatch, tmp_path):
    buf = io.BytesIO()
    data = open(os.path.join(FIXTURES, "mobilenet_1.0_224_f32.tflite"), "rb").read()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("./mobilenet_v1_1.0_224.tflite")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _Serve.body, _Serve.hits = buf.getvalue(), 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TINYMOBILE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("TINYMOBILE_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        monkeypatch.setitem(dl.KNOWN_SHA256, "mobilenet_v1_1.0_224.tgz",
                            hashlib.sha256(_Serve.body).hexdigest())
        image = os.path.join(SAMPLES, "cat.bmp")
        code, out, err = run(capsys, "-q", "predict", image)
        assert code == 0 and out.startswith(image)
        assert (tmp_path / "cache" / "mobilenet_v1_1.0_224.npz").is_file()
        code, out2, err = run(capsys, "-q", "predict", image)
        assert code == 0 and out2 == out and _Serve.hits == 1
        code, out, _ = run(capsys, "download", "--list")
        assert len(out.splitlines()) == 32 and "mobilenet_v1_1.0_224  (cached)" in out
        code, out, _ = run(capsys, "download", "mobilenet_v1_1.0_224")
        assert code == 0 and out.strip().endswith("mobilenet_v1_1.0_224.npz") and _Serve.hits == 1
        code, _, err = run(capsys, "download", "mobilenet_v9")
        assert code == 1 and "unknown model" in _one_error_line(err)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_summary(capsys, small_model):
    code, out, _ = run(capsys, "summary", "--alpha", "1.0", "--resolution", "224")
    total = out.splitlines()[-1].split()
    assert code == 0 and total[0] == "total"
    macs, params = int(total[-1].replace(",", "")), int(total[-2].replace(",", ""))
    assert abs(macs - 569e6) / 569e6 < 0.01 and abs(params - 4.2e6) / 4.2e6 < 0.01
    code, out, _ = run(capsys, "summary", small_model)
    assert code == 0 and "alpha=0.25  resolution=128" in out
    code, _, err = run(capsys, "summary", small_model, "--alpha", "0.5")
    assert code == 1 and "either MODEL" in _one_error_line(err)


def test_eval_reads_labels_tsv(capsys, small_model, tmp_path):
    files = sorted(f for f in os.listdir(DEV) if f.endswith(".JPEG"))[:3]
    tsv = tmp_path / "LABELS.tsv"
    import tinymobile
    model = tinymobile.load(small_model)
    # Ground truth = what the model predicts for two images, something else for the third.
    preds = [int(np.argmax(model.predict(os.path.join(DEV, f)))) for f in files]
    truth = [preds[0], preds[1], (preds[2] + 1) % 1000]
    tsv.write_text("file\tclass_1000\tclass_1001\n"
                   + "".join(f"{f}\t{c}\t{c + 1}\n" for f, c in zip(files, truth)))
    code, out, _ = run(capsys, "-q", "eval", DEV, "--model", small_model, "--labels", tsv)
    assert code == 0 and out.strip().startswith("top-1 0.667") and "(3 images)" in out
    tsv.write_text("name\tcls\nx\t1\n")
    code, _, err = run(capsys, "-q", "eval", DEV, "--model", small_model, "--labels", tsv)
    assert code == 1 and "needs columns" in _one_error_line(err)
    code, _, err = run(capsys, "-q", "eval", tmp_path / "nowhere", "--model", small_model)
    assert code == 1 and "not a directory" in _one_error_line(err)


def test_convert_default_output_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = os.path.join(FIXTURES, "keras_mobilenet_0.25_128.weights.h5")
    code, out, _ = run(capsys, "convert", src)
    # the whole source name: a.keras, a.h5 and a.tflite never share an output
    assert code == 0 and (tmp_path / "keras_mobilenet_0.25_128.weights.h5.npz").is_file()
    assert out.startswith("wrote keras_mobilenet_0.25_128.weights.h5.npz")
    before = (tmp_path / "keras_mobilenet_0.25_128.weights.h5.npz").read_bytes()
    code, _, err = run(capsys, "convert", src)
    assert code == 1 and "exists; not overwriting it (use --force" in _one_error_line(err)
    assert (tmp_path / "keras_mobilenet_0.25_128.weights.h5.npz").read_bytes() == before
    code, _, _ = run(capsys, "convert", src, "--force")
    assert code == 0
    (tmp_path / "m.npz").write_bytes(b"x")
    code, _, err = run(capsys, "convert", tmp_path / "m.npz", "-o", tmp_path / "m.npz")
    assert code == 1 and "overwrite the source" in _one_error_line(err)
