"""Real pretrained weights: the Coral quantized MobileNets, converted with --dequantize, classify
ImageNet images about as well as TFLite runs them (issue 3, item 4)."""
from __future__ import annotations

import os

import pytest

import tinymobile
from tinymobile import cli

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
MODELS = os.path.join(SHARED, "models")
DEV = os.path.join(SHARED, "images", "imagenet-dev")
GRACE_HOPPER = os.path.join(SHARED, "images", "samples", "grace_hopper.bmp")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir(MODELS), reason="../shared is not present")]

#: TFLite's own top-1 on images/imagenet-dev (../shared/README.md).
TFLITE_TOP1 = {"0.25_128": 0.45, "0.5_160": 0.70, "0.75_192": 0.72}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{name: path of the model converted with `tinymobile convert --dequantize`}."""
    out = {}
    d = tmp_path_factory.mktemp("pretrained")
    for name in TFLITE_TOP1:
        dst = d / f"{name}.npz"
        src = os.path.join(MODELS, f"mobilenet_v1_{name}_quant.tflite")
        assert cli.main(["-q", "convert", src, "-o", str(dst), "--dequantize"]) == 0
        out[name] = dst
    return out


@pytest.mark.parametrize("name", sorted(TFLITE_TOP1))
def test_top1_within_two_points_of_tflite(converted, name):
    model = tinymobile.load(converted[name])
    assert model.num_classes == 1001 and model.labels[0] == "background"
    top1, top5, n = cli.evaluate(model, DEV)
    assert n == 100
    assert top1 >= TFLITE_TOP1[name] - 0.02, f"top-1 {top1:.2f}, top-5 {top5:.2f}"


def test_predict_grace_hopper_prints_military_uniform_first(converted, capsys):
    assert cli.main(["-q", "predict", GRACE_HOPPER, "--model", str(converted["0.75_192"])]) == 0
    out = capsys.readouterr().out
    first = out.split(": ", 1)[1].split(" | ")[0]
    assert first.split("% ", 1)[1] == "military uniform", out
