#pragma once
// The API server's audit trail (docs/api.md, "Audit log").
//
// Design: the Audit table of the state database is the source of truth. A record is inserted in
// the same OVSDB transaction as the change it describes (or alone, for reads and refusals), so a
// change and its record exist together or not at all. The log file is a copy for people and log
// shippers: one CloudTrail-like JSON object per line, appended only AFTER the record is
// committed, in sequence order. A crash between commit and append, or in the middle of an
// append, is repaired at the next start: the torn last line is cut off and every database record
// above the file's last sequence is appended. A line is a pure function of the database record,
// so a line written live and one written by that catch-up are the same bytes.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "state/store.h"
#include "translator/result.h"

namespace vpcguard::api {

// RFC 3339 UTC with milliseconds ("2026-12-06T22:39:02.123Z") of the current time.
[[nodiscard]] std::string auditNow();

// What the audit record keeps of a request's parameters: the Parameters as sent, except that
// ApplyConfig/PlanConfig documents are replaced by their size and digest (every string field
// named "Text" becomes {"Bytes": n, "Sha256": "<hex>"}), so that a large configuration does not
// fill the log.
[[nodiscard]] Json auditParameters(const std::string& action, const Json& parameters);

// The log line of a record (without the trailing newline).
[[nodiscard]] std::string auditLine(const state::AuditRecord& record);

// lowercase hex SHA-256 of `data` (OpenSSL EVP).
[[nodiscard]] std::string sha256Hex(std::string_view data);

// The append-only file. Not thread-safe.
class AuditLog {
 public:
  // Opens (creates, mode 0640, parent directories 0755) `path` for appending, cuts off a torn
  // last line and reads the sequence of the last complete one (0 for an empty file).
  // `sync`: fsync after every append.
  [[nodiscard]] static Result<AuditLog> open(const std::filesystem::path& path, bool sync = true);

  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&& other) noexcept;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Sequence of the last record in the file.
  [[nodiscard]] int64_t lastSequence() const { return last_sequence_; }

  // Appends `records` whose sequence is above lastSequence(), in the order given (callers pass
  // them sorted by sequence). Returns how many were written.
  [[nodiscard]] Result<size_t> appendNewer(const std::vector<state::AuditRecord>& records);
  // Appends one record unconditionally (a record below lastSequence() comes from a database
  // that was reset; it is still written, and lastSequence() follows it).
  [[nodiscard]] Result<void> append(const state::AuditRecord& record);

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  AuditLog(std::filesystem::path path, int fd, int64_t last, bool sync)
      : path_(std::move(path)), fd_(fd), last_sequence_(last), sync_(sync) {}

  std::filesystem::path path_;
  int fd_ = -1;
  int64_t last_sequence_ = 0;
  bool sync_ = true;
};

}  // namespace vpcguard::api
