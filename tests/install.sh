#!/bin/sh
# Description: `cmake --install` gives a tree that other projects build
# against, through pkg-config (shared and static) and find_package(ferry).
# Usage: install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v pkg-config >/dev/null || { echo "skip: pkg-config missing"; exit 77; }
# The compiler and flags of the build under test (tests/CMakeLists.txt), so
# that the consumers have its ABI: a -m32 build gets 32-bit consumers.
CC=${FERRY_CC:-cc}
CFLAGS=${FERRY_CFLAGS:-}

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(find "$tmp/prefix" -name ferry.pc)
test -n "$pc"
libdir=$(dirname "$(dirname "$pc")")
test -f "$tmp/prefix/include/ferry.h"
test -f "$tmp/prefix/include/ferry/version.h"
test -f "$tmp/prefix/include/ferry/export.h"
test -f "$libdir/cmake/ferry/ferryConfig.cmake"
export PKG_CONFIG_PATH="$(dirname "$pc")"
grep -q "^Version: " "$pc"

$CC $CFLAGS -std=c11 -Wall -Werror "$src/tests/install/consumer.c" \
   $(pkg-config --cflags --libs ferry) -Wl,-rpath,"$libdir" -o "$tmp/c_shared"
"$tmp/c_shared"
$CC $CFLAGS -std=c11 -Wall -Werror -DFERRY_STATIC_DEFINE $(pkg-config --cflags ferry) \
   "$src/tests/install/consumer.c" "$libdir/libferry.a" \
   $(pkg-config --libs-only-other --static ferry) $(pkg-config --libs-only-l --static ferry | sed 's/-lferry//') \
   -o "$tmp/c_static"
"$tmp/c_static"

cmake -S "$src/tests/install" -B "$tmp/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
      -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$CFLAGS" >/dev/null
cmake --build "$tmp/b" >/dev/null
"$tmp/b/consumer_shared"
"$tmp/b/consumer_static"
echo "install: 4 passed, 0 failed"
