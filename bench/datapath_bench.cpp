// datapath_bench: what the full vpcguard pipeline costs real traffic, next to plain forwarding
// on the same switch, VMs and run.
//
//   datapath_bench [--config FILE] [--client ENI] [--server ENI] [--port N] [--seconds S]
//                  [--rounds R]
//
// Two VMs (network namespaces) of the config on a userspace-datapath bridge. For each mode
// (1) plain forwarding: one flow per direction that rewrites the destination MAC and outputs
//     (the VMs keep their router addresses; their gateway's ARP entry is static),
// (2) vpcguard: the policy's full pipeline (port security, router, NACLs, SG with conntrack),
// it measures iperf3 TCP throughput (client -> server port) and the new-connection rate (TCP
// connect + reset in a loop for S seconds), and prints vpcguard / forwarding ratios. Rounds
// alternate the order (1,2 / 2,1 / ...) and the figures are means over the rounds: on a shared
// 2-core machine one measurement moves by +-25%. For each mode it also prints what the switch
// did per packet: datapath passes (1 + recirculations, from dpif-netdev/pmd-stats-show) and
// upcalls per new connection.
#include <cstdio>
#include <utility>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench_util.h"
#include "daemon/config_loader.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "translator/pipeline.h"

namespace {

using namespace vpcguard;

int fail(const std::string& what) {
  std::fprintf(stderr, "datapath_bench: %s\n", what.c_str());
  return 1;
}


struct ModeFigures {
  std::vector<double> gbps;
  std::vector<double> conn_per_s;
  std::vector<double> upcalls_per_conn;
  std::vector<double> passes_per_packet;
};

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) {
    sum += x;
  }
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

std::string listed(const std::vector<double>& v, const char* format) {
  std::string out;
  for (double x : v) {
    out += (out.empty() ? "" : ", ") + fmt::format(fmt::runtime(format), x);
  }
  return out;
}

Result<void> measureInto(test::PolicyLab& lab, const std::string& client, const std::string& server,
                         const std::string& server_ip, int port, int seconds, ModeFigures& into) {
  const auto counters = [&] {
    return std::pair{bench::pmdCounter(lab, {"packets received:"}),
                     bench::pmdCounter(lab, {"packet recirculations:"})};
  };
  const auto before = counters();
  auto f = bench::measure(lab, client, server, server_ip, port, seconds);
  if (!f) {
    return tl::unexpected(f.error());
  }
  const auto after = counters();
  into.gbps.push_back(f->gbps);
  into.conn_per_s.push_back(f->conn_per_s);
  into.upcalls_per_conn.push_back(f->upcalls_per_conn);
  const long packets = after.first - before.first;
  into.passes_per_packet.push_back(
      packets > 0 && before.first >= 0 && before.second >= 0
          ? 1.0 + static_cast<double>(after.second - before.second) / static_cast<double>(packets)
          : 0.0);
  return {};
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
  app.add_option("--port", port, "A TCP port the policy allows from client to server")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each measurement")->capture_default_str();
  int rounds = 1;
  app.add_option("--rounds", rounds, "Measurements of each mode, in alternating order")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto policy = config::loadPolicy(config);
  if (!policy) {
    return fail(policy.error().toError().message);
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
  for (const auto* vm : {c, s}) {
    (void)(*lab)->exec(vm->spec.name, fmt::format("ip neigh replace {} lladdr {} dev eth0",
                                                  vm->spec.gateway, pipeline::kRouterMac));
  }
  const std::string fwd = fmt::format(
      "table=0,priority=10,in_port={},actions=mod_dl_dst:{},output:{}\n"
      "table=0,priority=10,in_port={},actions=mod_dl_dst:{},output:{}\n"
      "table=0,priority=0,actions=drop",
      c->ofport, s->spec.mac, s->ofport, s->ofport, c->spec.mac, c->ofport);
  ModeFigures base;
  ModeFigures vg;
  const auto plain = [&]() -> Result<void> {
    std::fprintf(stderr, "datapath_bench: plain forwarding\n");
    if (auto r = (*lab)->replaceFlows(fwd); !r) {
      return r;
    }
    return measureInto(**lab, client, server, server_ip, port, seconds, base);
  };
  // (2) the full vpcguard pipeline.
  const auto pipeline = [&]() -> Result<void> {
    std::fprintf(stderr, "datapath_bench: vpcguard pipeline\n");
    if (auto r = (*lab)->install(*policy); !r) {
      return tl::unexpected(r.error());
    }
    return measureInto(**lab, client, server, server_ip, port, seconds, vg);
  };
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "datapath_bench: round %d of %d\n", round + 1, rounds);
    const bool plain_first = round % 2 == 0;
    if (auto r = plain_first ? plain() : pipeline(); !r) {
      return fail(r.error().message);
    }
    if (auto r = plain_first ? pipeline() : plain(); !r) {
      return fail(r.error().message);
    }
  }
  const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  std::printf("path                        %s -> %s:%d (%s), %d round(s) of %d s\n", client.c_str(),
              server_ip.c_str(), port, config.c_str(), rounds, seconds);
  std::printf("tcp_gbps forwarding         %.2f (rounds: %s)\n", mean(base.gbps),
              listed(base.gbps, "{:.2f}").c_str());
  std::printf("tcp_gbps vpcguard           %.2f (rounds: %s)\n", mean(vg.gbps),
              listed(vg.gbps, "{:.2f}").c_str());
  std::printf("tcp_throughput_ratio        %.2f\n", ratio(mean(vg.gbps), mean(base.gbps)));
  std::printf("new_conn_per_s forwarding   %.0f (rounds: %s)\n", mean(base.conn_per_s),
              listed(base.conn_per_s, "{:.0f}").c_str());
  std::printf("new_conn_per_s vpcguard     %.0f (rounds: %s)\n", mean(vg.conn_per_s),
              listed(vg.conn_per_s, "{:.0f}").c_str());
  std::printf("new_conn_ratio              %.2f\n", ratio(mean(vg.conn_per_s), mean(base.conn_per_s)));
  std::printf("datapath_passes_per_packet  forwarding %.2f, vpcguard %.2f\n",
              mean(base.passes_per_packet), mean(vg.passes_per_packet));
  std::printf("upcalls_per_new_conn        forwarding %.2f, vpcguard %.2f\n",
              mean(base.upcalls_per_conn), mean(vg.upcalls_per_conn));
  return 0;
}
