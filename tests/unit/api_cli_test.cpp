// vpcguardctl's API verbs (api/cli.h, api/client.h, api/render.h): option parsing per verb,
// AWS shorthand, exit codes and messages against a fake API server on a Unix socket, the
// client's deadline, and the three output formats (golden strings).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include "api/cli.h"
#include "api/client.h"
#include "api/render.h"
#include "tests/harness/paths.h"

namespace vpcguard::api {
namespace {

namespace fs = std::filesystem;

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/vgt.cli.XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Answers each request line with what the handler returns (nullopt: never answers, keeps the
// connection open until the client leaves or the server stops) and records the requests.
class FakeApiServer {
 public:
  using Handler = std::function<std::optional<std::string>(const Json& request)>;

  explicit FakeApiServer(Handler handler) : handler_(std::move(handler)) {
    path_ = (dir_.path() / "api.sock").string();
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0) {
      throw std::runtime_error("fake server: cannot listen on " + path_);
    }
    thread_ = std::thread([this] { run(); });
  }

  ~FakeApiServer() {
    char byte = 'x';
    (void)!::write(stop_[1], &byte, 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(stop_[0]);
    ::close(stop_[1]);
  }
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  [[nodiscard]] std::string endpoint() const { return "unix:" + path_; }
  [[nodiscard]] std::vector<Json> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

  // A response line with the request's id.
  static std::string result(const Json& request, const Json& result) {
    return Json{{"RequestId", request.value("RequestId", "")}, {"Result", result}}.dump() + "\n";
  }
  static std::string error(const Json& request, const std::string& code,
                           const std::string& message) {
    return Json{{"RequestId", request.value("RequestId", "")},
                {"Error", {{"Code", code}, {"Message", message}}}}
               .dump() +
           "\n";
  }

 private:
  // Waits for `fd` or the stop pipe; false when stopping.
  bool wait(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    for (;;) {
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 && (fds[1].revents & POLLIN) == 0;
    }
  }

  void run() {
    while (wait(listen_fd_)) {
      int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      serve(conn);
      ::close(conn);
    }
  }

  void serve(int conn) {
    std::string line;
    char buffer[4096];
    while (line.find('\n') == std::string::npos) {
      if (!wait(conn)) return;
      ssize_t n = ::recv(conn, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      line.append(buffer, static_cast<size_t>(n));
    }
    line.resize(line.find('\n'));
    Json request = Json::parse(line, nullptr, false);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
    }
    std::optional<std::string> answer = handler_(request);
    if (!answer) {
      // Never answer: hold the connection until the client gives up (EOF) or we stop.
      while (wait(conn)) {
        if (::recv(conn, buffer, sizeof buffer, 0) <= 0) return;
      }
      return;
    }
    std::string_view rest = *answer;
    while (!rest.empty()) {
      ssize_t n = ::send(conn, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }

  TempDir dir_;
  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Json> requests_;
};

struct RunOutput {
  int code = 0;
  std::string out;
  std::string err;
};

RunOutput run(std::vector<std::string> args) {
  std::ostringstream out;
  std::ostringstream err;
  int code = runCli(args, out, err);
  return {code, out.str(), err.str()};
}

// ---- option parsing per verb ---------------------------------------------------------------

struct ParseCase {
  std::vector<std::string> argv;
  std::string action;
  const char* parameters;  // JSON
};

TEST(ApiCliParse, VerbsMapOptionsToParameters) {
  const std::vector<ParseCase> cases = {
      {{"describe-security-groups"}, "DescribeSecurityGroups", "{}"},
      {{"describe-security-groups", "--group-ids", "sg-1", "sg-2"},
       "DescribeSecurityGroups",
       R"({"GroupIds": ["sg-1", "sg-2"]})"},
      {{"describe-security-groups", "--group-ids", "sg-1,sg-2", "--group-names", "web"},
       "DescribeSecurityGroups",
       R"({"GroupIds": ["sg-1", "sg-2"], "GroupNames": ["web"]})"},
      {{"describe-security-groups", "--group-ids", R"(["sg-1","sg-3"])"},
       "DescribeSecurityGroups",
       R"({"GroupIds": ["sg-1", "sg-3"]})"},
      {{"create-security-group", "--group-name", "web", "--description", "Web servers",
        "--vpc-id", "vpc-1"},
       "CreateSecurityGroup",
       R"({"GroupName": "web", "Description": "Web servers", "VpcId": "vpc-1"})"},
      {{"delete-security-group", "--group-id", "sg-1"}, "DeleteSecurityGroup",
       R"({"GroupId": "sg-1"})"},
      {{"delete-security-group", "--group-name=web"}, "DeleteSecurityGroup",
       R"({"GroupName": "web"})"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--protocol", "tcp", "--port",
        "22", "--cidr", "10.0.0.0/8"},
       "AuthorizeSecurityGroupIngress",
       R"({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22,
           "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--protocol", "tcp", "--port",
        "8000-8080", "--source-group", "sg-2"},
       "AuthorizeSecurityGroupIngress",
       R"({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8000,
           "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]})"},
      {{"authorize-security-group-egress", "--group-id", "sg-1", "--protocol", "all", "--cidr",
        "::/0"},
       "AuthorizeSecurityGroupEgress",
       R"({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "-1",
           "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]})"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--protocol", "icmp",
        "--port", "-1", "--cidr", "0.0.0.0/0"},
       "AuthorizeSecurityGroupIngress",
       R"({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "icmp", "FromPort": -1,
           "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})"},
      {{"revoke-security-group-ingress", "--group-id", "sg-1", "--ip-permissions",
        "IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=10.0.0.0/8}]",
        "IpProtocol=udp,FromPort=53,ToPort=53,UserIdGroupPairs=[{GroupId=sg-2}]"},
       "RevokeSecurityGroupIngress",
       R"({"GroupId": "sg-1", "IpPermissions": [
           {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
           {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
            "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]})"},
      {{"revoke-security-group-egress", "--group-id", "sg-1", "--ip-permissions",
        R"([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])"},
       "RevokeSecurityGroupEgress",
       R"({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "-1",
           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--ip-permissions",
        R"({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "PrefixListIds": [{"PrefixListId": "pl-1"}]})"},
       "AuthorizeSecurityGroupIngress",
       R"({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443,
           "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-1"}]}]})"},
      {{"describe-network-acls", "--network-acl-ids", "acl-1"}, "DescribeNetworkAcls",
       R"({"NetworkAclIds": ["acl-1"]})"},
      {{"create-network-acl", "--vpc-id", "vpc-1"}, "CreateNetworkAcl", R"({"VpcId": "vpc-1"})"},
      {{"delete-network-acl", "--network-acl-id", "acl-1"}, "DeleteNetworkAcl",
       R"({"NetworkAclId": "acl-1"})"},
      {{"create-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "100",
        "--protocol", "tcp", "--rule-action", "allow", "--ingress", "--cidr-block", "0.0.0.0/0",
        "--port-range", "From=80,To=443"},
       "CreateNetworkAclEntry",
       R"({"NetworkAclId": "acl-1", "RuleNumber": 100, "Protocol": "tcp", "RuleAction": "allow",
           "Egress": false, "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 80, "To": 443}})"},
      {{"replace-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number=110",
        "--protocol", "58", "--rule-action", "deny", "--egress", "--ipv6-cidr-block", "::/0",
        "--icmp-type-code", "Type=-1,Code=-1"},
       "ReplaceNetworkAclEntry",
       R"({"NetworkAclId": "acl-1", "RuleNumber": 110, "Protocol": "58", "RuleAction": "deny",
           "Egress": true, "Ipv6CidrBlock": "::/0", "IcmpTypeCode": {"Type": -1, "Code": -1}})"},
      {{"create-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "120",
        "--protocol", "-1", "--rule-action", "deny", "--no-egress", "--cidr-block",
        "10.9.0.0/16", "--port-range", R"({"From": 1, "To": 2})"},
       "CreateNetworkAclEntry",
       R"({"NetworkAclId": "acl-1", "RuleNumber": 120, "Protocol": "-1", "RuleAction": "deny",
           "Egress": false, "CidrBlock": "10.9.0.0/16", "PortRange": {"From": 1, "To": 2}})"},
      {{"delete-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "100",
        "--egress"},
       "DeleteNetworkAclEntry",
       R"({"NetworkAclId": "acl-1", "RuleNumber": 100, "Egress": true})"},
      {{"replace-network-acl-association", "--association-id", "aclassoc-1", "--network-acl-id",
        "acl-2"},
       "ReplaceNetworkAclAssociation",
       R"({"AssociationId": "aclassoc-1", "NetworkAclId": "acl-2"})"},
      {{"modify-network-interface-attribute", "--network-interface-id", "eni-1", "--groups",
        "sg-1", "sg-2"},
       "ModifyNetworkInterfaceAttribute",
       R"({"NetworkInterfaceId": "eni-1", "Groups": ["sg-1", "sg-2"]})"},
      {{"modify-network-interface-attribute", "--network-interface-id", "eni-1",
        "--no-source-dest-check"},
       "ModifyNetworkInterfaceAttribute",
       R"({"NetworkInterfaceId": "eni-1", "SourceDestCheck": {"Value": false}})"},
      {{"modify-network-interface-attribute", "--source-dest-check", "--network-interface-id",
        "eni-1"},
       "ModifyNetworkInterfaceAttribute",
       R"({"NetworkInterfaceId": "eni-1", "SourceDestCheck": {"Value": true}})"},
      {{"describe-vpcs"}, "DescribeVpcs", "{}"},
      {{"describe-subnets", "--subnet-ids", "subnet-1"}, "DescribeSubnets",
       R"({"SubnetIds": ["subnet-1"]})"},
      {{"describe-network-interfaces", "--network-interface-ids", "eni-1", "eni-2"},
       "DescribeNetworkInterfaces",
       R"({"NetworkInterfaceIds": ["eni-1", "eni-2"]})"},
      {{"describe-managed-prefix-lists"}, "DescribeManagedPrefixLists", "{}"},
      {{"create-flow-logs", "--resource-ids", "eni-1", "eni-2", "--resource-type",
        "NetworkInterface", "--traffic-type", "ALL", "--log-destination-type", "file",
        "--log-destination", "file:///var/log/vpcguard/fl", "--log-format",
        "${version} ${action}", "--max-aggregation-interval", "60"},
       "CreateFlowLogs",
       R"({"ResourceIds": ["eni-1", "eni-2"], "ResourceType": "NetworkInterface",
           "TrafficType": "ALL", "LogDestinationType": "file",
           "LogDestination": "file:///var/log/vpcguard/fl", "LogFormat": "${version} ${action}",
           "MaxAggregationInterval": 60})"},
      {{"delete-flow-logs", "--flow-log-ids", "fl-1"}, "DeleteFlowLogs",
       R"({"FlowLogIds": ["fl-1"]})"},
      {{"describe-flow-logs", "--flow-log-ids", "fl-1"}, "DescribeFlowLogs",
       R"({"FlowLogIds": ["fl-1"]})"},
      {{"create-traffic-mirror-target", "--network-interface-id", "eni-9", "--description",
        "monitor"},
       "CreateTrafficMirrorTarget",
       R"({"NetworkInterfaceId": "eni-9", "Description": "monitor"})"},
      {{"create-traffic-mirror-target", "--vxlan-remote-ip", "192.0.2.10"},
       "CreateTrafficMirrorTarget",
       R"({"VxlanRemoteIp": "192.0.2.10"})"},
      {{"delete-traffic-mirror-target", "--traffic-mirror-target-id", "tmt-1"},
       "DeleteTrafficMirrorTarget",
       R"({"TrafficMirrorTargetId": "tmt-1"})"},
      {{"describe-traffic-mirror-targets"}, "DescribeTrafficMirrorTargets", "{}"},
      {{"create-traffic-mirror-filter", "--description", "web"}, "CreateTrafficMirrorFilter",
       R"({"Description": "web"})"},
      {{"delete-traffic-mirror-filter", "--traffic-mirror-filter-id", "tmf-1"},
       "DeleteTrafficMirrorFilter",
       R"({"TrafficMirrorFilterId": "tmf-1"})"},
      {{"describe-traffic-mirror-filters", "--traffic-mirror-filter-ids", "tmf-1"},
       "DescribeTrafficMirrorFilters",
       R"({"TrafficMirrorFilterIds": ["tmf-1"]})"},
      {{"create-traffic-mirror-filter-rule", "--traffic-mirror-filter-id", "tmf-1",
        "--traffic-direction", "ingress", "--rule-number", "10", "--rule-action", "accept",
        "--destination-cidr-block", "0.0.0.0/0", "--source-cidr-block", "10.0.0.0/8",
        "--protocol", "6", "--destination-port-range", "FromPort=80,ToPort=80",
        "--source-port-range", R"({"FromPort": 1024, "ToPort": 65535})", "--description", "http"},
       "CreateTrafficMirrorFilterRule",
       R"({"TrafficMirrorFilterId": "tmf-1", "TrafficDirection": "ingress", "RuleNumber": 10,
           "RuleAction": "accept", "DestinationCidrBlock": "0.0.0.0/0",
           "SourceCidrBlock": "10.0.0.0/8", "Protocol": 6,
           "DestinationPortRange": {"FromPort": 80, "ToPort": 80},
           "SourcePortRange": {"FromPort": 1024, "ToPort": 65535}, "Description": "http"})"},
      {{"delete-traffic-mirror-filter-rule", "--traffic-mirror-filter-rule-id", "tmfr-1"},
       "DeleteTrafficMirrorFilterRule",
       R"({"TrafficMirrorFilterRuleId": "tmfr-1"})"},
      {{"create-traffic-mirror-session", "--network-interface-id", "eni-1",
        "--traffic-mirror-target-id", "tmt-1", "--traffic-mirror-filter-id", "tmf-1",
        "--session-number", "1", "--packet-length", "100", "--virtual-network-id", "42",
        "--description", "s"},
       "CreateTrafficMirrorSession",
       R"({"NetworkInterfaceId": "eni-1", "TrafficMirrorTargetId": "tmt-1",
           "TrafficMirrorFilterId": "tmf-1", "SessionNumber": 1, "PacketLength": 100,
           "VirtualNetworkId": 42, "Description": "s"})"},
      {{"delete-traffic-mirror-session", "--traffic-mirror-session-id", "tms-1"},
       "DeleteTrafficMirrorSession",
       R"({"TrafficMirrorSessionId": "tms-1"})"},
      {{"describe-traffic-mirror-sessions"}, "DescribeTrafficMirrorSessions", "{}"},
  };
  for (const auto& c : cases) {
    std::string line;
    for (const auto& a : c.argv) line += a + " ";
    SCOPED_TRACE(line);
    auto parsed = parseCommandLine(c.argv);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_EQ(parsed->action, c.action);
    EXPECT_EQ(parsed->parameters, Json::parse(c.parameters));
    EXPECT_EQ(parsed->output, OutputFormat::kTable);
  }
}

TEST(ApiCliParse, EveryVerbOfTheIssueIsKnown) {
  for (const char* verb :
       {"describe-security-groups", "create-security-group", "delete-security-group",
        "authorize-security-group-ingress", "authorize-security-group-egress",
        "revoke-security-group-ingress", "revoke-security-group-egress", "describe-network-acls",
        "create-network-acl", "delete-network-acl", "create-network-acl-entry",
        "replace-network-acl-entry", "delete-network-acl-entry",
        "replace-network-acl-association", "modify-network-interface-attribute",
        "describe-vpcs", "describe-subnets", "describe-network-interfaces",
        "describe-managed-prefix-lists", "create-flow-logs", "delete-flow-logs",
        "describe-flow-logs", "create-traffic-mirror-target", "delete-traffic-mirror-target",
        "describe-traffic-mirror-targets", "create-traffic-mirror-filter",
        "delete-traffic-mirror-filter", "describe-traffic-mirror-filters",
        "create-traffic-mirror-filter-rule", "delete-traffic-mirror-filter-rule",
        "create-traffic-mirror-session", "delete-traffic-mirror-session",
        "describe-traffic-mirror-sessions", "apply", "plan"}) {
    EXPECT_TRUE(isApiVerb(verb)) << verb;
    EXPECT_NE(verbListing().find(std::string("  ") + verb + " "), std::string::npos) << verb;
    EXPECT_EQ(verbUsage(verb).rfind(std::string("usage: vpcguardctl ") + verb, 0), 0u) << verb;
  }
  EXPECT_FALSE(isApiVerb("check"));
  EXPECT_FALSE(isApiVerb("describe-instances"));
}

TEST(ApiCliParse, GlobalOptionsAnywhere) {
  ::unsetenv("VPCGUARD_API");
  auto parsed = parseCommandLine({"describe-vpcs", "--output", "json", "--timeout-ms", "250",
                                  "--api", "tls:api.example:8443", "--tls-cert", "c.pem",
                                  "--tls-key", "k.pem", "--tls-ca", "ca.pem"});
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->output, OutputFormat::kJson);
  EXPECT_EQ(parsed->client.timeout_ms, 250);
  EXPECT_EQ(parsed->client.endpoint, "tls:api.example:8443");
  EXPECT_EQ(parsed->client.tls_cert, "c.pem");
  EXPECT_EQ(parsed->client.tls_key, "k.pem");
  EXPECT_EQ(parsed->client.tls_ca, "ca.pem");
  EXPECT_EQ(parsed->parameters, Json::object());

  auto between = parseCommandLine(
      {"delete-security-group", "--output=text", "--group-id", "sg-1", "--timeout-ms=5"});
  ASSERT_TRUE(between.has_value()) << between.error().message;
  EXPECT_EQ(between->output, OutputFormat::kText);
  EXPECT_EQ(between->client.timeout_ms, 5);
  EXPECT_EQ(between->client.endpoint, "unix:/run/vpcguard/api.sock");
  EXPECT_EQ(between->parameters, Json::parse(R"({"GroupId": "sg-1"})"));

  ::setenv("VPCGUARD_API", "unix:/tmp/elsewhere.sock", 1);
  auto from_env = parseCommandLine({"describe-vpcs"});
  ::unsetenv("VPCGUARD_API");
  ASSERT_TRUE(from_env.has_value());
  EXPECT_EQ(from_env->client.endpoint, "unix:/tmp/elsewhere.sock");

  auto help = parseCommandLine({"create-security-group", "help"});
  ASSERT_TRUE(help.has_value());
  EXPECT_TRUE(help->help);
}

struct BadCase {
  std::vector<std::string> argv;
  const char* message;  // a part of the error
};

TEST(ApiCliParse, BadCommandLinesNameTheVerbAndOption) {
  const std::vector<BadCase> cases = {
      {{"create-security-group", "--group-name", "web"},
       "vpcguardctl create-security-group: the following arguments are required: --description"},
      {{"create-security-group"}, "required: --group-name, --description"},
      {{"describe-security-groups", "--bogus"}, "Unknown options: --bogus"},
      {{"describe-security-groups", "extra"}, "Unknown options: extra"},
      {{"describe-vpcs", "--query", "Vpcs[0]"}, "--query is not supported"},
      {{"describe-vpcs", "--output", "yaml"}, "argument --output: invalid choice: 'yaml'"},
      {{"describe-vpcs", "--timeout-ms", "0"}, "argument --timeout-ms"},
      {{"describe-vpcs", "--region", "us-east-1"}, "Unknown options: --region"},
      {{"create-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "1",
        "--protocol", "-1", "--rule-action", "allow", "--cidr-block", "0.0.0.0/0"},
       "one of the arguments --egress --ingress --no-egress is required"},
      {{"create-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "1",
        "--protocol", "-1", "--rule-action", "allow", "--cidr-block", "0.0.0.0/0", "--egress",
        "--ingress"},
       "argument --ingress: not allowed with argument --egress"},
      {{"create-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "one",
        "--protocol", "-1", "--rule-action", "allow", "--cidr-block", "0.0.0.0/0", "--egress"},
       "argument --rule-number: invalid integer value: 'one'"},
      {{"create-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "1",
        "--protocol", "6", "--rule-action", "allow", "--cidr-block", "0.0.0.0/0", "--egress",
        "--port-range", "From=a,To=2"},
       "Error parsing parameter '--port-range': the value of From must be an integer"},
      {{"delete-network-acl-entry", "--network-acl-id", "acl-1", "--rule-number", "1",
        "--egress=yes"},
       "argument --egress: takes no value"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1"},
       "one of --ip-permissions or --protocol"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--protocol", "tcp",
        "--port", "22", "--cidr", "1.2.3.4/32", "--ip-permissions", "IpProtocol=tcp"},
       "--ip-permissions cannot be combined with --protocol"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--port", "22", "--cidr",
        "1.2.3.4/32"},
       "need --protocol"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--protocol", "tcp",
        "--port", "ssh", "--cidr", "1.2.3.4/32"},
       "argument --port: expected a port N, a range N-M or -1, not 'ssh'"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--protocol", "tcp",
        "--port", "22", "--cidr", "1.2.3.4/32", "--source-group", "sg-2"},
       "argument --source-group: not allowed with argument --cidr"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--ip-permissions",
        "IpProtocol=tcp,IpRanges=10.0.0.0/8"},
       "Error parsing parameter '--ip-permissions': the value of IpRanges must be a list"},
      {{"authorize-security-group-ingress", "--group-id", "sg-1", "--ip-permissions",
        "[{\"IpProtocol\": "},
       "Error parsing parameter '--ip-permissions': invalid JSON"},
      {{"create-security-group", "--group-name", "a", "--group-name", "b", "--description",
        "d"},
       "argument --group-name given twice"},
      {{"delete-security-group", "--group-id"}, "argument --group-id: expected one argument"},
      {{"delete-security-group", "--group-id", "--group-name", "x"},
       "argument --group-id: expected one argument"},
      {{"delete-security-group"}, "one of the arguments --group-id --group-name is required"},
      {{"modify-network-interface-attribute", "--network-interface-id", "eni-1", "--groups",
        "sg-1", "--no-source-dest-check"},
       "argument --no-source-dest-check: not allowed with argument --groups"},
      {{"create-traffic-mirror-target", "--description", "x"},
       "one of the arguments --network-interface-id --vxlan-remote-ip is required"},
      {{"create-traffic-mirror-session", "--network-interface-id", "eni-1",
        "--traffic-mirror-target-id", "tmt-1", "--traffic-mirror-filter-id", "tmf-1"},
       "required: --session-number"},
      {{"apply"}, "vpcguardctl apply: the following arguments are required: FILE|DIR"},
      {{"plan", "a.toml", "b.toml"}, "Unknown options: b.toml"},
  };
  for (const auto& c : cases) {
    std::string line;
    for (const auto& a : c.argv) line += a + " ";
    SCOPED_TRACE(line);
    auto parsed = parseCommandLine(c.argv);
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().exit_code, kExitUsage);
    EXPECT_NE(parsed.error().message.find(c.message), std::string::npos)
        << parsed.error().message;
    // runCli prints it with the verb's usage line and exits 252 without connecting anywhere.
    RunOutput r = run(c.argv);
    EXPECT_EQ(r.code, 252);
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("usage: vpcguardctl " + c.argv[0]), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

// ---- shorthand -----------------------------------------------------------------------------

TEST(ApiCliShorthand, Parses) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"From=1,To=2", R"({"From": 1, "To": 2})"},
      {"Type=-1,Code=-1", R"({"Type": -1, "Code": -1})"},
      {"FromPort=80, ToPort=80", R"({"FromPort": 80, "ToPort": 80})"},
      {R"(IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=10.0.0.0/8,Description="ssh, admins"}])",
       R"({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
           "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ssh, admins"}]})"},
      {"IpProtocol=-1,IpRanges=[{CidrIp=10.0.0.0/8},{CidrIp=192.168.0.0/16}],"
       "Ipv6Ranges=[{CidrIpv6=::/0}]",
       R"({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16"}],
           "Ipv6Ranges": [{"CidrIpv6": "::/0"}]})"},
      {"IpProtocol=tcp,PrefixListIds=[{PrefixListId=pl-1}],"
       "UserIdGroupPairs=[{GroupId=sg-1,Description='web tier'}]",
       R"({"IpProtocol": "tcp", "PrefixListIds": [{"PrefixListId": "pl-1"}],
           "UserIdGroupPairs": [{"GroupId": "sg-1", "Description": "web tier"}]})"},
      {"IpRanges={CidrIp=1.2.3.4/32}", R"({"IpRanges": [{"CidrIp": "1.2.3.4/32"}]})"},
      {"IpRanges=[]", R"({"IpRanges": []})"},
      {"Values=[a,b]", R"({"Values": ["a", "b"]})"},
      {"Key=", R"({"Key": ""})"},
      {"Nested={A=1,B={C=x}}", R"({"Nested": {"A": "1", "B": {"C": "x"}}})"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseShorthand(text);
    ASSERT_TRUE(parsed.has_value()) << parsed.error();
    EXPECT_EQ(*parsed, Json::parse(expected));
  }
}

TEST(ApiCliShorthand, ErrorsSayWhatAndWhere) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"", "expected Key=Value at column 1"},
      {"=1", "expected Key=Value at column 1"},
      {"From", "expected '=' after 'From' at column 5"},
      {"From=1,From=2", "'From' given twice"},
      {"From=1,", "expected Key=Value at column 8"},
      {"FromPort=x", "the value of FromPort must be an integer, not 'x'"},
      {"ToPort=1.5", "the value of ToPort must be an integer"},
      {"IpRanges=[{CidrIp=1.2.3.4/32}", "expected ',' or ']'"},
      {"IpRanges=[{CidrIp=1.2.3.4/32]", "expected '}'"},
      {"IpRanges=10.0.0.0/8", "the value of IpRanges must be a list of structures"},
      {"UserIdGroupPairs=[sg-1]", "the value of UserIdGroupPairs must be a list of structures"},
      {"A=\"unterminated", "unterminated quoted value"},
      {"A=b}", "unexpected '}' in a value"},
      {"A=[b", "expected ',' or ']'"},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseShorthand(text);
    ASSERT_FALSE(parsed.has_value()) << parsed->dump();
    EXPECT_NE(parsed.error().find(message), std::string::npos) << parsed.error();
  }
}

// ---- exit codes against a fake server ------------------------------------------------------

TEST(ApiCliRun, SuccessSendsTheRequestAndPrintsTheResult) {
  FakeApiServer server([](const Json& request) {
    return FakeApiServer::result(request, {{"Return", true}, {"GroupId", "sg-0123"}});
  });
  RunOutput r = run({"create-security-group", "--group-name", "web", "--description", "Web",
                     "--api", server.endpoint(), "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\n    \"GroupId\": \"sg-0123\",\n    \"Return\": true\n}\n");
  EXPECT_EQ(r.err, "");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["Action"], "CreateSecurityGroup");
  EXPECT_EQ(requests[0]["Parameters"], Json::parse(R"({"GroupName": "web", "Description": "Web"})"));
  EXPECT_TRUE(requests[0]["RequestId"].is_string());
  EXPECT_FALSE(requests[0]["RequestId"].get<std::string>().empty());
}

TEST(ApiCliRun, EndpointFromTheEnvironment) {
  FakeApiServer server([](const Json& request) {
    return FakeApiServer::result(request, {{"Vpcs", Json::array()}});
  });
  ::setenv("VPCGUARD_API", server.endpoint().c_str(), 1);
  RunOutput r = run({"describe-vpcs", "--output", "text"});
  ::unsetenv("VPCGUARD_API");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(ApiCliRun, ServiceErrorExits254WithAwsWording) {
  FakeApiServer server([](const Json& request) {
    return FakeApiServer::error(request, "UnauthorizedOperation",
                                "You are not authorized to perform ec2:DeleteSecurityGroup on "
                                "arn:vpcguard:ec2:lab-1:123456789012:security-group/sg-web");
  });
  RunOutput r = run({"delete-security-group", "--group-id", "sg-web", "--api", server.endpoint()});
  EXPECT_EQ(r.code, 254);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "An error occurred (UnauthorizedOperation) when calling the DeleteSecurityGroup "
            "operation: You are not authorized to perform ec2:DeleteSecurityGroup on "
            "arn:vpcguard:ec2:lab-1:123456789012:security-group/sg-web\n");
}

TEST(ApiCliRun, MissingSocketExits255AndNamesIt) {
  TempDir dir;
  std::string path = (dir.path() / "nothing.sock").string();
  RunOutput r = run({"describe-vpcs", "--api", "unix:" + path});
  EXPECT_EQ(r.code, 255);
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("VPCGUARD_API"), std::string::npos) << r.err;
}

TEST(ApiCliRun, StaleSocketExits255) {
  TempDir dir;
  std::string path = (dir.path() / "stale.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // bound, never listened: connect is refused
  RunOutput r = run({"describe-vpcs", "--api", "unix:" + path});
  EXPECT_EQ(r.code, 255);
  EXPECT_NE(r.err.find("nothing is listening on " + path), std::string::npos) << r.err;
}

TEST(ApiCliRun, PermissionDeniedExits255AndMentionsTheGroup) {
  FakeApiServer server([](const Json& request) { return FakeApiServer::result(request, {}); });
  std::string path = server.endpoint().substr(5);
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  // Root is never refused by file modes: run the client in a child as nobody (the socket's
  // directory is root's 0700 and the socket 0000, so both stop it).
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(100);
    RunOutput r = run({"describe-vpcs", "--api", server.endpoint(), "--timeout-ms", "2000"});
    std::string report = std::to_string(r.code) + "\n" + r.err;
    (void)!::write(pipe_fds[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    report.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(report.substr(0, report.find('\n')), "255") << report;
  EXPECT_NE(report.find("permission denied on " + path), std::string::npos) << report;
  EXPECT_NE(report.find("API socket's group"), std::string::npos) << report;
  EXPECT_TRUE(server.requests().empty());
}

TEST(ApiCliRun, ServerThatNeverAnswersTimesOut) {
  FakeApiServer server([](const Json&) { return std::nullopt; });
  auto start = std::chrono::steady_clock::now();
  RunOutput r = run({"describe-security-groups", "--api", server.endpoint(), "--timeout-ms",
                     "300"});
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code, 255);
  EXPECT_NE(r.err.find("within 300 ms"), std::string::npos) << r.err;
  EXPECT_GE(elapsed, std::chrono::milliseconds(290));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(server.requests().size(), 1u);  // the request went out; the answer never came
}

TEST(ApiClient, TimeoutIsClassified) {
  FakeApiServer server([](const Json&) { return std::nullopt; });
  ClientOptions options;
  options.endpoint = server.endpoint();
  options.timeout_ms = 100;
  auto response = call(options, Request{"r1", "DescribeVpcs", Json::object()});
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ClientErrorKind::kTimeout);
}

TEST(ApiClient, MalformedAnswersAreProtocolErrors) {
  for (const char* answer : {"not json\n", "[1]\n", "{\"RequestId\": \"x\"}\n",
                             "{\"Error\": {\"Message\": \"no code\"}}\n", "{\"Result\": {}"}) {
    SCOPED_TRACE(answer);
    FakeApiServer server([&](const Json&) { return std::string(answer); });
    ClientOptions options;
    options.endpoint = server.endpoint();
    options.timeout_ms = 2000;
    auto response = call(options, Request{"r1", "DescribeVpcs", Json::object()});
    ASSERT_FALSE(response.has_value());
    EXPECT_EQ(response.error().kind, ClientErrorKind::kProtocol) << response.error().message;
  }
  // An answer to another request is refused too.
  FakeApiServer other([](const Json&) {
    return std::string(R"({"RequestId": "someone-else", "Result": {}})") + "\n";
  });
  RunOutput r = run({"describe-vpcs", "--api", other.endpoint()});
  EXPECT_EQ(r.code, 255);
  EXPECT_NE(r.err.find("someone-else"), std::string::npos) << r.err;
}

TEST(ApiClient, BadEndpoints) {
  for (const char* endpoint : {"tcp:1.2.3.4:5", "tls:host", "tls:host:99999", "tls::::1:80",
                               "tls:[::1]", "unix:"}) {
    SCOPED_TRACE(endpoint);
    ClientOptions options;
    options.endpoint = endpoint;
    auto response = call(options, Request{"r1", "DescribeVpcs", Json::object()});
    ASSERT_FALSE(response.has_value());
    EXPECT_EQ(response.error().kind, ClientErrorKind::kBadEndpoint) << response.error().message;
  }
}

TEST(ApiClient, TlsWithoutCaIsRefusedBeforeSending) {
  // A listening TCP socket that would accept: the client must refuse to talk without a CA.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ClientOptions options;
  options.endpoint = "tls:127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  options.timeout_ms = 1000;
  auto response = call(options, Request{"r1", "DescribeVpcs", Json::object()});
  ::close(fd);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ClientErrorKind::kTls);
  EXPECT_NE(response.error().message.find("--tls-ca"), std::string::npos);
}

// A TLS server on 127.0.0.1 with a certificate for IP 127.0.0.1 signed by a test CA (made with
// the openssl command), answering each request with an empty result.
class FakeTlsServer {
 public:
  FakeTlsServer() {
    const std::string d = dir_.path().string();
    const std::string script =
        "cd " + d + " && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=vgt-ca && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem "
        "-days 2 -subj /CN=vgt-other && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=vgt-server && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile ext.cnf";
    ok_ = std::system(("(" + script + ") >/dev/null 2>&1").c_str()) == 0;
    if (!ok_) return;
    ctx_ = ::SSL_CTX_new(::TLS_server_method());
    ok_ = ctx_ != nullptr &&
          ::SSL_CTX_use_certificate_file(ctx_, (d + "/server.pem").c_str(), SSL_FILETYPE_PEM) == 1 &&
          ::SSL_CTX_use_PrivateKey_file(ctx_, (d + "/server.key").c_str(), SSL_FILETYPE_PEM) == 1;
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ok_ = ok_ && ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(listen_fd_, 8) == 0 &&
          ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
          ::pipe2(stop_, O_CLOEXEC) == 0;
    if (!ok_) return;
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeTlsServer() {
    if (thread_.joinable()) {
      char byte = 'x';
      (void)!::write(stop_[1], &byte, 1);
      thread_.join();
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    for (int fd : stop_) {
      if (fd >= 0) ::close(fd);
    }
    if (ctx_ != nullptr) ::SSL_CTX_free(ctx_);
  }
  FakeTlsServer(const FakeTlsServer&) = delete;
  FakeTlsServer& operator=(const FakeTlsServer&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string file(const char* name) const {
    return (dir_.path() / name).string();
  }

 private:
  void run() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) <= 0 || (fds[1].revents & POLLIN) != 0) return;
      int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      timeval tv{2, 0};  // a client that gives up mid-handshake must not hang the server
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = ::SSL_new(ctx_);
      ::SSL_set_fd(ssl, conn);
      if (::SSL_accept(ssl) == 1) {
        std::string line;
        char buffer[4096];
        int n = 0;
        while (line.find('\n') == std::string::npos &&
               (n = ::SSL_read(ssl, buffer, sizeof buffer)) > 0) {
          line.append(buffer, static_cast<size_t>(n));
        }
        Json request = Json::parse(line.substr(0, line.find('\n')), nullptr, false);
        if (!request.is_discarded()) {
          std::string answer = FakeApiServer::result(request, {{"Vpcs", Json::array()}});
          ::SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
        }
        ::SSL_shutdown(ssl);
      }
      ::SSL_free(ssl);
      ::close(conn);
    }
  }

  TempDir dir_;
  bool ok_ = false;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

TEST(ApiClient, TlsVerifiesTheServerAgainstTheCaAndItsAddress) {
  FakeTlsServer server;
  if (!server.ok()) GTEST_SKIP() << "the openssl command could not make test certificates";
  const std::string port = std::to_string(server.port());
  ClientOptions options;
  options.timeout_ms = 5000;
  options.tls_ca = server.file("ca.pem");

  options.endpoint = "tls:127.0.0.1:" + port;
  auto good = call(options, Request{"r1", "DescribeVpcs", Json::object()});
  ASSERT_TRUE(good.has_value()) << good.error().message;
  EXPECT_TRUE(good->ok);
  EXPECT_EQ(good->result, Json::parse(R"({"Vpcs": []})"));

  // Signed by a CA we do not trust.
  options.tls_ca = server.file("other-ca.pem");
  auto untrusted = call(options, Request{"r2", "DescribeVpcs", Json::object()});
  ASSERT_FALSE(untrusted.has_value());
  EXPECT_EQ(untrusted.error().kind, ClientErrorKind::kTls);
  EXPECT_NE(untrusted.error().message.find("not trusted"), std::string::npos)
      << untrusted.error().message;

  // The right CA, but the certificate names 127.0.0.1, not "localhost".
  options.tls_ca = server.file("ca.pem");
  options.endpoint = "tls:localhost:" + port;
  auto wrong_name = call(options, Request{"r3", "DescribeVpcs", Json::object()});
  ASSERT_FALSE(wrong_name.has_value());
  EXPECT_EQ(wrong_name.error().kind, ClientErrorKind::kTls) << wrong_name.error().message;

  // Through the CLI: exit 0 with the table (empty list: nothing to print) and 255 on a bad CA.
  RunOutput r = run({"describe-vpcs", "--api", "tls:127.0.0.1:" + port, "--tls-ca",
                     server.file("ca.pem"), "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\n    \"Vpcs\": []\n}\n");
  RunOutput bad = run({"describe-vpcs", "--api", "tls:127.0.0.1:" + port, "--tls-ca",
                       server.file("other-ca.pem")});
  EXPECT_EQ(bad.code, 255);
}

// ---- apply / plan ----------------------------------------------------------------------------

TEST(ApiCliRun, ApplySendsTheDocumentsAndPrintsThePlan) {
  TempDir dir;
  fs::copy_file(fs::path(test::sourceDir()) / "configs" / "lab.toml", dir.path() / "lab.toml");
  FakeApiServer server([](const Json& request) {
    return FakeApiServer::result(
        request,
        {{"Changes",
          {{{"Action", "ec2:CreateSecurityGroup"},
            {"Resource", "arn:vpcguard:ec2:lab-1:123456789012:security-group/sg-web"},
            {"Summary", "web (2 ingress, 1 egress rules)"}},
           {{"Action", "ec2:RevokeSecurityGroupIngress"},
            {"Resource", "arn:vpcguard:ec2:lab-1:123456789012:security-group/sg-db"},
            {"Summary", "tcp 3306 from 10.0.0.0/16"}},
           {{"Action", "ec2:ModifyNetworkInterfaceAttribute"},
            {"Resource", "arn:vpcguard:ec2:lab-1:123456789012:network-interface/eni-db1"},
            {"Summary", "groups sg-db"}}}}});
  });
  RunOutput r = run({"apply", dir.path().string(), "--api", server.endpoint()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "+ ec2:CreateSecurityGroup arn:vpcguard:ec2:lab-1:123456789012:security-group/sg-web:"
            " web (2 ingress, 1 egress rules)\n"
            "- ec2:RevokeSecurityGroupIngress "
            "arn:vpcguard:ec2:lab-1:123456789012:security-group/sg-db: tcp 3306 from "
            "10.0.0.0/16\n"
            "~ ec2:ModifyNetworkInterfaceAttribute "
            "arn:vpcguard:ec2:lab-1:123456789012:network-interface/eni-db1: groups sg-db\n"
            "Applied 3 change(s).\n");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["Action"], "ApplyConfig");
  const Json& documents = requests[0]["Parameters"]["Documents"];
  ASSERT_EQ(documents.size(), 1u);
  EXPECT_NE(documents[0]["Name"].get<std::string>().find("lab.toml"), std::string::npos);
  std::ifstream lab(dir.path() / "lab.toml");
  std::string text((std::istreambuf_iterator<char>(lab)), std::istreambuf_iterator<char>());
  EXPECT_EQ(documents[0]["Text"], text);
}

TEST(ApiCliRun, PlanWithoutChanges) {
  TempDir dir;
  fs::copy_file(fs::path(test::sourceDir()) / "configs" / "lab.toml", dir.path() / "lab.toml");
  FakeApiServer server([](const Json& request) {
    return FakeApiServer::result(request, {{"Changes", Json::array()}});
  });
  RunOutput r = run({"plan", (dir.path() / "lab.toml").string(), "--api", server.endpoint()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "No changes.\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0]["Action"], "PlanConfig");
}

TEST(ApiCliRun, ApplyOfAnInvalidFileShowsWhereAndSendsNothing) {
  TempDir dir;
  {
    std::ofstream f(dir.path() / "bad.toml");
    f << "[vpc]\nid = \"vpc-1\"\ncidr_blocks = [\"10.0.0.0/33\"]\n";
  }
  FakeApiServer server([](const Json& request) { return FakeApiServer::result(request, {}); });
  RunOutput r = run({"apply", (dir.path() / "bad.toml").string(), "--api", server.endpoint()});
  EXPECT_EQ(r.code, 252);
  EXPECT_NE(r.err.find("bad.toml:3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was sent"), std::string::npos) << r.err;
  EXPECT_TRUE(server.requests().empty());

  RunOutput missing = run({"plan", (dir.path() / "missing").string(), "--api", server.endpoint()});
  EXPECT_EQ(missing.code, 252);
  EXPECT_NE(missing.err.find("missing"), std::string::npos) << missing.err;
  EXPECT_TRUE(server.requests().empty());
}

TEST(ApiCliRun, HelpPrintsTheUsageAndSendsNothing) {
  RunOutput r = run({"create-network-acl-entry", "help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: vpcguardctl create-network-acl-entry"), std::string::npos);
  EXPECT_NE(r.out.find("--port-range <Key=Value,...|JSON>"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Egress = true"), std::string::npos) << r.out;
}

// ---- renderers -----------------------------------------------------------------------------

const char* kSecurityGroups = R"({"SecurityGroups": [
  {"Description": "web servers", "GroupId": "sg-web", "GroupName": "web",
   "OwnerId": "123456789012", "VpcId": "vpc-lab",
   "IpPermissions": [
     {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
      "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [],
      "UserIdGroupPairs": []},
     {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [], "Ipv6Ranges": [],
      "PrefixListIds": [],
      "UserIdGroupPairs": [{"GroupId": "sg-bastion", "UserId": "123456789012"}]}],
   "IpPermissionsEgress": [
     {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
      "PrefixListIds": [], "UserIdGroupPairs": []}]}]})";

const char* kNetworkAcls = R"({"NetworkAcls": [
  {"NetworkAclId": "acl-private", "VpcId": "vpc-lab", "IsDefault": false,
   "OwnerId": "123456789012",
   "Associations": [{"NetworkAclAssociationId": "aclassoc-1", "NetworkAclId": "acl-private",
                     "SubnetId": "subnet-private"}],
   "Entries": [
     {"RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": false,
      "CidrBlock": "10.0.1.0/24", "PortRange": {"From": 5432, "To": 5432}},
     {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": false,
      "CidrBlock": "0.0.0.0/0"}]}]})";

TEST(ApiRender, JsonIsIndentedByFour) {
  Json result = Json::parse(R"({"Return": true, "GroupId": "sg-1", "List": [1, "a"]})");
  EXPECT_EQ(renderJson(result),
            "{\n"
            "    \"GroupId\": \"sg-1\",\n"
            "    \"List\": [\n"
            "        1,\n"
            "        \"a\"\n"
            "    ],\n"
            "    \"Return\": true\n"
            "}\n");
  EXPECT_EQ(renderJson(Json::parse(kSecurityGroups)),
            Json::parse(kSecurityGroups).dump(4) + "\n");
}

TEST(ApiRender, TextSecurityGroups) {
  EXPECT_EQ(renderText(Json::parse(kSecurityGroups)),
            "SECURITYGROUPS\tweb servers\tsg-web\tweb\t123456789012\tvpc-lab\n"
            "IPPERMISSIONS\t443\ttcp\t443\n"
            "IPRANGES\t0.0.0.0/0\n"
            "IPPERMISSIONS\t22\ttcp\t22\n"
            "USERIDGROUPPAIRS\tsg-bastion\t123456789012\n"
            "IPPERMISSIONSEGRESS\t-1\n"
            "IPRANGES\t0.0.0.0/0\n");
}

TEST(ApiRender, TextNetworkAcls) {
  EXPECT_EQ(renderText(Json::parse(kNetworkAcls)),
            "NETWORKACLS\tFalse\tacl-private\t123456789012\tvpc-lab\n"
            "ASSOCIATIONS\taclassoc-1\tacl-private\tsubnet-private\n"
            "ENTRIES\t10.0.1.0/24\tFalse\t6\tallow\t100\n"
            "PORTRANGE\t5432\t5432\n"
            "ENTRIES\t0.0.0.0/0\tFalse\t-1\tdeny\t32767\n");
}

TEST(ApiRender, TextScalarsAndScalarLists) {
  EXPECT_EQ(renderText(Json::parse(R"({"Return": true, "GroupId": "sg-1"})")), "sg-1\tTrue\n");
  EXPECT_EQ(renderText(Json::parse(R"({"FlowLogIds": ["fl-1", "fl-2"], "Unsuccessful": []})")),
            "FLOWLOGIDS\tfl-1\nFLOWLOGIDS\tfl-2\n");
  EXPECT_EQ(renderText(Json::object()), "");
}

TEST(ApiRender, TableSecurityGroups) {
  EXPECT_EQ("\n" + renderTable(Json::parse(kSecurityGroups), "DescribeSecurityGroups"),
            R"(
--------------------------------------------------------------------------
|                         DescribeSecurityGroups                         |
+------------------------------------------------------------------------+
||                            SecurityGroups                            ||
|+---------------+-----------+-------------+----------------+-----------+|
||  Description  |  GroupId  |  GroupName  |    OwnerId     |   VpcId   ||
|+---------------+-----------+-------------+----------------+-----------+|
||  web servers  |  sg-web   |  web        |  123456789012  |  vpc-lab  ||
|+---------------+-----------+-------------+----------------+-----------+|
|||                           IpPermissions                            |||
||+----------------------+------------------------+--------------------+||
|||       FromPort       |       IpProtocol       |       ToPort       |||
||+----------------------+------------------------+--------------------+||
|||  443                 |  tcp                   |  443               |||
||+----------------------+------------------------+--------------------+||
||||                             IpRanges                             ||||
|||+------------------------------------------------------------------+|||
||||                              CidrIp                              ||||
|||+------------------------------------------------------------------+|||
||||  0.0.0.0/0                                                       ||||
|||+------------------------------------------------------------------+|||
|||                           IpPermissions                            |||
||+----------------------+------------------------+--------------------+||
|||       FromPort       |       IpProtocol       |       ToPort       |||
||+----------------------+------------------------+--------------------+||
|||  22                  |  tcp                   |  22                |||
||+----------------------+------------------------+--------------------+||
||||                         UserIdGroupPairs                         ||||
|||+--------------------------------+---------------------------------+|||
||||            GroupId             |             UserId              ||||
|||+--------------------------------+---------------------------------+|||
||||  sg-bastion                    |  123456789012                   ||||
|||+--------------------------------+---------------------------------+|||
|||                        IpPermissionsEgress                         |||
||+--------------------------------------------------------------------+||
|||                             IpProtocol                             |||
||+--------------------------------------------------------------------+||
|||  -1                                                                |||
||+--------------------------------------------------------------------+||
||||                             IpRanges                             ||||
|||+------------------------------------------------------------------+|||
||||                              CidrIp                              ||||
|||+------------------------------------------------------------------+|||
||||  0.0.0.0/0                                                       ||||
|||+------------------------------------------------------------------+|||
)");
}

TEST(ApiRender, TableNetworkAcls) {
  EXPECT_EQ("\n" + renderTable(Json::parse(kNetworkAcls), "DescribeNetworkAcls"),
            R"(
---------------------------------------------------------------------------
|                           DescribeNetworkAcls                           |
+-------------------------------------------------------------------------+
||                              NetworkAcls                              ||
|+----------------+-------------------+-------------------+--------------+|
||   IsDefault    |   NetworkAclId    |      OwnerId      |    VpcId     ||
|+----------------+-------------------+-------------------+--------------+|
||  False         |  acl-private      |  123456789012     |  vpc-lab     ||
|+----------------+-------------------+-------------------+--------------+|
|||                            Associations                             |||
||+-----------------------------+------------------+--------------------+||
|||   NetworkAclAssociationId   |   NetworkAclId   |      SubnetId      |||
||+-----------------------------+------------------+--------------------+||
|||  aclassoc-1                 |  acl-private     |  subnet-private    |||
||+-----------------------------+------------------+--------------------+||
|||                               Entries                               |||
||+---------------+----------+------------+--------------+--------------+||
|||   CidrBlock   |  Egress  |  Protocol  |  RuleAction  |  RuleNumber  |||
||+---------------+----------+------------+--------------+--------------+||
|||  10.0.1.0/24  |  False   |  6         |  allow       |  100         |||
||+---------------+----------+------------+--------------+--------------+||
||||                             PortRange                             ||||
|||+---------------------------------+---------------------------------+|||
||||  From                           |  5432                           ||||
||||  To                             |  5432                           ||||
|||+---------------------------------+---------------------------------+|||
|||                               Entries                               |||
||+---------------+----------+------------+--------------+--------------+||
|||   CidrBlock   |  Egress  |  Protocol  |  RuleAction  |  RuleNumber  |||
||+---------------+----------+------------+--------------+--------------+||
|||  0.0.0.0/0    |  False   |  -1        |  deny        |  32767       |||
||+---------------+----------+------------+--------------+--------------+||
)");
}

TEST(ApiRender, TableOfASingleObject) {
  EXPECT_EQ(renderTable(Json::parse(R"({"Return": true, "GroupId": "sg-0123"})"),
                        "CreateSecurityGroup"),
            "-------------------------\n"
            "|  CreateSecurityGroup  |\n"
            "+-----------+-----------+\n"
            "|  GroupId  |  sg-0123  |\n"
            "|  Return   |  True     |\n"
            "+-----------+-----------+\n");
  EXPECT_EQ(renderTable(Json::object(), "DeleteFlowLogs"), "");
}

TEST(ApiRender, FormatNames) {
  EXPECT_EQ(parseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(parseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(parseOutputFormat("text"), OutputFormat::kText);
  EXPECT_EQ(parseOutputFormat("yaml"), std::nullopt);
}

}  // namespace
}  // namespace vpcguard::api
