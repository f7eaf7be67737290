#include "api/plan.h"

// How the difference is computed: per object type, the objects of both policies are matched by
// id (std::map, so ids come out sorted), and each pair (or lone object) is compared field by
// field with the source locations left out. Rule lists are compared as multisets (a rule that
// moved is no change; AWS keeps no order in a group either); NACL entries and mirror filter rules
// by (direction, rule number), which is their identity in AWS.
//
// A new object is compared against what the API's create call leaves behind, so the plan lists
// the calls that would rebuild it: a new security group starts with AWS's allow-all egress (so
// a group without it needs a revoke), a new NACL with no entries, the VPC's default group and
// NACL (created with the VPC, hence ApplyConfig) with AWS's default rules.

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "api/actions.h"
#include "translator/defaults.h"
#include "translator/validate.h"

namespace vpcguard::api {
namespace {

using model::Policy;

constexpr const char* kApplyConfig = "ec2:ApplyConfig";

template <typename T>
std::map<std::string, const T*> byId(const std::vector<T>& objects) {
  std::map<std::string, const T*> out;
  for (const T& o : objects) out.emplace(o.id, &o);
  return out;
}

// Ids of both maps, sorted, each once.
template <typename T>
std::vector<std::string> unionIds(const std::map<std::string, const T*>& a,
                                  const std::map<std::string, const T*>& b) {
  std::set<std::string> ids;
  for (const auto& [id, o] : a) ids.insert(id);
  for (const auto& [id, o] : b) ids.insert(id);
  return {ids.begin(), ids.end()};
}

template <typename T>
const T* lookup(const std::map<std::string, const T*>& m, const std::string& id) {
  auto it = m.find(id);
  return it == m.end() ? nullptr : it->second;
}

std::string joined(const std::vector<std::string>& parts, std::string_view sep = "; ") {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string plural(size_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

// --- comparisons without locations ---------------------------------------------------------

bool sameRule(const model::SecurityGroupRule& a, const model::SecurityGroupRule& b) {
  return std::tie(a.ip_protocol, a.ports, a.icmp, a.peer, a.description) ==
         std::tie(b.ip_protocol, b.ports, b.icmp, b.peer, b.description);
}

bool sameEntry(const model::NetworkAclEntry& a, const model::NetworkAclEntry& b) {
  return std::tie(a.rule_number, a.egress, a.protocol, a.allow, a.cidr, a.port_range,
                  a.icmp_type_code) == std::tie(b.rule_number, b.egress, b.protocol, b.allow,
                                                b.cidr, b.port_range, b.icmp_type_code);
}

bool sameMirrorRule(const model::TrafficMirrorFilterRule& a,
                    const model::TrafficMirrorFilterRule& b) {
  return std::tie(a.rule_number, a.accept, a.protocol, a.source_cidr_block,
                  a.destination_cidr_block, a.source_port_range, a.destination_port_range,
                  a.description) == std::tie(b.rule_number, b.accept, b.protocol,
                                             b.source_cidr_block, b.destination_cidr_block,
                                             b.source_port_range, b.destination_port_range,
                                             b.description);
}

bool sameVpc(const model::Vpc& a, const model::Vpc& b) {
  return std::tie(a.id, a.account_id, a.region, a.cidr_blocks, a.ipv6_cidr_blocks,
                  a.strict_revocation) == std::tie(b.id, b.account_id, b.region, b.cidr_blocks,
                                                   b.ipv6_cidr_blocks, b.strict_revocation);
}

auto quotaTie(const model::Quotas& q) {
  return std::tie(q.rules_per_security_group, q.security_groups_per_interface,
                  q.rules_per_interface, q.rules_per_network_acl, q.network_acls_per_vpc,
                  q.security_groups_per_vpc, q.prefix_list_max_entries,
                  q.traffic_mirror_sessions_per_interface, q.traffic_mirror_filter_rules);
}

bool samePrefixList(const model::PrefixList& a, const model::PrefixList& b) {
  return std::tie(a.name, a.max_entries, a.entries) == std::tie(b.name, b.max_entries, b.entries);
}

bool sameSubnetTopology(const model::Subnet& a, const model::Subnet& b) {
  return std::tie(a.cidr_block, a.ipv6_cidr_block) == std::tie(b.cidr_block, b.ipv6_cidr_block);
}

bool sameInterfaceTopology(const model::NetworkInterface& a, const model::NetworkInterface& b) {
  const auto& ca = a.connection_tracking;
  const auto& cb = b.connection_tracking;
  return std::tie(a.subnet_id, a.mac_address, a.private_ip_addresses, a.ipv6_addresses,
                  ca.tcp_established_timeout, ca.udp_timeout, ca.udp_stream_timeout) ==
         std::tie(b.subnet_id, b.mac_address, b.private_ip_addresses, b.ipv6_addresses,
                  cb.tcp_established_timeout, cb.udp_timeout, cb.udp_stream_timeout);
}

std::vector<std::string> sortedGroups(const model::NetworkInterface& i) {
  std::vector<std::string> g = i.security_group_ids;
  std::sort(g.begin(), g.end());
  return g;
}

bool sameFlowLog(const model::FlowLog& a, const model::FlowLog& b) {
  return std::tie(a.resource_id, a.traffic_type, a.log_destination, a.log_format,
                  a.max_aggregation_interval, a.ipfix_collector) ==
         std::tie(b.resource_id, b.traffic_type, b.log_destination, b.log_format,
                  b.max_aggregation_interval, b.ipfix_collector);
}

bool sameTarget(const model::TrafficMirrorTarget& a, const model::TrafficMirrorTarget& b) {
  return std::tie(a.network_interface_id, a.vxlan_remote_ip, a.description) ==
         std::tie(b.network_interface_id, b.vxlan_remote_ip, b.description);
}

bool sameSession(const model::TrafficMirrorSession& a, const model::TrafficMirrorSession& b) {
  return std::tie(a.network_interface_id, a.traffic_mirror_target_id, a.traffic_mirror_filter_id,
                  a.session_number, a.packet_length, a.virtual_network_id, a.description) ==
         std::tie(b.network_interface_id, b.traffic_mirror_target_id, b.traffic_mirror_filter_id,
                  b.session_number, b.packet_length, b.virtual_network_id, b.description);
}

// --- how rules read in summaries -------------------------------------------------------------

std::string portsText(const std::optional<model::PortRange>& ports) {
  if (!ports) return "";
  if (ports->from == ports->to) return " " + std::to_string(ports->from);
  return " " + std::to_string(ports->from) + "-" + std::to_string(ports->to);
}

std::string icmpText(const std::optional<model::IcmpTypeCode>& icmp) {
  if (!icmp || icmp->type == -1) return "";
  std::string out = " type " + std::to_string(icmp->type);
  if (icmp->code != -1) out += " code " + std::to_string(icmp->code);
  return out;
}

std::string peerText(const model::Peer& peer) {
  if (const auto* c = std::get_if<Cidr>(&peer)) return c->toString();
  if (const auto* g = std::get_if<model::GroupRef>(&peer)) return g->group_id;
  return std::get<model::PrefixListRef>(peer).prefix_list_id;
}

std::string ruleText(const model::SecurityGroupRule& r, bool egress) {
  return protocolName(r.ip_protocol) + portsText(r.ports) + icmpText(r.icmp) +
         (egress ? " to " : " from ") + peerText(r.peer);
}

std::string entryText(const model::NetworkAclEntry& e) {
  return std::string(e.egress ? "egress " : "ingress ") + std::to_string(e.rule_number) + " " +
         (e.allow ? "allow " : "deny ") + protocolName(e.protocol) + portsText(e.port_range) +
         icmpText(e.icmp_type_code) + " " + e.cidr.toString();
}

std::string mirrorRuleText(const model::TrafficMirrorFilterRule& r, bool egress) {
  return std::string(egress ? "egress " : "ingress ") + std::to_string(r.rule_number) + " " +
         (r.accept ? "accept " : "reject ") + protocolName(r.protocol) + " " +
         r.source_cidr_block.toString() + portsText(r.source_port_range) + " -> " +
         r.destination_cidr_block.toString() + portsText(r.destination_port_range);
}

// --- the planner -----------------------------------------------------------------------------

class Planner {
 public:
  Planner(const Policy& current, const Policy& desired)
      : current_(current), desired_(desired),
        // Objects that go away are named in the VPC they were in; all others in the new one.
        old_vpc_(current.vpc.id.empty() ? desired.vpc : current.vpc) {}

  std::vector<PlannedChange> run() {
    planVpc();
    planPrefixLists();
    planSubnets();
    planNetworkAcls();
    planAssociations();
    planSecurityGroups();
    planInterfaces();
    planFlowLogs();
    planMirrorTargets();
    planMirrorFilters();
    planMirrorSessions();
    planPortMirrors();
    return std::move(changes_);
  }

 private:
  void add(std::string action, std::string resource, std::string summary,
           std::vector<std::string> also = {}) {
    changes_.push_back(
        {std::move(action), std::move(resource), std::move(summary), std::move(also)});
  }
  // The ARN of whatever a flow log covers (a VPC, a subnet or an interface).
  [[nodiscard]] std::string coveredArn(const std::string& id) const {
    if (id.starts_with("vpc-")) return arn("vpc", id);
    if (id.starts_with("subnet-")) return arn("subnet", id);
    return arn("network-interface", id);
  }
  [[nodiscard]] std::string arn(std::string_view type, std::string_view id) const {
    return resourceArn(desired_.vpc, type, id);
  }
  [[nodiscard]] std::string oldArn(std::string_view type, std::string_view id) const {
    return resourceArn(old_vpc_, type, id);
  }

  // The delete and the create a change amounts to when the API cannot modify the object.
  void replaced(std::string_view type, const std::string& id, std::string_view noun,
                const std::string& deleteAction, const std::string& createAction) {
    const std::string summary = id + ": " + std::string(noun) + " changed: replaced";
    add(deleteAction, oldArn(type, id), summary);
    add(createAction, arn(type, id), summary);
  }

  void planVpc() {
    const model::Vpc& a = current_.vpc;
    const model::Vpc& b = desired_.vpc;
    if (a.id.empty()) {
      add(kApplyConfig, arn("vpc", b.id), b.id + ": VPC created");
    } else if (!sameVpc(a, b)) {
      std::vector<std::string> what;
      if (a.account_id != b.account_id || a.region != b.region) what.push_back("account/region");
      if (a.cidr_blocks != b.cidr_blocks || a.ipv6_cidr_blocks != b.ipv6_cidr_blocks) {
        what.push_back("CIDR blocks");
      }
      if (a.strict_revocation != b.strict_revocation) {
        what.push_back(std::string("strict_revocation ") + (b.strict_revocation ? "on" : "off"));
      }
      add(kApplyConfig, arn("vpc", b.id), b.id + ": VPC changed (" + joined(what, ", ") + ")");
    }
    if (quotaTie(current_.quotas) != quotaTie(desired_.quotas) && !a.id.empty()) {
      add(kApplyConfig, arn("vpc", b.id), b.id + ": quotas changed");
    }
  }

  void planPrefixLists() {
    const auto a = byId(current_.prefix_lists);
    const auto b = byId(desired_.prefix_lists);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        add(kApplyConfig, arn("prefix-list", id),
            id + ": prefix list created (" + plural(y->entries.size(), "entry") + ")");
      } else if (y == nullptr) {
        add(kApplyConfig, oldArn("prefix-list", id), id + ": prefix list deleted");
      } else if (!samePrefixList(*x, *y)) {
        add(kApplyConfig, arn("prefix-list", id), id + ": prefix list changed");
      }
    }
  }

  void planSubnets() {
    const auto a = byId(current_.subnets);
    const auto b = byId(desired_.subnets);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        add(kApplyConfig, arn("subnet", id), id + ": subnet created (" +
                                                 y->cidr_block.toString() + ")");
      } else if (y == nullptr) {
        add(kApplyConfig, oldArn("subnet", id), id + ": subnet deleted");
      } else if (!sameSubnetTopology(*x, *y)) {
        add(kApplyConfig, arn("subnet", id), id + ": subnet CIDR blocks changed");
      }
    }
  }

  void planNetworkAcls() {
    const auto a = byId(current_.network_acls);
    const auto b = byId(desired_.network_acls);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (y == nullptr) {
        add(x->is_default ? kApplyConfig : "ec2:DeleteNetworkAcl", oldArn("network-acl", id),
            id + (x->is_default ? ": default network ACL deleted" : ": network ACL deleted"));
        continue;
      }
      std::vector<model::NetworkAclEntry> base;
      if (x != nullptr) {
        base = x->entries;
      } else if (y->is_default) {
        add(kApplyConfig, arn("network-acl", id), id + ": default network ACL created");
        base = makeDefaultNetworkAcl(desired_.vpc).entries;
      } else {
        add("ec2:CreateNetworkAcl", arn("network-acl", id), id + ": network ACL created");
      }
      planEntries(id, base, y->entries);
    }
  }

  void planEntries(const std::string& id, const std::vector<model::NetworkAclEntry>& before,
                   const std::vector<model::NetworkAclEntry>& after) {
    using Key = std::pair<bool, int>;  // (egress, rule number): an entry's identity in AWS
    std::map<Key, const model::NetworkAclEntry*> a;
    std::map<Key, const model::NetworkAclEntry*> b;
    for (const auto& e : before) a.emplace(Key{e.egress, e.rule_number}, &e);
    for (const auto& e : after) b.emplace(Key{e.egress, e.rule_number}, &e);
    std::vector<std::string> created, replaced_entries, deleted;
    std::set<Key> keys;
    for (const auto& [k, e] : a) keys.insert(k);
    for (const auto& [k, e] : b) keys.insert(k);
    for (const Key& k : keys) {
      const auto ia = a.find(k);
      const auto ib = b.find(k);
      if (ia == a.end()) {
        created.push_back(entryText(*ib->second));
      } else if (ib == b.end()) {
        deleted.push_back(entryText(*ia->second));
      } else if (!sameEntry(*ia->second, *ib->second)) {
        replaced_entries.push_back(entryText(*ia->second) + " -> " + entryText(*ib->second));
      }
    }
    const std::string resource = arn("network-acl", id);
    if (!created.empty()) {
      add("ec2:CreateNetworkAclEntry", resource,
          id + ": +" + plural(created.size(), "entry") + " (" + joined(created) + ")");
    }
    if (!replaced_entries.empty()) {
      add("ec2:ReplaceNetworkAclEntry", resource,
          id + ": " + plural(replaced_entries.size(), "entry") + " replaced (" +
              joined(replaced_entries) + ")");
    }
    if (!deleted.empty()) {
      add("ec2:DeleteNetworkAclEntry", resource,
          id + ": -" + plural(deleted.size(), "entry") + " (" + joined(deleted) + ")");
    }
  }

  [[nodiscard]] static std::string defaultNaclId(const Policy& p) {
    for (const auto& n : p.network_acls) {
      if (n.is_default) return n.id;
    }
    return std::string(model::kDefaultNetworkAclId);
  }

  // A subnet's NACL: ReplaceNetworkAclAssociation (a new subnet starts on the default NACL).
  void planAssociations() {
    const auto a = byId(current_.subnets);
    const std::string default_nacl = defaultNaclId(desired_);
    for (const auto& [id, y] : byId(desired_.subnets)) {
      const auto* x = lookup(a, id);
      const std::string before = x != nullptr ? x->network_acl_id : default_nacl;
      if (before != y->network_acl_id) {
        add("ec2:ReplaceNetworkAclAssociation", arn("network-acl", y->network_acl_id),
            id + ": network ACL " + before + " -> " + y->network_acl_id, {arn("subnet", id)});
      }
    }
  }

  void planSecurityGroups() {
    const auto a = byId(current_.security_groups);
    const auto b = byId(desired_.security_groups);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (y == nullptr) {
        add(x->is_default ? kApplyConfig : "ec2:DeleteSecurityGroup",
            oldArn("security-group", id),
            id + (x->is_default ? ": default security group deleted"
                                : ": security group deleted"));
        continue;
      }
      model::SecurityGroup base;
      if (x != nullptr && !y->is_default &&
          (x->name != y->name || x->description != y->description)) {
        // AWS cannot rename a group or change its description: it is deleted and made anew,
        // and its rules then added to what a new group has.
        replaced("security-group", id, "name or description", "ec2:DeleteSecurityGroup",
                 "ec2:CreateSecurityGroup");
        base.egress = allowAllEgressRules({});
      } else if (x != nullptr) {
        base = *x;
      } else if (y->is_default) {
        add(kApplyConfig, arn("security-group", id), id + ": default security group created");
        base = makeDefaultSecurityGroup(desired_.vpc);
        // Its "all from itself" rule names the group by its own id, whichever the config chose.
        for (auto* rules : {&base.ingress, &base.egress}) {
          for (auto& r : *rules) {
            if (auto* g = std::get_if<model::GroupRef>(&r.peer); g && g->group_id == base.id) {
              g->group_id = id;
            }
          }
        }
      } else {
        add("ec2:CreateSecurityGroup", arn("security-group", id),
            id + ": security group created (" + y->name + ")");
        base.egress = allowAllEgressRules({});  // what AWS gives a new group
      }
      planRules(id, false, base.ingress, y->ingress);
      planRules(id, true, base.egress, y->egress);
    }
  }

  void planRules(const std::string& id, bool egress,
                 const std::vector<model::SecurityGroupRule>& before,
                 const std::vector<model::SecurityGroupRule>& after) {
    // Multiset difference: each rule of `before` cancels one equal rule of `after`.
    std::vector<bool> matched(after.size(), false);
    std::vector<std::string> removed;
    for (const auto& r : before) {
      bool found = false;
      for (size_t i = 0; i < after.size() && !found; ++i) {
        if (!matched[i] && sameRule(r, after[i])) {
          matched[i] = true;
          found = true;
        }
      }
      if (!found) removed.push_back(ruleText(r, egress));
    }
    std::vector<std::string> added;
    for (size_t i = 0; i < after.size(); ++i) {
      if (!matched[i]) added.push_back(ruleText(after[i], egress));
    }
    const std::string direction = egress ? "Egress" : "Ingress";
    const std::string resource = arn("security-group", id);
    const std::string prefix = id + (egress ? ": egress " : ": ingress ");
    if (!added.empty()) {
      add("ec2:AuthorizeSecurityGroup" + direction, resource,
          prefix + "+" + plural(added.size(), "rule") + " (" + joined(added) + ")");
    }
    if (!removed.empty()) {
      add("ec2:RevokeSecurityGroup" + direction, resource,
          prefix + "-" + plural(removed.size(), "rule") + " (" + joined(removed) + ")");
    }
  }

  void planInterfaces() {
    const auto a = byId(current_.network_interfaces);
    const auto b = byId(desired_.network_interfaces);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        add(kApplyConfig, arn("network-interface", id),
            id + ": network interface created (groups " + joined(y->security_group_ids, ", ") +
                ")");
        continue;
      }
      if (y == nullptr) {
        add(kApplyConfig, oldArn("network-interface", id), id + ": network interface deleted");
        continue;
      }
      if (!sameInterfaceTopology(*x, *y)) {
        add(kApplyConfig, arn("network-interface", id),
            id + ": network interface changed (subnet, MAC, addresses or connection tracking)");
      }
      std::vector<std::string> what;
      if (sortedGroups(*x) != sortedGroups(*y)) {
        what.push_back("groups " + joined(x->security_group_ids, ", ") + " -> " +
                       joined(y->security_group_ids, ", "));
      }
      if (x->source_dest_check != y->source_dest_check) {
        what.push_back(std::string("source/dest check ") + (y->source_dest_check ? "on" : "off"));
      }
      if (!what.empty()) {
        // As the API action asks: every group the interface ends up in, and the VPC when the
        // source/dest check changes.
        std::vector<std::string> also;
        for (const std::string& group : y->security_group_ids) {
          also.push_back(arn("security-group", group));
        }
        if (x->source_dest_check != y->source_dest_check) also.push_back(arn("vpc", desired_.vpc.id));
        add("ec2:ModifyNetworkInterfaceAttribute", arn("network-interface", id),
            id + ": " + joined(what), std::move(also));
      }
    }
  }

  void planFlowLogs() {
    const auto a = byId(current_.flow_logs);
    const auto b = byId(desired_.flow_logs);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        add("ec2:CreateFlowLogs", arn("flow-log", id),
            id + ": flow log created (" + y->resource_id + " to " + y->log_destination + ")",
            {coveredArn(y->resource_id)});
      } else if (y == nullptr) {
        add("ec2:DeleteFlowLogs", oldArn("flow-log", id), id + ": flow log deleted");
      } else if (!sameFlowLog(*x, *y)) {
        replaced("flow-log", id, "flow log", "ec2:DeleteFlowLogs", "ec2:CreateFlowLogs");
        changes_.back().also.push_back(coveredArn(y->resource_id));
      }
    }
  }

  void planMirrorTargets() {
    const auto a = byId(current_.traffic_mirror_targets);
    const auto b = byId(desired_.traffic_mirror_targets);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        std::vector<std::string> also;
        if (y->network_interface_id) {
          also.push_back(arn("network-interface", *y->network_interface_id));
        }
        add("ec2:CreateTrafficMirrorTarget", arn("traffic-mirror-target", id),
            id + ": traffic mirror target created", std::move(also));
      } else if (y == nullptr) {
        add("ec2:DeleteTrafficMirrorTarget", oldArn("traffic-mirror-target", id),
            id + ": traffic mirror target deleted");
      } else if (!sameTarget(*x, *y)) {
        replaced("traffic-mirror-target", id, "traffic mirror target",
                 "ec2:DeleteTrafficMirrorTarget", "ec2:CreateTrafficMirrorTarget");
        if (y->network_interface_id) {
          changes_.back().also.push_back(arn("network-interface", *y->network_interface_id));
        }
      }
    }
  }

  void planMirrorFilters() {
    const auto a = byId(current_.traffic_mirror_filters);
    const auto b = byId(desired_.traffic_mirror_filters);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (y == nullptr) {
        add("ec2:DeleteTrafficMirrorFilter", oldArn("traffic-mirror-filter", id),
            id + ": traffic mirror filter deleted");
        continue;
      }
      static const model::TrafficMirrorFilter kEmpty;
      if (x != nullptr && x->description != y->description) {
        replaced("traffic-mirror-filter", id, "description", "ec2:DeleteTrafficMirrorFilter",
                 "ec2:CreateTrafficMirrorFilter");
        x = nullptr;
      } else if (x == nullptr) {
        add("ec2:CreateTrafficMirrorFilter", arn("traffic-mirror-filter", id),
            id + ": traffic mirror filter created");
      }
      const model::TrafficMirrorFilter& base = x != nullptr ? *x : kEmpty;
      std::vector<std::string> sa = base.network_services;
      std::vector<std::string> sb = y->network_services;
      std::sort(sa.begin(), sa.end());
      std::sort(sb.begin(), sb.end());
      if (sa != sb) {
        add("ec2:ModifyTrafficMirrorFilterNetworkServices", arn("traffic-mirror-filter", id),
            id + ": network services [" + joined(sa, ", ") + "] -> [" + joined(sb, ", ") + "]");
      }
      planMirrorRules(id, base, *y);
    }
  }

  void planMirrorRules(const std::string& id, const model::TrafficMirrorFilter& before,
                       const model::TrafficMirrorFilter& after) {
    std::vector<std::string> created, deleted;
    for (const bool egress : {false, true}) {
      std::map<int, const model::TrafficMirrorFilterRule*> a;
      std::map<int, const model::TrafficMirrorFilterRule*> b;
      for (const auto& r : egress ? before.egress_rules : before.ingress_rules) {
        a.emplace(r.rule_number, &r);
      }
      for (const auto& r : egress ? after.egress_rules : after.ingress_rules) {
        b.emplace(r.rule_number, &r);
      }
      for (const auto& [n, r] : a) {
        const auto it = b.find(n);
        if (it == b.end() || !sameMirrorRule(*r, *it->second)) {
          deleted.push_back(mirrorRuleText(*r, egress));
        }
      }
      for (const auto& [n, r] : b) {
        const auto it = a.find(n);
        if (it == a.end() || !sameMirrorRule(*r, *it->second)) {
          created.push_back(mirrorRuleText(*r, egress));
        }
      }
    }
    const std::string resource = arn("traffic-mirror-filter", id);
    if (!deleted.empty()) {
      add("ec2:DeleteTrafficMirrorFilterRule", resource,
          id + ": -" + plural(deleted.size(), "rule") + " (" + joined(deleted) + ")");
    }
    if (!created.empty()) {
      add("ec2:CreateTrafficMirrorFilterRule", resource,
          id + ": +" + plural(created.size(), "rule") + " (" + joined(created) + ")");
    }
  }

  [[nodiscard]] std::vector<std::string> sessionResources(
      const model::TrafficMirrorSession& session) const {
    return {arn("network-interface", session.network_interface_id),
            arn("traffic-mirror-target", session.traffic_mirror_target_id),
            arn("traffic-mirror-filter", session.traffic_mirror_filter_id)};
  }

  void planMirrorSessions() {
    const auto a = byId(current_.traffic_mirror_sessions);
    const auto b = byId(desired_.traffic_mirror_sessions);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        add("ec2:CreateTrafficMirrorSession", arn("traffic-mirror-session", id),
            id + ": traffic mirror session created (" + y->network_interface_id + " to " +
                y->traffic_mirror_target_id + " through " + y->traffic_mirror_filter_id + ")",
            sessionResources(*y));
      } else if (y == nullptr) {
        add("ec2:DeleteTrafficMirrorSession", oldArn("traffic-mirror-session", id),
            id + ": traffic mirror session deleted");
      } else if (!sameSession(*x, *y)) {
        replaced("traffic-mirror-session", id, "traffic mirror session",
                 "ec2:DeleteTrafficMirrorSession", "ec2:CreateTrafficMirrorSession");
        changes_.back().also = sessionResources(*y);
      }
    }
  }

  void planPortMirrors() {
    const auto a = byId(current_.port_mirrors);
    const auto b = byId(desired_.port_mirrors);
    for (const std::string& id : unionIds(a, b)) {
      const auto* x = lookup(a, id);
      const auto* y = lookup(b, id);
      if (x == nullptr) {
        add(kApplyConfig, arn("port-mirror", id), id + ": port mirror created");
      } else if (y == nullptr) {
        add(kApplyConfig, oldArn("port-mirror", id), id + ": port mirror deleted");
      } else if (std::tie(x->network_interface_id, x->output_port) !=
                 std::tie(y->network_interface_id, y->output_port)) {
        add(kApplyConfig, arn("port-mirror", id), id + ": port mirror changed");
      }
    }
  }

  const Policy& current_;
  const Policy& desired_;
  model::Vpc old_vpc_;
  std::vector<PlannedChange> changes_;
};

}  // namespace

std::vector<PlannedChange> planChanges(const model::Policy& current,
                                       const model::Policy& desired) {
  return Planner(current, desired).run();
}

}  // namespace vpcguard::api
