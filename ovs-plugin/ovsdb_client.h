#pragma once
// A schema-agnostic OVSDB client: RFC 7047 JSON-RPC over a unix or TCP socket. Why not OVS's C
// IDL, and what we do instead of what the IDL would give us: docs/ovsdb.md.
//
// Single-threaded and event-loop friendly: requests (transact, monitor) block until their reply
// or a deadline, and everything else the server sends meanwhile (monitor updates, echo requests)
// is handled there too: echoes are answered at once, updates are queued for poll(). Between
// requests the owner waits for fd() to become readable and calls poll(). The client does not
// reconnect: a lost connection makes every call fail with an Error, and the owner connects again
// and re-creates its monitors (the initial monitor reply is then the full resync).

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "translator/result.h"

namespace vpcguard::ovs {

using Json = nlohmann::json;

// table -> columns to monitor (empty = every column).
using MonitorTables = std::map<std::string, std::vector<std::string>>;

// An "update" notification: the monitor it belongs to and its <table-updates>
// ({table: {uuid: {"old": row, "new": row}}}, RFC 7047 section 4.1.6).
struct OvsdbUpdate {
  Json monitor_id;
  Json table_updates;
};

class OvsdbClient {
 public:
  virtual ~OvsdbClient() = default;

  // Runs `operations` (a JSON array of RFC 7047 operations) as one transaction. On success the
  // array of per-operation results. If the server rejects the request or any operation fails,
  // an Error naming the failing operation (index, op, table) and the server's error/details.
  [[nodiscard]] virtual Result<Json> transact(const std::string& db, const Json& operations) = 0;

  // Starts monitor `id` and returns the initial <table-updates> (the current rows as "new").
  [[nodiscard]] virtual Result<Json> monitor(const std::string& db, const std::string& id,
                                             const MonitorTables& tables) = 0;
  [[nodiscard]] virtual Result<void> monitorCancel(const std::string& id) = 0;

  // Database names the server has.
  [[nodiscard]] virtual Result<std::vector<std::string>> listDbs() = 0;

  // Reads what has arrived, waiting up to `timeout` (0 = do not wait) for something when
  // nothing is queued. Answers echo requests. Returns the queued monitor updates (possibly
  // none); an Error once the connection is lost.
  [[nodiscard]] virtual Result<std::vector<OvsdbUpdate>> poll(std::chrono::milliseconds timeout) = 0;

  // How long the server has left our liveness probe unanswered (0: none outstanding). poll()
  // sends the probe (an "echo" request, without waiting) once the server has been silent for a
  // second: a stopped or hung ovsdb-server keeps the socket open and answers nothing.
  [[nodiscard]] virtual std::chrono::milliseconds unanswered() const { return {}; }

  // The socket, for the owner's event loop (readable = call poll(0)). -1 when disconnected.
  [[nodiscard]] virtual int fd() const = 0;
  [[nodiscard]] virtual bool connected() const = 0;
  [[nodiscard]] virtual std::string target() const = 0;
};

struct OvsdbOptions {
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  // How long a request waits for its reply before the connection is considered dead.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
};

// Connects to "unix:PATH" or "tcp:HOST:PORT" ("tcp:[::1]:6640" for IPv6).
[[nodiscard]] Result<std::unique_ptr<OvsdbClient>> connectOvsdb(const std::string& target,
                                                                const OvsdbOptions& options = {});

}  // namespace vpcguard::ovs
