#pragma once
// What traffic mirroring needs from the host around the bridge (docs/mirroring.md), as data:
// the VXLAN port, the routes that bring copies for local targets back into the bridge, the
// remote endpoints whose routes must exist, the plain port mirrors. The daemon applies it
// (daemon/mirror_runner.h); this part is pure, so it is unit-tested without a switch.

#include <compare>
#include <string>
#include <vector>

#include "translator/ip.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::mirror {

// A copy to a local interface is routed by ovs-vswitchd (its own table, `ovs/route/add`) to
// `address`/32 through the bridge itself with `next_hop` as gateway, and `next_hop`'s neighbour
// entry is the target's MAC: the VXLAN packet then enters the bridge from its LOCAL port
// addressed to the target's IP and MAC. One next hop per target, since the neighbour entry is
// what carries the MAC.
struct LocalTargetRoute {
  IpAddress address;  // the target interface's primary private IPv4 address
  std::string mac;
  IpAddress next_hop;  // in pipeline::kMirrorHostSubnet
  std::string target_id;
  auto operator<=>(const LocalTargetRoute&) const = default;
};

struct RemoteTarget {
  IpAddress address;
  std::string target_id;
  auto operator<=>(const RemoteTarget&) const = default;
};

struct PortMirrorPlan {
  std::string id;
  std::string source_iface_id;
  std::string output_port;
  auto operator<=>(const PortMirrorPlan&) const = default;
};

struct HostPlan {
  bool tunnel = false;                   // a session exists: the VXLAN port must
  std::vector<LocalTargetRoute> local;   // targets in use by a session, by address
  std::vector<RemoteTarget> remote;      // by address
  std::vector<PortMirrorPlan> port_mirrors;  // by id
  auto operator<=>(const HostPlan&) const = default;
};

// The host plan of a validated policy. Only targets a session uses count; two targets on one
// interface share its route. A local target keeps the next hop it has in `previous` (the plan
// in place); new ones take the lowest free address from kMirrorHostSubnet's .2 on. More local
// targets than the subnet holds (253) is an error (validation refuses such a config first).
[[nodiscard]] Result<HostPlan> hostPlan(const model::Policy& policy,
                                        const std::vector<LocalTargetRoute>& previous = {});

// The bridge's own address in kMirrorHostSubnet with its prefix ("169.254.118.1/24").
[[nodiscard]] std::string hostAddressWithPrefix();

}  // namespace vpcguard::mirror
