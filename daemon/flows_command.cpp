#include "daemon/flows_command.h"

#include <chrono>
#include <ostream>

#include <fmt/format.h>

#include "daemon/config_loader.h"
#include "translator/translate.h"

namespace vpcguard {

int runFlowsCommand(const FlowsCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = config::loadPolicy(options.path);
  if (!loaded) {
    if (loaded.error().io) {
      err << "vpcguardctl: " << loaded.error().io->message << "\n";
      return 2;
    }
    for (const auto& d : loaded.error().diagnostics) {
      err << formatDiagnostic(d) << "\n";
    }
    return 1;
  }
  TranslateInput in;
  in.policy = &*loaded;
  auto indices = assignInterfaceIndices(*loaded, {});
  if (!indices) {
    err << "vpcguardctl: " << indices.error().message << "\n";
    return 1;
  }
  in.interface_index = *indices;
  int port = 1;
  for (const auto& eni : loaded->network_interfaces) {
    in.ofports[eni.id] = port++;
  }
  const auto start = std::chrono::steady_clock::now();
  auto t = translate(in);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!t) {
    err << "vpcguardctl: translate: " << t.error().message << "\n";
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
