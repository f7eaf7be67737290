#pragma once
// One named spdlog logger per component ("daemon", "ovs", "config", ...), all writing to stderr
// in `event key=value` form. The level is set once at start-up and can be changed at run time.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace vpcguard {

// Returns the component's logger, creating it on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Sets the level of every logger ("trace", "debug", "info", "warn", "error"). False if unknown.
bool setLogLevel(const std::string& level);

}  // namespace vpcguard
