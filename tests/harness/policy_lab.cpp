#include "tests/harness/policy_lab.h"

#include <fmt/format.h>

namespace vpcguard::test {

PolicyLab::~PolicyLab() {
  // The VMs' namespaces go before the sandbox that holds their peers.
  installer_.reset();
  lab_.reset();
  sandbox_.reset();
}

Result<std::map<std::string, int>> addPolicyVms(NsLab& lab, const model::Policy& policy) {
  std::map<std::string, int> ofports;
  for (const auto& eni : policy.network_interfaces) {
    const model::Subnet* subnet = nullptr;
    for (const auto& s : policy.subnets) {
      if (s.id == eni.subnet_id) {
        subnet = &s;
      }
    }
    if (subnet == nullptr || eni.private_ip_addresses.empty()) {
      return makeError("interface " + eni.id + " has no subnet or address");
    }
    VmSpec spec;
    spec.name = eni.id;
    spec.iface_id = eni.id;
    spec.mac = eni.mac_address;
    spec.ipv4_cidr = fmt::format("{}/{}", eni.private_ip_addresses.front().toString(),
                                 subnet->cidr_block.prefix_len);
    spec.gateway = subnet->cidr_block.first().plus(1).toString();
    if (!eni.ipv6_addresses.empty() && subnet->ipv6_cidr_block) {
      spec.ipv6_cidr = fmt::format("{}/{}", eni.ipv6_addresses.front().toString(),
                                   subnet->ipv6_cidr_block->prefix_len);
    }
    auto ofport = lab.addVm(spec);
    if (!ofport) {
      return tl::unexpected(ofport.error());
    }
    ofports[eni.id] = *ofport;
  }
  return ofports;
}

Result<std::unique_ptr<PolicyLab>> PolicyLab::start(const model::Policy& policy) {
  auto pl = std::unique_ptr<PolicyLab>(new PolicyLab());
  auto sandbox = OvsSandbox::start();
  if (!sandbox) {
    return tl::unexpected(sandbox.error());
  }
  pl->sandbox_ = std::move(*sandbox);
  auto lab = NsLab::create(*pl->sandbox_, kBridge);
  if (!lab) {
    return tl::unexpected(lab.error());
  }
  pl->lab_ = std::move(*lab);
  auto ofports = addPolicyVms(*pl->lab_, policy);
  if (!ofports) {
    return tl::unexpected(ofports.error());
  }
  pl->ofports_ = std::move(*ofports);
  auto installer = PolicyInstaller::connect(pl->sandbox_->bridgeTarget(kBridge));
  if (!installer) {
    return tl::unexpected(installer.error());
  }
  pl->installer_ = std::move(*installer);
  return pl;
}

Result<SyncReport> PolicyLab::install(const model::Policy& policy) {
  return installer_->install(policy, ofports_);
}

Result<void> PolicyLab::replaceFlows(const std::string& flows) {
  const std::string file = sandbox_->dir() + "/replace-flows.txt";
  if (auto r = runChecked("printf '%s\\n' " + shellQuote(flows) + " > " + file); !r) {
    return tl::unexpected(r.error());
  }
  installer_->forgetInstalled();
  if (auto r = sandbox_->ofctl("--bundle replace-flows " + sandbox_->bridgeTarget(kBridge) + " " +
                               file);
      !r) {
    return tl::unexpected(r.error());
  }
  return {};
}

CommandResult PolicyLab::exec(const std::string& eni, const std::string& command,
                              std::chrono::seconds timeout) const {
  return lab_->exec(eni, command, timeout);
}

Result<void> PolicyLab::flushConntrack() {
  auto r = sandbox_->appctl("dpctl/flush-conntrack");
  if (!r) {
    return tl::unexpected(r.error());
  }
  return {};
}

}  // namespace vpcguard::test
