#pragma once
// Asking the switch what it does with a packet: `ofproto/trace` through ovs-vswitchd's unixctl
// socket, and reading its answer (delivered where, or dropped with which reg4 verdict). Used by
// `vpcguardctl trace --switch` to check the policy-level trace against the flows actually
// installed, and by the tests.
//
// A trace through ct(..., table=N) has several passes (one per recirculation), each ending in
// its own "Datapath actions:" line.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "explain/trace.h"
#include "translator/result.h"

namespace vpcguard::explain {

// OpenFlow's LOCAL port (the bridge's own), as OfprotoTrace reports it and as the "LOCAL" entry
// of the ofports maps below is expected to hold it.
inline constexpr int kLocalOfport = 0xfffe;

struct OfprotoTrace {
  std::vector<std::string> passes;  // "Datapath actions" of every pass, first to last
  std::string datapath_actions;     // of the final pass ("drop", "3", "ct(zone=2),recirc(0x1)")
  // OpenFlow ports that an executed `output:N` / `output(port=N,...)` / `in_port` / LOCAL
  // action sent the packet to, in order, any pass (LOCAL as 65534). Mirror copies (output to
  // the mirror tunnel port) are included; callers look for the port they expect.
  std::vector<int> output_ofports;
  // The subset of output_ofports made by truncating outputs (`output(port=N,max_len=L)`), in
  // order. vpcguard truncates only its traffic-mirror copies (docs/mirroring.md), so these are
  // copies, never deliveries: compare() does not count them as the packet being delivered.
  std::vector<int> truncated_ofports;
  // reg4 in the last "Final flow:" line that mentions it (0 when none does).
  uint32_t reg4 = 0;
  std::string raw;  // the whole text, for messages
};

// Parses ofproto/trace output. Error when it has no "Datapath actions:" line at all.
[[nodiscard]] Result<OfprotoTrace> parseOfprotoTrace(const std::string& raw);

// The datapath ports that one pass's datapath actions output to, in order: the userspace
// datapath writes an output as the bare port number ("ct(commit,zone=1),2,3" -> {2, 3}); these
// are datapath port numbers, not OpenFlow ones (dpif/show maps them).
[[nodiscard]] std::vector<int> datapathOutputPorts(const std::string& datapath_actions);

// The arguments of `ofproto/trace BRIDGE FLOW [--ct-next STATE]...` for a probe:
// {bridge, "in_port=<ofport>,<flow>", "--ct-next", "trk,new", ...}. `ofports` maps interface
// ids to OpenFlow port numbers; "LOCAL" is the bridge's own port. Error if the probe's
// in_interface has no port.
[[nodiscard]] Result<std::vector<std::string>> ofprotoTraceArgs(
    const std::string& bridge, const SwitchProbe& probe, const std::map<std::string, int>& ofports);

// What the switch did, compared with what the probe expects.
struct SwitchComparison {
  bool agree = false;
  bool delivered = false;        // the switch output the packet to the expected port
  uint32_t switch_reg4 = 0;      // when dropped
  std::string explanation;       // "switch agrees: delivered to eni-db1 (port 3)" or why not
};
// `out_ofport` is the OpenFlow port of probe.out_interface (ignored when not delivered).
// Agreement: the probe expects delivery and the switch output to that port; or the probe
// expects a drop, the switch output to no port but the mirror tunnel, and reg4 equals
// probe.drop_verdict (when that is not 0).
// Mirror copies (OfprotoTrace::truncated_ofports) never count as a delivery, nor do they break
// an expected drop: the egress side copies a packet as it leaves its source (after SG egress and
// NACL outbound), so a packet the destination's NACL or group then drops was copied already.
// `delivered` is true when the switch delivered the packet to the expected port (expected
// delivery) or to any port (expected drop: a disagreement).
[[nodiscard]] SwitchComparison compare(const SwitchProbe& probe, const OfprotoTrace& trace,
                                       int out_ofport);

// Runs the trace on ovs-vswitchd's unixctl socket (ovs-plugin/appctl.h) with a deadline.
[[nodiscard]] Result<OfprotoTrace> runOfprotoTrace(const std::string& vswitchd_socket,
                                                   const std::vector<std::string>& args,
                                                   std::chrono::milliseconds timeout);

}  // namespace vpcguard::explain
