"""The tinymobile ``.npz`` model format, version 1 (documented in docs/FORMAT.md).

Reading is defensive: the file is opened with ``allow_pickle=False``, every array's dtype and shape
is checked against the architecture before use, and unknown keys are ignored. Any problem raises
:class:`~tinymobile.errors.ModelFormatError` naming the key at fault.
"""
from __future__ import annotations

import os
import zipfile
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from .errors import ModelFormatError
from .network import (ACTIVATIONS, PADDINGS, AveragePool, Conv3x3, Depthwise3x3, FullyConnected,
                      Network, Pointwise)

FORMAT_NAME = "tinymobile/mobilenet_v1"
FORMAT_VERSION = 1
#: Quantized models (uint8/int8 weights and activations) are version 2: tinymobile.quantized_format.
QUANTIZED_VERSION = 2
#: Largest number of elements one array may declare (a 100 GB tensor is refused up front).
MAX_ARRAY_ELEMENTS = 1 << 28
MAX_DEPTHWISE_LAYERS = 64


def save(network: Network, path: "os.PathLike[str] | str") -> None:
    """Write ``network`` as a format-v1 ``.npz`` (a quantized network: version 2, see
    :mod:`tinymobile.quantized_format`). Written to a temporary file, then renamed."""
    from .quantized_network import QuantizedNetwork
    if isinstance(network, QuantizedNetwork):
        from . import quantized_format
        arrays = quantized_format.to_arrays(network)
    else:
        arrays = to_arrays(network)
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def to_arrays(network: Network) -> Dict[str, np.ndarray]:
    """The format-v1 arrays of ``network`` (separable MobileNet v1 only)."""
    out: Dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME), "version": np.array(FORMAT_VERSION),
        "alpha": np.array(float(network.alpha)), "resolution": np.array(int(network.resolution)),
        "activation": np.array(network.activation), "padding": np.array(network.padding),
        "input_mean": np.asarray(network.input_mean, np.float32),
        "input_std": np.asarray(network.input_std, np.float32),
    }
    strides = []
    for layer in network.layers:
        if isinstance(layer, Conv3x3):
            if layer.name != "conv0":
                raise ModelFormatError("format v1 stores only separable MobileNets (found a full "
                                       f"convolution {layer.name!r})")
            out["conv0/w"], out["conv0/b"] = layer.w, layer.b
        elif isinstance(layer, Depthwise3x3):
            strides.append(layer.stride)
            k = len(strides)
            out[f"dw{k}/w"], out[f"dw{k}/b"] = layer.w, layer.b
        elif isinstance(layer, Pointwise):
            k = len(strides)
            out[f"pw{k}/w"], out[f"pw{k}/b"] = layer.w, layer.b
        elif isinstance(layer, FullyConnected):
            out["fc/w"], out["fc/b"] = layer.w, layer.b
    out["strides"] = np.asarray(strides, np.int64)
    if network.labels is not None:
        out["labels"] = np.asarray(network.labels, dtype=str)
    return out


def load(path: "os.PathLike[str] | str") -> Network:
    """Read a format-v1 ``.npz`` into a :class:`~tinymobile.network.Network`."""
    try:
        npz = np.load(os.fspath(path), allow_pickle=False)
    except FileNotFoundError:
        raise ModelFormatError(f"{os.fspath(path)}: no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{os.fspath(path)}: is a directory, not a model file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFormatError(f"{os.fspath(path)}: not a tinymobile .npz model ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ModelFormatError(f"{os.fspath(path)}: a single .npy array, not a tinymobile .npz model")
    with npz:
        return from_arrays(_LazyArrays(npz, os.fspath(path)))


class _LazyArrays(Mapping):
    """Read npz members on demand, refusing oversized or unreadable ones with a clear error."""

    def __init__(self, npz, path: str):
        self._npz, self._path = npz, path

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._npz.files:
            raise KeyError(key)
        try:
            _check_declared_size(self._npz, key)
            return self._npz[key]
        except ModelFormatError:
            raise
        except Exception as e:  # corrupt member: zlib, header or truncation errors
            raise ModelFormatError(f"{self._path}: array {key!r} is unreadable ({e})") from None

    def __iter__(self):
        return iter(self._npz.files)

    def __len__(self):
        return len(self._npz.files)


def _check_declared_size(npz, key: str) -> None:
    """Refuse a member whose header declares more elements than any real model has."""
    try:
        info = npz.zip.getinfo(key + ".npy")
    except KeyError:
        return
    with npz.zip.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ModelFormatError(f"array {key!r} uses .npy format version {version}: refused")
    n = 1
    for s in shape:
        n *= int(s)
    if n > MAX_ARRAY_ELEMENTS or dtype.hasobject:
        raise ModelFormatError(f"array {key!r} declares shape {shape} of {dtype}: refused")


def _get(arrays: Mapping, key: str) -> np.ndarray:
    try:
        return arrays[key]
    except KeyError:
        raise ModelFormatError(f"model file has no {key!r} array") from None


def _scalar_str(arrays: Mapping, key: str, default: Optional[str] = None) -> str:
    if default is not None and key not in arrays:
        return default
    a = _get(arrays, key)
    if a.shape != () or a.dtype.kind != "U":
        raise ModelFormatError(f"{key!r} must be a 0-d string array, got {a.dtype} {a.shape}")
    return str(a)


def _scalar_num(arrays: Mapping, key: str, kinds: str) -> float:
    a = _get(arrays, key)
    if a.shape != () or a.dtype.kind not in kinds:
        raise ModelFormatError(f"{key!r} must be a 0-d number, got {a.dtype} {a.shape}")
    v = a.item()
    if not np.isfinite(v):
        raise ModelFormatError(f"{key!r} is not finite")
    return v


def _float_array(arrays: Mapping, key: str, shape: Tuple[int, ...]) -> np.ndarray:
    a = _get(arrays, key)
    if a.dtype.kind != "f":
        raise ModelFormatError(f"{key!r} must be floating point, got {a.dtype}")
    if a.shape != shape:
        raise ModelFormatError(f"{key!r} has shape {a.shape}, expected {shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ModelFormatError(f"{key!r} contains NaN or infinity")
    return a


def _array_shape(arrays: Mapping, key: str, ndim: int) -> Tuple[int, ...]:
    a = _get(arrays, key)
    if a.ndim != ndim or 0 in a.shape:
        raise ModelFormatError(f"{key!r} must be a non-empty {ndim}-d array, got shape {a.shape}")
    return a.shape


def from_arrays(arrays: Mapping[str, np.ndarray]) -> Network:
    """Validate format-v1 arrays and build the network; shapes are authoritative."""
    fmt = _scalar_str(arrays, "format")
    if fmt != FORMAT_NAME:
        raise ModelFormatError(f"not a tinymobile model: format is {fmt!r}, expected {FORMAT_NAME!r}")
    version = _scalar_num(arrays, "version", "iu")
    if version == QUANTIZED_VERSION:
        from . import quantized_format
        return quantized_format.from_arrays(arrays)
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported model format version {version} (this tinymobile reads "
                               f"versions {FORMAT_VERSION} and {QUANTIZED_VERSION}); upgrade tinymobile")
    resolution = int(_scalar_num(arrays, "resolution", "iu"))
    if not 1 <= resolution <= 4096:
        raise ModelFormatError(f"resolution {resolution} is out of range 1..4096")
    alpha = float(_scalar_num(arrays, "alpha", "iuf"))
    activation = _scalar_str(arrays, "activation")
    if activation not in ACTIVATIONS:
        raise ModelFormatError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    padding = _scalar_str(arrays, "padding")
    if padding not in PADDINGS:
        raise ModelFormatError(f"padding {padding!r} is not one of {list(PADDINGS)}")
    mean = _float_array(arrays, "input_mean", (3,))
    std = _float_array(arrays, "input_std", (3,))
    if not (std != 0).all():
        raise ModelFormatError("'input_std' contains zero")

    strides_arr = _get(arrays, "strides")
    if strides_arr.ndim != 1 or strides_arr.dtype.kind not in "iu" or not 1 <= len(strides_arr) <= MAX_DEPTHWISE_LAYERS:
        raise ModelFormatError(f"'strides' must be a 1-d integer array of 1..{MAX_DEPTHWISE_LAYERS} "
                               f"entries, got {strides_arr.dtype} {strides_arr.shape}")
    strides = [int(s) for s in strides_arr]
    if any(s not in (1, 2) for s in strides):
        raise ModelFormatError(f"'strides' entries must be 1 or 2, got {strides}")

    c0 = _array_shape(arrays, "conv0/w", 4)[3]
    layers: list = [Conv3x3("conv0", 2, _float_array(arrays, "conv0/w", (3, 3, 3, c0)),
                            _float_array(arrays, "conv0/b", (c0,)))]
    cin = c0
    for k, stride in enumerate(strides, start=1):
        dw_w = _float_array(arrays, f"dw{k}/w", (3, 3, cin))
        layers.append(Depthwise3x3(f"dw{k}", stride, dw_w, _float_array(arrays, f"dw{k}/b", (cin,))))
        cout = _array_shape(arrays, f"pw{k}/w", 2)[1]
        layers.append(Pointwise(f"pw{k}", _float_array(arrays, f"pw{k}/w", (cin, cout)),
                                _float_array(arrays, f"pw{k}/b", (cout,))))
        cin = cout
    layers.append(AveragePool())
    if "fc/w" in arrays:
        classes = _array_shape(arrays, "fc/w", 2)[1]
        layers.append(FullyConnected("fc", _float_array(arrays, "fc/w", (cin, classes)),
                                     _float_array(arrays, "fc/b", (classes,))))
    labels: Optional[List[str]] = None
    if "labels" in arrays:
        lab = _get(arrays, "labels")
        if lab.ndim != 1 or lab.dtype.kind != "U":
            raise ModelFormatError(f"'labels' must be a 1-d string array, got {lab.dtype} {lab.shape}")
        labels = [str(s) for s in lab]
        outputs = layers[-1].cout if isinstance(layers[-1], FullyConnected) else cin
        if len(labels) != outputs:
            raise ModelFormatError(f"'labels' has {len(labels)} entries for {outputs} outputs")
    return Network(layers, resolution, alpha=alpha, activation=activation, padding=padding,
                   input_mean=mean, input_std=std, labels=labels)
