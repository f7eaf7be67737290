// `ipfix_collector` with real packets: a flow log that names an external IPFIX collector makes
// vpcguardd add it to the bridge's one IPFIX row, next to vpcguardd's own collector, so the
// external collector gets the same datagrams: Open vSwitch's raw IPFIX. The external collector
// here is nfcapd (Debian package nfdump, installed by scripts/deps.sh), read back with nfdump.
//
// What reaches the external collector is a SUBSET of the traffic, not AWS-style records. OVS
// exports one record per packet that meets a sample() action (packetDeltaCount 1; caching is off)
// and the pipeline samples only rejected packets, the packets of a connection direction that no
// learned counting flow counted yet (its first packets; one packet meets several sample points,
// each a record: egress rule commit, egress count, ingress rule commit, ingress count), every
// new-state packet a rule commits (so each SYN retransmission again) and TCP FIN/RST. The packets
// of an established, accepted connection are counted by learned flows, which vpcguardd reads over
// OpenFlow: they are never exported. So a 5-packet ping shows up as its first request and reply.
// What each sample means is in the message's observation domain id (translator/pipeline.h).
//
// What nfdump 1.7 makes of OVS 3.1's export (seen here, with the datagrams decoded by hand):
// - templates: OVS sends them in ONE observation domain (the domain of the record due when it
//   sends them: at start and every 600 s) and uses them in every domain. nfcapd, as RFC 7011 says,
//   keeps templates per (exporter, domain) and drops the data of every other domain. Here the
//   first sampled packet is web1's echo request at its egress rule commit, so nfcapd decodes the
//   egress rule-commit domain only (web1's request, each of the bastion's SYNs); the rejects, the
//   replies and the counting samples arrive (nfcapd logs their domains as new exporters) but are
//   not decoded. The test asserts what arrives and what is decoded, not more.
// - packets/bytes: nfdump shows OVS's packetTotalCount/octetTotalCount (IEs 86/85: a running
//   total of the exporter), not the record's packetDeltaCount of 1: no count is asserted.
// - times: OVS's delta microseconds come out as 1970 dates; ICMP type.code as 0.0 (OVS sends
//   IEs 176/177): neither is asserted.
//
// ovs-vswitchd runs in the sandbox's own "hypervisor" network namespace, so "127.0.0.1:PORT" is
// that namespace's loopback: nfcapd runs there too.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "daemon/config_loader.h"
#include "flowlogs/reader.h"
#include "tests/harness/assertions.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/vpcguardd.h"
#include "translator/pipeline.h"

namespace vpcguard::test {
namespace {

constexpr const char* kWeb = "10.0.1.10";
constexpr const char* kBastion = "10.0.1.20";
constexpr const char* kDb = "10.0.2.10";
// The IANA IPFIX port. The namespace is the sandbox's own and vpcguardd's collector takes an
// ephemeral port (32768 and up), so nothing else can hold it; nfcapd says if it cannot bind.
constexpr int kPort = 4739;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Why the external collector's tools are missing, or empty.
std::string nfdumpMissing() {
  for (const char* tool : {"nfcapd", "nfdump"}) {
    if (!run(std::string("command -v ") + tool).ok()) {
      return std::string(tool) +
             " not found: install the Debian package 'nfdump' (scripts/deps.sh installs it)";
    }
  }
  return {};
}

// How many observation domains nfcapd heard from ("New ipfix exporter: SysID: N, Observation
// domain D from: ..." once per domain): each datagram that reached it, decoded or not, adds its
// domain.
size_t exporterDomains(const std::string& nfcapd_log) {
  size_t n = 0;
  for (size_t at = nfcapd_log.find("New ipfix exporter"); at != std::string::npos;
       at = nfcapd_log.find("New ipfix exporter", at + 1)) {
    ++n;
  }
  return n;
}

// One record as nfdump prints it.
struct NfRecord {
  std::string protocol;  // "ICMP", "TCP", ... (nfdump's names)
  std::string src;
  std::string dst;
  int src_port = 0;
  std::string dst_port;  // ICMP: "type.code"
  uint64_t packets = 0;
  uint64_t bytes = 0;
  std::string flags;  // TCP flags, "....S."
};

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// nfcapd in the switch's namespace, in the foreground as our child (PDEATHSIG: it dies with the
// test even when no destructor runs). It writes its file when it stops (SIGTERM): stop() before
// reading; the destructor stops it too, so a failing test leaves nothing running.
class Nfcapd {
 public:
  static Result<std::unique_ptr<Nfcapd>> start(const OvsSandbox& sandbox, const std::string& dir,
                                               int port) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return makeError("mkdir " + dir + ": " + ec.message());
    }
    std::unique_ptr<Nfcapd> n(new Nfcapd(dir));
    ChildProcess::Options o;
    // `ip netns exec` execs nfcapd in place: the child's pid is nfcapd's. -t 3600: no rotation
    // during the test (the file is written on SIGTERM); -C none: no site config file.
    o.argv = {"ip",
              "netns",
              "exec",
              sandbox.netns(),
              "nfcapd",
              "-b",
              "127.0.0.1",
              "-p",
              std::to_string(port),
              "-w",
              dir,
              "-t",
              "3600",
              "-C",
              "none"};
    o.output_path = n->log_;
    auto child = ChildProcess::spawn(o);
    if (!child) {
      return tl::unexpected(child.error().withContext("start nfcapd"));
    }
    n->process_ = std::move(*child);
    if (!waitFor(
            [&] {
              return n->log().find("Startup nfcapd") != std::string::npos ||
                     !n->process_->running();
            },
            std::chrono::seconds(10)) ||
        !n->process_->running()) {
      return makeError("nfcapd did not start on 127.0.0.1:" + std::to_string(port) + ":\n" +
                       n->log());
    }
    return n;
  }
  ~Nfcapd() { (void)stop(); }
  Nfcapd(const Nfcapd&) = delete;
  Nfcapd& operator=(const Nfcapd&) = delete;

  // SIGTERM (nfcapd then writes and renames its file), SIGKILL after 10 s. True if it exited
  // on its own.
  bool stop() {
    if (!process_) {
      return true;
    }
    process_->signal(SIGTERM);
    const bool exited = process_->waitExit(std::chrono::seconds(10));
    process_.reset();
    return exited;
  }
  [[nodiscard]] std::string log() const { return readFile(log_); }

  // Every record of the files nfcapd wrote (after stop()), and nfdump's text of them.
  Result<std::vector<NfRecord>> records(std::string* text) const {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("nfcapd.", 0) == 0 && name.find("current") == std::string::npos) {
        files.push_back(e.path().string());
      }
    }
    if (files.empty()) {
      return makeError("nfcapd wrote no file in " + dir_ + ":\n" + log());
    }
    std::vector<NfRecord> out;
    for (const auto& file : files) {
      auto r = runChecked("nfdump -r " + shellQuote(file) +
                          " -q -N -o 'fmt:%pr|%sa|%da|%sp|%dp|%pkt|%byt|%flg'");
      if (!r) {
        return tl::unexpected(r.error());
      }
      *text += *r;
      std::istringstream lines(*r);
      for (std::string line; std::getline(lines, line);) {
        std::vector<std::string> f;
        std::istringstream fields(line);
        for (std::string part; std::getline(fields, part, '|');) {
          f.push_back(trim(part));
        }
        if (f.size() < 7) {
          continue;
        }
        NfRecord rec;
        rec.protocol = f[0];
        rec.src = f[1];
        rec.dst = f[2];
        rec.src_port = std::atoi(f[3].c_str());
        rec.dst_port = f[4];
        rec.packets = std::strtoull(f[5].c_str(), nullptr, 10);
        rec.bytes = std::strtoull(f[6].c_str(), nullptr, 10);
        rec.flags = f.size() > 7 ? f[7] : "";
        out.push_back(rec);
      }
    }
    return out;
  }

 private:
  explicit Nfcapd(std::string dir) : dir_(std::move(dir)), log_(dir_ + ".log") {}
  std::string dir_;
  std::string log_;
  std::unique_ptr<ChildProcess> process_;
};

class FlowLogExport : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = nfdumpMissing();
    ASSERT_TRUE(missing.empty()) << missing;  // CI has it (scripts/deps.sh): fail, never skip
    const std::string file = sourceDir() + "/tests/data/flowlog-lab.toml";
    config_text_ = readFile(file);
    auto loaded = config::loadPolicy(file);
    ASSERT_TRUE(loaded) << loaded.error().toError().message;
    VGT_ASSIGN_OR_FAIL(lab_, PolicyLab::start(*loaded));
    dir_ = lab_->sandbox().dir();
  }
  void TearDown() override {
    // Before the lab: nfcapd lives in the lab's namespace.
    nfcapd_.reset();
    if (daemon_) {
      daemon_->stop(SIGKILL);
    }
  }

  std::string external() const { return "127.0.0.1:" + std::to_string(kPort); }
  std::string config() const { return dir_ + "/export.toml"; }

  std::string flowLog(bool with_collector) const {
    std::string t =
        "\n[[flow_logs]]\nid = \"fl-all\"\nresource_id = \"vpc-lab\"\n"
        "traffic_type = \"ALL\"\nlog_destination = \"file://" +
        dir_ + "/all\"\nmax_aggregation_interval = 60\n";
    if (with_collector) {
      t += "ipfix_collector = \"" + external() + "\"\n";
    }
    return config_text_ + t;
  }
  // By rename, as an editor or a deployment tool would.
  void writeConfig(const std::string& text) {
    const std::string tmp = dir_ + "/.export.toml.tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), config().c_str()), 0);
  }

  void startDaemon() {
    Vpcguardd::Options o;
    o.config = config();
    daemon_ = std::make_unique<Vpcguardd>(lab_->sandbox(), o);
    VGT_ASSERT_OK(daemon_->start());
    ASSERT_TRUE(daemon_->waitSynced(std::chrono::seconds(30))) << daemon_->logTail();
    ASSERT_TRUE(waitFor([&] { return daemon_->countInLog("ipfix_configured") > 0; },
                        std::chrono::seconds(10)))
        << daemon_->logTail();
  }

  // vpcguardd's own collector, from its log ("collector_listening address=127.0.0.1:N ...").
  std::string ownCollector() const {
    const std::string log = daemon_->log();
    const std::string key = "collector_listening address=";
    const auto at = log.find(key);
    if (at == std::string::npos) {
      return "";
    }
    const auto begin = at + key.size();
    return log.substr(begin, log.find_first_of(" \n", begin) - begin);
  }

  // The targets of every IPFIX row (`ovs-vsctl list IPFIX`).
  std::string ipfixTargets() {
    auto r = lab_->sandbox().vsctl("--columns=targets list IPFIX");
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : "";
  }

  std::string config_text_;
  std::unique_ptr<PolicyLab> lab_;
  std::string dir_;
  std::unique_ptr<Vpcguardd> daemon_;
  std::unique_ptr<Nfcapd> nfcapd_;
};

TEST_F(FlowLogExport, ExternalCollectorGetsOvsIpfix) {
  // The collector first: OVS sends its templates when the exporter starts.
  VGT_ASSIGN_OR_FAIL(nfcapd_, Nfcapd::start(lab_->sandbox(), dir_ + "/nfcapd", kPort));
  writeConfig(flowLog(true));
  startDaemon();
  const std::string own = ownCollector();
  ASSERT_FALSE(own.empty()) << daemon_->logTail();
  ASSERT_NE(own, external());
  const std::string targets = ipfixTargets();
  EXPECT_NE(targets.find("\"" + own + "\""), std::string::npos) << targets;
  EXPECT_NE(targets.find("\"" + external() + "\""), std::string::npos) << targets;
  EXPECT_EQ(daemon_->countInLog("ipfix_configured targets=\"" + own + "," + external() + "\""), 1U)
      << daemon_->logTail();

  // Accepted ICMP through the router and the private subnet's NACL, and a TCP connection
  // rejected by sg-db (the bastion is not in sg-web): its SYN and retransmissions.
  auto r = lab_->exec("eni-web1", std::string("ping -c5 -i0.2 ") + kDb);
  EXPECT_TRUE(r.ok()) << r.output;
  r = lab_->exec("eni-bastion", std::string("nc -zw2 ") + kDb + " 5432");
  EXPECT_FALSE(r.ok()) << "sg-db should refuse the bastion: " << r.output;
  // OVS exports at once (no cache); give the datagrams time to arrive, then flush nfcapd.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_TRUE(nfcapd_->stop()) << nfcapd_->log();
  const std::string nflog = nfcapd_->log();
  EXPECT_NE(nflog.find("Bad Packets: 0"), std::string::npos) << nflog;
  std::string text;
  VGT_ASSIGN_OR_FAIL(auto records, nfcapd_->records(&text));
  std::cout << "nfdump of what nfcapd received:\n" << text << "nfcapd:\n" << nflog;
  SCOPED_TRACE("nfdump:\n" + text + "nfcapd:\n" + nflog);

  // What arrived: datagrams in the observation domain of sg-db's rejects (nfcapd names each
  // new domain it hears from), besides the one its templates came in.
  const std::string reject_domain =
      "Observation domain " + std::to_string(pipeline::kVerdictSgIngressMiss) + " ";
  EXPECT_NE(nflog.find(reject_domain), std::string::npos)
      << "no datagram in the domain of sg-db's rejects reached nfcapd";
  EXPECT_GE(exporterDomains(nflog), 3U);
  // What nfcapd decoded (see the top of the file).
  size_t echo_requests = 0;
  size_t syns = 0;
  for (const auto& rec : records) {
    EXPECT_GE(rec.packets, 1U);
    EXPECT_GT(rec.bytes, 0U);
    const bool icmp = rec.protocol == "1" || rec.protocol == "ICMP";
    const bool tcp = rec.protocol == "6" || rec.protocol == "TCP";
    if (icmp && rec.src == kWeb && rec.dst == kDb) {
      ++echo_requests;
    }
    if (tcp && rec.src == kBastion && rec.dst == kDb && rec.dst_port == "5432") {
      ++syns;
    }
  }
  EXPECT_GE(echo_requests, 1U);
  // nc -w2 sends the SYN and its retransmission after 1 s; each is committed again at the
  // bastion's egress (SYN_SENT: still new) and sampled there, then rejected by sg-db.
  EXPECT_GE(syns, 2U);

  // vpcguardd's own collector still works with the extra target: its files after SIGTERM.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // OVS pushes flow counters
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();
  EXPECT_EQ(daemon_->log().find("ipfix_records_lost"), std::string::npos) << daemon_->logTail();
  auto read = flowlog::readFlowLogs(dir_ + "/all", {});
  ASSERT_TRUE(read) << read.error().message;
  for (const auto& e : read->errors) {
    ADD_FAILURE() << e.message;
  }
  uint64_t icmp_packets = 0;
  bool rejected = false;
  for (const auto& rec : read->records) {
    const auto v = [&](const char* f) { return std::string(rec.value(f).value_or("?")); };
    if (v("log-status") != "OK") {
      continue;
    }
    if (v("interface-id") == "eni-web1" && v("protocol") == "1" && v("srcaddr") == kWeb &&
        v("dstaddr") == kDb && v("action") == "ACCEPT") {
      icmp_packets += static_cast<uint64_t>(rec.number("packets").value_or(0));
    }
    if (v("interface-id") == "eni-db1" && v("srcaddr") == kBastion && v("dstport") == "5432" &&
        v("action") == "REJECT") {
      rejected = true;
    }
  }
  // vpcguardd's records count every packet (learned flows), unlike the external collector.
  EXPECT_EQ(icmp_packets, 5U) << daemon_->logTail(60);
  EXPECT_TRUE(rejected) << daemon_->logTail(60);
}

TEST_F(FlowLogExport, DroppingTheCollectorRemovesItsTarget) {
  VGT_ASSIGN_OR_FAIL(nfcapd_, Nfcapd::start(lab_->sandbox(), dir_ + "/nfcapd-1", kPort));
  writeConfig(flowLog(true));
  startDaemon();
  const std::string own = ownCollector();
  ASSERT_FALSE(own.empty()) << daemon_->logTail();
  std::string targets = ipfixTargets();
  ASSERT_NE(targets.find("\"" + external() + "\""), std::string::npos) << targets;
  auto r = lab_->exec("eni-web1", std::string("ping -c2 -i0.2 ") + kDb);  // heard by nfcapd-1
  EXPECT_TRUE(r.ok()) << r.output;

  writeConfig(flowLog(false));
  ASSERT_TRUE(waitFor([&] { return daemon_->countInLog("ipfix_configured") >= 2; },
                      std::chrono::seconds(10)))
      << daemon_->logTail();
  EXPECT_EQ(daemon_->countInLog("ipfix_configured targets=\"" + own + "\""), 1U)
      << daemon_->logTail();
  targets = ipfixTargets();
  EXPECT_EQ(targets.find(external()), std::string::npos) << targets;
  EXPECT_NE(targets.find("\"" + own + "\""), std::string::npos) << targets;
  // Without --no-wait, ovs-vsctl waits until ovs-vswitchd has applied the database: from here
  // on the exporter has no external target.
  VGT_ASSERT_OK(lab_->sandbox().vsctl("init"));

  // Traffic after the change reaches vpcguardd's collector and nothing reaches nfcapd: a new one
  // on the same port, so only datagrams from now on count. It cannot decode any (it has no
  // templates), but it names the domain of every datagram that arrives: it must name none.
  ASSERT_TRUE(nfcapd_->stop()) << nfcapd_->log();
  EXPECT_GE(exporterDomains(nfcapd_->log()), 1U) << "nfcapd heard nothing before the change:\n"
                                                 << nfcapd_->log();
  VGT_ASSIGN_OR_FAIL(nfcapd_, Nfcapd::start(lab_->sandbox(), dir_ + "/nfcapd-2", kPort));
  r = lab_->exec("eni-bastion", std::string("nc -zw2 ") + kDb + " 5432");
  EXPECT_FALSE(r.ok()) << r.output;
  r = lab_->exec("eni-web1", std::string("ping -c2 -i0.2 ") + kDb);
  EXPECT_TRUE(r.ok()) << r.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_TRUE(nfcapd_->stop()) << nfcapd_->log();
  EXPECT_EQ(exporterDomains(nfcapd_->log()), 0U)
      << "datagrams reached nfcapd after its target was removed:\n"
      << nfcapd_->log();
}

// Changing the IPFIX targets (here: dropping `ipfix_collector`) rewrites the IPFIX row of the
// same collector set: OVS 3.1 keeps the exporter, sends from a new socket (a new source port)
// and sends its templates again only at its 600 s refresh. vpcguardd keeps templates per
// exporter address, so its own records go on without a gap.
TEST_F(FlowLogExport, OwnRecordsSurviveDroppingTheCollector) {
  writeConfig(flowLog(true));
  startDaemon();
  auto r = lab_->exec("eni-web1", std::string("ping -c2 -i0.2 ") + kDb);
  EXPECT_TRUE(r.ok()) << r.output;
  writeConfig(flowLog(false));
  ASSERT_TRUE(waitFor([&] { return daemon_->countInLog("ipfix_configured") >= 2; },
                      std::chrono::seconds(10)))
      << daemon_->logTail();
  VGT_ASSERT_OK(lab_->sandbox().vsctl("init"));
  r = lab_->exec("eni-bastion", std::string("nc -zw2 ") + kDb + " 5432");
  EXPECT_FALSE(r.ok()) << r.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(daemon_->stop(SIGTERM)) << daemon_->logTail();
  auto read = flowlog::readFlowLogs(dir_ + "/all", {});
  ASSERT_TRUE(read) << read.error().message;
  bool rejected = false;
  for (const auto& rec : read->records) {
    if (rec.value("log-status") == "OK" && rec.value("srcaddr") == kBastion &&
        rec.value("dstport") == "5432" && rec.value("action") == "REJECT") {
      rejected = true;
    }
  }
  EXPECT_TRUE(rejected) << "sg-db's rejects after the change are not in the flow log\n"
                        << daemon_->logTail(60);
}

}  // namespace
}  // namespace vpcguard::test
