#pragma once
// `vpcguardctl flow-logs DIR`: reads the flow-log files a `file:///DIR` destination holds
// (flowlogs/reader.h), filters them and prints them as a table, JSON lines or the raw text.
#include <iosfwd>
#include <string>

namespace vpcguard {

struct FlowLogsCommandOptions {
  std::string dir;
  std::string interface_id;  // empty = all
  std::string action;        // "", "ACCEPT" or "REJECT"
  std::string since;         // Unix seconds or ISO 8601; empty = no bound
  std::string until;
  std::string flow_log_id;
  std::string output = "table";  // table, json or text
};

// Exit codes: 0 all read; 1 some file or line could not be read (each named on `err`, the rest
// printed); 2 nothing to read (missing directory, bad option value).
[[nodiscard]] int runFlowLogsCommand(const FlowLogsCommandOptions& options, std::ostream& out,
                                     std::ostream& err);

}  // namespace vpcguard
