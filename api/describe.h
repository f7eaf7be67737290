#pragma once
// Internal to api/: model objects in the JSON shapes of AWS's EC2 Describe* results (what
// `aws ec2 describe-... --output json` prints), plus the lookups and rule helpers the action
// families share (actions_sg.cpp, actions_nacl.cpp, actions_eni.cpp).
//
// The shapes are exactly what daemon/import_aws.cpp reads, so describe output fed to
// `vpcguardctl import-aws` gives back the same policy (tests/unit/api_actions_test.cpp checks the
// round trip). Where AWS needs a second call for something import-aws reads from the object
// itself, the object carries it (a prefix list's "Entries"); docs/api-actions.md lists these.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/params.h"
#include "translator/model.h"

namespace vpcguard::api {

// Where objects made through the API come from (the config loader puts file:line:col here).
[[nodiscard]] model::SourceLocation apiLocation();

// --- lookups ------------------------------------------------------------------------------------

template <typename T>
[[nodiscard]] const T* findById(const std::vector<T>& objects, std::string_view id) {
  for (const T& o : objects) {
    if (o.id == id) return &o;
  }
  return nullptr;
}
template <typename T>
[[nodiscard]] T* findById(std::vector<T>& objects, std::string_view id) {
  for (T& o : objects) {
    if (o.id == id) return &o;
  }
  return nullptr;
}

// AWS's not-found errors ("InvalidGroup.NotFound: The security group 'sg-x' does not exist").
[[nodiscard]] ApiError groupNotFound(std::string_view id_or_name);
[[nodiscard]] ApiError networkAclNotFound(std::string_view id);
[[nodiscard]] ApiError interfaceNotFound(std::string_view id);
[[nodiscard]] ApiError subnetNotFound(std::string_view id);
[[nodiscard]] ApiError vpcNotFound(std::string_view id);
[[nodiscard]] ApiError prefixListNotFound(std::string_view id);

// --- protocols ----------------------------------------------------------------------------------

// Security groups name protocols ("-1", "tcp", "udp", "icmp", "icmpv6", else the number).
[[nodiscard]] std::string securityGroupProtocol(int protocol);
// Network ACLs number them ("-1", "6", ...).
[[nodiscard]] std::string networkAclProtocol(int protocol);
// What requests may say: a name (tcp, udp, icmp, icmpv6), "-1" or "all", or a number 0..255
// (as text or a JSON number). nullopt when it is none of these.
[[nodiscard]] std::optional<int> parseProtocol(const Json& value);

// --- security group rules -----------------------------------------------------------------------

// The rule as the comparisons and ids see it: tcp/udp always with ports (absent = 0-65535),
// icmp/icmpv6 always with a type/code (absent = -1/-1), other protocols with neither. Two rules
// that say the same compare equal after this, however they were written.
[[nodiscard]] model::SecurityGroupRule normalizedRule(const model::SecurityGroupRule& rule);
// Same protocol, ports/type/code and peer (not the description): AWS's notion of a duplicate.
[[nodiscard]] bool sameRule(const model::SecurityGroupRule& a, const model::SecurityGroupRule& b);
// "sgr-" + 17 hex digits: a hash of the group, the direction and what the rule says, so a rule
// keeps its id across restarts and describes without the model storing one.
[[nodiscard]] std::string securityGroupRuleId(std::string_view group_id, bool egress,
                                              const model::SecurityGroupRule& rule);

// --- describe shapes ----------------------------------------------------------------------------

[[nodiscard]] Json describeVpc(const model::Vpc& vpc);
[[nodiscard]] Json describeSubnet(const model::Vpc& vpc, const model::Subnet& subnet);
// IpPermissions / IpPermissionsEgress: one entry per (protocol, ports) with its peers grouped.
[[nodiscard]] Json ipPermissions(const model::Vpc& vpc,
                                 const std::vector<model::SecurityGroupRule>& rules);
[[nodiscard]] Json describeSecurityGroup(const model::Vpc& vpc, const model::SecurityGroup& group);
// One entry of AuthorizeSecurityGroup*'s SecurityGroupRules (describe-security-group-rules).
[[nodiscard]] Json describeSecurityGroupRule(const model::Vpc& vpc, std::string_view group_id,
                                             bool egress, const model::SecurityGroupRule& rule);
// A subnet's association id. AWS issues a fresh "aclassoc-..." id on every association change;
// here it is derived from the subnet, so it stays the same (docs/api-actions.md).
[[nodiscard]] std::string networkAclAssociationId(std::string_view subnet_id);
// Entries include the final `*` deny rules as AWS lists them (32767 IPv4; 32768 IPv6 when the
// VPC has IPv6).
[[nodiscard]] Json describeNetworkAcl(const model::Policy& policy, const model::NetworkAcl& acl);
[[nodiscard]] Json describeNetworkInterface(const model::Policy& policy,
                                            const model::NetworkInterface& eni);
// Carries "Entries": [{"Cidr": ...}] (AWS needs get-managed-prefix-list-entries for them).
[[nodiscard]] Json describePrefixList(const model::Vpc& vpc, const model::PrefixList& list);

// --- Describe* parameters -----------------------------------------------------------------------

// Which AWS filter names a Describe* action understands, and the described object's key each
// one matches (exact match against any of the filter's Values; booleans as "true"/"false").
struct FilterKey {
  std::string_view filter;  // "vpc-id"
  std::string_view key;     // "VpcId"
};

// The objects a Describe* call returns: those named by `ids_param` (all when absent; one that
// does not exist is `not_found`), described by `describe`, then narrowed by "Filters".
template <typename T, typename Describe, typename NotFound>
[[nodiscard]] ApiResult<Json> describeSelected(const Json& params, std::string_view ids_param,
                                               const std::vector<T>& objects,
                                               const std::vector<FilterKey>& filters,
                                               Describe describe, NotFound not_found);

// Applies the request's "Filters" ([{"Name": ..., "Values": [...]}]) to described objects.
[[nodiscard]] ApiResult<Json> applyFilters(const Json& params, Json described,
                                           const std::vector<FilterKey>& filters);

template <typename T, typename Describe, typename NotFound>
ApiResult<Json> describeSelected(const Json& params, std::string_view ids_param,
                                 const std::vector<T>& objects,
                                 const std::vector<FilterKey>& filters, Describe describe,
                                 NotFound not_found) {
  auto ids = stringList(params, ids_param);
  if (!ids) return tl::unexpected(ids.error());
  for (const std::string& id : *ids) {
    if (findById(objects, id) == nullptr) return tl::unexpected(not_found(id));
  }
  Json out = Json::array();
  for (const T& o : objects) {
    bool wanted = ids->empty();
    for (const std::string& id : *ids) wanted = wanted || id == o.id;
    if (wanted) out.push_back(describe(o));
  }
  return applyFilters(params, std::move(out), filters);
}

}  // namespace vpcguard::api
