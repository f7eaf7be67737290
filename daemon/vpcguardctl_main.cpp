// vpcguardctl: the control CLI of vpcguard. Only wiring: each subcommand lives in its own file.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "api/cli.h"
#include "daemon/check_command.h"
#include "daemon/flow_logs_command.h"
#include "daemon/flows_command.h"
#include "daemon/host_check.h"
#include "daemon/import_aws.h"
#include "daemon/log_level_command.h"
#include "daemon/status.h"
#include "daemon/version.h"
#include "explain/commands.h"

namespace {

// Where the switch of trace/lint/stats is (explain/commands.h: from vpcguardd's status file).
void addSwitchOptions(CLI::App& sub, vpcguard::explain::SwitchOptions& sw) {
  sub.add_option("--bridge", sw.bridge, "Bridge vpcguardd enforces on")->capture_default_str();
  sub.add_option("--status-file", sw.status_file,
                 "vpcguardd's status file (default /var/run/vpcguard/<bridge>.status.json)");
  sub.add_option("--openflow", sw.openflow, "OpenFlow target (default: from the status file)");
  sub.add_option("--ovsdb", sw.ovsdb, "OVSDB target (default: from the status file)");
  sub.add_option("--vswitchd-ctl", sw.vswitchd_ctl,
                 "ovs-vswitchd's unixctl socket (default: beside the OpenFlow socket)");
  sub.add_option("--timeout-ms", sw.timeout_ms, "Deadline of each call to the switch")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  // The API verbs take AWS CLI options (--group-ids a b, shorthand, JSON), which api/cli.cpp
  // parses itself; CLI11 only sees the local subcommands.
  if (argc > 1 && vpcguard::api::isApiVerb(argv[1])) {
    return vpcguard::api::runCli(argc, argv, std::cout, std::cerr);
  }

  CLI::App app{"vpcguardctl: control vpcguard"};
  app.footer(vpcguard::api::verbListing());
  app.set_version_flag("--version", std::string("vpcguardctl ") + vpcguard::kVersion);
  app.require_subcommand(0, 1);

  std::string check_path;
  auto* check = app.add_subcommand("check", "Validate a policy file or directory; apply nothing");
  check->add_option("path", check_path, "Policy file, or directory of *.toml files")->required();

  vpcguard::FlowsCommandOptions flows_options;
  auto* flows = app.add_subcommand(
      "flows", "Print the OpenFlow flows a policy becomes (interfaces on ports 1..N); no switch");
  flows->add_option("path", flows_options.path, "Policy file, or directory of *.toml files")
      ->required();
  flows->add_flag("--stats", flows_options.stats_only, "Print flow counts only");

  vpcguard::ImportAwsCommand import_aws;
  CLI::App* import_cmd = app.add_subcommand(
      "import-aws",
      "Convert `aws ec2 describe-*` JSON output into a vpcguard TOML config (docs/import-aws.md)");
  import_cmd->add_option("files", import_aws.files,
                         "JSON printed by aws ec2 describe-vpcs, describe-subnets, "
                         "describe-security-groups, describe-network-acls, "
                         "describe-network-interfaces, describe-managed-prefix-lists, "
                         "describe-flow-logs, describe-traffic-mirror-targets, "
                         "describe-traffic-mirror-filters, describe-traffic-mirror-sessions "
                         "(- = standard input)")
      ->required();
  import_cmd->add_option("-o,--output", import_aws.output, "Write the config here (default: stdout)");
  import_cmd->add_option("--vpc-id", import_aws.options.vpc_id,
                         "The VPC to import when the input holds several");
  import_cmd->add_option("--region", import_aws.options.region,
                         "Region label (default: derived from availability zones)");
  import_cmd->add_flag("--strict", import_aws.strict,
                       "Fail (exit 1, nothing written) if anything cannot be represented");

  vpcguard::StatusCommandOptions status_options;
  auto* status = app.add_subcommand("status", "Show what vpcguardd is doing (from its status file)");
  status->add_option("--bridge", status_options.bridge, "Bridge vpcguardd enforces on")
      ->capture_default_str();
  status->add_option("--status-file", status_options.status_file,
                     "Status file (default /var/run/vpcguard/<bridge>.status.json)");
  status->add_option("--output", status_options.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  vpcguard::HostCheckOptions host_check_options;
  double host_check_timeout = 5;
  auto* host_check = app.add_subcommand(
      "host-check", "Is this host's Open vSwitch ready for vpcguardd? (docs/host.md)");
  host_check->add_option("--ovsdb", host_check_options.ovsdb, "OVSDB target")
      ->capture_default_str();
  host_check->add_option("--bridge", host_check_options.bridge, "Integration bridge")
      ->capture_default_str();
  host_check->add_option("--run-dir", host_check_options.run_dir,
                         "Where <bridge>.mgmt is (default: the --ovsdb socket's directory)");
  host_check->add_option("--timeout", host_check_timeout, "Seconds to wait for OVSDB")
      ->capture_default_str();
  host_check->add_option("--output", host_check_options.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  vpcguard::LogLevelCommandOptions log_level_options;
  auto* log_level = app.add_subcommand(
      "log-level", "Show or set the log level of the running vpcguardd (docs/service.md)");
  log_level->add_option("level", log_level_options.level,
                        "trace, debug, info, warn, error, critical or off (none: show it)");
  log_level->add_option("--bridge", log_level_options.bridge, "Bridge vpcguardd enforces on")
      ->capture_default_str();
  log_level->add_option("--socket", log_level_options.socket,
                        "vpcguardd's control socket (default /var/run/vpcguard/<bridge>.ctl)");

  vpcguard::FlowLogsCommandOptions flow_logs_options;
  auto* flow_logs = app.add_subcommand(
      "flow-logs", "Print the flow-log records under a file:// destination directory");
  flow_logs->add_option("dir", flow_logs_options.dir, "The destination directory (after file://)")
      ->required();
  flow_logs->add_option("--interface", flow_logs_options.interface_id, "Only this interface");
  flow_logs->add_option("--action", flow_logs_options.action, "ACCEPT or REJECT")
      ->check(CLI::IsMember({"ACCEPT", "REJECT"}));
  flow_logs->add_option("--since", flow_logs_options.since,
                        "Records ending at or after T (Unix seconds or 2026-12-06T10:00:00Z)");
  flow_logs->add_option("--until", flow_logs_options.until, "Records starting at or before T");
  flow_logs->add_option("--flow-log-id", flow_logs_options.flow_log_id, "Only this flow log");
  flow_logs->add_option("--output", flow_logs_options.output, "table, json or text")
      ->check(CLI::IsMember({"table", "json", "text"}))
      ->capture_default_str();

  vpcguard::explain::TraceCommandOptions trace_options;
  auto* trace = app.add_subcommand(
      "trace", "Explain what the policy does with one packet: verdict and path (docs/explain.md)");
  trace->add_option("--from", trace_options.request.from, "Source: interface id or IP address")
      ->required();
  trace->add_option("--to", trace_options.request.to, "Destination: interface id or IP address")
      ->required();
  trace->add_option("protocol", trace_options.request.protocol,
                    "tcp/PORT, udp/PORT, icmp[/TYPE[/CODE]], icmpv6[/TYPE[/CODE]] or a number")
      ->required();
  trace->add_option("--sport", trace_options.request.source_port,
                    "TCP/UDP source port (default 49152)")
      ->check(CLI::Range(0, 65535));
  trace->add_flag("--reply", trace_options.request.reply,
                  "Trace the reply of that connection (to -> from)");
  trace->add_option("--config", trace_options.config,
                    "Policy file or directory (default with --switch: vpcguardd's)");
  trace->add_flag("--switch", trace_options.use_switch,
                  "Also ask the running switch (ofproto/trace); exit 3 if it disagrees");
  trace->add_option("--output", trace_options.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  vpcguard::explain::LintCommandOptions lint_options;
  auto* lint = app.add_subcommand(
      "lint", "Find rules that are shadowed, redundant, unused or risky (docs/explain.md)");
  lint->add_option("path", lint_options.path, "Policy file, or directory of *.toml files")
      ->required();
  lint->add_flag("--switch", lint_options.use_switch,
                 "Also report rules without hits on the running switch (VG501)");
  lint->add_option("--window", lint_options.window_seconds,
                   "With --switch: seconds a rule must have been installed without a hit")
      ->capture_default_str();
  lint->add_option("--output", lint_options.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  vpcguard::explain::StatsCommandOptions stats_options;
  auto* stats = app.add_subcommand(
      "stats", "Packets and bytes per security-group rule and NACL entry, from the switch");
  stats->add_option("--config", stats_options.config,
                    "Policy file or directory (default: vpcguardd's)");
  stats->add_option("--output", stats_options.output, "table, json or prometheus")
      ->check(CLI::IsMember({"table", "json", "prometheus"}))
      ->capture_default_str();

  addSwitchOptions(*trace, trace_options.switch_options);
  addSwitchOptions(*lint, lint_options.switch_options);
  addSwitchOptions(*stats, stats_options.switch_options);

  CLI11_PARSE(app, argc, argv);
  if (trace->parsed()) {
    return vpcguard::explain::runTraceCommand(trace_options, std::cout, std::cerr);
  }
  if (lint->parsed()) {
    return vpcguard::explain::runLintCommand(lint_options, std::cout, std::cerr);
  }
  if (stats->parsed()) {
    return vpcguard::explain::runStatsCommand(stats_options, std::cout, std::cerr);
  }
  if (flow_logs->parsed()) {
    return vpcguard::runFlowLogsCommand(flow_logs_options, std::cout, std::cerr);
  }
  if (host_check->parsed()) {
    host_check_options.timeout =
        std::chrono::milliseconds(static_cast<int64_t>(host_check_timeout * 1000));
    return vpcguard::runHostCheckCommand(host_check_options, std::cout, std::cerr);
  }
  if (log_level->parsed()) {
    return vpcguard::runLogLevelCommand(log_level_options, std::cout, std::cerr);
  }
  if (status->parsed()) {
    return vpcguard::runStatusCommand(status_options, std::cout, std::cerr);
  }
  if (check->parsed()) {
    return vpcguard::config::runCheck(check_path, std::cout, std::cerr);
  }
  if (flows->parsed()) {
    return vpcguard::runFlowsCommand(flows_options, std::cout, std::cerr);
  }
  if (import_cmd->parsed()) {
    return vpcguard::runImportAws(import_aws, std::cout, std::cerr);
  }
  std::puts(app.help().c_str());
  return 0;
}
