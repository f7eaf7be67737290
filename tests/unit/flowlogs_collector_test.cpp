// flowlog::Collector: IPFIX samples and learned-flow counters in, records out (no switch).
#include "flowlogs/collector.h"

#include <gtest/gtest.h>

#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::flowlog {
namespace {

using test::ip;

constexpr int64_t kT0 = 1'800'000'020;  // 20 s into an interval of 60

class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = test::samplePolicy();
    model::FlowLog fl;
    fl.id = "fl-all";
    fl.resource_id = policy_.vpc.id;
    fl.log_destination = "file:///tmp/x";
    fl.max_aggregation_interval = 60;
    policy_.flow_logs.push_back(fl);
    auto indices = assignInterfaceIndices(policy_, {});
    ASSERT_TRUE(indices);
    indices_ = *indices;
    rule_names_ = {{1000, "sg-db ingress #0"}};
    (void)collector_.setPolicy(policy_, makeView(policy_, indices_, rule_names_), kT0);
  }

  // OK records of every batch flushAll gives, as "interface direction action packets bytes".
  std::vector<std::string> flushOk(int64_t now) {
    std::vector<std::string> out;
    for (const auto& [batch, fields] : collector_.flushAll(now)) {
      for (const auto& r : batch.records) {
        if (r.log_status == LogStatus::kOk) {
          out.push_back(r.interface_id + " " + directionName(r.direction) + " " +
                        actionName(r.action) + " " + std::to_string(r.packets) + " " +
                        std::to_string(r.bytes) + (r.rule.empty() ? "" : " " + r.rule) +
                        (r.reason.empty() ? "" : " " + r.reason));
        }
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  LearnedFlow learned(const char* eni, bool ingress, uint64_t packets, uint32_t age) {
    const uint16_t index = indices_.at(eni);
    LearnedFlow f;
    f.cookie = pipeline::kLearnedCookieMagic | (uint64_t{ingress ? 1U : 0U} << 16) | index;
    f.match = std::string("tcp,") + (ingress ? "reg1=" : "reg0=") + std::to_string(index) +
              ",nw_src=10.0.1.10,nw_dst=10.0.2.10,tp_src=40000,tp_dst=5432";
    f.packets = packets;
    f.l2_bytes = packets * 74;  // 60-byte IP packets in Ethernet frames
    f.duration_sec = age;
    return f;
  }

  IpfixRecord sample(uint32_t domain, uint32_t point = 0) {
    IpfixRecord r;
    r.observation_domain = domain;
    r.observation_point = point;
    r.src = ip("10.0.1.10");
    r.dst = ip("10.0.2.10");
    r.protocol = 6;
    r.src_port = 40000;
    r.dst_port = 5432;
    r.packets = 1;
    r.bytes = 60;
    r.has_counts = true;
    return r;
  }

  model::Policy policy_;
  std::map<std::string, uint16_t> indices_;
  std::map<uint32_t, std::string> rule_names_;
  Collector collector_;
};

TEST_F(CollectorTest, LearnedCountersAreDeltasAndIpBytes) {
  collector_.onLearnedFlows(false, {learned("eni-web1", false, 5, 3)}, kT0);
  collector_.onLearnedFlows(false, {learned("eni-web1", false, 8, 13)}, kT0 + 10);
  // The first sampled packet (no learned flow yet) adds one.
  collector_.onIpfix(sample((pipeline::kObsCount << 24) | indices_.at("eni-web1")), kT0);
  EXPECT_EQ(flushOk(kT0 + 11), std::vector<std::string>{"eni-web1 egress ACCEPT 9 540"});
}

TEST_F(CollectorTest, AFlowYoungerThanItsPredecessorIsNew) {
  collector_.onLearnedFlows(false, {learned("eni-web1", false, 5, 3)}, kT0);
  // Ten seconds later the same match is 2 s old: learned again (expiry, switch restart), so all
  // of its 4 packets are new, none of them were read before.
  collector_.onLearnedFlows(false, {learned("eni-web1", false, 4, 2)}, kT0 + 10);
  EXPECT_EQ(flushOk(kT0 + 11), std::vector<std::string>{"eni-web1 egress ACCEPT 9 540"});
}

TEST_F(CollectorTest, ABaselineReadCountsNothing) {
  collector_.onLearnedFlows(true, {learned("eni-db1", true, 50, 100)}, kT0, /*baseline=*/true);
  collector_.onLearnedFlows(true, {learned("eni-db1", true, 53, 110)}, kT0 + 10);
  EXPECT_EQ(flushOk(kT0 + 11), std::vector<std::string>{"eni-db1 ingress ACCEPT 3 180"});
}

TEST_F(CollectorTest, RejectsGoToTheSideThatDecidedWithTheirRule) {
  // NACL inbound rule 100 of the database's subnet, and an SG egress miss of web1.
  collector_.onIpfix(sample(pipeline::kVerdictNaclInDeny | 100), kT0);
  collector_.onIpfix(sample(pipeline::kVerdictSgEgressMiss), kT0);
  EXPECT_EQ(flushOk(kT0 + 1),
            (std::vector<std::string>{"eni-db1 ingress REJECT 1 60 acl-private inbound #100 "
                                      "nacl-inbound-deny",
                                      "eni-web1 egress REJECT 1 60 sg-egress-miss"}));
}

TEST_F(CollectorTest, RepliesTakeTheRuleOfTheirConnection) {
  // The database's ingress rule committed web1 -> db:5432; the reply leaves db (egress).
  collector_.onIpfix(sample((pipeline::kObsRule << 24) | pipeline::kObsIngressBit, 1000), kT0);
  IpfixRecord reply = sample((pipeline::kObsCount << 24) | indices_.at("eni-db1"));
  std::swap(reply.src, reply.dst);
  std::swap(reply.src_port, reply.dst_port);
  collector_.onIpfix(reply, kT0);
  EXPECT_EQ(flushOk(kT0 + 1),
            std::vector<std::string>{"eni-db1 egress ACCEPT 1 60 sg-db ingress #0"});
}

TEST_F(CollectorTest, SamplesOfUnknownAddressesOrForeignDomainsAreNotRecords) {
  IpfixRecord stranger = sample(pipeline::kVerdictSgIngressMiss);
  stranger.dst = ip("192.0.2.1");
  collector_.onIpfix(stranger, kT0);
  collector_.onIpfix(sample(pipeline::kVerdictPortSecurity), kT0);  // not an AWS reject
  EXPECT_TRUE(flushOk(kT0 + 1).empty());
  EXPECT_EQ(collector_.stats().unattributed, 2U);
}

TEST_F(CollectorTest, SampleTimesFarFromNowAreTakenAsNow) {
  IpfixRecord r = sample(pipeline::kVerdictSgEgressMiss);
  r.start_ms = r.end_ms = (kT0 + 365 * 86400) * 1000;  // a year ahead: a hostile exporter
  collector_.onIpfix(r, kT0);
  const auto batches = collector_.flushAll(kT0 + 1);
  ASSERT_EQ(batches.size(), 1U);  // one interval, not a year of NODATA
  for (const auto& rec : batches[0].first.records) {
    if (rec.log_status == LogStatus::kOk) {
      EXPECT_EQ(rec.end, kT0);
    }
  }
}

TEST_F(CollectorTest, LossOfOneKindMarksOnlyLogsThatRecordIt) {
  model::FlowLog accept_only = policy_.flow_logs[0];
  accept_only.id = "fl-accept";
  accept_only.traffic_type = model::FlowLogTrafficType::kAccept;
  policy_.flow_logs.push_back(accept_only);
  (void)collector_.setPolicy(policy_, makeView(policy_, indices_, rule_names_), kT0);
  collector_.onLost(7, kT0, "rate-limited", Action::kReject);
  for (const auto& [batch, fields] : collector_.flushAll(kT0 + 1)) {
    for (const auto& r : batch.records) {
      if (batch.flow_log_id == "fl-accept") {
        EXPECT_NE(r.log_status, LogStatus::kSkipData) << r.interface_id;
      } else {
        EXPECT_EQ(r.log_status, LogStatus::kSkipData) << r.interface_id;
        EXPECT_EQ(r.packets, 7U);
      }
    }
  }
}

TEST(CollectorMatch, ParsesLearnedMatches) {
  auto k = parseLearnedMatch("udp6,reg1=0x3,ipv6_src=2600::1,ipv6_dst=2600::2,tp_src=53,tp_dst=999");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->protocol, 17);
  EXPECT_EQ(k->src, ip("2600::1"));
  EXPECT_EQ(k->dst_port, 999);
  k = parseLearnedMatch("ip,reg0=0x1,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_proto=47");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->protocol, 47);
  EXPECT_FALSE(parseLearnedMatch("tcp,reg0=0x1,nw_src=10.0.0.1"));  // no destination
  EXPECT_FALSE(parseLearnedMatch("tcp,nw_src=x,nw_dst=10.0.0.2"));
}

}  // namespace
}  // namespace vpcguard::flowlog
