#include "daemon/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <regex>
#include <string_view>
#include <set>
#include <thread>
#include <vector>

#include "daemon/config_loader.h"
#include "daemon/logging.h"
#include "daemon/version.h"
#include "ovs-plugin/ovsdb_client.h"
#include "translator/defaults.h"
#include "translator/diagnostic.h"
#include "translator/pipeline.h"
#include "translator/validate.h"

namespace vpcguard {
namespace {

using Clock = std::chrono::steady_clock;

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

std::chrono::milliseconds jittered(std::chrono::seconds base) {
  // +-10%, so many hypervisors restarted together do not resync in lockstep.
  static std::mt19937 rng{std::random_device{}()};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(base).count();
  std::uniform_int_distribution<long> dist(ms * 9 / 10, ms * 11 / 10);
  return std::chrono::milliseconds(dist(rng));
}

}  // namespace

std::string defaultOpenFlowTarget(const std::string& ovsdb, const std::string& bridge) {
  std::string dir = "/var/run/openvswitch";
  if (ovsdb.rfind("unix:", 0) == 0) {
    const std::filesystem::path sock(ovsdb.substr(5));
    if (sock.has_parent_path()) {
      dir = sock.parent_path().string();
    }
  }
  return "unix:" + dir + "/" + bridge + ".mgmt";
}

std::optional<std::string> Daemon::mirrorsUnsupported(const model::Policy& policy) const {
  // Copies to a local target are routed back into the bridge by ovs-vswitchd's own route table,
  // which only its userspace tunnels use; a kernel datapath would route them by the host's
  // routes, out of the machine.
  if (options_.datapath_type == "netdev") {
    return std::nullopt;
  }
  for (const auto& s : policy.traffic_mirror_sessions) {
    for (const auto& t : policy.traffic_mirror_targets) {
      if (t.id == s.traffic_mirror_target_id && t.network_interface_id) {
        return "traffic mirror session " + s.id + ": its target " + t.id +
               " is a local interface, which needs the userspace datapath (--datapath-type "
               "netdev); this bridge uses '" + options_.datapath_type +
               "'. Use a vxlan_remote_ip target (docs/mirroring.md)";
      }
    }
  }
  return std::nullopt;
}

bool Daemon::loadConfig(bool initial) {
  auto log = logger("config");
  auto loaded = loader_.load(options_.config);
  if (!loaded) {
    const auto& err = loaded.error();
    if (err.io) {
      log->error("config_rejected path={} error=\"{}\"", options_.config.string(), err.io->message);
    }
    for (const auto& d : err.diagnostics) {
      log->error("config_error {}", formatDiagnostic(d));
    }
    if (!initial) {
      log->warn("config_kept reason=\"new config is invalid; the last good policy stays installed\"");
    }
    reportError(err.io ? err.io->message : err.toError().message, true);
    return false;
  }
  if (!adoptPolicy(std::move(*loaded), initial)) {
    return false;
  }
  log->info("config_loaded path={} subnets={} interfaces={} groups={} nacls={} files_parsed={} "
            "files_unchanged={}",
            options_.config.string(), policy_->subnets.size(),
            policy_->network_interfaces.size(), policy_->security_groups.size(),
            policy_->network_acls.size(), loader_.lastCounts().parsed,
            loader_.lastCounts().reused);
  return true;
}

bool Daemon::adoptPolicy(model::Policy policy, bool initial) {
  auto log = logger("config");
  if (auto why = mirrorsUnsupported(policy)) {
    log->error("config_rejected error=\"{}\"", *why);
    if (!initial) {
      log->warn("config_kept reason=\"the new config cannot work on this switch; the last good "
                "policy stays installed\"");
    }
    reportError(*why, true);
    return false;
  }
  auto indices = assignInterfaceIndices(policy, indices_);
  if (!indices) {
    log->error("config_rejected error=\"{}\"", indices.error().message);
    return false;
  }
  rollback_policy_ = std::move(policy_);
  policy_ = std::move(policy);
  const auto before = std::move(indices_);
  indices_ = std::move(*indices);
  noteNewIndices(before);
  status_.config_loaded = nowIso8601();
  if (last_error_is_config_) {
    status_.last_error.clear();
    status_.last_error_time.clear();
    last_error_is_config_ = false;
  }
  return true;
}

Daemon::Install Daemon::installAdopted(std::map<std::string, uint16_t> last_indices,
                                       const char* reason) {
  applyConntrackTimeouts();
  if (apply(reason)) {
    rollback_policy_.reset();
    return Install::kApplied;
  }
  if (connectionLost()) {
    rollback_policy_.reset();
    return Install::kSwitchLost;  // the new policy goes in with the reconnect's resync
  }
  // The switch refused it (the bundle changed nothing): the old policy stays in force, in the
  // switch and here.
  logger("config")->warn("config_rolled_back reason=\"the switch rejected the new policy\"");
  policy_ = std::move(rollback_policy_);
  rollback_policy_.reset();
  indices_ = std::move(last_indices);
  zones_to_flush_.clear();
  last_error_is_config_ = true;
  // The mirror routes and tunnel the rejected policy prepared go too.
  updateMirrors(MirrorRunner::Phase::kAfterFlows);
  return Install::kRolledBack;
}

bool Daemon::openState() {
  auto log = logger("state");
  ovs::OvsdbOptions options;
  // A local socket connects at once or not at all; the deadlines keep a hung server from
  // stalling the loop (the connection is then treated as lost and opened again later).
  options.connect_timeout = std::min(options_.state_request_timeout, std::chrono::milliseconds(2000));
  options.request_timeout = options_.state_request_timeout;
  auto store = state::StateStore::open(options_.state, options,
                                           state::StateStore::Scope::kPolicyOnly);
  if (!store) {
    stateLost(store.error().message);
    return false;
  }
  state_ = std::move(*store);
  if (status_.state_connection == "reconnecting") {
    countReconnect("state");
  }
  state_backoff_ = std::chrono::milliseconds(250);
  status_.state_connection = "connected";
  status_.state_error.clear();
  log->info("state_connected target={} generation={}", options_.state, state_->generation());
  writeStatus();
  return true;
}

void Daemon::stateLost(const std::string& error) {
  auto log = logger("state");
  const bool was_connected = state_ != nullptr;
  state_.reset();
  if (was_connected) {
    status_.state_connection = "reconnecting";
  } else if (status_.state_connection.empty()) {
    status_.state_connection = "connecting";  // never connected since start
  }
  status_.state_error = error;
  state_retry_at_ = Clock::now() + state_backoff_;
  if (was_connected) {
    log->warn("state_lost target={} error=\"{}\" flows=kept", options_.state, error);
  } else {
    log->warn("state_unreachable target={} error=\"{}\" retry_in_ms={} flows=kept",
              options_.state, error, state_backoff_.count());
  }
  state_backoff_ = std::min(state_backoff_ * 2, std::chrono::milliseconds(8000));
  writeStatus();
}

bool Daemon::loadState(bool force, double receive_ms) {
  auto log = logger("state");
  const int64_t generation = state_->generation();
  if (generation == 0) {
    // Nothing written yet (or a new, empty database): nothing to apply. Flows from before stay;
    // wiping them would open or close everything until the desired state arrives.
    if (!status_.state_waiting) {
      log->warn("state_empty target={} policy_kept={} (waiting for desired state)", options_.state,
                policy_.has_value());
    }
    status_.state_waiting = true;
    state_seen_generation_ = 0;
    writeStatus();
    return false;
  }
  status_.state_waiting = false;
  // Rows that are not the policy (audit records) change without a new generation.
  if (!force && generation == state_seen_generation_) {
    return false;
  }
  state_seen_generation_ = generation;
  state_timing_ = StateTiming{};
  state_timing_.receive_ms = receive_ms;
  auto start = Clock::now();
  const auto since = [&start] {
    const auto now = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - start).count();
    start = now;
    return ms;
  };
  auto policy = state_decoder_.decode(state_->replica(), state_->rowVersions());
  state_timing_.rebuild_ms = since();
  const auto refuse = [&](const std::string& error) {
    if (policy_) {
      log->warn("state_kept generation={} applied_generation={} reason=\"the database policy is "
                "invalid; the last good policy stays installed\"",
                generation, status_.state_generation);
    }
    reportError("state generation " + std::to_string(generation) + ": " + error, true);
    return false;
  };
  if (!policy) {
    log->error("state_rejected generation={} error=\"{}\"", generation, policy.error().message);
    return refuse(policy.error().message);
  }
  auto diagnostics = validatePolicy(*policy);
  if (!diagnostics.empty()) {
    sortDiagnostics(diagnostics);
    for (const auto& d : diagnostics) {
      log->error("state_error generation={} {}", generation, formatDiagnostic(d));
    }
    return refuse(config::LoadError{std::nullopt, std::move(diagnostics)}.toError().message);
  }
  // The database holds the resolved policy, so this changes nothing; it is kept so a policy
  // from the database is exactly what a config load would have produced.
  auto resolved = resolveDefaults(std::move(*policy));
  if (!resolved) {
    log->error("state_rejected generation={} error=\"{}\"", generation, resolved.error().message);
    return refuse(resolved.error().message);
  }
  if (!adoptPolicy(std::move(*resolved), false)) {
    return false;
  }
  state_timing_.validate_ms = since();
  log->info("state_loaded generation={} subnets={} interfaces={} groups={} nacls={}", generation,
            policy_->subnets.size(), policy_->network_interfaces.size(),
            policy_->security_groups.size(), policy_->network_acls.size());
  return true;
}

bool Daemon::pollState(bool force, bool switch_up) {
  if (!state_) {
    return true;
  }
  const auto start = Clock::now();
  auto changed = state_->poll(std::chrono::milliseconds(0));
  if (!changed) {
    stateLost(changed.error().message);
    return true;
  }
  if (!*changed && !force) {
    return true;
  }
  change_seen_["state"] = start;  // the latest read that brought a change
  const double receive_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const bool first = !policy_.has_value();
  auto last_indices = indices_;
  const int64_t last_generation = status_.state_generation;
  if (!loadState(force, receive_ms)) {
    return true;
  }
  const int64_t generation = state_seen_generation_;
  if (!switch_up) {
    // Goes in with the reconnect's resync, which records it: state_generation in the status
    // always means "on the switch", so waiting for it is waiting for the barrier.
    state_pending_generation_ = generation;
    rollback_policy_.reset();  // nothing to roll back on this switch
    writeStatus();
    return true;
  }
  state_pending_generation_ = 0;
  status_.state_generation = generation;
  if (first && engine_.attached()) {
    // The first policy since start: the zones our flows from before carry are kept.
    recoverInterfaceIndices();
  }
  last_apply_.reset();
  const auto outcome = installAdopted(std::move(last_indices), "state");
  if (outcome == Install::kRolledBack) {
    status_.state_generation = last_generation;
    writeStatus();
    return true;
  }
  const auto end = last_apply_ ? last_apply_done_ : Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(end - start).count();
  if (last_apply_) {
    logger("state")->info(
        "state_applied generation={} ms={:.2f} receive_ms={:.2f} rebuild_ms={:.2f} "
        "rows_decoded={} rows_reused={} validate_ms={:.2f} translate_ms={:.2f} sync_ms={:.2f} "
        "bundle_ms={:.2f} added={} modified={} deleted={} flows={}",
        generation, ms, state_timing_.receive_ms, state_timing_.rebuild_ms,
        state_decoder_.lastCounts().decoded, state_decoder_.lastCounts().reused,
        state_timing_.validate_ms, last_apply_->translate_ms, last_apply_->sync_ms,
        last_apply_->bundle_ms, last_apply_->sync.added, last_apply_->sync.modified,
        last_apply_->sync.deleted, last_apply_->flows);
  } else {
    // Went in through a full comparison (the switch was not read yet on this connection).
    logger("state")->info(
        "state_applied generation={} ms={:.2f} receive_ms={:.2f} rebuild_ms={:.2f} "
        "validate_ms={:.2f} full_resync=true",
        generation, ms, state_timing_.receive_ms, state_timing_.rebuild_ms,
        state_timing_.validate_ms);
  }
  return outcome != Install::kSwitchLost;
}

bool Daemon::connect() {
  auto log = logger("ovs");
  db_.reset();
  engine_.attach(nullptr);
  openflow_.reset();
  monitor_.reset();
  monitor_backlog_ = false;
  verify_counts_ = false;
  drift_pending_ = false;
  synced_ = false;
  unresponsive_.clear();  // a new connection: its own probes decide
  status_.unresponsive.clear();
  // Seen again (with a fresh grace period) after this connection's first sync.
  status_.flow_restore_wait = false;
  // Requests of ours to the switch's database are small: 10 s is plenty, and well below half of
  // the service watchdog's 30 s (a stopped ovsdb-server costs the loop at most that).
  ovs::OvsdbOptions db_options;
  db_options.request_timeout = std::chrono::seconds(10);
  auto client = ovs::connectOvsdb(options_.ovsdb, db_options);
  if (!client) {
    log->warn("ovsdb_unreachable target={} error=\"{}\"", options_.ovsdb, client.error().message);
    status_.connected = false;
    reportError("OVSDB unreachable: " + client.error().message);
    return false;
  }
  auto db = std::make_unique<ovs::VswitchDb>(std::move(*client));
  if (auto r = db->ensureBridge(options_.bridge, options_.datapath_type); !r) {
    log->warn("bridge_setup_failed bridge={} error=\"{}\"", options_.bridge, r.error().message);
    return false;
  }
  // The bridge's OpenFlow socket (and its settings) exist once ovs-vswitchd has applied them.
  if (auto r = db->awaitApplied(std::chrono::seconds(10)); !r) {
    log->warn("bridge_setup_failed bridge={} error=\"{}\"", options_.bridge, r.error().message);
    reportError(r.error().message);
    return false;
  }
  auto events = db->startInterfaceMonitor();
  if (!events) {
    log->warn("ovsdb_monitor_failed error=\"{}\"", events.error().message);
    return false;
  }
  ofports_.clear();
  attached_.clear();
  applied_timeouts_.clear();
  db_ = std::move(db);
  applyConntrackTimeouts();
  handleInterfaceEvents(*events);
  const std::string target =
      options_.openflow.empty() ? defaultOpenFlowTarget(options_.ovsdb, options_.bridge)
                                : options_.openflow;
  auto channel = ovs::connectOpenFlow(target);
  if (!channel) {
    log->warn("openflow_unreachable target={} error=\"{}\"", target, channel.error().message);
    status_.connected = false;
    reportError("OpenFlow unreachable: " + channel.error().message);
    return false;
  }
  openflow_ = std::move(*channel);
  if (!openflow_->guarded()) {
    log->warn("openflow_without_deadlines target={} (its socket could not be identified: calls "
              "to a hung switch may wait without limit; probes still report it)",
              target);
  }
  engine_.attach(openflow_.get());
  ipfix_reconfigure_ = true;
  reject_meter_set_ = false;  // a restarted ovs-vswitchd has no meters
  if (flow_logs_) {
    flow_logs_->rejectMeterGone();
  }
  if (mirrors_) {
    mirrors_->reconnected();  // a restarted ovs-vswitchd lost its routes and neighbours
  }
  // Started before the first read of the table, so no change can fall between the two. Only our
  // tables: the flow-log tables of learned flows change with every connection.
  static const std::vector<uint8_t> owned(std::begin(pipeline::kOwnedTables),
                                          std::end(pipeline::kOwnedTables));
  if (auto monitor = ovs::startFlowMonitor(target, std::chrono::seconds(5), owned); monitor) {
    monitor_ = std::move(*monitor);
  } else {
    log->warn("flow_monitor_unavailable error=\"{}\" (drift is found by the periodic check only)",
              monitor.error().message);
  }
  status_.flow_monitor = monitor_ != nullptr;
  status_.connected = true;
  status_.openflow = target;
  log->info("connected ovsdb={} openflow={} bridge={} interfaces_attached={}", options_.ovsdb,
            target, options_.bridge, ofports_.size());
  return true;
}

void Daemon::handleInterfaceEvents(const std::vector<ovs::InterfaceEvent>& events) {
  auto log = logger("ovs");
  for (const auto& e : events) {
    // Keyed by Interface row: the same iface-id may briefly sit on two rows (a VM re-plugged or
    // migrating), and the old row's detach must not take the new one's port away.
    switch (e.kind) {
      case ovs::InterfaceEventKind::kAttached:
      case ovs::InterfaceEventKind::kOfportChanged:
        attached_[e.iface.uuid] = e.iface;
        break;
      case ovs::InterfaceEventKind::kDetached:
        attached_.erase(e.iface.uuid);
        break;
    }
    const bool known = e.iface.iface_id == pipeline::kMirrorTunnelKey ||
                       (policy_ && std::any_of(policy_->network_interfaces.begin(),
                                               policy_->network_interfaces.end(),
                                               [&](const auto& n) { return n.id == e.iface.iface_id; }));
    log->info("interface_{} iface_id={} port={} ofport={} in_policy={}", ovs::toString(e.kind),
              e.iface.iface_id, e.iface.name, e.iface.ofport, known);
  }
  // OpenFlow port numbers are per bridge: only interfaces on our bridge count.
  auto on_bridge = db_ ? db_->interfacesOnBridge(options_.bridge)
                       : Result<std::set<std::string>>(std::set<std::string>{});
  if (!on_bridge) {
    log->warn("bridge_ports_unknown error=\"{}\"", on_bridge.error().message);
    return;  // keep the previous view; the next event or reconnect tries again
  }
  ofports_.clear();
  for (const auto& [uuid, iface] : attached_) {
    if (on_bridge->count(uuid) == 0) {
      continue;
    }
    auto [it, inserted] = ofports_.emplace(iface.iface_id, iface.ofport);
    if (!inserted && it->second != iface.ofport) {
      // Two ports claim one interface: keep the lower port number, deterministically.
      log->warn("interface_duplicate iface_id={} ofports={},{}", iface.iface_id, it->second,
                iface.ofport);
      it->second = std::min(it->second, iface.ofport);
    }
  }
}

void Daemon::writeStatus() {
  status_.updated = nowIso8601();
  status_.interfaces_attached = ofports_.size() - ofports_.count(pipeline::kMirrorTunnelKey);
  status_.generation = generation_;
  status_.drift_repairs = drift_repairs_;
  if (engine_.attached()) {
    status_.flows_per_table.clear();
    for (const auto& [table, n] : engine_.installedPerTable()) {
      status_.flows_per_table[table] = n;
    }
  }
  if (auto r = writeStatusFile(options_.status_file, status_); !r) {
    logger("daemon")->warn("status_write_failed error=\"{}\"", r.error().message);
  }
  notifyService();
}

std::string Daemon::serviceStatusLine() const {
  const std::string source =
      stateMode() ? "state " + options_.state : "config " + options_.config.string();
  size_t flows = 0;
  for (const auto& [table, n] : status_.flows_per_table) {
    flows += n;
  }
  if (last_error_is_config_ && !policy_) {
    return "config refused: " + status_.last_error;
  }
  if (!status_.connected) {
    return "waiting for Open vSwitch" +
           (status_.last_error.empty() ? std::string() : ": " + status_.last_error);
  }
  if (!policy_) {
    return "connected to " + options_.bridge + "; waiting for the desired state (" + source +
           (status_.state_error.empty() ? std::string(": empty") : ": " + status_.state_error) +
           ")";
  }
  std::string line = status_.last_sync.empty()
                         ? "installing the policy on " + options_.bridge + " (" + source + ")"
                         : fmt::format("enforcing {} flows on {} ({})", flows, options_.bridge,
                                       source);
  if (!status_.last_error.empty()) {
    line += (last_error_is_config_ ? "; config refused, last good policy kept: "
                                   : "; last error: ") +
            status_.last_error;
  }
  return line;
}

void Daemon::notifyService() {
  if (!service_.enabled()) {
    return;
  }
  // Ready once our policy is on the switch (a sync of this process went through); with the state
  // database empty or unreachable, once the switch is connected (nothing to install yet).
  const bool ready = status_.connected && ((policy_ && !status_.last_sync.empty()) ||
                                           (stateMode() && !policy_ && engine_.attached()));
  if (ready) {
    service_.ready(serviceStatusLine());
  } else {
    service_.status(serviceStatusLine());
  }
}

bool Daemon::checkResponsive() {
  // A second for the probe to go out, then this long without any answer.
  constexpr auto kSilence = std::chrono::seconds(3);
  std::string who;
  if (openflow_ && openflow_->unanswered() >= kSilence) {
    who = fmt::format("ovs-vswitchd has not answered on OpenFlow ({}) for {} s", openflow_->target(),
                      std::chrono::duration_cast<std::chrono::seconds>(openflow_->unanswered()).count());
  } else if (db_ && db_->client().unanswered() >= kSilence) {
    who = fmt::format("ovsdb-server has not answered ({}) for {} s", options_.ovsdb,
                      std::chrono::duration_cast<std::chrono::seconds>(db_->client().unanswered()).count());
  }
  auto log = logger("ovs");
  if (!who.empty() && unresponsive_.empty()) {
    unresponsive_ = who;
    status_.unresponsive = who + " (since " + nowIso8601() + "; stopped or hung?)";
    log->warn("switch_not_responding what=\"{}\" (changes wait; the installed flows stay)", who);
    reportError("the switch does not respond: " + who);
  } else if (who.empty() && !unresponsive_.empty()) {
    log->info("switch_responding_again after=\"{}\"", unresponsive_);
    unresponsive_.clear();
    status_.unresponsive.clear();
    if (status_.last_error.starts_with("the switch does not respond")) {
      status_.last_error.clear();
      status_.last_error_time.clear();
    }
    writeStatus();  // also when there is nothing to install (resync() then writes nothing)
    // Whatever changed meanwhile (config, state, interfaces, foreign flows) goes in now,
    // timeouts included (a config adopted meanwhile was not installed).
    applyConntrackTimeouts();
    resync("responding");
  }
  return unresponsive_.empty();
}

void Daemon::reportError(const std::string& error, bool config_error) {
  countError(error, config_error);
  status_.last_error = error;
  status_.last_error_time = nowIso8601();
  last_error_is_config_ = config_error;
  writeStatus();
}

void Daemon::ensureRejectMeter() {
  if (reject_meter_set_ || !policy_ || policy_->flow_logs.empty() || !openflow_) {
    return;
  }
  // Flows of flow logs name the meter: it must exist before they go in. A failure shows as the
  // switch rejecting the bundle (unknown meter), which is reported and retried like any other.
  if (auto r = openflow_->setMeter(pipeline::kRejectMeterId, options_.flow_log_reject_rate,
                                   options_.flow_log_reject_rate);
      !r) {
    logger("flowlog")->error("reject_meter_failed error=\"{}\"", r.error().message);
    return;
  }
  logger("flowlog")->info("reject_meter_set id={} rate_pps={}", pipeline::kRejectMeterId,
                          options_.flow_log_reject_rate);
  reject_meter_set_ = true;
  // What the meter dropped before now (an existing meter keeps its counters) is not ours to
  // report; what it drops from now on is.
  auto drops = openflow_->meterDrops(pipeline::kRejectMeterId);
  flowLogs().rejectMeterCreated(drops ? *drops : 0);
}

std::string Daemon::ovsRundir() const {
  // ovs-vswitchd's pid file and control socket sit next to the OVSDB socket (its run directory).
  if (options_.ovsdb.starts_with("unix:")) {
    return std::filesystem::path(options_.ovsdb.substr(5)).parent_path().string();
  }
  return "/var/run/openvswitch";
}

FlowLogRunner& Daemon::flowLogs() {
  if (!flow_logs_) {
    flow_logs_ = std::make_unique<FlowLogRunner>(options_.bridge, ovsRundir());
  }
  return *flow_logs_;
}

MirrorRunner& Daemon::mirrors() {
  if (!mirrors_) {
    mirrors_ = std::make_unique<MirrorRunner>(options_.bridge, ovsRundir());
  }
  return *mirrors_;
}

void Daemon::updateMirrors(MirrorRunner::Phase phase) {
  if (!policy_) {
    return;
  }
  // Also without mirrors in the config: the first pass on a connection removes what an earlier
  // run left (docs/mirroring.md).
  mirrors().update(*policy_, db_.get(), ofports_.count(pipeline::kMirrorTunnelKey) != 0, phase);
}

void Daemon::updateFlowLogs() {
  if (!policy_) {
    return;
  }
  flowLogs().update(*policy_, indices_, engine_.translator().ruleNames(), db_.get(),
                    openflow_.get(), ipfix_reconfigure_);
  ipfix_reconfigure_ = false;
}

void Daemon::reportSync(const char* reason, double ms) {
  countSync(reason, ms);
  flushReassignedZones();
  updateFlowLogs();
  updateMirrors(MirrorRunner::Phase::kAfterFlows);
  status_.last_sync = nowIso8601();
  status_.last_sync_ms = ms;
  status_.last_sync_reason = reason;
  if (!last_error_is_config_) {
    status_.last_error.clear();
    status_.last_error_time.clear();
  }
  writeStatus();
}

void Daemon::noteNewIndices(const std::map<std::string, uint16_t>& before) {
  if (indices_ == before) {
    return;  // the usual change: one pass in order, no lookups
  }
  for (const auto& [iface, zone] : indices_) {
    auto it = before.find(iface);
    if (it == before.end() || it->second != zone) {
      zones_to_flush_.insert(zone);
    }
  }
}

void Daemon::flushReassignedZones() {
  if (!openflow_ || zones_to_flush_.empty()) {
    return;
  }
  for (uint16_t zone : zones_to_flush_) {
    if (auto r = openflow_->flushConntrackZone(zone); !r) {
      logger("sync")->warn("conntrack_flush_failed zone={} error=\"{}\"", zone, r.error().message);
      return;  // kept for the next successful sync
    }
  }
  logger("sync")->info("conntrack_flushed zones={}", zones_to_flush_.size());
  zones_to_flush_.clear();
}

bool Daemon::connectionLost() {
  return !openflow_ || !openflow_->keepAlive().has_value();
}

// Interface indices are conntrack zones: a restarted daemon must reuse the ones its flows
// already carry, or live connections would lose their state. The classification flows say it:
// in_port=<ofport> -> set_field:<index>->reg0.
void Daemon::recoverInterfaceIndices() {
  if (!openflow_ || !policy_) {
    return;
  }
  const uint64_t kind = uint64_t{static_cast<uint8_t>(pipeline::CookieKind::kInterface)} << 24;
  auto flows = openflow_->dumpFlows(ovs::DumpFilter{pipeline::kClassify, pipeline::kCookieMagic | kind,
                                                    pipeline::kCookieMagicMask | (0xffULL << 24)});
  if (!flows) {
    logger("sync")->warn("index_recovery_failed error=\"{}\"", flows.error().message);
    return;
  }
  std::map<int, std::string> iface_by_port;
  for (const auto& [iface, port] : ofports_) {
    iface_by_port[port] = iface;
  }
  std::map<std::string, uint16_t> recovered;
  static const std::regex kPort(R"(in_port=(\d+))");
  static const std::regex kIndex(R"(set_field:(0x[0-9a-f]+|\d+)->reg0)");
  for (const auto& f : *flows) {
    std::smatch port;
    std::smatch index;
    if (std::regex_search(f.flow.match, port, kPort) &&
        std::regex_search(f.flow.actions, index, kIndex)) {
      auto it = iface_by_port.find(std::stoi(port[1]));
      const unsigned long value = std::stoul(index[1], nullptr, 0);
      if (it != iface_by_port.end() && value > 0 && value <= 0xffff) {
        recovered[it->second] = static_cast<uint16_t>(value);
      }
    }
  }
  if (recovered.empty()) {
    return;
  }
  // Recovered indices win over the ones given at start; the rest get the lowest free ones.
  std::map<std::string, uint16_t> previous = recovered;
  for (const auto& [iface, index] : indices_) {
    // `wanted`: clang 14 cannot capture a structured binding.
    const bool taken =
        std::any_of(recovered.begin(), recovered.end(),
                    [wanted = index](const auto& r) { return r.second == wanted; });
    if (recovered.count(iface) == 0 && !taken) {
      previous[iface] = index;
    }
  }
  auto indices = assignInterfaceIndices(*policy_, previous);
  if (indices) {
    indices_ = std::move(*indices);
    // Recovered zones keep their connections; every other zone starts clean.
    zones_to_flush_.clear();
    noteNewIndices(recovered);
    logger("sync")->info("indices_recovered interfaces={}", recovered.size());
  }
}

// Per-interface idle timeouts as zone timeout policies; written only when they change.
void Daemon::applyConntrackTimeouts() {
  if (!policy_ || !db_) {
    return;
  }
  if (conntrackTimeoutsAre(applied_timeouts_, *policy_, indices_)) {
    return;
  }
  auto wanted = conntrackTimeouts(*policy_, indices_);
  std::set<uint16_t> owned;
  for (const auto& [zone, timeouts] : applied_timeouts_) {
    owned.insert(zone);
  }
  if (auto r = db_->setConntrackTimeouts(options_.datapath_type, wanted, owned); !r) {
    logger("ovs")->warn("conntrack_timeouts_failed error=\"{}\"", r.error().message);
    return;
  }
  logger("ovs")->info("conntrack_timeouts_set zones={}", wanted.size());
  applied_timeouts_ = std::move(wanted);
}

PolicyEngine::Input Daemon::engineInput() const {
  PolicyEngine::Input in;
  in.policy = &*policy_;
  in.ofports = &ofports_;
  in.interface_index = &indices_;
  in.generation = generation_;
  return in;
}

// A translation failure is a bug (the policy was validated), never a reason to reconnect: it is
// reported and the switch keeps what it has.
bool Daemon::engineFailed(const PolicyEngine::Failure& failure, const char* what,
                          const char* reason) {
  auto log = logger("sync");
  if (failure.kind == PolicyEngine::FailureKind::kTranslate) {
    log->error("translate_failed reason={} error=\"{}\"", reason, failure.error.message);
    reportError("translate: " + failure.error.message);
    return true;
  }
  log->error("{} reason={} error=\"{}\"", what, reason, failure.error.message);
  reportError(failure.error.message);
  return false;
}

// Translates what changed and installs the difference. False only when the switch failed us.
bool Daemon::apply(const char* reason) {
  if (!policy_ || !engine_.attached()) {
    return true;
  }
  if (!synced_) {
    // The switch was never read on this connection (its first resync failed): a difference
    // against an unknown installed state could only add, never remove.
    return resync(reason);
  }
  ensureRejectMeter();
  // Routes of new local mirror targets before the flows that send copies along them.
  updateMirrors(MirrorRunner::Phase::kBeforeFlows);
  const auto start = Clock::now();
  auto report = engine_.apply(engineInput());
  last_apply_done_ = Clock::now();
  if (!report) {
    return engineFailed(report.error(), "apply_failed", reason);
  }
  last_apply_ = *report;
  reportSync(reason, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  logger("sync")->info(
      "applied reason={} flows={} added={} modified={} deleted={} translate_ms={:.2f} "
      "install_ms={:.2f} bundle_ms={:.2f} full_diff={}",
      reason, report->flows, report->sync.added, report->sync.modified, report->sync.deleted,
      report->translate_ms, report->sync_ms, report->bundle_ms, report->full);
  return true;
}

// Reads the switch and repairs any difference (start-up, reconnect, drift seen by the flow
// monitor, periodic check). False only when the switch failed us.
bool Daemon::resync(const char* reason) {
  auto log = logger("sync");
  if (!policy_ || !engine_.attached()) {
    return true;
  }
  updateMirrors(MirrorRunner::Phase::kBeforeFlows);  // as in apply()
  const auto start = Clock::now();
  // A failure with the connection still up (a dump error, a rejected bundle) is retried with
  // backoff instead of waiting for the periodic check.
  const auto retryLater = [&] {
    resync_retry_ = std::clamp(resync_retry_ * 2, std::chrono::milliseconds(500),
                               std::chrono::milliseconds(30000));
    drift_pending_ = true;
    drift_at_ = Clock::now() + resync_retry_;
    log->warn("resync_retry in_ms={}", resync_retry_.count());
  };
  ensureRejectMeter();
  if (!started_) {
    // A new start writes what it changes with the next generation; flows already right keep
    // theirs (adopted, not rewritten: established connections see no change at all). The
    // generation goes into the flows before they are compared, so it is read first, in a dump
    // of its own that keeps nothing (the compare below does not hold the switch's table).
    auto newest = engine_.readNewestGeneration();
    if (!newest) {
      log->error("resync_failed reason={} error=\"{}\"", reason, newest.error().message);
      reportError(newest.error().message);
      retryLater();
      return false;
    }
    generation_ = *newest >= 0xffff ? 1 : static_cast<uint16_t>(*newest + 1);
    started_ = true;
    log->info("generation {} installed_generation={}", generation_, *newest);
  }
  auto result = engine_.resync(engineInput());
  if (!result) {
    const bool ok = engineFailed(result.error(), "resync_failed", reason);
    if (!ok) {
      retryLater();
    }
    return ok;
  }
  synced_ = true;
  resync_retry_ = std::chrono::milliseconds(0);
  if (state_pending_generation_ > 0 && policy_) {
    status_.state_generation = state_pending_generation_;
    state_pending_generation_ = 0;
  }
  const SyncReport* report = &result->sync;
  const std::string_view why(reason);
  const bool drift = why == "periodic" || why == "drift";
  if (drift && report->changes() > 0) {
    // Only these find someone else's change: at start and after a reconnect a difference is the
    // expected catch-up.
    ++drift_repairs_;
    status_.last_repair = fmt::format("{} ({}: added {}, changed {}, removed {})", nowIso8601(),
                                      reason, report->added, report->modified, report->deleted);
    if (why == "drift") {
      noteDriftRepair();
    }
  }
  reportSync(reason, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  if (report->changes() == 0) {
    log->debug("resync_clean reason={} flows={}", reason, result->flows);
  } else if (drift) {
    log->info("resync_repaired reason={} added={} modified={} deleted={} repairs_total={}", reason,
              report->added, report->modified, report->deleted, drift_repairs_);
  } else {
    log->info("resync_applied reason={} added={} modified={} deleted={} flows={}", reason,
              report->added, report->modified, report->deleted, result->flows);
  }
  checkFlowRestoreWait();
  return true;
}

bool Daemon::pollFlowMonitor() {
  if (!monitor_ || !engine_.attached()) {
    return true;
  }
  constexpr size_t kBatch = 512;
  constexpr auto kBudget = std::chrono::milliseconds(3);
  const auto start = Clock::now();
  monitor_backlog_ = false;
  for (;;) {
    auto updates = monitor_->poll(kBatch);
    if (!updates) {
      logger("ovs")->warn("flow_monitor_lost error=\"{}\"", updates.error().message);
      return false;
    }
    for (const auto& u : *updates) {
      // The switch paused the monitor (our own large bundle, typically, outran our reading). On
      // resuming it reports every flow added or modified in between, and those go through the
      // checks below like any update; deletions may go unreported, which flow counts show.
      if (u.kind == ovs::FlowUpdateKind::kPaused) {
        logger("sync")->debug("flow_monitor_paused");
        engine_.recordChanges(true);
        continue;
      }
      if (u.kind == ovs::FlowUpdateKind::kResumed) {
        verify_counts_ = true;
        engine_.recordChanges(false);
        continue;
      }
      if (engine_.explains(u)) {
        continue;
      }
      // Between "paused" and "resumed" the switch replays the flows as they were when it
      // resumed; a flow we changed since the pause may have changed again after that moment
      // (a config change applied while the replay is read in slices): a replayed version our
      // own bundles had is stale, not drift. Any other version is someone else's.
      if (engine_.changedWhileRecording(u)) {
        continue;
      }
      last_drift_seen_ = Clock::now();
      last_drift_flow_ = fmt::format("{} table={} priority={} cookie={:#x}", ovs::toString(u.kind),
                                     u.flow.table, u.flow.priority, u.flow.cookie);
      if (!drift_pending_) {
        // A short delay lets a burst (one del-flows removes many flows) end first; the repair
        // reads the whole table anyway. Longer while another controller fights (see
        // noteDriftRepair()).
        drift_pending_ = true;
        drift_at_ = Clock::now() + drift_delay_;
        noteChange("drift");
        logger("sync")->info("drift_detected update={} table={} priority={} cookie={:#x} match=\"{}\"",
                             ovs::toString(u.kind), u.flow.table, u.flow.priority, u.flow.cookie,
                             u.flow.match);
      }
    }
    if (updates->size() < kBatch) {
      if (verify_counts_) {
        verify_counts_ = false;
        verifyCountsAfterPause();
      }
      return true;
    }
    if (Clock::now() - start >= kBudget) {
      monitor_backlog_ = true;  // the rest on the next turn of the loop, after what else came
      return true;
    }
  }
}

void Daemon::verifyCountsAfterPause() {
  auto log = logger("sync");
  if (drift_pending_) {
    return;  // a full comparison is coming anyway
  }
  const auto installed = engine_.installedPerTable();
  std::string mismatch;
  for (const auto owned : pipeline::kOwnedTables) {
    const auto table = static_cast<uint8_t>(owned);
    ovs::DumpFilter ours;
    ours.table = table;
    ours.cookie = pipeline::kCookieMagic;
    ours.cookie_mask = pipeline::kCookieMagicMask;
    auto n = openflow_->countFlows(ours);
    const auto it = installed.find(table);
    const size_t want = it == installed.end() ? 0 : it->second;
    if (!n) {
      mismatch = fmt::format("count of table {} failed: {}", table, n.error().message);
      break;
    }
    if (*n != want) {
      mismatch = fmt::format("table {} holds {} of our flows, {} expected", table, *n, want);
      break;
    }
  }
  if (mismatch.empty()) {
    log->info("flow_monitor_resumed verified=flow_counts (no full comparison)");
    return;
  }
  // Something deleted flows of ours while the monitor was paused.
  log->info("flow_monitor_resumed mismatch=\"{}\" (full comparison)", mismatch);
  drift_pending_ = true;
  drift_at_ = Clock::now();
  noteChange("drift");
}

void Daemon::noteDriftRepair() {
  // Five repairs within ten seconds: not an operator's slip but something that changes our
  // flows back each time (another controller on our tables). Repairing at once would make the
  // two of us rewrite the table in a loop; back off instead, and say so.
  constexpr size_t kFightRepairs = 5;
  constexpr auto kWindow = std::chrono::seconds(10);
  const auto now = Clock::now();
  drift_repair_times_.push_back(now);
  while (!drift_repair_times_.empty() && now - drift_repair_times_.front() > kWindow) {
    drift_repair_times_.pop_front();
  }
  if (drift_repair_times_.size() < kFightRepairs) {
    return;
  }
  drift_delay_ = std::clamp(drift_delay_ * 2, std::chrono::milliseconds(1000),
                            std::chrono::milliseconds(30000));
  status_.controller_fight = fmt::format(
      "another controller keeps changing vpcguard's flows back ({} repairs in 10 s; last seen: "
      "{}); repairs now wait {:.0f} s",
      drift_repair_times_.size(), last_drift_flow_,
      std::chrono::duration<double>(drift_delay_).count());
  logger("sync")->warn("controller_fight repairs_10s={} last=\"{}\" repair_delay_ms={}",
                       drift_repair_times_.size(), last_drift_flow_, drift_delay_.count());
  writeStatus();
}

void Daemon::endFightIfQuiet() {
  // Over once nothing changed our flows for a while (and no repair is waiting).
  if (status_.controller_fight.empty() || drift_pending_ ||
      Clock::now() - last_drift_seen_ < std::chrono::seconds(5)) {
    return;
  }
  logger("sync")->info("controller_fight_ended after=\"{}\"", status_.controller_fight);
  status_.controller_fight.clear();
  drift_delay_ = std::chrono::milliseconds(50);
  drift_repair_times_.clear();
  writeStatus();
}

void Daemon::checkFlowRestoreWait() {
  if (!db_ || !synced_) {
    return;  // only once our flows are known to be in the switch of this connection
  }
  auto log = logger("ovs");
  auto set = db_->flowRestoreWait();
  if (!set) {
    log->warn("flow_restore_wait_unknown error=\"{}\"", set.error().message);
    return;
  }
  const auto now = Clock::now();
  flow_restore_check_ = now + std::chrono::milliseconds(500);
  if (!*set) {
    if (status_.flow_restore_wait) {
      log->info("flow_restore_wait_cleared by=other");
      status_.flow_restore_wait = false;
      writeStatus();
    }
    return;
  }
  if (!status_.flow_restore_wait) {
    flow_restore_since_ = now;
    status_.flow_restore_wait = true;
    log->warn("flow_restore_wait_set waiting_s={} (our flows are in; whoever restarts OVS clears it)",
              options_.flow_restore_grace.count());
    writeStatus();
  }
  if (now - flow_restore_since_ >= options_.flow_restore_grace) {
    // Left set, ovs-vswitchd would never forward again: our flows are in, so clearing it lets
    // traffic through under the policy.
    if (auto r = db_->setFlowRestoreWait(false); !r) {
      log->warn("flow_restore_wait_clear_failed error=\"{}\"", r.error().message);
      return;
    }
    log->warn("flow_restore_wait_cleared by=vpcguardd waited_s={}",
              std::chrono::duration_cast<std::chrono::seconds>(now - flow_restore_since_).count());
    status_.flow_restore_wait = false;
    writeStatus();
  }
}

int Daemon::run() {
  engine_.setBeforeSwitchCall([this] { service_.tick(); });
  auto log = logger("daemon");
  if (options_.status_file.empty()) {
    options_.status_file = defaultStatusFile(options_.bridge);
  }
  status_.pid = static_cast<int>(::getpid());
  status_.version = kVersion;
  status_.bridge = options_.bridge;
  status_.ovsdb = options_.ovsdb;
  status_.config = options_.config.string();
  status_.source = stateMode() ? "state:" + options_.state : "config:" + options_.config.string();
  // First: everything below may count (a refused config, an unreachable state database).
  if (!startMetrics()) {
    return 1;
  }
  if (stateMode()) {
    // Unlike a broken config file, an unreachable or empty database is not fatal: it may come
    // up after us, and until then the flows from before stay in force.
    if (openState()) {
      (void)pollState(/*force=*/true, /*switch_up=*/false);
    }
  } else if (!loadConfig(true)) {
    log->error("startup_failed reason=\"the config has errors; nothing was changed on the switch\"");
    return 1;
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  Fd signals(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (signals.get() < 0) {
    log->error("startup_failed reason=\"signalfd: {}\"", std::strerror(errno));
    return 1;
  }
  // `vpcguardctl log-level` (daemon/control_socket.h); without it the daemon still runs. Opened
  // before any thread exists (its mode comes from a process-wide umask): the metrics' hit-read
  // threads start from scrapes, which are served only from the loops below.
  const std::string control_path = options_.control_socket.value_or(
      defaultControlSocket(options_.status_file, options_.bridge));
  if (!control_path.empty()) {
    if (auto control = ControlSocket::open(control_path); control) {
      control_ = std::move(*control);
      log->info("control_socket path={}", control_path);
    } else {
      log->error("control_socket_failed error=\"{}\" (vpcguardctl log-level will not reach us)",
                 control.error().message);
    }
  }
  // Sleeps up to `period` for a signal while answering the control socket and pinging the
  // watchdog (start-up, waiting for Open vSwitch). True when a signal is waiting.
  const auto awaitSignal = [&](std::chrono::milliseconds period) {
    const auto until = Clock::now() + period;
    for (;;) {
      service_.tick();
      const auto now = Clock::now();
      if (now >= until) {
        return false;
      }
      std::vector<pollfd> fds = {{signals.get(), POLLIN, 0}};
      if (control_) {
        control_->appendPollFds(fds);
      }
      appendMetricsFds(fds);
      auto wait = std::min(std::chrono::ceil<std::chrono::milliseconds>(until - now),
                           service_.untilNextPing(now));
      if (const auto server = untilServerDeadline()) {
        wait = std::min(wait, *server);  // slow clients are cut off on time
      }
      ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
      if (control_) {
        control_->service(fds);
      }
      serveMetrics(fds);
      if ((fds[0].revents & POLLIN) != 0) {
        return true;
      }
    }
  };

  // Watch the directory (editors save by rename, which a watch on the file itself would miss),
  // and react only to our file(s) being written or replaced.
  Fd inotify(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  const bool config_is_dir = std::filesystem::is_directory(options_.config);
  const auto watched = config_is_dir ? options_.config
                       : options_.config.parent_path().empty()
                           ? std::filesystem::path(".")
                           : options_.config.parent_path();
  const uint32_t watch_mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM;
  if (!stateMode() &&
      (inotify.get() < 0 || inotify_add_watch(inotify.get(), watched.c_str(), watch_mask) < 0)) {
    log->warn("config_watch_failed path={} error=\"{}\" (SIGHUP still reloads)", watched.string(),
              std::strerror(errno));
  }
  const std::string config_name = options_.config.filename().string();
  const auto isOurs = [&](const std::string& name) {
    return config_is_dir ? name.size() > 5 && name.ends_with(".toml") : name == config_name;
  };
  bool reload_pending = false;  // debounced config reload at reload_at
  bool resync_requested = false;  // SIGHUP with --state
  Clock::time_point reload_at = Clock::now();

  bool reconnect_at_start = false;
  // Start-up: connect with backoff; report while waiting.
  auto backoff = std::chrono::milliseconds(250);
  const auto started = Clock::now();
  while (!connect()) {
    if (options_.connect_timeout.count() > 0 && Clock::now() - started > options_.connect_timeout) {
      log->error("startup_failed reason=\"cannot reach Open vSwitch\" waited_s={}",
                 options_.connect_timeout.count());
      return 1;
    }
    log->info("retrying_connect in_ms={}", backoff.count());
    if (awaitSignal(backoff)) {
      signalfd_siginfo si{};
      if (::read(signals.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo != SIGHUP) {
          log->info("stopping signal={} (before connecting)", si.ssi_signo);
          service_.stopping("stopping (signal " + std::to_string(si.ssi_signo) + ")");
          return 0;
        }
        // Reload before connecting: the policy installed first is then the newest one.
        if (!stateMode() && loadConfig(false)) {
          log->info("reload_requested by=SIGHUP (before connecting)");
        }
        rollback_policy_.reset();  // nothing installed yet: nothing to roll back to
      }
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(8000));
    if (stateMode()) {
      // Keep following the database meanwhile: the policy installed first is the newest one.
      const bool opened = !state_ && Clock::now() >= state_retry_at_ && openState();
      (void)pollState(opened, /*switch_up=*/false);
    }
  }
  recoverInterfaceIndices();
  applyConntrackTimeouts();
  if (!resync("startup") && connectionLost()) {
    reconnect_at_start = true;
  }
  if (!policy_) {
    writeStatus();  // connected, nothing to apply yet (an empty or unreachable state database)
  }

  auto next_resync = Clock::now() + jittered(options_.resync_interval);
  bool reconnect = reconnect_at_start;
  for (;;) {
    // Here, and before each call that waits for the switch (each has a deadline, see
    // ovs-plugin/deadline_guard.h): a loop that hangs stops the watchdog pings.
    service_.tick();
    if (reconnect) {
      if (connect()) {
        reconnect = false;
        countReconnect("ovsdb");
        countReconnect("openflow");
        resync("reconnect");
        backoff = std::chrono::milliseconds(250);
      } else {
        backoff = std::min(backoff * 2, std::chrono::milliseconds(8000));
      }
    }
    // While the switch does not answer, the periodic and drift comparisons wait (they would
    // talk to it): they must not set the wake time either, or the loop would spin.
    const bool silent_switch = !unresponsive_.empty();
    auto wake = reconnect ? Clock::now() + backoff
                : silent_switch ? Clock::now() + std::chrono::seconds(1)
                                : next_resync;
    if (reload_pending && reload_at < wake) {
      wake = reload_at;
    }
    if (drift_pending_ && !silent_switch && drift_at_ < wake) {
      wake = drift_at_;
    }
    if (stateMode() && !state_ && state_retry_at_ < wake) {
      wake = state_retry_at_;
    }
    // Wake at least every second: to answer ovs-vswitchd's OpenFlow keep-alive probes and to
    // notice a restarted ovs-vswitchd (its OpenFlow connection closes) within a second; every
    // 100 ms while the flow monitor runs (its connection is read by polling; at once while it has
    // a backlog), so drift is repaired well within a second.
    long max_wait_ms =
        monitor_ && !reconnect ? (monitor_backlog_ && !silent_switch ? 0 : 100) : 1000;
    if (flow_logs_) {
      max_wait_ms = std::min<long>(max_wait_ms, flow_logs_->untilNextTick().count());
    }
    if (mirrors_) {
      max_wait_ms = std::min<long>(max_wait_ms, mirrors_->untilNextTick().count());
    }
    max_wait_ms = std::min<long>(max_wait_ms, service_.untilNextPing().count());
    if (const auto server = untilServerDeadline()) {
      max_wait_ms = std::min<long>(max_wait_ms, server->count());  // clients cut off on time
    }
    const auto wait_ms = std::clamp<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count(), 0,
        max_wait_ms);
    std::vector<pollfd> fds = {{signals.get(), POLLIN, 0}, {inotify.get(), POLLIN, 0}};
    const size_t flow_log_slot = fds.size();
    if (flow_logs_ && flow_logs_->fd() >= 0) {
      fds.push_back({flow_logs_->fd(), POLLIN, 0});
    }
    if (db_ && !reconnect) {
      fds.push_back({db_->fd(), POLLIN, 0});
    }
    if (state_ && state_->fd() >= 0) {
      fds.push_back({state_->fd(), POLLIN, 0});  // read below in any case (pollState)
    }
    if (control_) {
      control_->appendPollFds(fds);
    }
    appendMetricsFds(fds);
    ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
    if (control_) {
      control_->service(fds);
    }
    serveMetrics(fds);
    // The switch does not answer (see checkResponsive(), below): read and check changes, but
    // leave the switch alone until it answers again.
    const bool quiet = !unresponsive_.empty();
    if (flow_logs_) {
      if (flow_log_slot < fds.size() && fds[flow_log_slot].fd == flow_logs_->fd() &&
          (fds[flow_log_slot].revents & POLLIN) != 0) {
        flow_logs_->onReadable();
      }
      flow_logs_->tick(reconnect || quiet ? nullptr : openflow_.get());
    }
    if (mirrors_) {
      mirrors_->tick(reconnect || quiet ? nullptr : db_.get());
    }

    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(signals.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP && stateMode()) {
          // No file to read again: the database is followed continuously. Compare with the
          // switch instead.
          log->info("resync_requested by=SIGHUP");
          resync_requested = true;
        } else if (si.ssi_signo == SIGHUP) {
          log->info("reload_requested by=SIGHUP");
          noteChange("config");
          reload_pending = true;
          reload_at = Clock::now();
        } else {
          log->info("stopping signal={} flows=kept", si.ssi_signo);
          service_.stopping("stopping (signal " + std::to_string(si.ssi_signo) +
                            "); the flows stay installed");
          if (flow_logs_) {
            // The open interval's records are published, not lost.
            flow_logs_->shutdown(reconnect ? nullptr : openflow_.get());
          }
          return 0;
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      alignas(inotify_event) char buf[4096];
      ssize_t n = 0;
      while ((n = ::read(inotify.get(), buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
          if (ev->len > 0 && isOurs(ev->name)) {
            // A file renamed into place is complete: reload almost at once. Written in place,
            // it may be written in several steps: wait for the burst to end.
            // A directory may be replaced file by file: wait for that burst too.
            const auto delay = (ev->mask & IN_MOVED_TO) != 0 && !config_is_dir
                                   ? std::min(options_.config_settle, std::chrono::milliseconds(5))
                                   : options_.config_settle;
            const auto at = Clock::now() + delay;
            noteChange("config");
            reload_at = reload_pending ? std::max(reload_at, at) : at;
            reload_pending = true;
          }
          off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        }
      }
    }
    // Also when the socket is quiet: updates that arrived during our own transactions are
    // already queued inside the client.
    if (db_ && !reconnect) {
      auto events = db_->pollInterfaceEvents(std::chrono::milliseconds(0));
      if (!events) {
        logger("ovs")->warn("ovsdb_lost error=\"{}\"", events.error().message);
        status_.connected = false;
        reportError("OVSDB connection lost: " + events.error().message);
        reconnect = true;
      } else if (!events->empty()) {
        noteChange("interfaces");
        handleInterfaceEvents(*events);
        if (!quiet && !apply("interfaces") && connectionLost()) {
          reconnect = true;
        }
      }
    }
    if (stateMode()) {
      // A new connection's first monitor reply is the whole database: applied as one change
      // (the incremental path then sends only what differs from what is installed).
      const bool opened = !state_ && Clock::now() >= state_retry_at_ && openState();
      if (!pollState(opened, !reconnect && !quiet)) {
        reconnect = true;
      }
    }
    if (resync_requested && !reconnect && !quiet) {
      resync_requested = false;
      if (!resync("sighup") && connectionLost()) {
        reconnect = true;
      }
    }
    if (reload_pending && Clock::now() >= reload_at && !stateMode()) {
      // A file some process still holds open for writing may be valid TOML and still only half
      // of what is being written: wait for its close (inotify reports it) before reading.
      if (const auto writing = config::openForWriting(options_.config)) {
        const auto waited = Clock::now() - (config_writer_since_ ? *config_writer_since_ : Clock::now());
        if (!config_writer_since_) {
          config_writer_since_ = Clock::now();
          log->info("config_deferred reason=\"open for writing by another process\" path={}",
                    writing->string());
        } else if (waited >= std::chrono::seconds(10) && !config_writer_warned_) {
          config_writer_warned_ = true;
          log->warn("config_deferred reason=\"still open for writing after 10 s; the running "
                    "policy stays until it is closed (or save by rename)\" path={}",
                    writing->string());
        }
        reload_at = Clock::now() + std::chrono::milliseconds(100);
      } else {
        config_writer_since_.reset();
        config_writer_warned_ = false;
      }
    }
    if (reload_pending && Clock::now() >= reload_at) {
      reload_pending = false;
      auto last_indices = indices_;
      const bool loaded = loadConfig(false);
      const auto installed =
          loaded && !reconnect && !quiet
              ? installAdopted(std::move(last_indices), "config")
              : Install::kSwitchLost;
      rollback_policy_.reset();  // deferred: nothing to roll back on this switch
      // "deferred": valid but not on the switch yet; the reconnect's resync installs it.
      const char* result = "deferred";
      if (!loaded || installed == Install::kRolledBack) {
        result = "refused";
      } else if (installed == Install::kApplied) {
        result = "applied";
      }
      countConfigReload(result);
      change_seen_.erase("config");  // refused, or timed by its sync
      if (loaded && installed == Install::kSwitchLost && !quiet) {
        reconnect = true;  // the new policy goes in with the reconnect's resync
      }
      if (loaded && quiet) {
        log->info("config_deferred reason=\"the switch does not respond; installed when it "
                  "answers again\"");
      }
    }
    if (!reconnect && openflow_) {
      if (auto alive = openflow_->keepAlive(); !alive) {
        logger("ovs")->warn("openflow_lost error=\"{}\"", alive.error().message);
        status_.connected = false;
        reportError("OpenFlow connection lost: " + alive.error().message);
        reconnect = true;
      }
    }
    // A switch that keeps its sockets open but answers nothing (stopped, hung): nothing below
    // talks to it; what changes meanwhile is installed by the resync when it answers again.
    const bool stalled = !reconnect && !checkResponsive();
    if (!reconnect && !stalled && !pollFlowMonitor()) {
      status_.connected = false;
      reportError("OpenFlow flow monitor lost");
      reconnect = true;
    }
    endFightIfQuiet();
    if (!reconnect && !stalled && drift_pending_ && Clock::now() >= drift_at_) {
      drift_pending_ = false;
      if (!resync("drift") && connectionLost()) {
        reconnect = true;
      }
    }
    if (!reconnect && !stalled && status_.flow_restore_wait && Clock::now() >= flow_restore_check_) {
      checkFlowRestoreWait();
    }
    if (!reconnect && !stalled && Clock::now() >= next_resync) {
      if (!resync("periodic") && connectionLost()) {
        reconnect = true;
      }
      next_resync = Clock::now() + jittered(options_.resync_interval);
    }
  }
}

}  // namespace vpcguard
