// PolicyEngine (incremental translation + FlowSync::applyDelta) against a real ovs-vswitchd:
// after every change the switch holds exactly the flows translate() makes for the new policy,
// although only the delta was sent; a change costs bundles the size of the change.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "daemon/policy_engine.h"
#include "ovs-plugin/openflow.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::test {
namespace {

using FlowText = std::tuple<uint8_t, uint16_t, uint64_t, std::string, std::string>;

class PolicyEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSERT_OK(sandbox_->addBridge("br0"));
    VGT_ASSIGN_OR_FAIL(channel_, ovs::connectOpenFlow(sandbox_->bridgeTarget("br0")));
    policy_ = samplePolicy();
    int port = 1;
    for (const auto& e : policy_.network_interfaces) {
      ofports_[e.id] = port++;
    }
    indices_ = *assignInterfaceIndices(policy_, {});
    engine_.attach(channel_.get());
  }

  PolicyEngine::Input input() const {
    PolicyEngine::Input in;
    in.policy = &policy_;
    in.ofports = &ofports_;
    in.interface_index = &indices_;
    in.generation = 1;
    return in;
  }

  // The switch's flows (ours) against translate() of the current policy, both in OVS's text.
  void expectSwitchMatchesPolicy(const std::string& where) {
    TranslateInput in;
    in.policy = &policy_;
    in.ofports = ofports_;
    in.interface_index = indices_;
    in.generation = 1;
    in.rule_ids = &engine_.translator().ruleIds();
    auto t = translate(in);
    ASSERT_TRUE(t.has_value()) << where;
    std::set<FlowText> want;
    for (const auto& f : t->flows) {
      auto n = ovs::normalizeFlow(f);
      ASSERT_TRUE(n.has_value()) << where << ": " << n.error().message;
      want.emplace(n->table, n->priority, n->cookie, n->match, n->actions);
      // FlowSync parses only the match of clause flows: it relies on OVS printing conjunction
      // actions exactly as the translator writes them.
      if (f.actions.starts_with("conjunction(")) {
        EXPECT_EQ(n->actions, f.actions) << where;
      }
    }
    auto dumped = channel_->dumpFlows(
        ovs::DumpFilter{std::nullopt, pipeline::kCookieMagic, pipeline::kCookieMagicMask});
    ASSERT_TRUE(dumped.has_value()) << where;
    std::set<FlowText> have;
    for (const auto& d : *dumped) {
      have.emplace(d.flow.table, d.flow.priority, d.flow.cookie, d.flow.match, d.flow.actions);
    }
    EXPECT_EQ(have.size(), want.size()) << where;
    std::vector<FlowText> missing;
    std::vector<FlowText> extra;
    std::set_difference(want.begin(), want.end(), have.begin(), have.end(),
                        std::back_inserter(missing));
    std::set_difference(have.begin(), have.end(), want.begin(), want.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(missing.empty()) << where << ": first missing: " << std::get<3>(missing.front())
                                 << " actions=" << std::get<4>(missing.front());
    EXPECT_TRUE(extra.empty()) << where << ": first extra: " << std::get<3>(extra.front())
                               << " actions=" << std::get<4>(extra.front());
  }

  // Applies the current policy; the change must go as a delta (not a whole-table comparison).
  EngineReport applyDelta(const std::string& where) {
    auto r = engine_.apply(input());
    EXPECT_TRUE(r.has_value()) << where << ": " << (r ? "" : r.error().error.message);
    if (!r) {
      return {};
    }
    EXPECT_FALSE(r->full) << where;
    expectSwitchMatchesPolicy(where);
    return *r;
  }

  model::SecurityGroup& group(const std::string& id) {
    for (auto& g : policy_.security_groups) {
      if (g.id == id) {
        return g;
      }
    }
    ADD_FAILURE() << "no group " << id;
    return policy_.security_groups.front();
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<ovs::OpenFlowChannel> channel_;
  model::Policy policy_;
  std::map<std::string, int> ofports_;
  std::map<std::string, uint16_t> indices_;
  PolicyEngine engine_;
};

TEST_F(PolicyEngineTest, EveryChangeSendsItsDeltaAndTheSwitchMatchesTheFullTranslation) {
  auto start = engine_.resync(input());
  ASSERT_TRUE(start.has_value()) << start.error().error.message;
  EXPECT_TRUE(start->full);
  EXPECT_EQ(start->sync.added, start->flows);
  expectSwitchMatchesPolicy("start");

  // A rule inserted first in its group: its own flows plus one more action on the member
  // clauses of sg-web's interface; nothing else moves (stable conjunction ids).
  model::SecurityGroupRule rule;
  rule.ip_protocol = model::kProtoTcp;
  rule.ports = model::PortRange{8080, 8080};
  rule.peer = cidr("192.0.2.0/24");
  auto& ingress = group("sg-web").ingress;
  ingress.insert(ingress.begin(), rule);
  auto added = applyDelta("insert rule");
  EXPECT_GT(added.sync.added, 0U);
  EXPECT_LE(added.sync.changes(), 8U);
  EXPECT_EQ(added.work.rules, 1U);

  ingress.erase(ingress.begin());
  auto removed = applyDelta("remove rule");
  EXPECT_GT(removed.sync.deleted, 0U);
  EXPECT_EQ(removed.sync.changes(), added.sync.changes());

  // Membership: db joins sg-bastion (peer of rules in sg-web and sg-db) and leaves again.
  auto& db = policy_.network_interfaces[2];
  db.security_group_ids.push_back("sg-bastion");
  applyDelta("join");
  db.security_group_ids.pop_back();
  applyDelta("leave");

  // Detach and re-attach on another port.
  const std::string web = policy_.network_interfaces[0].id;
  ofports_.erase(web);
  applyDelta("detach");
  ofports_[web] = 42;
  applyDelta("attach on another port");

  // A NACL entry, then strict revocation (every rule's commit flows change).
  policy_.network_acls.back().entries.push_back(
      naclEntry(250, false, model::kProtoUdp, false, "10.0.1.0/24"));
  applyDelta("nacl entry");
  policy_.vpc.strict_revocation = true;
  applyDelta("strict revocation");

  // Nothing changed: nothing is sent.
  auto same = applyDelta("no change");
  EXPECT_EQ(same.sync.changes(), 0U);
}

TEST_F(PolicyEngineTest, AfterARejectedBundleTheNextApplyComparesTheWholeTable) {
  ASSERT_TRUE(engine_.resync(input()).has_value());
  // The switch refuses to grow the SG egress evaluation table (a full table, as a real switch
  // may have): the bundle that adds a rule there is rejected and changes nothing.
  auto table = channel_->dumpFlows(
      ovs::DumpFilter{pipeline::kSgEgressEval, pipeline::kCookieMagic, pipeline::kCookieMagicMask});
  ASSERT_TRUE(table.has_value());
  VGT_ASSERT_OK(sandbox_->vsctl(
      fmt::format("-- --id=@ft create Flow_Table flow_limit={} overflow_policy=refuse "
                  "-- set Bridge br0 flow_tables:{}=@ft",
                  table->size(), static_cast<int>(pipeline::kSgEgressEval))));
  model::SecurityGroupRule rule;
  rule.ip_protocol = model::kProtoUdp;
  rule.ports = model::PortRange{53, 53};
  rule.peer = cidr("198.51.100.0/24");
  group("sg-web").egress.push_back(rule);
  auto rejected = engine_.apply(input());
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().kind, PolicyEngine::FailureKind::kSwitch);

  // As vpcguardd does: the old policy stays. The translator is one change ahead of the switch,
  // so the engine compares the whole table instead of trusting its delta.
  VGT_ASSERT_OK(sandbox_->vsctl("clear Bridge br0 flow_tables"));
  group("sg-web").egress.pop_back();
  auto r = engine_.apply(input());
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_TRUE(r->full);
  EXPECT_EQ(r->sync.changes(), 0U);
  expectSwitchMatchesPolicy("after rejection");
  // In step again: the next change is a delta.
  group("sg-web").egress.push_back(rule);
  applyDelta("rule after rejection");
}

}  // namespace
}  // namespace vpcguard::test
