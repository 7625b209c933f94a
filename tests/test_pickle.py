"""A Model pickles (issue 14: Ray, Dask, multiprocessing): the model file's arrays and the thread
count travel, the C state is rebuilt, the answers are equal. Model files are never unpickled."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle

import numpy as np
import pytest

import tinymobile
from tinymobile import cli, model_format

from conftest import IMAGES, MODELS

SAMPLES = sorted(str(p) for p in (IMAGES / "samples").glob("*"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {"random 0.25_128 float": tinymobile.build(0.25, 128, num_classes=10, threads=1)}
    src = MODELS / "mobilenet_v1_0.25_128_quant.tflite"
    if src.exists():
        dst = tmp_path_factory.mktemp("pickle") / "q.npz"
        assert cli.main(["-q", "convert", str(src), "-o", str(dst)]) == 0
        out["uint8 0.25_128"] = tinymobile.load(dst, threads=2)
    return out


def test_pickle_round_trip_gives_equal_answers(models):
    for name, model in models.items():
        copy = pickle.loads(pickle.dumps(model))
        assert copy is not model and copy._runner is not model._runner, name
        assert (copy.threads, copy.dtype, copy.input_size, copy.labels, copy.network.crop) == \
            (model.threads, model.dtype, model.input_size, model.labels, model.network.crop)
        np.testing.assert_array_equal(copy.network.input_mean, model.network.input_mean)
        np.testing.assert_array_equal(copy.network.input_std, model.network.input_std)
        images = SAMPLES[:3] if SAMPLES else [np.zeros((50, 60, 3), np.uint8)]
        np.testing.assert_array_equal(copy.predict(images), model.predict(images))
        x = np.random.default_rng(0).uniform(-1, 1, (2, *model.input_size, 3)).astype(np.float32)
        np.testing.assert_array_equal(copy.logits(x), model.logits(x))


def test_pickled_forced_isa_is_kept(models):
    model = tinymobile.build(0.25, 128, num_classes=10, threads=1, isa="scalar")
    assert pickle.loads(pickle.dumps(model)).isa == "scalar"


def _classify_in_child(model, path):
    return model.classify(path, top=3), model.threads


def test_a_model_crosses_a_process_boundary(models):
    model = models["random 0.25_128 float"]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        got, threads = ex.submit(_classify_in_child, model, SAMPLES[0]).result(timeout=120)
    assert got == model.classify(SAMPLES[0], top=3) and threads == model.threads


class _Marker:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loading_a_model_file_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled"
    arrays = model_format.to_arrays(tinymobile.build(0.25, 128, num_classes=10).network)
    arrays["labels"] = np.array([_Marker(str(marker))], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(tinymobile.ModelFormatError):
        tinymobile.load(tmp_path / "evil.npz")
    assert not marker.exists()


def test_a_trained_classifier_pickles_with_its_training_state():
    base = tinymobile.build(0.25, 128, num_classes=10, threads=1)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (60, 70, 3), np.uint8) for _ in range(6)]
    trained = base.train_classifier(images, ["a", "b", "c"] * 2, method="imprint")
    assert trained.training_state is not None
    copy = pickle.loads(pickle.dumps(trained))
    assert copy.labels == trained.labels
    np.testing.assert_array_equal(copy.predict(images), trained.predict(images))
    state, want = copy.training_state, trained.training_state
    assert state is not None
    for k, v in want.to_arrays().items():
        np.testing.assert_array_equal(state.to_arrays()[k], v)
