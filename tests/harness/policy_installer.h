#pragma once
// Installs policies on one bridge the way vpcguardd does: stable interface indices, translate,
// FlowSync (a full read of the switch the first time, differences after), then a barrier so the
// flows are in effect when install() returns. Shared by PolicySwitch and PolicyLab.
#include <map>
#include <memory>
#include <string>

#include "daemon/flow_sync.h"
#include "ovs-plugin/openflow.h"
#include "translator/model.h"
#include "translator/translate.h"

namespace vpcguard::test {

class PolicyInstaller {
 public:
  [[nodiscard]] static Result<std::unique_ptr<PolicyInstaller>> connect(const std::string& target);

  [[nodiscard]] Result<SyncReport> install(const model::Policy& policy,
                                           const std::map<std::string, int>& ofports);
  // The next install() reads the switch again (after someone else changed its flows).
  void forgetInstalled() { synced_ = false; }
  [[nodiscard]] const Translation& translation() const { return translation_; }

 private:
  std::unique_ptr<ovs::OpenFlowChannel> channel_;
  std::unique_ptr<FlowSync> sync_;
  std::map<std::string, uint16_t> indices_;
  Translation translation_;
  bool synced_ = false;
};

}  // namespace vpcguard::test
