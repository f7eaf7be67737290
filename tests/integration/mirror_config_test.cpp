// VswitchDb's mirroring configuration against a real ovsdb-server + ovs-vswitchd sandbox: the
// mirror tunnel port (setMirrorTunnel) and OVS Mirror rows (setPortMirrors), checked with
// ovs-vsctl, a plain select, and ofproto/trace (the switch really copies to the output port).
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ovs-plugin/ovsdb_client.h"
#include "ovs-plugin/vswitch_db.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"
#include "translator/pipeline.h"

namespace vpcguard::test {
namespace {

using ovs::InterfaceEventKind;
using ovs::Json;
using ovs::PortMirrorSpec;

class MirrorConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(auto client, ovs::connectOvsdb(sandbox_->dbTarget()));
    db_ = std::make_unique<ovs::VswitchDb>(std::move(client));
    VGT_ASSERT_OK(sandbox_->addBridge("br-int"));
  }

  // The InterfaceInfo listInterfaces() reports under `iface_id`, once it has an ofport.
  std::optional<ovs::InterfaceInfo> listed(const std::string& iface_id) {
    std::optional<ovs::InterfaceInfo> found;
    (void)waitFor(
        [&] {
          auto all = db_->listInterfaces();
          EXPECT_TRUE(all.has_value()) << all.error().message;
          found.reset();
          for (const auto& i : all ? *all : std::vector<ovs::InterfaceInfo>{}) {
            if (i.iface_id == iface_id) {
              found = i;
            }
          }
          return !all || (found && found->ofport > 0);
        },
        10s);
    return found;
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<ovs::VswitchDb> db_;
};

TEST_F(MirrorConfigTest, TunnelPortIsCreatedOnceReportedAndRemoved) {
  VGT_ASSIGN_OR_FAIL(const int p1, sandbox_->addDummyPort("br-int", "p1", "vif-1"));
  VGT_ASSIGN_OR_FAIL(auto initial, db_->startInterfaceMonitor());
  ASSERT_EQ(initial.size(), 1u);

  VGT_ASSERT_OK(db_->setMirrorTunnel("br-int", true));
  VGT_ASSERT_OK(db_->setMirrorTunnel("br-int", true));
  VGT_ASSIGN_OR_FAIL(auto ports, sandbox_->vsctl("list-ports br-int"));
  EXPECT_EQ(ports, "p1\nvg-mirror\n");
  VGT_ASSIGN_OR_FAIL(auto ifaces, sandbox_->vsctl("--bare --columns=name find Interface "
                                                  "name=vg-mirror"));
  EXPECT_EQ(ifaces, "vg-mirror\n");  // one row
  VGT_ASSIGN_OR_FAIL(auto settings,
                     sandbox_->vsctl("get interface vg-mirror type options external_ids"));
  EXPECT_EQ(settings, "vxlan\n{key=flow, remote_ip=flow}\n{vpcguard-role=mirror-tunnel}\n");

  // Its OpenFlow port reaches the daemon like a VM interface's, under the tunnel key.
  VGT_ASSIGN_OR_FAIL(const int tunnel_ofport, sandbox_->ofport("vg-mirror"));
  const auto reported = listed(pipeline::kMirrorTunnelKey);
  ASSERT_TRUE(reported.has_value());
  EXPECT_EQ(reported->ofport, tunnel_ofport);
  EXPECT_EQ(reported->name, "vg-mirror");
  std::vector<ovs::InterfaceEvent> events;
  ASSERT_TRUE(waitFor(
      [&] {
        auto more = db_->pollInterfaceEvents(200ms);
        if (more) {
          events.insert(events.end(), more->begin(), more->end());
        }
        return !more || !events.empty();
      },
      15s, 0ms));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, InterfaceEventKind::kAttached);
  EXPECT_EQ(events[0].iface.iface_id, pipeline::kMirrorTunnelKey);
  EXPECT_EQ(events[0].iface.ofport, tunnel_ofport);

  // Settings changed by hand are repaired in place.
  VGT_ASSIGN_OR_FAIL(auto uuid_before, sandbox_->vsctl("get interface vg-mirror _uuid"));
  VGT_ASSERT_OK(sandbox_->vsctl(
      "set interface vg-mirror type=geneve options:remote_ip=192.0.2.1 options:dst_port=4790 "
      "external_ids:vpcguard-role=other"));
  VGT_ASSERT_OK(db_->setMirrorTunnel("br-int", true));
  VGT_ASSIGN_OR_FAIL(settings,
                     sandbox_->vsctl("get interface vg-mirror type options external_ids"));
  EXPECT_EQ(settings, "vxlan\n{key=flow, remote_ip=flow}\n{vpcguard-role=mirror-tunnel}\n");
  VGT_ASSIGN_OR_FAIL(auto uuid_after, sandbox_->vsctl("get interface vg-mirror _uuid"));
  EXPECT_EQ(uuid_before, uuid_after);

  // Removed: the rows go, the other port stays as it was.
  VGT_ASSERT_OK(db_->setMirrorTunnel("br-int", false));
  VGT_ASSERT_OK(db_->setMirrorTunnel("br-int", false));
  VGT_ASSIGN_OR_FAIL(ports, sandbox_->vsctl("list-ports br-int"));
  EXPECT_EQ(ports, "p1\n");
  VGT_ASSIGN_OR_FAIL(ifaces, sandbox_->vsctl("--bare --columns=name find Interface "
                                             "name=vg-mirror"));
  EXPECT_EQ(ifaces, "");
  VGT_ASSIGN_OR_FAIL(auto p1_now, sandbox_->ofport("p1"));
  EXPECT_EQ(p1_now, p1);
  VGT_ASSIGN_OR_FAIL(auto p1_ids, sandbox_->vsctl("get interface p1 external_ids"));
  EXPECT_EQ(p1_ids, "{iface-id=vif-1}\n");
}

TEST_F(MirrorConfigTest, TunnelNameTakenOnAnotherBridgeIsNotTouched) {
  VGT_ASSERT_OK(sandbox_->addBridge("br-ex"));
  VGT_ASSERT_OK(sandbox_->vsctl("add-port br-ex vg-mirror -- set interface vg-mirror type=dummy"));
  auto r = db_->setMirrorTunnel("br-int", true);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("on bridge br-ex"), std::string::npos) << r.error().message;
  VGT_ASSERT_OK(db_->setMirrorTunnel("br-int", false));
  VGT_ASSIGN_OR_FAIL(auto ports, sandbox_->vsctl("list-ports br-ex"));
  EXPECT_EQ(ports, "vg-mirror\n");
  VGT_ASSIGN_OR_FAIL(auto type, sandbox_->vsctl("get interface vg-mirror type"));
  EXPECT_EQ(type, "dummy\n");

  auto no_bridge = db_->setMirrorTunnel("br-nowhere", true);
  ASSERT_FALSE(no_bridge.has_value());
  EXPECT_NE(no_bridge.error().message.find("no such bridge"), std::string::npos);
}

class PortMirrorTest : public MirrorConfigTest {
 protected:
  void SetUp() override {
    MirrorConfigTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    VGT_ASSIGN_OR_FAIL(p1_, sandbox_->addDummyPort("br-int", "p1", "vif-1"));
    VGT_ASSERT_OK(sandbox_->addDummyPort("br-int", "p2", "vif-2"));
    for (const char* mon : {"mon0", "mon1"}) {
      VGT_ASSERT_OK(sandbox_->vsctl(std::string("add-port br-int ") + mon + " -- set interface " +
                                    mon + " type=dummy"));
      VGT_ASSERT_OK(sandbox_->ofport(mon));
    }
    // Someone else's mirror (an operator's tap): vpcguard must leave it alone.
    VGT_ASSERT_OK(sandbox_->vsctl(
        "-- --id=@s get Port p2 -- --id=@o get Port mon1 -- --id=@m create Mirror "
        "name=tap-by-hand select-src-port=@s output-port=@o -- add Bridge br-int mirrors @m"));
  }

  struct MirrorRow {
    std::string uuid;
    std::set<std::string> src;  // port names
    std::set<std::string> dst;
    std::string out;
    bool operator==(const MirrorRow&) const = default;
  };

  // The Mirror rows of br-int by name, read with a plain select on a connection of our own.
  std::map<std::string, MirrorRow> mirrors() {
    std::map<std::string, MirrorRow> out;
    auto client = ovs::connectOvsdb(sandbox_->dbTarget());
    EXPECT_TRUE(client.has_value());
    if (!client) {
      return out;
    }
    auto r = (*client)->transact(
        "Open_vSwitch",
        Json::array({Json{{"op", "select"},
                          {"table", "Bridge"},
                          {"where", Json::array({Json::array({"name", "==", "br-int"})})},
                          {"columns", Json::array({"mirrors"})}},
                     Json{{"op", "select"},
                          {"table", "Port"},
                          {"where", Json::array()},
                          {"columns", Json::array({"_uuid", "name"})}},
                     Json{{"op", "select"}, {"table", "Mirror"}, {"where", Json::array()}}}));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    if (!r) {
      return out;
    }
    std::map<std::string, std::string> port_names;
    for (const auto& row : (*r)[1]["rows"]) {
      port_names[row["_uuid"][1].get<std::string>()] = row["name"].get<std::string>();
    }
    const auto names = [&](const Json& set) {
      std::set<std::string> n;
      for (const auto& u : ovs::ovsdb_value::uuidSet(set)) {
        n.insert(port_names.count(u) != 0 ? port_names[u] : "?" + u);
      }
      return n;
    };
    const auto on_bridge = ovs::ovsdb_value::uuidSet((*r)[0]["rows"][0]["mirrors"]);
    for (const auto& row : (*r)[2]["rows"]) {
      const std::string uuid = row["_uuid"][1].get<std::string>();
      if (on_bridge.count(uuid) == 0) {
        continue;
      }
      const auto out_ports = names(row["output_port"]);
      out[row["name"].get<std::string>()] =
          MirrorRow{uuid, names(row["select_src_port"]), names(row["select_dst_port"]),
                    out_ports.empty() ? "" : *out_ports.begin()};
    }
    return out;
  }

  // The datapath actions ofproto/trace gives for an ICMP packet arriving on p1. The bridge has
  // no flows (fail_mode=secure: dropped), so only the mirror can output anything.
  std::string traceFromP1() {
    auto r = sandbox_->appctl("ofproto/trace br-int in_port=" + std::to_string(p1_) + ",icmp");
    EXPECT_TRUE(r.has_value()) << r.error().message;
    std::smatch m;
    const std::string text = r ? *r : "";
    return std::regex_search(text, m, std::regex("Datapath actions: ([^\n]*)")) ? m[1].str() : "";
  }
  // mon0's datapath port number (`dpif/show`: "mon0 <ofport>/<dp port>: (dummy)").
  std::string dpPort(const std::string& port) {
    auto r = sandbox_->appctl("dpif/show");
    EXPECT_TRUE(r.has_value());
    std::smatch m;
    const std::string text = r ? *r : "";
    return std::regex_search(text, m, std::regex(port + " [0-9]+/([0-9]+):")) ? m[1].str() : "";
  }

  int p1_ = -1;
};

TEST_F(PortMirrorTest, CreatedReplacedAndRemovedLeavingOthersAlone) {
  const MirrorRow foreign = mirrors().at("tap-by-hand");
  EXPECT_EQ(foreign.src, (std::set<std::string>{"p2"}));
  EXPECT_EQ(traceFromP1(), "drop");

  VGT_ASSIGN_OR_FAIL(auto problems, db_->setPortMirrors("br-int", {{"pm-a", "vif-1", "mon0"}}));
  EXPECT_TRUE(problems.empty());
  auto now = mirrors();
  ASSERT_EQ(now.size(), 2u);
  const MirrorRow created = now.at("vpcguard:pm-a");
  EXPECT_EQ(created.src, (std::set<std::string>{"p1"}));
  EXPECT_EQ(created.dst, (std::set<std::string>{"p1"}));
  EXPECT_EQ(created.out, "mon0");
  EXPECT_EQ(now.at("tap-by-hand"), foreign);
  // ovs-vswitchd took it: a packet from p1 is copied to mon0.
  VGT_ASSERT_OK(db_->awaitApplied(10s));
  const std::string mon0 = dpPort("mon0");
  ASSERT_FALSE(mon0.empty());
  EXPECT_EQ(traceFromP1(), mon0);

  // The same again: nothing changes (the row keeps its uuid).
  VGT_ASSIGN_OR_FAIL(problems, db_->setPortMirrors("br-int", {{"pm-a", "vif-1", "mon0"}}));
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(mirrors().at("vpcguard:pm-a"), created);

  // Changed: another source VM and output port.
  VGT_ASSIGN_OR_FAIL(problems, db_->setPortMirrors("br-int", {{"pm-a", "vif-2", "mon1"}}));
  EXPECT_TRUE(problems.empty());
  now = mirrors();
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now.at("vpcguard:pm-a").src, (std::set<std::string>{"p2"}));
  EXPECT_EQ(now.at("vpcguard:pm-a").dst, (std::set<std::string>{"p2"}));
  EXPECT_EQ(now.at("vpcguard:pm-a").out, "mon1");
  EXPECT_EQ(now.at("tap-by-hand"), foreign);

  // Empty: ours go, the foreign one stays.
  VGT_ASSIGN_OR_FAIL(problems, db_->setPortMirrors("br-int", {}));
  EXPECT_TRUE(problems.empty());
  now = mirrors();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now.at("tap-by-hand"), foreign);
  VGT_ASSIGN_OR_FAIL(auto all_rows, sandbox_->vsctl("--bare --columns=name list Mirror"));
  EXPECT_EQ(all_rows, "tap-by-hand\n");  // ours were garbage-collected
  VGT_ASSERT_OK(db_->awaitApplied(10s));
  EXPECT_EQ(traceFromP1(), "drop");
}

TEST_F(PortMirrorTest, UnusableSpecsAreReportedAndTheOthersApplied) {
  VGT_ASSIGN_OR_FAIL(auto problems,
                     db_->setPortMirrors("br-int", {{"pm-ok", "vif-1", "mon0"},
                                                    {"pm-x", "vif-1", "mon9"},
                                                    {"pm-vm", "vif-1", "p2"},
                                                    {"pm-gone", "vif-404", "mon1"}}));
  EXPECT_EQ(problems,
            (std::vector<std::string>{
                "port mirror pm-x: output port \"mon9\" is not on bridge br-int",
                std::string("port mirror pm-vm: output port \"p2\" is a VM port (interface p2 ") +
                    "has iface-id vif-2): OVS would stop delivering its own traffic",
                std::string("port mirror pm-gone: source interface \"vif-404\" ") +
                    "(external_ids:iface-id) is not on bridge br-int"}));
  const auto now = mirrors();
  EXPECT_EQ(now.size(), 2u);
  EXPECT_EQ(now.count("vpcguard:pm-ok"), 1u);
  EXPECT_EQ(now.count("tap-by-hand"), 1u);

  // A port on another bridge is not "on the bridge".
  VGT_ASSERT_OK(sandbox_->addBridge("br-ex"));
  VGT_ASSERT_OK(sandbox_->vsctl("add-port br-ex ext0 -- set interface ext0 type=dummy"));
  VGT_ASSIGN_OR_FAIL(problems, db_->setPortMirrors("br-int", {{"pm-ok", "vif-1", "ext0"}}));
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "port mirror pm-ok: output port \"ext0\" is not on bridge br-int"}));
  EXPECT_EQ(mirrors().count("vpcguard:pm-ok"), 0u);  // skipped, so no longer wanted

  auto no_bridge = db_->setPortMirrors("br-nowhere", {});
  ASSERT_FALSE(no_bridge.has_value());
  EXPECT_NE(no_bridge.error().message.find("no such bridge"), std::string::npos);
}

}  // namespace
}  // namespace vpcguard::test
