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
from .validate import check_network

FORMAT_NAME = "tinymobile/mobilenet_v1"
FORMAT_VERSION = 1
#: Quantized models (uint8/int8 weights and activations) are version 2: tinymobile.quantized_format.
QUANTIZED_VERSION = 2
#: Largest array one model file may declare, in bytes (a 100 GB tensor is refused up front; the
#: largest array of MobileNet v1 1.0 is 4 MB).
MAX_ARRAY_BYTES = 1 << 28
#: Most array data one model file may make tinymobile inflate, in bytes (MobileNet v1 1.0: 17 MB).
MAX_MODEL_BYTES = 1 << 29
#: A member of more than MAX_RATIO_FREE_BYTES that inflates more than MAX_COMPRESSION_RATIO times
#: is refused before inflating (float weights compress ~1.1 times; deflate's limit is ~1032).
MAX_RATIO_FREE_BYTES = 1 << 20
MAX_COMPRESSION_RATIO = 200
#: Longest string (format, activation, padding, one label) read, in characters.
MAX_NAME_CHARS = 256
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
    """Read a format-v1 ``.npz`` into a :class:`~tinymobile.network.Network`.

    The file is untrusted: every member's ``.npy`` header is read (allow_pickle=False) and its
    declared shape and dtype checked against the architecture and the size limits *before* any
    array data is inflated, so a zip bomb or a declared 100 GB tensor is refused without being
    read; at most MAX_MODEL_BYTES of array data are inflated in total."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise ModelFormatError(f"{name}: is a directory, not a model file")
    try:
        archive = zipfile.ZipFile(name)
    except FileNotFoundError:
        raise ModelFormatError(f"{name}: no such file") from None
    except Exception as e:  # BadZipFile, OSError, and whatever a corrupt central directory raises
        raise ModelFormatError(f"{name}: not a tinymobile .npz model ({_describe(e)})") from None
    with archive:
        arrays = _LazyArrays(archive, name)
        network = from_arrays(arrays)
    from .quantized_network import QuantizedNetwork
    check_network(network, "iu" if isinstance(network, QuantizedNetwork) else "f")
    return network


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


class _LazyArrays(Mapping):
    """The ``.npy`` members of an npz archive, read on demand with their headers checked first.

    ``declared(key)`` gives (shape, dtype) from the member's header without reading its data;
    ``arrays[key]`` reads the data (never more than the header declares, never pickles)."""

    def __init__(self, archive: zipfile.ZipFile, path: str):
        self._zip, self._path = archive, path
        self._members = {}
        for info in archive.infolist():
            if info.filename.endswith(".npy") and not info.is_dir():
                self._members[info.filename[:-4]] = info  # a duplicate name: the last one wins
        self._headers: Dict[str, tuple] = {}
        self._read_bytes = 0

    def _fail(self, key: str, why: str) -> ModelFormatError:
        return ModelFormatError(f"{self._path}: array {key!r} {why}")

    def declared(self, key: str) -> Tuple[Tuple[int, ...], np.dtype]:
        """(shape, dtype) declared by member ``key``'s header; KeyError if there is none."""
        if key in self._headers:
            return self._headers[key][:2]
        info = self._members[key]
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise self._fail(key, f"uses .npy format version {version}: refused")
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
                header_bytes = f.tell()
        except ModelFormatError:
            raise
        except Exception as e:  # zlib errors, truncation, encrypted or unsupported members, bad header
            raise self._fail(key, f"is unreadable ({_describe(e)})") from None
        if dtype.hasobject or dtype.kind not in "biufU":
            raise self._fail(key, f"has dtype {dtype}: refused (only numbers and strings are read)")
        if any(s < 0 for s in shape):
            raise self._fail(key, f"declares negative shape {shape}")
        nbytes = dtype.itemsize
        for s in shape:
            nbytes *= s
        if nbytes > MAX_ARRAY_BYTES:
            raise self._fail(key, f"declares shape {shape} of {dtype} ({nbytes:,} bytes, more than "
                                  f"the {MAX_ARRAY_BYTES:,} allowed): refused")
        if nbytes > MAX_RATIO_FREE_BYTES and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size:
            raise self._fail(key, f"inflates {info.compress_size:,} bytes to {info.file_size:,}: "
                                  "refused (a zip bomb? no real weight tensor compresses that much)")
        if info.file_size < header_bytes + nbytes:
            raise self._fail(key, f"is truncated: the archive member holds {info.file_size:,} bytes, "
                                  f"its header declares {header_bytes + nbytes:,}")
        self._headers[key] = (shape, dtype, nbytes)
        return shape, dtype

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._members:
            raise KeyError(key)
        shape, dtype = self.declared(key)
        nbytes = self._headers[key][2]
        if self._read_bytes + nbytes > MAX_MODEL_BYTES:
            raise self._fail(key, f"would take the model past {MAX_MODEL_BYTES:,} bytes of arrays: refused")
        self._read_bytes += nbytes
        try:
            with self._zip.open(self._members[key]) as f:
                a = np.lib.format.read_array(f, allow_pickle=False)
        except Exception as e:  # zlib, CRC or truncation errors
            raise self._fail(key, f"is unreadable ({_describe(e)})") from None
        if a.shape != shape or a.dtype != dtype:
            raise self._fail(key, f"changed between reads ({a.dtype} {a.shape})")
        return a

    def __contains__(self, key) -> bool:  # Mapping's default would read the array
        return key in self._members

    def __iter__(self):
        return iter(self._members)

    def __len__(self):
        return len(self._members)


def _declared(arrays: Mapping, key: str) -> Tuple[Tuple[int, ...], np.dtype]:
    """Shape and dtype of ``arrays[key]``, from the header alone when the arrays are a file's."""
    if isinstance(arrays, _LazyArrays):
        try:
            return arrays.declared(key)
        except KeyError:
            raise ModelFormatError(f"model file has no {key!r} array") from None
    a = _get(arrays, key)
    return a.shape, a.dtype


def _get(arrays: Mapping, key: str) -> np.ndarray:
    try:
        return arrays[key]
    except KeyError:
        raise ModelFormatError(f"model file has no {key!r} array") from None


def _scalar_str(arrays: Mapping, key: str, default: Optional[str] = None) -> str:
    if default is not None and key not in arrays:
        return default
    shape, dtype = _declared(arrays, key)
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_NAME_CHARS:
        raise ModelFormatError(f"{key!r} must be a 0-d string array of at most {MAX_NAME_CHARS} "
                               f"characters, got {dtype} {shape}")
    return str(_get(arrays, key))


def _scalar_num(arrays: Mapping, key: str, kinds: str) -> float:
    shape, dtype = _declared(arrays, key)
    if shape != () or dtype.kind not in kinds:
        raise ModelFormatError(f"{key!r} must be a 0-d number, got {dtype} {shape}")
    v = _get(arrays, key).item()
    if not np.isfinite(v):
        raise ModelFormatError(f"{key!r} is not finite")
    return v


def _float_array(arrays: Mapping, key: str, shape: Tuple[int, ...]) -> np.ndarray:
    declared, dtype = _declared(arrays, key)
    if dtype.kind != "f":
        raise ModelFormatError(f"{key!r} must be floating point, got {dtype}")
    if declared != shape:
        raise ModelFormatError(f"{key!r} has shape {declared}, expected {shape}")
    a = np.ascontiguousarray(_get(arrays, key), dtype=np.float32)
    if not np.isfinite(a).all():
        raise ModelFormatError(f"{key!r} contains NaN or infinity")
    return a


def _array_shape(arrays: Mapping, key: str, ndim: int) -> Tuple[int, ...]:
    shape, _ = _declared(arrays, key)
    if len(shape) != ndim or 0 in shape:
        raise ModelFormatError(f"{key!r} must be a non-empty {ndim}-d array, got shape {shape}")
    return shape


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

    shape, dtype = _declared(arrays, "strides")
    if len(shape) != 1 or dtype.kind not in "iu" or not 1 <= shape[0] <= MAX_DEPTHWISE_LAYERS:
        raise ModelFormatError(f"'strides' must be a 1-d integer array of 1..{MAX_DEPTHWISE_LAYERS} "
                               f"entries, got {dtype} {shape}")
    strides = [int(s) for s in _get(arrays, "strides")]
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
        shape, dtype = _declared(arrays, "labels")
        if len(shape) != 1 or dtype.kind != "U" or dtype.itemsize > 4 * MAX_NAME_CHARS:
            raise ModelFormatError(f"'labels' must be a 1-d string array of names of at most "
                                   f"{MAX_NAME_CHARS} characters, got {dtype} {shape}")
        outputs = layers[-1].cout if isinstance(layers[-1], FullyConnected) else cin
        if shape[0] != outputs:
            raise ModelFormatError(f"'labels' has {shape[0]} entries for {outputs} outputs")
        labels = [str(s) for s in _get(arrays, "labels")]
    return Network(layers, resolution, alpha=alpha, activation=activation, padding=padding,
                   input_mean=mean, input_std=std, labels=labels)
