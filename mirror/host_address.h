#pragma once
// An IPv4 address on a network device in ovs-vswitchd's network namespace, over rtnetlink
// (libnl-route): the source address ovs-vswitchd's router needs for the routes of local mirror
// targets (mirror/host_plan.h).

#include <optional>
#include <string>

#include "translator/result.h"

namespace vpcguard::mirror {

// Puts `address` ("169.254.118.1/24") on `device` in `netns` (nullopt: ours); nothing changes
// when it is there already.
[[nodiscard]] Result<void> addDeviceAddress(const std::optional<std::string>& netns,
                                            const std::string& device, const std::string& address);
// Removes it; no error when it is not there.
[[nodiscard]] Result<void> removeDeviceAddress(const std::optional<std::string>& netns,
                                               const std::string& device,
                                               const std::string& address);

}  // namespace vpcguard::mirror
