// The translator's output for the sample configs, compared line by line with the reviewed
// golden files. A change in flows shows up as a diff in tests/golden/*.flows;
// regenerate with tests/golden/regenerate.sh after checking it is the intended change.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "tests/harness/paths.h"
#include "translator/translate.h"

namespace vpcguard {
namespace {

std::vector<std::string> lines(std::istream& in) {
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, TranslationMatches) {
  const std::string name = GetParam();
  auto policy = config::loadPolicy(test::sourceDir() + "/configs/" + name + ".toml");
  ASSERT_TRUE(policy) << policy.error().toError().message;
  TranslateInput in;
  in.policy = &*policy;
  in.interface_index = *assignInterfaceIndices(*policy, {});
  int port = 1;
  for (const auto& eni : policy->network_interfaces) {
    in.ofports[eni.id] = port++;
  }
  auto t = translate(in);
  ASSERT_TRUE(t) << t.error().message;
  std::stringstream actual_text;
  for (const auto& f : t->flows) {
    actual_text << toOfctlText(f) << "\n";
  }
  std::ifstream golden_file(test::sourceDir() + "/tests/golden/" + name + ".flows");
  ASSERT_TRUE(golden_file) << "missing golden file; run tests/golden/regenerate.sh";
  const auto expected = lines(golden_file);
  const auto actual = lines(actual_text);
  for (size_t i = 0; i < std::max(expected.size(), actual.size()); ++i) {
    const std::string e = i < expected.size() ? expected[i] : "<none>";
    const std::string a = i < actual.size() ? actual[i] : "<none>";
    ASSERT_EQ(a, e) << "first difference at line " << i + 1 << " of tests/golden/" << name
                    << ".flows; if intended, run tests/golden/regenerate.sh and review the diff";
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, Golden, ::testing::Values("lab"));

}  // namespace
}  // namespace vpcguard
