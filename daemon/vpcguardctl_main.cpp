// vpcguardctl: the control CLI of vpcguard.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/check_command.h"
#include "daemon/flows_command.h"
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

  CLI11_PARSE(app, argc, argv);
  if (flows->parsed()) {
    return vpcguard::runFlowsCommand(flows_options, std::cout, std::cerr);
  }
  if (check->parsed()) {
    return vpcguard::config::runCheck(check_path, std::cout, std::cerr);
  }
  if (app.get_subcommands().empty()) {
    std::puts(app.help().c_str());
  }
  return 0;
}
