"""The head-fitting maths (tinymobile.heads) against plain NumPy references: imprinted weights,
logistic regression against an independent Newton solver, cross-validation, the incremental
training state, the stratified validation split and the quantized head."""
import numpy as np
import pytest

from tinymobile import heads
from tinymobile.heads import TrainingError, TrainingState
from tinymobile.quantized_reference import Requant, requantize


def features(n, d, classes, seed=0):
    """Non-negative pooled-feature-like vectors: a shared component plus a class direction."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, (classes, d))
    y = np.arange(n) % classes
    x = rng.gamma(1.0, 1.0, (n, d)) * 0.7 + centres[y] + rng.gamma(2.0, 1.0, d)
    return (x * rng.uniform(0.8, 1.2, (n, 1))).astype(np.float32), y


def state_for(x, y, names=None, keep=True):
    names = names or [f"c{i}" for i in range(y.max() + 1)]
    s = TrainingState.empty(x.shape[1], keep_embeddings=keep)
    s.add(x, [names[i] for i in y])
    return s


# ---- references ----------------------------------------------------------------------------

def imprint_reference(x, y, scale):
    """Qi et al.: class weight = normalised mean of unit embeddings; deployed on raw x / mean |x|."""
    x = x.astype(np.float64)
    m = np.mean([np.sqrt(sum(v * v for v in row)) for row in x])
    cols = []
    for c in range(y.max() + 1):
        units = [row / np.sqrt((row * row).sum()) for row, label in zip(x, y) if label == c]
        mean = np.sum(units, axis=0) / len(units)
        cols.append(mean / np.sqrt((mean * mean).sum()))
    return scale * np.stack(cols, axis=1) / m


def newton_logistic(u, y, c, l2, iters=50):
    """Multinomial logistic regression (no intercept) by Newton's method on the full Hessian."""
    n, d = u.shape
    w = np.zeros(d * c)
    onehot = np.eye(c)[y]
    for _ in range(iters):
        z = u @ w.reshape(d, c)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (u.T @ (p - onehot)).ravel() / n + l2 * w
        h = l2 * np.eye(d * c)
        for i in range(n):
            h += np.kron(np.outer(u[i], u[i]), np.diag(p[i]) - np.outer(p[i], p[i])) / n
        w -= np.linalg.solve(h, g)
    return w.reshape(d, c)


# ---- imprinting ----------------------------------------------------------------------------

def test_imprint_matches_reference():
    x, y = features(37, 16, 4)
    s = state_for(x, y)
    head = heads.fit(s, "imprint", scale=7.0)
    np.testing.assert_allclose(head.w, imprint_reference(x, y, 7.0), rtol=1e-5, atol=1e-7)
    assert head.b.shape == (4,) and not head.b.any()
    # ranking = cosine ranking of the unit features
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ heads.imprint_weights(s.sums, s.counts)
    np.testing.assert_array_equal((x @ head.w).argsort(1), cos.argsort(1))


def test_logistic_matches_newton():
    x, y = features(60, 6, 3, seed=1)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    for l2 in (1e-1, 1e-2):
        want = newton_logistic(u.astype(np.float64), y, 3, l2)
        got = heads.fit_logistic(u, y, 3, l2, tol=1e-10)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        # the default tolerance: within tol / l2 of the optimum
        loose = heads.fit_logistic(u, y, 3, l2)
        assert np.abs(loose - want).max() <= 1e-6 / l2 * 10


def test_logistic_head_is_the_fit_on_unit_features():
    x, y = features(80, 24, 5, seed=2)
    s = state_for(x, y)
    head = heads.fit(s, "logistic", l2=3e-3)
    u = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    w_u = heads.fit_logistic(u, y, 5, 3e-3)
    m = np.linalg.norm(x.astype(np.float64), axis=1).mean()
    np.testing.assert_allclose(head.w, w_u / m, rtol=1e-5, atol=1e-8)
    # the KKT condition of the objective at the returned weights
    z = u @ w_u
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = u.T @ (p - np.eye(5)[y]) / len(y) + 3e-3 * w_u
    assert np.abs(grad).max() <= 1e-6


def test_fit_is_deterministic():
    x, y = features(50, 32, 4, seed=3)
    a = heads.fit(state_for(x, y), "logistic")
    b = heads.fit(state_for(x, y), "logistic")
    assert a.l2 == b.l2 and a.w.tobytes() == b.w.tobytes()


# ---- cross-validation ----------------------------------------------------------------------

def test_stratified_folds():
    y = np.array([0] * 7 + [1] * 3 + [2] * 10)
    f = heads.stratified_folds(y, 3)
    for c, n in ((0, 7), (1, 3), (2, 10)):
        counts = np.bincount(f[y == c], minlength=3)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n


def test_choose_l2_is_the_lowest_validation_loss():
    x, y = features(40, 12, 4, seed=4)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    grid = (1e-1, 1e-2, 1e-3)
    cv = heads.choose_l2(u, y, 4, grid, folds=4)
    assert cv.folds == 4
    # recompute every fold with cold-started fits and plain NumPy log-loss
    fold = np.arange(len(y)) // 4 % 4  # y = i % 4: round-robin per class
    np.testing.assert_array_equal(fold, heads.stratified_folds(y, 4))
    losses = []
    for l2 in grid:
        total = 0.0
        for f in range(4):
            w = heads.fit_logistic(u[fold != f], y[fold != f], 4, l2, tol=1e-10)
            z = u[fold == f] @ w
            logp = z - np.log(np.exp(z).sum(1, keepdims=True))
            total -= logp[np.arange(len(z)), y[fold == f]].sum()
        losses.append(total / len(y))
    # the CV's fits stop at CV_TOL (1e-4), the reference's at 1e-10
    np.testing.assert_allclose(cv.log_loss, losses, rtol=5e-3)
    assert cv.l2 == grid[int(np.argmin(losses))]


def test_single_image_classes_skip_cross_validation():
    x, y = features(4, 8, 4)
    cv = heads.choose_l2(x / np.linalg.norm(x, axis=1, keepdims=True), y, 4)
    assert cv.folds == 0 and cv.l2 == heads.DEFAULT_L2


# ---- training state ------------------------------------------------------------------------

def test_state_added_in_parts_equals_state_at_once():
    x, y = features(30, 10, 3, seed=5)
    names = ["cat", "dog", "tomato"]
    whole = state_for(x, y, names)
    part = state_for(x[:12][y[:12] < 2], y[:12][y[:12] < 2], names)
    rest = np.concatenate([np.flatnonzero(y[:12] == 2), np.arange(12, 30)])
    part.add(x[rest], [names[i] for i in y[rest]])
    assert part.classes == names
    # same per-class sums and counts (the order of the images differs)
    np.testing.assert_allclose(part.sums, whole.sums, rtol=1e-12)
    np.testing.assert_array_equal(part.counts, whole.counts)
    assert part.norm_sum == pytest.approx(whole.norm_sum, rel=1e-12)
    np.testing.assert_allclose(heads.fit(part, "imprint").w, heads.fit(whole, "imprint").w, rtol=1e-6)


def test_state_round_trip_and_checks():
    x, y = features(20, 8, 2, seed=6)
    s = state_for(x, y, ["ripe", "unripe"])
    heads.fit(s, "logistic")
    arrays = s.to_arrays()
    back = TrainingState.from_arrays(arrays, 8)
    assert back.classes == s.classes and back.method == "logistic" and back.l2 == s.l2
    np.testing.assert_array_equal(back.embeddings, s.embeddings)
    np.testing.assert_array_equal(back.labels, s.labels)
    with pytest.raises(TrainingError, match="match"):
        TrainingState.from_arrays(arrays, 9)
    bad = dict(arrays, **{"head/labels": arrays["head/labels"][::-1] * 0})
    with pytest.raises(TrainingError, match="counts"):
        TrainingState.from_arrays(bad, 8)
    bad = dict(arrays, **{"head/method": np.array("magic")})
    with pytest.raises(TrainingError, match="method"):
        TrainingState.from_arrays(bad, 8)
    s.drop_embeddings()
    no_emb = TrainingState.from_arrays(s.to_arrays(), 8)
    assert no_emb.embeddings is None
    heads.fit(no_emb, "imprint")
    with pytest.raises(TrainingError, match="imprint"):
        heads.fit(no_emb, "logistic")


@pytest.mark.parametrize("name", ["", "  ", " cat", "cat\n", "a\tb", "x" * 200, 3])
def test_invalid_labels(name):
    with pytest.raises(TrainingError):
        heads.check_label(name)


def test_bad_training_sets():
    x, y = features(6, 8, 1)
    with pytest.raises(TrainingError, match="two classes"):
        heads.fit(state_for(x, y), "imprint")
    with pytest.raises(TrainingError, match="method"):
        heads.fit(state_for(*features(6, 8, 2)), "svm")
    s = TrainingState.empty(8)
    with pytest.raises(TrainingError, match="labels"):
        s.add(x, ["a"])
    with pytest.raises(TrainingError, match="NaN"):
        s.add(np.full((1, 8), np.nan), ["a"])


def test_validation_split():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 1 + ["d"] * 2
    held = heads.validation_split(labels, 0.2)
    by = {n: held[[i for i, m in enumerate(labels) if m == n]] for n in "abcd"}
    assert [int(v.sum()) for v in by.values()] == [2, 1, 0, 1]
    np.testing.assert_array_equal(held, heads.validation_split(labels, 0.2))
    with pytest.raises(TrainingError):
        heads.validation_split(labels, 1.0)


# ---- quantized head ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("method", ["imprint", "logistic"])
def test_quantized_head(dtype, method):
    x, y = features(60, 32, 5, seed=7)
    in_scale = float(np.float32(x.max() / 250))
    in_zp = 0 if dtype == "uint8" else -128
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    xq = np.clip(np.round(x / in_scale) + in_zp, lo, hi).astype(dtype)
    xf = (xq.astype(np.float64) - in_zp) * in_scale  # what the float head sees
    head = heads.fit(state_for(xf, y), method)
    qh = heads.quantize_head(head.w, head.b, in_scale, in_zp, dtype, xq)
    # weights: the head less its mean column, per-channel symmetric, scale = max |w_c| / 127
    centred = head.w - head.w.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(qh.weight_scale, np.abs(centred).max(0) / 127, rtol=1e-6)
    wq = qh.w.astype(np.int64) - qh.weight_zero_point
    assert np.abs(wq).max() == 127
    np.testing.assert_allclose(wq * qh.weight_scale, centred, atol=qh.weight_scale.max() / 2 + 1e-9)
    # integer logits by the NumPy reference, dequantized: the float logits + offset
    rq = Requant(in_zp, qh.weight_zero_point, qh.multiplier, qh.shift, qh.output_zero_point,
                 (lo, hi), dtype)
    acc = (xq.astype(np.int64) - in_zp) @ wq + qh.b
    out = requantize(acc, rq)
    deq = (out.astype(np.float64) - qh.output_zero_point) * qh.output_scale
    float_logits = xf @ head.w.astype(np.float64) + head.b
    common = xf @ (head.w.astype(np.float64) - centred).mean(axis=1)  # x @ v, per image
    err = np.abs(deq - (float_logits - common[:, None] + qh.offset))
    assert err.max() <= qh.output_scale * 1.5 + np.abs(float_logits).max() * 2e-2
    # top-1 agrees wherever the float margin is more than two output steps
    top2 = np.sort(float_logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * qh.output_scale
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(deq.argmax(1)[clear], float_logits.argmax(1)[clear])


def test_quantized_head_keeps_base_columns():
    x, y = features(30, 16, 3, seed=8)
    in_scale, in_zp = 0.05, 0
    xq = np.clip(np.round(x / in_scale), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    kw = rng.integers(0, 256, (16, 4)).astype(np.uint8)
    kb = rng.integers(-1000, 1000, 4).astype(np.int32)
    ks = np.full(4, 0.01, np.float32)
    kz = np.full(4, 120, np.int32)
    head = heads.fit(state_for((xq.astype(np.float64)) * in_scale, y), "imprint")
    qh = heads.quantize_head(head.w, head.b, in_scale, in_zp, "uint8", xq, keep=(kw, kb, ks, kz))
    assert qh.w.shape == (16, 7)
    np.testing.assert_array_equal(qh.w[:, :4], kw)
    np.testing.assert_array_equal(qh.weight_zero_point[:4], kz)
    # kept biases move only by the common offset
    shift = qh.b[:4].astype(np.int64) - kb
    np.testing.assert_allclose(shift * in_scale * 0.01, qh.offset, atol=in_scale * 0.01)


def test_blas_one_thread_restores():
    from tinymobile import blas
    with blas.one_thread():
        pass
    if blas._api is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS found in /proc/self/maps")
    _, get = blas._api
    before = int(get())
    with blas.one_thread():
        assert int(get()) == 1
        x, y = features(30, 8, 3)
        heads.fit(state_for(x, y), "logistic")
    assert int(get()) == before


def test_class_names_equal_after_unicode_normalisation_are_one_class():
    """"Äpfel" typed (NFC, one code point) and from a macOS folder name (NFD, A + combining
    diaeresis) print the same: they are one class, stored in NFC, also across --add."""
    nfc, nfd = "\u00c4pfel", "A\u0308pfel"
    assert nfc != nfd
    assert heads.check_label(nfd) == nfc
    x, _ = features(6, 8, 2)
    s = TrainingState.empty(8)
    s.add(x[:3], [nfd, "b", nfc])
    s.add(x[3:], [nfc, nfd, "b"])
    assert s.classes == [nfc, "b"]
    np.testing.assert_array_equal(s.counts, [4, 2])
