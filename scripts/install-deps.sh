#!/bin/sh
# Installs, with apt-get, whatever a fresh Debian 12 machine lacks to build,
# test and benchmark ferry. Installs nothing when everything is present.
set -eu

# build: compiler, C library headers, cmake, make; tests: the sanitizer
# runtimes (libasan8, libubsan1 come with libgcc-12-dev), pkg-config (the
# install test), python3 (the
# Python interoperability test), util-linux (setpriv, for the CLI's
# permission test); fuzzing (make fuzz): clang, and libclang-rt-14-dev for
# libFuzzer and clang's sanitizer runtimes (clang-14 brings libstdc++-12-dev,
# which the libFuzzer runtime links against), llvm-14 for llvm-symbolizer
# (readable crash reports); the Windows build (make test-win): the mingw-w64
# cross compiler (win32 threads: ferry uses the Windows API only) and its
# headers, and Wine (wine64 is the loader, wine the standard suite, which
# --no-install-recommends would leave out).
PKGS="gcc libc6-dev libgcc-12-dev make cmake pkg-config python3 util-linux
clang libclang-rt-14-dev llvm-14
gcc-mingw-w64-x86-64-win32 mingw-w64-x86-64-dev wine wine64"
# the 32-bit build and the 32/64-bit interop test (make test-32): gcc -m32
# needs gcc-multilib (the i386 C library and libgcc); x86-64 hosts only.
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
  PKGS="$PKGS gcc-multilib"
fi

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
