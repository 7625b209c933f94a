"""Plain NumPy reference of every operator: the oracle the C kernels are tested against.

Written to be read, not to be fast. All tensors are NHWC float32; computation is in float64 and
rounded to float32 at the end of each operator.
"""
from __future__ import annotations

import numpy as np

from .fixedpoint import softmax  # noqa: F401  (product code; re-exported for the tests)
from .network import Network, conv_output


def pad_input(x: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """Zero-pad (N, H, W, C) for a 3x3 convolution so that a 'valid' window gives the output."""
    n, h, w, c = x.shape
    oh, top = conv_output(h, stride, padding)
    ow, left = conv_output(w, stride, padding)
    bottom = (oh - 1) * stride + 3 - h - top
    right = (ow - 1) * stride + 3 - w - left
    return np.pad(x, ((0, 0), (top, max(bottom, 0)), (left, max(right, 0)), (0, 0)))


def conv3x3(x, w, b, stride, padding, clamp=(-np.inf, np.inf)):
    """Full 3x3 convolution: x (N, H, W, Cin), w (3, 3, Cin, Cout), b (Cout,) -> (N, OH, OW, Cout)."""
    n, h, wd, _ = x.shape
    oh, _ = conv_output(h, stride, padding)
    ow, _ = conv_output(wd, stride, padding)
    xp = pad_input(x.astype(np.float64), stride, padding)
    out = np.zeros((n, oh, ow, w.shape[3]), np.float64) + b.astype(np.float64)
    for ky in range(3):
        for kx in range(3):
            window = xp[:, ky:ky + (oh - 1) * stride + 1:stride, kx:kx + (ow - 1) * stride + 1:stride, :]
            out += window @ w[ky, kx].astype(np.float64)
    return np.clip(out, *clamp).astype(np.float32)


def depthwise3x3(x, w, b, stride, padding, clamp=(-np.inf, np.inf)):
    """Depthwise 3x3 convolution: x (N, H, W, C), w (3, 3, C), b (C,) -> (N, OH, OW, C)."""
    n, h, wd, c = x.shape
    oh, _ = conv_output(h, stride, padding)
    ow, _ = conv_output(wd, stride, padding)
    xp = pad_input(x.astype(np.float64), stride, padding)
    out = np.zeros((n, oh, ow, c), np.float64) + b.astype(np.float64)
    for ky in range(3):
        for kx in range(3):
            window = xp[:, ky:ky + (oh - 1) * stride + 1:stride, kx:kx + (ow - 1) * stride + 1:stride, :]
            out += window * w[ky, kx].astype(np.float64)
    return np.clip(out, *clamp).astype(np.float32)


def pointwise(x, w, b, clamp=(-np.inf, np.inf)):
    """1x1 convolution / matrix product: x (..., Cin), w (Cin, Cout), b (Cout,) -> (..., Cout)."""
    out = x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64)
    return np.clip(out, *clamp).astype(np.float32)


def average_pool(x):
    """Global average pool: (N, H, W, C) -> (N, C)."""
    return x.astype(np.float64).mean(axis=(1, 2)).astype(np.float32)


def fully_connected(x, w, b):
    """x (N, Cin), w (Cin, classes), b (classes,) -> logits (N, classes)."""
    return pointwise(x, w, b)


def max_pool(x):
    """Global max pool: (N, H, W, C) -> (N, C)."""
    return x.max(axis=(1, 2)).astype(np.float32)


def run_layer(layer, x: np.ndarray, network: Network) -> np.ndarray:
    """One layer of ``network`` on x, by the layer's kind."""
    clamp = network.clamp
    if layer.kind == "conv3x3":
        return conv3x3(x, layer.w, layer.b, layer.stride, network.padding, clamp)
    if layer.kind == "depthwise3x3":
        return depthwise3x3(x, layer.w, layer.b, layer.stride, network.padding, clamp)
    if layer.kind == "pointwise":
        return pointwise(x, layer.w, layer.b, clamp)
    if layer.kind == "global_pool":
        return max_pool(x) if layer.mode == "max" else average_pool(x)
    if layer.kind == "fully_connected":
        return fully_connected(x, layer.w, layer.b)
    raise ValueError(f"unknown layer kind {layer.kind!r}")


def forward(network: Network, x: np.ndarray, until: str = None) -> np.ndarray:
    """Run ``network`` on preprocessed input x (N, H, W, 3); logits (or features) out.

    ``until`` stops after the named layer and returns its output.
    """
    for layer in network.layers:
        x = run_layer(layer, x, network)
        if layer.name == until:
            break
    return x
