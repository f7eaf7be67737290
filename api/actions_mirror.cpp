// The traffic-mirror actions (docs/api.md): targets, filters and their rules, sessions, on the
// model's traffic_mirror_* lists.
//
// Design: AWS's shapes and error codes throughout, with two vpcguard additions documented in
// docs/api.md:
//  - a target may be a VXLAN endpoint on the host's underlay (the model's vxlan_remote_ip):
//    CreateTrafficMirrorTarget takes "VxlanRemoteIp" instead of NetworkInterfaceId, and
//    describe shows it with "Type": "vxlan-endpoint" and "VxlanRemoteIp". AWS's load-balancer
//    targets have no local equivalent and are refused, naming VxlanRemoteIp.
//  - the model has no filter-rule ids (a rule is known by its filter, direction and number,
//    which validation keeps unique), so rule ids are derived from those:
//    "tmfr-" + the filter id without "tmf-" + "-" + direction + "-" + rule number, e.g.
//    "tmfr-tcp-ingress-100". They are stable (same rule, same id, across restarts and applies)
//    and DeleteTrafficMirrorFilterRule finds the rule by comparing ids, never by parsing them.
// Describe output holds exactly the keys daemon/import_aws.cpp reads, so interface targets,
// filters and sessions import back to the same objects.
// A target or filter a session uses cannot be deleted (DependencyViolation), as in AWS.

#include <algorithm>
#include <set>

#include "api/action_registry.h"
#include "api/params.h"
#include "translator/defaults.h"

namespace vpcguard::api {
namespace {

const model::SourceLocation kApiLocation{"api", 0, 0};
constexpr uint32_t kVniSpace = 1u << 24;

template <typename T>
T* findById(std::vector<T>& objects, std::string_view id) {
  auto it = std::find_if(objects.begin(), objects.end(), [&](const T& o) { return o.id == id; });
  return it == objects.end() ? nullptr : &*it;
}
template <typename T>
const T* findById(const std::vector<T>& objects, std::string_view id) {
  auto it = std::find_if(objects.begin(), objects.end(), [&](const T& o) { return o.id == id; });
  return it == objects.end() ? nullptr : &*it;
}

ApiResult<std::optional<std::string>> readToken(const Json& params) {
  return optionalString(params, "ClientToken");
}

void addToken(Json& result, const std::optional<std::string>& token) {
  if (token) result["ClientToken"] = *token;
}

tl::unexpected<ApiError> targetNotFound(const std::string& id) {
  return apiError("InvalidTrafficMirrorTargetId.NotFound",
                  "The traffic mirror target '" + id + "' does not exist");
}
tl::unexpected<ApiError> filterNotFound(const std::string& id) {
  return apiError("InvalidTrafficMirrorFilterId.NotFound",
                  "The traffic mirror filter '" + id + "' does not exist");
}
tl::unexpected<ApiError> sessionNotFound(const std::string& id) {
  return apiError("InvalidTrafficMirrorSessionId.NotFound",
                  "The traffic mirror session '" + id + "' does not exist");
}
tl::unexpected<ApiError> interfaceNotFound(const std::string& id) {
  return apiError("InvalidNetworkInterfaceID.NotFound",
                  "The network interface '" + id + "' does not exist");
}

bool hasInterface(const model::Policy& policy, const std::string& id) {
  return findById(policy.network_interfaces, id) != nullptr;
}

// --- describe shapes (what import_aws reads) -------------------------------------------------

Json describeTarget(const model::Policy& policy, const model::TrafficMirrorTarget& t) {
  Json out = {{"TrafficMirrorTargetId", t.id}, {"OwnerId", policy.vpc.account_id}};
  if (t.network_interface_id) {
    out["NetworkInterfaceId"] = *t.network_interface_id;
    out["Type"] = "network-interface";
  } else if (t.vxlan_remote_ip) {
    out["Type"] = "vxlan-endpoint";
    out["VxlanRemoteIp"] = t.vxlan_remote_ip->toString();
  }
  out["Description"] = t.description;
  return out;
}

Json portRange(const model::PortRange& r) {
  return Json{{"FromPort", r.from}, {"ToPort", r.to}};
}

Json describeRule(const model::TrafficMirrorFilter& filter, const model::TrafficMirrorFilterRule& r,
                  bool egress);

Json describeFilter(const model::TrafficMirrorFilter& f) {
  Json out = {{"TrafficMirrorFilterId", f.id}};
  for (const bool egress : {false, true}) {
    Json rules = Json::array();
    for (const auto& r : egress ? f.egress_rules : f.ingress_rules) {
      rules.push_back(describeRule(f, r, egress));
    }
    out[egress ? "EgressFilterRules" : "IngressFilterRules"] = std::move(rules);
  }
  out["NetworkServices"] = f.network_services;
  out["Description"] = f.description;
  return out;
}

Json describeSession(const model::Policy& policy, const model::TrafficMirrorSession& s) {
  Json out = {{"TrafficMirrorSessionId", s.id},
              {"TrafficMirrorTargetId", s.traffic_mirror_target_id},
              {"TrafficMirrorFilterId", s.traffic_mirror_filter_id},
              {"NetworkInterfaceId", s.network_interface_id},
              {"OwnerId", policy.vpc.account_id},
              {"SessionNumber", s.session_number}};
  if (s.packet_length) out["PacketLength"] = *s.packet_length;
  if (s.virtual_network_id) out["VirtualNetworkId"] = *s.virtual_network_id;
  out["Description"] = s.description;
  return out;
}

std::string trafficMirrorFilterRuleId(std::string_view filter_id, bool egress, int rule_number) {
  std::string_view suffix = filter_id;
  if (suffix.starts_with("tmf-")) suffix.remove_prefix(4);
  std::string id = "tmfr-";
  id += suffix;
  id += egress ? "-egress-" : "-ingress-";
  id += std::to_string(rule_number);
  return id;
}

Json describeRule(const model::TrafficMirrorFilter& filter, const model::TrafficMirrorFilterRule& r,
                  bool egress) {
  Json out = {{"TrafficMirrorFilterRuleId",
               trafficMirrorFilterRuleId(filter.id, egress, r.rule_number)},
              {"TrafficMirrorFilterId", filter.id},
              {"TrafficDirection", egress ? "egress" : "ingress"},
              {"RuleNumber", r.rule_number},
              {"RuleAction", r.accept ? "accept" : "reject"}};
  // AWS leaves Protocol out when the rule matches every protocol.
  if (r.protocol != model::kProtoAll) out["Protocol"] = r.protocol;
  if (r.destination_port_range) out["DestinationPortRange"] = portRange(*r.destination_port_range);
  if (r.source_port_range) out["SourcePortRange"] = portRange(*r.source_port_range);
  out["DestinationCidrBlock"] = r.destination_cidr_block.toString();
  out["SourceCidrBlock"] = r.source_cidr_block.toString();
  out["Description"] = r.description;
  return out;
}

// A Describe*'s id list: every id must exist (as AWS's describe calls with ids), then the
// objects in id order.
template <typename T>
ApiResult<std::vector<const T*>> selectById(const std::vector<T>& objects, const Json& params,
                                            std::string_view key,
                                            tl::unexpected<ApiError> (*not_found)(const std::string&)) {
  auto ids = stringList(params, key);
  if (!ids) return tl::unexpected(ids.error());
  for (const std::string& id : *ids) {
    if (findById(objects, id) == nullptr) return not_found(id);
  }
  const std::set<std::string> wanted(ids->begin(), ids->end());
  std::vector<const T*> out;
  for (const T& o : objects) {
    if (wanted.empty() || wanted.count(o.id) > 0) out.push_back(&o);
  }
  std::sort(out.begin(), out.end(), [](const T* a, const T* b) { return a->id < b->id; });
  return out;
}

std::vector<Permission> describeOnly(std::string action) {
  return {{std::move(action), "*"}};
}

// --- targets ---------------------------------------------------------------------------------

struct TargetRequest {
  std::optional<std::string> network_interface_id;
  std::optional<IpAddress> vxlan_remote_ip;
  std::string description;
  std::optional<std::string> client_token;
};

ApiResult<TargetRequest> readTarget(const Json& params) {
  TargetRequest r;
  for (const char* key : {"NetworkLoadBalancerArn", "GatewayLoadBalancerEndpointId"}) {
    auto v = optionalString(params, key);
    if (!v) return tl::unexpected(v.error());
    if (*v) {
      return apiError("InvalidParameterValue",
                      std::string(key) + " names an AWS load balancer, which has no local "
                                         "equivalent: give NetworkInterfaceId or VxlanRemoteIp "
                                         "(the IPv4 address of the appliance behind it)");
    }
  }
  auto eni = optionalString(params, "NetworkInterfaceId");
  if (!eni) return tl::unexpected(eni.error());
  auto remote = optionalString(params, "VxlanRemoteIp");
  if (!remote) return tl::unexpected(remote.error());
  if (*eni && *remote) {
    return apiError("InvalidParameterCombination",
                    "Give one of NetworkInterfaceId and VxlanRemoteIp, not both");
  }
  if (!*eni && !*remote) {
    return apiError("MissingParameter",
                    "The request must contain the parameter NetworkInterfaceId or VxlanRemoteIp");
  }
  r.network_interface_id = *eni;
  if (*remote) {
    auto ip = IpAddress::parse(**remote);
    if (!ip) {
      return apiError("InvalidParameterValue", "Value (" + **remote +
                                                   ") for parameter VxlanRemoteIp is invalid. "
                                                   "Expected an IPv4 address");
    }
    r.vxlan_remote_ip = *ip;
  }
  auto description = optionalString(params, "Description");
  if (!description) return tl::unexpected(description.error());
  r.description = description->value_or("");
  auto token = readToken(params);
  if (!token) return tl::unexpected(token.error());
  r.client_token = *token;
  return r;
}

ApiResult<std::vector<Permission>> createTargetPermissions(const model::Policy& policy,
                                                           const Json& params) {
  auto r = readTarget(params);
  if (!r) return tl::unexpected(r.error());
  std::vector<Permission> needed{{"ec2:CreateTrafficMirrorTarget",
                                  resourceArn(policy.vpc, "traffic-mirror-target", "*")}};
  if (r->network_interface_id) {
    needed.push_back({"ec2:CreateTrafficMirrorTarget",
                      resourceArn(policy.vpc, "network-interface", *r->network_interface_id)});
  }
  return needed;
}

ApiResult<ActionOutcome> createTargetRun(const model::Policy& policy, const Json& params,
                                         const ActionContext& context) {
  auto r = readTarget(params);
  if (!r) return tl::unexpected(r.error());
  if (r->network_interface_id && !hasInterface(policy, *r->network_interface_id)) {
    return interfaceNotFound(*r->network_interface_id);
  }
  model::TrafficMirrorTarget t;
  t.id = context.new_id("tmt");
  t.network_interface_id = r->network_interface_id;
  t.vxlan_remote_ip = r->vxlan_remote_ip;
  t.description = r->description;
  t.location = kApiLocation;
  ActionOutcome outcome;
  outcome.result["TrafficMirrorTarget"] = describeTarget(policy, t);
  addToken(outcome.result, r->client_token);
  outcome.policy = policy;
  outcome.policy->traffic_mirror_targets.push_back(std::move(t));
  return outcome;
}

ApiResult<std::vector<Permission>> deleteTargetPermissions(const model::Policy& policy,
                                                           const Json& params) {
  auto id = requiredString(params, "TrafficMirrorTargetId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.traffic_mirror_targets, *id) == nullptr) return targetNotFound(*id);
  return std::vector<Permission>{{"ec2:DeleteTrafficMirrorTarget",
                                  resourceArn(policy.vpc, "traffic-mirror-target", *id)}};
}

ApiResult<ActionOutcome> deleteTargetRun(const model::Policy& policy, const Json& params,
                                         const ActionContext& /*context*/) {
  auto id = requiredString(params, "TrafficMirrorTargetId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.traffic_mirror_targets, *id) == nullptr) return targetNotFound(*id);
  for (const auto& s : policy.traffic_mirror_sessions) {
    if (s.traffic_mirror_target_id == *id) {
      return apiError("DependencyViolation", "The traffic mirror target '" + *id +
                                                 "' is used by traffic mirror session '" + s.id +
                                                 "'");
    }
  }
  ActionOutcome outcome;
  outcome.policy = policy;
  std::erase_if(outcome.policy->traffic_mirror_targets,
                [&](const model::TrafficMirrorTarget& t) { return t.id == *id; });
  outcome.result = Json{{"TrafficMirrorTargetId", *id}};
  return outcome;
}

ApiResult<std::vector<Permission>> describeTargetsPermissions(const model::Policy& policy,
                                                              const Json& params) {
  auto selected = selectById(policy.traffic_mirror_targets, params, "TrafficMirrorTargetIds",
                             targetNotFound);
  if (!selected) return tl::unexpected(selected.error());
  return describeOnly("ec2:DescribeTrafficMirrorTargets");
}

ApiResult<ActionOutcome> describeTargetsRun(const model::Policy& policy, const Json& params,
                                            const ActionContext& /*context*/) {
  auto selected = selectById(policy.traffic_mirror_targets, params, "TrafficMirrorTargetIds",
                             targetNotFound);
  if (!selected) return tl::unexpected(selected.error());
  Json list = Json::array();
  for (const auto* t : *selected) list.push_back(describeTarget(policy, *t));
  ActionOutcome outcome;
  outcome.result = Json{{"TrafficMirrorTargets", std::move(list)}};
  return outcome;
}

// --- filters ---------------------------------------------------------------------------------

constexpr std::string_view kAmazonDns = "amazon-dns";

ApiResult<std::vector<std::string>> readNetworkServices(const Json& params, std::string_view key) {
  auto services = stringList(params, key);
  if (!services) return tl::unexpected(services.error());
  for (const std::string& s : *services) {
    if (s != kAmazonDns) {
      return apiError("InvalidParameterValue", "Value (" + s + ") for parameter " +
                                                   std::string(key) +
                                                   " is invalid. Expected amazon-dns");
    }
  }
  return services;
}

ApiResult<std::vector<Permission>> createFilterPermissions(const model::Policy& policy,
                                                           const Json& params) {
  if (auto d = optionalString(params, "Description"); !d) return tl::unexpected(d.error());
  return std::vector<Permission>{{"ec2:CreateTrafficMirrorFilter",
                                  resourceArn(policy.vpc, "traffic-mirror-filter", "*")}};
}

ApiResult<ActionOutcome> createFilterRun(const model::Policy& policy, const Json& params,
                                         const ActionContext& context) {
  auto description = optionalString(params, "Description");
  if (!description) return tl::unexpected(description.error());
  auto token = readToken(params);
  if (!token) return tl::unexpected(token.error());
  model::TrafficMirrorFilter f;
  f.id = context.new_id("tmf");
  f.description = description->value_or("");
  f.location = kApiLocation;
  ActionOutcome outcome;
  outcome.result["TrafficMirrorFilter"] = describeFilter(f);
  addToken(outcome.result, *token);
  outcome.policy = policy;
  outcome.policy->traffic_mirror_filters.push_back(std::move(f));
  return outcome;
}

ApiResult<std::vector<Permission>> filterIdPermissions(const model::Policy& policy,
                                                       const Json& params, std::string action) {
  auto id = requiredString(params, "TrafficMirrorFilterId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.traffic_mirror_filters, *id) == nullptr) return filterNotFound(*id);
  return std::vector<Permission>{
      {std::move(action), resourceArn(policy.vpc, "traffic-mirror-filter", *id)}};
}

ApiResult<ActionOutcome> deleteFilterRun(const model::Policy& policy, const Json& params,
                                         const ActionContext& /*context*/) {
  auto id = requiredString(params, "TrafficMirrorFilterId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.traffic_mirror_filters, *id) == nullptr) return filterNotFound(*id);
  for (const auto& s : policy.traffic_mirror_sessions) {
    if (s.traffic_mirror_filter_id == *id) {
      return apiError("DependencyViolation", "The traffic mirror filter '" + *id +
                                                 "' is used by traffic mirror session '" + s.id +
                                                 "'");
    }
  }
  ActionOutcome outcome;
  outcome.policy = policy;
  std::erase_if(outcome.policy->traffic_mirror_filters,
                [&](const model::TrafficMirrorFilter& f) { return f.id == *id; });
  outcome.result = Json{{"TrafficMirrorFilterId", *id}};
  return outcome;
}

ApiResult<ActionOutcome> modifyServicesRun(const model::Policy& policy, const Json& params,
                                           const ActionContext& /*context*/) {
  auto id = requiredString(params, "TrafficMirrorFilterId");
  if (!id) return tl::unexpected(id.error());
  auto add = readNetworkServices(params, "AddNetworkServices");
  if (!add) return tl::unexpected(add.error());
  auto remove = readNetworkServices(params, "RemoveNetworkServices");
  if (!remove) return tl::unexpected(remove.error());
  model::Policy next = policy;
  model::TrafficMirrorFilter* f = findById(next.traffic_mirror_filters, *id);
  if (f == nullptr) return filterNotFound(*id);
  for (const std::string& s : *remove) std::erase(f->network_services, s);
  for (const std::string& s : *add) {
    if (std::find(f->network_services.begin(), f->network_services.end(), s) ==
        f->network_services.end()) {
      f->network_services.push_back(s);
    }
  }
  ActionOutcome outcome;
  outcome.result["TrafficMirrorFilter"] = describeFilter(*f);
  outcome.policy = std::move(next);
  return outcome;
}

ApiResult<std::vector<Permission>> describeFiltersPermissions(const model::Policy& policy,
                                                              const Json& params) {
  auto selected = selectById(policy.traffic_mirror_filters, params, "TrafficMirrorFilterIds",
                             filterNotFound);
  if (!selected) return tl::unexpected(selected.error());
  return describeOnly("ec2:DescribeTrafficMirrorFilters");
}

ApiResult<ActionOutcome> describeFiltersRun(const model::Policy& policy, const Json& params,
                                            const ActionContext& /*context*/) {
  auto selected = selectById(policy.traffic_mirror_filters, params, "TrafficMirrorFilterIds",
                             filterNotFound);
  if (!selected) return tl::unexpected(selected.error());
  Json list = Json::array();
  for (const auto* f : *selected) list.push_back(describeFilter(*f));
  ActionOutcome outcome;
  outcome.result = Json{{"TrafficMirrorFilters", std::move(list)}};
  return outcome;
}

// --- filter rules ----------------------------------------------------------------------------

ApiResult<std::optional<model::PortRange>> readPortRange(const Json& params, std::string_view key) {
  auto range = optionalStructure(params, key, /*array=*/false);
  if (!range) return tl::unexpected(range.error());
  if (range->is_null()) return std::optional<model::PortRange>{};
  auto from = requiredInt(*range, "FromPort");
  if (!from) return tl::unexpected(from.error());
  auto to = requiredInt(*range, "ToPort");
  if (!to) return tl::unexpected(to.error());
  if (*from < 0 || *to > 65535 || *from > *to) {
    return apiError("InvalidParameterValue",
                    "Value (" + std::to_string(*from) + "-" + std::to_string(*to) +
                        ") for parameter " + std::string(key) +
                        " is invalid. Expected FromPort <= ToPort within 0..65535");
  }
  return std::optional<model::PortRange>(
      model::PortRange{static_cast<int>(*from), static_cast<int>(*to)});
}

ApiResult<Cidr> readCidr(const Json& params, std::string_view key) {
  auto text = requiredString(params, key);
  if (!text) return tl::unexpected(text.error());
  auto c = Cidr::parse(*text);
  if (!c) {
    return apiError("InvalidParameterValue", "Value (" + *text + ") for parameter " +
                                                 std::string(key) + " is invalid: " +
                                                 c.error().message);
  }
  return *c;
}

struct RuleRequest {
  std::string filter_id;
  bool egress = false;
  model::TrafficMirrorFilterRule rule;
  std::optional<std::string> client_token;
};

ApiResult<RuleRequest> readRule(const Json& params) {
  RuleRequest r;
  auto filter = requiredString(params, "TrafficMirrorFilterId");
  if (!filter) return tl::unexpected(filter.error());
  r.filter_id = *filter;
  auto direction = requiredString(params, "TrafficDirection");
  if (!direction) return tl::unexpected(direction.error());
  if (*direction != "ingress" && *direction != "egress") {
    return apiError("InvalidParameterValue", "Value (" + *direction +
                                                 ") for parameter TrafficDirection is invalid. "
                                                 "Expected ingress or egress");
  }
  r.egress = *direction == "egress";
  auto number = requiredInt(params, "RuleNumber");
  if (!number) return tl::unexpected(number.error());
  if (*number < 1 || *number > 32766) {
    return apiError("InvalidParameterValue", "Value (" + std::to_string(*number) +
                                                 ") for parameter RuleNumber is invalid. "
                                                 "Expected 1..32766");
  }
  r.rule.rule_number = static_cast<int>(*number);
  auto action = requiredString(params, "RuleAction");
  if (!action) return tl::unexpected(action.error());
  if (*action != "accept" && *action != "reject") {
    return apiError("InvalidParameterValue", "Value (" + *action +
                                                 ") for parameter RuleAction is invalid. "
                                                 "Expected accept or reject");
  }
  r.rule.accept = *action == "accept";
  auto protocol = optionalInt(params, "Protocol");
  if (!protocol) return tl::unexpected(protocol.error());
  if (*protocol && (**protocol < -1 || **protocol > 255)) {
    return apiError("InvalidParameterValue", "Value (" + std::to_string(**protocol) +
                                                 ") for parameter Protocol is invalid. Expected "
                                                 "a protocol number 0..255 (-1: all)");
  }
  r.rule.protocol = protocol->has_value() ? static_cast<int>(**protocol) : model::kProtoAll;
  auto source = readCidr(params, "SourceCidrBlock");
  if (!source) return tl::unexpected(source.error());
  r.rule.source_cidr_block = *source;
  auto destination = readCidr(params, "DestinationCidrBlock");
  if (!destination) return tl::unexpected(destination.error());
  r.rule.destination_cidr_block = *destination;
  auto sports = readPortRange(params, "SourcePortRange");
  if (!sports) return tl::unexpected(sports.error());
  r.rule.source_port_range = *sports;
  auto dports = readPortRange(params, "DestinationPortRange");
  if (!dports) return tl::unexpected(dports.error());
  r.rule.destination_port_range = *dports;
  auto description = optionalString(params, "Description");
  if (!description) return tl::unexpected(description.error());
  r.rule.description = description->value_or("");
  r.rule.location = kApiLocation;
  auto token = readToken(params);
  if (!token) return tl::unexpected(token.error());
  r.client_token = *token;
  return r;
}

ApiResult<std::vector<Permission>> createRulePermissions(const model::Policy& policy,
                                                         const Json& params) {
  auto r = readRule(params);
  if (!r) return tl::unexpected(r.error());
  if (findById(policy.traffic_mirror_filters, r->filter_id) == nullptr) {
    return filterNotFound(r->filter_id);
  }
  return std::vector<Permission>{
      {"ec2:CreateTrafficMirrorFilterRule",
       resourceArn(policy.vpc, "traffic-mirror-filter", r->filter_id)}};
}

ApiResult<ActionOutcome> createRuleRun(const model::Policy& policy, const Json& params,
                                       const ActionContext& /*context*/) {
  auto r = readRule(params);
  if (!r) return tl::unexpected(r.error());
  model::Policy next = policy;
  model::TrafficMirrorFilter* f = findById(next.traffic_mirror_filters, r->filter_id);
  if (f == nullptr) return filterNotFound(r->filter_id);
  // The rule id is derived from the number, so a second rule with the same number would share
  // it: refuse it here with AWS's code rather than leave it to validation.
  auto& rules = r->egress ? f->egress_rules : f->ingress_rules;
  if (std::any_of(rules.begin(), rules.end(), [&](const model::TrafficMirrorFilterRule& o) {
        return o.rule_number == r->rule.rule_number;
      })) {
    return apiError("TrafficMirrorFilterRuleAlreadyExists",
                    "The traffic mirror filter '" + f->id + "' already has an " +
                        (r->egress ? "egress" : "ingress") + " rule number " +
                        std::to_string(r->rule.rule_number));
  }
  rules.push_back(r->rule);
  std::stable_sort(rules.begin(), rules.end(), [](const auto& a, const auto& b) {
    return a.rule_number < b.rule_number;
  });
  ActionOutcome outcome;
  outcome.result["TrafficMirrorFilterRule"] = describeRule(*f, r->rule, r->egress);
  addToken(outcome.result, r->client_token);
  outcome.policy = std::move(next);
  return outcome;
}

// The filter and direction holding the rule with this id.
struct RuleLocation {
  std::string filter_id;
  bool egress = false;
  int rule_number = 0;
};

ApiResult<RuleLocation> findRule(const model::Policy& policy, const std::string& rule_id) {
  for (const auto& f : policy.traffic_mirror_filters) {
    for (const bool egress : {false, true}) {
      for (const auto& r : egress ? f.egress_rules : f.ingress_rules) {
        if (trafficMirrorFilterRuleId(f.id, egress, r.rule_number) == rule_id) {
          return RuleLocation{f.id, egress, r.rule_number};
        }
      }
    }
  }
  return apiError("InvalidTrafficMirrorFilterRuleId.NotFound",
                  "The traffic mirror filter rule '" + rule_id + "' does not exist");
}

ApiResult<std::vector<Permission>> deleteRulePermissions(const model::Policy& policy,
                                                         const Json& params) {
  auto id = requiredString(params, "TrafficMirrorFilterRuleId");
  if (!id) return tl::unexpected(id.error());
  auto where = findRule(policy, *id);
  if (!where) return tl::unexpected(where.error());
  return std::vector<Permission>{
      {"ec2:DeleteTrafficMirrorFilterRule",
       resourceArn(policy.vpc, "traffic-mirror-filter", where->filter_id)}};
}

ApiResult<ActionOutcome> deleteRuleRun(const model::Policy& policy, const Json& params,
                                       const ActionContext& /*context*/) {
  auto id = requiredString(params, "TrafficMirrorFilterRuleId");
  if (!id) return tl::unexpected(id.error());
  auto where = findRule(policy, *id);
  if (!where) return tl::unexpected(where.error());
  ActionOutcome outcome;
  outcome.policy = policy;
  model::TrafficMirrorFilter* f = findById(outcome.policy->traffic_mirror_filters,
                                           where->filter_id);
  std::erase_if(where->egress ? f->egress_rules : f->ingress_rules,
                [&](const model::TrafficMirrorFilterRule& r) {
                  return r.rule_number == where->rule_number;
                });
  outcome.result = Json{{"TrafficMirrorFilterRuleId", *id}};
  return outcome;
}

// --- sessions --------------------------------------------------------------------------------

struct SessionRequest {
  model::TrafficMirrorSession session;
  std::optional<std::string> client_token;
};

ApiResult<SessionRequest> readSession(const Json& params) {
  SessionRequest r;
  auto& s = r.session;
  for (auto [key, field] : {std::pair("NetworkInterfaceId", &s.network_interface_id),
                            std::pair("TrafficMirrorTargetId", &s.traffic_mirror_target_id),
                            std::pair("TrafficMirrorFilterId", &s.traffic_mirror_filter_id)}) {
    auto v = requiredString(params, key);
    if (!v) return tl::unexpected(v.error());
    *field = *v;
  }
  auto number = requiredInt(params, "SessionNumber");
  if (!number) return tl::unexpected(number.error());
  if (*number < 1 || *number > 32766) {
    return apiError("InvalidParameterValue", "Value (" + std::to_string(*number) +
                                                 ") for parameter SessionNumber is invalid. "
                                                 "Expected 1..32766");
  }
  s.session_number = static_cast<int>(*number);
  auto length = optionalInt(params, "PacketLength");
  if (!length) return tl::unexpected(length.error());
  if (*length) {
    if (**length < 1 || **length > 8500) {
      return apiError("InvalidParameterValue", "Value (" + std::to_string(**length) +
                                                   ") for parameter PacketLength is invalid. "
                                                   "Expected 1..8500");
    }
    s.packet_length = static_cast<int>(**length);
  }
  auto vni = optionalInt(params, "VirtualNetworkId");
  if (!vni) return tl::unexpected(vni.error());
  if (*vni) {
    if (**vni < 0 || **vni >= static_cast<long long>(kVniSpace)) {
      return apiError("InvalidParameterValue", "Value (" + std::to_string(**vni) +
                                                   ") for parameter VirtualNetworkId is "
                                                   "invalid. Expected 0..16777215");
    }
    s.virtual_network_id = static_cast<uint32_t>(**vni);
  }
  auto description = optionalString(params, "Description");
  if (!description) return tl::unexpected(description.error());
  s.description = description->value_or("");
  s.location = kApiLocation;
  auto token = readToken(params);
  if (!token) return tl::unexpected(token.error());
  r.client_token = *token;
  return r;
}

ApiResult<std::vector<Permission>> createSessionPermissions(const model::Policy& policy,
                                                            const Json& params) {
  auto r = readSession(params);
  if (!r) return tl::unexpected(r.error());
  const auto& s = r->session;
  if (!hasInterface(policy, s.network_interface_id)) return interfaceNotFound(s.network_interface_id);
  if (findById(policy.traffic_mirror_targets, s.traffic_mirror_target_id) == nullptr) {
    return targetNotFound(s.traffic_mirror_target_id);
  }
  if (findById(policy.traffic_mirror_filters, s.traffic_mirror_filter_id) == nullptr) {
    return filterNotFound(s.traffic_mirror_filter_id);
  }
  constexpr const char* kAction = "ec2:CreateTrafficMirrorSession";
  return std::vector<Permission>{
      {kAction, resourceArn(policy.vpc, "traffic-mirror-session", "*")},
      {kAction, resourceArn(policy.vpc, "network-interface", s.network_interface_id)},
      {kAction, resourceArn(policy.vpc, "traffic-mirror-target", s.traffic_mirror_target_id)},
      {kAction, resourceArn(policy.vpc, "traffic-mirror-filter", s.traffic_mirror_filter_id)}};
}

// As resolveDefaults() picks one for a session without a VNI in a config (translator/defaults.h):
// from the hash of the id, the next free one; so the same session gets the same VNI either way.
uint32_t pickVirtualNetworkId(const model::Policy& policy, std::string_view session_id) {
  std::set<uint32_t> used;
  for (const auto& s : policy.traffic_mirror_sessions) {
    if (s.virtual_network_id) used.insert(*s.virtual_network_id);
  }
  uint32_t vni = virtualNetworkIdHash(session_id) % kVniSpace;
  while (used.count(vni) > 0) vni = (vni + 1) % kVniSpace;
  return vni;
}

ApiResult<ActionOutcome> createSessionRun(const model::Policy& policy, const Json& params,
                                          const ActionContext& context) {
  auto r = readSession(params);
  if (!r) return tl::unexpected(r.error());
  auto permissions = createSessionPermissions(policy, params);  // the existence checks
  if (!permissions) return tl::unexpected(permissions.error());
  model::TrafficMirrorSession s = r->session;
  s.id = context.new_id("tms");
  if (!s.virtual_network_id) s.virtual_network_id = pickVirtualNetworkId(policy, s.id);
  ActionOutcome outcome;
  outcome.result["TrafficMirrorSession"] = describeSession(policy, s);
  addToken(outcome.result, r->client_token);
  outcome.policy = policy;
  outcome.policy->traffic_mirror_sessions.push_back(std::move(s));
  return outcome;
}

ApiResult<std::vector<Permission>> deleteSessionPermissions(const model::Policy& policy,
                                                            const Json& params) {
  auto id = requiredString(params, "TrafficMirrorSessionId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.traffic_mirror_sessions, *id) == nullptr) return sessionNotFound(*id);
  return std::vector<Permission>{{"ec2:DeleteTrafficMirrorSession",
                                  resourceArn(policy.vpc, "traffic-mirror-session", *id)}};
}

ApiResult<ActionOutcome> deleteSessionRun(const model::Policy& policy, const Json& params,
                                          const ActionContext& /*context*/) {
  auto id = requiredString(params, "TrafficMirrorSessionId");
  if (!id) return tl::unexpected(id.error());
  if (findById(policy.traffic_mirror_sessions, *id) == nullptr) return sessionNotFound(*id);
  ActionOutcome outcome;
  outcome.policy = policy;
  std::erase_if(outcome.policy->traffic_mirror_sessions,
                [&](const model::TrafficMirrorSession& s) { return s.id == *id; });
  outcome.result = Json{{"TrafficMirrorSessionId", *id}};
  return outcome;
}

ApiResult<std::vector<Permission>> describeSessionsPermissions(const model::Policy& policy,
                                                               const Json& params) {
  auto selected = selectById(policy.traffic_mirror_sessions, params, "TrafficMirrorSessionIds",
                             sessionNotFound);
  if (!selected) return tl::unexpected(selected.error());
  return describeOnly("ec2:DescribeTrafficMirrorSessions");
}

ApiResult<ActionOutcome> describeSessionsRun(const model::Policy& policy, const Json& params,
                                             const ActionContext& /*context*/) {
  auto selected = selectById(policy.traffic_mirror_sessions, params, "TrafficMirrorSessionIds",
                             sessionNotFound);
  if (!selected) return tl::unexpected(selected.error());
  Json list = Json::array();
  for (const auto* s : *selected) list.push_back(describeSession(policy, *s));
  ActionOutcome outcome;
  outcome.result = Json{{"TrafficMirrorSessions", std::move(list)}};
  return outcome;
}

}  // namespace

std::vector<ActionSpec> trafficMirrorActions() {
  auto filterAction = [](std::string action) {
    return [action](const model::Policy& policy, const Json& params) {
      return filterIdPermissions(policy, params, action);
    };
  };
  return {
      ActionSpec{"CreateTrafficMirrorTarget", true, createTargetPermissions, createTargetRun},
      ActionSpec{"DeleteTrafficMirrorTarget", true, deleteTargetPermissions, deleteTargetRun},
      ActionSpec{"DescribeTrafficMirrorTargets", false, describeTargetsPermissions,
                 describeTargetsRun},
      ActionSpec{"CreateTrafficMirrorFilter", true, createFilterPermissions, createFilterRun},
      ActionSpec{"DeleteTrafficMirrorFilter", true,
                 filterAction("ec2:DeleteTrafficMirrorFilter"), deleteFilterRun},
      ActionSpec{"ModifyTrafficMirrorFilterNetworkServices", true,
                 filterAction("ec2:ModifyTrafficMirrorFilterNetworkServices"), modifyServicesRun},
      ActionSpec{"DescribeTrafficMirrorFilters", false, describeFiltersPermissions,
                 describeFiltersRun},
      ActionSpec{"CreateTrafficMirrorFilterRule", true, createRulePermissions, createRuleRun},
      ActionSpec{"DeleteTrafficMirrorFilterRule", true, deleteRulePermissions, deleteRuleRun},
      ActionSpec{"CreateTrafficMirrorSession", true, createSessionPermissions, createSessionRun},
      ActionSpec{"DeleteTrafficMirrorSession", true, deleteSessionPermissions, deleteSessionRun},
      ActionSpec{"DescribeTrafficMirrorSessions", false, describeSessionsPermissions,
                 describeSessionsRun},
  };
}

}  // namespace vpcguard::api
