// The status file's JSON and `vpcguardctl status`'s verdict.
#include "daemon/status.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

namespace vpcguard {
namespace {

DaemonStatus healthy() {
  DaemonStatus s;
  s.pid = static_cast<int>(::getpid());  // a running process
  s.bridge = "br-int";
  s.connected = true;
  s.generation = 7;
  s.flows_per_table = {{0, 3}, {90, 2}};
  s.drift_repairs = 4;
  s.last_repair = "2026-12-02T10:00:00Z (drift: added 1, changed 0, removed 0)";
  s.flow_monitor = true;
  return s;
}

TEST(Status, JsonRoundTripKeepsEveryField) {
  const DaemonStatus s = healthy();
  auto back = statusFromJson(statusToJson(s));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->generation, 7);
  EXPECT_EQ(back->flows_per_table, s.flows_per_table);
  EXPECT_EQ(back->drift_repairs, 4U);
  EXPECT_EQ(back->last_repair, s.last_repair);
  EXPECT_TRUE(back->flow_monitor);
  EXPECT_FALSE(back->flow_restore_wait);
}

class StatusCommand : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  int run(const DaemonStatus& s, std::string* text) {
    EXPECT_TRUE(writeStatusFile(path_, s).has_value());
    std::ostringstream out;
    std::ostringstream err;
    const int rc = runStatusCommand(StatusCommandOptions{path_, "br-int", "text"}, out, err);
    *text = out.str() + err.str();
    return rc;
  }
  std::string path_ = std::filesystem::temp_directory_path() /
                      ("vgt-status-" + std::to_string(::getpid()) + ".json");
};

TEST_F(StatusCommand, HealthyIsZeroAndShowsRepairsAndMonitor) {
  std::string text;
  EXPECT_EQ(run(healthy(), &text), 0) << text;
  EXPECT_NE(text.find("drift repairs  4, last 2026-12-02T10:00:00Z"), std::string::npos) << text;
  EXPECT_NE(text.find("flow monitor on"), std::string::npos) << text;
  EXPECT_NE(text.find("generation     7"), std::string::npos) << text;
}

TEST_F(StatusCommand, FlowRestoreWaitStillSetIsAProblem) {
  DaemonStatus s = healthy();
  s.flow_restore_wait = true;
  std::string text;
  EXPECT_EQ(run(s, &text), 1) << text;
  EXPECT_NE(text.find("flow-restore-wait  STILL SET"), std::string::npos) << text;
}

TEST_F(StatusCommand, MonitorOffIsShown) {
  DaemonStatus s = healthy();
  s.flow_monitor = false;
  std::string text;
  EXPECT_EQ(run(s, &text), 0) << text;
  EXPECT_NE(text.find("OFF: only the periodic check sees drift"), std::string::npos) << text;
}

}  // namespace
}  // namespace vpcguard
