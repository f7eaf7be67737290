#include "flowlogs/collector.h"

#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::flowlog {
namespace {

using namespace pipeline;  // NOLINT(google-build-using-namespace): the pipeline's vocabulary

// Remembered deciding rules: at most this many connections, each dropped after this long unused
// (a connection idle that long has its counting flow gone too; its rule shows as "-" after).
constexpr size_t kMaxRules = 1'000'000;
constexpr int64_t kRuleIdleSeconds = 3600;
constexpr int64_t kMaxSampleAgeSeconds = 600;
constexpr int64_t kMaxSampleAheadSeconds = 5;
// A learned flow's bytes are Ethernet frames; AWS counts IP bytes (the ENI has no L2).
constexpr uint64_t kEthernetHeader = 14;

int64_t seconds(int64_t ms, int64_t fallback) { return ms > 0 ? ms / 1000 : fallback; }

std::optional<uint64_t> number(std::string_view text) {
  uint64_t v = 0;
  int base = 10;
  if (text.starts_with("0x")) {
    text.remove_prefix(2);
    base = 16;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return v;
}

std::string naclRuleName(const std::string& nacl, bool egress, uint32_t rule) {
  const std::string number = rule == kNaclStarRule ? "*" : std::to_string(rule);
  return fmt::format("{} {} #{}", nacl.empty() ? "-" : nacl, egress ? "outbound" : "inbound",
                     number);
}

FlowKey reversed(const FlowKey& k) { return FlowKey{k.dst, k.src, k.dst_port, k.src_port, k.protocol}; }

FlowKey keyOf(const IpfixRecord& r) {
  FlowKey k;
  k.src = r.src.value_or(IpAddress{});
  k.dst = r.dst.value_or(IpAddress{});
  k.protocol = r.protocol;
  if (r.protocol == model::kProtoTcp || r.protocol == model::kProtoUdp) {
    k.src_port = r.src_port;
    k.dst_port = r.dst_port;
  }
  return k;
}

}  // namespace

CollectorView makeView(const model::Policy& policy,
                       const std::map<std::string, uint16_t>& interface_index,
                       const std::map<uint32_t, std::string>& rule_names) {
  CollectorView v;
  v.rule_names = rule_names;
  std::map<std::string, std::string> nacl_of_subnet;
  for (const auto& s : policy.subnets) {
    nacl_of_subnet[s.id] = s.network_acl_id;
  }
  for (const auto& eni : policy.network_interfaces) {
    if (auto it = interface_index.find(eni.id); it != interface_index.end()) {
      v.interface_by_index[it->second] = eni.id;
    }
    for (const auto* list : {&eni.private_ip_addresses, &eni.ipv6_addresses}) {
      for (const auto& a : *list) {
        v.interface_by_address[a] = eni.id;
      }
    }
    InterfaceInfo info;
    info.interface_id = eni.id;
    info.subnet_id = eni.subnet_id;
    info.vpc_id = policy.vpc.id;
    info.account_id = policy.vpc.account_id;
    info.region = policy.vpc.region;
    v.interfaces[eni.id] = info;
    v.nacl_of_interface[eni.id] = nacl_of_subnet[eni.subnet_id];
  }
  return v;
}

std::optional<FlowKey> parseLearnedMatch(const std::string& match) {
  FlowKey k;
  bool have_src = false;
  bool have_dst = false;
  size_t pos = 0;
  while (pos <= match.size()) {
    size_t comma = match.find(',', pos);
    if (comma == std::string::npos) {
      comma = match.size();
    }
    const std::string_view item(match.data() + pos, comma - pos);
    pos = comma + 1;
    const size_t eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (eq == std::string_view::npos) {
      static const std::map<std::string_view, uint8_t> kProtocols = {
          {"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"tcp6", 6}, {"udp6", 17}, {"icmp6", 58},
          {"sctp", 132}, {"sctp6", 132}};
      if (auto p = kProtocols.find(name); p != kProtocols.end()) {
        k.protocol = p->second;
      }
      continue;
    }
    if (name == "nw_src" || name == "ipv6_src" || name == "nw_dst" || name == "ipv6_dst") {
      auto a = IpAddress::parse(value);
      if (!a) {
        return std::nullopt;
      }
      (name.ends_with("src") ? k.src : k.dst) = *a;
      (name.ends_with("src") ? have_src : have_dst) = true;
    } else if (name == "tp_src" || name == "tp_dst" || name == "nw_proto") {
      auto n = number(value);
      if (!n || *n > 65535) {
        return std::nullopt;
      }
      if (name == "nw_proto") {
        k.protocol = static_cast<uint8_t>(*n);
      } else {
        (name == "tp_src" ? k.src_port : k.dst_port) = static_cast<uint16_t>(*n);
      }
    }
  }
  if (!have_src || !have_dst) {
    return std::nullopt;
  }
  return k;
}

std::vector<std::pair<LogBatch, std::vector<Field>>> Collector::setPolicy(
    const model::Policy& policy, CollectorView view, int64_t now) {
  std::vector<std::pair<LogBatch, std::vector<Field>>> out;
  const auto drain = [&](Log& log) {
    for (auto& b : log.aggregator->flushAll(now)) {
      out.emplace_back(std::move(b), log.fields);
    }
  };
  view_ = std::move(view);
  std::map<std::string, Log> next;
  for (const auto& config : policy.flow_logs) {
    auto fields = parseFormat(config.log_format);
    if (!fields) {
      continue;  // validation refuses such a policy; never reached
    }
    auto old = logs_.find(config.id);
    if (old != logs_.end() && old->second.config.traffic_type == config.traffic_type &&
        old->second.config.log_format == config.log_format &&
        old->second.config.max_aggregation_interval == config.max_aggregation_interval) {
      old->second.config = config;
      next[config.id] = std::move(old->second);
      logs_.erase(old);
      continue;
    }
    if (old != logs_.end()) {
      drain(old->second);
      logs_.erase(old);
    }
    Log log;
    log.config = config;
    log.fields = *fields;
    log.aggregator = std::make_unique<Aggregator>(config.id, config.traffic_type,
                                                  config.max_aggregation_interval, *fields);
    next[config.id] = std::move(log);
  }
  for (auto& [id, log] : logs_) {
    drain(log);  // removed: its open records go out now
  }
  logs_ = std::move(next);
  for (auto& [id, log] : logs_) {
    std::map<std::string, InterfaceInfo> covered;
    for (const auto& eni : policy.network_interfaces) {
      if (flowLogCovers(log.config, policy, eni)) {
        covered[eni.id] = view_.interfaces[eni.id];
      }
    }
    log.aggregator->setInterfaces(std::move(covered), now);
  }
  stats_.batches += out.size();
  return out;
}

void Collector::observe(const Observation& o) {
  ++stats_.observations;
  for (auto& [id, log] : logs_) {
    log.aggregator->add(o);
  }
}

const std::string* Collector::interfaceOf(const std::optional<IpAddress>& address) const {
  if (!address) {
    return nullptr;
  }
  auto it = view_.interface_by_address.find(*address);
  return it == view_.interface_by_address.end() ? nullptr : &it->second;
}

std::string Collector::ruleOf(const std::string& interface_id, Direction d, const FlowKey& key) {
  // The connection's own packets were committed on this side; its replies cross the interface
  // the other way, so their connection is the reversed 5-tuple on the opposite side.
  const Direction other = d == Direction::kEgress ? Direction::kIngress : Direction::kEgress;
  for (const RuleKey& k : {RuleKey{interface_id, d, key}, RuleKey{interface_id, other, reversed(key)}}) {
    if (auto it = rules_.find(k); it != rules_.end()) {
      it->second.second = now_;  // in use: kept when the table is full
      auto name = view_.rule_names.find(it->second.first);
      return name == view_.rule_names.end() ? std::string() : name->second;
    }
  }
  return {};
}

void Collector::onIpfix(const IpfixRecord& r, int64_t now) {
  ++stats_.samples;
  now_ = now;
  const uint32_t domain = r.observation_domain;
  const uint32_t kind = domain >> 24;
  const bool ingress_bit = (domain & kObsIngressBit) != 0;
  const FlowKey key = keyOf(r);
  Observation o;
  o.key = key;
  o.packets = r.packets;
  o.bytes = r.bytes;
  // Times are the exporter's, and anyone who can reach the socket is an exporter: a record
  // from far in the past or future would open intervals there (and NODATA for each one up to
  // it). OVS exports within seconds; anything outside a window around now is taken as now.
  const auto plausible = [&](int64_t ms) {
    const int64_t t = seconds(ms, now);
    return t < now - kMaxSampleAgeSeconds || t > now + kMaxSampleAheadSeconds ? now : t;
  };
  o.first_seen = plausible(r.start_ms);
  o.last_seen = plausible(r.end_ms);
  o.first_seen = std::min(o.first_seen, o.last_seen);
  const std::string* eni = nullptr;
  if (kind == kObsRule) {
    eni = interfaceOf(ingress_bit ? r.dst : r.src);
    if (eni == nullptr) {
      ++stats_.unattributed;
      return;
    }
    if (rules_.size() >= kMaxRules) {
      // Full: drop what was not used for an hour; if that frees less than a tenth, forget all
      // (rules only name the deciding rule, never counts), so the sweep stays amortised O(1).
      for (auto it = rules_.begin(); it != rules_.end();) {
        it = now - it->second.second > kRuleIdleSeconds ? rules_.erase(it) : std::next(it);
      }
      if (rules_.size() > kMaxRules - kMaxRules / 10) {
        rules_.clear();
      }
    }
    {
      rules_[RuleKey{*eni, ingress_bit ? Direction::kIngress : Direction::kEgress, key}] = {
          r.observation_point, now};
    }
    return;  // the packet itself is counted where it is accepted
  }
  if (kind == kObsCount) {
    auto it = view_.interface_by_index.find(static_cast<uint16_t>(domain & 0xffff));
    if (it == view_.interface_by_index.end()) {
      ++stats_.unattributed;
      return;
    }
    o.interface_id = it->second;
    o.direction = ingress_bit ? Direction::kIngress : Direction::kEgress;
    o.action = Action::kAccept;
    o.rule = ruleOf(o.interface_id, o.direction, key);
    observe(o);
    return;
  }
  // A reject: the verdict's kind says which side decided.
  const uint32_t verdict = domain & 0xff000000U;
  const uint32_t detail = domain & 0xffffffU;
  bool egress = true;
  switch (verdict) {
    case kVerdictSgEgressMiss:
      o.reason = "sg-egress-miss";
      break;
    case kVerdictSgEgressRevoked:
      o.reason = "sg-egress-revoked";
      break;
    case kVerdictNaclOutDeny:
      o.reason = "nacl-outbound-deny";
      break;
    case kVerdictSgIngressMiss:
      o.reason = "sg-ingress-miss";
      egress = false;
      break;
    case kVerdictSgIngressRevoked:
      o.reason = "sg-ingress-revoked";
      egress = false;
      break;
    case kVerdictNaclInDeny:
      o.reason = "nacl-inbound-deny";
      egress = false;
      break;
    default:
      ++stats_.unattributed;  // not a sample of ours
      return;
  }
  eni = interfaceOf(egress ? r.src : r.dst);
  if (eni == nullptr) {
    ++stats_.unattributed;
    return;
  }
  o.interface_id = *eni;
  o.direction = egress ? Direction::kEgress : Direction::kIngress;
  o.action = Action::kReject;
  if (verdict == kVerdictNaclOutDeny || verdict == kVerdictNaclInDeny) {
    o.rule = naclRuleName(view_.nacl_of_interface[*eni], egress, detail);
  }
  observe(o);
}

void Collector::onLearnedFlows(bool ingress, const std::vector<LearnedFlow>& flows, int64_t now,
                               bool baseline) {
  now_ = now;
  std::map<std::tuple<bool, uint64_t, std::string>, Seen> next;
  stats_.learned_flows = flows.size();
  for (const auto& f : flows) {
    auto id = std::tuple{ingress, f.cookie, f.match};
    Seen seen{f.packets, f.l2_bytes, f.duration_sec, now};
    uint64_t packets = f.packets;
    uint64_t l2 = f.l2_bytes;
    int64_t first = now - static_cast<int64_t>(f.duration_sec);
    // The same flow as at the previous read only if it is as old as it was then plus the time
    // since (a flow learned again after an idle expiry or a switch restart is younger), 2 s of
    // slack for the switch's rounding.
    if (auto prev = learned_.find(id);
        prev != learned_.end() &&
        static_cast<int64_t>(f.duration_sec) + 2 >=
            static_cast<int64_t>(prev->second.duration) + (now - prev->second.read_at) &&
        f.packets >= prev->second.packets && f.l2_bytes >= prev->second.l2_bytes) {
      packets -= prev->second.packets;  // the same flow read before: only what is new
      l2 -= prev->second.l2_bytes;
      first = std::max(first, prev->second.read_at);
    }
    next.emplace(std::move(id), seen);
    if (packets == 0 || baseline) {
      continue;
    }
    auto eni = view_.interface_by_index.find(static_cast<uint16_t>(f.cookie & 0xffff));
    auto key = parseLearnedMatch(f.match);
    if (eni == view_.interface_by_index.end() || !key) {
      ++stats_.unattributed;
      continue;
    }
    Observation o;
    o.interface_id = eni->second;
    o.direction = ingress ? Direction::kIngress : Direction::kEgress;
    o.action = Action::kAccept;
    o.key = *key;
    o.packets = packets;
    o.bytes = l2 >= packets * kEthernetHeader ? l2 - packets * kEthernetHeader : 0;
    // Read at an interval boundary: the packets belong to the interval that just ended.
    o.last_seen = now - 1;
    o.first_seen = std::min(first, o.last_seen);
    o.rule = ruleOf(o.interface_id, o.direction, o.key);
    observe(o);
  }
  // Flows no longer dumped expired: their last counts were read before (they idle longer than
  // the read interval), so forgetting them loses nothing.
  std::erase_if(learned_, [&](const auto& e) { return std::get<0>(e.first) == ingress; });
  learned_.merge(next);
}

void Collector::onLost(uint64_t records, int64_t now, const std::string& reason,
                       std::optional<Action> only) {
  for (auto& [id, log] : logs_) {
    // Loss of rejects says nothing about an ACCEPT-only log, and the other way round.
    const auto type = log.config.traffic_type;
    if (only && ((*only == Action::kAccept && type == model::FlowLogTrafficType::kReject) ||
                 (*only == Action::kReject && type == model::FlowLogTrafficType::kAccept))) {
      continue;
    }
    log.aggregator->addSkipped(std::nullopt, records, now, reason);
  }
}

std::vector<std::pair<LogBatch, std::vector<Field>>> Collector::flush(int64_t now, int64_t grace) {
  std::vector<std::pair<LogBatch, std::vector<Field>>> out;
  for (auto& [id, log] : logs_) {
    for (auto& b : log.aggregator->flush(now, grace)) {
      out.emplace_back(std::move(b), log.fields);
    }
  }
  stats_.batches += out.size();
  return out;
}

std::vector<std::pair<LogBatch, std::vector<Field>>> Collector::flushAll(int64_t now) {
  std::vector<std::pair<LogBatch, std::vector<Field>>> out;
  for (auto& [id, log] : logs_) {
    for (auto& b : log.aggregator->flushAll(now)) {
      out.emplace_back(std::move(b), log.fields);
    }
  }
  stats_.batches += out.size();
  return out;
}

}  // namespace vpcguard::flowlog
