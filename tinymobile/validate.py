"""Structural checks of a float :class:`~tinymobile.network.Network` before any C kernel sees it.

Every source of networks (format-v1 files, the TFLite / Keras converters, user code) goes through
:func:`check_network` when a runner is built: the C operators trust the shapes they are given, so
a weight array whose shape disagrees with the channel chain would make them read or write out of
bounds. Problems raise :class:`~tinymobile.errors.ModelFormatError` naming the layer.
"""
from __future__ import annotations

import numpy as np

from .errors import ModelFormatError
from .network import (ACTIVATIONS, PADDINGS, AveragePool, Conv3x3, Depthwise3x3, FullyConnected,
                      Network, Pointwise, conv_output)

#: Input sizes accepted (pixels per side).
MAX_RESOLUTION = 4096
#: Largest activation of one image a network may need, in bytes (MobileNet v1 1.0 at 224: 3.2 MB).
MAX_ACTIVATION_BYTES = 1 << 31
#: Most layers a network may have (MobileNet v1: 29).
MAX_LAYERS = 256


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


def check_network(network: Network, weight_kinds: str = "f") -> None:
    """Raise ModelFormatError unless ``network`` is a chain the C operators can run safely:
    Conv3x3 / Depthwise3x3 / Pointwise layers, one AveragePool, then at most one FullyConnected,
    every weight of the exact shape the channel chain implies (and finite), and activations of
    one image within MAX_ACTIVATION_BYTES. ``weight_kinds``: NumPy dtype kinds allowed for the
    weights ("f" for the float engine; "iu" for quantized networks, whose biases are int32 too)."""
    r = network.resolution
    if not isinstance(r, (int, np.integer)) or not 1 <= r <= MAX_RESOLUTION:
        raise ModelFormatError(f"resolution must be an integer in 1..{MAX_RESOLUTION}, got {r!r}")
    if network.activation not in ACTIVATIONS:
        raise ModelFormatError(f"activation {network.activation!r} is not one of {sorted(ACTIVATIONS)}")
    if network.padding not in PADDINGS:
        raise ModelFormatError(f"padding {network.padding!r} is not one of {list(PADDINGS)}")
    for name in ("input_mean", "input_std"):
        v = np.asarray(getattr(network, name))
        if v.shape != (3,) or v.dtype.kind not in "iuf" or not np.isfinite(v).all():
            raise ModelFormatError(f"{name} must be 3 finite numbers, got {v!r}")
    if not (np.asarray(network.input_std) != 0).all():
        raise ModelFormatError("input_std contains zero")
    layers = network.layers
    if not 2 <= len(layers) <= MAX_LAYERS:
        raise ModelFormatError(f"a network has 2..{MAX_LAYERS} layers, got {len(layers)}")
    h = w = int(r)
    c = 3
    pooled = False
    for i, layer in enumerate(layers):
        if pooled and not (isinstance(layer, FullyConnected) and i == len(layers) - 1):
            raise ModelFormatError(f"layer {getattr(layer, 'name', i)!r}: only one fully connected "
                                   "layer may follow the average pool")
        if isinstance(layer, (Conv3x3, Depthwise3x3)):
            if layer.stride not in (1, 2):
                raise ModelFormatError(f"layer {layer.name!r}: stride must be 1 or 2, got {layer.stride!r}")
            if isinstance(layer, Conv3x3):
                _positive(layer, "output channels", layer.w.shape[-1] if np.ndim(layer.w) == 4 else 0)
                cout = layer.w.shape[3]
                _weights(layer, "w", (3, 3, c, cout), weight_kinds)
            else:
                cout = c
                _weights(layer, "w", (3, 3, c), weight_kinds)
            _weights(layer, "b", (cout,), weight_kinds)
            h = conv_output(h, layer.stride, network.padding)[0]
            w = conv_output(w, layer.stride, network.padding)[0]
            c = cout
        elif isinstance(layer, (Pointwise, FullyConnected)):
            if isinstance(layer, FullyConnected) and not pooled:
                raise ModelFormatError(f"layer {layer.name!r}: the fully connected layer must follow "
                                       "the average pool")
            _positive(layer, "output channels", layer.w.shape[-1] if np.ndim(layer.w) == 2 else 0)
            cout = layer.w.shape[1]
            _weights(layer, "w", (c, cout), weight_kinds)
            _weights(layer, "b", (cout,), weight_kinds)
            c = cout
        elif isinstance(layer, AveragePool):
            if i == 0:
                raise ModelFormatError("the network cannot start with the average pool")
            pooled = True
            h = w = 1
        else:
            raise ModelFormatError(f"layer {i} is a {type(layer).__name__}, which the float engine "
                                   "does not run")
        nbytes = 4.0 * h * w * c  # float32; quantized activations are smaller
        if nbytes > MAX_ACTIVATION_BYTES:
            raise ModelFormatError(f"layer {layer.name!r} would need a (1, {h}, {w}, {c}) activation "
                                   f"({nbytes:,.0f} bytes per image, more than {MAX_ACTIVATION_BYTES:,})")
    if not pooled:
        raise ModelFormatError("the network has no average pool")
    if network.labels is not None:
        if len(network.labels) != c or not all(isinstance(s, str) for s in network.labels):
            raise ModelFormatError(f"labels must be {c} strings, got {len(network.labels)} entries")
