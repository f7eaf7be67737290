#pragma once
// The control API's wire format (docs/api.md): newline-delimited JSON over a Unix socket or TLS.
// One request per line, one response line per request, in order. Parameters carry AWS's EC2 API
// names and JSON shapes (what `aws ec2 ... --generate-cli-skeleton` shows), so that vpcguardctl
// maps AWS CLI options one to one and a describe result has the AWS CLI's JSON shape.
//
//   request:  {"RequestId": "c0ffee", "Action": "AuthorizeSecurityGroupIngress",
//              "Parameters": {"GroupId": "sg-web", "IpPermissions": [...]}}
//   response: {"RequestId": "c0ffee", "Result": {...}}
//         or  {"RequestId": "c0ffee", "Error": {"Code": "UnauthorizedOperation", "Message": "..."}}

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "translator/result.h"

namespace vpcguard::api {

using Json = nlohmann::json;

// A request line may not be longer (an `apply` of a large config directory is the biggest).
inline constexpr size_t kMaxRequestBytes = 64u << 20;

struct Request {
  std::string request_id;  // echoed; may be empty
  std::string action;      // EC2 API action name, "DescribeSecurityGroups"
  Json parameters = Json::object();
};

// An API error as AWS names them (docs/api.md lists every code we return).
struct ApiError {
  std::string code;     // "UnauthorizedOperation", "InvalidGroup.NotFound", "InvalidParameterValue"
  std::string message;  // names the action and the resource where there is one
};

// Parses one request line. Never throws; malformed input (not JSON, not an object, Action
// missing or not a string, Parameters not an object, too deep or too long) is an ApiError with
// code "MalformedRequest" / "InvalidParameterValue".
[[nodiscard]] tl::expected<Request, ApiError> decodeRequest(std::string_view line);

// One response line (with the trailing '\n'). Strings are dumped with invalid UTF-8 replaced.
[[nodiscard]] std::string encodeResult(const std::string& request_id, const Json& result);
[[nodiscard]] std::string encodeError(const std::string& request_id, const ApiError& error);

}  // namespace vpcguard::api
