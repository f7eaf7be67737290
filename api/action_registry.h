#pragma once
// Internal to api/: the action table is assembled from one list per family (actions.cpp).

#include <vector>

#include "api/actions.h"

namespace vpcguard::api {

std::vector<ActionSpec> securityGroupActions();  // actions_sg.cpp
std::vector<ActionSpec> networkAclActions();     // actions_nacl.cpp
// DescribeVpcs, DescribeSubnets, DescribeNetworkInterfaces, DescribeManagedPrefixLists,
// ModifyNetworkInterfaceAttribute
std::vector<ActionSpec> interfaceActions();      // actions_eni.cpp
std::vector<ActionSpec> flowLogActions();        // actions_flowlogs.cpp
std::vector<ActionSpec> trafficMirrorActions();  // actions_mirror.cpp
std::vector<ActionSpec> configActions();         // actions_config.cpp: ApplyConfig, PlanConfig

}  // namespace vpcguard::api
