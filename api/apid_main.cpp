// vpcguard-apid: the control API server (docs/api.md). Wires the command line to api::Server.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "api/server.h"

int main(int argc, char** argv) {
  CLI::App app{
      "vpcguard-apid: the vpcguard control API.\n"
      "Serves AWS EC2-shaped requests (newline-delimited JSON) on a Unix socket and optionally\n"
      "on TCP with TLS client certificates; authorizes each with IAM policies, commits changes\n"
      "to the state database and records every request in the audit log."};
  vpcguard::api::ServerOptions options;
  std::string socket_path = options.socket_path.string();
  std::string audit_log = options.audit_log.string();
  std::string iam_dir = options.iam_dir.string();
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  int request_timeout_ms = static_cast<int>(options.request_timeout.count());
  bool audit_fsync = false;
  std::string log_level = "info";
  app.set_config("--settings", "", "Settings file (TOML; keys are these option names)");
  app.add_option("--socket", socket_path, "Unix socket to listen on")->capture_default_str();
  app.add_option("--socket-group", options.socket_group,
                 "Group that owns the socket (mode 0660): its members may connect");
  app.add_option("--tls-listen", options.tls_listen,
                 "Also listen on TCP with TLS at HOST:PORT ([IPV6]:PORT)");
  app.add_option("--tls-cert", tls_cert, "Server certificate (PEM, chain)");
  app.add_option("--tls-key", tls_key, "Server private key (PEM)");
  app.add_option("--tls-ca", tls_ca, "CA certificates that sign client certificates (PEM)");
  app.add_option("--iam", iam_dir, "IAM directory: policy documents and bindings.json")
      ->capture_default_str();
  app.add_option("--state", options.state, "State database (unix:PATH or tcp:HOST:PORT)")
      ->capture_default_str();
  app.add_option("--audit-log", audit_log, "Audit log file (one JSON record per line)")
      ->capture_default_str();
  // Off by default: the database is the audit's source of truth and the file is caught up from
  // it at start, so an fsync per record (6.5 ms here) buys nothing across a crash of any process.
  app.add_flag("--audit-fsync,!--no-audit-fsync", audit_fsync,
               "fdatasync the audit log after each record (only matters across a power failure)");
  app.add_option("--request-timeout-ms", request_timeout_ms,
                 "A connection must send a complete request within this time; also the state "
                 "database's request timeout")
      ->capture_default_str()
      ->check(CLI::Range(10, 3600000));
  app.add_option("--max-connections", options.max_connections, "Connections served at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return vpcguard::api::kExitUsage;
  }
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::fprintf(stderr, "vpcguard-apid: unknown --log-level '%s'\n", log_level.c_str());
    return vpcguard::api::kExitUsage;
  }
  spdlog::set_level(level);
  options.socket_path = socket_path;
  options.audit_log = audit_log;
  options.iam_dir = iam_dir;
  options.tls_cert = tls_cert;
  options.tls_key = tls_key;
  options.tls_ca = tls_ca;
  options.audit_fsync = audit_fsync;
  options.request_timeout = std::chrono::milliseconds(request_timeout_ms);

  vpcguard::api::Server server(options);
  if (auto started = server.start(); !started) {
    std::fprintf(stderr, "vpcguard-apid: %s\n", started.error().message.c_str());
    return vpcguard::api::kExitStartup;
  }
  return server.run();
}
