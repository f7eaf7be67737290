// sync_bench: keeping Open vSwitch in sync with the policy at 1k..100k flows (issue 5), next to
// ovs-ofctl doing the same switch work in the same run.
//
//   sync_bench [--sizes 1000,10000,100000] [--changes N] [--json] [--no-daemon] [--single-file]
//
// For each size, a policy of about that many flows (configs/gen-large.py; the shape is printed)
// with every interface attached as a dummy port of a sandboxed switch. The policy is a config
// directory (gen-large.py --output-dir: one file per security group, interfaces 250 to a file), as
// on a host where config management writes one file per group; a change rewrites one of them.
// --single-file puts it all in one file, which a change then makes the loader parse whole:
//  1. install: parse + translate + FlowSync::syncFull + barrier, versus
//     `ovs-ofctl --bundle add-flows` of the same flows on a second bridge;
//  2. one rule change, N times (alternately add and remove one SG ingress rule in the last
//     group's file): from "the file was replaced" to "the flows are confirmed by a barrier", split into
//     parse, translate, diff (normalise + compare) and bundle + barrier; p50/p99. Baseline: the
//     very same flow mods as one `ovs-ofctl --bundle add-flows` on the second bridge;
//  3. full resync (FlowSync::syncFull, what vpcguardd does at start, reconnect and drift check)
//     versus `ovs-ofctl --bundle replace-flows` of the same table: from an empty bridge, with
//     nothing different, with ~1% of the flows different;
//  4. Open_vSwitch other_config:bundle-idle-timeout=1: the whole install must still commit;
//  5. the real vpcguardd on a fresh sandbox: time to the first sync, its VmRSS/VmHWM at that
//     size (next to ovs-vswitchd's RSS holding the same table), and the same rule changes end to
//     end: config file renamed into place -> the daemon's status file reports the sync;
//  6. its /metrics (--metrics-listen): scrape time, how long the per-rule hit read takes at that
//     size, and the same rule changes while scraped every 250 ms, next to the unscraped ones.
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "daemon/flow_sync.h"
#include "daemon/policy_engine.h"
#include "daemon/status.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/process.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace {

using namespace vpcguard;
using bench::Clock;
using bench::msSince;
using bench::percentile;
using Json = nlohmann::ordered_json;

void progress(const std::string& what) { std::fprintf(stderr, "sync_bench: %s\n", what.c_str()); }

// ---------------------------------------------------------------------------------------------
// Policies of a given size.

// configs/gen-large.py's knobs. Within a size class only the interface count varies, so sizes
// differ in how many interfaces (and so addresses, group members and per-port flows) they hold.
struct Shape {
  int interfaces = 0;
  int addresses = 4;  // IPv4 addresses per interface
  int groups = 20;    // security groups in total (one, sg-fleet, holds every interface)
  int groups_per_interface = 4;
  int rules = 20;  // inbound rules per group
  int nacls = 4;
  int nacl_entries = 20;  // per NACL and direction

  [[nodiscard]] std::string args() const {
    return fmt::format(
        "--interfaces {} --addresses-per-interface {} --groups {} "
        "--groups-per-interface {} --rules {} --nacls {} --nacl-entries {} --seed 1",
        interfaces, addresses, groups, groups_per_interface, rules, nacls, nacl_entries);
  }
};

// The interface count for about `flows` flows, from flow counts measured for these shapes
// (vpcguardctl flows --stats): a fixed part (NACLs, group rules, the pipeline) plus flows per
// interface. Below 5k flows a smaller policy, as the larger one's fixed part alone is ~1.7k.
// The flow count printed is the real one.
Shape shapeFor(size_t flows) {
  Shape s;
  double fixed = 1724;
  double per_interface = 50.4;
  if (flows < 5000) {
    s.addresses = 2;
    s.groups = 4;
    s.groups_per_interface = 2;
    s.rules = 10;
    s.nacls = 1;
    s.nacl_entries = 10;
    fixed = 359;
    per_interface = 34.0;
  }
  s.interfaces = std::max(
      1, static_cast<int>(std::lround((static_cast<double>(flows) - fixed) / per_interface)));
  return s;
}

// The config with one extra inbound rule at the end of the last security group: the last
// conjunction id, so no other rule is renumbered (ids follow config order) and the change is
// the rule's own flows plus its group members' clause flows, as for any added rule.
Result<std::string> withExtraRule(const std::string& base, int n) {
  const size_t group = base.rfind("\n[[security_groups]]\n");
  const std::string anchor = "\ningress = [\n";
  const size_t ingress = group == std::string::npos ? group : base.find(anchor, group);
  if (ingress == std::string::npos) {
    return makeError("generated config has no security group with inbound rules");
  }
  const size_t end = base.find("\n]\n", ingress + 1);
  if (end == std::string::npos) {
    return makeError("generated config: the last group's inbound rules do not end");
  }
  std::string out = base;
  out.insert(end + 1, fmt::format("  {{ ip_protocol = \"tcp\", from_port = {0}, to_port = {0}, "
                                  "cidr_ipv4 = \"10.99.{1}.0/24\" }},\n",
                                  20000 + n, n % 250));
  return out;
}

Result<std::string> readText(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return makeError("cannot read " + path);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Saves `text` as `path` the way editors and config management do: write, then rename.
Result<void> replaceFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) {
      return makeError("cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return makeError("cannot rename " + tmp);
  }
  return {};
}

// A policy as the files of a config directory (name -> text); one file is {"policy.toml": text}.
using ConfigFiles = std::map<std::string, std::string>;

// The config the daemon (or the in-process enforcer) reads, in a directory of its own. write()
// saves only the files that differ from the last write, each by rename, as a person editing one
// file of a config directory would: a reload then finds exactly those files changed.
class ConfigDir {
 public:
  ConfigDir(std::string dir, bool single_file) : dir_(std::move(dir)), single_file_(single_file) {
    std::filesystem::create_directories(dir_);
  }
  // What vpcguardd's --config names: the directory, or its one file.
  [[nodiscard]] std::string path() const { return single_file_ ? dir_ + "/policy.toml" : dir_; }

  Result<void> write(const ConfigFiles& files) {
    for (const auto& [name, text] : files) {
      if (auto it = written_.find(name); it != written_.end() && it->second == text) {
        continue;
      }
      if (auto r = replaceFile(dir_ + "/" + name, text); !r) {
        return r;
      }
    }
    for (const auto& [name, text] : written_) {
      if (files.count(name) == 0) {
        std::filesystem::remove(dir_ + "/" + name);
      }
    }
    written_ = files;
    return {};
  }

 private:
  std::string dir_;
  bool single_file_;
  ConfigFiles written_;
};

// A private temp dir (/tmp/vgt.*, so tests/cleanup-leftovers.sh knows it), removed at the end,
// also on Ctrl-C.
class WorkDir {
 public:
  static Result<std::unique_ptr<WorkDir>> create() {
    char tmpl[] = "/tmp/vgt.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      return makeError("mkdtemp failed");
    }
    auto dir = std::unique_ptr<WorkDir>(new WorkDir(tmpl));
    const std::string path = dir->path_;
    dir->cleanup_id_ = test::SignalCleanup::add([path] {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    });
    return dir;
  }
  ~WorkDir() {
    test::SignalCleanup::remove(cleanup_id_);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  explicit WorkDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
  int cleanup_id_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The switch connection FlowSync talks to, timed: what part of a sync is the switch's.
class TimedChannel final : public ovs::OpenFlowChannel {
 public:
  explicit TimedChannel(ovs::OpenFlowChannel& inner) : inner_(inner) {}

  Result<ovs::BundleOutcome> applyBundle(std::span<const ovs::FlowMod> mods) override {
    const auto t0 = Clock::now();
    auto r = inner_.applyBundle(mods);
    bundle_ms += msSince(t0);
    mods_sent += mods.size();
    if (keep_mods) {
      // Owning copies: the flows the mods refer to are the FlowSync's.
      last_mods.clear();
      for (const auto& m : mods) {
        last_mods.push_back(m.owning());
      }
    }
    return r;
  }
  Result<std::vector<ovs::InstalledFlow>> dumpFlows(const ovs::DumpFilter& filter) override {
    const auto t0 = Clock::now();
    auto r = inner_.dumpFlows(filter);
    dump_ms += msSince(t0);
    return r;
  }
  // The streaming dump of full compares; its time includes the caller's compare of each flow.
  Result<void> dumpFlowsTo(const ovs::DumpFilter& filter,
                           const std::function<void(ovs::InstalledFlow&&)>& sink) override {
    const auto t0 = Clock::now();
    auto r = inner_.dumpFlowsTo(filter, sink);
    dump_ms += msSince(t0);
    return r;
  }
  Result<void> barrier() override {
    const auto t0 = Clock::now();
    auto r = inner_.barrier();
    barrier_ms += msSince(t0);
    return r;
  }
  Result<void> flushConntrackZone(uint16_t zone) override {
    return inner_.flushConntrackZone(zone);
  }
  Result<void> keepAlive() override { return inner_.keepAlive(); }
  [[nodiscard]] std::string target() const override { return inner_.target(); }

  void reset() {
    bundle_ms = dump_ms = barrier_ms = 0;
    mods_sent = 0;
    last_mods.clear();
  }

  double bundle_ms = 0;  // open + flow mods + commit, until the switch answered the commit
  double dump_ms = 0;
  double barrier_ms = 0;
  size_t mods_sent = 0;
  bool keep_mods = false;
  std::vector<ovs::FlowMod> last_mods;

 private:
  ovs::OpenFlowChannel& inner_;
};

// What vpcguardd keeps between changes (Daemon's policy_, indices_, ofports_, sync_).
struct Enforcer {
  config::PolicyLoader loader;  // as vpcguardd's: a reload parses only the files that changed
  std::map<std::string, int> ofports;
  std::map<std::string, uint16_t> indices;
  std::optional<model::Policy> policy;
  TimedChannel* channel = nullptr;
  std::unique_ptr<FlowSync> sync;    // full comparisons (install, resync figures)
  std::unique_ptr<PolicyEngine> engine;  // changes, as vpcguardd makes them
  std::vector<Flow> flows;  // the desired flows of the policy in force
};

struct ChangeTiming {
  double parse_ms = 0;      // read + parse + validate the file; keep the interfaces' indices
  double translate_ms = 0;  // policy -> desired flows
  double diff_ms = 0;       // FlowSync: desired flows normalised and compared with installed
  double bundle_ms = 0;     // the one atomic bundle, until the switch answered the commit
  double barrier_ms = 0;
  double total_ms = 0;
  // CPU time of this thread in the steps above (bundle: encoding only, the rest is the switch's).
  double parse_cpu_ms = 0;
  double apply_cpu_ms = 0;  // translate + diff + bundle (PolicyEngine::apply)
  size_t files_parsed = 0;     // config files read again ...
  size_t files_unchanged = 0;  // ... and those whose earlier parse was reused
  SyncReport report;
};

// =============================================================================================
// applyChangedPolicy: THE path this benchmark measures for a change. A changed config applied the
// way vpcguardd applies it (Daemon::loadConfig, then Daemon::apply): read and validate the file,
// keep the interfaces' indices, then PolicyEngine::apply (translate what changed, normalise and
// send only the difference as one atomic bundle), then a barrier, after which the flows are known
// to be in effect.
// =============================================================================================
Result<ChangeTiming> applyChangedPolicy(Enforcer& e, const std::string& config_path) {
  ChangeTiming t;
  e.channel->reset();
  const auto start = Clock::now();
  const double cpu0 = bench::threadCpuMs();
  auto loaded = e.loader.load(config_path);
  if (!loaded) {
    return makeError("config: " + loaded.error().toError().message);
  }
  t.files_parsed = e.loader.lastCounts().parsed;
  t.files_unchanged = e.loader.lastCounts().reused;
  auto indices = assignInterfaceIndices(*loaded, e.indices);
  if (!indices) {
    return tl::unexpected(indices.error());
  }
  e.policy = std::move(*loaded);
  e.indices = std::move(*indices);
  t.parse_ms = msSince(start);
  const double cpu1 = bench::threadCpuMs();

  // PolicyEngine::apply: the incremental translator recomputes the units the change touches and
  // FlowSync sends only that difference (vpcguardd's Daemon::apply).
  PolicyEngine::Input in;
  in.policy = &*e.policy;
  in.ofports = &e.ofports;
  in.interface_index = &e.indices;
  in.generation = 1;
  auto report = e.engine->apply(in);
  if (!report) {
    return tl::unexpected(report.error().error);
  }
  const double cpu3 = bench::threadCpuMs();
  t.translate_ms = report->translate_ms;
  const double apply_ms = report->sync_ms;
  if (auto b = e.channel->barrier(); !b) {
    return tl::unexpected(b.error());
  }
  t.total_ms = msSince(start);
  t.bundle_ms = e.channel->bundle_ms;
  t.diff_ms = apply_ms - t.bundle_ms;
  t.barrier_ms = e.channel->barrier_ms;
  t.parse_cpu_ms = cpu1 - cpu0;
  t.apply_cpu_ms = cpu3 - cpu1;  // translate + diff + bundle: one call, not split
  t.report = report->sync;
  e.flows = e.engine->translator().flows();
  return t;
}

// A full comparison with the switch (FlowSync::syncFull) plus a barrier, split into its parts.
struct ResyncTiming {
  double total_ms = 0;
  double dump_ms = 0;
  double diff_ms = 0;  // normalise + compare
  double bundle_ms = 0;
  double barrier_ms = 0;
  SyncReport report;
};

Result<ResyncTiming> timedResync(Enforcer& e) {
  e.channel->reset();
  const auto start = Clock::now();
  auto report = e.sync->syncFull(e.flows);
  if (!report) {
    return tl::unexpected(report.error());
  }
  if (auto b = e.channel->barrier(); !b) {
    return tl::unexpected(b.error());
  }
  ResyncTiming t;
  t.total_ms = msSince(start);
  t.dump_ms = e.channel->dump_ms;
  t.bundle_ms = e.channel->bundle_ms;
  t.barrier_ms = e.channel->barrier_ms;
  t.diff_ms = t.total_ms - t.dump_ms - t.bundle_ms - t.barrier_ms;
  t.report = *report;
  return t;
}

// Flows on a bridge, as the switch counts them.
Result<size_t> switchFlowCount(const test::OvsSandbox& sb, const std::string& bridge) {
  auto r = bench::ofctl(sb, "dump-aggregate " + sb.bridgeTarget(bridge));
  if (!r) {
    return tl::unexpected(r.error());
  }
  const size_t pos = r->find("flow_count=");
  if (pos == std::string::npos) {
    return makeError("no flow_count in: " + *r);
  }
  return static_cast<size_t>(std::stoul(r->substr(pos + 11)));
}

pid_t vswitchdPid(const test::OvsSandbox& sb) {
  std::ifstream in(sb.dir() + "/ovs-vswitchd.pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}


size_t statusFlows(const DaemonStatus& s) {
  size_t n = 0;
  for (const auto& [table, count] : s.flows_per_table) {
    n += count;
  }
  return n;
}

struct Samples {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
  [[nodiscard]] double p50() const { return percentile(v, 0.5); }
  [[nodiscard]] double p99() const { return percentile(v, 0.99); }
};

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

// What starting ovs-ofctl costs on this machine (median of 5 `ovs-ofctl --version`, run the way
// the baselines run it): the part of a small ovs-ofctl change that is not the switch's work.
double ofctlFloor(const test::OvsSandbox& sb) {
  Samples s;
  for (int i = 0; i < 5; ++i) {
    if (auto ms = bench::timedOfctl(sb, "--version")) {
      s.add(*ms);
    }
  }
  return s.p50();
}

double loadAverage() {
  std::ifstream in("/proc/loadavg");
  double one = 0;
  in >> one;
  return one;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

Json resyncJson(const ResyncTiming& t, double ofctl_ms,
                const std::string& ofctl_key = "ofctl_replace_flows_ms") {
  return Json{{"vpcguard_ms", t.total_ms},     {"dump_ms", t.dump_ms},
              {"diff_ms", t.diff_ms},          {"bundle_ms", t.bundle_ms},
              {"barrier_ms", t.barrier_ms},    {"added", t.report.added},
              {"modified", t.report.modified}, {"deleted", t.report.deleted},
              {ofctl_key, ofctl_ms},           {"ratio", ratio(t.total_ms, ofctl_ms)}};
}

// ---------------------------------------------------------------------------------------------
// One size, start to end. Fills `out`; text lines go to `text`.

class SizeRun {
 public:
  SizeRun(size_t target, int changes, bool daemon, bool single_file)
      : target_(target), changes_(changes), daemon_(daemon), single_file_(single_file) {}

  Result<Json> run(std::string& text) {
    const double load_start = loadAverage();
    if (auto r = prepare(); !r) {
      return tl::unexpected(r.error());
    }
    {
      // The in-process part on its own switch, freed before the daemon's.
      if (auto r = inProcess(); !r) {
        return tl::unexpected(r.error());
      }
    }
    if (daemon_) {
      if (auto r = daemonRun(); !r) {
        return tl::unexpected(r.error());
      }
    }
    // Wall times on a shared machine stretch with its load; CPU times above do not.
    line("loadavg_1min_start_end", fmt::format("{:.2f} {:.2f} ({} CPUs)", load_start, loadAverage(),
                                               std::thread::hardware_concurrency()));
    out_["loadavg_1min"] = {load_start, loadAverage()};
    text += lines_;
    return out_;
  }

 private:
  void line(const std::string& key, const std::string& value) {
    lines_ += fmt::format("{:<34} {}\n", key, value);
  }
  std::string tag() const { return fmt::format("[{}]", target_); }

  Result<void> prepare() {
    shape_ = shapeFor(target_);
    auto work = WorkDir::create();
    if (!work) {
      return tl::unexpected(work.error());
    }
    work_ = std::move(*work);
    const std::string base_path = work_->path() + (single_file_ ? "/base.toml" : "/base.d");
    progress(tag() + " generating the policy: gen-large.py " + shape_.args() +
             (single_file_ ? "" : " --output-dir"));
    if (auto r = test::runChecked(
            "python3 " + test::shellQuote(test::sourceDir() + "/configs/gen-large.py") + " " +
                shape_.args() + (single_file_ ? " -o " : " --output-dir ") +
                test::shellQuote(base_path),
            std::chrono::seconds(300));
        !r) {
      return tl::unexpected(r.error());
    }
    if (single_file_) {
      auto text = readText(base_path);
      if (!text) {
        return tl::unexpected(text.error());
      }
      base_["policy.toml"] = std::move(*text);
    } else {
      for (const auto& entry : std::filesystem::directory_iterator(base_path)) {
        auto text = readText(entry.path().string());
        if (!text) {
          return tl::unexpected(text.error());
        }
        base_[entry.path().filename().string()] = std::move(*text);
      }
    }
    // The file a change edits: the one with the last security group.
    std::string target;
    for (const auto& [name, text] : base_) {
      if (text.find("[[security_groups]]") != std::string::npos) {
        target = name;
      }
    }
    if (target.empty()) {
      return makeError("generated config has no security group");
    }
    // The change texts, checked once: each must be a valid config.
    for (int i = 0; i < changes_; ++i) {
      change_texts_.push_back(base_);
      if (i % 2 == 1) {
        continue;
      }
      auto t = withExtraRule(base_.at(target), i);
      if (!t) {
        return tl::unexpected(t.error());
      }
      change_texts_.back()[target] = std::move(*t);
    }
    line("config", single_file_ ? std::string("one file (--single-file)")
                                : fmt::format("a directory of {} files; a change edits {}",
                                              base_.size(), target));
    return {};
  }

  // Install, changes, full resyncs, bundle idle timeout: FlowSync in this process.
  Result<void> inProcess() {
    progress(tag() + " starting a sandbox switch");
    auto sandbox = test::OvsSandbox::start();
    if (!sandbox) {
      return tl::unexpected(sandbox.error());
    }
    auto& sb = **sandbox;
    for (const char* br : {"br0", "br1"}) {
      if (auto r = sb.addBridge(br); !r) {
        return tl::unexpected(r.error());
      }
    }
    config_ = std::make_unique<ConfigDir>(sb.dir() + "/config", single_file_);
    const std::string config = config_->path();
    if (auto r = config_->write(base_); !r) {
      return tl::unexpected(r.error());
    }

    // Install: as vpcguardd at start-up (load, translate, syncFull), plus a barrier.
    Enforcer e;
    const auto parse_start = Clock::now();
    auto loaded = e.loader.load(config);
    if (!loaded) {
      return makeError("config: " + loaded.error().toError().message);
    }
    const double parse_ms = msSince(parse_start);
    auto indices = assignInterfaceIndices(*loaded, {});
    if (!indices) {
      return tl::unexpected(indices.error());
    }
    e.policy = std::move(*loaded);
    e.indices = std::move(*indices);
    progress(tag() + fmt::format(" attaching {} interfaces", e.policy->network_interfaces.size()));
    auto ofports = bench::attachInterfaces(sb, "br0", *e.policy, "p");
    if (!ofports) {
      return tl::unexpected(ofports.error());
    }
    e.ofports = std::move(*ofports);
    size_t rules = 0;
    for (const auto& g : e.policy->security_groups) {
      rules += g.ingress.size() + g.egress.size();
    }
    auto channel = ovs::connectOpenFlow(sb.bridgeTarget("br0"));
    if (!channel) {
      return tl::unexpected(channel.error());
    }
    TimedChannel timed(**channel);
    e.channel = &timed;
    e.sync = std::make_unique<FlowSync>(timed);

    progress(tag() + " install");
    const auto translate_start = Clock::now();
    TranslateInput in;
    in.policy = &*e.policy;
    in.ofports = e.ofports;
    in.interface_index = e.indices;
    in.generation = 1;
    auto translation = translate(in);
    if (!translation) {
      return tl::unexpected(translation.error());
    }
    const double translate_ms = msSince(translate_start);
    e.flows = translation->flows;
    auto install = timedResync(e);
    if (!install) {
      return tl::unexpected(install.error());
    }
    // The engine starts from what the switch holds, as vpcguardd does after connecting.
    e.engine = std::make_unique<PolicyEngine>();
    e.engine->attach(&timed);
    {
      PolicyEngine::Input engine_in;
      engine_in.policy = &*e.policy;
      engine_in.ofports = &e.ofports;
      engine_in.interface_index = &e.indices;
      engine_in.generation = 1;
      auto synced = e.engine->resync(engine_in);
      if (!synced) {
        return tl::unexpected(synced.error().error);
      }
    }
    const size_t flows = e.flows.size();
    const std::string flows_file = sb.dir() + "/flows.txt";
    bench::writeFlowsFile(flows_file, e.flows);
    auto ofctl_install =
        bench::timedOfctl(sb, "--bundle add-flows " + sb.bridgeTarget("br1") + " " + flows_file);
    if (!ofctl_install) {
      return tl::unexpected(ofctl_install.error());
    }
    auto n0 = switchFlowCount(sb, "br0");
    auto n1 = switchFlowCount(sb, "br1");
    if (!n0 || !n1 || *n0 != flows || *n1 != flows) {
      return makeError(fmt::format("after install the switch holds {} / {} flows, expected {}",
                                   n0 ? *n0 : 0, n1 ? *n1 : 0, flows));
    }
    line("shape (gen-large.py)", shape_.args());
    line("interfaces / groups / rules",
         fmt::format("{} / {} / {} (addresses {})", e.policy->network_interfaces.size(),
                     e.policy->security_groups.size(), rules,
                     e.policy->network_interfaces.size() * static_cast<size_t>(shape_.addresses)));
    line("flows", fmt::format("{} (target {})", flows, target_));
    line("install_ms",
         fmt::format("{:.1f} = sync {:.1f} (dump {:.1f}, normalise+diff {:.1f}, "
                     "bundle {:.1f}, barrier {:.1f}); before it parse {:.1f}, translate {:.1f}",
                     install->total_ms, install->total_ms, install->dump_ms, install->diff_ms,
                     install->bundle_ms, install->barrier_ms, parse_ms, translate_ms));
    line("install_ofctl_add_flows_ms",
         fmt::format("{:.1f} (ovs-ofctl --bundle add-flows, same flows)", *ofctl_install));
    line("install_vs_ofctl_ratio",
         fmt::format("{:.2f} (sync only; with parse+translate {:.2f})",
                     ratio(install->total_ms, *ofctl_install),
                     ratio(install->total_ms + parse_ms + translate_ms, *ofctl_install)));
    out_["target_flows"] = target_;
    out_["shape"] = {{"interfaces", shape_.interfaces},
                     {"addresses_per_interface", shape_.addresses},
                     {"groups", shape_.groups},
                     {"groups_per_interface", shape_.groups_per_interface},
                     {"rules_per_group", shape_.rules},
                     {"nacls", shape_.nacls},
                     {"nacl_entries", shape_.nacl_entries}};
    out_["flows"] = flows;
    out_["config_rules"] = rules;
    out_["install"] = {{"parse_ms", parse_ms},
                       {"translate_ms", translate_ms},
                       {"sync", resyncJson(*install, *ofctl_install, "ofctl_add_flows_ms")}};

    if (auto r = changes(sb, e); !r) {
      return r;
    }
    if (auto r = resyncs(sb, e); !r) {
      return r;
    }
    return idleTimeout(sb, e);
  }

  // N single-rule changes through applyChangedPolicy, each mirrored by ovs-ofctl on br1.
  Result<void> changes(test::OvsSandbox& sb, Enforcer& e) {
    Samples total, parse, translate_ms, diff, bundle, ofctl, parse_cpu, apply_cpu;
    std::vector<std::string> diffs;
    const std::string config = config_->path();
    const std::string mods_file = sb.dir() + "/change.txt";
    size_t files_parsed = 0;
    size_t files_unchanged = 0;
    e.channel->keep_mods = true;
    for (int i = 0; i < changes_; ++i) {
      progress(tag() + fmt::format(" change {}/{}", i + 1, changes_));
      if (auto r = config_->write(change_texts_[static_cast<size_t>(i)]); !r) {
        return r;
      }
      auto t = applyChangedPolicy(e, config);
      if (!t) {
        return tl::unexpected(t.error().withContext(fmt::format("change {}", i + 1)));
      }
      if (t->report.changes() == 0) {
        return makeError(
            fmt::format("change {} changed no flow: the benchmark measures nothing", i + 1));
      }
      expected_flows_.push_back(e.flows.size());
      files_parsed = std::max(files_parsed, t->files_parsed);
      files_unchanged = std::max(files_unchanged, t->files_unchanged);
      total.add(t->total_ms);
      parse.add(t->parse_ms);
      translate_ms.add(t->translate_ms);
      diff.add(t->diff_ms);
      bundle.add(t->bundle_ms + t->barrier_ms);
      parse_cpu.add(t->parse_cpu_ms);
      apply_cpu.add(t->apply_cpu_ms);
      if (diffs.size() < 2) {
        diffs.push_back(fmt::format("{}: +{} ~{} -{}", i % 2 == 0 ? "add rule" : "remove rule",
                                    t->report.added, t->report.modified, t->report.deleted));
      }
      bench::writeFlowModsFile(mods_file, e.channel->last_mods);
      auto o =
          bench::timedOfctl(sb, "--bundle add-flows " + sb.bridgeTarget("br1") + " " + mods_file);
      if (!o) {
        return tl::unexpected(
            o.error().withContext("ovs-ofctl baseline of change " + std::to_string(i + 1)));
      }
      ofctl.add(*o);
    }
    if (changes_ % 2 == 1) {
      // Back to the base policy (not timed), so the resyncs below work on the table printed.
      if (auto r = config_->write(base_); !r) {
        return r;
      }
      if (auto t = applyChangedPolicy(e, config); !t) {
        return tl::unexpected(t.error());
      }
      bench::writeFlowModsFile(mods_file, e.channel->last_mods);
      if (auto r =
              bench::ofctl(sb, "--bundle add-flows " + sb.bridgeTarget("br1") + " " + mods_file);
          !r) {
        return tl::unexpected(r.error());
      }
    }
    e.channel->keep_mods = false;
    // The switch's own floor at this table size: a bundle of one flow mod and its barrier, on
    // the same connection as the changes. The mod rewrites one of the policy's flows as it is
    // (so the table stays what the resyncs below expect), a different one each time.
    Samples one_mod;
    for (int i = 0; i < 2 * changes_; ++i) {
      {
        ovs::FlowMod m = ovs::FlowMod::referring(
            ovs::FlowCommand::kModifyStrict,
            e.flows[static_cast<size_t>(i) * 7919 % e.flows.size()]);
        const auto t0 = Clock::now();
        auto r = e.channel->applyBundle(std::span<const ovs::FlowMod>(&m, 1));
        if (!r || !r->committed) {
          return makeError("one-mod bundle: " + (r ? std::string("refused") : r.error().message));
        }
        if (auto b = e.channel->barrier(); !b) {
          return tl::unexpected(b.error());
        }
        one_mod.add(msSince(t0));
      }
    }
    auto n0 = switchFlowCount(sb, "br0");
    auto n1 = switchFlowCount(sb, "br1");
    if (!n0 || !n1 || *n0 != e.flows.size() || *n1 != e.flows.size()) {
      return makeError(fmt::format("after the changes the switch holds {} / {} flows, expected {}",
                                   n0 ? *n0 : 0, n1 ? *n1 : 0, e.flows.size()));
    }
    std::string d;
    for (const auto& s : diffs) {
      d += (d.empty() ? "" : "; ") + s;
    }
    line("change_flow_mods", d + " (flows added ~modified -deleted)");
    line("change_ms_p50_p99", fmt::format("{:.2f} {:.2f} (n={}; config file replaced -> barrier)",
                                          total.p50(), total.p99(), total.v.size()));
    line("  parse_ms_p50_p99",
         fmt::format("{:.2f} {:.2f} (files parsed {}, reused unchanged {})", parse.p50(),
                     parse.p99(), files_parsed, files_unchanged));
    line("  translate_ms_p50_p99",
         fmt::format("{:.2f} {:.2f}", translate_ms.p50(), translate_ms.p99()));
    line("  diff_ms_p50_p99",
         fmt::format("{:.2f} {:.2f} (normalise + compare)", diff.p50(), diff.p99()));
    line("  bundle_barrier_ms_p50_p99", fmt::format("{:.2f} {:.2f}", bundle.p50(), bundle.p99()));
    line("  cpu_ms_p50",
         fmt::format("parse {:.2f}, translate+diff+bundle {:.2f} (this thread's CPU time)",
                     parse_cpu.p50(), apply_cpu.p50()));
    line("change_ofctl_ms_p50_p99",
         fmt::format("{:.2f} {:.2f} (same flow mods, ovs-ofctl --bundle add-flows)", ofctl.p50(),
                     ofctl.p99()));
    const double floor = ofctlFloor(sb);
    line("ofctl_startup_floor_ms",
         fmt::format("{:.2f} (`ovs-ofctl --version` the same way: process start alone)", floor));
    line("change_vs_ofctl_ratio_p50",
         fmt::format("{:.2f} ({:.2f} against ovs-ofctl minus its start-up floor)",
                     ratio(total.p50(), ofctl.p50()), ratio(total.p50(), ofctl.p50() - floor)));
    line("switch_one_mod_bundle_ms_p50_p99",
         fmt::format("{:.2f} {:.2f} (n={}; one flow mod and its barrier: the switch's floor for any "
                     "change at this size)",
                     one_mod.p50(), one_mod.p99(), one_mod.v.size()));
    line("change_bundle_vs_one_mod_floor_p50",
         fmt::format("{:.2f} (the change's bundle+barrier / the one-mod floor)",
                     ratio(bundle.p50(), one_mod.p50())));
    const auto pj = [](const Samples& s) { return Json{{"p50", s.p50()}, {"p99", s.p99()}}; };
    out_["change"] = {{"n", total.v.size()},
                      {"flow_mods", diffs},
                      {"total_ms", pj(total)},
                      {"parse_ms", pj(parse)},
                      {"files_parsed", files_parsed},
                      {"files_unchanged", files_unchanged},
                      {"translate_ms", pj(translate_ms)},
                      {"diff_ms", pj(diff)},
                      {"bundle_barrier_ms", pj(bundle)},
                      {"cpu_ms_p50",
                       {{"parse", parse_cpu.p50()}, {"translate_diff_bundle", apply_cpu.p50()}}},
                      {"ofctl_ms", pj(ofctl)},
                      {"ofctl_startup_floor_ms", floor},
                      {"switch_one_mod_bundle_ms", pj(one_mod)},
                      {"ratio_p50", ratio(total.p50(), ofctl.p50())},
                      {"ratio_p50_minus_ofctl_startup", ratio(total.p50(), ofctl.p50() - floor)}};
    return {};
  }

  // Full comparison with the switch versus ovs-ofctl replace-flows of the same table.
  Result<void> resyncs(test::OvsSandbox& sb, Enforcer& e) {
    const std::string flows_file = sb.dir() + "/flows.txt";
    bench::writeFlowsFile(flows_file, e.flows);
    const std::string replace =
        "--bundle replace-flows " + sb.bridgeTarget("br1") + " " + flows_file;
    const auto both = [&](const std::string& args) -> Result<void> {
      for (const char* br : {"br0", "br1"}) {
        if (auto r = bench::ofctl(sb, fmt::format(fmt::runtime(args), sb.bridgeTarget(br))); !r) {
          return tl::unexpected(r.error());
        }
      }
      return {};
    };
    const auto check = [&](const char* phase) -> Result<void> {
      auto n0 = switchFlowCount(sb, "br0");
      auto n1 = switchFlowCount(sb, "br1");
      if (!n0 || !n1 || *n0 != e.flows.size() || *n1 != e.flows.size()) {
        return makeError(fmt::format("resync {}: the switch holds {} / {} flows, expected {}",
                                     phase, n0 ? *n0 : 0, n1 ? *n1 : 0, e.flows.size()));
      }
      return {};
    };
    const auto report = [&](const std::string& key, const std::string& what, const ResyncTiming& t,
                            double ofctl_ms) {
      line(key,
           fmt::format(
               "{:.1f} vs replace-flows {:.1f}, ratio {:.2f} (dump {:.1f}, normalise+diff {:.1f}, "
               "bundle {:.1f}, barrier {:.1f}; +{} ~{} -{}) {}",
               t.total_ms, ofctl_ms, ratio(t.total_ms, ofctl_ms), t.dump_ms, t.diff_ms, t.bundle_ms,
               t.barrier_ms, t.report.added, t.report.modified, t.report.deleted, what));
      out_["resync"][key] = resyncJson(t, ofctl_ms);
    };

    // (i) From an empty bridge, as at start-up or after a reconnect: a new FlowSync.
    progress(tag() + " resync from an empty bridge");
    if (auto r = both("del-flows {}"); !r) {
      return r;
    }
    e.sync = std::make_unique<FlowSync>(*e.channel);
    auto empty = timedResync(e);
    if (!empty) {
      return tl::unexpected(empty.error());
    }
    auto ofctl_empty = bench::timedOfctl(sb, replace);
    if (!ofctl_empty) {
      return tl::unexpected(ofctl_empty.error());
    }
    if (auto r = check("from empty"); !r) {
      return r;
    }
    report("resync_from_empty_ms", "(new FlowSync, as at start/reconnect)", *empty, *ofctl_empty);

    // (ii) Nothing different: read back and compare only.
    progress(tag() + " resync, nothing different");
    auto warm = timedResync(e);
    if (!warm) {
      return tl::unexpected(warm.error());
    }
    auto ofctl_same = bench::timedOfctl(sb, replace);
    if (!ofctl_same) {
      return tl::unexpected(ofctl_same.error());
    }
    report("resync_unchanged_ms", "(periodic drift check)", *warm, *ofctl_same);
    e.sync = std::make_unique<FlowSync>(*e.channel);
    auto cold = timedResync(e);
    if (!cold) {
      return tl::unexpected(cold.error());
    }
    report("resync_unchanged_cold_ms", "(new FlowSync: restart/reconnect onto a synced switch)",
           *cold, *ofctl_same);

    // (iii) ~1% of the flows different on both bridges: every 200th deleted, every 200th
    // (offset 100) given other actions.
    progress(tag() + " resync, ~1% of the flows different");
    std::vector<ovs::FlowMod> drift;
    for (size_t k = 0; k < e.flows.size(); k += 100) {
      ovs::FlowMod m;
      m.flow = e.flows[k];
      if ((k / 100) % 2 == 0) {
        m.command = ovs::FlowCommand::kDeleteStrict;
      } else {
        m.command = ovs::FlowCommand::kModifyStrict;
        m.flow.actions = "drop";
      }
      drift.push_back(std::move(m));
    }
    const std::string drift_file = sb.dir() + "/drift.txt";
    bench::writeFlowModsFile(drift_file, drift);
    if (auto r = both("--bundle add-flows {} " + drift_file); !r) {
      return r;
    }
    auto repaired = timedResync(e);
    if (!repaired) {
      return tl::unexpected(repaired.error());
    }
    auto ofctl_repair = bench::timedOfctl(sb, replace);
    if (!ofctl_repair) {
      return tl::unexpected(ofctl_repair.error());
    }
    if (auto r = check("1% different"); !r) {
      return r;
    }
    if (repaired->report.changes() != drift.size()) {
      return makeError(fmt::format("resync repaired {} flows, {} were changed",
                                   repaired->report.changes(), drift.size()));
    }
    report("resync_1pct_different_ms",
           fmt::format("({} of {} flows changed on the switch)", drift.size(), e.flows.size()),
           *repaired, *ofctl_repair);
    return {};
  }

  // Open_vSwitch other_config:bundle-idle-timeout=1 (seconds; the least OpenFlow allows): the
  // whole policy installed as one bundle must still commit.
  Result<void> idleTimeout(test::OvsSandbox& sb, Enforcer& e) {
    progress(tag() + " install with bundle-idle-timeout=1");
    if (auto r = bench::vsctl(sb, "set Open_vSwitch . other_config:bundle-idle-timeout=1"); !r) {
      return tl::unexpected(r.error());
    }
    auto value = bench::vsctl(sb, "get Open_vSwitch . other_config:bundle-idle-timeout");
    if (auto r = bench::ofctl(sb, "del-flows " + sb.bridgeTarget("br0")); !r) {
      return tl::unexpected(r.error());
    }
    e.sync = std::make_unique<FlowSync>(*e.channel);
    auto t = timedResync(e);
    auto n0 = switchFlowCount(sb, "br0");
    std::string outcome;
    if (t && n0 && *n0 == e.flows.size()) {
      outcome = fmt::format(
          "committed: {} flows in one bundle in {:.1f} ms (bundle {:.1f} ms); switch holds {}",
          t->report.added, t->total_ms, t->bundle_ms, *n0);
    } else {
      outcome = fmt::format("FAILED: {}; switch holds {} of {} flows",
                            t ? "no error but a wrong flow count" : t.error().message, n0 ? *n0 : 0,
                            e.flows.size());
    }
    line("bundle_idle_timeout_1s_install", fmt::format("(other_config:bundle-idle-timeout={}) {}",
                                                       value ? trim(*value) : "?", outcome));
    out_["bundle_idle_timeout_1s"] = {{"committed", t && n0 && *n0 == e.flows.size()},
                                      {"outcome", outcome},
                                      {"ms", t ? t->total_ms : 0}};
    return {};
  }

  // The real vpcguardd on a fresh sandbox: memory at this size, and the changes end to end.
  Result<void> daemonRun() {
    progress(tag() + " vpcguardd: starting a fresh sandbox switch");
    auto sandbox = test::OvsSandbox::start();
    if (!sandbox) {
      return tl::unexpected(sandbox.error());
    }
    auto& sb = **sandbox;
    const std::string bridge = "br-int";
    if (auto r = sb.addBridge(bridge); !r) {
      return tl::unexpected(r.error());
    }
    ConfigDir config_dir(sb.dir() + "/config", single_file_);
    const std::string config = config_dir.path();
    if (auto r = config_dir.write(base_); !r) {
      return r;
    }
    auto policy = config::loadPolicy(config);
    if (!policy) {
      return makeError("config: " + policy.error().toError().message);
    }
    progress(tag() + " vpcguardd: attaching interfaces");
    if (auto r = bench::attachInterfaces(sb, bridge, *policy, "v"); !r) {
      return tl::unexpected(r.error());
    }
    const pid_t vswitchd = vswitchdPid(sb);
    const long vswitchd_before = bench::procStatusKiB(vswitchd, "VmRSS");

    const std::string status_dir = sb.dir() + "/status";
    std::filesystem::create_directories(status_dir);
    const std::string status_path = status_dir + "/status.json";
    bench::DirWatch watch(status_dir);
    if (!watch.ok()) {
      return makeError("inotify on " + status_dir + " failed");
    }
    test::ChildProcess::Options o;
    o.argv = {test::programPath("vpcguardd"),
              "--config",
              config,
              "--bridge",
              bridge,
              "--ovsdb",
              sb.dbTarget(),
              "--datapath-type",
              "dummy",
              "--status-file",
              status_path,
              "--resync-interval",
              "86400",
              // Each change renames one complete file into place: nothing more to wait for.
              "--config-settle-ms",
              "0",
              "--log-level",
              std::getenv("VPCGUARD_BENCH_LOG_LEVEL") != nullptr ? std::getenv("VPCGUARD_BENCH_LOG_LEVEL") : "info"};
    // Part 6: the same daemon serves /metrics (its cost is measured after the changes).
    const int metrics_port = bench::freeLoopbackPort();
    o.argv.push_back("--metrics-listen");
    o.argv.push_back(fmt::format("127.0.0.1:{}", metrics_port));
    o.output_path = sb.dir() + "/vpcguardd.log";
    progress(tag() + " vpcguardd: start, waiting for its first sync");
    const auto start = Clock::now();
    auto daemon = test::ChildProcess::spawn(o);
    if (!daemon) {
      return tl::unexpected(daemon.error());
    }
    const size_t flows = out_["flows"].get<size_t>();
    const auto readStatus = [&]() -> std::optional<DaemonStatus> {
      auto text = readText(status_path);
      if (!text) {
        return std::nullopt;
      }
      auto s = statusFromJson(*text);
      return s ? std::optional<DaemonStatus>(*s) : std::nullopt;
    };
    std::optional<DaemonStatus> status;
    const auto deadline = start + std::chrono::seconds(600);
    while (true) {
      status = readStatus();
      if (status && status->last_sync_reason == "startup" && statusFlows(*status) == flows) {
        break;
      }
      if (!(*daemon)->running() || !watch.waitFor("status.json", deadline)) {
        auto log = readText(o.output_path);
        return makeError("vpcguardd did not report its first sync: " +
                         (log ? *log : std::string()));
      }
    }
    const double startup_ms = msSince(start);
    const pid_t pid = (*daemon)->pid();
    const long rss = bench::procStatusKiB(pid, "VmRSS");
    const long hwm = bench::procStatusKiB(pid, "VmHWM");
    const long vswitchd_after = bench::procStatusKiB(vswitchd, "VmRSS");
    auto n = switchFlowCount(sb, bridge);
    if (!n || *n != flows) {
      return makeError(fmt::format("vpcguardd installed {} flows, expected {}", n ? *n : 0, flows));
    }

    // Replaces the config with `text` and waits until the daemon reports its sync of `want`
    // flows: the end-to-end time is added to `e2e`, the daemon's own sync time to `apply`.
    const auto change = [&](const ConfigFiles& files, size_t want, const std::string& what,
                            Samples* e2e_samples, Samples* apply_samples) -> Result<void> {
      const auto t0 = Clock::now();
      if (auto r = config_dir.write(files); !r) {
        return r;
      }
      const auto change_deadline = t0 + std::chrono::seconds(120);
      for (;;) {
        if (!watch.waitFor("status.json", change_deadline)) {
          auto log = readText(o.output_path);
          return makeError(fmt::format("vpcguardd did not report {}: {}", what, log ? *log : ""));
        }
        status = readStatus();
        if (status && status->last_sync_reason == "config" && status->last_error.empty() &&
            statusFlows(*status) == want) {
          break;
        }
      }
      if (e2e_samples != nullptr) {
        e2e_samples->add(msSince(t0));
        apply_samples->add(status->last_sync_ms);
      }
      return {};
    };
    // The same changes, end to end. The first right after the start-up sync was reported:
    // the daemon is still checking what the flow monitor reports of its own start-up install
    // (every flow of it). Then, once the daemon is idle, the others: its steady state.
    Samples e2e, apply, first_e2e, first_apply;
    double settle_ms = 0;
    for (int i = 0; i < changes_; ++i) {
      progress(tag() + fmt::format(" vpcguardd: change {}/{}", i + 1, changes_));
      const auto k = static_cast<size_t>(i);
      if (auto r = change(change_texts_[k], expected_flows_[k], fmt::format("change {}", i + 1),
                          i == 0 ? &first_e2e : &e2e, i == 0 ? &first_apply : &apply);
          !r) {
        return r;
      }
      if (i == 0) {
        settle_ms = bench::waitUntilIdle(pid, std::chrono::seconds(60));
      }
    }
    const long hwm_end = bench::procStatusKiB(pid, "VmHWM");

    // Part 6, metrics: a scrape, how long the first per-rule hit read takes at this size (a
    // scrape starts it; the series appear with the first scrape after it finished), and the same
    // changes again while a scraper asks every 250 ms (so a hit read is running most of the
    // time): their end-to-end times next to the unscraped ones above (same run, same daemon).
    progress(tag() + " vpcguardd: metrics");
    const auto scrape = [&]() {
      return bench::httpGet(metrics_port, "/metrics", std::chrono::seconds(30));
    };
    const auto hits_start = Clock::now();
    double hits_ms = -1;
    size_t scrape_bytes = 0;
    while (Clock::now() - hits_start < std::chrono::seconds(300)) {
      auto body = scrape();
      if (!body) {
        return tl::unexpected(body.error());
      }
      scrape_bytes = body->size();
      if (body->find("vpcguard_rule_hit_packets_total{") != std::string::npos) {
        hits_ms = msSince(hits_start);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (hits_ms < 0) {
      return makeError("the per-rule hit counters never appeared in /metrics");
    }
    Samples scrape_ms;
    for (int i = 0; i < 20; ++i) {
      const auto t0 = Clock::now();
      if (auto body = scrape(); !body) {
        return tl::unexpected(body.error());
      }
      scrape_ms.add(msSince(t0));
    }
    if (changes_ % 2 == 1) {  // back to the base policy, so the changes apply again
      if (auto r = change(base_, flows, "the return to the base policy", nullptr, nullptr);
          !r) {
        return r;
      }
    }
    std::atomic<bool> scraping{true};
    std::atomic<int> scrapes{0}, scrape_failures{0};
    std::thread scraper([&] {
      while (scraping) {
        (scrape() ? scrapes : scrape_failures)++;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    });
    Samples e2e_scraped, apply_scraped;
    Result<void> scraped_run{};
    for (int i = 0; i < changes_ && scraped_run; ++i) {
      progress(tag() + fmt::format(" vpcguardd: change {}/{} while scraped", i + 1, changes_));
      const auto k = static_cast<size_t>(i);
      scraped_run = change(change_texts_[k], expected_flows_[k],
                           fmt::format("change {} while scraped", i + 1), &e2e_scraped,
                           &apply_scraped);
    }
    scraping = false;
    scraper.join();
    if (!scraped_run) {
      return scraped_run;
    }
    if (scrape_failures > 0) {
      return makeError(fmt::format("{} of {} scrapes failed while the config changed",
                                   scrape_failures.load(), scrapes + scrape_failures));
    }
    const long hwm_scraped = bench::procStatusKiB(pid, "VmHWM");
    (*daemon)->signal(SIGTERM);
    if (!(*daemon)->waitExit(std::chrono::seconds(10))) {
      (*daemon)->kill();
    }

    // The daemon's own split of each config apply, from its log (read once it has
    // exited: it logs a change after writing the status file): translate, and install (the
    // compare + bundle of FlowSync; the rest of last_sync_ms is normalising the desired flows).
    Samples log_translate, log_install;
    if (auto log = readText(o.output_path)) {
      static const std::regex kApplied(
          R"(applied reason=config .*translate_ms=([0-9.]+) install_ms=([0-9.]+))");
      std::istringstream lines(*log);
      std::string l;
      while (std::getline(lines, l)) {
        std::smatch m;
        if (std::regex_search(l, m, kApplied)) {
          log_translate.add(std::stod(m[1]));
          log_install.add(std::stod(m[2]));
        }
      }
    }

    // Part 7: a restart onto the switch that holds the table. The start-up sync is then a full
    // compare (dump 100k flows, normalise the desired ones, diff; nothing to send): the peak of
    // a drift check or a reconnect as well, with the dumped table in memory next to both.
    progress(tag() + " vpcguardd: restart onto the full switch (a full compare)");
    auto held = switchFlowCount(sb, bridge);
    if (!held) {
      return tl::unexpected(held.error());
    }
    o.output_path = sb.dir() + "/vpcguardd-restart.log";
    const auto restart_start = Clock::now();
    auto again = test::ChildProcess::spawn(o);
    if (!again) {
      return tl::unexpected(again.error());
    }
    for (const auto restart_deadline = restart_start + std::chrono::seconds(600);;) {
      status = readStatus();
      if (status && status->last_sync_reason == "startup" && statusFlows(*status) == *held &&
          status->last_sync_ms > 0 && status->pid == (*again)->pid()) {
        break;
      }
      if (!(*again)->running() || !watch.waitFor("status.json", restart_deadline)) {
        auto log = readText(o.output_path);
        return makeError("the restarted vpcguardd did not report its start-up sync: " +
                         (log ? *log : std::string()));
      }
    }
    const double restart_ms = msSince(restart_start);
    const long restart_rss = bench::procStatusKiB((*again)->pid(), "VmRSS");
    const long restart_hwm = bench::procStatusKiB((*again)->pid(), "VmHWM");
    const long vswitchd_held = bench::procStatusKiB(vswitchd, "VmRSS");
    // A start-up sync that sends nothing logs no resync_applied line (only at debug level).
    std::string restart_sync = "nothing sent";
    (*again)->signal(SIGTERM);
    if (!(*again)->waitExit(std::chrono::seconds(10))) {
      (*again)->kill();
    }
    if (auto log = readText(o.output_path)) {
      static const std::regex kResync(R"(resync_applied reason=startup (added=\S+ modified=\S+ deleted=\S+))");
      std::smatch m;
      if (std::regex_search(*log, m, kResync)) {
        restart_sync = m[1];
      }
    }

    const auto mib = [](long kib) { return static_cast<double>(kib) / 1024.0; };
    line("daemon_startup_ms",
         fmt::format("{:.1f} (spawn -> status file reports the startup sync of {} flows)",
                     startup_ms, flows));
    line("daemon_rss_mib",
         fmt::format("VmRSS {:.1f}, VmHWM {:.1f} after startup ({:.0f} bytes/flow RSS); "
                     "VmHWM {:.1f} after the changes",
                     mib(rss), mib(hwm),
                     static_cast<double>(rss) * 1024.0 / static_cast<double>(flows), mib(hwm_end)));
    line("ovs_vswitchd_rss_mib",
         fmt::format("{:.1f} holding the table ({:.1f} before it: +{:.1f}, {:.0f} bytes/flow)",
                     mib(vswitchd_after), mib(vswitchd_before),
                     mib(vswitchd_after - vswitchd_before),
                     static_cast<double>(vswitchd_after - vswitchd_before) * 1024.0 /
                         static_cast<double>(flows)));
    line("daemon_vs_vswitchd_rss_ratio",
         fmt::format("{:.2f}",
                     ratio(static_cast<double>(rss), static_cast<double>(vswitchd_after))));
    line("daemon_vs_vswitchd_vmhwm_ratio",
         fmt::format("{:.2f} (the daemon's peak after its start-up sync / ovs-vswitchd's RSS)",
                     ratio(static_cast<double>(hwm), static_cast<double>(vswitchd_after))));
    line("daemon_restart_full_compare",
         fmt::format("{:.0f} ms to its sync ({}); VmRSS {:.1f}, VmHWM {:.1f} MiB; VmHWM / "
                     "ovs-vswitchd's RSS {:.2f} (restarted onto the switch holding {} flows)",
                     restart_ms, restart_sync, mib(restart_rss), mib(restart_hwm),
                     ratio(static_cast<double>(restart_hwm), static_cast<double>(vswitchd_held)),
                     *held));
    if (changes_ > 0) {
      line("daemon_change_e2e_ms_p50_p99",
           fmt::format("{:.1f} {:.1f} (n={}; rename -> status file, the daemon idle after its "
                       "start; it reads{} at once (--config-settle-ms 0) and parses the changed "
                       "file)",
                       e2e.p50(), e2e.p99(), e2e.v.size(),
                       single_file_ ? " a renamed file" : " a config directory"));
      line("daemon_first_change_after_start_ms",
           fmt::format("{:.1f} (apply {:.1f}; made as soon as the start-up sync was reported, "
                       "while the daemon still checks the flow monitor's report of that install; "
                       "idle {:.0f} ms after it, then the changes above)",
                       first_e2e.p50(), first_apply.p50(), settle_ms));
      std::string each;
      for (double v : e2e.v) {
        each += fmt::format("{}{:.1f}", each.empty() ? "" : " ", v);
      }
      line("  daemon_change_e2e_ms_each", each + " (in order)");
      line("daemon_change_apply_ms_p50_p99",
           fmt::format(
               "{:.1f} {:.1f} (the daemon's own last_sync_ms: translate + diff + bundle, no parse)",
               apply.p50(), apply.p99()));
      line("  daemon_log_ms_p50",
           fmt::format("translate {:.1f}, compare+bundle {:.1f} (n={}; its log's applied lines)",
                       log_translate.p50(), log_install.p50(), log_translate.v.size()));
    }
    line("metrics_hit_read_ms",
         fmt::format("{:.0f} (first scrape -> per-rule hit series in /metrics: one dump of the "
                     "rule tables on the daemon's second OpenFlow connection)",
                     hits_ms));
    line("metrics_scrape_ms_p50_p99",
         fmt::format("{:.2f} {:.2f} ({} bytes; n={})", scrape_ms.p50(), scrape_ms.p99(),
                     scrape_bytes, scrape_ms.v.size()));
    if (changes_ > 0) {
      line("metrics_scraped_change_e2e_ms_p50_p99",
           fmt::format("{:.1f} {:.1f} vs {:.1f} {:.1f} unscraped (ratio p50 {:.2f}; {} scrapes "
                       "every 250 ms meanwhile)",
                       e2e_scraped.p50(), e2e_scraped.p99(), e2e.p50(), e2e.p99(),
                       ratio(e2e_scraped.p50(), e2e.p50()), scrapes.load()));
    }
    line("metrics_vmhwm_mib", fmt::format("{:.1f} after the scraped changes (vs {:.1f} before)",
                                          mib(hwm_scraped), mib(hwm_end)));
    out_["daemon"] = {
        {"startup_ms", startup_ms},
        {"vm_rss_kib", rss},
        {"vm_hwm_kib", hwm},
        {"vm_hwm_after_changes_kib", hwm_end},
        {"rss_bytes_per_flow", static_cast<double>(rss) * 1024.0 / static_cast<double>(flows)},
        {"vswitchd_rss_kib", vswitchd_after},
        {"vswitchd_rss_before_kib", vswitchd_before},
        {"restart_full_compare",
         {{"ms", restart_ms},
          {"sync", restart_sync},
          {"vm_rss_kib", restart_rss},
          {"vm_hwm_kib", restart_hwm},
          {"vswitchd_rss_kib", vswitchd_held}}},
        {"change_e2e_ms", {{"p50", e2e.p50()}, {"p99", e2e.p99()}}},
        {"first_change_after_start_ms", first_e2e.p50()},
        {"idle_after_first_change_ms", settle_ms},
        {"change_apply_ms", {{"p50", apply.p50()}, {"p99", apply.p99()}}},
        {"change_log_translate_ms_p50", log_translate.p50()},
        {"change_log_compare_bundle_ms_p50", log_install.p50()},
        {"metrics",
         {{"hit_read_ms", hits_ms},
          {"scrape_ms", {{"p50", scrape_ms.p50()}, {"p99", scrape_ms.p99()}}},
          {"scrape_bytes", scrape_bytes},
          {"scraped_change_e2e_ms", {{"p50", e2e_scraped.p50()}, {"p99", e2e_scraped.p99()}}},
          {"vm_hwm_after_scraped_changes_kib", hwm_scraped}}}};
    return {};
  }

  size_t target_;
  int changes_;
  bool daemon_;
  Shape shape_;
  std::unique_ptr<WorkDir> work_;
  bool single_file_;
  ConfigFiles base_;
  std::vector<ConfigFiles> change_texts_;
  std::unique_ptr<ConfigDir> config_;  // the in-process part's
  std::vector<size_t> expected_flows_;  // desired flows after each change
  std::string lines_;
  Json out_;
};

}  // namespace

int main(int argc, char** argv) {
  // As vpcguardd: a connection closed under a write (the deadline guard) is an error, not SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"sync_bench: vpcguard keeping OVS in sync at 1k..100k flows, next to ovs-ofctl"};
  std::vector<size_t> sizes = {1000, 10000, 100000};
  int changes = 20;
  bool json = false;
  bool no_daemon = false;
  app.add_option("--sizes", sizes, "Target flow counts")->delimiter(',')->capture_default_str();
  app.add_option("--changes", changes, "Single-rule changes per size (alternately add, remove)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_flag("--json", json, "Print the figures as JSON");
  app.add_flag("--no-daemon", no_daemon, "Skip the vpcguardd process (memory, end-to-end changes)");
  bool single_file = false;
  app.add_flag("--single-file", single_file,
               "The policy as one file (a change then parses all of it), not a config directory "
               "of one file per security group");
  CLI11_PARSE(app, argc, argv);

  Json all = Json::array();
  for (size_t size : sizes) {
    SizeRun run(size, changes, !no_daemon, single_file);
    std::string text;
    auto r = run.run(text);
    if (!r) {
      std::fprintf(stderr, "sync_bench: size %zu: %s\n", size, r.error().message.c_str());
      return 1;
    }
    if (json) {
      all.push_back(*r);
    } else {
      std::printf("== %zu flows ==\n%s", size, text.c_str());
      std::fflush(stdout);
    }
  }
  if (json) {
    std::printf("%s\n", all.dump(2).c_str());
  }
  return 0;
}
