#pragma once
// An OpenFlow flow as the translator produces it and ovs-plugin installs it. Match and actions
// are ovs-ofctl syntax: readable in golden files and in `ovs-ofctl dump-flows`, parsed by OVS's
// own parser in ovs-plugin.

#include <compare>
#include <cstdint>
#include <string>

namespace vpcguard {

struct Flow {
  uint8_t table = 0;
  uint16_t priority = 0;
  uint64_t cookie = 0;
  std::string match;    // e.g. "ip,in_port=3,nw_src=10.0.1.10"; empty = match everything
  std::string actions;  // e.g. "ct(zone=5,table=20)"; "drop" for none

  // Flows are identified in a table by (table, priority, match), as OpenFlow does.
  auto operator<=>(const Flow&) const = default;
  bool operator==(const Flow&) const = default;
};

// "table=T,priority=P,cookie=0xC,<match>,actions=A": the text ovs-ofctl and ovs-plugin parse.
[[nodiscard]] std::string toOfctlText(const Flow& flow);

}  // namespace vpcguard
