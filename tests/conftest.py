"""Shared fixtures: paths into ../shared, fixture networks, and the ISA list."""
from pathlib import Path

import numpy as np
import pytest

from helpers import native_override  # noqa: F401  (must precede the first tinymobile import)
from tinymobile import kernels

#: Whether ASan poisons the alignment slack of packed weights (only under make test-sanitize).
POISONED_PACKED_SLACK = bool(native_override.PATH) and native_override.poison_packed_weight_slack()

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"
MODELS = SHARED / "models"
IMAGES = SHARED / "images"

#: (alpha, resolution, Keras 2 file stem) of the fixture sets in ../shared/fixtures.
FIXTURE_SETS = [("0.25", 128, "2_5"), ("0.5", 160, "5_0"), ("1.0", 224, "1_0")]

#: Every ISA this machine runs (the integer kernels differ on each).
ISAS = kernels.available_isas()


def _distinct_float_isas():
    """ISAS less those whose float kernels are another's (avxvnni runs the avx2 float table,
    avx512vnni the avx512 one): the float tests need not run the same kernels twice."""
    from tinymobile._native import ffi
    seen, out = set(), []
    for name in ISAS:
        table = int(ffi.cast("uintptr_t", kernels.kernel_table(name)))
        if table not in seen:
            seen.add(table)
            out.append(name)
    return out


F32_ISAS = _distinct_float_isas()


def _isas_of_this_architecture():
    import platform
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        return ["scalar", "avx2", "avx512", "avxvnni", "avx512vnni"]
    return ["scalar", "neon"]


#: The integer-kernel ISAs of this build's architecture, as pytest params: one this CPU lacks is
#: skipped with the reason (a VNNI path needs a CPU with AVX-512 VNNI or AVX-VNNI).
QU8_ISA_PARAMS = [
    pytest.param(name, marks=pytest.mark.skipif(
        name not in ISAS, reason=f"this CPU cannot run the {name} kernels (not tested here)"))
    for name in _isas_of_this_architecture()]


def require_shared():
    if not FIXTURES.is_dir():
        pytest.skip("../shared is not present")


def fixture_network(alpha: str, resolution: int):
    """The random-weight fixture network (read from the Keras 2 h5 file) and TF's (x, y)."""
    require_shared()
    from tinymobile.converters import keras_h5
    stem = dict((a, s) for a, _, s in FIXTURE_SETS)[alpha]
    net = keras_h5.load(str(FIXTURES / f"mobilenet_{stem}_{resolution}_tf.h5"), resolution)
    ref = np.load(FIXTURES / f"reference_{alpha}_{resolution}.npz", allow_pickle=False)
    assert_outputs_differ(ref["y"])
    return net, ref["x"], ref["y"]


def assert_outputs_differ(y: np.ndarray, tol: float = None) -> None:
    """A reference must give different outputs for different inputs (the first fixtures gave
    every input the same logits, so matching them proved little): every pair of rows differs by
    more than 100 x the parity tolerance (1e-4 * std)."""
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    tol = 1e-4 * float(y.std()) if tol is None else tol
    assert len(y) >= 2
    for i in range(len(y)):
        for j in range(i):
            assert np.abs(y[i] - y[j]).max() > 100 * tol, f"reference rows {j} and {i} agree"


@pytest.fixture(params=F32_ISAS)
def isa(request):
    return request.param
