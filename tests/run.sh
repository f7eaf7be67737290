#!/usr/bin/env bash
# Runs every test of vpcguard on this machine (as root: integration and e2e tests start private
# Open vSwitch sandboxes and network namespaces).
#
#   tests/run.sh            install what is missing, build, run everything
#
# Steps: dependencies (scripts/deps.sh) -> warnings-as-errors build (gcc, optimised) -> every
# ctest label but unit (integration, e2e, package, bench smoke runs) on that build, while the
# AddressSanitizer + UndefinedBehaviorSanitizer build (clang) of the unit tests and the libFuzzer
# targets compiles in the background at idle priority -> the unit tests under the sanitizers ->
# fuzzing (config loader, IPFIX decoder, API requests; short) -> the ten slowest tests and the
# pass/fail summary. The unit tests run once, under the sanitizers, and so compile once.
# Knobs: VPCGUARD_SKIP_DEPS=1, VPCGUARD_FUZZ_SECONDS (default 60), CTEST_JOBS (default 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)
step() { printf '\n=== %s: %s\n' "$(date +%H:%M:%S)" "$*"; }

if [[ ${VPCGUARD_SKIP_DEPS:-0} != 1 ]]; then
  step "dependencies"
  bash scripts/deps.sh
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "tests/run.sh: integration and e2e tests need root (network namespaces, OVS)." >&2
  exit 2
fi

# Leftovers of an earlier interrupted run would collide with names; clear them first.
sh tests/cleanup-leftovers.sh

# CI time (issue 13: under 30 minutes on 2 cores): line tables only (-g1: file:line in
# backtraces and sanitizer reports, about a quarter less compile time than full -g) and the gold
# linker (binutils', half the link time of the default one for our ~70 executables).
fast_build=(-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=gold
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
  "-DCMAKE_CXX_FLAGS_DEBUG=-g1" "-DCMAKE_C_FLAGS_DEBUG=-g1")

# CI time: the sanitizer build and the fuzz targets compile in the background, from the start,
# at the lowest CPU and I/O priority (nice 19, idle I/O class): they take only what the main build
# and then the tests leave idle (the main build's last heavy files and links, the Open vSwitch
# configure script; integration and e2e tests mostly wait on switches and packets) and never slow
# either down. Their tests run after the main ones.
# One clang tree for both: clang compiles our sanitized -O0 code in about 60% of gcc's time
# (state/rows.cpp: 28 s against 48 s), and the libFuzzer targets link the same libraries instead
# of a third build of them. gcc's warnings gate the main build; clang's gate this one.
# Test code at -O1 (the product stays -O2): a test file's compile time is mostly optimisation.
# No unit tests in the main build: they run in the sanitizer build.
# Ninja: one scheduler over every target (make waits for a library's link before compiling what
# uses it) and no recursive make. A build dir made by another generator is configured afresh
# (the Open vSwitch library in build-ci/_ovs is kept).
generator=(-G Ninja)
if [[ -f build-ci/CMakeCache.txt ]] &&
  ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' build-ci/CMakeCache.txt; then
  rm -rf build-ci/CMakeCache.txt build-ci/CMakeFiles
fi
cmake -S . -B build-ci "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVPCGUARD_WERROR=ON \
  "${fast_build[@]}" \
  -DVPCGUARD_TEST_OPT_FLAGS=-O1 -DVPCGUARD_BUILD_UNIT_TESTS=OFF >/dev/null
# The main build makes the Open vSwitch library both trees link. The background build waits for
# it (its stamp holds the tarball's checksum, scripts/build-ovs.sh) or for the main build's end,
# so that it never builds the library itself at idle priority while the main build waits.
ovs_tarball=$(sed -n 's/^VPCGUARD_OVS_TARBALL:[A-Z]*=//p' build-ci/CMakeCache.txt)
ovs_stamp=$root/build-ci/_ovs/.vpcguard-stamp
main_built=$root/build-ci/.main-build-ended
rm -f "$main_built" build-asan/ctest.log
step "building the ASan + UBSan unit tests and the fuzz targets in the background (log build-bg.log)"
(
  renice -n 19 -p "$BASHPID" >/dev/null
  ionice -c 3 -p "$BASHPID" 2>/dev/null || true
  set -e
  # Configuring touches the library's directory too, so it waits as well. It stops waiting if
  # this script is gone (killed without its EXIT trap).
  sum=$(sha256sum "$ovs_tarball" | cut -d' ' -f1)
  until [[ -f $main_built ]] || [[ -f $ovs_stamp && $(cat "$ovs_stamp") == "$sum" ]]; do
    kill -0 $$ 2>/dev/null || exit 1
    sleep 2
  done
  # A build-asan of an earlier gcc-based run cannot switch compilers: start it afresh.
  if [[ -f build-asan/CMakeCache.txt ]] &&
    ! { grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' build-asan/CMakeCache.txt &&
      grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' build-asan/CMakeCache.txt; }; then
    rm -rf build-asan
  fi
  cmake -S . -B build-asan "${generator[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Debug -DVPCGUARD_WERROR=ON -DVPCGUARD_SANITIZE=ON -DVPCGUARD_FUZZ=ON \
    -DVPCGUARD_OVS_BUILD_DIR="$root/build-ci/_ovs" "${fast_build[@]}" >/dev/null
  cmake --build build-asan -j"$jobs" --target unit_tests
  tests/fuzz/run-fuzz.sh "$root/build-asan" 0
) >build-bg.log 2>&1 &
background=$!
# Never left running: an interrupted run (Ctrl-C, a CI timeout) takes it along, compilers
# included.
# shellcheck disable=SC2317  # called from the EXIT trap
kill_tree() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
# Once waited for, the build's pid is free for any new process: the trap must not kill that.
trap '[[ -z $background ]] || kill_tree "$background"' EXIT
trap 'exit 143' TERM  # so that the EXIT trap runs on these too
trap 'exit 130' INT

step "build (warnings are errors)"
build_status=0
cmake --build build-ci -j"$jobs" || build_status=$?
touch "$main_built"
((build_status == 0)) || exit "$build_status"

step "all tests but unit (integration, e2e, package, vagrant, bench smoke)"
status=0
(cd build-ci && ctest -j"${CTEST_JOBS:-2}" --output-on-failure) 2>&1 | tee build-ci/ctest.log ||
  status=$?

step "waiting for the background build (ASan + UBSan unit tests, fuzz targets)"
background_status=0
wait "$background" || background_status=$?
background=
if ((background_status == 0)); then
  step "unit tests under ASan + UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest -L unit -j"$jobs" --output-on-failure) 2>&1 | tee build-asan/ctest.log || status=1
  step "fuzzing (config loader, IPFIX decoder, API requests) for ${VPCGUARD_FUZZ_SECONDS:-60} s in all"
  tests/fuzz/run-fuzz.sh "$root/build-asan" "${VPCGUARD_FUZZ_SECONDS:-60}" || status=1
else
  echo "tests/run.sh: the background build failed; its log's end:" >&2
  tail -n 60 build-bg.log >&2
  status=1
fi
# Where CI's time goes (it must stay under 30 minutes): the ten slowest tests.
echo
echo "tests/run.sh: the slowest tests (seconds):"
logs=(build-ci/ctest.log)
[[ ! -f build-asan/ctest.log ]] || logs+=(build-asan/ctest.log)
sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) .* ([0-9]+\.[0-9]+) sec$/\2 \1/p' "${logs[@]}" |
  sort -rn | head -n 10 | sed 's/^/  /' || true
echo "tests/run.sh: main build:"
grep -E '^[0-9]+% tests passed' build-ci/ctest.log || true
if [[ -f build-asan/ctest.log ]]; then
  echo "tests/run.sh: unit tests under ASan + UBSan:"
  grep -E '^[0-9]+% tests passed' build-asan/ctest.log || true
fi
# Every test cleans up after itself; anything left now is a leak and fails the run.
left=$(sh tests/cleanup-leftovers.sh --dry-run)
if [[ -n "$left" ]]; then
  echo "tests/run.sh: tests left these behind (removing them now):" >&2
  echo "$left" >&2
  sh tests/cleanup-leftovers.sh
  status=1
fi
exit "$status"
