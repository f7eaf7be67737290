#pragma once
// Policy -> desired flows, recomputing only what a change touches.
//
// Design: the policy is cut into units (translator/units.h: infrastructure, one router per
// subnet, one unit per interface, per NACL and per SG rule). For each unit the translator keeps
// what its flows depended on last time and the flows it made; an update compares every unit's
// inputs (cheap comparisons, no formatting) and re-runs only the units whose inputs changed:
//  - an interface: its own fields, index, ofport, subnet (index and CIDR), NACL index and the
//    open bits its groups give it;
//  - a rule: its content, its id, its group's attached members (a version number per group) and
//    its peer's resolved addresses (a version number per peer set, bumped only when the
//    addresses of the referenced group's members, or the prefix list, really changed);
//  - a subnet / NACL: its fields and its index.
// Clause flows are shared by rules: the translator keeps, per clause key, the conjunction
// actions of every rule, and rewrites only keys whose actions changed. When only a rule's
// members changed, its peer clauses (the bulk of a rule that references a large group) are kept
// as they are.
//
// The result is the same flow set as translate() with the same rule ids, flow by flow (the
// property test tests/unit/incremental_test.cpp checks it after random change sequences), and
// the delta from the previous update's set.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "translator/flow.h"
#include "translator/result.h"
#include "translator/rule_ids.h"
#include "translator/translate.h"

namespace vpcguard {

// The difference between two flow sets. A flow whose actions or cookie changed appears in both
// lists (old version in `removed`, new in `added`) with the same (table, priority, match).
struct FlowDelta {
  std::vector<Flow> removed;
  std::vector<Flow> added;
  [[nodiscard]] bool empty() const { return removed.empty() && added.empty(); }
  [[nodiscard]] size_t size() const { return removed.size() + added.size(); }
};

class IncrementalTranslator {
 public:
  IncrementalTranslator();
  ~IncrementalTranslator();
  IncrementalTranslator(const IncrementalTranslator&) = delete;
  IncrementalTranslator& operator=(const IncrementalTranslator&) = delete;

  // Translates `input` (its rule_ids is ignored: the translator keeps its own allocator, see
  // ruleIds()) and returns the difference from the previous update. On error (an input that
  // translate() rejects too) nothing changes.
  [[nodiscard]] Result<FlowDelta> update(const TranslateInput& input);
  // The same without copying the maps into a TranslateInput.
  [[nodiscard]] Result<FlowDelta> update(const model::Policy* policy,
                                         const std::map<std::string, int>& ofports,
                                         const std::map<std::string, uint16_t>& interface_index,
                                         uint16_t generation);

  // Forgets everything: the next update recomputes every unit and its delta adds every flow
  // (as if nothing had been installed). Rule ids are kept.
  void reset();

  // The current flow set, sorted as translate() sorts it (O(n log n): for resyncs and tests).
  [[nodiscard]] std::vector<Flow> flows() const;
  // The same flows in no particular order, in place: valid until the next update or reset. A
  // full sync at 100k flows reads them once; a copy of each was a large part of its peak.
  [[nodiscard]] std::vector<const Flow*> flowRefs() const;
  [[nodiscard]] size_t flowCount() const;
  [[nodiscard]] const TranslateStats& stats() const;
  [[nodiscard]] const std::map<uint32_t, std::string>& ruleNames() const;
  // The ids in use: pass as TranslateInput::rule_ids to translate() for the same flows.
  [[nodiscard]] const RuleIdAllocator& ruleIds() const;

  // What the last update recomputed, for logs and benchmarks.
  struct Work {
    size_t units = 0;          // interfaces, subnets, NACLs recomputed
    size_t rules = 0;          // rules recomputed in full
    size_t rules_patched = 0;  // rules recomputed but for their member and peer clauses, which
                               // were kept or patched (members or peer addresses changed)
    size_t clause_flows = 0;   // shared clause flows rewritten
  };
  [[nodiscard]] const Work& lastWork() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vpcguard
