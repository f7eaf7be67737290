#include "api/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "api/actions.h"
#include "api/audit.h"
#include "api/iam.h"
#include "api/request.h"
#include "state/store.h"
#include "translator/defaults.h"
#include "translator/diagnostic.h"
#include "translator/validate.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

namespace vpcguard::api {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A request that keeps losing the generation race (or the audit sequence race) is given up
// after this many attempts; each attempt is a full re-run on the newer state.
constexpr int kMaxAttempts = 10;
// Reading from a connection pauses while this much of its output is unsent (a client that
// pipelines requests but does not read the responses).
constexpr size_t kMaxPendingOutput = 4u << 20;
constexpr auto kReconnectMin = 100ms;
constexpr auto kReconnectMax = 5000ms;

// The "api" logger, formatted as daemon/logging.cpp's (the library does not link the daemon's).
std::shared_ptr<spdlog::logger> log() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("api")) {
      return existing;
    }
    auto created = spdlog::stderr_logger_mt("api");
    created->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
    return created;
  }();
  return logger;
}

std::string errnoText(int err = errno) { return std::strerror(err); }

std::string sslErrors() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown TLS error" : text;
}

// Quotes a value for `key="value"` log messages.
std::string logQuoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n') ? ' ' : c;
  }
  return out + "\"";
}

// "prefix-" + 17 random hex digits, as AWS's resource ids.
std::string newId(std::string_view prefix) {
  unsigned char bytes[9];
  size_t done = 0;
  while (done < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + done, sizeof bytes - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen after boot; the zero bytes left still form a valid id
    }
    done += static_cast<size_t>(n);
  }
  std::string id(prefix);
  id += '-';
  for (unsigned char b : bytes) id += fmt::format("{:02x}", b);
  id.resize(prefix.size() + 1 + 17);
  return id;
}

std::string addressText(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = {0};
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(in->sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
  }
  return "unknown";
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

struct Connection {
  int fd = -1;
  uint64_t id = 0;
  std::unique_ptr<SSL, SslFree> ssl;  // TLS connections only
  bool handshaking = false;
  bool ssl_wants_write = false;  // the handshake or a read needs the socket writable
  std::string in;
  size_t scanned = 0;  // bytes of `in` known to hold no '\n'
  std::string out;
  Clock::time_point deadline;
  Principal principal;
  bool closing = false;  // flush `out`, then close; read no more
  bool dead = false;     // close now
};

// What handling a request came to, for the response, the audit record and the log.
struct Handled {
  std::optional<Json> result;
  std::optional<ApiError> error;
  std::string audit_result;  // "allowed" / "denied" / "failed"
};

}  // namespace

class Server::Impl {
 public:
  explicit Impl(ServerOptions options) : options_(std::move(options)) {}
  ~Impl();

  Result<void> start();
  int run();
  void stop();

 private:
  Result<void> listenUnix();
  Result<void> listenTls();
  void connectState();
  void dropState(const std::string& why);
  Result<void> writeIam();
  void catchUpAudit();

  void acceptUnix();
  void acceptTls();
  void addConnection(int fd, std::unique_ptr<SSL, SslFree> ssl, Principal principal);
  void continueHandshake(Connection& c);
  void readFrom(Connection& c);
  void writeTo(Connection& c);
  bool handleOneLine(Connection& c);
  void closeConnection(int fd);

  std::string processLine(const Principal& principal, std::string_view line);
  Handled execute(const Principal& principal, const Request& request, const ActionSpec& spec);
  Result<const model::Policy*> currentPolicy();
  int64_t nextSequence();
  state::AuditRecord makeRecord(const Principal& principal, const std::string& action,
                                const Json& parameters, const std::string& result,
                                const std::optional<ApiError>& error, int64_t generation);
  // Commits `record` alone; false when it could not be written (the store may be gone).
  bool commitAuditOnly(const state::AuditRecord& record);
  void appendAudit(const state::AuditRecord& record);
  // Records a request that never reached an action (malformed, unknown action); false when
  // the database could not be written.
  bool recordAlone(const Principal& principal, const std::string& action, const Json& parameters,
                   const ApiError& error);
  // After a failed database call: is the connection still there?
  bool stateAlive(const Error& error);
  ApiError unavailable() const;

  ServerOptions options_;
  IamConfig iam_;
  std::optional<AuditLog> audit_;
  std::unique_ptr<SSL_CTX, SslCtxFree> ssl_ctx_;
  int unix_fd_ = -1;
  ino_t unix_inode_ = 0;
  int tls_fd_ = -1;
  int signal_fd_ = -1;
  int stop_fd_ = -1;
  std::map<int, Connection> connections_;
  uint64_t next_connection_id_ = 1;

  std::unique_ptr<state::StateStore> store_;
  Clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_ = kReconnectMin;
  std::string last_state_error_;

  std::optional<model::Policy> policy_;
  state::PolicyDecoder decoder_;  // after another writer's commit, decodes only what it changed
  int64_t policy_generation_ = -1;
  int64_t max_sequence_ = 0;
  bool sequence_stale_ = true;
};

Server::Impl::~Impl() {
  for (auto& [fd, c] : connections_) {
    c.ssl.reset();
    ::close(fd);
  }
  if (unix_fd_ >= 0) {
    ::close(unix_fd_);
    // Only our own socket: a newer server may have replaced the file.
    struct stat st {};
    if (::stat(options_.socket_path.c_str(), &st) == 0 && st.st_ino == unix_inode_) {
      ::unlink(options_.socket_path.c_str());
    }
  }
  if (tls_fd_ >= 0) ::close(tls_fd_);
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Result<void> Server::Impl::start() {
  auto iam = IamConfig::load(options_.iam_dir);
  if (!iam) {
    return makeError("IAM configuration " + options_.iam_dir.string() + ": " +
                     iam.error().message);
  }
  iam_ = std::move(*iam);
  auto audit = AuditLog::open(options_.audit_log, options_.audit_fsync);
  if (!audit) {
    return tl::unexpected(audit.error());
  }
  audit_.emplace(std::move(*audit));
  stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    return makeError("eventfd: " + errnoText());
  }
  if (auto r = listenUnix(); !r) return r;
  if (!options_.tls_listen.empty()) {
    if (auto r = listenTls(); !r) return r;
  }
  log()->info("listening socket={} tls={} iam={} policies={} bindings={} audit_log={}",
              options_.socket_path.string(),
              options_.tls_listen.empty() ? "off" : options_.tls_listen, options_.iam_dir.string(),
              iam_.policies().size(), iam_.bindings().size(), options_.audit_log.string());
  connectState();
  return {};
}

Result<void> Server::Impl::listenUnix() {
  const auto& path = options_.socket_path;
  const std::string where = "socket " + path.string();
  std::optional<gid_t> group;
  if (!options_.socket_group.empty()) {
    std::vector<char> buffer(16384);
    struct group entry {};
    struct group* found = nullptr;
    const int rc = ::getgrnam_r(options_.socket_group.c_str(), &entry, buffer.data(),
                                buffer.size(), &found);
    if (rc != 0 || found == nullptr) {
      return makeError(where + ": --socket-group '" + options_.socket_group +
                       "': no such group");
    }
    group = found->gr_gid;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof address.sun_path) {
    return makeError(where + ": path too long for a Unix socket");
  }
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  if (path.has_parent_path()) {
    std::error_code ec;
    if (!std::filesystem::exists(path.parent_path(), ec)) {
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) return makeError(where + ": create directory: " + ec.message());
      ::chmod(path.parent_path().c_str(), 0755);
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return makeError(where + ": exists and is not a socket");
    }
    // A socket someone answers on belongs to a running server; one nobody answers on is left
    // over from a crash and is replaced.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&address),
                                              sizeof address) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      return makeError(where + ": another vpcguard-apid is running (it accepts connections)");
    }
    if (::unlink(path.c_str()) != 0) {
      return makeError(where + ": remove stale socket: " + errnoText());
    }
  }
  // Bound, restricted and listening under a staging name, then renamed into place: whoever sees
  // the socket file can connect at once (lab.sh waits for the file; a client that connected
  // between bind() and listen() was refused as if the server were gone).
  const std::string staging = path.string() + ".new";
  sockaddr_un staging_address{};
  staging_address.sun_family = AF_UNIX;
  if (staging.size() >= sizeof staging_address.sun_path) {
    return makeError(where + ": path too long for a Unix socket");
  }
  std::strncpy(staging_address.sun_path, staging.c_str(), sizeof staging_address.sun_path - 1);
  ::unlink(staging.c_str());  // left by a server killed at this very point; no error if absent
  unix_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (unix_fd_ < 0) return makeError(where + ": socket: " + errnoText());
  if (::bind(unix_fd_, reinterpret_cast<sockaddr*>(&staging_address), sizeof staging_address) !=
      0) {
    return makeError(where + ": bind " + staging + ": " + errnoText());
  }
  // Connecting needs write permission on the socket: owner and group only.
  if (::chmod(staging.c_str(), 0660) != 0) {
    ::unlink(staging.c_str());
    return makeError(where + ": chmod: " + errnoText());
  }
  if (group && ::chown(staging.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    ::unlink(staging.c_str());
    return makeError(where + ": chown to group " + options_.socket_group + ": " + errnoText());
  }
  if (::listen(unix_fd_, 128) != 0) {
    ::unlink(staging.c_str());
    return makeError(where + ": listen: " + errnoText());
  }
  if (::rename(staging.c_str(), path.c_str()) != 0) {
    ::unlink(staging.c_str());
    return makeError(where + ": rename " + staging + ": " + errnoText());
  }
  if (::lstat(path.c_str(), &st) == 0) unix_inode_ = st.st_ino;
  return {};
}

Result<void> Server::Impl::listenTls() {
  const std::string where = "TLS listener " + options_.tls_listen;
  if (options_.tls_cert.empty() || options_.tls_key.empty() || options_.tls_ca.empty()) {
    return makeError(where + ": --tls-cert, --tls-key and --tls-ca are all required");
  }
  ssl_ctx_.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* ctx = ssl_ctx_.get();
  if (ctx == nullptr) return makeError(where + ": " + sslErrors());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, options_.tls_cert.c_str()) != 1) {
    return makeError(where + ": certificate " + options_.tls_cert.string() + ": " + sslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options_.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return makeError(where + ": key " + options_.tls_key.string() + ": " + sslErrors());
  }
  if (SSL_CTX_load_verify_locations(ctx, options_.tls_ca.c_str(), nullptr) != 1) {
    return makeError(where + ": CA " + options_.tls_ca.string() + ": " + sslErrors());
  }
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options_.tls_ca.c_str())) {
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  // The certificate is the identity: no certificate, no connection.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);

  std::string host;
  std::string port;
  const std::string& spec = options_.tls_listen;
  if (!spec.empty() && spec.front() == '[') {
    const auto close = spec.find(']');
    if (close == std::string::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      return makeError(where + ": expected HOST:PORT or [IPV6]:PORT");
    }
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    const auto colon = spec.rfind(':');
    if (colon == std::string::npos) return makeError(where + ": expected HOST:PORT");
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints,
                                   &found);
      rc != 0) {
    return makeError(where + ": " + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            a->ai_protocol);
    if (fd < 0) {
      last_error = errnoText();
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      last_error = errnoText();
      ::close(fd);
      continue;
    }
    tls_fd_ = fd;
    break;
  }
  ::freeaddrinfo(found);
  if (tls_fd_ < 0) return makeError(where + ": " + last_error);
  return {};
}

Result<void> Server::Impl::writeIam() {
  // The database shows who may do what: the tables are replaced by the IAM directory's content
  // in one transaction.
  Json operations = Json::array();
  operations.push_back({{"op", "delete"}, {"table", "IAM_Binding"}, {"where", Json::array()}});
  operations.push_back({{"op", "delete"}, {"table", "IAM_Policy"}, {"where", Json::array()}});
  for (const auto& policy : iam_.policies()) {
    operations.push_back(
        {{"op", "insert"},
         {"table", "IAM_Policy"},
         {"row",
          {{"name", policy.name},
           {"document", policy.document.dump(-1, ' ', false, Json::error_handler_t::replace)}}}});
  }
  for (const auto& binding : iam_.bindings()) {
    Json names = Json::array();
    for (const auto& p : binding.policies) names.push_back(p);
    operations.push_back({{"op", "insert"},
                          {"table", "IAM_Binding"},
                          {"row",
                           {{"principal", binding.principal},
                            {"policies", Json::array({"set", std::move(names)})}}}});
  }
  auto r = store_->transact(operations);
  if (!r) return tl::unexpected(r.error().withContext("write IAM tables"));
  return {};
}

void Server::Impl::catchUpAudit() {
  if (!audit_ || !store_) return;
  const auto records = state::auditRecords(store_->replica());
  const int64_t database_last = records.empty() ? 0 : records.back().sequence;
  if (audit_->lastSequence() > database_last) {
    log()->warn("audit_log_ahead file={} file_last={} database_last={} (a different or reset "
                "state database; new records continue from the database's sequence)",
                audit_->path().string(), audit_->lastSequence(), database_last);
  }
  auto written = audit_->appendNewer(records);
  if (!written) {
    log()->error("audit_log_write_failed error={}", logQuoted(written.error().message));
  } else if (*written > 0) {
    log()->info("audit_log_caught_up file={} appended={} last={}", audit_->path().string(),
                *written, audit_->lastSequence());
  }
}

void Server::Impl::connectState() {
  ovs::OvsdbOptions options;
  options.request_timeout = options_.request_timeout;
  options.connect_timeout = std::min<std::chrono::milliseconds>(options_.request_timeout, 5s);
  auto opened = state::StateStore::open(options_.state, options);
  if (!opened) {
    if (opened.error().message != last_state_error_) {
      log()->warn("state_unreachable target={} error={} retry_ms={}", options_.state,
                  logQuoted(opened.error().message), backoff_.count());
      last_state_error_ = opened.error().message;
    }
    next_connect_ = Clock::now() + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kReconnectMax);
    return;
  }
  store_ = std::move(*opened);
  policy_.reset();
  policy_generation_ = -1;
  sequence_stale_ = true;
  if (auto r = writeIam(); !r) {
    dropState(r.error().message);
    return;
  }
  catchUpAudit();
  backoff_ = kReconnectMin;
  last_state_error_.clear();
  log()->info("state_connected target={} generation={}", options_.state, store_->generation());
}

void Server::Impl::dropState(const std::string& why) {
  log()->warn("state_lost target={} error={} retry_ms={}", options_.state, logQuoted(why),
              backoff_.count());
  store_.reset();
  policy_.reset();
  policy_generation_ = -1;
  next_connect_ = Clock::now() + backoff_;
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kReconnectMax);
}

bool Server::Impl::stateAlive(const Error& error) {
  sequence_stale_ = true;
  if (!store_) return false;
  // Briefly waits for updates: after a collision on the audit sequence, the other writer's
  // record is on its way, and the next attempt must see it.
  if (auto polled = store_->poll(20ms); !polled) {
    dropState(error.message + "; " + polled.error().message);
    return false;
  }
  return true;
}

ApiError Server::Impl::unavailable() const {
  return ApiError{"ServiceUnavailable", "The state database (" + options_.state +
                                            ") is unreachable; retry later"};
}

Result<const model::Policy*> Server::Impl::currentPolicy() {
  const int64_t generation = store_->generation();
  if (!policy_ || policy_generation_ != generation) {
    auto policy = decoder_.decode(store_->replica(), store_->rowVersions());
    if (!policy) {
      policy_.reset();
      return tl::unexpected(policy.error());
    }
    policy_ = std::move(*policy);
    policy_generation_ = generation;
  }
  return &*policy_;
}

int64_t Server::Impl::nextSequence() {
  if (sequence_stale_) {
    const auto records = state::auditRecords(store_->replica());
    max_sequence_ = records.empty() ? 0 : records.back().sequence;
    sequence_stale_ = false;
  }
  return max_sequence_ + 1;
}

state::AuditRecord Server::Impl::makeRecord(const Principal& principal, const std::string& action,
                                            const Json& parameters, const std::string& result,
                                            const std::optional<ApiError>& error,
                                            int64_t generation) {
  state::AuditRecord record;
  record.sequence = nextSequence();
  record.event_time = auditNow();
  record.principal = principal.display;
  record.source = principal.source;
  record.action = action;
  record.request_parameters =
      auditParameters(action.rfind("ec2:", 0) == 0 ? action.substr(4) : action, parameters)
          .dump(-1, ' ', false, Json::error_handler_t::replace);
  record.result = result;
  if (error) {
    record.error_code = error->code;
    record.error_message = error->message;
  }
  record.generation = generation;
  return record;
}

bool Server::Impl::commitAuditOnly(const state::AuditRecord& record) {
  auto r = store_->transact(Json::array({state::auditInsertOperation(record)}));
  if (!r) {
    log()->debug("audit_insert_failed sequence={} error={}", record.sequence,
                 logQuoted(r.error().message));
    return false;
  }
  max_sequence_ = std::max(max_sequence_, record.sequence);
  return true;
}

void Server::Impl::appendAudit(const state::AuditRecord& record) {
  if (!audit_) return;
  // A record at or below the file's last one comes from a database that was reset: it is
  // written all the same (the file then restarts from the database's numbering).
  if (store_ && record.sequence > audit_->lastSequence() + 1) {
    // Records of other writers (or of a failed earlier append) come first, in sequence order.
    auto records = state::auditRecords(store_->replica());
    std::erase_if(records, [&](const auto& r) { return r.sequence >= record.sequence; });
    if (auto w = audit_->appendNewer(records); !w) {
      log()->error("audit_log_write_failed error={}", logQuoted(w.error().message));
      return;
    }
  }
  if (auto w = audit_->append(record); !w) {
    log()->error("audit_log_write_failed sequence={} error={} (written at the next start from "
                 "the database)",
                 record.sequence, logQuoted(w.error().message));
  }
}

bool Server::Impl::recordAlone(const Principal& principal, const std::string& action,
                               const Json& parameters, const ApiError& error) {
  for (int attempt = 0; attempt < kMaxAttempts && store_; ++attempt) {
    const auto record =
        makeRecord(principal, action, parameters, "failed", error, store_->generation());
    if (commitAuditOnly(record)) {
      appendAudit(record);
      return true;
    }
    if (!stateAlive(Error{"audit insert failed"})) return false;
  }
  return false;
}

Handled Server::Impl::execute(const Principal& principal, const Request& request,
                              const ActionSpec& spec) {
  const std::string iam_action = "ec2:" + request.action;
  ActionContext context;
  context.new_id = [](std::string_view prefix) { return newId(prefix); };
  std::string last_error;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (!store_) return Handled{std::nullopt, unavailable(), ""};
    const int64_t generation = store_->generation();
    Handled handled;
    std::optional<model::Policy> desired;
    auto policy = currentPolicy();
    if (!policy) {
      handled = {std::nullopt,
                 ApiError{"InternalError", "The state database holds no usable policy: " +
                                               policy.error().message},
                 "failed"};
    } else if (auto needed = spec.permissions(**policy, request.parameters); !needed) {
      // Malformed parameters or a resource that does not exist: said only to callers who may do
      // the action somewhere, so that others cannot probe which ids exist.
      const std::string action = "ec2:" + request.action;
      if (iam_.mayAttempt(principal, action)) {
        handled = {std::nullopt, needed.error(), "failed"};
      } else {
        handled = {std::nullopt,
                   ApiError{"UnauthorizedOperation",
                            fmt::format("You are not authorized to perform: {} ({}: no policy "
                                        "attached to it allows this action)",
                                        action, principal.display)},
                   "denied"};
      }
    } else if (auto decision = iam_.evaluate(principal, *needed); !decision.allowed) {
      handled = {std::nullopt,
                 ApiError{"UnauthorizedOperation",
                          fmt::format("You are not authorized to perform: {} on resource: {} "
                                      "({}: {})",
                                      decision.refused.action, decision.refused.resource,
                                      principal.display, decision.reason)},
                 "denied"};
    } else if (auto outcome = spec.run(**policy, request.parameters, context); !outcome) {
      handled = {std::nullopt, outcome.error(), "failed"};
    } else if (!outcome->policy) {
      handled = {std::move(outcome->result), std::nullopt, "allowed"};
    } else {
      // The same rules as a config file, with the same messages.
      const auto diagnostics = validatePolicy(*outcome->policy);
      if (!diagnostics.empty()) {
        std::string message;
        for (const auto& d : diagnostics) {
          if (!message.empty()) message += "; ";
          message += formatDiagnostic(d);
        }
        handled = {std::nullopt, ApiError{"InvalidParameterValue", message}, "failed"};
      } else if (auto resolved = resolveDefaults(std::move(*outcome->policy)); !resolved) {
        handled = {std::nullopt, ApiError{"InvalidParameterValue", resolved.error().message},
                   "failed"};
      } else {
        desired = std::move(*resolved);
        handled = {std::move(outcome->result), std::nullopt, "allowed"};
      }
    }

    if (!desired) {
      // Reads, refusals and failures: the record alone.
      const auto record = makeRecord(principal, iam_action, request.parameters,
                                     handled.audit_result, handled.error, generation);
      if (commitAuditOnly(record)) {
        appendAudit(record);
        return handled;
      }
      last_error = "audit insert failed";
      if (!store_ || !stateAlive(Error{last_error})) {
        return Handled{std::nullopt, unavailable(), ""};
      }
      continue;
    }

    // A change: its record in the same transaction, guarded by the generation it was computed
    // from.
    const auto record = makeRecord(principal, iam_action, request.parameters, "allowed",
                                   std::nullopt, generation + 1);
    // `policy` is what the replica holds: nothing polled the store since it was read.
    auto committed = store_->commit(
        *desired, Json::array({state::auditInsertOperation(record)}),
        store_->generation() == generation && policy ? *policy : nullptr);
    if (!committed) {
      last_error = committed.error().message;
      log()->debug("commit_failed attempt={} error={}", attempt + 1, logQuoted(last_error));
      if (!stateAlive(committed.error())) {
        return Handled{std::nullopt, unavailable(), ""};
      }
      continue;
    }
    if (committed->status == state::StateStore::CommitStatus::kConflict) {
      // Someone else committed first: run again on their result.
      log()->debug("commit_conflict attempt={} action={} generation={}", attempt + 1,
                   request.action, generation);
      sequence_stale_ = true;
      last_error = "the state changed during the request";
      if (auto polled = store_->poll(50ms); !polled) {
        dropState(polled.error().message);
        return Handled{std::nullopt, unavailable(), ""};
      }
      continue;
    }
    max_sequence_ = std::max(max_sequence_, record.sequence);
    if (store_->generation() == committed->generation) {
      // What we committed is the state now (the replica holds its echo): the next request
      // starts from it instead of decoding every row again.
      policy_ = state::asCommitted(std::move(*desired));
      policy_generation_ = committed->generation;
    }
    appendAudit(record);
    log()->info("state_changed action={} principal={} generation={}", request.action,
                logQuoted(principal.display), committed->generation);
    return handled;
  }
  log()->error("request_abandoned action={} attempts={} error={}", request.action, kMaxAttempts,
               logQuoted(last_error));
  return Handled{std::nullopt,
                 ApiError{"ServiceUnavailable",
                          "The request could not be committed after " +
                              std::to_string(kMaxAttempts) + " attempts (" + last_error +
                              "); retry later"},
                 ""};
}

std::string Server::Impl::processLine(const Principal& principal, std::string_view line) {
  const auto started = Clock::now();
  auto decoded = decodeRequest(line);
  std::string request_id;
  std::string action;
  Handled handled;
  if (!decoded) {
    handled = {std::nullopt, decoded.error(), "failed"};
    // The id of a request that is JSON but otherwise malformed is still echoed.
    const Json raw = Json::parse(line, nullptr, false);
    if (raw.is_object() && raw.contains("RequestId") && raw["RequestId"].is_string()) {
      request_id = raw["RequestId"].get<std::string>();
    }
    if (raw.is_object() && raw.contains("Action") && raw["Action"].is_string()) {
      action = raw["Action"].get<std::string>();
      // Not a valid action name (that is why decoding failed): keep it short and on one line
      // in the log and the audit record.
      if (action.size() > 64) action = action.substr(0, 64);
      for (char& c : action) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '?';
      }
    }
    // Recorded too: probing with garbage is worth knowing about. Without the database the
    // answer is still the decode error (retrying would not help), only unrecorded.
    if (!store_ || !recordAlone(principal, action.empty() ? "" : "ec2:" + action, nullptr,
                                *handled.error)) {
      handled.audit_result.clear();
    }
  } else {
    request_id = decoded->request_id;
    action = decoded->action;
    const ActionSpec* spec = findAction(decoded->action);
    if (!store_) {
      handled = {std::nullopt, unavailable(), ""};
    } else if (spec == nullptr) {
      handled = {std::nullopt,
                 ApiError{"InvalidAction", "The action " + decoded->action +
                                               " is not valid for this web service."},
                 "failed"};
      if (!recordAlone(principal, "ec2:" + decoded->action, decoded->parameters,
                       *handled.error)) {
        handled = {std::nullopt, unavailable(), ""};
      }
    } else {
      handled = execute(principal, *decoded, *spec);
    }
  }
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  if (handled.error) {
    const bool notable = handled.audit_result == "denied" || handled.audit_result.empty();
    log()->log(notable ? spdlog::level::info : spdlog::level::debug,
               "request action={} principal={} source={} result={} error_code={} us={}",
               action.empty() ? "-" : action, logQuoted(principal.display), principal.source,
               handled.audit_result.empty() ? "unrecorded" : handled.audit_result,
               handled.error->code, elapsed_us);
    return encodeError(request_id, *handled.error);
  }
  log()->debug("request action={} principal={} source={} result=allowed us={}", action,
               logQuoted(principal.display), principal.source, elapsed_us);
  return encodeResult(request_id, handled.result ? *handled.result : Json::object());
}

void Server::Impl::addConnection(int fd, std::unique_ptr<SSL, SslFree> ssl, Principal principal) {
  if (connections_.size() >= options_.max_connections) {
    // Told, not silently queued: the client sees why.
    const std::string line = encodeError(
        "", ApiError{"ServiceUnavailable",
                     "Too many connections (" + std::to_string(options_.max_connections) +
                         "); retry later"});
    if (!ssl) {
      [[maybe_unused]] auto n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ::close(fd);
    log()->warn("connection_refused reason=too_many_connections max={}",
                options_.max_connections);
    return;
  }
  Connection& c = connections_[fd];
  c.fd = fd;
  c.id = next_connection_id_++;
  c.ssl = std::move(ssl);
  c.handshaking = c.ssl != nullptr;
  c.principal = std::move(principal);
  c.deadline = Clock::now() + options_.request_timeout;
  log()->debug("connection_opened id={} source={} principal={}", c.id, c.principal.source,
               logQuoted(c.principal.display));
}

void Server::Impl::acceptUnix() {
  for (;;) {
    const int fd = ::accept4(unix_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log()->warn("accept_failed listener=unix error={}", logQuoted(errnoText()));
      }
      return;
    }
    ucred cred{};
    socklen_t length = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
      log()->warn("peer_credentials_failed error={}", logQuoted(errnoText()));
      ::close(fd);
      continue;
    }
    std::vector<gid_t> groups(64);
    socklen_t groups_length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &groups_length) != 0) {
      if (errno == ERANGE) {
        groups.resize(groups_length / sizeof(gid_t) + 1);
        groups_length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &groups_length) != 0) {
          groups_length = 0;
        }
      } else {
        groups_length = 0;  // an old kernel: the primary group only
      }
    }
    groups.resize(groups_length / sizeof(gid_t));
    addConnection(fd, nullptr, unixPrincipal(cred.uid, cred.gid, groups, cred.pid));
  }
}

void Server::Impl::acceptTls() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    const int fd = ::accept4(tls_fd_, reinterpret_cast<sockaddr*>(&peer), &length,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log()->warn("accept_failed listener=tls error={}", logQuoted(errnoText()));
      }
      return;
    }
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ssl_ctx_.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
      log()->warn("tls_setup_failed error={}", logQuoted(sslErrors()));
      ::close(fd);
      continue;
    }
    SSL_set_accept_state(ssl.get());
    Principal principal;
    principal.source = "tls:" + addressText(peer);
    addConnection(fd, std::move(ssl), std::move(principal));
  }
}

void Server::Impl::continueHandshake(Connection& c) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(c.ssl.get());
  c.ssl_wants_write = false;
  if (rc != 1) {
    const int err = SSL_get_error(c.ssl.get(), rc);
    if (err == SSL_ERROR_WANT_READ) return;
    if (err == SSL_ERROR_WANT_WRITE) {
      c.ssl_wants_write = true;
      return;
    }
    const long verify = SSL_get_verify_result(c.ssl.get());
    log()->info("tls_handshake_failed source={} error={}{}", c.principal.source,
                logQuoted(err == SSL_ERROR_SYSCALL ? errnoText() : sslErrors()),
                verify != X509_V_OK
                    ? fmt::format(" verify={}", logQuoted(X509_verify_cert_error_string(verify)))
                    : "");
    c.dead = true;
    return;
  }
  X509* cert = SSL_get1_peer_certificate(c.ssl.get());
  if (cert == nullptr || SSL_get_verify_result(c.ssl.get()) != X509_V_OK) {
    if (cert != nullptr) X509_free(cert);
    log()->info("tls_peer_rejected source={} reason=\"no verified client certificate\"",
                c.principal.source);
    c.dead = true;
    return;
  }
  std::string subject;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    subject.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  X509_free(cert);
  c.principal.display = "cert:" + subject;
  c.principal.names = {c.principal.display};
  c.handshaking = false;
  log()->debug("tls_peer id={} source={} principal={}", c.id, c.principal.source,
               logQuoted(c.principal.display));
  readFrom(c);  // the first request may have come with the handshake's last flight
}

void Server::Impl::readFrom(Connection& c) {
  char buffer[65536];
  for (;;) {
    if (c.in.size() > kMaxRequestBytes + sizeof buffer) return;  // handleOneLine refuses it
    ssize_t n;
    if (c.ssl) {
      ERR_clear_error();
      const int rc = SSL_read(c.ssl.get(), buffer, static_cast<int>(sizeof buffer));
      if (rc <= 0) {
        const int err = SSL_get_error(c.ssl.get(), rc);
        if (err == SSL_ERROR_WANT_READ) return;
        if (err == SSL_ERROR_WANT_WRITE) {
          c.ssl_wants_write = true;
          return;
        }
        if (err != SSL_ERROR_ZERO_RETURN) {
          log()->debug("tls_read_failed id={} error={}", c.id, logQuoted(sslErrors()));
        }
        // The peer is gone: answer what it sent completely, then close.
        c.closing = true;
        return;
      }
      n = rc;
    } else {
      n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        c.dead = true;
        return;
      }
      if (n == 0) {
        c.closing = true;
        return;
      }
    }
    c.in.append(buffer, static_cast<size_t>(n));
  }
}

void Server::Impl::writeTo(Connection& c) {
  while (!c.out.empty()) {
    ssize_t n;
    if (c.ssl) {
      ERR_clear_error();
      const int rc = SSL_write(c.ssl.get(), c.out.data(),
                               static_cast<int>(std::min<size_t>(c.out.size(), 1u << 20)));
      if (rc <= 0) {
        const int err = SSL_get_error(c.ssl.get(), rc);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return;
        c.dead = true;
        return;
      }
      n = rc;
    } else {
      n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        c.dead = true;
        return;
      }
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
}

// Handles the first complete line of `c`, if any. True when one was handled.
bool Server::Impl::handleOneLine(Connection& c) {
  // A client that does not read its answers gets no more until it does.
  if (c.dead || c.handshaking || c.out.size() >= kMaxPendingOutput) return false;
  const auto newline = c.in.find('\n', c.scanned);
  if (newline == std::string::npos) {
    c.scanned = c.in.size();
    if (c.in.size() > kMaxRequestBytes) {
      c.out += encodeError("", ApiError{"MalformedRequest",
                                        "Request line longer than " +
                                            std::to_string(kMaxRequestBytes) + " bytes"});
      c.in.clear();
      c.scanned = 0;
      c.closing = true;
      log()->info("request_too_long id={} source={}", c.id, c.principal.source);
    }
    return false;
  }
  std::string_view line(c.in.data(), newline);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const bool blank = line.find_first_not_of(" \t") == std::string_view::npos;
  if (!blank) {
    c.out += processLine(c.principal, line);
  }
  c.in.erase(0, newline + 1);
  c.scanned = 0;
  c.deadline = Clock::now() + options_.request_timeout;
  return !blank;
}

void Server::Impl::closeConnection(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  log()->debug("connection_closed id={} source={}", it->second.id, it->second.principal.source);
  if (it->second.ssl && !it->second.handshaking && !it->second.dead) {
    SSL_shutdown(it->second.ssl.get());
  }
  it->second.ssl.reset();
  ::close(fd);
  connections_.erase(it);
}

int Server::Impl::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // SIGHUP (a `reload`, logrotate's postrotate) must not kill the API: it is read and ignored.
  // IAM and the audit log path are read at start; restart the server to change them.
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal_fd_ = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    log()->error("signalfd_failed error={}", logQuoted(errnoText()));
    return kExitStartup;
  }
  // A client that hangs up while we answer must not kill the server (OpenSSL writes with write()).
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<pollfd> fds;
  std::vector<int> connection_of;  // fds[i] -> connection fd (or -1)
  for (;;) {
    const auto now = Clock::now();
    fds.clear();
    connection_of.clear();
    auto add = [&](int fd, short events, int conn) {
      fds.push_back(pollfd{fd, events, 0});
      connection_of.push_back(conn);
    };
    add(signal_fd_, POLLIN, -1);
    add(stop_fd_, POLLIN, -1);
    add(unix_fd_, POLLIN, -1);
    if (tls_fd_ >= 0) add(tls_fd_, POLLIN, -1);
    const int store_fd = store_ ? store_->fd() : -1;
    if (store_fd >= 0) add(store_fd, POLLIN, -1);
    auto timeout = std::chrono::milliseconds(1000);
    if (!store_) {
      timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::max(next_connect_ - now, Clock::duration(0))));
    }
    for (auto& [fd, c] : connections_) {
      short events = 0;
      if (c.handshaking) {
        events = c.ssl_wants_write ? POLLOUT : POLLIN;
      } else {
        if (!c.closing && c.out.size() < kMaxPendingOutput) events |= POLLIN;
        if (!c.out.empty() || c.ssl_wants_write) events |= POLLOUT;
        const bool ready = c.out.size() < kMaxPendingOutput &&
                           (c.in.find('\n', c.scanned) != std::string::npos ||
                            (c.ssl && !c.closing && SSL_pending(c.ssl.get()) > 0));
        if (ready) timeout = 0ms;
      }
      add(fd, events, fd);
      timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::max(c.deadline - now, Clock::duration(0))) +
                                      1ms);
    }
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (n < 0 && errno != EINTR) {
      log()->error("poll_failed error={}", logQuoted(errnoText()));
      return kExitStartup;
    }
    for (size_t i = 0; n > 0 && i < fds.size(); ++i) {
      const short revents = fds[i].revents;
      if (revents == 0) continue;
      const int fd = fds[i].fd;
      if (fd == signal_fd_) {
        signalfd_siginfo info{};
        if (::read(signal_fd_, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGHUP) {
            log()->info("sighup_ignored (IAM and the audit log are read at start: restart to "
                        "change them)");
            continue;
          }
          log()->info("stopping signal={}", strsignal(static_cast<int>(info.ssi_signo)));
          return kExitOk;
        }
      } else if (fd == stop_fd_) {
        log()->info("stopping reason=stop");
        return kExitOk;
      } else if (fd == unix_fd_) {
        acceptUnix();
      } else if (fd == tls_fd_) {
        acceptTls();
      } else if (connection_of[i] < 0 && fd == store_fd) {
        if (store_) {
          // Another writer's audit records are not looked for here (that would be a scan of
          // the whole table per update): an insert that collides on the sequence index fails
          // and makes nextSequence() rescan.
          if (auto changed = store_->poll(0ms); !changed) {
            dropState(changed.error().message);
          }
        }
      } else if (connection_of[i] >= 0) {
        auto it = connections_.find(connection_of[i]);
        if (it == connections_.end()) continue;
        Connection& c = it->second;
        if (c.handshaking) {
          continueHandshake(c);
          continue;
        }
        // A TLS read that needed the socket writable (a key update) is retried once it is.
        const bool retry_read = c.ssl_wants_write && (revents & POLLOUT) != 0;
        if ((revents & POLLOUT) != 0) {
          c.ssl_wants_write = false;
          writeTo(c);
        }
        if (retry_read || (revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          readFrom(c);
        }
      }
    }
    // One request per connection per round, so one busy client cannot starve the others.
    for (auto& [fd, c] : connections_) {
      if (c.ssl && !c.handshaking && !c.closing && SSL_pending(c.ssl.get()) > 0) {
        readFrom(c);
      }
      if (handleOneLine(c)) {
        writeTo(c);
      }
    }
    const auto after = Clock::now();
    std::vector<int> finished;
    for (auto& [fd, c] : connections_) {
      const bool pending = c.in.find('\n', c.scanned) != std::string::npos;
      const bool blocked = c.out.size() >= kMaxPendingOutput;
      if (!c.dead && after >= c.deadline && (!pending || blocked)) {
        if (c.closing || c.handshaking || blocked) {
          c.dead = true;  // a peer that neither finishes its handshake nor reads its answers
        } else {
          log()->info("request_timeout id={} source={} principal={} buffered_bytes={}", c.id,
                      c.principal.source, logQuoted(c.principal.display), c.in.size());
          c.out += encodeError("", ApiError{"RequestTimeout",
                                            "No complete request within " +
                                                std::to_string(options_.request_timeout.count()) +
                                                " ms"});
          c.closing = true;
          c.deadline = after + options_.request_timeout;
          writeTo(c);
        }
      }
      if (c.dead || (c.closing && !pending && c.out.empty())) finished.push_back(fd);
    }
    for (int fd : finished) closeConnection(fd);
    if (!store_ && Clock::now() >= next_connect_) {
      connectState();
    }
  }
}

void Server::Impl::stop() {
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
  }
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Server::~Server() = default;
Result<void> Server::start() { return impl_->start(); }
int Server::run() { return impl_->run(); }
void Server::stop() { impl_->stop(); }

}  // namespace vpcguard::api
