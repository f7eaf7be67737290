#include "translator/mirror.h"

#include <algorithm>

#include "translator/pipeline.h"

namespace vpcguard {
namespace {

template <typename T>
const T* findById(const std::vector<T>& list, const std::string& id) {
  auto it = std::find_if(list.begin(), list.end(), [&](const T& x) { return x.id == id; });
  return it == list.end() ? nullptr : &*it;
}

std::vector<MirrorRulePlan> rulesOf(const std::vector<model::TrafficMirrorFilterRule>& rules) {
  std::vector<MirrorRulePlan> out;
  out.reserve(rules.size());
  for (const auto& r : rules) {
    out.push_back(MirrorRulePlan{r.rule_number, r.accept, r.protocol, r.source_cidr_block,
                                 r.destination_cidr_block, r.source_port_range,
                                 r.destination_port_range});
  }
  std::sort(out.begin(), out.end(), [](const MirrorRulePlan& a, const MirrorRulePlan& b) {
    return a.rule_number < b.rule_number;
  });
  return out;
}

}  // namespace

std::optional<IpAddress> mirrorTargetAddress(const model::Policy& policy,
                                             const model::TrafficMirrorTarget& t) {
  if (t.vxlan_remote_ip) {
    return t.vxlan_remote_ip;
  }
  if (!t.network_interface_id) {
    return std::nullopt;
  }
  const auto* eni = findById(policy.network_interfaces, *t.network_interface_id);
  if (eni == nullptr || eni->private_ip_addresses.empty()) {
    return std::nullopt;
  }
  return eni->private_ip_addresses.front();
}

MirrorPlan mirrorPlan(const model::Policy& policy, const std::map<std::string, int>& ofports,
                      const std::map<std::string, uint16_t>& interface_index) {
  MirrorPlan plan;
  auto tunnel = ofports.find(pipeline::kMirrorTunnelKey);
  if (tunnel == ofports.end() || tunnel->second <= 0 || policy.traffic_mirror_sessions.empty()) {
    return plan;
  }
  plan.tunnel_ofport = tunnel->second;
  std::map<uint16_t, std::vector<const model::TrafficMirrorSession*>> by_source;
  for (const auto& s : policy.traffic_mirror_sessions) {
    auto idx = interface_index.find(s.network_interface_id);
    if (idx != interface_index.end() && idx->second != 0) {
      by_source[idx->second].push_back(&s);
    }
  }
  for (auto& [index, sessions] : by_source) {
    std::sort(sessions.begin(), sessions.end(),
              [](const auto* a, const auto* b) { return a->session_number < b->session_number; });
    MirrorSourcePlan source{index, {}};
    for (const auto* s : sessions) {
      const auto* target = findById(policy.traffic_mirror_targets, s->traffic_mirror_target_id);
      const auto* filter = findById(policy.traffic_mirror_filters, s->traffic_mirror_filter_id);
      std::optional<IpAddress> dst;
      if (target != nullptr) {
        dst = mirrorTargetAddress(policy, *target);
      }
      if (filter == nullptr || !dst || !s->virtual_network_id) {
        continue;
      }
      source.sessions.push_back(MirrorSessionPlan{
          s->id, *s->virtual_network_id, *dst, !target->vxlan_remote_ip.has_value(),
          s->packet_length, rulesOf(filter->egress_rules), rulesOf(filter->ingress_rules)});
    }
    if (!source.sessions.empty()) {
      plan.sources.push_back(std::move(source));
    }
  }
  return plan;
}

}  // namespace vpcguard
