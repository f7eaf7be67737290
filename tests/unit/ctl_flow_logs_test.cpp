// `vpcguardctl flow-logs`, run as users run it: the built binary on a destination directory.

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "flowlogs/sink.h"
#include "tests/harness/paths.h"

namespace vpcguard {
namespace {

namespace fs = std::filesystem;

struct CtlRun {
  int exit_code = -1;
  std::string out;  // stdout only
  std::string err;  // stderr
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

// See ctl_check_test.cpp: the compiled-in path unless ctest sets VPCGUARD_BINARY_DIR.
std::string ctlPath() {
  if (std::getenv("VPCGUARD_BINARY_DIR") != nullptr) {
    return test::programPath("vpcguardctl");
  }
  return VPCGUARD_CTL_PATH;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class CtlFlowLogs : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vpcguard-ctl-fl-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    flowlog::FileSink sink(dir_.string());
    flowlog::LogFile f;
    f.flow_log_id = "fl-1";
    f.account_id = "123456789012";
    f.region = "us-east-1";
    f.interval_start = 1620000000;
    f.header =
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
        "bytes start end action log-status";
    f.lines = {
        "2 123456789012 eni-web1 10.0.1.5 10.0.2.10 49152 5432 6 10 840 1620000005 1620000050 "
        "ACCEPT OK",
        "2 123456789012 eni-bastion 10.0.0.5 10.0.2.10 50000 5432 6 1 60 1620000001 1620000001 "
        "REJECT OK",
        "2 123456789012 eni-db - - - - - - - 1620000000 1620000060 - NODATA"};
    ASSERT_TRUE(sink.publish(f).has_value());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  CtlRun run(const std::string& args) const {
    CtlRun r;
    const fs::path err_file = dir_ / ".stderr";
    const std::string cmd =
        quote(ctlPath()) + " flow-logs " + args + " 2>" + quote(err_file.string());
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
      ADD_FAILURE() << "popen failed: " << cmd;
      return r;
    }
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
      r.out.append(buf.data(), n);
    }
    const int status = pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = slurp(err_file);
    fs::remove(err_file);
    return r;
  }

  fs::path dir_;
};

TEST_F(CtlFlowLogs, TableSortedByStartThenInterface) {
  const CtlRun r = run(quote(dir_.string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Header, then eni-db (start ...000), eni-bastion (...001), eni-web1 (...005), aligned.
  const std::string expected =
      "version  account-id    interface-id  srcaddr   dstaddr    srcport  dstport  protocol  "
      "packets  bytes  start       end         action  log-status\n"
      "2        123456789012  eni-db        -         -          -        -        -         "
      "-        -      1620000000  1620000060  -       NODATA\n"
      "2        123456789012  eni-bastion   10.0.0.5  10.0.2.10  50000    5432     6         "
      "1        60     1620000001  1620000001  REJECT  OK\n"
      "2        123456789012  eni-web1      10.0.1.5  10.0.2.10  49152    5432     6         "
      "10       840    1620000005  1620000050  ACCEPT  OK\n";
  EXPECT_EQ(r.out, expected);
}

TEST_F(CtlFlowLogs, JsonFilteredByActionAndTime) {
  const CtlRun r = run(quote(dir_.string()) +
                       " --action REJECT --since 2021-05-03T00:00:00Z --until 1620000030 "
                       "--output json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"version\":\"2\",\"account-id\":\"123456789012\",\"interface-id\":\"eni-bastion\","
            "\"srcaddr\":\"10.0.0.5\",\"dstaddr\":\"10.0.2.10\",\"srcport\":\"50000\","
            "\"dstport\":\"5432\",\"protocol\":\"6\",\"packets\":\"1\",\"bytes\":\"60\","
            "\"start\":\"1620000001\",\"end\":\"1620000001\",\"action\":\"REJECT\","
            "\"log-status\":\"OK\"}\n");
}

TEST_F(CtlFlowLogs, TextByInterfaceAndFlowLogId) {
  CtlRun r = run(quote(dir_.string()) + " --interface eni-web1 --flow-log-id fl-1 --output text");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "2 123456789012 eni-web1 10.0.1.5 10.0.2.10 49152 5432 6 10 840 1620000005 "
            "1620000050 ACCEPT OK\n");
  r = run(quote(dir_.string()) + " --flow-log-id fl-other --output text");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
}

TEST_F(CtlFlowLogs, CorruptFileNamedExitOneOthersPrinted) {
  const fs::path bad = dir_ / "bad.log.gz";
  std::ofstream(bad) << "garbage";
  const CtlRun r = run(quote(dir_.string()) + " --output text");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("eni-web1"), std::string::npos);
}

TEST_F(CtlFlowLogs, MissingDirectoryAndBadTime) {
  CtlRun r = run(quote((dir_ / "missing").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find((dir_ / "missing").string()), std::string::npos) << r.err;
  r = run(quote(dir_.string()) + " --since yesterday");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("yesterday"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vpcguard
