"""Every quantized C operator on every ISA this machine runs, against the NumPy integer reference
(tinymobile.quantized_reference), bit for bit, on hypothesis-generated shapes and quantization
parameters: odd sizes, channel counts off the vector widths (4, 8, 16), both strides, per-tensor
uint8 and per-channel int8 weights, uint8 and int8 activations, random zero points, multipliers,
shifts and clamps. Outputs are written over two different sentinel fills (0x00, then 0xFF) and
both runs must equal the reference, so an element the kernel forgets to write shows up."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ISAS, QU8_ISA_PARAMS
from tinymobile import kernels
from tinymobile import quantized_reference as qr
from tinymobile._native import ffi, lib
from tinymobile.operators import (AveragePoolOp, Conv3x3Op, Depthwise3x3Op, PointwiseOp,
                                  domain_offset, from_domain, kernel_table, to_domain)

SETTINGS = settings(max_examples=30, deadline=None)
DTYPES = st.sampled_from(["uint8", "int8"])


def run_sentinels(op, x, dtype):
    """Run op on x (model dtype) into outputs prefilled with 0x00 and 0xFF; both must agree.
    Each output is followed by 32 canary bytes that must come back untouched."""
    xu = np.ascontiguousarray(to_domain(x))
    outs = []
    shape = op.output_shape(xu.shape)
    size = int(np.prod(shape))
    for fill in (0x00, 0xFF):
        buf = np.full(size + 32, 0xA5, np.uint8)
        buf[:size] = fill
        out = buf[:size].reshape(shape)
        op.run(xu, out)
        assert (buf[size:] == 0xA5).all(), "the kernel wrote past its output"
        outs.append(out)
    assert np.array_equal(outs[0], outs[1]), "an output element was not written"
    return from_domain(outs[0], dtype)


def random_requant(rng, cout, dtype, per_channel):
    """Quantization parameters like real models': multipliers in [2^30, 2^31), right shifts
    (and now and then a left shift), zero points anywhere in range, a ReLU-like clamp."""
    lo, hi = qr.DTYPE_RANGE[dtype]
    n = cout if per_channel else 1
    mult = rng.integers(1 << 30, (1 << 31) - 1, n, dtype=np.int64).astype(np.int32)
    shift = rng.integers(-14, 1, n).astype(np.int32)
    if per_channel:  # weights symmetric int8, zero point 0 (TFLite's per-channel scheme)
        wzp = np.zeros(n, np.int32)
    else:
        wzp = np.array([rng.integers(0, 256) if dtype == "uint8" else rng.integers(-128, 128)],
                       np.int32)
    c_lo = int(rng.integers(lo, lo + 60))
    c_hi = int(rng.integers(c_lo, hi + 1))
    rq = qr.Requant(int(rng.integers(lo, hi + 1)), np.repeat(wzp, cout // n),
                    np.repeat(mult, cout // n), np.repeat(shift, cout // n),
                    int(rng.integers(lo, hi + 1)), (c_lo, c_hi), dtype)
    return rq


def random_weights(rng, shape, dtype, per_channel):
    wdtype = "int8" if (per_channel or dtype == "int8") else "uint8"
    lo, hi = qr.DTYPE_RANGE[wdtype]
    if per_channel:
        lo = -127
    return rng.integers(lo, hi + 1, shape).astype(wdtype)


def random_input(rng, shape, dtype):
    lo, hi = qr.DTYPE_RANGE[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def random_bias(rng, n):
    return rng.integers(-40000, 40000, n).astype(np.int32)


def setup(isa, threads):
    return kernel_table(isa, "uint8"), kernels.create_pool(threads)


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(1, 11), w=st.integers(1, 11), cin=st.integers(1, 9),
       cout=st.integers(1, 37), stride=st.sampled_from([1, 2]),
       padding=st.sampled_from(["tf_same", "symmetric"]), dtype=DTYPES, per_channel=st.booleans(),
       threads=st.sampled_from([1, 3]), seed=st.integers(0, 2**31))
def test_conv3x3(isa, n, h, w, cin, cout, stride, padding, dtype, per_channel, threads, seed):
    rng = np.random.default_rng(seed)
    x = random_input(rng, (n, h, w, cin), dtype)
    wt = random_weights(rng, (3, 3, cin, cout), dtype, per_channel)
    b = random_bias(rng, cout)
    rq = random_requant(rng, cout, dtype, per_channel)
    kern, pool = setup(isa, threads)
    op = Conv3x3Op(kern, pool, wt, b, stride, padding, rq=rq, offset=domain_offset(dtype))
    out = run_sentinels(op, x, dtype)
    np.testing.assert_array_equal(out, qr.conv3x3(x, wt, b, stride, padding, rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 24), cin=st.integers(1, 5),
       cout=st.sampled_from([1, 2, 3, 7, 8, 9, 33, 39, 40, 41]), stride=st.sampled_from([1, 2]),
       padding=st.sampled_from(["tf_same", "symmetric"]), dtype=DTYPES, per_channel=st.booleans(),
       w_zp_extreme=st.booleans(), threads=st.sampled_from([1, 3]), seed=st.integers(0, 2**31))
def test_conv3x3_narrow_panels(isa, h, w, cin, cout, stride, padding, dtype, per_channel,
                               w_zp_extreme, threads, seed):
    """Panels of at most 8 output channels (avx512vnni's 16x8 tile: alpha 0.25's first layer,
    and the 1..9 left after 32) on images of more pixels than a tile and fewer, every k = 9 *
    cin (odd k-quad counts too), weights whose w - w_zp fit int8 or do not (row sums)."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, (1, h, w, cin), dtype)
    wt = random_weights(rng, (3, 3, cin, cout), dtype, per_channel)
    b = random_bias(rng, cout)
    rq = random_requant(rng, cout, dtype, per_channel)
    if w_zp_extreme and dtype == "uint8" and not per_channel:
        rq = qr.Requant(rq.input_zero_point, np.full(cout, rng.choice([0, 255]), np.int32),
                        rq.multiplier, rq.shift, rq.output_zero_point, rq.clamp, "uint8")
    kern, pool = setup(isa, threads)
    op = Conv3x3Op(kern, pool, wt, b, stride, padding, rq=rq, offset=domain_offset(dtype))
    np.testing.assert_array_equal(run_sentinels(op, x, dtype),
                                  qr.conv3x3(x, wt, b, stride, padding, rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(1, 13), w=st.integers(1, 13), c=st.integers(1, 41),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from(["tf_same", "symmetric"]),
       dtype=DTYPES, per_channel=st.booleans(), threads=st.sampled_from([1, 3]),
       seed=st.integers(0, 2**31))
def test_depthwise3x3(isa, n, h, w, c, stride, padding, dtype, per_channel, threads, seed):
    rng = np.random.default_rng(seed)
    x = random_input(rng, (n, h, w, c), dtype)
    wt = random_weights(rng, (3, 3, c), dtype, per_channel)
    b = random_bias(rng, c)
    rq = random_requant(rng, c, dtype, per_channel)
    kern, pool = setup(isa, threads)
    op = Depthwise3x3Op(kern, pool, wt, b, stride, padding, rq=rq, offset=domain_offset(dtype))
    out = run_sentinels(op, x, dtype)
    np.testing.assert_array_equal(out, qr.depthwise3x3(x, wt, b, stride, padding, rq))


def random_pointwise(rng, m, k, n, dtype, per_channel):
    """A random (m, k) input and a k -> n layer's weights, bias and requantization."""
    return (random_input(rng, (m, k), dtype), random_weights(rng, (k, n), dtype, per_channel),
            random_bias(rng, n), random_requant(rng, n, dtype, per_channel))


def check_pointwise(isa, threads, x, wt, b, rq, dtype):
    """The pointwise operator on `isa` (sentinels around its output) equals the reference."""
    kern, pool = setup(isa, threads)
    out = run_sentinels(PointwiseOp(kern, pool, wt, b, rq=rq, offset=domain_offset(dtype)), x, dtype)
    np.testing.assert_array_equal(out, qr.pointwise(x, wt, b, rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@SETTINGS
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70), dtype=DTYPES,
       per_channel=st.booleans(), threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 2**31))
def test_pointwise(isa, m, k, n, dtype, per_channel, threads, seed):
    x, wt, b, rq = random_pointwise(np.random.default_rng(seed), m, k, n, dtype, per_channel)
    check_pointwise(isa, threads, x, wt, b, rq, dtype)


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@SETTINGS
@given(m=st.integers(1, 40), k=st.integers(1, 80), n=st.integers(1, 80),
       x_zp=st.sampled_from([0, 1, 127, 128, 254, 255]), w_zp=st.sampled_from([0, 1, 127, 128, 254, 255]),
       out_zp=st.sampled_from([0, 128, 255]), clamp=st.sampled_from([(0, 255), (0, 0), (255, 255), (3, 250)]),
       kind=st.sampled_from(["pointwise", "conv3x3"]), seed=st.integers(0, 2**31))
def test_gemm_zero_points_at_the_extremes(isa, m, k, n, x_zp, w_zp, out_zp, clamp, kind, seed):
    """uint8 per-tensor GEMMs (pointwise, and the first layer's implicit GEMM) with zero points
    at 0, 128 and 255: weights w - w_zp spanning -255..0 or 0..255 (a VNNI column that does not
    fit int8, so its offset z and the activation row sums are used), exactly -128..127
    (w_zp = 128: no row sums), activations all at a bound, clamps that pin every output, right
    shifts up to 31 and left shifts."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, (m, k), "uint8")
    x[rng.random((m, k)) < 0.3] = rng.choice([0, 255])
    wt = random_weights(rng, (k, n), "uint8", False)
    wt[rng.random((k, n)) < 0.2] = rng.choice([0, 255])
    b = random_bias(rng, n)
    rq = random_requant(rng, n, "uint8", False)
    shift = rng.choice(np.array([-31, -20, -1, 0, 1, 2], np.int32), n)  # left shifts too
    rq = qr.Requant(x_zp, np.full(n, w_zp, np.int32), rq.multiplier, shift, out_zp, clamp, "uint8")
    kern, pool = setup(isa, 1)
    if kind == "pointwise":
        out = run_sentinels(PointwiseOp(kern, pool, wt, b, rq=rq), x, "uint8")
        np.testing.assert_array_equal(out, qr.pointwise(x, wt, b, rq))
    else:  # a 3x3 convolution whose 9 * cin = k rounded up to a multiple of 9
        cin = (k + 8) // 9
        img = random_input(rng, (1, 4, 5, cin), "uint8")
        w3 = random_weights(rng, (3, 3, cin, n), "uint8", False)
        op = Conv3x3Op(kern, pool, w3, b, 2, "tf_same", rq=rq)
        np.testing.assert_array_equal(run_sentinels(op, img, "uint8"),
                                      qr.conv3x3(img, w3, b, 2, "tf_same", rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 7), c=st.integers(60, 200),
       stride=st.sampled_from([1, 2]), dtype=DTYPES, per_channel=st.booleans(),
       w_zp_extreme=st.booleans(), seed=st.integers(0, 2**31))
def test_depthwise3x3_wide(isa, h, w, c, stride, dtype, per_channel, w_zp_extreme, seed):
    """Channel counts past 64 (the 64-channel vpdpbusd blocks of avx512vnni, with the 16-channel
    groups after them), weights whose w - w_zp fit int8 or do not (w_zp at 0 or 255)."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, (1, h, w, c), dtype)
    wt = random_weights(rng, (3, 3, c), dtype, per_channel)
    b = random_bias(rng, c)
    rq = random_requant(rng, c, dtype, per_channel)
    if w_zp_extreme and dtype == "uint8" and not per_channel:
        rq = qr.Requant(rq.input_zero_point, np.full(c, rng.choice([0, 255]), np.int32),
                        rq.multiplier, rq.shift, rq.output_zero_point, rq.clamp, "uint8")
    kern, pool = setup(isa, 1)
    op = Depthwise3x3Op(kern, pool, wt, b, stride, "tf_same", rq=rq, offset=domain_offset(dtype))
    np.testing.assert_array_equal(run_sentinels(op, x, dtype),
                                  qr.depthwise3x3(x, wt, b, stride, "tf_same", rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 5), w=st.integers(1, 23), c=st.sampled_from([7, 8, 9]),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from(["tf_same", "symmetric"]),
       dtype=DTYPES, per_channel=st.booleans(), seed=st.integers(0, 2**31))
def test_depthwise3x3_eight_channels(isa, h, w, c, stride, padding, dtype, per_channel, seed):
    """8 channels (alpha 0.25's first depthwise layer; AVX-512 runs two pixels per vector there)
    and its neighbours, every row width and border case at both strides."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, (1, h, w, c), dtype)
    wt = random_weights(rng, (3, 3, c), dtype, per_channel)
    b = random_bias(rng, c)
    rq = random_requant(rng, c, dtype, per_channel)
    kern, pool = setup(isa, 1)
    op = Depthwise3x3Op(kern, pool, wt, b, stride, padding, rq=rq, offset=domain_offset(dtype))
    np.testing.assert_array_equal(run_sentinels(op, x, dtype),
                                  qr.depthwise3x3(x, wt, b, stride, padding, rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 4), w=st.integers(1, 40), c=st.sampled_from([8, 16, 24, 32, 40, 48, 56]),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from(["tf_same", "symmetric"]),
       dtype=DTYPES, per_channel=st.booleans(), w_zp_extreme=st.booleans(),
       seed=st.integers(0, 2**31))
def test_depthwise3x3_pixel_groups(isa, h, w, c, stride, padding, dtype, per_channel,
                                   w_zp_extreme, seed):
    """8 to 56 channels, multiples of 8 (avx512vnni runs 64 / c interior output pixels, rounded
    down, as one vpdpbusd block, the last group moved back over the one before; 24 and 40..56
    with byte-masked loads): rows narrower than a group, exactly one, and any remainder, both
    strides and paddings, weights whose w - w_zp fit int8 or not."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, (1, h, w, c), dtype)
    wt = random_weights(rng, (3, 3, c), dtype, per_channel)
    b = random_bias(rng, c)
    rq = random_requant(rng, c, dtype, per_channel)
    if w_zp_extreme and dtype == "uint8" and not per_channel:
        rq = qr.Requant(rq.input_zero_point, np.full(c, rng.choice([0, 255]), np.int32),
                        rq.multiplier, rq.shift, rq.output_zero_point, rq.clamp, "uint8")
    kern, pool = setup(isa, 1)
    op = Depthwise3x3Op(kern, pool, wt, b, stride, padding, rq=rq, offset=domain_offset(dtype))
    np.testing.assert_array_equal(run_sentinels(op, x, dtype),
                                  qr.depthwise3x3(x, wt, b, stride, padding, rq))


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=20, deadline=None)
@given(m=st.sampled_from([7, 13, 14, 25, 49, 50, 98, 196]), k=st.integers(1, 300),
       n=st.integers(1, 70), dtype=DTYPES, per_channel=st.booleans(),
       threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 2**31))
def test_pointwise_short_tile_rows(isa, m, k, n, dtype, per_channel, threads, seed):
    """Row counts the 7-row avx512vnni tile takes (49 = 7 x 7, 196, 25) or leaves to the 8-row
    one, split over threads into row blocks of whole tiles."""
    x, wt, b, rq = random_pointwise(np.random.default_rng(seed), m, k, n, dtype, per_channel)
    check_pointwise(isa, threads, x, wt, b, rq, dtype)


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 1100), n=st.integers(1, 300), dtype=DTYPES, per_channel=st.booleans(),
       w_zp_extreme=st.booleans(), threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 2**31))
def test_pointwise_lone_row(isa, k, n, dtype, per_channel, w_zp_extreme, threads, seed):
    """One row (a batch-1 fully connected layer: avx512vnni's GEMV, four panels at a time, the
    last group of 1..4 panels and its last panel partial), column blocks over threads, weights
    whose w - w_zp fit int8 or need the row sum."""
    rng = np.random.default_rng(seed)
    x, wt, b, rq = random_pointwise(rng, 1, k, n, dtype, per_channel)
    if w_zp_extreme and dtype == "uint8" and not per_channel:
        rq = qr.Requant(rq.input_zero_point, np.full(n, rng.choice([0, 255]), np.int32),
                        rq.multiplier, rq.shift, rq.output_zero_point, rq.clamp, "uint8")
    check_pointwise(isa, threads, x, wt, b, rq, dtype)


def test_pointwise_large_k_and_many_rows():
    """Row blocks and column blocks of the threaded GEMM (K = 1024, like the last layers): 40
    outputs (40 KB of weights: split by rows), 420 (430 KB: by columns, as a 7x7 layer)."""
    rng = np.random.default_rng(7)
    for isa in ISAS:
        for m, n, threads in ((49, 40, 3), (600, 40, 2), (49, 420, 3), (98, 420, 2)):
            x = random_input(rng, (m, 1024), "uint8")
            wt = random_weights(rng, (1024, n), "uint8", False)
            b = random_bias(rng, n)
            rq = random_requant(rng, n, "uint8", False)
            kern, pool = setup(isa, threads)
            out = run_sentinels(PointwiseOp(kern, pool, wt, b, rq=rq), x, "uint8")
            np.testing.assert_array_equal(out, qr.pointwise(x, wt, b, rq))


@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 40),
       dtype=DTYPES, seed=st.integers(0, 2**31))
def test_average_pool_2d(n, h, w, c, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_input(rng, (n, h, w, c), dtype)
    lo, hi = qr.DTYPE_RANGE[dtype]
    clamp = (int(rng.integers(lo, lo + 40)), int(rng.integers(hi - 40, hi + 1)))
    op = AveragePoolOp(kernel_table(None, "uint8"), "average_pool_2d", clamp, domain_offset(dtype))
    np.testing.assert_array_equal(run_sentinels(op, x, dtype), qr.average_pool(x, clamp))


@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 40),
       seed=st.integers(0, 2**31))
def test_mean(n, h, w, c, seed):
    rng = np.random.default_rng(seed)
    x = random_input(rng, (n, h, w, c), "int8")
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    mult, shift = qr.quantize_multiplier(float(rng.uniform(0.05, 3.0)))
    op = AveragePoolOp(kernel_table(None, "uint8"), "mean", (-128, 127), 128, in_zp, out_zp, mult, shift)
    np.testing.assert_array_equal(run_sentinels(op, x, "int8"),
                                  qr.mean(x, in_zp, out_zp, mult, shift, (-128, 127)))


@settings(max_examples=200, deadline=None)
@given(x=st.integers(-(1 << 31), (1 << 31) - 1), real=st.floats(1e-6, 40.0))
def test_c_requantize_matches_reference(x, real):
    """The C scalar MultiplyByQuantizedMultiplier equals the NumPy one (the vector ones are
    covered through the kernels above)."""
    mult, shift = qr.quantize_multiplier(real)
    if shift > 0:  # keep x * 2^shift meaningful as TFLite would (no models shift left by much)
        x >>= shift
    acc = np.array([x, -x if x > -(1 << 31) else x, x // 3], np.int32)
    out = np.empty(3, np.int32)
    lib.tm_qu8_requantize_scalar(3, ffi.cast("int32_t *", ffi.from_buffer(acc)), mult, shift,
                                 ffi.cast("int32_t *", ffi.from_buffer(out)))
    np.testing.assert_array_equal(out, qr.multiply_by_quantized_multiplier(acc, mult, shift))


def test_unavailable_isa_is_refused():
    from tinymobile.errors import TinyMobileError
    with pytest.raises(TinyMobileError, match="unknown ISA"):
        kernel_table("sse9", "uint8")


def rounding_tie_columns(rng, n):
    """Per-column bias, multiplier and shift such that bias + d (d in -128..127) crosses the
    rounding ties of both steps of TFLite's requantization (SaturatingRoundingDoublingHighMul's
    half at P = x * m = (2^31) * (k + 1/2), RoundingDivideByPOT's half at h = 2^e * (y + 1/2),
    positive and negative), with multipliers from 0 to 2^31 - 1 (2^30 exactly among them), every
    right shift 0..31 and left shifts (whose x << left wraps in int32 when the bias is large)."""
    mult = rng.integers(1 << 30, 1 << 31, n, dtype=np.int64)
    mult[rng.random(n) < 0.15] = 1 << 30
    small = rng.random(n) < 0.1
    mult[small] = rng.integers(0, 1 << 20, int(small.sum()))
    mult[rng.random(n) < 0.05] = (1 << 31) - 1
    shift = -rng.integers(0, 32, n)
    left = rng.random(n) < 0.15
    shift[left] = rng.integers(1, 31, int(left.sum()))
    bias = np.zeros(n, np.int64)
    for j in range(n):
        e, m = max(-int(shift[j]), 0), int(mult[j])
        y = int(rng.integers(-100, 100))
        if shift[j] > 0 or m == 0 or rng.random() < 0.1:  # anywhere (wrapping left shifts too)
            bias[j] = int(rng.integers(-(1 << 31) + 200, (1 << 31) - 200))
            continue
        h_tie = (y << e) + ((1 << (e - 1)) if e else 0)  # RoundingDivideByPOT's half
        b = (h_tie << 31) // m
        bias[j] = int(np.clip(b, -(1 << 31) + 200, (1 << 31) - 200))
    return bias.astype(np.int32), mult.astype(np.int32), shift.astype(np.int32)


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 70), kind=st.sampled_from(["pointwise", "conv3x3"]),
       seed=st.integers(0, 2**31))
def test_requantization_at_the_rounding_ties(isa, n, kind, seed):
    """Accumulators bias + (x - x_zp) sweeping across both rounding steps' ties, per output
    channel (int8 per-channel requantization), through the GEMM tiles (pointwise, and a 3x3
    convolution whose centre tap is 1: its narrow tile where cout fits it): every output equals
    TFLite's MultiplyByQuantizedMultiplier + zero point."""
    rng = np.random.default_rng(seed)
    bias, mult, shift = rounding_tie_columns(rng, n)
    rq = qr.Requant(0, np.zeros(n, np.int32), mult, shift, int(rng.integers(-20, 21)),
                    (-128, 127), "int8")
    kern, pool = setup(isa, 1)
    d = np.arange(-128, 128, dtype=np.int8)
    if kind == "pointwise":
        op = PointwiseOp(kern, pool, np.ones((1, n), np.int8), bias, rq=rq, offset=128)
        x = d.reshape(256, 1)
        np.testing.assert_array_equal(run_sentinels(op, x, "int8"), qr.pointwise(x, np.ones((1, n), np.int8), bias, rq))
    else:
        w3 = np.zeros((3, 3, 1, n), np.int8)
        w3[1, 1] = 1
        x = rng.permutation(d).reshape(1, 16, 16, 1)
        op = Conv3x3Op(kern, pool, w3, bias, 1, "tf_same", rq=rq, offset=128)
        np.testing.assert_array_equal(run_sentinels(op, x, "int8"),
                                      qr.conv3x3(x, w3, bias, 1, "tf_same", rq))
