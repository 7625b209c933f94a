"""The sdist holds everything a plain ``pip install tinymobile-X.tar.gz`` needs to build the C module
(piwheels builds the Raspberry Pi wheels from it), and the version lives in one place.

Cheap checks on the sdist's file list; the full one (pip install of the sdist into a fresh venv,
then ``tinymobile predict`` against this install) is ``make test-sdist``, which .ci/run runs.
"""
import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import tinymobile

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def working_tree_files() -> list:
    """The files a clone of this working tree has (tracked and untracked, not ignored), relative."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the sdist check copies the working tree's files")
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """(files in the sdist relative to its top folder, the sdist's PKG-INFO text), built by
    setuptools' PEP 517 hook, as pip and piwheels do, from a copy of the working tree."""
    pytest.importorskip("setuptools")
    files = working_tree_files()
    tmp = tmp_path_factory.mktemp("sdist")
    src, out = tmp / "src", tmp / "dist"
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    out.mkdir()
    hook = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    run = subprocess.run([sys.executable, "-c", hook, str(out)], cwd=src, capture_output=True, text=True)
    assert run.returncode == 0, f"building the sdist failed:\n{run.stderr[-3000:]}"
    name = run.stdout.strip().splitlines()[-1]
    with tarfile.open(out / name) as tar:
        members = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name]
        pkg_info = tar.extractfile(f"{name[:-len('.tar.gz')]}/PKG-INFO").read().decode()
    return set(members), pkg_info


def build_ffi_sources() -> list:
    """What csrc/build_ffi.py compiles, relative to the project root (its own c_sources())."""
    spec = importlib.util.spec_from_file_location("tinymobile_build_ffi", ROOT / "csrc" / "build_ffi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [Path(p).as_posix() for p in module.c_sources()]


def included_headers(sources: list) -> set:
    """Every project header the sources include, transitively (quoted includes, resolved beside the
    including file, then in csrc/ as build_ffi's include_dirs says)."""
    seen, todo = set(), list(sources)
    while todo:
        path = ROOT / todo.pop()
        for inc in INCLUDE.findall(path.read_text(encoding="utf-8")):
            for base in (path.parent, ROOT / "csrc"):
                hit = (base / inc).resolve()
                if hit.is_file():
                    rel = hit.relative_to(ROOT).as_posix()
                    if rel not in seen:
                        seen.add(rel)
                        todo.append(rel)
                    break
            else:
                pytest.fail(f"{path.relative_to(ROOT)} includes {inc!r}, which is not in the project")
    return seen


def test_sdist_holds_every_c_file_the_build_compiles_and_includes(sdist):
    names, _ = sdist
    sources = build_ffi_sources()
    assert len(sources) > 10, sources  # the glob found the kernels (not an empty list passing trivially)
    needed = set(sources) | included_headers(sources) | {"csrc/build_ffi.py", "csrc/tinymobile.h"}
    missing = sorted(needed - names)
    assert not missing, f"the sdist lacks files the C build needs (MANIFEST.in): {missing}"


def test_sdist_holds_the_package_its_data_and_build_files(sdist):
    names, _ = sdist
    tree = [f for f in working_tree_files() if f.startswith(("tinymobile/", "csrc/"))]
    needed = set(tree) | {"setup.py", "pyproject.toml", "MANIFEST.in", "README.md"}
    assert "tinymobile/data/imagenet_labels.txt" in needed
    missing = sorted(needed - names)
    assert not missing, f"the sdist lacks: {missing}"


def test_version_lives_in_one_place(sdist):
    _, pkg_info = sdist
    assert re.search(r"^Version: (.+)$", pkg_info, re.M).group(1) == tinymobile.__version__
    # setup.py reads tinymobile/__init__.py; no second copy of the number anywhere in the build files.
    for build_file in ("setup.py", "pyproject.toml", "MANIFEST.in"):
        text = (ROOT / build_file).read_text(encoding="utf-8")
        assert tinymobile.__version__ not in text, f"{build_file} repeats the version {tinymobile.__version__}"
