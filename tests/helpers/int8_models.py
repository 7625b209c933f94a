"""Test / benchmark helper: int8 MobileNets with per-channel weights, made from float TFLite
models by ai-edge-quantizer's static int8 recipe (what TFLite post-training quantization writes).

Sources: a float fixture from ../shared/fixtures, or the float copy of a Coral uint8 model
(tflite_variants.dequantize_model), so that real weights give an int8 model too.
"""
from __future__ import annotations

import numpy as np


def with_signature(model) -> "object":
    """Give a schema ModelT a 'serving_default' signature (the quantizer calibrates through it)."""
    from ai_edge_litert import schema_py_generated as s
    g = model.subgraphs[0]

    def tensor_map(name, index):
        t = s.TensorMapT()
        t.name, t.tensorIndex = name, index
        return t

    sd = s.SignatureDefT()
    sd.signatureKey, sd.subgraphIndex = "serving_default", 0
    sd.inputs = [tensor_map("input", g.inputs[0])]
    sd.outputs = [tensor_map("output", g.outputs[0])]
    model.signatureDefs = [sd]
    return model


def quantize_int8(float_model: bytes, calibration: np.ndarray, path: str) -> str:
    """Write to ``path`` the int8 (per-channel weights) model of ``float_model`` calibrated on
    ``calibration`` (N, R, R, 3) float32 network inputs. Returns ``path``."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe
    sig = Interpreter(model_content=float_model).get_signature_list()
    key = next(iter(sig))
    name = sig[key]["inputs"][0]
    qt = quantizer.Quantizer(float_model, recipe.static_wi8_ai8())
    data = {key: [{name: calibration[i:i + 1].astype(np.float32)} for i in range(len(calibration))]}
    qt.quantize(qt.calibrate(data, num_threads=1)).export_model(str(path), overwrite=True)
    return str(path)


def int8_from_coral(uint8_tflite: str, calibration: np.ndarray, path: str) -> str:
    """int8 per-channel model with the real weights of a Coral uint8 model (dequantized, then
    re-quantized by the quantizer). ``calibration`` is in the float model's input range [-1, 1]."""
    from helpers import tflite_variants as tv
    return quantize_int8(tv.pack(with_signature(tv.dequantize_model(uint8_tflite))), calibration, path)
