#pragma once
// The namespace lab under a vpcguard policy: one VM (network namespace) per interface of the
// policy, with the interface's MAC, addresses and the subnet's router as gateway, on a
// userspace-datapath bridge whose flows are the translator's, installed through FlowSync. Real
// packets then meet the real pipeline (conntrack included).
#include <map>
#include <memory>
#include <string>

#include "tests/harness/policy_installer.h"
#include "tests/harness/ns_lab.h"
#include "tests/harness/ovs_sandbox.h"
#include "translator/model.h"
#include "translator/translate.h"

namespace vpcguard::test {

// One VM per interface of `policy` (named and tagged with the interface id; its MAC, first
// addresses, and the subnet's router as gateway), as vagrant/lab.sh makes them. Returns
// interface id -> OpenFlow port.
[[nodiscard]] Result<std::map<std::string, int>> addPolicyVms(NsLab& lab,
                                                              const model::Policy& policy);

class PolicyLab {
 public:
  static constexpr const char* kBridge = "br-int";

  // A sandbox, the bridge and one VM per interface of `policy` (named by interface id).
  [[nodiscard]] static Result<std::unique_ptr<PolicyLab>> start(const model::Policy& policy);
  ~PolicyLab();

  // Translates `policy` for the lab's VMs and installs the difference.
  [[nodiscard]] Result<SyncReport> install(const model::Policy& policy);
  // Replaces every flow with `flows` (ovs-ofctl text), e.g. plain forwarding for baselines.
  [[nodiscard]] Result<void> replaceFlows(const std::string& flows);

  [[nodiscard]] CommandResult exec(const std::string& eni, const std::string& command,
                                   std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  [[nodiscard]] const Vm* vm(const std::string& eni) const { return lab_->vm(eni); }
  [[nodiscard]] OvsSandbox& sandbox() { return *sandbox_; }
  // Flushes the userspace conntrack table of every zone.
  [[nodiscard]] Result<void> flushConntrack();

 private:
  PolicyLab() = default;
  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<NsLab> lab_;
  std::unique_ptr<PolicyInstaller> installer_;
  std::map<std::string, int> ofports_;
};

}  // namespace vpcguard::test
