#include "translator/validate.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>

#include "translator/flow_log_format.h"
#include "translator/ip.h"
#include "translator/mirror.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

// The 48 bits of a MAC written canonically (six lower-case hex pairs and colons); nullopt for
// any other spelling.
std::optional<uint64_t> canonicalMacValue(std::string_view mac) {
  if (mac.size() != 17) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < mac.size(); ++i) {
    const char c = mac[i];
    if (i % 3 == 2) {
      if (c != ':') {
        return std::nullopt;
      }
      continue;
    }
    uint64_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    value = (value << 4) | digit;
  }
  return value;
}

}  // namespace


std::string protocolName(int protocol) {
  switch (protocol) {
    case model::kProtoAll:
      return "all";
    case model::kProtoTcp:
      return "tcp";
    case model::kProtoUdp:
      return "udp";
    case model::kProtoIcmp:
      return "icmp";
    case model::kProtoIcmpv6:
      return "icmpv6";
    default:
      return "protocol " + std::to_string(protocol);
  }
}

namespace {

using model::SourceLocation;

std::string at(const std::string& prefix, size_t index) {
  return prefix + "[" + std::to_string(index) + "]";
}

bool hasPorts(int protocol) { return protocol == model::kProtoTcp || protocol == model::kProtoUdp; }
bool isIcmp(int protocol) {
  return protocol == model::kProtoIcmp || protocol == model::kProtoIcmpv6;
}

// "6 (tcp)", "-1 (all)", "47": a protocol number as the config writes it, named when it has a name.
std::string protocolNumber(int protocol) {
  const std::string name = protocolName(protocol);
  return std::to_string(protocol) + (name.starts_with("protocol") ? "" : " (" + name + ")");
}

// Numbers AWS keeps in 1..32766 and unique within a scope (NACL entries and mirror filter rules
// per direction, mirror sessions per source interface); how messages name them.
struct NumberRule {
  const char* what;         // "rule number"
  const char* range_hint;   // why 1..32766
  const char* unique_hint;  // what the scope of uniqueness is
};
constexpr NumberRule kNaclRuleNumber{"rule number", "AWS numbers NACL entries 1 to 32766",
                                     "rule numbers are unique per direction"};
constexpr NumberRule kMirrorRuleNumber{"rule number",
                                       "AWS numbers traffic mirror filter rules 1 to 32766",
                                       "rule numbers are unique per filter direction, as in AWS"};
constexpr NumberRule kSessionNumber{
    "session number", "AWS numbers sessions 1 to 32766; an interface's lowest is evaluated first",
    "session numbers are unique per source interface, as in AWS"};

// The numbers used so far in one scope.
struct NumberScope {
  std::string qualifier;            // in "already used" messages: "inbound ", "egress ", ""
  std::map<int, std::string> seen;  // number -> the object that has it
};

// AWS's limits on a mirror session (CreateTrafficMirrorSession).
constexpr int kMaxPacketLength = 8500;
constexpr int kEthernetHeaderLength = 14;  // OVS's truncate action keeps at least this much
constexpr uint32_t kMaxVirtualNetworkId = (1u << 24) - 1;

// Rules counted against a quota, per address family (AWS counts IPv4 and IPv6 rules apart).
struct RuleCount {
  int64_t v4 = 0;
  int64_t v6 = 0;
};

struct AddressHash {
  size_t operator()(const IpAddress& a) const {
    // Two words at a time (tens of thousands of addresses per load at 100k flows).
    static_assert(sizeof(a.bytes) == 16);
    uint64_t lo = 0;
    uint64_t hi = 0;
    std::memcpy(&lo, a.bytes.data(), 8);
    std::memcpy(&hi, a.bytes.data() + 8, 8);
    uint64_t h = (lo ^ static_cast<uint64_t>(a.family)) * 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 29) ^ hi) * 0xbf58476d1ce4e5b9ULL;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

class Validator {
 public:
  Validator(const model::Policy& policy, const std::set<std::string>& skip)
      : p_(policy), skip_(skip) {}

  std::vector<Diagnostic> run() {
    collectIds();
    checkQuotas();
    checkVpc();
    checkPrefixLists();
    checkSubnets();
    checkSecurityGroups();
    checkNetworkAcls();
    checkInterfaces();
    checkFlowLogs();
    checkMirrorTargets();
    checkMirrorFilters();
    checkMirrorSessions();
    checkPortMirrors();
    sortDiagnostics(out_);
    return std::move(out_);
  }

 private:
  [[nodiscard]] bool skipped(const std::string& path) const {
    if (skip_.empty()) {
      return false;  // the parse reported nothing: the usual case, and the fast one
    }
    for (std::string p = path; !p.empty(); p = parentPath(p)) {
      if (skip_.count(p) != 0) {
        return true;
      }
    }
    return false;
  }

  [[nodiscard]] SourceLocation locate(const std::string& path,
                                      const SourceLocation& fallback) const {
    for (std::string p = path; !p.empty(); p = parentPath(p)) {
      auto it = p_.field_locations.find(p);
      if (it != p_.field_locations.end()) {
        return it->second;
      }
    }
    return fallback;
  }

  void error(const std::string& path, const SourceLocation& fallback, std::string message,
             std::string hint) {
    if (skipped(path)) {
      return;
    }
    out_.push_back(Diagnostic{locate(path, fallback), path, std::move(message), std::move(hint)});
  }

  // Ids ------------------------------------------------------------------------------------------
  void collectIds() {
    groups_.reserve(p_.security_groups.size());
    subnets_.reserve(p_.subnets.size());
    for (size_t i = 0; i < p_.security_groups.size(); ++i) {
      const auto& g = p_.security_groups[i];
      if (g.is_default || g.name == model::kDefaultSecurityGroupName) {
        default_groups_.push_back(i);
      }
      groups_.emplace(g.id, i);
    }
    for (size_t i = 0; i < p_.network_acls.size(); ++i) {
      if (p_.network_acls[i].is_default) {
        default_acls_.push_back(i);
      }
      acls_.emplace(p_.network_acls[i].id, i);
    }
    for (size_t i = 0; i < p_.prefix_lists.size(); ++i) {
      prefix_lists_.emplace(p_.prefix_lists[i].id, i);
    }
    for (size_t i = 0; i < p_.subnets.size(); ++i) {
      subnets_.emplace(p_.subnets[i].id, i);
    }
    for (const auto& eni : p_.network_interfaces) {
      interfaces_.insert(eni.id);
    }
    for (size_t i = 0; i < p_.traffic_mirror_targets.size(); ++i) {
      mirror_targets_.emplace(p_.traffic_mirror_targets[i].id, i);
    }
    for (const auto& f : p_.traffic_mirror_filters) {
      mirror_filters_.insert(f.id);
    }
  }

  // A reference to an object of another table; `what` names the kind ("network interface").
  void checkRef(bool exists, const std::string& id, const std::string& path,
                const SourceLocation& fallback, const std::string& what, const std::string& table) {
    if (!exists) {
      error(path, fallback, what + " '" + id + "' does not exist",
            "define it under [[" + table + "]]");
    }
  }

  [[nodiscard]] bool groupExists(const std::string& id) const {
    return groups_.contains(id) ||
           (default_groups_.empty() && id == model::kDefaultSecurityGroupId);
  }
  [[nodiscard]] bool aclExists(const std::string& id) const {
    return acls_.count(id) != 0 || (default_acls_.empty() && id == model::kDefaultNetworkAclId);
  }

  // Reports empty and duplicate ids of one kind of object; `what` is e.g. "subnet". With an
  // `id_prefix` ("fl-"), ids must start with it: readable ids are fine, but the prefix is what
  // tells the kinds apart in records, paths and `vpcguardctl status`. `origin` says where the
  // prefix comes from.
  template <typename T>
  void checkIds(const std::vector<T>& objects, const std::string& prefix, const std::string& what,
                const std::string& id_prefix = "", const std::string& origin = ", as in AWS") {
    std::unordered_map<std::string_view, size_t> seen;  // views of the policy's ids
    seen.reserve(objects.size());
    for (size_t i = 0; i < objects.size(); ++i) {
      const auto path = [&] { return at(prefix, i) + ".id"; };  // for messages only
      const auto& obj = objects[i];
      if (obj.id.empty()) {
        error(path(), obj.location, what + " has an empty id", "give every " + what + " a unique id");
        continue;
      }
      if (!obj.id.starts_with(id_prefix)) {
        error(path(), obj.location,
              what + " id '" + obj.id + "' does not start with \"" + id_prefix + "\"",
              what + " ids start with " + id_prefix + origin + ": e.g. " + id_prefix + obj.id);
      }
      auto [it, inserted] = seen.emplace(obj.id, i);
      if (!inserted) {
        const auto first = locate(at(prefix, it->second), objects[it->second].location);
        const std::string where = first.file.empty()
                                      ? at(prefix, it->second)
                                      : first.file + ":" + std::to_string(first.line);
        error(path(), obj.location,
              "duplicate " + what + " id '" + obj.id + "' (first defined at " + where + ")",
              "ids must be unique; rename one of them");
      }
    }
  }

  // Quotas ---------------------------------------------------------------------------------------
  void checkQuotas() {
    const auto& q = p_.quotas;
    const std::pair<const char*, int> values[] = {
        {"rules_per_security_group", q.rules_per_security_group},
        {"security_groups_per_interface", q.security_groups_per_interface},
        {"rules_per_interface", q.rules_per_interface},
        {"rules_per_network_acl", q.rules_per_network_acl},
        {"network_acls_per_vpc", q.network_acls_per_vpc},
        {"security_groups_per_vpc", q.security_groups_per_vpc},
        {"prefix_list_max_entries", q.prefix_list_max_entries},
        {"traffic_mirror_sessions_per_interface", q.traffic_mirror_sessions_per_interface},
        {"traffic_mirror_filter_rules", q.traffic_mirror_filter_rules},
    };
    for (const auto& [name, value] : values) {
      if (value < 1) {
        error(std::string("quotas.") + name, {},
              "quota must be at least 1, not " + std::to_string(value),
              "remove the line to keep AWS's default");
      }
    }
  }

  void quotaError(const std::string& path, const SourceLocation& fallback, const std::string& what,
                  int64_t actual, const char* quota, int limit, const std::string& note = "") {
    error(path, fallback,
          what + " (" + std::to_string(actual) + ") exceeds quota " + quota + " = " +
              std::to_string(limit),
          note + "reduce it, or raise " + quota + " in [quotas]");
  }

  // VPC ------------------------------------------------------------------------------------------
  void checkVpc() {
    const auto& vpc = p_.vpc;
    if (vpc.id.empty()) {
      error("vpc.id", vpc.location, "the VPC has no id", "set id = \"vpc-...\" in [vpc]");
    }
    // Flow-log records and S3-style paths carry it; AWS account ids are 12 digits.
    if (!vpc.account_id.empty() && (vpc.account_id.size() != 12 ||
                                    !std::all_of(vpc.account_id.begin(), vpc.account_id.end(),
                                                 [](char c) { return c >= '0' && c <= '9'; }))) {
      error("vpc.account_id", vpc.location, "account id '" + vpc.account_id + "' is not 12 digits",
            "AWS account ids look like 123456789012; leave it out if there is none");
    }
    if (vpc.cidr_blocks.empty()) {
      error("vpc.cidr_blocks", vpc.location, "the VPC needs at least one IPv4 CIDR block",
            "e.g. cidr_blocks = [\"10.0.0.0/16\"]");
    }
    for (size_t i = 0; i < vpc.cidr_blocks.size(); ++i) {
      const std::string path = at("vpc.cidr_blocks", i);
      const Cidr& c = vpc.cidr_blocks[i];
      if (c.family() != IpFamily::kV4) {
        error(path, vpc.location, "'" + c.toString() + "' is not an IPv4 block",
              "put IPv6 blocks in ipv6_cidr_blocks");
        continue;
      }
      if (c.prefix_len < 16 || c.prefix_len > 28) {
        error(path, vpc.location,
              "VPC block '" + c.toString() + "' must be between /16 and /28, as in AWS",
              "use e.g. 10.0.0.0/16");
      }
      for (size_t j = 0; j < i; ++j) {
        if (!skipped(at("vpc.cidr_blocks", j)) && vpc.cidr_blocks[j].overlaps(c)) {
          error(path, vpc.location,
                "VPC block '" + c.toString() + "' overlaps '" + vpc.cidr_blocks[j].toString() + "'",
                "VPC blocks must not overlap");
        }
      }
    }
    for (size_t i = 0; i < vpc.ipv6_cidr_blocks.size(); ++i) {
      const std::string path = at("vpc.ipv6_cidr_blocks", i);
      const Cidr& c = vpc.ipv6_cidr_blocks[i];
      if (c.family() != IpFamily::kV6) {
        error(path, vpc.location, "'" + c.toString() + "' is not an IPv6 block",
              "put IPv4 blocks in cidr_blocks");
        continue;
      }
      if (c.prefix_len < 44 || c.prefix_len > 60 || c.prefix_len % 4 != 0) {
        error(path, vpc.location,
              "VPC IPv6 block '" + c.toString() +
                  "' must be /44 to /60 in steps of 4 (AWS assigns /56)",
              "use e.g. 2600:1f18:abcd:1200::/56");
      }
      for (size_t j = 0; j < i; ++j) {
        if (!skipped(at("vpc.ipv6_cidr_blocks", j)) && vpc.ipv6_cidr_blocks[j].overlaps(c)) {
          error(path, vpc.location,
                "VPC block '" + c.toString() + "' overlaps '" + vpc.ipv6_cidr_blocks[j].toString() +
                    "'",
                "VPC blocks must not overlap");
        }
      }
    }
  }

  [[nodiscard]] bool inVpc(const Cidr& c) const {
    const auto& blocks = c.family() == IpFamily::kV4 ? p_.vpc.cidr_blocks : p_.vpc.ipv6_cidr_blocks;
    return std::any_of(blocks.begin(), blocks.end(), [&](const Cidr& b) { return b.contains(c); });
  }

  [[nodiscard]] std::string vpcBlocks(IpFamily family) const {
    const auto& blocks = family == IpFamily::kV4 ? p_.vpc.cidr_blocks : p_.vpc.ipv6_cidr_blocks;
    std::string out;
    for (const auto& b : blocks) {
      out += (out.empty() ? "" : ", ") + b.toString();
    }
    return out.empty() ? "none" : out;
  }

  // Prefix lists ---------------------------------------------------------------------------------
  void checkPrefixLists() {
    checkIds(p_.prefix_lists, "prefix_lists", "prefix list");
    for (size_t i = 0; i < p_.prefix_lists.size(); ++i) {
      const auto& pl = p_.prefix_lists[i];
      const std::string path = at("prefix_lists", i);
      if (pl.max_entries < 1) {
        error(path + ".max_entries", pl.location, "max_entries must be at least 1",
              "set max_entries to the most entries the list may ever hold");
      } else if (pl.max_entries > p_.quotas.prefix_list_max_entries) {
        quotaError(path + ".max_entries", pl.location, "max_entries", pl.max_entries,
                   "prefix_list_max_entries", p_.quotas.prefix_list_max_entries);
      }
      if (pl.max_entries >= 1 && std::ssize(pl.entries) > pl.max_entries) {
        error(path + ".entries", pl.location,
              "prefix list has " + std::to_string(pl.entries.size()) +
                  " entries but max_entries = " + std::to_string(pl.max_entries),
              "raise max_entries or remove entries");
      }
      for (size_t j = 0; j < pl.entries.size(); ++j) {
        const std::string epath = at(path + ".entries", j);
        if (skipped(epath)) {
          continue;
        }
        if (pl.entries[j].family() != pl.entries.front().family()) {
          error(epath, pl.location, "prefix list mixes IPv4 and IPv6 entries",
                "a prefix list holds one address family, as in AWS; use two lists");
        }
        for (size_t k = 0; k < j; ++k) {
          if (pl.entries[k] == pl.entries[j] && !skipped(at(path + ".entries", k))) {
            error(epath, pl.location, "duplicate entry '" + pl.entries[j].toString() + "'",
                  "remove the duplicate");
            break;
          }
        }
      }
    }
  }

  // Subnets --------------------------------------------------------------------------------------
  void checkSubnets() {
    checkIds(p_.subnets, "subnets", "subnet");
    for (size_t i = 0; i < p_.subnets.size(); ++i) {
      const auto& s = p_.subnets[i];
      const std::string path = at("subnets", i);
      const std::string cpath = path + ".cidr_block";
      if (!skipped(cpath)) {
        if (s.cidr_block.family() != IpFamily::kV4) {
          error(cpath, s.location, "cidr_block must be an IPv4 block",
                "put the IPv6 block in ipv6_cidr_block");
        } else {
          if (s.cidr_block.prefix_len < 16 || s.cidr_block.prefix_len > 28) {
            error(cpath, s.location,
                  "subnet block '" + s.cidr_block.toString() +
                      "' must be between /16 and /28, as in AWS",
                  "use e.g. a /24");
          }
          if (!inVpc(s.cidr_block)) {
            error(cpath, s.location,
                  "subnet block '" + s.cidr_block.toString() + "' is outside the VPC (" +
                      vpcBlocks(IpFamily::kV4) + ")",
                  "choose a block inside one of the VPC's cidr_blocks");
          }
          for (size_t j = 0; j < i; ++j) {
            const auto& other = p_.subnets[j];
            if (!skipped(at("subnets", j) + ".cidr_block") &&
                other.cidr_block.overlaps(s.cidr_block)) {
              error(cpath, s.location,
                    "subnet block '" + s.cidr_block.toString() + "' overlaps subnet '" + other.id +
                        "' (" + other.cidr_block.toString() + ")",
                    "subnets of a VPC must not overlap");
            }
          }
        }
      }
      const std::string v6path = path + ".ipv6_cidr_block";
      if (s.ipv6_cidr_block && !skipped(v6path)) {
        const Cidr& c = *s.ipv6_cidr_block;
        if (c.family() != IpFamily::kV6) {
          error(v6path, s.location, "ipv6_cidr_block must be an IPv6 block",
                "put the IPv4 block in cidr_block");
        } else {
          if (c.prefix_len < 44 || c.prefix_len > 64 || c.prefix_len % 4 != 0) {
            error(v6path, s.location,
                  "subnet IPv6 block '" + c.toString() + "' must be /44 to /64 in steps of 4",
                  "AWS subnets normally get a /64");
          }
          if (!inVpc(c)) {
            error(v6path, s.location,
                  "subnet IPv6 block '" + c.toString() + "' is outside the VPC's IPv6 blocks (" +
                      vpcBlocks(IpFamily::kV6) + ")",
                  p_.vpc.ipv6_cidr_blocks.empty() ? "add ipv6_cidr_blocks to [vpc]"
                                                  : "choose a /64 inside the VPC's IPv6 block");
          }
          for (size_t j = 0; j < i; ++j) {
            const auto& other = p_.subnets[j];
            if (other.ipv6_cidr_block && !skipped(at("subnets", j) + ".ipv6_cidr_block") &&
                other.ipv6_cidr_block->overlaps(c)) {
              error(v6path, s.location,
                    "subnet IPv6 block '" + c.toString() + "' overlaps subnet '" + other.id + "'",
                    "subnets of a VPC must not overlap");
            }
          }
        }
      }
      if (!s.network_acl_id.empty() && !aclExists(s.network_acl_id)) {
        error(path + ".network_acl_id", s.location,
              "network ACL '" + s.network_acl_id + "' does not exist",
              "define it under [[network_acls]], or omit network_acl_id for the default NACL");
      }
    }
  }

  // Security groups ------------------------------------------------------------------------------
  [[nodiscard]] RuleCount countRules(const std::vector<model::SecurityGroupRule>& rules) const {
    RuleCount n;
    for (const auto& r : rules) {
      if (const auto* c = std::get_if<Cidr>(&r.peer)) {
        (c->family() == IpFamily::kV4 ? n.v4 : n.v6) += 1;
      } else if (std::holds_alternative<model::GroupRef>(r.peer)) {
        // A group may hold IPv4 and IPv6 addresses: count it in both families.
        n.v4 += 1;
        n.v6 += 1;
      } else {
        // As AWS does: a referenced prefix list weighs its max_entries, not its current size.
        const auto& ref = std::get<model::PrefixListRef>(r.peer);
        auto it = prefix_lists_.find(ref.prefix_list_id);
        if (it == prefix_lists_.end()) {
          n.v4 += 1;
          continue;
        }
        const auto& pl = p_.prefix_lists[it->second];
        const bool v6 = !pl.entries.empty() && pl.entries.front().family() == IpFamily::kV6;
        (v6 ? n.v6 : n.v4) += std::max(pl.max_entries, 1);
      }
    }
    return n;
  }

  void checkSecurityGroups() {
    checkIds(p_.security_groups, "security_groups", "security group");
    if (std::ssize(p_.security_groups) > p_.quotas.security_groups_per_vpc) {
      quotaError(at("security_groups", p_.security_groups.size() - 1),
                 p_.security_groups.back().location, "number of security groups",
                 std::ssize(p_.security_groups), "security_groups_per_vpc",
                 p_.quotas.security_groups_per_vpc);
    }
    if (default_groups_.size() > 1) {
      const size_t second = default_groups_[1];
      error(at("security_groups", second) + ".name", p_.security_groups[second].location,
            "a second security group named \"default\" (the VPC has one default group)",
            "rename it; only the VPC's default group may be named \"default\"");
    }
    std::map<std::string, size_t, std::less<>> names;
    for (size_t i = 0; i < p_.security_groups.size(); ++i) {
      const auto& g = p_.security_groups[i];
      const std::string path = at("security_groups", i);
      const bool is_default = g.is_default || g.name == model::kDefaultSecurityGroupName;
      if (!is_default && g.id == model::kDefaultSecurityGroupId) {
        error(path + ".id", g.location,
              "id '" + g.id + "' is reserved for the VPC's implicit default group",
              "name the group \"default\" to override the default group, or choose another id");
      }
      if (g.is_default && g.name != model::kDefaultSecurityGroupName) {
        error(path + ".name", g.location, "the default group must be named \"default\"",
              "AWS names the VPC's default group \"default\"");
      }
      if (!g.name.empty() && g.name != model::kDefaultSecurityGroupName) {
        auto [it, inserted] = names.emplace(g.name, i);
        if (!inserted) {
          error(path + ".name", g.location,
                "group name '" + g.name + "' is already used by '" +
                    p_.security_groups[it->second].id + "'",
                "group names are unique in a VPC, as in AWS");
        }
      }
      if (g.description.size() > 255) {
        error(path + ".description", g.location, "description longer than 255 characters",
              "shorten it (AWS limit)");
      }
      checkRules(g.ingress, path + ".ingress");
      checkRules(g.egress, path + ".egress");
    }
  }

  void checkRules(const std::vector<model::SecurityGroupRule>& rules, const std::string& prefix) {
    for (size_t j = 0; j < rules.size(); ++j) {
      const auto& r = rules[j];
      const std::string path = at(prefix, j);
      const std::string proto_path = path + ".ip_protocol";
      if (skipped(proto_path)) {
        continue;
      }
      if (!protocolInRange(r.ip_protocol, proto_path, r.location)) {
        continue;
      }
      if (hasPorts(r.ip_protocol)) {
        if (!r.ports) {
          error(path + ".from_port", r.location,
                protocolName(r.ip_protocol) + " rule needs from_port and to_port",
                "e.g. from_port = 443, to_port = 443; 0 and 65535 for all ports");
        } else {
          checkPortRange(*r.ports, path + ".from_port", path + ".to_port", r.location);
        }
        if (r.icmp) {
          error(path + ".from_port", r.location,
                "ICMP type/code on a " + protocolName(r.ip_protocol) + " rule", "remove it");
        }
      } else if (isIcmp(r.ip_protocol)) {
        if (r.ports) {
          error(path + ".from_port", r.location,
                "port range on an " + protocolName(r.ip_protocol) + " rule",
                "for ICMP, from_port is the type and to_port the code");
        }
        if (r.icmp) {
          checkIcmp(*r.icmp, path + ".from_port", path + ".to_port", r.location);
        }
        if (const auto* c = std::get_if<Cidr>(&r.peer)) {
          const bool v6 = c->family() == IpFamily::kV6;
          if (v6 != (r.ip_protocol == model::kProtoIcmpv6)) {
            error(path + (v6 ? ".cidr_ipv6" : ".cidr_ipv4"), r.location,
                  protocolName(r.ip_protocol) + " with an " + (v6 ? "IPv6" : "IPv4") + " peer",
                  v6 ? "use icmpv6 for IPv6 peers" : "use icmp for IPv4 peers");
          }
        }
      } else if (r.ports || r.icmp) {
        error(path + ".from_port", r.location,
              "ports on " + protocolName(r.ip_protocol) + ", which has no ports",
              "remove from_port/to_port (or set both to -1); ports apply to tcp and udp only");
      }
      checkPeer(r.peer, path, r.location);
      if (r.description.size() > 255) {
        error(path + ".description", r.location, "description longer than 255 characters",
              "shorten it (AWS limit)");
      }
      for (size_t k = 0; k < j; ++k) {
        const auto& o = rules[k];
        if (o.ip_protocol == r.ip_protocol && o.ports == r.ports && o.icmp == r.icmp &&
            o.peer == r.peer && !skipped(at(prefix, k))) {
          error(path, r.location, "duplicate of rule " + at(prefix, k),
                "AWS rejects duplicate rules; remove one");
          break;
        }
      }
    }
    const RuleCount n = countRules(rules);
    const int limit = p_.quotas.rules_per_security_group;
    if (!rules.empty() && std::max(n.v4, n.v6) > limit) {
      const bool v4 = n.v4 >= n.v6;
      quotaError(prefix, rules.back().location,
                 std::string(v4 ? "IPv4" : "IPv6") + " rules in this direction", v4 ? n.v4 : n.v6,
                 "rules_per_security_group", limit, "a prefix list counts as its max_entries; ");
    }
  }

  // False (reported) when a protocol number is outside -1..255.
  bool protocolInRange(int protocol, const std::string& path, const SourceLocation& loc) {
    if (protocol >= -1 && protocol <= 255) {
      return true;
    }
    error(path, loc, "protocol " + std::to_string(protocol) + " is out of range",
          "use tcp, udp, icmp, icmpv6, all (-1) or a number 0-255");
    return false;
  }

  // A number in 1..32766, unique in `scope`; `owner` names the object it belongs to.
  void checkNumber(const NumberRule& rule, int number, const std::string& path,
                   const SourceLocation& loc, NumberScope& scope, const std::string& owner) {
    const std::string text = std::string(rule.what) + " " + std::to_string(number);
    if (number < 1 || number > 32766) {
      error(path, loc, text + " is outside 1..32766", rule.range_hint);
      return;
    }
    if (skipped(path)) {
      return;
    }
    auto [it, inserted] = scope.seen.emplace(number, owner);
    if (!inserted) {
      error(path, loc, scope.qualifier + text + " is already used by " + it->second,
            rule.unique_hint);
    }
  }

  void checkPortRange(const model::PortRange& r, const std::string& from_path,
                      const std::string& to_path, const SourceLocation& loc) {
    bool ok = true;
    if (r.from < 0 || r.from > 65535) {
      error(from_path, loc, "port " + std::to_string(r.from) + " is out of range",
            "ports are 0-65535");
      ok = false;
    }
    if (r.to < 0 || r.to > 65535) {
      error(to_path, loc, "port " + std::to_string(r.to) + " is out of range", "ports are 0-65535");
      ok = false;
    }
    if (ok && r.from > r.to) {
      error(from_path, loc,
            "from port " + std::to_string(r.from) + " is greater than to port " +
                std::to_string(r.to),
            "swap them");
    }
  }

  void checkIcmp(const model::IcmpTypeCode& t, const std::string& type_path,
                 const std::string& code_path, const SourceLocation& loc) {
    if (t.type < -1 || t.type > 255) {
      error(type_path, loc, "ICMP type " + std::to_string(t.type) + " is out of range -1..255",
            "-1 means all types");
    }
    if (t.code < -1 || t.code > 255) {
      error(code_path, loc, "ICMP code " + std::to_string(t.code) + " is out of range -1..255",
            "-1 means all codes");
    }
    if (t.type == -1 && t.code != -1) {
      error(code_path, loc, "ICMP code " + std::to_string(t.code) + " given for all types",
            "with type -1 the code must be -1 too");
    }
  }

  void checkPeer(const model::Peer& peer, const std::string& path, const SourceLocation& loc) {
    if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
      if (!groupExists(g->group_id)) {
        error(path + ".referenced_group_id", loc,
              "security group '" + g->group_id + "' does not exist",
              "define it under [[security_groups]]");
      }
    } else if (const auto* pl = std::get_if<model::PrefixListRef>(&peer)) {
      if (prefix_lists_.count(pl->prefix_list_id) == 0) {
        error(path + ".prefix_list_id", loc,
              "prefix list '" + pl->prefix_list_id + "' does not exist",
              "define it under [[prefix_lists]]");
      }
    }
  }

  // Network ACLs ---------------------------------------------------------------------------------
  void checkNetworkAcls() {
    checkIds(p_.network_acls, "network_acls", "network ACL");
    const int64_t count =
        std::ssize(p_.network_acls) + (default_acls_.empty() ? 1 : 0);  // + the implicit default
    if (count > p_.quotas.network_acls_per_vpc) {
      quotaError(at("network_acls", p_.network_acls.size() - 1), p_.network_acls.back().location,
                 "number of network ACLs (with the default)", count, "network_acls_per_vpc",
                 p_.quotas.network_acls_per_vpc);
    }
    if (default_acls_.size() > 1) {
      const size_t second = default_acls_[1];
      error(at("network_acls", second) + ".is_default", p_.network_acls[second].location,
            "a second default network ACL (first: '" + p_.network_acls[default_acls_[0]].id + "')",
            "only one network ACL may have is_default = true");
    }
    for (size_t i = 0; i < p_.network_acls.size(); ++i) {
      const auto& acl = p_.network_acls[i];
      const std::string path = at("network_acls", i);
      if (!acl.is_default && acl.id == model::kDefaultNetworkAclId) {
        error(path + ".id", acl.location,
              "id '" + acl.id + "' is reserved for the VPC's implicit default network ACL",
              "set is_default = true to override the default NACL, or choose another id");
      }
      NumberScope numbers[2] = {{"inbound ", {}}, {"outbound ", {}}};
      int64_t per_direction[2] = {0, 0};
      for (size_t j = 0; j < acl.entries.size(); ++j) {
        const auto& e = acl.entries[j];
        const std::string epath = at(path + ".entries", j);
        per_direction[e.egress ? 1 : 0] += 1;
        checkNumber(kNaclRuleNumber, e.rule_number, epath + ".rule_number", e.location,
                    numbers[e.egress ? 1 : 0], epath);
        const std::string ppath = epath + ".protocol";
        if (skipped(ppath)) {
          continue;
        }
        if (!protocolInRange(e.protocol, ppath, e.location)) {
          continue;
        }
        // icmp is IPv4's and icmpv6 IPv6's: the other pairing would match nothing, and a deny
        // entry that silently matches nothing lets a later allow decide.
        if ((e.protocol == model::kProtoIcmp && e.cidr.family() == IpFamily::kV6) ||
            (e.protocol == model::kProtoIcmpv6 && e.cidr.family() == IpFamily::kV4)) {
          error(ppath, e.location,
                protocolName(e.protocol) + " with an " +
                    (e.cidr.family() == IpFamily::kV6 ? "IPv6" : "IPv4") + " block matches nothing",
                e.protocol == model::kProtoIcmp ? "use icmpv6 for IPv6 blocks"
                                                : "use icmp for IPv4 blocks");
        }
        if (e.port_range) {
          if (!hasPorts(e.protocol)) {
            error(epath + ".port_range", e.location,
                  "port_range on " + protocolName(e.protocol) + ", which has no ports",
                  "port_range applies to tcp and udp only");
          } else {
            checkPortRange(*e.port_range, epath + ".port_range.from", epath + ".port_range.to",
                           e.location);
          }
        }
        if (e.icmp_type_code) {
          if (!isIcmp(e.protocol)) {
            error(epath + ".icmp_type_code", e.location,
                  "icmp_type_code on " + protocolName(e.protocol),
                  "icmp_type_code applies to icmp and icmpv6 only");
          } else {
            checkIcmp(*e.icmp_type_code, epath + ".icmp_type_code.type",
                      epath + ".icmp_type_code.code", e.location);
          }
        }
      }
      for (int d = 0; d < 2; ++d) {
        if (per_direction[d] > p_.quotas.rules_per_network_acl) {
          quotaError(path + ".entries", acl.location,
                     std::string(d == 1 ? "outbound" : "inbound") + " entries", per_direction[d],
                     "rules_per_network_acl", p_.quotas.rules_per_network_acl);
        }
      }
    }
  }

  // Network interfaces ---------------------------------------------------------------------------
  // `path()` names the address for a diagnostic: built only for one (a large policy has tens of
  // thousands of addresses, and most loads find no problem).
  template <typename PathFn>
  void checkAddress(const IpAddress& a, const model::Subnet* subnet, const PathFn& path,
                    const model::NetworkInterface& eni) {
    const bool v4 = a.isV4();
    const std::optional<Cidr> block =
        subnet == nullptr
            ? std::nullopt
            : (v4 ? std::optional<Cidr>(subnet->cidr_block) : subnet->ipv6_cidr_block);
    if (subnet == nullptr) {
      return;  // the dangling subnet is reported on subnet_id
    }
    if (!skip_.empty() && skipped(at("subnets", subnets_.at(subnet->id)) +
                                  (v4 ? ".cidr_block" : ".ipv6_cidr_block"))) {
      return;
    }
    if (!block) {
      error(path(), eni.location,
            "IPv6 address " + a.toString() + " but subnet '" + subnet->id +
                "' has no ipv6_cidr_block",
            "give the subnet an ipv6_cidr_block");
      return;
    }
    if (block->family() != a.family) {
      return;  // reported on the subnet
    }
    // IPv4 by integer: tens of thousands of addresses per load at 100k flows.
    const uint32_t v4_mask = !v4 || block->prefix_len <= 0 ? 0
                             : block->prefix_len >= 32
                                 ? ~uint32_t{0}
                                 : ~uint32_t{0} << (32 - block->prefix_len);
    const uint32_t v4_net = v4 ? block->address.v4Value() : 0;
    const uint32_t v4_value = v4 ? a.v4Value() : 0;
    if (v4 ? (v4_value & v4_mask) != v4_net : !block->contains(a)) {
      error(path(), eni.location,
            "address " + a.toString() + " is outside subnet '" + subnet->id + "' (" +
                block->toString() + ")",
            "choose an address inside the subnet");
      return;
    }
    // (`a` is inside.)
    const bool reserved =
        v4 ? v4_value - v4_net < 4
           : a == block->first() || a == block->first().plus(1) || a == block->first().plus(2) ||
                 a == block->first().plus(3);
    if (reserved) {
      error(path(), eni.location,
            "address " + a.toString() + " is reserved in subnet '" + subnet->id +
                "' (AWS reserves the first four addresses" + (v4 ? " and the last" : "") + ")",
            "use " + block->first().plus(4).toString() + " or above");
      return;
    }
    if (v4 && v4_value == (v4_net | ~v4_mask)) {
      error(path(), eni.location,
            "address " + a.toString() + " is the broadcast address of subnet '" + subnet->id + "'",
            "AWS reserves the last address of each subnet");
    }
  }

  void checkInterfaces() {
    checkIds(p_.network_interfaces, "network_interfaces", "network interface");
    // Tens of thousands of entries at 100k flows, built and dropped on every load: from one pool
    // (a node allocation each from the heap of a daemon holding 100k flows cost more than the
    // checks themselves), hashed (only "seen before?" is asked) and sized once.
    std::pmr::monotonic_buffer_resource pool;
    std::pmr::unordered_map<uint64_t, const std::string*> macs(&pool);  // mac (48 bits) -> eni id
    std::pmr::unordered_map<IpAddress, const std::string*, AddressHash> addresses(&pool);
    size_t n_addresses = 0;
    for (const auto& eni : p_.network_interfaces) {
      n_addresses += eni.private_ip_addresses.size() + eni.ipv6_addresses.size();
    }
    macs.reserve(p_.network_interfaces.size());
    addresses.reserve(n_addresses);
    for (size_t i = 0; i < p_.network_interfaces.size(); ++i) {
      const auto& eni = p_.network_interfaces[i];
      // Built only for a message or a skip check (most loads have neither).
      const auto path = [&] { return at("network_interfaces", i); };

      const model::Subnet* subnet = nullptr;
      if (auto it = subnets_.find(eni.subnet_id); it != subnets_.end()) {
        subnet = &p_.subnets[it->second];
      } else if (eni.subnet_id.empty()) {
        error(path() + ".subnet_id", eni.location, "interface has no subnet",
              "set subnet_id to the id of a subnet");
      } else {
        error(path() + ".subnet_id", eni.location, "subnet '" + eni.subnet_id + "' does not exist",
              "define it under [[subnets]]");
      }

      if (skip_.empty() || !skipped(path() + ".mac_address")) {
        const auto mac_path = [&] { return path() + ".mac_address"; };
        // The usual spelling (canonical already) is read without allocating; any other goes
        // through canonicalMac, which also says what is wrong with it.
        std::optional<std::string> respelled;
        std::optional<uint64_t> value = canonicalMacValue(eni.mac_address);
        if (!value) {
          auto mac = canonicalMac(eni.mac_address);
          if (!mac) {
            error(mac_path(), eni.location, mac.error().message, "write it as 02:00:00:00:01:0a");
          } else {
            value = canonicalMacValue(*mac);  // canonical now: always read
            respelled = std::move(*mac);
          }
        }
        if (value) {
          const std::string_view mac = respelled ? std::string_view(*respelled)
                                                 : std::string_view(eni.mac_address);
          // The I/G bit: a multicast MAC cannot be a port's own address.
          if (((*value >> 40) & 1) != 0) {
            error(mac_path(), eni.location, "'" + std::string(mac) + "' is a multicast MAC address",
                  "the lowest bit of the first octet must be 0; e.g. 02:...");
          }
          auto [it, inserted] = macs.emplace(*value, &eni.id);
          if (!inserted) {
            error(mac_path(), eni.location,
                  "MAC address " + std::string(mac) + " is already used by interface '" +
                      *it->second + "'",
                  "every interface needs its own MAC");
          }
        }
      }

      if (eni.private_ip_addresses.empty() && !skipped(path() + ".private_ip_addresses")) {
        error(path() + ".private_ip_addresses", eni.location, "interface has no private IPv4 address",
              "the first address is the primary one");
      }
      const auto checkList = [&](const std::vector<IpAddress>& list, const std::string& field,
                                 IpFamily family) {
        for (size_t j = 0; j < list.size(); ++j) {
          const auto apath = [&] { return at(path() + "." + field, j); };
          if (!skip_.empty() && skipped(apath())) {
            continue;
          }
          const IpAddress& a = list[j];
          if (a.family != family) {
            error(apath(), eni.location,
                  "'" + a.toString() + "' is not an " +
                      (family == IpFamily::kV4 ? "IPv4" : "IPv6") + " address",
                  family == IpFamily::kV4 ? "IPv6 addresses go in ipv6_addresses"
                                          : "IPv4 addresses go in private_ip_addresses");
            continue;
          }
          auto [it, inserted] = addresses.emplace(a, &eni.id);
          if (!inserted) {
            error(apath(), eni.location,
                  "address " + a.toString() + " is already used by interface '" + *it->second + "'",
                  "addresses are unique in a VPC");
            continue;
          }
          checkAddress(a, subnet, apath, eni);
        }
      };
      checkList(eni.private_ip_addresses, "private_ip_addresses", IpFamily::kV4);
      checkList(eni.ipv6_addresses, "ipv6_addresses", IpFamily::kV6);

      const auto gpath = [&] { return path() + ".security_group_ids"; };
      if (std::ssize(eni.security_group_ids) > p_.quotas.security_groups_per_interface) {
        quotaError(gpath(), eni.location, "number of security groups",
                   std::ssize(eni.security_group_ids), "security_groups_per_interface",
                   p_.quotas.security_groups_per_interface);
      }
      RuleCount in;
      RuleCount out;
      for (size_t j = 0; j < eni.security_group_ids.size(); ++j) {
        const std::string& id = eni.security_group_ids[j];
        if (!groupExists(id)) {
          error(at(gpath(), j), eni.location, "security group '" + id + "' does not exist",
                "define it under [[security_groups]]");
          continue;
        }
        if (std::find(eni.security_group_ids.begin(),
                      eni.security_group_ids.begin() + static_cast<std::ptrdiff_t>(j),
                      id) != eni.security_group_ids.begin() + static_cast<std::ptrdiff_t>(j)) {
          error(at(gpath(), j), eni.location, "security group '" + id + "' is listed twice",
                "remove the duplicate");
          continue;
        }
        addCount(in, out, id);
      }
      if (eni.security_group_ids.empty()) {
        addCount(in, out,
                 default_groups_.empty() ? std::string(model::kDefaultSecurityGroupId)
                                         : p_.security_groups[default_groups_[0]].id);
      }
      const int64_t most = std::max({in.v4, in.v6, out.v4, out.v6});
      if (most > p_.quotas.rules_per_interface) {
        quotaError(gpath(), eni.location, "rules of the interface's groups in one direction", most,
                   "rules_per_interface", p_.quotas.rules_per_interface,
                   "a prefix list counts as its max_entries; ");
      }

      const auto& ct = eni.connection_tracking;
      const auto ct_path = [&](const char* field) {
        return path() + ".connection_tracking." + field;
      };
      checkTimeout(ct.tcp_established_timeout, ct_path, "tcp_established_timeout", 60, 432000,
                   eni);
      checkTimeout(ct.udp_timeout, ct_path, "udp_timeout", 30, 60, eni);
      checkTimeout(ct.udp_stream_timeout, ct_path, "udp_stream_timeout", 60, 180, eni);
    }
  }

  void addCount(RuleCount& in, RuleCount& out, const std::string& group_id) {
    auto it = groups_.find(group_id);
    if (it == groups_.end()) {
      // The implicit default group: one self-reference in, all v4 + all v6 out.
      in.v4 += 1;
      in.v6 += 1;
      out.v4 += 1;
      out.v6 += 1;
      return;
    }
    // Counted once per group, not once per member.
    if (group_counts_.empty()) {
      group_counts_.resize(p_.security_groups.size());
    }
    auto& counted = group_counts_[it->second];
    if (!counted) {
      const auto& g = p_.security_groups[it->second];
      counted.emplace(countRules(g.ingress), countRules(g.egress));
    }
    const auto& [gi, ge] = *counted;
    in.v4 += gi.v4;
    in.v6 += gi.v6;
    out.v4 += ge.v4;
    out.v6 += ge.v6;
  }

  template <typename PathFn>
  void checkTimeout(const std::optional<int>& value, const PathFn& path, const char* field, int lo,
                    int hi, const model::NetworkInterface& eni) {
    if (value && (*value < lo || *value > hi)) {
      error(path(field), eni.location,
            "timeout " + std::to_string(*value) + " s is outside " + std::to_string(lo) + ".." +
                std::to_string(hi) + " s",
            "AWS accepts " + std::to_string(lo) + " to " + std::to_string(hi) + " seconds");
    }
  }

  // Flow logs -----------------------------------------------------------------------------------
  void checkFlowLogs() {
    checkIds(p_.flow_logs, "flow_logs", "flow log", "fl-");
    for (size_t i = 0; i < p_.flow_logs.size(); ++i) {
      const auto& fl = p_.flow_logs[i];
      const std::string path = at("flow_logs", i);
      // A flow log covers every interface inside its resource, so two may cover the same
      // interface (AWS allows it; each writes its own records).
      const std::string rpath = path + ".resource_id";
      if (fl.resource_id.empty()) {
        error(rpath, fl.location, "flow log has an empty resource_id",
              "name the VPC (" + p_.vpc.id + "), a subnet or a network interface");
      } else if (fl.resource_id != p_.vpc.id && !subnets_.contains(fl.resource_id) &&
                 interfaces_.count(fl.resource_id) == 0) {
        error(rpath, fl.location,
              "resource '" + fl.resource_id +
                  "' is not the VPC, a subnet or a network interface of this configuration",
              "a flow log covers the VPC (" + p_.vpc.id +
                  "), a [[subnets]] id or a [[network_interfaces]] id");
      }
      checkLogDestination(fl, path + ".log_destination");
      const std::string fpath = path + ".log_format";
      if (!skipped(fpath)) {
        if (auto parsed = flowlog::parseFormat(fl.log_format); !parsed) {
          const size_t at_offset = std::min(parsed.error().offset, fl.log_format.size());
          std::string text = fl.log_format.substr(at_offset, 40);
          text = text.substr(0, text.find_first_of(" \t"));
          error(fpath, fl.location,
                parsed.error().message + " (at character " + std::to_string(at_offset + 1) + ": '" +
                    text + "')",
                "write ${field} names separated by spaces, e.g. ${version} ${srcaddr} "
                "${dstaddr} ${action}; leave log_format out for the default (version 2) format");
        }
      }
      if (fl.max_aggregation_interval != 60 && fl.max_aggregation_interval != 600) {
        error(path + ".max_aggregation_interval", fl.location,
              "max_aggregation_interval must be 60 or 600 seconds, not " +
                  std::to_string(fl.max_aggregation_interval),
              "AWS offers 60 (one minute) or 600 (ten minutes, the default)");
      }
      if (fl.ipfix_collector) {
        checkCollector(*fl.ipfix_collector, path + ".ipfix_collector", fl.location);
      }
    }
  }

  void checkLogDestination(const model::FlowLog& fl, const std::string& path) {
    if (skipped(path)) {
      return;
    }
    constexpr std::string_view kFile = "file://";
    const std::string& dest = fl.log_destination;
    const size_t scheme_end = dest.find("://");
    if (scheme_end == std::string::npos || scheme_end == 0) {
      error(path, fl.location, "log_destination '" + dest + "' is not a file:// URL",
            "write file:// and an absolute directory, e.g. file:///var/log/vpcguard/flowlogs");
      return;
    }
    if (!dest.starts_with(kFile)) {
      error(path, fl.location,
            "log_destination scheme '" + dest.substr(0, scheme_end) +
                "' is not supported yet: only file:// is (records in a local directory)",
            "write e.g. file:///var/log/vpcguard/flowlogs; a sink for another scheme (s3://, "
            "cloud-watch-logs, firehose) is a new implementation of flowlogs/sink.h");
      return;
    }
    const std::string dir = dest.substr(kFile.size());
    if (!dir.starts_with("/")) {
      error(path, fl.location, "log_destination '" + dest + "' does not name an absolute directory",
            "a file URL has three slashes before an absolute path: "
            "file:///var/log/vpcguard/flowlogs");
      return;
    }
    if (std::any_of(dir.begin(), dir.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      error(path, fl.location, "log_destination contains control characters",
            "write a plain directory path, e.g. file:///var/log/vpcguard/flowlogs");
    }
  }

  // "host:port": host an IPv4 literal, a hostname, or an IPv6 literal in brackets ("[::1]:4739").
  void checkCollector(const std::string& text, const std::string& path,
                      const SourceLocation& fallback) {
    if (skipped(path)) {
      return;
    }
    constexpr const char* kHint =
        "write host:port, e.g. 192.0.2.10:4739, collector.lab:4739 or [2001:db8::10]:4739";
    std::string host;
    std::string port;
    if (text.starts_with("[")) {
      const size_t close = text.find(']');
      if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
        error(path, fallback, "ipfix_collector '" + text + "' is not [IPv6 address]:port", kHint);
        return;
      }
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
      auto a = IpAddress::parse(host);
      if (!a || a->family != IpFamily::kV6) {
        error(path, fallback, "ipfix_collector host '" + host + "' is not an IPv6 address", kHint);
        return;
      }
    } else {
      const size_t colon = text.rfind(':');
      if (colon == std::string::npos) {
        error(path, fallback, "ipfix_collector '" + text + "' has no port", kHint);
        return;
      }
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (host.find(':') != std::string::npos) {
        error(path, fallback, "ipfix_collector '" + text + "': an IPv6 address must be in brackets",
              "write [" + host + "]:" + port);
        return;
      }
      if (!validHost(host)) {
        error(path, fallback,
              "ipfix_collector host '" + host + "' is neither an IPv4 address nor a hostname",
              kHint);
        return;
      }
    }
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      error(path, fallback, "ipfix_collector port '" + port + "' is not a port 1..65535",
            "IPFIX collectors usually listen on 4739 (UDP)");
    }
  }

  // An IPv4 literal, or a DNS hostname (RFC 1123: dot-separated labels of letters, digits and
  // inner hyphens, each 1..63 characters, 253 in all). All digits and dots must be IPv4.
  [[nodiscard]] static bool validHost(const std::string& host) {
    if (host.empty() || host.size() > 253) {
      return false;
    }
    if (std::all_of(host.begin(), host.end(),
                    [](char c) { return c == '.' || (c >= '0' && c <= '9'); })) {
      auto a = IpAddress::parse(host);
      return a && a->family == IpFamily::kV4;
    }
    size_t start = 0;
    while (start <= host.size()) {
      size_t dot = host.find('.', start);
      if (dot == std::string::npos) {
        dot = host.size();
      }
      const std::string_view label(host.data() + start, dot - start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
          !std::all_of(label.begin(), label.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-';
          })) {
        return false;
      }
      start = dot + 1;
    }
    return true;
  }

  // Traffic mirroring --------------------------------------------------------------------------
  [[nodiscard]] bool interfaceExists(const std::string& id) const {
    return interfaces_.count(id) != 0;
  }

  [[nodiscard]] const model::TrafficMirrorTarget* mirrorTarget(const std::string& id) const {
    auto it = mirror_targets_.find(id);
    return it == mirror_targets_.end() ? nullptr : &p_.traffic_mirror_targets[it->second];
  }

  void checkMirrorTargets() {
    checkIds(p_.traffic_mirror_targets, "traffic_mirror_targets", "traffic mirror target", "tmt-");
    for (size_t i = 0; i < p_.traffic_mirror_targets.size(); ++i) {
      const auto& t = p_.traffic_mirror_targets[i];
      const std::string path = at("traffic_mirror_targets", i);
      if (t.network_interface_id.has_value() == t.vxlan_remote_ip.has_value()) {
        const bool both = t.network_interface_id.has_value();
        error(both ? path + ".vxlan_remote_ip" : path, t.location,
              std::string("traffic mirror target has ") +
                  (both ? "both network_interface_id and vxlan_remote_ip"
                        : "neither network_interface_id nor vxlan_remote_ip"),
              "give exactly one: network_interface_id (a local interface receives the copies) "
              "or vxlan_remote_ip (the IPv4 address of a VXLAN appliance, which is what an AWS "
              "Network Load Balancer or Gateway Load Balancer endpoint target becomes here)");
        continue;
      }
      if (t.network_interface_id) {
        // Copies go to the interface's primary private IPv4 address, which checkInterfaces()
        // requires every interface to have.
        checkRef(interfaceExists(*t.network_interface_id), *t.network_interface_id,
                 path + ".network_interface_id", t.location, "network interface",
                 "network_interfaces");
      } else if (!t.vxlan_remote_ip->isV4()) {
        error(path + ".vxlan_remote_ip", t.location,
              "vxlan_remote_ip '" + t.vxlan_remote_ip->toString() +
                  "' is an IPv6 address: an IPv6 underlay is not supported here",
              "give the appliance's IPv4 address; vpcguard's VXLAN tunnel port sends over IPv4 "
              "only (the mirrored packets themselves may be IPv6)");
      } else {
        checkRemoteIp(*t.vxlan_remote_ip, path + ".vxlan_remote_ip", t.location);
      }
    }
    checkLocalTargetCount();
  }

  // The VXLAN appliance's address is where copies are sent as unicast IPv4: an address that
  // is not one (unspecified, loopback, multicast, broadcast) or that is routed elsewhere
  // (link-local, see kMirrorHostSubnet) cannot receive them.
  void checkRemoteIp(const IpAddress& ip, const std::string& path, const SourceLocation& loc) {
    const uint32_t v = ip.v4Value();
    const std::string text = "vxlan_remote_ip '" + ip.toString() + "'";
    constexpr const char* kHint = "give the unicast IPv4 address of the VXLAN appliance";
    if ((v >> 24) == 0) {
      error(path, loc, text + " is in 0.0.0.0/8 (\"this network\"), not a host to send to", kHint);
    } else if ((v >> 24) == 127) {
      error(path, loc,
            text + " is a loopback address (127.0.0.0/8): copies would never leave this host",
            kHint);
    } else if (v == 0xffffffffu) {
      error(path, loc, text + " is the broadcast address 255.255.255.255", kHint);
    } else if ((v >> 28) == 0xe) {
      error(path, loc, text + " is a multicast address (224.0.0.0/4): copies go to one appliance",
            kHint);
    } else if ((v >> 16) == 0xa9fe) {
      error(path, loc,
            text +
                " is link-local (169.254.0.0/16): link-local is where vpcguardd routes "
                "local-target copies (" +
                pipeline::kMirrorHostSubnet + ")",
            std::string(kHint) + "; for a VM on this bridge, use network_interface_id instead");
    }
  }

  // Each local target address a session uses gets its own next hop in kMirrorHostSubnet
  // (mirror/host_plan.h): the subnet minus its network address, kMirrorHostAddress and its
  // broadcast address. The error goes to the first target over the limit, in config order.
  void checkLocalTargetCount() {
    const auto subnet = Cidr::parse(pipeline::kMirrorHostSubnet);
    if (!subnet) {
      return;
    }
    const int64_t room = (int64_t{1} << (32 - subnet->prefix_len)) - 3;
    std::set<std::string> used;
    for (const auto& s : p_.traffic_mirror_sessions) {
      used.insert(s.traffic_mirror_target_id);
    }
    std::set<IpAddress> addresses;
    for (size_t i = 0; i < p_.traffic_mirror_targets.size(); ++i) {
      const auto& t = p_.traffic_mirror_targets[i];
      if (!t.network_interface_id || t.vxlan_remote_ip || used.count(t.id) == 0) {
        continue;
      }
      const auto address = mirrorTargetAddress(p_, t);
      if (!address || !addresses.insert(*address).second ||
          static_cast<int64_t>(addresses.size()) <= room) {
        continue;
      }
      error(at("traffic_mirror_targets", i) + ".network_interface_id", t.location,
            "traffic mirror target '" + t.id + "' (" + address->toString() +
                ") brings the local target addresses sessions use to " +
                std::to_string(addresses.size()) + ", more than the " + std::to_string(room) +
                " possible: vpcguardd routes the copies to each one through its own next hop in " +
                pipeline::kMirrorHostSubnet + " (less its network address, " +
                pipeline::kMirrorHostAddress + " and broadcast)",
            "send the copies of more interfaces to fewer targets, or to a VXLAN appliance "
            "(vxlan_remote_ip)");
      return;
    }
  }

  void checkMirrorFilters() {
    checkIds(p_.traffic_mirror_filters, "traffic_mirror_filters", "traffic mirror filter", "tmf-");
    for (size_t i = 0; i < p_.traffic_mirror_filters.size(); ++i) {
      const auto& f = p_.traffic_mirror_filters[i];
      const std::string path = at("traffic_mirror_filters", i);
      checkMirrorRules(f.ingress_rules, path + ".ingress_rules", "ingress");
      checkMirrorRules(f.egress_rules, path + ".egress_rules", "egress");
      for (size_t k = 0; k < f.network_services.size(); ++k) {
        if (f.network_services[k] != "amazon-dns") {
          error(at(path + ".network_services", k), f.location,
                "network service '" + f.network_services[k] + "' is not amazon-dns",
                "AWS's only network service is \"amazon-dns\" (accepted here, without effect: "
                "there is no Amazon DNS resolver behind this switch)");
        }
      }
    }
  }

  // One direction of a filter; `direction` is "ingress" or "egress".
  void checkMirrorRules(const std::vector<model::TrafficMirrorFilterRule>& rules,
                        const std::string& prefix, const std::string& direction) {
    NumberScope numbers{direction + " ", {}};
    for (size_t j = 0; j < rules.size(); ++j) {
      const auto& r = rules[j];
      const std::string path = at(prefix, j);
      checkNumber(kMirrorRuleNumber, r.rule_number, path + ".rule_number", r.location, numbers,
                  path);
      checkMirrorRuleFamilies(r, path);
      const std::string ppath = path + ".protocol";
      if (!skipped(ppath) && protocolInRange(r.protocol, ppath, r.location)) {
        checkMirrorPorts(r.source_port_range, r.protocol, path, "source_port_range", r.location);
        checkMirrorPorts(r.destination_port_range, r.protocol, path, "destination_port_range",
                         r.location);
      }
    }
    const int limit = p_.quotas.traffic_mirror_filter_rules;
    const auto first_over = static_cast<size_t>(std::max(limit, 0));
    if (rules.size() > first_over) {
      quotaError(at(prefix, first_over), rules[first_over].location, direction + " rules",
                 std::ssize(rules), "traffic_mirror_filter_rules", limit);
    }
  }

  void checkMirrorRuleFamilies(const model::TrafficMirrorFilterRule& r, const std::string& path) {
    const std::string source = path + ".source_cidr_block";
    const std::string destination = path + ".destination_cidr_block";
    if (skipped(source) || skipped(destination) ||
        r.source_cidr_block.family() == r.destination_cidr_block.family()) {
      return;
    }
    const auto family = [](const Cidr& c) { return c.family() == IpFamily::kV4 ? "IPv4" : "IPv6"; };
    error(destination, r.location,
          "destination_cidr_block '" + r.destination_cidr_block.toString() + "' is " +
              family(r.destination_cidr_block) + " but source_cidr_block '" +
              r.source_cidr_block.toString() + "' is " + family(r.source_cidr_block),
          "both blocks of a rule are of one address family, as in AWS: write one rule per "
          "family (0.0.0.0/0 and ::/0 for all addresses)");
  }

  void checkMirrorPorts(const std::optional<model::PortRange>& range, int protocol,
                        const std::string& rule_path, const std::string& field,
                        const SourceLocation& loc) {
    const std::string path = rule_path + "." + field;
    if (!range || skipped(path)) {
      return;
    }
    if (!hasPorts(protocol)) {
      error(path, loc,
            field + " is given for protocol " + protocolNumber(protocol) +
                ": port ranges apply to tcp (6) and udp (17) only",
            "AWS refuses port ranges on other protocols: remove it, or set protocol = 6 or 17");
      return;
    }
    checkPortRange(*range, path + ".from_port", path + ".to_port", loc);
  }

  void checkMirrorSessions() {
    checkIds(p_.traffic_mirror_sessions, "traffic_mirror_sessions", "traffic mirror session",
             "tms-");
    const auto over_quota = sessionsOverQuota();
    const auto targets = targetInterfaces();
    std::map<std::string, NumberScope> numbers;  // per source interface
    for (size_t i = 0; i < p_.traffic_mirror_sessions.size(); ++i) {
      const auto& s = p_.traffic_mirror_sessions[i];
      const std::string path = at("traffic_mirror_sessions", i);
      const std::string source = path + ".network_interface_id";
      const model::TrafficMirrorTarget* target = mirrorTarget(s.traffic_mirror_target_id);
      checkRef(interfaceExists(s.network_interface_id), s.network_interface_id, source, s.location,
               "network interface", "network_interfaces");
      checkRef(target != nullptr, s.traffic_mirror_target_id, path + ".traffic_mirror_target_id",
               s.location, "traffic mirror target", "traffic_mirror_targets");
      checkRef(mirror_filters_.count(s.traffic_mirror_filter_id) != 0, s.traffic_mirror_filter_id,
               path + ".traffic_mirror_filter_id", s.location, "traffic mirror filter",
               "traffic_mirror_filters");
      checkNumber(kSessionNumber, s.session_number, path + ".session_number", s.location,
                  numbers[s.network_interface_id],
                  path + " ('" + s.id + "') on interface '" + s.network_interface_id + "'");
      if (auto it = over_quota.find(i); it != over_quota.end()) {
        quotaError(source, s.location,
                   "traffic mirror sessions of interface '" + s.network_interface_id + "'",
                   it->second, "traffic_mirror_sessions_per_interface",
                   p_.quotas.traffic_mirror_sessions_per_interface);
      }
      checkPacketLength(s.packet_length, path + ".packet_length", s.location);
      if (s.virtual_network_id && *s.virtual_network_id > kMaxVirtualNetworkId) {
        error(path + ".virtual_network_id", s.location,
              "virtual_network_id " + std::to_string(*s.virtual_network_id) +
                  " is outside 0..16777215",
              "a VXLAN network identifier has 24 bits; leave it out to have a unique one chosen");
      }
      if (interfaceExists(s.network_interface_id)) {
        checkNotATarget(s, target, targets, source);
      }
    }
  }

  // For each source interface with more sessions than the quota: the index of its first session
  // over the quota (where the error goes) -> its number of sessions.
  [[nodiscard]] std::map<size_t, int64_t> sessionsOverQuota() const {
    const auto limit =
        static_cast<int64_t>(std::max(p_.quotas.traffic_mirror_sessions_per_interface, 0));
    std::map<std::string, std::vector<size_t>> by_interface;
    for (size_t i = 0; i < p_.traffic_mirror_sessions.size(); ++i) {
      by_interface[p_.traffic_mirror_sessions[i].network_interface_id].push_back(i);
    }
    std::map<size_t, int64_t> out;
    for (const auto& [eni, sessions] : by_interface) {
      if (std::ssize(sessions) > limit) {
        out.emplace(sessions[static_cast<size_t>(limit)], std::ssize(sessions));
      }
    }
    return out;
  }

  // Interfaces that sessions send copies to -> one such session's id.
  [[nodiscard]] std::map<std::string, std::string> targetInterfaces() const {
    std::map<std::string, std::string> out;
    for (const auto& s : p_.traffic_mirror_sessions) {
      const model::TrafficMirrorTarget* t = mirrorTarget(s.traffic_mirror_target_id);
      if (t != nullptr && t->network_interface_id) {
        out.emplace(*t->network_interface_id, s.id);
      }
    }
    return out;
  }

  // AWS: an interface that is a mirror target cannot be a mirror source (here the copies it
  // receives would be mirrored again).
  void checkNotATarget(const model::TrafficMirrorSession& s, const model::TrafficMirrorTarget* own,
                       const std::map<std::string, std::string>& targets, const std::string& path) {
    const std::string& eni = s.network_interface_id;
    if (own != nullptr && own->network_interface_id == eni) {
      error(path, s.location,
            "interface '" + eni + "' is the target of its own session (through target '" + own->id +
                "')",
            "a session copies an interface's traffic to another interface or to a VXLAN "
            "appliance (vxlan_remote_ip)");
      return;
    }
    auto it = targets.find(eni);
    if (it != targets.end()) {
      error(path, s.location,
            "interface '" + eni + "' is the mirror target of session '" + it->second +
                "', so it cannot be a mirror source",
            "as in AWS, an interface that is a traffic mirror target cannot be a traffic mirror "
            "source; mirror another interface or send the copies elsewhere");
    }
  }

  void checkPacketLength(const std::optional<int>& length, const std::string& path,
                         const SourceLocation& loc) {
    if (!length) {
      return;
    }
    const std::string text = "packet_length " + std::to_string(*length);
    if (*length < 1 || *length > kMaxPacketLength) {
      error(path, loc, text + " is outside 1..8500",
            "the number of bytes of each packet to mirror, 1 to 8500 as in AWS; leave "
            "packet_length out to mirror whole packets");
    } else if (*length < kEthernetHeaderLength) {
      error(path, loc,
            text +
                " is below 14: Open vSwitch cannot truncate a packet below its 14-byte "
                "Ethernet header",
            "use 14 or more (AWS accepts 1 to 8500), or leave packet_length out to mirror "
            "whole packets");
    }
  }

  void checkPortMirrors() {
    checkIds(p_.port_mirrors, "port_mirrors", "port mirror", "pm-", " (vpcguard's own)");
    std::map<std::string, std::string> by_interface;  // source interface -> first port mirror
    for (size_t i = 0; i < p_.port_mirrors.size(); ++i) {
      const auto& pm = p_.port_mirrors[i];
      const std::string path = at("port_mirrors", i);
      const std::string source = path + ".network_interface_id";
      checkRef(interfaceExists(pm.network_interface_id), pm.network_interface_id, source,
               pm.location, "network interface", "network_interfaces");
      checkOutputPort(pm.output_port, path + ".output_port", pm.location);
      if (skipped(source)) {
        continue;
      }
      auto [it, inserted] = by_interface.emplace(pm.network_interface_id, pm.id);
      if (!inserted) {
        error(source, pm.location,
              "interface '" + pm.network_interface_id + "' already has port mirror '" + it->second +
                  "'",
              "an interface has at most one port mirror");
      }
    }
  }

  // The output port is a Linux network device (OVS port), so its name follows the kernel's
  // rules (dev_valid_name): 1..15 characters, not "." or "..", no '/', ':' or white space.
  void checkOutputPort(const std::string& name, const std::string& path,
                       const SourceLocation& loc) {
    constexpr const char* kHint = "name the OVS port that receives the copies, e.g. \"mirror0\"";
    if (name.empty()) {
      error(path, loc, "output_port is empty", kHint);
    } else if (name.size() > 15) {
      error(path, loc,
            "output_port '" + name + "' is longer than 15 characters (a Linux interface name)",
            kHint);
    } else if (!validInterfaceName(name)) {
      error(path, loc, "output_port '" + name + "' is not a valid Linux interface name",
            "no '/', ':', spaces or control characters, and not \".\" or \"..\"");
    } else if (name == pipeline::kMirrorTunnelPort) {
      error(path, loc,
            "output_port '" + name + "' is the VXLAN port vpcguardd sends mirror copies through",
            kHint);
    }
  }

  [[nodiscard]] static bool validInterfaceName(const std::string& name) {
    return name != "." && name != ".." && std::none_of(name.begin(), name.end(), [](char c) {
             return c == '/' || c == ':' || c == ' ' || static_cast<unsigned char>(c) < 0x20 ||
                    c == 0x7f;
           });
  }

  const model::Policy& p_;
  const std::set<std::string>& skip_;
  std::vector<Diagnostic> out_;
  // Ids -> position, viewing the policy's strings (it outlives the validator): looked up for
  // every group of every interface, thousands of times per load at 100k flows.
  std::unordered_map<std::string_view, size_t> groups_;
  std::map<std::string, size_t, std::less<>> acls_;
  std::map<std::string, size_t, std::less<>> prefix_lists_;
  std::unordered_map<std::string_view, size_t> subnets_;
  std::set<std::string, std::less<>> interfaces_;
  std::map<std::string, size_t, std::less<>> mirror_targets_;
  std::set<std::string, std::less<>> mirror_filters_;
  std::vector<size_t> default_groups_;
  std::vector<size_t> default_acls_;
  // Per group (by position): its ingress and egress rules as counted against the quotas.
  std::vector<std::optional<std::pair<RuleCount, RuleCount>>> group_counts_;
};

}  // namespace

std::vector<Diagnostic> validatePolicy(const model::Policy& policy,
                                       const std::set<std::string>& already_reported) {
  return Validator(policy, already_reported).run();
}

}  // namespace vpcguard
