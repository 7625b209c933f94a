"""Read a TFLite flatbuffer (``.tflite``) into a plain description of its main graph.

No dependency on the ``tflite`` package or TensorFlow: the schema fields used here are read with
the bounds-checked :mod:`~tinymobile.converters.flatbuffer` reader, so a damaged or hostile file
raises :class:`~tinymobile.errors.ModelFormatError` rather than crashing.

What is returned (:class:`TFLiteModel`):

* ``tensors``: :class:`Tensor` — name, shape, type name (``"float32"``, ``"uint8"``, ``"int8"``,
  ``"int32"`` ...), the constant data as a read-only NumPy view shaped like the tensor (``None`` for
  activations), and :class:`Quantization` (per-tensor or per-axis scale / zero point);
* ``operators``: :class:`Operator` in execution order — builtin opcode name, input / output tensor
  indices (-1 = optional input left out) and the decoded options of the operators MobileNets use;
* ``inputs`` / ``outputs``: tensor indices of the graph's inputs and outputs;
* ``metadata``: {name: bytes} of the model's metadata buffers (``min_runtime_version``,
  ``TFLITE_METADATA`` ...) and ``associated_files``: {name: bytes} of the zip archive TFLite
  Support appends to the flatbuffer (labels files such as ``imagenet_labels.txt``).

Schema: tensorflow/lite/schema/schema.fbs (field numbers below are its ``id`` order).
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ModelFormatError
from ..files import read_bytes
from .flatbuffer import FlatBuffer, Table

#: TFLite's file identifier (bytes 4..8).
IDENTIFIER = b"TFL3"
#: Refuse files larger than this before reading them (largest MobileNet v1 is ~17 MB).
MAX_FILE_BYTES = 1 << 30
#: Associated files: at most this many, each at most this large once decompressed.
MAX_ASSOCIATED_FILES = 64
MAX_ASSOCIATED_FILE_BYTES = 16 << 20

#: TensorType -> (name, NumPy dtype or None when it has no plain NumPy equivalent).
TENSOR_TYPES: Dict[int, Tuple[str, Optional[str]]] = {
    0: ("float32", "<f4"), 1: ("float16", "<f2"), 2: ("int32", "<i4"), 3: ("uint8", "u1"),
    4: ("int64", "<i8"), 5: ("string", None), 6: ("bool", "?"), 7: ("int16", "<i2"),
    8: ("complex64", "<c8"), 9: ("int8", "i1"), 10: ("float64", "<f8"), 11: ("complex128", "<c16"),
    12: ("uint64", "<u8"), 13: ("resource", None), 14: ("variant", None), 15: ("uint32", "<u4"),
    16: ("uint16", "<u2"), 17: ("int4", None),
}

#: BuiltinOperator codes 0..127 (later ones are named BUILTIN_<n>).
BUILTIN_OPERATORS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION",
    "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR",
    "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL",
    "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER",
    "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2",
    "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM",
    "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL",
    "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL",
    "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT",
    "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT",
    "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD",
    "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS",
    "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU",
    "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF",
    "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2",
    "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL",
)

ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS = {0: "SAME", 1: "VALID"}

# Options decoders: opcode name -> (BuiltinOptions union type, [(field name, field id, fmt, default)]).
_PAD_STRIDES = [("padding", 0, "b", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0)]
_OPTIONS = {
    "CONV_2D": (1, _PAD_STRIDES + [("fused_activation", 3, "b", 0), ("dilation_w", 4, "i", 1),
                                   ("dilation_h", 5, "i", 1)]),
    "DEPTHWISE_CONV_2D": (2, _PAD_STRIDES + [("depth_multiplier", 3, "i", 0),
                                             ("fused_activation", 4, "b", 0),
                                             ("dilation_w", 5, "i", 1), ("dilation_h", 6, "i", 1)]),
    "AVERAGE_POOL_2D": (5, _PAD_STRIDES + [("filter_w", 3, "i", 0), ("filter_h", 4, "i", 0),
                                           ("fused_activation", 5, "b", 0)]),
    "MAX_POOL_2D": (5, _PAD_STRIDES + [("filter_w", 3, "i", 0), ("filter_h", 4, "i", 0),
                                       ("fused_activation", 5, "b", 0)]),
    "FULLY_CONNECTED": (8, [("fused_activation", 0, "b", 0), ("weights_format", 1, "b", 0),
                            ("keep_num_dims", 2, "?", False)]),
    "SOFTMAX": (9, [("beta", 0, "f", 0.0)]),
    "ADD": (11, [("fused_activation", 0, "b", 0)]),
    "MUL": (21, [("fused_activation", 0, "b", 0)]),
    "SUB": (28, [("fused_activation", 0, "b", 0)]),
    "MEAN": (27, [("keep_dims", 0, "?", False)]),
    "RESHAPE": (17, []),
    "SQUEEZE": (30, []),
}


@dataclass
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or along ``dimension``."""
    scale: np.ndarray        # (1,) or (channels,) float32
    zero_point: np.ndarray   # same length, int64
    dimension: int = 0       # axis of per-channel parameters
    min: Optional[np.ndarray] = None
    max: Optional[np.ndarray] = None

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    """One tensor of the graph. ``data`` is the constant's read-only view (``shape``), else None."""
    index: int
    name: str
    shape: Tuple[int, ...]
    type: str
    buffer: int
    data: Optional[np.ndarray] = None
    quantization: Optional[Quantization] = None

    def dequantized(self) -> np.ndarray:
        """The constant data as float32, dequantized when the tensor is quantized."""
        if self.data is None:
            raise ModelFormatError(f"tensor {self.name!r} has no constant data")
        q = self.quantization
        if q is None or self.type in ("float32", "float16", "float64"):
            return self.data.astype(np.float32)
        shape = [1] * len(self.shape)
        if q.per_channel:
            shape[q.dimension] = len(q.scale)
        scale = q.scale.astype(np.float64).reshape(shape or ())
        zero = q.zero_point.astype(np.float64).reshape(shape or ())
        return ((self.data.astype(np.float64) - zero) * scale).astype(np.float32)


@dataclass
class Operator:
    """One operator: ``opcode`` is the builtin name (``"CONV_2D"``...) or ``"CUSTOM:<name>"``."""
    index: int
    opcode: str
    version: int
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    options: Dict[str, object] = field(default_factory=dict)


@dataclass
class TFLiteModel:
    """The main subgraph of a TFLite model, plus its metadata and associated files."""
    version: int
    description: str
    tensors: List[Tensor]
    operators: List[Operator]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    metadata: Dict[str, bytes]
    associated_files: Dict[str, bytes]
    source: str = ""

    def producers(self) -> Dict[int, int]:
        """{tensor index: index of the operator that writes it}."""
        return {t: op.index for op in self.operators for t in op.outputs if t >= 0}

    def consumers(self) -> Dict[int, List[int]]:
        """{tensor index: indices of the operators that read it}."""
        out: Dict[int, List[int]] = {}
        for op in self.operators:
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(op.index)
        return out


def read(source, name: Optional[str] = None) -> TFLiteModel:
    """Parse a TFLite model from a path or from bytes.

    ``name`` is used in error messages (defaults to the path, or ``"<bytes>"``).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        name = name or path
        data = read_bytes(path, ".tflite file", max_bytes=MAX_FILE_BYTES,
                          too_large=lambda size: f"{size} bytes is too large for a TFLite MobileNet")
    else:
        data = bytes(source)
        name = name or "<bytes>"
    return parse(data, name)


def parse(data: bytes, name: str = "<bytes>") -> TFLiteModel:
    """Parse TFLite flatbuffer bytes (optionally followed by an associated-files zip)."""
    fb = FlatBuffer(data, what=name)
    if len(data) >= 8 and bytes(data[4:8]) != IDENTIFIER:
        raise ModelFormatError(f"{name}: not a TFLite model (file identifier {bytes(data[4:8])!r}, "
                               f"expected {IDENTIFIER!r})")
    model = fb.root(IDENTIFIER)
    version = model.scalar(0, "I")
    opcodes = [_opcode(t) for t in model.tables(1, "operator_codes")]
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise ModelFormatError(f"{name}: the model has no subgraph")
    buffers = model.tables(4, "buffers")
    metadata = {}
    for m in model.tables(6, "metadata"):
        key = m.string(0, "")
        metadata[key] = _buffer_bytes(fb, buffers, m.scalar(1, "I"), f"metadata {key!r}")

    graph = subgraphs[0]
    tensors = [_tensor(fb, t, k, buffers) for k, t in enumerate(graph.tables(0, "tensors"))]
    n = len(tensors)
    inputs = _indices(graph.array(1, "<i4"), n, "graph inputs", fb)
    outputs = _indices(graph.array(2, "<i4"), n, "graph outputs", fb)
    operators = []
    for k, t in enumerate(graph.tables(3, "operators")):
        idx = t.scalar(0, "I")
        if idx >= len(opcodes):
            raise fb.error(f"operator {k} uses opcode {idx}, but there are {len(opcodes)}")
        opname, opversion = opcodes[idx]
        operators.append(Operator(
            k, opname, opversion,
            _indices(t.array(1, "<i4"), n, f"operator {k} inputs", fb, optional=True),
            _indices(t.array(2, "<i4"), n, f"operator {k} outputs", fb),
            _options(t, opname, f"operator {k} ({opname}) options")))
    return TFLiteModel(version, model.string(3, ""), tensors, operators, inputs, outputs,
                       metadata, associated_files(data, name), name)


def _opcode(t: Table) -> Tuple[str, int]:
    # The real code is the larger of deprecated_builtin_code (int8, field 0) and builtin_code (3).
    code = max(t.scalar(0, "b"), t.scalar(3, "i"))
    if code == 32:
        return "CUSTOM:" + (t.string(1, "") or ""), t.scalar(2, "i", 1)
    name = BUILTIN_OPERATORS[code] if 0 <= code < len(BUILTIN_OPERATORS) else f"BUILTIN_{code}"
    return name, t.scalar(2, "i", 1)


def _indices(arr: Optional[np.ndarray], n: int, what: str, fb: FlatBuffer,
             optional: bool = False) -> Tuple[int, ...]:
    if arr is None:
        return ()
    lo = -1 if optional else 0
    if len(arr) and (arr.min() < lo or arr.max() >= n):
        raise fb.error(f"{what} {arr.tolist()} refer to tensors outside 0..{n - 1}")
    return tuple(int(i) for i in arr)


def _buffer_bytes(fb: FlatBuffer, buffers: List[Table], index: int, what: str) -> bytes:
    """The raw bytes of buffer ``index`` (inline data, or offset/size for >2 GB models)."""
    view = _buffer_view(fb, buffers, index, what)
    return b"" if view is None else bytes(view)


def _buffer_view(fb: FlatBuffer, buffers: List[Table], index: int, what: str) -> Optional[np.ndarray]:
    if index >= len(buffers):
        raise fb.error(f"{what} uses buffer {index}, but there are {len(buffers)}")
    buf = buffers[index]
    data = buf.array(0, "u1")
    if data is not None and len(data):
        return data
    offset, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
    if offset > 1:  # offset 0/1 mean "no data" in the schema
        fb.check(offset, size, f"{what} (buffer {index}, external data)")
        return np.frombuffer(fb.data, dtype=np.uint8, count=size, offset=offset)
    return None


def _tensor(fb: FlatBuffer, t: Table, index: int, buffers: List[Table]) -> Tensor:
    name = t.string(3, "") or f"tensor_{index}"
    shape_arr = t.array(0, "<i4")
    shape = () if shape_arr is None else tuple(int(s) for s in shape_arr)
    type_code = t.scalar(1, "b")
    type_name, dtype = TENSOR_TYPES.get(type_code, (f"type_{type_code}", None))
    buffer = t.scalar(2, "I")
    what = f"tensor {index} ({name!r})"
    raw = _buffer_view(fb, buffers, buffer, what)
    data = None
    if raw is not None and len(raw):
        if dtype is None:
            raise fb.error(f"{what} has constant data of unsupported type {type_name}")
        if any(s < 0 for s in shape):
            raise fb.error(f"{what} has constant data but a dynamic shape {shape}")
        itemsize = np.dtype(dtype).itemsize
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if count * itemsize != len(raw):
            raise fb.error(f"{what} has shape {shape} of {type_name} ({count * itemsize} bytes) "
                           f"but its buffer holds {len(raw)} bytes")
        data = raw.view(dtype).reshape(shape)
    q = t.table(4, f"{what} quantization")
    return Tensor(index, name, shape, type_name, buffer, data, _quantization(fb, q, shape, what))


def _quantization(fb: FlatBuffer, q: Optional[Table], shape, what: str) -> Optional[Quantization]:
    if q is None:
        return None
    scale, zero = q.array(2, "<f4"), q.array(3, "<i8")
    if scale is None or len(scale) == 0:
        return None  # min/max only (or empty): not quantized for inference
    if zero is None or len(zero) == 0:
        zero = np.zeros(len(scale), np.int64)
    if len(zero) != len(scale):
        raise fb.error(f"{what}: {len(scale)} scales but {len(zero)} zero points")
    dim = q.scalar(6, "i")
    if len(scale) > 1 and not (0 <= dim < len(shape) and shape[dim] == len(scale)):
        raise fb.error(f"{what}: {len(scale)} per-channel scales along dimension {dim} "
                       f"do not match shape {shape}")
    if not np.isfinite(scale).all():
        raise fb.error(f"{what}: quantization scale is not finite")
    mn, mx = q.array(0, "<f4"), q.array(1, "<f4")
    return Quantization(scale.astype(np.float32), zero.astype(np.int64), dim,
                        None if mn is None else mn.copy(), None if mx is None else mx.copy())


def _options(t: Table, opname: str, what: str) -> Dict[str, object]:
    spec = _OPTIONS.get(opname)
    if spec is None:
        return {}
    union_type, fields = spec
    opt = t.table(4, what)
    actual = t.scalar(3, "B")
    if opt is not None and actual != union_type:
        raise t.fb.error(f"{what}: options of union type {actual}, expected {union_type}")
    out: Dict[str, object] = {}
    for key, fid, fmt, default in fields:
        out[key] = default if opt is None else opt.scalar(fid, fmt, default)
    if "padding" in out:
        out["padding"] = PADDINGS.get(out["padding"], f"padding_{out['padding']}")
    if "fused_activation" in out:
        code = out["fused_activation"]
        out["fused_activation"] = ACTIVATIONS.get(code, f"activation_{code}")
    if opname in ("RESHAPE", "SQUEEZE") and opt is not None:
        arr = opt.array(0, "<i4")
        out["new_shape" if opname == "RESHAPE" else "squeeze_dims"] = (
            () if arr is None else tuple(int(s) for s in arr))
    return out


def associated_files(data: bytes, name: str = "<bytes>") -> Dict[str, bytes]:
    """{file name: contents} of the zip appended to a TFLite flatbuffer; {} when there is none.

    Members are size-limited (declared and actual); a zip that is present but damaged raises
    ModelFormatError.
    """
    tail = bytes(data[-(65536 + 22):])
    if b"PK\x05\x06" not in tail:
        return {}
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, struct.error, OSError, OverflowError, EOFError,
            IndexError, KeyError, NotImplementedError):
        return {}  # the byte pattern occurred by chance inside the flatbuffer (or an odd zip)
    out: Dict[str, bytes] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ASSOCIATED_FILES:
            raise ModelFormatError(f"{name}: {len(infos)} associated files: refused")
        for info in infos:
            if info.is_dir():
                continue
            if info.file_size > MAX_ASSOCIATED_FILE_BYTES:
                raise ModelFormatError(f"{name}: associated file {info.filename!r} declares "
                                       f"{info.file_size} bytes: refused")
            try:
                with zf.open(info) as f:
                    content = f.read(MAX_ASSOCIATED_FILE_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, ValueError, struct.error, OSError,
                    NotImplementedError, RuntimeError, EOFError, OverflowError) as e:
                raise ModelFormatError(f"{name}: associated file {info.filename!r} is unreadable "
                                       f"({e})") from None
            if len(content) > MAX_ASSOCIATED_FILE_BYTES:
                raise ModelFormatError(f"{name}: associated file {info.filename!r} is too large")
            out[os.path.basename(info.filename)] = content
    return out


def labels_from_files(files: Dict[str, bytes], num_classes: int) -> Optional[List[str]]:
    """The label list among ``files`` that has exactly ``num_classes`` lines, if any.

    Files whose name mentions "label" are preferred; blank trailing lines are ignored.
    """
    candidates = sorted(files, key=lambda n: ("label" not in n.lower(), n))
    for fname in candidates:
        try:
            text = files[fname].decode("utf-8")
        except UnicodeDecodeError:
            continue
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) == num_classes:
            return [s.strip() for s in lines]
    return None
