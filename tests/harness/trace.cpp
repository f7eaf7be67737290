#include "tests/harness/trace.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "explain/ofproto_trace.h"

namespace vpcguard::test {
namespace {

bool allDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

}  // namespace

Result<TraceResult> parseTrace(const std::string& raw) {
  // The text is read by explain's parser (what vpcguardctl trace --switch uses); the harness
  // adds the datapath view: which datapath ports the passes' actions output to.
  auto parsed = explain::parseOfprotoTrace(raw);
  if (!parsed) {
    return tl::unexpected(parsed.error());
  }
  TraceResult result;
  result.raw = std::move(parsed->raw);
  result.passes = std::move(parsed->passes);
  result.datapath_actions = std::move(parsed->datapath_actions);
  for (const auto& pass : result.passes) {
    const auto ports = explain::datapathOutputPorts(pass);
    result.output_ports.insert(result.output_ports.end(), ports.begin(), ports.end());
  }
  result.dropped = result.output_ports.empty();
  return result;
}

Result<TraceResult> trace(const OvsSandbox& sandbox, const std::string& bridge,
                          const std::string& flow, const std::vector<std::string>& ct_next) {
  std::string args = "ofproto/trace " + bridge + " " + shellQuote(flow);
  for (const auto& state : ct_next) {
    args += " --ct-next " + shellQuote(state);
  }
  auto out = sandbox.appctl(args);
  if (!out) {
    return tl::unexpected(out.error().withContext("trace " + flow));
  }
  return parseTrace(*out);
}

Result<int> datapathPort(const OvsSandbox& sandbox, const std::string& bridge,
                         const std::string& port) {
  auto out = sandbox.appctl("dpif/show");
  if (!out) {
    return tl::unexpected(out.error());
  }
  // Lines like "    p1 1/2: (dummy)": name, OpenFlow port, datapath port. Parsed by hand:
  // std::regex trips GCC 12's -Wmaybe-uninitialized under the sanitizer build.
  std::istringstream in(*out);
  std::string line;
  bool in_bridge = false;
  while (std::getline(in, line)) {
    if (line.starts_with("  ") && !line.starts_with("    ")) {
      in_bridge = line.find(bridge + ":") != std::string::npos;
      continue;
    }
    if (!in_bridge) {
      continue;
    }
    std::istringstream fields(line);
    std::string name;
    std::string ports;
    fields >> name >> ports;  // "p1", "1/2:"
    const auto slash = ports.find('/');
    const auto colon = ports.find(':');
    if (name == port && slash != std::string::npos && colon != std::string::npos &&
        colon > slash + 1 && allDigits(ports.substr(slash + 1, colon - slash - 1))) {
      return std::stoi(ports.substr(slash + 1, colon - slash - 1));
    }
  }
  return makeError("port " + port + " of " + bridge + " not in dpif/show:\n" + *out);
}

void PrintTo(const TraceResult& trace, std::ostream* os) {
  *os << "TraceResult{actions=\"" << trace.datapath_actions
      << "\", dropped=" << (trace.dropped ? "true" : "false") << "}\n--- trace ---\n"
      << trace.raw << "\n-------------";
}

}  // namespace vpcguard::test
