#pragma once
// A private ovsdb-server serving vpcguard's own database (state/vpcguard.ovsschema) for one
// test: `ovsdb-tool create` in a temp dir /tmp/vgt.XXXXXX (the naming tests/cleanup-leftovers.sh
// knows), the server as our child (PDEATHSIG, so it dies with the test) listening on
// punix:<dir>/state.sock with mode 0600 in a 0700 dir: reachable by root only, as the issue
// requires of the real database socket.
//
// kill9() + restart() exercise what ovsdb-server's log promises: every committed transaction
// survives a kill -9, and nothing of an uncommitted one.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "tests/harness/process.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::test {

// Every field of `policy` as indented JSON, for comparing a policy with what the database gives
// back: SourceLocation and field_locations are left out (the database does not keep them) and
// top-level objects are sorted by id (the database keeps no order between them); rules and
// entries keep their order. Written independently of state/rows.cpp on purpose.
[[nodiscard]] std::string policyContent(const model::Policy& policy);

class StateServer {
 public:
  // Why no server can run here (no ovsdb-server / ovsdb-tool), or nullopt.
  [[nodiscard]] static std::optional<std::string> unavailableReason();

  [[nodiscard]] static Result<std::unique_ptr<StateServer>> start();
  ~StateServer();  // kills the server and removes the dir (kept with VPCGUARD_KEEP_SANDBOX=1)
  StateServer(const StateServer&) = delete;
  StateServer& operator=(const StateServer&) = delete;

  // "unix:<dir>/state.sock", for state::StateStore::open().
  [[nodiscard]] std::string target() const { return "unix:" + socketPath(); }
  [[nodiscard]] std::string socketPath() const { return dir_ + "/state.sock"; }
  [[nodiscard]] std::string dbPath() const { return dir_ + "/state.db"; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  // 0 when the server is not running.
  [[nodiscard]] pid_t pid() const;

  // SIGKILL, no chance to clean up (its socket file stays behind, as after a crash).
  void kill9();
  // Starts the server again on the same database file (after kill9(), or to restart it).
  [[nodiscard]] Result<void> restart();

 private:
  StateServer() = default;
  [[nodiscard]] Result<void> startServer();
  void cleanup();

  std::string dir_;
  std::unique_ptr<ChildProcess> server_;
  int signal_cleanup_id_ = -1;
};

}  // namespace vpcguard::test
