#!/usr/bin/env bash
# e2e_lab: vagrant/lab.sh gives a lab whose VMs talk, `up` is idempotent, `status` works, and
# `down` leaves no process, namespace, veth or directory behind.
#
# Runs its own lab (unique LAB_DIR and LAB_PREFIX), so it never touches a user's lab. A trap runs
# `down` whatever happens. Exit 77 (ctest: skipped) only when namespaces cannot be made here.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$REPO/vagrant/lab.sh
SKIP=77

step() { printf '\n=== e2e_lab: %s\n' "$*"; }
fail() { printf '\nFAIL e2e_lab: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP e2e_lab: %s\n' "$*"; exit "$SKIP"; }

((EUID == 0)) || skip "needs root (network namespaces, veths, Open vSwitch)"
for c in ip ovsdb-server ovs-vswitchd ovs-vsctl python3 ethtool ping nc; do
  command -v "$c" >/dev/null 2>&1 || fail "command '$c' not found: run scripts/deps.sh"
done

# A prefix no namespace uses yet: lab names are "<prefix>-...".
prefix=""
for _ in $(seq 20); do
  candidate=t$(printf '%05x' $((RANDOM * 32 + $$ % 32)))
  if ! ip netns list | awk '{print $1}' | grep -q "^$candidate-"; then prefix=$candidate; break; fi
done
[[ -n $prefix ]] || fail "no free LAB_PREFIX found"
LAB_PREFIX=$prefix
LAB_DIR=$(mktemp -d "/tmp/vpcg-lab-test.XXXXXX")
export LAB_PREFIX LAB_DIR LAB_SKIP_DEPS=1
# ctest sets VPCGUARD_BUILD_DIR to the build under test; by hand, lab.sh's default applies.
echo "e2e_lab: LAB_DIR=$LAB_DIR LAB_PREFIX=$LAB_PREFIX VPCGUARD_BUILD_DIR=${VPCGUARD_BUILD_DIR:-<default>}"

probe=$LAB_PREFIX-probe
if ! ip netns add "$probe" 2>/dev/null; then
  rmdir "$LAB_DIR"
  skip "cannot create network namespaces here"
fi
ip netns del "$probe"

downed=0
cleanup() {
  local rc=$?
  if ((downed == 0)); then
    echo "e2e_lab: cleaning up (down)"
    "$LAB" down || echo "e2e_lab: WARNING: cleanup down failed; LAB_DIR=$LAB_DIR LAB_PREFIX=$LAB_PREFIX" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
# A signal (ctest timeout, Ctrl-C) must still reach the cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT

lab_namespaces() { ip netns list | awk '{print $1}' | grep "^$LAB_PREFIX-" || true; }
lab_links() { ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$LAB_PREFIX-" || true; }
lab_procs() { pgrep -af -- "$LAB_DIR/" || true; }
count() { grep -c . <<<"$1" || true; }

# tcp_check FROM TO_ID TO_IP PORT: a TCP connection between two VMs (checksums offloading off works).
tcp_check() {
  local from=$1 to=$2 ip=$3 port=$4 deadline
  timeout 20 "$LAB" exec "$to" -- nc -l -p "$port" >/dev/null 2>&1 &
  deadline=$((SECONDS + 5))
  until "$LAB" exec "$from" -- nc -z -w1 "$ip" "$port" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

expected_vms=$(python3 "$REPO/vagrant/lab_plan.py" "$REPO/configs/lab.toml" | wc -l)
expected_ns=$((expected_vms + 1))   # the VMs and the hypervisor

step "up"
"$LAB" up || fail "lab.sh up failed"
ns1=$(lab_namespaces)
[[ $(count "$ns1") == "$expected_ns" ]] ||
  fail "expected $expected_ns namespaces ($expected_vms VMs + hypervisor), found: $ns1"

step "VMs talk as configs/lab.toml allows, through the VPC router"
"$LAB" exec eni-web1 -- ping -c1 -W2 10.0.2.10 || fail "eni-web1 cannot ping 10.0.2.10 (eni-db1)"
# The check above means something only if an unreachable address does fail.
if "$LAB" exec eni-web1 -- ping -c1 -W1 10.0.1.99 >/dev/null 2>&1; then
  fail "ping to 10.0.1.99 (no such VM) succeeded: the ping check proves nothing"
fi
tcp_check eni-web1 eni-db1 10.0.2.10 5432 || fail "no TCP connection eni-web1 -> eni-db1:5432"
# ... and the policy holds: sg-db allows 5432 from the web tier only.
if tcp_check eni-bastion eni-db1 10.0.2.10 5433; then fail "eni-bastion reached eni-db1:5433, which no rule allows"; fi

step "exec with an unknown interface id fails and names the known ones"
if out=$("$LAB" exec eni-nope -- true 2>&1); then fail "exec eni-nope succeeded"; fi
grep -q "eni-web1" <<<"$out" || fail "exec eni-nope error does not list known ids: $out"

step "up again (idempotent)"
"$LAB" up || fail "second lab.sh up failed"
ns2=$(lab_namespaces)
[[ "$ns2" == "$ns1" ]] || fail "namespaces changed on second up: before: $ns1; after: $ns2"
"$LAB" exec eni-web1 -- ping -c1 -W2 10.0.2.10 || fail "after second up, eni-web1 cannot ping 10.0.2.10"
ports=$(ovs-vsctl --db="unix:$LAB_DIR/db.sock" list-ports br-int | wc -l)
[[ $ports == "$expected_vms" ]] || fail "br-int has $ports ports after second up, expected $expected_vms"

step "status"
status=$("$LAB" status) || fail "lab.sh status failed: $status"
echo "$status"
grep -q "ovs-vswitchd: running" <<<"$status" || fail "status does not show ovs-vswitchd running"
grep -q "eni-web1" <<<"$status" || fail "status does not list eni-web1"

step "down"
"$LAB" down || fail "lab.sh down failed"
downed=1
left=$(lab_namespaces)
[[ -z $left ]] || fail "namespaces left after down: $left"
left=$(lab_links)
[[ -z $left ]] || fail "interfaces left after down: $left"
left=$(lab_procs)
[[ -z $left ]] || fail "processes left after down: $left"
[[ ! -e $LAB_DIR ]] || fail "$LAB_DIR left after down"
if "$LAB" status >/dev/null 2>&1; then fail "status succeeds after down"; fi

echo
echo "PASS e2e_lab"
