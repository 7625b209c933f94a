"""Post-training int8 quantization (tinymobile quantize): the result is a valid int8 model with
per-channel weights, runs on the integer kernels exactly as the NumPy integer reference says, and
keeps the float model's accuracy on imagenet-dev (real weights: the Coral 0.25_128 model converted
to float32), calibrated on the sample images (disjoint from imagenet-dev)."""
import io
from contextlib import redirect_stdout

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES, ISAS, MODELS, require_shared
from tinymobile import model_format
from tinymobile import quantized_reference as qr
from tinymobile.quantize import activation_params, calibration_images, quantize_model, weight_params
from tinymobile.model import Model


def test_activation_params_cover_the_range_and_zero():
    for lo, hi in [(0.0, 6.0), (-1.0, 1.0), (-3.0, 0.5), (0.2, 4.0)]:
        scale, zp = activation_params(lo, hi)
        assert -128 <= zp <= 127
        q = qr.quantize(np.array([min(lo, 0), max(hi, 0), 0.0]), scale, zp, "int8")
        back = qr.dequantize(q, scale, zp)
        assert back[2] == 0.0                       # zero is exact
        assert abs(back[0] - min(lo, 0)) <= scale and abs(back[1] - max(hi, 0)) <= scale


def test_weight_params_per_channel():
    w = np.random.default_rng(0).standard_normal((3, 3, 5)).astype(np.float32)
    w[..., 2] *= 100
    q, scale = weight_params(w, 2)
    assert q.dtype == np.int8 and scale.shape == (5,) and np.abs(q).max() == 127
    assert (np.abs(q * scale - w) <= scale / 2 + 1e-6).all()


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    require_shared()
    from tinymobile.convert import convert
    dst = tmp_path_factory.mktemp("f") / "f.npz"
    convert(str(MODELS / "mobilenet_v1_0.25_128_quant.tflite"), dst, dequantize=True)
    return dst


def test_quantized_model_is_exact_on_every_isa_and_keeps_accuracy(float_model, tmp_path):
    fm = tinymobile.load(float_model, threads=2)
    qnet = quantize_model(fm, calibration_images(str(IMAGES / "samples")))
    model_format.save(qnet, tmp_path / "q.npz")
    qnet = model_format.load(tmp_path / "q.npz")
    assert qnet.dtype == "int8" and all(qnet.quant[l.name].per_channel for l in qnet.layers[:-2])
    paths = sorted(str(p) for p in (IMAGES / "imagenet-dev").iterdir() if p.suffix == ".JPEG")
    for isa in ISAS:
        qm = Model(qnet, threads=2, isa=isa)
        x = qm.quantize_input(qm.preprocess(paths[:6]))
        np.testing.assert_array_equal(qm.forward(x), qr.forward(qnet, x))
    from tinymobile.cli import evaluate
    f1, _, n = evaluate(fm, str(IMAGES / "imagenet-dev"))
    q1, _, _ = evaluate(Model(qnet, threads=2), str(IMAGES / "imagenet-dev"))
    assert n == 100 and abs(q1 - f1) <= 0.05, (f1, q1)


def test_cli_quantize(float_model, tmp_path):
    from tinymobile import cli
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["-q", "quantize", str(float_model), "-o", str(tmp_path / "q.npz"),
                         "--calibrate", str(IMAGES / "samples"), "--limit", "3"]) == 0
    assert "calibrated on 3 images" in out.getvalue()
    assert isinstance(tinymobile.load(tmp_path / "q.npz"), Model)
    with redirect_stdout(io.StringIO()):
        assert cli.main(["-q", "quantize", str(tmp_path / "q.npz"), "-o", str(tmp_path / "q2.npz"),
                         "--calibrate", str(IMAGES / "samples")]) == 1


def test_cli_quantize_never_overwrites_a_file_unasked(capsys, tmp_path):
    """An existing -o is refused before any calibration (with --force it is replaced)."""
    from helpers.cli import one_error_line, run
    m = tmp_path / "f.npz"
    model_format.save(tinymobile.build(alpha=0.25, resolution=32, num_classes=3).network, m)
    dst = tmp_path / "mine.npz"
    dst.write_bytes(b"a user's own file")
    calib = tmp_path / "calib"
    calib.mkdir()
    from PIL import Image
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(calib / "a.png")
    code, _, err = run(capsys, "-q", "quantize", m, "-o", dst, "--calibrate", calib)
    assert code == 1 and "--force" in one_error_line(err)
    assert dst.read_bytes() == b"a user's own file"
    code, out, _ = run(capsys, "-q", "quantize", m, "-o", dst, "--calibrate", calib, "--force")
    assert code == 0 and tinymobile.load(dst).dtype == "int8"


def test_quantizing_a_quantized_model_is_refused_in_one_line(capsys, tmp_path):
    from helpers.cli import one_error_line, run
    m = tmp_path / "f.npz"
    model_format.save(tinymobile.build(alpha=0.25, resolution=32, num_classes=3).network, m)
    q = tmp_path / "q.npz"
    model_format.save(quantize_model(tinymobile.load(m), [np.full((32, 32, 3), 90, np.uint8)]), q)
    with pytest.raises(tinymobile.TinyMobileError, match="already quantized"):
        quantize_model(tinymobile.load(q), [np.full((32, 32, 3), 90, np.uint8)])
    code, _, err = run(capsys, "-q", "quantize", q, "-o", tmp_path / "q2.npz", "--calibrate",
                       tmp_path / "nonexistent")
    assert code == 1 and "already quantized" in one_error_line(err)
