#!/bin/sh
# Installs, with apt, what `make test-arm` needs on a Debian bookworm build machine (as root):
# the ARM cross compilers, qemu user-mode emulation, and the arm64/armhf package indices that
# tests/arm/sysroot.sh downloads Python from. Idempotent: does nothing when all is there.
set -eu
PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-arm-linux-gnueabi libc6-dev-armel-cross qemu-user"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
need_update=""
for arch in arm64 armhf; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        $SUDO dpkg --add-architecture "$arch"
        need_update=1
    fi
    ls /var/lib/apt/lists/*_binary-${arch}_Packages* >/dev/null 2>&1 || need_update=1
done
if [ -n "$missing" ] || [ -n "$need_update" ]; then
    # A mirror of one foreign index can be mid-sync (a size mismatch); the others still update.
    $SUDO apt-get update -qq || echo "install_deps: apt-get update reported errors; continuing"
fi
if [ -n "$missing" ]; then
    echo "install_deps: apt-get install$missing"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "install_deps: $(aarch64-linux-gnu-gcc -dumpfullversion) aarch64 / $(arm-linux-gnueabihf-gcc -dumpfullversion) armhf / $(arm-linux-gnueabi-gcc -dumpfullversion) armel cross compilers, $(qemu-aarch64 --version | head -n1)"
