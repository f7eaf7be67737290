#pragma once
// Running programs from tests. Two shapes:
//  - run(): a short shell command whose combined stdout+stderr we want, with a hard timeout, so a
//    hung ovs-vsctl cannot hang the test until ctest's much longer timeout;
//  - ChildProcess: a long-lived daemon (ovsdb-server, ovs-vswitchd) started in the foreground as
//    our child with PR_SET_PDEATHSIG=SIGKILL, so it dies with the test process even when ctest
//    SIGKILLs the test and no destructor runs. (Daemons started with --detach would outlive it.)

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "translator/result.h"

namespace vpcguard::test {

using namespace std::chrono_literals;

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N; -1 when it could not run or timed out
  std::string output;  // stdout and stderr, interleaved as written

  [[nodiscard]] bool ok() const { return exit_code == 0; }
};

// Runs `shell_command` with /bin/sh -c. On timeout the whole process group is killed and
// exit_code is -1 with a note appended to output.
[[nodiscard]] CommandResult run(const std::string& shell_command,
                                std::chrono::seconds timeout = 60s);

// Like run(), but an Error carrying the command and its output unless it exits 0.
[[nodiscard]] Result<std::string> runChecked(const std::string& shell_command,
                                             std::chrono::seconds timeout = 60s);

// Quotes `s` as one word for /bin/sh.
[[nodiscard]] std::string shellQuote(const std::string& s);

// Polls `condition` until it is true or `timeout` passes; true if it became true. For conditions
// that have no event to wait on (a socket that starts answering, a row that appears).
[[nodiscard]] bool waitFor(const std::function<bool()>& condition,
                           std::chrono::milliseconds timeout,
                           std::chrono::milliseconds interval = 20ms);

class ChildProcess {
 public:
  struct Options {
    std::vector<std::string> argv;  // argv[0] is looked up in PATH
    std::vector<std::string> env;   // extra "NAME=value" entries on top of our environment
    std::string output_path;        // stdout+stderr go here (appended); empty = /dev/null
  };

  // fork+exec; the child gets PR_SET_PDEATHSIG=SIGKILL and its own process group.
  [[nodiscard]] static Result<std::unique_ptr<ChildProcess>> spawn(const Options& options);

  ~ChildProcess();  // SIGKILLs the child if still running, and reaps it
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // False once the child has exited (reaps it).
  [[nodiscard]] bool running();
  void signal(int sig);
  // Waits for the child to exit; true if it did within `timeout`.
  [[nodiscard]] bool waitExit(std::chrono::milliseconds timeout);
  // SIGKILL, then reap.
  void kill();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool exited_ = false;
};

// Cleanup callbacks run when the test process gets SIGINT or SIGTERM (Ctrl-C, a CI runner giving
// up), so sandboxes do not outlive an interrupted run. Destructors still do the normal cleanup;
// SIGKILL is covered by PDEATHSIG plus tests/cleanup-leftovers.sh.
class SignalCleanup {
 public:
  [[nodiscard]] static int add(std::function<void()> cleanup);
  static void remove(int id);
};

}  // namespace vpcguard::test
