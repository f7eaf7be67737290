#include "flowlogs/aggregator.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

namespace vpcguard::flowlog {
namespace {

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
constexpr int64_t kBeginning = std::numeric_limits<int64_t>::min();
// A clock jumping far ahead must not make flush() write a NODATA batch for every interval of
// the gap (a year of 60 s intervals): beyond this many empty intervals, flush skips ahead.
constexpr int64_t kMaxEmptyCatchUp = 10'080;

bool matches(model::FlowLogTrafficType type, Action action) {
  switch (type) {
    case model::FlowLogTrafficType::kAccept:
      return action == Action::kAccept;
    case model::FlowLogTrafficType::kReject:
      return action == Action::kReject;
    case model::FlowLogTrafficType::kAll:
      return true;
  }
  return true;
}

}  // namespace

Aggregator::Aggregator(std::string flow_log_id, model::FlowLogTrafficType traffic_type,
                       int64_t interval_seconds, std::vector<flowlog::Field> fields,
                       size_t max_entries)
    : flow_log_id_(std::move(flow_log_id)),
      traffic_type_(traffic_type),
      interval_(interval_seconds > 0 ? interval_seconds : 600),
      fields_(std::move(fields)),
      max_entries_(max_entries) {}

int64_t Aggregator::intervalStart(int64_t t) const {
  const int64_t rem = ((t % interval_) + interval_) % interval_;
  return t - rem;
}

void Aggregator::observeTime(int64_t t) {
  if (!cursor_) {
    cursor_ = intervalStart(t);
  }
  latest_ = latest_ ? std::max(*latest_, t) : t;
}

Aggregator::Interval& Aggregator::intervalFor(int64_t t) {
  observeTime(t);
  return open_[std::max(intervalStart(t), *cursor_)];
}

void Aggregator::setInterfaces(std::map<std::string, InterfaceInfo> interfaces,
                               std::optional<int64_t> now) {
  if (now) {
    observeTime(*now);
  }
  const int64_t t = now ? *now : latest_.value_or(kBeginning);
  for (const auto& [id, info] : covered_) {
    if (interfaces.count(id) == 0) {
      spans_[id].back().to = t;
    }
  }
  for (auto& [id, info] : interfaces) {
    if (covered_.count(id) == 0) {
      spans_[id].push_back(Span{t, kForever});
    }
    known_[id] = info;
    if (known_[id].interface_id.empty()) {
      known_[id].interface_id = id;
    }
  }
  covered_ = std::move(interfaces);
}

void Aggregator::skip(Interval& interval, const std::string& interface_id, uint64_t packets,
                      const std::string& reason) {
  Skip& s = interval.skipped[interface_id];
  s.packets += packets;
  if (s.reason.empty()) {
    s.reason = reason;
  }
}

void Aggregator::add(const Observation& o) {
  if (covered_.count(o.interface_id) == 0 || !matches(traffic_type_, o.action)) {
    return;
  }
  Interval& interval = intervalFor(o.last_seen);
  EntryKey key{o.interface_id, o.direction, o.action, o.key};
  auto it = interval.entries.find(key);
  if (it == interval.entries.end()) {
    if (entries_ >= max_entries_) {
      ++overflow_count_;
      skip(interval, o.interface_id, o.packets, kSkipReasonOverflow);
      return;
    }
    Record r;
    r.interface_id = o.interface_id;
    r.direction = o.direction;
    r.action = o.action;
    r.key = o.key;
    r.start = std::min(o.first_seen, o.last_seen);
    r.end = o.last_seen;
    r.rule = o.rule;
    r.reason = o.reason;
    r.pkt_src = o.pkt_src;
    r.pkt_dst = o.pkt_dst;
    r.packets = o.packets;
    r.bytes = o.bytes;
    r.tcp_flags = o.tcp_flags;
    interval.entries.emplace(std::move(key), std::move(r));
    ++entries_;
    return;
  }
  Record& r = it->second;
  r.packets += o.packets;
  r.bytes += o.bytes;
  r.start = std::min({r.start, o.first_seen, o.last_seen});
  r.end = std::max(r.end, o.last_seen);
  r.tcp_flags = static_cast<uint8_t>(r.tcp_flags | o.tcp_flags);
  if (r.rule.empty()) {
    r.rule = o.rule;
  }
  if (r.reason.empty()) {
    r.reason = o.reason;
  }
  if (!r.pkt_src) {
    r.pkt_src = o.pkt_src;
  }
  if (!r.pkt_dst) {
    r.pkt_dst = o.pkt_dst;
  }
}

void Aggregator::addSkipped(std::optional<std::string> interface_id, uint64_t packets_lost,
                            int64_t when, const std::string& reason) {
  Interval& interval = intervalFor(when);
  if (interface_id) {
    // A recently removed interface still gets its SKIPDATA: the loss happened while covered.
    if (covered_.count(*interface_id) != 0 || known_.count(*interface_id) != 0) {
      skip(interval, *interface_id, packets_lost, reason);
    }
    return;
  }
  for (const auto& [id, info] : covered_) {
    skip(interval, id, packets_lost, reason);
  }
}

LogBatch Aggregator::close(int64_t start, int64_t end) {
  LogBatch batch;
  batch.flow_log_id = flow_log_id_;
  batch.interval_start = start;
  batch.interval_seconds = interval_;
  std::set<std::string> reported;
  if (auto node = open_.extract(start)) {
    Interval& interval = node.mapped();
    entries_ -= interval.entries.size();
    for (auto& [key, record] : interval.entries) {
      reported.insert(record.interface_id);
      batch.records.push_back(std::move(record));
    }
    for (auto& [id, s] : interval.skipped) {
      reported.insert(id);
      Record r;
      r.interface_id = id;
      r.log_status = LogStatus::kSkipData;
      r.start = start;
      r.end = end;
      r.packets = s.packets;
      r.reason = s.reason;
      batch.records.push_back(std::move(r));
    }
  }
  for (const auto& [id, spans] : spans_) {
    if (reported.count(id) != 0) {
      continue;
    }
    const bool covered = std::any_of(spans.begin(), spans.end(),
                                     [&](const Span& s) { return s.from < end && s.to > start; });
    if (covered) {
      Record r;
      r.interface_id = id;
      r.log_status = LogStatus::kNoData;
      r.start = start;
      r.end = end;
      batch.records.push_back(std::move(r));
    }
  }
  std::sort(batch.records.begin(), batch.records.end(), recordLess);
  for (const Record& r : batch.records) {
    auto it = known_.find(r.interface_id);
    InterfaceInfo info = it != known_.end() ? it->second : InterfaceInfo{};
    info.interface_id = r.interface_id;
    batch.interfaces.emplace(r.interface_id, std::move(info));
  }
  return batch;
}

void Aggregator::pruneCoverage(int64_t before) {
  for (auto it = spans_.begin(); it != spans_.end();) {
    auto& spans = it->second;
    spans.erase(
        std::remove_if(spans.begin(), spans.end(), [&](const Span& s) { return s.to <= before; }),
        spans.end());
    if (spans.empty()) {
      known_.erase(it->first);
      it = spans_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<LogBatch> Aggregator::flush(int64_t now, int64_t grace_seconds) {
  observeTime(now);
  std::vector<LogBatch> out;
  int64_t empty_run = 0;
  while (*cursor_ + interval_ + grace_seconds <= now) {
    if (open_.count(*cursor_) == 0 && ++empty_run > kMaxEmptyCatchUp) {
      // Jump to the next interval holding data, or to the last closable one.
      const int64_t last_closable = intervalStart(now - grace_seconds) - interval_;
      int64_t next = last_closable;
      if (!open_.empty()) {
        next = std::min(next, open_.begin()->first);
      }
      cursor_ = std::max(*cursor_, next);
      empty_run = 0;
    }
    LogBatch batch = close(*cursor_, *cursor_ + interval_);
    *cursor_ += interval_;
    pruneCoverage(*cursor_);
    if (!batch.records.empty()) {
      out.push_back(std::move(batch));
    }
  }
  return out;
}

std::vector<LogBatch> Aggregator::flushAll(int64_t now) {
  observeTime(now);
  std::vector<LogBatch> out;
  int64_t last = intervalStart(now);
  if (!open_.empty()) {
    last = std::max(last, open_.rbegin()->first);
  }
  if (*cursor_ + kMaxEmptyCatchUp * interval_ < last) {
    cursor_ = open_.empty() ? last : std::min(last, std::max(*cursor_, open_.begin()->first));
  }
  while (*cursor_ <= last) {
    const int64_t start = *cursor_;
    const int64_t full_end = start + interval_;
    // The interval holding `now` is closed early: its NODATA/SKIPDATA records end now.
    const int64_t end = (start <= now && now < full_end) ? std::max(now, start) : full_end;
    LogBatch batch = close(start, end);
    *cursor_ += interval_;
    pruneCoverage(std::min(*cursor_, now));
    if (!batch.records.empty()) {
      out.push_back(std::move(batch));
    }
  }
  return out;
}

}  // namespace vpcguard::flowlog
