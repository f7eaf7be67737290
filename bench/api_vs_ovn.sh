#!/usr/bin/env bash
# One authorize-security-group-ingress through vpcguard's control API, from the client's call to
# the switch's barrier, next to OVN 23.03's +1 ACL (ovn-nbctl --wait=hv) on the very same policy,
# in one run (issue 11).
#
# Usage: bench/api_vs_ovn.sh [ovn-large] [100k] [--changes N]
#   ovn-large: OVN's large peer policy (gen-policy.py --size large: 200 ports, 50 groups, 60 rules)
#   100k:      configs/gen-large.py --interfaces 480 (about 98,000 vpcguard flows)
# Needs root, a built tree (VPCGUARD_BUILD_DIR, default build/) and the OVN packages (ovn-central
# ovn-host: installed here if missing). Prints both sides' p50/p99 and vpcguard/OVN ratios
# (< 1 = vpcguard faster).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VPCGUARD_BUILD_DIR:-$root/build}
tools=${OVN_BASELINE_DIR:-$root/../shared/tools/ovn-baseline}
changes=20
sizes=()
while (($#)); do
  case $1 in
    --changes) changes=$2; shift 2 ;;
    ovn-large | 100k) sizes+=("$1"); shift ;;
    *) echo "api_vs_ovn.sh: unknown argument '$1' (sizes: ovn-large 100k; --changes N)" >&2; exit 2 ;;
  esac
done
[[ ${#sizes[@]} -gt 0 ]] || sizes=(ovn-large 100k)

[[ -x "$build/bench/api_bench" ]] || { echo "api_vs_ovn.sh: build first ($build/bench/api_bench)" >&2; exit 2; }
[[ -x "$tools/run-toml.sh" ]] || { echo "api_vs_ovn.sh: OVN baseline tools not found at $tools" >&2; exit 2; }
if ! command -v ovn-northd >/dev/null || ! command -v ovn-controller >/dev/null; then
  echo "api_vs_ovn.sh: installing ovn-central ovn-host" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ovn-central ovn-host >/dev/null
fi
work=$(mktemp -d /tmp/vpcguard-api-vs-ovn.XXXXXX)
trap 'rm -rf "$work"' EXIT

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
vg() { awk -v k="$2" -v n="${3:-1}" '$1 == k { split(substr($0, index($0, $2)), f, " "); print f[n] }' "$1"; }

printf '%-9s | %-28s | %10s %10s %7s\n' size measure vpcguard OVN ratio
for size in "${sizes[@]}"; do
  toml="$work/$size.toml"
  case $size in
    ovn-large) python3 "$tools/gen-policy.py" --size large -o "$toml" >/dev/null 2>&1 ;;
    100k) python3 "$root/configs/gen-large.py" --interfaces 480 -o "$toml" >/dev/null ;;
  esac
  echo "api_vs_ovn.sh: $size: OVN (run-toml.sh)..." >&2
  REPS=$changes MREPS=${MREPS:-5} "$tools/run-toml.sh" "$toml" >"$work/ovn.out" 2>"$work/ovn.err" ||
    { cat "$work/ovn.err" >&2; exit 1; }
  row=$(awk -v n="$size" '$1 == n' "$work/ovn.out" | tr -d '|')
  [[ -n "$row" ]] || { echo "api_vs_ovn.sh: no OVN row for $size" >&2; cat "$work/ovn.out" >&2; exit 1; }
  read -r _ _ _ _ _ _ o_total _ _ _ o_flows _ _ _ o_acl50 o_acl99 _ <<<"$row"
  echo "api_vs_ovn.sh: $size: vpcguard (api_bench)..." >&2
  "$build/bench/api_bench" --config "$toml" --changes "$changes" >"$work/vg.out" 2>"$work/vg.err" ||
    { cat "$work/vg.err" >&2; exit 1; }
  v_flows=$(vg "$work/vg.out" flows)
  v_50=$(vg "$work/vg.out" authorize_ms_p50_p99 1)
  v_99=$(vg "$work/vg.out" authorize_ms_p50_p99 2)
  c_50=$(vg "$work/vg.out" commit_ms_p50_p99 1)
  printf '%-9s | %-28s | %10s %10s %7s\n' "$size" "OpenFlow flows" "$v_flows" "$o_flows" "$(ratio "$v_flows" "$o_flows")"
  printf '%-9s | %-28s | %10s %10s %7s\n' "$size" "+1 rule ms p50 (to switch)" "$v_50" "$o_acl50" "$(ratio "$v_50" "$o_acl50")"
  printf '%-9s | %-28s | %10s %10s %7s\n' "$size" "+1 rule ms p99 (to switch)" "$v_99" "$o_acl99" "$(ratio "$v_99" "$o_acl99")"
  printf '%-9s | %-28s | %10s %10s %7s\n' "$size" "of which API commit ms p50" "$c_50" "-" "-"
done
echo "vpcguard: vpcguardctl's request -> vpcguard-apid (IAM, validation, OVSDB commit) -> vpcguardd (monitor, translate, bundle, barrier)."
echo "OVN: ovn-nbctl --wait=hv acl-add (northd, southbound, ovn-controller, flows on the switch)."
