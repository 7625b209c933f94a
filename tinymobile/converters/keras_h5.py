"""Keras 2 HDF5 weights in the keras-applications layout (``mobilenet_1_0_224_tf.h5``).

The file's root attribute ``layer_names`` lists the layers; each layer group has ``weight_names``
(``conv_dw_1/depthwise_kernel:0``...). BatchNorm weights are gamma, beta, moving_mean,
moving_variance with epsilon 1e-3. Keras pads stride-2 layers bottom/right, i.e. TF SAME.
"""
from __future__ import annotations

import contextlib
import json
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ModelFormatError, TinyMobileError
from ..limits import MAX_ARRAY_BYTES
from ..network import (STANDARD_STRIDES, Conv3x3, Depthwise3x3, FullyConnected, GlobalPool, Network,
                       Pointwise)
from .batchnorm import fold
from .netbuild import alpha_of

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


def _owner(weight_name: str, group: str) -> str:
    """The layer a weight belongs to: ``conv1/kernel:0`` -> ``conv1``; a nested model's group
    (``mobilenet_1.00_224``) holds ``conv1/kernel:0``, ``conv1_bn/gamma:0``...; a bare
    ``kernel:0`` belongs to the group's layer."""
    parts = weight_name.split("/")
    return parts[-2] if len(parts) >= 2 else group


def read_layers(path: str) -> Dict[str, List[np.ndarray]]:
    """{layer name: [weights in the file's order]} from a Keras 2 layout weights file
    (``save_weights`` / keras-applications, or the ``model_weights`` of a full-model ``.h5``).
    The weights of a nested model's group are split by the layer named in each weight name."""
    return read_h5(path)[0]


def read_h5(path: str) -> Tuple[Dict[str, List[np.ndarray]], List[str], Optional[dict]]:
    """(weights, layer names in the file's order, the parsed ``model_config`` or None)."""
    h5py = _h5py()
    with h5_errors(path):
        f = h5py.File(path, "r")
        with f:
            config = None
            if "model_config" in f.attrs:
                try:
                    config = json.loads(_decode(f.attrs["model_config"]))
                except (ValueError, RecursionError):
                    raise ModelFormatError(f"{path}: the model_config attribute is not JSON") from None
            g = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in g.attrs:
                raise ModelFormatError(f"{path}: no 'layer_names' attribute: not a Keras 2 weights file")
            out: Dict[str, List[np.ndarray]] = {}
            names = [_decode(n) for n in g.attrs["layer_names"]]
            for name in names:
                layer = g[name]
                for w in layer.attrs.get("weight_names", []):
                    w = _decode(w)
                    owner = _owner(w, name)
                    out.setdefault(owner, []).append(read_dataset(layer[w], f"{path}: {name}/{w}"))
                out.setdefault(name, [])
            return out, names, config


#: Layer-name prefixes of the keras-applications body (the rest is the user's head).
_BODY = re.compile(r"(conv1|conv1_bn|conv_(dw|pw)_\d+(_bn)?|conv_pad_\d+)$")


def network_from_layers(weights: Dict[str, List[np.ndarray]], resolution, alpha: float = 1.0,
                        names: Sequence[str] = (), source: str = "") -> Network:
    """Build the network from keras-applications MobileNet layer weights (BN folded) when the
    file has no model config: the architecture comes from the weight names and shapes.

    ``names``: every layer (or Keras 3 attribute) name in the file, weightless ones too
    (``global_max_pooling2d``, ``rescaling``...): they tell the pooling, and refuse what weights
    cannot describe. The head: at most one Dense kernel (C, classes) + bias outside the body;
    weights of unexpected rank or shape are a ModelFormatError (the full chain is checked again by
    :func:`tinymobile.validate.check_network`)."""
    try:
        return _network_from_layers(weights, resolution, alpha, names, source)
    except TinyMobileError:
        raise
    except (IndexError, ValueError, TypeError) as e:
        raise ModelFormatError(f"Keras weights of unexpected shape ({type(e).__name__}: {e})") from None


def _network_from_layers(weights, resolution, alpha, names, source) -> Network:
    where = f"{source}: " if source else ""

    def bn(name):
        try:
            gamma, beta, mean, var = weights[name]
        except (KeyError, ValueError):
            raise ModelFormatError(f"{where}missing or malformed BatchNorm layer {name!r}") from None
        return gamma, beta, mean, var

    def get(name, n):
        ws = weights.get(name)
        if ws is None or len(ws) != n:
            raise ModelFormatError(f"{where}missing or malformed layer {name!r}")
        return ws

    if "conv1" not in weights and any(re.match(r"(functional|sequential|model)", n) for n in names):
        raise ModelFormatError(f"{where}missing or malformed layer 'conv1'")
    for name in names:
        base = re.sub(r"_\d+$", "", name)
        if base in ("rescaling", "normalization") and not weights.get(name):
            raise ModelFormatError(
                f"{where}the model has a {base.capitalize()} layer, whose parameters only the "
                "model config records: convert the .keras (or full-model .h5) file instead")
        if base in ("separable_conv2d", "conv2d_transpose", "lambda", "tf_op_lambda"):
            raise ModelFormatError(f"{where}layer {name!r}: this layer kind is not supported")
    (k0,) = get("conv1", 1)
    w, b = fold(k0, *bn("conv1_bn"), eps=BN_EPSILON)
    layers: list = [Conv3x3("conv0", 2, w, b)]
    blocks = sorted(int(m.group(1)) for n in weights if (m := re.fullmatch(r"conv_dw_(\d+)", n)))
    # A Keras 2 weights-only file of a model with the MobileNet nested in it lists only the
    # outer layers: the base's weightless ones (conv_pad_k of its stride-2 blocks, its pooling)
    # are in no name. keras.applications' MobileNet has its stride-2 blocks where
    # STANDARD_STRIDES says; its pooling, if inside the base, is unknown.
    nested = bool(names) and "conv1" not in names
    if nested and not any(re.fullmatch(r"global_(average|max)_pooling2d(_\d+)?", n) for n in names):
        raise ModelFormatError(
            f"{where}the MobileNet is nested in the model and its global pooling (average or max, "
            "inside the base) is not recorded in a weights-only file: convert the .keras (or "
            "full-model .h5) file instead")
    for k in blocks:
        (dk,) = get(f"conv_dw_{k}", 1)
        if dk.ndim == 4 and dk.shape[3] != 1:
            raise ModelFormatError(f"{where}layer conv_dw_{k}: depth multiplier {dk.shape[3]}: "
                                   "tinymobile runs depthwise layers with depth multiplier 1 only")
        w, b = fold(dk[:, :, :, 0], *bn(f"conv_dw_{k}_bn"), eps=BN_EPSILON)
        if nested:
            stride = STANDARD_STRIDES[k - 1] if k <= len(STANDARD_STRIDES) else 1
        else:
            stride = 2 if f"conv_pad_{k}" in weights else 1
        layers.append(Depthwise3x3(f"dw{k}", stride, w, b))
        (pk,) = get(f"conv_pw_{k}", 1)
        w, b = fold(pk[0, 0], *bn(f"conv_pw_{k}_bn"), eps=BN_EPSILON)
        layers.append(Pointwise(f"pw{k}", w, b))
    channels = layers[-1].cout
    pools = {re.sub(r"_\d+$", "", n) for n in names} & {"global_average_pooling2d",
                                                          "global_max_pooling2d"}
    if len(pools) > 1:
        raise ModelFormatError(f"{where}the file has both average and max pooling layers")
    mode = "max" if pools == {"global_max_pooling2d"} else "average"
    layers.append(GlobalPool("pool", mode))
    head = [n for n, ws in weights.items() if ws and not _BODY.match(n)]
    output_activation = "softmax"
    if len(head) > 1:
        raise ModelFormatError(f"{where}the head has several weighted layers ({', '.join(sorted(head))}): "
                               "tinymobile supports one Dense (or conv_preds) classifier")
    if head:
        name = head[0]
        ws = weights[name]
        if len(ws) not in (1, 2):
            raise ModelFormatError(f"{where}layer {name!r}: {len(ws)} weight arrays, expected a "
                                   "Dense kernel and bias")
        kernel = ws[0][0, 0] if ws[0].ndim == 4 and ws[0].shape[:2] == (1, 1) else ws[0]
        if kernel.ndim != 2 or kernel.shape[0] != channels:
            raise ModelFormatError(f"{where}layer {name!r}: kernel of shape {ws[0].shape}, expected "
                                   f"({channels}, classes)")
        n = kernel.shape[1]
        bias = ws[1] if len(ws) == 2 else np.zeros(n, np.float32)
        if bias.shape != (n,):
            raise ModelFormatError(f"{where}layer {name!r}: bias of shape {bias.shape}")
        layers.append(FullyConnected("fc", np.ascontiguousarray(kernel, np.float32),
                                     bias.astype(np.float32)))
        # The activation is in the config only: one output is a binary classifier.
        output_activation = "sigmoid" if n == 1 else "softmax"
    net = Network(layers, resolution, alpha=alpha, output_activation=output_activation)
    net.normalisation_assumed = True  # weights say nothing about the input (see convert.py)
    net.head_activation_assumed = bool(head)  # nor about the classifier's activation
    return net


def load(path: str, resolution=224, alpha: float = None) -> Network:
    """Read a Keras 2 MobileNet v1 weights file into a Network (``resolution``: an int or (H, W))."""
    weights, names, _ = read_h5(path)
    net = network_from_layers(weights, resolution, alpha or 1.0, names)
    if alpha is None:
        net.alpha = alpha_of(net.layers)
    return net
