#include "daemon/mirror_runner.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "daemon/logging.h"
#include "mirror/host_address.h"
#include "ovs-plugin/appctl.h"
#include "ovs-plugin/netns.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

constexpr auto kRetry = std::chrono::seconds(3);
// An appliance without a route is a normal state for a while (the underlay comes later): checked
// again, quietly, at this pace.
constexpr auto kRemoteRetry = std::chrono::seconds(30);
// OVS ages neighbour entries out after 15 minutes unused (`tnl/neigh/aging`); they are set again
// at a third of that, at most this often apart.
constexpr auto kNeighbourRefreshMax = std::chrono::seconds(300);
constexpr auto kAppctlTimeout = std::chrono::seconds(5);

template <typename T>
bool contains(const std::vector<T>& list, const T& x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}

std::string markArg() { return fmt::format("pkt_mark={}", pipeline::kMirrorPktMark); }

}  // namespace

void MirrorRunner::reconnected() {
  cleanup_pending_ = true;
  tunnel_.reset();
  host_address_ = false;
  routes_.clear();
  route_errors_.clear();
  remote_checked_.clear();
  remote_warned_.clear();
  remote_retry_at_.reset();
  port_mirrors_.reset();
  port_mirror_problems_.clear();
  refresh_at_.reset();
}

void MirrorRunner::update(const model::Policy& policy, ovs::VswitchDb* db, bool tunnel_attached,
                          Phase phase) {
  auto plan = mirror::hostPlan(policy, routes_);
  if (!plan) {
    logger("mirror")->error("mirror_plan_failed error=\"{}\"", plan.error().message);
    return;
  }
  want_ = std::move(*plan);
  if (want_.tunnel && !tunnel_attached) {
    tunnel_.reset();  // not there (yet, or deleted by someone): setting it again is harmless
  }
  apply(db, phase);
}

void MirrorRunner::tick(ovs::VswitchDb* db) {
  const auto now = Clock::now();
  if (refresh_at_ && now >= *refresh_at_) {
    refreshNeighbours();
  }
  if (retry_at_ && now >= *retry_at_) {
    retry_at_.reset();
    apply(db, Phase::kAfterFlows);
  }
  if (remote_retry_at_ && now >= *remote_retry_at_ && db != nullptr) {
    remote_retry_at_.reset();
    checkRemoteRoutes();
  }
}

std::chrono::milliseconds MirrorRunner::untilNextTick() const {
  auto next = Clock::time_point::max();
  for (const auto& at : {refresh_at_, retry_at_, remote_retry_at_}) {
    if (at) {
      next = std::min(next, *at);
    }
  }
  if (next == Clock::time_point::max()) {
    return std::chrono::hours(1);
  }
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()));
}

void MirrorRunner::apply(ovs::VswitchDb* db, Phase phase) {
  if (db == nullptr) {
    return;  // not connected: reconnected() and the next update set everything
  }
  bool ok = applyTunnel(*db, phase);
  ok = addLocalRoutes() && ok;
  if (phase == Phase::kAfterFlows) {
    removeLocalRoutes();
    if (cleanup_pending_) {
      removeStaleMarkedRoutes();
    }
    if (!remote_retry_at_) {
      checkRemoteRoutes();
    }
    ok = applyPortMirrors(*db) && ok;
    if (ok) {
      cleanup_pending_ = false;
    }
  }
  if (!ok && !retry_at_) {
    retry_at_ = Clock::now() + kRetry;
  }
}

bool MirrorRunner::applyTunnel(ovs::VswitchDb& db, Phase phase) {
  if (tunnel_ == want_.tunnel || (phase == Phase::kBeforeFlows && !want_.tunnel)) {
    return true;  // removed only after the flows that name it are gone
  }
  if (auto r = db.setMirrorTunnel(bridge_, want_.tunnel); !r) {
    logger("mirror")->warn("mirror_tunnel_failed port={} error=\"{}\"", pipeline::kMirrorTunnelPort,
                           r.error().message);
    return false;
  }
  if (want_.tunnel || tunnel_.has_value()) {
    logger("mirror")->info("mirror_tunnel_{} port={}", want_.tunnel ? "present" : "removed",
                           pipeline::kMirrorTunnelPort);
  }
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

bool MirrorRunner::addLocalRoute(const mirror::LocalTargetRoute& r, bool wait_for_address) {
  std::string error;
  const std::vector<std::string> route = {r.address.toString() + "/32", bridge_,
                                          r.next_hop.toString(), markArg()};
  // ovs-vswitchd learns a new device address from netlink a moment after it is added, and
  // refuses the route until then: right after adding it, wait for that (briefly, once) instead
  // of leaving the target without copies until the next retry.
  const auto deadline =
      Clock::now() + (wait_for_address ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(0));
  bool routed = appctl("ovs/route/add", route, &error).has_value();
  while (!routed && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    routed = appctl("ovs/route/add", route, &error).has_value();
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

bool MirrorRunner::addLocalRoutes() {
  if (want_.local.empty()) {
    return true;
  }
  auto log = logger("mirror");
  bool wait_for_address = false;
  if (!host_address_) {
    // ovs-vswitchd's router takes a route's source address from the bridge's device.
    const std::string address = mirror::hostAddressWithPrefix();
    if (auto r = mirror::addDeviceAddress(ovs::vswitchdNetns(ovs_rundir_), bridge_, address); !r) {
      log->warn("mirror_host_address_failed address={} device={} error=\"{}\"", address, bridge_,
                r.error().message);
      return false;
    }
    log->info("mirror_host_address address={} device={}", address, bridge_);
    host_address_ = true;
    wait_for_address = true;
  }
  bool ok = true;
  for (const auto& r : want_.local) {
    if (contains(routes_, r)) {
      continue;
    }
    if (!addLocalRoute(r, wait_for_address)) {
      ok = false;
      continue;
    }
    wait_for_address = false;  // the address is known now
    // The same address with another next hop or MAC was replaced by this route.
    std::erase_if(routes_, [&](const auto& old) { return old.address == r.address; });
    routes_.push_back(r);
    if (!refresh_at_) {
      refresh_at_ = Clock::now() + neighbourRefreshInterval();
    }
  }
  return ok;
}

void MirrorRunner::removeLocalRoutes() {
  auto log = logger("mirror");
  for (auto it = routes_.begin(); it != routes_.end();) {
    const auto& r = *it;
    if (std::any_of(want_.local.begin(), want_.local.end(),
                    [&](const auto& w) { return w.address == r.address; })) {
      ++it;
      continue;
    }
    std::string error;
    if (!appctl("ovs/route/del", {r.address.toString() + "/32", markArg()}, &error)) {
      log->warn("mirror_target_route_del_failed target={} error=\"{}\"", r.target_id, error);
    } else {
      log->info("mirror_target_route_removed target={} address={}", r.target_id,
                r.address.toString());
    }
    it = routes_.erase(it);
  }
  if (routes_.empty()) {
    refresh_at_.reset();
  }
  if (want_.local.empty() && (host_address_ || cleanup_pending_)) {
    const std::string address = mirror::hostAddressWithPrefix();
    if (auto r = mirror::removeDeviceAddress(ovs::vswitchdNetns(ovs_rundir_), bridge_, address); !r) {
      // Nothing of ours to remove on a host that never mirrored: not worth a warning then.
      (host_address_ ? log->warn("mirror_host_address_remove_failed address={} error=\"{}\"",
                                 address, r.error().message)
                     : log->debug("mirror_host_address_remove_failed address={} error=\"{}\"",
                                  address, r.error().message));
    }
    host_address_ = false;
  }
}

// Routes an earlier run added (marked) that no target needs now: after a restart of vpcguardd
// with another config, or targets removed while disconnected.
void MirrorRunner::removeStaleMarkedRoutes() {
  auto log = logger("mirror");
  std::string error;
  auto table = appctl("ovs/route/show", {}, &error);
  if (!table) {
    log->debug("mirror_route_table_unreadable error=\"{}\"", error);
    return;
  }
  const std::string mark = fmt::format(" MARK {} ", pipeline::kMirrorPktMark);
  std::istringstream lines(*table);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("User: ") || line.find(mark) == std::string::npos) {
      continue;
    }
    const std::string dst = line.substr(6, line.find(' ', 6) - 6);
    auto cidr = Cidr::parse(dst, false);
    if (!cidr || std::any_of(want_.local.begin(), want_.local.end(), [&](const auto& w) {
          return cidr->prefix_len == 32 && w.address == cidr->address;
        })) {
      continue;
    }
    if (!appctl("ovs/route/del", {dst, markArg()}, &error)) {
      log->warn("mirror_stale_route_del_failed route={} error=\"{}\"", dst, error);
    } else {
      log->info("mirror_stale_route_removed route={}", dst);
    }
  }
}

void MirrorRunner::checkRemoteRoutes() {
  auto log = logger("mirror");
  std::erase_if(remote_checked_, [&](const auto& r) { return !contains(want_.remote, r); });
  std::erase_if(remote_warned_, [&](const auto& r) { return !contains(want_.remote, r); });
  for (const auto& r : want_.remote) {
    if (contains(remote_checked_, r)) {
      continue;
    }
    std::string error;
    auto route = appctl("ovs/route/lookup", {r.address.toString()}, &error);
    if (!route) {
      // Checked again every 30 s (the underlay may come later); said once.
      remote_retry_at_ = Clock::now() + kRemoteRetry;
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
}

bool MirrorRunner::applyPortMirrors(ovs::VswitchDb& db) {
  // Applied after every sync while any exists (a re-plugged source port is a new OVSDB row),
  // and once per connection to remove rows an earlier run left.
  if (want_.port_mirrors.empty() && !cleanup_pending_ && port_mirrors_ && port_mirrors_->empty()) {
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
  const bool changed = !port_mirrors_ || *port_mirrors_ != want_.port_mirrors;
  if (changed && (!want_.port_mirrors.empty() || (port_mirrors_ && !port_mirrors_->empty()))) {
    logger("mirror")->info("port_mirrors_applied count={} skipped={}", specs.size() - problems->size(),
                           problems->size());
  }
  port_mirrors_ = want_.port_mirrors;
  port_mirror_problems_ = std::move(*problems);
  return true;
}

std::chrono::seconds MirrorRunner::neighbourRefreshInterval() {
  std::string error;
  auto reply = appctl("tnl/neigh/aging", {}, &error);
  int64_t aging = 0;
  if (reply) {
    const std::string text = *reply;
    std::from_chars(text.data(), text.data() + text.size(), aging);
  }
  if (aging <= 0) {
    return std::chrono::seconds(60);  // unknown: often enough for OVS's 15-minute default
  }
  return std::clamp(std::chrono::seconds(aging / 3), std::chrono::seconds(1), kNeighbourRefreshMax);
}

void MirrorRunner::refreshNeighbours() {
  for (const auto& r : routes_) {
    std::string error;
    if (!appctl("tnl/neigh/set", {bridge_, r.next_hop.toString(), r.mac}, &error)) {
      // A hung or restarting switch: one attempt per round, not one timeout per target.
      logger("mirror")->warn("mirror_neighbour_refresh_failed target={} error=\"{}\"", r.target_id,
                             error);
      break;
    }
  }
  refresh_at_ = Clock::now() + neighbourRefreshInterval();
}

}  // namespace vpcguard
