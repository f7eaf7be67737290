#pragma once
// IPv4/IPv6 addresses and CIDR blocks, with the checks AWS applies (a CIDR must be canonical:
// 10.0.1.5/24 is an error, 10.0.1.0/24 is right).

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "translator/result.h"

namespace vpcguard {

enum class IpFamily : uint8_t { kV4, kV6 };

struct IpAddress {
  IpFamily family = IpFamily::kV4;
  // Network byte order; IPv4 uses the first 4 bytes.
  std::array<uint8_t, 16> bytes{};

  [[nodiscard]] static Result<IpAddress> parse(std::string_view text);
  [[nodiscard]] static IpAddress v4(uint32_t host_order);
  [[nodiscard]] std::string toString() const;
  [[nodiscard]] int bitWidth() const { return family == IpFamily::kV4 ? 32 : 128; }
  [[nodiscard]] bool isV4() const { return family == IpFamily::kV4; }
  // IPv4 only: the address as a host-order integer.
  [[nodiscard]] uint32_t v4Value() const;
  // This address plus `n` (wrapping inside its family); used for reserved subnet addresses.
  [[nodiscard]] IpAddress plus(int64_t n) const;

  auto operator<=>(const IpAddress&) const = default;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress address;
  int prefix_len = 0;

  // Parses "a.b.c.d/n" or "x::/n". A bare address is /32 or /128. With `require_canonical`,
  // host bits set after the prefix are an error (AWS rejects them).
  [[nodiscard]] static Result<Cidr> parse(std::string_view text, bool require_canonical = true);
  [[nodiscard]] std::string toString() const;
  [[nodiscard]] IpFamily family() const { return address.family; }
  [[nodiscard]] bool contains(const IpAddress& a) const;
  [[nodiscard]] bool contains(const Cidr& other) const;
  [[nodiscard]] bool overlaps(const Cidr& other) const;
  [[nodiscard]] bool isAll() const { return prefix_len == 0; }  // 0.0.0.0/0 or ::/0
  // First address (network) and last address (broadcast for IPv4).
  [[nodiscard]] IpAddress first() const { return address; }
  [[nodiscard]] IpAddress last() const;

  auto operator<=>(const Cidr&) const = default;
  bool operator==(const Cidr&) const = default;
};

// MAC address "aa:bb:cc:dd:ee:ff" -> canonical lower-case form, or an error.
[[nodiscard]] Result<std::string> canonicalMac(std::string_view text);

}  // namespace vpcguard
