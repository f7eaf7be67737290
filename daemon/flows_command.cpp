#include "daemon/flows_command.h"

#include <chrono>
#include <ostream>

#include <fmt/format.h>

#include "daemon/config_loader.h"
#include "translator/translate.h"

namespace vpcguard {

Result<Translation> translateDetached(const model::Policy& policy) {
  TranslateInput in;
  in.policy = &policy;
  auto indices = assignInterfaceIndices(policy, {});
  if (!indices) {
    return tl::unexpected(indices.error());
  }
  in.interface_index = *indices;
  int port = 1;
  for (const auto& eni : policy.network_interfaces) {
    in.ofports[eni.id] = port++;
  }
  return translate(in);
}

int runFlowsCommand(const FlowsCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = config::loadPolicyReporting(options.path, err);
  if (!loaded) {
    return loaded.error();
  }
  const auto start = std::chrono::steady_clock::now();
  auto t = translateDetached(*loaded);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!t) {
    err << "vpcguardctl: " << t.error().message << "\n";
    return 1;
  }
  if (options.stats_only) {
    out << fmt::format(
        "flows={} sg_rules={} sg_clause_flows={} sg_flows_without_conjunction={} nacl_flows={} "
        "translate_ms={:.1f}\n",
        t->stats.flows, t->stats.sg_rules, t->stats.sg_clause_flows,
        t->stats.sg_flows_without_conjunction, t->stats.nacl_flows, ms);
    return 0;
  }
  for (const auto& f : t->flows) {
    out << toOfctlText(f) << "\n";
  }
  return 0;
}

}  // namespace vpcguard
