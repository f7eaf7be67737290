#pragma once
// The vpcguardctl subcommands of explain/: trace, lint and stats. Each loads the policy (a file
// or directory, or the one the running vpcguardd was started with), and where asked reaches
// the switch the daemon enforces on (from the daemon's status file unless given explicitly).
// docs/explain.md is their user documentation.
#include <cstdint>
#include <iosfwd>
#include <string>

#include "explain/trace.h"

namespace vpcguard::explain {

// Where the switch is. Empty fields come from vpcguardd's status file for `bridge`.
struct SwitchOptions {
  std::string bridge = "br-int";
  std::string status_file;  // default /var/run/vpcguard/<bridge>.status.json
  std::string openflow;     // e.g. unix:/var/run/openvswitch/br-int.mgmt
  std::string ovsdb;        // e.g. unix:/var/run/openvswitch/db.sock
  // ovs-vswitchd's unixctl socket; default: found in the directory of the OpenFlow socket
  std::string vswitchd_ctl;
  int timeout_ms = 5000;    // every call to the switch
};

// Exit statuses shared by the three commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;      // bad request, policy with errors
inline constexpr int kExitNoSwitch = 2;   // policy or switch unreachable
inline constexpr int kExitDisagree = 3;   // trace: the switch does something else

struct TraceCommandOptions {
  TraceRequest request;
  std::string config;  // file or dir; empty with --switch: the daemon's config
  bool use_switch = false;
  SwitchOptions switch_options;
  std::string output = "text";  // text | json
};
[[nodiscard]] int runTraceCommand(const TraceCommandOptions& options, std::ostream& out,
                                  std::ostream& err);

struct LintCommandOptions {
  std::string path;
  bool use_switch = false;  // zero-hit findings from the switch's counters
  SwitchOptions switch_options;
  uint32_t window_seconds = 3600;
  std::string output = "text";  // text | json
};
// Exit: lintExitStatus() (0 / 1 warning / 2 error), kLintCannotRun when nothing was linted.
inline constexpr int kLintCannotRun = 3;
[[nodiscard]] int runLintCommand(const LintCommandOptions& options, std::ostream& out,
                                 std::ostream& err);

struct StatsCommandOptions {
  std::string config;  // empty: the daemon's config
  SwitchOptions switch_options;
  std::string output = "table";  // table | json | prometheus
};
[[nodiscard]] int runStatsCommand(const StatsCommandOptions& options, std::ostream& out,
                                  std::ostream& err);

}  // namespace vpcguard::explain
