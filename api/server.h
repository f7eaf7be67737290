#pragma once
// vpcguard-apid's server (docs/api.md): the control API on a Unix socket and, optionally, on TCP
// with TLS and client certificates. It authenticates each peer (SO_PEERCRED / the verified
// client certificate), authorizes each request with IAM (api/iam.h), runs the action on the
// desired state (api/actions.h), validates the result like a config file and commits it to the
// state database (state/store.h) together with the request's audit record (api/audit.h).
//
// Design: one thread, one poll() loop over the listeners, the connections, the state
// database's socket, a signalfd and a timer, as vpcguardd's loop. Requests are handled one at a
// time, start to finish, between two polls: an action is a pure function on the in-memory
// policy, so the only wait inside a request is the database transaction, bounded by the OVSDB
// client's request timeout. Concurrency between servers (or with `vpcguardctl apply`) is the
// database's: every change is guarded by the state generation it was computed from, and a
// request that loses the race is run again on the newer state.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "translator/result.h"

namespace vpcguard::api {

struct ServerOptions {
  std::filesystem::path socket_path = "/run/vpcguard/api.sock";
  std::string socket_group;  // empty: the server's own group
  // TLS: "HOST:PORT" ("[::1]:8443", "0.0.0.0:8443"); empty = no TCP listener. With it, cert,
  // key and CA are required; clients must present a certificate the CA signed.
  std::string tls_listen;
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  std::filesystem::path tls_ca;
  std::filesystem::path audit_log = "/var/log/vpcguard/audit.log";
  bool audit_fsync = false;
  std::filesystem::path iam_dir = "/etc/vpcguard/iam";
  std::string state = "unix:/run/vpcguard/state.sock";
  // A connection must send a complete request line within this time (after connecting or after
  // its previous response); also the OVSDB client's request timeout.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  size_t max_connections = 256;
};

// Exit codes of vpcguard-apid (docs/api.md).
inline constexpr int kExitOk = 0;          // stopped by SIGTERM/SIGINT
inline constexpr int kExitStartup = 1;     // could not start: IAM, socket, TLS, audit log
inline constexpr int kExitUsage = 2;       // bad command line

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads IAM, opens the audit log, binds the listeners, makes the first attempt to reach the
  // state database (later attempts are made by run()). An error names what failed.
  [[nodiscard]] Result<void> start();
  // Serves until SIGTERM/SIGINT (blocked in the calling thread and read by a signalfd) or
  // stop(); returns an exit code.
  [[nodiscard]] int run();
  // From any thread: makes run() return.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vpcguard::api
