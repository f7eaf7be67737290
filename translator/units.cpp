#include "translator/units.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "translator/hash.h"
#include "translator/mirror.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::units {
namespace {

using namespace pipeline;  // NOLINT(google-build-using-namespace): the pipeline's vocabulary
using model::kProtoAll;
using model::kProtoIcmp;
using model::kProtoIcmpv6;
using model::kProtoTcp;
using model::kProtoUdp;

constexpr uint16_t kDefaultPriority = 100;

std::string hex(uint32_t v) { return fmt::format("{:#x}", v); }

std::string gotoTable(Table t) { return fmt::format("goto_table:{}", static_cast<int>(t)); }

constexpr uint64_t kCheckedLow = uint64_t{1} << kCtLabelCheckedBit;
static_assert(kCtLabelFingerprintShift == 64, "labelHex puts the fingerprint in the high word");

// A 128-bit ct_label value as ovs-ofctl writes it: high 64 bits, then low 64 bits.
std::string labelHex(uint64_t high, uint64_t low) {
  if (high == 0) {
    return fmt::format("{:#x}", low);
  }
  return fmt::format("{:#x}{:016x}", high, low);
}

// An IPFIX sample for the flow-log collector (a no-op while no flow log exists: OVS ignores
// sample() on a bridge without IPFIX).
std::string sampleAction(uint32_t obs_domain, uint32_t obs_point) {
  return fmt::format("sample(probability=65535,collector_set_id={},obs_domain_id={},obs_point_id={})",
                     kCollectorSetId, obs_domain, obs_point);
}

std::string dropWith(uint32_t verdict) {
  return fmt::format("set_field:{}->{},{}", hex(verdict), kRegVerdict, gotoTable(kDrop));
}

// What happens to a packet the security groups and NACLs accepted, on one side (egress: it
// leaves its source subnet; ingress: it is delivered), before it goes on with `then`:
//  - flow logs count it: the learned table counts packets of known connections (and marks them
//    in the scratch register), the flow-log table learns new connections and samples what was
//    not counted (docs/flowlogs.md);
//  - traffic mirroring copies it when a session of the side's interface selects it
//    (docs/mirroring.md), starting with the first session (rank 0).
std::string acceptedThen(bool ingress, const std::string& then) {
  return fmt::format("set_field:0->{},resubmit(,{}),resubmit(,{}),set_field:0->{},resubmit(,{}),{}",
                     "reg9", static_cast<int>(ingress ? kFlowLogIngressLearned : kFlowLogEgressLearned),
                     static_cast<int>(ingress ? kFlowLogIngress : kFlowLogEgress), kRegMirrorRank,
                     static_cast<int>(ingress ? kMirrorIngress : kMirrorEgress), then);
}

const char* ipMatch(IpFamily f) { return f == IpFamily::kV4 ? "ip" : "ipv6"; }

// "nw_dst=10.0.0.0/16" / "ipv6_src=..."; empty for 0.0.0.0/0 and ::/0 (match all).
std::string addressMatch(const Cidr& c, bool source) {
  if (c.isAll()) {
    return {};
  }
  const char* field = c.family() == IpFamily::kV4 ? (source ? "nw_src" : "nw_dst")
                                                  : (source ? "ipv6_src" : "ipv6_dst");
  if (c.prefix_len == c.address.bitWidth()) {
    return fmt::format("{}={}", field, c.address.toString());
  }
  return fmt::format("{}={}", field, c.toString());
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) {
      continue;
    }
    if (!out.empty()) {
      out += ',';
    }
    out += p;
  }
  return out;
}

// Protocol + port/type matches for one family. Empty vector = the rule cannot apply to this
// family (icmp on IPv6, icmpv6 on IPv4). A single empty string = protocol "all" (no match).
std::vector<std::string> protocolMatches(IpFamily family, int protocol,
                                         const std::optional<model::PortRange>& ports,
                                         const std::optional<model::IcmpTypeCode>& icmp) {
  const bool v4 = family == IpFamily::kV4;
  if (protocol == kProtoAll) {
    return {std::string()};
  }
  if (protocol == kProtoTcp || protocol == kProtoUdp) {
    const std::string proto = protocol == kProtoTcp ? (v4 ? "tcp" : "tcp6") : (v4 ? "udp" : "udp6");
    if (!ports || (ports->from <= 0 && ports->to >= 65535)) {
      return {proto};
    }
    std::vector<std::string> out;
    for (const auto& m :
         portRangeMasks(static_cast<uint16_t>(ports->from), static_cast<uint16_t>(ports->to))) {
      if (m.mask == 0xffff) {
        out.push_back(fmt::format("{},tp_dst={}", proto, m.value));
      } else {
        out.push_back(fmt::format("{},tp_dst={:#x}/{:#x}", proto, m.value, m.mask));
      }
    }
    return out;
  }
  if (protocol == kProtoIcmp || protocol == kProtoIcmpv6) {
    if ((protocol == kProtoIcmp) != v4) {
      return {};
    }
    std::string m = v4 ? "icmp" : "icmp6";
    if (icmp && icmp->type >= 0) {
      m += fmt::format(",icmp_type={}", icmp->type);
      if (icmp->code >= 0) {
        m += fmt::format(",icmp_code={}", icmp->code);
      }
    }
    return {m};
  }
  return {fmt::format("{},nw_proto={}", ipMatch(family), protocol)};
}

std::string arpReplyFor(const std::string& mac, const IpAddress& ip);
std::string arpReplySwapFor(const std::string& mac);
std::string ndReplyFor(const std::string& mac, const IpAddress& ip, bool router);

std::string arpReplyFor(const std::string& mac, const IpAddress& ip) {
  return fmt::format(
      "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,"
      "set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
      "set_field:{mac}->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
      "set_field:{ip}->arp_spa,IN_PORT",
      fmt::arg("mac", mac), fmt::arg("ip", ip.toString()));
}

// ARP reply for whatever address was asked (a range of addresses answered by one MAC): the
// sender and target addresses swap through a scratch register.
std::string arpReplySwapFor(const std::string& mac) {
  return fmt::format(
      "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,"
      "set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
      "set_field:{mac}->arp_sha,move:NXM_OF_ARP_TPA[]->{scratch}[],"
      "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:{scratch}[]->NXM_OF_ARP_SPA[],IN_PORT",
      fmt::arg("mac", mac), fmt::arg("scratch", kNxmScratch));
}

// Neighbour advertisement in answer to a solicitation for `ip`, with the router flag when
// the VPC router answers. The target link-layer address can only be written by a flow that
// matches an advertisement (OVS's prerequisites), so kNdReply finishes the packet: writing
// both nd_sll here and nd_tll there makes the option carry the MAC whichever order the
// datapath applies the option-type change and the address.
std::string ndReplyFor(const std::string& mac, const IpAddress& ip, bool router) {
  return fmt::format(
      "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,"
      "move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:{ip}->ipv6_src,"
      "set_field:255->nw_ttl,set_field:136->icmpv6_type,set_field:{flags}->nd_reserved,"
      "set_field:{mac}->nd_sll,set_field:2->nd_options_type,resubmit(,{next})",
      fmt::arg("mac", mac), fmt::arg("ip", ip.toString()),
      fmt::arg("flags", router ? "0xe0000000" : "0x60000000"),
      fmt::arg("next", static_cast<int>(kNdReply)));
}
}  // namespace

namespace {
// The mark of a packet from the host whose source may reach the VMs (kFlagHostSourceOk).
std::string hostUnmarked() {
  return fmt::format("{}=0/{}", kRegFlags, hex(kFlagHostSourceOk));
}
std::string hostMarked() {
  return fmt::format("set_field:{0}/{0}->{1},resubmit(,{2})", hex(kFlagHostSourceOk), kRegFlags,
                     static_cast<int>(kUnfiltered));
}
std::string hostOk() {
  return fmt::format("in_port=LOCAL,{}={}/{}", kRegFlags, hex(kFlagHostSourceOk),
                     hex(kFlagHostSourceOk));
}
}  // namespace

namespace {
// L3_FORWARD's routed cases: the router's flags (reg5), then the source's security group.
std::string throughTheRouter(uint32_t flags) {
  return fmt::format("set_field:{}->{},{}", hex(flags), kRegFlags, gotoTable(kSgEgressCt));
}
}  // namespace

void infrastructure(FlowSink& b) {
  const auto k = CookieKind::kInfra;
  b.add(kClassify, 0, k, 0, "", dropWith(kVerdictPortSecurity));
  b.add(kClassify, kDefaultPriority, k, 0, "in_port=LOCAL", gotoTable(kUnfiltered));
  b.add(kPortSecurity, 0, k, 0, "", dropWith(kVerdictPortSecurity));
  b.add(kL3Lookup, 0, k, 0, "", dropWith(kVerdictNoRoute));
  // To an interface through the router, from another subnet (the subnet's own flow in router()
  // is above): rewritten, and the NACLs apply. An interface's address with any other
  // destination MAC than the router's or (same subnet) the interface's has no route.
  b.add(kL3Forward, 90, k, 0, fmt::format("dl_dst={}", kRouterMac),
        throughTheRouter(kFlagRewrite | kFlagRouted));
  b.add(kL3Forward, 0, k, 0, "", dropWith(kVerdictNoRoute));
  // What AWS never filters goes to the host, where operators may add their own filters.
  b.add(kL3Lookup, 300, k, 0, "ip,nw_dst=169.254.0.0/16", gotoTable(kUnfiltered));
  b.add(kL3Lookup, 300, k, 0, "ipv6,ipv6_dst=fe80::/10", gotoTable(kUnfiltered));
  b.add(kL3Lookup, 300, k, 0, "ipv6,ipv6_dst=ff00::/8", gotoTable(kUnfiltered));
  b.add(kL3Lookup, 300, k, 0, "udp,nw_dst=255.255.255.255,tp_src=68,tp_dst=67",
        gotoTable(kUnfiltered));
  // The host answers ARP for link-local services (metadata, time, DNS) through the router's
  // MAC, which is also the bridge's own MAC (vpcguardd sets it), so the host accepts them.
  b.add(kL3Lookup, 400, k, 0, "arp,arp_op=1,arp_tpa=169.254.0.0/16", arpReplySwapFor(kRouterMac));
  // Duplicate address detection (a solicitation from ::) must go unanswered, or the guest
  // would think its own address is taken.
  b.add(kL3Lookup, 450, k, 0, "icmp6,ipv6_src=::,icmp_type=135", gotoTable(kUnfiltered));
  b.add(kL3Lookup, 300, k, 0, "udp6,tp_src=546,tp_dst=547", gotoTable(kUnfiltered));
  b.add(kL3Lookup, 150, k, 0, "arp,arp_op=2", gotoTable(kUnfiltered));
  const std::string checked = fmt::format("ct_label={0}/{0}", labelHex(0, kCheckedLow));
  for (auto [ct, sg, eval, zone, next, miss, revoked] :
       {std::tuple{kSgEgressCt, kSgEgress, kSgEgressEval, kNxmSrcEni, kNaclOut,
                   kVerdictSgEgressMiss, kVerdictSgEgressRevoked},
        std::tuple{kSgIngressCt, kSgIngress, kSgIngressEval, kNxmDstEni, kOutput,
                   kVerdictSgIngressMiss, kVerdictSgIngressRevoked}}) {
    // The second ct() of a packet runs in another zone: clear the first zone's state.
    const std::string clear = ct == kSgIngressCt ? "ct_clear," : "";
    for (const char* fam : {"ip", "ipv6"}) {
      b.add(ct, kDefaultPriority, k, 0, fam,
            fmt::format("{}ct(table={},zone={}[0..15])", clear, static_cast<int>(sg), zone));
    }
    b.add(ct, 0, k, 0, "", dropWith(miss));
    // Dispatch. Live checked connections are the conjunctions at kDispatchLivePriority
    // (rule()); a checked connection that gets below them has lost its rule. Its original
    // direction is evaluated again, so another rule may take it over (re-commit, new label);
    // its reply direction cannot be evaluated against the rules (they are written for the
    // original direction), so it is dropped until an original-direction packet re-labels it.
    b.add(sg, kDispatchInvalidPriority, k, 0, "ct_state=+inv+trk", dropWith(kVerdictCtInvalid));
    b.add(sg, kDispatchRevokedPriority, k, 0, "ct_state=-new+est-rpl+trk," + checked,
          gotoTable(eval));
    b.add(sg, kDispatchRevokedPriority, k, 0, "ct_state=-new+est+rpl+trk," + checked,
          dropWith(revoked));
    b.add(sg, kDispatchTrackedPriority, k, 0, "ct_state=-new+est+trk", gotoTable(next));
    b.add(sg, kDispatchTrackedPriority, k, 0, "ct_state=-new+rel+trk", gotoTable(next));
    b.add(sg, 0, k, 0, "", gotoTable(eval));
    b.add(eval, 0, k, 0, "", dropWith(miss));
  }
  // NACLs apply only when the packet crosses a subnet boundary.
  b.add(kNaclOut, 50000, k, 0, fmt::format("{}=0/{}", kRegFlags, hex(kFlagRouted)),
        acceptedThen(false, gotoTable(kSgIngressCt)));
  b.add(kNaclOut, 0, k, 0, "", dropWith(kVerdictNaclOutDeny | kNaclStarRule));
  b.add(kNaclIn, 0, k, 0, "", dropWith(kVerdictNaclInDeny | kNaclStarRule));
  b.add(kOutput, 0, k, 0, "", dropWith(kVerdictNoRoute));
  b.add(kUnfiltered, 10, k, 0, "", "output:LOCAL");
  // From the host, only what the per-interface flows deliver (link-local and reserved sources).
  b.add(kUnfiltered, 20, k, 0, "in_port=LOCAL", "drop");
  // A link-local source may reach any VM address: marked, then looked up again (the subnets'
  // reserved sources in router(), the per-address delivery in interfaceFlows()).
  b.add(kUnfiltered, kDefaultPriority, k, 0,
        fmt::format("in_port=LOCAL,ip,nw_src=169.254.0.0/16,{}", hostUnmarked()), hostMarked());
  b.add(kUnfiltered, kDefaultPriority, k, 0,
        fmt::format("in_port=LOCAL,arp,arp_spa=169.254.0.0/16,{}", hostUnmarked()), hostMarked());
  b.add(kNdReply, kDefaultPriority, k, 0, "icmp6,icmp_type=136,icmp_code=0",
        "move:NXM_OF_ETH_SRC[]->NXM_NX_ND_TLL[],IN_PORT");
  b.add(kNdReply, 0, k, 0, "", "drop");
  b.add(kDrop, 0, k, 0, "", "drop");
  // Flow-log counting: a packet a learned flow counted is done; interfaces without a flow log
  // have no flows here (interfaceFlows adds them for logged ones).
  for (Table t : {kFlowLogEgress, kFlowLogIngress}) {
    b.add(t, 20, k, 0, "reg9=0x1/0x1", "drop");
    b.add(t, 0, k, 0, "", "drop");
  }
  // The mirror host subnet (kMirrorHostSubnet) is the bridge's own, for copies to local
  // targets: VMs may neither reach it nor claim its addresses (an ARP for a next hop would
  // overwrite the target's neighbour entry in ovs-vswitchd), whatever their source check.
  for (const std::string& m : {fmt::format("ip,nw_dst={}", kMirrorHostSubnet),
                               fmt::format("arp,arp_spa={}", kMirrorHostSubnet),
                               fmt::format("arp,arp_tpa={}", kMirrorHostSubnet)}) {
    b.add(kL3Lookup, 500, k, 0, m, dropWith(kVerdictNoRoute));
  }
  // Mirroring: interfaces without a session have no flows here (mirrorFlows).
  for (Table t : {kMirrorEgress, kMirrorIngress}) {
    b.add(t, 0, k, 0, "", "drop");
  }
  // The miss path's conntrack mark (kCtMark*Learned): which direction, then toggle its bit.
  for (const auto& side : {std::pair{kFlowLogEgressMark, kNxmSrcEni},
                            std::pair{kFlowLogIngressMark, kNxmDstEni}}) {
    const Table t = side.first;
    const char* zone = side.second;  // a plain variable: clang 14 cannot capture bindings
    const auto mark = [zone](uint32_t value, uint32_t bit) {
      return fmt::format("ct(commit,zone={}[0..15],exec(set_field:{}/{}->ct_mark))", zone,
                         hex(value), hex(bit));
    };
    // Committed earlier in this pass (a new connection): conntrack state is cleared, and it is
    // the original direction.
    for (const char* fam : {"ip", "ipv6"}) {
      b.add(t, 10, k, 0, fmt::format("ct_state=-trk,{}", fam),
            mark(kCtMarkOriginalLearned, kCtMarkOriginalLearned));
      for (auto [dir, bit] : {std::pair{"-rpl", kCtMarkOriginalLearned},
                              std::pair{"+rpl", kCtMarkReplyLearned}}) {
        b.add(t, 10, k, 0, fmt::format("ct_state=+trk{},ct_mark=0/{},{}", dir, hex(bit), fam),
              mark(bit, bit));
        b.add(t, 10, k, 0,
              fmt::format("ct_state=+trk{},ct_mark={}/{},{}", dir, hex(bit), hex(bit), fam),
              mark(0, bit));
      }
    }
    b.add(t, 0, k, 0, "", "drop");
  }
}
void router(FlowSink& b, const model::Subnet& s, uint32_t si) {
  const auto k = CookieKind::kRouter;
  const std::string reg = fmt::format("{}={}", kRegSrcSubnet, si);
  const IpAddress gw = s.cidr_block.first().plus(1);
  // The router answers ARP for the subnet's reserved addresses (network, router, DNS, spare),
  // so a VM reaches the services behind them (on the host) like on AWS.
  for (int64_t i = 0; i < 4; ++i) {
    const IpAddress r = s.cidr_block.first().plus(i);
    b.add(kL3Lookup, 400, k, si, fmt::format("arp,{},arp_op=1,arp_tpa={}", reg, r.toString()),
          arpReplyFor(kRouterMac, r));
  }
  // From the host, the subnet's first four (reserved) addresses may reach the subnet's VMs.
  for (int64_t i = 0; i < 4; ++i) {
    const std::string from = s.cidr_block.first().plus(i).toString();
    const std::string into = s.cidr_block.toString();
    b.add(kUnfiltered, kDefaultPriority, k, si,
          fmt::format("in_port=LOCAL,ip,nw_src={},nw_dst={},{}", from, into, hostUnmarked()),
          hostMarked());
    b.add(kUnfiltered, kDefaultPriority, k, si,
          fmt::format("in_port=LOCAL,arp,arp_spa={},arp_tpa={},{}", from, into, hostUnmarked()),
          hostMarked());
  }
  // To an interface of this subnet through the router MAC: rewritten, no NACL.
  b.add(kL3Forward, kDefaultPriority, k, si,
        fmt::format("{},{}={},dl_dst={}", reg, kRegDstSubnet, si, kRouterMac),
        throughTheRouter(kFlagRewrite));
  // AWS never filters the subnet's reserved addresses: network, router, DNS, reserved, last.
  for (const IpAddress& a : {s.cidr_block.first(), gw, s.cidr_block.first().plus(2),
                             s.cidr_block.first().plus(3), s.cidr_block.last()}) {
    b.add(kL3Lookup, 300, k, si, fmt::format("ip,{},nw_dst={}", reg, a.toString()),
          gotoTable(kUnfiltered));
  }
  if (s.ipv6_cidr_block) {
    const IpAddress gw6 = s.ipv6_cidr_block->first().plus(1);
    b.add(kL3Lookup, 400, k, si,
          fmt::format("icmp6,{},icmp_type=135,icmp_code=0,nd_target={}", reg, gw6.toString()),
          ndReplyFor(kRouterMac, gw6, true));
    const IpAddress ll = linkLocalFromMac(kRouterMac);
    b.add(kL3Lookup, 400, k, si,
          fmt::format("icmp6,{},icmp_type=135,icmp_code=0,nd_target={}", reg, ll.toString()),
          ndReplyFor(kRouterMac, ll, true));
    for (int64_t i = 0; i < 4; ++i) {
      b.add(kL3Lookup, 300, k, si,
            fmt::format("ipv6,{},ipv6_dst={}", reg, s.ipv6_cidr_block->first().plus(i).toString()),
            gotoTable(kUnfiltered));
    }
  }
}

uint8_t GroupSlots::slotOf(uint16_t index) const {
  for (size_t i = 0; i < slot.size(); ++i) {
    if (slot[i] == index) {
      return static_cast<uint8_t>(i);
    }
  }
  return kNoSlot;
}

GroupSlots assignSlots(std::vector<uint16_t> group_indices) {
  std::sort(group_indices.begin(), group_indices.end());
  group_indices.erase(std::unique(group_indices.begin(), group_indices.end()),
                      group_indices.end());
  GroupSlots out;
  for (uint16_t g : group_indices) {
    if (g == 0) {
      continue;  // not a group (an unknown id)
    }
    bool placed = false;
    for (size_t k = 0; k < kGroupSlots && !placed; ++k) {
      uint16_t& s = out.slot[(g + k) % kGroupSlots];
      if (s == 0) {
        s = g;
        placed = true;
      }
    }
    if (!placed) {
      out.overflow.push_back(g);
    }
  }
  return out;
}

MemberClause memberClauseOf(const GroupSlots& slots, uint16_t group_index, uint16_t eni_index) {
  const uint8_t s = slots.slotOf(group_index);
  return s == kNoSlot ? MemberClause{kNoSlot, eni_index} : MemberClause{s, group_index};
}

namespace {
uint32_t slotMask(const SlotField& f) { return 0xffffU << f.shift; }
}  // namespace

std::string memberClauseMatch(bool egress, const MemberClause& clause) {
  if (clause.slot == kNoSlot) {
    return fmt::format("{}={}", egress ? kRegSrcEni : kRegDstEni, clause.value);
  }
  const SlotField f = groupSlotField(egress, clause.slot);
  return fmt::format("reg{}={}/{}", f.reg, hex(uint32_t{clause.value} << f.shift), hex(slotMask(f)));
}

namespace {
// The actions that load an interface's slots for one side (nothing for empty slots: a packet's
// registers start at zero and each side's slots are loaded once).
std::string slotLoads(const GroupSlots& slots, bool egress) {
  std::string out;
  for (size_t i = 0; i < kGroupSlots; ++i) {
    if (slots.slot[i] != 0) {
      const SlotField f = groupSlotField(egress, i);
      out += fmt::format("set_field:{}/{}->reg{},", hex(uint32_t{slots.slot[i]} << f.shift),
                         hex(slotMask(f)), f.reg);
    }
  }
  return out;
}
}  // namespace

void interfaceFlows(FlowSink& b, const InterfaceUnit& info) {
  const auto& eni = *info.eni;
  const auto k = CookieKind::kInterface;
  const uint32_t z = info.index;
  const std::string mac = eni.mac_address;
  const std::string src = fmt::format("{}={}", kRegSrcEni, z);

  // Classification.
  const uint32_t open = info.open_bits;
  const uint32_t src_open = open & kOpenSrcMask;
  const uint32_t dst_open = open & kOpenDstMask;
  b.add(kClassify, kDefaultPriority, k, z, fmt::format("in_port={}", info.ofport),
        fmt::format("set_field:{}->{},set_field:{}->{},set_field:{}->{},{}{}{}", z, kRegSrcEni,
                    info.subnet_index, kRegSrcSubnet, info.nacl_index, kRegSrcNacl,
                    src_open == 0 ? "" : fmt::format("set_field:{}->{},", hex(src_open), kRegOpen),
                    slotLoads(info.slots, true), gotoTable(kPortSecurity)));

  // Source check: only the interface's own MAC and addresses (ARP and ND included).
  const std::string next = gotoTable(kL3Lookup);
  if (!eni.source_dest_check) {
    b.add(kPortSecurity, kDefaultPriority, k, z, src, next);
  } else {
    const std::string own = fmt::format("{},dl_src={}", src, mac);
    for (const auto& a : eni.private_ip_addresses) {
      b.add(kPortSecurity, kDefaultPriority, k, z,
            fmt::format("{},ip,nw_src={}", own, a.toString()), next);
      b.add(kPortSecurity, kDefaultPriority, k, z,
            fmt::format("{},arp,arp_spa={},arp_sha={}", own, a.toString(), mac), next);
    }
    b.add(kPortSecurity, kDefaultPriority, k, z,
          fmt::format("{},udp,nw_src=0.0.0.0,tp_src=68,tp_dst=67", own), next);
    const IpAddress ll = linkLocalFromMac(mac);
    std::vector<IpAddress> v6 = eni.ipv6_addresses;
    v6.push_back(ll);
    for (const auto& a : v6) {
      b.add(kPortSecurity, kDefaultPriority, k, z,
            fmt::format("{},ipv6,ipv6_src={}", own, a.toString()), next);
      // Neighbour advertisements only for the interface's own addresses.
      b.add(kPortSecurity, 120, k, z,
            fmt::format("{},icmp6,ipv6_src={},icmp_type=136,nd_target={}", own, a.toString(),
                        a.toString()),
            next);
    }
    b.add(kPortSecurity, 110, k, z, fmt::format("{},icmp6,icmp_type=136", src),
          dropWith(kVerdictPortSecurity));
    // Duplicate address detection sends from the unspecified address.
    b.add(kPortSecurity, kDefaultPriority, k, z,
          fmt::format("{},icmp6,ipv6_src=::,icmp_type=135", own), next);
  }

  // Lookup: this interface as a destination.
  std::string set_dst =
      fmt::format("set_field:{}->{},set_field:{}->{},set_field:{}->{}", z, kRegDstEni,
                  info.subnet_index, kRegDstSubnet, info.nacl_index, kRegDstNacl);
  if (dst_open != 0) {
    // Masked: the source nibble set at classification stays.
    set_dst += fmt::format(",set_field:{}/{}->{}", hex(dst_open), hex(kOpenDstMask), kRegOpen);
  }
  if (std::string loads = slotLoads(info.slots, false); !loads.empty()) {
    loads.pop_back();  // the trailing comma
    set_dst += "," + loads;
  }
  const std::string same_subnet = fmt::format("{}={}", kRegSrcSubnet, info.subnet_index);
  // One flow per address finds this interface; how the packet gets there depends on the
  // interface's MAC and subnet, not on the address: decided in the next table, where this
  // interface has one flow and its subnet and the router have the others.
  const auto lookup = [&](IpFamily f, const IpAddress& a) {
    b.add(kL3Lookup, kDefaultPriority, k, z,
          fmt::format("{},{}={}", ipMatch(f), f == IpFamily::kV4 ? "nw_dst" : "ipv6_dst",
                      a.toString()),
          fmt::format("{},{}", set_dst, gotoTable(kL3Forward)));
  };
  // Same subnet, switched directly: no NACL, no rewrite.
  b.add(kL3Forward, kDefaultPriority, k, z,
        fmt::format("{}={},{},dl_dst={}", kRegDstEni, z, same_subnet, mac), gotoTable(kSgEgressCt));
  for (const auto& a : eni.private_ip_addresses) {
    lookup(IpFamily::kV4, a);
    b.add(kL3Lookup, 200, k, z,
          fmt::format("arp,{},arp_op=1,arp_tpa={}", same_subnet, a.toString()),
          arpReplyFor(mac, a));
    // From the host only what AWS leaves unfiltered: link-local sources and the subnet's
    // reserved addresses (marked by the flows of infrastructure() and router()); anything else
    // from the host has no way around the groups.
    b.add(kUnfiltered, kDefaultPriority, k, z, fmt::format("{},ip,nw_dst={}", hostOk(), a.toString()),
          fmt::format("output:{}", info.ofport));
    b.add(kUnfiltered, kDefaultPriority, k, z,
          fmt::format("{},arp,arp_tpa={}", hostOk(), a.toString()),
          fmt::format("output:{}", info.ofport));
  }
  // IPv6 link-local from the host, both ways like the VMs' own link-local traffic to it: the
  // host's neighbour solicitations for the VM's addresses (to their solicited-node multicast
  // groups; the link-local one is the EUI-64 address of the VM's MAC, as the router assumes),
  // and link-local unicast to the VM's MAC (NUD, DHCPv6 replies, ping).
  b.add(kUnfiltered, kDefaultPriority, k, z,
        fmt::format("in_port=LOCAL,ipv6,ipv6_src=fe80::/10,ipv6_dst=fe80::/10,dl_dst={}", mac),
        fmt::format("output:{}", info.ofport));
  {
    std::vector<std::string> targets = {linkLocalFromMac(mac).toString()};
    for (const auto& a : eni.ipv6_addresses) {
      targets.push_back(a.toString());
    }
    for (const auto& t : targets) {
      b.add(kUnfiltered, kDefaultPriority, k, z,
            fmt::format("in_port=LOCAL,icmp6,ipv6_src=fe80::/10,ipv6_dst=ff02::/16,icmp_type=135,"
                        "icmp_code=0,nd_target={}",
                        t),
            fmt::format("output:{}", info.ofport));
    }
  }
  for (const auto& a : eni.ipv6_addresses) {
    lookup(IpFamily::kV6, a);
    b.add(kL3Lookup, 400, k, z,
          fmt::format("icmp6,{},icmp_type=135,icmp_code=0,nd_target={}", same_subnet, a.toString()),
          ndReplyFor(mac, a, false));
    b.add(kUnfiltered, kDefaultPriority, k, z,
          fmt::format("in_port=LOCAL,ipv6,ipv6_src=fe80::/10,ipv6_dst={}", a.toString()),
          fmt::format("output:{}", info.ofport));
  }

  // Delivery, with the router's rewrite when routed; counted for flow logs and mirrored as
  // delivered (after the rewrite: a packet whose TTL expires here is neither).
  const std::string dst = fmt::format("{}={}", kRegDstEni, z);
  const std::string deliver = acceptedThen(true, fmt::format("output:{}", info.ofport));
  for (const char* fam : {"ip", "ipv6"}) {
    b.add(kOutput, kDefaultPriority, k, z,
          fmt::format("{},{}={}/{},{}", dst, kRegFlags, hex(kFlagRewrite), hex(kFlagRewrite), fam),
          fmt::format("dec_ttl,set_field:{}->eth_src,set_field:{}->eth_dst,{}", kRouterMac, mac,
                      deliver));
  }
  b.add(kOutput, 90, k, z, dst, deliver);
  if (info.flow_logged) {
    flowLogFlows(b, info.index);
  }
}

std::vector<uint32_t> flowLogRejectVerdicts(const model::Policy& policy) {
  std::vector<uint32_t> out;
  if (policy.flow_logs.empty()) {
    return out;
  }
  out = {kVerdictSgEgressMiss, kVerdictSgIngressMiss, kVerdictSgEgressRevoked,
         kVerdictSgIngressRevoked, kVerdictNaclOutDeny | kNaclStarRule,
         kVerdictNaclInDeny | kNaclStarRule};
  for (const auto& nacl : policy.network_acls) {
    for (const auto& e : nacl.entries) {
      if (!e.allow) {
        out.push_back((e.egress ? kVerdictNaclOutDeny : kVerdictNaclInDeny) |
                      static_cast<uint32_t>(e.rule_number));
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void flowLogRejects(FlowSink& b, const std::vector<uint32_t>& verdicts) {
  const auto k = CookieKind::kFlowLog;
  for (uint32_t v : verdicts) {
    const bool nacl = (v & 0xff000000U) == kVerdictNaclOutDeny ||
                      (v & 0xff000000U) == kVerdictNaclInDeny;
    // NACL verdicts name their rule: one flow per rule number that can deny. The security
    // group kinds have no detail.
    const std::string match = nacl ? fmt::format("{}={}", kRegVerdict, hex(v))
                                   : fmt::format("{}={}/0xff000000", kRegVerdict, hex(v));
    b.add(kDrop, nacl ? 20 : 10, k, 0, match,
          fmt::format("meter:{},{}", kRejectMeterId, sampleAction(v, 0)));
  }
}

void flowLogFlows(FlowSink& b, uint16_t z) {
  const auto k = CookieKind::kFlowLog;
  // Per side: learn a counting flow for each new connection (5-tuple; ICMP and other protocols
  // by addresses and protocol) and sample the packet, which no learned flow counted. (Sampling
  // TCP FIN/RST of counted packets for AWS's tcp-flags field was tried: it gave every FIN a
  // datapath flow and an upcall of its own and halved the connection rate, docs/flowlogs.md.)
  for (bool ingress : {false, true}) {
    const Table table = ingress ? kFlowLogIngress : kFlowLogEgress;
    const Table learned = ingress ? kFlowLogIngressLearned : kFlowLogEgressLearned;
    const std::string reg = fmt::format("{}={}", ingress ? kRegDstEni : kRegSrcEni, z);
    const char* nxm_reg = ingress ? kNxmDstEni : kNxmSrcEni;
    const uint32_t side = (ingress ? kObsIngressBit : 0) | z;
    const std::string count = sampleAction((kObsCount << 24) | side, 0);

    struct Proto {
      const char* match;
      uint16_t priority;
      const char* spec;  // what the learned flow matches besides the interface
    };
    const Proto protos[] = {
        {"tcp", 10, "eth_type=0x800,nw_proto=6,NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_TCP_SRC[],NXM_OF_TCP_DST[]"},
        {"udp", 10, "eth_type=0x800,nw_proto=17,NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_UDP_SRC[],NXM_OF_UDP_DST[]"},
        {"ip", 5, "eth_type=0x800,NXM_OF_IP_PROTO[],NXM_OF_IP_SRC[],NXM_OF_IP_DST[]"},
        {"tcp6", 10, "eth_type=0x86dd,nw_proto=6,NXM_NX_IPV6_SRC[],NXM_NX_IPV6_DST[],NXM_OF_TCP_SRC[],NXM_OF_TCP_DST[]"},
        {"udp6", 10, "eth_type=0x86dd,nw_proto=17,NXM_NX_IPV6_SRC[],NXM_NX_IPV6_DST[],NXM_OF_UDP_SRC[],NXM_OF_UDP_DST[]"},
        {"ipv6", 5, "eth_type=0x86dd,NXM_OF_IP_PROTO[],NXM_NX_IPV6_SRC[],NXM_NX_IPV6_DST[]"},
    };
    for (const Proto& p : protos) {
      b.add(table, p.priority, k, z, fmt::format("{},{}", reg, p.match),
            fmt::format("learn(table={},idle_timeout={},priority=10,cookie={:#x},{}[],{},"
                        "load:0x1->NXM_NX_REG9[0]),{},resubmit(,{})",
                        static_cast<int>(learned), kLearnedIdleTimeout,
                        kLearnedCookieMagic | (uint64_t{ingress ? 1U : 0U} << 16) | z, nxm_reg,
                        p.spec, count,
                        static_cast<int>(ingress ? kFlowLogIngressMark : kFlowLogEgressMark)));
    }
  }
}

namespace {

// "tp_src=0x400/0xfc00" etc.: the masks of a port range, none for all ports.
std::vector<std::string> portMatches(const char* field, const std::optional<model::PortRange>& r) {
  if (!r || (r->from <= 0 && r->to >= 65535)) {
    return {""};
  }
  std::vector<std::string> out;
  for (const auto& m : portRangeMasks(static_cast<uint16_t>(r->from), static_cast<uint16_t>(r->to))) {
    out.push_back(m.mask == 0xffff ? fmt::format(",{}={}", field, m.value)
                                   : fmt::format(",{}={:#x}/{:#x}", field, m.value, m.mask));
  }
  return out;
}

// The matches of one filter rule (several when port ranges need masks).
std::vector<std::string> mirrorRuleMatches(const MirrorRulePlan& r) {
  const bool v4 = r.source.family() == IpFamily::kV4;
  std::string proto = v4 ? "ip" : "ipv6";
  const bool ports = r.protocol == kProtoTcp || r.protocol == kProtoUdp;
  if (r.protocol == kProtoTcp) {
    proto = v4 ? "tcp" : "tcp6";
  } else if (r.protocol == kProtoUdp) {
    proto = v4 ? "udp" : "udp6";
  } else if (r.protocol != kProtoAll) {
    proto += fmt::format(",nw_proto={}", r.protocol);
  }
  for (const auto& [cidr, source] : {std::pair{r.source, true}, std::pair{r.destination, false}}) {
    if (const std::string a = addressMatch(cidr, source); !a.empty()) {
      proto += "," + a;
    }
  }
  std::vector<std::string> out;
  const auto src = ports ? portMatches("tp_src", r.source_ports) : std::vector<std::string>{""};
  const auto dst = ports ? portMatches("tp_dst", r.destination_ports) : std::vector<std::string>{""};
  for (const auto& s : src) {
    for (const auto& d : dst) {
      out.push_back(proto + s + d);
    }
  }
  return out;
}

// The copy of one session: VXLAN with its VNI to its destination, cut to packet_length and never
// beyond kMirrorMaxCopyBytes, in a clone so the packet itself goes on unchanged.
std::string mirrorCopy(const MirrorSessionPlan& s, int tunnel_ofport) {
  const int length = std::min(s.packet_length.value_or(kMirrorMaxCopyBytes), kMirrorMaxCopyBytes);
  const std::string mark = s.local_target ? fmt::format("set_field:{:#x}->pkt_mark,", kMirrorPktMark) : "";
  return fmt::format("clone({}set_field:{:#x}->tun_id,set_field:{}->tun_dst,output(port={},max_len={}))",
                     mark, s.vni, s.tunnel_destination.toString(), tunnel_ofport, length);
}

}  // namespace

void mirrorFlows(FlowSink& b, const MirrorPlan& plan) {
  const auto k = CookieKind::kMirror;
  for (const auto& src : plan.sources) {
    for (bool ingress : {false, true}) {
      const Table table = ingress ? kMirrorIngress : kMirrorEgress;
      const std::string reg = fmt::format("{}={}", ingress ? kRegDstEni : kRegSrcEni, src.index);
      const size_t n = src.sessions.size();
      for (size_t rank = 0; rank < n; ++rank) {
        const auto& session = src.sessions[rank];
        // Not this session's packet (a reject rule or no rule): the next session's filter.
        const std::string next =
            rank + 1 < n ? fmt::format("set_field:{}->{},resubmit(,{})", rank + 1, kRegMirrorRank,
                                       static_cast<int>(table))
                         : "drop";
        const std::string here = fmt::format("{},{}={}", reg, kRegMirrorRank, rank);
        for (const auto& r : ingress ? session.ingress : session.egress) {
          const auto priority = static_cast<uint16_t>(kMirrorRuleBasePriority - r.rule_number);
          const std::string action = r.accept ? mirrorCopy(session, plan.tunnel_ofport) : next;
          for (const auto& m : mirrorRuleMatches(r)) {
            b.add(table, priority, k, src.index, here + "," + m, action);
          }
        }
        b.add(table, kMirrorMissPriority, k, src.index, here, next);
      }
    }
  }
}

uint32_t groupOpenBits(const model::SecurityGroup& group) {
  uint32_t bits = 0;
  for (bool egress : {false, true}) {
    for (const auto& r : egress ? group.egress : group.ingress) {
      const auto* c = std::get_if<Cidr>(&r.peer);
      if (c == nullptr || !c->isAll()) {
        continue;
      }
      const bool all_ports = !r.ports || (r.ports->from <= 0 && r.ports->to >= 65535);
      for (bool udp : {false, true}) {
        const int proto = udp ? kProtoUdp : kProtoTcp;
        if (r.ip_protocol == kProtoAll || (r.ip_protocol == proto && all_ports)) {
          // Ingress rules open the source nibble (read at SG egress), egress rules the
          // destination nibble (read at SG ingress).
          bits |= openBit(egress, c->family() == IpFamily::kV6, udp);
        }
      }
    }
  }
  return bits;
}

void normalizePeers(std::vector<Cidr>& cidrs) {
  std::sort(cidrs.begin(), cidrs.end());
  cidrs.erase(std::unique(cidrs.begin(), cidrs.end()), cidrs.end());
}

void appendAddresses(const model::NetworkInterface& eni, std::vector<Cidr>& out) {
  for (const auto& a : eni.private_ip_addresses) {
    out.push_back(Cidr{a, 32});
  }
  for (const auto& a : eni.ipv6_addresses) {
    out.push_back(Cidr{a, 128});
  }
}

std::string peerMatch(const Cidr& c, bool egress) {
  return join({ipMatch(c.family()), addressMatch(c, !egress)});
}

std::string peerKey(const model::Peer& peer, bool egress) {
  std::string key = egress ? "d|" : "s|";
  if (const auto* c = std::get_if<Cidr>(&peer)) {
    key += "c|" + c->toString();
  } else if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
    key += "g|" + g->group_id;
  } else if (const auto* pl = std::get_if<model::PrefixListRef>(&peer)) {
    key += "p|" + pl->prefix_list_id;
  }
  return key;
}

PeerSet makePeerSet(std::vector<Cidr> cidrs, bool egress) {
  PeerSet out;
  out.cidrs = std::move(cidrs);
  out.matches.reserve(out.cidrs.size());
  for (const auto& c : out.cidrs) {
    out.matches.push_back(peerMatch(c, egress));
  }
  return out;
}


bool peerClauseApplies(const model::SecurityGroupRule& rule, IpFamily family) {
  return !protocolMatches(family, rule.ip_protocol, rule.ports, rule.icmp).empty();
}

std::string ruleName(const std::string& group_id, bool egress, size_t number) {
  return fmt::format("{} {} #{}", group_id, egress ? "egress" : "ingress", number);
}

namespace {
uint64_t fingerprint(const model::SecurityGroup& sg, bool egress,
                     const model::SecurityGroupRule& rule, const std::vector<Cidr>& peers);
}  // namespace

RuleResult rule(FlowSink& b, const RuleUnit& unit) {
  RuleResult result;
  const model::SecurityGroup& sg = *unit.sg;
  const bool egress = unit.egress;
  const model::SecurityGroupRule& rule = *unit.rule;
  const std::vector<uint16_t>& local = *unit.local;
  const uint32_t id = unit.id;
  if (local.empty()) {
    return result;  // no member on this bridge: nothing to enforce here
  }
  // The open bits of local[i], by ENI index.
  const auto openOf = [&](size_t i) { return (*unit.local_open)[i]; };
  const PeerSet& peer_set = *unit.peers;
  const std::vector<Cidr>& peers = peer_set.cidrs;
  const Table table = egress ? kSgEgressEval : kSgIngressEval;
  // Clause flows per family; a family with no peer or no protocol match contributes nothing.
  std::vector<const std::string*> peer_matches;
  std::vector<std::string> proto_matches;
  std::set<IpFamily> families;
  for (IpFamily f : {IpFamily::kV4, IpFamily::kV6}) {
    if (!protocolMatches(f, rule.ip_protocol, rule.ports, rule.icmp).empty()) {
      for (size_t i = 0; i < peers.size(); ++i) {
        if (peers[i].family() == f) {
          families.insert(f);
          peer_matches.push_back(&peer_set.matches[i]);
        }
      }
    }
  }
  if (families.empty()) {
    return result;
  }
  for (IpFamily f : families) {
    for (auto& m : protocolMatches(f, rule.ip_protocol, rule.ports, rule.icmp)) {
      if (!m.empty()) {
        proto_matches.push_back(std::move(m));
      }
    }
  }
  const uint8_t n = proto_matches.empty() ? 2 : 3;
  result.produced = true;
  result.n_clauses = n;
  result.without_conjunction =
      uint64_t{local.size()} * peer_matches.size() * std::max<size_t>(1, proto_matches.size());

  if (unit.member_clauses) {
    for (const MemberClause& m : *unit.members) {
      b.addClause(table, kEvalPriority, memberClauseMatch(egress, m), ConjAction{id, 1, n});
    }
  }
  if (unit.peer_clauses) {
    for (const std::string* m : peer_matches) {
      b.addClause(table, kEvalPriority, *m, ConjAction{id, 2, n});
    }
  }
  for (const auto& m : proto_matches) {
    b.addClause(table, kEvalPriority, m, ConjAction{id, 3, n});
  }
  const char* zone = egress ? kNxmSrcEni : kNxmDstEni;
  const Table next = egress ? kNaclOut : kOutput;
  const bool strict = unit.strict;
  // The fingerprint formats every peer address: computed only for rules with checked commits.
  std::optional<uint64_t> fp_once;
  const auto fp = [&] {
    if (!fp_once) {
      fp_once = fingerprint(sg, egress, rule, peers);
    }
    return *fp_once;
  };
  const auto checked_label = [&] { return labelHex(fp(), kCheckedLow | id); };
  // The committing rule is sampled for flow logs (the deciding rule of ACCEPT records): once
  // per connection, as only new (and re-evaluated) connections reach the evaluation table.
  const std::string rule_sample = sampleAction((kObsRule << 24) | (egress ? 0 : kObsIngressBit), id);
  const auto commit = [&](const std::string& label) {
    return fmt::format("{},ct(commit,zone={}[0..15],exec(set_field:{}->ct_label)),{}", rule_sample,
                       zone, label, gotoTable(next));
  };
  for (IpFamily f : families) {
    b.add(table, kEvalPriority, CookieKind::kSgRule, id,
          fmt::format("conj_id={},{}", id, ipMatch(f)), commit(strict ? checked_label() : hex(id)));
  }
  // AWS-untracked flows: a 0.0.0.0/0 (::/0) rule for TCP/UDP on an ENI whose opposite
  // direction is open to the internet for that protocol (kRegOpen). ICMP and other protocols
  // stay tracked. In strict mode the plain commit is checked already.
  uint32_t untracked_bits = 0;
  const auto* all = std::get_if<Cidr>(&rule.peer);
  if (!strict && all != nullptr && all->isAll()) {
    const bool v6 = all->family() == IpFamily::kV6;
    for (bool udp : {false, true}) {
      const int proto = udp ? kProtoUdp : kProtoTcp;
      if (rule.ip_protocol != kProtoAll && rule.ip_protocol != proto) {
        continue;
      }
      const uint32_t bit = openBit(!egress, v6, udp);
      bool any_open = false;
      for (size_t i = 0; i < local.size(); ++i) {
        any_open = any_open || (openOf(i) & bit) != 0;
      }
      if (!any_open) {
        continue;  // no member on this bridge is open in the opposite direction
      }
      b.add(table, kEvalUntrackedPriority, CookieKind::kSgRule, id,
            fmt::format("conj_id={},{},{}={}/{}", id,
                        udp ? (v6 ? "udp6" : "udp") : (v6 ? "tcp6" : "tcp"), kRegOpen, hex(bit),
                        hex(bit)),
            commit(checked_label()));
      untracked_bits |= bit;
    }
  }
  if (!strict && untracked_bits == 0) {
    return result;  // never checked: dispatch treats its connections like any tracked one
  }
  // Live checked connections of this rule continue in both dispatch tables: the original
  // direction passes the rule's own stage, replies the opposite stage of the same ENI (same
  // zone). Two clauses keep this a sum: the label (one flow per rule) and the ENI (one flow
  // per member, shared by all its rules) - an ENI that left the group loses its connections.
  const std::string live =
      fmt::format("ct_state=-new+est+trk,ct_label={}/{}", labelHex(fp(), kCheckedLow),
                  labelHex(0xffffffffULL, kCheckedLow));
  for (auto [dispatch, reg, after] :
       {std::tuple{kSgEgress, kRegSrcEni, kNaclOut}, std::tuple{kSgIngress, kRegDstEni, kOutput}}) {
    b.addClause(dispatch, kDispatchLivePriority, live, ConjAction{id, 1, 2});
    if (strict) {
      // Every member commits checked connections: the group's member clauses (its slots; the
      // local ENI's slots are loaded on both sides, egress at 31 and ingress at 51).
      for (const MemberClause& m : *unit.members) {
        b.addClause(dispatch, kDispatchLivePriority, memberClauseMatch(dispatch == kSgEgress, m),
                    ConjAction{id, 2, 2});
      }
    } else {
      // Only the members whose opposite direction is open: per member.
      for (size_t i = 0; i < local.size(); ++i) {
        if ((openOf(i) & untracked_bits) != 0) {
          b.addClause(dispatch, kDispatchLivePriority, fmt::format("{}={}", reg, local[i]),
                      ConjAction{id, 2, 2});
        }
      }
    }
    b.add(dispatch, kDispatchLivePriority, CookieKind::kSgRule, id, fmt::format("conj_id={}", id),
          gotoTable(after));
  }
  return result;
}

namespace {

// What a rule allows, hashed (ct_label[64..95] of its checked connections): stable across
// reorderings and restarts, different when the rule's effect changes.
uint64_t fingerprint(const model::SecurityGroup& sg, bool egress,
                     const model::SecurityGroupRule& rule, const std::vector<Cidr>& peers) {
  std::string text =
      fmt::format("{}|{}|{}", sg.id, egress ? "egress" : "ingress", rule.ip_protocol);
  if (rule.ports) {
    text += fmt::format("|ports={}-{}", rule.ports->from, rule.ports->to);
  }
  if (rule.icmp) {
    text += fmt::format("|icmp={}/{}", rule.icmp->type, rule.icmp->code);
  }
  for (const auto& c : peers) {
    text += "|" + c.toString();
  }
  return fnv1a(text);
}
}  // namespace

size_t networkAcl(FlowSink& b, const model::NetworkAcl& nacl, uint32_t ni) {
  size_t count = 0;
  const auto k = CookieKind::kNacl;
  for (const auto& e : nacl.entries) {
    const Table table = e.egress ? kNaclOut : kNaclIn;
    const std::string reg = fmt::format("{}={}", e.egress ? kRegSrcNacl : kRegDstNacl, ni);
    // Outbound entries name the destination; inbound entries name the source.
    const std::string addr = addressMatch(e.cidr, !e.egress);
    const auto prio = static_cast<uint16_t>(kNaclBasePriority - e.rule_number);
    const std::string action =
        e.allow ? (e.egress ? acceptedThen(false, gotoTable(kNaclIn)) : gotoTable(kSgIngressCt))
                : dropWith((e.egress ? kVerdictNaclOutDeny : kVerdictNaclInDeny) |
                           static_cast<uint32_t>(e.rule_number));
    auto protos = protocolMatches(e.cidr.family(), e.protocol, e.port_range, e.icmp_type_code);
    for (const auto& p : protos) {
      b.add(table, prio, k, ni, join({reg, p.empty() ? ipMatch(e.cidr.family()) : p, addr}),
            action);
      ++count;
    }
  }
  for (bool egress : {true, false}) {
    b.add(egress ? kNaclOut : kNaclIn, kNaclStarPriority, k, ni,
          fmt::format("{}={}", egress ? kRegSrcNacl : kRegDstNacl, ni),
          dropWith((egress ? kVerdictNaclOutDeny : kVerdictNaclInDeny) | kNaclStarRule));
    ++count;
  }
  return count;
}

// ---- clause keys ---------------------------------------------------------------------------

std::string clauseKey(uint8_t table, uint16_t priority, std::string_view match) {
  std::string key;
  key.reserve(match.size() + 3);
  key += static_cast<char>(table);
  key += static_cast<char>(priority >> 8);
  key += static_cast<char>(priority & 0xff);
  key += match;
  return key;
}

uint8_t clauseKeyTable(std::string_view key) { return static_cast<uint8_t>(key[0]); }

uint16_t clauseKeyPriority(std::string_view key) {
  return static_cast<uint16_t>((static_cast<uint8_t>(key[1]) << 8) | static_cast<uint8_t>(key[2]));
}

std::string_view clauseKeyMatch(std::string_view key) { return key.substr(3); }

Flow clauseFlow(std::string_view key, const std::vector<ConjAction>& actions, uint16_t generation) {
  // "conjunction(id,clause/n),...". A member clause carries one action per rule of its
  // interface's groups (hundreds), and a one-rule change rewrites the member clauses of the
  // group's members: written with to_chars, which is several times faster than fmt here.
  std::string text;
  text.reserve(actions.size() * 26);
  char digits[16];
  const auto number = [&](uint32_t v) {
    const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    text.append(digits, end);
  };
  for (const auto& a : actions) {
    if (!text.empty()) {
      text += ',';
    }
    text += "conjunction(";
    number(a.id);
    text += ',';
    number(a.clause);
    text += '/';
    number(a.n_clauses);
    text += ')';
  }
  return Flow{clauseKeyTable(key), clauseKeyPriority(key),
              makeCookie(generation, CookieKind::kSgClause, 0), std::string(clauseKeyMatch(key)),
              std::move(text)};
}

}  // namespace vpcguard::units
