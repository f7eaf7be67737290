#include "daemon/flow_log_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "daemon/logging.h"
#include "ovs-plugin/netns.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

int64_t unixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// A UDP socket on 127.0.0.1 (any port) in the namespace `netns` (nullopt: ours).
Result<int> bindLoopback(const std::optional<std::string>& netns) {
  int fd = -1;
  std::string error;
  auto entered = ovs::inNetns(netns, [&] {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      return;
    }
    // Room for bursts: a datagram dropped here is a sequence gap (SKIPDATA), never silent.
    const int size = 8 << 20;
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      error = std::string("bind 127.0.0.1: ") + std::strerror(errno);
    }
  });
  if (!entered) {
    return tl::unexpected(entered.error());
  }
  if (!error.empty()) {
    if (fd >= 0) {
      ::close(fd);
    }
    return makeError(error);
  }
  return fd;
}

}  // namespace

FlowLogRunner::~FlowLogRunner() { closeSocket(); }

void FlowLogRunner::closeSocket() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    port_ = 0;
  }
}

bool FlowLogRunner::openSocket() {
  auto log = logger("flowlog");
  const auto netns = ovs::vswitchdNetns(ovs_rundir_);
  auto fd = bindLoopback(netns);
  if (!fd) {
    log->error("collector_unavailable error=\"{}\" (flow logs get no records)", fd.error().message);
    return false;
  }
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  ::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
  fd_ = *fd;
  port_ = ntohs(addr.sin_port);
  log->info("collector_listening address=127.0.0.1:{} netns={}", port_,
            netns ? *netns : std::string("own"));
  return true;
}

void FlowLogRunner::update(const model::Policy& policy,
                           const std::map<std::string, uint16_t>& indices,
                           const std::map<uint32_t, std::string>& rule_names, ovs::VswitchDb* db,
                           ovs::OpenFlowChannel* openflow, bool reconfigure) {
  auto log = logger("flowlog");
  const int64_t now = unixNow();
  // Destinations are remembered beyond a flow log's removal: its last records still go there.
  for (const auto& fl : policy.flow_logs) {
    destinations_[fl.id] = fl.log_destination;
  }
  for (const auto& [id, destination] : destinations_) {
    if (sinks_.count(destination) == 0) {
      auto sink = flowlog::makeSink(destination);
      if (!sink) {
        log->error("flow_log_sink_failed flow_log={} destination={} error=\"{}\"", id, destination,
                   sink.error().message);
        continue;
      }
      sinks_[destination] = std::move(*sink);
    }
  }
  // What flow logs cover is about to change (a flow log or an interface came, went or moved):
  // the counts since the last read still belong to the old coverage.
  std::string coverage;
  const bool any = !policy.flow_logs.empty() || !collector_.empty();
  for (const auto& fl : policy.flow_logs) {
    coverage += fl.id + ' ' + fl.resource_id + ' ' + fl.log_format + ' ' +
                std::to_string(static_cast<int>(fl.traffic_type)) + ' ' +
                std::to_string(fl.max_aggregation_interval) + ';';
  }
  // Without flow logs, before or after, there is nothing to cover (and no string to build on
  // every sync).
  for (size_t i = 0; any && i < policy.network_interfaces.size(); ++i) {
    coverage += policy.network_interfaces[i].id + '@' + policy.network_interfaces[i].subnet_id + ';';
  }
  if (openflow != nullptr && !collector_.empty() && coverage != coverage_) {
    readLearned(openflow, now);
  }
  coverage_ = std::move(coverage);
  // Without a flow log, now or open from before, there is nothing to attribute samples to: the
  // view of every interface and rule (rebuilt on every sync, a cost that grows with the policy)
  // waits for the first flow log.
  if (any) {
    publish(collector_.setPolicy(policy, flowlog::makeView(policy, indices, rule_names), now));
  }
  if (policy.flow_logs.empty()) {
    baseline_read_ = false;  // counting flows may go on counting unread until a flow log returns
  } else if (openflow != nullptr && !baseline_read_) {
    // Counting flows already in the switch (left from before this process, or counting while
    // no flow log existed) are not this flow log's: the first read is their baseline, taken
    // before any traffic counts.
    readLearned(openflow, now, /*baseline=*/true);
  }
  std::vector<std::string> targets;
  if (!policy.flow_logs.empty()) {
    if (fd_ < 0 && !openSocket()) {
      return;
    }
    targets.push_back("127.0.0.1:" + std::to_string(port_));
    for (const auto& fl : policy.flow_logs) {
      if (fl.ipfix_collector && std::find(targets.begin(), targets.end(), *fl.ipfix_collector) ==
                                    targets.end()) {
        targets.push_back(*fl.ipfix_collector);
      }
    }
  }
  if (db != nullptr && (reconfigure || applied_targets_ != targets)) {
    // On a new connection (a start, a reconnect) the exporter is removed and created again:
    // OVS sends the templates of a new exporter with its first record, but those of an existing
    // one only every 600 s, and this process may never have seen them. Samples in the few
    // milliseconds between are lost, like those while vpcguardd was down.
    if (reconfigure && !targets.empty()) {
      if (auto r = db->setFlowSampling(bridge_, pipeline::kCollectorSetId, {}); r) {
        (void)db->awaitApplied(std::chrono::seconds(2));
      }
      // A new exporter numbers from the start and sends its templates: start over with it.
      decoder_ = flowlog::IpfixDecoder(flowlog::SequenceScope::kPerExporter);
      lost_reported_ = 0;
      unknown_reported_ = 0;
    }
    if (auto r = db->setFlowSampling(bridge_, pipeline::kCollectorSetId, targets); !r) {
      log->error("ipfix_setup_failed error=\"{}\"", r.error().message);
      applied_targets_.reset();  // try again at the next update
    } else {
      log->info("ipfix_configured targets=\"{}\" flow_logs={}", fmt::join(targets, ","),
                policy.flow_logs.size());
      applied_targets_ = targets;
    }
  }
  if (policy.flow_logs.empty()) {
    closeSocket();
  }
}

void FlowLogRunner::onReadable() {
  if (fd_ < 0) {
    return;
  }
  const int64_t now = unixNow();
  std::vector<uint8_t> buf(65536);
  std::vector<flowlog::IpfixRecord> records;
  for (int i = 0; i < 1024; ++i) {  // bounded: the loop has other work too
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) {
      break;
    }
    ++stats_.datagrams;
    char host[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &from.sin_addr, host, sizeof host);
    // The exporter is the address, not the port: OVS opens a new socket (a new source port)
    // whenever its targets change, and keeps its templates and numbering; it resends templates
    // only every 600 s.
    const std::string exporter = host;
    records.clear();
    decoder_.decode(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)), exporter,
                    records);
    for (const auto& r : records) {
      collector_.onIpfix(r, now);
    }
  }
  // Data sets of a template never seen (vpcguardd restarted, or the switch's exporter was reset
  // without sending its templates): their records are lost, and said so.
  const uint64_t unknown = decoder_.stats().unknown_template;
  if (unknown > unknown_reported_) {
    // OVS sends one data record per message: a data set of an unknown template is one record.
    logger("flowlog")->warn("ipfix_template_unknown records={}", unknown - unknown_reported_);
    collector_.onLost(unknown - unknown_reported_, now, "template-unknown");
    unknown_reported_ = unknown;
  }
  const uint64_t lost = decoder_.stats().lost;
  if (lost > lost_reported_) {
    const auto& st = decoder_.stats();
    logger("flowlog")->warn(
        "ipfix_records_lost count={} messages={} records={} malformed={} unknown_template={}",
        lost - lost_reported_, st.messages, st.records, st.malformed, st.unknown_template);
    collector_.onLost(lost - lost_reported_, now, flowlog::kSkipReasonLost);
    lost_reported_ = lost;
  }
}

void FlowLogRunner::readLearned(ovs::OpenFlowChannel* openflow, int64_t now, bool baseline) {
  for (bool ingress : {false, true}) {
    ovs::DumpFilter filter;
    filter.table = ingress ? pipeline::kFlowLogIngressLearned : pipeline::kFlowLogEgressLearned;
    filter.cookie = pipeline::kLearnedCookieMagic;
    filter.cookie_mask = pipeline::kCookieMagicMask;
    auto dumped = openflow->dumpFlows(filter);
    if (!dumped) {
      logger("flowlog")->warn("learned_flows_unread error=\"{}\"", dumped.error().message);
      return;
    }
    std::vector<flowlog::LearnedFlow> flows;
    flows.reserve(dumped->size());
    for (const auto& f : *dumped) {
      flows.push_back({f.flow.cookie, f.flow.match, f.n_packets, f.n_bytes, f.duration_sec});
    }
    collector_.onLearnedFlows(ingress, flows, now, baseline);
  }
  if (baseline) {
    baseline_read_ = true;
    last_read_ = now;
    return;
  }
  // Rejects the meter dropped unsampled: loss, never silent.
  if (meter_drops_) {
    if (auto drops = openflow->meterDrops(pipeline::kRejectMeterId); drops) {
      if (*drops > *meter_drops_) {
        logger("flowlog")->warn("reject_samples_rate_limited count={}", *drops - *meter_drops_);
        collector_.onLost(*drops - *meter_drops_, now, "rate-limited", flowlog::Action::kReject);
        stats_.reject_samples_dropped += *drops - *meter_drops_;
      }
      meter_drops_ = *drops;
    } else {
      logger("flowlog")->warn("reject_meter_unread error=\"{}\"", drops.error().message);
    }
  }
  // Counting flows idle out kLearnedIdleTimeout after their last packet; read less often than
  // that and a flow's last packets may go unread: say so (SKIPDATA), never lose them silently.
  if (last_read_ != 0 && now - last_read_ >= pipeline::kLearnedIdleTimeout) {
    logger("flowlog")->warn("learned_flows_read_late gap_s={}", now - last_read_);
    collector_.onLost(0, now, "counters-read-late", flowlog::Action::kAccept);
  }
  last_read_ = now;
}

std::chrono::milliseconds FlowLogRunner::untilNextTick() const {
  if (collector_.empty()) {
    return std::chrono::milliseconds(60'000);
  }
  return std::chrono::milliseconds(std::max<int64_t>(0, (next_tick_ - unixNow()) * 1000));
}

void FlowLogRunner::tick(ovs::OpenFlowChannel* openflow) {
  if (collector_.empty()) {
    return;
  }
  const int64_t now = unixNow();
  if (now < next_tick_) {
    return;
  }
  const int64_t period = pipeline::kFlowLogPollSeconds;
  if (openflow != nullptr && now % period == 0) {
    readLearned(openflow, now);
  }
  publish(collector_.flush(now, kGraceSeconds));
  next_tick_ = now + 1;
  if (next_tick_ % period != 0 && openflow != nullptr && last_read_ != 0 &&
      now - last_read_ >= period) {
    // Missed the boundary (the loop was busy): read now rather than wait for the next one.
    readLearned(openflow, now);
  }
}

void FlowLogRunner::shutdown(ovs::OpenFlowChannel* openflow) {
  if (collector_.empty()) {
    return;
  }
  onReadable();
  const int64_t now = unixNow();
  if (openflow != nullptr) {
    readLearned(openflow, now);  // what the counting flows counted since the last read
  }
  publish(collector_.flushAll(now));
}

void FlowLogRunner::publish(
    std::vector<std::pair<flowlog::LogBatch, std::vector<flowlog::Field>>> batches) {
  auto log = logger("flowlog");
  for (auto& [batch, fields] : batches) {
    flowlog::RecordSink* sink = nullptr;
    if (auto d = destinations_.find(batch.flow_log_id); d != destinations_.end()) {
      auto it = sinks_.find(d->second);
      sink = it == sinks_.end() ? nullptr : it->second.get();
    }
    if (sink == nullptr) {
      ++stats_.publish_errors;
      log->error("flow_log_records_dropped flow_log={} records={} reason=\"no sink\"",
                 batch.flow_log_id, batch.records.size());
      continue;
    }
    bool published = true;
    for (const auto& file : flowlog::toLogFiles(batch, fields)) {
      auto path = sink->publish(file);
      if (!path) {
        published = false;
        ++stats_.publish_errors;
        log->error("flow_log_publish_failed flow_log={} error=\"{}\"", batch.flow_log_id,
                   path.error().message);
        continue;
      }
      if (!path->empty()) {
        ++stats_.files_written;
        stats_.records_written += file.lines.size();
        log->info("flow_log_published flow_log={} records={} path={}", batch.flow_log_id,
                  file.lines.size(), *path);
      }
    }
    for (const auto& r : batch.records) {
      if (!published) {
        break;
      }
      const bool ok = r.log_status == flowlog::LogStatus::kOk;
      ++stats_.records[{batch.flow_log_id, ok ? flowlog::actionName(r.action)
                                              : flowlog::logStatusName(r.log_status)}];
      if (r.log_status == flowlog::LogStatus::kSkipData) {
        stats_.skipped[{batch.flow_log_id, r.reason.empty() ? "-" : r.reason}] += r.packets;
      }
    }
  }
}

}  // namespace vpcguard
