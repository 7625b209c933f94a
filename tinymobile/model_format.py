"""The tinymobile ``.npz`` model file, every version (documented in docs/FORMAT.md): one reader
and one writer for float and quantized models.

* version 1: float32, square input, global average pool, softmax (the original format);
* version 2: the same network quantized (uint8 / int8 weights and activations, per-layer
  quantization parameters);
* version 3: either dtype, plus what versions 1 and 2 cannot say: a non-square input
  (``input_size``), the central-crop fraction (``crop``), global max pooling (``pooling``) and a
  sigmoid output (``output_activation``).

The writer uses the lowest version that expresses the model, so a reader of an older version
refuses a model it would misread ("unsupported model format version") instead of running it
wrongly; readers ignore keys they do not know (training state under ``head/`` among them).

Reading is defensive and shared by every version: the file is opened with ``allow_pickle=False``,
every array's declared dtype and shape is checked (from its ``.npy`` header, before its data is
inflated) against the architecture and the limits in :mod:`tinymobile.limits`, strings and labels
are bounded, and any problem raises :class:`~tinymobile.errors.ModelFormatError` naming the key.
"""
from __future__ import annotations

import os
import zipfile
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import ModelFormatError
from .files import not_a_file
from .fixedpoint import DTYPE_RANGE
from .limits import (MAX_ARRAY_BYTES, MAX_CLASSES, MAX_COMPRESSION_RATIO, MAX_DEPTHWISE_LAYERS,
                     MAX_INPUT_SIZE, MAX_MODEL_BYTES, MAX_NAME_CHARS, MAX_RATIO_FREE_BYTES)
from .network import (ACTIVATIONS, OUTPUT_ACTIVATIONS, PADDINGS, POOL_MODES, QUANTIZED_POOL_MODES,
                      SLIM_CROP, Conv3x3, Depthwise3x3, FullyConnected, GlobalPool, LayerQuant,
                      Network, Pointwise)
from .validate import check_network

FORMAT_NAME = "tinymobile/mobilenet_v1"
#: Versions this tinymobile reads and writes (see the module docstring).
FLOAT_VERSION, QUANTIZED_VERSION, EXTENDED_VERSION = 1, 2, 3
VERSIONS = (FLOAT_VERSION, QUANTIZED_VERSION, EXTENDED_VERSION)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def save(network: Network, path: "os.PathLike[str] | str",
         extra: Optional[Mapping[str, np.ndarray]] = None) -> None:
    """Write ``network`` as a ``.npz`` model (the lowest version that expresses it), with the
    ``extra`` arrays beside it (keys inference ignores, e.g. training state under ``head/``).
    Written to a temporary file beside ``path``, then renamed, so an interrupted write never
    leaves a half-written model under the final name."""
    arrays = to_arrays(network)
    for key in extra or {}:
        if key in arrays:
            raise ModelFormatError(f"extra array {key!r} would replace the model's own")
    arrays.update(extra or {})
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ModelFormatError(f"{path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise ModelFormatError(f"{path}: is a directory")
    fd, tmp = _new_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _new_file_beside(path: str) -> Tuple[int, str]:
    """(descriptor, name) of a new file in ``path``'s folder, created exclusively under a name
    no other file has (``path.<random>.tmp``: a user's own ``path.tmp`` is never touched), with
    the permissions ``open`` would give (the umask's, not mkstemp's 0600)."""
    import secrets
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def version_for(network: Network) -> int:
    """The lowest format version that expresses ``network``."""
    pool = network.layers[network.pool_index]
    if (network.input_size[0] != network.input_size[1] or network.crop != SLIM_CROP
            or pool.mode != "average" or network.output_activation != "softmax"):
        return EXTENDED_VERSION
    return QUANTIZED_VERSION if network.is_quantized else FLOAT_VERSION


def to_arrays(network: Network) -> Dict[str, np.ndarray]:
    """The arrays of ``network``'s model file (separable MobileNet v1 only)."""
    check_network(network)
    version = version_for(network)
    out: Dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME), "version": np.array(version),
        "alpha": np.array(float(network.alpha)),
        "activation": np.array(network.activation), "padding": np.array(network.padding),
        "input_mean": np.asarray(network.input_mean, np.float32),
        "input_std": np.asarray(network.input_std, np.float32),
    }
    if version == EXTENDED_VERSION:
        out["input_size"] = np.asarray(network.input_size, np.int64)
        out["crop"] = np.array(float(network.crop))
        out["pooling"] = np.array(network.layers[network.pool_index].mode)
        out["output_activation"] = np.array(network.output_activation)
    else:
        out["resolution"] = np.array(int(network.input_size[0]))
    if network.is_quantized:
        out["quantization"] = np.array(network.dtype)
        out["input/scale"] = np.array(network.input_scale, np.float32)
        out["input/zero_point"] = np.array(network.input_zero_point, np.int32)
        if network.input_dtype != network.dtype:  # informative: only forward's raw input differs
            out["input/dtype"] = np.array(network.input_dtype)
    strides = []
    for layer in network.layers:
        if layer.kind == "conv3x3":
            if layer.name != "conv0" or strides:
                raise ModelFormatError("the format stores only separable MobileNets (found a full "
                                       f"convolution {layer.name!r})")
            key = "conv0"
        elif layer.kind == "depthwise3x3":
            strides.append(layer.stride)
            key = f"dw{len(strides)}"
        elif layer.kind == "pointwise":
            key = f"pw{len(strides)}"
        elif layer.kind == "fully_connected":
            key = "fc"
        else:
            key = "pool"
        if layer.weighted:
            out[f"{key}/w"] = layer.w
            out[f"{key}/b"] = layer.b.astype(np.int32 if network.is_quantized else np.float32)
        if network.is_quantized:
            q = layer.quant
            if layer.weighted:
                out[f"{key}/w_scale"] = np.asarray(q.weight_scale, np.float32)
                out[f"{key}/w_zero_point"] = np.asarray(q.weight_zero_point, np.int32)
            else:
                out["pool/mode"] = np.array(q.pool_mode)
            out[f"{key}/out_scale"] = np.array(q.output_scale, np.float32)
            out[f"{key}/out_zero_point"] = np.array(q.output_zero_point, np.int32)
            out[f"{key}/clamp"] = np.asarray(q.clamp, np.int32)
            out[f"{key}/multiplier"] = np.asarray(q.multiplier, np.int32)
            out[f"{key}/shift"] = np.asarray(q.shift, np.int32)
    out["strides"] = np.asarray(strides, np.int64)
    if network.labels is not None:
        out["labels"] = np.asarray(network.labels, dtype=str)
    return out


# ---------------------------------------------------------------------------------------------
# Reading: the archive
# ---------------------------------------------------------------------------------------------

def load(path: "os.PathLike[str] | str") -> Network:
    """Read a ``.npz`` model (any version) into a checked :class:`~tinymobile.network.Network`.

    The file is untrusted: every member's ``.npy`` header is read (allow_pickle=False) and its
    declared shape and dtype checked against the architecture and the size limits *before* any
    array data is inflated, so a zip bomb or a declared 100 GB tensor is refused without being
    read; at most MAX_MODEL_BYTES of array data are inflated in total."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise ModelFormatError(not_a_file(name, "model file"))
    try:
        archive = zipfile.ZipFile(name)
    except FileNotFoundError:
        raise ModelFormatError(f"{name}: no such file") from None
    except Exception as e:  # BadZipFile, OSError, and whatever a corrupt central directory raises
        _refuse_other_format(name)
        raise ModelFormatError(f"{name}: not a tinymobile .npz model ({_describe(e)})") from None
    with archive:
        if not any(n.endswith(".npy") for n in archive.namelist()):
            _refuse_other_format(name, archive.namelist())
        network = from_arrays(_LazyArrays(archive, name))
    check_network(network)
    return network


def _refuse_other_format(name: str, members: Sequence[str] = ()) -> None:
    """ModelFormatError naming the conversion if ``name`` is a model file ``convert`` reads
    (TFLite, whose labels may make it a zip too; Keras HDF5; a TF-slim .tgz; a .keras zip)."""
    try:
        with open(name, "rb") as f:
            head = f.read(8)
    except OSError:
        return
    kind = ("a TFLite model" if head[4:8] == b"TFL3" else
            "a Keras HDF5 file" if head == b"\x89HDF\r\n\x1a\n" else
            "a gzip archive (a TF-slim .tgz?)" if head[:2] == b"\x1f\x8b" else
            "a Keras .keras file" if "config.json" in members else None)
    if kind is not None:
        raise ModelFormatError(f"{name}: {kind}, not a tinymobile .npz: convert it first "
                               f"(tinymobile convert {name}, or tinymobile.convert(src, dst))")


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


# ---------------------------------------------------------------------------------------------
# Reading: checked access to one array (declared shape and dtype first, then the data)
# ---------------------------------------------------------------------------------------------

def _declared(arrays: Mapping, key: str) -> Tuple[Tuple[int, ...], np.dtype]:
    """Shape and dtype of ``arrays[key]``, from the header alone when the arrays are a file's."""
    if isinstance(arrays, _LazyArrays):
        try:
            return arrays.declared(key)
        except KeyError:
            raise ModelFormatError(f"model file has no {key!r} array") from None
    a = np.asarray(_get(arrays, key))
    return a.shape, a.dtype


def _get(arrays: Mapping, key: str) -> np.ndarray:
    try:
        return np.asarray(arrays[key])
    except KeyError:
        raise ModelFormatError(f"model file has no {key!r} array") from None


def _checked(arrays: Mapping, key: str, kinds: str, what: str, shape=None, lengths=None,
             itemsize: Optional[int] = None) -> np.ndarray:
    """``arrays[key]`` after its declared dtype kind (one of ``kinds``), shape (``shape``, or 1-d
    with one of ``lengths`` entries) and item size were checked; only then is the data read."""
    declared, dtype = _declared(arrays, key)
    if dtype.kind not in kinds or (itemsize is not None and dtype.itemsize > itemsize):
        raise ModelFormatError(f"{key!r} must be {what}, got {dtype}")
    if shape is not None and declared != tuple(shape):
        raise ModelFormatError(f"{key!r} has shape {declared}, expected {tuple(shape)}")
    if lengths is not None and (len(declared) != 1 or declared[0] not in lengths):
        raise ModelFormatError(f"{key!r} must be 1-d with {' or '.join(map(str, lengths))} entries, "
                               f"got shape {declared}")
    return _get(arrays, key)


def _scalar_str(arrays: Mapping, key: str, default: Optional[str] = None) -> str:
    if default is not None and key not in arrays:
        return default
    a = _checked(arrays, key, "U", f"a 0-d string of at most {MAX_NAME_CHARS} characters", shape=(),
                 itemsize=4 * MAX_NAME_CHARS)
    return str(a)


def _choice(arrays: Mapping, key: str, choices, default: Optional[str] = None) -> str:
    value = _scalar_str(arrays, key, default)
    if value not in choices:
        raise ModelFormatError(f"{key!r} {value!r} is not one of {sorted(choices)}")
    return value


def _scalar_num(arrays: Mapping, key: str, kinds: str) -> float:
    v = _checked(arrays, key, kinds, "a 0-d number", shape=()).item()
    if not np.isfinite(v):
        raise ModelFormatError(f"{key!r} is not finite")
    return v


def _float_array(arrays: Mapping, key: str, shape: Tuple[int, ...]) -> np.ndarray:
    a = np.ascontiguousarray(_checked(arrays, key, "f", "floating point", shape=shape), np.float32)
    if not np.isfinite(a).all():
        raise ModelFormatError(f"{key!r} contains NaN or infinity")
    return a


def _int_array(arrays: Mapping, key: str, shape=None, lengths=None) -> np.ndarray:
    a = _checked(arrays, key, "iu", "an integer array", shape, lengths)
    if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
        raise ModelFormatError(f"{key!r} has values outside int32")
    return np.array(a, np.int32)  # a copy; keeps 0-d arrays 0-d


def _positive(arrays: Mapping, key: str, shape=None, lengths=None) -> np.ndarray:
    a = np.array(_checked(arrays, key, "f", "floating point", shape, lengths), np.float32)
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ModelFormatError(f"{key!r} must be finite and positive")
    return a


def _array_shape(arrays: Mapping, key: str, ndim: int) -> Tuple[int, ...]:
    shape, _ = _declared(arrays, key)
    if len(shape) != ndim or 0 in shape:
        raise ModelFormatError(f"{key!r} must be a non-empty {ndim}-d array, got shape {shape}")
    return shape


# ---------------------------------------------------------------------------------------------
# Reading: weights, per dtype (the one place the versions differ)
# ---------------------------------------------------------------------------------------------

class _FloatWeights:
    """Float32 weights and biases (versions 1 and 3)."""

    def __init__(self, arrays: Mapping):
        self.arrays = arrays

    def weights(self, key: str, shape) -> np.ndarray:
        return _float_array(self.arrays, f"{key}/w", shape)

    def bias(self, key: str, n: int) -> np.ndarray:
        return _float_array(self.arrays, f"{key}/b", (n,))

    def quant(self, key: str, channels: Optional[int]) -> Optional[LayerQuant]:
        return None


class _QuantizedWeights:
    """Integer weights (one dtype per file, uint8 or int8), int32 biases, per-layer quantization
    parameters (versions 2 and 3 with ``quantization``)."""

    def __init__(self, arrays: Mapping, dtype: str):
        self.arrays, self.dtype = arrays, dtype
        _, wdtype = _declared(arrays, "conv0/w")
        if str(wdtype) not in DTYPE_RANGE:
            raise ModelFormatError(f"'conv0/w' must be uint8 or int8, got {wdtype}")
        self.wdtype = np.dtype(wdtype)

    def weights(self, key: str, shape) -> np.ndarray:
        declared, dtype = _declared(self.arrays, f"{key}/w")
        if dtype != self.wdtype:
            raise ModelFormatError(f"'{key}/w' must be {self.wdtype} (the model's weight type), got {dtype}")
        if declared != tuple(shape):
            raise ModelFormatError(f"'{key}/w' has shape {declared}, expected {tuple(shape)}")
        return np.ascontiguousarray(_get(self.arrays, f"{key}/w"))

    def bias(self, key: str, n: int) -> np.ndarray:
        declared, dtype = _declared(self.arrays, f"{key}/b")
        if dtype != np.int32 or declared != (n,):
            raise ModelFormatError(f"'{key}/b' must be int32 of shape ({n},), got {dtype} {declared}")
        return np.ascontiguousarray(_get(self.arrays, f"{key}/b"))

    def quant(self, key: str, channels: Optional[int]) -> LayerQuant:
        """The layer's LayerQuant; ``channels`` None for the pool."""
        arrays = self.arrays
        qmin, qmax = DTYPE_RANGE[self.dtype]
        out_scale = float(_positive(arrays, f"{key}/out_scale", ()))
        out_zp = int(_int_array(arrays, f"{key}/out_zero_point", ()))
        if not qmin <= out_zp <= qmax:
            raise ModelFormatError(f"{key + '/out_zero_point'!r} = {out_zp} is outside {qmin}..{qmax}")
        clamp = _int_array(arrays, f"{key}/clamp", (2,))
        if not qmin <= clamp[0] <= clamp[1] <= qmax:
            raise ModelFormatError(f"{key + '/clamp'!r} = {clamp.tolist()} is not inside {qmin}..{qmax}")
        pool_mode = ""
        if channels is None:
            pool_mode = _choice(arrays, "pool/mode", QUANTIZED_POOL_MODES)
            w_scale, w_zp = np.zeros(0, np.float32), np.zeros(0, np.int32)
            lengths = (1 if pool_mode == "mean" else 0,)
        else:
            w_scale = _positive(arrays, f"{key}/w_scale", lengths=(1, channels))
            lengths = (len(w_scale),)
            w_zp = _int_array(arrays, f"{key}/w_zero_point", lengths=lengths)
        mult = _int_array(arrays, f"{key}/multiplier", lengths=lengths)
        shift = _int_array(arrays, f"{key}/shift", lengths=lengths)
        if mult.size and not ((mult >= 0).all() and (shift >= -31).all() and (shift <= 30).all()):
            raise ModelFormatError(f"{key!r}: multipliers must be >= 0 and shifts in -31..30")
        return LayerQuant(w_scale, w_zp, out_scale, out_zp, (int(clamp[0]), int(clamp[1])), mult,
                          shift, pool_mode)


# ---------------------------------------------------------------------------------------------
# Reading: the network
# ---------------------------------------------------------------------------------------------

def from_arrays(arrays: Mapping[str, np.ndarray]) -> Network:
    """Validate a model file's arrays (any version) and build the network; shapes are
    authoritative."""
    fmt = _scalar_str(arrays, "format")
    if fmt != FORMAT_NAME:
        raise ModelFormatError(f"not a tinymobile model: format is {fmt!r}, expected {FORMAT_NAME!r}")
    version = _scalar_num(arrays, "version", "iu")
    if version not in VERSIONS:
        raise ModelFormatError(f"unsupported model format version {version} (this tinymobile reads "
                               f"versions {', '.join(map(str, VERSIONS))}); upgrade tinymobile")
    quantized = version == QUANTIZED_VERSION or (version == EXTENDED_VERSION and "quantization" in arrays)
    dtype = _choice(arrays, "quantization", DTYPE_RANGE) if quantized else "float32"

    if version == EXTENDED_VERSION:
        size = _int_array(arrays, "input_size", shape=(2,))
        input_size = (int(size[0]), int(size[1]))
        crop = float(_scalar_num(arrays, "crop", "iuf"))
        pooling = _choice(arrays, "pooling", POOL_MODES)
        output_activation = _choice(arrays, "output_activation", OUTPUT_ACTIVATIONS)
    else:
        r = int(_scalar_num(arrays, "resolution", "iu"))
        input_size, crop, pooling, output_activation = (r, r), SLIM_CROP, "average", "softmax"
    if not all(1 <= s <= MAX_INPUT_SIZE for s in input_size):
        raise ModelFormatError(f"input size (resolution) {input_size} is out of range 1..{MAX_INPUT_SIZE}")
    if not 0 < crop <= 1:
        raise ModelFormatError(f"crop {crop} is not a fraction in (0, 1]")
    alpha = float(_scalar_num(arrays, "alpha", "iuf"))
    activation = _choice(arrays, "activation", ACTIVATIONS)
    padding = _choice(arrays, "padding", PADDINGS)
    mean = _float_array(arrays, "input_mean", (3,))
    std = _float_array(arrays, "input_std", (3,))
    if not (std != 0).all():
        raise ModelFormatError("'input_std' contains zero")
    in_scale, in_zp = 1.0, 0
    if quantized:
        in_scale = float(_positive(arrays, "input/scale", ()))
        in_zp = int(_int_array(arrays, "input/zero_point", ()))
        qmin, qmax = DTYPE_RANGE[dtype]
        if not qmin <= in_zp <= qmax:
            raise ModelFormatError(f"'input/zero_point' = {in_zp} is outside {qmin}..{qmax}")
    input_dtype = dtype
    if quantized and "input/dtype" in arrays:
        input_dtype = _choice(arrays, "input/dtype", DTYPE_RANGE)

    shape, sdtype = _declared(arrays, "strides")
    if len(shape) != 1 or sdtype.kind not in "iu" or not 1 <= shape[0] <= MAX_DEPTHWISE_LAYERS:
        raise ModelFormatError(f"'strides' must be a 1-d integer array of 1..{MAX_DEPTHWISE_LAYERS} "
                               f"entries, got {sdtype} {shape}")
    strides = [int(s) for s in _get(arrays, "strides")]
    if any(s not in (1, 2) for s in strides):
        raise ModelFormatError(f"'strides' entries must be 1 or 2, got {strides}")

    src = _QuantizedWeights(arrays, dtype) if quantized else _FloatWeights(arrays)
    c0 = _array_shape(arrays, "conv0/w", 4)[3]
    layers: list = [Conv3x3("conv0", 2, src.weights("conv0", (3, 3, 3, c0)), src.bias("conv0", c0),
                            src.quant("conv0", c0))]
    cin = c0
    for k, stride in enumerate(strides, start=1):
        layers.append(Depthwise3x3(f"dw{k}", stride, src.weights(f"dw{k}", (3, 3, cin)),
                                   src.bias(f"dw{k}", cin), src.quant(f"dw{k}", cin)))
        cout = _array_shape(arrays, f"pw{k}/w", 2)[1]
        layers.append(Pointwise(f"pw{k}", src.weights(f"pw{k}", (cin, cout)), src.bias(f"pw{k}", cout),
                                src.quant(f"pw{k}", cout)))
        cin = cout
    layers.append(GlobalPool("pool", pooling, src.quant("pool", None)))
    outputs = cin
    if "fc/w" in arrays:
        outputs = _array_shape(arrays, "fc/w", 2)[1]
        if outputs > MAX_CLASSES:
            raise ModelFormatError(f"'fc/w' declares {outputs} classes, more than {MAX_CLASSES}")
        layers.append(FullyConnected("fc", src.weights("fc", (cin, outputs)), src.bias("fc", outputs),
                                     src.quant("fc", outputs)))
    labels: Optional[List[str]] = None
    if "labels" in arrays:
        names = 2 if output_activation == "sigmoid" else outputs
        labels = [str(s) for s in _checked(
            arrays, "labels", "U", f"a 1-d string array of names of at most {MAX_NAME_CHARS} characters",
            lengths=(names,), itemsize=4 * MAX_NAME_CHARS)]
    return Network(layers, input_size, alpha=alpha, activation=activation, padding=padding,
                   input_mean=mean, input_std=std, labels=labels, crop=crop,
                   output_activation=output_activation, dtype=dtype, input_scale=in_scale,
                   input_zero_point=in_zp, input_dtype=input_dtype)
