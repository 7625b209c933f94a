"""The same network in ONNX Runtime and TFLite, for benchmarks in the same process.

ONNX: an equivalent graph written with the ``onnx`` package (NCHW, TF SAME's asymmetric pads
spelled out per convolution). TFLite: a ``.tflite`` file with the same weights (the float files
in ../shared/fixtures), resized to the wanted resolution. Both are optional dependencies.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .network import Network, conv_output


def onnx_model_bytes(network: Network, batch: int = 1) -> bytes:
    """Serialized ONNX model of a float ``network``: input 'x' (N, 3, H, W) float32 -> 'y'."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    lo, hi = network.clamp
    h0, w0 = network.input_size
    h, w = h0, w0
    x = "x"

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name))
        return name

    def activation(name, src):
        mn = const(name + "_min", np.array(lo, np.float32))
        if np.isfinite(hi):
            mx = const(name + "_max", np.array(hi, np.float32))
            nodes.append(helper.make_node("Clip", [src, mn, mx], [name + "_act"]))
        else:
            nodes.append(helper.make_node("Relu", [src], [name + "_act"]))
        return name + "_act"

    for layer in network.layers:
        if layer.kind in ("conv3x3", "depthwise3x3"):
            oh, top = conv_output(h, layer.stride, network.padding)
            ow, left = conv_output(w, layer.stride, network.padding)
            bottom = max((oh - 1) * layer.stride + 3 - h - top, 0)
            right = max((ow - 1) * layer.stride + 3 - w - left, 0)
            if layer.kind == "conv3x3":
                wt, group = layer.w.transpose(3, 2, 0, 1), 1           # HWIO -> OIHW
            else:
                wt, group = layer.w.transpose(2, 0, 1)[:, None], layer.w.shape[2]  # (C,1,3,3)
            nodes.append(helper.make_node(
                "Conv", [x, const(layer.name + "_w", wt), const(layer.name + "_b", layer.b)],
                [layer.name], kernel_shape=[3, 3], strides=[layer.stride] * 2, group=group,
                pads=[top, left, bottom, right]))
            x, h, w = activation(layer.name, layer.name), oh, ow
        elif layer.kind == "pointwise":
            wt = layer.w.T[:, :, None, None]
            nodes.append(helper.make_node("Conv", [x, const(layer.name + "_w", wt),
                                                   const(layer.name + "_b", layer.b)],
                                          [layer.name], kernel_shape=[1, 1]))
            x = activation(layer.name, layer.name)
        elif layer.kind == "global_pool":
            op = "GlobalMaxPool" if layer.mode == "max" else "GlobalAveragePool"
            nodes.append(helper.make_node(op, [x], ["pool"]))
            nodes.append(helper.make_node("Flatten", ["pool"], ["features"]))
            x = "features"
        elif layer.kind == "fully_connected":
            nodes.append(helper.make_node("Gemm", [x, const("fc_w", layer.w), const("fc_b", layer.b)],
                                          ["logits"]))
            x = "logits"
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    graph = helper.make_graph(
        nodes, "mobilenet_v1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, h0, w0])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, network.num_outputs])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def onnxruntime_runner(network: Network, threads: int, batch: int = 1) -> Optional[Callable]:
    """A callable running ``network`` in ONNX Runtime on NHWC input, or None if not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_model_bytes(network, batch), opts,
                                providers=["CPUExecutionProvider"])

    def run(x_nhwc: np.ndarray) -> np.ndarray:
        return sess.run(None, {"x": np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))})[0]

    return run


def tflite_runner(path: str, threads: int, resolution: int, batch: int = 1) -> Optional[Callable]:
    """A callable running a float ``.tflite`` file (XNNPACK) at ``resolution``, or None."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    it = Interpreter(model_path=path, num_threads=threads)
    inp = it.get_input_details()[0]["index"]
    it.resize_tensor_input(inp, [batch, resolution, resolution, 3])
    it.allocate_tensors()
    out = it.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        it.set_tensor(inp, x)
        it.invoke()
        return it.get_tensor(out)

    return run
