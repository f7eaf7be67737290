#include "tests/harness/vpcguardd.h"

#include <signal.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "tests/harness/paths.h"

namespace vpcguard::test {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

Vpcguardd::Vpcguardd(const OvsSandbox& sandbox, Options options)
    : sandbox_(sandbox),
      options_(std::move(options)),
      status_file_(sandbox.dir() + "/vpcguardd.status.json") {}

Vpcguardd::~Vpcguardd() { process_.reset(); }

Result<void> Vpcguardd::start() {
  if (running()) {
    return makeError("vpcguardd: already running (pid " + std::to_string(pid()) + ")");
  }
  ChildProcess::Options o;
  o.argv = {programPath("vpcguardd"),
            options_.state.empty() ? "--config" : "--state",
            options_.state.empty() ? options_.config : options_.state,
            "--bridge",
            options_.bridge,
            "--ovsdb",
            sandbox_.dbTarget(),
            "--datapath-type",
            options_.datapath_type,
            "--log-level",
            options_.log_level,
            "--status-file",
            status_file_};
  o.argv.insert(o.argv.end(), options_.extra.begin(), options_.extra.end());
  o.output_path = log_ = sandbox_.dir() + "/vpcguardd-" + std::to_string(++starts_) + ".log";
  auto child = ChildProcess::spawn(o);
  if (!child) {
    return tl::unexpected(child.error().withContext("start vpcguardd"));
  }
  process_ = std::move(*child);
  return {};
}

bool Vpcguardd::stop(int sig) {
  if (!process_) {
    return true;
  }
  process_->signal(sig);
  const bool exited = process_->waitExit(std::chrono::seconds(10));
  process_.reset();  // SIGKILLs it if it did not exit
  return exited;
}

Result<DaemonStatus> Vpcguardd::status() const {
  const std::string text = readFile(status_file_);
  if (text.empty()) {
    return makeError("no status file " + status_file_);
  }
  return statusFromJson(text);
}

bool Vpcguardd::waitSynced(std::chrono::milliseconds timeout) {
  const pid_t me = pid();
  return waitFor(
      [&] {
        auto s = status();
        return s && s->pid == me && s->connected && !s->last_sync.empty();
      },
      timeout, std::chrono::milliseconds(10));
}

std::string Vpcguardd::log() const { return readFile(log_); }

std::string Vpcguardd::logTail(int lines) const {
  if (log_.empty()) {
    return "(vpcguardd was never started)";
  }
  return "--- tail of " + log_ + " ---\n" +
         run("tail -n " + std::to_string(lines) + " " + shellQuote(log_)).output;
}

size_t Vpcguardd::countInLog(const std::string& needle) const {
  std::istringstream in(log());
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) {
      ++n;
    }
  }
  return n;
}

}  // namespace vpcguard::test
