"""The whole network on our kernels reproduces TensorFlow's logits (../shared/fixtures) on every
ISA path, and matches the NumPy reference for batches and thread counts."""
import numpy as np
import pytest

import tinymobile
from conftest import FIXTURE_SETS, fixture_network
from conftest import F32_ISAS as ISAS
from tinymobile import reference
from tinymobile.model import Model


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("alpha,resolution", [(a, r) for a, r, _ in FIXTURE_SETS])
def test_forward_matches_tensorflow(isa, alpha, resolution):
    net, x, y = fixture_network(alpha, resolution)
    logits = Model(net, threads=2, isa=isa).forward(x)
    assert logits.shape == y.shape and logits.dtype == np.float32
    assert np.abs(logits - y).max() <= 1e-4 * y.std()
    assert (logits.argmax(1) == y.argmax(1)).all()


def test_thread_counts_give_identical_results():
    net, x, _ = fixture_network("0.25", 128)
    outs = [Model(net, threads=t).forward(x) for t in (1, 2, 3, 4)]
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(ISAS), reason="this CPU has no AVX-512")
@pytest.mark.parametrize("alpha,size", [("1.0", (224, 224)), ("0.25", (128, 128)),
                                        ("0.25", (97, 161)), ("1.0", (224, 160))])
def test_avx512_network_gives_the_avx2_bits(alpha, size):
    """Every AVX-512 tile (7x32 / 8x32 pointwise, 16x16 first layer, 4x32 GEMV, depthwise) sums
    in the AVX2 kernels' order, so whole networks agree bit for bit — at the fixtures' sizes, at
    other sizes, batched, on one and two threads."""
    a, r, _ = next(f for f in FIXTURE_SETS if f[0] == alpha)
    net, _, _ = fixture_network(a, r)
    x = np.random.default_rng(1).standard_normal((2,) + size + (3,)).astype(np.float32)
    want = Model(net, isa="avx2", threads=1).forward(x)
    for threads in (1, 2):
        assert np.array_equal(Model(net, isa="avx512", threads=threads).forward(x), want)


def test_batch_equals_single_images():
    net, x, _ = fixture_network("0.25", 128)
    m = Model(net, threads=2)
    batch = m.forward(x)
    for i in range(len(x)):
        assert np.array_equal(m.forward(x[i:i + 1])[0], batch[i])


@pytest.mark.parametrize("padding", ["tf_same", "symmetric"])
@pytest.mark.parametrize("resolution", [33, 96])
def test_build_matches_reference(padding, resolution):
    """Odd and even sizes, both paddings, relu, a width that is no multiple of the vector width."""
    from tinymobile.network import mobilenet_v1
    net = mobilenet_v1(alpha=0.3, resolution=resolution, num_classes=17, seed=3, padding=padding,
                       activation="relu")
    x = np.random.default_rng(0).uniform(-1, 1, (2, resolution, resolution, 3)).astype(np.float32)
    y = reference.forward(net, x)
    out = Model(net, threads=2).forward(x)
    assert np.abs(out - y).max() <= 1e-4 * y.std()


def test_feature_extractor_returns_pooled_features():
    net, x, _ = fixture_network("0.25", 128)
    full = Model(net, threads=1)
    net.layers = net.layers[:-1]  # drop fc
    feats = Model(net, threads=1).forward(x)
    assert feats.shape == (4, 256)
    assert np.allclose(feats, reference.forward(net, x), atol=1e-5)
    assert np.array_equal(full.features(np.zeros((4, 64, 64, 3), np.uint8)).shape, (4, 256))


def test_separable_false_builds_full_convolution_model():
    m = tinymobile.build(alpha=0.25, resolution=32, num_classes=10, separable=False, threads=1)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    y = reference.forward(m.network, x)
    assert np.abs(m.forward(x) - y).max() <= 1e-4 * max(y.std(), 1e-6)
