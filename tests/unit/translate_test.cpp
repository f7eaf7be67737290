#include "translator/translate.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

TranslateInput inputFor(const model::Policy& p, bool attach_all = true) {
  TranslateInput in;
  in.policy = &p;
  in.interface_index = *assignInterfaceIndices(p, {});
  int port = 1;
  if (attach_all) {
    for (const auto& e : p.network_interfaces) {
      in.ofports[e.id] = port++;
    }
  }
  in.generation = 7;
  return in;
}

size_t countMatching(const std::vector<Flow>& flows, uint8_t table, const std::string& needle) {
  return static_cast<size_t>(std::count_if(flows.begin(), flows.end(), [&](const Flow& f) {
    return f.table == table && (f.match + " " + f.actions).find(needle) != std::string::npos;
  }));
}

TEST(PortRangeMasks, SinglePortIsExact) {
  auto m = portRangeMasks(80, 80);
  ASSERT_EQ(m.size(), 1U);
  EXPECT_EQ(m[0].value, 80);
  EXPECT_EQ(m[0].mask, 0xffff);
}

TEST(PortRangeMasks, EphemeralRangeIsMinimal) {
  auto m = portRangeMasks(1024, 65535);
  // 1024-2047, 2048-4095, 4096-8191, 8192-16383, 16384-32767, 32768-65535
  ASSERT_EQ(m.size(), 6U);
  EXPECT_EQ(m[0].value, 1024);
  EXPECT_EQ(m[0].mask, 0xfc00);
  EXPECT_EQ(m[5].value, 32768);
  EXPECT_EQ(m[5].mask, 0x8000);
}

TEST(PortRangeMasks, MasksCoverExactlyTheRange) {
  for (auto [from, to] : {std::pair{0, 65535}, std::pair{1, 65534}, std::pair{32768, 60999},
                          std::pair{22, 23}, std::pair{1000, 1999}}) {
    std::vector<int> covered(65536, 0);
    for (const auto& m : portRangeMasks(static_cast<uint16_t>(from), static_cast<uint16_t>(to))) {
      for (int p = 0; p < 65536; ++p) {
        if ((p & m.mask) == m.value) {
          ++covered[static_cast<size_t>(p)];
        }
      }
    }
    for (int p = 0; p < 65536; ++p) {
      ASSERT_EQ(covered[static_cast<size_t>(p)], (p >= from && p <= to) ? 1 : 0)
          << "range " << from << "-" << to << " port " << p;
    }
  }
}

TEST(LinkLocal, Eui64FromMac) {
  EXPECT_EQ(linkLocalFromMac("02:00:00:00:01:0a").toString(), "fe80::ff:fe00:10a");
}

TEST(InterfaceIndices, StableAcrossChanges) {
  auto p = test::samplePolicy();
  auto first = *assignInterfaceIndices(p, {});
  // Remove the first interface and add a new one: the others keep their indices, the new one
  // takes the freed index.
  auto removed = p.network_interfaces.front();
  p.network_interfaces.erase(p.network_interfaces.begin());
  auto added = removed;
  added.id = "eni-new";
  p.network_interfaces.push_back(added);
  auto second = *assignInterfaceIndices(p, first);
  EXPECT_EQ(second["eni-bastion"], first["eni-bastion"]);
  EXPECT_EQ(second["eni-db1"], first["eni-db1"]);
  EXPECT_EQ(second["eni-new"], first[removed.id]);
}

TEST(Translate, DeterministicAndCookiesCarryGeneration) {
  auto p = test::samplePolicy();
  auto a = translate(inputFor(p));
  auto b = translate(inputFor(p));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b);
  EXPECT_EQ(a->flows, b->flows);
  for (const auto& f : a->flows) {
    EXPECT_EQ(f.cookie & pipeline::kCookieMagicMask, pipeline::kCookieMagic);
    EXPECT_EQ(pipeline::cookieGeneration(f.cookie), 7);
  }
}

TEST(Translate, NoDuplicateFlowIdentities) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  for (size_t i = 1; i < t->flows.size(); ++i) {
    const auto& x = t->flows[i - 1];
    const auto& y = t->flows[i];
    EXPECT_FALSE(x.table == y.table && x.priority == y.priority && x.match == y.match)
        << x.match << " appears twice in table " << int{x.table};
  }
}

TEST(Translate, ClauseFlowsAreSharedBetweenRules) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  // The web interface's egress clause carries both of its group's egress rules.
  auto it = std::find_if(t->flows.begin(), t->flows.end(), [](const Flow& f) {
    return f.table == pipeline::kSgEgressEval && f.match == "reg0=1";
  });
  ASSERT_NE(it, t->flows.end());
  EXPECT_EQ(std::count(it->actions.begin(), it->actions.end(), '('), 2) << it->actions;
  EXPECT_LT(t->stats.sg_clause_flows, t->stats.sg_flows_without_conjunction + 100);
}

TEST(Translate, UnattachedInterfacesGetNoPortFlowsButStayPeers) {
  auto p = test::samplePolicy();
  auto in = inputFor(p, false);
  in.ofports["eni-db1"] = 5;
  auto t = translate(in);
  ASSERT_TRUE(t);
  EXPECT_EQ(countMatching(t->flows, pipeline::kClassify, "in_port=5"), 1U);
  // sg-db allows 5432 from sg-web members: web1's address is a peer though web1 is elsewhere.
  EXPECT_EQ(countMatching(t->flows, pipeline::kSgIngressEval, "nw_src=10.0.1.10"), 1U);
}

TEST(Translate, NaclPriorityFollowsRuleNumberAndEndsInStarDeny) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  uint16_t p100 = 0;
  uint16_t p130 = 0;
  bool star = false;
  for (const auto& f : t->flows) {
    if (f.table != pipeline::kNaclIn || f.match.find("reg7=2") == std::string::npos) {
      continue;
    }
    if (f.match.find("tp_dst=5432") != std::string::npos) {
      p100 = f.priority;
    }
    if (f.match.find("icmp") != std::string::npos) {
      p130 = f.priority;
    }
    if (f.priority == pipeline::kNaclStarPriority) {
      star = f.actions.find("0x6007fff") != std::string::npos;
    }
  }
  EXPECT_GT(p100, p130);
  EXPECT_TRUE(star);
}

TEST(Translate, RejectsMissingIndex) {
  auto p = test::samplePolicy();
  TranslateInput in;
  in.policy = &p;
  auto t = translate(in);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("no index"), std::string::npos);
}

}  // namespace
}  // namespace vpcguard
