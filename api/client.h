#pragma once
// The control API's client transport (docs/cli.md): one request line out, one response line back,
// over a Unix socket ("unix:PATH") or TLS ("tls:HOST:PORT", OpenSSL; the server's certificate is
// verified against --tls-ca and its name or IP address).
//
// Design: every step (connect, TLS handshake, write, read) runs on a non-blocking socket polled
// against one deadline, so a server that accepts and never answers costs at most timeout_ms.
// Failures are classified (missing socket, permission denied, refused, timeout, TLS, protocol)
// because the CLI tells the user what to do about each.

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "api/request.h"

namespace vpcguard::api {

inline constexpr std::string_view kDefaultApiEndpoint = "unix:/run/vpcguard/api.sock";
inline constexpr int kDefaultTimeoutMs = 30000;
// A response line may not be longer (a describe of a large policy is the biggest).
inline constexpr size_t kMaxResponseBytes = 256u << 20;

struct ClientOptions {
  std::string endpoint{kDefaultApiEndpoint};  // "unix:PATH" or "tls:HOST:PORT" ("tls:[::1]:8443")
  std::string tls_cert;                       // client certificate (PEM), its identity for IAM
  std::string tls_key;                        // its private key (PEM)
  std::string tls_ca;                         // CA bundle that signed the server's certificate
  int timeout_ms = kDefaultTimeoutMs;         // connect + handshake + the whole exchange
};

// $VPCGUARD_API when set and not empty, else kDefaultApiEndpoint.
[[nodiscard]] std::string defaultEndpoint();

enum class ClientErrorKind {
  kBadEndpoint,       // not "unix:..." / "tls:HOST:PORT"
  kSocketMissing,     // ENOENT on the Unix socket path
  kPermissionDenied,  // EACCES / EPERM on the Unix socket path
  kRefused,           // nobody listening (stale socket, server down)
  kTimeout,           // the deadline passed
  kTls,               // certificate files, handshake or verification
  kProtocol,          // the connection closed early, or the answer is not a response line
  kOther,             // any other system error
};

struct ClientError {
  ClientErrorKind kind = ClientErrorKind::kOther;
  std::string message;  // complete sentence for the user, names the endpoint
};

// What the server answered: exactly one of `result` / `error` is meaningful.
struct Response {
  std::string request_id;
  bool ok = false;
  Json result;     // when ok
  ApiError error;  // when !ok
};

// Sends `request` and waits for its response line. Never throws.
[[nodiscard]] tl::expected<Response, ClientError> call(const ClientOptions& options,
                                                       const Request& request);

// Parses one response line (exposed for tests).
[[nodiscard]] tl::expected<Response, ClientError> decodeResponse(std::string_view line);

}  // namespace vpcguard::api
