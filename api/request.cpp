#include "api/request.h"

// Decoding is the first thing any client's bytes meet, so it is written to be total: every
// input gives a Request or an ApiError, never an exception or unbounded work. Limits come first
// (length, then nesting depth by a scan that respects strings) so that nlohmann's parser never
// sees input that could exhaust memory or the stack; invalid UTF-8 inside strings is rejected by
// the parser itself. libFuzzer runs this file (tests/fuzz/api_request_fuzz.cpp).

#include <algorithm>

namespace vpcguard::api {
namespace {

constexpr size_t kMaxDepth = 64;          // nested arrays/objects; real requests need < 10
constexpr size_t kMaxActionLength = 64;   // EC2's longest action name is ~45 characters
constexpr size_t kMaxRequestIdLength = 256;

tl::unexpected<ApiError> malformed(std::string message) {
  return tl::unexpected(ApiError{"MalformedRequest", std::move(message)});
}

// Deepest nesting of [ and { outside strings. Stops early once past `limit`.
size_t nestingDepth(std::string_view text, size_t limit) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        deepest = std::max(deepest, ++depth);
        if (deepest > limit) return deepest;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

bool validAction(const std::string& action) {
  return !action.empty() && action.size() <= kMaxActionLength &&
         std::all_of(action.begin(), action.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

std::string encode(const Json& response) {
  std::string line = response.dump(-1, ' ', false, Json::error_handler_t::replace);
  line += '\n';
  return line;
}

}  // namespace

tl::expected<Request, ApiError> decodeRequest(std::string_view line) {
  if (line.size() > kMaxRequestBytes) {
    return malformed("request of " + std::to_string(line.size()) + " bytes exceeds the limit of " +
                     std::to_string(kMaxRequestBytes));
  }
  if (nestingDepth(line, kMaxDepth) > kMaxDepth) {
    return malformed("request nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  const Json parsed = Json::parse(line.begin(), line.end(), nullptr, false);
  if (parsed.is_discarded()) return malformed("request is not valid JSON (UTF-8)");
  if (!parsed.is_object()) return malformed("request is not a JSON object");

  Request request;
  if (const auto id = parsed.find("RequestId"); id != parsed.end() && !id->is_null()) {
    if (!id->is_string()) return malformed("RequestId is not a string");
    request.request_id = id->get<std::string>();
    if (request.request_id.size() > kMaxRequestIdLength) {
      return malformed("RequestId is longer than " + std::to_string(kMaxRequestIdLength) +
                       " bytes");
    }
  }
  const auto action = parsed.find("Action");
  if (action == parsed.end() || action->is_null()) return malformed("request has no Action");
  if (!action->is_string()) return malformed("Action is not a string");
  request.action = action->get<std::string>();
  if (!validAction(request.action)) {
    std::string shown = Json(request.action.substr(0, kMaxActionLength))
                            .dump(-1, ' ', false, Json::error_handler_t::replace);
    return tl::unexpected(ApiError{"InvalidParameterValue",
                                   "Action " + shown + " is not an action name (1 to " +
                                       std::to_string(kMaxActionLength) + " letters)"});
  }
  if (const auto params = parsed.find("Parameters");
      params != parsed.end() && !params->is_null()) {
    if (!params->is_object()) return malformed("Parameters is not a JSON object");
    request.parameters = *params;
  }
  return request;
}

std::string encodeResult(const std::string& request_id, const Json& result) {
  return encode(Json{{"RequestId", request_id}, {"Result", result}});
}

std::string encodeError(const std::string& request_id, const ApiError& error) {
  return encode(
      Json{{"RequestId", request_id}, {"Error", {{"Code", error.code}, {"Message", error.message}}}});
}

}  // namespace vpcguard::api
