#include "tests/harness/policy_lab.h"

#include <fmt/format.h>

namespace vpcguard::test {

PolicyLab::~PolicyLab() {
  // The VMs' namespaces go before the sandbox that holds their peers.
  sync_.reset();
  channel_.reset();
  lab_.reset();
  sandbox_.reset();
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
    auto ofport = pl->lab_->addVm(spec);
    if (!ofport) {
      return tl::unexpected(ofport.error());
    }
    pl->ofports_[eni.id] = *ofport;
  }
  auto channel = ovs::connectOpenFlow(pl->sandbox_->bridgeTarget(kBridge));
  if (!channel) {
    return tl::unexpected(channel.error());
  }
  pl->channel_ = std::move(*channel);
  pl->sync_ = std::make_unique<FlowSync>(*pl->channel_);
  return pl;
}

Result<SyncReport> PolicyLab::install(const model::Policy& policy) {
  auto indices = assignInterfaceIndices(policy, indices_);
  if (!indices) {
    return tl::unexpected(indices.error());
  }
  indices_ = *indices;
  TranslateInput in;
  in.policy = &policy;
  in.interface_index = indices_;
  in.ofports = ofports_;
  auto t = translate(in);
  if (!t) {
    return tl::unexpected(t.error());
  }
  auto report = synced_ ? sync_->applyDesired(t->flows) : sync_->syncFull(t->flows);
  synced_ = synced_ || report.has_value();
  if (report) {
    if (auto b = channel_->barrier(); !b) {
      return tl::unexpected(b.error());
    }
  }
  return report;
}

Result<void> PolicyLab::replaceFlows(const std::string& flows) {
  const std::string file = sandbox_->dir() + "/replace-flows.txt";
  if (auto r = runChecked("printf '%s\\n' " + shellQuote(flows) + " > " + file); !r) {
    return tl::unexpected(r.error());
  }
  synced_ = false;  // the next install must read the switch again
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
