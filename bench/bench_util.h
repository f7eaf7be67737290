#pragma once
// Small pieces the benchmarks share: timing, percentiles, process memory, attaching a policy's
// interfaces to a sandbox bridge and writing flows for ovs-ofctl (the baseline every benchmark
// runs in the same process and switch).
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ovs-plugin/openflow.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "translator/flow.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::bench {

using Clock = std::chrono::steady_clock;

inline double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// CPU time this thread has used, in ms: on a shared machine, wall time minus this is time spent
// waiting (for the switch, or for a CPU).
inline double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Nearest-rank percentile (p in 0..1) of the samples; 0 when there are none.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

// A "VmRSS"/"VmHWM"/... line of /proc/<pid>/status in KiB (pid 0 = this process); 0 if absent.
inline long procStatusKiB(pid_t pid, const std::string& key) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                            : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      return std::stol(line.substr(key.size() + 1));
    }
  }
  return 0;
}

// Runs a program (PATH lookup; `args` split at spaces, no quoting) and waits for it; its stdout
// and stderr are returned, or an Error with them unless it exits 0. posix_spawn rather than the
// harness's fork(): forking a process that holds 100k-flow tables copies its page tables (slow
// on a VM) and turns every later write to its heap into a copy-on-write fault, a cost that would
// land in this process's next timed step rather than in the child's.
inline Result<std::string> spawnChecked(const std::string& program, const std::string& args,
                                        const std::string& output_file) {
  std::vector<std::string> words{program};
  for (size_t pos = 0; pos < args.size();) {
    const size_t end = std::min(args.find(' ', pos), args.size());
    if (end > pos) {
      words.push_back(args.substr(pos, end - pos));
    }
    pos = end + 1;
  }
  std::vector<char*> argv;
  for (auto& w : words) {
    argv.push_back(w.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return makeError("cannot start " + program + ": " + std::strerror(rc));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::ifstream in(output_file);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return makeError("`" + program + " " + args + "` failed (status " + std::to_string(status) +
                     "): " + output);
  }
  return output;
}

// ovs-ofctl / ovs-vsctl against a sandbox, like its ofctl()/vsctl() but spawned as above. The
// tools' own --timeout bounds them.
inline Result<std::string> ofctl(const test::OvsSandbox& sb, const std::string& args) {
  return spawnChecked("ovs-ofctl", "-O OpenFlow15 --timeout=300 " + args, sb.dir() + "/ofctl.out");
}
inline Result<std::string> vsctl(const test::OvsSandbox& sb, const std::string& args) {
  return spawnChecked("ovs-vsctl", "--db=" + sb.dbTarget() + " --timeout=60 " + args,
                      sb.dir() + "/vsctl.out");
}

// Attaches every interface of `policy` to `bridge` as a dummy port named <prefix><n> with a
// fixed OpenFlow port number n (1, 2, ...) and external_ids:iface-id, as a hypervisor would.
// Returns iface-id -> ofport. Ports go in batches: one ovs-vsctl argument is limited to 128 KiB.
inline Result<std::map<std::string, int>> attachInterfaces(const test::OvsSandbox& sb,
                                                           const std::string& bridge,
                                                           const model::Policy& policy,
                                                           const std::string& prefix) {
  std::map<std::string, int> ofports;
  std::string batch;
  int port = 1;
  size_t in_batch = 0;
  const auto flush = [&]() -> Result<void> {
    if (batch.empty()) {
      return {};
    }
    auto r = vsctl(sb, batch);
    batch.clear();
    in_batch = 0;
    if (!r) {
      return tl::unexpected(r.error());
    }
    return {};
  };
  for (const auto& eni : policy.network_interfaces) {
    batch += fmt::format(
        " -- add-port {0} {1}{2} -- set interface {1}{2} type=dummy "
        "ofport_request={2} external_ids:iface-id={3}",
        bridge, prefix, port, eni.id);
    ofports[eni.id] = port++;
    if (++in_batch == 250) {
      if (auto r = flush(); !r) {
        return tl::unexpected(r.error());
      }
    }
  }
  if (auto r = flush(); !r) {
    return tl::unexpected(r.error());
  }
  return ofports;
}

// One flow per line, as `ovs-ofctl add-flows/replace-flows FILE` reads them.
inline void writeFlowsFile(const std::string& path, const std::vector<Flow>& flows) {
  std::ofstream out(path);
  for (const auto& f : flows) {
    out << toOfctlText(f) << "\n";
  }
}

// Flow mods with their command word ("add", "modify_strict", "delete_strict", "delete"), which
// `ovs-ofctl add-flows FILE` accepts line by line: the same change as one ovs-ofctl bundle.
inline void writeFlowModsFile(const std::string& path, std::span<const ovs::FlowMod> mods) {
  std::ofstream out(path);
  for (const auto& m : mods) {
    switch (m.command) {
      case ovs::FlowCommand::kAdd:
        out << "add ";
        break;
      case ovs::FlowCommand::kModifyStrict:
        out << "modify_strict ";
        break;
      case ovs::FlowCommand::kDeleteStrict:
        out << "delete_strict ";
        break;
      case ovs::FlowCommand::kDelete:
        out << "delete ";
        break;
    }
    if (m.command == ovs::FlowCommand::kAdd || m.command == ovs::FlowCommand::kModifyStrict) {
      out << toOfctlText(m.flow) << "\n";
      continue;
    }
    // Deletes name the flow without actions (as ovs-plugin sends them); a cookie only filters.
    out << "table=" << int{m.flow.table};
    if (m.command == ovs::FlowCommand::kDeleteStrict) {
      out << ",priority=" << m.flow.priority;
    }
    if (m.cookie_mask != 0) {
      out << fmt::format(",cookie={:#x}/{:#x}", m.flow.cookie, m.cookie_mask);
    }
    if (!m.flow.match.empty()) {
      out << "," << m.flow.match;
    }
    out << "\n";
  }
}

// Times one ovs-ofctl command against the sandbox (process start included, as for anyone
// running it by hand). Returns milliseconds.
inline Result<double> timedOfctl(const test::OvsSandbox& sb, const std::string& args) {
  const auto t0 = Clock::now();
  if (auto r = ofctl(sb, args); !r) {
    return tl::unexpected(r.error());
  }
  return msSince(t0);
}

// TCP throughput from `client` to `server` (a VM of `lab`) over one iperf3 stream of `seconds`:
// a one-off iperf3 server on `port`, the client retried until the server listens.
inline Result<double> iperf3Gbps(test::PolicyLab& lab, const std::string& client,
                                 const std::string& server, const std::string& server_ip, int port,
                                 int seconds) {
  auto srv = lab.exec(server, fmt::format("iperf3 -s -1 -D -p {} -I /tmp/iperf3-{}.pid", port, port));
  if (!srv.ok()) {
    return makeError("iperf3 server: " + srv.output);
  }
  test::CommandResult out;
  for (int attempt = 0; attempt < 20; ++attempt) {
    out = lab.exec(client, fmt::format("iperf3 -J -c {} -p {} -t {}", server_ip, port, seconds),
                   std::chrono::seconds(seconds + 30));
    if (out.ok()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!out.ok()) {
    return makeError("iperf3 client: " + out.output);
  }
  try {
    auto j = nlohmann::json::parse(out.output);
    return j["end"]["sum_received"]["bits_per_second"].get<double>() / 1e9;
  } catch (const std::exception& e) {
    return makeError(std::string("iperf3 output: ") + e.what());
  }
}

// Runs `fn` on a thread that has joined network namespace `netns`.
template <typename Fn>
void inNetns(const std::string& netns, Fn fn) {
  std::thread t([&] {
    const std::string path = "/var/run/netns/" + netns;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      std::perror(("setns " + path).c_str());
      if (fd >= 0) {
        ::close(fd);
      }
      return;
    }
    ::close(fd);
    fn();
  });
  t.join();
}

}  // namespace vpcguard::bench
