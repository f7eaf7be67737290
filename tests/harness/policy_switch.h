#pragma once
// A policy installed on a sandbox bridge the way vpcguardd does it: every interface of the
// policy becomes a dummy port with its iface-id, the translator's flows go in through FlowSync.
// Pipeline tests then ask the switch for verdicts with ofproto/trace.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/policy_installer.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/trace.h"
#include "translator/model.h"
#include "translator/translate.h"

namespace vpcguard::test {

class PolicySwitch {
 public:
  [[nodiscard]] static Result<std::unique_ptr<PolicySwitch>> start();

  // Ports for new interfaces, then translate and sync (only the difference after the first).
  [[nodiscard]] Result<SyncReport> install(const model::Policy& policy);

  // Trace a packet entering from `eni`'s port. `fields` is the rest of the flow
  // (e.g. "tcp,dl_src=..,nw_dst=..,tp_dst=80").
  [[nodiscard]] Result<TraceResult> traceFrom(const std::string& eni, const std::string& fields,
                                              const std::vector<std::string>& ct_next = {});
  // Datapath port number of an interface's port ("LOCAL" for the bridge's own port).
  [[nodiscard]] Result<int> datapathPortOf(const std::string& eni);

  // OpenFlow port numbers of the interfaces' ports (what explain::ofprotoTraceArgs() takes).
  [[nodiscard]] const std::map<std::string, int>& ofports() const { return ofports_; }

  OvsSandbox& sandbox() { return *sandbox_; }
  [[nodiscard]] const Translation& translation() const { return installer_->translation(); }
  static constexpr const char* kBridge = "br0";

 private:
  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<PolicyInstaller> installer_;
  std::map<std::string, int> ofports_;
  std::map<std::string, std::string> port_names_;
};

}  // namespace vpcguard::test
