// libFuzzer target: any bytes as one control API request line (api/request.cpp). The decoder
// promises a Request or an ApiError for every input, never a crash, a leak, a hang or an
// exception; and what it accepts must hold what the server relies on: an Action of 1-64
// letters, Parameters an object, a RequestId that survives the response encoder unchanged.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/request.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vpcguard::api::Json;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto request = vpcguard::api::decodeRequest(line);
  if (!request) {
    check(!request.error().code.empty() && !request.error().message.empty());
    // The error goes back to the client: it must encode to one parseable line.
    const std::string response = vpcguard::api::encodeError("", request.error());
    check(!response.empty() && response.back() == '\n');
    check(response.find('\n') == response.size() - 1);
    check(!Json::parse(response, nullptr, false).is_discarded());
    return 0;
  }
  check(!request->action.empty() && request->action.size() <= 64);
  for (const char c : request->action) check((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
  check(request->parameters.is_object());
  // Echo the parameters as a result: the encoder must give one line that parses back to the
  // same request id and the same parameters (the decoder accepted only valid UTF-8).
  const std::string response = vpcguard::api::encodeResult(request->request_id,
                                                           request->parameters);
  check(response.find('\n') == response.size() - 1);
  const Json parsed = Json::parse(response, nullptr, false);
  check(!parsed.is_discarded());
  check(parsed.at("RequestId") == request->request_id);
  check(parsed.at("Result") == request->parameters);
  return 0;
}
