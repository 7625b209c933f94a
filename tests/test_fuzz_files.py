"""Bounded-time mutation fuzzing of every model format tinymobile reads, seeded with the real
files in ../shared: bits flipped, bytes overwritten with extreme values, truncation, splices,
insertions and deletions. Loading a mutated file must either succeed (and then the model must run)
or raise a TinyMobileError: never another exception, never a hang (each case has a wall-clock
limit) and never an unbounded allocation (each case runs under an address-space limit).

CI runs a fixed sample (derandomized, ~25 s). For a longer campaign with fresh random cases:
    TINYMOBILE_FUZZ_SCALE=20 TINYMOBILE_FUZZ_RANDOM=1 pytest tests/test_fuzz_files.py
"""
import io
import os
import tarfile
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import tinymobile
from conftest import FIXTURES, MODELS, require_shared
from helpers.fuzzing import memory_limit, mutate, mutations, time_limit
from tinymobile import model_format
from tinymobile.convert import load_source
from tinymobile.model import Model

#: Examples per format are multiplied by this; TINYMOBILE_FUZZ_RANDOM=1 draws fresh cases each run.
SCALE = float(os.environ.get("TINYMOBILE_FUZZ_SCALE", "1"))
RANDOM = bool(os.environ.get("TINYMOBILE_FUZZ_RANDOM"))
#: Wall-clock limit of one case (generous: a loaded 2-core CI machine; cases take ~50 ms).
CASE_SECONDS = 15
#: Address space one case may add (the largest seed model needs ~20 MB).
CASE_BYTES = 2 << 30


def _tgz(tflite: bytes) -> bytes:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        for name, data in [("mobilenet_v1_0.25_128/mobilenet_v1_0.25_128.tflite", tflite),
                           ("mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_info.txt", b"info\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


def _keras_zip() -> bytes:
    """A real Keras 3 .keras file (config.json + weights) of a transfer-learning model."""
    with open(FIXTURES.parent / "user-models" / "a_transfer.keras", "rb") as f:
        return f.read()


def _quantized_network():
    """A small int8 model (format version 2), quantized with a few random calibration images."""
    from tinymobile.quantize import quantize_model
    model = tinymobile.build(alpha=0.25, resolution=32, num_classes=5, threads=1)
    images = [np.random.default_rng(i).integers(0, 256, (40, 40, 3), np.uint8) for i in range(4)]
    return quantize_model(model, images)


def _npz_of(network) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.npz")
        model_format.save(network, p)
        return open(p, "rb").read()


#: kind -> (file suffix, examples)
KINDS = {
    "npz": (".npz", 200),
    "npz_small": (".npz", 120),
    "npz_int8": (".npz", 120),
    "tflite": (".tflite", 160),
    "tflite_quant": (".tflite", 100),
    "tgz": (".tgz", 80),
    "h5": ("mobilenet_2_5_128_tf.h5", 100),  # the keras-applications name gives the size
    "weights_h5": (".weights.h5", 100),
    "keras": (".keras", 50),
}


@pytest.fixture(scope="module")
def seeds():
    require_shared()
    read = lambda p: p.read_bytes()  # noqa: E731
    tflite = read(FIXTURES / "mobilenet_0.25_128_f32.tflite")
    k3 = read(FIXTURES / "keras_mobilenet_0.25_128.weights.h5")
    return {
        "npz": _npz_of(load_source(FIXTURES / "mobilenet_2_5_128_tf.h5")),
        "npz_small": _npz_of(tinymobile.build(alpha=0.25, resolution=16, num_classes=3, threads=1).network),
        "npz_int8": _npz_of(_quantized_network()),
        "tflite": tflite,
        "tflite_quant": read(MODELS / "mobilenet_v1_0.25_128_quant.tflite"),
        "tgz": _tgz(tflite),
        "h5": read(FIXTURES / "mobilenet_2_5_128_tf.h5"),
        "weights_h5": k3,
        "keras": _keras_zip(),
    }


def load_any(path: str):
    """The Model of a tinymobile .npz, or of any source the converters read."""
    if path.endswith(".npz"):
        return tinymobile.load(path, threads=1)
    return Model(load_source(path, dequantize=True), threads=1)


def check_case(path: str) -> str:
    """Load ``path`` under the limits: 'ok' (and the model ran) or 'refused'."""
    with time_limit(CASE_SECONDS), memory_limit(CASE_BYTES):
        try:
            model = load_any(path)
        except tinymobile.TinyMobileError:
            return "refused"
        r = min(model.resolution, 64)  # fully convolutional: a small input exercises every layer
        model.network.resolution = r
        run = getattr(model, "logits", model.forward)  # float in, float out for int8 models too
        out = run(np.zeros((1, r, r, 3), np.float32))
        assert out.shape == (1, model.network.num_outputs)
        return "ok"


def test_seeds_load(seeds, tmp_path):
    """Control: every unmutated seed loads and runs (so refusals below come from the mutations)."""
    for kind, data in seeds.items():
        p = tmp_path / f"seed{KINDS[kind][0]}"
        p.write_bytes(data)
        assert check_case(str(p)) == "ok", kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_mutated_files_load_or_raise_tinymobile_error(kind, seeds, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"fuzz_{kind}")
    suffix, examples = KINDS[kind]
    seed = seeds[kind]
    outcomes = []

    @settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None,
              derandomize=not RANDOM, suppress_health_check=list(HealthCheck))
    @given(ops=mutations(len(seed)))
    def case(ops):
        p = directory / f"case{suffix}"
        p.write_bytes(mutate(seed, ops))
        outcomes.append(check_case(str(p)))

    case()
    assert "refused" in outcomes, "no mutation was refused: is the fuzzer mutating anything?"


def test_time_limit_stops_a_hang():
    import time
    from helpers.fuzzing import Hang
    with pytest.raises(Hang):
        with time_limit(0.2):
            while True:
                time.sleep(0.01)


def test_memory_limit_refuses_a_huge_allocation():
    with memory_limit(256 << 20):
        with pytest.raises(MemoryError):
            np.ones(1 << 30, np.float32)  # 4 GB
    np.ones(1 << 26, np.float32)  # the limit is lifted afterwards
