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

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .network import conv_output

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

#: Value range of each quantized activation dtype.
DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


# ---------------------------------------------------------------------------------------------
# Fixed-point multipliers
# ---------------------------------------------------------------------------------------------

def quantize_multiplier(real: float) -> Tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    ``multiplier`` is an int32 in [2**30, 2**31) (or 0), ``shift`` the power of two (positive =
    left shift), from ``frexp`` and ``round`` (half away from zero) of the mantissa times 2**31.
    A mantissa that rounds up to 2**31 is halved and the shift incremented; shifts below -31 flush
    the multiplier to 0; shifts above 30 saturate to (2**31 - 1, 30), as TFLite does.
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier must be finite and non-negative, got {real}")
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * float(1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return int(q_fixed), int(shift)


def _round_half_away(v: float) -> int:
    """``std::round``: nearest integer, halves away from zero (exact for |v| < 2**52)."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def conv_multiplier(input_scale: float, weight_scale: float, output_scale: float,
                    float_product: bool) -> float:
    """The real multiplier input_scale * weight_scale / output_scale, computed as TFLite does.

    TFLite has two code paths that round differently: ``GetQuantizedConvolutionMultipler`` (uint8
    CONV_2D / DEPTHWISE_CONV_2D, per-tensor FULLY_CONNECTED) multiplies the two float32 scales in
    float32 and divides in double (``float_product=True``); the per-channel path (int8
    convolutions, per-channel FULLY_CONNECTED) does everything in double. The last bit of the
    multiplier, and so some outputs, differ between the two.
    """
    if float_product:
        return float(np.float32(input_scale) * np.float32(weight_scale)) / float(np.float32(output_scale))
    return float(np.float32(input_scale)) * float(np.float32(weight_scale)) / float(np.float32(output_scale))


def quantize_multipliers(input_scale: float, weight_scales: np.ndarray, output_scale: float,
                         float_product: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) int32 arrays, one per entry of ``weight_scales`` (per tensor: one)."""
    pairs = [quantize_multiplier(conv_multiplier(input_scale, s, output_scale, float_product))
             for s in np.asarray(weight_scales, np.float32).ravel()]
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def _trunc_div(a: np.ndarray, d: int) -> np.ndarray:
    """C integer division (rounds toward zero) of an int64 array by a positive int."""
    return np.where(a >= 0, a // d, -((-a) // d))


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SRDHM: the high 32 bits of 2*a*b, rounded half away from zero (int32 in int64)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    out = _trunc_div(ab + nudge, 1 << 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, out)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, np.int64) - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray,
                                     shift: np.ndarray) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` (default, double-rounding build).

    ``x * 2**max(shift, 0)`` (wrapping in int32 as the C code does), then SRDHM with
    ``multiplier``, then a rounding right shift by ``max(-shift, 0)``. Arrays broadcast.
    """
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _wrap_int32(np.asarray(x, np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_single_rounding(x: np.ndarray, multiplier: np.ndarray,
                                                     shift: np.ndarray) -> np.ndarray:
    """The ``TFLITE_SINGLE_ROUNDING`` variant: (x * m + 2**(30 - shift)) >> (31 - shift).

    Not what the released TFLite uses for these kernels; kept to show the difference in tests.
    """
    total = 31 - np.asarray(shift, np.int64)
    r = (np.asarray(x, np.int64) * np.asarray(multiplier, np.int64) + (np.int64(1) << (total - 1))) >> total
    return np.clip(r, INT32_MIN, INT32_MAX)


# ---------------------------------------------------------------------------------------------
# Layer parameters
# ---------------------------------------------------------------------------------------------

@dataclass
class Requant:
    """Quantization parameters of one convolution-like layer (per output channel where arrays).

    ``weight_zero_point``, ``multiplier`` and ``shift`` have length Cout (a per-tensor value is
    repeated). ``clamp`` is the fused activation's range in the output's quantized domain.
    """
    input_zero_point: int
    weight_zero_point: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    output_zero_point: int
    clamp: Tuple[int, int]
    dtype: str = "uint8"

    def __post_init__(self):
        if self.dtype not in DTYPE_RANGE:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_RANGE)}, got {self.dtype!r}")


def activation_range(activation: str, output_scale: float, output_zero_point: int,
                     dtype: str) -> Tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized``: the clamp of a fused activation.

    ``activation`` is "NONE", "RELU", "RELU6" or "RELU_N1_TO_1"; values are quantized with
    ``round(f / scale)`` in float32 (halves away from zero) plus the zero point.
    """
    qmin, qmax = DTYPE_RANGE[dtype]
    scale = np.float32(output_scale)

    def quantize(f: float) -> int:
        return int(output_zero_point) + _round_half_away(float(np.float32(f) / scale))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"unsupported fused activation {activation!r}")


def requantize(acc: np.ndarray, rq: Requant) -> np.ndarray:
    """int accumulators (..., Cout) -> quantized outputs of ``rq.dtype``."""
    out = multiply_by_quantized_multiplier(acc, rq.multiplier, rq.shift) + rq.output_zero_point
    return np.clip(out, rq.clamp[0], rq.clamp[1]).astype(rq.dtype)


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
    return np.where(s > 0, _trunc_div(s + count // 2, count), _trunc_div(s - count // 2, count))


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


def mean_multiplier(multiplier: int, shift: int, count: int) -> Tuple[int, int]:
    """Fold the division by ``count`` into (multiplier, shift) as TFLite's int8 MEAN does.

    ``multiplier``/``shift`` quantize input_scale / output_scale. The multiplier is scaled up by
    2**k (k = floor(log2(count)), at most 32 and at most 31 + shift), divided by ``count`` with
    truncation, and the shift lowered by k.
    """
    k = min(count.bit_length() - 1, 32, 31 + int(shift))
    return ((int(multiplier) << k) // count), int(shift) - k


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


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Real values -> quantized: round(x / scale) + zero_point (halves away from zero), saturated.

    The division is done in float32 like TFLite's QUANTIZE reference (``AffineQuantize``).
    """
    qmin, qmax = DTYPE_RANGE[dtype]
    v = np.asarray(x, np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)
    return np.clip(r + int(zero_point), qmin, qmax).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Quantized -> real float32: scale * (q - zero_point)."""
    return (np.float32(scale) * (q.astype(np.float32) - np.float32(zero_point))).astype(np.float32)


def forward(network, x: np.ndarray, until: str = None, collect: bool = False):
    """Run a :class:`~tinymobile.quantized_network.QuantizedNetwork` on quantized input
    x (N, R, R, 3) of ``network.dtype``; returns the raw quantized logits (or pooled features).

    ``until`` stops after the named layer and returns its output. ``collect=True`` returns
    {layer name: output} for every layer instead.
    """
    from .network import AveragePool, Conv3x3, Depthwise3x3, FullyConnected, Pointwise

    if x.dtype != np.dtype(network.dtype):
        raise TypeError(f"input must be {network.dtype}, got {x.dtype}")
    requants = network.requants()
    outputs = {}
    for layer in network.layers:
        if isinstance(layer, Conv3x3):
            x = conv3x3(x, layer.w, layer.b, layer.stride, network.padding, requants[layer.name])
        elif isinstance(layer, Depthwise3x3):
            x = depthwise3x3(x, layer.w, layer.b, layer.stride, network.padding, requants[layer.name])
        elif isinstance(layer, Pointwise):
            x = pointwise(x, layer.w, layer.b, requants[layer.name])
        elif isinstance(layer, AveragePool):
            q = network.quant[layer.name]
            if q.pool_mode == "mean":
                in_zp = network.activation_quantization()[network.layers.index(layer)][1]
                x = mean(x, in_zp, q.output_zero_point, int(q.multiplier[0]), int(q.shift[0]), q.clamp)
            else:
                x = average_pool(x, q.clamp)
        elif isinstance(layer, FullyConnected):
            x = fully_connected(x, layer.w, layer.b, requants[layer.name])
        outputs[layer.name] = x
        if layer.name == until:
            break
    return outputs if collect else x
