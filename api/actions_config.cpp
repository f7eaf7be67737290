// ApplyConfig and PlanConfig (docs/api-config.md): `vpcguardctl apply|plan FILE|DIR` sends the
// config's documents; the policy they describe replaces the database's whole (apply) or is only
// compared with it (plan).
//
// Design: a config is loaded exactly as vpcguardd --config loads a file
// (config::loadPolicyFromDocuments: parse, validate, resolve defaults), so a file is valid for
// the API when and only when it is valid for the daemon, with the same file:line:col messages.
// A file must not be a way around IAM: besides ec2:ApplyConfig on the VPC, apply needs every
// action its plan (api/plan.h) amounts to, on the resource it touches, so a role without
// ec2:CreateFlowLogs cannot add a flow log by writing it into a file. Only permissions() and
// run() see the parameters, so the config is loaded in each; a config that does not load needs
// only the base permission (the caller learns it is invalid only once authorized for it).

#include <algorithm>

#include "api/action_registry.h"
#include "api/params.h"
#include "api/plan.h"
#include "daemon/config_loader.h"

namespace vpcguard::api {
namespace {

struct Loaded {
  model::Policy desired;
  std::vector<PlannedChange> changes;
};

ApiResult<std::vector<config::Document>> readDocuments(const Json& params) {
  auto list = optionalStructure(params, "Documents", /*array=*/true);
  if (!list) return tl::unexpected(list.error());
  if (list->is_null() || list->empty()) {
    return apiError("MissingParameter", "The request must contain the parameter Documents");
  }
  std::vector<config::Document> documents;
  for (const Json& entry : *list) {
    auto name = requiredString(entry, "Name");
    if (!name) return tl::unexpected(name.error());
    auto text = requiredString(entry, "Text");
    if (!text) return tl::unexpected(text.error());
    documents.push_back(config::Document{*name, *text});
  }
  return documents;
}

// The config as the desired policy, and what it changes in `current`.
ApiResult<Loaded> load(const model::Policy& current, const Json& params) {
  auto documents = readDocuments(params);
  if (!documents) return tl::unexpected(documents.error());
  auto policy = config::loadPolicyFromDocuments(*documents);
  if (!policy) {
    const config::LoadError& error = policy.error();
    std::string message;
    if (error.io) message = error.io->message;
    for (const Diagnostic& d : error.diagnostics) {
      if (!message.empty()) message += '\n';
      message += formatDiagnostic(d);
    }
    return apiError("InvalidConfig", message);
  }
  if (!current.vpc.id.empty() && policy->vpc.id != current.vpc.id) {
    return apiError("InvalidParameterValue",
                    "The config describes VPC '" + policy->vpc.id + "', but the state holds '" +
                        current.vpc.id + "': a config replaces the state of its own VPC only");
  }
  // Every ARN (and every ARN-scoped Deny) is built from the VPC's account and region: a config
  // must not move the resources out from under the IAM policies.
  if (!current.vpc.id.empty() &&
      (policy->vpc.account_id != current.vpc.account_id ||
       policy->vpc.region != current.vpc.region)) {
    return apiError("InvalidParameterValue",
                    "The config puts VPC '" + current.vpc.id + "' in account '" +
                        policy->vpc.account_id + "', region '" + policy->vpc.region +
                        "', but the state has account '" + current.vpc.account_id +
                        "', region '" + current.vpc.region +
                        "': the account and region of a VPC cannot change through the API");
  }
  Loaded out;
  out.changes = planChanges(current, *policy);
  out.desired = std::move(*policy);
  return out;
}

std::string vpcArn(const model::Policy& current, const Loaded* loaded) {
  if (!current.vpc.id.empty()) return resourceArn(current.vpc, "vpc", current.vpc.id);
  if (loaded != nullptr) return resourceArn(loaded->desired.vpc, "vpc", loaded->desired.vpc.id);
  return "*";
}

ApiResult<std::vector<Permission>> planPermissions(const model::Policy& current,
                                                   const Json& params) {
  if (auto documents = readDocuments(params); !documents) {
    return tl::unexpected(documents.error());
  }
  auto loaded = load(current, params);
  return std::vector<Permission>{
      {"ec2:PlanConfig", vpcArn(current, loaded ? &*loaded : nullptr)}};
}

ApiResult<std::vector<Permission>> applyPermissions(const model::Policy& current,
                                                    const Json& params) {
  if (auto documents = readDocuments(params); !documents) {
    return tl::unexpected(documents.error());
  }
  auto loaded = load(current, params);
  std::vector<Permission> needed{
      {"ec2:ApplyConfig", vpcArn(current, loaded ? &*loaded : nullptr)}};
  if (loaded) {
    const auto need = [&](const std::string& action, const std::string& resource) {
      if (std::none_of(needed.begin(), needed.end(), [&](const Permission& q) {
            return q.action == action && q.resource == resource;
          })) {
        needed.push_back(Permission{action, resource});
      }
    };
    for (const PlannedChange& change : loaded->changes) {
      need(change.action, change.resource);
      for (const std::string& resource : change.also) need(change.action, resource);
    }
  }
  return needed;
}

Json changesJson(const std::vector<PlannedChange>& changes) {
  Json list = Json::array();
  for (const PlannedChange& c : changes) {
    list.push_back(Json{{"Action", c.action}, {"Resource", c.resource}, {"Summary", c.summary}});
  }
  return list;
}

ApiResult<ActionOutcome> planRun(const model::Policy& current, const Json& params,
                                 const ActionContext& /*context*/) {
  auto loaded = load(current, params);
  if (!loaded) return tl::unexpected(loaded.error());
  ActionOutcome outcome;
  outcome.result = Json{{"Changes", changesJson(loaded->changes)}, {"Applied", false}};
  return outcome;
}

ApiResult<ActionOutcome> applyRun(const model::Policy& current, const Json& params,
                                  const ActionContext& /*context*/) {
  auto loaded = load(current, params);
  if (!loaded) return tl::unexpected(loaded.error());
  ActionOutcome outcome;
  const bool changed = !loaded->changes.empty();
  outcome.result = Json{{"Changes", changesJson(loaded->changes)}, {"Applied", changed}};
  if (changed) outcome.policy = std::move(loaded->desired);
  return outcome;
}

}  // namespace

std::vector<ActionSpec> configActions() {
  return {
      ActionSpec{"PlanConfig", false, planPermissions, planRun},
      ActionSpec{"ApplyConfig", true, applyPermissions, applyRun},
  };
}

}  // namespace vpcguard::api
