"""TFLite MobileNet v1 graphs -> :class:`~tinymobile.network.Network` (float32).

Reads the graph produced by :mod:`~tinymobile.converters.tflite_file` and walks it from the input
tensor along the single chain of operators a MobileNet v1 is:

    [QUANTIZE/DEQUANTIZE] [PAD] CONV_2D 3x3/2 ( [PAD] DEPTHWISE_CONV_2D 3x3  CONV_2D 1x1 ) x K
    AVERAGE_POOL_2D | MEAN   [RESHAPE/SQUEEZE]   [CONV_2D 1x1 | FULLY_CONNECTED]
    [RESHAPE/SQUEEZE] [SOFTMAX] [RESHAPE] [DEQUANTIZE]

(shape computations such as SHAPE -> STRIDED_SLICE -> PACK feeding a RESHAPE are side branches and
ignored). Everything the format needs is derived from the graph: resolution from the input tensor,
α from conv0's channels / 32, strides from each depthwise layer, the activation from the fused
activation (RELU6 or RELU; a separate RELU/RELU6 operator after a convolution counts too), the
padding from SAME/VALID and explicit PAD operators (TFLite SAME is TensorFlow SAME = ``tf_same``;
PAD 1 on every side + VALID = ``symmetric``), the class count (1000, or 1001 with background) from the
classifier. A final SOFTMAX is dropped (the format stores logits); its beta is folded into the
classifier so probabilities are unchanged.

Quantized models (uint8 or int8 weights) are converted only with ``dequantize=True``: weights become
``scale * (q - zero_point)`` (per tensor or per channel) and int32 biases
``q * input_scale * weight_scale``, as TFLite's kernels interpret them. The input quantization
(real = scale * (q - zero_point) on uint8 pixels) gives the model's ``input_mean`` / ``input_std``.
"""
from __future__ import annotations

from typing import List, Optional, Set, Tuple

import numpy as np

from ..errors import ModelFormatError
from ..labels import imagenet_labels
from ..network import (PADDINGS, Conv3x3, Depthwise3x3, FullyConnected, GlobalPool, Network,
                       Pointwise, conv_output)
from . import tflite_file
from .netbuild import alpha_of, default_crop
from .tflite_file import Operator, Tensor, TFLiteModel

QUANTIZED_TYPES = ("uint8", "int8", "int16", "int4")
_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_SIDE_OPS = ("SHAPE",)  # shape computations branching off the main chain
_PASS_THROUGH = ("QUANTIZE", "DEQUANTIZE")
_ACTIVATIONS = {"RELU6": "relu6", "RELU": "relu"}
#: Arithmetic on the input before the first convolution (folded into the normalisation).
_AFFINE = ("MUL", "ADD", "SUB", "DIV")


class QuantizedModelError(ModelFormatError):
    """A quantized model was given where a float one is needed (convert with dequantize=True)."""


def load(source, dequantize: bool = False, name: Optional[str] = None) -> Network:
    """Read a ``.tflite`` file (path or bytes) into a float32 Network."""
    return to_network(tflite_file.read(source, name), dequantize=dequantize)


def is_quantized(model: TFLiteModel) -> bool:
    """True when the weights of any convolution / fully connected layer are integer-quantized."""
    for op in model.operators:
        if op.opcode in _WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
            if model.tensors[op.inputs[1]].type in QUANTIZED_TYPES:
                return True
    return False


def to_network(model: TFLiteModel, dequantize: bool = False) -> Network:
    """Convert a parsed TFLite MobileNet v1 into a float32 Network (see the module docstring).

    An integer model (quantized weights and activations: uint8 TF-slim / Coral, int8
    post-training quantization) becomes a :class:`~tinymobile.network.Network` (quantized`
    for the integer kernels unless ``dequantize`` asks for float32."""
    if is_quantized(model) and not dequantize:
        from . import tflite_quantized
        if tflite_quantized.is_integer_model(model):
            return tflite_quantized.convert(model)
        raise QuantizedModelError(
            f"{model.source}: this TFLite model has quantized {_quant_kind(model)} weights but "
            "float activations (weight-only quantization), which tinymobile does not run as "
            "integers: convert it with --dequantize (dequantize=True) to get a float32 model")
    return _Walker(model).run()


def _quant_kind(model: TFLiteModel) -> str:
    kinds = sorted({model.tensors[op.inputs[1]].type for op in model.operators
                    if op.opcode in _WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0
                    and model.tensors[op.inputs[1]].type in QUANTIZED_TYPES})
    return "/".join(kinds)


class _Walker:
    """Walk the operator chain from the graph input, collecting layers."""

    def __init__(self, model: TFLiteModel):
        self.m = model
        self.consumers = model.consumers()
        self.producers = model.producers()
        self.layers: list = []
        self.acts: List[str] = []          # fused activation of each convolution (before FC)
        self.pad_modes: Set[str] = set(PADDINGS)
        self.pending_pad: Optional[Tuple[int, int, int, int]] = None
        self.stage = "features"            # -> "pooled" -> "classified" -> "softmax"
        self.channels = 3
        self.softmax_beta = 1.0
        self.output_activation = "softmax"
        self.pool_mode = ""
        # Leading MUL / ADD / SUB / DIV by constants (a Keras Rescaling / Normalization):
        # network input = scale * x + offset per channel, x the graph input.
        self.in_scale = np.ones(3, np.float64)
        self.in_offset = np.zeros(3, np.float64)
        self.affine_ops = 0

    def error(self, message: str, op: Optional[Operator] = None) -> ModelFormatError:
        where = f" (operator {op.index}, {op.opcode})" if op is not None else ""
        return ModelFormatError(f"{self.m.source}: {message}{where}")

    # ----------------------------------------------------------------------------------------
    def run(self) -> Network:
        m = self.m
        if len(m.inputs) != 1 or len(m.outputs) != 1:
            raise self.error(f"expected one input and one output, found {len(m.inputs)} and "
                             f"{len(m.outputs)}: not a MobileNet v1 classifier")
        inp = m.tensors[m.inputs[0]]
        if len(inp.shape) != 4 or inp.shape[3] != 3 or min(inp.shape[1:3]) < 1:
            raise self.error(f"input tensor {inp.name!r} has shape {inp.shape}, expected "
                             "(1, H, W, 3)")
        self.input_size = self.size = (int(inp.shape[1]), int(inp.shape[2]))
        mean, std = _input_normalisation(inp)
        self.input_tensor = inp

        t = m.inputs[0]
        visited: Set[int] = set()
        while True:
            ops = [m.operators[i] for i in self.consumers.get(t, [])
                   if m.operators[i].opcode not in _SIDE_OPS]
            if not ops:
                break
            if len(ops) > 1:
                raise self.error(f"tensor {m.tensors[t].name!r} feeds {len(ops)} operators "
                                 f"({', '.join(o.opcode for o in ops)}): a MobileNet v1 is a "
                                 "single chain")
            op = ops[0]
            if op.index in visited or not op.outputs:
                raise self.error("the operator graph has a cycle or an operator without output", op)
            visited.add(op.index)
            if op.inputs[0] != t:
                raise self.error(f"tensor {m.tensors[t].name!r} is used as a secondary input", op)
            self.step(op)
            t = op.outputs[0]
        if t != m.outputs[0]:
            raise self.error(f"the operator chain ends at tensor {m.tensors[t].name!r}, not at the "
                             "graph output")
        return self.finish(mean, std)

    def step(self, op: Operator) -> None:
        code = op.opcode
        if code in _PASS_THROUGH:
            return
        if code in _AFFINE and self.stage == "features" and not self.layers:
            return self.affine(op)
        if code in ("PAD", "PADV2"):
            return self.pad(op)
        if code == "CONV_2D":
            w = self.const(op, 1, "weights")
            if w.ndim != 4:
                raise self.error(f"weights of shape {w.shape}, expected (O, kh, kw, I)", op)
            if self.stage == "features":
                return self.conv3x3(op, w) if w.shape[1:3] == (3, 3) else self.pointwise(op, w)
            if self.stage == "pooled":
                if w.shape[1:3] != (1, 1):
                    raise self.error(f"classifier kernel {w.shape[1:3]}, expected 1x1", op)
                return self.classifier(op, w[:, 0, 0, :])
        elif code == "DEPTHWISE_CONV_2D" and self.stage == "features":
            return self.depthwise(op)
        elif code in ("AVERAGE_POOL_2D", "MEAN", "MAX_POOL_2D", "REDUCE_MAX") \
                and self.stage == "features":
            return self.pool(op)
        elif code in ("RESHAPE", "SQUEEZE") and self.stage != "features":
            return
        elif code == "FULLY_CONNECTED" and self.stage == "pooled":
            w = self.const(op, 1, "weights")
            if w.ndim != 2:
                raise self.error(f"weights of shape {w.shape}, expected (classes, C)", op)
            return self.classifier(op, w)
        elif code == "SOFTMAX" and self.stage == "classified":
            self.softmax_beta = float(op.options.get("beta", 1.0))
            if not np.isfinite(self.softmax_beta) or self.softmax_beta <= 0:
                raise self.error(f"softmax beta {self.softmax_beta} is not positive", op)
            self.stage = "softmax"
            return
        elif code == "LOGISTIC" and self.stage == "classified":
            n = self.layers[-1].cout
            if n != 1:
                raise self.error(f"a sigmoid over {n} outputs (a multi-label head) is "
                                 "not supported: tinymobile's sigmoid models have one output", op)
            self.output_activation = "sigmoid"
            self.stage = "softmax"
            return
        elif code in ("RELU", "RELU6") and self.stage == "features" and self.acts:
            if self.acts[-1] != "NONE":
                raise self.error(f"{code} after a convolution that already applies "
                                 f"{self.acts[-1]}", op)
            self.acts[-1] = code
            return
        if code == "MIRROR_PAD":
            raise self.error("reflection padding is not supported (tinymobile pads with zeros)", op)
        raise self.error(f"unsupported operator at the {self.stage} stage: tinymobile converts "
                         "MobileNet v1 graphs only", op)

    # ----------------------------------------------------------------------------------------
    def const(self, op: Operator, i: int, what: str) -> np.ndarray:
        """Constant input ``i`` of ``op`` as float32 (dequantized; DEQUANTIZE'd constants too)."""
        t = self._const_tensor(op, i, what)
        return t.dequantized() if t is not None else None

    def _const_tensor(self, op: Operator, i: int, what: str) -> Optional[Tensor]:
        if i >= len(op.inputs) or op.inputs[i] < 0:
            return None
        t = self.m.tensors[op.inputs[i]]
        if t.data is None and op.inputs[i] in self.producers:
            prod = self.m.operators[self.producers[op.inputs[i]]]
            if prod.opcode == "DEQUANTIZE" and prod.inputs and prod.inputs[0] >= 0:
                t = self.m.tensors[prod.inputs[0]]
        if t.data is None:
            raise self.error(f"{what} tensor {t.name!r} is not a constant", op)
        return t

    def bias(self, op: Operator, n: int) -> np.ndarray:
        t = self._const_tensor(op, 2, "bias")
        if t is None:
            return np.zeros(n, np.float32)
        if t.data.shape != (n,):
            raise self.error(f"bias of shape {t.data.shape}, expected ({n},)", op)
        if t.type == "int32":
            # TFLite kernels read an int32 bias with scale input_scale * weight_scale.
            qi = self.m.tensors[op.inputs[0]].quantization
            qw = self._const_tensor(op, 1, "weights").quantization
            if qi is not None and qw is not None:
                scale = np.float64(qi.scale[0]) * qw.scale.astype(np.float64)
                return (t.data.astype(np.float64) * scale).astype(np.float32)
            if t.quantization is None:
                raise self.error("int32 bias without quantization parameters", op)
        elif t.type in QUANTIZED_TYPES and t.quantization is None:
            raise self.error(f"{t.type} bias without quantization parameters", op)
        return t.dequantized().astype(np.float32)

    def activation(self, op: Operator) -> None:
        self.acts.append(str(op.options.get("fused_activation", "NONE")))

    def stride(self, op: Operator) -> int:
        sw, sh = op.options.get("stride_w"), op.options.get("stride_h")
        if sw != sh or sw not in (1, 2):
            raise self.error(f"strides {sh}x{sw}: only equal strides of 1 or 2 are supported", op)
        if op.options.get("dilation_w", 1) != 1 or op.options.get("dilation_h", 1) != 1:
            raise self.error("dilated convolutions are not supported", op)
        return sw

    def spatial(self, op: Operator, stride: int) -> None:
        """Check this 3x3 layer's padding against tf_same / symmetric and advance the size
        (height and width each)."""
        pad = self.pending_pad
        self.pending_pad = None
        if pad is not None and op.options.get("padding") != "VALID":
            raise self.error("explicit PAD followed by a SAME convolution is not supported", op)
        out_hw = []
        for axis, size in enumerate(self.size):
            if pad is not None:
                lo, hi = pad[2 * axis], pad[2 * axis + 1]
                out, lead = (size + lo + hi - 3) // stride + 1, lo
            elif op.options.get("padding") == "SAME":
                out, lead = conv_output(size, stride, "tf_same")
            else:
                out, lead = (size - 3) // stride + 1, 0
            modes = {p for p in PADDINGS if conv_output(size, stride, p) == (out, lead)}
            if not modes:
                raise self.error(f"padding of this 3x3 layer (input {size}, stride {stride}, "
                                 f"output {out}, leading pad {lead}) is neither TensorFlow SAME "
                                 "nor symmetric: not supported", op)
            if not modes & self.pad_modes:
                raise self.error("the layers mix TensorFlow SAME and symmetric padding: not "
                                 "supported", op)
            self.pad_modes &= modes
            out_hw.append(out)
        oshape = self.m.tensors[op.outputs[0]].shape
        if len(oshape) == 4 and any(o not in (e, -1) for o, e in zip(oshape[1:3], out_hw)):
            raise self.error(f"output tensor has spatial size {oshape[1:3]}, expected "
                             f"{tuple(out_hw)}", op)
        if min(out_hw) < 1:
            raise self.error("the input is too small for this network", op)
        self.size = tuple(out_hw)

    def affine(self, op: Operator) -> None:
        """x * c, x + c, x - c, x / c with a constant c (one number or three per-channel ones)
        before the first convolution: folded into the input normalisation."""
        c = None
        if len(op.inputs) == 2 and op.inputs[1] >= 0:
            t = self._const_tensor(op, 1, "operand")
            c = t.dequantized().astype(np.float64).reshape(-1)
        if c is None or c.size not in (1, 3) or not np.isfinite(c).all():
            raise self.error("an arithmetic operator on the input with an operand that is not "
                             "one number or three per-channel numbers", op)
        if op.options.get("fused_activation", "NONE") != "NONE":
            raise self.error("an activation on the input is not supported", op)
        code = op.opcode
        if code == "MUL":
            a, b = c, np.zeros(1)
        elif code == "DIV":
            if (c == 0).any():
                raise self.error("division by zero", op)
            a, b = 1.0 / c, np.zeros(1)
        elif code == "ADD":
            a, b = np.ones(1), c
        else:  # SUB
            a, b = np.ones(1), -c
        if self.pending_pad is not None and (b != 0).any():
            # the PAD border is 0 in the input's units; an offset after it makes it b, where the
            # folded normalisation (applied before tinymobile's zero padding) leaves 0
            raise self.error(f"{code} of a constant after PAD (the padded border would be "
                             "shifted too): not supported", op)
        self.in_scale, self.in_offset = self.in_scale * a, self.in_offset * a + b
        self.affine_ops += 1

    def pad(self, op: Operator) -> None:
        if self.stage != "features" or self.pending_pad is not None:
            raise self.error("PAD at an unexpected place", op)
        p = self._const_tensor(op, 1, "paddings")
        pads = p.data
        if pads.shape != (4, 2):
            raise self.error(f"paddings of shape {pads.shape}, expected (4, 2)", op)
        if op.opcode == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            value = self._const_tensor(op, 2, "pad value")
            zero = 0 if value.quantization is None else value.quantization.zero_point[0]
            if value.data.size != 1 or int(value.data.reshape(-1)[0]) != zero:
                raise self.error("PADV2 with a non-zero pad value is not supported", op)
        pads = [int(v) for v in pads.reshape(-1)]
        if pads[0] or pads[1] or pads[6] or pads[7] or min(pads) < 0 or max(pads) > 2:
            raise self.error(f"paddings {pads}: only 0..2 pixels of spatial padding are supported", op)
        self.pending_pad = (pads[2], pads[3], pads[4], pads[5])

    def conv3x3(self, op: Operator, w: np.ndarray) -> None:
        if self.layers:
            raise self.error(f"a full 3x3 convolution after layer {self.layers[-1].name}: not a "
                             "separable MobileNet v1", op)
        if w.shape[3] != 3:
            raise self.error(f"first convolution has {w.shape[3]} input channels, expected 3", op)
        stride = self.stride(op)
        if stride != 2:
            raise self.error(f"first convolution has stride {stride}, expected 2", op)
        self.spatial(op, stride)
        cout = w.shape[0]
        self.layers.append(Conv3x3("conv0", 2, np.ascontiguousarray(w.transpose(1, 2, 3, 0)),
                                   self.bias(op, cout)))
        self.activation(op)
        self.channels = cout

    def depthwise(self, op: Operator) -> None:
        if not self.layers or isinstance(self.layers[-1], Depthwise3x3):
            raise self.error("depthwise layer at an unexpected place", op)
        w = self.const(op, 1, "weights")
        c = self.channels
        mult = op.options.get("depth_multiplier", 1)
        # 0: older converters left it unset; the shape is authoritative
        if mult not in (0, 1) or (w.ndim == 4 and w.shape[3] != c and w.shape[3] % c == 0):
            mult = mult if mult not in (0, 1) else w.shape[3] // c
            raise self.error(f"depth multiplier {mult}: tinymobile runs depthwise layers with "
                             "depth multiplier 1 only", op)
        if w.shape != (1, 3, 3, c):
            raise self.error(f"depthwise weights of shape {w.shape}, expected (1, 3, 3, {c})", op)
        stride = self.stride(op)
        self.spatial(op, stride)
        k = sum(isinstance(l, Depthwise3x3) for l in self.layers) + 1
        self.layers.append(Depthwise3x3(f"dw{k}", stride, np.ascontiguousarray(w[0]),
                                        self.bias(op, c)))
        self.activation(op)

    def pointwise(self, op: Operator, w: np.ndarray) -> None:
        if w.shape[1:3] != (1, 1):
            raise self.error(f"a {w.shape[1]}x{w.shape[2]} convolution: not part of MobileNet v1", op)
        if not self.layers or not isinstance(self.layers[-1], Depthwise3x3):
            raise self.error("1x1 convolution not preceded by a depthwise layer", op)
        if w.shape[3] != self.channels:
            raise self.error(f"1x1 convolution reads {w.shape[3]} channels, the previous layer "
                             f"gives {self.channels}", op)
        if self.stride(op) != 1:
            raise self.error("strided 1x1 convolution is not supported", op)
        if self.pending_pad is not None:
            raise self.error("PAD before a 1x1 convolution is not supported", op)
        k = sum(isinstance(l, Depthwise3x3) for l in self.layers)
        cout = w.shape[0]
        self.layers.append(Pointwise(f"pw{k}", np.ascontiguousarray(w[:, 0, 0, :].T),
                                     self.bias(op, cout)))
        self.activation(op)
        self.channels = cout

    def pool(self, op: Operator) -> None:
        if not self.layers or not isinstance(self.layers[-1], Pointwise):
            raise self.error("pooling before the last 1x1 convolution", op)
        if self.pending_pad is not None:
            raise self.error("PAD before pooling is not supported", op)
        h, w = self.size
        mode = "max" if op.opcode in ("MAX_POOL_2D", "REDUCE_MAX") else "average"
        if op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            fw, fh = op.options.get("filter_w"), op.options.get("filter_h")
            if (fh, fw) != (h, w) or op.options.get("padding") != "VALID" and (h, w) != (1, 1):
                raise self.error(f"pool {fh}x{fw} over a {h}x{w} map: only global pooling is "
                                 "supported", op)
            if op.options.get("fused_activation", "NONE") != "NONE":
                raise self.error("activation after the pool is not supported", op)
            oshape = self.m.tensors[op.outputs[0]].shape
            if len(oshape) == 4 and oshape[1:3] != (1, 1):
                raise self.error(f"the pool gives a {oshape[1]}x{oshape[2]} map, not 1x1", op)
        else:
            axes = self._const_tensor(op, 1, "axes")
            if sorted(int(a) % 4 for a in axes.data.reshape(-1)) != [1, 2]:
                raise self.error(f"{op.opcode} over axes {axes.data.tolist()}, expected [1, 2]", op)
        self.pool_mode = mode
        self.layers.append(GlobalPool("pool", mode))
        self.stage = "pooled"

    def classifier(self, op: Operator, w: np.ndarray) -> None:
        classes, cin = w.shape
        if cin != self.channels:
            raise self.error(f"classifier reads {cin} features, the network gives {self.channels}", op)
        if op.options.get("fused_activation", "NONE") != "NONE":
            raise self.error(f"classifier with activation {op.options['fused_activation']}: "
                             "expected logits", op)
        if op.opcode == "CONV_2D" and self.stride(op) != 1:
            raise self.error("strided classifier convolution", op)
        self.layers.append(FullyConnected("fc", np.ascontiguousarray(w.T), self.bias(op, classes)))
        self.stage = "classified"

    # ----------------------------------------------------------------------------------------
    def finish(self, mean: np.ndarray, std: np.ndarray) -> Network:
        if self.stage == "features":
            raise self.error("the graph has no global average pool: not a MobileNet v1")
        if sum(isinstance(l, Depthwise3x3) for l in self.layers) < 1:
            raise self.error("the graph has no depthwise layer: not a MobileNet v1")
        acts = set(self.acts)
        if len(acts) != 1 or next(iter(acts)) not in _ACTIVATIONS:
            raise self.error(f"the convolutions use activations {sorted(acts)}: tinymobile needs "
                             "the same RELU6 or RELU after every convolution")
        activation = _ACTIVATIONS[acts.pop()]
        padding = "tf_same" if "tf_same" in self.pad_modes else "symmetric"
        if self.softmax_beta != 1.0 and isinstance(self.layers[-1], FullyConnected):
            fc = self.layers[-1]
            fc.w = (fc.w * np.float32(self.softmax_beta)).astype(np.float32)
            fc.b = (fc.b * np.float32(self.softmax_beta)).astype(np.float32)
        if self.affine_ops:
            if not np.allclose(mean, 127.5) or not np.allclose(std, 127.5):
                raise self.error("arithmetic on an already quantized input is not supported")
            if (self.in_scale <= 0).any():
                raise self.error(f"input scaling {self.in_scale.tolist()} is not positive: not "
                                 "supported")
            # network input = scale * x + offset = (x - mean) / std
            mean = (-self.in_offset / self.in_scale + 0.0).astype(np.float32)
            std = (1.0 / self.in_scale).astype(np.float32)
        net = Network(self.layers, self.input_size, alpha=alpha_of(self.layers),
                      activation=activation, padding=padding, input_mean=mean,
                      input_std=std, output_activation=self.output_activation,
                      crop=default_crop(self.input_tensor))
        # A float graph exported from Keras does not say what its input is, unless it starts
        # with the arithmetic of a Rescaling layer (TF-slim graphs are [-1, 1]).
        net.normalisation_assumed = (not self.affine_ops and self.input_tensor.type == "float32"
                                     and default_crop(self.input_tensor) == 1.0)
        labels = tflite_file.labels_from_files(self.m.associated_files, net.num_outputs)
        if labels is None and net.has_classifier:
            labels = imagenet_labels(net.num_outputs)
        net.labels = labels
        return net


def _input_normalisation(inp: Tensor) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, std) such that the network input = (RGB - mean) / std."""
    q = inp.quantization
    if inp.type in ("uint8", "int8") and q is not None and q.scale[0] > 0:
        # real = scale * (q - zero_point); q is the pixel for uint8, pixel - 128 for int8.
        offset = 128 if inp.type == "int8" else 0
        mean = float(q.zero_point[0]) + offset
        return np.full(3, mean, np.float32), np.full(3, 1.0 / float(q.scale[0]), np.float32)
    return np.full(3, 127.5, np.float32), np.full(3, 127.5, np.float32)
