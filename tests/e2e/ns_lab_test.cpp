// Real packets between two "VMs" (network namespaces) through a userspace-datapath bridge:
// forwarding and dropping flows take effect, and a ct(commit) allow pipeline passes TCP while
// other ports stay closed.
#include "tests/harness/ns_lab.h"

#include <gtest/gtest.h>

#include "ovs-plugin/openflow.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"

namespace vpcguard::test {
namespace {

class NsLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NsLab::unavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(lab_, NsLab::create(*sandbox_, "br-int"));
    VGT_ASSERT_OK(lab_->addVm({"a", "vif-a", "02:00:00:00:01:0a", "10.0.1.10/24", "10.0.1.1",
                               "fd00:1::10/64"}));
    VGT_ASSERT_OK(lab_->addVm({"b", "vif-b", "02:00:00:00:01:0b", "10.0.1.11/24", "10.0.1.1",
                               "fd00:1::11/64"}));
  }

  void TearDown() override {
    // The lab's namespaces go before the sandbox that hosts their peers.
    lab_.reset();
    sandbox_.reset();
  }

  void replaceFlows(const std::string& flows) {
    const std::string file = sandbox_->dir() + "/flows.txt";
    VGT_ASSERT_OK(runChecked("printf '%s\\n' " + shellQuote(flows) + " > " + file));
    VGT_ASSERT_OK(sandbox_->ofctl("--bundle replace-flows " + sandbox_->bridgeTarget("br-int") +
                                  " " + file));
  }

  // Starts `nc -l PORT` in VM b writing what it receives to a file; returns the file once the
  // listener is up.
  std::string listen(int port) {
    const std::string out = sandbox_->dir() + "/nc-" + std::to_string(port) + ".out";
    auto r = lab_->exec("b", "timeout 30 nc -l " + std::to_string(port) + " > " + out +
                                 " 2>&1 < /dev/null &");
    EXPECT_TRUE(r.ok()) << r.output;
    const bool up = waitFor(
        [&] {
          return lab_->exec("b", "ss -ltnH 'sport = :" + std::to_string(port) + "' | grep -q .")
              .ok();
        },
        std::chrono::seconds(10));
    EXPECT_TRUE(up) << "nc did not start listening on " << port;
    return out;
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<NsLab> lab_;
};

TEST_F(NsLabTest, PingFollowsForwardingAndDropFlows) {
  replaceFlows("priority=0,actions=normal");
  auto ok = lab_->exec("a", "ping -c 3 -i 0.2 -W 2 10.0.1.11");
  EXPECT_TRUE(ok.ok()) << ok.output;
  auto ok6 = lab_->exec("a", "ping -6 -c 3 -i 0.2 -W 2 fd00:1::11");
  EXPECT_TRUE(ok6.ok()) << ok6.output;

  replaceFlows("priority=0,actions=drop");
  auto blocked = lab_->exec("a", "ping -c 2 -i 0.2 -W 1 10.0.1.11");
  EXPECT_FALSE(blocked.ok()) << blocked.output;
}

TEST_F(NsLabTest, TcpThroughConntrackAllowPipeline) {
  replaceFlows(
      "table=0,priority=100,arp actions=normal\n"
      "table=0,priority=10,ip actions=ct(zone=1,table=1)\n"
      "table=0,priority=0 actions=drop\n"
      "table=1,priority=20,ct_state=+trk+new,tcp,nw_dst=10.0.1.11,tp_dst=8080 "
      "actions=ct(commit,zone=1),normal\n"
      "table=1,priority=20,ct_state=+trk+est actions=normal\n"
      "table=1,priority=0 actions=drop");

  const std::string out = listen(8080);
  auto sent = lab_->exec("a", "echo hello-vpc | timeout 10 nc -N -w 3 10.0.1.11 8080");
  EXPECT_TRUE(sent.ok()) << sent.output;
  std::string received;
  EXPECT_TRUE(waitFor(
      [&] {
        auto r = run("cat " + out);
        received = r.output;
        return received.find("hello-vpc") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << "received: " << received;
  VGT_ASSIGN_OR_FAIL(const std::string conntrack, sandbox_->appctl("dpctl/dump-conntrack"));
  EXPECT_NE(conntrack.find("dport=8080"), std::string::npos) << conntrack;

  // Flushing the zone over our own OpenFlow connection forgets the connection.
  VGT_ASSIGN_OR_FAIL(auto channel, ovs::connectOpenFlow(sandbox_->bridgeTarget("br-int")));
  VGT_ASSERT_OK(channel->flushConntrackZone(1));
  VGT_ASSIGN_OR_FAIL(const std::string flushed, sandbox_->appctl("dpctl/dump-conntrack"));
  EXPECT_EQ(flushed.find("dport=8080"), std::string::npos) << flushed;

  // A listener on a port the pipeline does not allow is unreachable.
  (void)listen(9090);
  auto denied = lab_->exec("a", "timeout 10 nc -z -w 2 10.0.1.11 9090");
  EXPECT_FALSE(denied.ok()) << denied.output;
}

}  // namespace
}  // namespace vpcguard::test
