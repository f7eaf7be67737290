#pragma once
// Deadlines for calls that block inside a library we do not control.
//
// Open vSwitch's vconn calls (transact, bundle, dump) wait for the switch without a deadline: a
// stopped or hung ovs-vswitchd keeps the socket open and never answers, and the caller would
// wait forever. A DeadlineGuard ends such a wait from outside: armed with a socket and a
// deadline before the call, it shuts the socket down (shutdown(2), both ways) if the call has
// not returned by then, so the library sees the connection closed and returns an error. The
// connection is then finished; the owner connects again. One watcher thread serves every guard
// of the process and sleeps while none is armed.
#include <chrono>
#include <cstdint>
#include <set>
#include <string>

namespace vpcguard::ovs {

class DeadlineGuard {
 public:
  using Clock = std::chrono::steady_clock;
  // Watches `fd` until `deadline`; fd < 0 watches nothing.
  DeadlineGuard(int fd, Clock::time_point deadline);
  ~DeadlineGuard();  // disarms: once it returns, the watcher no longer touches the fd
  DeadlineGuard(const DeadlineGuard&) = delete;
  DeadlineGuard& operator=(const DeadlineGuard&) = delete;

  // True if the deadline passed and the socket was shut down.
  [[nodiscard]] bool fired() const;

 private:
  uint64_t id_ = 0;
};

// The sockets this process has open, by inode (from /proc/self/fd: "socket:[INODE]"). Inodes,
// not descriptor numbers: a number closed and reused by another thread meanwhile is a new socket.
[[nodiscard]] std::set<uint64_t> openSockets();
// The descriptor of a socket opened since `before` whose peer is `target` ("unix:PATH", the
// directory compared after resolving symbolic links, or "tcp:IP:PORT"); -1 if there is none or
// the target is of another kind (ssl:, a host name). Learns the socket a library opened for a
// connection; callers serialise their opens so that two connections to one target never appear
// in the same window.
[[nodiscard]] int findPeerSocket(const std::string& target, const std::set<uint64_t>& before);

}  // namespace vpcguard::ovs
