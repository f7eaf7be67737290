// vpcguardctl: the control CLI of vpcguard.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/check_command.h"
#include "daemon/version.h"

int main(int argc, char** argv) {
  CLI::App app{"vpcguardctl: control vpcguard"};
  app.set_version_flag("--version", std::string("vpcguardctl ") + vpcguard::kVersion);
  app.require_subcommand(0, 1);

  std::string check_path;
  auto* check = app.add_subcommand("check", "Validate a policy file or directory; apply nothing");
  check->add_option("path", check_path, "Policy file, or directory of *.toml files")->required();

  CLI11_PARSE(app, argc, argv);
  if (check->parsed()) {
    return vpcguard::config::runCheck(check_path, std::cout, std::cerr);
  }
  if (app.get_subcommands().empty()) {
    std::puts(app.help().c_str());
  }
  return 0;
}
