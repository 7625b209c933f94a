"""The graph runner, one for every dtype: operators built once per model (from the layer-kind
registry, :data:`tinymobile.operators.OPERATORS`, on the kernel table of the network's dtype),
buffers planned once per batch size, then a forward pass is one C call over the plan's steps.

Plans are kept in a free list per batch size; a thread takes one for the duration of a forward
pass, so concurrent callers never share a buffer they write (each concurrent caller gets its own
plan, created once and reused). Integer networks run in the uint8 domain
(:func:`tinymobile.operators.domain_offset`): int8 input is converted while it is copied in,
outputs are converted back by :meth:`Runner.run_raw` / :meth:`Runner.run_all`.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from . import kernels
from ._native import ffi, lib
from .errors import InputError
from .fusion import FUSE_BY_DEFAULT, fused_prefix, fused_step
from .kernels import fptr
from .network import Network
from .operators import Op, Step, build_ops, check_status, from_domain, kernel_table
from .validate import check_network


#: Distinct input shapes (batch, height, width) whose plans a runner keeps.
MAX_PLAN_SHAPES = 8
#: Bytes of free plans a runner keeps for the next call of the same shape. Beyond it the least
#: recently used are dropped, and a plan larger than this is not kept at all: one large batch is
#: not held after it returns (1.0_224 plans 7.3 MiB an image: a forward of 1000 images holds
#: 7.1 GiB; a Raspberry Pi has 0.5-8 GB). Batches of 16 (the pipeline's default: 117 MiB at
#: 1.0_224) and 32 stay planned.
MAX_KEPT_PLAN_BYTES = 256 << 20
#: Pools inherited through fork(): kept alive in the child so their destructor never runs there.
_POOLS_FROM_PARENT: list = []


class Plan:
    """Everything mutable one forward pass at one batch size touches, owned here: ``input``
    (where callers put the network input), two ping-pong activation buffers (``outputs[i]`` is
    layer i's output view), and each step's workspace (indirection tables, zero rows, scratch).
    The operators stay immutable, so plans of one runner run concurrently without sharing a
    byte they write. ``steps[i]`` is layer i's bound step.

    A whole pass runs in one C call over ``units``: the first ``fused`` layers as one fused step
    (:mod:`tinymobile.fusion`; 0 when none: ``fuse=False`` or no chain qualifies), then a step
    per layer. A fused pass does not write the fused layers' own outputs but the last one's;
    passes that stop inside the chain, and :meth:`Runner.run_all`, run the layers one by one."""

    def __init__(self, ops: List[Op], input_shape: Tuple[int, ...], fuse: bool = True):
        dtype = ops[0].dtype  # float32, or uint8 for the integer operators
        shapes = []
        shape = input_shape
        for op in ops:
            shape = op.output_shape(shape)
            shapes.append(shape)
        biggest = max(int(np.prod(s)) for s in shapes)
        # 64-byte aligned: the kernels' vector loads and stores then never straddle cache lines
        # (NumPy's large arrays start 16 bytes into a page; depthwise ran ~25 % slower so).
        self.input = kernels.aligned_empty(int(np.prod(input_shape)), dtype).reshape(input_shape)
        self.input_ptr = fptr(self.input) if self.input.dtype == np.float32 else None
        self._buffers = (kernels.aligned_empty(biggest, dtype), kernels.aligned_empty(biggest, dtype))
        self.outputs = [self._buffers[i % 2][:int(np.prod(s))].reshape(s) for i, s in enumerate(shapes)]
        self.steps: List[Step] = []
        x = self.input
        for op, out in zip(ops, self.outputs):
            step = op.bind(x, out)  # reshape: the step knows the workspace it needs
            step.setup(self._workspace(step))
            self.steps.append(step)
            x = out
        self.fused = fused_prefix(ops, shapes) if fuse else 0
        self.units: List[Step] = list(self.steps)
        if self.fused:
            chain = fused_step(ops[:self.fused], self.steps[:self.fused], self.input,
                               self.outputs[self.fused - 1])
            chain.setup(self._workspace(chain))
            self.units = [chain] + self.steps[self.fused:]
        chain = self.units[:1] if self.fused else []
        self.nbytes = (self.input.nbytes + sum(b.nbytes for b in self._buffers)
                       + sum(s.workspace.nbytes for s in self.steps + chain
                             if s.workspace is not None))
        self._layer_list = ffi.new("tm_step *[]", [s.c for s in self.steps])
        self._unit_list = (ffi.new("tm_step *[]", [s.c for s in self.units]) if self.fused
                           else self._layer_list)

    @staticmethod
    def _workspace(step: Step) -> Optional[np.ndarray]:
        size = step.workspace_size
        return kernels.aligned_empty(size, np.uint8) if size else None

    @property
    def calls(self) -> List[Callable[[], None]]:
        """Layer i's step as a callable running it alone."""
        return list(self.steps)

    @property
    def unit_layers(self) -> List[Tuple[int, int]]:
        """The layers [first, end) each of ``units`` runs."""
        starts = [0] + list(range(max(self.fused, 1), len(self.steps)))
        return [(a, b) for a, b in zip(starts, starts[1:] + [len(self.steps)])]

    def run(self, layers: Optional[int] = None) -> np.ndarray:
        """Run the first ``layers`` layers (all by default) on ``self.input`` in one C call; the
        last one's output."""
        count = len(self.steps) if layers is None else min(layers, len(self.steps))
        if self.fused and count >= self.fused:
            check_status(lib.tm_run_steps(self._unit_list, 1 + count - self.fused))
        else:
            check_status(lib.tm_run_steps(self._layer_list, count))
        return self.outputs[count - 1]

    def run_timed(self) -> List[float]:
        """Run every unit (the fused layers as one, see ``unit_layers``), returning each one's
        wall time in seconds."""
        times = []
        for step in self.units:
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return times


class Runner:
    """Executes a :class:`Network` (float32, or quantized uint8 / int8) on one ISA's kernels with
    a given thread count."""

    def __init__(self, network: Network, isa: Optional[str] = None, threads: Optional[int] = None,
                 fuse: Optional[bool] = None):
        check_network(network)  # the C operators trust these shapes
        # Run the first layers fused where they qualify (tinymobile.fusion; None: its default).
        self.fuse = FUSE_BY_DEFAULT if fuse is None else bool(fuse)
        self.network = network
        self.dtype: str = network.dtype
        self.integer = network.is_quantized
        self.isa = isa or kernels.default_isa()
        self.threads = kernels.default_threads() if threads is None else threads
        self.kern = kernel_table(self.isa, self.dtype)
        self.pool = kernels.create_pool(self.threads)
        self.ops = build_ops(self.network, self.kern, self.pool)
        self._plans: Dict[Tuple[int, int, int], List[Plan]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _restart_after_fork(self) -> None:
        """In a child made by fork(), the pool's worker threads do not exist (a job would wait for
        them forever) and the lock may have been copied while held: start a new pool, operators
        and plans. The parent's pool is kept referenced, never destroyed here (joining threads
        that do not exist is undefined)."""
        _POOLS_FROM_PARENT.append(self.pool)
        self._lock = threading.Lock()
        self.pool = kernels.create_pool(self.threads)
        self.ops = build_ops(self.network, self.kern, self.pool)
        self._plans = {}
        self._pid = os.getpid()

    def acquire(self, shape: "int | Tuple[int, int, int]") -> Plan:
        """A plan for ``shape`` = (batch, height, width) -- or a batch at the network's own input
        size -- that no other thread is using; give it back with release. Plans are kept per
        shape; the free plans of the least recently used shapes are dropped beyond
        MAX_PLAN_SHAPES shapes or MAX_KEPT_PLAN_BYTES bytes."""
        if getattr(self, "_pid", None) not in (None, os.getpid()):
            self._restart_after_fork()
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),) + tuple(self.network.input_size)
        key = tuple(int(s) for s in shape)
        with self._lock:
            free = self._plans.pop(key, [])
            self._plans[key] = free  # most recently used last
            while len(self._plans) > MAX_PLAN_SHAPES:
                del self._plans[next(iter(self._plans))]
            if free:
                return free.pop()
        return Plan(self.ops, key + (3,), self.fuse)

    def release(self, plan: Plan) -> None:
        if plan.nbytes > MAX_KEPT_PLAN_BYTES:
            return  # alone over the budget: not kept (and nothing else dropped for it)
        with self._lock:
            self._plans.setdefault(tuple(plan.input.shape[:3]), []).append(plan)
            kept = sum(p.nbytes for free in self._plans.values() for p in free)
            for free in list(self._plans.values()):  # least recently used shape first
                while free and kept > MAX_KEPT_PLAN_BYTES:
                    kept -= free.pop().nbytes

    def run(self, x: np.ndarray, layers: Optional[int] = None,
            check_finite: bool = False) -> np.ndarray:
        """Forward pass of x (N, H, W, 3) of the network's dtype; a copy of the output of the
        first ``layers`` layers (default all), in the kernels' domain (uint8 for an int8
        network: see run_raw). check_finite (float): raise InputError if x holds NaN or
        infinity (checked while copying x in; x must then be C-contiguous float32)."""
        plan = self.acquire(x.shape[:3])
        try:
            self.load_input(plan, x, check_finite)
            return plan.run(layers).copy()
        finally:
            self.release(plan)

    def run_raw(self, x: np.ndarray, layers: Optional[int] = None,
                check_finite: bool = False) -> np.ndarray:
        """x of the network's dtype -> a copy of the output of the first ``layers`` layers (default
        all), same dtype."""
        return self.from_domain(self.run(x, layers, check_finite))

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        """x of the network's dtype -> a copy of every layer's output, in layer order."""
        plan = self.acquire(x.shape[:3])
        try:
            self.load_input(plan, x)
            outs = []
            for step, out in zip(plan.steps, plan.outputs):
                step()
                outs.append(self.from_domain(out.copy()))
            return outs
        finally:
            self.release(plan)

    def from_domain(self, out: np.ndarray) -> np.ndarray:
        """A plan buffer's values as the network's dtype (int8 networks run in uint8)."""
        return from_domain(out, self.dtype) if self.integer else out

    def load_input(self, plan: Plan, x: np.ndarray, check_finite: bool = False) -> None:
        """Copy x into the plan's input buffer: float32 checked on the way when asked; int8
        converted into the uint8 domain in the copy."""
        if x.shape != plan.input.shape:
            raise InputError(f"input has shape {x.shape}, the plan takes {plan.input.shape}")
        if self.integer:
            if x.dtype == np.int8:
                np.bitwise_xor(x.view(np.uint8), np.uint8(0x80), out=plan.input)
            else:
                np.copyto(plan.input, x)
        elif check_finite:
            if lib.tm_f32_copy_count_nonfinite(x.size, fptr(x), plan.input_ptr):
                raise InputError("input contains NaN or infinity")
        else:
            np.copyto(plan.input, x, casting="same_kind")
