#include "daemon/config_loader.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include "translator/defaults.h"
#include "translator/ip.h"
#include "translator/validate.h"

namespace vpcguard::config {
namespace {

namespace fs = std::filesystem;
using model::SourceLocation;
using Keys = std::initializer_list<std::string_view>;

std::string at(const std::string& prefix, size_t index) {
  return prefix + "[" + std::to_string(index) + "]";
}

std::string typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    default:
      return "nothing";
  }
}

// Levenshtein distance, for "did you mean" hints on misspelled field names.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A CIDR/address that could not be parsed is stored as this, with its path reported, so indices
// in the model keep matching the paths in the file.
Cidr placeholderCidr(IpFamily family) {
  Cidr c;
  c.address.family = family;
  c.prefix_len = c.address.bitWidth();
  return c;
}

// Exactly six pairs of hex digits separated by colons. canonicalMac() alone would let sscanf
// accept signs and blanks ("-1:..."), and hand back something that is not a MAC.
bool macSyntaxOk(std::string_view s) {
  if (s.size() != 17) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const bool ok = i % 3 == 2 ? s[i] == ':' : std::isxdigit(static_cast<unsigned char>(s[i])) != 0;
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Text with a NUL or another control character is never an address; inet_pton would stop at a
// NUL and accept the part before it.
bool hasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// toml++ 3.3 reaches __builtin_unreachable() (undefined behaviour; found by the fuzzer) when it
// meets some non-ASCII characters outside strings, e.g. a stray 'é' where a key should be. TOML
// allows non-ASCII text only inside strings and comments, so such a document is wrong anyway: find
// the first such character with a small scanner of TOML's string and comment syntax, and report
// it without handing the document to toml++. Returns {line, column} (columns count characters,
// as toml++ does), or nothing.
std::optional<std::pair<int, int>> strayNonAscii(std::string_view text) {
  enum class State { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  State state = State::kCode;
  int line = 1;
  int column = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    if ((byte & 0xC0) != 0x80) {
      ++column;  // not a UTF-8 continuation byte: a new character
    }
    if (c == '\n') {
      ++line;
      column = 0;
      // Single-line strings and comments end here (an unterminated string is toml++'s to report).
      if (state == State::kComment || state == State::kBasic || state == State::kLiteral) {
        state = State::kCode;
      }
      continue;
    }
    const bool triple = text.substr(i, 3) == std::string_view(std::string(3, c));
    switch (state) {
      case State::kCode:
        if (byte >= 0x80) {
          return std::pair{line, std::max(column, 1)};  // a stray continuation byte: column 1
        }
        if (c == '#') {
          state = State::kComment;
        } else if (c == '"' || c == '\'') {
          if (triple) {
            state = c == '"' ? State::kMultiBasic : State::kMultiLiteral;
            i += 2;
            column += 2;
          } else {
            state = c == '"' ? State::kBasic : State::kLiteral;
          }
        }
        break;
      case State::kComment:
        break;
      case State::kBasic:
      case State::kMultiBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;  // the escaped character (a continuation byte is not counted as a column)
          if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
            ++column;
          }
        } else if (c == '"' && (state == State::kBasic || triple)) {
          if (state == State::kMultiBasic) {
            i += 2;
            column += 2;
          }
          state = State::kCode;
        }
        break;
      case State::kLiteral:
      case State::kMultiLiteral:
        if (c == '\'' && (state == State::kLiteral || triple)) {
          if (state == State::kMultiLiteral) {
            i += 2;
            column += 2;
          }
          state = State::kCode;
        }
        break;
    }
  }
  return std::nullopt;
}

const char* familyName(IpFamily f) { return f == IpFamily::kV4 ? "IPv4" : "IPv6"; }

class Loader {
 public:
  // Without `record_locations`, Policy::field_locations stays empty: a load that finds no problem
  // never reads it (validation uses it only to place its diagnostics), and building it is about
  // a tenth of a large file's parse (one map entry per field, keyed by its whole path).
  explicit Loader(bool record_locations = true) : record_locations_(record_locations) {}

  void addDocument(const Document& doc) {
    file_ = doc.name;
    if (auto at_char = strayNonAscii(doc.text)) {
      error(SourceLocation{file_, at_char->first, at_char->second}, "",
            "TOML syntax error: non-ASCII character outside a string or comment",
            "TOML allows non-ASCII text only in \"quoted strings\" and # comments");
      out_.complete = false;
      return;
    }
    toml::table root;
    try {
      root = toml::parse(std::string_view(doc.text), std::string_view(doc.name));
    } catch (const toml::parse_error& e) {
      error(loc(e.source()), "", "TOML syntax error: " + std::string(e.description()),
            "fix the TOML syntax at this position");
      out_.complete = false;
      return;
    } catch (const std::exception& e) {
      error(SourceLocation{file_, 1, 1}, "", std::string("cannot parse the file: ") + e.what(),
            "is this a TOML file?");
      out_.complete = false;
      return;
    }
    if (first_file_.empty()) {
      first_file_ = doc.name;
    }
    walkRoot(root);
  }

  ParseOutput finish() {
    if (!vpc_seen_ && out_.complete) {
      error(SourceLocation{first_file_.empty() ? file_ : first_file_, 1, 1}, "vpc",
            "no [vpc] table in the configuration",
            "add [vpc] with id and cidr_blocks to one of the files");
    }
    return std::move(out_);
  }

  // One document's result on its own, for merging with others (PolicyLoader): no finish(), so a
  // file without [vpc] is not an error here.
  struct Fragment {
    ParseOutput parsed;
    bool has_vpc = false;
    bool has_quotas = false;
  };
  Fragment takeFragment() && {
    return Fragment{std::move(out_), vpc_at_.has_value(), quotas_at_.has_value()};
  }

 private:
  // --- plumbing ------------------------------------------------------------------------------
  [[nodiscard]] SourceLocation loc(const toml::source_region& r) const {
    if (r.begin.line == 0) {
      return SourceLocation{file_, 1, 1};  // toml++ gives implicit tables no position
    }
    return SourceLocation{file_, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }

  void error(SourceLocation where, const std::string& path, std::string message, std::string hint) {
    out_.diagnostics.push_back(
        Diagnostic{std::move(where), path, std::move(message), std::move(hint)});
    if (!path.empty()) {
      out_.reported_paths.insert(path);
    }
  }

  void record(const std::string& path, const toml::node& node) {
    if (record_locations_) {
      out_.policy.field_locations[path] = loc(node.source());
    }
  }
  void record(const std::string& path, const SourceLocation& where) {
    if (record_locations_) {
      out_.policy.field_locations[path] = where;
    }
  }

  // Reports keys not in `known`; records where each known one was written.
  void checkKeys(const toml::table& table, const std::string& path, Keys known) {
    for (auto&& [key, value] : table) {
      const std::string_view name = key.str();
      const bool is_known = std::find(known.begin(), known.end(), name) != known.end();
      if (is_known && !record_locations_) {
        continue;
      }
      const std::string field = path.empty() ? std::string(name) : path + "." + std::string(name);
      if (is_known) {
        record(field, value);
        continue;
      }
      std::string hint;
      size_t best = 3;
      for (std::string_view k : known) {
        const size_t d = editDistance(name, k);
        if (d < best) {
          best = d;
          hint = "did you mean '" + std::string(k) + "'?";
        }
      }
      if (hint.empty()) {
        hint = "known fields here:";
        for (std::string_view k : known) {
          hint += " " + std::string(k);
        }
      }
      error(loc(key.source()), field, "unknown field '" + std::string(name) + "'", hint);
    }
  }

  // The node under `key`, or nullptr (reporting it when required).
  const toml::node* get(const toml::table& table, std::string_view key, const std::string& path,
                        bool required) {
    const toml::node* node = table.get(key);
    if (node == nullptr && required) {
      error(loc(table.source()), path + "." + std::string(key),
            "missing required field '" + std::string(key) + "'",
            "add " + std::string(key) + " = ... to this table");
    }
    return node;
  }

  void wrongType(const toml::node& node, const std::string& path, const std::string& expected,
                 const std::string& hint) {
    error(loc(node.source()), path, "expected " + expected + ", found " + typeName(node), hint);
  }

  std::optional<std::string> str(const toml::node* node, const std::string& path) {
    if (node == nullptr) {
      return std::nullopt;
    }
    if (const auto* s = node->as_string()) {
      return s->get();
    }
    wrongType(*node, path, "a string", "write it in double quotes");
    return std::nullopt;
  }
  std::optional<std::string> str(const toml::table& t, std::string_view key,
                                 const std::string& path, bool required) {
    return str(get(t, key, path, required), path + "." + std::string(key));
  }

  std::optional<int> integer(const toml::node* node, const std::string& path) {
    if (node == nullptr) {
      return std::nullopt;
    }
    const auto* i = node->as_integer();
    if (i == nullptr) {
      wrongType(*node, path, "an integer", "write a number without quotes");
      return std::nullopt;
    }
    const int64_t v = i->get();
    if (v < INT_MIN || v > INT_MAX) {
      error(loc(node->source()), path, "value " + std::to_string(v) + " is out of range",
            "use a smaller number");
      return std::nullopt;
    }
    return static_cast<int>(v);
  }
  std::optional<int> integer(const toml::table& t, std::string_view key, const std::string& path,
                             bool required) {
    return integer(get(t, key, path, required), path + "." + std::string(key));
  }

  std::optional<bool> boolean(const toml::table& t, std::string_view key, const std::string& path) {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    if (const auto* b = node->as_boolean()) {
      return b->get();
    }
    wrongType(*node, path + "." + std::string(key), "true or false", "write true or false");
    return std::nullopt;
  }

  // Parses a CIDR of the given family (any family when none is given). On error, reports it and
  // returns a placeholder.
  Cidr cidr(const toml::node& node, const std::string& path, std::optional<IpFamily> family) {
    const IpFamily placeholder = family.value_or(IpFamily::kV4);
    auto text = str(&node, path);
    if (!text) {
      return placeholderCidr(placeholder);
    }
    auto c = hasControlChars(*text)
                 ? makeError("not a valid CIDR block (it contains control characters)")
                 : Cidr::parse(*text);
    if (!c) {
      const char* example = !family                   ? "10.0.1.0/24 or 2600:1f18:abcd:1201::/64"
                            : family == IpFamily::kV4 ? "10.0.1.0/24"
                                                      : "2600:1f18:abcd:1201::/64";
      error(loc(node.source()), path, c.error().message,
            std::string("write a network address and prefix length, e.g. ") + example);
      return placeholderCidr(placeholder);
    }
    if (family && c->family() != *family) {
      error(loc(node.source()), path, "'" + *text + "' is not an " + familyName(*family) + " block",
            family == IpFamily::kV4 ? "use the IPv6 field for IPv6 blocks"
                                    : "use the IPv4 field for IPv4 blocks");
      return placeholderCidr(placeholder);
    }
    return *c;
  }

  // An address of the given family (any family when none is given); a placeholder on error.
  IpAddress address(const toml::node& node, const std::string& path,
                    std::optional<IpFamily> family) {
    IpAddress placeholder;
    placeholder.family = family.value_or(IpFamily::kV4);
    auto text = str(&node, path);
    if (!text) {
      return placeholder;
    }
    auto a = hasControlChars(*text)
                 ? makeError("not a valid address (it contains control characters)")
                 : IpAddress::parse(*text);
    if (!a) {
      error(loc(node.source()), path, a.error().message,
            family == IpFamily::kV6 ? "e.g. 2600:1f18:abcd:1201::10" : "e.g. 10.0.1.10");
      return placeholder;
    }
    if (!family) {
      return *a;
    }
    if (a->family != *family) {
      error(loc(node.source()), path,
            "'" + *text + "' is not an " + familyName(*family) + " address",
            family == IpFamily::kV4 ? "IPv6 addresses go in ipv6_addresses"
                                    : "IPv4 addresses go in private_ip_addresses");
      return placeholder;
    }
    return *a;
  }

  // The elements of an array field (reporting a non-array); each element is recorded.
  std::vector<const toml::node*> array(const toml::table& t, std::string_view key,
                                       const std::string& path, bool required) {
    std::vector<const toml::node*> out;
    const std::string field = path + "." + std::string(key);
    const toml::node* node = get(t, key, path, required);
    if (node == nullptr) {
      return out;
    }
    const auto* arr = node->as_array();
    if (arr == nullptr) {
      wrongType(*node, field, "an array", "write [ ... ]");
      return out;
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::node& el = *arr->get(i);
      record(at(field, i), el);
      out.push_back(&el);
    }
    return out;
  }

  std::vector<std::string> strings(const toml::table& t, std::string_view key,
                                   const std::string& path) {
    std::vector<std::string> out;
    const std::string field = path + "." + std::string(key);
    const auto nodes = array(t, key, path, false);
    for (size_t i = 0; i < nodes.size(); ++i) {
      out.push_back(str(nodes[i], at(field, i)).value_or(""));
    }
    return out;
  }

  // Tables of an array-of-tables field ([[subnets]] or subnets = [{...}]); nullptr elements
  // (reported) keep the indices aligned.
  std::vector<const toml::table*> tables(const toml::node& node, const std::string& path) {
    std::vector<const toml::table*> out;
    const auto* arr = node.as_array();
    if (arr == nullptr) {
      wrongType(node, path, "an array of tables", "write [[...]] sections, or [{ ... }, { ... }]");
      return out;
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::node& el = *arr->get(i);
      const auto* t = el.as_table();
      if (t == nullptr) {
        wrongType(el, at(path, i), "a table", "write { key = value, ... }");
      }
      out.push_back(t);
    }
    return out;
  }

  // AWS accepts protocol names and numbers, numbers also as strings ("6").
  std::optional<int> protocol(const toml::table& t, std::string_view key, const std::string& path,
                              bool required = true) {
    const std::string field = path + "." + std::string(key);
    const toml::node* node = get(t, key, path, required);
    if (node == nullptr) {
      return std::nullopt;
    }
    constexpr const char* kHint = "use tcp, udp, icmp, icmpv6, all, or a number 0-255 (-1 = all)";
    if (const auto* i = node->as_integer()) {
      if (i->get() < -1 || i->get() > 255) {
        error(loc(node->source()), field,
              "protocol " + std::to_string(i->get()) + " is out of range", kHint);
        return std::nullopt;
      }
      return static_cast<int>(i->get());
    }
    const auto* s = node->as_string();
    if (s == nullptr) {
      wrongType(*node, field, "a protocol name or number", kHint);
      return std::nullopt;
    }
    const std::string name = lower(s->get());
    static const std::pair<std::string_view, int> kNames[] = {
        {"tcp", model::kProtoTcp},       {"udp", model::kProtoUdp}, {"icmp", model::kProtoIcmp},
        {"icmpv6", model::kProtoIcmpv6}, {"all", model::kProtoAll}, {"-1", model::kProtoAll},
    };
    for (const auto& [n, number] : kNames) {
      if (name == n) {
        return number;
      }
    }
    if (!name.empty() && name.size() <= 3 &&
        std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(c) != 0; })) {
      const int number = std::stoi(name);
      if (number <= 255) {
        return number;
      }
    }
    error(loc(node->source()), field, "unknown protocol '" + s->get() + "'", kHint);
    return std::nullopt;
  }

  // --- the document ------------------------------------------------------------------------
  void walkRoot(const toml::table& root) {
    // The arrays of tables at the top level and the parser of one element of each.
    using ElementParser = void (Loader::*)(const toml::table*);
    static constexpr std::pair<std::string_view, ElementParser> kArrays[] = {
        {"subnets", &Loader::parseSubnet},
        {"network_interfaces", &Loader::parseInterface},
        {"security_groups", &Loader::parseGroup},
        {"prefix_lists", &Loader::parsePrefixList},
        {"network_acls", &Loader::parseAcl},
        {"flow_logs", &Loader::parseFlowLog},
        {"traffic_mirror_targets", &Loader::parseMirrorTarget},
        {"traffic_mirror_filters", &Loader::parseMirrorFilter},
        {"traffic_mirror_sessions", &Loader::parseMirrorSession},
        {"port_mirrors", &Loader::parsePortMirror},
    };
    checkKeys(root, "",
              {"vpc", "subnets", "network_interfaces", "security_groups", "prefix_lists",
               "network_acls", "flow_logs", "traffic_mirror_targets", "traffic_mirror_filters",
               "traffic_mirror_sessions", "port_mirrors", "quotas"});
    for (auto&& [key, node] : root) {
      const std::string_view name = key.str();
      if (name == "vpc" || name == "quotas") {
        vpc_seen_ = vpc_seen_ || name == "vpc";  // a wrong [vpc] is reported once, not as missing
        const auto* t = node.as_table();
        if (t == nullptr) {
          wrongType(node, std::string(name), "a table", "write [" + std::string(name) + "]");
          continue;
        }
        auto& seen = name == "vpc" ? vpc_at_ : quotas_at_;
        if (seen) {
          error(loc(key.source()), std::string(name),
                "[" + std::string(name) + "] is already defined at " + seen->file + ":" +
                    std::to_string(seen->line),
                "when merging a directory, define [" + std::string(name) + "] in one file only");
          continue;
        }
        seen = loc(t->source());
        if (name == "vpc") {
          parseVpc(*t);
        } else {
          parseQuotas(*t);
        }
        continue;
      }
      for (const auto& [array, parse] : kArrays) {
        if (name != array) {
          continue;
        }
        for (const auto* t : tables(node, std::string(array))) {
          (this->*parse)(t);
        }
      }
    }
  }

  void parseVpc(const toml::table& t) {
    const std::string path = "vpc";
    checkKeys(
        t, path,
        {"id", "account_id", "region", "cidr_blocks", "ipv6_cidr_blocks", "strict_revocation"});
    auto& vpc = out_.policy.vpc;
    vpc.location = loc(t.source());
    record(path, vpc.location);
    vpc.id = str(t, "id", path, true).value_or("");
    vpc.account_id = str(t, "account_id", path, false).value_or("");
    vpc.region = str(t, "region", path, false).value_or("");
    const auto v4 = array(t, "cidr_blocks", path, true);
    for (size_t i = 0; i < v4.size(); ++i) {
      vpc.cidr_blocks.push_back(cidr(*v4[i], at(path + ".cidr_blocks", i), IpFamily::kV4));
    }
    const auto v6 = array(t, "ipv6_cidr_blocks", path, false);
    for (size_t i = 0; i < v6.size(); ++i) {
      vpc.ipv6_cidr_blocks.push_back(
          cidr(*v6[i], at(path + ".ipv6_cidr_blocks", i), IpFamily::kV6));
    }
    vpc.strict_revocation = boolean(t, "strict_revocation", path).value_or(false);
  }

  void parseQuotas(const toml::table& t) {
    const std::string path = "quotas";
    checkKeys(t, path,
              {"rules_per_security_group", "security_groups_per_interface", "rules_per_interface",
               "rules_per_network_acl", "network_acls_per_vpc", "security_groups_per_vpc",
               "prefix_list_max_entries", "traffic_mirror_sessions_per_interface",
               "traffic_mirror_filter_rules"});
    auto& q = out_.policy.quotas;
    const auto set = [&](std::string_view key, int& field) {
      if (auto v = integer(t, key, path, false)) {
        field = *v;
      }
    };
    set("rules_per_security_group", q.rules_per_security_group);
    set("security_groups_per_interface", q.security_groups_per_interface);
    set("rules_per_interface", q.rules_per_interface);
    set("rules_per_network_acl", q.rules_per_network_acl);
    set("network_acls_per_vpc", q.network_acls_per_vpc);
    set("security_groups_per_vpc", q.security_groups_per_vpc);
    set("prefix_list_max_entries", q.prefix_list_max_entries);
    set("traffic_mirror_sessions_per_interface", q.traffic_mirror_sessions_per_interface);
    set("traffic_mirror_filter_rules", q.traffic_mirror_filter_rules);
  }

  // Every object starts here: the element's path and location. A non-table element (already
  // reported) still gets an empty object so that indices stay aligned.
  template <typename T>
  std::string begin(std::vector<T>& objects, const std::string& prefix, const toml::table* t) {
    const std::string path = at(prefix, objects.size());
    objects.emplace_back();
    if (t != nullptr) {
      objects.back().location = loc(t->source());
      record(path, objects.back().location);
    } else {
      out_.reported_paths.insert(path);
    }
    return path;
  }

  void parseSubnet(const toml::table* t) {
    const std::string path = begin(out_.policy.subnets, "subnets", t);
    if (t == nullptr) {
      return;
    }
    auto& s = out_.policy.subnets.back();
    checkKeys(*t, path, {"id", "cidr_block", "ipv6_cidr_block", "network_acl_id"});
    s.id = str(*t, "id", path, true).value_or("");
    if (const auto* n = get(*t, "cidr_block", path, true)) {
      s.cidr_block = cidr(*n, path + ".cidr_block", IpFamily::kV4);
    } else {
      s.cidr_block = placeholderCidr(IpFamily::kV4);
    }
    if (const auto* n = t->get("ipv6_cidr_block")) {
      s.ipv6_cidr_block = cidr(*n, path + ".ipv6_cidr_block", IpFamily::kV6);
    }
    s.network_acl_id = str(*t, "network_acl_id", path, false).value_or("");
  }

  void parseInterface(const toml::table* t) {
    auto& list = out_.policy.network_interfaces;
    const std::string path = begin(list, "network_interfaces", t);
    if (t == nullptr) {
      return;
    }
    auto& eni = list.back();
    checkKeys(*t, path,
              {"id", "subnet_id", "mac_address", "private_ip_addresses", "ipv6_addresses",
               "security_group_ids", "source_dest_check", "connection_tracking"});
    eni.id = str(*t, "id", path, true).value_or("");
    eni.subnet_id = str(*t, "subnet_id", path, true).value_or("");
    const std::string mac_path = path + ".mac_address";
    if (const auto* n = get(*t, "mac_address", path, true)) {
      if (auto text = str(n, mac_path)) {
        auto mac =
            macSyntaxOk(*text)
                ? canonicalMac(*text)
                : makeError("'" + *text + "' is not a MAC address (expected aa:bb:cc:dd:ee:ff)");
        if (mac) {
          eni.mac_address = *mac;
        } else {
          eni.mac_address = *text;
          error(loc(n->source()), mac_path, mac.error().message, "e.g. 02:00:00:00:01:0a");
        }
      }
    }
    const auto v4 = array(*t, "private_ip_addresses", path, true);
    for (size_t i = 0; i < v4.size(); ++i) {
      eni.private_ip_addresses.push_back(
          address(*v4[i], at(path + ".private_ip_addresses", i), IpFamily::kV4));
    }
    const auto v6 = array(*t, "ipv6_addresses", path, false);
    for (size_t i = 0; i < v6.size(); ++i) {
      eni.ipv6_addresses.push_back(address(*v6[i], at(path + ".ipv6_addresses", i), IpFamily::kV6));
    }
    eni.security_group_ids = strings(*t, "security_group_ids", path);
    eni.source_dest_check = boolean(*t, "source_dest_check", path).value_or(true);
    if (const auto* n = t->get("connection_tracking")) {
      const std::string ct_path = path + ".connection_tracking";
      const auto* ct = n->as_table();
      if (ct == nullptr) {
        wrongType(*n, ct_path, "a table", "write { tcp_established_timeout = 3600, ... }");
        return;
      }
      checkKeys(*ct, ct_path, {"tcp_established_timeout", "udp_timeout", "udp_stream_timeout"});
      eni.connection_tracking.tcp_established_timeout =
          integer(*ct, "tcp_established_timeout", ct_path, false);
      eni.connection_tracking.udp_timeout = integer(*ct, "udp_timeout", ct_path, false);
      eni.connection_tracking.udp_stream_timeout =
          integer(*ct, "udp_stream_timeout", ct_path, false);
    }
  }

  void parseGroup(const toml::table* t) {
    auto& list = out_.policy.security_groups;
    const std::string path = begin(list, "security_groups", t);
    if (t == nullptr) {
      return;
    }
    auto& g = list.back();
    checkKeys(*t, path, {"id", "name", "description", "ingress", "egress"});
    g.id = str(*t, "id", path, true).value_or("");
    g.name = str(*t, "name", path, false).value_or(g.id);
    g.description = str(*t, "description", path, false).value_or("");
    g.is_default = g.name == model::kDefaultSecurityGroupName;
    if (const auto* n = t->get("ingress")) {
      parseRules(*n, path + ".ingress", g.ingress);
    }
    if (const auto* n = t->get("egress")) {
      parseRules(*n, path + ".egress", g.egress);
    } else {
      // AWS gives a new group an allow-all egress; `egress = []` is how to say "none".
      g.egress = allowAllEgressRules(g.location);
    }
  }

  void parseRules(const toml::node& node, const std::string& prefix,
                  std::vector<model::SecurityGroupRule>& rules) {
    const auto list = tables(node, prefix);
    for (const auto* t : list) {
      const std::string path = at(prefix, rules.size());
      rules.emplace_back();
      auto& r = rules.back();
      if (t == nullptr) {
        out_.reported_paths.insert(path);
        continue;
      }
      r.location = loc(t->source());
      record(path, r.location);
      checkKeys(*t, path,
                {"ip_protocol", "from_port", "to_port", "cidr_ipv4", "cidr_ipv6",
                 "referenced_group_id", "prefix_list_id", "description"});
      if (auto p = protocol(*t, "ip_protocol", path)) {
        r.ip_protocol = *p;
      } else {
        out_.reported_paths.insert(path + ".ip_protocol");
      }
      r.description = str(*t, "description", path, false).value_or("");
      const auto from = integer(*t, "from_port", path, false);
      const auto to = integer(*t, "to_port", path, false);
      const bool from_given = t->get("from_port") != nullptr;
      const bool to_given = t->get("to_port") != nullptr;
      if (from_given != to_given) {
        // Both fields are covered: validation must not add "needs from_port and to_port".
        out_.reported_paths.insert(path + ".from_port");
        error(r.location, path + (from_given ? ".to_port" : ".from_port"),
              std::string("missing ") + (from_given ? "to_port" : "from_port"),
              "give both from_port and to_port");
      } else if (from && to) {
        if (r.ip_protocol == model::kProtoTcp || r.ip_protocol == model::kProtoUdp) {
          r.ports = model::PortRange{*from, *to};
        } else if (r.ip_protocol == model::kProtoIcmp || r.ip_protocol == model::kProtoIcmpv6) {
          r.icmp = model::IcmpTypeCode{*from, *to};
        } else if (*from != -1 || *to != -1) {
          // -1/-1 is how AWS itself writes "no ports"; anything else is kept for validation
          // to report.
          r.ports = model::PortRange{*from, *to};
        }
      }
      if (!from_given &&
          (r.ip_protocol == model::kProtoIcmp || r.ip_protocol == model::kProtoIcmpv6)) {
        r.icmp = model::IcmpTypeCode{-1, -1};
      }
      parsePeer(*t, path, r);
    }
  }

  void parsePeer(const toml::table& t, const std::string& path, model::SecurityGroupRule& r) {
    constexpr std::string_view kPeers[] = {"cidr_ipv4", "cidr_ipv6", "referenced_group_id",
                                           "prefix_list_id"};
    std::vector<std::string_view> given;
    for (auto k : kPeers) {
      if (t.get(k) != nullptr) {
        given.push_back(k);
      }
    }
    if (given.empty()) {
      error(r.location, path, "rule has no peer",
            "give exactly one of cidr_ipv4, cidr_ipv6, referenced_group_id, prefix_list_id");
      r.peer = placeholderCidr(IpFamily::kV4);
      return;
    }
    if (given.size() > 1) {
      const toml::node& second = *t.get(given[1]);
      error(loc(second.source()), path + "." + std::string(given[1]),
            "rule has both " + std::string(given[0]) + " and " + std::string(given[1]),
            "a rule has exactly one peer; write two rules");
    }
    const std::string field = path + "." + std::string(given[0]);
    const toml::node& node = *t.get(given[0]);
    if (given[0] == "cidr_ipv4" || given[0] == "cidr_ipv6") {
      r.peer = cidr(node, field, given[0] == "cidr_ipv4" ? IpFamily::kV4 : IpFamily::kV6);
    } else if (given[0] == "referenced_group_id") {
      auto id = str(&node, field);
      r.peer = model::GroupRef{id.value_or("")};
    } else {
      auto id = str(&node, field);
      r.peer = model::PrefixListRef{id.value_or("")};
    }
  }

  void parsePrefixList(const toml::table* t) {
    auto& list = out_.policy.prefix_lists;
    const std::string path = begin(list, "prefix_lists", t);
    if (t == nullptr) {
      return;
    }
    auto& pl = list.back();
    checkKeys(*t, path, {"id", "name", "max_entries", "entries"});
    pl.id = str(*t, "id", path, true).value_or("");
    pl.name = str(*t, "name", path, false).value_or(pl.id);
    if (auto m = integer(*t, "max_entries", path, true)) {
      pl.max_entries = *m;
    } else {
      out_.reported_paths.insert(path + ".max_entries");
    }
    const auto entries = array(*t, "entries", path, false);
    for (size_t i = 0; i < entries.size(); ++i) {
      const std::string epath = at(path + ".entries", i);
      auto text = str(entries[i], epath);
      auto c = !text ? makeError("not a string")
               : hasControlChars(*text)
                   ? makeError("not a valid CIDR block (it contains control characters)")
                   : Cidr::parse(*text);
      if (!c) {
        if (text) {
          error(loc(entries[i]->source()), epath, c.error().message,
                "e.g. 203.0.113.0/24 or 2001:db8::/32");
        }
        pl.entries.push_back(placeholderCidr(IpFamily::kV4));
        continue;
      }
      pl.entries.push_back(*c);
    }
  }

  void parseAcl(const toml::table* t) {
    auto& list = out_.policy.network_acls;
    const std::string path = begin(list, "network_acls", t);
    if (t == nullptr) {
      return;
    }
    auto& acl = list.back();
    checkKeys(*t, path, {"id", "is_default", "entries"});
    acl.id = str(*t, "id", path, true).value_or("");
    acl.is_default = boolean(*t, "is_default", path).value_or(false);
    const auto* n = t->get("entries");
    if (n == nullptr) {
      return;  // a custom NACL without entries denies everything, as in AWS
    }
    for (const auto* e : tables(*n, path + ".entries")) {
      parseAclEntry(e, path + ".entries", acl.entries);
    }
  }

  void parseAclEntry(const toml::table* t, const std::string& prefix,
                     std::vector<model::NetworkAclEntry>& entries) {
    const std::string path = begin(entries, prefix, t);
    if (t == nullptr) {
      return;
    }
    auto& e = entries.back();
    checkKeys(*t, path,
              {"rule_number", "egress", "protocol", "rule_action", "cidr_block", "ipv6_cidr_block",
               "port_range", "icmp_type_code"});
    if (auto n = integer(*t, "rule_number", path, true)) {
      e.rule_number = *n;
    } else {
      out_.reported_paths.insert(path + ".rule_number");
    }
    e.egress = boolean(*t, "egress", path).value_or(false);
    if (auto p = protocol(*t, "protocol", path)) {
      e.protocol = *p;
    } else {
      out_.reported_paths.insert(path + ".protocol");
    }
    if (auto action = choice(*t, "rule_action", path, {"allow", "deny"},
                             "write rule_action = \"allow\" or \"deny\"")) {
      e.allow = *action == 0;
    }
    const auto* v4 = t->get("cidr_block");
    const auto* v6 = t->get("ipv6_cidr_block");
    if (v4 != nullptr && v6 != nullptr) {
      error(loc(v6->source()), path + ".ipv6_cidr_block",
            "entry has both cidr_block and ipv6_cidr_block", "write two entries, one per family");
    }
    if (v4 != nullptr) {
      e.cidr = cidr(*v4, path + ".cidr_block", IpFamily::kV4);
    } else if (v6 != nullptr) {
      e.cidr = cidr(*v6, path + ".ipv6_cidr_block", IpFamily::kV6);
    } else {
      error(e.location, path + ".cidr_block", "entry has neither cidr_block nor ipv6_cidr_block",
            "e.g. cidr_block = \"0.0.0.0/0\"");
      e.cidr = placeholderCidr(IpFamily::kV4);
    }
    if (auto range = intPair(*t, "port_range", path, {"from", "to"},
                             "write port_range = { from = 1024, to = 65535 }")) {
      e.port_range = model::PortRange{range->first, range->second};
    }
    if (auto tc = intPair(*t, "icmp_type_code", path, {"type", "code"},
                          "write icmp_type_code = { type = -1, code = -1 }")) {
      e.icmp_type_code = model::IcmpTypeCode{tc->first, tc->second};
    }
  }

  // An optional inline table of two required integers, e.g. port_range = { from = 1, to = 2 }:
  // both values, or nothing (reported unless the table is absent).
  std::optional<std::pair<int, int>> intPair(const toml::table& t, std::string_view key,
                                             const std::string& path,
                                             std::pair<std::string_view, std::string_view> names,
                                             const std::string& hint) {
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      return std::nullopt;
    }
    const std::string field = path + "." + std::string(key);
    const auto* table = n->as_table();
    if (table == nullptr) {
      wrongType(*n, field, "a table", hint);
      return std::nullopt;
    }
    checkKeys(*table, field, {names.first, names.second});
    auto first = integer(*table, names.first, field, true);
    auto second = integer(*table, names.second, field, true);
    if (!first || !second) {
      return std::nullopt;
    }
    return std::pair{*first, *second};
  }

  // A required string that must be one of `choices` (in any case, as AWS accepts them): the
  // index of the choice, or nothing (reported).
  std::optional<size_t> choice(const toml::table& t, std::string_view key, const std::string& path,
                               std::initializer_list<std::string_view> choices,
                               const std::string& hint) {
    const toml::node* n = get(t, key, path, true);
    const std::string field = path + "." + std::string(key);
    auto text = str(n, field);
    if (!text) {
      return std::nullopt;
    }
    std::string names;
    size_t index = 0;
    for (std::string_view c : choices) {
      if (lower(*text) == lower(c)) {
        return index;
      }
      names += (index == 0 ? "" : index + 1 == choices.size() ? " or " : ", ") + std::string(c);
      ++index;
    }
    error(loc(n->source()), field, std::string(key) + " must be " + names + ", not '" + *text + "'",
          hint);
    return std::nullopt;
  }

  // AWS CreateFlowLogs. Only what the model cannot hold is checked here (traffic_type is an
  // enum); the rest (id form, resource, destination, format, interval, collector) is
  // validation's, since it is about the model, not the file.
  void parseFlowLog(const toml::table* t) {
    auto& list = out_.policy.flow_logs;
    const std::string path = begin(list, "flow_logs", t);
    if (t == nullptr) {
      return;
    }
    auto& fl = list.back();
    checkKeys(*t, path,
              {"id", "resource_id", "traffic_type", "log_destination", "log_format",
               "max_aggregation_interval", "ipfix_collector"});
    fl.id = str(*t, "id", path, true).value_or("");
    fl.resource_id = str(*t, "resource_id", path, true).value_or("");
    constexpr model::FlowLogTrafficType kTypes[] = {model::FlowLogTrafficType::kAccept,
                                                    model::FlowLogTrafficType::kReject,
                                                    model::FlowLogTrafficType::kAll};
    if (auto type = choice(*t, "traffic_type", path, {"ACCEPT", "REJECT", "ALL"},
                           "ACCEPT records accepted traffic, REJECT rejected traffic, ALL both")) {
      fl.traffic_type = kTypes[*type];
    }
    // A field that cannot be read is in reported_paths already (error() puts it there), so
    // validation skips it.
    fl.log_destination = str(*t, "log_destination", path, true).value_or("");
    fl.log_format = str(*t, "log_format", path, false).value_or("");
    if (auto interval = integer(*t, "max_aggregation_interval", path, false)) {
      fl.max_aggregation_interval = *interval;
    }
    fl.ipfix_collector = str(*t, "ipfix_collector", path, false);
  }

  // Traffic mirroring (AWS CreateTrafficMirrorTarget / -Filter / -FilterRule / -Session) and
  // vpcguard's port mirrors. As for flow logs, only what the model cannot hold is checked here
  // (rule_action is a bool, a VNI unsigned); references, ranges and quotas are validation's.
  void parseMirrorTarget(const toml::table* t) {
    auto& list = out_.policy.traffic_mirror_targets;
    const std::string path = begin(list, "traffic_mirror_targets", t);
    if (t == nullptr) {
      return;
    }
    auto& target = list.back();
    checkKeys(*t, path, {"id", "network_interface_id", "vxlan_remote_ip", "description"});
    target.id = str(*t, "id", path, true).value_or("");
    if (t->get("network_interface_id") != nullptr) {
      // Given but unreadable (reported) still counts as given: not also "neither is given".
      target.network_interface_id = str(*t, "network_interface_id", path, false).value_or("");
    }
    if (const auto* n = t->get("vxlan_remote_ip")) {
      // Either family: validation explains why an IPv6 one is refused.
      target.vxlan_remote_ip = address(*n, path + ".vxlan_remote_ip", std::nullopt);
    }
    target.description = str(*t, "description", path, false).value_or("");
  }

  void parseMirrorFilter(const toml::table* t) {
    auto& list = out_.policy.traffic_mirror_filters;
    const std::string path = begin(list, "traffic_mirror_filters", t);
    if (t == nullptr) {
      return;
    }
    auto& filter = list.back();
    checkKeys(*t, path, {"id", "description", "network_services", "ingress_rules", "egress_rules"});
    filter.id = str(*t, "id", path, true).value_or("");
    filter.description = str(*t, "description", path, false).value_or("");
    filter.network_services = strings(*t, "network_services", path);
    parseMirrorRules(*t, "ingress_rules", path, filter.ingress_rules);
    parseMirrorRules(*t, "egress_rules", path, filter.egress_rules);
  }

  void parseMirrorRules(const toml::table& t, std::string_view key, const std::string& path,
                        std::vector<model::TrafficMirrorFilterRule>& rules) {
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      return;  // no rules: this direction mirrors nothing, as in AWS
    }
    const std::string prefix = path + "." + std::string(key);
    for (const auto* r : tables(*n, prefix)) {
      parseMirrorRule(r, prefix, rules);
    }
  }

  void parseMirrorRule(const toml::table* t, const std::string& prefix,
                       std::vector<model::TrafficMirrorFilterRule>& rules) {
    const std::string path = begin(rules, prefix, t);
    if (t == nullptr) {
      return;
    }
    auto& r = rules.back();
    checkKeys(
        *t, path,
        {"rule_number", "rule_action", "protocol", "source_cidr_block", "destination_cidr_block",
         "source_port_range", "destination_port_range", "description"});
    r.rule_number = integer(*t, "rule_number", path, true).value_or(0);
    if (auto action = choice(*t, "rule_action", path, {"accept", "reject"},
                             "write rule_action = \"accept\" (mirror) or \"reject\" (do not)")) {
      r.accept = *action == 0;
    }
    if (auto p = protocol(*t, "protocol", path, false)) {
      r.protocol = *p;  // absent: all protocols, as in AWS
    }
    r.source_cidr_block = requiredCidr(*t, "source_cidr_block", path);
    r.destination_cidr_block = requiredCidr(*t, "destination_cidr_block", path);
    r.source_port_range = portRange(*t, "source_port_range", path);
    r.destination_port_range = portRange(*t, "destination_port_range", path);
    r.description = str(*t, "description", path, false).value_or("");
  }

  Cidr requiredCidr(const toml::table& t, std::string_view key, const std::string& path) {
    if (const auto* n = get(t, key, path, true)) {
      return cidr(*n, path + "." + std::string(key), std::nullopt);
    }
    return placeholderCidr(IpFamily::kV4);
  }

  std::optional<model::PortRange> portRange(const toml::table& t, std::string_view key,
                                            const std::string& path) {
    auto range = intPair(t, key, path, {"from_port", "to_port"},
                         "write " + std::string(key) + " = { from_port = 1024, to_port = 65535 }");
    if (!range) {
      return std::nullopt;
    }
    return model::PortRange{range->first, range->second};
  }

  void parseMirrorSession(const toml::table* t) {
    auto& list = out_.policy.traffic_mirror_sessions;
    const std::string path = begin(list, "traffic_mirror_sessions", t);
    if (t == nullptr) {
      return;
    }
    auto& s = list.back();
    checkKeys(*t, path,
              {"id", "network_interface_id", "traffic_mirror_target_id", "traffic_mirror_filter_id",
               "session_number", "packet_length", "virtual_network_id", "description"});
    s.id = str(*t, "id", path, true).value_or("");
    s.network_interface_id = str(*t, "network_interface_id", path, true).value_or("");
    s.traffic_mirror_target_id = str(*t, "traffic_mirror_target_id", path, true).value_or("");
    s.traffic_mirror_filter_id = str(*t, "traffic_mirror_filter_id", path, true).value_or("");
    s.session_number = integer(*t, "session_number", path, true).value_or(0);
    s.packet_length = integer(*t, "packet_length", path, false);
    s.virtual_network_id = virtualNetworkId(*t, path);
    s.description = str(*t, "description", path, false).value_or("");
  }

  // The model holds a VNI unsigned, so a negative one is reported here; the 24-bit upper bound is
  // validation's (models built in code have one too), in the same words.
  std::optional<uint32_t> virtualNetworkId(const toml::table& t, const std::string& path) {
    const std::string field = path + ".virtual_network_id";
    const toml::node* n = t.get("virtual_network_id");
    const auto vni = integer(n, field);
    if (!vni) {
      return std::nullopt;
    }
    if (*vni < 0) {
      error(loc(n->source()), field,
            "virtual_network_id " + std::to_string(*vni) + " is outside 0..16777215",
            "a VXLAN network identifier has 24 bits; leave it out to have a unique one chosen");
      return std::nullopt;
    }
    return static_cast<uint32_t>(*vni);
  }

  void parsePortMirror(const toml::table* t) {
    auto& list = out_.policy.port_mirrors;
    const std::string path = begin(list, "port_mirrors", t);
    if (t == nullptr) {
      return;
    }
    auto& pm = list.back();
    checkKeys(*t, path, {"id", "network_interface_id", "output_port"});
    pm.id = str(*t, "id", path, true).value_or("");
    pm.network_interface_id = str(*t, "network_interface_id", path, true).value_or("");
    pm.output_port = str(*t, "output_port", path, true).value_or("");
  }

  bool record_locations_ = true;
  ParseOutput out_;
  std::string file_;
  std::string first_file_;
  bool vpc_seen_ = false;
  std::optional<SourceLocation> vpc_at_;
  std::optional<SourceLocation> quotas_at_;
};

Result<std::string> readFile(const fs::path& path) {
  // Read once into a string of the file's size (a config directory at 100k flows is 0.7 MB,
  // read again on every change; a stream copied it twice).
  const auto fail = [&](int error) {
    return makeError("cannot read " + path.string() + ": " +
                     (error != 0 ? std::strerror(error) : "open failed"));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno);
  }
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    text.resize(static_cast<size_t>(st.st_size));
  }
  size_t used = 0;
  for (;;) {
    if (used == text.size()) {
      text.resize(std::max<size_t>(4096, text.size() * 2));  // grew since fstat, or unknown size
    }
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return fail(error);
    }
    if (n == 0) {
      break;
    }
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(used);
  return text;
}

}  // namespace

ParseOutput parseDocuments(const std::vector<Document>& documents) {
  Loader loader;
  for (const auto& doc : documents) {
    loader.addDocument(doc);
  }
  return loader.finish();
}

namespace {

// True when some process has `file` open for writing: F_SETLEASE with F_RDLCK fails with EAGAIN
// then (fcntl(2)). The lease is given back at once. A writer opening the file in between breaks
// it with a signal (SIGIO unless F_SETSIG says otherwise), which must not end the daemon: SIGIO
// is ignored here, as nothing in vpcguard uses it.
bool writerHolds(const std::filesystem::path& file) {
  static const bool sigio_ignored = [] {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    return sigaction(SIGIO, &ignore, nullptr) == 0;
  }();
  if (!sigio_ignored) {
    return false;
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    return false;  // gone or unreadable: the read that follows reports it
  }
  bool writing = false;
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
  } else {
    writing = errno == EAGAIN;  // EACCES, EINVAL: no leases here, nothing known
  }
  ::close(fd);
  return writing;
}

}  // namespace

std::optional<std::filesystem::path> openForWriting(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    return writerHolds(path) ? std::optional<fs::path>(path) : std::nullopt;
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (it->path().extension() == ".toml" && it->is_regular_file(entry_ec)) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    if (writerHolds(file)) {
      return file;
    }
  }
  return std::nullopt;
}

Result<std::vector<Document>> readDocuments(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return makeError(path.string() + ": no such file or directory");
  }
  std::vector<Document> docs;
  if (fs::is_directory(status)) {
    std::vector<fs::path> files;
    fs::directory_iterator it(path, ec);
    if (ec) {
      return makeError("cannot list " + path.string() + ": " + ec.message());
    }
    for (const auto& entry : it) {
      std::error_code entry_ec;
      if (entry.path().extension() == ".toml" && entry.is_regular_file(entry_ec)) {
        files.push_back(entry.path());
      }
    }
    if (files.empty()) {
      return makeError(path.string() + ": directory holds no *.toml files");
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto text = readFile(f);
      if (!text) {
        return tl::unexpected(text.error());
      }
      docs.push_back(Document{f.string(), std::move(*text)});
    }
    return docs;
  }
  if (!fs::is_regular_file(status)) {
    return makeError(path.string() + ": not a regular file or directory");
  }
  auto text = readFile(path);
  if (!text) {
    return tl::unexpected(text.error());
  }
  docs.push_back(Document{path.string(), std::move(*text)});
  return docs;
}

Error LoadError::toError() const {
  if (io) {
    return *io;
  }
  if (diagnostics.empty()) {
    return Error{"invalid configuration"};
  }
  return Error{std::to_string(diagnostics.size()) +
               " error(s) in the configuration; first: " + formatDiagnostic(diagnostics.front())};
}

namespace {

inline constexpr size_t kPolicySizeWhenMergeWasWritten = 520;

// The last step of every load: AWS's defaults filled in (validation passed).
tl::expected<model::Policy, LoadError> resolved(model::Policy policy) {
  const model::SourceLocation vpc_location = policy.vpc.location;
  auto out = resolveDefaults(std::move(policy));
  if (!out) {
    return tl::unexpected(
        LoadError{std::nullopt, {Diagnostic{vpc_location, "", out.error().message, ""}}});
  }
  return std::move(*out);
}

// A policy that parsed without a problem, validated; nullopt when validation finds any.
std::optional<model::Policy> validOrNothing(ParseOutput parsed) {
  if (!parsed.complete || !parsed.diagnostics.empty() ||
      !validatePolicy(parsed.policy, parsed.reported_paths).empty()) {
    return std::nullopt;
  }
  return std::move(parsed.policy);
}

// The load that reports: parsed again recording where every field was written, so that each
// problem names its file, line and column.
tl::expected<model::Policy, LoadError> loadLocated(const std::vector<Document>& documents) {
  ParseOutput parsed = parseDocuments(documents);
  std::vector<Diagnostic> diagnostics = std::move(parsed.diagnostics);
  // With a file that is not even TOML, references into it would all look dangling: report the
  // syntax first.
  if (parsed.complete) {
    auto more = validatePolicy(parsed.policy, parsed.reported_paths);
    diagnostics.insert(diagnostics.end(), std::make_move_iterator(more.begin()),
                       std::make_move_iterator(more.end()));
  }
  if (!diagnostics.empty()) {
    sortDiagnostics(diagnostics);
    return tl::unexpected(LoadError{std::nullopt, std::move(diagnostics)});
  }
  return resolved(std::move(parsed.policy));
}

// The objects of one file, appended to the policy of the files before it (name order), as one
// Loader reading them all would have put them. A field model::Policy gains must be merged here
// too: a policy that silently lost it would still validate. The size check below is the
// reminder (x86-64 libstdc++, which both compilers here use; a new member changes it).
static_assert(sizeof(model::Policy) == kPolicySizeWhenMergeWasWritten,
              "model::Policy changed: merge its new field in appendObjects(), then update "
              "kPolicySizeWhenMergeWasWritten");
void appendObjects(model::Policy& into, const model::Policy& from) {
  const auto append = [](auto& to, const auto& more) {
    to.insert(to.end(), more.begin(), more.end());
  };
  append(into.subnets, from.subnets);
  append(into.network_interfaces, from.network_interfaces);
  append(into.security_groups, from.security_groups);
  append(into.prefix_lists, from.prefix_lists);
  append(into.network_acls, from.network_acls);
  append(into.flow_logs, from.flow_logs);
  append(into.traffic_mirror_targets, from.traffic_mirror_targets);
  append(into.traffic_mirror_filters, from.traffic_mirror_filters);
  append(into.traffic_mirror_sessions, from.traffic_mirror_sessions);
  append(into.port_mirrors, from.port_mirrors);
}

}  // namespace

tl::expected<model::Policy, LoadError> loadPolicyFromDocuments(
    const std::vector<Document>& documents) {
  // Most loads find nothing wrong: those skip recording the field locations, which only a
  // diagnostic reads. A load with a problem is parsed again to place it.
  Loader loader(/*record_locations=*/false);
  for (const auto& doc : documents) {
    loader.addDocument(doc);
  }
  if (auto policy = validOrNothing(loader.finish())) {
    return resolved(std::move(*policy));
  }
  return loadLocated(documents);
}

struct PolicyLoader::CachedFile {
  std::string text;
  model::Policy fragment;  // its objects, parsed without problems, not validated on their own
  bool has_vpc = false;
  bool has_quotas = false;
};

PolicyLoader::PolicyLoader() = default;
PolicyLoader::~PolicyLoader() = default;

tl::expected<model::Policy, LoadError> PolicyLoader::load(const fs::path& path) {
  counts_ = {};
  auto docs = readDocuments(path);
  if (!docs) {
    return tl::unexpected(LoadError{docs.error(), {}});
  }
  return loadDocuments(*docs);
}

tl::expected<model::Policy, LoadError> PolicyLoader::loadDocuments(
    const std::vector<Document>& documents) {
  counts_ = {};
  if (documents.size() == 1) {
    // One file: nothing to reuse when it changes, and keeping it would cost a copy of the whole
    // policy per load (the cached objects into the merged policy).
    cache_.clear();
    counts_.parsed = 1;
    return loadPolicyFromDocuments(documents);
  }
  std::map<std::string, std::shared_ptr<const CachedFile>, std::less<>> next;
  bool clean = true;
  for (const auto& doc : documents) {
    if (next.count(doc.name) != 0) {
      clean = false;  // two documents of one name: not a directory; the one-pass load decides
      continue;
    }
    if (auto it = cache_.find(doc.name); it != cache_.end() && it->second->text == doc.text) {
      ++counts_.reused;
      next.emplace(doc.name, it->second);
      continue;
    }
    ++counts_.parsed;
    Loader loader(/*record_locations=*/false);
    loader.addDocument(doc);
    auto fragment = std::move(loader).takeFragment();
    if (!fragment.parsed.complete || !fragment.parsed.diagnostics.empty()) {
      clean = false;  // not kept: the one-pass load below reports it
      continue;
    }
    next.emplace(doc.name, std::make_shared<const CachedFile>(
                               CachedFile{doc.text, std::move(fragment.parsed.policy),
                                          fragment.has_vpc, fragment.has_quotas}));
  }
  cache_ = std::move(next);

  // [vpc] in exactly one file and [quotas] in at most one, or the one-pass load reports it.
  const auto files_with = [&](bool CachedFile::*member) {
    return std::count_if(cache_.begin(), cache_.end(),
                         [&](const auto& entry) { return (*entry.second).*member; });
  };
  if (clean && files_with(&CachedFile::has_vpc) == 1 && files_with(&CachedFile::has_quotas) <= 1) {
    ParseOutput merged;
    for (const auto& doc : documents) {  // name order, as given
      const CachedFile& file = *cache_.at(doc.name);
      if (file.has_vpc) {
        merged.policy.vpc = file.fragment.vpc;
      }
      if (file.has_quotas) {
        merged.policy.quotas = file.fragment.quotas;
      }
      appendObjects(merged.policy, file.fragment);
    }
    if (auto policy = validOrNothing(std::move(merged))) {
      return resolved(std::move(*policy));
    }
  }
  return loadLocated(documents);
}

tl::expected<model::Policy, LoadError> loadPolicy(const fs::path& path) {
  auto docs = readDocuments(path);
  if (!docs) {
    return tl::unexpected(LoadError{docs.error(), {}});
  }
  return loadPolicyFromDocuments(*docs);
}

tl::expected<model::Policy, int> loadPolicyReporting(const std::filesystem::path& path,
                                                     std::ostream& err, std::string_view tool) {
  auto loaded = loadPolicy(path);
  if (loaded) {
    return std::move(*loaded);
  }
  if (loaded.error().io) {
    err << tool << ": " << loaded.error().io->message << "\n";
    return tl::unexpected(kLoadIoStatus);
  }
  for (const auto& d : loaded.error().diagnostics) {
    err << formatDiagnostic(d) << "\n";
  }
  return tl::unexpected(kLoadInvalidStatus);
}

}  // namespace vpcguard::config
