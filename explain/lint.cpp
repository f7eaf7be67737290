#include "explain/lint.h"

// Design. NACL questions (VG101 shadowing, VG301 replies) are answered by the same small
// machinery: a set of packets of one protocol and address family is a list of disjoint boxes
// (address interval x destination port interval); walking a NACL direction in rule-number order
// cuts from that set, for each entry, the part the entry decides. What is left after the walk
// is what the `*` rule decides. Splitting the boxes at the edges of each entry keeps unions exact
// (two /25 entries cover a /24; ports 0-1023 plus 1024-65535 cover all ports). ICMP type/code and
// protocols are not split: an entry takes part for a target only when its protocol (and ICMP
// type/code) match all of the target's.
//
// Bounds. Boxes multiply: an entry can split each box it cuts into four, and every later entry
// walks all of them, so a NACL of a thousand /32 entries followed by broad ones (quotas can be
// raised) would take minutes. One walk (the earlier entries for VG101, the other direction for
// one protocol of VG301) stops when its region holds more than kMaxBoxes boxes or it has visited
// more than kMaxBoxWork boxes; the entry is then left unreported (never a guess) and counted in
// one VG199 note per NACL direction. Exact shortcuts first: an entry that misses the region's
// bounding box (kept loosely) is skipped without visiting its boxes, a cut that meets no box
// copies nothing, and addresses compare as two 64-bit numbers.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "explain/describe.h"
#include "translator/pipeline.h"

namespace vpcguard::explain {

const char* toString(Severity severity) {
  switch (severity) {
    case Severity::kNote:
      return "note";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "warning";
}

namespace {

using model::IcmpTypeCode;
using model::NetworkAcl;
using model::NetworkAclEntry;
using model::PortRange;
using model::SecurityGroup;
using model::SecurityGroupRule;

constexpr int kMaxPort = 65535;
// The ports replies are addressed to (AWS's advice for NACL reply entries).
constexpr PortRange kEphemeralPorts{1024, kMaxPort};
// An allow entry whose ports start in 1024..49152 and end at 65535 is taken to carry replies to
// connections the other direction opens (49152-65535 is the narrowest common ephemeral range,
// IANA's and Windows'); VG301 does not ask for replies to replies.
constexpr int kReplyEntryMaxFrom = 49152;

struct AdminPort {
  int port;
  const char* service;
};
// Sorted by port: messages list them in this order.
constexpr std::array<AdminPort, 10> kAdminPorts{{{22, "SSH"},
                                                 {23, "telnet"},
                                                 {1433, "SQL Server"},
                                                 {1521, "Oracle"},
                                                 {3306, "MySQL"},
                                                 {3389, "RDP"},
                                                 {5432, "PostgreSQL"},
                                                 {6379, "Redis"},
                                                 {9200, "Elasticsearch"},
                                                 {27017, "MongoDB"}}};

bool hasPorts(int protocol) { return protocol == model::kProtoTcp || protocol == model::kProtoUdp; }
bool isIcmp(int protocol) {
  return protocol == model::kProtoIcmp || protocol == model::kProtoIcmpv6;
}

// The destination ports a rule of `protocol` matches: its range for tcp/udp (absent = all),
// every port otherwise (ports do not narrow "all" or portless protocols).
PortRange portsOf(int protocol, const std::optional<PortRange>& ports) {
  if (hasPorts(protocol) && ports) {
    return *ports;
  }
  return PortRange{0, kMaxPort};
}

bool portsCover(const PortRange& outer, const PortRange& inner) {
  return outer.from <= inner.from && inner.to <= outer.to;
}

// ICMP type/code: absent or type -1 = every type and code; code -1 = every code of the type.
bool icmpCovers(const std::optional<IcmpTypeCode>& outer,
                const std::optional<IcmpTypeCode>& inner) {
  if (!outer || outer->type < 0) {
    return true;
  }
  if (!inner || inner->type < 0 || inner->type != outer->type) {
    return false;
  }
  return outer->code < 0 || outer->code == inner->code;
}

// Whether a rule of protocol `outer` matches every packet of protocol `inner`, ports aside.
bool protocolCovers(int outer, const std::optional<IcmpTypeCode>& outer_icmp, int inner,
                    const std::optional<IcmpTypeCode>& inner_icmp) {
  if (outer == model::kProtoAll) {
    return true;
  }
  if (outer != inner) {
    return false;
  }
  return !isIcmp(outer) || icmpCovers(outer_icmp, inner_icmp);
}

// "rule 100 (deny tcp 22 from 0.0.0.0/0)": describe.h writes "<name>: <body>".
std::string bodyAfterName(const std::string& described, const std::string& name) {
  return described.substr(std::min(described.size(), name.size() + 2));
}
std::string naclRuleText(const std::string& nacl_id, const NetworkAclEntry& e) {
  return fmt::format("rule {} ({})", e.rule_number,
                     bodyAfterName(describeNaclEntry(nacl_id, e),
                                   naclEntryName(nacl_id, e.egress, e.rule_number)));
}
std::string sgRuleText(const std::string& group_id, bool egress, size_t position,
                       const SecurityGroupRule& rule) {
  const std::string name = sgRuleName(group_id, egress, position);
  return fmt::format("{} ({})", name,
                     bodyAfterName(describeSgRule(group_id, egress, position, rule), name));
}

// "a, b and c" (prose) or, with `last_separator` equal to `separator`, a plain join.
std::string join(const std::vector<std::string>& items, const char* separator,
                 const char* last_separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += i + 1 == items.size() ? last_separator : separator;
    }
    out += items[i];
  }
  return out;
}
std::string joinList(const std::vector<std::string>& items) { return join(items, ", ", " and "); }

// --- packet sets ----------------------------------------------------------------------------

// An address's 16 bytes as two big-endian numbers: it orders as IpAddress does (within one
// family) but compares in two steps instead of sixteen.
struct Key {
  uint64_t high = 0;
  uint64_t low = 0;
  auto operator<=>(const Key&) const = default;
};

Key keyOf(const IpAddress& a) {
  Key k;
  for (size_t i = 0; i < 8; ++i) {
    k.high = (k.high << 8) | a.bytes[i];
    k.low = (k.low << 8) | a.bytes[i + 8];
  }
  return k;
}
IpAddress addressOf(IpFamily family, const Key& k) {
  IpAddress a;
  a.family = family;
  for (size_t i = 0; i < 8; ++i) {
    a.bytes[7 - i] = static_cast<uint8_t>(k.high >> (8 * i));
    a.bytes[15 - i] = static_cast<uint8_t>(k.low >> (8 * i));
  }
  return a;
}
// The next and previous address of the family (the caller knows there is one). IPv4 addresses
// are the first 4 bytes: bits 63..32 of `high`.
constexpr uint64_t kV4Unit = uint64_t{1} << 32;
Key nextKey(IpFamily family, Key k) {
  if (family == IpFamily::kV4) {
    k.high += kV4Unit;
  } else if (++k.low == 0) {
    ++k.high;
  }
  return k;
}
Key previousKey(IpFamily family, Key k) {
  if (family == IpFamily::kV4) {
    k.high -= kV4Unit;
  } else if (k.low-- == 0) {
    --k.high;
  }
  return k;
}

// Addresses lo..hi of one family x destination ports.
struct Box {
  IpFamily family = IpFamily::kV4;
  Key lo;
  Key hi;
  PortRange ports;
};
using Region = std::vector<Box>;  // disjoint boxes

Box boxOf(const Cidr& cidr, const PortRange& ports) {
  return Box{cidr.family(), keyOf(cidr.first()), keyOf(cidr.last()), ports};
}

bool intersects(const Box& a, const Box& b) {
  return a.family == b.family && a.lo <= b.hi && b.lo <= a.hi && a.ports.from <= b.ports.to &&
         b.ports.from <= a.ports.to;
}

// The smallest box that holds every box of `region` (not empty; one family).
Box boundsOf(const Region& region) {
  Box bounds = region.front();
  for (const Box& a : region) {
    bounds.lo = std::min(bounds.lo, a.lo);
    bounds.hi = std::max(bounds.hi, a.hi);
    bounds.ports.from = std::min(bounds.ports.from, a.ports.from);
    bounds.ports.to = std::max(bounds.ports.to, a.ports.to);
  }
  return bounds;
}

// Removes `cut` from `region`; returns the part removed. Adds the boxes it visits and makes to
// `work`. The boxes left keep their order (a cut box's pieces take its place).
Region subtract(Region& region, const Box& cut, size_t& work) {
  work += region.size();
  const auto first =
      std::find_if(region.begin(), region.end(), [&](const Box& a) { return intersects(a, cut); });
  if (first == region.end()) {
    return {};
  }
  Region kept;
  kept.reserve(region.size() + 3);
  kept.insert(kept.end(), region.begin(), first);
  Region removed;
  for (auto it = first; it != region.end(); ++it) {
    const Box& a = *it;
    if (!intersects(a, cut)) {
      kept.push_back(a);
      continue;
    }
    const Key lo = std::max(a.lo, cut.lo);
    const Key hi = std::min(a.hi, cut.hi);
    const PortRange ports{std::max(a.ports.from, cut.ports.from),
                          std::min(a.ports.to, cut.ports.to)};
    const IpFamily family = a.family;
    removed.push_back(Box{family, lo, hi, ports});
    if (a.lo < lo) {
      kept.push_back(Box{family, a.lo, previousKey(family, lo), a.ports});
    }
    if (hi < a.hi) {
      kept.push_back(Box{family, nextKey(family, hi), a.hi, a.ports});
    }
    if (a.ports.from < ports.from) {
      kept.push_back(Box{family, lo, hi, PortRange{a.ports.from, ports.from - 1}});
    }
    if (ports.to < a.ports.to) {
      kept.push_back(Box{family, lo, hi, PortRange{ports.to + 1, a.ports.to}});
    }
  }
  work += kept.size() + removed.size();
  region = std::move(kept);
  return removed;
}

// "10.0.1.0/24" when lo..hi is exactly one block, else "10.0.0.0-10.0.0.255".
std::string describeAddresses(const IpAddress& lo, const IpAddress& hi) {
  const int width = lo.bitWidth();
  int prefix = width;
  // The block's host bits: trailing bits where lo has 0 and hi has 1.
  while (prefix > 0) {
    const auto byte = static_cast<size_t>((prefix - 1) / 8);
    const auto bit = static_cast<uint8_t>(1U << (7 - (prefix - 1) % 8));
    if ((lo.bytes[byte] & bit) != 0 || (hi.bytes[byte] & bit) == 0) {
      break;
    }
    --prefix;
  }
  const Cidr block{lo, prefix};
  if (block.last() == hi) {
    return block.toString();
  }
  return lo.toString() + "-" + hi.toString();
}

std::string describePorts(const PortRange& ports) {
  return ports.from == ports.to ? fmt::format("port {}", ports.from)
                                : fmt::format("ports {}-{}", ports.from, ports.to);
}

// "10.0.1.0/24 ports 1024-65535", up to three boxes.
std::string describeRegion(const Region& region) {
  constexpr size_t kShown = 3;
  std::vector<std::string> parts;
  for (size_t i = 0; i < region.size() && i < kShown; ++i) {
    const Box& box = region[i];
    parts.push_back(describeAddresses(addressOf(box.family, box.lo),
                                      addressOf(box.family, box.hi)) +
                    " " +
                    describePorts(region[i].ports));
  }
  if (region.size() > kShown) {
    parts.push_back(fmt::format("{} more ranges", region.size() - kShown));
  }
  return joinList(parts);
}

// --- NACL evaluation ------------------------------------------------------------------------

// The packets a NACL walk is about: one protocol (with its ICMP type/code for ICMP) and family.
struct Target {
  int protocol = model::kProtoAll;
  std::optional<IcmpTypeCode> icmp;
};

struct Decision {
  const NetworkAclEntry* entry = nullptr;  // nullptr: the `*` rule
  Region part;
};

// The most one walk may hold and visit (see "Bounds" above). A NACL within AWS's quotas (at
// most 40 entries per direction) stays far below both.
constexpr size_t kMaxBoxes = 4096;
constexpr size_t kMaxBoxWork = size_t{1} << 17;
// Bounding boxes are recomputed only for regions this small; a larger region keeps the bounds of
// an earlier, larger one (a superset: still exact, just a coarser filter).
constexpr size_t kRecomputeBoundsBelow = 64;

// Walks `entries` (one direction, in rule-number order) over `region`: what each entry decides,
// in order (entries that decide nothing left out). `region` keeps what none decides. nullopt when
// the walk was cut at the bounds (the region then is meaningless).
std::optional<std::vector<Decision>> decide(const std::vector<const NetworkAclEntry*>& entries,
                                            Region& region, const Target& target) {
  std::vector<Decision> decisions;
  if (region.empty()) {
    return decisions;
  }
  size_t work = 0;
  Box bounds = boundsOf(region);
  for (const NetworkAclEntry* f : entries) {
    if (!protocolCovers(f->protocol, f->icmp_type_code, target.protocol, target.icmp)) {
      continue;
    }
    const Box cut = boxOf(f->cidr, portsOf(f->protocol, f->port_range));
    ++work;
    if (!intersects(bounds, cut)) {
      continue;  // meets no box of the region
    }
    Region part = subtract(region, cut, work);
    if (!part.empty()) {
      decisions.push_back(Decision{f, std::move(part)});
      if (region.empty()) {
        break;
      }
      if (region.size() <= kRecomputeBoundsBelow) {
        bounds = boundsOf(region);
        work += region.size();
      }
    }
    if (region.size() > kMaxBoxes || work > kMaxBoxWork) {
      return std::nullopt;
    }
  }
  return decisions;
}

class Linter {
 public:
  Linter(const model::Policy& policy, const LintOptions& options)
      : policy_(policy), options_(options) {}

  std::vector<Finding> run() {
    for (const auto& acl : policy_.network_acls) {
      lintNacl(acl);
    }
    for (const auto& group : policy_.security_groups) {
      lintCoveredRules(group, false);
      lintCoveredRules(group, true);
      lintAdminPorts(group);
      lintUnusedGroup(group);
    }
    if (options_.hits != nullptr) {
      lintZeroHits(*options_.hits);
    }
    std::sort(findings_.begin(), findings_.end(), [](const Finding& a, const Finding& b) {
      return std::tie(a.location.file, a.location.line, a.location.column, a.code, a.object) <
             std::tie(b.location.file, b.location.line, b.location.column, b.code, b.object);
    });
    return std::move(findings_);
  }

 private:
  void add(const char* code, const char* name, Severity severity,
           const model::SourceLocation& location, std::string object, std::string message) {
    findings_.push_back(
        Finding{code, name, severity, location, std::move(object), std::move(message)});
  }

  [[nodiscard]] std::vector<std::string> interfacesUsing(const std::string& group_id) const {
    std::vector<std::string> out;
    for (const auto& eni : policy_.network_interfaces) {
      if (std::find(eni.security_group_ids.begin(), eni.security_group_ids.end(), group_id) !=
          eni.security_group_ids.end()) {
        out.push_back(eni.id);
      }
    }
    return out;
  }

  // --- VG101, VG301 ---

  void lintNacl(const NetworkAcl& acl) {
    std::vector<const model::Subnet*> subnets;
    for (const auto& s : policy_.subnets) {
      if (s.network_acl_id == acl.id) {
        subnets.push_back(&s);
      }
    }
    for (const bool egress : {false, true}) {
      const auto entries = naclEntriesInOrder(acl, egress);
      const auto other = naclEntriesInOrder(acl, !egress);
      size_t not_checked = 0;
      for (size_t i = 0; i < entries.size(); ++i) {
        const Outcome shadowed = lintShadowed(acl, entries, i);
        bool checked = shadowed != Outcome::kNotAnalysed;
        if (shadowed == Outcome::kNo && !subnets.empty()) {
          checked = lintReplies(acl, *entries[i], other, subnets);
        }
        not_checked += checked ? 0 : 1;
      }
      if (not_checked > 0) {
        add("VG199", "nacl-not-analysed", Severity::kNote, acl.location,
            fmt::format("{} {}", acl.id, egress ? "outbound" : "inbound"),
            fmt::format("too many entries to analyse fully ({} of {} entries not checked for "
                        "VG101/VG301)",
                        not_checked, entries.size()));
      }
    }
  }

  enum class Outcome { kYes, kNo, kNotAnalysed };

  // VG101 for entries[i]: kYes when it is shadowed (and reported).
  Outcome lintShadowed(const NetworkAcl& acl, const std::vector<const NetworkAclEntry*>& entries,
                       size_t i) {
    const NetworkAclEntry& e = *entries[i];
    Region region{boxOf(e.cidr, portsOf(e.protocol, e.port_range))};
    const std::vector<const NetworkAclEntry*> earlier(
        entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(i));
    const auto walked = decide(earlier, region, Target{e.protocol, e.icmp_type_code});
    if (!walked) {
      return Outcome::kNotAnalysed;
    }
    if (!region.empty()) {
      return Outcome::kNo;
    }
    const auto& decisions = *walked;
    std::vector<std::string> names;
    size_t same = 0;
    for (const auto& d : decisions) {
      names.push_back(naclRuleText(acl.id, *d.entry));
      same += d.entry->allow == e.allow ? 1 : 0;
    }
    const char* action = e.allow ? "allow" : "deny";
    std::string effect;
    if (same == decisions.size()) {
      effect = fmt::format("with the same action, so this {} is redundant", action);
    } else if (same == 0) {
      effect = fmt::format("with the opposite action, so this {} has no effect", action);
    } else {
      effect = fmt::format("some with the opposite action, so this {} has no effect", action);
    }
    const std::string subject = decisions.size() == 1 ? names.front() + " matches"
                                                      : "together " + joinList(names) + " match";
    add("VG101", "nacl-shadowed", Severity::kWarning, e.location,
        naclEntryName(acl.id, e.egress, e.rule_number),
        fmt::format("never decides: {} every packet it matches first, {}", subject, effect));
    return Outcome::kYes;
  }

  // VG301 for one entry of a NACL that has subnets; false when a walk was cut at the bounds
  // (nothing is reported for the entry then).
  bool lintReplies(const NetworkAcl& acl, const NetworkAclEntry& e,
                   const std::vector<const NetworkAclEntry*>& other,
                   const std::vector<const model::Subnet*>& subnets) {
    if (!e.allow) {
      return true;
    }
    std::vector<int> protocols;
    if (e.protocol == model::kProtoAll) {
      protocols = {model::kProtoTcp, model::kProtoUdp};
    } else if (hasPorts(e.protocol)) {
      const PortRange ports = portsOf(e.protocol, e.port_range);
      if (ports.from >= kEphemeralPorts.from && ports.from <= kReplyEntryMaxFrom &&
          ports.to == kMaxPort) {
        return true;  // itself a reply entry
      }
      protocols = {e.protocol};
    } else {
      return true;
    }
    const char* reply_direction = e.egress ? "inbound" : "outbound";
    const char* reply_peer = e.egress ? "from" : "to";
    std::vector<std::string> problems;
    for (const int protocol : protocols) {
      Region region{boxOf(e.cidr, kEphemeralPorts)};
      // Traffic inside one subnet never crosses its NACL: with a single subnet, replies to
      // its own addresses need no entry.
      if (subnets.size() == 1) {
        const model::Subnet& s = *subnets.front();
        for (const auto& block : {std::optional<Cidr>(s.cidr_block), s.ipv6_cidr_block}) {
          if (block) {
            size_t work = 0;
            (void)subtract(region, boxOf(*block, PortRange{0, kMaxPort}), work);
          }
        }
      }
      if (region.empty()) {
        continue;
      }
      auto walked = decide(other, region, Target{protocol, std::nullopt});
      if (!walked) {
        return false;
      }
      auto& decisions = *walked;
      if (!region.empty()) {
        decisions.push_back(Decision{nullptr, region});
      }
      const bool any_allowed = std::any_of(decisions.begin(), decisions.end(), [](const auto& d) {
        return d.entry != nullptr && d.entry->allow;
      });
      const auto first_deny = std::find_if(decisions.begin(), decisions.end(), [](const auto& d) {
        return d.entry == nullptr || !d.entry->allow;
      });
      if (first_deny == decisions.end()) {
        continue;
      }
      const std::string decider = first_deny->entry == nullptr
                                      ? std::string("rule * (no entry allows them)")
                                      : naclRuleText(acl.id, *first_deny->entry);
      problems.push_back(fmt::format(
          "{} {} {} {} {} {} denied, first by {} for {}", reply_direction, protocolName(protocol),
          reply_peer, e.cidr.toString(), describePorts(kEphemeralPorts),
          any_allowed ? "is partly" : "is", decider, describeRegion(first_deny->part)));
    }
    if (problems.empty()) {
      return true;
    }
    add("VG301", "nacl-no-reply", Severity::kWarning, e.location,
        naclEntryName(acl.id, e.egress, e.rule_number),
        fmt::format("allows {} {} {} but not all replies: {}; NACLs are stateless, so the replies' "
                    "ephemeral ports need their own allow entry",
                    describeMatch(e.protocol, e.port_range, e.icmp_type_code),
                    e.egress ? "to" : "from", e.cidr.toString(), join(problems, "; ", "; ")));
    return true;
  }

  // --- VG102 ---

  static bool peerCovers(const model::Peer& outer, const model::Peer& inner) {
    if (const auto* a = std::get_if<Cidr>(&outer)) {
      const auto* b = std::get_if<Cidr>(&inner);
      return b != nullptr && a->family() == b->family() && a->contains(*b);
    }
    return outer == inner;  // the same group, or the same prefix list
  }

  static bool ruleCovers(const SecurityGroupRule& outer, const SecurityGroupRule& inner) {
    if (!peerCovers(outer.peer, inner.peer) ||
        !protocolCovers(outer.ip_protocol, outer.icmp, inner.ip_protocol, inner.icmp)) {
      return false;
    }
    return outer.ip_protocol == model::kProtoAll ||
           portsCover(portsOf(outer.ip_protocol, outer.ports),
                      portsOf(inner.ip_protocol, inner.ports));
  }

  void lintCoveredRules(const SecurityGroup& group, bool egress) {
    const auto& rules = egress ? group.egress : group.ingress;
    for (size_t j = 0; j < rules.size(); ++j) {
      for (size_t k = 0; k < rules.size(); ++k) {
        if (k == j || !ruleCovers(rules[k], rules[j])) {
          continue;
        }
        const bool mutual = ruleCovers(rules[j], rules[k]);
        if (mutual && k > j) {
          continue;  // the same traffic: the later of the two is reported
        }
        const std::string other = sgRuleText(group.id, egress, k, rules[k]);
        add("VG102", "sg-rule-covered", Severity::kWarning, rules[j].location,
            sgRuleName(group.id, egress, j),
            mutual ? fmt::format("adds nothing: {} allows the same traffic", other)
                   : fmt::format("adds nothing: {} already allows everything it allows", other));
        break;
      }
    }
  }

  // --- VG201 ---

  // The all-addresses blocks through which `peer` opens a rule to everyone ("0.0.0.0/0", or
  // "::/0 through prefix list pl-1"); empty when it does not.
  [[nodiscard]] std::vector<std::string> worldPeers(const model::Peer& peer) const {
    std::vector<std::string> out;
    if (const auto* c = std::get_if<Cidr>(&peer)) {
      if (c->isAll()) {
        out.push_back(c->toString());
      }
    } else if (const auto* ref = std::get_if<model::PrefixListRef>(&peer)) {
      for (const auto& list : policy_.prefix_lists) {
        if (list.id != ref->prefix_list_id) {
          continue;
        }
        for (const auto& entry : list.entries) {
          if (entry.isAll()) {
            out.push_back(entry.toString() + " through prefix list " + list.id);
          }
        }
      }
    }
    return out;
  }

  void lintAdminPorts(const SecurityGroup& group) {
    const auto interfaces = interfacesUsing(group.id);
    if (interfaces.empty()) {
      return;
    }
    for (size_t j = 0; j < group.ingress.size(); ++j) {
      const auto& rule = group.ingress[j];
      if (rule.ip_protocol != model::kProtoAll && rule.ip_protocol != model::kProtoTcp) {
        continue;
      }
      const auto world = worldPeers(rule.peer);
      if (world.empty()) {
        continue;
      }
      const PortRange ports = portsOf(rule.ip_protocol, rule.ports);
      std::vector<std::string> opened;
      for (const auto& admin : kAdminPorts) {
        if (ports.from <= admin.port && admin.port <= ports.to) {
          opened.push_back(fmt::format("{} ({})", admin.port, admin.service));
        }
      }
      if (opened.empty()) {
        continue;
      }
      add("VG201", "admin-port-open", Severity::kError, rule.location,
          sgRuleName(group.id, false, j),
          fmt::format(
              "opens {}{} to {} on {}; allow administration only from known addresses",
              rule.ip_protocol == model::kProtoAll ? "every port and protocol, among them " : "",
              joinList(opened), joinList(world), joinList(interfaces)));
    }
  }

  // --- VG401 ---

  void lintUnusedGroup(const SecurityGroup& group) {
    if (group.is_default || !interfacesUsing(group.id).empty()) {
      return;
    }
    std::vector<std::string> referrers;
    for (const auto& g : policy_.security_groups) {
      for (const bool egress : {false, true}) {
        const auto& rules = egress ? g.egress : g.ingress;
        for (size_t j = 0; j < rules.size(); ++j) {
          const auto* ref = std::get_if<model::GroupRef>(&rules[j].peer);
          if (ref != nullptr && ref->group_id == group.id) {
            referrers.push_back(sgRuleName(g.id, egress, j));
          }
        }
      }
    }
    std::string message = "no interface uses it";
    if (!referrers.empty()) {
      message += fmt::format("; it is referenced by {}, which {} nobody", joinList(referrers),
                             referrers.size() == 1 ? "matches" : "match");
    }
    add("VG401", "unused-group", Severity::kNote, group.location, group.id, message);
  }

  // --- VG501 ---

  void lintZeroHits(const std::vector<RuleHits>& hits) {
    for (const auto& h : hits) {
      // The `*` rule cannot be removed: no hit there is nothing to act on.
      const bool star = h.kind == RuleHits::Kind::kNaclEntry &&
                        h.index == static_cast<int>(pipeline::kNaclStarRule);
      if (star || h.packets != 0 || h.flows == 0 || h.since_seconds < options_.window_seconds) {
        continue;
      }
      const auto colon = h.rule.find(": ");
      add("VG501", "zero-hits", Severity::kNote, h.location, h.rule.substr(0, colon),
          fmt::format("no packet on the switch in {} s ({} flow{}; window {} s): is it still "
                      "needed?",
                      h.since_seconds, h.flows, h.flows == 1 ? "" : "s", options_.window_seconds));
    }
  }

  const model::Policy& policy_;
  const LintOptions& options_;
  std::vector<Finding> findings_;
};

std::map<Severity, size_t> countBySeverity(const std::vector<Finding>& findings) {
  std::map<Severity, size_t> counts{
      {Severity::kError, 0}, {Severity::kWarning, 0}, {Severity::kNote, 0}};
  for (const auto& f : findings) {
    ++counts[f.severity];
  }
  return counts;
}

}  // namespace

std::vector<Finding> lint(const model::Policy& policy, const LintOptions& options) {
  return Linter(policy, options).run();
}

std::string renderFindingsText(const std::vector<Finding>& findings) {
  std::string out;
  for (const auto& f : findings) {
    const std::string where = formatLocation(f.location);
    out += fmt::format("{}{}: {} {}: {}: {}\n", where.empty() ? "" : where + ": ",
                       toString(f.severity), f.code, f.name, f.object, f.message);
  }
  if (findings.empty()) {
    return out + "lint: no findings\n";
  }
  const auto counts = countBySeverity(findings);
  std::vector<std::string> parts;
  for (const Severity s : {Severity::kError, Severity::kWarning, Severity::kNote}) {
    const size_t n = counts.at(s);
    if (n > 0) {
      parts.push_back(fmt::format("{} {}{}", n, toString(s), n == 1 ? "" : "s"));
    }
  }
  return out + "lint: " + join(parts, ", ", ", ") + "\n";
}

std::string renderFindingsJson(const std::vector<Finding>& findings) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : findings) {
    list.push_back({{"code", f.code},
                    {"name", f.name},
                    {"severity", toString(f.severity)},
                    {"file", f.location.file},
                    {"line", f.location.line},
                    {"column", f.location.column},
                    {"object", f.object},
                    {"message", f.message}});
  }
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [severity, n] : countBySeverity(findings)) {
    summary[toString(severity)] = n;
  }
  return dumpJson(nlohmann::json{{"findings", std::move(list)}, {"summary", std::move(summary)}});
}

int lintExitStatus(const std::vector<Finding>& findings) {
  int status = 0;
  for (const auto& f : findings) {
    if (f.severity == Severity::kError) {
      status = std::max(status, 2);
    } else if (f.severity == Severity::kWarning) {
      status = std::max(status, 1);
    }
  }
  return status;
}

}  // namespace vpcguard::explain
