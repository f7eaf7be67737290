#pragma once
// Keeps the switch's flows equal to the desired flows.
//
// Design: the daemon holds two tables: `desired` (the translator's output) and `installed`
// (what it believes the switch has, in the switch's own canonical text). A change is the
// difference between the two, sent as ONE ordered+atomic bundle: deletes of the old policy and
// adds and modifies of the new land together, so no packet ever sees a half-applied policy
// (no delete-then-add "blink"), and a rejected bundle changes nothing. Inside the bundle the
// deletes come first, so a table at an operator-set flow_limit can still swap flows. Flows are identified by
// (table, priority, match) as in OpenFlow; only flows with the vpcguard cookie magic are ours.
//
// syncFull() reads the switch and repairs any difference: used at start-up, after a reconnect
// and for drift checks. Foreign flows (without the cookie magic) in the tables vpcguard owns are
// drift too and are removed; other tables are left alone. applyDesired() diffs against the last
// installed state without reading the switch. applyDelta() takes the difference itself
// (IncrementalTranslator computes it) and touches only the flows in it: normalising, comparing
// and sending cost what the change costs, not what the table holds - the fast path for config
// and port changes. explains() tells whether a change the switch's flow monitor reported is one
// of ours (the installed state already says so) or drift that needs a syncFull().
//
// Generations: a flow that is right except for the generation in its cookie is adopted as it
// is (a restarted daemon rewrites nothing that is already right); what differs is written with
// the current generation, and stale flows of any generation go in the same atomic bundle.

#include <array>
#include <chrono>
#include <functional>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ovs-plugin/openflow.h"
#include "translator/flow.h"
#include "translator/incremental.h"
#include "translator/result.h"

namespace vpcguard {

struct SyncReport {
  size_t added = 0;
  size_t modified = 0;
  size_t deleted = 0;
  std::chrono::microseconds duration{0};         // diff (applyDelta: also normalise) + bundle
  std::chrono::microseconds bundle_duration{0};  // the bundle alone
  [[nodiscard]] size_t changes() const { return added + modified + deleted; }
};

class FlowSync {
 public:
  explicit FlowSync(ovs::OpenFlowChannel& channel) : channel_(channel) {}

  // Reads our flows from the switch, then installs the difference to `desired`. The switch's
  // flows are compared as they arrive, not held: the installed state is dropped, the desired
  // flows normalised, and the dump compared flow by flow with them, so that a full compare at
  // 100k flows holds one table besides the translator's, not two (issue 13: memory peak).
  [[nodiscard]] Result<SyncReport> syncFull(const std::vector<Flow>& desired);
  // The same with the desired flows held elsewhere (the translator's), in any order.
  [[nodiscard]] Result<SyncReport> syncFull(std::span<const Flow* const> desired);
  // The installed state may not be what the switch holds (drift was seen): the next
  // applyDesired() reads the switch (a syncFull()).
  void distrustInstalled() { installed_unknown_ = true; }
  // The newest generation among our flows on the switch (0 if none), read without keeping the
  // flows (the installed state is left as it is).
  [[nodiscard]] Result<uint16_t> readNewestGeneration();
  // Reads our flows (and foreign flows in our tables) from the switch into the installed state,
  // holding the whole dump; vpcguardd itself compares as it reads (syncFull()).
  [[nodiscard]] Result<void> readInstalled();
  // True if the installed state accounts for this flow-monitor update (our own change, or not
  // in our tables); false for drift, a paused monitor and everything unknown. An update that
  // shows a version of the flow one of our own bundles wrote in the last 10 s (or its deletion),
  // not yet seen in an update, is ours too: the monitor is read after the next change may have
  // rewritten the same flow (consecutive rule changes of one group rewrite its slot flows). So
  // is one that shows the version the oldest such write replaced, while that write's own update
  // is still to come: the switch sent it before our write (a large install's update, read after
  // the change that followed it), and ours overwrote it.
  [[nodiscard]] bool explains(const ovs::FlowUpdate& update) const;
  // While on, remembers for every flow our committed bundles add, change or delete the version
  // it had before and the one after (turning it on forgets the earlier ones). A paused flow
  // monitor, when it resumes, replays flows as they were at that moment; a flow we changed
  // after that moment reads as different from the installed state, which is not drift when the
  // replayed version is one of those: changedWhileRecording() says so.
  void recordChanges(bool on);
  [[nodiscard]] bool changedWhileRecording(const ovs::FlowUpdate& update) const;
  // Installs the difference between the last installed state and `desired` (after a syncFull()
  // whose dump failed, the installed state is unknown: this is then a syncFull()).
  [[nodiscard]] Result<SyncReport> applyDesired(const std::vector<Flow>& desired);
  [[nodiscard]] Result<SyncReport> applyDesired(std::span<const Flow* const> desired);
  // Installs `delta`, the difference between the desired set of the last successful sync and
  // the new desired set. Only valid while that holds (after any sync that succeeded): after a
  // failure, use applyDesired() or syncFull(). On failure nothing changes, here or in the switch.
  [[nodiscard]] Result<SyncReport> applyDelta(const FlowDelta& delta);

  [[nodiscard]] size_t installedCount() const { return installed_.size(); }
  // Called before each call that waits for the switch (a dump, a bundle): the daemon pings its
  // service watchdog there, since one sync may wait for the switch twice in a row.
  void setBeforeSwitchCall(std::function<void()> hook) { before_switch_call_ = std::move(hook); }
  // Kept up to date with the installed state (every status write asks; counting 100k flows
  // each time cost as much as the change itself).
  [[nodiscard]] std::map<uint8_t, size_t> installedPerTable() const;

 private:
  using Key = std::tuple<uint8_t, uint16_t, std::string>;
  // A flow's identity (table, priority, match), viewed in place.
  using Id = std::tuple<uint8_t, uint16_t, std::string_view>;
  struct ByIdentity {
    using is_transparent = void;
    static Id id(const Flow& f) { return {f.table, f.priority, f.match}; }
    static Id id(const Id& i) { return i; }
    static Id id(const Key& k) { return {std::get<0>(k), std::get<1>(k), std::get<2>(k)}; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return id(a) < id(b);
    }
  };
  static Id idOf(const Key& k) { return {std::get<0>(k), std::get<1>(k), std::get<2>(k)}; }
  // Flows by identity. The flow is its own key: its match is held once, not twice (memory, issue
  // 13). Only a flow's cookie and actions may change in place, through extract() and insert().
  using Table = std::set<Flow, ByIdentity>;

  // 128 bits of a desired flow's text (XXH3): the normalisation cache's key.
  struct TextDigest {
    uint64_t low = 0;
    uint64_t high = 0;
    bool operator==(const TextDigest&) const = default;
  };
  struct TextDigestHash {
    size_t operator()(const TextDigest& d) const noexcept { return d.low; }
  };
  // What the cache keeps for a desired text: its canonical form, or null when the switch prints
  // the flow exactly as the translator wrote it (a pointer, so such a flow costs the cache a
  // digest and a null, not an empty Flow's 80 bytes).
  using CachedForm = std::shared_ptr<const Flow>;

  [[nodiscard]] Result<Table> normalized(std::span<const Flow* const> flows);
  [[nodiscard]] Result<SyncReport> applyDiff(Table target);
  // The switch's form of `flow`, through the cache. `key` and `base` receive what the cache
  // keeps for it.
  [[nodiscard]] Result<Flow> normalizedOne(const Flow& flow, TextDigest& key, CachedForm& base);
  // `installed_is_before`: installed_ still holds the flows as they were before `mods` (not
  // so in a full compare, which dropped it).
  [[nodiscard]] Result<void> sendBundle(const std::vector<ovs::FlowMod>& mods, SyncReport& report,
                                        bool installed_is_before = true);
  void beforeSwitchCall() const {
    if (before_switch_call_) {
      before_switch_call_();
    }
  }
  std::function<void()> before_switch_call_;

  // After installed_ was replaced whole.
  void recountPerTable();

  ovs::OpenFlowChannel& channel_;
  Table installed_;
  // syncFull() dropped installed_ and could not read the switch, or the owner distrusts it:
  // installed_ may not be what the switch holds, so nothing may be diffed against it.
  bool installed_unknown_ = false;
  // A version of a flow: (cookie, actions), or nullopt for "not there".
  using Version = std::optional<std::pair<uint64_t, std::string>>;
  static Version versionOf(const ovs::FlowUpdate& update);
  // recordChanges(): per identity our bundles touched since it started, the versions the flow
  // had before and after each (or any version, after a full compare: the switch's was not kept).
  struct Recorded {
    bool any = false;
    std::vector<Version> versions;
  };
  bool recording_ = false;
  std::map<Key, Recorded, ByIdentity> recorded_;  // looked up by Id, no copy of the match
  // explains(): what our recent bundles (up to kRecentLimit mods; a start-up install is larger)
  // wrote, per identity in order, each expected once in the monitor's updates for kRecentFor.
  // An update equal to one of them consumes it and the older ones of that flow; one equal to
  // what the oldest of them replaced (its `before`) consumes none (see consumeWritten()).
  static constexpr size_t kRecentLimit = 4096;
  static constexpr std::chrono::seconds kRecentFor{10};
  struct Written {
    Version version;
    // What the flow was before this write; nullopt when unknown (a full compare's bundle).
    std::optional<Version> before;
    std::chrono::steady_clock::time_point at;
  };
  mutable std::map<Key, std::vector<Written>, ByIdentity> recent_;  // looked up by Id
  std::chrono::steady_clock::time_point recent_pruned_{};
  void rememberWritten(const std::vector<ovs::FlowMod>& mods, bool installed_is_before);
  // Adds a write to recorded_ (any version, when what was before is unknown).
  void record(Key key, const std::optional<Version>& before, const Version& after);
  [[nodiscard]] bool consumeWritten(const Id& id, const Version& version) const;
  std::array<size_t, 256> per_table_{};  // installed_'s flows by table
  // Desired text -> the switch's canonical form. Parsing with OVS's parser is the costly part
  // of a diff; a change re-parses only flows it has not seen before. Clause flows are cached
  // by their match alone (with "drop" for actions): OVS prints conjunction actions exactly as
  // the translator writes them (tests/integration/policy_engine_test.cpp checks it), while an
  // interface's member clause carries one action per rule of its groups, so a one-rule change
  // rewrites a few long flows whose match is all that needs OVS's parser.
  // Memory (issue 13): keyed by a 128-bit digest of the text, not the text, and holding a copy
  // only of flows the switch prints differently; at 100k flows the texts and the copies were a
  // good part of the daemon's bytes per flow. Two different texts with one digest (odds about
  // n^2 / 2^129, 10^-29 at 100k flows) would take each other's form.
  std::unordered_map<TextDigest, CachedForm, TextDigestHash> normalized_cache_;
};

}  // namespace vpcguard
