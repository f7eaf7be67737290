#pragma once
// resolveDefaults(): makes AWS's implicit objects explicit (see the header comment of model.h),
// so the translator never has to know about them.
//
// A config overrides a default by defining it itself:
//  - a security group named "default" (AWS's reserved name for the VPC's default group) IS the
//    default group: it keeps its own id and exactly the rules written for it;
//  - a network ACL with is_default = true (the field AWS's DescribeNetworkAcls returns) IS the
//    default NACL.
// Otherwise the defaults get the ids model::kDefaultSecurityGroupId / kDefaultNetworkAclId, which
// config rules may already reference.
//
// A traffic mirror session without virtual_network_id gets one no other session uses, as AWS picks
// a unique one, but stable, so a reload or a restart keeps the VNI a monitoring appliance may
// filter on: start from virtualNetworkIdHash() of the session id (24-bit FNV-1a) and, while that
// VNI is taken (by an explicit virtual_network_id or one assigned before), take the next one
// (modulo 2^24). Sessions are assigned in order of session id, so the result does not depend on
// the order of the config; adding a session may move only sessions whose ids sort after it and
// whose hashes collide. Explicit VNIs are kept as written, duplicates included (AWS allows them).

#include <cstdint>
#include <string_view>

#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard {

// Expects a policy that validatePolicy() accepted; fails only on what validation also reports
// (two defaults, a reserved id used by another object), so callers need not trust the order.
[[nodiscard]] Result<model::Policy> resolveDefaults(model::Policy policy);

// 24-bit FNV-1a of a traffic mirror session id: where the search for its VNI starts.
[[nodiscard]] uint32_t virtualNetworkIdHash(std::string_view session_id);

// The rules AWS gives the VPC's default objects; exposed for tests and docs.
[[nodiscard]] model::SecurityGroup makeDefaultSecurityGroup(const model::Vpc& vpc);
[[nodiscard]] model::NetworkAcl makeDefaultNetworkAcl(const model::Vpc& vpc);

// AWS's egress of a new group: all protocols to 0.0.0.0/0 and to ::/0.
[[nodiscard]] std::vector<model::SecurityGroupRule> allowAllEgressRules(
    const model::SourceLocation& location);

}  // namespace vpcguard
