// config::PolicyLoader: a reload of a config directory parses only the files that changed, and
// gives exactly what a fresh loadPolicy() of the same files gives: the same policy, or the same
// diagnostics with the same file, line and column.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "state/store.h"
#include "tests/harness/paths.h"
#include "tests/harness/temp_dir.h"

namespace vpcguard::config {
namespace {

namespace fs = std::filesystem;

using ConfigDir = test::TempDir;

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every object kind the loader knows, one top-level table per file ("000.toml", "001.toml", ...,
// cut where a line starts a table such as [vpc] or [[subnets]]): the lab, its mirroring and flow
// logs, and a prefix list and quotas.
void writeEveryKindOneTablePerFile(const ConfigDir& dir) {
  const std::string text =
      readFile(test::sourceDir() + "/configs/lab.toml") +
      readFile(test::sourceDir() + "/configs/lab-mirror/mirror.toml") +
      readFile(test::sourceDir() + "/configs/lab-flowlogs/flow-logs.toml") +
      "[[prefix_lists]]\nid = \"pl-office\"\nmax_entries = 5\nentries = [\"192.0.2.0/24\"]\n"
      "[quotas]\nrules_per_network_acl = 30\n";
  static const std::regex kTopLevel(R"(^\[\[?[a-z_]+\]\]?$)");
  std::vector<std::string> files(1);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, kTopLevel) && !files.back().empty()) {
      files.emplace_back();
    }
    files.back() += line + "\n";
  }
  ASSERT_GT(files.size(), 20u);
  for (size_t i = 0; i < files.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%03zu.toml", i);
    dir.write(name, files[i]);
  }
}

// The whole policy as the state database would store it: every field of every object, but no
// source locations (which differ by design: a reused file's objects keep theirs).
std::string stored(const model::Policy& policy) {
  return state::changeOperations(state::Replica{}, policy).dump();
}

// The file of `dir` that defines security group `id` (not one that merely references it).
std::string fileDefiningGroup(const ConfigDir& dir, const std::string& id) {
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (readFile(entry.path()).find("\nid = \"" + id + "\"") != std::string::npos) {
      return entry.path().filename();
    }
  }
  return "";
}

// The loader's result equals a fresh loadPolicy() of the same directory.
void expectSameAsFreshLoad(PolicyLoader& loader, const fs::path& dir) {
  auto cached = loader.load(dir);
  auto fresh = loadPolicy(dir);
  ASSERT_EQ(cached.has_value(), fresh.has_value());
  if (fresh.has_value()) {
    EXPECT_EQ(stored(*cached), stored(*fresh));
    return;
  }
  const auto& a = cached.error().diagnostics;
  const auto& b = fresh.error().diagnostics;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(formatDiagnostic(a[i]), formatDiagnostic(b[i]));
  }
}

TEST(PolicyLoader, ReloadParsesOnlyChangedFilesAndMergesAsAFreshLoad) {
  ConfigDir dir("loader");
  writeEveryKindOneTablePerFile(dir);
  const size_t files = static_cast<size_t>(
      std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()));
  PolicyLoader loader;
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, files);
  EXPECT_EQ(loader.lastCounts().reused, 0u);

  // Nothing changed (a SIGHUP): nothing parsed.
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 0u);
  EXPECT_EQ(loader.lastCounts().reused, files);

  // One group gains a rule: that file alone is parsed, and the rule is there.
  const std::string web = fileDefiningGroup(dir, "sg-web");
  ASSERT_FALSE(web.empty());
  dir.write(web, readFile(dir.path() / web) +
                     "\n[[security_groups.ingress]]\nip_protocol = \"tcp\"\n"
                     "from_port = 8443\nto_port = 8443\ncidr_ipv4 = \"198.51.100.0/24\"\n");
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 1u);
  EXPECT_EQ(loader.lastCounts().reused, files - 1);
  auto policy = loader.load(dir.path());
  ASSERT_TRUE(policy.has_value());
  // Objects of files parsed earlier keep their own file and line.
  for (const auto& eni : policy->network_interfaces) {
    const std::string file = fs::path(eni.location.file).filename();
    EXPECT_NE(readFile(dir.path() / file).find("id = \"" + eni.id + "\""), std::string::npos)
        << eni.id << " located in " << file;
    EXPECT_GT(eni.location.line, 0) << eni.id;
  }
  bool found = false;
  for (const auto& g : policy->security_groups) {
    for (const auto& r : g.ingress) {
      found = found || (g.id == "sg-web" && r.ports && r.ports->from == 8443);
    }
  }
  EXPECT_TRUE(found);
}

TEST(PolicyLoader, ProblemsAreReportedAsByAFreshLoadAndTheFixIsPickedUp) {
  ConfigDir dir("loader");
  writeEveryKindOneTablePerFile(dir);
  PolicyLoader loader;
  ASSERT_TRUE(loader.load(dir.path()).has_value());
  const std::string first = readFile(dir.path() / "001.toml");
  const std::string second = readFile(dir.path() / "002.toml");

  // A syntax error in one file; then a type error in another.
  dir.write("001.toml", first + "\nbroken = [\n");
  expectSameAsFreshLoad(loader, dir.path());
  dir.write("001.toml", first);
  dir.write("002.toml", second + "oops = 1\n");
  expectSameAsFreshLoad(loader, dir.path());
  auto bad = loader.load(dir.path());
  ASSERT_FALSE(bad.has_value());
  ASSERT_FALSE(bad.error().diagnostics.empty());
  EXPECT_EQ(fs::path(bad.error().diagnostics[0].location.file).filename(), "002.toml");
  dir.write("002.toml", second);
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 1u);  // only the file that was fixed

  // Valid files, invalid together: an interface's group removed with its file. Validation's
  // diagnostics carry the line of the field, which only the located parse knows.
  const std::string web_file = fileDefiningGroup(dir, "sg-web");
  ASSERT_FALSE(web_file.empty());
  const std::string web = readFile(dir.path() / web_file);
  dir.remove(web_file);
  expectSameAsFreshLoad(loader, dir.path());
  auto dangling = loader.load(dir.path());
  ASSERT_FALSE(dangling.has_value());
  bool located = false;
  for (const auto& d : dangling.error().diagnostics) {
    located = located || (d.message.find("sg-web") != std::string::npos && d.location.line > 1);
  }
  EXPECT_TRUE(located) << dangling.error().toError().message;

  // Put back: loads again, and the same as a fresh load.
  dir.write(web_file, web);
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_TRUE(loader.load(dir.path()).has_value());
}

TEST(PolicyLoader, VpcMovedOrDefinedTwiceAcrossFiles) {
  ConfigDir dir("loader");
  writeEveryKindOneTablePerFile(dir);
  PolicyLoader loader;
  ASSERT_TRUE(loader.load(dir.path()).has_value());
  const std::string vpc_file = "001.toml";  // 000.toml holds the lab's opening comment
  const std::string vpc = readFile(dir.path() / vpc_file);
  ASSERT_EQ(vpc.rfind("[vpc]", 0), 0u) << vpc;

  // [vpc] in two files: the fresh load's error, naming the second file.
  dir.write("zz-second-vpc.toml", vpc);
  expectSameAsFreshLoad(loader, dir.path());
  dir.remove("zz-second-vpc.toml");

  // [vpc] moved to a new last file: that file is parsed, the rest reused.
  dir.remove(vpc_file);
  dir.write("zz-vpc.toml", vpc);
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 1u);
  auto moved = loader.load(dir.path());
  ASSERT_TRUE(moved.has_value()) << moved.error().toError().message;
  EXPECT_EQ(fs::path(moved->vpc.location.file).filename(), "zz-vpc.toml");

  // No [vpc] at all.
  dir.remove("zz-vpc.toml");
  expectSameAsFreshLoad(loader, dir.path());
}

// One file (not a directory) is loaded as loadPolicy() loads it, every time: a cache would
// only add a copy of the policy. A directory reduced to one file drops what it had kept.
TEST(PolicyLoader, SingleFile) {
  ConfigDir dir("loader");
  dir.write("policy.toml", readFile(test::sourceDir() + "/configs/lab.toml"));
  PolicyLoader loader;
  expectSameAsFreshLoad(loader, dir.path() / "policy.toml");
  EXPECT_EQ(loader.lastCounts().parsed, 1u);
  dir.write("policy.toml", readFile(test::sourceDir() + "/configs/lab.toml") + "# edited\n");
  expectSameAsFreshLoad(loader, dir.path() / "policy.toml");
  EXPECT_EQ(loader.lastCounts().parsed, 1u);
  EXPECT_EQ(loader.lastCounts().reused, 0u);
  // As the only file of a directory, then with a second file next to it.
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 1u);
  dir.write("zz-more.toml", "[[prefix_lists]]\nid = \"pl-more\"\nmax_entries = 2\n"
                            "entries = [\"192.0.2.0/24\"]\n");
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 2u);
  dir.write("zz-more.toml", "[[prefix_lists]]\nid = \"pl-more\"\nmax_entries = 3\n"
                            "entries = [\"192.0.2.0/24\"]\n");
  expectSameAsFreshLoad(loader, dir.path());
  EXPECT_EQ(loader.lastCounts().parsed, 1u);
  EXPECT_EQ(loader.lastCounts().reused, 1u);
}

}  // namespace
}  // namespace vpcguard::config
