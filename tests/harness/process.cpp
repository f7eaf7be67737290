#include "tests/harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <thread>

extern char** environ;

namespace vpcguard::test {
namespace {

using Clock = std::chrono::steady_clock;

int decodeStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

// In a forked child, before exec: die with the parent. The check after prctl covers a parent
// that died between fork and prctl.
void tieToParent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) {
    _exit(127);
  }
}

}  // namespace

CommandResult run(const std::string& shell_command, std::chrono::seconds timeout) {
  CommandResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    result.output = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);
    tieToParent(parent);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execl("/bin/sh", "sh", "-c", shell_command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  setpgid(pid, pid);  // also from here, so killpg works even before the child ran setpgid

  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  std::array<char, 4096> buf{};
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int n = poll(&pfd, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0) {
      timed_out = true;
      break;
    }
    ssize_t got = read(fds[0], buf.data(), buf.size());
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;  // EOF: every writer (the command and anything it left behind) is gone
    }
    result.output.append(buf.data(), static_cast<size_t>(got));
  }
  close(fds[0]);
  if (timed_out) {
    killpg(pid, SIGKILL);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    result.exit_code = -1;
    result.output += "\n[vgt: command timed out after " + std::to_string(timeout.count()) +
                     "s: " + shell_command + "]";
  } else {
    result.exit_code = decodeStatus(status);
  }
  return result;
}

Result<std::string> runChecked(const std::string& shell_command, std::chrono::seconds timeout) {
  CommandResult r = run(shell_command, timeout);
  if (!r.ok()) {
    return makeError("`" + shell_command + "` exited " + std::to_string(r.exit_code) + ": " +
                     r.output);
  }
  return std::move(r.output);
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) {
      return true;
    }
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(interval);
  }
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const Options& options) {
  if (options.argv.empty()) {
    return makeError("spawn: empty argv");
  }
  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    env_strings.emplace_back(*e);
  }
  for (const auto& extra : options.env) {
    const auto name = extra.substr(0, extra.find('=') + 1);
    std::erase_if(env_strings, [&](const std::string& s) { return s.starts_with(name); });
    env_strings.push_back(extra);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) {
    envp.push_back(s.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv;
  for (auto& s : argv_strings) {
    argv.push_back(s.data());
  }
  argv.push_back(nullptr);
  const std::string out_path = options.output_path.empty() ? "/dev/null" : options.output_path;

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    return makeError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    tieToParent(parent);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  setpgid(pid, pid);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() { kill(); }

bool ChildProcess::running() {
  if (exited_) {
    return false;
  }
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    exited_ = true;
  }
  return !exited_;
}

void ChildProcess::signal(int sig) {
  if (!exited_) {
    ::kill(pid_, sig);
  }
}

bool ChildProcess::waitExit(std::chrono::milliseconds timeout) {
  return waitFor([this] { return !running(); }, timeout, 10ms);
}

void ChildProcess::kill() {
  if (exited_) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exited_ = true;
}

namespace {

// Tests are single-threaded; the handler runs the callbacks directly (they fork ip/rm). Not
// async-signal-safe in general, but the process is about to die anyway and the worst outcome is
// leaving work to tests/cleanup-leftovers.sh.
std::map<int, std::function<void()>>& cleanups() {
  static std::map<int, std::function<void()>> map;
  return map;
}

extern "C" void onTerminatingSignal(int sig) {
  auto pending = std::move(cleanups());
  cleanups().clear();
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
    it->second();
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int SignalCleanup::add(std::function<void()> cleanup) {
  static bool installed = false;
  static int next_id = 0;
  if (!installed) {
    installed = true;
    std::signal(SIGINT, onTerminatingSignal);
    std::signal(SIGTERM, onTerminatingSignal);
  }
  const int id = ++next_id;
  cleanups().emplace(id, std::move(cleanup));
  return id;
}

void SignalCleanup::remove(int id) { cleanups().erase(id); }

}  // namespace vpcguard::test
