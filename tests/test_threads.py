"""One Model shared by many Python threads gives exactly the serial answers, and the C kernels run
without the GIL (see docs/THREADS.md for the guarantee)."""
import ctypes
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import tinymobile
from conftest import FIXTURES, MODELS, require_shared
from tinymobile import kernels
from tinymobile.operators import PointwiseOp


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(7)
    return [rng.uniform(-1, 1, (n, 64, 64, 3)).astype(np.float32) for n in (1, 2, 1, 3, 1, 2)]


def run_threads(n, target):
    errors = []

    def wrapped(t):
        try:
            target(t)
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def check_shared_model(m, inputs, images, iterations=25):
    """6 Python threads x ``iterations`` on one model, batch sizes mixed (each batch size has its
    own plans), forward / features / predict interleaved; every answer bit-identical to serial."""
    serial_fwd = [m.forward(x) for x in inputs]
    serial_feat = [m.features(img) for img in images]
    serial_pred = [m.predict(img) for img in images]
    mismatches = []

    def worker(t):
        for it in range(iterations):
            k = (t * 7 + it) % len(inputs)
            if not np.array_equal(m.forward(inputs[k]), serial_fwd[k]):
                mismatches.append(("forward", t, it, k))
            j = (t + it) % len(images)
            if it % 5 == 0 and not np.array_equal(m.features(images[j]), serial_feat[j]):
                mismatches.append(("features", t, it, j))
            if it % 5 == 2 and not np.array_equal(m.predict(images[j]), serial_pred[j]):
                mismatches.append(("predict", t, it, j))

    run_threads(6, worker)
    calls = 6 * iterations + 6 * (iterations // 5 + 1) * 2
    assert not mismatches, (f"{len(mismatches)} of ~{calls} answers differ from serial, first: "
                            f"{mismatches[:3]}")


def some_images(n=3):
    return [np.random.default_rng(i).integers(0, 256, (50 + i, 40, 3), np.uint8) for i in range(n)]


@pytest.mark.parametrize("pool_threads", [1, 2])
@pytest.mark.parametrize("separable", [True, False])
def test_shared_model_gives_serial_answers(inputs, pool_threads, separable):
    """A float model (random weights), shared by 6 threads: serial answers."""
    m = tinymobile.build(alpha=0.25, resolution=64, num_classes=11, seed=3, separable=separable,
                         threads=pool_threads)
    check_shared_model(m, inputs, some_images())


@pytest.fixture(scope="module")
def quantized_models(tmp_path_factory):
    """{"uint8": the Coral uint8 0.5_160 model (per-tensor weights), "int8": an int8 model with
    per-channel weights made by ai-edge-quantizer from the 0.25_128 float fixture}, as .npz
    files written by tinymobile's converter (what a user runs)."""
    require_shared()
    from tinymobile.convert import convert
    tmp = tmp_path_factory.mktemp("q")
    paths = {"uint8": tmp / "uint8.npz"}
    convert(str(MODELS / "mobilenet_v1_0.5_160_quant.tflite"), paths["uint8"])
    try:
        from helpers import int8_models
        xs = np.load(FIXTURES / "reference_0.25_128.npz", allow_pickle=False)["x"]
        src = open(FIXTURES / "mobilenet_0.25_128_f32.tflite", "rb").read()
        paths["int8"] = tmp / "int8.npz"
        convert(int8_models.quantize_int8(src, xs, tmp / "int8.tflite"), paths["int8"])
    except ImportError:  # ai-edge-quantizer is in the test extra
        pass
    return paths


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("pool_threads", [1, 2])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_shared_quantized_model_gives_serial_answers(quantized_models, dtype, pool_threads):
    """A quantized model (uint8 per-tensor, int8 per-channel), shared by 6 threads: serial
    answers. (Operators once kept their integer scratch themselves, shared by every plan: about
    a quarter of the answers differed.)"""
    if dtype not in quantized_models:
        pytest.skip("ai-edge-quantizer is not installed")
    m = tinymobile.load(quantized_models[dtype], threads=pool_threads)
    assert m.dtype == dtype
    rng = np.random.default_rng(11)
    r = m.resolution
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    inputs = [rng.integers(lo, hi + 1, (n, r, r, 3)).astype(dtype) for n in (1, 2, 1, 3)]
    check_shared_model(m, inputs, some_images(), iterations=15)


def test_models_in_threads_each_with_its_own_pool(inputs):
    """Several Models with pools, used from several threads at once, each exact."""
    models = [tinymobile.build(alpha=0.25, resolution=64, num_classes=5, seed=s, threads=2) for s in range(3)]
    expected = [[m.forward(x) for x in inputs] for m in models]
    bad = []

    def worker(t):
        for it in range(10):
            i, k = (t + it) % 3, it % len(inputs)
            if not np.array_equal(models[i].forward(inputs[k]), expected[i][k]):
                bad.append((t, it))

    run_threads(5, worker)
    assert not bad


class Counter(threading.Thread):
    """Counts as fast as it can, giving up the GIL voluntarily after every step (time.sleep(0)),
    so that with a huge switch interval it only runs while another thread has released the GIL."""

    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.count += 1
            time.sleep(0)


def progress_during(call):
    """How many times the counter thread advanced while ``call()`` ran in this thread, with
    preemptive GIL switching made (practically) impossible: the counter can only run if ``call``
    releases the GIL."""
    counter = Counter()
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        counter.start()
        while counter.count < 10:  # it is running
            time.sleep(0.001)
        before = counter.count
        call()
        after = counter.count
    finally:
        counter.stop = True
        sys.setswitchinterval(old)
        counter.join()
    return after - before


def test_progress_measure_detects_a_call_that_holds_the_gil():
    """Control: a 0.3 s C call through ctypes.PyDLL holds the GIL and gives no progress; the
    same call through ctypes.CDLL releases it and gives some."""
    libc_holding, libc_releasing = ctypes.PyDLL(None), ctypes.CDLL(None)
    assert progress_during(lambda: libc_holding.usleep(300_000)) == 0
    assert progress_during(lambda: libc_releasing.usleep(300_000)) > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_c_kernels_release_the_gil(threads):
    """A single C operator call (an 8.6 GFLOP pointwise layer) lets another Python thread run."""
    kern, pool = kernels.kernel_table(), kernels.create_pool(threads)
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((512, 512)).astype(np.float32), np.zeros(512, np.float32)
    op = PointwiseOp(kern, pool, w, b)
    x = rng.standard_normal((16384, 512)).astype(np.float32)
    out = np.empty((16384, 512), np.float32)
    call = op.bind(x, out).setup()
    assert progress_during(call) > 0


def test_forward_lets_other_threads_run():
    m = tinymobile.build(alpha=1.0, resolution=224, num_classes=1000, threads=1)
    x = np.zeros((2, 224, 224, 3), np.float32)
    m.forward(x)
    assert progress_during(lambda: m.forward(x)) > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork()")
def test_model_works_in_a_forked_child(inputs):
    """A model (pool of 2 threads) created and used before fork() works in the child: the
    child starts its own pool instead of waiting forever for worker threads it does not have."""
    m = tinymobile.build(alpha=0.25, resolution=64, num_classes=5, threads=2)
    expected = m.forward(inputs[1])
    pid = os.fork()
    if pid == 0:  # child: exit code 0 = exact answer, 1 = wrong, 2 = error; killed if it hangs
        code = 2
        try:
            signal.alarm(30)
            code = 0 if np.array_equal(m.forward(inputs[1]), expected) else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("forward in the forked child hung")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert np.array_equal(m.forward(inputs[1]), expected)  # the parent is unaffected
