#pragma once
// A minimal HTTP/1.x server for Prometheus scrapes: GET (or HEAD) /metrics answers
// 200 "text/plain; version=0.0.4" with what the owner's render callback returns.
//
// Design: no thread of its own; the owner's poll() loop drives it. appendPollFds() adds the
// listening socket and every connection (with the events each waits for); afterPoll() accepts,
// reads and writes whatever is ready and never blocks (every socket is non-blocking). Each
// connection serves one request and is closed ("Connection: close"), so a scraper's keep-alive
// costs nothing here. Limits keep a bad client from costing the owner: a request larger than
// max_request_bytes gets 431, a malformed one 400, another path 404, another method 405; a
// connection that has not sent its whole request within `request_deadline` (a slow or silent
// client) is closed, as is one whose answer is not taken within `deadline` of the request. With
// max_connections open, a new connection replaces the oldest one still waiting for its request
// (idle connections cannot keep scrapes out); only when all are being answered does it get 503.
// accept() failing for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) leaves the listener
// readable: it is then left out of the poll for kAcceptPause, so the owner's loop does not spin.
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vpcguard::metrics {

// HOST:PORT with an IPv4 literal or a bracketed IPv6 literal ("127.0.0.1:9733", "[::1]:9733").
struct ListenAddress {
  std::string host;  // without brackets
  uint16_t port = 0;
  bool ipv6 = false;
  [[nodiscard]] bool loopback() const;
  [[nodiscard]] std::string toString() const;  // as given (IPv6 in brackets)
};
// Nullopt (and *error says why) when `text` is not such an address.
[[nodiscard]] std::optional<ListenAddress> parseListenAddress(const std::string& text,
                                                              std::string* error);

class MetricsServer {
 public:
  struct Options {
    size_t max_connections = 8;
    size_t max_request_bytes = 8192;
    std::chrono::milliseconds request_deadline{1000};  // from accept to the whole request
    std::chrono::milliseconds deadline{5000};          // from the request to the answer taken
  };
  // Called for every GET /metrics: the body (the owner refreshes its gauges first).
  using Render = std::function<std::string()>;

  // Binds and listens; nullptr (and *error says why, e.g. the port is in use) on failure.
  [[nodiscard]] static std::unique_ptr<MetricsServer> listen(const ListenAddress& address,
                                                             Render render, Options options,
                                                             std::string* error);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port actually bound (useful with port 0).
  [[nodiscard]] uint16_t port() const { return port_; }
  void appendPollFds(std::vector<pollfd>& fds) const;
  // After poll(): serves what is ready in `fds` (entries of other owners are ignored) and closes
  // connections past their deadline.
  void afterPoll(const std::vector<pollfd>& fds);
  static constexpr std::chrono::milliseconds kAcceptPause{250};
  // How long the owner may sleep before a deadline (a connection's, or the end of an accept
  // pause) needs afterPoll() (nullopt: none).
  [[nodiscard]] std::optional<std::chrono::milliseconds> untilNextDeadline() const;
  [[nodiscard]] size_t connections() const { return connections_.size(); }

  struct Stats {
    uint64_t requests = 0;   // answered (any status)
    uint64_t scrapes = 0;    // 200 for /metrics
    uint64_t timeouts = 0;   // closed at the deadline
    uint64_t rejected = 0;   // 503: too many connections, all being answered
    uint64_t evicted = 0;    // closed without a request to make room for a new connection
    uint64_t accept_pauses = 0;  // accept() failed for lack of resources
  };
  [[nodiscard]] const Stats& stats() const { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Connection {
    int fd = -1;
    Clock::time_point deadline;
    std::string in;
    std::string out;
    size_t written = 0;
    bool responding = false;
  };
  MetricsServer(int fd, uint16_t port, Render render, Options options)
      : listen_fd_(fd), port_(port), render_(std::move(render)), options_(options) {}
  void acceptAll();
  // False when the connection is finished (to be closed).
  bool onReadable(Connection& c);
  bool onWritable(Connection& c);
  void respond(Connection& c);
  void closeConnection(size_t i);

  int listen_fd_;
  uint16_t port_;
  Render render_;
  Options options_;
  std::vector<Connection> connections_;  // in the order accepted
  Clock::time_point accept_paused_until_{};  // the listener is not polled before this
  Stats stats_;
};

}  // namespace vpcguard::metrics
