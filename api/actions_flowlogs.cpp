// CreateFlowLogs, DeleteFlowLogs and DescribeFlowLogs (docs/api.md) on model::Policy::flow_logs.
//
// Design: as AWS, CreateFlowLogs makes one flow log per resource and DeleteFlowLogs deletes
// what it can: a resource or id it cannot act on is an entry of "Unsuccessful", not a failure
// of the whole request, so a script deleting ten flow logs is not stopped by one already gone.
// Only malformed parameters (and a destination type vpcguard has no sink for) fail the request.
// DescribeFlowLogs prints exactly the keys daemon/import_aws.cpp reads, so its output imports
// back to the same flow logs (the describe/import round trip the issue asks for).
//
// Records go to files only (flowlogs/sink.h): LogDestinationType is vpcguard's own "file", with
// LogDestination "file:///dir". Omitting LogDestinationType means "file" (AWS's default,
// cloud-watch-logs, does not exist here); any other value is refused naming the one that does.

#include <algorithm>
#include <set>

#include "api/action_registry.h"
#include "api/params.h"
#include "translator/flow_log_format.h"

namespace vpcguard::api {
namespace {

constexpr std::string_view kFileDestinationType = "file";
const model::SourceLocation kApiLocation{"api", 0, 0};

std::string_view trafficTypeName(model::FlowLogTrafficType type) {
  switch (type) {
    case model::FlowLogTrafficType::kAccept: return "ACCEPT";
    case model::FlowLogTrafficType::kReject: return "REJECT";
    case model::FlowLogTrafficType::kAll: return "ALL";
  }
  return "ALL";
}

ApiResult<model::FlowLogTrafficType> parseTrafficType(const std::string& text) {
  if (text == "ACCEPT") return model::FlowLogTrafficType::kAccept;
  if (text == "REJECT") return model::FlowLogTrafficType::kReject;
  if (text == "ALL") return model::FlowLogTrafficType::kAll;
  return apiError("InvalidParameterValue", "Value (" + text +
                                               ") for parameter TrafficType is invalid. "
                                               "Expected ACCEPT, REJECT or ALL");
}

// ResourceType -> the ARN type of the resources it names.
ApiResult<std::string_view> resourceArnType(const std::string& resource_type) {
  if (resource_type == "VPC") return std::string_view("vpc");
  if (resource_type == "Subnet") return std::string_view("subnet");
  if (resource_type == "NetworkInterface") return std::string_view("network-interface");
  return apiError("InvalidParameterValue",
                  "Value (" + resource_type +
                      ") for parameter ResourceType is invalid. Expected VPC, Subnet or "
                      "NetworkInterface (TransitGateway* resources do not exist in vpcguard)");
}

// The AWS error code when a resource of this type does not exist.
std::string notFoundCode(const std::string& resource_type) {
  if (resource_type == "VPC") return "InvalidVpcID.NotFound";
  if (resource_type == "Subnet") return "InvalidSubnetID.NotFound";
  return "InvalidNetworkInterfaceID.NotFound";
}

bool resourceExists(const model::Policy& policy, const std::string& resource_type,
                    const std::string& id) {
  if (resource_type == "VPC") return id == policy.vpc.id;
  if (resource_type == "Subnet") {
    return std::any_of(policy.subnets.begin(), policy.subnets.end(),
                       [&](const model::Subnet& s) { return s.id == id; });
  }
  return std::any_of(policy.network_interfaces.begin(), policy.network_interfaces.end(),
                     [&](const model::NetworkInterface& i) { return i.id == id; });
}

Json unsuccessful(const std::string& resource_id, std::string code, std::string message) {
  return Json{{"ResourceId", resource_id},
              {"Error", Json{{"Code", std::move(code)}, {"Message", std::move(message)}}}};
}

// One flow log as DescribeFlowLogs prints it (and import_aws reads it).
Json describeFlowLog(const model::FlowLog& f) {
  Json out = {
      {"FlowLogId", f.id},
      {"FlowLogStatus", "ACTIVE"},
      {"DeliverLogsStatus", "SUCCESS"},
      {"ResourceId", f.resource_id},
      {"TrafficType", trafficTypeName(f.traffic_type)},
      {"LogDestinationType", kFileDestinationType},
      {"LogDestination", f.log_destination},
      // AWS prints the default format when none was chosen; import reads it back as "none".
      {"LogFormat", f.log_format.empty() ? std::string(flowlog::kDefaultFormat) : f.log_format},
      {"MaxAggregationInterval", f.max_aggregation_interval},
  };
  return out;
}

// Describe* filters: [{"Name": "resource-id", "Values": ["vpc-1"]}, ...]. A flow log passes when
// every filter has a value equal to the flow log's (AWS: AND across filters, OR within one).
struct Filter {
  std::string name;
  std::set<std::string> values;
};

ApiResult<std::vector<Filter>> readFilters(const Json& params,
                                           const std::set<std::string>& known) {
  // DescribeFlowLogs calls it "Filter" (the other Describe* calls "Filters"): take either.
  const std::string_view key = params.is_object() && params.contains("Filters") ? "Filters"
                                                                                 : "Filter";
  auto list = optionalStructure(params, key, /*array=*/true);
  if (!list) return tl::unexpected(list.error());
  std::vector<Filter> filters;
  if (list->is_null()) return filters;
  for (const Json& entry : *list) {
    auto name = requiredString(entry, "Name");
    if (!name) return tl::unexpected(name.error());
    if (known.count(*name) == 0) {
      std::string names;
      for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
      return apiError("InvalidParameterValue", "The filter '" + *name +
                                                   "' is invalid. Known filters: " + names);
    }
    auto values = stringList(entry, "Values");
    if (!values) return tl::unexpected(values.error());
    filters.push_back(Filter{*name, {values->begin(), values->end()}});
  }
  return filters;
}

std::string filterValue(const model::FlowLog& f, const std::string& name) {
  if (name == "flow-log-id") return f.id;
  if (name == "resource-id") return f.resource_id;
  if (name == "traffic-type") return std::string(trafficTypeName(f.traffic_type));
  if (name == "log-destination-type") return std::string(kFileDestinationType);
  if (name == "deliver-log-status") return "SUCCESS";
  return "";
}

// The same flow log again: AWS refuses a second one with the same resource, traffic type and
// destination (FlowLogAlreadyExists).
bool sameConfiguration(const model::FlowLog& a, const model::FlowLog& b) {
  return a.resource_id == b.resource_id && a.traffic_type == b.traffic_type &&
         a.log_destination == b.log_destination;
}

// --- CreateFlowLogs --------------------------------------------------------------------------

struct CreateRequest {
  std::vector<std::string> resource_ids;
  std::string resource_type;
  model::FlowLogTrafficType traffic_type = model::FlowLogTrafficType::kAll;
  std::string log_destination;
  std::string log_format;
  int max_aggregation_interval = 600;
  std::optional<std::string> client_token;
};

ApiResult<CreateRequest> readCreate(const Json& params) {
  CreateRequest r;
  auto ids = stringList(params, "ResourceIds", /*required=*/true);
  if (!ids) return tl::unexpected(ids.error());
  r.resource_ids = std::move(*ids);
  auto type = requiredString(params, "ResourceType");
  if (!type) return tl::unexpected(type.error());
  if (auto arn_type = resourceArnType(*type); !arn_type) return tl::unexpected(arn_type.error());
  r.resource_type = *type;
  auto traffic = requiredString(params, "TrafficType");
  if (!traffic) return tl::unexpected(traffic.error());
  auto parsed_traffic = parseTrafficType(*traffic);
  if (!parsed_traffic) return tl::unexpected(parsed_traffic.error());
  r.traffic_type = *parsed_traffic;
  auto destination_type = optionalString(params, "LogDestinationType");
  if (!destination_type) return tl::unexpected(destination_type.error());
  if (*destination_type && **destination_type != kFileDestinationType) {
    return apiError("InvalidParameterValue",
                    "Value (" + **destination_type +
                        ") for parameter LogDestinationType is invalid. vpcguard writes flow "
                        "log records to files only: use LogDestinationType file with "
                        "LogDestination file:///<directory>");
  }
  if (auto group = optionalString(params, "LogGroupName"); !group || *group) {
    if (!group) return tl::unexpected(group.error());
    return apiError("InvalidParameterValue",
                    "LogGroupName names a CloudWatch Logs group, which does not exist in "
                    "vpcguard: use LogDestinationType file with LogDestination "
                    "file:///<directory>");
  }
  auto destination = requiredString(params, "LogDestination");
  if (!destination) return tl::unexpected(destination.error());
  r.log_destination = *destination;
  auto format = optionalString(params, "LogFormat");
  if (!format) return tl::unexpected(format.error());
  r.log_format = format->value_or("");
  auto interval = optionalInt(params, "MaxAggregationInterval");
  if (!interval) return tl::unexpected(interval.error());
  if (*interval) {
    if (**interval != 60 && **interval != 600) {
      return apiError("InvalidParameterValue",
                      "Value (" + std::to_string(**interval) +
                          ") for parameter MaxAggregationInterval is invalid. Expected 60 or 600");
    }
    r.max_aggregation_interval = static_cast<int>(**interval);
  }
  auto token = optionalString(params, "ClientToken");
  if (!token) return tl::unexpected(token.error());
  r.client_token = *token;
  return r;
}

ApiResult<std::vector<Permission>> createPermissions(const model::Policy& policy,
                                                     const Json& params) {
  auto request = readCreate(params);
  if (!request) return tl::unexpected(request.error());
  const std::string_view arn_type = *resourceArnType(request->resource_type);
  std::vector<Permission> needed;
  for (const std::string& id : request->resource_ids) {
    needed.push_back({"ec2:CreateFlowLogs", resourceArn(policy.vpc, arn_type, id)});
  }
  needed.push_back({"ec2:CreateFlowLogs", resourceArn(policy.vpc, "flow-log", "*")});
  return needed;
}

ApiResult<ActionOutcome> createRun(const model::Policy& policy, const Json& params,
                                   const ActionContext& context) {
  auto request = readCreate(params);
  if (!request) return tl::unexpected(request.error());
  model::Policy next = policy;
  Json ids = Json::array();
  Json failed = Json::array();
  for (const std::string& resource_id : request->resource_ids) {
    if (!resourceExists(policy, request->resource_type, resource_id)) {
      failed.push_back(unsuccessful(resource_id, notFoundCode(request->resource_type),
                                    "The " + request->resource_type + " '" + resource_id +
                                        "' does not exist"));
      continue;
    }
    model::FlowLog f;
    f.resource_id = resource_id;
    f.traffic_type = request->traffic_type;
    f.log_destination = request->log_destination;
    f.log_format = request->log_format;
    f.max_aggregation_interval = request->max_aggregation_interval;
    f.location = kApiLocation;
    const bool exists = std::any_of(next.flow_logs.begin(), next.flow_logs.end(),
                                    [&](const model::FlowLog& o) { return sameConfiguration(o, f); });
    if (exists) {
      failed.push_back(unsuccessful(resource_id, "FlowLogAlreadyExists",
                                    "Error. There is an existing Flow Log with the same "
                                    "configuration and log destination."));
      continue;
    }
    f.id = context.new_id("fl");
    ids.push_back(f.id);
    next.flow_logs.push_back(std::move(f));
  }
  ActionOutcome outcome;
  if (request->client_token) outcome.result["ClientToken"] = *request->client_token;
  outcome.result["FlowLogIds"] = ids;
  outcome.result["Unsuccessful"] = failed;
  if (!ids.empty()) outcome.policy = std::move(next);
  return outcome;
}

// --- DeleteFlowLogs --------------------------------------------------------------------------

ApiResult<std::vector<Permission>> deletePermissions(const model::Policy& policy,
                                                     const Json& params) {
  auto ids = stringList(params, "FlowLogIds", /*required=*/true);
  if (!ids) return tl::unexpected(ids.error());
  std::vector<Permission> needed;
  for (const std::string& id : *ids) {
    needed.push_back({"ec2:DeleteFlowLogs", resourceArn(policy.vpc, "flow-log", id)});
  }
  return needed;
}

ApiResult<ActionOutcome> deleteRun(const model::Policy& policy, const Json& params,
                                   const ActionContext& /*context*/) {
  auto ids = stringList(params, "FlowLogIds", /*required=*/true);
  if (!ids) return tl::unexpected(ids.error());
  model::Policy next = policy;
  Json failed = Json::array();
  bool deleted = false;
  for (const std::string& id : *ids) {
    const auto erased = std::erase_if(next.flow_logs,
                                      [&](const model::FlowLog& f) { return f.id == id; });
    if (erased == 0) {
      failed.push_back(unsuccessful(id, "InvalidFlowLogId.NotFound",
                                    "Flow log '" + id + "' does not exist"));
    } else {
      deleted = true;
    }
  }
  ActionOutcome outcome;
  outcome.result["Unsuccessful"] = failed;
  if (deleted) outcome.policy = std::move(next);
  return outcome;
}

// --- DescribeFlowLogs ------------------------------------------------------------------------

const std::set<std::string> kFlowLogFilters = {"deliver-log-status", "flow-log-id",
                                               "log-destination-type", "resource-id",
                                               "traffic-type"};

ApiResult<std::vector<Permission>> describePermissions(const model::Policy& /*policy*/,
                                                       const Json& params) {
  if (auto ids = stringList(params, "FlowLogIds"); !ids) return tl::unexpected(ids.error());
  if (auto f = readFilters(params, kFlowLogFilters); !f) {
    return tl::unexpected(f.error());
  }
  return std::vector<Permission>{{"ec2:DescribeFlowLogs", "*"}};
}

ApiResult<ActionOutcome> describeRun(const model::Policy& policy, const Json& params,
                                     const ActionContext& /*context*/) {
  auto ids = stringList(params, "FlowLogIds");
  if (!ids) return tl::unexpected(ids.error());
  auto filters = readFilters(params, kFlowLogFilters);
  if (!filters) return tl::unexpected(filters.error());
  const std::set<std::string> wanted(ids->begin(), ids->end());
  std::vector<const model::FlowLog*> shown;
  for (const model::FlowLog& f : policy.flow_logs) {
    if (!wanted.empty() && wanted.count(f.id) == 0) continue;
    const bool pass = std::all_of(filters->begin(), filters->end(), [&](const Filter& filter) {
      return filter.values.count(filterValue(f, filter.name)) > 0;
    });
    if (pass) shown.push_back(&f);
  }
  std::sort(shown.begin(), shown.end(),
            [](const model::FlowLog* a, const model::FlowLog* b) { return a->id < b->id; });
  Json list = Json::array();
  for (const model::FlowLog* f : shown) list.push_back(describeFlowLog(*f));
  ActionOutcome outcome;
  outcome.result = Json{{"FlowLogs", std::move(list)}};
  return outcome;
}

}  // namespace

std::vector<ActionSpec> flowLogActions() {
  return {
      ActionSpec{"CreateFlowLogs", true, createPermissions, createRun},
      ActionSpec{"DeleteFlowLogs", true, deletePermissions, deleteRun},
      ActionSpec{"DescribeFlowLogs", false, describePermissions, describeRun},
  };
}

}  // namespace vpcguard::api
