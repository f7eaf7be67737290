// `vpcguardctl trace`: the pipeline of translator/pipeline.h, evaluated on the policy model.
//
// Design: the request is first resolved into a packet and its two ends (an interface, or the
// host behind the bridge's LOCAL port). A Walk then takes the packet through the stages in the
// order of the OpenFlow tables and appends one TraceStep per stage, until a stage drops it or it
// is delivered. Each stage follows the flows translator/units.cpp writes for it, which are the
// ground truth (a property test compares this model with ofproto/trace on the real switch):
//
//   CLASSIFY, PORT_SECURITY (0, 10)  the host's port goes straight to UNFILTERED; a VM may send
//                                    from its own addresses only (source/destination check)
//   L3_LOOKUP, L3_FORWARD (20, 21)   mirror host subnet: no route; what AWS never filters (link-
//                                    local, IPv6 multicast, DHCP, the reserved addresses of the
//                                    SOURCE's subnet): to the host; an interface of the same
//                                    subnet: switched; of another subnet: routed; else no route
//   SG_EGRESS (30-32)                conntrack (replies are established; ICMP that cannot start
//                                    a connection is invalid), then the source's egress rules
//   NACL_OUT, NACL_IN (40, 41)       only when the subnets differ; first entry by number
//   SG_INGRESS (50-52), OUTPUT (60)  the destination's ingress rules, delivery
//   UNFILTERED (70)                  the host may send to a VM from link-local sources and from
//                                    the first four addresses of the VM's subnet only
//
// After the walk come the effects of what was accepted (flow-log records, mirror copies) at the
// two points the pipeline counts at: leaving the source subnet (NACL outbound passed, or same
// subnet) and delivery. The walk also yields the SwitchProbe: the same packet as ofproto/trace
// flow text, with one conntrack state per ct(table=) recirculation it passes.
#include "explain/trace.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "explain/describe.h"
#include "translator/mirror.h"
#include "translator/pipeline.h"
#include "translator/translate.h"
#include "translator/units.h"

namespace vpcguard::explain {

const char* toString(Verdict verdict) { return verdict == Verdict::kAllow ? "allow" : "drop"; }

namespace {

using model::kProtoAll;
using model::kProtoIcmp;
using model::kProtoIcmpv6;
using model::kProtoTcp;
using model::kProtoUdp;

constexpr int kDefaultTtl = 64;
constexpr size_t kListedNames = 8;  // names listed in one message before "... (N more)"

// ---- policy lookups ------------------------------------------------------------------------

template <typename T>
const T* findById(const std::vector<T>& items, std::string_view id) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& x) { return x.id == id; });
  return it == items.end() ? nullptr : &*it;
}

// A CIDR written in this file: parsing cannot fail.
Cidr constantCidr(std::string_view text) {
  auto parsed = Cidr::parse(text);
  if (!parsed) {
    std::abort();
  }
  return *parsed;
}

bool isLinkLocal(const IpAddress& a) {
  return constantCidr("169.254.0.0/16").contains(a) || constantCidr("fe80::/10").contains(a);
}

std::string familyName(IpFamily family) { return family == IpFamily::kV4 ? "IPv4" : "IPv6"; }

bool isTcpOrUdp(int protocol) { return protocol == kProtoTcp || protocol == kProtoUdp; }
bool isIcmp(int protocol) { return protocol == kProtoIcmp || protocol == kProtoIcmpv6; }

// What `a` is among the addresses AWS reserves in subnet `s`, as the router unit treats them:
// the first four of each block (network, router, DNS, spare) and the IPv4 broadcast address.
std::optional<std::string> reservedRole(const model::Subnet& s, const IpAddress& a) {
  static constexpr const char* kRoles[] = {"network address", "VPC router address (.1)",
                                           "DNS address (.2)", "reserved address (.3)"};
  const std::optional<Cidr> block =
      a.isV4() ? std::optional<Cidr>(s.cidr_block) : s.ipv6_cidr_block;
  if (!block || !block->contains(a)) {
    return std::nullopt;
  }
  for (int64_t i = 0; i < 4; ++i) {
    if (block->first().plus(i) == a) {
      return fmt::format("the {} of {}", kRoles[i], s.id);
    }
  }
  if (a.isV4() && a == block->last()) {
    return fmt::format("the broadcast address of {}", s.id);
  }
  return std::nullopt;
}

// The first four addresses of an IPv4 block: the host sources UNFILTERED delivers to a VM.
bool inFirstFour(const Cidr& block, const IpAddress& a) {
  for (int64_t i = 0; i < 4; ++i) {
    if (block.first().plus(i) == a) {
      return true;
    }
  }
  return false;
}

const model::Subnet* reservedSubnet(const model::Policy& policy, const IpAddress& a) {
  for (const auto& s : policy.subnets) {
    if (reservedRole(s, a)) {
      return &s;
    }
  }
  return nullptr;
}

bool ownsAddress(const model::NetworkInterface& eni, const IpAddress& a) {
  const auto& list = a.isV4() ? eni.private_ip_addresses : eni.ipv6_addresses;
  return std::find(list.begin(), list.end(), a) != list.end();
}

const model::NetworkInterface* ownerOf(const model::Policy& policy, const IpAddress& a) {
  for (const auto& eni : policy.network_interfaces) {
    if (ownsAddress(eni, a)) {
      return &eni;
    }
  }
  return nullptr;
}

std::string listNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kListedNames; ++i) {
    out += (i == 0 ? "" : ", ") + names[i];
  }
  if (names.size() > kListedNames) {
    out += fmt::format(", ... ({} more)", names.size() - kListedNames);
  }
  return out.empty() ? "none" : out;
}

std::string interfaceList(const model::Policy& policy) {
  std::vector<std::string> ids;
  for (const auto& eni : policy.network_interfaces) {
    ids.push_back(eni.id);
  }
  return listNames(ids);
}

// ---- the request ---------------------------------------------------------------------------

struct ProtocolSpec {
  int protocol = kProtoTcp;
  int port = 0;  // tcp/udp: destination port
  int icmp_type = -1;
  int icmp_code = -1;
};

std::optional<int> parseNumber(std::string_view text, int min, int max) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::vector<std::string_view> splitSlash(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t slash = text.find('/'); slash != std::string_view::npos;
       slash = text.find('/', start)) {
    parts.push_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  parts.push_back(text.substr(start));
  return parts;
}

// "tcp/443", "udp/53", "icmp", "icmp/8", "icmp/3/4", "icmpv6/128", "47".
Result<ProtocolSpec> parseProtocol(std::string_view spec) {
  const auto bad = [&](const std::string& why) {
    return makeError(fmt::format("protocol '{}': {}", spec, why));
  };
  const std::vector<std::string_view> parts = splitSlash(spec);
  const std::string_view head = parts.front();
  ProtocolSpec out;
  if (head == "all" || head == "-1") {
    return bad("'all' is not a packet; name one protocol, e.g. tcp/443, udp/53, icmp or 47");
  }
  if (head == "tcp") {
    out.protocol = kProtoTcp;
  } else if (head == "udp") {
    out.protocol = kProtoUdp;
  } else if (head == "icmp") {
    out.protocol = kProtoIcmp;
  } else if (head == "icmpv6" || head == "icmp6") {
    out.protocol = kProtoIcmpv6;
  } else if (auto number = parseNumber(head, 0, 255)) {
    out.protocol = *number;
  } else {
    return bad(
        "unknown protocol; use tcp/PORT, udp/PORT, icmp[/TYPE[/CODE]], "
        "icmpv6[/TYPE[/CODE]] or a protocol number 0-255");
  }
  const std::string name = protocolName(out.protocol);
  if (isTcpOrUdp(out.protocol)) {
    if (parts.size() == 1) {
      return bad(fmt::format("a port is needed, e.g. {}/443", name));
    }
    auto port = parseNumber(parts[1], 0, 65535);
    if (parts.size() > 2 || !port) {
      return bad(fmt::format("'{}' is not a port (0-65535), e.g. {}/443",
                             spec.substr(head.size() + 1), name));
    }
    out.port = *port;
  } else if (isIcmp(out.protocol)) {
    // Without a type: an echo request, the ICMP packet people mean ("can A ping B?").
    out.icmp_type = out.protocol == kProtoIcmp ? 8 : 128;
    out.icmp_code = 0;
    if (parts.size() > 3) {
      return bad(fmt::format("too many parts; use {}, {}/TYPE or {}/TYPE/CODE", name, name, name));
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      auto value = parseNumber(parts[i], 0, 255);
      if (!value) {
        return bad(
            fmt::format("ICMP {} '{}' is not a number 0-255", i == 1 ? "type" : "code", parts[i]));
      }
      (i == 1 ? out.icmp_type : out.icmp_code) = *value;
    }
  } else if (parts.size() > 1) {
    return bad("only tcp and udp take a port, icmp and icmpv6 a type and code");
  }
  return out;
}

// --from / --to as written: an interface, or an address.
struct EndpointArg {
  const model::NetworkInterface* eni = nullptr;
  std::optional<IpAddress> address;
};

Result<EndpointArg> parseEndpoint(const model::Policy& policy, std::string_view option,
                                  const std::string& text) {
  if (text.empty()) {
    return makeError(fmt::format("{}: an interface id or an IP address is needed", option));
  }
  if (const auto* eni = findById(policy.network_interfaces, text)) {
    return EndpointArg{eni, std::nullopt};
  }
  if (auto address = IpAddress::parse(text)) {
    return EndpointArg{nullptr, *address};
  }
  return makeError(fmt::format("{} {}: no such interface in the policy (interfaces: {})", option,
                               text, interfaceList(policy)));
}

// The packet's family: the addresses' (they must agree), else the protocol's (icmpv6 is IPv6),
// else IPv4.
Result<IpFamily> chooseFamily(const TraceRequest& request, const EndpointArg& from,
                              const EndpointArg& to, const ProtocolSpec& spec) {
  std::optional<IpFamily> family;
  if (from.address) {
    family = from.address->family;
  }
  if (to.address) {
    if (family && *family != to.address->family) {
      return makeError(fmt::format("--from {} is {} but --to {} is {}: families must match",
                                   request.from, familyName(*family), request.to,
                                   familyName(to.address->family)));
    }
    family = to.address->family;
  }
  std::optional<IpFamily> wanted;
  if (spec.protocol == kProtoIcmp) {
    wanted = IpFamily::kV4;
  } else if (spec.protocol == kProtoIcmpv6) {
    wanted = IpFamily::kV6;
  }
  if (wanted && family && *wanted != *family) {
    return makeError(fmt::format("protocol '{}' is {}, but the addresses are {} (use {})",
                                 request.protocol, familyName(*wanted), familyName(*family),
                                 *wanted == IpFamily::kV4 ? "icmpv6" : "icmp"));
  }
  return family.value_or(wanted.value_or(IpFamily::kV4));
}

// The address an interface sends from / is reached at: its primary private IPv4 or its first
// IPv6 address.
Result<IpAddress> interfaceAddress(std::string_view option, const model::NetworkInterface& eni,
                                   IpFamily family) {
  const auto& list = family == IpFamily::kV4 ? eni.private_ip_addresses : eni.ipv6_addresses;
  if (list.empty()) {
    return makeError(
        fmt::format("{} {}: the interface has no {} address", option, eni.id, familyName(family)));
  }
  return list.front();
}

// The packet and its two ends.
struct Ends {
  TracePacket packet;
  const model::NetworkInterface* src = nullptr;  // nullptr: the host (LOCAL)
  const model::NetworkInterface* dst = nullptr;  // nullptr: the host or no interface
};

Result<void> fillPorts(const TraceRequest& request, const ProtocolSpec& spec, TracePacket& p) {
  p.protocol = spec.protocol;
  if (isTcpOrUdp(spec.protocol)) {
    const int sport = request.source_port.value_or(kDefaultSourcePort);
    if (sport < 0 || sport > 65535) {
      return makeError(fmt::format("--sport {}: not a port (0-65535)", sport));
    }
    p.src_port = sport;
    p.dst_port = spec.port;
  } else if (request.source_port) {
    return makeError(fmt::format("--sport {}: only tcp and udp have ports (protocol '{}')",
                                 *request.source_port, request.protocol));
  }
  if (isIcmp(spec.protocol)) {
    p.icmp_type = spec.icmp_type;
    p.icmp_code = spec.icmp_code;
  }
  return {};
}

// An interface's subnet and NACL must exist: the policy is validated and its defaults resolved.
Result<void> checkPlaced(const model::Policy& policy, const model::NetworkInterface* eni) {
  if (eni == nullptr) {
    return {};
  }
  const auto* subnet = findById(policy.subnets, eni->subnet_id);
  if (subnet == nullptr || findById(policy.network_acls, subnet->network_acl_id) == nullptr) {
    return makeError(
        fmt::format("interface {}: its subnet '{}' or that subnet's network ACL is "
                    "not in the policy (validate it and resolve defaults first)",
                    eni->id, eni->subnet_id));
  }
  return {};
}

Result<Ends> resolve(const model::Policy& policy, const TraceRequest& request,
                     const ProtocolSpec& spec) {
  auto from = parseEndpoint(policy, "--from", request.from);
  if (!from) {
    return tl::unexpected(from.error());
  }
  auto to = parseEndpoint(policy, "--to", request.to);
  if (!to) {
    return tl::unexpected(to.error());
  }
  auto family = chooseFamily(request, *from, *to, spec);
  if (!family) {
    return tl::unexpected(family.error());
  }
  Ends ends;
  if (from->eni != nullptr) {
    auto a = interfaceAddress("--from", *from->eni, *family);
    if (!a) {
      return tl::unexpected(a.error());
    }
    ends.src = from->eni;
    ends.packet.src = *a;
  } else {
    ends.packet.src = *from->address;
    ends.src = ownerOf(policy, ends.packet.src);
    // The host sends what AWS never filters; any other address would need an interface that
    // owns it (the source check drops everything else).
    if (ends.src == nullptr && !isLinkLocal(ends.packet.src) &&
        reservedSubnet(policy, ends.packet.src) == nullptr) {
      return makeError(fmt::format(
          "--from {}: no interface has this address, and the host sends only from link-local "
          "addresses or a subnet's reserved addresses (interfaces: {})",
          request.from, interfaceList(policy)));
    }
  }
  if (to->eni != nullptr) {
    auto a = interfaceAddress("--to", *to->eni, *family);
    if (!a) {
      return tl::unexpected(a.error());
    }
    ends.dst = to->eni;
    ends.packet.dst = *a;
  } else {
    ends.packet.dst = *to->address;
    ends.dst = ownerOf(policy, ends.packet.dst);
  }
  if (ends.src != nullptr && ends.src == ends.dst) {
    return makeError(
        fmt::format("--from {} and --to {} are both {}: a packet to the interface's "
                    "own address never reaches the switch",
                    request.from, request.to, ends.src->id));
  }
  for (const auto* eni : {ends.src, ends.dst}) {
    if (auto placed = checkPlaced(policy, eni); !placed) {
      return tl::unexpected(placed.error());
    }
  }
  if (auto ports = fillPorts(request, spec, ends.packet); !ports) {
    return tl::unexpected(ports.error());
  }
  ends.packet.src_interface = ends.src != nullptr ? ends.src->id : "";
  ends.packet.dst_interface = ends.dst != nullptr ? ends.dst->id : "";
  return ends;
}

// The reply conntrack expects: ends swapped, ports swapped, an ICMP query answered by its reply
// type (echo 8 -> 0, timestamp 13 -> 14, information 15 -> 16, ICMPv6 echo 128 -> 129).
int icmpReplyType(int protocol, int type) {
  if (protocol == kProtoIcmpv6) {
    return type == 128 ? 129 : type;
  }
  switch (type) {
    case 8:
      return 0;
    case 13:
      return 14;
    case 15:
      return 16;
    default:
      return type;
  }
}

Ends reversed(const Ends& ends) {
  Ends back;
  back.src = ends.dst;
  back.dst = ends.src;
  back.packet = ends.packet;
  std::swap(back.packet.src, back.packet.dst);
  std::swap(back.packet.src_interface, back.packet.dst_interface);
  std::swap(back.packet.src_port, back.packet.dst_port);
  if (isIcmp(back.packet.protocol)) {
    back.packet.icmp_type = icmpReplyType(back.packet.protocol, back.packet.icmp_type);
  }
  return back;
}

// Whether conntrack can start a connection with this packet. OVS's conntrack creates ICMP
// connections only for queries (echo, timestamp, information; ICMPv6: echo); any other ICMP
// packet without a connection is invalid (+inv). TCP, UDP and other protocols start one.
bool conntrackCanStart(const TracePacket& p) {
  if (p.protocol == kProtoIcmp) {
    return p.icmp_type == 8 || p.icmp_type == 13 || p.icmp_type == 15;
  }
  if (p.protocol == kProtoIcmpv6) {
    return p.icmp_type == 128;
  }
  return true;
}

std::string describePacket(const TracePacket& p) {
  const auto hostPort = [&](const IpAddress& a, int port) {
    return a.isV4() ? fmt::format("{}:{}", a.toString(), port)
                    : fmt::format("[{}]:{}", a.toString(), port);
  };
  if (isTcpOrUdp(p.protocol)) {
    return fmt::format("{} {} -> {}", protocolName(p.protocol), hostPort(p.src, p.src_port),
                       hostPort(p.dst, p.dst_port));
  }
  std::string text =
      fmt::format("{} {} -> {}", protocolName(p.protocol), p.src.toString(), p.dst.toString());
  if (isIcmp(p.protocol)) {
    text += fmt::format(" type {} code {}", p.icmp_type, p.icmp_code);
  }
  return text;
}

// ---- matching ------------------------------------------------------------------------------

// Protocol, ports and ICMP type/code of an SG rule or NACL entry against the packet, as
// protocolMatches() in units.cpp writes them: tcp/udp ranges apply to the destination port,
// icmp only to IPv4 and icmpv6 only to IPv6, other numbers to nw_proto.
bool protocolMatches(int protocol, const std::optional<model::PortRange>& ports,
                     const std::optional<model::IcmpTypeCode>& icmp, const TracePacket& p) {
  if (protocol == kProtoAll) {
    return true;
  }
  if (protocol != p.protocol) {
    return false;
  }
  if (isTcpOrUdp(protocol)) {
    return !ports || (ports->from <= p.dst_port && p.dst_port <= ports->to);
  }
  if (isIcmp(protocol)) {
    if ((protocol == kProtoIcmp) != p.src.isV4()) {
      return false;
    }
    return !icmp || icmp->type < 0 ||
           (icmp->type == p.icmp_type && (icmp->code < 0 || icmp->code == p.icmp_code));
  }
  return true;
}

// Why `peer` contains `address` ("10.0.1.10 is eni-web1's, a member of sg-web"), or nullopt.
// A group stands for every private IPv4 and IPv6 address of its members (peerCidrs in
// translate.cpp), a prefix list for its entries.
std::optional<std::string> peerContains(const model::Policy& policy, const model::Peer& peer,
                                        const IpAddress& address) {
  const std::string a = address.toString();
  if (const auto* c = std::get_if<Cidr>(&peer)) {
    return c->contains(address) ? std::optional(fmt::format("{} is in {}", a, c->toString()))
                                : std::nullopt;
  }
  if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
    for (const auto& eni : policy.network_interfaces) {
      const auto& groups = eni.security_group_ids;
      if (ownsAddress(eni, address) &&
          std::find(groups.begin(), groups.end(), g->group_id) != groups.end()) {
        return fmt::format("{} is {}'s, a member of {}", a, eni.id, g->group_id);
      }
    }
    return std::nullopt;
  }
  const auto& ref = std::get<model::PrefixListRef>(peer);
  if (const auto* list = findById(policy.prefix_lists, ref.prefix_list_id)) {
    for (const auto& entry : list->entries) {
      if (entry.contains(address)) {
        return fmt::format("{} is in {} (entry {})", a, list->id, entry.toString());
      }
    }
  }
  return std::nullopt;
}

// One SG rule that allows the packet.
struct RuleHit {
  const model::SecurityGroup* group = nullptr;
  size_t position = 0;
  const model::SecurityGroupRule* rule = nullptr;
  std::string why;  // the peer part
};

// Every rule of the interface's groups (in the interface's group order, then config order) that
// allows the packet in one direction; the peer is the destination at egress, the source at
// ingress.
std::vector<RuleHit> sgRuleHits(const model::Policy& policy, const model::NetworkInterface& eni,
                                bool egress, const TracePacket& p) {
  std::vector<RuleHit> hits;
  const IpAddress& peer = egress ? p.dst : p.src;
  for (const auto& group_id : eni.security_group_ids) {
    const auto* group = findById(policy.security_groups, group_id);
    if (group == nullptr) {
      continue;
    }
    const auto& rules = egress ? group->egress : group->ingress;
    for (size_t i = 0; i < rules.size(); ++i) {
      const auto& r = rules[i];
      if (!protocolMatches(r.ip_protocol, r.ports, r.icmp, p)) {
        continue;
      }
      if (auto why = peerContains(policy, r.peer, peer)) {
        hits.push_back(RuleHit{group, i, &r, std::move(*why)});
      }
    }
  }
  return hits;
}

// AWS does not track a TCP/UDP flow allowed by a rule open to the whole internet (0.0.0.0/0,
// ::/0) on an interface whose opposite direction allows all ports of that protocol to/from the
// whole internet: the switch commits it as checked (rule() and groupOpenBits() in units.cpp).
bool untrackedBy(const model::Policy& policy, const model::NetworkInterface& eni, bool egress,
                 const RuleHit& hit, const TracePacket& p) {
  const auto* c = std::get_if<Cidr>(&hit.rule->peer);
  if (!isTcpOrUdp(p.protocol) || c == nullptr || !c->isAll()) {
    return false;
  }
  uint32_t open = 0;
  for (const auto& group_id : eni.security_group_ids) {
    if (const auto* group = findById(policy.security_groups, group_id)) {
      open |= units::groupOpenBits(*group);
    }
  }
  return (open & pipeline::openBit(!egress, !p.src.isV4(), p.protocol == kProtoUdp)) != 0;
}

// The first NACL entry (lowest number) of one direction that matches; nullptr = the `*` rule.
// Outbound entries name the destination, inbound entries the source.
const model::NetworkAclEntry* firstNaclMatch(const model::NetworkAcl& nacl, bool egress,
                                             const TracePacket& p, size_t& skipped) {
  skipped = 0;
  const IpAddress& address = egress ? p.dst : p.src;
  for (const auto* e : naclEntriesInOrder(nacl, egress)) {
    if (e->cidr.contains(address) &&
        protocolMatches(e->protocol, e->port_range, e->icmp_type_code, p)) {
      return e;
    }
    ++skipped;
  }
  return nullptr;
}

bool portInRange(const std::optional<model::PortRange>& range, int port) {
  return !range || (range->from <= port && port <= range->to);
}

// A traffic-mirror filter rule (mirrorRuleMatches in units.cpp): both CIDRs, the protocol
// number, and for tcp/udp both port ranges.
bool mirrorRuleMatches(const MirrorRulePlan& r, const TracePacket& p) {
  if (!r.source.contains(p.src) || !r.destination.contains(p.dst)) {
    return false;
  }
  if (r.protocol == kProtoAll) {
    return true;
  }
  if (r.protocol != p.protocol) {
    return false;
  }
  return !isTcpOrUdp(r.protocol) ||
         (portInRange(r.source_ports, p.src_port) && portInRange(r.destination_ports, p.dst_port));
}

// ---- the walk ------------------------------------------------------------------------------

// Where a packet's walk ended and what it passed on the way.
struct Outcome {
  bool delivered = false;
  std::string out_interface;  // when delivered: an interface id or "LOCAL"
  uint32_t drop_verdict = 0;  // when dropped: reg4
  int ct_passes = 0;          // ct(table=) recirculations passed (tables 30 and 50)
  bool ct_invalid = false;    // conntrack could not track it (+inv at the first ct)
  bool filtered = false;      // took the security-group path (not unfiltered, not no route)
  bool left_source = false;   // passed the egress accept point (NACL outbound or same subnet)
  enum class Reject { kNone, kEgress, kIngress } reject = Reject::kNone;  // flow-log REJECT side
  std::string reason;  // "at NACL inbound: ..." / "eni-web1 -> eni-db1": the summary's tail
  // The rules that committed the connection at each side: what lets its replies through.
  std::pair<std::string, std::string> egress_commit;   // rule, location
  std::pair<std::string, std::string> ingress_commit;  // rule, location
};

class Walk {
 public:
  // `original`: the outcome of the connection's original direction when this packet is its
  // reply (security groups then see an established connection), else nullptr.
  Walk(const model::Policy& policy, const Ends& ends, const Outcome* original,
       std::vector<TraceStep>& steps)
      : policy_(policy), ends_(ends), p_(ends.packet), original_(original), steps_(steps) {}

  Outcome run() {
    if (ends_.src == nullptr) {
      fromHost();
    } else {
      fromInterface();
    }
    return out_;
  }

 private:
  enum class Route { kNoRoute, kUnfiltered, kSwitched, kRouted };

  void add(std::string stage, std::string decision, std::string rule, std::string location,
           std::string detail) {
    steps_.push_back(TraceStep{std::move(stage), std::move(decision), std::move(rule),
                               std::move(location), std::move(detail)});
  }
  void drop(uint32_t verdict, std::string reason) {
    out_.delivered = false;
    out_.drop_verdict = verdict;
    out_.reason = std::move(reason);
  }
  void deliver(std::string out_interface, std::string reason) {
    out_.delivered = true;
    out_.out_interface = std::move(out_interface);
    out_.reason = std::move(reason);
  }
  [[nodiscard]] bool established() const { return original_ != nullptr && original_->filtered; }
  [[nodiscard]] const model::Subnet& subnetOf(const model::NetworkInterface& eni) const {
    return *findById(policy_.subnets, eni.subnet_id);  // checked by resolve()
  }

  // in_port=LOCAL: CLASSIFY sends it to UNFILTERED, which delivers to a VM only from link-local
  // sources and the first four addresses of the VM's subnet.
  void fromHost() {
    add("port-security", "skip", "", "",
        "from the host (the bridge's LOCAL port): no source check; CLASSIFY sends it to "
        "UNFILTERED");
    const IpAddress& src = p_.src;
    if (ends_.dst == nullptr) {
      add("unfiltered", "deny", "", "",
          fmt::format("{} is no interface's address: the host's packets reach interfaces only",
                      p_.dst.toString()));
      drop(0, fmt::format("at UNFILTERED: {} is not an interface's address", p_.dst.toString()));
      return;
    }
    const model::Subnet& subnet = subnetOf(*ends_.dst);
    const bool allowed = isLinkLocal(src) || (src.isV4() && inFirstFour(subnet.cidr_block, src));
    if (!allowed) {
      add("unfiltered", "deny", "", "",
          fmt::format("the host may send to {} only from link-local addresses (169.254.0.0/16, "
                      "fe80::/10) or, over IPv4, the first four addresses of {}; {} is neither, "
                      "and the host has no way around the security groups",
                      ends_.dst->id, subnet.id, src.toString()));
      drop(0, fmt::format("at UNFILTERED: the host may not send to {} from {}", ends_.dst->id,
                          src.toString()));
      return;
    }
    add("unfiltered", "allow", "", "",
        fmt::format("{} is {}: AWS never filters it, no security group, NACL, flow log or mirror "
                    "applies",
                    src.toString(), isLinkLocal(src) ? "link-local" : *reservedRole(subnet, src)));
    add("output", "allow", "", "", fmt::format("delivered to {}", ends_.dst->id));
    deliver(ends_.dst->id, fmt::format("unfiltered, from the host to {}", ends_.dst->id));
  }

  void fromInterface() {
    if (!portSecurity()) {
      return;
    }
    const Route route = lookup();
    if (route == Route::kNoRoute) {
      return;
    }
    if (route == Route::kUnfiltered) {
      add("output", "allow", "", "",
          "to the host (the bridge's LOCAL port), where operators may add their own filters");
      deliver("LOCAL", "unfiltered, to the host (LOCAL)");
      return;
    }
    filtered(route == Route::kRouted);
  }

  // PORT_SECURITY: the interface sends from its MAC and its addresses only (its EUI-64
  // link-local too); a neighbour advertisement must name one of its addresses, which a traced
  // packet (no nd_target) does not. Without the source/destination check anything passes.
  bool portSecurity() {
    const auto& eni = *ends_.src;
    const std::string rule = fmt::format("{}: source/destination check {}", eni.id,
                                         eni.source_dest_check ? "on" : "off");
    const std::string location = formatLocation(eni.location);
    if (!eni.source_dest_check) {
      add("port-security", "allow", rule, location,
          fmt::format("{} has source_dest_check = false: anything it sends passes", eni.id));
      return true;
    }
    const bool own = ownsAddress(eni, p_.src) || p_.src == linkLocalFromMac(eni.mac_address);
    if (!own || (p_.protocol == kProtoIcmpv6 && p_.icmp_type == 136)) {
      add("port-security", "deny", rule, location,
          own ? "a neighbour advertisement must name the sender's own address (nd_target)"
              : fmt::format("{} is not an address of {}", p_.src.toString(), eni.id));
      drop(pipeline::kVerdictPortSecurity, fmt::format("at port security of {}", eni.id));
      return false;
    }
    add("port-security", "allow", rule, location,
        fmt::format("{} sends from its own MAC {} and address {}", eni.id, eni.mac_address,
                    p_.src.toString()));
    return true;
  }

  // What L3_LOOKUP never filters (priority 300): link-local, IPv6 multicast, DHCP, and the
  // reserved addresses of the source's own subnet (the router answers ARP for those only).
  std::optional<std::string> unfilteredReason(const model::Subnet& src_subnet) const {
    const IpAddress& dst = p_.dst;
    if (isLinkLocal(dst)) {
      return fmt::format("{} is link-local (metadata, time, DNS services of the host)",
                         dst.toString());
    }
    if (constantCidr("ff00::/8").contains(dst)) {
      return fmt::format("{} is IPv6 multicast", dst.toString());
    }
    if (p_.protocol == kProtoUdp && dst.isV4() && dst == IpAddress::v4(0xffffffffU) &&
        p_.src_port == 68 && p_.dst_port == 67) {
      return std::string("a DHCP request (udp 68 -> 255.255.255.255:67)");
    }
    if (p_.protocol == kProtoUdp && !dst.isV4() && p_.src_port == 546 && p_.dst_port == 547) {
      return std::string("a DHCPv6 request (udp 546 -> 547)");
    }
    if (auto role = reservedRole(src_subnet, dst)) {
      return fmt::format("{} is {}", dst.toString(), *role);
    }
    return std::nullopt;
  }

  std::string noRouteReason() const {
    const IpAddress& dst = p_.dst;
    if (const auto* s = reservedSubnet(policy_, dst)) {
      return fmt::format("{} is {}: a VM reaches only the reserved addresses of its own subnet",
                         dst.toString(), *reservedRole(*s, dst));
    }
    if (constantCidr("224.0.0.0/4").contains(dst)) {
      return fmt::format("{} is IPv4 multicast, which is not routed", dst.toString());
    }
    const auto& blocks = dst.isV4() ? policy_.vpc.cidr_blocks : policy_.vpc.ipv6_cidr_blocks;
    const bool in_vpc =
        std::any_of(blocks.begin(), blocks.end(), [&](const Cidr& c) { return c.contains(dst); });
    return in_vpc ? fmt::format("no interface has the address {}", dst.toString())
                  : fmt::format(
                        "{} is outside the VPC: vpcguard routes only between its "
                        "interfaces",
                        dst.toString());
  }

  Route lookup() {
    const auto& src = *ends_.src;
    const model::Subnet& src_subnet = subnetOf(src);
    if (constantCidr(pipeline::kMirrorHostSubnet).contains(p_.dst)) {
      add("lookup", "deny", "", "",
          fmt::format("{} is in {}, the bridge's own subnet for mirror copies: VMs cannot reach "
                      "it",
                      p_.dst.toString(), pipeline::kMirrorHostSubnet));
      drop(pipeline::kVerdictNoRoute, fmt::format("at lookup: no route to {}", p_.dst.toString()));
      return Route::kNoRoute;
    }
    if (auto why = unfilteredReason(src_subnet)) {
      add("lookup", "allow", "", "",
          *why +
              ": AWS never filters it (no security group, NACL, flow log or mirror); to the "
              "host");
      add("unfiltered", "allow", "", "", "UNFILTERED sends it to the host (LOCAL)");
      return Route::kUnfiltered;
    }
    if (ends_.dst == nullptr) {
      add("lookup", "deny", "", "", noRouteReason());
      drop(pipeline::kVerdictNoRoute, fmt::format("at lookup: no route to {}", p_.dst.toString()));
      return Route::kNoRoute;
    }
    const auto& dst = *ends_.dst;
    if (dst.subnet_id == src.subnet_id) {
      add("lookup", "allow", "", "",
          fmt::format("{} and {} are both in {}: switched to {}'s MAC {}, no NACL applies", src.id,
                      dst.id, src.subnet_id, dst.id, dst.mac_address));
      return Route::kSwitched;
    }
    add("lookup", "allow", "", "",
        fmt::format("{} is in {}, {} in {}: through the VPC router (MAC {}), NACLs apply", dst.id,
                    dst.subnet_id, src.id, src.subnet_id, pipeline::kRouterMac));
    return Route::kRouted;
  }

  // The security-group and NACL stages, then delivery.
  void filtered(bool routed) {
    out_.filtered = true;
    out_.ct_passes = 1;
    if (!established() && !conntrackCanStart(p_)) {
      add("sg-egress", "deny", "", "",
          fmt::format("conntrack (in {}'s zone) cannot start a connection with {} type {}: it "
                      "is invalid (+inv) without a connection it belongs to",
                      ends_.src->id, protocolName(p_.protocol), p_.icmp_type));
      out_.ct_invalid = true;
      drop(pipeline::kVerdictCtInvalid, "at SG egress: conntrack invalid");
      return;
    }
    if (!securityGroup(true)) {
      return;
    }
    if (routed) {
      if (!networkAcl(true)) {
        return;
      }
      out_.left_source = true;
      add("router", "allow", "", "",
          fmt::format("the VPC router forwards it from {} to {}: TTL {} -> {}, source MAC = "
                      "router MAC, destination MAC = {}'s at output",
                      ends_.src->subnet_id, ends_.dst->subnet_id, kDefaultTtl, kDefaultTtl - 1,
                      ends_.dst->id));
      if (!networkAcl(false)) {
        return;
      }
    } else {
      const std::string why =
          fmt::format("within {}: NACLs apply only between subnets", ends_.src->subnet_id);
      add("nacl-outbound", "skip", "", "", why);
      out_.left_source = true;
      add("nacl-inbound", "skip", "", "", why);
    }
    out_.ct_passes = 2;
    if (!securityGroup(false)) {
      return;
    }
    add("output", "allow", "", "",
        routed
            ? fmt::format("routed: TTL decremented, MACs rewritten; delivered to {}", ends_.dst->id)
            : fmt::format("delivered to {}", ends_.dst->id));
    deliver(ends_.dst->id, fmt::format("{} -> {}", ends_.src->id, ends_.dst->id));
  }

  bool securityGroup(bool egress) {
    const auto& eni = egress ? *ends_.src : *ends_.dst;
    const std::string stage = egress ? "sg-egress" : "sg-ingress";
    const char* direction = egress ? "egress" : "ingress";
    if (established()) {
      // This side's zone holds the connection committed by the original's opposite stage.
      const auto& commit = egress ? original_->ingress_commit : original_->egress_commit;
      add(stage, "established", commit.first, commit.second,
          fmt::format("a reply of a connection conntrack knows in {}'s zone (+est+rpl): allowed "
                      "whatever the {} rules say",
                      eni.id, direction));
      return true;
    }
    const std::vector<RuleHit> hits = sgRuleHits(policy_, eni, egress, p_);
    if (hits.empty()) {
      add(stage, "deny", "", "",
          fmt::format("no {} rule of {} ({}) allows {}", direction, eni.id,
                      listNames(eni.security_group_ids), describePacket(p_)));
      drop(egress ? pipeline::kVerdictSgEgressMiss : pipeline::kVerdictSgIngressMiss,
           fmt::format("at SG {} of {}: no rule allows it", direction, eni.id));
      out_.reject = egress ? Outcome::Reject::kEgress : Outcome::Reject::kIngress;
      return false;
    }
    const RuleHit& first = hits.front();
    const bool untracked = untrackedBy(policy_, eni, egress, first, p_);
    std::string detail = first.why + "; ";
    if (untracked) {
      detail += fmt::format(
          "untracked (AWS): {}'s {} allows all {} {} the whole internet, so the "
          "flow is committed as checked and stops as soon as this rule goes",
          eni.id, egress ? "ingress" : "egress", protocolName(p_.protocol), egress ? "from" : "to");
    } else if (policy_.vpc.strict_revocation) {
      detail +=
          "tracked, committed as checked (strict revocation): the connection ends as soon "
          "as no rule allows it";
    } else {
      detail +=
          "tracked: conntrack lets its replies through, and the connection outlives the "
          "rule until its idle timeout";
    }
    std::vector<std::string> others;
    bool mixed = false;
    for (size_t i = 1; i < hits.size(); ++i) {
      others.push_back(sgRuleName(hits[i].group->id, egress, hits[i].position));
      mixed = mixed || untrackedBy(policy_, eni, egress, hits[i], p_) != untracked;
    }
    if (!others.empty()) {
      detail += fmt::format("; {} other rule{} also allow{} it ({})", others.size(),
                            others.size() == 1 ? "" : "s", others.size() == 1 ? "s" : "",
                            listNames(others));
    }
    if (mixed) {
      detail += fmt::format(
          "; the switch may commit it with one of those instead, which would "
          "make it {}",
          untracked ? "tracked" : "untracked");
    }
    const std::string rule = describeSgRule(first.group->id, egress, first.position, *first.rule);
    const std::string location = formatLocation(first.rule->location);
    (egress ? out_.egress_commit : out_.ingress_commit) = {rule, location};
    add(stage, untracked ? "untracked" : "tracked", rule, location, std::move(detail));
    return true;
  }

  bool networkAcl(bool egress) {
    const auto& eni = egress ? *ends_.src : *ends_.dst;
    const model::Subnet& subnet = subnetOf(eni);
    const auto& nacl = *findById(policy_.network_acls, subnet.network_acl_id);
    const std::string stage = egress ? "nacl-outbound" : "nacl-inbound";
    size_t skipped = 0;
    const auto* entry = firstNaclMatch(nacl, egress, p_, skipped);
    const std::string before = skipped == 0
                                   ? ""
                                   : fmt::format(" ({} lower-numbered entr{} did not match)",
                                                 skipped, skipped == 1 ? "y" : "ies");
    if (entry != nullptr && entry->allow) {
      add(stage, "allow", describeNaclEntry(nacl.id, *entry), formatLocation(entry->location),
          fmt::format("the first matching entry of {} ({}){}", nacl.id, subnet.id, before));
      return true;
    }
    const int number =
        entry != nullptr ? entry->rule_number : static_cast<int>(pipeline::kNaclStarRule);
    std::string detail =
        entry != nullptr ? fmt::format("the first matching entry of {} ({}) denies{}", nacl.id,
                                       subnet.id, before)
                         : fmt::format("no entry of {} ({}) matches {}: the final * rule denies",
                                       nacl.id, subnet.id, describePacket(p_));
    if (original_ != nullptr) {
      detail +=
          "; NACLs are stateless: a reply needs its own allow entry (ephemeral ports, e.g. "
          "1024-65535)";
    }
    add(stage, "deny",
        entry != nullptr ? describeNaclEntry(nacl.id, *entry) : describeNaclStar(nacl.id, egress),
        formatLocation(entry != nullptr ? entry->location : nacl.location), std::move(detail));
    drop((egress ? pipeline::kVerdictNaclOutDeny : pipeline::kVerdictNaclInDeny) |
             static_cast<uint32_t>(number),
         fmt::format("at NACL {}: {}", egress ? "outbound" : "inbound",
                     naclEntryName(nacl.id, egress, number)));
    out_.reject = egress ? Outcome::Reject::kEgress : Outcome::Reject::kIngress;
    return false;
  }

  const model::Policy& policy_;
  const Ends& ends_;
  const TracePacket& p_;
  const Outcome* original_;
  std::vector<TraceStep>& steps_;
  Outcome out_;
};

// ---- effects of what was accepted ----------------------------------------------------------

const char* trafficTypeName(model::FlowLogTrafficType type) {
  switch (type) {
    case model::FlowLogTrafficType::kAccept:
      return "ACCEPT";
    case model::FlowLogTrafficType::kReject:
      return "REJECT";
    case model::FlowLogTrafficType::kAll:
      return "ALL";
  }
  return "ALL";
}

bool records(model::FlowLogTrafficType type, bool accept) {
  return type == model::FlowLogTrafficType::kAll ||
         type == (accept ? model::FlowLogTrafficType::kAccept : model::FlowLogTrafficType::kReject);
}

// Flow-log records (docs/flowlogs.md, "Where the switch reports traffic"): the sender's egress
// ACCEPT once the packet left its subnet, the receiver's ingress ACCEPT at delivery; a REJECT
// on the side whose security group or NACL dropped it. Unfiltered traffic and port-security,
// no-route and conntrack-invalid drops are never recorded.
void flowLogSteps(const model::Policy& policy, const Ends& ends, const Outcome& o,
                  std::vector<TraceStep>& steps) {
  struct Side {
    const model::NetworkInterface* eni;
    const char* direction;
    std::optional<bool> accept;  // nullopt: nothing to record on this side
  };
  const auto reject = [&](Outcome::Reject side) {
    return o.reject == side ? std::optional<bool>(false) : std::nullopt;
  };
  const Side sides[] = {
      {ends.src, "egress",
       o.left_source ? std::optional<bool>(true) : reject(Outcome::Reject::kEgress)},
      {ends.dst, "ingress",
       o.delivered && o.filtered ? std::optional<bool>(true) : reject(Outcome::Reject::kIngress)},
  };
  for (const Side& side : sides) {
    if (side.eni == nullptr || !side.accept) {
      continue;
    }
    for (const auto& log : policy.flow_logs) {
      if (!flowLogCovers(log, policy, *side.eni) || !records(log.traffic_type, *side.accept)) {
        continue;
      }
      steps.push_back(
          TraceStep{"flow-log", "record", log.id, formatLocation(log.location),
                    fmt::format("{} {} record on {} ({} covers {}, traffic type {})",
                                side.direction, *side.accept ? "ACCEPT" : "REJECT", side.eni->id,
                                log.id, log.resource_id, trafficTypeName(log.traffic_type))});
    }
  }
}

// The mirror copy of one side: the interface's sessions in session-number order; in each, the
// filter rules of the direction by rule number, the first matching one decides (accept: this
// session copies it; reject: the next session). A packet is copied at most once.
void mirrorSide(const model::Policy& policy, const MirrorSourcePlan& source,
                const model::NetworkInterface& eni, bool ingress, const TracePacket& p,
                std::vector<TraceStep>& steps) {
  const char* direction = ingress ? "ingress" : "egress";
  for (const auto& session : source.sessions) {
    const auto& rules = ingress ? session.ingress : session.egress;
    auto rule = std::find_if(rules.begin(), rules.end(),
                             [&](const MirrorRulePlan& r) { return mirrorRuleMatches(r, p); });
    if (rule == rules.end() || !rule->accept) {
      continue;
    }
    const auto* s = findById(policy.traffic_mirror_sessions, session.id);
    const std::string filter = s != nullptr ? s->traffic_mirror_filter_id : "?";
    const std::string target = s != nullptr ? s->traffic_mirror_target_id : "?";
    const int length = std::min(session.packet_length.value_or(pipeline::kMirrorMaxCopyBytes),
                                pipeline::kMirrorMaxCopyBytes);
    steps.push_back(TraceStep{
        "mirror", "copy",
        fmt::format("{} (session {}) filter {} {} rule {}: accept", session.id,
                    s != nullptr ? s->session_number : 0, filter, direction, rule->rule_number),
        s != nullptr ? formatLocation(s->location) : "",
        fmt::format("{} copy of {}'s traffic to target {} ({}{}) as VXLAN VNI {}, at most {} "
                    "bytes",
                    direction, eni.id, target, session.tunnel_destination.toString(),
                    session.local_target ? ", a local interface" : "", session.vni, length)});
    return;
  }
  steps.push_back(
      TraceStep{"mirror", "none", "", "",
                fmt::format("no {} filter of {}'s {} session{} accepts it", direction, eni.id,
                            source.sessions.size(), source.sessions.size() == 1 ? "" : "s")});
}

// Mirroring hooks sit at the same two points as flow-log counting: the source's egress
// sessions once the packet left its subnet, the destination's ingress sessions at delivery.
void mirrorSteps(const model::Policy& policy, const Ends& ends, const Outcome& o,
                 std::vector<TraceStep>& steps) {
  if (policy.traffic_mirror_sessions.empty()) {
    return;
  }
  // The plan as the translator makes it, with a tunnel port and every interface on the bridge.
  std::map<std::string, uint16_t> index;
  for (size_t i = 0; i < policy.network_interfaces.size(); ++i) {
    index[policy.network_interfaces[i].id] = static_cast<uint16_t>(i + 1);
  }
  const MirrorPlan plan = mirrorPlan(policy, {{pipeline::kMirrorTunnelKey, 1}}, index);
  const auto side = [&](const model::NetworkInterface* eni, bool ingress) {
    if (eni == nullptr) {
      return;
    }
    const uint16_t wanted = index[eni->id];
    for (const auto& source : plan.sources) {
      if (source.index == wanted) {
        mirrorSide(policy, source, *eni, ingress, ends.packet, steps);
      }
    }
  };
  if (o.left_source) {
    side(ends.src, false);
  }
  if (o.delivered && o.filtered) {
    side(ends.dst, true);
  }
}

// ---- the switch probe ----------------------------------------------------------------------

// The packet as ofproto/trace's exact flow syntax wants it: udp_src/udp_dst for UDP (tp_* are
// TCP's), icmpv6_type/code for ICMPv6, tcp_flags without a mask.
std::string probeFlow(const TracePacket& p, const std::string& dl_src, const std::string& dl_dst,
                      bool reply) {
  const bool v4 = p.src.isV4();
  std::string head;
  std::string l4;
  if (p.protocol == kProtoTcp) {
    head = v4 ? "tcp" : "tcp6";
    l4 = fmt::format(",tp_src={},tp_dst={},tcp_flags={}", p.src_port, p.dst_port,
                     reply ? "ack" : "syn");
  } else if (p.protocol == kProtoUdp) {
    head = v4 ? "udp" : "udp6";
    l4 = fmt::format(",udp_src={},udp_dst={}", p.src_port, p.dst_port);
  } else if (p.protocol == kProtoIcmp && v4) {
    head = "icmp";
    l4 = fmt::format(",icmp_type={},icmp_code={}", p.icmp_type, p.icmp_code);
  } else if (p.protocol == kProtoIcmpv6 && !v4) {
    head = "icmp6";
    l4 = fmt::format(",icmpv6_type={},icmpv6_code={}", p.icmp_type, p.icmp_code);
  } else {
    head = v4 ? "ip" : "ipv6";
    l4 = fmt::format(",nw_proto={}", p.protocol);
  }
  return fmt::format("{},dl_src={},dl_dst={},{}={},{}={},nw_ttl={}{}", head, dl_src, dl_dst,
                     v4 ? "nw_src" : "ipv6_src", p.src.toString(), v4 ? "nw_dst" : "ipv6_dst",
                     p.dst.toString(), kDefaultTtl, l4);
}

// `reply`: the reply direction of the request (TCP flags of an answer); `established`:
// conntrack knows its connection (+est+rpl at every ct), else it is new to conntrack.
SwitchProbe makeProbe(const Ends& ends, const Outcome& o, bool reply, bool established) {
  SwitchProbe probe;
  probe.in_interface = ends.src != nullptr ? ends.src->id : "LOCAL";
  // The bridge's own port carries the router MAC. A VM sends to a VM of its subnet with that
  // VM's MAC and to anything else through the router.
  const std::string dl_src = ends.src != nullptr ? ends.src->mac_address : pipeline::kRouterMac;
  const bool direct =
      ends.dst != nullptr && (ends.src == nullptr || ends.src->subnet_id == ends.dst->subnet_id);
  const std::string dl_dst = direct ? ends.dst->mac_address : pipeline::kRouterMac;
  probe.flow = probeFlow(ends.packet, dl_src, dl_dst, reply);
  const char* state = o.ct_invalid ? "trk,inv" : (established ? "trk,est,rpl" : "trk,new");
  probe.ct_next.assign(static_cast<size_t>(o.ct_passes), state);
  probe.delivered = o.delivered;
  probe.out_interface = o.delivered ? o.out_interface : "";
  probe.drop_verdict = o.delivered ? 0 : o.drop_verdict;
  return probe;
}

// One direction: the walk, its effects and its probe.
struct Traced {
  std::vector<TraceStep> steps;
  Outcome outcome;
  SwitchProbe probe;
};

Traced traceOne(const model::Policy& policy, const Ends& ends, const Outcome* original) {
  Traced t;
  t.outcome = Walk(policy, ends, original, t.steps).run();
  flowLogSteps(policy, ends, t.outcome, t.steps);
  mirrorSteps(policy, ends, t.outcome, t.steps);
  t.probe =
      makeProbe(ends, t.outcome, original != nullptr, original != nullptr && original->filtered);
  return t;
}

// "allow: eni-web1 -> eni-db1" / "drop: at NACL inbound: acl-private inbound rule *".
std::string summaryOf(bool delivered, const std::string& reason, bool reply) {
  return fmt::format("{}: {}{}", delivered ? "allow" : "drop", reply ? "reply " : "", reason);
}

// The reply: only a connection whose original direction was delivered has one.
void traceReply(const model::Policy& policy, const Ends& ends, TraceResult& result) {
  const Traced original = traceOne(policy, ends, nullptr);
  const Ends back = reversed(ends);
  result.packet = back.packet;
  const std::string what = describePacket(ends.packet);
  if (!original.outcome.delivered) {
    result.steps.push_back(TraceStep{
        "connection", "none", "", "",
        fmt::format("no connection: the original direction ({}) is dropped {}, so there is "
                    "nothing to reply to",
                    what, original.outcome.reason)});
    result.verdict = Verdict::kDrop;
    result.summary = summaryOf(
        false, "without a connection: the original direction is dropped " + original.outcome.reason,
        true);
    // Not comparable: ofproto/trace cannot say "no conntrack entry" for a reply.
    result.probe = makeProbe(back, Outcome{}, true, false);
    result.probe.comparable = false;
    return;
  }
  if (original.outcome.filtered) {
    result.steps.push_back(TraceStep{
        "connection", "established", "", "",
        fmt::format("the original direction ({}) is allowed: conntrack holds the connection in "
                    "both interfaces' zones, security groups let its replies through, NACLs "
                    "evaluate them (stateless)",
                    what)});
  } else {
    result.steps.push_back(TraceStep{
        "connection", "skip", "", "",
        fmt::format("the original direction ({}) is never filtered: no connection tracking; the "
                    "reply is evaluated on its own",
                    what)});
  }
  Traced reply = traceOne(policy, back, &original.outcome);
  result.steps.insert(result.steps.end(), std::make_move_iterator(reply.steps.begin()),
                      std::make_move_iterator(reply.steps.end()));
  result.verdict = reply.outcome.delivered ? Verdict::kAllow : Verdict::kDrop;
  result.summary = summaryOf(reply.outcome.delivered, reply.outcome.reason, true);
  result.probe = std::move(reply.probe);
}

// "(eni-web1 -> eni-db1)", "(eni-web1 -> host)", "(host -> eni-db1)", "(eni-web1 -> none)".
std::string endsLabel(const TraceResult& r) {
  const std::string src = r.packet.src_interface.empty() ? "host" : r.packet.src_interface;
  std::string dst = r.packet.dst_interface;
  if (dst.empty()) {
    dst = r.probe.delivered && r.probe.out_interface == "LOCAL" ? "host" : "no interface";
  }
  return fmt::format("({} -> {})", src, dst);
}

}  // namespace

Result<TraceResult> trace(const model::Policy& policy, const TraceRequest& request) {
  auto spec = parseProtocol(request.protocol);
  if (!spec) {
    return tl::unexpected(spec.error());
  }
  auto ends = resolve(policy, request, *spec);
  if (!ends) {
    return tl::unexpected(ends.error());
  }
  TraceResult result;
  result.request = request;
  if (request.reply) {
    traceReply(policy, *ends, result);
    return result;
  }
  Traced t = traceOne(policy, *ends, nullptr);
  result.packet = ends->packet;
  result.verdict = t.outcome.delivered ? Verdict::kAllow : Verdict::kDrop;
  result.summary = summaryOf(t.outcome.delivered, t.outcome.reason, false);
  result.steps = std::move(t.steps);
  result.probe = std::move(t.probe);
  return result;
}

std::string renderText(const TraceResult& result) {
  std::string out = fmt::format("packet:  {} {}{}\n", describePacket(result.packet),
                                endsLabel(result), result.request.reply ? " [reply]" : "");
  struct Row {
    std::string stage, decision, rule, detail;
  };
  std::vector<Row> rows = {{"STAGE", "DECISION", "RULE", "DETAIL"}};
  for (const auto& s : result.steps) {
    std::string rule = s.rule.empty() ? "-" : s.rule;
    if (!s.location.empty()) {
      rule += " (" + s.location + ")";
    }
    rows.push_back({s.stage, s.decision, std::move(rule), s.detail});
  }
  size_t w_stage = 0;
  size_t w_decision = 0;
  size_t w_rule = 0;
  for (const auto& row : rows) {
    w_stage = std::max(w_stage, row.stage.size());
    w_decision = std::max(w_decision, row.decision.size());
    w_rule = std::max(w_rule, row.rule.size());
  }
  for (const auto& row : rows) {
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {}\n", row.stage, w_stage, row.decision, w_decision,
                       row.rule, w_rule, row.detail);
  }
  // The summary without its "allow: " / "drop: " (the verdict says it).
  const std::string_view summary = result.summary;
  const size_t colon = summary.find(": ");
  out += fmt::format("verdict: {} ({})\n", toString(result.verdict),
                     colon == std::string_view::npos ? summary : summary.substr(colon + 2));
  const SwitchProbe& p = result.probe;
  out += fmt::format("switch:  in_port={} {}", p.in_interface, p.flow);
  for (const auto& state : p.ct_next) {
    out += " --ct-next " + state;
  }
  if (!p.comparable) {
    out += " (not comparable: no connection)";
  } else if (p.delivered) {
    out += " -> output " + p.out_interface;
  } else {
    out += fmt::format(" -> drop, reg4={:#010x}", p.drop_verdict);
  }
  out += "\n";
  return out;
}

nlohmann::ordered_json toJson(const TraceResult& result) {
  using Json = nlohmann::ordered_json;
  const TracePacket& p = result.packet;
  const auto orNull = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  Json packet = {{"protocol", protocolName(p.protocol)},
                 {"protocol_number", p.protocol},
                 {"src", p.src.toString()},
                 {"dst", p.dst.toString()},
                 {"src_interface", orNull(p.src_interface)},
                 {"dst_interface", orNull(p.dst_interface)},
                 {"reply", result.request.reply}};
  if (isTcpOrUdp(p.protocol)) {
    packet["src_port"] = p.src_port;
    packet["dst_port"] = p.dst_port;
  } else if (isIcmp(p.protocol)) {
    packet["icmp_type"] = p.icmp_type;
    packet["icmp_code"] = p.icmp_code;
  }
  Json path = Json::array();
  for (const auto& s : result.steps) {
    Json step = {{"stage", s.stage},
                 {"decision", s.decision},
                 {"rule", s.rule},
                 {"location", s.location},
                 {"detail", s.detail}};
    path.push_back(std::move(step));
  }
  const SwitchProbe& probe = result.probe;
  Json sw = {{"in_interface", probe.in_interface},
             {"flow", probe.flow},
             {"ct_next", probe.ct_next},
             {"delivered", probe.delivered},
             {"out_interface", orNull(probe.out_interface)},
             {"drop_verdict", probe.drop_verdict},
             {"drop_verdict_hex", fmt::format("{:#010x}", probe.drop_verdict)},
             {"comparable", probe.comparable}};
  Json doc = {{"verdict", toString(result.verdict)},
              {"summary", result.summary},
              {"packet", std::move(packet)},
              {"path", std::move(path)},
              {"switch", std::move(sw)}};
  return doc;
}

std::string renderJson(const TraceResult& result) { return dumpJson(toJson(result)); }

}  // namespace vpcguard::explain
