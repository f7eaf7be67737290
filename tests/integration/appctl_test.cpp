// appctl() against the sandbox's real ovs-vswitchd. The switch runs in a network namespace of
// its own and the test in the host's, so every call here also shows that the unixctl socket
// works across namespaces.
#include "ovs-plugin/appctl.h"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"

namespace vpcguard::test {
namespace {

class AppctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
  }

  std::unique_ptr<OvsSandbox> sandbox_;
};

TEST_F(AppctlTest, VersionAnswersThroughTheSocketFromThePidFile) {
  VGT_ASSIGN_OR_FAIL(const std::string socket, ovs::vswitchdControlSocket(sandbox_->dir()));
  EXPECT_EQ(socket, sandbox_->vswitchdCtl());
  VGT_ASSIGN_OR_FAIL(const std::string version, ovs::appctl(socket, "version", {}, 10s));
  EXPECT_EQ(version.rfind("ovs-vswitchd (Open vSwitch) ", 0), 0u) << version;
}

TEST_F(AppctlTest, ServerErrorsAreReturnedAsTheirText) {
  const std::string socket = sandbox_->vswitchdCtl();
  // ovs-vswitchd registers its route commands when its datapath layer starts, on its first
  // pass over the database after `version` already answers (on a loaded machine CI once called
  // ovs/route/add before that and got "not a valid command").
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!ovs::appctl(socket, "ovs/route/show", {}, 10s).has_value() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  auto no_device = ovs::appctl(socket, "ovs/route/add", {"10.99.0.0/16", "vgt-no-such-dev"}, 10s);
  ASSERT_FALSE(no_device.has_value());
  EXPECT_EQ(no_device.error().message, "ovs-appctl -t " + socket +
                                           " ovs/route/add 10.99.0.0/16 vgt-no-such-dev: Error "
                                           "while inserting route.");

  auto garbage = ovs::appctl(socket, "ovs/route/add", {"garbage", "br0"}, 10s);
  ASSERT_FALSE(garbage.has_value());
  EXPECT_NE(garbage.error().message.find(": Invalid parameters"), std::string::npos)
      << garbage.error().message;

  auto unknown = ovs::appctl(socket, "vgt/no-such-command", {}, 10s);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message.find("is not a valid command"), std::string::npos)
      << unknown.error().message;

  // The switch is fine afterwards.
  EXPECT_TRUE(ovs::appctl(socket, "version", {}, 10s).has_value());
}

TEST_F(AppctlTest, MissingSocketAndPidFileGiveClearErrors) {
  const std::string missing = sandbox_->dir() + "/ovs-vswitchd.999999999.ctl";
  auto r = ovs::appctl(missing, "version", {}, 2s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "ovs-appctl -t " + missing + " version: cannot connect: No such file or directory");

  auto no_pidfile = ovs::vswitchdControlSocket(sandbox_->dir() + "/nowhere");
  ASSERT_FALSE(no_pidfile.has_value());
  EXPECT_NE(no_pidfile.error().message.find("ovs-vswitchd.pid: No such file"), std::string::npos)
      << no_pidfile.error().message;
}

// Resumes a SIGSTOPped process when it goes out of scope, also when an assertion fails.
class Stopped {
 public:
  explicit Stopped(pid_t pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }
  ~Stopped() { ::kill(pid_, SIGCONT); }
  Stopped(const Stopped&) = delete;
  Stopped& operator=(const Stopped&) = delete;

 private:
  pid_t pid_;
};

TEST_F(AppctlTest, HungVswitchdTimesOut) {
  const std::string socket = sandbox_->vswitchdCtl();
  pid_t pid = 0;
  std::ifstream(sandbox_->dir() + "/ovs-vswitchd.pid") >> pid;
  ASSERT_GT(pid, 0);
  {
    const Stopped stopped(pid);
    const auto start = std::chrono::steady_clock::now();
    auto r = ovs::appctl(socket, "version", {}, 500ms);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("no reply within 500 ms"), std::string::npos)
        << r.error().message;
    EXPECT_GE(took, 490ms);
    EXPECT_LT(took, 5s);
  }
  // Resumed, it answers again (the request we gave up on did not upset it).
  VGT_ASSIGN_OR_FAIL(const std::string version, ovs::appctl(socket, "version", {}, 10s));
  EXPECT_NE(version.find("Open vSwitch"), std::string::npos);
}

}  // namespace
}  // namespace vpcguard::test
