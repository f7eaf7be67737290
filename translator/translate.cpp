#include "translator/translate.h"

#include <algorithm>
#include <iterator>
#include <cstdio>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "translator/pipeline.h"

namespace vpcguard {
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

// FNV-1a: a stable 32-bit hash, the same in every build and on every host (the fingerprint
// outlives the daemon inside conntrack).
uint32_t fnv1a(std::string_view text) {
  uint32_t h = 2166136261U;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619U;
  }
  return h;
}

std::string dropWith(uint32_t verdict) {
  return fmt::format("set_field:{}->{},{}", hex(verdict), kRegVerdict, gotoTable(kDrop));
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
    for (const auto& m : portRangeMasks(static_cast<uint16_t>(ports->from),
                                        static_cast<uint16_t>(ports->to))) {
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

// Collects flows; clause flows with the same (table, priority, match) are merged so that one
// flow carries every conjunction action that needs it.
class FlowBuilder {
 public:
  explicit FlowBuilder(uint16_t generation) : generation_(generation) {}

  void add(Table table, uint16_t priority, CookieKind kind, uint32_t index, std::string match,
           std::string actions) {
    flows_.push_back(Flow{table, priority, makeCookie(generation_, kind, index), std::move(match),
                          std::move(actions)});
  }

  void addClause(Table table, const std::string& match, uint32_t conj_id, int clause,
                 int n_clauses, uint16_t priority = kEvalPriority) {
    // Hashing the match text once beats ordered comparisons of long strings: with groups of
    // thousands of members this map holds tens of thousands of keys.
    std::string key;
    key.reserve(match.size() + 8);
    key += static_cast<char>(table);
    key += static_cast<char>(priority >> 8);
    key += static_cast<char>(priority & 0xff);
    key += match;
    clauses_[std::move(key)].emplace_back(conj_id, clause, n_clauses);
  }

  [[nodiscard]] size_t clauseFlowCount() const { return clauses_.size(); }

  std::vector<Flow> finish() {
    flows_.reserve(flows_.size() + clauses_.size());
    for (auto& [key, actions] : clauses_) {
      std::sort(actions.begin(), actions.end());
      actions.erase(std::unique(actions.begin(), actions.end()), actions.end());
      std::string text;
      text.reserve(actions.size() * 24);
      for (const auto& [id, clause, n] : actions) {
        if (!text.empty()) {
          text += ',';
        }
        fmt::format_to(std::back_inserter(text), "conjunction({},{}/{})", id, clause, n);
      }
      const auto table = static_cast<Table>(static_cast<uint8_t>(key[0]));
      const auto priority = static_cast<uint16_t>((static_cast<uint8_t>(key[1]) << 8) |
                                                  static_cast<uint8_t>(key[2]));
      add(table, priority, CookieKind::kSgClause, 0, key.substr(3), std::move(text));
    }
    clauses_.clear();
    std::sort(flows_.begin(), flows_.end(), [](const Flow& a, const Flow& b) {
      return std::tie(a.table, b.priority, a.match) < std::tie(b.table, a.priority, b.match);
    });
    return std::move(flows_);
  }

 private:
  uint16_t generation_;
  std::vector<Flow> flows_;
  // (table, priority, match) packed into one string -> conjunction actions.
  std::unordered_map<std::string, std::vector<std::tuple<uint32_t, int, int>>> clauses_;
};

struct InterfaceInfo {
  const model::NetworkInterface* eni = nullptr;
  uint16_t index = 0;
  uint32_t subnet_index = 0;
  uint32_t nacl_index = 0;
  int ofport = -1;  // -1 = not attached to this bridge
};

class Translator {
 public:
  explicit Translator(const TranslateInput& in) : in_(in), policy_(*in.policy), b_(in.generation) {}

  Result<Translation> run() {
    if (auto r = index(); !r) {
      return tl::unexpected(r.error());
    }
    infrastructure();
    for (const auto& s : policy_.subnets) {
      router(s);
    }
    for (const auto& info : interfaces_) {
      if (info.ofport >= 0) {
        interfaceFlows(info);
      }
    }
    for (const auto& sg : policy_.security_groups) {
      securityGroup(sg);
    }
    for (size_t i = 0; i < policy_.network_acls.size(); ++i) {
      networkAcl(policy_.network_acls[i], static_cast<uint32_t>(i + 1));
    }
    out_.stats.sg_clause_flows = b_.clauseFlowCount();
    out_.flows = b_.finish();
    out_.stats.flows = out_.flows.size();
    return std::move(out_);
  }

 private:
  Result<void> index() {
    for (size_t i = 0; i < policy_.subnets.size(); ++i) {
      subnet_index_[policy_.subnets[i].id] = static_cast<uint32_t>(i + 1);
    }
    for (size_t i = 0; i < policy_.network_acls.size(); ++i) {
      nacl_index_[policy_.network_acls[i].id] = static_cast<uint32_t>(i + 1);
    }
    for (const auto& s : policy_.subnets) {
      subnets_[s.id] = &s;
    }
    for (const auto& g : policy_.security_groups) {
      groups_[g.id] = &g;
    }
    for (const auto& eni : policy_.network_interfaces) {
      InterfaceInfo info;
      info.eni = &eni;
      auto idx = in_.interface_index.find(eni.id);
      if (idx == in_.interface_index.end() || idx->second == 0) {
        return makeError("interface " + eni.id + " has no index (call assignInterfaceIndices)");
      }
      info.index = idx->second;
      auto sn = subnets_.find(eni.subnet_id);
      if (sn == subnets_.end()) {
        return makeError("interface " + eni.id + ": unknown subnet " + eni.subnet_id);
      }
      info.subnet_index = subnet_index_[eni.subnet_id];
      auto nacl = nacl_index_.find(sn->second->network_acl_id);
      if (nacl == nacl_index_.end()) {
        return makeError("subnet " + eni.subnet_id + ": unknown network ACL '" +
                         sn->second->network_acl_id + "' (were defaults resolved?)");
      }
      info.nacl_index = nacl->second;
      if (auto p = in_.ofports.find(eni.id); p != in_.ofports.end()) {
        info.ofport = p->second;
      }
      for (const auto& g : eni.security_group_ids) {
        group_members_[g].push_back(interfaces_.size());
      }
      open_bits_[info.index] = openBits(eni);
      interfaces_.push_back(info);
    }
    return {};
  }

  void infrastructure() {
    const auto k = CookieKind::kInfra;
    b_.add(kClassify, 0, k, 0, "", dropWith(kVerdictPortSecurity));
    b_.add(kClassify, kDefaultPriority, k, 0, "in_port=LOCAL", gotoTable(kUnfiltered));
    b_.add(kPortSecurity, 0, k, 0, "", dropWith(kVerdictPortSecurity));
    b_.add(kL3Lookup, 0, k, 0, "", dropWith(kVerdictNoRoute));
    // What AWS never filters goes to the host, where operators may add their own filters.
    b_.add(kL3Lookup, 300, k, 0, "ip,nw_dst=169.254.0.0/16", gotoTable(kUnfiltered));
    b_.add(kL3Lookup, 300, k, 0, "ipv6,ipv6_dst=fe80::/10", gotoTable(kUnfiltered));
    b_.add(kL3Lookup, 300, k, 0, "ipv6,ipv6_dst=ff00::/8", gotoTable(kUnfiltered));
    b_.add(kL3Lookup, 300, k, 0, "udp,nw_dst=255.255.255.255,tp_src=68,tp_dst=67",
           gotoTable(kUnfiltered));
    // The host answers ARP for link-local services (metadata, time, DNS) through the router's
    // MAC, which is also the bridge's own MAC (vpcguardd sets it), so the host accepts them.
    b_.add(kL3Lookup, 400, k, 0, "arp,arp_op=1,arp_tpa=169.254.0.0/16",
           arpReplySwap(kRouterMac));
    // Duplicate address detection (a solicitation from ::) must go unanswered, or the guest
    // would think its own address is taken.
    b_.add(kL3Lookup, 450, k, 0, "icmp6,ipv6_src=::,icmp_type=135", gotoTable(kUnfiltered));
    b_.add(kL3Lookup, 300, k, 0, "udp6,tp_src=546,tp_dst=547", gotoTable(kUnfiltered));
    b_.add(kL3Lookup, 150, k, 0, "arp,arp_op=2", gotoTable(kUnfiltered));
    const std::string checked = fmt::format("ct_label={0}/{0}", labelHex(0, kCheckedLow));
    for (auto [ct, sg, eval, zone, next, miss, revoked] :
         {std::tuple{kSgEgressCt, kSgEgress, kSgEgressEval, kNxmSrcEni, kNaclOut,
                     kVerdictSgEgressMiss, kVerdictSgEgressRevoked},
          std::tuple{kSgIngressCt, kSgIngress, kSgIngressEval, kNxmDstEni, kOutput,
                     kVerdictSgIngressMiss, kVerdictSgIngressRevoked}}) {
      // The second ct() of a packet runs in another zone: clear the first zone's state.
      const std::string clear = ct == kSgIngressCt ? "ct_clear," : "";
      for (const char* fam : {"ip", "ipv6"}) {
        b_.add(ct, kDefaultPriority, k, 0, fam,
               fmt::format("{}ct(table={},zone={}[0..15])", clear, static_cast<int>(sg), zone));
      }
      b_.add(ct, 0, k, 0, "", dropWith(miss));
      // Dispatch. Live checked connections are the conjunctions at kDispatchLivePriority
      // (rule()); a checked connection that gets below them has lost its rule. Its original
      // direction is evaluated again, so another rule may take it over (re-commit, new label);
      // its reply direction cannot be evaluated against the rules (they are written for the
      // original direction), so it is dropped until an original-direction packet re-labels it.
      b_.add(sg, kDispatchInvalidPriority, k, 0, "ct_state=+inv+trk", dropWith(kVerdictCtInvalid));
      b_.add(sg, kDispatchRevokedPriority, k, 0, "ct_state=-new+est-rpl+trk," + checked,
             gotoTable(eval));
      b_.add(sg, kDispatchRevokedPriority, k, 0, "ct_state=-new+est+rpl+trk," + checked,
             dropWith(revoked));
      b_.add(sg, kDispatchTrackedPriority, k, 0, "ct_state=-new+est+trk", gotoTable(next));
      b_.add(sg, kDispatchTrackedPriority, k, 0, "ct_state=-new+rel+trk", gotoTable(next));
      b_.add(sg, 0, k, 0, "", gotoTable(eval));
      b_.add(eval, 0, k, 0, "", dropWith(miss));
    }
    // NACLs apply only when the packet crosses a subnet boundary.
    b_.add(kNaclOut, 50000, k, 0, fmt::format("{}=0/{}", kRegFlags, hex(kFlagRouted)),
           gotoTable(kSgIngressCt));
    b_.add(kNaclOut, 0, k, 0, "", dropWith(kVerdictNaclOutDeny | kNaclStarRule));
    b_.add(kNaclIn, 0, k, 0, "", dropWith(kVerdictNaclInDeny | kNaclStarRule));
    b_.add(kOutput, 0, k, 0, "", dropWith(kVerdictNoRoute));
    b_.add(kUnfiltered, 10, k, 0, "", "output:LOCAL");
    // From the host, only what the per-interface flows deliver (link-local and reserved sources).
    b_.add(kUnfiltered, 20, k, 0, "in_port=LOCAL", "drop");
    b_.add(kNdReply, kDefaultPriority, k, 0, "icmp6,icmp_type=136,icmp_code=0",
           "move:NXM_OF_ETH_SRC[]->NXM_NX_ND_TLL[],IN_PORT");
    b_.add(kNdReply, 0, k, 0, "", "drop");
    b_.add(kDrop, 0, k, 0, "", "drop");
  }

  static std::string arpReply(const std::string& mac, const IpAddress& ip) {
    return fmt::format(
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,"
        "set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
        "set_field:{mac}->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
        "set_field:{ip}->arp_spa,IN_PORT",
        fmt::arg("mac", mac), fmt::arg("ip", ip.toString()));
  }

  // ARP reply for whatever address was asked (a range of addresses answered by one MAC): the
  // sender and target addresses swap through a scratch register.
  static std::string arpReplySwap(const std::string& mac) {
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
  static std::string ndReply(const std::string& mac, const IpAddress& ip, bool router) {
    return fmt::format(
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,"
        "move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:{ip}->ipv6_src,"
        "set_field:255->nw_ttl,set_field:136->icmpv6_type,set_field:{flags}->nd_reserved,"
        "set_field:{mac}->nd_sll,set_field:2->nd_options_type,resubmit(,{next})",
        fmt::arg("mac", mac), fmt::arg("ip", ip.toString()),
        fmt::arg("flags", router ? "0xe0000000" : "0x60000000"),
        fmt::arg("next", static_cast<int>(kNdReply)));
  }

  void router(const model::Subnet& s) {
    const uint32_t si = subnet_index_[s.id];
    const auto k = CookieKind::kRouter;
    const std::string reg = fmt::format("{}={}", kRegSrcSubnet, si);
    const IpAddress gw = s.cidr_block.first().plus(1);
    // The router answers ARP for the subnet's reserved addresses (network, router, DNS, spare),
    // so a VM reaches the services behind them (on the host) like on AWS.
    for (int64_t i = 0; i < 4; ++i) {
      const IpAddress r = s.cidr_block.first().plus(i);
      b_.add(kL3Lookup, 400, k, si, fmt::format("arp,{},arp_op=1,arp_tpa={}", reg, r.toString()),
             arpReply(kRouterMac, r));
    }
    // AWS never filters the subnet's reserved addresses: network, router, DNS, reserved, last.
    for (const IpAddress& a : {s.cidr_block.first(), gw, s.cidr_block.first().plus(2),
                               s.cidr_block.first().plus(3), s.cidr_block.last()}) {
      b_.add(kL3Lookup, 300, k, si, fmt::format("ip,{},nw_dst={}", reg, a.toString()),
             gotoTable(kUnfiltered));
    }
    if (s.ipv6_cidr_block) {
      const IpAddress gw6 = s.ipv6_cidr_block->first().plus(1);
      b_.add(kL3Lookup, 400, k, si,
             fmt::format("icmp6,{},icmp_type=135,icmp_code=0,nd_target={}", reg, gw6.toString()),
             ndReply(kRouterMac, gw6, true));
      const IpAddress ll = linkLocalFromMac(kRouterMac);
      b_.add(kL3Lookup, 400, k, si,
             fmt::format("icmp6,{},icmp_type=135,icmp_code=0,nd_target={}", reg, ll.toString()),
             ndReply(kRouterMac, ll, true));
      for (int64_t i = 0; i < 4; ++i) {
        b_.add(kL3Lookup, 300, k, si,
               fmt::format("ipv6,{},ipv6_dst={}", reg, s.ipv6_cidr_block->first().plus(i).toString()),
               gotoTable(kUnfiltered));
      }
    }
  }

  // Source addresses the host may use towards an interface without its groups applying.
  std::vector<std::string> hostSources(const InterfaceInfo& info) const {
    std::vector<std::string> out = {"169.254.0.0/16"};
    const auto& subnet = *subnets_.at(info.eni->subnet_id);
    for (int64_t i = 0; i < 4; ++i) {
      out.push_back(subnet.cidr_block.first().plus(i).toString());
    }
    return out;
  }

  void interfaceFlows(const InterfaceInfo& info) {
    const auto& eni = *info.eni;
    const auto k = CookieKind::kInterface;
    const uint32_t z = info.index;
    const std::string mac = eni.mac_address;
    const std::string src = fmt::format("{}={}", kRegSrcEni, z);

    // Classification.
    const uint32_t open = open_bits_.at(info.index);
    const uint32_t src_open = open & kOpenSrcMask;
    const uint32_t dst_open = open & kOpenDstMask;
    b_.add(kClassify, kDefaultPriority, k, z, fmt::format("in_port={}", info.ofport),
           fmt::format("set_field:{}->{},set_field:{}->{},set_field:{}->{},{}{}", z, kRegSrcEni,
                       info.subnet_index, kRegSrcSubnet, info.nacl_index, kRegSrcNacl,
                       src_open == 0 ? "" : fmt::format("set_field:{}->{},", hex(src_open), kRegOpen),
                       gotoTable(kPortSecurity)));

    // Source check: only the interface's own MAC and addresses (ARP and ND included).
    const std::string next = gotoTable(kL3Lookup);
    if (!eni.source_dest_check) {
      b_.add(kPortSecurity, kDefaultPriority, k, z, src, next);
    } else {
      const std::string own = fmt::format("{},dl_src={}", src, mac);
      for (const auto& a : eni.private_ip_addresses) {
        b_.add(kPortSecurity, kDefaultPriority, k, z, fmt::format("{},ip,nw_src={}", own, a.toString()),
               next);
        b_.add(kPortSecurity, kDefaultPriority, k, z,
               fmt::format("{},arp,arp_spa={},arp_sha={}", own, a.toString(), mac), next);
      }
      b_.add(kPortSecurity, kDefaultPriority, k, z,
             fmt::format("{},udp,nw_src=0.0.0.0,tp_src=68,tp_dst=67", own), next);
      const IpAddress ll = linkLocalFromMac(mac);
      std::vector<IpAddress> v6 = eni.ipv6_addresses;
      v6.push_back(ll);
      for (const auto& a : v6) {
        b_.add(kPortSecurity, kDefaultPriority, k, z,
               fmt::format("{},ipv6,ipv6_src={}", own, a.toString()), next);
        // Neighbour advertisements only for the interface's own addresses.
        b_.add(kPortSecurity, 120, k, z,
               fmt::format("{},icmp6,ipv6_src={},icmp_type=136,nd_target={}", own, a.toString(),
                           a.toString()),
               next);
      }
      b_.add(kPortSecurity, 110, k, z, fmt::format("{},icmp6,icmp_type=136", src),
             dropWith(kVerdictPortSecurity));
      // Duplicate address detection sends from the unspecified address.
      b_.add(kPortSecurity, kDefaultPriority, k, z,
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
    const std::string same_subnet = fmt::format("{}={}", kRegSrcSubnet, info.subnet_index);
    const auto lookup = [&](IpFamily f, const IpAddress& a) {
      const std::string dst = fmt::format("{},{}={}", ipMatch(f),
                                          f == IpFamily::kV4 ? "nw_dst" : "ipv6_dst", a.toString());
      // Same subnet, switched directly: no NACL, no rewrite.
      b_.add(kL3Lookup, kDefaultPriority, k, z,
             fmt::format("{},{},dl_dst={}", dst, same_subnet, mac),
             fmt::format("{},{}", set_dst, gotoTable(kSgEgressCt)));
      // Same subnet through the router MAC: rewritten, still no NACL.
      b_.add(kL3Lookup, kDefaultPriority, k, z,
             fmt::format("{},{},dl_dst={}", dst, same_subnet, kRouterMac),
             fmt::format("{},set_field:{}->{},{}", set_dst, hex(kFlagRewrite), kRegFlags,
                         gotoTable(kSgEgressCt)));
      // Another subnet through the router: NACLs apply.
      b_.add(kL3Lookup, 90, k, z, fmt::format("{},dl_dst={}", dst, kRouterMac),
             fmt::format("{},set_field:{}->{},{}", set_dst, hex(kFlagRewrite | kFlagRouted), kRegFlags,
                         gotoTable(kSgEgressCt)));
    };
    for (const auto& a : eni.private_ip_addresses) {
      lookup(IpFamily::kV4, a);
      b_.add(kL3Lookup, 200, k, z,
             fmt::format("arp,{},arp_op=1,arp_tpa={}", same_subnet, a.toString()),
             arpReply(mac, a));
      // From the host only what AWS leaves unfiltered: link-local sources and the subnet's
      // reserved addresses; anything else from the host has no way around the groups.
      for (const std::string& from : hostSources(info)) {
        b_.add(kUnfiltered, kDefaultPriority, k, z,
               fmt::format("in_port=LOCAL,ip,nw_src={},nw_dst={}", from, a.toString()),
               fmt::format("output:{}", info.ofport));
        b_.add(kUnfiltered, kDefaultPriority, k, z,
               fmt::format("in_port=LOCAL,arp,arp_spa={},arp_tpa={}", from, a.toString()),
               fmt::format("output:{}", info.ofport));
      }
    }
    for (const auto& a : eni.ipv6_addresses) {
      lookup(IpFamily::kV6, a);
      b_.add(kL3Lookup, 400, k, z,
             fmt::format("icmp6,{},icmp_type=135,icmp_code=0,nd_target={}", same_subnet,
                         a.toString()),
             ndReply(mac, a, false));
      b_.add(kUnfiltered, kDefaultPriority, k, z,
             fmt::format("in_port=LOCAL,ipv6,ipv6_src=fe80::/10,ipv6_dst={}", a.toString()),
             fmt::format("output:{}", info.ofport));
    }

    // Delivery, with the router's rewrite when routed.
    const std::string dst = fmt::format("{}={}", kRegDstEni, z);
    for (const char* fam : {"ip", "ipv6"}) {
      b_.add(kOutput, kDefaultPriority, k, z,
             fmt::format("{},{}={}/{},{}", dst, kRegFlags, hex(kFlagRewrite), hex(kFlagRewrite), fam),
             fmt::format("dec_ttl,set_field:{}->eth_src,set_field:{}->eth_dst,output:{}",
                         kRouterMac, mac, info.ofport));
    }
    b_.add(kOutput, 90, k, z, dst, fmt::format("output:{}", info.ofport));
  }

  // The ENI's kRegOpen bits: which directions allow all ports of TCP / UDP (or all protocols)
  // to or from the whole internet of a family. Zero in strict mode, where no flow needs them.
  uint32_t openBits(const model::NetworkInterface& eni) const {
    uint32_t bits = 0;
    if (policy_.vpc.strict_revocation) {
      return bits;
    }
    for (const auto& gid : eni.security_group_ids) {
      auto g = groups_.find(gid);
      if (g == groups_.end()) {
        continue;
      }
      for (bool egress : {false, true}) {
        for (const auto& r : egress ? g->second->egress : g->second->ingress) {
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
    }
    return bits;
  }

  // A rule's peer addresses and their match text (source or destination side), computed once
  // per peer and direction: many rules reference the same large group.
  struct PeerSet {
    std::vector<Cidr> cidrs;
    std::vector<std::string> matches;  // matches[i] selects cidrs[i]
  };
  const PeerSet& peerSet(const model::Peer& peer, bool egress) {
    std::string key = egress ? "d|" : "s|";
    if (const auto* c = std::get_if<Cidr>(&peer)) {
      key += "c|" + c->toString();
    } else if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
      key += "g|" + g->group_id;
    } else if (const auto* pl = std::get_if<model::PrefixListRef>(&peer)) {
      key += "p|" + pl->prefix_list_id;
    }
    auto [it, inserted] = peer_sets_.try_emplace(std::move(key));
    if (inserted) {
      it->second.cidrs = peerCidrs(peer);
      for (const auto& c : it->second.cidrs) {
        it->second.matches.push_back(join({ipMatch(c.family()), addressMatch(c, !egress)}));
      }
    }
    return it->second;
  }

  // Peer addresses of a rule: its CIDR, the members' addresses of a group, a prefix list.
  std::vector<Cidr> peerCidrs(const model::Peer& peer) const {
    std::vector<Cidr> out;
    if (const auto* c = std::get_if<Cidr>(&peer)) {
      out.push_back(*c);
    } else if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
      if (auto it = group_members_.find(g->group_id); it != group_members_.end()) {
        for (size_t i : it->second) {
          const auto& eni = *interfaces_[i].eni;
          for (const auto& a : eni.private_ip_addresses) {
            out.push_back(Cidr{a, 32});
          }
          for (const auto& a : eni.ipv6_addresses) {
            out.push_back(Cidr{a, 128});
          }
        }
      }
    } else if (const auto* p = std::get_if<model::PrefixListRef>(&peer)) {
      for (const auto& pl : policy_.prefix_lists) {
        if (pl.id == p->prefix_list_id) {
          out = pl.entries;
        }
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  void securityGroup(const model::SecurityGroup& sg) {
    auto members = group_members_.find(sg.id);
    std::vector<uint16_t> local;
    if (members != group_members_.end()) {
      for (size_t i : members->second) {
        if (interfaces_[i].ofport >= 0) {
          local.push_back(interfaces_[i].index);
        }
      }
    }
    // Conjunction ids count every rule of every group in config order, whether or not it is
    // enforced on this bridge, so attaching or detaching an interface never renumbers them.
    uint32_t id = next_rule_id_;
    next_rule_id_ += static_cast<uint32_t>(sg.egress.size() + sg.ingress.size());
    if (local.empty()) {
      return;  // no member on this bridge: nothing to enforce here
    }
    for (bool egress : {true, false}) {
      const auto& rules = egress ? sg.egress : sg.ingress;
      for (size_t r = 0; r < rules.size(); ++r) {
        rule(sg, egress, r, rules[r], local, id++);
      }
    }
  }

  void rule(const model::SecurityGroup& sg, bool egress, size_t number,
            const model::SecurityGroupRule& rule, const std::vector<uint16_t>& local,
            uint32_t id) {
    const PeerSet& peer_set = peerSet(rule.peer, egress);
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
      return;
    }
    for (IpFamily f : families) {
      for (auto& m : protocolMatches(f, rule.ip_protocol, rule.ports, rule.icmp)) {
        if (!m.empty()) {
          proto_matches.push_back(std::move(m));
        }
      }
    }
    const int n = proto_matches.empty() ? 2 : 3;
    out_.rule_names[id] =
        fmt::format("{} {} #{}", sg.id, egress ? "egress" : "ingress", number);
    ++out_.stats.sg_rules;
    out_.stats.sg_flows_without_conjunction +=
        uint64_t{local.size()} * peer_matches.size() * std::max<size_t>(1, proto_matches.size());

    for (uint16_t z : local) {
      b_.addClause(table, fmt::format("{}={}", egress ? kRegSrcEni : kRegDstEni, z), id, 1, n);
    }
    for (const std::string* m : peer_matches) {
      b_.addClause(table, *m, id, 2, n);
    }
    for (const auto& m : proto_matches) {
      b_.addClause(table, m, id, 3, n);
    }
    const char* zone = egress ? kNxmSrcEni : kNxmDstEni;
    const Table next = egress ? kNaclOut : kOutput;
    const bool strict = policy_.vpc.strict_revocation;
    const uint64_t fp = fingerprint(sg, egress, rule, peers);
    const std::string checked_label = labelHex(fp, kCheckedLow | id);
    const auto commit = [&](const std::string& label) {
      return fmt::format("ct(commit,zone={}[0..15],exec(set_field:{}->ct_label)),{}", zone, label,
                         gotoTable(next));
    };
    for (IpFamily f : families) {
      b_.add(table, kEvalPriority, CookieKind::kSgRule, id,
             fmt::format("conj_id={},{}", id, ipMatch(f)),
             commit(strict ? checked_label : hex(id)));
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
        if (std::none_of(local.begin(), local.end(),
                         [&](uint16_t z) { return (open_bits_.at(z) & bit) != 0; })) {
          continue;  // no member on this bridge is open in the opposite direction
        }
        b_.add(table, kEvalUntrackedPriority, CookieKind::kSgRule, id,
               fmt::format("conj_id={},{},{}={}/{}", id,
                           udp ? (v6 ? "udp6" : "udp") : (v6 ? "tcp6" : "tcp"), kRegOpen,
                           hex(bit), hex(bit)),
               commit(checked_label));
        untracked_bits |= bit;
      }
    }
    if (!strict && untracked_bits == 0) {
      return;  // never checked: dispatch treats its connections like any tracked one
    }
    // Live checked connections of this rule continue in both dispatch tables: the original
    // direction passes the rule's own stage, replies the opposite stage of the same ENI (same
    // zone). Two clauses keep this a sum: the label (one flow per rule) and the ENI (one flow
    // per member, shared by all its rules) - an ENI that left the group loses its connections.
    const std::string live =
        fmt::format("ct_state=-new+est+trk,ct_label={}/{}", labelHex(fp, kCheckedLow),
                    labelHex(0xffffffffULL, kCheckedLow));
    for (auto [dispatch, reg, after] : {std::tuple{kSgEgress, kRegSrcEni, kNaclOut},
                                        std::tuple{kSgIngress, kRegDstEni, kOutput}}) {
      b_.addClause(dispatch, live, id, 1, 2, kDispatchLivePriority);
      for (uint16_t z : local) {
        // Only where the rule can commit checked connections (all members in strict mode).
        if (strict || (open_bits_.at(z) & untracked_bits) != 0) {
          b_.addClause(dispatch, fmt::format("{}={}", reg, z), id, 2, 2, kDispatchLivePriority);
        }
      }
      b_.add(dispatch, kDispatchLivePriority, CookieKind::kSgRule, id,
             fmt::format("conj_id={}", id), gotoTable(after));
    }
  }

  // What a rule allows, hashed (ct_label[64..95] of its checked connections): stable across
  // reorderings and restarts, different when the rule's effect changes.
  static uint64_t fingerprint(const model::SecurityGroup& sg, bool egress,
                              const model::SecurityGroupRule& rule, const std::vector<Cidr>& peers) {
    std::string text = fmt::format("{}|{}|{}", sg.id, egress ? "egress" : "ingress", rule.ip_protocol);
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

  void networkAcl(const model::NetworkAcl& nacl, uint32_t ni) {
    const auto k = CookieKind::kNacl;
    for (const auto& e : nacl.entries) {
      const Table table = e.egress ? kNaclOut : kNaclIn;
      const std::string reg = fmt::format("{}={}", e.egress ? kRegSrcNacl : kRegDstNacl, ni);
      // Outbound entries name the destination; inbound entries name the source.
      const std::string addr = addressMatch(e.cidr, !e.egress);
      const auto prio = static_cast<uint16_t>(kNaclBasePriority - e.rule_number);
      const std::string action =
          e.allow ? gotoTable(e.egress ? kNaclIn : kSgIngressCt)
                  : dropWith((e.egress ? kVerdictNaclOutDeny : kVerdictNaclInDeny) |
                             static_cast<uint32_t>(e.rule_number));
      auto protos = protocolMatches(e.cidr.family(), e.protocol, e.port_range, e.icmp_type_code);
      for (const auto& p : protos) {
        b_.add(table, prio, k, ni, join({reg, p.empty() ? ipMatch(e.cidr.family()) : p, addr}),
               action);
        ++out_.stats.nacl_flows;
      }
    }
    for (bool egress : {true, false}) {
      b_.add(egress ? kNaclOut : kNaclIn, kNaclStarPriority, k, ni,
             fmt::format("{}={}", egress ? kRegSrcNacl : kRegDstNacl, ni),
             dropWith((egress ? kVerdictNaclOutDeny : kVerdictNaclInDeny) | kNaclStarRule));
      ++out_.stats.nacl_flows;
    }
  }

  const TranslateInput& in_;
  const model::Policy& policy_;
  FlowBuilder b_;
  Translation out_;
  std::map<std::string, uint32_t> subnet_index_;
  std::map<std::string, uint32_t> nacl_index_;
  std::map<std::string, const model::Subnet*> subnets_;
  std::map<std::string, const model::SecurityGroup*> groups_;
  std::map<uint16_t, uint32_t> open_bits_;  // ENI index -> its kRegOpen bits
  std::vector<InterfaceInfo> interfaces_;
  std::unordered_map<std::string, std::vector<size_t>> group_members_;
  std::unordered_map<std::string, PeerSet> peer_sets_;
  uint32_t next_rule_id_ = kConjIdBase;
};

}  // namespace

Result<Translation> translate(const TranslateInput& input) {
  if (input.policy == nullptr) {
    return makeError("translate: no policy");
  }
  return Translator(input).run();
}

Result<std::map<std::string, uint16_t>> assignInterfaceIndices(
    const model::Policy& policy, const std::map<std::string, uint16_t>& previous) {
  std::map<std::string, uint16_t> out;
  std::set<uint16_t> used;
  for (const auto& eni : policy.network_interfaces) {
    if (auto it = previous.find(eni.id); it != previous.end() && it->second != 0) {
      out[eni.id] = it->second;
      used.insert(it->second);
    }
  }
  uint16_t next = 1;
  for (const auto& eni : policy.network_interfaces) {
    if (out.count(eni.id) != 0) {
      continue;
    }
    while (used.count(next) != 0) {
      if (next == 0xffff) {
        return makeError("more than 65535 interfaces: no conntrack zone left");
      }
      ++next;
    }
    out[eni.id] = next;
    used.insert(next);
  }
  return out;
}

ConntrackTimeouts conntrackTimeouts(const model::Policy& policy,
                                     const std::map<std::string, uint16_t>& interface_index) {
  ConntrackTimeouts out;
  for (const auto& eni : policy.network_interfaces) {
    auto idx = interface_index.find(eni.id);
    if (idx == interface_index.end()) {
      continue;
    }
    const auto& ct = eni.connection_tracking;
    const int64_t tcp = ct.tcp_established_timeout.value_or(432000);
    const int64_t udp = ct.udp_timeout.value_or(30);
    const int64_t stream = ct.udp_stream_timeout.value_or(180);
    out[idx->second] = {{"tcp_established", tcp},
                        {"udp_first", udp},
                        {"udp_single", udp},
                        {"udp_multiple", stream}};
  }
  return out;
}

std::vector<MaskedValue> portRangeMasks(uint16_t from, uint16_t to) {
  std::vector<MaskedValue> out;
  uint32_t lo = from;
  const uint32_t hi = to;
  while (lo <= hi) {
    // The largest aligned block starting at lo that does not pass hi.
    uint32_t size = 1;
    while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi && size < 65536) {
      size *= 2;
    }
    out.push_back(MaskedValue{static_cast<uint16_t>(lo), static_cast<uint16_t>(~(size - 1) & 0xffff)});
    lo += size;
  }
  return out;
}

IpAddress linkLocalFromMac(const std::string& mac) {
  unsigned int b[6] = {};
  std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
  IpAddress a;
  a.family = IpFamily::kV6;
  a.bytes[0] = 0xfe;
  a.bytes[1] = 0x80;
  a.bytes[8] = static_cast<uint8_t>(b[0] ^ 0x02);
  a.bytes[9] = static_cast<uint8_t>(b[1]);
  a.bytes[10] = static_cast<uint8_t>(b[2]);
  a.bytes[11] = 0xff;
  a.bytes[12] = 0xfe;
  a.bytes[13] = static_cast<uint8_t>(b[3]);
  a.bytes[14] = static_cast<uint8_t>(b[4]);
  a.bytes[15] = static_cast<uint8_t>(b[5]);
  return a;
}

}  // namespace vpcguard
