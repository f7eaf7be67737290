#pragma once
// `vpcguardctl flows FILE|DIR`: prints the OpenFlow flows the translator makes for a policy,
// as `ovs-ofctl add-flows` text, without touching any switch. Interfaces are taken as attached on
// OpenFlow ports 1..N in config order (what the golden files under tests/golden/ record).
#include <iosfwd>
#include <string>

#include "translator/model.h"
#include "translator/translate.h"

namespace vpcguard {

// The translation of `policy` with no switch: interfaces on OpenFlow ports 1..N in config order,
// indices as a fresh start assigns them, conjunction ids from a fresh allocator (what a daemon
// started on this policy gives, see translator/rule_ids.h).
[[nodiscard]] Result<Translation> translateDetached(const model::Policy& policy);

struct FlowsCommandOptions {
  std::string path;
  bool stats_only = false;  // print the counts only
};

[[nodiscard]] int runFlowsCommand(const FlowsCommandOptions& options, std::ostream& out,
                                  std::ostream& err);

}  // namespace vpcguard
