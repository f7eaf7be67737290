// state/rows.cpp without a server: Policy -> operations -> rows -> Policy through a small
// simulation of ovsdb-server's transaction semantics (named uuids, updates, deletes, garbage
// collection of unreferenced child rows), hand-made rows in the server's canonical forms, the
// errors of malformed rows, what a change touches, and StateStore's commit over a fake client.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "state/store.h"
#include "tests/harness/random_policy.h"
#include "tests/harness/sample_policy.h"
#include "tests/harness/state_server.h"
#include "tests/unit/fake_ovsdb_client.h"

namespace vpcguard {
namespace {

using state::Json;
using state::Replica;

// Tables whose rows are children (isRoot false in the schema): collected when unreferenced.
const std::set<std::string> kChildTables = {"Security_Group_Rule", "Network_Acl_Entry",
                                            "Traffic_Mirror_Filter_Rule"};

// Replaces ["named-uuid", n] anywhere in `value` by the uuid the transaction gave n.
Json resolveNames(const Json& value, const std::map<std::string, std::string>& names) {
  if (value.is_array()) {
    if (value.size() == 2 && value[0] == "named-uuid") {
      return Json::array({"uuid", names.at(value[1].get<std::string>())});
    }
    Json out = Json::array();
    for (const auto& v : value) {
      out.push_back(resolveNames(v, names));
    }
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : value.items()) {
      out[k] = resolveNames(v, names);
    }
    return out;
  }
  return value;
}

void collectUuids(const Json& value, std::set<std::string>& out) {
  if (value.is_array()) {
    if (value.size() == 2 && value[0] == "uuid" && value[1].is_string()) {
      out.insert(value[1].get<std::string>());
      return;
    }
    for (const auto& v : value) {
      collectUuids(v, out);
    }
  }
}

// Applies a transaction the way ovsdb-server would for the operations rows.cpp emits. Returns
// false (and leaves `replica` unchanged) when a wait does not hold.
bool applyOperations(Replica& replica, const Json& ops, int& next_uuid) {
  Replica next = replica;
  std::map<std::string, std::string> names;
  for (const auto& op : ops) {
    if (op["op"] == "insert" && op.contains("uuid-name")) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "00000000-0000-0000-0000-%012d", next_uuid++);
      names[op["uuid-name"].get<std::string>()] = buf;
    }
  }
  for (const auto& op : ops) {
    const std::string table = op["table"].get<std::string>();
    auto& rows = next[table];
    auto matching = [&]() {
      std::vector<std::string> out;
      const Json& where = op["where"];
      if (where.empty()) {
        for (const auto& [uuid, row] : rows) {
          out.push_back(uuid);
        }
      } else {
        EXPECT_EQ(where[0][0], "_uuid");
        const std::string uuid = where[0][2][1].get<std::string>();
        if (rows.contains(uuid)) {
          out.push_back(uuid);
        }
      }
      return out;
    };
    if (op["op"] == "wait") {
      Json found = Json::array();
      for (const auto& uuid : matching()) {
        Json projected = Json::object();
        for (const auto& column : op["columns"]) {
          projected[column.get<std::string>()] = rows[uuid][column.get<std::string>()];
        }
        found.push_back(projected);
      }
      if (found != op["rows"]) {
        return false;
      }
    } else if (op["op"] == "insert") {
      std::string uuid;
      if (op.contains("uuid-name")) {
        uuid = names.at(op["uuid-name"].get<std::string>());
      } else {
        char buf[48];
        std::snprintf(buf, sizeof buf, "00000000-0000-0000-0000-%012d", next_uuid++);
        uuid = buf;
      }
      rows[uuid] = resolveNames(op["row"], names);
    } else if (op["op"] == "update") {
      for (const auto& uuid : matching()) {
        for (const auto& [k, v] : op["row"].items()) {
          rows[uuid][k] = resolveNames(v, names);
        }
      }
    } else if (op["op"] == "delete") {
      for (const auto& uuid : matching()) {
        rows.erase(uuid);
      }
    } else {
      ADD_FAILURE() << "unexpected operation " << op.dump();
    }
  }
  // Garbage collection: child rows no root row (transitively) references.
  std::set<std::string> referenced;
  for (const auto& [table, rows] : next) {
    if (kChildTables.contains(table)) {
      continue;
    }
    for (const auto& [uuid, row] : rows) {
      for (const auto& [column, value] : row.items()) {
        collectUuids(value, referenced);
      }
    }
  }
  for (const auto& table : kChildTables) {
    std::erase_if(next[table], [&](const auto& kv) { return !referenced.contains(kv.first); });
  }
  replica = std::move(next);
  return true;
}

std::string content(const Replica& replica) {
  auto policy = state::policyFromReplica(replica);
  EXPECT_TRUE(policy) << policy.error().message;
  return policy ? test::policyContent(*policy) : std::string("<unreadable>");
}

model::SecurityGroup& group(model::Policy& policy, const std::string& id) {
  auto it = std::find_if(policy.security_groups.begin(), policy.security_groups.end(),
                         [&](const model::SecurityGroup& g) { return g.id == id; });
  EXPECT_NE(it, policy.security_groups.end()) << id;
  return *it;
}

model::SecurityGroupRule tcpRule(int port, const char* cidr) {
  model::SecurityGroupRule r;
  r.ip_protocol = model::kProtoTcp;
  r.ports = model::PortRange{port, port};
  r.peer = test::cidr(cidr);
  return r;
}

// A policy with one of everything the sample lacks: prefix lists, flow logs, mirroring, port
// mirrors, connection tracking, IPv6 peers and NACL entries, optional fields set and unset.
model::Policy fullPolicy() {
  model::Policy p = test::samplePolicy();
  p.vpc.strict_revocation = true;
  p.vpc.ipv6_cidr_blocks = {test::cidr("2600:1f18:abcd:1200::/56")};
  p.quotas.rules_per_security_group = 77;
  p.quotas.traffic_mirror_filter_rules = 12;
  model::PrefixList pl;
  pl.id = "pl-office";
  pl.name = "office";
  pl.max_entries = 5;
  pl.entries = {test::cidr("198.51.100.0/24"), test::cidr("192.0.2.0/25")};
  p.prefix_lists.push_back(pl);
  auto& web = group(p, "sg-web");
  model::SecurityGroupRule from_list;
  from_list.ip_protocol = model::kProtoUdp;
  from_list.ports = model::PortRange{53, 53};
  from_list.peer = model::PrefixListRef{"pl-office"};
  from_list.description = "dns from the office";
  web.ingress.push_back(from_list);
  model::SecurityGroupRule icmp6;
  icmp6.ip_protocol = model::kProtoIcmpv6;
  icmp6.icmp = model::IcmpTypeCode{128, -1};
  icmp6.peer = test::cidr("::/0");
  web.ingress.push_back(icmp6);
  web.description = "web servers";
  p.network_interfaces[0].connection_tracking.tcp_established_timeout = 3600;
  p.network_interfaces[0].connection_tracking.udp_timeout = 45;
  p.network_interfaces[1].source_dest_check = false;
  for (auto& acl : p.network_acls) {
    if (!acl.is_default) {
      auto e = test::naclEntry(150, true, model::kProtoIcmp, false, "10.9.0.0/16");
      e.icmp_type_code = model::IcmpTypeCode{8, 0};
      acl.entries.push_back(e);
      acl.entries.push_back(test::naclEntry(160, false, model::kProtoTcp, true, "::/0",
                                            model::PortRange{1024, 65535}));
    }
  }
  model::FlowLog fl;
  fl.id = "fl-1";
  fl.resource_id = "eni-web1";
  fl.traffic_type = model::FlowLogTrafficType::kReject;
  fl.log_destination = "file:///var/log/vpc";
  fl.log_format = "${srcaddr} ${dstaddr}";
  fl.max_aggregation_interval = 60;
  fl.ipfix_collector = "127.0.0.1:4739";
  p.flow_logs.push_back(fl);
  model::TrafficMirrorTarget local;
  local.id = "tmt-local";
  local.network_interface_id = "eni-bastion";
  local.description = "monitor vm";
  model::TrafficMirrorTarget remote;
  remote.id = "tmt-remote";
  remote.vxlan_remote_ip = test::ip("192.0.2.9");
  p.traffic_mirror_targets = {remote, local};
  model::TrafficMirrorFilter filter;
  filter.id = "tmf-1";
  filter.network_services = {"amazon-dns"};
  filter.description = "web only";
  model::TrafficMirrorFilterRule fr;
  fr.rule_number = 10;
  fr.accept = true;
  fr.protocol = model::kProtoTcp;
  fr.source_cidr_block = test::cidr("0.0.0.0/0");
  fr.destination_cidr_block = test::cidr("10.0.1.0/24");
  fr.destination_port_range = model::PortRange{80, 443};
  fr.description = "http";
  filter.ingress_rules.push_back(fr);
  fr.rule_number = 5;
  fr.accept = false;
  fr.destination_port_range.reset();
  fr.source_port_range = model::PortRange{1, 2};
  filter.ingress_rules.push_back(fr);  // out of rule order on purpose: positions keep it
  fr.rule_number = 20;
  filter.egress_rules.push_back(fr);
  p.traffic_mirror_filters.push_back(filter);
  model::TrafficMirrorSession s;
  s.id = "tms-1";
  s.network_interface_id = "eni-web1";
  s.traffic_mirror_target_id = "tmt-local";
  s.traffic_mirror_filter_id = "tmf-1";
  s.session_number = 1;
  s.packet_length = 128;
  s.virtual_network_id = 4242;
  s.description = "debug";
  p.traffic_mirror_sessions.push_back(s);
  model::PortMirror pm;
  pm.id = "pm-1";
  pm.network_interface_id = "eni-db1";
  pm.output_port = "span0";
  p.port_mirrors.push_back(pm);
  return p;
}

struct Simulated {
  Replica replica;
  int next_uuid = 1;
  bool commit(const model::Policy& p) {
    return applyOperations(replica, state::changeOperations(replica, p), next_uuid);
  }
};

TEST(StateRows, EmptyReplicaIsGenerationZeroAndAnEmptyPolicy) {
  Replica empty;
  EXPECT_EQ(state::generationOf(empty), 0);
  auto p = state::policyFromReplica(empty);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->vpc.id.empty());
}

TEST(StateRows, FirstCommitInsertsTheVpcAtGenerationOneGuardedByAnEmptyTable) {
  const auto ops = state::changeOperations({}, test::samplePolicy());
  ASSERT_GE(ops.size(), 2u);
  EXPECT_EQ(ops[0]["op"], "wait");
  EXPECT_EQ(ops[0]["table"], "VPC");
  EXPECT_EQ(ops[0]["rows"], Json::array());
  EXPECT_EQ(ops[0]["timeout"], 0);
  EXPECT_EQ(ops[1]["op"], "insert");
  EXPECT_EQ(ops[1]["table"], "VPC");
  EXPECT_EQ(ops[1]["row"]["generation"], 1);
}

TEST(StateRows, SamplePolicyRoundTrips) {
  Simulated db;
  ASSERT_TRUE(db.commit(test::samplePolicy()));
  EXPECT_EQ(state::generationOf(db.replica), 1);
  EXPECT_EQ(content(db.replica), test::policyContent(test::samplePolicy()));
}

TEST(StateRows, EveryFieldRoundTrips) {
  Simulated db;
  const model::Policy p = fullPolicy();
  ASSERT_TRUE(db.commit(p));
  EXPECT_EQ(content(db.replica), test::policyContent(p));
  auto back = state::policyFromReplica(db.replica);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->quotas.rules_per_security_group, 77);
  ASSERT_EQ(back->traffic_mirror_filters.size(), 1u);
  ASSERT_EQ(back->traffic_mirror_filters[0].ingress_rules.size(), 2u);
  EXPECT_EQ(back->traffic_mirror_filters[0].ingress_rules[0].rule_number, 10);
  // Top-level objects come back sorted by id.
  ASSERT_EQ(back->traffic_mirror_targets.size(), 2u);
  EXPECT_EQ(back->traffic_mirror_targets[0].id, "tmt-local");
  EXPECT_EQ(back->traffic_mirror_targets[0].location.file, "db:Traffic_Mirror_Target/tmt-local");
  EXPECT_TRUE(back->field_locations.empty());
}

TEST(StateRows, RandomPoliciesRoundTripAndReplaceEachOther) {
  Simulated db;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    auto p = test::randomPolicy(seed);
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_TRUE(db.commit(*p)) << "seed " << seed;
    ASSERT_EQ(content(db.replica), test::policyContent(*p)) << "seed " << seed;
    ASSERT_EQ(state::generationOf(db.replica), seed);
  }
}

// The API server passes the policy the replica holds, so unchanged objects are not digested:
// the operations must be the ones computed without it, for policies replacing each other and
// for small edits of one (a rule added, an interface changed, a group gone).
TEST(StateRows, KnownCurrentPolicyGivesTheSameOperations) {
  Simulated db;
  // What the server keeps after its own commit (asCommitted), as well as a fresh decode.
  std::optional<model::Policy> kept;
  const auto expectSame = [&](const model::Policy& next, const std::string& where) {
    auto known = state::policyFromReplica(db.replica);
    ASSERT_TRUE(known) << where << ": " << known.error().message;
    const Json plain = state::changeOperations(db.replica, next);
    const Json hinted = state::changeOperations(db.replica, next, &*known);
    EXPECT_EQ(hinted, plain) << where;
    if (kept) {
      EXPECT_EQ(state::changeOperations(db.replica, next, &*kept), plain) << where << " (kept)";
    }
    ASSERT_TRUE(applyOperations(db.replica, hinted, db.next_uuid)) << where;
    EXPECT_EQ(content(db.replica), test::policyContent(next)) << where;
    kept = state::asCommitted(next);
  };
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    auto p = test::randomPolicy(seed);
    ASSERT_TRUE(p) << p.error().message;
    expectSame(*p, "seed " + std::to_string(seed));
    model::Policy edited = *p;
    if (!edited.security_groups.empty()) {
      model::SecurityGroupRule r;
      r.ip_protocol = model::kProtoTcp;
      r.ports = model::PortRange{8443, 8443};
      r.peer = test::cidr("198.51.100.0/24");
      edited.security_groups.back().ingress.push_back(r);
    }
    if (!edited.network_interfaces.empty()) {
      edited.network_interfaces.front().source_dest_check =
          !edited.network_interfaces.front().source_dest_check;
    }
    expectSame(edited, "seed " + std::to_string(seed) + ", edited");
  }
}

TEST(StateRows, UnchangedPolicyHasOnlyTheGuard) {
  Simulated db;
  const model::Policy p = fullPolicy();
  ASSERT_TRUE(db.commit(p));
  const auto ops = state::changeOperations(db.replica, p);
  ASSERT_EQ(ops.size(), 2u) << ops.dump(1);
  EXPECT_EQ(ops[0]["op"], "wait");
  EXPECT_EQ(ops[0]["rows"], Json::array({Json{{"generation", 1}}}));
  EXPECT_EQ(ops[1]["op"], "update");
  EXPECT_EQ(ops[1]["table"], "VPC");
  EXPECT_EQ(ops[1]["row"], (Json{{"generation", 2}}));
}

TEST(StateRows, OneRuleChangeTouchesOneGroupAndKeepsItsOtherRules) {
  Simulated db;
  model::Policy p = fullPolicy();
  ASSERT_TRUE(db.commit(p));
  const size_t rule_rows = db.replica["Security_Group_Rule"].size();
  group(p, "sg-db").ingress.push_back(tcpRule(6432, "192.0.2.0/24"));
  const auto ops = state::changeOperations(db.replica, p);
  ASSERT_EQ(ops.size(), 4u) << ops.dump(1);
  EXPECT_EQ(ops[2]["op"], "insert");
  EXPECT_EQ(ops[2]["table"], "Security_Group_Rule");
  EXPECT_EQ(ops[3]["op"], "update");
  EXPECT_EQ(ops[3]["table"], "Security_Group");
  EXPECT_EQ(ops[3]["row"]["id"], "sg-db");
  // The existing rules are referenced by uuid, the new one by name.
  size_t kept = 0;
  for (const auto& ref : ops[3]["row"]["ingress"][1]) {
    kept += ref[0] == "uuid" ? 1u : 0u;
  }
  EXPECT_EQ(kept, group(p, "sg-db").ingress.size() - 1);
  ASSERT_TRUE(applyOperations(db.replica, ops, db.next_uuid));
  EXPECT_EQ(db.replica["Security_Group_Rule"].size(), rule_rows + 1);
  EXPECT_EQ(content(db.replica), test::policyContent(p));
}

TEST(StateRows, ChangesOfEachKindTouchOnlyThatObject) {
  Simulated db;
  model::Policy p = fullPolicy();
  ASSERT_TRUE(db.commit(p));
  p.network_interfaces[2].security_group_ids.push_back("sg-web");
  p.traffic_mirror_sessions[0].packet_length.reset();
  p.flow_logs.clear();
  const auto ops = state::changeOperations(db.replica, p);
  // wait, VPC, interface update, flow log delete, session update.
  ASSERT_EQ(ops.size(), 5u) << ops.dump(1);
  std::multiset<std::string> touched;
  for (size_t i = 2; i < ops.size(); ++i) {
    touched.insert(ops[i]["op"].get<std::string>() + " " + ops[i]["table"].get<std::string>());
  }
  EXPECT_EQ(touched, (std::multiset<std::string>{"update Network_Interface", "delete Flow_Log",
                                                 "update Traffic_Mirror_Session"}));
  ASSERT_TRUE(applyOperations(db.replica, ops, db.next_uuid));
  EXPECT_EQ(content(db.replica), test::policyContent(p));
}

TEST(StateRows, RowsWithoutDigestAreComparedByContentAndOnlyGetTheirDigest) {
  Simulated db;
  const model::Policy p = fullPolicy();
  ASSERT_TRUE(db.commit(p));
  size_t objects = 0;
  for (auto& [table, rows] : db.replica) {
    for (auto& [uuid, row] : rows) {
      if (row.contains("digest")) {
        if (table == "Subnet") {
          row["digest"] = "0000000000000000";  // stale
        } else {
          row.erase("digest");  // missing
        }
        ++objects;
      }
    }
  }
  ASSERT_GT(objects, 10u);
  const auto ops = state::changeOperations(db.replica, p);
  ASSERT_EQ(ops.size(), 2 + objects) << ops.dump(1);
  for (size_t i = 2; i < ops.size(); ++i) {
    EXPECT_EQ(ops[i]["op"], "update");
    EXPECT_EQ(ops[i]["row"].size(), 1u) << ops[i].dump();
    EXPECT_TRUE(ops[i]["row"].contains("digest"));
  }
  ASSERT_TRUE(applyOperations(db.replica, ops, db.next_uuid));
  EXPECT_EQ(state::changeOperations(db.replica, p).size(), 2u);
  EXPECT_EQ(content(db.replica), test::policyContent(p));
}

TEST(StateRows, VpcOrQuotaChangeRewritesTheVpcRow) {
  Simulated db;
  model::Policy p = test::samplePolicy();
  ASSERT_TRUE(db.commit(p));
  p.quotas.rules_per_interface = 2000;
  const auto ops = state::changeOperations(db.replica, p);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_TRUE(ops[1]["row"].contains("quotas"));
  EXPECT_EQ(ops[1]["row"]["generation"], 2);
  ASSERT_TRUE(applyOperations(db.replica, ops, db.next_uuid));
  EXPECT_EQ(content(db.replica), test::policyContent(p));
}

TEST(StateRows, StaleGuardDoesNotApply) {
  Simulated db;
  model::Policy p = test::samplePolicy();
  ASSERT_TRUE(db.commit(p));
  const Replica stale = db.replica;
  ASSERT_TRUE(db.commit(p));  // generation 2
  EXPECT_FALSE(applyOperations(db.replica, state::changeOperations(stale, p), db.next_uuid));
}

TEST(StateRows, ApplyTableUpdatesInsertsReplacesAndDeletes) {
  Replica r;
  state::applyTableUpdates(r, Json::parse(R"({
    "Subnet": {"u1": {"new": {"id": "subnet-a"}}, "u2": {"new": {"id": "subnet-b"}}},
    "VPC": {"v": {"new": {"generation": 3}}}})"));
  EXPECT_EQ(r["Subnet"].size(), 2u);
  EXPECT_EQ(state::generationOf(r), 3);
  state::applyTableUpdates(r, Json::parse(R"({
    "Subnet": {"u1": {"old": {"id": "subnet-a"}, "new": {"id": "subnet-c"}},
               "u2": {"old": {"id": "subnet-b"}}},
    "VPC": {"v": {"old": {"generation": 3}, "new": {"generation": 4}}}})"));
  ASSERT_EQ(r["Subnet"].size(), 1u);
  EXPECT_EQ(r["Subnet"]["u1"]["id"], "subnet-c");
  EXPECT_EQ(state::generationOf(r), 4);
  state::applyTableUpdates(r, Json::parse(R"({"Subnet": {"gone": {"old": {"id": "x"}}}})"));
  EXPECT_EQ(r["Subnet"].size(), 1u);
  state::applyTableUpdates(r, Json::parse("[1, 2]"));  // not table-updates: ignored
  EXPECT_EQ(r["Subnet"].size(), 1u);
}

// Rows the way ovsdb-server sends them: a one-element set as its bare atom, an empty set as
// ["set", []], maps sorted by key.
Replica handMadeReplica() {
  return Replica{
      {"VPC",
       {{"v1", Json::parse(R"({"id": "vpc-1", "account_id": "123456789012", "region": "us-east-1",
             "cidr_blocks": ["map", [[0, "10.0.0.0/16"]]], "ipv6_cidr_blocks": ["map", []],
             "strict_revocation": false, "generation": 7,
             "quotas": ["map", [["rules_per_interface", 2000]]]})")}}},
      {"Subnet",
       {{"s2", Json::parse(R"({"id": "subnet-b", "cidr_block": "10.0.2.0/24",
             "ipv6_cidr_block": ["set", []], "network_acl_id": "acl-default"})")},
        {"s1", Json::parse(R"({"id": "subnet-a", "cidr_block": "10.0.1.0/24",
             "ipv6_cidr_block": "2600:1f18:abcd:1201::/64", "network_acl_id": "acl-default"})")}}},
      {"Security_Group",
       {{"g1", Json::parse(R"({"id": "sg-1", "name": "one", "description": "",
             "ingress": ["uuid", "r2"], "egress": ["set", [["uuid", "r1"], ["uuid", "r3"]]],
             "is_default": false})")}}},
      {"Security_Group_Rule",
       {{"r1", Json::parse(R"({"position": 1, "ip_protocol": -1, "ports": ["map", []],
             "icmp": ["map", []], "cidr_ipv4": "0.0.0.0/0", "cidr_ipv6": ["set", []],
             "referenced_group_id": ["set", []], "prefix_list_id": ["set", []],
             "description": "second"})")},
        {"r3", Json::parse(R"({"position": 0, "ip_protocol": -1, "ports": ["map", []],
             "icmp": ["map", []], "cidr_ipv4": ["set", []], "cidr_ipv6": "::/0",
             "referenced_group_id": ["set", []], "prefix_list_id": ["set", []],
             "description": "first"})")},
        {"r2", Json::parse(R"({"position": 0, "ip_protocol": 6,
             "ports": ["map", [["from", 22], ["to", 22]]], "icmp": ["map", []],
             "cidr_ipv4": ["set", []], "cidr_ipv6": ["set", []],
             "referenced_group_id": "sg-1", "prefix_list_id": ["set", []],
             "description": ""})")}}},
  };
}

TEST(StateRows, HandMadeRowsInTheServersFormsDecode) {
  auto p = state::policyFromReplica(handMadeReplica());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->vpc.id, "vpc-1");
  EXPECT_EQ(p->quotas.rules_per_interface, 2000);
  EXPECT_EQ(p->quotas.rules_per_security_group, 60) << "a quota not stored keeps AWS's default";
  ASSERT_EQ(p->subnets.size(), 2u);
  EXPECT_EQ(p->subnets[0].id, "subnet-a");  // sorted by id, not by uuid
  ASSERT_TRUE(p->subnets[0].ipv6_cidr_block);
  EXPECT_FALSE(p->subnets[1].ipv6_cidr_block);
  ASSERT_EQ(p->security_groups.size(), 1u);
  const auto& g = p->security_groups[0];
  ASSERT_EQ(g.ingress.size(), 1u);
  EXPECT_EQ(std::get<model::GroupRef>(g.ingress[0].peer).group_id, "sg-1");
  EXPECT_EQ(g.ingress[0].ports, (model::PortRange{22, 22}));
  ASSERT_EQ(g.egress.size(), 2u);
  EXPECT_EQ(g.egress[0].description, "first");  // by position
  EXPECT_EQ(g.egress[1].description, "second");
  EXPECT_EQ(g.egress[0].location.file, "db:Security_Group/sg-1");
}

struct BrokenRowCase {
  const char* name;
  const char* table;
  const char* uuid;
  const char* column;
  Json value;  // null: erase the column
  std::vector<std::string> expected;  // substrings of the error
};

TEST(StateRows, MalformedRowsNameTableUuidAndColumn) {
  const std::vector<BrokenRowCase> cases = {
      {"missing child row", "Security_Group", "g1", "ingress", Json::array({"uuid", "nope"}),
       {"Security_Group row g1", "column ingress", "Security_Group_Rule row nope"}},
      {"wrong type", "Security_Group_Rule", "r2", "ip_protocol", "six",
       {"Security_Group_Rule row r2", "column ip_protocol", "expected an integer"}},
      {"missing column", "Subnet", "s1", "cidr_block", nullptr,
       {"Subnet row s1", "column cidr_block", "missing"}},
      {"bad cidr", "Subnet", "s2", "cidr_block", "10.0.2.5/24",
       {"Subnet row s2", "column cidr_block", "10.0.2.5/24"}},
      {"two peers", "Security_Group_Rule", "r1", "cidr_ipv6", "::/0",
       {"Security_Group_Rule row r1", "exactly one of"}},
      {"half a range", "Security_Group_Rule", "r2", "ports", Json::parse(R"(["map", [["from", 1]]])"),
       {"Security_Group_Rule row r2", "column ports"}},
      {"unknown quota", "VPC", "v1", "quotas", Json::parse(R"(["map", [["bogus", 1]]])"),
       {"VPC row v1", "column quotas", "bogus"}},
      {"optional with two values", "Subnet", "s1", "ipv6_cidr_block",
       Json::parse(R"(["set", ["::/64", "1::/64"]])"),
       {"Subnet row s1", "column ipv6_cidr_block"}},
      {"list not a map", "VPC", "v1", "cidr_blocks", "10.0.0.0/16",
       {"VPC row v1", "column cidr_blocks", "expected a map"}},
  };
  for (const auto& c : cases) {
    Replica r = handMadeReplica();
    Json& row = r[c.table][c.uuid];
    if (c.value.is_null()) {
      row.erase(c.column);
    } else {
      row[c.column] = c.value;
    }
    auto p = state::policyFromReplica(r);
    ASSERT_FALSE(p) << c.name;
    for (const auto& s : c.expected) {
      EXPECT_NE(p.error().message.find(s), std::string::npos)
          << c.name << ": '" << s << "' not in: " << p.error().message;
    }
    // A row that does not decode is rewritten whole by the next change, never left broken.
    auto fixed = state::policyFromReplica(handMadeReplica());
    ASSERT_TRUE(fixed);
    int next_uuid = 100;
    ASSERT_TRUE(applyOperations(r, state::changeOperations(r, *fixed), next_uuid)) << c.name;
    EXPECT_EQ(content(r), test::policyContent(*fixed)) << c.name;
  }
}

TEST(StateRows, ObjectsWithoutAVpcRowAreAnError) {
  Replica r = handMadeReplica();
  r.erase("VPC");
  auto p = state::policyFromReplica(r);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("no VPC row"), std::string::npos) << p.error().message;
}

TEST(StateRows, AuditRecordsComeBackBySequence) {
  Replica r;
  int next_uuid = 1;
  for (int64_t seq : {3, 1, 2}) {
    state::AuditRecord a;
    a.sequence = seq;
    a.principal = "user:" + std::to_string(seq);
    a.action = "ec2:DescribeSecurityGroups";
    a.result = "allowed";
    const Json op = state::auditInsertOperation(a);
    EXPECT_EQ(op["op"], "insert");
    EXPECT_EQ(op["table"], "Audit");
    ASSERT_TRUE(applyOperations(r, Json::array({op}), next_uuid));
  }
  const auto records = state::auditRecords(r);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].sequence, 1);
  EXPECT_EQ(records[2].principal, "user:3");
  EXPECT_EQ(records[1].action, "ec2:DescribeSecurityGroups");
}

// ---- StateStore over a fake client --------------------------------------------------------

Json vpcUpdate(int64_t generation) {
  return Json{{"VPC", {{"v1", {{"new", {{"id", "vpc-1"}, {"generation", generation}}}}}}}};
}

TEST(StateStoreFake, CommitWaitsForItsGenerationAndReportsConflicts) {
  auto client = std::make_unique<ovs::FakeOvsdbClient>();
  auto* fake = client.get();
  fake->monitor_initial = vpcUpdate(4);
  state::StateStore store(std::move(client));
  auto polled = store.poll(std::chrono::milliseconds(0));
  ASSERT_TRUE(polled) << polled.error().message;
  EXPECT_EQ(store.generation(), 4);

  // A guard that fails: the client's error for operation 0 is a conflict.
  fake->transact_replies.push_back(makeError(
      "transaction on vpcguard failed: operation 0 (wait on VPC): timed out: \"where\" clause "
      "test failed"));
  auto conflict = store.commit(test::samplePolicy());
  ASSERT_TRUE(conflict) << conflict.error().message;
  EXPECT_EQ(conflict->status, state::StateStore::CommitStatus::kConflict);
  EXPECT_EQ(conflict->generation, 4);
  ASSERT_EQ(fake->transactions.size(), 1u);
  EXPECT_EQ(fake->transactions[0][0]["rows"], Json::array({Json{{"generation", 4}}}));

  // Any other failure is an error.
  fake->transact_replies.push_back(makeError(
      "transaction on vpcguard failed: operation 5 (insert into Subnet): constraint violation"));
  EXPECT_FALSE(store.commit(test::samplePolicy()));

  // Success: the extra operations ride along, and the commit returns once the monitor has
  // delivered generation 5.
  fake->transact_replies.push_back(Json::array());
  fake->pending_updates.push_back(ovs::OvsdbUpdate{"vpcguard-state", vpcUpdate(5)});
  const Json audit = Json::array({Json{{"op", "comment"}, {"comment", "x"}}});
  auto ok = store.commit(test::samplePolicy(), audit);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->status, state::StateStore::CommitStatus::kCommitted);
  EXPECT_EQ(ok->generation, 5);
  EXPECT_EQ(store.generation(), 5);
  EXPECT_EQ(fake->transactions.back().back(), audit[0]);
  EXPECT_EQ(fake->monitor_id, "vpcguard-state");
}

TEST(StateStoreFake, LostConnectionIsAnError) {
  auto client = std::make_unique<ovs::FakeOvsdbClient>();
  client->is_connected = false;
  state::StateStore store(std::move(client));
  EXPECT_FALSE(store.poll(std::chrono::milliseconds(0)));
}

}  // namespace
}  // namespace vpcguard
