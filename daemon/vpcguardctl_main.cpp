// vpcguardctl: the control CLI of vpcguard.
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/version.h"

int main(int argc, char** argv) {
  CLI::App app{"vpcguardctl: control vpcguard"};
  app.set_version_flag("--version", std::string("vpcguardctl ") + vpcguard::kVersion);
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);
  if (app.get_subcommands().empty()) {
    std::puts(app.help().c_str());
  }
  return 0;
}
