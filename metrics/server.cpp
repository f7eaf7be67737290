#include "metrics/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace vpcguard::metrics {
namespace {

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string response(int status, const std::string& content_type, const std::string& body,
                     bool head, const char* extra_header = "") {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
      status, reasonPhrase(status), content_type, body.size(), extra_header);
  if (!head) {
    out += body;
  }
  return out;
}

std::string errorResponse(int status, const char* extra_header = "") {
  return response(status, "text/plain; charset=utf-8",
                  fmt::format("{} {}\n", status, reasonPhrase(status)), false, extra_header);
}

// Reads what is left without blocking, so closing does not reset the connection (which could
// lose the answer on its way to the client).
void drain(int fd) {
  char buf[4096];
  for (int i = 0; i < 16 && ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {
  }
}

}  // namespace

bool ListenAddress::loopback() const {
  if (ipv6) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, host.c_str(), &a) == 1 && IN6_IS_ADDR_LOOPBACK(&a);
  }
  return host.starts_with("127.");
}

std::string ListenAddress::toString() const {
  return ipv6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::optional<ListenAddress> parseListenAddress(const std::string& text, std::string* error) {
  const auto fail = [&](const std::string& why) -> std::optional<ListenAddress> {
    if (error != nullptr) {
      *error = fmt::format("'{}': {} (expected HOST:PORT with an IPv4 address, or [IPv6]:PORT, "
                           "e.g. 127.0.0.1:9733 or [::1]:9733)",
                           text, why);
    }
    return std::nullopt;
  };
  ListenAddress a;
  std::string port;
  if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("an IPv6 address needs brackets and a port");
    }
    a.host = text.substr(1, close - 1);
    a.ipv6 = true;
    port = text.substr(close + 2);
    in6_addr addr{};
    if (::inet_pton(AF_INET6, a.host.c_str(), &addr) != 1) {
      return fail("not an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      return fail("no port");
    }
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos) {
      return fail("an IPv6 address must be in brackets");
    }
    in_addr addr{};
    if (::inet_pton(AF_INET, a.host.c_str(), &addr) != 1) {
      return fail("not an IPv4 address (host names are not resolved)");
    }
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return fail("the port must be a number from 0 to 65535");
  }
  a.port = static_cast<uint16_t>(value);
  return a;
}

std::unique_ptr<MetricsServer> MetricsServer::listen(const ListenAddress& address, Render render,
                                                     Options options, std::string* error) {
  const auto fail = [&](const char* what) -> std::unique_ptr<MetricsServer> {
    if (error != nullptr) {
      *error = fmt::format("{} {}: {}", what, address.toString(), std::strerror(errno));
    }
    return nullptr;
  };
  const int family = address.ipv6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail("socket");
  }
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (address.ipv6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(address.port);
    (void)::inet_pton(AF_INET6, address.host.c_str(), &sa->sin6_addr);
    (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    len = sizeof(sockaddr_in6);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(address.port);
    (void)::inet_pton(AF_INET, address.host.c_str(), &sa->sin_addr);
    len = sizeof(sockaddr_in);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    auto r = fail("cannot listen on");
    ::close(fd);
    return r;
  }
  if (::listen(fd, 64) != 0) {
    auto r = fail("listen");
    ::close(fd);
    return r;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  uint16_t port = address.port;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0) {
    port = address.ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(fd, port, std::move(render), options));
}

MetricsServer::~MetricsServer() {
  for (auto& c : connections_) {
    ::close(c.fd);
  }
  ::close(listen_fd_);
}

void MetricsServer::appendPollFds(std::vector<pollfd>& fds) const {
  if (Clock::now() >= accept_paused_until_) {
    fds.push_back({listen_fd_, POLLIN, 0});
  }
  for (const auto& c : connections_) {
    fds.push_back({c.fd, static_cast<short>(c.responding ? POLLOUT : POLLIN), 0});
  }
}

std::optional<std::chrono::milliseconds> MetricsServer::untilNextDeadline() const {
  const auto now = Clock::now();
  std::optional<Clock::time_point> next;
  if (accept_paused_until_ > now) {
    next = accept_paused_until_;
  }
  for (const auto& c : connections_) {
    next = next ? std::min(*next, c.deadline) : c.deadline;
  }
  if (!next) {
    return std::nullopt;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now);
  return std::max(left, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1);
}

void MetricsServer::afterPoll(const std::vector<pollfd>& fds) {
  const auto ready = [&fds](int fd) -> short {
    for (const auto& p : fds) {
      if (p.fd == fd) {
        return p.revents;
      }
    }
    return 0;
  };
  // Connections first: a new one accepted now has nothing to read yet.
  const auto now = Clock::now();
  for (size_t i = connections_.size(); i-- > 0;) {
    Connection& c = connections_[i];
    const short revents = ready(c.fd);
    bool keep = true;
    if ((revents & (POLLERR | POLLNVAL)) != 0) {
      keep = false;
    } else if (!c.responding && (revents & (POLLIN | POLLHUP)) != 0) {
      keep = onReadable(c);
    } else if (c.responding && (revents & (POLLOUT | POLLHUP)) != 0) {
      keep = onWritable(c);
    }
    if (keep && now >= c.deadline) {
      ++stats_.timeouts;
      keep = false;
    }
    if (!keep) {
      closeConnection(i);
    }
  }
  if ((ready(listen_fd_) & POLLIN) != 0) {
    acceptAll();
  }
}

void MetricsServer::acceptAll() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The pending connection stays queued and the listener readable: wait before retrying.
        ++stats_.accept_pauses;
        accept_paused_until_ = Clock::now() + kAcceptPause;
      }
      return;  // EAGAIN: all taken
    }
    if (connections_.size() >= options_.max_connections) {
      // The oldest connection still waiting for its request makes room (idle connections must
      // not keep scrapes out); a connection being answered is finished first.
      const auto idle = std::find_if(connections_.begin(), connections_.end(),
                                     [](const Connection& c) { return !c.responding; });
      if (idle != connections_.end()) {
        ++stats_.evicted;
        closeConnection(static_cast<size_t>(idle - connections_.begin()));
      }
    }
    if (connections_.size() >= options_.max_connections) {
      ++stats_.rejected;
      const std::string busy = errorResponse(503);
      (void)::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      drain(fd);
      ::close(fd);
      continue;
    }
    Connection c;
    c.fd = fd;
    c.deadline = Clock::now() + options_.request_deadline;
    connections_.push_back(std::move(c));
  }
}

bool MetricsServer::onReadable(Connection& c) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
      return false;  // closed before a whole request
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.in.append(buf, static_cast<size_t>(n));
    if (c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos ||
        c.in.size() > options_.max_request_bytes) {
      respond(c);
      return onWritable(c);
    }
  }
}

void MetricsServer::respond(Connection& c) {
  c.responding = true;
  c.deadline = Clock::now() + options_.deadline;  // to take the answer
  ++stats_.requests;
  const auto end = c.in.find("\r\n\r\n") != std::string::npos ? c.in.find("\r\n\r\n")
                                                               : c.in.find("\n\n");
  if (end == std::string::npos || end > options_.max_request_bytes) {
    c.out = errorResponse(431);
    return;
  }
  const std::string_view head(c.in.data(), end);
  const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    c.out = errorResponse(400);
    return;
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  if (method != "GET" && method != "HEAD") {
    c.out = errorResponse(405, "Allow: GET, HEAD\r\n");
    return;
  }
  if (path != "/metrics") {
    c.out = errorResponse(404);
    return;
  }
  ++stats_.scrapes;
  c.out = response(200, "text/plain; version=0.0.4; charset=utf-8", render_ ? render_() : "",
                   method == "HEAD");
}

bool MetricsServer::onWritable(Connection& c) {
  while (c.written < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.written += static_cast<size_t>(n);
  }
  ::shutdown(c.fd, SHUT_WR);
  drain(c.fd);
  return false;
}

void MetricsServer::closeConnection(size_t i) {
  ::close(connections_[i].fd);
  connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(i));
}

}  // namespace vpcguard::metrics
