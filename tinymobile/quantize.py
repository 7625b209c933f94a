"""Post-training quantization of a float model: int8 activations (asymmetric, per tensor, ranges
from calibration images) and int8 weights (symmetric, per output channel), TFLite's scheme, so the
result runs on the integer kernels.

    tinymobile quantize MODEL.npz -o Q.npz --calibrate DIR

* weights: scale_c = max |w_c| / 127, q = round(w / scale_c) in -127..127, zero point 0;
* biases: int32 round(b / (input_scale * scale_c));
* activations: the range [min, max] (widened to hold 0) each layer's float output reaches on the
  calibration images, scale = (max - min) / 255, zero point = round(-128 - min / scale);
  the network input's range is the exact one its preprocessing gives for pixels 0..255;
* the average pool keeps its input's quantization (AVERAGE_POOL_2D), the classifier has no clamp;
* multipliers / shifts as TFLite's per-channel path computes them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import TinyMobileError
from .model import Model
from .fixedpoint import INT32_MAX, INT32_MIN, activation_range, quantize_multipliers
from .network import GlobalPool, LayerQuant, Network
from .preprocess import image_files
from .validate import check_network

#: The output-channel axis of each weighted layer kind's weights.
_CHANNEL_AXIS = {"conv3x3": 3, "depthwise3x3": 2, "pointwise": 1, "fully_connected": 1}
_ACTIVATION = {"relu6": "RELU6", "relu": "RELU"}


def activation_params(lo: float, hi: float) -> Tuple[float, int]:
    """int8 (scale, zero_point) for real values in [lo, hi] (widened to include 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    if not scale > 0:
        return 1.0, 0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


def weight_params(w: np.ndarray, axis: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8: (quantized weights, float32 scales along ``axis``)."""
    other = tuple(a for a in range(w.ndim) if a != axis)
    peak = np.abs(w.astype(np.float64)).max(axis=other)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def calibrate(model: Model, images: Sequence, batch: int = 8) -> Dict[str, Tuple[float, float]]:
    """{layer name: (min, max)} of each layer's float output over ``images`` (paths or arrays)."""
    if type(model) is not Model:
        raise TinyMobileError("calibration needs a float model")
    ranges: Dict[str, List[float]] = {}
    runner = model._runner
    for i in range(0, len(images), batch):
        x = model.preprocess(list(images[i:i + batch]))
        plan = runner.acquire(x.shape[0])
        try:
            np.copyto(plan.input, x)
            for layer, call, out in zip(model.network.layers, plan.calls, plan.outputs):
                call()
                lo, hi = float(out.min()), float(out.max())
                r = ranges.setdefault(layer.name, [lo, hi])
                r[0], r[1] = min(r[0], lo), max(r[1], hi)
        finally:
            runner.release(plan)
    return {k: (v[0], v[1]) for k, v in ranges.items()}


def quantize_network(net: Network, ranges: Dict[str, Tuple[float, float]]) -> Network:
    """The int8 network of float ``net`` given each layer's calibrated output range."""
    if net.is_quantized:
        raise TinyMobileError("the model is already quantized")
    mean = np.asarray(net.input_mean, np.float64)
    std = np.asarray(net.input_std, np.float64)
    ends = np.concatenate([(0 - mean) / std, (255 - mean) / std])
    in_scale, in_zp = activation_params(ends.min(), ends.max())
    scale, zp = in_scale, in_zp
    layers, quant = [], {}
    act = _ACTIVATION[net.activation]
    for layer in net.layers:
        if not layer.weighted:  # the global pool
            layers.append(GlobalPool(layer.name, layer.mode))
            quant[layer.name] = LayerQuant(np.zeros(0, np.float32), np.zeros(0, np.int32),
                                           float(scale), int(zp), (-128, 127),
                                           np.zeros(0, np.int32), np.zeros(0, np.int32),
                                           "average_pool_2d")
            continue
        if layer.name not in ranges:
            raise TinyMobileError(f"no calibration range for layer {layer.name!r}")
        out_scale, out_zp = activation_params(*ranges[layer.name])
        wq, wscale = weight_params(layer.w, _CHANNEL_AXIS[layer.kind])
        bias = np.clip(np.round(layer.b.astype(np.float64) / (np.float64(np.float32(scale)) * wscale)),
                       INT32_MIN, INT32_MAX).astype(np.int32)
        mult, shift = quantize_multipliers(scale, wscale, out_scale, float_product=False)
        fused = "NONE" if layer.kind == "fully_connected" else act
        clamp = activation_range(fused, out_scale, out_zp, "int8")
        layers.append(dataclasses.replace(layer, w=wq, b=bias, quant=None))
        quant[layer.name] = LayerQuant(wscale, np.zeros(len(wscale), np.int32), out_scale, out_zp,
                                       clamp, mult, shift)
        scale, zp = out_scale, out_zp
    qnet = Network(layers, net.input_size, alpha=net.alpha, activation=net.activation,
                   padding=net.padding, input_mean=net.input_mean, input_std=net.input_std,
                   labels=net.labels, crop=net.crop, output_activation=net.output_activation,
                   dtype="int8", input_scale=in_scale, input_zero_point=in_zp, quant=quant)
    check_network(qnet)
    return qnet


def quantize_model(model: Model, images: Sequence) -> Network:
    """Calibrate float ``model`` on ``images`` and return its int8 network."""
    if model.is_quantized:
        raise TinyMobileError(f"the model is already quantized ({model.dtype}); quantization "
                              "takes a float model")
    if not len(images):
        raise TinyMobileError("calibration needs at least one image")
    return quantize_network(model.network, calibrate(model, images))


def calibration_images(directory: str, limit: Optional[int] = None) -> List[str]:
    """The image files of ``directory`` (sorted), at most ``limit``."""
    if not os.path.isdir(directory):
        raise TinyMobileError(f"{directory}: not a directory")
    files = image_files(directory)
    if not files:
        raise TinyMobileError(f"{directory}: no image files to calibrate on")
    return files[:limit] if limit else files
