"""Structural checks of a :class:`~tinymobile.network.Network` (any dtype) before any C kernel
sees it.

Every source of networks (model files, the TFLite / Keras converters, the quantizer, user code)
goes through :func:`check_network` when a runner is built: the C operators trust the shapes and
quantization parameters they are given, so a weight array whose shape disagrees with the channel
chain would make them read or write out of bounds. Problems raise
:class:`~tinymobile.errors.ModelFormatError` naming the layer.
"""
from __future__ import annotations

import numpy as np

from .errors import ModelFormatError
from .fixedpoint import DTYPE_RANGE
from .limits import MAX_ACTIVATION_BYTES, MAX_INPUT_SIZE, MAX_LAYERS, MAX_NAME_CHARS
from .network import (ACTIVATIONS, DTYPES, LAYER_KINDS, OUTPUT_ACTIVATIONS, PADDINGS, POOL_MODES,
                      QUANTIZED_POOL_MODES, Network)

#: Pool modes the engine runs today, per dtype (the others are refused by name).
RUNNABLE_POOLS = {"float32": ("average", "max"), "uint8": ("average",), "int8": ("average",)}


def _weights(layer, name: str, shape, kinds: str) -> None:
    a = getattr(layer, name)
    if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds:
        what = "a floating-point" if kinds == "f" else "an integer"
        raise ModelFormatError(f"layer {layer.name!r}: {name} must be {what} NumPy array, "
                               f"got {type(a).__name__} {getattr(a, 'dtype', '')}")
    if a.shape != tuple(shape):
        raise ModelFormatError(f"layer {layer.name!r}: {name} has shape {a.shape}, expected {tuple(shape)}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ModelFormatError(f"layer {layer.name!r}: {name} contains NaN or infinity")


def _positive(layer, what: str, value) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ModelFormatError(f"layer {layer.name!r}: {what} must be a positive integer, got {value!r}")


def _check_metadata(network: Network) -> None:
    size = network.input_size
    if (not isinstance(size, tuple) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and 1 <= s <= MAX_INPUT_SIZE for s in size)):
        raise ModelFormatError(f"input size (resolution) must be (height, width) integers in "
                               f"1..{MAX_INPUT_SIZE}, got {size!r}")
    if network.dtype not in DTYPES:
        raise ModelFormatError(f"dtype {network.dtype!r} is not one of {list(DTYPES)}")
    input_dtype = getattr(network, "input_dtype", network.dtype)
    if input_dtype != network.dtype and (network.dtype, input_dtype) != ("int8", "uint8"):
        raise ModelFormatError(f"a {network.dtype} network cannot take {input_dtype!r} input "
                               "(only an int8 network may take uint8 input, as q - 128)")
    if network.activation not in ACTIVATIONS:
        raise ModelFormatError(f"activation {network.activation!r} is not one of {sorted(ACTIVATIONS)}")
    if network.padding not in PADDINGS:
        raise ModelFormatError(f"padding {network.padding!r} is not one of {list(PADDINGS)}")
    if network.output_activation not in OUTPUT_ACTIVATIONS:
        raise ModelFormatError(f"output activation {network.output_activation!r} is not one of "
                               f"{list(OUTPUT_ACTIVATIONS)}")
    crop = network.crop
    if not isinstance(crop, (float, int, np.floating, np.integer)) or not 0 < crop <= 1:
        raise ModelFormatError(f"crop must be a fraction in (0, 1], got {crop!r}")
    for name in ("input_mean", "input_std"):
        v = np.asarray(getattr(network, name))
        if v.shape != (3,) or v.dtype.kind not in "iuf" or not np.isfinite(v).all():
            raise ModelFormatError(f"{name} must be 3 finite numbers, got {v!r}")
    if not (np.asarray(network.input_std) != 0).all():
        raise ModelFormatError("input_std contains zero")


def check_network(network: Network) -> None:
    """Raise ModelFormatError unless ``network`` is a chain the C operators can run safely:
    Conv3x3 / Depthwise3x3 / Pointwise layers, one global pool, then at most one FullyConnected,
    every weight of the exact shape the channel chain implies (float32 and finite for a float
    network; integer weights, int32 biases and valid quantization parameters for a quantized one),
    and activations of one image within MAX_ACTIVATION_BYTES; the network's dtype decides which
    weight types are allowed."""
    _check_metadata(network)
    kinds = "f" if network.dtype == "float32" else "iu"
    layers = network.layers
    if not 2 <= len(layers) <= MAX_LAYERS:
        raise ModelFormatError(f"a network has 2..{MAX_LAYERS} layers, got {len(layers)}")
    h, w = network.input_size
    c = 3
    pooled = False
    for i, layer in enumerate(layers):
        kind = getattr(layer, "kind", None)
        if LAYER_KINDS.get(kind) is not type(layer):
            raise ModelFormatError(f"layer {i} is a {type(layer).__name__}, which the engine does not run")
        if pooled and not (kind == "fully_connected" and i == len(layers) - 1):
            raise ModelFormatError(f"layer {layer.name!r}: only one fully connected layer may "
                                   "follow the global pool")
        if kind in ("conv3x3", "depthwise3x3"):
            if layer.stride not in (1, 2):
                raise ModelFormatError(f"layer {layer.name!r}: stride must be 1 or 2, got {layer.stride!r}")
            if kind == "conv3x3":
                _positive(layer, "output channels", layer.w.shape[-1] if np.ndim(layer.w) == 4 else 0)
                cout = layer.w.shape[3]
                _weights(layer, "w", (3, 3, c, cout), kinds)
            else:
                cout = c
                _weights(layer, "w", (3, 3, c), kinds)
            _weights(layer, "b", (cout,), kinds)
        elif kind in ("pointwise", "fully_connected"):
            if kind == "fully_connected" and not pooled:
                raise ModelFormatError(f"layer {layer.name!r}: the fully connected layer must follow "
                                       "the global pool")
            _positive(layer, "output channels", layer.w.shape[-1] if np.ndim(layer.w) == 2 else 0)
            cout = layer.w.shape[1]
            _weights(layer, "w", (c, cout), kinds)
            _weights(layer, "b", (cout,), kinds)
        else:  # global_pool
            if i == 0:
                raise ModelFormatError("the network cannot start with the global pool")
            if layer.mode not in POOL_MODES:
                raise ModelFormatError(f"layer {layer.name!r}: pool mode {layer.mode!r} is not one "
                                       f"of {list(POOL_MODES)}")
            if layer.mode not in RUNNABLE_POOLS[network.dtype]:
                raise ModelFormatError(f"layer {layer.name!r}: global {layer.mode} pooling is not "
                                       f"supported for {network.dtype} models")
            pooled = True
        h, w, c = layer.output_shape(h, w, c, network.padding)
        nbytes = 4.0 * h * w * c  # float32; quantized activations are smaller
        if nbytes > MAX_ACTIVATION_BYTES:
            raise ModelFormatError(f"layer {layer.name!r} would need a (1, {h}, {w}, {c}) activation "
                                   f"({nbytes:,.0f} bytes per image, more than {MAX_ACTIVATION_BYTES:,})")
    if not pooled:
        raise ModelFormatError("the network has no global pool")
    if network.output_activation == "sigmoid" and network.num_outputs != 1:
        raise ModelFormatError(f"a sigmoid output needs exactly one logit, got {network.num_outputs}")
    if network.labels is not None:
        n_labels = 2 if network.output_activation == "sigmoid" else c
        if (len(network.labels) != n_labels or not all(isinstance(s, str) for s in network.labels)
                or any(len(s) > MAX_NAME_CHARS for s in network.labels)):
            raise ModelFormatError(f"labels must be {n_labels} strings of at most {MAX_NAME_CHARS} "
                                   f"characters, got {len(network.labels)} entries")
    if network.is_quantized:
        check_quantization(network)
    elif any(layer.quant is not None for layer in layers):
        raise ModelFormatError("a float32 network's layers carry quantization parameters")


def check_quantization(network: Network) -> None:
    """The quantization parameters of a quantized network: dtypes, per-layer lengths and ranges.
    Raises ModelFormatError naming the layer (the shapes are :func:`check_network`'s)."""
    def fail(layer, why):
        return ModelFormatError(f"layer {layer.name!r}: {why}")

    qmin, qmax = DTYPE_RANGE[network.dtype]
    if not qmin <= network.input_zero_point <= qmax:
        raise ModelFormatError(f"input zero point {network.input_zero_point} is outside {qmin}..{qmax}")
    if not (np.isfinite(network.input_scale) and network.input_scale > 0):
        raise ModelFormatError(f"input scale {network.input_scale} must be positive")
    for layer in network.layers:
        q = layer.quant
        if q is None:
            raise fail(layer, "has no quantization parameters")
        lo, hi = q.clamp
        if not qmin <= lo <= hi <= qmax:
            raise fail(layer, f"clamp {q.clamp} is not inside {qmin}..{qmax}")
        if not (np.isfinite(q.output_scale) and q.output_scale > 0):
            raise fail(layer, f"output scale {q.output_scale} must be positive")
        if not qmin <= q.output_zero_point <= qmax:
            raise fail(layer, f"output zero point {q.output_zero_point} is outside {qmin}..{qmax}")
        mult = np.asarray(q.multiplier if q.multiplier is not None else [], np.int64)
        shift = np.asarray(q.shift if q.shift is not None else [], np.int64)
        if not layer.weighted:
            if q.pool_mode not in QUANTIZED_POOL_MODES:
                raise fail(layer, f"pool mode {q.pool_mode!r} is not one of {list(QUANTIZED_POOL_MODES)}")
            n_mult = 1 if q.pool_mode == "mean" else 0
            if len(mult) != n_mult or len(shift) != n_mult:
                raise fail(layer, f"{q.pool_mode} needs {n_mult} multiplier")
            if n_mult and not (mult[0] >= 0 and -31 <= shift[0] <= 30):
                raise fail(layer, "multiplier must be >= 0, shift in -31..30")
            continue
        wscale = np.asarray(q.weight_scale)
        wzp = np.asarray(q.weight_zero_point)
        if len(wscale) not in (1, layer.cout) or len(wzp) != len(wscale):
            raise fail(layer, f"{len(wscale)} weight scales and {len(wzp)} zero points for "
                              f"{layer.cout} channels")
        if len(mult) != len(wscale) or len(shift) != len(wscale):
            raise fail(layer, "needs one multiplier and shift per weight scale")
        if not ((mult >= 0).all() and (mult < 1 << 31).all() and (shift >= -31).all()
                and (shift <= 30).all()):
            raise fail(layer, "multiplier must be in 0..2**31-1 and shift in -31..30")
        if not (np.isfinite(wscale).all() and (wscale > 0).all()):
            raise fail(layer, "weight scales must be positive")
        if str(layer.w.dtype) not in DTYPE_RANGE:
            raise fail(layer, f"weights are {layer.w.dtype}, not uint8/int8")
        wmin, wmax = DTYPE_RANGE[str(layer.w.dtype)]
        if not ((wzp >= wmin) & (wzp <= wmax)).all():
            raise fail(layer, f"weight zero points outside {wmin}..{wmax}")
        if layer.b.dtype != np.int32:
            raise fail(layer, f"bias is {layer.b.dtype}, expected int32")
