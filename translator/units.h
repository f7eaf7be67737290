#pragma once
// Internal to the translator: the pieces of the policy ("units") that translate() and
// IncrementalTranslator both turn into flows, with the same code, so the two cannot disagree.
//
// A unit writes plain flows (owned by that unit alone) and clause contributions to a FlowSink.
// Clause flows are shared: one flow per (table, priority, match) carries the conjunction
// actions of every rule that needs that match, so the sink merges contributions by key.
//
// Units and what each depends on:
//   infrastructure  - the generation only
//   router(subnet)  - the subnet's CIDRs and index
//   interface(ENI)  - the ENI, its index, ofport, subnet (index, CIDR), NACL index, open bits,
//                     group slots
//   networkAcl      - the NACL's entries and index
//   rule            - the rule, its id, its group's id and attached members (with their open
//                     bits and member clauses), its peer's resolved addresses, strict revocation

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "translator/flow.h"
#include "translator/mirror.h"
#include "translator/model.h"
#include "translator/pipeline.h"

namespace vpcguard::units {

// (table, priority, match) packed into one string: the identity of a clause flow.
[[nodiscard]] std::string clauseKey(uint8_t table, uint16_t priority, std::string_view match);
[[nodiscard]] uint8_t clauseKeyTable(std::string_view key);
[[nodiscard]] uint16_t clauseKeyPriority(std::string_view key);
[[nodiscard]] std::string_view clauseKeyMatch(std::string_view key);

// One conjunction action of a clause flow.
struct ConjAction {
  uint32_t id = 0;
  uint8_t clause = 0;
  uint8_t n_clauses = 0;
  auto operator<=>(const ConjAction&) const = default;
};

// The flow of a clause key carrying `actions` (sorted, unique).
[[nodiscard]] Flow clauseFlow(std::string_view key, const std::vector<ConjAction>& actions,
                              uint16_t generation);

class FlowSink {
 public:
  explicit FlowSink(uint16_t generation) : generation_(generation) {}
  virtual ~FlowSink() = default;
  FlowSink(const FlowSink&) = delete;
  FlowSink& operator=(const FlowSink&) = delete;

  void add(pipeline::Table table, uint16_t priority, pipeline::CookieKind kind, uint32_t index,
           std::string match, std::string actions) {
    addFlow(Flow{table, priority, pipeline::makeCookie(generation_, kind, index), std::move(match),
                 std::move(actions)});
  }
  virtual void addFlow(Flow flow) = 0;
  virtual void addClause(pipeline::Table table, uint16_t priority, const std::string& match,
                         ConjAction action) = 0;
  [[nodiscard]] uint16_t generation() const { return generation_; }

 private:
  uint16_t generation_;
};

void infrastructure(FlowSink& b);
void router(FlowSink& b, const model::Subnet& subnet, uint32_t subnet_index);

// The group slots of one interface (pipeline.h, "Group slots"): which group index each slot
// holds (0: empty) and the groups that found no slot (sorted). A function of the set of group
// indices alone: each group, lowest index first, takes the first free slot from
// index % kGroupSlots on, so a group tends to sit in the same slot on every interface.
struct GroupSlots {
  std::array<uint16_t, pipeline::kGroupSlots> slot{};
  std::vector<uint16_t> overflow;
  bool operator==(const GroupSlots&) const = default;
  // The slot that holds group `index`, or pipeline::kNoSlot.
  [[nodiscard]] uint8_t slotOf(uint16_t index) const;
};
[[nodiscard]] GroupSlots assignSlots(std::vector<uint16_t> group_indices);

// One member clause flow of a group's rules: a slot that holds the group on some member
// (value = the group index), or one member that has the group in no slot (slot = kNoSlot,
// value = its ENI index).
struct MemberClause {
  uint8_t slot = pipeline::kNoSlot;
  uint16_t value = 0;
  auto operator<=>(const MemberClause&) const = default;
};
// The member clause of `group_index` on an interface with `slots` and index `eni_index`.
[[nodiscard]] MemberClause memberClauseOf(const GroupSlots& slots, uint16_t group_index,
                                          uint16_t eni_index);
// Its match: "reg11=0x5/0xffff" (a slot), "reg0=7" / "reg1=7" (an interface).
[[nodiscard]] std::string memberClauseMatch(bool egress, const MemberClause& clause);

struct InterfaceUnit {
  const model::NetworkInterface* eni = nullptr;
  const model::Subnet* subnet = nullptr;
  uint16_t index = 0;
  uint32_t subnet_index = 0;
  uint32_t nacl_index = 0;
  int ofport = -1;  // -1 = not attached to this bridge (then it has no flows)
  uint32_t open_bits = 0;
  bool flow_logged = false;  // a flow log covers it: its traffic is counted (flowLogFlows)
  GroupSlots slots;          // loaded at classification (egress) and lookup (ingress)
};
void interfaceFlows(FlowSink& b, const InterfaceUnit& unit);
// The flow-log counting flows of one interface (part of its interface unit when logged).
void flowLogFlows(FlowSink& b, uint16_t index);
// What flow logs record as REJECT (verdicts of security groups and NACLs: the SG kinds, and the
// `*` rule and every deny entry of every NACL), sorted; empty while no flow log exists. Port
// security, no-route and conntrack-invalid drops are not AWS rejects.
[[nodiscard]] std::vector<uint32_t> flowLogRejectVerdicts(const model::Policy& policy);
// The drop table's flows that sample those rejects, behind the rate-limiting meter.
void flowLogRejects(FlowSink& b, const std::vector<uint32_t>& verdicts);

// The traffic-mirror filter flows of every source interface (docs/mirroring.md): per direction
// and session rank, the filter's rules (accept: copy, reject: next session) and a miss flow.
void mirrorFlows(FlowSink& b, const MirrorPlan& plan);

// Returns the number of flows it made (TranslateStats::nacl_flows).
size_t networkAcl(FlowSink& b, const model::NetworkAcl& nacl, uint32_t nacl_index);

// A group's share of its members' kRegOpen bits: what its rules open to the whole internet.
// An ENI's bits are the OR over its groups (zero in strict mode).
[[nodiscard]] uint32_t groupOpenBits(const model::SecurityGroup& group);

// A rule's peer addresses (sorted, unique) and their match text for one direction.
struct PeerSet {
  std::vector<Cidr> cidrs;
  std::vector<std::string> matches;  // matches[i] selects cidrs[i]
};
[[nodiscard]] PeerSet makePeerSet(std::vector<Cidr> cidrs, bool egress);
// Identity of a rule's peer on one side (source for ingress, destination for egress): the key
// under which its resolved addresses are shared by every rule that names the same peer.
[[nodiscard]] std::string peerKey(const model::Peer& peer, bool egress);
// The match text of one peer address (PeerSet::matches).
[[nodiscard]] std::string peerMatch(const Cidr& cidr, bool egress);
// Sorts and de-duplicates peer addresses, as PeerSet wants them.
void normalizePeers(std::vector<Cidr>& cidrs);
// The members' addresses of a group: what a GroupRef peer resolves to.
void appendAddresses(const model::NetworkInterface& eni, std::vector<Cidr>& out);

struct RuleUnit {
  const model::SecurityGroup* sg = nullptr;
  bool egress = false;
  const model::SecurityGroupRule* rule = nullptr;
  uint32_t id = 0;
  const std::vector<uint16_t>* local = nullptr;       // indices of attached members
  const std::vector<uint32_t>* local_open = nullptr;  // their open bits, in the same order
  const std::vector<MemberClause>* members = nullptr; // the members' clauses (sorted, unique)
  const PeerSet* peers = nullptr;
  bool strict = false;
  // False: leave out the peer clauses (clause 2 of the evaluation table), which depend on the
  // peers and the rule alone, when only the members changed and the caller keeps them.
  bool peer_clauses = true;
  // The same for the member clauses (clause 1 of the evaluation table), which depend on the
  // members alone.
  bool member_clauses = true;
};
struct RuleResult {
  bool produced = false;  // the rule made a conjunction (counts in TranslateStats::sg_rules)
  uint64_t without_conjunction = 0;
  uint8_t n_clauses = 0;  // of its evaluation conjunction (2 or 3) when produced
};
// Nothing when `local` is empty or no family applies.
RuleResult rule(FlowSink& b, const RuleUnit& unit);


// Whether a peer address of `family` gets a peer clause for `rule` (icmp has none for IPv6
// peers, icmpv6 none for IPv4 ones): what rule() decides per peer.
[[nodiscard]] bool peerClauseApplies(const model::SecurityGroupRule& rule, IpFamily family);

// "sg-id ingress #n", the rule's name in Translation::rule_names.
[[nodiscard]] std::string ruleName(const std::string& group_id, bool egress, size_t number);

// The sort order of translate()'s output: table, then priority (highest first), then match.
struct FlowOrder {
  bool operator()(const Flow& a, const Flow& b) const {
    if (a.table != b.table) {
      return a.table < b.table;
    }
    if (a.priority != b.priority) {
      return a.priority > b.priority;
    }
    return a.match < b.match;
  }
};

}  // namespace vpcguard::units
