#pragma once
// Per-rule hit counters: packets and bytes per security-group rule and NACL entry, read from the
// switch's flow statistics (`vpcguardctl stats`, `lint --switch`, the metrics).
//
// What a hit is (docs/explain.md):
//  - NACL entry (and each NACL's `*` rule, per direction): every packet the entry decided
//    (NACLs are stateless: every packet crossing subnets is evaluated). The flows of one entry
//    (one per port mask) are the flows of its NACL's cookie (kind kNacl, index = NACL index) at
//    priority 40000 - rule number in NACL_OUT (40, outbound) or NACL_IN (41, inbound); `*` is
//    priority 1.
//  - SG rule: the packets the rule allowed in the evaluation tables (32 egress, 52 ingress): a
//    tracked connection's first packet (later packets are conntrack's, not the rule's), and every
//    re-evaluated packet of a checked connection. Flows of cookie kind kSgRule, index = the rule's
//    conjunction id, in tables 32/52.
// Counters are the switch's since the flow was installed (a changed rule starts again at 0);
// `since_seconds` is the age of its youngest flow.

#include <cstdint>
#include <string>
#include <vector>

#include "translator/flow.h"
#include "translator/model.h"
#include "translator/translate.h"

namespace vpcguard::explain {

// One installed flow with its statistics (what OpenFlowChannel::dumpFlows returns, without
// depending on the OVS library).
struct FlowStats {
  Flow flow;
  uint64_t n_packets = 0;
  uint64_t n_bytes = 0;
  uint32_t duration_sec = 0;
};

struct RuleHits {
  enum class Kind { kSgRule, kNaclEntry };
  Kind kind = Kind::kSgRule;
  std::string object_id;   // the group or NACL id
  bool egress = false;     // SG: egress rule; NACL: outbound entry
  int index = 0;           // SG: position in the group's direction (0-based); NACL: rule number
                           // (pipeline::kNaclStarRule for `*`)
  std::string rule;        // "sg-web ingress #1: tcp 443 from 0.0.0.0/0" (as trace writes it)
  model::SourceLocation location;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  size_t flows = 0;              // installed flows counted (0: the rule has none on the switch)
  uint32_t since_seconds = 0;    // age of the youngest counted flow
};

// Every SG rule and NACL entry of `policy` (validated, defaults resolved), in config order
// (groups: ingress then egress; NACLs: outbound then inbound by rule number, `*` last), with
// the counters of `flows` (a dump of the bridge; other flows are ignored). `translation` is the
// policy's translation (its rule_names give the conjunction id of each rule).
[[nodiscard]] std::vector<RuleHits> ruleHits(const model::Policy& policy,
                                             const Translation& translation,
                                             const std::vector<FlowStats>& flows);

// A table: object, direction, rule, packets, bytes, flows, since.
[[nodiscard]] std::string renderHitsText(const std::vector<RuleHits>& hits);
// {"rules": [{"kind": "sg-rule"|"nacl-entry", "id", "direction", "index"|"rule_number",
//  "rule", "location", "packets", "bytes", "flows", "since_seconds"}]}
// "direction" is "ingress"/"egress" for SG rules and "inbound"/"outbound" for NACL entries (the
// words trace and lint use); "index" is RuleHits::index (0-based; the rule text says #index+1);
// "rule_number" is 32767 for `*`, as AWS reports it; "location" is null when unknown.
[[nodiscard]] std::string renderHitsJson(const std::vector<RuleHits>& hits);
// Prometheus text exposition format (version 0.0.4): vpcguard_rule_hit_packets_total and
// vpcguard_rule_hit_bytes_total, labels kind, id, direction, rule.
[[nodiscard]] std::string renderHitsPrometheus(const std::vector<RuleHits>& hits);

}  // namespace vpcguard::explain
