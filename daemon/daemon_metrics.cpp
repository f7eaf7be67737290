// vpcguardd's Prometheus metrics (docs/metrics.md: the names are a contract).
//
// Counters are counted where things happen (syncs, errors, reconnects, reloads); gauges and the
// counts other components keep (flows per table, drift repairs, flow logs) are copied into the
// registry just before each scrape. Per-rule hit counters need the switch's flow statistics: a
// dump of the four rule tables, which takes seconds at 100k flows, so it never runs in the loop:
// a scrape starts one (at most every --metrics-rule-hits-interval, never while disconnected) on a thread and
// OpenFlow connection of its own, and is answered with the counts of the last one finished.
// The thread is detached and shares only a RuleHitsRead with the daemon: SIGTERM never waits for
// a read (up to 4 requests of kRuleHitsTimeout), and whatever fails there (no thread to be had,
// an exception in the read) costs a warning and the previous counts, never the daemon.
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "daemon/version.h"
#include "explain/hits.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRuleHitsTimeout = std::chrono::milliseconds(5000);  // per request

// Milliseconds to tens of seconds: a delta to a few rules takes ms, a full table at 100k flows
// seconds; the file debounce (5-200 ms) is part of a config change.
const std::vector<double> kChangeBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,      2.5,   5,    10,    30};

}  // namespace

bool Daemon::startMetrics() {
  using metrics::Type;
  auto& m = metrics_;
  m.declare("vpcguard_up", "1 while vpcguardd runs.", Type::kGauge);
  m.declare("vpcguard_build_info", "vpcguardd's version and the Open vSwitch it was built with.",
            Type::kGauge);
  m.declare("vpcguard_flows", "Flows vpcguardd has installed, per OpenFlow table.", Type::kGauge);
  m.declare("vpcguard_change_duration_seconds",
            "From a change being seen (config file, state database, interface event, drift) to "
            "the switch confirming the new flows (barrier).",
            Type::kHistogram, kChangeBuckets);
  m.declare("vpcguard_syncs_total", "Successful syncs with the switch, by reason.",
            Type::kCounter);
  m.declare("vpcguard_drift_repairs_total",
            "Syncs that repaired a change someone else made to our flows.", Type::kCounter);
  m.declare("vpcguard_reconnects_total",
            "Connections opened again after being lost (ovsdb and openflow are opened together).",
            Type::kCounter);
  m.declare("vpcguard_errors_total", "Errors reported in the status, by kind.", Type::kCounter);
  m.declare("vpcguard_config_reloads_total", "Config file reloads, by result.", Type::kCounter);
  m.declare("vpcguard_switch_connected", "1 while connected to OVSDB and OpenFlow.",
            Type::kGauge);
  m.declare("vpcguard_policy_generation",
            "Generation of the state database installed on the switch (--state).", Type::kGauge);
  m.declare("vpcguard_mirror_sessions", "Traffic mirror sessions of the policy in force.",
            Type::kGauge);
  m.declare("vpcguard_flow_log_records_total",
            "Flow-log records written, per flow log and action (ACCEPT, REJECT; NODATA and "
            "SKIPDATA records as their status).",
            Type::kCounter);
  m.declare("vpcguard_flow_log_skipped_records_total",
            "Flow-log records SKIPDATA records report as lost, per flow log and reason.",
            Type::kCounter);
  m.declare("vpcguard_flow_log_rate_limited_packets_total",
            "Rejected packets not logged because of --flow-log-reject-rate, per flow log (as "
            "SKIPDATA records with reason rate-limited report them).",
            Type::kCounter);
  m.declare("vpcguard_flow_log_reject_samples_dropped_total",
            "Rejected packets the reject meter dropped unsampled (--flow-log-reject-rate).",
            Type::kCounter);
  m.set("vpcguard_up", 1);
  m.set("vpcguard_build_info", {{"version", kVersion}, {"ovs_version", kOvsVersion}}, 1);
  m.set("vpcguard_drift_repairs_total", 0);
  for (const char* c : {"ovsdb", "openflow", "state"}) {
    m.add("vpcguard_reconnects_total", {{"connection", c}}, 0);
  }
  for (const char* r : {"applied", "refused", "deferred"}) {
    m.add("vpcguard_config_reloads_total", {{"result", r}}, 0);
  }
  rule_hits_text_ = explain::renderHitsPrometheus({});
  if (options_.metrics_listen.empty()) {
    return true;
  }
  auto log = logger("metrics");
  std::string error;
  auto address = metrics::parseListenAddress(options_.metrics_listen, &error);
  if (!address) {
    log->error("startup_failed reason=\"--metrics-listen {}\"", error);
    return false;
  }
  if (!address->loopback()) {
    log->warn("metrics_not_loopback listen={} (anyone who reaches this address can read the "
              "policy's rule names and counters)",
              address->toString());
  }
  metrics_server_ = metrics::MetricsServer::listen(
      *address, [this] { return renderMetrics(); }, {}, &error);
  if (!metrics_server_) {
    log->error("startup_failed reason=\"--metrics-listen: {}\"", error);
    return false;
  }
  log->info("metrics_listening listen={}", address->toString());
  return true;
}

void Daemon::appendMetricsFds(std::vector<pollfd>& fds) const {
  if (metrics_server_) {
    metrics_server_->appendPollFds(fds);
  }
}

void Daemon::serveMetrics(const std::vector<pollfd>& fds) {
  if (metrics_server_) {
    metrics_server_->afterPoll(fds);
  }
}

std::optional<std::chrono::milliseconds> Daemon::untilServerDeadline() const {
  std::optional<std::chrono::milliseconds> next;
  if (metrics_server_) {
    next = metrics_server_->untilNextDeadline();
  }
  if (control_) {
    if (auto c = control_->untilNextDeadline(); c && (!next || *c < *next)) {
      next = c;
    }
  }
  return next;
}

void Daemon::noteChange(const char* trigger) {
  if (std::string_view(trigger) == "interfaces") {
    change_seen_[trigger] = Clock::now();  // applied at once: an older sight was not ours to time
    return;
  }
  // The first sight counts: a burst of file events or flow updates is one change, timed from
  // its start.
  change_seen_.emplace(trigger, Clock::now());
}

void Daemon::countSync(const char* reason, double ms) {
  const auto now = Clock::now();
  metrics_.add("vpcguard_syncs_total", {{"reason", reason}});
  const std::string_view why(reason);
  if (auto it = change_seen_.find(reason); it != change_seen_.end()) {
    metrics_.observe("vpcguard_change_duration_seconds", {{"trigger", reason}},
                     std::chrono::duration<double>(now - it->second).count());
    change_seen_.erase(it);
  } else if (why == "periodic" && drift_repairs_ != drift_repairs_timed_) {
    // A periodic comparison that repaired something: timed from its own start.
    metrics_.observe("vpcguard_change_duration_seconds", {{"trigger", reason}}, ms / 1000.0);
  } else if (why != "periodic") {
    // Start-up, reconnect: from the start of the sync.
    metrics_.observe("vpcguard_change_duration_seconds", {{"trigger", reason}}, ms / 1000.0);
  }
  drift_repairs_timed_ = drift_repairs_;
  if (why == "startup" || why == "reconnect") {
    // A full sync installs whatever was pending (a change seen while the switch was away): those
    // sights are no longer waiting for a sync of their own.
    change_seen_.clear();
  }
}

void Daemon::countError(const std::string& error, bool config_error) {
  // The kind from what reported it (reportError's callers say it in the message's first words).
  std::string kind = "switch";
  if (config_error) {
    kind = "config_refused";
  } else if (error.starts_with("OVSDB unreachable") || error.starts_with("OpenFlow unreachable")) {
    kind = "connect_failed";
  } else if (error.find("connection lost") != std::string::npos ||
             error.find("monitor lost") != std::string::npos) {
    kind = "connection_lost";
  } else if (error.starts_with("translate:")) {
    kind = "translate";
  }
  metrics_.add("vpcguard_errors_total", {{"kind", kind}});
}

void Daemon::countReconnect(const char* connection) {
  metrics_.add("vpcguard_reconnects_total", {{"connection", connection}});
}

void Daemon::countConfigReload(const char* result) {
  metrics_.add("vpcguard_config_reloads_total", {{"result", result}});
}

struct Daemon::RuleHitsRead {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  bool ok = false;
  std::string text;  // the rendered counters, or why the read failed
};

Daemon::~Daemon() {
  if (auto job = rule_hits_job_) {
    // A read about to end may end; one that is not is left to its detached thread (it holds
    // what it needs), so stopping is not delayed by a slow switch.
    std::unique_lock lock(job->mutex);
    job->finished.wait_for(lock, std::chrono::milliseconds(100), [&] { return job->done; });
  }
}

namespace {

// Reads the rule tables' statistics on a connection of its own and renders the hit counters.
// Runs on a thread of its own: nothing here touches the daemon.
std::pair<bool, std::string> readRuleHits(const std::string& target, const model::Policy& policy,
                                          const std::map<uint32_t, std::string>& rule_names) {
  auto channel = ovs::connectOpenFlow(target, kRuleHitsTimeout);
  if (!channel) {
    return {false, channel.error().message};
  }
  std::vector<explain::FlowStats> stats;
  for (auto table : {pipeline::kSgEgressEval, pipeline::kNaclOut, pipeline::kNaclIn,
                     pipeline::kSgIngressEval}) {
    auto flows = (*channel)->dumpFlows(ovs::DumpFilter{static_cast<uint8_t>(table),
                                                       pipeline::kCookieMagic,
                                                       pipeline::kCookieMagicMask});
    if (!flows) {
      return {false, flows.error().message};
    }
    for (auto& f : *flows) {
      stats.push_back({std::move(f.flow), f.n_packets, f.n_bytes, f.duration_sec});
    }
  }
  Translation translation;
  translation.rule_names = rule_names;
  return {true, explain::renderHitsPrometheus(explain::ruleHits(policy, translation, stats))};
}

}  // namespace

void Daemon::refreshRuleHits() {
  if (rule_hits_job_) {
    std::unique_lock lock(rule_hits_job_->mutex);
    if (!rule_hits_job_->done) {
      return;  // still reading: this scrape gets the previous counts
    }
    if (rule_hits_job_->ok) {
      rule_hits_text_ = std::move(rule_hits_job_->text);
    } else {
      logger("metrics")->warn("rule_hits_unread error=\"{}\" (the previous counts are served)",
                              rule_hits_job_->text);
    }
    lock.unlock();
    rule_hits_job_.reset();
  }
  // Only with our flows known to be on the switch of this connection.
  const auto now = Clock::now();
  if (!policy_ || !engine_.attached() || !synced_ || !status_.connected || !unresponsive_.empty() ||
      status_.openflow.empty() || options_.metrics_rule_hits_interval.count() == 0 ||
      (rule_hits_at_ && now - *rule_hits_at_ < options_.metrics_rule_hits_interval)) {
    return;
  }
  rule_hits_at_ = now;
  auto job = std::make_shared<RuleHitsRead>();
  try {
    std::thread([job, target = status_.openflow, policy = *policy_,
                 names = engine_.translator().ruleNames()] {
      std::pair<bool, std::string> result;
      try {
        result = readRuleHits(target, policy, names);
      } catch (const std::exception& e) {
        result = {false, std::string("exception: ") + e.what()};
      } catch (...) {
        result = {false, "unknown exception"};
      }
      {
        std::lock_guard lock(job->mutex);
        job->ok = result.first;
        job->text = std::move(result.second);
        job->done = true;
      }
      job->finished.notify_all();
    }).detach();
  } catch (const std::exception& e) {  // std::system_error: no thread to be had; bad_alloc
    logger("metrics")->warn("rule_hits_unread error=\"cannot start the read: {}\" (the previous "
                            "counts are served)",
                            e.what());
    return;
  }
  rule_hits_job_ = std::move(job);
}

std::string Daemon::renderMetrics() {
  auto& m = metrics_;
  m.clear("vpcguard_flows");
  // As of the last sync (every sync writes the status): counting the installed flows again on
  // each scrape took 16 ms at 100k flows. While disconnected: the last known.
  for (const auto& [table, n] : status_.flows_per_table) {
    m.set("vpcguard_flows", {{"table", std::to_string(table)}}, static_cast<double>(n));
  }
  m.set("vpcguard_drift_repairs_total", static_cast<double>(drift_repairs_));
  m.set("vpcguard_switch_connected", status_.connected && engine_.attached() ? 1 : 0);
  if (stateMode()) {
    m.set("vpcguard_policy_generation", static_cast<double>(status_.state_generation));
  }
  m.set("vpcguard_mirror_sessions",
        policy_ ? static_cast<double>(policy_->traffic_mirror_sessions.size()) : 0);
  if (flow_logs_) {
    const auto& st = flow_logs_->stats();
    for (const auto& [key, n] : st.records) {
      m.set("vpcguard_flow_log_records_total", {{"flow_log_id", key.first}, {"action", key.second}},
            static_cast<double>(n));
    }
    for (const auto& [key, n] : st.skipped) {
      // SKIPDATA records count lost records, except for rate-limited ones: rejected packets.
      if (key.second == "rate-limited") {
        m.set("vpcguard_flow_log_rate_limited_packets_total", {{"flow_log_id", key.first}},
              static_cast<double>(n));
      } else {
        m.set("vpcguard_flow_log_skipped_records_total",
              {{"flow_log_id", key.first}, {"reason", key.second}}, static_cast<double>(n));
      }
    }
    m.set("vpcguard_flow_log_reject_samples_dropped_total",
          static_cast<double>(st.reject_samples_dropped));
  }
  refreshRuleHits();
  return m.render() + rule_hits_text_;
}

}  // namespace vpcguard
