"""Hand-made hostile .npz model files: each is refused with a ModelFormatError naming the problem,
before any oversized data is inflated or allocated, and nothing in them is ever unpickled."""
import io
import pickle
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import tinymobile
from helpers.fuzzing import memory_limit, time_limit
from tinymobile import model_format
from tinymobile.errors import ModelFormatError
from tinymobile.network import mobilenet_v1


@pytest.fixture(scope="module")
def arrays():
    net = mobilenet_v1(alpha=0.25, resolution=32, num_classes=5, seed=0)
    net.labels = list("abcde")
    return model_format.to_arrays(net)


def npy_bytes(a):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, allow_pickle=False)
    return f.getvalue()


def npy_header(descr, shape, version=(1, 0)):
    f = io.BytesIO()
    d = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(f, d)
    else:
        np.lib.format.write_array_header_2_0(f, d)
    return f.getvalue()


def write_zip(path, members, compress=zipfile.ZIP_STORED):
    """members: {name: bytes}; written in order, without the duplicate-name warning."""
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def model_members(arrays, **replace):
    members = {k + ".npy": npy_bytes(v) for k, v in arrays.items()}
    for k, v in replace.items():
        members[k.replace("__", "/") + ".npy"] = v
    return members


def load_refused(path, match):
    with time_limit(10), memory_limit(1 << 30):
        with pytest.raises(ModelFormatError, match=match):
            tinymobile.load(path, threads=1)


def test_valid_members_written_by_hand_load(tmp_path, arrays):
    """The hand-writing path itself produces a loadable model (so the refusals below are real)."""
    m = tinymobile.load(write_zip(tmp_path / "ok.npz", model_members(arrays)), threads=1)
    assert m.num_classes == 5
    m2 = tinymobile.load(write_zip(tmp_path / "okz.npz", model_members(arrays), zipfile.ZIP_DEFLATED),
                         threads=1)
    assert np.array_equal(m2.network.layers[0].w, m.network.layers[0].w)


def deflate_bomb(header: bytes, zero_bytes: int) -> bytes:
    """A raw deflate stream of header + zero_bytes zeros (about 1000:1)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [c.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(zero_bytes >> 20):
        out.append(c.compress(chunk))
    out.append(c.compress(bytes(zero_bytes & ((1 << 20) - 1))))
    out.append(c.flush())
    return b"".join(out)


def bomb_zip(path, arrays, key, header, zero_bytes):
    """Write a zip whose ``key`` member is header + zero_bytes zeros, deflated (honest sizes)."""
    payload_crc = zlib.crc32(bytes(zero_bytes), zlib.crc32(header)) if zero_bytes <= 64 << 20 else 0
    stream = deflate_bomb(header, zero_bytes)
    members = [(k, v) for k, v in model_members(arrays).items() if k != key + ".npy"]
    out = io.BytesIO()
    central = []
    for name, data, method, crc, usize in (
            [(n, d, 0, zlib.crc32(d), len(d)) for n, d in members]
            + [(key + ".npy", stream, 8, payload_crc, len(header) + zero_bytes)]):
        offset = out.tell()
        fname = name.encode()
        zip64 = usize >= 0xFFFFFFFF
        extra = (b"\x01\x00\x10\x00" + usize.to_bytes(8, "little") + len(data).to_bytes(8, "little")
                 if zip64 else b"")
        size32 = 0xFFFFFFFF if zip64 else len(data)
        usize32 = 0xFFFFFFFF if zip64 else usize
        out.write(b"PK\x03\x04" + (45 if zip64 else 20).to_bytes(2, "little") + bytes(2)
                  + method.to_bytes(2, "little") + bytes(4) + crc.to_bytes(4, "little")
                  + size32.to_bytes(4, "little") + usize32.to_bytes(4, "little")
                  + len(fname).to_bytes(2, "little") + len(extra).to_bytes(2, "little") + fname + extra)
        out.write(data)
        central.append((fname, method, crc, size32, usize32, offset, extra, zip64))
    cd_start = out.tell()
    for fname, method, crc, size32, usize32, offset, extra, zip64 in central:
        out.write(b"PK\x01\x02" + (45).to_bytes(2, "little") + (45 if zip64 else 20).to_bytes(2, "little")
                  + bytes(2) + method.to_bytes(2, "little") + bytes(4) + crc.to_bytes(4, "little")
                  + size32.to_bytes(4, "little") + usize32.to_bytes(4, "little")
                  + len(fname).to_bytes(2, "little") + len(extra).to_bytes(2, "little")
                  + bytes(6) + bytes(4) + offset.to_bytes(4, "little") + fname + extra)
    cd_size = out.tell() - cd_start
    n = len(central)
    out.write(b"PK\x05\x06" + bytes(4) + n.to_bytes(2, "little") + n.to_bytes(2, "little")
              + cd_size.to_bytes(4, "little") + cd_start.to_bytes(4, "little") + bytes(2))
    path.write_bytes(out.getvalue())
    return path


def test_bomb_writer_makes_readable_members(tmp_path, arrays):
    """Control: a small honest deflated member written by bomb_zip reads back fine."""
    w = np.zeros((3, 3, 3, 8), np.float32)
    header = npy_bytes(w)[:-w.nbytes]
    p = bomb_zip(tmp_path / "ok.npz", arrays, "conv0/w", header, w.nbytes)
    net = model_format.load(p)
    assert np.array_equal(net.layers[0].w, w)


def test_zip_bomb_declaring_a_huge_tensor_is_refused_without_inflating(tmp_path, arrays):
    """conv0/w declares 3x3x3x2**28 floats (29 GB) and really inflates to 64 MB of zeros (the zip
    directory says 29 GB): refused from the 128-byte header, nothing else is inflated."""
    header = npy_header("<f4", (3, 3, 3, 1 << 28))
    p = bomb_zip(tmp_path / "bomb.npz", arrays, "conv0/w", header, 64 << 20)
    tracemalloc.start()
    try:
        load_refused(p, r"conv0/w.*refused")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated while refusing a bomb"


def test_zip_bomb_of_plausible_size_is_refused_by_its_ratio(tmp_path, arrays):
    """A 64 MB all-zero tensor in 64 kB of deflate: refused from the zip directory's sizes."""
    n = (64 << 20) // 4
    header = npy_header("<f4", (8, n // 8))
    p = bomb_zip(tmp_path / "bomb.npz", arrays, "pw1/w", header, n * 4)
    tracemalloc.start()
    try:
        load_refused(p, r"pw1/w.*zip bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated while refusing a bomb"


@pytest.mark.parametrize("descr,shape,match", [
    ("<f4", (1 << 40,), "refused"),                 # 4 TB of floats
    ("<U100000000", (), "refused"),                 # 400 MB string
    ("<f4", (-1, 3), "negative"),
    ("|O", (3,), "refused"),                         # object array
    ("<c8", (3, 3, 3, 8), "refused"),                # complex
    ("<M8[s]", (3, 3, 3, 8), "refused"),             # datetime
    ([("a", "<f4")], (3, 3, 3, 8), "refused"),      # structured
])
def test_hostile_headers_are_refused(tmp_path, arrays, descr, shape, match):
    p = write_zip(tmp_path / "h.npz", model_members(arrays, conv0__w=npy_header(descr, shape)))
    load_refused(p, match)


def test_hostile_format_string_is_refused_before_reading(tmp_path, arrays):
    p = write_zip(tmp_path / "h.npz", model_members(arrays, format=npy_header("<U50000000", ())))
    load_refused(p, "format")


def test_pickled_member_is_never_unpickled(tmp_path, arrays):
    """An object array whose payload would create a file when unpickled."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (marker.touch, ())

    payload = npy_header("|O", ()) + pickle.dumps(Evil())
    p = write_zip(tmp_path / "evil.npz", model_members(arrays, format=payload, labels=payload))
    load_refused(p, "refused")
    assert not marker.exists()


def test_truncated_member_is_refused(tmp_path, arrays):
    full = npy_bytes(arrays["pw2/w"])
    p = write_zip(tmp_path / "t.npz", model_members(arrays, pw2__w=full[: len(full) - 4]))
    load_refused(p, "pw2/w.*truncated")


def test_members_that_are_not_npy_are_ignored(tmp_path, arrays):
    members = model_members(arrays)
    members["format"] = members.pop("format.npy")  # same bytes, no .npy suffix
    load_refused(write_zip(tmp_path / "n.npz", members), "no 'format' array")
    members = model_members(arrays)
    members["format.npy"] = b"hello, not an npy member"
    load_refused(write_zip(tmp_path / "n2.npz", members), "format.*unreadable")


def test_unsupported_npy_version_is_refused(tmp_path, arrays):
    data = bytearray(npy_bytes(arrays["conv0/b"]))
    data[6] = 9  # major version
    load_refused(write_zip(tmp_path / "v.npz", model_members(arrays, conv0__b=bytes(data))), "version")


def test_empty_zip_and_plain_npy_are_refused(tmp_path, arrays):
    load_refused(write_zip(tmp_path / "e.npz", {}), "no 'format' array")
    p = tmp_path / "a.npz"
    p.write_bytes(npy_bytes(np.zeros((1 << 10,), np.float32)))
    load_refused(p, "not a tinymobile .npz")


def test_directory_and_missing_file(tmp_path):
    load_refused(tmp_path, "directory")
    load_refused(tmp_path / "nope.npz", "no such file")


def test_huge_activations_are_refused_at_load(tmp_path):
    """Valid small weights, but resolution 4096 with 600 channels: 10 GB for one image."""
    a = {"format": np.array(model_format.FORMAT_NAME), "version": np.array(1), "alpha": np.array(1.0),
         "resolution": np.array(4096), "activation": np.array("relu6"), "padding": np.array("tf_same"),
         "input_mean": np.zeros(3, np.float32), "input_std": np.ones(3, np.float32),
         "strides": np.array([2]), "conv0/w": np.zeros((3, 3, 3, 600), np.float32),
         "conv0/b": np.zeros(600, np.float32), "dw1/w": np.zeros((3, 3, 600), np.float32),
         "dw1/b": np.zeros(600, np.float32), "pw1/w": np.zeros((600, 8), np.float32),
         "pw1/b": np.zeros(8, np.float32)}
    load_refused(write_zip(tmp_path / "big.npz", model_members(a)), "conv0.*activation")


def test_total_inflated_bytes_are_bounded(tmp_path, arrays, monkeypatch):
    """Many arrays each under the per-array limit cannot add up past MAX_MODEL_BYTES."""
    monkeypatch.setattr(model_format, "MAX_MODEL_BYTES", 20_000)  # the reader's copy of limits.MAX_MODEL_BYTES
    load_refused(write_zip(tmp_path / "m.npz", model_members(arrays)), "past 20,000 bytes")
