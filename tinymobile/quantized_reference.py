"""Plain NumPy integer reference of the quantized operators: the oracle for the int8/uint8 C kernels.

Reproduces TensorFlow Lite's reference kernels bit for bit (tensorflow/lite/kernels/internal/
reference/{conv.h, depthwiseconv_uint8.h, pooling.h, fully_connected.h, integer_ops/*.h}):

* accumulate ``(x - x_zero_point) * (w - w_zero_point)`` exactly (int64 here; TFLite's int32 never
  overflows for MobileNet sizes), add the int32 bias;
* requantize with a fixed-point multiplier and shift from :func:`quantize_multiplier`, using
  gemmlowp's ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT`` (two roundings, both
  half away from zero), :func:`multiply_by_quantized_multiplier`;
* add the output zero point and clamp to the fused activation's range.

Shapes are NHWC; weights are (3, 3, Cin, Cout) HWIO for the full convolution, (3, 3, C) for the
depthwise one, (Cin, Cout) for pointwise / fully connected. Activations are uint8 (asymmetric,
TF-slim / Coral models) or int8 (post-training quantization); the arithmetic is the same, only the
range of the stored values differs. Written to be read, not to be fast.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

# The fixed-point arithmetic is product code (tinymobile.fixedpoint); the oracle uses it, and
# re-exports it so tests can reach everything integer through one module.
from .fixedpoint import (DTYPE_RANGE, INT32_MAX, INT32_MIN, Requant,  # noqa: F401
                         activation_range, conv_multiplier, dequantize, mean_multiplier,
                         multiply_by_quantized_multiplier,
                         multiply_by_quantized_multiplier_single_rounding, quantize,
                         quantize_multiplier, quantize_multipliers, requantize,
                         rounding_divide_by_pot, saturating_rounding_doubling_high_mul, trunc_div)
from .network import conv_output

# ---------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------

def _padded_offsets(x: np.ndarray, zero_point: int, stride: int, padding: str) -> np.ndarray:
    """x - zero_point as int64, zero-padded for a 3x3 window (padding contributes nothing)."""
    n, h, w, _ = x.shape
    oh, top = conv_output(h, stride, padding)
    ow, left = conv_output(w, stride, padding)
    bottom = max((oh - 1) * stride + 3 - h - top, 0)
    right = max((ow - 1) * stride + 3 - w - left, 0)
    xo = x.astype(np.int64) - int(zero_point)
    return np.pad(xo, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _windows(xp: np.ndarray, oh: int, ow: int, stride: int):
    for ky in range(3):
        for kx in range(3):
            yield ky, kx, xp[:, ky:ky + (oh - 1) * stride + 1:stride, kx:kx + (ow - 1) * stride + 1:stride, :]


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
            rq: Requant) -> np.ndarray:
    """Full 3x3 convolution: x (N, H, W, Cin), w (3, 3, Cin, Cout) quantized, b (Cout,) int32."""
    n, h, wd, _ = x.shape
    oh, _ = conv_output(h, stride, padding)
    ow, _ = conv_output(wd, stride, padding)
    xp = _padded_offsets(x, rq.input_zero_point, stride, padding)
    wo = w.astype(np.int64) - np.asarray(rq.weight_zero_point, np.int64)
    acc = np.zeros((n, oh, ow, w.shape[3]), np.int64) + b.astype(np.int64)
    for ky, kx, win in _windows(xp, oh, ow, stride):
        acc += win @ wo[ky, kx]
    return requantize(acc, rq)


def depthwise3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 rq: Requant) -> np.ndarray:
    """Depthwise 3x3 convolution: x (N, H, W, C), w (3, 3, C) quantized, b (C,) int32."""
    n, h, wd, c = x.shape
    oh, _ = conv_output(h, stride, padding)
    ow, _ = conv_output(wd, stride, padding)
    xp = _padded_offsets(x, rq.input_zero_point, stride, padding)
    wo = w.astype(np.int64) - np.asarray(rq.weight_zero_point, np.int64)
    acc = np.zeros((n, oh, ow, c), np.int64) + b.astype(np.int64)
    for ky, kx, win in _windows(xp, oh, ow, stride):
        acc += win * wo[ky, kx]
    return requantize(acc, rq)


def pointwise(x: np.ndarray, w: np.ndarray, b: np.ndarray, rq: Requant) -> np.ndarray:
    """1x1 convolution / fully connected: x (..., Cin), w (Cin, Cout) quantized, b (Cout,) int32."""
    xo = x.astype(np.int64) - int(rq.input_zero_point)
    wo = w.astype(np.int64) - np.asarray(rq.weight_zero_point, np.int64)
    return requantize(xo @ wo + b.astype(np.int64), rq)


fully_connected = pointwise


def _div_round_half_away(s: np.ndarray, count: int) -> np.ndarray:
    """s / count rounded half away from zero, as TFLite writes it with C division."""
    return np.where(s > 0, trunc_div(s + count // 2, count), trunc_div(s - count // 2, count))


def average_pool(x: np.ndarray, clamp: Tuple[int, int] = None) -> np.ndarray:
    """Global AVERAGE_POOL_2D (N, H, W, C) -> (N, C), same dtype and quantization as the input.

    TFLite's reference: the sum of the stored values divided by the count, rounded half away
    from zero ((sum + count/2) / count, or (sum - count/2) / count for a negative sum, in C
    division), then clamped.
    """
    n, h, w, c = x.shape
    avg = _div_round_half_away(x.astype(np.int64).sum(axis=(1, 2)), h * w)
    lo, hi = clamp if clamp is not None else DTYPE_RANGE[str(x.dtype)]
    return np.clip(avg, lo, hi).astype(x.dtype)


def mean(x: np.ndarray, input_zero_point: int, output_zero_point: int, multiplier: int,
         shift: int, clamp: Tuple[int, int] = None) -> np.ndarray:
    """MEAN over H and W (keep_dims) of int8 (N, H, W, C) -> (N, C), TFLite's reference_integer_ops.

    sum(x - input_zero_point) requantized with :func:`mean_multiplier` of (``multiplier``,
    ``shift``) (which quantize input_scale / output_scale), plus the output zero point, clamped.
    """
    n, h, w, c = x.shape
    m, sh = mean_multiplier(multiplier, shift, h * w)
    s = (x.astype(np.int64) - int(input_zero_point)).sum(axis=(1, 2))
    out = multiply_by_quantized_multiplier(s, m, sh) + int(output_zero_point)
    lo, hi = clamp if clamp is not None else DTYPE_RANGE[str(x.dtype)]
    return np.clip(out, lo, hi).astype(x.dtype)


def forward(network, x: np.ndarray, until: str = None, collect: bool = False):
    """Run a quantized :class:`~tinymobile.network.Network` on quantized input x (N, H, W, 3) of
    ``network.dtype``; returns the raw quantized logits (or pooled features).

    ``until`` stops after the named layer and returns its output. ``collect=True`` returns
    {layer name: output} for every layer instead.
    """
    if x.dtype != np.dtype(network.dtype):
        raise TypeError(f"input must be {network.dtype}, got {x.dtype}")
    requants = network.requants()
    outputs = {}
    for layer, (_, in_zp) in zip(network.layers, network.activation_quantization()):
        q = layer.quant
        if layer.kind == "conv3x3":
            x = conv3x3(x, layer.w, layer.b, layer.stride, network.padding, requants[layer.name])
        elif layer.kind == "depthwise3x3":
            x = depthwise3x3(x, layer.w, layer.b, layer.stride, network.padding, requants[layer.name])
        elif layer.kind in ("pointwise", "fully_connected"):
            x = pointwise(x, layer.w, layer.b, requants[layer.name])
        elif layer.kind == "global_pool" and q.pool_mode == "mean":
            x = mean(x, in_zp, q.output_zero_point, int(q.multiplier[0]), int(q.shift[0]), q.clamp)
        elif layer.kind == "global_pool":
            x = average_pool(x, q.clamp)
        else:
            raise ValueError(f"unknown layer kind {layer.kind!r}")
        outputs[layer.name] = x
        if layer.name == until:
            break
    return outputs if collect else x
