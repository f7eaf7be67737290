#include "explain/ofproto_trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>
#include <string_view>

#include "ovs-plugin/appctl.h"

// Reading ofproto/trace (OVS 3.1, ofproto/ofproto-dpif-trace.c). What the parser relies on:
//  - each pass starts with "Flow: <flow>" and ends with "Final flow: <flow>|unchanged",
//    "Megaflow: ..." and "Datapath actions: <actions>"; passes after a ct(..., table=N) follow,
//    separated by a "=====" banner;
//  - every executed OpenFlow action is a line of its own, indented under the matched flow's
//    "NN. <match>, priority P, cookie C" line (deeper under a resubmit's "NN." line); a clone()
//    is its whole action list on one line ("clone(...,output(port=4,max_len=1464))", which is
//    not an output line) followed by the actions it executed, one per line. Actions are written
//    by ofpacts_format without port names (no --names): "output:3", the truncating
//    "output(port=4,max_len=1464)", and reserved ports by bare name ("LOCAL", "IN_PORT", the
//    latter meaning the in_port of the pass's "Flow:" line, "in_port=1" or "in_port=LOCAL");
//  - registers appear in "Flow:"/"Final flow:" as "reg4=0x6007fff" (omitted when 0); a
//    "Final flow: unchanged" means the pass's "Flow:" line;
//  - an output that did not happen is followed at once by a warning line " >> ..." (e.g.
//    ">> skipping output to input port", ">> Nonexistent output port") or a detail
//    " -> ... skipping output" (e.g. "OFPPC_NO_FWD set, skipping output").

namespace vpcguard::explain {
namespace {


std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(' ');
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = s.find_last_not_of(" \r");
  return s.substr(first, last - first + 1);
}

template <typename T>
std::optional<T> number(std::string_view text, int base = 10) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

// The value of `key` among the comma-separated key=value fields of a flow, if present.
std::optional<std::string_view> flowField(std::string_view flow, std::string_view key) {
  size_t pos = 0;
  while (pos <= flow.size()) {
    const auto comma = std::min(flow.find(',', pos), flow.size());
    const std::string_view field = flow.substr(pos, comma - pos);
    if (field.size() > key.size() && field.starts_with(key) && field[key.size()] == '=') {
      return field.substr(key.size() + 1);
    }
    pos = comma + 1;
  }
  return std::nullopt;
}

// An OpenFlow port as an action or a flow writes it: a number or a reserved name.
std::optional<int> ofport(std::string_view text, std::optional<int> in_port) {
  if (text == "LOCAL") {
    return kLocalOfport;
  }
  if (text == "IN_PORT" || text == "in_port") {
    return in_port;
  }
  return number<int>(text);
}

struct OutputAction {
  int port = 0;
  bool truncated = false;
};

// An executed output action line (trimmed), or nullopt for any other line.
std::optional<OutputAction> outputAction(std::string_view line, std::optional<int> in_port) {
  constexpr std::string_view kPlain = "output:";
  constexpr std::string_view kTrunc = "output(port=";
  std::optional<int> port;
  bool truncated = false;
  if (line.starts_with(kPlain)) {
    port = ofport(line.substr(kPlain.size()), in_port);
  } else if (line.starts_with(kTrunc) && line.ends_with(")")) {
    const std::string_view args = line.substr(kTrunc.size());
    port = ofport(args.substr(0, args.find(',')), in_port);
    truncated = true;
  } else if (line == "LOCAL" || line == "IN_PORT" || line == "in_port") {
    port = ofport(line, in_port);
  }
  if (!port) {
    return std::nullopt;
  }
  return OutputAction{*port, truncated};
}

// Whether the report line right after an output says that the output did not happen.
bool outputSkipped(std::string_view next) {
  return next.starts_with(">>") ||
         (next.starts_with("->") && next.find("skipping output") != std::string_view::npos);
}

// Splits datapath actions at top-level commas: "ct(commit,zone=1),recirc(0x1)" has two.
std::vector<std::string_view> splitActions(std::string_view actions) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < actions.size(); ++i) {
    if (actions[i] == '(') {
      ++depth;
    } else if (actions[i] == ')') {
      --depth;
    } else if (actions[i] == ',' && depth == 0) {
      out.push_back(actions.substr(start, i - start));
      start = i + 1;
    }
  }
  if (start < actions.size()) {
    out.push_back(actions.substr(start));
  }
  return out;
}

std::string portName(const std::string& interface, int port) {
  if (port == kLocalOfport) {
    return interface == "LOCAL" ? interface : interface + " (port LOCAL)";
  }
  return fmt::format("{} (port {})", interface, port);
}

std::string portList(const std::vector<int>& ports) {
  std::string out;
  for (int p : ports) {
    out += out.empty() ? "" : ", ";
    out += p == kLocalOfport ? "LOCAL" : std::to_string(p);
  }
  return out;
}

}  // namespace

Result<OfprotoTrace> parseOfprotoTrace(const std::string& raw) {
  constexpr std::string_view kFlow = "Flow: ";
  constexpr std::string_view kFinal = "Final flow: ";
  constexpr std::string_view kActions = "Datapath actions: ";
  OfprotoTrace trace;
  trace.raw = raw;
  std::vector<std::string> lines;
  {
    std::istringstream in(raw);
    for (std::string line; std::getline(in, line);) {
      lines.push_back(std::move(line));
    }
  }
  std::string pass_flow;  // this pass's "Flow:", what "Final flow: unchanged" stands for
  std::optional<int> in_port;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.starts_with(kFlow)) {
      pass_flow = std::string(line.substr(kFlow.size()));
      const auto port = flowField(pass_flow, "in_port");
      in_port = port ? ofport(*port, std::nullopt) : std::nullopt;
    } else if (line.starts_with(kFinal)) {
      std::string_view final_flow = line.substr(kFinal.size());
      if (final_flow == "unchanged") {
        final_flow = pass_flow;
      }
      if (const auto reg4 = flowField(final_flow, "reg4"); reg4 && reg4->starts_with("0x")) {
        if (const auto value = number<uint32_t>(reg4->substr(2), 16)) {
          trace.reg4 = *value;
        }
      }
    } else if (line.starts_with(kActions)) {
      trace.passes.emplace_back(line.substr(kActions.size()));
    } else if (const auto out = outputAction(trim(line), in_port)) {
      const std::string_view next = i + 1 < lines.size() ? trim(lines[i + 1]) : "";
      if (!outputSkipped(next)) {
        trace.output_ofports.push_back(out->port);
        if (out->truncated) {
          trace.truncated_ofports.push_back(out->port);
        }
      }
    }
  }
  if (trace.passes.empty()) {
    return makeError("ofproto/trace output has no \"Datapath actions:\" line:\n" + raw);
  }
  trace.datapath_actions = trace.passes.back();
  return trace;
}

std::vector<int> datapathOutputPorts(const std::string& datapath_actions) {
  std::vector<int> ports;
  for (const auto action : splitActions(datapath_actions)) {
    if (const auto port = number<int>(action)) {
      ports.push_back(*port);
    }
  }
  return ports;
}

Result<std::vector<std::string>> ofprotoTraceArgs(const std::string& bridge,
                                                  const SwitchProbe& probe,
                                                  const std::map<std::string, int>& ofports) {
  std::string in_port;
  if (probe.in_interface == "LOCAL") {
    in_port = "LOCAL";
  } else if (const auto it = ofports.find(probe.in_interface); it != ofports.end()) {
    in_port = std::to_string(it->second);
  } else {
    return makeError("interface " + probe.in_interface + " has no port on bridge " + bridge);
  }
  std::vector<std::string> args = {bridge, "in_port=" + in_port};
  if (!probe.flow.empty()) {
    args.back() += "," + probe.flow;
  }
  for (const auto& state : probe.ct_next) {
    args.emplace_back("--ct-next");
    args.push_back(state);
  }
  return args;
}

SwitchComparison compare(const SwitchProbe& probe, const OfprotoTrace& trace, int out_ofport) {
  // Deliveries: every output but the mirror copies (the truncated ones).
  std::vector<int> delivered = trace.output_ofports;
  for (int copy : trace.truncated_ofports) {
    if (const auto it = std::find(delivered.begin(), delivered.end(), copy);
        it != delivered.end()) {
      delivered.erase(it);
    }
  }
  SwitchComparison result;
  if (delivered.empty()) {
    result.switch_reg4 = trace.reg4;
  }
  const std::string dropped = fmt::format("dropped (reg4={:#x})", trace.reg4);
  if (probe.delivered) {
    result.delivered =
        std::find(delivered.begin(), delivered.end(), out_ofport) != delivered.end();
    result.agree = result.delivered;
    const std::string expected = portName(probe.out_interface, out_ofport);
    if (result.agree) {
      result.explanation = "switch agrees: delivered to " + expected;
    } else if (delivered.empty()) {
      result.explanation = fmt::format("switch disagrees: expected delivery to {}, switch {}",
                                       expected, dropped);
    } else {
      result.explanation = fmt::format(
          "switch disagrees: expected delivery to {}, switch output to port(s) {}", expected,
          portList(delivered));
    }
    return result;
  }
  result.delivered = !delivered.empty();
  const bool verdict_ok = probe.drop_verdict == 0 || trace.reg4 == probe.drop_verdict;
  result.agree = !result.delivered && verdict_ok;
  const std::string expected = probe.drop_verdict == 0
                                   ? std::string("a drop")
                                   : fmt::format("a drop with reg4={:#x}", probe.drop_verdict);
  if (result.agree) {
    result.explanation = "switch agrees: " + dropped;
  } else if (result.delivered) {
    result.explanation = fmt::format("switch disagrees: expected {}, switch output to port(s) {}",
                                     expected, portList(delivered));
  } else {
    result.explanation = fmt::format("switch disagrees: expected {}, switch {}", expected, dropped);
  }
  return result;
}

Result<OfprotoTrace> runOfprotoTrace(const std::string& vswitchd_socket,
                                     const std::vector<std::string>& args,
                                     std::chrono::milliseconds timeout) {
  auto out = ovs::appctl(vswitchd_socket, "ofproto/trace", args, timeout);
  if (!out) {
    return tl::unexpected(out.error());  // appctl's error already names the command
  }
  return parseOfprotoTrace(*out);
}

}  // namespace vpcguard::explain
