#!/usr/bin/env bash
# vagrant/provision/hypervisor.sh: turns a Debian 12 VM into a vpcguard hypervisor (vagrant/README.md).
#
#   HV_NAME=hv1 UNDERLAY_IP=10.42.0.11 MONITOR_IP=10.42.0.20 hypervisor.sh    provision (root)
#   hypervisor.sh --render-domain NAME MAC INTERFACE_ID DISK SEED TYPE        print a guest's
#                                                      libvirt domain XML (used by the CI test)
#
# Steps: packages (Open vSwitch, libvirt, QEMU) -> the openvswitch kernel module -> br-int on the
# kernel datapath -> vpcguard from /tmp/vpcguard.deb -> /etc/vpcguard/policy.toml ->
# vpcguardd.service -> `vpcguardctl host-check` -> this hypervisor's guests (libvirt domains from
# guest-domain.xml, plugged into br-int with <virtualport type='openvswitch'>, so libvirt sets
# external_ids:iface-id on their OVS port: what vpcguardd matches).
#
# libvirt's interfaceid must be a UUID (its schema and parser reject anything else), so on a
# libvirt host the network interface ids of the policy are UUIDs; the policy is configs/lab.toml
# with its eni-* ids replaced by the UUIDs below.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/guest-domain.xml
REPO=${VPCGUARD_REPO:-/vpcguard}
DEB=${VPCGUARD_DEB_PATH:-/tmp/vpcguard.deb}
BRIDGE=br-int
IMAGES=/var/lib/libvirt/images
BASE_IMAGE=$IMAGES/vpcguard-guest-base.qcow2
GUEST_IMAGE_URL=${GUEST_IMAGE_URL:-https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2}

# eni id -> libvirt interfaceid (UUID) -> MAC -> address/prefix -> gateway; the MACs and
# addresses are configs/lab.toml's.
GUESTS_ALL=(
  "eni-web1     6f3b5a2e-0001-4c0a-9e1a-02000000010a 02:00:00:00:01:0a 10.0.1.10/24 10.0.1.1"
  "eni-bastion  6f3b5a2e-0002-4c0a-9e1a-020000000114 02:00:00:00:01:14 10.0.1.20/24 10.0.1.1"
  "eni-db1      6f3b5a2e-0003-4c0a-9e1a-02000000020a 02:00:00:00:02:0a 10.0.2.10/24 10.0.2.1"
)

say() { printf '==> %s\n' "$*"; }
warn() { printf 'hypervisor.sh: warning: %s\n' "$*" >&2; }
die() { printf 'hypervisor.sh: error: %s\n' "$*" >&2; exit 1; }

# Prints guest-domain.xml with its @NAME@ ... placeholders filled in.
render_domain() {
  local name=$1 mac=$2 interface_id=$3 disk=$4 seed=$5 type=$6
  [[ $interface_id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
    warn "interfaceid '$interface_id' is not a UUID: libvirt will reject the domain"
  sed -e "s|@NAME@|$name|g" -e "s|@MAC@|$mac|g" -e "s|@INTERFACE_ID@|$interface_id|g" \
    -e "s|@DISK@|$disk|g" -e "s|@SEED@|$seed|g" -e "s|@TYPE@|$type|g" \
    -e "s|@BRIDGE@|$BRIDGE|g" "$TEMPLATE"
}

if [[ ${1:-} == --render-domain ]]; then
  (($# == 7)) || die "usage: $0 --render-domain NAME MAC INTERFACE_ID DISK SEED TYPE"
  shift
  render_domain "$@"
  exit 0
fi

HV_NAME=${HV_NAME:?HV_NAME (hv1 or hv2) must be set}
UNDERLAY_IP=${UNDERLAY_IP:?UNDERLAY_IP must be set}
MONITOR_IP=${MONITOR_IP:-}
((EUID == 0)) || die "run as root"

case $HV_NAME in
  hv1) mine=(eni-web1 eni-bastion) ;;
  hv2) mine=(eni-db1) ;;
  *) die "HV_NAME must be hv1 or hv2, not '$HV_NAME'" ;;
esac

say "packages: Open vSwitch, libvirt, QEMU"
export DEBIAN_FRONTEND=noninteractive
apt-get -q update
apt-get -q install -y --no-install-recommends openvswitch-switch libvirt-daemon-system \
  libvirt-clients qemu-system-x86 qemu-utils cloud-image-utils curl tcpdump

say "kernel datapath: modprobe openvswitch"
modprobe openvswitch ||
  die "cannot load the openvswitch kernel module (this box's kernel lacks it?); br-int needs it"
systemctl enable --now openvswitch-switch

say "bridge $BRIDGE (datapath_type=system, fail_mode=secure)"
ovs-vsctl --may-exist add-br "$BRIDGE" -- set Bridge "$BRIDGE" datapath_type=system \
  fail_mode=secure protocols=OpenFlow13,OpenFlow14,OpenFlow15

say "vpcguard from $DEB"
[[ -f $DEB ]] || die "no vpcguard .deb at $DEB: on the host run 'cmake --build build --target package' (or set VPCGUARD_DEB), then 'vagrant provision $HV_NAME'"
apt-get -q install -y "$DEB"

say "policy: $REPO/configs/lab.toml with UUID interface ids -> /etc/vpcguard/policy.toml"
policy=$(mktemp)
cp "$REPO/configs/lab.toml" "$policy"
for g in "${GUESTS_ALL[@]}"; do
  read -r eni uuid _ <<<"$g"
  sed -i "s|\"$eni\"|\"$uuid\"|g" "$policy"
done
install -m 0644 "$policy" /etc/vpcguard/policy.toml
rm -f "$policy"
systemctl enable vpcguardd
systemctl restart vpcguardd

say "vpcguardctl host-check"
vpcguardctl host-check --bridge "$BRIDGE" || warn "host-check failed: see above"

say "guests on $HV_NAME: ${mine[*]}"
domain_type=qemu
[[ -c /dev/kvm ]] && domain_type=kvm
[[ $domain_type == kvm ]] || warn "/dev/kvm missing (no nested virtualisation): guests run under TCG, slowly"
if [[ ! -f $BASE_IMAGE ]]; then
  if curl -fL --retry 3 -o "$BASE_IMAGE.part" "$GUEST_IMAGE_URL"; then
    mv "$BASE_IMAGE.part" "$BASE_IMAGE"
  else
    warn "could not download the guest image ($GUEST_IMAGE_URL); put a Debian cloud qcow2 at $BASE_IMAGE and provision again"
  fi
fi
for g in "${GUESTS_ALL[@]}"; do
  read -r eni uuid mac addr gw <<<"$g"
  [[ " ${mine[*]} " == *" $eni "* ]] || continue
  name=vpcguard-${eni#eni-}
  disk=$IMAGES/$name.qcow2
  seed=$IMAGES/$name-seed.iso
  if virsh dominfo "$name" >/dev/null 2>&1; then
    say "$name: already defined"
    continue
  fi
  [[ -f $BASE_IMAGE ]] || { warn "$name: no base image, not created"; continue; }
  qemu-img create -q -f qcow2 -F qcow2 -b "$BASE_IMAGE" "$disk" 4G
  work=$(mktemp -d)
  printf 'instance-id: %s\nlocal-hostname: %s\n' "$name" "$name" >"$work/meta-data"
  printf '#cloud-config\npassword: vpcguard\nchpasswd: { expire: false }\nssh_pwauth: true\n' \
    >"$work/user-data"
  cat >"$work/network-config" <<EOF
version: 2
ethernets:
  eth0:
    match: { macaddress: "$mac" }
    set-name: eth0
    addresses: [$addr]
    routes: [{ to: default, via: $gw }]
EOF
  cloud-localds --network-config="$work/network-config" "$seed" "$work/user-data" "$work/meta-data"
  rm -rf "$work"
  render_domain "$name" "$mac" "$uuid" "$disk" "$seed" "$domain_type" >"/tmp/$name.xml"
  virsh define "/tmp/$name.xml"
  virsh start "$name"
  say "$name: started; its OVS port: $(ovs-vsctl --bare --columns=name find Interface "external_ids:iface-id=$uuid")"
done

say "done: ovs-vsctl show; vpcguardctl status; virsh list; virsh console <name> (root/vpcguard)"
[[ -z $MONITOR_IP ]] || say "mirror targets: vxlan_remote_ip = \"$MONITOR_IP\" (the monitor VM)"
