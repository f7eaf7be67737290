// api_bench: one change through the control API, from the client's call to the switch's barrier
// (issue 11), at any policy size.
//
//   api_bench --config FILE|DIR [--changes N] [--json]
//
// The real parts, each a process of its own as on a host: a sandboxed Open vSwitch (every
// interface of the config a dummy port), the state database (ovsdb-server with
// state/vpcguard.ovsschema), vpcguard-apid (IAM: configs/iam, the caller is root = network-admin)
// and vpcguardd --state. The config goes in with one ApplyConfig; then N changes alternate
// AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress of one rule on the last group that
// has members (so each change makes flows). Each is timed twice:
//  - commit: the client's call until the API's answer (IAM, validation, the transaction);
//  - switch: the client's call until vpcguardd's status file reports the new generation, which it
//    writes after the bundle's barrier confirmed the flows.
// Baseline in the same run: the same policy as a file, and the same change as a file edit through
// the same vpcguardd path is what bench/sync_bench measures; OVN's +1 ACL on the same TOML is what
// bench/api_vs_ovn.sh puts next to these figures.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "api/client.h"
#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "daemon/status.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/process.h"
#include "tests/harness/state_server.h"

namespace {

using namespace vpcguard;
using bench::Clock;
using bench::msSince;
using bench::percentile;

void progress(const std::string& text) { std::fprintf(stderr, "api_bench: %s\n", text.c_str()); }

struct Setup {
  std::unique_ptr<test::OvsSandbox> sandbox;
  std::unique_ptr<test::StateServer> state;
  std::unique_ptr<test::ChildProcess> apid;
  std::unique_ptr<test::ChildProcess> daemon;
  api::ClientOptions client;
  std::string status_dir;
  std::string status_path;
};

std::optional<DaemonStatus> readStatus(const std::string& path) {
  auto text = bench::readFile(path);
  if (text.empty()) {
    return std::nullopt;
  }
  auto status = statusFromJson(text);
  return status ? std::optional<DaemonStatus>(*status) : std::nullopt;
}

// Waits until vpcguardd reports `generation` applied without error. False on the deadline.
bool waitGeneration(bench::DirWatch& watch, const std::string& path, int64_t generation,
                    Clock::time_point deadline) {
  for (;;) {
    auto status = readStatus(path);
    // vpcguardd records the generation in its status file once the bundle's barrier has
    // confirmed it (the first one may go in with its start-up sync).
    if (status && status->state_generation >= generation && status->last_error.empty()) {
      return true;
    }
    if (!watch.waitFor("status.json", deadline)) {
      status = readStatus(path);
      return status && status->state_generation >= generation && status->last_error.empty();
    }
  }
}

Result<api::Response> call(const Setup& setup, const std::string& action, nlohmann::json params) {
  api::Request request;
  request.action = action;
  request.parameters = std::move(params);
  auto response = api::call(setup.client, request);
  if (!response) {
    return makeError(action + ": " + response.error().message);
  }
  if (!response->ok) {
    return makeError(action + ": " + response->error.code + ": " + response->error.message);
  }
  return *response;
}

Result<Setup> start(const model::Policy& policy) {
  Setup setup;
  auto sandbox = test::OvsSandbox::start();
  if (!sandbox) {
    return tl::unexpected(sandbox.error());
  }
  setup.sandbox = std::move(*sandbox);
  auto& sb = *setup.sandbox;
  if (auto r = sb.addBridge("br-int"); !r) {
    return tl::unexpected(r.error());
  }
  progress(fmt::format("attaching {} interfaces", policy.network_interfaces.size()));
  if (auto r = bench::attachInterfaces(sb, "br-int", policy, "v"); !r) {
    return tl::unexpected(r.error());
  }
  auto state = test::StateServer::start();
  if (!state) {
    return tl::unexpected(state.error());
  }
  setup.state = std::move(*state);

  const std::string socket = sb.dir() + "/api.sock";
  test::ChildProcess::Options apid;
  apid.argv = {test::binaryDir() + "/api/vpcguard-apid",
               "--state",
               setup.state->target(),
               "--iam",
               test::sourceDir() + "/configs/iam",
               "--socket",
               socket,
               "--audit-log",
               sb.dir() + "/audit.log",
               "--log-level",
               "warn"};
  apid.output_path = sb.dir() + "/vpcguard-apid.log";
  auto apid_process = test::ChildProcess::spawn(apid);
  if (!apid_process) {
    return tl::unexpected(apid_process.error());
  }
  setup.apid = std::move(*apid_process);
  setup.client.endpoint = "unix:" + socket;
  setup.client.timeout_ms = 120000;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!std::filesystem::exists(socket)) {
    if (Clock::now() > deadline || !setup.apid->running()) {
      return makeError("vpcguard-apid did not create " + socket + "; see " + apid.output_path);
    }
    usleep(20000);
  }

  setup.status_dir = sb.dir() + "/status";
  std::filesystem::create_directories(setup.status_dir);
  setup.status_path = setup.status_dir + "/status.json";
  test::ChildProcess::Options daemon;
  daemon.argv = {test::programPath("vpcguardd"),
                 "--state",
                 setup.state->target(),
                 "--bridge",
                 "br-int",
                 "--ovsdb",
                 sb.dbTarget(),
                 "--datapath-type",
                 "dummy",
                 "--status-file",
                 setup.status_path,
                 "--resync-interval",
                 "86400",
                 "--log-level",
                 "info"};
  daemon.output_path = sb.dir() + "/vpcguardd.log";
  auto daemon_process = test::ChildProcess::spawn(daemon);
  if (!daemon_process) {
    return tl::unexpected(daemon_process.error());
  }
  setup.daemon = std::move(*daemon_process);
  return setup;
}

// The last group that some interface names: a rule there makes flows.
std::string groupWithMembers(const model::Policy& policy) {
  std::string chosen;
  for (const auto& group : policy.security_groups) {
    for (const auto& eni : policy.network_interfaces) {
      if (std::find(eni.security_group_ids.begin(), eni.security_group_ids.end(), group.id) !=
          eni.security_group_ids.end()) {
        chosen = group.id;
        break;
      }
    }
  }
  return chosen;
}

// When `group_id` has as many IPv4 ingress rules as its quota allows: one of its TCP/UDP rules
// with a CIDR or group peer, as the API's IpPermissions. nullopt when there is room.
std::optional<nlohmann::json> quotaBoundRule(const model::Policy& policy,
                                             const std::string& group_id) {
  for (const auto& group : policy.security_groups) {
    if (group.id != group_id) {
      continue;
    }
    if (static_cast<int>(group.ingress.size()) < policy.quotas.rules_per_security_group) {
      return std::nullopt;
    }
    for (auto it = group.ingress.rbegin(); it != group.ingress.rend(); ++it) {
      const auto& rule = *it;
      if ((rule.ip_protocol != model::kProtoTcp && rule.ip_protocol != model::kProtoUdp) ||
          !rule.ports) {
        continue;
      }
      nlohmann::json entry = {{"IpProtocol", rule.ip_protocol == model::kProtoTcp ? "tcp" : "udp"},
                              {"FromPort", rule.ports->from},
                              {"ToPort", rule.ports->to}};
      if (const auto* cidr = std::get_if<Cidr>(&rule.peer); cidr != nullptr && cidr->family() == IpFamily::kV4) {
        entry["IpRanges"] = {{{"CidrIp", cidr->toString()}}};
      } else if (const auto* ref = std::get_if<model::GroupRef>(&rule.peer)) {
        entry["UserIdGroupPairs"] = {{{"GroupId", ref->group_id}}};
      } else {
        continue;
      }
      return nlohmann::json{{"GroupId", group_id}, {"IpPermissions", {entry}}};
    }
  }
  return std::nullopt;
}

int run(const std::string& config_path, int changes, bool json_output) {
  auto policy = config::loadPolicy(config_path);
  if (!policy) {
    std::fprintf(stderr, "api_bench: %s\n", policy.error().toError().message.c_str());
    return 2;
  }
  auto documents = config::readDocuments(config_path);
  if (!documents) {
    std::fprintf(stderr, "api_bench: %s\n", documents.error().message.c_str());
    return 2;
  }
  const std::string group = groupWithMembers(*policy);
  if (group.empty()) {
    std::fprintf(stderr, "api_bench: no security group of %s has members\n", config_path.c_str());
    return 2;
  }
  auto setup = start(*policy);
  if (!setup) {
    std::fprintf(stderr, "api_bench: %s\n", setup.error().message.c_str());
    return 1;
  }
  bench::DirWatch watch(setup->status_dir);
  if (!watch.ok()) {
    std::fprintf(stderr, "api_bench: inotify on %s failed\n", setup->status_dir.c_str());
    return 1;
  }

  nlohmann::json docs = nlohmann::json::array();
  for (const auto& document : *documents) {
    docs.push_back({{"Name", document.name}, {"Text", document.text}});
  }
  progress("ApplyConfig of " + config_path);
  const auto apply_start = Clock::now();
  auto applied = call(*setup, "ApplyConfig", {{"Documents", docs}});
  if (!applied) {
    std::fprintf(stderr, "api_bench: %s\n", applied.error().message.c_str());
    return 1;
  }
  const double apply_commit_ms = msSince(apply_start);
  int64_t generation = 1;
  if (!waitGeneration(watch, setup->status_path, generation,
                      Clock::now() + std::chrono::seconds(300))) {
    std::fprintf(stderr, "api_bench: vpcguardd did not apply the config; see %s/vpcguardd.log\n",
                 setup->sandbox->dir().c_str());
    return 1;
  }
  const double apply_switch_ms = msSince(apply_start);
  auto status = readStatus(setup->status_path);
  generation = status ? status->state_generation : generation;
  size_t flows = 0;
  if (status) {
    for (const auto& [table, count] : status->flows_per_table) {
      flows += count;
    }
  }

  progress(fmt::format("{} changes on {} (authorize / revoke one rule)", changes, group));
  std::vector<double> commit_ms;
  std::vector<double> switch_ms;
  nlohmann::json permission = {
      {"GroupId", group},
      {"IpPermissions",
       {{{"IpProtocol", "tcp"},
         {"FromPort", 8443},
         {"ToPort", 8443},
         {"IpRanges", {{{"CidrIp", "198.51.100.0/24"}}}}}}}};
  // A group already at its rule quota (OVN's peer policies have 60 per group, AWS's default
  // limit) takes no new rule: then the changes revoke one of its rules and authorize it again.
  bool revoke_first = false;
  if (auto existing = quotaBoundRule(*policy, group)) {
    permission = *existing;
    revoke_first = true;
    progress("the group is at its rule quota: revoking and re-authorizing one of its rules");
  }
  for (int i = 0; i < changes; ++i) {
    const bool authorize = (i % 2 == 0) != revoke_first;
    const char* action =
        authorize ? "AuthorizeSecurityGroupIngress" : "RevokeSecurityGroupIngress";
    const auto t0 = Clock::now();
    auto done = call(*setup, action, permission);
    if (!done) {
      std::fprintf(stderr, "api_bench: %s\n", done.error().message.c_str());
      return 1;
    }
    commit_ms.push_back(msSince(t0));
    ++generation;
    if (!waitGeneration(watch, setup->status_path, generation,
                        Clock::now() + std::chrono::seconds(60))) {
      std::fprintf(stderr, "api_bench: generation %lld never reached the switch; see %s\n",
                   static_cast<long long>(generation), setup->sandbox->dir().c_str());
      return 1;
    }
    switch_ms.push_back(msSince(t0));
  }
  const pid_t daemon_pid = setup->daemon->pid();
  const long daemon_rss = bench::procStatusKiB(daemon_pid, "VmRSS");
  const long apid_rss = bench::procStatusKiB(setup->apid->pid(), "VmRSS");
  const long db_rss = bench::procStatusKiB(setup->state->pid(), "VmRSS");

  if (json_output) {
    nlohmann::ordered_json out = {
        {"config", config_path},
        {"flows", flows},
        {"apply_commit_ms", apply_commit_ms},
        {"apply_switch_ms", apply_switch_ms},
        {"changes", changes},
        {"commit_ms_p50", percentile(commit_ms, 0.5)},
        {"commit_ms_p99", percentile(commit_ms, 0.99)},
        {"switch_ms_p50", percentile(switch_ms, 0.5)},
        {"switch_ms_p99", percentile(switch_ms, 0.99)},
        {"vpcguardd_rss_kib", daemon_rss},
        {"apid_rss_kib", apid_rss},
        {"state_db_rss_kib", db_rss}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("config                      %s\n", config_path.c_str());
    std::printf("flows                       %zu\n", flows);
    std::printf("apply_ms_commit_switch      %.1f %.1f\n", apply_commit_ms, apply_switch_ms);
    std::printf("commit_ms_p50_p99           %.2f %.2f (n=%d; call -> API answered)\n",
                percentile(commit_ms, 0.5), percentile(commit_ms, 0.99), changes);
    std::printf("authorize_ms_p50_p99        %.2f %.2f (n=%d; call -> switch barrier)\n",
                percentile(switch_ms, 0.5), percentile(switch_ms, 0.99), changes);
    std::printf("rss_kib_vpcguardd_apid_db   %ld %ld %ld\n", daemon_rss, apid_rss, db_rss);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"api_bench: a change through the control API, call to switch barrier"};
  std::string config;
  int changes = 20;
  bool json_output = false;
  app.add_option("--config", config, "policy file or directory")->required();
  app.add_option("--changes", changes, "authorize/revoke changes to time")
      ->check(CLI::Range(1, 100000));
  app.add_flag("--json", json_output, "print JSON");
  CLI11_PARSE(app, argc, argv);
  if (getuid() != 0) {
    std::fprintf(stderr, "api_bench: needs root (a private OVS sandbox)\n");
    return 2;
  }
  return run(config, changes, json_output);
}
