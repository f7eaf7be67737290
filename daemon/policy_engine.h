#pragma once
// From the current policy to the switch, at the cost of the change.
//
// Design: the engine owns the incremental translator (whose state, and rule ids, outlive
// reconnects) and the FlowSync of the current OpenFlow connection. apply() translates only what
// changed and sends only that difference (FlowSync::applyDelta) as one atomic bundle. When the
// engine cannot vouch that the switch holds the translator's previous set (a new connection, a
// failed or rejected bundle) it falls back to a full comparison against what it last installed
// (FlowSync::applyDesired) or, in resync(), against what the switch reports (syncFull).
// vpcguardd's apply/resync paths and bench/policy_bench both go through this class.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/flow_sync.h"
#include "ovs-plugin/openflow.h"
#include "translator/incremental.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard {

struct EngineReport {
  SyncReport sync;          // flows added / modified / deleted, bundle time
  size_t flows = 0;         // desired flows after the change
  bool full = false;        // compared the whole table (resync, or after a failure)
  double translate_ms = 0;  // policy -> delta (incremental translation)
  double sync_ms = 0;       // normalise + diff + bundle until the switch's reply
  double bundle_ms = 0;     // of which the bundle
  IncrementalTranslator::Work work;
};

class PolicyEngine {
 public:
  // What went wrong: a translation failure is a bug (validated policies translate) and leaves
  // the switch as it was; a switch failure may mean the connection is gone.
  enum class FailureKind { kTranslate, kSwitch };
  struct Failure {
    FailureKind kind;
    Error error;
  };
  template <typename T>
  using Outcome = tl::expected<T, Failure>;

  struct Input {
    const model::Policy* policy = nullptr;
    const std::map<std::string, int>* ofports = nullptr;
    const std::map<std::string, uint16_t>* interface_index = nullptr;
    uint16_t generation = 1;
  };

  // Uses `channel` from now on (nullptr: none). The next apply compares the whole table.
  void attach(ovs::OpenFlowChannel* channel);
  // See FlowSync::setBeforeSwitchCall(); kept across attach().
  void setBeforeSwitchCall(std::function<void()> hook) { before_switch_call_ = std::move(hook); }

  // Installs the difference the change makes, as one bundle.
  [[nodiscard]] Outcome<EngineReport> apply(const Input& input);
  // Reads the switch's flows and repairs any difference (start-up, reconnect, drift check).
  [[nodiscard]] Outcome<EngineReport> resync(const Input& input);
  // The newest generation among our flows on the switch (FlowSync::readNewestGeneration).
  [[nodiscard]] Result<uint16_t> readNewestGeneration();
  // Whether a flow-monitor update is our own change (see FlowSync::explains).
  [[nodiscard]] bool explains(const ovs::FlowUpdate& update) const {
    return sync_ != nullptr && sync_->explains(update);
  }
  // See FlowSync::recordChanges() and changedWhileRecording().
  void recordChanges(bool on) {
    if (sync_ != nullptr) {
      sync_->recordChanges(on);
    }
  }
  [[nodiscard]] bool changedWhileRecording(const ovs::FlowUpdate& update) const {
    return sync_ != nullptr && sync_->changedWhileRecording(update);
  }

  [[nodiscard]] bool attached() const { return sync_ != nullptr; }
  [[nodiscard]] size_t installedCount() const { return sync_ ? sync_->installedCount() : 0; }
  [[nodiscard]] std::map<uint8_t, size_t> installedPerTable() const;
  [[nodiscard]] const IncrementalTranslator& translator() const { return translator_; }

 private:
  [[nodiscard]] Outcome<FlowDelta> translate(const Input& input, EngineReport& report);
  [[nodiscard]] Outcome<EngineReport> finish(Result<SyncReport> synced,
                                             std::chrono::steady_clock::time_point start,
                                             EngineReport& report);

  IncrementalTranslator translator_;
  std::unique_ptr<FlowSync> sync_;
  std::function<void()> before_switch_call_;
  // The switch holds the translator's current set (as far as FlowSync knows): deltas apply.
  bool in_step_ = false;
};

}  // namespace vpcguard
