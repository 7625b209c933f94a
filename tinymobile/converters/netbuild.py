"""What every converter derives the same way from the layers it found."""
from __future__ import annotations

from ..network import BASE_CONV0, BASE_POINTWISE

#: Width multipliers people build MobileNet v1 with (TF-slim, keras.applications, papers).
COMMON_ALPHAS = (0.25, 0.35, 0.5, 0.75, 1.0, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0)
#: The base channel counts (conv0, then the 13 pointwise layers) at alpha = 1.
_BASE = (BASE_CONV0,) + BASE_POINTWISE


def alpha_of(layers: list) -> float:
    """The width multiplier that gives these layers' channel counts: the common one whose
    ``int(c * alpha)`` (Keras; TF-slim's ``max(int(c * alpha), 8)``) reproduces every count,
    else conv0's channels / 32 (so 11 channels read as 0.35, not 0.34375)."""
    counts = [layers[0].cout] + [l.cout for l in layers[1:] if type(l).__name__ == "Pointwise"]
    for a in COMMON_ALPHAS:
        want = [int(c * a) for c in _BASE[:len(counts)]]
        slim = [max(int(c * a), 8) for c in _BASE[:len(counts)]]
        if counts in (want, slim):
            return a
    return round(layers[0].cout / BASE_CONV0, 6)


#: Input tensor names of graphs exported from Keras / SavedModels (TFLiteConverter), whose
#: users resize whole images; TF-slim and Coral graphs name their input "input".
_KERAS_INPUT_PREFIXES = ("serving_default_",)


def default_crop(inp) -> float:
    """The central-crop fraction to store: 1.0 for graphs exported from Keras (input tensor named
    ``serving_default_...``), else TF-slim's 0.875. ``convert --crop`` overrides it."""
    return 1.0 if inp.name.startswith(_KERAS_INPUT_PREFIXES) else 0.875
