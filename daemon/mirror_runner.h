#pragma once
// vpcguardd's side of traffic mirroring outside the flow table (docs/mirroring.md): after every
// sync it brings the switch's surroundings in line with the policy's mirror sessions and port
// mirrors (mirror/host_plan.h says what; this applies it):
//  - the VXLAN port (pipeline::kMirrorTunnelPort) exists while a session does; its OpenFlow port
//    number comes back through the interface monitor and lets the translator write the copies;
//  - local targets: the bridge's address in pipeline::kMirrorHostSubnet (rtnetlink, in
//    ovs-vswitchd's namespace), a route per target in ovs-vswitchd's own table and the neighbour
//    entry of its next hop (the target's MAC), refreshed well before OVS ages it out;
//  - remote targets: a warning when ovs-vswitchd has no route to the endpoint (copies would be
//    dropped);
//  - port mirrors: the bridge's Mirror rows.
// A failed step is logged and retried every few seconds; a reconnect (ovs-vswitchd may have
// restarted and lost its routes and neighbours) makes it set everything again.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mirror/host_plan.h"
#include "ovs-plugin/vswitch_db.h"
#include "translator/model.h"

namespace vpcguard {

class MirrorRunner {
 public:
  MirrorRunner(std::string bridge, std::string ovs_rundir)
      : bridge_(std::move(bridge)), ovs_rundir_(std::move(ovs_rundir)) {}

  // After a sync (and whenever the policy changed): applies what differs from the last time.
  // `tunnel_attached`: the tunnel port has an OpenFlow port now (else it is set again).
  void update(const model::Policy& policy, ovs::VswitchDb* db, bool tunnel_attached);
  // The switch may have restarted: the next update sets everything again.
  void reconnected();
  // Retries failed steps and refreshes neighbour entries when due.
  void tick(ovs::VswitchDb* db);
  [[nodiscard]] std::chrono::milliseconds untilNextTick() const;

 private:
  using Clock = std::chrono::steady_clock;
  void apply(ovs::VswitchDb* db);
  bool applyTunnel(ovs::VswitchDb& db);
  bool applyLocalRoutes();
  bool addLocalRoute(const mirror::LocalTargetRoute& r, bool fresh_address);
  bool checkRemoteRoutes();
  bool applyPortMirrors(ovs::VswitchDb& db);
  [[nodiscard]] std::optional<std::string> appctl(const std::string& command,
                                                  const std::vector<std::string>& args,
                                                  std::string* error);

  std::string bridge_;
  std::string ovs_rundir_;
  mirror::HostPlan want_;
  // What is in place (as far as we know): reset by reconnected().
  std::optional<bool> tunnel_;
  bool host_address_ = false;
  std::vector<mirror::LocalTargetRoute> routes_;
  std::vector<mirror::RemoteTarget> remote_checked_;
  std::vector<mirror::RemoteTarget> remote_warned_;
  std::map<std::string, std::string> route_errors_;  // target id -> the last failure said
  std::optional<std::vector<mirror::PortMirrorPlan>> port_mirrors_;
  std::vector<std::string> port_mirror_problems_;
  std::optional<Clock::time_point> retry_at_;
  Clock::time_point refresh_at_{};
};

}  // namespace vpcguard
