#include "flowlogs/ipfix.h"

#include <algorithm>
#include <array>

namespace vpcguard::flowlog {

namespace {

constexpr uint16_t kVersion = 10;
constexpr size_t kHeaderLength = 16;
constexpr size_t kSetHeaderLength = 4;
constexpr uint16_t kTemplateSetId = 2;
constexpr uint16_t kOptionsTemplateSetId = 3;
constexpr uint16_t kMinDataSetId = 256;
// Sequence numbers: a jump forward by more than this, or back by more than kReorderWindow, is
// an exporter restart (or a spoofed message), not loss: the stream resynchronises instead.
constexpr int64_t kMaxGap = int64_t{1} << 24;
constexpr int64_t kReorderWindow = 1024;
// Seconds from the NTP epoch (1900) to the Unix epoch (1970), for dateTimeMicro/Nanoseconds.
constexpr int64_t kNtpToUnixSeconds = 2208988800;

// Bounds-checked big-endian reads over a span. Every read returns false, and reads nothing,
// when fewer bytes remain than it needs.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}

  [[nodiscard]] size_t remaining() const { return data_.size() - pos_; }
  [[nodiscard]] std::span<const uint8_t> rest() const { return data_.subspan(pos_); }

  [[nodiscard]] bool bytes(size_t n, std::span<const uint8_t>& out) {
    if (n > remaining()) {
      return false;
    }
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  [[nodiscard]] bool u8(uint8_t& out) {
    if (remaining() < 1) {
      return false;
    }
    out = data_[pos_++];
    return true;
  }
  [[nodiscard]] bool u16(uint16_t& out) {
    std::span<const uint8_t> b;
    if (!bytes(2, b)) {
      return false;
    }
    out = static_cast<uint16_t>((b[0] << 8) | b[1]);
    return true;
  }
  [[nodiscard]] bool u32(uint32_t& out) {
    std::span<const uint8_t> b;
    if (!bytes(4, b)) {
      return false;
    }
    out = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    return true;
  }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

// An unsigned integer of 1..8 bytes (RFC 7011 allows reduced-size encoding of integers).
uint64_t beValue(std::span<const uint8_t> b) {
  uint64_t v = 0;
  for (const uint8_t byte : b) {
    v = (v << 8) | byte;
  }
  return v;
}

// The value of an unsigned field if it is 1..max_bytes long; other lengths are ignored (an
// exporter sending a 3-byte protocolIdentifier is wrong, but not worth dropping the record).
template <typename T>
bool unsignedField(std::span<const uint8_t> v, T& out) {
  if (v.empty() || v.size() > sizeof(T)) {
    return false;
  }
  out = static_cast<T>(beValue(v));
  return true;
}

int64_t floorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// dateTimeMicroseconds / dateTimeNanoseconds: NTP format, seconds since 1900 and a 2^-32
// fraction.
int64_t ntpToUnixMs(uint64_t ntp) {
  const auto seconds = static_cast<int64_t>(ntp >> 32);
  const auto fraction_ms = static_cast<int64_t>(((ntp & 0xffffffffu) * 1000u) >> 32);
  return (seconds - kNtpToUnixSeconds) * 1000 + fraction_ms;
}

std::optional<IpAddress> address(std::span<const uint8_t> v, IpFamily family) {
  const size_t want = family == IpFamily::kV4 ? 4 : 16;
  if (v.size() != want) {
    return std::nullopt;
  }
  IpAddress a;
  a.family = family;
  std::copy(v.begin(), v.end(), a.bytes.begin());
  return a;
}

// Interprets one IANA information element of a flow record. Unknown elements are ignored.
void applyField(IpfixRecord& rec, uint16_t id, std::span<const uint8_t> v, uint32_t export_time) {
  uint64_t u64 = 0;
  switch (id) {
    case 1:  // octetDeltaCount
      (void)unsignedField(v, rec.bytes);
      break;
    case 2:  // packetDeltaCount
      if (unsignedField(v, rec.packets)) {
        rec.has_counts = true;
      }
      break;
    case 4:  // protocolIdentifier
      (void)unsignedField(v, rec.protocol);
      break;
    case 6:  // tcpControlBits (1 byte in RFC 5102, 2 bytes since RFC 7125)
      (void)unsignedField(v, rec.tcp_flags);
      break;
    case 7:  // sourceTransportPort
      (void)unsignedField(v, rec.src_port);
      break;
    case 11:  // destinationTransportPort
      (void)unsignedField(v, rec.dst_port);
      break;
    case 8:  // sourceIPv4Address
      if (auto a = address(v, IpFamily::kV4)) {
        rec.src = a;
      }
      break;
    case 12:  // destinationIPv4Address
      if (auto a = address(v, IpFamily::kV4)) {
        rec.dst = a;
      }
      break;
    case 27:  // sourceIPv6Address
      if (auto a = address(v, IpFamily::kV6)) {
        rec.src = a;
      }
      break;
    case 28:  // destinationIPv6Address
      if (auto a = address(v, IpFamily::kV6)) {
        rec.dst = a;
      }
      break;
    case 10:  // ingressInterface
      (void)unsignedField(v, rec.ingress_interface);
      break;
    case 14:  // egressInterface
      (void)unsignedField(v, rec.egress_interface);
      break;
    case 32:   // icmpTypeCodeIPv4
    case 139:  // icmpTypeCodeIPv6
      if (v.size() == 2) {
        rec.icmp_type = v[0];
        rec.icmp_code = v[1];
      }
      break;
    case 176:  // icmpTypeIPv4
    case 178:  // icmpTypeIPv6
      (void)unsignedField(v, rec.icmp_type);
      break;
    case 177:  // icmpCodeIPv4
    case 179:  // icmpCodeIPv6
      (void)unsignedField(v, rec.icmp_code);
      break;
    case 138:  // observationPointId
      (void)unsignedField(v, rec.observation_point);
      break;
    case 150:  // flowStartSeconds
    case 151:  // flowEndSeconds
      if (v.size() == 4) {
        (id == 150 ? rec.start_ms : rec.end_ms) = static_cast<int64_t>(beValue(v)) * 1000;
      }
      break;
    case 152:  // flowStartMilliseconds
    case 153:  // flowEndMilliseconds
      if (unsignedField(v, u64)) {
        (id == 152 ? rec.start_ms : rec.end_ms) =
            static_cast<int64_t>(std::min<uint64_t>(u64, uint64_t{INT64_MAX}));
      }
      break;
    case 154:  // flowStartMicroseconds
    case 155:  // flowEndMicroseconds
    case 156:  // flowStartNanoseconds
    case 157:  // flowEndNanoseconds
      if (v.size() == 8) {
        ((id == 154 || id == 156) ? rec.start_ms : rec.end_ms) = ntpToUnixMs(beValue(v));
      }
      break;
    case 158:  // flowStartDeltaMicroseconds: back from the header's export time
    case 159:  // flowEndDeltaMicroseconds
      if (v.size() == 4) {
        const int64_t us = int64_t{export_time} * 1000000 - static_cast<int64_t>(beValue(v));
        (id == 158 ? rec.start_ms : rec.end_ms) = floorDiv(us, 1000);
      }
      break;
    case 352:  // layer2OctetDeltaCount
      (void)unsignedField(v, rec.l2_bytes);
      break;
    default:
      break;
  }
}

}  // namespace

struct IpfixDecoder::Header {
  uint16_t version = 0;
  uint16_t length = 0;
  uint32_t export_time = 0;
  uint32_t sequence = 0;
  uint32_t domain = 0;
};

void IpfixDecoder::decode(std::span<const uint8_t> datagram, std::string_view exporter,
                          std::vector<IpfixRecord>& out) noexcept {
  Reader header_reader(datagram);
  Header h;
  if (!header_reader.u16(h.version) || !header_reader.u16(h.length) ||
      !header_reader.u32(h.export_time) || !header_reader.u32(h.sequence) ||
      !header_reader.u32(h.domain) || h.version != kVersion || h.length < kHeaderLength ||
      h.length > datagram.size()) {
    ++stats_.malformed;
    return;
  }
  ++stats_.messages;
  // Bytes after the header's length (none from a sane exporter) are not part of the message.
  Reader sets(datagram.subspan(kHeaderLength, h.length - kHeaderLength));

  uint32_t data_records = 0;
  bool count_known = true;  // false once a data set could not be counted (sequence accounting)
  while (sets.remaining() > 0) {
    uint16_t set_id = 0;
    uint16_t set_length = 0;
    std::span<const uint8_t> body;
    if (!sets.u16(set_id) || !sets.u16(set_length) || set_length < kSetHeaderLength ||
        !sets.bytes(set_length - kSetHeaderLength, body)) {
      // Without a trustworthy set length the rest of the message cannot be delimited.
      ++stats_.malformed;
      count_known = false;
      break;
    }
    if (set_id == kTemplateSetId || set_id == kOptionsTemplateSetId) {
      if (!templateSet(templateScope(h.domain), exporter, set_id == kOptionsTemplateSetId, body)) {
        ++stats_.malformed;
      }
      continue;
    }
    if (set_id < kMinDataSetId) {  // 0, 1 (NetFlow v9 ids) and 4..255 are reserved
      ++stats_.malformed;
      continue;
    }
    const Template* tmpl = findTemplate(exporter, templateScope(h.domain), set_id);
    if (tmpl == nullptr) {
      ++stats_.unknown_template;
      count_known = false;
      continue;
    }
    if (!dataSet(*tmpl, h, body, out, data_records)) {
      ++stats_.malformed;
      count_known = false;
    }
  }
  account(exporter, h, data_records, count_known);
}

const IpfixDecoder::Template* IpfixDecoder::findTemplate(std::string_view exporter, uint32_t domain,
                                                         uint16_t id) const {
  const auto ex = exporters_.find(exporter);
  if (ex == exporters_.end()) {
    return nullptr;
  }
  const auto t = ex->second.templates.find({domain, id});
  return t == ex->second.templates.end() ? nullptr : &t->second;
}

IpfixDecoder::Exporter& IpfixDecoder::exporterState(std::string_view exporter) {
  auto it = exporters_.find(exporter);
  if (it == exporters_.end()) {
    it = exporters_.emplace(std::string(exporter), Exporter{}).first;
  }
  return it->second;
}

bool IpfixDecoder::templateSet(uint32_t domain, std::string_view exporter, bool options,
                               std::span<const uint8_t> body) {
  // Parse the whole set first: a malformed set changes nothing.
  struct Parsed {
    uint16_t id = 0;
    bool withdraw = false;
    bool too_big = false;
    Template tmpl;
  };
  std::vector<Parsed> parsed;
  Reader r(body);
  while (r.remaining() >= 4) {
    Parsed p;
    uint16_t field_count = 0;
    if (!r.u16(p.id) || !r.u16(field_count)) {
      return false;
    }
    if (field_count == 0) {
      // Withdrawal of one template, or (id 2 in a template set, 3 in an options template set) of
      // all templates of that kind in this domain.
      const uint16_t all = options ? kOptionsTemplateSetId : kTemplateSetId;
      if (p.id < kMinDataSetId && p.id != all) {
        return false;
      }
      p.withdraw = true;
      parsed.push_back(std::move(p));
      continue;
    }
    if (p.id < kMinDataSetId) {
      return false;
    }
    uint16_t scope_count = 0;
    if (options && (!r.u16(scope_count) || scope_count == 0 || scope_count > field_count)) {
      return false;
    }
    p.too_big = field_count > kMaxFieldsPerTemplate;
    if (!p.too_big) {
      p.tmpl.fields.reserve(field_count);
    }
    for (uint16_t i = 0; i < field_count; ++i) {
      FieldSpec f;
      if (!r.u16(f.id) || !r.u16(f.length)) {
        return false;
      }
      if ((f.id & 0x8000) != 0) {
        f.id = static_cast<uint16_t>(f.id & 0x7fff);
        if (!r.u32(f.enterprise)) {
          return false;
        }
      }
      p.tmpl.min_record_length += f.length == kVariableLength ? 1 : f.length;
      if (!p.too_big) {
        p.tmpl.fields.push_back(f);
      }
    }
    // A record must take at least one byte, or a data set would never end.
    if (p.tmpl.min_record_length == 0) {
      return false;
    }
    p.tmpl.options = options;
    parsed.push_back(std::move(p));
  }
  // What is left is padding (shorter than any template record header), and must be zero.
  if (std::any_of(r.rest().begin(), r.rest().end(), [](uint8_t b) { return b != 0; })) {
    return false;
  }

  for (auto& p : parsed) {
    auto ex_it = exporters_.find(exporter);
    if (p.withdraw) {
      if (ex_it == exporters_.end()) {
        continue;
      }
      auto& templates = ex_it->second.templates;
      if (p.id < kMinDataSetId) {
        for (auto it = templates.lower_bound({domain, 0});
             it != templates.end() && it->first.first == domain;) {
          if (it->second.options == options) {
            it = templates.erase(it);
            --template_count_;
          } else {
            ++it;
          }
        }
      } else if (templates.erase({domain, p.id}) > 0) {
        --template_count_;
      }
      continue;
    }
    const bool exists =
        ex_it != exporters_.end() && ex_it->second.templates.contains({domain, p.id});
    if (p.too_big || (!exists && template_count_ >= kMaxTemplates)) {
      // The exporter redefined this id; whatever we kept for it is stale now.
      if (exists && ex_it->second.templates.erase({domain, p.id}) > 0) {
        --template_count_;
      }
      ++stats_.templates_rejected;
      continue;
    }
    auto& templates = exporterState(exporter).templates;
    if (!exists) {
      ++template_count_;
    }
    templates[{domain, p.id}] = std::move(p.tmpl);
    ++stats_.templates;
  }
  return true;
}

bool IpfixDecoder::dataSet(const Template& tmpl, const Header& header,
                           std::span<const uint8_t> body, std::vector<IpfixRecord>& out,
                           uint32_t& data_records) {
  std::vector<IpfixRecord> records;
  uint32_t count = 0;
  Reader r(body);
  while (r.remaining() >= tmpl.min_record_length) {
    IpfixRecord rec;
    rec.observation_domain = header.domain;
    for (const FieldSpec& f : tmpl.fields) {
      size_t length = f.length;
      if (f.length == kVariableLength) {
        uint8_t short_length = 0;
        if (!r.u8(short_length)) {
          return false;
        }
        length = short_length;
        if (short_length == 255) {
          uint16_t long_length = 0;
          if (!r.u16(long_length)) {
            return false;
          }
          length = long_length;
        }
      }
      std::span<const uint8_t> value;
      if (!r.bytes(length, value)) {
        return false;
      }
      if (!tmpl.options && f.enterprise == 0) {
        applyField(rec, f.id, value, header.export_time);
      }
    }
    ++count;
    if (!tmpl.options) {
      records.push_back(std::move(rec));
    }
  }
  // Padding after the last record: shorter than any record, and zero.
  if (std::any_of(r.rest().begin(), r.rest().end(), [](uint8_t b) { return b != 0; })) {
    return false;
  }
  stats_.records += records.size();
  data_records += count;
  out.insert(out.end(), std::make_move_iterator(records.begin()),
             std::make_move_iterator(records.end()));
  return true;
}

// RFC 7011 3.1: the header's sequence number is the number of data records this exporter sent
// in this observation domain (or, SequenceScope::kPerExporter, in all) before this message,
// modulo 2^32.
void IpfixDecoder::account(std::string_view exporter, const Header& header, uint32_t data_records,
                           bool count_known) {
  const uint32_t key = sequence_scope_ == SequenceScope::kPerDomain ? header.domain : 0;
  Stream* s = nullptr;
  if (auto ex = exporters_.find(exporter); ex != exporters_.end()) {
    if (auto it = ex->second.streams.find(key); it != ex->second.streams.end()) {
      s = &it->second;
    }
  }
  if (s == nullptr) {
    if (stream_count_ >= kMaxStreams) {
      return;  // no room to track it: its losses go uncounted rather than memory growing
    }
    ++stream_count_;
    s = &exporterState(exporter).streams[key];
  }
  const uint32_t next = header.sequence + data_records;  // wraps modulo 2^32, as it should
  if (!s->synced) {
    s->expected = next;
    s->synced = count_known;
    return;
  }
  // Signed distance modulo 2^32 (C++20 defines the conversion as modular).
  const auto diff = int64_t{static_cast<int32_t>(header.sequence - s->expected)};
  if (diff < 0 && diff >= -kReorderWindow) {
    // A late message (reordered): its records were counted lost when the gap was seen.
    const uint64_t back = std::min<uint64_t>(s->lost, data_records);
    s->lost -= back;
    stats_.lost -= back;
    return;
  }
  if (diff > 0 && diff <= kMaxGap) {
    s->lost += static_cast<uint64_t>(diff);
    stats_.lost += static_cast<uint64_t>(diff);
  }
  // In step, after a gap, or resynchronising after a restart.
  s->expected = next;
  s->synced = count_known;
}

}  // namespace vpcguard::flowlog
