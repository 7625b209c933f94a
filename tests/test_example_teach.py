"""examples/pi_teach.py on folders (no camera): train, then classify a folder."""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared")
DEV = os.path.join(SHARED, "images", "imagenet-dev")
BASE = os.path.join(SHARED, "models", "mobilenet_v1_0.25_128_quant.tflite")

pytestmark = pytest.mark.skipif(not os.path.isfile(BASE), reason="../shared is not present")


def test_pi_teach_train_and_live(tmp_path):
    files = sorted(f for f in os.listdir(DEV) if f.endswith(".JPEG"))
    for name, chunk in (("dog", files[16:22]), ("thing", files[40:46])):
        os.makedirs(tmp_path / "teach" / name)
        for f in chunk:
            shutil.copy(os.path.join(DEV, f), tmp_path / "teach" / name)
    script = os.path.join(REPO, "examples", "pi_teach.py")
    run = lambda *a: subprocess.run([sys.executable, script, "--dir", str(tmp_path / "teach"), *a],
                                    capture_output=True, text=True, timeout=300)
    r = run("train", "--model", BASE)
    assert r.returncode == 0, r.stderr
    assert "2 classes (dog 6, thing 6)" in r.stdout
    assert os.path.isfile(tmp_path / "teach" / "model.npz")
    r = run("live", str(tmp_path / "teach" / "dog"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "dog, thing" in lines[0] and len(lines) == 7
    assert sum(l.split(": ", 1)[1].startswith("dog") for l in lines[1:]) >= 5
    r = run("live", str(tmp_path / "nope"))
    assert r.returncode != 0
