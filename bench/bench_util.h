#pragma once
// Small pieces the benchmarks share: timing, percentiles, process memory, attaching a policy's
// interfaces to a sandbox bridge and writing flows for ovs-ofctl (the baseline every benchmark
// runs in the same process and switch), and the namespace lab's traffic (iperf3 throughput, the
// new-connection loop, upcall counts) that the datapath benchmarks measure the same way.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/inotify.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
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

// CPU time (user + system) a process has used so far, in ms; -1 when it cannot be read.
inline double processCpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  // Fields after the command name (which may hold spaces), from field 3 on: utime and stime
  // are fields 14 and 15.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return -1;
  }
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) {
    fields >> skip;
  }
  long utime = 0;
  long stime = 0;
  fields >> utime >> stime;
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Waits until process `pid` is idle (under 10% of a CPU over each of two consecutive 100 ms
// windows), at most `limit`; returns how long that took in ms.
inline double waitUntilIdle(pid_t pid, std::chrono::milliseconds limit) {
  const auto start = Clock::now();
  double last = processCpuMs(pid);
  int quiet = 0;
  while (quiet < 2 && Clock::now() - start < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double now = processCpuMs(pid);
    quiet = now >= 0 && now - last < 10.0 ? quiet + 1 : 0;
    last = now;
  }
  return msSince(start);
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
      out << toOfctlText(m.target()) << "\n";
      continue;
    }
    // Deletes name the flow without actions (as ovs-plugin sends them); a cookie only filters.
    out << "table=" << int{m.target().table};
    if (m.command == ovs::FlowCommand::kDeleteStrict) {
      out << ",priority=" << m.target().priority;
    }
    if (m.cookie_mask != 0) {
      out << fmt::format(",cookie={:#x}/{:#x}", m.target().cookie, m.cookie_mask);
    }
    if (!m.target().match.empty()) {
      out << "," << m.target().match;
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
// a one-off iperf3 server on `port`, the client retried until the server listens. A test that iperf3
// ends without a result (it exits 0 with an "error" in its JSON, seen on a loaded machine) is
// run again, up to three times, with a fresh server.
inline Result<double> iperf3Gbps(test::PolicyLab& lab, const std::string& client,
                                 const std::string& server, const std::string& server_ip, int port,
                                 int seconds) {
  std::string last_error;
  for (int run = 0; run < 3; ++run) {
    auto srv =
        lab.exec(server, fmt::format("iperf3 -s -1 -D -p {} -I /tmp/iperf3-{}.pid", port, port));
    if (!srv.ok()) {
      last_error = "iperf3 server: " + srv.output;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      continue;
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
      last_error = "iperf3 client: " + out.output;
      continue;
    }
    try {
      auto j = nlohmann::json::parse(out.output);
      const auto& bps = j["end"]["sum_received"]["bits_per_second"];
      if (bps.is_number()) {
        return bps.get<double>() / 1e9;
      }
      last_error = "iperf3 gave no result: " +
                   (j.contains("error") ? j["error"].dump() : std::string("no end.sum_received"));
    } catch (const std::exception& e) {
      last_error = std::string("iperf3 output: ") + e.what();
    }
    // The one-off server may still be up after a client that failed mid-test.
    (void)lab.exec(server, fmt::format("sh -c 'kill $(cat /tmp/iperf3-{}.pid) 2>/dev/null'", port));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return makeError(last_error);
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

// Writes `text` to `path` by rename, as an editor saves: a watcher (vpcguardd) never sees half.
[[nodiscard]] inline bool replaceFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out.flush()) {
      return false;
    }
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Waits for files to be written or renamed into one directory (inotify), so the end of a change
// is seen when it happens rather than at the next poll.
class DirWatch {
 public:
  explicit DirWatch(const std::string& dir) : fd_(inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) {
    if (fd_ >= 0 && inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~DirWatch() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  DirWatch(const DirWatch&) = delete;
  DirWatch& operator=(const DirWatch&) = delete;

  [[nodiscard]] bool ok() const { return fd_ >= 0; }
  // True when `name` appeared (renamed in or closed after writing) before `deadline`.
  bool waitFor(const std::string& name, Clock::time_point deadline) {
    for (;;) {
      alignas(inotify_event) char buf[4096];
      ssize_t n = 0;
      bool seen = false;
      while ((n = ::read(fd_, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
          if (ev->len > 0 && name == ev->name) {
            seen = true;
          }
          off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        }
      }
      if (seen) {
        return true;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return false;
      }
      struct pollfd pfd {
        fd_, POLLIN, 0
      };
      ::poll(&pfd, 1, static_cast<int>(left.count()));
    }
  }

 private:
  int fd_;
};

// A whole file; empty if it cannot be read.
inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The 1-minute load average: printed with figures measured on a shared machine.
inline double loadAverage() {
  double one = 0;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

// ============================ HTTP on loopback ================================================
// vpcguardd --metrics-listen: a port nobody listens on (bound, then released), and one plain
// GET on 127.0.0.1 with a deadline (the body, without the headers).

inline int freeLoopbackPort() {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (s >= 0 && ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (s >= 0) {
    ::close(s);
  }
  return port;
}

inline Result<std::string> httpGet(int port, const std::string& path,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return makeError(std::string("socket: ") + std::strerror(errno));
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::send(s, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size());
  char buf[65536];
  while (ok) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    struct pollfd pfd {
      s, POLLIN, 0
    };
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      ok = false;
      break;
    }
    const ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(s);
  const auto body = response.find("\r\n\r\n");
  if (!ok || !response.starts_with("HTTP/1.") || body == std::string::npos) {
    return makeError(fmt::format("GET http://127.0.0.1:{}{} failed: {}", port, path,
                                 response.substr(0, 200)));
  }
  if (response.compare(9, 3, "200") != 0) {
    return makeError(fmt::format("GET http://127.0.0.1:{}{}: {}", port, path,
                                 response.substr(0, response.find('\r'))));
  }
  return response.substr(body + 4);
}

// ============================ namespaces, sockets, traffic ===================================
// The datapath benchmarks' traffic (flowlog_bench --datapath/--loss, mirror_bench): iperf3 for
// throughput, a connect/reset loop against a listener that never sends a FIN for the
// new-connection rate, and how many datapath misses went up to ovs-vswitchd meanwhile.

// A TCP listener in `netns` whose acceptors take each connection and wait for the client to
// reset it, then close: the server never sends a FIN, so every connection is exactly SYN,
// SYN-ACK, ACK, RST on the wire (no packet races a closed conntrack entry).
class Server {
 public:
  Server(const std::string& netns, int port, int acceptors) {
    inNetns(netns, [&] {
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      // iperf3's server may still hold the port for a moment after its test.
      for (int i = 0; i < 100 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (::listen(fd_, 4096) != 0) {
        std::perror("listen");
      }
    });
    for (int i = 0; i < acceptors; ++i) {
      threads_.emplace_back([this] {
        while (!stop_) {
          const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) {
            continue;
          }
          pollfd p{c, POLLIN, 0};
          (void)::poll(&p, 1, 2000);
          ::close(c);
        }
      });
    }
  }
  ~Server() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    for (auto& t : threads_) {
      t.join();
    }
    ::close(fd_);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

struct Connections {
  uint64_t made = 0;
  uint64_t failed = 0;
  std::vector<uint16_t> local_ports;  // of the connections made
};

// `clients` threads in `netns` connect to server:port and reset the connection at once, in a
// loop, for `seconds`.
// `reuse_ports` > 0: the clients bind their local ports from 40000 + [0, reuse_ports), round
// robin, so 5-tuples are reused on purpose (a later connection meets the counting flow and the
// datapath flows of an earlier one). < 0: every connection binds a port of its own (20000 and
// up, the run ends when they are used up), so no 5-tuple is ever reused.
inline Connections connectLoop(const std::string& netns, const std::string& server_ip, int port,
                               int clients, double seconds, int reuse_ports = 0) {
  std::mutex mu;
  Connections out;
  std::vector<std::thread> threads;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  for (int k = 0; k < clients; ++k) {
    threads.emplace_back([&, k] {
      Connections mine;
      int next = k;
      inNetns(netns, [&] {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, server_ip.c_str(), &a.sin_addr);
        while (Clock::now() < end) {
          const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          timeval tv{1, 0};
          ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
          if (reuse_ports != 0) {
            int one = 1;
            ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_in local{};
            local.sin_family = AF_INET;
            const int local_port = reuse_ports > 0 ? 40000 + next % reuse_ports : 20000 + next;
            if (local_port > 65000) {
              ::close(s);
              break;  // unique ports used up
            }
            local.sin_port = htons(static_cast<uint16_t>(local_port));
            next += clients;
            if (::bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
              ::close(s);
              continue;
            }
          }
          if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            sockaddr_in local{};
            socklen_t len = sizeof local;
            ::getsockname(s, reinterpret_cast<sockaddr*>(&local), &len);
            mine.local_ports.push_back(ntohs(local.sin_port));
            ++mine.made;
          } else {
            ++mine.failed;
          }
          // RST instead of FIN: no TIME_WAIT build-up over thousands of connections.
          linger l{1, 0};
          ::setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          ::close(s);
        }
      });
      std::lock_guard lock(mu);
      out.made += mine.made;
      out.failed += mine.failed;
      out.local_ports.insert(out.local_ports.end(), mine.local_ports.begin(),
                             mine.local_ports.end());
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return out;
}

struct Figures {
  double gbps = 0;
  double conn_per_s = 0;
  double upcalls_per_conn = -1;  // datapath misses sent to ovs-vswitchd per connection
};

// The sum of dpif-netdev's counters with these labels ("packets received:", ...) over all its
// threads so far (dpif-netdev/pmd-stats-show); -1 if unknown.
inline long pmdCounter(test::PolicyLab& lab, std::initializer_list<const char*> labels) {
  auto out = lab.sandbox().appctl("dpif-netdev/pmd-stats-show");
  if (!out) {
    return -1;
  }
  long total = 0;
  std::istringstream in(*out);
  for (std::string line; std::getline(in, line);) {
    for (const char* what : labels) {
      if (const size_t at = line.find(what); at != std::string::npos) {
        total += std::stol(line.substr(at + std::strlen(what)));
      }
    }
  }
  return total;
}

// Datapath misses handed to ovs-vswitchd's upcall handler so far; -1 if unknown.
inline long upcalls(test::PolicyLab& lab) {
  return pmdCounter(lab, {"miss with success upcall:", "miss with failed upcall:"});
}

// TCP throughput (one iperf3 stream) and then the new-connection rate (one client, connect and
// reset in a loop) from `client` to `server`:`port`, `seconds` each. `phase`, when given, is
// called before each part ("tcp", "connections") and after the last ("end"): a caller counts
// what happened during each.
inline Result<Figures> measure(test::PolicyLab& lab, const std::string& client,
                               const std::string& server, const std::string& server_ip, int port,
                               int seconds,
                               const std::function<void(std::string_view)>& phase = nullptr) {
  const auto mark = [&](std::string_view what) {
    if (phase) {
      phase(what);
    }
  };
  Figures f;
  mark("tcp");
  auto gbps = iperf3Gbps(lab, client, server, server_ip, port, seconds);
  if (!gbps) {
    return tl::unexpected(gbps.error());
  }
  f.gbps = *gbps;
  // The same port, once iperf3's one-off server is gone (the policy allows only this port).
  (void)test::waitFor(
      [&] {
        return !lab.exec(server, fmt::format("ss -ltnH 'sport = :{}' | grep -q .", port)).ok();
      },
      std::chrono::seconds(5));
  Server listener(lab.vm(server)->netns, port, 1);
  mark("connections");
  const long up0 = upcalls(lab);
  const auto c = connectLoop(lab.vm(client)->netns, server_ip, port, 1, seconds);
  const long up1 = upcalls(lab);
  f.conn_per_s = static_cast<double>(c.made) / seconds;
  if (up0 >= 0 && up1 >= up0 && c.made > 0) {
    f.upcalls_per_conn = static_cast<double>(up1 - up0) / static_cast<double>(c.made);
  }
  mark("end");
  return f;
}

}  // namespace vpcguard::bench
