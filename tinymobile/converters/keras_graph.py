"""Keras model configs -> the layer chain of a MobileNet v1 with its head -> Network.

The config is the JSON a Keras model describes itself with: ``config.json`` in a ``.keras`` zip,
or the ``model_config`` attribute of a full-model ``.h5`` (``model.save('x.h5')``, Keras 2 or 3).
Models built as users build them are accepted:

* functional on ``base.output`` (``MobileNet(include_top=False)`` then a head), the whole
  ``MobileNet(include_top=True)`` (``conv_preds`` 1x1 convolution + Reshape + Activation);
* nested: ``x = base(inputs, training=False)`` (the MobileNet is one layer of the outer model) and
  ``Sequential([base, ...])`` — nested Functional / Sequential layers are expanded in place;
* before the first convolution: ``Rescaling``, ``Normalization`` and the Keras 3 ops of
  ``preprocess_input`` (``x / 127.5 - 1``), folded into the model's input normalisation (then the
  Keras model's input is raw RGB 0..255); augmentation layers that are the identity at inference
  (RandomFlip, RandomRotation, ...);
* the head: ``GlobalAveragePooling2D`` or ``GlobalMaxPooling2D``, Dropout / Reshape / Flatten
  (identities at inference), then ``Dense(n)`` or a 1x1 ``Conv2D`` with softmax, sigmoid or no
  activation, or nothing (a feature extractor).

Everything else — another layer kind, a depth multiplier other than 1, another activation, a
branch, a shared layer — is refused with a :class:`~tinymobile.errors.ModelFormatError` naming
it: a conversion that succeeds reproduces the Keras model.

The input size is the input layer's ``batch_shape`` (height, width); a model built without one
needs ``input_size`` from the caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ModelFormatError
from ..network import PADDINGS, conv_output
from .batchnorm import fold

#: Model classes whose layers are expanded in place.
_CONTAINERS = ("Functional", "Sequential", "Model")
#: Layers that are the identity at inference (Keras calls them with training=False).
_INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout",
                       "GaussianNoise", "AlphaDropout", "ActivityRegularization", "RandomFlip",
                       "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                       "RandomBrightness")
#: Keras 3 ops of an affine preprocessing step (x op constant), as functional configs name them.
_AFFINE_OPS = ("TrueDivide", "Divide", "Multiply", "Add", "Subtract")
#: Largest number of layer entries walked in one config (MobileNet v1 has ~90).
MAX_LAYERS = 10000


def _err(source: str, message: str) -> ModelFormatError:
    return ModelFormatError(f"{source}: {message}")


@dataclass
class KLayer:
    """One primitive layer of the flattened chain: Keras class name, layer name, its config, and
    the constant operand of an affine op layer (``x / 127.5``)."""
    cls: str
    name: str
    config: Dict[str, Any]
    operand: Any = None
    operand_first: bool = False


@dataclass
class Chain:
    """The flattened layer chain and the input shape found on the way (None where unknown)."""
    layers: List[KLayer] = field(default_factory=list)
    input_hw: Optional[Tuple[Optional[int], Optional[int]]] = None
    model_names: List[str] = field(default_factory=list)


# ---- config -> chain ---------------------------------------------------------------------------

def chain_from_config(config: Any, source: str) -> Chain:
    """Flatten a Keras model config (``{"class_name": "Functional", "config": {...}}``)."""
    if not isinstance(config, dict) or config.get("class_name") not in _CONTAINERS:
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise _err(source, f"the model config describes a {kind!r}, not a Keras Functional or "
                           "Sequential model")
    chain = Chain()
    _expand(config, chain, source, depth=0)
    return chain


def _layer_cfg(entry: Any, source: str) -> Tuple[str, str, Dict[str, Any]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise _err(source, "malformed layer entry in the model config")
    cfg = entry["config"]
    cls = entry.get("class_name")
    name = entry.get("name", cfg.get("name"))
    if not isinstance(cls, str) or not isinstance(name, str):
        raise _err(source, "a layer of the model config has no class name or name")
    return cls, name, cfg


def _batch_hw(cfg: Dict[str, Any]) -> Optional[Tuple[Optional[int], Optional[int]]]:
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    if isinstance(shape, list) and len(shape) == 4:
        def dim(v):
            return v if isinstance(v, int) and not isinstance(v, bool) else None
        return dim(shape[1]), dim(shape[2])
    return None


def _expand(model: Dict[str, Any], chain: Chain, source: str, depth: int) -> None:
    if depth > 8:
        raise _err(source, "models nested more than 8 deep")
    cfg = model.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise _err(source, f"model {model.get('class_name')!r} has no layer list in its config")
    if isinstance(cfg.get("name"), str):
        chain.model_names.append(cfg["name"])
    entries = cfg["layers"]
    if len(entries) > MAX_LAYERS:
        raise _err(source, f"the model config lists {len(entries)} layers")
    if model["class_name"] == "Sequential":
        ordered = entries
        if "build_input_shape" in cfg and chain.input_hw is None:
            hw = _batch_hw({"batch_shape": cfg["build_input_shape"]})
            chain.input_hw = hw
    else:
        ordered = _functional_order(cfg, entries, source)
    for entry in ordered:
        cls, name, lcfg = _layer_cfg(entry, source)
        if cls == "InputLayer":
            hw = _batch_hw(lcfg)
            if hw is not None and (chain.input_hw is None or None in chain.input_hw):
                chain.input_hw = hw
            if lcfg.get("batch_shape", [None] * 4)[-1:] not in ([3], [None]) and \
                    isinstance(lcfg.get("batch_shape"), list):
                raise _err(source, f"input layer {name!r} has shape {lcfg['batch_shape']}: "
                                   "expected RGB images (N, H, W, 3)")
            continue
        if cls in _CONTAINERS:
            _expand(entry, chain, source, depth + 1)
            continue
        layer = KLayer(cls, name, lcfg)
        if cls in _AFFINE_OPS:
            _affine_operand(entry, layer, source)
        chain.layers.append(layer)


def _history(node: Any) -> List[Tuple[str, int, int]]:
    """(layer, node index, tensor index) of every input tensor in one inbound node."""
    found: List[Tuple[str, int, int]] = []

    def walk(v, depth=0):
        if depth > 16:
            return
        if isinstance(v, dict):
            if v.get("class_name") == "__keras_tensor__":
                h = (v.get("config") or {}).get("keras_history")
                if isinstance(h, list) and len(h) == 3 and isinstance(h[0], str):
                    found.append((h[0], h[1], h[2]))
                return
            for x in v.values():
                walk(x, depth + 1)
        elif isinstance(v, list):
            # Keras 2: [layer name, node index, tensor index, kwargs]
            if len(v) in (3, 4) and isinstance(v[0], str) and isinstance(v[1], int) \
                    and isinstance(v[2], int):
                found.append((v[0], v[1], v[2]))
                return
            for x in v:
                walk(x, depth + 1)

    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        walk(node.get("args"))
    else:
        walk(node)
    return found


def _inbound(entry: Dict[str, Any], source: str) -> Optional[str]:
    """The one layer feeding ``entry`` (None for an input layer)."""
    nodes = entry.get("inbound_nodes") or []
    name = entry.get("name") or entry["config"].get("name")
    if not isinstance(nodes, list):
        raise _err(source, f"layer {name!r}: malformed inbound nodes")
    if len(nodes) > 1:
        raise _err(source, f"layer {name!r} is called {len(nodes)} times (a shared layer): "
                           "not supported")
    if not nodes:
        return None
    inputs = _history(nodes[0])
    if len(inputs) != 1:
        raise _err(source, f"layer {name!r} ({entry.get('class_name')}) takes {len(inputs)} "
                           "inputs: tinymobile converts a single chain of layers only")
    return inputs[0][0]


def _endpoints(value: Any) -> List[str]:
    """Names in input_layers / output_layers: [[name, 0, 0], ...] or [name, 0, 0]."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value[0]]
    if isinstance(value, list):
        return [v[0] for v in value if isinstance(v, list) and v and isinstance(v[0], str)]
    return []


def _functional_order(cfg: Dict[str, Any], entries: List[Any], source: str) -> List[Any]:
    """The entries of a functional model in chain order, from its input to its output."""
    by_name: Dict[str, Any] = {}
    consumers: Dict[str, List[str]] = {}
    for entry in entries:
        _, name, _ = _layer_cfg(entry, source)
        if name in by_name:
            raise _err(source, f"two layers are named {name!r}")
        by_name[name] = entry
    for name, entry in by_name.items():
        parent = _inbound(entry, source)
        if parent is not None:
            if parent not in by_name:
                raise _err(source, f"layer {name!r} reads {parent!r}, which is not in the model")
            consumers.setdefault(parent, []).append(name)
    inputs = _endpoints(cfg.get("input_layers"))
    outputs = _endpoints(cfg.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise _err(source, f"the model has {len(inputs)} inputs and {len(outputs)} outputs: "
                           "expected one image input and one output")
    if inputs[0] not in by_name:
        raise _err(source, f"input layer {inputs[0]!r} is not in the model")
    order = [by_name[inputs[0]]]
    cur = inputs[0]
    while consumers.get(cur):
        nxt = consumers[cur]
        if len(nxt) > 1 and cur != outputs[0]:
            raise _err(source, f"the output of layer {cur!r} feeds {len(nxt)} layers "
                               f"({', '.join(nxt)}): tinymobile converts a single chain only")
        if cur == outputs[0]:
            break
        cur = nxt[0]
        order.append(by_name[cur])
        if len(order) > len(by_name):
            raise _err(source, "the layer graph has a cycle")
    if cur != outputs[0]:
        raise _err(source, f"the layer chain from the input ends at {cur!r}, not at the model "
                           f"output {outputs[0]!r}")
    return order


def _constant(value: Any) -> Any:
    """A constant of a Keras config: NumPy arrays and tensors are serialized by Keras 3 as
    ``{"class_name": "__numpy__" | "__tensor__", "config": {"value": [...], "dtype": ...}}``;
    those give their value, anything else is returned as it is."""
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__") \
            and isinstance(value.get("config"), dict):
        return value["config"].get("value")
    return value


def _affine_operand(entry: Dict[str, Any], layer: KLayer, source: str) -> None:
    """The constant of ``x op c`` / ``c op x`` in a Keras 3 functional op node."""
    nodes = entry.get("inbound_nodes") or []
    args = nodes[0].get("args") if nodes and isinstance(nodes[0], dict) else None
    if not isinstance(args, list) or len(args) != 2:
        raise _err(source, f"op {layer.name!r} ({layer.cls}): expected a tensor and a constant")
    tensor_first = isinstance(args[0], dict) and args[0].get("class_name") == "__keras_tensor__"
    const = _constant(args[1] if tensor_first else args[0])
    try:
        value = np.asarray(const, np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.dtype.kind != "f" or value.size not in (1, 3) or \
            not np.isfinite(value).all():
        raise _err(source, f"op {layer.name!r} ({layer.cls}) with operand {const!r}: only a "
                           "number or 3 per-channel numbers are supported")
    layer.operand = value.reshape(-1)
    layer.operand_first = not tensor_first


# ---- chain -> network --------------------------------------------------------------------------

@dataclass
class _Pending:
    """A convolution waiting for its BatchNorm and activation."""
    kind: str                  # "conv3x3", "depthwise", "pointwise"
    layer: KLayer
    w: np.ndarray              # float64, output channel last
    b: Optional[np.ndarray]
    stride: int = 1
    bn: bool = False
    act: Optional[str] = None


@dataclass
class Built:
    """What :func:`build` makes of a chain: the layers (network.py classes) and the metadata."""
    layers: list
    input_size: Tuple[int, int]
    activation: str
    padding: str
    pool_mode: str
    output_activation: str
    input_mean: np.ndarray
    input_std: np.ndarray
    preprocessing: bool  # the model normalises its own input (raw RGB in)


class _Builder:
    """Turn a flattened Keras chain plus weights ({layer name: [arrays]}) into layers."""

    def __init__(self, chain: Chain, weights: Dict[str, List[np.ndarray]], source: str,
                 input_size: Optional[Tuple[int, int]]):
        from ..network import Conv3x3, Depthwise3x3, FullyConnected, Pointwise
        self.Conv3x3, self.Depthwise3x3 = Conv3x3, Depthwise3x3
        self.Pointwise, self.FullyConnected = Pointwise, FullyConnected
        self.chain, self.weights, self.src = chain, weights, source
        hw = chain.input_hw
        if input_size is not None:
            self.size = tuple(int(v) for v in input_size)
        elif hw is not None and None not in hw:
            self.size = (int(hw[0]), int(hw[1]))
        else:
            raise _err(source, "the model's input layer has no fixed height and width (built "
                               "with input_shape=(None, None, 3)): give the input size "
                               "(--resolution H or HxW)")
        self.input_size = self.size
        self.layers: list = []
        self.stage = "pre"          # -> "body" -> "pooled" -> "classified"
        self.channels = 3
        # Preprocessing: keras input x -> a * x + b per channel before the first convolution.
        self.scale = np.ones(3, np.float64)
        self.offset = np.zeros(3, np.float64)
        self.preprocessing = False
        self.pending = None          # the last convolution waiting for BN / activation
        self.acts: List[str] = []
        self.pad_modes = set(PADDINGS)
        self.pending_pad: Optional[Tuple[int, int, int, int]] = None
        self.pool_mode = ""
        self.output_activation = "softmax"
        self.head_activation: Optional[str] = None

    # ------------------------------------------------------------------------------------
    def error(self, layer: KLayer, message: str) -> ModelFormatError:
        return _err(self.src, f"layer {layer.name!r} ({layer.cls}): {message}")

    def run(self) -> Built:
        for layer in self.chain.layers:
            self.step(layer)
        self.close_conv()
        if not self.layers:
            raise _err(self.src, "the model has no convolution: not a MobileNet v1")
        if self.stage == "body":
            raise _err(self.src, "the model ends in a feature map (include_top=False without "
                                 "pooling): tinymobile's models end in a global pool; build it "
                                 "with pooling='avg' or 'max', or add GlobalAveragePooling2D")
        acts = set(self.acts)
        if len(acts) != 1:
            raise _err(self.src, f"the convolutions use activations {sorted(acts)}: tinymobile "
                                 "needs the same ReLU6 or ReLU after every convolution")
        head = self.layers[-1]
        if isinstance(head, self.FullyConnected):
            n = head.cout
            act = self.head_activation or "linear"
            if act == "sigmoid" and n != 1:
                raise _err(self.src, f"a sigmoid over {n} outputs (a multi-label head) is not "
                                     "supported: tinymobile's sigmoid models have one output")
            if act == "sigmoid" or (act == "linear" and n == 1):
                self.output_activation = "sigmoid"
        mean = -self.offset / self.scale + 0.0
        std = 1.0 / self.scale
        if self.preprocessing:
            if (self.scale <= 0).any():
                raise _err(self.src, f"input scaling {self.scale.tolist()} is not positive: "
                                     "not supported")
        else:
            mean, std = np.full(3, 127.5), np.full(3, 127.5)
        return Built(self.layers, self.input_size, acts.pop(),
                     "tf_same" if "tf_same" in self.pad_modes else "symmetric",
                     self.pool_mode, self.output_activation,
                     mean.astype(np.float32), std.astype(np.float32), self.preprocessing)

    def step(self, layer: KLayer) -> None:
        cls, cfg = layer.cls, layer.config
        fmt = cfg.get("data_format", "channels_last")
        if fmt not in (None, "channels_last"):
            raise self.error(layer, f"data_format {fmt!r}: only channels_last is supported")
        if cls in _INFERENCE_IDENTITY:
            return
        if cls in ("Rescaling", "Normalization") or cls in _AFFINE_OPS:
            return self.preprocess(layer)
        if cls == "ZeroPadding2D":
            return self.zero_pad(layer)
        if cls == "Conv2D":
            return self.conv(layer)
        if cls == "DepthwiseConv2D":
            return self.depthwise(layer)
        if cls == "BatchNormalization":
            return self.batchnorm(layer)
        if cls in ("ReLU", "Activation", "Softmax"):
            return self.activation(layer)
        if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            return self.pool(layer, "average" if cls == "GlobalAveragePooling2D" else "max")
        if cls in ("Reshape", "Flatten"):
            return self.reshape(layer)
        if cls == "Dense":
            return self.dense(layer)
        if cls in ("SeparableConv2D", "Conv2DTranspose", "DepthwiseConv1D"):
            raise self.error(layer, "this convolution kind is not part of MobileNet v1")
        raise self.error(layer, "this layer kind is not supported (tinymobile converts "
                                "MobileNet v1 bodies with a pooling + Dense head)")

    # ---- weights -----------------------------------------------------------------------
    def get(self, layer: KLayer, n: int) -> List[np.ndarray]:
        ws = self.weights.get(layer.name)
        if ws is None or len(ws) != n:
            have = "none" if ws is None else f"{len(ws)}"
            raise self.error(layer, f"expected {n} weight arrays in the file, found {have}")
        return [np.asarray(w) for w in ws]

    # ---- preprocessing -----------------------------------------------------------------
    def preprocess(self, layer: KLayer) -> None:
        if self.stage != "pre":
            raise self.error(layer, "preprocessing after the first convolution is not supported")
        cfg = layer.config
        if layer.cls == "Rescaling":
            a = np.asarray(_constant(cfg.get("scale", 1.0)), np.float64).reshape(-1)
            b = np.asarray(_constant(cfg.get("offset", 0.0)), np.float64).reshape(-1)
        elif layer.cls == "Normalization":
            if cfg.get("invert"):
                raise self.error(layer, "an inverted Normalization is not supported")
            axis = cfg.get("axis", -1)
            if axis not in (-1, 3, [-1], [3]):
                raise self.error(layer, f"normalisation over axis {axis}: only the channel "
                                        "axis is supported")
            mean, var = _constant(cfg.get("mean")), _constant(cfg.get("variance"))
            if mean is None or var is None:
                ws = self.weights.get(layer.name) or []
                if len(ws) < 2:
                    raise self.error(layer, "its mean and variance are neither in the config nor "
                                            "in the weights")
                mean, var = ws[0], ws[1]
            mean = np.asarray(mean, np.float64).reshape(-1)
            var = np.asarray(var, np.float64).reshape(-1)
            std = np.maximum(np.sqrt(np.maximum(var, 0.0)), 1e-7)  # Keras: max(sqrt(var), epsilon)
            a, b = 1.0 / std, -mean / std
        else:
            c = layer.operand
            if layer.cls in ("TrueDivide", "Divide"):
                if layer.operand_first:
                    raise self.error(layer, "a constant divided by the image is not affine")
                a, b = 1.0 / c, np.zeros(1)
            elif layer.cls == "Multiply":
                a, b = c, np.zeros(1)
            elif layer.cls == "Add":
                a, b = np.ones(1), c
            else:  # Subtract
                a, b = (-np.ones(1), c) if layer.operand_first else (np.ones(1), -c)
        if a.size not in (1, 3) or b.size not in (1, 3) or not np.isfinite(a).all() \
                or not np.isfinite(b).all():
            raise self.error(layer, f"scale {a.tolist()} / offset {b.tolist()}: expected a number "
                                    "or 3 per-channel numbers")
        if self.pending_pad is not None and (b != 0).any():
            # the border ZeroPadding2D added is 0 in the input's units; an offset after it makes
            # the border b, where the folded normalisation (applied before padding) leaves 0
            raise self.error(layer, "an offset after ZeroPadding2D (the padded border would be "
                                    "shifted too): not supported; normalise before padding")
        # y = a * (scale * x + offset) + b
        self.scale, self.offset = self.scale * a, self.offset * a + b
        self.preprocessing = True

    # ---- body --------------------------------------------------------------------------
    def zero_pad(self, layer: KLayer) -> None:
        if self.stage not in ("pre", "body") or self.pending_pad is not None:
            raise self.error(layer, "zero padding at an unexpected place")
        p = layer.config.get("padding")
        try:
            if isinstance(p, int):
                pads = (p, p, p, p)
            else:
                (t, b), (l, r) = [(v, v) if isinstance(v, int) else tuple(v) for v in p]
                pads = (int(t), int(b), int(l), int(r))
        except (TypeError, ValueError):
            raise self.error(layer, f"padding {p!r} is not understood") from None
        if min(pads) < 0 or max(pads) > 2:
            raise self.error(layer, f"padding {p!r}: only 0..2 pixels are supported")
        self.close_conv()
        self.pending_pad = pads

    def conv_options(self, layer: KLayer, kernel: Tuple[int, int]) -> int:
        cfg = layer.config
        ks = tuple(cfg.get("kernel_size", kernel))
        if ks != kernel:
            raise self.error(layer, f"kernel size {ks}, expected {kernel}")
        strides = tuple(cfg.get("strides", (1, 1)))
        if strides not in ((1, 1), (2, 2)):
            raise self.error(layer, f"strides {strides}: only 1x1 and 2x2 are supported")
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise self.error(layer, "dilated convolutions are not supported")
        if cfg.get("groups", 1) != 1:
            raise self.error(layer, f"grouped convolution (groups={cfg['groups']}) is not supported")
        return strides[0]

    def spatial(self, layer: KLayer, stride: int) -> None:
        """Check this 3x3 layer's padding against tf_same / symmetric, advance the size."""
        padding = layer.config.get("padding", "valid")
        out_hw, lead_hw = [], []
        pad = self.pending_pad
        self.pending_pad = None
        for axis, size in enumerate(self.size):
            if pad is not None:
                if padding != "valid":
                    raise self.error(layer, "explicit zero padding followed by 'same' padding is "
                                            "not supported")
                lo, hi = pad[2 * axis], pad[2 * axis + 1]
                out, lead = (size + lo + hi - 3) // stride + 1, lo
            elif padding == "same":
                out, lead = conv_output(size, stride, "tf_same")
            elif padding == "valid":
                out, lead = (size - 3) // stride + 1, 0
            else:
                raise self.error(layer, f"padding {padding!r} is not supported")
            modes = {p for p in PADDINGS if conv_output(size, stride, p) == (out, lead)}
            if not modes:
                raise self.error(layer, f"its padding (input {size}, stride {stride}, output "
                                        f"{out}, leading pad {lead}) is neither TensorFlow SAME "
                                        "nor symmetric: not supported")
            if not modes & self.pad_modes:
                raise self.error(layer, "the layers mix TensorFlow SAME and symmetric padding: "
                                        "not supported")
            self.pad_modes &= modes
            out_hw.append(out)
        if min(out_hw) < 1:
            raise self.error(layer, f"the input {self.input_size[0]}x{self.input_size[1]} is too "
                                    "small for this network")
        self.size = tuple(out_hw)

    def conv(self, layer: KLayer) -> None:
        if self.stage in ("pooled",):
            return self.classifier_conv(layer)
        if self.stage not in ("pre", "body"):
            raise self.error(layer, "a convolution after the classifier")
        cfg = layer.config
        use_bias = bool(cfg.get("use_bias", True))
        ws = self.get(layer, 2 if use_bias else 1)
        kernel = ws[0]
        if kernel.ndim != 4:
            raise self.error(layer, f"kernel of shape {kernel.shape}")
        kh, kw, cin, cout = kernel.shape
        if cin != self.channels:
            raise self.error(layer, f"reads {cin} channels, the previous layer gives {self.channels}")
        bias = ws[1] if use_bias else None
        self.close_conv()
        if (kh, kw) == (3, 3):
            if self.layers:
                raise self.error(layer, "a full 3x3 convolution after the first layer: not a "
                                        "separable MobileNet v1")
            stride = self.conv_options(layer, (3, 3))
            if stride != 2:
                raise self.error(layer, f"the first convolution has stride {stride}, expected 2")
            self.spatial(layer, stride)
            self.pending = _Pending("conv3x3", layer, kernel.astype(np.float64), bias, stride)
        elif (kh, kw) == (1, 1):
            if not self.layers or not isinstance(self.layers[-1], self.Depthwise3x3):
                raise self.error(layer, "a 1x1 convolution that does not follow a depthwise layer")
            if self.conv_options(layer, (1, 1)) != 1:
                raise self.error(layer, "strided 1x1 convolution is not supported")
            if self.pending_pad is not None:
                raise self.error(layer, "padding before a 1x1 convolution is not supported")
            self.pending = _Pending("pointwise", layer, kernel[0, 0].astype(np.float64), bias)
        else:
            raise self.error(layer, f"a {kh}x{kw} convolution is not part of MobileNet v1")
        self.channels = cout
        self.stage = "body"
        self.fused(layer)

    def depthwise(self, layer: KLayer) -> None:
        if self.stage != "body" or not self.layers and self.pending is None:
            raise self.error(layer, "a depthwise layer at an unexpected place")
        cfg = layer.config
        mult = cfg.get("depth_multiplier", 1)
        if mult != 1:
            raise self.error(layer, f"depth multiplier {mult}: tinymobile runs depthwise layers "
                                    "with depth multiplier 1 only")
        use_bias = bool(cfg.get("use_bias", True))
        ws = self.get(layer, 2 if use_bias else 1)
        kernel = ws[0]
        if kernel.shape != (3, 3, self.channels, 1):
            raise self.error(layer, f"depthwise kernel of shape {kernel.shape}, expected "
                                    f"(3, 3, {self.channels}, 1)")
        self.close_conv()
        if isinstance(self.layers[-1], self.Depthwise3x3):
            raise self.error(layer, "two depthwise layers in a row: not a MobileNet v1")
        stride = self.conv_options(layer, (3, 3))
        self.spatial(layer, stride)
        self.pending = _Pending("depthwise", layer, kernel[:, :, :, 0].astype(np.float64),
                                ws[1] if use_bias else None, stride)
        self.fused(layer)

    def fused(self, layer: KLayer) -> None:
        act = layer.config.get("activation", "linear")
        if act in (None, "linear"):
            return
        if act in ("relu", "relu6"):
            self.pending.act = act
            return
        raise self.error(layer, f"activation {act!r} is not supported (ReLU or ReLU6 only)")

    def batchnorm(self, layer: KLayer) -> None:
        if self.pending is None or self.pending.bn or self.pending.act is not None:
            raise self.error(layer, "BatchNormalization that does not directly follow a "
                                    "convolution is not supported")
        cfg = layer.config
        axis = cfg.get("axis", -1)
        if axis not in (-1, 3, [-1], [3]):
            raise self.error(layer, f"BatchNormalization over axis {axis}: only the channel axis "
                                    "is supported")
        center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
        ws = self.get(layer, 2 + center + scale)
        c = self.channels
        gamma = ws.pop(0) if scale else np.ones(c)
        beta = ws.pop(0) if center else np.zeros(c)
        mean, var = ws
        eps = float(cfg.get("epsilon", 1e-3))
        if any(np.shape(v) != (c,) for v in (gamma, beta, mean, var)):
            raise self.error(layer, f"BatchNorm weights of shapes "
                                    f"{[np.shape(v) for v in (gamma, beta, mean, var)]}, expected ({c},)")
        p = self.pending
        w2, b2 = fold(p.w, gamma, beta, mean, var, eps=eps, bias=p.b)
        p.w, p.b, p.bn = w2.astype(np.float64), b2.astype(np.float64), True

    def activation(self, layer: KLayer) -> None:
        cfg = layer.config
        if layer.cls == "ReLU":
            mx, slope, thr = cfg.get("max_value"), cfg.get("negative_slope", 0.0), cfg.get("threshold", 0.0)
            if slope or thr:
                raise self.error(layer, f"ReLU with negative_slope {slope} / threshold {thr} is "
                                        "not supported")
            if mx is None:
                act = "relu"
            elif float(mx) == 6.0:
                act = "relu6"
            else:
                raise self.error(layer, f"ReLU capped at {mx}: only ReLU and ReLU6 are supported")
        elif layer.cls == "Softmax":
            if cfg.get("axis", -1) not in (-1, 1, [-1]):
                raise self.error(layer, "softmax over another axis than the classes")
            act = "softmax"
        else:
            act = cfg.get("activation")
        if self.stage in ("pooled", "classified"):
            return self.head_act(layer, act)
        if act in ("linear", None):
            return
        if act not in ("relu", "relu6") or self.pending is None:
            raise self.error(layer, f"activation {act!r} is not supported here (ReLU or ReLU6 "
                                    "after each convolution)")
        if self.pending.act is not None:
            raise self.error(layer, "two activations after one convolution")
        self.pending.act = act
        self.close_conv()

    def close_conv(self) -> None:
        """Emit the pending convolution (with its folded BatchNorm and activation)."""
        if self.pending is None:
            return
        p = self.pending
        if p.act is None:
            raise self.error(p.layer, "a convolution without ReLU / ReLU6 after it: tinymobile "
                                      "needs the same activation after every convolution")
        self.acts.append(p.act)
        cout = p.w.shape[-1]
        b = np.zeros(cout) if p.b is None else np.asarray(p.b, np.float64)
        if b.shape != (cout,):
            raise self.error(p.layer, f"bias of shape {b.shape}, expected ({cout},)")
        w32, b32 = np.ascontiguousarray(p.w, np.float32), b.astype(np.float32)
        if p.kind == "conv3x3":
            self.layers.append(self.Conv3x3("conv0", 2, w32, b32))
        elif p.kind == "depthwise":
            k = sum(isinstance(l, self.Depthwise3x3) for l in self.layers) + 1
            self.layers.append(self.Depthwise3x3(f"dw{k}", p.stride, w32, b32))
        else:
            k = sum(isinstance(l, self.Depthwise3x3) for l in self.layers)
            self.layers.append(self.Pointwise(f"pw{k}", w32, b32))
        self.pending = None

    # ---- head --------------------------------------------------------------------------
    def pool(self, layer: KLayer, mode: str) -> None:
        self.close_conv()
        if self.stage != "body" or self.pending_pad is not None:
            raise self.error(layer, "pooling at an unexpected place")
        if not isinstance(self.layers[-1], self.Pointwise):
            raise self.error(layer, "pooling before the last 1x1 convolution")
        from ..network import GlobalPool
        self.layers.append(GlobalPool("pool", mode))
        self.pool_mode = mode
        self.stage = "pooled"

    def reshape(self, layer: KLayer) -> None:
        if self.stage not in ("pooled", "classified"):
            raise self.error(layer, "reshaping the feature map before the global pool is not "
                                    "supported")
        if layer.cls == "Reshape":
            target = layer.config.get("target_shape")
            n = self.channels
            if not isinstance(target, list) or int(np.prod([abs(int(t)) for t in target])) != n \
                    or target[-1] not in (n, -1):
                raise self.error(layer, f"target shape {target} for {n} values")

    def dense(self, layer: KLayer) -> None:
        if self.stage != "pooled":
            what = ("a second Dense layer (a hidden layer in the head) is not supported"
                    if self.stage == "classified" else
                    "a Dense layer before the global pool is not supported")
            raise self.error(layer, what)
        cfg = layer.config
        use_bias = bool(cfg.get("use_bias", True))
        ws = self.get(layer, 2 if use_bias else 1)
        kernel = ws[0]
        if kernel.ndim != 2 or kernel.shape[0] != self.channels:
            raise self.error(layer, f"kernel of shape {kernel.shape} for {self.channels} features")
        self.classifier(layer, kernel, ws[1] if use_bias else None)

    def classifier_conv(self, layer: KLayer) -> None:
        cfg = layer.config
        use_bias = bool(cfg.get("use_bias", True))
        ws = self.get(layer, 2 if use_bias else 1)
        kernel = ws[0]
        if kernel.shape[:2] != (1, 1) or kernel.ndim != 4 or kernel.shape[2] != self.channels:
            raise self.error(layer, f"classifier kernel of shape {kernel.shape}, expected "
                                    f"(1, 1, {self.channels}, classes)")
        if self.conv_options(layer, (1, 1)) != 1:
            raise self.error(layer, "strided classifier convolution")
        self.classifier(layer, kernel[0, 0], ws[1] if use_bias else None)

    def classifier(self, layer: KLayer, kernel: np.ndarray, bias) -> None:
        n = kernel.shape[1]
        b = np.zeros(n, np.float32) if bias is None else np.asarray(bias, np.float32)
        if b.shape != (n,):
            raise self.error(layer, f"bias of shape {b.shape}, expected ({n},)")
        self.layers.append(self.FullyConnected("fc", np.ascontiguousarray(kernel, np.float32), b))
        self.channels = n
        self.stage = "classified"
        self.head_act(layer, layer.config.get("activation", "linear"))

    def head_act(self, layer: KLayer, act) -> None:
        if act in (None, "linear"):
            return
        if self.stage != "classified":
            raise self.error(layer, f"activation {act!r} on the pooled features is not supported")
        if self.head_activation not in (None, "linear"):
            raise self.error(layer, f"{act} after {self.head_activation}: not supported")
        if act not in ("softmax", "sigmoid"):
            raise self.error(layer, f"classifier activation {act!r} is not supported (softmax, "
                                    "sigmoid or none)")
        self.head_activation = act


def build(chain: Chain, weights: Dict[str, List[np.ndarray]], source: str,
          input_size: Optional[Tuple[int, int]] = None) -> Built:
    """The layers and metadata of a flattened Keras chain (see the module docstring)."""
    try:
        return _Builder(chain, weights, source, input_size).run()
    except ModelFormatError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:
        raise _err(source, f"unexpected model config or weights ({type(e).__name__}: {e})") from None


def to_network(config: Any, weights: Dict[str, List[np.ndarray]], source: str,
               input_size=None):
    """The float Network of a Keras model config and its weights ({layer name: [arrays]}).

    ``input_size``: an int or (H, W) overriding the config's input shape (needed when the model
    was built without a fixed one)."""
    from ..network import Network
    from .netbuild import alpha_of
    chain = chain_from_config(config, source)
    if isinstance(input_size, (int, np.integer)):
        input_size = (int(input_size), int(input_size))
    built = build(chain, weights, source, input_size)
    net = Network(built.layers, built.input_size, alpha=alpha_of(built.layers),
                  activation=built.activation, padding=built.padding,
                  input_mean=built.input_mean, input_std=built.input_std,
                  output_activation=built.output_activation)
    net.normalisation_assumed = not built.preprocessing
    hw = chain.input_hw
    if input_size is not None and hw is not None and None not in hw and \
            tuple(int(v) for v in hw) != tuple(net.input_size):
        net.recorded_input_size = (int(hw[0]), int(hw[1]))  # for convert's note
    return net
