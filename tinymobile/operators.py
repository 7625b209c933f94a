"""Operators: one per layer kind, each with a float32 and an integer flavour, bound to one ISA's
kernel table. Which flavour an operator is follows from its table: a ``tm_f32_kernels*``
(:func:`kernel_table` of "float32") gives float32 activations, clamped outputs and float packing;
a ``tm_qu8_kernels*`` (of "uint8" / "int8") gives uint8-domain activations, requantized
outputs (``rq``) and integer packing. Weights are packed once, at creation.

An operator is immutable after creation (packed weights, geometry, output parameters) and may be
shared by any number of plans and threads. ``bind(x, out)`` describes one run on an input and an
output buffer as a :class:`Step` (a C ``tm_step``); the step reports the workspace it needs
(indirection table, zero rows, per-thread scratch), whoever owns the buffers (a runner's plan)
allocates it and hands it to :meth:`Step.setup`, and the step then runs alone (``step()``) or in
a plan's list (``tm_run_steps``: one C call for a whole forward pass). ``op.run(x, out)`` and
``op(x)`` allocate a workspace of their own and run once (what the tests use).

The integer domain: all integer kernels work on uint8 activations. An int8 model runs in the
same domain: every activation is ``x_i8 + 128`` (``x.view(np.uint8) ^ 0x80``), every activation
zero point and clamp is shifted by 128, so ``x - x_zp`` -- and hence every result -- is
unchanged; see :func:`domain_offset`.

:data:`OPERATORS` maps each layer kind (``layer.kind``, see
:data:`tinymobile.network.LAYER_KINDS`) to the factory that builds its operator; a new layer
kind is one entry there (and one C operator in csrc/, one row of csrc/steps.c).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from . import kernels
from ._native import ffi, lib
from .errors import InputError, ModelFormatError, TinyMobileError
from .fixedpoint import Requant, mean_multiplier
from .network import Network, conv_output

_SIZE_MAX = ffi.cast("size_t", -1)
_F32_TABLE = ffi.typeof("tm_f32_kernels *")
_QU8_TABLE = ffi.typeof("tm_qu8_kernels *")
#: Integer pool roundings (LayerQuant.pool_mode) -> tm_qu8_step_params.pool_mode.
POOL_MODES = {"average_pool_2d": lib.TM_POOL_AVERAGE_POOL_2D, "mean": lib.TM_POOL_MEAN}
_NO_CLAMP = (-np.inf, np.inf)


# ---- kernel tables and the integer domain -------------------------------------------------
def kernel_table(isa: Optional[str] = None, dtype: str = "float32"):
    """The C kernel table of ``isa`` (default: the best available) for activations of ``dtype``:
    ``tm_f32_kernels*`` for "float32", ``tm_qu8_kernels*`` for "uint8" and "int8"."""
    if dtype == "float32":
        return kernels.kernel_table(isa, lib.tm_f32_kernels_for)
    if dtype in ("uint8", "int8"):
        return kernels.kernel_table(isa, lib.tm_qu8_kernels_for)
    raise TinyMobileError(f"no kernels for dtype {dtype!r}; expected float32, uint8 or int8")


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


# ---- steps ----------------------------------------------------------------------------------
def check_status(status: int) -> None:
    """Raise TinyMobileError for a C status other than TM_OK."""
    if status != lib.TM_OK:
        raise TinyMobileError(f"C operator: {ffi.string(lib.tm_status_string(status)).decode()}")


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
            workspace = kernels.aligned_empty(size, np.uint8)
        if size and (workspace.nbytes < size or workspace.ctypes.data % 64):
            raise TinyMobileError(f"workspace of {workspace.nbytes} bytes at "
                                  f"{workspace.ctypes.data:#x}: need {size}, 64-byte aligned")
        check_status(lib.tm_step_setup(self.c, ffi.from_buffer(workspace) if size else ffi.NULL))
        self.workspace = workspace if size else None
        return self

    def __call__(self) -> None:
        """Run this step alone."""
        check_status(lib.tm_run_steps(self._one, 1))


# ---- packing helpers ------------------------------------------------------------------------
def _packed(size: int) -> np.ndarray:
    """Packed float weights (tests/helpers/native_override poisons the slack after them)."""
    return kernels.aligned_empty(size, np.float32)


def _fptr(a: np.ndarray):
    return ffi.from_buffer("float[]", a)


def _ptr(kind: str, a: np.ndarray):
    """An array view of ``a`` (no copy) passed where C takes ``kind`` ("int16_t *"...); it keeps
    ``a`` alive while held."""
    item = kind.replace("*", "").strip()
    return ffi.from_buffer(("uint8_t" if item == "void" else item) + "[]", a)


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32)


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(a, np.int32)


def _weights_offset(w: np.ndarray, rq: Requant) -> np.ndarray:
    """w - w_zero_point as int16 (per output channel = last axis)."""
    return np.ascontiguousarray(w.astype(np.int16) - np.asarray(rq.weight_zero_point, np.int16))


def _check_buffer(a: np.ndarray, dtype, what: str) -> None:
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        raise InputError(f"{what} must be a {np.dtype(dtype).name} array, got "
                         f"{getattr(a, 'dtype', type(a).__name__)}")
    if not a.flags.c_contiguous:
        raise InputError(f"{what} must be C-contiguous")
    if what == "output" and not a.flags.writeable:
        raise InputError("output must be writeable")


# ---- operators ------------------------------------------------------------------------------
class Op:
    """Base class: the flavour (from the kernel table), output parameters, ``output_shape``,
    ``bind`` and the convenience ``run`` / ``__call__``. ``dtype``: the activations' dtype
    (float32, or uint8 for the integer flavour); ``integer``: which flavour.

    Output parameters: float32, ``clamp`` (min, max); integer, ``rq`` (input / output zero
    points, clamp; the multipliers and shifts are packed with the weights) with ``offset`` (the
    uint8 domain's shift, :func:`domain_offset`)."""

    kind = 0  # TM_OP_* of the subclass

    def __init__(self, kern, pool, clamp: Tuple[float, float] = _NO_CLAMP,
                 rq: Optional[Requant] = None, offset: int = 0, requantized: bool = True):
        table = ffi.typeof(kern)
        if table not in (_F32_TABLE, _QU8_TABLE):
            raise TinyMobileError(f"{type(self).__name__} takes a kernel table, got {kern!r}")
        self.kern, self.pool = kern, pool
        self.integer = table is _QU8_TABLE
        self.dtype = np.uint8 if self.integer else np.float32
        if not self.integer:
            if rq is not None:
                raise TinyMobileError(f"{type(self).__name__}: a float32 table takes no "
                                      f"requantization (use an integer table)")
            self.clamp = (float(clamp[0]), float(clamp[1]))
        elif requantized:
            if rq is None:
                raise TinyMobileError(f"{type(self).__name__}: an integer table needs the "
                                      f"layer's requantization")
            self.in_zp = int(rq.input_zero_point) + offset
            self.out_zp = int(rq.output_zero_point) + offset
            self.lo, self.hi = int(rq.clamp[0]) + offset, int(rq.clamp[1]) + offset

    def output_shape(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        raise NotImplementedError

    def bind(self, x: np.ndarray, out: np.ndarray) -> Step:
        """A step running this operator from x into out (both checked), not yet set up."""
        raise NotImplementedError

    def kernel_path(self, rows: Optional[int] = None) -> str:
        """The ukernel(s) this operator runs, by function name (what the benchmark's per-layer
        profile shows): the GEMM tile of a pointwise / full 3x3 layer (float pointwise: and the
        GEMV of a lone last row where the table has one; 3x3: and the narrow tile of
        panels of few output channels), the depthwise row kernel, the pool.
        ``rows``: a pointwise layer's batch x pixels, when known — the tile it runs on (and for
        float whether a lone row takes the GEMV) depends on it."""
        name = lib.tm_qu8_ukernel_name if self.integer else lib.tm_f32_ukernel_name

        def part(p):
            c = name(self.kern, p)
            return ffi.string(c).decode() if c != ffi.NULL else None

        if self.kind == lib.TM_OP_POINTWISE and not self.integer:
            gemm = part(lib.TM_UK_GEMM)
            if self.kern.ppmm != ffi.NULL:  # A packed once per row block (in-order aarch64)
                gemm = ffi.string(self.kern.ppmm_name).decode()
            if rows is not None:
                gemm = ffi.string(lib.tm_f32_pointwise_igemm_name(self.kern, rows)).decode()
                short = self.kern.igemm_short != ffi.NULL and gemm == ffi.string(
                    self.kern.igemm_short_name).decode()
                mr = self.kern.gemm_mr_short if short else self.kern.gemm_mr
            gemv = part(lib.TM_UK_GEMV)
            if gemv and rows == 1:
                return gemv  # batch 1 of a classifier: the GEMV alone
            lone = rows is None or rows % mr == 1
            return gemm + (f" + {gemv}" if gemv and lone else "")
        if self.kind == lib.TM_OP_CONV3X3:
            # Panels of at most conv_narrow_nr columns run the table's narrow tile, if any.
            nr, narrow = self.kern.gemm_nr, part(lib.TM_UK_CONV_NARROW)
            tiles = []
            for n0 in range(0, self.cout, nr):
                tile = (narrow if narrow and min(nr, self.cout - n0) <= self.kern.conv_narrow_nr
                        else part(lib.TM_UK_GEMM))
                if tile not in tiles:
                    tiles.append(tile)
            return " + ".join(tiles)
        if self.kind == lib.TM_OP_POINTWISE and rows is not None:  # integer: main or short tile
            c = lib.tm_qu8_pointwise_gemm_name(self.kern, rows)
            return ffi.string(c).decode() if c != ffi.NULL else part(lib.TM_UK_GEMM)
        if self.kind in (lib.TM_OP_POINTWISE, lib.TM_OP_CONV3X3):
            return part(lib.TM_UK_GEMM)
        if self.kind == lib.TM_OP_DWCONV3X3:
            return part(lib.TM_UK_DWCONV)
        if self.kind == lib.TM_OP_AVGPOOL:
            return "plain C (avgpool_op.c)" if self.integer else part(lib.TM_UK_AVGPOOL)
        return "?"

    def output_fields(self) -> dict:
        """The tm_step fields of the flavour: dtype, table and output parameters."""
        if not self.integer:
            return dict(dtype=lib.TM_F32, f32=self.kern, f32_min=self.clamp[0],
                        f32_max=self.clamp[1])
        return dict(dtype=lib.TM_QU8, qu8=self.kern,
                    quant=dict(input_zero_point=self.in_zp, output_zero_point=self.out_zp,
                               min=self.lo, max=self.hi))

    def _step(self, x: np.ndarray, out: np.ndarray, packed, **geometry) -> Step:
        i, o = ffi.from_buffer(x), ffi.from_buffer(out)
        fields = self.output_fields()
        fields.update(geometry)
        if packed is not None:
            fields["packed"] = packed
        # The workspace may point into x (the float conv's indirection table): the step keeps
        # x, out, the packed weights and the pool alive.
        return Step((x, out, i, o, packed, self.pool), kind=self.kind, pool=self.pool,
                    **{"in": i}, out=o, **fields)

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

    # packing for both flavours
    def _pack_gemm(self, w: np.ndarray, b: np.ndarray, rq: Optional[Requant]):
        """k x n GEMM weights (HWIO flattened for a 3x3 conv) packed for the table."""
        k, n = w.shape
        if not self.integer:
            packed = _packed(lib.tm_f32_gemm_packed_size(self.kern, k, n))
            lib.tm_f32_gemm_pack(self.kern, k, n, _fptr(_f32(w)), _fptr(_f32(b)), _fptr(packed))
            return packed, _fptr(packed)
        packed = kernels.aligned_empty(lib.tm_qu8_gemm_packed_size(self.kern, k, n), np.uint8)
        # Every temporary stays referenced until the C call returns (a pointer made from a
        # temporary does not keep it alive).
        wk, bk, mk, sk = _weights_offset(w, rq), _i32(b), _i32(rq.multiplier), _i32(rq.shift)
        lib.tm_qu8_gemm_pack(self.kern, k, n, _ptr("int16_t *", wk), _ptr("int32_t *", bk),
                             self.in_zp, _ptr("int32_t *", mk), _ptr("int32_t *", sk),
                             _ptr("void *", packed))
        return packed, _ptr("void *", packed)

    def _pack_depthwise(self, w: np.ndarray, b: np.ndarray, rq: Optional[Requant]):
        c = w.shape[2]
        if not self.integer:
            packed = _packed(lib.tm_f32_dwconv3x3_packed_size(c))
            lib.tm_f32_dwconv3x3_pack(c, _fptr(_f32(w)), _fptr(_f32(b)), _fptr(packed))
            return packed, _fptr(packed)
        packed = kernels.aligned_empty(lib.tm_qu8_dwconv3x3_packed_size(c), np.uint8)
        wk, bk, mk, sk = _weights_offset(w, rq), _i32(b), _i32(rq.multiplier), _i32(rq.shift)
        lib.tm_qu8_dwconv3x3_pack(c, _ptr("int16_t *", wk), _ptr("int32_t *", bk), self.in_zp,
                                  _ptr("int32_t *", mk), _ptr("int32_t *", sk),
                                  _ptr("void *", packed))
        return packed, _ptr("void *", packed)


class Window3x3(Op):
    """Geometry shared by the 3x3 operators: ``stride``, ``padding``, ``cin``, ``cout`` (a
    depthwise layer has cin == cout)."""

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

    def bind(self, x, out):
        return self._step(x, out, self._packed_ptr, **self.geometry(x, out))


class Conv3x3Op(Window3x3):
    """Full 3x3 convolution (N, H, W, Cin) -> (N, OH, OW, Cout), bias and clamp / requantization
    fused; w (3, 3, Cin, Cout) HWIO, b (Cout,)."""

    kind = lib.TM_OP_CONV3X3

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 clamp: Tuple[float, float] = _NO_CLAMP, rq: Optional[Requant] = None,
                 offset: int = 0):
        super().__init__(kern, pool, clamp, rq, offset)
        self.stride, self.padding = stride, padding
        self.cin, self.cout = w.shape[2], w.shape[3]
        self.packed, self._packed_ptr = self._pack_gemm(np.reshape(w, (9 * self.cin, self.cout)),
                                                        b, rq)


class Depthwise3x3Op(Window3x3):
    """Depthwise 3x3 convolution (N, H, W, C) -> (N, OH, OW, C), bias and clamp /
    requantization fused; w (3, 3, C), b (C,)."""

    kind = lib.TM_OP_DWCONV3X3

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray, stride: int, padding: str,
                 clamp: Tuple[float, float] = _NO_CLAMP, rq: Optional[Requant] = None,
                 offset: int = 0):
        super().__init__(kern, pool, clamp, rq, offset)
        self.stride, self.padding = stride, padding
        self.channels = self.cin = self.cout = w.shape[2]
        self.packed, self._packed_ptr = self._pack_depthwise(w, b, rq)


class PointwiseOp(Op):
    """1x1 convolution or fully connected layer (..., Cin) -> (..., Cout) on packed weights;
    w (Cin, Cout), b (Cout,)."""

    kind = lib.TM_OP_POINTWISE

    def __init__(self, kern, pool, w: np.ndarray, b: np.ndarray,
                 clamp: Tuple[float, float] = _NO_CLAMP, rq: Optional[Requant] = None,
                 offset: int = 0):
        super().__init__(kern, pool, clamp, rq, offset)
        self.cin, self.cout = w.shape
        self.packed, self._packed_ptr = self._pack_gemm(w, b, rq)

    def output_shape(self, shape):
        if len(shape) < 1 or shape[-1] != self.cin:
            raise InputError(f"a pointwise layer of {self.cin} input channels takes (..., "
                             f"{self.cin}), got {tuple(shape)}")
        return tuple(shape[:-1]) + (self.cout,)

    def bind(self, x, out):
        self.check_buffers(x, out)
        return self._step(x, out, self._packed_ptr, batch=x.size // self.cin, cin=self.cin,
                          cout=self.cout)


class AveragePoolOp(Op):
    """Global average pool (N, H, W, C) -> (N, C). The integer flavour rounds as TFLite's
    ``mode`` "average_pool_2d" or int8 "mean" (multiplier / shift: input_scale / output_scale,
    divided by the pixel count at bind), then clamps to ``clamp``, all shifted by ``offset``;
    the float flavour takes none of those."""

    kind = lib.TM_OP_AVGPOOL

    def __init__(self, kern, mode: str = "average_pool_2d", clamp: Tuple[int, int] = (0, 255),
                 offset: int = 0, input_zero_point: int = 0, output_zero_point: int = 0,
                 multiplier: int = 0, shift: int = 0):
        super().__init__(kern, ffi.NULL, requantized=False)
        if not self.integer:
            return
        if mode not in POOL_MODES:
            raise TinyMobileError(f"unknown pool mode {mode!r}; expected one of {list(POOL_MODES)}")
        self.mode, self.offset = POOL_MODES[mode], offset
        self.in_zp, self.out_zp = int(input_zero_point) + offset, int(output_zero_point) + offset
        self.multiplier, self.shift = int(multiplier), int(shift)
        self.lo, self.hi = int(clamp[0]) + offset, int(clamp[1]) + offset

    def output_shape(self, shape):
        if len(shape) != 4 or min(shape) < 1:
            raise InputError(f"a global pool takes (N, H, W, C) with every size >= 1, got "
                             f"{tuple(shape)}")
        return (shape[0], shape[-1])

    def bind(self, x, out):
        self.check_buffers(x, out)
        n, h, w, c = x.shape
        step = self._step(x, out, None, batch=n, h=h, w=w, cin=c)
        if self.integer:
            mult, shift = self.multiplier, self.shift
            if self.mode == POOL_MODES["mean"]:
                mult, shift = mean_multiplier(mult, shift, h * w)
            q = step.c.quant
            q.pool_mode, q.value_offset, q.multiplier, q.shift = self.mode, self.offset, mult, shift
        return step


class MaxPoolOp(AveragePoolOp):
    """Global max pool (N, H, W, C) -> (N, C), float32 only (a quantized max pool is refused by
    the converters and by validate.RUNNABLE_POOLS)."""

    kind = lib.TM_OP_MAXPOOL

    def __init__(self, kern):
        Op.__init__(self, kern, ffi.NULL, requantized=False)
        if self.integer:
            raise ModelFormatError("global max pooling has no integer operator")

    def bind(self, x, out):
        self.check_buffers(x, out)
        n, h, w, c = x.shape
        return self._step(x, out, None, batch=n, h=h, w=w, cin=c)


# ---- the layer-kind registry ----------------------------------------------------------------
class BuildContext:
    """What every operator factory needs besides its layer: the table, the pool, the network's
    padding and clamp (float) or its requantization per layer and the uint8-domain offset
    (integer)."""

    def __init__(self, network: Network, kern, pool):
        self.network, self.kern, self.pool = network, kern, pool
        self.padding = network.padding
        self.integer = network.is_quantized
        if self.integer:
            self.offset = domain_offset(network.dtype)
            self.requants = network.requants()
            self.input_zero_points = [zp for _, zp in network.activation_quantization()]

    def output(self, index: int, layer, clamp: Tuple[float, float]) -> dict:
        """Output keyword arguments of layer ``index``: clamp (float), rq + offset (integer)."""
        if self.integer:
            return dict(rq=self.requants[layer.name], offset=self.offset)
        return dict(clamp=clamp)


def _conv3x3(layer, ctx: BuildContext, index: int) -> Op:
    return Conv3x3Op(ctx.kern, ctx.pool, layer.w, layer.b, layer.stride, ctx.padding,
                     **ctx.output(index, layer, ctx.network.clamp))


def _depthwise3x3(layer, ctx: BuildContext, index: int) -> Op:
    return Depthwise3x3Op(ctx.kern, ctx.pool, layer.w, layer.b, layer.stride, ctx.padding,
                          **ctx.output(index, layer, ctx.network.clamp))


def _pointwise(layer, ctx: BuildContext, index: int) -> Op:
    return PointwiseOp(ctx.kern, ctx.pool, layer.w, layer.b,
                       **ctx.output(index, layer, ctx.network.clamp))


def _fully_connected(layer, ctx: BuildContext, index: int) -> Op:  # logits: no activation
    return PointwiseOp(ctx.kern, ctx.pool, layer.w, layer.b, **ctx.output(index, layer, _NO_CLAMP))


def _global_pool(layer, ctx: BuildContext, index: int) -> Op:
    if layer.mode == "max" and not ctx.integer:
        return MaxPoolOp(ctx.kern)
    if layer.mode != "average":  # validate.RUNNABLE_POOLS refuses these first
        raise ModelFormatError(f"layer {layer.name!r}: no operator for global {layer.mode} pooling")
    if not ctx.integer:
        return AveragePoolOp(ctx.kern)
    q = layer.quant
    return AveragePoolOp(ctx.kern, q.pool_mode, q.clamp, ctx.offset,
                         ctx.input_zero_points[index], q.output_zero_point,
                         int(q.multiplier[0]) if len(q.multiplier) else 0,
                         int(q.shift[0]) if len(q.shift) else 0)


#: Layer kind (``layer.kind``) -> factory(layer, context, layer index) of its operator.
OPERATORS: Dict[str, Callable[..., Op]] = {
    "conv3x3": _conv3x3,
    "depthwise3x3": _depthwise3x3,
    "pointwise": _pointwise,
    "fully_connected": _fully_connected,
    "global_pool": _global_pool,
}


def build_ops(network: Network, kern, pool) -> List[Op]:
    """One operator per layer of ``network``, weights packed for ``kern`` (the table of the
    network's dtype: float32, or integer for a quantized network)."""
    ctx = BuildContext(network, kern, pool)
    ops: List[Op] = []
    for index, layer in enumerate(network.layers):
        factory = OPERATORS.get(getattr(layer, "kind", None))
        if factory is None:
            raise ModelFormatError(f"layer {getattr(layer, 'name', layer)!r}: no operator for "
                                   f"layer kind {getattr(layer, 'kind', type(layer).__name__)!r}")
        ops.append(factory(layer, ctx, index))
    return ops
