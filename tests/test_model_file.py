"""One model-file reader for every version: the same hostile cases get the same refusals from a
float (version 1) and a quantized (version 2) file, and version 3 carries what 1 and 2 cannot say
(non-square input, crop fraction, sigmoid output) through a save / load round trip."""
import zipfile

import numpy as np
import pytest

import tinymobile
from tinymobile import model_format, reference
from tinymobile.errors import ModelFormatError
from tinymobile.network import mobilenet_v1
from tinymobile.quantize import quantize_network


def _float_net():
    net = mobilenet_v1(alpha=0.25, resolution=32, num_classes=5, seed=0)
    net.labels = list("abcde")
    return net


def _quantized_net():
    net = _float_net()
    ranges = {layer.name: (-1.0, 6.0) for layer in net.layers if layer.weighted}
    return quantize_network(net, ranges)


@pytest.fixture(params=["float", "quantized"])
def arrays(request):
    net = _float_net() if request.param == "float" else _quantized_net()
    a = model_format.to_arrays(net)
    assert int(a["version"]) == (1 if request.param == "float" else 2)
    return a


def write(tmp_path, arrays):
    p = tmp_path / "m.npz"
    np.savez(p, **arrays)
    return p


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(labels=np.array(["x" * 5000] * 5)), "labels"),           # one name too long
    (lambda a: a.update(labels=np.array(list("abc"))), "labels"),                # wrong count
    (lambda a: a.update(labels=np.zeros(5, np.float32)), "labels"),              # not strings
    (lambda a: a.update(version=np.array(7)), "unsupported model format version 7"),
    (lambda a: a.update(padding=np.array("p" * 5000)), "padding"),
    (lambda a: a.update(resolution=np.array(5000)), "resolution"),
    (lambda a: a.update(strides=np.ones(65, np.int64)), "strides"),
    (lambda a: a.update({"pw2/w": a["pw2/w"][:3]}), "pw2/w"),                    # breaks the chain
    (lambda a: a.update({"dw1/b": a["dw1/b"][:1]}), "dw1/b"),
    (lambda a: a.pop("conv0/w"), "conv0/w"),
])
def test_every_version_refuses_the_same_hostile_cases(tmp_path, arrays, change, message):
    change(arrays)
    with pytest.raises(ModelFormatError, match=message):
        tinymobile.load(write(tmp_path, arrays))


def test_shapes_are_checked_before_data_in_every_version(tmp_path, arrays, monkeypatch):
    """A wrong shape is refused from the .npy header alone: no array data is read for it."""
    arrays["pw3/w"] = np.zeros((7, 7), arrays["pw3/w"].dtype)
    path = write(tmp_path, arrays)
    read = []
    real = model_format._LazyArrays.__getitem__
    monkeypatch.setattr(model_format._LazyArrays, "__getitem__",
                        lambda self, key: read.append(key) or real(self, key))
    with pytest.raises(ModelFormatError, match="'pw3/w' has shape"):
        tinymobile.load(path)
    assert "pw3/w" not in read


def test_a_huge_declared_label_array_is_refused_unread(tmp_path, arrays):
    arrays["labels"] = np.array(["a" * 300] * 5)  # 300 characters: past the 256 limit
    with pytest.raises(ModelFormatError, match="labels"):
        tinymobile.load(write(tmp_path, arrays))


def test_version_3_round_trip_of_a_non_square_float_model(tmp_path):
    net = mobilenet_v1(alpha=0.25, resolution=(48, 64), num_classes=1, seed=3)
    net.crop, net.output_activation, net.labels = 1.0, "sigmoid", ["no", "yes"]
    path = tmp_path / "m.npz"
    model_format.save(net, path)
    with zipfile.ZipFile(path) as z:
        assert "version.npy" in z.namelist()
    assert int(np.load(path, allow_pickle=False)["version"]) == 3
    model = tinymobile.load(path, threads=1)
    assert model.input_size == (48, 64) and model.network.crop == 1.0
    assert model.labels == ["no", "yes"] and model.num_classes == 1
    x = np.random.default_rng(0).uniform(-1, 1, (2, 48, 64, 3)).astype(np.float32)
    want = reference.forward(net, x)
    got = model.forward(x)
    assert got.shape == (2, 1)
    assert np.abs(got - want).max() <= 1e-4 * max(np.abs(want).max(), 1.0)
    img = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    probs = model.predict(img)
    assert probs.shape == (2,) and abs(float(probs.sum()) - 1) < 1e-6
    assert [label for label, _ in model.classify(img, top=2)] == sorted(
        ["no", "yes"], key=lambda s: -probs[["no", "yes"].index(s)])


def test_version_3_round_trip_of_a_quantized_model_with_its_own_crop(tmp_path):
    qnet = _quantized_net()
    qnet.crop = 0.9
    path = tmp_path / "q.npz"
    model_format.save(qnet, path)
    arrays = np.load(path, allow_pickle=False)
    assert int(arrays["version"]) == 3 and str(arrays["quantization"]) == "int8"
    back = tinymobile.load(path, threads=1)
    assert back.is_quantized and back.network.crop == pytest.approx(0.9)
    x = np.random.default_rng(2).integers(-128, 128, (1, 32, 32, 3), dtype=np.int8)
    assert np.array_equal(back.forward(x), tinymobile.Model(qnet, threads=1).forward(x))


def test_the_writer_picks_the_lowest_version():
    net = _float_net()
    assert model_format.version_for(net) == 1
    assert model_format.version_for(_quantized_net()) == 2
    net.crop = 1.0
    assert model_format.version_for(net) == 3
