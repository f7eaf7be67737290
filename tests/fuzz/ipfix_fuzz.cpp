// libFuzzer target: any bytes through flowlogs' IPFIX decoder, as one or more UDP datagrams.
// The decoder promises no crash, no read outside the datagram, no unbounded state, no hang.
//
// Input is split into datagrams at kSplit (at most kMaxDatagrams), so a template in one datagram
// and its data in a later one, withdrawals and sequence-number gaps across messages get covered.
// Seeds come from ipfix_fuzz_seeds (tests/fuzz/run-fuzz.sh writes them).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "flowlogs/ipfix.h"
#include "tests/fuzz/ipfix_fuzz_split.h"

namespace {

using vpcguard::flowlog::IpfixDecoder;
using vpcguard::flowlog::IpfixRecord;
using vpcguard::flowlog::SequenceScope;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

uint32_t headerDomain(std::span<const uint8_t> d) {
  return (uint32_t{d[12]} << 24) | (uint32_t{d[13]} << 16) | (uint32_t{d[14]} << 8) | d[15];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto datagrams = vpcguard::flowlog::fuzz::splitDatagrams({data, size});
  IpfixDecoder per_domain;
  IpfixDecoder per_exporter(SequenceScope::kPerExporter);
  std::vector<IpfixRecord> out;
  std::vector<IpfixRecord> out2;
  for (size_t i = 0; i < datagrams.size(); ++i) {
    // A copy of exactly the datagram's bytes, so ASan catches a read past its end.
    const std::vector<uint8_t> datagram(datagrams[i].begin(), datagrams[i].end());
    // Every third datagram from a second exporter: templates must not leak between them.
    const std::string_view exporter = i % 3 == 2 ? "10.0.0.2:4739" : "127.0.0.1:4739";
    const size_t before = out.size();
    per_domain.decode(datagram, exporter, out);
    const size_t before2 = out2.size();
    per_exporter.decode(datagram, exporter, out2);
    for (size_t r = before; r < out.size(); ++r) {
      check(out[r].observation_domain == headerDomain(datagram));
    }
    for (size_t r = before2; r < out2.size(); ++r) {
      check(out2[r].observation_domain == headerDomain(datagram));
    }
  }
  for (const IpfixDecoder* d : {&per_domain, &per_exporter}) {
    check(d->templateCount() <= IpfixDecoder::kMaxTemplates);
    check(d->stats().lost < (uint64_t{1} << 40));  // a give-back never underflows
    check(d->stats().messages + d->stats().malformed >= datagrams.size());
  }
  // Per exporter (OVS's numbering) templates serve every domain, so that mode may decode more
  // (data of another domain's template), never a record the header does not carry.
  check(per_domain.stats().records == out.size());
  check(per_exporter.stats().records == out2.size());
  return 0;
}
