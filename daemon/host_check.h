#pragma once
// `vpcguardctl host-check`: is this hypervisor's Open vSwitch ready for vpcguardd? Each check
// answers ok / warn / fail with a reason an operator can act on (docs/host.md). Read-only: one
// short-lived OVSDB connection with a deadline, a generic-netlink lookup, a few files.
//
// What is checked: OVSDB reachable and the OVS version; the bridge and its datapath_type
// (system = kernel datapath, netdev = userspace); whether the kernel datapath is really there
// (the "ovs_datapath" generic-netlink family and /sys/module/openvswitch), which a system bridge
// needs; the Datapath row's capabilities (conntrack, zones, timeout policies) and configured
// CT zones; the bridge's OpenFlow management socket; other_config:flow-restore-wait.
#include <chrono>
#include <ostream>
#include <string>
#include <vector>

namespace vpcguard {

enum class CheckStatus { kOk, kWarn, kFail };
[[nodiscard]] const char* toString(CheckStatus status);

struct HostCheckItem {
  std::string name;  // stable identifier, e.g. "ovsdb", "kernel-datapath"
  CheckStatus status = CheckStatus::kOk;
  std::string reason;
};

struct HostCheckOptions {
  std::string ovsdb = "unix:/var/run/openvswitch/db.sock";
  std::string bridge = "br-int";
  std::string output = "text";  // or "json"
  // Where ovs-vswitchd keeps <bridge>.mgmt; empty = the directory of a unix: --ovsdb socket,
  // else /var/run/openvswitch.
  std::string run_dir;
  // Deadline for connecting to OVSDB and for each of its replies.
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
};

// The kernel datapath as this machine has it (never assumed: looked up each time). Read-only:
// resolving the generic-netlink family makes the kernel load the openvswitch module, so it is
// resolved only when the module is there already (loaded, or built into the kernel).
struct KernelDatapathProbe {
  bool genl_family = false;   // generic-netlink family "ovs_datapath" resolves
  std::string genl_detail;    // why not (libnl's error, or "not probed"), empty when it resolves
  bool sysfs_module = false;  // /sys/module/openvswitch exists (loadable module loaded)
  bool builtin = false;       // listed in /lib/modules/<release>/modules.builtin
  bool probed = false;        // the family was looked up (only with the module there)
};
[[nodiscard]] KernelDatapathProbe probeKernelDatapath();

// Runs every check; never throws, never crashes on a bad or silent server.
[[nodiscard]] std::vector<HostCheckItem> runHostChecks(const HostCheckOptions& options);

// The subcommand: prints the checks (text or json) to `out`; exit status 0 when every check is
// ok or warn, 1 when any fails, 2 for bad options.
[[nodiscard]] int runHostCheckCommand(const HostCheckOptions& options, std::ostream& out,
                                      std::ostream& err);

}  // namespace vpcguard
