"""Training-time augmentation: extra views of a training image (mirror, corner crops), each of which
becomes one more training embedding. Arrays are (H, W, 3) uint8 RGB, before the model's own
preprocessing (its central crop and resize apply to every view)."""
from __future__ import annotations

from typing import List

import numpy as np

#: What ``views`` can make: "none" (the image itself), "flip" (+ its mirror image), "crops"
#: (+ four corner crops of CROP_FRACTION of each side, and their mirrors).
AUGMENTATIONS = ("none", "flip", "crops")
CROP_FRACTION = 0.8


def views(rgb: np.ndarray, augment: str = "none") -> List[np.ndarray]:
    """The views of ``rgb`` (H, W, 3) for ``augment`` (see AUGMENTATIONS): 1, 2 or 10 arrays,
    the image itself first."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r} (choose {', '.join(AUGMENTATIONS)})")
    out = [rgb]
    if augment == "none":
        return out
    out.append(np.ascontiguousarray(rgb[:, ::-1]))
    if augment == "flip":
        return out
    h, w = rgb.shape[:2]
    ch, cw = max(1, int(round(h * CROP_FRACTION))), max(1, int(round(w * CROP_FRACTION)))
    for top in (0, h - ch):
        for left in (0, w - cw):
            crop = np.ascontiguousarray(rgb[top:top + ch, left:left + cw])
            out += [crop, np.ascontiguousarray(crop[:, ::-1])]
    return out
