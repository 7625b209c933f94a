"""One path for every operator test: the same input into our C operator and into the NumPy
reference, outputs pre-filled with NaN, compared against a rigorous float32 error bound."""
import numpy as np

from tinymobile import kernels, reference
from tinymobile.operators import AveragePoolOp, Conv3x3Op, Depthwise3x3Op, MaxPoolOp, PointwiseOp

EPS = np.finfo(np.float32).eps


#: Floats of canary after every output region, and their value (one no kernel computes here).
CANARY_FLOATS = 32
CANARY = np.float32(-1.2345e33)


def run_nan_filled(op, x):
    """Run ``op`` on x into an output buffer full of NaN (so an unwritten element shows), followed
    by CANARY_FLOATS canary floats that must come back untouched (a write past the output shows).
    The input and the output+canary buffer are exact-size allocations, so under
    ``make test-sanitize`` any access past them is an ASan error."""
    x = np.array(x, np.float32, order="C", copy=True)  # own, exact-size buffer
    shape = op.output_shape(x.shape)
    size = int(np.prod(shape))
    buf = np.full(size + CANARY_FLOATS, np.nan, np.float32)
    buf[size:] = CANARY
    out = buf[:size].reshape(shape)
    op.run(x, out)
    written = np.flatnonzero(buf[size:] != CANARY)
    assert written.size == 0, f"kernel wrote {written.size} floats past its output (first at +{written[0]})"
    return out


def check(out, ref, magnitude, terms, clamp=(-np.inf, np.inf)):
    """out must equal ref within (terms + 2) * eps * magnitude, where magnitude is the reference
    computed on absolute values (the sum of |products|), and respect the clamp bounds."""
    assert out.shape == ref.shape
    assert not np.isnan(out).any(), "output has NaN: an element was not written"
    bound = (terms + 2) * EPS * magnitude + 1e-30
    err = np.abs(out.astype(np.float64) - ref)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert (err <= bound).all(), f"error {err[worst]} > bound {bound[worst]} at {worst}"
    assert out.min() >= clamp[0] and out.max() <= clamp[1]


def compare_conv3x3(isa, threads, x, w, b, stride, padding, clamp):
    kern, pool = kernels.kernel_table(isa), kernels.create_pool(threads)
    out = run_nan_filled(Conv3x3Op(kern, pool, w, b, stride, padding, clamp), x)
    ref = reference.conv3x3(x, w, b, stride, padding, clamp)
    mag = reference.conv3x3(np.abs(x), np.abs(w), np.abs(b), stride, padding)
    check(out, ref, mag, 9 * w.shape[2], clamp)


def compare_depthwise3x3(isa, threads, x, w, b, stride, padding, clamp):
    kern, pool = kernels.kernel_table(isa), kernels.create_pool(threads)
    out = run_nan_filled(Depthwise3x3Op(kern, pool, w, b, stride, padding, clamp), x)
    ref = reference.depthwise3x3(x, w, b, stride, padding, clamp)
    mag = reference.depthwise3x3(np.abs(x), np.abs(w), np.abs(b), stride, padding)
    check(out, ref, mag, 9, clamp)


def compare_pointwise(isa, threads, x, w, b, clamp):
    kern, pool = kernels.kernel_table(isa), kernels.create_pool(threads)
    out = run_nan_filled(PointwiseOp(kern, pool, w, b, clamp), x)
    ref = reference.pointwise(x, w, b, clamp)
    mag = reference.pointwise(np.abs(x), np.abs(w), np.abs(b))
    check(out, ref, mag, w.shape[0], clamp)


def compare_max_pool(isa, x):
    """Max is exact: every ISA must give the reference bit for bit."""
    out = run_nan_filled(MaxPoolOp(kernels.kernel_table(isa)), x)
    np.testing.assert_array_equal(out, reference.max_pool(x))


def compare_average_pool(isa, x):
    out = run_nan_filled(AveragePoolOp(kernels.kernel_table(isa)), x)
    ref = reference.average_pool(x)
    check(out, ref, reference.average_pool(np.abs(x)), x.shape[1] * x.shape[2] + 1)
