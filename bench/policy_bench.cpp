// policy_bench: how fast vpcguard realises a policy on a real (sandboxed) Open vSwitch, next to
// the raw switch doing the same work in the same run.
//
//   policy_bench --config FILE [--changes N] [--mode both|full|incremental]
//
// Measures, for the policy in FILE with every interface attached as a port:
//  - translate: model -> flows (ms) and the flow count, with and without conjunctions;
//  - install: the whole policy through FlowSync (one atomic bundle, confirmed by a barrier)
//    versus `ovs-ofctl --bundle add-flows` of the very same flows on a second bridge (ratio);
//  - +1 rule: add one SG ingress rule, translate, send the difference, barrier (p50/p99);
//  - membership: an interface joins a referenced group and leaves again (p50/p99);
//    each change two ways ("--mode both", the default): "full" = translate() of the whole policy
//  and FlowSync::applyDesired (normalise and diff the whole table), as vpcguardd did before
//  issue 5; "incremental" = PolicyEngine::apply (what vpcguardd does now: recompute the
//  changed units, normalise and send only the delta). Each with its split: translate,
//  normalise+diff, bundle (to the switch's reply), barrier;
//  - RSS of this process after all of it (an upper bound for the daemon's, which holds the same
//    desired and installed tables).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "daemon/flow_sync.h"
#include "daemon/policy_engine.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/process.h"
#include "translator/translate.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace vpcguard;

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

long rssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

// One change's cost, split by stage (ms).
struct Split {
  double total = 0;
  double translate = 0;
  double diff = 0;  // normalise + diff (+ building the bundle)
  double bundle = 0;
  double barrier = 0;
};

struct Samples {
  std::vector<Split> v;
  [[nodiscard]] std::string summary() const {
    const auto p = [&](double Split::*field, double q) {
      std::vector<double> x;
      for (const auto& s : v) {
        x.push_back(s.*field);
      }
      return percentile(x, q);
    };
    return fmt::format(
        "{:.2f} {:.2f} (n={}; p50 split: translate {:.2f}, normalise+diff {:.2f}, bundle {:.2f}, "
        "barrier {:.2f})",
        p(&Split::total, 0.5), p(&Split::total, 0.99), v.size(), p(&Split::translate, 0.5),
        p(&Split::diff, 0.5), p(&Split::bundle, 0.5), p(&Split::barrier, 0.5));
  }
};

int fail(const std::string& what) {
  std::fprintf(stderr, "policy_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // As vpcguardd: a connection closed under a write (the deadline guard) is an error, not SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"policy_bench: vpcguard policy install and change latency on a sandboxed OVS"};
  std::string config;
  int changes = 20;
  std::string mode = "both";
  app.add_option("--config", config, "Policy file or directory")->required();
  app.add_option("--changes", changes, "Samples for the +1 rule and membership tests")
      ->capture_default_str();
  app.add_option("--mode", mode, "How changes are applied: full, incremental or both")
      ->check(CLI::IsMember({"both", "full", "incremental"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto policy = config::loadPolicy(config);
  if (!policy) {
    return fail("config: " + policy.error().toError().message);
  }
  std::fprintf(stderr, "policy_bench: %zu interfaces, %zu groups; starting a sandbox\n",
               policy->network_interfaces.size(), policy->security_groups.size());
  auto sandbox = test::OvsSandbox::start();
  if (!sandbox) {
    return fail(sandbox.error().message);
  }
  auto& sb = **sandbox;
  for (const char* br : {"br0", "br1"}) {
    if (auto r = sb.addBridge(br); !r) {
      return fail(r.error().message);
    }
  }
  // Fixed OpenFlow port numbers, in batches (one ovs-vsctl argument is limited to 128 KiB: a
  // single transaction failed at large.toml's 1,950 interfaces).
  TranslateInput in;
  auto ofports = bench::attachInterfaces(sb, "br0", *policy, "p");
  if (!ofports) {
    return fail(ofports.error().message);
  }
  in.ofports = std::move(*ofports);
  in.policy = &*policy;
  in.interface_index = *assignInterfaceIndices(*policy, {});

  auto channel = ovs::connectOpenFlow(sb.bridgeTarget("br0"));
  if (!channel) {
    return fail(channel.error().message);
  }
  FlowSync sync(**channel);

  // Whole policy.
  auto t0 = Clock::now();
  auto translation = translate(in);
  if (!translation) {
    return fail(translation.error().message);
  }
  const double translate_ms = msSince(t0);
  auto install_start = Clock::now();
  auto report = sync.syncFull(translation->flows);
  if (!report) {
    return fail(report.error().message);
  }
  if (auto b = (*channel)->barrier(); !b) {
    return fail(b.error().message);
  }
  const double install_ms = msSince(install_start);
  const double whole_ms = msSince(t0);

  // The raw switch on the same flows: ovs-ofctl --bundle add-flows on an empty bridge.
  const std::string file = sb.dir() + "/flows.txt";
  {
    std::ofstream out(file);
    for (const auto& f : translation->flows) {
      out << toOfctlText(f) << "\n";
    }
  }
  auto o0 = Clock::now();
  if (auto r = sb.ofctl("--bundle add-flows " + sb.bridgeTarget("br1") + " " + file); !r) {
    return fail(r.error().message);
  }
  const double ofctl_ms = msSince(o0);

  // One change, as the daemon makes it: translate, send the difference, barrier (the flows are
  // in effect in the switch when it returns). "full" is the whole-table path, "incremental" the
  // PolicyEngine that vpcguardd uses.
  PolicyEngine engine;
  PolicyEngine::Input engine_input;
  engine_input.policy = &*policy;
  engine_input.ofports = &in.ofports;
  engine_input.interface_index = &in.interface_index;
  engine_input.generation = in.generation;
  bool incremental = false;
  const auto timedChange = [&]() -> Result<Split> {
    Split split;
    auto c0 = Clock::now();
    if (incremental) {
      auto r = engine.apply(engine_input);
      if (!r) {
        return tl::unexpected(r.error().error);
      }
      split.translate = r->translate_ms;
      split.bundle = r->bundle_ms;
      split.diff = r->sync_ms - r->bundle_ms;
    } else {
      auto t = translate(in);
      if (!t) {
        return tl::unexpected(t.error());
      }
      split.translate = msSince(c0);
      auto s0 = Clock::now();
      auto rep = sync.applyDesired(t->flows);
      if (!rep) {
        return tl::unexpected(rep.error());
      }
      split.bundle = std::chrono::duration<double, std::milli>(rep->bundle_duration).count();
      split.diff = msSince(s0) - split.bundle;
    }
    auto b0 = Clock::now();
    if (auto b = (*channel)->barrier(); !b) {
      return tl::unexpected(b.error());
    }
    split.barrier = msSince(b0);
    split.total = msSince(c0);
    return split;
  };

  // +1 rule, then -1 rule: config change to flows confirmed in the switch. The rule goes to
  // the last group that has members (a group without any, such as the VPC's default group when
  // every interface names its own, would make the change a no-op).
  auto* group = &policy->security_groups.back();
  for (auto& g : policy->security_groups) {
    for (const auto& e : policy->network_interfaces) {
      if (std::find(e.security_group_ids.begin(), e.security_group_ids.end(), g.id) !=
          e.security_group_ids.end()) {
        group = &g;
        break;
      }
    }
  }
  const auto ruleChanges = [&]() -> Result<Samples> {
    Samples out;
    for (int i = 0; i < changes; ++i) {
      model::SecurityGroupRule r;
      r.ip_protocol = model::kProtoTcp;
      r.ports = model::PortRange{20000 + i, 20000 + i};
      r.peer = *Cidr::parse(fmt::format("10.99.{}.0/24", i % 250));
      for (bool add : {true, false}) {
        if (add) {
          group->ingress.push_back(r);
        } else {
          group->ingress.pop_back();
        }
        auto ms = timedChange();
        if (!ms) {
          return tl::unexpected(ms.error());
        }
        if (add) {
          out.v.push_back(*ms);
        }
      }
    }
    return out;
  };

  // Membership: an interface joins the group another group references, and leaves.
  auto& eni = policy->network_interfaces.front();
  std::string referenced;
  for (const auto& g : policy->security_groups) {
    for (const auto& r : g.ingress) {
      if (const auto* ref = std::get_if<model::GroupRef>(&r.peer)) {
        if (std::find(eni.security_group_ids.begin(), eni.security_group_ids.end(),
                      ref->group_id) == eni.security_group_ids.end()) {
          referenced = ref->group_id;
        }
      }
    }
  }
  const auto memberChanges = [&]() -> Result<Samples> {
    Samples out;
    for (int i = 0; i < changes && !referenced.empty(); ++i) {
      for (bool join : {true, false}) {
        if (join) {
          eni.security_group_ids.push_back(referenced);
        } else {
          eni.security_group_ids.pop_back();
        }
        auto ms = timedChange();
        if (!ms) {
          return tl::unexpected(ms.error());
        }
        if (join) {
          out.v.push_back(*ms);
        }
      }
    }
    return out;
  };

  std::map<std::string, std::pair<Samples, Samples>> results;  // mode -> (rule, membership)
  double engine_start_ms = 0;
  for (const char* m : {"full", "incremental"}) {
    if (mode != "both" && mode != m) {
      continue;
    }
    incremental = std::string(m) == "incremental";
    if (incremental) {
      // The daemon's start: a full comparison with what the switch holds.
      auto e0 = Clock::now();
      engine.attach(channel->get());
      if (auto r = engine.resync(engine_input); !r) {
        return fail(r.error().error.message);
      }
      engine_start_ms = msSince(e0);
    }
    auto rules = ruleChanges();
    if (!rules) {
      return fail(rules.error().message);
    }
    auto members = memberChanges();
    if (!members) {
      return fail(members.error().message);
    }
    results[m] = {std::move(*rules), std::move(*members)};
  }

  const auto& st = translation->stats;
  std::printf("config                      %s\n", config.c_str());
  std::printf("interfaces / groups / rules %zu / %zu / %zu\n", policy->network_interfaces.size(),
              policy->security_groups.size(), st.sg_rules);
  std::printf(
      "flows                       %zu (SG clause flows %zu; SG flows without conjunctions %llu; "
      "ratio %.3f)\n",
      st.flows, st.sg_clause_flows,
      static_cast<unsigned long long>(st.sg_flows_without_conjunction),
      st.sg_flows_without_conjunction > 0 ? static_cast<double>(st.sg_clause_flows + st.sg_rules) /
                                                static_cast<double>(st.sg_flows_without_conjunction)
                                          : 0.0);
  std::printf("translate_ms                %.1f\n", translate_ms);
  std::printf("install_ms                  %.1f (vpcguard bundle + barrier)\n", install_ms);
  std::printf("ofctl_bundle_add_ms         %.1f (ovs-ofctl --bundle add-flows, same flows)\n",
              ofctl_ms);
  std::printf("install_vs_ofctl_ratio      %.2f\n", install_ms / ofctl_ms);
  std::printf("whole_policy_ms             %.1f (translate + install + barrier)\n", whole_ms);
  // The daemon's path keeps the plain labels (bench/vs_ovn.sh reads them); the whole-table
  // path gets "_full".
  for (const auto& [m, r] : results) {
    const std::string suffix = m == "full" ? "_full" : "";
    std::printf("%-27s %s\n", ("add_rule_ms_p50_p99" + suffix).c_str(), r.first.summary().c_str());
    std::printf("%-27s %s%s\n", ("membership_ms_p50_p99" + suffix).c_str(),
                r.second.summary().c_str(),
                referenced.empty() ? " (no referenced group in this policy)" : "");
  }
  if (results.count("incremental") != 0) {
    std::printf(
        "engine_start_ms             %.1f (incremental engine: first translate + syncFull)\n",
        engine_start_ms);
  }
  std::printf("rss_mib                     %.1f\n", static_cast<double>(rssKiB()) / 1024.0);
  return 0;
}
