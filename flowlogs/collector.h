#pragma once
// The flow-log collector's logic: what the switch reports (IPFIX samples and the counters of
// learned counting flows) in, AWS flow-log batches out. Pure: the daemon does the I/O (UDP
// socket, flow dumps, files) and feeds it. docs/flowlogs.md explains the pipeline side.
//
// Where a count comes from (exactly one source per packet):
//  - REJECT: every rejected packet is sampled where the verdict is set (observation domain =
//    the reg4 verdict: kind and NACL rule number); OVS's IPFIX counts packets and bytes.
//  - ACCEPT: a packet a learned counting flow matched is counted by that flow (read with
//    onLearnedFlows, as deltas between reads); a packet no learned flow matched yet (the first
//    of a connection, or one after the counting flow idled out) is sampled (kObsCount).
//  - The deciding rule of an ACCEPT: the commit of a connection is sampled with the rule's
//    conjunction id (kObsRule), remembered per 5-tuple and interface side; replies take the
//    rule of their connection (the reversed 5-tuple).
// The interface of a sample: by index where the pipeline knows it as a constant (counting
// flows), else by address: the sender's for egress verdicts, the receiver's for ingress ones.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "flowlogs/aggregator.h"
#include "flowlogs/ipfix.h"
#include "flowlogs/record.h"
#include "translator/model.h"

namespace vpcguard::flowlog {

// What the collector knows of the policy on this bridge (rebuilt after every policy change).
struct CollectorView {
  std::map<uint16_t, std::string> interface_by_index;  // interface index -> id
  std::map<IpAddress, std::string> interface_by_address;
  std::map<std::string, InterfaceInfo> interfaces;  // every interface of the policy
  std::map<std::string, std::string> nacl_of_interface;  // interface id -> its subnet's NACL id
  std::map<uint32_t, std::string> rule_names;  // conjunction id -> "sg-web ingress #1"
};

// Builds the view of a policy (interface indices from the translator).
[[nodiscard]] CollectorView makeView(const model::Policy& policy,
                                     const std::map<std::string, uint16_t>& interface_index,
                                     const std::map<uint32_t, std::string>& rule_names);

// One learned counting flow as dumped: its cookie (side and interface index), match text and
// counters.
struct LearnedFlow {
  uint64_t cookie = 0;
  std::string match;
  uint64_t packets = 0;
  uint64_t l2_bytes = 0;
  uint32_t duration_sec = 0;
};

// Parses a learned flow's match ("tcp,reg0=0x1,nw_src=..,nw_dst=..,tp_src=..,tp_dst=..").
[[nodiscard]] std::optional<FlowKey> parseLearnedMatch(const std::string& match);

class Collector {
 public:
  struct Stats {
    uint64_t samples = 0;            // IPFIX records handled
    uint64_t unattributed = 0;       // samples whose interface could not be found
    uint64_t observations = 0;       // handed to the aggregators
    uint64_t learned_flows = 0;      // counting flows seen in the last read
    uint64_t batches = 0;
  };

  // The flow logs of `policy`: aggregators for new ones, format/traffic type/interval changes
  // restart a flow log's aggregator (its open records are returned as batches, nothing is
  // lost), removed ones are flushed. `now` in Unix seconds.
  [[nodiscard]] std::vector<std::pair<LogBatch, std::vector<Field>>> setPolicy(
      const model::Policy& policy, CollectorView view, int64_t now);

  void onIpfix(const IpfixRecord& record, int64_t now);
  // All learned flows of one side, read at `now`. Counts are deltas against the previous read;
  // a `baseline` read only remembers the counters (they were counted before).
  void onLearnedFlows(bool ingress, const std::vector<LearnedFlow>& flows, int64_t now,
                      bool baseline = false);
  // Records were lost: datagrams missing (IPFIX sequence gaps) or counters unread for too long.
  // `only`: what was lost was only of this verdict (logs of the other kind are not affected).
  void onLost(uint64_t records, int64_t now, const std::string& reason,
              std::optional<Action> only = std::nullopt);

  // Batches of closed intervals (and their fields, to format them).
  [[nodiscard]] std::vector<std::pair<LogBatch, std::vector<Field>>> flush(int64_t now,
                                                                           int64_t grace);
  [[nodiscard]] std::vector<std::pair<LogBatch, std::vector<Field>>> flushAll(int64_t now);

  [[nodiscard]] const Stats& stats() const { return stats_; }
  [[nodiscard]] bool empty() const { return logs_.empty(); }

 private:
  struct Log {
    model::FlowLog config;
    std::unique_ptr<Aggregator> aggregator;
    std::vector<Field> fields;
  };
  using RuleKey = std::tuple<std::string, Direction, FlowKey>;

  void observe(const Observation& o);
  [[nodiscard]] const std::string* interfaceOf(const std::optional<IpAddress>& address) const;
  [[nodiscard]] std::string ruleOf(const std::string& interface_id, Direction d,
                                   const FlowKey& key);

  CollectorView view_;
  std::map<std::string, Log> logs_;
  // Deciding rule per connection and side, with when it was last used (bounded, see .cpp).
  std::map<RuleKey, std::pair<uint32_t, int64_t>> rules_;
  // Previous counters of each learned flow: (side, cookie, match) -> (packets, bytes, duration).
  struct Seen {
    uint64_t packets = 0;
    uint64_t l2_bytes = 0;
    uint32_t duration = 0;
    int64_t read_at = 0;
  };
  std::map<std::tuple<bool, uint64_t, std::string>, Seen> learned_;
  Stats stats_;
  int64_t now_ = 0;  // time of the latest input
};

}  // namespace vpcguard::flowlog
