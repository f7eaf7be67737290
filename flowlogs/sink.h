#pragma once
// Where flow-log files go. RecordSink is the boundary (S3-compatible or Kafka sinks can follow);
// FileSink writes AWS's S3 layout under a local directory (`file:///dir`):
//   <dir>/AWSLogs/<account>/vpcflowlogs/<region>/<yyyy>/<mm>/<dd>/
//       <account>_vpcflowlogs_<region>_<flow-log-id>_<yyyymmddThhmmZ>_<hash>.log.gz
// gzip text: the header line (the format's field names), then one record per line. The time in
// the path is the UTC of the batch's interval start (AWS uses the delivery time; the interval
// start makes the name reproducible); <hash> is 8 hex digits of the FNV-1a hash of the content,
// so two batches of the same minute (e.g. two accounts' files, or a flushAll) do not collide.
//
// A file appears whole or not at all: written to ".<name>.XXXXXX" in the same directory,
// fsync'ed, renamed, then the directory is fsync'ed.

#include <memory>
#include <string>

#include "flowlogs/record.h"
#include "translator/result.h"

namespace vpcguard::flowlog {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // Publishes one file; returns where it went (a path, an object URL). A file without records
  // publishes nothing and returns an empty string.
  [[nodiscard]] virtual Result<std::string> publish(const LogFile& file) = 0;
};

class FileSink : public RecordSink {
 public:
  explicit FileSink(std::string dir) : dir_(std::move(dir)) {}
  [[nodiscard]] Result<std::string> publish(const LogFile& file) override;
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// The file's text: header line, then each record line, each ending in '\n'.
[[nodiscard]] std::string fileText(const LogFile& file);
// The path of the file relative to the destination (AWSLogs/...), for this text.
[[nodiscard]] std::string objectKey(const LogFile& file, const std::string& text);
// gzip (RFC 1952) of `data`, deterministic (no timestamp in the header).
[[nodiscard]] Result<std::string> gzipCompress(const std::string& data);

// "file:///dir" -> a FileSink on /dir. Other schemes: an error naming the destination.
[[nodiscard]] Result<std::unique_ptr<RecordSink>> makeSink(const std::string& destination);

}  // namespace vpcguard::flowlog
