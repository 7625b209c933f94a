#!/bin/sh
# Unpacks Debian bookworm's Python 3.11 with numpy, cffi, Pillow, tqdm and pytest for a foreign
# architecture into a sysroot, for running the package under qemu user-mode emulation.
#
#   tests/arm/sysroot.sh DEB_ARCH DIR      (DEB_ARCH: arm64 or armhf)
#
# apt resolves the dependencies as if on an empty DEB_ARCH system (its own status file) and only
# downloads; dpkg -x unpacks. Nothing is installed on the build machine. Needs the DEB_ARCH
# package indices (tests/arm/install_deps.sh). Idempotent: DIR/.complete records the package list.
set -eu
ARCH="$1"
DIR="$2"
PACKAGES="python3.11-minimal libpython3.11-stdlib libpython3.11-dev python3-numpy python3-cffi-backend python3-pil python3-tqdm python3-pytest"
if [ -f "$DIR/.complete" ] && [ "$(cat "$DIR/.complete")" = "$PACKAGES" ]; then
    exit 0
fi
rm -rf "$DIR" "$DIR.apt"
mkdir -p "$DIR" "$DIR.apt/archives/partial"
DIR=$(cd "$DIR" && pwd)  # apt reads relative Dir:: paths as relative to its own folders
touch "$DIR.apt/status"
download() {
    apt-get -q -o APT::Architecture="$ARCH" -o Dir::State::status="$DIR.apt/status" \
        -o Dir::Cache::archives="$DIR.apt/archives" -o Debug::NoLocking=1 \
        --download-only --no-install-recommends -y install $PACKAGES > "$DIR.apt/log" 2>&1
}
# Package lists older than the mirror name files it no longer has: update once and retry.
download || { apt-get update -qq || true; download; } || {
    cat "$DIR.apt/log"; echo "sysroot: apt could not download the $ARCH packages"; exit 1; }
n=0
for deb in "$DIR.apt/archives"/*.deb; do
    dpkg -x "$deb" "$DIR"
    n=$((n + 1))
done
# What update-alternatives does on a real install: the reference BLAS/LAPACK as libblas.so.3.
triplet=$(ls "$DIR/usr/lib" | grep -- '-linux-gnu' | head -n1)
for lib in blas lapack; do
    ln -sf "$lib/lib$lib.so.3" "$DIR/usr/lib/$triplet/lib$lib.so.3"
done
rm -rf "$DIR.apt"
echo "$PACKAGES" > "$DIR/.complete"
echo "sysroot: $n $ARCH packages unpacked into $DIR"
