// metrics/: the registry's text exposition (escaping, histograms, ordering) and the scrape
// server (status codes, limits, deadlines), over real loopback sockets driven by poll().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/registry.h"
#include "metrics/server.h"

namespace vpcguard::metrics {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(MetricsRegistry, RendersSortedFamiliesAndSeries) {
  Registry r;
  r.declare("zeta_total", "Last family.", Type::kCounter);
  r.declare("alpha", "First family.", Type::kGauge);
  r.add("zeta_total", {{"reason", "b"}});
  r.add("zeta_total", {{"reason", "a"}}, 2);
  r.add("zeta_total", {{"reason", "a"}});
  r.set("alpha", {{"table", "10"}, {"a", "x"}}, 1.5);
  r.set("alpha", {{"table", "2"}, {"a", "x"}}, 7);
  EXPECT_EQ(r.render(),
            "# HELP alpha First family.\n# TYPE alpha gauge\n"
            "alpha{a=\"x\",table=\"10\"} 1.5\n"
            "alpha{a=\"x\",table=\"2\"} 7\n"
            "# HELP zeta_total Last family.\n# TYPE zeta_total counter\n"
            "zeta_total{reason=\"a\"} 3\n"
            "zeta_total{reason=\"b\"} 1\n");
  EXPECT_EQ(r.value("zeta_total", {{"reason", "a"}}), 3);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  Registry r;
  r.declare("m", "Back\\slash and\nnewline \"quotes stay\".", Type::kGauge);
  r.set("m", {{"v", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(r.render(),
            "# HELP m Back\\\\slash and\\nnewline \"quotes stay\".\n# TYPE m gauge\n"
            "m{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInf) {
  Registry r;
  r.declare("d_seconds", "Durations.", Type::kHistogram, {1, 0.01, 0.1});
  for (double v : {0.005, 0.01, 0.05, 0.5, 3.0}) {
    r.observe("d_seconds", {{"trigger", "config"}}, v);
  }
  EXPECT_EQ(r.render(),
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n"
            "d_seconds_bucket{trigger=\"config\",le=\"0.01\"} 2\n"
            "d_seconds_bucket{trigger=\"config\",le=\"0.1\"} 3\n"
            "d_seconds_bucket{trigger=\"config\",le=\"1\"} 4\n"
            "d_seconds_bucket{trigger=\"config\",le=\"+Inf\"} 5\n"
            "d_seconds_sum{trigger=\"config\"} 3.565\n"
            "d_seconds_count{trigger=\"config\"} 5\n");
}

TEST(MetricsRegistry, CountersNeverGoDownAndClearRemovesSeries) {
  Registry r;
  r.declare("c_total", "C.", Type::kCounter);
  r.declare("g", "G.", Type::kGauge);
  r.add("c_total", {}, 5);
  r.add("c_total", {}, -2);
  EXPECT_EQ(r.value("c_total"), 5);
  r.set("g", {{"t", "1"}}, 3);
  r.clear("g");
  EXPECT_EQ(r.render(), "# HELP c_total C.\n# TYPE c_total counter\nc_total 5\n"
                        "# HELP g G.\n# TYPE g gauge\n");
  EXPECT_EQ(formatValue(1e20), "1e+20");  // beyond 2^53: not written as an integer
  EXPECT_EQ(formatValue(0.25), "0.25");
}

TEST(MetricsListenAddress, Parses) {
  std::string error;
  auto v4 = parseListenAddress("127.0.0.1:9733", &error);
  ASSERT_TRUE(v4) << error;
  EXPECT_EQ(v4->port, 9733);
  EXPECT_TRUE(v4->loopback());
  auto v6 = parseListenAddress("[::1]:80", &error);
  ASSERT_TRUE(v6) << error;
  EXPECT_TRUE(v6->ipv6);
  EXPECT_TRUE(v6->loopback());
  EXPECT_EQ(v6->toString(), "[::1]:80");
  auto any = parseListenAddress("0.0.0.0:9733", &error);
  ASSERT_TRUE(any);
  EXPECT_FALSE(any->loopback());
  for (const char* bad : {"localhost:9733", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                          "::1:80", "[::1]", "[::1]x80", "1.2.3:5", "127.0.0.1:9x"}) {
    EXPECT_FALSE(parseListenAddress(bad, &error)) << bad;
    EXPECT_NE(error.find(bad), std::string::npos) << error;
  }
}

// A server on an ephemeral loopback port and a poll loop that runs it while a client waits.
class MetricsServerTest : public ::testing::Test {
 protected:
  void start(MetricsServer::Options options = {}, const std::string& host = "127.0.0.1:0") {
    std::string error;
    auto address = parseListenAddress(host, &error);
    ASSERT_TRUE(address) << error;
    ipv6_ = address->ipv6;
    server_ = MetricsServer::listen(*address, [this] {
      ++renders_;
      return std::string("m 1\n");
    }, options, &error);
    ASSERT_TRUE(server_) << error;
  }
  // Runs the server's side for `d`.
  void pump(std::chrono::milliseconds d) {
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
      std::vector<pollfd> fds;
      server_->appendPollFds(fds);
      ::poll(fds.data(), fds.size(), 10);
      server_->afterPoll(fds);
    }
  }
  int connectClient() {
    const int fd = ::socket(ipv6_ ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    int rc = -1;
    if (ipv6_) {
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      sa.sin6_port = htons(server_->port());
      sa.sin6_addr = in6addr_loopback;
      rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    } else {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(server_->port());
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    EXPECT_EQ(rc, 0);
    return fd;
  }
  static void sendAll(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        return;
      }
      off += static_cast<size_t>(n);
    }
  }
  // Reads until the server closes (pumping the server meanwhile); "" plus `closed` false when
  // it did not within `timeout`.
  std::string readAll(int fd, std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      pump(5ms);
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (closed != nullptr) {
          *closed = true;
        }
        return out;
      }
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
      }
    }
    if (closed != nullptr) {
      *closed = false;
    }
    return out;
  }
  std::string request(const std::string& text) {
    const int fd = connectClient();
    sendAll(fd, text);
    bool closed = false;
    auto out = readAll(fd, 2000ms, &closed);
    ::close(fd);
    EXPECT_TRUE(closed) << "the server did not close the connection";
    return out;
  }

  std::unique_ptr<MetricsServer> server_;
  bool ipv6_ = false;
  int renders_ = 0;
};

TEST_F(MetricsServerTest, GetMetricsAnswers200WithTheFormatVersion) {
  start();
  const auto out = request("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
  EXPECT_NE(out.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << out;
  EXPECT_NE(out.find("Content-Length: 4\r\n"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nm 1\n")) << out;
  EXPECT_EQ(renders_, 1);
  // A query string is ignored; HTTP/1.0 works; HEAD has no body.
  EXPECT_TRUE(request("GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 ")) ;
  const auto head = request("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200 ")) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
}

TEST_F(MetricsServerTest, Ipv6Loopback) {
  start({}, "[::1]:0");
  EXPECT_TRUE(request("GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, OtherPathsMethodsAndGarbage) {
  start();
  EXPECT_TRUE(request("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(request("GET /metricsx HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
  const auto post = request("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(post.starts_with("HTTP/1.1 405 ")) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_TRUE(request("hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(request("GET /metrics SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_EQ(renders_, 0);
}

TEST_F(MetricsServerTest, OversizedRequestIsRefused) {
  start();
  std::string big = "GET /metrics HTTP/1.1\r\n";
  while (big.size() < 20000) {
    big += "X-Filler: " + std::string(100, 'a') + "\r\n";
  }
  big += "\r\n";
  const auto out = request(big);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 431 ")) << out.substr(0, 100);
  EXPECT_EQ(renders_, 0);
  // The server still works.
  EXPECT_TRUE(request("GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, SlowOrSilentClientIsClosedAtTheRequestDeadline) {
  MetricsServer::Options o;
  o.request_deadline = 300ms;
  o.deadline = 5000ms;  // for the answer only: not what closes these
  start(o);
  const int silent = connectClient();
  const int slow = connectClient();
  sendAll(slow, "GET /met");
  const auto t0 = Clock::now();
  bool closed = false;
  EXPECT_EQ(readAll(silent, 3000ms, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_LT(Clock::now() - t0, 2000ms);
  EXPECT_EQ(readAll(slow, 1000ms, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_GE(server_->stats().timeouts, 2u);
  ::close(silent);
  ::close(slow);
  EXPECT_TRUE(request("GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, TheDeadlineIsSoonestWhileARequestIsAwaited) {
  MetricsServer::Options o;
  o.request_deadline = 1000ms;
  start(o);
  EXPECT_FALSE(server_->untilNextDeadline().has_value());
  const int fd = connectClient();
  pump(50ms);
  ASSERT_EQ(server_->connections(), 1u);
  const auto left = server_->untilNextDeadline();
  ASSERT_TRUE(left.has_value());
  EXPECT_LE(*left, 1001ms);
  EXPECT_GE(*left, 500ms);
  ::close(fd);
}

TEST_F(MetricsServerTest, IdleConnectionsMakeRoomForAScrape) {
  MetricsServer::Options o;
  o.max_connections = 4;
  o.request_deadline = 5000ms;  // the idle ones would stay for the whole test
  start(o);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(connectClient());
    pump(20ms);  // accepted in this order
  }
  EXPECT_EQ(server_->connections(), 4u);
  // Full of connections that sent nothing: the new one is served at once, the oldest idle one
  // is closed for it.
  const auto t0 = Clock::now();
  const auto served = request("GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(served.starts_with("HTTP/1.1 200 ")) << served;
  EXPECT_LT(Clock::now() - t0, 1000ms);
  EXPECT_EQ(server_->stats().evicted, 1u);
  EXPECT_EQ(server_->stats().rejected, 0u);
  bool closed = false;
  EXPECT_EQ(readAll(idle.front(), 500ms, &closed), "");
  EXPECT_TRUE(closed) << "the oldest idle connection was not the one closed";
  closed = false;
  (void)readAll(idle.back(), 100ms, &closed);
  EXPECT_FALSE(closed) << "a newer idle connection was closed";
  for (int fd : idle) {
    ::close(fd);
  }
}

TEST_F(MetricsServerTest, ConnectionsBeingAnsweredAreNotEvicted503Instead) {
  MetricsServer::Options o;
  o.max_connections = 1;
  // One client sends a request for a large answer and does not read it: it stays "responding".
  std::string error;
  auto address = parseListenAddress("127.0.0.1:0", &error);
  ASSERT_TRUE(address) << error;
  server_ = MetricsServer::listen(*address, [] { return std::string(8 << 20, 'x'); }, o, &error);
  ASSERT_TRUE(server_) << error;
  const int reader = connectClient();
  int small = 4096;
  (void)::setsockopt(reader, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sendAll(reader, "GET /metrics HTTP/1.1\r\n\r\n");
  pump(100ms);
  ASSERT_EQ(server_->connections(), 1u);
  const int late = connectClient();
  char buf[256];
  ssize_t n = -1;
  const auto until = Clock::now() + 2000ms;
  while (n <= 0 && Clock::now() < until) {
    pump(5ms);
    n = ::recv(late, buf, sizeof buf, MSG_DONTWAIT);
  }
  ASSERT_GT(n, 0);
  EXPECT_TRUE(std::string(buf, static_cast<size_t>(n)).starts_with("HTTP/1.1 503 "));
  EXPECT_EQ(server_->stats().rejected, 1u);
  EXPECT_EQ(server_->stats().evicted, 0u);
  ::close(late);
  ::close(reader);
}

// accept() failing for lack of descriptors leaves the listener readable: it is left out of the
// poll for the pause instead of being retried at every wake. In a child: RLIMIT_NOFILE is
// process-wide.
TEST_F(MetricsServerTest, AcceptFailingForLackOfDescriptorsPausesTheListener) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string error;
    auto address = parseListenAddress("127.0.0.1:0", &error);
    auto server = MetricsServer::listen(*address, [] { return std::string("m 1\n"); }, {}, &error);
    if (!server) {
      ::_exit(10);
    }
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(server->port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::_exit(11);
    }
    // The lowest free descriptor number becomes the limit: the next accept() gets EMFILE.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      ::_exit(16);
    }
    ::close(probe);
    rlimit old{};
    ::getrlimit(RLIMIT_NOFILE, &old);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(probe);
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) {
      ::_exit(12);
    }
    // The owner's loop as the daemon runs it: sleeps until the server's deadline.
    int wakes = 0;
    const auto until = Clock::now() + 600ms;
    while (Clock::now() < until) {
      std::vector<pollfd> fds;
      server->appendPollFds(fds);
      const auto wait = server->untilNextDeadline().value_or(100ms);
      ::poll(fds.data(), fds.size(), static_cast<int>(std::min(wait, 100ms).count()));
      server->afterPoll(fds);
      ++wakes;
    }
    if (server->stats().accept_pauses < 1) {
      ::_exit(13);
    }
    if (server->stats().accept_pauses > 4 || wakes > 40) {
      ::_exit(14);  // spinning
    }
    // Descriptors again: the waiting connection is taken and served.
    ::setrlimit(RLIMIT_NOFILE, &old);
    const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
    (void)::send(client, req, sizeof req - 1, MSG_NOSIGNAL);
    std::string got;
    const auto end = Clock::now() + 2000ms;
    while (Clock::now() < end && !got.starts_with("HTTP/1.1 200 ")) {
      std::vector<pollfd> fds;
      server->appendPollFds(fds);
      ::poll(fds.data(), fds.size(), 10);
      server->afterPoll(fds);
      char buf[512];
      const ssize_t n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
      }
    }
    ::_exit(got.starts_with("HTTP/1.1 200 ") ? 0 : 15);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  // 13: no pause; 14: the loop spun; 15: not served once descriptors were back.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(MetricsServerTest, PortInUseIsAnError) {
  start();
  std::string error;
  auto address = parseListenAddress("127.0.0.1:" + std::to_string(server_->port()), &error);
  ASSERT_TRUE(address);
  auto second = MetricsServer::listen(*address, {}, {}, &error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
}

}  // namespace
}  // namespace vpcguard::metrics
