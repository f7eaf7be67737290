#pragma once
// `vpcguardctl trace`: what the policy does with one packet, said in the policy's own terms
// (security-group rule, NACL entry, VPC router, tracked or untracked, flow-log and mirror
// effects), computed from the model alone, as AWS's Reachability Analyzer answers "why can't A
// reach B?". No switch is involved; the same answer in OpenFlow terms (SwitchProbe) lets the
// caller ask the switch with ofproto/trace and compare (explain/ofproto_trace.h).
//
// The evaluation follows the pipeline's order (translator/pipeline.h, docs/pipeline.md):
// port security -> lookup (switched / routed / unfiltered / no route) -> SG egress of the
// source -> NACL outbound of the source subnet -> VPC router -> NACL inbound of the destination
// subnet -> SG ingress of the destination -> output, then the accepted packet's flow-log and
// mirror effects. docs/explain.md describes it for users.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::explain {

// The packet to trace, as the user wrote it.
struct TraceRequest {
  std::string from;      // an interface id (eni-...) or an IP address
  std::string to;        // an interface id or an IP address
  std::string protocol;  // "tcp/443", "udp/53", "icmp/8" (type), "icmp/3/4" (type/code),
                         // "icmpv6/128", "tcp" (port 0 would be odd: tcp needs a port), "all",
                         // a protocol number ("47")
  std::optional<int> source_port;  // tcp/udp: default kDefaultSourcePort
  // Trace the reply of the connection the request describes (to -> from, ports swapped, ICMP
  // echo request -> echo reply), as conntrack sees it: the connection exists only if the
  // original direction is allowed.
  bool reply = false;
};
inline constexpr int kDefaultSourcePort = 49152;

// The packet as evaluated (after resolving ids to addresses and the reply swap).
struct TracePacket {
  std::string src_interface;  // interface id, or "" when the source is the host (LOCAL)
  std::string dst_interface;  // interface id, "" when the destination is the host or unknown
  IpAddress src;
  IpAddress dst;
  int protocol = model::kProtoTcp;  // IANA number
  int src_port = 0;                 // tcp/udp
  int dst_port = 0;
  int icmp_type = -1;  // icmp/icmpv6
  int icmp_code = -1;
};

enum class Verdict { kAllow, kDrop };
[[nodiscard]] const char* toString(Verdict verdict);  // "allow" | "drop"

// One stage of the path.
struct TraceStep {
  // "port-security", "lookup", "sg-egress", "nacl-outbound", "router", "nacl-inbound",
  // "sg-ingress", "output", "unfiltered", "flow-log", "mirror", "connection"
  std::string stage;
  // "allow", "deny", "skip" (stage does not apply, e.g. NACLs within a subnet), "tracked",
  // "untracked", "established" (a reply on a tracked connection), "copy", "record", "none"
  std::string decision;
  // The deciding object in the policy's words, e.g.
  // "sg-web ingress #1: tcp 443 from 0.0.0.0/0" or "acl-private inbound rule 100: allow tcp
  // 5432 from 10.0.1.0/24" or "acl-private inbound rule *: deny"; empty when none.
  std::string rule;
  std::string location;  // "lab.toml:40:3" of that object, when known
  std::string detail;    // one sentence more: why, what else matched, what it means
};

// What the switch must do with the same packet (for `trace --switch` and the property test).
struct SwitchProbe {
  // Where the packet enters: an interface id, or "LOCAL" (the bridge's own port, the host).
  std::string in_interface;
  // ofproto/trace flow fields without in_port, e.g.
  // "tcp,dl_src=02:00:00:00:00:0a,dl_dst=02:76:67:00:00:01,nw_src=10.0.1.10,nw_dst=10.0.2.10,
  //  nw_ttl=64,tp_src=49152,tp_dst=5432,tcp_flags=+syn"
  std::string flow;
  // ct_state for each recirculation after a ct(..., table=N), in order: {"trk,new","trk,new"}
  // for a new connection, {"trk,est,rpl","trk,est,rpl"} for a reply.
  std::vector<std::string> ct_next;
  bool delivered = false;
  std::string out_interface;  // when delivered: an interface id or "LOCAL"
  // When dropped: reg4 as the pipeline sets it (kVerdict* | detail), 0 when none is set.
  uint32_t drop_verdict = 0;
  // False when the switch cannot be asked meaningfully: the reply of a connection whose
  // original direction is dropped (there is no connection; ofproto/trace cannot express "no
  // conntrack entry" for a reply, so the probe says drop without a verdict and no ct states).
  bool comparable = true;
};

struct TraceResult {
  TraceRequest request;
  TracePacket packet;
  Verdict verdict = Verdict::kDrop;
  std::string summary;  // one line: "allow: ..." / "drop at NACL inbound acl-x rule *"
  std::vector<TraceStep> steps;
  SwitchProbe probe;
};

// Traces `request` through `policy` (validated, defaults resolved). Errors for requests that
// name no interface or address of the policy where one is needed, bad protocol specs, ports
// out of range, a source address that belongs to no interface, families that differ.
[[nodiscard]] Result<TraceResult> trace(const model::Policy& policy, const TraceRequest& request);

// A readable table: the packet, then one line per step, then the verdict.
[[nodiscard]] std::string renderText(const TraceResult& result);
// JSON text: {"verdict": "allow"|"drop", "summary": ..., "packet": {...}, "path": [steps...],
// "switch": {...} (probe)}, pretty-printed, ending with a newline.
[[nodiscard]] std::string renderJson(const TraceResult& result);
// The same document, for callers that add to it (trace --switch adds "switch_check").
[[nodiscard]] nlohmann::ordered_json toJson(const TraceResult& result);

}  // namespace vpcguard::explain
