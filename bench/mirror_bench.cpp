// mirror_bench: what one traffic-mirror session costs the VM it mirrors, next to no session, in
// one run on the same lab and the same vpcguardd.
//
//   mirror_bench [--config FILE] [--seconds S] [--rounds R] [--packet-length N]
//
// The namespace lab of --config (default configs/lab.toml) plus a monitor VM (eni-bench-mon,
// 10.0.250.10, a subnet of its own), with the real vpcguardd; traffic eni-web1 -> eni-db1:5432
// measured as flowlog_bench --datapath measures it (bench_util.h: one iperf3 stream for TCP
// throughput; one client connecting and resetting in a loop for the new-connection rate):
//   (a) vpcguardd with the config and the monitor VM, no session;
//   (b) the same plus one traffic-mirror session on eni-web1 to the monitor VM with a filter that
//       accepts everything both ways: every packet eni-web1 sends or receives is copied.
// The config is replaced by rename between them (generated in the sandbox's temp dir); rounds go
// a,b / b,a / ... so both get early and late slots. A plain UDP socket on port 4789 inside the
// monitor VM (as on AWS) counts the copies during every measurement and checks their VNI: the run
// fails when a part of a (b) measurement got no copies, or an (a) one got any. It also prints
// how many copies arrived per packet the switch delivered to or from eni-web1 (1.000: none lost)
// and where copies were lost, if any (the monitor's switch port, its socket buffer).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/vpcguardd.h"

namespace {

using namespace vpcguard;
using bench::Figures;

constexpr const char* kClient = "eni-web1";
constexpr const char* kServer = "eni-db1";
constexpr const char* kMonitor = "eni-bench-mon";
constexpr int kPort = 5432;  // what configs/lab.toml lets eni-web1 open on eni-db1
constexpr uint16_t kVxlanPort = 4789;
constexpr uint32_t kVni = 7331;

int fail(const std::string& what) {
  std::fprintf(stderr, "mirror_bench: %s\n", what.c_str());
  return 1;
}
void progress(const std::string& what) { std::fprintf(stderr, "mirror_bench: %s\n", what.c_str()); }

// The monitor VM, in both (a) and (b): the lab's VMs and the bridge's ports stay the same.
std::string monitorToml() {
  return R"toml(

# mirror_bench: the monitor VM (a mirror target in (b)), in a subnet of its own.
[[subnets]]
id = "subnet-bench-monitor"
cidr_block = "10.0.250.0/24"

[[security_groups]]
id = "sg-bench-monitor"
name = "bench-monitor"
description = "mirror_bench's monitor VM: nothing inbound (copies bypass security groups)"

[[network_interfaces]]
id = "eni-bench-mon"
subnet_id = "subnet-bench-monitor"
mac_address = "02:00:00:00:fa:0a"
private_ip_addresses = ["10.0.250.10"]
security_group_ids = ["sg-bench-monitor"]
)toml";
}

// (b): one session on the client, every packet both ways, to the monitor VM.
std::string sessionToml(int packet_length) {
  std::string text = fmt::format(R"toml(

# mirror_bench: one session on {client}, accept-all filter, to the monitor VM.
[[traffic_mirror_targets]]
id = "tmt-bench"
network_interface_id = "{monitor}"

[[traffic_mirror_filters]]
id = "tmf-bench-all"

  [[traffic_mirror_filters.ingress_rules]]
  rule_number = 100
  rule_action = "accept"
  source_cidr_block = "0.0.0.0/0"
  destination_cidr_block = "0.0.0.0/0"

  [[traffic_mirror_filters.egress_rules]]
  rule_number = 100
  rule_action = "accept"
  source_cidr_block = "0.0.0.0/0"
  destination_cidr_block = "0.0.0.0/0"

[[traffic_mirror_sessions]]
id = "tms-bench"
network_interface_id = "{client}"
traffic_mirror_target_id = "tmt-bench"
traffic_mirror_filter_id = "tmf-bench-all"
session_number = 1
virtual_network_id = {vni}
)toml",
                                 fmt::arg("client", kClient), fmt::arg("monitor", kMonitor),
                                 fmt::arg("vni", kVni));
  if (packet_length > 0) {
    text += fmt::format("packet_length = {}\n", packet_length);
  }
  return text;
}

// Counts the VXLAN datagrams that reach UDP port 4789 inside a VM, on a thread of its own.
class CopyCounter {
 public:
  struct Counts {
    uint64_t copies = 0;
    uint64_t bytes = 0;      // UDP payload: VXLAN header + inner frame
    uint64_t other_vni = 0;  // not a VXLAN header with the session's VNI
    Counts operator-(const Counts& o) const {
      return {copies - o.copies, bytes - o.bytes, other_vni - o.other_vni};
    }
  };

  [[nodiscard]] static Result<std::unique_ptr<CopyCounter>> start(const std::string& netns) {
    std::unique_ptr<CopyCounter> c(new CopyCounter());
    std::string error;
    bench::inNetns(netns, [&] {
      c->fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      // Room for bursts while this thread waits for a CPU (root: beyond rmem_max).
      const int buffer = 16 << 20;
      (void)::setsockopt(c->fd_, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
      timeval tv{0, 100'000};  // the thread looks at stop_ this often
      (void)::setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(kVxlanPort);
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      if (::bind(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        error = std::string("bind UDP 4789 in ") + netns + ": " + std::strerror(errno);
      }
    });
    if (c->fd_ < 0 || !error.empty()) {
      return makeError(error.empty() ? "cannot open a UDP socket in " + netns : error);
    }
    c->thread_ = std::thread([p = c.get()] { p->run(); });
    return c;
  }
  ~CopyCounter() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  CopyCounter(const CopyCounter&) = delete;
  CopyCounter& operator=(const CopyCounter&) = delete;

  [[nodiscard]] Counts now() const { return {copies_.load(), bytes_.load(), other_vni_.load()}; }

 private:
  CopyCounter() = default;

  void run() {
    constexpr size_t kBatch = 64;
    constexpr size_t kSize = 9216;
    std::vector<std::vector<uint8_t>> buffers(kBatch, std::vector<uint8_t>(kSize));
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    while (!stop_) {
      for (size_t i = 0; i < kBatch; ++i) {
        iov[i] = {buffers[i].data(), kSize};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::recvmmsg(fd_, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
      if (n <= 0) {
        continue;  // the receive timeout: look at stop_
      }
      uint64_t bytes = 0;
      uint64_t other = 0;
      for (int i = 0; i < n; ++i) {
        const auto& b = buffers[static_cast<size_t>(i)];
        const size_t len = msgs[static_cast<size_t>(i)].msg_len;
        bytes += len;
        // RFC 7348: flags (I bit 0x08), 3 reserved bytes, the 24-bit VNI, 1 reserved byte.
        const uint32_t vni = len >= 8 ? (uint32_t{b[4]} << 16) | (uint32_t{b[5]} << 8) | b[6] : 0;
        if (len < 8 || (b[0] & 0x08) == 0 || vni != kVni) {
          ++other;
        }
      }
      copies_ += static_cast<uint64_t>(n);
      bytes_ += bytes;
      other_vni_ += other;
    }
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> copies_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> other_vni_{0};
  std::thread thread_;
};

// The monitor VM's counters: packets its eth0 received, and UDP datagrams its kernel dropped
// because a socket's buffer was full (/proc/net/snmp "Udp: ... RcvbufErrors").
struct VmCounters {
  uint64_t rx = 0;
  uint64_t udp_rcvbuf_errors = 0;
  VmCounters operator-(const VmCounters& o) const {
    return {rx - o.rx, udp_rcvbuf_errors - o.udp_rcvbuf_errors};
  }
};

VmCounters vmCounters(test::PolicyLab& lab, const std::string& vm) {
  const auto out = lab.exec(vm,
                            "cat /sys/class/net/eth0/statistics/rx_packets; "
                            "grep '^Udp:' /proc/net/snmp");
  std::istringstream in(out.output);
  VmCounters c;
  in >> c.rx;
  // Two "Udp:" lines: the field names, then the values.
  std::string names;
  std::string values;
  in >> std::ws;
  std::getline(in, names);
  std::getline(in, values);
  std::istringstream n(names);
  std::istringstream v(values);
  for (std::string name, value; n >> name && v >> value;) {
    if (name == "RcvbufErrors") {
      c.udp_rcvbuf_errors = std::stoull(value);
    }
  }
  return c;
}

// One switch port's counters (ovs-ofctl dump-ports): what the switch received from and sent to
// a VM, and what it could not hand to the VM's link.
struct PortCounters {
  uint64_t rx = 0;
  uint64_t tx = 0;
  uint64_t tx_lost = 0;  // tx drop + tx errs
  PortCounters operator-(const PortCounters& o) const {
    return {rx - o.rx, tx - o.tx, tx_lost - o.tx_lost};
  }
};

PortCounters portCounters(test::PolicyLab& lab, int ofport) {
  PortCounters c;
  auto out = lab.sandbox().ofctl(fmt::format("dump-ports br-int {}", ofport));
  if (!out) {
    return c;
  }
  // "rx pkts=N, bytes=N, drop=N, errs=N, ..." then "tx pkts=N, bytes=N, drop=N, errs=N, ...";
  // a counter the port does not have is "?".
  const auto field = [&](size_t from, const char* name) -> uint64_t {
    const size_t at = from == std::string::npos ? from : out->find(name, from);
    if (at == std::string::npos) {
      return 0;
    }
    const size_t digits = at + std::strlen(name);
    return std::isdigit(static_cast<unsigned char>((*out)[digits])) != 0
               ? std::stoull(out->substr(digits))
               : 0;
  };
  const size_t rx = out->find("rx pkts=");
  const size_t tx = out->find("tx pkts=");
  c.rx = field(rx, "rx pkts=");
  c.tx = field(tx, "tx pkts=");
  c.tx_lost = field(tx, "drop=") + field(tx, "errs=");
  return c;
}

// What the counters say at one moment.
struct Snapshot {
  CopyCounter::Counts copies;
  PortCounters client;   // eni-web1's switch port
  PortCounters server;   // eni-db1's
  PortCounters monitor;  // the monitor VM's
  VmCounters monitor_vm;
};

// What happened between two snapshots.
struct Delta {
  CopyCounter::Counts copies;  // read from the monitor's UDP socket
  // What the switch delivered to eni-web1 and to eni-db1 (all from eni-web1 here): the packets
  // the session copies. Not what it received from eni-web1: a veth counts packets the switch
  // never read (its socket full), which neither reach eni-db1 nor get copied.
  uint64_t client_packets = 0;
  uint64_t port_lost = 0;       // switch -> monitor link drops and errors
  uint64_t monitor_rx = 0;      // packets the monitor VM's eth0 received
  uint64_t socket_dropped = 0;  // copies the monitor's kernel dropped: socket buffer full

  Delta& operator+=(const Delta& o) {
    copies.copies += o.copies.copies;
    copies.bytes += o.copies.bytes;
    copies.other_vni += o.copies.other_vni;
    client_packets += o.client_packets;
    port_lost += o.port_lost;
    monitor_rx += o.monitor_rx;
    socket_dropped += o.socket_dropped;
    return *this;
  }
  [[nodiscard]] double copiesPerPacket() const {
    return client_packets > 0
               ? static_cast<double>(copies.copies) / static_cast<double>(client_packets)
               : 0.0;
  }
};

Delta between(const Snapshot& from, const Snapshot& to) {
  Delta d;
  d.copies = to.copies - from.copies;
  d.client_packets = (to.client - from.client).tx + (to.server - from.server).tx;
  d.port_lost = (to.monitor - from.monitor).tx_lost;
  const VmCounters vm = to.monitor_vm - from.monitor_vm;
  d.monitor_rx = vm.rx;
  d.socket_dropped = vm.udp_rcvbuf_errors;
  return d;
}

// One measurement: the figures, and the copies during its TCP and its connection part.
struct Sample {
  Figures figures;
  Delta tcp;
  Delta connections;
  [[nodiscard]] Delta total() const {
    Delta t = tcp;
    return t += connections;
  }
};

bool mirrorFlowsInstalled(test::PolicyLab& lab) {
  auto flows = lab.sandbox().dumpFlows("br-int");
  return flows && flows->find("->tun_id") != std::string::npos;
}

int run(const std::string& config_path, int seconds, int rounds, int packet_length) {
  const std::string base = bench::readFile(config_path);
  if (base.empty()) {
    return fail("cannot read --config " + config_path + " (a TOML file)");
  }
  const std::string plain = base + monitorToml();
  const std::string mirrored = plain + sessionToml(packet_length);

  // The lab from (b)'s config: that also checks the generated tables before anything starts.
  auto policy = config::loadPolicyFromDocuments({{"mirror_bench (b) config", mirrored}});
  if (!policy) {
    return fail("the generated config: " + policy.error().toError().message);
  }
  progress("starting the lab");
  auto started = test::PolicyLab::start(*policy);
  if (!started) {
    return fail(started.error().message);
  }
  const std::unique_ptr<test::PolicyLab> lab = std::move(*started);
  const auto* c = lab->vm(kClient);
  const auto* s = lab->vm(kServer);
  const auto* m = lab->vm(kMonitor);
  if (c == nullptr || s == nullptr || m == nullptr) {
    return fail("--config needs eni-web1 and eni-db1 (as configs/lab.toml)");
  }
  const std::string server_ip = s->spec.ipv4_cidr.substr(0, s->spec.ipv4_cidr.find('/'));
  auto counter = CopyCounter::start(m->netns);
  if (!counter) {
    return fail(counter.error().message);
  }

  const std::string cfg = lab->sandbox().dir() + "/bench.toml";
  if (!bench::replaceFile(cfg, plain)) {
    return fail("cannot write " + cfg);
  }
  test::Vpcguardd::Options o;
  o.config = cfg;
  o.log_level = "info";
  test::Vpcguardd daemon(lab->sandbox(), o);
  if (auto r = daemon.start(); !r) {
    return fail(r.error().message);
  }
  if (!daemon.waitSynced(std::chrono::seconds(30))) {
    return fail(std::string("vpcguardd did not sync (") +
                (daemon.running() ? "still running" : "exited") + ")\n" + daemon.logTail());
  }

  // Switches the session on or off and waits until it is in force: (b) when a copy of a ping
  // reached the monitor (flows, tunnel port, routes and neighbours all in place), (a) when the
  // mirror flows are gone.
  const auto apply = [&](bool mirroring) -> Result<void> {
    if (!bench::replaceFile(cfg, mirroring ? mirrored : plain)) {
      return makeError("cannot write " + cfg);
    }
    if (!test::waitFor([&] { return mirrorFlowsInstalled(*lab) == mirroring; },
                       std::chrono::seconds(30), std::chrono::milliseconds(50))) {
      return makeError(fmt::format("vpcguardd did not {} the session within 30 s\n{}",
                                   mirroring ? "install" : "remove", daemon.logTail()));
    }
    if (!mirroring) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // copies still in flight
      return {};
    }
    const uint64_t before = (*counter)->now().copies;
    const bool seen = test::waitFor(
        [&] {
          (void)lab->exec(kClient, fmt::format("ping -c1 -W1 {}", server_ip));
          return (*counter)->now().copies > before;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(100));
    if (!seen) {
      return makeError(
          "the session's flows are installed but no copy of a ping reached the "
          "monitor VM's UDP port 4789 within 15 s\n" +
          daemon.logTail());
    }
    return {};
  };

  const auto snapshot = [&] {
    return Snapshot{(*counter)->now(), portCounters(*lab, c->ofport), portCounters(*lab, s->ofport),
                    portCounters(*lab, m->ofport), vmCounters(*lab, kMonitor)};
  };
  std::vector<Sample> off;
  std::vector<Sample> on;
  bool mirroring = false;  // what the config says now
  for (int round = 0; round < rounds; ++round) {
    for (bool with_session :
         round % 2 == 0 ? std::vector<bool>{false, true} : std::vector<bool>{true, false}) {
      if (with_session != mirroring) {
        if (auto r = apply(with_session); !r) {
          return fail(r.error().message);
        }
        mirroring = with_session;
      }
      progress(fmt::format("round {} ({}) {}", round + 1, with_session ? "b" : "a",
                           with_session ? "one session, accept-all" : "no session"));
      Snapshot at_tcp;
      Snapshot at_connections;
      Snapshot at_end;
      auto f = bench::measure(*lab, kClient, kServer, server_ip, kPort, seconds,
                              [&](const std::string_view phase) {
                                if (phase != "tcp") {
                                  // The copies of the part's last packets, still on their way.
                                  std::this_thread::sleep_for(std::chrono::milliseconds(200));
                                }
                                (phase == "tcp"           ? at_tcp
                                 : phase == "connections" ? at_connections
                                                          : at_end) = snapshot();
                              });
      if (!f) {
        return fail(f.error().message + "\n" + daemon.logTail());
      }
      (with_session ? on : off)
          .push_back({*f, between(at_tcp, at_connections), between(at_connections, at_end)});
    }
  }
  const bool stopped = daemon.stop(SIGTERM);

  const auto mean = [](const std::vector<Sample>& v) {
    Figures f;
    f.upcalls_per_conn = 0;
    for (const auto& x : v) {
      f.gbps += x.figures.gbps / static_cast<double>(v.size());
      f.conn_per_s += x.figures.conn_per_s / static_cast<double>(v.size());
      f.upcalls_per_conn += x.figures.upcalls_per_conn / static_cast<double>(v.size());
    }
    return f;
  };
  Delta a_total;
  Delta b_tcp;
  Delta b_connections;
  for (const auto& x : off) {
    a_total += x.total();
  }
  for (const auto& x : on) {
    b_tcp += x.tcp;
    b_connections += x.connections;
  }
  Delta b_total = b_tcp;
  b_total += b_connections;
  const Figures a = mean(off);
  const Figures b = mean(on);
  const auto ratio = [](double x, double y) { return y > 0 ? x / y : 0.0; };
  const auto u = [](uint64_t x) { return static_cast<unsigned long long>(x); };
  const std::string length =
      packet_length > 0 ? fmt::format("packet_length {}", packet_length) : "whole packets";
  std::printf("== mirror_bench (%s -> %s:%d, %s, %d s each, %d round%s, load %.2f)\n", kClient,
              server_ip.c_str(), kPort, config_path.c_str(), seconds, rounds,
              rounds == 1 ? "" : "s", bench::loadAverage());
  std::printf(
      "session (b)                          accept-all both ways, to %s (local target), "
      "VNI %u, %s\n",
      kMonitor, kVni, length.c_str());
  std::printf("tcp_gbps (a) no session              %.2f\n", a.gbps);
  std::printf("tcp_gbps (b) one session             %.2f\n", b.gbps);
  std::printf("mirror_tcp_ratio (b)/(a)             %.2f\n", ratio(b.gbps, a.gbps));
  std::printf("new_conn_per_s (a) no session        %.0f\n", a.conn_per_s);
  std::printf("new_conn_per_s (b) one session       %.0f\n", b.conn_per_s);
  std::printf("mirror_conn_ratio (b)/(a)            %.2f\n", ratio(b.conn_per_s, a.conn_per_s));
  std::printf("upcalls_per_conn (a) / (b)           %.1f / %.1f\n", a.upcalls_per_conn,
              b.upcalls_per_conn);
  std::printf("copies (b) read at the monitor       %llu (%.1f MB), %llu with another VNI\n",
              u(b_total.copies.copies), static_cast<double>(b_total.copies.bytes) / 1e6,
              u(b_total.copies.other_vni));
  std::printf(
      "copies (b) per packet of %s     %.3f TCP part (%llu / %llu), %.3f connection part "
      "(%llu / %llu)\n",
      kClient, b_tcp.copiesPerPacket(), u(b_tcp.copies.copies), u(b_tcp.client_packets),
      b_connections.copiesPerPacket(), u(b_connections.copies.copies),
      u(b_connections.client_packets));
  std::printf(
      "copies (b) lost on the way           %llu at the switch port, %llu in the monitor's "
      "socket buffer; monitor eth0 received %llu packets\n",
      u(b_total.port_lost), u(b_total.socket_dropped), u(b_total.monitor_rx));
  std::printf("copies (a) at the monitor            %llu\n", u(a_total.copies.copies));
  for (size_t i = 0; i < off.size() && i < on.size(); ++i) {
    std::printf("round %zu: (a) %.2f Gbps %.0f conn/s, (b) %.2f Gbps %.0f conn/s, %llu copies\n",
                i + 1, off[i].figures.gbps, off[i].figures.conn_per_s, on[i].figures.gbps,
                on[i].figures.conn_per_s, u(on[i].total().copies.copies));
  }
  if (!stopped) {
    std::printf("WARNING: vpcguardd did not exit on SIGTERM within 10 s\n");
  }
  int rc = 0;
  for (size_t i = 0; i < on.size(); ++i) {
    if (on[i].tcp.copies.copies == 0 || on[i].connections.copies.copies == 0) {
      std::printf("FAIL: round %zu of (b) put no copy at the monitor VM during its %s part\n",
                  i + 1, on[i].tcp.copies.copies == 0 ? "TCP" : "connection");
      rc = 1;
    }
  }
  if (a_total.copies.copies != 0) {
    std::printf("FAIL: %llu copies reached the monitor VM without a session\n",
                u(a_total.copies.copies));
    rc = 1;
  }
  if (b_total.copies.other_vni != 0) {
    std::printf("FAIL: %llu datagrams at the monitor were not VXLAN with VNI %u\n",
                u(b_total.copies.other_vni), kVni);
    rc = 1;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mirror_bench: a mirrored VM with one traffic-mirror session vs none, real vpcguardd"};
  std::string config = std::string(VPCGUARD_SOURCE_DIR) + "/configs/lab.toml";
  int seconds = 10;
  int rounds = 2;
  int packet_length = 0;
  app.add_option("--config", config,
                 "A TOML file with eni-web1 and eni-db1 (web1 may open db1:5432)")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each measurement")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--rounds", rounds, "Measure (a) and (b) this many times each")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--packet-length", packet_length,
                 "The session's packet_length (bytes copied per packet); 0: whole packets")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  CLI11_PARSE(app, argc, argv);
  return run(config, seconds, rounds, packet_length);
}
