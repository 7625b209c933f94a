"""Keras 2 HDF5 weights in the keras-applications layout (``mobilenet_1_0_224_tf.h5``).

The file's root attribute ``layer_names`` lists the layers; each layer group has ``weight_names``
(``conv_dw_1/depthwise_kernel:0``...). BatchNorm weights are gamma, beta, moving_mean,
moving_variance with epsilon 1e-3. Keras pads stride-2 layers bottom/right, i.e. TF SAME.
"""
from __future__ import annotations

import re
from typing import Dict, List

import numpy as np

from ..errors import ModelFormatError
from ..network import AveragePool, Conv3x3, Depthwise3x3, FullyConnected, Network, Pointwise
from .batchnorm import fold

BN_EPSILON = 1e-3


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ModelFormatError("reading Keras .h5 files needs h5py: pip install 'tinymobile[convert]'") from None
    return h5py


def _decode(s) -> str:
    return s.decode("utf-8") if isinstance(s, bytes) else str(s)


def read_layers(path: str) -> Dict[str, List[np.ndarray]]:
    """{layer name: [weights in the file's order]} from a Keras 2 weights file."""
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ModelFormatError(f"{path}: not an HDF5 file ({e})") from None
    with f:
        g = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in g.attrs:
            raise ModelFormatError(f"{path}: no 'layer_names' attribute: not a Keras 2 weights file")
        out = {}
        for name in map(_decode, g.attrs["layer_names"]):
            layer = g[name]
            out[name] = [np.asarray(layer[_decode(w)]) for w in layer.attrs.get("weight_names", [])]
        return out


def network_from_layers(weights: Dict[str, List[np.ndarray]], resolution: int, alpha: float) -> Network:
    """Build the network from keras-applications MobileNet layer weights (BN folded)."""
    def bn(name):
        try:
            gamma, beta, mean, var = weights[name]
        except (KeyError, ValueError):
            raise ModelFormatError(f"missing or malformed BatchNorm layer {name!r}") from None
        return gamma, beta, mean, var

    def get(name, n):
        ws = weights.get(name)
        if ws is None or len(ws) != n:
            raise ModelFormatError(f"missing or malformed layer {name!r}")
        return ws

    (k0,) = get("conv1", 1)
    w, b = fold(k0, *bn("conv1_bn"), eps=BN_EPSILON)
    layers: list = [Conv3x3("conv0", 2, w, b)]
    blocks = sorted(int(m.group(1)) for n in weights if (m := re.fullmatch(r"conv_dw_(\d+)", n)))
    strides = []
    for k in blocks:
        (dk,) = get(f"conv_dw_{k}", 1)
        w, b = fold(dk[:, :, :, 0], *bn(f"conv_dw_{k}_bn"), eps=BN_EPSILON)
        stride = 2 if f"conv_pad_{k}" in weights else 1
        strides.append(stride)
        layers.append(Depthwise3x3(f"dw{k}", stride, w, b))
        (pk,) = get(f"conv_pw_{k}", 1)
        w, b = fold(pk[0, 0], *bn(f"conv_pw_{k}_bn"), eps=BN_EPSILON)
        layers.append(Pointwise(f"pw{k}", w, b))
    layers.append(AveragePool())
    if "conv_preds" in weights and weights["conv_preds"]:
        kernel, bias = get("conv_preds", 2)
        layers.append(FullyConnected("fc", np.ascontiguousarray(kernel[0, 0], np.float32),
                                     bias.astype(np.float32)))
    return Network(layers, resolution, alpha=alpha)


def load(path: str, resolution: int = 224, alpha: float = None) -> Network:
    """Read a Keras 2 MobileNet v1 weights file into a Network."""
    weights = read_layers(path)
    net = network_from_layers(weights, resolution, alpha or 1.0)
    if alpha is None:
        net.alpha = net.layers[0].cout / 32
    return net
