#pragma once
// A private Open vSwitch for one test: its own ovsdb-server and `ovs-vswitchd --enable-dummy`
// in a temp dir, with ovs-vswitchd inside a network namespace of its own ("hypervisor"
// namespace). Why a namespace: two userspace-datapath switches cannot share one (the second
// fails to create its "ovs-netdev" tap device), and `ctest -j2` runs sandboxes side by side.
//
// Leftover naming (for tests/cleanup-leftovers.sh): dirs /tmp/vgt.*, namespaces vgt-*,
// veths vgt*. Both daemons are our children with PDEATHSIG, so they die with the test.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "tests/harness/process.h"
#include "translator/result.h"

namespace vpcguard::test {

// Why a sandbox cannot run here (not root, no ovs-vswitchd, no `ip netns`), or nullopt. Tests
// skip with this message only then; everywhere else a failing start() is a test failure.
[[nodiscard]] std::optional<std::string> sandboxUnavailableReason();

class OvsSandbox {
 public:
  [[nodiscard]] static Result<std::unique_ptr<OvsSandbox>> start();
  ~OvsSandbox();
  OvsSandbox(const OvsSandbox&) = delete;
  OvsSandbox& operator=(const OvsSandbox&) = delete;

  [[nodiscard]] const std::string& dir() const { return dir_; }
  // The random part of dir() ("/tmp/vgt.AbC123" -> "AbC123"): for names that must be unique
  // across parallel tests (namespaces, veths).
  [[nodiscard]] const std::string& unique() const { return unique_; }
  [[nodiscard]] std::string dbTarget() const { return "unix:" + dir_ + "/db.sock"; }
  [[nodiscard]] const std::string& netns() const { return netns_; }
  [[nodiscard]] std::string bridgeTarget(const std::string& bridge) const {
    return "unix:" + dir_ + "/" + bridge + ".mgmt";
  }
  // ovs-vswitchd's unixctl socket (changes with restartVswitchd()).
  [[nodiscard]] std::string vswitchdCtl() const;

  // The tools, pointed at this sandbox. Error = non-zero exit, with the command and its output.
  [[nodiscard]] Result<std::string> vsctl(const std::string& args) const;
  [[nodiscard]] Result<std::string> ofctl(const std::string& args) const;  // -O OpenFlow15
  [[nodiscard]] Result<std::string> appctl(const std::string& args) const;  // to ovs-vswitchd
  [[nodiscard]] Result<std::string> ovsdbAppctl(const std::string& args) const;  // to ovsdb-server
  [[nodiscard]] pid_t ovsdbPid() const { return ovsdb_ ? ovsdb_->pid() : 0; }
  [[nodiscard]] pid_t vswitchdPid() const { return vswitchd_pid_; }
  // Runs a shell command inside the hypervisor namespace.
  [[nodiscard]] CommandResult execInNetns(const std::string& command) const;

  // fail_mode=secure, protocols OpenFlow13-15; returns once the bridge's mgmt socket answers.
  // Idempotent, so after restartVswitchd() it also awaits the re-created bridge.
  [[nodiscard]] Result<void> addBridge(const std::string& name,
                                       const std::string& datapath_type = "dummy");
  // A dummy port with external_ids:iface-id; returns its OpenFlow port number.
  [[nodiscard]] Result<int> addDummyPort(const std::string& bridge, const std::string& port,
                                         const std::string& iface_id);
  // The OpenFlow port number of an interface, once ovs-vswitchd has assigned it.
  [[nodiscard]] Result<int> ofport(const std::string& iface) const;
  // kill -9 ovs-vswitchd and start it again (resilience tests); waits until it answers.
  [[nodiscard]] Result<void> restartVswitchd();
  // Stops ovsdb-server (to test clients noticing a disconnection).
  void stopOvsdb();
  // kill -9 ovsdb-server (if it runs) and start it again on the same database file and socket;
  // waits until it answers. Clients (ovs-vswitchd, vpcguardd) have to reconnect on their own.
  [[nodiscard]] Result<void> restartOvsdb();
  // `ovs-ofctl dump-flows` text (without statistics unless asked).
  [[nodiscard]] Result<std::string> dumpFlows(const std::string& bridge,
                                              bool with_stats = false) const;

 private:
  OvsSandbox() = default;
  [[nodiscard]] std::string envPrefix() const;
  [[nodiscard]] Result<void> createDb();
  [[nodiscard]] Result<void> startOvsdb();
  [[nodiscard]] Result<void> startVswitchd();
  void stopVswitchd();
  void cleanup();

  std::string dir_;
  std::string unique_;
  std::string netns_;
  bool netns_created_ = false;
  pid_t vswitchd_pid_ = 0;
  std::unique_ptr<ChildProcess> ovsdb_;
  std::unique_ptr<ChildProcess> vswitchd_;
  int signal_cleanup_id_ = 0;
};

}  // namespace vpcguard::test
