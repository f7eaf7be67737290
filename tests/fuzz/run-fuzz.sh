#!/bin/sh
# Builds the fuzz targets with clang in their own build dir and runs them for SECONDS in all:
# config_loader_fuzz (the TOML config path) for 50% of the time, ipfix_fuzz (flowlogs' IPFIX
# decoder, fed datagrams any host could send the collector) for 30%, api_request_fuzz (the
# control API's request decoder, fed request lines any local user or TLS client could send) for
# the rest. Fails on a crash, a leak, a slow input (hang) or a build error in any.
# Usage: tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS   (SECONDS 0: build the targets, run nothing)
# BUILD_DIR is the fuzz build dir (e.g. build-fuzz). A clang build dir with VPCGUARD_FUZZ and
# VPCGUARD_SANITIZE on (tests/run.sh's build-asan) is used with its own settings. Given the
# regular gcc build dir instead, the script builds in build-fuzz next to it and leaves the
# regular build untouched.
#
# Each corpus grows in BUILD_DIR/corpus/NAME (kept between runs); seeds are configs/*.toml for
# the config loader, what ipfix_fuzz_seeds writes for IPFIX and a few request lines (written
# below) for the API. Logs are BUILD_DIR/fuzz-NAME.log.
# Crashing inputs land in BUILD_DIR/artifacts/NAME; reproduce one with
#   BUILD_DIR/tests/fuzz/NAME_fuzz BUILD_DIR/artifacts/NAME/crash-...
# Environment: VPCGUARD_OVS_BUILD_DIR (reuse a built OVS library; the fuzz targets do not link it,
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

# A clang build dir configured for fuzzing already (tests/run.sh's sanitizer build, whose
# libraries the targets link) keeps its settings (build type, Open vSwitch library dir; the
# environment's VPCGUARD_OVS_BUILD_DIR is not applied to it) and is only configured again as it
# is; anything else is (re)configured for fuzzing.
if [ -f "$build_dir/CMakeCache.txt" ] &&
   grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' "$build_dir/CMakeCache.txt" &&
   grep -q '^VPCGUARD_FUZZ:BOOL=ON' "$build_dir/CMakeCache.txt" &&
   grep -q '^VPCGUARD_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  cmake -S "$src" -B "$build_dir" >"$build_dir/configure.log" 2>&1 ||
    { cat "$build_dir/configure.log" >&2; exit 1; }
else
  set -- -S "$src" -B "$build_dir" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVPCGUARD_FUZZ=ON -DVPCGUARD_SANITIZE=ON
  if [ -n "${VPCGUARD_OVS_BUILD_DIR:-}" ]; then
    set -- "$@" "-DVPCGUARD_OVS_BUILD_DIR=$VPCGUARD_OVS_BUILD_DIR"
  fi
  mkdir -p "$build_dir"
  cmake "$@" >"$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log" >&2; exit 1; }
fi
cmake --build "$build_dir" --target config_loader_fuzz ipfix_fuzz ipfix_fuzz_seeds \
  api_request_fuzz -j "$jobs"
if [ "$seconds" -eq 0 ]; then
  echo "run-fuzz.sh: fuzz targets built in $build_dir (SECONDS 0: nothing run)"
  exit 0
fi

seeds=$build_dir/corpus/seeds
mkdir -p "$build_dir/corpus/config_loader" "$seeds"
cp "$src"/configs/*.toml "$seeds"/
# A directory config becomes one seed whose files are joined by the "#---" line the target splits
# on, so the merge path starts covered.
for dir in "$src"/configs/*/; do
  [ -d "$dir" ] || continue
  ls "$dir"*.toml >/dev/null 2>&1 || continue  # configs/iam holds IAM JSON, not a config
  seed=$seeds/dir-$(basename "$dir").toml
  : >"$seed"
  for f in "$dir"*.toml; do
    [ -s "$seed" ] && printf '\n#---\n' >>"$seed"
    cat "$f" >>"$seed"
  done
done
ipfix_seeds=$build_dir/corpus/ipfix-seeds
mkdir -p "$build_dir/corpus/ipfix" "$ipfix_seeds"
"$build_dir/tests/fuzz/ipfix_fuzz_seeds" "$ipfix_seeds"
# API request lines as vpcguardctl sends them: both rule shapes, nested parameters, filters.
api_seeds=$build_dir/corpus/api-seeds
mkdir -p "$build_dir/corpus/api_request" "$api_seeds"
printf '%s\n' '{"RequestId": "1", "Action": "DescribeSecurityGroups", "Parameters": {"GroupIds": ["sg-web"]}}' \
  >"$api_seeds/describe.json"
printf '%s\n' '{"RequestId": "2", "Action": "AuthorizeSecurityGroupIngress", "Parameters": {"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ssh \u00e9"}], "UserIdGroupPairs": [{"GroupId": "sg-db"}]}]}}' \
  >"$api_seeds/authorize.json"
printf '%s\n' '{"Action": "RevokeSecurityGroupEgress", "Parameters": {"GroupId": "sg-web", "Protocol": "tcp", "Port": "1000-2000", "CidrIp": "0.0.0.0/0"}}' \
  >"$api_seeds/revoke-flat.json"
printf '%s\n' '{"RequestId": "4", "Action": "CreateNetworkAclEntry", "Parameters": {"NetworkAclId": "acl-private", "RuleNumber": "100", "Egress": true, "Protocol": "-1", "RuleAction": "deny", "Ipv6CidrBlock": "::/0", "PortRange": {"From": 1, "To": 2}, "IcmpTypeCode": {"Type": -1, "Code": -1}}}' \
  >"$api_seeds/nacl-entry.json"
printf '%s\n' '{"RequestId": null, "Action": "DescribeNetworkAcls", "Parameters": {"Filters": [{"Name": "default", "Values": ["true"]}]}}' \
  >"$api_seeds/filters.json"

# The time budget is SECONDS in all (CI time is limited): 50% config loader, 30% IPFIX, 20% API
# requests, each at least 1 s (-max_total_time=0 would mean "forever").
config_seconds=$((seconds * 50 / 100))
[ "$config_seconds" -ge 1 ] || config_seconds=1
ipfix_seconds=$((seconds * 30 / 100))
[ "$ipfix_seconds" -ge 1 ] || ipfix_seconds=1
api_seconds=$((seconds - config_seconds - ipfix_seconds))
[ "$api_seconds" -ge 1 ] || api_seconds=1

# run_fuzzer NAME SECONDS MAX_LEN CORPUS_DIRS...: runs BUILD_DIR/tests/fuzz/NAME_fuzz; 0 if it
# found nothing. -timeout: one input taking longer is a hang (a failure). The outer timeout
# catches a fuzzer that stops answering altogether. Leaks are reported by ASan's LeakSanitizer
# (-detect_leaks=1).
failed=""
run_fuzzer() {
  name=$1 secs=$2 max_len=$3
  shift 3
  log=$build_dir/fuzz-$name.log
  mkdir -p "$build_dir/artifacts/$name"
  echo "run-fuzz.sh: ${name}_fuzz for ${secs}s"
  status=0
  timeout $((secs + 120)) "$build_dir/tests/fuzz/${name}_fuzz" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$build_dir/artifacts/$name/" "$@" \
    >"$log" 2>&1 || status=$?
  # libFuzzer prints a line per new coverage point; the log keeps them, the console gets the end.
  tail -n 12 "$log"
  if [ "$status" -ne 0 ]; then
    echo "run-fuzz.sh: ${name}_fuzz failed (exit $status); full log $log; inputs in $build_dir/artifacts/$name:" >&2
    grep -A40 'ERROR\|==ERROR\|SUMMARY' "$log" | head -80 >&2 || true
    ls -l "$build_dir/artifacts/$name" >&2 || true
    failed="$failed ${name}_fuzz"
  fi
}

run_fuzzer config_loader "$config_seconds" 65536 "$build_dir/corpus/config_loader" "$seeds"
# IPFIX messages are at most 65535 bytes; a few datagrams per input.
run_fuzzer ipfix "$ipfix_seconds" 16384 "$build_dir/corpus/ipfix" "$ipfix_seeds"
# Request lines may be up to 64 MiB; the depth and UTF-8 checks are reached well below 64 KiB.
run_fuzzer api_request "$api_seconds" 65536 "$build_dir/corpus/api_request" "$api_seeds"

if [ -n "$failed" ]; then
  echo "run-fuzz.sh: failed:$failed" >&2
  exit 1
fi
echo "run-fuzz.sh: no crash, leak or hang in ${seconds}s (config loader ${config_seconds}s, IPFIX ${ipfix_seconds}s, API requests ${api_seconds}s)"
