"""The TFLite flatbuffer reader against TFLite's own interpreter, and against damaged files."""
from __future__ import annotations

import glob
import os
import struct

import numpy as np
import pytest

from tinymobile.converters import tflite_file
from tinymobile.converters.flatbuffer import FlatBuffer
from tinymobile.errors import ModelFormatError

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
TFLITE_FILES = sorted(glob.glob(os.path.join(SHARED, "fixtures", "*.tflite"))
                      + glob.glob(os.path.join(SHARED, "models", "*.tflite")))
needs_files = pytest.mark.skipif(not TFLITE_FILES, reason="../shared has no .tflite files")

NP_TYPES = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8, "int32": np.int32,
            "int64": np.int64}


@needs_files
@pytest.mark.parametrize("path", TFLITE_FILES, ids=os.path.basename)
def test_tensors_match_tflite_interpreter(path):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interp = litert.Interpreter(model_path=path)
    interp.allocate_tensors()
    model = tflite_file.read(path)
    details = interp.get_tensor_details()
    assert len(details) == len(model.tensors)
    for d in details:
        t = model.tensors[d["index"]]
        assert t.name == d["name"]
        assert t.shape == tuple(d["shape"])
        assert NP_TYPES[t.type] == d["dtype"]
        qp = d["quantization_parameters"]
        if t.quantization is None:
            assert len(qp["scales"]) == 0
        else:
            np.testing.assert_array_equal(t.quantization.scale, qp["scales"])
            np.testing.assert_array_equal(t.quantization.zero_point, qp["zero_points"])
            assert t.quantization.dimension == qp["quantized_dimension"]
        if t.data is not None:
            np.testing.assert_array_equal(t.data, interp.get_tensor(d["index"]))
    assert model.inputs == tuple(d["index"] for d in interp.get_input_details())
    assert model.outputs == tuple(d["index"] for d in interp.get_output_details())
    ops = interp._get_ops_details()
    # A delegate (XNNPACK) shows up as extra DELEGATE nodes after the model's own operators.
    assert all(o["op_name"] == "DELEGATE" for o in ops[len(model.operators):])
    ops = ops[:len(model.operators)]
    assert [op.opcode for op in model.operators] == [o["op_name"] for o in ops]
    for op, o in zip(model.operators, ops):
        assert op.inputs == tuple(o["inputs"]) and op.outputs == tuple(o["outputs"])


@needs_files
def test_options_of_a_quantized_classifier():
    path = os.path.join(SHARED, "models", "mobilenet_v1_0.25_128_quant.tflite")
    model = tflite_file.read(path)
    convs = [op for op in model.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == 28  # conv0 + 13 x (dw, pw) + logits
    assert convs[0].options["stride_w"] == convs[0].options["stride_h"] == 2
    assert all(op.options["padding"] == "SAME" for op in convs)
    assert all(op.options["fused_activation"] == "RELU6" for op in convs[:-1])
    assert convs[-1].options["fused_activation"] == "NONE"
    dws = [op for op in convs if op.opcode == "DEPTHWISE_CONV_2D"]
    assert [op.options["stride_w"] for op in dws] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert all(op.options["depth_multiplier"] == 1 for op in dws)
    assert model.operators[-1].opcode == "SOFTMAX"
    # Labels come from the zip appended to the flatbuffer.
    assert "imagenet_labels.txt" in model.associated_files
    labels = tflite_file.labels_from_files(model.associated_files, 1001)
    assert labels is not None and len(labels) == 1001
    assert tflite_file.labels_from_files(model.associated_files, 1000) is None
    w = model.tensors[convs[0].inputs[1]]
    assert w.type == "uint8" and w.data.dtype == np.uint8 and w.data.shape == (8, 3, 3, 3)
    deq = w.dequantized()
    q = w.quantization
    np.testing.assert_allclose(deq, (w.data.astype(np.float64) - q.zero_point[0]) * q.scale[0],
                               rtol=1e-6)




@needs_files
def test_truncated_files_raise_model_format_error():
    data = open(os.path.join(SHARED, "fixtures", "mobilenet_0.25_128_f32.tflite"), "rb").read()
    rng = np.random.default_rng(0)
    cuts = sorted(set(rng.integers(0, len(data), 40).tolist()) | {0, 3, 7, 8, 100, len(data) - 1})
    for cut in cuts:
        with pytest.raises(ModelFormatError):
            tflite_file.parse(data[:cut], "cut")


@needs_files
@pytest.mark.parametrize("path", TFLITE_FILES[:2] + TFLITE_FILES[-2:], ids=os.path.basename)
def test_corrupted_files_never_crash(path):
    """Random byte damage: either parses or raises ModelFormatError, nothing else."""
    data = open(path, "rb").read()
    rng = np.random.default_rng(1)
    # Damage concentrated in the flatbuffer's tables (the first and last kilobytes hold vtables,
    # offsets and the tensor/operator tables; the middle is mostly weights).
    for trial in range(150):
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 8))):
            region = rng.integers(0, 3)
            if region == 0:
                pos = int(rng.integers(0, min(4096, len(buf))))
            elif region == 1:
                pos = int(rng.integers(max(0, len(buf) - 40000), len(buf)))
            else:
                pos = int(rng.integers(0, len(buf)))
            buf[pos] = int(rng.integers(0, 256))
        try:
            tflite_file.parse(bytes(buf), "damaged")
        except ModelFormatError:
            pass


def test_not_a_tflite_file():
    with pytest.raises(ModelFormatError, match="not a TFLite model"):
        tflite_file.parse(b"\x00" * 4 + b"XXXX" + b"\x00" * 64)
    with pytest.raises(ModelFormatError, match="too short"):
        tflite_file.parse(b"abc")
    with pytest.raises(ModelFormatError, match="no such file"):
        tflite_file.read("/nonexistent/model.tflite")


def test_hostile_offsets_are_refused():
    # Root offset beyond the end.
    with pytest.raises(ModelFormatError):
        tflite_file.parse(struct.pack("<I", 1 << 30) + b"TFL3" + b"\x00" * 16)
    # A table whose vtable claims to be 64 KB long.
    buf = bytearray(struct.pack("<I", 12) + b"TFL3" + struct.pack("<HH", 0xFFFE, 8)
                    + struct.pack("<i", 4) + b"\x00" * 8)
    with pytest.raises(ModelFormatError):
        tflite_file.parse(bytes(buf))


def test_vector_length_larger_than_file_is_refused():
    # Root table at 16 with a vtable at 8 (size 6, table size 8, field 0 at +4): a vector whose
    # length field claims 2**31 elements.
    vt = struct.pack("<HHH", 6, 8, 4) + b"\x00\x00"
    table = struct.pack("<i", 16 - 8) + struct.pack("<I", 4)  # vector right after
    vec = struct.pack("<I", 1 << 31) + b"\x00" * 8
    buf = struct.pack("<I", 16) + b"TFL3" + vt + table + vec
    fb = FlatBuffer(buf)
    root = fb.root(b"TFL3")
    with pytest.raises(ModelFormatError, match="outside"):
        root.array(0, "<i4")
    with pytest.raises(ModelFormatError):
        root.tables(0, "things")


from hypothesis import given, settings, strategies as st  # noqa: E402

_SMALL = None


def _small_model_bytes() -> bytes:
    """The smallest fixture (cached), for mutation-based fuzzing."""
    global _SMALL
    if _SMALL is None:
        path = os.path.join(SHARED, "models", "mobilenet_v1_0.25_128_quant.tflite")
        _SMALL = open(path, "rb").read() if os.path.exists(path) else b""
    return _SMALL


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=512))
def test_random_bytes_raise_only_model_format_error(tail):
    for data in (tail, struct.pack("<I", 8) + b"TFL3" + tail, tail[:4] + b"TFL3" + tail[8:]):
        try:
            tflite_file.parse(data, "random")
        except ModelFormatError:
            pass


@needs_files
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 1 << 30))
def test_mutated_model_raises_only_model_format_error(edits, cut):
    data = bytearray(_small_model_bytes())
    n = len(data)
    for pos, value in edits:
        # Bias the edits towards the tables at both ends (the weights in between are inert).
        pos = pos % 8192 if pos % 2 else n - 1 - pos % 60000
        data[pos] = value
    if cut % 3 == 0:
        data = data[: cut % n]
    try:
        tflite_file.parse(bytes(data), "mutated")
    except ModelFormatError:
        pass
