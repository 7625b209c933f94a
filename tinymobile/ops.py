"""Operators bound to one ISA's kernels: weights packed once, then called on NHWC buffers.

Each operator knows its output shape and can ``bind`` an input and an output buffer, returning
a zero-argument callable that runs the C operator with precomputed pointers (what the runner
calls in its loop). ``op(x)`` allocates the output and runs once (what the tests use).
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from ._native import ffi, lib
from .kernels import aligned_empty, fptr
from .network import conv_output


def _packed(size: int) -> np.ndarray:
    return aligned_empty(size, np.float32)


class Op:
    """Base class: ``output_shape``, ``bind`` and a convenience ``__call__``; ``dtype`` is the
    activations' dtype."""

    dtype = np.float32

    def output_shape(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        raise NotImplementedError

    def bind(self, x: np.ndarray, out: np.ndarray) -> Callable[[], None]:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, self.dtype)
        out = np.empty(self.output_shape(x.shape), self.dtype)
        self.bind(x, out)()
        return out


class Window3x3:
    """Geometry shared by the 3x3 operators (float and integer): needs ``stride``, ``padding``,
    ``cin`` and ``cout`` (a depthwise layer has cin == cout)."""

    def output_shape(self, shape):
        n, h, w, c = shape
        assert c == self.cin, (shape, self.cin)
        return (n, conv_output(h, self.stride, self.padding)[0],
                conv_output(w, self.stride, self.padding)[0], self.cout)

    def geometry(self, x: np.ndarray, out: np.ndarray) -> Tuple[int, ...]:
        """(n, h, w, oh, ow, top, left) for input x and output out (checked against each other)."""
        n, h, w, _ = x.shape
        oh, top = conv_output(h, self.stride, self.padding)
        ow, left = conv_output(w, self.stride, self.padding)
        assert out.shape == (n, oh, ow, self.cout), (x.shape, out.shape)
        return n, h, w, oh, ow, top, left


class Conv3x3Op(Window3x3, Op):
    """Full 3x3 convolution (N, H, W, Cin) -> (N, OH, OW, Cout), bias and clamp fused."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 clamp: Tuple[float, float]):
        self.kern, self.pool, self.stride, self.padding, self.clamp = kern, pool, stride, padding, clamp
        self.cin, self.cout = w.shape[2], w.shape[3]
        self.packed = _packed(lib.tm_f32_gemm_packed_size(kern, 9 * self.cin, self.cout))
        wf = np.ascontiguousarray(w, np.float32).reshape(9 * self.cin, self.cout)
        lib.tm_f32_gemm_pack(kern, 9 * self.cin, self.cout, fptr(wf),
                             fptr(np.ascontiguousarray(b, np.float32)), fptr(self.packed))
        self.zero = np.zeros(self.cin, np.float32)

    def bind(self, x, out):
        n, h, w, oh, ow, top, left = self.geometry(x, out)
        # Pointers into x, built once for this buffer: the bound call must keep x alive.
        ind = ffi.new("const float *[]", lib.tm_f32_conv3x3_indirection_size(self.kern, n, oh, ow))
        lib.tm_f32_conv3x3_indirection_init(self.kern, n, h, w, self.cin, self.stride, top, left,
                                            oh, ow, fptr(x), fptr(self.zero), ind)
        args = (self.kern, self.pool, n, oh, ow, self.cin, self.cout, ind, fptr(self.packed),
                fptr(out), self.clamp[0], self.clamp[1])
        return lambda: (x, lib.tm_f32_conv3x3_op(*args))


class Depthwise3x3Op(Window3x3, Op):
    """Depthwise 3x3 convolution (N, H, W, C) -> (N, OH, OW, C), bias and clamp fused."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 clamp: Tuple[float, float]):
        self.kern, self.pool, self.stride, self.padding, self.clamp = kern, pool, stride, padding, clamp
        self.channels = self.cin = self.cout = w.shape[2]
        self.packed = _packed(lib.tm_f32_dwconv3x3_packed_size(self.channels))
        lib.tm_f32_dwconv3x3_pack(self.channels, fptr(np.ascontiguousarray(w, np.float32)),
                                  fptr(np.ascontiguousarray(b, np.float32)), fptr(self.packed))

    def bind(self, x, out):
        n, h, w, oh, ow, top, left = self.geometry(x, out)
        c = self.channels
        zero = np.zeros(w * c + 8, np.float32)
        args = (self.kern, self.pool, n, h, w, c, self.stride, top, left, oh, ow, fptr(x),
                fptr(self.packed), fptr(zero), fptr(out), self.clamp[0], self.clamp[1])
        return lambda: (zero, lib.tm_f32_dwconv3x3_op(*args))


class PointwiseOp(Op):
    """1x1 convolution or fully connected layer (..., Cin) -> (..., Cout) on packed weights."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray,
                 clamp: Tuple[float, float] = (-np.inf, np.inf)):
        self.kern, self.pool, self.clamp = kern, pool, clamp
        self.cin, self.cout = w.shape
        self.packed = _packed(lib.tm_f32_gemm_packed_size(kern, self.cin, self.cout))
        lib.tm_f32_gemm_pack(kern, self.cin, self.cout, fptr(np.ascontiguousarray(w, np.float32)),
                             fptr(np.ascontiguousarray(b, np.float32)), fptr(self.packed))

    def output_shape(self, shape):
        assert shape[-1] == self.cin, (shape, self.cin)
        return tuple(shape[:-1]) + (self.cout,)

    def bind(self, x, out):
        m = x.size // self.cin
        assert out.size == m * self.cout
        args = (self.kern, self.pool, m, self.cin, self.cout, fptr(x), fptr(self.packed), fptr(out),
                self.clamp[0], self.clamp[1])
        return lambda: lib.tm_f32_pointwise_op(*args)


class AveragePoolOp(Op):
    """Global average pool (N, H, W, C) -> (N, C)."""

    def __init__(self, kern):
        self.kern = kern

    def output_shape(self, shape):
        return (shape[0], shape[-1])

    def bind(self, x, out):
        n, h, w, c = x.shape
        assert out.shape == (n, c)
        args = (self.kern, n, h * w, c, fptr(x), fptr(out))
        return lambda: lib.tm_f32_avgpool_op(*args)
