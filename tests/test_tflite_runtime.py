"""Converted TFLite graph variants against TFLite's own interpreter as the oracle: a float TF-slim
style model (1001 classes, softmax), explicit PAD operators (TF SAME and symmetric), ReLU."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert.interpreter")
from helpers import tflite_variants as tv  # noqa: E402  (tests/ is on sys.path under pytest's rootdir rules)

import tinymobile  # noqa: E402
from tinymobile.converters import tflite_model  # noqa: E402
from tinymobile.errors import ModelFormatError  # noqa: E402
from tinymobile.reference import softmax  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
FLOAT = os.path.join(SHARED, "fixtures", "mobilenet_0.25_128_f32.tflite")
QUANT = os.path.join(SHARED, "models", "mobilenet_v1_0.25_128_quant.tflite")

pytestmark = pytest.mark.skipif(not os.path.exists(FLOAT), reason="../shared is not present")


def _inputs(n=2, r=128, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, r, r, 3)).astype(np.float32)


def _ours(data: bytes, x: np.ndarray) -> tuple:
    net = tflite_model.load(data, name="variant")
    return net, tinymobile.Model(net).forward(x)


def test_float_tf_slim_model_with_softmax_matches_tflite():
    data = tv.pack(tv.dequantize_model(QUANT))
    x = _inputs()
    expected = tv.run(data, x)                       # softmax probabilities, (N, 1001)
    net, logits = _ours(data, x)
    assert net.num_outputs == 1001 and net.activation == "relu6" and net.padding == "tf_same"
    assert net.labels[0] == "background" and net.labels[1].startswith("tench")
    np.testing.assert_allclose(softmax(logits), expected, atol=2e-6)
    assert (logits.argmax(1) == expected.argmax(1)).all()


def _padded_variant(before, pads):
    m = tv.read(FLOAT)
    for k in sorted(before(m), reverse=True):
        tv.insert_pad(m, k, pads)
    return tv.pack(m)


def _stride2(m):
    g = m.subgraphs[0]
    return [k for k in tv.convs(m) if g.operators[k].builtinOptions.strideW == 2]


@pytest.mark.parametrize("which, pads, padding", [
    ("stride2", [[0, 0], [0, 1], [0, 1], [0, 0]], "tf_same"),
    ("stride2", [[0, 0], [1, 1], [1, 1], [0, 0]], "symmetric"),
    ("all3x3", [[0, 0], [1, 1], [1, 1], [0, 0]], "symmetric"),
])
def test_explicit_pad_variants_match_tflite(which, pads, padding):
    def before(m):
        ks = _stride2(m) if which == "stride2" else tv.convs(m)
        g = m.subgraphs[0]
        # 3x3 layers only (the 1x1 convolutions are not padded).
        return [k for k in ks if g.tensors[int(g.operators[k].inputs[1])].shape[1] == 3]
    data = _padded_variant(before, pads)
    x = _inputs()
    expected = tv.run(data, x)
    net, y = _ours(data, x)
    assert net.padding == padding
    assert np.abs(y - expected).max() <= 1e-4 * expected.std()


def test_symmetric_first_layer_with_tf_same_rest_is_refused():
    data = _padded_variant(lambda m: _stride2(m)[:1], [[0, 0], [1, 1], [1, 1], [0, 0]])
    with pytest.raises(ModelFormatError, match="mix TensorFlow SAME and symmetric"):
        tflite_model.load(data, name="variant")


def test_relu_variant_matches_tflite():
    m = tv.read(FLOAT)
    tv.set_activation(m, tv.s.ActivationFunctionType.RELU)
    data = tv.pack(m)
    x = _inputs()
    expected = tv.run(data, x)
    net, y = _ours(data, x)
    assert net.activation == "relu"
    assert np.abs(y - expected).max() <= 1e-4 * expected.std()


def test_int8_per_channel_weights_dequantize_exactly():
    m = tv.read(FLOAT)
    expected_model = tv.quantize_weights_per_channel(m)
    quantized, expected = tv.pack(m), tv.pack(expected_model)
    parsed = tflite_model.tflite_file.parse(quantized, "int8")
    per_channel = [t for t in parsed.tensors if t.type == "int8"]
    assert per_channel and all(t.quantization.per_channel for t in per_channel)
    assert {t.quantization.dimension for t in per_channel} == {0, 3}
    with pytest.raises(tflite_model.QuantizedModelError, match="int8 weights"):
        tflite_model.to_network(parsed)
    x = _inputs()
    y_expected = tv.run(expected, x)
    net = tflite_model.to_network(parsed, dequantize=True)
    y = tinymobile.Model(net).forward(x)
    assert np.abs(y - y_expected).max() <= 1e-4 * y_expected.std()
    # and the quantization visibly changed the weights (the test would notice a no-op)
    y_float = tv.run(tv.pack(tv.read(FLOAT)), x)
    assert np.abs(y_float - y_expected).max() > 1e-3 * y_expected.std()
