// vpcguardd as a service, piece by piece: the sd_notify messages and watchdog timing (against a
// real AF_UNIX datagram socket standing in for systemd's), the journald stream detection and
// priority prefixes, and the control socket's line protocol (over a real Unix socket).
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "daemon/control_socket.h"
#include "daemon/logging.h"
#include "daemon/service.h"
#include "daemon/version.h"

namespace vpcguard {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/vgt-svc.XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The service manager's end: a datagram socket the test binds, named by NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
  }
  [[nodiscard]] bool bound() const { return bound_; }
  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout = 1000ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
      return std::nullopt;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? std::nullopt : std::optional<std::string>(std::string(buf, static_cast<size_t>(n)));
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(ServiceNotifier, NoOpWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "400000", 1);  // ignored without a socket to ping
  ServiceNotifier n;
  ::unsetenv("WATCHDOG_USEC");
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdogInterval().count(), 0);
  EXPECT_EQ(n.untilNextPing(), std::chrono::hours(24));
  n.ready("x");
  n.status("y");
  n.tick(Clock::now() + 1h);
  n.stopping("z");
  EXPECT_TRUE(n.isReady());
}

TEST(ServiceNotifier, ReadyOnceThenStatusOnlyWhenChanged) {
  TempDir dir;
  NotifySocket manager(dir.path() + "/notify");
  ASSERT_TRUE(manager.bound());
  ServiceNotifier n;
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdogInterval().count(), 0);
  n.status("waiting for Open vSwitch");
  EXPECT_EQ(manager.next(), "STATUS=waiting for Open vSwitch");
  n.status("waiting for Open vSwitch");  // unchanged: not sent again
  EXPECT_FALSE(n.isReady());
  n.ready("enforcing 12 flows on br-int (config /etc/vpcguard/vpc.toml)");
  EXPECT_EQ(manager.next(), "READY=1\nSTATUS=enforcing 12 flows on br-int (config /etc/vpcguard/vpc.toml)");
  EXPECT_TRUE(n.isReady());
  n.ready("enforcing 12 flows on br-int (config /etc/vpcguard/vpc.toml)");  // nothing new
  n.ready("enforcing 14 flows on br-int (config /etc/vpcguard/vpc.toml)");  // a status only
  EXPECT_EQ(manager.next(), "STATUS=enforcing 14 flows on br-int (config /etc/vpcguard/vpc.toml)");
  n.stopping("stopping (signal 15)");
  EXPECT_EQ(manager.next(), "STOPPING=1\nSTATUS=stopping (signal 15)");
  EXPECT_EQ(manager.next(100ms), std::nullopt);
}

TEST(ServiceNotifier, ReadyIsRetriedWhenTheManagerWasNotThere) {
  TempDir dir;
  const std::string path = dir.path() + "/notify";
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ServiceNotifier n;
  n.ready("first");  // nobody listens yet
  EXPECT_FALSE(n.isReady());
  NotifySocket manager(path);
  n.ready("second");
  EXPECT_EQ(manager.next(), "READY=1\nSTATUS=second");
  EXPECT_TRUE(n.isReady());
}

TEST(ServiceNotifier, WatchdogAtHalfTheInterval) {
  TempDir dir;
  NotifySocket manager(dir.path() + "/notify");
  ::setenv("WATCHDOG_USEC", "400000", 1);
  ::unsetenv("WATCHDOG_PID");
  const auto t0 = Clock::now();
  ServiceNotifier n(t0);
  EXPECT_EQ(n.watchdogInterval(), 400ms);
  EXPECT_EQ(n.untilNextPing(t0), 200ms);
  EXPECT_EQ(n.untilNextPing(t0 + 150ms), 50ms);
  n.tick(t0 + 199ms);
  EXPECT_EQ(manager.next(50ms), std::nullopt);
  n.tick(t0 + 200ms);
  EXPECT_EQ(manager.next(), "WATCHDOG=1");
  // The next one is due half an interval after this ping (not after t0 + 400 ms).
  EXPECT_EQ(n.untilNextPing(t0 + 200ms), 200ms);
  n.tick(t0 + 390ms);
  EXPECT_EQ(manager.next(50ms), std::nullopt);
  EXPECT_EQ(n.untilNextPing(t0 + 500ms), 0ms);  // overdue: the loop must not sleep
  n.tick(t0 + 500ms);
  EXPECT_EQ(manager.next(), "WATCHDOG=1");
  n.tick(t0 + 650ms);
  EXPECT_EQ(manager.next(50ms), std::nullopt);
}

TEST(ServiceNotifier, WatchdogOnlyForTheNamedPid) {
  TempDir dir;
  NotifySocket manager(dir.path() + "/notify");
  ::setenv("WATCHDOG_USEC", "1000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(ServiceNotifier().watchdogInterval().count(), 0);  // meant for another process
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_EQ(ServiceNotifier().watchdogInterval(), 1s);
}

TEST(ServiceNotifier, StatusIsOneBoundedLine) {
  EXPECT_EQ(ServiceNotifier::statusLine("config refused: a.toml:3: x\nb.toml:4: y\r"),
            "config refused: a.toml:3: x b.toml:4: y ");
  EXPECT_EQ(ServiceNotifier::statusLine(std::string(5000, 'x')).size(), ServiceNotifier::kMaxStatus);
}

TEST(JournalStream, MatchesOnlyTheDeviceAndInodeOfTheFd) {
  TempDir dir;
  const std::string file = dir.path() + "/stderr";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  struct stat st{};
  ASSERT_EQ(::fstat(fd, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  EXPECT_TRUE(isJournalStream(mine.c_str(), fd));
  const std::string other_inode = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  EXPECT_FALSE(isJournalStream(other_inode.c_str(), fd));
  const std::string other_dev = std::to_string(st.st_dev + 1) + ":" + std::to_string(st.st_ino);
  EXPECT_FALSE(isJournalStream(other_dev.c_str(), fd));
  for (const char* bad : {"", ":", "12", "12:", ":34", "a:b", "12:34x", "-1:-1", "12:34:56"}) {
    EXPECT_FALSE(isJournalStream(bad, fd)) << bad;
  }
  EXPECT_FALSE(isJournalStream(nullptr, fd));
  EXPECT_FALSE(isJournalStream(mine.c_str(), -1));
  ::close(fd);
}

TEST(JournalStream, PriorityPrefixes) {
  EXPECT_STREQ(journalPriority(spdlog::level::critical), "<2>");
  EXPECT_STREQ(journalPriority(spdlog::level::err), "<3>");
  EXPECT_STREQ(journalPriority(spdlog::level::warn), "<4>");
  EXPECT_STREQ(journalPriority(spdlog::level::info), "<6>");
  EXPECT_STREQ(journalPriority(spdlog::level::debug), "<7>");
  EXPECT_STREQ(journalPriority(spdlog::level::trace), "<7>");
}

// Restores the log level a test changes.
class ControlProtocol : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = logLevel(); }
  void TearDown() override { (void)setLogLevel(saved_); }
  std::string saved_;
};

TEST_F(ControlProtocol, Requests) {
  ASSERT_TRUE(setLogLevel("info"));
  EXPECT_EQ(handleControlRequest("log-level"), "ok info");
  EXPECT_EQ(handleControlRequest("log-level debug"), "ok debug");
  EXPECT_EQ(logLevel(), "debug");
  EXPECT_EQ(logger("daemon")->level(), spdlog::level::debug);
  EXPECT_EQ(handleControlRequest("  log-level   trace \r"), "ok trace");
  EXPECT_EQ(handleControlRequest("log-level"), "ok trace");
  const std::string bad = handleControlRequest("log-level loud");
  EXPECT_EQ(bad.rfind("error unknown log level 'loud'", 0), 0U) << bad;
  EXPECT_EQ(logLevel(), "trace");  // unchanged
  EXPECT_EQ(handleControlRequest("version"), std::string("ok vpcguardd ") + kVersion);
  EXPECT_EQ(handleControlRequest("reload").rfind("error unknown request 'reload'", 0), 0U);
  EXPECT_EQ(handleControlRequest("log-level a b").rfind("error unknown request", 0), 0U);
  EXPECT_EQ(handleControlRequest("").rfind("error empty request", 0), 0U);
  EXPECT_EQ(handleControlRequest("log-level off"), "ok off");
  EXPECT_EQ(logger("daemon")->level(), spdlog::level::off);
}

TEST(ControlSocketPath, BesideTheStatusFile) {
  EXPECT_EQ(defaultControlSocket("/var/run/vpcguard/br-int.status.json", "br-int"),
            "/var/run/vpcguard/br-int.ctl");
  EXPECT_EQ(defaultControlSocket("status.json", "br0"), "./br0.ctl");
}

// Runs the socket's side (poll + service) until `done`.
void serveUntil(ControlSocket& control, const std::atomic<bool>& done) {
  while (!done) {
    std::vector<pollfd> fds;
    control.appendPollFds(fds);
    ::poll(fds.data(), fds.size(), 10);
    control.service(fds);
  }
}

// One request through a real socket, with the control socket served on this thread.
Result<std::string> ask(ControlSocket& control, const std::string& line) {
  std::atomic<bool> done{false};
  Result<std::string> reply = makeError("not run");
  std::thread client([&] {
    reply = controlRequest(control.path(), line, 3000ms);
    done = true;
  });
  serveUntil(control, done);
  client.join();
  return reply;
}

// Non-blocking, so a full listen queue fails (-1) instead of blocking the test.
int connectRaw(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(ControlProtocol, OverTheSocketRootOnlyAndRemovedAtTheEnd) {
  TempDir dir;
  const std::string path = dir.path() + "/run/br-test.ctl";  // the directory is created
  {
    auto control = ControlSocket::open(path);
    ASSERT_TRUE(control.has_value()) << control.error().message;
    struct stat st{};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600U);
    ASSERT_TRUE(setLogLevel("warn"));
    auto reply = ask(**control, "log-level");
    ASSERT_TRUE(reply.has_value()) << reply.error().message;
    EXPECT_EQ(*reply, "ok warning");
    reply = ask(**control, "log-level debug");
    ASSERT_TRUE(reply.has_value()) << reply.error().message;
    EXPECT_EQ(*reply, "ok debug");
    EXPECT_EQ(logLevel(), "debug");
    reply = ask(**control, "log-level nope");
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->rfind("error unknown log level", 0), 0U) << *reply;
    EXPECT_EQ((*control)->clients(), 0U);  // one request per connection
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(ControlProtocol, ASlowClientBlocksNobodyAndExpires) {
  TempDir dir;
  auto control = ControlSocket::open(dir.path() + "/c.ctl");
  ASSERT_TRUE(control.has_value()) << control.error().message;
  const int slow = connectRaw((*control)->path());
  ASSERT_GE(slow, 0);
  ASSERT_EQ(::send(slow, "log-le", 6, MSG_NOSIGNAL), 6);  // half a request, then silence
  auto reply = ask(**control, "version");
  ASSERT_TRUE(reply.has_value()) << reply.error().message;
  EXPECT_EQ(*reply, std::string("ok vpcguardd ") + kVersion);
  EXPECT_EQ((*control)->clients(), 1U);  // the slow one, still waiting
  // The owner's poll sleeps no longer than the slow client's deadline.
  const auto left = (*control)->untilNextDeadline();
  ASSERT_TRUE(left.has_value());
  EXPECT_LE(*left, ControlSocket::kClientTimeout);
  EXPECT_GT(*left, 0ms);
  std::vector<pollfd> fds;
  (*control)->appendPollFds(fds);
  (*control)->service(fds, Clock::now() + ControlSocket::kClientTimeout + 10ms);
  EXPECT_EQ((*control)->clients(), 0U);
  char c = 0;
  pollfd p{slow, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  EXPECT_EQ(::recv(slow, &c, 1, 0), 0);  // closed by the daemon
  ::close(slow);
}

TEST_F(ControlProtocol, AnOverlongRequestIsRefused) {
  TempDir dir;
  auto control = ControlSocket::open(dir.path() + "/c.ctl");
  ASSERT_TRUE(control.has_value()) << control.error().message;
  auto reply = ask(**control, "log-level " + std::string(1000, 'd'));
  ASSERT_TRUE(reply.has_value()) << reply.error().message;
  EXPECT_EQ(reply->rfind("error request longer than", 0), 0U) << *reply;
}

TEST_F(ControlProtocol, ManyClientsAtOnceAreBounded) {
  TempDir dir;
  auto control = ControlSocket::open(dir.path() + "/c.ctl");
  ASSERT_TRUE(control.has_value()) << control.error().message;
  std::vector<int> idle;
  for (size_t i = 0; i < ControlSocket::kMaxClients + 4; ++i) {
    idle.push_back(connectRaw((*control)->path()));
  }
  std::vector<pollfd> fds;
  (*control)->appendPollFds(fds);
  ::poll(fds.data(), fds.size(), 100);
  (*control)->service(fds);
  EXPECT_EQ((*control)->clients(), ControlSocket::kMaxClients);
  for (int fd : idle) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  // Once they are gone, requests are answered again.
  auto reply = ask(**control, "log-level");
  ASSERT_TRUE(reply.has_value()) << reply.error().message;
  EXPECT_EQ(reply->rfind("ok ", 0), 0U);
}

// accept() failing for lack of descriptors leaves the listener readable: it is left out of the
// poll for kAcceptPause (and the deadline says when to look again) instead of spinning. In a
// child: RLIMIT_NOFILE is process-wide.
TEST(ControlSocketAccept, LackOfDescriptorsPausesTheListener) {
  TempDir dir;
  const std::string path = dir.path() + "/c.ctl";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto control = ControlSocket::open(path);
    if (!control) {
      ::_exit(10);
    }
    const int client = connectRaw(path);
    if (client < 0) {
      ::_exit(11);
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      ::_exit(12);
    }
    ::close(probe);
    rlimit old{};
    ::getrlimit(RLIMIT_NOFILE, &old);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(probe);  // the next descriptor is over the limit
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) {
      ::_exit(12);
    }
    std::vector<pollfd> fds;
    (*control)->appendPollFds(fds);
    if (fds.size() != 1 || ::poll(fds.data(), fds.size(), 1000) != 1) {
      ::_exit(13);
    }
    (*control)->service(fds);  // accept() fails: EMFILE
    fds.clear();
    (*control)->appendPollFds(fds);
    const auto left = (*control)->untilNextDeadline();
    if (!fds.empty() || !left || *left > ControlSocket::kAcceptPause || *left <= 0ms) {
      ::_exit(14);  // the listener is still polled, or no deadline to look again
    }
    ::setrlimit(RLIMIT_NOFILE, &old);
    std::this_thread::sleep_for(*left + 10ms);
    fds.clear();
    (*control)->appendPollFds(fds);
    if (fds.size() != 1 || ::poll(fds.data(), fds.size(), 1000) != 1) {
      ::_exit(15);
    }
    (*control)->service(fds);
    ::_exit((*control)->clients() == 1 ? 0 : 16);  // the waiting client is taken now
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  // 13: listener not readable; 14: no pause; 15/16: not taken once descriptors were back.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ControlSocketFile, StaleReplacedLiveAndForeignRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/br.ctl";
  // What a killed daemon leaves: a socket file nobody listens on.
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  auto stale = controlRequest(path, "log-level", 1000ms);
  ASSERT_FALSE(stale.has_value());
  EXPECT_NE(stale.error().message.find("vpcguardd is not running"), std::string::npos)
      << stale.error().message;
  auto first = ControlSocket::open(path);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto second = ControlSocket::open(path);  // a live one is not taken over
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().message.find("another process serves it"), std::string::npos);
  first->reset();
  EXPECT_FALSE(std::filesystem::exists(path));

  const std::string regular = dir.path() + "/not-a-socket";
  std::ofstream(regular) << "keep me";
  auto foreign = ControlSocket::open(regular);
  ASSERT_FALSE(foreign.has_value());
  EXPECT_NE(foreign.error().message.find("is not a socket"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(regular));

  auto missing = controlRequest(dir.path() + "/none.ctl", "log-level", 1000ms);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("no control socket at"), std::string::npos);
  auto too_long = ControlSocket::open(dir.path() + "/" + std::string(200, 'x'));
  ASSERT_FALSE(too_long.has_value());
}

}  // namespace
}  // namespace vpcguard
