// A sample of the trace property with real packets: random valid policies in the namespace lab
// (one VM per interface, the translator's flows on a userspace-datapath bridge, real conntrack),
// random TCP connections, pings, UDP datagrams and other ICMP messages between the VMs, and the
// outcome must be what explain::trace() says. A connection or a ping succeeds only when both
// directions pass, so there the expectation is "the packet and its reply are both allowed" (two
// traces per case); UDP and other ICMP types are watched for at the destination.
// tests/integration/trace_property_test.cpp checks thousands of cases with ofproto/trace; this
// one checks that ofproto/trace's view holds for real packets.
//
// VPCGUARD_TRACE_SEED reproduces a run (each message names its policy seed).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "explain/trace.h"
#include "tests/harness/assertions.h"
#include "tests/harness/ns_lab.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/random_policy.h"

namespace vpcguard::test {
namespace {

constexpr int kPolicies = 2;
constexpr int kPacketsPerPolicy = 12;

uint32_t seedFromEnv() {
  const char* value = std::getenv("VPCGUARD_TRACE_SEED");
  return value != nullptr && *value != '\0' ? static_cast<uint32_t>(std::strtoul(value, nullptr, 0))
                                            : std::random_device{}();
}

const model::Subnet& subnetOf(const model::Policy& policy, const model::NetworkInterface& eni) {
  for (const auto& s : policy.subnets) {
    if (s.id == eni.subnet_id) {
      return s;
    }
  }
  throw std::logic_error("interface " + eni.id + " has no subnet");
}

// The VMs of one lab and what the test started inside them: TCP listeners and receivers, which
// are killed by pid when the policy's cases end (also on failure), before the lab removes the
// namespaces.
class Vms {
 public:
  Vms(PolicyLab& lab, const model::Policy& policy) : lab_(lab), policy_(policy) {}
  ~Vms() {
    for (const auto& eni : policy_.network_interfaces) {
      if (const Vm* vm = lab_.vm(eni.id)) {
        (void)run("ip netns pids " + vm->netns + " | xargs -r kill -9");
      }
    }
  }
  Vms(const Vms&) = delete;
  Vms& operator=(const Vms&) = delete;

  // The lab gives VMs an IPv4 default route only; IPv6 leaves the subnet through the router at
  // the subnet's ::1, as in AWS.
  [[nodiscard]] Result<void> addIpv6Routes() {
    for (const auto& eni : policy_.network_interfaces) {
      const auto& subnet = subnetOf(policy_, eni);
      if (eni.ipv6_addresses.empty() || !subnet.ipv6_cidr_block) {
        continue;
      }
      const std::string router = subnet.ipv6_cidr_block->first().plus(1).toString();
      if (auto r = lab_.exec(eni.id, "ip -6 route add default via " + router + " dev eth0");
          !r.ok()) {
        return makeError("IPv6 route in " + eni.id + ": " + r.output);
      }
    }
    return {};
  }

  // A TCP listener on `address`:`port` in `eni` (kept for the rest of the policy's cases).
  [[nodiscard]] Result<void> listen(const std::string& eni, const IpAddress& address, int port) {
    const std::string endpoint = address.isV4()
                                     ? address.toString() + ":" + std::to_string(port)
                                     : "[" + address.toString() + "]:" + std::to_string(port);
    if (!listeners_.insert(eni + " " + endpoint).second) {
      return {};
    }
    auto started =
        lab_.exec(eni, "(timeout 300 nc -lk " + address.toString() + " " + std::to_string(port) +
                           " > /dev/null 2>&1 < /dev/null) > /dev/null 2>&1 &");
    if (!started.ok()) {
      return makeError("listener in " + eni + ": " + started.output);
    }
    if (!waitFor(
            [&] {
              return lab_.exec(eni, "ss -ltnH | grep -qF " + shellQuote(endpoint + " ")).ok();
            },
            std::chrono::seconds(10))) {
      return makeError("no listener on " + endpoint + " in " + eni);
    }
    return {};
  }

  // Sends the packet `p` describes and tells whether it got through: for TCP (a connection
  // attempt) and ICMP echo (a ping), the packet and its reply; for UDP and other ICMP types,
  // the packet alone, as the destination VM sees it.
  [[nodiscard]] Result<bool> send(const explain::TracePacket& p) {
    const std::string family = p.src.isV4() ? "-4" : "-6";
    if (p.protocol == model::kProtoTcp) {
      if (auto r = listen(p.dst_interface, p.dst, p.dst_port); !r) {
        return tl::unexpected(r.error());
      }
      const auto client =
          lab_.exec(p.src_interface, "timeout 5 nc " + family + " -z -w 1 -s " + p.src.toString() +
                                         " -p " + std::to_string(p.src_port) + " " +
                                         p.dst.toString() + " " + std::to_string(p.dst_port));
      return client.ok();
    }
    if (isRoundTrip(p)) {
      return lab_.exec(p.src_interface, "ping " + family + " -c 1 -W 1 " + p.dst.toString()).ok();
    }
    return sendOneWay(p);
  }

  // TCP connections and pings get an answer; the rest is observed at the destination.
  [[nodiscard]] static bool isRoundTrip(const explain::TracePacket& p) {
    return p.protocol == model::kProtoTcp ||
           (p.protocol == model::kProtoIcmp && p.icmp_type == 8 && p.icmp_code == 0) ||
           (p.protocol == model::kProtoIcmpv6 && p.icmp_type == 128 && p.icmp_code == 0);
  }

 private:
  // A receiver in the destination VM (a UDP socket, or a raw ICMP socket that waits for the
  // type), then the packet from the source VM; delivered = the receiver saw it within a second.
  [[nodiscard]] Result<bool> sendOneWay(const explain::TracePacket& p) {
    const std::string script = lab_.sandbox().dir() + "/probe.py";
    if (!script_written_) {
      if (auto r = runChecked("printf '%s' " + shellQuote(kProbeScript) + " > " + script); !r) {
        return tl::unexpected(r.error());
      }
      script_written_ = true;
    }
    const bool udp = p.protocol == model::kProtoUdp;
    const std::string common = std::string(udp ? "udp " : "icmp ") + (p.src.isV4() ? "4 " : "6 ") +
                               p.src.toString() + " " + p.dst.toString() + " ";
    const std::string out = lab_.sandbox().dir() + "/probe-" + std::to_string(++probes_) + ".out";
    auto receiver = lab_.exec(p.dst_interface, "(/usr/bin/python3 " + script + " recv " + common +
                                                   std::to_string(udp ? p.dst_port : p.icmp_type) +
                                                   " > " + out + " 2>&1 < /dev/null & echo $! > " +
                                                   out + ".pid) > /dev/null 2>&1");
    const auto has = [&](const char* word) {
      return run("grep -qw " + std::string(word) + " " + out).ok();
    };
    if (!receiver.ok() || !waitFor([&] { return has("ready"); }, std::chrono::seconds(10))) {
      return makeError("receiver in " + p.dst_interface + ": " + run("cat " + out).output);
    }
    auto sender =
        lab_.exec(p.src_interface, "/usr/bin/python3 " + script + " send " + common +
                                       std::to_string(udp ? p.src_port : p.icmp_type) + " " +
                                       std::to_string(udp ? p.dst_port : p.icmp_code));
    if (!sender.ok()) {
      return makeError("sender in " + p.src_interface + ": " + sender.output);
    }
    const bool got = waitFor([&] { return has("got"); }, std::chrono::seconds(1));
    // The receiver ends by itself once it saw the packet; else it goes now (its port is free
    // for the next case).
    (void)lab_.exec(p.dst_interface, "kill $(cat " + out + ".pid) 2>/dev/null; true");
    return got;
  }

  // probe.py recv|send udp|icmp 4|6 SRC DST A [B]: recv A = UDP port or ICMP type, prints
  // "ready", then "got" once a matching packet from SRC arrives (gives up after 10 s); send
  // A B = UDP source and destination port, or ICMP type and code (zero payload).
  static constexpr const char* kProbeScript = R"(import socket, struct, sys, time
mode, proto, fam, src, dst, a = sys.argv[1:7]
af = socket.AF_INET6 if fam == "6" else socket.AF_INET
icmp = socket.IPPROTO_ICMPV6 if fam == "6" else socket.IPPROTO_ICMP
def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
if mode == "recv":
    if proto == "udp":
        s = socket.socket(af, socket.SOCK_DGRAM)
        s.bind((dst, int(a)))
    else:
        s = socket.socket(af, socket.SOCK_RAW, icmp)
    s.settimeout(0.2)
    print("ready", flush=True)
    end = time.time() + 10
    while time.time() < end:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if socket.inet_pton(af, addr[0]) != socket.inet_pton(af, src):
            continue
        if proto == "icmp" and (data[0] if fam == "6" else data[(data[0] & 15) * 4]) != int(a):
            continue
        print("got", flush=True)
        sys.exit(0)
    print("none", flush=True)
else:
    b = int(sys.argv[7])
    if proto == "udp":
        s = socket.socket(af, socket.SOCK_DGRAM)
        s.bind((src, int(a)))
        s.sendto(b"probe", (dst, b))
    else:
        s = socket.socket(af, socket.SOCK_RAW, icmp)
        s.bind((src, 0))
        body = struct.pack("!BBHI", int(a), b, 0, 0) + bytes(28)
        if fam == "4":  # the kernel fills in ICMPv6 checksums itself
            body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        s.sendto(body, (dst, 0))
)";

  PolicyLab& lab_;
  const model::Policy& policy_;
  std::set<std::string> listeners_;
  bool script_written_ = false;
  int probes_ = 0;
};

// One case: the packet, and the traces of it and of its reply.
struct Case {
  explain::TraceRequest request;
  explain::TraceResult original;
  explain::TraceResult reply;
  [[nodiscard]] bool expectedThrough() const {
    return original.verdict == explain::Verdict::kAllow &&
           (!Vms::isRoundTrip(original.packet) || reply.verdict == explain::Verdict::kAllow);
  }
};

// Random sendable packets for `policy`, traced, kept so that about half are expected through
// (most random packets are blocked somewhere on the round trip; choosing by the trace's verdict
// does not bias what the lab then checks). Every TCP case has its own source port, so no case
// meets a connection of another, and no port is both a client's and a listener's: a client's
// port stays in TIME_WAIT after its case, and a listener cannot bind it then.
Result<std::vector<Case>> chooseCases(const model::Policy& policy, uint32_t seed) {
  RandomPackets packets(policy, seed, RandomPacketOptions{.sendable = true});
  std::vector<Case> through;
  std::vector<Case> blocked;
  std::set<int> source_ports;
  std::set<int> listen_ports;
  constexpr int kHalf = kPacketsPerPolicy / 2;
  for (int tries = 0; tries < 400 && (std::ssize(through) < kHalf || std::ssize(blocked) < kHalf);
       ++tries) {
    Case c;
    c.request = packets.next();
    if (c.request.source_port && (source_ports.contains(*c.request.source_port) ||
                                  listen_ports.contains(*c.request.source_port))) {
      continue;
    }
    auto original = explain::trace(policy, c.request);
    explain::TraceRequest reply_request = c.request;
    reply_request.reply = true;
    auto reply = explain::trace(policy, reply_request);
    if (!original || !reply) {
      return makeError("trace " + describeRequest(c.request) + ": " +
                       (original ? reply.error() : original.error()).message);
    }
    c.original = std::move(*original);
    c.reply = std::move(*reply);
    const auto& p = c.original.packet;
    const bool tcp = p.protocol == model::kProtoTcp;
    if (tcp && source_ports.contains(p.dst_port)) {
      continue;
    }
    auto& bucket = c.expectedThrough() ? through : blocked;
    if (std::ssize(bucket) < kHalf) {
      if (c.request.source_port) {
        source_ports.insert(*c.request.source_port);
      }
      if (tcp) {
        listen_ports.insert(p.dst_port);
      }
      bucket.push_back(std::move(c));
    }
  }
  // Alternate, so that neither kind runs only against a fresh or only against a busy lab.
  std::vector<Case> cases;
  for (size_t i = 0; i < std::max(through.size(), blocked.size()); ++i) {
    for (auto* bucket : {&through, &blocked}) {
      if (i < bucket->size()) {
        cases.push_back(std::move((*bucket)[i]));
      }
    }
  }
  return cases;
}

TEST(TraceSample, RealPacketsGetTheTracedVerdict) {
  if (auto why = NsLab::unavailableReason()) {
    GTEST_SKIP() << *why;
  }
  const uint32_t seed = seedFromEnv();
  std::cout << "trace sample: VPCGUARD_TRACE_SEED=" << seed << "\n";
  int through = 0;
  int cases = 0;
  for (int i = 0; i < kPolicies; ++i) {
    const uint32_t policy_seed = seed + static_cast<uint32_t>(i);
    VGT_ASSIGN_OR_FAIL(const model::Policy policy, randomPolicy(policy_seed));
    VGT_ASSIGN_OR_FAIL(const std::vector<Case> chosen, chooseCases(policy, policy_seed));
    VGT_ASSIGN_OR_FAIL(auto lab, PolicyLab::start(policy));
    VGT_ASSERT_OK(lab->install(policy));
    Vms vms(*lab, policy);
    VGT_ASSERT_OK(vms.addIpv6Routes());
    for (const Case& c : chosen) {
      // Each case on its own: no connection of an earlier case changes this one's verdict.
      VGT_ASSERT_OK(lab->flushConntrack());
      VGT_ASSIGN_OR_FAIL(const bool delivered, vms.send(c.original.packet));
      ++cases;
      through += c.expectedThrough() ? 1 : 0;
      std::cout << "  " << describeRequest(c.request) << ": "
                << (delivered ? "got through" : "blocked") << "\n";
      EXPECT_EQ(delivered, c.expectedThrough())
          << "policy seed " << policy_seed << ", " << describeRequest(c.request)
          << (delivered ? ": got through" : ": was blocked") << "\n--- trace:\n"
          << explain::renderText(c.original) << "--- trace of the reply:\n"
          << explain::renderText(c.reply) << "--- policy (the parts that decide):\n"
          << describePolicyFor(policy, c.original.packet);
    }
  }
  std::cout << "trace sample: " << cases << " cases, " << through << " expected through, "
            << cases - through << " expected blocked\n";
}

}  // namespace
}  // namespace vpcguard::test
