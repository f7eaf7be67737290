#include "api/describe.h"

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <variant>

#include "api/actions.h"
#include "translator/rule_ids.h"

namespace vpcguard::api {
namespace {

constexpr int kImplicitDenyV4 = 32767;  // AWS's number for the final `*` deny (IPv4)
constexpr int kImplicitDenyV6 = 32768;  // and for IPv6, shown when the VPC has IPv6

bool hasPorts(int protocol) { return protocol == model::kProtoTcp || protocol == model::kProtoUdp; }
bool isIcmp(int protocol) {
  return protocol == model::kProtoIcmp || protocol == model::kProtoIcmpv6;
}

ApiError notFound(std::string code, std::string message) {
  return ApiError{std::move(code), std::move(message)};
}

// Where a rule goes among the grouped IpPermissions: protocol and, when it has them, the two
// port/type fields. AWS shows one permission per distinct triple.
struct PermissionKey {
  int protocol = 0;
  std::optional<std::pair<int, int>> ports;
  bool operator==(const PermissionKey&) const = default;
};

PermissionKey permissionKey(const model::SecurityGroupRule& normalized) {
  PermissionKey key{normalized.ip_protocol, std::nullopt};
  if (normalized.ports) key.ports = std::pair(normalized.ports->from, normalized.ports->to);
  if (normalized.icmp) key.ports = std::pair(normalized.icmp->type, normalized.icmp->code);
  return key;
}

Json withDescription(Json entry, const std::string& description) {
  if (!description.empty()) entry["Description"] = description;
  return entry;
}

}  // namespace

model::SourceLocation apiLocation() { return model::SourceLocation{"api", 0, 0}; }

ApiError groupNotFound(std::string_view id_or_name) {
  return notFound("InvalidGroup.NotFound",
                  "The security group '" + std::string(id_or_name) + "' does not exist");
}
ApiError networkAclNotFound(std::string_view id) {
  return notFound("InvalidNetworkAclID.NotFound",
                  "The networkAcl ID '" + std::string(id) + "' does not exist");
}
ApiError interfaceNotFound(std::string_view id) {
  return notFound("InvalidNetworkInterfaceID.NotFound",
                  "The networkInterface ID '" + std::string(id) + "' does not exist");
}
ApiError subnetNotFound(std::string_view id) {
  return notFound("InvalidSubnetID.NotFound",
                  "The subnet ID '" + std::string(id) + "' does not exist");
}
ApiError vpcNotFound(std::string_view id) {
  return notFound("InvalidVpcID.NotFound", "The vpc ID '" + std::string(id) + "' does not exist");
}
ApiError prefixListNotFound(std::string_view id) {
  return notFound("InvalidPrefixListID.NotFound",
                  "The prefix list ID '" + std::string(id) + "' does not exist");
}

std::string securityGroupProtocol(int protocol) {
  switch (protocol) {
    case model::kProtoAll: return "-1";
    case model::kProtoTcp: return "tcp";
    case model::kProtoUdp: return "udp";
    case model::kProtoIcmp: return "icmp";
    case model::kProtoIcmpv6: return "icmpv6";
    default: return std::to_string(protocol);
  }
}

std::string networkAclProtocol(int protocol) { return std::to_string(protocol); }

std::optional<int> parseProtocol(const Json& value) {
  if (value.is_number_integer()) {
    const auto n = value.get<long long>();
    if (n >= -1 && n <= 255) return static_cast<int>(n);
    return std::nullopt;
  }
  if (!value.is_string()) return std::nullopt;
  std::string text = value.get<std::string>();
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "-1" || text == "all") return model::kProtoAll;
  if (text == "tcp") return model::kProtoTcp;
  if (text == "udp") return model::kProtoUdp;
  if (text == "icmp") return model::kProtoIcmp;
  if (text == "icmpv6") return model::kProtoIcmpv6;
  if (text.empty() || text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int n = std::stoi(text);
  if (n > 255) return std::nullopt;
  return n;
}

model::SecurityGroupRule normalizedRule(const model::SecurityGroupRule& rule) {
  model::SecurityGroupRule out = rule;
  out.ports.reset();
  out.icmp.reset();
  if (hasPorts(rule.ip_protocol)) {
    out.ports = rule.ports.value_or(model::PortRange{0, 65535});
  } else if (isIcmp(rule.ip_protocol)) {
    out.icmp = rule.icmp.value_or(model::IcmpTypeCode{-1, -1});
  } else if (rule.ip_protocol != model::kProtoAll && rule.ports) {
    // Kept so that validation can report it rather than it vanishing here.
    out.ports = rule.ports;
  }
  return out;
}

bool sameRule(const model::SecurityGroupRule& a, const model::SecurityGroupRule& b) {
  return sameRuleContent(normalizedRule(a), normalizedRule(b));
}

std::string securityGroupRuleId(std::string_view group_id, bool egress,
                                const model::SecurityGroupRule& rule) {
  const std::string identity = ruleIdentity(std::string(group_id), egress, normalizedRule(rule));
  // 64-bit FNV-1a: 16 hex digits after AWS's leading 0 make AWS's 17.
  uint64_t hash = 14695981039346656037ULL;
  for (const char c : identity) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 1099511628211ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "sgr-0";
  for (int shift = 60; shift >= 0; shift -= 4) id += kHex[(hash >> shift) & 0xf];
  return id;
}

Json describeVpc(const model::Vpc& vpc) {
  Json out = {{"VpcId", vpc.id},
              {"OwnerId", vpc.account_id},
              {"State", "available"},
              {"InstanceTenancy", "default"},
              {"IsDefault", false}};
  if (!vpc.cidr_blocks.empty()) out["CidrBlock"] = vpc.cidr_blocks.front().toString();
  Json v4 = Json::array();
  for (const Cidr& c : vpc.cidr_blocks) {
    v4.push_back({{"CidrBlock", c.toString()}, {"CidrBlockState", {{"State", "associated"}}}});
  }
  out["CidrBlockAssociationSet"] = std::move(v4);
  if (!vpc.ipv6_cidr_blocks.empty()) {
    Json v6 = Json::array();
    for (const Cidr& c : vpc.ipv6_cidr_blocks) {
      v6.push_back(
          {{"Ipv6CidrBlock", c.toString()}, {"Ipv6CidrBlockState", {{"State", "associated"}}}});
    }
    out["Ipv6CidrBlockAssociationSet"] = std::move(v6);
  }
  return out;
}

Json describeSubnet(const model::Vpc& vpc, const model::Subnet& subnet) {
  Json v6 = Json::array();
  if (subnet.ipv6_cidr_block) {
    v6.push_back({{"Ipv6CidrBlock", subnet.ipv6_cidr_block->toString()},
                  {"Ipv6CidrBlockState", {{"State", "associated"}}}});
  }
  return {{"SubnetId", subnet.id},
          {"VpcId", vpc.id},
          {"OwnerId", vpc.account_id},
          {"CidrBlock", subnet.cidr_block.toString()},
          {"Ipv6CidrBlockAssociationSet", std::move(v6)},
          {"State", "available"},
          {"SubnetArn", resourceArn(vpc, "subnet", subnet.id)}};
}

Json ipPermissions(const model::Vpc& vpc, const std::vector<model::SecurityGroupRule>& rules) {
  std::vector<PermissionKey> keys;
  Json out = Json::array();
  for (const model::SecurityGroupRule& original : rules) {
    const model::SecurityGroupRule rule = normalizedRule(original);
    const PermissionKey key = permissionKey(rule);
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      Json permission = {{"IpProtocol", securityGroupProtocol(key.protocol)},
                         {"IpRanges", Json::array()},
                         {"Ipv6Ranges", Json::array()},
                         {"PrefixListIds", Json::array()},
                         {"UserIdGroupPairs", Json::array()}};
      if (key.ports) {
        permission["FromPort"] = key.ports->first;
        permission["ToPort"] = key.ports->second;
      }
      out.push_back(std::move(permission));
      it = keys.end() - 1;
    }
    Json& permission = out[static_cast<size_t>(it - keys.begin())];
    if (const auto* cidr = std::get_if<Cidr>(&rule.peer)) {
      if (cidr->family() == IpFamily::kV4) {
        permission["IpRanges"].push_back(
            withDescription({{"CidrIp", cidr->toString()}}, rule.description));
      } else {
        permission["Ipv6Ranges"].push_back(
            withDescription({{"CidrIpv6", cidr->toString()}}, rule.description));
      }
    } else if (const auto* group = std::get_if<model::GroupRef>(&rule.peer)) {
      permission["UserIdGroupPairs"].push_back(withDescription(
          {{"GroupId", group->group_id}, {"UserId", vpc.account_id}}, rule.description));
    } else if (const auto* list = std::get_if<model::PrefixListRef>(&rule.peer)) {
      permission["PrefixListIds"].push_back(
          withDescription({{"PrefixListId", list->prefix_list_id}}, rule.description));
    }
  }
  return out;
}

Json describeSecurityGroup(const model::Vpc& vpc, const model::SecurityGroup& group) {
  return {{"GroupId", group.id},
          {"GroupName", group.name},
          {"Description", group.description},
          {"IpPermissions", ipPermissions(vpc, group.ingress)},
          {"IpPermissionsEgress", ipPermissions(vpc, group.egress)},
          {"OwnerId", vpc.account_id},
          {"VpcId", vpc.id},
          {"SecurityGroupArn", resourceArn(vpc, "security-group", group.id)}};
}

Json describeSecurityGroupRule(const model::Vpc& vpc, std::string_view group_id, bool egress,
                               const model::SecurityGroupRule& original) {
  const model::SecurityGroupRule rule = normalizedRule(original);
  Json out = {{"SecurityGroupRuleId", securityGroupRuleId(group_id, egress, rule)},
              {"GroupId", group_id},
              {"GroupOwnerId", vpc.account_id},
              {"IsEgress", egress},
              {"IpProtocol", securityGroupProtocol(rule.ip_protocol)},
              {"FromPort", -1},
              {"ToPort", -1}};
  if (rule.ports) {
    out["FromPort"] = rule.ports->from;
    out["ToPort"] = rule.ports->to;
  } else if (rule.icmp) {
    out["FromPort"] = rule.icmp->type;
    out["ToPort"] = rule.icmp->code;
  }
  if (const auto* cidr = std::get_if<Cidr>(&rule.peer)) {
    out[cidr->family() == IpFamily::kV4 ? "CidrIpv4" : "CidrIpv6"] = cidr->toString();
  } else if (const auto* group = std::get_if<model::GroupRef>(&rule.peer)) {
    out["ReferencedGroupInfo"] = {{"GroupId", group->group_id}, {"UserId", vpc.account_id}};
  } else if (const auto* list = std::get_if<model::PrefixListRef>(&rule.peer)) {
    out["PrefixListId"] = list->prefix_list_id;
  }
  return withDescription(std::move(out), rule.description);
}

std::string networkAclAssociationId(std::string_view subnet_id) {
  return "aclassoc-" + std::string(subnet_id);
}

Json describeNetworkAcl(const model::Policy& policy, const model::NetworkAcl& acl) {
  Json associations = Json::array();
  for (const model::Subnet& subnet : policy.subnets) {
    if (subnet.network_acl_id != acl.id) continue;
    associations.push_back({{"NetworkAclAssociationId", networkAclAssociationId(subnet.id)},
                            {"NetworkAclId", acl.id},
                            {"SubnetId", subnet.id}});
  }
  // AWS lists outbound entries first, each direction by rule number, `*` last.
  std::vector<const model::NetworkAclEntry*> sorted;
  for (const auto& e : acl.entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return std::tuple(!a->egress, a->rule_number) < std::tuple(!b->egress, b->rule_number);
  });
  Json entries = Json::array();
  const auto entry = [](int number, bool egress, int protocol, bool allow, const Cidr& cidr) {
    return Json{{"RuleNumber", number},
                {"Egress", egress},
                {"Protocol", networkAclProtocol(protocol)},
                {"RuleAction", allow ? "allow" : "deny"},
                {cidr.family() == IpFamily::kV4 ? "CidrBlock" : "Ipv6CidrBlock", cidr.toString()}};
  };
  for (const bool egress : {true, false}) {
    for (const model::NetworkAclEntry* e : sorted) {
      if (e->egress != egress) continue;
      Json out = entry(e->rule_number, e->egress, e->protocol, e->allow, e->cidr);
      if (e->port_range) out["PortRange"] = {{"From", e->port_range->from}, {"To", e->port_range->to}};
      if (e->icmp_type_code) {
        out["IcmpTypeCode"] = {{"Type", e->icmp_type_code->type},
                               {"Code", e->icmp_type_code->code}};
      }
      entries.push_back(std::move(out));
    }
    entries.push_back(entry(kImplicitDenyV4, egress, model::kProtoAll, false,
                            Cidr{IpAddress::v4(0), 0}));
    if (!policy.vpc.ipv6_cidr_blocks.empty()) {
      Cidr all_v6;
      all_v6.address.family = IpFamily::kV6;
      entries.push_back(entry(kImplicitDenyV6, egress, model::kProtoAll, false, all_v6));
    }
  }
  return {{"NetworkAclId", acl.id},
          {"VpcId", policy.vpc.id},
          {"OwnerId", policy.vpc.account_id},
          {"IsDefault", acl.is_default},
          {"Associations", std::move(associations)},
          {"Entries", std::move(entries)}};
}

Json describeNetworkInterface(const model::Policy& policy, const model::NetworkInterface& eni) {
  Json groups = Json::array();
  for (const std::string& id : eni.security_group_ids) {
    Json g = {{"GroupId", id}};
    if (const auto* group = findById(policy.security_groups, id)) g["GroupName"] = group->name;
    groups.push_back(std::move(g));
  }
  Json private_ips = Json::array();
  for (size_t i = 0; i < eni.private_ip_addresses.size(); ++i) {
    private_ips.push_back({{"Primary", i == 0},
                           {"PrivateIpAddress", eni.private_ip_addresses[i].toString()}});
  }
  Json ipv6 = Json::array();
  for (const IpAddress& a : eni.ipv6_addresses) ipv6.push_back({{"Ipv6Address", a.toString()}});
  Json out = {{"NetworkInterfaceId", eni.id},
              {"SubnetId", eni.subnet_id},
              {"VpcId", policy.vpc.id},
              {"OwnerId", policy.vpc.account_id},
              {"InterfaceType", "interface"},
              {"RequesterManaged", false},
              {"MacAddress", eni.mac_address},
              {"PrivateIpAddresses", std::move(private_ips)},
              {"Ipv6Addresses", std::move(ipv6)},
              {"Groups", std::move(groups)},
              {"SourceDestCheck", eni.source_dest_check}};
  if (!eni.private_ip_addresses.empty()) {
    out["PrivateIpAddress"] = eni.private_ip_addresses.front().toString();
  }
  const model::ConnectionTracking& ct = eni.connection_tracking;
  if (ct.tcp_established_timeout || ct.udp_timeout || ct.udp_stream_timeout) {
    Json tracking = Json::object();
    if (ct.tcp_established_timeout) tracking["TcpEstablishedTimeout"] = *ct.tcp_established_timeout;
    if (ct.udp_timeout) tracking["UdpTimeout"] = *ct.udp_timeout;
    if (ct.udp_stream_timeout) tracking["UdpStreamTimeout"] = *ct.udp_stream_timeout;
    out["ConnectionTrackingConfiguration"] = std::move(tracking);
  }
  return out;
}

Json describePrefixList(const model::Vpc& vpc, const model::PrefixList& list) {
  Json entries = Json::array();
  for (const Cidr& c : list.entries) entries.push_back({{"Cidr", c.toString()}});
  const bool v6 = !list.entries.empty() && list.entries.front().family() == IpFamily::kV6;
  return {{"PrefixListId", list.id},
          {"PrefixListName", list.name},
          {"MaxEntries", list.max_entries},
          {"AddressFamily", v6 ? "IPv6" : "IPv4"},
          {"State", "create-complete"},
          {"Version", 1},
          {"OwnerId", vpc.account_id},
          {"PrefixListArn", resourceArn(vpc, "prefix-list", list.id)},
          {"Entries", std::move(entries)}};
}

ApiResult<Json> applyFilters(const Json& params, Json described,
                             const std::vector<FilterKey>& filters) {
  auto given = optionalStructure(params, "Filters", true);
  if (!given) return tl::unexpected(given.error());
  if (given->is_null()) return described;
  for (const Json& filter : *given) {
    auto name = requiredString(filter, "Name");
    if (!name) return tl::unexpected(name.error());
    const auto known = std::find_if(filters.begin(), filters.end(),
                                    [&](const FilterKey& f) { return f.filter == *name; });
    if (known == filters.end()) {
      std::string message = "The filter '" + *name + "' is invalid; supported:";
      for (const FilterKey& f : filters) message += " " + std::string(f.filter);
      return apiError("InvalidParameterValue", std::move(message));
    }
    auto values = stringList(filter, "Values", true);
    if (!values) return tl::unexpected(values.error());
    Json kept = Json::array();
    for (Json& object : described) {
      const auto it = object.find(std::string(known->key));
      if (it == object.end()) continue;
      const std::string value = it->is_string()    ? it->get<std::string>()
                                : it->is_boolean() ? (it->get<bool>() ? "true" : "false")
                                                   : it->dump();
      if (std::find(values->begin(), values->end(), value) != values->end()) {
        kept.push_back(std::move(object));
      }
    }
    described = std::move(kept);
  }
  return described;
}

}  // namespace vpcguard::api
