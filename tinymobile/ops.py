"""Operators bound to one ISA's kernels: weights packed once, then run on NHWC buffers.

An operator is immutable after creation (packed weights, geometry, output parameters) and may be
shared by any number of plans and threads. ``bind(x, out)`` describes one run on an input and an
output buffer as a :class:`Step` (a C ``tm_step``); the step reports the workspace it needs
(indirection table, zero rows, per-thread scratch), whoever owns the buffers (a runner's plan)
allocates it and hands it to ``Step.setup``, and the step then runs alone (``step()``) or in a
plan's list (``tm_run_steps``, one C call for a whole forward pass). ``op(x)`` allocates
everything and runs once (what the tests use).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ._native import ffi, lib
from .errors import InputError, TinyMobileError
from .kernels import aligned_empty, fptr
from .network import conv_output

_SIZE_MAX = ffi.cast("size_t", -1)


def _packed(size: int) -> np.ndarray:
    return aligned_empty(size, np.float32)


def check_status(status: int) -> None:
    """Raise TinyMobileError for a C status other than TM_OK."""
    if status != lib.TM_OK:
        raise TinyMobileError(f"C operator: {ffi.string(lib.tm_status_string(status)).decode()}")


def _check_buffer(a: np.ndarray, dtype, what: str) -> None:
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        raise InputError(f"{what} must be a {np.dtype(dtype).name} array, got "
                         f"{getattr(a, 'dtype', type(a).__name__)}")
    if not a.flags.c_contiguous:
        raise InputError(f"{what} must be C-contiguous")
    if what == "output" and not a.flags.writeable:
        raise InputError("output must be writeable")


class Step:
    """One operator bound to an input and an output buffer: a ``tm_step`` holding references to
    every array and C object its pointers point into. ``workspace_size`` bytes must be handed to
    :meth:`setup` before it runs; the step then reads and writes only its buffers and that
    workspace, so steps of different plans never share mutable memory."""

    __slots__ = ("c", "_one", "_keep", "workspace")

    def __init__(self, keep: tuple, **fields):
        self._keep = keep
        self.c = ffi.new("tm_step *", fields)
        self._one = ffi.new("tm_step *[1]", [self.c])
        self.workspace: Optional[np.ndarray] = None

    @property
    def workspace_size(self) -> int:
        """Bytes of workspace this step needs (0: none)."""
        size = lib.tm_step_workspace_size(self.c)
        if size == _SIZE_MAX:
            check_status(lib.tm_step_setup(self.c, ffi.NULL))  # names the problem
        return int(size)

    def setup(self, workspace: Optional[np.ndarray] = None) -> "Step":
        """Hand the step its workspace (a 64-byte aligned uint8 array of >= workspace_size bytes;
        None: allocate one) and initialise it. Returns self."""
        size = self.workspace_size
        if workspace is None and size:
            workspace = aligned_empty(size, np.uint8)
        if size and (workspace.nbytes < size or workspace.ctypes.data % 64):
            raise TinyMobileError(f"workspace of {workspace.nbytes} bytes at "
                                  f"{workspace.ctypes.data:#x}: need {size}, 64-byte aligned")
        check_status(lib.tm_step_setup(self.c, ffi.from_buffer(workspace) if size else ffi.NULL))
        self.workspace = workspace if size else None
        return self

    def __call__(self) -> None:
        """Run this step alone."""
        check_status(lib.tm_run_steps(self._one, 1))


class Op:
    """Base class: ``output_shape``, ``bind`` and the convenience ``run`` / ``__call__``;
    ``dtype`` is the activations' dtype."""

    dtype = np.float32

    def output_shape(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        raise NotImplementedError

    def bind(self, x: np.ndarray, out: np.ndarray) -> Step:
        raise NotImplementedError

    def check_buffers(self, x: np.ndarray, out: np.ndarray) -> None:
        """Raise InputError unless x and out are C-contiguous arrays of this operator's dtype
        and out has the shape ``output_shape(x.shape)``: the C operator trusts them."""
        _check_buffer(x, self.dtype, "input")
        _check_buffer(out, self.dtype, "output")
        want = self.output_shape(x.shape)
        if out.shape != want:
            raise InputError(f"output has shape {out.shape}, expected {want} for input {x.shape}")

    def run(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Bind x and out, set up a workspace of its own, run once; returns out."""
        self.bind(x, out).setup()()
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, self.dtype)
        return self.run(x, np.empty(self.output_shape(x.shape), self.dtype))


class Window3x3:
    """Geometry shared by the 3x3 operators (float and integer): needs ``stride``, ``padding``,
    ``cin`` and ``cout`` (a depthwise layer has cin == cout)."""

    def output_shape(self, shape):
        if len(shape) != 4 or shape[3] != self.cin or min(shape) < 1:
            raise InputError(f"a 3x3 layer of {self.cin} input channels takes (N, H, W, "
                             f"{self.cin}) with N, H, W >= 1, got {tuple(shape)}")
        n, h, w, _ = shape
        return (n, conv_output(h, self.stride, self.padding)[0],
                conv_output(w, self.stride, self.padding)[0], self.cout)

    def geometry(self, x: np.ndarray, out: np.ndarray) -> dict:
        """The tm_step geometry fields for input x and output out (checked against each other)."""
        self.check_buffers(x, out)
        n, h, w, _ = x.shape
        oh, top = conv_output(h, self.stride, self.padding)
        ow, left = conv_output(w, self.stride, self.padding)
        return dict(batch=n, h=h, w=w, cin=self.cin, cout=self.cout, stride=self.stride,
                    pad_top=top, pad_left=left, oh=oh, ow=ow)


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

    def bind(self, x, out):
        g = self.geometry(x, out)
        # The workspace's indirection table points into x: the step keeps x alive.
        i, packed, o = fptr(x), fptr(self.packed), fptr(out)
        return Step((i, packed, o, self.pool), kind=lib.TM_OP_CONV3X3, dtype=lib.TM_F32,
                    f32=self.kern, pool=self.pool, **g, **{"in": i}, packed=packed, out=o,
                    f32_min=self.clamp[0], f32_max=self.clamp[1])


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
        g = self.geometry(x, out)
        i, packed, o = fptr(x), fptr(self.packed), fptr(out)
        return Step((i, packed, o, self.pool), kind=lib.TM_OP_DWCONV3X3, dtype=lib.TM_F32,
                    f32=self.kern, pool=self.pool, **g, **{"in": i}, packed=packed, out=o,
                    f32_min=self.clamp[0], f32_max=self.clamp[1])


class Rows:
    """Shape rules of the pointwise operators (float and integer): (..., cin) -> (..., cout)."""

    def output_shape(self, shape):
        if len(shape) < 1 or shape[-1] != self.cin:
            raise InputError(f"a pointwise layer of {self.cin} input channels takes (..., "
                             f"{self.cin}), got {tuple(shape)}")
        return tuple(shape[:-1]) + (self.cout,)

    def rows(self, x: np.ndarray, out: np.ndarray) -> int:
        """Rows m of the (m, cin) x (cin, cout) product (x and out checked)."""
        self.check_buffers(x, out)
        return x.size // self.cin


class PointwiseOp(Rows, Op):
    """1x1 convolution or fully connected layer (..., Cin) -> (..., Cout) on packed weights."""

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray,
                 clamp: Tuple[float, float] = (-np.inf, np.inf)):
        self.kern, self.pool, self.clamp = kern, pool, clamp
        self.cin, self.cout = w.shape
        self.packed = _packed(lib.tm_f32_gemm_packed_size(kern, self.cin, self.cout))
        lib.tm_f32_gemm_pack(kern, self.cin, self.cout, fptr(np.ascontiguousarray(w, np.float32)),
                             fptr(np.ascontiguousarray(b, np.float32)), fptr(self.packed))

    def bind(self, x, out):
        m = self.rows(x, out)
        i, packed, o = fptr(x), fptr(self.packed), fptr(out)
        return Step((i, packed, o, self.pool), kind=lib.TM_OP_POINTWISE, dtype=lib.TM_F32,
                    f32=self.kern, pool=self.pool, batch=m, cin=self.cin, cout=self.cout,
                    **{"in": i}, packed=packed, out=o, f32_min=self.clamp[0], f32_max=self.clamp[1])


class GlobalPool:
    """Shape rules of the global average pools: (N, H, W, C) -> (N, C)."""

    def output_shape(self, shape):
        if len(shape) != 4 or min(shape) < 1:
            raise InputError(f"a global pool takes (N, H, W, C) with every size >= 1, got {tuple(shape)}")
        return (shape[0], shape[-1])

    def geometry(self, x: np.ndarray, out: np.ndarray) -> dict:
        self.check_buffers(x, out)
        n, h, w, c = x.shape
        return dict(batch=n, h=h, w=w, cin=c)


class AveragePoolOp(GlobalPool, Op):
    """Global average pool (N, H, W, C) -> (N, C)."""

    def __init__(self, kern):
        self.kern = kern

    def bind(self, x, out):
        g = self.geometry(x, out)
        i, o = fptr(x), fptr(out)
        return Step((i, o), kind=lib.TM_OP_AVGPOOL, dtype=lib.TM_F32, f32=self.kern,
                    pool=ffi.NULL, **g, **{"in": i}, out=o)
