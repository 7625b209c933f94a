"""Operators bound to one ISA's kernels: weights packed once, then called on NHWC buffers.

Each operator knows its output shape and can ``bind`` an input and an output buffer, returning
a zero-argument callable that runs the C operator with precomputed pointers. The float
operators return a :class:`BoundStep`, whose C step description lets the runner run a whole
plan in one C call. ``op(x)`` allocates the output and runs once (what the tests use).
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from ._native import ffi, lib
from .kernels import aligned_empty, fptr
from .network import conv_output


def _packed(size: int) -> np.ndarray:
    return aligned_empty(size, np.float32)


class BoundStep:
    """A float operator bound to its buffers (a ``tm_f32_step``): call it to run that operator
    alone; ``step`` goes into a plan's list for ``tm_f32_run_steps``. Holds references to every
    array and C object its pointers point into."""

    __slots__ = ("step", "_one", "_keep")

    def __init__(self, kind: int, keep: tuple, **fields):
        self._keep = keep
        self.step = ffi.new("tm_f32_step *", dict(kind=kind, **fields))
        self._one = ffi.new("tm_f32_step *[1]", [self.step])

    def __call__(self) -> None:
        lib.tm_f32_run_steps(self._one, 1)


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
        packed, o = fptr(self.packed), fptr(out)
        return BoundStep(lib.TM_STEP_CONV3X3, (x, ind, packed, o, self.zero, self.pool),
                         kern=self.kern, pool=self.pool, batch=n, oh=oh, ow=ow, cin=self.cin,
                         cout=self.cout, indirection=ind, packed=packed, out=o,
                         min=self.clamp[0], max=self.clamp[1])


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
        zero = aligned_empty(w * c + 8, np.float32)
        zero[:] = 0
        i, packed, z, o = fptr(x), fptr(self.packed), fptr(zero), fptr(out)
        return BoundStep(lib.TM_STEP_DWCONV3X3, (i, packed, z, o, self.pool),
                         kern=self.kern, pool=self.pool, batch=n, h=h, w=w, cin=c,
                         stride=self.stride, pad_top=top, pad_left=left, oh=oh, ow=ow, **{"in": i},
                         packed=packed, zero=z, out=o, min=self.clamp[0], max=self.clamp[1])


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
        i, packed, o = fptr(x), fptr(self.packed), fptr(out)
        return BoundStep(lib.TM_STEP_POINTWISE, (i, packed, o, self.pool),
                         kern=self.kern, pool=self.pool, batch=m, cin=self.cin, cout=self.cout,
                         **{"in": i}, packed=packed, out=o, min=self.clamp[0], max=self.clamp[1])


class AveragePoolOp(Op):
    """Global average pool (N, H, W, C) -> (N, C)."""

    def __init__(self, kern):
        self.kern = kern

    def output_shape(self, shape):
        return (shape[0], shape[-1])

    def bind(self, x, out):
        n, h, w, c = x.shape
        assert out.shape == (n, c)
        i, o = fptr(x), fptr(out)
        return BoundStep(lib.TM_STEP_AVGPOOL, (i, o), kern=self.kern, pool=ffi.NULL, batch=n,
                         h=h, w=w, cin=c, **{"in": i}, out=o)
