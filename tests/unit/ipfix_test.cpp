// flowlogs/ipfix: the IPFIX decoder against hand-built messages (tests/harness/ipfix_message.h),
// including hostile ones: truncation at every byte, unknown and absurd templates, sequence gaps.
#include "flowlogs/ipfix.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/harness/ipfix_message.h"

namespace vpcguard::flowlog {
namespace {

using test::Field;
using test::IpfixMessage;

constexpr uint32_t kExportTime = 1700000000;  // 2023-11-14T22:13:20Z
constexpr uint16_t kTemplateId = 256;
constexpr char kExporter[] = "127.0.0.1:40000";

// The shape of OVS's IPv4/TCP template, trimmed to the elements the decoder reads.
const std::vector<Field> kV4Fields = {{138, 4}, {10, 4}, {14, 4},  {8, 4}, {12, 4},
                                      {4, 1},   {7, 2},  {11, 2},  {6, 1}, {158, 4},
                                      {159, 4}, {2, 8},  {352, 8}, {1, 8}};

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a ? *a : IpAddress{};
}

struct V4Flow {
  uint32_t point, in, out;
  const char* src;
  const char* dst;
  uint8_t proto;
  uint16_t sport, dport;
  uint8_t flags;
  uint32_t start_delta_us, end_delta_us;
  uint64_t packets, l2_bytes, bytes;
};

void putV4(IpfixMessage& m, const V4Flow& f) {
  m.u32(f.point).u32(f.in).u32(f.out);
  for (const char* a : {f.src, f.dst}) {
    const IpAddress addr = ip(a);
    m.raw({addr.bytes[0], addr.bytes[1], addr.bytes[2], addr.bytes[3]});
  }
  m.u8(f.proto).u16(f.sport).u16(f.dport).u8(f.flags).u32(f.start_delta_us).u32(f.end_delta_us);
  m.u64(f.packets).u64(f.l2_bytes).u64(f.bytes);
}

IpfixRecord expectedV4(uint32_t domain, const V4Flow& f) {
  IpfixRecord r;
  r.observation_domain = domain;
  r.observation_point = f.point;
  r.ingress_interface = f.in;
  r.egress_interface = f.out;
  r.src = ip(f.src);
  r.dst = ip(f.dst);
  r.protocol = f.proto;
  r.src_port = f.sport;
  r.dst_port = f.dport;
  r.tcp_flags = f.flags;
  r.start_ms = int64_t{kExportTime} * 1000 - f.start_delta_us / 1000;
  r.end_ms = int64_t{kExportTime} * 1000 - f.end_delta_us / 1000;
  r.packets = f.packets;
  r.l2_bytes = f.l2_bytes;
  r.bytes = f.bytes;
  r.has_counts = true;
  return r;
}

const V4Flow kFlowA = {42,   1,    2,       "10.0.1.5", "10.0.2.10", 6,   40000,
                       5432, 0x12, 3000000, 1000000,    3,           222, 180};
const V4Flow kFlowB = {43, 2, 1, "10.0.2.10", "10.0.1.5", 17, 53, 33333, 0, 500000, 0, 1, 90, 76};

// Template set + one data set with kFlowA and kFlowB, sequence 0, domain 7.
IpfixMessage templateAndData(uint32_t sequence = 0, uint32_t domain = 7) {
  IpfixMessage m(kExportTime, sequence, domain);
  m.templateSet(kTemplateId, kV4Fields).beginSet(kTemplateId);
  putV4(m, kFlowA);
  putV4(m, kFlowB);
  m.endSet();
  return m;
}

std::vector<IpfixRecord> decode(IpfixDecoder& d, const std::vector<uint8_t>& bytes,
                                std::string_view exporter = kExporter) {
  std::vector<IpfixRecord> out;
  d.decode(bytes, exporter, out);
  return out;
}

TEST(Ipfix, TemplateAndDataInOneMessage) {
  IpfixDecoder d;
  const auto records = decode(d, templateAndData().bytes());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0], expectedV4(7, kFlowA));
  EXPECT_EQ(records[1], expectedV4(7, kFlowB));
  EXPECT_EQ(records[0].src->toString(), "10.0.1.5");
  EXPECT_EQ(records[0].start_ms, 1699999997000);
  EXPECT_EQ(records[0].end_ms, 1699999999000);
  EXPECT_EQ(d.stats().messages, 1u);
  EXPECT_EQ(d.stats().records, 2u);
  EXPECT_EQ(d.stats().templates, 1u);
  EXPECT_EQ(d.stats().malformed, 0u);
  EXPECT_EQ(d.stats().lost, 0u);
  EXPECT_EQ(d.templateCount(), 1u);
}

TEST(Ipfix, TemplateAndDataInSeparateMessages) {
  IpfixDecoder d;
  IpfixMessage tmpl(kExportTime, 0, 7);
  tmpl.templateSet(kTemplateId, kV4Fields);
  EXPECT_TRUE(decode(d, tmpl.bytes()).empty());

  IpfixMessage data(kExportTime, 0, 7);
  data.beginSet(kTemplateId);
  putV4(data, kFlowB);
  data.endSet();
  const auto records = decode(d, data.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0], expectedV4(7, kFlowB));
  EXPECT_EQ(d.stats().messages, 2u);
  EXPECT_EQ(d.stats().unknown_template, 0u);
}

TEST(Ipfix, TemplatesAreScopedByExporterAndDomain) {
  IpfixDecoder d;
  ASSERT_EQ(decode(d, templateAndData(0, 7).bytes()).size(), 2u);
  IpfixMessage data(kExportTime, 0, 8);  // same exporter, other domain
  data.beginSet(kTemplateId);
  putV4(data, kFlowA);
  data.endSet();
  EXPECT_TRUE(decode(d, data.bytes()).empty());
  EXPECT_EQ(d.stats().unknown_template, 1u);

  IpfixMessage other(kExportTime, 2, 7);  // same domain, other exporter
  other.beginSet(kTemplateId);
  putV4(other, kFlowA);
  other.endSet();
  EXPECT_TRUE(decode(d, other.bytes(), "127.0.0.1:40001").empty());
  EXPECT_EQ(d.stats().unknown_template, 2u);
}

TEST(Ipfix, Ipv6RecordWithIcmpTypeAndCode) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 9);
  m.templateSet(300, {{138, 4}, {27, 16}, {28, 16}, {4, 1}, {178, 1}, {179, 1}, {2, 8}, {1, 8}});
  m.beginSet(300).u32(5);
  const IpAddress src = ip("2001:db8::1");
  const IpAddress dst = ip("fe80::2");
  for (const IpAddress& a : {src, dst}) {
    for (uint8_t b : a.bytes) {
      m.u8(b);
    }
  }
  m.u8(58).u8(128).u8(0).u64(2).u64(208).endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].observation_domain, 9u);
  EXPECT_EQ(records[0].observation_point, 5u);
  EXPECT_EQ(records[0].src, src);
  EXPECT_EQ(records[0].dst, dst);
  EXPECT_EQ(records[0].dst->toString(), "fe80::2");
  EXPECT_EQ(records[0].protocol, 58);
  EXPECT_EQ(records[0].icmp_type, 128);
  EXPECT_EQ(records[0].icmp_code, 0);
  EXPECT_EQ(records[0].packets, 2u);
  EXPECT_EQ(records[0].bytes, 208u);
  EXPECT_EQ(records[0].start_ms, 0);  // no time elements in this template
}

TEST(Ipfix, CombinedIcmpTypeCode) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 1);
  m.templateSet(256, {{4, 1}, {32, 2}}).beginSet(256).u8(1).u8(3).u8(13).endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].icmp_type, 3);
  EXPECT_EQ(records[0].icmp_code, 13);
}

TEST(Ipfix, VariableLengthFields) {
  IpfixDecoder d;
  // interfaceName (82) is variable-length in OVS's template; fields after it must still line up.
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{138, 4}, {82, 0xffff}, {10, 4}, {83, 0xffff}, {2, 8}});
  m.beginSet(256);
  m.u32(1).u8(3).raw({'p', '1', 'x'}).u32(11).u8(0).u64(5);       // 1-byte length prefix
  m.u32(2).u8(255).u16(300).fill(300, 'a').u32(12).u8(0).u64(6);  // 3-byte length prefix
  m.endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].observation_point, 1u);
  EXPECT_EQ(records[0].ingress_interface, 11u);
  EXPECT_EQ(records[0].packets, 5u);
  EXPECT_EQ(records[1].observation_point, 2u);
  EXPECT_EQ(records[1].ingress_interface, 12u);
  EXPECT_EQ(records[1].packets, 6u);
  EXPECT_EQ(d.stats().malformed, 0u);
}

TEST(Ipfix, VariableLengthOverrunIsMalformed) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{138, 4}, {82, 0xffff}});
  m.beginSet(256).u32(1).u8(2).raw({'a', 'b'});  // a good record
  m.u32(2).u8(255).u16(1000).raw({'a', 'b'});    // claims 1000 bytes, has 2
  m.endSet();
  EXPECT_TRUE(decode(d, m.bytes()).empty());  // the set decodes atomically
  EXPECT_EQ(d.stats().malformed, 1u);
  EXPECT_EQ(d.stats().records, 0u);
}

TEST(Ipfix, EnterpriseFieldsAreSkipped) {
  IpfixDecoder d;
  // VMware's tunnel elements as OVS sends them, plus one that reuses IANA id 8
  // (sourceIPv4Address) under another enterprise: it must not be read as an address.
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{891, 1, 6876}, {898, 0xffff, 6876}, {8, 4, 12345}, {138, 4}, {2, 8}});
  m.beginSet(256).u8(1).u8(4).raw({1, 2, 3, 4}).raw({10, 9, 9, 9}).u32(42).u64(7).endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(records[0].src.has_value());
  EXPECT_EQ(records[0].observation_point, 42u);
  EXPECT_EQ(records[0].packets, 7u);
}

TEST(Ipfix, OptionsTemplateAndItsDataAreSkipped) {
  IpfixDecoder d;
  // OVS's exporter statistics: scope exportingProcessId (144), notSentPacketTotalCount (167).
  IpfixMessage tmpl(kExportTime, 0, 0);
  tmpl.beginSet(3).optionsTemplateRecord(257, 1, {{144, 4}, {167, 8}}).endSet();
  tmpl.templateSet(kTemplateId, kV4Fields);
  EXPECT_TRUE(decode(d, tmpl.bytes()).empty());
  EXPECT_EQ(d.stats().templates, 2u);

  IpfixMessage stats(kExportTime, 0, 0);
  stats.beginSet(257).u32(1).u64(99).u32(2).u64(100).endSet();
  stats.beginSet(kTemplateId);
  putV4(stats, kFlowA);
  stats.endSet();
  const auto records = decode(d, stats.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0], expectedV4(0, kFlowA));
  EXPECT_EQ(d.stats().records, 1u);
  EXPECT_EQ(d.stats().malformed, 0u);
  EXPECT_EQ(d.stats().unknown_template, 0u);

  // Options data records count in the sequence: the next message (3 records later) is in step.
  IpfixMessage next(kExportTime, 3, 0);
  next.beginSet(257).u32(1).u64(0).endSet();
  decode(d, next.bytes());
  EXPECT_EQ(d.stats().lost, 0u);
}

TEST(Ipfix, OptionsTemplateWithoutScopeIsMalformed) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 0);
  m.beginSet(3).optionsTemplateRecord(257, 0, {{144, 4}}).endSet();
  decode(d, m.bytes());
  EXPECT_EQ(d.stats().malformed, 1u);
  EXPECT_EQ(d.templateCount(), 0u);
}

TEST(Ipfix, TruncatedDatagramAtEveryLength) {
  const std::vector<uint8_t> full = templateAndData().bytes();
  for (size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    IpfixDecoder d;
    // A copy of exactly `len` bytes, so ASan sees any read past the end.
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(len));
    EXPECT_TRUE(decode(d, cut).empty());
    EXPECT_EQ(d.stats().malformed, 1u);  // the header's length promises more than arrived
    EXPECT_EQ(d.stats().messages, 0u);
  }
}

// Cut at every byte, with the header's (and the cut set's) length rewritten to match: the sets
// and records themselves are then truncated. Nothing is invented: what is decoded is a prefix of
// the full message's records, and a cut record is never decoded.
TEST(Ipfix, TruncatedSetAndRecordAtEveryOffset) {
  const std::vector<uint8_t> full = templateAndData().bytes();
  const size_t template_set_end = 16 + 4 + 4 + 4 * kV4Fields.size();
  const size_t record_length = 58;
  ASSERT_EQ(full.size(), template_set_end + 4 + 2 * record_length);
  const std::vector<IpfixRecord> want = {expectedV4(7, kFlowA), expectedV4(7, kFlowB)};
  uint64_t malformed_total = 0;
  for (size_t len = 16; len < full.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(len));
    cut[2] = static_cast<uint8_t>(len >> 8);
    cut[3] = static_cast<uint8_t>(len);
    const size_t set_start = len <= template_set_end ? 16 : template_set_end;
    if (len - set_start >= 4) {
      cut[set_start + 2] = static_cast<uint8_t>((len - set_start) >> 8);
      cut[set_start + 3] = static_cast<uint8_t>(len - set_start);
    }
    IpfixDecoder d;
    const auto records = decode(d, cut);
    ASSERT_LE(records.size(), want.size());
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i], want[i]);
    }
    if (len == 16 || len == 20) {
      EXPECT_EQ(d.stats().malformed, 0u);  // no sets, or an empty template set: both valid
      EXPECT_EQ(d.templateCount(), 0u);
    } else if (len < template_set_end) {
      EXPECT_EQ(d.stats().malformed, 1u);  // cut template set (or set header)
      EXPECT_EQ(d.templateCount(), 0u);
    } else if (len == template_set_end) {
      EXPECT_EQ(d.stats().malformed, 0u);
      EXPECT_EQ(d.templateCount(), 1u);
    } else if (len < template_set_end + 4) {
      EXPECT_EQ(d.stats().malformed, 1u);  // cut data set header
    } else {
      // Whole records, then the cut one's first bytes. Those pass as padding only when they
      // are all zero (RFC 7011 padding); otherwise the set is malformed and yields nothing.
      const size_t whole = (len - template_set_end - 4) / record_length;
      const auto partial =
          cut.begin() + static_cast<ptrdiff_t>(template_set_end + 4 + whole * record_length);
      if (std::all_of(partial, cut.end(), [](uint8_t b) { return b == 0; })) {
        EXPECT_EQ(d.stats().malformed, 0u);
        EXPECT_EQ(records.size(), whole);
      } else {
        EXPECT_EQ(d.stats().malformed, 1u);
        EXPECT_TRUE(records.empty());
      }
    }
    malformed_total += d.stats().malformed;
  }
  EXPECT_GT(malformed_total, 100u);
}

TEST(Ipfix, BadHeadersAndSetLengthsAreMalformed) {
  const std::vector<uint8_t> good = templateAndData().bytes();
  struct Case {
    const char* name;
    size_t at;
    uint8_t value;
  };
  const Case cases[] = {
      {"version 9", 1, 9},
      {"message length below header", 3, 15},
      {"set length 0", 16 + 3, 0},
      {"set length 3", 16 + 3, 3},
      {"set length past the message", 16 + 2, 0xff},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> bad = good;
    bad[c.at] = c.value;
    IpfixDecoder d;
    EXPECT_TRUE(decode(d, bad).empty());
    EXPECT_EQ(d.stats().malformed, 1u);
  }
  // A reserved set id (4..255) is skipped; the sets after it still decode.
  IpfixMessage m(kExportTime, 0, 7);
  m.beginSet(5).u32(0).endSet().templateSet(256, {{2, 8}}).beginSet(256).u64(9).endSet();
  IpfixDecoder d;
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].packets, 9u);
  EXPECT_EQ(d.stats().malformed, 1u);
}

TEST(Ipfix, ZeroPaddingIsAcceptedNonZeroLeftoverIsNot) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{138, 4}, {2, 8}}).beginSet(256).u32(1).u64(1).fill(3, 0).endSet();
  EXPECT_EQ(decode(d, m.bytes()).size(), 1u);
  EXPECT_EQ(d.stats().malformed, 0u);

  IpfixMessage bad(kExportTime, 1, 7);
  bad.beginSet(256).u32(1).u64(1).raw({0, 7, 0}).endSet();
  EXPECT_TRUE(decode(d, bad.bytes()).empty());
  EXPECT_EQ(d.stats().malformed, 1u);
}

TEST(Ipfix, UnknownTemplateIsCountedAndDropped) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 7);
  m.beginSet(kTemplateId);
  putV4(m, kFlowA);
  m.endSet();
  EXPECT_TRUE(decode(d, m.bytes()).empty());
  EXPECT_EQ(d.stats().unknown_template, 1u);
  EXPECT_EQ(d.stats().malformed, 0u);
  EXPECT_EQ(d.stats().records, 0u);
}

TEST(Ipfix, TemplateWithdrawal) {
  IpfixDecoder d;
  ASSERT_EQ(decode(d, templateAndData().bytes()).size(), 2u);
  IpfixMessage more(kExportTime, 2, 7);
  more.templateSet(257, {{2, 8}}).beginSet(3).optionsTemplateRecord(258, 1, {{144, 4}}).endSet();
  decode(d, more.bytes());
  ASSERT_EQ(d.templateCount(), 3u);

  IpfixMessage withdraw(kExportTime, 2, 7);
  withdraw.beginSet(2).u16(kTemplateId).u16(0).endSet();
  decode(d, withdraw.bytes());
  EXPECT_EQ(d.templateCount(), 2u);
  IpfixMessage data(kExportTime, 2, 7);
  data.beginSet(kTemplateId);
  putV4(data, kFlowA);
  data.endSet();
  EXPECT_TRUE(decode(d, data.bytes()).empty());
  EXPECT_EQ(d.stats().unknown_template, 1u);

  // "All templates" withdrawal (id 2 in a template set) leaves the options template.
  IpfixMessage all(kExportTime, 2, 7);
  all.beginSet(2).u16(2).u16(0).endSet();
  decode(d, all.bytes());
  EXPECT_EQ(d.templateCount(), 1u);
  EXPECT_EQ(d.stats().malformed, 0u);
}

TEST(Ipfix, TemplateRedefinitionReplaces) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{2, 8}}).templateSet(256, {{138, 4}}).beginSet(256).u32(77).endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].observation_point, 77u);
  EXPECT_FALSE(records[0].has_counts);
  EXPECT_EQ(d.templateCount(), 1u);
}

TEST(Ipfix, TemplateTableIsBounded) {
  IpfixDecoder d;
  // 4200 distinct templates over several domains, a few per message.
  uint32_t domain = 0;
  uint16_t id = 256;
  size_t sent = 0;
  while (sent < 4200) {
    IpfixMessage m(kExportTime, 0, domain);
    m.beginSet(2);
    for (int i = 0; i < 100; ++i, ++sent) {
      m.templateRecord(id, {{2, 8}});
      if (++id == 0) {
        id = 256;
      }
    }
    m.endSet();
    decode(d, m.bytes());
    ++domain;
  }
  EXPECT_EQ(d.templateCount(), IpfixDecoder::kMaxTemplates);
  EXPECT_EQ(d.stats().templates, IpfixDecoder::kMaxTemplates);
  EXPECT_EQ(d.stats().templates_rejected, 4200u - IpfixDecoder::kMaxTemplates);
  // Redefining a kept template still works when the table is full.
  IpfixMessage again(kExportTime, 0, 0);
  again.templateSet(256, {{138, 4}}).beginSet(256).u32(5).endSet();
  const auto records = decode(d, again.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].observation_point, 5u);
}

TEST(Ipfix, AbsurdTemplatesAreRefused) {
  IpfixDecoder d;
  // More fields than kMaxFieldsPerTemplate: parsed past, not kept.
  std::vector<Field> many(IpfixDecoder::kMaxFieldsPerTemplate + 1, Field{2, 8});
  IpfixMessage big(kExportTime, 0, 7);
  big.templateSet(256, many).templateSet(257, {{2, 8}});
  decode(d, big.bytes());
  EXPECT_EQ(d.stats().templates_rejected, 1u);
  EXPECT_EQ(d.templateCount(), 1u);

  // A field count the set cannot hold.
  IpfixMessage lying(kExportTime, 0, 7);
  lying.beginSet(2).u16(258).u16(60000).u16(2).u16(8).endSet();
  decode(d, lying.bytes());
  EXPECT_EQ(d.stats().malformed, 1u);

  // Records of zero bytes would never end a data set.
  IpfixMessage empty_fields(kExportTime, 0, 7);
  empty_fields.templateSet(259, {{2, 0}, {1, 0}});
  decode(d, empty_fields.bytes());
  EXPECT_EQ(d.stats().malformed, 2u);

  // Template ids below 256 are reserved.
  IpfixMessage low(kExportTime, 0, 7);
  low.templateSet(255, {{2, 8}});
  decode(d, low.bytes());
  EXPECT_EQ(d.stats().malformed, 3u);
  EXPECT_EQ(d.templateCount(), 1u);
}

// One record per message, like OVS: sequence numbers 0, 1, 2, ...
std::vector<uint8_t> oneRecord(uint32_t sequence, uint32_t domain = 7) {
  IpfixMessage m(kExportTime, sequence, domain);
  m.beginSet(kTemplateId);
  putV4(m, kFlowA);
  m.endSet();
  return m.bytes();
}

TEST(Ipfix, SequenceGapsCountLostRecords) {
  IpfixDecoder d;
  decode(d, templateAndData(0).bytes());  // records 0, 1
  decode(d, oneRecord(2));
  EXPECT_EQ(d.stats().lost, 0u);
  decode(d, oneRecord(6));  // 3, 4, 5 lost
  EXPECT_EQ(d.stats().lost, 3u);
  decode(d, oneRecord(7));
  EXPECT_EQ(d.stats().lost, 3u);
  decode(d, oneRecord(4));  // late: one of the three arrived after all
  EXPECT_EQ(d.stats().lost, 2u);
  decode(d, oneRecord(8));  // still in step after the late one
  EXPECT_EQ(d.stats().lost, 2u);

  // The first message of another domain (or exporter) is not a gap, whatever its number.
  IpfixMessage tmpl(kExportTime, 5000, 8);
  tmpl.templateSet(kTemplateId, kV4Fields);
  decode(d, tmpl.bytes());
  decode(d, oneRecord(5000, 8));
  EXPECT_EQ(d.stats().lost, 2u);
  decode(d, oneRecord(5002, 8));
  EXPECT_EQ(d.stats().lost, 3u);
}

TEST(Ipfix, SequenceWrapsAround) {
  IpfixDecoder d;
  decode(d, templateAndData(0xfffffffeu).bytes());  // records 0xfffffffe, 0xffffffff
  decode(d, oneRecord(0));
  EXPECT_EQ(d.stats().lost, 0u);
  decode(d, oneRecord(3));  // 1, 2 lost across the wrap
  EXPECT_EQ(d.stats().lost, 2u);

  IpfixDecoder w;
  decode(w, templateAndData(0xfffffff0u).bytes());
  decode(w, oneRecord(0xfffffffeu));  // 12 lost; next expected 0xffffffff
  EXPECT_EQ(w.stats().lost, 12u);
  decode(w, oneRecord(1));  // 0xffffffff and 0 lost
  EXPECT_EQ(w.stats().lost, 14u);
}

TEST(Ipfix, SequenceRestartOrUnknownCountsNoLoss) {
  IpfixDecoder d;
  decode(d, templateAndData(1000000).bytes());
  decode(d, oneRecord(1));  // far behind: the exporter restarted
  EXPECT_EQ(d.stats().lost, 0u);
  decode(d, oneRecord(2));
  EXPECT_EQ(d.stats().lost, 0u);
  decode(d, oneRecord(2 + (1u << 30)));  // far ahead: not believable as loss
  EXPECT_EQ(d.stats().lost, 0u);

  // A data set that cannot be counted (unknown template) makes the next message resynchronise.
  IpfixDecoder u;
  decode(u, templateAndData(0).bytes());
  IpfixMessage unknown(kExportTime, 2, 7);
  unknown.beginSet(999).u32(0).endSet();
  decode(u, unknown.bytes());
  decode(u, oneRecord(10));
  EXPECT_EQ(u.stats().lost, 0u);
  decode(u, oneRecord(12));
  EXPECT_EQ(u.stats().lost, 1u);
}

// What OVS 3.1 sends at start (seen in tests/integration/ipfix_test.cpp): templates in domain 7
// with sequence 1, its options template and one exporter-statistics record in domain 0 with
// sequence 1, then flow records in domain 7 numbered 2, 3, 4: one counter for all domains.
TEST(Ipfix, OvsSharesOneSequenceCounterAcrossDomains) {
  const auto replay = [](IpfixDecoder& d) {
    IpfixMessage tmpl(kExportTime, 1, 7);
    tmpl.templateSet(kTemplateId, kV4Fields);
    decode(d, tmpl.bytes());
    IpfixMessage options(kExportTime, 1, 0);
    options.beginSet(3).optionsTemplateRecord(462, 1, {{144, 4}, {167, 8}}).endSet();
    decode(d, options.bytes());
    IpfixMessage stats(kExportTime, 1, 0);
    stats.beginSet(462).u32(2).u64(0).endSet();
    decode(d, stats.bytes());
    for (uint32_t seq = 2; seq <= 4; ++seq) {
      EXPECT_EQ(decode(d, oneRecord(seq)).size(), 1u);
    }
  };
  IpfixDecoder rfc;
  replay(rfc);
  EXPECT_EQ(rfc.stats().lost, 1u);  // the statistics record looks like a lost flow record
  IpfixDecoder ovs(SequenceScope::kPerExporter);
  replay(ovs);
  EXPECT_EQ(ovs.stats().lost, 0u);
  EXPECT_EQ(ovs.stats().records, 3u);
  decode(ovs, oneRecord(7));  // 5 and 6 lost
  EXPECT_EQ(ovs.stats().lost, 2u);
}

// OVS sends its templates every 600 s in the domain of whichever record is due then; records
// of every other domain (vpcguard puts the verdict in the domain) use the same template ids.
TEST(Ipfix, OvsTemplatesServeEveryDomain) {
  const auto replay = [](IpfixDecoder& d) {
    IpfixMessage tmpl(kExportTime, 1, 7);
    tmpl.templateSet(kTemplateId, kV4Fields);
    decode(d, tmpl.bytes());
    return decode(d, oneRecord(1, 0x05000064)).size() + decode(d, oneRecord(2, 7)).size();
  };
  IpfixDecoder rfc;
  EXPECT_EQ(replay(rfc), 1u);  // RFC 7011: the template is unknown in domain 0x05000064
  EXPECT_EQ(rfc.stats().unknown_template, 1u);
  IpfixDecoder ovs(SequenceScope::kPerExporter);
  EXPECT_EQ(replay(ovs), 2u);
  EXPECT_EQ(ovs.stats().unknown_template, 0u);
  EXPECT_EQ(ovs.stats().lost, 0u);
}

TEST(Ipfix, TimeElements) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{158, 4}, {159, 4}});
  m.templateSet(257, {{150, 4}, {153, 8}});
  m.templateSet(258, {{156, 8}, {155, 8}});
  // Deltas count back from the export time; a remainder of microseconds rounds down.
  m.beginSet(256).u32(2500000).u32(1).endSet();
  m.beginSet(257).u32(1600000000).u64(1600000001234).endSet();
  // NTP: 1970 + 1 s and a half second; 1970 + 2 s and a quarter.
  m.beginSet(258).u32(2208988801u).u32(0x80000000u).u32(2208988802u).u32(0x40000000u).endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].start_ms, 1699999997500);
  EXPECT_EQ(records[0].end_ms, 1699999999999);
  EXPECT_EQ(records[1].start_ms, 1600000000000);
  EXPECT_EQ(records[1].end_ms, 1600000001234);
  EXPECT_EQ(records[2].start_ms, 1500);
  EXPECT_EQ(records[2].end_ms, 2250);

  // A delta reaching back before 1970 (only a broken or hostile exporter) rounds down too.
  IpfixMessage early(0, 0, 7);
  early.beginSet(256).u32(1500).u32(0).endSet();
  const auto negative = decode(d, early.bytes());
  ASSERT_EQ(negative.size(), 1u);
  EXPECT_EQ(negative[0].start_ms, -2);
  EXPECT_EQ(negative[0].end_ms, 0);
}

TEST(Ipfix, ReducedSizeCountersAndMissingOctets) {
  IpfixDecoder d;
  IpfixMessage m(kExportTime, 0, 7);
  m.templateSet(256, {{2, 4}, {352, 2}}).beginSet(256).u32(70000).u16(900).endSet();
  const auto records = decode(d, m.bytes());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].packets, 70000u);
  EXPECT_EQ(records[0].l2_bytes, 900u);
  EXPECT_EQ(records[0].bytes, 0u);
  EXPECT_TRUE(records[0].has_counts);
}

}  // namespace
}  // namespace vpcguard::flowlog
