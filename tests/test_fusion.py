"""The fused step (csrc/fused_op.c, tinymobile/fusion.py): a chain of float layers run row by row
gives the bits of the same layers run one by one, on every float ISA, for hypothesis-drawn
chains (odd sizes, channel counts off the vector widths, both strides and paddings, clamps,
batches, threads), writes every output and nothing past it; the runner fuses the first layers of
a large model and its passes, whole or stopped inside the chain, equal the unfused ones."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinymobile
from conftest import F32_ISAS, MODELS, fixture_network, require_shared
from helpers.oracle import CANARY, CANARY_FLOATS
from tinymobile import kernels
from tinymobile._native import lib
from tinymobile.errors import TinyMobileError
from tinymobile.fusion import fused_prefix, fused_step
from tinymobile.operators import Conv3x3Op, Depthwise3x3Op, PointwiseOp
from tinymobile.runner import Runner

CLAMPS = st.sampled_from([(-np.inf, np.inf), (0.0, 6.0), (-0.5, 0.25)])
LAYER = st.one_of(st.tuples(st.just("dw"), st.sampled_from([1, 2])),
                  st.tuples(st.just("pw"), st.integers(1, 40)))


def build_chain(isa, threads, first, cin, c0, layers, padding, clamp, rng):
    kern, pool = kernels.kernel_table(isa), kernels.create_pool(threads)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    kind, stride = first
    if kind == "conv":
        ops, c = [Conv3x3Op(kern, pool, f32(3, 3, cin, c0), f32(c0), stride, padding, clamp)], c0
    else:
        ops, c = [Depthwise3x3Op(kern, pool, f32(3, 3, cin), f32(cin), stride, padding, clamp)], cin
    for kind, arg in layers:
        if kind == "dw":
            ops.append(Depthwise3x3Op(kern, pool, f32(3, 3, c), f32(c), arg, padding, clamp))
        else:
            ops.append(PointwiseOp(kern, pool, f32(c, arg), f32(arg), clamp))
            c = arg
    return ops


def bind_chain(ops, x):
    """Each op bound on its own buffers and set up; the last output has canary floats after it."""
    steps, outs = [], []
    for i, op in enumerate(ops):
        shape = op.output_shape(x.shape)
        size = int(np.prod(shape))
        buf = np.full(size + (CANARY_FLOATS if i == len(ops) - 1 else 0), np.nan, np.float32)
        buf[size:] = CANARY
        out = buf[:size].reshape(shape)
        steps.append(op.bind(x, out).setup())
        outs.append((buf, out))
        x = out
    return steps, outs


@pytest.mark.parametrize("isa", F32_ISAS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 23), w=st.integers(1, 23), cin=st.integers(1, 19),
       c0=st.integers(1, 40), first=st.tuples(st.sampled_from(["conv", "dw"]), st.sampled_from([1, 2])),
       layers=st.lists(LAYER, min_size=1, max_size=7),
       padding=st.sampled_from(["tf_same", "symmetric"]), clamp=CLAMPS,
       threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 2**31))
def test_fused_chain_gives_the_layers_bits(isa, n, h, w, cin, c0, first, layers, padding, clamp,
                                           threads, seed):
    rng = np.random.default_rng(seed)
    ops = build_chain(isa, threads, first, cin, c0, layers, padding, clamp, rng)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    steps, outs = bind_chain(ops, x)
    for step in steps:
        step()
    want = outs[-1][1].copy()
    buf, out = outs[-1]
    buf[:out.size] = np.nan
    for b, o in outs[:-1]:
        b[...] = np.nan  # the fused pass must not read the layers' own outputs
    fused = fused_step(ops, steps, x, out).setup()
    fused()
    assert not np.isnan(out).any() or np.isnan(want).any(), "an output was not written"
    np.testing.assert_array_equal(out, want)
    assert (buf[out.size:] == CANARY).all(), "the fused step wrote past its output"
    for b, _ in outs[:-1]:
        assert np.isnan(b).all(), "the fused step wrote a layer's own output"


def test_bad_chains_are_refused():
    kern, pool = kernels.kernel_table("scalar"), kernels.create_pool(1)
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    dw = Depthwise3x3Op(kern, pool, f32(3, 3, 4), f32(4), 1, "tf_same")
    pw = PointwiseOp(kern, pool, f32(4, 5), f32(5))
    x = f32(1, 6, 6, 4)
    y, z = np.empty((1, 6, 6, 4), np.float32), np.empty((1, 6, 6, 5), np.float32)
    a, b = dw.bind(x, y).setup(), pw.bind(y, z).setup()
    with pytest.raises(TinyMobileError, match="fused step's members"):
        fused_step([pw, dw], [b, a], y, y).setup()  # a pointwise layer first, out of order
    other = np.empty_like(y)
    c = pw.bind(other, z).setup()  # reads another buffer than dw writes
    with pytest.raises(TinyMobileError, match="fused step's members"):
        fused_step([dw, pw], [a, c], x, z).setup()
    with pytest.raises(TinyMobileError, match="fused step's members"):
        fused_step([dw], [a], x, y).setup()  # one member is no chain


def test_runner_fuses_the_first_layers_of_1_0_224():
    net, x, _ = fixture_network("1.0", 224)
    for threads in (1, 2):
        fused, plain = Runner(net, threads=threads, fuse=True), Runner(net, threads=threads, fuse=False)
        plan = fused.acquire(len(x))
        assert plan.fused >= 4 and plan.unit_layers[0] == (0, plan.fused)
        assert plain.acquire(len(x)).fused == 0
        np.testing.assert_array_equal(fused.run(x), plain.run(x))
        for layers in (1, plan.fused - 1, plan.fused, plan.fused + 1):
            np.testing.assert_array_equal(fused.run(x, layers), plain.run(x, layers))
        for a, b in zip(fused.run_all(x[:1]), plain.run_all(x[:1])):
            np.testing.assert_array_equal(a, b)


def test_fusion_rule():
    """A large first map fuses up to TM_FUSED_MAX layers, stopping before a pointwise layer with
    large weights or a layer of another kind; small first maps, integer models and networks not
    starting with a 3x3 layer do not fuse."""
    kern, pool = kernels.kernel_table("scalar"), kernels.create_pool(1)
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    conv = Conv3x3Op(kern, pool, f32(3, 3, 3, 32), f32(32), 2, "tf_same")
    dw = Depthwise3x3Op(kern, pool, f32(3, 3, 32), f32(32), 1, "tf_same")
    big = PointwiseOp(kern, pool, f32(32, 1024), f32(1024))
    pw = PointwiseOp(kern, pool, f32(32, 32), f32(32))
    shapes = [(1, 112, 112, 32)] * 3
    assert fused_prefix([conv, dw, pw], shapes) == 3
    assert fused_prefix([conv, dw, big], shapes[:2] + [(1, 112, 112, 1024)]) == 2
    assert fused_prefix([conv] + [dw, pw] * 6, shapes[:1] * 13) == lib.TM_FUSED_MAX
    assert fused_prefix([conv, dw, pw, conv], shapes + shapes[:1]) == 3
    assert fused_prefix([conv, dw, pw], [(1, 32, 32, 32)] * 3) == 0
    assert fused_prefix([pw, dw], shapes[:2]) == 0


def test_integer_models_are_not_fused(tmp_path):
    """The integer engine keeps its layers apart (its maps are a quarter of the float ones)."""
    require_shared()
    from tinymobile.convert import convert
    dst = str(tmp_path / "q.npz")
    convert(str(MODELS / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"), dst)
    runner = tinymobile.load(dst)._runner
    assert Runner(runner.network, fuse=True).acquire(1).fused == 0


def test_fusion_ab_benchmark_runs(capsys, monkeypatch):
    """benchmarks/fusion_ab.py (the A/B behind the fusion rule) runs and fuses when told to."""
    import tinymobile.fusion
    from benchmarks import fusion_ab
    # --any-size lowers the rule's limit: restored after the test
    monkeypatch.setattr(tinymobile.fusion, "FUSE_MAP_BYTES", tinymobile.fusion.FUSE_MAP_BYTES)
    assert fusion_ab.main(["--models", "0.25:128", "--runs", "2", "--chains", "0", "8",
                           "--any-size"]) == 0
    out = capsys.readouterr().out
    assert "K=0" in out and "layer by layer" in out and "first 8 layers fused" in out
