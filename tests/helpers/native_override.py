"""Load a different build of ``tinymobile._native`` (the sanitizer build of ``make test-sanitize``)
when TINYMOBILE_NATIVE_MODULE names its .so file. Imported by conftest.py before tinymobile."""
import importlib.util
import os
import sys

PATH = os.environ.get("TINYMOBILE_NATIVE_MODULE")

if PATH:
    if "tinymobile._native" in sys.modules:
        raise RuntimeError("tinymobile._native was imported before the override could apply")
    spec = importlib.util.spec_from_file_location("tinymobile._native", PATH)
    if spec is None:
        raise RuntimeError(f"TINYMOBILE_NATIVE_MODULE={PATH!r} is not a loadable module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["tinymobile._native"] = module


def _asan_function(name: str):
    """An ASan interface function when the ASan runtime is loaded (LD_PRELOAD), else None."""
    import ctypes
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except AttributeError:
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fn.restype = None
    return fn


def poison_packed_weight_slack() -> bool:
    """Under ASan, make the alignment slack after every packed weight buffer (tinymobile.operators._packed
    allocates 16 spare floats to align the start) unaddressable, so a kernel reading weights past
    the packed size is reported although the read stays inside numpy's allocation. The slack is
    unpoisoned again just before numpy frees (or caches) the memory. Returns whether it applied."""
    poison = _asan_function("__asan_poison_memory_region")
    unpoison = _asan_function("__asan_unpoison_memory_region")
    if poison is None or unpoison is None:
        return False
    import weakref

    from tinymobile import operators

    original = operators._packed

    def packed(size: int):
        arr = original(size)
        raw = arr.base
        while raw.base is not None:
            raw = raw.base
        end = arr.ctypes.data + arr.nbytes
        slack = raw.ctypes.data + raw.nbytes - end
        if slack > 0:
            poison(end, slack)
            weakref.finalize(raw, unpoison, end, slack)
        return arr

    operators._packed = packed
    return True
