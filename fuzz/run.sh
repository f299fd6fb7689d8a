#!/bin/sh
# Runs each libFuzzer target for SECONDS (default 20) on a fresh copy of its
# seed corpus (fuzz/corpus/<target>/ is never written to) and prints one line
# per target. Exits non-zero if any target found a crash, a leak, a timeout or
# a broken invariant; the input that did it is kept in BUILD/fuzz-artifacts/.
#
#   sh fuzz/run.sh [BUILD [SECONDS]]     (make fuzz does this)
set -u

build=${1:-build-fuzz}
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
targets="fuzz_header fuzz_chan_header fuzz_ring fuzz_pool"

# Symbolised reports: Debian's llvm-14 installs llvm-symbolizer off PATH.
if ! command -v llvm-symbolizer >/dev/null 2>&1 &&
  [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
  export ASAN_SYMBOLIZER_PATH
fi
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export UBSAN_OPTIONS

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts" || exit 1

fuzz_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

failed=0
for t in $targets; do
  bin=$build/fuzz/$t
  case $t in
  fuzz_header) max_len=8448 ;;    # a whole 8 KiB segment image + trailer
  fuzz_chan_header) max_len=128 ;; # one cache line + trailer
  fuzz_ring) max_len=8222 ;;       # up to an 8 KiB ring + 30-byte prefix
  fuzz_pool) max_len=256 ;;        # one cache line + trailer + handles
  esac
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (make fuzz builds it)" >&2
    failed=1
    continue
  fi
  mkdir "$work/$t" && cp "$root/fuzz/corpus/$t/"* "$work/$t/" || exit 1
  seeds=$(ls "$work/$t" | wc -l)
  start=$(date +%s)
  "$bin" "$work/$t" -max_total_time="$secs" -timeout=5 -max_len="$max_len" \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" >"$work/$t.log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(fuzz_stat number_of_executed_units "$work/$t.log")
  rate=$(fuzz_stat average_exec_per_sec "$work/$t.log")
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-16s ok    %9s execs in %ss (%s/s), corpus %s -> %s\n' \
      "$t" "${execs:-?}" "$took" "${rate:-?}" "$seeds" "$(ls "$work/$t" | wc -l)"
  else
    failed=1
    printf 'fuzz: %-16s FAIL  exit %s after %s execs in %ss\n' \
      "$t" "$rc" "${execs:-?}" "$took"
    # the report: from its first line (sanitizer, invariant, timeout), or
    # the end of the log
    first=$(grep -n -m 1 -E 'ERROR:|invariant violated|runtime error|deadly signal|ALARM|out-of-memory' "$work/$t.log" | cut -d: -f1)
    echo "----- $t: libFuzzer log -----"
    if [ -n "$first" ]; then
      sed -n "$first,$((first + 40))p" "$work/$t.log"
    else
      tail -n 40 "$work/$t.log"
    fi
    unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/$t.log" | tail -n 1)
    if [ -n "$unit" ]; then
      echo "----- reproduce: $bin $unit"
    fi
  fi
done
exit $failed
