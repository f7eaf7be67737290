#include "translator/translate.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "translator/mirror.h"
#include "translator/pipeline.h"
#include "translator/units.h"

namespace vpcguard {
namespace {

// Collects flows; clause flows with the same (table, priority, match) are merged so that one
// flow carries every conjunction action that needs it.
class FlowBuilder final : public units::FlowSink {
 public:
  using FlowSink::FlowSink;

  void addFlow(Flow flow) override { flows_.push_back(std::move(flow)); }

  void addClause(pipeline::Table table, uint16_t priority, const std::string& match,
                 units::ConjAction action) override {
    // Hashing the match text once beats ordered comparisons of long strings: with groups of
    // thousands of members this map holds tens of thousands of keys.
    clauses_[units::clauseKey(table, priority, match)].push_back(action);
  }

  [[nodiscard]] size_t clauseFlowCount() const { return clauses_.size(); }

  std::vector<Flow> finish() {
    flows_.reserve(flows_.size() + clauses_.size());
    for (auto& [key, actions] : clauses_) {
      std::sort(actions.begin(), actions.end());
      actions.erase(std::unique(actions.begin(), actions.end()), actions.end());
      flows_.push_back(units::clauseFlow(key, actions, generation()));
    }
    clauses_.clear();
    std::sort(flows_.begin(), flows_.end(), units::FlowOrder{});
    return std::move(flows_);
  }

 private:
  std::vector<Flow> flows_;
  std::unordered_map<std::string, std::vector<units::ConjAction>> clauses_;
};

class Translator {
 public:
  explicit Translator(const TranslateInput& in) : in_(in), policy_(*in.policy), b_(in.generation) {}

  Result<Translation> run() {
    if (in_.rule_ids == nullptr) {
      if (auto r = own_ids_.update(policy_); !r) {
        return tl::unexpected(r.error());
      }
    }
    if (auto r = index(); !r) {
      return tl::unexpected(r.error());
    }
    units::infrastructure(b_);
    units::flowLogRejects(b_, units::flowLogRejectVerdicts(policy_));
    units::mirrorFlows(b_, mirrorPlan(policy_, in_.ofports, in_.interface_index));
    for (const auto& s : policy_.subnets) {
      units::router(b_, s, subnet_index_[s.id]);
    }
    for (const auto& unit : interfaces_) {
      if (unit.ofport >= 0) {
        units::interfaceFlows(b_, unit);
      }
    }
    for (const auto& sg : policy_.security_groups) {
      if (auto r = securityGroup(sg); !r) {
        return tl::unexpected(r.error());
      }
    }
    for (size_t i = 0; i < policy_.network_acls.size(); ++i) {
      out_.stats.nacl_flows +=
          units::networkAcl(b_, policy_.network_acls[i], static_cast<uint32_t>(i + 1));
    }
    out_.stats.sg_clause_flows = b_.clauseFlowCount();
    out_.flows = b_.finish();
    out_.stats.flows = out_.flows.size();
    return std::move(out_);
  }

 private:
  Result<void> index() {
    for (size_t i = 0; i < policy_.subnets.size(); ++i) {
      subnet_index_[policy_.subnets[i].id] = static_cast<uint32_t>(i + 1);
    }
    for (size_t i = 0; i < policy_.network_acls.size(); ++i) {
      nacl_index_[policy_.network_acls[i].id] = static_cast<uint32_t>(i + 1);
    }
    for (const auto& s : policy_.subnets) {
      subnets_[s.id] = &s;
    }
    for (const auto& g : policy_.security_groups) {
      group_open_bits_[g.id] = units::groupOpenBits(g);
    }
    for (const auto& eni : policy_.network_interfaces) {
      units::InterfaceUnit info;
      info.eni = &eni;
      auto idx = in_.interface_index.find(eni.id);
      if (idx == in_.interface_index.end() || idx->second == 0) {
        return makeError("interface " + eni.id + " has no index (call assignInterfaceIndices)");
      }
      info.index = idx->second;
      auto sn = subnets_.find(eni.subnet_id);
      if (sn == subnets_.end()) {
        return makeError("interface " + eni.id + ": unknown subnet " + eni.subnet_id);
      }
      info.subnet = sn->second;
      info.subnet_index = subnet_index_[eni.subnet_id];
      auto nacl = nacl_index_.find(sn->second->network_acl_id);
      if (nacl == nacl_index_.end()) {
        return makeError("subnet " + eni.subnet_id + ": unknown network ACL '" +
                         sn->second->network_acl_id + "' (were defaults resolved?)");
      }
      info.nacl_index = nacl->second;
      if (auto p = in_.ofports.find(eni.id); p != in_.ofports.end()) {
        info.ofport = p->second;
      }
      info.flow_logged = flowLogged(policy_, eni);
      if (!policy_.vpc.strict_revocation) {
        for (const auto& g : eni.security_group_ids) {
          if (auto bits = group_open_bits_.find(g); bits != group_open_bits_.end()) {
            info.open_bits |= bits->second;
          }
        }
      }
      std::vector<uint16_t> group_indices;
      for (const auto& g : eni.security_group_ids) {
        group_members_[g].push_back(interfaces_.size());
        group_indices.push_back(allocator().groupIndex(g));
      }
      info.slots = units::assignSlots(std::move(group_indices));
      interfaces_.push_back(info);
    }
    return {};
  }

  // A rule's peer addresses and their match text (source or destination side), computed once
  // per peer and direction: many rules reference the same large group.
  const units::PeerSet& peerSet(const model::Peer& peer, bool egress) {
    auto [it, inserted] = peer_sets_.try_emplace(units::peerKey(peer, egress));
    if (inserted) {
      it->second = units::makePeerSet(peerCidrs(peer), egress);
    }
    return it->second;
  }

  // Peer addresses of a rule: its CIDR, the members' addresses of a group, a prefix list.
  std::vector<Cidr> peerCidrs(const model::Peer& peer) const {
    std::vector<Cidr> out;
    if (const auto* c = std::get_if<Cidr>(&peer)) {
      out.push_back(*c);
    } else if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
      if (auto it = group_members_.find(g->group_id); it != group_members_.end()) {
        for (size_t i : it->second) {
          units::appendAddresses(*interfaces_[i].eni, out);
        }
      }
    } else if (const auto* p = std::get_if<model::PrefixListRef>(&peer)) {
      for (const auto& pl : policy_.prefix_lists) {
        if (pl.id == p->prefix_list_id) {
          out = pl.entries;
        }
      }
    }
    units::normalizePeers(out);
    return out;
  }

  Result<void> securityGroup(const model::SecurityGroup& sg) {
    const uint16_t group_index = allocator().groupIndex(sg.id);
    auto members = group_members_.find(sg.id);
    std::vector<uint16_t> local;
    std::vector<uint32_t> local_open;
    std::vector<units::MemberClause> member_clauses;
    if (members != group_members_.end()) {
      for (size_t i : members->second) {
        const units::InterfaceUnit& eni = interfaces_[i];
        if (eni.ofport >= 0) {
          local.push_back(eni.index);
          local_open.push_back(eni.open_bits);
          member_clauses.push_back(units::memberClauseOf(eni.slots, group_index, eni.index));
        }
      }
    }
    if (local.empty()) {
      return {};  // no member on this bridge: nothing to enforce here
    }
    std::sort(member_clauses.begin(), member_clauses.end());
    member_clauses.erase(std::unique(member_clauses.begin(), member_clauses.end()),
                         member_clauses.end());
    for (bool egress : {true, false}) {
      const auto& rules = egress ? sg.egress : sg.ingress;
      const std::vector<uint32_t>* ids = allocator().ids(sg.id, egress);
      if (ids == nullptr || ids->size() != rules.size()) {
        return makeError("security group " + sg.id + " has no rule ids (update the allocator)");
      }
      for (size_t r = 0; r < rules.size(); ++r) {
        units::RuleUnit unit;
        unit.sg = &sg;
        unit.egress = egress;
        unit.rule = &rules[r];
        unit.id = (*ids)[r];
        unit.local = &local;
        unit.local_open = &local_open;
        unit.members = &member_clauses;
        unit.peers = &peerSet(rules[r].peer, egress);
        unit.strict = policy_.vpc.strict_revocation;
        const units::RuleResult result = units::rule(b_, unit);
        if (result.produced) {
          out_.rule_names[unit.id] = units::ruleName(sg.id, egress, r);
          ++out_.stats.sg_rules;
          out_.stats.sg_flows_without_conjunction += result.without_conjunction;
        }
      }
    }
    return {};
  }

  [[nodiscard]] const RuleIdAllocator& allocator() const {
    return in_.rule_ids != nullptr ? *in_.rule_ids : own_ids_;
  }

  const TranslateInput& in_;
  const model::Policy& policy_;
  FlowBuilder b_;
  Translation out_;
  RuleIdAllocator own_ids_;  // when the caller keeps none: ids for this policy alone
  std::map<std::string, uint32_t> subnet_index_;
  std::map<std::string, uint32_t> nacl_index_;
  std::map<std::string, const model::Subnet*> subnets_;
  std::unordered_map<std::string, uint32_t> group_open_bits_;
  std::vector<units::InterfaceUnit> interfaces_;
  std::unordered_map<std::string, std::vector<size_t>> group_members_;
  std::unordered_map<std::string, units::PeerSet> peer_sets_;
};

}  // namespace

Result<Translation> translate(const TranslateInput& input) {
  if (input.policy == nullptr) {
    return makeError("translate: no policy");
  }
  return Translator(input).run();
}

Result<std::map<std::string, uint16_t>> assignInterfaceIndices(
    const model::Policy& policy, const std::map<std::string, uint16_t>& previous) {
  // The usual change keeps every interface: then the answer is `previous` (ids are unique in a
  // validated policy, so as many interfaces as indices, each found, are exactly its keys).
  if (previous.size() == policy.network_interfaces.size() &&
      std::all_of(policy.network_interfaces.begin(), policy.network_interfaces.end(),
                  [&](const model::NetworkInterface& eni) {
                    auto it = previous.find(eni.id);
                    return it != previous.end() && it->second != 0;
                  })) {
    return previous;
  }
  std::map<std::string, uint16_t> out;
  std::set<uint16_t> used;
  for (const auto& eni : policy.network_interfaces) {
    if (auto it = previous.find(eni.id); it != previous.end() && it->second != 0) {
      out[eni.id] = it->second;
      used.insert(it->second);
    }
  }
  uint16_t next = 1;
  for (const auto& eni : policy.network_interfaces) {
    if (out.count(eni.id) != 0) {
      continue;
    }
    while (used.count(next) != 0) {
      if (next == 0xffff) {
        return makeError("more than 65535 interfaces: no conntrack zone left");
      }
      ++next;
    }
    out[eni.id] = next;
    used.insert(next);
  }
  return out;
}

namespace {

// Calls fn(zone, tcp_established, udp, udp_stream) for every interface that has a zone.
template <typename Fn>
void forEachZoneTimeouts(const model::Policy& policy,
                         const std::map<std::string, uint16_t>& interface_index, Fn fn) {
  for (const auto& eni : policy.network_interfaces) {
    auto idx = interface_index.find(eni.id);
    if (idx == interface_index.end()) {
      continue;
    }
    const auto& ct = eni.connection_tracking;
    fn(idx->second, ct.tcp_established_timeout.value_or(432000), ct.udp_timeout.value_or(30),
       ct.udp_stream_timeout.value_or(180));
  }
}

}  // namespace

ConntrackTimeouts conntrackTimeouts(const model::Policy& policy,
                                    const std::map<std::string, uint16_t>& interface_index) {
  ConntrackTimeouts out;
  forEachZoneTimeouts(policy, interface_index,
                      [&](uint16_t zone, int64_t tcp, int64_t udp, int64_t stream) {
                        out[zone] = {{"tcp_established", tcp},
                                     {"udp_first", udp},
                                     {"udp_single", udp},
                                     {"udp_multiple", stream}};
                      });
  return out;
}

bool conntrackTimeoutsAre(const ConntrackTimeouts& timeouts, const model::Policy& policy,
                          const std::map<std::string, uint16_t>& interface_index) {
  size_t zones = 0;
  bool same = true;
  bool shared = false;  // two interfaces on one zone: the built map keeps the last one's
  std::vector<bool> seen(size_t{1} << 16);
  const auto is = [](const std::map<std::string, int64_t>& m, const char* key, int64_t value) {
    auto it = m.find(key);
    return it != m.end() && it->second == value;
  };
  forEachZoneTimeouts(policy, interface_index,
                      [&](uint16_t zone, int64_t tcp, int64_t udp, int64_t stream) {
                        if (seen[zone]) {
                          shared = true;
                          return;
                        }
                        seen[zone] = true;
                        ++zones;
                        if (!same) {
                          return;
                        }
                        auto it = timeouts.find(zone);
                        same = it != timeouts.end() && it->second.size() == 4 &&
                               is(it->second, "tcp_established", tcp) &&
                               is(it->second, "udp_first", udp) &&
                               is(it->second, "udp_single", udp) &&
                               is(it->second, "udp_multiple", stream);
                      });
  if (shared) {
    return conntrackTimeouts(policy, interface_index) == timeouts;  // not seen from the daemon
  }
  return same && zones == timeouts.size();
}

std::vector<MaskedValue> portRangeMasks(uint16_t from, uint16_t to) {
  std::vector<MaskedValue> out;
  uint32_t lo = from;
  const uint32_t hi = to;
  while (lo <= hi) {
    // The largest aligned block starting at lo that does not pass hi.
    uint32_t size = 1;
    while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi && size < 65536) {
      size *= 2;
    }
    out.push_back(
        MaskedValue{static_cast<uint16_t>(lo), static_cast<uint16_t>(~(size - 1) & 0xffff)});
    lo += size;
  }
  return out;
}

IpAddress linkLocalFromMac(const std::string& mac) {
  unsigned int b[6] = {};
  std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
  IpAddress a;
  a.family = IpFamily::kV6;
  a.bytes[0] = 0xfe;
  a.bytes[1] = 0x80;
  a.bytes[8] = static_cast<uint8_t>(b[0] ^ 0x02);
  a.bytes[9] = static_cast<uint8_t>(b[1]);
  a.bytes[10] = static_cast<uint8_t>(b[2]);
  a.bytes[11] = 0xff;
  a.bytes[12] = 0xfe;
  a.bytes[13] = static_cast<uint8_t>(b[3]);
  a.bytes[14] = static_cast<uint8_t>(b[4]);
  a.bytes[15] = static_cast<uint8_t>(b[5]);
  return a;
}

bool flowLogCovers(const model::FlowLog& log, const model::Policy& policy,
                   const model::NetworkInterface& eni) {
  return log.resource_id == eni.id || log.resource_id == eni.subnet_id ||
         (!policy.vpc.id.empty() && log.resource_id == policy.vpc.id);
}

bool flowLogged(const model::Policy& policy, const model::NetworkInterface& eni) {
  return std::any_of(policy.flow_logs.begin(), policy.flow_logs.end(),
                     [&](const model::FlowLog& log) { return flowLogCovers(log, policy, eni); });
}

}  // namespace vpcguard
