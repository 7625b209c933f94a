"""Latest-frame streams (issue 14): a source faster than inference builds no backlog."""
from __future__ import annotations

import time

import numpy as np
import pytest

import tinymobile
from tinymobile.stream import LatestFrame, classify_latest


class SlowModel:
    """A real model whose classify also sleeps: inference well slower than the source."""

    def __init__(self, seconds):
        self.model = tinymobile.build(0.25, 128, num_classes=10, threads=1)
        self.seconds = seconds
        self.pickups = []

    def classify(self, image, top):
        self.pickups.append((time.perf_counter(), int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])))
        time.sleep(self.seconds)
        return self.model.classify(image, top=top)


def synthetic_source(produced, interval, count):
    """Frames every ``interval`` seconds, their number written in the first pixel."""
    for k in range(count):
        frame = np.zeros((32, 32, 3), np.uint8)
        frame[0, 0, 0], frame[0, 0, 1] = k % 256, k // 256
        produced.append(time.perf_counter())
        yield f"frame {k}", frame
        time.sleep(interval)


def test_a_fast_source_builds_no_backlog():
    produced = []
    model = SlowModel(0.03)
    results = list(classify_latest(model, synthetic_source(produced, 0.001, 20000), top=2,
                                   named=True, limit=10))
    assert len(results) == 10
    seqs = [r.seq for r in results]
    assert seqs == sorted(set(seqs))                        # in order, never twice
    assert [int(r.name.split()[1]) for r in results] == seqs
    assert all(s == seq for (_, s), seq in zip(model.pickups, seqs))
    # No backlog: every frame produced well before a pickup is not newer than the frame picked up
    # (a queue would hand out frame i at pickup i, ~30 frames behind per result).
    for (t_pickup, _), seq in zip(model.pickups, seqs):
        older = [k for k, t in enumerate(produced[:]) if t < t_pickup - 0.02]
        assert not older or max(older) <= seq, (seq, max(older))
    assert seqs[-1] >= 5 * len(results)                    # frames were dropped
    assert results[-1].dropped >= seqs[-1] - len(results)
    assert max(r.latency for r in results) < 1.0
    assert results[0].top[0][0] in model.model.labels


def test_latest_frame_ends_with_the_source_and_raises_its_errors():
    with LatestFrame(iter([1, 2, 3])) as frames:
        time.sleep(0.05)
        f = frames.get(timeout=5)
        assert f.image == 3 and f.seq == 2 and frames.dropped == 2
        assert frames.get(timeout=5) is None

    def broken():
        yield np.zeros((4, 4, 3), np.uint8)
        raise OSError("camera unplugged")

    frames = LatestFrame(broken())
    time.sleep(0.05)
    frames.get(timeout=5)
    with pytest.raises(OSError, match="unplugged"):
        frames.get(timeout=5)
    assert LatestFrame(iter([])).get(timeout=5) is None


def test_pi_classify_camera_loop_with_a_fake_camera():
    """examples/pi_classify.py's camera frames through classify_latest (no picamera2 here)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "pi_classify.py"
    spec = importlib.util.spec_from_file_location("pi_classify", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    class FakeCamera:
        def __init__(self):
            self.captured = 0

        def create_preview_configuration(self, main):
            return main

        def configure(self, config):
            self.size = config["size"]

        def start(self):
            pass

        def stop(self):
            pass

        def capture_array(self):
            self.captured += 1
            return np.full((*self.size, 3), self.captured % 256, np.uint8)  # B, G, R

    camera = FakeCamera()
    model = SlowModel(0.02)
    results = list(classify_latest(model, example._capture(camera, 64), top=1, named=True, limit=4))
    assert [r.name for r in results] == [f"frame {r.seq}" for r in results]
    assert camera.captured > 4 * 3 and results[-1].dropped > 0


def test_pi_classify_on_a_folder_reports_bad_input_in_one_line(tmp_path, capsys, monkeypatch):
    """examples/pi_classify.py DIR: a missing folder or model is one line (no traceback), an
    unreadable image is reported and the other images are still classified."""
    import subprocess
    import sys
    from pathlib import Path
    from PIL import Image
    from tinymobile import model_format
    from tinymobile.network import mobilenet_v1
    example = Path(__file__).resolve().parents[1] / "examples" / "pi_classify.py"
    m = tmp_path / "m.npz"
    model_format.save(mobilenet_v1(0.25, 32, 3), m)
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a_broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "b.png")

    def run(*args):
        p = subprocess.run([sys.executable, str(example), *map(str, args)], capture_output=True,
                           text=True, timeout=120)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    p = run(folder, "--model", m, "--top", "1")
    assert p.returncode == 1 and "a_broken.jpg" in p.stderr and "b.png:" in p.stdout
    p = run(tmp_path / "nowhere", "--model", m)
    assert p.returncode != 0 and "nowhere" in p.stderr
    p = run(folder, "--model", tmp_path / "missing.npz")
    assert p.returncode != 0 and "missing.npz" in p.stderr
