// Rule removal with real packets (configs/lab.toml in the namespace lab): a long-lived TCP
// connection from the bastion to the web server keeps sending while a rule is removed, and the
// test watches whether its echoes keep coming back.
//  - tracked (peer is a group): keeps working, a new connection fails (AWS)
//  - untracked (0.0.0.0/0 rule, web's egress allows all): stops at once (AWS)
//  - strict_revocation: the tracked one stops too; unless another rule still allows it, then
//    it goes on (the original direction re-labels it; a reply may need one retransmission)
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "tests/harness/assertions.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "translator/translate.h"

namespace vpcguard::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kWeb = "eni-web1";
constexpr const char* kBastion = "eni-bastion";
constexpr const char* kWebIp = "10.0.1.10";
constexpr int kSsh = 22;   // sg-web: from sg-bastion (a group peer: tracked)
constexpr int kHttp = 80;  // sg-web: from 0.0.0.0/0, and sg-web's egress allows all: untracked

// Echoes every byte back, any number of connections.
constexpr const char* kServer = R"(
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
def serve(c):
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)";

// Sends a numbered line every ~50 ms and appends every echoed line to a file, so the file grows
// exactly while both directions of the connection work. Never gives up on its own: a stalled
// connection just stops growing the file.
constexpr const char* kClient = R"(
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.settimeout(0.05)
out = open(sys.argv[3], "a", buffering=1)
seq, buf = 0, b""
while True:
    seq += 1
    try:
        s.sendall(b"%d\n" % seq)
    except socket.timeout:
        pass
    try:
        d = s.recv(4096)
        if not d:
            break
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.write(line.decode() + "\n")
    except socket.timeout:
        pass
)";

class RevocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = config::loadPolicy(sourceDir() + "/configs/lab.toml");
    ASSERT_TRUE(loaded.has_value()) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
  }

  void TearDown() override {
    if (lab_) {
      for (const auto& [vm, pid] : pids_) {
        (void)lab_->exec(vm, "kill " + pid);
      }
    }
    lab_.reset();
  }

  void start() {
    VGT_ASSIGN_OR_FAIL(lab_, PolicyLab::start(policy_));
    VGT_ASSERT_OK(lab_->install(policy_));
    dir_ = lab_->sandbox().dir();
    VGT_ASSERT_OK(runChecked("printf '%s' " + shellQuote(kServer) + " > " + dir_ + "/server.py"));
    VGT_ASSERT_OK(runChecked("printf '%s' " + shellQuote(kClient) + " > " + dir_ + "/client.py"));
  }

  void install() { VGT_ASSERT_OK(lab_->install(policy_)); }

  // Runs `command` in the background in `vm`; it is killed at tear-down (and by its timeout).
  void background(const std::string& vm, const std::string& command) {
    auto r = lab_->exec(vm, "timeout 300 " + command + " </dev/null >>" + dir_ + "/" + vm +
                                ".log 2>&1 & echo $!");
    ASSERT_TRUE(r.ok()) << r.output;
    pids_.emplace_back(vm, r.output.substr(0, r.output.find_first_of("\r\n")));
  }

  void serve(int port) {
    background(kWeb, fmt::format("python3 {}/server.py {}", dir_, port));
    const bool up = waitFor(
        [&] { return lab_->exec(kWeb, fmt::format("ss -ltnH 'sport = :{}' | grep -q .", port)).ok(); },
        10s);
    ASSERT_TRUE(up) << "echo server did not listen on " << port;
  }

  // A long-lived connection from the bastion to the web server; returns its echo file once
  // echoes flow.
  std::string connect(int port) {
    const std::string out = fmt::format("{}/echo-{}.txt", dir_, port);
    background(kBastion, fmt::format("python3 {}/client.py {} {} {}", dir_, kWebIp, port, out));
    EXPECT_TRUE(waitFor([&] { return echoes(out) >= 10; }, 10s))
        << "no echoes on port " << port << "\n" << logs();
    return out;
  }

  static size_t echoes(const std::string& file) {
    auto r = run("cat " + file + " 2>/dev/null | wc -l");
    return r.ok() ? std::stoul(r.output) : 0;
  }

  // Echoes keep arriving: 20 more within the deadline (~1 s at the client's pace).
  static bool keepsFlowing(const std::string& file) {
    const size_t before = echoes(file);
    return waitFor([&] { return echoes(file) >= before + 20; }, 10s);
  }

  // Echoes stop: no new one for a whole second, soon after the change (in-flight echoes and
  // the datapath's revalidation may add a few first).
  static bool stops(const std::string& file) {
    size_t last = echoes(file);
    auto since = std::chrono::steady_clock::now();
    return waitFor(
        [&] {
          const size_t now = echoes(file);
          if (now != last) {
            last = now;
            since = std::chrono::steady_clock::now();
            return false;
          }
          return std::chrono::steady_clock::now() - since >= 1s;
        },
        5s, 50ms);
  }

  // A fresh connection: true when the handshake completes.
  bool newConnectionWorks(int port) {
    return lab_
        ->exec(kBastion, fmt::format("timeout 3 bash -c 'exec 3<>/dev/tcp/{}/{}'", kWebIp, port))
        .ok();
  }

  void removeWebIngress(int port) {
    for (auto& g : policy_.security_groups) {
      if (g.id == "sg-web") {
        const size_t before = g.ingress.size();
        std::erase_if(g.ingress, [&](const model::SecurityGroupRule& r) {
          return r.ports && r.ports->from == port && std::holds_alternative<Cidr>(r.peer) ==
                                                         (port != kSsh);
        });
        ASSERT_LT(g.ingress.size(), before) << "no sg-web rule for port " << port;
      }
    }
    install();
  }

  void addWebIngress(int port, const char* peer) {
    model::SecurityGroupRule r;
    r.ip_protocol = model::kProtoTcp;
    r.ports = model::PortRange{port, port};
    r.peer = *Cidr::parse(peer);
    for (auto& g : policy_.security_groups) {
      if (g.id == "sg-web") {
        g.ingress.push_back(r);
      }
    }
  }

  // ct_label of the bastion's connection to `port` in web1's zone (where web1's ingress rules
  // commit it), as the userspace conntrack reports it; empty when there is none.
  std::string webLabel(int port) {
    auto dump = lab_->sandbox().appctl("dpctl/dump-conntrack");
    if (!dump) {
      ADD_FAILURE() << dump.error().message;
      return {};
    }
    std::istringstream lines(*dump);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(fmt::format("dport={})", port)) == std::string::npos ||
          line.find(fmt::format("zone={},", webZone())) == std::string::npos) {
        continue;
      }
      const auto at = line.find("labels=");
      if (at == std::string::npos) {
        return "0x0";
      }
      return line.substr(at + 7, line.find_first_of(",)", at) - at - 7);
    }
    return {};
  }

  // web1's conntrack zone: its interface index, the same assignment PolicyLab makes.
  uint16_t webZone() const { return (*assignInterfaceIndices(policy_, {})).at(kWeb); }

  static bool isChecked(const std::string& label) {
    // Bit 32 is the 9th hex digit from the right.
    return label.size() > 10 && ((std::stoul(label.substr(label.size() - 9, 1), nullptr, 16) & 1U) != 0);
  }

  std::string logs() {
    return run("tail -n 20 " + dir_ + "/*.log 2>/dev/null").output;
  }

  model::Policy policy_;
  std::unique_ptr<PolicyLab> lab_;
  std::string dir_;
  std::vector<std::pair<std::string, std::string>> pids_;
};

TEST_F(RevocationTest, TrackedConnectionOutlivesItsRule) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(serve(kSsh));
  const std::string echo = connect(kSsh);
  const std::string label = webLabel(kSsh);
  ASSERT_FALSE(label.empty()) << "no conntrack entry for the connection in web1's zone";
  EXPECT_FALSE(isChecked(label)) << label;
  ASSERT_NO_FATAL_FAILURE(removeWebIngress(kSsh));
  EXPECT_TRUE(keepsFlowing(echo)) << logs();
  EXPECT_FALSE(newConnectionWorks(kSsh)) << "the removed rule still admits new connections";
}

TEST_F(RevocationTest, UntrackedConnectionStopsAtOnce) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(serve(kHttp));
  const std::string echo = connect(kHttp);
  // Sanity: the connection is working before the change, so a stop means something.
  ASSERT_TRUE(keepsFlowing(echo)) << logs();
  EXPECT_TRUE(isChecked(webLabel(kHttp))) << webLabel(kHttp);
  ASSERT_NO_FATAL_FAILURE(removeWebIngress(kHttp));
  EXPECT_TRUE(stops(echo)) << echoes(echo) << " echoes";
  EXPECT_FALSE(keepsFlowing(echo));
  EXPECT_FALSE(newConnectionWorks(kHttp));
}

TEST_F(RevocationTest, StrictModeStopsTrackedConnections) {
  policy_.vpc.strict_revocation = true;
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(serve(kSsh));
  const std::string echo = connect(kSsh);
  ASSERT_TRUE(keepsFlowing(echo)) << logs();
  ASSERT_NO_FATAL_FAILURE(removeWebIngress(kSsh));
  EXPECT_TRUE(stops(echo)) << echoes(echo) << " echoes";
  EXPECT_FALSE(keepsFlowing(echo));
}

TEST_F(RevocationTest, StrictModeKeepsConnectionsAnotherRuleAllows) {
  policy_.vpc.strict_revocation = true;
  addWebIngress(kSsh, "10.0.1.0/24");  // also allows the bastion (10.0.1.20)
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(serve(kSsh));
  const std::string echo = connect(kSsh);
  const std::string before = webLabel(kSsh);
  EXPECT_TRUE(isChecked(before)) << before;
  ASSERT_NO_FATAL_FAILURE(removeWebIngress(kSsh));  // the sg-bastion rule; the CIDR one stays
  EXPECT_TRUE(keepsFlowing(echo)) << logs();
  // Still checked, now under the remaining rule. (Which of the two rules labelled it at first is
  // OVS's choice between two satisfied conjunctions, so the label may or may not have changed.)
  const std::string after = webLabel(kSsh);
  EXPECT_TRUE(isChecked(after)) << after;
  EXPECT_TRUE(newConnectionWorks(kSsh));
}

}  // namespace
}  // namespace vpcguard::test
