#pragma once
// vpcguardd as a systemd service (Type=notify): readiness, a one-line status, watchdog pings
// and "stopping", sent to the service manager's notification socket (sd_notify(3)).
//
// Without NOTIFY_SOCKET in the environment (a plain foreground process, an init script) every
// call is a no-op. The watchdog is pinged from the daemon's main loop only, at half the interval
// systemd asks for (WATCHDOG_USEC), so a loop that hangs stops the pings and systemd restarts
// the daemon.
#include <chrono>
#include <string>

namespace vpcguard {

class ServiceNotifier {
 public:
  using Clock = std::chrono::steady_clock;

  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment. `now` starts the
  // first watchdog interval.
  explicit ServiceNotifier(Clock::time_point now = Clock::now());

  // Whether a service manager listens (NOTIFY_SOCKET is set).
  [[nodiscard]] bool enabled() const { return enabled_; }
  // The watchdog interval systemd enforces (0: no watchdog).
  [[nodiscard]] std::chrono::microseconds watchdogInterval() const { return watchdog_; }
  [[nodiscard]] bool isReady() const { return ready_; }

  // READY=1 with the status line; only the first call sends READY (later ones act as status()).
  void ready(const std::string& status);
  // STATUS=<line>, sent only when it differs from the last one sent.
  void status(const std::string& status);
  // STOPPING=1 with the status line (SIGTERM/SIGINT).
  void stopping(const std::string& status);
  // WATCHDOG=1 when half the watchdog interval has passed since the last ping.
  void tick(Clock::time_point now = Clock::now());
  // How long the main loop may sleep before the next ping is due (a day without a watchdog).
  [[nodiscard]] std::chrono::milliseconds untilNextPing(Clock::time_point now = Clock::now()) const;

  // A status line as sent: one line (newlines become spaces), at most kMaxStatus bytes.
  [[nodiscard]] static std::string statusLine(const std::string& status);
  static constexpr size_t kMaxStatus = 400;

 private:
  // False when it could not be sent (logged once).
  bool send(const std::string& message);

  bool enabled_ = false;
  bool ready_ = false;
  bool send_failed_ = false;  // logged once
  std::chrono::microseconds watchdog_{0};
  Clock::time_point next_ping_;
  std::string last_status_;
};

}  // namespace vpcguard
