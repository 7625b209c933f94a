"""Download the official TF-slim MobileNet v1 models into a local cache and convert them.

``download("mobilenet_v1_1.0_224")`` fetches ``{base}/mobilenet_v1_1.0_224.tgz`` into the cache
directory, verifies its sha256 where known, converts the ``.tflite`` inside and returns the path of
the format-v1 model ``mobilenet_v1_1.0_224.npz`` beside it.

* cache: ``$TINYMOBILE_HOME``, else ``$XDG_CACHE_HOME/tinymobile``, else ``~/.cache/tinymobile``;
* base URL: ``$TINYMOBILE_BASE_URL``, else :data:`DEFAULT_BASE_URL`;
* the archive is written to a unique temporary file in the cache and renamed only once it is
  complete and verified; on any failure (HTTP error, truncated transfer, checksum mismatch, bad
  archive) the temporary file is deleted and nothing else in the cache is touched — a good cached
  model is never removed or overwritten by a failed download.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from .errors import TinyMobileError

DEFAULT_BASE_URL = ("https://storage.googleapis.com/download.tensorflow.org/models/"
                    "mobilenet_v1_2018_08_02/")
ALPHAS = ("1.0", "0.75", "0.5", "0.25")
RESOLUTIONS = (224, 192, 160, 128)
#: The 32 official names: float and ``_quant`` for every α and resolution.
NAMES: List[str] = [f"mobilenet_v1_{a}_{r}{q}" for a in ALPHAS for r in RESOLUTIONS
                    for q in ("", "_quant")]
DEFAULT_MODEL = "mobilenet_v1_1.0_224"
#: sha256 of the archives whose digest is published / known.
KNOWN_SHA256: Dict[str, str] = {
    "mobilenet_v1_1.0_224.tgz": "2fadeabb9968ec6833bee903900dda6e61b3947200535874ce2fe42a8493abc0",
    "mobilenet_v1_1.0_224_quant.tgz":
        "d32432d28673a936b2d6281ab0600c71cf7226dfe4cdcef3012555f691744166",
}
#: Largest archive accepted (the official ones are under 100 MB).
MAX_DOWNLOAD_BYTES = 1 << 30
CHUNK = 1 << 16
TIMEOUT_S = 60


class DownloadError(TinyMobileError):
    """A model could not be downloaded (network, HTTP status, truncation, checksum)."""


def cache_dir() -> Path:
    """Where models are cached (not created here)."""
    home = os.environ.get("TINYMOBILE_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinymobile"


def base_url() -> str:
    url = os.environ.get("TINYMOBILE_BASE_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def check_name(name: str) -> str:
    """The canonical model name (a trailing ``.tgz`` / ``.npz`` is accepted), or an error."""
    for ext in (".tgz", ".npz", ".tflite"):
        if name.endswith(ext):
            name = name[:-len(ext)]
    if name not in NAMES:
        raise DownloadError(f"unknown model {name!r}; `tinymobile download --list` shows the "
                            f"{len(NAMES)} official names (e.g. {DEFAULT_MODEL})")
    return name


def model_path(name: str) -> Path:
    """The cached, converted model of ``name`` (it may not exist yet)."""
    return cache_dir() / f"{check_name(name)}.npz"


def cached(name: str) -> Optional[Path]:
    """The cached model of ``name`` when it exists, else None."""
    p = model_path(name)
    return p if p.is_file() else None


def download(name: str, progress: bool = True, force: bool = False) -> Path:
    """Fetch, verify and convert the official model ``name``; returns the cached ``.npz`` path.

    A model already in the cache is returned as is unless ``force``. Quantized (``_quant``)
    archives are stored dequantized (float32) for now.
    """
    name = check_name(name)
    dst = model_path(name)
    if dst.is_file() and not force:
        return dst
    had_archive = (cache_dir() / f"{name}.tgz").is_file()
    archive = fetch(name, progress=progress, force=force)
    from .convert import convert  # late import: converters pull in optional pieces
    tmp = _tmp_sibling(dst)
    try:
        convert(archive, tmp, dequantize=name.endswith("_quant"))
        os.replace(tmp, dst)
    except BaseException:
        for leftover in (tmp, Path(str(tmp) + ".tmp")):
            _unlink(leftover)
        if not had_archive or force:
            _unlink(archive)  # an archive that does not convert is no use in the cache
        raise
    return dst


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(path.name + f".{os.getpid()}.partial.npz")


def fetch(name: str, progress: bool = True, force: bool = False) -> Path:
    """Download ``{name}.tgz`` into the cache (verified; reused when already there)."""
    name = check_name(name)
    filename = f"{name}.tgz"
    directory = cache_dir()
    final = directory / filename
    if final.is_file() and not force:
        if _verified(final, filename):
            return final
    if directory.exists() and not directory.is_dir():
        raise TinyMobileError(f"{directory}: the model cache (TINYMOBILE_HOME, else "
                              "~/.cache/tinymobile) is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    url = base_url() + filename
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=filename + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, filename, progress)
        expected = KNOWN_SHA256.get(filename)
        if expected is not None and digest != expected:
            raise DownloadError(f"{url}: sha256 mismatch (got {digest}, expected {expected}); "
                                "the download was deleted")
        os.replace(tmp, final)
    except BaseException:
        _unlink(Path(tmp))
        raise
    return final


def _verified(path: Path, filename: str) -> bool:
    expected = KNOWN_SHA256.get(filename)
    if expected is None:
        return True
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest() == expected


def _stream(url: str, out, label: str, progress: bool) -> str:
    """Copy ``url`` into ``out``; returns the sha256 hex digest. Raises DownloadError."""
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot download {url} ({reason})") from None
    h = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            raise DownloadError(f"{url}: {total} bytes is larger than any MobileNet archive")
        from tqdm import tqdm
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                  disable=not progress, file=sys.stderr, leave=False) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except http.client.IncompleteRead as e:
                    chunk = e.partial
                    if chunk:
                        h.update(chunk)
                        out.write(chunk)
                        received += len(chunk)
                    break
                except (OSError, http.client.HTTPException) as e:
                    raise DownloadError(f"{url}: transfer from {host} failed after {received} "
                                        f"bytes ({e})") from None
                if not chunk:
                    break
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"{url}: more than {MAX_DOWNLOAD_BYTES} bytes: refused")
                h.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise DownloadError(f"{url}: transfer truncated ({received} of {total} bytes); "
                            "the download was deleted")
    return h.hexdigest()
