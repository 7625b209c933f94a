"""Quantized models are bit-exact with TensorFlow Lite's reference kernels.

For every ../shared/models file (uint8, per-tensor) and for an int8 per-channel model made from a
float fixture with ai-edge-quantizer, every layer's output on the sample and imagenet-dev images
must equal, byte for byte, the tensor TFLite writes with ``OpResolverType.BUILTIN_REF`` and
``experimental_preserve_all_tensors=True``; on the best ISA for every image, on the scalar ISA
(and 3 threads) for the samples. Both engines get the same quantized input (our preprocessing,
then quantization with the model's input scale and zero point).
"""
import csv
import os

import numpy as np
import pytest

from conftest import FIXTURES, IMAGES, ISAS, MODELS, require_shared

pytest.importorskip("ai_edge_litert")
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

from tinymobile import model_format  # noqa: E402
from tinymobile.converters import tflite_file  # noqa: E402
from tinymobile.converters.tflite_quantized import convert_with_map  # noqa: E402
from tinymobile.model import Model  # noqa: E402

pytestmark = [pytest.mark.slow,  # preserving all tensors is the point here: no warning about it
              pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors:UserWarning")]

CLASSIFIERS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant",
               "mobilenet_v1_0.75_192_quant"]
EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor"
BEST = ISAS[-1]
CHUNK = 10


def sample_images():
    return sorted(str(p) for p in (IMAGES / "samples").iterdir() if p.is_file())


def dev_images():
    with open(IMAGES / "imagenet-dev" / "LABELS.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(str(IMAGES / "imagenet-dev" / r["file"]), int(r["class_1001"])) for r in rows]


class TFLiteReference:
    """TFLite with its reference kernels, every intermediate tensor kept."""

    def __init__(self, path):
        self.it = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
        self.it.allocate_tensors()
        self.input = self.it.get_input_details()[0]["index"]

    def run(self, x, tensors):
        """{tensor index: stacked outputs} for quantized inputs x (N, R, R, 3)."""
        out = {t: [] for t in tensors}
        for row in x:
            self.it.set_tensor(self.input, row[None])
            self.it.invoke()
            for t in tensors:
                out[t].append(self.it.get_tensor(t).copy())
        return {t: np.concatenate(v) for t, v in out.items()}


def assert_layers_equal(model, tmap, ref, x, where):
    ours = model.activations(x)
    tens = ref.run(x, tmap.values())
    for name, t in tmap.items():
        theirs = tens[t].reshape(ours[name].shape)
        bad = int((ours[name] != theirs).sum())
        assert bad == 0, (f"{where}: layer {name}: {bad} of {theirs.size} values differ from "
                          f"TFLite (max |diff| "
                          f"{np.abs(ours[name].astype(int) - theirs.astype(int)).max()})")
    return ours


def quantized_inputs(model, paths):
    return model.quantize_input(model.preprocess(paths))


def load(name):
    require_shared()
    path = MODELS / f"{name}.tflite"
    net, tmap = convert_with_map(tflite_file.read(str(path)))
    return path, net, tmap


@pytest.mark.parametrize("name", CLASSIFIERS + [EXTRACTOR])
def test_every_layer_matches_tflite_on_samples_every_isa(name):
    path, net, tmap = load(name)
    ref = TFLiteReference(path)
    for isa in ISAS:
        for threads in (1, 3):
            model = Model(net, threads=threads, isa=isa)
            x = quantized_inputs(model, sample_images())
            assert_layers_equal(model, tmap, ref, x, f"{name} {isa} threads={threads}")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_layer_matches_tflite_on_imagenet_dev(name):
    """All 100 imagenet-dev images, every layer, best ISA; so the top-1 equals TFLite's too."""
    path, net, tmap = load(name)
    ref = TFLiteReference(path)
    model = Model(net, threads=2, isa=BEST)
    images = dev_images()
    correct = 0
    for i in range(0, len(images), CHUNK):
        chunk = images[i:i + CHUNK]
        x = quantized_inputs(model, [p for p, _ in chunk])
        ours = assert_layers_equal(model, tmap, ref, x, f"{name} images {i}..")
        correct += int((ours["fc"].argmax(axis=1) == [c for _, c in chunk]).sum())
    # Sanity of the pipeline (TFLite's own figures: 0.45 / 0.70 / 0.72 top-1).
    assert correct >= 0.4 * len(images), f"top-1 {correct}/{len(images)}"


def test_embedding_extractor_matches_tflite_on_imagenet_dev():
    """The 1.0_224 extractor's 1024-d pooled output, exact, on every 4th dev image, or on all of
    them with TINYMOBILE_FULL_PARITY=1 (TFLite's reference kernels take ~0.5 s per image here;
    the layer-by-layer check on the samples is above)."""
    path, net, tmap = load(EXTRACTOR)
    ref = TFLiteReference(path)
    model = Model(net, threads=2, isa=BEST)
    step = 1 if os.environ.get("TINYMOBILE_FULL_PARITY") else 4
    images = [p for p, _ in dev_images()][::step]
    for i in range(0, len(images), CHUNK):
        x = quantized_inputs(model, images[i:i + CHUNK])
        ours = model.forward(x)
        theirs = ref.run(x, [tmap["pool"]])[tmap["pool"]].reshape(ours.shape)
        assert ours.shape[1] == 1024
        np.testing.assert_array_equal(ours, theirs)


def test_converted_file_round_trip_is_exact(tmp_path):
    """convert -> .npz (format version 2) -> load gives the same bytes as the converted network."""
    import tinymobile
    from tinymobile.convert import convert
    path, net, tmap = load(CLASSIFIERS[0])
    convert(str(path), tmp_path / "q.npz")
    model = tinymobile.load(tmp_path / "q.npz", threads=1)
    assert isinstance(model, Model)
    x = quantized_inputs(model, sample_images())
    ref = TFLiteReference(path)
    assert_layers_equal(model, tmap, ref, x, "loaded .npz")
    scale, zp = model.output_quantization
    t = tflite_file.read(str(path)).tensors[tmap["fc"]].quantization
    assert (np.float32(scale), zp) == (t.scale[0], t.zero_point[0])
    assert model.forward(x).dtype == np.uint8


def test_golden_grace_hopper():
    """README's golden check: grace_hopper, whole image resized, 0.75_192 -> military uniform."""
    from PIL import Image
    path, net, _ = load("mobilenet_v1_0.75_192_quant")
    model = Model(net, threads=1)
    with Image.open(IMAGES / "samples" / "grace_hopper.bmp") as im:
        pixels = np.asarray(im.convert("RGB").resize((192, 192), Image.BILINEAR), np.uint8)
    logits = model.forward(pixels[None])
    assert model.labels[int(logits[0].argmax())] == "military uniform"
    label, prob = model.classify(str(IMAGES / "samples" / "grace_hopper.bmp"), top=1)[0]
    assert label == "military uniform" and 0 < prob <= 1


@pytest.fixture(scope="module", params=["keras_0.25_128", "coral_0.25_128"])
def int8_model(request, tmp_path_factory):
    """int8 models with per-channel weights by ai-edge-quantizer (TFLite's static int8 recipe):
    from the 0.25_128 float fixture (Keras graph: MEAN pool, calibrated on the fixture inputs)
    and from the Coral 0.25_128 weights (TF-slim graph: int8 AVERAGE_POOL_2D)."""
    require_shared()
    pytest.importorskip("ai_edge_quantizer")
    from helpers import int8_models
    dst = tmp_path_factory.mktemp("int8") / f"{request.param}_int8.tflite"
    if request.param.startswith("keras"):
        xs = np.load(FIXTURES / "reference_0.25_128.npz", allow_pickle=False)["x"]
        src = open(FIXTURES / "mobilenet_0.25_128_f32.tflite", "rb").read()
        return int8_models.quantize_int8(src, xs, dst), "mean"
    # (RGB - 128) / 128: the input the float copy of the model takes
    xs = Model(load("mobilenet_v1_0.25_128_quant")[1], threads=1).preprocess(sample_images())
    return int8_models.int8_from_coral(str(MODELS / "mobilenet_v1_0.25_128_quant.tflite"), xs,
                                       dst), "average_pool_2d"


def test_int8_per_channel_matches_tflite(int8_model, tmp_path):
    path, pool_mode = int8_model
    net, tmap = convert_with_map(tflite_file.read(str(path)))
    assert net.dtype == "int8" and net.quant["pw5"].per_channel
    assert net.quant["pool"].pool_mode == pool_mode
    model_format.save(net, tmp_path / "q.npz")
    net = model_format.load(tmp_path / "q.npz")
    ref = TFLiteReference(path)
    images = sample_images() + [p for p, _ in dev_images()][::10]
    for isa in ISAS:
        model = Model(net, threads=3, isa=isa)
        x = quantized_inputs(model, images)
        assert x.dtype == np.int8
        assert_layers_equal(model, tmap, ref, x, f"int8 {isa}")
