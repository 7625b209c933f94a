"""The NumPy integer reference's fixed-point pieces against their definitions (TFLite's
QuantizeMultiplier and gemmlowp's rounding helpers), written out independently with Python ints."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymobile import quantized_reference as qr


def srdhm_literal(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul as written there: nudge, then C division."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return abs(v) // (1 << 31) * (1 if v >= 0 else -1)


def rdbpot_literal(x: int, e: int) -> int:
    """x / 2^e rounded to nearest, halves away from zero (gemmlowp RoundingDivideByPOT)."""
    q = Fraction(x, 1 << e)
    r = math.floor(abs(q) + Fraction(1, 2))
    return r if q >= 0 else -r


@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (2.0, (1 << 30, 2)), (0.75, (1610612736, 0)),
    (0.0, (0, 0)), (2.0 ** -40, (0, 0)),            # below 2^-31: flushed to zero
    (1.0 - 2.0 ** -40, (1 << 30, 1)),               # mantissa rounds up to 2^31: halved
    (2.0 ** 40, ((1 << 31) - 1, 30)),               # saturated
])
def test_quantize_multiplier_known_values(real, expected):
    assert qr.quantize_multiplier(real) == expected


@settings(max_examples=300, deadline=None)
@given(real=st.floats(2.0 ** -30, 2.0 ** 29))
def test_quantize_multiplier_is_nearest(real):
    m, shift = qr.quantize_multiplier(real)
    assert (1 << 30) <= m < (1 << 31)
    # m * 2^(shift - 31) is real rounded to 31 significant bits
    assert abs(Fraction(m) * Fraction(2) ** (shift - 31) - Fraction(real)) <= Fraction(2) ** (shift - 32)


@settings(max_examples=500, deadline=None)
@given(a=st.integers(-(1 << 31), (1 << 31) - 1), b=st.integers(0, (1 << 31) - 1),
       e=st.integers(0, 31))
def test_multiply_by_quantized_multiplier_matches_definition(a, b, e):
    got = qr.multiply_by_quantized_multiplier(np.array([a]), np.array([b]), np.array([-e]))[0]
    assert got == rdbpot_literal(srdhm_literal(a, b), e)
    assert qr.saturating_rounding_doubling_high_mul(np.array([a]), np.array([b]))[0] == srdhm_literal(a, b)


def test_saturating_case():
    x = np.array([-(1 << 31)])
    assert qr.saturating_rounding_doubling_high_mul(x, x)[0] == (1 << 31) - 1


def test_double_rounding_differs_from_single_rounding():
    """Why the reference implements gemmlowp's two roundings and not TFLITE_SINGLE_ROUNDING:
    they disagree on some inputs, so only one of them can match TFLite byte for byte."""
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 20), 1 << 20, 100000)
    m, s = qr.quantize_multiplier(0.0123)
    a = qr.multiply_by_quantized_multiplier(x, m, s)
    b = qr.multiply_by_quantized_multiplier_single_rounding(x, m, s)
    assert np.abs(a - b).max() == 1 and (a != b).any()


@pytest.mark.parametrize("activation, scale, zp, dtype, expected", [
    ("RELU6", 0.0235, 0, "uint8", (0, 255)), ("RELU6", 0.05, 0, "uint8", (0, 120)),
    ("RELU6", 0.05, -128, "int8", (-128, -8)), ("RELU", 0.1, 10, "uint8", (10, 255)),
    ("NONE", 0.1, 3, "int8", (-128, 127)),
])
def test_activation_range(activation, scale, zp, dtype, expected):
    assert qr.activation_range(activation, scale, zp, dtype) == expected


def test_average_pool_rounds_halves_away_from_zero():
    x = np.array([[[[1], [2]]]], np.int8)          # mean 1.5 -> 2
    assert qr.average_pool(x)[0, 0] == 2
    x = np.array([[[[-1], [-2]]]], np.int8)        # mean -1.5 -> -2
    assert qr.average_pool(x)[0, 0] == -2
