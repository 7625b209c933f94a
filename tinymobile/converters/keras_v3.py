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
from ..network import Network
from . import keras_graph
from .netbuild import alpha_of
from .keras_h5 import _decode, _h5py, h5_errors, network_from_layers, read_dataset

#: Largest ``model.weights.h5`` / ``config.json`` read from a ``.keras`` zip.
MAX_WEIGHTS_BYTES = 512 << 20
MAX_CONFIG_BYTES = 16 << 20


def is_keras3_weights(f) -> bool:
    """True for an open h5py File in the Keras 3 layout."""
    return "layers" in f and "layer_names" not in f.attrs


def read_layers(f, source: str) -> Tuple[Dict[str, List[np.ndarray]], List[str], List[str]]:
    """({layer name: [weights]}, every layer's attribute key and name, model names (outermost
    first)) from an open Keras 3 weights h5py File; nested models' layers (``layers/functional/
    layers/...``) are read too."""
    h5py = _h5py()
    layers = f.get("layers")
    if not isinstance(layers, h5py.Group):
        raise ModelFormatError(f"{source}: no 'layers' group: not a Keras 3 weights file")
    out: Dict[str, List[np.ndarray]] = {}
    names: List[str] = []
    models: List[str] = []
    root_vars = f.get("vars")
    if isinstance(root_vars, h5py.Group) and "name" in root_vars.attrs:
        models.append(_decode(root_vars.attrs["name"]))
    _read_group(layers, source, out, names, models, "layers", 0)
    return out, names, models


def _read_group(layers, source: str, out, names, models, path: str, depth: int) -> None:
    h5py = _h5py()
    if depth > 8:
        raise ModelFormatError(f"{source}: models nested more than 8 deep")
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
        inner = group.get("layers")
        if isinstance(inner, h5py.Group):  # a nested Functional / Sequential model
            if name is not None:
                models.append(name)
            names.append(key)
            _read_group(inner, source, out, names, models, f"{path}/{key}/layers", depth + 1)
            continue
        if name is None:
            raise ModelFormatError(f"{source}: layer group {path}/{key} carries no layer name "
                                   "(expected a 'name' attribute, as Keras 3 writes)")
        weights = []
        if isinstance(vars_, h5py.Group):
            keys = sorted((k for k in vars_ if k.isdigit()), key=int)
            for k in keys:
                weights.append(read_dataset(vars_[k], f"{source}: variable {path}/{key}/vars/{k}"))
        if name in out and (weights or out[name]):
            raise ModelFormatError(f"{source}: two layers named {name!r} hold weights")
        if weights or name not in out:
            out[name] = weights
        names += [key, name]


def resolution_from_model_name(name: Optional[str]) -> Optional[int]:
    """keras.applications names its MobileNet ``mobilenet_{alpha:.2f}_{rows}``."""
    m = re.fullmatch(r"mobilenet_\d+(?:\.\d+)?_(\d+)", name or "")
    return int(m.group(1)) if m else None


def load_weights_h5(source, resolution=None, name: str = "") -> Network:
    """A Keras 3 ``.weights.h5`` (path or file object), which has no model config -> Network.

    The architecture comes from the layer names and weight shapes
    (:func:`keras_h5.network_from_layers`); ``resolution`` (an int or (H, W)) is the input size,
    else the keras.applications model name (``mobilenet_0.25_160``, outer or nested) tells it;
    else it is refused (the file does not record it).
    """
    h5py = _h5py()
    name = name or str(source)
    with h5_errors(name):
        f = h5py.File(source, "r")
        with f:
            weights, names, models = read_layers(f, name)
    res = resolution
    if res is None:
        res = next((r for r in map(resolution_from_model_name, models) if r), None)
    if res is None:
        raise ModelFormatError(f"{name}: a .weights.h5 file does not record the input size "
                               f"(model name {models[0] if models else '?'!r}): give it with "
                               "--resolution H (or HxW)")
    net = network_from_layers(weights, res, 1.0, names, name)
    net.alpha = alpha_of(net.layers)
    return net


def load_keras_zip(path: str, resolution=None) -> Network:
    """A Keras 3 ``.keras`` archive -> Network (nothing is extracted to disk). The architecture
    and input size come from its ``config.json`` (:mod:`keras_graph`), the weights from
    ``model.weights.h5``."""
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
    if config_bytes is None:
        return load_weights_h5(io.BytesIO(weights), resolution, name=path)
    try:
        config = json.loads(config_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelFormatError(f"{path}: config.json is not JSON text") from None
    h5py = _h5py()
    with h5_errors(path):
        f = h5py.File(io.BytesIO(weights), "r")
        with f:
            layer_weights, _, _ = read_layers(f, path)
    return keras_graph.to_network(config, layer_weights, path, resolution)


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
