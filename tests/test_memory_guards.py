"""The guards the kernel tests rely on can fail: a write past an operator's output is caught by
the canary after it (and, under make test-sanitize, by ASan)."""
import ctypes

import numpy as np
import pytest

from helpers.oracle import CANARY_FLOATS, run_nan_filled


class OverrunOp:
    """A fake operator that writes ``extra`` floats past its output, as a buggy kernel tail would."""

    def __init__(self, extra):
        self.extra = extra

    def output_shape(self, shape):
        return shape

    def run(self, x, out):
        n = out.size + self.extra
        raw = np.ctypeslib.as_array((ctypes.c_float * n).from_address(out.ctypes.data))
        raw[:] = 1.0
        return out


def test_canary_catches_write_past_output():
    x = np.zeros((1, 3, 5, 7), np.float32)
    assert run_nan_filled(OverrunOp(0), x).shape == x.shape
    for extra in (1, 7, CANARY_FLOATS):
        with pytest.raises(AssertionError, match="past its output"):
            run_nan_filled(OverrunOp(extra), x)
