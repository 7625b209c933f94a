"""Helper modules shared by the tests (oracles, model builders, fuzzing limits, process stats).

Imported as ``helpers.<module>``: pytest puts tests/ on sys.path (rootdir conftest, prepend mode).
This file must import nothing: ``helpers.native_override`` has to run before the first tinymobile
import (conftest.py imports it first).
"""
