#include "translator/flow_log_format.h"

#include <algorithm>

#include <fmt/format.h>

namespace vpcguard::flowlog {
namespace {

std::vector<FieldInfo> makeFields() {
  return {
      {Field::kVersion, "version", 2},
      {Field::kAccountId, "account-id", 2},
      {Field::kInterfaceId, "interface-id", 2},
      {Field::kSrcAddr, "srcaddr", 2},
      {Field::kDstAddr, "dstaddr", 2},
      {Field::kSrcPort, "srcport", 2},
      {Field::kDstPort, "dstport", 2},
      {Field::kProtocol, "protocol", 2},
      {Field::kPackets, "packets", 2},
      {Field::kBytes, "bytes", 2},
      {Field::kStart, "start", 2},
      {Field::kEnd, "end", 2},
      {Field::kAction, "action", 2},
      {Field::kLogStatus, "log-status", 2},
      {Field::kVpcId, "vpc-id", 3},
      {Field::kSubnetId, "subnet-id", 3},
      {Field::kInstanceId, "instance-id", 3},
      {Field::kTcpFlags, "tcp-flags", 3},
      {Field::kType, "type", 3},
      {Field::kPktSrcAddr, "pkt-srcaddr", 3},
      {Field::kPktDstAddr, "pkt-dstaddr", 3},
      {Field::kRegion, "region", 4},
      {Field::kAzId, "az-id", 4},
      {Field::kSublocationType, "sublocation-type", 4},
      {Field::kSublocationId, "sublocation-id", 4},
      {Field::kPktSrcAwsService, "pkt-src-aws-service", 5},
      {Field::kPktDstAwsService, "pkt-dst-aws-service", 5},
      {Field::kFlowDirection, "flow-direction", 5},
      {Field::kTrafficPath, "traffic-path", 5},
      {Field::kEcsClusterArn, "ecs-cluster-arn", 7},
      {Field::kEcsClusterName, "ecs-cluster-name", 7},
      {Field::kEcsContainerInstanceArn, "ecs-container-instance-arn", 7},
      {Field::kEcsContainerInstanceId, "ecs-container-instance-id", 7},
      {Field::kEcsContainerId, "ecs-container-id", 7},
      {Field::kEcsSecondContainerId, "ecs-second-container-id", 7},
      {Field::kEcsServiceName, "ecs-service-name", 7},
      {Field::kEcsTaskDefinitionArn, "ecs-task-definition-arn", 7},
      {Field::kEcsTaskArn, "ecs-task-arn", 7},
      {Field::kEcsTaskId, "ecs-task-id", 7},
      {Field::kRejectReason, "reject-reason", 8},
      {Field::kVpcguardRule, "vpcguard-rule", 0},
      {Field::kVpcguardReason, "vpcguard-reason", 0},
  };
}

// Levenshtein distance, for "did you mean" hints on misspelt field names.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool isBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

const std::vector<FieldInfo>& allFields() {
  static const std::vector<FieldInfo> fields = makeFields();
  return fields;
}

const FieldInfo& fieldInfo(Field f) { return allFields()[static_cast<size_t>(f)]; }

std::optional<Field> fieldByName(std::string_view name) {
  for (const auto& info : allFields()) {
    if (info.name == name) {
      return info.field;
    }
  }
  return std::nullopt;
}

tl::expected<std::vector<Field>, FormatError> parseFormat(std::string_view format) {
  if (std::all_of(format.begin(), format.end(), isBlank)) {
    format = kDefaultFormat;
  }
  std::vector<Field> fields;
  size_t i = 0;
  while (i < format.size()) {
    if (isBlank(format[i])) {
      ++i;
      continue;
    }
    if (format.compare(i, 2, "${") != 0) {
      return tl::unexpected(FormatError{
          i, fmt::format("unexpected text '{}': a format is ${{field}} tokens separated by spaces",
                         format.substr(i, format.find_first_of(" \t", i) - i))});
    }
    const size_t close = format.find('}', i + 2);
    if (close == std::string_view::npos) {
      return tl::unexpected(FormatError{i, "'${' without a closing '}'"});
    }
    const std::string_view name = format.substr(i + 2, close - i - 2);
    const auto field = fieldByName(name);
    if (!field) {
      std::string hint;
      size_t best = 4;
      for (const auto& info : allFields()) {
        const size_t d = editDistance(name, info.name);
        if (d < best) {
          best = d;
          hint = fmt::format(" (did you mean '{}'?)", info.name);
        }
      }
      return tl::unexpected(FormatError{i, fmt::format("unknown field '{}'{}", name, hint)});
    }
    if (std::find(fields.begin(), fields.end(), *field) != fields.end()) {
      return tl::unexpected(FormatError{i, fmt::format("field '{}' is listed twice", name)});
    }
    fields.push_back(*field);
    i = close + 1;
    if (i < format.size() && !isBlank(format[i])) {
      return tl::unexpected(
          FormatError{i, "fields must be separated by spaces (AWS writes records space separated)"});
    }
  }
  return fields;
}

int formatVersion(const std::vector<Field>& fields) {
  int version = 2;
  for (Field f : fields) {
    version = std::max(version, fieldInfo(f).version);
  }
  return version;
}

std::string headerLine(const std::vector<Field>& fields) {
  std::string line;
  for (Field f : fields) {
    if (!line.empty()) {
      line += ' ';
    }
    line += fieldInfo(f).name;
  }
  return line;
}

}  // namespace vpcguard::flowlog
