// The permission matrix of the shipped roles (configs/iam): every API action x every example
// role, allowed or denied as the role means it. The expectations are written by hand from the
// roles' intent (docs/iam.md), not derived from the policy files or the evaluator.
//
// Two matrices over one table:
//  - HandWrittenPermissions: each action with the permissions its request needs, written here;
//    tests the role files and the evaluator alone;
//  - ThroughTheActions: each action's own permissions() (api/actions_*.cpp) on the sample
//    policy with AWS-shaped parameters; tests that the actions ask for what the roles expect.
//    An action that is not registered fails ("action X not registered"), it is not skipped.

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "api/actions.h"
#include "api/iam.h"
#include "tests/harness/paths.h"
#include "tests/harness/sample_policy.h"

namespace vpcguard::api {
namespace {

const std::string kArn = "arn:vpcguard:ec2:us-east-1:123456789012:";
std::string arn(const std::string& type_and_id) { return kArn + type_and_id; }

// Every action of the API (docs/iam.md). The matrix must cover each.
const std::vector<std::string> kActions = {
    "DescribeSecurityGroups",        "CreateSecurityGroup",
    "DeleteSecurityGroup",           "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",  "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",     "DescribeNetworkAcls",
    "CreateNetworkAcl",              "DeleteNetworkAcl",
    "CreateNetworkAclEntry",         "ReplaceNetworkAclEntry",
    "DeleteNetworkAclEntry",         "ReplaceNetworkAclAssociation",
    "ModifyNetworkInterfaceAttribute", "DescribeVpcs",
    "DescribeSubnets",               "DescribeNetworkInterfaces",
    "DescribeManagedPrefixLists",    "CreateFlowLogs",
    "DeleteFlowLogs",                "DescribeFlowLogs",
    "CreateTrafficMirrorTarget",     "DeleteTrafficMirrorTarget",
    "DescribeTrafficMirrorTargets",  "CreateTrafficMirrorFilter",
    "DeleteTrafficMirrorFilter",     "DescribeTrafficMirrorFilters",
    "CreateTrafficMirrorFilterRule", "DeleteTrafficMirrorFilterRule",
    "CreateTrafficMirrorSession",    "DeleteTrafficMirrorSession",
    "DescribeTrafficMirrorSessions", "ApplyConfig",
    "PlanConfig",
};

enum Verdict { kDeny = 0, kAllow = 1 };

struct Case {
  std::string label;   // unique: the action, or action/variant
  std::string action;  // API action name
  std::vector<std::string> resources;  // hand-written: the resources its request needs
  std::string params;  // AWS-shaped parameters for the action's permissions()
  Verdict admin;
  Verdict auditor;
  Verdict operator_;
};

// The lab's config, for ApplyConfig / PlanConfig, moved to the sample policy's region so that
// the config describes the same VPC (same ARNs).
Json configDocuments() {
  std::ifstream in(test::sourceDir() + "/configs/lab.toml");
  std::stringstream read;
  read << in.rdbuf();
  std::string text = read.str();
  const std::string lab_region = "region = \"lab-1\"";
  if (auto at = text.find(lab_region); at != std::string::npos) {
    text.replace(at, lab_region.size(), "region = \"us-east-1\"");
  }
  return Json::array({Json{{"Name", "lab.toml"}, {"Text", text}}});
}

// Read it as: network-admin may do everything; security-auditor may read and plan (a dry run)
// and nothing else; instance-operator may read and attach existing groups to interfaces other
// than the admin bastion's, and nothing else.
std::vector<Case> cases() {
  const std::string apply_params =
      Json{{"Documents", configDocuments()}}.dump();
  return {
      // Security groups.
      {"DescribeSecurityGroups", "DescribeSecurityGroups", {"*"}, "{}", kAllow, kAllow, kAllow},
      {"CreateSecurityGroup", "CreateSecurityGroup",
       {arn("vpc/vpc-lab"), arn("security-group/*")},
       R"({"GroupName": "app", "Description": "app servers", "VpcId": "vpc-lab"})", kAllow,
       kDeny, kDeny},
      {"DeleteSecurityGroup", "DeleteSecurityGroup", {arn("security-group/sg-db")},
       R"({"GroupId": "sg-db"})", kAllow, kDeny, kDeny},
      {"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupIngress",
       {arn("security-group/sg-web")},
       R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8080,
           "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}]})",
       kAllow, kDeny, kDeny},
      {"AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupEgress",
       {arn("security-group/sg-db")},
       R"({"GroupId": "sg-db", "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53,
           "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.2/32"}]}]})",
       kAllow, kDeny, kDeny},
      {"RevokeSecurityGroupIngress", "RevokeSecurityGroupIngress",
       {arn("security-group/sg-web")},
       R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443,
           "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})",
       kAllow, kDeny, kDeny},
      {"RevokeSecurityGroupEgress", "RevokeSecurityGroupEgress",
       {arn("security-group/sg-web")},
       R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "-1",
           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})",
       kAllow, kDeny, kDeny},
      // Network ACLs.
      {"DescribeNetworkAcls", "DescribeNetworkAcls", {"*"}, "{}", kAllow, kAllow, kAllow},
      {"CreateNetworkAcl", "CreateNetworkAcl", {arn("vpc/vpc-lab"), arn("network-acl/*")},
       R"({"VpcId": "vpc-lab"})", kAllow, kDeny, kDeny},
      {"DeleteNetworkAcl", "DeleteNetworkAcl", {arn("network-acl/acl-private")},
       R"({"NetworkAclId": "acl-private"})", kAllow, kDeny, kDeny},
      {"CreateNetworkAclEntry", "CreateNetworkAclEntry", {arn("network-acl/acl-private")},
       R"({"NetworkAclId": "acl-private", "RuleNumber": 200, "Egress": false, "Protocol": "6",
           "RuleAction": "allow", "CidrBlock": "10.0.3.0/24", "PortRange": {"From": 80,
           "To": 80}})",
       kAllow, kDeny, kDeny},
      {"ReplaceNetworkAclEntry", "ReplaceNetworkAclEntry", {arn("network-acl/acl-private")},
       R"({"NetworkAclId": "acl-private", "RuleNumber": 120, "Egress": false, "Protocol": "6",
           "RuleAction": "allow", "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 32768,
           "To": 65535}})",
       kAllow, kDeny, kDeny},
      {"DeleteNetworkAclEntry", "DeleteNetworkAclEntry", {arn("network-acl/acl-private")},
       R"({"NetworkAclId": "acl-private", "RuleNumber": 130, "Egress": false})", kAllow, kDeny,
       kDeny},
      {"ReplaceNetworkAclAssociation", "ReplaceNetworkAclAssociation",
       {arn("network-acl/acl-default"), arn("subnet/subnet-private")},
       R"({"AssociationId": "aclassoc-subnet-private", "NetworkAclId": "acl-default"})", kAllow,
       kDeny, kDeny},
      // Interfaces: the operator's one right, except on the admin bastion (an explicit Deny).
      {"ModifyNetworkInterfaceAttribute", "ModifyNetworkInterfaceAttribute",
       {arn("network-interface/eni-web1"), arn("security-group/sg-web"),
        arn("security-group/sg-bastion")},
       R"({"NetworkInterfaceId": "eni-web1", "Groups": ["sg-web", "sg-bastion"]})", kAllow,
       kDeny, kAllow},
      {"ModifyNetworkInterfaceAttribute/bastion", "ModifyNetworkInterfaceAttribute",
       {arn("network-interface/eni-bastion"), arn("security-group/sg-bastion"),
        arn("security-group/sg-web")},
       R"({"NetworkInterfaceId": "eni-bastion", "Groups": ["sg-bastion", "sg-web"]})", kAllow,
       kDeny, kDeny},
      // Turning the check off needs the VPC too: the operator attaches groups, nothing else.
      {"ModifyNetworkInterfaceAttribute/source-dest-check", "ModifyNetworkInterfaceAttribute",
       {arn("network-interface/eni-db1"), arn("vpc/vpc-lab")},
       R"({"NetworkInterfaceId": "eni-db1", "SourceDestCheck": {"Value": false}})", kAllow,
       kDeny, kDeny},
      {"DescribeVpcs", "DescribeVpcs", {"*"}, "{}", kAllow, kAllow, kAllow},
      {"DescribeSubnets", "DescribeSubnets", {"*"}, "{}", kAllow, kAllow, kAllow},
      {"DescribeNetworkInterfaces", "DescribeNetworkInterfaces", {"*"}, "{}", kAllow, kAllow,
       kAllow},
      {"DescribeManagedPrefixLists", "DescribeManagedPrefixLists", {"*"}, "{}", kAllow, kAllow,
       kAllow},
      // Flow logs.
      {"CreateFlowLogs", "CreateFlowLogs", {arn("vpc/vpc-lab"), arn("flow-log/*")},
       R"({"ResourceIds": ["vpc-lab"], "ResourceType": "VPC", "TrafficType": "ALL",
           "LogDestinationType": "file", "LogDestination": "file:///var/log/vpcguard/flows"})",
       kAllow, kDeny, kDeny},
      {"DeleteFlowLogs", "DeleteFlowLogs", {arn("flow-log/fl-sample")},
       R"({"FlowLogIds": ["fl-sample"]})", kAllow, kDeny, kDeny},
      {"DescribeFlowLogs", "DescribeFlowLogs", {"*"}, "{}", kAllow, kAllow, kAllow},
      // Traffic mirroring.
      {"CreateTrafficMirrorTarget", "CreateTrafficMirrorTarget",
       {arn("traffic-mirror-target/*"), arn("network-interface/eni-db1")},
       R"({"NetworkInterfaceId": "eni-db1", "Description": "monitor"})", kAllow, kDeny, kDeny},
      {"DeleteTrafficMirrorTarget", "DeleteTrafficMirrorTarget",
       {arn("traffic-mirror-target/tmt-sample")}, R"({"TrafficMirrorTargetId": "tmt-sample"})",
       kAllow, kDeny, kDeny},
      {"DescribeTrafficMirrorTargets", "DescribeTrafficMirrorTargets", {"*"}, "{}", kAllow,
       kAllow, kAllow},
      {"CreateTrafficMirrorFilter", "CreateTrafficMirrorFilter",
       {arn("traffic-mirror-filter/*")}, R"({"Description": "web traffic"})", kAllow, kDeny,
       kDeny},
      {"DeleteTrafficMirrorFilter", "DeleteTrafficMirrorFilter",
       {arn("traffic-mirror-filter/tmf-sample")}, R"({"TrafficMirrorFilterId": "tmf-sample"})",
       kAllow, kDeny, kDeny},
      {"DescribeTrafficMirrorFilters", "DescribeTrafficMirrorFilters", {"*"}, "{}", kAllow,
       kAllow, kAllow},
      {"CreateTrafficMirrorFilterRule", "CreateTrafficMirrorFilterRule",
       {arn("traffic-mirror-filter/tmf-sample")},
       R"({"TrafficMirrorFilterId": "tmf-sample", "TrafficDirection": "ingress",
           "RuleNumber": 200, "RuleAction": "accept", "Protocol": 6,
           "SourceCidrBlock": "0.0.0.0/0", "DestinationCidrBlock": "10.0.1.0/24"})",
       kAllow, kDeny, kDeny},
      {"DeleteTrafficMirrorFilterRule", "DeleteTrafficMirrorFilterRule",
       {arn("traffic-mirror-filter/tmf-sample")},
       R"({"TrafficMirrorFilterRuleId": "tmfr-sample-ingress-100"})", kAllow, kDeny, kDeny},
      {"CreateTrafficMirrorSession", "CreateTrafficMirrorSession",
       {arn("traffic-mirror-session/*"), arn("network-interface/eni-db1"),
        arn("traffic-mirror-target/tmt-sample"), arn("traffic-mirror-filter/tmf-sample")},
       R"({"NetworkInterfaceId": "eni-db1", "TrafficMirrorTargetId": "tmt-sample",
           "TrafficMirrorFilterId": "tmf-sample", "SessionNumber": 1})",
       kAllow, kDeny, kDeny},
      {"DeleteTrafficMirrorSession", "DeleteTrafficMirrorSession",
       {arn("traffic-mirror-session/tms-sample")}, R"({"TrafficMirrorSessionId": "tms-sample"})",
       kAllow, kDeny, kDeny},
      {"DescribeTrafficMirrorSessions", "DescribeTrafficMirrorSessions", {"*"}, "{}", kAllow,
       kAllow, kAllow},
      // Whole configs: applying is the admin's; planning (a dry run) the auditor's too.
      {"ApplyConfig", "ApplyConfig", {arn("vpc/vpc-lab")}, apply_params, kAllow, kDeny, kDeny},
      {"PlanConfig", "PlanConfig", {arn("vpc/vpc-lab")}, apply_params, kAllow, kAllow, kDeny},
  };
}

// The sample policy plus one object of each kind the deletes name.
model::Policy matrixPolicy() {
  model::Policy p = test::samplePolicy();
  model::FlowLog fl;
  fl.id = "fl-sample";
  fl.resource_id = "vpc-lab";
  fl.log_destination = "file:///var/log/vpcguard/flows";
  p.flow_logs.push_back(fl);
  model::TrafficMirrorTarget tmt;
  tmt.id = "tmt-sample";
  tmt.network_interface_id = "eni-bastion";
  p.traffic_mirror_targets.push_back(tmt);
  model::TrafficMirrorFilter tmf;
  tmf.id = "tmf-sample";
  model::TrafficMirrorFilterRule rule;
  rule.rule_number = 100;
  rule.accept = true;
  rule.source_cidr_block = test::cidr("0.0.0.0/0");
  rule.destination_cidr_block = test::cidr("0.0.0.0/0");
  tmf.ingress_rules.push_back(rule);
  p.traffic_mirror_filters.push_back(tmf);
  model::TrafficMirrorSession tms;
  tms.id = "tms-sample";
  tms.network_interface_id = "eni-web1";
  tms.traffic_mirror_target_id = "tmt-sample";
  tms.traffic_mirror_filter_id = "tmf-sample";
  tms.session_number = 1;
  p.traffic_mirror_sessions.push_back(tms);
  return p;
}

struct Role {
  const char* name;
  Principal principal;
  Verdict Case::*expected;
};

Principal principal(std::string user, std::vector<std::string> more) {
  Principal p;
  p.display = "user:" + user;
  p.names = {"user:" + user};
  p.names.insert(p.names.end(), more.begin(), more.end());
  p.source = "test";
  return p;
}

std::vector<Role> roles() {
  return {
      {"network-admin (root)", principal("root", {"uid:0", "group:root", "gid:0"}),
       &Case::admin},
      {"network-admin (group)",
       principal("alice", {"uid:1001", "group:alice", "gid:1001", "group:vpcguard-admin"}),
       &Case::admin},
      {"security-auditor",
       principal("bob", {"uid:1002", "group:bob", "gid:1002", "group:vpcguard-audit"}),
       &Case::auditor},
      {"instance-operator",
       principal("carol", {"uid:1003", "group:carol", "gid:1003", "group:vpcguard-operator"}),
       &Case::operator_},
  };
}

const Principal kNobody =
    principal("mallory", {"uid:1666", "group:mallory", "gid:1666", "group:users", "gid:100"});

class IamMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = IamConfig::load(test::sourceDir() + "/configs/iam");
    ASSERT_TRUE(r) << r.error().message;
    config_ = std::move(*r);
  }
  IamConfig config_;
};

TEST_F(IamMatrix, ShippedRolesAreTheThree) {
  std::set<std::string> names;
  for (const auto& p : config_.policies()) names.insert(p.name);
  EXPECT_EQ(names,
            (std::set<std::string>{"network-admin", "security-auditor", "instance-operator"}));
}

TEST_F(IamMatrix, CoversEveryAction) {
  std::set<std::string> covered;
  for (const Case& c : cases()) covered.insert(c.action);
  for (const auto& action : kActions) {
    EXPECT_TRUE(covered.count(action)) << action << " missing from the matrix";
  }
  EXPECT_EQ(covered.size(), kActions.size());
}

void expectVerdicts(const IamConfig& config, const Case& c,
                    const std::vector<Permission>& needed) {
  for (const Role& role : roles()) {
    const Decision d = config.evaluate(role.principal, needed);
    EXPECT_EQ(d.allowed, c.*role.expected == kAllow)
        << c.label << " as " << role.name << ": " << (d.allowed ? "allowed" : d.reason);
  }
  const Decision nobody = config.evaluate(kNobody, needed);
  EXPECT_FALSE(nobody.allowed) << c.label << " allowed to a user with no binding";
}

TEST_F(IamMatrix, HandWrittenPermissions) {
  for (const Case& c : cases()) {
    std::vector<Permission> needed;
    for (const auto& resource : c.resources) needed.push_back({"ec2:" + c.action, resource});
    expectVerdicts(config_, c, needed);
  }
}

TEST_F(IamMatrix, BastionRefusalIsTheExplicitDeny) {
  const Principal op = roles()[3].principal;
  const Decision d = config_.evaluate(
      op, {{"ec2:ModifyNetworkInterfaceAttribute", arn("security-group/sg-web")},
           {"ec2:ModifyNetworkInterfaceAttribute", arn("network-interface/eni-bastion")}});
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.refused.resource, arn("network-interface/eni-bastion"));
  EXPECT_EQ(d.reason, "explicitly denied by policy instance-operator "
                      "(iam/instance-operator.json:19:5)");
  // And the operator's default deny names the caller.
  const Decision create =
      config_.evaluate(op, {{"ec2:CreateSecurityGroup", arn("vpc/vpc-lab")}});
  ASSERT_FALSE(create.allowed);
  EXPECT_EQ(create.reason, "no policy attached to user:carol allows it");
}

TEST_F(IamMatrix, ThroughTheActions) {
  const model::Policy policy = matrixPolicy();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.label);
    const ActionSpec* spec = findAction(c.action);
    if (spec == nullptr || !spec->permissions) {
      ADD_FAILURE() << "action " << c.action << " not registered";
      continue;
    }
    const Json params = Json::parse(c.params);
    auto needed = spec->permissions(policy, params);
    if (!needed) {
      ADD_FAILURE() << c.label << ": permissions() refused the sample request: "
                    << needed.error().code << ": " << needed.error().message;
      continue;
    }
    EXPECT_FALSE(needed->empty()) << c.label << " needs no permission at all";
    for (const Permission& p : *needed) {
      EXPECT_EQ(p.resource == "*" || p.resource.rfind(kArn, 0) == 0, true)
          << c.label << ": resource '" << p.resource << "' is neither \"*\" nor this VPC's ARN";
    }
    const bool own_action = std::any_of(needed->begin(), needed->end(), [&](const Permission& p) {
      return p.action == "ec2:" + c.action;
    });
    EXPECT_TRUE(own_action) << c.label << " does not ask for ec2:" << c.action;
    expectVerdicts(config_, c, *needed);
  }
}

}  // namespace
}  // namespace vpcguard::api
