// The flow-log, traffic-mirror and config actions (api/actions_flowlogs.cpp, actions_mirror.cpp,
// actions_config.cpp) and the plan of a config (api/plan.h): every action's success and errors,
// the describe shapes imported back by import-aws, and the IAM permissions a file implies.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "api/action_registry.h"
#include "api/actions.h"
#include "api/plan.h"
#include "daemon/config_loader.h"
#include "daemon/import_aws.h"
#include "tests/harness/paths.h"
#include "tests/harness/sample_policy.h"
#include "translator/defaults.h"

namespace vpcguard::api {
namespace {

using ::testing::HasSubstr;
using test::cidr;
using test::samplePolicy;

// --- helpers ---------------------------------------------------------------------------------

const ActionSpec& spec(std::string_view name) {
  static const std::vector<ActionSpec> mine = [] {
    std::vector<ActionSpec> all;
    for (auto family : {flowLogActions, trafficMirrorActions, configActions}) {
      auto more = family();
      all.insert(all.end(), more.begin(), more.end());
    }
    return all;
  }();
  for (const auto& a : mine) {
    if (a.name == name) return a;
  }
  ADD_FAILURE() << "no action " << name;
  static const ActionSpec kNone;
  return kNone;
}

// Deterministic ids: "fl-00000000000000001", "fl-00000000000000002", ...
struct Ids {
  std::map<std::string, int> next;
  ActionContext context() {
    return ActionContext{[this](std::string_view prefix) {
      const int n = ++next[std::string(prefix)];
      std::string digits = std::to_string(n);
      return std::string(prefix) + "-" + std::string(17 - digits.size(), '0') + digits;
    }};
  }
};

tl::expected<ActionOutcome, ApiError> run(std::string_view action, const model::Policy& policy,
                                          const Json& params, Ids* ids = nullptr) {
  Ids local;
  return spec(action).run(policy, params, (ids != nullptr ? ids : &local)->context());
}

// Runs an action that must succeed and change the policy; returns the new policy.
model::Policy mustChange(std::string_view action, const model::Policy& policy, const Json& params,
                         Ids& ids, Json* result = nullptr) {
  auto out = run(action, policy, params, &ids);
  EXPECT_TRUE(out.has_value()) << action << ": " << (out ? "" : out.error().code + ": " +
                                                                    out.error().message);
  if (!out) return policy;
  EXPECT_TRUE(out->policy.has_value()) << action;
  if (result != nullptr) *result = out->result;
  return out->policy.value_or(policy);
}

void expectError(const tl::expected<ActionOutcome, ApiError>& out, std::string_view code,
                 std::string_view message_part = "") {
  ASSERT_FALSE(out.has_value()) << "expected " << code << ", got " << out->result.dump();
  EXPECT_EQ(out.error().code, code) << out.error().message;
  EXPECT_THAT(out.error().message, HasSubstr(std::string(message_part)));
}

void expectPermissionError(const ActionSpec& action, const model::Policy& policy,
                           const Json& params, std::string_view code,
                           std::string_view message_part = "") {
  auto ps = action.permissions(policy, params);
  ASSERT_FALSE(ps.has_value()) << "expected " << code;
  EXPECT_EQ(ps.error().code, code) << ps.error().message;
  EXPECT_THAT(ps.error().message, HasSubstr(std::string(message_part)));
}

// ARNs in samplePolicy()'s VPC (us-east-1) and in configs/lab.toml's (region lab-1).
std::string arn(std::string_view type, std::string_view id) {
  return "arn:vpcguard:ec2:us-east-1:123456789012:" + std::string(type) + "/" + std::string(id);
}
std::string labArn(std::string_view type, std::string_view id) {
  return "arn:vpcguard:ec2:lab-1:123456789012:" + std::string(type) + "/" + std::string(id);
}

bool hasPermission(const std::vector<Permission>& ps, std::string_view action,
                   std::string_view resource) {
  return std::any_of(ps.begin(), ps.end(), [&](const Permission& p) {
    return p.action == action && p.resource == resource;
  });
}

model::Policy loadConfig(const std::string& relative) {
  auto policy = config::loadPolicy(test::sourceDir() + "/" + relative);
  if (!policy) {
    ADD_FAILURE() << relative << ": " << policy.error().toError().message;
    return {};
  }
  return *policy;
}

// The Documents parameter `vpcguardctl apply PATH` sends.
Json documentsOf(const std::string& relative) {
  auto docs = config::readDocuments(test::sourceDir() + "/" + relative);
  EXPECT_TRUE(docs.has_value()) << relative;
  Json list = Json::array();
  if (docs) {
    for (const auto& d : *docs) list.push_back(Json{{"Name", d.name}, {"Text", d.text}});
  }
  return Json{{"Documents", list}};
}

const std::string kFileDestination = "file:///var/log/vpcguard/flowlogs";

Json createFlowLogs(Json resource_ids, std::string type = "Subnet") {
  return Json{{"ResourceIds", std::move(resource_ids)},
              {"ResourceType", type},
              {"TrafficType", "ALL"},
              {"LogDestinationType", "file"},
              {"LogDestination", kFileDestination}};
}

// --- CreateFlowLogs / DeleteFlowLogs / DescribeFlowLogs -----------------------------------------

TEST(CreateFlowLogs, MakesOneFlowLogPerResource) {
  Ids ids;
  Json params = createFlowLogs({"subnet-public", "subnet-private"});
  params["ClientToken"] = "tok-1";
  params["LogFormat"] = "${version} ${interface-id} ${action}";
  params["MaxAggregationInterval"] = 60;
  Json result;
  const model::Policy p = mustChange("CreateFlowLogs", samplePolicy(), params, ids, &result);
  EXPECT_EQ(result["ClientToken"], "tok-1");
  EXPECT_EQ(result["FlowLogIds"],
            Json({"fl-00000000000000001", "fl-00000000000000002"}));
  EXPECT_EQ(result["Unsuccessful"], Json::array());
  ASSERT_EQ(p.flow_logs.size(), 2u);
  const model::FlowLog& f = p.flow_logs[1];
  EXPECT_EQ(f.id, "fl-00000000000000002");
  EXPECT_EQ(f.resource_id, "subnet-private");
  EXPECT_EQ(f.traffic_type, model::FlowLogTrafficType::kAll);
  EXPECT_EQ(f.log_destination, kFileDestination);
  EXPECT_EQ(f.log_format, "${version} ${interface-id} ${action}");
  EXPECT_EQ(f.max_aggregation_interval, 60);
  EXPECT_EQ(f.location.file, "api");
}

TEST(CreateFlowLogs, VpcAndInterfaceResourcesAndTheDefaultDestinationType) {
  Ids ids;
  Json params = createFlowLogs({"vpc-lab"}, "VPC");
  params.erase("LogDestinationType");  // vpcguard's only type, "file", is the default
  model::Policy p = mustChange("CreateFlowLogs", samplePolicy(), params, ids);
  params = createFlowLogs({"eni-web1"}, "NetworkInterface");
  params["TrafficType"] = "REJECT";
  p = mustChange("CreateFlowLogs", p, params, ids);
  ASSERT_EQ(p.flow_logs.size(), 2u);
  EXPECT_EQ(p.flow_logs[0].resource_id, "vpc-lab");
  EXPECT_EQ(p.flow_logs[0].max_aggregation_interval, 600);
  EXPECT_EQ(p.flow_logs[1].traffic_type, model::FlowLogTrafficType::kReject);
}

TEST(CreateFlowLogs, UnknownResourcesAreUnsuccessfulNotFatal) {
  Ids ids;
  Json result;
  const model::Policy p = mustChange(
      "CreateFlowLogs", samplePolicy(), createFlowLogs({"subnet-nope", "subnet-public"}), ids,
      &result);
  EXPECT_EQ(p.flow_logs.size(), 1u);
  ASSERT_EQ(result["Unsuccessful"].size(), 1u);
  EXPECT_EQ(result["Unsuccessful"][0]["ResourceId"], "subnet-nope");
  EXPECT_EQ(result["Unsuccessful"][0]["Error"]["Code"], "InvalidSubnetID.NotFound");

  auto vpc = run("CreateFlowLogs", samplePolicy(), createFlowLogs({"vpc-other"}, "VPC"));
  ASSERT_TRUE(vpc.has_value());
  EXPECT_FALSE(vpc->policy.has_value()) << "nothing created: nothing to commit";
  EXPECT_EQ(vpc->result["Unsuccessful"][0]["Error"]["Code"], "InvalidVpcID.NotFound");
  auto eni = run("CreateFlowLogs", samplePolicy(), createFlowLogs({"eni-x"}, "NetworkInterface"));
  ASSERT_TRUE(eni.has_value());
  EXPECT_EQ(eni->result["Unsuccessful"][0]["Error"]["Code"],
            "InvalidNetworkInterfaceID.NotFound");
}

TEST(CreateFlowLogs, TheSameFlowLogTwiceIsFlowLogAlreadyExists) {
  Ids ids;
  const model::Policy p =
      mustChange("CreateFlowLogs", samplePolicy(), createFlowLogs({"subnet-public"}), ids);
  auto again = run("CreateFlowLogs", p, createFlowLogs({"subnet-public"}), &ids);
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->policy.has_value());
  EXPECT_EQ(again->result["FlowLogIds"], Json::array());
  EXPECT_EQ(again->result["Unsuccessful"][0]["Error"]["Code"], "FlowLogAlreadyExists");
  // Another traffic type is another flow log.
  Json reject = createFlowLogs({"subnet-public"});
  reject["TrafficType"] = "REJECT";
  EXPECT_EQ(mustChange("CreateFlowLogs", p, reject, ids).flow_logs.size(), 2u);
}

TEST(CreateFlowLogs, MalformedParameters) {
  const model::Policy p = samplePolicy();
  Json params = createFlowLogs({"subnet-public"});
  params["LogDestinationType"] = "s3";
  expectError(run("CreateFlowLogs", p, params), "InvalidParameterValue",
              "use LogDestinationType file");
  expectPermissionError(spec("CreateFlowLogs"), p, params, "InvalidParameterValue");

  params = createFlowLogs({"subnet-public"});
  params["LogGroupName"] = "my-logs";
  expectError(run("CreateFlowLogs", p, params), "InvalidParameterValue", "LogGroupName");
  params = createFlowLogs({"subnet-public"});
  params.erase("LogDestination");
  expectError(run("CreateFlowLogs", p, params), "MissingParameter", "LogDestination");
  params = createFlowLogs({"subnet-public"});
  params.erase("ResourceIds");
  expectError(run("CreateFlowLogs", p, params), "MissingParameter", "ResourceIds");
  params = createFlowLogs({"subnet-public"}, "TransitGateway");
  expectError(run("CreateFlowLogs", p, params), "InvalidParameterValue", "ResourceType");
  params = createFlowLogs({"subnet-public"});
  params["TrafficType"] = "all";
  expectError(run("CreateFlowLogs", p, params), "InvalidParameterValue", "TrafficType");
  params = createFlowLogs({"subnet-public"});
  params["MaxAggregationInterval"] = 300;
  expectError(run("CreateFlowLogs", p, params), "InvalidParameterValue", "60 or 600");
}

TEST(CreateFlowLogs, PermissionsNameEachResourceAndTheNewFlowLogs) {
  auto ps = spec("CreateFlowLogs")
                .permissions(samplePolicy(), createFlowLogs({"subnet-public", "subnet-private"}));
  ASSERT_TRUE(ps.has_value());
  EXPECT_EQ(ps->size(), 3u);
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", arn("subnet", "subnet-public")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", arn("subnet", "subnet-private")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", arn("flow-log", "*")));
  ps = spec("CreateFlowLogs").permissions(samplePolicy(), createFlowLogs({"vpc-lab"}, "VPC"));
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", arn("vpc", "vpc-lab")));
  ps = spec("CreateFlowLogs")
           .permissions(samplePolicy(), createFlowLogs({"eni-web1"}, "NetworkInterface"));
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", arn("network-interface", "eni-web1")));
}

TEST(DeleteFlowLogs, DeletesKnownIdsAndReportsUnknownOnes) {
  Ids ids;
  const model::Policy p = mustChange("CreateFlowLogs", samplePolicy(),
                                     createFlowLogs({"subnet-public", "subnet-private"}), ids);
  const Json params = {{"FlowLogIds", {"fl-00000000000000001", "fl-gone"}}};
  auto ps = spec("DeleteFlowLogs").permissions(p, params);
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:DeleteFlowLogs", arn("flow-log", "fl-00000000000000001")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:DeleteFlowLogs", arn("flow-log", "fl-gone")));
  Json result;
  const model::Policy after = mustChange("DeleteFlowLogs", p, params, ids, &result);
  ASSERT_EQ(after.flow_logs.size(), 1u);
  EXPECT_EQ(after.flow_logs[0].id, "fl-00000000000000002");
  ASSERT_EQ(result["Unsuccessful"].size(), 1u);
  EXPECT_EQ(result["Unsuccessful"][0]["ResourceId"], "fl-gone");
  EXPECT_EQ(result["Unsuccessful"][0]["Error"]["Code"], "InvalidFlowLogId.NotFound");

  auto none = run("DeleteFlowLogs", p, Json{{"FlowLogIds", {"fl-gone"}}});
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->policy.has_value());
  expectError(run("DeleteFlowLogs", p, Json::object()), "MissingParameter", "FlowLogIds");
}

TEST(DescribeFlowLogs, ShapesAndFilters) {
  Ids ids;
  model::Policy p =
      mustChange("CreateFlowLogs", samplePolicy(), createFlowLogs({"subnet-public"}), ids);
  Json reject = createFlowLogs({"vpc-lab"}, "VPC");
  reject["TrafficType"] = "REJECT";
  reject["LogFormat"] = "${version} ${action}";
  p = mustChange("CreateFlowLogs", p, reject, ids);

  auto all = run("DescribeFlowLogs", p, Json::object());
  ASSERT_TRUE(all.has_value());
  EXPECT_FALSE(all->policy.has_value());
  ASSERT_EQ(all->result["FlowLogs"].size(), 2u);
  const Json& first = all->result["FlowLogs"][0];
  EXPECT_EQ(first["FlowLogId"], "fl-00000000000000001");
  EXPECT_EQ(first["ResourceId"], "subnet-public");
  EXPECT_EQ(first["TrafficType"], "ALL");
  EXPECT_EQ(first["LogDestinationType"], "file");
  EXPECT_EQ(first["LogDestination"], kFileDestination);
  EXPECT_EQ(first["FlowLogStatus"], "ACTIVE");
  EXPECT_EQ(first["DeliverLogsStatus"], "SUCCESS");
  EXPECT_EQ(first["MaxAggregationInterval"], 600);
  EXPECT_THAT(first["LogFormat"].get<std::string>(), HasSubstr("${srcaddr}"))
      << "the default format is shown, as AWS does";
  EXPECT_EQ(all->result["FlowLogs"][1]["LogFormat"], "${version} ${action}");

  auto filtered = run("DescribeFlowLogs", p,
                      Json{{"Filter", {{{"Name", "traffic-type"}, {"Values", {"REJECT"}}}}}});
  ASSERT_TRUE(filtered.has_value());
  ASSERT_EQ(filtered->result["FlowLogs"].size(), 1u);
  EXPECT_EQ(filtered->result["FlowLogs"][0]["ResourceId"], "vpc-lab");
  auto by_id = run("DescribeFlowLogs", p, Json{{"FlowLogIds", {"fl-00000000000000002"}}});
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->result["FlowLogs"].size(), 1u);

  const Json bad = {{"Filter", {{{"Name", "colour"}, {"Values", {"red"}}}}}};
  expectError(run("DescribeFlowLogs", p, bad), "InvalidParameterValue", "colour");
  auto ps = spec("DescribeFlowLogs").permissions(p, Json::object());
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:DescribeFlowLogs", "*"));
  EXPECT_FALSE(spec("DescribeFlowLogs").mutating);
}

// --- traffic mirror targets ---------------------------------------------------------------------

TEST(TrafficMirrorTargets, CreateOnAnInterfaceOrAVxlanEndpoint) {
  Ids ids;
  Json result;
  model::Policy p = mustChange(
      "CreateTrafficMirrorTarget", samplePolicy(),
      Json{{"NetworkInterfaceId", "eni-db1"}, {"Description", "ids"}, {"ClientToken", "t"}}, ids,
      &result);
  EXPECT_EQ(result["TrafficMirrorTarget"]["TrafficMirrorTargetId"], "tmt-00000000000000001");
  EXPECT_EQ(result["TrafficMirrorTarget"]["NetworkInterfaceId"], "eni-db1");
  EXPECT_EQ(result["TrafficMirrorTarget"]["Type"], "network-interface");
  EXPECT_EQ(result["ClientToken"], "t");
  p = mustChange("CreateTrafficMirrorTarget", p, Json{{"VxlanRemoteIp", "192.0.2.2"}}, ids,
                 &result);
  EXPECT_EQ(result["TrafficMirrorTarget"]["VxlanRemoteIp"], "192.0.2.2");
  ASSERT_EQ(p.traffic_mirror_targets.size(), 2u);
  EXPECT_EQ(p.traffic_mirror_targets[0].network_interface_id, "eni-db1");
  EXPECT_EQ(p.traffic_mirror_targets[0].description, "ids");
  EXPECT_EQ(p.traffic_mirror_targets[1].vxlan_remote_ip, test::ip("192.0.2.2"));
  EXPECT_EQ(p.traffic_mirror_targets[1].location.file, "api");

  auto ps = spec("CreateTrafficMirrorTarget")
                .permissions(samplePolicy(), Json{{"NetworkInterfaceId", "eni-db1"}});
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateTrafficMirrorTarget",
                            arn("traffic-mirror-target", "*")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateTrafficMirrorTarget",
                            arn("network-interface", "eni-db1")));
}

TEST(TrafficMirrorTargets, CreateErrors) {
  const model::Policy p = samplePolicy();
  expectError(run("CreateTrafficMirrorTarget", p, Json::object()), "MissingParameter",
              "NetworkInterfaceId or VxlanRemoteIp");
  expectError(run("CreateTrafficMirrorTarget", p,
                  Json{{"NetworkInterfaceId", "eni-db1"}, {"VxlanRemoteIp", "192.0.2.2"}}),
              "InvalidParameterCombination", "not both");
  expectError(run("CreateTrafficMirrorTarget", p,
                  Json{{"NetworkLoadBalancerArn", "arn:aws:elasticloadbalancing:x"}}),
              "InvalidParameterValue", "VxlanRemoteIp");
  expectError(run("CreateTrafficMirrorTarget", p, Json{{"VxlanRemoteIp", "not-an-ip"}}),
              "InvalidParameterValue", "VxlanRemoteIp");
  expectError(run("CreateTrafficMirrorTarget", p, Json{{"NetworkInterfaceId", "eni-nope"}}),
              "InvalidNetworkInterfaceID.NotFound", "eni-nope");
}

// A policy with a target, a filter with one rule each way and a session using them.
struct MirrorSetup {
  Ids ids;
  model::Policy policy;
  std::string target, filter, session;

  MirrorSetup() {
    Json r;
    policy = mustChange("CreateTrafficMirrorTarget", samplePolicy(),
                        Json{{"NetworkInterfaceId", "eni-db1"}}, ids, &r);
    target = r["TrafficMirrorTarget"]["TrafficMirrorTargetId"];
    policy = mustChange("CreateTrafficMirrorFilter", policy, Json{{"Description", "web"}}, ids, &r);
    filter = r["TrafficMirrorFilter"]["TrafficMirrorFilterId"];
    policy = mustChange("CreateTrafficMirrorFilterRule", policy,
                        Json{{"TrafficMirrorFilterId", filter},
                             {"TrafficDirection", "ingress"},
                             {"RuleNumber", 100},
                             {"RuleAction", "accept"},
                             {"Protocol", 6},
                             {"SourceCidrBlock", "0.0.0.0/0"},
                             {"DestinationCidrBlock", "10.0.1.0/24"},
                             {"DestinationPortRange", {{"FromPort", 443}, {"ToPort", 443}}},
                             {"Description", "https in"}},
                        ids);
    policy = mustChange("CreateTrafficMirrorFilterRule", policy,
                        Json{{"TrafficMirrorFilterId", filter},
                             {"TrafficDirection", "egress"},
                             {"RuleNumber", "200"},
                             {"RuleAction", "reject"},
                             {"SourceCidrBlock", "::/0"},
                             {"DestinationCidrBlock", "::/0"}},
                        ids);
    policy = mustChange("CreateTrafficMirrorSession", policy,
                        Json{{"NetworkInterfaceId", "eni-web1"},
                             {"TrafficMirrorTargetId", target},
                             {"TrafficMirrorFilterId", filter},
                             {"SessionNumber", 1},
                             {"PacketLength", 128},
                             {"Description", "web to ids"}},
                        ids, &r);
    session = r["TrafficMirrorSession"]["TrafficMirrorSessionId"];
  }
};

TEST(TrafficMirrorTargets, DeleteAndDescribe) {
  MirrorSetup m;
  expectError(run("DeleteTrafficMirrorTarget", m.policy, Json{{"TrafficMirrorTargetId", m.target}}),
              "DependencyViolation", m.session);
  expectError(run("DeleteTrafficMirrorTarget", m.policy, Json{{"TrafficMirrorTargetId", "tmt-x"}}),
              "InvalidTrafficMirrorTargetId.NotFound", "tmt-x");
  expectPermissionError(spec("DeleteTrafficMirrorTarget"), m.policy, Json::object(),
                        "MissingParameter", "TrafficMirrorTargetId");
  expectPermissionError(spec("DeleteTrafficMirrorTarget"), m.policy,
                        Json{{"TrafficMirrorTargetId", "tmt-x"}},
                        "InvalidTrafficMirrorTargetId.NotFound");

  auto described = run("DescribeTrafficMirrorTargets", m.policy, Json::object());
  ASSERT_TRUE(described.has_value());
  ASSERT_EQ(described->result["TrafficMirrorTargets"].size(), 1u);
  EXPECT_EQ(described->result["TrafficMirrorTargets"][0]["OwnerId"], "123456789012");
  expectError(run("DescribeTrafficMirrorTargets", m.policy,
                  Json{{"TrafficMirrorTargetIds", {"tmt-x"}}}),
              "InvalidTrafficMirrorTargetId.NotFound");

  model::Policy p = mustChange("DeleteTrafficMirrorSession", m.policy,
                               Json{{"TrafficMirrorSessionId", m.session}}, m.ids);
  auto ps = spec("DeleteTrafficMirrorTarget").permissions(p, Json{{"TrafficMirrorTargetId", m.target}});
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:DeleteTrafficMirrorTarget",
                            arn("traffic-mirror-target", m.target)));
  Json result;
  p = mustChange("DeleteTrafficMirrorTarget", p, Json{{"TrafficMirrorTargetId", m.target}}, m.ids,
                 &result);
  EXPECT_TRUE(p.traffic_mirror_targets.empty());
  EXPECT_EQ(result["TrafficMirrorTargetId"], m.target);
}

// --- filters and rules ---------------------------------------------------------------------------

TEST(TrafficMirrorFilters, RulesGetStableIdsAndShowInDescribe) {
  MirrorSetup m;
  ASSERT_EQ(m.policy.traffic_mirror_filters.size(), 1u);
  const auto& f = m.policy.traffic_mirror_filters[0];
  ASSERT_EQ(f.ingress_rules.size(), 1u);
  ASSERT_EQ(f.egress_rules.size(), 1u);
  EXPECT_EQ(f.ingress_rules[0].protocol, 6);
  EXPECT_EQ(f.ingress_rules[0].destination_port_range, (model::PortRange{443, 443}));
  EXPECT_EQ(f.egress_rules[0].protocol, model::kProtoAll);
  EXPECT_FALSE(f.egress_rules[0].accept);

  auto described = run("DescribeTrafficMirrorFilters", m.policy,
                       Json{{"TrafficMirrorFilterIds", {m.filter}}});
  ASSERT_TRUE(described.has_value());
  const Json& d = described->result["TrafficMirrorFilters"][0];
  EXPECT_EQ(d["Description"], "web");
  EXPECT_EQ(d["NetworkServices"], Json::array());
  const Json& in = d["IngressFilterRules"][0];
  EXPECT_EQ(in["TrafficMirrorFilterRuleId"], "tmfr-00000000000000001-ingress-100");
  EXPECT_EQ(in["TrafficDirection"], "ingress");
  EXPECT_EQ(in["RuleAction"], "accept");
  EXPECT_EQ(in["Protocol"], 6);
  EXPECT_EQ(in["DestinationPortRange"], (Json{{"FromPort", 443}, {"ToPort", 443}}));
  EXPECT_EQ(in["SourceCidrBlock"], "0.0.0.0/0");
  EXPECT_EQ(in["Description"], "https in");
  const Json& out = d["EgressFilterRules"][0];
  EXPECT_EQ(out["TrafficMirrorFilterRuleId"], "tmfr-00000000000000001-egress-200");
  EXPECT_FALSE(out.contains("Protocol")) << "all protocols: left out, as AWS";

  Json result;
  const model::Policy p = mustChange(
      "DeleteTrafficMirrorFilterRule", m.policy,
      Json{{"TrafficMirrorFilterRuleId", "tmfr-00000000000000001-egress-200"}}, m.ids, &result);
  EXPECT_TRUE(p.traffic_mirror_filters[0].egress_rules.empty());
  EXPECT_EQ(p.traffic_mirror_filters[0].ingress_rules.size(), 1u);
  expectError(run("DeleteTrafficMirrorFilterRule", m.policy,
                  Json{{"TrafficMirrorFilterRuleId", "tmfr-00000000000000001-egress-999"}}),
              "InvalidTrafficMirrorFilterRuleId.NotFound");
  auto ps = spec("DeleteTrafficMirrorFilterRule")
                .permissions(m.policy, Json{{"TrafficMirrorFilterRuleId",
                                             "tmfr-00000000000000001-ingress-100"}});
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:DeleteTrafficMirrorFilterRule",
                            arn("traffic-mirror-filter", m.filter)));
}

TEST(TrafficMirrorFilters, RuleErrors) {
  MirrorSetup m;
  const Json good = {{"TrafficMirrorFilterId", m.filter}, {"TrafficDirection", "ingress"},
                     {"RuleNumber", 110},                 {"RuleAction", "accept"},
                     {"SourceCidrBlock", "0.0.0.0/0"},    {"DestinationCidrBlock", "0.0.0.0/0"}};
  ASSERT_TRUE(run("CreateTrafficMirrorFilterRule", m.policy, good).has_value());
  auto with = [&](const char* key, Json value) {
    Json p = good;
    if (value.is_null()) {
      p.erase(key);
    } else {
      p[key] = std::move(value);
    }
    return run("CreateTrafficMirrorFilterRule", m.policy, p);
  };
  expectError(with("TrafficMirrorFilterId", "tmf-x"), "InvalidTrafficMirrorFilterId.NotFound");
  expectError(with("TrafficDirection", "both"), "InvalidParameterValue", "TrafficDirection");
  expectError(with("RuleNumber", 100), "TrafficMirrorFilterRuleAlreadyExists", "100");
  expectError(with("RuleNumber", 0), "InvalidParameterValue", "RuleNumber");
  expectError(with("RuleAction", "allow"), "InvalidParameterValue", "RuleAction");
  expectError(with("Protocol", 300), "InvalidParameterValue", "Protocol");
  expectError(with("SourceCidrBlock", "10.0.0.1/8"), "InvalidParameterValue", "SourceCidrBlock");
  expectError(with("DestinationCidrBlock", nullptr), "MissingParameter", "DestinationCidrBlock");
  expectError(with("SourcePortRange", Json{{"FromPort", 9}, {"ToPort", 1}}),
              "InvalidParameterValue", "SourcePortRange");
  auto ps = spec("CreateTrafficMirrorFilterRule").permissions(m.policy, good);
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateTrafficMirrorFilterRule",
                            arn("traffic-mirror-filter", m.filter)));
}

TEST(TrafficMirrorFilters, DeleteAndNetworkServices) {
  MirrorSetup m;
  expectError(run("DeleteTrafficMirrorFilter", m.policy, Json{{"TrafficMirrorFilterId", m.filter}}),
              "DependencyViolation", m.session);
  expectError(run("DeleteTrafficMirrorFilter", m.policy, Json{{"TrafficMirrorFilterId", "tmf-x"}}),
              "InvalidTrafficMirrorFilterId.NotFound");
  model::Policy p = mustChange("ModifyTrafficMirrorFilterNetworkServices", m.policy,
                               Json{{"TrafficMirrorFilterId", m.filter},
                                    {"AddNetworkServices", {"amazon-dns"}}},
                               m.ids);
  EXPECT_EQ(p.traffic_mirror_filters[0].network_services, std::vector<std::string>{"amazon-dns"});
  p = mustChange("ModifyTrafficMirrorFilterNetworkServices", p,
                 Json{{"TrafficMirrorFilterId", m.filter},
                      {"RemoveNetworkServices", {"amazon-dns"}}},
                 m.ids);
  EXPECT_TRUE(p.traffic_mirror_filters[0].network_services.empty());
  expectError(run("ModifyTrafficMirrorFilterNetworkServices", p,
                  Json{{"TrafficMirrorFilterId", m.filter}, {"AddNetworkServices", {"ntp"}}}),
              "InvalidParameterValue", "amazon-dns");

  p = mustChange("DeleteTrafficMirrorSession", p, Json{{"TrafficMirrorSessionId", m.session}},
                 m.ids);
  Json result;
  p = mustChange("DeleteTrafficMirrorFilter", p, Json{{"TrafficMirrorFilterId", m.filter}}, m.ids,
                 &result);
  EXPECT_TRUE(p.traffic_mirror_filters.empty());
  EXPECT_EQ(result["TrafficMirrorFilterId"], m.filter);
  auto ps = spec("CreateTrafficMirrorFilter").permissions(m.policy, Json::object());
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateTrafficMirrorFilter",
                            arn("traffic-mirror-filter", "*")));
}

// --- sessions ------------------------------------------------------------------------------------

TEST(TrafficMirrorSessions, CreatePicksTheVniResolveDefaultsWould) {
  MirrorSetup m;
  ASSERT_EQ(m.policy.traffic_mirror_sessions.size(), 1u);
  const auto& s = m.policy.traffic_mirror_sessions[0];
  EXPECT_EQ(s.network_interface_id, "eni-web1");
  EXPECT_EQ(s.session_number, 1);
  EXPECT_EQ(s.packet_length, 128);
  EXPECT_EQ(s.description, "web to ids");
  ASSERT_TRUE(s.virtual_network_id.has_value());
  model::Policy unresolved = m.policy;
  unresolved.traffic_mirror_sessions[0].virtual_network_id.reset();
  auto resolved = resolveDefaults(unresolved);
  ASSERT_TRUE(resolved.has_value()) << resolved.error().message;
  EXPECT_EQ(resolved->traffic_mirror_sessions[0].virtual_network_id, s.virtual_network_id);

  auto described = run("DescribeTrafficMirrorSessions", m.policy, Json::object());
  ASSERT_TRUE(described.has_value());
  const Json& d = described->result["TrafficMirrorSessions"][0];
  EXPECT_EQ(d["TrafficMirrorSessionId"], m.session);
  EXPECT_EQ(d["VirtualNetworkId"], *s.virtual_network_id);
  EXPECT_EQ(d["PacketLength"], 128);
  EXPECT_EQ(d["SessionNumber"], 1);
}

TEST(TrafficMirrorSessions, CreateErrorsAndPermissions) {
  MirrorSetup m;
  const Json good = {{"NetworkInterfaceId", "eni-bastion"},
                     {"TrafficMirrorTargetId", m.target},
                     {"TrafficMirrorFilterId", m.filter},
                     {"SessionNumber", 2},
                     {"VirtualNetworkId", 77}};
  Json result;
  const model::Policy p = mustChange("CreateTrafficMirrorSession", m.policy, good, m.ids, &result);
  EXPECT_EQ(p.traffic_mirror_sessions.back().virtual_network_id, 77u);
  auto with = [&](const char* key, Json value) {
    Json params = good;
    if (value.is_null()) {
      params.erase(key);
    } else {
      params[key] = std::move(value);
    }
    return run("CreateTrafficMirrorSession", m.policy, params);
  };
  expectError(with("NetworkInterfaceId", "eni-x"), "InvalidNetworkInterfaceID.NotFound");
  expectError(with("TrafficMirrorTargetId", "tmt-x"), "InvalidTrafficMirrorTargetId.NotFound");
  expectError(with("TrafficMirrorFilterId", "tmf-x"), "InvalidTrafficMirrorFilterId.NotFound");
  expectError(with("SessionNumber", nullptr), "MissingParameter", "SessionNumber");
  expectError(with("PacketLength", 9000), "InvalidParameterValue", "PacketLength");
  expectError(with("VirtualNetworkId", 1 << 24), "InvalidParameterValue", "VirtualNetworkId");

  auto ps = spec("CreateTrafficMirrorSession").permissions(m.policy, good);
  ASSERT_TRUE(ps.has_value());
  const char* action = "ec2:CreateTrafficMirrorSession";
  EXPECT_TRUE(hasPermission(*ps, action, arn("traffic-mirror-session", "*")));
  EXPECT_TRUE(hasPermission(*ps, action, arn("network-interface", "eni-bastion")));
  EXPECT_TRUE(hasPermission(*ps, action, arn("traffic-mirror-target", m.target)));
  EXPECT_TRUE(hasPermission(*ps, action, arn("traffic-mirror-filter", m.filter)));
}

TEST(TrafficMirrorSessions, DeleteAndDescribeErrors) {
  MirrorSetup m;
  expectError(run("DeleteTrafficMirrorSession", m.policy, Json{{"TrafficMirrorSessionId", "tms-x"}}),
              "InvalidTrafficMirrorSessionId.NotFound", "tms-x");
  expectError(run("DescribeTrafficMirrorSessions", m.policy,
                  Json{{"TrafficMirrorSessionIds", {"tms-x"}}}),
              "InvalidTrafficMirrorSessionId.NotFound");
  expectError(run("DescribeTrafficMirrorFilters", m.policy,
                  Json{{"TrafficMirrorFilterIds", {"tmf-x"}}}),
              "InvalidTrafficMirrorFilterId.NotFound");
  Json result;
  const model::Policy p = mustChange("DeleteTrafficMirrorSession", m.policy,
                                     Json{{"TrafficMirrorSessionId", m.session}}, m.ids, &result);
  EXPECT_TRUE(p.traffic_mirror_sessions.empty());
  EXPECT_EQ(result["TrafficMirrorSessionId"], m.session);
  auto ps = spec("DescribeTrafficMirrorSessions").permissions(m.policy, Json::object());
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:DescribeTrafficMirrorSessions", "*"));
}

// --- describe output imported back by import-aws ------------------------------------------------

// describe-vpcs / -subnets / -network-interfaces output for the objects the flow logs and mirror
// objects refer to, written here from the policy (not by the API's own describe).
std::vector<AwsDocument> topologyJson(const model::Policy& p) {
  Json vpcs = {{"Vpcs",
                {{{"VpcId", p.vpc.id},
                  {"OwnerId", p.vpc.account_id},
                  {"CidrBlock", p.vpc.cidr_blocks[0].toString()}}}}};
  Json subnets = {{"Subnets", Json::array()}};
  for (const auto& s : p.subnets) {
    subnets["Subnets"].push_back({{"SubnetId", s.id},
                                  {"VpcId", p.vpc.id},
                                  {"CidrBlock", s.cidr_block.toString()},
                                  {"AvailabilityZone", "us-east-1a"}});
  }
  Json enis = {{"NetworkInterfaces", Json::array()}};
  for (const auto& i : p.network_interfaces) {
    enis["NetworkInterfaces"].push_back({{"NetworkInterfaceId", i.id},
                                         {"VpcId", p.vpc.id},
                                         {"SubnetId", i.subnet_id},
                                         {"MacAddress", i.mac_address},
                                         {"PrivateIpAddress",
                                          i.private_ip_addresses[0].toString()}});
  }
  return {{"vpcs.json", vpcs}, {"subnets.json", subnets}, {"enis.json", enis}};
}

Json describe(std::string_view action, const model::Policy& p, const Json& params = Json::object()) {
  auto out = run(action, p, params);
  EXPECT_TRUE(out.has_value()) << action;
  return out ? out->result : Json::object();
}

TEST(DescribeRoundTrip, FlowLogsAndMirrorObjectsImportBackToTheSameObjects) {
  // The mirror lab (two targets, two filters, two sessions) plus flow logs made by the API.
  Ids ids;
  model::Policy p = loadConfig("configs/lab-mirror");
  Json params = createFlowLogs({"subnet-public", "subnet-monitor"});
  params["MaxAggregationInterval"] = 60;
  p = mustChange("CreateFlowLogs", p, params, ids);
  params = createFlowLogs({"eni-web1"}, "NetworkInterface");
  params["TrafficType"] = "REJECT";
  params["LogFormat"] = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${action}";
  p = mustChange("CreateFlowLogs", p, params, ids);
  params = createFlowLogs({p.vpc.id}, "VPC");
  params["TrafficType"] = "ACCEPT";
  p = mustChange("CreateFlowLogs", p, params, ids);
  ASSERT_EQ(p.flow_logs.size(), 4u);

  // A VXLAN endpoint target is vpcguard's own: AWS's describe shape has no address for it, so
  // import-aws cannot bring it back (docs/api.md). Round-trip the interface target only.
  const std::string local_target = "tmt-monitor";
  std::vector<AwsDocument> docs = topologyJson(p);
  docs.push_back({"flow-logs.json", describe("DescribeFlowLogs", p)});
  docs.push_back({"targets.json", describe("DescribeTrafficMirrorTargets", p,
                                           Json{{"TrafficMirrorTargetIds", {local_target}}})});
  docs.push_back({"filters.json", describe("DescribeTrafficMirrorFilters", p)});
  Json sessions = describe("DescribeTrafficMirrorSessions", p);
  Json kept = Json::array();
  for (const Json& s : sessions["TrafficMirrorSessions"]) {
    if (s["TrafficMirrorTargetId"] == local_target) kept.push_back(s);
  }
  ASSERT_EQ(kept.size(), 1u);
  docs.push_back({"sessions.json", Json{{"TrafficMirrorSessions", kept}}});

  auto imported = importAws(docs, {});
  ASSERT_TRUE(imported.has_value()) << imported.error().message;
  for (const auto& w : imported->warnings) {
    // Only what the hand-written topology leaves out, and the flow logs' AWS destinations.
    EXPECT_THAT(formatWarning(w), ::testing::AnyOf(HasSubstr("delivers to file"),
                                                   HasSubstr("no describe-network-acls"),
                                                   HasSubstr("no describe-security-groups"),
                                                   HasSubstr("no imported security group")))
        << formatWarning(w);
  }
  const config::ParseOutput parsed = config::parseDocuments({{"imported.toml", imported->toml}});
  for (const auto& d : parsed.diagnostics) ADD_FAILURE() << formatDiagnostic(d);
  const model::Policy& back = parsed.policy;

  ASSERT_EQ(back.flow_logs.size(), p.flow_logs.size());
  for (const auto& f : p.flow_logs) {
    auto it = std::find_if(back.flow_logs.begin(), back.flow_logs.end(),
                           [&](const model::FlowLog& b) { return b.id == f.id; });
    ASSERT_NE(it, back.flow_logs.end()) << f.id;
    EXPECT_EQ(it->resource_id, f.resource_id);
    EXPECT_EQ(it->traffic_type, f.traffic_type);
    EXPECT_EQ(it->log_destination, f.log_destination);
    EXPECT_EQ(it->log_format, f.log_format) << f.id;
    EXPECT_EQ(it->max_aggregation_interval, f.max_aggregation_interval) << f.id;
  }

  ASSERT_EQ(back.traffic_mirror_targets.size(), 1u);
  EXPECT_EQ(back.traffic_mirror_targets[0].id, local_target);
  EXPECT_EQ(back.traffic_mirror_targets[0].network_interface_id, "eni-mon1");
  EXPECT_EQ(back.traffic_mirror_targets[0].description, "the monitor VM");

  ASSERT_EQ(back.traffic_mirror_filters.size(), p.traffic_mirror_filters.size());
  for (const auto& f : p.traffic_mirror_filters) {
    auto it = std::find_if(back.traffic_mirror_filters.begin(), back.traffic_mirror_filters.end(),
                           [&](const model::TrafficMirrorFilter& b) { return b.id == f.id; });
    ASSERT_NE(it, back.traffic_mirror_filters.end()) << f.id;
    EXPECT_EQ(it->description, f.description);
    EXPECT_EQ(it->network_services, f.network_services);
    for (const bool egress : {false, true}) {
      const auto& want = egress ? f.egress_rules : f.ingress_rules;
      const auto& got = egress ? it->egress_rules : it->ingress_rules;
      ASSERT_EQ(got.size(), want.size()) << f.id;
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[i].rule_number, want[i].rule_number);
        EXPECT_EQ(got[i].accept, want[i].accept);
        EXPECT_EQ(got[i].protocol, want[i].protocol);
        EXPECT_EQ(got[i].source_cidr_block, want[i].source_cidr_block);
        EXPECT_EQ(got[i].destination_cidr_block, want[i].destination_cidr_block);
        EXPECT_EQ(got[i].source_port_range, want[i].source_port_range);
        EXPECT_EQ(got[i].destination_port_range, want[i].destination_port_range);
        EXPECT_EQ(got[i].description, want[i].description);
      }
    }
  }

  ASSERT_EQ(back.traffic_mirror_sessions.size(), 1u);
  const auto& s = back.traffic_mirror_sessions[0];
  const auto& want = *std::find_if(
      p.traffic_mirror_sessions.begin(), p.traffic_mirror_sessions.end(),
      [&](const model::TrafficMirrorSession& x) { return x.id == s.id; });
  EXPECT_EQ(s.network_interface_id, want.network_interface_id);
  EXPECT_EQ(s.traffic_mirror_target_id, want.traffic_mirror_target_id);
  EXPECT_EQ(s.traffic_mirror_filter_id, want.traffic_mirror_filter_id);
  EXPECT_EQ(s.session_number, want.session_number);
  EXPECT_EQ(s.packet_length, want.packet_length);
  EXPECT_EQ(s.virtual_network_id, want.virtual_network_id);
  EXPECT_EQ(s.description, want.description);
}

TEST(DescribeRoundTrip, FiltersAndSessionsMadeByTheApi) {
  MirrorSetup m;
  std::vector<AwsDocument> docs = topologyJson(m.policy);
  docs.push_back({"targets.json", describe("DescribeTrafficMirrorTargets", m.policy)});
  docs.push_back({"filters.json", describe("DescribeTrafficMirrorFilters", m.policy)});
  docs.push_back({"sessions.json", describe("DescribeTrafficMirrorSessions", m.policy)});
  auto imported = importAws(docs, {});
  ASSERT_TRUE(imported.has_value()) << imported.error().message;
  const config::ParseOutput parsed = config::parseDocuments({{"imported.toml", imported->toml}});
  for (const auto& d : parsed.diagnostics) ADD_FAILURE() << formatDiagnostic(d);
  ASSERT_EQ(parsed.policy.traffic_mirror_filters.size(), 1u);
  const auto& f = parsed.policy.traffic_mirror_filters[0];
  const auto& want = m.policy.traffic_mirror_filters[0];
  ASSERT_EQ(f.ingress_rules.size(), 1u);
  ASSERT_EQ(f.egress_rules.size(), 1u);
  EXPECT_EQ(f.ingress_rules[0].destination_port_range, want.ingress_rules[0].destination_port_range);
  EXPECT_EQ(f.ingress_rules[0].protocol, 6);
  EXPECT_EQ(f.egress_rules[0].source_cidr_block, cidr("::/0"));
  EXPECT_FALSE(f.egress_rules[0].accept);
  ASSERT_EQ(parsed.policy.traffic_mirror_sessions.size(), 1u);
  EXPECT_EQ(parsed.policy.traffic_mirror_sessions[0].virtual_network_id,
            m.policy.traffic_mirror_sessions[0].virtual_network_id);
  ASSERT_EQ(parsed.policy.traffic_mirror_targets.size(), 1u);
  EXPECT_EQ(parsed.policy.traffic_mirror_targets[0].network_interface_id, "eni-db1");
}

// --- planChanges ---------------------------------------------------------------------------------

struct PlanCase {
  const char* name;
  std::function<void(model::Policy&)> edit;
  std::vector<std::pair<std::string, std::string>> expected;  // (action, resource)
  const char* summary_part;
};

model::SecurityGroup* group(model::Policy& p, std::string_view id) {
  for (auto& g : p.security_groups) {
    if (g.id == id) return &g;
  }
  return nullptr;
}

TEST(PlanChanges, TableOfSingleChanges) {
  const std::vector<PlanCase> cases = {
      {"nothing", [](model::Policy&) {}, {}, ""},
      {"locations only",
       [](model::Policy& p) {
         for (auto& g : p.security_groups) {
           g.location = {"other.toml", 9, 9};
           for (auto& r : g.ingress) r.location = {"other.toml", 10, 1};
         }
         p.field_locations["vpc.id"] = {"other.toml", 1, 1};
       },
       {},
       ""},
      {"rules reordered",
       [](model::Policy& p) {
         auto& in = group(p, "sg-web")->ingress;
         std::reverse(in.begin(), in.end());
       },
       {},
       ""},
      {"one rule added",
       [](model::Policy& p) {
         model::SecurityGroupRule r;
         r.ip_protocol = model::kProtoTcp;
         r.ports = model::PortRange{8443, 8443};
         r.peer = cidr("192.0.2.0/24");
         group(p, "sg-web")->ingress.push_back(r);
       },
       {{"ec2:AuthorizeSecurityGroupIngress", arn("security-group", "sg-web")}},
       "sg-web: ingress +1 rule (tcp 8443 from 192.0.2.0/24)"},
      {"one egress rule removed",
       [](model::Policy& p) { group(p, "sg-db")->egress.pop_back(); },
       {{"ec2:RevokeSecurityGroupEgress", arn("security-group", "sg-db")}},
       "sg-db: egress -1 rule (all to ::/0)"},
      {"a group deleted",
       [](model::Policy& p) {
         std::erase_if(p.security_groups, [](const auto& g) { return g.id == "sg-db"; });
       },
       {{"ec2:DeleteSecurityGroup", arn("security-group", "sg-db")}},
       "sg-db: security group deleted"},
      {"a group created without egress",
       [](model::Policy& p) {
         model::SecurityGroup g;
         g.id = "sg-new";
         g.name = "new";
         p.security_groups.push_back(g);
       },
       {{"ec2:CreateSecurityGroup", arn("security-group", "sg-new")},
        {"ec2:RevokeSecurityGroupEgress", arn("security-group", "sg-new")}},
       "sg-new: egress -2 rules"},
      {"NACL association changed",
       [](model::Policy& p) { p.subnets[0].network_acl_id = "acl-private"; },
       {{"ec2:ReplaceNetworkAclAssociation", arn("network-acl", "acl-private")}},
       "subnet-public: network ACL acl-default -> acl-private"},
      {"NACL entry replaced, added, removed",
       [](model::Policy& p) {
         auto& entries = p.network_acls[1].entries;
         entries[0].allow = false;                                  // ingress 100
         entries.erase(entries.begin() + 1);                         // ingress 110
         entries.push_back(test::naclEntry(140, false, model::kProtoUdp, true, "10.0.0.0/16",
                                           model::PortRange{53, 53}));
       },
       {{"ec2:CreateNetworkAclEntry", arn("network-acl", "acl-private")},
        {"ec2:ReplaceNetworkAclEntry", arn("network-acl", "acl-private")},
        {"ec2:DeleteNetworkAclEntry", arn("network-acl", "acl-private")}},
       "acl-private: +1 entry (ingress 140 allow udp 53 10.0.0.0/16)"},
      {"a NACL deleted",
       [](model::Policy& p) {
         p.subnets[1].network_acl_id = "acl-default";
         p.network_acls.pop_back();
       },
       {{"ec2:DeleteNetworkAcl", arn("network-acl", "acl-private")},
        {"ec2:ReplaceNetworkAclAssociation", arn("network-acl", "acl-default")}},
       "acl-private: network ACL deleted"},
      {"flow log added",
       [](model::Policy& p) {
         model::FlowLog f;
         f.id = "fl-new";
         f.resource_id = "vpc-lab";
         f.log_destination = "file:///var/log/fl";
         p.flow_logs.push_back(f);
       },
       {{"ec2:CreateFlowLogs", arn("flow-log", "fl-new")}},
       "fl-new: flow log created"},
      {"interface groups and source/dest check",
       [](model::Policy& p) {
         p.network_interfaces[0].security_group_ids.push_back("sg-db");
         p.network_interfaces[0].source_dest_check = false;
       },
       {{"ec2:ModifyNetworkInterfaceAttribute", arn("network-interface", "eni-web1")}},
       "source/dest check off"},
      {"topology: an interface's MAC",
       [](model::Policy& p) { p.network_interfaces[0].mac_address = "02:00:00:00:01:99"; },
       {{"ec2:ApplyConfig", arn("network-interface", "eni-web1")}},
       "eni-web1: network interface changed"},
      {"topology: a subnet added",
       [](model::Policy& p) {
         model::Subnet s;
         s.id = "subnet-new";
         s.cidr_block = cidr("10.0.9.0/24");
         s.network_acl_id = "acl-default";
         p.subnets.push_back(s);
       },
       {{"ec2:ApplyConfig", arn("subnet", "subnet-new")}},
       "subnet-new: subnet created (10.0.9.0/24)"},
      {"topology: the VPC",
       [](model::Policy& p) { p.vpc.strict_revocation = true; },
       {{"ec2:ApplyConfig", arn("vpc", "vpc-lab")}},
       "strict_revocation on"},
      {"quotas",
       [](model::Policy& p) { p.quotas.rules_per_network_acl = 40; },
       {{"ec2:ApplyConfig", arn("vpc", "vpc-lab")}},
       "quotas changed"},
  };
  for (const PlanCase& c : cases) {
    SCOPED_TRACE(c.name);
    const model::Policy current = samplePolicy();
    model::Policy desired = current;
    c.edit(desired);
    const auto changes = planChanges(current, desired);
    std::vector<std::pair<std::string, std::string>> got;
    std::string summaries;
    for (const auto& ch : changes) {
      got.emplace_back(ch.action, ch.resource);
      summaries += ch.summary + "\n";
    }
    EXPECT_EQ(got, c.expected) << summaries;
    EXPECT_THAT(summaries, HasSubstr(c.summary_part));
  }
}

TEST(PlanChanges, ChangedFlowLogsAndSessionsAreADeleteAndACreate) {
  MirrorSetup m;
  model::Policy desired = m.policy;
  desired.traffic_mirror_sessions[0].packet_length = 64;
  const auto changes = planChanges(m.policy, desired);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].action, "ec2:DeleteTrafficMirrorSession");
  EXPECT_EQ(changes[1].action, "ec2:CreateTrafficMirrorSession");
  EXPECT_EQ(changes[1].resource, arn("traffic-mirror-session", m.session));

  desired = m.policy;
  desired.traffic_mirror_filters[0].egress_rules.clear();
  const auto rules = planChanges(m.policy, desired);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].action, "ec2:DeleteTrafficMirrorFilterRule");
  EXPECT_EQ(rules[0].resource, arn("traffic-mirror-filter", m.filter));
}

TEST(PlanChanges, FromAnEmptyStateEverythingIsCreatedInTypeOrder) {
  const model::Policy desired = samplePolicy();
  const auto changes = planChanges(model::Policy{}, desired);
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes[0].action, "ec2:ApplyConfig");
  EXPECT_EQ(changes[0].resource, arn("vpc", "vpc-lab"));
  auto has = [&](std::string_view action, std::string_view resource) {
    return std::any_of(changes.begin(), changes.end(), [&](const PlannedChange& c) {
      return c.action == action && c.resource == resource;
    });
  };
  EXPECT_TRUE(has("ec2:CreateSecurityGroup", arn("security-group", "sg-web")));
  EXPECT_TRUE(has("ec2:AuthorizeSecurityGroupIngress", arn("security-group", "sg-web")));
  EXPECT_FALSE(has("ec2:AuthorizeSecurityGroupEgress", arn("security-group", "sg-web")))
      << "a new group's allow-all egress comes with it";
  // The VPC's defaults come with the VPC and carry AWS's default rules: nothing more to do.
  EXPECT_TRUE(has("ec2:ApplyConfig", arn("security-group", "sg-default")));
  EXPECT_FALSE(has("ec2:AuthorizeSecurityGroupIngress", arn("security-group", "sg-default")));
  EXPECT_TRUE(has("ec2:ApplyConfig", arn("network-acl", "acl-default")));
  EXPECT_FALSE(has("ec2:CreateNetworkAclEntry", arn("network-acl", "acl-default")));
  EXPECT_TRUE(has("ec2:CreateNetworkAcl", arn("network-acl", "acl-private")));
  EXPECT_TRUE(has("ec2:CreateNetworkAclEntry", arn("network-acl", "acl-private")));
  EXPECT_TRUE(has("ec2:ReplaceNetworkAclAssociation", arn("network-acl", "acl-private")));
  EXPECT_TRUE(has("ec2:ApplyConfig", arn("network-interface", "eni-db1")));
  EXPECT_EQ(planChanges(model::Policy{}, desired).size(), changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(planChanges(model::Policy{}, desired)[i].summary, changes[i].summary)
        << "deterministic";
  }
  EXPECT_TRUE(planChanges(desired, desired).empty());
}

// --- PlanConfig / ApplyConfig ---------------------------------------------------------------------

TEST(ApplyConfig, PlanShowsWhatTheMirrorLabAddsAndChangesNothing) {
  const model::Policy current = loadConfig("configs/lab.toml");
  auto out = run("PlanConfig", current, documentsOf("configs/lab-mirror"));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_FALSE(out->policy.has_value());
  EXPECT_EQ(out->result["Applied"], false);
  const Json& changes = out->result["Changes"];
  auto has = [&](std::string_view action, std::string_view resource) {
    return std::any_of(changes.begin(), changes.end(), [&](const Json& c) {
      return c["Action"] == action && c["Resource"] == resource && c["Summary"].is_string();
    });
  };
  EXPECT_TRUE(has("ec2:CreateTrafficMirrorSession", labArn("traffic-mirror-session", "tms-web-monitor")));
  EXPECT_TRUE(has("ec2:CreateTrafficMirrorTarget", labArn("traffic-mirror-target", "tmt-appliance")));
  EXPECT_TRUE(has("ec2:CreateTrafficMirrorFilterRule", labArn("traffic-mirror-filter", "tmf-tcp")));
  EXPECT_TRUE(has("ec2:ApplyConfig", labArn("subnet", "subnet-monitor")));
  EXPECT_TRUE(has("ec2:ApplyConfig", labArn("port-mirror", "pm-web")));
  EXPECT_TRUE(has("ec2:CreateSecurityGroup", labArn("security-group", "sg-monitor")));

  auto ps = spec("PlanConfig").permissions(current, documentsOf("configs/lab-mirror"));
  ASSERT_TRUE(ps.has_value());
  ASSERT_EQ(ps->size(), 1u);
  EXPECT_TRUE(hasPermission(*ps, "ec2:PlanConfig", labArn("vpc", "vpc-lab")));
}

TEST(ApplyConfig, AppliesTheDesiredPolicyThenNothingMore) {
  const model::Policy current = loadConfig("configs/lab.toml");
  const Json params = documentsOf("configs/lab-flowlogs");
  auto out = run("ApplyConfig", current, params);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->result["Applied"], true);
  ASSERT_TRUE(out->policy.has_value());
  ASSERT_EQ(out->policy->flow_logs.size(), 1u);
  EXPECT_EQ(out->policy->flow_logs[0].id, "fl-lab");
  ASSERT_EQ(out->result["Changes"].size(), 1u);
  EXPECT_EQ(out->result["Changes"][0]["Action"], "ec2:CreateFlowLogs");

  auto again = run("ApplyConfig", *out->policy, params);
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->policy.has_value());
  EXPECT_EQ(again->result["Applied"], false);
  EXPECT_EQ(again->result["Changes"], Json::array());
  EXPECT_TRUE(spec("ApplyConfig").mutating);
  EXPECT_FALSE(spec("PlanConfig").mutating);
}

// A file asks for what the API action would: a session needs its interface, target and filter
// too, a target its interface (so an ARN-scoped Deny on an interface holds for files as well).
TEST(ApplyConfig, PermissionsIncludeTheResourcesEachActionTouches) {
  const model::Policy current = loadConfig("configs/lab.toml");
  auto ps = spec("ApplyConfig").permissions(current, documentsOf("configs/lab-mirror"));
  ASSERT_TRUE(ps.has_value());
  const std::string session = "ec2:CreateTrafficMirrorSession";
  EXPECT_TRUE(hasPermission(*ps, session, labArn("traffic-mirror-session", "tms-web-monitor")));
  EXPECT_TRUE(hasPermission(*ps, session, labArn("network-interface", "eni-web1")));
  EXPECT_TRUE(hasPermission(*ps, session, labArn("traffic-mirror-target", "tmt-monitor")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateTrafficMirrorTarget",
                            labArn("network-interface", "eni-mon1")));
}

// The account and region make every ARN: a file may not move the VPC out from under the IAM
// policies.
TEST(ApplyConfig, RefusesAnotherAccountOrRegion) {
  const model::Policy current = loadConfig("configs/lab.toml");
  auto docs = config::readDocuments(test::sourceDir() + "/configs/lab.toml");
  ASSERT_TRUE(docs.has_value());
  std::string text = docs->front().text;
  const std::string region = "region = \"lab-1\"";
  ASSERT_NE(text.find(region), std::string::npos);
  text.replace(text.find(region), region.size(), "region = \"lab-2\"");
  const Json params = {{"Documents", Json::array({Json{{"Name", "lab.toml"}, {"Text", text}}})}};
  auto ps = spec("ApplyConfig").permissions(current, params);
  ASSERT_TRUE(ps.has_value());
  auto run = spec("ApplyConfig").run(current, params, ActionContext{});
  ASSERT_FALSE(run.has_value());
  EXPECT_EQ(run.error().code, "InvalidParameterValue");
  EXPECT_NE(run.error().message.find("account and region"), std::string::npos)
      << run.error().message;
}

TEST(ApplyConfig, PermissionsIncludeEveryImpliedAction) {
  const model::Policy current = loadConfig("configs/lab.toml");
  auto ps = spec("ApplyConfig").permissions(current, documentsOf("configs/lab-flowlogs"));
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:ApplyConfig", labArn("vpc", "vpc-lab")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", labArn("flow-log", "fl-lab")));
  // ... and on what it logs, as CreateFlowLogs itself asks.
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateFlowLogs", labArn("vpc", "vpc-lab")));
  EXPECT_EQ(ps->size(), 3u);
  // Going back to the lab without flow logs deletes it: that needs DeleteFlowLogs.
  const model::Policy with_flow_log = loadConfig("configs/lab-flowlogs");
  ps = spec("ApplyConfig").permissions(with_flow_log, documentsOf("configs/lab.toml"));
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:DeleteFlowLogs", labArn("flow-log", "fl-lab")));
  // Into an empty state: the VPC's ARN comes from the config.
  ps = spec("ApplyConfig").permissions(model::Policy{}, documentsOf("configs/lab.toml"));
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(hasPermission(*ps, "ec2:ApplyConfig", labArn("vpc", "vpc-lab")));
  EXPECT_TRUE(hasPermission(*ps, "ec2:CreateSecurityGroup", labArn("security-group", "sg-web")));
}

TEST(ApplyConfig, InvalidConfigIsReportedWithFileLineColumn) {
  const model::Policy current = loadConfig("configs/lab.toml");
  const Json params = {{"Documents",
                        {{{"Name", "bad.toml"},
                          {"Text", "[vpc]\nid = \"vpc-lab\"\naccount_id = \"123456789012\"\n"
                                   "region = \"us-east-1\"\ncidr_blocks = [\"10.0.0.0/16\"]\n\n"
                                   "[[subnets]]\nid = \"subnet-a\"\ncidr_block = \"10.1.0.0/24\"\n"}}}}};
  auto out = run("ApplyConfig", current, params);
  expectError(out, "InvalidConfig", "bad.toml:");
  if (!out) {
    EXPECT_THAT(out.error().message, ::testing::ContainsRegex("bad\\.toml:[0-9]+:[0-9]+: error"));
  }
  expectError(run("PlanConfig", current, params), "InvalidConfig", "bad.toml:");
  // Not valid TOML at all.
  const Json syntax = {{"Documents", {{{"Name", "x.toml"}, {"Text", "[vpc\nid = 1\n"}}}}};
  expectError(run("ApplyConfig", current, syntax), "InvalidConfig", "x.toml:1:");
  // An invalid config needs only the base permission: its errors are not shown to a caller who
  // may not apply.
  auto ps = spec("ApplyConfig").permissions(current, params);
  ASSERT_TRUE(ps.has_value());
  ASSERT_EQ(ps->size(), 1u);
  EXPECT_EQ((*ps)[0].action, "ec2:ApplyConfig");
}

TEST(ApplyConfig, ParameterErrorsAndAnotherVpc) {
  const model::Policy current = loadConfig("configs/lab.toml");
  expectError(run("ApplyConfig", current, Json::object()), "MissingParameter", "Documents");
  expectError(run("PlanConfig", current, Json{{"Documents", Json::array()}}), "MissingParameter");
  expectError(run("ApplyConfig", current, Json{{"Documents", {{{"Name", "a.toml"}}}}}),
              "MissingParameter", "Text");
  EXPECT_FALSE(spec("ApplyConfig").permissions(current, Json::object()).has_value());

  Json other = documentsOf("configs/lab.toml");
  std::string text = other["Documents"][0]["Text"];
  const auto at = text.find("\"vpc-lab\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 9, "\"vpc-other\"");
  other["Documents"][0]["Text"] = text;
  expectError(run("ApplyConfig", current, other), "InvalidParameterValue", "vpc-other");
  // Into an empty state any VPC is fine.
  auto fresh = run("ApplyConfig", model::Policy{}, other);
  ASSERT_TRUE(fresh.has_value()) << fresh.error().message;
  ASSERT_TRUE(fresh->policy.has_value());
  EXPECT_EQ(fresh->policy->vpc.id, "vpc-other");
}

}  // namespace
}  // namespace vpcguard::api
