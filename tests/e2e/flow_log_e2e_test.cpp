// Flow logs with real packets: vpcguardd on the lab (tests/data/flowlog-lab.toml), OVS's IPFIX
// to vpcguardd's collector, learned counting flows, and the AWS files it writes, compared with
// what each VM's own interface saw (tcpdump inside the VM): packets and bytes per interface,
// direction, verdict and 5-tuple, exactly.
#include <gtest/gtest.h>

#include <csignal>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/config_loader.h"
#include "flowlogs/reader.h"
#include "flowlogs/record.h"
#include "tests/harness/assertions.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/vpcguardd.h"

namespace vpcguard::test {
namespace {

using flowlog::FlowKey;

constexpr const char* kWeb = "10.0.1.10";
constexpr const char* kBastion = "10.0.1.20";
constexpr const char* kDb = "10.0.2.10";
constexpr const char* kWeb6 = "2600:1f18:abcd:1201::10";

// ---- what a VM's interface saw ---------------------------------------------------------------

struct Packet {
  FlowKey key;
  uint64_t ip_bytes = 0;
  uint8_t icmp6_type = 0;
};

uint32_t be16(const std::string& d, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(d[at])) << 8) |
         static_cast<uint8_t>(d[at + 1]);
}
uint32_t le32(const std::string& d, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<uint8_t>(d[at + i])) << (8 * i);
  }
  return v;
}

IpAddress addressAt(const std::string& d, size_t at, bool v6) {
  IpAddress a;
  a.family = v6 ? IpFamily::kV6 : IpFamily::kV4;
  for (size_t i = 0; i < (v6 ? 16U : 4U); ++i) {
    a.bytes[i] = static_cast<uint8_t>(d[at + i]);
  }
  return a;
}

// The IP packets of a pcap file (Ethernet link type, little-endian as tcpdump writes here).
Result<std::vector<Packet>> readPcap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string d = ss.str();
  if (d.size() < 24 || (le32(d, 0) != 0xa1b2c3d4U && le32(d, 0) != 0xa1b23c4dU)) {
    return makeError(path + ": not a little-endian pcap file (" + std::to_string(d.size()) +
                     " bytes)");
  }
  std::vector<Packet> out;
  for (size_t at = 24; at + 16 <= d.size();) {
    const size_t caplen = le32(d, at + 8);
    const size_t frame = at + 16;
    at = frame + caplen;
    if (at > d.size() || caplen < 14 + 20) {
      continue;
    }
    const uint32_t ethertype = be16(d, frame + 12);
    const size_t ip = frame + 14;
    Packet p;
    size_t l4 = 0;
    if (ethertype == 0x0800) {
      p.key.protocol = static_cast<uint8_t>(d[ip + 9]);
      p.key.src = addressAt(d, ip + 12, false);
      p.key.dst = addressAt(d, ip + 16, false);
      p.ip_bytes = be16(d, ip + 2);
      l4 = ip + (static_cast<size_t>(static_cast<uint8_t>(d[ip]) & 0x0f) * 4);
    } else if (ethertype == 0x86dd && caplen >= 14 + 40) {
      p.key.protocol = static_cast<uint8_t>(d[ip + 6]);
      p.key.src = addressAt(d, ip + 8, true);
      p.key.dst = addressAt(d, ip + 24, true);
      p.ip_bytes = be16(d, ip + 4) + 40;
      l4 = ip + 40;
    } else {
      continue;
    }
    if ((p.key.protocol == 6 || p.key.protocol == 17) && l4 + 4 <= frame + caplen) {
      p.key.src_port = static_cast<uint16_t>(be16(d, l4));
      p.key.dst_port = static_cast<uint16_t>(be16(d, l4 + 2));
    }
    if (p.key.protocol == 58 && l4 < frame + caplen) {
      p.icmp6_type = static_cast<uint8_t>(d[l4]);
    }
    out.push_back(p);
  }
  return out;
}

// What AWS never logs: link-local, multicast, broadcast, the subnets' reserved addresses, and
// neighbour discovery (which the switch answers itself).
bool neverLogged(const Packet& p) {
  for (const IpAddress& a : {p.key.src, p.key.dst}) {
    const std::string text = a.toString();
    if (a.isV4()) {
      const uint32_t v = a.v4Value();
      const uint32_t host = v & 0xff;
      if ((v >> 16) == 0xa9fe || (v >> 28) == 0xe || v == 0xffffffffU || host <= 3 ||
          host == 255) {
        return true;
      }
    } else if (a.bytes[0] == 0xff || (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80)) {
      return true;
    }
  }
  return p.key.protocol == 58 && p.icmp6_type >= 133 && p.icmp6_type <= 137;
}

// ---- what the flow logs say ------------------------------------------------------------------

struct Tally {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  bool operator==(const Tally&) const = default;
};
// interface, direction, action, src, dst, srcport, dstport, protocol
using TallyKey = std::tuple<std::string, std::string, std::string, std::string, std::string,
                            uint16_t, uint16_t, int>;
std::ostream& operator<<(std::ostream& os, const Tally& t) {
  return os << t.packets << " packets / " << t.bytes << " bytes";
}
std::string describe(const TallyKey& k) {
  const auto& [eni, dir, action, src, dst, sport, dport, proto] = k;
  return eni + " " + dir + " " + action + " " + src + ":" + std::to_string(sport) + " -> " + dst +
         ":" + std::to_string(dport) + " proto " + std::to_string(proto);
}

TallyKey keyFor(const std::string& eni, const char* dir, const char* action, const FlowKey& k) {
  const bool ports = k.protocol == 6 || k.protocol == 17;
  return {eni, dir, action, k.src.toString(), k.dst.toString(),
          ports ? k.src_port : uint16_t{0}, ports ? k.dst_port : uint16_t{0}, k.protocol};
}

class FlowLogE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    config_text_ = readFile(sourceDir() + "/tests/data/flowlog-lab.toml");
    auto loaded = config::loadPolicy(sourceDir() + "/tests/data/flowlog-lab.toml");
    ASSERT_TRUE(loaded) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
    VGT_ASSIGN_OR_FAIL(lab_, PolicyLab::start(policy_));
    dir_ = lab_->sandbox().dir();
    for (const auto& eni : policy_.network_interfaces) {
      for (const auto& a : eni.private_ip_addresses) {
        owner_[a.toString()] = eni.id;
      }
      for (const auto& a : eni.ipv6_addresses) {
        owner_[a.toString()] = eni.id;
      }
    }
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->stop(SIGKILL);
    }
    for (const auto& eni : captured_) {
      (void)lab_->exec(eni, "kill $(cat " + pcap(eni) + ".pid) 2>/dev/null; true");
    }
  }

  static std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string flowLogs(bool with_accept_log) const {
    std::string t = R"(
[[flow_logs]]
id = "fl-all"
resource_id = "vpc-lab"
traffic_type = "ALL"
log_destination = "file://DIR/all"
max_aggregation_interval = 60
log_format = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${vpc-id} ${subnet-id} ${flow-direction} ${type} ${vpcguard-rule} ${vpcguard-reason}"

[[flow_logs]]
id = "fl-reject"
resource_id = "subnet-private"
traffic_type = "REJECT"
log_destination = "file://DIR/reject"
)";
    if (with_accept_log) {
      t += R"(
[[flow_logs]]
id = "fl-accept"
resource_id = "eni-web1"
traffic_type = "ACCEPT"
log_destination = "file://DIR/accept"
max_aggregation_interval = 60
)";
    }
    for (size_t at = t.find("DIR"); at != std::string::npos; at = t.find("DIR", at)) {
      t.replace(at, 3, dir_);
    }
    return config_text_ + t;
  }

  // Writes the config by rename, as an editor or a deployment tool would.
  void writeConfig(const std::string& text) {
    const std::string tmp = dir_ + "/.flowlog.toml.tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), config().c_str()), 0);
  }
  std::string config() const { return dir_ + "/flowlog.toml"; }
  std::string pcap(const std::string& eni) const { return dir_ + "/" + eni + ".pcap"; }

  void startCapture(const std::string& eni) {
    const std::string file = pcap(eni);
    auto r = lab_->exec(eni, "tcpdump -i eth0 -nn -U -s 160 -w " + file + " ip or ip6 " +
                                 ">/dev/null 2>" + file + ".err & echo $! > " + file + ".pid");
    ASSERT_TRUE(r.ok()) << r.output;
    captured_.push_back(eni);
    ASSERT_TRUE(waitFor([&] { return readFile(file + ".err").find("listening") != std::string::npos; },
                        std::chrono::seconds(10)))
        << readFile(file + ".err");
  }
  void stopCaptures() {
    for (const auto& eni : captured_) {
      auto r = lab_->exec(eni, "kill -INT $(cat " + pcap(eni) + ".pid)");
      EXPECT_TRUE(r.ok()) << r.output;
    }
    for (const auto& eni : captured_) {
      EXPECT_TRUE(waitFor([&] { return lab_->exec(eni, "kill -0 $(cat " + pcap(eni) + ".pid) 2>/dev/null").exit_code != 0; },
                          std::chrono::seconds(10)));
    }
    captured_.clear();
  }

  // Expected records from the captures: what left a VM is its egress ACCEPT (no egress is
  // denied in this config), what reached a VM its ingress ACCEPT, and what was sent to a VM but
  // never reached it its ingress REJECT.
  std::map<TallyKey, Tally> expected() {
    std::map<TallyKey, Tally> out;
    std::map<TallyKey, Tally> sent_to;  // by receiver, as an ingress key
    for (const auto& eni : {"eni-web1", "eni-bastion", "eni-db1"}) {
      auto packets = readPcap(pcap(eni));
      EXPECT_TRUE(packets) << packets.error().message;
      if (!packets) {
        continue;
      }
      for (const auto& p : *packets) {
        if (neverLogged(p)) {
          continue;
        }
        const auto src = owner_.find(p.key.src.toString());
        const auto dst = owner_.find(p.key.dst.toString());
        if (src != owner_.end() && src->second == eni) {
          auto& t = out[keyFor(eni, "egress", "ACCEPT", p.key)];
          t.packets += 1;
          t.bytes += p.ip_bytes;
          if (dst != owner_.end()) {
            auto& s = sent_to[keyFor(dst->second, "ingress", "REJECT", p.key)];
            s.packets += 1;
            s.bytes += p.ip_bytes;
          }
        } else if (dst != owner_.end() && dst->second == eni) {
          auto& t = out[keyFor(eni, "ingress", "ACCEPT", p.key)];
          t.packets += 1;
          t.bytes += p.ip_bytes;
        }
      }
    }
    for (auto& [key, sent] : sent_to) {
      auto accepted = key;
      std::get<2>(accepted) = "ACCEPT";
      const Tally got = out.count(accepted) != 0 ? out[accepted] : Tally{};
      if (sent.packets > got.packets) {
        out[key] = Tally{sent.packets - got.packets, sent.bytes - got.bytes};
      }
    }
    return out;
  }

  // OK records of a flow log, summed by key (records of one key may fall in two intervals).
  std::map<TallyKey, Tally> logged(const flowlog::ReadResult& read) {
    std::map<TallyKey, Tally> out;
    for (const auto& r : read.records) {
      if (r.value("log-status") != "OK") {
        continue;
      }
      const auto v = [&](const char* f) { return std::string(r.value(f).value_or("?")); };
      const std::string dir = r.value("flow-direction") ? v("flow-direction") : "?";
      TallyKey k{v("interface-id"),
                 dir,
                 v("action"),
                 v("srcaddr"),
                 v("dstaddr"),
                 static_cast<uint16_t>(r.number("srcport").value_or(0)),
                 static_cast<uint16_t>(r.number("dstport").value_or(0)),
                 static_cast<int>(r.number("protocol").value_or(-1))};
      auto& t = out[k];
      t.packets += static_cast<uint64_t>(r.number("packets").value_or(0));
      t.bytes += static_cast<uint64_t>(r.number("bytes").value_or(0));
    }
    return out;
  }

  Result<flowlog::ReadResult> read(const std::string& which) {
    auto r = flowlog::readFlowLogs(dir_ + "/" + which, {});
    if (r) {
      for (const auto& e : r->errors) {
        ADD_FAILURE() << which << ": " << e.message;
      }
      for (const auto& rec : r->records) {
        EXPECT_EQ(rec.values.size(), rec.names->size()) << rec.path << ":" << rec.line_number;
      }
    }
    return r;
  }

  // Every OK record of `read` summed by key equals what the captures saw, and nothing else.
  void expectExactly(const flowlog::ReadResult& read) {
    const auto want = expected();
    ASSERT_FALSE(want.empty());
    const auto got = logged(read);
    for (const auto& [key, tally] : want) {
      auto it = got.find(key);
      EXPECT_TRUE(it != got.end() && it->second == tally)
          << describe(key) << ": expected " << tally << ", logged "
          << (it == got.end() ? std::string("nothing")
                              : std::to_string(it->second.packets) + " packets / " +
                                    std::to_string(it->second.bytes) + " bytes");
    }
    for (const auto& [key, tally] : got) {
      EXPECT_TRUE(want.count(key) != 0)
          << "logged but never seen on the wire: " << describe(key) << " " << tally;
    }
  }

  // The switch's flow counters and IPFIX are up to date: two full revalidation rounds (OVS
  // pushes datapath statistics to its flows when its revalidators run), and the samples they
  // caused have reached the collector.
  void settle() {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int i = 0; i < 2; ++i) {
      auto r = lab_->sandbox().appctl("revalidator/wait");
      EXPECT_TRUE(r) << r.error().message;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  void startDaemon(std::vector<std::string> extra = {}) {
    Vpcguardd::Options o;
    o.config = config();
    o.extra = std::move(extra);
    if (!daemon_) {
      daemon_ = std::make_unique<Vpcguardd>(lab_->sandbox(), o);
    }
    VGT_ASSERT_OK(daemon_->start());
    ASSERT_TRUE(daemon_->waitSynced(std::chrono::seconds(30))) << daemon_->logTail();
    ASSERT_TRUE(waitFor([&] { return daemon_->countInLog("ipfix_configured") > 0; },
                        std::chrono::seconds(10)))
        << daemon_->logTail();
  }

  void traffic() {
    // TCP with data, accepted both ways (web1 -> db:5432, sg-db allows sg-web, NACL 100/100).
    auto r = lab_->exec("eni-db1", "(timeout 20 nc -l 5432 > /dev/null 2>&1 &)");
    ASSERT_TRUE(r.ok()) << r.output;
    ASSERT_TRUE(waitFor([&] { return lab_->exec("eni-db1", "ss -ltn | grep -q ':5432 '").ok(); },
                        std::chrono::seconds(10)));
    r = lab_->exec("eni-web1", "head -c 20000 /dev/urandom | timeout 10 nc -q1 10.0.2.10 5432");
    EXPECT_TRUE(r.ok()) << r.output;
    // Rejected by the database's security group (the bastion is not in sg-web).
    (void)lab_->exec("eni-bastion", "nc -zw2 10.0.2.10 5432");
    // Rejected by the private subnet's NACL (no inbound entry for tcp/80: the * rule).
    (void)lab_->exec("eni-web1", "nc -zw2 10.0.2.10 80");
    // UDP accepted (sg-db udp 5353, NACL 140), and UDP rejected by web1's group.
    r = lab_->exec("eni-db1", "(timeout 10 nc -ul 5353 > /dev/null 2>&1 &)");
    ASSERT_TRUE(r.ok()) << r.output;
    ASSERT_TRUE(waitFor([&] { return lab_->exec("eni-db1", "ss -lun | grep -q ':5353 '").ok(); },
                        std::chrono::seconds(10)));
    r = lab_->exec("eni-web1", "printf 'one\\ntwo\\n' | nc -u -w1 10.0.2.10 5353");
    EXPECT_TRUE(r.ok()) << r.output;
    (void)lab_->exec("eni-bastion", "printf 'x' | nc -u -w1 10.0.1.10 9999");
    // ICMP through the router and NACLs.
    r = lab_->exec("eni-web1", "ping -c3 -i0.2 -s 200 10.0.2.10");
    EXPECT_TRUE(r.ok()) << r.output;
    // What AWS never logs: the subnet's router and DNS addresses, link-local services. They
    // leave the VM (its capture has them) and must make no record.
    (void)lab_->exec("eni-web1", "ping -c2 -i0.2 -W1 10.0.1.1; ping -c1 -W1 10.0.1.2; "
                                 "ping -c1 -W1 169.254.169.254; true");
    // IPv6 TCP in the public subnet (sg-web allows 443 from ::/0).
    r = lab_->exec("eni-web1", "(timeout 10 nc -6 -l 443 > /dev/null 2>&1 &)");
    ASSERT_TRUE(r.ok()) << r.output;
    ASSERT_TRUE(waitFor([&] { return lab_->exec("eni-web1", "ss -ltn | grep -q ':443 '").ok(); },
                        std::chrono::seconds(10)));
    r = lab_->exec("eni-bastion", std::string("echo hello | timeout 10 nc -6 -q1 ") + kWeb6 + " 443");
    EXPECT_TRUE(r.ok()) << r.output;
  }

  model::Policy policy_;
  std::string config_text_;
  std::unique_ptr<PolicyLab> lab_;
  std::string dir_;
  std::map<std::string, std::string> owner_;  // address -> interface id
  std::vector<std::string> captured_;
  std::unique_ptr<Vpcguardd> daemon_;
};

TEST_F(FlowLogE2e, RecordsMatchWhatTheInterfacesSaw) {
  writeConfig(flowLogs(true));
  startDaemon();
  auto sets = lab_->sandbox().vsctl("--columns=id list Flow_Sample_Collector_Set");
  ASSERT_TRUE(sets) << sets.error().message;
  EXPECT_NE(sets->find("30311"), std::string::npos) << *sets;

  for (const auto& eni : {"eni-web1", "eni-bastion", "eni-db1"}) {
    startCapture(eni);
  }
  traffic();

  // Removing a flow log: its open records are published at once, and nothing after.
  writeConfig(flowLogs(false));
  ASSERT_TRUE(waitFor([&] { return daemon_->countInLog("flow_log_published flow_log=fl-accept") > 0; },
                      std::chrono::seconds(10)))
      << daemon_->logTail();
  const auto removed_at = static_cast<int64_t>(std::time(nullptr));
  auto r = lab_->exec("eni-web1", "ping -c2 -i0.2 10.0.2.10");
  EXPECT_TRUE(r.ok()) << r.output;

  // Then stop: vpcguardd reads the counters and publishes the open interval.
  settle();
  stopCaptures();
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();
  const std::string log = daemon_->log();
  EXPECT_EQ(log.find("ipfix_records_lost"), std::string::npos) << daemon_->logTail();

  SCOPED_TRACE("vpcguardd's log:\n" + daemon_->logTail(60));
  VGT_ASSIGN_OR_FAIL(auto all, read("all"));
  expectExactly(all);

  // The kinds the test meant to produce are all there, with their deciding rule and reason.
  const FlowKey none{};
  (void)none;
  bool sg_reject = false;
  bool nacl_reject = false;
  bool db_accept_rule = false;
  bool v6 = false;
  for (const auto& rec : all.records) {
    const auto v = [&](const char* f) { return std::string(rec.value(f).value_or("?")); };
    if (v("log-status") != "OK") {
      continue;
    }
    if (v("interface-id") == "eni-db1" && v("action") == "REJECT" && v("srcaddr") == kBastion) {
      sg_reject = true;
      EXPECT_EQ(v("vpcguard-reason"), "sg-ingress-miss") << rec.line;
    }
    if (v("interface-id") == "eni-db1" && v("action") == "REJECT" && v("dstport") == "80") {
      nacl_reject = true;
      EXPECT_EQ(v("vpcguard-rule"), "acl-private_inbound_#*") << rec.line;
      EXPECT_EQ(v("vpcguard-reason"), "nacl-inbound-deny") << rec.line;
    }
    if (v("interface-id") == "eni-db1" && v("action") == "ACCEPT" && v("dstport") == "5432") {
      db_accept_rule = true;
      EXPECT_EQ(v("vpcguard-rule").rfind("sg-db_ingress_#", 0), 0U) << rec.line;
    }
    if (v("type") == "IPv6") {
      v6 = true;
      EXPECT_EQ(v("srcaddr") == kWeb6 || v("dstaddr") == kWeb6, true) << rec.line;
    }
    EXPECT_EQ(v("vpc-id"), "vpc-lab") << rec.line;
    EXPECT_EQ(v("version"), "5") << rec.line;
  }
  EXPECT_TRUE(sg_reject);
  EXPECT_TRUE(nacl_reject);
  EXPECT_TRUE(db_accept_rule);
  EXPECT_TRUE(v6);

  // REJECT-only on the private subnet: only rejects, only its interface.
  VGT_ASSIGN_OR_FAIL(auto rejects, read("reject"));
  size_t reject_ok = 0;
  for (const auto& rec : rejects.records) {
    EXPECT_EQ(rec.value("interface-id"), "eni-db1") << rec.line;
    if (rec.value("log-status") == "OK") {
      ++reject_ok;
      EXPECT_EQ(rec.value("action"), "REJECT") << rec.line;
    }
  }
  EXPECT_GE(reject_ok, 2U);

  // ACCEPT-only on web1: only accepts of web1, and nothing after its removal.
  VGT_ASSIGN_OR_FAIL(auto accepts, read("accept"));
  size_t accept_ok = 0;
  for (const auto& rec : accepts.records) {
    EXPECT_EQ(rec.value("interface-id"), "eni-web1") << rec.line;
    EXPECT_LE(rec.number("end").value_or(0), removed_at) << rec.line;
    if (rec.value("log-status") == "OK") {
      ++accept_ok;
      EXPECT_EQ(rec.value("action"), "ACCEPT") << rec.line;
    }
  }
  EXPECT_GE(accept_ok, 4U);
  (void)kWeb;
  (void)kDb;
}

// A flood of rejected packets beyond --flow-log-reject-rate: the meter drops their samples, and
// what it dropped is reported (SKIPDATA on the logged interfaces, with the reason), so that
// logged rejects plus reported loss equal what was sent.
TEST_F(FlowLogE2e, RejectFloodIsRateLimitedAndReportedAsSkipdata) {
  writeConfig(flowLogs(false));
  startDaemon({"--flow-log-reject-rate", "50"});
  startCapture("eni-bastion");
  // 2000 datagrams to a port web1's group does not open, at some 1,000 a second: far beyond
  // the limit, but paced so that the veth does not drop them before the switch reads them.
  auto r = lab_->exec("eni-bastion",
                      "python3 -c \"import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                      "for i in range(2000):\n s.sendto(b'x'*50, ('10.0.1.10', 9999))\n"
                      " if i % 10 == 9: time.sleep(0.01)\"");
  ASSERT_TRUE(r.ok()) << r.output;
  settle();
  stopCaptures();
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();

  auto sent = readPcap(pcap("eni-bastion"));
  ASSERT_TRUE(sent) << sent.error().message;
  uint64_t flood = 0;
  for (const auto& p : *sent) {
    flood += p.key.protocol == 17 && p.key.dst_port == 9999 ? 1 : 0;
  }
  ASSERT_EQ(flood, 2000U);
  // What the meter dropped, as vpcguardd reported it.
  uint64_t limited = 0;
  std::istringstream log(daemon_->log());
  for (std::string line; std::getline(log, line);) {
    const auto at = line.find("reject_samples_rate_limited count=");
    if (at != std::string::npos) {
      limited += std::stoull(line.substr(at + 34));
    }
  }
  VGT_ASSIGN_OR_FAIL(auto all, read("all"));
  uint64_t logged = 0;
  uint64_t skipped = 0;  // what web1's SKIPDATA records say was lost
  uint64_t left = 0;  // what the switch took from the bastion (its egress, all accepted)
  bool skipdata = false;
  for (const auto& rec : all.records) {
    if (rec.value("interface-id") == "eni-bastion" && rec.value("dstport") == "9999") {
      left += static_cast<uint64_t>(rec.number("packets").value_or(0));
    }
    if (rec.value("interface-id") != "eni-web1") {
      continue;
    }
    if (rec.value("log-status") == "SKIPDATA") {
      skipdata = true;
      // The reason and how many: the same count vpcguardd logged.
      const auto reason = std::string(rec.value("vpcguard-reason").value_or(""));
      EXPECT_EQ(reason.rfind("rate-limited:", 0), 0U) << rec.line;
      skipped += std::stoull(reason.substr(reason.find(':') + 1));
    } else if (rec.value("action") == "REJECT" && rec.value("dstport") == "9999") {
      logged += static_cast<uint64_t>(rec.number("packets").value_or(0));
    }
  }
  EXPECT_GT(limited, 0U) << daemon_->logTail();
  EXPECT_TRUE(skipdata);
  EXPECT_EQ(skipped, limited) << "the SKIPDATA records say how much the log says";
  // The meter is the switch's, not an interface's: every logged interface learns of the loss.
  VGT_ASSIGN_OR_FAIL(auto rejects, read("reject"));
  bool db_told = false;
  for (const auto& rec : rejects.records) {
    db_told = db_told || (rec.value("interface-id") == "eni-db1" &&
                          rec.value("log-status") == "SKIPDATA");
  }
  EXPECT_TRUE(db_told);
  EXPECT_LT(logged, flood);
  // Exact against what the switch took from the bastion (its egress records; a datagram the
  // veth dropped before the switch read it never met a verdict, in AWS terms never left the
  // interface), and most of the flood got there.
  EXPECT_EQ(logged + limited, left)
      << "logged " << logged << ", reported lost " << limited << ", bastion egress " << left;
  EXPECT_GE(left, flood / 2) << "the switch saw only " << left << " of " << flood;
}

// vpcguardd restarted between two bursts of traffic: the records of both runs together are
// exactly what the interfaces saw. The counting flows of the first run's connections are still
// in the switch (the second run takes their counters as a baseline, it does not count them
// again), and the second run decodes samples although OVS's exporter sent its templates to the
// first (vpcguardd resets the exporter when it starts).
TEST_F(FlowLogE2e, RestartNeitherLosesNorDoublesRecords) {
  writeConfig(flowLogs(false));
  startDaemon();
  for (const auto& eni : {"eni-web1", "eni-bastion", "eni-db1"}) {
    startCapture(eni);
  }
  auto r = lab_->exec("eni-web1", "ping -c3 -i0.2 10.0.2.10");
  EXPECT_TRUE(r.ok()) << r.output;
  (void)lab_->exec("eni-bastion", "nc -zw2 10.0.2.10 5432");
  settle();
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();
  startDaemon();
  r = lab_->exec("eni-web1", "ping -c2 -i0.2 10.0.2.10");  // same ICMP flow: counted on
  EXPECT_TRUE(r.ok()) << r.output;
  (void)lab_->exec("eni-bastion", "nc -zw2 10.0.2.10 5433");
  settle();
  stopCaptures();
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();
  SCOPED_TRACE("vpcguardd's log:\n" + daemon_->logTail(60));
  EXPECT_EQ(daemon_->countInLog("ipfix_template_unknown"), 0U);
  VGT_ASSIGN_OR_FAIL(auto all, read("all"));
  expectExactly(all);
}

// No traffic between the VMs (only what AWS never logs: neighbour discovery, router
// solicitations): every covered interface gets NODATA, and nothing else is written.
TEST_F(FlowLogE2e, IdleInterfacesGetNodata) {
  writeConfig(flowLogs(false));
  startDaemon();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();
  for (auto [which, covered] : {std::pair{"all", 3U}, std::pair{"reject", 1U}}) {
    VGT_ASSIGN_OR_FAIL(auto records, read(which));
    std::set<std::string> nodata;
    for (const auto& rec : records.records) {
      EXPECT_EQ(rec.value("log-status"), "NODATA") << which << ": " << rec.line;
      EXPECT_EQ(rec.value("srcaddr"), "-") << which << ": " << rec.line;
      nodata.insert(std::string(rec.value("interface-id").value_or("?")));
    }
    EXPECT_EQ(nodata.size(), covered) << which;
  }
}

}  // namespace
}  // namespace vpcguard::test
