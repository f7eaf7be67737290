#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ovs-plugin/deadline_guard.h"
#include "ovs-plugin/openflow.h"
#include "ovs-plugin/src/of_shim.h"

namespace vpcguard::ovs {
namespace {

// Owns a malloc'ed C string from the shim.
std::string takeString(char* s) {
  std::string out = s != nullptr ? s : "";
  vg_free(s);
  return out;
}

vg_flow_command toShim(FlowCommand c) {
  switch (c) {
    case FlowCommand::kAdd:
      return VG_FLOW_ADD;
    case FlowCommand::kModifyStrict:
      return VG_FLOW_MODIFY_STRICT;
    case FlowCommand::kDeleteStrict:
      return VG_FLOW_DELETE_STRICT;
    case FlowCommand::kDelete:
      return VG_FLOW_DELETE;
  }
  return VG_FLOW_ADD;
}

// Deadlines of calls that wait for the switch: a base for any request, and a little more per
// flow for bundles and dumps (a 100k-flow bundle or dump takes the switch seconds): 20 s at 100k
// flows. On a loaded 2-core machine a 100k-flow bundle took ovs-vswitchd 12-14 s, and over 15 s
// once (sync_bench), which the earlier 0.05 ms per flow cut off. A dump is given at least the
// allowance of kDumpFloor flows, since the first dump on a connection cannot know the table's
// size. Both stay below the service watchdog's 30 s (the daemon pings it before each call).
constexpr auto kCallDeadline = std::chrono::seconds(10);
constexpr auto kPerFlow = std::chrono::microseconds(100);
constexpr size_t kDumpFloor = 100000;
constexpr int kProbeIntervalMs = 1000;

std::chrono::steady_clock::time_point deadlineFor(size_t flows) {
  return std::chrono::steady_clock::now() + kCallDeadline + kPerFlow * static_cast<int64_t>(flows);
}

std::string timedOut(const std::string& target, const char* what,
                     std::chrono::steady_clock::time_point since) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::steady_clock::now() - since)
                     .count();
  return target + ": ovs-vswitchd did not answer " + what + " within " + std::to_string(s) +
         " s (stopped or hung?); connection closed";
}

// Opens a connection and learns its socket, for the deadline guard. Opens are serialised so
// that two connections to one target never appear in the same window.
int openWithSocket(const std::string& target, std::chrono::milliseconds timeout, vg_of** of,
                   char** err) {
  static std::mutex opening;
  std::lock_guard lock(opening);
  const auto before = openSockets();
  if (vg_of_open(target.c_str(), static_cast<int>(timeout.count()), of, err) != 0) {
    return -2;
  }
  return findPeerSocket(target, before);
}

std::string modText(const FlowMod& mod) {
  const Flow& flow = mod.target();
  if (mod.command == FlowCommand::kAdd || mod.command == FlowCommand::kModifyStrict) {
    return toOfctlText(flow);
  }
  // Deletes carry no actions; the cookie is a filter (cookie/mask) when a mask is given.
  std::string text = "table=" + std::to_string(flow.table);
  if (mod.command == FlowCommand::kDeleteStrict) {
    text += ",priority=" + std::to_string(flow.priority);
  }
  if (mod.cookie_mask != 0) {
    char buf[64];
    snprintf(buf, sizeof buf, ",cookie=%#llx/%#llx",
             static_cast<unsigned long long>(flow.cookie),
             static_cast<unsigned long long>(mod.cookie_mask));
    text += buf;
  }
  if (!flow.match.empty()) {
    text += "," + flow.match;
  }
  return text;
}

class OvsOpenFlowChannel final : public OpenFlowChannel {
 public:
  OvsOpenFlowChannel(vg_of* of, int fd, std::string target)
      : of_(of), fd_(fd), target_(std::move(target)) {}
  ~OvsOpenFlowChannel() override { vg_of_close(of_); }
  OvsOpenFlowChannel(const OvsOpenFlowChannel&) = delete;
  OvsOpenFlowChannel& operator=(const OvsOpenFlowChannel&) = delete;

  Result<BundleOutcome> applyBundle(std::span<const FlowMod> mods) override {
    // Each mod's text is made when the shim asks for it and dropped at the next: at 100k flows
    // all texts at once were tens of MiB on top of the flows themselves (issue 13, VmHWM).
    // Called from C: an exception must not unwind through the shim (it would leak what the
    // shim holds), so it is kept and rethrown once the shim has returned.
    struct Source {
      std::span<const FlowMod> mods;
      std::string text;
      std::exception_ptr failure;
    } source{mods, {}, nullptr};
    const auto next = [](void* ctx, size_t i, int* command) noexcept -> const char* {
      auto* s = static_cast<Source*>(ctx);
      *command = toShim(s->mods[i].command);
      if (s->failure) {
        return nullptr;
      }
      try {
        s->text = modText(s->mods[i]);
      } catch (...) {
        s->failure = std::current_exception();
        return nullptr;
      }
      return s->text.c_str();
    };
    vg_flow_error* errs = nullptr;
    size_t n_errs = 0;
    char* err = nullptr;
    const auto started = std::chrono::steady_clock::now();
    int rc = 0;
    bool late = false;
    {
      DeadlineGuard guard(fd_, deadlineFor(mods.size()));
      rc = vg_of_bundle_stream(of_, mods.size(), next, &source, &errs, &n_errs, &err);
      late = guard.fired();
    }
    if (source.failure) {
      vg_free_errors(errs, n_errs);
      vg_free(err);
      std::rethrow_exception(source.failure);
    }
    if (late) {
      vg_free_errors(errs, n_errs);
      vg_free(err);
      return makeError(timedOut(target_, "a bundle", started));
    }
    if (rc >= 0) {
      vg_of_mark_alive(of_);
    }
    BundleOutcome outcome;
    for (size_t i = 0; i < n_errs; ++i) {
      FlowModError e;
      if (errs[i].index != static_cast<size_t>(-1)) {
        e.index = errs[i].index;
      }
      e.message = errs[i].message;
      outcome.errors.push_back(std::move(e));
    }
    vg_free_errors(errs, n_errs);
    if (rc < 0 && err != nullptr) {
      return makeError(takeString(err));
    }
    outcome.committed = rc == 0;
    return outcome;
  }

  Result<std::vector<InstalledFlow>> dumpFlows(const DumpFilter& filter) override {
    std::vector<InstalledFlow> flows;
    if (!filter.table && filter.cookie_mask == 0) {
      flows.reserve(last_dump_size_);  // the whole table again, most likely
    }
    if (auto r = dumpFlowsTo(filter, [&](InstalledFlow&& f) { flows.push_back(std::move(f)); });
        !r) {
      return tl::unexpected(r.error());
    }
    return flows;
  }

  Result<void> dumpFlowsTo(const DumpFilter& filter,
                           const std::function<void(InstalledFlow&&)>& sink) override {
    // Each flow goes straight from the switch's reply to the sink: no copy of the whole dump
    // on the C side (at 100k flows, tens of MiB of the daemon's peak; issue 13).
    // Called from C: an exception is kept (the rest of the dump is read and dropped) and
    // rethrown once the shim has returned, never unwound through it.
    struct Context {
      const std::function<void(InstalledFlow&&)>& sink;
      size_t count = 0;
      std::exception_ptr failure;
    } context{sink, 0, nullptr};
    const auto each = [](void* ctx, const vg_flow_stat* stat) noexcept {
      auto* c = static_cast<Context*>(ctx);
      if (c->failure) {
        return;
      }
      try {
        InstalledFlow f;
        f.flow.table = stat->table;
        f.flow.priority = stat->priority;
        f.flow.cookie = stat->cookie;
        f.flow.match = stat->match;
        f.flow.actions = stat->actions;
        f.n_packets = stat->n_packets;
        f.n_bytes = stat->n_bytes;
        f.duration_sec = stat->duration_sec;
        ++c->count;
        c->sink(std::move(f));
      } catch (...) {
        c->failure = std::current_exception();
      }
    };
    char* err = nullptr;
    const auto started = std::chrono::steady_clock::now();
    int rc = 0;
    bool late = false;
    {
      DeadlineGuard guard(fd_, deadlineFor(std::max(last_dump_size_, kDumpFloor)));
      rc = vg_of_dump_stream(of_, filter.table ? *filter.table : -1, filter.cookie,
                             filter.cookie_mask, each, &context, &err);
      late = guard.fired();
    }
    if (context.failure) {
      vg_free(err);
      std::rethrow_exception(context.failure);
    }
    if (late) {
      vg_free(err);
      return makeError(timedOut(target_, "a flow dump", started));
    }
    if (rc != 0) {
      return makeError(takeString(err));
    }
    vg_of_mark_alive(of_);
    last_dump_size_ = std::max(last_dump_size_, context.count);
    return {};
  }

  Result<uint64_t> countFlows(const DumpFilter& filter) override {
    uint64_t flows = 0;
    auto r = call("a flow count", [&](char** err) {
      return vg_of_count(of_, filter.table ? *filter.table : -1, filter.cookie, filter.cookie_mask,
                         &flows, err);
    });
    if (!r) {
      return tl::unexpected(r.error());
    }
    return flows;
  }

  Result<void> barrier() override {
    return call("a barrier", [&](char** err) { return vg_of_barrier(of_, err); });
  }

  Result<void> flushConntrackZone(uint16_t zone) override {
    return call("a conntrack flush", [&](char** err) { return vg_of_ct_flush_zone(of_, zone, err); });
  }

  Result<void> setMeter(uint32_t id, uint32_t rate_pps, uint32_t burst) override {
    auto r = call("a meter change",
                  [&](char** err) { return vg_of_meter_set(of_, id, rate_pps, burst, err); });
    if (!r) {
      return makeError("meter " + std::to_string(id) + ": " + r.error().message);
    }
    return {};
  }

  Result<uint64_t> meterDrops(uint32_t id) override {
    uint64_t packets = 0;
    auto r = call("a meter read",
                  [&](char** err) { return vg_of_meter_stats(of_, id, &packets, err); });
    if (!r) {
      return makeError("meter " + std::to_string(id) + ": " + r.error().message);
    }
    return packets;
  }

  Result<void> keepAlive() override {
    char* err = nullptr;
    long long unanswered_ms = 0;
    if (vg_of_probe(of_, kProbeIntervalMs, &unanswered_ms, &err) != 0) {
      unanswered_ = {};
      return makeError(target_ + ": " + takeString(err));
    }
    unanswered_ = std::chrono::milliseconds(unanswered_ms);
    return {};
  }

  std::chrono::milliseconds unanswered() const override { return unanswered_; }
  bool guarded() const override { return fd_ >= 0; }

  std::string target() const override { return target_; }

 private:
  // A request/reply exchange under the deadline guard. `fn` returns the shim's status (0 = ok)
  // and sets *err otherwise.
  template <typename Fn>
  Result<void> call(const char* what, Fn&& fn) {
    char* err = nullptr;
    const auto started = std::chrono::steady_clock::now();
    int rc = 0;
    bool late = false;
    {
      DeadlineGuard guard(fd_, deadlineFor(0));
      rc = fn(&err);
      late = guard.fired();
    }
    if (late) {
      vg_free(err);
      return makeError(timedOut(target_, what, started));
    }
    if (rc != 0) {
      return makeError(takeString(err));
    }
    vg_of_mark_alive(of_);
    return {};
  }

  vg_of* of_;
  int fd_;  // the connection's socket (-1: unknown, calls then wait without a deadline)
  std::string target_;
  size_t last_dump_size_ = 0;
  std::chrono::milliseconds unanswered_{0};
};

class OvsFlowMonitor final : public FlowMonitor {
 public:
  OvsFlowMonitor(vg_of* of, std::string target) : of_(of), target_(std::move(target)) {}
  ~OvsFlowMonitor() override { vg_of_close(of_); }
  OvsFlowMonitor(const OvsFlowMonitor&) = delete;
  OvsFlowMonitor& operator=(const OvsFlowMonitor&) = delete;

  Result<std::vector<FlowUpdate>> poll(size_t max) override {
    vg_flow_update* updates = nullptr;
    size_t n = 0;
    char* err = nullptr;
    if (vg_of_monitor_poll(of_, max, &updates, &n, &err) != 0) {
      vg_free_updates(updates, n);
      return makeError(target_ + " (flow monitor): " + takeString(err));
    }
    std::vector<FlowUpdate> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const vg_flow_update& u = updates[i];
      FlowUpdate f;
      switch (u.event) {
        case VG_UPDATE_ADDED:
          f.kind = FlowUpdateKind::kAdded;
          break;
        case VG_UPDATE_REMOVED:
          f.kind = FlowUpdateKind::kRemoved;
          break;
        case VG_UPDATE_MODIFIED:
          f.kind = FlowUpdateKind::kModified;
          break;
        case VG_UPDATE_RESUMED:
          f.kind = FlowUpdateKind::kResumed;
          break;
        case VG_UPDATE_ABBREV:
          continue;  // only for changes made through this connection: none
        default:
          f.kind = FlowUpdateKind::kPaused;
          break;
      }
      if (u.match != nullptr) {
        f.flow = Flow{u.table, u.priority, u.cookie, u.match, u.actions != nullptr ? u.actions : ""};
      }
      out.push_back(std::move(f));
    }
    vg_free_updates(updates, n);
    return out;
  }

 private:
  vg_of* of_;
  std::string target_;
};

}  // namespace

const char* toString(FlowUpdateKind kind) {
  switch (kind) {
    case FlowUpdateKind::kAdded:
      return "added";
    case FlowUpdateKind::kRemoved:
      return "removed";
    case FlowUpdateKind::kModified:
      return "modified";
    case FlowUpdateKind::kPaused:
      return "paused";
    case FlowUpdateKind::kResumed:
      return "resumed";
  }
  return "unknown";
}

Result<std::unique_ptr<FlowMonitor>> startFlowMonitor(const std::string& target,
                                                      std::chrono::milliseconds timeout,
                                                      std::span<const uint8_t> tables) {
  static constexpr uint8_t kAllTables[] = {0xff};
  if (tables.empty()) {
    tables = kAllTables;
  }
  vg_of* of = nullptr;
  char* err = nullptr;
  const int fd = openWithSocket(target, timeout, &of, &err);
  if (fd == -2) {
    return makeError(takeString(err));
  }
  int rc = 0;
  bool late = false;
  const auto started = std::chrono::steady_clock::now();
  {
    DeadlineGuard guard(fd, deadlineFor(0));
    rc = vg_of_monitor_start(of, tables.data(), tables.size(), &err);
    late = guard.fired();
  }
  if (late || rc != 0) {
    vg_of_close(of);
    if (late) {
      vg_free(err);
      return makeError(timedOut(target, "the flow monitor request", started));
    }
    return makeError(target + ": " + takeString(err));
  }
  return std::unique_ptr<FlowMonitor>(std::make_unique<OvsFlowMonitor>(of, target));
}

Result<std::unique_ptr<OpenFlowChannel>> connectOpenFlow(const std::string& target,
                                                         std::chrono::milliseconds timeout) {
  vg_of* of = nullptr;
  char* err = nullptr;
  const int fd = openWithSocket(target, timeout, &of, &err);
  if (fd == -2) {
    return makeError(takeString(err));
  }
  return std::unique_ptr<OpenFlowChannel>(std::make_unique<OvsOpenFlowChannel>(of, fd, target));
}

Result<Flow> normalizeFlow(const Flow& flow) {
  uint8_t table = 0;
  uint16_t priority = 0;
  uint64_t cookie = 0;
  char* match = nullptr;
  char* actions = nullptr;
  char* err = nullptr;
  std::string text = toOfctlText(flow);
  if (vg_flow_normalize(text.c_str(), &table, &priority, &cookie, &match, &actions, &err) != 0) {
    return makeError("cannot parse flow '" + text + "': " + takeString(err));
  }
  return Flow{table, priority, cookie, takeString(match), takeString(actions)};
}

}  // namespace vpcguard::ovs
