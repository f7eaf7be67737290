#include "api/actions.h"

#include "api/action_registry.h"

namespace vpcguard::api {

std::string resourceArn(const model::Vpc& vpc, std::string_view type, std::string_view id) {
  std::string arn = "arn:vpcguard:ec2:";
  arn += vpc.region;
  arn += ':';
  arn += vpc.account_id;
  arn += ':';
  arn += type;
  arn += '/';
  arn += id;
  return arn;
}

const std::vector<ActionSpec>& allActions() {
  static const std::vector<ActionSpec> actions = [] {
    std::vector<ActionSpec> all;
    for (auto family : {securityGroupActions, networkAclActions, interfaceActions, flowLogActions,
                        trafficMirrorActions, configActions}) {
      auto more = family();
      all.insert(all.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
    }
    return all;
  }();
  return actions;
}

const ActionSpec* findAction(std::string_view name) {
  for (const auto& action : allActions()) {
    if (action.name == name) return &action;
  }
  return nullptr;
}

}  // namespace vpcguard::api
