// datapath_bench: what the full vpcguard pipeline costs real traffic, next to plain forwarding
// on the same switch, VMs and run.
//
//   datapath_bench [--config FILE] [--client ENI] [--server ENI] [--port N] [--seconds S]
//
// Two VMs (network namespaces) of the config on a userspace-datapath bridge. For each mode
// (1) plain forwarding: one flow per direction that rewrites the destination MAC and outputs
//     (the VMs keep their router addresses; their gateway's ARP entry is static),
// (2) vpcguard: the policy's full pipeline (port security, router, NACLs, SG with conntrack),
// it measures iperf3 TCP throughput (client -> server port) and the new-connection rate (TCP
// connect + close in a loop for S seconds), and prints vpcguard / forwarding ratios.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "translator/pipeline.h"

namespace {

using namespace vpcguard;
using Clock = std::chrono::steady_clock;

int fail(const std::string& what) {
  std::fprintf(stderr, "datapath_bench: %s\n", what.c_str());
  return 1;
}


// TCP connections per second from the client namespace to server:port for `seconds`; the server
// side is a plain listener in its namespace that accepts and closes.
double connectionRate(const std::string& client_ns, const std::string& server_ns,
                      const std::string& server_ip, int port, int seconds) {
  std::atomic<bool> stop{false};
  int listener = -1;
  bench::inNetns(server_ns, [&] {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener, 1024) != 0) {
      std::perror("listen");
    }
  });
  std::thread acceptor([&] {
    while (!stop) {
      const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        ::close(c);
      }
    }
  });
  long connections = 0;
  bench::inNetns(client_ns, [&] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, server_ip.c_str(), &a.sin_addr);
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < end) {
      const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval tv{1, 0};
      ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        ++connections;
      }
      // RST instead of FIN: no TIME_WAIT build-up over thousands of connections.
      linger l{1, 0};
      ::setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(s);
    }
  });
  stop = true;
  ::shutdown(listener, SHUT_RDWR);
  acceptor.join();
  ::close(listener);
  return static_cast<double>(connections) / seconds;
}

struct Figures {
  double gbps = 0;
  double conn_per_s = 0;
};

Result<Figures> measure(test::PolicyLab& lab, const std::string& client, const std::string& server,
                        const std::string& server_ip, int port, int seconds) {
  Figures f;
  auto gbps = bench::iperf3Gbps(lab, client, server, server_ip, port, seconds);
  if (!gbps) {
    return tl::unexpected(gbps.error());
  }
  f.gbps = *gbps;
  f.conn_per_s = connectionRate(lab.vm(client)->netns, lab.vm(server)->netns, server_ip, port + 1,
                                seconds);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"datapath_bench: vpcguard pipeline vs plain forwarding, real traffic"};
  std::string config = std::string(VPCGUARD_SOURCE_DIR) + "/configs/lab.toml";
  std::string client = "eni-web1";
  std::string server = "eni-db1";
  int port = 5432;
  int seconds = 10;
  app.add_option("--config", config)->capture_default_str();
  app.add_option("--client", client)->capture_default_str();
  app.add_option("--server", server)->capture_default_str();
  app.add_option("--port", port, "A port the policy allows from client to server (and port+1)")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each measurement")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto policy = config::loadPolicy(config);
  if (!policy) {
    return fail(policy.error().toError().message);
  }
  // The connection-rate test uses port+1: allow it the same way as port.
  for (auto& g : policy->security_groups) {
    auto extra = g.ingress;
    for (auto& r : extra) {
      if (r.ports && r.ports->from <= port && r.ports->to >= port) {
        r.ports = model::PortRange{port + 1, port + 1};
        g.ingress.push_back(r);
      }
    }
  }
  for (auto& acl : policy->network_acls) {
    auto extra = acl.entries;
    for (auto& e : extra) {
      if (!e.egress && e.port_range && e.port_range->from <= port && e.port_range->to >= port &&
          e.port_range->to < port + 1) {
        e.rule_number += 1;
        e.port_range = model::PortRange{port + 1, port + 1};
        acl.entries.push_back(e);
      }
    }
  }
  std::fprintf(stderr, "datapath_bench: starting the lab\n");
  auto lab = test::PolicyLab::start(*policy);
  if (!lab) {
    return fail(lab.error().message);
  }
  const auto* c = (*lab)->vm(client);
  const auto* s = (*lab)->vm(server);
  if (c == nullptr || s == nullptr) {
    return fail("unknown --client or --server interface");
  }
  const std::string server_ip = s->spec.ipv4_cidr.substr(0, s->spec.ipv4_cidr.find('/'));

  // (1) plain forwarding between the two ports, MACs rewritten as a router would.
  std::fprintf(stderr, "datapath_bench: plain forwarding\n");
  for (const auto* vm : {c, s}) {
    (void)(*lab)->exec(vm->spec.name, fmt::format("ip neigh replace {} lladdr {} dev eth0",
                                                  vm->spec.gateway, pipeline::kRouterMac));
  }
  const std::string fwd = fmt::format(
      "table=0,priority=10,in_port={},actions=mod_dl_dst:{},output:{}\n"
      "table=0,priority=10,in_port={},actions=mod_dl_dst:{},output:{}\n"
      "table=0,priority=0,actions=drop",
      c->ofport, s->spec.mac, s->ofport, s->ofport, c->spec.mac, c->ofport);
  if (auto r = (*lab)->replaceFlows(fwd); !r) {
    return fail(r.error().message);
  }
  auto base = measure(**lab, client, server, server_ip, port, seconds);
  if (!base) {
    return fail("forwarding: " + base.error().message);
  }

  // (2) the full vpcguard pipeline.
  std::fprintf(stderr, "datapath_bench: vpcguard pipeline\n");
  if (auto r = (*lab)->install(*policy); !r) {
    return fail(r.error().message);
  }
  auto vg = measure(**lab, client, server, server_ip, port, seconds);
  if (!vg) {
    return fail("vpcguard: " + vg.error().message);
  }
  std::printf("path                        %s -> %s:%d (%s)\n", client.c_str(), server_ip.c_str(),
              port, config.c_str());
  std::printf("tcp_gbps forwarding         %.2f\n", base->gbps);
  std::printf("tcp_gbps vpcguard           %.2f\n", vg->gbps);
  std::printf("tcp_throughput_ratio        %.2f\n", base->gbps > 0 ? vg->gbps / base->gbps : 0.0);
  std::printf("new_conn_per_s forwarding   %.0f\n", base->conn_per_s);
  std::printf("new_conn_per_s vpcguard     %.0f\n", vg->conn_per_s);
  std::printf("new_conn_ratio              %.2f\n",
              base->conn_per_s > 0 ? vg->conn_per_s / base->conn_per_s : 0.0);
  return 0;
}
