#include "daemon/check_command.h"

#include <ostream>

#include "daemon/config_loader.h"

namespace vpcguard::config {

std::string summarize(const model::Policy& policy) {
  size_t group_rules = 0;
  for (const auto& g : policy.security_groups) {
    group_rules += g.ingress.size() + g.egress.size();
  }
  size_t acl_entries = 0;
  for (const auto& a : policy.network_acls) {
    acl_entries += a.entries.size();
  }
  return std::to_string(policy.subnets.size()) + " subnets, " +
         std::to_string(policy.network_interfaces.size()) + " network interfaces, " +
         std::to_string(policy.security_groups.size()) + " security groups (" +
         std::to_string(group_rules) + " rules), " + std::to_string(policy.prefix_lists.size()) +
         " prefix lists, " + std::to_string(policy.network_acls.size()) + " network ACLs (" +
         std::to_string(acl_entries) + " entries)";
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
