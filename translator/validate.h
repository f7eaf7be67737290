#pragma once
// validatePolicy(): every check AWS would make when the objects of a Policy were created, plus
// the ones vpcguard needs (unique MACs, addresses off the subnet's reserved ones). Returns ALL
// problems at once, each located by the model's SourceLocations (field_locations first).

#include <set>
#include <string>
#include <vector>

#include "translator/diagnostic.h"
#include "translator/model.h"

namespace vpcguard {

// "all", "tcp", "udp", "icmp", "icmpv6" or "protocol N": how errors and explanations name a
// protocol number.
[[nodiscard]] std::string protocolName(int protocol);

// `already_reported`: field paths the loader found broken (a malformed CIDR is stored as a
// placeholder). Checks that read such a field, or anything under it, are skipped so one mistake
// is reported once and not again as, say, "subnet outside the VPC".
[[nodiscard]] std::vector<Diagnostic> validatePolicy(
    const model::Policy& policy, const std::set<std::string>& already_reported = {});

}  // namespace vpcguard
