// vpcguardd against a private OVS: it sets the bridge up, installs the policy, follows interfaces
// coming and going and config changes, keeps the last good policy when a new one is broken,
// repairs drift (foreign flows in its tables included; other tables are left alone), keeps its
// flows when stopped, and survives ovsdb-server restarts and an OVS that is not there yet.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "daemon/status.h"
#include "tests/harness/assertions.h"
#include "tests/harness/flow_check.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/process.h"
#include "translator/translate.h"

namespace vpcguard::test {
namespace {

constexpr const char* kBridge = "br-int";
constexpr const char* kOurs = "cookie=0x7667000000000000/0xffff000000000000";

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    config_ = sandbox_->dir() + "/policy.toml";
    writeConfig(readFile(sourceDir() + "/configs/lab.toml"));
  }
  void TearDown() override {
    daemon_.reset();
    sandbox_.reset();
  }

  static std::string readFile(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void writeConfig(const std::string& text) {
    // Write and rename, as editors do, so the daemon never reads half a file.
    const std::string tmp = config_ + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), config_.c_str()), 0);
  }
  void startDaemon(std::vector<std::string> extra = {}) {
    ChildProcess::Options o;
    o.argv = {programPath("vpcguardd"), "--config", config_, "--bridge", kBridge, "--ovsdb",
              sandbox_->dbTarget(), "--datapath-type", "dummy", "--log-level", "debug",
              "--status-file", statusFile()};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    // One log per start, so a test reads what this run said.
    o.output_path = log_ = sandbox_->dir() + "/vpcguardd-" + std::to_string(++starts_) + ".log";
    VGT_ASSIGN_OR_FAIL(daemon_, ChildProcess::spawn(o));
  }
  std::string flows() {
    auto r = sandbox_->ofctl("dump-flows --no-stats " + sandbox_->bridgeTarget(kBridge) + " " + kOurs);
    return r ? *r : std::string();
  }
  size_t countFlows(const std::string& needle) { return countFlows(needle, flows()); }
  static size_t countFlows(const std::string& needle, const std::string& all) {
    size_t n = 0;
    for (size_t pos = all.find(needle); pos != std::string::npos; pos = all.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }
  bool eventually(const std::function<bool()>& condition, int seconds = 10) {
    return waitFor(condition, std::chrono::seconds(seconds), std::chrono::milliseconds(50));
  }
  std::string log() { return readFile(log_); }
  std::string statusFile() const { return sandbox_->dir() + "/status.json"; }
  Result<DaemonStatus> status() {
    const std::string text = readFile(statusFile());
    if (text.empty()) {
      return makeError("no status file yet");
    }
    return statusFromJson(text);
  }
  size_t countInLog(const std::string& needle) {
    std::istringstream in(log());
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      n += line.find(needle) != std::string::npos ? 1U : 0U;
    }
    return n;
  }
  // The policy in the config file, with the interface indices a fresh daemon gives it.
  void loadExpected() {
    auto loaded = config::loadPolicy(config_);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
    VGT_ASSIGN_OR_FAIL(indices_, assignInterfaceIndices(policy_, {}));
  }
  ::testing::AssertionResult eventuallyDesired(int seconds = 20) {
    const auto check = [&] { return switchEqualsDesired(*sandbox_, kBridge, policy_, indices_); };
    if (eventually([&] { return static_cast<bool>(check()); }, seconds)) {
      return ::testing::AssertionSuccess();
    }
    return check();
  }
  CommandResult ctlStatus(const std::string& extra = "") {
    return run(shellQuote(programPath("vpcguardctl")) + " status --status-file " +
               shellQuote(statusFile()) + " " + extra);
  }

  // The bridge with eni-db1 plugged in and the daemon started, its policy on the switch.
  void startWithDb() {
    VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
    VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
    (void)db;
    startDaemon();
    ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=5432") > 0; })) << log();
  }
  // configs/lab.toml's text with `rules` (TOML) added to the ingress of sg-db.
  static std::string withDbRules(std::string text, const std::string& rules) {
    const std::string anchor = "description = \"PostgreSQL from the web tier, SSH from the bastion\"";
    const auto at = text.find(anchor);
    EXPECT_NE(at, std::string::npos) << "configs/lab.toml changed: no sg-db description";
    if (at != std::string::npos) {
      text.insert(at + anchor.size(), "\n" + rules);
    }
    return text;
  }
  static std::string tcpIngress(int from, int to, const std::string& cidr) {
    return "\n  [[security_groups.ingress]]\n  ip_protocol = \"tcp\"\n  from_port = " +
           std::to_string(from) + "\n  to_port = " + std::to_string(to) + "\n  cidr_ipv4 = \"" +
           cidr + "\"\n";
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<ChildProcess> daemon_;
  std::string config_;
  std::string log_;
  int starts_ = 0;
  model::Policy policy_;
  std::map<std::string, uint16_t> indices_;
};

TEST_F(DaemonTest, SetsUpTheBridgeAndFollowsInterfaces) {
  startDaemon();
  // The daemon creates the bridge, fail-secure, with the OpenFlow versions it needs.
  ASSERT_TRUE(eventually([&] { return sandbox_->vsctl("br-exists br-int").has_value(); })) << log();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  VGT_ASSIGN_OR_FAIL(std::string fail_mode, sandbox_->vsctl("get-fail-mode br-int"));
  EXPECT_NE(fail_mode.find("secure"), std::string::npos);

  // Attach: the interface's classification flow appears.
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  // Classification of the new port (table 0 is not named in dumps).
  const std::string classify = " priority=100,in_port=" + std::to_string(web) + " ";
  EXPECT_TRUE(eventually([&] { return flows().find(classify) != std::string::npos; }))
      << flows() << log();
  // An interface of the policy on another bridge gets nothing on ours: port numbers are per
  // bridge.
  VGT_ASSERT_OK(sandbox_->addBridge("br-other"));
  VGT_ASSIGN_OR_FAIL(int other, sandbox_->addDummyPort("br-other", "p-db-other", "eni-db1"));
  VGT_ASSIGN_OR_FAIL(int web2, sandbox_->addDummyPort(kBridge, "p-web2", "eni-bastion"));
  EXPECT_TRUE(eventually([&] {
    return flows().find(" priority=100,in_port=" + std::to_string(web2) + " ") != std::string::npos;
  })) << flows() << log();
  EXPECT_NE(log().find("iface_id=eni-db1"), std::string::npos) << log();
  EXPECT_EQ(flows().find("nw_dst=10.0.2.10 actions=set_field"), std::string::npos)
      << "eni-db1 (ofport " << other << " of br-other) must not be switched on br-int:\n" << flows();
  // Detach: gone again.
  VGT_ASSERT_OK(sandbox_->vsctl("del-port br-int p-web"));
  EXPECT_TRUE(eventually([&] { return flows().find(classify) == std::string::npos; }))
      << flows() << log();
}

TEST_F(DaemonTest, ConfigChangeAppliesAndABrokenConfigKeepsTheLastGoodOne) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
  (void)db;
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=5432") > 0; })) << log();
  ASSERT_EQ(countFlows("tp_dst=6379"), 0U);

  // A new rule in the saved file is applied (inotify).
  std::string text = readFile(config_);
  const std::string anchor = "description = \"PostgreSQL from the web tier, SSH from the bastion\"";
  ASSERT_NE(text.find(anchor), std::string::npos);
  std::string added = text;
  added.insert(added.find(anchor) + anchor.size(),
               "\n\n  [[security_groups.ingress]]\n  ip_protocol = \"tcp\"\n  from_port = 6379\n"
               "  to_port = 6379\n  cidr_ipv4 = \"10.0.1.0/24\"\n");
  writeConfig(added);
  ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=6379") > 0; })) << log();

  // A broken config is reported and ignored: the flows stay as they were.
  const std::string before = flows();
  writeConfig(added + "\n[[subnets]]\nid = \"subnet-broken\"\ncidr_block = \"10.0.9.5/24\"\n");
  ASSERT_TRUE(eventually([&] { return log().find("config_kept") != std::string::npos; })) << log();
  EXPECT_NE(log().find("10.0.9.5/24"), std::string::npos) << "the error names the bad value";
  EXPECT_EQ(flows(), before);
  // ... and `vpcguardctl status` says so.
  CommandResult status;
  EXPECT_TRUE(eventually([&] {
    status = ctlStatus();
    return status.output.find("10.0.9.5") != std::string::npos;
  })) << status.output;
  EXPECT_EQ(status.exit_code, 1) << status.output;

  // Back to the original file, and a SIGHUP: the daemon reports the signal and reloads.
  writeConfig(text);
  daemon_->signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return countFlows("tp_dst=6379") == 0; })) << log();
  EXPECT_TRUE(eventually([&] { return log().find("reload_requested by=SIGHUP") != std::string::npos; }))
      << log();
  // Other files in the directory trigger no reload.
  const auto loads = [&] {
    const std::string l = log();
    size_t n = 0;
    for (size_t pos = l.find("config_loaded"); pos != std::string::npos; pos = l.find("config_loaded", pos + 1)) {
      ++n;
    }
    return n;
  };
  ASSERT_TRUE(eventually([&] { const size_t a = loads(); std::this_thread::sleep_for(std::chrono::milliseconds(500)); return loads() == a; }));
  const size_t before_unrelated = loads();
  std::ofstream(sandbox_->dir() + "/unrelated.txt") << "x";
  EXPECT_FALSE(eventually([&] { return loads() > before_unrelated; }, 1)) << log();
}

// A config directory: a file renamed into place is read once the directory has been quiet for
// --config-settle-ms (it may be replaced file by file), and only that file is parsed again.
TEST_F(DaemonTest, AConfigDirectoryIsReadWhenItSettlesAndOnlyTheChangedFileIsParsed) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
  (void)db;
  const std::string text = readFile(config_);
  const size_t split = text.find("[[security_groups]]");
  ASSERT_NE(split, std::string::npos);
  config_ = sandbox_->dir() + "/config.d";
  ASSERT_TRUE(std::filesystem::create_directory(config_));
  const auto writeFile = [&](const std::string& name, const std::string& content) {
    const std::string tmp = config_ + "/." + name + ".tmp";  // not *.toml: not watched
    std::ofstream(tmp) << content;
    ASSERT_EQ(std::rename(tmp.c_str(), (config_ + "/" + name).c_str()), 0);
  };
  writeFile("10-base.toml", text.substr(0, split));
  writeFile("20-groups.toml", text.substr(split));
  startDaemon({"--config-settle-ms", "2500"});
  ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=5432") > 0; })) << log();
  EXPECT_EQ(countInLog("files_parsed=2 files_unchanged=0"), 1U) << log();

  std::string groups = text.substr(split);
  const std::string anchor = "description = \"PostgreSQL from the web tier, SSH from the bastion\"";
  ASSERT_NE(groups.find(anchor), std::string::npos);
  groups.insert(groups.find(anchor) + anchor.size(),
                "\n\n  [[security_groups.ingress]]\n  ip_protocol = \"tcp\"\n  from_port = 6379\n"
                "  to_port = 6379\n  cidr_ipv4 = \"10.0.1.0/24\"\n");
  const auto written = std::chrono::steady_clock::now();
  writeFile("20-groups.toml", groups);
  // Not before the directory has been quiet for 2.5 s ...
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  if (std::chrono::steady_clock::now() - written < std::chrono::milliseconds(2400)) {
    EXPECT_EQ(countFlows("tp_dst=6379"), 0U) << "read before the directory settled\n" << log();
  }
  // ... then once, parsing only the changed file.
  ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=6379") > 0; })) << log();
  EXPECT_EQ(countInLog("files_parsed=1 files_unchanged=1"), 1U) << log();
}

// A stopped (SIGSTOP) ovs-vswitchd, then ovsdb-server, keeps its sockets open and answers
// nothing. The daemon notices within seconds, `vpcguardctl status` says so at once, a config
// change meanwhile is read and waits, and when the process continues the change goes in.
TEST_F(DaemonTest, AStoppedSwitchIsReportedAndChangesWaitUntilItContinues) {
  startWithDb();
  const std::string text = readFile(config_);
  const auto withPort = [&](int port) {
    return withDbRules(text, tcpIngress(port, port, "10.0.1.0/24"));
  };

  struct Process {
    const char* name;
    pid_t pid;
    const char* says;
    int port;
  };
  const std::vector<Process> processes = {
      {"ovs-vswitchd", sandbox_->vswitchdPid(), "ovs-vswitchd has not answered", 6379},
      {"ovsdb-server", sandbox_->ovsdbPid(), "ovsdb-server has not answered", 6380}};
  for (const auto& p : processes) {
    ASSERT_GT(p.pid, 0) << p.name;
    ASSERT_EQ(::kill(p.pid, SIGSTOP), 0) << p.name;
    // Continued whatever happens below, so the sandbox can be torn down.
    const auto resume = std::unique_ptr<const Process, void (*)(const Process*)>(
        &p, [](const Process* q) { ::kill(q->pid, SIGCONT); });
    const auto stopped = std::chrono::steady_clock::now();
    CommandResult st;
    ASSERT_TRUE(eventually([&] {
      st = ctlStatus();
      return st.output.find(p.says) != std::string::npos;
    }, 15)) << p.name << "\n" << st.output << log();
    const double noticed = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
    EXPECT_LE(noticed, 8.0) << p.name << " stopped, noticed after " << noticed << " s";
    EXPECT_EQ(st.exit_code, 1) << st.output;
    EXPECT_NE(st.output.find("DOES NOT RESPOND"), std::string::npos) << st.output;

    // A change made meanwhile is read at once and waits for the switch.
    const size_t deferred_before = countInLog("the switch does not respond; installed when");
    writeConfig(withPort(p.port));
    EXPECT_TRUE(eventually([&] {
      return countInLog("the switch does not respond; installed when") > deferred_before;
    }, 5)) << p.name << ": the config change was not handled while the switch was stopped\n" << log();

    ASSERT_EQ(::kill(p.pid, SIGCONT), 0);
    EXPECT_TRUE(eventually([&] { return countFlows("tp_dst=" + std::to_string(p.port)) > 0; }, 15))
        << p.name << " continued, the change did not go in\n" << flows() << log();
    EXPECT_TRUE(eventually([&] { return ctlStatus().exit_code == 0; }, 10)) << ctlStatus().output << log();
  }
  EXPECT_GE(countInLog("switch_responding_again"), 2U) << log();
}

// Another controller puts its flow back into one of our tables as soon as it is removed. The
// daemon does not rewrite the table in a loop with it: repairs back off, status names the fight,
// and once the other side stops, the table is repaired and the fight reported over.
TEST_F(DaemonTest, AControllerFightBacksOffAndIsNamedInStatus) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  const std::string installed = flows();
  const std::string br = sandbox_->bridgeTarget(kBridge);
  const auto repairs = [&] {
    auto st = status();
    return st ? st->drift_repairs : 0;
  };
  const uint64_t before = repairs();
  bool named = false;
  const auto fight_start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - fight_start < std::chrono::seconds(8)) {
    // The other controller: its flow back in table 10, every 100 ms.
    (void)sandbox_->ofctl("add-flow " + br + " table=10,priority=65000,cookie=0x42,actions=NORMAL");
    if (!named) {
      const auto st = ctlStatus();
      named = st.output.find("another controller") != std::string::npos && st.exit_code == 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const uint64_t during = repairs() - before;
  EXPECT_TRUE(named) << "status never named the fight\n" << log();
  // About 80 changes came in 8 s: without back-off as many repairs would answer them.
  EXPECT_GE(during, 5U) << log();
  EXPECT_LE(during, 15U) << "repairs did not back off\n" << log();
  EXPECT_GE(countInLog("controller_fight "), 1U) << log();

  // The other side stops: the table is repaired (after the current back-off) and the fight ends.
  const auto foreign = [&] {
    auto r = sandbox_->ofctl("dump-flows --no-stats " + br + " cookie=0x42/-1");
    return r ? r->find("actions=") != std::string::npos : true;
  };
  EXPECT_TRUE(eventually([&] { return !foreign() && flows() == installed; }, 40)) << flows() << log();
  EXPECT_TRUE(eventually([&] {
    auto st = status();
    return st && st->controller_fight.empty();
  }, 15)) << log();
  EXPECT_GE(countInLog("controller_fight_ended"), 1U) << log();
}

// Our own large bundle outruns the flow monitor (the switch pauses it, then resumes and reports
// what was added or modified in between). That is checked by flow counts, not by reading the
// whole table again; a deletion of ours in such a window is still found at once.
TEST_F(DaemonTest, AMonitorPauseAfterOurOwnBundleCostsNoFullComparison) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
  (void)web;
  (void)db;
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=5432") > 0; })) << log();
  // Every comparison drift causes logs its reason (resync_clean at debug, resync_repaired).
  const auto compares = [&] { return countInLog("reason=drift"); };
  // 2,500 more ingress rules for each of the two attached interfaces' groups, a port each from
  // 20 sources (the clause flows stay within an OpenFlow message): one bundle of some 10,000
  // flows, far more updates than the switch buffers for a monitor (128 KiB).
  std::string text = readFile(config_);
  for (const std::string anchor :
       {"description = \"web tier: HTTP(S) from anywhere, SSH from the bastion\"",
        "description = \"PostgreSQL from the web tier, SSH from the bastion\""}) {
    ASSERT_NE(text.find(anchor), std::string::npos) << anchor;
    std::string rules;
    for (int i = 0; i < 2500; ++i) {
      rules += tcpIngress(20000 + i, 20000 + i, "10.1." + std::to_string(i % 20) + ".0/24");
    }
    text.insert(text.find(anchor) + anchor.size(), "\n" + rules);
  }
  text += "\n[quotas]\nrules_per_security_group = 3000\nrules_per_interface = 3000\n";
  const size_t before = compares();
  writeConfig(text);
  ASSERT_TRUE(eventually([&] { return log().find("applied reason=config") != std::string::npos; }, 30))
      << log();
  ASSERT_TRUE(eventually([&] { return log().find("flow_monitor_resumed") != std::string::npos; }))
      << "the monitor was not paused: the test no longer exercises a pause\n" << log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_NE(log().find("flow_monitor_resumed verified=flow_counts"), std::string::npos) << log();
  EXPECT_EQ(compares(), before) << "a full comparison followed our own bundle\n" << log();

  // A deletion is still found quickly (here outside a pause: the monitor reports it).
  const auto sorted = [&] {
    std::istringstream in(flows());
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  const auto installed = sorted();
  const size_t repairs = countInLog("resync_repaired reason=drift");
  ASSERT_GT(countFlows("tp_dst=5432"), 0U);
  VGT_ASSERT_OK(sandbox_->ofctl("del-flows " + sandbox_->bridgeTarget(kBridge) + " tcp,tp_dst=5432"));
  EXPECT_TRUE(eventually([&] {
    return countInLog("resync_repaired reason=drift") > repairs && sorted() == installed;
  }, 5)) << log();
}

// A config file still open for writing is not read, even when what it holds so far is valid
// TOML and something (here SIGHUP) asks for a reload: it is read once its writer closes it.
TEST_F(DaemonTest, AConfigStillBeingWrittenIsNotApplied) {
  {
    // Leases are how the daemon tells; some filesystems (NFS, some overlays) have none.
    const int fd = ::open(config_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const bool leases = ::fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    const int why = errno;
    (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
    ::close(fd);
    if (!leases && why != EAGAIN) {
      GTEST_SKIP() << "no file leases on " << config_ << ": " << std::strerror(why);
    }
  }
  startWithDb();
  const std::string text = withDbRules(readFile(config_), tcpIngress(6379, 6379, "10.0.1.0/24"));
  {
    // Written in place, in two parts; the first alone is a complete, valid policy.
    std::ofstream writer(config_, std::ios::trunc);
    writer << text << std::flush;
    daemon_->signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return log().find("config_deferred") != std::string::npos; }, 5))
        << log();
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    EXPECT_EQ(countFlows("tp_dst=6379"), 0U) << "a file still being written was applied\n" << log();
    writer << "\n# end of the change\n";
  }
  EXPECT_TRUE(eventually([&] { return countFlows("tp_dst=6379") > 0; })) << log();
}

// An operator caps our tables at the flows they hold (Flow_Table flow_limit, no eviction). A
// changed rule is still applied: the bundle deletes the old flow before it adds the new one, so
// the table never holds more than its limit, even inside the bundle.
TEST_F(DaemonTest, ARuleChangeFitsATableAtItsFlowLimit) {
  startWithDb();
  const std::string br = sandbox_->bridgeTarget(kBridge);
  // Every table holding one of the flows the change replaces, capped at what it holds now.
  std::set<int> tables;
  {
    std::istringstream in(flows());
    const std::regex table_re("table=([0-9]+)");
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (line.find("tp_dst=5432") != std::string::npos && std::regex_search(line, m, table_re)) {
        tables.insert(std::stoi(m[1]));
      }
    }
  }
  ASSERT_FALSE(tables.empty()) << flows();
  for (const int table : tables) {
    VGT_ASSIGN_OR_FAIL(std::string dump,
                       sandbox_->ofctl("dump-flows --no-stats " + br + " table=" + std::to_string(table)));
    const size_t held = countFlows("actions=", dump);
    ASSERT_GT(held, 0U);
    VGT_ASSERT_OK(sandbox_->vsctl("-- --id=@ft create Flow_Table flow_limit=" + std::to_string(held) +
                                  " overflow_policy=refuse -- set Bridge " + kBridge +
                                  " flow_tables:" + std::to_string(table) + "=@ft"));
    // The limit is in force: one more flow does not fit.
    auto extra = sandbox_->ofctl("add-flow " + br + " table=" + std::to_string(table) +
                                 ",priority=1,cookie=0x42,actions=drop");
    ASSERT_FALSE(extra.has_value()) << "table " << table << " takes more than " << held << " flows";
    EXPECT_NE(extra.error().message.find("TABLE_FULL"), std::string::npos) << extra.error().message;
  }

  // The security group's PostgreSQL port moves: one flow out, one in, in the same tables.
  std::string text = readFile(config_);
  const std::string rule = "from_port = 5432\n  to_port = 5432\n  referenced_group_id = \"sg-web\"";
  ASSERT_NE(text.find(rule), std::string::npos);
  text.replace(text.find(rule), rule.size(),
               "from_port = 5433\n  to_port = 5433\n  referenced_group_id = \"sg-web\"");
  writeConfig(text);
  EXPECT_TRUE(eventually([&] { return countFlows("tp_dst=5433") > 0; })) << flows() << log();
  EXPECT_EQ(countInLog("TABLE_FULL"), 0U) << log();
  VGT_ASSIGN_OR_FAIL(DaemonStatus st, status());
  EXPECT_EQ(st.last_error, "") << log();
}

// A config change the switch refuses (a table capped at the flows it holds, and the change adds
// one) is rolled back: the last policy stays in force, on the switch and in the daemon, so the
// next change is computed from what is really installed.
TEST_F(DaemonTest, AChangeTheSwitchRefusesIsRolledBackAndTheNextOneApplies) {
  startWithDb();
  const std::string br = sandbox_->bridgeTarget(kBridge);
  const std::string before = flows();
  std::set<int> tables;
  {
    std::istringstream in(before);
    const std::regex table_re("table=([0-9]+)");
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (line.find("tp_dst=5432") != std::string::npos && std::regex_search(line, m, table_re)) {
        tables.insert(std::stoi(m[1]));
      }
    }
  }
  ASSERT_FALSE(tables.empty()) << before;
  for (const int table : tables) {
    VGT_ASSIGN_OR_FAIL(std::string dump, sandbox_->ofctl("dump-flows --no-stats " + br +
                                                         " table=" + std::to_string(table)));
    VGT_ASSERT_OK(sandbox_->vsctl("-- --id=@ft create Flow_Table flow_limit=" +
                                  std::to_string(countFlows("actions=", dump)) +
                                  " overflow_policy=refuse -- set Bridge " + kBridge +
                                  " flow_tables:" + std::to_string(table) + "=@ft"));
  }
  const std::string base = readFile(config_);
  const std::string rule = "from_port = 5432\n  to_port = 5432\n  referenced_group_id = \"sg-web\"";
  ASSERT_NE(base.find(rule), std::string::npos);
  const auto withPort = [&](int port) {
    std::string text = base;
    const std::string p = std::to_string(port);
    const std::string more = "from_port = " + p + "\n  to_port = " + p +
                             "\n  referenced_group_id = \"sg-web\"\n\n"
                             "  [[security_groups.ingress]]\n  ip_protocol = \"tcp\"\n  ";
    text.insert(text.find(rule), more);
    return text;
  };

  // One more rule does not fit: refused, rolled back, reported.
  writeConfig(withPort(6380));
  ASSERT_TRUE(eventually([&] { return countInLog("config_rolled_back") > 0; })) << log();
  EXPECT_EQ(flows(), before) << log();
  VGT_ASSIGN_OR_FAIL(DaemonStatus refused, status());
  EXPECT_NE(refused.last_error, "") << log();

  // The cap goes. A drift repair puts back the policy in force, not the refused one.
  VGT_ASSERT_OK(sandbox_->vsctl(std::string("clear Bridge ") + kBridge + " flow_tables"));
  VGT_ASSERT_OK(sandbox_->ofctl("del-flows " + br + " table=" + std::to_string(*tables.begin()) +
                                "," + kOurs));
  ASSERT_TRUE(eventually([&] { return flows() == before; }, 5)) << flows() << log();
  EXPECT_EQ(countFlows("tp_dst=6380"), 0U) << flows();
  // The next change is computed from the policy still installed, and applies.
  writeConfig(withPort(6381));
  ASSERT_TRUE(eventually([&] { return countFlows("tp_dst=6381") > 0; })) << flows() << log();
  EXPECT_EQ(countFlows("tp_dst=6380"), 0U) << flows();
  EXPECT_GT(countFlows("tp_dst=5432"), 0U) << flows();
  VGT_ASSIGN_OR_FAIL(DaemonStatus applied, status());
  EXPECT_EQ(applied.last_error, "") << log();
}

// Drift is seen through the switch's flow monitor, not only by the periodic comparison (60 s by
// default): each kind of tampering is repaired within a second. Foreign flows in our tables are
// drift too; a flow in a table we do not use is left alone.
TEST_F(DaemonTest, RepairsDriftWithinASecondAndLeavesOtherTablesAlone) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  const std::string installed = flows();
  const auto all = [&] {
    auto r = sandbox_->ofctl("dump-flows --no-stats " + sandbox_->bridgeTarget(kBridge));
    return r ? *r : std::string();
  };
  // Someone else's flow in a table we do not use stays.
  VGT_ASSERT_OK(sandbox_->ofctl("add-flow " + sandbox_->bridgeTarget(kBridge) +
                                " table=200,priority=5,cookie=0x42,actions=drop"));
  const std::string br = sandbox_->bridgeTarget(kBridge);
  const std::vector<std::pair<std::string, std::string>> tampering = {
      {"delete a table", "del-flows " + br + " table=51," + kOurs},
      {"alter a flow", "mod-flows --strict " + br + " 'table=90,priority=0,actions=NORMAL'"},
      {"foreign flow in our table", "add-flow " + br + " table=10,priority=65000,cookie=0x42,actions=NORMAL"},
      {"replace our flow", "add-flow " + br + " table=90,priority=0,cookie=0x42,actions=NORMAL"},
  };
  uint64_t repairs = 0;
  for (const auto& [what, command] : tampering) {
    VGT_ASSERT_OK(sandbox_->ofctl(command));
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually([&] { return flows() == installed && all().find("cookie=0x42, table=10") == std::string::npos; }, 5))
        << what << "\n" << all() << log();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LE(seconds, 1.0) << what << " repaired after " << seconds << " s";
    CommandResult status;
    ASSERT_TRUE(eventually([&] {
      status = ctlStatus("--output json");
      return status.output.find("\"drift_repairs\": " + std::to_string(repairs + 1)) != std::string::npos;
    })) << what << ": every repair is counted\n" << status.output;
    ++repairs;
  }
  EXPECT_NE(log().find("drift_detected"), std::string::npos) << log();
  EXPECT_NE(log().find("resync_repaired reason=drift"), std::string::npos) << log();
  EXPECT_NE(all().find("table=200, priority=5"), std::string::npos) << all();
}

TEST_F(DaemonTest, PerInterfaceIdleTimeoutsBecomeZoneTimeoutPolicies) {
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  // configs/lab.toml: eni-bastion (the second interface, zone 2) ends idle TCP after an hour;
  // the others keep AWS's defaults (5 days, UDP 30 s, UDP stream 180 s).
  std::string tp;
  ASSERT_TRUE(eventually([&] {
    auto r = sandbox_->vsctl("list-zone-tp dummy");
    tp = r ? *r : r.error().message;
    return tp.find("Zone:2,") != std::string::npos;
  })) << tp << log();
  EXPECT_NE(tp.find("Zone:2, Timeout Policies: tcp_established=3600"), std::string::npos) << tp;
  EXPECT_NE(tp.find("Zone:1, Timeout Policies: tcp_established=432000"), std::string::npos) << tp;
  EXPECT_NE(tp.find("udp_multiple=180"), std::string::npos) << tp;
}

// Zones of interfaces removed while vpcguardd was not running lose their timeout policy at
// the next start (the policies carry external_ids:vpcguard-zone); an operator's own zone stays.
TEST_F(DaemonTest, ZonePoliciesOfInterfacesRemovedWhileDownAreCleanedUp) {
  startDaemon();
  const auto zones = [&] {
    auto r = sandbox_->vsctl("list-zone-tp dummy");
    return r ? *r : r.error().message;
  };
  ASSERT_TRUE(eventually([&] { return zones().find("Zone:3,") != std::string::npos; }))
      << zones() << log();
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->waitExit(std::chrono::seconds(10)));
  VGT_ASSERT_OK(sandbox_->vsctl("add-zone-tp dummy zone=77 udp_first=5"));

  // eni-db1 (the third interface of configs/lab.toml, zone 3) is gone from the config.
  std::string text = readFile(config_);
  const auto db_start = text.find("[[network_interfaces]]\nid = \"eni-db1\"");
  ASSERT_NE(db_start, std::string::npos);
  text.erase(db_start, text.find("\n\n", db_start) - db_start);
  writeConfig(text);

  startDaemon();
  ASSERT_TRUE(eventually([&] { return log().find("conntrack_timeouts_set zones=2") != std::string::npos; }))
      << log();
  const std::string now = zones();
  EXPECT_EQ(now.find("Zone:3,"), std::string::npos) << now;
  EXPECT_NE(now.find("Zone:1,"), std::string::npos) << now;
  EXPECT_NE(now.find("Zone:2,"), std::string::npos) << now;
  EXPECT_NE(now.find("Zone:77, Timeout Policies: udp_first=5"), std::string::npos) << now;
}

TEST_F(DaemonTest, RestartKeepsConntrackZonesAndChangesNothing) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
  startDaemon();
  const std::string web_zone = " priority=100,in_port=" + std::to_string(web) + " actions=set_field:0x1->reg0";
  ASSERT_TRUE(eventually([&] { return flows().find(web_zone) != std::string::npos; })) << flows() << log();
  const std::string installed = flows();
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->waitExit(std::chrono::seconds(10)));

  // While it was down the config was reordered: in config order eni-db1 would now get index 1.
  std::string text = readFile(config_);
  const auto db_start = text.find("[[network_interfaces]]\nid = \"eni-db1\"");
  ASSERT_NE(db_start, std::string::npos);
  const auto db_end = text.find("\n\n", db_start);
  const std::string db_block = text.substr(db_start, db_end - db_start);
  text.erase(db_start, db_end - db_start);
  text.insert(text.find("[[network_interfaces]]"), db_block + "\n\n");
  writeConfig(text);

  startDaemon();
  ASSERT_TRUE(eventually([&] { return log().find("indices_recovered") != std::string::npos; })) << log();
  ASSERT_TRUE(eventually([&] { return log().find("resync_") != std::string::npos; })) << log();
  EXPECT_EQ(log().find("resync_applied"), std::string::npos) << log();
  EXPECT_NE(log().find("resync_clean reason=startup"), std::string::npos)
      << "a restart must change no flow: " << log();
  EXPECT_EQ(flows(), installed);
  (void)db;
}

// A restarted ovs-vswitchd comes back with an empty table on a fail-secure bridge (nothing is
// forwarded); vpcguardd notices within a second and installs the policy again.
TEST_F(DaemonTest, VswitchdRestartIsNoticedAndThePolicyReinstalled) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  const std::string installed = flows();
  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  VGT_ASSIGN_OR_FAIL(std::string fail_mode, sandbox_->vsctl("get-fail-mode br-int"));
  EXPECT_NE(fail_mode.find("secure"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return flows() == installed; }, 15)) << flows() << log();
  EXPECT_NE(log().find("openflow_lost"), std::string::npos) << log();
  EXPECT_NE(log().find("resync_applied reason=reconnect"), std::string::npos) << log();
}

// Each start takes the next generation; flows already right are adopted with their old cookie,
// only what differs is rewritten (with the new generation).
TEST_F(DaemonTest, RestartAdoptsRightFlowsAndRewritesOnlyWhatDiffers) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  const std::string first = flows();
  const size_t total = countFlows("actions=");
  ASSERT_EQ(countFlows("cookie=0x76670001"), total) << "a first start writes generation 1:\n"
                                                    << first;
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->waitExit(std::chrono::seconds(10)));

  // While the daemon is down someone turns the default drop into NORMAL forwarding.
  VGT_ASSERT_OK(sandbox_->ofctl("mod-flows --strict " + sandbox_->bridgeTarget(kBridge) +
                                " 'table=90,priority=0,actions=NORMAL'"));
  startDaemon();
  ASSERT_TRUE(eventually([&] { return log().find("resync_applied reason=startup") != std::string::npos; }))
      << log();
  EXPECT_NE(log().find("generation 2 installed_generation=1"), std::string::npos) << log();
  EXPECT_EQ(countFlows("actions=NORMAL"), 0U) << flows();
  // Exactly the repaired flow carries generation 2; the others were adopted untouched.
  EXPECT_EQ(countFlows("cookie=0x76670002"), 1U) << flows();
  EXPECT_EQ(countFlows("cookie=0x76670001"), total - 1) << flows();
  CommandResult status;
  EXPECT_TRUE(eventually([&] {
    status = ctlStatus("--output json");
    return status.output.find("\"generation\": 2") != std::string::npos;
  })) << status.output;
}

// ovs-ctl's restart sets flow-restore-wait so the new ovs-vswitchd neither forwards nor flushes
// until flows are restored. vpcguardd reinstalls its policy, and if nobody clears the flag
// within the grace period it clears it itself (left set, the switch would never forward).
TEST_F(DaemonTest, FlowRestoreWaitLeftSetIsClearedOnceThePolicyIsBack) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  startDaemon({"--flow-restore-grace", "1"});
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  const std::string installed = flows();
  VGT_ASSERT_OK(sandbox_->vsctl("set Open_vSwitch . other_config:flow-restore-wait=true"));
  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  EXPECT_TRUE(eventually([&] { return flows() == installed; }, 15)) << flows() << log();
  const auto restoreWait = [&] {
    auto r = sandbox_->vsctl("get Open_vSwitch . other_config");
    return r && r->find("flow-restore-wait") != std::string::npos;
  };
  EXPECT_TRUE(eventually([&] { return !restoreWait(); }, 10)) << log();
  EXPECT_NE(log().find("flow_restore_wait_set"), std::string::npos) << log();
  EXPECT_NE(log().find("flow_restore_wait_cleared by=vpcguardd"), std::string::npos) << log();
  CommandResult status;
  EXPECT_TRUE(eventually([&] {
    status = ctlStatus("--output json");
    return status.output.find("\"flow_restore_wait\": false") != std::string::npos;
  })) << status.output;

  // Set again by whoever restarts OVS and cleared by them within the grace period: vpcguardd
  // leaves it to them.
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->waitExit(std::chrono::seconds(10)));
  startDaemon({"--flow-restore-grace", "60"});
  ASSERT_TRUE(eventually([&] { return log().find("resync_") != std::string::npos; })) << log();
  VGT_ASSERT_OK(sandbox_->vsctl("set Open_vSwitch . other_config:flow-restore-wait=true"));
  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  // Reinstalled by the second start: the same flows, in its generation.
  EXPECT_TRUE(eventually([&] { return countFlows("cookie=0x76670002") == countFlows("actions="); }, 15))
      << flows() << log();
  EXPECT_EQ(countFlows("actions="), countFlows("actions=", installed)) << flows();
  VGT_ASSERT_OK(sandbox_->vsctl("remove Open_vSwitch . other_config flow-restore-wait"));
  EXPECT_TRUE(eventually([&] { return log().find("flow_restore_wait_cleared by=other") != std::string::npos; }, 10))
      << log();
}

// A resync the switch refuses while the connection stays up (here: a table limit makes the
// bundle fail) is retried with backoff, not left to the periodic check; once the switch accepts
// it, the whole policy goes in.
TEST_F(DaemonTest, RefusedResyncIsRetriedUntilTheSwitchAcceptsIt) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  VGT_ASSERT_OK(sandbox_->vsctl(
      "-- --id=@ft create Flow_Table flow_limit=1 overflow_policy=refuse "
      "-- set Bridge br-int flow_tables:20=@ft"));
  startDaemon();
  ASSERT_TRUE(eventually([&] { return log().find("resync_retry") != std::string::npos; })) << log();
  EXPECT_EQ(countFlows("actions="), 0U) << "a refused bundle changes nothing";
  VGT_ASSERT_OK(sandbox_->vsctl("clear Bridge br-int flow_tables"));
  EXPECT_TRUE(eventually([&] { return countFlows("table=90") > 0; }, 15)) << log();
  EXPECT_NE(log().find("generation 1 installed_generation=0"), std::string::npos) << log();
}

TEST_F(DaemonTest, SigtermLeavesThePolicyInPlace) {
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countFlows("table=90") > 0; })) << log();
  const std::string installed = flows();
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->waitExit(std::chrono::seconds(10)));
  EXPECT_EQ(flows(), installed);
  auto status = ctlStatus();
  EXPECT_EQ(status.exit_code, 1) << status.output;
  EXPECT_NE(status.output.find("NOT RUNNING"), std::string::npos) << status.output;
}

TEST_F(DaemonTest, StatusReportsBridgeConnectionFlowsAndSyncs) {
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  startDaemon();
  CommandResult status;
  ASSERT_TRUE(eventually([&] {
    status = ctlStatus();
    return status.exit_code == 0;
  })) << status.output << log();
  EXPECT_NE(status.output.find("running (pid " + std::to_string(daemon_->pid())), std::string::npos)
      << status.output;
  // SIGPIPE is ignored: a connection closed under a write (a restarting switch, a call past its
  // deadline) fails that write instead of killing the daemon.
  std::ifstream proc("/proc/" + std::to_string(daemon_->pid()) + "/status");
  std::string proc_line;
  unsigned long long ignored = 0;
  while (std::getline(proc, proc_line)) {
    if (proc_line.rfind("SigIgn:", 0) == 0) {
      ignored = std::stoull(proc_line.substr(7), nullptr, 16);
    }
  }
  EXPECT_NE(ignored & (1ULL << (SIGPIPE - 1)), 0ULL) << "SigIgn " << std::hex << ignored;
  EXPECT_NE(status.output.find("connected"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("1 attached"), std::string::npos) << status.output;
  auto j = ctlStatus("--output json");
  ASSERT_EQ(j.exit_code, 0) << j.output;
  EXPECT_NE(j.output.find("\"running\": true"), std::string::npos) << j.output;
  EXPECT_NE(j.output.find("\"bridge\": \"br-int\""), std::string::npos) << j.output;
  // The flow counts are the switch's: compare with a dump.
  const size_t dumped = countFlows("actions=");
  EXPECT_NE(j.output.find("\"flows_total\": " + std::to_string(dumped)), std::string::npos)
      << "dump has " << dumped << " flows\n" << j.output;
}

TEST_F(DaemonTest, UnreachableSwitchIsReportedNotCrashed) {
  ChildProcess::Options o;
  o.argv = {programPath("vpcguardd"), "--config", config_, "--ovsdb",
            "unix:" + sandbox_->dir() + "/nothing.sock", "--connect-timeout", "2", "--status-file",
            statusFile()};
  o.output_path = log_ = sandbox_->dir() + "/unreachable.log";
  VGT_ASSIGN_OR_FAIL(auto d, ChildProcess::spawn(o));
  ASSERT_TRUE(d->waitExit(std::chrono::seconds(20)));
  EXPECT_NE(log().find("retrying_connect"), std::string::npos) << log();
  EXPECT_NE(log().find("cannot reach Open vSwitch"), std::string::npos) << log();
}

TEST_F(DaemonTest, InvalidConfigAtStartChangesNothing) {
  writeConfig("[vpc]\nid = \"vpc-x\"\ncidr_blocks = [\"10.0.0.0/33\"]\n");
  ChildProcess::Options o;
  o.argv = {programPath("vpcguardd"), "--config", config_, "--ovsdb", sandbox_->dbTarget(),
            "--status-file", statusFile()};
  o.output_path = log_ = sandbox_->dir() + "/invalid.log";
  VGT_ASSIGN_OR_FAIL(auto d, ChildProcess::spawn(o));
  ASSERT_TRUE(d->waitExit(std::chrono::seconds(10)));
  EXPECT_NE(log().find("policy.toml:3"), std::string::npos) << log();
  EXPECT_FALSE(sandbox_->vsctl("br-exists br-int").has_value()) << "nothing may be created";
}

// ovsdb-server goes away and comes back (same database): vpcguardd notices, reconnects, resyncs,
// and follows interfaces attached after the restart.
TEST_F(DaemonTest, OvsdbServerRestartReconnectsAndResyncs) {
  ASSERT_NO_FATAL_FAILURE(loadExpected());
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  startDaemon();
  ASSERT_TRUE(eventuallyDesired()) << log();
  const size_t connects = countInLog("connected ovsdb=");
  ASSERT_EQ(connects, 1U) << log();

  VGT_ASSERT_OK(sandbox_->restartOvsdb());
  EXPECT_TRUE(eventually([&] { return countInLog("ovsdb_lost") >= 1; })) << log();
  EXPECT_TRUE(eventually([&] { return countInLog("connected ovsdb=") > connects; }, 30)) << log();
  EXPECT_TRUE(eventually([&] {
    auto s = status();
    return s && s->connected && s->last_sync_reason == "reconnect" && s->last_error.empty();
  })) << readFile(statusFile()) << log();

  // An interface attached after the restart gets its flows: the new session monitors again.
  VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
  EXPECT_TRUE(eventually([&] {
    return flows().find(" priority=100,in_port=" + std::to_string(db) + " ") != std::string::npos;
  })) << flows() << log();
  EXPECT_TRUE(eventuallyDesired()) << log();
  EXPECT_TRUE(daemon_->running());
}

// Started before Open vSwitch is up (no --connect-timeout): vpcguardd waits with growing
// pauses, says so in its status, and installs the policy once OVS appears.
TEST_F(DaemonTest, WaitsForOvsAndInstallsThePolicyWhenItAppears) {
  ASSERT_NO_FATAL_FAILURE(loadExpected());
  sandbox_->stopOvsdb();
  startDaemon();
  ASSERT_TRUE(eventually([&] { return countInLog("retrying_connect") >= 3; })) << log();
  EXPECT_TRUE(daemon_->running()) << log();
  // Backoff: every pause longer than the one before (until its cap).
  std::vector<int> pauses;
  static const std::regex kPause(R"(retrying_connect in_ms=(\d+))");
  const std::string text = log();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kPause);
       it != std::sregex_iterator(); ++it) {
    pauses.push_back(std::stoi((*it)[1]));
  }
  ASSERT_GE(pauses.size(), 3U) << text;
  EXPECT_LT(pauses[0], pauses[1]) << text;
  EXPECT_LT(pauses[1], pauses[2]) << text;
  auto waiting = status();
  ASSERT_TRUE(waiting.has_value())
      << "no status while waiting for OVS: " << waiting.error().message;
  EXPECT_FALSE(waiting->connected);
  EXPECT_NE(waiting->last_error, "") << readFile(statusFile());
  EXPECT_EQ(waiting->last_sync, "");
  auto ctl = ctlStatus();
  EXPECT_EQ(ctl.exit_code, 1) << ctl.output;

  VGT_ASSERT_OK(sandbox_->restartOvsdb());
  // The daemon creates the bridge and installs the policy.
  EXPECT_TRUE(eventually([&] { return sandbox_->vsctl("br-exists br-int").has_value(); }, 30))
      << log();
  EXPECT_TRUE(eventuallyDesired(30)) << log();
  VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
  (void)web;
  EXPECT_TRUE(eventuallyDesired()) << log();
  EXPECT_TRUE(eventually([&] {
    auto s = status();
    return s && s->connected && s->last_error.empty() && !s->last_sync.empty();
  })) << readFile(statusFile());
}

}  // namespace
}  // namespace vpcguard::test
