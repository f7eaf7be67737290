#include "flowlogs/record.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

namespace vpcguard::flowlog {
namespace {

using flowlog::Field;

std::string orDash(const std::string& value) {
  if (value.empty()) {
    return "-";
  }
  std::string out = value;
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n'; }, '_');
  return out;
}

// Fields an interface's metadata fills, so they are written for NODATA / SKIPDATA records too
// (they describe the interface, not traffic).
std::optional<std::string> interfaceField(Field f, const Record& r, const InterfaceInfo& info,
                                          const std::vector<Field>& fields) {
  switch (f) {
    case Field::kVersion:
      return std::to_string(flowlog::formatVersion(fields));
    case Field::kAccountId:
      return orDash(info.account_id);
    case Field::kInterfaceId:
      return orDash(r.interface_id);
    case Field::kVpcId:
      return orDash(info.vpc_id);
    case Field::kSubnetId:
      return orDash(info.subnet_id);
    case Field::kInstanceId:
      return orDash(info.instance_id);
    case Field::kRegion:
      return orDash(info.region);
    case Field::kStart:
      return std::to_string(r.start);
    case Field::kEnd:
      return std::to_string(r.end);
    case Field::kLogStatus:
      return std::string(logStatusName(r.log_status));
    default:
      return std::nullopt;
  }
}

std::string trafficField(Field f, const Record& r) {
  switch (f) {
    case Field::kSrcAddr:
      return r.key.src.toString();
    case Field::kDstAddr:
      return r.key.dst.toString();
    case Field::kSrcPort:
      return std::to_string(r.key.src_port);
    case Field::kDstPort:
      return std::to_string(r.key.dst_port);
    case Field::kProtocol:
      return std::to_string(r.key.protocol);
    case Field::kPackets:
      return std::to_string(r.packets);
    case Field::kBytes:
      return std::to_string(r.bytes);
    case Field::kAction:
      return actionName(r.action);
    case Field::kTcpFlags:
      // 0 = none seen, which with OVS 3.1 (no TCP flags in its IPFIX) means unknown.
      return r.tcp_flags == 0 ? "-" : std::to_string(r.tcp_flags);
    case Field::kType:
      return r.key.src.isV4() ? "IPv4" : "IPv6";
    case Field::kPktSrcAddr:
      return r.pkt_src.value_or(r.key.src).toString();
    case Field::kPktDstAddr:
      return r.pkt_dst.value_or(r.key.dst).toString();
    case Field::kFlowDirection:
      return directionName(r.direction);
    case Field::kVpcguardRule:
      return orDash(r.rule);
    case Field::kVpcguardReason:
      return orDash(r.reason);
    // Meaningless on one host, or AWS-only: az-id, sublocation-*, aws-service, ecs-*;
    // traffic-path (AWS writes it only for egress through gateways, of which we have none);
    // reject-reason (AWS writes only "BPA", block public access, which vpcguard does not have).
    default:
      return "-";
  }
}

}  // namespace

const char* actionName(Action a) { return a == Action::kAccept ? "ACCEPT" : "REJECT"; }

const char* logStatusName(LogStatus s) {
  switch (s) {
    case LogStatus::kOk:
      return "OK";
    case LogStatus::kNoData:
      return "NODATA";
    case LogStatus::kSkipData:
      return "SKIPDATA";
  }
  return "OK";
}

const char* directionName(Direction d) { return d == Direction::kIngress ? "ingress" : "egress"; }

bool recordLess(const Record& a, const Record& b) {
  return std::tie(a.start, a.interface_id, a.log_status, a.direction, a.action, a.key, a.end) <
         std::tie(b.start, b.interface_id, b.log_status, b.direction, b.action, b.key, b.end);
}

std::string formatRecord(const Record& record, const InterfaceInfo& interface,
                         const std::vector<flowlog::Field>& fields) {
  std::string line;
  for (Field f : fields) {
    if (!line.empty()) {
      line += ' ';
    }
    if (auto v = interfaceField(f, record, interface, fields)) {
      line += *v;
    } else if (record.log_status == LogStatus::kOk) {
      line += trafficField(f, record);
    } else if (f == Field::kVpcguardReason) {
      // Why records were skipped and how many: AWS writes '-' in packets, so the count goes here
      // (IPFIX records for records-lost and template-unknown, packets for rate-limited).
      line += record.log_status == LogStatus::kSkipData && record.packets > 0
                  ? fmt::format("{}:{}", orDash(record.reason), record.packets)
                  : orDash(record.reason);
    } else {
      line += '-';
    }
  }
  return line;
}

std::vector<LogFile> toLogFiles(const LogBatch& batch, const std::vector<flowlog::Field>& fields) {
  std::map<std::pair<std::string, std::string>, LogFile> files;
  const InterfaceInfo unknown;
  for (const Record& r : batch.records) {
    auto it = batch.interfaces.find(r.interface_id);
    const InterfaceInfo& info = it == batch.interfaces.end() ? unknown : it->second;
    const std::string account = orDash(info.account_id);
    const std::string region = orDash(info.region);
    auto [pos, inserted] = files.try_emplace({account, region});
    LogFile& file = pos->second;
    if (inserted) {
      file.flow_log_id = batch.flow_log_id;
      file.account_id = account;
      file.region = region;
      file.interval_start = batch.interval_start;
      file.header = flowlog::headerLine(fields);
    }
    file.lines.push_back(formatRecord(r, info, fields));
  }
  std::vector<LogFile> out;
  out.reserve(files.size());
  for (auto& [key, file] : files) {
    out.push_back(std::move(file));
  }
  return out;
}

}  // namespace vpcguard::flowlog
