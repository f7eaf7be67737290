#!/bin/sh
# Builds the config-loader fuzz target with clang in BUILD_DIR (its own build dir, e.g. build-fuzz;
# never the gcc build) and runs it for SECONDS. Fails on a crash, a leak, a slow input (hang) or a
# build error. Usage: tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS
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

# A build dir configured with another compiler cannot be switched to clang: refuse rather than
# clobber the regular build.
if [ -f "$build_dir/CMakeCache.txt" ] &&
   ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' "$build_dir/CMakeCache.txt"; then
  echo "run-fuzz.sh: $build_dir is not a clang build; give the fuzz build its own dir (build-fuzz)" >&2
  exit 2
fi

set -- -S "$src" -B "$build_dir" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVPCGUARD_FUZZ=ON -DVPCGUARD_SANITIZE=ON
if [ -n "${VPCGUARD_OVS_BUILD_DIR:-}" ]; then
  set -- "$@" "-DVPCGUARD_OVS_BUILD_DIR=$VPCGUARD_OVS_BUILD_DIR"
fi
cmake "$@" >"$build_dir.cmake.log" 2>&1 || { cat "$build_dir.cmake.log" >&2; exit 1; }
cmake --build "$build_dir" --target config_loader_fuzz -j "$jobs"

corpus=$build_dir/corpus/config_loader
seeds=$build_dir/corpus/seeds
artifacts=$build_dir/artifacts
mkdir -p "$corpus" "$seeds" "$artifacts"
cp "$src"/configs/*.toml "$seeds"/

# -timeout: one input taking longer is a hang (a failure). The outer timeout catches a fuzzer that
# stops answering altogether. Leaks are reported by ASan's LeakSanitizer (-detect_leaks=1).
status=0
timeout $((seconds + 120)) "$build_dir/tests/fuzz/config_loader_fuzz" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds" || status=$?
if [ "$status" -ne 0 ]; then
  echo "run-fuzz.sh: the fuzzer failed (exit $status); inputs in $artifacts:" >&2
  ls -l "$artifacts" >&2 || true
  exit 1
fi
echo "run-fuzz.sh: no crash, leak or hang in ${seconds}s"
