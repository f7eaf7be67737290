#include "daemon/check_command.h"

#include <ostream>

#include "daemon/config_loader.h"

namespace vpcguard::config {

namespace {
std::string count(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}
// ", 2 flow logs": optional objects are named only when the config has some.
std::string countIfAny(size_t n, const std::string& noun) {
  return n == 0 ? "" : ", " + count(n, noun);
}
}  // namespace

std::string summarize(const model::Policy& policy) {
  size_t group_rules = 0;
  for (const auto& g : policy.security_groups) {
    group_rules += g.ingress.size() + g.egress.size();
  }
  size_t acl_entries = 0;
  for (const auto& a : policy.network_acls) {
    acl_entries += a.entries.size();
  }
  return count(policy.subnets.size(), "subnet") + ", " +
         count(policy.network_interfaces.size(), "network interface") + ", " +
         count(policy.security_groups.size(), "security group") + " (" +
         count(group_rules, "rule") + "), " + count(policy.prefix_lists.size(), "prefix list") +
         ", " + count(policy.network_acls.size(), "network ACL") + " (" +
         (acl_entries == 1 ? std::string("1 entry") : std::to_string(acl_entries) + " entries") +
         ")" + countIfAny(policy.flow_logs.size(), "flow log") +
         countIfAny(policy.traffic_mirror_sessions.size(), "traffic mirror session") +
         countIfAny(policy.port_mirrors.size(), "port mirror");
}

int runCheck(const std::string& path, std::ostream& out, std::ostream& err) {
  auto policy = loadPolicy(path);
  if (!policy) {
    const LoadError& e = policy.error();
    if (e.io) {
      err << "vpcguardctl check: " << e.io->message << "\n";
      return kCheckIoError;
    }
    for (const auto& d : e.diagnostics) {
      err << formatDiagnostic(d) << "\n";
    }
    err << path << ": " << e.diagnostics.size() << " error(s); nothing was applied\n";
    return kCheckInvalid;
  }
  out << path << ": OK: " << summarize(*policy) << " (VPC defaults included)\n";
  return kCheckOk;
}

}  // namespace vpcguard::config
