#include "ovs-plugin/ovsdb_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>

#include "ovs-plugin/json_stream.h"

namespace vpcguard::ovs {
namespace {

using Clock = std::chrono::steady_clock;

std::string errnoText(int err) { return std::strerror(err); }

int msLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on `fd` until `deadline`; the revents, 0 on timeout, -1 on error.
int waitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd pfd{fd, events, 0};
    int n = ::poll(&pfd, 1, msLeft(deadline));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n;
    }
    return pfd.revents;
  }
}

Result<int> connectUnix(const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return makeError("socket path too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return makeError("socket: " + errnoText(errno));
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
      return fd;
    }
    const int err = errno;
    ::close(fd);
    // A full listen backlog is transient; anything else (no such file, refused) is an answer.
    if (err != EAGAIN || msLeft(deadline) == 0) {
      return makeError(errnoText(err));
    }
    (void)waitFd(-1, 0, std::min(deadline, Clock::now() + std::chrono::milliseconds(10)));
  }
}

Result<int> connectTcp(const std::string& host_port, Clock::time_point deadline) {
  std::string host;
  std::string port;
  if (!host_port.empty() && host_port[0] == '[') {
    const auto close = host_port.find(']');
    if (close == std::string::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':') {
      return makeError("expected [IPv6]:PORT");
    }
    host = host_port.substr(1, close - 1);
    port = host_port.substr(close + 2);
  } else {
    const auto colon = host_port.rfind(':');
    if (colon == std::string::npos) {
      return makeError("expected HOST:PORT");
    }
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return makeError(std::string("resolve: ") + ::gai_strerror(rc));
  }
  std::string last = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) {
      last = errnoText(errno);
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      ::freeaddrinfo(res);
      return fd;
    }
    if (errno != EINPROGRESS) {
      last = errnoText(errno);
      ::close(fd);
      continue;
    }
    const int ev = waitFd(fd, POLLOUT, deadline);
    int err = 0;
    socklen_t len = sizeof err;
    if (ev == 0) {
      last = "connection timed out";
    } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      ::freeaddrinfo(res);
      return fd;
    } else {
      last = errnoText(err != 0 ? err : errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return makeError(last);
}

// "operation 1 (insert into Bridge): constraint violation: <details>"
std::string describeOperationError(const Json& ops, size_t index, const Json& result) {
  std::string what = "operation " + std::to_string(index);
  if (index < ops.size() && ops[index].is_object()) {
    const Json& op = ops[index];
    std::string name = op.value("op", std::string("?"));
    if (op.contains("table") && op["table"].is_string()) {
      name += (name == "insert" ? " into " : " on ") + op["table"].get<std::string>();
    }
    what += " (" + name + ")";
  } else {
    what += " (commit)";
  }
  std::string msg = what + ": " + (result["error"].is_string() ? result["error"].get<std::string>()
                                                               : result["error"].dump());
  if (result.contains("details") && result["details"].is_string()) {
    msg += ": " + result["details"].get<std::string>();
  }
  return msg;
}

class JsonRpcOvsdbClient final : public OvsdbClient {
 public:
  JsonRpcOvsdbClient(int fd, std::string target, OvsdbOptions options)
      : fd_(fd), target_(std::move(target)), options_(options) {}
  ~JsonRpcOvsdbClient() override { closeSocket(); }
  JsonRpcOvsdbClient(const JsonRpcOvsdbClient&) = delete;
  JsonRpcOvsdbClient& operator=(const JsonRpcOvsdbClient&) = delete;

  Result<Json> transact(const std::string& db, const Json& operations) override {
    if (!operations.is_array()) {
      return makeError("transact: operations must be a JSON array");
    }
    Json params = Json::array({db});
    for (const auto& op : operations) {
      params.push_back(op);
    }
    auto reply = request("transact", std::move(params));
    if (!reply) {
      return tl::unexpected(reply.error().withContext("transact on " + db));
    }
    const Json& results = *reply;
    if (!results.is_array()) {
      return makeError("transact on " + db + ": result is not an array: " + results.dump());
    }
    // A failing operation carries "error"; the operations after it were not run (null). An
    // extra element past the operations is a failure at commit (e.g. a constraint violation).
    std::string errors;
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].is_object() && results[i].contains("error") && !results[i]["error"].is_null()) {
        errors += (errors.empty() ? "" : "; ") + describeOperationError(operations, i, results[i]);
      }
    }
    if (!errors.empty()) {
      return makeError("transaction on " + db + " failed: " + errors);
    }
    return results;
  }

  Result<Json> monitor(const std::string& db, const std::string& id,
                       const MonitorTables& tables) override {
    Json requests = Json::object();
    for (const auto& [table, columns] : tables) {
      Json req = Json::object();
      if (!columns.empty()) {
        req["columns"] = columns;
      }
      requests[table] = req;
    }
    auto reply = request("monitor", Json::array({db, id, requests}));
    if (!reply) {
      return tl::unexpected(reply.error().withContext("monitor " + id + " on " + db));
    }
    return std::move(*reply);
  }

  Result<void> monitorCancel(const std::string& id) override {
    auto reply = request("monitor_cancel", Json::array({id}));
    if (!reply) {
      return tl::unexpected(reply.error().withContext("monitor_cancel " + id));
    }
    return {};
  }

  Result<std::vector<std::string>> listDbs() override {
    auto reply = request("list_dbs", Json::array());
    if (!reply) {
      return tl::unexpected(reply.error());
    }
    std::vector<std::string> names;
    if (reply->is_array()) {
      for (const auto& n : *reply) {
        if (n.is_string()) {
          names.push_back(n.get<std::string>());
        }
      }
    }
    return names;
  }

  Result<std::vector<OvsdbUpdate>> poll(std::chrono::milliseconds timeout) override {
    if (connected()) {
      const auto wait = updates_.empty() ? timeout : std::chrono::milliseconds(0);
      readAvailable(Clock::now() + wait);
    }
    probe();
    if (updates_.empty() && !connected()) {
      return makeError(disconnectReason());
    }
    std::vector<OvsdbUpdate> out(std::make_move_iterator(updates_.begin()),
                                 std::make_move_iterator(updates_.end()));
    updates_.clear();
    return out;
  }

  std::chrono::milliseconds unanswered() const override {
    if (!connected() || probe_sent_ <= last_rx_) {
      return {};
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - probe_sent_);
  }

  int fd() const override { return fd_; }
  bool connected() const override { return fd_ >= 0; }
  std::string target() const override { return target_; }

 private:
  std::string disconnectReason() const {
    return "ovsdb " + target_ + ": disconnected (" + disconnect_reason_ + ")";
  }

  void closeSocket() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  void disconnect(const std::string& reason) {
    if (fd_ >= 0) {
      disconnect_reason_ = reason;
      closeSocket();
    }
  }

  // Sends one message. While a send is under way it may read (to keep the server from
  // blocking), and what it reads may need an answer (echo): such answers wait until the message
  // being written is complete, so two messages never interleave on the wire.
  Result<void> send(const Json& message) {
    std::string text = message.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (sending_) {
      deferred_.push_back(std::move(text));
      return {};
    }
    sending_ = true;
    auto r = sendText(text);
    while (r && !deferred_.empty()) {
      std::string next = std::move(deferred_.front());
      deferred_.pop_front();
      r = sendText(next);
    }
    deferred_.clear();
    sending_ = false;
    return r;
  }

  Result<void> sendText(const std::string& text) {
    const auto deadline = Clock::now() + options_.request_timeout;
    size_t sent = 0;
    while (sent < text.size()) {
      if (!connected()) {
        return makeError(disconnectReason());
      }
      ssize_t n = ::send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // The server may be busy writing to us: keep draining while waiting to write.
        const int ev = waitFd(fd_, POLLOUT | POLLIN, deadline);
        if (ev == 0) {
          disconnect("send timed out");
        } else if ((ev & POLLIN) != 0) {
          readAvailable(Clock::now());
        }
        continue;
      }
      disconnect("send: " + errnoText(errno));
    }
    return {};
  }

  // Reads whatever the socket has and handles each complete message. Waits (until `deadline`)
  // only while nothing has arrived yet: once bytes came in, the caller gets to look at them.
  void readAvailable(Clock::time_point deadline) {
    bool waited = false;
    while (connected()) {
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        auto messages = splitter_.feed(std::string_view(buf, static_cast<size_t>(n)));
        if (!messages) {
          disconnect(messages.error().message);
          return;
        }
        for (const auto& text : *messages) {
          handleMessage(text);
        }
        waited = true;  // drain what is there, but do not block again
        continue;
      }
      if (n == 0) {
        disconnect("connection closed by the server");
        return;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        disconnect("recv: " + errnoText(errno));
        return;
      }
      if (waited || msLeft(deadline) == 0) {
        return;
      }
      waited = true;
      const int ev = waitFd(fd_, POLLIN, deadline);
      if (ev <= 0) {
        return;
      }
    }
  }

  // The liveness probe (see unanswered()): its reply has a string id, which no request of ours
  // has, and is dropped like any late reply; any message from the server counts as an answer.
  void probe() {
    const auto now = Clock::now();
    if (!connected() || probe_sent_ > last_rx_ || now - last_rx_ < std::chrono::seconds(1) ||
        sending_) {
      return;
    }
    // Never wait to send it: a socket without room (a server that does not read) is silent
    // all the same, which the unanswered time then shows.
    pollfd room{fd_, POLLOUT, 0};
    if (::poll(&room, 1, 0) != 1 || (room.revents & POLLOUT) == 0) {
      probe_sent_ = now;
      return;
    }
    probe_sent_ = now;
    (void)send(Json{{"method", "echo"}, {"params", Json::array()}, {"id", "vpcguard-probe"}});
  }

  void handleMessage(const std::string& text) {
    last_rx_ = Clock::now();
    Json msg = Json::parse(text, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
      disconnect("invalid JSON-RPC message");
      return;
    }
    const bool is_request = msg.contains("method") && msg["method"].is_string();
    if (is_request) {
      const std::string method = msg["method"].get<std::string>();
      const Json id = msg.value("id", Json());
      const Json params = msg.value("params", Json::array());
      if (method == "echo") {
        // The server's inactivity probe: an unanswered echo gets us disconnected.
        (void)send(Json{{"id", id}, {"result", params}, {"error", nullptr}});
      } else if (method == "update" && params.is_array() && params.size() == 2) {
        updates_.push_back(OvsdbUpdate{params[0], params[1]});
      } else if (!id.is_null()) {
        (void)send(Json{{"id", id}, {"result", nullptr}, {"error", "unknown method " + method}});
      }
      return;
    }
    if (msg.contains("id") && msg["id"].is_number_unsigned()) {
      const uint64_t id = msg["id"].get<uint64_t>();
      if (id == pending_id_) {
        pending_reply_ = std::move(msg);
      }
      // Any other id is a reply to a request we gave up on: drop it.
    }
  }

  Result<Json> request(const std::string& method, Json params) {
    if (!connected()) {
      return makeError(disconnectReason());
    }
    const uint64_t id = next_id_++;
    pending_id_ = id;
    pending_reply_.reset();
    if (auto r = send(Json{{"method", method}, {"params", std::move(params)}, {"id", id}}); !r) {
      return tl::unexpected(r.error());
    }
    const auto deadline = Clock::now() + options_.request_timeout;
    while (!pending_reply_) {
      if (!connected()) {
        return makeError(disconnectReason());
      }
      if (msLeft(deadline) == 0) {
        // A server that does not answer within the deadline is treated as gone: later replies
        // would be out of step with the requests.
        disconnect(method + " timed out");
        return makeError(disconnectReason());
      }
      readAvailable(deadline);
    }
    Json reply = std::move(*pending_reply_);
    pending_reply_.reset();
    pending_id_ = 0;
    if (reply.contains("error") && !reply["error"].is_null()) {
      std::string err = reply["error"].is_string() ? reply["error"].get<std::string>()
                                                   : reply["error"].dump();
      return makeError(method + ": " + err);
    }
    return reply.value("result", Json());
  }

  int fd_;
  std::string target_;
  OvsdbOptions options_;
  JsonStreamSplitter splitter_;
  std::deque<OvsdbUpdate> updates_;
  bool sending_ = false;
  std::deque<std::string> deferred_;  // answers held back while another message is being sent
  uint64_t next_id_ = 1;
  uint64_t pending_id_ = 0;
  std::optional<Json> pending_reply_;
  std::string disconnect_reason_;
  Clock::time_point last_rx_ = Clock::now();  // the last message from the server
  Clock::time_point probe_sent_{};             // the last liveness probe (see probe())
};

}  // namespace

Result<std::unique_ptr<OvsdbClient>> connectOvsdb(const std::string& target,
                                                  const OvsdbOptions& options) {
  const auto deadline = Clock::now() + options.connect_timeout;
  Result<int> fd = makeError("unsupported target (expected unix:PATH or tcp:HOST:PORT)");
  if (target.starts_with("unix:")) {
    fd = connectUnix(target.substr(5), deadline);
  } else if (target.starts_with("tcp:")) {
    fd = connectTcp(target.substr(4), deadline);
  }
  if (!fd) {
    return tl::unexpected(fd.error().withContext("cannot connect to ovsdb " + target));
  }
  return std::unique_ptr<OvsdbClient>(
      std::make_unique<JsonRpcOvsdbClient>(*fd, target, options));
}

}  // namespace vpcguard::ovs
