"""tinymobile: a small, fast, exact CPU inference engine for MobileNet v1.

    import tinymobile
    model = tinymobile.load("mobilenet_1.0_224.npz")
    model.classify("cat.jpg")          # [(label, probability), ...]
"""
from .errors import ImageError, InputError, ModelFormatError, TinyMobileError
from .kernels import available_isas
from .kernels import default_isa as isa
from .model import Model, build, load
from .convert import convert  # noqa: E402  (the function shadows the submodule attribute)

__all__ = ["load", "build", "convert", "Model", "isa", "available_isas", "TinyMobileError", "ModelFormatError",
           "ImageError", "InputError"]
__version__ = "0.1.0"
