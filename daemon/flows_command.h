#pragma once
// `vpcguardctl flows FILE|DIR`: prints the OpenFlow flows the translator makes for a policy,
// as `ovs-ofctl add-flows` text, without touching any switch. Interfaces are taken as attached on
// OpenFlow ports 1..N in config order (what the golden files under tests/golden/ record).
#include <iosfwd>
#include <string>

namespace vpcguard {

struct FlowsCommandOptions {
  std::string path;
  bool stats_only = false;  // print the counts only
};

[[nodiscard]] int runFlowsCommand(const FlowsCommandOptions& options, std::ostream& out,
                                  std::ostream& err);

}  // namespace vpcguard
