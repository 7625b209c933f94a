"""The MobileNet v1 network as data: a list of layers with their weights, plus the metadata
(activation, padding, preprocessing, labels) that a model file carries.

Layouts are NHWC for activations. Weights (BatchNorm already folded in):

* ``Conv3x3.w``: (3, 3, Cin, Cout) HWIO, ``b``: (Cout,)
* ``Depthwise3x3.w``: (3, 3, C), ``b``: (C,)
* ``Pointwise.w``: (Cin, Cout), ``b``: (Cout,)
* ``FullyConnected.w``: (Cin, classes), ``b``: (classes,)

Costs count multiply-adds (one per weight use) and parameters (weights + biases).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

#: Output channels of the first convolution and of the 13 pointwise layers at alpha = 1.
BASE_CONV0 = 32
BASE_POINTWISE = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
#: Stride of each depthwise layer of the standard network.
STANDARD_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)

ACTIVATIONS = {"relu6": (0.0, 6.0), "relu": (0.0, float("inf"))}
PADDINGS = ("tf_same", "symmetric")


def conv_output(size: int, stride: int, padding: str) -> Tuple[int, int]:
    """Output size and leading (top/left) padding of a 3x3 convolution along one axis.

    ``tf_same``: TensorFlow SAME, out = ceil(size / stride), the odd pixel of padding goes to the
    bottom/right. ``symmetric``: one pixel on both sides, out = (size - 1) // stride + 1.
    """
    if padding == "tf_same":
        out = -(-size // stride)
        total = max((out - 1) * stride + 3 - size, 0)
        return out, total // 2
    if padding == "symmetric":
        return (size + 2 - 3) // stride + 1, 1
    raise ValueError(f"unknown padding {padding!r}")


@dataclass
class Conv3x3:
    """Full 3x3 convolution, ``w`` (3, 3, Cin, Cout), ``b`` (Cout,), activation fused."""
    name: str
    stride: int
    w: np.ndarray
    b: np.ndarray

    @property
    def cin(self) -> int:
        return self.w.shape[2]

    @property
    def cout(self) -> int:
        return self.w.shape[3]


@dataclass
class Depthwise3x3:
    """Depthwise 3x3 convolution, ``w`` (3, 3, C), ``b`` (C,), activation fused."""
    name: str
    stride: int
    w: np.ndarray
    b: np.ndarray

    @property
    def cin(self) -> int:
        return self.w.shape[2]

    cout = cin


@dataclass
class Pointwise:
    """1x1 convolution, ``w`` (Cin, Cout), ``b`` (Cout,), activation fused."""
    name: str
    w: np.ndarray
    b: np.ndarray

    @property
    def cin(self) -> int:
        return self.w.shape[0]

    @property
    def cout(self) -> int:
        return self.w.shape[1]


@dataclass
class AveragePool:
    """Global average pool over H and W: (N, H, W, C) -> (N, C)."""
    name: str = "pool"


@dataclass
class FullyConnected:
    """Classifier, ``w`` (Cin, classes), ``b`` (classes,), no activation."""
    name: str
    w: np.ndarray
    b: np.ndarray

    @property
    def cin(self) -> int:
        return self.w.shape[0]

    @property
    def cout(self) -> int:
        return self.w.shape[1]


Layer = Union[Conv3x3, Depthwise3x3, Pointwise, AveragePool, FullyConnected]


@dataclass
class LayerCost:
    """One row of :meth:`Network.summary_rows`."""
    name: str
    kind: str
    output_shape: Tuple[int, ...]
    params: int
    macs: int


@dataclass
class Network:
    """A MobileNet v1 network: its layers in execution order and the model file's metadata."""
    layers: List[Layer]
    resolution: int
    alpha: float = 1.0
    activation: str = "relu6"
    padding: str = "tf_same"
    input_mean: np.ndarray = field(default_factory=lambda: np.full(3, 127.5, np.float32))
    input_std: np.ndarray = field(default_factory=lambda: np.full(3, 127.5, np.float32))
    labels: Optional[List[str]] = None

    @property
    def clamp(self) -> Tuple[float, float]:
        """(min, max) applied after every convolution."""
        return ACTIVATIONS[self.activation]

    @property
    def has_classifier(self) -> bool:
        return isinstance(self.layers[-1], FullyConnected)

    @property
    def num_outputs(self) -> int:
        """Number of logits, or of features for a model without classifier."""
        last = self.layers[-1]
        return last.cout if isinstance(last, FullyConnected) else self.feature_size

    @property
    def feature_size(self) -> int:
        """Channels of the pooled feature vector."""
        c = 3
        for layer in self.layers:
            if isinstance(layer, (Conv3x3, Depthwise3x3, Pointwise)):
                c = layer.cout
        return c

    def summary_rows(self) -> List[LayerCost]:
        """Per-layer output shape (batch 1, NHWC), parameter count and multiply-adds."""
        rows = []
        h = w = self.resolution
        c = 3
        for layer in self.layers:
            if isinstance(layer, (Conv3x3, Depthwise3x3)):
                h, _ = conv_output(h, layer.stride, self.padding)
                w, _ = conv_output(w, layer.stride, self.padding)
                per_pixel = 9 * layer.cin * (layer.cout if isinstance(layer, Conv3x3) else 1)
                c = layer.cout
                rows.append(LayerCost(layer.name, _kind(layer), (1, h, w, c),
                                      layer.w.size + layer.b.size, h * w * per_pixel))
            elif isinstance(layer, Pointwise):
                c = layer.cout
                rows.append(LayerCost(layer.name, "pointwise", (1, h, w, c),
                                      layer.w.size + layer.b.size, h * w * layer.w.size))
            elif isinstance(layer, AveragePool):
                rows.append(LayerCost(layer.name, "avgpool", (1, c), 0, 0))
            else:
                c = layer.cout
                rows.append(LayerCost(layer.name, "fc", (1, c), layer.w.size + layer.b.size,
                                      layer.w.size))
        return rows


def _kind(layer: Layer) -> str:
    return {Conv3x3: "conv3x3", Depthwise3x3: "depthwise3x3", Pointwise: "pointwise",
            AveragePool: "avgpool", FullyConnected: "fc"}[type(layer)]


def mobilenet_v1(alpha: float = 1.0, resolution: int = 224, num_classes: int = 1000, seed: int = 0,
                 separable: bool = True, strides: Sequence[int] = STANDARD_STRIDES,
                 activation: str = "relu6", padding: str = "tf_same") -> Network:
    """MobileNet v1 with random weights (He-style scaling, so activations stay in range).

    Channels are ``int(c * alpha)`` (at least 1). ``separable=False`` gives the paper's
    full-convolution baseline: each depthwise + pointwise pair becomes one 3x3 convolution.
    ``num_classes=0`` leaves out the classifier (a feature extractor).
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    rng = np.random.default_rng(seed)

    def ch(c: int) -> int:
        return max(1, int(c * alpha))

    def weights(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def bias(n):
        return (rng.standard_normal(n) * 0.1).astype(np.float32)

    c0 = ch(BASE_CONV0)
    layers: List[Layer] = [Conv3x3("conv0", 2, weights((3, 3, 3, c0), 27), bias(c0))]
    cin = c0
    for k, (cout, stride) in enumerate(zip(BASE_POINTWISE, strides), start=1):
        cout = ch(cout)
        if separable:
            layers.append(Depthwise3x3(f"dw{k}", stride, weights((3, 3, cin), 9), bias(cin)))
            layers.append(Pointwise(f"pw{k}", weights((cin, cout), cin), bias(cout)))
        else:
            layers.append(Conv3x3(f"conv{k}", stride, weights((3, 3, cin, cout), 9 * cin), bias(cout)))
        cin = cout
    layers.append(AveragePool())
    if num_classes:
        layers.append(FullyConnected("fc", weights((cin, num_classes), cin) * 0.5,
                                     np.zeros(num_classes, np.float32)))
    return Network(layers, resolution, alpha=float(alpha), activation=activation, padding=padding)
