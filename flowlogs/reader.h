#pragma once
// Reads flow-log files back (what FileSink, or AWS, wrote): every *.log.gz under a directory,
// each file's header line giving its fields, so files of different formats can be mixed.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "translator/result.h"

namespace vpcguard::flowlog {

struct ReadRecord {
  std::string path;  // the file it came from
  size_t line_number = 0;
  std::shared_ptr<const std::vector<std::string>> names;  // the file's header, shared per file
  std::vector<std::string> values;                        // one per name
  std::string line;                                       // the raw line

  // The value of a field, or nullopt when the file's format has no such field.
  [[nodiscard]] std::optional<std::string_view> value(std::string_view name) const;
  // start / end as numbers; nullopt when absent or "-".
  [[nodiscard]] std::optional<int64_t> number(std::string_view name) const;
};

struct ReadFilter {
  std::optional<std::string> interface_id;
  std::optional<std::string> action;       // "ACCEPT" / "REJECT"
  std::optional<int64_t> since;            // keeps records with end >= since
  std::optional<int64_t> until;            // keeps records with start <= until
  std::optional<std::string> flow_log_id;  // from the file name
};

struct ReadResult {
  std::vector<ReadRecord> records;  // sorted by start, then interface, then file and line
  std::vector<Error> errors;        // one per unreadable file or bad line, naming it
};

// gunzip a whole file (concatenated gzip members too).
[[nodiscard]] Result<std::string> readGzipFile(const std::string& path);
[[nodiscard]] Result<std::string> gunzip(const std::string& data);

// The flow-log id in an AWS file name (<account>_vpcflowlogs_<region>_<id>_<time>_<hash>.log.gz).
[[nodiscard]] std::optional<std::string> flowLogIdFromFileName(std::string_view file_name);

// Unix seconds ("1765015200") or ISO 8601 UTC ("2026-12-06T10:00:00Z", "2026-12-06T10:00Z",
// "2026-12-06").
[[nodiscard]] Result<int64_t> parseTime(std::string_view text);

// Every *.log.gz under `dir` (recursively). A missing directory is an error; a corrupt file is
// reported in `errors` and the others are still read.
[[nodiscard]] Result<ReadResult> readFlowLogs(const std::string& dir, const ReadFilter& filter);

}  // namespace vpcguard::flowlog
