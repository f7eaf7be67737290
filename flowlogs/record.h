#pragma once
// One VPC flow-log record and how it is written (AWS's space-separated text, in the flow log's
// `${field}` format). Pure: no I/O. The aggregator (aggregator.h) makes records out of
// observations; the sink (sink.h) writes LogFiles; docs/flowlogs-records.md describes every field.

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "translator/flow_log_format.h"
#include "translator/ip.h"

namespace vpcguard::flowlog {

enum class Action : uint8_t { kAccept, kReject };
enum class Direction : uint8_t { kIngress, kEgress };
// OK: traffic was recorded. NODATA: no traffic on the interface in the interval. SKIPDATA: some
// records of the interval were lost (collector gaps, rate limit, the aggregator's memory cap).
enum class LogStatus : uint8_t { kOk, kNoData, kSkipData };

// The 5-tuple as AWS writes it: ICMP (and any protocol without ports) has ports 0.
struct FlowKey {
  IpAddress src;
  IpAddress dst;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t protocol = 0;

  auto operator<=>(const FlowKey&) const = default;
  bool operator==(const FlowKey&) const = default;
};

// TCP flag bits as AWS's tcp-flags field ORs them (SYN-ACK = 18).
inline constexpr uint8_t kTcpFin = 1;
inline constexpr uint8_t kTcpSyn = 2;
inline constexpr uint8_t kTcpRst = 4;
inline constexpr uint8_t kTcpAck = 16;

// Counted traffic of one 5-tuple on one interface, already attributed to a direction and a
// verdict (the daemon's collector makes these).
struct Observation {
  std::string interface_id;
  Direction direction = Direction::kIngress;
  Action action = Action::kAccept;
  FlowKey key;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  int64_t first_seen = 0;  // unix seconds
  int64_t last_seen = 0;   // unix seconds
  uint8_t tcp_flags = 0;   // OR of the TCP flags seen
  std::string rule;        // "sg-web ingress #1", "acl-app outbound #100"; empty = unknown
  std::string reason;      // "sg-ingress-miss", "nacl-inbound-deny"; empty for ACCEPT
  std::optional<IpAddress> pkt_src;  // packet-level addresses when they differ from the key's
  std::optional<IpAddress> pkt_dst;
};

// What the daemon knows of an interface. Empty strings are written as "-".
struct InterfaceInfo {
  std::string interface_id;
  std::string subnet_id;
  std::string vpc_id;
  std::string account_id;
  std::string region;
  std::string instance_id;

  bool operator==(const InterfaceInfo&) const = default;
};

// One output line. For NODATA / SKIPDATA only interface_id, start, end and log_status mean
// anything (and `packets` of a SKIPDATA record holds the packets lost, not written: AWS writes
// "-" there; `reason` says why records were skipped, written only in ${vpcguard-reason}).
struct Record {
  std::string interface_id;
  LogStatus log_status = LogStatus::kOk;
  Direction direction = Direction::kIngress;
  Action action = Action::kAccept;
  FlowKey key;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  int64_t start = 0;
  int64_t end = 0;
  uint8_t tcp_flags = 0;
  std::string rule;
  std::string reason;
  std::optional<IpAddress> pkt_src;
  std::optional<IpAddress> pkt_dst;
};

// The deterministic order of records inside a file: start, interface, status, direction,
// action, 5-tuple.
[[nodiscard]] bool recordLess(const Record& a, const Record& b);

// One line, fields space separated, "-" for anything unknown or meaningless here. Values that
// contain whitespace (rule names) have it replaced by '_' so the line stays splittable.
[[nodiscard]] std::string formatRecord(const Record& record, const InterfaceInfo& interface,
                                       const std::vector<flowlog::Field>& fields);

[[nodiscard]] const char* actionName(Action a);        // "ACCEPT" / "REJECT"
[[nodiscard]] const char* logStatusName(LogStatus s);  // "OK" / "NODATA" / "SKIPDATA"
[[nodiscard]] const char* directionName(Direction d);  // "ingress" / "egress"

// The records of one flow log for one aggregation interval (what Aggregator::flush returns).
struct LogBatch {
  std::string flow_log_id;
  int64_t interval_start = 0;
  int64_t interval_seconds = 0;
  std::vector<Record> records;  // sorted with recordLess
  // Every interface a record names (records may outlive the interface's coverage).
  std::map<std::string, InterfaceInfo> interfaces;
};

// One file to publish: AWS writes one object per account and region, so a batch becomes one
// LogFile per (account, region) among its interfaces.
struct LogFile {
  std::string flow_log_id;
  std::string account_id;  // "-" when unknown
  std::string region;      // "-" when unknown
  int64_t interval_start = 0;
  std::string header;              // flowlog::headerLine(fields)
  std::vector<std::string> lines;  // formatted records, in order
};

[[nodiscard]] std::vector<LogFile> toLogFiles(const LogBatch& batch,
                                              const std::vector<flowlog::Field>& fields);

}  // namespace vpcguard::flowlog
