"""Class-name lists: the ImageNet names shipped with the package, and user label files."""
from __future__ import annotations

import os
from importlib import resources
from typing import List, Optional

from .errors import TinyMobileError
from .files import read_bytes

#: Label files larger than this are refused (ImageNet-21k names are ~1 MB).
MAX_LABELS_BYTES = 16 << 20


def imagenet_labels(num_classes: int = 1000) -> Optional[List[str]]:
    """ImageNet-1k class names for a 1000-class model, with "background" first for 1001 classes.

    Returns None for any other class count. Source and licence: header of
    ``tinymobile/data/imagenet_labels.txt``.
    """
    if num_classes not in (1000, 1001):
        return None
    text = resources.files("tinymobile").joinpath("data/imagenet_labels.txt").read_text("utf-8")
    names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(names) != 1000:  # a damaged installation
        raise TinyMobileError(f"the packaged ImageNet labels have {len(names)} entries, not 1000")
    return names if num_classes == 1000 else ["background"] + names


def parse_labels(text: str) -> List[str]:
    """One label per line; lines starting with ``#`` are comments (the packaged
    ``imagenet_labels.txt`` has a header of them), trailing blank lines are ignored, surrounding
    whitespace stripped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    while lines and not lines[-1].strip():
        lines.pop()
    return [s.strip() for s in lines]


def read_labels(path: "os.PathLike[str] | str", num_classes: Optional[int] = None) -> List[str]:
    """Read a labels file (one class name per line, UTF-8) and check its length.

    With ``num_classes`` 1001 and a 1000-line file, "background" is put first (TF-slim models).
    """
    path = os.fspath(path)
    data = read_bytes(path, "labels file", error=TinyMobileError, max_bytes=MAX_LABELS_BYTES,
                      too_large=lambda size: "too large for a labels file",
                      missing="no such labels file", cannot="cannot read labels")
    try:
        text = data.decode("utf-8-sig")  # Notepad's byte order mark is not part of a name
    except UnicodeDecodeError:
        raise TinyMobileError(f"{path}: labels file is not UTF-8 text") from None
    labels = parse_labels(text)
    if num_classes is not None:
        if num_classes == len(labels) + 1 == 1001:
            labels = ["background"] + labels
        if len(labels) != num_classes:
            raise TinyMobileError(f"{path}: {len(labels)} labels for a model with {num_classes} "
                                  "classes")
    return labels
