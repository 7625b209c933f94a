"""tinymobile.ray_data on a local Ray (issue 14): the actors' answers equal serial classify."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinymobile
from tinymobile import cli

from conftest import IMAGES, MODELS

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from tinymobile import ray_data  # noqa: E402

pytestmark = pytest.mark.slow
DEV = IMAGES / "imagenet-dev"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False, ignore_reinit_error=True)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    src = MODELS / "mobilenet_v1_0.5_160_quant.tflite"
    if not src.exists():
        pytest.skip("../shared is not present")
    dst = tmp_path_factory.mktemp("ray") / "q.npz"
    assert cli.main(["-q", "convert", str(src), "-o", str(dst)]) == 0
    return dst


def paths(n=6):
    return [str(p) for p in sorted(DEV.glob("*.JPEG"))[:n]]


def test_classify_a_path_column_on_two_actors(local_ray, model_file):
    model = tinymobile.load(model_file, threads=1)
    ds = ray.data.from_items([{"path": p, "k": i} for i, p in enumerate(paths())])
    rows = sorted(ray_data.classify(ds, model_file, top=3, batch_size=2, actors=2).take_all(),
                  key=lambda r: r["k"])
    assert [r["path"] for r in rows] == paths()
    for r in rows:
        want = model.classify(r["path"], top=3)
        assert r["label"] == want[0][0]
        assert r["probability"] == pytest.approx(want[0][1], abs=0)
        assert list(r["top_labels"]) == [l for l, _ in want]
        np.testing.assert_array_equal(np.asarray(r["top_probabilities"], np.float32),
                                      np.array([p for _, p in want], np.float32))


def test_read_images_column_and_own_map_batches(local_ray, model_file, tmp_path):
    model = tinymobile.load(model_file, threads=1)
    ds = ray.data.read_images(paths(4), include_paths=True, mode="RGB")
    out = ray_data.classify(ds, model, column="image", actors=1, threads_per_actor=1)
    rows = out.take_all()
    assert len(rows) == 4 and "top_labels" not in rows[0]
    for r in rows:
        assert r["label"] == model.classify(r["path"], top=1)[0][0]
    mine = ray.data.from_items([{"file": p} for p in paths(3)]).map_batches(
        ray_data.Classifier, fn_constructor_kwargs={"model": str(model_file), "column": "file"},
        batch_size=2, compute=ray.data.ActorPoolStrategy(size=1), batch_format="numpy")
    assert {r["file"]: r["label"] for r in mine.take_all()} == \
        {p: model.classify(p, top=1)[0][0] for p in paths(3)}


def test_unreadable_image_fails_the_job_naming_it(local_ray, model_file, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    ds = ray.data.from_items([{"path": paths(1)[0]}, {"path": str(bad)}])
    with pytest.raises(Exception, match="broken.jpg"):
        ray_data.classify(ds, model_file).take_all()  # the default, growing pool


@pytest.mark.parametrize("cpus, actors, threads, reads, want", [
    (2, None, None, False, ((1, 2), 1)),      # the growing pool, one thread each
    (2, None, None, True, ((1, 1), 1)),       # ... leaving a CPU to the read tasks
    (8, None, 2, True, ((1, 3), 2)),
    (2, 1, None, False, ((1, 1), 2)),         # one actor on every CPU
    (2, 1, None, True, ((1, 1), 1)),          # ... but one for the reads (it waited forever)
    (8, 3, None, True, ((3, 3), 2)),
])
def test_pool_leaves_a_cpu_to_read_tasks(cpus, actors, threads, reads, want):
    """A read_images dataset needs a CPU for Ray's read tasks: with the defaults a fixed pool
    took all of them and the job never finished (actors=1 on a 2-CPU Ray: no answer in 400 s)."""
    assert ray_data.pool_plan(cpus, actors, threads, reads) == want


@pytest.mark.parametrize("cpus, actors, threads", [(2, 2, None), (2, 1, 2), (1, None, None)])
def test_a_pool_that_starves_the_reads_is_refused(cpus, actors, threads):
    with pytest.raises(tinymobile.TinyMobileError, match="read tasks"):
        ray_data.pool_plan(cpus, actors, threads, True)
    ray_data.pool_plan(cpus, actors, threads, False)  # no reads: fine


def test_read_images_with_one_actor_and_default_threads(local_ray, model_file):
    model = tinymobile.load(model_file, threads=1)
    ds = ray.data.read_images(paths(3), include_paths=True, mode="RGB")
    assert ray_data.reads_files(ds)
    assert not ray_data.reads_files(ray.data.from_items([{"path": p} for p in paths(3)]))
    rows = ray_data.classify(ds, model_file, column="image", actors=1).take_all()
    assert sorted(os.path.basename(r["path"]) for r in rows) == \
        sorted(os.path.basename(p) for p in paths(3))
    for r in rows:
        assert r["label"] == model.classify(r["path"], top=1)[0][0]
