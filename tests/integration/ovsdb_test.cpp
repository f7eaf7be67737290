// The JSON-RPC OVSDB client and VswitchDb against a real ovsdb-server + ovs-vswitchd sandbox.
#include <gtest/gtest.h>

#include "ovs-plugin/ovsdb_client.h"
#include "ovs-plugin/vswitch_db.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"

namespace vpcguard::test {
namespace {

using ovs::InterfaceEvent;
using ovs::InterfaceEventKind;
using ovs::Json;

class OvsdbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(auto client, ovs::connectOvsdb(sandbox_->dbTarget()));
    db_ = std::make_unique<ovs::VswitchDb>(std::move(client));
  }

  // Polls the interface monitor until `want` events arrived (or the deadline passed).
  std::vector<InterfaceEvent> awaitEvents(size_t want) {
    std::vector<InterfaceEvent> events;
    const bool got = waitFor(
        [&] {
          auto more = db_->pollInterfaceEvents(std::chrono::milliseconds(200));
          EXPECT_TRUE(more.has_value()) << more.error().message;
          if (!more) {
            return true;
          }
          events.insert(events.end(), more->begin(), more->end());
          return events.size() >= want;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(0));
    EXPECT_TRUE(got) << "got " << events.size() << " events, wanted " << want;
    return events;
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<ovs::VswitchDb> db_;
};

TEST_F(OvsdbTest, ListDbsAndTransact) {
  VGT_ASSIGN_OR_FAIL(auto dbs, db_->client().listDbs());
  EXPECT_NE(std::find(dbs.begin(), dbs.end(), "Open_vSwitch"), dbs.end());

  VGT_ASSIGN_OR_FAIL(
      Json r, db_->client().transact(
                  "Open_vSwitch",
                  Json::array({Json{{"op", "mutate"},
                                    {"table", "Open_vSwitch"},
                                    {"where", Json::array()},
                                    {"mutations", Json::array({Json::array(
                                                      {"external_ids", "insert",
                                                       Json::array({"map", Json::array({Json::array(
                                                                               {"vgt", "yes"})})})})})}},
                               Json{{"op", "select"},
                                    {"table", "Open_vSwitch"},
                                    {"where", Json::array()},
                                    {"columns", Json::array({"external_ids"})}}})));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0]["count"], 1);
  EXPECT_EQ(r[1]["rows"].size(), 1u);
  VGT_ASSIGN_OR_FAIL(auto ids, sandbox_->vsctl("get Open_vSwitch . external_ids:vgt"));
  EXPECT_EQ(ids, "yes\n");
}

TEST_F(OvsdbTest, BadTransactionsGiveClearErrors) {
  auto unknown_table = db_->client().transact(
      "Open_vSwitch", Json::array({Json{{"op", "select"},
                                        {"table", "Open_vSwitch"},
                                        {"where", Json::array()}},
                                   Json{{"op", "insert"},
                                        {"table", "NoSuchTable"},
                                        {"row", Json::object()}}}));
  ASSERT_FALSE(unknown_table.has_value());
  const std::string& msg = unknown_table.error().message;
  EXPECT_NE(msg.find("operation 1 (insert into NoSuchTable)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NoSuchTable"), std::string::npos) << msg;

  // A Port without a Bridge referencing it is fine, but one naming a missing interface uuid
  // fails only at commit: the error is the extra result past the operations.
  auto bad_ref = db_->client().transact(
      "Open_vSwitch",
      Json::array({Json{{"op", "insert"},
                        {"table", "Port"},
                        {"row", Json{{"name", "x"},
                                     {"interfaces",
                                      Json::array({"uuid", "00000000-0000-0000-0000-000000000001"})}}}}}));
  ASSERT_FALSE(bad_ref.has_value());
  EXPECT_NE(bad_ref.error().message.find("(commit)"), std::string::npos)
      << bad_ref.error().message;

  auto no_db = db_->client().transact("NoSuchDb", Json::array());
  ASSERT_FALSE(no_db.has_value());
  EXPECT_NE(no_db.error().message.find("unknown database"), std::string::npos)
      << no_db.error().message;

  // The connection stays usable after rejected transactions.
  EXPECT_TRUE(db_->client().listDbs().has_value());
}

TEST_F(OvsdbTest, EnsureBridgeIsIdempotentAndSetsPipelineSettings) {
  VGT_ASSERT_OK(db_->ensureBridge("br-int", "dummy"));
  VGT_ASSERT_OK(db_->ensureBridge("br-int", "dummy"));
  VGT_ASSIGN_OR_FAIL(auto bridges, sandbox_->vsctl("list-br"));
  EXPECT_EQ(bridges, "br-int\n");
  VGT_ASSIGN_OR_FAIL(auto settings,
                     sandbox_->vsctl("get bridge br-int fail_mode protocols datapath_type"));
  EXPECT_EQ(settings, "secure\n[OpenFlow13, OpenFlow14, OpenFlow15]\ndummy\n");

  // Drift is repaired.
  VGT_ASSERT_OK(sandbox_->vsctl("set bridge br-int fail_mode=standalone protocols=OpenFlow10"));
  VGT_ASSERT_OK(db_->ensureBridge("br-int", "dummy"));
  VGT_ASSIGN_OR_FAIL(settings, sandbox_->vsctl("get bridge br-int fail_mode protocols"));
  EXPECT_EQ(settings, "secure\n[OpenFlow13, OpenFlow14, OpenFlow15]\n");

  // Once ovs-vswitchd has applied it, its OpenFlow management socket answers.
  VGT_ASSERT_OK(db_->awaitApplied(std::chrono::seconds(10)));
  VGT_ASSERT_OK(sandbox_->ofctl("show " + sandbox_->bridgeTarget("br-int")));
}

TEST_F(OvsdbTest, FlowRestoreWaitSetAndClear) {
  VGT_ASSERT_OK(sandbox_->vsctl("set Open_vSwitch . other_config:keep=1"));
  VGT_ASSERT_OK(db_->setFlowRestoreWait(true));
  VGT_ASSERT_OK(db_->setFlowRestoreWait(true));
  VGT_ASSIGN_OR_FAIL(auto v, sandbox_->vsctl("get Open_vSwitch . other_config:flow-restore-wait"));
  EXPECT_EQ(v, "\"true\"\n");
  VGT_ASSERT_OK(db_->setFlowRestoreWait(false));
  VGT_ASSIGN_OR_FAIL(auto all, sandbox_->vsctl("get Open_vSwitch . other_config"));
  EXPECT_EQ(all, "{keep=\"1\"}\n");
}

TEST_F(OvsdbTest, MonitorReportsAttachOfportChangeAndDetach) {
  VGT_ASSERT_OK(sandbox_->addBridge("br-int"));
  VGT_ASSERT_OK(sandbox_->addDummyPort("br-int", "before", "vif-before"));
  VGT_ASSIGN_OR_FAIL(auto initial, db_->startInterfaceMonitor());
  ASSERT_EQ(initial.size(), 1u);
  EXPECT_EQ(initial[0].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ(initial[0].iface.iface_id, "vif-before");

  VGT_ASSIGN_OR_FAIL(int ofport, sandbox_->addDummyPort("br-int", "p1", "vif-1"));
  auto events = awaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ(events[0].iface.iface_id, "vif-1");
  EXPECT_EQ(events[0].iface.name, "p1");
  EXPECT_EQ(events[0].iface.ofport, ofport);

  VGT_ASSIGN_OR_FAIL(auto listed, db_->listInterfaces());
  EXPECT_EQ(listed.size(), 2u);

  VGT_ASSERT_OK(sandbox_->vsctl("set interface p1 ofport_request=77"));
  events = awaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, InterfaceEventKind::kOfportChanged);
  EXPECT_EQ(events[0].previous_ofport, ofport);
  EXPECT_EQ(events[0].iface.ofport, 77);

  VGT_ASSERT_OK(sandbox_->vsctl("del-port br-int p1"));
  events = awaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, InterfaceEventKind::kDetached);
  EXPECT_EQ(events[0].iface.iface_id, "vif-1");
  EXPECT_EQ(events[0].iface.ofport, 77);
}

TEST_F(OvsdbTest, DisconnectionIsDetectedWhenServerStops) {
  VGT_ASSERT_OK(db_->startInterfaceMonitor());
  sandbox_->stopOvsdb();
  Result<std::vector<InterfaceEvent>> r = std::vector<InterfaceEvent>{};
  EXPECT_TRUE(waitFor(
      [&] {
        r = db_->pollInterfaceEvents(std::chrono::milliseconds(200));
        return !r.has_value();
      },
      std::chrono::seconds(10), std::chrono::milliseconds(0)));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("disconnected"), std::string::npos) << r.error().message;
  EXPECT_FALSE(db_->client().connected());
  // Requests fail at once instead of hanging.
  EXPECT_FALSE(db_->client().listDbs().has_value());
}

TEST_F(OvsdbTest, AwaitAppliedTimesOutWithoutVswitchd) {
  VGT_ASSERT_OK(db_->awaitApplied(std::chrono::seconds(10)));
  // Simulate a dead ovs-vswitchd: stop it, then nothing advances cur_cfg.
  VGT_ASSERT_OK(sandbox_->appctl("exit"));
  auto r = db_->awaitApplied(std::chrono::milliseconds(300));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("did not apply"), std::string::npos) << r.error().message;
}

TEST_F(OvsdbTest, ConnectsOverTcp) {
  // Port 0: the kernel picks a free one, so parallel tests cannot collide; ss tells which.
  VGT_ASSERT_OK(sandbox_->ovsdbAppctl("ovsdb-server/add-remote ptcp:0:127.0.0.1"));
  std::string port;
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = run("ss -ltnpH | grep 'pid=" + std::to_string(sandbox_->ovsdbPid()) +
                     ",' | awk '{print $4}' | sed 's/.*://' | head -1");
        port = r.output;
        while (!port.empty() && port.back() == '\n') {
          port.pop_back();
        }
        return !port.empty();
      },
      std::chrono::seconds(10)));
  VGT_ASSIGN_OR_FAIL(auto client, ovs::connectOvsdb("tcp:127.0.0.1:" + port));
  VGT_ASSIGN_OR_FAIL(auto dbs, client->listDbs());
  EXPECT_NE(std::find(dbs.begin(), dbs.end(), "Open_vSwitch"), dbs.end());
}

TEST(OvsdbConnect, MissingSocketAndBadTargetGiveClearErrors) {
  auto r = ovs::connectOvsdb("unix:/tmp/vgt.nonexistent/db.sock");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("/tmp/vgt.nonexistent/db.sock"), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;

  auto bad = ovs::connectOvsdb("ssl:1.2.3.4:6640");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("unsupported target"), std::string::npos);
}

}  // namespace
}  // namespace vpcguard::test
