// vpcguardd: enforces AWS VPC security groups and network ACLs on an Open vSwitch bridge.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "daemon/version.h"

int main(int argc, char** argv) {
  // Open vSwitch's stream code writes with send(..., 0). A connection closed under a write (the
  // switch restarting, or the deadline guard shutting down a call that outlived its deadline,
  // ovs-plugin/deadline_guard.h) must fail that call with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "vpcguardd: AWS VPC security groups and network ACLs on an Open vSwitch bridge.\n"
      "Installs the policy of --config (or of the vpcguard state database, --state) as OpenFlow\n"
      "flows, follows interface attach/detach and policy changes (file save or SIGHUP; each\n"
      "committed database transaction), and repairs drift (seen at once through OpenFlow's\n"
      "flow monitor, plus a periodic full comparison). SIGTERM leaves the policy in place."};
  vpcguard::DaemonOptions options;
  std::string config;
  std::string state;
  int state_timeout = 5;
  std::string log_level = "info";
  int resync_seconds = 60;
  int connect_timeout = 0;
  int flow_restore_grace = 10;
  app.set_version_flag("--version", std::string("vpcguardd ") + vpcguard::kVersion +
                                        " (Open vSwitch " + vpcguard::kOvsVersion + ")");
  app.set_config("--settings", "", "Daemon settings file (TOML; keys are these option names)");
  app.add_option("--config", config, "Policy file or directory of *.toml files (or --state)");
  app.add_option("--state", state,
                 "The vpcguard state database to follow instead of a config, e.g. "
                 "unix:/run/vpcguard/state.sock (or --config)");
  app.add_option("--state-timeout", state_timeout,
                 "Seconds a request to the state database may take before the connection is "
                 "considered lost (and opened again)")
      ->capture_default_str()
      ->check(CLI::Range(1, 300));
  app.add_option("--bridge", options.bridge, "OVS bridge to enforce on")->capture_default_str();
  app.add_option("--ovsdb", options.ovsdb, "OVSDB server (unix:PATH or tcp:IP:PORT)")
      ->capture_default_str();
  app.add_option("--openflow", options.openflow,
                 "OpenFlow target of the bridge (default: unix:<ovsdb dir>/<bridge>.mgmt)");
  app.add_option("--datapath-type", options.datapath_type,
                 "Datapath type when vpcguardd creates the bridge: system (kernel) or netdev (userspace); an existing bridge keeps its own")
      ->capture_default_str();
  int config_settle_ms = 200;
  app.add_option("--config-settle-ms", config_settle_ms,
                 "Milliseconds after the last write before a config directory (or a config file "
                 "written in place) is read; a single file renamed into place is read after 5 ms")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  app.add_option("--resync-interval", resync_seconds,
                 "Seconds between full comparisons with the switch (drift repair)")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app.add_option("--connect-timeout", connect_timeout,
                 "Give up if Open vSwitch is unreachable this many seconds at start (0: retry forever)")
      ->capture_default_str();
  app.add_option("--flow-restore-grace", flow_restore_grace,
                 "Seconds other_config:flow-restore-wait may stay set after the policy is back in "
                 "a restarted ovs-vswitchd before vpcguardd clears it")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  app.add_option("--flow-log-reject-rate", options.flow_log_reject_rate,
                 "Rejected packets per second sampled for flow logs at most; beyond it they are "
                 "dropped unsampled and reported as SKIPDATA")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Serve Prometheus metrics on HOST:PORT (127.0.0.1:9733, [::1]:9733; \"\" = off; "
                 "docs/metrics.md)");
  int rule_hits_interval = 5;
  app.add_option("--metrics-rule-hits-interval", rule_hits_interval,
                 "Seconds between per-rule hit reads for /metrics (a dump of the rule tables; "
                 "0 = no vpcguard_rule_hit_* series)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_option("--status-file", options.status_file,
                 "Status for `vpcguardctl status` (default /var/run/vpcguard/<bridge>.status.json)");
  std::string control_socket;
  auto* control_socket_option = app.add_option(
      "--control-socket", control_socket,
      "Control socket for `vpcguardctl log-level` (root only; default: beside the status file, "
      "/var/run/vpcguard/<bridge>.ctl; \"\" = none)");
  app.add_option("--log-level", log_level,
                 "trace|debug|info|warn|error (at run time: vpcguardctl log-level)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!vpcguard::setLogLevel(log_level)) {
    std::fprintf(stderr, "vpcguardd: unknown --log-level '%s'\n", log_level.c_str());
    return 2;
  }
  if (config.empty() == state.empty()) {
    std::fprintf(stderr, "vpcguardd: give exactly one of --config and --state\n");
    return 2;
  }
  if (std::string error; !options.metrics_listen.empty() &&
                         !vpcguard::metrics::parseListenAddress(options.metrics_listen, &error)) {
    std::fprintf(stderr, "vpcguardd: --metrics-listen %s\n", error.c_str());
    return 2;
  }
  if (control_socket_option->count() > 0) {
    options.control_socket = control_socket;
  }
  options.metrics_rule_hits_interval = std::chrono::seconds(rule_hits_interval);
  options.config = config;
  options.state = state;
  options.state_request_timeout = std::chrono::seconds(state_timeout);
  options.resync_interval = std::chrono::seconds(resync_seconds);
  options.config_settle = std::chrono::milliseconds(config_settle_ms);
  options.connect_timeout = std::chrono::seconds(connect_timeout);
  options.flow_restore_grace = std::chrono::seconds(flow_restore_grace);
  vpcguard::logger("daemon")->info("start version={} bridge={} ovsdb={} {}={}", vpcguard::kVersion,
                                   options.bridge, options.ovsdb,
                                   state.empty() ? "config" : "state",
                                   state.empty() ? config : state);
  if (const auto watchdog = vpcguard::ServiceNotifier().watchdogInterval();
      !state.empty() && watchdog.count() > 0 &&
      std::chrono::microseconds(options.state_request_timeout) * 2 >= watchdog) {
    // A state database request blocks the loop up to --state-timeout, and the loop pings the
    // watchdog every half interval: a hung server could then get vpcguardd killed.
    vpcguard::logger("daemon")->warn(
        "state_timeout_near_watchdog state_timeout_s={} watchdog_s={:.1f} (a state request "
        "blocks the loop that long; keep --state-timeout below half of WatchdogSec=)",
        state_timeout, std::chrono::duration<double>(watchdog).count());
  }
  const int status = vpcguard::Daemon(options).run();
  // Out without static destructors: a per-rule hit read for /metrics may still be running on its
  // detached thread (daemon_metrics.cpp), and must not meet a library torn down under it.
  spdlog::shutdown();
  std::fflush(nullptr);
  std::_Exit(status);
}
