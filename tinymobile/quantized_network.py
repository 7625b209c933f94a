"""A quantized MobileNet v1: the float :class:`~tinymobile.network.Network` with integer weights plus
per-layer quantization parameters.

The layer list is the float one (``Conv3x3``, ``Depthwise3x3``, ``Pointwise``, ``AveragePool``,
``FullyConnected``, same shapes and layouts, so shapes, costs and planning are shared), but

* ``w`` holds uint8 or int8 weights (HWIO / (3, 3, C) / (Cin, Cout)), ``b`` int32 biases whose
  scale is input scale x weight scale;
* :attr:`QuantizedNetwork.quant` maps each layer name to a :class:`LayerQuant` that gives the
  weights' scale and zero point (one per output channel, or one for the tensor), the output
  activation's scale and zero point and the fused activation's clamp in the quantized domain;
* :attr:`QuantizedNetwork.input_scale` / ``input_zero_point`` quantize the network input.

Activations are ``dtype`` ("uint8" or "int8") throughout; real = scale * (q - zero_point).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .network import AveragePool, Conv3x3, Depthwise3x3, FullyConnected, Network, Pointwise
from .quantized_reference import DTYPE_RANGE, Requant


@dataclass
class LayerQuant:
    """Quantization of one layer: weights (per channel or per tensor), output and clamp.

    ``weight_scale`` float32 and ``weight_zero_point`` int32 have length 1 (per tensor) or Cout.
    ``multiplier`` (int32 in [0, 2**31)) and ``shift`` (int32, -31..30, positive = left) are
    the fixed-point requantization factors, same length as ``weight_scale``, computed once by the
    converter (:func:`~tinymobile.quantized_reference.quantize_multipliers`; which of TFLite's
    two roundings of the scale product applies depends on the source operator).

    An ``AveragePool`` has empty weight arrays and ``pool_mode``: "average_pool_2d" (TFLite's
    AVERAGE_POOL_2D: output quantization = input's, empty multiplier) or "mean" (TFLite's int8
    MEAN: one multiplier/shift for input_scale / output_scale, its own output quantization).
    """
    weight_scale: np.ndarray
    weight_zero_point: np.ndarray
    output_scale: float
    output_zero_point: int
    clamp: Tuple[int, int]
    multiplier: np.ndarray = None
    shift: np.ndarray = None
    pool_mode: str = ""

    @property
    def per_channel(self) -> bool:
        return len(self.weight_scale) > 1


@dataclass
class QuantizedNetwork(Network):
    """A :class:`Network` whose weights are quantized; see the module docstring."""
    dtype: str = "uint8"
    input_scale: float = 1.0 / 128
    input_zero_point: int = 128
    quant: Dict[str, LayerQuant] = field(default_factory=dict)

    @property
    def output_quantization(self) -> Tuple[float, int]:
        """(scale, zero_point) of the last layer's output (logits, or pooled features)."""
        q = self.quant[self.layers[-1].name]
        return float(q.output_scale), int(q.output_zero_point)

    def activation_quantization(self) -> List[Tuple[float, int]]:
        """(scale, zero_point) of each layer's input, in layer order."""
        out = []
        scale, zp = self.input_scale, self.input_zero_point
        for layer in self.layers:
            out.append((float(scale), int(zp)))
            q = self.quant[layer.name]
            scale, zp = q.output_scale, q.output_zero_point
        return out

    def requants(self) -> Dict[str, Requant]:
        """The requantization parameters of each weighted layer, expanded to one entry per
        output channel."""
        out: Dict[str, Requant] = {}
        for layer, (in_scale, in_zp) in zip(self.layers, self.activation_quantization()):
            if isinstance(layer, AveragePool):
                continue
            q = self.quant[layer.name]
            cout = layer.cout
            mult, shift = np.asarray(q.multiplier, np.int32), np.asarray(q.shift, np.int32)
            if len(mult) == 1:
                mult, shift = np.repeat(mult, cout), np.repeat(shift, cout)
            wzp = np.asarray(q.weight_zero_point, np.int32)
            if len(wzp) == 1:
                wzp = np.repeat(wzp, cout)
            out[layer.name] = Requant(int(in_zp), wzp, mult, shift, int(q.output_zero_point),
                                      (int(q.clamp[0]), int(q.clamp[1])), self.dtype)
        return out

    def validate(self) -> None:
        """Check dtypes, per-layer parameters and ranges; raises ValueError naming the problem."""
        if self.dtype not in DTYPE_RANGE:
            raise ValueError(f"dtype {self.dtype!r} is not one of {sorted(DTYPE_RANGE)}")
        qmin, qmax = DTYPE_RANGE[self.dtype]
        if not qmin <= self.input_zero_point <= qmax:
            raise ValueError(f"input zero point {self.input_zero_point} is outside {qmin}..{qmax}")
        if not (np.isfinite(self.input_scale) and self.input_scale > 0):
            raise ValueError(f"input scale {self.input_scale} must be positive")
        for layer in self.layers:
            q = self.quant.get(layer.name)
            if q is None:
                raise ValueError(f"layer {layer.name!r} has no quantization parameters")
            lo, hi = q.clamp
            if not qmin <= lo <= hi <= qmax:
                raise ValueError(f"layer {layer.name!r}: clamp {q.clamp} is not inside {qmin}..{qmax}")
            if isinstance(layer, AveragePool):
                if q.pool_mode not in ("average_pool_2d", "mean"):
                    raise ValueError(f"layer {layer.name!r}: pool mode {q.pool_mode!r} is not "
                                     "'average_pool_2d' or 'mean'")
                n_mult = 1 if q.pool_mode == "mean" else 0
                if len(q.multiplier) != n_mult or len(q.shift) != n_mult:
                    raise ValueError(f"layer {layer.name!r}: {q.pool_mode} needs {n_mult} multiplier")
                if n_mult and not (q.multiplier[0] >= 0 and -31 <= q.shift[0] <= 30):
                    raise ValueError(f"layer {layer.name!r}: multiplier must be >= 0, shift in -31..30")
            if not (np.isfinite(q.output_scale) and q.output_scale > 0):
                raise ValueError(f"layer {layer.name!r}: output scale {q.output_scale} must be positive")
            if not qmin <= q.output_zero_point <= qmax:
                raise ValueError(f"layer {layer.name!r}: output zero point {q.output_zero_point} "
                                 f"is outside {qmin}..{qmax}")
            if isinstance(layer, AveragePool):
                continue
            if len(q.weight_scale) not in (1, layer.cout) or len(q.weight_zero_point) != len(q.weight_scale):
                raise ValueError(f"layer {layer.name!r}: {len(q.weight_scale)} weight scales and "
                                 f"{len(q.weight_zero_point)} zero points for {layer.cout} channels")
            if (q.multiplier is None or q.shift is None or len(q.multiplier) != len(q.weight_scale)
                    or len(q.shift) != len(q.weight_scale)):
                raise ValueError(f"layer {layer.name!r}: needs one multiplier and shift per weight scale")
            if not ((q.multiplier >= 0).all() and (q.shift >= -31).all() and (q.shift <= 30).all()):
                raise ValueError(f"layer {layer.name!r}: multiplier must be >= 0 and shift in -31..30")
            if not (np.isfinite(q.weight_scale).all() and (q.weight_scale > 0).all()):
                raise ValueError(f"layer {layer.name!r}: weight scales must be positive")
            if str(layer.w.dtype) not in DTYPE_RANGE:
                raise ValueError(f"layer {layer.name!r}: weights are {layer.w.dtype}, not uint8/int8")
            wmin, wmax = DTYPE_RANGE[str(layer.w.dtype)]
            if not ((q.weight_zero_point >= wmin) & (q.weight_zero_point <= wmax)).all():
                raise ValueError(f"layer {layer.name!r}: weight zero points outside {wmin}..{wmax}")
            if layer.b.dtype != np.int32:
                raise ValueError(f"layer {layer.name!r}: bias is {layer.b.dtype}, expected int32")


WEIGHTED = (Conv3x3, Depthwise3x3, Pointwise, FullyConnected)
