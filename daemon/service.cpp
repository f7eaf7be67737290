#include "daemon/service.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

// sd_notify(3) and sd_watchdog_enabled(3) from libsystemd (Debian libsystemd-dev) rather than our
// own copy of the notification protocol (abstract sockets, WATCHDOG_PID checks, ...).
#include <systemd/sd-daemon.h>

#include "daemon/logging.h"

namespace vpcguard {

ServiceNotifier::ServiceNotifier(Clock::time_point now) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is our pid.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_ = std::chrono::microseconds(usec);
  }
  next_ping_ = now + watchdog_ / 2;
}

std::string ServiceNotifier::statusLine(const std::string& status) {
  std::string line = status.substr(0, kMaxStatus);
  std::replace_if(line.begin(), line.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return line;
}

bool ServiceNotifier::send(const std::string& message) {
  if (!enabled_) {
    return true;
  }
  const int r = sd_notify(0, message.c_str());
  if (r < 0 && !send_failed_) {
    send_failed_ = true;
    logger("daemon")->warn("service_notify_failed socket={} error=\"{}\"",
                           std::getenv("NOTIFY_SOCKET") ? std::getenv("NOTIFY_SOCKET") : "",
                           std::strerror(-r));
  } else if (r > 0) {
    send_failed_ = false;
  }
  return r > 0;
}

void ServiceNotifier::ready(const std::string& status) {
  if (ready_) {
    this->status(status);
    return;
  }
  // Not sent (the manager's socket not there yet): tried again with the next status.
  const std::string line = statusLine(status);
  if (!send("READY=1\nSTATUS=" + line)) {
    return;
  }
  ready_ = true;
  last_status_ = line;
  if (enabled_) {
    logger("daemon")->info("service_ready status=\"{}\"", last_status_);
  }
}

void ServiceNotifier::status(const std::string& status) {
  std::string line = statusLine(status);
  if (line == last_status_) {
    return;
  }
  if (send("STATUS=" + line)) {
    last_status_ = std::move(line);
  }
}

void ServiceNotifier::stopping(const std::string& status) {
  last_status_ = statusLine(status);
  send("STOPPING=1\nSTATUS=" + last_status_);
}

void ServiceNotifier::tick(Clock::time_point now) {
  if (watchdog_.count() == 0 || now < next_ping_) {
    return;
  }
  send("WATCHDOG=1");
  next_ping_ = now + watchdog_ / 2;
}

std::chrono::milliseconds ServiceNotifier::untilNextPing(Clock::time_point now) const {
  if (watchdog_.count() == 0) {
    return std::chrono::hours(24);
  }
  if (now >= next_ping_) {
    return std::chrono::milliseconds(0);
  }
  // Rounded up: waking a little early would only loop once more without pinging.
  return std::chrono::ceil<std::chrono::milliseconds>(next_ping_ - now);
}

}  // namespace vpcguard
