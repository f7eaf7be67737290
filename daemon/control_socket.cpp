#include "daemon/control_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "daemon/logging.h"
#include "daemon/version.h"

namespace vpcguard {
namespace {

std::string errnoText(int err) { return std::strerror(err); }

Result<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return makeError("control socket path '" + path + "' must be 1 to " +
                     std::to_string(sizeof(addr.sun_path) - 1) + " bytes long");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// connect() on a non-blocking socket; returns errno (0 = connected).
int connectTo(int fd, const sockaddr_un& addr) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    return 0;
  }
  return errno;
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string handleControlRequest(std::string_view line) {
  std::istringstream words{std::string(trim(line))};
  std::vector<std::string> args;
  for (std::string w; words >> w;) {
    args.push_back(w);
  }
  if (args.empty()) {
    return "error empty request (log-level [LEVEL], version)";
  }
  if (args[0] == "version" && args.size() == 1) {
    return std::string("ok vpcguardd ") + kVersion;
  }
  if (args[0] == "log-level" && args.size() == 1) {
    return "ok " + logLevel();
  }
  if (args[0] == "log-level" && args.size() == 2) {
    const std::string before = logLevel();
    if (args[1] == "off") {
      // Logged before, at the old level: after it nothing shows (and "off" is no level to log at).
      logger("daemon")->info("log_level_changed from={} to=off by=control-socket", before);
      (void)setLogLevel("off");
      return "ok " + logLevel();
    }
    if (!setLogLevel(args[1])) {
      return "error unknown log level '" + args[1] +
             "' (trace, debug, info, warn, error, critical, off)";
    }
    // At info or above, so the change shows at the new level too.
    const auto now = spdlog::level::from_str(args[1]);
    logger("daemon")->log(std::max(now, spdlog::level::info),
                          "log_level_changed from={} to={} by=control-socket", before, logLevel());
    return "ok " + logLevel();
  }
  return "error unknown request '" + std::string(trim(line)).substr(0, 64) +
         "' (log-level [LEVEL], version)";
}

std::string defaultControlSocket(const std::string& status_file, const std::string& bridge) {
  const std::filesystem::path dir = std::filesystem::path(status_file).parent_path();
  return (dir.empty() ? std::filesystem::path(".") : dir).string() + "/" + bridge + ".ctl";
}

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(const std::string& path,
                                                           Handler handler) {
  auto addr = unixAddress(path);
  if (!addr) {
    return tl::unexpected(addr.error());
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return makeError("control socket " + path + ": exists and is not a socket (not replaced)");
    }
    // A live daemon accepts; a socket file left by a killed one refuses: only that is replaced.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int err = probe < 0 ? errno : connectTo(probe, *addr);
    if (probe >= 0) {
      ::close(probe);
    }
    if (err == 0 || err == EAGAIN) {
      return makeError("control socket " + path +
                       ": another process serves it (a second vpcguardd for this bridge?)");
    }
    if (err != ECONNREFUSED && err != ENOENT) {
      return makeError("control socket " + path + ": " + errnoText(err));
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return makeError("control socket " + path + ": cannot remove the stale socket: " +
                       errnoText(errno));
    }
    logger("daemon")->info("control_socket_stale_replaced path={}", path);
  }
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return makeError("control socket " + path + ": cannot create " + dir.string() + ": " +
                       ec.message());
    }
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return makeError("control socket " + path + ": socket: " + errnoText(errno));
  }
  // Root only: created 0600 through the umask (no chmod() by path afterwards: it would follow a
  // symlink put in the socket's place). The umask is process-wide: the daemon opens this before
  // it starts any thread.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
  const int bind_err = errno;
  ::umask(old_mask);
  if (bound != 0) {
    ::close(fd);
    return makeError("control socket " + path + ": bind: " + errnoText(bind_err));
  }
  if (::listen(fd, static_cast<int>(kMaxClients)) != 0 ||
      ::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return makeError("control socket " + path + ": " + errnoText(err));
  }
  return std::unique_ptr<ControlSocket>(
      new ControlSocket(path, fd, st.st_dev, st.st_ino, std::move(handler)));
}

ControlSocket::~ControlSocket() {
  for (auto& c : clients_) {
    ::close(c.fd);
  }
  ::close(fd_);
  // Only our own file: a daemon started after us may have replaced it already.
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

void ControlSocket::appendPollFds(std::vector<pollfd>& fds) const {
  if (clients_.size() < kMaxClients && Clock::now() >= accept_paused_until_) {
    fds.push_back({fd_, POLLIN, 0});
  }
  for (const auto& c : clients_) {
    fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
  }
}

void ControlSocket::accept(Clock::time_point now) {
  while (clients_.size() < kMaxClients) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_ = now + kAcceptPause;  // the listener stays readable meanwhile
      }
      return;  // EAGAIN: all taken
    }
    clients_.push_back(Client{fd, {}, {}, now + kClientTimeout});
  }
}

bool ControlSocket::read(Client& c) {
  char buf[kMaxRequest + 1];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    const bool eof = n == 0;
    c.in.append(buf, static_cast<size_t>(n));
    const auto newline = c.in.find('\n');
    std::string request;
    if (newline != std::string::npos && newline <= kMaxRequest) {
      request = c.in.substr(0, newline);
    } else if (c.in.size() > kMaxRequest) {
      c.out = "error request longer than " + std::to_string(kMaxRequest) + " bytes\n";
      return write(c);
    } else if (eof && !c.in.empty()) {
      request = c.in;  // a last line without newline
    } else if (eof) {
      return false;
    } else {
      continue;
    }
    c.out = handler_(request) + "\n";
    return write(c);
  }
}

bool ControlSocket::write(Client& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  return false;  // answered: one request per connection
}

std::optional<std::chrono::milliseconds> ControlSocket::untilNextDeadline(
    Clock::time_point now) const {
  std::optional<Clock::time_point> next;
  if (accept_paused_until_ > now) {
    next = accept_paused_until_;
  }
  for (const auto& c : clients_) {
    next = next ? std::min(*next, c.deadline) : c.deadline;
  }
  if (!next) {
    return std::nullopt;
  }
  return std::max(std::chrono::ceil<std::chrono::milliseconds>(*next - now),
                  std::chrono::milliseconds(0));
}

void ControlSocket::service(const std::vector<pollfd>& fds, Clock::time_point now) {
  const auto revents = [&](int fd) -> short {
    for (const auto& p : fds) {
      if (p.fd == fd) {
        return p.revents;
      }
    }
    return 0;
  };
  // Clients first (the ones accepted below were not polled yet).
  for (auto it = clients_.begin(); it != clients_.end();) {
    const short ev = revents(it->fd);
    bool keep = true;
    if (now >= it->deadline) {
      keep = false;
    } else if (!it->out.empty() && (ev & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      keep = write(*it);
    } else if (it->out.empty() && (ev & (POLLIN | POLLERR | POLLHUP)) != 0) {
      keep = read(*it);
    }
    if (!keep) {
      ::close(it->fd);
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
  if ((revents(fd_) & POLLIN) != 0) {
    accept(now);
  }
}

Result<std::string> controlRequest(const std::string& path, const std::string& line,
                                   std::chrono::milliseconds timeout) {
  auto addr = unixAddress(path);
  if (!addr) {
    return tl::unexpected(addr.error());
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return makeError("socket: " + errnoText(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  switch (const int err = connectTo(fd, *addr)) {
    case 0:
      break;
    case ENOENT:
      return makeError("no control socket at " + path +
                       " (is vpcguardd running for this bridge? see --socket)");
    case ECONNREFUSED:
      return makeError("vpcguardd is not running (" + path +
                       " is left from a daemon that stopped)");
    case EACCES:
    case EPERM:
      return makeError("permission denied on " + path +
                       " (the control socket is root's only: run as root)");
    case EAGAIN:
      return makeError("vpcguardd is busy (" + path + " accepts no more connections now)");
    default:
      return makeError("cannot connect to " + path + ": " + errnoText(err));
  }
  using Clock = ControlSocket::Clock;
  const auto deadline = Clock::now() + timeout;
  const auto remaining = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  std::string out = line + "\n";
  while (!out.empty()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      return makeError("vpcguardd did not take the request within " +
                       std::to_string(timeout.count()) + " ms (" + path + ")");
    }
    const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return makeError("send to " + path + ": " + errnoText(errno));
    }
    out.erase(0, static_cast<size_t>(std::max<ssize_t>(n, 0)));
  }
  std::string in;
  for (;;) {
    if (const auto nl = in.find('\n'); nl != std::string::npos) {
      return in.substr(0, nl);
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      return makeError("no reply from vpcguardd within " + std::to_string(timeout.count()) +
                       " ms (" + path + ")");
    }
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      if (!in.empty()) {
        return in;
      }
      return makeError("vpcguardd closed " + path + " without a reply");
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return makeError("read from " + path + ": " + errnoText(errno));
    }
    in.append(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (in.size() > 64 * 1024) {
      return makeError("reply from " + path + " is too long");
    }
  }
}

}  // namespace vpcguard
