// The pipeline on a real switch: a table of AWS behaviours, each a packet traced with
// ofproto/trace (conntrack passes included) through the flows the translator made for the sample
// policy (tests/harness/sample_policy.h), with the policy changes the case needs.
// The case table leaves trailing fields (reg4, also) at their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/harness/assertions.h"
#include "tests/harness/policy_switch.h"
#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"

namespace vpcguard::test {
namespace {

constexpr const char* kWebMac = "02:00:00:00:01:0a";
constexpr const char* kBastionMac = "02:00:00:00:01:14";
constexpr const char* kDbMac = "02:00:00:00:02:0a";
constexpr const char* kRouter = pipeline::kRouterMac;
constexpr const char* kWeb = "10.0.1.10";
constexpr const char* kBastion = "10.0.1.20";
constexpr const char* kDb = "10.0.2.10";
constexpr const char* kWeb6 = "2600:1f18:abcd:1201::10";
constexpr const char* kBastion6 = "2600:1f18:abcd:1201::20";
constexpr const char* kDb6 = "2600:1f18:abcd:1202::10";

const std::vector<std::string> kNew = {"trk,new", "trk,new"};
const std::vector<std::string> kEst = {"trk,est", "trk,est"};
const std::vector<std::string> kReply = {"trk,est,rpl", "trk,est,rpl"};
const std::vector<std::string> kInvalid = {"trk,inv", "trk,inv"};

// An IPv4 L4 packet.
std::string v4(const char* proto, const char* src_mac, const char* dst_mac, const char* src,
               const char* dst, int sport, int dport) {
  std::string s = fmt::format("{},dl_src={},dl_dst={},nw_src={},nw_dst={},nw_ttl=64", proto,
                              src_mac, dst_mac, src, dst);
  if (std::string(proto) == "tcp") {
    s += fmt::format(",tp_src={},tp_dst={}", sport, dport);
  } else if (std::string(proto) == "udp") {  // ofproto/trace wants udp_* for UDP
    s += fmt::format(",udp_src={},udp_dst={}", sport, dport);
  }
  return s;
}
std::string v6(const char* proto, const char* src_mac, const char* dst_mac, const char* src,
               const char* dst, int sport, int dport) {
  std::string s = fmt::format("{},dl_src={},dl_dst={},ipv6_src={},ipv6_dst={},nw_ttl=64", proto,
                              src_mac, dst_mac, src, dst);
  if (std::string(proto) == "tcp6") {
    s += fmt::format(",tp_src={},tp_dst={}", sport, dport);
  } else if (std::string(proto) == "udp6") {
    s += fmt::format(",udp_src={},udp_dst={}", sport, dport);
  }
  return s;
}
std::string icmp4(const char* src_mac, const char* dst_mac, const char* src, const char* dst,
                  int type, int code) {
  return fmt::format("icmp,dl_src={},dl_dst={},nw_src={},nw_dst={},nw_ttl=64,icmp_type={},icmp_code={}",
                     src_mac, dst_mac, src, dst, type, code);
}

using Mutation = std::function<void(model::Policy&)>;

struct Case {
  std::string name;
  Mutation mutate;
  std::string from;    // ENI the packet enters from
  std::string packet;  // flow fields after in_port
  std::vector<std::string> ct;
  std::string to;      // ENI, "LOCAL", "IN_PORT", or "" = dropped
  uint32_t reg4 = 0;   // for drops: the verdict register (0 = not checked)
  std::string also;    // a substring the datapath actions must contain (e.g. "ttl=63")
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

model::SecurityGroup* group(model::Policy& p, const std::string& id) {
  for (auto& g : p.security_groups) {
    if (g.id == id) {
      return &g;
    }
  }
  return nullptr;
}
model::NetworkAcl* acl(model::Policy& p, const std::string& id) {
  for (auto& a : p.network_acls) {
    if (a.id == id) {
      return &a;
    }
  }
  return nullptr;
}
model::NetworkInterface* eni(model::Policy& p, const std::string& id) {
  for (auto& e : p.network_interfaces) {
    if (e.id == id) {
      return &e;
    }
  }
  return nullptr;
}

model::SecurityGroupRule rule(int proto, int from, int to, model::Peer peer) {
  model::SecurityGroupRule r;
  r.ip_protocol = proto;
  if (proto == model::kProtoTcp || proto == model::kProtoUdp) {
    r.ports = model::PortRange{from, to};
  } else if (proto == model::kProtoIcmp || proto == model::kProtoIcmpv6) {
    r.icmp = model::IcmpTypeCode{from, to};
  }
  r.peer = std::move(peer);
  return r;
}

// A second web server in the public subnet.
void addWeb2(model::Policy& p, std::vector<std::string> groups) {
  model::NetworkInterface e = *eni(p, "eni-web1");
  e.id = "eni-web2";
  e.mac_address = "02:00:00:00:01:0b";
  e.private_ip_addresses = {ip("10.0.1.11")};
  e.ipv6_addresses = {ip("2600:1f18:abcd:1201::11")};
  e.security_group_ids = std::move(groups);
  p.network_interfaces.push_back(e);
}

constexpr uint32_t kSgIn = pipeline::kVerdictSgIngressMiss;
constexpr uint32_t kSgOut = pipeline::kVerdictSgEgressMiss;
constexpr uint32_t kPortSec = pipeline::kVerdictPortSecurity;
constexpr uint32_t kNoRoute = pipeline::kVerdictNoRoute;
constexpr uint32_t kNaclOut = pipeline::kVerdictNaclOutDeny;
constexpr uint32_t kNaclIn = pipeline::kVerdictNaclInDeny;
constexpr uint32_t kStar = pipeline::kNaclStarRule;

std::vector<Case> cases() {
  using model::GroupRef;
  using model::kProtoAll;
  using model::kProtoIcmp;
  using model::kProtoTcp;
  using model::kProtoUdp;
  const Mutation none = [](model::Policy&) {};
  std::vector<Case> c = {
      // --- security groups, same subnet (no NACL) -------------------------------------------
      {"SgAllowsHttpFromAnywhere", none, "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 80), kNew, "eni-web1"},
      {"SgAllowsHttpsFromAnywhere", none, "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 443), kNew, "eni-web1"},
      {"SgDropsPortWithoutRule", none, "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 8080), kNew, "", kSgIn},
      {"SgReferencedGroupAllowsSsh", none, "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 22), kNew, "eni-web1"},
      {"SgAllowsSshToBastionFromAnyone", none, "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22), kNew, "eni-bastion"},
      {"SgDropsHttpToBastion", none, "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 80), kNew, "", kSgIn},
      {"SgProtocolMustMatch", none, "eni-bastion", v4("udp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 80), kNew, "", kSgIn},
      {"SgReturnTrafficAllowedRegardlessOfRules", none, "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 80, 40000), kReply, "eni-bastion"},
      {"SgEstablishedOriginalDirectionAllowed", none, "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 8080), kEst, "eni-web1"},
      {"SgInvalidConntrackStateDropped", none, "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22), kInvalid, "", pipeline::kVerdictCtInvalid},
      {"SgUdpRule", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoUdp, 53, 53, cidr("10.0.0.0/16"))); },
       "eni-bastion", v4("udp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 53), kNew, "eni-web1"},
      {"SgUdpOtherPortDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoUdp, 53, 53, cidr("10.0.0.0/16"))); },
       "eni-bastion", v4("udp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 54), kNew, "", kSgIn},
      {"SgPortRangeLowEdge", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 8000, 8099, cidr("0.0.0.0/0"))); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 8000), kNew, "eni-web1"},
      {"SgPortRangeHighEdge", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 8000, 8099, cidr("0.0.0.0/0"))); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 8099), kNew, "eni-web1"},
      {"SgPortRangeAboveDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 8000, 8099, cidr("0.0.0.0/0"))); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 8100), kNew, "", kSgIn},
      {"SgPortRangeBelowDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 8000, 8099, cidr("0.0.0.0/0"))); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 7999), kNew, "", kSgIn},
      {"SgCidrPeerOutsideDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 9000, 9000, cidr("10.0.1.128/25"))); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 9000), kNew, "", kSgIn},
      {"SgCidrPeerInsideAllowed", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 9000, 9000, cidr("10.0.1.0/27"))); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 9000), kNew, "eni-web1"},
      {"SgIcmpTypeAllowed", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoIcmp, 8, -1, cidr("0.0.0.0/0"))); },
       "eni-bastion", icmp4(kBastionMac, kWebMac, kBastion, kWeb, 8, 0), kNew, "eni-web1"},
      {"SgIcmpOtherTypeDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoIcmp, 8, -1, cidr("0.0.0.0/0"))); },
       "eni-bastion", icmp4(kBastionMac, kWebMac, kBastion, kWeb, 13, 0), kNew, "", kSgIn},
      {"SgIcmpTypeAndCode", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoIcmp, 3, 4, cidr("0.0.0.0/0"))); },
       "eni-bastion", icmp4(kBastionMac, kWebMac, kBastion, kWeb, 3, 4), kNew, "eni-web1"},
      {"SgIcmpWrongCodeDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoIcmp, 3, 4, cidr("0.0.0.0/0"))); },
       "eni-bastion", icmp4(kBastionMac, kWebMac, kBastion, kWeb, 3, 1), kNew, "", kSgIn},
      {"SgProtocolNumberAllowed", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(47, -1, -1, cidr("0.0.0.0/0"))); },
       "eni-bastion", v4("ip,nw_proto=47", kBastionMac, kWebMac, kBastion, kWeb, 0, 0), kNew, "eni-web1"},
      {"SgOtherProtocolNumberDropped", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(47, -1, -1, cidr("0.0.0.0/0"))); },
       "eni-bastion", v4("ip,nw_proto=50", kBastionMac, kWebMac, kBastion, kWeb, 0, 0), kNew, "", kSgIn},
      {"SgAllProtocolsRule", [](model::Policy& p) { group(p, "sg-web")->ingress.push_back(rule(kProtoAll, 0, 0, cidr("10.0.1.20/32"))); },
       "eni-bastion", v4("udp", kBastionMac, kWebMac, kBastion, kWeb, 1, 9999), kNew, "eni-web1"},
      {"SgSelfReferenceAllowsMembers", [](model::Policy& p) { addWeb2(p, {"sg-web"}); group(p, "sg-web")->ingress.push_back(rule(kProtoAll, 0, 0, GroupRef{"sg-web"})); },
       "eni-web2", v4("tcp", "02:00:00:00:01:0b", kWebMac, "10.0.1.11", kWeb, 40000, 9999), kNew, "eni-web1"},
      {"SgSelfReferenceExcludesOthers", [](model::Policy& p) { addWeb2(p, {"sg-web"}); group(p, "sg-web")->ingress.push_back(rule(kProtoAll, 0, 0, GroupRef{"sg-web"})); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 9999), kNew, "", kSgIn},
      {"SgDefaultGroupMembersTalk", [](model::Policy& p) { addWeb2(p, {"sg-default"}); eni(p, "eni-bastion")->security_group_ids = {"sg-default"}; },
       "eni-bastion", v4("tcp", kBastionMac, "02:00:00:00:01:0b", kBastion, "10.0.1.11", 40000, 12345), kNew, "eni-web2"},
      {"SgDefaultGroupBlocksNonMembers", [](model::Policy& p) { addWeb2(p, {"sg-default"}); },
       "eni-bastion", v4("tcp", kBastionMac, "02:00:00:00:01:0b", kBastion, "10.0.1.11", 40000, 12345), kNew, "", kSgIn},
      {"SgUnionOfGroups", [](model::Policy& p) { eni(p, "eni-web1")->security_group_ids = {"sg-web", "sg-bastion"}; },
       "eni-db1", v4("tcp", kDbMac, kRouter, kDb, kWeb, 40000, 22), kNew, "", kNaclOut | kStar},
      {"SgUnionOfGroupsSameSubnet", [](model::Policy& p) { eni(p, "eni-bastion")->security_group_ids = {"sg-bastion", "sg-web"}; },
       "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 443), kNew, "eni-bastion"},
      {"SgEgressRestricted", [](model::Policy& p) { group(p, "sg-web")->egress = {rule(kProtoTcp, 443, 443, cidr("0.0.0.0/0"))}; },
       "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22), kNew, "", kSgOut},
      {"SgEgressRestrictedAllowsItsPort", [](model::Policy& p) { group(p, "sg-web")->egress = {rule(kProtoTcp, 22, 22, cidr("0.0.0.0/0"))}; },
       "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22), kNew, "eni-bastion"},
      {"SgEgressToReferencedGroup", [](model::Policy& p) { group(p, "sg-web")->egress = {rule(kProtoTcp, 22, 22, GroupRef{"sg-bastion"})}; },
       "eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22), kNew, "eni-bastion"},
      {"SgPrefixListPeer", [](model::Policy& p) {
         model::PrefixList pl; pl.id = "pl-admins"; pl.max_entries = 5; pl.entries = {cidr("10.0.1.16/28")};
         p.prefix_lists.push_back(pl); group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 3000, 3000, model::PrefixListRef{"pl-admins"})); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 3000), kNew, "eni-web1"},
      {"SgPrefixListNonMemberDropped", [](model::Policy& p) {
         model::PrefixList pl; pl.id = "pl-admins"; pl.max_entries = 5; pl.entries = {cidr("10.0.1.32/28")};
         p.prefix_lists.push_back(pl); group(p, "sg-web")->ingress.push_back(rule(kProtoTcp, 3000, 3000, model::PrefixListRef{"pl-admins"})); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 3000), kNew, "", kSgIn},
      // --- across subnets: router and NACLs ---------------------------------------------------
      {"RoutedWebToDbAllowed", none, "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kNew, "eni-db1", 0, "ttl=63"},
      {"RoutedRewritesMacs", none, "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kNew, "eni-db1", 0, "dst=02:00:00:00:02:0a"},
      {"RoutedBastionSshToDb", none, "eni-bastion", v4("tcp", kBastionMac, kRouter, kBastion, kDb, 40000, 22), kNew, "eni-db1"},
      {"RoutedSgStillApplies", none, "eni-bastion", v4("tcp", kBastionMac, kRouter, kBastion, kDb, 40000, 5432), kNew, "", kSgIn},
      {"RoutedWebSshToDbDroppedBySg", none, "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 22), kNew, "", kSgIn},
      {"RoutedIcmpAllowedByNaclAndSg", none, "eni-web1", icmp4(kWebMac, kRouter, kWeb, kDb, 8, 0), kNew, "eni-db1"},
      {"NaclEphemeralReplyAllowed", none, "eni-db1", v4("tcp", kDbMac, kRouter, kDb, kWeb, 5432, 40000), kReply, "eni-web1"},
      {"NaclReplyToLowPortDenied", none, "eni-db1", v4("tcp", kDbMac, kRouter, kDb, kWeb, 5432, 80), kReply, "", kNaclOut | kStar},
      {"NaclWithoutEphemeralRuleBreaksReplies", [](model::Policy& p) { std::erase_if(acl(p, "acl-private")->entries, [](const auto& e) { return e.egress && e.rule_number == 100; }); },
       "eni-db1", v4("tcp", kDbMac, kRouter, kDb, kWeb, 5432, 40000), kReply, "", kNaclOut | kStar},
      {"NaclStatelessDeniesNewOutbound", none, "eni-db1", v4("tcp", kDbMac, kRouter, kDb, kWeb, 40000, 80), kNew, "", kNaclOut | kStar},
      {"NaclDenyBeforeAllowByRuleNumber", [](model::Policy& p) { acl(p, "acl-private")->entries.push_back(naclEntry(90, false, kProtoTcp, false, "10.0.1.10/32", model::PortRange{5432, 5432})); },
       "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kNew, "", kNaclIn | 90},
      {"NaclDenyAfterAllowIgnored", [](model::Policy& p) { acl(p, "acl-private")->entries.push_back(naclEntry(200, false, kProtoTcp, false, "10.0.1.10/32", model::PortRange{5432, 5432})); },
       "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kNew, "eni-db1"},
      {"NaclInboundStarDeny", none, "eni-web1", v4("udp", kWebMac, kRouter, kWeb, kDb, 40000, 53), kNew, "", kNaclIn | kStar},
      {"NaclOutboundOfSourceSubnet", [](model::Policy& p) { acl(p, "acl-default")->entries.push_back(naclEntry(50, true, kProtoTcp, false, "10.0.2.0/24", model::PortRange{5432, 5432})); },
       "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kNew, "", kNaclOut | 50},
      {"NaclNotAppliedWithinSubnet", [](model::Policy& p) { acl(p, "acl-default")->entries.clear(); },
       "eni-bastion", v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 80), kNew, "eni-web1"},
      {"NaclNotAppliedWithinSubnetViaRouter", [](model::Policy& p) { acl(p, "acl-default")->entries.clear(); },
       "eni-bastion", v4("tcp", kBastionMac, kRouter, kBastion, kWeb, 40000, 80), kNew, "eni-web1", 0, "ttl=63"},
      {"NaclCustomDenyAllAcrossSubnets", [](model::Policy& p) { acl(p, "acl-default")->entries.clear(); },
       "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kNew, "", kNaclOut | kStar},
      {"NaclChangeAffectsEstablished", [](model::Policy& p) { acl(p, "acl-private")->entries.push_back(naclEntry(50, false, kProtoAll, false, "10.0.1.0/24")); },
       "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, kDb, 40000, 5432), kEst, "", kNaclIn | 50},
      // --- router, responders, port security -------------------------------------------------
      {"ArpForGatewayAnswered", none, "eni-web1", fmt::format("arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa=10.0.1.1,arp_sha={}", kWebMac, kWeb, kWebMac), {}, "IN_PORT", 0, "02:76:67:00:00:01"},
      {"ArpForSameSubnetVmAnswered", none, "eni-web1", fmt::format("arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa={},arp_sha={}", kWebMac, kWeb, kBastion, kWebMac), {}, "IN_PORT", 0, kBastionMac},
      {"ArpForOtherSubnetNotAnswered", none, "eni-web1", fmt::format("arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa={},arp_sha={}", kWebMac, kWeb, kDb, kWebMac), {}, "", kNoRoute},
      {"ArpSpoofDropped", none, "eni-web1", fmt::format("arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa=10.0.1.1,arp_sha={}", kWebMac, kBastion, kWebMac), {}, "", kPortSec},
      {"IpSourceSpoofDropped", none, "eni-web1", v4("tcp", kWebMac, kBastionMac, "10.0.1.99", kBastion, 40000, 22), kNew, "", kPortSec},
      {"MacSpoofDropped", none, "eni-web1", v4("tcp", kBastionMac, kBastionMac, kWeb, kBastion, 40000, 22), kNew, "", kPortSec},
      {"SourceDestCheckOffAllowsOtherSources", [](model::Policy& p) { eni(p, "eni-web1")->source_dest_check = false; },
       "eni-web1", v4("tcp", kWebMac, kBastionMac, "192.168.7.7", kBastion, 40000, 22), kNew, "eni-bastion"},
      {"WrongDestinationMacNotDelivered", none, "eni-web1", v4("tcp", kWebMac, kDbMac, kWeb, kDb, 40000, 5432), kNew, "", kNoRoute},
      {"UnknownDestinationDropped", none, "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, "10.0.3.3", 40000, 80), kNew, "", kNoRoute},
      // --- what AWS never filters -------------------------------------------------------------
      {"LinkLocalMetadataUnfiltered", [](model::Policy& p) { group(p, "sg-web")->egress.clear(); },
       "eni-web1", v4("tcp", kWebMac, kRouter, kWeb, "169.254.169.254", 40000, 80), {}, "LOCAL"},
      {"ReservedDnsAddressUnfiltered", [](model::Policy& p) { group(p, "sg-web")->egress.clear(); },
       "eni-web1", v4("udp", kWebMac, kRouter, kWeb, "10.0.1.2", 40000, 53), {}, "LOCAL"},
      {"ReservedBroadcastUnfiltered", none, "eni-web1", v4("udp", kWebMac, "ff:ff:ff:ff:ff:ff", kWeb, "10.0.1.255", 40000, 9), {}, "LOCAL"},
      {"DhcpUnfiltered", [](model::Policy& p) { group(p, "sg-web")->egress.clear(); },
       "eni-web1", v4("udp", kWebMac, "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255", 68, 67), {}, "LOCAL"},
      {"HostReachesVmUnfiltered", none, "LOCAL", v4("tcp", "02:00:00:00:00:99", kWebMac, "169.254.169.254", kWeb, 80, 40000), {}, "eni-web1"},
      {"HostFromReservedDnsAddressReachesVm", none, "LOCAL", v4("udp", "02:00:00:00:00:99", kWebMac, "10.0.1.2", kWeb, 53, 40000), {}, "eni-web1"},
      {"HostWithOtherSourceCannotBypassGroups", none, "LOCAL", v4("tcp", "02:00:00:00:00:99", kWebMac, "10.0.9.9", kWeb, 80, 40000), {}, ""},
      {"DhcpOnlyAsBroadcastIsUnfiltered", [](model::Policy& p) { group(p, "sg-web")->egress.clear(); },
       "eni-web1", v4("udp", kWebMac, kBastionMac, kWeb, kBastion, 68, 67), kNew, "", kSgOut},
      {"ArpForReservedDnsAddressAnswered", none, "eni-web1", fmt::format("arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa=10.0.1.2,arp_sha={}", kWebMac, kWeb, kWebMac), {}, "IN_PORT", 0, "02:76:67:00:00:01"},
      {"ArpForLinkLocalServiceAnswered", none, "eni-web1", fmt::format("arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa=169.254.169.254,arp_sha={}", kWebMac, kWeb, kWebMac), {}, "IN_PORT", 0, "arp_spa=169.254.169.254"},
      // --- IPv6 --------------------------------------------------------------------------------
      {"Ipv6SgAllowsHttp", none, "eni-bastion", v6("tcp6", kBastionMac, kWebMac, kBastion6, kWeb6, 40000, 80), kNew, "eni-web1"},
      {"Ipv6SgV4OnlyRuleDoesNotApply", none, "eni-bastion", v6("tcp6", kBastionMac, kWebMac, kBastion6, kWeb6, 40000, 443), kNew, "", kSgIn},
      {"Ipv6SourceSpoofDropped", none, "eni-web1", v6("tcp6", kWebMac, kBastionMac, "2600:1f18:abcd:1201::99", kBastion6, 40000, 22), kNew, "", kPortSec},
      {"Ipv6NaclWithoutV6EntriesDenies", none, "eni-web1", v6("tcp6", kWebMac, kRouter, kWeb6, kDb6, 40000, 5432), kNew, "", kNaclIn | kStar},
      {"Ipv6NeighbourSolicitationForGateway", none, "eni-web1", fmt::format("icmp6,dl_src={},dl_dst=33:33:ff:00:00:01,ipv6_src={},ipv6_dst=ff02::1:ff00:1,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target=2600:1f18:abcd:1201::1", kWebMac, kWeb6), {}, "IN_PORT", 0, "02:76:67:00:00:01"},
      {"Ipv6DuplicateAddressDetectionUnanswered", none, "eni-web1", fmt::format("icmp6,dl_src={},dl_dst=33:33:ff:00:00:10,ipv6_src=::,ipv6_dst=ff02::1:ff00:10,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target={}", kWebMac, kWeb6), {}, "LOCAL"},
      {"Ipv6LinkLocalUnfiltered", none, "eni-web1", v6("udp6", kWebMac, "33:33:00:00:00:02", "fe80::ff:fe00:10a", "ff02::2", 546, 547), {}, "LOCAL"},
      // The host's IPv6 link-local traffic to a VM: its neighbour solicitation for the VM's
      // link-local (EUI-64 of the MAC) and global addresses, and link-local unicast (a DHCPv6
      // reply), reach the VM; from a global source it has no way around the groups.
      {"HostNeighbourSolicitationForVmLinkLocal", none, "LOCAL", "icmp6,dl_src=02:00:00:00:00:99,dl_dst=33:33:ff:00:01:0a,ipv6_src=fe80::99,ipv6_dst=ff02::1:ff00:10a,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target=fe80::ff:fe00:10a", {}, "eni-web1"},
      {"HostNeighbourSolicitationForVmGlobalAddress", none, "LOCAL", fmt::format("icmp6,dl_src=02:00:00:00:00:99,dl_dst=33:33:ff:00:00:10,ipv6_src=fe80::99,ipv6_dst=ff02::1:ff00:10,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target={}", kWeb6), {}, "eni-web1"},
      {"HostDhcpv6ReplyToVmLinkLocal", none, "LOCAL", v6("udp6", "02:00:00:00:00:99", kWebMac, "fe80::99", "fe80::ff:fe00:10a", 547, 546), {}, "eni-web1"},
      {"HostIpv6GlobalSourceCannotBypassGroups", none, "LOCAL", v6("tcp6", "02:00:00:00:00:99", kWebMac, "2600:1f18:abcd:1201::99", kWeb6, 40000, 22), {}, ""},
      {"HostLinkLocalToAnotherMacIsNotDelivered", none, "LOCAL", v6("udp6", "02:00:00:00:00:99", "02:00:00:00:0f:0f", "fe80::99", "fe80::ff:fe00:10a", 547, 546), {}, ""},
      {"Ipv6NeighbourAdvertisementSpoofDropped", none, "eni-web1", fmt::format("icmp6,dl_src={},dl_dst=33:33:00:00:00:01,ipv6_src={},ipv6_dst=ff02::1,nw_ttl=255,icmpv6_type=136,icmpv6_code=0,nd_target={}", kWebMac, kWeb6, kBastion6), {}, "", kPortSec},
  };
  return c;
}

class PipelineTest : public ::testing::TestWithParam<Case> {};

TEST_P(PipelineTest, Verdict) {
  const Case& tc = GetParam();
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  tc.mutate(policy);
  VGT_ASSERT_OK(sw->install(policy));
  VGT_ASSIGN_OR_FAIL(TraceResult result, sw->traceFrom(tc.from, tc.packet, tc.ct));
  if (tc.to.empty()) {
    EXPECT_TRUE(result.dropped) << ::testing::PrintToString(result);
    if (tc.reg4 != 0) {
      EXPECT_NE(result.raw.find(fmt::format("reg4={:#x}", tc.reg4)), std::string::npos)
          << "expected verdict reg4=" << fmt::format("{:#x}", tc.reg4) << "\n"
          << ::testing::PrintToString(result);
    }
  } else {
    VGT_ASSIGN_OR_FAIL(int port, sw->datapathPortOf(tc.to == "IN_PORT" ? tc.from : tc.to));
    EXPECT_FALSE(result.dropped) << ::testing::PrintToString(result);
    EXPECT_EQ(result.output_ports, std::vector<int>{port}) << ::testing::PrintToString(result);
  }
  if (!tc.also.empty()) {
    EXPECT_NE(result.raw.find(tc.also), std::string::npos) << ::testing::PrintToString(result);
  }
}

INSTANTIATE_TEST_SUITE_P(Aws, PipelineTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) { return param.param.name; });

// A change goes in as a difference and takes effect: membership, rule removal.
TEST(PipelineChanges, MembershipChangeUpdatesReferencedGroupPeers) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  addWeb2(policy, {"sg-web"});
  VGT_ASSERT_OK(sw->install(policy));
  const std::string ssh = v4("tcp", "02:00:00:00:01:0b", kRouter, "10.0.1.11", kDb, 40000, 22);
  VGT_ASSIGN_OR_FAIL(auto before, sw->traceFrom("eni-web2", ssh, kNew));
  EXPECT_TRUE(before.dropped) << ::testing::PrintToString(before);

  eni(policy, "eni-web2")->security_group_ids.push_back("sg-bastion");
  VGT_ASSIGN_OR_FAIL(SyncReport report, sw->install(policy));
  EXPECT_GT(report.changes(), 0U);
  EXPECT_LT(report.changes(), sw->translation().flows.size() / 4) << "a membership change must be a small diff";
  VGT_ASSIGN_OR_FAIL(auto after, sw->traceFrom("eni-web2", ssh, kNew));
  VGT_ASSIGN_OR_FAIL(int db_port, sw->datapathPortOf("eni-db1"));
  EXPECT_EQ(after.output_ports, std::vector<int>{db_port}) << ::testing::PrintToString(after);
}

TEST(PipelineChanges, RuleRemovalStopsNewConnectionsButNotTrackedOnes) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  VGT_ASSERT_OK(sw->install(policy));
  auto& ingress = group(policy, "sg-web")->ingress;
  std::erase_if(ingress, [](const auto& r) { return r.ports && r.ports->from == 80; });
  VGT_ASSERT_OK(sw->install(policy));
  const std::string http = v4("tcp", kBastionMac, kWebMac, kBastion, kWeb, 40000, 80);
  VGT_ASSIGN_OR_FAIL(auto fresh, sw->traceFrom("eni-bastion", http, kNew));
  EXPECT_TRUE(fresh.dropped) << ::testing::PrintToString(fresh);
  VGT_ASSIGN_OR_FAIL(auto tracked, sw->traceFrom("eni-bastion", http, kEst));
  EXPECT_FALSE(tracked.dropped) << ::testing::PrintToString(tracked);
}

TEST(PipelineChanges, UnchangedPolicySendsNothing) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  VGT_ASSERT_OK(sw->install(policy));
  VGT_ASSIGN_OR_FAIL(SyncReport again, sw->install(policy));
  EXPECT_EQ(again.changes(), 0U);
}

// ---- revocation ------------------------------------------------------------------------------
// ofproto/trace cannot make conntrack report a label (--ct-next sets ct_state only), but the
// flow it traces may carry one, and the first ct() pass (SG egress) keeps it: the second pass
// starts from ct_clear. So these cases trace the source ENI's egress dispatch with a label as
// conntrack would have it; the ingress side is shown with real packets (e2e/revocation_test).

// The label rule `name` commits with on an ENI open in the opposite direction (or any ENI in
// strict mode): its highest-priority commit flow in the evaluation tables.
std::string commitLabel(const Translation& t, const std::string& name) {
  uint32_t id = 0;
  for (const auto& [i, n] : t.rule_names) {
    if (n == name) {
      id = i;
    }
  }
  const Flow* best = nullptr;
  for (const auto& f : t.flows) {
    if ((f.table == pipeline::kSgEgressEval || f.table == pipeline::kSgIngressEval) &&
        f.match.rfind(fmt::format("conj_id={},", id), 0) == 0 &&
        (best == nullptr || f.priority > best->priority)) {
      best = &f;
    }
  }
  if (best == nullptr) {
    ADD_FAILURE() << "no commit flow for " << name;
    return "0";
  }
  const auto end = best->actions.find("->ct_label");
  const auto begin = best->actions.rfind(':', end) + 1;
  return best->actions.substr(begin, end - begin);
}

const std::vector<std::string> kEstOriginal = {"trk,est", "trk,new"};
const std::vector<std::string> kEstReply = {"trk,est,rpl", "trk,est,rpl"};

TEST(PipelineRevocation, LiveCheckedConnectionContinues) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  policy.vpc.strict_revocation = true;
  VGT_ASSERT_OK(sw->install(policy));
  const std::string label = commitLabel(sw->translation(), "sg-web egress #0");
  const std::string ssh =
      v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22) + ",ct_label=" + label;
  VGT_ASSIGN_OR_FAIL(auto r, sw->traceFrom("eni-web1", ssh, kEst));
  VGT_ASSIGN_OR_FAIL(int bastion, sw->datapathPortOf("eni-bastion"));
  EXPECT_EQ(r.output_ports, std::vector<int>{bastion}) << ::testing::PrintToString(r);
  // Live: dispatched without a new commit in the source zone.
  EXPECT_EQ(r.raw.find("32. "), std::string::npos) << ::testing::PrintToString(r);
  EXPECT_NE(r.raw.find("31. conj_id="), std::string::npos) << ::testing::PrintToString(r);
}

TEST(PipelineRevocation, StrictRevokedConnectionWithoutRuleIsDropped) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  policy.vpc.strict_revocation = true;
  VGT_ASSERT_OK(sw->install(policy));
  const std::string label = commitLabel(sw->translation(), "sg-web egress #0");
  group(policy, "sg-web")->egress = {rule(model::kProtoTcp, 443, 443, cidr("0.0.0.0/0"))};
  VGT_ASSERT_OK(sw->install(policy));
  const std::string ssh =
      v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22) + ",ct_label=" + label;
  VGT_ASSIGN_OR_FAIL(auto r, sw->traceFrom("eni-web1", ssh, kEstOriginal));
  EXPECT_TRUE(r.dropped) << ::testing::PrintToString(r);
  EXPECT_NE(r.raw.find(fmt::format("reg4={:#x}", kSgOut)), std::string::npos)
      << ::testing::PrintToString(r);
  // The same connection unchecked (tracked) is not affected.
  VGT_ASSIGN_OR_FAIL(auto tracked, sw->traceFrom("eni-web1", v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22) + ",ct_label=0x3e8", kEst));
  EXPECT_FALSE(tracked.dropped) << ::testing::PrintToString(tracked);
}

TEST(PipelineRevocation, StrictRevokedConnectionIsTakenOverByAnotherRule) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  policy.vpc.strict_revocation = true;
  VGT_ASSERT_OK(sw->install(policy));
  const std::string old_label = commitLabel(sw->translation(), "sg-web egress #0");
  group(policy, "sg-web")->egress = {rule(model::kProtoTcp, 22, 22, cidr("10.0.1.0/24"))};
  VGT_ASSERT_OK(sw->install(policy));
  const std::string new_label = commitLabel(sw->translation(), "sg-web egress #0");
  ASSERT_NE(new_label, old_label);
  const std::string ssh =
      v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22) + ",ct_label=" + old_label;
  VGT_ASSIGN_OR_FAIL(auto r, sw->traceFrom("eni-web1", ssh, kEstOriginal));
  VGT_ASSIGN_OR_FAIL(int bastion, sw->datapathPortOf("eni-bastion"));
  EXPECT_EQ(r.output_ports, std::vector<int>{bastion}) << ::testing::PrintToString(r);
  // Re-committed in web1's zone with the remaining rule's label.
  EXPECT_NE(r.raw.find(new_label.substr(2) + "->ct_label"), std::string::npos)
      << new_label << "\n" << ::testing::PrintToString(r);
}

// web1 answers on a port-80 connection that its untracked 0.0.0.0/0 rule admitted: the reply
// passes web1's egress dispatch in the zone where that rule committed it.
TEST(PipelineRevocation, UntrackedReplyStopsWhenTheRuleGoes) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  VGT_ASSERT_OK(sw->install(policy));
  const std::string label = commitLabel(sw->translation(), "sg-web ingress #0");
  const std::string reply =
      v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 80, 40000) + ",ct_label=" + label;
  VGT_ASSIGN_OR_FAIL(auto live, sw->traceFrom("eni-web1", reply, kEstReply));
  EXPECT_FALSE(live.dropped) << ::testing::PrintToString(live);

  std::erase_if(group(policy, "sg-web")->ingress,
                [](const auto& r) { return r.ports && r.ports->from == 80; });
  VGT_ASSERT_OK(sw->install(policy));
  VGT_ASSIGN_OR_FAIL(auto revoked, sw->traceFrom("eni-web1", reply, kEstReply));
  EXPECT_TRUE(revoked.dropped) << ::testing::PrintToString(revoked);
  EXPECT_NE(revoked.raw.find(fmt::format("reg4={:#x}", pipeline::kVerdictSgEgressRevoked)),
            std::string::npos)
      << ::testing::PrintToString(revoked);
}

// The rule still exists (web2 keeps it alive) but web1 left its group: web1's connections of
// that rule are revoked, web2's are not.
TEST(PipelineRevocation, EniThatLeftTheGroupLosesItsCheckedConnections) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  addWeb2(policy, {"sg-web"});
  VGT_ASSERT_OK(sw->install(policy));
  const std::string label = commitLabel(sw->translation(), "sg-web ingress #0");
  eni(policy, "eni-web1")->security_group_ids = {"sg-bastion"};
  VGT_ASSERT_OK(sw->install(policy));
  const std::string reply =
      v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 80, 40000) + ",ct_label=" + label;
  VGT_ASSIGN_OR_FAIL(auto web1, sw->traceFrom("eni-web1", reply, kEstReply));
  EXPECT_TRUE(web1.dropped) << ::testing::PrintToString(web1);
  const std::string reply2 = v4("tcp", "02:00:00:00:01:0b", kBastionMac, "10.0.1.11", kBastion,
                                80, 40000) + ",ct_label=" + label;
  VGT_ASSIGN_OR_FAIL(auto web2, sw->traceFrom("eni-web2", reply2, kEstReply));
  EXPECT_FALSE(web2.dropped) << ::testing::PrintToString(web2);
}

// Outside strict mode a tracked rule's connections outlive it whatever their label says.
TEST(PipelineRevocation, TrackedConnectionOutlivesItsRule) {
  VGT_ASSIGN_OR_FAIL(auto sw, PolicySwitch::start());
  model::Policy policy = samplePolicy();
  VGT_ASSERT_OK(sw->install(policy));
  const std::string label = commitLabel(sw->translation(), "sg-web egress #0");
  group(policy, "sg-web")->egress.clear();
  VGT_ASSERT_OK(sw->install(policy));
  const std::string ssh =
      v4("tcp", kWebMac, kBastionMac, kWeb, kBastion, 40000, 22) + ",ct_label=" + label;
  VGT_ASSIGN_OR_FAIL(auto r, sw->traceFrom("eni-web1", ssh, kEst));
  EXPECT_FALSE(r.dropped) << ::testing::PrintToString(r);
}

}  // namespace
}  // namespace vpcguard::test
