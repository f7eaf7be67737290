#include "daemon/log_level_command.h"

#include <chrono>

#include "daemon/control_socket.h"
#include "daemon/status.h"

namespace vpcguard {

int runLogLevelCommand(const LogLevelCommandOptions& options, std::ostream& out,
                       std::ostream& err) {
  const std::string path = options.socket.empty()
                               ? defaultControlSocket(defaultStatusFile(options.bridge),
                                                      options.bridge)
                               : options.socket;
  const std::string request = options.level.empty() ? "log-level" : "log-level " + options.level;
  auto reply = controlRequest(path, request, std::chrono::milliseconds(options.timeout_ms));
  if (!reply) {
    err << "vpcguardctl: " << reply.error().message << "\n";
    return 2;
  }
  if (reply->rfind("ok ", 0) == 0) {
    out << reply->substr(3) << "\n";
    return 0;
  }
  if (reply->rfind("error ", 0) == 0) {
    err << "vpcguardctl: vpcguardd refused: " << reply->substr(6) << "\n";
    return 1;
  }
  err << "vpcguardctl: unexpected reply from " << path << ": " << *reply << "\n";
  return 2;
}

}  // namespace vpcguard
