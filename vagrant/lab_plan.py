#!/usr/bin/env python3
"""lab_plan.py [--mirrors] CONFIG: what vagrant/lab.sh must build for a vpcguard config.

CONFIG is a TOML file or a directory of *.toml files (read in name order and merged: arrays of
tables such as [[subnets]] are concatenated, tables such as [vpc] are merged key by key, and the
same key with two different values is an error).

Prints one line per network interface, fields separated by single spaces, `-` for "none":

    id subnet_id mac ipv4s gateway4 ipv6s gateway6

ipv4s / ipv6s are comma-separated addresses with the prefix length of their subnet, primary
first; gateway4 is the subnet's .1 (the VPC router), gateway6 the subnet's ::1.

With --mirrors: what traffic mirroring needs besides the VMs (nothing when the config has no
mirror targets and no port mirrors), one line each:

    underlay ADDRESS/PREFIX      the underlay bridge's own address (when there are appliances)
    appliance IP ADDRESS/PREFIX [NEXTHOP/PREFIX]
                                 an appliance namespace for a target's vxlan_remote_ip. Inside
                                 the underlay subnet: IP/24. Outside it: IP/32, and a next hop
                                 (a free underlay address, from .254 down) that the appliance
                                 also holds and the hypervisor routes IP through: ovs-vswitchd
                                 only uses routes whose destination or gateway is on a subnet of
                                 the bridge's own addresses
    span PORT                    a port_mirrors output_port: a veth whose hypervisor end is PORT

    monitor ID                   a target's network_interface_id: a VM like any other (no
                                 extra build), listed for the hints `up` prints

Only the fields the lab needs are read; the daemon validates the full policy. Python 3.11+
(tomllib) and nothing else, so a fresh machine can run it before anything is built.
Exit status: 0 ok, 2 bad config (message on stderr).
"""

from __future__ import annotations

import ipaddress
import pathlib
import re
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("lab_plan: needs Python 3.11+ (tomllib); found " + sys.version.split()[0])

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# A Linux interface name the lab can make in the hypervisor namespace (IFNAMSIZ - 1 = 15).
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$")
# The hypervisor's underlay (RFC 5737 TEST-NET-1): the underlay bridge holds .1.
UNDERLAY = ipaddress.IPv4Network("192.0.2.0/24")
UNDERLAY_ADDRESS = UNDERLAY.network_address + 1
# OVS port names the lab or vpcguardd use themselves.
RESERVED_PORTS = {"br-int", "br-underlay", "vg-mirror"}


class PlanError(Exception):
    pass


def merge(into: dict, new: dict, where: str, path: str = "") -> None:
    for key, value in new.items():
        full = f"{path}.{key}" if path else key
        if key not in into:
            into[key] = value
        elif isinstance(into[key], list) and isinstance(value, list):
            into[key] = into[key] + value
        elif isinstance(into[key], dict) and isinstance(value, dict):
            merge(into[key], value, where, full)
        elif into[key] != value:
            raise PlanError(f"{where}: '{full}' = {value!r} conflicts with {into[key]!r} "
                            "from an earlier file")


def load(path: pathlib.Path) -> dict:
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
        if not files:
            raise PlanError(f"{path}: directory has no *.toml files")
    elif path.is_file():
        files = [path]
    else:
        raise PlanError(f"{path}: no such file or directory")
    config: dict = {}
    for f in files:
        try:
            with f.open("rb") as fh:
                merge(config, tomllib.load(fh), str(f))
        except tomllib.TOMLDecodeError as e:
            raise PlanError(f"{f}: invalid TOML: {e}") from None
        except OSError as e:
            raise PlanError(f"{f}: {e.strerror}") from None
    return config


def as_list(obj: dict, key: str, what: str) -> list:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise PlanError(f"{what}: '{key}' must be an array")
    return value


def plan(config: dict) -> list[str]:
    subnets: dict[str, tuple] = {}
    for i, s in enumerate(as_list(config, "subnets", "config")):
        sid = s.get("id")
        what = f"subnets[{i}] ({sid})"
        if not isinstance(sid, str) or not ID_RE.match(sid):
            raise PlanError(f"subnets[{i}]: missing or invalid 'id'")
        if sid in subnets:
            raise PlanError(f"{what}: duplicate subnet id")
        try:
            v4 = ipaddress.IPv4Network(s["cidr_block"])
            v6 = ipaddress.IPv6Network(s["ipv6_cidr_block"]) if s.get("ipv6_cidr_block") else None
        except KeyError:
            raise PlanError(f"{what}: missing 'cidr_block'") from None
        except ValueError as e:
            raise PlanError(f"{what}: {e}") from None
        subnets[sid] = (v4, v6)

    lines: list[str] = []
    seen_ids: set[str] = set()
    seen_addrs: dict[str, str] = {}
    for i, eni in enumerate(as_list(config, "network_interfaces", "config")):
        eid = eni.get("id")
        if not isinstance(eid, str) or not ID_RE.match(eid):
            raise PlanError(f"network_interfaces[{i}]: missing or invalid 'id' "
                            "(letters, digits, '.', '_', '-')")
        what = f"network interface {eid}"
        if eid in seen_ids:
            raise PlanError(f"{what}: duplicate id")
        seen_ids.add(eid)
        sid = eni.get("subnet_id")
        if sid not in subnets:
            raise PlanError(f"{what}: subnet_id {sid!r} is not a subnet of the config "
                            f"(known: {', '.join(subnets) or 'none'})")
        v4net, v6net = subnets[sid]
        mac = str(eni.get("mac_address", "")).lower()
        if not MAC_RE.match(mac):
            raise PlanError(f"{what}: missing or invalid mac_address {eni.get('mac_address')!r}")
        if int(mac[:2], 16) & 1:
            raise PlanError(f"{what}: mac_address {mac} is a multicast address")

        ipv4s = []
        raw_v4 = as_list(eni, "private_ip_addresses", what)
        if not raw_v4:
            raise PlanError(f"{what}: private_ip_addresses is empty (the first is the primary)")
        for a in raw_v4:
            try:
                addr = ipaddress.IPv4Address(a)
            except ValueError as e:
                raise PlanError(f"{what}: {e}") from None
            if addr not in v4net:
                raise PlanError(f"{what}: {addr} is outside its subnet {sid} {v4net}")
            # AWS reserves the first four addresses and the last one of every subnet.
            offset = int(addr) - int(v4net.network_address)
            if offset < 4 or addr == v4net.broadcast_address:
                raise PlanError(f"{what}: {addr} is reserved in subnet {v4net} "
                                "(first four and last addresses)")
            ipv4s.append(f"{addr}/{v4net.prefixlen}")
        ipv6s = []
        for a in as_list(eni, "ipv6_addresses", what):
            if v6net is None:
                raise PlanError(f"{what}: has IPv6 address {a} but subnet {sid} "
                                "has no ipv6_cidr_block")
            try:
                addr6 = ipaddress.IPv6Address(a)
            except ValueError as e:
                raise PlanError(f"{what}: {e}") from None
            if addr6 not in v6net:
                raise PlanError(f"{what}: {addr6} is outside its subnet {sid} {v6net}")
            ipv6s.append(f"{addr6}/{v6net.prefixlen}")
        for a in ipv4s + ipv6s:
            bare = a.split("/")[0]
            if bare in seen_addrs:
                raise PlanError(f"{what}: address {bare} is also used by {seen_addrs[bare]}")
            seen_addrs[bare] = eid

        gw4 = str(v4net.network_address + 1)
        gw6 = str(v6net.network_address + 1) if (v6net is not None and ipv6s) else "-"
        lines.append(" ".join([eid, sid, mac, ",".join(ipv4s), gw4,
                               ",".join(ipv6s) or "-", gw6]))
    if not lines:
        raise PlanError("config has no [[network_interfaces]]: the lab would have no VMs")
    return lines


def mirror_plan(config: dict) -> list[str]:
    """The underlay, appliance and span lines of --mirrors (empty: nothing to add)."""
    appliances: list[str] = []
    monitors: list[str] = []
    for i, t in enumerate(as_list(config, "traffic_mirror_targets", "config")):
        what = f"traffic_mirror_targets[{i}] ({t.get('id')})"
        raw = t.get("vxlan_remote_ip")
        if raw is None:
            # A local target: the monitor VM is one of the network interfaces.
            eni = t.get("network_interface_id")
            if isinstance(eni, str) and ID_RE.match(eni) and eni not in monitors:
                monitors.append(eni)
            continue
        try:
            ip = ipaddress.IPv4Address(raw)
        except (ValueError, TypeError):
            raise PlanError(f"{what}: vxlan_remote_ip {raw!r} is not an IPv4 address "
                            "(the lab's underlay is IPv4)") from None
        if (ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_unspecified
                or ip == ipaddress.IPv4Address("255.255.255.255")):
            raise PlanError(f"{what}: vxlan_remote_ip {ip} is not a unicast address an "
                            "appliance can hold")
        if ip == UNDERLAY_ADDRESS or (ip in UNDERLAY and ip in (UNDERLAY.network_address,
                                                                UNDERLAY.broadcast_address)):
            raise PlanError(f"{what}: vxlan_remote_ip {ip} is the lab's underlay bridge or "
                            f"reserved in {UNDERLAY}; use e.g. {UNDERLAY_ADDRESS + 1}")
        if str(ip) not in appliances:  # two targets may share one appliance
            appliances.append(str(ip))
    spans: list[str] = []
    for i, pm in enumerate(as_list(config, "port_mirrors", "config")):
        what = f"port_mirrors[{i}] ({pm.get('id')})"
        port = pm.get("output_port")
        if not isinstance(port, str) or not IFNAME_RE.match(port):
            raise PlanError(f"{what}: output_port {port!r} is not an interface name the lab can "
                            "make (1-15 letters, digits, '.', '_', '-')")
        if port in RESERVED_PORTS:
            raise PlanError(f"{what}: output_port {port} is a port of the lab or vpcguardd; "
                            "name a port of its own, e.g. vpcg-span0")
        if port not in spans:  # several sources may mirror to one port
            spans.append(port)
    lines: list[str] = []
    if appliances:
        lines.append(f"underlay {UNDERLAY_ADDRESS}/{UNDERLAY.prefixlen}")
        taken = {ipaddress.IPv4Address(a) for a in appliances} | {UNDERLAY_ADDRESS}
        free = (h for h in reversed(list(UNDERLAY.hosts())) if h not in taken)
        for a in appliances:
            if ipaddress.IPv4Address(a) in UNDERLAY:
                lines.append(f"appliance {a} {a}/{UNDERLAY.prefixlen}")
                continue
            hop = next(free, None)
            if hop is None:
                raise PlanError(f"too many appliances: no free address left in {UNDERLAY}")
            lines.append(f"appliance {a} {a}/32 {hop}/{UNDERLAY.prefixlen}")
    lines += [f"span {p}" for p in spans]
    lines += [f"monitor {m}" for m in monitors]
    return lines


def main(argv: list[str]) -> int:
    args = argv[1:]
    mirrors = bool(args) and args[0] == "--mirrors"
    if mirrors:
        args = args[1:]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stdout if args in (["-h"], ["--help"]) else sys.stderr)
        return 0 if args in (["-h"], ["--help"]) else 2
    try:
        config = load(pathlib.Path(args[0]))
        # The interfaces are checked with --mirrors too: both views come from one valid plan.
        lines = plan(config)
        if mirrors:
            lines = mirror_plan(config)
        if lines:
            print("\n".join(lines))
    except PlanError as e:
        print(f"lab_plan: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
