// Per-rule hit counters against real packets: `vpcguardctl stats` (the command users run, on the
// lab's switch) moves by exactly the packets sent, on the NACL entries (every packet) and on
// the security-group rules (the packets they decided: one per new connection).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/config_loader.h"
#include "tests/harness/assertions.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"

namespace vpcguard::test {
namespace {

struct Hits {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

class RuleHitsE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = sourceDir() + "/configs/lab.toml";
    auto loaded = config::loadPolicy(config_);
    ASSERT_TRUE(loaded) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
    VGT_ASSIGN_OR_FAIL(lab_, PolicyLab::start(policy_));
    VGT_ASSERT_OK(lab_->install(policy_));
  }

  // `vpcguardctl stats --output json` on the lab's switch, by rule name ("acl-private inbound
  // rule 130", "sg-db ingress #3").
  std::map<std::string, Hits> stats(const std::string& output = "json") {
    const auto& sb = lab_->sandbox();
    const std::string command = programPath("vpcguardctl") + " stats --config " + config_ +
                                " --status-file " + sb.dir() + "/no-daemon.status.json" +
                                " --openflow " + sb.bridgeTarget(PolicyLab::kBridge) +
                                " --ovsdb " + sb.dbTarget() + " --output " + output;
    auto r = run(command);
    EXPECT_TRUE(r.ok()) << command << "\n" << r.output;
    last_output_ = r.output;
    std::map<std::string, Hits> hits;
    if (!r.ok() || output != "json") {
      return hits;
    }
    const auto json = nlohmann::json::parse(r.output);
    for (const auto& rule : json.at("rules")) {
      const std::string text = rule.at("rule").get<std::string>();
      hits[text.substr(0, text.find(':'))] = {rule.at("packets").get<uint64_t>(),
                                              rule.at("bytes").get<uint64_t>()};
    }
    return hits;
  }

  // Reads until the rules have moved by `expected` since `before`, for up to 5 s: a rule's
  // counters include a packet the datapath handled only once the switch's revalidator has
  // pushed the datapath flow's statistics (about every half second), not at once. Returns the
  // last reading.
  std::map<std::string, Hits> statsOnceMoved(const std::map<std::string, Hits>& before,
                                             const std::map<std::string, uint64_t>& expected) {
    std::map<std::string, Hits> after;
    (void)waitFor([&] {
      after = stats();
      return moved(before, after) == expected;
    }, std::chrono::seconds(5), std::chrono::milliseconds(200));
    return after;
  }

  // How much each rule moved between two readings.
  static std::map<std::string, uint64_t> moved(const std::map<std::string, Hits>& before,
                                               const std::map<std::string, Hits>& after) {
    std::map<std::string, uint64_t> delta;
    for (const auto& [name, h] : after) {
      auto it = before.find(name);
      const uint64_t was = it == before.end() ? 0 : it->second.packets;
      if (h.packets != was) {
        delta[name] = h.packets - was;
      }
    }
    return delta;
  }

  std::string config_;
  model::Policy policy_;
  std::unique_ptr<PolicyLab> lab_;
  std::string last_output_;
};

TEST_F(RuleHitsE2e, PingMovesNaclEntriesPerPacketAndTheSgRuleOncePerConnection) {
  const auto before = stats();
  ASSERT_FALSE(before.empty()) << last_output_;
  auto ping = lab_->exec("eni-web1", "ping -c 5 -i 0.2 -W 2 10.0.2.10");
  ASSERT_TRUE(ping.ok()) << ping.output;
  // Requests cross the public subnet's NACL outbound and the private one's inbound; replies the
  // other way. ICMP echo with one id is one connection: its rules decide its first packet.
  const std::map<std::string, uint64_t> expected = {
      {"acl-default outbound rule 100", 5}, {"acl-private inbound rule 130", 5},
      {"acl-private outbound rule 110", 5}, {"acl-default inbound rule 100", 5},
      {"sg-web egress #1", 1},              {"sg-db ingress #3", 1},
  };
  const auto delta = moved(before, statsOnceMoved(before, expected));
  EXPECT_EQ(delta, expected) << last_output_;
}

TEST_F(RuleHitsE2e, BlockedDatagramsCountOnTheStarRuleAndTheirBytesAreExact) {
  const auto before = stats();
  ASSERT_FALSE(before.empty()) << last_output_;
  // Four datagrams from four source ports: four connections at the source's SG, four packets
  // the private NACL's `*` rule denies (it allows only TCP and ICMP in).
  // (A socket of its own sends each: `nc -u -w 0` may quit before it has read its input.)
  for (int port = 40001; port <= 40004; ++port) {
    auto sent = lab_->exec(
        "eni-web1", "/usr/bin/python3 -c \"import socket; s = socket.socket(socket.AF_INET, "
                    "socket.SOCK_DGRAM); s.bind(('', " +
                        std::to_string(port) + ")); s.sendto(b'x\\n', ('10.0.2.10', 7000))\"");
    ASSERT_TRUE(sent.ok()) << sent.output;
  }
  const std::map<std::string, uint64_t> expected = {
      {"acl-default outbound rule 100", 4},
      {"acl-private inbound rule *", 4},
      {"sg-web egress #1", 4},
  };
  const auto after = statsOnceMoved(before, expected);
  ASSERT_FALSE(after.empty()) << last_output_;
  const auto delta = moved(before, after);
  EXPECT_EQ(delta, expected) << last_output_;
  // "x\n" = 2 bytes of payload + 8 UDP + 20 IPv4 + 14 Ethernet = 44 bytes per frame.
  EXPECT_EQ(after.at("acl-private inbound rule *").bytes -
                before.at("acl-private inbound rule *").bytes,
            4U * 44U);
}

TEST_F(RuleHitsE2e, LintOnTheSwitchReportsRulesWithoutHitsOnly) {
  auto ping = lab_->exec("eni-web1", "ping -c 1 -W 2 10.0.2.10");
  ASSERT_TRUE(ping.ok()) << ping.output;
  const auto& sb = lab_->sandbox();
  auto lint = [&](int window) {
    return run(programPath("vpcguardctl") + " lint " + config_ + " --switch --window " +
               std::to_string(window) + " --status-file " + sb.dir() + "/no-daemon.status.json" +
               " --openflow " + sb.bridgeTarget(PolicyLab::kBridge) + " --ovsdb " + sb.dbTarget() +
               " --output json");
  };
  CommandResult r;
  std::set<std::string> unhit;
  const auto read = [&] {
    r = lint(0);
    unhit.clear();
    const auto report = nlohmann::json::parse(r.output, nullptr, false);
    if (report.is_discarded() || !report.contains("findings")) {
      return false;
    }
    for (const auto& f : report.at("findings")) {
      if (f.at("code").get<std::string>() == "VG501") {
        unhit.insert(f.at("object").get<std::string>());
      }
    }
    return true;
  };
  // The ping's packets count once the switch's revalidator has pushed them (see
  // statsOnceMoved()): read until they do, for up to 5 s.
  (void)waitFor([&] {
    return read() && !unhit.contains("acl-private inbound rule 130") &&
           !unhit.contains("sg-db ingress #3");
  }, std::chrono::seconds(5), std::chrono::milliseconds(200));
  // lab.toml opens SSH to the world on sg-bastion: an error (exit 2) whatever the counters say.
  ASSERT_EQ(r.exit_code, 2) << r.output;
  // The ping's rules were hit; nothing ever matched the SSH and HTTPS rules.
  EXPECT_FALSE(unhit.contains("acl-private inbound rule 130")) << r.output;
  EXPECT_FALSE(unhit.contains("sg-db ingress #3")) << r.output;
  EXPECT_TRUE(unhit.contains("sg-db ingress #2")) << r.output;
  EXPECT_TRUE(unhit.contains("acl-private inbound rule 110")) << r.output;
  // A window longer than the flows have existed reports nothing: their counters cover less.
  auto young = lint(3600);
  EXPECT_EQ(young.output.find("VG501"), std::string::npos) << young.output;
}

TEST_F(RuleHitsE2e, PrometheusAndTableOutputsNameTheRules) {
  (void)stats("prometheus");
  EXPECT_NE(last_output_.find("# TYPE vpcguard_rule_hit_packets_total counter"), std::string::npos)
      << last_output_;
  EXPECT_NE(last_output_.find("id=\"acl-private\""), std::string::npos) << last_output_;
  (void)stats("table");
  EXPECT_NE(last_output_.find("sg-db"), std::string::npos) << last_output_;
}

}  // namespace
}  // namespace vpcguard::test
