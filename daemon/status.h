#pragma once
// What vpcguardd reports about itself: written as JSON to a status file after every change of
// state (sync, reconnect, config load, error), read by `vpcguardctl status`. A file rather than
// a socket: it needs no running daemon to answer ("last seen ..."), survives a hung daemon, and
// is trivially readable by monitoring agents. The future control API will serve the same data.
#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "translator/result.h"

namespace vpcguard {

struct DaemonStatus {
  int pid = 0;
  std::string version;
  std::string bridge;
  std::string ovsdb;
  std::string openflow;
  std::string config;
  bool connected = false;
  uint16_t generation = 0;
  std::map<int, size_t> flows_per_table;
  size_t interfaces_attached = 0;
  std::string last_sync;  // ISO 8601 UTC, empty before the first
  double last_sync_ms = 0;
  std::string last_sync_reason;
  uint64_t drift_repairs = 0;
  std::string last_repair;    // when and what the last drift repair changed
  bool flow_monitor = false;  // drift is seen as it happens (else only by the periodic check)
  bool flow_restore_wait = false;  // other_config:flow-restore-wait was still set at last look
  // Empty while the switch answers; else which process does not answer, since when (a stopped
  // or hung ovs-vswitchd or ovsdb-server keeps its sockets open and answers nothing).
  std::string unresponsive;
  // Empty unless another controller keeps changing our flows back: what is seen and the
  // current back-off of repairs.
  std::string controller_fight;
  std::string config_loaded;  // when the policy in force was loaded
  std::string last_error;     // empty when the last operation succeeded
  std::string last_error_time;
  std::string updated;  // when this status was written
  // Where the policy comes from: "config:PATH" or "state:TARGET" (the vpcguard database).
  std::string source;
  // With a state database: the database generation of the policy in force (0: none applied yet),
  // the connection ("connected", "connecting", "reconnecting") and the last connection error,
  // and whether the database is still empty (nothing to apply; flows from before are kept).
  int64_t state_generation = 0;
  std::string state_connection;
  std::string state_error;
  bool state_waiting = false;
};

[[nodiscard]] std::string statusToJson(const DaemonStatus& status);
[[nodiscard]] Result<DaemonStatus> statusFromJson(const std::string& text);
// Reads and parses a status file; errors name the file (and say when it does not exist).
[[nodiscard]] Result<DaemonStatus> readStatusFile(const std::string& path);
// Write to a temporary file and rename, so readers never see half a status.
[[nodiscard]] Result<void> writeStatusFile(const std::string& path, const DaemonStatus& status);
[[nodiscard]] std::string nowIso8601();

// Default status file of a bridge: /var/run/vpcguard/<bridge>.status.json.
[[nodiscard]] std::string defaultStatusFile(const std::string& bridge);

struct StatusCommandOptions {
  std::string status_file;
  std::string bridge = "br-int";
  std::string output = "text";  // text | json
};
// `vpcguardctl status`: 0 running and connected, 1 running with a problem or not running,
// 2 no status file.
[[nodiscard]] int runStatusCommand(const StatusCommandOptions& options, std::ostream& out,
                                   std::ostream& err);

}  // namespace vpcguard
