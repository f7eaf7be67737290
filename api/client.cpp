#include "api/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

namespace vpcguard::api {
namespace {

using Clock = std::chrono::steady_clock;

class Deadline {
 public:
  explicit Deadline(int timeout_ms) : end_(Clock::now() + std::chrono::milliseconds(timeout_ms)) {}
  // Milliseconds left, rounded up so that a poll never busy-loops on a sub-millisecond rest.
  [[nodiscard]] int remainingMs() const {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(end_ - Clock::now());
    if (left.count() <= 0) return 0;
    return static_cast<int>((left.count() + 999) / 1000);
  }
  [[nodiscard]] bool expired() const { return Clock::now() >= end_; }

 private:
  Clock::time_point end_;
};

tl::unexpected<ClientError> clientError(ClientErrorKind kind, std::string message) {
  return tl::unexpected<ClientError>(ClientError{kind, std::move(message)});
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

// Waits until `fd` has `events`; false on timeout. EINTR restarts with the time left.
[[nodiscard]] bool waitFor(int fd, short events, const Deadline& deadline) {
  for (;;) {
    int left = deadline.remainingMs();
    if (left == 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, left);
    if (n > 0) return true;  // readiness or an error condition the next call reports
    if (n == 0) continue;    // loop re-checks the deadline
    if (errno != EINTR) return true;
  }
}

std::string timeoutMessage(const std::string& endpoint, int timeout_ms, const char* step) {
  return "no answer from the API at " + endpoint + " within " + std::to_string(timeout_ms) +
         " ms while " + step + " (--timeout-ms)";
}

// Completes a non-blocking connect() that returned EINPROGRESS: 0 or the socket's error.
[[nodiscard]] tl::expected<int, bool> finishConnect(int fd, const Deadline& deadline) {
  if (!waitFor(fd, POLLOUT, deadline)) return tl::unexpected(false);
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) return errno;
  return so_error;
}

tl::expected<Fd, ClientError> connectUnix(const std::string& path, const ClientOptions& options,
                                          const Deadline& deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return clientError(ClientErrorKind::kBadEndpoint,
                       "the API socket path '" + path + "' is empty or too long");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return clientError(ClientErrorKind::kOther, std::string("socket: ") + std::strerror(errno));
  }
  for (;;) {
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    int error = rc == 0 ? 0 : errno;
    if (error == EINTR) continue;
    if (error == EINPROGRESS) {
      auto finished = finishConnect(fd.get(), deadline);
      if (!finished) {
        return clientError(ClientErrorKind::kTimeout,
                           timeoutMessage(options.endpoint, options.timeout_ms, "connecting"));
      }
      error = *finished;
    }
    // A Unix socket whose backlog is full answers EAGAIN instead of queueing: retry until the
    // deadline, as a TCP SYN would be retried.
    if (error == EAGAIN) {
      if (deadline.expired()) {
        return clientError(ClientErrorKind::kTimeout,
                           timeoutMessage(options.endpoint, options.timeout_ms, "connecting"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (error == 0) return fd;
    const std::string where = "cannot connect to the API at " + options.endpoint + ": ";
    if (error == ENOENT || error == ENOTDIR) {
      return clientError(ClientErrorKind::kSocketMissing,
                         where + "the socket " + path +
                             " does not exist (is vpcguard-apid running? set VPCGUARD_API or "
                             "--api to use another endpoint)");
    }
    if (error == EACCES || error == EPERM) {
      return clientError(ClientErrorKind::kPermissionDenied,
                         where + "permission denied on " + path +
                             "; you may need to be in the API socket's group (see `ls -l " + path +
                             "`)");
    }
    if (error == ECONNREFUSED) {
      return clientError(ClientErrorKind::kRefused,
                         where + "nothing is listening on " + path +
                             " (a stale socket: is vpcguard-apid running?)");
    }
    return clientError(ClientErrorKind::kOther, where + std::strerror(error));
  }
}

struct HostPort {
  std::string host;
  std::string port;
};

tl::expected<HostPort, ClientError> splitHostPort(std::string_view text,
                                                  const std::string& endpoint) {
  auto bad = [&] {
    return clientError(ClientErrorKind::kBadEndpoint,
                       "the API endpoint '" + endpoint +
                           "' is not tls:HOST:PORT (an IPv6 address in brackets: tls:[::1]:8443)");
  };
  HostPort out;
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad();
    }
    out.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad();
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad();
  }
  out.port = std::string(text.substr(colon + 1));
  if (out.host.empty() || out.port.empty() || out.port.size() > 5 ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  int port = std::stoi(out.port);
  if (port < 1 || port > 65535) return bad();
  return out;
}

// Name resolution (getaddrinfo) is not bounded by the deadline; a numeric host skips it.
tl::expected<Fd, ClientError> connectTcp(const HostPort& hp, const ClientOptions& options,
                                         const Deadline& deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &list);
  if (rc != 0) {
    return clientError(ClientErrorKind::kOther, "cannot connect to the API at " +
                                                    options.endpoint + ": cannot resolve " +
                                                    hp.host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(list, &::freeaddrinfo);
  int last_error = ECONNREFUSED;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   ai->ai_protocol));
    if (fd.get() < 0) {
      last_error = errno;
      continue;
    }
    int error = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (error == EINPROGRESS || error == EINTR) {
      auto finished = finishConnect(fd.get(), deadline);
      if (!finished) {
        return clientError(ClientErrorKind::kTimeout,
                           timeoutMessage(options.endpoint, options.timeout_ms, "connecting"));
      }
      error = *finished;
    }
    if (error == 0) return fd;
    last_error = error;
  }
  return clientError(last_error == ECONNREFUSED ? ClientErrorKind::kRefused
                                                : ClientErrorKind::kOther,
                     "cannot connect to the API at " + options.endpoint + ": " +
                         std::strerror(last_error));
}

// The byte stream under the exchange: a plain socket or a TLS session over one.
class Stream {
 public:
  virtual ~Stream() = default;
  // Bytes read (0 = the peer closed), or an error.
  virtual tl::expected<size_t, ClientError> readSome(char* buffer, size_t size,
                                                     const Deadline& deadline) = 0;
  virtual tl::expected<void, ClientError> writeAll(std::string_view data,
                                                   const Deadline& deadline) = 0;
};

class PlainStream final : public Stream {
 public:
  PlainStream(Fd fd, const ClientOptions& options) : fd_(std::move(fd)), options_(options) {}

  tl::expected<size_t, ClientError> readSome(char* buffer, size_t size,
                                             const Deadline& deadline) override {
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buffer, size, 0);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return clientError(ClientErrorKind::kProtocol, "reading from the API at " +
                                                           options_.endpoint + ": " +
                                                           std::strerror(errno));
      }
      if (!waitFor(fd_.get(), POLLIN, deadline)) {
        return clientError(ClientErrorKind::kTimeout,
                           timeoutMessage(options_.endpoint, options_.timeout_ms,
                                          "waiting for the response"));
      }
    }
  }

  tl::expected<void, ClientError> writeAll(std::string_view data,
                                           const Deadline& deadline) override {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return clientError(ClientErrorKind::kProtocol, "sending to the API at " +
                                                           options_.endpoint + ": " +
                                                           std::strerror(errno));
      }
      if (!waitFor(fd_.get(), POLLOUT, deadline)) {
        return clientError(ClientErrorKind::kTimeout,
                           timeoutMessage(options_.endpoint, options_.timeout_ms,
                                          "sending the request"));
      }
    }
    return {};
  }

 private:
  Fd fd_;
  const ClientOptions& options_;
};

std::string opensslErrors() {
  std::string out;
  while (unsigned long code = ::ERR_get_error()) {
    char buffer[256];
    ::ERR_error_string_n(code, buffer, sizeof buffer);
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out.empty() ? "unknown TLS error" : out;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { ::SSL_CTX_free(ctx); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const { ::SSL_free(ssl); }
};

class TlsStream final : public Stream {
 public:
  TlsStream(Fd fd, const ClientOptions& options) : fd_(std::move(fd)), options_(options) {}

  tl::expected<void, ClientError> handshake(const std::string& host, const Deadline& deadline) {
    auto tlsError = [&](const std::string& what) {
      return clientError(ClientErrorKind::kTls,
                         "TLS to the API at " + options_.endpoint + ": " + what);
    };
    ::ERR_clear_error();
    ctx_.reset(::SSL_CTX_new(::TLS_client_method()));
    if (!ctx_) return tlsError(opensslErrors());
    ::SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    if (options_.tls_ca.empty()) {
      return tlsError("--tls-ca is required: the CA that signed the server's certificate");
    }
    if (::SSL_CTX_load_verify_locations(ctx_.get(), options_.tls_ca.c_str(), nullptr) != 1) {
      return tlsError("cannot load the CA " + options_.tls_ca + ": " + opensslErrors());
    }
    if (options_.tls_cert.empty() != options_.tls_key.empty()) {
      return tlsError("--tls-cert and --tls-key go together");
    }
    if (!options_.tls_cert.empty()) {
      if (::SSL_CTX_use_certificate_chain_file(ctx_.get(), options_.tls_cert.c_str()) != 1) {
        return tlsError("cannot load the certificate " + options_.tls_cert + ": " +
                        opensslErrors());
      }
      if (::SSL_CTX_use_PrivateKey_file(ctx_.get(), options_.tls_key.c_str(),
                                        SSL_FILETYPE_PEM) != 1 ||
          ::SSL_CTX_check_private_key(ctx_.get()) != 1) {
        return tlsError("cannot load the key " + options_.tls_key + ": " + opensslErrors());
      }
    }
    ::SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    ssl_.reset(::SSL_new(ctx_.get()));
    if (!ssl_ || ::SSL_set_fd(ssl_.get(), fd_.get()) != 1) return tlsError(opensslErrors());

    // The server's certificate must name what the user asked for: its IP address for a numeric
    // host, else its DNS name (also sent as SNI).
    unsigned char probe[16];
    bool numeric = ::inet_pton(AF_INET, host.c_str(), probe) == 1 ||
                   ::inet_pton(AF_INET6, host.c_str(), probe) == 1;
    X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl_.get());
    if (numeric) {
      if (::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
        return tlsError(opensslErrors());
      }
    } else {
      ::X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (::SSL_set1_host(ssl_.get(), host.c_str()) != 1 ||
          // SSL_set_tlsext_host_name() spelled out: the macro has a C cast (-Wold-style-cast).
          ::SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(host.c_str())) != 1) {
        return tlsError(opensslErrors());
      }
    }
    for (;;) {
      ::ERR_clear_error();
      int rc = ::SSL_connect(ssl_.get());
      if (rc == 1) return {};
      int error = ::SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!waitFor(fd_.get(), error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          return clientError(ClientErrorKind::kTimeout,
                             timeoutMessage(options_.endpoint, options_.timeout_ms,
                                            "in the TLS handshake"));
        }
        continue;
      }
      long verify = ::SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK) {
        return tlsError(std::string("the server's certificate is not trusted: ") +
                        ::X509_verify_cert_error_string(verify));
      }
      return tlsError("handshake failed: " + opensslErrors());
    }
  }

  tl::expected<size_t, ClientError> readSome(char* buffer, size_t size,
                                             const Deadline& deadline) override {
    for (;;) {
      ::ERR_clear_error();
      size_t got = 0;
      int rc = ::SSL_read_ex(ssl_.get(), buffer, size, &got);
      if (rc == 1) return got;
      int error = ::SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_ZERO_RETURN) return size_t{0};
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!waitFor(fd_.get(), error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          return clientError(ClientErrorKind::kTimeout,
                             timeoutMessage(options_.endpoint, options_.timeout_ms,
                                            "waiting for the response"));
        }
        continue;
      }
      if (error == SSL_ERROR_SYSCALL && ::ERR_peek_error() == 0) return size_t{0};  // bare EOF
      return clientError(ClientErrorKind::kTls, "TLS read from the API at " + options_.endpoint +
                                                    ": " + opensslErrors());
    }
  }

  tl::expected<void, ClientError> writeAll(std::string_view data,
                                           const Deadline& deadline) override {
    while (!data.empty()) {
      ::ERR_clear_error();
      size_t written = 0;
      int rc = ::SSL_write_ex(ssl_.get(), data.data(), data.size(), &written);
      if (rc == 1) {
        data.remove_prefix(written);
        continue;
      }
      int error = ::SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!waitFor(fd_.get(), error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          return clientError(ClientErrorKind::kTimeout,
                             timeoutMessage(options_.endpoint, options_.timeout_ms,
                                            "sending the request"));
        }
        continue;
      }
      return clientError(ClientErrorKind::kTls, "TLS write to the API at " + options_.endpoint +
                                                    ": " + opensslErrors());
    }
    return {};
  }

 private:
  Fd fd_;
  const ClientOptions& options_;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

tl::expected<std::unique_ptr<Stream>, ClientError> open(const ClientOptions& options,
                                                        const Deadline& deadline) {
  std::string_view endpoint = options.endpoint;
  if (endpoint.rfind("unix:", 0) == 0 || endpoint.rfind('/', 0) == 0) {
    std::string path(endpoint.front() == '/' ? endpoint : endpoint.substr(5));
    auto fd = connectUnix(path, options, deadline);
    if (!fd) return tl::unexpected(fd.error());
    return std::make_unique<PlainStream>(std::move(*fd), options);
  }
  if (endpoint.rfind("tls:", 0) == 0) {
    auto hp = splitHostPort(endpoint.substr(4), options.endpoint);
    if (!hp) return tl::unexpected(hp.error());
    auto fd = connectTcp(*hp, options, deadline);
    if (!fd) return tl::unexpected(fd.error());
    auto stream = std::make_unique<TlsStream>(std::move(*fd), options);
    if (auto shaken = stream->handshake(hp->host, deadline); !shaken) {
      return tl::unexpected(shaken.error());
    }
    return std::unique_ptr<Stream>(std::move(stream));
  }
  return clientError(ClientErrorKind::kBadEndpoint,
                     "the API endpoint '" + options.endpoint +
                         "' is neither unix:PATH nor tls:HOST:PORT");
}

}  // namespace

std::string defaultEndpoint() {
  const char* env = std::getenv("VPCGUARD_API");
  if (env != nullptr && *env != '\0') return env;
  return std::string(kDefaultApiEndpoint);
}

tl::expected<Response, ClientError> decodeResponse(std::string_view line) {
  auto bad = [](const std::string& why) {
    return clientError(ClientErrorKind::kProtocol, "the API's answer is not a response: " + why);
  };
  Json doc = Json::parse(line, nullptr, false);
  if (doc.is_discarded()) return bad("not JSON");
  if (!doc.is_object()) return bad("not a JSON object");
  Response out;
  if (auto it = doc.find("RequestId"); it != doc.end() && it->is_string()) {
    out.request_id = it->get<std::string>();
  }
  if (auto it = doc.find("Error"); it != doc.end()) {
    if (!it->is_object()) return bad("Error is not an object");
    auto code = it->find("Code");
    auto message = it->find("Message");
    if (code == it->end() || !code->is_string()) return bad("Error has no Code");
    out.error.code = code->get<std::string>();
    if (message != it->end() && message->is_string()) {
      out.error.message = message->get<std::string>();
    }
    return out;
  }
  auto result = doc.find("Result");
  if (result == doc.end()) return bad("neither Result nor Error");
  out.ok = true;
  out.result = std::move(*result);
  return out;
}

tl::expected<Response, ClientError> call(const ClientOptions& options, const Request& request) {
  Deadline deadline(options.timeout_ms);
  auto stream = open(options, deadline);
  if (!stream) return tl::unexpected(stream.error());

  Json wire = {{"RequestId", request.request_id},
               {"Action", request.action},
               {"Parameters", request.parameters}};
  std::string line = wire.dump(-1, ' ', false, Json::error_handler_t::replace);
  line += '\n';
  if (auto sent = (*stream)->writeAll(line, deadline); !sent) return tl::unexpected(sent.error());

  std::string answer;
  char buffer[64 * 1024];
  for (;;) {
    auto n = (*stream)->readSome(buffer, sizeof buffer, deadline);
    if (!n) return tl::unexpected(n.error());
    if (*n == 0) {
      return clientError(ClientErrorKind::kProtocol,
                         "the API at " + options.endpoint +
                             " closed the connection without a complete response");
    }
    const size_t old_size = answer.size();
    answer.append(buffer, *n);
    if (size_t nl = answer.find('\n', old_size); nl != std::string::npos) {
      answer.resize(nl);
      break;
    }
    if (answer.size() > kMaxResponseBytes) {
      return clientError(ClientErrorKind::kProtocol,
                         "the API's response is longer than " +
                             std::to_string(kMaxResponseBytes) + " bytes");
    }
  }
  auto response = decodeResponse(answer);
  if (!response) return response;
  if (!request.request_id.empty() && !response->request_id.empty() &&
      response->request_id != request.request_id) {
    return clientError(ClientErrorKind::kProtocol,
                       "the API answered request " + response->request_id + " instead of " +
                           request.request_id);
  }
  return response;
}

}  // namespace vpcguard::api
