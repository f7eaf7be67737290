#pragma once
// Stable conjunction ids for security-group rules.
//
// A rule's conjunction id appears in every flow the rule makes (conjunction actions, conj_id=
// matches, ct_label[0..31] of the connections it commits, the cookie index). Counting rules in
// config order would renumber every later rule when one is inserted, so a one-rule change would
// rewrite most of the SG tables. Instead an id belongs to the rule's identity: its group, its
// direction and what it says (protocol, ports or ICMP type/code, peer as written - not its
// position, not its description, not what its peer resolves to). A rule keeps its id while it
// exists; a new rule takes the id its identity hashes to, or the next free one after it.
//
// Hashing (rather than "lowest free") makes the ids independent of history in practice: a
// restarted daemon, which starts with no allocator state, gives every rule the id it had before
// unless two identities collided (then the one that came later may hold another id until its
// rule is next changed). Revocation never depends on ids (it uses the rule fingerprint in
// ct_label[64..95], see pipeline.h), so a different id after a restart costs a larger first
// diff, never a wrongly kept or dropped connection. docs/design.md discusses the choice.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard {

// Ids live in [kConjIdBase, kRuleIdLimit): the cookie keeps 24 bits of object index.
inline constexpr uint32_t kRuleIdLimit = 1U << 24;
// Group indices live in [1, kGroupIndexLimit): 16-bit slots, 0 meaning "empty".
inline constexpr uint32_t kGroupIndexLimit = 1U << 16;

// The identity text of a rule ("sg-1|ingress|6|ports=80-80|cidr=10.0.0.0/8").
[[nodiscard]] std::string ruleIdentity(const std::string& group_id, bool egress,
                                       const model::SecurityGroupRule& rule);

// Whether two rules say the same (what ruleIdentity() covers, besides the group).
[[nodiscard]] bool sameRuleContent(const model::SecurityGroupRule& a,
                                   const model::SecurityGroupRule& b);

class RuleIdAllocator {
 public:
  // Gives every rule of `policy` an id: rules that existed at the last update keep theirs, rules
  // that are gone free theirs. Cheap when little changed: groups whose rules are unchanged are
  // not looked at beyond a comparison. On error nothing changes.
  [[nodiscard]] Result<void> update(const model::Policy& policy);

  // The ids of a group's rules in one direction, by position; nullptr for an unknown group.
  [[nodiscard]] const std::vector<uint32_t>* ids(const std::string& group_id, bool egress) const;

  [[nodiscard]] size_t size() const { return by_identity_.size(); }

  // A group's bridge-wide index (1..kGroupIndexLimit-1), the value its slots hold
  // (pipeline.h, "Group slots"); 0 for an unknown group. Allocated like the rule ids: the hash
  // of the group id, or the next free index after it; kept while the group exists.
  [[nodiscard]] uint16_t groupIndex(const std::string& group_id) const;

 private:
  struct Direction {
    std::vector<model::SecurityGroupRule> rules;  // as of the last update (content only)
    std::vector<std::string> identities;
    std::vector<uint32_t> ids;
  };
  struct Group {
    Direction dir[2];  // [0] ingress, [1] egress
    uint16_t index = 0;
  };

  std::unordered_map<std::string, Group> groups_;
  std::unordered_map<std::string, uint32_t> by_identity_;
  std::unordered_set<uint32_t> used_;
  std::unordered_set<uint16_t> used_group_indices_;
};

}  // namespace vpcguard
