"""End-to-end checks of the tinymobile package on an ARM Python under qemu (`make test-arm`).

Not collected by the x86 test run (the file name does not start with test_); run as
``pytest tests/arm/arm_e2e.py`` by the emulated Python, with

  TM_E2E_DIR   models and x86 results written by tests/arm/e2e_prepare.py (default build/arm-e2e)
  TM_SHARED    the shared data folder (default ../shared)
  TM_MACHINE   the platform.machine() this run must be on (aarch64, armv7l)
  TM_EXPECT_ISA  the ISA tinymobile must pick on the emulated CPU: neon (default), or scalar on
               a CPU without NEON with FMA; a scalar run checks that NEON is refused and runs
               the same models on the scalar kernels

Models are the Keras 2 fixtures of shared/fixtures, two real pretrained models of
shared/models dequantized to float, and one of them as it is (uint8, integer kernels), all
converted on x86.
"""
import os
import platform
import struct

import numpy as np
import pytest

import tinymobile

E2E = os.environ.get("TM_E2E_DIR", "build/arm-e2e")
SHARED = os.environ.get("TM_SHARED", "../shared")
#: fixture model name -> reference npz of TensorFlow's logits, and how many of its inputs to run
#: (the 1.0 model costs ~8 s per image under qemu).
FIXTURES = {"mobilenet_0.25_128": ("reference_0.25_128.npz", 4),
            "mobilenet_0.5_160": ("reference_0.5_160.npz", 4),
            "mobilenet_1_224": ("reference_1.0_224.npz", 1)}
REAL_MODELS = ("real_0.5_160", "real_0.75_192")
EXPECT_ISA = os.environ.get("TM_EXPECT_ISA") or "neon"
assert EXPECT_ISA in ("neon", "scalar"), f"TM_EXPECT_ISA={EXPECT_ISA!r}"
#: the NEON paths, run only where the CPU has NEON (elsewhere their refusal is checked)
needs_neon = pytest.mark.skipif(EXPECT_ISA != "neon", reason="this CPU has no NEON with FMA")
#: models and images of the top-5 comparison with x86. The fixtures give the same top-5 for
#: every input, so one of them is enough; the real models' answers depend on the image. The
#: 0.75 model (~4 s per image under qemu) runs on the golden image only.
TOP5_RUNS = {"mobilenet_0.25_128": None, "real_0.5_160": None, "real_0.75_192": ("grace_hopper.bmp",)}


@pytest.fixture(scope="module")
def x86():
    with np.load(os.path.join(E2E, "x86_results.npz"), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def model_path(name):
    return os.path.join(E2E, name + ".npz")


def tf_reference(name):
    file, count = FIXTURES[name]
    with np.load(os.path.join(SHARED, "fixtures", file), allow_pickle=False) as f:
        return f["x"][:count], f["y"][:count]


def assert_logits_close(got, want, what):
    tol = 1e-4 * float(np.std(want))
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert err <= tol, f"{what}: max |difference| {err:.3g} > 1e-4 * std = {tol:.3g}"


def test_picks_the_isa_of_the_cpu_it_runs_on():
    expected = os.environ.get("TM_MACHINE")
    if expected:
        assert platform.machine() == expected
    assert tinymobile.isa() == EXPECT_ISA
    assert tinymobile.available_isas() == (["scalar", "neon"] if EXPECT_ISA == "neon" else ["scalar"])


@pytest.mark.skipif(EXPECT_ISA == "neon", reason="this CPU has NEON")
def test_neon_is_refused_on_the_cpu_it_runs_on_without_neon(monkeypatch):
    from tinymobile.errors import TinyMobileError

    with pytest.raises(TinyMobileError, match="not available"):
        tinymobile.load(model_path("mobilenet_0.25_128"), isa="neon")
    with pytest.raises(TinyMobileError, match="not available"):
        tinymobile.load(model_path("quant_0.5_160"), isa="neon")
    monkeypatch.setenv("TINYMOBILE_ISA", "neon")
    with pytest.raises(TinyMobileError, match="TINYMOBILE_ISA"):
        tinymobile.isa()


def test_model_reports_the_path_it_runs():
    model = tinymobile.load(model_path("mobilenet_0.25_128"), threads=1)
    assert model.isa == EXPECT_ISA
    assert f"isa={EXPECT_ISA}" in model.summary().splitlines()[0]
    assert f"isa={EXPECT_ISA}" in repr(model)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_matches_tensorflow_logits(name):
    x, y = tf_reference(name)
    model = tinymobile.load(model_path(name))
    assert_logits_close(model.forward(x), y, f"{name} on {model.isa}")


@pytest.mark.parametrize("isa,threads,core", [("scalar", 1, None), ("scalar", 3, None)] + [
    pytest.param("neon", threads, core, marks=needs_neon) for core in ("a72", "a53") for threads in (1, 3)])
def test_every_path_and_thread_count_matches_tensorflow(isa, threads, core, monkeypatch):
    # TINYMOBILE_CORE: on aarch64 the float GEMM scheduled for out-of-order (a72) or in-order
    # (a53) cores; ARMv7 has one.
    if core:
        monkeypatch.setenv("TINYMOBILE_CORE", core)
        gemm = tinymobile.kernels.gemm_kernel(isa)
        if platform.machine() == "aarch64" and struct.calcsize("P") == 8:
            assert gemm.endswith("_cortex_a53") == (core == "a53"), gemm
    x, y = tf_reference("mobilenet_0.25_128")
    model = tinymobile.load(model_path("mobilenet_0.25_128"), threads=threads, isa=isa)
    assert (model.isa, model.threads) == (isa, threads)
    assert_logits_close(model.forward(x), y, f"0.25_128 on {isa} x {threads} threads")


@pytest.mark.parametrize("threads", [1, 3])
def test_fused_first_layers_give_the_unfused_bits(threads, monkeypatch):
    """Plans fuse only on x86 by default; asked to here (with the size rule off, so the small
    fixture fuses its first 8 layers), the fused step on this CPU's kernels gives the bits of
    the layers run one by one."""
    from tinymobile import fusion
    from tinymobile.runner import Runner
    monkeypatch.setattr(fusion, "FUSE_MAP_BYTES", 0)
    x, _ = tf_reference("mobilenet_0.25_128")
    net = tinymobile.load(model_path("mobilenet_0.25_128")).network
    fused, plain = Runner(net, threads=threads, fuse=True), Runner(net, threads=threads, fuse=False)
    assert fused.acquire(len(x)).fused == 8
    np.testing.assert_array_equal(fused.run(x), plain.run(x))


@pytest.mark.parametrize("name", sorted(TOP5_RUNS))
def test_top5_of_sample_images_is_the_same_as_on_x86(name, x86):
    images = [str(i) for i in x86["images"]]
    use = [i for i, image in enumerate(images) if image in (TOP5_RUNS[name] or images)]
    paths = [os.path.join(SHARED, "images", "samples", images[i]) for i in use]
    model = tinymobile.load(model_path(name))
    logits = model.forward(model.preprocess(paths))
    top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    for row, i in enumerate(use):
        assert top5[row].tolist() == x86[name + "/top5"][i].tolist(), images[i]
    assert_logits_close(logits, x86[name + "/logits"][use], f"{name} vs x86 ({x86['isa']})")


@pytest.mark.parametrize("path", [pytest.param("neon", marks=needs_neon),
                                  pytest.param("neon-widening", marks=needs_neon), "scalar"])
def test_quantized_model_is_bit_exact_with_x86(path, x86, monkeypatch):
    # The uint8 model on the integer kernels: on aarch64 "neon" is the udot GEMM (qemu's CPU has
    # the dot-product extension) and TINYMOBILE_NO_DOTPROD gives the widening one.
    if path == "neon-widening":
        monkeypatch.setenv("TINYMOBILE_NO_DOTPROD", "1")
    model = tinymobile.load(model_path("quant_0.5_160"), isa="scalar" if path == "scalar" else "neon")
    assert model.dtype == "uint8"
    from tinymobile._native import ffi
    udot = model._runner.kern.dot_gemm != ffi.NULL
    # qemu-aarch64's default CPU has udot, so the dot-product GEMM is the one exercised there.
    assert udot == (path == "neon" and platform.machine() == "aarch64")
    out = model.forward(x86["quant_0.5_160/input"])
    want = x86["quant_0.5_160/output"]
    assert out.dtype == want.dtype and np.array_equal(out, want), \
        f"{int(np.sum(out != want))} of {want.size} quantized logits differ from x86 ({x86['isa']})"


def test_quantized_model_top5_from_images_is_the_same_as_on_x86(x86):
    images = [str(i) for i in x86["images"]]
    model = tinymobile.load(model_path("quant_0.5_160"))
    probs = model.predict([os.path.join(SHARED, "images", "samples", i) for i in images])
    top5 = np.argsort(-probs, axis=1, kind="stable")[:, :5]
    assert top5.tolist() == x86["quant_0.5_160/top5"].tolist()


def test_real_model_output_depends_on_the_input(x86):
    # Guards the check above: the real model's top-1 differs between sample images.
    assert len(set(x86["real_0.5_160/top5"][:, 0].tolist())) > 1


def test_command_line_gives_the_golden_label(capsys):
    # shared/README.md: grace_hopper.bmp with the 0.75_192 model is "military uniform" in TFLite.
    from tinymobile import cli

    image = os.path.join(SHARED, "images", "samples", "grace_hopper.bmp")
    assert cli.main(["-q", "predict", image, "--model", model_path("real_0.75_192")]) == 0
    out = capsys.readouterr().out
    assert out.split(": ", 1)[1].split(" | ")[0].endswith("military uniform"), out


def test_classify_and_features_api():
    model = tinymobile.load(model_path("mobilenet_0.25_128"))
    image = os.path.join(SHARED, "images", "samples", "grace_hopper.bmp")
    top = model.classify(image, top=5)
    assert len(top) == 5 and all(isinstance(label, str) for label, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    features = model.features(image)
    assert features.shape == (model.network.feature_size,) and np.isfinite(features).all()


def test_c_preprocessing_and_quantize_are_bit_identical_to_numpy_here():
    """The fused crop + resize + normalise pass and the input quantization (csrc/image/) give
    NumPy's exact numbers on this ISA too (no fused multiply-adds: aarch64 and ARMv7 with VFPv4
    would contract them)."""
    from tinymobile.fixedpoint import quantize
    from tinymobile.pipeline import quantize_image
    from tinymobile.preprocess import _reference_resize_normalize, resize_normalize
    rng = np.random.default_rng(0)
    for h, w, oh, ow, crop in [(97, 61, 64, 48, 0.875), (30, 200, 17, 33, 1.0), (5, 5, 9, 9, 0.5)]:
        rgb = rng.integers(0, 256, (h, w, 3), np.uint8)
        for dtype in (np.float32, np.float64):
            mean = rng.uniform(0, 255, 3).astype(dtype)
            std = rng.uniform(0.5, 100, 3).astype(dtype)
            want = _reference_resize_normalize(rgb, (oh, ow), mean, std, crop)
            got = resize_normalize(rgb, (oh, ow), mean, std, crop)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (h, w, oh, ow, dtype)
    x = (rng.integers(-300, 300, 1000) + rng.choice([0.0, 0.5], 1000)).astype(np.float32) * np.float32(0.02)
    for dtype, zp in (("uint8", 128), ("int8", -3)):
        assert np.array_equal(quantize_image(x, 0.02, zp, dtype), quantize(x, 0.02, zp, dtype))
