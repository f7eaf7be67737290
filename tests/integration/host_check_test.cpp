// `vpcguardctl host-check` (daemon/host_check.h) against a private OVS sandbox (userspace
// datapath), a system-datapath bridge (the kernel module is detected, never assumed), an OVSDB
// that does not answer (fails within the deadline), and the host's own OVS when it runs.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/host_check.h"
#include "ovs-plugin/ovsdb_client.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/process.h"

namespace vpcguard::test {
namespace {

using Clock = std::chrono::steady_clock;

const HostCheckItem* find(const std::vector<HostCheckItem>& items, const std::string& name) {
  for (const auto& i : items) {
    if (i.name == name) {
      return &i;
    }
  }
  return nullptr;
}

std::string dump(const std::vector<HostCheckItem>& items) {
  std::string out;
  for (const auto& i : items) {
    out += std::string(toString(i.status)) + " " + i.name + ": " + i.reason + "\n";
  }
  return out;
}

class HostCheckSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = sandboxUnavailableReason()) {
      GTEST_SKIP() << *why;
    }
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
  }
  HostCheckOptions options(const std::string& bridge) const {
    HostCheckOptions o;
    o.ovsdb = sandbox_->dbTarget();
    o.bridge = bridge;
    o.run_dir = sandbox_->dir();
    o.timeout = std::chrono::seconds(5);
    return o;
  }
  // The Datapath row of `type`, created after a bridge of that type exists so that ovs-vswitchd
  // fills its capabilities (it does so once, when it first sees the row).
  void addDatapathRow(const std::string& type) {
    VGT_ASSERT_OK(
        sandbox_->vsctl("-- --id=@d create Datapath datapath_version=0 -- set "
                        "Open_vSwitch . datapaths:" +
                        type + "=@d"));
  }
  std::unique_ptr<OvsSandbox> sandbox_;
};

TEST_F(HostCheckSandboxTest, NetdevBridgeIsOk) {
  VGT_ASSERT_OK(sandbox_->addBridge("br-hc", "netdev"));
  addDatapathRow("netdev");
  VGT_ASSERT_OK(sandbox_->vsctl("add-zone-tp netdev zone=7 tcp_established=60"));
  // The capabilities appear once ovs-vswitchd has applied the new row.
  ASSERT_TRUE(waitFor(
      [&] {
        auto out = sandbox_->vsctl("--columns=capabilities list Datapath");
        return out && out->find("ct_zone") != std::string::npos;
      },
      std::chrono::seconds(10)));

  const auto items = runHostChecks(options("br-hc"));
  SCOPED_TRACE(dump(items));
  for (const char* name : {"ovsdb", "bridge", "kernel-datapath", "datapath-capabilities",
                           "ct-timeout-policies", "openflow-socket", "flow-restore-wait"}) {
    const auto* i = find(items, name);
    ASSERT_NE(i, nullptr) << name;
    EXPECT_EQ(i->status, CheckStatus::kOk) << name << ": " << i->reason;
  }
  EXPECT_NE(find(items, "bridge")->reason.find("datapath_type=netdev"), std::string::npos);
  EXPECT_NE(find(items, "ct-timeout-policies")->reason.find("1 CT zone"), std::string::npos);

  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runHostCheckCommand(options("br-hc"), out, err), 0) << out.str() << err.str();

  // The CLI wiring: json output, exit 0.
  const auto cli = run(shellQuote(programPath("vpcguardctl")) + " host-check --ovsdb " +
                       shellQuote(sandbox_->dbTarget()) + " --bridge br-hc --run-dir " +
                       shellQuote(sandbox_->dir()) + " --timeout 5 --output json");
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  const auto json = nlohmann::json::parse(cli.output, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << cli.output;
  EXPECT_EQ(json["result"], "ok") << cli.output;
  EXPECT_EQ(json["checks"].size(), items.size());
}

TEST_F(HostCheckSandboxTest, WarnsWithoutDatapathRowAndWithFlowRestoreWait) {
  VGT_ASSERT_OK(sandbox_->addBridge("br-hc", "netdev"));
  VGT_ASSERT_OK(sandbox_->vsctl("set Open_vSwitch . other_config:flow-restore-wait=true"));
  const auto items = runHostChecks(options("br-hc"));
  SCOPED_TRACE(dump(items));
  ASSERT_NE(find(items, "datapath-capabilities"), nullptr);
  EXPECT_EQ(find(items, "datapath-capabilities")->status, CheckStatus::kWarn);
  ASSERT_NE(find(items, "flow-restore-wait"), nullptr);
  EXPECT_EQ(find(items, "flow-restore-wait")->status, CheckStatus::kWarn);
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runHostCheckCommand(options("br-hc"), out, err), 0) << out.str();  // warn only
}

TEST_F(HostCheckSandboxTest, MissingBridgeFails) {
  const auto items = runHostChecks(options("br-nothere"));
  SCOPED_TRACE(dump(items));
  ASSERT_NE(find(items, "bridge"), nullptr);
  EXPECT_EQ(find(items, "bridge")->status, CheckStatus::kFail);
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runHostCheckCommand(options("br-nothere"), out, err), 1) << out.str();
}

TEST_F(HostCheckSandboxTest, SystemBridgeNeedsTheKernelModule) {
  // ovs-vswitchd cannot open a system datapath without the module; the row exists anyway.
  (void)sandbox_->vsctl("--timeout=10 add-br br-hcs -- set Bridge br-hcs datapath_type=system");
  const KernelDatapathProbe probe = probeKernelDatapath();
  const auto items = runHostChecks(options("br-hcs"));
  SCOPED_TRACE(dump(items));
  const auto* kernel = find(items, "kernel-datapath");
  ASSERT_NE(kernel, nullptr);
  std::ostringstream out;
  std::ostringstream err;
  const int rc = runHostCheckCommand(options("br-hcs"), out, err);
  if (probe.genl_family) {
    std::cout << "kernel datapath present on this machine: asserting ok\n";
    EXPECT_EQ(kernel->status, CheckStatus::kOk) << kernel->reason;
  } else {
    std::cout << "kernel datapath absent on this machine (" << probe.genl_detail
              << "): asserting the module failure\n";
    EXPECT_EQ(kernel->status, CheckStatus::kFail);
    EXPECT_NE(
        kernel->reason.find("the openvswitch kernel module is not loaded (modprobe openvswitch)"),
        std::string::npos)
        << kernel->reason;
    if (!probe.sysfs_module && !probe.builtin) {
      // Read-only: the family (whose lookup makes the kernel load the module) was not looked up.
      EXPECT_FALSE(probe.probed);
      EXPECT_NE(kernel->reason.find("not looked up"), std::string::npos) << kernel->reason;
      struct stat st {};
      EXPECT_NE(::stat("/sys/module/openvswitch", &st), 0) << "host-check loaded the module";
    }
    // Without a datapath ovs-vswitchd has no OpenFlow socket for the bridge either.
    ASSERT_NE(find(items, "openflow-socket"), nullptr);
    EXPECT_EQ(find(items, "openflow-socket")->status, CheckStatus::kFail);
    EXPECT_EQ(rc, 1) << out.str();
  }
}

// A unix socket that accepts connections into its backlog and never answers: OVSDB "hangs".
class SilentSocket {
 public:
  explicit SilentSocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 8) == 0;
  }
  ~SilentSocket() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    ::unlink(path_.c_str());
  }
  SilentSocket(const SilentSocket&) = delete;
  SilentSocket& operator=(const SilentSocket&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
};

TEST(HostCheckUnreachable, SilentOvsdbFailsWithinTheDeadline) {
  char dir_template[] = "/tmp/vgt.XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  SilentSocket silent(dir + "/db.sock");
  ASSERT_TRUE(silent.ok()) << std::strerror(errno);

  HostCheckOptions o;
  o.ovsdb = "unix:" + dir + "/db.sock";
  o.timeout = std::chrono::milliseconds(700);
  const auto start = Clock::now();
  std::ostringstream out;
  std::ostringstream err;
  const int rc = runHostCheckCommand(o, out, err);
  const auto took = Clock::now() - start;
  EXPECT_EQ(rc, 1) << out.str();
  EXPECT_NE(out.str().find("fail  ovsdb"), std::string::npos) << out.str();
  EXPECT_GE(took, std::chrono::milliseconds(600)) << "did not wait for the reply at all";
  EXPECT_LT(took, std::chrono::seconds(3)) << out.str();

  // No socket at all: fails at once, exit 1.
  o.ovsdb = "unix:" + dir + "/missing.sock";
  const auto start2 = Clock::now();
  std::ostringstream out2;
  EXPECT_EQ(runHostCheckCommand(o, out2, err), 1) << out2.str();
  EXPECT_LT(Clock::now() - start2, std::chrono::seconds(2));
  EXPECT_NE(out2.str().find("cannot reach OVSDB"), std::string::npos) << out2.str();
}

// The host's own Open vSwitch (kernel datapath), when it runs on this machine.
TEST(HostCheckSystem, AgainstTheSystemOvs) {
  const std::string target = "unix:/var/run/openvswitch/db.sock";
  ovs::OvsdbOptions probe_options;
  probe_options.connect_timeout = std::chrono::seconds(1);
  probe_options.request_timeout = std::chrono::seconds(2);
  auto client = ovs::connectOvsdb(target, probe_options);
  if (!client) {
    GTEST_SKIP() << "the system Open vSwitch is not running here (" << target
                 << " does not answer: " << client.error().message << ")";
  }
  auto dbs = (*client)->listDbs();
  if (!dbs) {
    GTEST_SKIP() << "the system OVSDB at " << target << " does not answer: " << dbs.error().message;
  }
  HostCheckOptions o;
  o.ovsdb = target;
  o.bridge = "br-int";
  std::ostringstream out;
  std::ostringstream err;
  const int rc = runHostCheckCommand(o, out, err);
  std::cout << out.str();
  const auto items = runHostChecks(o);
  ASSERT_NE(find(items, "ovsdb"), nullptr);
  EXPECT_EQ(find(items, "ovsdb")->status, CheckStatus::kOk) << out.str();
  EXPECT_TRUE(rc == 0 || rc == 1);
  // Whatever br-int is, the kernel-module verdict matches what this machine really has.
  const auto* kernel = find(items, "kernel-datapath");
  ASSERT_NE(kernel, nullptr);
  if (probeKernelDatapath().genl_family) {
    EXPECT_EQ(kernel->status, CheckStatus::kOk) << kernel->reason;
  }
}

}  // namespace
}  // namespace vpcguard::test
