"""tinymobile.download against a loopback HTTP server serving archives built by the test."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading

import numpy as np
import pytest

import tinymobile
from tinymobile import download as dl

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
TFLITE = os.path.join(SHARED, "fixtures", "mobilenet_0.25_128_f32.tflite")
REFERENCE = os.path.join(SHARED, "fixtures", "reference_0.25_128.npz")
NAME = "mobilenet_v1_0.25_128"

pytestmark = pytest.mark.skipif(not os.path.exists(TFLITE), reason="../shared is not present")


def _archive(name: str = NAME) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in ((f"./{name}_info.txt", b"info"),
                             (f"./{name}.tflite", open(TFLITE, "rb").read())):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.hits.append(self.path)
        mode, body = self.routes.get(self.path, ("404", b""))
        if mode == "500":
            self.send_error(500, "Internal Server Error")
            return
        if mode == "404":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # "truncated": announce the whole archive, send half, close the connection.
        self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
        self.wfile.flush()
        if mode == "truncated":
            self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    """A loopback server; TINYMOBILE_BASE_URL points at it and TINYMOBILE_HOME at tmp_path."""
    _Handler.routes, _Handler.hits = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TINYMOBILE_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/models")
    monkeypatch.setenv("TINYMOBILE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dl, "KNOWN_SHA256", dict(dl.KNOWN_SHA256))
    yield _Handler
    httpd.shutdown()
    httpd.server_close()


def _cache_files(tmp_path):
    d = tmp_path / "cache"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_names():
    assert len(dl.NAMES) == 32 and len(set(dl.NAMES)) == 32
    assert "mobilenet_v1_1.0_224" in dl.NAMES and "mobilenet_v1_0.25_128_quant" in dl.NAMES
    assert dl.check_name("mobilenet_v1_0.5_160.tgz") == "mobilenet_v1_0.5_160"
    with pytest.raises(dl.DownloadError, match="unknown model"):
        dl.check_name("mobilenet_v2_1.0_224")


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYMOBILE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dl.cache_dir() == tmp_path / "tinymobile"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.cache_dir() == tmp_path / "home" / ".cache" / "tinymobile"
    monkeypatch.setenv("TINYMOBILE_HOME", str(tmp_path / "elsewhere"))
    assert dl.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("TINYMOBILE_BASE_URL", raising=False)
    assert dl.base_url() == dl.DEFAULT_BASE_URL


def test_good_download_converts_and_is_cached(server, tmp_path):
    data = _archive()
    server.routes[f"/models/{NAME}.tgz"] = ("ok", data)
    dl.KNOWN_SHA256[f"{NAME}.tgz"] = hashlib.sha256(data).hexdigest()
    path = dl.download(NAME, progress=False)
    assert path == tmp_path / "cache" / f"{NAME}.npz"
    assert _cache_files(tmp_path) == [f"{NAME}.npz", f"{NAME}.tgz"]
    ref = np.load(REFERENCE)
    model = tinymobile.load(path)
    assert np.abs(model.forward(ref["x"]) - ref["y"]).max() <= 1e-4 * ref["y"].std()
    # A second call uses the cache: no new request.
    hits = len(server.hits)
    assert dl.download(NAME, progress=False) == path
    assert len(server.hits) == hits


def test_wrong_checksum_is_deleted(server, tmp_path):
    server.routes[f"/models/{NAME}.tgz"] = ("ok", _archive())
    dl.KNOWN_SHA256[f"{NAME}.tgz"] = "0" * 64
    with pytest.raises(dl.DownloadError, match="sha256 mismatch"):
        dl.download(NAME, progress=False)
    assert _cache_files(tmp_path) == []


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    server.routes[f"/models/{NAME}.tgz"] = ("truncated", _archive())
    with pytest.raises(dl.DownloadError, match="truncated"):
        dl.download(NAME, progress=False)
    assert _cache_files(tmp_path) == []


def test_server_error_leaves_nothing(server, tmp_path):
    server.routes[f"/models/{NAME}.tgz"] = ("500", b"")
    with pytest.raises(dl.DownloadError, match="HTTP 500"):
        dl.download(NAME, progress=False)
    assert _cache_files(tmp_path) == []


def test_unconvertible_archive_is_not_kept(server, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    server.routes[f"/models/{NAME}.tgz"] = ("ok", buf.getvalue())
    with pytest.raises(tinymobile.TinyMobileError, match="no .tflite"):
        dl.download(NAME, progress=False)
    assert _cache_files(tmp_path) == []


def test_failed_redownload_keeps_the_good_cached_model(server, tmp_path):
    data = _archive()
    server.routes[f"/models/{NAME}.tgz"] = ("ok", data)
    path = dl.download(NAME, progress=False)
    before = {p: (tmp_path / "cache" / p).read_bytes() for p in _cache_files(tmp_path)}
    for mode in ("truncated", "500"):
        server.routes[f"/models/{NAME}.tgz"] = (mode, data)
        with pytest.raises(dl.DownloadError):
            dl.download(NAME, progress=False, force=True)
        after = {p: (tmp_path / "cache" / p).read_bytes() for p in _cache_files(tmp_path)}
        assert after == before
    server.routes[f"/models/{NAME}.tgz"] = ("ok", data)
    dl.KNOWN_SHA256[f"{NAME}.tgz"] = "f" * 64
    with pytest.raises(dl.DownloadError, match="sha256"):
        dl.download(NAME, progress=False, force=True)
    assert {p: (tmp_path / "cache" / p).read_bytes() for p in _cache_files(tmp_path)} == before
    tinymobile.load(path)


def test_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYMOBILE_HOME", str(tmp_path / "cache"))
    # Port 9 on loopback ("discard") is essentially never listening: connection refused.
    monkeypatch.setenv("TINYMOBILE_BASE_URL", "http://127.0.0.1:9/")
    with pytest.raises(dl.DownloadError, match="cannot download http://127.0.0.1:9/"):
        dl.download(NAME, progress=False)
    assert _cache_files(tmp_path) == []


def test_a_cache_that_is_a_file_is_named_as_such(monkeypatch, tmp_path):
    """TINYMOBILE_HOME pointing at a file: one error saying the cache is not a folder (it was
    '<file>: File exists' from mkdir)."""
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    monkeypatch.setenv("TINYMOBILE_HOME", str(f))
    with pytest.raises(tinymobile.TinyMobileError, match="notes.txt.*TINYMOBILE_HOME.*not a folder"):
        dl.fetch("mobilenet_v1_0.25_128", progress=False)
    assert f.read_text() == "mine"
