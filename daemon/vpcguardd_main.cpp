// vpcguardd: enforces AWS VPC security groups and network ACLs on an Open vSwitch bridge.
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/logging.h"
#include "daemon/version.h"

int main(int argc, char** argv) {
  CLI::App app{"vpcguardd: AWS VPC security groups and network ACLs on Open vSwitch"};
  std::string config;
  std::string bridge = "br-int";
  std::string ovsdb = "unix:/var/run/openvswitch/db.sock";
  std::string log_level = "info";
  app.set_version_flag("--version", std::string("vpcguardd ") + vpcguard::kVersion +
                                        " (Open vSwitch " + vpcguard::kOvsVersion + ")");
  app.add_option("--config", config, "Policy file or directory of .toml files");
  app.add_option("--bridge", bridge, "OVS bridge to enforce on")->capture_default_str();
  app.add_option("--ovsdb", ovsdb, "OVSDB server")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!vpcguard::setLogLevel(log_level)) {
    std::fprintf(stderr, "vpcguardd: unknown --log-level '%s'\n", log_level.c_str());
    return 2;
  }
  vpcguard::logger("daemon")->info("start bridge={} ovsdb={} config={}", bridge, ovsdb, config);
  return 0;
}
