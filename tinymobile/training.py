"""Training a new classifier head on a MobileNet: features of the training images from the
engine, a head from :mod:`tinymobile.heads`, and the model that results (float, or integer with
a quantized head on a quantized base). ``Model.train_classifier`` and ``tinymobile train`` use it.

The result is an ordinary model: the base network up to its global pool, then a new fully
connected layer whose outputs are the new classes (after the base's own classes with
``keep_classes``); the training state (:class:`~tinymobile.heads.TrainingState`) travels with it
and is saved under ``head/`` in the model file, so a later training run can add images or classes
without the old photos.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import heads
from .augment import AUGMENTATIONS, views
from .errors import ImageError
from .heads import TrainingError, TrainingState
from .preprocess import image_files, to_rgb_array

#: Images decoded and run per forward call while computing training features.
BATCH = 16


@dataclass
class TrainingReport:
    """What a training run did: images per class, images skipped (unreadable, with the reason),
    method, chosen L2, held-out accuracy, seconds for features and for the fit."""
    counts: Dict[str, int]
    method: str
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    l2: float = float("nan")
    cv_folds: int = 0
    augment: str = "none"
    validation: Optional[Tuple[float, int]] = None
    feature_seconds: float = 0.0
    fit_seconds: float = 0.0
    added: bool = False
    l2_given: bool = False

    def summary(self) -> str:
        """One line: classes and counts, method, validation, time."""
        classes = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        method = self.method
        if self.method == "logistic":
            how = ("given" if self.l2_given else f"{self.cv_folds}-fold CV" if self.cv_folds
                   else "fixed, too few images to cross-validate")
            method += f" (L2 {self.l2:g}, {how})"
        parts = [f"{len(self.counts)} classes ({classes})", method]
        if self.augment != "none":
            parts.append(f"augment {self.augment}")
        if self.validation is not None:
            acc, n = self.validation
            parts.append(f"validation top-1 {acc:.3f} on {n} held-out images")
        if self.skipped:
            parts.append(f"{len(self.skipped)} unreadable image{'s' if len(self.skipped) > 1 else ''} skipped")
        parts.append(f"{self.feature_seconds + self.fit_seconds:.1f} s "
                     f"(features {self.feature_seconds:.1f} s, fit {self.fit_seconds:.2f} s)")
        return "; ".join(parts)


# ---- images ------------------------------------------------------------------------------------

def class_folders(directory: str, extensions: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(image paths, class names (Unicode NFC)) of a folder-per-class layout:
    ``directory/<class>/<image>``, the images of a class folder's subfolders included (as
    Keras' ``image_dataset_from_directory`` reads them: ``cat/2023/x.jpg`` is a cat; symlinked
    folders are not followed), in sorted path order. Hidden folders and files (starting with
    ".") are ignored; an empty class folder, a folder with no class folders, an invalid class
    name or two folders whose names are the same class name is a TrainingError."""
    if not os.path.isdir(directory):
        raise TrainingError(f"{directory}: not a directory")
    paths: List[str] = []
    labels: List[str] = []
    names = sorted(d for d in os.listdir(directory)
                   if not d.startswith(".") and os.path.isdir(os.path.join(directory, d)))
    if not names:
        raise TrainingError(f"{directory}: no class folders (expected {directory}/<class>/<images>)")
    seen: Dict[str, str] = {}
    for name in names:
        try:
            label = heads.check_label(name)
        except TrainingError as e:
            raise TrainingError(f"{os.path.join(directory, name)}: {e}") from None
        if label in seen:
            raise TrainingError(f"{directory}: folders {seen[label]!r} and {name!r} give the same "
                                "class name (they differ only in Unicode normalisation): merge "
                                "or rename one")
        seen[label] = name
        sub = os.path.join(directory, name)
        files = image_files(sub, recursive=True, extensions=tuple(extensions))
        if not files:
            raise TrainingError(f"{sub}: class folder has no image files")
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _describe(img: Any, i: int) -> str:
    return os.fspath(img) if isinstance(img, (str, os.PathLike)) else f"image {i}"


def embed(model, images: Sequence[Any], augment: str = "none", progress: bool = False,
          desc: str = "features") -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, str]]]:
    """Pooled features of every view of every readable image, in batches of BATCH on the
    engine (all the model's threads). Returns (features (M, D) float32, source image index (M,),
    [(index, reason)] of unreadable images, which are skipped)."""
    from tqdm import tqdm
    feats: List[np.ndarray] = []
    index: List[int] = []
    failed: List[Tuple[int, str]] = []
    bar = tqdm(total=len(images), desc=desc, unit="img", file=sys.stderr,
               disable=not progress or len(images) < 2, leave=False)
    try:
        for start in range(0, len(images), BATCH):
            arrays, owners = [], []
            for i in range(start, min(start + BATCH, len(images))):
                try:
                    vs = views(to_rgb_array(images[i]), augment)
                except ImageError as e:
                    failed.append((i, str(e)))
                    continue
                arrays += vs
                owners += [i] * len(vs)
            if arrays:
                feats.append(np.asarray(model.features(arrays), np.float32))
                index += owners
            bar.update(min(start + BATCH, len(images)) - start)
    finally:
        bar.close()
    d = model.network.feature_size
    return (np.concatenate(feats) if feats else np.zeros((0, d), np.float32),
            np.array(index, np.int64), failed)


# ---- networks ----------------------------------------------------------------------------------

def _pool_index(network) -> int:
    try:
        return network.pool_index
    except ValueError:
        raise TrainingError("the base model has no global pool (no pooled features to train a "
                            "classifier on)") from None


def check_base(network) -> None:
    """TrainingError unless ``network`` ends with a global pool, optionally followed by one
    fully connected layer (the features a head is trained on)."""
    i = _pool_index(network)
    rest = network.layers[i + 1:]
    if len(rest) > 1 or (rest and rest[0].kind != "fully_connected"):
        raise TrainingError("the base model has layers after its global pool other than one "
                            "classifier: cannot train a head on it")


def base_head(network):
    """The base's classifier layer (FullyConnected, with its ``quant`` when quantized), or None."""
    i = _pool_index(network)
    return network.layers[i + 1] if len(network.layers) > i + 1 else None


def pool_quantization(network) -> Tuple[float, int]:
    """(scale, zero_point) of a quantized network's pooled features."""
    q = network.layers[_pool_index(network)].quant
    return float(q.output_scale), int(q.output_zero_point)


def with_head(network, w, b, labels: List[str], quant=None):
    """A copy of ``network`` up to its pool followed by FullyConnected("fc", w, b, quant), class
    names ``labels``, softmax output."""
    from .network import FullyConnected
    new = copy.copy(network)
    new.layers = list(network.layers[:_pool_index(network) + 1]) + [FullyConnected("fc", w, b, quant)]
    new.labels = list(labels)
    new.output_activation = "softmax"
    return new


# ---- training ----------------------------------------------------------------------------------

def train(model, images: Sequence[Any], labels: Sequence[str], method: Optional[str] = None,
          keep_classes: bool = False, add: bool = False, augment: str = "none",
          keep_embeddings: bool = True, validate: Optional[float] = None,
          scale: float = heads.DEFAULT_SCALE, l2: Optional[float] = None,
          progress: bool = False, describe=None):
    """Train a head on ``model``'s pooled features (see Model.train_classifier). Returns
    (new Model, TrainingReport)."""
    network = model.network
    check_base(network)
    if augment not in AUGMENTATIONS:
        raise TrainingError(f"unknown augmentation {augment!r} (choose {', '.join(AUGMENTATIONS)})")
    if isinstance(images, (str, bytes, os.PathLike)):
        raise TrainingError(f"images: a list of images, not one path ({os.fspath(images)!r}; a "
                            "folder per class: tinymobile train DIR)")
    if isinstance(labels, (str, bytes)):
        raise TrainingError(f"labels: one class name per image, not one string ({labels!r})")
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise TrainingError(f"images: an array of shape {images.shape}; expected (N, H, W, 3) "
                            "images (or a list of images)")
    if isinstance(images, np.ndarray):
        images = list(images)
    images = list(images)
    labels = list(labels)
    if len(images) != len(labels):
        raise TrainingError(f"{len(images)} images but {len(labels)} labels")
    if not images:
        raise TrainingError("no training images")
    try:
        canonical = {n: heads.check_label(n) for n in dict.fromkeys(labels)}  # NFC
    except TypeError:  # unhashable
        raise TrainingError("class names must be strings") from None
    labels = [canonical[n] for n in labels]
    describe = describe or _describe

    old = getattr(model, "training_state", None)
    if add:
        if old is None:
            raise TrainingError("the model has no training state to add to (not made by "
                                "tinymobile train, or saved without it)")
        state = copy.deepcopy(old)
        if not keep_embeddings:
            state.drop_embeddings()
        method = method or state.method
        if method == "logistic" and state.embeddings is None:
            raise TrainingError("the model keeps no training embeddings (trained with "
                                "--no-embeddings): only --method imprint can add to it")
        kept = state.base_classes
    else:
        # the embeddings are there for the fit (a logistic head needs them); dropped after it
        # unless kept in the file
        state = TrainingState.empty(network.feature_size, keep_embeddings=True)
        method = method or "logistic"
        kept = 0
        if keep_classes:
            head = base_head(network)
            if head is None:
                raise TrainingError("keep_classes: the base model has no classifier to keep")
            if network.output_activation != "softmax":
                raise TrainingError("keep_classes: the base classifier is not a softmax one "
                                    f"({network.output_activation})")
            kept = head.cout
        state.base_classes = kept
    base_labels = model.labels[:kept] if kept else []
    clash = set(base_labels) & set(labels)
    if clash:
        raise TrainingError(f"class {sorted(clash)[0]!r} is already one of the base model's classes")
    if method not in heads.METHODS:
        raise TrainingError(f"unknown method {method!r} (choose {' or '.join(heads.METHODS)})")

    t0 = time.perf_counter()
    feats, owner, failed = embed(model, images, augment, progress)
    t_feat = time.perf_counter() - t0
    skipped = [(describe(images[i], i), reason) for i, reason in failed]
    for where, reason in skipped:
        warnings.warn(f"skipped unreadable image: {reason}", stacklevel=3)
    ok = sorted(set(owner.tolist()))
    ok_labels = [labels[i] for i in ok]
    wanted = list(dict.fromkeys(labels))
    present = set(ok_labels)
    for name in wanted:
        if name not in present:
            raise TrainingError(f"class {name!r} has no readable images")

    held = np.zeros(len(ok), bool)
    if validate:
        held = heads.validation_split(ok_labels, float(validate))
        if not held.any():
            raise TrainingError("--validate: every class has a single image, nothing to hold out")
    held_ids = {img for img, h in zip(ok, held) if h}
    rows = np.array([i not in held_ids for i in owner.tolist()], bool)
    # the original view of each held-out image (the first row of its views)
    first = np.zeros(len(owner), bool)
    first[np.unique(owner, return_index=True)[1]] = True
    held_rows = first & ~rows

    t1 = time.perf_counter()
    state.add(feats[rows], [labels[i] for i in owner[rows]], groups=owner[rows])
    if len(state.classes) + kept < 2:
        raise TrainingError(f"need at least two classes to train a classifier, got one "
                            f"({state.classes[0]!r})")
    head = heads.fit(state, method, scale=scale, l2=l2)
    all_labels = list(base_labels) + list(state.classes)
    # a quantized head's output range: every training feature (only the new ones when the
    # embeddings are not kept)
    if state.embeddings is not None:
        range_feats, range_y = state.features(), state.labels
    else:
        range_feats = feats[rows]
        range_y = np.array([state.classes.index(labels[i]) for i in owner[rows]])
    if kept:
        head = calibrate_to_base(head, head_logits(network, range_feats)[:, :kept], range_feats,
                                 range_y)
    new_net = _head_network(network, head, state, range_feats, kept, all_labels)
    if not keep_embeddings:
        state.drop_embeddings()
    t_fit = time.perf_counter() - t1
    result = type(model)(new_net, threads=model.threads)  # no import of tinymobile.model: a cycle
    result.training_state = state

    report = TrainingReport({c: int(n) for c, n in zip(state.classes, state.counts)}, method,
                            skipped, head.l2, head.cv.folds if head.cv else 0, augment,
                            feature_seconds=t_feat, fit_seconds=t_fit, added=add,
                            l2_given=l2 is not None)
    if validate:
        y = np.array([all_labels.index(labels[i]) for i in owner[held_rows]])
        logits = head_logits(new_net, feats[held_rows])
        report.validation = (float((logits.argmax(1) == y).mean()), int(len(y)))
    result.training_report = report
    return result, report


def calibrate_to_base(head: heads.FloatHead, base_logits: np.ndarray, feats: np.ndarray,
                      y: np.ndarray) -> heads.FloatHead:
    """The new head scaled and shifted onto the kept base classifier's logit scale (its logits
    and the new ones are otherwise unrelated: measured, the base classes won on every training
    image of the new classes). ``alpha``: the base logits' mean per-image spread (top minus mean)
    over the new head's (1 for a single new class); ``beta``: so that on the median training
    image, its class's new logit equals the base classifier's top logit."""
    z = np.asarray(feats, np.float64) @ head.w + head.b
    alpha = 1.0
    if z.shape[1] > 1:
        spread = float((z.max(1) - z.mean(1)).mean())
        if spread > 0:
            alpha = float((base_logits.max(1) - base_logits.mean(1)).mean()) / spread
    t = z[np.arange(len(y)), y]
    beta = float(np.median(base_logits.max(1) - alpha * t))
    return dataclasses.replace(head, w=(head.w * alpha).astype(np.float32),
                               b=(head.b * alpha + beta).astype(np.float32),
                               info=dict(head.info, calibration=(alpha, beta)))


def _head_network(network, head: heads.FloatHead, state: TrainingState, train_feats: np.ndarray,
                  kept: int, labels: List[str]):
    """The network with the fitted head (quantized for a quantized base)."""
    from .fixedpoint import DTYPE_RANGE
    from .network import LayerQuant
    base = base_head(network) if kept else None
    if not network.is_quantized:
        w, b = head.w, head.b
        if base is not None:
            w = np.concatenate([np.asarray(base.w, np.float32)[:, :kept], w], axis=1)
            b = np.concatenate([np.asarray(base.b, np.float32)[:kept], b])
        return with_head(network, np.ascontiguousarray(w, np.float32),
                         np.ascontiguousarray(b, np.float32), labels)
    in_scale, in_zp = pool_quantization(network)
    qmin, qmax = DTYPE_RANGE[network.dtype]
    fq = np.clip(np.round(train_feats / np.float32(in_scale)) + in_zp, qmin, qmax)
    wdtype = str(network.layers[0].w.dtype)  # a model file has one weight dtype
    keep = None
    if base is not None:
        q = base.quant
        wzp = np.broadcast_to(np.asarray(q.weight_zero_point, np.int32), (base.cout,))[:kept]
        wsc = np.broadcast_to(np.asarray(q.weight_scale, np.float32), (base.cout,))[:kept]
        keep = (np.asarray(base.w)[:, :kept], np.asarray(base.b, np.int32)[:kept], wsc, wzp)
    qh = heads.quantize_head(head.w, head.b, in_scale, in_zp, network.dtype, fq, keep=keep,
                             weight_dtype=wdtype)
    quant = LayerQuant(qh.weight_scale, qh.weight_zero_point, qh.output_scale,
                       qh.output_zero_point, (qmin, qmax), qh.multiplier, qh.shift)
    return with_head(network, qh.w, qh.b, labels, quant)


def head_logits(network, feats: np.ndarray) -> np.ndarray:
    """The classifier's logits (float; dequantized for a quantized network) for pooled features
    ``feats`` (N, D) float, computed in NumPy (the integer path with TFLite's fixed-point
    requantization, :mod:`tinymobile.fixedpoint`)."""
    fc = network.layers[-1]
    if not network.is_quantized:
        return np.asarray(feats, np.float64) @ fc.w + fc.b
    from .fixedpoint import DTYPE_RANGE, Requant, requantize
    in_scale, in_zp = pool_quantization(network)
    qmin, qmax = DTYPE_RANGE[network.dtype]
    q = fc.quant
    xq = np.clip(np.round(feats / np.float32(in_scale)) + in_zp, qmin, qmax).astype(np.int64)
    wzp = np.broadcast_to(np.asarray(q.weight_zero_point, np.int64), (fc.cout,))
    acc = (xq - in_zp) @ (fc.w.astype(np.int64) - wzp) + fc.b.astype(np.int64)
    mult = np.broadcast_to(np.asarray(q.multiplier, np.int32), (fc.cout,))
    shift = np.broadcast_to(np.asarray(q.shift, np.int32), (fc.cout,))
    rq = Requant(in_zp, wzp.astype(np.int32), mult, shift, int(q.output_zero_point), (qmin, qmax),
                 network.dtype)
    out = requantize(acc, rq)
    return (out.astype(np.float64) - q.output_zero_point) * q.output_scale


# ---- files -------------------------------------------------------------------------------------

HEAD_PREFIX = "head/"


def save_model(model, path: "os.PathLike[str] | str", overwrite: bool = False) -> None:
    """Write ``model`` as a tinymobile .npz, with its training state (``head/*``) if it has one.
    An existing file is refused unless ``overwrite``; written to a temporary file, then renamed."""
    from . import model_format
    path = os.fspath(path)
    if os.path.isdir(path):
        raise TrainingError(f"{path}: is a directory")
    if os.path.exists(path) and not overwrite:
        raise TrainingError(f"{path}: exists (not overwritten; pass overwrite=True / --force)")
    state = model.training_state
    head = None
    if state is not None:
        from .limits import MAX_ARRAY_BYTES, MAX_MODEL_BYTES
        head = state.to_arrays()
        model_bytes = sum(a.nbytes for a in model_format.to_arrays(model.network).values())
        total = model_bytes + sum(a.nbytes for a in head.values())
        if max(a.nbytes for a in head.values()) > MAX_ARRAY_BYTES or total > MAX_MODEL_BYTES:
            raise TrainingError(f"the training embeddings of {state.num_images:,} images are too "
                                "large for a model file that can be read back; train with "
                                "--no-embeddings (keep_embeddings=False)")
    model_format.save(model.network, path, extra=head)


def read_state(path: "os.PathLike[str] | str", network) -> Optional[TrainingState]:
    """The training state saved in model file ``path`` (None if it has none), checked against
    ``network`` (the model read from that file); TrainingError naming the problem."""
    import zipfile
    from . import model_format
    from .errors import ModelFormatError
    name = os.fspath(path)
    try:
        with zipfile.ZipFile(name) as archive:
            arrays = model_format._LazyArrays(archive, name)
            keys = [k for k in arrays if k.startswith(HEAD_PREFIX)]
            if not keys:
                return None
            state = TrainingState.from_arrays({k: arrays[k] for k in keys}, network.feature_size)
    except ModelFormatError as e:
        raise TrainingError(f"training state: {e}") from None
    except (OSError, zipfile.BadZipFile) as e:
        raise TrainingError(f"{name}: cannot read the training state ({e})") from None
    classes = network.labels or []
    if (not network.has_classifier or network.num_outputs != state.base_classes + len(state.classes)
            or list(classes[state.base_classes:]) != state.classes):
        raise TrainingError(f"{name}: the training state does not match the model's classifier")
    return state
