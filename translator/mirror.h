#pragma once
// Traffic mirroring: what the policy's sessions mean for one bridge (docs/mirroring.md).
//
// A MirrorPlan is everything the mirror flows depend on, resolved and sorted: per source
// interface (by index) its sessions in session-number order, each with the VXLAN network id,
// the tunnel destination (a local target's primary private IPv4 address, or the remote
// endpoint), the truncation length and the filter rules of both directions in rule-number order.
// It compares cheaply, so the incremental translator rebuilds the mirror flows only when it
// changed. Without the tunnel port (kMirrorTunnelKey missing from the ofports) the plan is empty:
// no copy could leave, so there are no mirror flows.

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "translator/ip.h"
#include "translator/model.h"

namespace vpcguard {

struct MirrorRulePlan {
  int rule_number = 0;
  bool accept = false;
  int protocol = model::kProtoAll;
  Cidr source;
  Cidr destination;
  std::optional<model::PortRange> source_ports;
  std::optional<model::PortRange> destination_ports;
  auto operator<=>(const MirrorRulePlan&) const = default;
};

struct MirrorSessionPlan {
  std::string id;
  uint32_t vni = 0;
  IpAddress tunnel_destination;
  bool local_target = false;  // routed back into the bridge (marked, see kMirrorPktMark)
  std::optional<int> packet_length;
  std::vector<MirrorRulePlan> egress;   // sorted by rule number
  std::vector<MirrorRulePlan> ingress;  // sorted by rule number
  auto operator<=>(const MirrorSessionPlan&) const = default;
};

struct MirrorSourcePlan {
  uint16_t index = 0;                       // the source interface's index
  std::vector<MirrorSessionPlan> sessions;  // by session number, at most a few
  auto operator<=>(const MirrorSourcePlan&) const = default;
};

struct MirrorPlan {
  int tunnel_ofport = -1;
  std::vector<MirrorSourcePlan> sources;  // by index
  auto operator<=>(const MirrorPlan&) const = default;
};

// The plan of a validated, defaults-resolved policy. Sessions whose source, target or filter
// is unknown (not possible after validation) are left out.
[[nodiscard]] MirrorPlan mirrorPlan(const model::Policy& policy,
                                    const std::map<std::string, int>& ofports,
                                    const std::map<std::string, uint16_t>& interface_index);

// The tunnel destination of a target: the local interface's primary private IPv4 address or
// the remote endpoint; nullopt when the target names an unknown interface.
[[nodiscard]] std::optional<IpAddress> mirrorTargetAddress(const model::Policy& policy,
                                                           const model::TrafficMirrorTarget& t);

}  // namespace vpcguard
