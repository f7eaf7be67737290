// Security group actions: DescribeSecurityGroups, CreateSecurityGroup, DeleteSecurityGroup,
// Authorize/RevokeSecurityGroupIngress/Egress (docs/api-actions.md).
//
// Rules arrive in AWS's grouped IpPermissions shape (one permission = a protocol, its ports and
// several peers) or in the CLI's flat form (Protocol, Port "22" / "1000-2000", CidrIp,
// SourceGroup); the flat form is turned into one IpPermissions entry so that one parser reads
// both. Each peer becomes one model rule. Whether two rules are the same (duplicates, revoke)
// ignores the description and how ports were written (normalizedRule()), as AWS compares them.
// Checks that validation makes on the whole policy afterwards (quotas, description length,
// references from other objects) are not repeated here.

#include <algorithm>
#include <charconv>
#include <variant>

#include "api/action_registry.h"
#include "api/describe.h"
#include "translator/defaults.h"

namespace vpcguard::api {
namespace {

ApiError invalid(std::string message) { return ApiError{"InvalidParameterValue", std::move(message)}; }

std::string actionName(std::string_view name) { return "ec2:" + std::string(name); }

// The group a request names by GroupId or, as AWS also allows, GroupName.
ApiResult<std::string> targetGroup(const model::Policy& policy, const Json& params) {
  auto id = optionalString(params, "GroupId");
  if (!id) return tl::unexpected(id.error());
  if (*id) {
    if (findById(policy.security_groups, **id) == nullptr) {
      return tl::unexpected(groupNotFound(**id));
    }
    return **id;
  }
  auto name = optionalString(params, "GroupName");
  if (!name) return tl::unexpected(name.error());
  if (!*name) {
    return apiError("MissingParameter",
                    "The request must contain the parameter GroupName or GroupId");
  }
  for (const auto& g : policy.security_groups) {
    if (g.name == **name) return g.id;
  }
  return tl::unexpected(groupNotFound(**name));
}

// A port or ICMP field as an int within [low, high].
ApiResult<std::optional<int>> boundedInt(const Json& params, std::string_view name, int low,
                                         int high) {
  auto value = optionalInt(params, name);
  if (!value) return tl::unexpected(value.error());
  if (!*value) return std::optional<int>{};
  if (**value < low || **value > high) {
    return tl::unexpected(invalid("Value (" + std::to_string(**value) + ") for parameter " +
                                  std::string(name) + " is invalid. Expected " +
                                  std::to_string(low) + ".." + std::to_string(high)));
  }
  return std::optional<int>(static_cast<int>(**value));
}

// "22", "1000-2000", "-1", "8-0", "8--1": the CLI's --port (ports, or ICMP type-code).
std::optional<std::pair<int, int>> parsePortText(std::string_view text) {
  const auto number = [](std::string_view& rest) -> std::optional<int> {
    int value = 0;
    const char* begin = rest.data();
    const char* end = rest.data() + rest.size();
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec != std::errc() || ptr == begin) return std::nullopt;
    rest.remove_prefix(static_cast<size_t>(ptr - begin));
    return value;
  };
  std::string_view rest = text;
  const auto first = number(rest);
  if (!first) return std::nullopt;
  if (rest.empty()) return std::pair(*first, *first);
  if (rest.front() != '-') return std::nullopt;
  rest.remove_prefix(1);
  const auto second = number(rest);
  if (!second || !rest.empty()) return std::nullopt;
  return std::pair(*first, *second);
}

// Reads one peer list ("IpRanges", ...) of a permission: a list of objects.
ApiResult<const Json*> peerList(const Json& permission, std::string_view name) {
  auto list = optionalStructure(permission, name, true);
  if (!list) return tl::unexpected(list.error());
  if (list->is_null()) return static_cast<const Json*>(nullptr);
  const Json* stored = &permission.at(std::string(name));
  for (const Json& item : *stored) {
    if (!item.is_object()) {
      return tl::unexpected(invalid("Each entry of " + std::string(name) + " must be a structure"));
    }
  }
  return stored;
}

ApiResult<Cidr> parseCidr(const std::string& text, IpFamily family, std::string_view what) {
  auto cidr = Cidr::parse(text);
  if (!cidr || cidr->family() != family) {
    return tl::unexpected(
        invalid("CIDR block " + text + " is malformed" +
                (cidr ? " (" + std::string(what) + " expects an " +
                            (family == IpFamily::kV4 ? "IPv4" : "IPv6") + " CIDR)"
                      : ": " + cidr.error().message)));
  }
  return *cidr;
}

// One AWS IpPermission -> model rules (one per peer).
ApiResult<std::vector<model::SecurityGroupRule>> parsePermission(const model::Policy& policy,
                                                                 const Json& permission) {
  if (!permission.is_object()) return tl::unexpected(invalid("IpPermissions entries must be structures"));
  const Json* protocol_value = permission.contains("IpProtocol") ? &permission.at("IpProtocol")
                                                                 : nullptr;
  if (protocol_value == nullptr || protocol_value->is_null()) {
    return apiError("MissingParameter", "The request must contain the parameter IpProtocol");
  }
  const auto protocol = parseProtocol(*protocol_value);
  if (!protocol) {
    return tl::unexpected(invalid(
        "Invalid value '" + protocol_value->dump(-1, ' ', false, Json::error_handler_t::replace) +
        "' for IP protocol. Unknown protocol."));
  }
  model::SecurityGroupRule base;
  base.ip_protocol = *protocol;
  base.location = apiLocation();
  if (*protocol == model::kProtoTcp || *protocol == model::kProtoUdp) {
    auto from = boundedInt(permission, "FromPort", 0, 65535);
    if (!from) return tl::unexpected(from.error());
    auto to = boundedInt(permission, "ToPort", 0, 65535);
    if (!to) return tl::unexpected(to.error());
    if (!*from || !*to) {
      return tl::unexpected(invalid("Invalid value 'Must specify both from and to ports with TCP/UDP.'"));
    }
    if (**from > **to) {
      return tl::unexpected(invalid("Invalid TCP/UDP port range: FromPort " + std::to_string(**from) +
                                    " is above ToPort " + std::to_string(**to)));
    }
    base.ports = model::PortRange{**from, **to};
  } else if (*protocol == model::kProtoIcmp || *protocol == model::kProtoIcmpv6) {
    auto type = boundedInt(permission, "FromPort", -1, 255);
    if (!type) return tl::unexpected(type.error());
    auto code = boundedInt(permission, "ToPort", -1, 255);
    if (!code) return tl::unexpected(code.error());
    base.icmp = model::IcmpTypeCode{type->value_or(-1), code->value_or(-1)};
  }

  std::vector<model::SecurityGroupRule> rules;
  const auto add = [&](model::Peer peer, const Json& entry) -> ApiResult<void> {
    auto description = optionalString(entry, "Description");
    if (!description) return tl::unexpected(description.error());
    model::SecurityGroupRule rule = base;
    rule.peer = std::move(peer);
    rule.description = description->value_or("");
    rules.push_back(std::move(rule));
    return {};
  };
  for (const auto& [list_name, field, family] :
       {std::tuple("IpRanges", "CidrIp", IpFamily::kV4),
        std::tuple("Ipv6Ranges", "CidrIpv6", IpFamily::kV6)}) {
    auto list = peerList(permission, list_name);
    if (!list) return tl::unexpected(list.error());
    if (*list == nullptr) continue;
    for (const Json& entry : **list) {
      auto text = requiredString(entry, field);
      if (!text) return tl::unexpected(text.error());
      auto cidr = parseCidr(*text, family, field);
      if (!cidr) return tl::unexpected(cidr.error());
      if (auto added = add(*cidr, entry); !added) return tl::unexpected(added.error());
    }
  }
  auto lists = peerList(permission, "PrefixListIds");
  if (!lists) return tl::unexpected(lists.error());
  for (const Json& entry : *lists ? **lists : Json::array()) {
    auto id = requiredString(entry, "PrefixListId");
    if (!id) return tl::unexpected(id.error());
    if (findById(policy.prefix_lists, *id) == nullptr) {
      return tl::unexpected(prefixListNotFound(*id));
    }
    if (auto added = add(model::PrefixListRef{*id}, entry); !added) {
      return tl::unexpected(added.error());
    }
  }
  auto pairs = peerList(permission, "UserIdGroupPairs");
  if (!pairs) return tl::unexpected(pairs.error());
  for (const Json& entry : *pairs ? **pairs : Json::array()) {
    auto user = optionalString(entry, "UserId");
    if (!user) return tl::unexpected(user.error());
    if (*user && **user != policy.vpc.account_id) {
      return tl::unexpected(invalid("UserId " + **user + ": groups of other accounts (" +
                                    policy.vpc.account_id + " only) are not supported"));
    }
    for (const char* unsupported : {"VpcPeeringConnectionId"}) {
      if (entry.contains(unsupported) && !entry.at(unsupported).is_null()) {
        return tl::unexpected(invalid(std::string(unsupported) + ": groups of peered VPCs are not supported"));
      }
    }
    if (auto vpc = optionalString(entry, "VpcId"); !vpc) {
      return tl::unexpected(vpc.error());
    } else if (*vpc && **vpc != policy.vpc.id) {
      return tl::unexpected(vpcNotFound(**vpc));
    }
    auto group = targetGroup(policy, entry);
    if (!group) return tl::unexpected(group.error());
    if (auto added = add(model::GroupRef{*group}, entry); !added) {
      return tl::unexpected(added.error());
    }
  }
  if (rules.empty()) {
    return apiError("MissingParameter",
                    "The request must name a peer: IpRanges, Ipv6Ranges, PrefixListIds or "
                    "UserIdGroupPairs");
  }
  return rules;
}

// The CLI's flat form as one IpPermissions entry: Protocol|IpProtocol, Port|FromPort+ToPort,
// CidrIp, SourceGroup|SourceSecurityGroupName|SourceSecurityGroupId. Null when none is given.
ApiResult<Json> flatPermission(const Json& params) {
  static constexpr std::string_view kFlat[] = {
      "Protocol", "IpProtocol", "Port", "FromPort", "ToPort", "CidrIp", "SourceGroup",
      "SourceSecurityGroupName", "SourceSecurityGroupId"};
  if (std::none_of(std::begin(kFlat), std::end(kFlat), [&](std::string_view k) {
        return params.contains(std::string(k)) && !params.at(std::string(k)).is_null();
      })) {
    return Json();
  }
  Json permission = Json::object();
  for (const char* key : {"IpProtocol", "Protocol"}) {
    if (params.contains(key) && !params.at(key).is_null()) permission["IpProtocol"] = params.at(key);
  }
  if (params.contains("Port") && !params.at("Port").is_null()) {
    const Json& port = params.at("Port");
    const std::string text = port.is_string() ? port.get<std::string>()
                             : port.is_number_integer() ? port.dump()
                                                        : std::string();
    const auto range = parsePortText(text);
    if (!range) {
      return tl::unexpected(invalid("Value (" + port.dump(-1, ' ', false, Json::error_handler_t::replace) +
                                    ") for parameter Port is invalid. Expected a port, a range "
                                    "FROM-TO, or an ICMP TYPE-CODE"));
    }
    auto protocol = parseProtocol(permission.value("IpProtocol", Json()));
    if (range->first == -1 && range->second == -1 && protocol &&
        (*protocol == model::kProtoTcp || *protocol == model::kProtoUdp)) {
      permission["FromPort"] = 0;  // -1 = every port
      permission["ToPort"] = 65535;
    } else if (text.find('-', 1) == std::string::npos && protocol &&
               (*protocol == model::kProtoIcmp || *protocol == model::kProtoIcmpv6)) {
      permission["FromPort"] = range->first;  // a type alone: every code of it
      permission["ToPort"] = -1;
    } else {
      permission["FromPort"] = range->first;
      permission["ToPort"] = range->second;
    }
  }
  for (const char* key : {"FromPort", "ToPort"}) {
    if (params.contains(key) && !params.at(key).is_null()) permission[key] = params.at(key);
  }
  if (params.contains("CidrIp") && !params.at("CidrIp").is_null()) {
    permission["IpRanges"] = Json::array({{{"CidrIp", params.at("CidrIp")}}});
  }
  for (const auto& [flat, key] : {std::pair("SourceGroup", "GroupId"),
                                  std::pair("SourceSecurityGroupId", "GroupId"),
                                  std::pair("SourceSecurityGroupName", "GroupName")}) {
    if (!params.contains(flat) || params.at(flat).is_null()) continue;
    std::string field = key;
    // The CLI's --source-group takes an id or a name.
    if (std::string_view(flat) == "SourceGroup" && params.at(flat).is_string() &&
        !params.at(flat).get<std::string>().starts_with("sg-")) {
      field = "GroupName";
    }
    permission["UserIdGroupPairs"] = Json::array({{{field, params.at(flat)}}});
  }
  return permission;
}

// Every rule a request names, in order.
ApiResult<std::vector<model::SecurityGroupRule>> requestedRules(const model::Policy& policy,
                                                                const Json& params) {
  auto permissions = optionalStructure(params, "IpPermissions", true);
  if (!permissions) return tl::unexpected(permissions.error());
  auto flat = flatPermission(params);
  if (!flat) return tl::unexpected(flat.error());
  if (!permissions->is_null() && !flat->is_null()) {
    return apiError("InvalidParameterCombination",
                    "IpPermissions and the flat rule parameters (Protocol, Port, CidrIp, "
                    "SourceGroup) cannot be combined");
  }
  Json list = !flat->is_null() ? Json::array({*flat}) : *permissions;
  if (list.is_null() || list.empty()) {
    return apiError("MissingParameter", "The request must contain the parameter IpPermissions");
  }
  std::vector<model::SecurityGroupRule> rules;
  for (const Json& permission : list) {
    auto more = parsePermission(policy, permission);
    if (!more) return tl::unexpected(more.error());
    rules.insert(rules.end(), more->begin(), more->end());
  }
  return rules;
}

// How AWS describes a rule in Duplicate/NotFound messages.
std::string ruleText(const model::SecurityGroupRule& original) {
  const model::SecurityGroupRule rule = normalizedRule(original);
  std::string peer;
  if (const auto* cidr = std::get_if<Cidr>(&rule.peer)) {
    peer = cidr->toString();
  } else if (const auto* group = std::get_if<model::GroupRef>(&rule.peer)) {
    peer = group->group_id;
  } else if (const auto* list = std::get_if<model::PrefixListRef>(&rule.peer)) {
    peer = list->prefix_list_id;
  }
  std::string protocol = securityGroupProtocol(rule.ip_protocol);
  std::transform(protocol.begin(), protocol.end(), protocol.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  std::string text = "peer: " + peer + ", " + (protocol == "-1" ? "ALL" : protocol);
  if (rule.ports) {
    text += ", from port: " + std::to_string(rule.ports->from) +
            ", to port: " + std::to_string(rule.ports->to);
  } else if (rule.icmp) {
    text += ", type: " + std::to_string(rule.icmp->type) +
            ", code: " + std::to_string(rule.icmp->code);
  }
  return text + ", ALLOW";
}

std::vector<Permission> onGroup(const model::Policy& policy, std::string_view action,
                                const std::string& group_id) {
  return {Permission{actionName(action), resourceArn(policy.vpc, "security-group", group_id)}};
}

ActionSpec changeRules(std::string name, bool egress, bool authorize) {
  ActionSpec spec;
  spec.name = name;
  spec.mutating = true;
  spec.permissions = [name](const model::Policy& policy,
                            const Json& params) -> ApiResult<std::vector<Permission>> {
    auto group = targetGroup(policy, params);
    if (!group) return tl::unexpected(group.error());
    return onGroup(policy, name, *group);
  };
  spec.run = [egress, authorize](const model::Policy& policy, const Json& params,
                                 const ActionContext&) -> ApiResult<ActionOutcome> {
    auto group_id = targetGroup(policy, params);
    if (!group_id) return tl::unexpected(group_id.error());
    model::Policy next = policy;
    model::SecurityGroup& group = *findById(next.security_groups, *group_id);
    std::vector<model::SecurityGroupRule>& rules = egress ? group.egress : group.ingress;
    ActionOutcome outcome;
    outcome.result = {{"Return", true}};

    if (!authorize) {
      auto ids = stringList(params, "SecurityGroupRuleIds");
      if (!ids) return tl::unexpected(ids.error());
      if (!ids->empty()) {
        for (const std::string& id : *ids) {
          const auto before = rules.size();
          std::erase_if(rules, [&](const model::SecurityGroupRule& r) {
            return securityGroupRuleId(group.id, egress, r) == id;
          });
          if (rules.size() == before) {
            return apiError("InvalidSecurityGroupRuleId.NotFound",
                            "The security group rule ID '" + id + "' does not exist in " +
                                group.id + (egress ? " (egress)" : " (ingress)"));
          }
        }
        outcome.policy = std::move(next);
        return outcome;
      }
    }

    auto requested = requestedRules(policy, params);
    if (!requested) return tl::unexpected(requested.error());
    if (authorize) {
      Json added = Json::array();
      for (size_t i = 0; i < requested->size(); ++i) {
        const model::SecurityGroupRule& rule = (*requested)[i];
        const bool exists = std::any_of(rules.begin(), rules.end(), [&](const auto& r) {
          return sameRule(r, rule);
        });
        if (exists) {
          return apiError("InvalidPermission.Duplicate",
                          "the specified rule \"" + ruleText(rule) + "\" already exists");
        }
        rules.push_back(rule);
        added.push_back(describeSecurityGroupRule(next.vpc, group.id, egress, rule));
      }
      outcome.result["SecurityGroupRules"] = std::move(added);
    } else {
      for (const model::SecurityGroupRule& rule : *requested) {
        const auto before = rules.size();
        std::erase_if(rules, [&](const auto& r) { return sameRule(r, rule); });
        if (rules.size() == before) {
          return apiError("InvalidPermission.NotFound",
                          "The specified rule \"" + ruleText(rule) +
                              "\" does not exist in this security group (" + group.id + ")");
        }
      }
    }
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

ActionSpec describeSecurityGroups() {
  ActionSpec spec;
  spec.name = "DescribeSecurityGroups";
  spec.permissions = [](const model::Policy&, const Json&) -> ApiResult<std::vector<Permission>> {
    return std::vector<Permission>{{actionName("DescribeSecurityGroups"), "*"}};
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext&) -> ApiResult<ActionOutcome> {
    auto ids = stringList(params, "GroupIds");
    if (!ids) return tl::unexpected(ids.error());
    auto names = stringList(params, "GroupNames");
    if (!names) return tl::unexpected(names.error());
    for (const std::string& id : *ids) {
      if (findById(policy.security_groups, id) == nullptr) return tl::unexpected(groupNotFound(id));
    }
    for (const std::string& name : *names) {
      if (std::none_of(policy.security_groups.begin(), policy.security_groups.end(),
                       [&](const auto& g) { return g.name == name; })) {
        return tl::unexpected(groupNotFound(name));
      }
    }
    Json groups = Json::array();
    for (const auto& g : policy.security_groups) {
      const bool all = ids->empty() && names->empty();
      const bool named = std::find(ids->begin(), ids->end(), g.id) != ids->end() ||
                         std::find(names->begin(), names->end(), g.name) != names->end();
      if (all || named) groups.push_back(describeSecurityGroup(policy.vpc, g));
    }
    auto filtered = applyFilters(params, std::move(groups),
                                 {{"group-id", "GroupId"},
                                  {"group-name", "GroupName"},
                                  {"description", "Description"},
                                  {"vpc-id", "VpcId"},
                                  {"owner-id", "OwnerId"}});
    if (!filtered) return tl::unexpected(filtered.error());
    ActionOutcome outcome;
    outcome.result = {{"SecurityGroups", std::move(*filtered)}};
    return outcome;
  };
  return spec;
}

// CreateSecurityGroup's checks that need the request, shared by permissions() and run().
ApiResult<void> checkCreate(const model::Policy& policy, const Json& params) {
  auto name = requiredString(params, "GroupName");
  if (!name) return tl::unexpected(name.error());
  auto description = requiredString(params, "Description");
  if (!description) return tl::unexpected(description.error());
  auto vpc = optionalString(params, "VpcId");
  if (!vpc) return tl::unexpected(vpc.error());
  if (*vpc && **vpc != policy.vpc.id) return tl::unexpected(vpcNotFound(**vpc));
  if (name->starts_with("sg-")) {
    return tl::unexpected(invalid("Group names may not be in the format sg-*"));
  }
  for (const auto& g : policy.security_groups) {
    if (g.name == *name) {
      return apiError("InvalidGroup.Duplicate", "The security group '" + *name +
                                                    "' already exists for VPC '" +
                                                    policy.vpc.id + "'");
    }
  }
  return {};
}

ActionSpec createSecurityGroup() {
  ActionSpec spec;
  spec.name = "CreateSecurityGroup";
  spec.mutating = true;
  spec.permissions = [](const model::Policy& policy,
                        const Json& params) -> ApiResult<std::vector<Permission>> {
    if (auto ok = checkCreate(policy, params); !ok) return tl::unexpected(ok.error());
    const std::string action = actionName("CreateSecurityGroup");
    return std::vector<Permission>{{action, resourceArn(policy.vpc, "security-group", "*")},
                                   {action, resourceArn(policy.vpc, "vpc", policy.vpc.id)}};
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext& context) -> ApiResult<ActionOutcome> {
    if (auto ok = checkCreate(policy, params); !ok) return tl::unexpected(ok.error());
    if (!context.new_id) return apiError("InternalError", "no id generator");
    model::SecurityGroup group;
    group.id = context.new_id("sg");
    group.name = params.at("GroupName").get<std::string>();
    group.description = params.at("Description").get<std::string>();
    group.location = apiLocation();
    group.egress = allowAllEgressRules(group.location);  // AWS's egress of a new group
    ActionOutcome outcome;
    outcome.result = {{"GroupId", group.id},
                      {"SecurityGroupArn", resourceArn(policy.vpc, "security-group", group.id)}};
    model::Policy next = policy;
    next.security_groups.push_back(std::move(group));
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

// AWS's refusals to delete a group that is the default or still in use.
ApiResult<void> checkDelete(const model::Policy& policy, const std::string& id) {
  const model::SecurityGroup& group = *findById(policy.security_groups, id);
  if (group.is_default) {
    return apiError("CannotDelete", "the specified group: \"" + id + "\" name: \"" + group.name +
                                        "\" cannot be deleted by a user");
  }
  for (const auto& eni : policy.network_interfaces) {
    if (std::find(eni.security_group_ids.begin(), eni.security_group_ids.end(), id) !=
        eni.security_group_ids.end()) {
      return apiError("DependencyViolation", "resource " + id +
                                                 " has a dependent object (network interface " +
                                                 eni.id + ")");
    }
  }
  for (const auto& other : policy.security_groups) {
    if (other.id == id) continue;  // a group may reference itself
    for (const auto* rules : {&other.ingress, &other.egress}) {
      for (const auto& rule : *rules) {
        const auto* ref = std::get_if<model::GroupRef>(&rule.peer);
        if (ref != nullptr && ref->group_id == id) {
          return apiError("DependencyViolation", "resource " + id +
                                                     " has a dependent object (a rule of " +
                                                     other.id + ")");
        }
      }
    }
  }
  return {};
}

ActionSpec deleteSecurityGroup() {
  ActionSpec spec;
  spec.name = "DeleteSecurityGroup";
  spec.mutating = true;
  spec.permissions = [](const model::Policy& policy,
                        const Json& params) -> ApiResult<std::vector<Permission>> {
    auto group = targetGroup(policy, params);
    if (!group) return tl::unexpected(group.error());
    return onGroup(policy, "DeleteSecurityGroup", *group);
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext&) -> ApiResult<ActionOutcome> {
    auto id = targetGroup(policy, params);
    if (!id) return tl::unexpected(id.error());
    if (auto ok = checkDelete(policy, *id); !ok) return tl::unexpected(ok.error());
    model::Policy next = policy;
    std::erase_if(next.security_groups, [&](const auto& g) { return g.id == *id; });
    ActionOutcome outcome;
    outcome.result = {{"Return", true}, {"GroupId", *id}};
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

}  // namespace

std::vector<ActionSpec> securityGroupActions() {
  std::vector<ActionSpec> actions;
  actions.push_back(describeSecurityGroups());
  actions.push_back(createSecurityGroup());
  actions.push_back(deleteSecurityGroup());
  actions.push_back(changeRules("AuthorizeSecurityGroupIngress", false, true));
  actions.push_back(changeRules("AuthorizeSecurityGroupEgress", true, true));
  actions.push_back(changeRules("RevokeSecurityGroupIngress", false, false));
  actions.push_back(changeRules("RevokeSecurityGroupEgress", true, false));
  return actions;
}

}  // namespace vpcguard::api
