"""No leaks: memory stays flat over hundreds of predictions, and creating and dropping models
(each with a C thread pool) returns memory and OS threads to their baseline.
benchmarks/soak.py runs the same for thousands of predictions."""
import gc
import os
import sys
import time
import tracemalloc

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES
from helpers.procstat import os_threads, rss_bytes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")


def inputs():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in [(120, 160), (97, 61), (64, 64)]]
    jpg = IMAGES / "samples" / "owl.jpg"
    return images + ([jpg] if jpg.is_file() else [])


def workload(model, images, i):
    """One step: predict (one image or a batch), classify, features, forward."""
    img = images[i % len(images)]
    k = i % 4
    if k == 0:
        return model.predict(img)
    if k == 1:
        return model.classify(img, top=3)
    if k == 2:
        return model.features(img)
    return model.predict(images[:2])


def test_rss_and_python_memory_flat_over_hundreds_of_predictions():
    model = tinymobile.build(alpha=0.25, resolution=64, num_classes=1000, threads=1)
    images = inputs()
    for i in range(40):  # warm-up: plans for each batch size, Pillow, caches
        workload(model, images, i)
    tracemalloc.start()
    try:
        rss0 = rss_bytes()
        traced0 = tracemalloc.get_traced_memory()[0]
        for i in range(400):
            workload(model, images, i)
        traced1 = tracemalloc.get_traced_memory()[0]
        rss1 = rss_bytes()
    finally:
        tracemalloc.stop()
    # Python/NumPy objects (tracemalloc sees numpy buffers): a leak of one 4 kB logits array per
    # call would show as 1 MB here.
    assert traced1 - traced0 < 256 << 10, f"{traced1 - traced0} bytes of Python memory kept"
    # Everything else, including C allocations (an activation plan of this model is ~1 MB).
    assert rss1 - rss0 < 6 << 20, f"RSS grew by {(rss1 - rss0) >> 10} kB over 400 steps"


def _wait_for_threads(target: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while os_threads() > target and time.monotonic() < deadline:
        time.sleep(0.02)
    return os_threads()


def test_creating_and_dropping_models_returns_threads_and_memory():
    x = np.zeros((1, 32, 32, 3), np.float32)
    gc.collect()

    def cycle(n):
        for i in range(n):
            m = tinymobile.build(alpha=0.5, resolution=32, num_classes=100, seed=i, threads=2)
            m.forward(x)
            m.forward(np.zeros((2, 32, 32, 3), np.float32))
            del m

    cycle(5)  # warm-up
    rss0 = rss_bytes()  # collects garbage first: models from earlier tests take their pools along
    threads0 = os_threads()
    # The measurement sees the pools: five live models of 3 threads add 10 OS threads.
    live = [tinymobile.build(alpha=0.25, resolution=16, num_classes=2, threads=3) for _ in range(5)]
    assert os_threads() == threads0 + 10
    del live
    gc.collect()
    assert _wait_for_threads(threads0) == threads0
    cycle(40)
    gc.collect()
    assert _wait_for_threads(threads0) == threads0, "pool threads outlived their models"
    # One model of this size packs 1.3 MB of weights: 40 leaked would be 50 MB.
    assert rss_bytes() - rss0 < 12 << 20, f"RSS grew by {(rss_bytes() - rss0) >> 10} kB over 40 models"


def test_failed_loads_leave_nothing_behind(tmp_path):
    """Refused files (the path through the checks) keep no memory or threads."""
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    for _ in range(20):
        with pytest.raises(tinymobile.TinyMobileError):
            tinymobile.load(bad, threads=2)
    rss0 = rss_bytes()
    threads0 = os_threads()
    for _ in range(300):
        with pytest.raises(tinymobile.TinyMobileError):
            tinymobile.load(bad, threads=2)
    assert os_threads() == threads0
    assert rss_bytes() - rss0 < 4 << 20
