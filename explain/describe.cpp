#include "explain/describe.h"

#include <fmt/format.h>

#include <algorithm>
#include <type_traits>
#include <variant>

#include "translator/pipeline.h"
#include "translator/validate.h"

namespace vpcguard::explain {

namespace {
std::string icmpPart(int value) { return value < 0 ? "any" : std::to_string(value); }
}  // namespace

std::string describeMatch(int protocol, const std::optional<model::PortRange>& ports,
                          const std::optional<model::IcmpTypeCode>& icmp) {
  std::string text = protocolName(protocol);
  if (protocol == model::kProtoTcp || protocol == model::kProtoUdp) {
    if (!ports || (ports->from == 0 && ports->to == 65535)) {
      text += " (all ports)";
    } else if (ports->from == ports->to) {
      text += fmt::format(" {}", ports->from);
    } else {
      text += fmt::format(" {}-{}", ports->from, ports->to);
    }
  } else if (protocol == model::kProtoIcmp || protocol == model::kProtoIcmpv6) {
    if (icmp && icmp->type >= 0) {
      text += fmt::format(" type {} code {}", icmpPart(icmp->type), icmpPart(icmp->code));
    }
  }
  return text;
}

std::string describePeer(const model::Peer& peer) {
  return std::visit(
      [](const auto& p) -> std::string {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Cidr>) {
          return p.toString();
        } else if constexpr (std::is_same_v<T, model::GroupRef>) {
          return p.group_id;
        } else {
          return p.prefix_list_id;
        }
      },
      peer);
}

std::string sgRuleName(const std::string& group_id, bool egress, size_t position) {
  return fmt::format("{} {} #{}", group_id, egress ? "egress" : "ingress", position + 1);
}

std::string describeSgRule(const std::string& group_id, bool egress, size_t position,
                           const model::SecurityGroupRule& rule) {
  return fmt::format("{}: {} {} {}", sgRuleName(group_id, egress, position),
                     describeMatch(rule.ip_protocol, rule.ports, rule.icmp), egress ? "to" : "from",
                     describePeer(rule.peer));
}

std::string naclEntryName(const std::string& nacl_id, bool egress, int rule_number) {
  if (rule_number == static_cast<int>(pipeline::kNaclStarRule)) {
    return fmt::format("{} {} rule *", nacl_id, egress ? "outbound" : "inbound");
  }
  return fmt::format("{} {} rule {}", nacl_id, egress ? "outbound" : "inbound", rule_number);
}

std::string describeNaclEntry(const std::string& nacl_id, const model::NetworkAclEntry& entry) {
  return fmt::format("{}: {} {} {} {}", naclEntryName(nacl_id, entry.egress, entry.rule_number),
                     entry.allow ? "allow" : "deny",
                     describeMatch(entry.protocol, entry.port_range, entry.icmp_type_code),
                     entry.egress ? "to" : "from", entry.cidr.toString());
}

std::string describeNaclStar(const std::string& nacl_id, bool egress) {
  return fmt::format("{}: deny all",
                     naclEntryName(nacl_id, egress, static_cast<int>(pipeline::kNaclStarRule)));
}

std::vector<const model::NetworkAclEntry*> naclEntriesInOrder(const model::NetworkAcl& nacl,
                                                              bool egress) {
  std::vector<const model::NetworkAclEntry*> entries;
  for (const auto& e : nacl.entries) {
    if (e.egress == egress) {
      entries.push_back(&e);
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) {
    return a->rule_number < b->rule_number;
  });
  return entries;
}

std::string dumpJson(const nlohmann::json& json) {
  return json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}
std::string dumpJson(const nlohmann::ordered_json& json) {
  return json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string formatLocation(const model::SourceLocation& location) {
  if (location.file.empty()) {
    return "";
  }
  return fmt::format("{}:{}:{}", location.file, location.line, location.column);
}

}  // namespace vpcguard::explain
