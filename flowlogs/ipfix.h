#pragma once
// An IPFIX (RFC 7011) decoder for the flow records Open vSwitch exports (flow-based sampling:
// `sample(probability=...,collector_set_id=C,obs_domain_id=D,obs_point_id=P)`).
//
// Design: the input is hostile (any host that can reach the collector's UDP port can send it).
// Every read is bounds-checked against a std::span, big-endian fields are assembled byte by byte,
// and nothing throws. A message whose header is bad, or a set whose length or content is bad, is
// counted in `malformed` and skipped; sets decode atomically (a set with one bad record yields no
// records). State is bounded: at most kMaxTemplates templates, kMaxFieldsPerTemplate fields per
// template and kMaxStreams sequence-number streams, whatever the input.
//
// Templates are kept per (exporter, observation domain, template id), as RFC 7011 scopes them.
// Options templates (set id 3; OVS sends one for its exporter statistics) are learned so that
// their data records can be skipped by length; their data is not decoded.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "translator/ip.h"

namespace vpcguard::flowlog {

// One decoded data record. Fields the template did not carry keep their defaults.
struct IpfixRecord {
  uint32_t observation_domain = 0;      // from the message header
  uint32_t observation_point = 0;       // observationPointId (IE 138); 0 when absent
  std::optional<IpAddress> src, dst;    // IEs 8/12 (IPv4) or 27/28 (IPv6)
  uint16_t src_port = 0, dst_port = 0;  // IEs 7/11
  uint8_t protocol = 0;                 // IE 4
  // IEs 176/177 (IPv4), 178/179 (IPv6), or the combined 32/139 (type * 256 + code).
  uint8_t icmp_type = 0, icmp_code = 0;
  uint16_t tcp_flags = 0;  // tcpControlBits (IE 6); OVS does not send it
  uint64_t packets = 0;    // packetDeltaCount (IE 2)
  uint64_t bytes = 0;      // octetDeltaCount (IE 1): IP bytes; 0 when absent (non-IP)
  uint64_t l2_bytes = 0;   // layer2OctetDeltaCount (IE 352)
  uint32_t ingress_interface = 0, egress_interface = 0;  // IEs 10/14 (OpenFlow port numbers)
  // Absolute Unix milliseconds, from flowStart/End{Seconds,Milliseconds} (150-153),
  // {Micro,Nano}seconds (154-157, NTP format) or the Delta{Microseconds} (158/159) that OVS sends,
  // which count back from the message header's export time. 0 when absent.
  int64_t start_ms = 0, end_ms = 0;
  bool has_counts = false;  // the record carried packetDeltaCount

  bool operator==(const IpfixRecord&) const = default;
};

struct DecodeStats {
  uint64_t messages = 0;          // well-formed message headers seen
  uint64_t records = 0;           // flow data records decoded (options data not included)
  uint64_t malformed = 0;         // messages or sets dropped as malformed
  uint64_t unknown_template = 0;  // data sets dropped because their template is not known
  // Data records the exporter sent that never arrived, from gaps in the header's sequence
  // number (see SequenceScope). A late (reordered) message gives its records back.
  uint64_t lost = 0;
  uint64_t templates = 0;           // template and options template records learned
  uint64_t templates_rejected = 0;  // refused: table full (kMaxTemplates) or too many fields

  bool operator==(const DecodeStats&) const = default;
};

// Whose data records the header's sequence number counts.
enum class SequenceScope : uint8_t {
  // RFC 7011: per (exporter, observation domain).
  kPerDomain,
  // Open vSwitch 3.1: one counter per exporter (collector set), shared by all observation domains;
  // its exporter statistics go out in domain 0 and consume a number too. Decoding OVS's export
  // with kPerDomain reports their messages as lost records in the flow domains. Templates too
  // are per exporter: OVS sends them every 600 s in the domain of whichever record is due then,
  // and its data in every other domain uses them (same template ids in all domains).
  kPerExporter,
};

class IpfixDecoder {
 public:
  explicit IpfixDecoder(SequenceScope sequence_scope = SequenceScope::kPerDomain)
      : sequence_scope_(sequence_scope) {}

  static constexpr size_t kMaxTemplates = 4096;
  static constexpr size_t kMaxFieldsPerTemplate = 512;
  static constexpr size_t kMaxStreams = 4096;  // (exporter, domain) pairs with sequence tracking

  // Decodes one UDP datagram from `exporter` (e.g. "127.0.0.1:40000") and appends its flow
  // records to `out`. Never throws, never reads outside `datagram`.
  void decode(std::span<const uint8_t> datagram, std::string_view exporter,
              std::vector<IpfixRecord>& out) noexcept;

  [[nodiscard]] const DecodeStats& stats() const { return stats_; }
  // Templates currently kept (all exporters and domains).
  [[nodiscard]] size_t templateCount() const { return template_count_; }

  // An information element as a template names it. `enterprise` is 0 for IANA elements.
  struct FieldSpec {
    uint32_t enterprise = 0;
    uint16_t id = 0;
    uint16_t length = 0;  // kVariableLength: a 1- or 3-byte length prefix in each record
  };
  static constexpr uint16_t kVariableLength = 0xffff;

 private:
  struct Template {
    std::vector<FieldSpec> fields;
    bool options = false;  // from an options template set: data is skipped, not decoded
    size_t min_record_length = 0;
  };
  struct Stream {
    uint32_t expected = 0;  // sequence number the next message should carry
    bool synced = false;    // false: the next message sets `expected` without counting a gap
    uint64_t lost = 0;      // this stream's share of stats_.lost (what a late message can undo)
  };
  struct Exporter {
    std::map<std::pair<uint32_t, uint16_t>, Template> templates;  // (domain, template id)
    std::map<uint32_t, Stream> streams;  // per domain (one, key 0, with kPerExporter)
  };
  struct Header;

  Exporter& exporterState(std::string_view exporter);  // creates it when new
  // The domain under which templates are kept (0 for all with kPerExporter).
  [[nodiscard]] uint32_t templateScope(uint32_t domain) const {
    return sequence_scope_ == SequenceScope::kPerExporter ? 0 : domain;
  }
  [[nodiscard]] const Template* findTemplate(std::string_view exporter, uint32_t domain,
                                             uint16_t id) const;
  // Each returns false when the set is malformed (and then changes nothing).
  bool templateSet(uint32_t domain, std::string_view exporter, bool options,
                   std::span<const uint8_t> body);
  // Appends the set's flow records to `out`; adds all its data records (flow and options) to
  // `data_records` for sequence accounting.
  bool dataSet(const Template& tmpl, const Header& header, std::span<const uint8_t> body,
               std::vector<IpfixRecord>& out, uint32_t& data_records);
  // Sequence-number bookkeeping for one message; `count_known` is false when some data set
  // could not be counted (unknown template, malformed), so the next message resynchronises.
  void account(std::string_view exporter, const Header& header, uint32_t data_records,
               bool count_known);

  SequenceScope sequence_scope_;
  std::map<std::string, Exporter, std::less<>> exporters_;
  size_t template_count_ = 0;
  size_t stream_count_ = 0;
  DecodeStats stats_;
};

}  // namespace vpcguard::flowlog
