#pragma once
// Random valid policies and random packets for them, for property tests that evaluate the same
// packet twice and compare: explain::trace() against the switch's ofproto/trace
// (tests/integration/trace_property_test.cpp) and against real packets in the namespace lab
// (tests/e2e/trace_sample_test.cpp).
//
// Unlike tests/unit/model_generator.h, which probes validation with arbitrary shapes (and the
// odd invalid one), these policies are always valid and shaped so that verdicts go both ways:
// rules share a small per-policy pool of service ports and name CIDRs that cover the VPC's own
// addresses (subnets, hosts, halves of subnets) as well as the internet; packets then take their
// ports from the rules' range boundaries and one past them, where an off-by-one in a port mask
// would show. Everything is derived from one seed, so a failure names the seed that reproduces it.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "explain/trace.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::test {

// The seeded source of every random choice here.
class Rng {
 public:
  explicit Rng(uint32_t seed) : engine_(seed) {}
  [[nodiscard]] int uniform(int lo, int hi) {  // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(engine_);
  }
  [[nodiscard]] bool chance(double p) { return std::bernoulli_distribution(p)(engine_); }
  template <typename T>
  [[nodiscard]] const T& pick(const std::vector<T>& items) {
    return items.at(static_cast<size_t>(uniform(0, static_cast<int>(items.size()) - 1)));
  }
  // An index chosen with the given relative weights.
  [[nodiscard]] size_t weighted(std::initializer_list<int> weights);
  [[nodiscard]] std::mt19937& engine() { return engine_; }

 private:
  std::mt19937 engine_;
};

// A policy that validatePolicy() accepts, with resolveDefaults() applied:
//  - VPC 10.0.0.0/16 and 2600:1f18:abcd:1200::/56, strict_revocation now and then;
//  - 2-3 subnets (IPv4 /24, most with an IPv6 /64), some on the default NACL, the others on one
//    of 1-2 custom NACLs with random allow/deny entries (rule numbers, protocols, ports, CIDRs);
//  - 3-6 interfaces eni-0.. (the same ids in every policy, so a switch keeps its ports), with
//    MACs, a primary and sometimes a secondary IPv4 address, an IPv6 address where the subnet
//    has a block, 0-3 groups (none = the default group; in a policy with 6-8 groups now and then
//    up to 7, more than the interface has group slots), now and then source_dest_check off;
//  - 2-4 groups sg-0.. (6-8 in one policy of five) with tcp/udp port ranges, icmp/icmpv6 types, protocol all and 47, CIDR
//    peers inside and outside the VPC (0.0.0.0/0 and ::/0 included), group references (the
//    default group too) and now and then a prefix list; egress often AWS's allow-all.
// An error means the generator made an invalid policy (a bug here); it lists the diagnostics.
[[nodiscard]] Result<model::Policy> randomPolicy(uint32_t seed);

struct RandomPacketOptions {
  // Only what a VM of the namespace lab can send and observe: from one interface's first IPv4
  // (or IPv6) address to another's, TCP, UDP or ICMP/ICMPv6 (mostly echo), an explicit source
  // port, never a reply (the lab sees replies as a connection or a ping succeeding).
  bool sendable = false;
};

// Random packets for one policy, as `vpcguardctl trace` requests: from an interface (by id or
// by one of its addresses) to another interface, to a reserved or link-local address (never
// filtered), or to an address no interface has (no route); from the host (a link-local or a
// subnet's reserved address) to an interface; TCP/UDP with ports biased toward the
// policy's rule boundaries, ICMP/ICMPv6 types, protocol 47; IPv4 mostly, IPv6 where both ends
// have addresses; now and then the reply of the described connection.
class RandomPackets {
 public:
  // `policy` must outlive this object.
  RandomPackets(const model::Policy& policy, uint32_t seed, RandomPacketOptions options = {});
  [[nodiscard]] explain::TraceRequest next();

 private:
  // Another interface (by id or address; sets `from` to match), "" when none has the family.
  [[nodiscard]] std::string interfaceDestination(const model::NetworkInterface& src, bool v6,
                                                 std::string& from);
  [[nodiscard]] std::string unfilteredDestination(const model::NetworkInterface& src, bool v6);
  [[nodiscard]] std::string unroutedDestination(bool v6);
  [[nodiscard]] std::string hostSource(bool v6);
  [[nodiscard]] std::string protocolSpec(bool v6, bool& echo);
  [[nodiscard]] int port();

  const model::Policy& policy_;
  Rng rng_;
  RandomPacketOptions options_;
  std::vector<int> ports_;       // rule range boundaries and one past them
  std::vector<int> icmp_types_;  // ICMP types the rules name
};

// For failure messages: "from eni-1 to 10.0.3.7 tcp/443 source port 5000, reply".
[[nodiscard]] std::string describeRequest(const explain::TraceRequest& request);
// The parts of `policy` that decide `packet`: both interfaces (subnet, addresses, groups, source
// check), every rule of their groups, both subnets' NACL entries in rule order, strict mode.
[[nodiscard]] std::string describePolicyFor(const model::Policy& policy,
                                            const explain::TracePacket& packet);

}  // namespace vpcguard::test
