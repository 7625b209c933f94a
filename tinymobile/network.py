"""The MobileNet v1 network as data, for every dtype: a list of layers with their weights (and,
for integer models, their quantization parameters), plus the metadata a model file carries
(activation, padding, input size, preprocessing, labels, what ``predict`` applies to the logits).

Layouts are NHWC for activations. Weights (BatchNorm already folded in):

* ``Conv3x3.w``: (3, 3, Cin, Cout) HWIO, ``b``: (Cout,)
* ``Depthwise3x3.w``: (3, 3, C), ``b``: (C,)
* ``Pointwise.w``: (Cin, Cout), ``b``: (Cout,)
* ``FullyConnected.w``: (Cin, classes), ``b``: (classes,)

A float network (``dtype`` "float32") holds float32 weights. A quantized one (``dtype`` "uint8" or
"int8", the dtype of every activation) holds uint8 / int8 weights and int32 biases (scale = input
scale x weight scale), each layer a :class:`LayerQuant`, and the input's scale and zero point;
real = scale * (q - zero_point).

Every layer class has a ``kind`` (the key of :data:`LAYER_KINDS`, the registry the operators, the
references and the file format look layers up in) and knows its own output shape and cost, so no
code needs a chain of ``isinstance`` tests. Costs count multiply-adds (one per weight use) and
parameters (weights + biases).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .fixedpoint import DTYPE_RANGE, Requant

#: Output channels of the first convolution and of the 13 pointwise layers at alpha = 1.
BASE_CONV0 = 32
BASE_POINTWISE = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
#: Stride of each depthwise layer of the standard network.
STANDARD_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)

ACTIVATIONS = {"relu6": (0.0, 6.0), "relu": (0.0, float("inf"))}
PADDINGS = ("tf_same", "symmetric")
#: Activation dtypes: float32, or the integer engine's two.
DTYPES = ("float32",) + tuple(DTYPE_RANGE)
#: Global pooling before the classifier.
POOL_MODES = ("average", "max")
#: How a quantized global average pool rounds: TFLite's AVERAGE_POOL_2D (output quantization =
#: input's) or its int8 MEAN (own output quantization, one multiplier).
QUANTIZED_POOL_MODES = ("average_pool_2d", "mean")
#: What ``predict`` applies to the logits: softmax over the classes, or a sigmoid of a single
#: logit (a binary classifier: probabilities [1 - s, s]).
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")
#: Central-crop fraction of the official / TF-slim / Coral preprocessing.
SLIM_CROP = 0.875


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


@dataclass(eq=False)
class LayerQuant:
    """Quantization of one layer: weights (per channel or per tensor), output and clamp.

    ``weight_scale`` float32 and ``weight_zero_point`` int32 have length 1 (per tensor) or Cout.
    ``multiplier`` (int32 in [0, 2**31)) and ``shift`` (int32, -31..30, positive = left) are
    the fixed-point requantization factors, same length as ``weight_scale``, computed once by the
    converter (:func:`~tinymobile.fixedpoint.quantize_multipliers`; which of TFLite's two roundings
    of the scale product applies depends on the source operator).

    A pool has empty weight arrays and ``pool_mode`` (one of :data:`QUANTIZED_POOL_MODES`):
    "average_pool_2d" (output quantization = input's, empty multiplier) or "mean" (one
    multiplier/shift for input_scale / output_scale, its own output quantization).
    """
    weight_scale: np.ndarray
    weight_zero_point: np.ndarray
    output_scale: float
    output_zero_point: int
    clamp: Tuple[int, int]
    multiplier: np.ndarray = None
    shift: np.ndarray = None
    pool_mode: str = ""

    @property
    def per_channel(self) -> bool:
        return len(self.weight_scale) > 1


@dataclass(eq=False)
class Conv3x3:
    """Full 3x3 convolution, ``w`` (3, 3, Cin, Cout), ``b`` (Cout,), activation fused."""
    kind: ClassVar[str] = "conv3x3"
    weighted: ClassVar[bool] = True
    name: str
    stride: int
    w: np.ndarray
    b: np.ndarray
    quant: Optional[LayerQuant] = None

    @property
    def cin(self) -> int:
        return self.w.shape[2]

    @property
    def cout(self) -> int:
        return self.w.shape[3]

    def output_shape(self, h: int, w: int, c: int, padding: str) -> Tuple[int, int, int]:
        """(OH, OW, C) of one image's output for an (h, w, c) input."""
        return conv_output(h, self.stride, padding)[0], conv_output(w, self.stride, padding)[0], self.cout

    def macs(self, oh: int, ow: int) -> int:
        return oh * ow * self.w.size


@dataclass(eq=False)
class Depthwise3x3:
    """Depthwise 3x3 convolution, ``w`` (3, 3, C), ``b`` (C,), activation fused."""
    kind: ClassVar[str] = "depthwise3x3"
    weighted: ClassVar[bool] = True
    name: str
    stride: int
    w: np.ndarray
    b: np.ndarray
    quant: Optional[LayerQuant] = None

    @property
    def cin(self) -> int:
        return self.w.shape[2]

    cout = cin
    output_shape = Conv3x3.output_shape
    macs = Conv3x3.macs


@dataclass(eq=False)
class Pointwise:
    """1x1 convolution, ``w`` (Cin, Cout), ``b`` (Cout,), activation fused."""
    kind: ClassVar[str] = "pointwise"
    weighted: ClassVar[bool] = True
    name: str
    w: np.ndarray
    b: np.ndarray
    quant: Optional[LayerQuant] = None

    @property
    def cin(self) -> int:
        return self.w.shape[0]

    @property
    def cout(self) -> int:
        return self.w.shape[1]

    def output_shape(self, h: int, w: int, c: int, padding: str) -> Tuple[int, int, int]:
        return h, w, self.cout

    macs = Conv3x3.macs


@dataclass(eq=False)
class GlobalPool:
    """Global pool over H and W: (N, H, W, C) -> (N, C); ``mode`` "average" or "max"."""
    kind: ClassVar[str] = "global_pool"
    weighted: ClassVar[bool] = False
    name: str = "pool"
    mode: str = "average"
    quant: Optional[LayerQuant] = None

    def output_shape(self, h: int, w: int, c: int, padding: str) -> Tuple[int, int, int]:
        return 1, 1, c

    def macs(self, oh: int, ow: int) -> int:
        return 0


@dataclass(eq=False)
class FullyConnected:
    """Classifier, ``w`` (Cin, classes), ``b`` (classes,), no activation (logits out)."""
    kind: ClassVar[str] = "fully_connected"
    weighted: ClassVar[bool] = True
    name: str
    w: np.ndarray
    b: np.ndarray
    quant: Optional[LayerQuant] = None

    cin = Pointwise.cin
    cout = Pointwise.cout
    output_shape = Pointwise.output_shape
    macs = Conv3x3.macs


Layer = Union[Conv3x3, Depthwise3x3, Pointwise, GlobalPool, FullyConnected]
#: The layer-kind registry: kind name -> layer class.
LAYER_KINDS: Dict[str, type] = {cls.kind: cls for cls in (Conv3x3, Depthwise3x3, Pointwise,
                                                           GlobalPool, FullyConnected)}
#: Short names of the kinds in summaries.
_SUMMARY_KIND = {"conv3x3": "conv3x3", "depthwise3x3": "depthwise3x3", "pointwise": "pointwise",
                 "global_pool": "avgpool", "fully_connected": "fc"}


@dataclass
class LayerCost:
    """One row of :meth:`Network.summary_rows`."""
    name: str
    kind: str
    output_shape: Tuple[int, ...]
    params: int
    macs: int


def _input_size(size) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    try:
        h, w = size
    except (TypeError, ValueError):
        raise ValueError(f"input size must be an integer or (height, width), got {size!r}") from None
    return int(h), int(w)


class Network:
    """A MobileNet v1 network: its layers in execution order and the model file's metadata.

    ``input_size``: (H, W) in pixels (an int means a square input). ``input_mean`` /
    ``input_std``: the network input is (RGB - mean) / std on 0..255 RGB. ``crop``: the central
    fraction of each side the image API keeps before resizing. ``output_activation``: what
    ``predict`` applies to the logits. ``dtype``: "float32", or "uint8" / "int8" for a quantized
    network, whose input is quantized with ``input_scale`` / ``input_zero_point`` and whose layers
    each carry a :class:`LayerQuant` (``quant``, a name -> LayerQuant mapping, attaches them).
    """

    def __init__(self, layers: List[Layer], input_size: "int | Tuple[int, int]", *,
                 alpha: float = 1.0, activation: str = "relu6", padding: str = "tf_same",
                 input_mean: Optional[np.ndarray] = None, input_std: Optional[np.ndarray] = None,
                 labels: Optional[List[str]] = None, crop: float = SLIM_CROP,
                 output_activation: str = "softmax", dtype: str = "float32",
                 input_scale: float = 1.0, input_zero_point: int = 0,
                 input_dtype: Optional[str] = None,
                 quant: Optional[Mapping[str, LayerQuant]] = None):
        self.layers = layers
        self.input_size = _input_size(input_size)
        self.alpha = alpha
        self.activation = activation
        self.padding = padding
        self.input_mean = np.full(3, 127.5, np.float32) if input_mean is None else input_mean
        self.input_std = np.full(3, 127.5, np.float32) if input_std is None else input_std
        self.labels = labels
        self.crop = crop
        self.output_activation = output_activation
        self.dtype = dtype
        self.input_scale = input_scale
        self.input_zero_point = input_zero_point
        #: dtype of ``forward``'s raw input: the network's, or "uint8" for an int8 network whose
        #: TFLite source took uint8 and QUANTIZE'd it (same scale, zero point + 128: q - 128).
        self.input_dtype = input_dtype or dtype
        if quant is not None:
            for layer in layers:
                layer.quant = quant.get(layer.name)

    # ---- shape --------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        """Input height = width of a square network (ValueError for a non-square one)."""
        h, w = self.input_size
        if h != w:
            raise ValueError(f"the network's input is {h}x{w} (height x width), not square: "
                             "use input_size")
        return h

    @resolution.setter
    def resolution(self, value: int) -> None:
        self.input_size = _input_size(value)

    @property
    def clamp(self) -> Tuple[float, float]:
        """(min, max) applied after every convolution (float networks)."""
        return ACTIVATIONS[self.activation]

    @property
    def has_classifier(self) -> bool:
        return self.layers[-1].kind == "fully_connected"

    @property
    def num_outputs(self) -> int:
        """Number of logits, or of features for a model without classifier."""
        return self.layers[-1].cout if self.has_classifier else self.feature_size

    @property
    def feature_size(self) -> int:
        """Channels of the pooled feature vector."""
        c = 3
        for layer in self.layers:
            if layer.kind == "fully_connected":
                break
            c = layer.output_shape(1, 1, c, self.padding)[2]
        return c

    @property
    def pool_index(self) -> int:
        """Index of the global pool in ``layers`` (the features are its output)."""
        for i, layer in enumerate(self.layers):
            if layer.kind == "global_pool":
                return i
        raise ValueError("the network has no global pool")

    def summary_rows(self, input_size: Optional[Tuple[int, int]] = None) -> List[LayerCost]:
        """Per-layer output shape (batch 1, NHWC; (1, C) after the pool), parameter count and
        multiply-adds, for the network's input size or ``input_size`` (H, W)."""
        rows = []
        h, w = self.input_size if input_size is None else input_size
        c = 3
        for layer in self.layers:
            h, w, c = layer.output_shape(h, w, c, self.padding)
            pooled = layer.kind in ("global_pool", "fully_connected")
            params = layer.w.size + layer.b.size if layer.weighted else 0
            rows.append(LayerCost(layer.name, _SUMMARY_KIND[layer.kind],
                                  (1, c) if pooled else (1, h, w, c), params, layer.macs(h, w)))
        return rows

    # ---- quantization -------------------------------------------------------------------
    @property
    def is_quantized(self) -> bool:
        """True for the integer engine's networks (dtype uint8 / int8)."""
        return self.dtype != "float32"

    @property
    def quant(self) -> Dict[str, LayerQuant]:
        """{layer name: LayerQuant} of a quantized network (empty for a float one)."""
        return {layer.name: layer.quant for layer in self.layers if layer.quant is not None}

    @property
    def input_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of the quantized network input."""
        return float(self.input_scale), int(self.input_zero_point)

    @property
    def output_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of the last layer's output (logits, or pooled features)."""
        q = self.layers[-1].quant
        return float(q.output_scale), int(q.output_zero_point)

    def activation_quantization(self) -> List[Tuple[float, int]]:
        """(scale, zero_point) of each layer's input, in layer order."""
        out = []
        scale, zp = self.input_scale, self.input_zero_point
        for layer in self.layers:
            out.append((float(scale), int(zp)))
            scale, zp = layer.quant.output_scale, layer.quant.output_zero_point
        return out

    def requants(self) -> Dict[str, Requant]:
        """The requantization parameters of each weighted layer, expanded to one entry per
        output channel."""
        out: Dict[str, Requant] = {}
        for layer, (_, in_zp) in zip(self.layers, self.activation_quantization()):
            if not layer.weighted:
                continue
            q = layer.quant
            cout = layer.cout
            mult, shift = np.asarray(q.multiplier, np.int32), np.asarray(q.shift, np.int32)
            if len(mult) == 1:
                mult, shift = np.repeat(mult, cout), np.repeat(shift, cout)
            wzp = np.asarray(q.weight_zero_point, np.int32)
            if len(wzp) == 1:
                wzp = np.repeat(wzp, cout)
            out[layer.name] = Requant(int(in_zp), wzp, mult, shift, int(q.output_zero_point),
                                      (int(q.clamp[0]), int(q.clamp[1])), self.dtype)
        return out

    def __repr__(self) -> str:
        h, w = self.input_size
        return (f"<Network {self.dtype} alpha={self.alpha:g} input={h}x{w} "
                f"layers={len(self.layers)} outputs={self.num_outputs}>")


def mobilenet_v1(alpha: float = 1.0, resolution: "int | Tuple[int, int]" = 224,
                 num_classes: int = 1000, seed: int = 0, separable: bool = True,
                 strides: Sequence[int] = STANDARD_STRIDES, activation: str = "relu6",
                 padding: str = "tf_same") -> Network:
    """MobileNet v1 with random weights (He-style scaling, so activations stay in range).

    Channels are ``int(c * alpha)`` (at least 1). ``resolution``: an int or (H, W).
    ``separable=False`` gives the paper's full-convolution baseline: each depthwise + pointwise
    pair becomes one 3x3 convolution. ``num_classes=0`` leaves out the classifier (a feature
    extractor).
    """
    from .limits import MAX_CLASSES, MAX_MODEL_BYTES
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not 0 < alpha < float("inf"):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if min(_input_size(resolution)) < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or not 0 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be an integer in 0..{MAX_CLASSES}, got {num_classes!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    widths = [max(1, int(c * alpha)) for c in (BASE_CONV0,) + tuple(BASE_POINTWISE)]
    weights_bytes = 4 * (27 * widths[0] + (widths[-1] + 1) * num_classes + sum(
        (9 + cout) * cin if separable else 9 * cin * cout for cin, cout in zip(widths, widths[1:])))
    if weights_bytes > MAX_MODEL_BYTES:
        raise ValueError(f"alpha {alpha:g}: the model is too large ({weights_bytes:,} bytes of "
                         f"weights, more than the {MAX_MODEL_BYTES:,} a model file may hold)")
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
    layers.append(GlobalPool())
    if num_classes:
        layers.append(FullyConnected("fc", weights((cin, num_classes), cin) * 0.5,
                                     np.zeros(num_classes, np.float32)))
    return Network(layers, resolution, alpha=float(alpha), activation=activation, padding=padding)
