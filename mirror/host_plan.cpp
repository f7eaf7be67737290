#include "mirror/host_plan.h"

#include <algorithm>
#include <set>

#include "translator/mirror.h"
#include "translator/pipeline.h"

namespace vpcguard::mirror {

std::string hostAddressWithPrefix() {
  const auto subnet = Cidr::parse(pipeline::kMirrorHostSubnet);
  return std::string(pipeline::kMirrorHostAddress) + "/" + std::to_string(subnet->prefix_len);
}

Result<HostPlan> hostPlan(const model::Policy& policy,
                          const std::vector<LocalTargetRoute>& previous) {
  HostPlan plan;
  plan.tunnel = !policy.traffic_mirror_sessions.empty();
  std::set<std::string> used;
  for (const auto& s : policy.traffic_mirror_sessions) {
    used.insert(s.traffic_mirror_target_id);
  }
  std::set<IpAddress> local_seen;
  for (const auto& t : policy.traffic_mirror_targets) {
    if (used.count(t.id) == 0) {
      continue;
    }
    const auto address = mirrorTargetAddress(policy, t);
    if (!address) {
      continue;  // an unknown interface: validation reports it
    }
    if (t.vxlan_remote_ip) {
      plan.remote.push_back(RemoteTarget{*address, t.id});
      continue;
    }
    if (!local_seen.insert(*address).second) {
      continue;  // two targets on one interface: one route
    }
    const auto eni = std::find_if(policy.network_interfaces.begin(), policy.network_interfaces.end(),
                                  [&](const auto& n) { return n.id == *t.network_interface_id; });
    plan.local.push_back(LocalTargetRoute{*address, eni->mac_address, {}, t.id});
  }
  std::sort(plan.local.begin(), plan.local.end());
  std::sort(plan.remote.begin(), plan.remote.end());
  const auto subnet = Cidr::parse(pipeline::kMirrorHostSubnet);
  const int64_t room = (int64_t{1} << (32 - subnet->prefix_len)) - 3;  // network, .1, broadcast
  if (static_cast<int64_t>(plan.local.size()) > room) {
    return makeError("traffic mirroring: " + std::to_string(plan.local.size()) +
                     " local targets, at most " + std::to_string(room) +
                     " are possible (one next hop each in " + pipeline::kMirrorHostSubnet + ")");
  }
  // A target keeps its next hop while it exists (changing it means replacing its route, and
  // copies in between have none); a new one takes the lowest free.
  std::set<IpAddress> taken;
  std::vector<bool> kept(plan.local.size(), false);
  for (size_t i = 0; i < plan.local.size(); ++i) {
    auto& r = plan.local[i];
    auto prev = std::find_if(previous.begin(), previous.end(),
                             [&](const LocalTargetRoute& p) { return p.address == r.address; });
    if (prev != previous.end() && subnet->contains(prev->next_hop) &&
        taken.insert(prev->next_hop).second) {
      r.next_hop = prev->next_hop;
      kept[i] = true;
    }
  }
  int64_t next = 2;
  for (size_t i = 0; i < plan.local.size(); ++i) {
    if (kept[i]) {
      continue;
    }
    while (taken.count(subnet->first().plus(next)) != 0) {
      ++next;
    }
    plan.local[i].next_hop = subnet->first().plus(next);
    taken.insert(plan.local[i].next_hop);
  }
  for (const auto& m : policy.port_mirrors) {
    plan.port_mirrors.push_back(PortMirrorPlan{m.id, m.network_interface_id, m.output_port});
  }
  std::sort(plan.port_mirrors.begin(), plan.port_mirrors.end());
  return plan;
}

}  // namespace vpcguard::mirror
