#pragma once
// How ipfix_fuzz cuts one fuzz input into UDP datagrams; shared with ipfix_fuzz_seeds, which
// joins its seed datagrams the same way.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vpcguard::flowlog::fuzz {

// Not a byte sequence an IPFIX message needs, and easy for libFuzzer to discover (memcmp hook).
constexpr std::string_view kSplit = "\xffIPFIX-NEXT\xff";
constexpr size_t kMaxDatagrams = 16;

inline std::vector<std::span<const uint8_t>> splitDatagrams(std::span<const uint8_t> input) {
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  std::vector<std::span<const uint8_t>> out;
  size_t begin = 0;
  while (out.size() < kMaxDatagrams) {
    const size_t end = text.find(kSplit, begin);
    const size_t stop = end == std::string_view::npos ? text.size() : end;
    out.push_back(input.subspan(begin, stop - begin));
    if (end == std::string_view::npos) {
      break;
    }
    begin = end + kSplit.size();
  }
  return out;
}

}  // namespace vpcguard::flowlog::fuzz
