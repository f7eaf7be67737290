// appctl() against stand-in unixctl servers on a unix socket (no OVS needed): a reply, an error
// reply, a server that never answers (the deadline holds), one that hangs up (no SIGPIPE, a
// clear error), a socket nobody listens on; and vswitchdControlSocket() on pid files.
// The same calls against a real ovs-vswitchd: tests/integration/appctl_test.cpp.
#include "ovs-plugin/appctl.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "ovs-plugin/json_stream.h"
#include "ovs-plugin/ovsdb_client.h"

namespace vpcguard::ovs {
namespace {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vgt.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A listening unix socket; `serve` (if given) runs on its own thread with each accepted
// connection, for at most one connection.
class StandInServer {
 public:
  explicit StandInServer(const std::string& path,
                         const std::function<void(int conn)>& serve = nullptr, int backlog = 4)
      : path_(path) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, backlog), 0);
    if (serve) {
      thread_ = std::thread([this, serve] {
        pollfd pfd{listen_fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 10000) != 1) {
          return;
        }
        const int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn >= 0) {
          serve(conn);
          ::close(conn);
        }
      });
    }
  }
  ~StandInServer() {
    if (thread_.joinable()) {
      thread_.join();
    }
    closeListener();
  }
  StandInServer(const StandInServer&) = delete;
  StandInServer& operator=(const StandInServer&) = delete;

  // The socket file stays; connecting to it is then refused.
  void closeListener() {
    if (listen_fd_ >= 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
    }
  }

 private:
  std::string path_;
  int listen_fd_ = -1;
  std::thread thread_;
};

// Reads one JSON-RPC request from `conn` (null when the peer hangs up or nothing comes).
Json readRequest(int conn) {
  JsonStreamSplitter splitter;
  char buf[4096];
  for (;;) {
    pollfd pfd{conn, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) != 1) {
      return Json();
    }
    const ssize_t n = ::recv(conn, buf, sizeof buf, 0);
    if (n <= 0) {
      return Json();
    }
    auto msgs = splitter.feed(std::string_view(buf, static_cast<size_t>(n)));
    if (msgs && !msgs->empty()) {
      return Json::parse(msgs->front());
    }
  }
}

void sendJson(int conn, const Json& msg) {
  const std::string text = msg.dump();
  EXPECT_EQ(::send(conn, text.data(), text.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(text.size()));
}

bool sigpipePending() {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

TEST(Appctl, ReplyAndErrorReply) {
  TempDir dir;
  const std::string path = dir.path() + "/ctl";
  Json seen;
  {
    StandInServer server(path, [&](int conn) {
      seen = readRequest(conn);
      // unixctl replies end with a newline; an error is in "error" with a null result.
      sendJson(conn, Json{{"id", seen["id"]}, {"result", "42 things\n"}, {"error", nullptr}});
    });
    auto r = appctl(path, "vg/count", {"a b", "c"}, 5s);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(*r, "42 things\n");
  }
  EXPECT_EQ(seen["method"], "vg/count");
  EXPECT_EQ(seen["params"], Json::array({"a b", "c"}));

  {
    StandInServer server(path + "2", [&](int conn) {
      const Json req = readRequest(conn);
      sendJson(conn, Json{{"id", req["id"]},
                          {"result", nullptr},
                          {"error", "Error while inserting route.\n"}});
    });
    auto r = appctl(path + "2", "ovs/route/add", {"10.0.0.0/8", "br0"}, 5s);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message, "ovs-appctl -t " + path +
                                     "2 ovs/route/add 10.0.0.0/8 br0: Error while inserting "
                                     "route.");
  }
}

TEST(Appctl, ServerThatNeverAnswersTimesOut) {
  TempDir dir;
  const std::string path = dir.path() + "/ctl";
  // Listening but never accepting: the connection completes (backlog), no reply ever comes.
  StandInServer server(path);
  const auto start = std::chrono::steady_clock::now();
  auto r = appctl(path, "version", {}, 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("no reply within 300 ms"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("version"), std::string::npos) << r.error().message;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 5s);
}

TEST(Appctl, ServerWithAFullAcceptQueueFailsAtOnce) {
  TempDir dir;
  const std::string path = dir.path() + "/ctl";
  // A hung server's accept queue fills up with the connections of calls that gave up; then
  // connecting fails at once, and says why.
  StandInServer server(path, nullptr, /*backlog=*/0);
  std::string last;
  for (int i = 0; i < 8 && last.find("not accepting") == std::string::npos; ++i) {
    auto r = appctl(path, "version", {}, 50ms);
    ASSERT_FALSE(r.has_value());
    last = r.error().message;
  }
  EXPECT_NE(last.find("cannot connect: the server is not accepting connections"), std::string::npos)
      << last;
}

TEST(Appctl, ServerThatHangsUpIsAnErrorNotASignal) {
  TempDir dir;
  const std::string path = dir.path() + "/ctl";
  // The request is larger than the socket buffers, so the client is still writing when the
  // server closes: send() fails with EPIPE, which would raise SIGPIPE without the guard.
  StandInServer server(path, [](int /*conn*/) {});
  const std::string big(8 << 20, 'x');
  ASSERT_FALSE(sigpipePending());
  auto r = appctl(path, "version", {big}, 5s);
  ASSERT_FALSE(r.has_value());
  // Depending on when the hang-up is seen: while connecting, sending or receiving.
  const std::string& msg = r.error().message;
  EXPECT_TRUE(msg.find("closed the connection") != std::string::npos ||
              msg.find("Broken pipe") != std::string::npos ||
              msg.find("Connection reset") != std::string::npos)
      << msg;
  EXPECT_LT(r.error().message.size(), 400u);  // the payload is not repeated in the error
  EXPECT_FALSE(sigpipePending());
  // The caller's signal mask is as it was.
  sigset_t mask;
  sigemptyset(&mask);
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  EXPECT_FALSE(sigismember(&mask, SIGPIPE));
}

TEST(Appctl, NoServerGivesClearErrors) {
  TempDir dir;
  auto missing = appctl(dir.path() + "/nothing.ctl", "version", {}, 1s);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "ovs-appctl -t " + dir.path() +
                                         "/nothing.ctl version: cannot connect: No such file or "
                                         "directory");

  // A socket file left behind by a server that is gone.
  const std::string stale = dir.path() + "/stale.ctl";
  StandInServer server(stale);
  server.closeListener();
  auto refused = appctl(stale, "version", {}, 1s);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("Connection refused"), std::string::npos)
      << refused.error().message;
}

TEST(VswitchdControlSocket, FromPidFile) {
  TempDir dir;
  const std::string& rundir = dir.path();
  auto none = vswitchdControlSocket(rundir);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find(rundir + "/ovs-vswitchd.pid: No such file"),
            std::string::npos)
      << none.error().message;

  std::ofstream(rundir + "/ovs-vswitchd.pid") << "garbage\n";
  auto bad = vswitchdControlSocket(rundir);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("does not hold a pid: \"garbage\""), std::string::npos)
      << bad.error().message;

  std::ofstream(rundir + "/ovs-vswitchd.pid") << "4242\n";
  auto stale = vswitchdControlSocket(rundir);
  ASSERT_FALSE(stale.has_value());
  EXPECT_NE(stale.error().message.find(rundir + "/ovs-vswitchd.4242.ctl: No such file"),
            std::string::npos)
      << stale.error().message;
  EXPECT_NE(stale.error().message.find("stale pid file"), std::string::npos);

  std::ofstream(rundir + "/ovs-vswitchd.4242.ctl") << "";
  auto not_socket = vswitchdControlSocket(rundir);
  ASSERT_FALSE(not_socket.has_value());
  EXPECT_NE(not_socket.error().message.find("is not a unix socket"), std::string::npos);
  std::filesystem::remove(rundir + "/ovs-vswitchd.4242.ctl");

  StandInServer server(rundir + "/ovs-vswitchd.4242.ctl");
  auto found = vswitchdControlSocket(rundir);
  ASSERT_TRUE(found.has_value()) << found.error().message;
  EXPECT_EQ(*found, rundir + "/ovs-vswitchd.4242.ctl");

  EXPECT_FALSE(vswitchdControlSocket("").has_value());
}

}  // namespace
}  // namespace vpcguard::ovs
