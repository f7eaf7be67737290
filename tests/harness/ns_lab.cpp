#include "tests/harness/ns_lab.h"

namespace vpcguard::test {

std::optional<std::string> NsLab::unavailableReason() {
  if (auto why = sandboxUnavailableReason()) {
    return why;
  }
  for (const char* tool : {"ethtool", "ping", "nc", "ss", "timeout"}) {
    if (!run(std::string("command -v ") + tool).ok()) {
      return std::string("needs ") + tool +
             " (apt-get install ethtool iputils-ping netcat-openbsd iproute2)";
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<NsLab>> NsLab::create(OvsSandbox& sandbox, const std::string& bridge) {
  if (auto r = sandbox.addBridge(bridge, "netdev"); !r) {
    return tl::unexpected(r.error().withContext("ns lab"));
  }
  return std::unique_ptr<NsLab>(new NsLab(sandbox, bridge));
}

NsLab::~NsLab() {
  for (auto it = vms_.rbegin(); it != vms_.rend(); ++it) {
    removeVm(*it);
  }
}

void NsLab::removeVm(const Vm& vm) {
  (void)sandbox_.vsctl("--if-exists del-port " + bridge_ + " " + vm.host_veth);
  // Deleting the VM namespace destroys its veth end and with it the peer in the hypervisor ns;
  // the explicit delete covers a veth that never got moved.
  (void)run("ip netns delete " + vm.netns + " 2>/dev/null; ip link delete " + vm.host_veth +
            " 2>/dev/null; ip -n " + sandbox_.netns() + " link delete " + vm.host_veth +
            " 2>/dev/null; true");
}

Result<int> NsLab::addVm(const VmSpec& spec) {
  if (vm(spec.name) != nullptr) {
    return makeError("ns lab: VM " + spec.name + " already exists");
  }
  const int n = next_index_++;
  Vm vm;
  vm.spec = spec;
  vm.netns = sandbox_.netns() + "-" + std::to_string(n);
  // Interface names are at most 15 characters: "vgt" + 6 random + "h" + n.
  vm.host_veth = "vgt" + sandbox_.unique() + "h" + std::to_string(n);
  const std::string vm_veth = "vgt" + sandbox_.unique() + "v" + std::to_string(n);
  // Registered first so a failure halfway still gets cleaned up by the destructor.
  vms_.push_back(vm);

  const std::string ns = vm.netns;
  const std::string hv = sandbox_.netns();
  std::string script = "set -e\n";
  script += "ip netns add " + ns + "\n";
  script += "ip -n " + ns + " link set lo up\n";
  script += "ip link add " + vm.host_veth + " type veth peer name " + vm_veth + "\n";
  script += "ip link set " + vm_veth + " netns " + ns + "\n";
  script += "ip -n " + ns + " link set " + vm_veth + " name eth0\n";
  script += "ip -n " + ns + " link set eth0 address " + spec.mac + "\n";
  if (spec.ipv6_cidr) {
    // nodad: the address is usable at once instead of after duplicate address detection.
    script += "ip -n " + ns + " addr add " + *spec.ipv6_cidr + " dev eth0 nodad\n";
  }
  script += "ip -n " + ns + " addr add " + spec.ipv4_cidr + " dev eth0\n";
  script += "ip -n " + ns + " link set eth0 up\n";
  if (!spec.gateway.empty()) {
    script += "ip -n " + ns + " route add default via " + spec.gateway + "\n";
  }
  // The kernel would hand OVS TCP packets with partial checksums; userspace conntrack then
  // marks them invalid and ct-based allow rules drop them (see docs/platform.md).
  script += "ip netns exec " + ns + " ethtool -K eth0 tx off >/dev/null\n";
  script += "ip link set " + vm.host_veth + " netns " + hv + "\n";
  script += "ip -n " + hv + " link set " + vm.host_veth + " up\n";
  script += "ip netns exec " + hv + " ethtool -K " + vm.host_veth + " tx off >/dev/null\n";
  if (auto r = runChecked("sh -c " + shellQuote(script)); !r) {
    return tl::unexpected(r.error().withContext("ns lab: create VM " + spec.name));
  }
  if (auto r = sandbox_.vsctl("add-port " + bridge_ + " " + vm.host_veth +
                              " -- set interface " + vm.host_veth +
                              " external_ids:iface-id=" + shellQuote(spec.iface_id));
      !r) {
    return tl::unexpected(r.error().withContext("ns lab: plug VM " + spec.name));
  }
  auto port = sandbox_.ofport(vm.host_veth);
  if (!port) {
    return tl::unexpected(port.error().withContext("ns lab: VM " + spec.name));
  }
  vms_.back().ofport = *port;
  return *port;
}

const Vm* NsLab::vm(const std::string& name) const {
  for (const auto& v : vms_) {
    if (v.spec.name == name) {
      return &v;
    }
  }
  return nullptr;
}

CommandResult NsLab::exec(const std::string& vm_name, const std::string& command,
                          std::chrono::seconds timeout) const {
  const Vm* v = vm(vm_name);
  if (v == nullptr) {
    return CommandResult{-1, "ns lab: no VM named " + vm_name};
  }
  return run("ip netns exec " + v->netns + " sh -c " + shellQuote(command), timeout);
}

}  // namespace vpcguard::test
