// VswitchDb logic over a fake OVSDB client: which row changes are attach/detach/ofport events,
// and which transactions ensureBridge and flow-restore-wait send.
#include "ovs-plugin/vswitch_db.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_ovsdb_client.h"

namespace vpcguard::ovs {
namespace {

Json row(const std::string& name, Json ofport, const std::string& iface_id) {
  Json ids = Json::array();
  if (!iface_id.empty()) {
    ids.push_back(Json::array({"iface-id", iface_id}));
  }
  return Json{{"name", name}, {"ofport", std::move(ofport)}, {"external_ids", Json::array({"map", ids})}};
}

Json updates(const std::string& uuid, const Json& new_row) {
  Json change = Json::object();
  if (!new_row.is_null()) {
    change["new"] = new_row;
  }
  return Json{{"Interface", {{uuid, change}}}};
}

class VswitchDbEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = std::make_unique<FakeOvsdbClient>();
    fake_ = fake.get();
    fake_->monitor_initial = Json{
        {"Interface",
         {{"u1", {{"new", row("p1", 5, "vif-1")}}},
          // The bridge's internal interface has no iface-id: not a VM.
          {"u0", {{"new", row("br0", 65534, "")}}}}}};
    db_ = std::make_unique<VswitchDb>(std::move(fake));
  }

  std::vector<InterfaceEvent> push(const std::string& uuid, const Json& new_row) {
    fake_->pending_updates.push_back(OvsdbUpdate{"vpcguard-interfaces", updates(uuid, new_row)});
    auto events = db_->pollInterfaceEvents(std::chrono::milliseconds(0));
    EXPECT_TRUE(events.has_value());
    return events ? *events : std::vector<InterfaceEvent>{};
  }

  FakeOvsdbClient* fake_ = nullptr;
  std::unique_ptr<VswitchDb> db_;
};

TEST_F(VswitchDbEventsTest, InitialRowsWithIfaceIdAndOfportAreAttached) {
  auto initial = db_->startInterfaceMonitor();
  ASSERT_TRUE(initial.has_value());
  ASSERT_EQ(initial->size(), 1u);
  EXPECT_EQ((*initial)[0].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ((*initial)[0].iface, (InterfaceInfo{"u1", "p1", "vif-1", 5}));
}

TEST_F(VswitchDbEventsTest, Transitions) {
  ASSERT_TRUE(db_->startInterfaceMonitor().has_value());

  // Added before ovs-vswitchd assigned a port: not yet attached.
  EXPECT_TRUE(push("u3", row("p3", Json::array({"set", Json::array()}), "vif-3")).empty());
  auto e = push("u3", row("p3", Json::array({"set", Json::array({7})}), "vif-3"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ(e[0].iface.ofport, 7);

  e = push("u1", row("p1", 9, "vif-1"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, InterfaceEventKind::kOfportChanged);
  EXPECT_EQ(e[0].previous_ofport, 5);
  EXPECT_EQ(e[0].iface.ofport, 9);

  // Same port, another VM: the old one leaves, the new one arrives.
  e = push("u1", row("p1", 9, "vif-9"));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, InterfaceEventKind::kDetached);
  EXPECT_EQ(e[0].iface.iface_id, "vif-1");
  EXPECT_EQ(e[1].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ(e[1].iface.iface_id, "vif-9");

  // ofport -1: ovs-vswitchd could not open the interface.
  e = push("u1", row("p1", -1, "vif-9"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, InterfaceEventKind::kDetached);

  e = push("u3", Json());  // row deleted
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, InterfaceEventKind::kDetached);
  EXPECT_EQ(e[0].iface.iface_id, "vif-3");
  EXPECT_EQ(e[0].iface.ofport, 7);

  // Updates of other monitors are not ours.
  fake_->pending_updates.push_back(OvsdbUpdate{"other", updates("u4", row("p4", 4, "vif-4"))});
  auto none = db_->pollInterfaceEvents(std::chrono::milliseconds(0));
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST_F(VswitchDbEventsTest, DisconnectionIsAnError) {
  ASSERT_TRUE(db_->startInterfaceMonitor().has_value());
  fake_->is_connected = false;
  EXPECT_FALSE(db_->pollInterfaceEvents(std::chrono::milliseconds(0)).has_value());
}

TEST(VswitchDbTransactions, EnsureBridgeCreatesWhenMissingAndUpdatesWhenPresent) {
  auto fake = std::make_unique<FakeOvsdbClient>();
  FakeOvsdbClient* f = fake.get();
  VswitchDb db(std::move(fake));

  f->transact_replies.push_back(Json::array({Json{{"rows", Json::array()}}}));
  ASSERT_TRUE(db.ensureBridge("br-int", "netdev").has_value());
  ASSERT_EQ(f->transactions.size(), 2u);
  const Json& create = f->transactions[1];
  ASSERT_EQ(create.size(), 5u);
  EXPECT_EQ(create[0]["op"], "wait");  // guards against a concurrent creator
  EXPECT_EQ(create[3]["table"], "Bridge");
  EXPECT_EQ(create[3]["row"]["fail_mode"], "secure");
  EXPECT_EQ(create[3]["row"]["datapath_type"], "netdev");
  EXPECT_EQ(create[4]["op"], "mutate");

  f->transactions.clear();
  f->transact_replies.push_back(Json::array({Json{{"rows", Json::array({Json::object()})}}}));
  ASSERT_TRUE(db.ensureBridge("br-int", "netdev").has_value());
  ASSERT_EQ(f->transactions.size(), 2u);
  EXPECT_EQ(f->transactions[1][0]["op"], "update");
}

TEST(VswitchDbTransactions, EnsureBridgeRetriesOnceWhenSomeoneElseCreatedIt) {
  auto fake = std::make_unique<FakeOvsdbClient>();
  FakeOvsdbClient* f = fake.get();
  VswitchDb db(std::move(fake));
  f->transact_replies.push_back(Json::array({Json{{"rows", Json::array()}}}));
  f->transact_replies.push_back(makeError("operation 0 (wait on Bridge): timed out"));
  f->transact_replies.push_back(Json::array({Json{{"rows", Json::array({Json::object()})}}}));
  ASSERT_TRUE(db.ensureBridge("br-int", "netdev").has_value());
  ASSERT_EQ(f->transactions.size(), 4u);
  EXPECT_EQ(f->transactions[3][0]["op"], "update");
}

TEST(VswitchDbTransactions, FlowRestoreWait) {
  auto fake = std::make_unique<FakeOvsdbClient>();
  FakeOvsdbClient* f = fake.get();
  VswitchDb db(std::move(fake));
  ASSERT_TRUE(db.setFlowRestoreWait(true).has_value());
  ASSERT_TRUE(db.setFlowRestoreWait(false).has_value());
  ASSERT_EQ(f->transactions.size(), 2u);
  EXPECT_EQ(f->transactions[0].size(), 2u);  // delete the key, then insert "true"
  EXPECT_EQ(f->transactions[1].size(), 1u);  // delete only
  EXPECT_EQ(f->transactions[0][1]["mutations"][0][1], "insert");
}

TEST(OvsdbValue, Parsing) {
  EXPECT_EQ(ovsdb_value::optionalInteger(5), std::optional<int64_t>(5));
  EXPECT_EQ(ovsdb_value::optionalInteger(Json::array({"set", Json::array()})), std::nullopt);
  EXPECT_EQ(ovsdb_value::optionalInteger(Json::array({"set", Json::array({3})})),
            std::optional<int64_t>(3));
  auto m = ovsdb_value::stringMap(Json::array({"map", Json::array({Json::array({"a", "1"})})}));
  EXPECT_EQ(m, (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_TRUE(ovsdb_value::stringMap("junk").empty());
}

}  // namespace
}  // namespace vpcguard::ovs
