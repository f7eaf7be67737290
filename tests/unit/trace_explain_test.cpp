// explain::trace(): verdicts, deciding rules, path stages and the switch probe, on the sample
// policy built in code and on configs/lab.toml; request errors; text and JSON rendering.
#include "explain/trace.h"

#include <algorithm>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/config_loader.h"
#include "tests/harness/paths.h"
#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"

namespace vpcguard::explain {
namespace {

using namespace pipeline;  // NOLINT(google-build-using-namespace): verdict constants

constexpr const char* kWebMac = "02:00:00:00:01:0a";
constexpr const char* kBastionMac = "02:00:00:00:01:14";
const std::vector<std::string> kNew2 = {"trk,new", "trk,new"};
const std::vector<std::string> kReply2 = {"trk,est,rpl", "trk,est,rpl"};

TraceRequest request(std::string from, std::string to, std::string protocol, bool reply = false) {
  TraceRequest r;
  r.from = std::move(from);
  r.to = std::move(to);
  r.protocol = std::move(protocol);
  r.reply = reply;
  return r;
}

TraceResult mustTrace(const model::Policy& policy, const TraceRequest& r) {
  auto result = trace(policy, r);
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
  return result ? *result : TraceResult{};
}

std::vector<std::string> stagesOf(const TraceResult& r) {
  std::vector<std::string> out;
  for (const auto& s : r.steps) {
    out.push_back(s.stage);
  }
  return out;
}

// The first step of a stage; a failing placeholder when there is none.
TraceStep stepOf(const TraceResult& r, std::string_view stage) {
  for (const auto& s : r.steps) {
    if (s.stage == stage) {
      return s;
    }
  }
  ADD_FAILURE() << "no step " << stage << " in the path";
  return TraceStep{};
}

std::vector<TraceStep> stepsOf(const TraceResult& r, std::string_view stage) {
  std::vector<TraceStep> out;
  std::copy_if(r.steps.begin(), r.steps.end(), std::back_inserter(out),
               [&](const TraceStep& s) { return s.stage == stage; });
  return out;
}

// ---- verdicts on the sample policy, table-driven ----------------------------------------

struct VerdictCase {
  const char* name;
  TraceRequest req;
  Verdict verdict;
  uint32_t drop_verdict;  // 0 when allowed (or dropped without a reg4 verdict)
  const char* stage;      // the deciding stage
  const char* decision;
  const char* rule;  // the deciding rule's exact text ("" = none)
  size_t ct_passes;
};
void PrintTo(const VerdictCase& c, std::ostream* os) { *os << c.name; }

class SampleVerdicts : public ::testing::TestWithParam<VerdictCase> {};

TEST_P(SampleVerdicts, DecideAsThePipeline) {
  model::Policy policy = test::samplePolicy();
  // An explicit deny before the allow entries of acl-private inbound.
  policy.network_acls[1].entries.push_back(
      test::naclEntry(90, false, model::kProtoTcp, false, "0.0.0.0/0", model::PortRange{23, 23}));
  // Listed after rule 100 (allow tcp 5432 from 10.0.1.0/24), numbered before it.
  policy.network_acls[1].entries.push_back(test::naclEntry(
      95, false, model::kProtoTcp, false, "10.0.1.20/32", model::PortRange{5432, 5432}));
  const VerdictCase& c = GetParam();
  const TraceResult r = mustTrace(policy, c.req);
  EXPECT_EQ(r.verdict, c.verdict) << r.summary;
  EXPECT_EQ(r.probe.delivered, c.verdict == Verdict::kAllow);
  EXPECT_EQ(r.probe.drop_verdict, c.drop_verdict);
  EXPECT_EQ(r.probe.ct_next.size(), c.ct_passes);
  const TraceStep s = stepOf(r, c.stage);
  EXPECT_EQ(s.decision, c.decision) << s.detail;
  EXPECT_EQ(s.rule, c.rule);
}

INSTANTIATE_TEST_SUITE_P(
    Trace, SampleVerdicts,
    ::testing::Values(
        VerdictCase{"AllowedBySgRule", request("eni-web1", "eni-db1", "tcp/5432"), Verdict::kAllow,
                    0, "sg-ingress", "tracked", "sg-db ingress #1: tcp 5432 from sg-web", 2},
        VerdictCase{"SgIngressMiss", request("eni-web1", "eni-db1", "tcp/22"), Verdict::kDrop,
                    kVerdictSgIngressMiss, "sg-ingress", "deny", "", 2},
        VerdictCase{"LowerNaclRuleNumberWins", request("eni-bastion", "eni-db1", "tcp/5432"),
                    Verdict::kDrop, kVerdictNaclInDeny | 95, "nacl-inbound", "deny",
                    "acl-private inbound rule 95: deny tcp 5432 from 10.0.1.20/32", 1},
        VerdictCase{"NaclInboundRuleDenies", request("eni-web1", "eni-db1", "tcp/23"),
                    Verdict::kDrop, kVerdictNaclInDeny | 90, "nacl-inbound", "deny",
                    "acl-private inbound rule 90: deny tcp 23 from 0.0.0.0/0", 1},
        VerdictCase{"NaclInboundStar", request("eni-web1", "eni-db1", "udp/53"), Verdict::kDrop,
                    kVerdictNaclInDeny | kNaclStarRule, "nacl-inbound", "deny",
                    "acl-private inbound rule *: deny all", 1},
        VerdictCase{"NaclOutboundStar", request("eni-db1", "eni-web1", "tcp/80"), Verdict::kDrop,
                    kVerdictNaclOutDeny | kNaclStarRule, "nacl-outbound", "deny",
                    "acl-private outbound rule *: deny all", 1},
        VerdictCase{"NaclOutboundAllows", request("eni-web1", "eni-db1", "tcp/5432"),
                    Verdict::kAllow, 0, "nacl-outbound", "allow",
                    "acl-default outbound rule 100: allow all to 0.0.0.0/0", 2},
        VerdictCase{"IcmpEchoAllowed", request("10.0.1.10", "10.0.2.10", "icmp"), Verdict::kAllow,
                    0, "sg-ingress", "tracked", "sg-db ingress #3: icmp from 10.0.0.0/16", 2},
        VerdictCase{"IcmpErrorIsInvalidWithoutConnection",
                    request("eni-web1", "eni-db1", "icmp/3/4"), Verdict::kDrop, kVerdictCtInvalid,
                    "sg-egress", "deny", "", 1},
        VerdictCase{"OtherProtocolHitsStar", request("eni-web1", "eni-db1", "47"), Verdict::kDrop,
                    kVerdictNaclInDeny | kNaclStarRule, "nacl-inbound", "deny",
                    "acl-private inbound rule *: deny all", 1},
        VerdictCase{"Ipv6NeedsItsOwnNaclEntry",
                    request("eni-web1", "2600:1f18:abcd:1202::10", "tcp/5432"), Verdict::kDrop,
                    kVerdictNaclInDeny | kNaclStarRule, "nacl-inbound", "deny",
                    "acl-private inbound rule *: deny all", 1},
        VerdictCase{"Icmpv6SameSubnetSgMiss", request("eni-web1", "eni-bastion", "icmpv6"),
                    Verdict::kDrop, kVerdictSgIngressMiss, "sg-ingress", "deny", "", 2},
        VerdictCase{"UnfilteredToOwnRouter", request("eni-web1", "10.0.1.1", "udp/53"),
                    Verdict::kAllow, 0, "unfiltered", "allow", "", 0},
        VerdictCase{"UnfilteredToMetadata", request("eni-db1", "169.254.169.254", "tcp/80"),
                    Verdict::kAllow, 0, "unfiltered", "allow", "", 0},
        VerdictCase{"OtherSubnetsRouterIsNoRoute", request("eni-web1", "10.0.2.1", "udp/53"),
                    Verdict::kDrop, kVerdictNoRoute, "lookup", "deny", "", 0},
        VerdictCase{"NoRoute", request("eni-web1", "10.9.9.9", "tcp/80"), Verdict::kDrop,
                    kVerdictNoRoute, "lookup", "deny", "", 0},
        VerdictCase{"MirrorHostSubnetIsNoRoute", request("eni-web1", "169.254.118.5", "tcp/80"),
                    Verdict::kDrop, kVerdictNoRoute, "lookup", "deny", "", 0},
        VerdictCase{"HostFromLinkLocal", request("169.254.169.254", "eni-web1", "tcp/80"),
                    Verdict::kAllow, 0, "unfiltered", "allow", "", 0},
        VerdictCase{"HostFromOwnSubnetReserved", request("10.0.2.2", "eni-db1", "udp/5000"),
                    Verdict::kAllow, 0, "unfiltered", "allow", "", 0},
        VerdictCase{"HostFromOtherSubnetReserved", request("10.0.1.2", "eni-db1", "udp/5000"),
                    Verdict::kDrop, 0, "unfiltered", "deny", "", 0}),
    [](const ::testing::TestParamInfo<VerdictCase>& p) { return p.param.name; });

// ---- path shape and probe ----------------------------------------------------------------

TEST(Trace, RoutedPathFollowsAwsOrderAndProbesTheRouter) {
  const TraceResult r = mustTrace(test::samplePolicy(), request("eni-web1", "eni-db1", "tcp/5432"));
  EXPECT_EQ(stagesOf(r),
            (std::vector<std::string>{"port-security", "lookup", "sg-egress", "nacl-outbound",
                                      "router", "nacl-inbound", "sg-ingress", "output"}));
  EXPECT_EQ(stepOf(r, "port-security").rule, "eni-web1: source/destination check on");
  EXPECT_EQ(stepOf(r, "sg-egress").rule, "sg-web egress #1: all to 0.0.0.0/0");
  EXPECT_EQ(stepOf(r, "nacl-inbound").rule,
            "acl-private inbound rule 100: allow tcp 5432 from 10.0.1.0/24");
  EXPECT_EQ(r.packet.src_interface, "eni-web1");
  EXPECT_EQ(r.packet.dst_interface, "eni-db1");
  EXPECT_EQ(r.packet.src_port, kDefaultSourcePort);
  EXPECT_EQ(r.probe.in_interface, "eni-web1");
  EXPECT_EQ(r.probe.flow,
            "tcp,dl_src=02:00:00:00:01:0a,dl_dst=02:76:67:00:00:01,nw_src=10.0.1.10,"
            "nw_dst=10.0.2.10,nw_ttl=64,tp_src=49152,tp_dst=5432,tcp_flags=syn");
  EXPECT_EQ(r.probe.ct_next, kNew2);
  EXPECT_EQ(r.probe.out_interface, "eni-db1");
  EXPECT_TRUE(r.probe.comparable);
  EXPECT_EQ(r.summary, "allow: eni-web1 -> eni-db1");
}

TEST(Trace, SameSubnetIsSwitchedAndSkipsNacls) {
  const TraceResult r =
      mustTrace(test::samplePolicy(), request("eni-web1", "eni-bastion", "tcp/22"));
  EXPECT_EQ(r.verdict, Verdict::kAllow);
  EXPECT_EQ(stepOf(r, "nacl-outbound").decision, "skip");
  EXPECT_EQ(stepOf(r, "nacl-inbound").decision, "skip");
  EXPECT_TRUE(stepsOf(r, "router").empty());
  EXPECT_NE(r.probe.flow.find(std::string("dl_dst=") + kBastionMac), std::string::npos)
      << r.probe.flow;
  EXPECT_NE(r.probe.flow.find(std::string("dl_src=") + kWebMac), std::string::npos);
  // sg-web's ingress opens port 80 only (tracked); eni-bastion's egress allows everything to
  // 0.0.0.0/0, so its 0.0.0.0/0 ingress rule for ssh is AWS-untracked.
  EXPECT_EQ(stepOf(r, "sg-egress").decision, "tracked");
  EXPECT_EQ(stepOf(r, "sg-ingress").decision, "untracked");
  EXPECT_EQ(stepOf(r, "sg-ingress").rule, "sg-bastion ingress #1: tcp 22 from 0.0.0.0/0");
}

TEST(Trace, StrictRevocationSaysChecked) {
  model::Policy policy = test::samplePolicy();
  policy.vpc.strict_revocation = true;
  const TraceResult r = mustTrace(policy, request("eni-web1", "eni-db1", "tcp/5432"));
  EXPECT_NE(stepOf(r, "sg-ingress").detail.find("checked"), std::string::npos);
  const TraceResult loose =
      mustTrace(test::samplePolicy(), request("eni-web1", "eni-db1", "tcp/5432"));
  EXPECT_EQ(stepOf(loose, "sg-ingress").detail.find("checked"), std::string::npos);
}

TEST(Trace, OtherMatchingRulesAreCounted) {
  model::Policy policy = test::samplePolicy();
  auto& db = policy.security_groups[3];
  ASSERT_EQ(db.id, "sg-db");
  model::SecurityGroupRule wide;
  wide.ip_protocol = model::kProtoTcp;
  wide.ports = model::PortRange{5000, 6000};
  wide.peer = test::cidr("10.0.1.0/24");
  db.ingress.push_back(wide);
  const TraceResult r = mustTrace(policy, request("eni-web1", "eni-db1", "tcp/5432"));
  const TraceStep s = stepOf(r, "sg-ingress");
  EXPECT_EQ(s.rule, "sg-db ingress #1: tcp 5432 from sg-web");
  EXPECT_NE(s.detail.find("1 other rule also allows it (sg-db ingress #4)"), std::string::npos)
      << s.detail;
}

TEST(Trace, Ipv6AndIcmpProbeSyntax) {
  const model::Policy policy = test::samplePolicy();
  const TraceResult v6 = mustTrace(policy, request("eni-web1", "eni-bastion", "icmpv6"));
  EXPECT_EQ(v6.probe.flow,
            "icmp6,dl_src=02:00:00:00:01:0a,dl_dst=02:00:00:00:01:14,"
            "ipv6_src=2600:1f18:abcd:1201::10,ipv6_dst=2600:1f18:abcd:1201::20,nw_ttl=64,"
            "icmpv6_type=128,icmpv6_code=0");
  const TraceResult udp = mustTrace(policy, request("eni-web1", "eni-db1", "udp/53"));
  EXPECT_NE(udp.probe.flow.find("udp,"), std::string::npos);
  EXPECT_NE(udp.probe.flow.find("udp_src=49152,udp_dst=53"), std::string::npos) << udp.probe.flow;
  const TraceResult gre = mustTrace(policy, request("eni-web1", "eni-db1", "47"));
  EXPECT_EQ(gre.probe.flow.rfind("ip,", 0), 0U) << gre.probe.flow;
  EXPECT_NE(gre.probe.flow.find("nw_proto=47"), std::string::npos);
  const TraceResult icmp = mustTrace(policy, request("eni-web1", "eni-db1", "icmp/3/4"));
  EXPECT_NE(icmp.probe.flow.find("icmp_type=3,icmp_code=4"), std::string::npos);
  EXPECT_EQ(icmp.probe.ct_next, (std::vector<std::string>{"trk,inv"}));
}

TEST(Trace, NeighbourAdvertisementFailsPortSecurityUnlessTheCheckIsOff) {
  model::Policy policy = test::samplePolicy();
  const TraceResult r = mustTrace(policy, request("eni-web1", "eni-bastion", "icmpv6/136"));
  EXPECT_EQ(stepOf(r, "port-security").decision, "deny");
  EXPECT_EQ(r.probe.drop_verdict, kVerdictPortSecurity);
  policy.network_interfaces[0].source_dest_check = false;
  const TraceResult off = mustTrace(policy, request("eni-web1", "eni-bastion", "icmpv6/136"));
  EXPECT_EQ(stepOf(off, "port-security").decision, "allow");
  EXPECT_EQ(off.probe.drop_verdict, kVerdictCtInvalid);  // not a query conntrack can start with
}

TEST(Trace, SourcePortIsUsed) {
  TraceRequest r = request("eni-web1", "eni-db1", "tcp/5432");
  r.source_port = 40000;
  const TraceResult t = mustTrace(test::samplePolicy(), r);
  EXPECT_EQ(t.packet.src_port, 40000);
  EXPECT_NE(t.probe.flow.find("tp_src=40000"), std::string::npos);
}

TEST(Trace, UnfilteredGoesToTheHostWithoutConntrack) {
  const TraceResult r = mustTrace(test::samplePolicy(), request("eni-web1", "10.0.1.1", "icmp"));
  EXPECT_EQ(r.verdict, Verdict::kAllow);
  EXPECT_EQ(r.probe.out_interface, "LOCAL");
  EXPECT_TRUE(r.probe.ct_next.empty());
  EXPECT_TRUE(stepsOf(r, "sg-egress").empty());
  EXPECT_NE(r.probe.flow.find("dl_dst=02:76:67:00:00:01"), std::string::npos) << r.probe.flow;
}

TEST(Trace, FromTheHostEntersOnLocal) {
  const TraceResult r =
      mustTrace(test::samplePolicy(), request("169.254.169.254", "eni-web1", "tcp/80"));
  EXPECT_EQ(r.probe.in_interface, "LOCAL");
  EXPECT_EQ(r.packet.src_interface, "");
  EXPECT_NE(r.probe.flow.find("dl_src=02:76:67:00:00:01,dl_dst=02:00:00:00:01:0a"),
            std::string::npos)
      << r.probe.flow;
  EXPECT_EQ(r.probe.out_interface, "eni-web1");
}

// ---- replies -----------------------------------------------------------------------------

TEST(TraceReply, AllowedReplyIsEstablished) {
  const TraceResult r =
      mustTrace(test::samplePolicy(), request("eni-web1", "eni-db1", "tcp/5432", true));
  EXPECT_EQ(r.verdict, Verdict::kAllow) << r.summary;
  EXPECT_EQ(r.packet.src.toString(), "10.0.2.10");
  EXPECT_EQ(r.packet.src_port, 5432);
  EXPECT_EQ(r.packet.dst_port, kDefaultSourcePort);
  EXPECT_EQ(stepOf(r, "connection").decision, "established");
  EXPECT_EQ(stepOf(r, "sg-egress").decision, "established");
  EXPECT_EQ(stepOf(r, "sg-egress").rule, "sg-db ingress #1: tcp 5432 from sg-web");
  EXPECT_EQ(stepOf(r, "sg-ingress").decision, "established");
  EXPECT_EQ(stepOf(r, "nacl-outbound").rule,
            "acl-private outbound rule 100: allow tcp 1024-65535 to 10.0.1.0/24");
  EXPECT_EQ(r.probe.in_interface, "eni-db1");
  EXPECT_EQ(r.probe.out_interface, "eni-web1");
  EXPECT_EQ(r.probe.ct_next, kReply2);
  EXPECT_NE(r.probe.flow.find("tp_src=5432,tp_dst=49152,tcp_flags=ack"), std::string::npos)
      << r.probe.flow;
}

TEST(TraceReply, StatelessNaclWithoutEphemeralPortsDropsIt) {
  model::Policy policy = test::samplePolicy();
  auto& entries = policy.network_acls[1].entries;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const model::NetworkAclEntry& e) {
                                 return e.egress && e.rule_number == 100;
                               }),
                entries.end());
  const TraceResult r = mustTrace(policy, request("eni-web1", "eni-db1", "tcp/5432", true));
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(stepOf(r, "sg-egress").decision, "established");
  EXPECT_EQ(stepOf(r, "nacl-outbound").rule, "acl-private outbound rule *: deny all");
  EXPECT_EQ(r.probe.drop_verdict, kVerdictNaclOutDeny | kNaclStarRule);
  EXPECT_EQ(r.probe.ct_next, (std::vector<std::string>{"trk,est,rpl"}));
  EXPECT_TRUE(r.probe.comparable);
}

TEST(TraceReply, NoConnectionWhenTheOriginalIsDropped) {
  const TraceResult r =
      mustTrace(test::samplePolicy(), request("eni-bastion", "eni-db1", "tcp/5432", true));
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(stagesOf(r), (std::vector<std::string>{"connection"}));
  EXPECT_EQ(stepOf(r, "connection").decision, "none");
  EXPECT_FALSE(r.probe.comparable);
  EXPECT_FALSE(r.probe.delivered);
  EXPECT_EQ(r.probe.drop_verdict, 0U);
  EXPECT_TRUE(r.probe.ct_next.empty());
  EXPECT_EQ(r.probe.in_interface, "eni-db1");
}

// DHCPv6 ports are never filtered (to the host), but the answer from db1 with the ports swapped
// is not DHCPv6: a new packet to conntrack, evaluated against the rules.
TEST(TraceReply, UnfilteredOriginalHasNoConnectionToReplyOn) {
  TraceRequest r = request("eni-web1", "2600:1f18:abcd:1202::10", "udp/547", true);
  r.source_port = 546;
  const TraceResult t = mustTrace(test::samplePolicy(), r);
  EXPECT_EQ(stepOf(t, "connection").decision, "skip");
  EXPECT_EQ(stepOf(t, "sg-egress").decision, "tracked");
  EXPECT_EQ(t.probe.drop_verdict, kVerdictNaclOutDeny | kNaclStarRule);
  EXPECT_EQ(t.probe.ct_next, (std::vector<std::string>{"trk,new"}));
  EXPECT_TRUE(t.probe.comparable);
  r.reply = false;
  const TraceResult original = mustTrace(test::samplePolicy(), r);
  EXPECT_EQ(original.probe.out_interface, "LOCAL");
  EXPECT_TRUE(original.probe.ct_next.empty());
}

TEST(TraceReply, IcmpEchoReplyType) {
  const TraceResult r =
      mustTrace(test::samplePolicy(), request("eni-web1", "eni-db1", "icmp", true));
  EXPECT_EQ(r.verdict, Verdict::kAllow) << r.summary;
  EXPECT_EQ(r.packet.icmp_type, 0);
  EXPECT_EQ(stepOf(r, "nacl-outbound").rule,
            "acl-private outbound rule 110: allow icmp to 10.0.0.0/16");
}

// ---- flow logs and mirroring -------------------------------------------------------------

model::FlowLog flowLog(const char* id, const char* resource, model::FlowLogTrafficType type) {
  model::FlowLog log;
  log.id = id;
  log.resource_id = resource;
  log.traffic_type = type;
  log.log_destination = "file:///tmp/unused";
  return log;
}

std::vector<std::string> details(const std::vector<TraceStep>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) {
    out.push_back(s.rule + ": " + s.detail.substr(0, s.detail.find(" (")));
  }
  return out;
}

TEST(TraceEffects, FlowLogRecordsOnTheSidesThatSawIt) {
  model::Policy policy = test::samplePolicy();
  policy.flow_logs = {flowLog("fl-vpc", "vpc-lab", model::FlowLogTrafficType::kAll),
                      flowLog("fl-db", "eni-db1", model::FlowLogTrafficType::kReject)};
  const TraceResult ok = mustTrace(policy, request("eni-web1", "eni-db1", "tcp/5432"));
  EXPECT_EQ(details(stepsOf(ok, "flow-log")),
            (std::vector<std::string>{"fl-vpc: egress ACCEPT record on eni-web1",
                                      "fl-vpc: ingress ACCEPT record on eni-db1"}));
  // Dropped by the receiver: it left the sender (egress ACCEPT), the receiver rejected it.
  const TraceResult in = mustTrace(policy, request("eni-bastion", "eni-db1", "tcp/5432"));
  EXPECT_EQ(details(stepsOf(in, "flow-log")),
            (std::vector<std::string>{"fl-vpc: egress ACCEPT record on eni-bastion",
                                      "fl-vpc: ingress REJECT record on eni-db1",
                                      "fl-db: ingress REJECT record on eni-db1"}));
  // Dropped by the sender's NACL: the sender's REJECT only (both logs cover the sender).
  const TraceResult out = mustTrace(policy, request("eni-db1", "eni-web1", "tcp/80"));
  EXPECT_EQ(details(stepsOf(out, "flow-log")),
            (std::vector<std::string>{"fl-vpc: egress REJECT record on eni-db1",
                                      "fl-db: egress REJECT record on eni-db1"}));
  // An ACCEPT-only log records no rejects.
  policy.flow_logs = {flowLog("fl-ok", "subnet-private", model::FlowLogTrafficType::kAccept)};
  EXPECT_TRUE(
      stepsOf(mustTrace(policy, request("eni-db1", "eni-web1", "tcp/80")), "flow-log").empty());
  // Never filtered, never logged; no route is no SG/NACL verdict.
  EXPECT_TRUE(
      stepsOf(mustTrace(policy, request("eni-web1", "10.0.1.1", "icmp")), "flow-log").empty());
  EXPECT_TRUE(
      stepsOf(mustTrace(policy, request("eni-web1", "10.9.9.9", "icmp")), "flow-log").empty());
}

TEST(TraceEffects, MirrorCopiesByTheFirstAcceptingSession) {
  model::Policy policy = test::samplePolicy();
  model::TrafficMirrorTarget target;
  target.id = "tmt-appliance";
  target.vxlan_remote_ip = test::ip("192.0.2.2");
  policy.traffic_mirror_targets = {target};
  const auto rule = [](int number, bool accept, int protocol, std::optional<model::PortRange> dst) {
    model::TrafficMirrorFilterRule r;
    r.rule_number = number;
    r.accept = accept;
    r.protocol = protocol;
    r.source_cidr_block = test::cidr("0.0.0.0/0");
    r.destination_cidr_block = test::cidr("0.0.0.0/0");
    r.destination_port_range = dst;
    return r;
  };
  model::TrafficMirrorFilter no_ssh;
  no_ssh.id = "tmf-no-ssh";
  no_ssh.egress_rules = {rule(200, true, model::kProtoAll, std::nullopt),
                         rule(100, false, model::kProtoTcp, model::PortRange{22, 22})};
  model::TrafficMirrorFilter ssh;
  ssh.id = "tmf-ssh";
  ssh.egress_rules = {rule(100, true, model::kProtoTcp, model::PortRange{22, 22})};
  policy.traffic_mirror_filters = {no_ssh, ssh};
  const auto session = [](const char* id, const char* filter, int number, uint32_t vni) {
    model::TrafficMirrorSession s;
    s.id = id;
    s.network_interface_id = "eni-web1";
    s.traffic_mirror_target_id = "tmt-appliance";
    s.traffic_mirror_filter_id = filter;
    s.session_number = number;
    s.virtual_network_id = vni;
    return s;
  };
  policy.traffic_mirror_sessions = {session("tms-ssh", "tmf-ssh", 2, 7),
                                    session("tms-main", "tmf-no-ssh", 1, 42)};

  const TraceResult db = mustTrace(policy, request("eni-web1", "eni-db1", "tcp/5432"));
  auto copies = stepsOf(db, "mirror");
  ASSERT_EQ(copies.size(), 1U);
  EXPECT_EQ(copies[0].decision, "copy");
  EXPECT_EQ(copies[0].rule, "tms-main (session 1) filter tmf-no-ssh egress rule 200: accept");
  EXPECT_NE(copies[0].detail.find("VNI 42"), std::string::npos) << copies[0].detail;
  EXPECT_NE(copies[0].detail.find("192.0.2.2"), std::string::npos);

  // Session 1 rejects ssh (rule 100 first), session 2 takes it.
  const TraceResult ssh_to_bastion =
      mustTrace(policy, request("eni-web1", "eni-bastion", "tcp/22"));
  copies = stepsOf(ssh_to_bastion, "mirror");
  ASSERT_EQ(copies.size(), 1U);
  EXPECT_EQ(copies[0].rule, "tms-ssh (session 2) filter tmf-ssh egress rule 100: accept");

  // The copy is made when the packet leaves its subnet, so a later NACL inbound drop does not
  // undo it (the egress hook sits in NACL_OUT).
  const TraceResult dropped = mustTrace(policy, request("eni-web1", "eni-db1", "udp/53"));
  EXPECT_EQ(dropped.verdict, Verdict::kDrop);
  EXPECT_EQ(stepsOf(dropped, "mirror").size(), 1U);
  // Unfiltered traffic is never mirrored.
  EXPECT_TRUE(
      stepsOf(mustTrace(policy, request("eni-web1", "10.0.1.1", "icmp")), "mirror").empty());
}

// ---- request errors ----------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  TraceRequest req;
  const char* message;  // a part of the error message
};

// gtest prints a parameter in the test's listing; the name is what identifies a case (the
// default byte dump includes pointers, which would make ctest's test names differ per build).
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class TraceErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(TraceErrors, AreClear) {
  const ErrorCase& c = GetParam();
  auto r = trace(test::samplePolicy(), c.req);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
}

TraceRequest withSourcePort(TraceRequest r, int port) {
  r.source_port = port;
  return r;
}

INSTANTIATE_TEST_SUITE_P(
    Trace, TraceErrors,
    ::testing::Values(
        ErrorCase{"UnknownInterface", request("eni-x", "eni-db1", "tcp/80"),
                  "--from eni-x: no such interface in the policy (interfaces: eni-web1, "
                  "eni-bastion, eni-db1)"},
        ErrorCase{"UnknownTo", request("eni-web1", "db", "tcp/80"),
                  "--to db: no such interface in the policy"},
        ErrorCase{"TcpNeedsPort", request("eni-web1", "eni-db1", "tcp"),
                  "protocol 'tcp': a port is needed, e.g. tcp/443"},
        ErrorCase{"PortOutOfRange", request("eni-web1", "eni-db1", "udp/70000"),
                  "protocol 'udp/70000': '70000' is not a port (0-65535)"},
        ErrorCase{"AllIsNoPacket", request("eni-web1", "eni-db1", "all"),
                  "protocol 'all': 'all' is not a packet"},
        ErrorCase{"UnknownProtocol", request("eni-web1", "eni-db1", "sctp/80"),
                  "protocol 'sctp/80': unknown protocol"},
        ErrorCase{"BadIcmpType", request("eni-web1", "eni-db1", "icmp/300"),
                  "ICMP type '300' is not a number 0-255"},
        ErrorCase{"FamiliesDiffer", request("10.0.1.10", "2600:1f18:abcd:1202::10", "tcp/80"),
                  "families must match"},
        ErrorCase{"IcmpOverIpv6", request("eni-web1", "2600:1f18:abcd:1202::10", "icmp"),
                  "protocol 'icmp' is IPv4, but the addresses are IPv6 (use icmpv6)"},
        ErrorCase{"SourceOwnedByNobody", request("10.0.1.99", "eni-db1", "tcp/80"),
                  "--from 10.0.1.99: no interface has this address"},
        ErrorCase{"SameInterface", request("eni-web1", "10.0.1.10", "tcp/80"), "are both eni-web1"},
        ErrorCase{"SourcePortForIcmp", withSourcePort(request("eni-web1", "eni-db1", "icmp"), 5),
                  "--sport 5: only tcp and udp have ports"},
        ErrorCase{"SourcePortOutOfRange",
                  withSourcePort(request("eni-web1", "eni-db1", "tcp/80"), 65536),
                  "--sport 65536: not a port"}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) { return p.param.name; });

TEST(TraceRequestErrors, InterfaceWithoutTheFamily) {
  model::Policy policy = test::samplePolicy();
  policy.network_interfaces[2].ipv6_addresses.clear();
  auto r = trace(policy, request("2600:1f18:abcd:1201::10", "eni-db1", "tcp/80"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "--to eni-db1: the interface has no IPv6 address");
}

// ---- rendering ---------------------------------------------------------------------------

TEST(TraceRender, TextHasPacketTableAndVerdict) {
  const model::Policy policy = test::samplePolicy();
  const std::string ok = renderText(mustTrace(policy, request("eni-web1", "eni-db1", "tcp/5432")));
  EXPECT_NE(ok.find("tcp 10.0.1.10:49152 -> 10.0.2.10:5432 (eni-web1 -> eni-db1)"),
            std::string::npos)
      << ok;
  EXPECT_NE(ok.find("sg-db ingress #1: tcp 5432 from sg-web"), std::string::npos);
  EXPECT_NE(ok.find("\nverdict: allow ("), std::string::npos) << ok;
  const std::string dropped =
      renderText(mustTrace(policy, request("eni-web1", "eni-db1", "udp/53")));
  EXPECT_NE(dropped.find("verdict: drop (at NACL inbound: acl-private inbound rule *)"),
            std::string::npos)
      << dropped;
  EXPECT_NE(dropped.find("reg4=0x06007fff"), std::string::npos) << dropped;
}

TEST(TraceRender, JsonHasVerdictPathAndProbe) {
  const TraceResult r = mustTrace(test::samplePolicy(), request("eni-web1", "eni-db1", "udp/53"));
  const auto doc = nlohmann::json::parse(renderJson(r));
  EXPECT_EQ(doc.at("verdict"), "drop");
  EXPECT_EQ(doc.at("summary"), r.summary);
  EXPECT_EQ(doc.at("packet").at("dst_port"), 53);
  ASSERT_EQ(doc.at("path").size(), r.steps.size());
  EXPECT_EQ(doc.at("path").back().at("stage"), "nacl-inbound");
  EXPECT_EQ(doc.at("path").back().at("rule"), "acl-private inbound rule *: deny all");
  EXPECT_EQ(doc.at("switch").at("drop_verdict"), kVerdictNaclInDeny | kNaclStarRule);
  EXPECT_EQ(doc.at("switch").at("flow"), r.probe.flow);
  const auto allowed = nlohmann::json::parse(
      renderJson(mustTrace(test::samplePolicy(), request("eni-web1", "eni-db1", "tcp/5432"))));
  EXPECT_EQ(allowed.at("verdict"), "allow");
  EXPECT_EQ(allowed.at("switch").at("out_interface"), "eni-db1");
}

// ---- configs/lab.toml --------------------------------------------------------------------

class LabTrace : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = config::loadPolicy(test::sourceDir() + "/configs/lab.toml");
    ASSERT_TRUE(loaded.has_value()) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
  }
  model::Policy policy_;
};

TEST_F(LabTrace, WebReachesDbThroughItsRules) {
  const TraceResult r = mustTrace(policy_, request("eni-web1", "eni-db1", "tcp/5432"));
  EXPECT_EQ(r.verdict, Verdict::kAllow);
  const TraceStep in = stepOf(r, "sg-ingress");
  EXPECT_EQ(in.rule, "sg-db ingress #1: tcp 5432 from sg-web");
  EXPECT_NE(in.location.find("lab.toml:"), std::string::npos) << in.location;
  EXPECT_EQ(stepOf(r, "nacl-inbound").rule,
            "acl-private inbound rule 100: allow tcp 5432 from 10.0.1.0/24");
}

TEST_F(LabTrace, SshToDbOnlyFromTheBastion) {
  const TraceResult bastion = mustTrace(policy_, request("eni-bastion", "eni-db1", "tcp/22"));
  EXPECT_EQ(bastion.verdict, Verdict::kAllow);
  EXPECT_EQ(stepOf(bastion, "sg-ingress").rule, "sg-db ingress #2: tcp 22 from sg-bastion");
  const TraceResult web = mustTrace(policy_, request("eni-web1", "eni-db1", "tcp/22"));
  EXPECT_EQ(web.verdict, Verdict::kDrop);
  EXPECT_EQ(stepOf(web, "nacl-inbound").decision, "allow");  // the NACL lets it in, the SG not
  EXPECT_EQ(web.probe.drop_verdict, kVerdictSgIngressMiss);
}

TEST_F(LabTrace, DbReachesHttpsOnlyOutbound) {
  const TraceResult https = mustTrace(policy_, request("eni-db1", "eni-web1", "tcp/443"));
  EXPECT_EQ(https.verdict, Verdict::kAllow) << https.summary;
  EXPECT_EQ(stepOf(https, "nacl-outbound").rule,
            "acl-private outbound rule 120: allow tcp 443 to 0.0.0.0/0");
  const TraceResult http = mustTrace(policy_, request("eni-db1", "eni-web1", "tcp/80"));
  EXPECT_EQ(http.probe.drop_verdict, kVerdictNaclOutDeny | kNaclStarRule);
}

TEST_F(LabTrace, ReplyToALowSourcePortIsDroppedByTheStatelessNacl) {
  TraceRequest r = request("eni-web1", "eni-db1", "tcp/5432", true);
  r.source_port = 80;
  const TraceResult t = mustTrace(policy_, r);
  EXPECT_EQ(t.verdict, Verdict::kDrop);
  EXPECT_EQ(stepOf(t, "connection").decision, "established");
  EXPECT_EQ(t.probe.drop_verdict, kVerdictNaclOutDeny | kNaclStarRule);
  r.source_port = 40000;  // an ephemeral port: rule 100 lets the reply out
  EXPECT_EQ(mustTrace(policy_, r).verdict, Verdict::kAllow);
}

TEST_F(LabTrace, PingFromWebIsAllowedByTheIcmpRule) {
  const TraceResult r = mustTrace(policy_, request("eni-web1", "eni-db1", "icmp/8"));
  EXPECT_EQ(r.verdict, Verdict::kAllow) << r.summary;
  EXPECT_EQ(stepOf(r, "sg-ingress").rule,
            "sg-db ingress #3: icmp type 8 code any from 10.0.0.0/16");
  const TraceResult other = mustTrace(policy_, request("eni-web1", "eni-db1", "icmp/13"));
  EXPECT_EQ(other.probe.drop_verdict, kVerdictSgIngressMiss);
}

}  // namespace
}  // namespace vpcguard::explain
