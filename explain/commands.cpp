#include "explain/commands.h"

#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <ostream>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "daemon/config_loader.h"
#include "daemon/flows_command.h"
#include "daemon/status.h"
#include "explain/describe.h"
#include "explain/hits.h"
#include "explain/lint.h"
#include "explain/ofproto_trace.h"
#include "ovs-plugin/appctl.h"
#include "ovs-plugin/openflow.h"
#include "ovs-plugin/ovsdb_client.h"
#include "ovs-plugin/vswitch_db.h"
#include "state/store.h"
#include "translator/defaults.h"
#include "translator/validate.h"
#include "translator/pipeline.h"

namespace vpcguard::explain {
namespace {

// A deadline for the whole conversation with the switch. Each OVSDB, unixctl and OpenFlow
// connect has its own deadline, but an OpenFlow flow dump from an ovs-vswitchd that stopped
// answering mid-way would wait forever: a command-line tool must not, so past the deadline the
// process says why and exits (kExitNoSwitch). One per process at a time.
class SwitchDeadline {
 public:
  explicit SwitchDeadline(std::chrono::milliseconds budget) {
    struct sigaction action {};
    action.sa_handler = &SwitchDeadline::expired;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGALRM, &action, &previous_);
    itimerval timer{};
    const auto ms = std::max<int64_t>(budget.count(), 1);
    timer.it_value.tv_sec = static_cast<time_t>(ms / 1000);
    timer.it_value.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    ::setitimer(ITIMER_REAL, &timer, nullptr);
  }
  ~SwitchDeadline() {
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &previous_, nullptr);
  }
  SwitchDeadline(const SwitchDeadline&) = delete;
  SwitchDeadline& operator=(const SwitchDeadline&) = delete;

 private:
  static void expired(int /*signal*/) {
    constexpr char kMessage[] =
        "vpcguardctl: the switch did not answer in time (is ovs-vswitchd hung? see --timeout-ms)\n";
    (void)!::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    ::_exit(kExitNoSwitch);
  }
  struct sigaction previous_ {};
};

// The whole conversation may take a few calls' deadlines (connect, revalidator round, dump).
[[nodiscard]] std::chrono::milliseconds conversationBudget(std::chrono::milliseconds per_call) {
  return per_call * 4;
}

// The switch's addresses, completed from vpcguardd's status file where not given.
struct SwitchEndpoints {
  std::string openflow;
  std::string ovsdb;
  std::string vswitchd_ctl;  // only when asked for
  std::string config;        // the daemon's config (from its status), may be empty
  std::string state;         // or the state database it follows ("unix:..."), may be empty
};

// ovs-vswitchd's unixctl socket: given, or found in the run directory of the OpenFlow socket
// (ovs-vswitchd keeps its bridge sockets and its pid file in one directory).
[[nodiscard]] Result<std::string> findVswitchdSocket(const SwitchOptions& options,
                                                     const std::string& openflow) {
  if (!options.vswitchd_ctl.empty()) {
    return options.vswitchd_ctl;
  }
  constexpr std::string_view kUnix = "unix:";
  if (!openflow.starts_with(kUnix)) {
    return makeError("cannot find ovs-vswitchd's control socket from OpenFlow target " + openflow +
                     "; give --vswitchd-ctl");
  }
  const auto rundir = std::filesystem::path(openflow.substr(kUnix.size())).parent_path().string();
  auto socket = ovs::vswitchdControlSocket(rundir);
  if (!socket) {
    return makeError(socket.error().message + "; give --vswitchd-ctl");
  }
  return socket;
}

// `need_unixctl`: fail when ovs-vswitchd's control socket cannot be found (trace needs it;
// stats and lint only use it to bring the counters up to date, see switchFlowStats).
[[nodiscard]] Result<SwitchEndpoints> resolveSwitch(const SwitchOptions& options,
                                                    bool need_unixctl) {
  SwitchEndpoints endpoints{options.openflow, options.ovsdb, "", "", ""};
  const std::string status_path =
      options.status_file.empty() ? defaultStatusFile(options.bridge) : options.status_file;
  auto status = readStatusFile(status_path);
  if (status) {
    if (endpoints.openflow.empty()) {
      endpoints.openflow = status->openflow;
    }
    if (endpoints.ovsdb.empty()) {
      endpoints.ovsdb = status->ovsdb;
    }
    endpoints.config = status->config;
    constexpr std::string_view kState = "state:";
    if (status->source.starts_with(kState)) {
      endpoints.state = status->source.substr(kState.size());
    }
  } else if (endpoints.openflow.empty() || endpoints.ovsdb.empty()) {
    return makeError(status.error().message + "; or give --openflow and --ovsdb");
  }
  auto socket = findVswitchdSocket(options, endpoints.openflow);
  if (socket) {
    endpoints.vswitchd_ctl = *socket;
  } else if (need_unixctl) {
    return tl::unexpected(socket.error());
  }
  return endpoints;
}

// The policy a vpcguardd following the state database runs: what the database holds now (resolved
// and validated when it was committed; checked again here, as vpcguardd does). Reading it needs
// the database socket, which is root's only.
[[nodiscard]] tl::expected<model::Policy, int> loadFromState(const std::string& target,
                                                            std::ostream& err) {
  ovs::OvsdbOptions options;
  options.connect_timeout = std::chrono::seconds(5);
  options.request_timeout = std::chrono::seconds(10);
  auto store = state::StateStore::open(target, options, state::StateStore::Scope::kPolicyOnly);
  if (!store) {
    err << "vpcguardctl: cannot read the state database " << target << ": "
        << store.error().message << " (it is root's only; or give --config FILE|DIR)\n";
    return tl::unexpected(config::kLoadIoStatus);
  }
  auto policy = state::policyFromReplica((*store)->replica());
  if (!policy) {
    err << "vpcguardctl: the state database " << target << " holds no usable policy: "
        << policy.error().message << "\n";
    return tl::unexpected(config::kLoadInvalidStatus);
  }
  if (const auto diagnostics = validatePolicy(*policy); !diagnostics.empty()) {
    err << "vpcguardctl: the policy in the state database " << target
        << " is invalid (vpcguardd keeps its last good one): " << formatDiagnostic(diagnostics[0])
        << "\n";
    return tl::unexpected(config::kLoadInvalidStatus);
  }
  auto resolved = resolveDefaults(std::move(*policy));
  if (!resolved) {
    err << "vpcguardctl: " << resolved.error().message << "\n";
    return tl::unexpected(config::kLoadInvalidStatus);
  }
  return std::move(*resolved);
}

// The policy to explain: `config` if given, else the one the daemon runs (from its status).
[[nodiscard]] tl::expected<model::Policy, int> loadFor(const std::string& config,
                                                      const SwitchEndpoints* endpoints,
                                                      std::ostream& err) {
  std::string path = config;
  if (path.empty() && endpoints != nullptr) {
    path = endpoints->config;
  }
  if (path.empty() && endpoints != nullptr && !endpoints->state.empty()) {
    return loadFromState(endpoints->state, err);
  }
  if (path.empty()) {
    err << "vpcguardctl: no policy: give --config FILE|DIR (or --switch with a running "
           "vpcguardd, whose config or state database is used)\n";
    return tl::unexpected(kExitUsage);
  }
  return config::loadPolicyReporting(path, err);
}

// Interface id -> OpenFlow port of every attached interface, and "LOCAL".
[[nodiscard]] Result<std::map<std::string, int>> switchPorts(const SwitchEndpoints& endpoints,
                                                             std::chrono::milliseconds timeout) {
  ovs::OvsdbOptions options;
  options.connect_timeout = timeout;
  options.request_timeout = timeout;
  auto client = ovs::connectOvsdb(endpoints.ovsdb, options);
  if (!client) {
    return makeError("OVSDB " + endpoints.ovsdb + ": " + client.error().message);
  }
  ovs::VswitchDb db(std::move(*client));
  auto interfaces = db.listInterfaces();
  if (!interfaces) {
    return makeError("OVSDB " + endpoints.ovsdb + ": " + interfaces.error().message);
  }
  std::map<std::string, int> ports;
  for (const auto& iface : *interfaces) {
    if (iface.attached()) {
      ports[iface.iface_id] = iface.ofport;
    }
  }
  ports["LOCAL"] = kLocalOfport;
  return ports;
}

// Every flow of ours on the bridge, with its counters. ovs-vswitchd credits packets that its
// datapath flow cache forwarded to the OpenFlow flows only when its revalidators next run (every
// ~0.5 s): waiting for one round first makes the counters include every packet sent before the
// call. Without the control socket the counters may lag by that much (said on `err`).
[[nodiscard]] Result<std::vector<FlowStats>> switchFlowStats(const SwitchEndpoints& endpoints,
                                                             std::chrono::milliseconds timeout,
                                                             std::ostream& err) {
  if (endpoints.vswitchd_ctl.empty()) {
    err << "vpcguardctl: note: ovs-vswitchd's control socket not found (--vswitchd-ctl): "
           "counters may miss the last half second of packets\n";
  } else if (auto waited = ovs::appctl(endpoints.vswitchd_ctl, "revalidator/wait", {}, timeout);
             !waited) {
    return makeError("ovs-vswitchd: " + waited.error().message);
  }
  auto channel = ovs::connectOpenFlow(endpoints.openflow, timeout);
  if (!channel) {
    return makeError("OpenFlow " + endpoints.openflow + ": " + channel.error().message);
  }
  ovs::DumpFilter filter;
  filter.cookie = pipeline::kCookieMagic;
  filter.cookie_mask = pipeline::kCookieMagicMask;
  auto dumped = (*channel)->dumpFlows(filter);
  if (!dumped) {
    return makeError("OpenFlow " + endpoints.openflow + ": " + dumped.error().message);
  }
  std::vector<FlowStats> flows;
  flows.reserve(dumped->size());
  for (auto& f : *dumped) {
    flows.push_back({std::move(f.flow), f.n_packets, f.n_bytes, f.duration_sec});
  }
  return flows;
}

// Hit counters of `policy` from the switch.
[[nodiscard]] Result<std::vector<RuleHits>> switchHits(const model::Policy& policy,
                                                       const SwitchEndpoints& endpoints,
                                                       std::chrono::milliseconds timeout,
                                                       std::ostream& err) {
  auto translation = translateDetached(policy);
  if (!translation) {
    return tl::unexpected(translation.error());
  }
  SwitchDeadline deadline(conversationBudget(timeout));
  auto flows = switchFlowStats(endpoints, timeout, err);
  if (!flows) {
    return tl::unexpected(flows.error());
  }
  return ruleHits(policy, *translation, *flows);
}

// Runs the probe on the switch and says whether it agrees; prints the comparison (text) or adds
// it to `json` as "switch_check".
[[nodiscard]] int checkOnSwitch(const TraceResult& result, const SwitchOptions& options,
                                const SwitchEndpoints& endpoints, std::ostream& out,
                                std::ostream& err, nlohmann::ordered_json* json) {
  const auto report = [&](bool agree, const std::string& explanation) {
    if (json != nullptr) {
      (*json)["switch_check"] = {{"comparable", result.probe.comparable},
                                 {"agree", agree},
                                 {"explanation", explanation}};
    } else {
      out << "switch: " << explanation << "\n";
    }
  };
  if (!result.probe.comparable) {
    // A reply of a connection whose first packet was dropped: there is no connection, and
    // ofproto/trace cannot be told "no conntrack entry"; nothing to compare.
    report(true, "not asked: the original direction is dropped, so there is no connection to "
                 "reply on");
    return kExitOk;
  }
  const std::chrono::milliseconds timeout(options.timeout_ms);
  SwitchDeadline deadline(conversationBudget(timeout));
  auto ports = switchPorts(endpoints, timeout);
  if (!ports) {
    err << "vpcguardctl: " << ports.error().message << "\n";
    return kExitNoSwitch;
  }
  int out_port = -1;
  if (result.probe.delivered) {
    auto it = ports->find(result.probe.out_interface);
    if (it == ports->end()) {
      err << "vpcguardctl: " << result.probe.out_interface << " has no port on bridge "
          << options.bridge << ": the switch cannot deliver to it\n";
      return kExitNoSwitch;
    }
    out_port = it->second;
  }
  auto args = ofprotoTraceArgs(options.bridge, result.probe, *ports);
  if (!args) {
    err << "vpcguardctl: " << args.error().message << "\n";
    return kExitNoSwitch;
  }
  auto switch_trace = runOfprotoTrace(endpoints.vswitchd_ctl, *args, timeout);
  if (!switch_trace) {
    err << "vpcguardctl: " << switch_trace.error().message << "\n";
    return kExitNoSwitch;
  }
  const SwitchComparison cmp = compare(result.probe, *switch_trace, out_port);
  report(cmp.agree, cmp.explanation);
  if (!cmp.agree) {
    err << "vpcguardctl: the switch disagrees with the policy trace: " << cmp.explanation
        << "\nofproto/trace output:\n"
        << switch_trace->raw;
    return kExitDisagree;
  }
  return kExitOk;
}

}  // namespace

int runTraceCommand(const TraceCommandOptions& options, std::ostream& out, std::ostream& err) {
  std::optional<SwitchEndpoints> endpoints;
  if (options.use_switch) {
    auto resolved = resolveSwitch(options.switch_options, true);
    if (!resolved) {
      err << "vpcguardctl: " << resolved.error().message << "\n";
      return kExitNoSwitch;
    }
    endpoints = std::move(*resolved);
  }
  auto policy = loadFor(options.config, endpoints ? &*endpoints : nullptr, err);
  if (!policy) {
    return policy.error();
  }
  auto result = trace(*policy, options.request);
  if (!result) {
    err << "vpcguardctl: trace: " << result.error().message << "\n";
    return kExitUsage;
  }
  if (options.output == "json") {
    auto json = toJson(*result);
    int status = kExitOk;
    if (endpoints) {
      status = checkOnSwitch(*result, options.switch_options, *endpoints, out, err, &json);
    }
    out << dumpJson(json);
    return status;
  }
  out << renderText(*result);
  if (endpoints) {
    return checkOnSwitch(*result, options.switch_options, *endpoints, out, err, nullptr);
  }
  return kExitOk;
}

int runLintCommand(const LintCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto policy = config::loadPolicyReporting(options.path, err);
  if (!policy) {
    return kLintCannotRun;
  }
  LintOptions lint_options;
  lint_options.window_seconds = options.window_seconds;
  std::vector<RuleHits> hits;
  if (options.use_switch) {
    auto endpoints = resolveSwitch(options.switch_options, false);
    if (!endpoints) {
      err << "vpcguardctl: " << endpoints.error().message << "\n";
      return kLintCannotRun;
    }
    auto read = switchHits(*policy, *endpoints,
                           std::chrono::milliseconds(options.switch_options.timeout_ms), err);
    if (!read) {
      err << "vpcguardctl: " << read.error().message << "\n";
      return kLintCannotRun;
    }
    hits = std::move(*read);
    lint_options.hits = &hits;
    std::error_code ec;
    if (!endpoints->config.empty() &&
        !std::filesystem::equivalent(options.path, endpoints->config, ec) && !ec) {
      err << "vpcguardctl: note: vpcguardd runs " << endpoints->config << ", not "
          << options.path << ": zero-hit findings are about the flows it installed\n";
    }
  }
  const auto findings = lint(*policy, lint_options);
  out << (options.output == "json" ? renderFindingsJson(findings) : renderFindingsText(findings));
  return lintExitStatus(findings);
}

int runStatsCommand(const StatsCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto endpoints = resolveSwitch(options.switch_options, false);
  if (!endpoints) {
    err << "vpcguardctl: " << endpoints.error().message << "\n";
    return kExitNoSwitch;
  }
  auto policy = loadFor(options.config, &*endpoints, err);
  if (!policy) {
    return policy.error();
  }
  auto hits = switchHits(*policy, *endpoints,
                         std::chrono::milliseconds(options.switch_options.timeout_ms), err);
  if (!hits) {
    err << "vpcguardctl: " << hits.error().message << "\n";
    return kExitNoSwitch;
  }
  if (options.output == "json") {
    out << renderHitsJson(*hits);
  } else if (options.output == "prometheus") {
    out << renderHitsPrometheus(*hits);
  } else {
    out << renderHitsText(*hits);
  }
  return kExitOk;
}

}  // namespace vpcguard::explain
