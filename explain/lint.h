#pragma once
// `vpcguardctl lint FILE|DIR`: findings about a valid policy that is probably not what its
// author meant. Each finding has a stable code, a severity and the file:line:col of the object
// it is about. docs/explain.md lists every code with an example.
//
// Codes (stable; never reused for something else):
//   VG101 warning  nacl-shadowed        a NACL entry that lower-numbered entries of the same
//                                       NACL and direction fully cover (it never decides);
//                                       says which entry covers it and whether the actions differ
//   VG199 note     nacl-not-analysed    a NACL direction with entries too many or too finely cut
//                                       to check fully for VG101/VG301: how many were left out
//                                       (no VG101/VG301 is reported for them)
//   VG102 warning  sg-rule-covered      an SG rule that another rule of the same group and
//                                       direction fully covers (it adds nothing)
//   VG201 error    admin-port-open      an ingress SG rule opening an administration port (22 SSH,
//                                       3389 RDP, 3306 MySQL, 5432 PostgreSQL, 1433 SQL Server,
//                                       1521 Oracle, 27017 MongoDB, 6379 Redis, 9200 Elasticsearch,
//                                       23 telnet) to 0.0.0.0/0 or ::/0 (directly or via
//                                       protocol "all" / a port range that includes it) on a group
//                                       that an interface uses
//   VG301 warning  nacl-no-reply        a NACL that allows traffic in one direction but denies its
//                                       replies (the ephemeral ports 1024-65535 back to the same
//                                       peers) in the other: stateless NACLs need both
//   VG401 note     unused-group         a security group no interface uses (the VPC's default
//                                       group excepted); when other groups' rules reference it,
//                                       those rules match nobody
//   VG501 note     zero-hits            an SG rule or NACL entry with no hit on the switch over
//                                       at least the window (needs `--switch`)
// Severity order: note < warning < error.
//
// Exact rules (lint.cpp; docs/explain.md has examples):
//  - Matching. A NACL entry or SG rule of protocol "all" matches every protocol and port; tcp/udp
//    match their port range (absent = all ports); ICMP type -1 (or absent) = every type and
//    code, code -1 = every code of the type; CIDRs of different families never overlap.
//  - VG101: entry E is shadowed when the lower-numbered entries of its NACL and direction
//    together match every packet E matches. Unions are exact over addresses x destination ports
//    (two /25 cover a /24; 0-1023 plus 1024-65535 cover all ports); protocol and ICMP type/code
//    are not combined (tcp + udp entries do not cover an "all" entry). The message names every
//    earlier entry that decides some of E's packets and whether their actions equal E's.
//  - VG102: rule R is covered when another rule Q of the same group and direction has a peer
//    that covers R's (a CIDR of the same family containing R's; the same group; the same prefix
//    list; a CIDR never covers a group or prefix list) and a protocol, port range and ICMP
//    type/code that cover R's. Order does not matter; of two rules that match the same traffic
//    (they differ only in description) the later is reported. Unions are not considered.
//  - VG201: the peer is 0.0.0.0/0 or ::/0, or a prefix list with such an entry; the protocol is
//    tcp or "all" (udp rules are not reported); one finding per rule, listing the ports.
//  - VG301: for each allow entry E (tcp, udp, or "all" = both tcp and udp) of a NACL that at
//    least one subnet uses, and that is not shadowed (VG101): the replies are the other
//    direction's packets of that protocol to (inbound E) or from (outbound E) E's CIDR, destination
//    ports 1024-65535. They are walked through the other direction's entries; any part denied
//    (by a deny entry or `*`) is reported with the first deny that decides some of it and the
//    exact part it denies. Not checked: deny entries, other protocols (ICMP...), and entries that
//    are themselves reply entries (tcp/udp ports from 1024..49152 up to 65535). When only one
//    subnet uses the NACL, replies to addresses of that subnet are left out (traffic inside a
//    subnet never crosses its NACL); with two or more subnets nothing is left out.
//  - VG199: one walk of the boxes (an entry's earlier entries for VG101; the other direction,
//    per protocol, for VG301) stops once its region holds more than 4096 boxes or it has
//    visited more than 2^17; that entry gets no VG101/VG301 finding, and each NACL direction
//    with such entries gets one note on the NACL's location: "too many entries to analyse fully
//    (N of M entries not checked for VG101/VG301)". Never within AWS's default quota (20).
//  - VG401: the group's id is in no interface's security_group_ids and it is not is_default;
//    every rule (of any group) whose peer is that group is named.
//  - VG501: only with LintOptions::hits; a rule with flows > 0, packets == 0 and
//    since_seconds >= window_seconds. The NACL `*` rules are never reported (they cannot be
//    removed). The object is the name part of RuleHits::rule.

#include <optional>
#include <string>
#include <vector>

#include "explain/hits.h"
#include "translator/model.h"

namespace vpcguard::explain {

enum class Severity { kNote, kWarning, kError };
[[nodiscard]] const char* toString(Severity severity);  // "note" | "warning" | "error"

struct Finding {
  std::string code;  // "VG101"
  std::string name;  // "nacl-shadowed"
  Severity severity = Severity::kWarning;
  model::SourceLocation location;  // of the object the finding is about
  std::string object;              // "acl-private outbound rule 200", "sg-web ingress #2"
  std::string message;             // one sentence, what and why
};

struct LintOptions {
  // Zero-hit findings (VG501): the switch's counters for this policy, and the window: a rule
  // whose flows are all at least `window_seconds` old and have no packet is reported. Rules with
  // younger flows are not (their counters cover less than the window).
  const std::vector<RuleHits>* hits = nullptr;
  uint32_t window_seconds = 3600;
};

// Findings of `policy` (validated, defaults resolved), sorted by file, line, column, code.
[[nodiscard]] std::vector<Finding> lint(const model::Policy& policy, const LintOptions& options);

// "lab.toml:12:3: warning: VG101 nacl-shadowed: acl-x outbound rule 200: ..." one per line
// (no location prefix when the location is unknown), then a summary line: "lint: 1 error,
// 2 warnings" (severities with no finding left out) or "lint: no findings".
[[nodiscard]] std::string renderFindingsText(const std::vector<Finding>& findings);
// {"findings": [{"code","name","severity","file","line","column","object","message"}],
//  "summary": {"error": n, "warning": n, "note": n}}   (all three counts, also 0; 2-space indent)
[[nodiscard]] std::string renderFindingsJson(const std::vector<Finding>& findings);

// Exit status of `vpcguardctl lint`: 0 nothing above a note, 1 a warning, 2 an error
// (3 is the command's own: the policy could not be loaded).
[[nodiscard]] int lintExitStatus(const std::vector<Finding>& findings);

}  // namespace vpcguard::explain
