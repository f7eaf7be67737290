#include "translator/incremental.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "translator/mirror.h"
#include "translator/pipeline.h"
#include "translator/units.h"

namespace vpcguard {
namespace {

std::string flowKey(const Flow& f) { return units::clauseKey(f.table, f.priority, f.match); }

// The current flow set by identity, recording what each touched identity held before the
// update, so the delta nets out flows that were removed and put back unchanged.
class FlowTable {
 public:
  void removeKey(const std::string& key) {
    auto it = flows_.find(key);
    if (it == flows_.end()) {
      return;
    }
    before_.try_emplace(key, std::move(it->second));
    flows_.erase(it);
  }

  void put(Flow f) {
    std::string key = flowKey(f);
    put(std::move(key), std::move(f));
  }

  void put(std::string key, Flow f) {
    auto it = flows_.find(key);
    if (it == flows_.end()) {
      before_.try_emplace(key, std::nullopt);
      flows_.emplace(std::move(key), std::move(f));
    } else {
      before_.try_emplace(key, it->second);
      it->second = std::move(f);
    }
  }

  FlowDelta finish() {
    FlowDelta delta;
    for (auto& [key, before] : before_) {
      auto now = flows_.find(key);
      if (before && now != flows_.end() && *before == now->second) {
        continue;
      }
      if (before) {
        delta.removed.push_back(std::move(*before));
      }
      if (now != flows_.end()) {
        delta.added.push_back(now->second);
      }
    }
    before_.clear();
    return delta;
  }

  // Undoes everything since the last finish().
  void rollback() {
    for (auto& [key, before] : before_) {
      if (before) {
        flows_[key] = std::move(*before);
      } else {
        flows_.erase(key);
      }
    }
    before_.clear();
  }

  [[nodiscard]] size_t size() const { return flows_.size(); }

  [[nodiscard]] std::vector<Flow> sorted() const {
    std::vector<Flow> out;
    out.reserve(flows_.size());
    for (const auto& [key, f] : flows_) {
      out.push_back(f);
    }
    std::sort(out.begin(), out.end(), units::FlowOrder{});
    return out;
  }

  [[nodiscard]] std::vector<const Flow*> refs() const {
    std::vector<const Flow*> out;
    out.reserve(flows_.size());
    for (const auto& [key, f] : flows_) {
      out.push_back(&f);
    }
    return out;
  }

  void clear() {
    for (auto& [key, f] : flows_) {
      before_.try_emplace(key, std::move(f));
    }
    flows_.clear();
  }

 private:
  std::unordered_map<std::string, Flow> flows_;
  std::unordered_map<std::string, std::optional<Flow>> before_;
};

// Collects what one unit makes.
class CollectSink final : public units::FlowSink {
 public:
  using FlowSink::FlowSink;
  void addFlow(Flow flow) override { flows.push_back(std::move(flow)); }
  void addClause(pipeline::Table table, uint16_t priority, const std::string& match,
                 units::ConjAction action) override {
    clauses.emplace_back(units::clauseKey(table, priority, match), action);
  }
  std::vector<Flow> flows;
  std::vector<std::pair<std::string, units::ConjAction>> clauses;
};

bool sameEntry(const model::NetworkAclEntry& a, const model::NetworkAclEntry& b) {
  return a.rule_number == b.rule_number && a.egress == b.egress && a.protocol == b.protocol &&
         a.allow == b.allow && a.cidr == b.cidr && a.port_range == b.port_range &&
         a.icmp_type_code == b.icmp_type_code;
}

bool sameEntries(const std::vector<model::NetworkAclEntry>& a,
                 const std::vector<model::NetworkAclEntry>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), sameEntry);
}

// What an interface's own flows depend on (besides the unit parameters).
bool sameInterfaceFlowsInput(const model::NetworkInterface& a, const model::NetworkInterface& b) {
  return a.id == b.id && a.mac_address == b.mac_address &&
         a.private_ip_addresses == b.private_ip_addresses && a.ipv6_addresses == b.ipv6_addresses &&
         a.source_dest_check == b.source_dest_check;
}

// Clause 1 (members) and 2 (peers) of a rule's evaluation conjunction; 0 for the rest.
int evalClause(const std::string& key, const units::ConjAction& a) {
  const uint8_t table = units::clauseKeyTable(key);
  if (units::clauseKeyPriority(key) != pipeline::kEvalPriority ||
      (table != pipeline::kSgEgressEval && table != pipeline::kSgIngressEval)) {
    return 0;
  }
  return a.clause == 1 || a.clause == 2 ? a.clause : 0;
}

}  // namespace

struct IncrementalTranslator::State {
  struct ClauseEntry {
    const std::string* key = nullptr;        // the map's own key
    std::vector<units::ConjAction> actions;  // sorted
    bool dirty = false;
    bool installed = false;
  };
  struct ClauseRef {
    ClauseEntry* entry = nullptr;
    units::ConjAction action;
    auto operator<=>(const ClauseRef&) const = default;
  };

  struct SubnetRec {
    Cidr cidr;
    std::optional<Cidr> ipv6;
    uint32_t index = 0;
    std::vector<std::string> flows;  // identities (flowKey) of the unit's flows in the table
    uint64_t seen = 0;
  };
  struct NaclRec {
    std::vector<model::NetworkAclEntry> entries;
    uint32_t index = 0;
    size_t count = 0;
    std::vector<std::string> flows;  // identities (flowKey) of the unit's flows in the table
    uint64_t seen = 0;
  };
  struct EniRec {
    model::NetworkInterface eni;  // content as of the last update
    uint16_t index = 0;
    int ofport = -1;
    uint32_t subnet_index = 0;
    uint32_t nacl_index = 0;
    Cidr subnet_cidr;
    uint32_t open_bits = 0;
    bool flow_logged = false;
    units::GroupSlots slots;
    std::vector<std::string> flows;  // identities (flowKey) of the unit's flows in the table
    uint64_t seen = 0;
  };
  struct GroupRec {
    const model::SecurityGroup* sg = nullptr;
    uint32_t open_bits = 0;
    uint16_t index = 0;  // RuleIdAllocator::groupIndex
    std::vector<uint16_t> local;
    std::vector<uint32_t> local_open;
    std::vector<units::MemberClause> members;  // sorted, unique
    uint64_t local_version = 0;
    // Member clauses that came and went from prev_local_version to local_version.
    uint64_t prev_local_version = 0;
    std::vector<units::MemberClause> members_added;
    std::vector<units::MemberClause> members_removed;
    uint64_t seen = 0;
  };
  struct PeerRec {
    enum class Kind { kCidr, kGroup, kPrefixList } kind = Kind::kCidr;
    std::string ref;  // group or prefix list id
    bool egress = false;
    units::PeerSet set;
    uint64_t version = 0;
    size_t users = 0;
    // What changed from prev_version to version, so a rule one version behind can patch its
    // peer clauses instead of recomputing them all.
    uint64_t prev_version = 0;
    std::vector<std::pair<Cidr, std::string>> added;  // address, match
    std::vector<std::pair<Cidr, std::string>> removed;
  };
  struct RuleRec {
    std::string group_id;
    bool egress = false;
    model::SecurityGroupRule content;
    uint64_t local_version = 0;
    PeerRec* peer = nullptr;
    uint64_t peer_version = 0;
    std::vector<std::string> flows;      // identities (flowKey) of the unit's flows in the table
    std::vector<ClauseRef> peer_refs;    // peer clauses (sorted)
    std::vector<ClauseRef> member_refs;  // member clauses of the evaluation table (sorted)
    std::vector<ClauseRef> other_refs;   // protocol and dispatch clauses (sorted)
    bool produced = false;
    uint64_t without = 0;
    size_t number = 0;
    uint64_t seen = 0;
  };

  bool initialized = false;
  uint16_t generation = 0;
  bool strict = false;
  uint64_t step = 0;
  uint64_t next_version = 1;
  RuleIdAllocator ids;
  FlowTable table;
  std::vector<std::string> infra;
  std::vector<uint32_t> reject_verdicts;  // input of the flow-log reject unit
  std::vector<std::string> rejects;
  MirrorPlan mirror_plan;  // input of the mirror unit
  std::vector<std::string> mirrors;
  std::unordered_map<std::string, SubnetRec> subnets;
  std::unordered_map<std::string, NaclRec> nacls;
  std::unordered_map<std::string, EniRec> enis;
  std::unordered_map<std::string, GroupRec> groups;
  std::unordered_map<std::string, std::unordered_set<EniRec*>> members;  // group id -> ENIs
  std::unordered_map<std::string, std::vector<Cidr>> prefix_lists;
  std::unordered_map<std::string, PeerRec> peers;
  std::unordered_map<uint32_t, RuleRec> rules;
  std::unordered_map<std::string, ClauseEntry> clauses;
  std::vector<ClauseEntry*> dirty_clauses;
  TranslateStats stats;
  std::map<uint32_t, std::string> rule_names;
  Work work;

  // Flows of recomputed units: all removals go before all additions, so a flow that moves from
  // one unit to another (two interfaces swapping ports) is not removed after it was added.
  // (Records keep only the identities of their flows: the table holds the flows themselves.)
  std::vector<std::string> pending_remove;
  std::vector<std::pair<std::string, Flow>> pending_put;

  void replaceFlows(std::vector<std::string>& current, std::vector<Flow> next) {
    for (auto& key : current) {
      pending_remove.push_back(std::move(key));
    }
    current.clear();
    current.reserve(next.size());
    for (auto& f : next) {
      current.push_back(flowKey(f));
      pending_put.emplace_back(current.back(), std::move(f));
    }
  }

  void markDirty(ClauseEntry* e) {
    if (!e->dirty) {
      e->dirty = true;
      dirty_clauses.push_back(e);
    }
  }

  // Moves a rule's contributions from `old_refs` to `new_refs` (both sorted, unique).
  void switchRefs(std::vector<ClauseRef>& old_refs, std::vector<ClauseRef> new_refs) {
    auto o = old_refs.begin();
    auto n = new_refs.begin();
    while (o != old_refs.end() || n != new_refs.end()) {
      if (n == new_refs.end() || (o != old_refs.end() && *o < *n)) {
        auto& actions = o->entry->actions;
        auto it = std::lower_bound(actions.begin(), actions.end(), o->action);
        if (it != actions.end() && *it == o->action) {
          actions.erase(it);
        }
        markDirty(o->entry);
        ++o;
      } else if (o == old_refs.end() || *n < *o) {
        auto& actions = n->entry->actions;
        auto it = std::lower_bound(actions.begin(), actions.end(), n->action);
        if (it == actions.end() || *it != n->action) {
          actions.insert(it, n->action);
        }
        markDirty(n->entry);
        ++n;
      } else {
        ++o;
        ++n;
      }
    }
    old_refs = std::move(new_refs);
  }

  ClauseRef refFor(std::string key, units::ConjAction action) {
    auto [it, inserted] = clauses.try_emplace(std::move(key));
    if (inserted) {
      it->second.key = &it->first;
    }
    return ClauseRef{&it->second, action};
  }

  static void sortUnique(std::vector<ClauseRef>& refs) {
    std::sort(refs.begin(), refs.end());
    refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
  }

  PeerRec* peerFor(const model::Peer& peer, bool egress) {
    auto [it, inserted] = peers.try_emplace(units::peerKey(peer, egress));
    PeerRec& rec = it->second;
    if (inserted) {
      rec.egress = egress;
      if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
        rec.kind = PeerRec::Kind::kGroup;
        rec.ref = g->group_id;
      } else if (const auto* pl = std::get_if<model::PrefixListRef>(&peer)) {
        rec.kind = PeerRec::Kind::kPrefixList;
        rec.ref = pl->prefix_list_id;
      }
      std::vector<Cidr> cidrs;
      if (const auto* c = std::get_if<Cidr>(&peer)) {
        cidrs.push_back(*c);
      } else {
        cidrs = resolve(rec);
      }
      rec.set = units::makePeerSet(std::move(cidrs), egress);
      rec.version = next_version++;
    }
    return &rec;
  }

  std::vector<Cidr> resolve(const PeerRec& rec) const {
    std::vector<Cidr> out;
    if (rec.kind == PeerRec::Kind::kGroup) {
      if (auto m = members.find(rec.ref); m != members.end()) {
        for (const EniRec* e : m->second) {
          units::appendAddresses(e->eni, out);
        }
      }
    } else if (rec.kind == PeerRec::Kind::kPrefixList) {
      if (auto pl = prefix_lists.find(rec.ref); pl != prefix_lists.end()) {
        out = pl->second;
      }
    }
    units::normalizePeers(out);
    return out;
  }

  // Moves a peer set to `cidrs` (resolved, normalised), recording what came and went.
  void refresh(PeerRec& rec, std::vector<Cidr> cidrs) {
    if (cidrs == rec.set.cidrs) {
      return;
    }
    // Merge the sorted lists: unchanged addresses keep their match text.
    units::PeerSet& old = rec.set;
    units::PeerSet next;
    next.cidrs = std::move(cidrs);
    next.matches.reserve(next.cidrs.size());
    rec.added.clear();
    rec.removed.clear();
    size_t o = 0;
    for (const Cidr& c : next.cidrs) {
      for (; o < old.cidrs.size() && old.cidrs[o] < c; ++o) {
        rec.removed.emplace_back(old.cidrs[o], std::move(old.matches[o]));
      }
      if (o < old.cidrs.size() && old.cidrs[o] == c) {
        next.matches.push_back(std::move(old.matches[o++]));
      } else {
        std::string m = units::peerMatch(c, rec.egress);
        rec.added.emplace_back(c, m);
        next.matches.push_back(std::move(m));
      }
    }
    for (; o < old.cidrs.size(); ++o) {
      rec.removed.emplace_back(old.cidrs[o], std::move(old.matches[o]));
    }
    rec.set = std::move(next);
    rec.prev_version = rec.version;
    rec.version = next_version++;
  }

  void setProduced(RuleRec& rec, uint32_t id, bool produced, uint64_t without) {
    if (rec.produced) {
      --stats.sg_rules;
      stats.sg_flows_without_conjunction -= rec.without;
      rule_names.erase(id);
    }
    rec.produced = produced;
    rec.without = produced ? without : 0;
    if (produced) {
      ++stats.sg_rules;
      stats.sg_flows_without_conjunction += rec.without;
      rule_names[id] = units::ruleName(rec.group_id, rec.egress, rec.number);
    }
  }

  void retractRule(uint32_t id, RuleRec& rec) {
    switchRefs(rec.peer_refs, {});
    switchRefs(rec.member_refs, {});
    switchRefs(rec.other_refs, {});
    replaceFlows(rec.flows, {});
    setProduced(rec, id, false, 0);
    if (rec.peer != nullptr) {
      --rec.peer->users;
      rec.peer = nullptr;
    }
  }

  // How a rule's member or peer clauses follow a change: kept (their input is as before),
  // patched (their input moved on by one version, whose added and removed entries say how) or
  // recomputed with the rest of the rule. Everything else of a rule (commit flows, protocol and
  // dispatch clauses) is recomputed whenever the rule is.
  enum class Part { kKeep, kPatch, kFull };

  // Moves `refs` by the clauses of `removed` and `added` matches.
  void patchRefs(std::vector<ClauseRef>& refs, uint8_t eval_table,
                 const std::vector<const std::string*>& removed,
                 const std::vector<const std::string*>& added, units::ConjAction action) {
    std::vector<ClauseRef> next = refs;
    for (const std::string* match : removed) {
      auto e = clauses.find(units::clauseKey(eval_table, pipeline::kEvalPriority, *match));
      if (e == clauses.end()) {
        continue;
      }
      const ClauseRef ref{&e->second, action};
      auto it = std::lower_bound(next.begin(), next.end(), ref);
      if (it != next.end() && *it == ref) {
        next.erase(it);
      }
    }
    for (const std::string* match : added) {
      next.push_back(refFor(units::clauseKey(eval_table, pipeline::kEvalPriority, *match), action));
    }
    sortUnique(next);
    switchRefs(refs, std::move(next));
  }

  void patchPeerClauses(uint32_t id, RuleRec& rec, uint8_t n) {
    std::vector<const std::string*> removed;
    std::vector<const std::string*> added;
    for (const auto& [cidr, match] : rec.peer->removed) {
      if (units::peerClauseApplies(rec.content, cidr.family())) {
        removed.push_back(&match);
      }
    }
    for (const auto& [cidr, match] : rec.peer->added) {
      if (units::peerClauseApplies(rec.content, cidr.family())) {
        added.push_back(&match);
      }
    }
    patchRefs(rec.peer_refs, rec.egress ? pipeline::kSgEgressEval : pipeline::kSgIngressEval,
              removed, added, units::ConjAction{id, 2, n});
  }

  void patchMemberClauses(uint32_t id, RuleRec& rec, const GroupRec& group, uint8_t n) {
    std::vector<std::string> removed_text;
    std::vector<std::string> added_text;
    for (const auto& m : group.members_removed) {
      removed_text.push_back(units::memberClauseMatch(rec.egress, m));
    }
    for (const auto& m : group.members_added) {
      added_text.push_back(units::memberClauseMatch(rec.egress, m));
    }
    std::vector<const std::string*> removed;
    std::vector<const std::string*> added;
    for (const auto& t : removed_text) {
      removed.push_back(&t);
    }
    for (const auto& t : added_text) {
      added.push_back(&t);
    }
    patchRefs(rec.member_refs, rec.egress ? pipeline::kSgEgressEval : pipeline::kSgIngressEval,
              removed, added, units::ConjAction{id, 1, n});
  }

  void recomputeRule(uint32_t id, RuleRec& rec, const GroupRec& group, Part peer_part,
                     Part member_part) {
    const bool full = peer_part == Part::kFull || member_part == Part::kFull;
    CollectSink sink(generation);
    units::RuleUnit unit;
    unit.sg = group.sg;
    unit.egress = rec.egress;
    unit.rule = &rec.content;
    unit.id = id;
    unit.local = &group.local;
    unit.local_open = &group.local_open;
    unit.members = &group.members;
    unit.peers = &rec.peer->set;
    unit.strict = strict;
    unit.peer_clauses = full;
    unit.member_clauses = full;
    const units::RuleResult result = units::rule(sink, unit);
    std::vector<ClauseRef> refs[3];  // other, member, peer
    for (auto& [key, action] : sink.clauses) {
      const int part = evalClause(key, action);
      refs[part].push_back(refFor(std::move(key), action));
    }
    for (auto& r : refs) {
      sortUnique(r);
    }
    if (full) {
      switchRefs(rec.member_refs, std::move(refs[1]));
      switchRefs(rec.peer_refs, std::move(refs[2]));
      ++work.rules;
    } else {
      if (!result.produced) {
        switchRefs(rec.member_refs, {});
        switchRefs(rec.peer_refs, {});
      } else {
        // The rule is unchanged, so is its clause count.
        if (peer_part == Part::kPatch) {
          patchPeerClauses(id, rec, result.n_clauses);
        }
        if (member_part == Part::kPatch) {
          patchMemberClauses(id, rec, group, result.n_clauses);
        }
      }
      ++work.rules_patched;
    }
    switchRefs(rec.other_refs, std::move(refs[0]));
    replaceFlows(rec.flows, std::move(sink.flows));
    setProduced(rec, id, result.produced, result.without_conjunction);
    rec.local_version = group.local_version;
    rec.peer_version = rec.peer->version;
  }

  void finishClauses() {
    for (ClauseEntry* e : dirty_clauses) {
      e->dirty = false;
      if (e->installed) {
        table.removeKey(*e->key);
        e->installed = false;
      }
      if (!e->actions.empty()) {
        table.put(units::clauseFlow(*e->key, e->actions, generation));
        e->installed = true;
      }
      ++work.clause_flows;
    }
    for (ClauseEntry* e : dirty_clauses) {
      if (e->actions.empty() && !e->installed) {
        clauses.erase(*e->key);  // `e` is gone after this
      }
    }
    dirty_clauses.clear();
  }

  void resetAll() {
    table.clear();
    infra.clear();
    reject_verdicts.clear();
    rejects.clear();
    mirror_plan = {};
    mirrors.clear();
    subnets.clear();
    nacls.clear();
    enis.clear();
    groups.clear();
    members.clear();
    prefix_lists.clear();
    peers.clear();
    rules.clear();
    clauses.clear();
    dirty_clauses.clear();
    stats = {};
    rule_names.clear();
    initialized = false;
  }

  Result<FlowDelta> update(const model::Policy* policy_in,
                           const std::map<std::string, int>& ofports,
                           const std::map<std::string, uint16_t>& interface_index,
                           uint16_t generation_in);
};

Result<FlowDelta> IncrementalTranslator::State::update(
    const model::Policy* policy_in, const std::map<std::string, int>& ofports,
    const std::map<std::string, uint16_t>& interface_index, uint16_t generation_in) {
  if (policy_in == nullptr) {
    return makeError("translate: no policy");
  }
  const model::Policy& policy = *policy_in;
  work = {};

  // What translate() rejects, rejected before anything changes.
  std::unordered_map<std::string_view, std::pair<uint32_t, const model::Subnet*>> subnet_index;
  std::unordered_map<std::string_view, uint32_t> nacl_index;
  for (size_t i = 0; i < policy.subnets.size(); ++i) {
    subnet_index[policy.subnets[i].id] = {static_cast<uint32_t>(i + 1), &policy.subnets[i]};
  }
  for (size_t i = 0; i < policy.network_acls.size(); ++i) {
    nacl_index[policy.network_acls[i].id] = static_cast<uint32_t>(i + 1);
  }
  struct EniInput {
    const model::NetworkInterface* eni;
    uint16_t index;
    int ofport;
    uint32_t subnet_index;
    uint32_t nacl_index;
    const model::Subnet* subnet;
    bool flow_logged;
  };
  std::vector<EniInput> eni_inputs;
  eni_inputs.reserve(policy.network_interfaces.size());
  for (const auto& eni : policy.network_interfaces) {
    auto idx = interface_index.find(eni.id);
    if (idx == interface_index.end() || idx->second == 0) {
      return makeError("interface " + eni.id + " has no index (call assignInterfaceIndices)");
    }
    auto sn = subnet_index.find(eni.subnet_id);
    if (sn == subnet_index.end()) {
      return makeError("interface " + eni.id + ": unknown subnet " + eni.subnet_id);
    }
    auto nacl = nacl_index.find(sn->second.second->network_acl_id);
    if (nacl == nacl_index.end()) {
      return makeError("subnet " + eni.subnet_id + ": unknown network ACL '" +
                       sn->second.second->network_acl_id + "' (were defaults resolved?)");
    }
    auto port = ofports.find(eni.id);
    eni_inputs.push_back(EniInput{&eni, idx->second, port == ofports.end() ? -1 : port->second,
                                  sn->second.first, nacl->second, sn->second.second,
                                  flowLogged(policy, eni)});
  }
  if (auto r = ids.update(policy); !r) {
    return tl::unexpected(r.error());
  }

  if (initialized && (generation != generation_in || strict != policy.vpc.strict_revocation)) {
    resetAll();  // every flow changes anyway
  }
  ++step;
  if (!initialized) {
    generation = generation_in;
    strict = policy.vpc.strict_revocation;
    CollectSink sink(generation);
    units::infrastructure(sink);
    replaceFlows(infra, std::move(sink.flows));
    initialized = true;
  }

  // Flow-log rejects: what can be rejected, while flow logs exist.
  if (auto verdicts = units::flowLogRejectVerdicts(policy); verdicts != reject_verdicts) {
    CollectSink sink(generation);
    units::flowLogRejects(sink, verdicts);
    replaceFlows(rejects, std::move(sink.flows));
    reject_verdicts = std::move(verdicts);
    ++work.units;
  }

  // Traffic mirroring: small (a few sessions per source), rebuilt whole when anything changed.
  if (auto plan = mirrorPlan(policy, ofports, interface_index); plan != mirror_plan) {
    CollectSink sink(generation);
    units::mirrorFlows(sink, plan);
    replaceFlows(mirrors, std::move(sink.flows));
    mirror_plan = std::move(plan);
    ++work.units;
  }

  // Subnets (routers).
  for (const auto& s : policy.subnets) {
    const uint32_t index = subnet_index.at(s.id).first;
    auto [it, inserted] = subnets.try_emplace(s.id);
    SubnetRec& rec = it->second;
    rec.seen = step;
    if (inserted || rec.cidr != s.cidr_block || rec.ipv6 != s.ipv6_cidr_block ||
        rec.index != index) {
      rec.cidr = s.cidr_block;
      rec.ipv6 = s.ipv6_cidr_block;
      rec.index = index;
      CollectSink sink(generation);
      units::router(sink, s, index);
      replaceFlows(rec.flows, std::move(sink.flows));
      ++work.units;
    }
  }
  for (auto it = subnets.begin(); it != subnets.end();) {
    if (it->second.seen != step) {
      replaceFlows(it->second.flows, {});
      it = subnets.erase(it);
    } else {
      ++it;
    }
  }

  // NACLs.
  for (const auto& a : policy.network_acls) {
    const uint32_t index = nacl_index.at(a.id);
    auto [it, inserted] = nacls.try_emplace(a.id);
    NaclRec& rec = it->second;
    rec.seen = step;
    if (inserted || rec.index != index || !sameEntries(rec.entries, a.entries)) {
      rec.entries = a.entries;
      rec.index = index;
      CollectSink sink(generation);
      stats.nacl_flows -= rec.count;
      rec.count = units::networkAcl(sink, a, index);
      stats.nacl_flows += rec.count;
      replaceFlows(rec.flows, std::move(sink.flows));
      ++work.units;
    }
  }
  for (auto it = nacls.begin(); it != nacls.end();) {
    if (it->second.seen != step) {
      stats.nacl_flows -= it->second.count;
      replaceFlows(it->second.flows, {});
      it = nacls.erase(it);
    } else {
      ++it;
    }
  }

  // Groups: what their rules open (an ENI's open bits are the OR over its groups).
  std::unordered_set<std::string> open_changed;
  std::unordered_set<std::string> index_changed;  // groups new, gone or with another index
  std::unordered_set<std::string> peer_dirty;   // groups whose members' addresses changed
  std::unordered_set<std::string> local_dirty;  // groups whose attached members may have changed
  for (const auto& g : policy.security_groups) {
    auto [it, inserted] = groups.try_emplace(g.id);
    GroupRec& rec = it->second;
    rec.sg = &g;
    rec.seen = step;
    const uint32_t bits = units::groupOpenBits(g);
    if (inserted || bits != rec.open_bits) {
      rec.open_bits = bits;
      open_changed.insert(g.id);
    }
    if (const uint16_t index = ids.groupIndex(g.id); inserted || index != rec.index) {
      rec.index = index;
      index_changed.insert(g.id);  // its members' slots are assigned again
      local_dirty.insert(g.id);
    }
  }
  for (auto it = groups.begin(); it != groups.end();) {
    if (it->second.seen != step) {
      open_changed.insert(it->first);  // its members lose its bits
      index_changed.insert(it->first);  // and its slot
      it = groups.erase(it);
    } else {
      ++it;
    }
  }

  // Interfaces, group membership.
  const auto openBitsOf = [&](const model::NetworkInterface& eni) {
    uint32_t bits = 0;
    if (strict) {
      return bits;
    }
    for (const auto& g : eni.security_group_ids) {
      if (auto it = groups.find(g); it != groups.end()) {
        bits |= it->second.open_bits;
      }
    }
    return bits;
  };
  for (const EniInput& input : eni_inputs) {
    const model::NetworkInterface& eni = *input.eni;
    auto [it, inserted] = enis.try_emplace(eni.id);
    EniRec& rec = it->second;
    rec.seen = step;
    const bool groups_changed = inserted || rec.eni.security_group_ids != eni.security_group_ids;
    bool open_dirty = groups_changed;
    bool slots_dirty = groups_changed;
    for (const auto& g : eni.security_group_ids) {
      open_dirty = open_dirty || open_changed.count(g) != 0;
      slots_dirty = slots_dirty || index_changed.count(g) != 0;
    }
    const uint32_t open = open_dirty ? openBitsOf(eni) : rec.open_bits;
    // The slots depend on the indices of the ENI's groups: assigned again when the list changed
    // or a group of it came or went (a group's index is fixed while it exists).
    bool slots_changed = false;
    if (slots_dirty) {
      std::vector<uint16_t> group_indices;
      group_indices.reserve(eni.security_group_ids.size());
      for (const auto& g : eni.security_group_ids) {
        group_indices.push_back(ids.groupIndex(g));
      }
      units::GroupSlots slots = units::assignSlots(std::move(group_indices));
      if (inserted || slots != rec.slots) {
        rec.slots = std::move(slots);
        slots_changed = true;
      }
    }
    const bool addresses_changed = inserted ||
                                   rec.eni.private_ip_addresses != eni.private_ip_addresses ||
                                   rec.eni.ipv6_addresses != eni.ipv6_addresses;
    const bool local_changed = inserted || rec.index != input.index ||
                               (rec.ofport >= 0) != (input.ofport >= 0) || rec.open_bits != open;
    const bool flows_changed = inserted || !sameInterfaceFlowsInput(rec.eni, eni) ||
                               rec.index != input.index || rec.ofport != input.ofport ||
                               rec.subnet_index != input.subnet_index ||
                               rec.nacl_index != input.nacl_index ||
                               rec.subnet_cidr != input.subnet->cidr_block || rec.open_bits != open ||
                               rec.flow_logged != input.flow_logged || slots_changed;
    // Every group of the ENI when its addresses or its attachment changed; only the groups it
    // joined or left when just its membership changed.
    const std::vector<std::string>* old_groups = &rec.eni.security_group_ids;
    for (const std::vector<std::string>* list : {old_groups, &eni.security_group_ids}) {
      const std::vector<std::string>* other =
          list == old_groups ? &eni.security_group_ids : old_groups;
      for (const auto& g : *list) {
        const bool moved =
            groups_changed && std::find(other->begin(), other->end(), g) == other->end();
        if (addresses_changed || moved) {
          peer_dirty.insert(g);
        }
        if (local_changed || moved || slots_changed) {
          local_dirty.insert(g);
        }
      }
    }
    if (groups_changed) {
      for (const auto& g : rec.eni.security_group_ids) {
        members[g].erase(&rec);
      }
      for (const auto& g : eni.security_group_ids) {
        members[g].insert(&rec);
      }
    }
    if (groups_changed || addresses_changed || flows_changed) {
      rec.eni = eni;
      rec.eni.location = {};
    }
    rec.index = input.index;
    rec.ofport = input.ofport;
    rec.subnet_index = input.subnet_index;
    rec.nacl_index = input.nacl_index;
    rec.subnet_cidr = input.subnet->cidr_block;
    rec.open_bits = open;
    rec.flow_logged = input.flow_logged;
    if (flows_changed) {
      CollectSink sink(generation);
      if (rec.ofport >= 0) {
        units::InterfaceUnit unit;
        unit.eni = &rec.eni;
        unit.subnet = input.subnet;
        unit.index = rec.index;
        unit.subnet_index = rec.subnet_index;
        unit.nacl_index = rec.nacl_index;
        unit.ofport = rec.ofport;
        unit.open_bits = rec.open_bits;
        unit.flow_logged = rec.flow_logged;
        unit.slots = rec.slots;
        units::interfaceFlows(sink, unit);
      }
      replaceFlows(rec.flows, std::move(sink.flows));
      ++work.units;
    }
  }
  for (auto it = enis.begin(); it != enis.end();) {
    EniRec& rec = it->second;
    if (rec.seen != step) {
      for (const auto& g : rec.eni.security_group_ids) {
        members[g].erase(&rec);
        peer_dirty.insert(g);
        local_dirty.insert(g);
      }
      replaceFlows(rec.flows, {});
      it = enis.erase(it);
    } else {
      ++it;
    }
  }

  // Prefix lists.
  std::unordered_set<std::string> lists_changed;
  {
    std::unordered_map<std::string, std::vector<Cidr>> now;
    for (const auto& pl : policy.prefix_lists) {
      now[pl.id] = pl.entries;  // the last one wins, as in translate()
    }
    for (auto& [id, entries] : now) {
      auto it = prefix_lists.find(id);
      if (it == prefix_lists.end() || it->second != entries) {
        lists_changed.insert(id);
      }
    }
    for (const auto& [id, entries] : prefix_lists) {
      if (now.count(id) == 0) {
        lists_changed.insert(id);
      }
    }
    if (!lists_changed.empty()) {
      prefix_lists = std::move(now);
    }
  }

  // Attached members per group.
  for (const auto& gid : local_dirty) {
    auto g = groups.find(gid);
    if (g == groups.end()) {
      continue;
    }
    GroupRec& rec = g->second;
    std::vector<std::pair<uint16_t, uint32_t>> local;
    std::vector<units::MemberClause> member_clauses;
    if (auto m = members.find(gid); m != members.end()) {
      for (const EniRec* e : m->second) {
        if (e->ofport >= 0) {
          local.emplace_back(e->index, e->open_bits);
          member_clauses.push_back(units::memberClauseOf(e->slots, rec.index, e->index));
        }
      }
    }
    std::sort(local.begin(), local.end());
    std::sort(member_clauses.begin(), member_clauses.end());
    member_clauses.erase(std::unique(member_clauses.begin(), member_clauses.end()), member_clauses.end());
    std::vector<uint16_t> indices;
    std::vector<uint32_t> open;
    for (const auto& [z, bits] : local) {
      indices.push_back(z);
      open.push_back(bits);
    }
    if (rec.local_version == 0 || indices != rec.local || open != rec.local_open ||
        member_clauses != rec.members) {
      rec.members_added.clear();
      rec.members_removed.clear();
      std::set_difference(member_clauses.begin(), member_clauses.end(), rec.members.begin(), rec.members.end(),
                          std::back_inserter(rec.members_added));
      std::set_difference(rec.members.begin(), rec.members.end(), member_clauses.begin(), member_clauses.end(),
                          std::back_inserter(rec.members_removed));
      rec.local = std::move(indices);
      rec.local_open = std::move(open);
      rec.members = std::move(member_clauses);
      rec.prev_local_version = rec.local_version;
      rec.local_version = next_version++;
    }
  }

  // Peer sets whose source changed (resolved once for both directions).
  const auto refreshBoth = [&](const model::Peer& peer) {
    PeerRec* both[2] = {nullptr, nullptr};
    for (bool egress : {false, true}) {
      if (auto p = peers.find(units::peerKey(peer, egress)); p != peers.end()) {
        both[egress ? 1 : 0] = &p->second;
      }
    }
    if (both[0] == nullptr && both[1] == nullptr) {
      return;
    }
    std::vector<Cidr> cidrs = resolve(both[0] != nullptr ? *both[0] : *both[1]);
    if (both[0] != nullptr && both[1] != nullptr) {
      refresh(*both[0], cidrs);
      refresh(*both[1], std::move(cidrs));
    } else {
      refresh(both[0] != nullptr ? *both[0] : *both[1], std::move(cidrs));
    }
  };
  for (const auto& gid : peer_dirty) {
    refreshBoth(model::GroupRef{gid});
  }
  for (const auto& id : lists_changed) {
    refreshBoth(model::PrefixListRef{id});
  }

  // Rules.
  for (const auto& g : policy.security_groups) {
    const GroupRec& group = groups.at(g.id);
    for (bool egress : {true, false}) {
      const auto& list = egress ? g.egress : g.ingress;
      const std::vector<uint32_t>& rule_ids = *ids.ids(g.id, egress);
      for (size_t r = 0; r < list.size(); ++r) {
        const uint32_t id = rule_ids[r];
        auto [it, inserted] = rules.try_emplace(id);
        RuleRec& rec = it->second;
        rec.seen = step;
        const bool same_rule = !inserted && rec.group_id == g.id && rec.egress == egress &&
                               sameRuleContent(rec.content, list[r]);
        if (!same_rule) {
          if (!inserted) {
            retractRule(id, rec);
          }
          rec.group_id = g.id;
          rec.egress = egress;
          rec.content = list[r];
          rec.content.description.clear();
          rec.content.location = {};
          rec.number = r;
          rec.peer = peerFor(rec.content.peer, egress);
          ++rec.peer->users;
          recomputeRule(id, rec, group, Part::kFull, Part::kFull);
          continue;
        }
        if (rec.number != r) {
          rec.number = r;
          if (rec.produced) {
            rule_names[id] = units::ruleName(g.id, egress, r);
          }
        }
        // Patching needs a rule that made its clauses and still has members to make them for.
        const bool patchable = rec.produced && !group.local.empty();
        const auto part = [&](uint64_t had, uint64_t now, uint64_t before_now) {
          if (had == now) {
            return Part::kKeep;
          }
          return patchable && had == before_now ? Part::kPatch : Part::kFull;
        };
        const Part peers_part = part(rec.peer_version, rec.peer->version, rec.peer->prev_version);
        const Part members_part =
            part(rec.local_version, group.local_version, group.prev_local_version);
        if (peers_part != Part::kKeep || members_part != Part::kKeep) {
          recomputeRule(id, rec, group, peers_part, members_part);
        }
      }
    }
  }
  for (auto it = rules.begin(); it != rules.end();) {
    if (it->second.seen != step) {
      retractRule(it->first, it->second);
      it = rules.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = peers.begin(); it != peers.end();) {
    it = it->second.users == 0 ? peers.erase(it) : std::next(it);
  }

  for (const auto& key : pending_remove) {
    table.removeKey(key);
  }
  for (auto& [key, f] : pending_put) {
    table.put(std::move(key), std::move(f));
  }
  pending_remove.clear();
  pending_put.clear();
  finishClauses();
  stats.sg_clause_flows = clauses.size();
  stats.flows = table.size();
  return table.finish();
}

IncrementalTranslator::IncrementalTranslator() : state_(std::make_unique<State>()) {}
IncrementalTranslator::~IncrementalTranslator() = default;

Result<FlowDelta> IncrementalTranslator::update(const TranslateInput& input) {
  return state_->update(input.policy, input.ofports, input.interface_index, input.generation);
}

Result<FlowDelta> IncrementalTranslator::update(
    const model::Policy* policy, const std::map<std::string, int>& ofports,
    const std::map<std::string, uint16_t>& interface_index, uint16_t generation) {
  return state_->update(policy, ofports, interface_index, generation);
}

void IncrementalTranslator::reset() {
  state_->resetAll();
  state_->table.finish();  // the next update's delta is against an empty set
}

std::vector<Flow> IncrementalTranslator::flows() const { return state_->table.sorted(); }
std::vector<const Flow*> IncrementalTranslator::flowRefs() const { return state_->table.refs(); }
size_t IncrementalTranslator::flowCount() const { return state_->table.size(); }
const TranslateStats& IncrementalTranslator::stats() const { return state_->stats; }
const std::map<uint32_t, std::string>& IncrementalTranslator::ruleNames() const {
  return state_->rule_names;
}
const RuleIdAllocator& IncrementalTranslator::ruleIds() const { return state_->ids; }
const IncrementalTranslator::Work& IncrementalTranslator::lastWork() const { return state_->work; }

}  // namespace vpcguard
