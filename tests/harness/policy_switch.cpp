#include "tests/harness/policy_switch.h"

namespace vpcguard::test {

Result<std::unique_ptr<PolicySwitch>> PolicySwitch::start() {
  auto ps = std::unique_ptr<PolicySwitch>(new PolicySwitch());
  auto sandbox = OvsSandbox::start();
  if (!sandbox) {
    return tl::unexpected(sandbox.error());
  }
  ps->sandbox_ = std::move(*sandbox);
  if (auto r = ps->sandbox_->addBridge(kBridge); !r) {
    return tl::unexpected(r.error());
  }
  auto installer = PolicyInstaller::connect(ps->sandbox_->bridgeTarget(kBridge));
  if (!installer) {
    return tl::unexpected(installer.error());
  }
  ps->installer_ = std::move(*installer);
  return ps;
}

Result<SyncReport> PolicySwitch::install(const model::Policy& policy) {
  for (const auto& eni : policy.network_interfaces) {
    if (ofports_.count(eni.id) != 0) {
      continue;
    }
    const std::string port = "p" + std::to_string(ofports_.size() + 1);
    auto ofport = sandbox_->addDummyPort(kBridge, port, eni.id);
    if (!ofport) {
      return tl::unexpected(ofport.error());
    }
    ofports_[eni.id] = *ofport;
    port_names_[eni.id] = port;
  }
  return installer_->install(policy, ofports_);
}

Result<TraceResult> PolicySwitch::traceFrom(const std::string& eni, const std::string& fields,
                                            const std::vector<std::string>& ct_next) {
  std::string in_port;
  if (eni == "LOCAL") {
    in_port = "LOCAL";
  } else if (auto it = port_names_.find(eni); it != port_names_.end()) {
    in_port = it->second;
  } else {
    return makeError("no port for " + eni);
  }
  return trace(*sandbox_, kBridge, "in_port=" + in_port + "," + fields, ct_next);
}

Result<int> PolicySwitch::datapathPortOf(const std::string& eni) {
  if (eni == "LOCAL") {
    return datapathPort(*sandbox_, kBridge, kBridge);
  }
  auto it = port_names_.find(eni);
  if (it == port_names_.end()) {
    return makeError("no port for " + eni);
  }
  return datapathPort(*sandbox_, kBridge, it->second);
}

}  // namespace vpcguard::test
