// Crashes during a stream of API changes (issue 11): 200 authorize/revoke requests through the real
// vpcguard-apid, while vpcguard-apid and vpcguardd are each killed with SIGKILL at random moments
// (some while a request is in flight) and started again. Afterwards the three records agree:
//  - the database: every committed generation is exactly one "allowed" change in the audit
//    table, and nothing else changed it;
//  - the audit log file: the same records as the audit table, in sequence, without gaps;
//  - the switch: exactly the translation of the database's final policy.
// VPCGUARD_CRASH_SEED repeats a run (the seed is printed).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/client.h"
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

namespace vpcguard::test {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
constexpr const char* kBridge = "br-int";

class ApiCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = sandboxUnavailableReason()) GTEST_SKIP() << *reason;
    if (auto reason = StateServer::unavailableReason()) GTEST_SKIP() << *reason;
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(server_, StateServer::start());
    VGT_ASSERT_OK(sandbox_->addBridge(kBridge));
    VGT_ASSIGN_OR_FAIL(int web, sandbox_->addDummyPort(kBridge, "p-web", "eni-web1"));
    VGT_ASSIGN_OR_FAIL(int db, sandbox_->addDummyPort(kBridge, "p-db", "eni-db1"));
    (void)web;
    (void)db;
    auto resolved = resolveDefaults(samplePolicy());
    ASSERT_TRUE(resolved) << resolved.error().message;
    VGT_ASSIGN_OR_FAIL(auto store, state::StateStore::open(server_->target()));
    VGT_ASSIGN_OR_FAIL(auto committed, store->commit(*resolved));
    ASSERT_EQ(committed.status, state::StateStore::CommitStatus::kCommitted);
    Vpcguardd::Options o;
    o.state = server_->target();
    o.bridge = kBridge;
    o.datapath_type = "dummy";
    o.log_level = "info";
    daemon_ = std::make_unique<Vpcguardd>(*sandbox_, o);
    socket_ = sandbox_->dir() + "/api.sock";
    audit_ = sandbox_->dir() + "/audit.log";
    client_.endpoint = "unix:" + socket_;
    client_.timeout_ms = 10000;
  }
  void TearDown() override {
    apid_.reset();
    daemon_.reset();
    server_.reset();
    sandbox_.reset();
  }

  // Starts vpcguard-apid and waits for its socket to answer.
  void startApid() {
    ::unlink(socket_.c_str());  // a killed server leaves its socket file
    ChildProcess::Options o;
    o.argv = {binaryDir() + "/api/vpcguard-apid", "--socket", socket_, "--state",
              server_->target(), "--iam", sourceDir() + "/configs/iam", "--audit-log", audit_,
              "--log-level", "info"};
    o.output_path = sandbox_->dir() + "/vpcguard-apid.log";
    VGT_ASSIGN_OR_FAIL(apid_, ChildProcess::spawn(o));
    api::Request ping;
    ping.action = "DescribeVpcs";
    ASSERT_TRUE(waitFor(
        [&] {
          auto r = api::call(client_, ping);
          return r && r->ok;
        },
        20s, 20ms))
        << "vpcguard-apid did not answer; see " << o.output_path;
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<StateServer> server_;
  std::unique_ptr<Vpcguardd> daemon_;
  std::unique_ptr<ChildProcess> apid_;
  std::string socket_;
  std::string audit_;
  api::ClientOptions client_;
};

Json permission(int port) {
  return Json{{"GroupId", "sg-web"},
              {"IpPermissions",
               {{{"IpProtocol", "tcp"},
                 {"FromPort", port},
                 {"ToPort", port},
                 {"IpRanges", {{{"CidrIp", "198.51.100.0/24"}}}}}}}};
}

TEST_F(ApiCrashTest, TwoHundredChangesWithKillNineOfApidAndVpcguarddEndInAgreement) {
  const char* seed_env = std::getenv("VPCGUARD_CRASH_SEED");
  const unsigned seed = seed_env != nullptr ? static_cast<unsigned>(std::stoul(seed_env))
                                            : std::random_device{}();
  std::printf("VPCGUARD_CRASH_SEED=%u\n", seed);
  std::mt19937 rng(seed);
  ASSERT_NO_FATAL_FAILURE(startApid());
  ASSERT_TRUE(daemon_->start());
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();

  int apid_kills = 0;
  int daemon_kills = 0;
  int unknown_outcome = 0;
  std::set<int> authorized;  // ports the client believes are in (for choosing revokes)
  for (int i = 0; i < 200; ++i) {
    // Authorize a new port; every third change revokes one authorized before.
    api::Request request;
    if (i % 3 == 2 && !authorized.empty()) {
      const int port = *std::next(authorized.begin(),
                                  static_cast<long>(rng() % authorized.size()));
      request.action = "RevokeSecurityGroupIngress";
      request.parameters = permission(port);
      authorized.erase(port);
    } else {
      const int port = 30000 + i;
      request.action = "AuthorizeSecurityGroupIngress";
      request.parameters = permission(port);
      authorized.insert(port);
    }
    const auto dice = rng() % 20;
    std::thread killer;
    if (dice == 0) {
      // SIGKILL the API server a few hundred microseconds into the request.
      const pid_t pid = apid_->pid();
      const auto delay = std::chrono::microseconds(rng() % 3000);
      killer = std::thread([pid, delay] {
        std::this_thread::sleep_for(delay);
        ::kill(pid, SIGKILL);
      });
      ++apid_kills;
    } else if (dice == 1) {
      daemon_->stop(SIGKILL);
      ++daemon_kills;
    }
    auto response = api::call(client_, request);
    if (killer.joinable()) {
      killer.join();
    }
    if (!response || !response->ok) {
      // Killed mid-request (outcome unknown until we look), or a revoke/authorize the kill made
      // moot: the database decides below, not the client's belief.
      ++unknown_outcome;
    }
    if (dice == 0) {
      ASSERT_TRUE(waitFor([&] { return !apid_->running(); }, 5s));
      ASSERT_NO_FATAL_FAILURE(startApid());
    }
    if (!daemon_->running() && (dice == 1 || rng() % 4 == 0)) {
      ASSERT_TRUE(daemon_->start());
    }
  }
  if (!daemon_->running()) {
    ASSERT_TRUE(daemon_->start());
  }
  std::printf("apid kills %d, vpcguardd kills %d, requests without an answer or refused %d\n",
              apid_kills, daemon_kills, unknown_outcome);

  // The database.
  VGT_ASSIGN_OR_FAIL(auto reader, state::StateStore::open(server_->target()));
  const int64_t generation = reader->generation();
  VGT_ASSIGN_OR_FAIL(model::Policy final_policy, state::policyFromReplica(reader->replica()));
  const auto records = state::auditRecords(reader->replica());
  std::set<int64_t> change_generations;
  for (const auto& record : records) {
    const bool change = record.action == "ec2:AuthorizeSecurityGroupIngress" ||
                        record.action == "ec2:RevokeSecurityGroupIngress";
    if (change && record.result == "allowed") {
      EXPECT_TRUE(change_generations.insert(record.generation).second)
          << "two allowed changes claim generation " << record.generation;
    }
  }
  // Generation 1 is the seed commit (no request); every later one is exactly one allowed change.
  std::set<int64_t> expected;
  for (int64_t g = 2; g <= generation; ++g) expected.insert(g);
  EXPECT_EQ(change_generations, expected) << "generation " << generation;
  EXPECT_GE(generation, 150) << "most of the 200 changes should have been committed";

  // The audit file: the same records, in sequence, once vpcguard-apid has caught up at start.
  std::vector<int64_t> file_ids;
  {
    std::ifstream in(audit_);
    for (std::string line; std::getline(in, line);) {
      const Json record = Json::parse(line, nullptr, false);
      ASSERT_FALSE(record.is_discarded()) << "torn or garbled audit line: " << line;
      file_ids.push_back(record.at("eventID").get<int64_t>());
    }
  }
  std::vector<int64_t> table_ids;
  for (const auto& record : records) table_ids.push_back(record.sequence);
  EXPECT_EQ(file_ids, table_ids);
  for (size_t k = 0; k < table_ids.size(); ++k) {
    EXPECT_EQ(table_ids[k], static_cast<int64_t>(k + 1)) << "gap in the audit sequence";
  }

  // The switch: the translation of the final policy, once vpcguardd reports that generation.
  ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  ASSERT_TRUE(waitFor(
      [&] {
        auto s = daemon_->status();
        return s && s->state_generation == generation;
      },
      30s, 50ms))
      << daemon_->logTail();
  auto indices = assignInterfaceIndices(final_policy, {});
  ASSERT_TRUE(indices) << indices.error().message;
  EXPECT_TRUE(waitFor(
      [&] { return static_cast<bool>(switchEqualsDesired(*sandbox_, kBridge, final_policy, *indices)); },
      20s, 100ms))
      << switchEqualsDesired(*sandbox_, kBridge, final_policy, *indices).message();
}

}  // namespace
}  // namespace vpcguard::test
