"""The ``.tflite`` inside an official TF-slim archive (``mobilenet_v1_1.0_224.tgz``), in memory.

Only the regular-file member whose name ends in ``.tflite`` is read; nothing is written to disk, so
member names (absolute paths, ``..``, links) cannot do harm. The decompressed stream is capped, so
a gzip bomb fails fast instead of exhausting time or memory.
"""
from __future__ import annotations

import gzip
import os
import tarfile
import zlib

from ..errors import ModelFormatError

#: Largest .tflite accepted from an archive (the float 1.0_224 model is ~17 MB).
MAX_TFLITE_BYTES = 256 << 20
#: Largest total of decompressed bytes walked through (the official archives are ~100 MB).
MAX_STREAM_BYTES = 2 << 30


class _Capped:
    """A read-only stream that raises once more than ``limit`` bytes have been read."""

    def __init__(self, raw, limit: int, name: str):
        self.raw, self.left, self.name = raw, limit, name

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else self.left + 1)
        self.left -= len(data)
        if self.left < 0:
            raise ModelFormatError(f"{self.name}: the archive decompresses to more than "
                                   f"{MAX_STREAM_BYTES >> 20} MB: refused")
        return data


def read_tflite_from_tgz(path: str) -> bytes:
    """The bytes of the single ``.tflite`` member of a ``.tgz`` / ``.tar.gz`` archive."""
    stem = os.path.basename(path)
    for ext in (".tgz", ".tar.gz"):
        if stem.endswith(ext):
            stem = stem[:-len(ext)]
    found = {}
    try:
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
            stream = _Capped(gz, MAX_STREAM_BYTES, path)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    base = os.path.basename(member.name)
                    if not (member.isfile() and base.endswith(".tflite")):
                        continue
                    if member.size > MAX_TFLITE_BYTES:
                        raise ModelFormatError(f"{path}: {member.name} is {member.size} bytes: "
                                               "refused")
                    f = tar.extractfile(member)
                    data = f.read(MAX_TFLITE_BYTES + 1) if f is not None else b""
                    if len(data) != member.size:
                        raise ModelFormatError(f"{path}: {member.name} is truncated")
                    found[base] = data
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, OSError) as e:
        raise ModelFormatError(f"{path}: not a readable .tgz archive ({e})") from None
    if not found:
        raise ModelFormatError(f"{path}: the archive holds no .tflite model")
    if len(found) == 1:
        return next(iter(found.values()))
    if stem + ".tflite" in found:
        return found[stem + ".tflite"]
    raise ModelFormatError(f"{path}: the archive holds several .tflite models "
                           f"({', '.join(sorted(found))}); extract the one you want")
