#include "daemon/mirror_runner.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "daemon/logging.h"
#include "mirror/host_address.h"
#include "ovs-plugin/appctl.h"
#include "ovs-plugin/netns.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

constexpr auto kRetry = std::chrono::seconds(3);
// OVS ages neighbour entries out after 15 minutes (tnl-neigh-cache.c); set them again well before.
constexpr auto kNeighbourRefresh = std::chrono::minutes(5);
constexpr auto kAppctlTimeout = std::chrono::seconds(5);

template <typename T>
bool contains(const std::vector<T>& list, const T& x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}

}  // namespace

void MirrorRunner::reconnected() {
  tunnel_.reset();
  host_address_ = false;
  routes_.clear();
  remote_checked_.clear();
  remote_warned_.clear();
  route_errors_.clear();
  port_mirrors_.reset();
  port_mirror_problems_.clear();
}

void MirrorRunner::update(const model::Policy& policy, ovs::VswitchDb* db, bool tunnel_attached) {
  auto plan = mirror::hostPlan(policy);
  if (!plan) {
    logger("mirror")->error("mirror_plan_failed error=\"{}\"", plan.error().message);
    return;
  }
  want_ = std::move(*plan);
  if (want_.tunnel && !tunnel_attached) {
    tunnel_.reset();  // not there (yet, or deleted by someone): setting it again is harmless
  }
  apply(db);
}

void MirrorRunner::tick(ovs::VswitchDb* db) {
  const auto now = Clock::now();
  if (!routes_.empty() && now >= refresh_at_) {
    for (const auto& r : routes_) {
      std::string error;
      if (!appctl("tnl/neigh/set", {bridge_, r.next_hop.toString(), r.mac}, &error)) {
        logger("mirror")->warn("mirror_neighbour_refresh_failed target={} error=\"{}\"", r.target_id,
                               error);
      }
    }
    refresh_at_ = now + kNeighbourRefresh;
  }
  if (retry_at_ && now >= *retry_at_) {
    retry_at_.reset();
    apply(db);
  }
}

std::chrono::milliseconds MirrorRunner::untilNextTick() const {
  auto next = Clock::time_point::max();
  if (!routes_.empty()) {
    next = refresh_at_;
  }
  if (retry_at_) {
    next = std::min(next, *retry_at_);
  }
  if (next == Clock::time_point::max()) {
    return std::chrono::hours(1);
  }
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()));
}

void MirrorRunner::apply(ovs::VswitchDb* db) {
  if (db == nullptr) {
    return;  // not connected: reconnected() and the next update set everything
  }
  bool ok = applyTunnel(*db);
  ok = applyLocalRoutes() && ok;
  ok = checkRemoteRoutes() && ok;
  ok = applyPortMirrors(*db) && ok;
  if (!ok && !retry_at_) {
    retry_at_ = Clock::now() + kRetry;
  }
}

bool MirrorRunner::applyTunnel(ovs::VswitchDb& db) {
  if (tunnel_ == want_.tunnel) {
    return true;
  }
  if (auto r = db.setMirrorTunnel(bridge_, want_.tunnel); !r) {
    logger("mirror")->warn("mirror_tunnel_failed port={} error=\"{}\"", pipeline::kMirrorTunnelPort,
                           r.error().message);
    return false;
  }
  logger("mirror")->info("mirror_tunnel_{} port={}", want_.tunnel ? "present" : "removed",
                         pipeline::kMirrorTunnelPort);
  tunnel_ = want_.tunnel;
  return true;
}

std::optional<std::string> MirrorRunner::appctl(const std::string& command,
                                                const std::vector<std::string>& args,
                                                std::string* error) {
  auto socket = ovs::vswitchdControlSocket(ovs_rundir_);
  if (!socket) {
    *error = socket.error().message;
    return std::nullopt;
  }
  auto reply = ovs::appctl(*socket, command, args, kAppctlTimeout);
  if (!reply) {
    *error = reply.error().message;
    return std::nullopt;
  }
  return *reply;
}

bool MirrorRunner::addLocalRoute(const mirror::LocalTargetRoute& r, bool fresh_address) {
  std::string error;
  const std::string dst = r.address.toString() + "/32";
  // ovs-vswitchd learns a new device address from netlink a moment after it is added, and
  // refuses the route until then: right after adding it, wait for that (briefly) instead of
  // leaving the target without copies until the next retry.
  const auto deadline = Clock::now() + (fresh_address ? std::chrono::milliseconds(1000)
                                                      : std::chrono::milliseconds(0));
  bool routed = appctl("ovs/route/add", {dst, bridge_, r.next_hop.toString()}, &error).has_value();
  while (!routed && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    routed = appctl("ovs/route/add", {dst, bridge_, r.next_hop.toString()}, &error).has_value();
  }
  if (!routed || !appctl("tnl/neigh/set", {bridge_, r.next_hop.toString(), r.mac}, &error)) {
    // Retried every few seconds; said again only when the reason changes.
    if (auto& last = route_errors_[r.target_id]; last != error) {
      logger("mirror")->warn("mirror_target_route_failed target={} address={} error=\"{}\" "
                             "(retrying every {} s)",
                             r.target_id, r.address.toString(), error, kRetry.count());
      last = error;
    }
    return false;
  }
  route_errors_.erase(r.target_id);
  logger("mirror")->info("mirror_target_route target={} address={} mac={} next_hop={} bridge={}",
                         r.target_id, r.address.toString(), r.mac, r.next_hop.toString(), bridge_);
  return true;
}

bool MirrorRunner::applyLocalRoutes() {
  auto log = logger("mirror");
  const auto netns = ovs::vswitchdNetns(ovs_rundir_);
  const std::string address = mirror::hostAddressWithPrefix();
  bool ok = true;
  for (auto it = routes_.begin(); it != routes_.end();) {
    if (contains(want_.local, *it)) {
      ++it;
      continue;
    }
    std::string error;
    if (!appctl("ovs/route/del", {it->address.toString() + "/32"}, &error)) {
      log->warn("mirror_target_route_del_failed target={} error=\"{}\"", it->target_id, error);
    }
    it = routes_.erase(it);
  }
  if (want_.local.empty()) {
    if (host_address_) {
      if (auto r = mirror::removeDeviceAddress(netns, bridge_, address); !r) {
        log->warn("mirror_host_address_failed address={} error=\"{}\"", address, r.error().message);
      }
      host_address_ = false;
    }
    return ok;
  }
  const bool fresh_address = !host_address_;
  if (!host_address_) {
    // ovs-vswitchd's router takes a route's source address from the bridge's device.
    if (auto r = mirror::addDeviceAddress(netns, bridge_, address); !r) {
      log->warn("mirror_host_address_failed address={} device={} error=\"{}\"", address, bridge_,
                r.error().message);
      return false;
    }
    log->info("mirror_host_address address={} device={}", address, bridge_);
    host_address_ = true;
  }
  for (const auto& r : want_.local) {
    if (contains(routes_, r)) {
      continue;
    }
    if (addLocalRoute(r, fresh_address)) {
      routes_.push_back(r);
    } else {
      ok = false;
    }
  }
  refresh_at_ = Clock::now() + kNeighbourRefresh;
  return ok;
}

bool MirrorRunner::checkRemoteRoutes() {
  auto log = logger("mirror");
  std::erase_if(remote_checked_, [&](const auto& r) { return !contains(want_.remote, r); });
  std::erase_if(remote_warned_, [&](const auto& r) { return !contains(want_.remote, r); });
  bool ok = true;
  for (const auto& r : want_.remote) {
    if (contains(remote_checked_, r)) {
      continue;
    }
    std::string error;
    auto route = appctl("ovs/route/lookup", {r.address.toString()}, &error);
    if (!route) {
      // Checked again every few seconds (the underlay may come later); said once.
      ok = false;
      if (!contains(remote_warned_, r)) {
        remote_warned_.push_back(r);
        log->warn("mirror_target_unreachable target={} address={} error=\"{}\" hint=\"copies are "
                  "dropped until ovs-vswitchd has a route to it: an OVS bridge whose device has "
                  "an address on the appliance's network (docs/mirroring.md)\"",
                  r.target_id, r.address.toString(), error);
      }
      continue;
    }
    remote_checked_.push_back(r);
    std::string flat = *route;
    std::replace(flat.begin(), flat.end(), '\n', ' ');
    log->info("mirror_target_route target={} address={} route=\"{}\"", r.target_id,
              r.address.toString(), flat);
  }
  return ok;
}

bool MirrorRunner::applyPortMirrors(ovs::VswitchDb& db) {
  // Applied on every update while any exists: a re-plugged source port is a new OVSDB row.
  if (want_.port_mirrors.empty() && port_mirrors_ && port_mirrors_->empty()) {
    return true;
  }
  std::vector<ovs::PortMirrorSpec> specs;
  for (const auto& m : want_.port_mirrors) {
    specs.push_back(ovs::PortMirrorSpec{m.id, m.source_iface_id, m.output_port});
  }
  auto problems = db.setPortMirrors(bridge_, specs);
  if (!problems) {
    logger("mirror")->warn("port_mirrors_failed error=\"{}\"", problems.error().message);
    return false;
  }
  if (*problems != port_mirror_problems_) {
    for (const auto& p : *problems) {
      logger("mirror")->warn("port_mirror_skipped reason=\"{}\"", p);
    }
  }
  if (!port_mirrors_ || *port_mirrors_ != want_.port_mirrors) {
    logger("mirror")->info("port_mirrors_applied count={} skipped={}", specs.size() - problems->size(),
                           problems->size());
  }
  port_mirrors_ = want_.port_mirrors;
  port_mirror_problems_ = std::move(*problems);
  return true;
}

}  // namespace vpcguard
