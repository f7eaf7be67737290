// The JSON-RPC client against a scripted server on a unix socket: echo answered, notifications
// that arrive before a reply are queued, back-to-back requests are not delayed, a dead server
// is noticed, and per-operation errors name the operation.
#include "ovs-plugin/ovsdb_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "ovs-plugin/json_stream.h"

namespace vpcguard::ovs {
namespace {

using namespace std::chrono_literals;

// One-connection JSON-RPC server. The test either drives it from its own thread (for requests
// the client blocks on) or step by step.
class ScriptedServer {
 public:
  ScriptedServer() {
    char tmpl[] = "/tmp/vgt.XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/s.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
  }
  ~ScriptedServer() {
    if (thread_.joinable()) {
      thread_.join();
    }
    closeConnection();
    close(listen_fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  std::string target() const { return "unix:" + path_; }
  void accept() { conn_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC); }
  void send(const Json& msg) {
    const std::string text = msg.dump();
    ASSERT_EQ(::send(conn_, text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }
  // Next message from the client, or null after `timeout`.
  Json receive(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (queue_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{conn_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
        return Json();
      }
      char buf[4096];
      ssize_t n = ::recv(conn_, buf, sizeof buf, 0);
      if (n <= 0) {
        return Json();
      }
      auto msgs = splitter_.feed(std::string_view(buf, static_cast<size_t>(n)));
      if (!msgs) {
        return Json();
      }
      for (auto& m : *msgs) {
        queue_.push_back(Json::parse(m));
      }
    }
    Json m = queue_.front();
    queue_.erase(queue_.begin());
    return m;
  }
  // Runs `script` on a server thread (joined by the destructor).
  void runInThread(std::function<void(ScriptedServer&)> script) {
    thread_ = std::thread([this, script = std::move(script)] { script(*this); });
  }
  void closeConnection() {
    if (conn_ >= 0) {
      close(conn_);
      conn_ = -1;
    }
  }

 private:
  std::string dir_;
  std::string path_;
  int listen_fd_ = -1;
  int conn_ = -1;
  JsonStreamSplitter splitter_;
  std::vector<Json> queue_;
  std::thread thread_;
};

std::unique_ptr<OvsdbClient> connectTo(const ScriptedServer& server) {
  OvsdbOptions options;
  options.request_timeout = 5s;
  auto c = connectOvsdb(server.target(), options);
  EXPECT_TRUE(c.has_value()) << c.error().message;
  return c ? std::move(*c) : nullptr;
}

TEST(OvsdbClient, AnswersEchoRequests) {
  ScriptedServer server;
  auto client = connectTo(server);
  ASSERT_TRUE(client);
  server.accept();
  server.send(Json{{"method", "echo"}, {"params", Json::array({"x"})}, {"id", "echo"}});
  auto updates = client->poll(1s);
  ASSERT_TRUE(updates.has_value());
  EXPECT_TRUE(updates->empty());
  Json reply = server.receive();
  EXPECT_EQ(reply["id"], "echo");
  EXPECT_EQ(reply["result"], Json::array({"x"}));
  EXPECT_TRUE(reply["error"].is_null());
}

// A server silent for a second gets a liveness probe; unanswered() counts from then until any
// message arrives (a stopped ovsdb-server keeps the socket open and answers nothing).
TEST(OvsdbClient, ASilentServerIsProbedAndItsSilenceMeasured) {
  ScriptedServer server;
  auto client = connectTo(server);
  ASSERT_TRUE(client);
  server.accept();
  EXPECT_EQ(client->unanswered(), 0ms);
  ASSERT_TRUE(client->poll(1100ms).has_value());  // silent for over a second: the probe goes out
  Json probe = server.receive();
  EXPECT_EQ(probe["method"], "echo") << probe.dump();
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(client->poll(0ms).has_value());
  EXPECT_GE(client->unanswered(), 250ms);
  ASSERT_TRUE(client->poll(0ms).has_value());
  server.send(Json{{"id", probe["id"]}, {"result", Json::array()}, {"error", nullptr}});
  ASSERT_TRUE(client->poll(1s).has_value());
  EXPECT_EQ(client->unanswered(), 0ms);
}

TEST(OvsdbClient, UpdatesBeforeTheReplyAreQueuedAndRequestsAreNotDelayed) {
  ScriptedServer server;
  auto client = connectTo(server);
  ASSERT_TRUE(client);
  server.runInThread([](ScriptedServer& s) {
    s.accept();
    for (int i = 0; i < 20; ++i) {
      Json req = s.receive();
      if (req.is_null()) {
        return;
      }
      s.send(Json{{"method", "update"},
                  {"params", Json::array({"mon", Json{{"T", Json::object()}}})},
                  {"id", nullptr}});
      s.send(Json{{"id", req["id"]}, {"result", Json::array({"Open_vSwitch"})}, {"error", nullptr}});
    }
  });
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto dbs = client->listDbs();
    ASSERT_TRUE(dbs.has_value()) << dbs.error().message;
    EXPECT_EQ(dbs->size(), 1u);
  }
  // Each reply is answered at once; a client that waited for more input after the reply would
  // take a request timeout per call.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  auto updates = client->poll(0ms);
  ASSERT_TRUE(updates.has_value());
  EXPECT_EQ(updates->size(), 20u);
  EXPECT_EQ((*updates)[0].monitor_id, "mon");
}

TEST(OvsdbClient, OperationErrorsNameTheOperation) {
  ScriptedServer server;
  auto client = connectTo(server);
  ASSERT_TRUE(client);
  server.runInThread([](ScriptedServer& s) {
    s.accept();
    Json req = s.receive();
    s.send(Json{{"id", req["id"]},
                {"result", Json::array({Json{{"count", 1}},
                                        Json{{"error", "constraint violation"},
                                             {"details", "name must be unique"}},
                                        nullptr})},
                {"error", nullptr}});
  });
  auto r = client->transact("Open_vSwitch",
                            Json::array({Json{{"op", "update"}, {"table", "Bridge"}},
                                         Json{{"op", "insert"}, {"table", "Port"}},
                                         Json{{"op", "comment"}}}));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "transaction on Open_vSwitch failed: operation 1 (insert into Port): constraint "
            "violation: name must be unique");
}

TEST(OvsdbClient, ServerGoingAwayIsDetected) {
  ScriptedServer server;
  auto client = connectTo(server);
  ASSERT_TRUE(client);
  server.accept();
  server.closeConnection();
  auto r = client->poll(2s);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("closed by the server"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(client->fd(), -1);
}

TEST(OvsdbClient, UnansweredRequestTimesOut) {
  ScriptedServer server;
  OvsdbOptions options;
  options.request_timeout = 200ms;
  auto c = connectOvsdb(server.target(), options);
  ASSERT_TRUE(c.has_value());
  server.accept();
  auto r = (*c)->listDbs();
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace vpcguard::ovs
