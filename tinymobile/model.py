"""The public :class:`Model`: a loaded MobileNet v1 with preprocessing, classification and a
cost summary."""
from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple

import numpy as np

from . import model_format
from .errors import InputError, TinyMobileError
from .network import Network, mobilenet_v1
from .preprocess import as_image_list, preprocess
from .reference import softmax
from .runner import Runner


class Model:
    """MobileNet v1 ready to run on tinymobile's C kernels.

    Thread safety: one Model may be shared by any number of Python threads. Each concurrent
    forward pass gets its own activation buffers; the C kernels run without the GIL; results
    are identical to serial calls.
    """

    #: The runner class executing the network (the quantized model uses the integer one).
    runner_class = Runner

    def __init__(self, network: Network, threads: Optional[int] = None, isa: Optional[str] = None):
        self.network = network
        self._runner = self.runner_class(network, isa=isa, threads=threads)

    # ---- description -------------------------------------------------------------------
    @property
    def alpha(self) -> float:
        """Width multiplier recorded in the model (informative)."""
        return self.network.alpha

    @property
    def resolution(self) -> int:
        """Input height = width in pixels."""
        return self.network.resolution

    @property
    def num_classes(self) -> int:
        """Number of logits (0 for a feature extractor)."""
        return self.network.num_outputs if self.network.has_classifier else 0

    @property
    def labels(self) -> List[str]:
        """Class names from the model file, else the class indices as strings."""
        if self.network.labels is not None:
            return list(self.network.labels)
        return [str(i) for i in range(self.network.num_outputs)]

    @property
    def isa(self) -> str:
        """The kernel path this model runs on ("scalar", "avx2", "avx512" or "neon")."""
        return self._runner.isa

    @property
    def threads(self) -> int:
        return self._runner.threads

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
        lines = [f"MobileNet v1  alpha={self.alpha:g}  resolution={self.resolution}  "
                 f"activation={self.network.activation}  padding={self.network.padding}  "
                 f"isa={self.isa}  threads={self.threads}",
                 f"{'layer':<8} {'kind':<13} {'output':<20} {'params':>10} {'mult-adds':>14}"]
        for r in rows:
            lines.append(f"{r.name:<8} {r.kind:<13} {str(r.output_shape):<20} {r.params:>10,} {r.macs:>14,}")
        lines.append(f"{'total':<8} {'':<13} {'':<20} {self.params:>10,} {self.macs:>14,}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<tinymobile.Model alpha={self.alpha:g} resolution={self.resolution} "
                f"classes={self.num_classes} isa={self.isa} threads={self.threads}>")

    # ---- inference ---------------------------------------------------------------------
    def _check_input(self, x: Any) -> np.ndarray:
        """x as a C-contiguous (N, R, R, 3) array of the input dtype, or InputError."""
        x = np.asarray(x)
        r = self.resolution
        if x.ndim != 4 or x.shape[1:] != (r, r, 3):
            raise InputError(f"forward expects (N, {r}, {r}, 3) {getattr(self, 'dtype', 'float32')}, "
                             f"got shape {x.shape}")
        if x.shape[0] < 1:
            raise InputError("forward got an empty batch")
        return self._convert_input(x)

    def _convert_input(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.kind not in "fiu":
            raise InputError(f"forward expects float32 input, got {x.dtype}")
        return np.ascontiguousarray(x, np.float32)  # NaN / infinity: checked by the runner

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, R, R, 3) -> logits (N, classes) float32, no softmax; for a
        model without classifier, the pooled features (N, C)."""
        return self._runner.run(self._check_input(x), check_finite=True)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, R, R, 3) -> float32 logits (or features): ``forward`` for a
        float model; a quantized model quantizes the input and dequantizes the result."""
        return self.forward(x)

    def _features_layers(self) -> int:
        return len(self.network.layers) - (1 if self.network.has_classifier else 0)

    def preprocess(self, img: Any) -> np.ndarray:
        """Image(s) -> network input (N, R, R, 3) float32 with the model's preprocessing."""
        images, _ = as_image_list(img)
        n = self.network
        return np.stack([preprocess(i, n.resolution, n.input_mean, n.input_std) for i in images])

    def predict(self, img: Any) -> np.ndarray:
        """Softmax probabilities for an image (classes,) or a batch of images (N, classes).

        img: a file path, a PIL image, an (H, W, 3) uint8 RGB array, a list of those, or an
        (N, H, W, 3) array. Central crop 87.5 %, bilinear resize, (x - mean) / std."""
        if not self.network.has_classifier:
            raise TinyMobileError("this model has no classifier (a feature extractor): use features()")
        _, batched = as_image_list(img)
        logits = self._runner.run(self.preprocess(img))
        if not np.isfinite(logits).all():  # never hand out NaN probabilities
            raise TinyMobileError("the model produced non-finite logits on this input (its weights "
                                  "overflow float32)")
        probs = softmax(logits)
        return probs if batched else probs[0]

    def classify(self, img: Any, top: int = 5) -> List[Tuple[str, float]]:
        """The ``top`` most probable (label, probability) pairs of one image, most probable first."""
        probs = self.predict(img)
        if probs.ndim != 1:
            raise InputError("classify takes one image; use predict for a batch")
        labels = self.labels
        order = np.argsort(-probs, kind="stable")[:max(1, int(top))]
        return [(labels[i], float(probs[i])) for i in order]

    def features(self, img: Any) -> np.ndarray:
        """The pooled feature vector (C,) of an image, or (N, C) of a batch."""
        _, batched = as_image_list(img)
        feats = self._runner.run(self.preprocess(img), layers=self._features_layers())
        return feats if batched else feats[0]


def load(path: "os.PathLike[str] | str", threads: Optional[int] = None,
         isa: Optional[str] = None) -> Model:
    """Load a tinymobile ``.npz`` model. ``threads``: default TINYMOBILE_NUM_THREADS or all usable
    cores; ``isa``: force a kernel path ("scalar", "avx2", "avx512", "neon"), default the best one."""
    return model_for(model_format.load(path), threads=threads, isa=isa)


def model_for(network: Network, threads: Optional[int] = None, isa: Optional[str] = None) -> Model:
    """The Model that runs ``network``: a QuantizedModel (integer kernels) for a
    QuantizedNetwork, else a float Model."""
    from .quantized_network import QuantizedNetwork
    if isinstance(network, QuantizedNetwork):
        from .quantized_model import QuantizedModel
        return QuantizedModel(network, threads=threads, isa=isa)
    return Model(network, threads=threads, isa=isa)


def build(alpha: float = 1.0, resolution: int = 224, num_classes: int = 1000, seed: int = 0,
          separable: bool = True, threads: Optional[int] = None, isa: Optional[str] = None) -> Model:
    """MobileNet v1 with random weights, for any width multiplier and resolution (channels are
    int(c * alpha)); ``separable=False`` gives the full-convolution baseline of the paper."""
    try:
        network = mobilenet_v1(alpha, resolution, num_classes, seed, separable=separable)
    except ValueError as e:
        raise TinyMobileError(str(e)) from None
    return Model(network, threads=threads, isa=isa)
