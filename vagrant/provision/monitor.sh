#!/usr/bin/env bash
# vagrant/provision/monitor.sh: the traffic-mirroring target VM (vagrant/README.md). vpcguardd on
# the hypervisors sends mirror copies as VXLAN (UDP 4789) to MONITOR_IP, its underlay address;
# nothing has to listen for tcpdump to show them.
set -Eeuo pipefail

MONITOR_IP=${MONITOR_IP:?MONITOR_IP must be set}
((EUID == 0)) || { echo "monitor.sh: error: run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get -q update
apt-get -q install -y --no-install-recommends tcpdump tshark

ip -4 -o addr show | grep -q " $MONITOR_IP/" ||
  echo "monitor.sh: warning: $MONITOR_IP is not configured on any interface" >&2
echo "==> monitor ready: sudo tcpdump -ni any udp port 4789   (copies sent to $MONITOR_IP)"
