"""docs/SCALE.md's dask.bag recipe, run as written (issue 14); skipped without dask."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import tinymobile
from tinymobile import cli

from conftest import IMAGES, MODELS

pytest.importorskip("dask.bag")

DOC = Path(__file__).resolve().parents[1] / "docs" / "SCALE.md"


def recipe() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## dask.bag", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_dask_bag_recipe_gives_serial_answers(tmp_path):
    src = MODELS / "mobilenet_v1_0.25_128_quant.tflite"
    if not src.exists():
        pytest.skip("../shared is not present")
    model_file = tmp_path / "m.npz"
    assert cli.main(["-q", "convert", str(src), "-o", str(model_file)]) == 0
    photos = sorted(str(p) for p in (IMAGES / "imagenet-dev").glob("*.JPEG"))[:8]
    code = recipe()
    assert '"photos/*.jpg"' in code and '"mobilenet_v1_0.5_160_quant.npz"' in code
    code = code.replace('sorted(glob.glob("photos/*.jpg"))', repr(photos)) \
        .replace('"mobilenet_v1_0.5_160_quant.npz"', repr(str(model_file)))
    scope = {"__name__": "recipe"}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 — our own documentation
    model = tinymobile.load(model_file)
    want = [(p, *model.classify(p, top=1)[0]) for p in photos]
    assert scope["results"] == want
