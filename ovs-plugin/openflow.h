#pragma once
// OpenFlow channel to one bridge. The interface is what the daemon needs; the implementation in
// openflow_channel.cpp goes through Open vSwitch's own library (via the C shim), and tests can
// substitute a fake.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "translator/flow.h"
#include "translator/result.h"

namespace vpcguard::ovs {

enum class FlowCommand {
  kAdd,           // add, or replace the flow with the same table+priority+match
  kModifyStrict,  // change actions/cookie of exactly this table+priority+match
  kDeleteStrict,  // delete exactly this table+priority+match
  kDelete,        // delete every flow covered by the match (and the cookie/mask in `match`)
};

struct FlowMod {
  FlowCommand command = FlowCommand::kAdd;
  Flow flow;  // the flow, when the mod holds its own copy (see `refers_to`)
  // Only for kDelete: restrict to cookies matching cookie/mask (0 mask = any cookie).
  uint64_t cookie_mask = 0;
  // Or the flow held elsewhere, which must outlive every use of the mod: a full sync at 100k
  // flows sends every flow of a table the daemon keeps anyway, and a copy of each for the bundle
  // was the largest part of its memory peak (issue 13).
  const Flow* refers_to = nullptr;

  static FlowMod referring(FlowCommand command, const Flow& flow) {
    FlowMod m;
    m.command = command;
    m.refers_to = &flow;
    return m;
  }
  // The flow of the mod, either way. Read it only through here.
  [[nodiscard]] const Flow& target() const { return refers_to != nullptr ? *refers_to : flow; }
  // A copy that holds its own flow (for keeping a mod beyond the flow it refers to).
  [[nodiscard]] FlowMod owning() const { return FlowMod{command, target(), cookie_mask}; }
};

struct FlowModError {
  std::optional<size_t> index;  // which FlowMod failed, when the switch said
  std::string message;
};

// The outcome of a bundle the switch answered: either committed, or rejected as a whole with the
// per-flow reasons. Transport failures are an Error instead.
struct BundleOutcome {
  bool committed = false;
  std::vector<FlowModError> errors;
};

struct InstalledFlow {
  Flow flow;  // match/actions in OVS's canonical text
  uint64_t n_packets = 0;
  uint64_t n_bytes = 0;
  uint32_t duration_sec = 0;
};

struct DumpFilter {
  std::optional<uint8_t> table;
  uint64_t cookie = 0;
  uint64_t cookie_mask = 0;  // 0 = every cookie
};

// Every call that waits for the switch has a deadline (a few seconds, plus a little per flow for
// bundles and dumps): past it the connection is closed and the call fails, so a stopped
// ovs-vswitchd costs a caller seconds, not forever (ovs-plugin/deadline_guard.h).
class OpenFlowChannel {
 public:
  virtual ~OpenFlowChannel() = default;
  // All mods as one ordered, atomic bundle: all or nothing.
  [[nodiscard]] virtual Result<BundleOutcome> applyBundle(std::span<const FlowMod> mods) = 0;
  [[nodiscard]] virtual Result<std::vector<InstalledFlow>> dumpFlows(const DumpFilter& filter) = 0;
  // The same dump, each flow handed to `sink` as it arrives, so that a caller comparing with
  // the switch need not hold the whole dump (issue 13: the memory peak of a full compare). On
  // failure the sink may have seen part of the flows. The sink runs within the dump's deadline:
  // keep it cheap (FlowSync's compare is a set lookup per flow). Fakes get this from dumpFlows().
  [[nodiscard]] virtual Result<void> dumpFlowsTo(const DumpFilter& filter,
                                                 const std::function<void(InstalledFlow&&)>& sink) {
    auto flows = dumpFlows(filter);
    if (!flows) {
      return tl::unexpected(flows.error());
    }
    for (auto& f : *flows) {
      sink(std::move(f));
    }
    return {};
  }
  // How many flows match `filter` (the switch counts; one small request whatever the table
  // size). Fakes need not implement it.
  [[nodiscard]] virtual Result<uint64_t> countFlows(const DumpFilter& /*filter*/) {
    return makeError("flow counts not supported by this channel");
  }
  // Returns when everything sent before is in effect in the switch.
  [[nodiscard]] virtual Result<void> barrier() = 0;
  [[nodiscard]] virtual Result<void> flushConntrackZone(uint16_t zone) = 0;
  // Answers the switch's echo probes and drains its asynchronous messages; Error if the
  // connection is gone. ovs-vswitchd drops a management connection whose probe stays unanswered
  // for 60 s, so an owner that may sit idle calls this every ~30 s. Not pure, so fakes need not.
  // Also probes the switch without blocking (an echo request once it has been silent for a
  // second); unanswered() then says how long that probe has waited: a stopped or hung
  // ovs-vswitchd keeps the connection open and answers nothing.
  [[nodiscard]] virtual Result<void> keepAlive() { return {}; }
  [[nodiscard]] virtual std::chrono::milliseconds unanswered() const { return {}; }
  // False when calls on this connection have no deadline (its socket could not be told apart:
  // an ssl: target, say). The owner says so; probes still see a silent switch.
  [[nodiscard]] virtual bool guarded() const { return true; }
  // A packets-per-second meter with one drop band (created, or changed if it exists), and
  // the packets its band dropped so far. Fakes need not implement them.
  [[nodiscard]] virtual Result<void> setMeter(uint32_t /*id*/, uint32_t /*rate_pps*/,
                                              uint32_t /*burst*/) {
    return makeError("meters not supported by this channel");
  }
  [[nodiscard]] virtual Result<uint64_t> meterDrops(uint32_t /*id*/) {
    return makeError("meters not supported by this channel");
  }
  [[nodiscard]] virtual std::string target() const = 0;
};

// A change to the switch's flow table, as its flow monitor reports it.
enum class FlowUpdateKind {
  kAdded,
  kRemoved,
  kModified,
  kPaused,   // the switch stopped reporting (we read too slowly): changes may be missing
  kResumed,  // reporting again; what changed in between is unknown
};

[[nodiscard]] const char* toString(FlowUpdateKind kind);

struct FlowUpdate {
  FlowUpdateKind kind = FlowUpdateKind::kAdded;
  Flow flow;  // canonical text as in a dump; empty for kPaused/kResumed
};

// Every flow added, modified or removed on the bridge, by anyone (including our own channel).
// A connection of its own, so it can be polled without disturbing request/reply exchanges.
class FlowMonitor {
 public:
  virtual ~FlowMonitor() = default;
  // What arrived since the last call, at most `max` updates, without blocking. Error when the
  // connection is gone (ovs-vswitchd stopped or restarted).
  [[nodiscard]] virtual Result<std::vector<FlowUpdate>> poll(size_t max) = 0;
};

// `tables`: the tables to watch; empty = every table.
[[nodiscard]] Result<std::unique_ptr<FlowMonitor>> startFlowMonitor(
    const std::string& target, std::chrono::milliseconds timeout = std::chrono::seconds(5),
    std::span<const uint8_t> tables = {});

// Connects to `target` (any OVS vconn name, e.g. "unix:/var/run/openvswitch/br-int.mgmt").
[[nodiscard]] Result<std::unique_ptr<OpenFlowChannel>> connectOpenFlow(
    const std::string& target, std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Parses a flow with OVS's parser and prints it back the way the switch prints it in a dump, so
// desired and installed flows can be compared as text.
[[nodiscard]] Result<Flow> normalizeFlow(const Flow& flow);

}  // namespace vpcguard::ovs
