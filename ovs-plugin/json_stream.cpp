#include "ovs-plugin/json_stream.h"

namespace vpcguard::ovs {

Result<std::vector<std::string>> JsonStreamSplitter::feed(std::string_view bytes) {
  std::vector<std::string> out;
  buf_.append(bytes);
  size_t i = scanned_;
  while (i < buf_.size()) {
    const char c = buf_[i];
    if (depth_ == 0) {
      // Between messages: only whitespace may separate them.
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        buf_.erase(i, 1);
        continue;
      }
      if (c != '{' && c != '[') {
        return makeError(std::string("JSON-RPC stream: unexpected '") + c +
                         "' between messages");
      }
    }
    ++i;
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        ++depth_;
        break;
      case '}':
      case ']':
        if (--depth_ < 0) {
          return makeError("JSON-RPC stream: unbalanced closing bracket");
        }
        if (depth_ == 0) {
          out.emplace_back(buf_.substr(0, i));
          buf_.erase(0, i);
          i = 0;
        }
        break;
      default:
        break;
    }
  }
  scanned_ = i;
  if (buf_.size() > kMaxMessageBytes) {
    return makeError("JSON-RPC stream: message larger than " +
                     std::to_string(kMaxMessageBytes) + " bytes");
  }
  return out;
}

}  // namespace vpcguard::ovs
