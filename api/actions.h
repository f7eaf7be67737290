#pragma once
// What each API action does to the desired state, as pure functions on model::Policy (no I/O):
// the server (api/server.h) authorizes, runs one of these on the current policy, validates the
// result with the same rules as a config file (translator/validate.h) and commits it.
//
// Design: one table of actions. Each has the IAM action name ("ec2:" + Action), whether it
// changes state, a function that names the resources it touches (for IAM, before anything runs:
// an action the caller may not do on any one of them is refused) and the function that runs it.
// Errors use AWS's codes and messages ("InvalidGroup.NotFound: The security group 'sg-x' does
// not exist"), so AWS users recognise them.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/request.h"
#include "translator/model.h"

namespace vpcguard::api {

// "arn:vpcguard:ec2:<region>:<account>:<type>/<id>" for a resource of the policy's VPC.
[[nodiscard]] std::string resourceArn(const model::Vpc& vpc, std::string_view type,
                                      std::string_view id);

// One (IAM action, resource ARN) pair a request needs permission for.
struct Permission {
  std::string action;    // "ec2:AuthorizeSecurityGroupIngress"
  std::string resource;  // ARN, or "*" for actions on no particular resource (Describe*)
};

// What running an action gives: the new policy (state-changing actions) and the AWS-shaped
// result ({"Return": true, ...}, {"GroupId": "sg-..."}, {"SecurityGroups": [...]}).
struct ActionOutcome {
  std::optional<model::Policy> policy;  // set = commit this (resolved, not yet validated)
  Json result = Json::object();
};

// Context a handler may need besides the policy.
struct ActionContext {
  // Makes a fresh id with the given prefix ("sg", "acl", "fl", "tmt", ...): "sg-" + 17 hex
  // digits, as AWS's. Tests pass a deterministic one.
  std::function<std::string(std::string_view prefix)> new_id;
};

struct ActionSpec {
  std::string name;     // "AuthorizeSecurityGroupIngress"
  bool mutating = false;
  // The permissions needed; an ApiError when the parameters are malformed or the resource does
  // not exist (then nothing is authorized and the error is returned as is).
  std::function<tl::expected<std::vector<Permission>, ApiError>(const model::Policy&,
                                                                const Json& parameters)>
      permissions;
  std::function<tl::expected<ActionOutcome, ApiError>(const model::Policy&, const Json& parameters,
                                                      const ActionContext&)>
      run;
};

// Every action the API serves, by name. nullptr for an unknown one.
[[nodiscard]] const ActionSpec* findAction(std::string_view name);
[[nodiscard]] const std::vector<ActionSpec>& allActions();

}  // namespace vpcguard::api
