import ast
import struct

from setuptools import find_packages, setup


def version() -> str:
    """The one version string: ``__version__`` in tinymobile/__init__.py, read (not imported:
    importing the package needs its C module, which this script builds)."""
    tree = ast.parse(open("tinymobile/__init__.py", encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            return ast.literal_eval(node.value)
    raise RuntimeError("tinymobile/__init__.py defines no __version__")


# TFLite (the tests' second oracle) and its quantizer have no wheels for 32-bit ARM (Raspberry Pi
# OS 32-bit, whose 64-bit kernel may report "aarch64", so no platform_machine marker can tell):
# the tests that use them skip there. The extension is built on the machine that runs it, so
# this is evaluated there.
LITERT = ["ai-edge-litert>=1.2", "ai-edge-quantizer>=0.10"] if struct.calcsize("P") == 8 else []
# Ray Data (tinymobile.ray_data) for the tests on x86-64 only: it is large, and a Raspberry Pi's
# `make install` should not fetch it (its tests skip without it). dask: the docs/SCALE.md recipe.
RAY = ["ray[data]>=2.9"]
TEST_SCALE = ['ray[data]>=2.9; platform_machine == "x86_64"', "dask>=2023.1"]

setup(
    name="tinymobile",
    version=version(),
    description="A small, fast, exact CPU inference engine for MobileNet v1 (NumPy + cffi + C kernels)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["tinymobile", "tinymobile.*"]),
    package_data={"tinymobile": ["data/*"]},
    install_requires=["numpy>=1.24", "cffi>=1.15", "Pillow>=9.4", "tqdm>=4.64"],
    cffi_modules=["csrc/build_ffi.py:ffi"],
    extras_require={
        "convert": ["h5py>=3.7"],
        "test": ["pytest>=7", "hypothesis>=6", "h5py>=3.7", "build>=1"] + LITERT + TEST_SCALE,
        "ray": RAY,
        "bench": ["onnx>=1.14", "onnxruntime>=1.16", "ai-edge-litert>=1.2", "matplotlib>=3.6",
                  "ai-edge-quantizer>=0.10"],
    },
    entry_points={"console_scripts": ["tinymobile=tinymobile.cli:main"]},
)
