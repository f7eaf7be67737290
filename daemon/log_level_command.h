#pragma once
// `vpcguardctl log-level [LEVEL]`: reads or sets the log level of a running vpcguardd through its
// control socket (daemon/control_socket.h).
#include <ostream>
#include <string>

namespace vpcguard {

struct LogLevelCommandOptions {
  std::string level;            // empty: print the current level
  std::string bridge = "br-int";
  std::string socket;           // default /var/run/vpcguard/<bridge>.ctl
  int timeout_ms = 5000;
};

// Exit codes: 0 done, 1 the daemon refused (unknown level), 2 no daemon to ask (not running,
// no socket, permission denied, no reply).
int runLogLevelCommand(const LogLevelCommandOptions& options, std::ostream& out,
                       std::ostream& err);

}  // namespace vpcguard
