"""Keras 3 weights of ``keras.applications.MobileNet``: ``.weights.h5`` and ``.keras`` files.

Keras 3 ``save_weights`` layout: ``layers/<attribute name>/vars/<0..n>`` datasets, each layer's
``vars`` group carrying the layer's name (``conv_dw_1``, ``conv_pw_1_bn``...) in its ``name``
attribute, and the model's name (``mobilenet_0.25_128`` for keras.applications) on the root ``vars``
group. The weights are in the same order as Keras 2's (kernel, bias; gamma, beta, moving mean,
moving variance), so the network is assembled by :func:`keras_h5.network_from_layers`.

A ``.keras`` file is a zip holding ``model.weights.h5`` (read in memory) and ``config.json`` (the
input size is taken from its input layer's ``batch_shape``).
"""
from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ModelFormatError
from ..limits import MAX_INPUT_SIZE
from ..network import BASE_CONV0, Network
from .keras_h5 import _decode, _h5py, h5_errors, network_from_layers, read_dataset

#: Largest ``model.weights.h5`` / ``config.json`` read from a ``.keras`` zip.
MAX_WEIGHTS_BYTES = 512 << 20
MAX_CONFIG_BYTES = 16 << 20


def is_keras3_weights(f) -> bool:
    """True for an open h5py File in the Keras 3 layout."""
    return "layers" in f and "layer_names" not in f.attrs


def read_layers(f, source: str) -> Tuple[Dict[str, List[np.ndarray]], Optional[str]]:
    """({layer name: [weights]}, model name) from an open Keras 3 weights h5py File."""
    h5py = _h5py()
    layers = f.get("layers")
    if not isinstance(layers, h5py.Group):
        raise ModelFormatError(f"{source}: no 'layers' group: not a Keras 3 weights file")
    out: Dict[str, List[np.ndarray]] = {}
    for key in layers:
        group = layers[key]
        if not isinstance(group, h5py.Group):
            continue
        vars_ = group.get("vars")
        name = None
        for g in (vars_, group):
            if isinstance(g, h5py.Group) and "name" in g.attrs:
                name = _decode(g.attrs["name"])
                break
        if name is None:
            raise ModelFormatError(f"{source}: layer group {key!r} carries no layer name "
                                   "(expected a 'name' attribute, as Keras 3 writes)")
        weights = []
        if isinstance(vars_, h5py.Group):
            keys = sorted((k for k in vars_ if k.isdigit()), key=int)
            for k in keys:
                weights.append(read_dataset(vars_[k], f"{source}: variable {key}/vars/{k}"))
        out[name] = weights
    model_name = None
    root_vars = f.get("vars")
    if isinstance(root_vars, h5py.Group) and "name" in root_vars.attrs:
        model_name = _decode(root_vars.attrs["name"])
    return out, model_name


def resolution_from_model_name(name: Optional[str]) -> Optional[int]:
    """keras.applications names its MobileNet ``mobilenet_{alpha:.2f}_{rows}``."""
    m = re.fullmatch(r"mobilenet_\d+(?:\.\d+)?_(\d+)", name or "")
    return int(m.group(1)) if m else None


def load_weights_h5(source, resolution: Optional[int] = None, name: str = "") -> Network:
    """A Keras 3 ``.weights.h5`` (path or file object) -> Network.

    ``resolution``: the input size; default from the model name, else 224.
    """
    h5py = _h5py()
    name = name or str(source)
    with h5_errors(name):
        f = h5py.File(source, "r")
        with f:
            weights, model_name = read_layers(f, name)
    res = resolution or resolution_from_model_name(model_name) or 224
    net = network_from_layers(weights, res, 1.0)
    net.alpha = net.layers[0].cout / BASE_CONV0
    return net


def load_keras_zip(path: str, resolution: Optional[int] = None) -> Network:
    """A Keras 3 ``.keras`` archive -> Network (nothing is extracted to disk)."""
    try:
        zf = zipfile.ZipFile(path)
    except Exception as e:  # noqa: BLE001 — BadZipFile, OSError, NotImplementedError (odd zip versions)...
        raise ModelFormatError(f"{path}: not a .keras archive ({type(e).__name__}: {e})") from None
    with zf:
        weights = _member(zf, "model.weights.h5", MAX_WEIGHTS_BYTES, path)
        if weights is None:
            raise ModelFormatError(f"{path}: the archive has no model.weights.h5: not a Keras 3 "
                                   ".keras file")
        config_bytes = _member(zf, "config.json", MAX_CONFIG_BYTES, path)
    if resolution is None and config_bytes is not None:
        resolution = _resolution_from_config(config_bytes)
    return load_weights_h5(io.BytesIO(weights), resolution, name=path)


def _member(zf: zipfile.ZipFile, member: str, limit: int, path: str) -> Optional[bytes]:
    try:
        info = zf.getinfo(member)
    except KeyError:
        return None
    if info.file_size > limit:
        raise ModelFormatError(f"{path}: {member} declares {info.file_size} bytes: refused")
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, NotImplementedError,
            RuntimeError, EOFError) as e:
        raise ModelFormatError(f"{path}: {member} is unreadable ({e})") from None
    if len(data) > limit:
        raise ModelFormatError(f"{path}: {member} is too large")
    return data


def _resolution_from_config(data: bytes) -> Optional[int]:
    """Input height from the first InputLayer's ``batch_shape`` in a Keras 3 config.json."""
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    stack, seen = [config], 0
    while stack and seen < 100000:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            if node.get("class_name") == "InputLayer" and isinstance(node.get("config"), dict):
                cfg = node["config"]
                shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int) \
                        and shape[1] == shape[2] and 0 < shape[1] <= MAX_INPUT_SIZE:
                    return shape[1]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
