"""Folding BatchNorm into the preceding convolution's weights and bias."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def fold(w: np.ndarray, gamma, beta, mean, var, eps: float = 1e-3,
         bias=None) -> Tuple[np.ndarray, np.ndarray]:
    """Fold ``y = gamma * (conv(x) + bias - mean) / sqrt(var + eps) + beta`` into (w', b').

    ``w``'s last axis is the output channel. Computed in float64, returned as float32.
    """
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    b = np.zeros_like(scale) if bias is None else np.asarray(bias, np.float64)
    w2 = np.asarray(w, np.float64) * scale
    b2 = (b - np.asarray(mean, np.float64)) * scale + np.asarray(beta, np.float64)
    return w2.astype(np.float32), b2.astype(np.float32)
