#!/usr/bin/env bash
# vagrant/lab.sh: a multi-VM vpcguard lab on one Linux machine, no real VMs needed.
#
#   lab.sh up [--config FILE|DIR]       install what is missing, build, start the lab
#   lab.sh exec <name> -- CMD           run CMD inside that "VM" (or appliance, SPAN port)
#   lab.sh status                       what runs, the VMs, flow count, vpcguardd alive
#   lab.sh ctl VERB ...                 vpcguardctl against the lab: the control API's AWS verbs
#                                       (as the calling user), trace, stats, lint, status
#   lab.sh down                         stop and delete everything the lab made
#
# Design: one private Open vSwitch (its own run directory, never the system's): ovsdb-server on
# the host, ovs-vswitchd inside a "hypervisor" network namespace (two userspace-datapath switches
# cannot share a namespace), bridge br-int on the userspace (netdev) datapath. Every network
# interface of the config becomes a "VM": a network namespace with one end of a veth pair (the
# ENI's MAC and addresses); the other end sits in the hypervisor namespace, on br-int, tagged
# external_ids:iface-id=<interface id> as vpcguardd expects. vpcguardd runs in the hypervisor
# namespace against that switch.
#
# Desired state (issue 11): the policy lives in vpcguard's own database (a second ovsdb-server,
# LAB_DIR/state.db, socket state.sock reachable by root only). vpcguard-apid serves the control API
# on LAB_DIR/api.sock and is the only writer: `up` commits the config through it (`vpcguardctl
# apply`, as root, the lab's network admin), and vpcguardd follows the database. `ctl VERB` runs
# vpcguardctl as the calling user; configs/iam says who may do what. The API socket is mode 0660,
# group LAB_API_GROUP (default root): add users to that group to let them reach the API at all.
#
# Traffic mirroring (issue 10): a monitor VM is a network interface like any other. A config with
# `vxlan_remote_ip` targets also gets an underlay: bridge br-underlay (netdev datapath, NORMAL
# forwarding) whose internal device in the hypervisor namespace holds 192.0.2.1/24, which is how
# ovs-vswitchd routes VXLAN copies off the host; each remote IP becomes an "appliance" namespace
# with a veth on br-underlay holding that IP. Each `port_mirrors` output_port becomes a "span"
# namespace whose veth's hypervisor end is that OVS port on br-int (no iface-id: not a VM).
#
# Everything the lab makes is named with LAB_PREFIX or lives in LAB_DIR, so `down` can find it
# all again, even after an `up` that failed half way.
#
# Environment: LAB_DIR (default /run/vpcguard-lab), LAB_PREFIX (default vpcg; namespace and
# interface names), VPCGUARD_BUILD_DIR (default <repo>/build), VPCGUARD_OVS_BUILD_DIR (passed to
# cmake on first configure), LAB_SKIP_DEPS=1 (never run scripts/deps.sh), LAB_API_GROUP (group of
# the API socket), LAB_IAM_DIR (default <repo>/configs/iam), LAB_NO_BUILD=1 (never build: use the
# programs already in VPCGUARD_BUILD_DIR/{daemon,api}/, e.g. symlinks to an installed package's).
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DIR=${LAB_DIR:-/run/vpcguard-lab}
LAB_DIR=${LAB_DIR%/}
LAB_PREFIX=${LAB_PREFIX:-vpcg}
BUILD_DIR=${VPCGUARD_BUILD_DIR:-$REPO/build}
BRIDGE=br-int
HV_NS=$LAB_PREFIX-hv
VM_IF=eth0                 # the VM end of each veth, inside the VM's own namespace
FALLBACK_COOKIE=0x1ab      # the forwarding flow earlier lab versions added (removed on up)
OVS_SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
MARKER=$LAB_DIR/.vpcguard-lab
STATE=$LAB_DIR/vms         # one line per VM: id ns host-if subnet mac ipv4s gw4 ipv6s gw6
# One line per appliance or SPAN namespace: kind name ns host-if bridge addresses|- next-hop|-
EXTRAS=$LAB_DIR/extras
UNDERLAY=br-underlay       # the bridge mirror copies to remote targets leave the host through
# Every namespace this lab made, written BEFORE it is made: `down` deletes exactly these, even
# after an interrupted `up`, and never another lab's namespaces that share the prefix.
LEDGER=$LAB_DIR/namespaces
STATE_SCHEMA=$REPO/state/vpcguard.ovsschema
API=unix:$LAB_DIR/api.sock
IAM_DIR=${LAB_IAM_DIR:-$REPO/configs/iam}

# OVS daemons live in sbin, which some PATHs (plain `su`, cron) lack.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
# The private switch's files all live in LAB_DIR; OVS tools honour these.
export OVS_RUNDIR=$LAB_DIR OVS_LOGDIR=$LAB_DIR OVS_DBDIR=$LAB_DIR

say() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'lab.sh: warning: %s\n' "$*" >&2; }
die() { printf 'lab.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: $0 up [--config FILE|DIR]      start (or refresh) the lab; default config: configs/lab.toml
       $0 exec <name> -- CMD          run CMD in that VM's network namespace (name: an interface
                                      id, or appliance-<ip> / span-<port> of traffic mirroring)
       $0 status                      daemons, VMs, flow count, vpcguardd alive
       $0 ctl trace|stats|lint|status ARGS  vpcguardctl on the lab's switch (docs/explain.md), e.g.
                                      $0 ctl trace --from eni-web1 --to eni-db1 tcp/5432
       $0 ctl VERB ARGS               the control API as you (AWS CLI verbs, docs/cli.md), e.g.
                                      $0 ctl describe-security-groups --output json
       $0 down                        stop everything and delete what the lab made

Environment: LAB_DIR=$LAB_DIR  LAB_PREFIX=$LAB_PREFIX
             VPCGUARD_BUILD_DIR=$BUILD_DIR  LAB_SKIP_DEPS=${LAB_SKIP_DEPS:-0}
             LAB_API_GROUP=${LAB_API_GROUP:-}  LAB_IAM_DIR=$IAM_DIR
EOF
}

check_env() {
  local cmd=$1 made_with
  [[ $LAB_DIR == /?* ]] || die "LAB_DIR must be an absolute path other than / (got '${LAB_DIR:-/}')"
  # Host interface names are "<prefix>-<name>" and must fit Linux's 15 characters.
  [[ $LAB_PREFIX =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
    die "LAB_PREFIX must be 1-8 lowercase letters/digits, starting with a letter (got '$LAB_PREFIX')"
  # A lab directory belongs to the prefix it was made with: mixing them would strand namespaces.
  made_with=$(sed -n 's/^prefix=//p' "$MARKER" 2>/dev/null || true)
  if [[ -n $made_with && $made_with != "$LAB_PREFIX" ]]; then
    if [[ $cmd == down ]]; then
      warn "$LAB_DIR was made with LAB_PREFIX=$made_with; taking down that lab"
      LAB_PREFIX=$made_with HV_NS=$made_with-hv
    else
      die "$LAB_DIR belongs to a lab with LAB_PREFIX=$made_with (not $LAB_PREFIX); use that prefix, or another LAB_DIR"
    fi
  fi
}

need_root() {
  ((EUID == 0)) || die "'$1' needs root (network namespaces, veths, Open vSwitch): sudo $0 $1"
}

# How to call this script again with the same lab (for the hints we print).
self_cmd() {
  local env=""
  [[ $LAB_DIR != /run/vpcguard-lab ]] && env+="LAB_DIR=$LAB_DIR "
  [[ $LAB_PREFIX != vpcg ]] && env+="LAB_PREFIX=$LAB_PREFIX "
  printf '%s%s' "$env" "$0"
}

# ---- the private switch ----------------------------------------------------------------------
vsctl() { ovs-vsctl --db="unix:$LAB_DIR/db.sock" --timeout=10 "$@"; }
# ofctl CMD [ARGS...]: an ovs-ofctl command on br-int, through the switch's own socket.
ofctl() { local cmd=$1; shift; ovs-ofctl -O OpenFlow15 --timeout=10 "$cmd" "unix:$LAB_DIR/$BRIDGE.mgmt" "$@"; }

# pid_of NAME: the pid in LAB_DIR/NAME.pid if that process is alive and is this lab's (every
# daemon of the lab has LAB_DIR in its command line; a recycled pid does not).
pid_of() {
  local f=$LAB_DIR/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f") || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$LAB_DIR/" || return 1
  printf '%s' "$pid"
}

ovs_healthy() {
  pid_of ovsdb-server >/dev/null && pid_of ovs-vswitchd >/dev/null &&
    ovs-appctl --timeout=5 -t "$LAB_DIR/ovsdb-server.ctl" version >/dev/null 2>&1 &&
    ovs-appctl --timeout=5 -t "$LAB_DIR/ovs-vswitchd.ctl" version >/dev/null 2>&1
}

flow_count() {
  local out
  out=$(ofctl dump-flows 2>/dev/null) || { echo "?"; return; }
  grep -c 'actions=' <<<"$out" || true
}

# stop_daemon NAME: ask it to exit over its control socket, then signals; wait until gone.
stop_daemon() {
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$LAB_DIR/$name.pid"; return 0; }
  info "stopping $name (pid $pid)"
  if [[ $name == ovs* && -S $LAB_DIR/$name.ctl ]]; then
    ovs-appctl --timeout=5 -t "$LAB_DIR/$name.ctl" exit >/dev/null 2>&1 || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    ((i == 30)) && { kill -TERM "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$LAB_DIR/$name.pid"
}

start_ovs() {
  if ovs_healthy; then
    say "Open vSwitch: reusing the running private switch (ovsdb-server $(pid_of ovsdb-server), ovs-vswitchd $(pid_of ovs-vswitchd))"
  else
    say "Open vSwitch: starting a private switch in $LAB_DIR"
    stop_daemon ovs-vswitchd
    stop_daemon ovsdb-server
    [[ -r $OVS_SCHEMA ]] || die "OVS schema $OVS_SCHEMA not found (package openvswitch-common)"
    # The hypervisor namespace must be ours alone: a second userspace switch in it would fail
    # ("tap device ... busy"), so a switch of another lab (same LAB_PREFIX) is an error.
    if ns_exists "$HV_NS" && [[ -n $(ip netns pids "$HV_NS" 2>/dev/null) ]]; then
      die "namespace $HV_NS is in use by processes not started from $LAB_DIR (another lab with LAB_PREFIX=$LAB_PREFIX?); pick another LAB_PREFIX or take that lab down"
    fi
    [[ -f $LAB_DIR/conf.db ]] || ovsdb-tool create "$LAB_DIR/conf.db" "$OVS_SCHEMA"
    ovsdb-server --detach --no-chdir --pidfile="$LAB_DIR/ovsdb-server.pid" \
      --log-file="$LAB_DIR/ovsdb-server.log" --unixctl="$LAB_DIR/ovsdb-server.ctl" \
      --remote="punix:$LAB_DIR/db.sock" -vconsole:off -vsyslog:off -vfile:info \
      "$LAB_DIR/conf.db" 2>>"$LAB_DIR/ovs-start.log" ||
      die "ovsdb-server did not start: $(tail -n 3 "$LAB_DIR/ovs-start.log"); see $LAB_DIR/ovsdb-server.log"
    vsctl --no-wait init
    info "ovsdb-server pid $(pid_of ovsdb-server), socket $LAB_DIR/db.sock"
    ledger_add "$HV_NS"
    ns_exists "$HV_NS" || ip netns add "$HV_NS"
    ip -n "$HV_NS" link set lo up
    # --enable-dummy keeps the real netdev types (veths carry traffic) and adds dummy ones.
    ip netns exec "$HV_NS" ovs-vswitchd --detach --no-chdir --enable-dummy \
      --pidfile="$LAB_DIR/ovs-vswitchd.pid" --log-file="$LAB_DIR/ovs-vswitchd.log" \
      --unixctl="$LAB_DIR/ovs-vswitchd.ctl" -vconsole:off -vsyslog:off -vfile:info \
      "unix:$LAB_DIR/db.sock" 2>>"$LAB_DIR/ovs-start.log" ||
      die "ovs-vswitchd did not start: $(tail -n 3 "$LAB_DIR/ovs-start.log"); see $LAB_DIR/ovs-vswitchd.log"
    info "ovs-vswitchd pid $(pid_of ovs-vswitchd), in network namespace $HV_NS"
  fi
  vsctl -- --may-exist add-br "$BRIDGE" \
    -- set Bridge "$BRIDGE" datapath_type=netdev fail_mode=secure \
    protocols=OpenFlow13,OpenFlow14,OpenFlow15
  info "bridge $BRIDGE: datapath netdev, fail_mode secure, OpenFlow 1.3-1.5"
}

# ---- VMs -------------------------------------------------------------------------------------
ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }
ledger_add() { grep -qsx -- "$1" "$LEDGER" || printf '%s\n' "$1" >>"$LEDGER"; }
ledger_del() {
  [[ -f $LEDGER ]] || return 0
  grep -vx -- "$1" "$LEDGER" >"$LEDGER.tmp" || true
  mv "$LEDGER.tmp" "$LEDGER"
}

# Kill what runs inside a namespace we made (e.g. an iperf3 a user started with `exec`):
# a namespace with processes in it outlives `ip netns del`, and so would its veth.
kill_ns_pids() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
  [[ -n ${pids// /} ]] || return 0
  info "killing processes left in $ns: $pids"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  sleep 0.5
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
  # shellcheck disable=SC2086
  [[ -z ${pids// /} ]] || kill -KILL $pids 2>/dev/null || true
}

delete_vm() {
  delete_extra "$1" "$2" "$BRIDGE"
}

# host_ifname ID INDEX USED...: the hypervisor end's name, "<prefix>-<id without eni->", or
# "<prefix>-p<index>" when that would not fit 15 characters or is taken.
host_ifname() {
  local id=$1 idx=$2 base name
  shift 2
  base=${id#eni-}
  base=${base//[^a-zA-Z0-9]/}
  name=$LAB_PREFIX-$base
  if ((${#name} > 15)) || [[ -z $base ]] || [[ " $* " == *" $name "* ]]; then
    name=$LAB_PREFIX-p$idx
  fi
  printf '%s' "$name"
}

# A VM is kept when it was made from the same plan line and is still all there.
vm_intact() {
  local id=$1 ns=$2 host=$3 got
  ns_exists "$ns" || return 1
  ip -n "$ns" link show "$VM_IF" >/dev/null 2>&1 || return 1
  ip -n "$HV_NS" link show "$host" >/dev/null 2>&1 || return 1
  got=$(vsctl --if-exists get Interface "$host" external_ids:iface-id 2>/dev/null) || return 1
  [[ $got == "\"$id\"" || $got == "$id" ]] || return 1
  got=$(vsctl --if-exists get Interface "$host" ofport 2>/dev/null) || return 1
  [[ $got =~ ^[0-9]+$ ]] && ((got > 0))
}

create_vm() {
  local id=$1 ns=$2 host=$3 mac=$4 ipv4s=$5 gw4=$6 ipv6s=$7 gw6=$8 a ofport
  delete_vm "$ns" "$host"
  ledger_add "$ns"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Both ends are created directly in their namespaces: nothing of the lab ever sits in the
  # host's namespace, so names cannot collide with the host's interfaces or another lab's.
  ip link add "$host" netns "$HV_NS" type veth peer name "$VM_IF" netns "$ns"
  ip -n "$ns" link set "$VM_IF" address "$mac"
  # Userspace conntrack drops TCP with partial checksums: make the VM compute them.
  ip netns exec "$ns" ethtool -K "$VM_IF" tx off >/dev/null
  for a in ${ipv4s//,/ }; do ip -n "$ns" addr add "$a" dev "$VM_IF"; done
  if [[ $ipv6s != - ]]; then
    for a in ${ipv6s//,/ }; do ip -n "$ns" -6 addr add "$a" dev "$VM_IF" nodad; done
  fi
  ip -n "$ns" link set "$VM_IF" up
  ip -n "$HV_NS" link set "$host" up
  ip -n "$ns" route add default via "$gw4" dev "$VM_IF"
  [[ $gw6 == - ]] || ip -n "$ns" -6 route add default via "$gw6" dev "$VM_IF"
  vsctl -- --may-exist add-port "$BRIDGE" "$host" \
    -- set Interface "$host" "external_ids:iface-id=$id" "external_ids:vpcguard-lab=$LAB_PREFIX"
  ofport=$(vsctl get Interface "$host" ofport)
  if ! [[ $ofport =~ ^[0-9]+$ ]] || ((ofport <= 0)); then
    die "OVS could not add $host for $id: $(vsctl get Interface "$host" error 2>&1)"
  fi
}

make_vms() {
  local plan_file=$1 new=$LAB_DIR/vms.new idx=0 used=() line
  local id subnet mac ipv4s gw4 ipv6s gw6 ns host old kept=0 made=0 removed=0
  : >"$new"
  # fd 3, not stdin: nothing run inside the loop can eat the plan.
  while read -r id subnet mac ipv4s gw4 ipv6s gw6 <&3; do
    idx=$((idx + 1))
    ns=$LAB_PREFIX-$id
    host=$(host_ifname "$id" "$idx" "${used[@]}")
    used+=("$host")
    line="$id $ns $host $subnet $mac $ipv4s $gw4 $ipv6s $gw6"
    old=$(awk -v id="$id" '$1 == id' "$STATE" 2>/dev/null || true)
    if [[ $old == "$line" ]] && vm_intact "$id" "$ns" "$host"; then
      kept=$((kept + 1))
    else
      info "VM $id: namespace $ns, veth $VM_IF <-> $host"
      create_vm "$id" "$ns" "$host" "$mac" "$ipv4s" "$gw4" "$ipv6s" "$gw6"
      made=$((made + 1))
    fi
    printf '%s\n' "$line" >>"$new"
  done 3<"$plan_file"
  # VMs of an earlier config that are gone from this one.
  if [[ -f $STATE ]]; then
    while read -r id ns host _ <&3; do
      awk -v id="$id" '$1 == id {found=1} END {exit !found}' "$new" && continue
      info "VM $id: no longer in the config, removing"
      delete_vm "$ns" "$host"
      removed=$((removed + 1))
    done 3<"$STATE"
  fi
  mv "$new" "$STATE"
  say "VMs: $made created, $kept kept unchanged, $removed removed"
}

# ---- traffic mirroring: the underlay, appliances, SPAN ports ---------------------------------
# underlay_up ADDRESS/PREFIX: br-underlay, a plain learning switch, its internal device (made by
# ovs-vswitchd in the hypervisor namespace) up with ADDRESS. ovs-vswitchd's route table follows
# that namespace's kernel routes, so the connected route makes it send copies for remote
# targets out of br-underlay (docs/mirroring.md).
underlay_up() {
  local addr=$1
  vsctl -- --may-exist add-br "$UNDERLAY" \
    -- set Bridge "$UNDERLAY" datapath_type=netdev fail_mode=standalone \
    -- set Bridge "$UNDERLAY" external_ids:vpcguard-lab="$LAB_PREFIX"
  # A new standalone bridge has this flow already; a reused one may have lost it.
  ovs-ofctl --timeout=10 add-flow "unix:$LAB_DIR/$UNDERLAY.mgmt" "priority=0,actions=NORMAL"
  ip -n "$HV_NS" link show "$UNDERLAY" >/dev/null 2>&1 ||
    die "ovs-vswitchd made no device $UNDERLAY in $HV_NS: $(vsctl get Interface "$UNDERLAY" error 2>&1)"
  # One address: a changed config replaces it rather than adding a second.
  ip -n "$HV_NS" -4 addr flush dev "$UNDERLAY"
  ip -n "$HV_NS" addr add "$addr" dev "$UNDERLAY"
  ip -n "$HV_NS" link set "$UNDERLAY" up
  info "underlay: bridge $UNDERLAY (netdev, NORMAL), $addr on its device in $HV_NS"
}

underlay_down() {
  [[ -S $LAB_DIR/db.sock ]] || return 0
  if vsctl br-exists "$UNDERLAY" 2>/dev/null; then
    info "underlay: no remote mirror target in the config, removing $UNDERLAY"
    vsctl --if-exists del-br "$UNDERLAY"
  fi
}

# An appliance or SPAN namespace is kept when it was made from the same line and is all there.
extra_intact() {
  local ns=$1 host=$2 got
  ns_exists "$ns" || return 1
  ip -n "$ns" link show "$VM_IF" >/dev/null 2>&1 || return 1
  ip -n "$HV_NS" link show "$host" >/dev/null 2>&1 || return 1
  got=$(vsctl --if-exists get Interface "$host" ofport 2>/dev/null) || return 1
  [[ $got =~ ^[0-9]+$ ]] && ((got > 0))
}

delete_extra() {
  local ns=$1 host=$2 bridge=$3
  if [[ -S $LAB_DIR/db.sock ]]; then
    vsctl --if-exists del-port "$bridge" "$host" 2>/dev/null || true
  fi
  if ns_exists "$ns"; then
    kill_ns_pids "$ns"
    ip netns del "$ns"
  fi
  ledger_del "$ns"
  if ns_exists "$HV_NS" && ip -n "$HV_NS" link show "$host" >/dev/null 2>&1; then
    ip -n "$HV_NS" link del "$host"
  fi
}

# create_extra NS HOST BRIDGE ADDRESSES|- NEXTHOP|-: a namespace with eth0 (the comma-separated
# addresses), its peer HOST on BRIDGE; with a next hop, the hypervisor routes the first address
# through it.
create_extra() {
  local ns=$1 host=$2 bridge=$3 addrs=$4 via=$5 a ofport
  delete_extra "$ns" "$host" "$bridge"
  ledger_add "$ns"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # IPv4 only, and quiet: no IPv6 router solicitations or MLD reports from these ends.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
  ip link add "$host" netns "$HV_NS" type veth peer name "$VM_IF" netns "$ns"
  ip netns exec "$ns" ethtool -K "$VM_IF" tx off >/dev/null
  if [[ $addrs != - ]]; then
    for a in ${addrs//,/ }; do ip -n "$ns" addr add "$a" dev "$VM_IF"; done
  fi
  ip -n "$ns" link set "$VM_IF" up
  ip -n "$HV_NS" link set "$host" up
  if [[ $via != - ]]; then
    # An appliance outside the underlay subnet, reached through its own address on it.
    ip -n "$HV_NS" route replace "${addrs%%,*}" via "$via" dev "$UNDERLAY"
  fi
  # No iface-id: vpcguardd must not take these for VMs.
  vsctl -- --may-exist add-port "$bridge" "$host" \
    -- set Interface "$host" "external_ids:vpcguard-lab=$LAB_PREFIX"
  ofport=$(vsctl get Interface "$host" ofport)
  if ! [[ $ofport =~ ^[0-9]+$ ]] || ((ofport <= 0)); then
    die "OVS could not add $host to $bridge: $(vsctl get Interface "$host" error 2>&1)"
  fi
}

# make_extras PLAN: what `lab_plan.py --mirrors` asked for (see its --help), made or kept; extras
# of an earlier config that are gone from this one are removed.
make_extras() {
  local plan_file=$1 new=$LAB_DIR/extras.new kind a b c name ns host bridge addrs via line old
  local underlay="" idx=0 kept=0 made=0 removed=0 vm_hosts
  : >"$new"
  underlay=$(awk '$1 == "underlay" {print $2}' "$plan_file")
  if [[ -n $underlay ]]; then underlay_up "$underlay"; fi
  vm_hosts=" $(awk '{print $3}' "$STATE" | paste -sd' ') "
  while read -r kind a b c <&3; do
    case $kind in
      appliance)
        idx=$((idx + 1))
        name=appliance-$a ns=$LAB_PREFIX-appliance-$a host=$LAB_PREFIX-ul$idx bridge=$UNDERLAY
        addrs=$b via=-
        [[ -z $c ]] || addrs+=",$c" via=${c%/*} ;;
      span)
        name=span-$a ns=$LAB_PREFIX-span-$a host=$a bridge=$BRIDGE addrs=- via=-
        [[ $vm_hosts != *" $host "* ]] ||
          die "port mirror output_port $host is also the lab's port of a VM; rename the output_port" ;;
      *) continue ;;
    esac
    line="$kind $name $ns $host $bridge $addrs $via"
    old=$(awk -v n="$name" '$2 == n' "$EXTRAS" 2>/dev/null || true)
    if [[ $old == "$line" ]] && extra_intact "$ns" "$host"; then
      kept=$((kept + 1))
    else
      info "$kind $name: namespace $ns, veth $VM_IF$([[ $addrs == - ]] || printf ' (%s)' "${addrs//,/ }") <-> $host on $bridge"
      create_extra "$ns" "$host" "$bridge" "$addrs" "$via"
      made=$((made + 1))
    fi
    printf '%s\n' "$line" >>"$new"
  done 3<"$plan_file"
  if [[ -f $EXTRAS ]]; then
    while read -r kind name ns host bridge _ <&3; do
      awk -v n="$name" '$2 == n {found=1} END {exit !found}' "$new" && continue
      info "$kind $name: no longer in the config, removing"
      delete_extra "$ns" "$host" "$bridge"
      removed=$((removed + 1))
    done 3<"$EXTRAS"
  fi
  mv "$new" "$EXTRAS"
  [[ -n $underlay ]] || underlay_down
  ((made + kept + removed == 0)) ||
    say "Mirroring: $made appliance/SPAN namespace(s) created, $kept kept, $removed removed"
  prime_appliances
}

# ovs-vswitchd learns an appliance's MAC by snooping ARP replies to the underlay bridge's
# address, but only while a tunnel port exists (vpcguardd makes it with the first session), and
# drops the first copies while it asks. So the lab tells it the MAC (the entry lives on while
# copies use it; after 15 idle minutes OVS asks by ARP itself), after a ping from the hypervisor
# namespace has proved the underlay works.
prime_appliances() {
  local name ns a via mac
  [[ -f $EXTRAS ]] || return 0
  while read -r _ name ns _ _ a via <&3; do
    [[ $name == appliance-* ]] || continue
    a=${a%%/*}
    if ip netns exec "$HV_NS" ping -c1 -W2 "$a" >/dev/null 2>&1; then
      info "$name: reachable over $UNDERLAY from $HV_NS"
    else
      warn "$name: $a does not answer a ping from $HV_NS over $UNDERLAY: copies to it will be lost"
    fi
    mac=$(ip -n "$ns" -o link show "$VM_IF" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
    # The neighbour is the next hop: the appliance itself, or its address on the underlay.
    [[ $via == - ]] || a=$via
    ovs-appctl --timeout=10 -t "$LAB_DIR/ovs-vswitchd.ctl" tnl/neigh/set "$UNDERLAY" "$a" "$mac" >/dev/null
  done 3<"$EXTRAS"
}

# ---- desired state and control API ----------------------------------------------------------
# The database: created from the schema on first up, converted when the schema changed (a newer
# checkout), served by its own ovsdb-server on a socket only root can open (umask 077): the API
# server is the only door for everyone else.
start_state_db() {
  local db=$LAB_DIR/state.db
  [[ -r $STATE_SCHEMA ]] || die "state schema $STATE_SCHEMA not found"
  if pid_of state-db >/dev/null &&
    ovs-appctl --timeout=5 -t "$LAB_DIR/state-db.ctl" version >/dev/null 2>&1; then
    info "state database: reusing ovsdb-server pid $(pid_of state-db)"
    return 0
  fi
  stop_daemon state-db
  if [[ ! -f $db ]]; then
    ovsdb-tool create "$db" "$STATE_SCHEMA"
  elif [[ $(ovsdb-tool needs-conversion "$db" "$STATE_SCHEMA") == yes ]]; then
    info "state database: converting $db to the schema of this checkout"
    ovsdb-tool convert "$db" "$STATE_SCHEMA"
  fi
  (umask 077 && ovsdb-server --detach --no-chdir --pidfile="$LAB_DIR/state-db.pid" \
    --log-file="$LAB_DIR/state-db.log" --unixctl="$LAB_DIR/state-db.ctl" \
    --remote="punix:$LAB_DIR/state.sock" -vconsole:off -vsyslog:off -vfile:info \
    "$db" 2>>"$LAB_DIR/ovs-start.log") ||
    die "state ovsdb-server did not start: $(tail -n 3 "$LAB_DIR/ovs-start.log"); see $LAB_DIR/state-db.log"
  info "state database: ovsdb-server pid $(pid_of state-db), socket $LAB_DIR/state.sock (root only)"
}

start_apid() {
  local bin=$BUILD_DIR/api/vpcguard-apid log=$LAB_DIR/vpcguard-apid.log pid args
  [[ -x $bin ]] || die "vpcguard-apid not found at $bin (build failed?)"
  stop_daemon vpcguard-apid
  # A killed server leaves its socket file behind; waiting for the new one must not see it.
  rm -f "$LAB_DIR/api.sock"
  args=(--state "unix:$LAB_DIR/state.sock" --iam "$IAM_DIR" --socket "$LAB_DIR/api.sock"
    --audit-log "$LAB_DIR/audit.log")
  [[ -z ${LAB_API_GROUP:-} ]] || args+=(--socket-group "$LAB_API_GROUP")
  printf '=== lab.sh up %s: vpcguard-apid %s\n' "$(date -u +%FT%TZ)" "${args[*]}" >>"$log"
  setsid "$bin" "${args[@]}" >>"$log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$LAB_DIR/vpcguard-apid.pid"
  for _ in $(seq 100); do
    [[ -S $LAB_DIR/api.sock ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 "$pid" 2>/dev/null || [[ ! -S $LAB_DIR/api.sock ]]; then
    tail -n 5 "$log" | sed 's/^/      /' >&2
    die "vpcguard-apid did not come up; last lines of $log above"
  fi
  info "control API: vpcguard-apid pid $pid, socket $LAB_DIR/api.sock (IAM: $IAM_DIR, audit: $LAB_DIR/audit.log)"
}

# The config becomes the desired state through the API, as root (network-admin in configs/iam):
# the plan is printed, then committed in one transaction.
apply_config() {
  local config=$1 out
  say "Desired state: vpcguardctl apply $config"
  if ! out=$(VPCGUARD_API=$API "$BUILD_DIR/daemon/vpcguardctl" apply "$config" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/      /' >&2
    die "the API refused config $config: $(printf '%s\n' "$out" | head -n 1)"
  fi
  printf '%s\n' "$out" | sed 's/^/    /'
}

# ---- vpcguardd -------------------------------------------------------------------------------
# vpcguardd refuses a config with errors and installs nothing (or keeps the policy it runs):
# say so before anything starts, with every error as file:line:col, and fail up. A lab that is
# already up keeps its running policy.
check_config() {
  local config=$1 out
  if ! out=$("$BUILD_DIR/daemon/vpcguardctl" check "$config" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/      /' >&2
    die "vpcguardd would refuse config $config; first error: $(printf '%s\n' "$out" | head -n 1)"
  fi
}

start_vpcguardd() {
  local bin=$BUILD_DIR/daemon/vpcguardd log=$LAB_DIR/vpcguardd.log pid n rc
  [[ -x $bin ]] || die "vpcguardd not found at $bin (build failed?)"
  stop_daemon vpcguardd
  # Labs made by earlier versions had a forwarding flow of their own; it must not outlive them.
  ofctl del-flows "cookie=$FALLBACK_COOKIE/-1"
  say "vpcguardd: starting on $BRIDGE (log $log)"
  printf '=== lab.sh up %s: vpcguardd --state unix:%s/state.sock\n' "$(date -u +%FT%TZ)" "$LAB_DIR" >>"$log"
  # setsid: its own session, so it outlives this script and a closed terminal.
  setsid ip netns exec "$HV_NS" "$bin" --state "unix:$LAB_DIR/state.sock" --bridge "$BRIDGE" \
    --ovsdb "unix:$LAB_DIR/db.sock" --datapath-type netdev \
    --status-file "$LAB_DIR/vpcguardd.status.json" >>"$log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$LAB_DIR/vpcguardd.pid"
  # Give it 10 s to install its pipeline: wait for this daemon's own verdict in its status file
  # (a sync done, or an error), not for flows: flows of an earlier run are still there.
  local verdict="" errors=0
  for _ in $(seq 100); do
    verdict=$(daemon_verdict "$pid")
    [[ $verdict == synced ]] && break
    # An error may still be followed by a sync (a retry): believe it once it stands for 2 s.
    if [[ $verdict == error:* ]]; then ((++errors >= 20)) && break; else errors=0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    info "vpcguardd running, pid $pid"
  else
    rc=0
    wait "$pid" || rc=$?
    rm -f "$LAB_DIR/vpcguardd.pid"
    tail -n 5 "$log" | sed 's/^/      /' >&2
    die "vpcguardd exited (status $rc) within the first seconds; last lines of $log above"
  fi
  n=$(flow_count)
  # No fallback forwarding: the bridge is fail-secure, so without vpcguardd's flows nothing
  # passes, which is what a policy engine that failed must mean. The lab is not up then.
  case $verdict in
    error:*)
      tail -n 5 "$log" | sed 's/^/      /' >&2
      die "vpcguardd did not install the policy (${n:-0} flow(s) on $BRIDGE): ${verdict#error:}"
      ;;
    "")
      tail -n 5 "$log" | sed 's/^/      /' >&2
      die "vpcguardd reported no sync within 10 s (${n:-0} flow(s) on $BRIDGE); see $log"
      ;;
  esac
  info "$BRIDGE has $n flow(s) from vpcguardd"
}

# daemon_verdict PID: from vpcguardd's status file, once the daemon with that pid wrote it:
# "error:<last error>", "synced", or nothing yet.
daemon_verdict() {
  python3 - "$LAB_DIR/vpcguardd.status.json" "$1" <<'PY' 2>/dev/null || true
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
if s.get("pid") != int(sys.argv[2]):
    sys.exit(0)
if s.get("last_sync"):
    print("synced")
elif s.get("last_error"):
    print("error:" + s["last_error"])
PY
}

# ---- commands --------------------------------------------------------------------------------
print_vms() {
  local id ns host subnet mac ipv4s gw4 ipv6s gw6 ofport addrs
  printf '    %-14s %-20s %-17s %-15s %-6s %s\n' INTERFACE NAMESPACE MAC SUBNET OFPORT ADDRESSES
  while read -r id ns host subnet mac ipv4s gw4 ipv6s gw6 <&3; do
    ofport=$(vsctl --if-exists get Interface "$host" ofport 2>/dev/null || echo "?")
    ns_exists "$ns" || ns="$ns(MISSING)"
    addrs=${ipv4s//,/ }
    [[ $ipv6s == - ]] || addrs+=" ${ipv6s//,/ }"
    printf '    %-14s %-20s %-17s %-15s %-6s %s (gw %s%s)\n' "$id" "$ns" "$mac" "$subnet" \
      "${ofport:-?}" "$addrs" "$gw4" "$([[ $gw6 == - ]] || printf ', %s' "$gw6")"
  done 3<"$STATE"
}

# The appliance and SPAN namespaces, and the underlay (nothing without traffic mirroring).
print_extras() {
  local kind name ns host bridge addr via ofport addrs
  [[ -s $EXTRAS ]] || return 0
  if addrs=$(ip -n "$HV_NS" -4 -o addr show dev "$UNDERLAY" 2>/dev/null | awk '{print $4}' | paste -sd' ') &&
    [[ -n $addrs ]]; then
    printf '    underlay: bridge %s, %s on its device in %s\n' "$UNDERLAY" "$addrs" "$HV_NS"
  fi
  printf '    %-22s %-30s %-12s %-12s %-6s %s\n' MIRRORING NAMESPACE PORT BRIDGE OFPORT ADDRESS
  while read -r kind name ns host bridge addr via <&3; do
    ofport=$(vsctl --if-exists get Interface "$host" ofport 2>/dev/null || echo "?")
    ns_exists "$ns" || ns="$ns(MISSING)"
    if [[ $addr == - ]]; then
      addr="(SPAN: no address)"
    else
      addr=${addr//,/ }
      [[ $via == - ]] || addr+=" (routed via $via)"
    fi
    printf '    %-22s %-30s %-12s %-12s %-6s %s\n' "$name" "$ns" "$host" "$bridge" "${ofport:-?}" "$addr"
  done 3<"$EXTRAS"
}

print_hints() {
  local me a b a_ip b_ip a_port a_mac b_mac monitors
  me=$(self_cmd)
  read -r a _ _ _ a_mac a_ip _ < <(sed -n 1p "$STATE")
  # The first and the last VM that is not a mirror target: with the sample configs, the web
  # server and the database, which the policy lets talk (across subnets, through the router).
  monitors=" $(awk '$1 == "monitor" {print $2}' "$LAB_DIR/plan.mirrors" 2>/dev/null | paste -sd' ') "
  read -r b _ _ _ b_mac b_ip _ < <(awk -v m="$monitors" 'index(m, " " $1 " ") == 0 {last = $0}
    END {print last}' "$STATE")
  a_ip=${a_ip%%/*} a_ip=${a_ip%%,*}
  b_ip=${b_ip%%,*} b_ip=${b_ip%%/*}
  a_port=$(vsctl --if-exists get Interface "$(awk -v id="$a" '$1 == id {print $3}' "$STATE")" ofport)
  cat <<EOF

How to poke at it:
  $me exec $a -- ping -c1 $b_ip
  $me exec $a -- ip addr
  $me exec $b -- nc -l -p 5432          # a TCP server in $b; then from $a:
  $me exec $a -- nc -zv $b_ip 5432       # (a port the policy does not allow times out)
  $me ctl trace --from $a --to $b tcp/5432   # why (not): the deciding rules, checked on the switch
  $me ctl stats                          # packets per security-group rule and NACL entry
  $me ctl describe-security-groups       # the control API (AWS CLI verbs; docs/cli.md)
  $me ctl authorize-security-group-ingress --group-id GROUP --protocol tcp --port 443 --cidr 10.0.0.0/16
  $me ctl plan configs/lab.toml          # what applying a file would change; ctl apply FILE does it
  ovs-ofctl -O OpenFlow15 dump-flows unix:$LAB_DIR/$BRIDGE.mgmt
  ovs-appctl -t $LAB_DIR/ovs-vswitchd.ctl ofproto/trace $BRIDGE in_port=$a_port,icmp,dl_src=$a_mac,dl_dst=02:76:67:00:00:01,nw_src=$a_ip,nw_dst=$b_ip,nw_ttl=64 --ct-next trk,new --ct-next trk,new
  ovs-appctl -t $LAB_DIR/ovs-vswitchd.ctl dpctl/dump-conntrack
$(print_mirror_hints "$me")
  $BUILD_DIR/daemon/vpcguardctl status --status-file $LAB_DIR/vpcguardd.status.json
  (what passes is what the config's security groups and NACLs allow; docs/pipeline.md explains
   the tables, and reg4 in a trace of a dropped packet says which rule dropped it)
  ovs-vsctl --db=unix:$LAB_DIR/db.sock show
  logs: $LAB_DIR/vpcguardd.log  $LAB_DIR/vpcguard-apid.log  $LAB_DIR/ovs-vswitchd.log  $LAB_DIR/ovsdb-server.log
  audit log of every API request: $LAB_DIR/audit.log
  $me status
  $me down
EOF
}

# Where to watch mirror copies (nothing without traffic mirroring).
print_mirror_hints() {
  local me=$1 kind id name
  [[ -f $LAB_DIR/plan.mirrors ]] || return 0
  while read -r kind id _ <&3; do
    [[ $kind == monitor ]] &&
      printf '  %s exec %s -- tcpdump -ni eth0 udp port 4789   # mirror copies (VXLAN) at the monitor VM\n' "$me" "$id"
  done 3<"$LAB_DIR/plan.mirrors"
  [[ -f $EXTRAS ]] || return 0
  while read -r kind name _ <&3; do
    case $kind in
      appliance) printf '  %s exec %s -- tcpdump -ni eth0 udp port 4789   # copies over the underlay\n' "$me" "$name" ;;
      span) printf '  %s exec %s -- tcpdump -ni eth0   # the SPAN port: whole frames\n' "$me" "$name" ;;
    esac
  done 3<"$EXTRAS"
  grep -q '^appliance' "$EXTRAS" &&
    printf '  ovs-appctl -t %s/ovs-vswitchd.ctl tnl/neigh/show   # the appliance MACs ovs-vswitchd knows\n' "$LAB_DIR"
  return 0
}

# On any failure of `up`: say where, and how to get back to a clean machine.
UP_FAILED_AT=""
on_up_err() { UP_FAILED_AT="line $1: $2"; }
on_up_exit() {
  local rc=$?
  ((rc == 0)) && return 0
  printf '\nlab.sh: up FAILED (status %s%s). Logs are in %s.\n' "$rc" \
    "${UP_FAILED_AT:+, at $UP_FAILED_AT}" "$LAB_DIR" >&2
  printf 'Fix the cause and run up again (it reuses what is there), or clean up with: %s down\n' \
    "$(self_cmd)" >&2
}

# missing_deps: the commands (and the OVS source, if a build is needed) that are not there.
missing_deps() {
  local c
  for c in ovsdb-server ovsdb-tool ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl ip ethtool \
    python3 cmake make g++ ping setsid; do
    command -v "$c" >/dev/null 2>&1 || printf '%s ' "$c"
  done
  [[ -f /usr/src/openvswitch/openvswitch.tar.gz || -x $BUILD_DIR/daemon/vpcguardd ]] ||
    printf '%s ' /usr/src/openvswitch/openvswitch.tar.gz
}

ensure_deps() {
  local missing
  missing=$(missing_deps)
  [[ -z $missing ]] && return 0
  if [[ ${LAB_SKIP_DEPS:-0} == 1 ]]; then
    die "missing: ${missing% } (LAB_SKIP_DEPS=1, so not installing; run scripts/deps.sh)"
  fi
  say "Dependencies: missing ${missing% }; running scripts/deps.sh"
  "$REPO/scripts/deps.sh"
  missing=$(missing_deps)
  [[ -z $missing ]] || die "still missing after scripts/deps.sh: ${missing% }"
}

build() {
  local jobs args log=$LAB_DIR/build.log b
  if [[ ${LAB_NO_BUILD:-0} == 1 ]]; then
    for b in daemon/vpcguardd daemon/vpcguardctl api/vpcguard-apid; do
      [[ -x $BUILD_DIR/$b ]] || die "LAB_NO_BUILD=1 but $BUILD_DIR/$b is missing"
    done
    say "Build: none (LAB_NO_BUILD=1), using $BUILD_DIR/daemon/vpcguardd -> $(realpath "$BUILD_DIR/daemon/vpcguardd")"
    return 0
  fi
  jobs=${VPCGUARD_BUILD_JOBS:-$(nproc)}
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    say "Build: configuring $BUILD_DIR (log $log)"
    args=(-S "$REPO" -B "$BUILD_DIR")
    [[ -z ${VPCGUARD_OVS_BUILD_DIR:-} ]] || args+=("-DVPCGUARD_OVS_BUILD_DIR=$VPCGUARD_OVS_BUILD_DIR")
    info "the first build also compiles the Open vSwitch library (about 3 minutes on 2 cores)"
    cmake "${args[@]}" >>"$log" 2>&1 || {
      tail -n 20 "$log" >&2
      die "cmake configure failed (missing packages? run scripts/deps.sh); full log: $log"
    }
  else
    say "Build: reusing $BUILD_DIR (log $log)"
  fi
  cmake --build "$BUILD_DIR" --target vpcguardd vpcguardctl vpcguard-apid -j "$jobs" >>"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    die "building vpcguardd failed; full log: $log"
  }
  info "vpcguardd: $BUILD_DIR/daemon/vpcguardd"
}

cmd_up() {
  local config=$REPO/configs/lab.toml plan mirrors checked=0
  while (($#)); do
    case $1 in
      --config) [[ $# -ge 2 ]] || die "--config needs a FILE or DIR"; config=$2; shift 2 ;;
      --config=*) config=${1#--config=}; shift ;;
      *) die "up: unknown argument '$1' (usage: up [--config FILE|DIR])" ;;
    esac
  done
  need_root up
  [[ -e $config ]] || die "config $config does not exist"
  config=$(realpath "$config")
  if [[ -d $LAB_DIR && ! -f $MARKER && -n $(ls -A "$LAB_DIR") ]]; then
    die "$LAB_DIR exists, is not empty and was not made by lab.sh; choose another LAB_DIR"
  fi
  say "vpcguard lab: LAB_DIR=$LAB_DIR LAB_PREFIX=$LAB_PREFIX config=$config"
  ensure_deps
  # Read the config before making anything: a bad config leaves the machine as it was.
  plan=$(python3 "$REPO/vagrant/lab_plan.py" "$config") || die "cannot use config $config (see above)"
  mirrors=$(python3 "$REPO/vagrant/lab_plan.py" --mirrors "$config") ||
    die "cannot use config $config (see above)"
  # Check it as vpcguardd will before anything changes (a running lab keeps its policy); the very
  # first up has no vpcguardctl yet and checks right after building.
  if [[ -x $BUILD_DIR/daemon/vpcguardctl ]]; then
    check_config "$config"
    checked=1
  fi

  mkdir -p "$LAB_DIR"
  printf 'prefix=%s\n' "$LAB_PREFIX" >"$MARKER"
  trap 'on_up_err "$LINENO" "$BASH_COMMAND"' ERR
  trap on_up_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  printf '%s\n' "$plan" >"$LAB_DIR/plan"
  printf '%s\n' "$mirrors" >"$LAB_DIR/plan.mirrors"
  say "Config: $(wc -l <"$LAB_DIR/plan") network interface(s)"
  build
  ((checked)) || check_config "$config"
  start_ovs
  make_vms "$LAB_DIR/plan"
  # Before vpcguardd: its port mirrors name the SPAN ports, its remote targets need the underlay.
  make_extras "$LAB_DIR/plan.mirrors"
  start_state_db
  start_apid
  apply_config "$config"
  start_vpcguardd
  trap - ERR EXIT

  say "Lab is up: $BRIDGE has $(flow_count) flow(s)"
  print_vms
  print_extras
  print_hints
}

# vpcguardctl pointed at the lab: trace, stats, status and lint read vpcguardd's status file (it
# names the switch and the desired state); every other verb goes to the lab's control API as the
# calling user (IAM decides; root is the network admin). trace always asks the switch too
# (--switch): the lab exists to show what the switch does.
cmd_ctl() {
  local sub=${1:-} ctl=$BUILD_DIR/daemon/vpcguardctl status_file=$LAB_DIR/vpcguardd.status.json
  [[ -n $sub ]] || die "usage: $(self_cmd) ctl VERB ARGS...  (an AWS verb such as describe-security-groups, or trace|stats|status|lint)"
  shift
  [[ -x $ctl ]] || die "$ctl not found: build first (cmake --build $BUILD_DIR)"
  case $sub in
    trace | stats | status | lint)
      [[ -f $status_file ]] || die "no vpcguardd status in $LAB_DIR: is the lab up?" ;;
  esac
  case $sub in
    trace) exec "$ctl" trace --switch --status-file "$status_file" "$@" ;;
    stats | status) exec "$ctl" "$sub" --status-file "$status_file" "$@" ;;
    lint) exec "$ctl" lint --switch --status-file "$status_file" "$@" ;;
    *) VPCGUARD_API=$API exec "$ctl" "$sub" "$@" ;;
  esac
}

# stopped PID: the process is stopped (state T: SIGSTOP, or t: traced).
stopped() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ $state == T || $state == t ]]
}

cmd_status() {
  local rc=0 pid n
  if [[ ! -f $MARKER ]]; then
    echo "No lab at $LAB_DIR (start one with: $(self_cmd) up)"
    return 1
  fi
  echo "Lab at $LAB_DIR (prefix $LAB_PREFIX)"
  # A stopped (SIGSTOP) or hung switch process keeps its sockets open and answers nothing: every
  # ovs-* tool would wait for its timeout. Say so, and ask it nothing.
  if pid=$(pid_of ovsdb-server); then
    if stopped "$pid"; then echo "  ovsdb-server: STOPPED, pid $pid (does not respond; continue it: kill -CONT $pid)"; rc=1
    else echo "  ovsdb-server: running, pid $pid"; fi
  else echo "  ovsdb-server: NOT running"; rc=1; fi
  if pid=$(pid_of ovs-vswitchd); then
    if stopped "$pid"; then echo "  ovs-vswitchd: STOPPED, pid $pid (does not respond; continue it: kill -CONT $pid)"; rc=1
    else echo "  ovs-vswitchd: running, pid $pid, namespace $HV_NS"; fi
  else echo "  ovs-vswitchd: NOT running"; rc=1; fi
  if pid=$(pid_of state-db); then echo "  state db:     running, pid $pid, socket $LAB_DIR/state.sock"; else echo "  state db:     NOT running"; rc=1; fi
  if pid=$(pid_of vpcguard-apid); then echo "  control API:  running, pid $pid, socket $LAB_DIR/api.sock"; else echo "  control API:  NOT running"; rc=1; fi
  if pid=$(pid_of vpcguardd); then
    echo "  vpcguardd:    running, pid $pid"
    if [[ -x $BUILD_DIR/daemon/vpcguardctl && -f $LAB_DIR/vpcguardd.status.json ]]; then
      local report
      report=$("$BUILD_DIR/daemon/vpcguardctl" status --status-file "$LAB_DIR/vpcguardd.status.json" || true)
      printf '%s\n' "$report" | sed 's/^/                /'
      # vpcguardd found the switch silent (hung, if not stopped): do not wait on it below.
      [[ $report != *"DOES NOT RESPOND"* ]] || rc=1
    fi
  else
    echo "  vpcguardd:    NOT running; last lines of $LAB_DIR/vpcguardd.log:"
    tail -n 3 "$LAB_DIR/vpcguardd.log" 2>/dev/null | sed 's/^/                /' || true
  fi
  if ((rc == 0)); then
    n=$(flow_count)
    echo "  $BRIDGE:       $n flow(s)"
  fi
  if [[ -f $STATE ]]; then
    echo "  VMs:"
    if ((rc == 0)); then print_vms; else sed 's/^/    /' "$STATE"; fi
  else
    echo "  VMs: none"
  fi
  if [[ -s $EXTRAS ]]; then
    echo "  Mirroring (appliances on the underlay, SPAN ports):"
    if ((rc == 0)); then print_extras; else sed 's/^/    /' "$EXTRAS"; fi
  fi
  return "$rc"
}

cmd_exec() {
  local id=${1:-} ns
  [[ -n $id ]] || die "usage: $0 exec <interface-id|appliance-IP|span-PORT> -- CMD..."
  shift
  [[ ${1:-} == -- ]] && shift
  (($#)) || die "usage: $0 exec $id -- CMD...  (no command given)"
  [[ -f $STATE ]] || die "no lab at $LAB_DIR (start one with: $(self_cmd) up)"
  ns=$(awk -v id="$id" '$1 == id {print $2}' "$STATE")
  [[ -n $ns || ! -f $EXTRAS ]] || ns=$(awk -v n="$id" '$2 == n {print $3}' "$EXTRAS")
  [[ -n $ns ]] || die "unknown interface id '$id'; known: $(
    { awk '{print $1}' "$STATE"; [[ ! -f $EXTRAS ]] || awk '{print $2}' "$EXTRAS"; } | paste -sd' ')"
  ns_exists "$ns" || die "namespace $ns of $id is gone; run '$(self_cmd) up' again"
  need_root exec
  exec ip netns exec "$ns" "$@"
}

cmd_down() {
  local ns pid name namespaces=() left=() strays=()
  need_root down
  say "Stopping lab at $LAB_DIR (prefix $LAB_PREFIX)"
  if [[ -d $LAB_DIR && ! -f $MARKER && -n $(ls -A "$LAB_DIR") ]]; then
    die "$LAB_DIR was not made by lab.sh (no $MARKER); refusing to touch it"
  fi
  stop_daemon vpcguardd
  stop_daemon vpcguard-apid
  stop_daemon state-db
  stop_daemon ovs-vswitchd
  stop_daemon ovsdb-server
  # Daemons of this lab whose pidfile is gone (an `up` killed half way): found by LAB_DIR in
  # their command line, checked by name.
  for pid in $(pgrep -f -- "$LAB_DIR/" || true); do
    name=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case $name in
      ovsdb-server | ovs-vswitchd | vpcguardd | vpcguard-apid)
        info "stopping stray $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        strays+=("$pid") ;;
    esac
  done
  for pid in "${strays[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Namespaces: the VMs and the hypervisor. Deleting a namespace deletes the veth ends in it,
  # and a veth's peer goes with it.
  if [[ -f $LEDGER ]]; then
    mapfile -t namespaces <"$LEDGER"
  elif [[ ! -e $LAB_DIR ]]; then
    # The lab directory is gone (deleted by hand?): fall back to the names.
    mapfile -t namespaces < <(ip netns list | awk '{print $1}' | grep -- "^$LAB_PREFIX-" || true)
    ((${#namespaces[@]} == 0)) ||
      warn "$LAB_DIR is gone; deleting namespaces named $LAB_PREFIX-*: ${namespaces[*]}"
  fi
  for ns in "${namespaces[@]}"; do
    ns_exists "$ns" || continue
    kill_ns_pids "$ns"
    info "deleting namespace $ns"
    ip netns del "$ns" || warn "could not delete namespace $ns"
  done
  # Defensive: a veth of ours in the host namespace (the lab makes both ends inside
  # namespaces, so only a failure inside ip itself could leave one here).
  for name in $(ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $name == "$LAB_PREFIX"-* ]] || continue
    info "deleting interface $name"
    ip link del "$name" || warn "could not delete interface $name"
  done
  if [[ -d $LAB_DIR ]]; then
    info "removing $LAB_DIR"
    rm -rf -- "$LAB_DIR"
  fi
  # Verify.
  for ns in "${namespaces[@]}"; do ns_exists "$ns" && left+=("namespace $ns"); done
  for pid in $(pgrep -f -- "$LAB_DIR/" || true); do
    name=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $name == ovsdb-server || $name == ovs-vswitchd || $name == vpcguardd || $name == vpcguard-apid ]] && left+=("$name pid $pid")
  done
  [[ ! -e $LAB_DIR ]] || left+=("$LAB_DIR")
  ((${#left[@]} == 0)) || die "left behind: ${left[*]}"
  say "Lab is down: no processes, namespaces, interfaces or files left"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  check_env "$cmd"
  case $cmd in
    up) cmd_up "$@" ;;
    exec) cmd_exec "$@" ;;
    status) cmd_status "$@" ;;
    ctl) cmd_ctl "$@" ;;
    down) cmd_down "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
