// Traffic mirroring in the translator (filter flows, session order, copies) and its host plan
// (routes of local targets, remote endpoints, port mirrors). Real packets: e2e/mirror_e2e_test.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "mirror/host_plan.h"
#include "tests/harness/sample_policy.h"
#include "translator/incremental.h"
#include "translator/mirror.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard {
namespace {

using test::cidr;
using test::ip;

constexpr int kTunnelPort = 99;

model::TrafficMirrorFilterRule rule(int number, bool accept, int proto, const char* src,
                                    const char* dst) {
  model::TrafficMirrorFilterRule r;
  r.rule_number = number;
  r.accept = accept;
  r.protocol = proto;
  r.source_cidr_block = cidr(src);
  r.destination_cidr_block = cidr(dst);
  return r;
}

// eni-web1 mirrored to eni-bastion (local) by session 1 and to 192.0.2.2 by session 2.
model::Policy mirroredPolicy() {
  auto p = test::samplePolicy();
  model::TrafficMirrorTarget local;
  local.id = "tmt-local";
  local.network_interface_id = "eni-bastion";
  model::TrafficMirrorTarget remote;
  remote.id = "tmt-remote";
  remote.vxlan_remote_ip = ip("192.0.2.2");
  p.traffic_mirror_targets = {local, remote};
  model::TrafficMirrorFilter web;
  web.id = "tmf-web";
  auto http = rule(100, true, model::kProtoTcp, "0.0.0.0/0", "0.0.0.0/0");
  http.destination_port_range = model::PortRange{80, 80};
  auto ssh = rule(50, false, model::kProtoTcp, "0.0.0.0/0", "0.0.0.0/0");
  ssh.destination_port_range = model::PortRange{22, 22};
  web.ingress_rules = {http, ssh};
  web.egress_rules = {rule(10, true, model::kProtoAll, "0.0.0.0/0", "10.0.2.0/24")};
  model::TrafficMirrorFilter all;
  all.id = "tmf-all";
  all.ingress_rules = {rule(1, true, model::kProtoAll, "0.0.0.0/0", "0.0.0.0/0")};
  all.egress_rules = {rule(1, true, model::kProtoUdp, "0.0.0.0/0", "0.0.0.0/0")};
  p.traffic_mirror_filters = {web, all};
  model::TrafficMirrorSession first;
  first.id = "tms-1";
  first.network_interface_id = "eni-web1";
  first.traffic_mirror_target_id = "tmt-local";
  first.traffic_mirror_filter_id = "tmf-web";
  first.session_number = 1;
  first.packet_length = 100;
  first.virtual_network_id = 4242;
  model::TrafficMirrorSession second = first;
  second.id = "tms-2";
  second.traffic_mirror_target_id = "tmt-remote";
  second.traffic_mirror_filter_id = "tmf-all";
  second.session_number = 7;
  second.packet_length.reset();
  second.virtual_network_id = 77;
  // In config order the later session comes first: order must come from session numbers.
  p.traffic_mirror_sessions = {second, first};
  return p;
}

TranslateInput inputFor(const model::Policy& p, bool tunnel = true) {
  TranslateInput in;
  in.policy = &p;
  in.interface_index = *assignInterfaceIndices(p, {});
  int port = 1;
  for (const auto& e : p.network_interfaces) {
    in.ofports[e.id] = port++;
  }
  if (tunnel) {
    in.ofports[pipeline::kMirrorTunnelKey] = kTunnelPort;
  }
  in.generation = 3;
  return in;
}

std::vector<Flow> inTable(const std::vector<Flow>& flows, uint8_t table) {
  std::vector<Flow> out;
  std::copy_if(flows.begin(), flows.end(), std::back_inserter(out),
               [&](const Flow& f) { return f.table == table; });
  return out;
}

const Flow* find(const std::vector<Flow>& flows, const std::string& match_part) {
  auto it = std::find_if(flows.begin(), flows.end(), [&](const Flow& f) {
    return f.match.find(match_part) != std::string::npos;
  });
  return it == flows.end() ? nullptr : &*it;
}

TEST(MirrorFlows, AcceptedPacketsReachTheMirrorTablesOnBothSides) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t) << t.error().message;
  // The egress side: NACL outbound allows and the same-subnet skip; the ingress side: delivery.
  size_t egress = 0;
  size_t ingress = 0;
  for (const auto& f : t->flows) {
    egress += f.actions.find("resubmit(,100)") != std::string::npos ? 1U : 0U;
    ingress += f.actions.find("resubmit(,101)") != std::string::npos ? 1U : 0U;
  }
  EXPECT_GT(egress, 1U);
  EXPECT_EQ(ingress, 3U * 3U);  // three delivery flows per attached interface
  // Without a session the mirror tables have their default only.
  EXPECT_EQ(inTable(t->flows, pipeline::kMirrorEgress).size(), 1U);
  EXPECT_EQ(inTable(t->flows, pipeline::kMirrorIngress).size(), 1U);
}

TEST(MirrorFlows, RoutedDeliveryIsMirroredAfterTheRewrite) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  for (const auto& f : inTable(t->flows, pipeline::kOutput)) {
    if (f.actions.find("dec_ttl") == std::string::npos) {
      continue;
    }
    EXPECT_LT(f.actions.find("set_field:"), f.actions.find("resubmit(,101)")) << f.actions;
    EXPECT_LT(f.actions.find("dec_ttl"), f.actions.find("resubmit(,97)")) << f.actions;
  }
}

TEST(MirrorFlows, NoTunnelPortNoCopies) {
  auto p = mirroredPolicy();
  auto t = translate(inputFor(p, false));
  ASSERT_TRUE(t);
  EXPECT_EQ(inTable(t->flows, pipeline::kMirrorEgress).size(), 1U);
  EXPECT_EQ(inTable(t->flows, pipeline::kMirrorIngress).size(), 1U);
}

TEST(MirrorFlows, SessionsInSessionNumberOrderWithRulesInRuleOrder) {
  auto p = mirroredPolicy();
  auto in = inputFor(p);
  auto t = translate(in);
  ASSERT_TRUE(t) << t.error().message;
  const uint16_t web = in.interface_index.at("eni-web1");
  const auto ingress = inTable(t->flows, pipeline::kMirrorIngress);
  const std::string rank0 = "reg1=" + std::to_string(web) + ",reg10=0";
  const std::string rank1 = "reg1=" + std::to_string(web) + ",reg10=1";

  // Rank 0 is session 1 (tmf-web): ssh (rule 50) rejects before http (rule 100) accepts.
  const Flow* ssh = find(ingress, rank0 + ",tcp,tp_dst=22");
  ASSERT_NE(ssh, nullptr);
  EXPECT_EQ(ssh->priority, pipeline::kMirrorRuleBasePriority - 50);
  EXPECT_EQ(ssh->actions, "set_field:1->reg10,resubmit(,101)");
  const Flow* http = find(ingress, rank0 + ",tcp,tp_dst=80");
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->priority, pipeline::kMirrorRuleBasePriority - 100);
  EXPECT_EQ(http->actions,
            "clone(set_field:0x76670001->pkt_mark,set_field:0x1092->tun_id,"
            "set_field:10.0.1.20->tun_dst,output(port=99,max_len=100))");
  // No rule matched in session 1: session 2.
  const Flow* miss0 = find(ingress, rank0);
  ASSERT_NE(miss0, nullptr);
  EXPECT_EQ(std::count_if(ingress.begin(), ingress.end(),
                          [&](const Flow& f) {
                            return f.match == rank0 && f.priority == pipeline::kMirrorMissPriority &&
                                   f.actions == "set_field:1->reg10,resubmit(,101)";
                          }),
            1);
  // Rank 1 is session 7 (tmf-all, whole packets up to the MTU, to the remote endpoint); the last session's
  // miss ends the search.
  const Flow* all = find(ingress, rank1 + ",ip");
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(all->actions,
            "clone(set_field:0x4d->tun_id,set_field:192.0.2.2->tun_dst,output(port=99,max_len=1464))");
  EXPECT_EQ(std::count_if(ingress.begin(), ingress.end(),
                          [&](const Flow& f) {
                            return f.match == rank1 && f.priority == pipeline::kMirrorMissPriority &&
                                   f.actions == "drop";
                          }),
            1);
  // Egress rules of session 1: destination CIDR; session 2 egress: UDP only.
  const auto egress = inTable(t->flows, pipeline::kMirrorEgress);
  const std::string erank0 = "reg0=" + std::to_string(web) + ",reg10=0";
  EXPECT_NE(find(egress, erank0 + ",ip,nw_dst=10.0.2.0/24"), nullptr);
  EXPECT_NE(find(egress, "reg0=" + std::to_string(web) + ",reg10=1,udp"), nullptr);
  // Other interfaces have no mirror flows.
  for (const auto& f : egress) {
    EXPECT_TRUE(f.match.empty() || f.match.starts_with("reg0=" + std::to_string(web) + ","))
        << f.match;
  }
}

TEST(MirrorFlows, PortRangesAndOtherProtocols) {
  auto p = mirroredPolicy();
  auto& f = p.traffic_mirror_filters[1];
  auto ranged = rule(2, true, model::kProtoUdp, "10.0.0.0/16", "0.0.0.0/0");
  ranged.source_port_range = model::PortRange{1024, 65535};
  ranged.destination_port_range = model::PortRange{53, 53};
  auto gre = rule(3, true, 47, "0.0.0.0/0", "0.0.0.0/0");
  auto v6 = rule(4, true, model::kProtoTcp, "::/0", "2600:1f18::/32");
  f.ingress_rules = {ranged, gre, v6};
  auto in = inputFor(p);
  auto t = translate(in);
  ASSERT_TRUE(t);
  const auto ingress = inTable(t->flows, pipeline::kMirrorIngress);
  size_t ranged_flows = 0;
  for (const auto& fl : ingress) {
    ranged_flows += fl.match.find("udp,nw_src=10.0.0.0/16,tp_src=") != std::string::npos ? 1U : 0U;
  }
  EXPECT_EQ(ranged_flows, 6U);  // 1024-65535 is six masks, times one destination port
  EXPECT_NE(find(ingress, "udp,nw_src=10.0.0.0/16,tp_src=0x400/0xfc00,tp_dst=53"), nullptr);
  EXPECT_NE(find(ingress, "reg10=1,ip,nw_proto=47"), nullptr);
  EXPECT_NE(find(ingress, "reg10=1,tcp6,ipv6_dst=2600:1f18::/32"), nullptr);
}

TEST(MirrorFlows, VmsCannotReachTheMirrorHostSubnet) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  const auto lookup = inTable(t->flows, pipeline::kL3Lookup);
  for (const char* m : {"ip,nw_dst=169.254.118.0/24", "arp,arp_spa=169.254.118.0/24",
                        "arp,arp_tpa=169.254.118.0/24"}) {
    const Flow* f = find(lookup, m);
    ASSERT_NE(f, nullptr) << m;
    // Above the link-local ARP responder (400), so the rest of 169.254.0.0/16 is unchanged.
    EXPECT_GT(f->priority, 450);
    EXPECT_NE(f->actions.find("goto_table:90"), std::string::npos) << f->actions;
  }
}

TEST(MirrorFlows, IncrementalMatchesFullTranslation) {
  auto p = mirroredPolicy();
  auto in = inputFor(p);
  IncrementalTranslator inc;
  ASSERT_TRUE(inc.update(in));
  const auto check = [&](const TranslateInput& input) {
    auto delta = inc.update(input);
    ASSERT_TRUE(delta) << delta.error().message;
    auto full = translate(input);
    ASSERT_TRUE(full);
    EXPECT_EQ(inc.flows(), full->flows);
  };
  // Remove the first session, change a rule, drop the tunnel port, bring it back.
  p.traffic_mirror_sessions.pop_back();
  check(in);
  p.traffic_mirror_filters[1].ingress_rules[0].accept = false;
  check(in);
  in.ofports.erase(pipeline::kMirrorTunnelKey);
  check(in);
  in.ofports[pipeline::kMirrorTunnelKey] = 5;
  check(in);
  p.traffic_mirror_sessions.clear();
  check(in);
}

TEST(MirrorHostPlan, LocalTargetsGetNextHopsRemoteOnesAreChecked) {
  auto p = mirroredPolicy();
  model::TrafficMirrorTarget unused;
  unused.id = "tmt-unused";
  unused.network_interface_id = "eni-db1";
  p.traffic_mirror_targets.push_back(unused);
  model::PortMirror span;
  span.id = "pm-1";
  span.network_interface_id = "eni-db1";
  span.output_port = "span0";
  p.port_mirrors = {span};
  auto plan = mirror::hostPlan(p);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(plan->tunnel);
  ASSERT_EQ(plan->local.size(), 1U);  // the unused target needs no route
  EXPECT_EQ(plan->local[0].address, ip("10.0.1.20"));
  EXPECT_EQ(plan->local[0].mac, "02:00:00:00:01:14");
  EXPECT_EQ(plan->local[0].next_hop, ip("169.254.118.2"));
  ASSERT_EQ(plan->remote.size(), 1U);
  EXPECT_EQ(plan->remote[0].address, ip("192.0.2.2"));
  ASSERT_EQ(plan->port_mirrors.size(), 1U);
  EXPECT_EQ(plan->port_mirrors[0].output_port, "span0");
  EXPECT_EQ(mirror::hostAddressWithPrefix(), "169.254.118.1/24");

  // A new target with a lower address does not move an existing target's next hop (its route
  // would be replaced, and copies in between have none); two targets on one interface share it.
  model::TrafficMirrorTarget db;
  db.id = "tmt-db";
  db.network_interface_id = "eni-db1";  // 10.0.2.10
  model::TrafficMirrorTarget db_again = db;
  db_again.id = "tmt-db-again";
  model::TrafficMirrorTarget web;
  web.id = "tmt-web";
  web.network_interface_id = "eni-web1";  // 10.0.1.10: below 10.0.1.20
  p.traffic_mirror_targets.insert(p.traffic_mirror_targets.end(), {db, db_again, web});
  auto session = p.traffic_mirror_sessions[0];
  for (const char* target : {"tmt-db", "tmt-db-again", "tmt-web"}) {
    session.id = std::string("tms-") + target;
    session.traffic_mirror_target_id = target;
    session.network_interface_id = "eni-bastion";
    p.traffic_mirror_sessions.push_back(session);
  }
  auto grown = mirror::hostPlan(p, plan->local);
  ASSERT_TRUE(grown) << grown.error().message;
  ASSERT_EQ(grown->local.size(), 3U);
  std::map<std::string, std::string> hops;
  for (const auto& r : grown->local) {
    hops[r.address.toString()] = r.next_hop.toString();
  }
  EXPECT_EQ(hops["10.0.1.20"], "169.254.118.2");  // kept
  EXPECT_EQ(hops["10.0.1.10"], "169.254.118.3");
  EXPECT_EQ(hops["10.0.2.10"], "169.254.118.4");

  p.traffic_mirror_sessions.clear();
  plan = mirror::hostPlan(p);
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan->tunnel);
  EXPECT_TRUE(plan->local.empty());
  EXPECT_EQ(plan->port_mirrors.size(), 1U);
}

}  // namespace
}  // namespace vpcguard
