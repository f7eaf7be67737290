#pragma once
// vpcguardctl's API verbs (docs/cli.md): `vpcguardctl <aws-verb> [AWS CLI options]`, plus
// `apply` and `plan` of a config file or directory.
//
// Design: one table per verb maps each AWS CLI option to its EC2 API parameter and the shape of
// its value (string, integer, list, structure, flag), written out rather than derived by name,
// so that a typo cannot invent a parameter and `help` can print each verb's usage. Values follow
// the AWS CLI: a value starting with '[' or '{' is JSON, anything else for a structure is AWS
// shorthand (Key=Value,Key=[{K=V},...]). Parsing is pure (argv -> Action + Parameters) and unit
// tested; runCli adds the exchange with the server and the output.
//
// Exit codes are the AWS CLI's: 0 success, 252 bad command line (or unreadable / invalid config
// for apply and plan), 254 the service returned an error, 255 anything else (cannot connect,
// timeout).

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "api/client.h"
#include "api/render.h"
#include "api/request.h"

namespace vpcguard::api {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 252;
inline constexpr int kExitServiceError = 254;
inline constexpr int kExitOther = 255;

// A parsed command line.
struct CliCommand {
  std::string verb;    // "describe-security-groups", "apply"
  std::string action;  // "DescribeSecurityGroups", "ApplyConfig"
  Json parameters = Json::object();
  std::string path;    // apply / plan: the file or directory (Parameters filled by runCli)
  OutputFormat output = OutputFormat::kTable;
  ClientOptions client;
  bool help = false;  // `VERB help` / `VERB --help`: print the usage, send nothing
};

struct CliError {
  int exit_code = kExitUsage;
  std::string message;  // without the usage line
};

// True for the verbs runCli handles (the AWS verbs, apply, plan).
[[nodiscard]] bool isApiVerb(std::string_view verb);
// Every verb with a one-line summary, for `vpcguardctl --help`.
[[nodiscard]] std::string verbListing();
// "usage: vpcguardctl VERB ..." for one verb (empty for an unknown one).
[[nodiscard]] std::string verbUsage(std::string_view verb);

// `args` starts with the verb. The endpoint defaults to defaultEndpoint() ($VPCGUARD_API).
[[nodiscard]] tl::expected<CliCommand, CliError> parseCommandLine(
    const std::vector<std::string>& args);

// AWS shorthand for one structure: "From=1,To=2", "IpProtocol=tcp,FromPort=22,ToPort=22,
// IpRanges=[{CidrIp=10.0.0.0/8,Description=\"ssh, admins\"}]". Values of the known integer keys
// (FromPort, ToPort, From, To, Type, Code) become JSON integers; IpRanges, Ipv6Ranges,
// UserIdGroupPairs and PrefixListIds are lists of structures. Error: what is wrong and where.
[[nodiscard]] tl::expected<Json, std::string> parseShorthand(std::string_view text);

// The whole verb: parse, (apply/plan: read and validate the files), call, print. Returns the
// exit code.
[[nodiscard]] int runCli(int argc, char** argv, std::ostream& out, std::ostream& err);
[[nodiscard]] int runCli(const std::vector<std::string>& args, std::ostream& out,
                         std::ostream& err);

}  // namespace vpcguard::api
