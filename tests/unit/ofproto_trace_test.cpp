// Reading ofproto/trace (explain/ofproto_trace.h) on real switch output: the fixtures in
// tests/data/ofproto-trace/ are unedited traces from an OVS sandbox (README.md there says how
// they were made). Also the trace arguments for a probe and the switch-vs-policy comparison.
#include "explain/ofproto_trace.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/harness/paths.h"
#include "tests/harness/trace.h"
#include "translator/pipeline.h"

namespace vpcguard::explain {
namespace {

constexpr int kLocal = 65534;
constexpr int kMirrorPort = 4;  // vg-mirror in the fixtures; eni-web1/bastion/db1 are 1/2/3

std::string fixture(const std::string& name) {
  const std::string path = test::sourceDir() + "/tests/data/ofproto-trace/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct FixtureCase {
  std::string file;
  size_t passes;
  std::string final_actions;
  std::vector<int> outputs;    // OpenFlow ports, in order
  std::vector<int> truncated;  // mirror copies among them
  uint32_t reg4;
  std::vector<int> datapath_outputs;  // what the test harness reads from the datapath actions
};

void PrintTo(const FixtureCase& c, std::ostream* os) { *os << c.file; }

class OfprotoTraceFixture : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(OfprotoTraceFixture, Parses) {
  const FixtureCase& c = GetParam();
  const std::string raw = fixture(c.file);
  auto trace = parseOfprotoTrace(raw);
  ASSERT_TRUE(trace.has_value()) << trace.error().message;
  EXPECT_EQ(trace->passes.size(), c.passes);
  EXPECT_EQ(trace->datapath_actions, c.final_actions);
  EXPECT_EQ(trace->passes.back(), c.final_actions);
  EXPECT_EQ(trace->output_ofports, c.outputs);
  EXPECT_EQ(trace->truncated_ofports, c.truncated);
  EXPECT_EQ(trace->reg4, c.reg4);
  EXPECT_EQ(trace->raw, raw);

  // The harness reads the same text through the same parser, and keeps its datapath view.
  auto harness = test::parseTrace(raw);
  ASSERT_TRUE(harness.has_value()) << harness.error().message;
  EXPECT_EQ(harness->passes, trace->passes);
  EXPECT_EQ(harness->datapath_actions, c.final_actions);
  EXPECT_EQ(harness->output_ports, c.datapath_outputs);
  EXPECT_EQ(harness->dropped, c.datapath_outputs.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Real, OfprotoTraceFixture,
    ::testing::Values(
        // eni-web1 -> eni-db1 tcp 5432 across subnets: two conntrack recirculations; delivered
        // to port 3 after eni-db1's ingress mirror copy (clone, truncated output to port 4).
        FixtureCase{"allowed-routed.txt", 3,
                    "ct(commit,zone=3,label=0xfb21ce),set(eth(src=02:76:67:00:00:01,dst=02:00:00:"
                    "00:02:0a)),set(ipv4(ttl=63)),clone(trunc(1464),4),3",
                    {kMirrorPort, 3}, {kMirrorPort}, 0, {3}},
        // udp 53 into the private subnet: acl-private inbound `*`.
        FixtureCase{"nacl-inbound-star.txt", 2, "ct(commit,zone=1,label=0xfe4f03)", {}, {},
                    pipeline::kVerdictNaclInDeny | pipeline::kNaclStarRule, {}},
        // eni-bastion -> eni-web1 tcp 8080: sg-web has no rule.
        FixtureCase{"sg-ingress-miss.txt", 3, "drop", {}, {}, pipeline::kVerdictSgIngressMiss,
                    {}},
        // eni-db1 -> eni-web1 tcp 8080: copied by eni-db1's egress mirror session as it leaves
        // the private subnet, then dropped by sg-web.
        FixtureCase{"mirror-copy-then-sg-drop.txt", 3, "drop", {kMirrorPort}, {kMirrorPort},
                    pipeline::kVerdictSgIngressMiss, {}},
        // Link-local destination: unfiltered, to the host (the action is the bare "LOCAL").
        FixtureCase{"unfiltered-to-local.txt", 1, "100", {kLocal}, {}, 0, {100}},
        // From the host (in_port=LOCAL) to a VM; "Final flow: unchanged".
        FixtureCase{"host-to-vm.txt", 1, "1", {1}, {}, 0, {1}},
        // The ARP responder answers through "IN_PORT" (port 1 from the Flow line).
        FixtureCase{"arp-responder.txt", 1,
                    "set(eth(src=02:76:67:00:00:01,dst=02:00:00:00:01:0a)),set(arp(sip=10.0.1.1,"
                    "tip=10.0.1.10,op=2,sha=02:76:67:00:00:01,tha=02:00:00:00:01:0a)),1",
                    {1}, {}, 0, {1}},
        // Outputs the switch reports as not done (">> skipping output to input port",
        // ">> Nonexistent output port") do not count.
        FixtureCase{"skipped-outputs.txt", 1, "2", {2}, {}, 0, {2}},
        // A spoofed source address: port security, before any conntrack pass.
        FixtureCase{"port-security.txt", 1, "drop", {}, {}, pipeline::kVerdictPortSecurity, {}}));

TEST(OfprotoTrace, NoDatapathActionsIsAnError) {
  auto r = parseOfprotoTrace("ovs-vswitchd: br9 (no such bridge)\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("Datapath actions"), std::string::npos);
  EXPECT_FALSE(test::parseTrace("").has_value());
}

TEST(OfprotoTrace, Reg4FromTheLastFinalFlowThatHasIt) {
  // "Final flow: unchanged" stands for the pass's "Flow:" line, which carries the registers
  // set by earlier passes.
  const std::string raw =
      "Flow: tcp,in_port=1,nw_src=10.0.1.10\n"
      "Final flow: tcp,reg0=0x1,reg4=0x3000000,in_port=1\n"
      "Datapath actions: ct(zone=1),recirc(0x1)\n"
      "Flow: recirc_id=0x1,tcp,reg0=0x1,reg4=0x5000064,in_port=1\n"
      "Final flow: unchanged\n"
      "Datapath actions: drop\n";
  auto r = parseOfprotoTrace(raw);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->reg4, 0x5000064U);
  EXPECT_EQ(r->passes, (std::vector<std::string>{"ct(zone=1),recirc(0x1)", "drop"}));
  // Not fooled by a field whose name ends in reg4.
  auto other = parseOfprotoTrace("Final flow: tcp,xreg4=0x7\nDatapath actions: drop\n");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->reg4, 0U);
}

TEST(OfprotoTrace, DatapathOutputPorts) {
  EXPECT_EQ(datapathOutputPorts("ct(commit,zone=1),2,3"), (std::vector<int>{2, 3}));
  EXPECT_EQ(datapathOutputPorts("clone(trunc(1464),4),3"), (std::vector<int>{3}));
  EXPECT_EQ(datapathOutputPorts("drop"), std::vector<int>{});
  EXPECT_EQ(datapathOutputPorts(""), std::vector<int>{});
}

// ---- arguments --------------------------------------------------------------------------

TEST(OfprotoTraceArgs, FromAnInterface) {
  SwitchProbe probe;
  probe.in_interface = "eni-web1";
  probe.flow = "tcp,nw_src=10.0.1.10,nw_dst=10.0.2.10,tp_dst=5432";
  probe.ct_next = {"trk,new", "trk,new"};
  auto args = ofprotoTraceArgs("br-int", probe, {{"eni-web1", 7}, {"eni-db1", 9}});
  ASSERT_TRUE(args.has_value()) << args.error().message;
  EXPECT_EQ(*args, (std::vector<std::string>{"br-int",
                                             "in_port=7,tcp,nw_src=10.0.1.10,nw_dst=10.0.2.10,"
                                             "tp_dst=5432",
                                             "--ct-next", "trk,new", "--ct-next", "trk,new"}));
}

TEST(OfprotoTraceArgs, FromTheHostWithoutConntrack) {
  SwitchProbe probe;
  probe.in_interface = "LOCAL";
  probe.flow = "udp,nw_src=169.254.169.254";
  auto args = ofprotoTraceArgs("br0", probe, {});
  ASSERT_TRUE(args.has_value()) << args.error().message;
  EXPECT_EQ(*args, (std::vector<std::string>{"br0", "in_port=LOCAL,udp,nw_src=169.254.169.254"}));
}

TEST(OfprotoTraceArgs, UnknownInterfaceIsAnError) {
  SwitchProbe probe;
  probe.in_interface = "eni-gone";
  probe.flow = "tcp";
  auto args = ofprotoTraceArgs("br0", probe, {{"eni-web1", 1}});
  ASSERT_FALSE(args.has_value());
  EXPECT_NE(args.error().message.find("eni-gone"), std::string::npos);
}

// ---- comparison -------------------------------------------------------------------------

OfprotoTrace parsedFixture(const std::string& name) {
  auto r = parseOfprotoTrace(fixture(name));
  EXPECT_TRUE(r.has_value()) << name;
  return r.value_or(OfprotoTrace{});
}

SwitchProbe delivery(const std::string& to) {
  SwitchProbe p;
  p.delivered = true;
  p.out_interface = to;
  return p;
}
SwitchProbe drop(uint32_t verdict) {
  SwitchProbe p;
  p.drop_verdict = verdict;
  return p;
}

struct CompareCase {
  std::string name;
  SwitchProbe probe;
  std::string fixture;
  int out_ofport;
  bool agree;
  bool delivered;
  uint32_t switch_reg4;
  std::string explanation;  // a part of it
};
void PrintTo(const CompareCase& c, std::ostream* os) { *os << c.name; }

class Compare : public ::testing::TestWithParam<CompareCase> {};

TEST_P(Compare, Verdict) {
  const CompareCase& c = GetParam();
  const SwitchComparison r = compare(c.probe, parsedFixture(c.fixture), c.out_ofport);
  EXPECT_EQ(r.agree, c.agree) << r.explanation;
  EXPECT_EQ(r.delivered, c.delivered) << r.explanation;
  EXPECT_EQ(r.switch_reg4, c.switch_reg4) << r.explanation;
  EXPECT_NE(r.explanation.find(c.explanation), std::string::npos) << r.explanation;
}

constexpr uint32_t kSgIn = pipeline::kVerdictSgIngressMiss;
constexpr uint32_t kNaclInStar = pipeline::kVerdictNaclInDeny | pipeline::kNaclStarRule;

INSTANTIATE_TEST_SUITE_P(
    Cases, Compare,
    ::testing::Values(
        CompareCase{"DeliveredToTheExpectedPort", delivery("eni-db1"), "allowed-routed.txt", 3,
                    true, true, 0, "switch agrees: delivered to eni-db1 (port 3)"},
        CompareCase{"DeliveredToAnotherPort", delivery("eni-bastion"), "allowed-routed.txt", 2,
                    false, false, 0,
                    "switch disagrees: expected delivery to eni-bastion (port 2), switch output "
                    "to port(s) 3"},
        // The mirror copy goes to port 4; it is not a delivery even to port 4.
        CompareCase{"MirrorCopyIsNoDelivery", delivery("vg-mirror"), "mirror-copy-then-sg-drop.txt",
                    kMirrorPort, false, false, kSgIn, "switch dropped (reg4=0x4000000)"},
        CompareCase{"DeliveryExpectedButDropped", delivery("eni-web1"), "sg-ingress-miss.txt", 1,
                    false, false, kSgIn,
                    "expected delivery to eni-web1 (port 1), switch dropped (reg4=0x4000000)"},
        CompareCase{"DeliveredToLocal", delivery("LOCAL"), "unfiltered-to-local.txt", kLocal,
                    true, true, 0, "switch agrees: delivered to LOCAL"},
        CompareCase{"DropWithTheExpectedVerdict", drop(kSgIn), "sg-ingress-miss.txt", 0, true,
                    false, kSgIn, "switch agrees: dropped (reg4=0x4000000)"},
        CompareCase{"DropWithAnotherVerdict", drop(kNaclInStar), "sg-ingress-miss.txt", 0, false,
                    false, kSgIn,
                    "expected a drop with reg4=0x6007fff, switch dropped (reg4=0x4000000)"},
        CompareCase{"DropWithoutAnExpectedVerdict", drop(0), "nacl-inbound-star.txt", 0, true,
                    false, kNaclInStar, "switch agrees"},
        // Copied to the mirror tunnel before the drop: still the expected drop.
        CompareCase{"DropAfterAMirrorCopy", drop(kSgIn), "mirror-copy-then-sg-drop.txt", 0, true,
                    false, kSgIn, "switch agrees: dropped"},
        CompareCase{"DropExpectedButDelivered", drop(kSgIn), "allowed-routed.txt", 0, false, true,
                    0, "expected a drop with reg4=0x4000000, switch output to port(s) 3"}));

}  // namespace
}  // namespace vpcguard::explain
