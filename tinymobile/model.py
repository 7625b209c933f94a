"""The public :class:`Model`: a loaded MobileNet v1 of any dtype with preprocessing,
classification and a cost summary.

One class serves float32 and quantized (uint8 / int8) networks; they differ only in how the
network input is encoded and the output decoded (:class:`FloatCodec`, :class:`QuantizedCodec`):

* ``forward`` takes the network's own input dtype -- preprocessed float32 for a float model, the
  quantized input for an integer one -- and returns the raw output of that dtype (logits, or
  pooled features); a quantized model's raw logits are the tensor TFLite feeds to its softmax,
  ``output_quantization`` their (scale, zero_point);
* ``logits`` takes preprocessed float32 input for every model and returns float32;
* ``predict`` / ``classify`` / ``features`` take images: preprocess, encode, run, decode, then
  softmax (or a sigmoid for a single-logit binary classifier).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import model_format
from .errors import InputError, TinyMobileError
from .fixedpoint import dequantize, quantize, sigmoid, softmax
from .limits import MAX_ACTIVATION_BYTES, MAX_INPUT_SIZE, MIN_INPUT_SIZE
from .network import Network, mobilenet_v1
from .preprocess import as_image_list, preprocess
from .runner import Runner


def check_preprocessed(x: np.ndarray, what: str) -> np.ndarray:
    """x itself if it can be a preprocessed image (floats of any precision), else InputError: an
    integer array there is an image's pixels (0..255 where the network wants (x - mean) / std)."""
    if x.dtype.kind in "iu":
        raise InputError(f"{what} takes the preprocessed image as floats (model.preprocess(...)), "
                         f"got {x.dtype} values, pixels: use predict() / classify() for those")
    if x.dtype.kind != "f":
        raise InputError(f"{what} expects float32 input, got {x.dtype}")
    return x


class FloatCodec:
    """A float32 network: its input is the preprocessed image, its outputs are real values."""

    dtype = "float32"

    def __init__(self, network: Network):
        self.network = network

    def check_raw(self, x: np.ndarray) -> np.ndarray:
        """``forward``'s input as a C-contiguous float32 array (NaN / infinity: checked by the
        runner while copying it in)."""
        return np.ascontiguousarray(check_preprocessed(x, "forward"), np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float32 input -> the network's input."""
        return np.ascontiguousarray(x, np.float32)

    def decode(self, raw: np.ndarray, layer: int) -> np.ndarray:
        """Raw output of layer index ``layer`` -> float32 real values."""
        return raw


class QuantizedCodec(FloatCodec):
    """A quantized network: input quantized with the network's input scale and zero point,
    outputs dequantized with the producing layer's output quantization."""

    def __init__(self, network: Network):
        super().__init__(network)
        self.dtype = network.dtype

    def check_raw(self, x: np.ndarray) -> np.ndarray:
        want = self.network.input_dtype
        if x.dtype != np.dtype(want):
            raise InputError(f"a quantized model's forward takes {want} input (already "
                             f"quantized), got {x.dtype}; use quantize_input() or predict()")
        return np.ascontiguousarray(x)

    def encode(self, x: np.ndarray) -> np.ndarray:
        scale, zp = self.network.input_quantization
        q = quantize(x, scale, zp, self.dtype)
        if self.network.input_dtype != self.dtype:  # an int8 network taking uint8: q + 128
            q = np.bitwise_xor(q.view(np.uint8), np.uint8(0x80))
        return q

    def decode(self, raw: np.ndarray, layer: int) -> np.ndarray:
        q = self.network.layers[layer].quant
        return dequantize(raw, q.output_scale, q.output_zero_point)


class Model:
    """MobileNet v1 ready to run on tinymobile's C kernels (float32 or integer).

    Thread safety: one Model may be shared by any number of Python threads. Each concurrent
    forward pass gets its own activation buffers; the C kernels run without the GIL; results
    are identical to serial calls.
    """

    def __init__(self, network: Network, threads: Optional[int] = None, isa: Optional[str] = None):
        self.network = network
        self._runner = Runner(network, isa=isa, threads=threads)  # checks the network first
        self._codec = QuantizedCodec(network) if network.is_quantized else FloatCodec(network)

    # ---- description -------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """"float32", "uint8" or "int8": the dtype of ``forward``'s input and output."""
        return self.network.dtype

    @property
    def is_quantized(self) -> bool:
        return self.network.is_quantized

    @property
    def alpha(self) -> float:
        """Width multiplier recorded in the model (informative)."""
        return self.network.alpha

    @property
    def input_size(self) -> Tuple[int, int]:
        """(height, width) of the network input in pixels."""
        return self.network.input_size

    @property
    def resolution(self) -> int:
        """Input height = width in pixels of a square model."""
        try:
            return self.network.resolution
        except ValueError as e:
            raise TinyMobileError(str(e)) from None

    @property
    def num_classes(self) -> int:
        """Number of logits (0 for a feature extractor; 1 for a sigmoid binary classifier)."""
        return self.network.num_outputs if self.network.has_classifier else 0

    @property
    def labels(self) -> List[str]:
        """Class names from the model file, else the class indices as strings (a binary classifier
        has two: the negative and the positive class)."""
        if self.network.labels is not None:
            return list(self.network.labels)
        n = 2 if self._binary else self.network.num_outputs
        return [str(i) for i in range(n)]

    @property
    def _binary(self) -> bool:
        return self.network.output_activation == "sigmoid"

    @property
    def isa(self) -> str:
        """The kernel path this model runs on ("scalar", "avx2", "avx512" or "neon")."""
        return self._runner.isa

    @property
    def threads(self) -> int:
        return self._runner.threads

    @property
    def input_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of a quantized model's ``forward`` input (of ``input_dtype``)."""
        self._require_quantized("input_quantization")
        scale, zp = self.network.input_quantization
        if self.network.input_dtype != self.network.dtype:
            zp += 128  # uint8 input of an int8 network
        return scale, zp

    @property
    def input_dtype(self) -> str:
        """The dtype ``forward`` takes: the model's, or "uint8" for an int8 model converted from a
        TFLite file with uint8 input (``inference_input_type=tf.uint8``)."""
        return self.network.input_dtype

    @property
    def output_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of a quantized model's ``forward`` output (logits or features)."""
        self._require_quantized("output_quantization")
        return self.network.output_quantization

    def _require_quantized(self, what: str) -> None:
        if not self.is_quantized:
            raise TinyMobileError(f"{what}: this is a float32 model, not a quantized one")

    @property
    def macs(self) -> int:
        """Multiply-adds of one forward pass at batch 1."""
        return sum(r.macs for r in self.network.summary_rows())

    @property
    def params(self) -> int:
        """Weights + biases (BatchNorm folded)."""
        return sum(r.params for r in self.network.summary_rows())

    def summary(self) -> str:
        """A per-layer table: name, kind, output shape (NHWC, batch 1), params, mult-adds."""
        rows = self.network.summary_rows()
        h, w = self.input_size
        size = f"resolution={h}" if h == w else f"input={h}x{w}"
        lines = ([f"quantized {self.dtype}"] if self.is_quantized else []) + [
            f"MobileNet v1  alpha={self.alpha:g}  {size}  "
            f"activation={self.network.activation}  padding={self.network.padding}  "
            f"isa={self.isa}  threads={self.threads}",
            f"{'layer':<8} {'kind':<13} {'output':<20} {'params':>10} {'mult-adds':>14}"]
        for r in rows:
            lines.append(f"{r.name:<8} {r.kind:<13} {str(r.output_shape):<20} {r.params:>10,} {r.macs:>14,}")
        lines.append(f"{'total':<8} {'':<13} {'':<20} {self.params:>10,} {self.macs:>14,}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        h, w = self.input_size
        size = f"resolution={h}" if h == w else f"input={h}x{w}"
        kind = f"Model {self.dtype}" if self.is_quantized else "Model"
        return (f"<tinymobile.{kind} alpha={self.alpha:g} {size} "
                f"classes={self.num_classes} isa={self.isa} threads={self.threads}>")

    # ---- inference ---------------------------------------------------------------------
    def _check_input(self, x: Any) -> np.ndarray:
        """x as a C-contiguous (N, H, W, 3) array of ``forward``'s input dtype, or InputError.

        H, W are the model's input size, or any other size from MIN_INPUT_SIZE to MAX_INPUT_SIZE
        (the network is convolutional up to its global pool: plans are made per shape)."""
        x = np.asarray(x)
        h, w = self.input_size
        if x.ndim != 4 or x.shape[3] != 3:
            raise InputError(f"forward expects (N, {h}, {w}, 3) {self.input_dtype}, got shape {x.shape}")
        if x.shape[1:3] != (h, w):
            self._check_other_size(x.shape[1], x.shape[2])
        if x.shape[0] < 1:
            raise InputError("forward got an empty batch")
        return self._codec.check_raw(x)

    def _check_other_size(self, h: int, w: int) -> None:
        lo, hi = MIN_INPUT_SIZE, MAX_INPUT_SIZE
        if not (lo <= h <= hi and lo <= w <= hi):
            mh, mw = self.input_size
            raise InputError(f"forward expects (N, H, W, 3) with H and W in {lo}..{hi} (the "
                             f"model's own size is {mh}x{mw}), got {h}x{w}")
        biggest = max(int(np.prod(r.output_shape)) for r in
                      self.network.summary_rows(input_size=(h, w)))
        if 4 * max(biggest, h * w * 3) > MAX_ACTIVATION_BYTES:
            raise InputError(f"a {h}x{w} input would need activations of more than "
                             f"{MAX_ACTIVATION_BYTES:,} bytes per image")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) input of the model's dtype -> its raw output (N, classes) of the same
        dtype, no softmax: logits (quantized: scale and zero point in ``output_quantization``), or
        the pooled features (N, C) of a model without classifier. A float model takes the
        preprocessed image (``preprocess``), a quantized one that quantized (``quantize_input``)."""
        return self._runner.run_raw(self._check_input(x), check_finite=not self.is_quantized)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, H, W, 3) -> float32 logits (or features): ``forward`` for a
        float model; a quantized model quantizes the input and dequantizes the result."""
        if not self.is_quantized:
            return self.forward(x)
        raw = self._runner.run_raw(self.quantize_input(self._check_float(x, "logits")))
        return self._codec.decode(raw, len(self.network.layers) - 1)

    def activations(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """{layer name: raw output} of every layer for ``forward``'s input x (N, H, W, 3)."""
        outs = self._runner.run_all(self._check_input(x))
        return {layer.name: o for layer, o in zip(self.network.layers, outs)}

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float input -> the quantized network input (round half away, saturate)."""
        self._require_quantized("quantize_input")
        return self._codec.encode(self._check_float(x))

    def _check_float(self, x: Any, what: str = "quantize_input") -> np.ndarray:
        return np.asarray(check_preprocessed(np.asarray(x), what), np.float32)

    def preprocess(self, img: Any) -> np.ndarray:
        """Image(s) -> network input (N, H, W, 3) float32 with the model's preprocessing."""
        images, _ = as_image_list(img)
        n = self.network
        return np.stack([preprocess(i, n.input_size, n.input_mean, n.input_std, n.crop)
                         for i in images])

    def _run_images(self, img: Any, layer: int) -> Tuple[np.ndarray, bool]:
        """Images -> float32 output of layer index ``layer``, and whether img was a batch."""
        _, batched = as_image_list(img)
        raw = self._runner.run_raw(self._codec.encode(self.preprocess(img)), layers=layer + 1)
        return self._codec.decode(raw, layer), batched

    def predict(self, img: Any, batch: Optional[int] = None, jobs: Optional[int] = None) -> np.ndarray:
        """Class probabilities for an image (classes,) or a batch of images (N, classes).

        img: a file path, a PIL image, an (H, W, 3) uint8 RGB array, a list of those, or an
        (N, H, W, 3) array. The model's central crop (87.5 % for the official models), bilinear
        resize, (x - mean) / std; then softmax of the logits, or for a single-logit binary
        classifier the pair [1 - sigmoid, sigmoid]. A batch runs through tinymobile.pipeline:
        decoded and preprocessed by ``jobs`` threads (default one per core) ahead of inference
        in batches of ``batch`` (default 16); the answers are those of one-by-one calls."""
        if not self.network.has_classifier:
            raise TinyMobileError("this model has no classifier (a feature extractor): use features()")
        images, batched = as_image_list(img)
        if batched:
            from .pipeline import logits_of
            logits = logits_of(self, images, batch=batch, jobs=jobs)
        else:
            logits, _ = self._run_images(img, len(self.network.layers) - 1)
        probs = self.probabilities(logits)
        return probs if batched else probs[0]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """float32 logits (N, classes) -> class probabilities: softmax, or for a single-logit
        binary classifier (N, 2) [1 - sigmoid, sigmoid] (what ``predict`` returns). Non-finite
        logits are a TinyMobileError: never NaN probabilities."""
        logits = np.asarray(logits, np.float32)
        if not np.isfinite(logits).all():
            raise TinyMobileError("the model produced non-finite logits on this input (its weights "
                                  "overflow float32)")
        if self._binary:
            s = sigmoid(logits[:, 0])
            return np.stack([1 - s, s], axis=1)
        return softmax(logits)

    def classify(self, img: Any, top: int = 5) -> List[Tuple[str, float]]:
        """The ``top`` most probable (label, probability) pairs of one image, most probable first
        (every class where ``top`` exceeds them; ``top`` < 1 is an InputError)."""
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise InputError(f"top must be an integer of at least 1, got {top!r}")
        probs = self.predict(img)
        if probs.ndim != 1:
            raise InputError("classify takes one image; use predict for a batch")
        labels = self.labels
        order = np.argsort(-probs, kind="stable")[:int(top)]
        return [(labels[i], float(probs[i])) for i in order]

    def features(self, img: Any) -> np.ndarray:
        """The pooled feature vector (C,) of an image, or (N, C) of a batch, float32."""
        feats, batched = self._run_images(img, self.network.pool_index)
        return feats if batched else feats[0]

    # ---- training a new classifier (tinymobile.training) ------------------------------------
    #: The model file this model was read from (its training state is read from it on demand).
    source_path: Optional[str] = None
    _training_state = None

    @property
    def training_state(self):
        """The :class:`~tinymobile.heads.TrainingState` of a classifier trained by tinymobile
        (what ``train_classifier(..., add=True)`` adds to), or None."""
        if self._training_state is None and self.source_path is not None:
            from .training import read_state
            self._training_state = read_state(self.source_path, self.network)
            self.source_path = None
        return self._training_state

    @training_state.setter
    def training_state(self, state) -> None:
        self._training_state, self.source_path = state, None

    def train_classifier(self, images: Any, labels: Sequence[str], method: Optional[str] = None,
                         keep_classes: bool = False, **options) -> "Model":
        """A new model: this one's features followed by a classifier trained on ``images``
        (anything ``predict`` takes, a list or an (N, H, W, 3) array) with ``labels`` (one class
        name per image). See docs/TRAINING.md.

        method: "logistic" (default; multinomial logistic regression, L2 chosen by
        cross-validation) or "imprint" (weight imprinting); with ``add=True`` the default is the
        method the model was trained with. keep_classes: keep this model's own classes in front
        of the new ones. Options: ``add`` (add images / classes to this trained model's classes,
        from its training state, without the old images), ``augment`` ("none", "flip", "crops"),
        ``keep_embeddings`` (True: store the training embeddings, so a later ``add`` can refit
        logistic regression), ``validate`` (fraction held out per class; the accuracy is in
        ``result.training_report``), ``scale`` (imprinting's cosine scale), ``l2`` (fixed L2
        instead of cross-validation), ``progress`` (a progress bar on stderr).

        Unreadable images are skipped with a warning (listed in ``training_report.skipped``). A
        quantized model gets a quantized head and stays on the integer kernels."""
        from .training import train
        model, _ = train(self, images, labels, method=method, keep_classes=keep_classes, **options)
        return model

    def save(self, path: "os.PathLike[str] | str", overwrite: bool = False) -> None:
        """Write this model (and its training state, if any) as a tinymobile ``.npz``; an
        existing file is refused unless ``overwrite=True``."""
        from .training import save_model
        save_model(self, path, overwrite)


    def __reduce__(self):
        """Pickle (Ray, Dask, multiprocessing): the model file's arrays -- weights, labels,
        preprocessing, and a trained classifier's training state -- and the thread count;
        unpickling checks them as a model file is checked and rebuilds the C state. (Loading a
        model file never unpickles anything.)"""
        from . import kernels
        isa = self.isa if self.isa != kernels.default_isa() else None
        arrays = model_format.to_arrays(self.network)
        state = self.training_state
        if state is not None:
            arrays.update(state.to_arrays())
        return (_unpickle, (arrays, self.threads, isa))


def _unpickle(arrays: Dict[str, np.ndarray], threads: int, isa: Optional[str]) -> "Model":
    from . import kernels
    from .training import HEAD_PREFIX
    if isa not in kernels.available_isas():
        isa = None  # a forced kernel path this machine lacks: its best one
    head = {k: v for k, v in arrays.items() if k.startswith(HEAD_PREFIX)}
    model = Model(model_format.from_arrays({k: v for k, v in arrays.items() if k not in head}),
                  threads=threads, isa=isa)
    if head:
        from .heads import TrainingState
        model.training_state = TrainingState.from_arrays(head, model.network.feature_size)
    return model


def load(path: "os.PathLike[str] | str", threads: Optional[int] = None,
         isa: Optional[str] = None) -> Model:
    """Load a tinymobile ``.npz`` model (float or quantized). ``threads``: default
    TINYMOBILE_NUM_THREADS or all usable cores; ``isa``: force a kernel path ("scalar", "avx2",
    "avx512", "neon"), default the best one."""
    model = Model(model_format.load(path), threads=threads, isa=isa)
    model.source_path = os.fspath(path)
    return model


def build(alpha: float = 1.0, resolution: "int | Tuple[int, int]" = 224, num_classes: int = 1000,
          seed: int = 0, separable: bool = True, threads: Optional[int] = None,
          isa: Optional[str] = None) -> Model:
    """MobileNet v1 with random weights, for any width multiplier and resolution (an int, or
    (height, width); channels are int(c * alpha)); ``separable=False`` gives the
    full-convolution baseline of the paper."""
    try:
        network = mobilenet_v1(alpha, resolution, num_classes, seed, separable=separable)
    except ValueError as e:
        raise TinyMobileError(str(e)) from None
    return Model(network, threads=threads, isa=isa)
