// flowlogs/record.h: the exact text of records in the default and custom formats.

#include <gtest/gtest.h>

#include "flowlogs/record.h"

namespace vpcguard::flowlog {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

std::vector<Field> format(std::string_view text) {
  auto f = parseFormat(text);
  EXPECT_TRUE(f.has_value());
  return f.value_or(std::vector<Field>{});
}

InterfaceInfo eni1() {
  return InterfaceInfo{"eni-1", "subnet-app", "vpc-lab", "123456789012", "us-east-1", "i-0abc"};
}

Record tcpRecord() {
  Record r;
  r.interface_id = "eni-1";
  r.direction = Direction::kIngress;
  r.action = Action::kAccept;
  r.key = FlowKey{ip("10.0.1.5"), ip("10.0.2.10"), 49152, 443, 6};
  r.packets = 10;
  r.bytes = 840;
  r.start = 1620000005;
  r.end = 1620000050;
  r.tcp_flags = kTcpSyn | kTcpAck | kTcpFin;
  r.rule = "sg-web ingress #1";
  return r;
}

TEST(FlowLogRecord, DefaultFormat) {
  EXPECT_EQ(formatRecord(tcpRecord(), eni1(), format("")),
            "2 123456789012 eni-1 10.0.1.5 10.0.2.10 49152 443 6 10 840 1620000005 1620000050 "
            "ACCEPT OK");
}

TEST(FlowLogRecord, RejectedIcmpHasPortsZero) {
  Record r;
  r.interface_id = "eni-1";
  r.action = Action::kReject;
  r.key = FlowKey{ip("10.0.9.9"), ip("10.0.1.5"), 0, 0, 1};
  r.packets = 1;
  r.bytes = 84;
  r.start = 1620000001;
  r.end = 1620000001;
  EXPECT_EQ(formatRecord(r, eni1(), format("")),
            "2 123456789012 eni-1 10.0.9.9 10.0.1.5 0 0 1 1 84 1620000001 1620000001 REJECT OK");
}

TEST(FlowLogRecord, CustomVersion5Format) {
  const auto fields = format(
      "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} "
      "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} "
      "${bytes} ${packets} ${start} ${end} ${action} ${tcp-flags} ${log-status} ${region} "
      "${az-id} ${sublocation-type} ${flow-direction} ${traffic-path} ${pkt-src-aws-service}");
  Record r = tcpRecord();
  r.direction = Direction::kEgress;
  r.pkt_dst = ip("10.0.2.99");
  EXPECT_EQ(formatRecord(r, eni1(), fields),
            "5 vpc-lab subnet-app i-0abc eni-1 123456789012 IPv4 10.0.1.5 10.0.2.10 49152 443 "
            "10.0.1.5 10.0.2.99 6 840 10 1620000005 1620000050 ACCEPT 19 OK us-east-1 - - "
            "egress - -");
}

TEST(FlowLogRecord, Ipv6AndVpcguardFieldsAndMissingInstance) {
  const auto fields = format(
      "${version} ${instance-id} ${type} ${srcaddr} ${action} ${vpcguard-rule} "
      "${vpcguard-reason} ${reject-reason}");
  Record r = tcpRecord();
  r.key.src = ip("2001:db8::1");
  r.key.dst = ip("2001:db8::2");
  r.action = Action::kReject;
  r.rule = "acl-app inbound #100";
  r.reason = "nacl-inbound-deny";
  InterfaceInfo info = eni1();
  info.instance_id.clear();
  EXPECT_EQ(formatRecord(r, info, fields),
            "8 - IPv6 2001:db8::1 REJECT acl-app_inbound_#100 nacl-inbound-deny -");
  r.rule.clear();
  r.reason.clear();
  EXPECT_EQ(formatRecord(r, info, format("${version} ${vpcguard-rule} ${vpcguard-reason}")),
            "2 - -");
}

TEST(FlowLogRecord, NoDataAndSkipData) {
  Record r;
  r.interface_id = "eni-1";
  r.log_status = LogStatus::kNoData;
  r.start = 1620000000;
  r.end = 1620000060;
  EXPECT_EQ(formatRecord(r, eni1(), format("")),
            "2 123456789012 eni-1 - - - - - - - 1620000000 1620000060 - NODATA");
  r.log_status = LogStatus::kSkipData;
  r.packets = 1234;  // packets lost: not written, as AWS writes "-"
  r.reason = "records-lost";
  EXPECT_EQ(formatRecord(r, eni1(), format("")),
            "2 123456789012 eni-1 - - - - - - - 1620000000 1620000060 - SKIPDATA");
  EXPECT_EQ(formatRecord(r, eni1(),
                         format("${vpc-id} ${type} ${tcp-flags} ${flow-direction} "
                                "${log-status} ${vpcguard-reason}")),
            "vpc-lab - - - SKIPDATA records-lost:1234");  // how many lost: in our field only
}

TEST(FlowLogRecord, LogFilesPerAccountAndRegion) {
  LogBatch batch;
  batch.flow_log_id = "fl-1";
  batch.interval_start = 1620000000;
  Record a = tcpRecord();
  Record b = tcpRecord();
  b.interface_id = "eni-2";
  batch.records = {a, b};
  batch.interfaces["eni-1"] = eni1();
  InterfaceInfo other = eni1();
  other.interface_id = "eni-2";
  other.account_id = "210987654321";
  batch.interfaces["eni-2"] = other;
  const auto files = toLogFiles(batch, format(""));
  ASSERT_EQ(files.size(), 2U);
  EXPECT_EQ(files[0].account_id, "123456789012");
  EXPECT_EQ(files[1].account_id, "210987654321");
  EXPECT_EQ(files[0].header,
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
            "bytes start end action log-status");
  ASSERT_EQ(files[1].lines.size(), 1U);
  EXPECT_EQ(files[1].lines[0].substr(0, 21), "2 210987654321 eni-2 ");
  EXPECT_EQ(files[0].interval_start, 1620000000);
  EXPECT_EQ(files[0].flow_log_id, "fl-1");
}

}  // namespace
}  // namespace vpcguard::flowlog
