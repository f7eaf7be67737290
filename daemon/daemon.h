#pragma once
// vpcguardd's main loop.
//
// Design: one thread, one poll() over the event sources — signals (signalfd: SIGHUP reloads,
// SIGTERM/SIGINT stop), the config path (inotify: a saved file reloads), the OVSDB connection
// (interface attach/detach/ofport changes), the switch's flow monitor (someone else changed a
// flow: read every 100 ms, repaired by a full comparison at once) and a timer (periodic full
// comparison with the switch, with jitter, for whatever the monitor cannot see). Every input change ends in the same place:
// translate the current policy for the currently attached interfaces and let FlowSync send the
// difference as one atomic bundle. A config that fails validation is logged and ignored: the
// last good policy stays installed. Stopping leaves the flows in place (fail-secure bridge), so
// traffic keeps its policy while the daemon is down.
//
// Desired state from the database (--state, docs/design.md "Desired state from the database"):
// instead of a config file, the policy is the vpcguard OVSDB database, followed with a monitor
// (state::StateStore). Its socket is one more source of the poll loop; each committed
// transaction that reaches the replica is rebuilt into a Policy, validated, and then takes the
// path of a successful config reload (the incremental translator sends only the difference).
// The database connection has deadlines and reconnects with backoff; while it is down, and while
// the database is still empty, the installed flows stay.

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "daemon/config_loader.h"
#include "daemon/control_socket.h"
#include "daemon/flow_log_runner.h"
#include "daemon/mirror_runner.h"
#include "daemon/policy_engine.h"
#include "daemon/service.h"
#include "daemon/status.h"
#include "metrics/registry.h"
#include "metrics/server.h"
#include "state/store.h"
#include "ovs-plugin/openflow.h"
#include "ovs-plugin/vswitch_db.h"
#include "translator/model.h"
#include "translator/translate.h"

namespace vpcguard {

struct DaemonOptions {
  // Exactly one of the two: a policy file (or directory), or the target of the vpcguard state
  // database ("unix:/run/vpcguard/state.sock", "tcp:H:P").
  std::filesystem::path config;
  std::string state;
  // Deadline of every request to the state database, so a hung server cannot stall the loop.
  std::chrono::milliseconds state_request_timeout{5000};
  std::string bridge = "br-int";
  std::string ovsdb = "unix:/var/run/openvswitch/db.sock";
  // Default: unix:<directory of the OVSDB socket>/<bridge>.mgmt, where ovs-vswitchd puts it.
  std::string openflow;
  std::string datapath_type = "system";
  std::chrono::seconds resync_interval{60};
  // How long after the last write a config directory's files (or a config file written in
  // place) are read: a directory may be replaced file by file. A single file renamed into
  // place is complete and is read after 5 ms whatever this says.
  std::chrono::milliseconds config_settle{200};
  // Give up connecting at start-up after this long (0 = retry forever).
  std::chrono::seconds connect_timeout{0};
  // How long a flow-restore-wait left set after our flows are back may stay set before we clear
  // it ourselves (whoever restarts OVS normally clears it: ovs-ctl does after restoring flows).
  std::chrono::seconds flow_restore_grace{10};
  // Where `vpcguardctl status` reads from (default /var/run/vpcguard/<bridge>.status.json).
  std::string status_file;
  // The control socket (`vpcguardctl log-level`); "" = none. Default: beside the status file,
  // /var/run/vpcguard/<bridge>.ctl (daemon/control_socket.h).
  std::optional<std::string> control_socket;
  // Rejected packets sampled for flow logs per second, at most (pipeline::kRejectMeterId);
  // beyond it they are dropped unsampled and reported as SKIPDATA.
  uint32_t flow_log_reject_rate = 5000;
  // Prometheus metrics on HOST:PORT ("127.0.0.1:9733", "[::1]:9733"); "" = off (docs/metrics.md).
  std::string metrics_listen;
  // How often a scrape may start a per-rule hit read (a dump of the rule tables: seconds and a
  // second copy of them in memory at 100k flows; docs/metrics.md "Cost"); 0 = no hit counters.
  std::chrono::seconds metrics_rule_hits_interval{5};
};

// The OpenFlow target for a bridge when none is given.
[[nodiscard]] std::string defaultOpenFlowTarget(const std::string& ovsdb, const std::string& bridge);

class Daemon {
 public:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {}
  // Waits briefly for a per-rule hit read in progress; one still running is left to end alone.
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  // Runs until SIGTERM/SIGINT. Returns the process exit code.
  int run();

 private:
  bool loadConfig(bool initial);
  // The part of a config load after validation, shared with the state database: the policy
  // must work on this switch and get interface indices. False (and reported) when refused.
  bool adoptPolicy(model::Policy policy, bool initial);
  // A new policy was adopted: install it as a config reload does. kRolledBack: the switch
  // refused it and the last policy is back in force; kSwitchLost: reconnect.
  enum class Install { kApplied, kRolledBack, kSwitchLost };
  [[nodiscard]] Install installAdopted(std::map<std::string, uint16_t> last_indices,
                                       const char* reason);
  [[nodiscard]] bool stateMode() const { return !options_.state.empty(); }
  // Opens the state database (its monitor's first reply is the whole replica). False when
  // unreachable: retried with backoff from the loop.
  bool openState();
  // Reads what the state database sent; on a change, applies it. False when the switch failed
  // us (reconnect), not when the database did (that only schedules its own reconnect).
  bool pollState(bool force, bool switch_up);
  void stateLost(const std::string& error);
  // Rebuilds, validates and adopts the replica's policy. Returns whether a new policy was
  // adopted (the caller installs it); refusals are logged and reported as config errors.
  bool loadState(bool force, double receive_ms);
  bool connect();
  bool resync(const char* reason);
  // Reads the flow monitor; schedules a repair when someone else changed our flows. False when
  // the connection is gone. Reads for a few milliseconds at most: after our own large bundle
  // the switch reports every flow of it (100k at 100k flows, about a second of checking), and a
  // config change must not wait behind that. monitor_backlog_ then says the loop should come
  // back at once.
  bool pollFlowMonitor();
  bool monitor_backlog_ = false;
  // Whether ovs-vswitchd (OpenFlow) and ovsdb-server answer the liveness probes. A connection
  // that stays open but silent (a stopped or hung process) is reported once in status and the
  // log; switch work waits meanwhile (config and state changes are still read and checked), and
  // a resync follows as soon as both answer again. Returns true while both answer.
  bool checkResponsive();
  // After the flow monitor resumed: our flow count per owned table against the installed state
  // (deletions are the one change a resumed monitor does not report); a difference schedules a
  // full comparison.
  void verifyCountsAfterPause();
  bool verify_counts_ = false;
  // After our flows are in: a flow-restore-wait left set (by an interrupted OVS restart, or
  // set on purpose for one) keeps ovs-vswitchd from forwarding at all; clear it.
  void checkFlowRestoreWait();
  void applyConntrackTimeouts();
  void recoverInterfaceIndices();
  // Records an outcome in the status file (`error` empty = success).
  void reportError(const std::string& error, bool config_error = false);
  void reportSync(const char* reason, double ms);
  void writeStatus();
  // The service manager's view (systemd Type=notify): STATUS line, READY once our policy is on
  // the switch (daemon/service.h). Called with every status write.
  void notifyService();
  [[nodiscard]] std::string serviceStatusLine() const;
  // Zones that changed hands (a new interface, or a freed index given to another one) may still
  // hold the old owner's connections: they are flushed once the new flows are in place.
  void noteNewIndices(const std::map<std::string, uint16_t>& before);
  void flushReassignedZones();
  // Whether a failed operation means the connection is gone (vs. the switch refusing content).
  bool connectionLost();
  bool apply(const char* reason);
  [[nodiscard]] PolicyEngine::Input engineInput() const;
  // Logs and records a failed apply or resync; false when the switch failed us.
  bool engineFailed(const PolicyEngine::Failure& failure, const char* what, const char* reason);
  void handleInterfaceEvents(const std::vector<ovs::InterfaceEvent>& events);
  // After a successful sync: flow logs follow the policy (and the switch's IPFIX set-up).
  void updateFlowLogs();
  // Traffic mirroring's host side (VXLAN port, local-target routes, port mirrors), before and
  // after the flows of a sync.
  void updateMirrors(MirrorRunner::Phase phase);
  // Why this switch cannot carry the policy's mirror sessions, if it cannot.
  [[nodiscard]] std::optional<std::string> mirrorsUnsupported(const model::Policy& policy) const;
  // ovs-vswitchd's run directory: where its pid file and control socket are (next to OVSDB's).
  [[nodiscard]] std::string ovsRundir() const;
  // Creates the flow logs' reject meter on this connection before flows that name it go in.
  void ensureRejectMeter();
  FlowLogRunner& flowLogs();  // created on first use
  MirrorRunner& mirrors();    // created on first use

  DaemonOptions options_;
  config::PolicyLoader loader_;  // a reload parses only the config files that changed
  std::optional<model::Policy> policy_;
  // The policy adoptPolicy() replaced, until the new one is installed: what a refused install
  // rolls back to (moved, not copied: a copy of a 100k-flow policy per change cost milliseconds).
  std::optional<model::Policy> rollback_policy_;
  std::map<std::string, uint16_t> indices_;
  std::map<std::string, int> ofports_;                       // iface-id -> ofport on our bridge
  std::map<std::string, ovs::InterfaceInfo> attached_;       // Interface row uuid -> state
  std::unique_ptr<ovs::VswitchDb> db_;
  std::unique_ptr<ovs::OpenFlowChannel> openflow_;
  PolicyEngine engine_;  // translator state (and rule ids) outlive reconnects
  std::unique_ptr<ovs::FlowMonitor> monitor_;
  bool drift_pending_ = false;  // a monitor update we cannot explain: repair at drift_at_
  std::chrono::steady_clock::time_point drift_at_;
  // Another controller fighting over our flows (it changes them back after each repair): the
  // recent drift repairs, how long a repair waits after drift is seen (50 ms; doubling up to
  // 30 s while the fight lasts), when drift was last seen and in which flow.
  std::deque<std::chrono::steady_clock::time_point> drift_repair_times_;
  std::chrono::milliseconds drift_delay_{50};
  std::chrono::steady_clock::time_point last_drift_seen_;
  std::string last_drift_flow_;
  // Called after each drift repair and from the loop: starts, escalates and ends a fight.
  void noteDriftRepair();
  void endFightIfQuiet();
  std::chrono::steady_clock::time_point flow_restore_since_;  // when we first saw it set
  std::chrono::steady_clock::time_point flow_restore_check_;  // next look while it is set
  bool started_ = false;        // the first sync (which picks the generation) is done
  // A full comparison succeeded on the current connection: until then the installed state is
  // unknown, so changes go through a resync, and flow-restore-wait is not touched.
  bool synced_ = false;
  std::chrono::milliseconds resync_retry_{0};  // backoff after a failed resync (0: none failed)
  uint16_t generation_ = 1;
  uint64_t drift_repairs_ = 0;
  ConntrackTimeouts applied_timeouts_;
  DaemonStatus status_;
  std::set<uint16_t> zones_to_flush_;
  bool last_error_is_config_ = false;  // last written to OVSDB (empty after a reconnect)
  // A config reload waiting for another process to close the file it writes: since when, and
  // whether that was warned about.
  std::optional<std::chrono::steady_clock::time_point> config_writer_since_;
  bool config_writer_warned_ = false;
  // Which side of the switch does not answer (empty: both do), and since when.
  std::string unresponsive_;
  std::unique_ptr<FlowLogRunner> flow_logs_;
  std::unique_ptr<MirrorRunner> mirrors_;
  bool ipfix_reconfigure_ = true;  // a new OVSDB connection: write the IPFIX set-up again
  // The state database (--state): the connection (null while reconnecting), when to try again,
  // the generation last looked at (applied or refused) and the split of the last change.
  std::unique_ptr<state::StateStore> state_;
  state::PolicyDecoder state_decoder_;  // decodes only the rows an update changed
  std::chrono::steady_clock::time_point state_retry_at_;
  std::chrono::milliseconds state_backoff_{250};
  int64_t state_seen_generation_ = -1;
  // A generation read while the switch was away: the next successful resync installs it, and
  // only then does the status report it (0: none pending).
  int64_t state_pending_generation_ = 0;
  struct StateTiming {
    double receive_ms = 0;   // read the update and fold it into the replica
    double rebuild_ms = 0;   // replica -> Policy (the rows that changed decoded again)
    double validate_ms = 0;  // validatePolicy + resolveDefaults + indices
  } state_timing_;
  std::optional<EngineReport> last_apply_;  // of the last apply() that went through the engine
  std::chrono::steady_clock::time_point last_apply_done_;  // when the switch confirmed it
  bool reject_meter_set_ = false;  // the reject meter exists on this OpenFlow connection
  ServiceNotifier service_;
  std::unique_ptr<ControlSocket> control_;  // null when disabled or it could not be opened
  // Prometheus metrics (daemon/daemon_metrics.cpp, docs/metrics.md). Changes are timed from when
  // they were seen (by the trigger the sync will name) to the switch's barrier.
  bool startMetrics();
  void noteChange(const char* trigger);
  void countSync(const char* reason, double ms);
  void countError(const std::string& error, bool config_error);
  void countReconnect(const char* connection);
  // result: "applied" (on the switch), "refused" (invalid, or rolled back), "deferred" (goes in
  // with the reconnect's resync).
  void countConfigReload(const char* result);
  [[nodiscard]] std::string renderMetrics();
  void refreshRuleHits();
  void appendMetricsFds(std::vector<pollfd>& fds) const;
  void serveMetrics(const std::vector<pollfd>& fds);
  // The soonest deadline of the metrics server or the control socket (a client to cut off, an
  // accept pause ending): the loop's polls wait no longer. Nullopt: none.
  [[nodiscard]] std::optional<std::chrono::milliseconds> untilServerDeadline() const;
  metrics::Registry metrics_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::map<std::string, std::chrono::steady_clock::time_point> change_seen_;
  uint64_t drift_repairs_timed_ = 0;  // drift_repairs_ when the last periodic sync was timed
  std::string rule_hits_text_;  // the last per-rule hit counters read (rendered)
  std::optional<std::chrono::steady_clock::time_point> rule_hits_at_;  // last read started
  // The read in progress, on a connection and a detached thread of its own, which shares only
  // this (so stopping never waits for it): null when none runs or its result was taken.
  struct RuleHitsRead;
  std::shared_ptr<RuleHitsRead> rule_hits_job_;
};

}  // namespace vpcguard
