#pragma once
// Splits a byte stream into complete JSON texts. OVSDB's JSON-RPC (RFC 7047) sends objects back
// to back on the socket with no length prefix or delimiter, so a reader must find where one
// value ends: count brackets outside strings. Pure; unit-tested.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "translator/result.h"

namespace vpcguard::ovs {

class JsonStreamSplitter {
 public:
  // Appends `bytes` and returns every top-level object or array completed so far. Error when
  // the stream cannot be JSON-RPC (a top-level scalar, an unbalanced bracket, or more than
  // `max_message_bytes` without a complete message): the connection should be dropped.
  [[nodiscard]] Result<std::vector<std::string>> feed(std::string_view bytes);
  [[nodiscard]] size_t buffered() const { return buf_.size(); }

  static constexpr size_t kMaxMessageBytes = size_t{256} << 20;  // a full dump of a large db

 private:
  std::string buf_;   // bytes of the message in progress (starting at its first bracket)
  size_t scanned_ = 0;  // bytes of buf_ already scanned
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace vpcguard::ovs
