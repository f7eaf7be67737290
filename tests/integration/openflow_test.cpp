// The OpenFlow channel (ovs-plugin/openflow_channel.cpp over the C shim) against a real
// ovs-vswitchd in a private sandbox: bundles are atomic and attribute errors to flows, dumps
// filter by cookie and carry statistics, normalizeFlow() prints what the switch prints.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "ovs-plugin/openflow.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"

namespace vpcguard::test {
namespace {

using ovs::BundleOutcome;
using ovs::DumpFilter;
using ovs::FlowCommand;
using ovs::FlowMod;
using ovs::InstalledFlow;

FlowMod add(uint8_t table, uint16_t priority, uint64_t cookie, std::string match,
            std::string actions) {
  return FlowMod{FlowCommand::kAdd, Flow{table, priority, cookie, std::move(match),
                                         std::move(actions)}, 0};
}

class OpenFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSERT_OK(sandbox_->addBridge("br0"));
    VGT_ASSIGN_OR_FAIL(p1_, sandbox_->addDummyPort("br0", "p1", "vif-1"));
    VGT_ASSIGN_OR_FAIL(p2_, sandbox_->addDummyPort("br0", "p2", "vif-2"));
    VGT_ASSIGN_OR_FAIL(channel_, ovs::connectOpenFlow(sandbox_->bridgeTarget("br0")));
  }

  std::vector<InstalledFlow> dump(const DumpFilter& filter = {}) {
    auto flows = channel_->dumpFlows(filter);
    EXPECT_TRUE(flows.has_value()) << flows.error().message;
    return flows ? *flows : std::vector<InstalledFlow>{};
  }

  // Number of flows `ovs-ofctl dump-flows` lists: an independent witness of the table.
  size_t ofctlFlowCount() {
    auto out = sandbox_->dumpFlows("br0");
    EXPECT_TRUE(out.has_value()) << out.error().message;
    if (!out) {
      return 0;
    }
    return static_cast<size_t>(std::count(out->begin(), out->end(), '\n'));
  }

  BundleOutcome apply(const std::vector<FlowMod>& mods) {
    auto outcome = channel_->applyBundle(mods);
    EXPECT_TRUE(outcome.has_value()) << outcome.error().message;
    return outcome ? *outcome : BundleOutcome{};
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<ovs::OpenFlowChannel> channel_;
  int p1_ = 0;
  int p2_ = 0;
};

std::string errorsText(const BundleOutcome& o) {
  std::string s;
  for (const auto& e : o.errors) {
    s += "[" + (e.index ? std::to_string(*e.index) : std::string("?")) + "] " + e.message + "\n";
  }
  return s;
}

TEST_F(OpenFlowTest, BundleInstallsTenThousandFlows) {
  std::vector<FlowMod> mods;
  for (int i = 0; i < 10000; ++i) {
    mods.push_back(add(0, 100, 0x1,
                       "ip,nw_src=10." + std::to_string(i / 256) + "." + std::to_string(i % 256) +
                           ".1",
                       "drop"));
  }
  const auto outcome = apply(mods);
  ASSERT_TRUE(outcome.committed) << errorsText(outcome);
  EXPECT_TRUE(outcome.errors.empty());
  // The dump spans many reply messages (formatted one by one as they arrive): every flow comes
  // back once.
  const auto dumped = dump();
  EXPECT_EQ(dumped.size(), 10000u);
  std::set<std::string> matches;
  for (const auto& f : dumped) {
    matches.insert(f.flow.match);
  }
  EXPECT_EQ(matches.size(), 10000u);
  EXPECT_EQ(matches.count("ip,nw_src=10.0.0.1"), 1u);
  EXPECT_EQ(matches.count("ip,nw_src=10.39.15.1"), 1u);
  EXPECT_EQ(ofctlFlowCount(), 10000u);
}

TEST_F(OpenFlowTest, TenThousandFlowsWithOneBadInstallNothing) {
  std::vector<FlowMod> mods;
  for (int i = 0; i < 10000; ++i) {
    mods.push_back(add(1, 100, 0x1, "ip,nw_dst=10.9." + std::to_string(i / 256) + "." +
                                        std::to_string(i % 256), "drop"));
  }
  mods[7777] = add(1, 100, 0x1, "ip", "goto_table:0");
  const auto outcome = apply(mods);
  EXPECT_FALSE(outcome.committed);
  ASSERT_EQ(outcome.errors.size(), 1u) << errorsText(outcome);
  EXPECT_EQ(outcome.errors[0].index, std::optional<size_t>(7777));
  EXPECT_EQ(dump().size(), 0u);
}

TEST_F(OpenFlowTest, RejectedFlowLeavesTableUnchangedAndIsNamed) {
  ASSERT_TRUE(apply({add(0, 10, 0x1, "in_port=1", "goto_table:5"),
                     add(5, 10, 0x1, "ip", "output:2")})
                  .committed);
  VGT_ASSIGN_OR_FAIL(const std::string before, sandbox_->dumpFlows("br0"));

  struct Case {
    std::string name;
    FlowMod bad;
  };
  const std::vector<Case> cases = {
      // A pipeline may only go forward: the switch rejects a goto to a lower table.
      {"goto lower table", add(5, 20, 0x2, "tcp", "goto_table:1")},
      // The action parses but refers to a group the switch does not have.
      {"missing group", add(0, 30, 0x2, "udp", "group:99")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto outcome = apply({add(0, 50, 0x2, "icmp", "drop"),
                                add(0, 51, 0x2, "arp", "drop"), c.bad,
                                add(0, 52, 0x2, "ipv6", "drop")});
    EXPECT_FALSE(outcome.committed);
    ASSERT_EQ(outcome.errors.size(), 1u) << errorsText(outcome);
    EXPECT_EQ(outcome.errors[0].index, std::optional<size_t>(2)) << errorsText(outcome);
    EXPECT_FALSE(outcome.errors[0].message.empty());
    VGT_ASSIGN_OR_FAIL(const std::string after, sandbox_->dumpFlows("br0"));
    EXPECT_EQ(after, before);
  }
}

// Flow mods are parsed one at a time while the bundle is streamed to the switch: a bad one after
// good ones already sent discards the bundle, and the connection is still usable afterwards.
TEST_F(OpenFlowTest, UnparsableFlowIsReportedLocallyAndNothingChanges) {
  VGT_ASSIGN_OR_FAIL(const std::string before, sandbox_->dumpFlows("br0"));
  const auto outcome = apply({add(0, 50, 0x2, "icmp", "drop"),
                              add(0, 51, 0x2, "ip,no_such_field=1", "drop"),
                              add(0, 52, 0x2, "ip", "frobnicate")});
  EXPECT_FALSE(outcome.committed);
  ASSERT_EQ(outcome.errors.size(), 2u) << errorsText(outcome);
  EXPECT_EQ(outcome.errors[0].index, std::optional<size_t>(1));
  EXPECT_EQ(outcome.errors[1].index, std::optional<size_t>(2));
  EXPECT_NE(outcome.errors[1].message.find("frobnicate"), std::string::npos) << errorsText(outcome);
  VGT_ASSIGN_OR_FAIL(const std::string after, sandbox_->dumpFlows("br0"));
  EXPECT_EQ(after, before);

  // The next bundle commits alone: nothing of the discarded one (the icmp flow) comes with it.
  ASSERT_TRUE(apply({add(0, 53, 0x2, "arp", "drop")}).committed);
  const auto flows = dump();
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].flow.match, "arp");
}

TEST_F(OpenFlowTest, DumpFiltersByCookieAndStatisticsMove) {
  const std::string p1 = std::to_string(p1_);
  const std::string p2 = std::to_string(p2_);
  ASSERT_TRUE(apply({add(0, 10, 0x100, "in_port=" + p1 + ",ip", "output:" + p2),
                     add(0, 10, 0x101, "in_port=" + p2 + ",ip", "output:" + p1),
                     add(0, 10, 0x200, "arp", "drop"), add(3, 10, 0x300, "ip", "drop")})
                  .committed);
  ASSERT_TRUE(channel_->barrier().has_value());

  auto mine = dump(DumpFilter{std::nullopt, 0x100, 0xff00});
  ASSERT_EQ(mine.size(), 2u);
  for (const auto& f : mine) {
    EXPECT_EQ(f.flow.cookie & 0xff00, 0x100u);
  }
  EXPECT_EQ(dump(DumpFilter{std::nullopt, 0x200, ~uint64_t{0}}).size(), 1u);
  EXPECT_EQ(dump(DumpFilter{uint8_t{3}, 0, 0}).size(), 1u);
  EXPECT_EQ(dump().size(), 4u);

  VGT_ASSERT_OK(sandbox_->appctl(
      "netdev-dummy/receive p1 "
      "'in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
      "ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1000,dst=2000)'"));
  // Flow statistics reach OpenFlow when the revalidators next run: await them.
  uint64_t packets = 0;
  uint64_t bytes = 0;
  const bool moved = waitFor(
      [&] {
        auto flows = channel_->dumpFlows(DumpFilter{std::nullopt, 0x100, ~uint64_t{0}});
        if (!flows || flows->size() != 1) {
          return false;
        }
        packets = (*flows)[0].n_packets;
        bytes = (*flows)[0].n_bytes;
        return packets > 0;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(100));
  ASSERT_TRUE(moved);
  EXPECT_EQ(packets, 1u);
  EXPECT_GT(bytes, 0u);
  auto other = dump(DumpFilter{std::nullopt, 0x101, ~uint64_t{0}});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].n_packets, 0u);
}

TEST_F(OpenFlowTest, DeleteByCookieMaskRemovesOnlyThoseFlows) {
  ASSERT_TRUE(apply({add(0, 10, 0x100, "ip", "drop"), add(0, 11, 0x101, "arp", "drop"),
                     add(0, 12, 0x200, "ipv6", "drop")})
                  .committed);
  FlowMod del{FlowCommand::kDelete, Flow{0, 0, 0x100, "", ""}, 0xff00};
  del.flow.table = 0;
  ASSERT_TRUE(apply({del}).committed);
  auto left = dump();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].flow.cookie, 0x200u);
}

TEST_F(OpenFlowTest, ModifyAndDeleteStrict) {
  ASSERT_TRUE(apply({add(0, 10, 0x1, "ip", "drop"), add(0, 20, 0x1, "ip", "drop")}).committed);
  ASSERT_TRUE(apply({FlowMod{FlowCommand::kModifyStrict, Flow{0, 10, 0x2, "ip", "output:1"}, 0},
                     FlowMod{FlowCommand::kDeleteStrict, Flow{0, 20, 0, "ip", ""}, 0}})
                  .committed);
  auto left = dump();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].flow.priority, 10);
  EXPECT_EQ(left[0].flow.actions, "output:1");
}

TEST_F(OpenFlowTest, BarrierAnswers) {
  ASSERT_TRUE(apply({add(0, 10, 0x1, "ip", "drop")}).committed);
  auto r = channel_->barrier();
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

TEST_F(OpenFlowTest, NormalizedTextEqualsDumpedText) {
  const std::vector<Flow> flows = {
      {0, 100, 0x10, "ip,nw_src=10.0.0.0/255.255.255.0,nw_dst=192.168.1.0/24", "goto_table:10"},
      {10, 200, 0x11, "tcp,tp_dst=0x50/0xfff0", "conjunction(7,1/2)"},
      {10, 200, 0x17, "ip,nw_dst=10.1.0.0/16", "conjunction(7,2/2)"},
      {10, 190, 0x12, "conj_id=7,ip", "ct(commit,zone=5,table=20,exec(load:0x1->NXM_NX_CT_MARK[]))"},
      {20, 50, 0x13, "ct_state=+trk+est-rel,ct_zone=5,ip", "output:1"},
      {20, 40, 0x14, "ipv6,ipv6_src=fd00::/64,icmp6,icmp_type=128", "ct(zone=6,table=21,nat)"},
      {21, 30, 0x15, "reg0=0x5/0xff,metadata=0x10,ipv6,ipv6_dst=fd00:1::1", "load:0x1->NXM_NX_REG1[0..7],resubmit(,22)"},
      {22, 0, 0x0, "", "drop"},
      {22, 10, 0x16, "dl_src=02:00:00:00:00:00/ff:ff:ff:00:00:00,arp,arp_tpa=10.0.0.1", "normal"},
  };
  std::vector<FlowMod> mods;
  for (const auto& f : flows) {
    mods.push_back(FlowMod{FlowCommand::kAdd, f, 0});
  }
  const auto outcome = apply(mods);
  ASSERT_TRUE(outcome.committed) << errorsText(outcome);

  std::map<std::tuple<uint8_t, uint16_t, uint64_t>, Flow> installed;
  for (const auto& f : dump()) {
    installed[{f.flow.table, f.flow.priority, f.flow.cookie}] = f.flow;
  }
  for (const auto& f : flows) {
    SCOPED_TRACE(toOfctlText(f));
    VGT_ASSIGN_OR_FAIL(const Flow normalized, ovs::normalizeFlow(f));
    auto it = installed.find({f.table, f.priority, f.cookie});
    ASSERT_NE(it, installed.end());
    EXPECT_EQ(normalized, it->second);
    EXPECT_EQ(normalized.match, it->second.match);
    EXPECT_EQ(normalized.actions, it->second.actions);
  }
}

TEST_F(OpenFlowTest, NormalizeRejectsBadText) {
  auto r = ovs::normalizeFlow(Flow{0, 1, 0, "ip,nw_src=10.0.0.1/40", "drop"});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("10.0.0.1/40"), std::string::npos) << r.error().message;
}

TEST_F(OpenFlowTest, ConntrackZoneFlush) {
  auto r = channel_->flushConntrackZone(5);
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

TEST_F(OpenFlowTest, TargetIsReported) {
  EXPECT_EQ(channel_->target(), sandbox_->bridgeTarget("br0"));
}

TEST_F(OpenFlowTest, KeepAliveDrainsAsyncMessagesAndNoticesARestart) {
  // Port changes make the switch send port-status messages to our connection.
  VGT_ASSERT_OK(sandbox_->addDummyPort("br0", "p3", "vif-3"));
  VGT_ASSERT_OK(sandbox_->vsctl("del-port br0 p3"));
  VGT_ASSERT_OK(channel_->keepAlive());
  VGT_ASSERT_OK(channel_->barrier());

  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  Result<void> alive;
  EXPECT_TRUE(waitFor(
      [&] {
        alive = channel_->keepAlive();
        return !alive.has_value();
      },
      std::chrono::seconds(10)));
  ASSERT_FALSE(alive.has_value());
  EXPECT_NE(alive.error().message.find("connection lost"), std::string::npos)
      << alive.error().message;

  // A new connection to the restarted switch works (flows were not persisted: table empty).
  VGT_ASSERT_OK(sandbox_->addBridge("br0"));
  VGT_ASSIGN_OR_FAIL(channel_, ovs::connectOpenFlow(sandbox_->bridgeTarget("br0")));
  VGT_ASSERT_OK(channel_->barrier());
}

// The flow monitor reports other connections' changes in the same canonical text as a dump, so
// the daemon can tell its own changes from someone else's by comparing text.
TEST_F(OpenFlowTest, FlowMonitorReportsChangesInDumpText) {
  VGT_ASSIGN_OR_FAIL(auto monitor, ovs::startFlowMonitor(sandbox_->bridgeTarget("br0")));
  const Flow f{10, 200, 0x11, "tcp,nw_dst=10.1.0.0/16,tp_dst=0x50/0xfff0", "ct(commit,zone=5,table=20)"};
  ASSERT_TRUE(apply({FlowMod{FlowCommand::kAdd, f, 0}}).committed);
  VGT_ASSERT_OK(channel_->barrier());
  VGT_ASSERT_OK(sandbox_->ofctl("mod-flows --strict " + sandbox_->bridgeTarget("br0") +
                                " 'table=10,priority=200,tcp,nw_dst=10.1.0.0/16,tp_dst=0x50/0xfff0,actions=drop'"));
  VGT_ASSERT_OK(sandbox_->ofctl("del-flows " + sandbox_->bridgeTarget("br0") + " table=10"));

  std::vector<ovs::FlowUpdate> updates;
  ASSERT_TRUE(waitFor(
      [&] {
        auto more = monitor->poll(100);
        EXPECT_TRUE(more.has_value()) << more.error().message;
        if (more) {
          updates.insert(updates.end(), more->begin(), more->end());
        }
        return updates.size() >= 3;
      },
      std::chrono::seconds(5)))
      << updates.size() << " updates";
  ASSERT_EQ(updates.size(), 3U);
  VGT_ASSIGN_OR_FAIL(const Flow normalized, ovs::normalizeFlow(f));
  EXPECT_EQ(updates[0].kind, ovs::FlowUpdateKind::kAdded);
  EXPECT_EQ(updates[0].flow, normalized);
  EXPECT_EQ(updates[1].kind, ovs::FlowUpdateKind::kModified);
  EXPECT_EQ(updates[1].flow.match, normalized.match);
  EXPECT_EQ(updates[1].flow.actions, "drop");
  EXPECT_EQ(updates[2].kind, ovs::FlowUpdateKind::kRemoved);
  EXPECT_EQ(updates[2].flow.cookie, 0x11U);
}

// A burst bigger than the switch buffers for a slow reader: every change is reported, or the
// monitor says it paused (the daemon then compares the whole table).
TEST_F(OpenFlowTest, FlowMonitorBurstIsReportedOrPaused) {
  VGT_ASSIGN_OR_FAIL(auto monitor, ovs::startFlowMonitor(sandbox_->bridgeTarget("br0")));
  std::vector<FlowMod> mods;
  for (int i = 0; i < 20000; ++i) {
    mods.push_back(add(1, 100, 0x7, "ip,nw_dst=10." + std::to_string(i / 250) + "." +
                                        std::to_string(i % 250) + ".1", "drop"));
  }
  ASSERT_TRUE(apply(mods).committed);
  size_t added = 0;
  bool paused = false;
  ASSERT_TRUE(waitFor(
      [&] {
        auto more = monitor->poll(4096);
        EXPECT_TRUE(more.has_value()) << more.error().message;
        for (const auto& u : more ? *more : std::vector<ovs::FlowUpdate>{}) {
          added += u.kind == ovs::FlowUpdateKind::kAdded ? 1 : 0;
          paused = paused || u.kind == ovs::FlowUpdateKind::kPaused;
        }
        return added == mods.size() || paused;
      },
      std::chrono::seconds(30)))
      << added << " of " << mods.size();
}

TEST_F(OpenFlowTest, FlowMonitorNoticesARestart) {
  VGT_ASSIGN_OR_FAIL(auto monitor, ovs::startFlowMonitor(sandbox_->bridgeTarget("br0")));
  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  Result<std::vector<ovs::FlowUpdate>> r;
  EXPECT_TRUE(waitFor(
      [&] {
        r = monitor->poll(100);
        return !r.has_value();
      },
      std::chrono::seconds(10)));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("flow monitor"), std::string::npos) << r.error().message;
}

TEST(OpenFlowConnect, MissingSocketGivesClearError) {
  const std::string target = "unix:/tmp/vgt.nonexistent/br0.mgmt";
  auto r = ovs::connectOpenFlow(target, std::chrono::milliseconds(500));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find(target), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace vpcguard::test
