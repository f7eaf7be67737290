#pragma once
// Policy -> desired OpenFlow flows (the pipeline of translator/pipeline.h).
//
// Design: one pass over a validated, defaults-resolved model::Policy. Security-group rules
// become conjunctive matches (local ENI x peer addresses x protocol/ports), so the flow count
// grows with the sum of members, peers and port masks, not their product; clause flows with
// the same match are shared by every rule that needs them (one flow, several conjunction
// actions). NACL entries become prioritised flows per NACL (not per subnet). Output is sorted,
// so equal inputs give equal flow lists (the reconciler diffs them; golden files compare them).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "translator/flow.h"
#include "translator/model.h"
#include "translator/result.h"
#include "translator/rule_ids.h"

namespace vpcguard {

struct TranslateInput {
  const model::Policy* policy = nullptr;
  // Interfaces attached to the bridge: iface-id -> OpenFlow port number; also the traffic-mirror
  // tunnel port under pipeline::kMirrorTunnelKey (no mirror flows without it).
  std::map<std::string, int> ofports;
  // Every interface's index, which is also its conntrack zone (1..65535). Indices must stay
  // stable while the daemon runs and across restarts, or live connections lose their state:
  // see assignInterfaceIndices().
  std::map<std::string, uint16_t> interface_index;
  uint16_t generation = 0;
  // Conjunction ids of the SG rules, kept by the caller across changes (updated for `policy`)
  // so that ids stay stable; nullptr = ids for this policy alone (what a fresh allocator gives).
  const RuleIdAllocator* rule_ids = nullptr;
};

struct TranslateStats {
  size_t flows = 0;
  size_t sg_rules = 0;         // rules that produced a conjunction
  size_t sg_clause_flows = 0;  // shared clause flows
  size_t nacl_flows = 0;
  // What the SG stage would need without conjunctions (members x peers x port masks).
  uint64_t sg_flows_without_conjunction = 0;
};

struct Translation {
  std::vector<Flow> flows;  // sorted by (table, priority, match)
  TranslateStats stats;
  // Conjunction id -> "sg-id ingress|egress #n" for traces and ct_label decoding.
  std::map<uint32_t, std::string> rule_names;
};

[[nodiscard]] Result<Translation> translate(const TranslateInput& input);

// Keeps the indices of interfaces that still exist and gives new ones the lowest free index.
// `policy` must have unique interface ids (as a validated one has).
[[nodiscard]] Result<std::map<std::string, uint16_t>> assignInterfaceIndices(
    const model::Policy& policy, const std::map<std::string, uint16_t>& previous);

// Conntrack idle timeouts per interface zone, in OVS's timeout-policy names: AWS's defaults
// (TCP established 432000 s, UDP 30 s, UDP stream 180 s) unless the interface's
// connection_tracking overrides them. UDP maps to udp_first/udp_single (one direction seen),
// UDP stream to udp_multiple (both directions seen).
using ConntrackTimeouts = std::map<uint16_t, std::map<std::string, int64_t>>;
[[nodiscard]] ConntrackTimeouts conntrackTimeouts(
    const model::Policy& policy, const std::map<std::string, uint16_t>& interface_index);
// conntrackTimeouts(policy, interface_index) == timeouts, without building it (every change
// asks; at 100k flows building it cost a millisecond).
[[nodiscard]] bool conntrackTimeoutsAre(const ConntrackTimeouts& timeouts,
                                        const model::Policy& policy,
                                        const std::map<std::string, uint16_t>& interface_index);

// Whether a flow log covers an interface: its resource is the interface, the interface's subnet
// or the VPC (a VPC or subnet log covers every interface inside, present and future).
[[nodiscard]] bool flowLogCovers(const model::FlowLog& log, const model::Policy& policy,
                                 const model::NetworkInterface& eni);
// Whether any flow log covers it: its accepted traffic is then counted (docs/flowlogs.md).
[[nodiscard]] bool flowLogged(const model::Policy& policy, const model::NetworkInterface& eni);

// Minimal value/mask pairs covering [from, to] of a 16-bit field, e.g. 1024-65535 -> 6 masks.
struct MaskedValue {
  uint16_t value = 0;
  uint16_t mask = 0;
  auto operator<=>(const MaskedValue&) const = default;
};
[[nodiscard]] std::vector<MaskedValue> portRangeMasks(uint16_t from, uint16_t to);

// The EUI-64 IPv6 link-local address of a MAC (fe80::xxxx:xxff:fexx:xxxx).
[[nodiscard]] IpAddress linkLocalFromMac(const std::string& mac);

}  // namespace vpcguard
