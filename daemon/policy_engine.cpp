#include "daemon/policy_engine.h"

#include <utility>

namespace vpcguard {
namespace {

using Clock = std::chrono::steady_clock;

double msBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void PolicyEngine::attach(ovs::OpenFlowChannel* channel) {
  sync_ = channel != nullptr ? std::make_unique<FlowSync>(*channel) : nullptr;
  if (sync_) {
    sync_->setBeforeSwitchCall(before_switch_call_);
  }
  in_step_ = false;
}

std::map<uint8_t, size_t> PolicyEngine::installedPerTable() const {
  return sync_ ? sync_->installedPerTable() : std::map<uint8_t, size_t>{};
}

PolicyEngine::Outcome<FlowDelta> PolicyEngine::translate(const Input& input, EngineReport& report) {
  const auto start = Clock::now();
  auto delta =
      translator_.update(input.policy, *input.ofports, *input.interface_index, input.generation);
  report.translate_ms = msBetween(start, Clock::now());
  if (!delta) {
    return tl::unexpected(Failure{FailureKind::kTranslate, delta.error()});
  }
  report.flows = translator_.flowCount();
  report.work = translator_.lastWork();
  return std::move(*delta);
}

// After a sync: deltas apply from now on only if it succeeded.
PolicyEngine::Outcome<EngineReport> PolicyEngine::finish(Result<SyncReport> synced,
                                                         Clock::time_point start,
                                                         EngineReport& report) {
  report.sync_ms = msBetween(start, Clock::now());
  in_step_ = synced.has_value();
  if (!synced) {
    return tl::unexpected(Failure{FailureKind::kSwitch, synced.error()});
  }
  report.sync = *synced;
  report.bundle_ms = std::chrono::duration<double, std::milli>(synced->bundle_duration).count();
  return report;
}

PolicyEngine::Outcome<EngineReport> PolicyEngine::apply(const Input& input) {
  if (!sync_) {
    return tl::unexpected(Failure{FailureKind::kSwitch, Error{"not connected"}});
  }
  EngineReport report;
  auto delta = translate(input, report);
  if (!delta) {
    return tl::unexpected(delta.error());
  }
  const auto start = Clock::now();
  report.full = !in_step_;
  auto synced = in_step_ ? sync_->applyDelta(*delta) : sync_->applyDesired(translator_.flowRefs());
  return finish(std::move(synced), start, report);
}

Result<uint16_t> PolicyEngine::readNewestGeneration() {
  if (!sync_) {
    return makeError("not connected");
  }
  return sync_->readNewestGeneration();
}

PolicyEngine::Outcome<EngineReport> PolicyEngine::resync(const Input& input) {
  if (!sync_) {
    return tl::unexpected(Failure{FailureKind::kSwitch, Error{"not connected"}});
  }
  // A resync is asked for because what we believe is in doubt (drift, a new connection): even
  // if it fails before it reads the switch (translation), the next change must read the switch,
  // not diff against that belief.
  in_step_ = false;
  sync_->distrustInstalled();
  EngineReport report;
  report.full = true;
  auto delta = translate(input, report);
  if (!delta) {
    return tl::unexpected(delta.error());
  }
  const auto start = Clock::now();
  auto synced = sync_->syncFull(translator_.flowRefs());
  return finish(std::move(synced), start, report);
}

}  // namespace vpcguard
