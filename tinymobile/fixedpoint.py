"""Fixed-point and quantization arithmetic the engine needs (product code, not an oracle).

TensorFlow Lite's integer conventions, bit for bit: ``QuantizeMultiplier`` (a real multiplier as
an int32 mantissa and a power-of-two shift), gemmlowp's ``SaturatingRoundingDoublingHighMul`` and
``RoundingDivideByPOT`` (both round halves away from zero), ``MultiplyByQuantizedMultiplier``,
the fused-activation clamp, the int8 MEAN's folded multiplier, QUANTIZE / DEQUANTIZE, and the
float softmax / sigmoid applied to logits. The converters, the operators and the model use these;
the NumPy references (:mod:`tinymobile.reference`, :mod:`tinymobile.quantized_reference`) import
them too, never the other way round.

Quantized real value = ``scale * (q - zero_point)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

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


def trunc_div(a: np.ndarray, d: int) -> np.ndarray:
    """C integer division (rounds toward zero) of an int64 array by a positive int."""
    return np.where(a >= 0, a // d, -((-a) // d))


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SRDHM: the high 32 bits of 2*a*b, rounded half away from zero (int32 in int64)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    out = trunc_div(ab + nudge, 1 << 31)
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


def mean_multiplier(multiplier: int, shift: int, count: int) -> Tuple[int, int]:
    """Fold the division by ``count`` into (multiplier, shift) as TFLite's int8 MEAN does.

    ``multiplier``/``shift`` quantize input_scale / output_scale. The multiplier is scaled up by
    2**k (k = floor(log2(count)), at most 32 and at most 31 + shift), divided by ``count`` with
    truncation, and the shift lowered by k.
    """
    k = min(count.bit_length() - 1, 32, 31 + int(shift))
    return ((int(multiplier) << k) // count), int(shift) - k


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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably in float64, returned as float32."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), stable for large |x|, as float32."""
    z = np.asarray(logits, np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)
