#include "translator/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace vpcguard {
namespace {

IpAddress masked(const IpAddress& a, int prefix_len) {
  IpAddress out = a;
  const int width = a.bitWidth();
  for (int bit = prefix_len; bit < width; ++bit) {
    out.bytes[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(1u << (7 - bit % 8)));
  }
  return out;
}

}  // namespace

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress a;
  if (s.find(':') != std::string::npos) {
    a.family = IpFamily::kV6;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) {
      return makeError("'" + s + "' is not a valid IPv6 address");
    }
    return a;
  }
  a.family = IpFamily::kV4;
  // inet_pton accepts only dotted quads, which is what AWS accepts too.
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) {
    return makeError("'" + s + "' is not a valid IPv4 address");
  }
  return a;
}

IpAddress IpAddress::v4(uint32_t host_order) {
  IpAddress a;
  a.family = IpFamily::kV4;
  a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[3] = static_cast<uint8_t>(host_order);
  return a;
}

uint32_t IpAddress::v4Value() const {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == IpFamily::kV4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddress IpAddress::plus(int64_t n) const {
  IpAddress out = *this;
  const int len = family == IpFamily::kV4 ? 4 : 16;
  // Add a signed 64-bit value to a big-endian number of len bytes.
  int64_t carry = n;
  for (int i = len - 1; i >= 0 && carry != 0; --i) {
    int64_t v = int64_t{out.bytes[static_cast<size_t>(i)]} + (carry % 256);
    carry /= 256;
    if (v < 0) {
      v += 256;
      carry -= 1;
    } else if (v > 255) {
      v -= 256;
      carry += 1;
    }
    out.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
  }
  return out;
}

Result<Cidr> Cidr::parse(std::string_view text, bool require_canonical) {
  const auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) {
    return makeError("'" + std::string(text) + "' is not a valid CIDR block (" +
                     addr.error().message + ")");
  }
  Cidr c{*addr, addr->bitWidth()};
  if (slash != std::string_view::npos) {
    const std::string len(text.substr(slash + 1));
    if (len.empty() || len.size() > 3 ||
        !std::all_of(len.begin(), len.end(), [](char ch) { return std::isdigit(ch) != 0; })) {
      return makeError("'" + std::string(text) + "' has an invalid prefix length");
    }
    c.prefix_len = std::stoi(len);
    if (c.prefix_len > addr->bitWidth()) {
      return makeError("'" + std::string(text) + "': prefix length " + len + " exceeds " +
                       std::to_string(addr->bitWidth()));
    }
  }
  const IpAddress net = masked(c.address, c.prefix_len);
  if (net != c.address) {
    if (require_canonical) {
      return makeError("'" + std::string(text) + "' is not a canonical CIDR block (did you mean " +
                       net.toString() + "/" + std::to_string(c.prefix_len) + "?)");
    }
    c.address = net;
  }
  return c;
}

std::string Cidr::toString() const { return address.toString() + "/" + std::to_string(prefix_len); }

bool Cidr::contains(const IpAddress& a) const {
  if (a.family != address.family) {
    return false;
  }
  return masked(a, prefix_len) == address;
}

bool Cidr::contains(const Cidr& other) const {
  return other.family() == family() && other.prefix_len >= prefix_len && contains(other.address);
}

bool Cidr::overlaps(const Cidr& other) const { return contains(other) || other.contains(*this); }

IpAddress Cidr::last() const {
  IpAddress out = address;
  for (int bit = prefix_len; bit < address.bitWidth(); ++bit) {
    out.bytes[static_cast<size_t>(bit / 8)] |= static_cast<uint8_t>(1u << (7 - bit % 8));
  }
  return out;
}

Result<std::string> canonicalMac(std::string_view text) {
  // Exactly six pairs of hex digits separated by colons (sscanf's %2x would also take spaces, a
  // sign or a 0x prefix), lower-cased. Checked by hand: a large policy has thousands of MACs.
  std::string out(text);
  bool ok = out.size() == 17;
  for (size_t i = 0; ok && i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    ok = i % 3 == 2 ? c == ':' : std::isxdigit(c) != 0;
    out[i] = static_cast<char>(std::tolower(c));
  }
  if (!ok) {
    return makeError("'" + std::string(text) + "' is not a MAC address (expected aa:bb:cc:dd:ee:ff)");
  }
  return out;
}

}  // namespace vpcguard
