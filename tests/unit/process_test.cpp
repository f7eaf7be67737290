// The harness's process helpers: output capture, exit codes, timeouts, and children that die
// with their owner.
#include "tests/harness/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace vpcguard::test {
namespace {

TEST(Run, CapturesStdoutAndStderrAndExitCode) {
  auto r = run("echo out; echo err >&2; exit 3");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "out\nerr\n");
  EXPECT_TRUE(run("true").ok());
}

TEST(Run, TimeoutKillsTheWholeCommand) {
  const auto start = std::chrono::steady_clock::now();
  auto r = run("sleep 30 & sleep 30", std::chrono::seconds(1));
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_NE(r.output.find("timed out"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(Run, CheckedCarriesCommandAndOutput) {
  auto r = runChecked("echo boom; false");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("echo boom; false"), std::string::npos);
  EXPECT_NE(r.error().message.find("boom\n"), std::string::npos);
}

TEST(ShellQuote, SurvivesQuotes) {
  EXPECT_EQ(run("printf %s " + shellQuote("it's a \"test\" $HOME")).output,
            "it's a \"test\" $HOME");
}

TEST(ChildProcess, RunsAndIsKilled) {
  auto child = ChildProcess::spawn({{"sleep", "30"}, {}, ""});
  ASSERT_TRUE(child.has_value()) << child.error().message;
  EXPECT_TRUE((*child)->running());
  (*child)->kill();
  EXPECT_FALSE((*child)->running());
}

TEST(ChildProcess, PassesEnvironmentAndOutput) {
  char tmpl[] = "/tmp/vgt.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto child = ChildProcess::spawn({{"sh", "-c", "echo $VGT_X"}, {"VGT_X=hello"}, dir + "/out"});
  ASSERT_TRUE(child.has_value());
  EXPECT_TRUE((*child)->waitExit(std::chrono::seconds(10)));
  EXPECT_EQ(run("cat " + dir + "/out").output, "hello\n");
  (void)run("rm -rf " + dir);
}

// A child of a process that dies (as a test killed by ctest would) dies too.
TEST(ChildProcess, DiesWithItsParent) {
  char tmpl[] = "/tmp/vgt.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    auto child = ChildProcess::spawn({{"sh", "-c", "echo $$ > " + dir + "/pid; exec sleep 60"}, {}, ""});
    if (child) {
      (void)waitFor([&] { return run("test -s " + dir + "/pid").ok(); }, std::chrono::seconds(10));
    }
    _exit(0);  // no destructors: like a SIGKILLed test
  }
  int status = 0;
  waitpid(helper, &status, 0);
  const std::string pid = run("cat " + dir + "/pid").output;
  ASSERT_FALSE(pid.empty());
  EXPECT_TRUE(waitFor([&] { return !run("kill -0 " + pid).ok(); }, std::chrono::seconds(10)))
      << "child " << pid << " outlived its parent";
  (void)run("rm -rf " + dir);
}

}  // namespace
}  // namespace vpcguard::test
