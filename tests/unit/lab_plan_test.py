#!/usr/bin/env python3
"""unit_lab_plan: vagrant/lab_plan.py turns a config into the lab's VM lines (and with --mirrors
the underlay, appliance and SPAN lines), or a clear error."""

import pathlib
import subprocess
import sys
import tempfile
import textwrap
import unittest

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAN = REPO / "vagrant" / "lab_plan.py"

SUBNETS = """
[vpc]
id = "vpc-1"
cidr_blocks = ["10.0.0.0/16"]

[[subnets]]
id = "subnet-a"
cidr_block = "10.0.1.0/24"
ipv6_cidr_block = "2001:db8:1:1::/64"

[[subnets]]
id = "subnet-b"
cidr_block = "10.0.2.0/26"
"""


def eni(eid, subnet, mac, ips, ipv6=None):
    text = f'[[network_interfaces]]\nid = "{eid}"\nsubnet_id = "{subnet}"\n'
    text += f'mac_address = "{mac}"\nprivate_ip_addresses = {ips!r}\n'.replace("'", '"')
    if ipv6 is not None:
        text += f"ipv6_addresses = {ipv6!r}\n".replace("'", '"')
    return text


def target(tid, eni=None, remote=None):
    text = f'[[traffic_mirror_targets]]\nid = "{tid}"\n'
    if eni is not None:
        text += f'network_interface_id = "{eni}"\n'
    if remote is not None:
        text += f'vxlan_remote_ip = "{remote}"\n'
    return text


def port_mirror(pid, eni, port):
    return (f'[[port_mirrors]]\nid = "{pid}"\nnetwork_interface_id = "{eni}"\n'
            f'output_port = "{port}"\n')


MONITOR = eni("eni-mon", "subnet-b", "02:00:00:00:02:0c", ["10.0.2.12"])


class LabPlanTest(unittest.TestCase):
    def run_plan(self, files, *flags):
        """files: {name: text}; one file -> pass the file, several -> pass the directory."""
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                (pathlib.Path(d) / name).write_text(textwrap.dedent(text))
            target = pathlib.Path(d) / next(iter(files)) if len(files) == 1 else d
            return self.run_on(target, *flags)

    def run_on(self, path, *flags):
        p = subprocess.run([sys.executable, str(PLAN), *flags, str(path)],
                           capture_output=True, text=True, check=False)
        return p.returncode, p.stdout.splitlines(), p.stderr

    def test_lines(self):
        rc, out, err = self.run_plan({"c.toml": SUBNETS
                                      + eni("eni-1", "subnet-a", "02:00:00:00:01:0A",
                                            ["10.0.1.10", "10.0.1.11"], ["2001:db8:1:1::10"])
                                      + eni("eni-2", "subnet-b", "02:00:00:00:02:0a",
                                            ["10.0.2.10"])})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, [
            "eni-1 subnet-a 02:00:00:00:01:0a 10.0.1.10/24,10.0.1.11/24 10.0.1.1 "
            "2001:db8:1:1::10/64 2001:db8:1:1::1",
            "eni-2 subnet-b 02:00:00:00:02:0a 10.0.2.10/26 10.0.2.1 - -",
        ])

    def test_directory_merges_arrays_in_name_order(self):
        rc, out, err = self.run_plan({
            "10-net.toml": SUBNETS,
            "20-b.toml": eni("eni-b", "subnet-b", "02:00:00:00:02:0b", ["10.0.2.11"]),
            "30-a.toml": eni("eni-a", "subnet-a", "02:00:00:00:01:0b", ["10.0.1.11"]),
        })
        self.assertEqual(rc, 0, err)
        self.assertEqual([line.split()[0] for line in out], ["eni-b", "eni-a"])

    def test_errors(self):
        cases = {
            "unknown subnet": (eni("eni-1", "subnet-x", "02:00:00:00:01:0a", ["10.0.1.10"]),
                               "not a subnet"),
            "outside subnet": (eni("eni-1", "subnet-a", "02:00:00:00:01:0a", ["10.0.2.10"]),
                               "outside its subnet"),
            "reserved router": (eni("eni-1", "subnet-a", "02:00:00:00:01:0a", ["10.0.1.1"]),
                                "reserved"),
            "broadcast": (eni("eni-1", "subnet-a", "02:00:00:00:01:0a", ["10.0.1.255"]),
                          "reserved"),
            "no ipv4": (eni("eni-1", "subnet-a", "02:00:00:00:01:0a", []), "empty"),
            "bad mac": (eni("eni-1", "subnet-a", "02:00:00:00:01", ["10.0.1.10"]),
                        "mac_address"),
            "multicast mac": (eni("eni-1", "subnet-a", "01:00:00:00:01:0a", ["10.0.1.10"]),
                              "multicast"),
            "ipv6 without block": (eni("eni-1", "subnet-b", "02:00:00:00:01:0a", ["10.0.2.10"],
                                       ["2001:db8:1:1::10"]), "no ipv6_cidr_block"),
            "duplicate id": (eni("eni-1", "subnet-a", "02:00:00:00:01:0a", ["10.0.1.10"])
                             + eni("eni-1", "subnet-a", "02:00:00:00:01:0b", ["10.0.1.11"]),
                             "duplicate id"),
            "duplicate address": (eni("eni-1", "subnet-a", "02:00:00:00:01:0a", ["10.0.1.10"])
                                  + eni("eni-2", "subnet-a", "02:00:00:00:01:0b",
                                        ["10.0.1.10"]), "also used by eni-1"),
            "bad id": (eni("eni 1", "subnet-a", "02:00:00:00:01:0a", ["10.0.1.10"]),
                       "invalid 'id'"),
            "no interfaces": ("", "no [[network_interfaces]]"),
        }
        for name, (text, message) in cases.items():
            with self.subTest(name):
                rc, out, err = self.run_plan({"c.toml": SUBNETS + text})
                self.assertEqual(rc, 2, f"{name}: expected failure, got {out}")
                self.assertIn(message, err)
                self.assertEqual(out, [])

    def test_invalid_toml_names_the_file(self):
        rc, _, err = self.run_plan({"broken.toml": "[vpc\n"})
        self.assertEqual(rc, 2)
        self.assertIn("broken.toml: invalid TOML", err)

    def test_conflicting_scalars_across_files(self):
        rc, _, err = self.run_plan({"a.toml": SUBNETS, "b.toml": '[vpc]\nid = "vpc-2"\n'})
        self.assertEqual(rc, 2)
        self.assertIn("conflicts", err)

    # ---- --mirrors: the underlay, appliances and SPAN ports traffic mirroring needs ----------

    def test_mirrors_lines(self):
        rc, out, err = self.run_plan({"c.toml": SUBNETS + MONITOR
                                      + target("tmt-mon", eni="eni-mon")
                                      + target("tmt-a", remote="192.0.2.2")
                                      + target("tmt-b", remote="198.51.100.7")
                                      + target("tmt-a2", remote="192.0.2.2")  # same appliance
                                      + target("tmt-c", remote="192.0.2.254")
                                      + port_mirror("pm-1", "eni-mon", "vpcg-span0")
                                      + port_mirror("pm-2", "eni-mon", "vpcg-span0")},
                                     "--mirrors")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, [
            "underlay 192.0.2.1/24",
            "appliance 192.0.2.2 192.0.2.2/24",
            # Outside the underlay: a next hop on it, the highest free address.
            "appliance 198.51.100.7 198.51.100.7/32 192.0.2.253/24",
            "appliance 192.0.2.254 192.0.2.254/24",
            "span vpcg-span0",
            "monitor eni-mon",
        ])

    def test_mirrors_without_remote_targets_needs_no_underlay(self):
        rc, out, err = self.run_plan({"c.toml": SUBNETS + MONITOR
                                      + target("tmt-mon", eni="eni-mon")}, "--mirrors")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, ["monitor eni-mon"])

    def test_mirrors_none(self):
        rc, out, err = self.run_plan({"c.toml": SUBNETS + MONITOR}, "--mirrors")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, [])

    def test_mirrors_still_checks_the_interfaces(self):
        rc, out, err = self.run_plan({"c.toml": SUBNETS
                                      + eni("eni-1", "subnet-x", "02:00:00:00:01:0a",
                                            ["10.0.1.10"])}, "--mirrors")
        self.assertEqual(rc, 2)
        self.assertIn("not a subnet", err)
        self.assertEqual(out, [])

    def test_mirror_errors(self):
        cases = {
            "ipv6 remote": (target("tmt-1", remote="2001:db8::2"), "not an IPv4 address"),
            "not an address": (target("tmt-1", remote="appliance"), "not an IPv4 address"),
            "multicast remote": (target("tmt-1", remote="239.1.1.1"), "not a unicast"),
            "loopback remote": (target("tmt-1", remote="127.0.0.2"), "not a unicast"),
            "the underlay bridge": (target("tmt-1", remote="192.0.2.1"), "underlay bridge"),
            "underlay broadcast": (target("tmt-1", remote="192.0.2.255"), "underlay bridge"),
            "long output port": (port_mirror("pm-1", "eni-mon", "a-very-long-port-name"),
                                 "not an interface name"),
            "output port with a slash": (port_mirror("pm-1", "eni-mon", "span/0"),
                                         "not an interface name"),
            "the lab's bridge": (port_mirror("pm-1", "eni-mon", "br-int"), "port of the lab"),
            "vpcguardd's tunnel": (port_mirror("pm-1", "eni-mon", "vg-mirror"),
                                   "port of the lab"),
        }
        for name, (text, message) in cases.items():
            with self.subTest(name):
                rc, out, err = self.run_plan({"c.toml": SUBNETS + MONITOR + text}, "--mirrors")
                self.assertEqual(rc, 2, f"{name}: expected failure, got {out}")
                self.assertIn(message, err)
                self.assertEqual(out, [])

    def test_sample_mirror_config(self):
        """configs/lab-mirror: lab.toml plus the monitor VM, one appliance and one SPAN port."""
        config = REPO / "configs" / "lab-mirror"
        rc, out, err = self.run_on(config)
        self.assertEqual(rc, 0, err)
        self.assertEqual([line.split()[0] for line in out],
                         ["eni-web1", "eni-bastion", "eni-db1", "eni-mon1"])
        self.assertTrue(out[-1].startswith("eni-mon1 subnet-monitor 02:00:00:00:03:0a "
                                           "10.0.3.10/24 10.0.3.1 "), out[-1])
        rc, out, err = self.run_on(config, "--mirrors")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, ["underlay 192.0.2.1/24", "appliance 192.0.2.2 192.0.2.2/24",
                               "span vpcg-span0", "monitor eni-mon1"])


if __name__ == "__main__":
    unittest.main()
