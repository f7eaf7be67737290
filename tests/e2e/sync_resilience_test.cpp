// Keeping OVS in sync (issue 5), with real packets: the real vpcguardd enforces configs/lab.toml
// on a userspace-datapath bridge with one network-namespace "VM" per interface (as
// vagrant/lab.sh makes them), while traffic runs and the world around it misbehaves:
//  (a) vpcguardd restarted 10 times (SIGTERM and SIGKILL): not one ping lost, a TCP stream
//      never interrupted;
//  (b) ovs-vswitchd killed and restarted: a probe the policy blocks never arrives, not even
//      while the switch comes back empty; allowed traffic works again afterwards;
//  (c) our flows deleted and altered by hand, a foreign flow added to one of our tables: each
//      repaired within 1 s (default resync interval: the daemon must notice by itself), logged
//      and counted;
//  (d) 200 ports attached and detached: not one ping lost between the original VMs.
// Every case ends with the switch's flow table equal to the desired one, computed here with the
// translator (tests/harness/flow_check.h).
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "tests/harness/assertions.h"
#include "tests/harness/flow_check.h"
#include "tests/harness/ns_lab.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/vpcguardd.h"
#include "translator/translate.h"

namespace vpcguard::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kBridge = "br-int";
constexpr const char* kWeb = "eni-web1";         // 10.0.1.10, public subnet
constexpr const char* kBastion = "eni-bastion";  // 10.0.1.20, public subnet
constexpr const char* kDb = "eni-db1";           // 10.0.2.10, private subnet (own NACL)
constexpr const char* kWebIp = "10.0.1.10";
constexpr const char* kDbIp = "10.0.2.10";
// web -> db: sg-db allows tcp 5432 from sg-web and ICMP echo from 10.0.0.0/16; acl-private lets
// both in and their replies out. Crosses the router, so every stage of the pipeline is on the
// path.
constexpr int kStreamPort = 5432;
// bastion -> web and bastion -> db: sg-web and sg-db allow tcp 22 from sg-bastion; no rule of
// either allows udp 9999 or tcp 8080 (tcp 8080 to db even passes acl-private: only the security
// group stops it).
constexpr int kAllowedPort = 22;
constexpr int kBlockedUdpPort = 9999;
constexpr int kBlockedTcpPort = 8080;
constexpr const char* kOurCookie = "cookie=0x7667000000000000/0xffff000000000000";

// Echoes one TCP connection.
constexpr const char* kEchoServer = R"(
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
)";

// A steady TCP stream: 1 KiB every 10 ms to the echo server, reading the echoes back. Every
// 100 ms (and at SIGTERM) it writes "<bytes echoed> <longest gap between echoes in ms> <error>"
// to the status file; on a broken connection it records the error and exits 1.
constexpr const char* kStreamClient = R"(
import os, select, signal, socket, sys, time
host, port, status = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
received, max_gap, error = 0, 0.0, ""
def report():
    with open(status + ".tmp", "w") as f:
        f.write("%d %d %s\n" % (received, max_gap * 1000, error))
    os.replace(status + ".tmp", status)
try:
    s = socket.create_connection((host, port), timeout=5)
except OSError as e:
    error = "connect: %s" % e
    report()
    sys.exit(1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.setblocking(False)
out = b""
now = time.monotonic()
last_rx, next_send, next_report = now, now, now
while not stop:
    now = time.monotonic()
    if now >= next_send:
        out += b"x" * 1024
        next_send += 0.01
    try:
        r, w, _ = select.select([s], [s] if out else [], [], 0.005)
        if w:
            out = out[s.send(out):]
        if r:
            d = s.recv(65536)
            if not d:
                error = "closed by the server"
                break
            t = time.monotonic()
            if received > 0:
                max_gap = max(max_gap, t - last_rx)
            received += len(d)
            last_rx = t
    except InterruptedError:
        continue
    except OSError as e:
        error = str(e).replace(" ", "_")
        break
    if now >= next_report:
        report()
        next_report = now + 0.1
if not error:
    max_gap = max(max_gap, time.monotonic() - last_rx)
report()
sys.exit(1 if error else 0)
)";

// Probes from the bastion, every 10 ms to each target: a UDP datagram to kBlockedUdpPort and a
// TCP SYN to kBlockedTcpPort (each from a new source port, so each is a new connection), and
// every 50 ms a SYN to kAllowedPort as a control that the path works. Writes the number of
// rounds sent to the status file.
constexpr const char* kProber = R"(
import os, signal, socket, sys, time
targets, status = sys.argv[1].split(","), sys.argv[2]
udp_port, tcp_port, allowed_port = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
rounds, pending = 0, []
def syn(ip, port):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((ip, port))
    pending.append(c)
while not stop:
    for c in pending:
        c.close()
    pending = []
    for ip in targets:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.sendto(b"probe", (ip, udp_port))
        except OSError:
            pass
        u.close()
        syn(ip, tcp_port)
        if rounds % 5 == 0:
            syn(ip, allowed_port)
    rounds += 1
    if rounds % 10 == 0:
        with open(status + ".tmp", "w") as f:
            f.write("%d\n" % rounds)
        os.replace(status + ".tmp", status)
    time.sleep(0.01)
)";

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Replies of a running or stopped `ping -n`, by sequence number.
struct PingReplies {
  std::set<int> seqs;
  [[nodiscard]] int highest() const { return seqs.empty() ? 0 : *seqs.rbegin(); }
  // Requests without a reply, among those sent before the last reply: a request still in flight
  // when ping stopped is not lost, and the tests stop ping only well after the last disruption.
  [[nodiscard]] std::vector<int> lost() const {
    std::vector<int> out;
    for (int seq = 1; seq < highest(); ++seq) {
      if (seqs.count(seq) == 0) {
        out.push_back(seq);
      }
    }
    return out;
  }
};

PingReplies parsePing(const std::string& output) {
  static const std::regex kReply(R"(bytes from .*icmp_seq=(\d+) )");
  PingReplies r;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kReply)) {
      r.seqs.insert(std::stoi(m[1]));
    }
  }
  return r;
}

std::string describeLost(const std::vector<int>& lost) {
  std::string out;
  for (size_t i = 0; i < lost.size() && i < 30; ++i) {
    out += (i == 0 ? "" : ",") + std::to_string(lost[i]);
  }
  return out + (lost.size() > 30 ? ",..." : "");
}

// The time of day as tcpdump prints it, to place packets relative to events.
std::string wallClock() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  return fmt::format("{:02}:{:02}:{:02}.{:06}", tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

// The lines of a `tcpdump -n` output for packets to `port` (at most 20).
std::string packetsTo(const std::string& output, int port) {
  const std::string needle = fmt::format(".{}: ", port);
  std::istringstream in(output);
  std::string out;
  int n = 0;
  for (std::string line; std::getline(in, line) && n < 20;) {
    if (line.find(needle) != std::string::npos) {
      out += line + "\n";
      ++n;
    }
  }
  return out;
}

// Packets a `tcpdump -n` saw, by destination port.
std::map<int, size_t> arrivalsByPort(const std::string& output) {
  static const std::regex kPacket(R"( > [0-9.]+\.(\d+): )");
  std::map<int, size_t> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kPacket)) {
      ++out[std::stoi(m[1])];
    }
  }
  return out;
}

class SyncResilience : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NsLab::unavailableReason()) {
      GTEST_SKIP() << *why;
    }
    for (const char* tool : {"python3", "tcpdump"}) {
      if (!run(std::string("command -v ") + tool).ok()) {
        GTEST_SKIP() << "needs " << tool;
      }
    }
    // The interpreter itself, not a wrapper script: signals must reach the Python process.
    auto py = run("python3 -c 'import sys; print(sys.executable)'");
    ASSERT_TRUE(py.ok()) << py.output;
    python_ = py.output.substr(0, py.output.find('\n'));

    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(lab_, NsLab::create(*sandbox_, kBridge));
    // Traffic output goes to a directory of its own: the daemon watches the config's directory.
    dir_ = sandbox_->dir() + "/traffic";
    ASSERT_TRUE(std::filesystem::create_directory(dir_));
    config_ = sandbox_->dir() + "/policy.toml";
    lab_toml_ = readFile(sourceDir() + "/configs/lab.toml");
    ASSERT_FALSE(lab_toml_.empty());
    ASSERT_NO_FATAL_FAILURE(writeConfig(lab_toml_));
    VGT_ASSERT_OK(addPolicyVms(*lab_, policy_));
    for (const auto& [name, text] :
         {std::pair{"echo_server.py", kEchoServer}, std::pair{"stream_client.py", kStreamClient},
          std::pair{"prober.py", kProber}}) {
      std::ofstream(dir_ + "/" + name) << text;
    }
    Vpcguardd::Options o;
    o.config = config_;
    o.bridge = kBridge;
    o.datapath_type = "netdev";
    daemon_ = std::make_unique<Vpcguardd>(*sandbox_, o);
  }

  void TearDown() override {
    // On failure: what the daemon and the switch said (the assertions show flow differences).
    if (HasFailure() && daemon_) {
      std::cerr << daemon_->logTail(60) << "--- tail of ovs-vswitchd.log ---\n"
                << run("tail -n 30 " + sandbox_->dir() + "/ovs-vswitchd.log").output;
    }
    // Traffic first (its processes live in the VMs' namespaces), then the daemon, the VMs and
    // the switch.
    background_.clear();
    daemon_.reset();
    lab_.reset();
    sandbox_.reset();
  }

  // Saves the policy file (by rename, so the daemon never reads half of it) and makes it the
  // test's expectation: the policy and the interface indices vpcguardd must keep (an index is a
  // conntrack zone: existing interfaces keep theirs, new ones get the lowest free).
  void writeConfig(const std::string& text) {
    const std::string tmp = config_ + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), config_.c_str()), 0);
    auto loaded = config::loadPolicy(config_);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
    VGT_ASSIGN_OR_FAIL(indices_, assignInterfaceIndices(policy_, indices_));
  }

  void startDaemon() {
    VGT_ASSERT_OK(daemon_->start());
    ASSERT_TRUE(daemon_->waitSynced(30s)) << "vpcguardd did not sync\n" << daemon_->logTail();
  }

  ::testing::AssertionResult switchIsDesired() {
    return switchEqualsDesired(*sandbox_, kBridge, policy_, indices_);
  }
  // Waits (generously) for the table to become the desired one; the assertion shows the
  // difference if it never does.
  ::testing::AssertionResult eventuallyDesired(std::chrono::seconds timeout = 30s) {
    if (waitFor([&] { return static_cast<bool>(switchIsDesired()); }, timeout, 50ms)) {
      return ::testing::AssertionSuccess();
    }
    return switchIsDesired();
  }

  // A process inside a VM's namespace, our child (it dies with the test); stdout and stderr go
  // to `out`.
  ChildProcess* inVm(const std::string& vm, std::vector<std::string> argv, const std::string& out) {
    const Vm* v = lab_->vm(vm);
    EXPECT_NE(v, nullptr) << vm;
    if (v == nullptr) {
      return nullptr;
    }
    ChildProcess::Options o;
    // `ip netns exec` execs in place: the pid is the program's, and PDEATHSIG holds.
    o.argv = {"ip", "netns", "exec", v->netns};
    o.argv.insert(o.argv.end(), argv.begin(), argv.end());
    o.output_path = out;
    auto child = ChildProcess::spawn(o);
    EXPECT_TRUE(child.has_value()) << child.error().message;
    if (!child) {
      return nullptr;
    }
    background_.push_back(std::move(*child));
    return background_.back().get();
  }

  // ---- ping web -> db every 20 ms ---------------------------------------------------------
  void startPing() {
    // ARP for the router is resolved first, so the first request of the measured ping is not
    // queued behind it.
    auto warm = lab_->exec(kWeb, std::string("ping -n -c 3 -i 0.2 -W 2 ") + kDbIp);
    ASSERT_TRUE(warm.ok()) << "web cannot ping db before the test starts:\n" << warm.output;
    ping_out_ = dir_ + "/ping.out";
    ping_ = inVm(kWeb, {"ping", "-n", "-i", "0.02", kDbIp}, ping_out_);
    ASSERT_NE(ping_, nullptr);
    ASSERT_TRUE(morePingReplies(10)) << readFile(ping_out_);
  }
  PingReplies pingReplies() const { return parsePing(readFile(ping_out_)); }
  // Waits until `n` more replies have come back (the path works right now).
  bool morePingReplies(size_t n, std::chrono::seconds timeout = 20s) {
    const size_t before = pingReplies().seqs.size();
    return waitFor([&] { return pingReplies().seqs.size() >= before + n; }, timeout, 20ms);
  }
  // Stops ping (it prints its summary) and returns every reply.
  PingReplies stopPing() {
    ping_->signal(SIGINT);
    (void)ping_->waitExit(5s);
    return pingReplies();
  }

  // ---- TCP stream web -> db:5432 -------------------------------------------------------------
  struct StreamStatus {
    size_t bytes = 0;
    long max_gap_ms = 0;
    std::string error;
  };
  void startStream() {
    stream_status_ = dir_ + "/stream.status";
    ASSERT_NE(inVm(kDb, {python_, dir_ + "/echo_server.py", std::to_string(kStreamPort)},
                   dir_ + "/echo_server.out"),
              nullptr);
    ASSERT_TRUE(waitFor(
        [&] {
          return lab_->exec(kDb, fmt::format("ss -ltnH 'sport = :{}' | grep -q .", kStreamPort))
              .ok();
        },
        10s))
        << "echo server did not listen: " << readFile(dir_ + "/echo_server.out");
    stream_ = inVm(
        kWeb,
        {python_, dir_ + "/stream_client.py", kDbIp, std::to_string(kStreamPort), stream_status_},
        dir_ + "/stream_client.out");
    ASSERT_NE(stream_, nullptr);
    ASSERT_TRUE(moreStreamBytes(64 * 1024)) << readFile(dir_ + "/stream_client.out");
  }
  StreamStatus streamStatus() const {
    StreamStatus s;
    std::istringstream in(readFile(stream_status_));
    in >> s.bytes >> s.max_gap_ms >> s.error;
    return s;
  }
  bool moreStreamBytes(size_t n, std::chrono::seconds timeout = 20s) {
    const size_t before = streamStatus().bytes;
    return waitFor([&] { return streamStatus().bytes >= before + n; }, timeout, 20ms);
  }
  // TCP retransmissions of the stream's connection so far (ss shows them only when non-zero).
  std::string streamRetransmissions() {
    auto r = lab_->exec(kWeb, fmt::format("ss -tinH 'dport = :{}'", kStreamPort));
    std::smatch m;
    static const std::regex kRetrans(R"(retrans:\d+/(\d+))");
    return std::regex_search(r.output, m, kRetrans) ? m[1].str() : "0";
  }

  // ---- captures ------------------------------------------------------------------------------
  // tcpdump on the VM's eth0, inbound only: what the switch delivered to it. As root (-Z): a
  // process that changes its user loses PDEATHSIG and could outlive a killed test.
  ChildProcess* startCapture(const std::string& vm, const std::string& out) {
    ChildProcess* p = inVm(vm,
                           {"tcpdump", "-i", "eth0", "-Q", "in", "-n", "-l", "-Z", "root",
                            fmt::format("udp port {} or tcp port {} or tcp port {}",
                                        kBlockedUdpPort, kBlockedTcpPort, kAllowedPort)},
                           out);
    EXPECT_TRUE(
        waitFor([&] { return readFile(out).find("listening on") != std::string::npos; }, 10s))
        << readFile(out);
    return p;
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<NsLab> lab_;
  std::unique_ptr<Vpcguardd> daemon_;
  std::vector<std::unique_ptr<ChildProcess>> background_;
  std::string python_;
  std::string dir_;
  std::string config_;
  std::string lab_toml_;
  model::Policy policy_;
  std::map<std::string, uint16_t> indices_;
  ChildProcess* ping_ = nullptr;
  std::string ping_out_;
  ChildProcess* stream_ = nullptr;
  std::string stream_status_;
};

// (a) The flows stay in place while the daemon is down (fail-secure bridge, SIGTERM and SIGKILL
// alike), and a restarted daemon recovers its interface indices and changes nothing: traffic
// never notices.
TEST_F(SyncResilience, DaemonRestartsLoseNoPacket) {
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  ASSERT_TRUE(eventuallyDesired());
  ASSERT_NO_FATAL_FAILURE(startPing());
  ASSERT_NO_FATAL_FAILURE(startStream());

  constexpr int kRestarts = 10;
  for (int i = 1; i <= kRestarts; ++i) {
    const int sig = i % 2 == 1 ? SIGTERM : SIGKILL;
    ASSERT_TRUE(daemon_->stop(sig)) << "vpcguardd did not exit on signal " << sig << "\n"
                                    << daemon_->logTail();
    // Traffic goes on while no daemon runs at all.
    ASSERT_TRUE(morePingReplies(5))
        << "restart " << i << ": ping stopped while the daemon was down";
    ASSERT_NO_FATAL_FAILURE(startDaemon()) << "restart " << i;
    // It found its flows in place (same policy, interface indices recovered): nothing changed.
    EXPECT_EQ(daemon_->countInLog("resync_applied reason=startup"), 0U)
        << "restart " << i << " changed flows\n"
        << daemon_->logTail();
    ASSERT_TRUE(morePingReplies(5)) << "restart " << i << ": ping stopped after the start";
    ASSERT_TRUE(moreStreamBytes(8 * 1024)) << "restart " << i << ": the TCP stream stalled";
  }
  EXPECT_EQ(daemon_->starts(), kRestarts + 1);
  // Some more traffic after the last restart, so its effects are inside the measured window.
  ASSERT_TRUE(morePingReplies(25));
  ASSERT_TRUE(moreStreamBytes(64 * 1024));
  EXPECT_TRUE(switchIsDesired());

  ASSERT_TRUE(stream_->running()) << "the TCP stream broke: " << readFile(stream_status_)
                                  << readFile(dir_ + "/stream_client.out");
  const std::string retrans = streamRetransmissions();
  stream_->signal(SIGTERM);
  ASSERT_TRUE(stream_->waitExit(5s));
  const StreamStatus stream = streamStatus();
  EXPECT_EQ(stream.error, "") << "the TCP stream broke";
  // The stream sends every 10 ms; a lost segment would cost at least one retransmission timeout
  // (200 ms and up). Scheduling on a busy machine stays well below a second.
  EXPECT_LT(stream.max_gap_ms, 1000)
      << "the TCP stream stalled (retransmissions: " << retrans << ")";
  const PingReplies replies = stopPing();
  EXPECT_TRUE(replies.lost().empty())
      << replies.lost().size() << " of " << replies.highest()
      << " pings lost across the restarts: icmp_seq " << describeLost(replies.lost());
  std::cout << "[ info ] " << kRestarts << " restarts: " << replies.highest() << " pings, "
            << replies.lost().size() << " lost; stream " << stream.bytes << " bytes, longest gap "
            << stream.max_gap_ms << " ms, " << retrans << " retransmissions\n";
}

// (b) A restarted ovs-vswitchd comes back with the bridge (from OVSDB, fail-secure) and an empty
// table: nothing passes until vpcguardd notices and reinstalls everything in one bundle, so a
// blocked probe never arrives, at no moment.
TEST_F(SyncResilience, VswitchdRestartNeverLetsABlockedProbeThrough) {
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  ASSERT_TRUE(eventuallyDesired());
  ASSERT_NO_FATAL_FAILURE(startPing());
  const std::string web_cap = dir_ + "/web.pcap.txt";
  const std::string db_cap = dir_ + "/db.pcap.txt";
  ChildProcess* web_capture = startCapture(kWeb, web_cap);
  ChildProcess* db_capture = startCapture(kDb, db_cap);
  ASSERT_TRUE(web_capture != nullptr && db_capture != nullptr);
  const std::string prober_status = dir_ + "/prober.status";
  ChildProcess* prober = inVm(kBastion,
                              {python_, dir_ + "/prober.py", fmt::format("{},{}", kWebIp, kDbIp),
                               prober_status, std::to_string(kBlockedUdpPort),
                               std::to_string(kBlockedTcpPort), std::to_string(kAllowedPort)},
                              dir_ + "/prober.out");
  ASSERT_NE(prober, nullptr);
  const auto allowed = [&](const std::string& cap) {
    return arrivalsByPort(readFile(cap))[kAllowedPort];
  };
  // The controls arrive: the captures see what the switch delivers.
  ASSERT_TRUE(waitFor([&] { return allowed(web_cap) >= 3 && allowed(db_cap) >= 3; }, 20s))
      << readFile(dir_ + "/prober.out") << "\n"
      << readFile(web_cap) << readFile(db_cap);

  const auto rounds = [&] { return std::atoi(readFile(prober_status).c_str()); };
  const int rounds_before_kill = rounds();
  ASSERT_GT(rounds_before_kill, 0);
  const auto killed_at = Clock::now();
  std::string timeline = "(ovs-vswitchd killed at " + wallClock();
  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  // The VMs' ports come back: ovs-vswitchd re-creates them from OVSDB.
  for (const char* vm : {kWeb, kBastion, kDb}) {
    VGT_ASSERT_OK(sandbox_->ofport(lab_->vm(vm)->host_veth));
  }
  VGT_ASSIGN_OR_FAIL(std::string fail_mode,
                     sandbox_->vsctl("get-fail-mode " + std::string(kBridge)));
  EXPECT_NE(fail_mode.find("secure"), std::string::npos) << fail_mode;
  ASSERT_TRUE(eventuallyDesired());
  const auto restored_at = Clock::now();
  timeline += ", policy back by " + wallClock() + ")";
  // Allowed traffic works again: the daemon noticed the restart and reinstalled the policy.
  ASSERT_TRUE(morePingReplies(10)) << "ping does not come back after the restart\n";
  const size_t web_allowed = allowed(web_cap);
  const size_t db_allowed = allowed(db_cap);
  ASSERT_TRUE(waitFor(
      [&] { return allowed(web_cap) > web_allowed + 3 && allowed(db_cap) > db_allowed + 3; }, 20s))
      << "the allowed probes do not arrive after the restart";
  EXPECT_GE(daemon_->countInLog("openflow_lost"), 1U) << daemon_->logTail();
  // The probes went on all the time, and for a while after the policy was back.
  const int rounds_at_restore = rounds();
  ASSERT_TRUE(waitFor([&] { return rounds() >= rounds_at_restore + 30; }, 20s))
      << "the prober stopped: " << readFile(dir_ + "/prober.out");
  ASSERT_TRUE(prober->running()) << readFile(dir_ + "/prober.out");

  prober->signal(SIGTERM);
  EXPECT_TRUE(prober->waitExit(5s));
  const int total_rounds = rounds();
  for (ChildProcess* cap : {web_capture, db_capture}) {
    cap->signal(SIGINT);
    EXPECT_TRUE(cap->waitExit(5s));
  }
  for (const auto& [vm, cap] : {std::pair{kWeb, web_cap}, std::pair{kDb, db_cap}}) {
    const std::string text = readFile(cap);
    auto arrived = arrivalsByPort(text);
    EXPECT_EQ(arrived[kBlockedUdpPort], 0U)
        << vm << " received blocked UDP probes " << timeline << ":\n"
        << packetsTo(text, kBlockedUdpPort);
    EXPECT_EQ(arrived[kBlockedTcpPort], 0U)
        << vm << " received blocked TCP SYNs " << timeline << ":\n"
        << packetsTo(text, kBlockedTcpPort);
    std::smatch dropped;
    static const std::regex kDropped(R"((\d+) packets dropped by kernel)");
    EXPECT_TRUE(std::regex_search(text, dropped, kDropped) && dropped[1] == "0")
        << "the capture in " << vm << " missed packets, so its count proves nothing:\n"
        << text.substr(text.size() > 2000 ? text.size() - 2000 : 0);
  }
  const PingReplies replies = stopPing();
  EXPECT_TRUE(switchIsDesired());
  std::cout
      << "[ info ] " << total_rounds << " probe rounds (" << rounds_before_kill
      << " before the kill); flows back "
      << std::chrono::duration_cast<std::chrono::milliseconds>(restored_at - killed_at).count()
      << " ms after the kill; " << replies.lost().size() << " pings lost during the restart\n";
}

// (c) Drift by hand, with the default resync interval: vpcguardd must notice by itself (not by
// its periodic full comparison) and repair within a second, log it and count it. A foreign flow
// in one of the pipeline's tables is drift too; one in a table the pipeline does not use stays.
TEST_F(SyncResilience, HandMadeDriftIsRepairedWithinASecond) {
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  ASSERT_TRUE(eventuallyDesired());
  const std::string br = sandbox_->bridgeTarget(kBridge);
  VGT_ASSERT_OK(
      sandbox_->ofctl("add-flow " + br + " table=200,priority=5,cookie=0x42,actions=drop"));
  VGT_ASSIGN_OR_FAIL(auto ofports, bridgeOfports(*sandbox_, kBridge));
  VGT_ASSIGN_OR_FAIL(const std::vector<Flow> desired, desiredFlows(policy_, ofports, indices_));

  struct Drift {
    const char* what;
    std::string command;
  };
  const std::vector<Drift> drifts = {
      {"our flows of table 51 deleted", fmt::format("del-flows {} 'table=51,{}'", br, kOurCookie)},
      {"web's classification flow altered (actions)",
       fmt::format("mod-flows --strict {} 'table=0,priority=100,in_port={},actions=drop'", br,
                   ofports.at(kWeb))},
      {"the drop table's default replaced by a flow without our cookie",
       fmt::format("add-flow {} 'table=90,priority=0,cookie=0x0,actions=NORMAL'", br)},
      {"a foreign flow opening udp 9999 in table 51",
       fmt::format("add-flow {} 'table=51,priority=65000,cookie=0x42,udp,tp_dst={},"
                   "actions=resubmit(,60)'",
                   br, kBlockedUdpPort)},
  };
  for (const auto& drift : drifts) {
    SCOPED_TRACE(drift.what);
    VGT_ASSIGN_OR_FAIL(const DaemonStatus before, daemon_->status());
    const size_t logged_before = daemon_->countInLog("repaired");
    VGT_ASSERT_OK(sandbox_->ofctl(drift.command));
    const auto changed_at = Clock::now();
    std::string diff = "(no dump)";
    const bool repaired = waitFor(
        [&] {
          auto installed = installedFlows(*sandbox_, kBridge);
          diff = installed ? flowDiff(desired, *installed) : installed.error().message;
          return diff.empty();
        },
        10s, 10ms);
    const double seconds = std::chrono::duration<double>(Clock::now() - changed_at).count();
    ASSERT_TRUE(repaired) << "not repaired within 10 s: " << diff;
    EXPECT_LE(seconds, 1.0) << "repaired only after " << seconds << " s";
    std::cout << "[ info ] " << drift.what << ": repaired after " << seconds * 1000 << " ms\n";
    EXPECT_TRUE(waitFor(
        [&] {
          auto s = daemon_->status();
          return s && s->drift_repairs > before.drift_repairs;
        },
        5s))
        << "the repair was not counted (drift_repairs stays " << before.drift_repairs << ")";
    EXPECT_TRUE(waitFor([&] { return daemon_->countInLog("repaired") > logged_before; }, 5s))
        << "the repair was not logged\n"
        << daemon_->logTail();
  }
  EXPECT_TRUE(switchIsDesired());
  VGT_ASSIGN_OR_FAIL(std::string table200, sandbox_->ofctl("dump-flows " + br + " table=200"));
  EXPECT_NE(table200.find("cookie=0x42"), std::string::npos)
      << "a foreign flow outside the pipeline's tables must stay:\n"
      << table200;
}

// (d) 200 interfaces come and go (ports attached in batches of 20, detached in one
// transaction) while the original VMs talk: their traffic never notices, and the table follows.
TEST_F(SyncResilience, TwoHundredPortsComeAndGoWithoutLoss) {
  constexpr int kPorts = 200;
  // 200 more interfaces in the public subnet (10.0.1.30-229), alternately web servers and
  // bastions, so they are members of groups other rules refer to.
  std::string extended = lab_toml_;
  for (int i = 1; i <= kPorts; ++i) {
    extended += fmt::format(
        "\n[[network_interfaces]]\nid = \"eni-x{:03}\"\nsubnet_id = \"subnet-public\"\n"
        "mac_address = \"02:00:00:01:{:02x}:{:02x}\"\nprivate_ip_addresses = [\"10.0.1.{}\"]\n"
        "security_group_ids = [\"{}\"]\n",
        i, i / 256, i % 256, 29 + i, i % 2 == 0 ? "sg-web" : "sg-bastion");
  }
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  ASSERT_TRUE(eventuallyDesired());
  ASSERT_NO_FATAL_FAILURE(startPing());
  ASSERT_NO_FATAL_FAILURE(writeConfig(extended));
  ASSERT_TRUE(eventuallyDesired()) << "the extended policy was not applied\n";

  const auto attach_start = Clock::now();
  for (int batch = 0; batch < kPorts / 20; ++batch) {
    std::string cmd;
    for (int i = batch * 20 + 1; i <= batch * 20 + 20; ++i) {
      cmd += fmt::format(
          " -- add-port {0} x{1:03} -- set interface x{1:03} type=dummy "
          "external_ids:iface-id=eni-x{1:03}",
          kBridge, i);
    }
    VGT_ASSERT_OK(sandbox_->vsctl(cmd));
  }
  ASSERT_TRUE(eventuallyDesired(60s)) << "not all 200 ports got their flows\n";
  VGT_ASSIGN_OR_FAIL(auto attached, bridgeOfports(*sandbox_, kBridge));
  EXPECT_EQ(attached.size(), static_cast<size_t>(kPorts + 3));
  const auto attached_at = Clock::now();
  ASSERT_TRUE(morePingReplies(10));

  std::string detach;
  for (int i = 1; i <= kPorts; ++i) {
    detach += fmt::format(" -- del-port {} x{:03}", kBridge, i);
  }
  const auto detach_start = Clock::now();
  VGT_ASSERT_OK(sandbox_->vsctl(detach));
  ASSERT_TRUE(eventuallyDesired(60s)) << "the detached ports' flows stay\n";
  VGT_ASSIGN_OR_FAIL(auto remaining, bridgeOfports(*sandbox_, kBridge));
  EXPECT_EQ(remaining.size(), 3U);
  const auto detached_at = Clock::now();
  ASSERT_TRUE(morePingReplies(25));

  const PingReplies replies = stopPing();
  EXPECT_TRUE(replies.lost().empty())
      << replies.lost().size() << " of " << replies.highest()
      << " pings lost while ports came and went: icmp_seq " << describeLost(replies.lost());
  EXPECT_TRUE(switchIsDesired());
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::cout << "[ info ] 200 ports: attached and in the table after "
            << ms(attached_at - attach_start) << " ms, detached and gone after "
            << ms(detached_at - detach_start) << " ms; " << replies.highest() << " pings, "
            << replies.lost().size() << " lost\n";
}

}  // namespace
}  // namespace vpcguard::test
