#include "tests/harness/policy_installer.h"

namespace vpcguard::test {

Result<std::unique_ptr<PolicyInstaller>> PolicyInstaller::connect(const std::string& target) {
  auto channel = ovs::connectOpenFlow(target);
  if (!channel) {
    return tl::unexpected(channel.error());
  }
  auto installer = std::make_unique<PolicyInstaller>();
  installer->channel_ = std::move(*channel);
  installer->sync_ = std::make_unique<FlowSync>(*installer->channel_);
  return installer;
}

Result<SyncReport> PolicyInstaller::install(const model::Policy& policy,
                                            const std::map<std::string, int>& ofports) {
  auto indices = assignInterfaceIndices(policy, indices_);
  if (!indices) {
    return tl::unexpected(indices.error());
  }
  indices_ = *indices;
  TranslateInput in;
  in.policy = &policy;
  in.interface_index = indices_;
  in.ofports = ofports;
  auto t = translate(in);
  if (!t) {
    return tl::unexpected(t.error());
  }
  translation_ = std::move(*t);
  auto report = synced_ ? sync_->applyDesired(translation_.flows)
                        : sync_->syncFull(translation_.flows);
  if (!report) {
    return report;
  }
  synced_ = true;
  if (auto b = channel_->barrier(); !b) {
    return tl::unexpected(b.error());
  }
  return report;
}

}  // namespace vpcguard::test
