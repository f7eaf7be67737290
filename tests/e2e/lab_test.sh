#!/usr/bin/env bash
# e2e_lab: vagrant/lab.sh gives a lab whose VMs talk, `up` is idempotent, `status` works, and
# `down` leaves no process, namespace, veth or directory behind. Then the same lab with
# configs/lab-mirror (traffic mirroring): the monitor VM, the underlay with an appliance and a
# SPAN port appear, and each receives the copies of eni-web1's traffic the config sends it.
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
for c in ip ovsdb-server ovs-vswitchd ovs-vsctl python3 ethtool ping nc tcpdump; do
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
  # A switch process the stop step left stopped would hold up `down`.
  [[ -z ${vswitchd:-} ]] || kill -CONT "$vswitchd" 2>/dev/null || true
  rm -rf "$LAB_DIR-iam"
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

# The API socket's group and an IAM dir that also binds nobody to security-auditor (the API step).
chmod 755 "$LAB_DIR"
export LAB_API_GROUP=nogroup LAB_IAM_DIR=$LAB_DIR-iam
mkdir -p "$LAB_IAM_DIR"
cp "$REPO"/configs/iam/*.json "$LAB_IAM_DIR/"
python3 - "$LAB_IAM_DIR/bindings.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["Bindings"].append({"Principal": "user:nobody", "Policies": ["security-auditor"]})
json.dump(doc, open(sys.argv[1], "w"), indent=2)
PY

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

step "ctl trace and stats: the policy's answer, checked against the lab's switch"
# trace --switch exits 3 when ofproto/trace disagrees with the policy-level trace.
out=$("$LAB" ctl trace --from eni-web1 --to eni-db1 tcp/5432) || fail "ctl trace web1 -> db1:5432 failed: $out"
grep -q "^verdict: allow" <<<"$out" || fail "web1 -> db1:5432 should be allowed: $out"
grep -q "^switch: switch agrees" <<<"$out" || fail "no switch agreement for web1 -> db1:5432: $out"
out=$("$LAB" ctl trace --from eni-bastion --to eni-db1 tcp/5432) || fail "ctl trace bastion -> db1:5432 failed: $out"
grep -q "^verdict: drop" <<<"$out" || fail "bastion -> db1:5432 should be dropped: $out"
grep -q "sg-ingress  *deny" <<<"$out" || fail "bastion -> db1:5432 should be dropped at sg-db's ingress: $out"
json=$("$LAB" ctl trace --from eni-web1 --to 10.0.2.10 icmp/8 --reply --output json) ||
  fail "ctl trace --reply --output json failed: $json"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["verdict"]=="allow" and d["switch_check"]["agree"], d' <<<"$json" ||
  fail "icmp reply db1 -> web1 is not allowed-and-agreed: $json"
# A reply whose original is dropped has no connection: not asked of the switch, and no failure.
json=$("$LAB" ctl trace --from eni-db1 --to eni-web1 tcp/80 --reply --output json) ||
  fail "ctl trace of a reply without a connection failed: $json"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["verdict"]=="drop" and not d["switch_check"]["comparable"], d' <<<"$json" ||
  fail "a reply without a connection should be a drop that is not compared: $json"
before=$("$LAB" ctl stats --output json) || fail "ctl stats failed: $before"
"$LAB" exec eni-web1 -- ping -c3 -i0.2 -W2 10.0.2.10 >/dev/null || fail "ping for the hit counters failed"
after=$("$LAB" ctl stats --output json) || fail "ctl stats failed: $after"
moved=$(python3 -c '
import json, sys
def packets(text):
    return {r["rule"].split(":")[0]: r["packets"] for r in json.loads(text)["rules"]}
b, a = packets(sys.argv[1]), packets(sys.argv[2])
print(a["acl-private inbound rule 130"] - b["acl-private inbound rule 130"])' "$before" "$after") ||
  fail "cannot read the stats JSON: $after"
[[ $moved == 3 ]] || fail "3 echo requests moved acl-private inbound rule 130 by $moved"

step "the control API: describe, authorize and revoke change real traffic; IAM refuses; audit"
out=$("$LAB" ctl describe-security-groups --group-ids sg-db --output json) ||
  fail "ctl describe-security-groups failed: $out"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert [g["GroupId"] for g in d["SecurityGroups"]] == ["sg-db"], d' <<<"$out" ||
  fail "describe-security-groups --group-ids sg-db did not return sg-db: $out"
if tcp_check eni-bastion eni-db1 10.0.2.10 5432; then fail "eni-bastion reached eni-db1:5432 before any API change"; fi
out=$("$LAB" ctl authorize-security-group-ingress --group-id sg-db --protocol tcp --port 5432 \
  --source-group sg-bastion --output json) || fail "ctl authorize-security-group-ingress failed: $out"
tcp_check eni-bastion eni-db1 10.0.2.10 5432 || fail "after authorize, no TCP connection eni-bastion -> eni-db1:5432"
out=$("$LAB" ctl plan "$REPO/configs/lab.toml") || fail "ctl plan failed: $out"
grep -q "RevokeSecurityGroupIngress" <<<"$out" || fail "plan of lab.toml does not show that it would revoke the API's rule: $out"
out=$("$LAB" ctl revoke-security-group-ingress --group-id sg-db --protocol tcp --port 5432 \
  --source-group sg-bastion) || fail "ctl revoke-security-group-ingress failed: $out"
if tcp_check eni-bastion eni-db1 10.0.2.10 5432; then fail "after revoke, eni-bastion still reaches eni-db1:5432"; fi
out=$("$LAB" ctl plan "$REPO/configs/lab.toml") || fail "ctl plan failed: $out"
grep -q "No changes" <<<"$out" || fail "after revoke the database should equal lab.toml again: $out"
# nobody (in the API socket's group, bound to security-auditor by the test's IAM dir): may read,
# may not change; the refusal names action and resource, exit 254 as the AWS CLI.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
out=$(as_nobody "$LAB" ctl describe-security-groups --output text 2>&1) || fail "nobody (security-auditor) cannot describe: $out"
rc=0
out=$(as_nobody "$LAB" ctl authorize-security-group-ingress --group-id sg-db --protocol tcp --port 22 --cidr 0.0.0.0/0 2>&1) || rc=$?
[[ $rc == 254 ]] || fail "nobody's authorize should exit 254 (UnauthorizedOperation), got $rc: $out"
grep -q "UnauthorizedOperation" <<<"$out" && grep -q "ec2:AuthorizeSecurityGroupIngress" <<<"$out" &&
  grep -q "security-group/sg-db" <<<"$out" || fail "the refusal does not name the action and the resource: $out"
python3 - "$LAB_DIR/audit.log" <<'PY' || fail "audit log does not record the requests: $(tail -n 5 "$LAB_DIR/audit.log")"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
names = [(r["eventName"], r.get("errorCode") or "") for r in records]
assert ("AuthorizeSecurityGroupIngress", "") in names, names
assert ("RevokeSecurityGroupIngress", "") in names, names
assert ("AuthorizeSecurityGroupIngress", "UnauthorizedOperation") in names, names
PY

step "up with a config vpcguardd would refuse: fails naming the error, the running lab keeps its policy"
broken=$LAB_DIR/broken.toml
sed 's/^  from_port = 5432$/  from_port = 70000/' "$REPO/configs/lab.toml" >"$broken"
grep -q "from_port = 70000" "$broken" || fail "could not make the broken config (lab.toml changed?)"
if out=$("$LAB" up --config "$broken" 2>&1); then fail "up with a broken config succeeded: $out"; fi
grep -q "broken.toml:[0-9]*:[0-9]*: error" <<<"$out" || fail "up did not name the config error: $out"
tcp_check eni-web1 eni-db1 10.0.2.10 5432 || fail "after the refused up, web1 -> db1:5432 no longer works"
rm -f "$broken"

step "up when the switch refuses the policy: fails naming the switch's error, then recovers"
# Every table capped at the flows it holds (no eviction); a config with one more rule needs more.
lab_vsctl() { ovs-vsctl --db="unix:$LAB_DIR/db.sock" --timeout=10 "$@"; }
lab_ofctl() { ovs-ofctl -O OpenFlow15 --timeout=10 "$1" "unix:$LAB_DIR/br-int.mgmt" "${@:2}"; }
declare -A held=()
while read -r table; do held[$table]=$((${held[$table]:-0} + 1)); done < <(
  lab_ofctl dump-flows --no-stats | awk '/actions=/ {
    if (match($0, /^ *(cookie=[^,]*, )?table=[0-9]+/)) { t = substr($0, RSTART, RLENGTH); sub(/.*=/, "", t); print t }
    else print 0 }')
((${#held[@]} > 0)) || fail "no flows to cap in the lab's tables"
for table in "${!held[@]}"; do
  lab_vsctl -- --id=@ft create Flow_Table "flow_limit=${held[$table]}" overflow_policy=refuse \
    -- set Bridge br-int "flow_tables:$table=@ft" >/dev/null
done
bigger=$LAB_DIR/bigger.toml
python3 - "$REPO/configs/lab.toml" "$bigger" <<'PY'
import sys
text = open(sys.argv[1]).read()
anchor = 'description = "PostgreSQL from the web tier, SSH from the bastion"\n'
assert anchor in text, "lab.toml changed: no sg-db description"
rule = ('\n  [[security_groups.ingress]]\n  ip_protocol = "tcp"\n  from_port = 6379\n'
        '  to_port = 6379\n  cidr_ipv4 = "10.0.1.0/24"\n')
open(sys.argv[2], "w").write(text.replace(anchor, anchor + rule))
PY
if out=$("$LAB" up --config "$bigger" 2>&1); then fail "up succeeded although the switch refuses the policy: $out"; fi
grep -q "TABLE_FULL" <<<"$out" || fail "up did not name the switch's error: $out"
lab_vsctl clear Bridge br-int flow_tables
"$LAB" up || fail "up after the limits were lifted failed"
tcp_check eni-web1 eni-db1 10.0.2.10 5432 || fail "after the recovered up, web1 -> db1:5432 does not work"
rm -f "$bigger"

step "a stopped ovs-vswitchd: status says so within seconds, and all is well once it continues"
vswitchd=$(cat "$LAB_DIR/ovs-vswitchd.pid")
kill -STOP "$vswitchd"
# vpcguardd's probe: 1 s of silence, then 3 s without an answer. Each status must be quick.
out="" took=0
for _ in $(seq 15); do
  t0=$SECONDS
  if out=$(timeout 20 "$LAB" status 2>&1); then kill -CONT "$vswitchd"; fail "status exited 0 with ovs-vswitchd stopped: $out"; fi
  took=$((SECONDS - t0))
  ((took <= 5)) || break
  grep -q "DOES NOT RESPOND" <<<"$out" && break
  sleep 1
done
kill -CONT "$vswitchd"
grep -q "ovs-vswitchd: STOPPED" <<<"$out" || fail "status did not say ovs-vswitchd is stopped: $out"
grep -q "DOES NOT RESPOND" <<<"$out" || fail "vpcguardd's status did not say the switch does not respond: $out"
((took <= 5)) || fail "status took ${took} s with ovs-vswitchd stopped"
for _ in $(seq 50); do "$LAB" status >/dev/null 2>&1 && break; sleep 0.2; done
"$LAB" status >/dev/null || fail "status still failing 10 s after ovs-vswitchd continued: $("$LAB" status 2>&1)"
tcp_check eni-web1 eni-db1 10.0.2.10 5432 || fail "after ovs-vswitchd continued, web1 -> db1:5432 does not work"

step "up with configs/lab-mirror: monitor VM, underlay and appliance, SPAN port"
MIRROR_CONFIG=$REPO/configs/lab-mirror
"$LAB" up --config "$MIRROR_CONFIG" || fail "lab.sh up --config configs/lab-mirror failed"
mirror_vms=$(python3 "$REPO/vagrant/lab_plan.py" "$MIRROR_CONFIG" | wc -l)
extras=$(python3 "$REPO/vagrant/lab_plan.py" --mirrors "$MIRROR_CONFIG" | grep -cE '^(appliance|span) ' || true)
((extras == 2)) || fail "configs/lab-mirror should need one appliance and one SPAN port, plan has $extras"
ns_m=$(lab_namespaces)
[[ $(count "$ns_m") == $((mirror_vms + 1 + extras)) ]] ||
  fail "expected $((mirror_vms + 1 + extras)) namespaces ($mirror_vms VMs + hypervisor + $extras appliance/SPAN), found: $ns_m"
grep -qx -- "$LAB_PREFIX-eni-mon1" <<<"$ns_m" || fail "no namespace for the monitor VM eni-mon1"
ip -n "$LAB_PREFIX-hv" -4 addr show dev br-underlay | grep -q 'inet 192.0.2.1/24' ||
  fail "br-underlay has no 192.0.2.1/24 in the hypervisor namespace"
ip netns exec "$LAB_PREFIX-hv" ping -c1 -W2 192.0.2.2 >/dev/null ||
  fail "the appliance 192.0.2.2 does not answer over br-underlay"
"$LAB" exec appliance-192.0.2.2 -- ip -4 addr show dev eth0 | grep -q 'inet 192.0.2.2/24' ||
  fail "exec appliance-192.0.2.2: no 192.0.2.2/24 on eth0"
iface_id=$(ovs-vsctl --db="unix:$LAB_DIR/db.sock" --if-exists get Interface vpcg-span0 external_ids:iface-id 2>/dev/null || true)
[[ -z $iface_id ]] || fail "the SPAN port vpcg-span0 has an iface-id ($iface_id): vpcguardd would take it for a VM"
status=$("$LAB" status) || fail "lab.sh status failed: $status"
for name in eni-mon1 appliance-192.0.2.2 span-vpcg-span0; do
  grep -q -- "$name" <<<"$status" || fail "status does not list $name: $status"
done

step "mirror copies of eni-web1's traffic: TCP to eni-mon1 (VNI 4242), ICMP to the appliance, all to SPAN"
# One capture per receiver, line-buffered text (tcpdump decodes UDP 4789 as VXLAN and the
# inner frame). `timeout` bounds each; down kills whatever is left in the namespaces.
cap=$LAB_DIR/captures
mkdir -p "$cap"
capture_pids=()
capture() {  # capture NAME FILTER...: tcpdump in lab VM/namespace NAME into $cap/NAME
  local name=$1
  shift
  timeout 60 "$LAB" exec "$name" -- tcpdump -lni eth0 "$@" >"$cap/$name" 2>"$cap/$name.err" &
  capture_pids+=("$!")
}
capture eni-mon1 udp port 4789
capture appliance-192.0.2.2 udp port 4789
capture span-vpcg-span0 icmp or tcp port 5432
deadline=$((SECONDS + 10))
for name in eni-mon1 appliance-192.0.2.2 span-vpcg-span0; do
  until grep -q "listening on" "$cap/$name.err" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "tcpdump in $name did not start: $(cat "$cap/$name.err")"
    sleep 0.1
  done
done
# Traffic until every receiver has something (the first copies may race vpcguardd's set-up).
deadline=$((SECONDS + 15))
until [[ -s $cap/eni-mon1 && -s $cap/appliance-192.0.2.2 && -s $cap/span-vpcg-span0 ]]; do
  if ((SECONDS >= deadline)); then
    echo "--- vpcguardd.log (tail)"; tail -n 20 "$LAB_DIR/vpcguardd.log" || true
    fail "no copies within 15 s: eni-mon1 $(count "$(cat "$cap/eni-mon1")") line(s), appliance $(count "$(cat "$cap/appliance-192.0.2.2")"), SPAN $(count "$(cat "$cap/span-vpcg-span0")")"
  fi
  "$LAB" exec eni-web1 -- nc -z -w1 10.0.2.10 5432 >/dev/null 2>&1 || true  # a SYN, a RST back
  "$LAB" exec eni-web1 -- ping -c1 -W1 10.0.2.10 >/dev/null 2>&1 || true
  sleep 0.2
done
sleep 0.5  # the copies of the last packets
kill -TERM "${capture_pids[@]}" 2>/dev/null || true  # timeout passes it on to tcpdump
wait "${capture_pids[@]}" 2>/dev/null || true
mon=$(cat "$cap/eni-mon1") app=$(cat "$cap/appliance-192.0.2.2") span=$(cat "$cap/span-vpcg-span0")
echo "eni-mon1: $(grep -c VXLAN <<<"$mon") VXLAN packet(s); appliance: $(grep -c VXLAN <<<"$app"); SPAN: $(count "$span") frame(s)"
printf '%s\n' "$mon" | head -n 2
# Session 1 (tmf-tcp -> the monitor VM, VNI 4242): the TCP between eni-web1 and eni-db1.
grep -q 'vni 4242' <<<"$mon" || fail "eni-mon1 got no VXLAN with VNI 4242: $mon"
grep -q '10\.0\.1\.10\.[0-9]* > 10\.0\.2\.10\.5432: Flags \[S\]' <<<"$mon" ||
  fail "eni-mon1 got no copy of eni-web1's SYN to 10.0.2.10:5432: $mon"
! grep -q 'ICMP' <<<"$mon" || fail "eni-mon1 got ICMP copies: session 1's filter accepts TCP only"
# Session 2 (tmf-all -> the appliance): what session 1 did not take, here the pings.
grep -q '10\.0\.1\.10 > 10\.0\.2\.10: ICMP echo request' <<<"$app" ||
  fail "the appliance got no copy of eni-web1's ping: $app"
! grep -q '\.5432' <<<"$app" || fail "the appliance got TCP copies: session 1 mirrors those, and a packet at most once"
# The SPAN port: eni-web1's frames themselves, not encapsulated.
grep -q '10\.0\.1\.10 > 10\.0\.2\.10: ICMP echo request' <<<"$span" ||
  fail "the SPAN port got no copy of eni-web1's ping: $span"

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
