#!/usr/bin/env python3
"""unit_lab_plan: vagrant/lab_plan.py turns a config into the lab's VM lines, or a clear error."""

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


class LabPlanTest(unittest.TestCase):
    def run_plan(self, files):
        """files: {name: text}; one file -> pass the file, several -> pass the directory."""
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                (pathlib.Path(d) / name).write_text(textwrap.dedent(text))
            target = pathlib.Path(d) / next(iter(files)) if len(files) == 1 else d
            p = subprocess.run([sys.executable, str(PLAN), str(target)],
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


if __name__ == "__main__":
    unittest.main()
