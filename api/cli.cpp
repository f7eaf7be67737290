#include "api/cli.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>

#include "daemon/config_loader.h"

namespace vpcguard::api {
namespace {

// ---- the verb table --------------------------------------------------------------------------

enum class Kind {
  kString,         // one value
  kInteger,        // one value, sent as a JSON integer
  kStringList,     // values up to the next option (also "a,b" or a JSON array)
  kStructure,      // one JSON object or shorthand structure
  kStructureList,  // values up to the next option, each JSON or shorthand; or one JSON array
  kTrue,           // flag: the parameter is true
  kFalse,          // flag: the parameter is false
  kValueTrue,      // flag: the parameter is {"Value": true} (AWS's AttributeBooleanValue)
  kValueFalse,     // flag: {"Value": false}
  kShortcut,       // --protocol/--port/--cidr/--source-group: folded into IpPermissions
};

struct OptionSpec {
  std::string_view name;   // "--group-ids"
  std::string_view param;  // "GroupIds"
  Kind kind;
};

struct VerbSpec {
  std::string_view verb;
  std::string_view action;
  std::string_view summary;
  std::vector<OptionSpec> options;
  std::vector<std::string_view> required;
  std::vector<std::vector<std::string_view>> exactly_one;  // one option of each group, not two
  bool takes_path = false;                                 // apply / plan
};

const std::vector<OptionSpec>& permissionOptions() {
  static const std::vector<OptionSpec> options = {
      {"--group-id", "GroupId", Kind::kString},
      {"--ip-permissions", "IpPermissions", Kind::kStructureList},
      {"--protocol", "", Kind::kShortcut},
      {"--port", "", Kind::kShortcut},
      {"--cidr", "", Kind::kShortcut},
      {"--source-group", "", Kind::kShortcut},
  };
  return options;
}

VerbSpec permissionVerb(std::string_view verb, std::string_view action,
                        std::string_view summary) {
  return VerbSpec{verb, action, summary, permissionOptions(), {"--group-id"}, {}, false};
}

VerbSpec naclEntryVerb(std::string_view verb, std::string_view action, std::string_view summary) {
  return VerbSpec{verb,
                  action,
                  summary,
                  {{"--network-acl-id", "NetworkAclId", Kind::kString},
                   {"--rule-number", "RuleNumber", Kind::kInteger},
                   {"--protocol", "Protocol", Kind::kString},
                   {"--rule-action", "RuleAction", Kind::kString},
                   {"--egress", "Egress", Kind::kTrue},
                   {"--ingress", "Egress", Kind::kFalse},
                   {"--no-egress", "Egress", Kind::kFalse},
                   {"--cidr-block", "CidrBlock", Kind::kString},
                   {"--ipv6-cidr-block", "Ipv6CidrBlock", Kind::kString},
                   {"--port-range", "PortRange", Kind::kStructure},
                   {"--icmp-type-code", "IcmpTypeCode", Kind::kStructure}},
                  {"--network-acl-id", "--rule-number", "--protocol", "--rule-action"},
                  {{"--egress", "--ingress", "--no-egress"}, {"--cidr-block", "--ipv6-cidr-block"}},
                  false};
}

VerbSpec describeVerb(std::string_view verb, std::string_view action, std::string_view summary,
                      std::string_view ids_option, std::string_view ids_param) {
  VerbSpec spec{verb, action, summary, {}, {}, {}, false};
  if (!ids_option.empty()) spec.options.push_back({ids_option, ids_param, Kind::kStringList});
  return spec;
}

VerbSpec singleIdVerb(std::string_view verb, std::string_view action, std::string_view summary,
                      std::string_view option, std::string_view param) {
  return VerbSpec{verb, action, summary, {{option, param, Kind::kString}}, {option}, {}, false};
}

const std::vector<VerbSpec>& verbs() {
  static const std::vector<VerbSpec> table = [] {
    std::vector<VerbSpec> v;
    // Security groups.
    v.push_back(VerbSpec{"describe-security-groups",
                         "DescribeSecurityGroups",
                         "List security groups and their rules",
                         {{"--group-ids", "GroupIds", Kind::kStringList},
                          {"--group-names", "GroupNames", Kind::kStringList}},
                         {},
                         {},
                         false});
    v.push_back(VerbSpec{"create-security-group",
                         "CreateSecurityGroup",
                         "Create a security group",
                         {{"--group-name", "GroupName", Kind::kString},
                          {"--description", "Description", Kind::kString},
                          {"--vpc-id", "VpcId", Kind::kString}},
                         {"--group-name", "--description"},
                         {},
                         false});
    v.push_back(VerbSpec{"delete-security-group",
                         "DeleteSecurityGroup",
                         "Delete a security group",
                         {{"--group-id", "GroupId", Kind::kString},
                          {"--group-name", "GroupName", Kind::kString}},
                         {},
                         {{"--group-id", "--group-name"}},
                         false});
    v.push_back(permissionVerb("authorize-security-group-ingress",
                               "AuthorizeSecurityGroupIngress", "Add inbound rules to a group"));
    v.push_back(permissionVerb("authorize-security-group-egress", "AuthorizeSecurityGroupEgress",
                               "Add outbound rules to a group"));
    v.push_back(permissionVerb("revoke-security-group-ingress", "RevokeSecurityGroupIngress",
                               "Remove inbound rules from a group"));
    v.push_back(permissionVerb("revoke-security-group-egress", "RevokeSecurityGroupEgress",
                               "Remove outbound rules from a group"));
    // Network ACLs.
    v.push_back(describeVerb("describe-network-acls", "DescribeNetworkAcls",
                             "List network ACLs, their entries and associations",
                             "--network-acl-ids", "NetworkAclIds"));
    v.push_back(singleIdVerb("create-network-acl", "CreateNetworkAcl", "Create a network ACL",
                             "--vpc-id", "VpcId"));
    v.push_back(singleIdVerb("delete-network-acl", "DeleteNetworkAcl", "Delete a network ACL",
                             "--network-acl-id", "NetworkAclId"));
    v.push_back(naclEntryVerb("create-network-acl-entry", "CreateNetworkAclEntry",
                              "Add a numbered entry to a network ACL"));
    v.push_back(naclEntryVerb("replace-network-acl-entry", "ReplaceNetworkAclEntry",
                              "Replace a numbered entry of a network ACL"));
    v.push_back(VerbSpec{"delete-network-acl-entry",
                         "DeleteNetworkAclEntry",
                         "Delete a numbered entry of a network ACL",
                         {{"--network-acl-id", "NetworkAclId", Kind::kString},
                          {"--rule-number", "RuleNumber", Kind::kInteger},
                          {"--egress", "Egress", Kind::kTrue},
                          {"--ingress", "Egress", Kind::kFalse},
                          {"--no-egress", "Egress", Kind::kFalse}},
                         {"--network-acl-id", "--rule-number"},
                         {{"--egress", "--ingress", "--no-egress"}},
                         false});
    v.push_back(VerbSpec{"replace-network-acl-association",
                         "ReplaceNetworkAclAssociation",
                         "Associate a subnet (by its association id) with another network ACL",
                         {{"--association-id", "AssociationId", Kind::kString},
                          {"--network-acl-id", "NetworkAclId", Kind::kString}},
                         {"--association-id", "--network-acl-id"},
                         {},
                         false});
    // Interfaces and the VPC.
    v.push_back(VerbSpec{"modify-network-interface-attribute",
                         "ModifyNetworkInterfaceAttribute",
                         "Set an interface's security groups or its source/destination check",
                         {{"--network-interface-id", "NetworkInterfaceId", Kind::kString},
                          {"--groups", "Groups", Kind::kStringList},
                          {"--source-dest-check", "SourceDestCheck", Kind::kValueTrue},
                          {"--no-source-dest-check", "SourceDestCheck", Kind::kValueFalse}},
                         {"--network-interface-id"},
                         {{"--groups", "--source-dest-check", "--no-source-dest-check"}},
                         false});
    v.push_back(describeVerb("describe-vpcs", "DescribeVpcs", "Show the VPC", "--vpc-ids",
                             "VpcIds"));
    v.push_back(describeVerb("describe-subnets", "DescribeSubnets", "List subnets",
                             "--subnet-ids", "SubnetIds"));
    v.push_back(describeVerb("describe-network-interfaces", "DescribeNetworkInterfaces",
                             "List network interfaces", "--network-interface-ids",
                             "NetworkInterfaceIds"));
    v.push_back(describeVerb("describe-managed-prefix-lists", "DescribeManagedPrefixLists",
                             "List managed prefix lists", "--prefix-list-ids", "PrefixListIds"));
    // Flow logs.
    v.push_back(VerbSpec{"create-flow-logs",
                         "CreateFlowLogs",
                         "Create flow logs for interfaces, subnets or the VPC",
                         {{"--resource-ids", "ResourceIds", Kind::kStringList},
                          {"--resource-type", "ResourceType", Kind::kString},
                          {"--traffic-type", "TrafficType", Kind::kString},
                          {"--log-destination-type", "LogDestinationType", Kind::kString},
                          {"--log-destination", "LogDestination", Kind::kString},
                          {"--log-format", "LogFormat", Kind::kString},
                          {"--max-aggregation-interval", "MaxAggregationInterval",
                           Kind::kInteger}},
                         {"--resource-ids", "--resource-type", "--traffic-type",
                          "--log-destination"},
                         {},
                         false});
    v.push_back(VerbSpec{"delete-flow-logs",
                         "DeleteFlowLogs",
                         "Delete flow logs",
                         {{"--flow-log-ids", "FlowLogIds", Kind::kStringList}},
                         {"--flow-log-ids"},
                         {},
                         false});
    v.push_back(describeVerb("describe-flow-logs", "DescribeFlowLogs", "List flow logs",
                             "--flow-log-ids", "FlowLogIds"));
    // Traffic mirroring.
    v.push_back(VerbSpec{"create-traffic-mirror-target",
                         "CreateTrafficMirrorTarget",
                         "Create a mirror target: an interface or a VXLAN endpoint",
                         {{"--network-interface-id", "NetworkInterfaceId", Kind::kString},
                          {"--vxlan-remote-ip", "VxlanRemoteIp", Kind::kString},
                          {"--description", "Description", Kind::kString}},
                         {},
                         {{"--network-interface-id", "--vxlan-remote-ip"}},
                         false});
    v.push_back(singleIdVerb("delete-traffic-mirror-target", "DeleteTrafficMirrorTarget",
                             "Delete a mirror target", "--traffic-mirror-target-id",
                             "TrafficMirrorTargetId"));
    v.push_back(describeVerb("describe-traffic-mirror-targets", "DescribeTrafficMirrorTargets",
                             "List mirror targets", "--traffic-mirror-target-ids",
                             "TrafficMirrorTargetIds"));
    v.push_back(VerbSpec{"create-traffic-mirror-filter",
                         "CreateTrafficMirrorFilter",
                         "Create a mirror filter (no rules: mirrors nothing)",
                         {{"--description", "Description", Kind::kString}},
                         {},
                         {},
                         false});
    v.push_back(singleIdVerb("delete-traffic-mirror-filter", "DeleteTrafficMirrorFilter",
                             "Delete a mirror filter", "--traffic-mirror-filter-id",
                             "TrafficMirrorFilterId"));
    v.push_back(describeVerb("describe-traffic-mirror-filters", "DescribeTrafficMirrorFilters",
                             "List mirror filters and their rules", "--traffic-mirror-filter-ids",
                             "TrafficMirrorFilterIds"));
    v.push_back(VerbSpec{"create-traffic-mirror-filter-rule",
                         "CreateTrafficMirrorFilterRule",
                         "Add a rule to a mirror filter",
                         {{"--traffic-mirror-filter-id", "TrafficMirrorFilterId", Kind::kString},
                          {"--traffic-direction", "TrafficDirection", Kind::kString},
                          {"--rule-number", "RuleNumber", Kind::kInteger},
                          {"--rule-action", "RuleAction", Kind::kString},
                          {"--destination-cidr-block", "DestinationCidrBlock", Kind::kString},
                          {"--source-cidr-block", "SourceCidrBlock", Kind::kString},
                          {"--protocol", "Protocol", Kind::kInteger},
                          {"--destination-port-range", "DestinationPortRange", Kind::kStructure},
                          {"--source-port-range", "SourcePortRange", Kind::kStructure},
                          {"--description", "Description", Kind::kString}},
                         {"--traffic-mirror-filter-id", "--traffic-direction", "--rule-number",
                          "--rule-action", "--destination-cidr-block", "--source-cidr-block"},
                         {},
                         false});
    v.push_back(singleIdVerb("delete-traffic-mirror-filter-rule",
                             "DeleteTrafficMirrorFilterRule", "Delete a mirror filter rule",
                             "--traffic-mirror-filter-rule-id", "TrafficMirrorFilterRuleId"));
    v.push_back(VerbSpec{"create-traffic-mirror-session",
                         "CreateTrafficMirrorSession",
                         "Mirror an interface's traffic to a target through a filter",
                         {{"--network-interface-id", "NetworkInterfaceId", Kind::kString},
                          {"--traffic-mirror-target-id", "TrafficMirrorTargetId", Kind::kString},
                          {"--traffic-mirror-filter-id", "TrafficMirrorFilterId", Kind::kString},
                          {"--session-number", "SessionNumber", Kind::kInteger},
                          {"--packet-length", "PacketLength", Kind::kInteger},
                          {"--virtual-network-id", "VirtualNetworkId", Kind::kInteger},
                          {"--description", "Description", Kind::kString}},
                         {"--network-interface-id", "--traffic-mirror-target-id",
                          "--traffic-mirror-filter-id", "--session-number"},
                         {},
                         false});
    v.push_back(singleIdVerb("delete-traffic-mirror-session", "DeleteTrafficMirrorSession",
                             "Delete a mirror session", "--traffic-mirror-session-id",
                             "TrafficMirrorSessionId"));
    v.push_back(describeVerb("describe-traffic-mirror-sessions", "DescribeTrafficMirrorSessions",
                             "List mirror sessions", "--traffic-mirror-session-ids",
                             "TrafficMirrorSessionIds"));
    // Whole configurations.
    v.push_back(VerbSpec{"apply", "ApplyConfig",
                         "Validate a config file or directory and commit it in one transaction",
                         {}, {}, {}, true});
    v.push_back(VerbSpec{"plan", "PlanConfig",
                         "Print what applying a config file or directory would change",
                         {}, {}, {}, true});
    return v;
  }();
  return table;
}

const VerbSpec* findVerb(std::string_view verb) {
  for (const auto& spec : verbs()) {
    if (spec.verb == verb) return &spec;
  }
  return nullptr;
}

const OptionSpec* findOption(const VerbSpec& spec, std::string_view name) {
  for (const auto& option : spec.options) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

bool takesValue(Kind kind) {
  return kind != Kind::kTrue && kind != Kind::kFalse && kind != Kind::kValueTrue &&
         kind != Kind::kValueFalse;
}

std::string metavar(Kind kind) {
  switch (kind) {
    case Kind::kString:
    case Kind::kShortcut:
      return " <value>";
    case Kind::kInteger:
      return " <integer>";
    case Kind::kStringList:
      return " <value> [<value> ...]";
    case Kind::kStructure:
      return " <Key=Value,...|JSON>";
    case Kind::kStructureList:
      return " <shorthand|JSON> [...]";
    default:
      return "";
  }
}

// ---- shorthand ---------------------------------------------------------------------------

const std::set<std::string, std::less<>> kIntegerKeys = {"FromPort", "ToPort", "From",
                                                          "To",       "Type",   "Code"};
const std::set<std::string, std::less<>> kStructureListKeys = {"IpRanges", "Ipv6Ranges",
                                                                "UserIdGroupPairs",
                                                                "PrefixListIds"};

class ShorthandParser {
 public:
  explicit ShorthandParser(std::string_view text) : text_(text) {}

  tl::expected<Json, std::string> parse() {
    auto value = parseStruct(0);
    if (!value) return value;
    skipSpaces();
    if (pos_ != text_.size()) return fail(fmt::format("unexpected '{}'", text_[pos_]));
    return value;
  }

 private:
  tl::unexpected<std::string> fail(const std::string& what) const {
    return tl::unexpected(fmt::format("{} at column {} of '{}'", what, pos_ + 1, text_));
  }

  void skipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  bool consume(char c) {
    skipSpaces();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static bool keyChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  }

  // Key=Value[,Key=Value...]; inside braces or brackets (depth > 0) it also ends at '}' / ']'.
  tl::expected<Json, std::string> parseStruct(int depth) {
    Json object = Json::object();
    for (;;) {
      skipSpaces();
      size_t start = pos_;
      while (pos_ < text_.size() && keyChar(text_[pos_])) ++pos_;
      std::string key(text_.substr(start, pos_ - start));
      if (key.empty()) return fail("expected Key=Value");
      if (!consume('=')) return fail("expected '=' after '" + key + "'");
      if (object.contains(key)) return fail("'" + key + "' given twice");
      auto value = parseValue(depth);
      if (!value) return value;
      object[key] = std::move(*value);
      skipSpaces();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      return object;
    }
  }

  tl::expected<Json, std::string> parseValue(int depth) {
    skipSpaces();
    if (pos_ >= text_.size()) return Json("");
    char c = text_[pos_];
    if (c == '[') return parseList(depth + 1);
    if (c == '{') {
      ++pos_;
      auto inner = parseStruct(depth + 1);
      if (!inner) return inner;
      if (!consume('}')) return fail("expected '}'");
      return inner;
    }
    return parseScalar(depth);
  }

  tl::expected<Json, std::string> parseList(int depth) {
    ++pos_;  // '['
    Json list = Json::array();
    if (consume(']')) return list;
    for (;;) {
      skipSpaces();
      if (pos_ < text_.size() && text_[pos_] == '{') {
        ++pos_;
        auto inner = parseStruct(depth + 1);
        if (!inner) return inner;
        if (!consume('}')) return fail("expected '}'");
        list.push_back(std::move(*inner));
      } else {
        auto scalar = parseScalar(depth);
        if (!scalar) return scalar;
        list.push_back(std::move(*scalar));
      }
      if (consume(',')) continue;
      if (consume(']')) return list;
      return fail("expected ',' or ']'");
    }
  }

  // A bare word up to ',' (and ']' / '}' when nested), or a quoted string.
  tl::expected<Json, std::string> parseScalar(int depth) {
    skipSpaces();
    if (pos_ < text_.size() && (text_[pos_] == '"' || text_[pos_] == '\'')) {
      char quote = text_[pos_++];
      std::string value;
      while (pos_ < text_.size() && text_[pos_] != quote) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        value += text_[pos_++];
      }
      if (pos_ >= text_.size()) return fail("unterminated quoted value");
      ++pos_;
      return Json(std::move(value));
    }
    size_t start = pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ',' || (depth > 0 && (c == ']' || c == '}'))) break;
      if (c == '[' || c == '{' || (depth == 0 && (c == ']' || c == '}'))) {
        return fail(fmt::format("unexpected '{}' in a value (quote the value)", c));
      }
      ++pos_;
    }
    std::string_view value = text_.substr(start, pos_ - start);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    return Json(std::string(value));
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// Integers for the known integer keys; lists of structures for the known list keys.
tl::expected<void, std::string> typeShorthand(Json& value) {
  if (value.is_array()) {
    for (auto& element : value) {
      if (auto typed = typeShorthand(element); !typed) return typed;
    }
    return {};
  }
  if (!value.is_object()) return {};
  for (auto& [key, member] : value.items()) {
    if (kIntegerKeys.count(key) != 0 && member.is_string()) {
      const std::string text = member.get<std::string>();
      long long number = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
        return tl::unexpected("the value of " + key + " must be an integer, not '" + text + "'");
      }
      member = number;
    } else if (kStructureListKeys.count(key) != 0) {
      if (member.is_object()) member = Json::array({member});
      if (!member.is_array() ||
          std::any_of(member.begin(), member.end(), [](const Json& e) { return !e.is_object(); })) {
        return tl::unexpected("the value of " + key + " must be a list of structures: " + key +
                              "=[{Key=Value,...},...]");
      }
    }
    if (auto typed = typeShorthand(member); !typed) return typed;
  }
  return {};
}

// A structure value: JSON when it starts with '{' (or '[' for lists), else shorthand.
tl::expected<Json, std::string> parseStructureValue(std::string_view option,
                                                    std::string_view text) {
  std::string_view trimmed = text;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  if (!trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '[')) {
    Json doc = Json::parse(trimmed, nullptr, false);
    if (doc.is_discarded()) {
      return tl::unexpected(fmt::format("Error parsing parameter '{}': invalid JSON: {}", option,
                                        text));
    }
    return doc;
  }
  auto parsed = parseShorthand(text);
  if (!parsed) {
    return tl::unexpected(
        fmt::format("Error parsing parameter '{}': {}", option, parsed.error()));
  }
  return parsed;
}

std::vector<std::string> splitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::optional<long long> parseInteger(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// ---- the command line --------------------------------------------------------------------

tl::unexpected<CliError> usageError(std::string_view verb, const std::string& message) {
  return tl::unexpected(CliError{kExitUsage, fmt::format("vpcguardctl {}: {}", verb, message)});
}

// --protocol/--port/--cidr/--source-group -> one IpPermissions entry, as the AWS CLI does.
tl::expected<Json, CliError> permissionFromShortcuts(std::string_view verb,
                                                     const std::map<std::string, std::string>& sc) {
  auto get = [&](const char* name) -> const std::string* {
    auto it = sc.find(name);
    return it == sc.end() ? nullptr : &it->second;
  };
  const std::string* protocol = get("--protocol");
  if (protocol == nullptr) {
    return usageError(verb, "--port, --cidr and --source-group need --protocol");
  }
  Json permission = Json::object();
  permission["IpProtocol"] = (*protocol == "all") ? std::string("-1") : *protocol;
  if (const std::string* port = get("--port")) {
    // "N", "N-M", or "-1" (all ports / all ICMP types).
    std::optional<long long> from;
    std::optional<long long> to;
    size_t dash = port->find('-', 1);
    if (dash == std::string::npos) {
      from = to = parseInteger(*port);
    } else {
      from = parseInteger(std::string_view(*port).substr(0, dash));
      to = parseInteger(std::string_view(*port).substr(dash + 1));
    }
    if (!from || !to) {
      return usageError(verb, "argument --port: expected a port N, a range N-M or -1, not '" +
                                  *port + "'");
    }
    permission["FromPort"] = *from;
    permission["ToPort"] = *to;
  }
  const std::string* cidr = get("--cidr");
  const std::string* group = get("--source-group");
  if (cidr != nullptr && group != nullptr) {
    return usageError(verb, "argument --source-group: not allowed with argument --cidr");
  }
  if (cidr != nullptr) {
    if (cidr->find(':') != std::string::npos) {
      permission["Ipv6Ranges"] = Json::array({{{"CidrIpv6", *cidr}}});
    } else {
      permission["IpRanges"] = Json::array({{{"CidrIp", *cidr}}});
    }
  } else if (group != nullptr) {
    permission["UserIdGroupPairs"] = Json::array({{{"GroupId", *group}}});
  }
  return Json::array({permission});
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

tl::expected<Json, std::string> parseShorthand(std::string_view text) {
  auto parsed = ShorthandParser(text).parse();
  if (!parsed) return parsed;
  if (auto typed = typeShorthand(*parsed); !typed) return tl::unexpected(typed.error());
  return parsed;
}

bool isApiVerb(std::string_view verb) { return findVerb(verb) != nullptr; }

std::string verbListing() {
  std::string out = "API verbs (`vpcguardctl VERB help` for options; docs/cli.md):\n";
  size_t width = 0;
  for (const auto& spec : verbs()) width = std::max(width, spec.verb.size());
  for (const auto& spec : verbs()) {
    out += fmt::format("  {:<{}}  {}\n", spec.verb, width, spec.summary);
  }
  out += "Global options of the API verbs: --output json|table|text, --api unix:PATH|tls:HOST:PORT "
         "(default $VPCGUARD_API or unix:/run/vpcguard/api.sock), --timeout-ms N, --tls-cert, "
         "--tls-key, --tls-ca\n";
  return out;
}

std::string verbUsage(std::string_view verb) {
  const VerbSpec* spec = findVerb(verb);
  if (spec == nullptr) return {};
  std::string out = fmt::format("usage: vpcguardctl {}", spec->verb);
  if (spec->takes_path) out += " FILE|DIR";
  std::set<std::string_view> grouped;
  for (const auto& group : spec->exactly_one) {
    out += " (";
    for (size_t i = 0; i < group.size(); ++i) {
      const OptionSpec* option = findOption(*spec, group[i]);
      out += (i > 0 ? " | " : "") + std::string(group[i]) + metavar(option->kind);
      grouped.insert(group[i]);
    }
    out += ")";
  }
  for (const auto& option : spec->options) {
    if (grouped.count(option.name) != 0) continue;
    bool required = std::find(spec->required.begin(), spec->required.end(), option.name) !=
                    spec->required.end();
    std::string text = std::string(option.name) + metavar(option.kind);
    out += required ? " " + text : " [" + text + "]";
  }
  out += " [--output json|table|text] [--api ENDPOINT] [--timeout-ms N] "
         "[--tls-cert FILE --tls-key FILE --tls-ca FILE]";
  return out;
}

tl::expected<CliCommand, CliError> parseCommandLine(const std::vector<std::string>& args) {
  if (args.empty()) return tl::unexpected(CliError{kExitUsage, "vpcguardctl: no verb given"});
  const VerbSpec* spec = findVerb(args[0]);
  if (spec == nullptr) {
    return tl::unexpected(
        CliError{kExitUsage, "vpcguardctl: unknown verb '" + args[0] + "'"});
  }
  const std::string_view verb = spec->verb;
  CliCommand cmd;
  cmd.verb = spec->verb;
  cmd.action = spec->action;
  cmd.client.endpoint = defaultEndpoint();

  std::set<std::string, std::less<>> seen;
  std::vector<std::string> positionals;
  std::map<std::string, std::string> shortcuts;

  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "help" || arg == "--help" || arg == "-h") {
      cmd.help = true;
      continue;
    }
    if (!startsWith(arg, "--")) {
      positionals.push_back(arg);
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    // The values of an option: "--x=v", or the arguments up to the next "--option".
    auto takeOne = [&]() -> tl::expected<std::string, CliError> {
      if (inline_value) return *inline_value;
      if (i + 1 < args.size() && !startsWith(args[i + 1], "--")) return args[++i];
      return usageError(verb, "argument " + name + ": expected one argument");
    };
    auto takeMany = [&]() -> tl::expected<std::vector<std::string>, CliError> {
      std::vector<std::string> values;
      if (inline_value) values.push_back(*inline_value);
      while (!inline_value && i + 1 < args.size() && !startsWith(args[i + 1], "--")) {
        values.push_back(args[++i]);
      }
      if (values.empty()) return usageError(verb, "argument " + name + ": expected one argument");
      return values;
    };
    if (name == "--query") {
      return usageError(verb,
                        "--query is not supported by vpcguardctl; use --output json and jq");
    }
    const OptionSpec* option = findOption(*spec, name);
    const bool global = option == nullptr &&
                        (name == "--output" || name == "--api" || name == "--timeout-ms" ||
                         name == "--tls-cert" || name == "--tls-key" || name == "--tls-ca");
    if (option == nullptr && !global) return usageError(verb, "Unknown options: " + arg);
    if (!seen.insert(name).second) return usageError(verb, "argument " + name + " given twice");
    if (global) {
      auto value = takeOne();
      if (!value) return tl::unexpected(value.error());
      if (name == "--output") {
        auto format = parseOutputFormat(*value);
        if (!format) {
          return usageError(verb, "argument --output: invalid choice: '" + *value +
                                      "' (choose from 'json', 'table', 'text')");
        }
        cmd.output = *format;
      } else if (name == "--api") {
        cmd.client.endpoint = *value;
      } else if (name == "--timeout-ms") {
        auto ms = parseInteger(*value);
        if (!ms || *ms < 1 || *ms > 3'600'000) {
          return usageError(verb, "argument --timeout-ms: expected milliseconds 1..3600000, not '" +
                                      *value + "'");
        }
        cmd.client.timeout_ms = static_cast<int>(*ms);
      } else if (name == "--tls-cert") {
        cmd.client.tls_cert = *value;
      } else if (name == "--tls-key") {
        cmd.client.tls_key = *value;
      } else {
        cmd.client.tls_ca = *value;
      }
      continue;
    }
    if (!takesValue(option->kind) && inline_value) {
      return usageError(verb, "argument " + name + ": takes no value");
    }
    const std::string param(option->param);
    switch (option->kind) {
      case Kind::kString: {
        auto value = takeOne();
        if (!value) return tl::unexpected(value.error());
        cmd.parameters[param] = *value;
        break;
      }
      case Kind::kShortcut: {
        auto value = takeOne();
        if (!value) return tl::unexpected(value.error());
        shortcuts[name] = *value;
        break;
      }
      case Kind::kInteger: {
        auto value = takeOne();
        if (!value) return tl::unexpected(value.error());
        auto number = parseInteger(*value);
        if (!number) {
          return usageError(verb, "argument " + name + ": invalid integer value: '" + *value +
                                      "'");
        }
        cmd.parameters[param] = *number;
        break;
      }
      case Kind::kStringList: {
        auto values = takeMany();
        if (!values) return tl::unexpected(values.error());
        Json list = Json::array();
        for (const auto& value : *values) {
          if (startsWith(value, "[")) {
            Json doc = Json::parse(value, nullptr, false);
            if (doc.is_discarded() || !doc.is_array() ||
                std::any_of(doc.begin(), doc.end(), [](const Json& e) { return !e.is_string(); })) {
              return usageError(verb, "Error parsing parameter '" + name +
                                          "': expected a JSON list of strings: " + value);
            }
            for (const auto& e : doc) list.push_back(e);
          } else {
            for (auto& part : splitCommas(value)) list.push_back(std::move(part));
          }
        }
        if (list.empty()) return usageError(verb, "argument " + name + ": expected one argument");
        cmd.parameters[param] = std::move(list);
        break;
      }
      case Kind::kStructure: {
        auto value = takeOne();
        if (!value) return tl::unexpected(value.error());
        auto parsed = parseStructureValue(name, *value);
        if (!parsed) return usageError(verb, parsed.error());
        if (!parsed->is_object()) {
          return usageError(verb, "Error parsing parameter '" + name + "': expected a structure");
        }
        cmd.parameters[param] = std::move(*parsed);
        break;
      }
      case Kind::kStructureList: {
        auto values = takeMany();
        if (!values) return tl::unexpected(values.error());
        Json list = Json::array();
        for (const auto& value : *values) {
          auto parsed = parseStructureValue(name, value);
          if (!parsed) return usageError(verb, parsed.error());
          if (parsed->is_array()) {
            for (auto& e : *parsed) list.push_back(std::move(e));
          } else {
            list.push_back(std::move(*parsed));
          }
        }
        if (std::any_of(list.begin(), list.end(), [](const Json& e) { return !e.is_object(); })) {
          return usageError(verb, "Error parsing parameter '" + name +
                                      "': expected structures (Key=Value,... or JSON objects)");
        }
        cmd.parameters[param] = std::move(list);
        break;
      }
      case Kind::kTrue:
      case Kind::kFalse:
        cmd.parameters[param] = option->kind == Kind::kTrue;
        break;
      case Kind::kValueTrue:
      case Kind::kValueFalse:
        cmd.parameters[param] = Json{{"Value", option->kind == Kind::kValueTrue}};
        break;
    }
  }

  if (cmd.help) return cmd;

  if (spec->takes_path) {
    if (positionals.empty()) {
      return usageError(verb, "the following arguments are required: FILE|DIR");
    }
    if (positionals.size() > 1) {
      return usageError(verb, "Unknown options: " + positionals[1]);
    }
    cmd.path = positionals.front();
  } else if (!positionals.empty()) {
    std::string list;
    for (const auto& p : positionals) list += (list.empty() ? "" : ", ") + p;
    return usageError(verb, "Unknown options: " + list);
  }

  std::string missing;
  for (auto name : spec->required) {
    if (seen.count(name) == 0) missing += (missing.empty() ? "" : ", ") + std::string(name);
  }
  if (!missing.empty()) {
    return usageError(verb, "the following arguments are required: " + missing);
  }
  for (const auto& group : spec->exactly_one) {
    std::vector<std::string_view> given;
    for (auto name : group) {
      if (seen.count(name) != 0) given.push_back(name);
    }
    if (given.empty()) {
      std::string names;
      for (auto name : group) names += (names.empty() ? "" : " ") + std::string(name);
      return usageError(verb, "one of the arguments " + names + " is required");
    }
    if (given.size() > 1) {
      return usageError(verb, "argument " + std::string(given[1]) +
                                  ": not allowed with argument " + std::string(given[0]));
    }
  }

  if (!shortcuts.empty()) {
    if (cmd.parameters.contains("IpPermissions")) {
      return usageError(verb, "--ip-permissions cannot be combined with --protocol, --port, "
                              "--cidr or --source-group");
    }
    auto permissions = permissionFromShortcuts(verb, shortcuts);
    if (!permissions) return tl::unexpected(permissions.error());
    cmd.parameters["IpPermissions"] = std::move(*permissions);
  } else if (findOption(*spec, "--ip-permissions") != nullptr &&
             !cmd.parameters.contains("IpPermissions")) {
    return usageError(verb, "one of --ip-permissions or --protocol (with --port and --cidr or "
                            "--source-group) is required");
  }
  return cmd;
}

namespace {

std::string newRequestId() {
  std::random_device random;
  return fmt::format("{:08x}{:08x}", random(), random());
}

std::string verbHelp(const VerbSpec& spec) {
  std::string out = fmt::format("{}\n\n{}\n\n", verbUsage(spec.verb), spec.summary);
  out += fmt::format("Calls the {} action of the vpcguard API.\n", spec.action);
  if (!spec.options.empty()) out += "\nOptions (option -> API parameter):\n";
  for (const auto& option : spec.options) {
    std::string target;
    switch (option.kind) {
      case Kind::kTrue:
        target = std::string(option.param) + " = true";
        break;
      case Kind::kFalse:
        target = std::string(option.param) + " = false";
        break;
      case Kind::kValueTrue:
        target = std::string(option.param) + " = {\"Value\": true}";
        break;
      case Kind::kValueFalse:
        target = std::string(option.param) + " = {\"Value\": false}";
        break;
      case Kind::kShortcut:
        target = "one IpPermissions entry (with --protocol, --port, --cidr | --source-group)";
        break;
      default:
        target = std::string(option.param);
    }
    out += fmt::format("  {:<44} {}\n", std::string(option.name) + metavar(option.kind), target);
  }
  out += "\nGlobal options: --output json|table|text (default table), --api unix:PATH|"
         "tls:HOST:PORT (default $VPCGUARD_API, else unix:/run/vpcguard/api.sock), --timeout-ms N "
         "(default 30000), --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n";
  return out;
}

// "+ ec2:CreateSecurityGroup arn:...: summary": '+' adds, '-' removes, '~' changes.
void printChanges(const Json& result, bool applied, std::ostream& out) {
  const Json empty = Json::array();
  auto it = result.is_object() ? result.find("Changes") : result.end();
  const Json& changes = (result.is_object() && it != result.end() && it->is_array()) ? *it : empty;
  if (changes.empty()) {
    out << "No changes.\n";
    return;
  }
  for (const auto& change : changes) {
    auto field = [&](const char* key) {
      auto f = change.is_object() ? change.find(key) : change.end();
      return change.is_object() && f != change.end() && f->is_string() ? f->get<std::string>()
                                                                         : std::string();
    };
    std::string action = field("Action");
    std::string_view bare = action;
    if (startsWith(bare, "ec2:")) bare.remove_prefix(4);
    char sign = '~';
    if (startsWith(bare, "Create") || startsWith(bare, "Authorize") ||
        startsWith(bare, "Associate")) {
      sign = '+';
    } else if (startsWith(bare, "Delete") || startsWith(bare, "Revoke") ||
               startsWith(bare, "Disassociate")) {
      sign = '-';
    }
    out << sign << ' ' << action;
    if (std::string resource = field("Resource"); !resource.empty()) out << ' ' << resource;
    if (std::string summary = field("Summary"); !summary.empty()) out << ": " << summary;
    out << '\n';
  }
  if (applied) {
    out << "Applied " << changes.size() << " change(s).\n";
  } else {
    out << "Plan: " << changes.size() << " change(s).\n";
  }
}

// apply/plan: the documents to send, validated here first so that file errors show as
// file:line:col without a round trip (the server validates again).
tl::expected<Json, int> readConfig(const CliCommand& cmd, std::ostream& err) {
  auto documents = config::readDocuments(cmd.path);
  if (!documents) {
    err << "vpcguardctl " << cmd.verb << ": " << documents.error().message << "\n";
    return tl::unexpected(kExitUsage);
  }
  auto loaded = config::loadPolicyFromDocuments(*documents);
  if (!loaded) {
    if (loaded.error().io) {
      err << "vpcguardctl " << cmd.verb << ": " << loaded.error().io->message << "\n";
    }
    for (const auto& d : loaded.error().diagnostics) err << formatDiagnostic(d) << "\n";
    err << "vpcguardctl " << cmd.verb << ": " << cmd.path << " is not valid; nothing was sent\n";
    return tl::unexpected(kExitUsage);
  }
  Json list = Json::array();
  for (const auto& d : *documents) list.push_back({{"Name", d.name}, {"Text", d.text}});
  return Json{{"Documents", std::move(list)}};
}

}  // namespace

int runCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = parseCommandLine(args);
  if (!parsed) {
    err << parsed.error().message << "\n";
    if (!args.empty()) {
      if (std::string usage = verbUsage(args[0]); !usage.empty()) err << usage << "\n";
    }
    return parsed.error().exit_code;
  }
  CliCommand& cmd = *parsed;
  const VerbSpec* spec = findVerb(cmd.verb);
  if (cmd.help) {
    out << verbHelp(*spec);
    return kExitOk;
  }
  if (spec->takes_path) {
    auto params = readConfig(cmd, err);
    if (!params) return params.error();
    cmd.parameters = std::move(*params);
  }
  // OpenSSL writes with write(2): a server that hangs up must be an error, not SIGPIPE.
  if (startsWith(cmd.client.endpoint, "tls:")) std::signal(SIGPIPE, SIG_IGN);

  Request request{newRequestId(), cmd.action, cmd.parameters};
  auto response = call(cmd.client, request);
  if (!response) {
    err << "vpcguardctl: " << response.error().message << "\n";
    return kExitOther;
  }
  if (!response->ok) {
    err << "An error occurred (" << response->error.code << ") when calling the " << cmd.action
        << " operation: " << response->error.message << "\n";
    return kExitServiceError;
  }
  if (spec->takes_path && cmd.output != OutputFormat::kJson) {
    printChanges(response->result, cmd.verb == "apply", out);
  } else {
    render(response->result, cmd.action, cmd.output, out);
  }
  out.flush();
  return kExitOk;
}

int runCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return runCli(args, out, err);
}

}  // namespace vpcguard::api
