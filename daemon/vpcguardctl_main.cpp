// vpcguardctl: the control CLI of vpcguard. Only wiring: each subcommand lives in its own file.
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/check_command.h"
#include "daemon/flow_logs_command.h"
#include "daemon/flows_command.h"
#include "daemon/import_aws.h"
#include "daemon/status.h"
#include "daemon/version.h"

int main(int argc, char** argv) {
  CLI::App app{"vpcguardctl: control vpcguard"};
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

  CLI11_PARSE(app, argc, argv);
  if (flow_logs->parsed()) {
    return vpcguard::runFlowLogsCommand(flow_logs_options, std::cout, std::cerr);
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
