#pragma once
// Builds IPFIX (RFC 7011) messages byte by byte for tests and fuzz seeds, so every case states
// exactly what is on the wire. Lengths (message, set) are filled in by endSet() and bytes().

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace vpcguard::flowlog::test {

// One field specifier of a template: IANA element `id` (enterprise 0) or an enterprise element.
struct Field {
  uint16_t id = 0;
  uint16_t length = 0;  // 0xffff: variable length
  uint32_t enterprise = 0;
};

class IpfixMessage {
 public:
  IpfixMessage(uint32_t export_time, uint32_t sequence, uint32_t domain) {
    u16(10).u16(0).u32(export_time).u32(sequence).u32(domain);
  }

  IpfixMessage& u8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  IpfixMessage& u16(uint16_t v) {
    return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v));
  }
  IpfixMessage& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  IpfixMessage& u64(uint64_t v) {
    return u32(static_cast<uint32_t>(v >> 32)).u32(static_cast<uint32_t>(v));
  }
  IpfixMessage& raw(std::initializer_list<uint8_t> bytes) {
    b_.insert(b_.end(), bytes);
    return *this;
  }
  IpfixMessage& fill(size_t n, uint8_t v) {
    b_.insert(b_.end(), n, v);
    return *this;
  }

  IpfixMessage& beginSet(uint16_t set_id) {
    set_start_ = b_.size();
    return u16(set_id).u16(0);
  }
  IpfixMessage& endSet() {
    patch16(set_start_ + 2, b_.size() - set_start_);
    return *this;
  }
  // A template record (inside a set 2).
  IpfixMessage& templateRecord(uint16_t template_id, const std::vector<Field>& fields) {
    u16(template_id).u16(static_cast<uint16_t>(fields.size()));
    return fieldSpecs(fields);
  }
  // An options template record (inside a set 3); the first `scope` fields are scope fields.
  IpfixMessage& optionsTemplateRecord(uint16_t template_id, uint16_t scope,
                                      const std::vector<Field>& fields) {
    u16(template_id).u16(static_cast<uint16_t>(fields.size())).u16(scope);
    return fieldSpecs(fields);
  }
  // A whole template set holding one template.
  IpfixMessage& templateSet(uint16_t template_id, const std::vector<Field>& fields) {
    return beginSet(2).templateRecord(template_id, fields).endSet();
  }

  // The message with its header length filled in.
  [[nodiscard]] std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out = b_;
    out[2] = static_cast<uint8_t>(out.size() >> 8);
    out[3] = static_cast<uint8_t>(out.size());
    return out;
  }

 private:
  IpfixMessage& fieldSpecs(const std::vector<Field>& fields) {
    for (const Field& f : fields) {
      if (f.enterprise != 0) {
        u16(static_cast<uint16_t>(f.id | 0x8000)).u16(f.length).u32(f.enterprise);
      } else {
        u16(f.id).u16(f.length);
      }
    }
    return *this;
  }
  void patch16(size_t at, size_t v) {
    b_[at] = static_cast<uint8_t>(v >> 8);
    b_[at + 1] = static_cast<uint8_t>(v);
  }

  std::vector<uint8_t> b_;
  size_t set_start_ = 0;
};

}  // namespace vpcguard::flowlog::test
