#include "tests/harness/ovs_sandbox.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace vpcguard::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kToolTimeout = std::chrono::seconds(60);

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '"')) {
    s.pop_back();
  }
  size_t start = s.find_first_not_of(" \"");
  return start == std::string::npos ? "" : s.substr(start);
}

// VPCGUARD_OVS_VLOG="jsonrpc:file:dbg vconn:file:dbg" turns on extra logging in both daemons
// when debugging a test (the logs stay with VPCGUARD_KEEP_SANDBOX=1).
void addExtraVlog(std::vector<std::string>& argv) {
  const char* spec = std::getenv("VPCGUARD_OVS_VLOG");
  if (spec == nullptr) {
    return;
  }
  std::istringstream in(spec);
  std::string item;
  std::vector<std::string> flags;
  while (in >> item) {
    flags.push_back("-v" + item);
  }
  argv.insert(argv.end() - 1, flags.begin(), flags.end());
}

}  // namespace

std::optional<std::string> sandboxUnavailableReason() {
  if (geteuid() != 0) {
    return "needs root (network namespaces, ovs-vswitchd's userspace datapath)";
  }
  for (const char* tool : {"ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip"}) {
    if (!run(std::string("command -v ") + tool).ok()) {
      return std::string("needs ") + tool + " (apt-get install openvswitch-switch iproute2)";
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<OvsSandbox>> OvsSandbox::start() {
  std::unique_ptr<OvsSandbox> sb(new OvsSandbox());
  char tmpl[] = "/tmp/vgt.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return makeError("sandbox: mkdtemp /tmp/vgt.XXXXXX failed");
  }
  sb->dir_ = tmpl;
  sb->unique_ = sb->dir_.substr(std::string("/tmp/vgt.").size());
  sb->netns_ = "vgt-" + sb->unique_;
  // From here on the destructor (or a signal) undoes whatever part of the setup succeeded.
  OvsSandbox* raw = sb.get();
  sb->signal_cleanup_id_ = SignalCleanup::add([raw] { raw->cleanup(); });

  if (auto r = runChecked("ip netns add " + sb->netns_ + " && ip -n " + sb->netns_ +
                          " link set lo up");
      !r) {
    return tl::unexpected(r.error().withContext("sandbox: create namespace"));
  }
  sb->netns_created_ = true;
  if (auto r = sb->createDb(); !r) {
    return tl::unexpected(r.error().withContext("sandbox " + sb->dir_));
  }
  if (auto r = sb->startOvsdb(); !r) {
    return tl::unexpected(r.error().withContext("sandbox " + sb->dir_));
  }
  if (auto r = sb->startVswitchd(); !r) {
    return tl::unexpected(r.error().withContext("sandbox " + sb->dir_));
  }
  return sb;
}

OvsSandbox::~OvsSandbox() {
  SignalCleanup::remove(signal_cleanup_id_);
  cleanup();
}

std::string OvsSandbox::envPrefix() const {
  return "OVS_RUNDIR=" + dir_ + " OVS_LOGDIR=" + dir_ + " OVS_DBDIR=" + dir_ + " ";
}

Result<void> OvsSandbox::createDb() {
  if (auto r = runChecked("ovsdb-tool create " + dir_ +
                          "/conf.db /usr/share/openvswitch/vswitch.ovsschema");
      !r) {
    return tl::unexpected(r.error().withContext("ovsdb-tool create"));
  }
  return {};
}

Result<void> OvsSandbox::startOvsdb() {
  ChildProcess::Options opts;
  opts.argv = {"ovsdb-server",          "--no-chdir",
               "--pidfile",             "--log-file",
               "-vconsole:off",         "--remote=punix:" + dir_ + "/db.sock",
               dir_ + "/conf.db"};
  addExtraVlog(opts.argv);
  opts.env = {"OVS_RUNDIR=" + dir_, "OVS_LOGDIR=" + dir_, "OVS_DBDIR=" + dir_};
  opts.output_path = dir_ + "/ovsdb-server.out";
  auto child = ChildProcess::spawn(opts);
  if (!child) {
    return tl::unexpected(child.error().withContext("start ovsdb-server"));
  }
  ovsdb_ = std::move(*child);
  std::string last;
  const bool up = waitFor(
      [&] {
        if (!ovsdb_->running()) {
          return true;  // reported below
        }
        auto r = run(envPrefix() + "ovs-vsctl --db=" + dbTarget() + " --timeout=5 --no-wait init",
                     std::chrono::seconds(10));
        last = r.output;
        return r.ok();
      },
      kStartTimeout, std::chrono::milliseconds(20));
  if (!up || !ovsdb_->running()) {
    return makeError("ovsdb-server did not come up: " + last + " (see " + dir_ +
                     "/ovsdb-server.log)");
  }
  return {};
}

Result<void> OvsSandbox::startVswitchd() {
  ChildProcess::Options opts;
  // `ip netns exec` execs in place (no fork), so the child's pid is ovs-vswitchd's pid and
  // PDEATHSIG still applies.
  opts.argv = {"ip",           "netns",      "exec",      netns_,           "ovs-vswitchd",
               "--no-chdir",   "--pidfile",  "--log-file", "--enable-dummy", "-vconsole:off",
               dbTarget()};
  addExtraVlog(opts.argv);
  opts.env = {"OVS_RUNDIR=" + dir_, "OVS_LOGDIR=" + dir_, "OVS_DBDIR=" + dir_};
  opts.output_path = dir_ + "/ovs-vswitchd.out";
  auto child = ChildProcess::spawn(opts);
  if (!child) {
    return tl::unexpected(child.error().withContext("start ovs-vswitchd"));
  }
  vswitchd_ = std::move(*child);
  vswitchd_pid_ = vswitchd_->pid();
  const bool up = waitFor(
      [&] {
        if (!vswitchd_->running()) {
          return true;
        }
        return run("ovs-appctl -t " + vswitchdCtl() + " version", std::chrono::seconds(5)).ok();
      },
      kStartTimeout, std::chrono::milliseconds(20));
  if (!up || !vswitchd_->running()) {
    return makeError("ovs-vswitchd did not come up (see " + dir_ + "/ovs-vswitchd.log and " +
                     dir_ + "/ovs-vswitchd.out)");
  }
  return {};
}

std::string OvsSandbox::vswitchdCtl() const {
  return dir_ + "/ovs-vswitchd." + std::to_string(vswitchd_pid_) + ".ctl";
}

void OvsSandbox::stopVswitchd() {
  if (vswitchd_ && vswitchd_->running()) {
    // A clean exit first: it releases the datapath's tap device inside the namespace.
    (void)run("ovs-appctl -t " + vswitchdCtl() + " exit", std::chrono::seconds(10));
    if (!vswitchd_->waitExit(std::chrono::seconds(5))) {
      vswitchd_->kill();
    }
  }
  vswitchd_.reset();
}

void OvsSandbox::stopOvsdb() {
  if (ovsdb_ && ovsdb_->running()) {
    (void)ovsdbAppctl("exit");
    if (!ovsdb_->waitExit(std::chrono::seconds(5))) {
      ovsdb_->kill();
    }
  }
  ovsdb_.reset();
}

void OvsSandbox::cleanup() {
  stopVswitchd();
  stopOvsdb();
  if (netns_created_) {
    (void)run("ip netns delete " + netns_, std::chrono::seconds(20));
    netns_created_ = false;
  }
  if (!dir_.empty()) {
    if (std::getenv("VPCGUARD_KEEP_SANDBOX") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

Result<std::string> OvsSandbox::vsctl(const std::string& args) const {
  return runChecked(envPrefix() + "ovs-vsctl --db=" + dbTarget() + " --timeout=30 " + args,
                    kToolTimeout);
}

Result<std::string> OvsSandbox::ofctl(const std::string& args) const {
  return runChecked(envPrefix() + "ovs-ofctl -O OpenFlow15 " + args, kToolTimeout);
}

Result<std::string> OvsSandbox::appctl(const std::string& args) const {
  return runChecked("ovs-appctl -t " + vswitchdCtl() + " " + args, kToolTimeout);
}

Result<std::string> OvsSandbox::ovsdbAppctl(const std::string& args) const {
  return runChecked("ovs-appctl -t " + dir_ + "/ovsdb-server." + std::to_string(ovsdbPid()) +
                        ".ctl " + args,
                    kToolTimeout);
}

CommandResult OvsSandbox::execInNetns(const std::string& command) const {
  return run("ip netns exec " + netns_ + " sh -c " + shellQuote(command), kToolTimeout);
}

Result<void> OvsSandbox::addBridge(const std::string& name, const std::string& datapath_type) {
  auto r = vsctl("--may-exist add-br " + name + " -- set bridge " + name + " datapath_type=" +
                 datapath_type + " fail_mode=secure protocols=OpenFlow13,OpenFlow14,OpenFlow15");
  if (!r) {
    return tl::unexpected(r.error().withContext("add bridge " + name));
  }
  std::string last;
  if (!waitFor(
          [&] {
            auto s = ofctl("show " + bridgeTarget(name));
            last = s ? "" : s.error().message;
            return s.has_value();
          },
          kStartTimeout, std::chrono::milliseconds(20))) {
    return makeError("bridge " + name + " mgmt socket does not answer: " + last);
  }
  return {};
}

Result<int> OvsSandbox::ofport(const std::string& iface) const {
  int port = -1;
  std::string last;
  (void)waitFor(
      [&] {
        auto r = vsctl("get interface " + iface + " ofport");
        if (!r) {
          last = r.error().message;
          return false;
        }
        last = trimmed(*r);
        try {
          port = std::stoi(last);
        } catch (...) {
          return false;  // "[]" until ovs-vswitchd assigns it
        }
        return port > 0;
      },
      kStartTimeout, std::chrono::milliseconds(20));
  if (port <= 0) {
    return makeError("interface " + iface + " has no ofport: " + last);
  }
  return port;
}

Result<int> OvsSandbox::addDummyPort(const std::string& bridge, const std::string& port,
                                     const std::string& iface_id) {
  auto r = vsctl("add-port " + bridge + " " + port + " -- set interface " + port +
                 " type=dummy external_ids:iface-id=" + shellQuote(iface_id));
  if (!r) {
    return tl::unexpected(r.error().withContext("add dummy port " + port));
  }
  return ofport(port);
}

Result<void> OvsSandbox::restartVswitchd() {
  if (vswitchd_) {
    vswitchd_->kill();
  }
  vswitchd_.reset();
  return startVswitchd();
}

Result<void> OvsSandbox::restartOvsdb() {
  if (ovsdb_) {
    ovsdb_->kill();
  }
  ovsdb_.reset();
  // The killed server's socket file stays behind; the new one replaces it.
  return startOvsdb();
}

Result<std::string> OvsSandbox::dumpFlows(const std::string& bridge, bool with_stats) const {
  return ofctl("dump-flows " + bridgeTarget(bridge) + (with_stats ? "" : " --no-stats"));
}

}  // namespace vpcguard::test
