#pragma once
// One named spdlog logger per component ("daemon", "ovs", "config", ...), all writing to stderr
// in `event key=value` form. The level is set once at start-up and can be changed at run time
// (`vpcguardctl log-level`, through the control socket: daemon/control_socket.h).
//
// Under systemd, stderr is often a stream to journald (it then sets JOURNAL_STREAM to that
// stream's "device:inode"). Lines then start with the syslog priority journald reads ("<6>" for
// info, "<4>" for warn, ...) and carry no timestamp of ours: journald stamps them itself.
// Anywhere else (a terminal, a file, an init script's log) lines are unchanged.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace vpcguard {

// Returns the component's logger, creating it on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Sets the level of every logger ("trace", "debug", "info", "warn", "error", "critical", "off").
// False if unknown.
bool setLogLevel(const std::string& level);

// The current level's name ("info", ...).
[[nodiscard]] std::string logLevel();

// Whether `journal_stream` (the value of JOURNAL_STREAM, "device:inode", may be null) names the
// file `fd` is open on: then that fd is connected to journald.
[[nodiscard]] bool isJournalStream(const char* journal_stream, int fd);

// Whether log lines go to journald (decided once, from JOURNAL_STREAM and stderr).
[[nodiscard]] bool logsToJournal();

// The journald priority prefix of a level: "<3>" (error), "<4>" (warn), "<6>" (info), "<7>"
// (debug, trace), "<2>" (critical).
[[nodiscard]] const char* journalPriority(spdlog::level::level_enum level);

}  // namespace vpcguard
