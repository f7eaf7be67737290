#include "ovs-plugin/appctl.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "ovs-plugin/src/appctl_shim.h"

namespace vpcguard::ovs {
namespace {

struct ShimFree {
  void operator()(char* p) const { vg_appctl_free(p); }
};
using ShimString = std::unique_ptr<char, ShimFree>;

std::string describe(const std::string& socket_path, const std::string& command,
                     const std::vector<std::string>& args) {
  // Arguments are shortened: an error message is no place for a large payload.
  constexpr size_t kMaxArg = 80;
  std::string out = "ovs-appctl -t " + socket_path + " " + command;
  for (const auto& arg : args) {
    std::string shown = arg.size() > kMaxArg ? arg.substr(0, kMaxArg) + "..." : arg;
    const bool quote = shown.empty() || shown.find_first_of(" \t\"'") != std::string::npos;
    out += quote ? " \"" + shown + "\"" : " " + shown;
  }
  return out;
}

std::string withoutTrailingSpace(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

}  // namespace

Result<std::string> appctl(const std::string& socket_path, const std::string& command,
                           const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout) {
  const std::string what = describe(socket_path, command, args);
  std::vector<const char*> argv;
  argv.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.c_str());
  }
  const auto ms =
      std::max<int64_t>(0, std::min<int64_t>(timeout.count(), std::numeric_limits<int>::max()));
  char* raw_result = nullptr;
  char* raw_err = nullptr;
  const int status = vg_appctl_transact(socket_path.c_str(), command.c_str(), argv.size(),
                                        argv.data(), static_cast<int>(ms), &raw_result, &raw_err);
  const ShimString result(raw_result);
  const ShimString err(raw_err);
  if (status == VG_APPCTL_OK) {
    return std::string(result ? result.get() : "");
  }
  std::string message = err ? withoutTrailingSpace(err.get()) : "";
  if (message.empty()) {
    message =
        status == VG_APPCTL_SERVER_ERROR ? "the server reported an error without text" : "failed";
  }
  return makeError(what + ": " + message);
}

Result<std::string> vswitchdControlSocket(const std::string& ovs_rundir) {
  if (ovs_rundir.empty()) {
    return makeError("ovs-vswitchd control socket: no OVS run directory given");
  }
  const std::string pidfile = ovs_rundir + "/ovs-vswitchd.pid";
  std::ifstream in(pidfile);
  if (!in) {
    const int e = errno;
    return makeError("ovs-vswitchd control socket: cannot read " + pidfile + ": " +
                     std::strerror(e) + " (is ovs-vswitchd running with --pidfile and " +
                     "OVS_RUNDIR=" + ovs_rundir + "?)");
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = withoutTrailingSpace(text.str());
  long pid = 0;
  bool valid = !content.empty() && content.size() <= 10 &&
               content.find_first_not_of("0123456789") == std::string::npos;
  if (valid) {
    pid = std::stol(content);
    valid = pid > 0 && pid <= std::numeric_limits<int32_t>::max();
  }
  if (!valid) {
    return makeError("ovs-vswitchd control socket: " + pidfile + " does not hold a pid: \"" +
                     content.substr(0, 40) + "\"");
  }
  std::string socket = ovs_rundir + "/ovs-vswitchd." + std::to_string(pid) + ".ctl";
  struct stat st {};
  // Started with --unixctl=<rundir>/ovs-vswitchd.ctl (the lab and the test sandboxes do).
  if (const std::string named = ovs_rundir + "/ovs-vswitchd.ctl";
      ::stat(socket.c_str(), &st) != 0 && ::stat(named.c_str(), &st) == 0) {
    socket = named;
  }
  if (::stat(socket.c_str(), &st) != 0) {
    const int e = errno;
    return makeError("ovs-vswitchd control socket: " + socket + ": " + std::strerror(e) + " (" +
                     pidfile + " names pid " + std::to_string(pid) +
                     "; a stale pid file if ovs-vswitchd is not running)");
  }
  if (!S_ISSOCK(st.st_mode)) {
    return makeError("ovs-vswitchd control socket: " + socket + " is not a unix socket");
  }
  return socket;
}

}  // namespace vpcguard::ovs
