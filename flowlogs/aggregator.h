#pragma once
// The aggregator of ONE flow log: observations in, one batch of records per closed aggregation
// interval out.
//
// Design. Intervals are aligned to multiples of the interval length in Unix time; an
// observation belongs to the interval holding its last_seen. Entries are keyed by (interface,
// direction, action, 5-tuple) and summed (packets, bytes, min start, max end, OR of TCP flags,
// first non-empty rule/reason). The aggregator has no clock of its own: time comes from the
// calls (add's last_seen, addSkipped's `when`, flush's `now`, setInterfaces's `now`), and the
// first of those starts its life (no NODATA for intervals before it).
//
// Interval closing: flush(now, grace) closes every interval that ended at least `grace` seconds
// before `now`; an observation arriving later than that (its interval already closed) goes into
// the oldest open interval, with its own true start/end. flushAll(now) (shutdown, flow-log
// removal) also closes the current interval early, so nothing is lost; its NODATA/SKIPDATA
// records end at `now`.
//
// Coverage: the aggregator remembers when each interface was covered (setInterfaces). An
// interface covered at any moment of an interval (at its start, or added during it, or removed
// during it) gets a NODATA record for that interval if it has no record and no SKIPDATA there.
// Observations for interfaces not covered at the time add() is called are ignored.
//
// Loss is never silent: addSkipped() and the memory cap (max_entries open entries over all open
// intervals; a new entry beyond it is dropped and counted) give the interval one SKIPDATA record
// per affected interface.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flowlogs/record.h"
#include "translator/flow_log_format.h"
#include "translator/model.h"

namespace vpcguard::flowlog {

// SKIPDATA reasons (written in ${vpcguard-reason}).
inline constexpr const char* kSkipReasonLost = "records-lost";
inline constexpr const char* kSkipReasonOverflow = "aggregator-overflow";

class Aggregator {
 public:
  static constexpr size_t kDefaultMaxEntries = 1'000'000;

  Aggregator(std::string flow_log_id, model::FlowLogTrafficType traffic_type,
             int64_t interval_seconds, std::vector<flowlog::Field> fields,
             size_t max_entries = kDefaultMaxEntries);

  // The interfaces this flow log covers from `now` on (default: the latest time the aggregator
  // has seen; before any, "from the beginning").
  void setInterfaces(std::map<std::string, InterfaceInfo> interfaces,
                     std::optional<int64_t> now = std::nullopt);

  // Ignored if the interface is not covered or the action does not match the traffic type.
  void add(const Observation& observation);

  // Records were lost (collector datagram gaps, rate limit). nullopt = every covered interface.
  void addSkipped(std::optional<std::string> interface_id, uint64_t packets_lost, int64_t when,
                  const std::string& reason = kSkipReasonLost);

  // Closes every interval that ended at least grace_seconds before `now`. Batches in time
  // order; intervals with no record at all (no covered interface) give no batch.
  [[nodiscard]] std::vector<LogBatch> flush(int64_t now, int64_t grace_seconds);
  // Closes everything, the current interval included (shutdown, flow-log removal).
  [[nodiscard]] std::vector<LogBatch> flushAll(int64_t now);

  [[nodiscard]] const std::string& flowLogId() const { return flow_log_id_; }
  [[nodiscard]] const std::vector<flowlog::Field>& fields() const { return fields_; }
  [[nodiscard]] int64_t intervalSeconds() const { return interval_; }
  [[nodiscard]] size_t openEntries() const { return entries_; }
  // Observations dropped by the memory cap since construction (each reported as SKIPDATA).
  [[nodiscard]] uint64_t overflowCount() const { return overflow_count_; }

 private:
  struct EntryKey {
    std::string interface_id;
    Direction direction;
    Action action;
    FlowKey key;
    auto operator<=>(const EntryKey&) const = default;
    bool operator==(const EntryKey&) const = default;
  };
  struct Skip {
    uint64_t packets = 0;
    std::string reason;
  };
  struct Interval {
    std::map<EntryKey, Record> entries;
    std::map<std::string, Skip> skipped;
  };
  struct Span {  // [from, to): covered
    int64_t from;
    int64_t to;
  };

  [[nodiscard]] int64_t intervalStart(int64_t t) const;
  void observeTime(int64_t t);
  [[nodiscard]] Interval& intervalFor(int64_t t);
  void skip(Interval& interval, const std::string& interface_id, uint64_t packets,
            const std::string& reason);
  [[nodiscard]] LogBatch close(int64_t start, int64_t end);
  void pruneCoverage(int64_t before);

  std::string flow_log_id_;
  model::FlowLogTrafficType traffic_type_;
  int64_t interval_;
  std::vector<flowlog::Field> fields_;
  size_t max_entries_;

  std::map<int64_t, Interval> open_;  // by interval start
  std::optional<int64_t> cursor_;     // start of the oldest interval not yet closed
  std::optional<int64_t> latest_;     // latest time seen in any call
  size_t entries_ = 0;
  uint64_t overflow_count_ = 0;

  std::map<std::string, InterfaceInfo> covered_;
  std::map<std::string, std::vector<Span>> spans_;  // coverage history not yet closed over
  std::map<std::string, InterfaceInfo> known_;      // latest info of each interface in spans_
};

}  // namespace vpcguard::flowlog
