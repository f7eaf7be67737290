// flowlogs/aggregator.h: sums, intervals, NODATA / SKIPDATA, coverage, the memory cap.

#include <gtest/gtest.h>

#include "flowlogs/aggregator.h"

namespace vpcguard::flowlog {
namespace {

using model::FlowLogTrafficType;

constexpr int64_t kT0 = 1620000000;  // a multiple of 60 and of 600
constexpr int64_t kGrace = 5;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

InterfaceInfo info(const std::string& id) {
  return InterfaceInfo{id, "subnet-app", "vpc-lab", "123456789012", "us-east-1", ""};
}

std::map<std::string, InterfaceInfo> interfaces(std::initializer_list<const char*> ids) {
  std::map<std::string, InterfaceInfo> out;
  for (const char* id : ids) {
    out[id] = info(id);
  }
  return out;
}

Observation obs(const std::string& eni, int64_t first, int64_t last, uint64_t packets = 1,
                uint16_t src_port = 40000, Action action = Action::kAccept) {
  Observation o;
  o.interface_id = eni;
  o.direction = Direction::kIngress;
  o.action = action;
  o.key = FlowKey{ip("10.0.1.5"), ip("10.0.2.10"), src_port, 443, 6};
  o.packets = packets;
  o.bytes = packets * 100;
  o.first_seen = first;
  o.last_seen = last;
  return o;
}

Aggregator make(FlowLogTrafficType type = FlowLogTrafficType::kAll, int64_t interval = 60,
                size_t max_entries = Aggregator::kDefaultMaxEntries) {
  return Aggregator("fl-1", type, interval, *parseFormat(""), max_entries);
}

// "eni status packets" per record, for compact assertions.
std::vector<std::string> summary(const LogBatch& b) {
  std::vector<std::string> out;
  for (const Record& r : b.records) {
    out.push_back(r.interface_id + " " + logStatusName(r.log_status) + " " +
                  (r.log_status == LogStatus::kOk ? std::to_string(r.packets) : "-"));
  }
  return out;
}

TEST(FlowLogAggregator, SumsMinStartMaxEndOrFlagsFirstRule) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}), kT0);
  Observation o1 = obs("eni-1", kT0 + 10, kT0 + 20, 3);
  o1.tcp_flags = kTcpSyn;
  o1.rule = "sg-web ingress #1";
  Observation o2 = obs("eni-1", kT0 + 5, kT0 + 40, 4);
  o2.tcp_flags = kTcpAck | kTcpFin;
  o2.rule = "sg-web ingress #2";
  Observation o3 = obs("eni-1", kT0 + 30, kT0 + 35, 2);
  a.add(o1);
  a.add(o2);
  a.add(o3);
  EXPECT_EQ(a.openEntries(), 1U);
  auto batches = a.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 1U);
  ASSERT_EQ(batches[0].records.size(), 1U);
  const Record& r = batches[0].records[0];
  EXPECT_EQ(r.packets, 9U);
  EXPECT_EQ(r.bytes, 900U);
  EXPECT_EQ(r.start, kT0 + 5);
  EXPECT_EQ(r.end, kT0 + 40);
  EXPECT_EQ(r.tcp_flags, 19);
  EXPECT_EQ(r.rule, "sg-web ingress #1");
  EXPECT_EQ(batches[0].flow_log_id, "fl-1");
  EXPECT_EQ(batches[0].interval_start, kT0);
  EXPECT_EQ(batches[0].interfaces.at("eni-1").vpc_id, "vpc-lab");
  EXPECT_EQ(a.openEntries(), 0U);
}

TEST(FlowLogAggregator, DistinctKeysDirectionsAndActionsStayApart) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}), kT0);
  a.add(obs("eni-1", kT0, kT0 + 1, 1, 40000));
  a.add(obs("eni-1", kT0, kT0 + 1, 1, 40001));
  a.add(obs("eni-1", kT0, kT0 + 1, 1, 40000, Action::kReject));
  Observation egress = obs("eni-1", kT0, kT0 + 1, 1, 40000);
  egress.direction = Direction::kEgress;
  a.add(egress);
  auto batches = a.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 1U);
  EXPECT_EQ(batches[0].records.size(), 4U);
}

TEST(FlowLogAggregator, IntervalBoundariesAndGrace) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}), kT0);
  a.add(obs("eni-1", kT0 + 50, kT0 + 59, 1));
  a.add(obs("eni-1", kT0 + 55, kT0 + 60, 2));  // by last_seen: the next interval
  EXPECT_TRUE(a.flush(kT0 + 60 + kGrace - 1, kGrace).empty());
  auto first = a.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0].interval_start, kT0);
  EXPECT_EQ(summary(first[0]), (std::vector<std::string>{"eni-1 OK 1"}));
  auto second = a.flush(kT0 + 120 + kGrace, kGrace);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0].interval_start, kT0 + 60);
  EXPECT_EQ(summary(second[0]), (std::vector<std::string>{"eni-1 OK 2"}));
  EXPECT_EQ(second[0].records[0].start, kT0 + 55);
}

TEST(FlowLogAggregator, TenMinuteIntervalsAreAlignedToUnixTime) {
  Aggregator a = make(FlowLogTrafficType::kAll, 600);
  a.setInterfaces(interfaces({"eni-1"}), kT0 + 123);
  a.add(obs("eni-1", kT0 + 130, kT0 + 599, 1));
  a.add(obs("eni-1", kT0 + 130, kT0 + 600, 1));
  auto batches = a.flush(kT0 + 1200 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(batches[0].interval_start, kT0);
  EXPECT_EQ(batches[1].interval_start, kT0 + 600);
}

TEST(FlowLogAggregator, QuietIntervalsGiveNoData) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1", "eni-2"}), kT0);
  a.add(obs("eni-1", kT0, kT0 + 1));
  auto batches = a.flush(kT0 + 120 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(summary(batches[0]), (std::vector<std::string>{"eni-1 OK 1", "eni-2 NODATA -"}));
  EXPECT_EQ(summary(batches[1]), (std::vector<std::string>{"eni-1 NODATA -", "eni-2 NODATA -"}));
  EXPECT_EQ(batches[1].records[0].start, kT0 + 60);
  EXPECT_EQ(batches[1].records[0].end, kT0 + 120);
}

TEST(FlowLogAggregator, TrafficTypeFilter) {
  Aggregator reject_only = make(FlowLogTrafficType::kReject);
  reject_only.setInterfaces(interfaces({"eni-1"}), kT0);
  reject_only.add(obs("eni-1", kT0, kT0 + 1, 5, 40000, Action::kAccept));
  reject_only.add(obs("eni-1", kT0, kT0 + 1, 7, 40000, Action::kReject));
  auto b = reject_only.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(b.size(), 1U);
  ASSERT_EQ(b[0].records.size(), 1U);
  EXPECT_EQ(b[0].records[0].action, Action::kReject);
  EXPECT_EQ(b[0].records[0].packets, 7U);

  Aggregator accept_only = make(FlowLogTrafficType::kAccept);
  accept_only.setInterfaces(interfaces({"eni-1"}), kT0);
  accept_only.add(obs("eni-1", kT0, kT0 + 1, 7, 40000, Action::kReject));
  b = accept_only.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(b.size(), 1U);
  EXPECT_EQ(summary(b[0]), (std::vector<std::string>{"eni-1 NODATA -"}));
}

TEST(FlowLogAggregator, CoverageChanges) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}), kT0);
  a.add(obs("eni-2", kT0 + 1, kT0 + 2, 9));                   // not covered yet: ignored
  a.setInterfaces(interfaces({"eni-1", "eni-2"}), kT0 + 30);  // added mid-interval
  a.add(obs("eni-2", kT0 + 31, kT0 + 32, 3));
  a.setInterfaces(interfaces({"eni-2"}), kT0 + 70);  // eni-1 removed during the 2nd interval
  a.add(obs("eni-1", kT0 + 71, kT0 + 72, 9));        // no longer covered: ignored
  auto batches = a.flush(kT0 + 180 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 3U);
  EXPECT_EQ(summary(batches[0]), (std::vector<std::string>{"eni-1 NODATA -", "eni-2 OK 3"}));
  EXPECT_EQ(summary(batches[1]), (std::vector<std::string>{"eni-1 NODATA -", "eni-2 NODATA -"}));
  EXPECT_EQ(summary(batches[2]), (std::vector<std::string>{"eni-2 NODATA -"}));

  // An interface added mid-interval gets NODATA for that interval.
  Aggregator b = make();
  b.setInterfaces(interfaces({"eni-1"}), kT0);
  b.setInterfaces(interfaces({"eni-1", "eni-3"}), kT0 + 45);
  auto one = b.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(summary(one[0]), (std::vector<std::string>{"eni-1 NODATA -", "eni-3 NODATA -"}));
}

TEST(FlowLogAggregator, CoverageIsByTimeNotByWhenTheIntervalCloses) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1", "eni-2"}), kT0);
  // During the grace period of the first interval: eni-3 arrives, eni-2 leaves exactly at the
  // second interval's start.
  a.setInterfaces(interfaces({"eni-1", "eni-3"}), kT0 + 60);
  a.setInterfaces(interfaces({"eni-1", "eni-3"}), kT0 + 62);
  auto batches = a.flush(kT0 + 120 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(summary(batches[0]), (std::vector<std::string>{"eni-1 NODATA -", "eni-2 NODATA -"}));
  EXPECT_EQ(summary(batches[1]), (std::vector<std::string>{"eni-1 NODATA -", "eni-3 NODATA -"}));
}

TEST(FlowLogAggregator, SkippedGivesSkipDataInsteadOfNoData) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1", "eni-2"}), kT0);
  a.add(obs("eni-1", kT0, kT0 + 1, 2));
  a.addSkipped(std::nullopt, 100, kT0 + 10);  // every covered interface
  a.addSkipped(std::string("eni-2"), 50, kT0 + 70);
  auto batches = a.flush(kT0 + 120 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(summary(batches[0]),
            (std::vector<std::string>{"eni-1 OK 2", "eni-1 SKIPDATA -", "eni-2 SKIPDATA -"}));
  EXPECT_EQ(summary(batches[1]), (std::vector<std::string>{"eni-1 NODATA -", "eni-2 SKIPDATA -"}));
  EXPECT_EQ(batches[1].records[1].packets, 50U);
  EXPECT_EQ(batches[1].records[1].reason, kSkipReasonLost);
  EXPECT_EQ(batches[1].records[1].start, kT0 + 60);
  EXPECT_EQ(batches[1].records[1].end, kT0 + 120);
}

TEST(FlowLogAggregator, OverflowBecomesSkipData) {
  Aggregator a = make(FlowLogTrafficType::kAll, 60, 2);
  a.setInterfaces(interfaces({"eni-1", "eni-2"}), kT0);
  a.add(obs("eni-1", kT0, kT0 + 1, 1, 40000));
  a.add(obs("eni-1", kT0, kT0 + 1, 1, 40001));
  a.add(obs("eni-2", kT0, kT0 + 1, 4, 40002));  // a third entry: over the cap
  a.add(obs("eni-1", kT0, kT0 + 2, 1, 40000));  // an existing entry still aggregates
  EXPECT_EQ(a.openEntries(), 2U);
  EXPECT_EQ(a.overflowCount(), 1U);
  auto batches = a.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 1U);
  EXPECT_EQ(summary(batches[0]),
            (std::vector<std::string>{"eni-1 OK 2", "eni-1 OK 1", "eni-2 SKIPDATA -"}));
  EXPECT_EQ(batches[0].records[2].packets, 4U);
  EXPECT_EQ(batches[0].records[2].reason, kSkipReasonOverflow);
  // Closing the interval frees the entries.
  a.add(obs("eni-2", kT0 + 61, kT0 + 62, 1, 40002));
  EXPECT_EQ(a.openEntries(), 1U);
}

TEST(FlowLogAggregator, LateObservationGoesIntoTheOldestOpenInterval) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}), kT0);
  (void)a.flush(kT0 + 60 + kGrace, kGrace);
  a.add(obs("eni-1", kT0 + 10, kT0 + 20, 6));  // its interval is closed
  auto batches = a.flush(kT0 + 120 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 1U);
  EXPECT_EQ(batches[0].interval_start, kT0 + 60);
  ASSERT_EQ(batches[0].records.size(), 1U);
  EXPECT_EQ(batches[0].records[0].packets, 6U);
  EXPECT_EQ(batches[0].records[0].end, kT0 + 20);  // its own true times
}

TEST(FlowLogAggregator, FlushAllClosesTheCurrentIntervalEarly) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1", "eni-2"}), kT0);
  a.add(obs("eni-1", kT0 + 61, kT0 + 62, 3));
  auto batches = a.flushAll(kT0 + 75);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(summary(batches[0]), (std::vector<std::string>{"eni-1 NODATA -", "eni-2 NODATA -"}));
  // Sorted by start: the NODATA record starts with the interval, the flow a second later.
  EXPECT_EQ(summary(batches[1]), (std::vector<std::string>{"eni-2 NODATA -", "eni-1 OK 3"}));
  EXPECT_EQ(batches[1].records[0].end, kT0 + 75);
  EXPECT_EQ(a.openEntries(), 0U);
}

TEST(FlowLogAggregator, NoNoDataBeforeTheAggregatorsFirstTime) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}));          // no time yet
  EXPECT_TRUE(a.flush(kT0 + 10, kGrace).empty());  // starts its life at kT0
  auto batches = a.flush(kT0 + 60 + kGrace, kGrace);
  ASSERT_EQ(batches.size(), 1U);
  EXPECT_EQ(batches[0].interval_start, kT0);
}

TEST(FlowLogAggregator, ClockJumpDoesNotWriteAYearOfNoData) {
  Aggregator a = make();
  a.setInterfaces(interfaces({"eni-1"}), kT0);
  auto batches = a.flush(kT0 + 365 * 86400, kGrace);
  EXPECT_LE(batches.size(), 10'082U);
  ASSERT_FALSE(batches.empty());
  EXPECT_GE(batches.back().interval_start, kT0 + 365 * 86400 - 180);
}

}  // namespace
}  // namespace vpcguard::flowlog
