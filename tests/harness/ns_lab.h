#pragma once
// Real packets between "VMs": each VM is a network namespace with one veth whose other end is a
// port of a datapath_type=netdev bridge in the sandbox's hypervisor namespace. Traffic goes
// through OVS's userspace datapath (and its userspace conntrack).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/process.h"
#include "translator/result.h"

namespace vpcguard::test {

struct VmSpec {
  std::string name;       // test-local handle, e.g. "a"
  std::string iface_id;   // external_ids:iface-id of the OVS port
  std::string mac;        // "02:00:00:00:01:0a"
  std::string ipv4_cidr;  // "10.0.1.10/24"
  std::string gateway;    // "10.0.1.1"; empty = no default route
  std::optional<std::string> ipv6_cidr;  // "fd00::10/64"
};

struct Vm {
  VmSpec spec;
  std::string netns;      // the VM's namespace
  std::string host_veth;  // port name on the bridge
  int ofport = -1;
};

class NsLab {
 public:
  // Like sandboxUnavailableReason(), plus the tools the lab and its VMs use.
  [[nodiscard]] static std::optional<std::string> unavailableReason();

  // Adds `bridge` (datapath_type=netdev) to the sandbox. The sandbox must outlive the lab.
  [[nodiscard]] static Result<std::unique_ptr<NsLab>> create(OvsSandbox& sandbox,
                                                             const std::string& bridge);
  ~NsLab();
  NsLab(const NsLab&) = delete;
  NsLab& operator=(const NsLab&) = delete;

  // Creates the VM (namespace, veth, addresses, route, TX checksum offload off) and plugs it
  // into the bridge; returns its OpenFlow port. Inside its namespace the VM's interface is eth0.
  [[nodiscard]] Result<int> addVm(const VmSpec& spec);
  [[nodiscard]] const Vm* vm(const std::string& name) const;
  // Runs a shell command inside the VM's namespace.
  [[nodiscard]] CommandResult exec(const std::string& vm, const std::string& command,
                                   std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  [[nodiscard]] const std::string& bridge() const { return bridge_; }

 private:
  NsLab(OvsSandbox& sandbox, std::string bridge)
      : sandbox_(sandbox), bridge_(std::move(bridge)) {}
  void removeVm(const Vm& vm);

  OvsSandbox& sandbox_;
  std::string bridge_;
  std::vector<Vm> vms_;
  int next_index_ = 1;
};

}  // namespace vpcguard::test
