// FlowSync against a fake switch: what it sends for a difference (and in which order), what it
// adopts after a restart, what counts as drift, and which monitor updates it can explain.
#include "daemon/flow_sync.h"

#include <gtest/gtest.h>

#include "translator/pipeline.h"

namespace vpcguard {
namespace {

using ovs::FlowCommand;
using ovs::FlowUpdate;
using ovs::FlowUpdateKind;

// Holds a table like a switch: bundles change it, dumps read it (all flows, any cookie).
class FakeSwitch final : public ovs::OpenFlowChannel {
 public:
  Result<ovs::BundleOutcome> applyBundle(std::span<const ovs::FlowMod> mods) override {
    if (refuse_bundles) {
      ++refused;
      return ovs::BundleOutcome{false, {ovs::FlowModError{0, "OFPBAC_BAD_ARGUMENT (refused)"}}};
    }
    auto& kept = bundles.emplace_back();
    for (const auto& mod : mods) {
      // The flows a mod refers to belong to the FlowSync and may be gone by the time a test
      // reads `bundles`.
      kept.push_back(mod.owning());
    }
    for (const auto& m : kept) {
      const auto key = std::make_tuple(m.flow.table, m.flow.priority, m.flow.match);
      if (m.command == FlowCommand::kAdd) {
        table[key] = m.flow;
      } else if (m.command == FlowCommand::kDeleteStrict) {
        table.erase(key);
      } else {
        ADD_FAILURE() << "unexpected command";
      }
    }
    return ovs::BundleOutcome{true, {}};
  }
  Result<std::vector<ovs::InstalledFlow>> dumpFlows(const ovs::DumpFilter& filter) override {
    EXPECT_EQ(filter.cookie_mask, 0U) << "drift checks read every flow, foreign ones too";
    if (fail_dumps) {
      return makeError("connection closed");
    }
    std::vector<ovs::InstalledFlow> out;
    for (const auto& [key, flow] : table) {
      out.push_back(ovs::InstalledFlow{flow, 0, 0, 0});
    }
    return out;
  }
  Result<void> barrier() override { return {}; }
  Result<void> flushConntrackZone(uint16_t) override { return {}; }
  std::string target() const override { return "fake"; }

  // Puts a flow in the table the way another controller would (canonical text).
  void put(const Flow& f) {
    auto n = ovs::normalizeFlow(f);
    ASSERT_TRUE(n.has_value()) << n.error().message;
    table[std::make_tuple(n->table, n->priority, n->match)] = *n;
  }

  std::map<std::tuple<uint8_t, uint16_t, std::string>, Flow> table;
  std::vector<std::vector<ovs::FlowMod>> bundles;
  bool refuse_bundles = false;  // answer every bundle "not committed", change nothing
  size_t refused = 0;
  bool fail_dumps = false;  // every dump fails as on a lost connection
};

uint64_t cookie(uint16_t generation, uint32_t index = 1) {
  return pipeline::makeCookie(generation, pipeline::CookieKind::kInfra, index);
}

std::vector<Flow> policy(uint16_t generation) {
  return {Flow{pipeline::kClassify, 100, cookie(generation, 1), "in_port=1", "set_field:0x1->reg0,goto_table:10"},
          Flow{pipeline::kDrop, 0, cookie(generation, 2), "", "drop"},
          Flow{pipeline::kNaclOut, 39900, cookie(generation, 3), "ip,nw_dst=10.0.2.0/24", "goto_table:41"}};
}

TEST(FlowSync, InstallsAllThenSendsNothingForAnUnchangedInput) {
  FakeSwitch sw;
  FlowSync sync(sw);
  auto first = sync.syncFull(policy(1));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->added, 3U);
  ASSERT_EQ(sw.bundles.size(), 1U);
  auto again = sync.applyDesired(policy(1));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->changes(), 0U);
  EXPECT_EQ(sw.bundles.size(), 1U) << "no bundle for no change";
}

// The monitor's updates of an install, as a daemon reads them before anything else.
void showInstall(const FakeSwitch& sw, FlowSync& sync) {
  for (const auto& [id, flow] : sw.table) {
    EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, flow}));
  }
}

TEST(FlowSync, ChangesWhileRecordingAreKnownUntilItStops) {
  // What a resumed flow monitor replays may be older than a change we made while reading it.
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  auto next = policy(1);
  next[0].actions = "set_field:0x2->reg0,goto_table:10";
  // Not recording: nothing is remembered.
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  EXPECT_FALSE(
      sync.changedWhileRecording(FlowUpdate{FlowUpdateKind::kModified, sw.table.begin()->second}));
  sync.recordChanges(true);
  const Flow replayed = sw.table.at({pipeline::kClassify, 100, "in_port=1"});  // as replayed
  next[0].actions = "set_field:0x3->reg0,goto_table:10";
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  // The replayed flow is not what is installed now, but it is the version it had before our
  // change since the pause (which also covers a version from a bundle too large for explains()
  // to remember).
  EXPECT_TRUE(sync.changedWhileRecording(FlowUpdate{FlowUpdateKind::kModified, replayed}));
  // Someone else's version of that flow, and a flow we did not touch since, are drift.
  Flow foreign = replayed;
  foreign.actions = "set_field:0x9->reg0,goto_table:10";
  EXPECT_FALSE(sync.changedWhileRecording(FlowUpdate{FlowUpdateKind::kModified, foreign}));
  const Flow other = sw.table.at({pipeline::kDrop, 0, ""});
  EXPECT_FALSE(sync.changedWhileRecording(FlowUpdate{FlowUpdateKind::kModified, other}));
  // Stopping (the monitor resumed) forgets them.
  sync.recordChanges(false);
  EXPECT_FALSE(sync.changedWhileRecording(FlowUpdate{FlowUpdateKind::kModified, replayed}));
}

TEST(FlowSync, AnUpdateShowingWhatOurPendingWriteReplacedIsOurs) {
  // Right after a large install (too large for its writes to be remembered) a config change
  // rewrites one of its flows before the monitor's update of the install is read: that update
  // shows the version our change replaced. Ours, not drift; so is a replay taken before it.
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  showInstall(sw, sync);  // now nothing of the install is remembered, as after a large one
  const Flow original = sw.table.at({pipeline::kClassify, 100, "in_port=1"});
  auto next = policy(1);
  next[0].actions = "set_field:0x2->reg0,goto_table:10";
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  const Flow second = sw.table.at({pipeline::kClassify, 100, "in_port=1"});
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, original}));
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, second}));
  // After our change's own update, that older version is someone writing it back.
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, original}));
  Flow foreign = original;
  foreign.actions = "set_field:0x9->reg0,goto_table:10";
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, foreign}));

  // A paused monitor's replay, taken before a change we made while its pause sat unread.
  next[0].actions = "set_field:0x3->reg0,goto_table:10";
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  sync.recordChanges(true);
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, second}));
  sync.recordChanges(false);
}

TEST(FlowSync, WhatOurWritesReplacedIsOursOnlyWhileTheirUpdatesAreToCome) {
  // From a review: two ways the version a write replaced could hide someone else's write.
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  showInstall(sw, sync);
  const Flow a = sw.table.at({pipeline::kClassify, 100, "in_port=1"});
  auto next = policy(1);

  // Undone during a pause (A -> B -> A): the replay's A is our second write, which consumes
  // both; B written by someone else afterwards is drift.
  sync.recordChanges(true);
  next[0].actions = "set_field:0x2->reg0,goto_table:10";
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  const Flow b = sw.table.at({pipeline::kClassify, 100, "in_port=1"});
  ASSERT_TRUE(sync.applyDesired(policy(1)).has_value());
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, a}));
  sync.recordChanges(false);
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, b}));

  // Changed and then deleted during a pause: neither write is ever reported. After the resume,
  // A put back by someone else is drift, not what our first write replaced.
  sync.recordChanges(true);
  next = policy(1);
  next[0].actions = "set_field:0x3->reg0,goto_table:10";
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  next.erase(next.begin());
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  sync.recordChanges(false);
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, a}));
}

TEST(FlowSync, AnUpdateShowingAVersionWeWroteBeforeTheLatestIsOurs) {
  // Two changes rewrite one flow before the monitor is read: its first update shows the older
  // of our two versions. Not drift; a version nobody of ours wrote still is.
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  auto next = policy(1);
  next[0].actions = "set_field:0x2->reg0,goto_table:10";
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  const Flow first = sw.table.at({pipeline::kClassify, 100, "in_port=1"});
  next[0].actions = "set_field:0x3->reg0,goto_table:10";
  next.erase(next.begin() + 1);  // the drop flow goes
  ASSERT_TRUE(sync.applyDesired(next).has_value());
  const Flow second = sw.table.at({pipeline::kClassify, 100, "in_port=1"});
  ASSERT_NE(first.actions, second.actions);
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, first}));
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, second}));
  // Each write is expected once: our older version seen again later is someone else's.
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, first}));
  Flow foreign = second;
  foreign.actions = "set_field:0x9->reg0,goto_table:10";
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, foreign}));
  // The drop flow we deleted: its removal is ours; put back by someone else it is drift.
  const Flow drop{pipeline::kDrop, 0, cookie(1, 2), "", "drop"};
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kRemoved, drop}));
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, Flow{pipeline::kDrop, 0, 0x42, "", "drop"}}));
}

TEST(FlowSync, ChangedFlowIsReplacedByAnAddAndStaleFlowsGoFirst) {
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  auto next = policy(1);
  next[0].actions = "set_field:0x2->reg0,goto_table:10";  // changed
  next.erase(next.begin() + 1);                            // the drop flow is gone
  next.push_back(Flow{pipeline::kNaclIn, 39800, cookie(1, 4), "ip", "goto_table:50"});  // new
  auto r = sync.applyDesired(next);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->added, 1U);
  EXPECT_EQ(r->modified, 1U);
  EXPECT_EQ(r->deleted, 1U);
  ASSERT_EQ(sw.bundles.size(), 2U);
  const auto& b = sw.bundles[1];
  ASSERT_EQ(b.size(), 3U);
  // Stale flows leave first (a table at its flow_limit then has room for the new ones); a
  // modify could not change the cookie (OpenFlow 1.1+), so changed flows are re-added.
  EXPECT_EQ(b[0].command, FlowCommand::kDeleteStrict) << "the old go before the new";
  EXPECT_EQ(b[1].command, FlowCommand::kAdd);
  EXPECT_EQ(b[2].command, FlowCommand::kAdd);
}

TEST(FlowSync, RestartAdoptsRightFlowsOfAnOlderGenerationAndRewritesTheRest) {
  FakeSwitch sw;
  for (const auto& f : policy(4)) {
    sw.put(f);
  }
  sw.table.begin()->second.actions = "drop";  // one flow was changed while we were away
  FlowSync sync(sw);
  // As vpcguardd starts: the newest generation first (nothing kept), then the full compare.
  auto newest = sync.readNewestGeneration();
  ASSERT_TRUE(newest.has_value()) << newest.error().message;
  EXPECT_EQ(*newest, 4);
  EXPECT_EQ(sync.installedCount(), 0U) << "reading the generation keeps no flows";
  auto r = sync.syncFull(policy(5));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->modified, 1U);
  EXPECT_EQ(r->changes(), 1U) << "right flows are adopted, not rewritten";
  size_t gen4 = 0;
  size_t gen5 = 0;
  for (const auto& [key, flow] : sw.table) {
    (pipeline::cookieGeneration(flow.cookie) == 4 ? gen4 : gen5)++;
  }
  EXPECT_EQ(gen4, 2U);
  EXPECT_EQ(gen5, 1U);
  // Adopted flows are remembered with the cookie they really have: the switch's report of any
  // flow it holds is one of ours, whatever its generation.
  EXPECT_EQ(sync.applyDesired(policy(5))->changes(), 0U);
  for (const auto& [key, flow] : sw.table) {
    EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, flow})) << flow.match;
  }
}

// A full compare does not hold the switch's table, so when the switch refuses the bundle the
// installed state is rebuilt from what the compare saw: the next change, diffed against it,
// must still delete the foreign flow, restore the changed one and add the missing one.
TEST(FlowSync, AFullCompareWhoseBundleIsRefusedStillKnowsTheSwitchsTable) {
  FakeSwitch sw;
  for (const auto& f : policy(1)) {
    sw.put(f);
  }
  const Flow foreign{pipeline::kSgIngress, 65000, 0x42, "ip", "output:7"};
  sw.put(foreign);
  sw.table.begin()->second.actions = "drop";  // changed behind our back
  auto desired = policy(2);
  desired.push_back(Flow{pipeline::kNaclIn, 39800, cookie(2, 4), "ip", "goto_table:50"});
  const auto before = sw.table;
  FlowSync sync(sw);
  sw.refuse_bundles = true;
  auto refused = sync.syncFull(desired);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(sw.refused, 1U);
  EXPECT_EQ(sw.table, before);
  // What it believes now is the switch's table, flow for flow.
  EXPECT_EQ(sync.installedCount(), before.size());
  for (const auto& [key, flow] : before) {
    EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, flow})) << flow.match;
  }
  sw.refuse_bundles = false;
  auto next = sync.applyDesired(desired);
  ASSERT_TRUE(next.has_value()) << next.error().message;
  EXPECT_EQ(next->deleted, 1U) << "the foreign flow";
  EXPECT_EQ(next->modified, 1U) << "the changed flow";
  EXPECT_EQ(next->added, 1U) << "the new flow";
  EXPECT_EQ(sw.table.size(), desired.size());
  EXPECT_EQ(sync.applyDesired(desired)->changes(), 0U);
}

// A full compare drops what it believed before it reads the switch; when the read fails, the
// next change must not be diffed against that empty belief (it would miss every stale flow).
TEST(FlowSync, AFailedReadMakesTheNextChangeAFullCompare) {
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  sw.fail_dumps = true;
  ASSERT_FALSE(sync.syncFull(policy(1)).has_value());
  sw.fail_dumps = false;
  sw.put(Flow{pipeline::kSgIngress, 65000, 0x42, "ip", "output:7"});  // drift meanwhile
  auto r = sync.applyDesired(policy(1));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->deleted, 1U) << "read from the switch, not diffed against nothing";
  EXPECT_EQ(r->added, 0U) << "the flows already there are not sent again";
  EXPECT_EQ(sw.table.size(), policy(1).size());
}

// The owner distrusts its belief (drift was seen but the resync failed before reading): the next
// change reads the switch instead of diffing against the belief, so the drift goes too.
TEST(FlowSync, ADistrustedInstalledStateIsReadAgainByTheNextChange) {
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  sw.put(Flow{pipeline::kSgIngress, 65000, 0x42, "ip", "output:7"});
  EXPECT_EQ(sync.applyDesired(policy(1))->changes(), 0U) << "a trusted belief does not see it";
  sync.distrustInstalled();
  auto r = sync.applyDesired(policy(1));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->deleted, 1U);
  EXPECT_EQ(sw.table.size(), policy(1).size());
}

// The translator may write a flow as the switch does not print it (here "ip,nw_proto=6" for
// "tcp"). It is compared, adopted and deleted in the switch's form, also when the
// normalisation comes from the cache (which keeps a copy only of such flows).
TEST(FlowSync, AFlowWrittenOtherwiseThanTheSwitchPrintsItIsHandledInTheSwitchsForm) {
  FakeSwitch sw;
  FlowSync sync(sw);
  auto flows = policy(1);
  const Flow other{pipeline::kNaclOut, 39000, cookie(1, 9), "ip,nw_proto=6,tp_dst=80",
                   "goto_table:41"};
  flows.push_back(other);
  ASSERT_TRUE(sync.syncFull(flows).has_value());
  const auto canonical = std::make_tuple(other.table, other.priority, std::string("tcp,tp_dst=80"));
  ASSERT_EQ(sw.table.count(canonical), 1U) << "installed in the switch's form";
  auto again = sync.applyDesired(flows);  // from the cache this time
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->changes(), 0U);
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, sw.table.at(canonical)}));
  FlowDelta delta;
  delta.removed.push_back(other);
  auto removed = sync.applyDelta(delta);
  ASSERT_TRUE(removed.has_value()) << removed.error().message;
  EXPECT_EQ(removed->deleted, 1U);
  EXPECT_EQ(sw.table.count(canonical), 0U);
  EXPECT_EQ(sw.table.size(), 3U);
  EXPECT_EQ(sync.installedCount(), 3U);
  // And back, as a delta: added once, then nothing left to do.
  FlowDelta back;
  back.added.push_back(other);
  auto added = sync.applyDelta(back);
  ASSERT_TRUE(added.has_value()) << added.error().message;
  EXPECT_EQ(added->added, 1U);
  EXPECT_EQ(sw.table.count(canonical), 1U);
  EXPECT_EQ(sync.applyDesired(flows)->changes(), 0U);
  // Empty actions are "drop" (one text, one cache entry, for both spellings).
  auto spelled = flows;
  ASSERT_EQ(spelled[1].actions, "drop");
  spelled[1].actions.clear();
  EXPECT_EQ(sync.applyDesired(spelled)->changes(), 0U);
}

// The per-table counts (status, metrics) follow every way the installed state changes.
TEST(FlowSync, PerTableCountsFollowFullSyncsDeltasAndReads) {
  FakeSwitch sw;
  FlowSync sync(sw);
  const auto counts = [&](std::initializer_list<std::pair<const uint8_t, size_t>> want) {
    return std::map<uint8_t, size_t>(want);
  };
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  EXPECT_EQ(sync.installedPerTable(),
            counts({{pipeline::kClassify, 1}, {pipeline::kNaclOut, 1}, {pipeline::kDrop, 1}}));
  FlowDelta delta;
  delta.added.push_back(Flow{pipeline::kNaclOut, 39000, cookie(1, 9), "ip,nw_dst=10.0.3.0/24",
                             "goto_table:41"});
  delta.added.push_back(Flow{pipeline::kClassify, 100, cookie(1, 10), "in_port=2",
                             "set_field:0x2->reg0,goto_table:10"});
  delta.removed.push_back(policy(1)[1]);  // the drop table's flow
  ASSERT_TRUE(sync.applyDelta(delta).has_value());
  EXPECT_EQ(sync.installedPerTable(), counts({{pipeline::kClassify, 2}, {pipeline::kNaclOut, 2}}));
  // A modified flow (same identity, other actions) counts once.
  FlowDelta modified;
  modified.removed.push_back(delta.added[1]);
  modified.added.push_back(Flow{pipeline::kClassify, 100, cookie(1, 10), "in_port=2",
                                "set_field:0x3->reg0,goto_table:10"});
  ASSERT_TRUE(sync.applyDelta(modified).has_value());
  EXPECT_EQ(sync.installedPerTable(), counts({{pipeline::kClassify, 2}, {pipeline::kNaclOut, 2}}));
  // Someone else removes a flow: the next read counts what is there.
  sw.table.erase(std::make_tuple(pipeline::kNaclOut, uint16_t{39000},
                                 std::string("ip,nw_dst=10.0.3.0/24")));
  ASSERT_TRUE(sync.readInstalled().has_value());
  EXPECT_EQ(sync.installedPerTable(), counts({{pipeline::kClassify, 2}, {pipeline::kNaclOut, 1}}));
  ASSERT_TRUE(sync.applyDesired(policy(1)).has_value());
  EXPECT_EQ(sync.installedPerTable(),
            counts({{pipeline::kClassify, 1}, {pipeline::kNaclOut, 1}, {pipeline::kDrop, 1}}));
}

TEST(FlowSync, ForeignFlowsInOurTablesAreDriftOthersAreLeftAlone) {
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  sw.put(Flow{pipeline::kSgIngress, 65000, 0x42, "ip", "output:7"});  // bypass in our table
  sw.put(Flow{200, 5, 0x42, "", "drop"});                              // not our table
  sw.put(Flow{pipeline::kDrop, 0, 0x42, "", "NORMAL"});                // takes over our flow
  auto r = sync.syncFull(policy(1));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->deleted, 1U);
  EXPECT_EQ(r->modified, 1U);
  EXPECT_EQ(sw.table.count(std::make_tuple(uint8_t{200}, uint16_t{5}, std::string())), 1U);
  EXPECT_EQ(sw.table.size(), 4U);
  for (const auto& [key, flow] : sw.table) {
    if (std::get<0>(key) != 200) {
      EXPECT_EQ(flow.cookie & pipeline::kCookieMagicMask, pipeline::kCookieMagic) << flow.match;
    }
  }
}

TEST(FlowSync, ExplainsItsOwnChangesButNotSomeoneElses) {
  FakeSwitch sw;
  FlowSync sync(sw);
  ASSERT_TRUE(sync.syncFull(policy(1)).has_value());
  const Flow ours = sw.table.begin()->second;
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, ours}));
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, ours}));
  Flow changed = ours;
  changed.actions = "drop";
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kModified, changed}));
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kRemoved, ours})) << "ours, deleted";
  Flow gone{pipeline::kNaclIn, 7, cookie(1), "ip", "drop"};
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kRemoved, gone})) << "we removed it";
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, Flow{pipeline::kNaclIn, 7, 0x42, "ip", "drop"}}));
  EXPECT_TRUE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, Flow{200, 7, 0x42, "ip", "drop"}}));
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kAdded, Flow{200, 7, cookie(1), "ip", "drop"}}))
      << "a flow with our cookie in another table is not ours to have";
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kPaused, {}}));
  EXPECT_FALSE(sync.explains(FlowUpdate{FlowUpdateKind::kResumed, {}}));
}

}  // namespace
}  // namespace vpcguard
