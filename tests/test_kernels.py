"""Every C operator on every ISA this machine runs, against the NumPy reference, on
hypothesis-generated shapes (odd sizes, channel counts off the vector width, both strides and
paddings, clamp bounds) with NaN-prefilled outputs."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import F32_ISAS as ISAS
from helpers.oracle import (compare_average_pool, compare_conv3x3, compare_depthwise3x3,
                            compare_max_pool,
                            compare_pointwise, run_nan_filled)
from tinymobile import kernels
from tinymobile.operators import Conv3x3Op, Depthwise3x3Op, PointwiseOp

CLAMPS = st.sampled_from([(-np.inf, np.inf), (0.0, 6.0), (0.0, np.inf), (-0.5, 0.25)])
SETTINGS = settings(max_examples=40, deadline=None)


def arrays(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("isa", ISAS)
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(1, 13), w=st.integers(1, 13), cin=st.integers(1, 11),
       cout=st.integers(1, 41), stride=st.sampled_from([1, 2]),
       padding=st.sampled_from(["tf_same", "symmetric"]), clamp=CLAMPS,
       threads=st.sampled_from([1, 3]), seed=st.integers(0, 2**31))
def test_conv3x3(isa, n, h, w, cin, cout, stride, padding, clamp, threads, seed):
    rng = np.random.default_rng(seed)
    compare_conv3x3(isa, threads, arrays(rng, n, h, w, cin), arrays(rng, 3, 3, cin, cout),
                    arrays(rng, cout), stride, padding, clamp)


@pytest.mark.parametrize("isa", ISAS)
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(1, 17), w=st.integers(1, 17), c=st.integers(1, 37),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from(["tf_same", "symmetric"]),
       clamp=CLAMPS, threads=st.sampled_from([1, 3]), seed=st.integers(0, 2**31))
def test_depthwise3x3(isa, n, h, w, c, stride, padding, clamp, threads, seed):
    rng = np.random.default_rng(seed)
    compare_depthwise3x3(isa, threads, arrays(rng, n, h, w, c), arrays(rng, 3, 3, c), arrays(rng, c),
                         stride, padding, clamp)


@pytest.mark.parametrize("isa", ISAS)
@SETTINGS
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70), clamp=CLAMPS,
       threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 2**31))
def test_pointwise(isa, m, k, n, clamp, threads, seed):
    rng = np.random.default_rng(seed)
    compare_pointwise(isa, threads, arrays(rng, m, k), arrays(rng, k, n), arrays(rng, n), clamp)


@pytest.mark.parametrize("isa", ISAS)
@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 40),
       seed=st.integers(0, 2**31))
def test_average_pool(isa, n, h, w, c, seed):
    compare_average_pool(isa, arrays(np.random.default_rng(seed), n, h, w, c))


@pytest.mark.parametrize("isa", ISAS)
@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 80),
       seed=st.integers(0, 2**31))
def test_max_pool(isa, n, h, w, c, seed):
    compare_max_pool(isa, arrays(np.random.default_rng(seed), n, h, w, c))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("c", [1, 7, 8, 9, 16, 31, 32, 33, 40, 41, 64, 65])
def test_max_pool_channels_around_vector_width(isa, c):
    """Each vector path (32 / 8 channels on AVX2, 16 / 4 on NEON) and every tail length; the
    maximum placed at the first, a middle and the last pixel."""
    rng = np.random.default_rng(c)
    x = -np.abs(arrays(rng, 2, 3, 5, c)) - 1
    for b, p in ((0, 0), (1, 14)):
        x[b].reshape(15, c)[p] = 5.0
    x[0].reshape(15, c)[7, ::3] = 9.0
    compare_max_pool(isa, x)


# Named edge cases, so a failure says which shape broke.
@pytest.mark.parametrize("c", [1, 3, 4, 7, 8, 9, 15, 16, 17, 24, 32, 33, 128, 136, 1024])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise3x3_channels_around_vector_width(isa, c, stride):
    rng = np.random.default_rng(c)
    compare_depthwise3x3(isa, 1, arrays(rng, 1, 8, 9, c), arrays(rng, 3, 3, c), arrays(rng, c),
                         stride, "tf_same", (0.0, 6.0))


@pytest.mark.parametrize("c", [8, 20, 48, 136, 512])
@pytest.mark.parametrize("stride", [3, 4])
@pytest.mark.parametrize("padding", ["tf_same", "symmetric"])
def test_depthwise3x3_strides_beyond_mobilenet(isa, c, stride, padding):
    """Strides no MobileNet file has (the model formats refuse them; the operator takes any):
    the vector kernels' pixel pairs, which assume a stride of 1 or 2, must not run there (the
    AVX2 kernel once computed every second pixel of a pair at stride 2 instead)."""
    rng = np.random.default_rng(c * 10 + stride)
    compare_depthwise3x3(isa, 1, arrays(rng, 1, 9, 17, c), arrays(rng, 3, 3, c), arrays(rng, c),
                         stride, padding, (-np.inf, np.inf))


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (6, 32, 16), (7, 33, 17), (12, 64, 32),
                                   (49, 1024, 1000), (1, 1024, 1001), (200, 3, 5)])
def test_pointwise_tiles(isa, m, k, n):
    rng = np.random.default_rng(m * k * n)
    compare_pointwise(isa, 2, arrays(rng, m, k), arrays(rng, k, n), arrays(rng, n), (0.0, 6.0))


@pytest.mark.parametrize("k", [1, 7, 256])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129, 1000])
@pytest.mark.parametrize("threads", [1, 2])
def test_single_row_equals_the_same_row_in_a_batch(isa, k, n, threads):
    """A fully connected layer at batch 1 (the GEMV path where the table has one, up to four
    panels of 16 or 32 columns at once, the last one partial or full) gives
    exactly the bits of that row computed inside a batch of 7 (the GEMM tiles), and agrees with
    the reference."""
    rng = np.random.default_rng(k * n)
    x, w, b = arrays(rng, 7, k), arrays(rng, k, n), arrays(rng, n)
    compare_pointwise(isa, threads, x[3:4], w, b, (-1.0, 2.0))
    op = PointwiseOp(kernels.kernel_table(isa), kernels.create_pool(threads), w, b, (-1.0, 2.0))
    single, batch = run_nan_filled(op, x[3:4]), run_nan_filled(op, x)
    assert np.array_equal(single[0], batch[3])


@pytest.mark.parametrize("m", [7, 13, 25, 49])
@pytest.mark.parametrize("threads", [1, 2])
def test_lone_last_row_equals_the_same_row_in_a_full_tile(isa, m, threads):
    """M = 49 (a 7x7 layer) leaves one row after the 6-row tiles; it goes through the GEMV
    path and must give the bits it gets inside a full tile (here: M = 54)."""
    rng = np.random.default_rng(m)
    x, w, b = arrays(rng, 54, 96), arrays(rng, 96, 70), arrays(rng, 70)
    op = PointwiseOp(kernels.kernel_table(isa), kernels.create_pool(threads), w, b, (0.0, 6.0))
    compare_pointwise(isa, threads, x[:m], w, b, (0.0, 6.0))
    assert np.array_equal(run_nan_filled(op, x[:m]), run_nan_filled(op, x)[:m])


@pytest.mark.skipif("avx512" not in ISAS or "avx2" not in ISAS, reason="this CPU has no AVX-512")
@pytest.mark.parametrize("m,k,n", [(1, 5, 3), (8, 64, 32), (13, 33, 47), (49, 1024, 1000),
                                   (56, 40, 33), (196, 17, 64), (1, 1024, 1001), (1, 256, 129)])
def test_avx512_gemm_gives_the_avx2_bits(m, k, n):
    """The 8x32 AVX-512 tile, its 7x32 short tile (M = 13, 49, 196 run on it) and its GEMV (M = 1)
    sum every output in the same order as the 6x16 AVX2 one."""
    rng = np.random.default_rng(m * k + n)
    x, w, b = arrays(rng, m, k), arrays(rng, k, n), arrays(rng, n)
    outs = [run_nan_filled(PointwiseOp(kernels.kernel_table(isa), kernels.create_pool(2), w, b,
                                       (0.0, 6.0)), x) for isa in ("avx2", "avx512")]
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.skipif("avx512" not in ISAS or "avx2" not in ISAS, reason="this CPU has no AVX-512")
@pytest.mark.parametrize("cout", [1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 48])
@pytest.mark.parametrize("cin,stride,size",
                         [(3, 2, 37), (3, 1, 9), (5, 2, 11), (1, 1, 5), (9, 2, 8)])
def test_avx512_conv3x3_gives_the_avx2_bits(cout, cin, stride, size):
    """A full 3x3 layer on avx512 (its panels of at most 16 channels on the 16x16 tile, wider ones
    on the 8x32 GEMM tile; channels in chunks of four and a tail) sums every output in the same
    order as the 6x16 AVX2 tile: the same bits, ragged pixel counts and both clamps included."""
    rng = np.random.default_rng(cout * 100 + cin * 10 + stride)
    x, w, b = arrays(rng, 2, size, size + 3, cin), arrays(rng, 3, 3, cin, cout), arrays(rng, cout)
    for clamp in ((0.0, 6.0), (-np.inf, np.inf)):
        outs = [run_nan_filled(Conv3x3Op(kernels.kernel_table(isa), kernels.create_pool(2), w, b,
                                         stride, "tf_same", clamp), x)
                for isa in ("avx2", "avx512")]
        assert np.array_equal(outs[0], outs[1])


def depthwise_on(isa, x, w, b, stride, padding, clamp, threads=2):
    op = Depthwise3x3Op(kernels.kernel_table(isa), kernels.create_pool(threads), w, b, stride,
                        padding, clamp)
    return run_nan_filled(op, x)


def signed_zeros(rng, x):
    """x with about a fifth of its elements multiplied by zero (+0 and -0), so the sign of a zero
    sum, which depends on the order of the additions, shows."""
    x = x.copy()
    x[rng.random(x.shape) < 0.2] *= 0.0
    return x


#: (h, w, c, stride): MobileNet v1's depthwise rows (widths 1.0 and 0.25; few rows), every walk
#: and vector width of the AVX-512 row kernel (8 channels two pixels a vector, group- and
#: pixel-major, pixel-major channel tiles whole and partial, masked tails, a pixel of 4 KiB),
#: rows of a pixel or two, and strides beyond MobileNet's.
AVX512_DEPTHWISE_SHAPES = [(3, 112, 8, 1), (4, 112, 16, 2), (3, 112, 32, 1), (4, 112, 64, 2),
                           (3, 56, 128, 1), (4, 56, 128, 2), (3, 28, 256, 1), (4, 28, 256, 2),
                           (3, 14, 512, 1), (4, 14, 512, 2), (3, 7, 1024, 1), (3, 8, 1024, 2),
                           (5, 9, 1, 1), (5, 9, 8, 2), (5, 10, 15, 2), (5, 10, 17, 1),
                           (5, 6, 24, 1), (5, 11, 33, 2), (3, 13, 40, 1), (3, 9, 135, 1),
                           (3, 9, 136, 2), (3, 7, 768, 1), (3, 7, 128, 1), (3, 8, 128, 1),
                           (2, 1, 8, 1), (2, 2, 40, 2), (1, 3, 200, 1),
                           (5, 17, 48, 3), (4, 13, 136, 3), (3, 30, 512, 3), (4, 19, 20, 4),
                           (3, 12, 384, 1), (3, 10, 520, 2), (2, 9, 392, 1), (3, 16, 784, 2)]


@pytest.mark.skipif("avx512" not in ISAS or "avx2" not in ISAS, reason="this CPU has no AVX-512")
@pytest.mark.parametrize("h,w,c,stride", AVX512_DEPTHWISE_SHAPES)
@pytest.mark.parametrize("padding", ["tf_same", "symmetric"])
def test_avx512_depthwise_gives_the_avx2_bits(h, w, c, stride, padding):
    """The AVX-512 row kernel sums every output in the order the AVX2 one does (tm_f32_dwconv3x3
    _row__avx512.c: SEQ / PAIR / SINGLE by pixel and channel), so the two agree bit for bit; and
    both stay within the reference's tolerance."""
    rng = np.random.default_rng(h * 100003 + w * 1009 + c * 7 + stride)
    x = signed_zeros(rng, arrays(rng, 2, h, w, c))
    wt, b = signed_zeros(rng, arrays(rng, 3, 3, c)), arrays(rng, c)
    for clamp in [(-np.inf, np.inf), (0.0, 6.0), (-0.5, 0.25)]:
        outs = [depthwise_on(isa, x, wt, b, stride, padding, clamp) for isa in ("avx2", "avx512")]
        assert np.array_equal(outs[0], outs[1], equal_nan=True), (clamp, np.argwhere(outs[0] != outs[1])[:5])
    compare_depthwise3x3("avx512", 2, x, wt, b, stride, padding, (0.0, 6.0))


@pytest.mark.skipif("avx512" not in ISAS or "avx2" not in ISAS, reason="this CPU has no AVX-512")
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 40),
       c=st.one_of(st.integers(1, 40), st.sampled_from([48, 64, 100, 128, 136, 256, 1024])),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from(["tf_same", "symmetric"]),
       clamp=CLAMPS, threads=st.sampled_from([1, 3]), seed=st.integers(0, 2**31))
def test_avx512_depthwise_gives_the_avx2_bits_on_any_shape(n, h, w, c, stride, padding, clamp,
                                                           threads, seed):
    rng = np.random.default_rng(seed)
    x = signed_zeros(rng, arrays(rng, n, h, w, c))
    wt, b = arrays(rng, 3, 3, c), arrays(rng, c)
    outs = [depthwise_on(isa, x, wt, b, stride, padding, clamp, threads) for isa in ("avx2", "avx512")]
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("size", [1, 2, 3, 224, 225])
@pytest.mark.parametrize("cout", [8, 16, 24, 32])
def test_first_layer_shape(isa, size, cout):
    """The first layer as the network runs it: 3 -> 8, 16, 24 or 32 channels (alpha 0.25 to 1),
    stride 2."""
    rng = np.random.default_rng(size)
    compare_conv3x3(isa, 2, arrays(rng, 1, size, size, 3), arrays(rng, 3, 3, 3, cout),
                    arrays(rng, cout), 2, "tf_same", (0.0, 6.0))


def test_bad_shapes_are_refused_under_python_O():
    """The checks before a C operator runs are real checks, not asserts: under ``python -O`` a
    wrong input or output shape or dtype still raises InputError instead of reaching C."""
    code = """
import numpy as np
from tinymobile import kernels
from tinymobile.errors import InputError
from tinymobile.operators import (AveragePoolOp, Conv3x3Op, Depthwise3x3Op, MaxPoolOp, PointwiseOp,
                                  kernel_table)
from tinymobile.fixedpoint import Requant
assert False, "asserts must be off"
kern, f = kernels.kernel_table(), np.float32
pw = PointwiseOp(kern, None, np.ones((8, 4), f), np.zeros(4, f))
conv = Conv3x3Op(kern, None, np.ones((3, 3, 3, 5), f), np.zeros(5, f), 2, "tf_same", (0, 6))
dw = Depthwise3x3Op(kern, None, np.ones((3, 3, 6), f), np.zeros(6, f), 1, "tf_same", (0, 6))
rq = Requant(0, np.zeros(4, np.int32), np.full(4, 1 << 30, np.int32), np.zeros(4, np.int32), 0,
             (0, 255), "uint8")
qpw = PointwiseOp(kernel_table(None, "uint8"), None, np.ones((8, 4), np.uint8), np.zeros(4, np.int32),
                  rq=rq)
cases = [
    (pw, np.ones((3, 7), f), np.empty((3, 4), f)),            # wrong input channels
    (pw, np.ones((3, 8), f), np.empty((2, 4), f)),            # output too small
    (pw, np.ones((3, 8), np.float64), np.empty((3, 4), f)),   # wrong dtype
    (pw, np.ones((8, 3), f).T, np.empty((3, 4), f)),          # not contiguous
    (conv, np.ones((1, 9, 9, 3), f), np.empty((1, 9, 9, 5), f)),  # output of stride 1
    (conv, np.ones((1, 9, 9, 4), f), np.empty((1, 5, 5, 5), f)),  # wrong input channels
    (dw, np.ones((1, 4, 4, 6), f), np.empty((1, 4, 3, 6), f)),
    (AveragePoolOp(kern), np.ones((2, 3, 3, 6), f), np.empty((1, 6), f)),
    (MaxPoolOp(kern), np.ones((2, 3, 3, 6), f), np.empty((2, 5), f)),
    (qpw, np.ones((3, 8), f), np.empty((3, 4), np.uint8)),    # float input to an integer op
]
for op, x, out in cases:
    try:
        op.bind(x, out)
    except InputError:
        print("refused")
    else:
        print("ACCEPTED", type(op).__name__, x.shape, out.shape)
"""
    r = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["refused"] * 10, r.stdout


@pytest.mark.parametrize("fields", [dict(kind=99, dtype=0), dict(kind=0, dtype=0),
                                    dict(kind=1, dtype=7)])
def test_unknown_step_kind_is_an_error_not_a_no_op(fields):
    """A step of an unknown kind or dtype is refused by setup and by the run (TinyMobileError),
    and nothing of a list holding one runs."""
    from tinymobile._native import ffi, lib
    from tinymobile.errors import TinyMobileError
    from tinymobile.operators import Step
    kern = kernels.kernel_table()
    bad = Step((), f32=kern, pool=ffi.NULL, batch=1, cin=1, cout=1, **fields)
    with pytest.raises(TinyMobileError, match="unknown operator kind"):
        bad.setup()
    with pytest.raises(TinyMobileError, match="unknown operator kind"):
        bad()
    op = PointwiseOp(kern, kernels.create_pool(1), np.ones((2, 3), np.float32), np.zeros(3, np.float32))
    x, out = np.ones((4, 2), np.float32), np.full((4, 3), np.nan, np.float32)
    good = op.bind(x, out).setup()
    steps = ffi.new("tm_step *[]", [good.c, bad.c])
    assert lib.tm_run_steps(steps, 2) == lib.TM_ERROR_UNKNOWN_STEP
    assert np.isnan(out).all(), "a step ran although the list held an unknown one"
    good()
    assert np.array_equal(out, np.full((4, 3), 2, np.float32))


def test_a_step_without_its_workspace_is_refused():
    """A step that needs a workspace (a 3x3 convolution's indirection table) does not run
    before setup has given it one."""
    from tinymobile.errors import TinyMobileError
    from tinymobile.operators import Conv3x3Op
    op = Conv3x3Op(kernels.kernel_table(), kernels.create_pool(1), np.ones((3, 3, 2, 4), np.float32),
                   np.zeros(4, np.float32), 1, "tf_same", (0, 6))
    x, out = np.ones((1, 5, 5, 2), np.float32), np.empty((1, 5, 5, 4), np.float32)
    step = op.bind(x, out)
    assert step.workspace_size > 0
    with pytest.raises(TinyMobileError, match="not set up"):
        step()


def test_every_layer_kind_has_an_operator_and_unknown_kinds_are_refused():
    """The layer-kind registry covers every kind of tinymobile.network; a layer of another kind
    is refused by name when operators are built (no silent skip)."""
    import tinymobile
    from tinymobile.errors import ModelFormatError
    from tinymobile.network import LAYER_KINDS
    from tinymobile.operators import OPERATORS, build_ops
    assert set(OPERATORS) == set(LAYER_KINDS)
    net = tinymobile.build(alpha=0.25, resolution=32, num_classes=3).network

    class Mystery:
        kind, name = "mystery", "odd"

    net.layers = net.layers[:1] + [Mystery()] + net.layers[1:]
    with pytest.raises(ModelFormatError, match="'odd': no operator for layer kind 'mystery'"):
        build_ops(net, kernels.kernel_table(), kernels.create_pool(1))


def test_the_flavour_follows_the_kernel_table():
    """A float table makes a float32 operator, an integer table an integer one; an integer table
    without requantization, a float one with it, or something that is no table is refused."""
    from tinymobile.errors import TinyMobileError
    from tinymobile.fixedpoint import Requant
    from tinymobile.operators import Depthwise3x3Op, PointwiseOp, kernel_table
    pool = kernels.create_pool(1)
    w, b = np.ones((4, 2), np.float32), np.zeros(2, np.float32)
    rq = Requant(0, np.zeros(2, np.int32), np.full(2, 1 << 30, np.int32), np.zeros(2, np.int32),
                 0, (0, 255), "uint8")
    assert PointwiseOp(kernel_table(), pool, w, b).dtype == np.float32
    op = PointwiseOp(kernel_table(None, "uint8"), pool, w.astype(np.uint8), b.astype(np.int32), rq=rq)
    assert op.dtype == np.uint8 and op.integer
    with pytest.raises(TinyMobileError, match="needs the layer's requantization"):
        PointwiseOp(kernel_table(None, "int8"), pool, w, b)
    with pytest.raises(TinyMobileError, match="takes no requantization"):
        PointwiseOp(kernel_table(), pool, w, b, rq=rq)
    with pytest.raises(TinyMobileError, match="takes a kernel table"):
        PointwiseOp(pool, pool, w, b)
    with pytest.raises(TinyMobileError, match="no kernels for dtype"):
        kernel_table(None, "float16")


@SETTINGS
@given(n=st.integers(0, 9000), bad=st.lists(st.integers(0, 8999), max_size=5),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), seed=st.integers(0, 2**31))
def test_checked_input_copy_counts_every_non_finite_value(n, bad, value, seed):
    """The input copy of a forward pass (blocks of 4096 values, AVX2 where the CPU has it)
    copies every bit and counts each NaN / infinity, in a last partial block too."""
    from tinymobile.kernels import ffi, lib
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    x[[i for i in bad if i < n]] = value
    out = np.full(n + 1, 7.0, np.float32)
    count = lib.tm_f32_copy_count_nonfinite(n, ffi.cast("float *", x.ctypes.data),
                                            ffi.cast("float *", out.ctypes.data))
    assert count == int(np.count_nonzero(~np.isfinite(x)))
    assert np.array_equal(out[:n].view(np.uint32), x.view(np.uint32)) and out[n] == 7.0
