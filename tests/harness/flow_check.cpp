#include "tests/harness/flow_check.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "ovs-plugin/openflow.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::test {

const std::vector<uint8_t>& pipelineTables() {
  static const std::vector<uint8_t> tables(std::begin(pipeline::kOwnedTables),
                                           std::end(pipeline::kOwnedTables));
  return tables;
}

namespace {

// Which start of vpcguardd wrote a flow does not make it right or wrong: a restart adopts flows
// of earlier generations. Compared without the generation bits.
Flow withoutGeneration(Flow f) {
  if ((f.cookie & pipeline::kCookieMagicMask) == pipeline::kCookieMagic) {
    f.cookie &= ~pipeline::kCookieGenerationMask;
  }
  return f;
}

}  // namespace

Result<std::map<std::string, int>> bridgeOfports(const OvsSandbox& sandbox,
                                                 const std::string& bridge) {
  auto names = sandbox.vsctl("list-ifaces " + bridge);
  if (!names) {
    return tl::unexpected(names.error());
  }
  std::vector<std::string> on_bridge;
  for (size_t pos = 0; pos < names->size();) {
    const size_t end = names->find('\n', pos);
    std::string name = names->substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (!name.empty()) {
      on_bridge.push_back(std::move(name));
    }
    pos = end == std::string::npos ? names->size() : end + 1;
  }
  auto listed = sandbox.vsctl("--format=json --columns=name,ofport,external_ids list Interface");
  if (!listed) {
    return tl::unexpected(listed.error());
  }
  std::map<std::string, int> out;
  try {
    const auto j = nlohmann::json::parse(*listed);
    for (const auto& row : j.at("data")) {
      const std::string name = row.at(0).get<std::string>();
      if (std::find(on_bridge.begin(), on_bridge.end(), name) == on_bridge.end()) {
        continue;
      }
      // ofport: an integer, or ["set", []] before ovs-vswitchd assigns one.
      if (!row.at(1).is_number_integer()) {
        continue;
      }
      const int ofport = row.at(1).get<int>();
      std::string iface_id;
      for (const auto& kv : row.at(2).at(1)) {  // ["map", [[k, v], ...]]
        if (kv.at(0) == "iface-id") {
          iface_id = kv.at(1).get<std::string>();
        }
        // The mirror tunnel reaches the translator under its own key, as in vpcguardd.
        if (kv.at(0) == "vpcguard-role" && kv.at(1) == pipeline::kMirrorTunnelRole &&
            iface_id.empty()) {
          iface_id = pipeline::kMirrorTunnelKey;
        }
      }
      if (iface_id.empty() || ofport <= 0) {
        continue;
      }
      auto [it, inserted] = out.emplace(iface_id, ofport);
      if (!inserted) {
        it->second = std::min(it->second, ofport);
      }
    }
  } catch (const std::exception& e) {
    return makeError(std::string("ovs-vsctl list Interface: unexpected JSON: ") + e.what());
  }
  return out;
}

Result<std::vector<Flow>> desiredFlows(const model::Policy& policy,
                                       const std::map<std::string, int>& ofports,
                                       const std::map<std::string, uint16_t>& indices) {
  TranslateInput in;
  in.policy = &policy;
  in.ofports = ofports;
  in.interface_index = indices;
  in.generation = 1;  // any: compared without the generation
  auto t = translate(in);
  if (!t) {
    return tl::unexpected(t.error().withContext("translate"));
  }
  std::vector<Flow> out;
  out.reserve(t->flows.size());
  for (const auto& f : t->flows) {
    auto n = ovs::normalizeFlow(f);
    if (!n) {
      return tl::unexpected(n.error().withContext("normalize " + toOfctlText(f)));
    }
    out.push_back(withoutGeneration(std::move(*n)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<Flow>> installedFlows(const OvsSandbox& sandbox, const std::string& bridge) {
  // A fresh connection each time: callers poll across ovs-vswitchd restarts, and an idle
  // connection would have to answer echo probes.
  auto channel = ovs::connectOpenFlow(sandbox.bridgeTarget(bridge));
  if (!channel) {
    return tl::unexpected(channel.error());
  }
  auto dumped = (*channel)->dumpFlows(ovs::DumpFilter{});
  if (!dumped) {
    return tl::unexpected(dumped.error());
  }
  const auto& ours = pipelineTables();
  std::vector<Flow> out;
  for (auto& f : *dumped) {
    const bool magic = (f.flow.cookie & pipeline::kCookieMagicMask) == pipeline::kCookieMagic;
    if (magic || std::find(ours.begin(), ours.end(), f.flow.table) != ours.end()) {
      out.push_back(withoutGeneration(std::move(f.flow)));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string flowDiff(const std::vector<Flow>& desired, const std::vector<Flow>& installed,
                     size_t max_lines) {
  std::vector<Flow> missing;
  std::vector<Flow> unexpected;
  std::set_difference(desired.begin(), desired.end(), installed.begin(), installed.end(),
                      std::back_inserter(missing));
  std::set_difference(installed.begin(), installed.end(), desired.begin(), desired.end(),
                      std::back_inserter(unexpected));
  if (missing.empty() && unexpected.empty()) {
    return {};
  }
  std::string out = "desired " + std::to_string(desired.size()) + " flows, installed " +
                    std::to_string(installed.size()) + "\n";
  const auto list = [&](const char* what, const std::vector<Flow>& flows) {
    if (flows.empty()) {
      return;
    }
    out += std::string(what) + " (" + std::to_string(flows.size()) + "):\n";
    for (size_t i = 0; i < flows.size() && i < max_lines; ++i) {
      out += "  " + toOfctlText(flows[i]) + "\n";
    }
    if (flows.size() > max_lines) {
      out += "  ...\n";
    }
  };
  list("missing on the switch", missing);
  list("on the switch but not desired", unexpected);
  return out;
}

::testing::AssertionResult switchEqualsDesired(const OvsSandbox& sandbox, const std::string& bridge,
                                               const model::Policy& policy,
                                               const std::map<std::string, uint16_t>& indices) {
  auto ofports = bridgeOfports(sandbox, bridge);
  if (!ofports) {
    return ::testing::AssertionFailure() << ofports.error().message;
  }
  auto desired = desiredFlows(policy, *ofports, indices);
  if (!desired) {
    return ::testing::AssertionFailure() << desired.error().message;
  }
  auto installed = installedFlows(sandbox, bridge);
  if (!installed) {
    return ::testing::AssertionFailure() << installed.error().message;
  }
  const std::string diff = flowDiff(*desired, *installed);
  if (!diff.empty()) {
    return ::testing::AssertionFailure() << "the flow table differs from the desired one ("
                                         << ofports->size() << " interfaces attached): " << diff;
  }
  return ::testing::AssertionSuccess() << desired->size() << " flows as desired";
}

}  // namespace vpcguard::test
