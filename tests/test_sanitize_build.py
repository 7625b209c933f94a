"""Under ``make test-sanitize`` the tests must really run on the sanitizer build."""
import os

import pytest


@pytest.mark.skipif(not os.environ.get("TINYMOBILE_NATIVE_MODULE"), reason="normal build in use")
def test_overridden_native_module_is_in_use():
    from tinymobile import _native, kernels, operators
    path = os.path.realpath(os.environ["TINYMOBILE_NATIVE_MODULE"])
    assert os.path.realpath(_native.__file__) == path
    assert kernels.lib is _native.lib and operators.lib is _native.lib


@pytest.mark.skipif(not os.environ.get("TINYMOBILE_NATIVE_MODULE"), reason="normal build in use")
def test_asan_runtime_is_loaded_and_poisons_weight_slack():
    from conftest import POISONED_PACKED_SLACK
    assert POISONED_PACKED_SLACK, "ASan runtime not found: is LD_PRELOAD set to libasan?"
