"""Convert TensorFlow-format MobileNet v1 files into tinymobile's format-v1 ``.npz``.

Sources (recognised by their content, not their extension):

* TFLite flatbuffers (``.tflite``): float models, and quantized ones with ``dequantize=True``;
* official TF-slim archives (``mobilenet_v1_{α}_{r}.tgz``): the ``.tflite`` inside;
* Keras 2 HDF5 weights in the keras-applications layout (``mobilenet_1_0_224_tf.h5``;
  ``_no_top`` files become feature extractors);
* Keras 3 ``.weights.h5`` and ``.keras`` files of ``keras.applications.MobileNet``.

Keras weights carry no input size: ``resolution`` sets it, else the keras-applications file name
(``mobilenet_{A}_{r}_tf.h5``) or the Keras 3 model name, else 224. Labels: those carried by the
source (TFLite associated files), else ``labels`` (a text file, one name per line), else the
packaged ImageNet names for 1000/1001-class models.
"""
from __future__ import annotations

import os
import re
from typing import Optional

from . import model_format
from .errors import ModelFormatError, TinyMobileError
from .files import read_bytes
from .labels import imagenet_labels, read_labels
from .limits import MAX_INPUT_SIZE
from .network import Network

#: keras-applications weight file names: mobilenet_{alpha*10 as d_d}_{rows}_tf[_no_top].h5
KERAS_APP_NAME = re.compile(r"mobilenet_(\d)_(\d+)_(\d+)_tf(?:_no_top)?\.h5$")


def detect(path: str) -> str:
    """The source kind of ``path``: "tflite", "tgz", "h5" or "keras" (by its first bytes)."""
    head = read_bytes(path, "model file", head=8)
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:2] == b"\x1f\x8b":
        return "tgz"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "h5"
    if head[:4] == b"PK\x03\x04":
        if path.endswith(".npz"):
            raise ModelFormatError(f"{path}: looks like a tinymobile/NumPy .npz already; "
                                   "nothing to convert")
        return "keras"
    raise ModelFormatError(f"{path}: unknown model format (expected a .tflite, a TF-slim .tgz, "
                           "a Keras .h5 / .weights.h5 or a .keras file)")


def load_source(src: "os.PathLike[str] | str", dequantize: bool = False,
                resolution: Optional[int] = None) -> Network:
    """Read any supported source file into a float32 Network (labels as the source has them)."""
    src = os.fspath(src)
    kind = detect(src)
    if resolution is not None and not 1 <= int(resolution) <= MAX_INPUT_SIZE:
        raise TinyMobileError(f"resolution {resolution} is out of range 1..{MAX_INPUT_SIZE}")
    if kind in ("tflite", "tgz"):
        from .converters import tflite_model
        if kind == "tgz":
            from .converters.archive import read_tflite_from_tgz
            net = tflite_model.load(read_tflite_from_tgz(src), dequantize, name=src)
        else:
            net = tflite_model.load(src, dequantize)
        if resolution is not None:
            net.resolution = int(resolution)  # fully convolutional: any input size runs
        return net
    if kind == "keras":
        from .converters import keras_v3
        net = keras_v3.load_keras_zip(src, resolution)
    else:
        net = _load_h5(src, resolution)
    if net.has_classifier:
        net.labels = imagenet_labels(net.num_outputs)
    return net


def _load_h5(src: str, resolution: Optional[int]) -> Network:
    from .converters import keras_h5, keras_v3
    h5py = keras_h5._h5py()
    with keras_h5.h5_errors(src):
        with h5py.File(src, "r") as f:
            keras3 = keras_v3.is_keras3_weights(f)
    if keras3:
        return keras_v3.load_weights_h5(src, resolution, name=src)
    if resolution is None:
        m = KERAS_APP_NAME.search(os.path.basename(src))
        resolution = int(m.group(3)) if m else 224
    return keras_h5.load(src, resolution=resolution)


def convert(src: "os.PathLike[str] | str", dst: "os.PathLike[str] | str", dequantize: bool = False,
            labels: "os.PathLike[str] | str | None" = None,
            resolution: Optional[int] = None) -> Network:
    """Convert ``src`` (TFLite, TF-slim .tgz, Keras .h5/.weights.h5/.keras) to a format-v1 ``dst``.

    ``dequantize``: accept a quantized TFLite model and store it as float32 (weights dequantized).
    ``labels``: a text file with one class name per line (overrides the source's labels).
    ``resolution``: the input size (Keras weights carry none). Returns the converted Network.
    """
    net = load_source(src, dequantize=dequantize, resolution=resolution)
    if labels is not None:
        if not net.has_classifier:
            raise TinyMobileError(f"{os.fspath(src)} is a feature extractor (no classifier): "
                                  "labels do not apply")
        net.labels = read_labels(labels, net.num_outputs)
    model_format.save(net, dst)
    return net
