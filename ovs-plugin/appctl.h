#pragma once
// Control of ovs-vswitchd (and any other OVS daemon) through its unixctl socket: what
// `ovs-appctl -t SOCKET COMMAND ARGS...` does, e.g. `ovs/route/add` for the mirror tunnel's
// underlay routes. Through OVS's own jsonrpc/stream library (src/appctl_shim.c), with a
// deadline: a hung ovs-vswitchd makes a call fail after `timeout` instead of blocking.
//
// The socket is a path, so this works from a process in another network namespace than
// ovs-vswitchd (vpcguardd in the host namespace, ovs-vswitchd in a "hypervisor" one).
// Blocking: the caller's thread waits up to `timeout`. Single-threaded use, like the rest of
// the OVS library (see ovs-plugin/src/of_shim.h).

#include <chrono>
#include <string>
#include <vector>

#include "translator/result.h"

namespace vpcguard::ovs {

// Runs `command` with `args` on the unixctl server at `socket_path` (absolute; a relative path
// is taken relative to OVS's run directory, as OVS does) and returns its output as the server
// sent it (usually ending in a newline). Errors, with `ovs-appctl -t SOCKET COMMAND ARGS` as
// context:
//  - the server's error reply, without its trailing newline ("Error while inserting route.");
//  - "cannot connect: No such file or directory" / "... Connection refused" (no server);
//  - "no reply within N ms" (hung server); "cannot connect: the server is not accepting
//    connections ..." (a hung server whose accept queue earlier calls have filled);
//  - "the server closed the connection without replying".
[[nodiscard]] Result<std::string> appctl(const std::string& socket_path, const std::string& command,
                                         const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout);

// ovs-vswitchd's control socket in `ovs_rundir` (where it was started with --pidfile, e.g.
// /var/run/openvswitch): reads ovs-vswitchd.pid there and returns
// <ovs_rundir>/ovs-vswitchd.<pid>.ctl if that socket exists. Errors say which of the pid file,
// its content or the socket is missing or wrong.
[[nodiscard]] Result<std::string> vswitchdControlSocket(const std::string& ovs_rundir);

}  // namespace vpcguard::ovs
