// Network ACL actions: DescribeNetworkAcls, CreateNetworkAcl, DeleteNetworkAcl,
// Create/Replace/DeleteNetworkAclEntry, ReplaceNetworkAclAssociation (docs/api-actions.md).
//
// An entry is identified, as in AWS, by its direction and rule number. The final `*` deny is
// not an entry of the model (it is the NACL stage's table miss); describe shows it as AWS does.
// Association ids are derived from the subnet ("aclassoc-" + subnet id) because the model keeps
// only which NACL a subnet uses; AWS would issue a new id on every replace.

#include <algorithm>

#include "api/action_registry.h"
#include "api/describe.h"
#include "translator/validate.h"

namespace vpcguard::api {
namespace {

ApiError invalid(std::string message) { return ApiError{"InvalidParameterValue", std::move(message)}; }

std::string actionName(std::string_view name) { return "ec2:" + std::string(name); }

ApiResult<std::string> existingAcl(const model::Policy& policy, const Json& params) {
  auto id = requiredString(params, "NetworkAclId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.network_acls, *id) == nullptr) return tl::unexpected(networkAclNotFound(*id));
  return *id;
}

// The (direction, rule number) that names an entry.
struct EntryKey {
  int rule_number = 0;
  bool egress = false;
};

ApiResult<EntryKey> entryKey(const Json& params) {
  auto number = requiredInt(params, "RuleNumber");
  if (!number) return tl::unexpected(number.error());
  if (*number < 1 || *number > 32766) {
    return tl::unexpected(invalid("Value (" + std::to_string(*number) +
                                  ") for parameter RuleNumber is invalid. Expected 1..32766"));
  }
  auto egress = optionalBool(params, "Egress");
  if (!egress) return tl::unexpected(egress.error());
  if (!*egress) return apiError("MissingParameter", "The request must contain the parameter Egress");
  return EntryKey{static_cast<int>(*number), **egress};
}

ApiResult<std::optional<int>> boundedInt(const Json& params, std::string_view name, int low,
                                         int high, bool required) {
  auto value = required ? requiredInt(params, name).map([](long long v) {
    return std::optional<long long>(v);
  })
                        : optionalInt(params, name);
  if (!value) return tl::unexpected(value.error());
  if (!*value) return std::optional<int>{};
  if (**value < low || **value > high) {
    return tl::unexpected(invalid("Value (" + std::to_string(**value) + ") for parameter " +
                                  std::string(name) + " is invalid. Expected " +
                                  std::to_string(low) + ".." + std::to_string(high)));
  }
  return std::optional<int>(static_cast<int>(**value));
}

// A whole entry as Create/ReplaceNetworkAclEntry give it.
ApiResult<model::NetworkAclEntry> parseEntry(const Json& params) {
  auto key = entryKey(params);
  if (!key) return tl::unexpected(key.error());
  model::NetworkAclEntry entry;
  entry.rule_number = key->rule_number;
  entry.egress = key->egress;
  entry.location = apiLocation();

  if (!params.contains("Protocol") || params.at("Protocol").is_null()) {
    return apiError("MissingParameter", "The request must contain the parameter Protocol");
  }
  const auto protocol = parseProtocol(params.at("Protocol"));
  if (!protocol) {
    return tl::unexpected(invalid(
        "Value (" + params.at("Protocol").dump(-1, ' ', false, Json::error_handler_t::replace) +
        ") for parameter Protocol is invalid. Expected -1, all, tcp, udp, icmp, icmpv6 or a "
        "protocol number 0..255"));
  }
  entry.protocol = *protocol;

  auto action = requiredString(params, "RuleAction");
  if (!action) return tl::unexpected(action.error());
  if (*action != "allow" && *action != "deny") {
    return tl::unexpected(invalid("Value (" + *action +
                                  ") for parameter RuleAction is invalid. Expected allow or deny"));
  }
  entry.allow = *action == "allow";

  auto v4 = optionalString(params, "CidrBlock");
  if (!v4) return tl::unexpected(v4.error());
  auto v6 = optionalString(params, "Ipv6CidrBlock");
  if (!v6) return tl::unexpected(v6.error());
  if (*v4 && *v6) {
    return apiError("InvalidParameterCombination",
                    "CidrBlock and Ipv6CidrBlock cannot both be given: one entry per family");
  }
  if (!*v4 && !*v6) {
    return apiError("MissingParameter",
                    "The request must contain the parameter CidrBlock or Ipv6CidrBlock");
  }
  const std::string& text = *v4 ? **v4 : **v6;
  const IpFamily family = *v4 ? IpFamily::kV4 : IpFamily::kV6;
  auto cidr = Cidr::parse(text);
  if (!cidr || cidr->family() != family) {
    return tl::unexpected(invalid("CIDR block " + text + " is malformed" +
                                  (cidr ? std::string(" (wrong address family)")
                                        : ": " + cidr.error().message)));
  }
  entry.cidr = *cidr;

  auto ports = optionalStructure(params, "PortRange", false);
  if (!ports) return tl::unexpected(ports.error());
  // As AWS: a TCP or UDP entry names its ports (a forgotten --port-range must not open them
  // all), and an ICMP entry for an IPv6 CIDR (always ICMPv6) its type and code.
  if (ports->is_null() &&
      (entry.protocol == model::kProtoTcp || entry.protocol == model::kProtoUdp)) {
    return apiError("MissingParameter",
                    "The request must contain the parameter PortRange (protocol " +
                        protocolName(entry.protocol) + ")");
  }
  if (!ports->is_null() && (entry.protocol == model::kProtoTcp ||
                            entry.protocol == model::kProtoUdp)) {
    auto from = boundedInt(*ports, "From", 0, 65535, true);
    if (!from) return tl::unexpected(from.error());
    auto to = boundedInt(*ports, "To", 0, 65535, true);
    if (!to) return tl::unexpected(to.error());
    if (**from > **to) {
      return tl::unexpected(invalid("PortRange: From " + std::to_string(**from) +
                                    " is above To " + std::to_string(**to)));
    }
    entry.port_range = model::PortRange{**from, **to};
  }
  auto icmp = optionalStructure(params, "IcmpTypeCode", false);
  if (!icmp) return tl::unexpected(icmp.error());
  if (icmp->is_null() && family == IpFamily::kV6 &&
      (entry.protocol == model::kProtoIcmp || entry.protocol == model::kProtoIcmpv6)) {
    return apiError("MissingParameter",
                    "The request must contain the parameter IcmpTypeCode (protocol " +
                        protocolName(entry.protocol) + " with an IPv6 CIDR block)");
  }
  if (!icmp->is_null() && (entry.protocol == model::kProtoIcmp ||
                           entry.protocol == model::kProtoIcmpv6)) {
    auto type = boundedInt(*icmp, "Type", -1, 255, false);
    if (!type) return tl::unexpected(type.error());
    auto code = boundedInt(*icmp, "Code", -1, 255, false);
    if (!code) return tl::unexpected(code.error());
    entry.icmp_type_code = model::IcmpTypeCode{type->value_or(-1), code->value_or(-1)};
  }
  return entry;
}

std::vector<model::NetworkAclEntry>::iterator findEntry(model::NetworkAcl& acl, EntryKey key) {
  return std::find_if(acl.entries.begin(), acl.entries.end(), [&](const auto& e) {
    return e.rule_number == key.rule_number && e.egress == key.egress;
  });
}

std::string entryName(EntryKey key) {
  return std::to_string(key.rule_number) + (key.egress ? " (egress)" : " (ingress)");
}

ApiResult<std::vector<Permission>> onAcl(const model::Policy& policy, std::string_view action,
                                         const Json& params) {
  auto id = existingAcl(policy, params);
  if (!id) return tl::unexpected(id.error());
  return std::vector<Permission>{
      {actionName(action), resourceArn(policy.vpc, "network-acl", *id)}};
}

enum class EntryChange { kCreate, kReplace, kDelete };

ActionSpec changeEntry(std::string name, EntryChange change) {
  ActionSpec spec;
  spec.name = name;
  spec.mutating = true;
  spec.permissions = [name](const model::Policy& policy, const Json& params) {
    return onAcl(policy, name, params);
  };
  spec.run = [change](const model::Policy& policy, const Json& params,
                      const ActionContext&) -> ApiResult<ActionOutcome> {
    auto id = existingAcl(policy, params);
    if (!id) return tl::unexpected(id.error());
    model::Policy next = policy;
    model::NetworkAcl& acl = *findById(next.network_acls, *id);
    auto key = entryKey(params);
    if (!key) return tl::unexpected(key.error());
    const auto existing = findEntry(acl, *key);
    if (change == EntryChange::kCreate && existing != acl.entries.end()) {
      return apiError("NetworkAclEntryAlreadyExists", "The network acl entry identified by " +
                                                          entryName(*key) + " already exists in " +
                                                          acl.id);
    }
    if (change != EntryChange::kCreate && existing == acl.entries.end()) {
      return apiError("InvalidNetworkAclEntry.NotFound", "The network acl entry identified by " +
                                                             entryName(*key) +
                                                             " does not exist in " + acl.id);
    }
    if (change == EntryChange::kDelete) {
      acl.entries.erase(existing);
    } else {
      auto entry = parseEntry(params);
      if (!entry) return tl::unexpected(entry.error());
      if (change == EntryChange::kReplace) {
        *existing = std::move(*entry);
      } else {
        acl.entries.push_back(std::move(*entry));
      }
    }
    ActionOutcome outcome;
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

ActionSpec describeNetworkAcls() {
  ActionSpec spec;
  spec.name = "DescribeNetworkAcls";
  spec.permissions = [](const model::Policy&, const Json&) -> ApiResult<std::vector<Permission>> {
    return std::vector<Permission>{{actionName("DescribeNetworkAcls"), "*"}};
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext&) -> ApiResult<ActionOutcome> {
    auto acls = describeSelected(
        params, "NetworkAclIds", policy.network_acls,
        {{"network-acl-id", "NetworkAclId"},
         {"vpc-id", "VpcId"},
         {"default", "IsDefault"},
         {"owner-id", "OwnerId"}},
        [&](const model::NetworkAcl& acl) { return describeNetworkAcl(policy, acl); },
        [](const std::string& id) { return networkAclNotFound(id); });
    if (!acls) return tl::unexpected(acls.error());
    ActionOutcome outcome;
    outcome.result = {{"NetworkAcls", std::move(*acls)}};
    return outcome;
  };
  return spec;
}

ApiResult<void> checkVpc(const model::Policy& policy, const Json& params) {
  auto vpc = requiredString(params, "VpcId");
  if (!vpc) return tl::unexpected(vpc.error());
  if (*vpc != policy.vpc.id) return tl::unexpected(vpcNotFound(*vpc));
  return {};
}

ActionSpec createNetworkAcl() {
  ActionSpec spec;
  spec.name = "CreateNetworkAcl";
  spec.mutating = true;
  spec.permissions = [](const model::Policy& policy,
                        const Json& params) -> ApiResult<std::vector<Permission>> {
    if (auto ok = checkVpc(policy, params); !ok) return tl::unexpected(ok.error());
    const std::string action = actionName("CreateNetworkAcl");
    return std::vector<Permission>{{action, resourceArn(policy.vpc, "network-acl", "*")},
                                   {action, resourceArn(policy.vpc, "vpc", policy.vpc.id)}};
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext& context) -> ApiResult<ActionOutcome> {
    if (auto ok = checkVpc(policy, params); !ok) return tl::unexpected(ok.error());
    if (!context.new_id) return apiError("InternalError", "no id generator");
    model::NetworkAcl acl;  // no entries: a new custom NACL denies everything, as in AWS
    acl.id = context.new_id("acl");
    acl.location = apiLocation();
    model::Policy next = policy;
    next.network_acls.push_back(acl);
    ActionOutcome outcome;
    outcome.result = {{"NetworkAcl", describeNetworkAcl(next, acl)}};
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

ActionSpec deleteNetworkAcl() {
  ActionSpec spec;
  spec.name = "DeleteNetworkAcl";
  spec.mutating = true;
  spec.permissions = [](const model::Policy& policy, const Json& params) {
    return onAcl(policy, "DeleteNetworkAcl", params);
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext&) -> ApiResult<ActionOutcome> {
    auto id = existingAcl(policy, params);
    if (!id) return tl::unexpected(id.error());
    if (findById(policy.network_acls, *id)->is_default) {
      return tl::unexpected(invalid("cannot delete default network ACL " + *id));
    }
    for (const auto& subnet : policy.subnets) {
      if (subnet.network_acl_id == *id) {
        return apiError("DependencyViolation", "The networkAcl '" + *id +
                                                   "' has dependencies and cannot be deleted "
                                                   "(associated with " + subnet.id + ")");
      }
    }
    model::Policy next = policy;
    std::erase_if(next.network_acls, [&](const auto& a) { return a.id == *id; });
    ActionOutcome outcome;
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

// The subnet an association id names.
ApiResult<std::string> associatedSubnet(const model::Policy& policy, const Json& params) {
  auto association = requiredString(params, "AssociationId");
  if (!association) return tl::unexpected(association.error());
  for (const auto& subnet : policy.subnets) {
    if (networkAclAssociationId(subnet.id) == *association) return subnet.id;
  }
  return apiError("InvalidAssociationID.NotFound",
                  "The association ID '" + *association + "' does not exist");
}

ActionSpec replaceNetworkAclAssociation() {
  ActionSpec spec;
  spec.name = "ReplaceNetworkAclAssociation";
  spec.mutating = true;
  spec.permissions = [](const model::Policy& policy,
                        const Json& params) -> ApiResult<std::vector<Permission>> {
    auto subnet = associatedSubnet(policy, params);
    if (!subnet) return tl::unexpected(subnet.error());
    auto acl = existingAcl(policy, params);
    if (!acl) return tl::unexpected(acl.error());
    const std::string action = actionName("ReplaceNetworkAclAssociation");
    return std::vector<Permission>{{action, resourceArn(policy.vpc, "network-acl", *acl)},
                                   {action, resourceArn(policy.vpc, "subnet", *subnet)}};
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext&) -> ApiResult<ActionOutcome> {
    auto subnet_id = associatedSubnet(policy, params);
    if (!subnet_id) return tl::unexpected(subnet_id.error());
    auto acl = existingAcl(policy, params);
    if (!acl) return tl::unexpected(acl.error());
    model::Policy next = policy;
    findById(next.subnets, *subnet_id)->network_acl_id = *acl;
    ActionOutcome outcome;
    outcome.result = {{"NewAssociationId", networkAclAssociationId(*subnet_id)}};
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

}  // namespace

std::vector<ActionSpec> networkAclActions() {
  std::vector<ActionSpec> actions;
  actions.push_back(describeNetworkAcls());
  actions.push_back(createNetworkAcl());
  actions.push_back(deleteNetworkAcl());
  actions.push_back(changeEntry("CreateNetworkAclEntry", EntryChange::kCreate));
  actions.push_back(changeEntry("ReplaceNetworkAclEntry", EntryChange::kReplace));
  actions.push_back(changeEntry("DeleteNetworkAclEntry", EntryChange::kDelete));
  actions.push_back(replaceNetworkAclAssociation());
  return actions;
}

}  // namespace vpcguard::api
