// The core API actions (api/actions_sg.cpp, actions_nacl.cpp, actions_eni.cpp) as pure functions
// on a policy: every action's success and each error code it returns, the IAM resources each
// names, the request decoder on malformed input, and the round trip that issue 11 asks for:
// describe output -> import-aws -> TOML -> loader gives back the policy it was described from.

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/actions.h"
#include "api/params.h"
#include "api/request.h"
#include "daemon/config_loader.h"
#include "daemon/import_aws.h"
#include "tests/harness/paths.h"
#include "tests/harness/sample_policy.h"
#include "translator/defaults.h"
#include "translator/validate.h"

namespace vpcguard::api {
namespace {

using test::cidr;
using test::ip;

// Ids as AWS shapes them ("sg-" + 17 hex digits), counting up so tests know what comes next.
ActionContext testContext() {
  auto counter = std::make_shared<int>(0);
  ActionContext context;
  context.new_id = [counter](std::string_view prefix) {
    char digits[18];
    std::snprintf(digits, sizeof digits, "%017x", ++*counter);
    return std::string(prefix) + "-" + digits;
  };
  return context;
}

Json params(std::string_view text) { return Json::parse(text); }

// Runs an action the way the server does: permissions first, then run. Both must agree on
// whether the request is acceptable when permissions() already finds a problem.
ApiResult<ActionOutcome> run(const model::Policy& policy, std::string_view action,
                             const Json& parameters) {
  const ActionSpec* spec = findAction(action);
  if (spec == nullptr) {
    ADD_FAILURE() << "no action " << action;
    return apiError("InvalidAction", std::string(action));
  }
  auto permissions = spec->permissions(policy, parameters);
  auto outcome = spec->run(policy, parameters, testContext());
  if (!permissions) {
    EXPECT_FALSE(outcome.has_value()) << action << ": permissions() refused ("
                                      << permissions.error().code << ") but run() accepted";
  }
  return outcome;
}

std::vector<Permission> permissionsOf(const model::Policy& policy, std::string_view action,
                                      const Json& parameters) {
  auto p = findAction(action)->permissions(policy, parameters);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().code + ": " + p.error().message);
  return p ? *p : std::vector<Permission>{};
}

std::string errorCode(const ApiResult<ActionOutcome>& outcome) {
  return outcome ? "<success>" : outcome.error().code;
}

// Every state-changing success must give a policy that validation accepts.
void expectValid(const ApiResult<ActionOutcome>& outcome) {
  ASSERT_TRUE(outcome.has_value()) << outcome.error().code << ": " << outcome.error().message;
  ASSERT_TRUE(outcome->policy.has_value());
  for (const Diagnostic& d : validatePolicy(*outcome->policy)) {
    ADD_FAILURE() << "invalid policy after the action: " << formatDiagnostic(d);
  }
}

const model::SecurityGroup& group(const model::Policy& p, std::string_view id) {
  for (const auto& g : p.security_groups) {
    if (g.id == id) return g;
  }
  throw std::runtime_error("no group " + std::string(id));
}

const model::NetworkAcl& acl(const model::Policy& p, std::string_view id) {
  for (const auto& a : p.network_acls) {
    if (a.id == id) return a;
  }
  throw std::runtime_error("no network ACL " + std::string(id));
}

bool hasGroup(const model::Policy& p, std::string_view id) {
  return std::any_of(p.security_groups.begin(), p.security_groups.end(),
                     [&](const auto& g) { return g.id == id; });
}

// Table rows: parameters and the error code AWS would return.
struct ErrorCase {
  const char* name;
  const char* parameters;
  const char* code;
};

void expectErrors(const model::Policy& policy, std::string_view action,
                  const std::vector<ErrorCase>& cases) {
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(std::string(action) + " / " + c.name);
    const auto outcome = run(policy, action, params(c.parameters));
    EXPECT_EQ(errorCode(outcome), c.code) << (outcome ? "" : outcome.error().message);
  }
}

class ApiActions : public ::testing::Test {
 protected:
  model::Policy policy_ = test::samplePolicy();
};

// --- the table -----------------------------------------------------------------------------------

TEST_F(ApiActions, EveryCoreActionIsRegistered) {
  for (const char* name :
       {"DescribeSecurityGroups", "CreateSecurityGroup", "DeleteSecurityGroup",
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "DescribeNetworkAcls",
        "CreateNetworkAcl", "DeleteNetworkAcl", "CreateNetworkAclEntry", "ReplaceNetworkAclEntry",
        "DeleteNetworkAclEntry", "ReplaceNetworkAclAssociation", "DescribeVpcs", "DescribeSubnets",
        "DescribeNetworkInterfaces", "DescribeManagedPrefixLists",
        "ModifyNetworkInterfaceAttribute"}) {
    const ActionSpec* spec = findAction(name);
    ASSERT_NE(spec, nullptr) << name;
    EXPECT_EQ(spec->mutating, !std::string_view(name).starts_with("Describe")) << name;
  }
}

TEST_F(ApiActions, DescribeNeedsPermissionOnAnyResource) {
  for (const char* name : {"DescribeSecurityGroups", "DescribeNetworkAcls", "DescribeVpcs",
                           "DescribeSubnets", "DescribeNetworkInterfaces",
                           "DescribeManagedPrefixLists"}) {
    const auto p = permissionsOf(policy_, name, Json::object());
    ASSERT_EQ(p.size(), 1u) << name;
    EXPECT_EQ(p[0].action, "ec2:" + std::string(name));
    EXPECT_EQ(p[0].resource, "*");
  }
}

// --- security groups -----------------------------------------------------------------------------

TEST_F(ApiActions, DescribeSecurityGroupsGroupsPermissionsAsAws) {
  auto out = run(policy_, "DescribeSecurityGroups", params(R"({"GroupIds": ["sg-web"]})"));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_FALSE(out->policy.has_value());
  const Json& groups = out->result.at("SecurityGroups");
  ASSERT_EQ(groups.size(), 1u);
  const Json& web = groups[0];
  EXPECT_EQ(web.at("GroupId"), "sg-web");
  EXPECT_EQ(web.at("GroupName"), "web");
  EXPECT_EQ(web.at("VpcId"), "vpc-lab");
  EXPECT_EQ(web.at("OwnerId"), "123456789012");
  // tcp 80 from 0.0.0.0/0 and ::/0 share one permission; 443 and 22 have their own.
  const Json expected_ingress = params(R"([
    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
     "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
     "PrefixListIds": [], "UserIdGroupPairs": []},
    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
     "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [],
     "UserIdGroupPairs": []},
    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [], "Ipv6Ranges": [],
     "PrefixListIds": [], "UserIdGroupPairs": [{"GroupId": "sg-bastion",
                                                "UserId": "123456789012"}]}])");
  EXPECT_EQ(web.at("IpPermissions"), expected_ingress) << web.at("IpPermissions").dump(2);
  // All protocols: "-1" and no ports.
  const Json expected_egress = params(R"([
    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
     "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": [], "UserIdGroupPairs": []}])");
  EXPECT_EQ(web.at("IpPermissionsEgress"), expected_egress);
}

TEST_F(ApiActions, DescribeSecurityGroupsIcmpAnyIsMinusOne) {
  auto out = run(policy_, "DescribeSecurityGroups", params(R"({"GroupIds": ["sg-db"]})"));
  ASSERT_TRUE(out);
  const Json& icmp = out->result["SecurityGroups"][0]["IpPermissions"][2];
  EXPECT_EQ(icmp.at("IpProtocol"), "icmp");
  EXPECT_EQ(icmp.at("FromPort"), -1);
  EXPECT_EQ(icmp.at("ToPort"), -1);
}

TEST_F(ApiActions, DescribeSecurityGroupsSelection) {
  auto all = run(policy_, "DescribeSecurityGroups", Json::object());
  ASSERT_TRUE(all);
  EXPECT_EQ(all->result["SecurityGroups"].size(), policy_.security_groups.size());
  auto by_name = run(policy_, "DescribeSecurityGroups", params(R"({"GroupNames": ["db"]})"));
  ASSERT_TRUE(by_name);
  ASSERT_EQ(by_name->result["SecurityGroups"].size(), 1u);
  EXPECT_EQ(by_name->result["SecurityGroups"][0]["GroupId"], "sg-db");
  auto filtered = run(policy_, "DescribeSecurityGroups",
                      params(R"({"Filters": [{"Name": "group-name",
                                               "Values": ["web", "bastion"]}]})"));
  ASSERT_TRUE(filtered);
  EXPECT_EQ(filtered->result["SecurityGroups"].size(), 2u);
  expectErrors(policy_, "DescribeSecurityGroups",
               {{"unknown id", R"({"GroupIds": ["sg-nope"]})", "InvalidGroup.NotFound"},
                {"unknown name", R"({"GroupNames": ["nope"]})", "InvalidGroup.NotFound"},
                {"ids not strings", R"({"GroupIds": [1]})", "InvalidParameterValue"},
                {"unknown filter", R"({"Filters": [{"Name": "tag:x", "Values": ["y"]}]})",
                 "InvalidParameterValue"},
                {"filter without values", R"({"Filters": [{"Name": "group-id"}]})",
                 "MissingParameter"}});
}

TEST_F(ApiActions, CreateSecurityGroupGetsAwsDefaultEgress) {
  const auto out = run(policy_, "CreateSecurityGroup",
                       params(R"({"GroupName": "cache", "Description": "redis",
                                  "VpcId": "vpc-lab"})"));
  expectValid(out);
  EXPECT_EQ(out->result.at("GroupId"), "sg-00000000000000001");
  const auto& g = group(*out->policy, "sg-00000000000000001");
  EXPECT_EQ(g.name, "cache");
  EXPECT_EQ(g.description, "redis");
  EXPECT_FALSE(g.is_default);
  EXPECT_TRUE(g.ingress.empty());
  ASSERT_EQ(g.egress.size(), 2u);  // all to 0.0.0.0/0 and ::/0
  EXPECT_EQ(g.location.file, "api");
  EXPECT_EQ(out->policy->security_groups.size(), policy_.security_groups.size() + 1);
}

TEST_F(ApiActions, CreateSecurityGroupNeedsTheGroupAndTheVpc) {
  const auto p = permissionsOf(policy_, "CreateSecurityGroup",
                               params(R"({"GroupName": "x", "Description": "y"})"));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].action, "ec2:CreateSecurityGroup");
  EXPECT_EQ(p[0].resource, "arn:vpcguard:ec2:us-east-1:123456789012:security-group/*");
  EXPECT_EQ(p[1].resource, "arn:vpcguard:ec2:us-east-1:123456789012:vpc/vpc-lab");
}

TEST_F(ApiActions, CreateSecurityGroupErrors) {
  expectErrors(policy_, "CreateSecurityGroup",
               {{"no name", R"({"Description": "d"})", "MissingParameter"},
                {"no description", R"({"GroupName": "n"})", "MissingParameter"},
                {"name taken", R"({"GroupName": "web", "Description": "d"})",
                 "InvalidGroup.Duplicate"},
                {"default is taken", R"({"GroupName": "default", "Description": "d"})",
                 "InvalidGroup.Duplicate"},
                {"other vpc", R"({"GroupName": "n", "Description": "d", "VpcId": "vpc-x"})",
                 "InvalidVpcID.NotFound"},
                {"sg- name", R"({"GroupName": "sg-1", "Description": "d"})",
                 "InvalidParameterValue"},
                {"name not a string", R"({"GroupName": 7, "Description": "d"})",
                 "InvalidParameterValue"}});
}

TEST_F(ApiActions, DeleteSecurityGroup) {
  auto created = run(policy_, "CreateSecurityGroup",
                     params(R"({"GroupName": "tmp", "Description": "d"})"));
  ASSERT_TRUE(created);
  const std::string id = created->result["GroupId"];
  for (const char* by : {"GroupId", "GroupName"}) {
    SCOPED_TRACE(by);
    Json request = {{by, std::string(by) == "GroupId" ? id : std::string("tmp")}};
    auto deleted = run(*created->policy, "DeleteSecurityGroup", request);
    expectValid(deleted);
    EXPECT_FALSE(hasGroup(*deleted->policy, id));
    EXPECT_EQ(deleted->result, Json({{"Return", true}, {"GroupId", id}}));
    const auto p = permissionsOf(*created->policy, "DeleteSecurityGroup", request);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].resource, "arn:vpcguard:ec2:us-east-1:123456789012:security-group/" + id);
  }
}

TEST_F(ApiActions, DeleteSecurityGroupErrors) {
  // A group no interface uses but another group's rule references.
  auto created = run(policy_, "CreateSecurityGroup",
                     params(R"({"GroupName": "tmp", "Description": "d"})"));
  ASSERT_TRUE(created);
  auto referenced = run(*created->policy, "AuthorizeSecurityGroupIngress",
                        params(R"({"GroupId": "sg-bastion", "IpPermissions": [
                          {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2,
                           "UserIdGroupPairs": [{"GroupId": "sg-00000000000000001"}]}]})"));
  ASSERT_TRUE(referenced);
  expectErrors(*referenced->policy, "DeleteSecurityGroup",
               {{"default group", R"({"GroupId": "sg-default"})", "CannotDelete"},
                {"used by an interface", R"({"GroupId": "sg-bastion"})", "DependencyViolation"},
                {"referenced by a rule", R"({"GroupId": "sg-00000000000000001"})",
                 "DependencyViolation"},
                {"unknown id", R"({"GroupId": "sg-nope"})", "InvalidGroup.NotFound"},
                {"unknown name", R"({"GroupName": "nope"})", "InvalidGroup.NotFound"},
                {"neither", R"({})", "MissingParameter"}});
}

TEST_F(ApiActions, AuthorizeIngressWithIpPermissions) {
  const auto out = run(policy_, "AuthorizeSecurityGroupIngress", params(R"({
      "GroupId": "sg-db", "IpPermissions": [{
        "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6380,
        "IpRanges": [{"CidrIp": "10.0.1.0/24", "Description": "from public"}],
        "Ipv6Ranges": [{"CidrIpv6": "2600:1f18:abcd:1201::/64"}]}]})"));
  expectValid(out);
  EXPECT_EQ(out->result.at("Return"), true);
  const Json& rules = out->result.at("SecurityGroupRules");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].at("GroupId"), "sg-db");
  EXPECT_EQ(rules[0].at("IsEgress"), false);
  EXPECT_EQ(rules[0].at("IpProtocol"), "tcp");
  EXPECT_EQ(rules[0].at("FromPort"), 6379);
  EXPECT_EQ(rules[0].at("ToPort"), 6380);
  EXPECT_EQ(rules[0].at("CidrIpv4"), "10.0.1.0/24");
  EXPECT_EQ(rules[0].at("Description"), "from public");
  EXPECT_EQ(rules[1].at("CidrIpv6"), "2600:1f18:abcd:1201::/64");
  EXPECT_FALSE(rules[1].contains("Description"));
  const std::string id = rules[0].at("SecurityGroupRuleId");
  EXPECT_TRUE(id.starts_with("sgr-")) << id;
  EXPECT_EQ(id.size(), 4u + 17u) << id;
  EXPECT_NE(id, rules[1].at("SecurityGroupRuleId"));

  const auto& db = group(*out->policy, "sg-db");
  ASSERT_EQ(db.ingress.size(), group(policy_, "sg-db").ingress.size() + 2);
  EXPECT_EQ(db.ingress.back().ports, (model::PortRange{6379, 6380}));
  EXPECT_EQ(db.ingress.back().location.file, "api");

  const auto p = permissionsOf(policy_, "AuthorizeSecurityGroupIngress",
                               params(R"({"GroupId": "sg-db"})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].action, "ec2:AuthorizeSecurityGroupIngress");
  EXPECT_EQ(p[0].resource, "arn:vpcguard:ec2:us-east-1:123456789012:security-group/sg-db");

  // The same request again: every rule exists now.
  EXPECT_EQ(errorCode(run(*out->policy, "AuthorizeSecurityGroupIngress", params(R"({
      "GroupId": "sg-db", "IpPermissions": [{
        "IpProtocol": "6", "FromPort": "6379", "ToPort": 6380,
        "IpRanges": [{"CidrIp": "10.0.1.0/24", "Description": "another text"}]}]})"))),
            "InvalidPermission.Duplicate");
}

TEST_F(ApiActions, AuthorizeFlatFormAsTheCliSendsIt) {
  struct Case {
    const char* name;
    const char* parameters;
    model::SecurityGroupRule expected;
  };
  const auto rule = [](int protocol, std::optional<model::PortRange> ports,
                       std::optional<model::IcmpTypeCode> icmp, model::Peer peer) {
    model::SecurityGroupRule r;
    r.ip_protocol = protocol;
    r.ports = ports;
    r.icmp = icmp;
    r.peer = std::move(peer);
    return r;
  };
  const std::vector<Case> cases = {
      {"port range", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": "1000-2000",
                         "CidrIp": "10.0.0.0/8"})",
       rule(6, model::PortRange{1000, 2000}, {}, cidr("10.0.0.0/8"))},
      {"single port, group by name",
       R"({"GroupId": "sg-web", "Protocol": "udp", "Port": 53, "SourceGroup": "db"})",
       rule(17, model::PortRange{53, 53}, {}, model::GroupRef{"sg-db"})},
      {"group by id", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": "25",
                          "SourceGroup": "sg-db"})",
       rule(6, model::PortRange{25, 25}, {}, model::GroupRef{"sg-db"})},
      {"icmp type only", R"({"GroupId": "sg-web", "Protocol": "icmp", "Port": "8",
                             "CidrIp": "10.0.0.0/16"})",
       rule(1, {}, model::IcmpTypeCode{8, -1}, cidr("10.0.0.0/16"))},
      {"icmp type-code", R"({"GroupId": "sg-web", "Protocol": "icmp", "Port": "3-4",
                             "CidrIp": "10.0.0.0/16"})",
       rule(1, {}, model::IcmpTypeCode{3, 4}, cidr("10.0.0.0/16"))},
      {"tcp all ports", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": "-1",
                            "CidrIp": "10.9.0.0/16"})",
       rule(6, model::PortRange{0, 65535}, {}, cidr("10.9.0.0/16"))},
      {"all protocols", R"({"GroupId": "sg-web", "Protocol": "-1", "CidrIp": "10.9.0.0/16"})",
       rule(-1, {}, {}, cidr("10.9.0.0/16"))},
      {"API flat names", R"({"GroupId": "sg-web", "IpProtocol": "tcp", "FromPort": 7,
                             "ToPort": 9, "CidrIp": "10.9.0.0/16"})",
       rule(6, model::PortRange{7, 9}, {}, cidr("10.9.0.0/16"))},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto out = run(policy_, "AuthorizeSecurityGroupIngress", params(c.parameters));
    expectValid(out);
    if (!out) continue;
    const auto& added = group(*out->policy, "sg-web").ingress.back();
    EXPECT_EQ(added.ip_protocol, c.expected.ip_protocol);
    EXPECT_EQ(added.ports, c.expected.ports);
    EXPECT_EQ(added.icmp, c.expected.icmp);
    EXPECT_EQ(added.peer, c.expected.peer);
  }
}

TEST_F(ApiActions, AuthorizeEgressGoesToEgress) {
  const auto out = run(policy_, "AuthorizeSecurityGroupEgress", params(R"({
      "GroupId": "sg-db", "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53,
        "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.2/32"}]}]})"));
  expectValid(out);
  EXPECT_EQ(group(*out->policy, "sg-db").egress.size(), 3u);
  EXPECT_EQ(group(*out->policy, "sg-db").ingress.size(), 3u);
  EXPECT_EQ(out->result["SecurityGroupRules"][0]["IsEgress"], true);
  // All protocols to anywhere exists already in every sample group.
  EXPECT_EQ(errorCode(run(policy_, "AuthorizeSecurityGroupEgress", params(R"({
      "GroupId": "sg-db", "IpPermissions": [{"IpProtocol": "-1",
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})"))),
            "InvalidPermission.Duplicate");
}

TEST_F(ApiActions, AuthorizeErrors) {
  model::Policy with_list = policy_;
  model::PrefixList list;
  list.id = "pl-office";
  list.name = "office";
  list.max_entries = 2;
  list.entries = {cidr("192.0.2.0/24")};
  with_list.prefix_lists.push_back(list);
  auto ok = run(with_list, "AuthorizeSecurityGroupIngress", params(R"({"GroupId": "sg-web",
      "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                         "PrefixListIds": [{"PrefixListId": "pl-office"}]}]})"));
  expectValid(ok);

  expectErrors(
      with_list, "AuthorizeSecurityGroupIngress",
      {{"no group", R"({"IpPermissions": []})", "MissingParameter"},
       {"unknown group", R"({"GroupId": "sg-nope", "Protocol": "tcp", "Port": 1,
                             "CidrIp": "10.0.0.0/8"})",
        "InvalidGroup.NotFound"},
       {"no rule", R"({"GroupId": "sg-web"})", "MissingParameter"},
       {"empty list", R"({"GroupId": "sg-web", "IpPermissions": []})", "MissingParameter"},
       {"not a list", R"({"GroupId": "sg-web", "IpPermissions": {"IpProtocol": "tcp"}})",
        "InvalidParameterValue"},
       {"entry not a structure", R"({"GroupId": "sg-web", "IpPermissions": [5]})",
        "InvalidParameterValue"},
       {"no protocol", R"({"GroupId": "sg-web", "IpPermissions": [
           {"IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "MissingParameter"},
       {"bad protocol", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "sctpx",
           "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidParameterValue"},
       {"protocol 256", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "256",
           "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidParameterValue"},
       {"tcp without ports", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
           "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidParameterValue"},
       {"port out of range", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
           "FromPort": 1, "ToPort": 70000, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidParameterValue"},
       {"ports reversed", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
           "FromPort": 9, "ToPort": 8, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidParameterValue"},
       {"bad port text", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": "a-b",
                             "CidrIp": "10.0.0.0/8"})",
        "InvalidParameterValue"},
       {"malformed cidr", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 1,
                              "CidrIp": "10.0.0.300/8"})",
        "InvalidParameterValue"},
       {"host bits set", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 1,
                             "CidrIp": "10.0.0.1/8"})",
        "InvalidParameterValue"},
       {"ipv6 as CidrIp", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 1,
                              "CidrIp": "::/0"})",
        "InvalidParameterValue"},
       {"unknown referenced group", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 1,
                                        "SourceGroup": "sg-nope"})",
        "InvalidGroup.NotFound"},
       {"other account", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
           "FromPort": 1, "ToPort": 1, "UserIdGroupPairs": [{"GroupId": "sg-db",
           "UserId": "999999999999"}]}]})",
        "InvalidParameterValue"},
       {"unknown prefix list", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
           "FromPort": 1, "ToPort": 1, "PrefixListIds": [{"PrefixListId": "pl-nope"}]}]})",
        "InvalidPrefixListID.NotFound"},
       {"no peer", R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
           "FromPort": 1, "ToPort": 1}]})",
        "MissingParameter"},
       {"both forms", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 1,
           "CidrIp": "10.0.0.0/8", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 1,
           "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidParameterCombination"},
       {"existing rule", R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 22,
                             "SourceGroup": "sg-bastion"})",
        "InvalidPermission.Duplicate"},
       {"twice in one request", R"({"GroupId": "sg-web", "IpPermissions": [
           {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "10.0.0.0/8"}]}]})",
        "InvalidPermission.Duplicate"}});
}

TEST_F(ApiActions, RevokeRemovesTheRule) {
  const auto out = run(policy_, "RevokeSecurityGroupIngress",
                       params(R"({"GroupId": "sg-web", "IpPermissions": [{"IpProtocol": "tcp",
                         "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]})"));
  expectValid(out);
  EXPECT_EQ(out->result, Json({{"Return", true}}));
  EXPECT_EQ(group(*out->policy, "sg-web").ingress.size(), 2u);  // 443 and ssh remain
  EXPECT_EQ(errorCode(run(*out->policy, "RevokeSecurityGroupIngress",
                          params(R"({"GroupId": "sg-web", "Protocol": "tcp", "Port": 80,
                                     "CidrIp": "0.0.0.0/0"})"))),
            "InvalidPermission.NotFound");

  const auto egress = run(policy_, "RevokeSecurityGroupEgress",
                          params(R"({"GroupId": "sg-db", "IpPermissions": [{"IpProtocol": "-1",
                            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})"));
  expectValid(egress);
  EXPECT_EQ(group(*egress->policy, "sg-db").egress.size(), 1u);
  // Ingress does not hold that rule.
  EXPECT_EQ(errorCode(run(policy_, "RevokeSecurityGroupIngress",
                          params(R"({"GroupId": "sg-db", "IpPermissions": [{"IpProtocol": "-1",
                            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})"))),
            "InvalidPermission.NotFound");
  // An ICMP rule written without type/code is the any/any rule the model holds.
  const auto icmp = run(policy_, "RevokeSecurityGroupIngress",
                        params(R"({"GroupId": "sg-db", "Protocol": "icmp", "Port": -1,
                                   "CidrIp": "10.0.0.0/16"})"));
  expectValid(icmp);
  EXPECT_EQ(group(*icmp->policy, "sg-db").ingress.size(), 2u);
}

TEST_F(ApiActions, RevokeBySecurityGroupRuleId) {
  const auto added = run(policy_, "AuthorizeSecurityGroupIngress",
                         params(R"({"GroupId": "sg-db", "Protocol": "tcp", "Port": 9000,
                                    "CidrIp": "10.0.0.0/16"})"));
  ASSERT_TRUE(added);
  const std::string id = added->result["SecurityGroupRules"][0]["SecurityGroupRuleId"];
  const auto out = run(*added->policy, "RevokeSecurityGroupIngress",
                       Json{{"GroupId", "sg-db"}, {"SecurityGroupRuleIds", {id}}});
  expectValid(out);
  EXPECT_EQ(group(*out->policy, "sg-db").ingress.size(), group(policy_, "sg-db").ingress.size());
  EXPECT_EQ(errorCode(run(*out->policy, "RevokeSecurityGroupIngress",
                          Json{{"GroupId", "sg-db"}, {"SecurityGroupRuleIds", {id}}})),
            "InvalidSecurityGroupRuleId.NotFound");
  // The id is a function of the rule: the same rule authorized again gets the same id.
  const auto again = run(*out->policy, "AuthorizeSecurityGroupIngress",
                         params(R"({"GroupId": "sg-db", "Protocol": "tcp", "Port": 9000,
                                    "CidrIp": "10.0.0.0/16"})"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->result["SecurityGroupRules"][0]["SecurityGroupRuleId"], id);
}

// --- network ACLs --------------------------------------------------------------------------------

TEST_F(ApiActions, DescribeNetworkAclsAsAws) {
  auto out = run(policy_, "DescribeNetworkAcls", params(R"({"NetworkAclIds": ["acl-private"]})"));
  ASSERT_TRUE(out) << out.error().message;
  ASSERT_EQ(out->result["NetworkAcls"].size(), 1u);
  const Json& nacl = out->result["NetworkAcls"][0];
  EXPECT_EQ(nacl.at("NetworkAclId"), "acl-private");
  EXPECT_EQ(nacl.at("IsDefault"), false);
  EXPECT_EQ(nacl.at("VpcId"), "vpc-lab");
  EXPECT_EQ(nacl.at("Associations"),
            params(R"([{"NetworkAclAssociationId": "aclassoc-subnet-private",
                        "NetworkAclId": "acl-private", "SubnetId": "subnet-private"}])"));
  const Json& entries = nacl.at("Entries");
  // 6 entries + `*` deny for IPv4 and IPv6 in both directions; egress first, as AWS lists them.
  ASSERT_EQ(entries.size(), 10u);
  EXPECT_EQ(entries[0], params(R"({"RuleNumber": 100, "Egress": true, "Protocol": "6",
      "RuleAction": "allow", "CidrBlock": "10.0.1.0/24", "PortRange": {"From": 1024, "To": 65535}})"));
  EXPECT_EQ(entries[2], params(R"({"RuleNumber": 32767, "Egress": true, "Protocol": "-1",
                                   "RuleAction": "deny", "CidrBlock": "0.0.0.0/0"})"));
  EXPECT_EQ(entries[3], params(R"({"RuleNumber": 32768, "Egress": true, "Protocol": "-1",
                                   "RuleAction": "deny", "Ipv6CidrBlock": "::/0"})"));
  EXPECT_EQ(entries[4].at("Egress"), false);
  EXPECT_EQ(entries[7], params(R"({"RuleNumber": 130, "Egress": false, "Protocol": "1",
                                   "RuleAction": "allow", "CidrBlock": "10.0.0.0/16"})"));

  auto defaults = run(policy_, "DescribeNetworkAcls",
                      params(R"({"Filters": [{"Name": "default", "Values": ["true"]}]})"));
  ASSERT_TRUE(defaults);
  ASSERT_EQ(defaults->result["NetworkAcls"].size(), 1u);
  EXPECT_EQ(defaults->result["NetworkAcls"][0]["NetworkAclId"], "acl-default");
  expectErrors(policy_, "DescribeNetworkAcls",
               {{"unknown", R"({"NetworkAclIds": ["acl-nope"]})", "InvalidNetworkAclID.NotFound"}});
}

TEST_F(ApiActions, CreateNetworkAclDeniesEverything) {
  const auto out = run(policy_, "CreateNetworkAcl", params(R"({"VpcId": "vpc-lab"})"));
  expectValid(out);
  const Json& nacl = out->result.at("NetworkAcl");
  EXPECT_EQ(nacl.at("NetworkAclId"), "acl-00000000000000001");
  EXPECT_EQ(nacl.at("IsDefault"), false);
  EXPECT_TRUE(nacl.at("Associations").empty());
  EXPECT_EQ(nacl.at("Entries").size(), 4u);  // only the `*` denies
  EXPECT_TRUE(acl(*out->policy, "acl-00000000000000001").entries.empty());
  const auto p = permissionsOf(policy_, "CreateNetworkAcl", params(R"({"VpcId": "vpc-lab"})"));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].resource, "arn:vpcguard:ec2:us-east-1:123456789012:network-acl/*");
  EXPECT_EQ(p[1].resource, "arn:vpcguard:ec2:us-east-1:123456789012:vpc/vpc-lab");
  expectErrors(policy_, "CreateNetworkAcl",
               {{"no vpc", "{}", "MissingParameter"},
                {"other vpc", R"({"VpcId": "vpc-x"})", "InvalidVpcID.NotFound"}});
}

TEST_F(ApiActions, DeleteNetworkAcl) {
  const auto created = run(policy_, "CreateNetworkAcl", params(R"({"VpcId": "vpc-lab"})"));
  ASSERT_TRUE(created);
  const auto out = run(*created->policy, "DeleteNetworkAcl",
                       params(R"({"NetworkAclId": "acl-00000000000000001"})"));
  expectValid(out);
  EXPECT_EQ(out->policy->network_acls.size(), policy_.network_acls.size());
  expectErrors(policy_, "DeleteNetworkAcl",
               {{"default", R"({"NetworkAclId": "acl-default"})", "InvalidParameterValue"},
                {"associated", R"({"NetworkAclId": "acl-private"})", "DependencyViolation"},
                {"unknown", R"({"NetworkAclId": "acl-nope"})", "InvalidNetworkAclID.NotFound"},
                {"missing", "{}", "MissingParameter"}});
}

TEST_F(ApiActions, NetworkAclEntryLifecycle) {
  const auto created = run(policy_, "CreateNetworkAclEntry", params(R"({
      "NetworkAclId": "acl-private", "RuleNumber": 140, "Egress": false, "Protocol": "17",
      "RuleAction": "allow", "CidrBlock": "10.0.0.0/16", "PortRange": {"From": 53, "To": 53}})"));
  expectValid(created);
  const auto& entry = acl(*created->policy, "acl-private").entries.back();
  EXPECT_EQ(entry.rule_number, 140);
  EXPECT_FALSE(entry.egress);
  EXPECT_EQ(entry.protocol, 17);
  EXPECT_TRUE(entry.allow);
  EXPECT_EQ(entry.cidr, cidr("10.0.0.0/16"));
  EXPECT_EQ(entry.port_range, (model::PortRange{53, 53}));
  EXPECT_EQ(created->result, Json::object());
  const auto p = permissionsOf(policy_, "CreateNetworkAclEntry",
                               params(R"({"NetworkAclId": "acl-private"})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].resource, "arn:vpcguard:ec2:us-east-1:123456789012:network-acl/acl-private");

  const char* again = R"({"NetworkAclId": "acl-private", "RuleNumber": 140, "Egress": false,
      "Protocol": "-1", "RuleAction": "deny", "CidrBlock": "0.0.0.0/0"})";
  EXPECT_EQ(errorCode(run(*created->policy, "CreateNetworkAclEntry", params(again))),
            "NetworkAclEntryAlreadyExists");
  // The same number in the other direction is another entry.
  expectValid(run(*created->policy, "CreateNetworkAclEntry", params(R"({
      "NetworkAclId": "acl-private", "RuleNumber": 140, "Egress": true, "Protocol": "icmp",
      "RuleAction": "allow", "CidrBlock": "10.0.0.0/16", "IcmpTypeCode": {"Type": 0, "Code": -1}})")));

  const auto replaced = run(*created->policy, "ReplaceNetworkAclEntry", params(again));
  expectValid(replaced);
  const auto& r = acl(*replaced->policy, "acl-private").entries.back();
  EXPECT_EQ(r.rule_number, 140);
  EXPECT_FALSE(r.allow);
  EXPECT_EQ(r.protocol, -1);
  EXPECT_FALSE(r.port_range.has_value());
  EXPECT_EQ(acl(*replaced->policy, "acl-private").entries.size(),
            acl(*created->policy, "acl-private").entries.size());

  const char* remove = R"({"NetworkAclId": "acl-private", "RuleNumber": 140, "Egress": false})";
  const auto deleted = run(*replaced->policy, "DeleteNetworkAclEntry", params(remove));
  expectValid(deleted);
  EXPECT_EQ(acl(*deleted->policy, "acl-private").entries.size(),
            acl(policy_, "acl-private").entries.size());
  EXPECT_EQ(errorCode(run(*deleted->policy, "DeleteNetworkAclEntry", params(remove))),
            "InvalidNetworkAclEntry.NotFound");
  EXPECT_EQ(errorCode(run(*deleted->policy, "ReplaceNetworkAclEntry", params(again))),
            "InvalidNetworkAclEntry.NotFound");
}

TEST_F(ApiActions, NetworkAclEntryErrors) {
  expectErrors(
      policy_, "CreateNetworkAclEntry",
      {{"unknown acl", R"({"NetworkAclId": "acl-nope", "RuleNumber": 1, "Egress": false,
           "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "InvalidNetworkAclID.NotFound"},
       {"no rule number", R"({"NetworkAclId": "acl-private", "Egress": false,
           "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "MissingParameter"},
       {"rule number 0", R"({"NetworkAclId": "acl-private", "RuleNumber": 0, "Egress": false,
           "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "InvalidParameterValue"},
       {"rule number 32767", R"({"NetworkAclId": "acl-private", "RuleNumber": 32767,
           "Egress": false, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "InvalidParameterValue"},
       {"rule number text", R"({"NetworkAclId": "acl-private", "RuleNumber": "abc",
           "Egress": false, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "InvalidParameterValue"},
       {"no egress", R"({"NetworkAclId": "acl-private", "RuleNumber": 5,
           "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "MissingParameter"},
       {"no protocol", R"({"NetworkAclId": "acl-private", "RuleNumber": 5, "Egress": false,
           "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "MissingParameter"},
       {"bad protocol", R"({"NetworkAclId": "acl-private", "RuleNumber": 5, "Egress": false,
           "Protocol": "999", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"})",
        "InvalidParameterValue"},
       {"bad action", R"({"NetworkAclId": "acl-private", "RuleNumber": 5, "Egress": false,
           "Protocol": "-1", "RuleAction": "permit", "CidrBlock": "0.0.0.0/0"})",
        "InvalidParameterValue"},
       {"no cidr", R"({"NetworkAclId": "acl-private", "RuleNumber": 5, "Egress": false,
           "Protocol": "-1", "RuleAction": "allow"})",
        "MissingParameter"},
       {"both cidrs", R"({"NetworkAclId": "acl-private", "RuleNumber": 5, "Egress": false,
           "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0",
           "Ipv6CidrBlock": "::/0"})",
        "InvalidParameterCombination"},
       {"v6 in CidrBlock", R"({"NetworkAclId": "acl-private", "RuleNumber": 5, "Egress": false,
           "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "::/0"})",
        "InvalidParameterValue"},
       {"port range reversed", R"({"NetworkAclId": "acl-private", "RuleNumber": 5,
           "Egress": false, "Protocol": "6", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0",
           "PortRange": {"From": 10, "To": 1}})",
        "InvalidParameterValue"},
       {"port range half", R"({"NetworkAclId": "acl-private", "RuleNumber": 5,
           "Egress": false, "Protocol": "6", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0",
           "PortRange": {"From": 10}})",
        "MissingParameter"},
       {"port range not a structure", R"({"NetworkAclId": "acl-private", "RuleNumber": 5,
           "Egress": false, "Protocol": "6", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0",
           "PortRange": "10-20"})",
        "InvalidParameterValue"}});
}

TEST_F(ApiActions, ReplaceNetworkAclAssociation) {
  const char* request = R"({"AssociationId": "aclassoc-subnet-public",
                            "NetworkAclId": "acl-private"})";
  const auto out = run(policy_, "ReplaceNetworkAclAssociation", params(request));
  expectValid(out);
  EXPECT_EQ(out->result, Json({{"NewAssociationId", "aclassoc-subnet-public"}}));
  EXPECT_EQ(out->policy->subnets[0].network_acl_id, "acl-private");
  const auto p = permissionsOf(policy_, "ReplaceNetworkAclAssociation", params(request));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].resource, "arn:vpcguard:ec2:us-east-1:123456789012:network-acl/acl-private");
  EXPECT_EQ(p[1].resource, "arn:vpcguard:ec2:us-east-1:123456789012:subnet/subnet-public");
  // Now the default NACL has no subnet, and acl-private cannot be deleted.
  EXPECT_EQ(errorCode(run(*out->policy, "DeleteNetworkAcl",
                          params(R"({"NetworkAclId": "acl-private"})"))),
            "DependencyViolation");
  expectErrors(policy_, "ReplaceNetworkAclAssociation",
               {{"unknown association", R"({"AssociationId": "aclassoc-nope",
                                            "NetworkAclId": "acl-private"})",
                 "InvalidAssociationID.NotFound"},
                {"unknown acl", R"({"AssociationId": "aclassoc-subnet-public",
                                    "NetworkAclId": "acl-nope"})",
                 "InvalidNetworkAclID.NotFound"},
                {"no association", R"({"NetworkAclId": "acl-private"})", "MissingParameter"}});
}

// --- VPC, subnets, interfaces, prefix lists ------------------------------------------------------

TEST_F(ApiActions, DescribeNetworkInterfacesAsAws) {
  auto out = run(policy_, "DescribeNetworkInterfaces",
                 params(R"({"NetworkInterfaceIds": ["eni-web1"]})"));
  ASSERT_TRUE(out);
  ASSERT_EQ(out->result["NetworkInterfaces"].size(), 1u);
  const Json& eni = out->result["NetworkInterfaces"][0];
  EXPECT_EQ(eni.at("NetworkInterfaceId"), "eni-web1");
  EXPECT_EQ(eni.at("SubnetId"), "subnet-public");
  EXPECT_EQ(eni.at("VpcId"), "vpc-lab");
  EXPECT_EQ(eni.at("MacAddress"), "02:00:00:00:01:0a");
  EXPECT_EQ(eni.at("PrivateIpAddress"), "10.0.1.10");
  EXPECT_EQ(eni.at("PrivateIpAddresses"),
            params(R"([{"Primary": true, "PrivateIpAddress": "10.0.1.10"}])"));
  EXPECT_EQ(eni.at("Ipv6Addresses"), params(R"([{"Ipv6Address": "2600:1f18:abcd:1201::10"}])"));
  EXPECT_EQ(eni.at("Groups"), params(R"([{"GroupId": "sg-web", "GroupName": "web"}])"));
  EXPECT_EQ(eni.at("SourceDestCheck"), true);
  EXPECT_FALSE(eni.contains("ConnectionTrackingConfiguration"));
}

TEST_F(ApiActions, DescribeUnknownIds) {
  expectErrors(policy_, "DescribeVpcs",
               {{"unknown", R"({"VpcIds": ["vpc-x"]})", "InvalidVpcID.NotFound"}});
  expectErrors(policy_, "DescribeSubnets",
               {{"unknown", R"({"SubnetIds": ["subnet-x"]})", "InvalidSubnetID.NotFound"}});
  expectErrors(policy_, "DescribeNetworkInterfaces",
               {{"unknown", R"({"NetworkInterfaceIds": ["eni-x"]})",
                 "InvalidNetworkInterfaceID.NotFound"}});
  expectErrors(policy_, "DescribeManagedPrefixLists",
               {{"unknown", R"({"PrefixListIds": ["pl-x"]})", "InvalidPrefixListID.NotFound"}});
  auto vpcs = run(policy_, "DescribeVpcs", params(R"({"VpcIds": ["vpc-lab"]})"));
  ASSERT_TRUE(vpcs);
  EXPECT_EQ(vpcs->result["Vpcs"][0]["CidrBlock"], "10.0.0.0/16");
  auto subnets = run(policy_, "DescribeSubnets",
                     params(R"({"Filters": [{"Name": "cidr-block", "Values": ["10.0.2.0/24"]}]})"));
  ASSERT_TRUE(subnets);
  ASSERT_EQ(subnets->result["Subnets"].size(), 1u);
  EXPECT_EQ(subnets->result["Subnets"][0]["SubnetId"], "subnet-private");
}

TEST_F(ApiActions, ModifyInterfaceGroups) {
  const char* request = R"({"NetworkInterfaceId": "eni-web1", "Groups": ["sg-web", "sg-db"]})";
  const auto out = run(policy_, "ModifyNetworkInterfaceAttribute", params(request));
  expectValid(out);
  EXPECT_EQ(out->result, Json::object());
  EXPECT_EQ(out->policy->network_interfaces[0].security_group_ids,
            (std::vector<std::string>{"sg-web", "sg-db"}));
  // The interface and every group it is put in.
  const auto p = permissionsOf(policy_, "ModifyNetworkInterfaceAttribute", params(request));
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].action, "ec2:ModifyNetworkInterfaceAttribute");
  EXPECT_EQ(p[0].resource,
            "arn:vpcguard:ec2:us-east-1:123456789012:network-interface/eni-web1");
  EXPECT_EQ(p[1].resource, "arn:vpcguard:ec2:us-east-1:123456789012:security-group/sg-web");
  EXPECT_EQ(p[2].resource, "arn:vpcguard:ec2:us-east-1:123456789012:security-group/sg-db");
}

TEST_F(ApiActions, ModifyInterfaceOtherAttributes) {
  const auto check = run(policy_, "ModifyNetworkInterfaceAttribute",
                         params(R"({"NetworkInterfaceId": "eni-db1",
                                    "SourceDestCheck": {"Value": false}})"));
  expectValid(check);
  EXPECT_FALSE(check->policy->network_interfaces[2].source_dest_check);
  const auto p = permissionsOf(policy_, "ModifyNetworkInterfaceAttribute",
                               params(R"({"NetworkInterfaceId": "eni-db1",
                                          "SourceDestCheck": false})"));
  // The interface and the VPC: turning the check off is not only the interface's business.
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].resource, resourceArn(policy_.vpc, "vpc", policy_.vpc.id));

  const auto tracking = run(policy_, "ModifyNetworkInterfaceAttribute",
                            params(R"({"NetworkInterfaceId": "eni-db1",
                                       "ConnectionTrackingSpecification": {
                                         "TcpEstablishedTimeout": 3600, "UdpTimeout": 60}})"));
  expectValid(tracking);
  const auto& ct = tracking->policy->network_interfaces[2].connection_tracking;
  EXPECT_EQ(ct.tcp_established_timeout, 3600);
  EXPECT_EQ(ct.udp_timeout, 60);
  EXPECT_FALSE(ct.udp_stream_timeout.has_value());
}

TEST_F(ApiActions, ModifyInterfaceErrors) {
  expectErrors(
      policy_, "ModifyNetworkInterfaceAttribute",
      {{"no interface", R"({"SourceDestCheck": false})", "MissingParameter"},
       {"unknown interface", R"({"NetworkInterfaceId": "eni-x", "SourceDestCheck": false})",
        "InvalidNetworkInterfaceID.NotFound"},
       {"no attribute", R"({"NetworkInterfaceId": "eni-web1"})", "MissingParameter"},
       {"two attributes", R"({"NetworkInterfaceId": "eni-web1", "SourceDestCheck": false,
                              "Groups": ["sg-web"]})",
        "InvalidParameterCombination"},
       {"unknown group", R"({"NetworkInterfaceId": "eni-web1", "Groups": ["sg-x"]})",
        "InvalidGroup.NotFound"},
       {"empty groups", R"({"NetworkInterfaceId": "eni-web1", "Groups": []})",
        "MissingParameter"},
       {"not a bool", R"({"NetworkInterfaceId": "eni-web1", "SourceDestCheck": "maybe"})",
        "InvalidParameterValue"},
       {"unmodelled attribute", R"({"NetworkInterfaceId": "eni-web1", "Description": "x"})",
        "InvalidParameterValue"}});
}

// --- the request decoder -------------------------------------------------------------------------

TEST(ApiRequest, DecodesAValidRequest) {
  auto r = decodeRequest(R"({"RequestId": "c0ffee", "Action": "DescribeSecurityGroups",
                             "Parameters": {"GroupIds": ["sg-web"]}})"
                         "\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->request_id, "c0ffee");
  EXPECT_EQ(r->action, "DescribeSecurityGroups");
  EXPECT_EQ(r->parameters, params(R"({"GroupIds": ["sg-web"]})"));
  auto bare = decodeRequest(R"({"Action": "DescribeVpcs"})");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->request_id, "");
  EXPECT_EQ(bare->parameters, Json::object());
}

TEST(ApiRequest, MalformedInputIsAnErrorNeverAnException) {
  const auto nested = [](size_t depth) {
    return R"({"Action": "X", "Parameters": {"a": )" + std::string(depth, '[') +
           std::string(depth, ']') + "}}";
  };
  struct Case {
    std::string name;
    std::string line;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"empty", "", "MalformedRequest"},
      {"not json", "hello", "MalformedRequest"},
      {"truncated", R"({"Action": "DescribeVpcs")", "MalformedRequest"},
      {"array", R"(["DescribeVpcs"])", "MalformedRequest"},
      {"number", "42", "MalformedRequest"},
      {"no action", R"({"Parameters": {}})", "MalformedRequest"},
      {"action not a string", R"({"Action": 5})", "MalformedRequest"},
      {"action with a space", R"({"Action": "Describe Vpcs"})", "InvalidParameterValue"},
      {"action with digits", R"({"Action": "Describe2"})", "InvalidParameterValue"},
      {"empty action", R"({"Action": ""})", "InvalidParameterValue"},
      {"action too long", R"({"Action": ")" + std::string(65, 'A') + "\"}",
       "InvalidParameterValue"},
      {"parameters a list", R"({"Action": "X", "Parameters": []})", "MalformedRequest"},
      {"parameters a string", R"({"Action": "X", "Parameters": "a"})", "MalformedRequest"},
      {"request id a number", R"({"Action": "X", "RequestId": 5})", "MalformedRequest"},
      {"request id too long", R"({"Action": "X", "RequestId": ")" + std::string(300, 'a') + "\"}",
       "MalformedRequest"},
      {"invalid utf-8", "{\"Action\": \"X\", \"Parameters\": {\"a\": \"\xff\xfe\"}}",
       "MalformedRequest"},
      {"overlong utf-8", "{\"Action\": \"X\", \"RequestId\": \"\xc0\xaf\"}", "MalformedRequest"},
      {"too deep", nested(70), "MalformedRequest"},
      {"very deep", std::string(100000, '['), "MalformedRequest"},
      {"huge", std::string(kMaxRequestBytes + 1, ' '), "MalformedRequest"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    tl::expected<Request, ApiError> r;
    EXPECT_NO_THROW(r = decodeRequest(c.line));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
  }
  // 64 levels in all are allowed; brackets inside strings do not count.
  EXPECT_TRUE(decodeRequest(nested(62)));
  EXPECT_TRUE(decodeRequest(R"({"Action": "X", "Parameters": {"a": ")" + std::string(200, '[') +
                            "\"}}"));
  EXPECT_TRUE(decodeRequest(R"({"Action": "X", "Parameters": {"a": "\"[[[\\"}})"));
}

TEST(ApiRequest, ResponsesAreOneLineOfJson) {
  const std::string ok = encodeResult("r1", params(R"({"Return": true, "Text": "a\nb"})"));
  ASSERT_FALSE(ok.empty());
  EXPECT_EQ(ok.back(), '\n');
  EXPECT_EQ(std::count(ok.begin(), ok.end(), '\n'), 1);
  const Json parsed = Json::parse(ok);
  EXPECT_EQ(parsed.at("RequestId"), "r1");
  EXPECT_EQ(parsed.at("Result").at("Text"), "a\nb");

  // Invalid UTF-8 in a message is replaced, not thrown about.
  std::string error;
  EXPECT_NO_THROW(error = encodeError("r\xff", ApiError{"InvalidGroup.NotFound", "bad \xc3"}));
  const Json e = Json::parse(error);
  EXPECT_EQ(e.at("Error").at("Code"), "InvalidGroup.NotFound");
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1);
}

// --- round trip: describe -> import-aws -> loader ------------------------------------------------

// What the round trip must preserve, as text (so a failure shows the difference): every object
// of the policy by id, fields in a fixed order, rules and entries in a canonical order (AWS
// groups rules by protocol and ports, so their order is not kept; it has no meaning). Left out:
// source locations, field_locations, flow logs and mirroring (their own actions and describe),
// strict_revocation and quotas (not AWS objects, so not in any describe output).
std::string canonical(const model::Policy& p) {
  std::ostringstream out;
  const auto cidrs = [](const auto& list) {
    std::string s;
    for (const auto& c : list) s += c.toString() + " ";
    return s;
  };
  out << "vpc " << p.vpc.id << " account=" << p.vpc.account_id << " region=" << p.vpc.region
      << " v4=" << cidrs(p.vpc.cidr_blocks) << "v6=" << cidrs(p.vpc.ipv6_cidr_blocks) << "\n";
  std::vector<std::string> lines;
  for (const auto& s : p.subnets) {
    lines.push_back("subnet " + s.id + " " + s.cidr_block.toString() + " v6=" +
                    (s.ipv6_cidr_block ? s.ipv6_cidr_block->toString() : "-") + " nacl=" +
                    s.network_acl_id);
  }
  for (const auto& e : p.network_interfaces) {
    std::string line = "eni " + e.id + " subnet=" + e.subnet_id + " mac=" + e.mac_address + " ips=";
    for (const auto& a : e.private_ip_addresses) line += a.toString() + ",";
    line += " v6=";
    for (const auto& a : e.ipv6_addresses) line += a.toString() + ",";
    line += " groups=";
    for (const auto& g : e.security_group_ids) line += g + ",";
    line += std::string(" sdc=") + (e.source_dest_check ? "1" : "0");
    const auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : "-"; };
    line += " ct=" + opt(e.connection_tracking.tcp_established_timeout) + "/" +
            opt(e.connection_tracking.udp_timeout) + "/" +
            opt(e.connection_tracking.udp_stream_timeout);
    lines.push_back(line);
  }
  for (const auto& g : p.security_groups) {
    lines.push_back("sg " + g.id + " name=" + g.name + " description=" + g.description +
                    " default=" + (g.is_default ? "1" : "0"));
    for (const bool egress : {false, true}) {
      std::vector<std::string> rules;
      for (const auto& r : egress ? g.egress : g.ingress) {
        std::string rule = "  rule " + g.id + (egress ? " egress " : " ingress ") +
                           std::to_string(r.ip_protocol);
        if (r.ports) rule += " ports=" + std::to_string(r.ports->from) + "-" +
                             std::to_string(r.ports->to);
        if (r.icmp) rule += " icmp=" + std::to_string(r.icmp->type) + "/" +
                            std::to_string(r.icmp->code);
        if (const auto* c = std::get_if<Cidr>(&r.peer)) rule += " cidr=" + c->toString();
        if (const auto* ref = std::get_if<model::GroupRef>(&r.peer)) rule += " group=" + ref->group_id;
        if (const auto* l = std::get_if<model::PrefixListRef>(&r.peer)) {
          rule += " prefix-list=" + l->prefix_list_id;
        }
        rule += " description=" + r.description;
        rules.push_back(rule);
      }
      std::sort(rules.begin(), rules.end());
      lines.insert(lines.end(), rules.begin(), rules.end());
    }
  }
  for (const auto& l : p.prefix_lists) {
    std::vector<std::string> entries;
    for (const auto& c : l.entries) entries.push_back(c.toString());
    std::sort(entries.begin(), entries.end());
    std::string line = "prefix-list " + l.id + " name=" + l.name +
                       " max=" + std::to_string(l.max_entries) + " entries=";
    for (const auto& e : entries) line += e + ",";
    lines.push_back(line);
  }
  for (const auto& a : p.network_acls) {
    lines.push_back("nacl " + a.id + " default=" + (a.is_default ? "1" : "0"));
    auto entries = a.entries;
    std::sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) {
      return std::pair(x.egress, x.rule_number) < std::pair(y.egress, y.rule_number);
    });
    for (const auto& e : entries) {
      std::string line = "  entry " + a.id + (e.egress ? " egress " : " ingress ") +
                         std::to_string(e.rule_number) + " proto=" + std::to_string(e.protocol) +
                         (e.allow ? " allow " : " deny ") + e.cidr.toString();
      if (e.port_range) line += " ports=" + std::to_string(e.port_range->from) + "-" +
                                std::to_string(e.port_range->to);
      if (e.icmp_type_code) line += " icmp=" + std::to_string(e.icmp_type_code->type) + "/" +
                                    std::to_string(e.icmp_type_code->code);
      lines.push_back(line);
    }
  }
  // Objects by kind and id (the import writes them in id order); rules stay under their object
  // because each line names it.
  std::stable_sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    const auto key = [](const std::string& l) {
      const std::string trimmed = l.substr(l.find_first_not_of(' '));
      const size_t second = trimmed.find(' ', trimmed.find(' ') + 1);
      return trimmed.substr(trimmed.find(' ') + 1, second - trimmed.find(' ') - 1) +
             (l.starts_with(' ') ? "|1" : "|0");
    };
    return key(a) < key(b);
  });
  for (const auto& l : lines) out << l << "\n";
  return out.str();
}

// The policy the describe output of `policy` gives back through import-aws and the loader.
model::Policy reimport(const model::Policy& policy, std::string* toml_out = nullptr) {
  std::vector<AwsDocument> documents;
  for (const char* action : {"DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups",
                             "DescribeNetworkAcls", "DescribeNetworkInterfaces",
                             "DescribeManagedPrefixLists"}) {
    auto out = run(policy, action, Json::object());
    EXPECT_TRUE(out) << action;
    if (!out) return {};
    // Through text, as a user's files would be.
    auto doc = parseAwsDocument(std::string(action) + ".json", out->result.dump(2));
    EXPECT_TRUE(doc);
    if (doc) documents.push_back(std::move(*doc));
  }
  ImportAwsOptions options;
  // EC2 results do not name the region (the endpoint does); import-aws takes it as an option.
  options.region = policy.vpc.region;
  auto imported = importAws(documents, options);
  EXPECT_TRUE(imported) << (imported ? "" : imported.error().message);
  if (!imported) return {};
  for (const ImportWarning& w : imported->warnings) {
    ADD_FAILURE() << "import-aws warning: " << formatWarning(w);
  }
  if (toml_out != nullptr) *toml_out = imported->toml;
  auto parsed = config::parseDocuments({{"imported.toml", imported->toml}});
  for (const Diagnostic& d : parsed.diagnostics) {
    ADD_FAILURE() << "loader: " << formatDiagnostic(d) << "\n" << imported->toml;
  }
  for (const Diagnostic& d : validatePolicy(parsed.policy, parsed.reported_paths)) {
    ADD_FAILURE() << "validation: " << formatDiagnostic(d) << "\n" << imported->toml;
  }
  auto resolved = resolveDefaults(parsed.policy);
  EXPECT_TRUE(resolved) << (resolved ? "" : resolved.error().message);
  return resolved ? *resolved : model::Policy{};
}

void expectRoundTrip(const model::Policy& policy) {
  for (const Diagnostic& d : validatePolicy(policy)) {
    ADD_FAILURE() << "the starting policy is invalid: " << formatDiagnostic(d);
  }
  std::string toml;
  const model::Policy back = reimport(policy, &toml);
  EXPECT_EQ(canonical(back), canonical(policy)) << "imported TOML:\n" << toml;
}

// The comparison must see every field the round trip is meant to keep.
TEST(ApiRoundTrip, ComparisonSeesEachField) {
  const model::Policy base = test::samplePolicy();
  const std::string reference = canonical(base);
  const std::vector<std::pair<const char*, std::function<void(model::Policy&)>>> mutations = {
      {"rule description", [](model::Policy& p) { p.security_groups[1].ingress[0].description = "x"; }},
      {"rule port", [](model::Policy& p) { p.security_groups[1].ingress[0].ports->to = 81; }},
      {"rule peer", [](model::Policy& p) { p.security_groups[1].ingress[0].peer = cidr("10.0.0.0/8"); }},
      {"rule moved to egress",
       [](model::Policy& p) {
         auto& g = p.security_groups[2];
         g.egress.push_back(g.ingress.back());
         g.ingress.pop_back();
       }},
      {"group name", [](model::Policy& p) { p.security_groups[2].name = "x"; }},
      {"entry action", [](model::Policy& p) { p.network_acls[1].entries[0].allow = false; }},
      {"entry icmp", [](model::Policy& p) {
         p.network_acls[1].entries[3].icmp_type_code = model::IcmpTypeCode{-1, -1};
       }},
      {"subnet nacl", [](model::Policy& p) { p.subnets[0].network_acl_id = "acl-private"; }},
      {"interface groups", [](model::Policy& p) { p.network_interfaces[0].security_group_ids = {"sg-db"}; }},
      {"interface check", [](model::Policy& p) { p.network_interfaces[0].source_dest_check = false; }},
      {"interface tracking",
       [](model::Policy& p) { p.network_interfaces[0].connection_tracking.udp_timeout = 60; }},
      {"vpc region", [](model::Policy& p) { p.vpc.region = "eu-west-1"; }},
      {"object gone", [](model::Policy& p) { p.network_acls.pop_back(); }},
  };
  for (const auto& [name, mutate] : mutations) {
    model::Policy changed = base;
    mutate(changed);
    EXPECT_NE(canonical(changed), reference) << name;
  }
  // Order is not compared: AWS regroups rules, import-aws sorts objects.
  model::Policy reordered = base;
  std::reverse(reordered.security_groups.begin(), reordered.security_groups.end());
  std::reverse(reordered.security_groups[0].ingress.begin(),
               reordered.security_groups[0].ingress.end());
  EXPECT_EQ(canonical(reordered), reference);
}

TEST(ApiRoundTrip, SamplePolicy) { expectRoundTrip(test::samplePolicy()); }

TEST(ApiRoundTrip, LabConfig) {
  auto lab = config::loadPolicy(test::sourceDir() + "/configs/lab.toml");
  ASSERT_TRUE(lab) << lab.error().toError().message;
  expectRoundTrip(*lab);
}

// The sample with what the other two lack: a prefix list, descriptions, other protocols,
// ICMP type/code in rules and entries, IPv6 NACL entries, secondary addresses, the
// source/destination check off and connection tracking timeouts.
TEST(ApiRoundTrip, EveryDescribedField) {
  model::Policy p = test::samplePolicy();
  model::PrefixList list;
  list.id = "pl-office";
  list.name = "office";
  list.max_entries = 5;
  list.entries = {cidr("198.51.100.0/24"), cidr("192.0.2.0/24")};
  p.prefix_lists.push_back(list);
  model::SecurityGroup& web = p.security_groups[1];
  web.description = "web tier";
  const auto rule = [](int protocol, std::optional<model::PortRange> ports,
                       std::optional<model::IcmpTypeCode> icmp, model::Peer peer,
                       std::string description) {
    model::SecurityGroupRule r;
    r.ip_protocol = protocol;
    r.ports = ports;
    r.icmp = icmp;
    r.peer = std::move(peer);
    r.description = std::move(description);
    return r;
  };
  web.ingress.push_back(rule(6, model::PortRange{8443, 8443}, {}, model::PrefixListRef{"pl-office"},
                             "office https"));
  web.ingress.push_back(rule(17, model::PortRange{53, 53}, {}, cidr("10.0.0.0/16"), ""));
  web.ingress.push_back(rule(50, {}, {}, cidr("10.0.0.0/16"), "esp"));
  web.ingress.push_back(rule(58, {}, model::IcmpTypeCode{128, -1}, cidr("::/0"), "ping6"));
  web.egress.push_back(rule(1, {}, model::IcmpTypeCode{8, 0}, cidr("10.0.0.0/16"), ""));
  model::NetworkAcl& priv = p.network_acls[1];
  auto icmp_entry = test::naclEntry(140, false, model::kProtoIcmp, true, "10.0.0.0/16");
  icmp_entry.icmp_type_code = model::IcmpTypeCode{8, -1};
  priv.entries.push_back(icmp_entry);
  priv.entries.push_back(test::naclEntry(150, true, model::kProtoAll, false, "::/0"));
  priv.entries.push_back(test::naclEntry(160, false, 47, true, "10.0.0.0/8"));
  model::NetworkInterface& eni = p.network_interfaces[0];
  eni.private_ip_addresses.push_back(ip("10.0.1.11"));
  eni.private_ip_addresses.push_back(ip("10.0.1.12"));
  eni.security_group_ids.push_back("sg-db");
  eni.source_dest_check = false;
  eni.connection_tracking = {3600, 60, 120};
  expectRoundTrip(p);
}

// After a chain of API changes the round trip still holds: describe shows what the actions did.
TEST(ApiRoundTrip, AfterChanges) {
  model::Policy p = test::samplePolicy();
  const auto apply = [&](std::string_view action, const char* parameters) {
    auto out = run(p, action, params(parameters));
    ASSERT_TRUE(out) << action << ": " << out.error().code << ": " << out.error().message;
    ASSERT_TRUE(out->policy);
    p = *out->policy;
  };
  apply("CreateSecurityGroup", R"({"GroupName": "cache", "Description": "redis"})");
  apply("AuthorizeSecurityGroupIngress", R"({"GroupId": "sg-00000000000000001",
        "Protocol": "tcp", "Port": 6379, "SourceGroup": "web"})");
  apply("RevokeSecurityGroupEgress", R"({"GroupId": "sg-00000000000000001",
        "IpPermissions": [{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]})");
  apply("ModifyNetworkInterfaceAttribute",
        R"({"NetworkInterfaceId": "eni-db1", "Groups": ["sg-db", "sg-00000000000000001"]})");
  apply("CreateNetworkAcl", R"({"VpcId": "vpc-lab"})");
  apply("CreateNetworkAclEntry", R"({"NetworkAclId": "acl-00000000000000001",
        "RuleNumber": 10, "Egress": true, "Protocol": "-1", "RuleAction": "allow",
        "CidrBlock": "0.0.0.0/0"})");
  apply("ReplaceNetworkAclAssociation",
        R"({"AssociationId": "aclassoc-subnet-public", "NetworkAclId": "acl-00000000000000001"})");
  expectRoundTrip(p);
}

}  // namespace
}  // namespace vpcguard::api
