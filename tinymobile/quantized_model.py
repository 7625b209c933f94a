"""Quantized models: the :class:`~tinymobile.model.Model` API on the integer kernels.

``forward`` takes the quantized input (N, R, R, 3) of the model's dtype (uint8 or int8) and
returns the raw quantized logits (the tensor TFLite feeds to its softmax), same dtype;
``output_quantization`` is their (scale, zero_point). ``predict`` / ``classify`` / ``features``
take images like a float model: preprocess, quantize with the input's scale and zero point, run,
dequantize (softmax of the dequantized logits for ``predict``).
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from .errors import InputError, TinyMobileError
from .model import Model
from .network import AveragePool, Conv3x3, Depthwise3x3, FullyConnected, Pointwise
from .preprocess import as_image_list
from .quantized_network import QuantizedNetwork
from .quantized_ops import (QAveragePoolOp, QConv3x3Op, QDepthwise3x3Op, QOp, QPointwiseOp,
                            domain_offset, from_domain, kernel_table)
from .quantized_reference import dequantize, quantize
from .reference import softmax
from .runner import Runner
from .validate import check_network


def build_quantized_ops(network: QuantizedNetwork, kern, pool) -> List[QOp]:
    """One integer operator per layer, weights packed for ``kern``'s ISA, in the uint8 domain."""
    offset = domain_offset(network.dtype)
    requants = network.requants()
    act_q = network.activation_quantization()
    ops: List[QOp] = []
    for layer, (_, in_zp) in zip(network.layers, act_q):
        rq = requants.get(layer.name)
        if isinstance(layer, Conv3x3):
            ops.append(QConv3x3Op(kern, pool, layer.w, layer.b, layer.stride, network.padding, rq, offset))
        elif isinstance(layer, Depthwise3x3):
            ops.append(QDepthwise3x3Op(kern, pool, layer.w, layer.b, layer.stride, network.padding,
                                       rq, offset))
        elif isinstance(layer, (Pointwise, FullyConnected)):
            ops.append(QPointwiseOp(kern, pool, layer.w, layer.b, rq, offset))
        elif isinstance(layer, AveragePool):
            q = network.quant[layer.name]
            mult = int(q.multiplier[0]) if len(q.multiplier) else 0
            shift = int(q.shift[0]) if len(q.shift) else 0
            ops.append(QAveragePoolOp(q.pool_mode, q.clamp, offset, in_zp, q.output_zero_point,
                                      mult, shift))
        else:
            raise TypeError(f"unknown layer {layer!r}")
    return ops


class QuantizedRunner(Runner):
    """A :class:`Runner` on the integer kernels: uint8 activation buffers, same planning."""

    @staticmethod
    def check(network: QuantizedNetwork) -> None:
        check_network(network, "iu")

    @staticmethod
    def kernel_table(isa: str):
        return kernel_table(isa)

    def build_ops(self) -> List[QOp]:
        return build_quantized_ops(self.network, self.kern, self.pool)

    def load_input(self, plan, x: np.ndarray, check_finite: bool = False) -> None:
        """x of the model's dtype into the plan's uint8-domain input, converted in the copy."""
        if x.dtype == np.int8:
            np.bitwise_xor(x.view(np.uint8), np.uint8(0x80), out=plan.input)
        else:
            np.copyto(plan.input, x)

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        """x of the model's dtype -> a copy of every layer's output, in layer order."""
        plan = self.acquire(x.shape[0])
        try:
            self.load_input(plan, x)
            outs = []
            for call, out in zip(plan.calls, plan.outputs):
                call()
                outs.append(from_domain(out.copy(), self.network.dtype))
            return outs
        finally:
            self.release(plan)

    def run_quantized(self, x: np.ndarray, layers: Optional[int] = None) -> np.ndarray:
        """x of the model's dtype -> output of layer ``layers`` (default: last), same dtype."""
        return from_domain(self.run(x, layers), self.network.dtype)


class QuantizedModel(Model):
    """A quantized MobileNet v1 on tinymobile's integer kernels (see the module docstring)."""

    runner_class = QuantizedRunner

    @property
    def dtype(self) -> str:
        """"uint8" or "int8": the dtype of the input, every activation and the logits."""
        return self.network.dtype

    @property
    def input_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of the network input."""
        return float(self.network.input_scale), int(self.network.input_zero_point)

    @property
    def output_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of ``forward``'s output (logits, or pooled features)."""
        return self.network.output_quantization

    def summary(self) -> str:
        return f"quantized {self.dtype}\n" + super().summary()

    def __repr__(self) -> str:
        return (f"<tinymobile.QuantizedModel {self.dtype} alpha={self.alpha:g} "
                f"resolution={self.resolution} classes={self.num_classes} isa={self.isa} "
                f"threads={self.threads}>")

    def _convert_input(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != np.dtype(self.dtype):
            raise InputError(f"a quantized model's forward takes {self.dtype} input (already "
                             f"quantized), got {x.dtype}; use quantize_input() or predict()")
        return np.ascontiguousarray(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Quantized input (N, R, R, 3) -> raw quantized logits (N, classes) of the model's dtype
        (scale and zero point: ``output_quantization``); for a feature extractor the pooled
        features (N, C)."""
        return self._runner.run_quantized(self._check_input(x))

    def forward_layers(self, x: np.ndarray, layers: int) -> np.ndarray:
        """The quantized output of the first ``layers`` layers (for layer-by-layer checks)."""
        if not 1 <= layers <= len(self.network.layers):
            raise InputError(f"layers must be in 1..{len(self.network.layers)}, got {layers}")
        return self._runner.run_quantized(self._check_input(x), layers)

    def activations(self, x: np.ndarray) -> dict:
        """{layer name: quantized output} of every layer for quantized input x (N, R, R, 3)."""
        outs = self._runner.run_all(self._check_input(x))
        return {layer.name: o for layer, o in zip(self.network.layers, outs)}

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float input -> the quantized network input (round half away, saturate)."""
        scale, zp = self.input_quantization
        return quantize(x, scale, zp, self.dtype)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float input -> dequantized float32 logits (or pooled features)."""
        q = self._runner.run_quantized(self.quantize_input(np.asarray(x, np.float32)))
        return dequantize(q, *self.output_quantization)

    def predict(self, img: Any) -> np.ndarray:
        if not self.network.has_classifier:
            raise TinyMobileError("this model has no classifier (a feature extractor): use features()")
        _, batched = as_image_list(img)
        q = self._runner.run_quantized(self.quantize_input(self.preprocess(img)))
        probs = softmax(dequantize(q, *self.output_quantization))
        return probs if batched else probs[0]

    def features(self, img: Any) -> np.ndarray:
        _, batched = as_image_list(img)
        layers = self._features_layers()
        q = self._runner.run_quantized(self.quantize_input(self.preprocess(img)), layers)
        pool = self.network.quant[self.network.layers[layers - 1].name]
        feats = dequantize(q, pool.output_scale, pool.output_zero_point)
        return feats if batched else feats[0]
