"""Build-machine half of the ARM end-to-end check (tests/arm/arm_e2e.py is the emulated half).

Usage: python tests/arm/e2e_prepare.py SHARED OUTDIR

Converts to tinymobile .npz files in OUTDIR (the ARM side has no h5py): the Keras 2 h5 fixtures
of SHARED/fixtures, and two of the real pretrained models of SHARED/models, dequantized to float
(the fixtures' outputs barely depend on the input: their random BatchNorm statistics saturate
ReLU6, so they cannot show an input-dependent bug; the real models can), and one real uint8 model as it is (integer
kernels). Then writes OUTDIR/x86_results.npz: for each float model, the logits (N, classes)
and top-5 class indices (N, 5) that tinymobile gives on this machine for the images of
SHARED/images/samples (``images``, sorted by name); for the quantized one its quantized input,
its quantized output and the top-5; and the ISA it ran on (``isa``).
"""
from __future__ import annotations

import os
import sys
from typing import List

import numpy as np

import tinymobile
from tinymobile import model_format
from tinymobile.converters import keras_h5, tflite_model

#: (alpha, resolution, Keras 2 h5 fixture); reference_{alpha}_{resolution}.npz has TF's logits.
FIXTURES = [(0.25, 128, "mobilenet_2_5_128_tf.h5"), (0.5, 160, "mobilenet_5_0_160_tf.h5"),
            (1.0, 224, "mobilenet_1_0_224_tf.h5")]
#: name -> real pretrained uint8 TFLite model of SHARED/models, run dequantized to float32.
REAL_MODELS = {"real_0.5_160": "mobilenet_v1_0.5_160_quant.tflite",
               "real_0.75_192": "mobilenet_v1_0.75_192_quant.tflite"}
#: name -> real uint8 TFLite model run as it is, on the integer kernels.
QUANT_MODELS = {"quant_0.5_160": "mobilenet_v1_0.5_160_quant.tflite"}


def model_name(alpha: float, resolution: int) -> str:
    return f"mobilenet_{alpha:g}_{resolution}"


def sample_images(shared: str) -> List[str]:
    folder = os.path.join(shared, "images", "samples")
    return sorted(f for f in os.listdir(folder) if f.lower().endswith((".bmp", ".jpg", ".jpeg", ".png")))


def main(argv: List[str]) -> int:
    if len(argv) != 3:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    shared, outdir = argv[1], argv[2]
    os.makedirs(outdir, exist_ok=True)
    images = sample_images(shared)
    paths = [os.path.join(shared, "images", "samples", image) for image in images]
    networks = {}
    for alpha, resolution, h5 in FIXTURES:
        networks[model_name(alpha, resolution)] = keras_h5.load(
            os.path.join(shared, "fixtures", h5), resolution=resolution)
    for name, tflite in REAL_MODELS.items():
        networks[name] = tflite_model.load(os.path.join(shared, "models", tflite), dequantize=True)
    results = {"isa": np.array(tinymobile.isa()), "images": np.array(images)}
    for name, network in networks.items():
        path = os.path.join(outdir, name + ".npz")
        model_format.save(network, path)
        model = tinymobile.load(path)
        logits = model.forward(model.preprocess(paths))
        order = np.argsort(-logits, axis=1, kind="stable")
        results[name + "/logits"] = logits
        results[name + "/top5"] = order[:, :5]
        # How far apart ranks 1..6 are: a tiny gap would make the top-5 order depend on
        # rounding rather than on correctness.
        ranked = np.take_along_axis(logits, order[:, :6], axis=1)
        gap = float(np.min(-np.diff(ranked, axis=1)))
        print(f"x86 ({tinymobile.isa()}): {name}: top-5 of {len(images)} images "
              f"(smallest logit gap in the top 6: {gap:.2e})")
    for name, tflite in QUANT_MODELS.items():
        path = os.path.join(outdir, name + ".npz")
        model_format.save(tflite_model.load(os.path.join(shared, "models", tflite)), path)
        model = tinymobile.load(path)
        xq = model.quantize_input(model.preprocess(paths))
        results[name + "/input"] = xq
        results[name + "/output"] = model.forward(xq)
        results[name + "/top5"] = np.argsort(-model.predict(paths), axis=1, kind="stable")[:, :5]
        print(f"x86 ({tinymobile.isa()}): {name}: {model.dtype} outputs and top-5 of {len(images)} images")
    np.savez(os.path.join(outdir, "x86_results.npz"), **results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
