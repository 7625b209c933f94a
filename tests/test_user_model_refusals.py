"""What the converters do not run is refused by name, in one line; what they fold is folded right.

Variants of the real files in ../shared/user-models: a Keras config edited (a layer kind, an
activation, a branch...), a TFLite graph with an operator swapped. Every refusal names the
problem; the preprocessing variants must give the same network input as the original model.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from conftest import SHARED
from tinymobile.convert import load_source
from tinymobile.converters import keras_graph, keras_v3, tflite_file, tflite_model, tflite_quantized
from tinymobile.errors import ModelFormatError, TinyMobileError

USER_MODELS = SHARED / "user-models"
pytestmark = pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/user-models is not present")


def _read_keras(name: str):
    with zipfile.ZipFile(USER_MODELS / name) as z:
        return json.loads(z.read("config.json")), z.read("model.weights.h5")


def _keras(tmp_path, config, weights, name="variant.keras"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    return path


def _layers(config):
    return config["config"]["layers"]


def _layer(config, name):
    return next(l for l in _layers(config) if l["name"] == name)


def _tensor(name):
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}


def _feeds(layer, parent):
    layer["inbound_nodes"] = [{"args": [_tensor(parent)], "kwargs": {}}]


def _refused(tmp_path, config, weights, *words):
    with pytest.raises(ModelFormatError) as e:
        load_source(_keras(tmp_path, config, weights))
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


@pytest.fixture(scope="module")
def transfer():
    return _read_keras("a_transfer.keras")


# ---- Keras: refusals ---------------------------------------------------------------------------

def test_classifier_activation_other_than_softmax_sigmoid_none(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "dense")["config"]["activation"] = "relu"
    _refused(tmp_path, config, weights, "'dense'", "classifier activation 'relu'")


def test_multi_label_sigmoid_head(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "dense")["config"]["activation"] = "sigmoid"
    _refused(tmp_path, config, weights, "sigmoid over 5 outputs", "multi-label")


def test_unknown_layer_kind(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "dropout")["class_name"] = "LayerNormalization"
    _refused(tmp_path, config, weights, "'dropout' (LayerNormalization)", "not supported")


@pytest.mark.parametrize("relu, words", [
    ({"max_value": 4.0}, ["capped at 4"]),
    ({"negative_slope": 0.1}, ["negative_slope 0.1"]),
])
def test_relu_variants(tmp_path, transfer, relu, words):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "conv_dw_3_relu")["config"].update(relu)
    _refused(tmp_path, config, weights, "'conv_dw_3_relu'", *words)


def test_other_body_activation(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    layer = _layer(config, "conv_pw_5_relu")
    layer["class_name"], layer["config"] = "Activation", {"name": "conv_pw_5_relu",
                                                          "activation": "swish"}
    _refused(tmp_path, config, weights, "'conv_pw_5_relu'", "activation 'swish'")


def test_mixed_relu_and_relu6(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "conv_pw_5_relu")["config"]["max_value"] = None
    _refused(tmp_path, config, weights, "activations ['relu', 'relu6']")


@pytest.mark.parametrize("key, value, words", [
    ("dilation_rate", [2, 2], ["dilated"]),
    ("data_format", "channels_first", ["channels_first"]),
    ("depth_multiplier", 2, ["depth multiplier 2"]),
])
def test_depthwise_options(tmp_path, transfer, key, value, words):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "conv_dw_4")["config"][key] = value
    _refused(tmp_path, config, weights, "'conv_dw_4'", *words)


def test_model_ending_in_a_feature_map(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    config["config"]["layers"] = [l for l in _layers(config)
                                  if l["name"] not in ("global_average_pooling2d", "dropout", "dense")]
    config["config"]["output_layers"] = [["conv_pw_13_relu", 0, 0]]
    _refused(tmp_path, config, weights, "ends in a feature map", "pooling='avg' or 'max'")


def test_branch_is_refused(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _feeds(_layer(config, "dense"), "global_average_pooling2d")  # dropout and dense both read it
    _refused(tmp_path, config, weights, "'global_average_pooling2d' feeds 2 layers", "single chain")


def test_shared_layer_is_refused(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    dense = _layer(config, "dense")
    dense["inbound_nodes"] = dense["inbound_nodes"] * 2
    _refused(tmp_path, config, weights, "'dense' is called 2 times")


def test_hidden_dense_layer_is_refused(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    extra = copy.deepcopy(_layer(config, "dense"))
    extra["name"] = extra["config"]["name"] = "dense_out"
    _feeds(extra, "dense")
    _layers(config).append(extra)
    config["config"]["output_layers"] = [["dense_out", 0, 0]]
    _refused(tmp_path, config, weights, "'dense_out'", "second Dense layer")


def test_two_inputs_are_refused(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    config["config"]["input_layers"] = [["input_layer", 0, 0], ["input_layer", 0, 0]]
    _refused(tmp_path, config, weights, "2 inputs")


def test_config_and_weights_that_disagree(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _layer(config, "dense")["config"]["use_bias"] = False
    _refused(tmp_path, config, weights, "'dense'", "expected 1 weight arrays in the file, found 2")


def test_keras_depth_multiplier_file_and_its_weights(tmp_path):
    config, weights = _read_keras("i_depth_multiplier.keras")
    # the weights alone (a .weights.h5) are refused by the shape of the depthwise kernel
    with pytest.raises(ModelFormatError, match="depth multiplier 2"):
        keras_v3.load_weights_h5(io.BytesIO(weights), name="w.weights.h5")


def test_weights_only_rescaling_is_refused(tmp_path):
    """Rescaling has no weights: a .weights.h5 cannot say its scale."""
    _, weights = _read_keras("f_rescale255.keras")
    path = tmp_path / "f.weights.h5"
    path.write_bytes(weights)
    with pytest.raises(ModelFormatError, match="does not record the input size"):
        load_source(path)
    with pytest.raises(ModelFormatError, match="Rescaling layer.*convert the .keras"):
        load_source(path, resolution=160)


# ---- Keras: preprocessing folded ---------------------------------------------------------------

def _insert_after_input(config, entries):
    """Put op / layer entries between the input layer and conv1 (a chain)."""
    layers = _layers(config)
    parent = "input_layer"
    for i, e in enumerate(entries):
        nodes = e.setdefault("inbound_nodes", [{"args": [_tensor(parent)], "kwargs": {}}])
        if e.get("operand") is not None:  # an op node: (tensor, constant)
            nodes[0]["args"] = [_tensor(parent), e.pop("operand")]
        layers.insert(1 + i, e)
        parent = e["name"]
    _feeds(_layer(config, "conv1"), parent)


@pytest.mark.parametrize("entries, mean, std", [
    # keras.applications.mobilenet.preprocess_input on a KerasTensor: x / 127.5 - 1 (Keras 3 ops)
    ([{"class_name": "TrueDivide", "name": "true_divide", "config": {"name": "true_divide"},
       "operand": 127.5},
      {"class_name": "Subtract", "name": "subtract", "config": {"name": "subtract"}, "operand": 1.0}],
     [127.5] * 3, [127.5] * 3),
    # Normalization with per-channel statistics
    ([{"class_name": "Normalization", "name": "normalization",
       "config": {"name": "normalization", "axis": -1, "mean": [120.0, 110.0, 100.0],
                  "variance": [3600.0, 2500.0, 4900.0]}}],
     [120.0, 110.0, 100.0], [60.0, 50.0, 70.0]),
    # Rescaling, per-channel scale with an offset
    ([{"class_name": "Rescaling", "name": "rescaling",
       "config": {"name": "rescaling", "scale": [0.01, 0.02, 0.04], "offset": -1.0}}],
     [100.0, 50.0, 25.0], [100.0, 50.0, 25.0]),
    # NumPy constants, as Keras 3 serializes them ({"class_name": "__numpy__", ...}):
    # Rescaling(scale=1 / np.array(std), offset=-mean / std) and (x - np.array(mean)) / std ops
    ([{"class_name": "Rescaling", "name": "rescaling",
       "config": {"name": "rescaling",
                  "scale": {"class_name": "__numpy__",
                            "config": {"value": [0.01, 0.02, 0.04], "dtype": "float32"}},
                  "offset": {"class_name": "__numpy__",
                             "config": {"value": [[[-1.0, -1.0, -1.0]]], "dtype": "float32"}}}}],
     [100.0, 50.0, 25.0], [100.0, 50.0, 25.0]),
    ([{"class_name": "Subtract", "name": "subtract", "config": {"name": "subtract"},
       "operand": {"class_name": "__numpy__",
                   "config": {"value": [123.675, 116.28, 103.53], "dtype": "float64"}}},
      {"class_name": "TrueDivide", "name": "true_divide", "config": {"name": "true_divide"},
       "operand": {"class_name": "__numpy__",
                   "config": {"value": [58.395, 57.12, 57.375], "dtype": "float64"}}}],
     [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),
])
def test_preprocessing_is_folded(tmp_path, transfer, entries, mean, std):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _insert_after_input(config, copy.deepcopy(entries))
    net = load_source(_keras(tmp_path, config, weights))
    np.testing.assert_allclose(net.input_mean, mean, rtol=1e-6)
    np.testing.assert_allclose(net.input_std, std, rtol=1e-6)
    assert not net.normalisation_assumed
    # the body is the original model's, unchanged
    plain = load_source(USER_MODELS / "a_transfer.keras")
    assert plain.normalisation_assumed
    for a, b in zip(net.layers, plain.layers):
        if a.weighted:
            np.testing.assert_array_equal(a.w, b.w)


def test_division_of_a_constant_by_the_image_is_refused(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    e = {"class_name": "TrueDivide", "name": "div", "config": {"name": "div"},
         "inbound_nodes": [{"args": [2.0, _tensor("input_layer")], "kwargs": {}}]}
    _insert_after_input(config, [e])
    _refused(tmp_path, config, weights, "'div'", "not affine")


def test_preprocessing_after_the_first_convolution_is_refused(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    layers = _layers(config)
    i = next(k for k, l in enumerate(layers) if l["name"] == "conv_dw_2")
    r = {"class_name": "Rescaling", "name": "late", "config": {"name": "late", "scale": 2.0}}
    _feeds(r, layers[i - 1]["name"])
    _feeds(layers[i], "late")
    layers.insert(i, r)
    _refused(tmp_path, config, weights, "'late'", "preprocessing after the first convolution")


@pytest.mark.parametrize("pre, refused", [
    ({"class_name": "Rescaling", "config": {"scale": 1 / 127.5, "offset": -1.0}}, True),
    ({"class_name": "Normalization", "config": {"axis": -1, "mean": [120.0, 110.0, 100.0],
                                                "variance": [3600.0, 2500.0, 4900.0]}}, True),
    ({"class_name": "Rescaling", "config": {"scale": 1 / 255}}, False),  # 0 stays 0
])
def test_preprocessing_after_zero_padding(tmp_path, transfer, pre, refused):
    """ZeroPadding2D on the raw input, then an offset: Keras' border becomes the offset (-1 for
    Rescaling(1/127.5, -1)), where tinymobile's folded normalisation pads with 0 after it."""
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    pad = {"class_name": "ZeroPadding2D", "name": "pad",
           "config": {"name": "pad", "padding": [[0, 1], [0, 1]]}}
    norm = {"class_name": pre["class_name"], "name": "pre",
            "config": dict(pre["config"], name="pre")}
    _insert_after_input(config, [pad, norm])
    _layer(config, "conv1")["config"]["padding"] = "valid"  # the pad replaces 'same' (= at 160)
    if refused:
        _refused(tmp_path, config, weights, "'pre'", "after ZeroPadding2D", "not supported")
    else:
        net = load_source(_keras(tmp_path, config, weights))
        np.testing.assert_allclose(net.input_std, 255.0, rtol=1e-6)
        assert net.padding == "tf_same"


def test_augmentation_layers_are_inference_identities(tmp_path, transfer):
    config, weights = copy.deepcopy(transfer[0]), transfer[1]
    _insert_after_input(config, [
        {"class_name": "RandomFlip", "name": "flip", "config": {"name": "flip", "mode": "horizontal"}},
        {"class_name": "RandomRotation", "name": "rot", "config": {"name": "rot", "factor": 0.1}}])
    net = load_source(_keras(tmp_path, config, weights))
    plain = load_source(USER_MODELS / "a_transfer.keras")
    assert len(net.layers) == len(plain.layers)
    for a, b in zip(net.layers, plain.layers):
        if a.weighted:
            np.testing.assert_array_equal(a.w, b.w)


# ---- TFLite ------------------------------------------------------------------------------------

def _swap(model, old: str, new: str, options=None):
    ops = [dataclasses.replace(o) for o in model.operators]
    op = next(o for o in ops if o.opcode == old)
    op.opcode = new
    if options is not None:
        op.options = options
    return dataclasses.replace(model, operators=ops)


def test_tflite_multi_label_sigmoid_is_refused():
    model = tflite_file.read(str(USER_MODELS / "a_transfer.tflite"))
    with pytest.raises(ModelFormatError, match="sigmoid over 5 outputs.*multi-label"):
        tflite_model.to_network(_swap(model, "SOFTMAX", "LOGISTIC", {}))


@pytest.mark.parametrize("old, new, words", [
    ("MEAN", "REDUCE_MAX", "global max pooling in a quantized model is not supported"),
    ("SOFTMAX", "LOGISTIC", "quantized sigmoid output is not supported"),
    ("SOFTMAX", "TANH", r"\(TANH\): operator not supported"),
])
def test_quantized_graph_refusals(old, new, words):
    model = tflite_file.read(str(USER_MODELS / "h_a_transfer_int8_int8io.tflite"))
    with pytest.raises(ModelFormatError, match=words):
        tflite_quantized.convert(_swap(model, old, new))


def test_uint8_input_requantized_otherwise_is_refused():
    model = tflite_file.read(str(USER_MODELS / "h_a_transfer_int8_uint8io.tflite"))
    q = model.operators[0]
    assert q.opcode == "QUANTIZE"
    tensors = list(model.tensors)
    out = tensors[q.outputs[0]]
    qz = dataclasses.replace(out.quantization, zero_point=out.quantization.zero_point + 3)
    tensors[q.outputs[0]] = dataclasses.replace(out, quantization=qz)
    with pytest.raises(ModelFormatError, match="requantizing the uint8 input.*same scale"):
        tflite_quantized.convert(dataclasses.replace(model, tensors=tensors))


def test_tflite_input_arithmetic_is_folded():
    """f_rescale127.tflite starts with MUL 1/127.5, ADD -1: the network input normalisation."""
    net = load_source(USER_MODELS / "f_rescale127.tflite")
    np.testing.assert_allclose(net.input_mean, 127.5, rtol=1e-6)
    np.testing.assert_allclose(net.input_std, 127.5, rtol=1e-6)
    assert not net.normalisation_assumed and net.crop == 1.0


@pytest.mark.parametrize("ops, refused", [(("MUL", "ADD"), True), (("MUL",), False)])
def test_tflite_input_arithmetic_after_pad(ops, refused):
    """f_rescale127.tflite with a PAD in front of its MUL 1/127.5, ADD -1 and a VALID first
    convolution: the ADD would shift the padded border (TFLite's -1, tinymobile's 0)."""
    model = tflite_file.read(str(USER_MODELS / "f_rescale127.tflite"))
    tensors, operators = list(model.tensors), [dataclasses.replace(o) for o in model.operators]
    assert [o.opcode for o in operators[:3]] == ["MUL", "ADD", "CONV_2D"]
    inp = tensors[model.inputs[0]]
    pads = tflite_file.Tensor(len(tensors), "paddings", (4, 2), "int32", 0,
                              np.array([[0, 0], [0, 1], [0, 1], [0, 0]], np.int32))
    padded = dataclasses.replace(inp, index=len(tensors) + 1, name="padded", shape=(1, 161, 161, 3))
    tensors += [pads, padded]
    pad = tflite_file.Operator(0, "PAD", 1, (inp.index, pads.index), (padded.index,))
    operators[0] = dataclasses.replace(operators[0], inputs=(padded.index,) + operators[0].inputs[1:])
    if ops == ("MUL",):  # the conv reads the MUL's output; the ADD is gone
        operators[2] = dataclasses.replace(operators[2], inputs=(operators[0].outputs[0],)
                                           + operators[2].inputs[1:])
        del operators[1]
    conv = next(o for o in operators if o.opcode == "CONV_2D")
    conv.options = dict(conv.options, padding="VALID")
    operators = [dataclasses.replace(o, index=i) for i, o in enumerate([pad] + operators)]
    variant = dataclasses.replace(model, tensors=tensors, operators=operators)
    if refused:
        with pytest.raises(ModelFormatError, match="ADD of a constant after PAD"):
            tflite_model.to_network(variant)
    else:
        net = tflite_model.to_network(variant)
        np.testing.assert_allclose(net.input_std, 127.5, rtol=1e-6)
        assert net.padding == "tf_same"


def test_crop_and_normalisation_options_are_checked(tmp_path):
    from tinymobile.convert import convert
    src = USER_MODELS / "a_transfer.keras"
    for kw, words in (({"crop": 0.0}, "crop 0"), ({"crop": 1.5}, "crop 1.5"),
                      ({"std": [1.0, 0.0, 1.0]}, "--std"), ({"mean": [1.0, 2.0]}, "--mean")):
        with pytest.raises(TinyMobileError, match=words):
            convert(src, tmp_path / "m.npz", **kw)
    net = convert(src, tmp_path / "m.npz", crop=0.875, mean=[1, 2, 3], std=4)
    assert net.crop == 0.875
    np.testing.assert_array_equal(net.input_mean, [1, 2, 3])
    np.testing.assert_array_equal(net.input_std, [4, 4, 4])


def test_keras_chain_flattening_names_the_layers():
    config, _ = _read_keras("b_tutorial_nested.keras")
    chain = keras_graph.chain_from_config(config, "x")
    names = [l.name for l in chain.layers]
    assert names[0] == "conv1" and names[-3:] == ["global_average_pooling2d_2", "dropout_2", "dense_2"]
    assert chain.model_names == ["functional_58", "mobilenet_0.25_160"]
    assert chain.input_hw == (160, 160)
