// api/iam: policy documents and bindings (accepted shapes; every refusal names file:line:col and
// the field), glob matching, evaluation (explicit deny, default deny, several bindings,
// resource-less Describe actions) and Unix principals.

#include "api/iam.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace vpcguard::api {
namespace {

using Files = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kNoBindings = R"({"Bindings": []})";

Result<IamConfig> parseOne(const std::string& text) {
  return IamConfig::parse({{"iam/p.json", text}}, "iam/bindings.json", kNoBindings);
}

// The error message of a document that must be refused.
std::string refusal(const std::string& text) {
  auto r = parseOne(text);
  if (r) return "(accepted)";
  return r.error().message;
}

Principal named(std::vector<std::string> names) {
  Principal p;
  p.display = names.front();
  p.names = std::move(names);
  p.source = "test";
  return p;
}

const std::string kArn = "arn:vpcguard:ec2:us-east-1:123456789012:";

// ---------------------------------------------------------------------------------------------
// Parsing: accepted documents

TEST(IamParse, SingleStatementObjectWithStrings) {
  auto r = IamConfig::parse({{"iam/solo.json", R"({"Statement": {"Effect": "Allow",
 "Action": "ec2:DescribeVpcs", "Resource": "*"}})"}},
                            "iam/bindings.json", kNoBindings);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->policies().size(), 1u);
  const IamPolicy& p = r->policies()[0];
  EXPECT_EQ(p.name, "solo");
  ASSERT_EQ(p.statements.size(), 1u);
  EXPECT_TRUE(p.statements[0].allow);
  EXPECT_EQ(p.statements[0].actions, std::vector<std::string>{"ec2:DescribeVpcs"});
  EXPECT_EQ(p.statements[0].resources, std::vector<std::string>{"*"});
  EXPECT_EQ(p.statements[0].where, "iam/solo.json:1:15");
  EXPECT_EQ(p.document["Statement"]["Action"], "ec2:DescribeVpcs");
}

TEST(IamParse, ArraysSidsVersionsAndStatementPositions) {
  const std::string text = R"({
  "Version": "2008-10-17",
  "Id": "example",
  "Statement": [
    {"Sid": "A", "Effect": "Allow", "Action": ["ec2:Describe*", "ec2:PlanConfig"],
     "Resource": "*"},
    {
      "Sid": "B",
      "Effect": "Deny",
      "Action": ["ec2:*SecurityGroup*"],
      "Resource": ["arn:vpcguard:ec2:*:*:security-group/sg-web",
                   "arn:vpcguard:ec2:us-east-1:123456789012:vpc/*"]
    }
  ]
})";
  auto r = IamConfig::parse({{"iam/two.json", text}}, "iam/bindings.json",
                            R"({"Bindings": [{"Principal": "group:ops", "Policies": ["two"]}]})");
  ASSERT_TRUE(r) << r.error().message;
  const IamPolicy& p = r->policies()[0];
  ASSERT_EQ(p.statements.size(), 2u);
  EXPECT_EQ(p.statements[0].where, "iam/two.json:5:5");
  EXPECT_EQ(p.statements[1].where, "iam/two.json:7:5");
  EXPECT_FALSE(p.statements[1].allow);
  EXPECT_EQ(p.statements[1].resources.size(), 2u);
  ASSERT_EQ(r->bindings().size(), 1u);
  EXPECT_EQ(r->bindings()[0].principal, "group:ops");
  EXPECT_EQ(r->bindings()[0].policies, std::vector<std::string>{"two"});
}

TEST(IamParse, PolicyNamedWithoutJsonSuffixKeepsItsName) {
  auto r = IamConfig::parse(
      {{"db-admins", R"({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})"}},
      "bindings", R"({"Bindings": [{"Principal": "uid:1001", "Policies": ["db-admins"]}]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->policies()[0].name, "db-admins");
  EXPECT_EQ(r->policies()[0].statements[0].where, "db-admins:1:16");
}

// ---------------------------------------------------------------------------------------------
// Parsing: each kind of refusal, with its position and field path

struct BadDocument {
  const char* name;
  const char* text;
  const char* expected;  // the whole message
};

class IamParseRefusal : public ::testing::TestWithParam<BadDocument> {};

TEST_P(IamParseRefusal, NamesFileLineColumnAndField) {
  EXPECT_EQ(refusal(GetParam().text), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Documents, IamParseRefusal,
    ::testing::Values(
        BadDocument{"SyntaxError", "{\n  \"Statement\": [\n    {\"Effect\": \"Allow\",,}\n",
                    "iam/p.json:3:24: invalid JSON: syntax error while parsing object key - "
                    "unexpected ','; expected string literal"},
        BadDocument{"Truncated", "{\"Statement\": [",
                    "iam/p.json:1:16: invalid JSON: syntax error while parsing value - "
                    "unexpected end of input; expected '[', '{', or a literal"},
        BadDocument{"NotAnObject", "[]",
                    "iam/p.json:1:1: (document): an IAM policy document is a JSON object, not "
                    "array"},
        BadDocument{"UnknownTopField",
                    "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": "
                    "\"*\"},\n \"Statment\": []}",
                    "iam/p.json:2:2: Statment: unknown field (a policy document has Version, Id "
                    "and Statement)"},
        BadDocument{"BadVersion",
                    "{\"Version\": \"2020-01-01\", \"Statement\": {\"Effect\": \"Allow\", "
                    "\"Action\": \"*\", \"Resource\": \"*\"}}",
                    "iam/p.json:1:13: Version: must be \"2012-10-17\" or \"2008-10-17\", not "
                    "\"2020-01-01\""},
        BadDocument{"MissingStatement", "{\"Version\": \"2012-10-17\"}",
                    "iam/p.json:1:1: (document): missing field Statement"},
        BadDocument{"EmptyStatement", "{\"Statement\": []}",
                    "iam/p.json:1:15: Statement: must hold at least one statement"},
        BadDocument{"StatementString", "{\"Statement\": \"Allow\"}",
                    "iam/p.json:1:15: Statement: must be an object or an array of objects, not "
                    "string"},
        BadDocument{"StatementNotObject", "{\"Statement\": [\n  42]}",
                    "iam/p.json:2:3: Statement[0]: a statement is an object, not number"},
        BadDocument{"BadEffect",
                    R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": "*"},
  {"Effect": "Permit", "Action": "*", "Resource": "*"}]})",
                    "iam/p.json:3:14: Statement[1].Effect: must be \"Allow\" or \"Deny\", not "
                    "\"Permit\""},
        BadDocument{"MissingEffect", R"({"Statement": [
  {"Action": "*", "Resource": "*"}]})",
                    "iam/p.json:2:3: Statement[0]: missing field Effect"},
        BadDocument{"MissingAction", R"({"Statement": [
  {"Effect": "Allow", "Resource": "*"}]})",
                    "iam/p.json:2:3: Statement[0]: missing field Action"},
        BadDocument{"MissingResource", R"({"Statement": {"Effect": "Allow", "Action": "*"}})",
                    "iam/p.json:1:15: Statement: missing field Resource"},
        BadDocument{"NotAction", R"({"Statement": [
  {"Effect": "Allow",
   "NotAction": "ec2:Delete*", "Resource": "*"}]})",
                    "iam/p.json:3:4: Statement[0].NotAction: NotAction is not supported: list "
                    "what the statement applies to with Action"},
        BadDocument{"NotResource", R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "NotResource": "*"}]})",
                    "iam/p.json:2:38: Statement[0].NotResource: NotResource is not supported: "
                    "list what the statement applies to with Resource"},
        BadDocument{"Principal", R"({"Statement": [
  {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})",
                    "iam/p.json:2:23: Statement[0].Principal: Principal is not supported: "
                    "policies are attached to principals in bindings.json"},
        BadDocument{"Condition", R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": "*",
   "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]})",
                    "iam/p.json:3:4: Statement[0].Condition: Condition is not supported"},
        BadDocument{"UnknownStatementField", R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": "*", "Effects": "Deny"}]})",
                    "iam/p.json:2:55: Statement[0].Effects: unknown field (a statement has Sid, "
                    "Effect, Action and Resource)"},
        BadDocument{"UnknownService", R"({"Statement": [
  {"Effect": "Allow", "Action": ["ec2:DescribeVpcs",
                                 "s3:GetObject"], "Resource": "*"}]})",
                    "iam/p.json:3:34: Statement[0].Action[1]: unknown service 's3' in "
                    "'s3:GetObject': vpcguard's API has only ec2 actions"},
        BadDocument{"ActionWithoutService", R"({"Statement": [
  {"Effect": "Allow", "Action": "DescribeVpcs", "Resource": "*"}]})",
                    "iam/p.json:2:33: Statement[0].Action: 'DescribeVpcs' is not an action: "
                    "write \"ec2:ActionName\" (wildcards * and ? allowed) or \"*\""},
        BadDocument{"MisspeltAction", R"({"Statement": [
  {"Effect": "Deny", "Action": "ec2:ModifyNetworkInterface", "Resource": "*"}]})",
                    "iam/p.json:2:32: Statement[0].Action: 'ec2:ModifyNetworkInterface' matches "
                    "no action of the API (docs/iam.md lists them)"},
        BadDocument{"ActionNotString", R"({"Statement": [
  {"Effect": "Allow", "Action": ["ec2:DescribeVpcs", 7], "Resource": "*"}]})",
                    "iam/p.json:2:54: Statement[0].Action[1]: must be a string, not number"},
        BadDocument{"ActionObject", R"({"Statement": [
  {"Effect": "Allow", "Action": {"ec2": "*"}, "Resource": "*"}]})",
                    "iam/p.json:2:33: Statement[0].Action: must be a string or an array of "
                    "strings, not object"},
        BadDocument{"EmptyResourceList", R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": []}]})",
                    "iam/p.json:2:50: Statement[0].Resource: must not be empty"},
        BadDocument{"ResourceNotArn", R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": "sg-web"}]})",
                    "iam/p.json:2:50: Statement[0].Resource: 'sg-web' is not an ARN: write "
                    "arn:vpcguard:ec2:<region>:<account>:<type>/<id> (wildcards * and ? "
                    "allowed) or \"*\""},
        BadDocument{"AwsPartition", R"({"Statement": [
  {"Effect": "Allow", "Action": "*",
   "Resource": ["*", "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1"]}]})",
                    "iam/p.json:3:22: Statement[0].Resource[1]: "
                    "'arn:aws:ec2:us-east-1:123456789012:security-group/sg-1' never matches: the "
                    "partition is 'vpcguard' (arn:vpcguard:ec2:<region>:<account>:<type>/<id>), "
                    "not 'aws'"},
        BadDocument{"UnknownResourceType", R"({"Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": "arn:vpcguard:ec2:*:*:securitygroup/sg-1"}]})",
                    "iam/p.json:2:50: Statement[0].Resource: "
                    "'arn:vpcguard:ec2:*:*:securitygroup/sg-1' never matches: the resource part "
                    "is <type>/<id> with type one of vpc, subnet, network-interface, "
                    "security-group, security-group-rule, network-acl, prefix-list, flow-log, "
                    "traffic-mirror-target, traffic-mirror-filter, traffic-mirror-filter-rule, "
                    "traffic-mirror-session"},
        BadDocument{"DuplicateSid", R"({"Statement": [
  {"Sid": "x", "Effect": "Allow", "Action": "*", "Resource": "*"},
  {"Sid": "x", "Effect": "Deny", "Action": "*", "Resource": "*"}]})",
                    "iam/p.json:3:11: Statement[1].Sid: Sid 'x' is already used by Statement[0]"},
        BadDocument{"EscapesBeforeTheField",
                    R"({"Statement": {"Sid": "caf\u00e9 \"q\" \\", "Effect": "Allow", "Condition": 1}})",
                    "iam/p.json:1:64: Statement.Condition: Condition is not supported"},
        BadDocument{"DuplicateKey", R"({"Statement": [
  {"Effect": "Deny", "Action": "*", "Resource": "*",
   "Effect": "Allow"}]})",
                    "iam/p.json:3:4: Statement[0].Effect: duplicate key"}),
    [](const ::testing::TestParamInfo<BadDocument>& param) { return param.param.name; });

TEST(IamParse, ResourcePatternsThatCanMatchAreAccepted) {
  for (const char* resource :
       {"arn:vpcguard:ec2:*:*:*", "arn:vpcguard:ec2:*:*:security-group*",
        "arn:vpcguard:ec2:us-?ast-1:*:network-interface/eni-*", "arn:*:*:*:*:vpc/vpc-1",
        "arn:vpcguard:ec2:*:*:traffic-mirror-filter-rule/tmfr-*"}) {
    const std::string text = std::string(R"({"Statement": {"Effect": "Allow", "Action": "*", )") +
                             R"("Resource": ")" + resource + R"("}})";
    EXPECT_EQ(refusal(text), "(accepted)") << resource;
  }
}

TEST(IamParse, BindingRefusals) {
  const Files policies = {
      {"iam/network-admin.json", R"({"Statement": {"Effect": "Allow", "Action": "*",
 "Resource": "*"}})"},
      {"iam/security-auditor.json", R"({"Statement": {"Effect": "Allow",
 "Action": "ec2:Describe*", "Resource": "*"}})"}};
  const auto bindingError = [&](const std::string& text) {
    auto r = IamConfig::parse(policies, "iam/bindings.json", text);
    return r ? std::string("(accepted)") : r.error().message;
  };
  EXPECT_EQ(bindingError(R"({"Bindings": [
  {"Principal": "user:root", "Policies": ["network-admin"]},
  {"Principal": "group:ops",
   "Policies": ["net-admin"]}]})"),
            "iam/bindings.json:4:17: Bindings[1].Policies[0]: no policy named 'net-admin' "
            "(files: network-admin.json, security-auditor.json)");
  EXPECT_EQ(bindingError(R"({"Bindings": [{"Principal": "root", "Policies": []}]})"),
            "iam/bindings.json:1:29: Bindings[0].Principal: \"root\" is not a principal: write "
            "user:NAME, uid:N, group:NAME, gid:N or cert:SUBJECT");
  EXPECT_EQ(bindingError(R"({"Bindings": [{"Principal": "uid:abc", "Policies": []}]})"),
            "iam/bindings.json:1:29: Bindings[0].Principal: \"uid:abc\" is not a principal: "
            "write user:NAME, uid:N, group:NAME, gid:N or cert:SUBJECT");
  EXPECT_EQ(bindingError(R"({"Bindings": [
  {"Principal": "group:ops", "Policies": ["network-admin"]},
  {"Principal": "group:ops", "Policies": ["security-auditor"]}]})"),
            "iam/bindings.json:3:17: Bindings[1].Principal: 'group:ops' is already bound by "
            "Bindings[0]: list all its policies there");
  EXPECT_EQ(bindingError(R"({"Bindings": [{"Principal": "group:ops"}]})"),
            "iam/bindings.json:1:15: Bindings[0]: missing field Policies");
  EXPECT_EQ(bindingError(R"({"Bindings": [{"Principal": "group:ops", "Policies": "network-admin"}]})"),
            "iam/bindings.json:1:54: Bindings[0].Policies: must be an array of policy names, not "
            "string");
  EXPECT_EQ(bindingError(R"({"Bindings": [{"Principal": "group:ops", "Policy": []}]})"),
            "iam/bindings.json:1:42: Bindings[0].Policy: unknown field (a binding has Principal "
            "and Policies)");
  EXPECT_EQ(bindingError(R"({"Binding": []})"),
            "iam/bindings.json:1:2: Binding: unknown field (expected only Bindings)");
  EXPECT_EQ(bindingError("{\"Bindings\": [\n"), "iam/bindings.json:2:1: invalid JSON: syntax "
                                                 "error while parsing value - unexpected end of "
                                                 "input; expected '[', '{', or a literal");
}

TEST(IamParse, TwoPoliciesWithOneNameAreRefused) {
  const char* doc = R"({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})";
  auto r = IamConfig::parse({{"a/x.json", doc}, {"b/x.json", doc}}, "bindings.json", kNoBindings);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "b/x.json: a second policy named 'x'");
}

// A directory on disk: messages name "<dir name>/<file>"; bindings.json is required.
class IamLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vgt.iam.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ / "iam";
    std::filesystem::create_directory(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::filesystem::path root_;
  std::filesystem::path dir_;
};

TEST_F(IamLoad, ReadsEveryJsonFileAndIgnoresOthers) {
  write("ops.json", R"({"Statement": {"Effect": "Allow", "Action": "ec2:Describe*",
 "Resource": "*"}})");
  write("admin.json", R"({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})");
  write("README.md", "not a policy");
  write("bindings.json", R"({"Bindings": [{"Principal": "gid:10", "Policies": ["ops"]}]})");
  auto r = IamConfig::load(dir_);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->policies().size(), 2u);
  EXPECT_EQ(r->policies()[0].name, "admin");  // sorted by file name
  EXPECT_EQ(r->policies()[1].name, "ops");
  EXPECT_EQ(r->policies()[1].statements[0].where, "iam/ops.json:1:15");
}

TEST_F(IamLoad, ErrorsNameTheDirectoryAndFile) {
  write("broken.json", "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\",\n"
                       "  \"Resource\": \"*\", \"Condition\": {}}}");
  write("bindings.json", kNoBindings);
  auto r = IamConfig::load(dir_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "iam/broken.json:2:20: Statement.Condition: Condition is not supported");
}

TEST_F(IamLoad, MissingBindingsIsAnError) {
  write("admin.json", R"({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})");
  auto r = IamConfig::load(dir_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("iam/bindings.json: missing"), std::string::npos)
      << r.error().message;
}

TEST_F(IamLoad, NotADirectory) {
  auto r = IamConfig::load(dir_ / "nope");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a directory"), std::string::npos) << r.error().message;
}

// ---------------------------------------------------------------------------------------------
// Glob matching

struct GlobCase {
  const char* pattern;
  const char* text;
  bool ignore_case;
  bool matches;
};

TEST(IamGlob, Table) {
  const GlobCase cases[] = {
      {"*", "", false, true},
      {"*", "anything", false, true},
      {"", "", false, true},
      {"", "a", false, false},
      {"a", "", false, false},
      {"ec2:Describe*", "ec2:DescribeVpcs", true, true},
      {"ec2:describe*", "EC2:DescribeVpcs", true, true},
      {"ec2:describe*", "ec2:DescribeVpcs", false, false},
      {"ec2:Describe*", "ec2:CreateSecurityGroup", true, false},
      {"ec2:*SecurityGroup*", "ec2:AuthorizeSecurityGroupIngress", true, true},
      {"ec2:*SecurityGroup*", "ec2:DescribeSecurityGroups", true, true},
      {"ec2:*SecurityGroup", "ec2:DescribeSecurityGroups", true, false},
      {"ec2:Describe?pcs", "ec2:DescribeVpcs", true, true},
      {"ec2:Describe?pcs", "ec2:DescribeVVpcs", true, false},
      {"?", "", false, false},
      {"??", "ab", false, true},
      {"a*b*c", "aXXbYYc", false, true},
      {"a*b*c", "aXXbYY", false, false},
      {"a*b", "abab", false, true},
      {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false},
      {"arn:vpcguard:ec2:*:*:network-interface/eni-bastion*",
       "arn:vpcguard:ec2:us-east-1:123456789012:network-interface/eni-bastion", false, true},
      {"arn:vpcguard:ec2:*:*:network-interface/eni-bastion*",
       "arn:vpcguard:ec2:us-east-1:123456789012:network-interface/eni-web1", false, false},
      {"arn:vpcguard:ec2:*:*:security-group/sg-Web", "arn:vpcguard:ec2:r:1:security-group/sg-web",
       false, false},
      {"arn:vpcguard:ec2:*:*:security-group/sg-Web", "arn:vpcguard:ec2:r:1:security-group/sg-web",
       true, true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(globMatch(c.pattern, c.text, c.ignore_case), c.matches)
        << "pattern '" << c.pattern << "' text '" << c.text << "' ignore_case " << c.ignore_case;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

class IamEvaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = IamConfig::parse(
        {{"iam/admin.json", R"({"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})"},
         {"iam/no-web.json", R"({"Version": "2012-10-17", "Statement": [
  {"Effect": "Deny", "Action": "ec2:*SecurityGroup*",
   "Resource": "arn:vpcguard:ec2:*:*:security-group/sg-web"}]})"},
         {"iam/reader.json", R"({"Statement": [
  {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]})"},
         {"iam/scoped.json", R"({"Statement": [
  {"Effect": "Allow", "Action": ["ec2:DescribeSecurityGroups", "ec2:DeleteSecurityGroup"],
   "Resource": "arn:vpcguard:ec2:*:*:security-group/*"}]})"},
         {"iam/web-only.json", R"({"Statement": [
  {"Effect": "Allow", "Action": "ec2:AuthorizeSecurityGroupIngress",
   "Resource": "arn:vpcguard:ec2:*:*:security-group/sg-web"}]})"}},
        "iam/bindings.json", R"({"Bindings": [
  {"Principal": "user:alice", "Policies": ["web-only"]},
  {"Principal": "group:readers", "Policies": ["reader"]},
  {"Principal": "group:admins", "Policies": ["admin", "no-web"]},
  {"Principal": "uid:1002", "Policies": ["scoped"]}]})");
    ASSERT_TRUE(r) << r.error().message;
    config_ = std::move(*r);
  }
  IamConfig config_;
};

TEST_F(IamEvaluate, ExplicitDenyWinsOverAllow) {
  const Principal admin = named({"user:carol", "uid:1003", "group:admins", "gid:50"});
  const Permission web{"ec2:AuthorizeSecurityGroupIngress", kArn + "security-group/sg-web"};
  const Permission db{"ec2:AuthorizeSecurityGroupIngress", kArn + "security-group/sg-db"};
  EXPECT_TRUE(config_.evaluate(admin, {db}).allowed);
  const Decision d = config_.evaluate(admin, {web});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refused.action, web.action);
  EXPECT_EQ(d.refused.resource, web.resource);
  EXPECT_EQ(d.reason, "explicitly denied by policy no-web (iam/no-web.json:2:3)");
  // A request needing both is refused for the denied one, whatever the order.
  const Decision both = config_.evaluate(admin, {db, web});
  EXPECT_FALSE(both.allowed);
  EXPECT_EQ(both.refused.resource, web.resource);
  // The Deny's action pattern is case-insensitive.
  EXPECT_FALSE(config_.evaluate(admin, {{"EC2:authorizesecuritygroupingress", web.resource}})
                   .allowed);
  // Resources are case-sensitive: another group's ARN is not the denied one.
  EXPECT_TRUE(
      config_.evaluate(admin, {{web.action, kArn + "security-group/sg-WEB"}}).allowed);
}

// mayAttempt: the server's gate before it says "no such resource" (no probing of ids).
TEST_F(IamEvaluate, MayAttemptIsAnyAllowOfTheActionWhateverTheResource) {
  const Principal alice = named({"user:alice", "uid:1001"});
  EXPECT_TRUE(config_.mayAttempt(alice, "ec2:AuthorizeSecurityGroupIngress"));
  EXPECT_TRUE(config_.mayAttempt(alice, "EC2:authorizeSecurityGroupIngress"));
  EXPECT_FALSE(config_.mayAttempt(alice, "ec2:RevokeSecurityGroupIngress"));
  EXPECT_FALSE(config_.mayAttempt(alice, "ec2:DescribeSecurityGroups"));
  const Principal reader = named({"user:bob", "group:readers"});
  EXPECT_TRUE(config_.mayAttempt(reader, "ec2:DescribeNetworkAcls"));
  EXPECT_FALSE(config_.mayAttempt(reader, "ec2:DeleteSecurityGroup"));
  // A Deny does not make an action unattemptable: the admin may still try other groups.
  const Principal admin = named({"user:carol", "group:admins"});
  EXPECT_TRUE(config_.mayAttempt(admin, "ec2:AuthorizeSecurityGroupIngress"));
  const Principal nobody = named({"user:mallory", "uid:6666"});
  EXPECT_FALSE(config_.mayAttempt(nobody, "ec2:DescribeVpcs"));
}

TEST_F(IamEvaluate, DefaultDeny) {
  const Principal nobody = named({"user:mallory", "uid:6666", "gid:6666"});
  const Decision d = config_.evaluate(nobody, {{"ec2:DescribeVpcs", "*"}});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "no policy is attached to user:mallory or its groups");

  const Principal alice = named({"user:alice", "uid:1001", "gid:1001"});
  const Decision other = config_.evaluate(
      alice, {{"ec2:AuthorizeSecurityGroupIngress", kArn + "security-group/sg-db"}});
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.reason, "no policy attached to user:alice allows it");
  EXPECT_EQ(other.refused.resource, kArn + "security-group/sg-db");
  // Another action on the allowed resource is not allowed either.
  EXPECT_FALSE(config_
                   .evaluate(alice, {{"ec2:RevokeSecurityGroupIngress",
                                      kArn + "security-group/sg-web"}})
                   .allowed);
  EXPECT_TRUE(config_
                  .evaluate(alice, {{"ec2:AuthorizeSecurityGroupIngress",
                                     kArn + "security-group/sg-web"}})
                  .allowed);
  // A request that names no permission fails closed (an action without permissions is a bug).
  EXPECT_FALSE(config_.evaluate(nobody, {}).allowed);
  EXPECT_FALSE(config_.evaluate(named({"user:carol", "group:admins"}), {}).allowed);
}

TEST_F(IamEvaluate, EveryPermissionOfARequestIsNeeded) {
  const Principal alice = named({"user:alice", "uid:1001"});
  const Decision d = config_.evaluate(
      alice, {{"ec2:AuthorizeSecurityGroupIngress", kArn + "security-group/sg-web"},
              {"ec2:AuthorizeSecurityGroupIngress", kArn + "security-group/sg-db"}});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refused.resource, kArn + "security-group/sg-db");
}

TEST_F(IamEvaluate, BindingsOfUserAndGroupsAddUp) {
  const Principal alice_reader =
      named({"user:alice", "uid:1001", "group:alice", "gid:1001", "group:readers", "gid:2000"});
  EXPECT_TRUE(config_.evaluate(alice_reader, {{"ec2:DescribeSecurityGroups", "*"}}).allowed);
  EXPECT_TRUE(config_
                  .evaluate(alice_reader, {{"ec2:AuthorizeSecurityGroupIngress",
                                            kArn + "security-group/sg-web"},
                                           {"ec2:DescribeVpcs", "*"}})
                  .allowed);
  // Neither binding alone allows both.
  EXPECT_FALSE(config_
                   .evaluate(named({"user:alice", "uid:1001"}),
                             {{"ec2:DescribeVpcs", "*"}})
                   .allowed);
  EXPECT_FALSE(config_
                   .evaluate(named({"user:bob", "group:readers"}),
                             {{"ec2:AuthorizeSecurityGroupIngress",
                               kArn + "security-group/sg-web"}})
                   .allowed);
  // A numeric binding applies to the same user under its numeric name.
  EXPECT_TRUE(config_
                  .evaluate(named({"user:dave", "uid:1002"}),
                            {{"ec2:DeleteSecurityGroup", kArn + "security-group/sg-db"}})
                  .allowed);
}

TEST_F(IamEvaluate, DescribeWithoutResourceNeedsResourceStar) {
  // scoped.json allows DescribeSecurityGroups only on security-group ARNs: as in AWS, an action
  // on no particular resource is not granted by a resource-level pattern.
  const Principal dave = named({"user:dave", "uid:1002"});
  const Decision d = config_.evaluate(dave, {{"ec2:DescribeSecurityGroups", "*"}});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "no policy attached to user:dave allows it");
  EXPECT_TRUE(config_
                  .evaluate(dave, {{"ec2:DescribeSecurityGroups", kArn + "security-group/sg-db"}})
                  .allowed);
  // Resource "*" grants both forms.
  const Principal reader = named({"user:erin", "group:readers"});
  EXPECT_TRUE(config_.evaluate(reader, {{"ec2:DescribeSecurityGroups", "*"}}).allowed);
  EXPECT_TRUE(config_
                  .evaluate(reader,
                            {{"ec2:DescribeSecurityGroups", kArn + "security-group/sg-db"}})
                  .allowed);
  // A resource-level Deny does not apply to the resource-less form either.
  const Principal admin = named({"user:carol", "group:admins"});
  EXPECT_TRUE(config_.evaluate(admin, {{"ec2:DescribeSecurityGroups", "*"}}).allowed);
  EXPECT_FALSE(config_
                   .evaluate(admin, {{"ec2:DescribeSecurityGroups",
                                      kArn + "security-group/sg-web"}})
                   .allowed);
}

// ---------------------------------------------------------------------------------------------
// Unix principals

TEST(IamUnixPrincipal, Root) {
  const Principal p = unixPrincipal(0, 0, {0}, 42);
  EXPECT_EQ(p.display, "user:root");
  EXPECT_EQ(p.source, "unix:pid=42");
  EXPECT_EQ(p.names, (std::vector<std::string>{"user:root", "uid:0", "group:root", "gid:0"}));
}

TEST(IamUnixPrincipal, UnknownUserAndGroupHaveNumericNamesOnly) {
  const Principal p = unixPrincipal(54321, 54321, {54321, 0}, 7);
  EXPECT_EQ(p.display, "uid:54321");
  EXPECT_EQ(p.source, "unix:pid=7");
  EXPECT_EQ(p.names,
            (std::vector<std::string>{"uid:54321", "gid:54321", "group:root", "gid:0"}));
}

}  // namespace
}  // namespace vpcguard::api
