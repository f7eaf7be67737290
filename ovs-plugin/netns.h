#pragma once
// ovs-vswitchd's network namespace. On a normal host it is the host's (ours); in the lab and in
// tests it runs inside a "hypervisor" namespace. What must happen where the switch is (the
// flow-log collector's loopback socket, the mirror host address) is done in its namespace.

#include <functional>
#include <optional>
#include <string>

#include "translator/result.h"

namespace vpcguard::ovs {

// "/proc/<pid>/ns/net" of ovs-vswitchd (from ovs-vswitchd.pid in `rundir`), nullopt when it is
// our own namespace or unknown.
[[nodiscard]] std::optional<std::string> vswitchdNetns(const std::string& rundir);

// Runs `fn` with this thread in `netns` (nullopt: where it is) and comes back. Sockets `fn`
// opens stay in that namespace. Error when the namespace cannot be entered (`fn` did not run).
// Failing to come back aborts the process: going on in the wrong namespace would be worse.
[[nodiscard]] Result<void> inNetns(const std::optional<std::string>& netns,
                                   const std::function<void()>& fn);

}  // namespace vpcguard::ovs
