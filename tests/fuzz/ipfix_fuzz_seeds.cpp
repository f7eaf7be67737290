// Writes ipfix_fuzz's seed corpus: valid IPFIX exchanges shaped like what Open vSwitch 3.1 sends
// (the IPv4/TCP template below is OVS's template 280 field for field, as captured from a sandbox
// by tests/integration/ipfix_test.cpp's set-up), plus the paths OVS does not take (IPv6,
// variable-length and enterprise fields, withdrawals, absolute times, sequence gaps).
// Datagrams of one exchange are joined with ipfix_fuzz's separator.
// Usage: ipfix_fuzz_seeds DIR

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/fuzz/ipfix_fuzz_split.h"
#include "tests/harness/ipfix_message.h"

namespace {

using vpcguard::flowlog::test::Field;
using vpcguard::flowlog::test::IpfixMessage;

constexpr uint32_t kTime = 1796529883;
constexpr uint16_t kVar = 0xffff;

// OVS 3.1's template for IPv4/TCP, ingress sampling, no tunnel.
const std::vector<Field> kOvsIpv4Tcp = {
    {138, 4},   {61, 1},  {56, 6},  {80, 6},  {256, 2}, {240, 1}, {10, 4},  {368, 4}, {82, kVar},
    {83, kVar}, {60, 1},  {192, 1}, {4, 1},   {195, 1}, {196, 1}, {5, 1},   {8, 4},   {12, 4},
    {7, 2},     {11, 2},  {158, 4}, {159, 4}, {133, 8}, {135, 8}, {2, 8},   {86, 8},  {354, 8},
    {355, 8},   {356, 8}, {357, 8}, {358, 8}, {19, 8},  {174, 8}, {352, 8}, {353, 8}, {136, 1},
    {132, 8},   {134, 8}, {1, 8},   {85, 8},  {198, 8}, {199, 8}, {25, 8},  {26, 8},  {20, 8},
    {175, 8},   {222, 8}, {219, 8}, {221, 8}, {220, 8}, {218, 8}, {223, 8}};

// One data record for `fields`: integers from `values` (0 when absent), "p1" for variable-length
// fields.
void putRecord(IpfixMessage& m, const std::vector<Field>& fields,
               const std::map<uint16_t, uint64_t>& values) {
  for (const Field& f : fields) {
    if (f.length == kVar) {
      m.u8(2).raw({'p', '1'});
      continue;
    }
    const auto it = values.find(f.id);
    const uint64_t v = it == values.end() ? 0 : it->second;
    for (uint16_t i = f.length; i > 0; --i) {
      m.u8(i > 8 ? 0 : static_cast<uint8_t>(v >> (8 * (i - 1))));
    }
  }
}

const std::map<uint16_t, uint64_t> kTcpFlow = {
    {138, 42},     {256, 0x0800},   {240, 14},        {60, 4},    {192, 64},
    {4, 6},        {8, 0x0a000105}, {12, 0x0a00020a}, {7, 40000}, {11, 5432},
    {158, 171000}, {159, 171000},   {2, 1},           {86, 1},    {352, 154},
    {353, 154},    {136, 2},        {1, 140},         {85, 140}};

void write(const std::string& dir, const std::string& name,
           const std::vector<std::vector<uint8_t>>& datagrams) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  for (size_t i = 0; i < datagrams.size(); ++i) {
    if (i > 0) {
      f << vpcguard::flowlog::fuzz::kSplit;
    }
    f.write(reinterpret_cast<const char*>(datagrams[i].data()),
            static_cast<std::streamsize>(datagrams[i].size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];

  // OVS's start-up exchange: templates (domain 7), options template and exporter statistics
  // (domain 0), then one record per message.
  {
    IpfixMessage tmpl(kTime, 1, 7);
    tmpl.templateSet(280, kOvsIpv4Tcp);
    IpfixMessage options(kTime, 1, 0);
    options.beginSet(3).optionsTemplateRecord(462, 1, {{144, 4}, {167, 8}}).endSet();
    IpfixMessage stats(kTime, 1, 0);
    stats.beginSet(462).u32(2).u64(0).endSet();
    std::vector<std::vector<uint8_t>> exchange = {tmpl.bytes(), options.bytes(), stats.bytes()};
    for (uint32_t seq = 2; seq <= 3; ++seq) {
      IpfixMessage data(kTime, seq, 7);
      data.beginSet(280);
      putRecord(data, kOvsIpv4Tcp, kTcpFlow);
      data.endSet();
      exchange.push_back(data.bytes());
    }
    write(dir, "ovs-startup", exchange);
  }
  // Template and two records in one message.
  {
    IpfixMessage m(kTime, 0, 7);
    m.templateSet(280, kOvsIpv4Tcp).beginSet(280);
    putRecord(m, kOvsIpv4Tcp, kTcpFlow);
    putRecord(m, kOvsIpv4Tcp, kTcpFlow);
    m.endSet();
    write(dir, "one-message", {m.bytes()});
  }
  // IPv6, ICMPv6, variable-length (1- and 3-byte prefixes) and enterprise fields.
  {
    const std::vector<Field> fields = {{138, 4},       {27, 16}, {28, 16},   {4, 1},
                                       {178, 1},       {179, 1}, {82, kVar}, {898, kVar, 6876},
                                       {891, 1, 6876}, {2, 8},   {1, 8},     {352, 8}};
    IpfixMessage m(kTime, 0, 9);
    m.templateSet(300, fields).beginSet(300);
    m.u32(5).raw({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    m.raw({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
    m.u8(58).u8(128).u8(0).u8(2).raw({'p', '1'}).u8(255).u16(300).fill(300, 'x').u8(1);
    m.u64(2).u64(208).u64(236).endSet();
    write(dir, "ipv6-varlen-enterprise", {m.bytes()});
  }
  // Withdrawal: data decodes, the template is withdrawn, the same data is then unknown.
  {
    const std::vector<Field> fields = {{138, 4}, {2, 8}};
    IpfixMessage tmpl(kTime, 0, 7);
    tmpl.templateSet(256, fields);
    IpfixMessage data(kTime, 0, 7);
    data.beginSet(256).u32(1).u64(1).endSet();
    IpfixMessage withdraw(kTime, 1, 7);
    withdraw.beginSet(2).u16(256).u16(0).endSet().beginSet(3).u16(3).u16(0).endSet();
    write(dir, "withdrawal", {tmpl.bytes(), data.bytes(), withdraw.bytes(), data.bytes()});
  }
  // Absolute time elements and reduced-size counters; sequence gap and a late message.
  {
    IpfixMessage m(kTime, 0, 7);
    m.templateSet(257, {{150, 4}, {151, 4}, {152, 8}, {153, 8}, {154, 8}, {157, 8}, {2, 4}});
    m.beginSet(257).u32(kTime - 2).u32(kTime).u64(1796529881000).u64(1796529883000);
    m.u32(kTime + 2208988800u).u32(0x80000000u).u32(kTime + 2208988800u).u32(0).u32(3).endSet();
    IpfixMessage gap(kTime, 5, 7);
    gap.beginSet(257).fill(44, 1).endSet();
    IpfixMessage late(kTime, 2, 7);
    late.beginSet(257).fill(44, 2).endSet();
    write(dir, "times-and-gaps", {m.bytes(), gap.bytes(), late.bytes()});
  }
  return 0;
}
