"""Which leading layers of a float network run fused, row by row, as one C step (csrc/fused_op.c).

A MobileNet's first layers write maps of 1.6-3.2 MB per image (1.0_224: conv0, dw1 112 x 112 x 32,
pw1 112 x 112 x 64). In a forward pass each is read back after it has left the core's caches:
on a Zen 5 EPYC conv0, dw1, pw1 and dw2 took 0.67 ms in a pass against 0.40 ms repeated on hot
caches. The fused step makes each row of the chain's last layer as soon as the rows it reads
exist, keeping a few rows of each intermediate map per thread (a ring in its workspace), so those
maps never leave L2. It gives the same bits as the layers run one by one (each row is made by
the layer's own kernels from the same inputs).

The chain: from the first layer (a 3x3 convolution or a depthwise layer), depthwise 3x3 and
pointwise layers over maps, extended while the map it would hand on is larger than
:data:`FUSE_MAP_BYTES` per image and each pointwise layer's weights are at most
:data:`FUSE_WEIGHT_BYTES` (they are read again for every row). Integer networks are not fused
(their maps are a quarter of the size).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ._native import ffi, lib
from .operators import Conv3x3Op, Depthwise3x3Op, Op, PointwiseOp, Step

#: A map handed from one layer to the next is kept in rings while it is larger than this (bytes
#: per image): about what the first layers' maps leave of a 1 MB L2 beside the weights.
FUSE_MAP_BYTES = 512 * 1024
#: Pointwise layers with more weight bytes than this end a chain (re-read for every row).
FUSE_WEIGHT_BYTES = 64 * 1024


def fused_prefix(ops: Sequence[Op], shapes: Sequence[Tuple[int, ...]]) -> int:
    """How many leading layers run as one fused step: 0 (none), or 2..TM_FUSED_MAX.
    ``shapes[i]``: layer i's output shape (N, H, W, C)."""
    if not ops or ops[0].integer or not isinstance(ops[0], (Conv3x3Op, Depthwise3x3Op)):
        return 0
    count = 1
    while count < min(len(ops), lib.TM_FUSED_MAX):
        shape = shapes[count - 1]
        if len(shape) != 4 or int(np.prod(shape[1:])) * 4 <= FUSE_MAP_BYTES:
            break
        op = ops[count]
        if isinstance(op, PointwiseOp):
            if op.cin * op.cout * 4 > FUSE_WEIGHT_BYTES or len(shapes[count]) != 4:
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
