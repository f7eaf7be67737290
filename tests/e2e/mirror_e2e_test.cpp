// Traffic mirroring with real packets (issue 10): the real vpcguardd on the namespace lab
// (tests/data/mirror-lab.toml plus each case's sessions), real OVS, and the copies read where an
// appliance would read them: a plain UDP socket on port 4789 inside the monitor VM (a local
// target) or inside an appliance namespace on an underlay bridge (a remote target), and a packet
// socket on a SPAN port (port mirrors).
//
// How a case is checked. Packet sockets ("taps") on eth0 inside the source VMs record every frame
// the VM sent and received. The case says, per frame, which session should copy it (the filters'
// and the policy's semantics, written out for that traffic); every such frame must arrive exactly
// once as a copy with that session's VNI, its inner frame byte for byte the frame the VM sent (an
// egress copy) or was handed (an ingress copy, after the router's rewrite), cut to packet_length;
// and no other copy may arrive. On top of that the copies of the test's own UDP datagrams (each
// carries a tag and a counter) are decoded field by field and compared with what the test sent:
//   VXLAN: flags 0x08, reserved bytes 0, VNI; outer source address (from recvfrom);
//   inner Ethernet: destination, source, EtherType 0x0800;
//   inner IPv4: source, destination, protocol, TTL (64 as sent, 63 once routed), total length
//     (the original's, also in a truncated copy);
//   inner UDP: source and destination port, length; the payload bytes present (tag, counter and
//     filler) equal the bytes sent;
//   frame length == min(packet_length, original frame length).
// A case ends with a "fence": a last exchange whose copies must arrive; the copies of everything
// sent before it have arrived by then (same ports, same datapath threads), and 300 ms more catch
// a late duplicate.
//
// One lab and one vpcguardd serve every case of a run (ctest runs one case per process, so there
// each case has its own); a case rewrites the config (by rename, as an editor would) and waits
// until vpcguardd's status says it is connected and the switch holds exactly what the translator
// makes of that config, with the VXLAN port present iff a session exists and the port-mirror rows
// of the config. Every case restores the base config when it ends, also on failure, and what it
// changed by hand (Mirror rows, ovs-vswitchd routes, its neighbour aging time); a case that
// stopped vpcguardd or restarted ovs-vswitchd leaves both running.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "daemon/config_loader.h"
#include "flowlogs/reader.h"
#include "tests/harness/assertions.h"
#include "tests/harness/flow_check.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/vpcguardd.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kWeb = "eni-web1";
constexpr const char* kDb = "eni-db1";
constexpr const char* kMon = "eni-mon1";
constexpr uint16_t kVxlanPort = 4789;
constexpr const char* kLocalOuterSource = pipeline::kMirrorHostAddress;  // 169.254.118.1
constexpr const char* kUnderlayBridge = "br-underlay";
constexpr const char* kUnderlayAddress = "192.0.2.1";
constexpr const char* kApplianceAddress = "192.0.2.2";
constexpr const char* kApplianceMac = "02:00:00:c0:00:02";
constexpr const char* kSpanPort = "vpcg-span0";
// Every target's interface (the monitor VM's veth, the underlay) has the default MTU. A copy must
// fit it once encapsulated (outer IPv4 20 + UDP 8 + VXLAN 8 bytes): AWS truncates a mirrored
// packet to the target's MTU ("Traffic Mirroring limitations": MTU and packet length), so the
// inner frame is at most 1464 bytes here.
constexpr size_t kTargetMtu = 1500;
constexpr size_t kMaxInnerFrame = kTargetMtu - 20 - 8 - 8;
constexpr auto kCopyTimeout = 10s;
constexpr auto kGrace = 300ms;

// ---- sockets inside the VMs' namespaces ------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Makes a socket on a thread that joined `netns`: a socket stays in the namespace it was made in,
// so the test's own thread then uses it like any other.
Result<Fd> inNetns(const std::string& netns, const std::function<Result<Fd>()>& make) {
  Result<Fd> out = makeError("not run");
  std::thread t([&] {
    const std::string path = "/var/run/netns/" + netns;
    Fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) {
      out = makeError(errnoText("setns " + path));
      return;
    }
    out = make();
  });
  t.join();
  return out;
}

sockaddr_in v4Address(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

Result<Fd> udpSocket(const std::string& netns, uint16_t port) {
  return inNetns(netns, [port]() -> Result<Fd> {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      return makeError(errnoText("udp socket"));
    }
    const int one = 1;
    const int buffer = 4 << 20;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
    const sockaddr_in a = v4Address("0.0.0.0", port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      return makeError(errnoText("bind udp port " + std::to_string(port)));
    }
    return fd;
  });
}

// Every frame `ifname` sends and receives, whole.
Result<Fd> packetSocket(const std::string& netns, const std::string& ifname) {
  return inNetns(netns, [ifname]() -> Result<Fd> {
    Fd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    if (!fd) {
      return makeError(errnoText("packet socket"));
    }
    const int buffer = 8 << 20;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
    sockaddr_ll a{};
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETH_P_ALL);
    a.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (a.sll_ifindex == 0 ||
        ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      return makeError(errnoText("bind packet socket to " + ifname));
    }
    return fd;
  });
}

Result<Fd> tcpSocket(const std::string& netns) {
  return inNetns(netns, []() -> Result<Fd> {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      return makeError(errnoText("tcp socket"));
    }
    const int one = 1;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    return fd;
  });
}

bool readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, timeout.count()))) > 0;
}

struct Received {
  std::string data;
  std::string from;  // source address
  uint16_t from_port = 0;
};

std::optional<Received> receiveOne(int fd, std::chrono::milliseconds timeout) {
  if (!readable(fd, timeout)) {
    return std::nullopt;
  }
  std::string buf(65536, '\0');
  sockaddr_in from{};
  socklen_t len = sizeof from;
  const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &len);
  if (n < 0) {
    return std::nullopt;
  }
  buf.resize(static_cast<size_t>(n));
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
  return Received{std::move(buf), text, ntohs(from.sin_port)};
}

// ---- the decoder -----------------------------------------------------------------------------

uint16_t be16(const std::string& d, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(d[at]) << 8) |
                               static_cast<uint8_t>(d[at + 1]));
}

std::string macAt(const std::string& d, size_t at) {
  std::string out;
  for (size_t i = 0; i < 6; ++i) {
    out += fmt::format("{}{:02x}", i == 0 ? "" : ":", static_cast<uint8_t>(d[at + i]));
  }
  return out;
}

std::string ipv4At(const std::string& d, size_t at) {
  return fmt::format("{}.{}.{}.{}", static_cast<uint8_t>(d[at]), static_cast<uint8_t>(d[at + 1]),
                     static_cast<uint8_t>(d[at + 2]), static_cast<uint8_t>(d[at + 3]));
}

// An Ethernet frame, possibly cut short (a truncated copy): what its bytes hold, decoded as far
// as they go.
struct Frame {
  std::string bytes;
  std::string eth_dst;
  std::string eth_src;
  uint16_t ethertype = 0;
  bool ipv4 = false;
  uint16_t ip_total_length = 0;
  uint8_t ttl = 0;
  uint8_t protocol = 0;
  std::string ip_src;
  std::string ip_dst;
  std::optional<uint16_t> src_port;
  std::optional<uint16_t> dst_port;
  std::optional<uint16_t> udp_length;
  std::optional<uint8_t> tcp_flags;
  std::optional<uint8_t> icmp_type;
  std::string payload;  // the UDP or TCP payload bytes present

  [[nodiscard]] bool udp() const { return ipv4 && protocol == 17 && dst_port.has_value(); }
  // The test's tag ("VGM <tag>|..." at the start of a UDP payload), or "".
  [[nodiscard]] std::string tag() const {
    if (!udp() || payload.rfind("VGM ", 0) != 0) {
      return {};
    }
    const size_t bar = payload.find('|');
    return payload.substr(4, bar == std::string::npos ? std::string::npos : bar - 4);
  }
};

Frame decodeFrame(std::string bytes) {
  Frame f;
  f.bytes = std::move(bytes);
  const std::string& d = f.bytes;
  if (d.size() < 14) {
    return f;
  }
  f.eth_dst = macAt(d, 0);
  f.eth_src = macAt(d, 6);
  f.ethertype = be16(d, 12);
  constexpr size_t ip = 14;
  if (f.ethertype != 0x0800 || d.size() < ip + 20 || (static_cast<uint8_t>(d[ip]) >> 4) != 4) {
    return f;
  }
  const size_t ihl = static_cast<size_t>(static_cast<uint8_t>(d[ip]) & 0x0f) * 4;
  if (ihl < 20 || d.size() < ip + ihl) {
    return f;
  }
  f.ipv4 = true;
  f.ip_total_length = be16(d, ip + 2);
  f.ttl = static_cast<uint8_t>(d[ip + 8]);
  f.protocol = static_cast<uint8_t>(d[ip + 9]);
  f.ip_src = ipv4At(d, ip + 12);
  f.ip_dst = ipv4At(d, ip + 16);
  const size_t l4 = ip + ihl;
  const size_t end = std::min(d.size(), ip + f.ip_total_length);  // this packet's bytes present
  if ((be16(d, ip + 6) & 0x1fff) != 0) {
    return f;  // a later fragment: no transport header
  }
  if (f.protocol == 17 && l4 + 8 <= d.size()) {
    f.src_port = be16(d, l4);
    f.dst_port = be16(d, l4 + 2);
    f.udp_length = be16(d, l4 + 4);
    if (end > l4 + 8) {
      f.payload = d.substr(l4 + 8, end - l4 - 8);
    }
  } else if (f.protocol == 6 && l4 + 20 <= d.size()) {
    f.src_port = be16(d, l4);
    f.dst_port = be16(d, l4 + 2);
    f.tcp_flags = static_cast<uint8_t>(d[l4 + 13]);
    const size_t data = l4 + static_cast<size_t>(static_cast<uint8_t>(d[l4 + 12]) >> 4) * 4;
    if (end > data) {
      f.payload = d.substr(data, end - data);
    }
  } else if (f.protocol == 1 && l4 < d.size()) {
    f.icmp_type = static_cast<uint8_t>(d[l4]);
  }
  return f;
}

std::string describe(const Frame& f) {
  std::string out = fmt::format("[{} bytes] {} > {}", f.bytes.size(), f.eth_src, f.eth_dst);
  if (!f.ipv4) {
    return out + fmt::format(" ethertype {:#06x}", f.ethertype);
  }
  out += fmt::format(" {}", f.ip_src);
  if (f.src_port) {
    out += fmt::format(":{}", *f.src_port);
  }
  out += fmt::format(" > {}", f.ip_dst);
  if (f.dst_port) {
    out += fmt::format(":{}", *f.dst_port);
  }
  out += fmt::format(" proto {} ttl {} iplen {}", f.protocol, f.ttl, f.ip_total_length);
  if (f.icmp_type) {
    out += fmt::format(" icmp type {}", *f.icmp_type);
  }
  if (f.tcp_flags) {
    out += fmt::format(" tcp flags {:#04x}", *f.tcp_flags);
  }
  if (const std::string t = f.tag(); !t.empty()) {
    out += " tag " + t;
  }
  return out;
}

// A VXLAN copy as the target's UDP socket received it.
struct Copy {
  std::string outer_source;
  uint8_t flags = 0;
  bool reserved_zero = false;
  uint32_t vni = 0;
  Frame inner;
};

std::optional<Copy> decodeVxlan(const Received& r) {
  const std::string& d = r.data;
  if (d.size() < 8) {
    return std::nullopt;
  }
  Copy c;
  c.outer_source = r.from;
  c.flags = static_cast<uint8_t>(d[0]);
  c.reserved_zero = d[1] == 0 && d[2] == 0 && d[3] == 0 && d[7] == 0;
  c.vni = (static_cast<uint32_t>(static_cast<uint8_t>(d[4])) << 16) |
          (static_cast<uint32_t>(static_cast<uint8_t>(d[5])) << 8) | static_cast<uint8_t>(d[6]);
  c.inner = decodeFrame(d.substr(8));
  return c;
}

std::string describe(const Copy& c) {
  return fmt::format("vni {} from {}: {}", c.vni, c.outer_source, describe(c.inner));
}

// An ARP packet in a frame (Ethernet, IPv4), as far as the test looks at it.
struct Arp {
  uint16_t op = 0;
  std::string sha;
  std::string spa;
  std::string tha;
  std::string tpa;
};

std::optional<Arp> arpOf(const Frame& f) {
  const std::string& d = f.bytes;
  if (f.ethertype != 0x0806 || d.size() < 42 || be16(d, 14) != 1 || be16(d, 16) != 0x0800) {
    return std::nullopt;
  }
  return Arp{be16(d, 20), macAt(d, 22), ipv4At(d, 28), macAt(d, 32), ipv4At(d, 38)};
}

std::string describe(const Arp& a) {
  return fmt::format("arp {} {} ({}) -> {} ({})", a.op == 1 ? "request" : "reply", a.spa, a.sha,
                     a.tpa, a.tha);
}

std::string macBytes(const std::string& mac) {
  std::string out;
  for (size_t i = 0; i < 6; ++i) {
    out += static_cast<char>(std::stoi(mac.substr(i * 3, 2), nullptr, 16));
  }
  return out;
}

std::string ipv4Bytes(const std::string& ip) {
  in_addr a{};
  ::inet_pton(AF_INET, ip.c_str(), &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

// An Ethernet frame with an ARP packet, padded to the minimum frame size.
std::string arpFrame(uint16_t op, const std::string& eth_dst, const std::string& sha,
                     const std::string& spa, const std::string& tha, const std::string& tpa) {
  std::string f = macBytes(eth_dst) + macBytes(sha);
  f += std::string{'\x08', '\x06', '\x00', '\x01', '\x08', '\x00', '\x06', '\x04'};
  f += static_cast<char>(op >> 8);
  f += static_cast<char>(op & 0xff);
  f += macBytes(sha) + ipv4Bytes(spa) + macBytes(tha) + ipv4Bytes(tpa);
  f.resize(60, '\0');
  return f;
}

// In kMirrorHostSubnet (169.254.118.0/24).
bool inMirrorHostSubnet(const std::string& ip) { return ip.rfind("169.254.118.", 0) == 0; }

// A frame a tap saw.
struct TapFrame {
  bool sent = false;  // by the VM (else received by it)
  Frame frame;
};

// Everything queued on a packet socket now.
void drainTap(int fd, std::vector<TapFrame>& out) {
  std::string buf(65536, '\0');
  for (;;) {
    sockaddr_ll from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      return;
    }
    out.push_back(TapFrame{from.sll_pkttype == PACKET_OUTGOING,
                           decodeFrame(buf.substr(0, static_cast<size_t>(n)))});
  }
}

// ---- what the test sends ---------------------------------------------------------------------

// One UDP datagram of the test: its payload starts with "VGM <tag>|" and is unique.
struct Datagram {
  std::string tag;
  std::string payload;
  std::string from;  // interface ids
  std::string to;
  std::string src_ip;
  std::string dst_ip;
  uint16_t sport = 0;
  uint16_t dport = 0;
  [[nodiscard]] size_t frameLength() const { return 14 + 20 + 8 + payload.size(); }
};

std::string payloadFor(const std::string& tag, size_t size) {
  std::string p = "VGM " + tag + "|";
  for (size_t i = p.size(); i < size; ++i) {
    p += static_cast<char>('a' + (i % 26));
  }
  return p;
}

// A mirror session as far as its copies show it.
struct SessionView {
  std::string source;  // interface id
  uint32_t vni = 0;
  std::optional<int> packet_length;
};

// How many bytes of a frame of `length` bytes a copy carries: packet_length if set, and never
// more than fits the target's MTU.
size_t copyLength(size_t length, std::optional<int> packet_length) {
  const size_t limit = std::min(
      kMaxInnerFrame, packet_length ? static_cast<size_t>(*packet_length) : kMaxInnerFrame);
  return std::min(length, limit);
}

std::string cut(const std::string& frame, std::optional<int> packet_length) {
  return frame.substr(0, copyLength(frame.size(), packet_length));
}

// An extra network namespace of the test (an appliance, a SPAN receiver) with one veth whose
// other end, `host_end`, is in the hypervisor namespace. Named vgt-* (tests/cleanup-leftovers.sh);
// deleted with its veth when destroyed, also on SIGINT/SIGTERM.
class ExtraNetns {
 public:
  static Result<std::unique_ptr<ExtraNetns>> create(const OvsSandbox& sandbox,
                                                    const std::string& role,
                                                    const std::string& host_end) {
    auto ns = std::unique_ptr<ExtraNetns>(
        new ExtraNetns(sandbox.netns() + "-" + role, sandbox.netns(), host_end));
    const std::string script = fmt::format(
        "set -e\n"
        "ip netns add {0}\n"
        "ip -n {0} link set lo up\n"
        "ip netns exec {0} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'\n"
        "ip netns exec {0} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'\n"
        "ip -n {1} link add {2} type veth peer name eth0 netns {0}\n"
        "ip -n {1} link set {2} up\n"
        "ip -n {0} link set eth0 up\n",
        ns->name_, ns->hv_, host_end);
    if (auto r = runChecked("sh -c " + shellQuote(script)); !r) {
      return tl::unexpected(r.error().withContext("extra namespace " + ns->name_));
    }
    return ns;
  }
  ~ExtraNetns() {
    cleanup(name_, hv_, host_end_);
    SignalCleanup::remove(cleanup_id_);
  }
  ExtraNetns(const ExtraNetns&) = delete;
  ExtraNetns& operator=(const ExtraNetns&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] CommandResult exec(const std::string& command) const {
    return run("ip netns exec " + name_ + " sh -c " + shellQuote(command), 30s);
  }

 private:
  ExtraNetns(std::string name, std::string hv, std::string host_end)
      : name_(std::move(name)), hv_(std::move(hv)), host_end_(std::move(host_end)) {
    cleanup_id_ = SignalCleanup::add([n = name_, h = hv_, e = host_end_] { cleanup(n, h, e); });
  }
  static void cleanup(const std::string& name, const std::string& hv, const std::string& end) {
    (void)run("ip -n " + hv + " link delete " + end + " 2>/dev/null; ip netns delete " + name +
              " 2>/dev/null; true");
  }

  std::string name_;
  std::string hv_;
  std::string host_end_;
  int cleanup_id_ = 0;
};

// ---- the fixture -----------------------------------------------------------------------------

// The lab, vpcguardd and the monitor's VXLAN socket: shared by the cases of one run.
struct Env {
  std::unique_ptr<PolicyLab> lab;
  std::unique_ptr<Vpcguardd> daemon;
  std::string base_text;
  std::string config;    // the file vpcguardd reads
  std::string written;   // what it holds now
  model::Policy policy;  // what it holds now, loaded
  std::map<std::string, uint16_t> indices;
  Fd monitor;       // UDP 4789 inside eni-mon1
  int applied = 0;  // configs applied

  ~Env() {
    daemon.reset();
    monitor.reset();  // before the namespace goes
    lab.reset();
  }
};

class MirrorE2e : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { env_.reset(); }

  void SetUp() override {
    if (auto why = NsLab::unavailableReason()) {
      GTEST_SKIP() << *why;
    }
    case_started_ = Clock::now();
    if (!env_) {
      ASSERT_NO_FATAL_FAILURE(startEnv());
    }
    if (!env_->daemon->running()) {
      VGT_ASSERT_OK(env_->daemon->start());
      ASSERT_TRUE(env_->daemon->waitSynced(30s)) << env_->daemon->logTail();
    }
    ASSERT_NO_FATAL_FAILURE(applyConfig(""));
    VGT_ASSERT_OK(env_->lab->flushConntrack());
    std::vector<Copy> stale;
    drainCopies(env_->monitor.get(), stale);
  }

  void TearDown() override {
    if (!env_) {
      return;
    }
    if (HasFailure()) {
      std::cerr << env_->daemon->logTail(60) << "--- tail of ovs-vswitchd.log ---\n"
                << run("tail -n 30 " + dir() + "/ovs-vswitchd.log").output;
    }
    sockets_.clear();
    taps_.clear();
    appliance_socket_.reset();
    span_tap_.reset();
    // A case that stopped vpcguardd and failed before starting it again.
    if (!env_->daemon->running()) {
      if (auto r = env_->daemon->start(); !r || !env_->daemon->waitSynced(30s)) {
        ADD_FAILURE() << "vpcguardd does not start again: "
                      << (r ? env_->daemon->logTail() : r.error().message);
      }
    }
    // Mirror rows the case made by hand (applyConfig expects exactly the config's).
    for (const auto& name : extra_mirror_rows_) {
      (void)sandbox().vsctl(fmt::format("-- --id=@m get Mirror {} -- remove Bridge {} mirrors @m",
                                        shellQuote(name), PolicyLab::kBridge));
    }
    // The base config first (no mirror may point at a port about to go), then the extras.
    if (env_->written != env_->base_text) {
      applyConfig("");
    }
    for (const auto& route : extra_routes_) {
      (void)sandbox().appctl("ovs/route/del " + route);
    }
    if (saved_neigh_aging_) {
      (void)sandbox().appctl("tnl/neigh/aging " + *saved_neigh_aging_);
    }
    if (bridge_device_set_up_) {
      (void)sandbox().execInNetns(std::string("ip link set ") + PolicyLab::kBridge + " down");
    }
    (void)env_->lab->sandbox().vsctl(std::string("--if-exists del-port ") + PolicyLab::kBridge +
                                     " " + kSpanPort + " -- --if-exists del-br " + kUnderlayBridge);
    span_.reset();
    appliance_.reset();
    std::cout << "[ info ] case took "
              << std::chrono::duration<double>(Clock::now() - case_started_).count() << " s\n";
  }

  void startEnv() {
    auto env = std::make_unique<Env>();
    env->base_text = readFile(sourceDir() + "/tests/data/mirror-lab.toml");
    ASSERT_FALSE(env->base_text.empty());
    auto loaded = config::loadPolicy(sourceDir() + "/tests/data/mirror-lab.toml");
    ASSERT_TRUE(loaded) << loaded.error().toError().message;
    env->policy = std::move(*loaded);
    VGT_ASSIGN_OR_FAIL(env->indices, assignInterfaceIndices(env->policy, {}));
    VGT_ASSIGN_OR_FAIL(env->lab, PolicyLab::start(env->policy));
    env->config = env->lab->sandbox().dir() + "/mirror.toml";
    std::ofstream(env->config) << env->base_text;
    env->written = env->base_text;
    Vpcguardd::Options o;
    o.config = env->config;
    env->daemon = std::make_unique<Vpcguardd>(env->lab->sandbox(), o);
    VGT_ASSERT_OK(env->daemon->start());
    ASSERT_TRUE(env->daemon->waitSynced(30s)) << env->daemon->logTail();
    VGT_ASSIGN_OR_FAIL(env->monitor, udpSocket(env->lab->vm(kMon)->netns, kVxlanPort));
    env_ = std::move(env);
  }

  static std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir() const { return env_->lab->sandbox().dir(); }
  OvsSandbox& sandbox() { return env_->lab->sandbox(); }
  const model::NetworkInterface& eni(const std::string& id) const {
    for (const auto& n : env_->policy.network_interfaces) {
      if (n.id == id) {
        return n;
      }
    }
    throw std::runtime_error("no interface " + id);
  }
  std::string ipOf(const std::string& id) const {
    return eni(id).private_ip_addresses.front().toString();
  }
  std::string macOf(const std::string& id) const { return eni(id).mac_address; }
  const std::string& netnsOf(const std::string& id) const { return env_->lab->vm(id)->netns; }
  uint32_t vniOf(const std::string& session) const {
    for (const auto& s : env_->policy.traffic_mirror_sessions) {
      if (s.id == session) {
        return s.virtual_network_id.value_or(0);
      }
    }
    ADD_FAILURE() << "no session " << session;
    return 0;
  }

  // ---- config ----

  // The VXLAN port's OpenFlow port number, if vpcguardd made it.
  std::optional<int> tunnelOfport() {
    auto r = sandbox().vsctl(std::string("--if-exists get Interface ") +
                             pipeline::kMirrorTunnelPort + " ofport");
    if (!r) {
      return std::nullopt;
    }
    try {
      const int port = std::stoi(*r);
      return port > 0 ? std::optional<int>(port) : std::nullopt;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  // vpcguardd has applied `p`: connected, the VXLAN port there iff a session is, the bridge's
  // port mirrors those of `p`, and the flow table exactly the translation of `p` (with the
  // tunnel's port number, as vpcguardd translates it).
  ::testing::AssertionResult applied(const model::Policy& p) {
    auto status = env_->daemon->status();
    if (!status || status->pid != env_->daemon->pid() || !status->connected) {
      return ::testing::AssertionFailure()
             << "vpcguardd is not connected: "
             << (status ? "last_error=" + status->last_error : status.error().message);
    }
    const auto tunnel = tunnelOfport();
    if (tunnel.has_value() == p.traffic_mirror_sessions.empty()) {
      return ::testing::AssertionFailure()
             << "the VXLAN port " << pipeline::kMirrorTunnelPort << " is "
             << (tunnel ? "there without a session" : "missing");
    }
    auto mirrors = sandbox().vsctl("--bare --columns=name list Mirror");
    if (!mirrors) {
      return ::testing::AssertionFailure() << mirrors.error().message;
    }
    std::set<std::string> have;
    std::istringstream in(*mirrors);
    for (std::string name; in >> name;) {
      have.insert(name);
    }
    std::set<std::string> want;
    for (const auto& m : p.port_mirrors) {
      want.insert("vpcguard:" + m.id);
    }
    if (have != want) {
      return ::testing::AssertionFailure()
             << "Mirror rows: " << fmt::format("{}", fmt::join(have, ",")) << ", expected "
             << fmt::format("{}", fmt::join(want, ","));
    }
    auto ofports = bridgeOfports(sandbox(), PolicyLab::kBridge);
    if (!ofports) {
      return ::testing::AssertionFailure() << ofports.error().message;
    }
    if (tunnel) {
      (*ofports)[pipeline::kMirrorTunnelKey] = *tunnel;
    }
    auto desired = desiredFlows(p, *ofports, env_->indices);
    auto installed = installedFlows(sandbox(), PolicyLab::kBridge);
    if (!desired || !installed) {
      return ::testing::AssertionFailure()
             << (desired ? installed.error().message : desired.error().message);
    }
    if (const std::string diff = flowDiff(*desired, *installed); !diff.empty()) {
      return ::testing::AssertionFailure() << "flow table differs from the config's:\n" << diff;
    }
    return ::testing::AssertionSuccess();
  }

  // Writes base config + `extra` by rename (as an editor would; nothing when it holds that
  // already); the fixture's policy is then that config's. `written` gets the moment.
  void writeConfig(const std::string& extra, Clock::time_point* written = nullptr) {
    const std::string text = env_->base_text + extra;
    const std::string tmp = env_->config + ".tmp";
    std::ofstream(tmp) << text;
    auto loaded = config::loadPolicy(tmp);
    ASSERT_TRUE(loaded) << loaded.error().toError().message << "\n" << extra;
    VGT_ASSIGN_OR_FAIL(auto indices, assignInterfaceIndices(*loaded, env_->indices));
    if (written != nullptr) {
      *written = Clock::now();
    }
    if (text != env_->written) {
      ASSERT_EQ(std::rename(tmp.c_str(), env_->config.c_str()), 0) << std::strerror(errno);
      env_->written = text;
    }
    env_->policy = std::move(*loaded);
    env_->indices = std::move(indices);
  }

  // Writes base config + `extra` (writeConfig) and waits until vpcguardd has applied it; `took`
  // gets how long that took.
  void applyConfig(const std::string& extra, Clock::duration* took = nullptr) {
    Clock::time_point start;
    ASSERT_NO_FATAL_FAILURE(writeConfig(extra, &start));
    ASSERT_TRUE(waitFor([&] { return static_cast<bool>(applied(env_->policy)); }, 30s, 20ms))
        << "vpcguardd did not apply the config within 30 s: " << applied(env_->policy).message() << "\n"
        << env_->daemon->logTail();
    // ovs-vswitchd applies OVSDB changes (the Mirror rows, the VXLAN port) on its own time: a
    // write of ours that ovs-vsctl waits for is applied after every earlier one.
    VGT_ASSERT_OK(sandbox().vsctl("set Open_vSwitch . external_ids:vgt-mirror-e2e=" +
                                  std::to_string(++env_->applied)));
    if (took != nullptr) {
      *took = Clock::now() - start;
    }
  }

  static std::string session(const std::string& id, const std::string& source,
                             const std::string& target, const std::string& filter, int number,
                             std::optional<uint32_t> vni, std::optional<int> packet_length) {
    std::string t = fmt::format(
        "\n[[traffic_mirror_sessions]]\nid = \"{}\"\nnetwork_interface_id = \"{}\"\n"
        "traffic_mirror_target_id = \"{}\"\ntraffic_mirror_filter_id = \"{}\"\n"
        "session_number = {}\n",
        id, source, target, filter, number);
    if (vni) {
      t += fmt::format("virtual_network_id = {}\n", *vni);
    }
    if (packet_length) {
      t += fmt::format("packet_length = {}\n", *packet_length);
    }
    return t;
  }

  static std::string portMirror(const std::string& id, const std::string& source,
                                const std::string& output_port) {
    return fmt::format(
        "\n[[port_mirrors]]\nid = \"{}\"\nnetwork_interface_id = \"{}\"\noutput_port = \"{}\"\n", id,
        source, output_port);
  }

  // ---- the host side of local targets ----

  // What ovs-vswitchd and its namespace hold for local targets.
  struct HostSide {
    // ovs-vswitchd's routes that carry the copies' mark: "User: 10.0.3.10/32 MARK 1986461697
    // dev br-int GW 169.254.118.2 SRC 169.254.118.1", by destination ("10.0.3.10/32").
    std::map<std::string, std::string> marked_routes;
    std::map<std::string, std::string> neighbours;  // the bridge's, next hop -> MAC
    bool address = false;  // kMirrorHostAddress on the bridge's device, in ovs-vswitchd's netns
    std::string text;      // all of it, for messages

    // The next hop of the marked route to `ip`, if it is one vpcguardd would make (through
    // the bridge, a next hop in kMirrorHostSubnet, kMirrorHostAddress as source).
    [[nodiscard]] std::optional<std::string> nextHopTo(const std::string& ip) const {
      auto it = marked_routes.find(ip + "/32");
      if (it == marked_routes.end()) {
        return std::nullopt;
      }
      static const std::regex kRoute(R"(dev (\S+) GW (\S+) SRC (\S+))");
      std::smatch m;
      if (!std::regex_search(it->second, m, kRoute) || m[1] != PolicyLab::kBridge ||
          !inMirrorHostSubnet(m[2]) || m[3] != pipeline::kMirrorHostAddress) {
        return std::nullopt;
      }
      return m[2].str();
    }
  };

  HostSide hostSide() {
    HostSide h;
    const std::string mark = std::to_string(pipeline::kMirrorPktMark);
    auto routes = sandbox().appctl("ovs/route/show");
    h.text = "ovs/route/show:\n" + (routes ? *routes : routes.error().message);
    static const std::regex kMarked(R"(^User: (\S+) MARK (\d+) )");
    std::istringstream rin(routes ? *routes : "");
    for (std::string line; std::getline(rin, line);) {
      std::smatch m;
      if (std::regex_search(line, m, kMarked) && m[2] == mark) {
        h.marked_routes[m[1]] = line;
      }
    }
    auto neigh = sandbox().appctl("tnl/neigh/show");
    h.text += "\ntnl/neigh/show:\n" + (neigh ? *neigh : neigh.error().message);
    std::istringstream nin(neigh ? *neigh : "");
    for (std::string line; std::getline(nin, line);) {
      std::istringstream words(line);
      std::string ip;
      std::string mac;
      std::string bridge;
      std::string flag;
      // An expired entry (OVS shows it as STALE until it flushes it) is not used.
      if (words >> ip >> mac >> bridge && bridge == PolicyLab::kBridge &&
          !(words >> flag && flag == "STALE")) {
        h.neighbours[ip] = mac;
      }
    }
    const auto addr = sandbox().execInNetns(std::string("ip -4 -o addr show dev ") +
                                            PolicyLab::kBridge);
    h.address = addr.ok() && addr.output.find(std::string(" ") + pipeline::kMirrorHostAddress +
                                              "/") != std::string::npos;
    h.text += "\nip addr show dev " + std::string(PolicyLab::kBridge) + ":\n" + addr.output;
    return h;
  }

  // Copies to `eni_id` can leave: its marked route, the neighbour entry of that route's next hop
  // with the target's MAC, the bridge's address.
  ::testing::AssertionResult localTargetReady(const std::string& eni_id) {
    const HostSide h = hostSide();
    const auto hop = h.nextHopTo(ipOf(eni_id));
    if (!hop) {
      return ::testing::AssertionFailure()
             << "no route to " << ipOf(eni_id) << "/32 with MARK " << pipeline::kMirrorPktMark
             << " via " << PolicyLab::kBridge << " and a next hop in "
             << pipeline::kMirrorHostSubnet << "\n"
             << h.text;
    }
    auto n = h.neighbours.find(*hop);
    if (n == h.neighbours.end() || n->second != macOf(eni_id)) {
      return ::testing::AssertionFailure() << "the next hop " << *hop << " is not at "
                                           << macOf(eni_id) << "\n"
                                           << h.text;
    }
    if (!h.address) {
      return ::testing::AssertionFailure()
             << pipeline::kMirrorHostAddress << " is not on " << PolicyLab::kBridge << "\n"
             << h.text;
    }
    return ::testing::AssertionSuccess();
  }

  // The bridge's Mirror rows, by name.
  std::set<std::string> mirrorRows() {
    std::set<std::string> out;
    auto r = sandbox().vsctl("--bare --columns=name list Mirror");
    EXPECT_TRUE(r) << r.error().message;
    std::istringstream in(r ? *r : "");
    for (std::string name; in >> name;) {
      out.insert(name);
    }
    return out;
  }

  // ---- traffic ----

  int udp(const std::string& eni_id, uint16_t port) {
    auto key = std::pair{eni_id, port};
    auto it = sockets_.find(key);
    if (it == sockets_.end()) {
      auto fd = udpSocket(netnsOf(eni_id), port);
      EXPECT_TRUE(fd) << fd.error().message;
      if (!fd) {
        return -1;
      }
      it = sockets_.emplace(key, std::move(*fd)).first;
    }
    return it->second.get();
  }

  Datagram send(const std::string& from, uint16_t sport, const std::string& to, uint16_t dport,
                const std::string& tag, size_t size) {
    Datagram d{tag, payloadFor(tag, size), from, to, ipOf(from), ipOf(to), sport, dport};
    const sockaddr_in a = v4Address(d.dst_ip, dport);
    const ssize_t n = ::sendto(udp(from, sport), d.payload.data(), d.payload.size(), 0,
                               reinterpret_cast<const sockaddr*>(&a), sizeof a);
    EXPECT_EQ(n, static_cast<ssize_t>(d.payload.size())) << errnoText("sendto " + tag);
    sent_.push_back(d);
    return d;
  }

  // `from`:sport -> `to`:dport and the echo back, each checked on arrival (the original traffic
  // reaches its destination unchanged).
  void exchange(const std::string& from, uint16_t sport, const std::string& to, uint16_t dport,
                const std::string& tag, size_t size) {
    (void)udp(to, dport);  // bound before anything is sent to it
    const Datagram rq = send(from, sport, to, dport, tag + ".rq", size);
    auto got = receiveOne(udp(to, dport), 3s);
    ASSERT_TRUE(got) << rq.tag << " never reached " << to;
    EXPECT_EQ(got->data, rq.payload) << rq.tag;
    EXPECT_EQ(got->from, rq.src_ip);
    EXPECT_EQ(got->from_port, sport);
    const Datagram rp = send(to, dport, from, sport, tag + ".rp", size);
    got = receiveOne(udp(from, sport), 3s);
    ASSERT_TRUE(got) << rp.tag << " never reached " << from;
    EXPECT_EQ(got->data, rp.payload) << rp.tag;
  }

  void exchanges(int n, const std::string& from, uint16_t sport, const std::string& to,
                 uint16_t dport, const std::string& prefix, size_t size) {
    for (int i = 0; i < n; ++i) {
      ASSERT_NO_FATAL_FAILURE(
          exchange(from, sport, to, dport, fmt::format("{}.{}", prefix, i), size));
    }
  }

  // Nothing arrived on `eni_id`'s socket on `port` (a datagram the policy dropped).
  void expectNothingOn(const std::string& eni_id, uint16_t port) {
    if (auto got = receiveOne(udp(eni_id, port), 0ms)) {
      ADD_FAILURE() << "the policy should have dropped what reached " << eni_id << ":" << port
                    << " from " << got->from;
    }
  }

  void startTaps(const std::vector<std::string>& enis) {
    for (const auto& id : enis) {
      auto fd = packetSocket(netnsOf(id), "eth0");
      ASSERT_TRUE(fd) << fd.error().message;
      taps_[id] = std::move(*fd);
    }
  }

  // What each tap saw, once it has seen every frame of `fence` (tags).
  std::map<std::string, std::vector<TapFrame>> readTaps(const std::set<std::string>& fence) {
    std::map<std::string, std::vector<TapFrame>> out;
    for (const auto& [id, fd] : taps_) {
      auto& frames = out[id];
      const bool complete = waitFor(
          [&, fdn = fd.get()] {
            drainTap(fdn, frames);
            std::set<std::string> seen;
            for (const auto& f : frames) {
              seen.insert(f.frame.tag());
            }
            return std::all_of(fence.begin(), fence.end(),
                               [&](const std::string& t) { return seen.count(t) != 0; });
          },
          5s, 10ms);
      EXPECT_TRUE(complete) << "the tap on " << id << " never saw the fence";
    }
    return out;
  }

  static void drainCopies(int fd, std::vector<Copy>& out) {
    while (auto r = receiveOne(fd, 0ms)) {
      if (auto c = decodeVxlan(*r)) {
        out.push_back(std::move(*c));
      } else {
        ADD_FAILURE() << "a datagram of " << r->data.size() << " bytes from " << r->from
                      << " on port 4789 is not VXLAN";
      }
    }
  }

  // The copies arriving on `fd` until there is one of each tag of `fence`, plus kGrace.
  std::vector<Copy> collectCopies(int fd, const std::set<std::string>& fence) {
    std::vector<Copy> out;
    const auto deadline = Clock::now() + kCopyTimeout;
    auto fenced = [&] {
      std::set<std::string> seen;
      for (const auto& c : out) {
        seen.insert(c.inner.tag());
      }
      return std::all_of(fence.begin(), fence.end(),
                         [&](const std::string& t) { return seen.count(t) != 0; });
    };
    while (!fenced() && Clock::now() < deadline) {
      if (readable(fd, 50ms)) {
        drainCopies(fd, out);
      }
    }
    EXPECT_TRUE(fenced()) << "the fence's copies never arrived (" << out.size() << " copies)";
    const auto grace_end = Clock::now() + kGrace;
    while (Clock::now() < grace_end) {
      if (readable(fd, std::chrono::duration_cast<std::chrono::milliseconds>(grace_end -
                                                                             Clock::now()))) {
        drainCopies(fd, out);
      }
    }
    return out;
  }

  // Copies arriving on `fd` within `wait` (for "nothing arrives" after a fence elsewhere).
  static std::vector<Copy> copiesWithin(int fd, std::chrono::milliseconds wait) {
    std::vector<Copy> out;
    const auto end = Clock::now() + wait;
    while (Clock::now() < end) {
      if (readable(fd, std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()))) {
        drainCopies(fd, out);
      }
    }
    return out;
  }

  // ---- expectations ----

  using Selector =
      std::function<std::optional<SessionView>(const std::string& eni, const TapFrame&)>;

  // Exactly one copy of every tapped frame `select` gives a session, with that session's VNI and
  // the frame's bytes cut to its packet_length; no other copy. Every copy is well-formed VXLAN
  // from `outer_source`.
  void expectCopiesOf(const std::map<std::string, std::vector<TapFrame>>& taps,
                      const Selector& select, const std::vector<Copy>& copies,
                      const std::string& outer_source) {
    std::map<std::pair<uint32_t, std::string>, std::vector<std::string>> want;  // -> descriptions
    size_t wanted = 0;
    for (const auto& [id, frames] : taps) {
      for (const auto& f : frames) {
        if (auto s = select(id, f)) {
          want[{s->vni, cut(f.frame.bytes, s->packet_length)}].push_back(
              fmt::format("{} {} {}", id, f.sent ? "sent" : "received", describe(f.frame)));
          ++wanted;
        }
      }
    }
    std::vector<std::string> unexpected;
    for (const auto& c : copies) {
      EXPECT_EQ(static_cast<int>(c.flags), 0x08) << describe(c);
      EXPECT_TRUE(c.reserved_zero) << describe(c);
      EXPECT_EQ(c.outer_source, outer_source) << describe(c);
      auto it = want.find({c.vni, c.inner.bytes});
      if (it == want.end() || it->second.empty()) {
        unexpected.push_back(describe(c));
      } else {
        it->second.pop_back();
      }
    }
    std::vector<std::string> missing;
    for (const auto& [key, descriptions] : want) {
      for (const auto& d : descriptions) {
        missing.push_back(fmt::format("vni {}: {}", key.first, d));
      }
    }
    EXPECT_TRUE(missing.empty()) << missing.size() << " of " << wanted
                                 << " expected copies missing (or not byte-identical):\n  "
                                 << fmt::format("{}", fmt::join(missing, "\n  "));
    EXPECT_TRUE(unexpected.empty()) << unexpected.size() << " unexpected copies:\n  "
                                    << fmt::format("{}", fmt::join(unexpected, "\n  "));
    EXPECT_GT(wanted, 0U);
  }

  // The copies of the test's datagrams, decoded and compared with what was sent: per session, a
  // datagram its source sent is an egress copy as sent; one its source received, an ingress copy
  // as delivered (router MAC as source, TTL 63: every exchange here crosses subnets).
  void expectTaggedCopiesMatchSent(const std::vector<Copy>& copies,
                                   const std::vector<SessionView>& sessions) {
    std::map<std::string, const Datagram*> by_tag;
    for (const auto& d : sent_) {
      by_tag[d.tag] = &d;
    }
    for (const auto& c : copies) {
      const std::string tag = c.inner.tag();
      if (tag.empty()) {
        continue;
      }
      SCOPED_TRACE(describe(c));
      auto d = by_tag.find(tag);
      ASSERT_NE(d, by_tag.end()) << "a copy of a datagram never sent";
      const Datagram& sent = *d->second;
      auto s = std::find_if(sessions.begin(), sessions.end(),
                            [&](const SessionView& v) { return v.vni == c.vni; });
      ASSERT_NE(s, sessions.end()) << "a VNI of no session";
      ASSERT_TRUE(s->source == sent.from || s->source == sent.to);
      const bool egress = s->source == sent.from;
      const Frame& f = c.inner;
      const size_t expect_length = copyLength(sent.frameLength(), s->packet_length);
      EXPECT_EQ(f.bytes.size(), expect_length);
      EXPECT_EQ(f.eth_src, egress ? macOf(sent.from) : std::string(pipeline::kRouterMac));
      EXPECT_EQ(f.eth_dst, egress ? std::string(pipeline::kRouterMac) : macOf(sent.to));
      EXPECT_EQ(f.ethertype, 0x0800);
      EXPECT_EQ(f.ip_src, sent.src_ip);
      EXPECT_EQ(f.ip_dst, sent.dst_ip);
      EXPECT_EQ(static_cast<int>(f.protocol), 17);
      EXPECT_EQ(static_cast<int>(f.ttl), egress ? 64 : 63);
      EXPECT_EQ(f.ip_total_length, 20 + 8 + sent.payload.size());
      EXPECT_EQ(f.src_port, sent.sport);
      EXPECT_EQ(f.dst_port, sent.dport);
      EXPECT_EQ(f.udp_length, 8 + sent.payload.size());
      EXPECT_EQ(f.payload, sent.payload.substr(0, f.payload.size()));
      EXPECT_EQ(f.payload.size(), expect_length - 42);
    }
  }

  // Copies of `vni` whose tag ends with `suffix` (".rq" / ".rp") and starts with `prefix`.
  static size_t count(const std::vector<Copy>& copies, uint32_t vni, const std::string& prefix,
                      const std::string& suffix) {
    return static_cast<size_t>(std::count_if(copies.begin(), copies.end(), [&](const Copy& c) {
      const std::string t = c.inner.tag();
      return c.vni == vni && t.rfind(prefix, 0) == 0 && t.size() >= suffix.size() &&
             t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0;
    }));
  }

  static inline std::unique_ptr<Env> env_;
  Clock::time_point case_started_;
  std::map<std::pair<std::string, uint16_t>, Fd> sockets_;
  std::map<std::string, Fd> taps_;
  std::vector<Datagram> sent_;
  std::unique_ptr<ExtraNetns> appliance_;
  std::unique_ptr<ExtraNetns> span_;
  Fd appliance_socket_;
  Fd span_tap_;
  // What a case changed by hand, undone by TearDown.
  std::vector<std::string> extra_mirror_rows_;  // Mirror rows (names)
  std::vector<std::string> extra_routes_;       // ovs/route/del arguments
  std::optional<std::string> saved_neigh_aging_;
  bool bridge_device_set_up_ = false;
};

// 1. A local target: the monitor VM's plain UDP socket gets every copy, exactly once, byte for
// byte, with the session's VNI, cut to packet_length (web1's session: 100 bytes) or whole (db1's
// session has none; every packet here fits the target once encapsulated); UDP, TCP and ICMP;
// egress copies as sent, ingress copies as delivered.
TEST_F(MirrorE2e, LocalTargetGetsExactCopiesTruncatedToPacketLength) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 4242, 100) +
                  session("tms-db", kDb, "tmt-mon", "tmf-all", 1, 4343, std::nullopt)));
  const std::vector<SessionView> sessions = {{kWeb, 4242, 100}, {kDb, 4343, std::nullopt}};
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb, kDb}));
  constexpr int kDatagrams = 16;
  for (int i = 0; i < kDatagrams; ++i) {
    // 200-byte payloads (242-byte frames: cut to 100) and 30-byte ones (72-byte frames: whole).
    ASSERT_NO_FATAL_FAILURE(
        exchange(kWeb, 41001, kDb, 5351, fmt::format("c1.{}", i), i % 2 == 0 ? 200 : 30));
  }
  // TCP: a connection with 1000 bytes each way (segments that fit the target once encapsulated:
  // FullSizePacketsAreCutToTheTargetMtu covers the others).
  {
    VGT_ASSIGN_OR_FAIL(Fd server, tcpSocket(netnsOf(kDb)));
    const sockaddr_in any = v4Address("0.0.0.0", 5432);
    ASSERT_EQ(::bind(server.get(), reinterpret_cast<const sockaddr*>(&any), sizeof any), 0);
    ASSERT_EQ(::listen(server.get(), 4), 0);
    VGT_ASSIGN_OR_FAIL(Fd client, tcpSocket(netnsOf(kWeb)));
    const sockaddr_in db = v4Address(ipOf(kDb), 5432);
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<const sockaddr*>(&db), sizeof db), 0)
        << errnoText("connect");
    ASSERT_TRUE(readable(server.get(), 3000ms));
    Fd conn(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn);
    const std::string data = payloadFor("c1.tcp", 1000);
    ASSERT_EQ(::send(client.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    const auto readAll = [](int fd, size_t n) {
      std::string got;
      std::string buf(n, '\0');
      while (got.size() < n && readable(fd, 3000ms)) {
        const ssize_t r = ::recv(fd, buf.data(), n - got.size(), 0);
        if (r <= 0) {
          break;
        }
        got.append(buf.data(), static_cast<size_t>(r));
      }
      return got;
    };
    ASSERT_EQ(readAll(conn.get(), data.size()), data);
    ASSERT_EQ(::send(conn.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(readAll(client.get(), data.size()), data);
    ::shutdown(client.get(), SHUT_WR);
    ASSERT_TRUE(readable(conn.get(), 3000ms));
    char c = 0;
    ASSERT_EQ(::recv(conn.get(), &c, 1, 0), 0);
    conn.reset();
    ASSERT_TRUE(readable(client.get(), 3000ms));
    ASSERT_EQ(::recv(client.get(), &c, 1, 0), 0);
  }
  // ICMP.
  auto ping = env_->lab->exec(kWeb, "ping -c 3 -i 0.2 -W 2 " + ipOf(kDb));
  ASSERT_TRUE(ping.ok()) << ping.output;
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 41001, kDb, 5351, "c1.fence", 30));

  const std::set<std::string> fence = {"c1.fence.rq", "c1.fence.rp"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps(fence);
  // Both filters accept every IPv4 packet both ways: every IPv4 frame of either VM is copied.
  expectCopiesOf(
      taps,
      [&](const std::string& id, const TapFrame& f) -> std::optional<SessionView> {
        if (!f.frame.ipv4) {
          return std::nullopt;
        }
        return id == kWeb ? sessions[0] : sessions[1];
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, sessions);
  // N datagrams each way: N copies per direction and session.
  for (uint32_t vni : {4242U, 4343U}) {
    EXPECT_EQ(count(copies, vni, "c1.", ".rq"), kDatagrams + 1U) << "vni " << vni;
    EXPECT_EQ(count(copies, vni, "c1.", ".rp"), kDatagrams + 1U) << "vni " << vni;
  }
  size_t tcp = 0;
  size_t icmp = 0;
  for (const auto& c : copies) {
    tcp += c.inner.protocol == 6 ? 1U : 0U;
    icmp += c.inner.protocol == 1 ? 1U : 0U;
  }
  EXPECT_GE(tcp, 2U * 7U) << "the TCP connection's segments, copied by both sessions";
  EXPECT_EQ(icmp, 2U * 6U) << "3 echo requests and 3 replies, copied by both sessions";
}

// 2. Filter rules: lowest number first (a reject before an accept wins, and an accept before a
// reject), a packet no rule matches is not copied, egress rules judge what the source sends and
// ingress rules what it receives (tests/data/mirror-lab.toml, tmf-rules).
TEST_F(MirrorE2e, FilterRulesDecideInOrderAndByDirection) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-rules", kWeb, "tmt-mon", "tmf-rules", 1, 2020, std::nullopt)));
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  auto ping = env_->lab->exec(kWeb, "ping -c 2 -i 0.2 -W 2 " + ipOf(kDb));
  ASSERT_TRUE(ping.ok()) << ping.output;
  constexpr int kEach = 4;
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 42002, kDb, 5352, "c2.5352", 64));
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 42003, kDb, 5353, "c2.5353", 64));
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 42001, kDb, 5351, "c2.5351", 64));
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 42001, kDb, 5351, "c2.fence", 64));

  const std::set<std::string> fence = {"c2.fence.rq", "c2.fence.rp"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps(fence);
  const SessionView s{kWeb, 2020, std::nullopt};
  expectCopiesOf(
      taps,
      [&](const std::string&, const TapFrame& f) -> std::optional<SessionView> {
        if (!f.frame.udp()) {
          return std::nullopt;  // ICMP: no rule matches, either way
        }
        if (f.sent) {
          // 5353: #10 accepts (before #20 rejects); 5352: #20 rejects (before #30 accepts);
          // 5351: #30 accepts.
          return *f.frame.dst_port == 5351 || *f.frame.dst_port == 5353 ? std::optional(s)
                                                                        : std::nullopt;
        }
        return *f.frame.src_port == 5351 ? std::optional(s) : std::nullopt;  // ingress #10
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, {s});
  EXPECT_EQ(count(copies, 2020, "c2.5351.", ".rq"), kEach + 0U);
  EXPECT_EQ(count(copies, 2020, "c2.5351.", ".rp"), kEach + 0U);
  EXPECT_EQ(count(copies, 2020, "c2.5353.", ".rq"), kEach + 0U) << "accept #10 before reject #20";
  EXPECT_EQ(count(copies, 2020, "c2.5353.", ".rp"), 0U) << "no ingress rule matches";
  EXPECT_EQ(count(copies, 2020, "c2.5352.", ""), 0U) << "reject #20 before accept #30";
}

// 3. Two sessions on one source whose filters both accept a packet: it is copied once, by the
// lower session number (written second here), with its VNI; what only the higher one accepts
// (also what the lower one rejects) is copied with the higher one's VNI (picked by vpcguard: none
// in the config) and its packet_length.
TEST_F(MirrorE2e, LowestSessionNumberCopiesEachPacketOnce) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-high", kWeb, "tmt-mon", "tmf-high", 20, std::nullopt, 64) +
                  session("tms-low", kWeb, "tmt-mon", "tmf-low", 10, 1010, std::nullopt)));
  const uint32_t high = vniOf("tms-high");
  EXPECT_NE(high, 1010U) << "a picked VNI must differ from every other session's";
  const SessionView low_view{kWeb, 1010, std::nullopt};
  const SessionView high_view{kWeb, high, 64};
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  constexpr int kEach = 3;
  for (const uint16_t port : std::initializer_list<uint16_t>{5351, 5352, 5353, 5354}) {
    ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, static_cast<uint16_t>(43000 + port % 100), kDb,
                                      port, fmt::format("c3.{}", port), 100));
  }
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 43051, kDb, 5351, "c3.fence", 100));
  const std::set<std::string> fence = {"c3.fence.rq"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps({"c3.fence.rq", "c3.fence.rp"});
  expectCopiesOf(
      taps,
      [&](const std::string&, const TapFrame& f) -> std::optional<SessionView> {
        if (!f.sent || !f.frame.udp()) {
          return std::nullopt;  // neither filter has ingress rules
        }
        switch (*f.frame.dst_port) {
          case 5351:
          case 5352:  // both accept: the lower number's copy only
            return low_view;
          case 5353:  // only the higher one accepts
          case 5354:  // the lower one rejects, the higher one accepts
            return high_view;
          default:
            return std::nullopt;
        }
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, {low_view, high_view});
  EXPECT_EQ(count(copies, 1010, "c3.5352.", ".rq"), kEach + 0U);
  EXPECT_EQ(count(copies, high, "c3.5352.", ".rq"), 0U) << "copied twice";
  EXPECT_EQ(count(copies, high, "c3.5353.", ".rq"), kEach + 0U);
  EXPECT_EQ(count(copies, high, "c3.5354.", ".rq"), kEach + 0U);
}

// 4. Only what the security groups and network ACLs accepted is mirrored. Sessions on both ends:
//  - web1 -> db1 UDP 5390 (db's group drops it) and 5359 (the private NACL drops it): web1's
//    egress copies (it left web1's subnet accepted), no ingress copy on db1;
//  - db1 -> web1 UDP 80 (db's outbound NACL drops it): no egress copy on db1, nothing on web1;
//  - db1 -> web1 UDP 40000 (web1's group drops it): db1's egress copy, no ingress copy on web1;
//  - accepted traffic at the same time is copied on both.
TEST_F(MirrorE2e, PolicyDropsAreNotMirrored) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-db", kDb, "tmt-mon", "tmf-all", 1, 4400, std::nullopt) +
                  session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 4401, std::nullopt)));
  const SessionView db{kDb, 4400, std::nullopt};
  const SessionView web{kWeb, 4401, std::nullopt};
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb, kDb}));
  constexpr int kEach = 3;
  (void)udp(kDb, 5390);
  (void)udp(kDb, 5359);
  (void)udp(kWeb, 80);
  (void)udp(kWeb, 40000);
  for (int i = 0; i < kEach; ++i) {
    send(kWeb, 44001, kDb, 5390, fmt::format("c4.sg.{}", i), 64);
    send(kWeb, 44001, kDb, 5359, fmt::format("c4.nacl.{}", i), 64);
    send(kDb, 5399, kWeb, 80, fmt::format("c4.out.{}", i), 64);
    send(kDb, 5399, kWeb, 40000, fmt::format("c4.websg.{}", i), 64);
    ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 44001, kDb, 5351, fmt::format("c4.ok.{}", i), 64));
  }
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 44001, kDb, 5351, "c4.fence", 64));
  const std::set<std::string> fence = {"c4.fence.rq", "c4.fence.rp"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps(fence);
  // The policy really dropped them (else this case proves nothing).
  expectNothingOn(kDb, 5390);
  expectNothingOn(kDb, 5359);
  expectNothingOn(kWeb, 80);
  expectNothingOn(kWeb, 40000);
  expectCopiesOf(
      taps,
      [&](const std::string& id, const TapFrame& f) -> std::optional<SessionView> {
        if (!f.frame.ipv4) {
          return std::nullopt;
        }
        if (id == kWeb) {
          return web;  // everything web1 sent left accepted; it received only accepted traffic
        }
        // db1: what it received was accepted; of what it sent, UDP to port 80 never left its
        // subnet.
        if (f.sent && f.frame.udp() && *f.frame.dst_port == 80) {
          return std::nullopt;
        }
        return db;
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, {db, web});
  EXPECT_EQ(count(copies, 4400, "c4.sg.", ""), 0U) << "dropped by db's security group";
  EXPECT_EQ(count(copies, 4400, "c4.nacl.", ""), 0U) << "dropped by the private subnet's NACL";
  EXPECT_EQ(count(copies, 4401, "c4.sg.", ""), kEach + 0U) << "left web1's subnet accepted";
  EXPECT_EQ(count(copies, 4401, "c4.nacl.", ""), kEach + 0U) << "left web1's subnet accepted";
  EXPECT_EQ(count(copies, 4400, "c4.out.", ""), 0U) << "dropped by db's outbound NACL";
  EXPECT_EQ(count(copies, 4401, "c4.out.", ""), 0U) << "never reached web1";
  EXPECT_EQ(count(copies, 4400, "c4.websg.", ""), kEach + 0U) << "left db1's subnet accepted";
  EXPECT_EQ(count(copies, 4401, "c4.websg.", ""), 0U) << "dropped by web1's security group";
  EXPECT_EQ(count(copies, 4400, "c4.ok.", ".rq"), kEach + 0U);
  EXPECT_EQ(count(copies, 4401, "c4.ok.", ".rp"), kEach + 0U);
}

// 5. Removing a session stops its copies as soon as vpcguardd has applied the change (the other
// session, still there, is the fence), and removing the last one removes the VXLAN port.
TEST_F(MirrorE2e, RemovingASessionStopsItsCopiesAtOnce) {
  const std::string db_session =
      session("tms-db", kDb, "tmt-mon", "tmf-all", 1, 5501, std::nullopt);
  ASSERT_NO_FATAL_FAILURE(applyConfig(
      session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 5500, std::nullopt) + db_session));
  constexpr int kEach = 3;
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 45001, kDb, 5351, "c5.a", 64));
  auto copies = collectCopies(env_->monitor.get(), {fmt::format("c5.a.{}.rp", kEach - 1)});
  EXPECT_EQ(count(copies, 5500, "c5.a.", ""), 2U * kEach);
  EXPECT_EQ(count(copies, 5501, "c5.a.", ""), 2U * kEach);

  Clock::duration took{};
  ASSERT_NO_FATAL_FAILURE(applyConfig(db_session, &took));
  std::cout << "[ info ] session removal applied "
            << std::chrono::duration<double, std::milli>(took).count() << " ms after the write\n";
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 45001, kDb, 5351, "c5.b", 64));
  copies = collectCopies(env_->monitor.get(), {fmt::format("c5.b.{}.rp", kEach - 1)});
  EXPECT_EQ(count(copies, 5500, "", ""), 0U) << "copies of the removed session after the sync";
  EXPECT_EQ(count(copies, 5501, "c5.b.", ""), 2U * kEach);
  for (const auto& c : copies) {
    EXPECT_EQ(c.vni, 5501U) << describe(c);
  }

  // The last session goes: no copy at all, and no VXLAN port (applyConfig checks the port).
  ASSERT_NO_FATAL_FAILURE(applyConfig(""));
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 45001, kDb, 5351, "c5.c", 64));
  const auto after = copiesWithin(env_->monitor.get(), 500ms);
  EXPECT_TRUE(after.empty()) << after.size() << " copies without a session, e.g. "
                             << describe(after.front());
}

// 6. A remote target over the underlay: an appliance namespace on br-underlay (userspace
// datapath, 192.0.2.1/24 on its internal device in ovs-vswitchd's namespace) gets the copies on
// a plain UDP socket, from 192.0.2.1, with the session's VNI, cut to packet_length.
TEST_F(MirrorE2e, RemoteTargetOverTheUnderlay) {
  VGT_ASSERT_OK(sandbox().vsctl(
      fmt::format("add-br {0} -- set bridge {0} datapath_type=netdev", kUnderlayBridge)));
  VGT_ASSIGN_OR_FAIL(appliance_, ExtraNetns::create(sandbox(), "app", "vgt-ul0"));
  const std::string setup = fmt::format(
      "set -e\nip -n {0} link set eth0 address {1}\nip -n {0} addr add {2}/24 dev eth0\n"
      "ip -n {3} addr add {4}/24 dev {5}\nip -n {3} link set {5} up\n",
      appliance_->name(), kApplianceMac, kApplianceAddress, sandbox().netns(), kUnderlayAddress,
      kUnderlayBridge);
  VGT_ASSERT_OK(runChecked("sh -c " + shellQuote(setup)));
  VGT_ASSERT_OK(sandbox().vsctl(fmt::format("add-port {} vgt-ul0", kUnderlayBridge)));
  // ovs-vswitchd follows its namespace's routes: wait until it routes the appliance's address
  // through br-underlay; then the neighbour entry (copies before it would be lost) and a ping
  // that proves the underlay itself.
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = sandbox().appctl(std::string("ovs/route/lookup ") + kApplianceAddress);
        return r && r->find(kUnderlayBridge) != std::string::npos;
      },
      10s))
      << sandbox().appctl("ovs/route/show").value_or("?");
  VGT_ASSERT_OK(sandbox().appctl(
      fmt::format("tnl/neigh/set {} {} {}", kUnderlayBridge, kApplianceAddress, kApplianceMac)));
  auto ping = sandbox().execInNetns(std::string("ping -c 1 -W 2 ") + kApplianceAddress);
  ASSERT_TRUE(ping.ok()) << "the underlay does not work: " << ping.output;
  VGT_ASSIGN_OR_FAIL(appliance_socket_, udpSocket(appliance_->name(), kVxlanPort));

  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-remote", kWeb, "tmt-appliance", "tmf-all", 1, 6600, 128)));
  const SessionView s{kWeb, 6600, 128};
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  constexpr int kEach = 8;
  for (int i = 0; i < kEach; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        exchange(kWeb, 46001, kDb, 5351, fmt::format("c6.{}", i), i % 2 == 0 ? 300 : 40));
  }
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 46001, kDb, 5351, "c6.fence", 40));
  const std::set<std::string> fence = {"c6.fence.rq", "c6.fence.rp"};
  const auto copies = collectCopies(appliance_socket_.get(), fence);
  const auto taps = readTaps(fence);
  expectCopiesOf(
      taps,
      [&](const std::string&, const TapFrame& f) {
        return f.frame.ipv4 ? std::optional(s) : std::nullopt;
      },
      copies, kUnderlayAddress);
  expectTaggedCopiesMatchSent(copies, {s});
  EXPECT_EQ(count(copies, 6600, "c6.", ".rq"), kEach + 1U);
  EXPECT_EQ(count(copies, 6600, "c6.", ".rp"), kEach + 1U);
  std::vector<Copy> at_monitor;
  drainCopies(env_->monitor.get(), at_monitor);
  EXPECT_TRUE(at_monitor.empty()) << "the monitor VM got " << at_monitor.size() << " copies";
}

// 7. Copies are never flow-logged: with a flow log on the whole VPC, the monitor VM's interface
// has no record (it received only copies), and no record anywhere is VXLAN or from the mirror's
// source address; the mirrored traffic itself is logged.
TEST_F(MirrorE2e, CopiesAreNeverFlowLogged) {
  const std::string logs = dir() + "/flowlogs";
  const std::string flow_log = fmt::format(
      "\n[[flow_logs]]\nid = \"fl-mirror\"\nresource_id = \"vpc-lab\"\ntraffic_type = \"ALL\"\n"
      "log_destination = \"file://{}\"\nmax_aggregation_interval = 60\n",
      logs);
  const std::string mirror = session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 7700, std::nullopt);
  const size_t ipfix_before = env_->daemon->countInLog("ipfix_configured");
  ASSERT_NO_FATAL_FAILURE(applyConfig(mirror + flow_log));
  ASSERT_TRUE(
      waitFor([&] { return env_->daemon->countInLog("ipfix_configured") > ipfix_before; }, 10s))
      << env_->daemon->logTail();
  constexpr int kEach = 5;
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 47001, kDb, 5351, "c7", 64));
  const auto copies = collectCopies(env_->monitor.get(), {fmt::format("c7.{}.rp", kEach - 1)});
  EXPECT_EQ(count(copies, 7700, "c7.", ""), 2U * kEach);

  // Counters and samples up to date, then the flow log removed: its records are published.
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 2; ++i) {
    VGT_ASSERT_OK(sandbox().appctl("revalidator/wait"));
  }
  std::this_thread::sleep_for(500ms);
  const size_t published_before = env_->daemon->countInLog("flow_log_published flow_log=fl-mirror");
  ASSERT_NO_FATAL_FAILURE(applyConfig(mirror));
  ASSERT_TRUE(waitFor(
      [&] {
        return env_->daemon->countInLog("flow_log_published flow_log=fl-mirror") > published_before;
      },
      10s))
      << env_->daemon->logTail();

  VGT_ASSIGN_OR_FAIL(auto read, flowlog::readFlowLogs(logs, {}));
  for (const auto& e : read.errors) {
    ADD_FAILURE() << e.message;
  }
  bool web_logged = false;
  for (const auto& rec : read.records) {
    const auto v = [&](const char* f) { return std::string(rec.value(f).value_or("?")); };
    if (v("log-status") != "OK") {
      continue;
    }
    EXPECT_NE(v("interface-id"), kMon) << "a copy was logged: " << rec.line;
    EXPECT_NE(v("srcport"), "4789") << rec.line;
    EXPECT_NE(v("dstport"), "4789") << rec.line;
    EXPECT_NE(v("srcaddr"), kLocalOuterSource) << rec.line;
    web_logged = web_logged ||
                 (v("interface-id") == kWeb && v("dstport") == "5351" && v("action") == "ACCEPT");
  }
  EXPECT_TRUE(web_logged) << "the mirrored traffic itself was not logged (" << read.records.size()
                          << " records)";
}

// 8. A port mirror (SPAN) to an OVS port the test adds: every IPv4 frame web1 sends or receives
// arrives there once, whole and unchanged, including datagrams db's security group drops (OVS
// mirrors what the bridge takes from the port), and no VXLAN copy is made.
TEST_F(MirrorE2e, PortMirrorCopiesWholeFramesToTheSpanPort) {
  VGT_ASSIGN_OR_FAIL(span_, ExtraNetns::create(sandbox(), "span", kSpanPort));
  VGT_ASSERT_OK(sandbox().vsctl(fmt::format("add-port {} {}", PolicyLab::kBridge, kSpanPort)));
  VGT_ASSIGN_OR_FAIL(span_tap_, packetSocket(span_->name(), "eth0"));
  ASSERT_NO_FATAL_FAILURE(applyConfig(fmt::format(
      "\n[[port_mirrors]]\nid = \"pm-web\"\nnetwork_interface_id = \"{}\"\noutput_port = \"{}\"\n",
      kWeb, kSpanPort)));
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  constexpr int kEach = 4;
  (void)udp(kDb, 5390);
  for (int i = 0; i < kEach; ++i) {
    send(kWeb, 48001, kDb, 5390, fmt::format("c8.sg.{}", i), 500);
    ASSERT_NO_FATAL_FAILURE(
        exchange(kWeb, 48001, kDb, 5351, fmt::format("c8.{}", i), i % 2 == 0 ? 1000 : 30));
  }
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 48001, kDb, 5351, "c8.fence", 30));
  const std::set<std::string> fence = {"c8.fence.rq", "c8.fence.rp"};
  std::vector<TapFrame> span;
  ASSERT_TRUE(waitFor(
      [&] {
        drainTap(span_tap_.get(), span);
        std::set<std::string> seen;
        for (const auto& f : span) {
          seen.insert(f.frame.tag());
        }
        return seen.count("c8.fence.rq") != 0 && seen.count("c8.fence.rp") != 0;
      },
      kCopyTimeout, 10ms))
      << "the SPAN port never saw the fence (" << span.size() << " frames)";
  std::this_thread::sleep_for(kGrace);
  drainTap(span_tap_.get(), span);
  const auto taps = readTaps(fence);
  expectNothingOn(kDb, 5390);

  std::map<std::string, std::vector<std::string>> want;  // frame bytes -> descriptions
  for (const auto& f : taps.at(kWeb)) {
    if (f.frame.ipv4) {
      want[f.frame.bytes].push_back(std::string(f.sent ? "sent " : "received ") +
                                    describe(f.frame));
    }
  }
  std::vector<std::string> unexpected;
  size_t dropped_seen = 0;
  for (const auto& f : span) {
    if (f.sent || !f.frame.ipv4) {
      continue;
    }
    dropped_seen += f.frame.tag().rfind("c8.sg.", 0) == 0 ? 1U : 0U;
    auto it = want.find(f.frame.bytes);
    if (it == want.end() || it->second.empty()) {
      unexpected.push_back(describe(f.frame));
    } else {
      it->second.pop_back();
    }
  }
  std::vector<std::string> missing;
  for (const auto& [bytes, d] : want) {
    missing.insert(missing.end(), d.begin(), d.end());
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " of web1's frames not on the SPAN port:\n  "
                               << fmt::format("{}", fmt::join(missing, "\n  "));
  EXPECT_TRUE(unexpected.empty()) << unexpected.size() << " SPAN frames web1 never saw:\n  "
                                  << fmt::format("{}", fmt::join(unexpected, "\n  "));
  EXPECT_EQ(dropped_seen, kEach + 0U) << "the datagrams db's security group dropped";
  EXPECT_FALSE(tunnelOfport().has_value()) << "a port mirror alone needs no VXLAN port";
  std::vector<Copy> at_monitor;
  drainCopies(env_->monitor.get(), at_monitor);
  EXPECT_TRUE(at_monitor.empty()) << "the monitor VM got " << at_monitor.size() << " copies";
}

// 9. A copy too big for the target once encapsulated (a full-size 1514-byte frame, no
// packet_length) is cut to fit the target's MTU, as AWS does for an instance target, and costs no
// other copy: small datagrams sent right behind it (in the same datapath batch) are copied too.
TEST_F(MirrorE2e, FullSizePacketsAreCutToTheTargetMtu) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 9900, std::nullopt)));
  const SessionView s{kWeb, 9900, std::nullopt};
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  constexpr int kBursts = 4;
  constexpr int kSmall = 3;
  (void)udp(kDb, 5351);
  for (int i = 0; i < kBursts; ++i) {
    send(kWeb, 49001, kDb, 5351, fmt::format("c9.big.{}", i), 1472);  // a 1500-byte IPv4 packet
    for (int j = 0; j < kSmall; ++j) {
      send(kWeb, 49001, kDb, 5351, fmt::format("c9.small.{}.{}", i, j), 40);
    }
  }
  for (int k = 0; k < kBursts * (1 + kSmall); ++k) {
    ASSERT_TRUE(receiveOne(udp(kDb, 5351), 3s)) << "the originals must all arrive";
  }
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 49001, kDb, 5351, "c9.fence", 40));
  const std::set<std::string> fence = {"c9.fence.rq", "c9.fence.rp"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps(fence);
  expectCopiesOf(
      taps,
      [&](const std::string&, const TapFrame& f) {
        return f.frame.ipv4 ? std::optional(s) : std::nullopt;
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, {s});
  EXPECT_EQ(count(copies, 9900, "c9.big.", ""), kBursts + 0U) << "full-size packets' copies";
  EXPECT_EQ(count(copies, 9900, "c9.small.", ""), kBursts * kSmall + 0U)
      << "copies of small packets right behind a full-size one";
}

// 10. A session to a local target added while the VXLAN port already exists (made for a session
// to a remote target): its copies flow as soon as vpcguardd has applied the change.
TEST_F(MirrorE2e, LocalTargetAddedNextToAnExistingSessionCopiesAtOnce) {
  const std::string remote =
      session("tms-remote", kWeb, "tmt-appliance", "tmf-all", 1, 8800, std::nullopt);
  ASSERT_NO_FATAL_FAILURE(applyConfig(remote));
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(remote + session("tms-db", kDb, "tmt-mon", "tmf-all", 1, 8801, std::nullopt)));
  constexpr int kEach = 3;
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 50001, kDb, 5351, "c10", 64));
  const auto copies = collectCopies(env_->monitor.get(), {fmt::format("c10.{}.rp", kEach - 1)});
  EXPECT_EQ(count(copies, 8801, "c10.", ""), 2U * kEach)
      << "copies of the new session right after vpcguardd applied it";
}


std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    s.pop_back();
  }
  return s;
}

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// 11. Neighbour entries of local targets outlive ovs-vswitchd's aging: with `tnl/neigh/aging 3`
// (set before vpcguardd starts and applies the session), the entry of the monitor's next hop is
// there all the time, and after 10 s without a copy or any traffic (longer than the aging three
// times over, and than the datapath flows' idle time) every copy arrives.
TEST_F(MirrorE2e, NeighbourEntriesOutliveOvsAging) {
  VGT_ASSIGN_OR_FAIL(const std::string aging, sandbox().appctl("tnl/neigh/aging"));
  saved_neigh_aging_ = trimmed(aging);
  VGT_ASSERT_OK(sandbox().appctl("tnl/neigh/aging 3"));
  VGT_ASSIGN_OR_FAIL(const std::string now_aging, sandbox().appctl("tnl/neigh/aging"));
  ASSERT_EQ(trimmed(now_aging), "3");
  ASSERT_TRUE(env_->daemon->stop(SIGTERM)) << env_->daemon->logTail();
  VGT_ASSERT_OK(env_->daemon->start());
  ASSERT_TRUE(env_->daemon->waitSynced(30s)) << env_->daemon->logTail();
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 1111, std::nullopt)));
  const SessionView s{kWeb, 1111, std::nullopt};
  ASSERT_TRUE(waitFor([&] { return static_cast<bool>(localTargetReady(kMon)); }, 5s))
      << localTargetReady(kMon).message();
  const std::string hop = hostSide().nextHopTo(ipOf(kMon)).value_or("?");
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 51001, kDb, 5351, "c11.before", 64));

  // Idle: the neighbour entry must be there (and not stale) at every look.
  constexpr auto kIdle = 10s;
  std::vector<std::string> gone;
  const auto idle_start = Clock::now();
  while (Clock::now() - idle_start < kIdle) {
    const HostSide h = hostSide();
    auto n = h.neighbours.find(hop);
    if (n == h.neighbours.end() || n->second != macOf(kMon)) {
      gone.push_back(fmt::format("{:.2f} s into the idle time:\n{}", secondsSince(idle_start),
                                 h.text));
    }
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_TRUE(gone.empty()) << "the neighbour entry of " << hop << " (" << macOf(kMon)
                            << ") was missing " << gone.size() << " times, first "
                            << gone.front();

  constexpr int kEach = 4;
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 51001, kDb, 5351, "c11.after", 64));
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 51001, kDb, 5351, "c11.fence", 64));
  const std::set<std::string> fence = {"c11.fence.rq", "c11.fence.rp"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps(fence);
  expectCopiesOf(
      taps,
      [&](const std::string&, const TapFrame& f) {
        return f.frame.ipv4 ? std::optional(s) : std::nullopt;
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, {s});
  EXPECT_EQ(count(copies, 1111, "c11.before.", ""), 2U);
  EXPECT_EQ(count(copies, 1111, "c11.after.", ".rq"), kEach + 0U) << "copies after the idle time";
  EXPECT_EQ(count(copies, 1111, "c11.after.", ".rp"), kEach + 0U) << "copies after the idle time";
}

// 12. vpcguardd stopped (SIGTERM) and started with a config without any mirror removes what
// mirroring left on the switch: the VXLAN port, its Mirror rows (also one of a port mirror this
// run never had), ovs-vswitchd's routes with the copies' mark (also one to an address no target
// has) and the bridge's address in ovs-vswitchd's namespace. A Mirror row that is not vpcguard's
// stays.
TEST_F(MirrorE2e, StartWithoutMirrorsRemovesWhatMirroringLeft) {
  VGT_ASSIGN_OR_FAIL(span_, ExtraNetns::create(sandbox(), "span", kSpanPort));
  VGT_ASSERT_OK(sandbox().vsctl(fmt::format("add-port {} {}", PolicyLab::kBridge, kSpanPort)));
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 1212, std::nullopt) +
                  portMirror("pm-web", kWeb, kSpanPort)));
  ASSERT_TRUE(waitFor([&] { return static_cast<bool>(localTargetReady(kMon)); }, 5s))
      << localTargetReady(kMon).message();
  ASSERT_TRUE(env_->daemon->stop(SIGTERM)) << env_->daemon->logTail();

  // What it left; if it cleaned up as it exited, the test puts it back (a killed vpcguardd, or
  // an older version, would have left it).
  const std::string mark = std::to_string(pipeline::kMirrorPktMark);
  const auto ports = [&] {
    auto r = sandbox().vsctl(std::string("list-ports ") + PolicyLab::kBridge);
    return r ? *r : r.error().message;
  };
  {
    const HostSide h = hostSide();
    const bool tunnel = ports().find(pipeline::kMirrorTunnelPort) != std::string::npos;
    std::cout << "[ info ] left by the stopped vpcguardd: " << (tunnel ? "" : "no ")
              << "VXLAN port, Mirror rows {" << fmt::format("{}", fmt::join(mirrorRows(), ","))
              << "}, " << h.marked_routes.size() << " marked routes, "
              << (h.address ? "" : "no ") << "bridge address\n";
    if (!tunnel) {
      VGT_ASSERT_OK(sandbox().vsctl(fmt::format(
          "add-port {0} {1} -- set Interface {1} type=vxlan options:remote_ip=flow "
          "options:key=flow external_ids:vpcguard-role=mirror-tunnel",
          PolicyLab::kBridge, pipeline::kMirrorTunnelPort)));
    }
    if (!h.address) {
      auto r = sandbox().execInNetns(fmt::format("ip addr add {}/24 dev {}",
                                                 pipeline::kMirrorHostAddress, PolicyLab::kBridge));
      ASSERT_TRUE(r.ok()) << r.output;
    }
  }
  // A marked route to an address no target has (accepted once ovs-vswitchd knows the address).
  const std::string stale_route =
      fmt::format("10.0.3.99/32 {} 169.254.118.99 pkt_mark={}", PolicyLab::kBridge, mark);
  extra_routes_.push_back("10.0.3.99/32 pkt_mark=" + mark);
  std::string route_error;
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = sandbox().appctl("ovs/route/add " + stale_route);
        route_error = r ? "" : r.error().message;
        return r.has_value();
      },
      5s, 50ms))
      << route_error;
  for (const char* name : {"vpcguard:pm-stale", "vgt-foreign"}) {
    extra_mirror_rows_.push_back(name);
    VGT_ASSERT_OK(sandbox().vsctl(fmt::format(
        "-- --id=@m create Mirror name='\"{}\"' -- add Bridge {} mirrors @m", name, PolicyLab::kBridge)));
  }
  {
    const HostSide h = hostSide();
    ASSERT_EQ(h.marked_routes.count("10.0.3.99/32"), 1U) << h.text;
    ASSERT_TRUE(h.address) << h.text;
  }

  ASSERT_NO_FATAL_FAILURE(writeConfig(""));
  VGT_ASSERT_OK(env_->daemon->start());
  ASSERT_TRUE(env_->daemon->waitSynced(30s)) << env_->daemon->logTail();
  const auto synced = Clock::now();
  const auto leftovers = [&] {
    std::vector<std::string> out;
    if (ports().find(pipeline::kMirrorTunnelPort) != std::string::npos) {
      out.push_back(std::string("the port ") + pipeline::kMirrorTunnelPort);
    }
    for (const auto& name : mirrorRows()) {
      if (name.rfind("vpcguard:", 0) == 0) {
        out.push_back("the Mirror row " + name);
      }
    }
    const HostSide h = hostSide();
    for (const auto& [dst, line] : h.marked_routes) {
      out.push_back("the route \"" + line + "\"");
    }
    if (h.address) {
      out.push_back(std::string(pipeline::kMirrorHostAddress) + " on " + PolicyLab::kBridge);
    }
    return out;
  };
  const bool clean = waitFor([&] { return leftovers().empty(); }, 5s, 50ms);
  const auto remaining = leftovers();
  EXPECT_TRUE(clean && remaining.empty())
      << "5 s after the first sync of the new vpcguardd, still there:\n  "
      << fmt::format("{}", fmt::join(remaining, "\n  ")) << "\n"
      << hostSide().text << "\n"
      << env_->daemon->logTail();
  if (clean) {
    std::cout << "[ info ] leftovers gone " << secondsSince(synced) * 1000
              << " ms after the first sync\n";
  }
  EXPECT_EQ(mirrorRows().count("vgt-foreign"), 1U) << "a Mirror row that is not vpcguard's";
  (void)sandbox().vsctl(fmt::format("-- --id=@m get Mirror vgt-foreign -- remove Bridge {} mirrors @m",
                                    PolicyLab::kBridge));
  // And the switch is exactly what the config makes of it.
  ASSERT_NO_FATAL_FAILURE(applyConfig(""));
}

// 13. ovs-vswitchd restarted (its routes and neighbours are gone): once vpcguardd has reconnected
// and synced, the way for copies to a local target is there again (set before the flows that
// send them), and they arrive, each packet's exactly once.
TEST_F(MirrorE2e, LocalTargetCopiesResumeAfterOvsVswitchdRestart) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-web", kWeb, "tmt-mon", "tmf-all", 1, 1313, std::nullopt)));
  const SessionView s{kWeb, 1313, std::nullopt};
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 53001, kDb, 5351, "c13.before", 64));
  const auto before = collectCopies(env_->monitor.get(), {"c13.before.rq", "c13.before.rp"});
  EXPECT_EQ(count(before, 1313, "c13.before.", ""), 2U);

  const auto killed = Clock::now();
  VGT_ASSERT_OK(sandbox().restartVswitchd());
  for (const char* id : {kWeb, kDb, kMon}) {
    VGT_ASSERT_OK(sandbox().ofport(env_->lab->vm(id)->host_veth));
  }
  ASSERT_TRUE(waitFor([&] { return static_cast<bool>(applied(env_->policy)); }, 30s, 20ms))
      << "vpcguardd did not restore the flows within 30 s: " << applied(env_->policy).message()
      << "\n"
      << env_->daemon->logTail();
  const double flows_back = secondsSince(killed);
  const auto ready = localTargetReady(kMon);
  EXPECT_TRUE(ready) << "the flows that send copies are back, the way for them is not: "
                     << ready.message();
  if (!ready) {
    ASSERT_TRUE(waitFor([&] { return static_cast<bool>(localTargetReady(kMon)); }, 10s))
        << localTargetReady(kMon).message() << env_->daemon->logTail();
    std::cout << "[ info ] the local target's route and neighbour came "
              << secondsSince(killed) - flows_back << " s after the flows\n";
  }
  std::cout << "[ info ] flows back " << flows_back * 1000 << " ms after the kill\n";

  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  constexpr int kEach = 4;
  ASSERT_NO_FATAL_FAILURE(exchanges(kEach, kWeb, 53001, kDb, 5351, "c13.after", 64));
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 53001, kDb, 5351, "c13.fence", 64));
  const std::set<std::string> fence = {"c13.fence.rq", "c13.fence.rp"};
  const auto copies = collectCopies(env_->monitor.get(), fence);
  const auto taps = readTaps(fence);
  expectCopiesOf(
      taps,
      [&](const std::string&, const TapFrame& f) {
        return f.frame.ipv4 ? std::optional(s) : std::nullopt;
      },
      copies, kLocalOuterSource);
  expectTaggedCopiesMatchSent(copies, {s});
  EXPECT_EQ(count(copies, 1313, "c13.after.", ".rq"), kEach + 0U);
  EXPECT_EQ(count(copies, 1313, "c13.after.", ".rp"), kEach + 0U);
  EXPECT_EQ(count(copies, 1313, "c13.before.", ""), 0U) << "a copy from before the restart, again";
}

// 14. VMs cannot reach the mirror host subnet (169.254.118.0/24: the bridge's address and the
// local targets' next hops), while a local target uses it: a ping to 169.254.118.1 gets no answer,
// ARP for it none either, and none of it (nor a datagram to a next hop, nor an ARP reply to
// 169.254.118.1, nor one claiming a next hop) reaches the bridge's device in ovs-vswitchd's
// namespace: all of it is dropped in L3_LOOKUP (n_packets of those flows) or by the source check.
// The monitor's next hop keeps its MAC and copies still arrive. Other link-local traffic still
// goes to the host (a datagram to 169.254.169.254 reaches the device) and ARP for it is answered.
TEST_F(MirrorE2e, VmsCannotReachTheMirrorHostSubnet) {
  ASSERT_NO_FATAL_FAILURE(
      applyConfig(session("tms-db", kDb, "tmt-mon", "tmf-all", 1, 1414, std::nullopt)));
  ASSERT_TRUE(waitFor([&] { return static_cast<bool>(localTargetReady(kMon)); }, 5s))
      << localTargetReady(kMon).message();
  const std::string hop = hostSide().nextHopTo(ipOf(kMon)).value_or("?");
  // The bridge's device up, so that what OVS sends to it reaches the kernel (and a packet
  // socket there); the controls below prove it does.
  const std::string bridge = PolicyLab::kBridge;
  const auto link = sandbox().execInNetns("ip -o link show " + bridge);
  ASSERT_TRUE(link.ok()) << link.output;
  if (!std::regex_search(link.output, std::regex("[<,]UP[,>]"))) {
    bridge_device_set_up_ = true;
    const auto up = sandbox().execInNetns("ip link set " + bridge + " up");
    ASSERT_TRUE(up.ok()) << up.output;
  }
  VGT_ASSIGN_OR_FAIL(Fd host, packetSocket(sandbox().netns(), bridge));
  ASSERT_NO_FATAL_FAILURE(startTaps({kWeb}));
  const int web_tap = taps_.at(kWeb).get();

  // n_packets of the flows in L3_LOOKUP that match the subnet.
  const auto subnetDrops = [&]() -> std::optional<uint64_t> {
    auto flows = sandbox().dumpFlows(bridge, true);
    if (!flows) {
      return std::nullopt;
    }
    const std::string table = fmt::format("table={},", static_cast<int>(pipeline::kL3Lookup));
    static const std::regex kPackets(R"(n_packets=(\d+))");
    uint64_t sum = 0;
    int n = 0;
    std::istringstream in(*flows);
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (line.find(table) != std::string::npos &&
          line.find(pipeline::kMirrorHostSubnet) != std::string::npos &&
          std::regex_search(line, m, kPackets)) {
        sum += std::stoull(m[1]);
        ++n;
      }
    }
    return n >= 3 ? std::optional(sum) : std::nullopt;  // ip; arp_spa; arp_tpa
  };
  const auto drops_before = subnetDrops();
  EXPECT_TRUE(drops_before.has_value())
      << "no flows in table " << static_cast<int>(pipeline::kL3Lookup) << " for "
      << pipeline::kMirrorHostSubnet << " (IPv4, ARP by sender and by target)";

  // IPv4: a ping to the bridge's address, a datagram to the monitor's next hop.
  auto ping = env_->lab->exec(kWeb, std::string("ping -c 2 -i 0.2 -W 1 ") +
                                        pipeline::kMirrorHostAddress);
  EXPECT_FALSE(ping.ok()) << "a VM got an answer from " << pipeline::kMirrorHostAddress << ":\n"
                          << ping.output;
  const auto sendUdp = [&](const std::string& to, uint16_t port, const std::string& tag) {
    const std::string payload = payloadFor(tag, 32);
    const sockaddr_in a = v4Address(to, port);
    EXPECT_EQ(::sendto(udp(kWeb, 54001), payload.data(), payload.size(), 0,
                       reinterpret_cast<const sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(payload.size()))
        << errnoText("sendto " + to);
  };
  sendUdp(hop, kVxlanPort, "c14.hop");
  sendUdp("169.254.169.254", 80, "c14.linklocal");  // control: to the host
  // ARP, as raw frames from web1's interface: requests for 169.254.118.1 (to the router's MAC
  // and broadcast), a reply to it, a reply claiming the monitor's next hop (it would repoint the copies: ovs-vswitchd learns neighbours
  // from ARP replies to its bridge); control: a request for 169.254.169.254, which is answered.
  const std::string web_mac = macOf(kWeb);
  const std::string bcast = "ff:ff:ff:ff:ff:ff";
  const std::string zero = "00:00:00:00:00:00";
  const std::string router_mac = pipeline::kRouterMac;
  for (const std::string& frame :
       {arpFrame(1, router_mac, web_mac, ipOf(kWeb), zero, pipeline::kMirrorHostAddress),
        arpFrame(1, bcast, web_mac, ipOf(kWeb), zero, pipeline::kMirrorHostAddress),
        arpFrame(2, router_mac, web_mac, ipOf(kWeb), router_mac, pipeline::kMirrorHostAddress),
        arpFrame(2, bcast, web_mac, hop, router_mac, pipeline::kMirrorHostAddress),
        arpFrame(1, bcast, web_mac, ipOf(kWeb), zero, "169.254.169.254")}) {
    EXPECT_EQ(::send(web_tap, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()))
        << errnoText("send an ARP frame");
  }

  // The controls arrive; then a grace period for anything else.
  std::vector<TapFrame> at_host;
  std::vector<TapFrame> at_web;
  const auto controlsSeen = [&] {
    drainTap(host.get(), at_host);
    drainTap(web_tap, at_web);
    const bool host_saw = std::any_of(at_host.begin(), at_host.end(), [](const TapFrame& f) {
      return !f.sent && f.frame.tag() == "c14.linklocal";
    });
    const bool answered = std::any_of(at_web.begin(), at_web.end(), [](const TapFrame& f) {
      auto a = arpOf(f.frame);
      return !f.sent && a && a->op == 2 && a->spa == "169.254.169.254";
    });
    return host_saw && answered;
  };
  EXPECT_TRUE(waitFor(controlsSeen, 3s, 10ms))
      << "link-local traffic to the host no longer works (or the device sees nothing): "
      << at_host.size() << " frames on " << bridge << ", " << at_web.size() << " on web1";
  std::this_thread::sleep_for(kGrace);
  drainTap(host.get(), at_host);
  drainTap(web_tap, at_web);
  std::vector<std::string> reached;
  for (const auto& f : at_host) {
    if (f.sent) {
      continue;  // the host's own
    }
    if (f.frame.ipv4 && f.frame.ip_src == ipOf(kWeb) && inMirrorHostSubnet(f.frame.ip_dst)) {
      reached.push_back(describe(f.frame));
    }
    if (auto a = arpOf(f.frame);
        a && a->sha == web_mac && (inMirrorHostSubnet(a->spa) || inMirrorHostSubnet(a->tpa))) {
      reached.push_back(describe(*a));
    }
  }
  EXPECT_TRUE(reached.empty()) << "reached " << bridge << " from web1:\n  "
                               << fmt::format("{}", fmt::join(reached, "\n  "));
  // Answers through the switch. Not the switch's business: in this lab web1's port is a veth
  // whose host end is in ovs-vswitchd's namespace, where the kernel also gets the broadcast ARP
  // request and answers it for 169.254.118.1 (arp_ignore=0: any local address) with that end's
  // MAC, past OVS. Said as a note.
  const std::string veth_mac = trimmed(
      sandbox()
          .execInNetns("cat /sys/class/net/" + env_->lab->vm(kWeb)->host_veth + "/address")
          .output);
  std::vector<std::string> answers;
  std::vector<std::string> kernel_answers;
  for (const auto& f : at_web) {
    if (f.sent) {
      continue;
    }
    if (auto a = arpOf(f.frame); a && inMirrorHostSubnet(a->spa)) {
      (a->sha == veth_mac && f.frame.eth_src == veth_mac ? kernel_answers : answers)
          .push_back(describe(*a));
    }
    if (f.frame.ipv4 && inMirrorHostSubnet(f.frame.ip_src)) {
      answers.push_back(describe(f.frame));
    }
  }
  EXPECT_TRUE(answers.empty()) << "web1 got answers from the mirror host subnet:\n  "
                               << fmt::format("{}", fmt::join(answers, "\n  "));
  for (const auto& a : kernel_answers) {
    std::cout << "[ note ] the hypervisor namespace's kernel answered web1's broadcast ARP "
                 "through web1's host-side veth ("
              << veth_mac << "), not through the switch: " << a << "\n";
  }
  // 2 echo requests, the datagram, the two ARP requests and the reply to 169.254.118.1 (the
  // claim of the next hop is the source check's).
  if (drops_before) {
    std::optional<uint64_t> drops_after;
    EXPECT_TRUE(waitFor(
        [&] {
          drops_after = subnetDrops();
          return drops_after && *drops_after >= *drops_before + 6;
        },
        3s, 100ms))
        << "packets dropped in table " << static_cast<int>(pipeline::kL3Lookup) << " for "
        << pipeline::kMirrorHostSubnet << ": " << drops_after.value_or(0) - *drops_before
        << ", expected at least 6";
  }
  // The monitor's next hop is still the monitor, and copies still reach it.
  const HostSide h = hostSide();
  EXPECT_EQ(h.neighbours.count(hop) != 0 ? h.neighbours.at(hop) : "none", macOf(kMon)) << h.text;
  ASSERT_NO_FATAL_FAILURE(exchange(kWeb, 54002, kDb, 5351, "c14.fence", 64));
  const auto copies = collectCopies(env_->monitor.get(), {"c14.fence.rq", "c14.fence.rp"});
  EXPECT_EQ(count(copies, 1414, "c14.fence.", ""), 2U);
  for (const auto& c : copies) {
    EXPECT_EQ(c.vni, 1414U) << describe(c);
  }
}

}  // namespace
}  // namespace vpcguard::test
