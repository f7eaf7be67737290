#pragma once
// FNV-1a: a stable 32-bit hash, the same in every build and on every host. Used where a value
// outlives the process: rule fingerprints inside conntrack labels, rule ids after a restart or on
// another hypervisor.
#include <cstdint>
#include <string_view>

namespace vpcguard {

[[nodiscard]] inline uint32_t fnv1a(std::string_view text) {
  uint32_t h = 2166136261U;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619U;
  }
  return h;
}

}  // namespace vpcguard
