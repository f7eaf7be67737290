#include "api/iam.h"

// Design: a policy file is parsed twice. nlohmann::json gives the values (and, for malformed
// JSON, the byte offset of the error); a small position scanner then walks the same (valid) text
// and records where each value and key starts, keyed by the field path we use in messages
// ("Statement[1].Effect"). Every check that refuses a field looks its position up there, so each
// error names file:line:col and the field without threading positions through the checks.
//
// Checks are strict on purpose: a Deny with a misspelt action ("ec2:ModifyNetworkInterface")
// or an ARN of the wrong shape would load and then silently never match, which is the worst
// failure an authorization policy can have. So an action pattern must match some API action and
// a resource pattern must be able to match one of our ARNs.

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace vpcguard::api {
namespace {

// ---------------------------------------------------------------------------------------------
// Names

// The resource types of our ARNs ("arn:vpcguard:ec2:<region>:<account>:<type>/<id>").
constexpr std::string_view kResourceTypes[] = {
    "vpc",
    "subnet",
    "network-interface",
    "security-group",
    "security-group-rule",
    "network-acl",
    "prefix-list",
    "flow-log",
    "traffic-mirror-target",
    "traffic-mirror-filter",
    "traffic-mirror-filter-rule",
    "traffic-mirror-session",
};

// The API's actions (api/actions.h's registry): an action pattern that matches none of them is a
// typo, refused rather than loaded as a statement that never applies.
std::vector<std::string> knownActionNames() {
  std::set<std::string> names;
  for (const auto& spec : allActions()) names.insert(spec.name);
  return {names.begin(), names.end()};
}

bool hasWildcard(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

// ---------------------------------------------------------------------------------------------
// Positions

struct Positions {
  std::map<std::string, size_t, std::less<>> value;  // path -> offset of the value
  std::map<std::string, size_t, std::less<>> key;    // object member path -> offset of its key
};

// Walks JSON text that nlohmann has already accepted, recording where each value starts. Only
// the structure matters here; nlohmann did the validation. Duplicate keys are reported (the
// JSON library would keep one of them silently, and in a policy that hides a statement's intent).
class PositionScanner {
 public:
  explicit PositionScanner(std::string_view text) : text_(text) {}

  // Returns the path of a duplicate key, if any (its offset in duplicate_offset()).
  std::optional<std::string> scan(Positions& out) {
    out_ = &out;
    skipSpace();
    value("");
    return duplicate_;
  }
  [[nodiscard]] size_t duplicateOffset() const { return duplicate_offset_; }

 private:
  void skipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  void value(const std::string& path) {
    if (pos_ >= text_.size()) return;
    out_->value.emplace(path, pos_);
    const char c = text_[pos_];
    if (c == '{') {
      object(path);
    } else if (c == '[') {
      array(path);
    } else if (c == '"') {
      (void)string();
    } else {
      // number, true, false, null
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}' &&
             text_[pos_] != ']' && !std::isspace(static_cast<unsigned char>(text_[pos_])))
        ++pos_;
    }
  }

  void object(const std::string& path) {
    ++pos_;  // '{'
    std::set<std::string> seen;
    skipSpace();
    while (pos_ < text_.size() && text_[pos_] != '}') {
      const size_t key_at = pos_;
      std::string k = string();
      std::string member = path.empty() ? k : path + "." + k;
      if (!seen.insert(k).second && !duplicate_) {
        duplicate_ = member;
        duplicate_offset_ = key_at;
      }
      out_->key.insert_or_assign(member, key_at);
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ':') ++pos_;
      skipSpace();
      // A repeated key's value replaces the first one's position, as its value replaced the
      // first one's in nlohmann (the duplicate is an error anyway).
      out_->value.erase(member);
      value(member);
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') ++pos_;
      skipSpace();
    }
    if (pos_ < text_.size()) ++pos_;  // '}'
  }

  void array(const std::string& path) {
    ++pos_;  // '['
    skipSpace();
    size_t index = 0;
    while (pos_ < text_.size() && text_[pos_] != ']') {
      value(fmt::format("{}[{}]", path, index++));
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') ++pos_;
      skipSpace();
    }
    if (pos_ < text_.size()) ++pos_;  // ']'
  }

  // A string token, decoded enough for key paths (escapes other than \uXXXX map to their
  // character; \uXXXX is decoded to UTF-8, surrogate pairs included).
  std::string string() {
    std::string s;
    ++pos_;  // '"'
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c != '\\' || pos_ >= text_.size()) {
        s += c;
        continue;
      }
      const char e = text_[pos_++];
      switch (e) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && pos_ + 1 < text_.size() && text_[pos_] == '\\' &&
              text_[pos_ + 1] == 'u') {
            pos_ += 2;
            const unsigned low = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(s, cp);
          break;
        }
        default: s += e;  // '"', '\\', '/'
      }
    }
    if (pos_ < text_.size()) ++pos_;  // '"'
    return s;
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4 && pos_ < text_.size(); ++i, ++pos_) {
      const char h = text_[pos_];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
    }
    return v;
  }

  static void appendUtf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  Positions* out_ = nullptr;
  std::optional<std::string> duplicate_;
  size_t duplicate_offset_ = 0;
};

// A parsed document with what its error messages need.
class Document {
 public:
  Document(std::string label, std::string text) : label_(std::move(label)), text_(std::move(text)) {}

  Result<void> parse() {
    try {
      json_ = nlohmann::json::parse(text_);
    } catch (const nlohmann::json::parse_error& e) {
      // e.byte is 1-based and may point one past the end for a truncated document.
      const size_t offset = e.byte == 0 ? 0 : std::min<size_t>(e.byte - 1, text_.size());
      return makeError(fmt::format("{}: invalid JSON: {}", at(offset), parseMessage(e.what())));
    }
    PositionScanner scanner(text_);
    if (auto dup = scanner.scan(positions_)) {
      return makeError(fmt::format("{}: {}: duplicate key", at(scanner.duplicateOffset()), *dup));
    }
    return {};
  }

  [[nodiscard]] const nlohmann::json& json() const { return json_; }
  [[nodiscard]] const std::string& label() const { return label_; }

  // "iam/x.json:3:7" for a byte offset.
  [[nodiscard]] std::string at(size_t offset) const {
    offset = std::min(offset, text_.size());
    size_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    return fmt::format("{}:{}:{}", label_, line, offset - line_start + 1);
  }

  // Where a value is (falling back to its nearest recorded ancestor, then the file start).
  [[nodiscard]] std::string valueAt(const std::string& path) const {
    std::string p = path;
    for (;;) {
      if (auto it = positions_.value.find(p); it != positions_.value.end()) return at(it->second);
      if (p.empty()) return at(0);
      const size_t cut = p.find_last_of(".[");
      p = cut == std::string::npos ? std::string() : p.substr(0, cut);
    }
  }
  // Where a member's key is (for "this field is not allowed"), else its value.
  [[nodiscard]] std::string keyAt(const std::string& path) const {
    if (auto it = positions_.key.find(path); it != positions_.key.end()) return at(it->second);
    return valueAt(path);
  }

  // "iam/x.json:5:17: Statement[0].Effect: <message>", positioned at the value.
  [[nodiscard]] tl::unexpected<Error> valueError(const std::string& path,
                                                 const std::string& message) const {
    return makeError(fmt::format("{}: {}: {}", valueAt(path), path.empty() ? "(document)" : path,
                                 message));
  }
  // The same, positioned at the member's key.
  [[nodiscard]] tl::unexpected<Error> keyError(const std::string& path,
                                               const std::string& message) const {
    return makeError(fmt::format("{}: {}: {}", keyAt(path), path, message));
  }

 private:
  static std::string parseMessage(std::string_view what) {
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." ->
    // "syntax error ..." (we print our own position).
    const size_t pe = what.find("parse error");
    if (pe != std::string_view::npos) {
      const size_t colon = what.find(": ", pe);
      if (colon != std::string_view::npos) return std::string(what.substr(colon + 2));
    }
    return std::string(what);
  }

  std::string label_;
  std::string text_;
  nlohmann::json json_;
  Positions positions_;
};

std::string typeName(const nlohmann::json& j) { return j.type_name(); }

// Action or Resource: a string or a non-empty array of strings.
Result<std::vector<std::pair<std::string, std::string>>> stringOrList(const Document& doc,
                                                                      const nlohmann::json& j,
                                                                      const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;  // (path of the item, value)
  if (j.is_string()) {
    out.emplace_back(path, j.get<std::string>());
    return out;
  }
  if (!j.is_array()) {
    return doc.valueError(path, fmt::format("must be a string or an array of strings, not {}",
                                            typeName(j)));
  }
  if (j.empty()) return doc.valueError(path, "must not be empty");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string item = fmt::format("{}[{}]", path, i);
    if (!j[i].is_string()) {
      return doc.valueError(item, fmt::format("must be a string, not {}", typeName(j[i])));
    }
    out.emplace_back(item, j[i].get<std::string>());
  }
  return out;
}

Result<std::string> checkAction(const Document& doc, const std::string& path,
                                const std::string& action,
                                const std::vector<std::string>& known) {
  if (action == "*") return action;
  const size_t colon = action.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == action.size()) {
    return doc.valueError(
        path, fmt::format("'{}' is not an action: write \"ec2:ActionName\" (wildcards * and ? "
                          "allowed) or \"*\"",
                          action));
  }
  const std::string service = action.substr(0, colon);
  const std::string name = action.substr(colon + 1);
  if (!globMatch(service, "ec2", true)) {
    return doc.valueError(path, fmt::format("unknown service '{}' in '{}': vpcguard's API has "
                                            "only ec2 actions",
                                            service, action));
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '*' && c != '?') {
      return doc.valueError(path, fmt::format("'{}' is not an action name (letters, digits, * "
                                              "and ? only)",
                                              action));
    }
  }
  const bool matches_one = std::any_of(known.begin(), known.end(), [&](const std::string& k) {
    return globMatch(name, k, true);
  });
  if (!matches_one) {
    return doc.valueError(path, fmt::format("'{}' matches no action of the API (docs/iam.md "
                                            "lists them)",
                                            action));
  }
  return action;
}

Result<std::string> checkResource(const Document& doc, const std::string& path,
                                  const std::string& resource) {
  if (resource == "*") return resource;
  constexpr std::string_view kShape = "arn:vpcguard:ec2:<region>:<account>:<type>/<id>";
  // arn : partition : service : region : account : resource (the last may itself hold ':').
  std::vector<std::string> parts;
  size_t start = 0;
  for (int i = 0; i < 5; ++i) {
    const size_t colon = resource.find(':', start);
    if (colon == std::string::npos) break;
    parts.push_back(resource.substr(start, colon - start));
    start = colon + 1;
  }
  if (parts.size() < 5 || parts[0] != "arn") {
    return doc.valueError(path, fmt::format("'{}' is not an ARN: write {} (wildcards * and ? "
                                            "allowed) or \"*\"",
                                            resource, kShape));
  }
  const std::string rest = resource.substr(start);
  if (!globMatch(parts[1], "vpcguard", false)) {
    return doc.valueError(path, fmt::format("'{}' never matches: the partition is 'vpcguard' "
                                            "({}), not '{}'",
                                            resource, kShape, parts[1]));
  }
  if (!globMatch(parts[2], "ec2", false)) {
    return doc.valueError(path, fmt::format("'{}' never matches: the service is 'ec2' ({})",
                                            resource, kShape));
  }
  if (rest.empty()) {
    return doc.valueError(path, fmt::format("'{}' has no resource part: {}", resource, kShape));
  }
  // The resource part is <type>/<id>: its literal beginning (up to the first wildcard) must be
  // able to start one of our types' ARNs.
  const std::string prefix = rest.substr(0, rest.find_first_of("*?"));
  const size_t slash = prefix.find('/');
  const bool type_ok =
      slash != std::string::npos
          ? std::any_of(std::begin(kResourceTypes), std::end(kResourceTypes),
                        [&](std::string_view t) { return prefix.substr(0, slash) == t; })
          : hasWildcard(rest) &&
                std::any_of(std::begin(kResourceTypes), std::end(kResourceTypes),
                            [&](std::string_view t) {
                              return (std::string(t) + "/").starts_with(prefix);
                            });
  if (!type_ok) {
    std::string types;
    for (auto t : kResourceTypes) types += (types.empty() ? "" : ", ") + std::string(t);
    return doc.valueError(path, fmt::format("'{}' never matches: the resource part is "
                                            "<type>/<id> with type one of {}",
                                            resource, types));
  }
  return resource;
}

bool validPolicyName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("+=,.@_-").find(c) !=
                                                              std::string_view::npos;
  });
}

Result<IamPolicy> parsePolicy(const std::string& policy_name, const std::string& label,
                              const std::string& text, const std::vector<std::string>& known) {
  Document doc(label, text);
  if (auto r = doc.parse(); !r) return tl::unexpected(r.error());
  const nlohmann::json& root = doc.json();
  if (!root.is_object()) {
    return doc.valueError("", fmt::format("an IAM policy document is a JSON object, not {}",
                                          typeName(root)));
  }
  for (const auto& [key, value] : root.items()) {
    (void)value;
    if (key == "Version" || key == "Statement" || key == "Id") continue;
    return doc.keyError(key, "unknown field (a policy document has Version, Id and Statement)");
  }
  if (auto v = root.find("Version"); v != root.end()) {
    if (!v->is_string() || (*v != "2012-10-17" && *v != "2008-10-17")) {
      return doc.valueError("Version", fmt::format("must be \"2012-10-17\" or \"2008-10-17\", "
                                                   "not {}",
                                                   v->dump(-1, ' ', false,
                                                           nlohmann::json::error_handler_t::replace)));
    }
  }
  if (auto id = root.find("Id"); id != root.end() && !id->is_string()) {
    return doc.valueError("Id", "must be a string");
  }
  const auto statements = root.find("Statement");
  if (statements == root.end()) return doc.valueError("", "missing field Statement");
  std::vector<std::pair<std::string, const nlohmann::json*>> items;
  if (statements->is_object()) {
    items.emplace_back("Statement", &*statements);
  } else if (statements->is_array()) {
    if (statements->empty()) return doc.valueError("Statement", "must hold at least one statement");
    for (size_t i = 0; i < statements->size(); ++i) {
      items.emplace_back(fmt::format("Statement[{}]", i), &(*statements)[i]);
    }
  } else {
    return doc.valueError("Statement", fmt::format("must be an object or an array of objects, "
                                                   "not {}",
                                                   typeName(*statements)));
  }

  IamPolicy policy;
  policy.name = policy_name;
  policy.document = root;
  std::map<std::string, std::string> sids;  // Sid -> path of its statement
  for (const auto& [path, st] : items) {
    if (!st->is_object()) {
      return doc.valueError(path, fmt::format("a statement is an object, not {}", typeName(*st)));
    }
    for (const auto& [key, value] : st->items()) {
      (void)value;
      const std::string field = path + "." + key;
      if (key == "Sid" || key == "Effect" || key == "Action" || key == "Resource") continue;
      if (key == "NotAction" || key == "NotResource") {
        return doc.keyError(field, fmt::format("{} is not supported: list what the statement "
                                               "applies to with {}",
                                               key, key == "NotAction" ? "Action" : "Resource"));
      }
      if (key == "Principal" || key == "NotPrincipal") {
        return doc.keyError(field, fmt::format("{} is not supported: policies are attached to "
                                               "principals in bindings.json",
                                               key));
      }
      if (key == "Condition") {
        return doc.keyError(field, "Condition is not supported");
      }
      return doc.keyError(field, "unknown field (a statement has Sid, Effect, Action and "
                                 "Resource)");
    }
    IamStatement statement;
    statement.where = doc.valueAt(path);
    if (auto sid = st->find("Sid"); sid != st->end()) {
      if (!sid->is_string()) return doc.valueError(path + ".Sid", "must be a string");
      const std::string s = sid->get<std::string>();
      if (!s.empty()) {
        auto [it, fresh] = sids.emplace(s, path);
        if (!fresh) {
          return doc.valueError(path + ".Sid", fmt::format("Sid '{}' is already used by {}", s,
                                                           it->second));
        }
      }
    }
    const auto effect = st->find("Effect");
    if (effect == st->end()) return doc.valueError(path, "missing field Effect");
    if (*effect == "Allow") {
      statement.allow = true;
    } else if (*effect == "Deny") {
      statement.allow = false;
    } else {
      return doc.valueError(path + ".Effect",
                            fmt::format("must be \"Allow\" or \"Deny\", not {}",
                                        effect->dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace)));
    }
    const auto action = st->find("Action");
    if (action == st->end()) return doc.valueError(path, "missing field Action");
    auto actions = stringOrList(doc, *action, path + ".Action");
    if (!actions) return tl::unexpected(actions.error());
    for (const auto& [item, a] : *actions) {
      auto checked = checkAction(doc, item, a, known);
      if (!checked) return tl::unexpected(checked.error());
      statement.actions.push_back(*checked);
    }
    const auto resource = st->find("Resource");
    if (resource == st->end()) return doc.valueError(path, "missing field Resource");
    auto resources = stringOrList(doc, *resource, path + ".Resource");
    if (!resources) return tl::unexpected(resources.error());
    for (const auto& [item, r] : *resources) {
      auto checked = checkResource(doc, item, r);
      if (!checked) return tl::unexpected(checked.error());
      statement.resources.push_back(*checked);
    }
    policy.statements.push_back(std::move(statement));
  }
  return policy;
}

bool validPrincipal(std::string_view p) {
  const size_t colon = p.find(':');
  if (colon == std::string_view::npos || colon + 1 == p.size()) return false;
  const std::string_view kind = p.substr(0, colon);
  const std::string_view rest = p.substr(colon + 1);
  if (kind == "uid" || kind == "gid") {
    return rest.size() <= 10 && std::all_of(rest.begin(), rest.end(), [](char c) {
             return c >= '0' && c <= '9';
           });
  }
  return kind == "user" || kind == "group" || kind == "cert";
}

Result<std::vector<IamBinding>> parseBindings(const std::string& label, const std::string& text,
                                              const std::vector<IamPolicy>& policies) {
  Document doc(label, text);
  if (auto r = doc.parse(); !r) return tl::unexpected(r.error());
  const nlohmann::json& root = doc.json();
  if (!root.is_object()) {
    return doc.valueError("", fmt::format("bindings are a JSON object {{\"Bindings\": [...]}}, "
                                          "not {}",
                                          typeName(root)));
  }
  for (const auto& [key, value] : root.items()) {
    (void)value;
    if (key != "Bindings") return doc.keyError(key, "unknown field (expected only Bindings)");
  }
  const auto list = root.find("Bindings");
  if (list == root.end()) return doc.valueError("", "missing field Bindings");
  if (!list->is_array()) {
    return doc.valueError("Bindings", fmt::format("must be an array, not {}", typeName(*list)));
  }
  std::string files;
  for (const auto& p : policies) files += (files.empty() ? "" : ", ") + p.name + ".json";
  if (files.empty()) files = "none";

  std::vector<IamBinding> out;
  std::map<std::string, std::string> seen;  // principal -> path of its binding
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = fmt::format("Bindings[{}]", i);
    const nlohmann::json& b = (*list)[i];
    if (!b.is_object()) {
      return doc.valueError(path, fmt::format("a binding is an object {{\"Principal\": ..., "
                                              "\"Policies\": [...]}}, not {}",
                                              typeName(b)));
    }
    for (const auto& [key, value] : b.items()) {
      (void)value;
      if (key != "Principal" && key != "Policies") {
        return doc.keyError(path + "." + key, "unknown field (a binding has Principal and "
                                              "Policies)");
      }
    }
    IamBinding binding;
    const auto principal = b.find("Principal");
    if (principal == b.end()) return doc.valueError(path, "missing field Principal");
    if (!principal->is_string() || !validPrincipal(principal->get_ref<const std::string&>())) {
      return doc.valueError(path + ".Principal",
                            fmt::format("{} is not a principal: write user:NAME, uid:N, "
                                        "group:NAME, gid:N or cert:SUBJECT",
                                        principal->dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace)));
    }
    binding.principal = principal->get<std::string>();
    if (auto [it, fresh] = seen.emplace(binding.principal, path); !fresh) {
      return doc.valueError(path + ".Principal",
                            fmt::format("'{}' is already bound by {}: list all its policies there",
                                        binding.principal, it->second));
    }
    const auto names = b.find("Policies");
    if (names == b.end()) return doc.valueError(path, "missing field Policies");
    if (!names->is_array()) {
      return doc.valueError(path + ".Policies",
                            fmt::format("must be an array of policy names, not {}",
                                        typeName(*names)));
    }
    for (size_t k = 0; k < names->size(); ++k) {
      const std::string item = fmt::format("{}.Policies[{}]", path, k);
      const nlohmann::json& n = (*names)[k];
      if (!n.is_string()) {
        return doc.valueError(item, fmt::format("must be a policy name, not {}", typeName(n)));
      }
      const std::string name = n.get<std::string>();
      const bool exists = std::any_of(policies.begin(), policies.end(),
                                      [&](const IamPolicy& p) { return p.name == name; });
      if (!exists) {
        return doc.valueError(item, fmt::format("no policy named '{}' (files: {})", name, files));
      }
      binding.policies.push_back(name);
    }
    out.push_back(std::move(binding));
  }
  return out;
}

Result<std::string> readFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return makeError(fmt::format("{}: cannot read: {}", file.string(),
                                 std::generic_category().message(errno)));
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return makeError(fmt::format("{}: read error", file.string()));
  return s.str();
}

bool statementMatches(const IamStatement& st, const Permission& p) {
  const bool action = std::any_of(st.actions.begin(), st.actions.end(), [&](const std::string& a) {
    return globMatch(a, p.action, true);
  });
  if (!action) return false;
  return std::any_of(st.resources.begin(), st.resources.end(), [&](const std::string& r) {
    // An action on no particular resource (Describe*) is granted only by Resource "*", as in
    // AWS where such actions do not support resource-level permissions.
    if (p.resource == "*") return r == "*";
    return globMatch(r, p.resource, false);
  });
}

// Looks a user or group name up with the reentrant calls, growing the buffer as they ask.
template <typename Entry, typename Fn>
std::optional<std::string> lookupName(Fn fn) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = hint > 0 ? static_cast<size_t>(hint) : 16384;
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::vector<char> buf(size);
    Entry entry{};
    Entry* result = nullptr;
    const int rc = fn(&entry, buf.data(), buf.size(), &result);
    if (rc == ERANGE) {
      size *= 4;
      continue;
    }
    if (rc != 0 || result == nullptr) return std::nullopt;
    if constexpr (std::is_same_v<Entry, struct passwd>) return std::string(entry.pw_name);
    else return std::string(entry.gr_name);
  }
  return std::nullopt;
}

}  // namespace

bool globMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  const auto eq = [ignore_case](char a, char b) {
    if (!ignore_case) return a == b;
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  // Iterative matcher: on a mismatch, retry from the last '*' consuming one more character.
  // Linear backtracking only (no recursion), so hostile patterns cannot blow up.
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || eq(pattern[p], text[t]))) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Principal unixPrincipal(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, pid_t pid) {
  Principal principal;
  const auto user = lookupName<struct passwd>([uid](struct passwd* e, char* b, size_t n, struct passwd** r) {
    return getpwuid_r(uid, e, b, n, r);
  });
  if (user) principal.names.push_back("user:" + *user);
  principal.names.push_back(fmt::format("uid:{}", uid));
  principal.display = user ? "user:" + *user : fmt::format("uid:{}", uid);

  std::vector<gid_t> all{gid};
  for (gid_t g : groups) {
    if (std::find(all.begin(), all.end(), g) == all.end()) all.push_back(g);
  }
  for (gid_t g : all) {
    const auto name = lookupName<struct group>([g](struct group* e, char* b, size_t n,
                                             struct group** r) {
      return getgrgid_r(g, e, b, n, r);
    });
    if (name) principal.names.push_back("group:" + *name);
    principal.names.push_back(fmt::format("gid:{}", g));
  }
  principal.source = fmt::format("unix:pid={}", pid);
  return principal;
}

Result<IamConfig> IamConfig::parse(
    const std::vector<std::pair<std::string, std::string>>& policy_files,
    const std::string& bindings_name, const std::string& bindings_text) {
  const std::vector<std::string> known = knownActionNames();
  IamConfig config;
  for (const auto& [name, text] : policy_files) {
    // A file name ("iam/network-admin.json") names the policy by its stem; a bare name is the
    // policy name itself and labels its messages as is.
    std::string policy_name = name;
    if (name.size() > 5 && name.ends_with(".json")) {
      policy_name = std::filesystem::path(name).stem().string();
    }
    if (!validPolicyName(policy_name)) {
      return makeError(fmt::format("{}: '{}' is not a policy name (letters, digits and +=,.@_- "
                                   "only)",
                                   name, policy_name));
    }
    const bool duplicate =
        std::any_of(config.policies_.begin(), config.policies_.end(),
                    [&](const IamPolicy& p) { return p.name == policy_name; });
    if (duplicate) return makeError(fmt::format("{}: a second policy named '{}'", name, policy_name));
    auto policy = parsePolicy(policy_name, name, text, known);
    if (!policy) return tl::unexpected(policy.error());
    config.policies_.push_back(std::move(*policy));
  }
  auto bindings = parseBindings(bindings_name, bindings_text, config.policies_);
  if (!bindings) return tl::unexpected(bindings.error());
  config.bindings_ = std::move(*bindings);
  return config;
}

Result<IamConfig> IamConfig::load(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return makeError(fmt::format("{}: not a directory of IAM policies", dir.string()));
  }
  // Messages name files as "<dir name>/<file>" ("iam/network-admin.json"), short and enough to
  // find them.
  std::filesystem::path base = dir.filename();
  if (base.empty()) base = dir.parent_path().filename();
  const auto label = [&](const std::filesystem::path& file) {
    return (base / file.filename()).string();
  };

  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& path = it->path();
    if (path.extension() != ".json" || path.filename() == "bindings.json") continue;
    if (!it->is_regular_file(ec)) continue;
    files.push_back(path);
  }
  if (ec) return makeError(fmt::format("{}: cannot list: {}", dir.string(), ec.message()));
  std::sort(files.begin(), files.end());

  std::vector<std::pair<std::string, std::string>> policy_files;
  for (const auto& file : files) {
    auto text = readFile(file);
    if (!text) return tl::unexpected(text.error());
    policy_files.emplace_back(label(file), std::move(*text));
  }
  const auto bindings_path = dir / "bindings.json";
  if (!std::filesystem::exists(bindings_path, ec)) {
    return makeError(fmt::format("{}: missing (it says which users and groups get which "
                                 "policies; docs/iam.md)",
                                 label(bindings_path)));
  }
  auto bindings_text = readFile(bindings_path);
  if (!bindings_text) return tl::unexpected(bindings_text.error());
  return parse(policy_files, label(bindings_path), *bindings_text);
}

std::vector<const IamPolicy*> IamConfig::attachedTo(const Principal& principal) const {
  // The policies attached to any of the caller's names, each once.
  std::vector<const IamPolicy*> attached;
  for (const auto& binding : bindings_) {
    if (std::find(principal.names.begin(), principal.names.end(), binding.principal) ==
        principal.names.end())
      continue;
    for (const auto& name : binding.policies) {
      for (const auto& policy : policies_) {
        if (policy.name == name &&
            std::find(attached.begin(), attached.end(), &policy) == attached.end()) {
          attached.push_back(&policy);
        }
      }
    }
  }
  return attached;
}

bool IamConfig::mayAttempt(const Principal& principal, const std::string& action) const {
  for (const IamPolicy* policy : attachedTo(principal)) {
    for (const auto& st : policy->statements) {
      if (st.allow && std::any_of(st.actions.begin(), st.actions.end(), [&](const std::string& a) {
            return globMatch(a, action, true);
          })) {
        return true;
      }
    }
  }
  return false;
}

Decision IamConfig::evaluate(const Principal& principal,
                             const std::vector<Permission>& needed) const {
  const std::vector<const IamPolicy*> attached = attachedTo(principal);
  Decision decision;
  // Nothing to check is not a licence: an action that names no permission is a bug, and fails
  // closed.
  if (needed.empty()) {
    decision.reason = "the request names no permission to check";
    return decision;
  }
  // An explicit Deny of any permission is the answer, whatever else is or is not allowed: it
  // is the more useful message (the caller cannot fix it by asking for more rights).
  for (const auto& permission : needed) {
    for (const IamPolicy* policy : attached) {
      for (const auto& st : policy->statements) {
        if (!st.allow && statementMatches(st, permission)) {
          decision.refused = permission;
          decision.reason =
              fmt::format("explicitly denied by policy {} ({})", policy->name, st.where);
          return decision;
        }
      }
    }
  }
  for (const auto& permission : needed) {
    bool allowed = false;
    for (const IamPolicy* policy : attached) {
      for (const auto& st : policy->statements) {
        if (st.allow && statementMatches(st, permission)) {
          allowed = true;
          break;
        }
      }
      if (allowed) break;
    }
    if (!allowed) {
      decision.refused = permission;
      decision.reason =
          attached.empty()
              ? fmt::format("no policy is attached to {} or its groups", principal.display)
              : fmt::format("no policy attached to {} allows it", principal.display);
      return decision;
    }
  }
  decision.allowed = true;
  return decision;
}

}  // namespace vpcguard::api
