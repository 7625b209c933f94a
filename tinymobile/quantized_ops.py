"""Quantized operators bound to one ISA's integer kernels (``tm_qu8_*``): weights packed once,
then called on NHWC uint8 buffers, like :mod:`tinymobile.ops` for float.

All operators work on uint8 activations. An int8 model runs in the same domain: every activation
is ``x_i8 + 128`` (``x.view(np.uint8) ^ 0x80``), every activation zero point and clamp is shifted
by 128, so ``x - x_zp`` -- and hence every result -- is unchanged; see :func:`domain_offset`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ._native import ffi, lib
from . import kernels
from .fixedpoint import Requant, mean_multiplier
from .ops import GlobalPool, Op, Rows, Step, Window3x3


def domain_offset(dtype: str) -> int:
    """What the uint8 kernel domain adds to stored values: 0 for uint8, 128 for int8."""
    return 128 if dtype == "int8" else 0


def to_domain(x: np.ndarray) -> np.ndarray:
    """uint8 stays as it is; int8 becomes x + 128 as uint8 (a copy)."""
    if x.dtype == np.int8:
        return x.view(np.uint8) ^ np.uint8(0x80)
    return x


def from_domain(x: np.ndarray, dtype: str) -> np.ndarray:
    """Inverse of :func:`to_domain` for a model of ``dtype``."""
    if dtype == "int8":
        return (x ^ np.uint8(0x80)).view(np.int8)
    return x


def kernel_table(isa: str = None):
    """The quantized C kernel table (``tm_qu8_kernels*``) of ``isa`` (default: the best one)."""
    return kernels.kernel_table(isa, lib.tm_qu8_kernels_for)


def _aligned_bytes(size: int) -> np.ndarray:
    return kernels.aligned_empty(size, np.uint8)


def _ptr(kind: str, a: np.ndarray):
    """An array view of ``a`` (no copy) passed where C takes ``kind`` ("int16_t *"...); it keeps
    ``a`` alive while held."""
    item = kind.replace("*", "").strip()
    return ffi.from_buffer(("uint8_t" if item == "void" else item) + "[]", a)


def _weights_offset(w: np.ndarray, rq: Requant) -> np.ndarray:
    """w - w_zero_point as int16 (per output channel = last axis)."""
    return np.ascontiguousarray(w.astype(np.int16) - np.asarray(rq.weight_zero_point, np.int16))


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(a, np.int32)


class QOp(Op):
    """Base class of the integer operators: uint8 activations."""

    dtype = np.uint8


class _Requantized(QOp):
    """Output zero point and clamp moved into the uint8 domain."""

    def __init__(self, rq: Requant, offset: int):
        self.in_zp = int(rq.input_zero_point) + offset
        self.out_zp = int(rq.output_zero_point) + offset
        self.lo, self.hi = int(rq.clamp[0]) + offset, int(rq.clamp[1]) + offset

    def quant(self) -> dict:
        """The tm_qu8_step_params of this operator."""
        return dict(input_zero_point=self.in_zp, output_zero_point=self.out_zp, min=self.lo,
                    max=self.hi)


class QPointwiseOp(Rows, _Requantized):
    """1x1 convolution / fully connected (..., Cin) uint8 -> (..., Cout) uint8."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, rq: Requant, offset: int = 0):
        super().__init__(rq, offset)
        self.kern, self.pool = kern, pool
        self.cin, self.cout = w.shape
        self.packed = _aligned_bytes(lib.tm_qu8_gemm_packed_size(kern, self.cin, self.cout))
        # Keep every temporary array referenced until the C call returns (a pointer made from a
        # temporary does not keep it alive).
        wk, bk, mk, sk = _weights_offset(w, rq), _i32(b), _i32(rq.multiplier), _i32(rq.shift)
        lib.tm_qu8_gemm_pack(kern, self.cin, self.cout, _ptr("int16_t *", wk), _ptr("int32_t *", bk),
                             self.in_zp, _ptr("int32_t *", mk), _ptr("int32_t *", sk),
                             _ptr("void *", self.packed))

    def bind(self, x, out):
        m = self.rows(x, out)
        i, packed, o = _ptr("uint8_t *", x), _ptr("void *", self.packed), _ptr("uint8_t *", out)
        return Step((i, packed, o, self.pool), kind=lib.TM_OP_POINTWISE, dtype=lib.TM_QU8,
                    qu8=self.kern, pool=self.pool, batch=m, cin=self.cin, cout=self.cout,
                    **{"in": i}, packed=packed, out=o, quant=self.quant())


class QConv3x3Op(Window3x3, _Requantized):
    """Full 3x3 convolution (N, H, W, Cin) -> (N, OH, OW, Cout), uint8."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 rq: Requant, offset: int = 0):
        super().__init__(rq, offset)
        self.kern, self.pool, self.stride, self.padding = kern, pool, stride, padding
        self.cin, self.cout = w.shape[2], w.shape[3]
        k = 9 * self.cin
        self.packed = _aligned_bytes(lib.tm_qu8_gemm_packed_size(kern, k, self.cout))
        wk = _weights_offset(w, rq).reshape(k, self.cout)
        bk, mk, sk = _i32(b), _i32(rq.multiplier), _i32(rq.shift)
        lib.tm_qu8_gemm_pack(kern, k, self.cout, _ptr("int16_t *", wk), _ptr("int32_t *", bk),
                             self.in_zp, _ptr("int32_t *", mk), _ptr("int32_t *", sk),
                             _ptr("void *", self.packed))

    def bind(self, x, out):
        g = self.geometry(x, out)
        i, packed, o = _ptr("uint8_t *", x), _ptr("void *", self.packed), _ptr("uint8_t *", out)
        return Step((i, packed, o, self.pool), kind=lib.TM_OP_CONV3X3, dtype=lib.TM_QU8,
                    qu8=self.kern, pool=self.pool, **g, **{"in": i}, packed=packed, out=o,
                    quant=self.quant())


class QDepthwise3x3Op(Window3x3, _Requantized):
    """Depthwise 3x3 convolution (N, H, W, C) -> (N, OH, OW, C), uint8."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 rq: Requant, offset: int = 0):
        super().__init__(rq, offset)
        self.kern, self.pool, self.stride, self.padding = kern, pool, stride, padding
        self.channels = self.cin = self.cout = w.shape[2]
        self.packed = np.empty(lib.tm_qu8_dwconv3x3_packed_size(self.channels) // 4, np.int32)
        wk, bk, mk, sk = _weights_offset(w, rq), _i32(b), _i32(rq.multiplier), _i32(rq.shift)
        lib.tm_qu8_dwconv3x3_pack(self.channels, _ptr("int16_t *", wk), _ptr("int32_t *", bk),
                                  self.in_zp, _ptr("int32_t *", mk), _ptr("int32_t *", sk),
                                  _ptr("void *", self.packed))

    def bind(self, x, out):
        g = self.geometry(x, out)
        i, packed, o = _ptr("uint8_t *", x), _ptr("void *", self.packed), _ptr("uint8_t *", out)
        return Step((i, packed, o, self.pool), kind=lib.TM_OP_DWCONV3X3, dtype=lib.TM_QU8,
                    qu8=self.kern, pool=self.pool, **g, **{"in": i}, packed=packed, out=o,
                    quant=self.quant())


class QAveragePoolOp(GlobalPool, QOp):
    """Global average pool (N, H, W, C) -> (N, C), uint8; ``mode`` "average_pool_2d" or "mean"
    (TFLite's AVERAGE_POOL_2D / int8 MEAN rounding)."""

    def __init__(self, kern, mode: str, clamp: Tuple[int, int], offset: int = 0,
                 input_zero_point: int = 0, output_zero_point: int = 0, multiplier: int = 0,
                 shift: int = 0):
        if mode not in ("average_pool_2d", "mean"):
            raise ValueError(f"unknown pool mode {mode!r}")
        self.kern = kern
        self.mode = 0 if mode == "average_pool_2d" else 1
        self.offset = offset
        self.in_zp, self.out_zp = int(input_zero_point) + offset, int(output_zero_point) + offset
        self.multiplier, self.shift = int(multiplier), int(shift)
        self.lo, self.hi = int(clamp[0]) + offset, int(clamp[1]) + offset

    def bind(self, x, out):
        g = self.geometry(x, out)
        mult, shift = self.multiplier, self.shift
        if self.mode == 1:
            mult, shift = mean_multiplier(mult, shift, g["h"] * g["w"])
        i, o = _ptr("uint8_t *", x), _ptr("uint8_t *", out)
        quant = dict(input_zero_point=self.in_zp, output_zero_point=self.out_zp, min=self.lo,
                     max=self.hi, pool_mode=self.mode, value_offset=self.offset,
                     multiplier=mult, shift=shift)
        return Step((i, o), kind=lib.TM_OP_AVGPOOL, dtype=lib.TM_QU8, qu8=self.kern,
                    pool=ffi.NULL, **g, **{"in": i}, out=o, quant=quant)
