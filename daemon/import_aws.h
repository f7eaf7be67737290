#pragma once
// `vpcguardctl import-aws`: turns the JSON that `aws ec2 describe-vpcs`, `describe-subnets`,
// `describe-security-groups`, `describe-network-acls`, `describe-network-interfaces`,
// `describe-managed-prefix-lists`, `describe-flow-logs` and `describe-traffic-mirror-targets`,
// `-filters` and `-sessions` print into a vpcguard TOML config (docs/import-aws.md).
//
// Design: reading files (I/O) and converting (pure) are apart, so the conversion is tested on
// in-memory JSON. importAws() never drops an AWS object or rule silently: whatever vpcguard
// cannot represent becomes an ImportWarning naming the object; only input that cannot be
// converted at all (no VPC, several VPCs and no --vpc-id) is an Error.

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "translator/result.h"

namespace vpcguard {

// One parsed input file; `source` names it in warnings and in the generated header comment.
struct AwsDocument {
  std::string source;
  nlohmann::json json;
};

struct ImportAwsOptions {
  std::optional<std::string> vpc_id;  // required when the input holds several VPCs
  std::optional<std::string> region;  // else derived from availability zones
};

struct ImportWarning {
  std::string source;     // input file the object came from ("" = the input as a whole)
  std::string object_id;  // AWS id of the object concerned ("" = the input as a whole)
  std::string message;
};

struct ImportAwsOutput {
  std::string toml;
  std::vector<ImportWarning> warnings;
};

// Parses one file's text. Malformed JSON is an Error naming the file, line, column and byte
// offset (nlohmann's exception is caught here: nothing throws past this function).
[[nodiscard]] Result<AwsDocument> parseAwsDocument(std::string source, std::string_view text);

// The pure conversion: documents in, TOML text and warnings out. Deterministic: the same input
// gives byte-identical output whatever the order of objects inside the files.
[[nodiscard]] Result<ImportAwsOutput> importAws(const std::vector<AwsDocument>& documents,
                                                const ImportAwsOptions& options);

// "warning: sg-0abc: ... [file.json]" as printed on stderr and in the TOML header.
[[nodiscard]] std::string formatWarning(const ImportWarning& warning);

// Exit codes of `vpcguardctl import-aws` (documented in docs/import-aws.md).
inline constexpr int kImportOk = 0;
inline constexpr int kImportBadInput = 1;   // malformed JSON, no/ambiguous VPC, --strict + warnings
inline constexpr int kImportIoError = 2;    // an input file unreadable or the output unwritable

struct ImportAwsCommand {
  std::vector<std::string> files;  // "-" = standard input
  std::string output;              // "" or "-" = standard output
  ImportAwsOptions options;
  bool strict = false;  // warnings make the command fail and no config is written
};

// The subcommand: reads the files, converts, writes the config, reports on `err`.
[[nodiscard]] int runImportAws(const ImportAwsCommand& command, std::ostream& out,
                               std::ostream& err);

}  // namespace vpcguard
