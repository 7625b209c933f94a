"""Quantized models in the tinymobile ``.npz`` format: version 2 (docs/FORMAT.md, "Quantized
models").

A version-2 file has every version-1 metadata key (``format``, ``alpha``, ``resolution``,
``activation``, ``padding``, ``input_mean``, ``input_std``, ``strides``, ``labels``) with the same
meaning, plus ``quantization`` ("uint8" or "int8", the activations' dtype) and integer weights
with their quantization parameters. A version-1 reader refuses it ("unsupported model format
version 2"), and version-1 files are read exactly as before.

Every array is checked (dtype, shape, ranges) before use; problems raise
:class:`~tinymobile.errors.ModelFormatError` naming the key.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional

import numpy as np

from . import model_format as mf
from .errors import ModelFormatError
from .network import ACTIVATIONS, PADDINGS, AveragePool, Conv3x3, Depthwise3x3, FullyConnected, Pointwise
from .quantized_network import LayerQuant, QuantizedNetwork
from .quantized_reference import DTYPE_RANGE

VERSION = 2
POOL_MODES = ("average_pool_2d", "mean")


def to_arrays(net: QuantizedNetwork) -> Dict[str, np.ndarray]:
    """The version-2 arrays of a quantized network."""
    net.validate()
    out: Dict[str, np.ndarray] = {
        "format": np.array(mf.FORMAT_NAME), "version": np.array(VERSION),
        "quantization": np.array(net.dtype),
        "alpha": np.array(float(net.alpha)), "resolution": np.array(int(net.resolution)),
        "activation": np.array(net.activation), "padding": np.array(net.padding),
        "input_mean": np.asarray(net.input_mean, np.float32),
        "input_std": np.asarray(net.input_std, np.float32),
        "input/scale": np.array(net.input_scale, np.float32),
        "input/zero_point": np.array(net.input_zero_point, np.int32),
    }
    strides = []
    for layer in net.layers:
        q = net.quant[layer.name]
        if isinstance(layer, Conv3x3):
            if layer.name != "conv0":
                raise ModelFormatError(f"the format stores only separable MobileNets (found {layer.name!r})")
            key = "conv0"
        elif isinstance(layer, Depthwise3x3):
            strides.append(layer.stride)
            key = f"dw{len(strides)}"
        elif isinstance(layer, Pointwise):
            key = f"pw{len(strides)}"
        elif isinstance(layer, FullyConnected):
            key = "fc"
        else:
            key = "pool"
            out["pool/mode"] = np.array(q.pool_mode)
        if key != "pool":
            out[f"{key}/w"], out[f"{key}/b"] = layer.w, layer.b.astype(np.int32)
            out[f"{key}/w_scale"] = np.asarray(q.weight_scale, np.float32)
            out[f"{key}/w_zero_point"] = np.asarray(q.weight_zero_point, np.int32)
        out[f"{key}/out_scale"] = np.array(q.output_scale, np.float32)
        out[f"{key}/out_zero_point"] = np.array(q.output_zero_point, np.int32)
        out[f"{key}/clamp"] = np.asarray(q.clamp, np.int32)
        out[f"{key}/multiplier"] = np.asarray(q.multiplier, np.int32)
        out[f"{key}/shift"] = np.asarray(q.shift, np.int32)
    out["strides"] = np.asarray(strides, np.int64)
    if net.labels is not None:
        out["labels"] = np.asarray(net.labels, dtype=str)
    return out


def _int_array(arrays: Mapping, key: str, shape=None, lengths=None) -> np.ndarray:
    a = mf._get(arrays, key)
    if a.dtype.kind not in "iu":
        raise ModelFormatError(f"{key!r} must be an integer array, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ModelFormatError(f"{key!r} has shape {a.shape}, expected {shape}")
    if lengths is not None and (a.ndim != 1 or len(a) not in lengths):
        raise ModelFormatError(f"{key!r} must be 1-d with {' or '.join(map(str, lengths))} entries, "
                               f"got shape {a.shape}")
    if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
        raise ModelFormatError(f"{key!r} has values outside int32")
    return np.array(a, np.int32)  # a copy; keeps 0-d arrays 0-d


def _weights(arrays: Mapping, key: str, shape, wdtype: str) -> np.ndarray:
    a = mf._get(arrays, key)
    if a.dtype != np.dtype(wdtype):
        raise ModelFormatError(f"{key!r} must be {wdtype} (the model's weight type), got {a.dtype}")
    if a.shape != shape:
        raise ModelFormatError(f"{key!r} has shape {a.shape}, expected {shape}")
    return np.ascontiguousarray(a)


def _bias(arrays: Mapping, key: str, n: int) -> np.ndarray:
    a = mf._get(arrays, key)
    if a.dtype != np.int32 or a.shape != (n,):
        raise ModelFormatError(f"{key!r} must be int32 of shape ({n},), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def _positive(arrays: Mapping, key: str, shape=None, lengths=None) -> np.ndarray:
    a = mf._get(arrays, key)
    if a.dtype.kind != "f":
        raise ModelFormatError(f"{key!r} must be floating point, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ModelFormatError(f"{key!r} has shape {a.shape}, expected {shape}")
    if lengths is not None and (a.ndim != 1 or len(a) not in lengths):
        raise ModelFormatError(f"{key!r} must be 1-d with {' or '.join(map(str, lengths))} entries, "
                               f"got shape {a.shape}")
    a = np.array(a, np.float32)
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ModelFormatError(f"{key!r} must be finite and positive")
    return a


def _layer_quant(arrays: Mapping, key: str, channels: Optional[int], dtype: str,
                 pool_mode: str = "") -> LayerQuant:
    qmin, qmax = DTYPE_RANGE[dtype]
    out_scale = float(_positive(arrays, f"{key}/out_scale", ()))
    out_zp = int(_int_array(arrays, f"{key}/out_zero_point", ()))
    if not qmin <= out_zp <= qmax:
        raise ModelFormatError(f"{key + '/out_zero_point'!r} = {out_zp} is outside {qmin}..{qmax}")
    clamp = _int_array(arrays, f"{key}/clamp", (2,))
    if not qmin <= clamp[0] <= clamp[1] <= qmax:
        raise ModelFormatError(f"{key + '/clamp'!r} = {clamp.tolist()} is not inside {qmin}..{qmax}")
    if channels is None:  # pool
        n = 1 if pool_mode == "mean" else 0
        w_scale, w_zp = np.zeros(0, np.float32), np.zeros(0, np.int32)
        lengths = (n,)
    else:
        w_scale = _positive(arrays, f"{key}/w_scale", lengths=(1, channels))
        lengths = (len(w_scale),)
        w_zp = _int_array(arrays, f"{key}/w_zero_point", lengths=lengths)
    mult = _int_array(arrays, f"{key}/multiplier", lengths=lengths)
    shift = _int_array(arrays, f"{key}/shift", lengths=lengths)
    if mult.size and not ((mult >= 0).all() and (shift >= -31).all() and (shift <= 30).all()):
        raise ModelFormatError(f"{key!r}: multipliers must be >= 0 and shifts in -31..30")
    return LayerQuant(w_scale, w_zp, out_scale, out_zp, (int(clamp[0]), int(clamp[1])), mult, shift,
                      pool_mode)


def from_arrays(arrays: Mapping[str, np.ndarray]) -> QuantizedNetwork:
    """Validate version-2 arrays and build the :class:`QuantizedNetwork`."""
    dtype = mf._scalar_str(arrays, "quantization")
    if dtype not in DTYPE_RANGE:
        raise ModelFormatError(f"'quantization' {dtype!r} is not one of {sorted(DTYPE_RANGE)}")
    resolution = int(mf._scalar_num(arrays, "resolution", "iu"))
    if not 1 <= resolution <= 4096:
        raise ModelFormatError(f"resolution {resolution} is out of range 1..4096")
    alpha = float(mf._scalar_num(arrays, "alpha", "iuf"))
    activation = mf._scalar_str(arrays, "activation")
    if activation not in ACTIVATIONS:
        raise ModelFormatError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    padding = mf._scalar_str(arrays, "padding")
    if padding not in PADDINGS:
        raise ModelFormatError(f"padding {padding!r} is not one of {list(PADDINGS)}")
    mean = mf._float_array(arrays, "input_mean", (3,))
    std = mf._float_array(arrays, "input_std", (3,))
    if not (std != 0).all():
        raise ModelFormatError("'input_std' contains zero")
    in_scale = float(_positive(arrays, "input/scale", ()))
    in_zp = int(_int_array(arrays, "input/zero_point", ()))
    qmin, qmax = DTYPE_RANGE[dtype]
    if not qmin <= in_zp <= qmax:
        raise ModelFormatError(f"'input/zero_point' = {in_zp} is outside {qmin}..{qmax}")

    strides_arr = mf._get(arrays, "strides")
    if (strides_arr.ndim != 1 or strides_arr.dtype.kind not in "iu"
            or not 1 <= len(strides_arr) <= mf.MAX_DEPTHWISE_LAYERS):
        raise ModelFormatError(f"'strides' must be a 1-d integer array of 1..{mf.MAX_DEPTHWISE_LAYERS} "
                               f"entries, got {strides_arr.dtype} {strides_arr.shape}")
    strides = [int(s) for s in strides_arr]
    if any(s not in (1, 2) for s in strides):
        raise ModelFormatError(f"'strides' entries must be 1 or 2, got {strides}")

    wdtype = mf._get(arrays, "conv0/w").dtype
    if str(wdtype) not in DTYPE_RANGE:
        raise ModelFormatError(f"'conv0/w' must be uint8 or int8, got {wdtype}")
    wdtype = str(wdtype)
    quant: Dict[str, LayerQuant] = {}
    c0 = mf._array_shape(arrays, "conv0/w", 4)[3]
    layers: List = [Conv3x3("conv0", 2, _weights(arrays, "conv0/w", (3, 3, 3, c0), wdtype),
                            _bias(arrays, "conv0/b", c0))]
    quant["conv0"] = _layer_quant(arrays, "conv0", c0, dtype)
    cin = c0
    for k, stride in enumerate(strides, start=1):
        layers.append(Depthwise3x3(f"dw{k}", stride, _weights(arrays, f"dw{k}/w", (3, 3, cin), wdtype),
                                   _bias(arrays, f"dw{k}/b", cin)))
        quant[f"dw{k}"] = _layer_quant(arrays, f"dw{k}", cin, dtype)
        cout = mf._array_shape(arrays, f"pw{k}/w", 2)[1]
        layers.append(Pointwise(f"pw{k}", _weights(arrays, f"pw{k}/w", (cin, cout), wdtype),
                                _bias(arrays, f"pw{k}/b", cout)))
        quant[f"pw{k}"] = _layer_quant(arrays, f"pw{k}", cout, dtype)
        cin = cout
    pool_mode = mf._scalar_str(arrays, "pool/mode")
    if pool_mode not in POOL_MODES:
        raise ModelFormatError(f"'pool/mode' {pool_mode!r} is not one of {list(POOL_MODES)}")
    layers.append(AveragePool())
    quant["pool"] = _layer_quant(arrays, "pool", None, dtype, pool_mode)
    if "fc/w" in arrays:
        classes = mf._array_shape(arrays, "fc/w", 2)[1]
        layers.append(FullyConnected("fc", _weights(arrays, "fc/w", (cin, classes), wdtype),
                                     _bias(arrays, "fc/b", classes)))
        quant["fc"] = _layer_quant(arrays, "fc", classes, dtype)
    labels = None
    if "labels" in arrays:
        lab = mf._get(arrays, "labels")
        if lab.ndim != 1 or lab.dtype.kind != "U":
            raise ModelFormatError(f"'labels' must be a 1-d string array, got {lab.dtype} {lab.shape}")
        labels = [str(s) for s in lab]
        outputs = layers[-1].cout if isinstance(layers[-1], FullyConnected) else cin
        if len(labels) != outputs:
            raise ModelFormatError(f"'labels' has {len(labels)} entries for {outputs} outputs")
    net = QuantizedNetwork(layers, resolution, alpha=alpha, activation=activation, padding=padding,
                           input_mean=mean, input_std=std, labels=labels, dtype=dtype,
                           input_scale=in_scale, input_zero_point=in_zp, quant=quant)
    try:
        net.validate()
    except ValueError as e:
        raise ModelFormatError(f"quantized model: {e}") from None
    return net
