"""Test helper: edit real TFLite models with the schema's object API (shipped with ai-edge-litert)
to make graph variants — a float copy of a quantized TF-slim model, explicit PAD operators, other
activations — that TFLite's own interpreter can then run as the oracle."""
from __future__ import annotations

import numpy as np

from ai_edge_litert import schema_py_generated as s  # noqa: E402  (callers importorskip first)
import flatbuffers


def read(path: str) -> "s.ModelT":
    return s.ModelT.InitFromPackedBuf(bytearray(open(path, "rb").read()), 0)


def pack(model: "s.ModelT") -> bytes:
    b = flatbuffers.Builder(1 << 20)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def op_name(model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    return names[max(code.builtinCode, code.deprecatedBuiltinCode)]


def _add_buffer(model, data: np.ndarray) -> int:
    buf = s.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    model.buffers.append(buf)
    return len(model.buffers) - 1


def _add_tensor(model, name, shape, ttype, data=None) -> int:
    g = model.subgraphs[0]
    t = s.TensorT()
    t.name, t.shape, t.type = name, list(shape), ttype
    t.buffer = _add_buffer(model, data) if data is not None else 0
    g.tensors.append(t)
    return len(g.tensors) - 1


def _opcode_index(model, builtin: int) -> int:
    for i, c in enumerate(model.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == builtin:
            return i
    c = s.OperatorCodeT()
    c.builtinCode = builtin
    c.deprecatedBuiltinCode = min(builtin, 127)
    c.version = 1
    model.operatorCodes.append(c)
    return len(model.operatorCodes) - 1


def dequantize_model(path: str) -> "s.ModelT":
    """A float32 copy of a uint8 TFLite model: weights and biases dequantized, activations float.

    The input becomes float32 (already normalised); biases use input_scale * weight_scale.
    """
    m = read(path)
    g = m.subgraphs[0]
    scale = {}
    for i, t in enumerate(g.tensors):
        if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale):
            scale[i] = (np.asarray(t.quantization.scale, np.float64),
                        np.asarray(t.quantization.zeroPoint, np.float64))
    bias_scale = {}
    for op in g.operators:
        if op_name(m, op) in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(op.inputs) > 2:
            bias_scale[int(op.inputs[2])] = scale[int(op.inputs[0])][0] * scale[int(op.inputs[1])][0]
    for i, t in enumerate(g.tensors):
        data = m.buffers[t.buffer].data if t.buffer < len(m.buffers) else None
        has_data = data is not None and len(data) > 0
        if t.type == s.TensorType.UINT8:
            if has_data:
                q = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.uint8).astype(np.float64)
                sc, zp = scale[i]
                m.buffers[t.buffer].data = np.frombuffer(
                    ((q - zp[0]) * sc[0]).astype(np.float32).tobytes(), np.uint8)
            t.type = s.TensorType.FLOAT32
            t.quantization = None
        elif t.type == s.TensorType.INT32 and i in bias_scale:
            q = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.int32).astype(np.float64)
            m.buffers[t.buffer].data = np.frombuffer(
                (q * bias_scale[i]).astype(np.float32).tobytes(), np.uint8)
            t.type = s.TensorType.FLOAT32
            t.quantization = None
    for c in m.operatorCodes:
        c.version = 1
    m.metadata = None
    m.metadataBuffer = None
    return m


def convs(model) -> list:
    """Indices of the CONV_2D / DEPTHWISE_CONV_2D operators."""
    return [k for k, op in enumerate(model.subgraphs[0].operators)
            if op_name(model, op) in ("CONV_2D", "DEPTHWISE_CONV_2D")]


def insert_pad(model, op_index: int, pads) -> None:
    """Put an explicit PAD(pads) in front of operator ``op_index`` and make it VALID."""
    g = model.subgraphs[0]
    op = g.operators[op_index]
    src = g.tensors[int(op.inputs[0])]
    pads = np.asarray(pads, np.int32)
    shape = [int(d) + int(pads[k].sum()) for k, d in enumerate(src.shape)]
    p = _add_tensor(model, f"pad_{op_index}/paddings", (4, 2), s.TensorType.INT32, pads)
    out = _add_tensor(model, f"pad_{op_index}/out", shape, src.type)
    pad = s.OperatorT()
    pad.opcodeIndex = _opcode_index(model, s.BuiltinOperator.PAD)
    pad.inputs, pad.outputs = [int(op.inputs[0]), p], [out]
    pad.builtinOptionsType = s.BuiltinOptions.PadOptions
    pad.builtinOptions = s.PadOptionsT()
    op.inputs = [out] + [int(i) for i in op.inputs[1:]]
    op.builtinOptions.padding = s.Padding.VALID
    g.operators.insert(op_index, pad)


def set_activation(model, activation: int) -> None:
    """Every fused RELU6 becomes ``activation``."""
    for op in model.subgraphs[0].operators:
        o = op.builtinOptions
        if o is not None and getattr(o, "fusedActivationFunction", None) == s.ActivationFunctionType.RELU6:
            o.fusedActivationFunction = activation


def run(data: bytes, x: np.ndarray) -> np.ndarray:
    """TFLite's output for each row of ``x`` (the graph has batch 1)."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    ys = []
    for row in x:
        interp.set_tensor(inp["index"], row[None].astype(inp["dtype"]))
        interp.invoke()
        ys.append(interp.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(ys)


def quantize_weights_per_channel(model) -> "s.ModelT":
    """Make every CONV_2D / DEPTHWISE_CONV_2D weight int8, symmetric, per output channel (axis 0
    for CONV_2D, 3 for DEPTHWISE_CONV_2D), in place; biases and activations stay float32.

    Returns a float32 copy-by-value of the model whose weights are the dequantized int8 values,
    i.e. what a correct reader must reconstruct.
    """
    import copy
    g = model.subgraphs[0]
    expected = copy.deepcopy(model)
    for k in convs(model):
        op = g.operators[k]
        axis = 3 if op_name(model, op) == "DEPTHWISE_CONV_2D" else 0
        t = g.tensors[int(op.inputs[1])]
        raw = np.asarray(model.buffers[t.buffer].data, np.uint8).tobytes()
        w = np.frombuffer(raw, np.float32).reshape(t.shape).astype(np.float64)
        other = tuple(a for a in range(4) if a != axis)
        scale = np.abs(w).max(axis=other) / 127.0
        scale[scale == 0] = 1.0
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        model.buffers[t.buffer].data = np.frombuffer(q.tobytes(), np.uint8)
        t.type = s.TensorType.INT8
        t.quantization = s.QuantizationParametersT(
            scale=[float(v) for v in scale.astype(np.float32)], zeroPoint=[0] * len(scale),
            quantizedDimension=axis)
        deq = (q.astype(np.float64) * scale.astype(np.float32).reshape(shape)).astype(np.float32)
        et = expected.subgraphs[0].tensors[int(op.inputs[1])]
        expected.buffers[et.buffer].data = np.frombuffer(deq.tobytes(), np.uint8)
    return expected
