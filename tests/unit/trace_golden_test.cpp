// `vpcguardctl trace` of configs/lab.toml against tests/golden/lab.trace: a change in what a
// trace says (a verdict, a deciding rule, the wording) shows up as a diff there; regenerate with
// tests/golden/regenerate.sh after checking it is the intended change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon/config_loader.h"
#include "explain/trace.h"
#include "tests/harness/paths.h"

namespace vpcguard::test {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(TraceGolden, LabConfigTracesMatchTheGoldenFile) {
  // Loaded by its path relative to the repository, as regenerate.sh does, so the locations in
  // the traces do not depend on where the checkout is.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(sourceDir());
  auto policy = config::loadPolicy("configs/lab.toml");
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(policy) << policy.error().toError().message;
  std::ifstream queries(sourceDir() + "/tests/golden/lab.trace-queries");
  ASSERT_TRUE(queries) << "missing tests/golden/lab.trace-queries";
  std::string expected = readFile(sourceDir() + "/tests/golden/lab.trace");
  ASSERT_FALSE(expected.empty()) << "missing golden file; run tests/golden/regenerate.sh";

  std::string actual;
  std::string line;
  int traced = 0;
  while (std::getline(queries, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::istringstream words(line);
    explain::TraceRequest request;
    std::string extra;
    words >> request.from >> request.to >> request.protocol >> extra;
    request.reply = extra == "--reply";
    auto result = explain::trace(*policy, request);
    ASSERT_TRUE(result) << line << ": " << result.error().message;
    actual += "$ trace --from " + request.from + " --to " + request.to + " " + request.protocol +
              (extra.empty() ? "" : " " + extra) + "\n" + explain::renderText(*result) + "\n";
    ++traced;
  }
  EXPECT_GE(traced, 10);
  EXPECT_EQ(actual, expected)
      << "traces differ from tests/golden/lab.trace; if intended, run "
         "tests/golden/regenerate.sh and review the diff";
}

}  // namespace
}  // namespace vpcguard::test
