#pragma once
// Asserting verdicts with `ovs-appctl ofproto/trace`. A trace through ct(..., table=N) has
// several passes (one per recirculation), each ending in its own "Datapath actions:" line; the
// packet leaves through whatever any pass outputs, and the last pass says what finally happens.

#include <ostream>
#include <string>
#include <vector>

#include "tests/harness/ovs_sandbox.h"
#include "translator/result.h"

namespace vpcguard::test {

struct TraceResult {
  std::string datapath_actions;           // of the final pass, e.g. "2" or "drop"
  bool dropped = true;                    // no pass outputs the packet anywhere
  std::vector<int> output_ports;          // datapath port numbers output by any pass, in order
  std::vector<std::string> passes;        // "Datapath actions" of every pass, first to last
  std::string raw;                        // the whole trace, for failure messages
};

// Parses ofproto/trace output. Error when it has no "Datapath actions:" line at all.
[[nodiscard]] Result<TraceResult> parseTrace(const std::string& raw);

// ofproto/trace BRIDGE FLOW [--ct-next STATE]...: `ct_next` gives the ct_state of each
// recirculation after a ct() action, in order (e.g. {"trk,new"} or {"trk,est"}).
[[nodiscard]] Result<TraceResult> trace(const OvsSandbox& sandbox, const std::string& bridge,
                                        const std::string& flow,
                                        const std::vector<std::string>& ct_next = {});

// The datapath port number ovs-vswitchd gave `port` (from dpif/show), which is what
// TraceResult::output_ports holds; differs from the OpenFlow port number.
[[nodiscard]] Result<int> datapathPort(const OvsSandbox& sandbox, const std::string& bridge,
                                       const std::string& port);

// gtest prints this when an assertion on a TraceResult fails.
void PrintTo(const TraceResult& trace, std::ostream* os);

}  // namespace vpcguard::test
