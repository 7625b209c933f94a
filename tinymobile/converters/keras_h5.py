"""Keras 2 HDF5 weights in the keras-applications layout (``mobilenet_1_0_224_tf.h5``).

The file's root attribute ``layer_names`` lists the layers; each layer group has ``weight_names``
(``conv_dw_1/depthwise_kernel:0``...). BatchNorm weights are gamma, beta, moving_mean,
moving_variance with epsilon 1e-3. Keras pads stride-2 layers bottom/right, i.e. TF SAME.
"""
from __future__ import annotations

import contextlib
import re
from typing import Dict, List

import numpy as np

from ..errors import ModelFormatError, TinyMobileError
from ..limits import MAX_ARRAY_BYTES
from ..network import BASE_CONV0, AveragePool, Conv3x3, Depthwise3x3, FullyConnected, Network, Pointwise
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


@contextlib.contextmanager
def h5_errors(source: str):
    """Turn what h5py / libhdf5 raise on a damaged file (OSError, KeyError, RuntimeError,
    TypeError...) into ModelFormatError; tinymobile's own errors pass through."""
    try:
        yield
    except TinyMobileError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError, AttributeError, IndexError,
            OverflowError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{source}: damaged or unexpected HDF5 content "
                               f"({type(e).__name__}: {e})") from None


def read_dataset(ds, where: str) -> np.ndarray:
    """The numbers of an h5py Dataset, after checking its kind, dtype and size from its metadata."""
    h5py = _h5py()
    if not isinstance(ds, h5py.Dataset):
        raise ModelFormatError(f"{where} is not a dataset")
    dtype = ds.dtype
    nbytes = dtype.itemsize
    for s in ds.shape or ():
        nbytes *= s
    if dtype.kind not in "fiu" or nbytes > MAX_ARRAY_BYTES:  # checked before reading
        raise ModelFormatError(f"{where} is {dtype} {ds.shape}: not a usable weight array")
    return np.asarray(ds[()])


def read_layers(path: str) -> Dict[str, List[np.ndarray]]:
    """{layer name: [weights in the file's order]} from a Keras 2 weights file."""
    h5py = _h5py()
    with h5_errors(path):
        f = h5py.File(path, "r")
        with f:
            g = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in g.attrs:
                raise ModelFormatError(f"{path}: no 'layer_names' attribute: not a Keras 2 weights file")
            out = {}
            for name in map(_decode, g.attrs["layer_names"]):
                layer = g[name]
                out[name] = [read_dataset(layer[_decode(w)], f"{path}: {name}/{_decode(w)}")
                             for w in layer.attrs.get("weight_names", [])]
            return out


def network_from_layers(weights: Dict[str, List[np.ndarray]], resolution: int, alpha: float) -> Network:
    """Build the network from keras-applications MobileNet layer weights (BN folded); weights of
    unexpected rank or shape are a ModelFormatError (the full chain is checked again by
    :func:`tinymobile.validate.check_network`)."""
    try:
        return _network_from_layers(weights, resolution, alpha)
    except TinyMobileError:
        raise
    except (IndexError, ValueError, TypeError) as e:
        raise ModelFormatError(f"Keras weights of unexpected shape ({type(e).__name__}: {e})") from None


def _network_from_layers(weights: Dict[str, List[np.ndarray]], resolution: int, alpha: float) -> Network:
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
        net.alpha = net.layers[0].cout / BASE_CONV0
    return net
