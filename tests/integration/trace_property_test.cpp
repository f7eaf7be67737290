// Property: for random valid policies and random packets, the policy-level trace
// (explain::trace(), computed from the model alone) says what the switch does with the flows the
// translator made for the same policy (ofproto/trace on a sandbox bridge, compared by
// explain::compare()). Thousands of cases per run: one switch, its flows replaced policy after
// policy (FlowSync writes only the difference), one ofproto/trace per packet over the unixctl
// socket.
//
// Reproduce a failure: every message names its policy seed; VPCGUARD_TRACE_SEED=<that seed>
// makes it the first policy, with the same packets. VPCGUARD_TRACE_CASES sets the number of
// packets (kPacketsPerPolicy per policy); a run without VPCGUARD_TRACE_SEED picks a random seed
// and prints it.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "explain/ofproto_trace.h"
#include "explain/trace.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/policy_switch.h"
#include "tests/harness/random_policy.h"

namespace vpcguard::test {
namespace {

constexpr int kDefaultCases = 5000;
constexpr int kPacketsPerPolicy = 50;
constexpr int kFullReports = 8;      // disagreements printed in full; the rest are counted

uint32_t envNumber(const char* name, uint32_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? static_cast<uint32_t>(std::strtoul(value, nullptr, 0))
                                            : fallback;
}

struct Tally {
  int cases = 0;
  int allow = 0;
  int drop = 0;
  int to_local = 0;  // allowed to the host (unfiltered traffic)
  int ipv6 = 0;
  int replies = 0;
  int not_comparable = 0;  // replies of connections that never existed
  int disagreements = 0;
  std::map<std::string, int> drops;  // by reg4 kind, for the printed mix

  std::string dropMix() const {
    std::string out;
    for (const auto& [kind, n] : drops) {
      out += (out.empty() ? "" : ", ") + kind + " " + std::to_string(n);
    }
    return out;
  }
};

// reg4's high byte as docs/pipeline.md names it.
std::string dropKind(uint32_t reg4) {
  static const char* const kNames[] = {
      "no verdict",    "port security", "no route",   "SG egress",         "SG ingress",
      "NACL outbound", "NACL inbound",  "ct invalid", "SG egress revoked", "SG ingress revoked"};
  const uint32_t kind = reg4 >> 24;
  return kind < std::size(kNames) ? kNames[kind] : "kind " + std::to_string(kind);
}

class TraceProperty : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
  }

  // One packet: trace, switch, compare. Returns a report when they disagree.
  std::optional<std::string> check(const model::Policy& policy, uint32_t seed,
                                   const explain::TraceRequest& request, Tally& tally) {
    const std::string where =
        "policy seed " + std::to_string(seed) + ", packet " + describeRequest(request) + "\n";
    auto traced = explain::trace(policy, request);
    if (!traced) {
      // The generator only asks for packets the policy can name: an error is a bug on one side.
      return where + "trace() refused the request: " + traced.error().message;
    }
    const explain::SwitchProbe& probe = traced->probe;
    if (!probe.comparable) {
      // The reply of a connection that never existed: ofproto/trace cannot express that.
      ++tally.not_comparable;
      return std::nullopt;
    }
    ++tally.cases;
    (traced->verdict == explain::Verdict::kAllow ? tally.allow : tally.drop) += 1;
    if (!probe.delivered) {
      tally.drops[dropKind(probe.drop_verdict)] += 1;
    }
    tally.to_local += probe.delivered && probe.out_interface == "LOCAL" ? 1 : 0;
    tally.ipv6 += traced->packet.src.isV4() ? 0 : 1;
    tally.replies += request.reply ? 1 : 0;

    const auto report = [&](const std::string& what, const std::string& switch_text) {
      return where + what + "\n--- trace:\n" + explain::renderText(*traced) + "--- probe: in " +
             probe.in_interface + ": " + probe.flow + ", ct_next " +
             [&] {
               std::string s;
               for (const auto& state : probe.ct_next) {
                 s += "[" + state + "]";
               }
               return s;
             }() +
             ", expects " +
             (probe.delivered ? "delivery to " + probe.out_interface
                              : "drop with reg4 " + std::to_string(probe.drop_verdict)) +
             "\n--- policy (the parts that decide):\n" + describePolicyFor(policy, traced->packet) +
             "--- ofproto/trace:\n" + switch_text;
    };
    if ((traced->verdict == explain::Verdict::kAllow) != probe.delivered) {
      return report("the trace's verdict and its own probe disagree", "(not run)\n");
    }
    auto args = explain::ofprotoTraceArgs(PolicySwitch::kBridge, probe, ofports_);
    if (!args) {
      return report("ofprotoTraceArgs: " + args.error().message, "(not run)\n");
    }
    auto observed =
        explain::runOfprotoTrace(switch_->sandbox().vswitchdCtl(), *args, std::chrono::seconds(10));
    if (!observed) {
      return report("ofproto/trace failed: " + observed.error().message, "(none)\n");
    }
    int out_ofport = 0;
    if (probe.delivered) {
      auto it = ofports_.find(probe.out_interface);
      if (it == ofports_.end()) {
        return report("the probe delivers to " + probe.out_interface + ", which has no port",
                      observed->raw);
      }
      out_ofport = it->second;
    }
    const auto comparison = explain::compare(probe, *observed, out_ofport);
    if (!comparison.agree) {
      return report(comparison.explanation, observed->raw);
    }
    // compare() accepts extra outputs next to the expected one (mirror copies); these policies
    // mirror nothing, so a delivered packet leaves through exactly one port.
    if (probe.delivered &&
        std::any_of(observed->output_ofports.begin(), observed->output_ofports.end(),
                    [&](int port) { return port != out_ofport; })) {
      return report("the switch also outputs to other ports", observed->raw);
    }
    return std::nullopt;
  }

  std::unique_ptr<PolicySwitch> switch_;
  std::map<std::string, int> ofports_;
};

TEST_F(TraceProperty, TraceVerdictIsTheSwitchVerdict) {
  const uint32_t seed = envNumber("VPCGUARD_TRACE_SEED", std::random_device{}());
  const int cases = static_cast<int>(envNumber("VPCGUARD_TRACE_CASES", kDefaultCases));
  const int policies = std::max(1, (cases + kPacketsPerPolicy - 1) / kPacketsPerPolicy);
  std::cout << "trace property: VPCGUARD_TRACE_SEED=" << seed << " VPCGUARD_TRACE_CASES=" << cases
            << " (" << policies << " policies x " << kPacketsPerPolicy << " packets)\n";

  const auto started = std::chrono::steady_clock::now();
  VGT_ASSIGN_OR_FAIL(switch_, PolicySwitch::start());
  Tally tally;
  std::chrono::steady_clock::duration installing{};
  for (int i = 0; i < policies; ++i) {
    const uint32_t policy_seed = seed + static_cast<uint32_t>(i);
    VGT_ASSIGN_OR_FAIL(const model::Policy policy, randomPolicy(policy_seed));
    const auto install_start = std::chrono::steady_clock::now();
    auto installed = switch_->install(policy);
    ASSERT_TRUE(installed) << "policy seed " << policy_seed << ": " << installed.error().message;
    installing += std::chrono::steady_clock::now() - install_start;
    ofports_ = switch_->ofports();
    ofports_["LOCAL"] = explain::kLocalOfport;

    RandomPackets packets(policy, policy_seed);
    const int n = std::min(kPacketsPerPolicy, cases - i * kPacketsPerPolicy);
    for (int k = 0; k < n; ++k) {
      if (auto failure = check(policy, policy_seed, packets.next(), tally)) {
        if (++tally.disagreements <= kFullReports) {
          ADD_FAILURE() << *failure;
        } else if (tally.disagreements <= 10 * kFullReports) {
          // The first two lines: which case, and what went wrong.
          const size_t end = failure->find('\n', failure->find('\n') + 1);
          std::cout << "also: " << failure->substr(0, end) << "\n";
        }
      }
    }
  }
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  const double total = seconds(std::chrono::steady_clock::now() - started);
  std::cout << "trace property: " << tally.cases << " cases compared in " << total << " s ("
            << seconds(installing) << " s installing " << policies << " policies); verdicts "
            << tally.allow << " allow (" << tally.to_local << " of them to the host) / "
            << tally.drop << " drop (" << tally.dropMix() << "); " << tally.ipv6 << " IPv6, "
            << tally.replies << " replies; " << tally.not_comparable
            << " not comparable (replies of dropped connections); " << tally.disagreements
            << " disagreements\n";
  EXPECT_EQ(tally.disagreements, 0)
      << "reproduce with VPCGUARD_TRACE_SEED=<the policy seed in a message above>";
  // The property says little unless both verdicts are common.
  EXPECT_GT(tally.allow, tally.cases / 10) << "too few allowed packets";
  EXPECT_GT(tally.drop, tally.cases / 10) << "too few dropped packets";
}

}  // namespace
}  // namespace vpcguard::test
