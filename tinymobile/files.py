"""Reading a user's file whole (or its first bytes) with one-line errors that name it."""
from __future__ import annotations

import os
from typing import Callable, Optional, Type

from .errors import ModelFormatError, TinyMobileError


def not_a_file(path: str, what: str) -> str:
    """The message for a directory given where a ``what`` file belongs: a TensorFlow SavedModel
    folder (``model.save('my_model')`` in TF 2.x) is named with the exports tinymobile reads."""
    if any(os.path.isfile(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
        return (f"{path}: a TensorFlow SavedModel folder, not a {what}: export it with "
                "tf.lite.TFLiteConverter.from_saved_model (a .tflite), or save the Keras model "
                "as model.save('x.keras')")
    return f"{path}: is a directory, not a {what}"


def read_bytes(path: str, what: str, *, error: Type[TinyMobileError] = ModelFormatError,
               max_bytes: Optional[int] = None,
               too_large: Callable[[int], str] = lambda size: f"{size} bytes is too large",
               head: Optional[int] = None, missing: str = "no such file",
               cannot: str = "cannot read") -> bytes:
    """The bytes of ``path`` (only the first ``head`` if given). A missing file, a directory, an
    unreadable file or one over ``max_bytes`` raise ``error`` "<path>: <reason>"; ``what`` names
    the expected kind of file ("model file")."""
    try:
        if max_bytes is not None:
            size = os.path.getsize(path)
            if size > max_bytes:
                raise error(f"{path}: {too_large(size)}")
        with open(path, "rb") as f:
            return f.read(head) if head is not None else f.read()
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise error(not_a_file(path, what)) from None
    except OSError as e:
        raise error(f"{path}: {cannot} ({e.strerror or e})") from None
