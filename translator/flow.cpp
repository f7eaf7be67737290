#include "translator/flow.h"

#include <fmt/format.h>

namespace vpcguard {

std::string toOfctlText(const Flow& flow) {
  std::string text = fmt::format("table={},priority={},cookie={:#x}", flow.table, flow.priority,
                                 flow.cookie);
  if (!flow.match.empty()) {
    text += ',';
    text += flow.match;
  }
  text += ",actions=";
  text += flow.actions.empty() ? "drop" : flow.actions;
  return text;
}

}  // namespace vpcguard
