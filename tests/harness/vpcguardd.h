#pragma once
// The real vpcguardd binary against a sandbox, for tests that stop and start it: every start
// gets a log file of its own (so a test reads what this run said), the status file is shared,
// and "synced" means this process has finished a sync (its pid in the status file, with a
// last_sync). The process is our child with PDEATHSIG, so it dies with the test.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/status.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/process.h"
#include "translator/result.h"

namespace vpcguard::test {

class Vpcguardd {
 public:
  struct Options {
    std::string config;  // policy file
    // Or the state database to follow ("unix:PATH"): started with --state instead of --config.
    std::string state;
    std::string bridge = "br-int";
    std::string datapath_type = "netdev";
    std::string log_level = "debug";
    std::vector<std::string> extra;  // more flags, e.g. {"--resync-interval", "1"}
  };

  Vpcguardd(const OvsSandbox& sandbox, Options options);
  ~Vpcguardd();
  Vpcguardd(const Vpcguardd&) = delete;
  Vpcguardd& operator=(const Vpcguardd&) = delete;

  // Starts a new process (the previous one must have exited).
  [[nodiscard]] Result<void> start();
  // Sends `sig` and waits for the exit (SIGKILL after 10 s); false if it had to be killed.
  bool stop(int sig);
  [[nodiscard]] bool running() { return process_ && process_->running(); }
  [[nodiscard]] pid_t pid() const { return process_ ? process_->pid() : 0; }

  // The status file as this process last wrote it; an error before it wrote one.
  [[nodiscard]] Result<DaemonStatus> status() const;
  // Waits until this process has completed a sync and says it is connected.
  [[nodiscard]] bool waitSynced(std::chrono::milliseconds timeout);

  [[nodiscard]] const std::string& statusFile() const { return status_file_; }
  [[nodiscard]] const std::string& logPath() const { return log_; }
  // This start's log.
  [[nodiscard]] std::string log() const;
  // The last `lines` lines of this start's log, for failure messages.
  [[nodiscard]] std::string logTail(int lines = 40) const;
  // How many lines of this start's log contain `needle`.
  [[nodiscard]] size_t countInLog(const std::string& needle) const;
  [[nodiscard]] int starts() const { return starts_; }

 private:
  const OvsSandbox& sandbox_;
  Options options_;
  std::string status_file_;
  std::string log_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace vpcguard::test
