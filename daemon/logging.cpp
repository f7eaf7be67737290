#include "daemon/logging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
// The priority prefixes journald understands (SD_ERR, SD_INFO, ...): from libsystemd's header,
// so the values are journald's own rather than numbers written down here.
#include <systemd/sd-daemon.h>

namespace vpcguard {
namespace {
std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;

// The pattern flag %* : the line's journald priority prefix.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    const char* prefix = journalPriority(msg.level);
    dest.append(prefix, prefix + std::strlen(prefix));
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

void setFormat(spdlog::logger& l) {
  if (logsToJournal()) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<PriorityFlag>('*').set_pattern("%*%n: %v");
    l.set_formatter(std::move(formatter));
  } else {
    l.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  }
}
}  // namespace

bool isJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr || *journal_stream == '\0') {
    return false;
  }
  // "<device>:<inode>", both decimal (systemd.exec(5)).
  char* end = nullptr;
  errno = 0;
  const unsigned long long dev = std::strtoull(journal_stream, &end, 10);
  if (errno != 0 || end == journal_stream || *end != ':') {
    return false;
  }
  const char* ino_start = end + 1;
  const unsigned long long ino = std::strtoull(ino_start, &end, 10);
  if (errno != 0 || end == ino_start || *end != '\0') {
    return false;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    return false;
  }
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

bool logsToJournal() {
  static const bool journal = isJournalStream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO);
  return journal;
}

const char* journalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return SD_CRIT;
    case spdlog::level::err:
      return SD_ERR;
    case spdlog::level::warn:
      return SD_WARNING;
    case spdlog::level::info:
      return SD_INFO;
    default:
      return SD_DEBUG;  // debug, trace
  }
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(component)) {
    return existing;
  }
  auto created = spdlog::stderr_logger_mt(component);
  setFormat(*created);
  created->set_level(g_level);
  return created;
}

bool setLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return false;
  }
  std::lock_guard lock(g_mutex);
  g_level = parsed;
  spdlog::apply_all([parsed](const std::shared_ptr<spdlog::logger>& l) { l->set_level(parsed); });
  return true;
}

std::string logLevel() {
  std::lock_guard lock(g_mutex);
  const auto name = spdlog::level::to_string_view(g_level);
  return {name.data(), name.size()};
}

}  // namespace vpcguard
