#!/bin/sh
# Builds the config-loader fuzz target with clang in its own build dir and runs it for SECONDS.
# Fails on a crash, a leak, a slow input (hang) or a build error.
# Usage: tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS
# BUILD_DIR is the fuzz build dir (e.g. build-fuzz). Given the regular gcc build dir instead, the
# script builds in build-fuzz next to it and leaves the regular build untouched.
#
# The corpus grows in BUILD_DIR/corpus (kept between runs); seeds are configs/*.toml. Crashing
# inputs land in BUILD_DIR/artifacts; reproduce one with
#   BUILD_DIR/tests/fuzz/config_loader_fuzz BUILD_DIR/artifacts/crash-...
# Environment: VPCGUARD_OVS_BUILD_DIR (reuse a built OVS library; the fuzz target does not link it,
# but configuring the project checks it), JOBS (default 2).
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$1
seconds=$2
case $seconds in
  ''|*[!0-9]*) echo "run-fuzz.sh: SECONDS must be a number, not '$seconds'" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")/../.." && pwd)
jobs=${JOBS:-2}

# Given the regular (gcc) build dir, leave it alone: fuzz in build-fuzz next to it, reusing its
# Open vSwitch library setting. A build dir cannot be switched to another compiler.
if [ -f "$build_dir/CMakeCache.txt" ] &&
   ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' "$build_dir/CMakeCache.txt"; then
  if [ -z "${VPCGUARD_OVS_BUILD_DIR:-}" ]; then
    VPCGUARD_OVS_BUILD_DIR=$(sed -n 's/^VPCGUARD_OVS_BUILD_DIR:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
  fi
  regular=$build_dir
  build_dir=$(dirname "$build_dir")/build-fuzz
  echo "run-fuzz.sh: $regular is not a clang build; fuzzing in $build_dir"
fi

set -- -S "$src" -B "$build_dir" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVPCGUARD_FUZZ=ON -DVPCGUARD_SANITIZE=ON
if [ -n "${VPCGUARD_OVS_BUILD_DIR:-}" ]; then
  set -- "$@" "-DVPCGUARD_OVS_BUILD_DIR=$VPCGUARD_OVS_BUILD_DIR"
fi
mkdir -p "$build_dir"
cmake "$@" >"$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log" >&2; exit 1; }
cmake --build "$build_dir" --target config_loader_fuzz -j "$jobs"

corpus=$build_dir/corpus/config_loader
seeds=$build_dir/corpus/seeds
artifacts=$build_dir/artifacts
mkdir -p "$corpus" "$seeds" "$artifacts"
cp "$src"/configs/*.toml "$seeds"/
# A directory config becomes one seed whose files are joined by the "#---" line the target splits
# on, so the merge path starts covered.
for dir in "$src"/configs/*/; do
  [ -d "$dir" ] || continue
  seed=$seeds/dir-$(basename "$dir").toml
  : >"$seed"
  for f in "$dir"*.toml; do
    [ -s "$seed" ] && printf '\n#---\n' >>"$seed"
    cat "$f" >>"$seed"
  done
done

# -timeout: one input taking longer is a hang (a failure). The outer timeout catches a fuzzer that
# stops answering altogether. Leaks are reported by ASan's LeakSanitizer (-detect_leaks=1).
status=0
timeout $((seconds + 120)) "$build_dir/tests/fuzz/config_loader_fuzz" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds" \
  >"$build_dir/fuzz.log" 2>&1 || status=$?
# libFuzzer prints a line per new coverage point; the log keeps them, the console gets the end.
tail -n 12 "$build_dir/fuzz.log"
if [ "$status" -ne 0 ]; then
  echo "run-fuzz.sh: the fuzzer failed (exit $status); full log $build_dir/fuzz.log; inputs in $artifacts:" >&2
  grep -A40 'ERROR\|==ERROR\|SUMMARY' "$build_dir/fuzz.log" | head -80 >&2 || true
  ls -l "$artifacts" >&2 || true
  exit 1
fi
echo "run-fuzz.sh: no crash, leak or hang in ${seconds}s"
