// ofproto/trace through a conntrack pipeline: the harness parses multi-pass traces, and a
// ct(commit,table=N) allow rule lets new and established traffic through while other ports drop.
#include "tests/harness/trace.h"

#include <gtest/gtest.h>

#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"

namespace vpcguard::test {
namespace {

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSERT_OK(sandbox_->addBridge("br0"));
    VGT_ASSIGN_OR_FAIL(p1_, sandbox_->addDummyPort("br0", "p1", "vif-1"));
    VGT_ASSIGN_OR_FAIL(p2_, sandbox_->addDummyPort("br0", "p2", "vif-2"));
    VGT_ASSIGN_OR_FAIL(dp2_, datapathPort(*sandbox_, "br0", "p2"));
  }

  // Writes `flows` (one per line) to a file in the sandbox and installs them as one bundle.
  void installFlows(const std::string& flows) {
    const std::string file = sandbox_->dir() + "/flows.txt";
    VGT_ASSERT_OK(runChecked("printf '%s\\n' " + shellQuote(flows) + " > " + file));
    VGT_ASSERT_OK(sandbox_->ofctl("--bundle replace-flows " + sandbox_->bridgeTarget("br0") +
                                  " " + file));
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  int p1_ = 0;
  int p2_ = 0;
  int dp2_ = 0;
};

TEST_F(TraceTest, SinglePassOutputAndDrop) {
  installFlows("table=0,priority=10,in_port=p1,ip,nw_dst=10.0.0.2 actions=output:p2\n"
               "table=0,priority=0 actions=drop");
  VGT_ASSIGN_OR_FAIL(auto allowed, trace(*sandbox_, "br0", "in_port=p1,ip,nw_dst=10.0.0.2"));
  EXPECT_FALSE(allowed.dropped) << ::testing::PrintToString(allowed);
  EXPECT_EQ(allowed.output_ports, std::vector<int>{dp2_}) << ::testing::PrintToString(allowed);
  EXPECT_EQ(allowed.passes.size(), 1u);

  VGT_ASSIGN_OR_FAIL(auto denied, trace(*sandbox_, "br0", "in_port=p1,ip,nw_dst=10.0.0.3"));
  EXPECT_TRUE(denied.dropped) << ::testing::PrintToString(denied);
  EXPECT_EQ(denied.datapath_actions, "drop");
}

TEST_F(TraceTest, ConntrackCommitPipelineRecirculates) {
  installFlows(
      "table=0,priority=10,ip,ct_state=-trk actions=ct(zone=5,table=1)\n"
      "table=0,priority=0 actions=drop\n"
      "table=1,priority=20,ct_state=+trk+new,ct_zone=5,tcp,nw_dst=10.0.0.2,tp_dst=80 "
      "actions=ct(commit,zone=5,table=2)\n"
      "table=1,priority=20,ct_state=+trk+est,ct_zone=5,tcp actions=resubmit(,2)\n"
      "table=1,priority=0 actions=drop\n"
      "table=2,priority=0 actions=output:p2");

  VGT_ASSIGN_OR_FAIL(auto syn, trace(*sandbox_, "br0", "in_port=p1,tcp,nw_dst=10.0.0.2,tp_dst=80",
                                     {"trk,new", "trk,new"}));
  // ct(table=1) then ct(commit,table=2): three passes, the last one outputs.
  EXPECT_EQ(syn.passes.size(), 3u) << ::testing::PrintToString(syn);
  EXPECT_FALSE(syn.dropped) << ::testing::PrintToString(syn);
  EXPECT_EQ(syn.output_ports, std::vector<int>{dp2_}) << ::testing::PrintToString(syn);

  VGT_ASSIGN_OR_FAIL(auto other, trace(*sandbox_, "br0", "in_port=p1,tcp,nw_dst=10.0.0.2,tp_dst=22",
                                       {"trk,new"}));
  EXPECT_TRUE(other.dropped) << ::testing::PrintToString(other);
  EXPECT_EQ(other.passes.size(), 2u) << ::testing::PrintToString(other);

  VGT_ASSIGN_OR_FAIL(auto reply, trace(*sandbox_, "br0", "in_port=p1,tcp,nw_dst=10.0.0.2,tp_dst=22",
                                       {"trk,est"}));
  EXPECT_FALSE(reply.dropped) << ::testing::PrintToString(reply);
}

TEST(ParseTrace, NoDatapathActionsIsAnError) {
  EXPECT_FALSE(parseTrace("Flow: in_port=1\nbad trace\n").has_value());
}

TEST(ParseTrace, SplitsNestedActions) {
  auto t = parseTrace("Datapath actions: ct(commit,zone=5),recirc(0x2)\n"
                      "Datapath actions: 3,set(ipv4(src=1.2.3.4)),4\n");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->passes.size(), 2u);
  EXPECT_EQ(t->datapath_actions, "3,set(ipv4(src=1.2.3.4)),4");
  EXPECT_EQ(t->output_ports, (std::vector<int>{3, 4}));
  EXPECT_FALSE(t->dropped);
}

}  // namespace
}  // namespace vpcguard::test
