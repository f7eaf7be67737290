#include "api/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace vpcguard::api {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::string errnoText(int err) { return std::strerror(err); }

// Replaces every string "Text" member below `node` by its size and digest.
void digestTexts(Json& node) {
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == "Text" && it.value().is_string()) {
        const auto& text = it.value().get_ref<const std::string&>();
        it.value() = Json{{"Bytes", text.size()}, {"Sha256", sha256Hex(text)}};
      } else {
        digestTexts(it.value());
      }
    }
  } else if (node.is_array()) {
    for (auto& element : node) {
      digestTexts(element);
    }
  }
}

// "tls:198.51.100.7:40112" -> "198.51.100.7", "tls:[2001:db8::1]:443" -> "2001:db8::1".
std::string sourceAddress(const std::string& source) {
  if (source.rfind("tls:", 0) != 0) {
    return "";
  }
  std::string rest = source.substr(4);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    return rest;
  }
  rest.resize(colon);
  if (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']') {
    rest = rest.substr(1, rest.size() - 2);
  }
  return rest;
}

Result<void> writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return makeError(errnoText(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

// Reads [from, to) of `fd`.
Result<std::string> readRange(int fd, off_t from, off_t to) {
  std::string data(static_cast<size_t>(to - from), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + done, data.size() - done,
                              from + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return makeError(errnoText(errno));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

// Offset just after the last '\n' strictly before `end` (0 when there is none).
Result<off_t> afterLastNewline(int fd, off_t end) {
  constexpr off_t kChunk = 64 * 1024;
  off_t pos = end;
  while (pos > 0) {
    const off_t from = pos > kChunk ? pos - kChunk : 0;
    auto chunk = readRange(fd, from, pos);
    if (!chunk) return tl::unexpected(chunk.error());
    const auto nl = chunk->rfind('\n');
    if (nl != std::string::npos) {
      return from + static_cast<off_t>(nl) + 1;
    }
    pos = from;
  }
  return 0;
}

}  // namespace

std::string auditNow() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buffer, static_cast<int>(ms % 1000));
}

std::string sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return "";
  }
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

Json auditParameters(const std::string& action, const Json& parameters) {
  Json copy = parameters;
  if (action == "ApplyConfig" || action == "PlanConfig") {
    digestTexts(copy);
  }
  // A request may be large (a denied or malformed one too): every record is read by whoever
  // follows the Audit table, so an oversized one keeps only its size and digest.
  constexpr size_t kMaxAuditParameterBytes = 64 * 1024;
  const std::string dumped = copy.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (dumped.size() > kMaxAuditParameterBytes) {
    return Json{{"Truncated", true}, {"Bytes", dumped.size()}, {"Sha256", sha256Hex(dumped)}};
  }
  return copy;
}

std::string auditLine(const state::AuditRecord& record) {
  OrderedJson line;
  line["eventVersion"] = "1.0";
  line["eventTime"] = record.event_time;
  line["eventSource"] = "vpcguard";
  std::string name = record.action;
  if (name.rfind("ec2:", 0) == 0) {
    name = name.substr(4);
  }
  line["eventName"] = name;
  const bool certificate = record.principal.rfind("cert:", 0) == 0;
  line["userIdentity"] = {{"type", certificate ? "Certificate" : "Unix"},
                          {"principal", record.principal}};
  const std::string address = sourceAddress(record.source);
  if (!address.empty()) {
    line["sourceIPAddress"] = address;
  }
  line["source"] = record.source;
  // Stored as text; a record that is not JSON (never written by us) is kept as a string.
  OrderedJson parameters = OrderedJson::parse(record.request_parameters, nullptr, false);
  if (parameters.is_discarded()) {
    parameters = record.request_parameters;
  }
  line["requestParameters"] = std::move(parameters);
  line["result"] = record.result;
  line["errorCode"] = record.error_code.empty() ? OrderedJson() : OrderedJson(record.error_code);
  line["errorMessage"] =
      record.error_message.empty() ? OrderedJson() : OrderedJson(record.error_message);
  line["eventID"] = record.sequence;
  line["stateGeneration"] = record.generation;
  return line.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

Result<AuditLog> AuditLog::open(const std::filesystem::path& path, bool sync) {
  const std::string where = "audit log " + path.string();
  if (path.has_parent_path()) {
    std::error_code ec;
    if (!std::filesystem::exists(path.parent_path(), ec)) {
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) {
        return makeError(where + ": create directory: " + ec.message());
      }
      ::chmod(path.parent_path().c_str(), 0755);
    }
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return makeError(where + ": " + errnoText(errno));
  }
  AuditLog log(path, fd, 0, sync);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return makeError(where + ": " + errnoText(errno));
  }
  // A crash in the middle of an append leaves a line without its newline: cut it off, the
  // catch-up from the database writes it again whole.
  auto complete_end = afterLastNewline(fd, st.st_size);
  if (!complete_end) {
    return makeError(where + ": " + complete_end.error().message);
  }
  if (*complete_end != st.st_size) {
    if (::ftruncate(fd, *complete_end) != 0) {
      return makeError(where + ": cut torn last line: " + errnoText(errno));
    }
  }
  if (*complete_end > 0) {
    auto line_start = afterLastNewline(fd, *complete_end - 1);
    if (!line_start) {
      return makeError(where + ": " + line_start.error().message);
    }
    auto line = readRange(fd, *line_start, *complete_end - 1);
    if (!line) {
      return makeError(where + ": " + line.error().message);
    }
    const Json parsed = Json::parse(*line, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("eventID") ||
        !parsed["eventID"].is_number_integer()) {
      return makeError(where + ": the last line is not an audit record (byte " +
                       std::to_string(*line_start) +
                       "); move the file aside to start a new one");
    }
    log.last_sequence_ = parsed["eventID"].get<int64_t>();
  }
  return log;
}

AuditLog::AuditLog(AuditLog&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      last_sequence_(other.last_sequence_),
      sync_(other.sync_) {}

AuditLog& AuditLog::operator=(AuditLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    last_sequence_ = other.last_sequence_;
    sync_ = other.sync_;
  }
  return *this;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> AuditLog::append(const state::AuditRecord& record) {
  // One write() per line: O_APPEND keeps concurrent writers' lines whole, and a crash leaves at
  // most one torn line, which open() cuts off.
  if (auto r = writeAll(fd_, auditLine(record) + "\n"); !r) {
    return makeError("audit log " + path_.string() + ": " + r.error().message);
  }
  if (sync_ && ::fdatasync(fd_) != 0) {
    return makeError("audit log " + path_.string() + ": fdatasync: " + errnoText(errno));
  }
  last_sequence_ = record.sequence;
  return {};
}

Result<size_t> AuditLog::appendNewer(const std::vector<state::AuditRecord>& records) {
  size_t written = 0;
  for (const auto& record : records) {
    if (record.sequence <= last_sequence_) continue;
    if (auto r = append(record); !r) return tl::unexpected(r.error());
    ++written;
  }
  return written;
}

}  // namespace vpcguard::api
