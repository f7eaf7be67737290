#include "explain/hits.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <tuple>

#include "explain/describe.h"
#include "metrics/registry.h"
#include "translator/pipeline.h"

// Design: one pass over the dump sums every flow of ours into a bucket keyed by what the cookie
// and the table say about it (an SG rule's conjunction id, or a NACL, direction and priority);
// a second pass walks the policy in config order and picks each rule's bucket. Flows that name
// nothing of the policy (infrastructure, clauses, other generations' leftovers of removed
// rules) fall into buckets nobody asks for. The generation bits are ignored: a flow adopted from
// an earlier start counts as much as a new one.

namespace vpcguard::explain {
namespace {

using pipeline::CookieKind;

struct Sum {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  size_t flows = 0;
  uint32_t youngest = std::numeric_limits<uint32_t>::max();

  void add(const FlowStats& f) {
    packets += f.n_packets;
    bytes += f.n_bytes;
    ++flows;
    youngest = std::min(youngest, f.duration_sec);
  }
};

struct DecodedCookie {
  CookieKind kind;
  uint32_t index;
};

// The kind and index of one of our cookies; nullopt for anyone else's flow.
std::optional<DecodedCookie> decodeCookie(uint64_t cookie) {
  if ((cookie & pipeline::kCookieMagicMask) != pipeline::kCookieMagic) {
    return std::nullopt;
  }
  return DecodedCookie{static_cast<CookieKind>((cookie >> 24) & 0xff),
                       static_cast<uint32_t>(cookie & 0xffffff)};
}

// (NACL index, outbound, priority) and (conjunction id, egress).
using NaclKey = std::tuple<uint32_t, bool, uint16_t>;
using SgKey = std::tuple<uint32_t, bool>;

struct Sums {
  std::map<NaclKey, Sum> nacl;
  std::map<SgKey, Sum> sg;
};

Sums sumFlows(const std::vector<FlowStats>& flows) {
  Sums sums;
  for (const auto& f : flows) {
    const auto cookie = decodeCookie(f.flow.cookie);
    if (!cookie) {
      continue;
    }
    const uint8_t table = f.flow.table;
    if (cookie->kind == CookieKind::kNacl &&
        (table == pipeline::kNaclOut || table == pipeline::kNaclIn)) {
      sums.nacl[{cookie->index, table == pipeline::kNaclOut, f.flow.priority}].add(f);
    } else if (cookie->kind == CookieKind::kSgRule &&
               (table == pipeline::kSgEgressEval || table == pipeline::kSgIngressEval)) {
      // Only the evaluation tables: the rule's conj_id flows in the dispatch tables (31/51)
      // count the later packets of connections it committed, which are conntrack's hits.
      sums.sg[{cookie->index, table == pipeline::kSgEgressEval}].add(f);
    }
  }
  return sums;
}

// "sg-web ingress #0" (Translation::rule_names; n is the 0-based position) -> its parts.
struct RuleNameParts {
  std::string group_id;
  bool egress = false;
  size_t position = 0;
};
std::optional<RuleNameParts> parseRuleName(std::string_view name) {
  const auto hash = name.rfind(" #");
  if (hash == std::string_view::npos) {
    return std::nullopt;
  }
  const auto space = name.rfind(' ', hash - 1);
  if (space == std::string_view::npos || hash == 0) {
    return std::nullopt;
  }
  const std::string_view direction = name.substr(space + 1, hash - space - 1);
  if (direction != "ingress" && direction != "egress") {
    return std::nullopt;
  }
  RuleNameParts parts;
  parts.group_id = std::string(name.substr(0, space));
  parts.egress = direction == "egress";
  const std::string_view digits = name.substr(hash + 2);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                         parts.position);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return std::nullopt;
  }
  return parts;
}

// (group id, egress, 0-based position) -> conjunction id, for the rules the translation made.
using RuleIdKey = std::tuple<std::string, bool, size_t>;
std::map<RuleIdKey, uint32_t> conjunctionIds(const Translation& translation) {
  std::map<RuleIdKey, uint32_t> ids;
  for (const auto& [id, name] : translation.rule_names) {
    if (auto parts = parseRuleName(name)) {
      ids[{parts->group_id, parts->egress, parts->position}] = id;
    }
  }
  return ids;
}

template <typename Map, typename Key>
void fillCounters(RuleHits& hit, const Map& sums, const Key& key) {
  const auto it = sums.find(key);
  if (it == sums.end()) {
    return;
  }
  hit.packets = it->second.packets;
  hit.bytes = it->second.bytes;
  hit.flows = it->second.flows;
  hit.since_seconds = it->second.youngest;
}

void addNaclDirection(std::vector<RuleHits>& out, const model::NetworkAcl& nacl,
                      uint32_t nacl_index, bool egress, const Sums& sums) {
  const auto entries = naclEntriesInOrder(nacl, egress);
  const auto make = [&](int number, uint16_t priority) {
    RuleHits hit;
    hit.kind = RuleHits::Kind::kNaclEntry;
    hit.object_id = nacl.id;
    hit.egress = egress;
    hit.index = number;
    fillCounters(hit, sums.nacl, NaclKey{nacl_index, egress, priority});
    return hit;
  };
  for (const auto* e : entries) {
    RuleHits hit = make(e->rule_number,
                        static_cast<uint16_t>(pipeline::kNaclBasePriority - e->rule_number));
    hit.rule = describeNaclEntry(nacl.id, *e);
    hit.location = e->location;
    out.push_back(std::move(hit));
  }
  RuleHits star = make(static_cast<int>(pipeline::kNaclStarRule), pipeline::kNaclStarPriority);
  star.rule = describeNaclStar(nacl.id, egress);
  star.location = nacl.location;
  out.push_back(std::move(star));
}

const char* kindName(RuleHits::Kind kind) {
  return kind == RuleHits::Kind::kSgRule ? "sg-rule" : "nacl-entry";
}

const char* directionName(const RuleHits& hit) {
  if (hit.kind == RuleHits::Kind::kSgRule) {
    return hit.egress ? "egress" : "ingress";
  }
  return hit.egress ? "outbound" : "inbound";
}

// The rule's own column in the text table: "#1", "100", "*".
std::string ruleLabel(const RuleHits& hit) {
  if (hit.kind == RuleHits::Kind::kSgRule) {
    return fmt::format("#{}", hit.index + 1);
  }
  if (hit.index == static_cast<int>(pipeline::kNaclStarRule)) {
    return "*";
  }
  return std::to_string(hit.index);
}

// What the rule matches: the part of RuleHits::rule after its name ("tcp 443 from 0.0.0.0/0").
std::string ruleMatch(const RuleHits& hit) {
  const auto colon = hit.rule.find(": ");
  return colon == std::string::npos ? hit.rule : hit.rule.substr(colon + 2);
}

std::string formatAge(const RuleHits& hit) {
  if (hit.flows == 0) {
    return "-";
  }
  const uint32_t s = hit.since_seconds;
  if (s < 60) {
    return fmt::format("{}s", s);
  }
  if (s < 3600) {
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  }
  if (s < 86400) {
    return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  }
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}


}  // namespace

std::vector<RuleHits> ruleHits(const model::Policy& policy, const Translation& translation,
                               const std::vector<FlowStats>& flows) {
  const Sums sums = sumFlows(flows);
  const auto ids = conjunctionIds(translation);
  std::vector<RuleHits> out;
  for (const auto& sg : policy.security_groups) {
    for (bool egress : {false, true}) {
      const auto& rules = egress ? sg.egress : sg.ingress;
      for (size_t i = 0; i < rules.size(); ++i) {
        RuleHits hit;
        hit.kind = RuleHits::Kind::kSgRule;
        hit.object_id = sg.id;
        hit.egress = egress;
        hit.index = static_cast<int>(i);
        hit.rule = describeSgRule(sg.id, egress, i, rules[i]);
        hit.location = rules[i].location;
        // A rule the translation made no conjunction for (no member on this bridge) has no id.
        if (const auto id = ids.find({sg.id, egress, i}); id != ids.end()) {
          fillCounters(hit, sums.sg, SgKey{id->second, egress});
        }
        out.push_back(std::move(hit));
      }
    }
  }
  for (size_t n = 0; n < policy.network_acls.size(); ++n) {
    // The translator numbers NACLs by their 1-based position in the policy.
    const auto nacl_index = static_cast<uint32_t>(n + 1);
    for (bool egress : {true, false}) {
      addNaclDirection(out, policy.network_acls[n], nacl_index, egress, sums);
    }
  }
  return out;
}

std::string renderHitsText(const std::vector<RuleHits>& hits) {
  struct Row {
    std::string object, direction, rule, packets, bytes, flows, since, match;
  };
  std::vector<Row> rows;
  rows.push_back({"OBJECT", "DIRECTION", "RULE", "PACKETS", "BYTES", "FLOWS", "SINCE", "MATCH"});
  for (const auto& h : hits) {
    rows.push_back({h.object_id, directionName(h), ruleLabel(h), std::to_string(h.packets),
                    std::to_string(h.bytes), std::to_string(h.flows), formatAge(h),
                    ruleMatch(h)});
  }
  // Column widths; the counters are right-aligned, the last column is not padded.
  size_t w[7] = {};
  for (const auto& r : rows) {
    const std::string* cells[7] = {&r.object, &r.direction, &r.rule, &r.packets,
                                   &r.bytes,  &r.flows,     &r.since};
    for (size_t i = 0; i < 7; ++i) {
      w[i] = std::max(w[i], cells[i]->size());
    }
  }
  std::string out;
  for (const auto& r : rows) {
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {}\n", r.object,
                       w[0], r.direction, w[1], r.rule, w[2], r.packets, w[3], r.bytes, w[4],
                       r.flows, w[5], r.since, w[6], r.match);
  }
  return out;
}

std::string renderHitsJson(const std::vector<RuleHits>& hits) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& h : hits) {
    nlohmann::json j;
    j["kind"] = kindName(h.kind);
    j["id"] = h.object_id;
    j["direction"] = directionName(h);
    if (h.kind == RuleHits::Kind::kSgRule) {
      j["index"] = h.index;
    } else {
      j["rule_number"] = h.index;
    }
    j["rule"] = h.rule;
    const std::string location = formatLocation(h.location);
    j["location"] = location.empty() ? nlohmann::json(nullptr) : nlohmann::json(location);
    j["packets"] = h.packets;
    j["bytes"] = h.bytes;
    j["flows"] = h.flows;
    j["since_seconds"] = h.since_seconds;
    rules.push_back(std::move(j));
  }
  return dumpJson(nlohmann::json{{"rules", std::move(rules)}});
}

std::string renderHitsPrometheus(const std::vector<RuleHits>& hits) {
  struct Metric {
    const char* name;
    const char* help;
    uint64_t RuleHits::*value;
  };
  static constexpr Metric kMetrics[] = {
      {"vpcguard_rule_hit_packets_total",
       "Packets decided by a security-group rule or network ACL entry (switch flow counters).",
       &RuleHits::packets},
      {"vpcguard_rule_hit_bytes_total",
       "Bytes decided by a security-group rule or network ACL entry (switch flow counters).",
       &RuleHits::bytes},
  };
  std::string out;
  for (const auto& m : kMetrics) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", m.name, m.help, m.name);
    for (const auto& h : hits) {
      out += fmt::format("{}{{kind=\"{}\",id=\"{}\",direction=\"{}\",rule=\"{}\"}} {}\n", m.name,
                         kindName(h.kind), metrics::escapeLabelValue(h.object_id), directionName(h),
                         metrics::escapeLabelValue(h.rule), h.*m.value);
    }
  }
  return out;
}

}  // namespace vpcguard::explain
