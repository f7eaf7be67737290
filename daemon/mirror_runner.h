#pragma once
// vpcguardd's side of traffic mirroring outside the flow table (docs/mirroring.md): it brings the
// switch's surroundings in line with the policy's mirror sessions and port mirrors
// (mirror/host_plan.h says what; this applies it):
//  - the VXLAN port (pipeline::kMirrorTunnelPort) exists while a session does; its OpenFlow port
//    number comes back through the interface monitor and lets the translator write the copies;
//  - local targets: the bridge's address in pipeline::kMirrorHostSubnet (rtnetlink, in
//    ovs-vswitchd's namespace), a route per target in ovs-vswitchd's own table, marked with
//    pipeline::kMirrorPktMark, and the neighbour entry of its next hop (the target's MAC),
//    refreshed at a third of ovs-vswitchd's neighbour aging time;
//  - remote targets: a warning when ovs-vswitchd has no route to the endpoint (copies would be
//    dropped), checked again every 30 s until it has;
//  - port mirrors: the bridge's Mirror rows.
// Two phases per sync: before the flows, what new copies need (the tunnel port, routes of new
// local targets), so no copy flow precedes its route; after the flows, the rest (removals, port
// mirrors, remote checks). The first pass after a (re)connect also removes what an earlier run
// left and the config no longer wants (the tunnel port, vpcguard: Mirror rows, marked routes,
// the host address). A failed step is logged once and retried every 3 s.

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
  enum class Phase { kBeforeFlows, kAfterFlows };

  MirrorRunner(std::string bridge, std::string ovs_rundir)
      : bridge_(std::move(bridge)), ovs_rundir_(std::move(ovs_rundir)) {}

  // `tunnel_attached`: the tunnel port has an OpenFlow port now (else it is set again).
  void update(const model::Policy& policy, ovs::VswitchDb* db, bool tunnel_attached, Phase phase);
  // The switch may have restarted: the next update sets everything again and cleans up.
  void reconnected();
  // Retries failed steps and refreshes neighbour entries when due.
  void tick(ovs::VswitchDb* db);
  [[nodiscard]] std::chrono::milliseconds untilNextTick() const;

 private:
  using Clock = std::chrono::steady_clock;
  void apply(ovs::VswitchDb* db, Phase phase);
  bool applyTunnel(ovs::VswitchDb& db, Phase phase);
  bool addLocalRoutes();
  bool addLocalRoute(const mirror::LocalTargetRoute& r, bool wait_for_address);
  void removeLocalRoutes();
  void removeStaleMarkedRoutes();
  void checkRemoteRoutes();
  bool applyPortMirrors(ovs::VswitchDb& db);
  void refreshNeighbours();
  [[nodiscard]] std::chrono::seconds neighbourRefreshInterval();
  [[nodiscard]] std::optional<std::string> appctl(const std::string& command,
                                                  const std::vector<std::string>& args,
                                                  std::string* error);

  std::string bridge_;
  std::string ovs_rundir_;
  mirror::HostPlan want_;
  bool cleanup_pending_ = true;  // the first pass after a (re)connect
  // What is in place (as far as we know): reset by reconnected().
  std::optional<bool> tunnel_;
  bool host_address_ = false;
  std::vector<mirror::LocalTargetRoute> routes_;
  std::map<std::string, std::string> route_errors_;  // target id -> the last failure said
  std::vector<mirror::RemoteTarget> remote_checked_;
  std::vector<mirror::RemoteTarget> remote_warned_;
  std::optional<Clock::time_point> remote_retry_at_;
  std::optional<std::vector<mirror::PortMirrorPlan>> port_mirrors_;
  std::vector<std::string> port_mirror_problems_;
  std::optional<Clock::time_point> retry_at_;
  std::optional<Clock::time_point> refresh_at_;
};

}  // namespace vpcguard
