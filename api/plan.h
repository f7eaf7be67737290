#pragma once
// What applying a config would change (`vpcguardctl plan` / `apply`, docs/api-config.md): the
// difference between two resolved policies, one entry per API action the change amounts to.
//
// Design: a file must not be a back door around IAM. Each change is named by the IAM action the
// API would need to make it (a rule added to sg-web: ec2:AuthorizeSecurityGroupIngress on sg-web's
// ARN), so ApplyConfig can require the caller to hold every one of them. Changes the API cannot
// make (the VPC, subnets, interfaces' addresses, prefix lists, quotas, port mirrors: the topology)
// need "ec2:ApplyConfig" on the object's ARN, so only a role given ApplyConfig on them may change
// the topology. A change for which the API has no modify call (a flow log's destination, a
// session's target, a group's description) is named as the delete and the create it amounts to.

#include <string>
#include <vector>

#include "translator/model.h"

namespace vpcguard::api {

struct PlannedChange {
  std::string action;    // "ec2:CreateSecurityGroup"
  std::string resource;  // ARN (resourceArn in api/actions.h)
  std::string summary;   // "sg-web: ingress +1 rule (tcp 443 from 0.0.0.0/0)"
  // More resources the same action needs, as the API action would ask for them: the groups an
  // interface is put in, the resource a flow log covers, a session's interface, target and
  // filter, a subnet whose NACL changes. ApplyConfig requires the action on each of them too.
  std::vector<std::string> also;
};

// Both policies resolved (translator/defaults.h); `current` may be empty (no VPC id: nothing
// applied yet), then everything in `desired` is created. Source locations are ignored. The order
// is deterministic: by object type (VPC, quotas, prefix lists, subnets, network ACLs, subnet
// associations, security groups, interfaces, flow logs, mirror targets, filters, sessions, port
// mirrors), then by id, then by action. Empty when the two policies are the same.
[[nodiscard]] std::vector<PlannedChange> planChanges(const model::Policy& current,
                                                     const model::Policy& desired);

}  // namespace vpcguard::api
