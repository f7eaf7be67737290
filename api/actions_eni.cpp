// VPC, subnet, interface and prefix list actions: DescribeVpcs, DescribeSubnets,
// DescribeNetworkInterfaces, DescribeManagedPrefixLists, ModifyNetworkInterfaceAttribute
// (docs/api-actions.md). Only interfaces change through the API: which groups they are in, the
// source/destination check and connection tracking timeouts (the attributes AWS lets
// ModifyNetworkInterfaceAttribute change that vpcguard models); one attribute per call, as AWS.

#include <algorithm>

#include "api/action_registry.h"
#include "api/describe.h"

namespace vpcguard::api {
namespace {

std::string actionName(std::string_view name) { return "ec2:" + std::string(name); }

ApiResult<std::vector<Permission>> anyResource(std::string_view action) {
  return std::vector<Permission>{{actionName(action), "*"}};
}

template <typename Select>
ActionSpec describeAction(std::string name, Select select) {
  ActionSpec spec;
  spec.name = name;
  spec.permissions = [name](const model::Policy&, const Json&) { return anyResource(name); };
  spec.run = [select](const model::Policy& policy, const Json& params,
                      const ActionContext&) -> ApiResult<ActionOutcome> {
    auto result = select(policy, params);
    if (!result) return tl::unexpected(result.error());
    ActionOutcome outcome;
    outcome.result = std::move(*result);
    return outcome;
  };
  return spec;
}

ActionSpec describeVpcs() {
  return describeAction("DescribeVpcs", [](const model::Policy& policy,
                                           const Json& params) -> ApiResult<Json> {
    const std::vector<model::Vpc> vpcs = {policy.vpc};
    auto out = describeSelected(params, "VpcIds", vpcs,
                                {{"vpc-id", "VpcId"}, {"owner-id", "OwnerId"},
                                 {"cidr", "CidrBlock"}, {"state", "State"}},
                                [](const model::Vpc& vpc) { return describeVpc(vpc); },
                                [](const std::string& id) { return vpcNotFound(id); });
    if (!out) return tl::unexpected(out.error());
    return Json{{"Vpcs", std::move(*out)}};
  });
}

ActionSpec describeSubnets() {
  return describeAction("DescribeSubnets", [](const model::Policy& policy,
                                              const Json& params) -> ApiResult<Json> {
    auto out = describeSelected(
        params, "SubnetIds", policy.subnets,
        {{"subnet-id", "SubnetId"}, {"vpc-id", "VpcId"}, {"cidr-block", "CidrBlock"},
         {"owner-id", "OwnerId"}, {"state", "State"}},
        [&](const model::Subnet& subnet) { return describeSubnet(policy.vpc, subnet); },
        [](const std::string& id) { return subnetNotFound(id); });
    if (!out) return tl::unexpected(out.error());
    return Json{{"Subnets", std::move(*out)}};
  });
}

ActionSpec describeNetworkInterfaces() {
  return describeAction("DescribeNetworkInterfaces", [](const model::Policy& policy,
                                                        const Json& params) -> ApiResult<Json> {
    auto out = describeSelected(
        params, "NetworkInterfaceIds", policy.network_interfaces,
        {{"network-interface-id", "NetworkInterfaceId"}, {"subnet-id", "SubnetId"},
         {"vpc-id", "VpcId"}, {"mac-address", "MacAddress"},
         {"private-ip-address", "PrivateIpAddress"}, {"owner-id", "OwnerId"},
         {"source-dest-check", "SourceDestCheck"}},
        [&](const model::NetworkInterface& eni) { return describeNetworkInterface(policy, eni); },
        [](const std::string& id) { return interfaceNotFound(id); });
    if (!out) return tl::unexpected(out.error());
    return Json{{"NetworkInterfaces", std::move(*out)}};
  });
}

ActionSpec describeManagedPrefixLists() {
  return describeAction("DescribeManagedPrefixLists", [](const model::Policy& policy,
                                                         const Json& params) -> ApiResult<Json> {
    auto out = describeSelected(
        params, "PrefixListIds", policy.prefix_lists,
        {{"prefix-list-id", "PrefixListId"}, {"prefix-list-name", "PrefixListName"},
         {"owner-id", "OwnerId"}},
        [&](const model::PrefixList& list) { return describePrefixList(policy.vpc, list); },
        [](const std::string& id) { return prefixListNotFound(id); });
    if (!out) return tl::unexpected(out.error());
    return Json{{"PrefixLists", std::move(*out)}};
  });
}

// The attributes ModifyNetworkInterfaceAttribute may change here. AWS's others (Description,
// Attachment, EnaSrdSpecification, ...) have no meaning in vpcguard and are refused by name.
constexpr std::string_view kAttributes[] = {"Groups", "SourceDestCheck",
                                            "ConnectionTrackingSpecification"};
constexpr std::string_view kUnsupportedAttributes[] = {
    "Description", "Attachment", "EnaSrdSpecification", "EnablePrimaryIpv6",
    "AssociatePublicIpAddress", "AssociatedSubnetIds"};

bool given(const Json& params, std::string_view name) {
  const auto it = params.find(std::string(name));
  return it != params.end() && !it->is_null();
}

struct Modification {
  std::string interface_id;
  std::string attribute;  // one of kAttributes
  std::vector<std::string> groups;
};

ApiResult<Modification> parseModification(const model::Policy& policy, const Json& params) {
  auto id = requiredString(params, "NetworkInterfaceId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.network_interfaces, *id) == nullptr) {
    return tl::unexpected(interfaceNotFound(*id));
  }
  for (const std::string_view name : kUnsupportedAttributes) {
    if (given(params, name)) {
      return apiError("InvalidParameterValue",
                      "attribute " + std::string(name) +
                          " cannot be modified here: vpcguard models only Groups, "
                          "SourceDestCheck and ConnectionTrackingSpecification");
    }
  }
  Modification m;
  m.interface_id = *id;
  std::vector<std::string> named;
  for (const std::string_view name : kAttributes) {
    if (given(params, name)) named.emplace_back(name);
  }
  if (named.empty()) {
    return apiError("MissingParameter",
                    "The request must contain exactly one attribute to modify: Groups, "
                    "SourceDestCheck or ConnectionTrackingSpecification");
  }
  if (named.size() > 1) {
    return apiError("InvalidParameterCombination",
                    "Fields for multiple attribute types specified: " + named[0] + ", " +
                        named[1]);
  }
  m.attribute = named[0];
  if (m.attribute == "Groups") {
    auto groups = stringList(params, "Groups", true);
    if (!groups) return tl::unexpected(groups.error());
    for (const std::string& group : *groups) {
      if (findById(policy.security_groups, group) == nullptr) {
        return tl::unexpected(groupNotFound(group));
      }
    }
    m.groups = std::move(*groups);
  }
  return m;
}

ActionSpec modifyNetworkInterfaceAttribute() {
  ActionSpec spec;
  spec.name = "ModifyNetworkInterfaceAttribute";
  spec.mutating = true;
  spec.permissions = [](const model::Policy& policy,
                        const Json& params) -> ApiResult<std::vector<Permission>> {
    auto m = parseModification(policy, params);
    if (!m) return tl::unexpected(m.error());
    const std::string action = actionName("ModifyNetworkInterfaceAttribute");
    // Putting an interface in a group needs the right on the group too, as in AWS: that is
    // what lets an instance operator attach only the groups a network admin allows.
    std::vector<Permission> out{
        {action, resourceArn(policy.vpc, "network-interface", m->interface_id)}};
    for (const std::string& group : m->groups) {
      out.push_back({action, resourceArn(policy.vpc, "security-group", group)});
    }
    // Source/dest check and connection tracking change what the VPC lets an interface send
    // (spoofing, state lifetimes): they also need the right on the VPC, so a role that may only
    // attach groups to interfaces (instance-operator) cannot turn the check off.
    if (m->attribute != "Groups") {
      out.push_back({action, resourceArn(policy.vpc, "vpc", policy.vpc.id)});
    }
    return out;
  };
  spec.run = [](const model::Policy& policy, const Json& params,
                const ActionContext&) -> ApiResult<ActionOutcome> {
    auto m = parseModification(policy, params);
    if (!m) return tl::unexpected(m.error());
    model::Policy next = policy;
    model::NetworkInterface& eni = *findById(next.network_interfaces, m->interface_id);
    if (m->attribute == "Groups") {
      eni.security_group_ids = m->groups;
    } else if (m->attribute == "SourceDestCheck") {
      auto value = optionalBool(params, "SourceDestCheck");
      if (!value) return tl::unexpected(value.error());
      if (!*value) {
        return apiError("MissingParameter",
                        "The request must contain the parameter SourceDestCheck.Value");
      }
      eni.source_dest_check = **value;
    } else {
      auto spec_value = optionalStructure(params, "ConnectionTrackingSpecification", false);
      if (!spec_value) return tl::unexpected(spec_value.error());
      for (const auto& [key, field] :
           {std::pair("TcpEstablishedTimeout", &model::ConnectionTracking::tcp_established_timeout),
            std::pair("UdpTimeout", &model::ConnectionTracking::udp_timeout),
            std::pair("UdpStreamTimeout", &model::ConnectionTracking::udp_stream_timeout)}) {
        auto seconds = optionalInt(*spec_value, key);
        if (!seconds) return tl::unexpected(seconds.error());
        if (!*seconds) continue;
        if (**seconds < 0 || **seconds > 10'000'000) {
          return apiError("InvalidParameterValue", "Value (" + std::to_string(**seconds) +
                                                       ") for parameter " + key +
                                                       " is invalid. Expected seconds");
        }
        eni.connection_tracking.*field = static_cast<int>(**seconds);
      }
    }
    ActionOutcome outcome;
    outcome.policy = std::move(next);
    return outcome;
  };
  return spec;
}

}  // namespace

std::vector<ActionSpec> interfaceActions() {
  std::vector<ActionSpec> actions;
  actions.push_back(describeVpcs());
  actions.push_back(describeSubnets());
  actions.push_back(describeNetworkInterfaces());
  actions.push_back(describeManagedPrefixLists());
  actions.push_back(modifyNetworkInterfaceAttribute());
  return actions;
}

}  // namespace vpcguard::api
