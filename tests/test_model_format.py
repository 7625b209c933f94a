"""Format v1: round trip, unknown keys ignored, and every malformed file refused by name."""
import io
import zipfile

import numpy as np
import pytest

import tinymobile
from tinymobile import model_format
from tinymobile.errors import ModelFormatError
from tinymobile.network import mobilenet_v1


@pytest.fixture()
def arrays():
    net = mobilenet_v1(alpha=0.25, resolution=32, num_classes=5, seed=0)
    net.labels = list("abcde")
    return model_format.to_arrays(net)


def write(tmp_path, arrays, name="m.npz"):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_round_trip(tmp_path, arrays):
    net = model_format.load(write(tmp_path, arrays))
    again = model_format.to_arrays(net)
    assert set(again) == set(arrays)
    for k in arrays:
        assert np.array_equal(again[k], arrays[k]), k
    assert int(arrays["version"]) == 1 and str(arrays["format"]) == "tinymobile/mobilenet_v1"


def test_unknown_keys_are_ignored(tmp_path, arrays):
    arrays["future/thing"] = np.arange(3)
    assert tinymobile.load(write(tmp_path, arrays), threads=1).num_classes == 5


def test_fc_is_optional(tmp_path, arrays):
    del arrays["fc/w"], arrays["fc/b"], arrays["labels"]
    m = tinymobile.load(write(tmp_path, arrays), threads=1)
    assert m.num_classes == 0
    assert m.forward(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 256)


@pytest.mark.parametrize("change,message", [
    (lambda a: a.pop("pw3/w"), "pw3/w"),
    (lambda a: a.__setitem__("dw2/w", np.zeros((3, 3, 7), np.float32)), "dw2/w"),
    (lambda a: a.__setitem__("version", np.array(7)), "version 7"),
    (lambda a: a.__setitem__("format", np.array("something/else")), "format"),
    (lambda a: a.__setitem__("activation", np.array("gelu")), "activation"),
    (lambda a: a.__setitem__("padding", np.array("reflect")), "padding"),
    (lambda a: a.__setitem__("strides", np.array([1, 3] + [1] * 11)), "strides"),
    (lambda a: a.__setitem__("conv0/b", np.full(8, np.nan, np.float32)), "conv0/b"),
    (lambda a: a.__setitem__("input_std", np.zeros(3, np.float32)), "input_std"),
    (lambda a: a.__setitem__("labels", np.array(["x"])), "labels"),
    (lambda a: a.__setitem__("resolution", np.array(0)), "resolution"),
    (lambda a: a.__setitem__("fc/w", np.zeros((8, 5), np.int32)), "fc/w"),
])
def test_malformed_files_are_refused_by_name(tmp_path, arrays, change, message):
    change(arrays)
    with pytest.raises(ModelFormatError, match=message):
        tinymobile.load(write(tmp_path, arrays))


def test_object_arrays_are_never_unpickled(tmp_path, arrays):
    arrays["labels"] = np.array(list("abcde"), dtype=object)
    with pytest.raises(ModelFormatError):
        tinymobile.load(write(tmp_path, arrays))


def test_not_a_model(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello world")
    with pytest.raises(ModelFormatError, match="x.npz"):
        tinymobile.load(p)
    with pytest.raises(ModelFormatError, match="no such file"):
        tinymobile.load(tmp_path / "missing.npz")


def test_truncated_file(tmp_path, arrays):
    data = write(tmp_path, arrays).read_bytes()
    p = tmp_path / "cut.npz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError):
        tinymobile.load(p)


def test_huge_declared_array_is_refused_before_reading(tmp_path, arrays):
    """A header declaring a 100 GB tensor is refused without allocating it."""
    p = write(tmp_path, arrays)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1024, 32 * 1024 ** 2)})
    with zipfile.ZipFile(p, "a") as z:
        z.writestr("pw1/w.npy", np.lib.format.MAGIC_PREFIX + b"\x01\x00" + header.getvalue()[8:])
    with pytest.raises(ModelFormatError):
        tinymobile.load(p)


def test_save_leaves_the_users_other_files_alone(tmp_path):
    """The temporary file a save writes first is a fresh name: a user's own ``m.npz.tmp`` beside
    ``m.npz`` is neither overwritten nor removed, and nothing is left behind."""
    net = mobilenet_v1(0.25, 32, 3)
    mine = tmp_path / "m.npz.tmp"
    mine.write_bytes(b"mine")
    model_format.save(net, tmp_path / "m.npz")
    assert mine.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "m.npz.tmp"]
    assert tinymobile.load(tmp_path / "m.npz").num_classes == 3


def test_save_errors_name_the_destination(tmp_path):
    net = mobilenet_v1(0.25, 32, 3)
    with pytest.raises(ModelFormatError, match=r"x\.npz: the folder .*nowhere does not exist"):
        model_format.save(net, tmp_path / "nowhere" / "x.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ModelFormatError, match=r"d\.npz: is a directory"):
        model_format.save(net, tmp_path / "d.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


@pytest.mark.parametrize("name", ["models/mobilenet_v1_0.25_128_quant.tflite",  # a zip at its end
                                  "fixtures/mobilenet_0.25_128_f32.tflite",
                                  "fixtures/mobilenet_2_5_128_tf.h5",
                                  "user-models/a_transfer.keras"])
def test_loading_another_model_format_says_convert(name):
    """load() of a file convert() reads names its format and the conversion, not a missing
    'format' array or a BadZipFile."""
    from conftest import SHARED, require_shared
    require_shared()
    with pytest.raises(ModelFormatError, match=r"not a tinymobile \.npz.*tinymobile convert"):
        tinymobile.load(SHARED / name)
