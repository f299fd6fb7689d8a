#!/bin/sh
# Runs the Windows build's whole ctest suite under Wine:
#   sh scripts/wine-test.sh BUILD_DIR [ctest args...]
# ctest starts each test program through CMAKE_CROSSCOMPILING_EMULATOR
# (wine, set by cmake/x86_64-w64-mingw32.cmake). The Wine prefix lives in
# the build directory and is initialised once; one wineserver is kept
# running for the whole run (every wine start would otherwise start and stop
# its own), and stopped at the end.
set -eu
build=$1
shift
WINEPREFIX=$(cd "$build" && pwd)/wineprefix
WINEDEBUG=${WINEDEBUG:--all}
WINEARCH=win64
WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=} # no Mono/Gecko prompts
export WINEPREFIX WINEDEBUG WINEARCH WINEDLLOVERRIDES
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "wine-test: initialising the Wine prefix $WINEPREFIX"
  wineboot --init >/dev/null 2>&1 || true
  wineserver --wait
fi
wineserver --persistent
trap 'wineserver --kill 2>/dev/null || true' EXIT INT TERM
# The first program of a wineserver's life also starts Wine's background
# services (services.exe, winedevice.exe, ...), which inherit its standard
# handles and live as long as the wineserver. Started by a test, they would
# hold ctest's output pipe open, and ctest would wait for them until the
# test's timeout. So start them here, with output going nowhere.
wine cmd.exe /c exit </dev/null >/dev/null 2>&1 || true
# Wine is slower to start processes and to wake sleepers: scale every test
# timeout (never the assertions) by one multiplier.
FERRY_TEST_TIMEOUT_MULTIPLIER=${FERRY_TEST_TIMEOUT_MULTIPLIER:-4}
export FERRY_TEST_TIMEOUT_MULTIPLIER
ctest --test-dir "$build" "$@"
