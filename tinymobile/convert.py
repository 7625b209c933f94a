"""Convert TensorFlow-format MobileNet v1 files into tinymobile's format-v1 ``.npz``.

Sources (recognised by their content, not their extension):

* TFLite flatbuffers (``.tflite``): float models, and quantized ones with ``dequantize=True``;
* official TF-slim archives (``mobilenet_v1_{α}_{r}.tgz``): the ``.tflite`` inside;
* Keras 2 HDF5 weights in the keras-applications layout (``mobilenet_1_0_224_tf.h5``;
  ``_no_top`` files become feature extractors);
* Keras 3 ``.weights.h5`` and ``.keras`` files of ``keras.applications.MobileNet``.

Keras weights carry no input size: ``resolution`` sets it, else the keras-applications file name
(``mobilenet_{A}_{r}_tf.h5``) or the Keras 3 model name, else it is refused. A Keras 2 weights
file under a keras-applications name keeps TF-slim's conventions (central crop 0.875, [-1, 1]
input, softmax); any other weights-only file is a Keras-made model (whole image) whose input
normalisation and classifier activation the file does not record (``normalisation_assumed``,
``head_activation_assumed``: ``convert`` says what it assumed). Labels: those carried by the
source (TFLite associated files), else ``labels`` (a text file, one name per line), else the
packaged ImageNet names for 1000/1001-class models.
"""
from __future__ import annotations

import os
import re
from typing import Optional, Tuple

import numpy as np

from . import model_format
from .errors import ModelFormatError, TinyMobileError
from .files import read_bytes
from .labels import imagenet_labels, read_labels
from .converters.netbuild import alpha_of
from .limits import MAX_INPUT_SIZE
from .network import Network

#: keras-applications weight file names: mobilenet_{alpha*10 as d_d}_{rows}_tf[_no_top].h5
KERAS_APP_NAME = re.compile(r"mobilenet_(\d)_(\d+)_(\d+)_tf(?:_no_top)?\.h5$")
#: Central-crop fraction stored for Keras-made models (``.keras``, Keras 3 weights, full-model
#: ``.h5``): Keras trains and predicts on whole images resized to the input size.
KERAS_CROP = 1.0


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


def parse_input_size(value) -> Optional[Tuple[int, int]]:
    """``resolution`` as given by a user: None, an int R (R x R), (H, W), or the text "R" /
    "HxW" -> (H, W); out-of-range sizes are a TinyMobileError."""
    if value is None:
        return None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", value)
        if not m:
            raise TinyMobileError(f"input size {value!r}: expected R or HxW (e.g. 224 or 128x160)")
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) else h
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise TinyMobileError(f"input size {value!r}: expected (height, width)")
        h, w = (int(v) for v in value)
    else:
        h = w = int(value)
    for v in (h, w):
        if not 1 <= v <= MAX_INPUT_SIZE:
            raise TinyMobileError(f"resolution {v} is out of range 1..{MAX_INPUT_SIZE}")
    return h, w


def load_source(src: "os.PathLike[str] | str", dequantize: bool = False,
                resolution=None) -> Network:
    """Read any supported source file into a Network (labels as the source has them).

    ``resolution``: the input size, an int or (H, W) (or "HxW"): needed where the file records
    none (Keras weights-only files without a keras-applications name); elsewhere it overrides
    the file's size (the network is convolutional up to its global pool)."""
    src = os.fspath(src)
    kind = detect(src)
    size = parse_input_size(resolution)
    if kind in ("tflite", "tgz"):
        from .converters import tflite_model
        if kind == "tgz":
            from .converters.archive import read_tflite_from_tgz
            net = tflite_model.load(read_tflite_from_tgz(src), dequantize, name=src)
        else:
            net = tflite_model.load(src, dequantize)
        if size is not None and size != tuple(net.input_size):
            net.recorded_input_size = tuple(net.input_size)  # for convert's note
            net.input_size = size  # fully convolutional: any input size runs
        return net
    if kind == "keras":
        from .converters import keras_v3
        net = keras_v3.load_keras_zip(src, size)
        net.crop = KERAS_CROP
    else:
        net = _load_h5(src, size)
    if net.has_classifier and net.labels is None:
        net.labels = imagenet_labels(net.num_outputs)
    return net


def _load_h5(src: str, size: Optional[Tuple[int, int]]) -> Network:
    from .converters import keras_graph, keras_h5, keras_v3
    h5py = keras_h5._h5py()
    with keras_h5.h5_errors(src):
        with h5py.File(src, "r") as f:
            keras3 = keras_v3.is_keras3_weights(f)
    if keras3:
        net = keras_v3.load_weights_h5(src, size, name=src)
        net.crop = KERAS_CROP
        return net
    weights, names, config = keras_h5.read_h5(src)
    if config is not None:  # a full model (model.save('x.h5')): the config describes it
        net = keras_graph.to_network(config, weights, src, size)
        net.crop = KERAS_CROP
        return net
    m = KERAS_APP_NAME.search(os.path.basename(src))
    if size is None:
        if m is None:
            raise ModelFormatError(f"{src}: a Keras weights file does not record the input size "
                                   "(and its name is not a keras-applications one such as "
                                   "mobilenet_1_0_224_tf.h5): give it with --resolution H (or HxW)")
        size = (int(m.group(3)), int(m.group(3)))
    net = keras_h5.network_from_layers(weights, size, 1.0, names, src)
    net.alpha = alpha_of(net.layers)
    if m is not None:
        # keras-applications' own weights: the official ImageNet training's preprocessing
        # (central crop, [-1, 1]) and softmax classifier
        net.normalisation_assumed = net.head_activation_assumed = False
    else:
        # someone's Keras model saved as weights only (model.save_weights('w.h5')): Keras-made
        net.crop = KERAS_CROP
    return net


def set_preprocessing(net: Network, crop: Optional[float] = None, mean=None, std=None) -> None:
    """Override the stored central-crop fraction and input normalisation ((RGB - mean) / std:
    a number or 3 per-channel numbers each); out-of-range values are a TinyMobileError."""
    if crop is not None:
        crop = float(crop)
        if not 0.0 < crop <= 1.0:
            raise TinyMobileError(f"crop {crop:g}: the central-crop fraction must be in (0, 1]")
        net.crop = crop
    for what, value in (("mean", mean), ("std", std)):
        if value is None:
            continue
        v = np.asarray(value, np.float64).reshape(-1)
        if v.size == 1:
            v = np.repeat(v, 3)
        if v.size != 3 or not np.isfinite(v).all() or (what == "std" and (v <= 0).any()):
            raise TinyMobileError(f"--{what} {value}: expected one or three finite numbers"
                                  + (" > 0" if what == "std" else ""))
        setattr(net, f"input_{what}", v.astype(np.float32))


def convert(src: "os.PathLike[str] | str", dst: "os.PathLike[str] | str", dequantize: bool = False,
            labels: "os.PathLike[str] | str | None" = None,
            resolution=None, crop: Optional[float] = None, mean=None, std=None,
            force: bool = False) -> Network:
    """Convert ``src`` (TFLite, TF-slim .tgz, Keras .keras/.h5/.weights.h5) to a model file ``dst``.

    ``dequantize``: accept a quantized TFLite model and store it as float32 (weights dequantized).
    ``labels``: a text file with one class name per line (overrides the source's labels).
    ``resolution``: the input size, an int or (H, W) (Keras weights-only files carry none).
    ``crop``: the central-crop fraction the image API applies (default 0.875 for TF-slim /
    Coral / keras-applications files, 1.0 for Keras-made models); ``mean`` / ``std``: the input
    normalisation (RGB - mean) / std, overriding what the file implies.
    An existing ``dst`` is refused unless ``force=True`` (never a user's file replaced unasked).
    Returns the converted Network.
    """
    if not force and os.path.exists(os.fspath(dst)):
        raise TinyMobileError(f"{os.fspath(dst)} exists; not overwriting it (force=True / --force)")
    net = load_source(src, dequantize=dequantize, resolution=resolution)
    set_preprocessing(net, crop, mean, std)
    if labels is not None:
        if not net.has_classifier:
            raise TinyMobileError(f"{os.fspath(src)} is a feature extractor (no classifier): "
                                  "labels do not apply")
        n = 2 if net.output_activation == "sigmoid" else net.num_outputs  # binary: both classes
        net.labels = read_labels(labels, n)
    model_format.save(net, dst)
    return net
