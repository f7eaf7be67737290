#include "daemon/logging.h"

#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace vpcguard {
namespace {
std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(component)) {
    return existing;
  }
  auto created = spdlog::stderr_logger_mt(component);
  created->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
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

}  // namespace vpcguard
