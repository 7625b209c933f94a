"""A runner keeps the plans (activation buffers) of recent input shapes for the next call, up to
MAX_KEPT_PLAN_BYTES: a large batch's buffers are not held after its call returns."""
import numpy as np

import tinymobile
from tinymobile import runner as runner_module


def kept(runner):
    return {key: len(free) for key, free in runner._plans.items() if free}


def test_a_batch_over_the_budget_is_not_kept(monkeypatch):
    model = tinymobile.build(0.25, 32, threads=1)
    r = model._runner
    small = np.zeros((1, 32, 32, 3), np.float32)
    large = np.zeros((9, 32, 32, 3), np.float32)
    one = r.acquire(1)
    r.release(one)
    monkeypatch.setattr(runner_module, "MAX_KEPT_PLAN_BYTES", 2 * one.nbytes)
    out_small = model.forward(small)
    assert kept(r) == {(1, 32, 32): 1}
    out_large = model.forward(large)  # 9x the buffers: over the budget alone
    assert kept(r) == {(1, 32, 32): 1}
    np.testing.assert_array_equal(out_large[0], out_small[0])
    np.testing.assert_array_equal(model.forward(small), out_small)  # the kept plan still runs


def test_the_least_recently_used_shape_goes_first(monkeypatch):
    model = tinymobile.build(0.25, 32, threads=1)
    r = model._runner
    plans = {n: r.acquire(n) for n in (1, 2, 3)}
    monkeypatch.setattr(runner_module, "MAX_KEPT_PLAN_BYTES",
                        plans[2].nbytes + plans[3].nbytes)
    for n in (1, 2, 3):  # acquired 1, 2, 3: 1 is the least recently used
        r.release(plans[n])
    assert kept(r) == {(2, 32, 32): 1, (3, 32, 32): 1}


def test_within_the_budget_every_shape_stays():
    model = tinymobile.build(0.25, 32, threads=1)
    for n in (1, 2, 4):
        model.forward(np.zeros((n, 32, 32, 3), np.float32))
    assert kept(model._runner) == {(1, 32, 32): 1, (2, 32, 32): 1, (4, 32, 32): 1}
