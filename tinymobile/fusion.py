"""Which leading layers of a float network run fused, row by row, as one C step (csrc/fused_op.c).

A MobileNet's first layers write maps of 1.6-3.2 MB per image (1.0_224: conv0, dw1 112 x 112 x 32,
pw1 112 x 112 x 64). In a forward pass each is read back after it has left the core's caches:
on a Zen 5 EPYC conv0, dw1, pw1 and dw2 took 0.67 ms in a pass against 0.40 ms repeated on hot
caches. The fused step makes each row of the chain's last layer as soon as the rows it reads
exist, keeping a few rows of each intermediate map per thread (a ring in its workspace), so those
maps never leave L2. It gives the same bits as the layers run one by one (each row is made by
the layer's own kernels from the same inputs).

The chain: where the first layer (a 3x3 convolution or a depthwise layer) writes a map of more
than :data:`FUSE_MAP_BYTES` per image, it and the depthwise 3x3 and pointwise layers after it,
up to TM_FUSED_MAX layers (the first layer and three blocks of a MobileNet), ending before any
other layer or a pointwise layer of more than :data:`FUSE_WEIGHT_BYTES` of weights (they are
read again for every row). Measured on a Zen 5 EPYC, whole passes, one thread (`python -m
benchmarks.fusion_ab --models 1.0:224 0.25:128 --chains 0 8 [--any-size]`): 1.0_224 -3 to
-5 %, 0.75_224 -8 %, 1.0_192 -5 %, 0.5_224 -5 %, 0.75_192 -4 %, 1.0_160 -3 %; first maps of
0.5 MB or less (alpha 0.25, 0.5_128-160, 0.75_128) gained nothing or lost up to 5 %, the rows'
overhead outweighing maps that stay in L2 anyway. Integer networks are not fused (their maps
are a quarter of the size).

Plans fuse by default on x86 only (:data:`FUSE_BY_DEFAULT`), where it was measured; the Pi's
cores have smaller caches shared by more threads (a Pi 3: 512 KB of L2 for four cores) and no
Pi has timed it yet, so there ``Runner(network, fuse=True)`` asks for it. Either way the bits are
the same.
"""
from __future__ import annotations

import platform
from typing import List, Sequence, Tuple

import numpy as np

from ._native import ffi, lib
from .operators import Conv3x3Op, Depthwise3x3Op, Op, PointwiseOp, Step

#: Whether plans fuse when the runner is not told (measured faster on x86; see above).
FUSE_BY_DEFAULT = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
#: A chain starts where the first layer's output map is larger than this (bytes per image).
FUSE_MAP_BYTES = 512 * 1024
#: Pointwise layers with more weight bytes than this end a chain (re-read for every row).
FUSE_WEIGHT_BYTES = 64 * 1024


def fused_prefix(ops: Sequence[Op], shapes: Sequence[Tuple[int, ...]]) -> int:
    """How many leading layers run as one fused step: 0 (none), or 2..TM_FUSED_MAX.
    ``shapes[i]``: layer i's output shape (N, H, W, C)."""
    if not ops or ops[0].integer or not isinstance(ops[0], (Conv3x3Op, Depthwise3x3Op)):
        return 0
    if len(shapes[0]) != 4 or int(np.prod(shapes[0][1:])) * 4 <= FUSE_MAP_BYTES:
        return 0
    count = 1
    while count < min(len(ops), lib.TM_FUSED_MAX) and len(shapes[count]) == 4:
        op = ops[count]
        if isinstance(op, PointwiseOp):
            if op.cin * op.cout * 4 > FUSE_WEIGHT_BYTES:
                break
        elif not isinstance(op, Depthwise3x3Op):
            break
        count += 1
    return count if count >= 2 else 0


def fused_step(ops: Sequence[Op], steps: List[Step], x: np.ndarray, out: np.ndarray) -> Step:
    """One step running ``steps`` (the bound and set-up steps of ``ops``, a chain from x to out)
    row by row; not yet set up."""
    members = ffi.new("tm_step *[]", [s.c for s in steps])
    return Step((tuple(steps), members, x, out, ops[0].pool), kind=lib.TM_OP_FUSED,
                dtype=lib.TM_F32, f32=ops[0].kern, pool=ops[0].pool, batch=x.shape[0],
                **{"in": getattr(steps[0].c, "in")}, out=steps[-1].c.out,
                members=members, member_count=len(steps))
