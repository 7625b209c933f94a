"""Fitting a new classifier head on a MobileNet's pooled features, in NumPy: weight imprinting and
multinomial logistic regression, the incremental training state a model file keeps, and the
quantization of a fitted head for integer bases.

Features ``x`` (N, D) are the pooled features (averages of ReLU outputs: non-negative). Both
methods work on the L2-normalised features ``u = x / |x|``. The deployed head is an ordinary fully
connected layer on the raw features, ``logits = x @ W + b`` with ``W = W_u / m`` (``m``: mean
``|x|`` over the training images) and ``b = 0``. For every image its ranking of the classes (hence
top-1 and top-5) is exactly the fitted classifier's on ``u``; the deployed logits are the fitted
ones times ``|x| / m``, a per-image softmax temperature close to 1. So no L2-normalisation layer is
needed in the model: any MobileNet v1 works, float or quantized.

* ``imprint`` (Qi, Brown, Lowe 2018, "Low-Shot Learning with Imprinted Weights"; Coral's
  imprinting engine): class weight = normalised mean of the class's unit embeddings, logits =
  ``scale`` x cosine similarity.
* ``logistic``: multinomial logistic regression without intercept (an intercept would not survive
  the ``|x|`` factor exactly), minimising ``mean cross-entropy + l2 / 2 * |W|^2`` with L-BFGS from
  zero; ``l2`` is chosen by stratified k-fold cross-validation on the training set (lowest mean
  validation log-loss; ties to the stronger ``l2``). Log-loss rather than accuracy: with a few
  images per class the validation accuracy ties often and picks noisily (measured on the few-shot
  task of benchmarks/fewshot.py).

Everything is deterministic: no random numbers except a seeded permutation for ``validation_split``.
"""
from __future__ import annotations

import math
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import TinyMobileError

METHODS = ("imprint", "logistic")
#: Cosine-logit scale of imprinted heads (Qi et al. learn it; 10 keeps softmax probabilities of
#: few-shot heads moderate: a cosine margin of 0.1 is a factor e between two classes).
DEFAULT_SCALE = 10.0
#: L2 strengths tried by cross-validation (on unit-norm features, mean cross-entropy), strongest
#: first; the fit warm-starts along this path.
L2_GRID = (1e-1, 1e-2, 1e-3, 1e-4)
#: L2 used when a class has a single image (nothing to cross-validate on).
DEFAULT_L2 = 1e-3
#: Cross-validation folds: 5, or 3 above LARGE_SET training embeddings (time; plenty of data).
MAX_FOLDS = 5
LARGE_SET = 300
#: Gradient tolerance (max |dF/dW|) of the final fit and of the cross-validation fits (which only
#: rank the L2 strengths).
TOL = 1e-6
CV_TOL = 1e-4
#: Longest class name, in characters.
MAX_LABEL_CHARS = 128


class TrainingError(TinyMobileError):
    """Training data or options that cannot give a classifier (one-line message)."""


# ---- inputs ------------------------------------------------------------------------------------

def check_label(name: object) -> str:
    """``name`` in Unicode NFC if it is a valid class name, else TrainingError: a non-empty
    string of printable characters (no tab, newline or other control character), no
    leading/trailing space, at most MAX_LABEL_CHARS characters. NFC: names that print the same
    ("Ä" typed, or "A" + combining diaeresis from a macOS folder name) are the same class."""
    if not isinstance(name, str):
        raise TrainingError(f"class name {name!r} is not a string")
    if not name or not name.strip():
        raise TrainingError("a class name is empty")
    if name != name.strip():
        raise TrainingError(f"class name {name!r} starts or ends with white space")
    if len(name) > MAX_LABEL_CHARS:
        raise TrainingError(f"class name {name[:40]!r}... is longer than {MAX_LABEL_CHARS} characters")
    if not name.isprintable():
        raise TrainingError(f"class name {name!r} has control characters")
    return unicodedata.normalize("NFC", name)


def normalize(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(u, norms): rows of ``x`` (N, D) scaled to unit L2 norm (float64), and their norms (N,).
    An all-zero row stays zero."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise TrainingError(f"features must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise TrainingError("features have NaN or infinite values")
    norms = np.sqrt(np.einsum("nd,nd->n", x, x))
    return x / np.where(norms > 0, norms, 1.0)[:, None], norms


# ---- training state ----------------------------------------------------------------------------

@dataclass
class TrainingState:
    """What a later ``--add`` needs, kept in the model file under ``head/``.

    ``classes``: the trained class names, in logit order (after the ``base_classes`` columns kept
    from the base model); ``sums`` (C, D) float64: per class, the sum of its unit-norm training
    embeddings; ``counts`` (C,) int64: images per class; ``norm_sum``: sum of the raw feature norms
    of every training image (their mean scales the deployed head); ``embeddings`` (N, D) float32
    unit-norm, ``labels`` (N,) int32 indices into ``classes`` and ``groups`` (N,) int64 (the photo
    each embedding comes from: augmented views of one photo share it, so cross-validation keeps
    them in one fold), or None when not kept (then only ``imprint`` can be refitted). ``method``,
    ``scale``, ``l2``: how the head was fitted. ``norms`` (N,) float32: the raw feature norm of
    each embedding (``embeddings * norms[:, None]`` are the features; a quantized head's output
    range is taken from them).
    """
    classes: List[str]
    sums: np.ndarray
    counts: np.ndarray
    norm_sum: float = 0.0
    embeddings: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    method: str = "logistic"
    scale: float = DEFAULT_SCALE
    l2: float = float("nan")
    base_classes: int = 0
    groups: Optional[np.ndarray] = None
    norms: Optional[np.ndarray] = None

    @classmethod
    def empty(cls, dim: int, keep_embeddings: bool = True) -> "TrainingState":
        return cls([], np.zeros((0, dim)), np.zeros(0, np.int64), 0.0,
                   np.zeros((0, dim), np.float32) if keep_embeddings else None,
                   np.zeros(0, np.int32) if keep_embeddings else None,
                   groups=np.zeros(0, np.int64) if keep_embeddings else None,
                   norms=np.zeros(0, np.float32) if keep_embeddings else None)

    @property
    def dim(self) -> int:
        return self.sums.shape[1]

    @property
    def num_images(self) -> int:
        return int(self.counts.sum())

    @property
    def mean_norm(self) -> float:
        n = self.num_images
        return self.norm_sum / n if n and self.norm_sum > 0 else 1.0

    def add(self, features: np.ndarray, labels: Sequence[str],
            groups: Optional[Sequence[int]] = None) -> None:
        """Add images: ``features`` (N, D) raw pooled features, ``labels`` one class name each
        (new names become new classes, appended in order of first appearance), ``groups`` (N,)
        which rows are views of the same photo (default: every row its own photo)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise TrainingError(f"features must be (N, {self.dim}), got shape {features.shape}")
        if len(labels) != len(features):
            raise TrainingError(f"{len(features)} images but {len(labels)} labels")
        u, norms = normalize(features)
        index = {unicodedata.normalize("NFC", c): i for i, c in enumerate(self.classes)}
        canonical = {n: check_label(n) for n in dict.fromkeys(labels)}
        for name in canonical.values():
            if name not in index:
                index[name] = len(self.classes)
                self.classes.append(name)
        y = np.array([index[canonical[n]] for n in labels], np.int32)
        c = len(self.classes)
        sums = np.zeros((c, self.dim))
        sums[:len(self.sums)] = self.sums
        np.add.at(sums, y, u)
        counts = np.zeros(c, np.int64)
        counts[:len(self.counts)] = self.counts
        counts += np.bincount(y, minlength=c)
        self.sums, self.counts = sums, counts
        self.norm_sum += float(norms.sum())
        if self.embeddings is not None:
            start = int(self.groups.max()) + 1 if len(self.groups) else 0
            if groups is None:
                g = np.arange(len(y), dtype=np.int64)
            else:
                _, g = np.unique(np.asarray(groups), return_inverse=True)
                if len(g) != len(y):
                    raise TrainingError(f"{len(y)} images but {len(g)} groups")
            self.embeddings = np.concatenate([self.embeddings, u.astype(np.float32)])
            self.labels = np.concatenate([self.labels, y])
            self.groups = np.concatenate([self.groups, start + g.astype(np.int64)])
            self.norms = np.concatenate([self.norms, norms.astype(np.float32)])

    def drop_embeddings(self) -> None:
        self.embeddings = self.labels = self.groups = self.norms = None

    def features(self) -> Optional[np.ndarray]:
        """The raw training features (N, D) float32 (None when the embeddings are not kept)."""
        if self.embeddings is None:
            return None
        return self.embeddings * self.norms[:, None]

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """The ``head/*`` arrays of a model file."""
        out = {"head/classes": np.array(self.classes, dtype=str),
               "head/sums": np.asarray(self.sums, np.float64),
               "head/counts": np.asarray(self.counts, np.int64),
               "head/norm_sum": np.array(float(self.norm_sum)),
               "head/method": np.array(self.method), "head/scale": np.array(float(self.scale)),
               "head/l2": np.array(float(self.l2)),
               "head/base_classes": np.array(int(self.base_classes), np.int64)}
        if self.embeddings is not None:
            out["head/embeddings"] = np.asarray(self.embeddings, np.float32)
            out["head/labels"] = np.asarray(self.labels, np.int32)
            out["head/groups"] = np.asarray(self.groups, np.int64)
            out["head/norms"] = np.asarray(self.norms, np.float32)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], dim: int) -> "TrainingState":
        """Read ``head/*`` arrays (checked: dtypes, shapes, ranges); TrainingError naming the key."""
        def get(key, kinds, ndim):
            if key not in arrays:
                raise TrainingError(f"training state: missing {key}")
            a = np.asarray(arrays[key])
            if a.dtype.kind not in kinds or a.ndim != ndim:
                raise TrainingError(f"training state: {key} has dtype {a.dtype} and {a.ndim} "
                                    "dimensions")
            return a

        classes = [check_label(str(c)) for c in get("head/classes", "U", 1)]
        c = len(classes)
        sums = get("head/sums", "f", 2).astype(np.float64)
        counts = get("head/counts", "iu", 1).astype(np.int64)
        if sums.shape != (c, dim) or counts.shape != (c,):
            raise TrainingError(f"training state: sums {sums.shape} / counts {counts.shape} do not "
                                f"match {c} classes of {dim} features")
        if not np.isfinite(sums).all() or (counts < 1).any():
            raise TrainingError("training state: sums must be finite and counts positive")
        norm_sum = float(get("head/norm_sum", "f", 0))
        method = str(get("head/method", "U", 0))
        if method not in METHODS:
            raise TrainingError(f"training state: unknown method {method!r}")
        scale = float(get("head/scale", "f", 0))
        l2 = float(get("head/l2", "f", 0))
        base = int(get("head/base_classes", "iu", 0))
        if not (math.isfinite(norm_sum) and norm_sum >= 0 and math.isfinite(scale) and scale > 0
                and base >= 0):
            raise TrainingError("training state: norm_sum, scale or base_classes out of range")
        emb = labels = groups = norms = None
        if "head/embeddings" in arrays:
            emb = get("head/embeddings", "f", 2).astype(np.float32)
            labels = get("head/labels", "iu", 1).astype(np.int32)
            groups = get("head/groups", "iu", 1).astype(np.int64)
            norms = get("head/norms", "f", 1).astype(np.float32)
            if (emb.shape[1] != dim or len(labels) != len(emb) or len(groups) != len(emb)
                    or len(norms) != len(emb) or not (np.isfinite(norms).all() and (norms >= 0).all())
                    or not np.isfinite(emb).all() or (len(groups) and groups.min() < 0)
                    or (len(labels) and (labels.min() < 0 or labels.max() >= c))
                    or not np.array_equal(np.bincount(labels, minlength=c), counts)):
                raise TrainingError("training state: embeddings / labels do not match the counts")
        return cls(classes, sums, counts, norm_sum, emb, labels, method, scale, l2, base, groups,
                   norms)


# ---- imprinting --------------------------------------------------------------------------------

def imprint_weights(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Unit class weights (D, C): each class's mean unit embedding, normalised (Qi et al. eq. 4)."""
    means = np.asarray(sums, np.float64) / np.maximum(np.asarray(counts), 1)[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.where(norms > 0, norms, 1.0)).T


# ---- logistic regression -----------------------------------------------------------------------

def _objective(u: np.ndarray, y: np.ndarray, l2: float):
    """f(w) and its gradient for flat w (D*C,): mean softmax cross-entropy + l2/2 |w|^2."""
    n, d = u.shape

    def fg(wflat: np.ndarray, c: int) -> Tuple[float, np.ndarray]:
        w = wflat.reshape(d, c)
        z = u @ w
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.log(s[:, 0]).sum() - z[np.arange(n), y].sum()) / n
        p = e / s
        p[np.arange(n), y] -= 1.0
        grad = (u.T @ p) / n + l2 * w
        return loss + 0.5 * l2 * float(wflat @ wflat), grad.ravel()

    return fg


def _lbfgs(fg, x: np.ndarray, tol: float, max_iter: int, history: int = 10) -> Tuple[np.ndarray, int]:
    """Minimise a smooth strongly convex f from x by L-BFGS with a backtracking (Armijo) line
    search; stops when max |gradient| <= tol. Returns (x, iterations)."""
    f, g = fg(x)
    s_hist: List[np.ndarray] = []
    y_hist: List[np.ndarray] = []
    rho_hist: List[float] = []
    it = 0
    for it in range(1, max_iter + 1):
        if np.abs(g).max() <= tol:
            return x, it - 1
        q = g.copy()
        alphas = []
        for s, yv, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a = rho * float(s @ q)
            q -= a * yv
            alphas.append(a)
        if s_hist:
            q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
        else:
            q /= max(1.0, float(np.abs(g).sum()))
        for s, yv, rho, a in zip(s_hist, y_hist, rho_hist, reversed(alphas)):
            q += s * (a - rho * float(yv @ q))
        d = -q
        gd = float(g @ d)
        if not gd < 0:  # not a descent direction: restart from the gradient
            s_hist.clear(), y_hist.clear(), rho_hist.clear()
            d, gd = -g / max(1.0, float(np.abs(g).sum())), -float(g @ g) / max(1.0, float(np.abs(g).sum()))
        t = 1.0
        for _ in range(40):
            x_new = x + t * d
            f_new, g_new = fg(x_new)
            if f_new <= f + 1e-4 * t * gd:
                break
            t *= 0.5
        else:
            return x, it  # no decrease possible at this precision
        s, yv = x_new - x, g_new - g
        sy = float(s @ yv)
        if sy > 1e-12 * float(yv @ yv):
            s_hist.append(s), y_hist.append(yv), rho_hist.append(1.0 / sy)
            if len(s_hist) > history:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        done = f - f_new <= 1e-14 * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if done:
            break
    return x, it


def fit_logistic(u: np.ndarray, y: np.ndarray, num_classes: int, l2: float,
                 w0: Optional[np.ndarray] = None, tol: float = TOL,
                 max_iter: int = 1000) -> np.ndarray:
    """Multinomial logistic regression without intercept: the (D, C) float64 W minimising
    ``mean_i CE(softmax(u_i @ W), y_i) + l2 / 2 * |W|^2`` (strictly convex for l2 > 0, so the
    result does not depend on ``w0``, only the number of iterations does)."""
    u = np.asarray(u, np.float64)
    if not (math.isfinite(l2) and l2 > 0):
        raise TrainingError(f"l2 must be a finite number > 0, got {l2}")
    d = u.shape[1]
    fg = _objective(u, np.asarray(y), float(l2))
    x0 = np.zeros(d * num_classes) if w0 is None else np.asarray(w0, np.float64).ravel().copy()
    x, _ = _lbfgs(lambda w: fg(w, num_classes), x0, tol, max_iter)
    return x.reshape(d, num_classes)


def stratified_folds(y: np.ndarray, k: int, groups: Optional[np.ndarray] = None) -> np.ndarray:
    """Fold index (N,) in 0..k-1: each class's photos dealt round-robin in order of first
    appearance, so every fold holds floor or ceil of count / k photos of each class; all rows of
    one group (views of one photo) go to the same fold (deterministic)."""
    y = np.asarray(y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    folds = np.empty(len(y), np.int64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        order = list(dict.fromkeys(groups[rows].tolist()))
        rank = {g: i for i, g in enumerate(order)}
        folds[rows] = [rank[g] % k for g in groups[rows].tolist()]
    return folds


@dataclass
class CVResult:
    """Cross-validation of the L2 strength: per candidate, mean validation accuracy and log-loss."""
    l2: float
    folds: int
    grid: Tuple[float, ...] = ()
    accuracy: Tuple[float, ...] = ()
    log_loss: Tuple[float, ...] = ()
    start: Optional[np.ndarray] = None


def choose_l2(u: np.ndarray, y: np.ndarray, num_classes: int, grid: Sequence[float] = L2_GRID,
              folds: Optional[int] = None, groups: Optional[np.ndarray] = None) -> CVResult:
    """Stratified k-fold cross-validation (k = min(folds, fewest photos of a class); ``folds``
    default MAX_FOLDS, 3 above LARGE_SET embeddings) over ``grid``, views of one photo (``groups``)
    kept in one fold, fits to CV_TOL; with a single-photo class there is nothing to validate on:
    DEFAULT_L2, ``folds`` 0. ``CVResult.start``: the mean of the folds' weights at the chosen L2
    (a warm start for the final fit)."""
    if folds is None:
        folds = MAX_FOLDS if len(y) <= LARGE_SET else 3
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    photos = np.zeros(num_classes, np.int64)
    for c in range(num_classes):
        photos[c] = len(np.unique(groups[y == c]))
    k = int(min(folds, photos.min()))
    grid = tuple(sorted((float(g) for g in grid), reverse=True))
    if k < 2 or len(grid) < 2:
        return CVResult(grid[0] if len(grid) == 1 else DEFAULT_L2, 0)
    fold = stratified_folds(y, k, groups)
    acc = np.zeros(len(grid))
    loss = np.zeros(len(grid))
    starts = [0.0] * len(grid)
    for f in range(k):
        tr, va = fold != f, fold == f
        w = None
        for j, l2 in enumerate(grid):  # strongest first, each fit warm-started from the last
            w = fit_logistic(u[tr], y[tr], num_classes, l2, w0=w, tol=CV_TOL)
            starts[j] += w / k
            z = u[va] @ w
            z -= z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            acc[j] += float((z.argmax(axis=1) == y[va]).sum())
            loss[j] -= float(logp[np.arange(va.sum()), y[va]].sum())
    acc /= len(y)
    loss /= len(y)
    # lowest log loss; ties -> the stronger l2 (earlier in the grid)
    best = min(range(len(grid)), key=lambda j: (round(loss[j], 12), j))
    return CVResult(grid[best], k, grid, tuple(acc), tuple(loss), starts[best])


# ---- the fitted head ---------------------------------------------------------------------------

@dataclass
class FloatHead:
    """A fitted head for raw pooled features: logits = x @ w + b; w (D, C) float32, b (C,)."""
    w: np.ndarray
    b: np.ndarray
    method: str
    scale: float = DEFAULT_SCALE
    l2: float = float("nan")
    cv: Optional[CVResult] = None
    seconds: float = 0.0
    info: Dict[str, object] = field(default_factory=dict)


def fit(state: TrainingState, method: str = "logistic", scale: float = DEFAULT_SCALE,
        l2: Optional[float] = None, grid: Sequence[float] = L2_GRID,
        folds: Optional[int] = None) -> FloatHead:
    """Fit a head on everything in ``state`` (see the module docstring). ``l2=None``: chosen by
    cross-validation over ``grid``. Records method / scale / l2 in ``state``."""
    if method not in METHODS:
        raise TrainingError(f"unknown method {method!r} (choose {' or '.join(METHODS)})")
    if not (math.isfinite(scale) and scale > 0):
        raise TrainingError(f"scale must be positive, got {scale}")
    c = len(state.classes)
    if c + state.base_classes < 2:
        raise TrainingError(f"need at least two classes to train a classifier, got {c}"
                            + (f" ({state.classes[0]!r})" if c else ""))
    if c == 0:
        raise TrainingError("no training images")
    from .blas import one_thread
    with one_thread():
        return _fit(state, method, scale, l2, grid, folds)


def _fit(state: TrainingState, method: str, scale: float, l2: Optional[float],
         grid: Sequence[float], folds: Optional[int]) -> FloatHead:
    c = len(state.classes)
    t0 = time.perf_counter()
    m = state.mean_norm
    cv = None
    if method == "imprint":
        w = scale * imprint_weights(state.sums, state.counts)
        chosen = float("nan")
    else:
        if state.embeddings is None:
            raise TrainingError("this model keeps no training embeddings (trained with "
                                "--no-embeddings): only --method imprint can add to it")
        if c < 2:
            raise TrainingError("logistic regression needs at least two new classes (use "
                                "--method imprint to add one class to kept base classes)")
        u = state.embeddings.astype(np.float64)
        if l2 is None:
            cv = choose_l2(u, state.labels, c, grid, folds, state.groups)
            chosen = cv.l2
        else:
            chosen = float(l2)
        w = fit_logistic(u, state.labels, c, chosen, w0=None if cv is None else cv.start)
    with np.errstate(over="ignore"):  # reported below
        w = (w / m).astype(np.float32)
    if not np.isfinite(w).all():
        raise TrainingError(f"the fitted classifier's weights are not finite in float32 "
                            f"(scale {scale:g}, mean feature norm {m:g}): use a smaller scale")
    state.method, state.scale, state.l2 = method, float(scale), float(chosen)
    return FloatHead(w, np.zeros(c, np.float32), method, float(scale), float(chosen), cv,
                     time.perf_counter() - t0)


def validation_split(labels: Sequence[str], fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask (N,) of held-out images: per class round(fraction * count) images (at least
    one when the class has two or more, never all of them), picked by a seeded permutation."""
    if not 0 < fraction < 1:
        raise TrainingError(f"the validation fraction must be between 0 and 1, got {fraction}")
    labels = list(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    for name in dict.fromkeys(labels):
        idx = np.array([i for i, n in enumerate(labels) if n == name])
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        if k > 0:
            held[rng.permutation(idx)[:k]] = True
    return held


# ---- quantization of a new head ----------------------------------------------------------------

@dataclass
class QuantizedHead:
    """Integer fully connected layer: ``w`` (D, C) of the network's dtype, ``b`` int32 at
    input_scale x weight_scale[c], per-channel ``weight_scale`` / ``weight_zero_point``, output
    (scale, zero_point), fixed-point ``multiplier`` / ``shift``. The dequantized logits of an
    image are its float logits plus one constant for all classes (``offset`` plus, without kept
    base columns, ``x @ v`` for the common column ``v`` removed from the weights): softmax and
    ranking unchanged."""
    w: np.ndarray
    b: np.ndarray
    weight_scale: np.ndarray
    weight_zero_point: np.ndarray
    output_scale: float
    output_zero_point: int
    multiplier: np.ndarray
    shift: np.ndarray
    offset: float


def quantize_weights(w: np.ndarray, dtype: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-output-channel symmetric weights of (D, C) float ``w``: (q, scale, zero_point); int8:
    q in -127..127, zero point 0; uint8: q in 1..255, zero point 128. scale = max|w_c| / 127."""
    w = np.asarray(w, np.float64)
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale.astype(np.float64)), -127, 127)
    if dtype == "int8":
        return q.astype(np.int8), scale, np.zeros(len(scale), np.int32)
    if dtype == "uint8":
        return (q + 128).astype(np.uint8), scale, np.full(len(scale), 128, np.int32)
    raise TrainingError(f"cannot quantize a head for dtype {dtype!r}")


def quantize_head(w: np.ndarray, b: np.ndarray, input_scale: float, input_zero_point: int,
                  dtype: str, features_q: np.ndarray, margin: float = 0.1,
                  keep: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = None,
                  weight_dtype: Optional[str] = None) -> QuantizedHead:
    """Quantize the float head (w (D, C), b (C,)) that follows a quantized pool output
    (``input_scale``, ``input_zero_point``, values of ``dtype``).

    Without ``keep``, the mean column is first subtracted from ``w`` (adding one vector to every
    class's weights adds the same number to all logits of an image): an imprinted head's logits
    share a large common part (all cosines of non-negative features are positive), which would
    otherwise take most of the output range and of the weights' levels.

    ``features_q`` (N, D): quantized training features; their float logits give the output range
    (widened by ``margin`` of its width on each side). A common ``offset`` is added to every bias
    so the range is centred on zero (all 256 levels used; softmax is unchanged by it).
    ``keep``: integer columns (w_q (D, K), b int32 (K,), weight_scale (K,), weight_zero_point (K,))
    of the base classifier, kept bit for bit in front of the new columns (only the output scale and
    the multipliers change). ``weight_dtype``: of the weights (default ``dtype``; kept columns of
    the other type are shifted by 128, same values)."""
    from .fixedpoint import DTYPE_RANGE, quantize_multipliers
    weight_dtype = weight_dtype or dtype
    qmin, qmax = DTYPE_RANGE[dtype]
    in_scale = float(np.float32(input_scale))
    w = np.asarray(w, np.float64)
    if keep is None:
        w = w - w.mean(axis=1, keepdims=True)
    wq, wscale, wzp = quantize_weights(w, weight_dtype)
    b = np.asarray(b, np.float64)
    if keep is not None:
        kw, kb, ks, kz = keep
        kw, kz = np.asarray(kw), np.asarray(kz, np.int32)
        if kw.dtype != wq.dtype:  # same w - zero_point in the other type
            shift = 128 if wq.dtype == np.uint8 else -128
            kw, kz = (kw.astype(np.int32) + shift).astype(wq.dtype), kz + shift
        wq = np.concatenate([kw, wq], axis=1)
        wscale = np.concatenate([np.asarray(ks, np.float32), wscale])
        wzp = np.concatenate([np.asarray(kz, np.int32), wzp])
        kept_bias = np.asarray(kb, np.int64)
    else:
        kept_bias = np.zeros(0, np.int64)
    n_keep = len(kept_bias)
    acc_scale = in_scale * wscale.astype(np.float64)
    bias = np.concatenate([kept_bias.astype(np.float64),
                           np.round(b / acc_scale[n_keep:])])
    # float logits of the (integer) training features with the integer weights
    xq = np.asarray(features_q, np.int64) - int(input_zero_point)
    acc = xq @ (wq.astype(np.int64) - wzp.astype(np.int64)) + bias.astype(np.int64)
    logits = acc * acc_scale
    lo, hi = float(logits.min()), float(logits.max())
    width = max(hi - lo, 1e-6) * (1 + 2 * margin)
    offset = -(lo + hi) / 2
    bias = bias + np.round(offset / acc_scale)
    if (np.abs(bias) > (1 << 31) - 1).any():
        raise TrainingError("the new head's bias does not fit int32")
    out_scale = float(np.float32(width / (qmax - qmin)))
    out_zp = int(np.clip(round((qmin + qmax + 1) / 2), qmin, qmax))  # the middle: -offset'd range
    mult, shift = quantize_multipliers(in_scale, wscale, out_scale, float_product=False)
    return QuantizedHead(wq, bias.astype(np.int32), wscale, wzp, out_scale, out_zp, mult, shift,
                         offset)
