// vpcguardctl stats/lint/trace against a switch that does not answer: the command gives up
// with a clear message within its deadline (4 x --timeout-ms) instead of hanging, and refuses
// deadlines that would mean "wait forever".
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/harness/paths.h"
#include "tests/harness/process.h"

namespace vpcguard::test {
namespace {

// A Unix socket that greets every client with an OpenFlow 1.3 hello and then says nothing: what
// a hung ovs-vswitchd looks like after the connection is made.
class SilentSwitch {
 public:
  SilentSwitch() {
    dir_ = std::filesystem::temp_directory_path() /
           ("vgt-silent-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "br-int.mgmt").string();
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 8) == 0;
    if (ok_) {
      thread_ = std::thread([this] { serve(); });
    }
  }
  ~SilentSwitch() {
    stop_ = true;
    if (fd_ >= 0) {
      ::shutdown(fd_, SHUT_RDWR);
      ::close(fd_);
    }
    if (thread_.joinable()) {
      thread_.join();
    }
    for (int c : clients_) {
      ::close(c);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SilentSwitch(const SilentSwitch&) = delete;
  SilentSwitch& operator=(const SilentSwitch&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::string target() const { return "unix:" + path_; }
  [[nodiscard]] std::string dir() const { return dir_.string(); }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      const unsigned char hello[8] = {4, 0, 0, 8, 0, 0, 0, 1};  // OF1.3 HELLO, xid 1
      (void)!::write(c, hello, sizeof(hello));
      clients_.push_back(c);
    }
  }

  std::filesystem::path dir_;
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> clients_;
};

TEST(CtlAgainstAHungSwitch, StatsGivesUpWithinItsDeadline) {
  SilentSwitch hung;
  ASSERT_TRUE(hung.ok()) << "cannot listen on a Unix socket";
  const auto start = std::chrono::steady_clock::now();
  auto r = run(programPath("vpcguardctl") + " stats --config " + sourceDir() +
                   "/configs/lab.toml --openflow " + hung.target() + " --ovsdb unix:" +
                   hung.dir() + "/db.sock --status-file " + hung.dir() +
                   "/none.status.json --timeout-ms 300",
               std::chrono::seconds(30));
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("did not answer in time"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 10.0) << r.output;
}

TEST(CtlAgainstAHungSwitch, DeadlinesThatMeanForeverAreRefused) {
  for (const char* value : {"0", "-1"}) {
    auto r = run(programPath("vpcguardctl") + " stats --timeout-ms " + value);
    EXPECT_NE(r.exit_code, 0) << value << ": " << r.output;
    EXPECT_NE(r.output.find("--timeout-ms"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace vpcguard::test
