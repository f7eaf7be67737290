// policy_bench: how fast vpcguard realises a policy on a real (sandboxed) Open vSwitch, next to
// the raw switch doing the same work in the same run.
//
//   policy_bench --config FILE [--changes N] [--json]
//
// Measures, for the policy in FILE with every interface attached as a port:
//  - translate: model -> flows (ms) and the flow count, with and without conjunctions;
//  - install: the whole policy through FlowSync (one atomic bundle, confirmed by a barrier)
//    versus `ovs-ofctl --bundle add-flows` of the very same flows on a second bridge (ratio);
//  - +1 rule: add one SG ingress rule, translate, send the difference, barrier (p50/p99);
//  - membership: an interface joins a referenced group and leaves again (p50/p99);
//  - RSS of this process after all of it (an upper bound for the daemon's, which holds the same
//    desired and installed tables).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "daemon/flow_sync.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/process.h"
#include "translator/translate.h"

namespace {

using namespace vpcguard;
using bench::Clock;
using bench::msSince;
using bench::percentile;

int fail(const std::string& what) {
  std::fprintf(stderr, "policy_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"policy_bench: vpcguard policy install and change latency on a sandboxed OVS"};
  std::string config;
  int changes = 20;
  app.add_option("--config", config, "Policy file or directory")->required();
  app.add_option("--changes", changes, "Samples for the +1 rule and membership tests")
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
  // Every interface attached, with fixed OpenFlow port numbers.
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
  bench::writeFlowsFile(file, translation->flows);
  auto o0 = Clock::now();
  if (auto r = sb.ofctl("--bundle add-flows " + sb.bridgeTarget("br1") + " " + file); !r) {
    return fail(r.error().message);
  }
  const double ofctl_ms = msSince(o0);

  // One change, as the daemon makes it: translate, send the difference, barrier (the flows are
  // in effect in the switch when it returns).
  // A change that alters no flow measures nothing: it is an error.
  const auto timedChange = [&]() -> Result<double> {
    auto c0 = Clock::now();
    auto t = translate(in);
    if (!t) {
      return tl::unexpected(t.error());
    }
    auto rep = sync.applyDesired(t->flows);
    if (!rep) {
      return tl::unexpected(rep.error());
    }
    if (auto b = (*channel)->barrier(); !b) {
      return tl::unexpected(b.error());
    }
    const double ms = msSince(c0);
    if (rep->changes() == 0) {
      return makeError("the change altered no flow");
    }
    return ms;
  };

  // +1 rule, then -1 rule: config change to flows confirmed in the switch.
  std::vector<double> rule_ms;
  // The last group with a member: a rule of a group nobody uses (the implicit default group,
  // last after defaults) changes no flow. Appended at the end, so no other rule's id moves.
  model::SecurityGroup* group = nullptr;
  for (auto& g : policy->security_groups) {
    for (const auto& eni : policy->network_interfaces) {
      if (std::find(eni.security_group_ids.begin(), eni.security_group_ids.end(), g.id) !=
          eni.security_group_ids.end()) {
        group = &g;
      }
    }
  }
  if (group == nullptr) {
    return fail("no security group has a member: a rule change would change no flow");
  }
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
        return fail(ms.error().message);
      }
      if (add) {
        rule_ms.push_back(*ms);
      }
    }
  }

  // Membership: an interface joins the group another group references, and leaves.
  std::vector<double> member_ms;
  auto& eni = policy->network_interfaces.front();
  std::string referenced;
  for (const auto& g : policy->security_groups) {
    for (const auto& r : g.ingress) {
      if (const auto* ref = std::get_if<model::GroupRef>(&r.peer)) {
        if (std::find(eni.security_group_ids.begin(), eni.security_group_ids.end(), ref->group_id) ==
            eni.security_group_ids.end()) {
          referenced = ref->group_id;
        }
      }
    }
  }
  for (int i = 0; i < changes && !referenced.empty(); ++i) {
    for (bool join : {true, false}) {
      if (join) {
        eni.security_group_ids.push_back(referenced);
      } else {
        eni.security_group_ids.pop_back();
      }
      auto ms = timedChange();
      if (!ms) {
        return fail(ms.error().message);
      }
      if (join) {
        member_ms.push_back(*ms);
      }
    }
  }

  const auto& st = translation->stats;
  std::printf("config                      %s\n", config.c_str());
  std::printf("interfaces / groups / rules %zu / %zu / %zu\n", policy->network_interfaces.size(),
              policy->security_groups.size(), st.sg_rules);
  std::printf("flows                       %zu (SG clause flows %zu; SG flows without conjunctions %llu; ratio %.3f)\n",
              st.flows, st.sg_clause_flows, static_cast<unsigned long long>(st.sg_flows_without_conjunction),
              st.sg_flows_without_conjunction > 0
                  ? static_cast<double>(st.sg_clause_flows + st.sg_rules) /
                        static_cast<double>(st.sg_flows_without_conjunction)
                  : 0.0);
  std::printf("translate_ms                %.1f\n", translate_ms);
  std::printf("install_ms                  %.1f (vpcguard bundle + barrier)\n", install_ms);
  std::printf("ofctl_bundle_add_ms         %.1f (ovs-ofctl --bundle add-flows, same flows)\n", ofctl_ms);
  std::printf("install_vs_ofctl_ratio      %.2f\n", install_ms / ofctl_ms);
  std::printf("whole_policy_ms             %.1f (translate + install + barrier)\n", whole_ms);
  std::printf("add_rule_ms_p50_p99         %.2f %.2f (n=%zu)\n", percentile(rule_ms, 0.5),
              percentile(rule_ms, 0.99), rule_ms.size());
  std::printf("membership_ms_p50_p99       %.2f %.2f (n=%zu%s)\n", percentile(member_ms, 0.5),
              percentile(member_ms, 0.99), member_ms.size(),
              referenced.empty() ? ", no referenced group in this policy" : "");
  std::printf("rss_mib                     %.1f\n", static_cast<double>(bench::procStatusKiB(0, "VmRSS")) / 1024.0);
  return 0;
}
