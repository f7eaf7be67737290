#!/usr/bin/env bash
# vpcguard next to OVN 23.03 on the very same security-group policy, in one run.
#
# Usage: bench/vs_ovn.sh [small|medium|large ...]     (default: small medium large)
# Needs root, a built tree (VPCGUARD_BUILD_DIR, default build/) and the OVN packages
# (ovn-central ovn-host: installed here if missing). For each size it writes the policy with the
# steering repo's gen-policy.py (OVN's peer figures use the same generator), measures OVN with
# run-toml.sh on that TOML file and vpcguard with bench/policy_bench on the same file, and prints
# both sides and vpcguard/OVN ratios (< 1 = vpcguard smaller or faster).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VPCGUARD_BUILD_DIR:-$root/build}
tools=${OVN_BASELINE_DIR:-$root/../shared/tools/ovn-baseline}
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(small medium large)

[[ -x "$build/bench/policy_bench" ]] || { echo "vs_ovn.sh: build first ($build/bench/policy_bench)" >&2; exit 2; }
[[ -x "$tools/run-toml.sh" ]] || { echo "vs_ovn.sh: OVN baseline tools not found at $tools" >&2; exit 2; }
if ! command -v ovn-northd >/dev/null || ! command -v ovn-controller >/dev/null; then
  echo "vs_ovn.sh: installing ovn-central ovn-host" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ovn-central ovn-host >/dev/null
fi
work=$(mktemp -d /tmp/vpcguard-vs-ovn.XXXXXX)
trap 'rm -rf "$work"' EXIT

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# Value after a label in policy_bench's output (first number, or the Nth with $3).
vg() { awk -v k="$2" -v n="${3:-1}" '$1 == k { split(substr($0, index($0, $2)), f, " "); print f[n] }' "$1"; }

printf '%-7s | %-22s | %10s %10s %7s\n' size measure vpcguard OVN ratio
for size in "${sizes[@]}"; do
  toml="$work/$size.toml"
  python3 "$tools/gen-policy.py" --size "$size" -o "$toml" >/dev/null 2>&1
  echo "vs_ovn.sh: $size: OVN (run-toml.sh)..." >&2
  REPS=${REPS:-20} MREPS=${MREPS:-10} "$tools/run-toml.sh" "$toml" >"$work/ovn.out" 2>"$work/ovn.err" ||
    { cat "$work/ovn.err" >&2; exit 1; }
  row=$(awk -v n="$size" '$1 == n' "$work/ovn.out" | tr -d '|')
  [[ -n "$row" ]] || { echo "vs_ovn.sh: no OVN row for $size" >&2; cat "$work/ovn.out" >&2; exit 1; }
  read -r _ _ _ _ _ _ o_total _ _ _ o_after _ _ _ o_acl50 o_acl99 _ o_join50 o_join99 _ o_ctl _ <<<"$row"
  echo "vs_ovn.sh: $size: vpcguard (policy_bench)..." >&2
  "$build/bench/policy_bench" --config "$toml" --changes "${REPS:-20}" --mode incremental >"$work/vg.out" 2>"$work/vg.err" ||
    { cat "$work/vg.err" >&2; exit 1; }
  v_total=$(vg "$work/vg.out" whole_policy_ms)
  v_flows=$(vg "$work/vg.out" flows)
  v_acl50=$(vg "$work/vg.out" add_rule_ms_p50_p99 1)
  v_acl99=$(vg "$work/vg.out" add_rule_ms_p50_p99 2)
  v_join50=$(vg "$work/vg.out" membership_ms_p50_p99 1)
  v_join99=$(vg "$work/vg.out" membership_ms_p50_p99 2)
  v_rss=$(vg "$work/vg.out" rss_mib)
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "whole policy ms" "$v_total" "$o_total" "$(ratio "$v_total" "$o_total")"
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "OpenFlow flows" "$v_flows" "$o_after" "$(ratio "$v_flows" "$o_after")"
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "+1 rule ms p50" "$v_acl50" "$o_acl50" "$(ratio "$v_acl50" "$o_acl50")"
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "+1 rule ms p99" "$v_acl99" "$o_acl99" "$(ratio "$v_acl99" "$o_acl99")"
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "join group ms p50" "$v_join50" "$o_join50" "$(ratio "$v_join50" "$o_join50")"
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "join group ms p99" "$v_join99" "$o_join99" "$(ratio "$v_join99" "$o_join99")"
  printf '%-7s | %-22s | %10s %10s %7s\n' "$size" "RSS MiB (bench/ctl)" "$v_rss" "$o_ctl" "$(ratio "$v_rss" "$o_ctl")"
done
echo "OVN flows = all br-int flows after the policy; vpcguard flows = all its flows (infra included)."
echo "vpcguard RSS = the benchmark process (policy model, desired and installed tables): an upper bound for vpcguardd."
