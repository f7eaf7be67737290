#pragma once
// The fields of a VPC flow-log record and the AWS `${field}` format syntax (CreateFlowLogs
// --log-format). Pure: used by validation (an unknown field is a config error) and by the record
// writer (flowlogs/), so both agree on what a format means.
//
// A format is a space-separated list of `${name}` tokens. AWS's default (version 2) is
//   ${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport}
//   ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}
// Fields AWS defines that mean nothing on a single host (az-id, sublocation-*, the aws-service
// fields, ecs-*) are accepted and always written as `-`, as AWS writes fields it cannot fill.
// vpcguard's own fields (opt-in): ${vpcguard-rule} (the SG rule or NACL entry that decided) and
// ${vpcguard-reason} (why a packet was rejected).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "translator/result.h"

namespace vpcguard::flowlog {

enum class Field : uint8_t {
  // version 2 (the default format)
  kVersion,
  kAccountId,
  kInterfaceId,
  kSrcAddr,
  kDstAddr,
  kSrcPort,
  kDstPort,
  kProtocol,
  kPackets,
  kBytes,
  kStart,
  kEnd,
  kAction,
  kLogStatus,
  // version 3
  kVpcId,
  kSubnetId,
  kInstanceId,
  kTcpFlags,
  kType,
  kPktSrcAddr,
  kPktDstAddr,
  // version 4
  kRegion,
  kAzId,
  kSublocationType,
  kSublocationId,
  // version 5
  kPktSrcAwsService,
  kPktDstAwsService,
  kFlowDirection,
  kTrafficPath,
  // version 7 (ECS), accepted and always "-"
  kEcsClusterArn,
  kEcsClusterName,
  kEcsContainerInstanceArn,
  kEcsContainerInstanceId,
  kEcsContainerId,
  kEcsSecondContainerId,
  kEcsServiceName,
  kEcsTaskDefinitionArn,
  kEcsTaskArn,
  kEcsTaskId,
  // version 8
  kRejectReason,
  // vpcguard's own (no AWS version)
  kVpcguardRule,
  kVpcguardReason,
};

struct FieldInfo {
  Field field;
  std::string_view name;  // as written in ${...} and in the file's header line
  int version;            // AWS format version that introduced it; 0 = vpcguard's own
};

// Every field, in the enum's order.
[[nodiscard]] const std::vector<FieldInfo>& allFields();
[[nodiscard]] const FieldInfo& fieldInfo(Field f);
[[nodiscard]] std::optional<Field> fieldByName(std::string_view name);

inline constexpr std::string_view kDefaultFormat =
    "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} "
    "${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}";

struct FormatError {
  size_t offset = 0;  // byte offset in the format string where the problem starts
  std::string message;
};

// Parses a format; an empty or all-blank string gives the default format. Errors: text outside
// `${...}`, an unclosed `${`, an unknown field name (the message names it and, where one is
// close, suggests the right spelling), a field listed twice.
[[nodiscard]] tl::expected<std::vector<Field>, FormatError> parseFormat(std::string_view format);

// The value of ${version} for records in this format: the highest AWS version among its fields
// (2 at least), as AWS does.
[[nodiscard]] int formatVersion(const std::vector<Field>& fields);

// The header line of a log file in this format: the field names, space separated.
[[nodiscard]] std::string headerLine(const std::vector<Field>& fields);

}  // namespace vpcguard::flowlog
