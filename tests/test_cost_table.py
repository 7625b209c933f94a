"""The paper's cost table (Howard et al. 2017, Tables 6-7) from build(alpha, resolution)."""
import pytest

import tinymobile
from tinymobile.network import mobilenet_v1


def macs_params(alpha, resolution, separable=True):
    rows = mobilenet_v1(alpha, resolution, separable=separable).summary_rows()
    return sum(r.macs for r in rows), sum(r.params for r in rows), rows


@pytest.mark.parametrize("alpha,resolution,millions", [
    (1.0, 224, 569), (0.75, 224, 325), (0.5, 224, 149), (0.25, 224, 41),
    (1.0, 192, 418), (1.0, 160, 290), (1.0, 128, 186)])
def test_mult_adds(alpha, resolution, millions):
    macs, _, _ = macs_params(alpha, resolution)
    assert abs(macs / 1e6 - millions) <= 0.01 * millions


def test_params_and_pointwise_share():
    macs, params, rows = macs_params(1.0, 224)
    assert abs(params / 1e6 - 4.2) <= 0.01 * 4.2
    pw_macs = sum(r.macs for r in rows if r.kind == "pointwise")
    pw_params = sum(r.params for r in rows if r.kind == "pointwise")
    assert abs(pw_macs / macs - 0.95) <= 0.01
    assert abs(pw_params / params - 0.75) <= 0.01


def test_full_convolution_model_costs():
    macs, params, _ = macs_params(1.0, 224, separable=False)
    assert abs(macs / 1e6 - 4866) <= 0.01 * 4866
    assert abs(params / 1e6 - 29.3) <= 0.01 * 29.3


def test_model_properties_and_summary():
    m = tinymobile.build(alpha=0.5, resolution=160, num_classes=1000, threads=1)
    assert m.alpha == 0.5 and m.resolution == 160 and m.num_classes == 1000
    assert m.macs == sum(r.macs for r in m.network.summary_rows())
    text = m.summary()
    assert "pw13" in text and "total" in text and f"{m.macs:,}" in text
