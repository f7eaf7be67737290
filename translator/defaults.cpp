#include "translator/defaults.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vpcguard {
namespace {

Cidr allV4() { return Cidr{IpAddress::v4(0), 0}; }
Cidr allV6() {
  Cidr c;
  c.address.family = IpFamily::kV6;
  return c;
}

model::NetworkAclEntry allowAll(int rule_number, bool egress, Cidr cidr,
                                const model::SourceLocation& location) {
  model::NetworkAclEntry e;
  e.rule_number = rule_number;
  e.egress = egress;
  e.protocol = model::kProtoAll;
  e.allow = true;
  e.cidr = cidr;
  e.location = location;
  return e;
}

constexpr uint32_t kVniMask = (1u << 24) - 1;

// Gives every session without a virtual_network_id one no other session uses (header comment).
Result<void> assignVirtualNetworkIds(std::vector<model::TrafficMirrorSession>& sessions) {
  std::set<uint32_t> used;
  std::vector<size_t> unassigned;
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (sessions[i].virtual_network_id) {
      used.insert(*sessions[i].virtual_network_id);
    } else {
      unassigned.push_back(i);
    }
  }
  std::stable_sort(unassigned.begin(), unassigned.end(),
                   [&](size_t a, size_t b) { return sessions[a].id < sessions[b].id; });
  for (const size_t i : unassigned) {
    if (used.size() > kVniMask) {
      return makeError("resolve defaults: no virtual network id left for traffic mirror session '" +
                       sessions[i].id + "'");
    }
    uint32_t vni = virtualNetworkIdHash(sessions[i].id);
    while (used.count(vni) != 0) {
      vni = (vni + 1) & kVniMask;
    }
    used.insert(vni);
    sessions[i].virtual_network_id = vni;
  }
  return {};
}

}  // namespace

uint32_t virtualNetworkIdHash(std::string_view session_id) {
  // FNV-1a, 32 bits, xor-folded to 24 as its authors recommend for widths it has no prime for.
  uint32_t hash = 2166136261u;
  for (const char c : session_id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619u;
  }
  return (hash >> 24) ^ (hash & kVniMask);
}

std::vector<model::SecurityGroupRule> allowAllEgressRules(const model::SourceLocation& location) {
  std::vector<model::SecurityGroupRule> rules;
  for (const Cidr& cidr : {allV4(), allV6()}) {
    model::SecurityGroupRule r;
    r.ip_protocol = model::kProtoAll;
    r.peer = cidr;
    r.location = location;
    rules.push_back(std::move(r));
  }
  return rules;
}

model::SecurityGroup makeDefaultSecurityGroup(const model::Vpc& vpc) {
  model::SecurityGroup g;
  g.id = std::string(model::kDefaultSecurityGroupId);
  g.name = std::string(model::kDefaultSecurityGroupName);
  g.description = "default VPC security group";
  g.is_default = true;
  g.location = vpc.location;
  model::SecurityGroupRule self;
  self.ip_protocol = model::kProtoAll;
  self.peer = model::GroupRef{g.id};
  self.location = vpc.location;
  g.ingress.push_back(std::move(self));
  g.egress = allowAllEgressRules(vpc.location);
  return g;
}

model::NetworkAcl makeDefaultNetworkAcl(const model::Vpc& vpc) {
  model::NetworkAcl acl;
  acl.id = std::string(model::kDefaultNetworkAclId);
  acl.is_default = true;
  acl.location = vpc.location;
  // AWS numbers the IPv6 allow-all rule of the default NACL 101.
  for (bool egress : {false, true}) {
    acl.entries.push_back(allowAll(100, egress, allV4(), vpc.location));
    if (!vpc.ipv6_cidr_blocks.empty()) {
      acl.entries.push_back(allowAll(101, egress, allV6(), vpc.location));
    }
  }
  return acl;
}

Result<model::Policy> resolveDefaults(model::Policy policy) {
  const model::SecurityGroup* default_group = nullptr;
  for (const auto& g : policy.security_groups) {
    if (g.is_default || g.name == model::kDefaultSecurityGroupName) {
      if (default_group != nullptr) {
        return makeError("resolve defaults: security groups '" + default_group->id + "' and '" +
                         g.id + "' are both the VPC's default group");
      }
      default_group = &g;
    } else if (g.id == model::kDefaultSecurityGroupId) {
      return makeError("resolve defaults: security group id '" + g.id +
                       "' is reserved for the VPC's default group");
    }
  }
  const model::NetworkAcl* default_acl = nullptr;
  for (const auto& a : policy.network_acls) {
    if (a.is_default) {
      if (default_acl != nullptr) {
        return makeError("resolve defaults: network ACLs '" + default_acl->id + "' and '" + a.id +
                         "' are both the VPC's default network ACL");
      }
      default_acl = &a;
    } else if (a.id == model::kDefaultNetworkAclId) {
      return makeError("resolve defaults: network ACL id '" + a.id +
                       "' is reserved for the VPC's default network ACL");
    }
  }

  std::string group_id = default_group != nullptr ? default_group->id : "";
  std::string acl_id = default_acl != nullptr ? default_acl->id : "";
  if (group_id.empty()) {
    policy.security_groups.push_back(makeDefaultSecurityGroup(policy.vpc));
    group_id = policy.security_groups.back().id;
  }
  if (acl_id.empty()) {
    policy.network_acls.push_back(makeDefaultNetworkAcl(policy.vpc));
    acl_id = policy.network_acls.back().id;
  }
  // A group named "default" is the default even if whoever built the model forgot the flag.
  for (auto& g : policy.security_groups) {
    g.is_default = g.id == group_id;
  }
  for (auto& eni : policy.network_interfaces) {
    if (eni.security_group_ids.empty()) {
      eni.security_group_ids.push_back(group_id);
    }
  }
  for (auto& subnet : policy.subnets) {
    if (subnet.network_acl_id.empty()) {
      subnet.network_acl_id = acl_id;
    }
  }
  if (auto assigned = assignVirtualNetworkIds(policy.traffic_mirror_sessions); !assigned) {
    return tl::unexpected(assigned.error());
  }
  return policy;
}

}  // namespace vpcguard
