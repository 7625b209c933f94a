"""Hand-made hostile TF-slim .tgz archives and damaged sources through the converters and the CLI:
refused with a TinyMobileError (the CLI: one line, non-zero exit, no traceback), nothing written
outside the destination, nothing inflated past the limits."""
import io
import os
import tarfile
import zlib

import pytest

from conftest import FIXTURES, require_shared
from helpers.fuzzing import memory_limit, time_limit
from tinymobile import cli
from tinymobile.convert import load_source
from tinymobile.converters import archive
from tinymobile.errors import ModelFormatError


@pytest.fixture(scope="module")
def tflite():
    require_shared()
    return (FIXTURES / "mobilenet_0.25_128_f32.tflite").read_bytes()


def make_tgz(path, members):
    """members: list of (TarInfo fields dict, bytes or None)."""
    with tarfile.open(path, "w:gz") as t:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for k, v in fields.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def load_refused(path, match):
    with time_limit(15), memory_limit(1 << 30):
        with pytest.raises(ModelFormatError, match=match):
            load_source(path)


def test_dot_dot_and_absolute_names_are_read_in_memory_only(tmp_path, tflite):
    """A member named ../../escaped.tflite is read as bytes; nothing is extracted anywhere."""
    work = tmp_path / "work"
    work.mkdir()
    p = make_tgz(tmp_path / "m.tgz", [({"name": "../../escaped.tflite"}, tflite)])
    cwd = os.getcwd()
    os.chdir(work)
    try:
        net = load_source(p)
    finally:
        os.chdir(cwd)
    assert net.num_outputs == 1000
    assert sorted(os.listdir(tmp_path)) == ["m.tgz", "work"] and not os.listdir(work)
    assert not (tmp_path.parent / "escaped.tflite").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE,
                                  tarfile.DIRTYPE])
def test_links_and_special_members_are_never_followed(tmp_path, kind):
    p = make_tgz(tmp_path / "l.tgz", [({"name": "m/model.tflite", "type": kind,
                                        "linkname": "/etc/passwd"}, None)])
    load_refused(p, "no .tflite model")


def test_huge_declared_member_is_refused_without_reading(tmp_path):
    """A header declaring a 10 GB .tflite (the data is not there): refused from the header."""
    raw = io.BytesIO()
    info = tarfile.TarInfo("m/model.tflite")
    info.size = 10 << 30
    raw.write(info.tobuf(format=tarfile.GNU_FORMAT))
    raw.write(bytes(4096))
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container
    (tmp_path / "h.tgz").write_bytes(c.compress(raw.getvalue()) + c.flush())
    load_refused(tmp_path / "h.tgz", "refused")


def test_gzip_bomb_stops_at_the_stream_cap(tmp_path, monkeypatch):
    """A tar of zeros past the decompressed-stream cap (lowered here to 8 MB): refused."""
    monkeypatch.setattr(archive, "MAX_STREAM_BYTES", 8 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    info = tarfile.TarInfo("m/padding.bin")
    info.size = 32 << 20
    parts = [c.compress(info.tobuf(format=tarfile.GNU_FORMAT))]
    parts += [c.compress(bytes(1 << 20)) for _ in range(32)]
    (tmp_path / "b.tgz").write_bytes(b"".join(parts) + c.flush())
    load_refused(tmp_path / "b.tgz", "decompresses to more than")


def test_truncated_member_is_refused(tmp_path, tflite):
    data = make_tgz(tmp_path / "t.tgz", [({"name": "m/model.tflite"}, tflite)]).read_bytes()
    cut = zlib.decompress(data, 31)[: 512 + len(tflite) // 2]
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    (tmp_path / "cut.tgz").write_bytes(c.compress(cut) + c.flush())
    load_refused(tmp_path / "cut.tgz", "truncated|not a readable")


@pytest.mark.parametrize("name,data", [
    ("bad.npz", b"PK\x03\x04" + bytes(100)),
    ("bad.tflite", b"\x00\x00\x00\x00TFL3" + bytes(100)),
    ("bad.tgz", b"\x1f\x8b" + bytes(50)),
    ("bad_tf.h5", b"\x89HDF\r\n\x1a\n" + bytes(100)),
])
@pytest.mark.parametrize("command", ["summary", "convert"])
def test_cli_reports_damaged_files_in_one_line(capsys, tmp_path, name, data, command):
    src = tmp_path / name
    src.write_bytes(data)
    if command == "convert" and name.endswith(".npz"):
        pytest.skip("convert refuses .npz before reading it")
    args = [command, str(src)] + (["-o", str(tmp_path / "out.npz")] if command == "convert" else [])
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("tinymobile: error:") and "Traceback" not in err


def _bump_zip_versions(data: bytes) -> bytes:
    """Set 'version needed to extract' of every central directory entry to 8.4 (zipfile raises
    NotImplementedError when it opens such an archive)."""
    b = bytearray(data)
    i = b.find(b"PK\x01\x02")
    while i >= 0:
        b[i + 6:i + 8] = (84).to_bytes(2, "little")
        i = b.find(b"PK\x01\x02", i + 4)
    return bytes(b)


def test_keras_zip_of_unsupported_zip_version_is_refused(tmp_path):
    """Found by the fuzzer: NotImplementedError from zipfile escaped the .keras reader."""
    from test_fuzz_files import _keras_zip
    require_shared()
    data = _keras_zip()
    (tmp_path / "m.keras").write_bytes(_bump_zip_versions(data))
    load_refused(tmp_path / "m.keras", "not a .keras archive")


def test_tflite_with_labels_zip_of_unsupported_zip_version_still_loads(tmp_path):
    """Same for the zip of associated files appended to a TFLite model: it is ignored (as a zip
    that is not there), the model itself converts."""
    from conftest import MODELS
    require_shared()
    data = (MODELS / "mobilenet_v1_0.25_128_quant.tflite").read_bytes()
    (tmp_path / "q.tflite").write_bytes(_bump_zip_versions(data))
    with time_limit(15):
        net = load_source(tmp_path / "q.tflite", dequantize=True)
    assert net.num_outputs == 1001
