// VswitchDb logic over a fake OVSDB client: which row changes are attach/detach/ofport events,
// and which transactions ensureBridge, flow-restore-wait, the mirror tunnel and port mirrors
// send.
#include "ovs-plugin/vswitch_db.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_ovsdb_client.h"
#include "translator/pipeline.h"

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

Json mapOf(std::initializer_list<std::pair<const char*, const char*>> pairs) {
  Json out = Json::array();
  for (const auto& [k, v] : pairs) {
    out.push_back(Json::array({k, v}));
  }
  return Json::array({"map", out});
}

TEST(OvsdbValue, MirrorTunnelIsReportedUnderItsKey) {
  struct Case {
    const char* what;
    Json external_ids;
    std::string want_iface_id;
  };
  const Case cases[] = {
      {"the mirror tunnel", mapOf({{"vpcguard-role", "mirror-tunnel"}}),
       pipeline::kMirrorTunnelKey},
      {"a VM interface", mapOf({{"iface-id", "vif-1"}}), "vif-1"},
      // An iface-id wins: such an interface is a VM's, whatever else it says.
      {"both", mapOf({{"iface-id", "vif-1"}, {"vpcguard-role", "mirror-tunnel"}}), "vif-1"},
      {"another role", mapOf({{"vpcguard-role", "something-else"}}), ""},
      {"no external_ids", mapOf({}), ""},
  };
  for (const auto& c : cases) {
    const Json r{{"name", "vg-mirror"}, {"ofport", 9}, {"external_ids", c.external_ids}};
    const InterfaceInfo info = ovsdb_value::interfaceFromRow("u9", r);
    EXPECT_EQ(info.iface_id, c.want_iface_id) << c.what;
    EXPECT_EQ(info.attached(), !c.want_iface_id.empty()) << c.what;
  }
}

TEST(OvsdbValue, UuidSet) {
  EXPECT_EQ(ovsdb_value::uuidSet(Json::array({"uuid", "a"})), (std::set<std::string>{"a"}));
  EXPECT_EQ(ovsdb_value::uuidSet(Json::array(
                {"set", Json::array({Json::array({"uuid", "a"}), Json::array({"uuid", "b"})})})),
            (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(ovsdb_value::uuidSet(Json::array({"set", Json::array()})).empty());
  EXPECT_TRUE(ovsdb_value::uuidSet("junk").empty());
}

TEST(VswitchDbMonitor, MirrorTunnelAttachesLikeAVmInterface) {
  auto fake = std::make_unique<FakeOvsdbClient>();
  fake->monitor_initial =
      Json{{"Interface",
            {{"t1",
              {{"new", Json{{"name", "vg-mirror"},
                            {"ofport", 12},
                            {"external_ids", mapOf({{"vpcguard-role", "mirror-tunnel"}})}}}}}}}};
  VswitchDb db(std::move(fake));
  auto initial = db.startInterfaceMonitor();
  ASSERT_TRUE(initial.has_value());
  ASSERT_EQ(initial->size(), 1u);
  EXPECT_EQ((*initial)[0].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ((*initial)[0].iface,
            (InterfaceInfo{"t1", "vg-mirror", pipeline::kMirrorTunnelKey, 12}));
}

// Replies to setMirrorTunnel's read: bridges (name, port uuids), the vg-mirror Port and
// Interface rows (null = none).
Json tunnelRead(const Json& bridges, const Json& port, const Json& iface) {
  Json bridge_rows = Json::array();
  for (const auto& [name, ports] : bridges.items()) {
    Json set = Json::array();
    for (const auto& p : ports) {
      set.push_back(Json::array({"uuid", p}));
    }
    bridge_rows.push_back(Json{{"_uuid", Json::array({"uuid", "br-" + name})},
                               {"name", name},
                               {"ports", Json::array({"set", set})}});
  }
  return Json::array({Json{{"rows", bridge_rows}},
                      Json{{"rows", port.is_null() ? Json::array() : Json::array({port})}},
                      Json{{"rows", iface.is_null() ? Json::array() : Json::array({iface})}}});
}

Json tunnelIface(const std::string& type, const Json& options) {
  return Json{{"_uuid", Json::array({"uuid", "if-t"})},
              {"type", type},
              {"options", options},
              {"external_ids", mapOf({{"vpcguard-role", "mirror-tunnel"}})}};
}

const Json kTunnelPort{{"_uuid", Json::array({"uuid", "p-t"})},
                       {"interfaces", Json::array({"uuid", "if-t"})}};

TEST(VswitchDbTransactions, MirrorTunnel) {
  auto fake = std::make_unique<FakeOvsdbClient>();
  FakeOvsdbClient* f = fake.get();
  VswitchDb db(std::move(fake));
  const Json right = tunnelIface("vxlan", mapOf({{"key", "flow"}, {"remote_ip", "flow"}}));

  // Missing: Interface, Port and the bridge's reference in one transaction.
  f->transact_replies.push_back(tunnelRead(Json{{"br-int", {"p0"}}}, Json(), Json()));
  f->transact_replies.push_back(Json::array({Json::object(), Json::object(), Json{{"count", 1}}}));
  ASSERT_TRUE(db.setMirrorTunnel("br-int", true).has_value());
  ASSERT_EQ(f->transactions.size(), 2u);
  const Json& create = f->transactions[1];
  ASSERT_EQ(create.size(), 3u);
  EXPECT_EQ(create[0]["table"], "Interface");
  EXPECT_EQ(create[0]["row"]["name"], pipeline::kMirrorTunnelPort);
  EXPECT_EQ(create[0]["row"]["type"], "vxlan");
  EXPECT_EQ(ovsdb_value::stringMap(create[0]["row"]["options"]),
            (std::map<std::string, std::string>{{"key", "flow"}, {"remote_ip", "flow"}}));
  EXPECT_EQ(ovsdb_value::stringMap(create[0]["row"]["external_ids"]),
            (std::map<std::string, std::string>{{"vpcguard-role", "mirror-tunnel"}}));
  EXPECT_EQ(create[1]["table"], "Port");
  EXPECT_EQ(create[2]["op"], "mutate");
  EXPECT_EQ(create[2]["where"][0][2], Json::array({"uuid", "br-br-int"}));

  // Present and right: nothing written.
  f->transactions.clear();
  f->transact_replies.push_back(tunnelRead(Json{{"br-int", {"p0", "p-t"}}}, kTunnelPort, right));
  ASSERT_TRUE(db.setMirrorTunnel("br-int", true).has_value());
  EXPECT_EQ(f->transactions.size(), 1u);

  // Present with drifted settings: the Interface is updated in place.
  f->transactions.clear();
  f->transact_replies.push_back(tunnelRead(Json{{"br-int", {"p0", "p-t"}}}, kTunnelPort,
                                           tunnelIface("geneve", mapOf({{"remote_ip", "flow"}}))));
  ASSERT_TRUE(db.setMirrorTunnel("br-int", true).has_value());
  ASSERT_EQ(f->transactions.size(), 2u);
  ASSERT_EQ(f->transactions[1].size(), 1u);
  EXPECT_EQ(f->transactions[1][0]["op"], "update");
  EXPECT_EQ(f->transactions[1][0]["table"], "Interface");
  EXPECT_EQ(f->transactions[1][0]["row"]["type"], "vxlan");

  // Removal: only the bridge's reference goes (the rows are garbage-collected).
  f->transactions.clear();
  f->transact_replies.push_back(tunnelRead(Json{{"br-int", {"p0", "p-t"}}}, kTunnelPort, right));
  ASSERT_TRUE(db.setMirrorTunnel("br-int", false).has_value());
  ASSERT_EQ(f->transactions.size(), 2u);
  EXPECT_EQ(f->transactions[1][0]["mutations"][0],
            Json::array({"ports", "delete",
                         Json::array({"set", Json::array({Json::array({"uuid", "p-t"})})})}));

  // Removal when it is not there: nothing written.
  f->transactions.clear();
  f->transact_replies.push_back(tunnelRead(Json{{"br-int", {"p0"}}}, Json(), Json()));
  ASSERT_TRUE(db.setMirrorTunnel("br-int", false).has_value());
  EXPECT_EQ(f->transactions.size(), 1u);

  // The name is taken on another bridge: neither bridge is touched.
  f->transactions.clear();
  f->transact_replies.push_back(
      tunnelRead(Json{{"br-int", {"p0"}}, {"br-ex", {"p-t"}}}, kTunnelPort, right));
  auto taken = db.setMirrorTunnel("br-int", true);
  ASSERT_FALSE(taken.has_value());
  EXPECT_NE(taken.error().message.find("bridge br-ex"), std::string::npos) << taken.error().message;
  f->transact_replies.push_back(
      tunnelRead(Json{{"br-int", {"p0"}}, {"br-ex", {"p-t"}}}, kTunnelPort, right));
  ASSERT_TRUE(db.setMirrorTunnel("br-int", false).has_value());
  EXPECT_EQ(f->transactions.size(), 2u);  // two reads, no write

  f->transact_replies.push_back(tunnelRead(Json{{"br-ex", Json::array()}}, Json(), Json()));
  auto no_bridge = db.setMirrorTunnel("br-int", true);
  ASSERT_FALSE(no_bridge.has_value());
  EXPECT_NE(no_bridge.error().message.find("no such bridge"), std::string::npos);
}

// Replies to setPortMirrors' read. Bridge br-int: p1 (VM vif-1), p2 (VM vif-2), mon0 (no
// iface-id), br-int (the bridge's internal port), vg-mirror (the mirror tunnel, marked with
// vpcguard-role); other-port is on another bridge. `mirrors` are Mirror rows on br-int.
Json portMirrorRead(const Json& mirrors) {
  Json mirror_refs = Json::array();
  for (const auto& m : mirrors) {
    mirror_refs.push_back(m["_uuid"]);
  }
  auto port = [](const std::string& name, const std::string& iface) {
    return Json{{"_uuid", Json::array({"uuid", "port-" + name})},
                {"name", name},
                {"interfaces", Json::array({"uuid", iface})}};
  };
  auto iface = [](const std::string& uuid, const std::string& name, const std::string& id) {
    return Json{{"_uuid", Json::array({"uuid", uuid})},
                {"name", name},
                {"external_ids", id.empty() ? mapOf({}) : mapOf({{"iface-id", id.c_str()}})}};
  };
  return Json::array(
      {Json{{"rows",
             Json::array({Json{
                 {"_uuid", Json::array({"uuid", "br"})},
                 {"ports",
                  Json::array({"set", Json::array({Json::array({"uuid", "port-p1"}),
                                                   Json::array({"uuid", "port-p2"}),
                                                   Json::array({"uuid", "port-mon0"}),
                                                   Json::array({"uuid", "port-br-int"}),
                                                   Json::array({"uuid", "port-vg-mirror"})})})},
                 {"mirrors", Json::array({"set", mirror_refs})}}})}},
       Json{{"rows", Json::array({port("p1", "i1"), port("p2", "i2"), port("mon0", "i3"),
                                  port("other-port", "i4"), port("br-int", "i5"),
                                  port("vg-mirror", "i6")})}},
       Json{{"rows",
             Json::array({iface("i1", "p1", "vif-1"), iface("i2", "p2", "vif-2"),
                          iface("i3", "mon0", ""), iface("i4", "other-port", "vif-4"),
                          iface("i5", "br-int", ""),
                          Json{{"_uuid", Json::array({"uuid", "i6"})},
                               {"name", "vg-mirror"},
                               {"external_ids", mapOf({{"vpcguard-role", "mirror-tunnel"}})}}})}},
       Json{{"rows", mirrors}}});
}

Json mirrorRow(const std::string& uuid, const std::string& name, const std::string& src,
               const std::string& out) {
  const Json src_set = Json::array({"set", Json::array({Json::array({"uuid", src})})});
  return Json{{"_uuid", Json::array({"uuid", uuid})},
              {"name", name},
              {"select_all", false},
              {"select_src_port", src_set},
              {"select_dst_port", src_set},
              {"select_vlan", Json::array({"set", Json::array()})},
              {"output_port", Json::array({"uuid", out})},
              {"output_vlan", Json::array({"set", Json::array()})},
              {"snaplen", Json::array({"set", Json::array()})}};
}

TEST(VswitchDbTransactions, PortMirrors) {
  auto fake = std::make_unique<FakeOvsdbClient>();
  FakeOvsdbClient* f = fake.get();
  VswitchDb db(std::move(fake));

  // A good one next to every kind of bad one; a foreign Mirror row stays.
  const Json foreign = mirrorRow("m-foreign", "tap-by-hand", "port-p2", "port-mon0");
  f->transact_replies.push_back(portMirrorRead(Json::array({foreign})));
  auto problems = db.setPortMirrors("br-int", {{"pm-a", "vif-1", "mon0"},
                                               {"pm-a", "vif-2", "mon0"},
                                               {"pm-x", "vif-1", "mon9"},
                                               {"pm-vm", "vif-1", "p2"},
                                               {"pm-src", "vif-4", "mon0"},
                                               {"", "vif-1", "mon0"}});
  ASSERT_TRUE(problems.has_value()) << problems.error().message;
  EXPECT_EQ(*problems,
            (std::vector<std::string>{
                "port mirror pm-a: listed more than once (the first one is applied)",
                "port mirror pm-x: output port \"mon9\" is not on bridge br-int",
                std::string("port mirror pm-vm: output port \"p2\" is a VM port (interface p2 ") +
                    "has iface-id vif-2): OVS would stop delivering its own traffic",
                std::string("port mirror pm-src: source interface \"vif-4\" ") +
                    "(external_ids:iface-id) is not on bridge br-int",
                "port mirror \"\": a name is required"}));
  ASSERT_EQ(f->transactions.size(), 2u);
  const Json& write = f->transactions[1];
  ASSERT_EQ(write.size(), 3u);  // wait, insert, mutate
  EXPECT_EQ(write[0]["op"], "wait");
  EXPECT_EQ(write[1]["op"], "insert");
  EXPECT_EQ(write[1]["row"]["name"], "vpcguard:pm-a");
  EXPECT_EQ(ovsdb_value::uuidSet(write[1]["row"]["select_src_port"]),
            (std::set<std::string>{"port-p1"}));
  EXPECT_EQ(ovsdb_value::uuidSet(write[1]["row"]["select_dst_port"]),
            (std::set<std::string>{"port-p1"}));
  EXPECT_EQ(ovsdb_value::uuidSet(write[1]["row"]["output_port"]),
            (std::set<std::string>{"port-mon0"}));
  EXPECT_EQ(write[2]["mutations"].size(), 1u);  // insert only: the foreign row is not dropped
  EXPECT_EQ(write[2]["mutations"][0][1], "insert");

  // Neither the bridge's internal port (OVS would drop everything the host sends, local-target
  // mirror copies included) nor vpcguard's own ports can receive copies; the good one is applied.
  f->transactions.clear();
  f->transact_replies.push_back(portMirrorRead(Json::array()));
  problems = db.setPortMirrors("br-int", {{"pm-local", "vif-1", "br-int"},
                                          {"pm-tunnel", "vif-2", "vg-mirror"},
                                          {"pm-a", "vif-1", "mon0"}});
  ASSERT_TRUE(problems.has_value()) << problems.error().message;
  EXPECT_EQ(*problems,
            (std::vector<std::string>{
                std::string("port mirror pm-local: output port \"br-int\" is the bridge's own ") +
                    "internal port: OVS would drop all traffic from the host, local-target "
                    "mirror copies included",
                std::string("port mirror pm-tunnel: output port \"vg-mirror\" is vpcguard's own ") +
                    "(interface vg-mirror has external_ids:vpcguard-role=mirror-tunnel), e.g. the "
                    "mirror tunnel: not an output port"}));
  ASSERT_EQ(f->transactions.size(), 2u);
  ASSERT_EQ(f->transactions[1].size(), 3u);  // wait, insert (pm-a only), mutate
  EXPECT_EQ(f->transactions[1][1]["row"]["name"], "vpcguard:pm-a");

  // Already as asked: nothing written.
  f->transactions.clear();
  f->transact_replies.push_back(portMirrorRead(
      Json::array({foreign, mirrorRow("m1", "vpcguard:pm-a", "port-p1", "port-mon0")})));
  problems = db.setPortMirrors("br-int", {{"pm-a", "vif-1", "mon0"}});
  ASSERT_TRUE(problems.has_value());
  EXPECT_TRUE(problems->empty());
  EXPECT_EQ(f->transactions.size(), 1u);

  // Changed source: updated in place; a stale row of ours goes; the foreign one stays.
  f->transactions.clear();
  f->transact_replies.push_back(
      portMirrorRead(Json::array({foreign, mirrorRow("m1", "vpcguard:pm-a", "port-p1", "port-mon0"),
                                  mirrorRow("m2", "vpcguard:old", "port-p1", "port-mon0")})));
  problems = db.setPortMirrors("br-int", {{"pm-a", "vif-2", "mon0"}});
  ASSERT_TRUE(problems.has_value());
  EXPECT_TRUE(problems->empty());
  ASSERT_EQ(f->transactions.size(), 2u);
  const Json& change = f->transactions[1];
  ASSERT_EQ(change.size(), 3u);  // wait, update, mutate
  EXPECT_EQ(change[1]["op"], "update");
  EXPECT_EQ(change[1]["where"][0][2], Json::array({"uuid", "m1"}));
  EXPECT_EQ(ovsdb_value::uuidSet(change[1]["row"]["select_src_port"]),
            (std::set<std::string>{"port-p2"}));
  EXPECT_EQ(change[2]["mutations"],
            Json::array(
                {Json::array({"mirrors", "delete",
                              Json::array({"set", Json::array({Json::array({"uuid", "m2"})})})})}));

  // A failed write (someone changed the bridge meanwhile) is decided again on fresh rows.
  f->transactions.clear();
  f->transact_replies.push_back(portMirrorRead(Json::array()));
  f->transact_replies.push_back(makeError("operation 0 (wait on Bridge): timed out"));
  f->transact_replies.push_back(
      portMirrorRead(Json::array({mirrorRow("m1", "vpcguard:pm-a", "port-p1", "port-mon0")})));
  problems = db.setPortMirrors("br-int", {{"pm-a", "vif-1", "mon0"}});
  ASSERT_TRUE(problems.has_value()) << problems.error().message;
  EXPECT_EQ(f->transactions.size(), 3u);
}

}  // namespace
}  // namespace vpcguard::ovs
