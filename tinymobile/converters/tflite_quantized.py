"""Quantized TFLite MobileNet v1 -> :class:`~tinymobile.network.Network` (quantized`.

Accepts the two kinds of integer MobileNet v1 TFLite files:

* uint8 asymmetric, per-tensor (TF-slim ``_quant`` models, the Coral models): CONV_2D,
  DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, CONV_2D 1x1 "conv_preds", RESHAPE, SOFTMAX;
* int8 with per-channel symmetric weights (TFLite post-training quantization): optionally a
  QUANTIZE of a float input first, MEAN or AVERAGE_POOL_2D for the pooling, FULLY_CONNECTED or
  CONV_2D 1x1 for the classifier, DEQUANTIZE / SOFTMAX at the end.

The weights are copied unchanged (no re-quantization): TFLite's OHWI convolution filters become
HWIO, (1, 3, 3, C) depthwise filters (3, 3, C), (Cout, 1, 1, Cin) / (classes, Cin) become
(Cin, Cout). The graph must be a plain chain; anything else raises ModelFormatError naming the
operator. The classifier's output (the tensor TFLite feeds to its softmax) is the model output.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ModelFormatError
from ..fixedpoint import DTYPE_RANGE, activation_range, quantize_multiplier, quantize_multipliers
from ..network import (Conv3x3, Depthwise3x3, FullyConnected, GlobalPool, LayerQuant, Network,
                       Pointwise)
from ..validate import check_network
from .netbuild import alpha_of, default_crop
from .tflite_file import TFLiteModel, Tensor, labels_from_files

#: Operators skipped because they do not change the quantized values.
_PASS_THROUGH = ("RESHAPE", "SQUEEZE")
#: Operators that end the network: what they read is the model output.
_TERMINAL = ("SOFTMAX", "DEQUANTIZE", "QUANTIZE")
#: TF-slim / Keras inputs are scaled to [-1, 1].
_MOBILENET_RANGE = 127.5


def is_quantized(model: TFLiteModel) -> bool:
    """True when the model's convolutions have integer (uint8/int8) weights."""
    for op in model.operators:
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1:
            return model.tensors[op.inputs[1]].type in ("uint8", "int8")
    return False


def is_integer_model(model: TFLiteModel) -> bool:
    """True when the activations are integers too: the graph input is uint8/int8, or the first
    operator QUANTIZEs a float input (weight-only quantized models are not)."""
    if len(model.inputs) != 1:
        return False
    if model.tensors[model.inputs[0]].type in DTYPE_RANGE:
        return True
    ops = model.operators
    return bool(ops) and ops[0].opcode == "QUANTIZE" and model.tensors[ops[0].outputs[0]].type in DTYPE_RANGE


def convert(model: TFLiteModel) -> Network:
    """The quantized network of ``model`` (see the module docstring)."""
    return convert_with_map(model)[0]


def convert_with_map(model: TFLiteModel) -> Tuple[Network, Dict[str, int]]:
    """The network and {layer name: index of the TFLite tensor holding that layer's output}."""
    return _Converter(model).run()


class _Converter:
    def __init__(self, model: TFLiteModel):
        self.m = model
        self.src = model.source or "<tflite>"
        self.layers: List = []
        self.quant: Dict[str, LayerQuant] = {}
        self.tensor_of: Dict[str, int] = {}
        self.activations: List[str] = []
        self.paddings: List[str] = []
        self.strides: List[int] = []

    def error(self, op, msg: str) -> ModelFormatError:
        where = f"operator {op.index} ({op.opcode})" if op is not None else "graph"
        return ModelFormatError(f"{self.src}: {where}: {msg}")

    def tensor(self, index: int) -> Tensor:
        return self.m.tensors[index]

    def qparams(self, op, t: Tensor) -> Tuple[float, int]:
        q = t.quantization
        if q is None or q.per_channel:
            raise self.error(op, f"tensor {t.name!r} must have per-tensor quantization")
        return float(q.scale[0]), int(q.zero_point[0])

    # ---------------------------------------------------------------------------------------

    def run(self) -> Tuple[Network, Dict[str, int]]:
        m = self.m
        if len(m.inputs) != 1:
            raise self.error(None, f"expected one input, found {len(m.inputs)}")
        ops = self.main_chain()
        cur = m.inputs[0]
        t_in = self.tensor(cur)
        self.input_dtype = t_in.type
        if ops and ops[0].opcode == "QUANTIZE" and ops[0].inputs and ops[0].inputs[0] == cur:
            q_out = self.tensor(ops[0].outputs[0])
            if t_in.type in DTYPE_RANGE:
                self.check_requantize(ops[0], t_in, q_out)
            elif t_in.type != "float32":
                raise self.error(ops[0], f"QUANTIZE of a {t_in.type} input is not supported")
            cur = ops[0].outputs[0]
            t_in = q_out
            ops = ops[1:]
        dtype = t_in.type
        if dtype not in DTYPE_RANGE:
            raise self.error(None, f"input tensor is {dtype}; a quantized model takes uint8 or int8")
        if len(t_in.shape) != 4 or t_in.shape[3] != 3 or min(t_in.shape[1:3]) < 1:
            raise self.error(None, f"input shape {t_in.shape} is not (1, H, W, 3)")
        self.dtype = dtype
        in_scale, in_zp = self.qparams(None, t_in)
        self.cur_scale = in_scale
        input_size = (int(t_in.shape[1]), int(t_in.shape[2]))
        n_dw = 0
        pooled = False
        tail: List = []
        for i, op in enumerate(ops):
            if op.opcode in _TERMINAL:
                tail = ops[i:]
                break
            if not op.inputs or op.inputs[0] != cur:
                raise self.error(op, "the graph is not a plain chain of layers")
            if op.opcode in _PASS_THROUGH:
                out = self.tensor(op.outputs[0])
                if self.qparams(op, out) != self.qparams(op, self.tensor(cur)):
                    raise self.error(op, "changes the quantization")
                cur = op.outputs[0]
                continue
            if op.opcode == "CONV_2D":
                kind = self.conv(op, pooled, n_dw)
            elif op.opcode == "DEPTHWISE_CONV_2D":
                n_dw += 1
                kind = self.depthwise(op, n_dw)
            elif op.opcode in ("AVERAGE_POOL_2D", "MEAN"):
                kind = self.pool(op)
                pooled = True
            elif op.opcode in ("MAX_POOL_2D", "REDUCE_MAX"):
                raise self.error(op, "global max pooling in a quantized model is not supported "
                                     "(tinymobile's integer engine pools by averaging); convert "
                                     "the float model instead")
            elif op.opcode == "FULLY_CONNECTED":
                kind = self.fully_connected(op, pooled)
            elif op.opcode == "LOGISTIC":
                raise self.error(op, "a quantized sigmoid output is not supported; convert the "
                                     "float model instead")
            else:
                raise self.error(op, "operator not supported in a quantized MobileNet v1")
            self.tensor_of[kind] = op.outputs[0]
            cur = op.outputs[0]
        self.check_tail(tail, cur)
        if not pooled:
            raise self.error(None, "no average pool found")
        if not self.layers or not isinstance(self.layers[0], Conv3x3):
            raise self.error(None, "the first layer is not a 3x3 convolution")

        activation = "relu6" if all(a == "RELU6" for a in self.activations) else "relu"
        if any(a not in ("RELU6", "RELU") for a in self.activations):
            raise self.error(None, f"convolution activations {sorted(set(self.activations))} are "
                                   "not all ReLU / ReLU6")
        if any(p != "SAME" for p in self.paddings):
            raise self.error(None, "3x3 convolutions must use SAME padding")
        classes = self.layers[-1].cout if isinstance(self.layers[-1], FullyConnected) else None
        labels = labels_from_files(self.m.associated_files, classes) if classes else None
        # The quantized input is the pixel itself when scale = 1/128 and zero point = 128: store
        # mean/std so that quantizing the preprocessed image reproduces that (mean = zp, std =
        # 1/scale for uint8). For int8 inputs keep TensorFlow's [-1, 1] preprocessing.
        if dtype == "uint8":
            mean = np.full(3, float(in_zp), np.float32)
            std = np.full(3, 1.0 / in_scale, np.float32)
        else:
            mean = np.full(3, _MOBILENET_RANGE, np.float32)
            std = np.full(3, _MOBILENET_RANGE, np.float32)
        alpha = alpha_of(self.layers)
        net = Network(self.layers, input_size, alpha=alpha, activation=activation,
                      padding="tf_same", input_mean=mean, input_std=std, labels=labels,
                      dtype=dtype, input_scale=in_scale, input_zero_point=in_zp, quant=self.quant,
                      crop=default_crop(self.tensor(m.inputs[0])),
                      input_dtype=self.input_dtype if self.input_dtype in DTYPE_RANGE else dtype)
        try:
            check_network(net)
        except ValueError as e:
            raise ModelFormatError(f"{self.src}: {e}") from None
        self.check_shapes(net)
        return net, dict(self.tensor_of)

    def main_chain(self) -> List:
        """The operators from the graph input to its output along each operator's first input,
        in execution order. Everything else is a side computation whose only effect is the
        target shape of a RESHAPE (SHAPE -> STRIDED_SLICE -> PACK of a Keras Reshape, sometimes
        on a DEQUANTIZE'd copy): values do not depend on it (shapes are checked separately)."""
        m = self.m
        if len(m.outputs) != 1:
            raise self.error(None, f"expected one output, found {len(m.outputs)}")
        producers = m.producers()
        chain, t = [], m.outputs[0]
        while t != m.inputs[0]:
            if t not in producers or len(chain) > len(m.operators):
                raise self.error(None, f"the graph output does not depend on the input along a "
                                       f"chain of operators (stopped at tensor {self.tensor(t).name!r})")
            op = m.operators[producers[t]]
            if not op.inputs or op.inputs[0] < 0:
                raise self.error(op, "an operator without a data input on the main chain")
            chain.append(op)
            t = op.inputs[0]
        return chain[::-1]

    def check_requantize(self, op, t_in: Tensor, t_out: Tensor) -> None:
        """A uint8 input QUANTIZE'd to int8 (``inference_input_type=tf.uint8``): bit-exact as
        ``q - 128`` only when the scale is the same and the zero points differ by 128."""
        s_in, zp_in = self.qparams(op, t_in)
        s_out, zp_out = self.qparams(op, t_out)
        if not (t_in.type == "uint8" and t_out.type == "int8" and np.float32(s_in) == np.float32(s_out)
                and zp_in - zp_out == 128):
            raise self.error(op, f"requantizing the {t_in.type} input (scale {s_in:g}, zero point "
                                 f"{zp_in}) to {t_out.type} (scale {s_out:g}, zero point {zp_out}) "
                                 "is supported only as uint8 -> int8 with the same scale")

    def check_tail(self, tail: List, cur: int) -> None:
        """What may follow the classifier: SOFTMAX then QUANTIZE / DEQUANTIZE of its output (the
        model outputs the tensor fed to the softmax), or a DEQUANTIZE; RESHAPE / SQUEEZE anywhere;
        nothing else."""
        codes = [op.opcode for op in tail if op.opcode not in _PASS_THROUGH]
        allowed = ([], ["DEQUANTIZE"], ["SOFTMAX"], ["SOFTMAX", "DEQUANTIZE"], ["SOFTMAX", "QUANTIZE"])
        if codes not in allowed:
            raise self.error(tail[0] if tail else None,
                             f"the graph ends in {' -> '.join(codes)} after the classifier: "
                             "supported are SOFTMAX and a final QUANTIZE / DEQUANTIZE")
        prev = cur
        for op in tail:
            if not op.inputs or op.inputs[0] != prev:
                raise self.error(op, "the graph is not a plain chain of layers")
            prev = op.outputs[0]
        if self.m.outputs and prev != self.m.outputs[0]:
            raise self.error(None, "the operator chain does not end at the graph output")

    # ---------------------------------------------------------------------------------------

    def weights(self, op, expect_dtype: Optional[str] = None):
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            raise self.error(op, "needs weights and a bias")
        w, b = self.tensor(op.inputs[1]), self.tensor(op.inputs[2])
        if w.data is None or b.data is None:
            raise self.error(op, "weights and bias must be constants")
        if w.type not in DTYPE_RANGE:
            raise self.error(op, f"weights are {w.type}, expected uint8 or int8")
        if b.type != "int32":
            raise self.error(op, f"bias is {b.type}, expected int32")
        q = w.quantization
        if q is None:
            raise self.error(op, "weights are not quantized")
        return w, b, q

    def layer_quant(self, op, w_q, channels: int, channel_axis: int) -> LayerQuant:
        if w_q.per_channel and w_q.dimension != channel_axis:
            raise self.error(op, f"per-channel weight scales along axis {w_q.dimension}, "
                                 f"expected {channel_axis}")
        if len(w_q.scale) not in (1, channels):
            raise self.error(op, f"{len(w_q.scale)} weight scales for {channels} channels")
        out = self.tensor(op.outputs[0])
        if out.type != self.dtype:
            raise self.error(op, f"output is {out.type}, the network is {self.dtype}")
        out_scale, out_zp = self.qparams(op, out)
        act = op.options.get("fused_activation", "NONE")
        try:
            clamp = activation_range(act, out_scale, out_zp, self.dtype)
        except ValueError as e:
            raise self.error(op, str(e)) from None
        # TFLite's Prepare: uint8 convolutions and per-tensor FULLY_CONNECTED go through
        # GetQuantizedConvolutionMultipler (float32 scale product), the rest the per-channel path.
        float_product = self.dtype == "uint8" or (op.opcode == "FULLY_CONNECTED" and not w_q.per_channel)
        mult, shift = quantize_multipliers(self.cur_scale, w_q.scale, out_scale, float_product)
        self.cur_scale = out_scale
        return act, LayerQuant(np.asarray(w_q.scale, np.float32).copy(),
                               np.asarray(w_q.zero_point, np.int32).copy(),
                               out_scale, out_zp, clamp, mult, shift)

    def add(self, layer, lq: LayerQuant) -> str:
        self.layers.append(layer)
        self.quant[layer.name] = lq
        return layer.name

    def stride(self, op) -> int:
        sw, sh = op.options.get("stride_w", 1), op.options.get("stride_h", 1)
        if sw != sh or sw not in (1, 2):
            raise self.error(op, f"strides ({sh}, {sw}) are not 1 or 2 in both directions")
        if op.options.get("dilation_w", 1) != 1 or op.options.get("dilation_h", 1) != 1:
            raise self.error(op, "dilated convolutions are not supported")
        return int(sw)

    def conv(self, op, pooled: bool, n_dw: int) -> str:
        w, b, wq = self.weights(op)
        if len(w.shape) != 4:
            raise self.error(op, f"filter shape {w.shape} is not OHWI")
        cout, kh, kw, cin = w.shape
        if b.shape != (cout,):
            raise self.error(op, f"bias shape {b.shape}, expected ({cout},)")
        act, lq = self.layer_quant(op, wq, cout, 0)
        if (kh, kw) == (3, 3):
            if self.layers:
                raise self.error(op, "only the first layer may be a full 3x3 convolution")
            self.activations.append(act)
            self.paddings.append(op.options.get("padding"))
            stride = self.stride(op)
            hwio = np.ascontiguousarray(np.transpose(w.data, (1, 2, 3, 0)))
            return self.add(Conv3x3("conv0", stride, hwio, b.data.astype(np.int32).copy()), lq)
        if (kh, kw) != (1, 1):
            raise self.error(op, f"{kh}x{kw} convolutions are not part of MobileNet v1")
        io = np.ascontiguousarray(w.data.reshape(cout, cin).T)
        bias = b.data.astype(np.int32).copy()
        if pooled:
            if act != "NONE":
                raise self.error(op, f"the classifier has a fused {act}")
            return self.add(FullyConnected("fc", io, bias), lq)
        if n_dw == 0 or any(l.name == f"pw{n_dw}" for l in self.layers):
            raise self.error(op, "a 1x1 convolution that does not follow a depthwise layer")
        self.activations.append(act)
        return self.add(Pointwise(f"pw{n_dw}", io, bias), lq)

    def depthwise(self, op, k: int) -> str:
        w, b, wq = self.weights(op)
        if len(w.shape) != 4 or w.shape[:3] != (1, 3, 3):
            raise self.error(op, f"filter shape {w.shape} is not (1, 3, 3, C)")
        if op.options.get("depth_multiplier", 1) not in (0, 1):
            raise self.error(op, "depth multiplier must be 1")
        c = w.shape[3]
        if b.shape != (c,):
            raise self.error(op, f"bias shape {b.shape}, expected ({c},)")
        act, lq = self.layer_quant(op, wq, c, 3)
        self.activations.append(act)
        self.paddings.append(op.options.get("padding"))
        self.strides.append(self.stride(op))
        wc = np.ascontiguousarray(w.data.reshape(3, 3, c))
        return self.add(Depthwise3x3(f"dw{k}", self.strides[-1], wc, b.data.astype(np.int32).copy()), lq)

    def fully_connected(self, op, pooled: bool) -> str:
        if not pooled:
            raise self.error(op, "a fully connected layer before the average pool")
        w, b, wq = self.weights(op)
        if len(w.shape) != 2:
            raise self.error(op, f"weights shape {w.shape} is not (classes, Cin)")
        classes, cin = w.shape
        if b.shape != (classes,):
            raise self.error(op, f"bias shape {b.shape}, expected ({classes},)")
        act, lq = self.layer_quant(op, wq, classes, 0)
        if act != "NONE":
            raise self.error(op, f"the classifier has a fused {act}")
        return self.add(FullyConnected("fc", np.ascontiguousarray(w.data.T),
                                       b.data.astype(np.int32).copy()), lq)

    def pool(self, op) -> str:
        t_in, t_out = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        if len(t_in.shape) != 4:
            raise self.error(op, f"input shape {t_in.shape} is not NHWC")
        _, h, w, c = t_in.shape
        if op.opcode == "AVERAGE_POOL_2D":
            o = op.options
            global_pool = (o.get("padding") == "VALID" and o.get("filter_h") == h
                           and o.get("filter_w") == w)
            if not global_pool:
                raise self.error(op, f"only a global average pool ({h}x{w} VALID) is supported")
            act = o.get("fused_activation", "NONE")
        else:  # MEAN over H and W
            axes = self.tensor(op.inputs[1]).data if len(op.inputs) > 1 else None
            if axes is None or sorted(int(a) % 4 for a in np.ravel(axes)) != [1, 2]:
                raise self.error(op, "MEAN must reduce over axes 1 and 2")
            act = "NONE"
        in_scale, in_zp = self.qparams(op, t_in)
        out_scale, out_zp = self.qparams(op, t_out)
        clamp = activation_range(act, out_scale, out_zp, self.dtype)
        empty_f, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int32)
        if op.opcode == "AVERAGE_POOL_2D":
            if (in_scale, in_zp) != (out_scale, out_zp):
                raise self.error(op, "the average pool changes the quantization (TFLite requires "
                                     "the same scale and zero point for input and output)")
            lq = LayerQuant(empty_f, empty_i, out_scale, out_zp, clamp, empty_i, empty_i,
                            "average_pool_2d")
        else:
            if self.dtype != "int8":
                raise self.error(op, "a quantized MEAN is supported for int8 models only")
            mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
            lq = LayerQuant(empty_f, empty_i, out_scale, out_zp, clamp,
                            np.array([mult], np.int32), np.array([shift], np.int32), "mean")
        self.cur_scale = out_scale
        return self.add(GlobalPool("pool"), lq)

    def check_shapes(self, net: Network) -> None:
        """The TFLite output shapes must equal the ones our padding/stride math predicts."""
        rows = {r.name: r.output_shape for r in net.summary_rows()}
        for name, t in self.tensor_of.items():
            shape = tuple(self.tensor(t).shape)
            want = rows[name]
            if int(np.prod(shape)) != int(np.prod(want)) or shape[-1] != want[-1]:
                raise ModelFormatError(f"{self.src}: layer {name}: TFLite output shape {shape}, "
                                       f"expected {want}")
