// vpcguardd following the desired state in the vpcguard database (vpcguardd --state): a private
// OVS sandbox, a private state ovsdb-server (tests/harness/state_server.h) and the real vpcguardd
// as a child. Commits made with StateStore::commit (as the API server makes them) reach the switch
// as flows equal to the translation of the database's policy (a one-rule change as a delta); an
// empty database wipes nothing; a policy in the database that fails
// validation is refused and the last good flows stay; a killed state server changes nothing and
// is followed again once back; a vpcguardd killed in the middle of a series of commits ends, once
// restarted, exactly on the database's final policy.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "daemon/status.h"
#include "state/store.h"
#include "tests/harness/assertions.h"
#include "tests/harness/flow_check.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/process.h"
#include "tests/harness/sample_policy.h"
#include "tests/harness/state_server.h"
#include "tests/harness/vpcguardd.h"
#include "translator/defaults.h"
#include "translator/translate.h"
#include "translator/validate.h"

namespace vpcguard::test {
namespace {

using state::StateStore;
using namespace std::chrono_literals;

constexpr const char* kBridge = "br-int";

class DaemonStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = sandboxUnavailableReason()) {
      GTEST_SKIP() << *reason;
    }
    if (auto reason = StateServer::unavailableReason()) {
      GTEST_SKIP() << *reason;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(server_, StateServer::start());
    Vpcguardd::Options o;
    o.state = server_->target();
    o.bridge = kBridge;
    o.datapath_type = "dummy";
    daemon_ = std::make_unique<Vpcguardd>(*sandbox_, o);
    auto resolved = resolveDefaults(samplePolicy());
    ASSERT_TRUE(resolved) << resolved.error().message;
    sample_ = std::move(*resolved);
  }
  void TearDown() override {
    // Children first (they die with us anyway: PDEATHSIG), then their directories.
    daemon_.reset();
    store_.reset();
    server_.reset();
    sandbox_.reset();
  }

  // A writer connected to the state server (opened again after the server was restarted).
  StateStore& store() {
    if (!store_) {
      auto opened = StateStore::open(server_->target());
      EXPECT_TRUE(opened) << opened.error().message;
      if (opened) {
        store_ = std::move(*opened);
      }
    }
    return *store_;
  }
  // Commits `policy` as it is (no validation here: the daemon must do its own). The generation.
  int64_t commit(const model::Policy& policy) {
    auto r = store().commit(policy);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) {
      return -1;
    }
    EXPECT_EQ(r->status, StateStore::CommitStatus::kCommitted);
    // The policy as the database gives it back (objects sorted by id: it keeps no order between
    // them), which is what a daemon following it translates.
    auto stored = state::policyFromReplica(store().replica());
    EXPECT_TRUE(stored) << stored.error().message;
    if (stored) {
      EXPECT_EQ(policyContent(*stored), policyContent(policy));
      stored_[r->generation] = std::move(*stored);
    }
    return r->generation;
  }

  // Ports for two of the sample's interfaces, so their rules become flows.
  void attachPorts() {
    VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
    VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
    VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
    (void)web;
    (void)db;
  }

  static model::SecurityGroup& group(model::Policy& policy, const std::string& id) {
    for (auto& g : policy.security_groups) {
      if (g.id == id) {
        return g;
      }
    }
    ADD_FAILURE() << "no group " << id;
    return policy.security_groups.front();
  }
  static model::SecurityGroupRule tcpFromAnywhere(int port) {
    model::SecurityGroupRule r;
    r.ip_protocol = model::kProtoTcp;
    r.ports = model::PortRange{port, port};
    r.peer = cidr("0.0.0.0/0");
    r.description = "port " + std::to_string(port);
    return r;
  }
  // The sample with one more ingress rule on sg-web.
  model::Policy withWebPort(int port) const {
    model::Policy p = sample_;
    group(p, "sg-web").ingress.push_back(tcpFromAnywhere(port));
    return p;
  }

  bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
    return waitFor(condition, timeout, 50ms);
  }
  // The switch holds exactly the translation of the policy committed as `generation` (with the
  // indices a daemon that started on it gives its interfaces), within `timeout`.
  ::testing::AssertionResult eventuallyDesired(int64_t generation,
                                               std::chrono::milliseconds timeout = 20s) {
    auto it = stored_.find(generation);
    if (it == stored_.end()) {
      return ::testing::AssertionFailure() << "generation " << generation << " was not committed";
    }
    const model::Policy& policy = it->second;
    auto indices = assignInterfaceIndices(policy, {});
    if (!indices) {
      return ::testing::AssertionFailure() << indices.error().message;
    }
    const auto check = [&] { return switchEqualsDesired(*sandbox_, kBridge, policy, *indices); };
    if (eventually([&] { return static_cast<bool>(check()); }, timeout)) {
      return ::testing::AssertionSuccess();
    }
    return check() << "\n" << daemon_->logTail(60);
  }
  bool statusShows(const std::function<bool(const DaemonStatus&)>& pred,
                   std::chrono::milliseconds timeout = 20s) {
    const pid_t me = daemon_->pid();
    return eventually(
        [&] {
          auto s = daemon_->status();
          return s && s->pid == me && pred(*s);
        },
        timeout);
  }
  std::string statusText() {
    auto s = daemon_->status();
    return s ? statusToJson(*s) : s.error().message;
  }
  // The first line of this start's log that contains `needle` ("" if none).
  std::string lineWith(const std::string& needle) const {
    std::istringstream log(daemon_->log());
    for (std::string line; std::getline(log, line);) {
      if (line.find(needle) != std::string::npos) {
        return line;
      }
    }
    return "";
  }
  bool ourFlowFor(int port) {
    auto flows = sandbox_->dumpFlows(kBridge);
    return flows && flows->find("tp_dst=" + std::to_string(port)) != std::string::npos;
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<StateServer> server_;
  std::unique_ptr<Vpcguardd> daemon_;
  std::unique_ptr<StateStore> store_;
  model::Policy sample_;
  std::map<int64_t, model::Policy> stored_;  // generation -> policy as read back
};

TEST_F(DaemonStateTest, ConfigAndStateAreExclusive) {
  const std::string d = shellQuote(programPath("vpcguardd"));
  auto both = run(d + " --config /nonexistent.toml --state unix:/nonexistent.sock 2>&1");
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_NE(both.output.find("exactly one of --config and --state"), std::string::npos)
      << both.output;
  auto neither = run(d + " 2>&1");
  EXPECT_EQ(neither.exit_code, 2) << neither.output;
}

TEST_F(DaemonStateTest, WaitsForStateThenAppliesEachCommitIncrementally) {
  ASSERT_NO_FATAL_FAILURE(attachPorts());
  ASSERT_TRUE(daemon_->start());
  // An empty database: connected (to it and to the switch), nothing to apply, and the status
  // says so.
  ASSERT_TRUE(statusShows([](const DaemonStatus& s) {
    return s.connected && s.state_connection == "connected" && s.state_waiting &&
           s.state_generation == 0;
  })) << statusText()
      << daemon_->logTail();
  auto waiting = daemon_->status();
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->source, "state:" + server_->target());
  auto text = run(shellQuote(programPath("vpcguardctl")) + " status --status-file " +
                  shellQuote(daemon_->statusFile()));
  EXPECT_NE(text.output.find("waiting for desired state"), std::string::npos) << text.output;

  // The resolved sample policy: installed as the translation of it.
  ASSERT_EQ(commit(sample_), 1);
  EXPECT_TRUE(eventuallyDesired(1));
  EXPECT_TRUE(statusShows([](const DaemonStatus& s) {
    return s.state_generation == 1 && !s.state_waiting && s.last_error.empty();
  })) << statusText();

  // What the database gives back is already resolved: resolving it again changes nothing, so
  // the daemon's defaults step is a no-op on it.
  {
    auto reader = StateStore::open(server_->target());
    ASSERT_TRUE(reader) << reader.error().message;
    auto stored = state::policyFromReplica((*reader)->replica());
    ASSERT_TRUE(stored) << stored.error().message;
    EXPECT_TRUE(validatePolicy(*stored).empty());
    auto again = resolveDefaults(*stored);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(policyContent(*again), policyContent(*stored));
  }

  // One more rule: its flow appears, through the incremental path (a delta, not a full diff).
  const model::Policy changed = withWebPort(8080);
  ASSERT_EQ(commit(changed), 2);
  EXPECT_TRUE(eventually([&] { return ourFlowFor(8080); })) << daemon_->logTail();
  EXPECT_TRUE(eventuallyDesired(2));
  EXPECT_TRUE(statusShows([](const DaemonStatus& s) { return s.state_generation == 2; }))
      << statusText();
  EXPECT_TRUE(eventually([&] { return daemon_->countInLog("state_applied generation=2 ") == 1; }))
      << daemon_->logTail();
  std::cout << "[ figures  ] " << lineWith("state_applied generation=2 ") << "\n";
  // The first policy went in with a full comparison (the switch had not been read yet: nothing
  // was installed while the database was empty); the change after it as a delta.
  EXPECT_EQ(daemon_->countInLog("resync_applied reason=state"), 1u) << daemon_->logTail();
  EXPECT_EQ(daemon_->countInLog("applied reason=state flows="), 1u) << daemon_->logTail();
  EXPECT_EQ(daemon_->countInLog("full_diff=false"), 1u) << daemon_->logTail();

  // SIGHUP with --state reads no file: it compares with the switch.
  const pid_t pid = daemon_->pid();
  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return daemon_->countInLog("reason=sighup") > 0; }))
      << daemon_->logTail();
  EXPECT_EQ(daemon_->countInLog("config_loaded"), 0u);
  EXPECT_TRUE(eventuallyDesired(2));
}

TEST_F(DaemonStateTest, AnEmptyDatabaseKeepsTheFlowsFromBefore) {
  ASSERT_NO_FATAL_FAILURE(attachPorts());
  ASSERT_EQ(commit(sample_), 1);
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  ASSERT_TRUE(eventuallyDesired(1));
  ASSERT_TRUE(daemon_->stop(SIGTERM));

  // A new daemon on a new, empty database: nothing to apply, and nothing is wiped.
  VGT_ASSIGN_OR_FAIL(auto empty, StateServer::start());
  Vpcguardd::Options o;
  o.state = empty->target();
  o.bridge = kBridge;
  o.datapath_type = "dummy";
  daemon_ = std::make_unique<Vpcguardd>(*sandbox_, o);
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(statusShows([](const DaemonStatus& s) {
    return s.connected && s.state_connection == "connected" && s.state_waiting;
  })) << statusText()
      << daemon_->logTail();
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(eventuallyDesired(1, 1s));
  EXPECT_EQ(daemon_->countInLog("state_empty"), 1u) << daemon_->logTail();
  daemon_.reset();
}

TEST_F(DaemonStateTest, RefusesAnInvalidDatabasePolicyAndKeepsTheLastGoodOne) {
  ASSERT_NO_FATAL_FAILURE(attachPorts());
  ASSERT_EQ(commit(sample_), 1);
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  ASSERT_TRUE(eventuallyDesired(1));

  // Written by hand, bypassing validation: a rule that names a group that does not exist.
  model::Policy broken = withWebPort(9090);
  model::SecurityGroupRule dangling;
  dangling.ip_protocol = model::kProtoTcp;
  dangling.ports = model::PortRange{5000, 5000};
  dangling.peer = model::GroupRef{"sg-missing"};
  group(broken, "sg-web").ingress.push_back(dangling);
  ASSERT_FALSE(validatePolicy(broken).empty()) << "the test needs a policy that fails validation";
  ASSERT_EQ(commit(broken), 2);

  ASSERT_TRUE(statusShows([](const DaemonStatus& s) {
    return s.last_error.find("state generation 2") != std::string::npos;
  })) << statusText()
      << daemon_->logTail();
  auto s = daemon_->status();
  ASSERT_TRUE(s);
  EXPECT_NE(s->last_error.find("sg-missing"), std::string::npos) << s->last_error;
  EXPECT_EQ(s->state_generation, 1) << "the generation in force is still the last good one";
  EXPECT_GT(daemon_->countInLog("state_error generation=2"), 0u) << daemon_->logTail();
  EXPECT_FALSE(ourFlowFor(9090));
  EXPECT_TRUE(eventuallyDesired(1));
  auto ctl = run(shellQuote(programPath("vpcguardctl")) + " status --status-file " +
                 shellQuote(daemon_->statusFile()));
  EXPECT_EQ(ctl.exit_code, 1) << ctl.output;

  // A valid policy after it applies, and the error goes.
  const model::Policy fixed = withWebPort(9090);
  ASSERT_EQ(commit(fixed), 3);
  EXPECT_TRUE(eventuallyDesired(3));
  EXPECT_TRUE(statusShows([](const DaemonStatus& st) {
    return st.state_generation == 3 && st.last_error.empty();
  })) << statusText();
}

TEST_F(DaemonStateTest, StateServerKilledAndRestartedChangesNothingThenFollowsAgain) {
  ASSERT_NO_FATAL_FAILURE(attachPorts());
  ASSERT_EQ(commit(sample_), 1);
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  ASSERT_TRUE(eventuallyDesired(1));

  store_.reset();
  server_->kill9();
  ASSERT_TRUE(statusShows([](const DaemonStatus& s) {
    return s.state_connection == "reconnecting" && !s.state_error.empty();
  })) << statusText();
  EXPECT_GT(daemon_->countInLog("state_lost"), 0u);
  // Fail-secure: the flows stay while the database is away.
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(eventuallyDesired(1, 1s));
  EXPECT_TRUE(daemon_->running());

  VGT_ASSERT_OK(server_->restart());
  ASSERT_TRUE(statusShows([](const DaemonStatus& s) {
    return s.state_connection == "connected" && s.state_error.empty();
  })) << statusText()
      << daemon_->logTail();
  // The new connection's full replica was applied as a change: nothing to send.
  EXPECT_TRUE(eventually([&] { return daemon_->countInLog("state_loaded generation=1 ") == 2; }))
      << daemon_->logTail();
  EXPECT_TRUE(eventually([&] {
    return daemon_->countInLog("state_applied generation=1 ") == 1 &&
           daemon_->countInLog("added=0 modified=0 deleted=0 flows=") == 1;
  })) << daemon_->logTail();
  EXPECT_TRUE(eventuallyDesired(1));

  const model::Policy changed = withWebPort(7070);
  ASSERT_EQ(commit(changed), 2);
  EXPECT_TRUE(eventuallyDesired(2));
  EXPECT_TRUE(statusShows([](const DaemonStatus& s) { return s.state_generation == 2; }))
      << statusText();
}

TEST_F(DaemonStateTest, KilledInTheMiddleOfACommitSeriesEndsOnTheFinalPolicy) {
  ASSERT_NO_FATAL_FAILURE(attachPorts());
  ASSERT_EQ(commit(sample_), 1);
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  ASSERT_TRUE(eventuallyDesired(1));

  // 30 commits, each replacing the added rule (so some flows go and others come); vpcguardd is
  // killed after the tenth and started again after the last.
  model::Policy latest = sample_;
  int64_t generation = 1;
  for (int i = 0; i < 30; ++i) {
    latest = withWebPort(10000 + i);
    if (i % 3 == 0) {
      group(latest, "sg-db").ingress.push_back(tcpFromAnywhere(20000 + i));
    }
    generation = commit(latest);
    ASSERT_EQ(generation, 2 + i);
    if (i == 9) {
      daemon_->stop(SIGKILL);
    }
  }
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  EXPECT_TRUE(eventuallyDesired(generation));
  EXPECT_TRUE(statusShows([&](const DaemonStatus& s) { return s.state_generation == generation; }))
      << statusText();
}

// At configs/large.toml's size (200 interfaces, 43k flows) a one-rule commit still goes in as a
// delta; the log line `state_applied` carries the time from reading the monitor update to the
// switch's reply to the bundle, and its split (printed, for docs/design.md's figures).
TEST_F(DaemonStateTest, LargePolicyOneRuleChangeGoesInAsADelta) {
  auto loaded = config::loadPolicy(sourceDir() + "/configs/large.toml");
  ASSERT_TRUE(loaded) << loaded.error().toError().message;
  const model::Policy large = std::move(*loaded);
  VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
  std::string ports;
  for (size_t i = 0; i < large.network_interfaces.size(); ++i) {
    const std::string port = "p" + std::to_string(i);
    ports += std::string(i == 0 ? "" : " -- ") + "add-port " + kBridge + " " + port +
             " -- set interface " + port +
             " type=dummy external_ids:iface-id=" + large.network_interfaces[i].id;
  }
  VGT_ASSERT_OK(sandbox_->vsctl(ports));
  ASSERT_EQ(commit(large), 1);
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(60s)) << daemon_->logTail();
  ASSERT_TRUE(eventuallyDesired(1, 60s));

  model::Policy changed = large;
  changed.security_groups.front().ingress.push_back(tcpFromAnywhere(4444));
  ASSERT_EQ(commit(changed), 2);
  ASSERT_TRUE(
      eventually([&] { return daemon_->countInLog("state_applied generation=2 ") == 1; }, 60s))
      << daemon_->logTail();
  EXPECT_TRUE(eventuallyDesired(2, 60s));
  std::cout << "[ figures  ] " << lineWith("state_applied generation=2 ") << "\n";
  EXPECT_EQ(daemon_->countInLog("full_diff=false"), 1u) << daemon_->logTail();
}

}  // namespace
}  // namespace vpcguard::test
