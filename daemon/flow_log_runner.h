#pragma once
// vpcguardd's flow-log I/O around flowlog::Collector: the IPFIX socket, the switch's IPFIX
// configuration, reading the learned counting flows, and publishing closed intervals.
//
// Design: no thread of its own. The daemon's poll() loop watches fd() and calls onReadable();
// tick() runs every loop iteration and does work at kFlowLogPollSeconds boundaries of Unix
// time (reads both learned tables, then closes intervals that ended kGraceSeconds ago), so a
// read falls on every interval boundary. The socket is bound to 127.0.0.1 in ovs-vswitchd's own
// network namespace (found through its pid file next to the OVSDB socket), because that is
// where OVS sends from: on a host both are the same namespace; in the lab and the tests
// ovs-vswitchd runs in a "hypervisor" namespace of its own.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowlogs/collector.h"
#include "flowlogs/ipfix.h"
#include "flowlogs/sink.h"
#include "ovs-plugin/openflow.h"
#include "ovs-plugin/vswitch_db.h"
#include "translator/model.h"

namespace vpcguard {

class FlowLogRunner {
 public:
  // Intervals close this long after they end: IPFIX from OVS arrives within a second.
  static constexpr int64_t kGraceSeconds = 3;

  FlowLogRunner(std::string bridge, std::string ovs_rundir)
      : bridge_(std::move(bridge)), ovs_rundir_(std::move(ovs_rundir)) {}
  ~FlowLogRunner();
  FlowLogRunner(const FlowLogRunner&) = delete;
  FlowLogRunner& operator=(const FlowLogRunner&) = delete;

  // After every successful sync: the flow logs of `policy`, and the switch's IPFIX set-up when
  // the targets changed or `reconfigure` (a new OVSDB connection).
  void update(const model::Policy& policy, const std::map<std::string, uint16_t>& indices,
              const std::map<uint32_t, std::string>& rule_names, ovs::VswitchDb* db,
              ovs::OpenFlowChannel* openflow, bool reconfigure);
  // The IPFIX socket, or -1 while no flow log exists.
  [[nodiscard]] int fd() const { return fd_; }
  void onReadable();
  // Reads counters and publishes at boundaries; `openflow` may be null (not connected).
  void tick(ovs::OpenFlowChannel* openflow);
  // The reject meter was just created (or found) with `drops` packets dropped so far: what it
  // drops from now on is read as SKIPDATA. Gone: a new connection, until created again.
  void rejectMeterCreated(uint64_t drops) { meter_drops_ = drops; }
  void rejectMeterGone() { meter_drops_.reset(); }
  // How long the loop may sleep before tick() has work.
  [[nodiscard]] std::chrono::milliseconds untilNextTick() const;
  // Stopping: the counters are read and everything open is published (the current interval
  // ends early). `openflow` may be null (not connected: counts since the last read are lost).
  void shutdown(ovs::OpenFlowChannel* openflow);

  struct Stats {
    uint64_t records_written = 0;
    uint64_t files_written = 0;
    uint64_t publish_errors = 0;
    uint64_t datagrams = 0;
    // Records published (every file of its batch written), by (flow-log id, action: ACCEPT or
    // REJECT; NODATA and SKIPDATA records by their status), and what SKIPDATA records reported
    // lost, by (flow-log id, reason). For the metrics.
    std::map<std::pair<std::string, std::string>, uint64_t> records;
    std::map<std::pair<std::string, std::string>, uint64_t> skipped;
    uint64_t reject_samples_dropped = 0;  // by the reject meter, while this process watched it
  };
  [[nodiscard]] const Stats& stats() const { return stats_; }
  [[nodiscard]] const flowlog::DecodeStats& decodeStats() const { return decoder_.stats(); }

 private:
  [[nodiscard]] bool openSocket();
  void closeSocket();
  // `baseline`: remember the counters without reporting them (counted before this process).
  void readLearned(ovs::OpenFlowChannel* openflow, int64_t now, bool baseline = false);
  void publish(std::vector<std::pair<flowlog::LogBatch, std::vector<flowlog::Field>>> batches);

  std::string bridge_;
  std::string ovs_rundir_;
  int fd_ = -1;
  uint16_t port_ = 0;
  flowlog::Collector collector_;
  // OVS numbers its messages per exporter, across observation domains.
  flowlog::IpfixDecoder decoder_{flowlog::SequenceScope::kPerExporter};
  std::map<std::string, std::unique_ptr<flowlog::RecordSink>> sinks_;  // by destination
  std::map<std::string, std::string> destinations_;  // flow-log id -> destination, ever seen
  std::optional<std::vector<std::string>> applied_targets_;
  uint64_t lost_reported_ = 0;
  uint64_t unknown_reported_ = 0;
  bool baseline_read_ = false;  // the learned counters were read once by this process
  std::string coverage_;        // what the flow logs covered at the last update
  int64_t next_tick_ = 0;   // Unix seconds of the next boundary
  int64_t last_read_ = 0;   // Unix seconds of the last successful read of the learned tables
  std::optional<uint64_t> meter_drops_;  // the reject meter's band count at the last read
  Stats stats_;
};

}  // namespace vpcguard
