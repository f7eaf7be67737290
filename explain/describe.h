#pragma once
// How trace, lint and stats name the objects of a policy, so the three commands say the same
// thing about the same rule:
//   "sg-web ingress #1: tcp 443 from 0.0.0.0/0"            (#n counts from 1, config order)
//   "sg-db ingress #2: tcp 5432 from sg-web"
//   "acl-private outbound rule 100: allow tcp 1024-65535 to 10.0.1.0/24"
//   "acl-private inbound rule *: deny all"
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "translator/model.h"
#include "translator/validate.h"

namespace vpcguard::explain {

// Protocol names are translator/validate.h's protocolName(), as in config errors.
// "tcp 443", "tcp 1024-65535", "tcp (all ports)", "icmp type 8 code any", "all", "proto 47".
[[nodiscard]] std::string describeMatch(int protocol, const std::optional<model::PortRange>& ports,
                                        const std::optional<model::IcmpTypeCode>& icmp);
// "0.0.0.0/0", "sg-web", "pl-123".
[[nodiscard]] std::string describePeer(const model::Peer& peer);

[[nodiscard]] std::string sgRuleName(const std::string& group_id, bool egress, size_t position);
[[nodiscard]] std::string describeSgRule(const std::string& group_id, bool egress,
                                         size_t position, const model::SecurityGroupRule& rule);
[[nodiscard]] std::string naclEntryName(const std::string& nacl_id, bool egress, int rule_number);
[[nodiscard]] std::string describeNaclEntry(const std::string& nacl_id,
                                            const model::NetworkAclEntry& entry);
[[nodiscard]] std::string describeNaclStar(const std::string& nacl_id, bool egress);

// The entries of one direction of a NACL, lowest rule number first (the order they decide in).
[[nodiscard]] std::vector<const model::NetworkAclEntry*> naclEntriesInOrder(
    const model::NetworkAcl& nacl, bool egress);

// nlohmann::json text, indented by 2, ending in a newline. Strings that are not UTF-8 (a file
// name can be anything) are written with U+FFFD instead of throwing.
[[nodiscard]] std::string dumpJson(const nlohmann::json& json);
[[nodiscard]] std::string dumpJson(const nlohmann::ordered_json& json);

// "lab.toml:12:3", or "" when unknown.
[[nodiscard]] std::string formatLocation(const model::SourceLocation& location);

}  // namespace vpcguard::explain
