#!/usr/bin/env bash
# The package as a user (or piwheels, which builds Raspberry Pi wheels from the sdist) gets it:
# `python -m build` makes the sdist and a wheel (built from that sdist) out of a copy of the working
# tree; `pip install tinymobile-X.tar.gz`, nothing else, into a fresh venv; then the installed CLI
# converts a float and a quantized model from ../shared and `tinymobile predict` on the sample
# images must print exactly what the development install (.venv, `make install`) prints.
#
#   bash tests/packaging/install_sdist.sh      (make test-sdist; .ci/run calls it)
#
# Needs: .venv from `make install` (with the `build` frontend, test extra), ../shared, and pip able
# to fetch setuptools/wheel/cffi/numpy/Pillow/tqdm (or find them in its cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
DEV=$ROOT/.venv/bin
SHARED=${SHARED:-$ROOT/../shared}
[ -x "$DEV/tinymobile" ] || { echo "install_sdist: no development install in .venv (run make install)"; exit 2; }
[ -d "$SHARED/models" ] || { echo "install_sdist: $SHARED/models not found (../shared is needed)"; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinymobile-sdist.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VERSION=$("$DEV/python" -c 'import tinymobile; print(tinymobile.__version__)')

# The working tree without ignored files (no .venv, build outputs, egg-info), as a clone would have
# it plus uncommitted work: setuptools writes its egg-info into the source tree it builds.
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    xargs -0 cp --parents -t "$WORK/src" --
# Run from $WORK: in the project root, `python -m build` would import ./build/ (make's outputs).
(cd "$WORK" && "$DEV/python" -m build --outdir "$WORK/dist" "$WORK/src") > "$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; echo "install_sdist: python -m build failed"; exit 1; }
SDIST=$WORK/dist/tinymobile-$VERSION.tar.gz
WHEEL=$(ls "$WORK"/dist/tinymobile-"$VERSION"-*.whl)
"$DEV/python" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
missing = [want for want in ("tinymobile/_native", "tinymobile/data/imagenet_labels.txt", "tinymobile/cli.py")
           if not any(n.startswith(want) for n in names)]
sys.exit(f"install_sdist: the wheel lacks {missing}" if missing else 0)
EOF

"$PYTHON" -m venv "$WORK/venv"
(cd "$WORK" && "$WORK/venv/bin/pip" install --quiet "$SDIST") > "$WORK/pip.log" 2>&1 ||
    { tail -30 "$WORK/pip.log"; echo "install_sdist: pip install $(basename "$SDIST") failed"; exit 1; }
NEW=$WORK/venv/bin
where=$(cd "$WORK" && "$NEW/python" -c 'import tinymobile; print(tinymobile.__file__)')
case "$where" in "$WORK/venv/"*) ;; *) echo "install_sdist: tinymobile imported from $where, not the venv"; exit 1;; esac
[ "$(cd "$WORK" && "$NEW/tinymobile" --version)" = "tinymobile $VERSION" ] ||
    { echo "install_sdist: tinymobile --version is not $VERSION"; exit 1; }

compared=0
for src in "$SHARED/fixtures/mobilenet_0.25_128_f32.tflite" "$SHARED/models/mobilenet_v1_0.25_128_quant.tflite"; do
    name=$(basename "$src" .tflite)
    for side in dev new; do
        bin=$DEV; [ $side = new ] && bin=$NEW
        (cd "$WORK" && "$bin/tinymobile" -q convert "$src" -o "$WORK/$name.$side.npz" > /dev/null)
        (cd "$WORK" && "$bin/tinymobile" -q predict -m "$WORK/$name.$side.npz" -f json -k 5 -t 2 \
            "$SHARED/images/samples") > "$WORK/$name.$side.json"
    done
    lines=$(wc -l < "$WORK/$name.new.json")
    [ "$lines" -eq "$(ls "$SHARED/images/samples" | wc -l)" ] ||
        { echo "install_sdist: $name: $lines results for $(ls "$SHARED/images/samples" | wc -l) images"; exit 1; }
    if ! cmp -s "$WORK/$name.dev.json" "$WORK/$name.new.json"; then
        diff "$WORK/$name.dev.json" "$WORK/$name.new.json" | head
        echo "install_sdist: $name: the sdist install predicts differently from .venv"; exit 1
    fi
    compared=$((compared + lines))
done
echo "install_sdist: $(basename "$SDIST") and $(basename "$WHEEL") built; the sdist installs with plain pip" \
     "into a fresh venv; tinymobile predict equals the development install on $compared image x model pairs"
