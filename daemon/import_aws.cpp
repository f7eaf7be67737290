#include "daemon/import_aws.h"

// How the conversion runs: collect every AWS object of the input by kind and id (files may hold
// several kinds, an object may repeat across files), choose the one VPC to import, then convert
// kind by kind in id order so the output does not depend on the order of the input. Each
// converter checks what vpcguard can represent and records a warning for whatever it leaves out;
// the TOML is written by a small emitter of our own rather than toml++'s, because toml++ orders
// keys alphabetically and cannot write comments, and the output is meant to be read by people.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <variant>

#include "translator/flow_log_format.h"
#include "translator/ip.h"
#include "translator/model.h"

namespace vpcguard {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// TOML emitter

using TomlScalar = std::variant<std::string, int64_t, bool>;
using InlineFields = std::vector<std::pair<std::string, TomlScalar>>;

std::string tomlString(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;  // UTF-8 passes through: nlohmann has already checked it is valid
        }
      }
    }
  }
  out += '"';
  return out;
}

std::string tomlValue(const TomlScalar& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return tomlString(*s);
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return std::get<bool>(v) ? "true" : "false";
}

class TomlWriter {
 public:
  // Comment lines; text that holds newlines (AWS descriptions may) stays one comment per line.
  void comment(std::string_view text) {
    std::string line = "#";
    if (!text.empty()) line += ' ';
    for (const char c : text) {
      if (c == '\n' || c == '\r') {
        out_ += line + "\n";
        line = "# ";
      } else {
        line += c;
      }
    }
    out_ += line + "\n";
  }
  void blankLine() { out_ += "\n"; }
  void table(std::string_view name) { out_ += "[" + std::string(name) + "]\n"; }
  void arrayTable(std::string_view name) { out_ += "[[" + std::string(name) + "]]\n"; }
  void keyValue(std::string_view key, const TomlScalar& v) {
    out_ += std::string(key) + " = " + tomlValue(v) + "\n";
  }
  void keyArray(std::string_view key, const std::vector<std::string>& values) {
    std::string line = std::string(key) + " = [";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) line += ", ";
      line += tomlString(values[i]);
    }
    out_ += line + "]\n";
  }
  void keyInline(std::string_view key, const InlineFields& fields) {
    std::string line = std::string(key) + " = {";
    for (size_t i = 0; i < fields.size(); ++i) {
      line += i > 0 ? ", " : " ";
      line += fields[i].first + " = " + tomlValue(fields[i].second);
    }
    out_ += line + " }\n";
  }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// ---------------------------------------------------------------------------------------------
// What the converters produce: already-normalised text, ready to write.

struct SgRule {
  std::string ip_protocol;
  std::optional<int64_t> from_port;
  std::optional<int64_t> to_port;
  std::string peer_key;  // cidr_ipv4 | cidr_ipv6 | referenced_group_id | prefix_list_id
  std::string peer_value;
  std::string description;
};

struct SecurityGroupOut {
  std::string id;
  std::string name;
  std::string description;
  bool is_default = false;
  std::vector<SgRule> ingress;
  std::vector<SgRule> egress;
};

struct NaclEntryOut {
  int64_t rule_number = 0;
  bool egress = false;
  std::string protocol;
  std::string rule_action;
  std::string cidr_key;  // cidr_block | ipv6_cidr_block
  std::string cidr;
  std::optional<std::pair<int64_t, int64_t>> port_range;
  std::optional<std::pair<int64_t, int64_t>> icmp_type_code;
};

struct NetworkAclOut {
  std::string id;
  bool is_default = false;
  std::vector<NaclEntryOut> entries;
};

struct SubnetOut {
  std::string id;
  std::string name;  // Name tag, written as a comment
  std::string cidr_block;
  std::optional<std::string> ipv6_cidr_block;
  std::optional<std::string> network_acl_id;
};

struct InterfaceOut {
  std::string id;
  std::string comment;  // AWS description, written as a comment
  std::string subnet_id;
  std::string mac_address;
  std::vector<std::string> private_ip_addresses;
  std::vector<std::string> ipv6_addresses;
  std::vector<std::string> security_group_ids;
  bool source_dest_check = true;
  InlineFields connection_tracking;
};

struct PrefixListOut {
  std::string id;
  std::string name;
  int64_t max_entries = 0;
  std::vector<std::string> entries;
};

struct FlowLogOut {
  std::string id;
  std::string aws_destination;  // where AWS delivers the records, written as a comment
  std::string resource_id;
  std::string traffic_type;
  std::optional<std::string> log_format;  // absent: the default (version 2) format
  std::optional<int64_t> max_aggregation_interval;
};

struct MirrorTargetOut {
  std::string id;
  std::optional<std::string> network_interface_id;
  // vpcguard's own VXLAN endpoint target ("Type": "vxlan-endpoint", as vpcguardctl's
  // describe-traffic-mirror-targets prints it): imported as vxlan_remote_ip.
  std::optional<std::string> vxlan_remote_ip;
  std::string aws_target;  // a load balancer target: what AWS sent the copies to (no address here)
  std::string description;
};

using PortPair = std::optional<std::pair<int64_t, int64_t>>;

struct MirrorRuleOut {
  int64_t rule_number = 0;
  std::string rule_action;
  std::optional<int64_t> protocol;  // absent: all protocols
  std::string source_cidr_block;
  std::string destination_cidr_block;
  PortPair source_port_range;
  PortPair destination_port_range;
  std::string description;
};

struct MirrorFilterOut {
  std::string id;
  std::string description;
  std::vector<std::string> network_services;
  std::vector<MirrorRuleOut> ingress_rules;
  std::vector<MirrorRuleOut> egress_rules;
};

struct MirrorSessionOut {
  std::string id;
  std::string network_interface_id;
  std::string traffic_mirror_target_id;
  std::string traffic_mirror_filter_id;
  int64_t session_number = 0;
  std::optional<int64_t> packet_length;
  std::optional<int64_t> virtual_network_id;
  std::string description;
};

struct VpcOut {
  std::string id;
  std::string account_id;
  std::string region;
  std::vector<std::string> cidr_blocks;
  std::vector<std::string> ipv6_cidr_blocks;
};

// ---------------------------------------------------------------------------------------------
// Input bookkeeping

// One AWS object of the input and the file it came from.
struct Item {
  const json* object = nullptr;
  const std::string* source = nullptr;
};

struct Kind {
  const char* top_key;  // key of the describe-* output
  const char* id_key;   // the object's id field
  const char* noun;     // for messages
};
constexpr Kind kVpcs{"Vpcs", "VpcId", "VPC"};
constexpr Kind kSubnets{"Subnets", "SubnetId", "subnet"};
constexpr Kind kSecurityGroups{"SecurityGroups", "GroupId", "security group"};
constexpr Kind kNetworkAcls{"NetworkAcls", "NetworkAclId", "network ACL"};
constexpr Kind kInterfaces{"NetworkInterfaces", "NetworkInterfaceId", "network interface"};
constexpr Kind kPrefixLists{"PrefixLists", "PrefixListId", "prefix list"};
constexpr Kind kFlowLogs{"FlowLogs", "FlowLogId", "flow log"};
constexpr Kind kMirrorTargets{"TrafficMirrorTargets", "TrafficMirrorTargetId",
                              "traffic mirror target"};
constexpr Kind kMirrorFilters{"TrafficMirrorFilters", "TrafficMirrorFilterId",
                              "traffic mirror filter"};
constexpr Kind kMirrorSessions{"TrafficMirrorSessions", "TrafficMirrorSessionId",
                               "traffic mirror session"};
constexpr Kind kKinds[] = {kVpcs,          kSubnets,       kSecurityGroups, kNetworkAcls,
                           kInterfaces,    kPrefixLists,   kFlowLogs,       kMirrorTargets,
                           kMirrorFilters, kMirrorSessions};

// AWS delivers flow-log records to CloudWatch Logs, S3 or Firehose; vpcguard writes them to a
// local directory (flowlogs/sink.h), so every imported flow log gets this one.
constexpr std::string_view kFlowLogDestination = "file:///var/log/vpcguard/flowlogs";

// Keys each object kind may carry that vpcguard reads or deliberately ignores (they describe
// AWS bookkeeping, not packet filtering). Anything else is reported: it may be a newer AWS
// feature whose meaning the import would otherwise lose without a word.
const std::set<std::string, std::less<>> kVpcKeys = {
    "VpcId", "OwnerId", "CidrBlock", "CidrBlockAssociationSet", "Ipv6CidrBlockAssociationSet",
    "DhcpOptionsId", "State", "InstanceTenancy", "IsDefault", "Tags", "BlockPublicAccessStates",
    "EncryptionControl"};
const std::set<std::string, std::less<>> kSubnetKeys = {
    "SubnetId", "VpcId", "OwnerId", "CidrBlock", "Ipv6CidrBlockAssociationSet",
    "AvailabilityZone", "AvailabilityZoneId", "AvailableIpAddressCount", "DefaultForAz",
    "MapPublicIpOnLaunch", "MapCustomerOwnedIpOnLaunch", "CustomerOwnedIpv4Pool", "State",
    "AssignIpv6AddressOnCreation", "Tags", "SubnetArn", "OutpostArn", "EnableDns64",
    "Ipv6Native", "PrivateDnsNameOptionsOnLaunch", "EnableLniAtDeviceIndex",
    "BlockPublicAccessStates", "Type"};
const std::set<std::string, std::less<>> kSecurityGroupKeys = {
    "GroupId", "GroupName", "Description", "IpPermissions", "IpPermissionsEgress", "VpcId",
    "OwnerId", "Tags", "SecurityGroupArn"};
const std::set<std::string, std::less<>> kPermissionKeys = {
    "IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "UserIdGroupPairs",
    "PrefixListIds"};
const std::set<std::string, std::less<>> kNetworkAclKeys = {
    "NetworkAclId", "VpcId", "OwnerId", "IsDefault", "Entries", "Associations", "Tags"};
const std::set<std::string, std::less<>> kNaclEntryKeys = {
    "RuleNumber", "Protocol", "RuleAction", "Egress", "CidrBlock", "Ipv6CidrBlock",
    "PortRange", "IcmpTypeCode"};
const std::set<std::string, std::less<>> kInterfaceKeys = {
    "NetworkInterfaceId", "SubnetId", "VpcId", "OwnerId", "MacAddress", "PrivateIpAddress",
    "PrivateIpAddresses", "Ipv6Addresses", "Groups", "SourceDestCheck",
    "ConnectionTrackingConfiguration", "RequesterManaged", "RequesterId", "InterfaceType",
    "AvailabilityZone", "AvailabilityZoneId", "Association", "Attachment", "Description",
    "PrivateDnsName", "PublicDnsName", "PublicIpDnsNameOptions", "Status", "TagSet", "Tags",
    "DenyAllIgwTraffic", "Ipv6Native", "Ipv6Address", "Ipv4Prefixes", "Ipv6Prefixes",
    "OutpostArn", "Operator", "AssociatedSubnets"};
// DeliverLogs*, FlowLogStatus, LogGroupName, CreationTime: AWS's delivery bookkeeping.
// DestinationOptions (S3 file format, partitions) go with the destination, which is replaced.
const std::set<std::string, std::less<>> kFlowLogKeys = {
    "FlowLogId", "ResourceId", "TrafficType", "LogDestinationType", "LogDestination",
    "LogFormat", "MaxAggregationInterval", "DestinationOptions", "DeliverLogsStatus",
    "DeliverLogsErrorMessage", "DeliverLogsPermissionArn", "DeliverCrossAccountRole",
    "FlowLogStatus", "LogGroupName", "CreationTime", "Tags"};
// Type says which of NetworkInterfaceId, NetworkLoadBalancerArn, GatewayLoadBalancerEndpointId
// is set; OwnerId and Tags are bookkeeping.
const std::set<std::string, std::less<>> kMirrorTargetKeys = {
    "TrafficMirrorTargetId", "NetworkInterfaceId", "NetworkLoadBalancerArn",
    "GatewayLoadBalancerEndpointId", "VxlanRemoteIp", "Type", "Description", "OwnerId", "Tags"};
const std::set<std::string, std::less<>> kMirrorFilterKeys = {
    "TrafficMirrorFilterId", "IngressFilterRules", "EgressFilterRules", "NetworkServices",
    "Description", "Tags"};
// TrafficDirection repeats which list the rule is in; the rule and filter ids are AWS's own.
const std::set<std::string, std::less<>> kMirrorRuleKeys = {
    "TrafficMirrorFilterRuleId", "TrafficMirrorFilterId", "TrafficDirection", "RuleNumber",
    "RuleAction", "Protocol", "SourceCidrBlock", "DestinationCidrBlock", "SourcePortRange",
    "DestinationPortRange", "Description", "Tags"};
const std::set<std::string, std::less<>> kMirrorSessionKeys = {
    "TrafficMirrorSessionId", "NetworkInterfaceId", "TrafficMirrorTargetId",
    "TrafficMirrorFilterId", "SessionNumber", "PacketLength", "VirtualNetworkId", "Description",
    "OwnerId", "Tags"};
const std::set<std::string, std::less<>> kPrefixListKeys = {
    "PrefixListId", "PrefixListName", "MaxEntries", "Entries", "AddressFamily", "State",
    "StateMessage", "PrefixListArn", "Version", "Tags", "OwnerId"};

// "tcp", "udp", "icmp", "icmpv6", "all", or the protocol number as text. AWS writes security
// group protocols by name ("tcp", "-1") and NACL protocols by number ("6", "-1"); the config
// uses one vocabulary for both.
std::optional<std::string> protocolName(std::string_view aws) {
  if (aws == "-1" || aws == "all") return "all";
  if (aws == "tcp" || aws == "6") return "tcp";
  if (aws == "udp" || aws == "17") return "udp";
  if (aws == "icmp" || aws == "1") return "icmp";
  if (aws == "icmpv6" || aws == "58") return "icmpv6";
  if (aws.empty() || aws.size() > 3 ||
      !std::all_of(aws.begin(), aws.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int n = std::stoi(std::string(aws));
  if (n > 255) return std::nullopt;
  return std::to_string(n);  // "050" -> "50"
}

// A CIDR's family as its text shows it; Cidr::parse then checks the rest.
IpFamily familyOf(std::string_view cidr) {
  return cidr.find(':') != std::string_view::npos ? IpFamily::kV6 : IpFamily::kV4;
}

// What Open vSwitch can truncate a mirrored packet to, and AWS's PacketLength and VNI limits.
constexpr int64_t kMinPacketLength = 14;  // the Ethernet header
constexpr int64_t kMaxPacketLength = 8500;
constexpr int64_t kMaxVirtualNetworkId = (int64_t{1} << 24) - 1;

constexpr int64_t kImplicitDenyV4 = 32767;
constexpr int64_t kImplicitDenyV6 = 32768;

bool hasPorts(std::string_view protocol) { return protocol == "tcp" || protocol == "udp"; }
bool isIcmp(std::string_view protocol) { return protocol == "icmp" || protocol == "icmpv6"; }

// us-east-1a -> us-east-1; local and wavelength zones (us-west-2-lax-1a) keep the parent region.
// Hand-parsed rather than with std::regex, which g++ 12 cannot build warning-free under
// sanitizers: <2 letters>(-<letters>)+-<digits><zone suffix>.
std::optional<std::string> regionFromAvailabilityZone(std::string_view az) {
  auto isLower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto isDigit = [](char c) { return c >= '0' && c <= '9'; };
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t dash = az.find('-', start);
    parts.push_back(az.substr(start, dash == std::string_view::npos ? dash : dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  if (parts.size() < 3 || parts[0].size() != 2 ||
      !std::all_of(parts[0].begin(), parts[0].end(), isLower)) {
    return std::nullopt;
  }
  size_t i = 1;
  while (i < parts.size() && !parts[i].empty() &&
         std::all_of(parts[i].begin(), parts[i].end(), isLower)) {
    ++i;
  }
  if (i == 1 || i == parts.size() || parts[i].empty() || !isDigit(parts[i].front())) {
    return std::nullopt;
  }
  const std::string_view number_part = parts[i];
  const size_t digits = static_cast<size_t>(
      std::find_if_not(number_part.begin(), number_part.end(), isDigit) - number_part.begin());
  std::string region(az.substr(0, static_cast<size_t>(number_part.data() - az.data())));
  region += number_part.substr(0, digits);
  return region;
}

class Importer {
 public:
  Importer(const std::vector<AwsDocument>& documents, const ImportAwsOptions& options)
      : documents_(documents), options_(options) {}

  Result<ImportAwsOutput> run() {
    collect();
    if (auto chosen = chooseVpc(); !chosen) return tl::unexpected(chosen.error());
    convertVpc();
    convertPrefixLists();
    convertSecurityGroups();
    convertNetworkAcls();
    convertSubnets();
    convertInterfaces();
    convertFlowLogs();
    convertMirrorTargets();
    convertMirrorFilters();
    convertMirrorSessions();
    reportMissingKinds();
    reportQuotas();
    return ImportAwsOutput{write(), std::move(warnings_)};
  }

 private:
  // --- reporting and typed access (nothing here throws: types are checked first) -----------

  void warn(const std::string& source, const std::string& id, std::string message) {
    warnings_.push_back(ImportWarning{source, id, std::move(message)});
  }
  void warn(const Item& item, const std::string& id, std::string message) {
    warn(*item.source, id, std::move(message));
  }

  static const json* member(const json& object, std::string_view key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::optional<std::string> getString(const Item& item, const std::string& id, const json& o,
                                       std::string_view key) {
    const json* v = member(o, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) {
      warn(item, id, "'" + std::string(key) + "' is not a string: ignored");
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  std::optional<int64_t> getInt(const Item& item, const std::string& id, const json& o,
                                std::string_view key) {
    const json* v = member(o, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) {
      warn(item, id, "'" + std::string(key) + "' is not an integer: ignored");
      return std::nullopt;
    }
    return v->get<int64_t>();
  }

  std::optional<bool> getBool(const Item& item, const std::string& id, const json& o,
                              std::string_view key) {
    const json* v = member(o, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      warn(item, id, "'" + std::string(key) + "' is not true/false: ignored");
      return std::nullopt;
    }
    return v->get<bool>();
  }

  // The array under `key` (empty when absent); a non-array is reported and read as empty.
  const json& getArray(const Item& item, const std::string& id, const json& o,
                       std::string_view key) {
    static const json kEmpty = json::array();
    const json* v = member(o, key);
    if (v == nullptr) return kEmpty;
    if (!v->is_array()) {
      warn(item, id, "'" + std::string(key) + "' is not a list: ignored");
      return kEmpty;
    }
    return *v;
  }

  void checkKeys(const Item& item, const std::string& id, const json& o,
                 const std::set<std::string, std::less<>>& known, std::string_view what) {
    if (!o.is_object()) return;
    for (const auto& [key, value] : o.items()) {
      if (known.count(key) == 0) {
        warn(item, id,
             "unknown key '" + key + "' in " + std::string(what) +
                 ": not understood by the importer, ignored");
      }
    }
  }

  static std::string nameTag(const json& o) {
    for (const char* tags_key : {"Tags", "TagSet"}) {
      const json* tags = member(o, tags_key);
      if (tags == nullptr || !tags->is_array()) continue;
      for (const json& tag : *tags) {
        const json* key = member(tag, "Key");
        const json* value = member(tag, "Value");
        if (key != nullptr && value != nullptr && key->is_string() && value->is_string() &&
            key->get<std::string>() == "Name") {
          return value->get<std::string>();
        }
      }
    }
    return "";
  }

  // A CIDR of the wanted family in canonical text, or a warning.
  std::optional<std::string> cidr(const Item& item, const std::string& id,
                                  const std::string& text, IpFamily family,
                                  const std::string& what) {
    auto parsed = Cidr::parse(text);
    if (!parsed) {
      warn(item, id, what + ": " + parsed.error().message + ": dropped");
      return std::nullopt;
    }
    if (parsed->family() != family) {
      warn(item, id,
           what + ": '" + text + "' is not an " + (family == IpFamily::kV4 ? "IPv4" : "IPv6") +
               " CIDR: dropped");
      return std::nullopt;
    }
    return parsed->toString();
  }

  std::optional<std::string> address(const Item& item, const std::string& id,
                                     const std::string& text, IpFamily family,
                                     const std::string& what) {
    auto parsed = IpAddress::parse(text);
    if (!parsed || parsed->family != family) {
      warn(item, id, what + " '" + text + "' is not a valid " +
                         (family == IpFamily::kV4 ? "IPv4" : "IPv6") + " address: dropped");
      return std::nullopt;
    }
    return parsed->toString();
  }

  // True when the VPC is known to have no IPv6 block, so IPv6 objects can never carry traffic.
  [[nodiscard]] bool vpcLacksIpv6() const {
    return vpc_record_ != nullptr && vpc_.ipv6_cidr_blocks.empty();
  }

  // --- collection ---------------------------------------------------------------------------

  void collect() {
    for (const AwsDocument& doc : documents_) {
      const std::string& source = doc.source;
      if (!doc.json.is_object()) {
        warn(source, "", "the top level is not a JSON object, so not `aws ec2 describe-*` "
                         "output: file ignored");
        continue;
      }
      for (const auto& [key, value] : doc.json.items()) {
        const Kind* kind = nullptr;
        for (const Kind& k : kKinds) {
          if (key == k.top_key) kind = &k;
        }
        if (kind != nullptr) {
          collectKind(*kind, source, value);
        } else if (key == "Entries") {
          collectEntries(doc);
        } else if (key == "PrefixListId") {
          if (!doc.json.contains("Entries")) {
            warn(source, "", "'PrefixListId' without 'Entries': ignored");
          }
        } else if (key == "NextToken") {
          warn(source, "", "'NextToken' present: the AWS output is truncated (--max-items?); "
                           "objects on later pages are missing");
        } else {
          warn(source, "", "unknown top-level key '" + key + "': ignored (expected Vpcs, "
                           "Subnets, SecurityGroups, NetworkAcls, NetworkInterfaces, "
                           "PrefixLists, FlowLogs, TrafficMirrorTargets, TrafficMirrorFilters, "
                           "TrafficMirrorSessions or Entries)");
        }
      }
    }
  }

  void collectKind(const Kind& kind, const std::string& source, const json& list) {
    if (!list.is_array()) {
      warn(source, "", std::string("'") + kind.top_key + "' is not a list: ignored");
      return;
    }
    seen_kinds_.insert(kind.top_key);
    auto& bucket = objects_[kind.top_key];
    size_t index = 0;
    for (const json& object : list) {
      ++index;
      const json* id = member(object, kind.id_key);
      if (id == nullptr || !id->is_string() || id->get<std::string>().empty()) {
        warn(source, "",
             std::string(kind.top_key) + "[" + std::to_string(index - 1) + "] has no " +
                 kind.id_key + ": ignored");
        continue;
      }
      const std::string key = id->get<std::string>();
      const auto [it, inserted] = bucket.emplace(key, Item{&object, &source});
      // The same object in two files (describe-* run twice) is fine; two different objects
      // under one id means the files come from different moments.
      if (!inserted && *it->second.object != object) {
        warn(source, key,
             std::string(kind.noun) + " appears again with different content: the copy from " +
                 *it->second.source + " is used");
      }
    }
  }

  // get-managed-prefix-list-entries prints only {"Entries": [...]}; the user adds the
  // "PrefixListId" of the list the entries belong to.
  void collectEntries(const AwsDocument& doc) {
    const json* id = member(doc.json, "PrefixListId");
    if (id == nullptr || !id->is_string()) {
      warn(doc.source, "", "'Entries' without a 'PrefixListId' string naming the prefix list "
                           "they belong to: ignored (see docs/import-aws.md)");
      return;
    }
    const std::string list_id = id->get<std::string>();
    if (!extra_entries_.emplace(list_id, Item{&doc.json, &doc.source}).second) {
      warn(doc.source, list_id, "entries given in more than one file: the first is used");
    }
  }

  [[nodiscard]] const std::map<std::string, Item>& items(const Kind& kind) {
    return objects_[kind.top_key];
  }

  // --- VPC choice ---------------------------------------------------------------------------

  Result<void> chooseVpc() {
    const auto& vpcs = items(kVpcs);
    std::set<std::string> referenced;  // VpcIds that the other objects name
    for (const Kind& kind : {kSubnets, kSecurityGroups, kNetworkAcls, kInterfaces}) {
      for (const auto& [id, item] : items(kind)) {
        const json* vpc = member(*item.object, "VpcId");
        if (vpc != nullptr && vpc->is_string()) referenced.insert(vpc->get<std::string>());
      }
    }
    auto joined = [](const auto& ids) {
      std::string out;
      for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
      return out;
    };
    if (options_.vpc_id) {
      vpc_.id = *options_.vpc_id;
      if (vpcs.count(vpc_.id) == 0 && referenced.count(vpc_.id) == 0) {
        return makeError("--vpc-id " + vpc_.id + ": no such VPC in the input");
      }
    } else if (vpcs.size() > 1) {
      std::vector<std::string> ids;
      for (const auto& [id, item] : vpcs) ids.push_back(id);
      return makeError("the input holds " + std::to_string(vpcs.size()) + " VPCs (" +
                       joined(ids) + "); a vpcguard config describes one: choose it with "
                       "--vpc-id");
    } else if (vpcs.size() == 1) {
      vpc_.id = vpcs.begin()->first;
    } else if (referenced.size() == 1) {
      vpc_.id = *referenced.begin();
    } else if (referenced.empty()) {
      return makeError("no VPC in the input: give the output of `aws ec2 describe-vpcs` (or of "
                       "describe-subnets / -security-groups / -network-acls / "
                       "-network-interfaces, which name their VPC)");
    } else {
      return makeError("the input names " + std::to_string(referenced.size()) + " VPCs (" +
                       joined(referenced) + ") and holds no describe-vpcs output: choose one "
                       "with --vpc-id");
    }
    for (const auto& [id, item] : vpcs) {
      if (id == vpc_.id) {
        vpc_record_ = &item;
      } else {
        warn(item, id, "VPC not imported: only " + vpc_.id + " is (--vpc-id)");
      }
    }
    return {};
  }

  // False (with a warning) when the object belongs to another VPC than the one imported.
  bool inImportedVpc(const Kind& kind, const std::string& id, const Item& item) {
    const json* vpc = member(*item.object, "VpcId");
    if (vpc == nullptr || !vpc->is_string() || vpc->get<std::string>() == vpc_.id) return true;
    warn(item, id,
         std::string(kind.noun) + " belongs to " + vpc->get<std::string>() + ", not to the "
             "imported " + vpc_.id + ": not imported");
    return false;
  }

  // --- converters ---------------------------------------------------------------------------

  void convertVpc() {
    if (vpc_record_ == nullptr) {
      // Only the id is known: the loader will reject the empty CIDR list, which is the point:
      // the user must add describe-vpcs output (or the blocks) before using the config.
      warn("", vpc_.id, "no `aws ec2 describe-vpcs` output for this VPC: account_id and "
                        "cidr_blocks are unknown and left empty");
      for (const Kind& kind : {kSubnets, kSecurityGroups, kNetworkAcls, kInterfaces}) {
        for (const auto& [id, item] : items(kind)) {
          const json* vpc = member(*item.object, "VpcId");
          const json* owner = member(*item.object, "OwnerId");
          if (vpc_.account_id.empty() && vpc != nullptr && *vpc == vpc_.id && owner != nullptr &&
              owner->is_string()) {
            vpc_.account_id = owner->get<std::string>();
          }
        }
      }
    } else {
      const Item& item = *vpc_record_;
      const json& o = *item.object;
      const std::string& id = vpc_.id;
      checkKeys(item, id, o, kVpcKeys, "VPC");
      vpc_.account_id = getString(item, id, o, "OwnerId").value_or("");
      if (vpc_.account_id.empty()) warn(item, id, "no OwnerId: account_id left empty");
      for (const json& assoc : getArray(item, id, o, "CidrBlockAssociationSet")) {
        const auto block = getString(item, id, assoc, "CidrBlock");
        const json* state = member(assoc, "CidrBlockState");
        const std::string st =
            state != nullptr ? getString(item, id, *state, "State").value_or("") : "associated";
        // A disassociated block is history, not part of the VPC: leaving it out loses nothing.
        if (!block || st == "disassociated" || st == "disassociating") continue;
        if (st != "associated") {
          warn(item, id, "CIDR block " + *block + " is '" + st + "', not associated: omitted");
          continue;
        }
        if (auto c = cidr(item, id, *block, IpFamily::kV4, "CIDR block")) {
          vpc_.cidr_blocks.push_back(*c);
        }
      }
      if (vpc_.cidr_blocks.empty()) {
        if (auto block = getString(item, id, o, "CidrBlock")) {
          if (auto c = cidr(item, id, *block, IpFamily::kV4, "CidrBlock")) {
            vpc_.cidr_blocks.push_back(*c);
          }
        }
      }
      if (vpc_.cidr_blocks.empty()) warn(item, id, "no IPv4 CIDR block: cidr_blocks is empty");
      for (const json& assoc : getArray(item, id, o, "Ipv6CidrBlockAssociationSet")) {
        const auto block = getString(item, id, assoc, "Ipv6CidrBlock");
        const json* state = member(assoc, "Ipv6CidrBlockState");
        const std::string st =
            state != nullptr ? getString(item, id, *state, "State").value_or("") : "associated";
        if (!block || st == "disassociated" || st == "disassociating") continue;
        if (st != "associated") {
          warn(item, id, "IPv6 CIDR block " + *block + " is '" + st + "', not associated: omitted");
          continue;
        }
        if (auto c = cidr(item, id, *block, IpFamily::kV6, "IPv6 CIDR block")) {
          vpc_.ipv6_cidr_blocks.push_back(*c);
        }
      }
    }
    convertRegion();
  }

  void convertRegion() {
    if (options_.region) {
      vpc_.region = *options_.region;
      return;
    }
    std::set<std::string> regions;
    for (const Kind& kind : {kSubnets, kInterfaces}) {
      for (const auto& [id, item] : items(kind)) {
        const json* vpc = member(*item.object, "VpcId");
        if (vpc != nullptr && *vpc != vpc_.id) continue;
        const json* az = member(*item.object, "AvailabilityZone");
        if (az == nullptr || !az->is_string()) continue;
        if (auto region = regionFromAvailabilityZone(az->get<std::string>())) {
          regions.insert(*region);
        } else {
          warn(item, id, "availability zone '" + az->get<std::string>() +
                             "' does not name a region");
        }
      }
    }
    if (regions.empty()) {
      vpc_.region = "us-east-1";
      warn("", vpc_.id, "region unknown (no availability zone in the input): us-east-1 "
                        "assumed; give --region");
    } else {
      vpc_.region = *regions.begin();
      if (regions.size() > 1) {
        warn("", vpc_.id, "availability zones name several regions: " + vpc_.region +
                              " used; give --region");
      }
    }
  }

  void convertPrefixLists() {
    std::set<std::string> ids;
    for (const auto& [id, item] : items(kPrefixLists)) ids.insert(id);
    for (const auto& [id, item] : extra_entries_) ids.insert(id);
    for (const std::string& id : ids) {
      PrefixListOut out;
      out.id = id;
      std::optional<int64_t> max_entries;
      std::optional<std::vector<std::string>> entries;
      const auto record = items(kPrefixLists).find(id);
      const Item* first_item = nullptr;
      if (record != items(kPrefixLists).end()) {
        const Item& item = record->second;
        first_item = &item;
        const json& o = *item.object;
        checkKeys(item, id, o, kPrefixListKeys, "prefix list");
        out.name = getString(item, id, o, "PrefixListName").value_or(id);
        max_entries = getInt(item, id, o, "MaxEntries");
        if (member(o, "Entries") != nullptr) entries = readEntries(item, id, o);
      }
      if (const auto extra = extra_entries_.find(id); extra != extra_entries_.end()) {
        if (first_item == nullptr) {
          first_item = &extra->second;
          out.name = id;
          warn(extra->second, id, "entries given but no describe-managed-prefix-lists record: "
                                  "name and max_entries unknown (name = id)");
        }
        if (entries) {
          warn(extra->second, id, "entries given twice (in the prefix list and in a separate "
                                  "file): the separate file's are used");
        }
        entries = readEntries(extra->second, id, *extra->second.object);
      }
      if (!entries) {
        warn(*first_item, id,
             "entries unknown (describe-managed-prefix-lists does not print them): written as "
             "entries = [], so rules naming this list match nothing; add the output of `aws "
             "ec2 get-managed-prefix-list-entries --prefix-list-id " + id + "` with a "
             "\"PrefixListId\" key");
        entries.emplace();
      }
      out.entries = *entries;
      if (!max_entries) {
        max_entries = static_cast<int64_t>(std::max<size_t>(out.entries.size(), 1));
        warn(*first_item, id, "MaxEntries unknown: max_entries = " +
                                  std::to_string(*max_entries) +
                                  " (the number of known entries, at least 1)");
      } else if (static_cast<size_t>(std::max<int64_t>(*max_entries, 0)) < out.entries.size()) {
        warn(*first_item, id, "more entries than MaxEntries (" + std::to_string(*max_entries) +
                                  "): max_entries raised to " +
                                  std::to_string(out.entries.size()));
        max_entries = static_cast<int64_t>(out.entries.size());
      }
      out.max_entries = *max_entries;
      prefix_lists_.push_back(std::move(out));
    }
  }

  std::vector<std::string> readEntries(const Item& item, const std::string& id, const json& o) {
    std::vector<std::string> out;
    for (const json& entry : getArray(item, id, o, "Entries")) {
      const auto text = getString(item, id, entry, "Cidr");
      if (!text) {
        warn(item, id, "prefix list entry without 'Cidr': dropped");
        continue;
      }
      if (auto c = cidr(item, id, *text, familyOf(*text), "prefix list entry")) out.push_back(*c);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  void convertSecurityGroups() {
    // Which groups exist decides which references can be kept, so collect the ids first.
    for (const auto& [id, item] : items(kSecurityGroups)) {
      const json* vpc = member(*item.object, "VpcId");
      if (vpc == nullptr || *vpc == vpc_.id) group_ids_.insert(id);
    }
    for (const auto& [id, item] : items(kSecurityGroups)) {
      if (!inImportedVpc(kSecurityGroups, id, item)) continue;
      const json& o = *item.object;
      checkKeys(item, id, o, kSecurityGroupKeys, "security group");
      SecurityGroupOut out;
      out.id = id;
      out.name = getString(item, id, o, "GroupName").value_or("");
      out.description = getString(item, id, o, "Description").value_or("");
      // AWS names the VPC's default group "default" and lets no other group take that name.
      out.is_default = out.name == "default";
      if (out.name.empty()) warn(item, id, "no GroupName: name left empty");
      for (const bool egress : {false, true}) {
        const char* key = egress ? "IpPermissionsEgress" : "IpPermissions";
        auto& rules = egress ? out.egress : out.ingress;
        size_t index = 0;
        for (const json& permission : getArray(item, id, o, key)) {
          convertPermission(item, id, permission, egress, index++, rules);
        }
      }
      security_groups_.push_back(std::move(out));
    }
  }

  void convertPermission(const Item& item, const std::string& id, const json& p, bool egress,
                         size_t index, std::vector<SgRule>& rules) {
    const std::string where = std::string(egress ? "egress" : "ingress") + " permission " +
                              std::to_string(index);
    checkKeys(item, id, p, kPermissionKeys, where);
    const auto aws_protocol = getString(item, id, p, "IpProtocol");
    const auto protocol = aws_protocol ? protocolName(*aws_protocol) : std::nullopt;
    if (!protocol) {
      warn(item, id, where + ": IpProtocol '" + aws_protocol.value_or("") +
                         "' not understood: permission dropped");
      return;
    }
    SgRule base;
    base.ip_protocol = *protocol;
    const auto from = getInt(item, id, p, "FromPort");
    const auto to = getInt(item, id, p, "ToPort");
    if (hasPorts(*protocol)) {
      if (!from || !to || *from < 0 || *to > 65535 || *from > *to) {
        warn(item, id, where + ": " + *protocol + " without a valid FromPort/ToPort range: "
                                                  "permission dropped");
        return;
      }
      base.from_port = from;
      base.to_port = to;
    } else if (isIcmp(*protocol)) {
      // AWS keeps the ICMP type in FromPort and the code in ToPort; -1 = any.
      base.from_port = from.value_or(-1);
      base.to_port = to.value_or(-1);
    }
    const std::string what = where + " (" + *protocol +
                             (base.from_port ? " " + std::to_string(*base.from_port) + "-" +
                                                   std::to_string(*base.to_port)
                                             : "") +
                             ")";
    size_t peers = 0;
    auto add = [&](std::string peer_key, std::string peer_value, const json& peer) {
      SgRule rule = base;
      rule.peer_key = std::move(peer_key);
      rule.peer_value = std::move(peer_value);
      rule.description = getString(item, id, peer, "Description").value_or("");
      rules.push_back(std::move(rule));
    };
    for (const json& range : getArray(item, id, p, "IpRanges")) {
      ++peers;
      const auto text = getString(item, id, range, "CidrIp");
      if (!text) {
        warn(item, id, what + ": IpRanges entry without CidrIp: dropped");
      } else if (auto c = cidr(item, id, *text, IpFamily::kV4, what)) {
        add("cidr_ipv4", *c, range);
      }
    }
    for (const json& range : getArray(item, id, p, "Ipv6Ranges")) {
      ++peers;
      const auto text = getString(item, id, range, "CidrIpv6");
      if (!text) {
        warn(item, id, what + ": Ipv6Ranges entry without CidrIpv6: dropped");
      } else if (vpcLacksIpv6()) {
        warn(item, id, what + " with " + *text + ": IPv6 rule in a VPC without IPv6: dropped "
                                                 "(it could never match)");
      } else if (auto c = cidr(item, id, *text, IpFamily::kV6, what)) {
        add("cidr_ipv6", *c, range);
      }
    }
    for (const json& pair : getArray(item, id, p, "UserIdGroupPairs")) {
      ++peers;
      const auto group = getString(item, id, pair, "GroupId");
      const auto user = getString(item, id, pair, "UserId");
      const auto peering = getString(item, id, pair, "VpcPeeringConnectionId");
      const auto vpc = getString(item, id, pair, "VpcId");
      if (!group) {
        warn(item, id, what + ": UserIdGroupPairs entry without GroupId: dropped");
      } else if (peering || (vpc && *vpc != vpc_.id)) {
        warn(item, id, what + " references " + *group + " in " + vpc.value_or("a peered VPC") +
                           (peering ? " via " + *peering : "") +
                           ": groups of other VPCs cannot be represented: rule dropped");
      } else if (user && !vpc_.account_id.empty() && *user != vpc_.account_id) {
        warn(item, id, what + " references " + *group + " of account " + *user +
                           ", not " + vpc_.account_id +
                           ": groups of other accounts cannot be represented: rule dropped");
      } else if (group_ids_.count(*group) == 0) {
        warn(item, id, what + " references " + *group +
                           ", which is not in the input: rule dropped");
      } else {
        add("referenced_group_id", *group, pair);
      }
    }
    for (const json& list : getArray(item, id, p, "PrefixListIds")) {
      ++peers;
      const auto list_id = getString(item, id, list, "PrefixListId");
      if (!list_id) {
        warn(item, id, what + ": PrefixListIds entry without PrefixListId: dropped");
      } else if (!knownPrefixList(*list_id)) {
        warn(item, id, what + " references prefix list " + *list_id +
                           ", which is not in the input: rule dropped");
      } else {
        add("prefix_list_id", *list_id, list);
      }
    }
    if (peers == 0) warn(item, id, what + " names no peer: nothing to import");
  }

  [[nodiscard]] bool knownPrefixList(const std::string& id) const {
    return std::any_of(prefix_lists_.begin(), prefix_lists_.end(),
                       [&](const PrefixListOut& p) { return p.id == id; });
  }

  void convertNetworkAcls() {
    for (const auto& [id, item] : items(kNetworkAcls)) {
      if (!inImportedVpc(kNetworkAcls, id, item)) continue;
      const json& o = *item.object;
      checkKeys(item, id, o, kNetworkAclKeys, "network ACL");
      NetworkAclOut out;
      out.id = id;
      out.is_default = getBool(item, id, o, "IsDefault").value_or(false);
      if (out.is_default) default_nacl_ = id;
      size_t index = 0;
      for (const json& entry : getArray(item, id, o, "Entries")) {
        if (auto e = convertNaclEntry(item, id, entry, index++)) out.entries.push_back(*e);
      }
      std::stable_sort(out.entries.begin(), out.entries.end(),
                       [](const NaclEntryOut& a, const NaclEntryOut& b) {
                         return std::pair(a.egress, a.rule_number) <
                                std::pair(b.egress, b.rule_number);
                       });
      for (size_t i = 1; i < out.entries.size(); ++i) {
        const auto& a = out.entries[i - 1];
        const auto& b = out.entries[i];
        if (a.egress == b.egress && a.rule_number == b.rule_number &&
            a.cidr_key == b.cidr_key) {
          warn(item, id, "rule " + std::to_string(b.rule_number) + " appears twice in one "
                                                                   "direction");
        }
      }
      for (const json& assoc : getArray(item, id, o, "Associations")) {
        const auto subnet = getString(item, id, assoc, "SubnetId");
        if (!subnet) continue;
        const auto [it, inserted] = subnet_nacl_.emplace(*subnet, id);
        if (!inserted) {
          warn(item, id, "subnet " + *subnet + " is associated with " + it->second + " and " +
                             id + ": " + it->second + " is used");
        }
        if (items(kSubnets).count(*subnet) == 0) {
          warn(item, id, "associated with subnet " + *subnet + ", which is not in the input");
        }
      }
      network_acls_.push_back(std::move(out));
    }
  }

  std::optional<NaclEntryOut> convertNaclEntry(const Item& item, const std::string& id,
                                               const json& e, size_t index) {
    const std::string where = "entry " + std::to_string(index);
    checkKeys(item, id, e, kNaclEntryKeys, "network ACL " + where);
    NaclEntryOut out;
    const auto number = getInt(item, id, e, "RuleNumber");
    const auto egress = getBool(item, id, e, "Egress");
    if (!number || !egress) {
      warn(item, id, where + " without RuleNumber or Egress: dropped");
      return std::nullopt;
    }
    // AWS lists the final `*` deny as rule 32767 (IPv4) and 32768 (IPv6, when the VPC has
    // IPv6); vpcguard adds it itself to every NACL, so writing it would duplicate it.
    if (*number == kImplicitDenyV4 || *number == kImplicitDenyV6) return std::nullopt;
    out.rule_number = *number;
    out.egress = *egress;
    const std::string rule = std::string(out.egress ? "egress" : "ingress") + " rule " +
                             std::to_string(out.rule_number);
    if (out.rule_number < 1 || out.rule_number > 32766) {
      warn(item, id, rule + ": rule numbers run 1..32766: dropped");
      return std::nullopt;
    }
    const auto aws_protocol = getString(item, id, e, "Protocol");
    const auto protocol = aws_protocol ? protocolName(*aws_protocol) : std::nullopt;
    if (!protocol) {
      warn(item, id, rule + ": Protocol '" + aws_protocol.value_or("") +
                         "' not understood: dropped");
      return std::nullopt;
    }
    out.protocol = *protocol;
    const auto action = getString(item, id, e, "RuleAction");
    if (action != "allow" && action != "deny") {
      warn(item, id, rule + ": RuleAction '" + action.value_or("") +
                         "' is neither allow nor deny: dropped");
      return std::nullopt;
    }
    out.rule_action = *action;
    const auto v4 = getString(item, id, e, "CidrBlock");
    const auto v6 = getString(item, id, e, "Ipv6CidrBlock");
    if (v4.has_value() == v6.has_value()) {
      warn(item, id, rule + ": needs exactly one of CidrBlock and Ipv6CidrBlock: dropped");
      return std::nullopt;
    }
    if (v6 && vpcLacksIpv6()) {
      warn(item, id, rule + " for " + *v6 + ": IPv6 rule in a VPC without IPv6: dropped (it "
                                            "could never match)");
      return std::nullopt;
    }
    const auto c = cidr(item, id, v4 ? *v4 : *v6, v4 ? IpFamily::kV4 : IpFamily::kV6, rule);
    if (!c) return std::nullopt;
    out.cidr_key = v4 ? "cidr_block" : "ipv6_cidr_block";
    out.cidr = *c;
    if (hasPorts(out.protocol)) {
      if (const json* range = member(e, "PortRange")) {
        const auto from = getInt(item, id, *range, "From");
        const auto to = getInt(item, id, *range, "To");
        if (!from || !to || *from < 0 || *to > 65535 || *from > *to) {
          warn(item, id, rule + ": invalid PortRange: dropped");
          return std::nullopt;
        }
        out.port_range = std::pair(*from, *to);
      }
    } else if (isIcmp(out.protocol)) {
      if (const json* icmp = member(e, "IcmpTypeCode")) {
        out.icmp_type_code = std::pair(getInt(item, id, *icmp, "Type").value_or(-1),
                                       getInt(item, id, *icmp, "Code").value_or(-1));
      }
    }
    return out;
  }

  void convertSubnets() {
    for (const auto& [id, item] : items(kSubnets)) {
      if (!inImportedVpc(kSubnets, id, item)) continue;
      const json& o = *item.object;
      checkKeys(item, id, o, kSubnetKeys, "subnet");
      SubnetOut out;
      out.id = id;
      out.name = nameTag(o);
      const auto block = getString(item, id, o, "CidrBlock");
      const auto c = block ? cidr(item, id, *block, IpFamily::kV4, "CidrBlock") : std::nullopt;
      if (!c) {
        warn(item, id, "subnet without a valid IPv4 CidrBlock: not imported (its interfaces "
                       "are not imported either)");
        continue;
      }
      out.cidr_block = *c;
      for (const json& assoc : getArray(item, id, o, "Ipv6CidrBlockAssociationSet")) {
        const auto v6 = getString(item, id, assoc, "Ipv6CidrBlock");
        const json* state = member(assoc, "Ipv6CidrBlockState");
        const std::string st =
            state != nullptr ? getString(item, id, *state, "State").value_or("") : "associated";
        if (!v6 || st == "disassociated" || st == "disassociating") continue;
        if (st != "associated") {
          warn(item, id, "IPv6 CIDR block " + *v6 + " is '" + st + "': omitted");
        } else if (vpcLacksIpv6()) {
          warn(item, id, "IPv6 CIDR block " + *v6 + " in a VPC without IPv6: omitted");
        } else if (out.ipv6_cidr_block) {
          warn(item, id, "several IPv6 CIDR blocks: only " + *out.ipv6_cidr_block + " is kept");
        } else {
          out.ipv6_cidr_block = cidr(item, id, *v6, IpFamily::kV6, "IPv6 CIDR block");
        }
      }
      if (const auto nacl = subnet_nacl_.find(id); nacl != subnet_nacl_.end()) {
        // The loader reads a missing network_acl_id as the default NACL, as AWS does.
        if (nacl->second != default_nacl_) out.network_acl_id = nacl->second;
      }
      subnet_ids_.insert(id);
      subnets_.push_back(std::move(out));
    }
  }

  void convertInterfaces() {
    for (const auto& [id, item] : items(kInterfaces)) {
      if (!inImportedVpc(kInterfaces, id, item)) continue;
      const json& o = *item.object;
      checkKeys(item, id, o, kInterfaceKeys, "network interface");
      if (getBool(item, id, o, "RequesterManaged").value_or(false)) {
        // NAT gateways, load balancers, VPC endpoints...: AWS runs them, not a VM on the host.
        warn(item, id, "requester-managed interface (" +
                           getString(item, id, o, "InterfaceType").value_or("?") + ", " +
                           getString(item, id, o, "RequesterId").value_or("?") +
                           "): not a VM vpcguard can host: not imported");
        continue;
      }
      InterfaceOut out;
      out.id = id;
      out.comment = getString(item, id, o, "Description").value_or("");
      out.subnet_id = getString(item, id, o, "SubnetId").value_or("");
      if (subnet_ids_.count(out.subnet_id) == 0) {
        warn(item, id, "subnet '" + out.subnet_id + "' is not in the input: not imported");
        continue;
      }
      const auto mac = getString(item, id, o, "MacAddress");
      Result<std::string> canonical =
          mac ? canonicalMac(*mac) : Result<std::string>(makeError("no MacAddress"));
      if (!canonical) {
        warn(item, id, canonical.error().message + ": not imported");
        continue;
      }
      out.mac_address = *canonical;
      readAddresses(item, id, o, out);
      if (out.private_ip_addresses.empty()) {
        warn(item, id, "no private IPv4 address: not imported");
        continue;
      }
      for (const json& group : getArray(item, id, o, "Groups")) {
        const auto group_id = getString(item, id, group, "GroupId");
        if (!group_id) continue;
        if (group_ids_.count(*group_id) == 0) {
          warn(item, id, "security group " + *group_id + " is not in the input: left out of "
                                                         "security_group_ids");
        } else {
          out.security_group_ids.push_back(*group_id);
        }
      }
      if (out.security_group_ids.empty()) {
        warn(item, id, "no imported security group: the VPC's default group will apply");
      }
      out.source_dest_check = getBool(item, id, o, "SourceDestCheck").value_or(true);
      if (const json* ct = member(o, "ConnectionTrackingConfiguration")) {
        for (const auto& [aws_key, key] :
             {std::pair("TcpEstablishedTimeout", "tcp_established_timeout"),
              std::pair("UdpTimeout", "udp_timeout"),
              std::pair("UdpStreamTimeout", "udp_stream_timeout")}) {
          if (auto v = getInt(item, id, *ct, aws_key)) {
            out.connection_tracking.emplace_back(key, *v);
          }
        }
      }
      reportUnrepresented(item, id, o);
      interfaces_.push_back(std::move(out));
    }
  }

  void readAddresses(const Item& item, const std::string& id, const json& o, InterfaceOut& out) {
    std::vector<std::string> secondary;
    for (const json& a : getArray(item, id, o, "PrivateIpAddresses")) {
      const auto text = getString(item, id, a, "PrivateIpAddress");
      if (!text) continue;
      auto addr = address(item, id, *text, IpFamily::kV4, "private IP address");
      if (!addr) continue;
      if (getBool(item, id, a, "Primary").value_or(false)) {
        out.private_ip_addresses.push_back(*addr);
      } else {
        secondary.push_back(*addr);
      }
      if (member(a, "Association") != nullptr) {
        warn(item, id, "public IPv4 address associated with " + *addr +
                           ": vpcguard has no internet gateway/NAT: not imported");
      }
    }
    if (out.private_ip_addresses.empty()) {
      // Older output or hand-written JSON: PrivateIpAddress alone is the primary.
      if (const auto text = getString(item, id, o, "PrivateIpAddress")) {
        if (auto addr = address(item, id, *text, IpFamily::kV4, "PrivateIpAddress")) {
          out.private_ip_addresses.push_back(*addr);
        }
      }
      if (!out.private_ip_addresses.empty()) {
        std::erase(secondary, out.private_ip_addresses.front());
      } else if (!secondary.empty()) {
        warn(item, id, "no address is marked Primary: " + secondary.front() + " taken as primary");
      }
    }
    out.private_ip_addresses.insert(out.private_ip_addresses.end(), secondary.begin(),
                                    secondary.end());
    for (const json& a : getArray(item, id, o, "Ipv6Addresses")) {
      const auto text = getString(item, id, a, "Ipv6Address");
      if (!text) continue;
      if (vpcLacksIpv6()) {
        warn(item, id, "IPv6 address " + *text + " in a VPC without IPv6: omitted");
      } else if (auto addr = address(item, id, *text, IpFamily::kV6, "IPv6 address")) {
        out.ipv6_addresses.push_back(*addr);
      }
    }
  }

  // describe-flow-logs. What a flow log records (resource, traffic type, format, interval) is
  // kept; where AWS delivers it cannot be, so each imported flow log is reported once.
  void convertFlowLogs() {
    const std::set<std::string> interface_ids = importedInterfaceIds();
    for (const auto& [id, item] : items(kFlowLogs)) {
      const json& o = *item.object;
      checkKeys(item, id, o, kFlowLogKeys, "flow log");
      FlowLogOut out;
      out.id = id;
      if (!id.starts_with("fl-")) {
        warn(item, id, "flow log id does not start with fl-: not imported");
        continue;
      }
      out.resource_id = getString(item, id, o, "ResourceId").value_or("");
      if (out.resource_id != vpc_.id && subnet_ids_.count(out.resource_id) == 0 &&
          interface_ids.count(out.resource_id) == 0) {
        warn(item, id, "flow log of '" + out.resource_id + "', which is not " + vpc_.id +
                           " or one of its imported subnets or interfaces: not imported");
        continue;
      }
      const auto traffic = getString(item, id, o, "TrafficType");
      if (traffic != "ACCEPT" && traffic != "REJECT" && traffic != "ALL") {
        warn(item, id, "TrafficType '" + traffic.value_or("") +
                           "' is not ACCEPT, REJECT or ALL: not imported");
        continue;
      }
      out.traffic_type = *traffic;
      if (const auto format = getString(item, id, o, "LogFormat")) {
        // AWS prints the default format when none was chosen: leave it out, which means the same.
        const auto fields = flowlog::parseFormat(*format);
        if (!fields) {
          warn(item, id, "LogFormat not understood (" + fields.error().message +
                             "): the default format is written instead");
        } else if (*fields != *flowlog::parseFormat(flowlog::kDefaultFormat)) {
          out.log_format = *format;
        }
      }
      if (const auto interval = getInt(item, id, o, "MaxAggregationInterval")) {
        if (*interval == 60 || *interval == 600) {
          out.max_aggregation_interval = *interval;
        } else {
          warn(item, id, "MaxAggregationInterval " + std::to_string(*interval) +
                             " is not 60 or 600: the default, 600, is written");
        }
      }
      // Before LogDestinationType existed, every flow log went to CloudWatch Logs.
      const std::string type =
          getString(item, id, o, "LogDestinationType").value_or("cloud-watch-logs");
      auto where = getString(item, id, o, "LogDestination");
      if (!where) where = getString(item, id, o, "LogGroupName");
      out.aws_destination = type + " " + where.value_or("(no destination given)");
      warn(item, id, "delivers to " + out.aws_destination +
                         (member(o, "DestinationOptions") != nullptr ? " (with DestinationOptions)"
                                                                     : "") +
                         ", which cannot be reproduced here: log_destination = \"" +
                         std::string(kFlowLogDestination) + "\" instead");
      flow_logs_.push_back(std::move(out));
    }
  }

  [[nodiscard]] std::set<std::string> importedInterfaceIds() const {
    std::set<std::string> ids;
    for (const InterfaceOut& i : interfaces_) ids.insert(i.id);
    return ids;
  }

  // describe-traffic-mirror-targets. An interface target is kept when its interface is imported.
  // AWS's load balancer targets (NLB, GWLB endpoint) have no local equivalent: they are written
  // without an address, which the loader refuses until the user sets vxlan_remote_ip to the
  // appliance's address, so the sessions that use them are kept whole meanwhile.
  void convertMirrorTargets() {
    const std::set<std::string> interface_ids = importedInterfaceIds();
    for (const auto& [id, item] : items(kMirrorTargets)) {
      const json& o = *item.object;
      checkKeys(item, id, o, kMirrorTargetKeys, "traffic mirror target");
      if (!id.starts_with("tmt-")) {
        warn(item, id, "traffic mirror target id does not start with tmt-: not imported");
        continue;
      }
      MirrorTargetOut out;
      out.id = id;
      out.description = getString(item, id, o, "Description").value_or("");
      if (const auto eni = getString(item, id, o, "NetworkInterfaceId")) {
        if (interface_ids.count(*eni) == 0) {
          warn(item, id, "target interface " + *eni + " is not one of the imported interfaces: "
                         "not imported (nor are the sessions that use this target)");
          continue;
        }
        out.network_interface_id = *eni;
      } else if (const auto remote = getString(item, id, o, "VxlanRemoteIp")) {
        out.vxlan_remote_ip = *remote;
      } else {
        out.aws_target = loadBalancerTarget(item, id, o);
        warn(item, id, "AWS sends the copies to " + out.aws_target + ", which has no local "
                       "equivalent: set vxlan_remote_ip to the appliance's IPv4 address in the "
                       "config (written without an address, so the config does not load until "
                       "then)");
      }
      mirror_targets_.push_back(std::move(out));
    }
  }

  std::string loadBalancerTarget(const Item& item, const std::string& id, const json& o) {
    if (const auto arn = getString(item, id, o, "NetworkLoadBalancerArn")) {
      return "Network Load Balancer " + *arn;
    }
    if (const auto endpoint = getString(item, id, o, "GatewayLoadBalancerEndpointId")) {
      return "Gateway Load Balancer endpoint " + *endpoint;
    }
    return "a target of type '" + getString(item, id, o, "Type").value_or("?") +
           "' without NetworkInterfaceId";
  }

  // describe-traffic-mirror-filters. Filters belong to no VPC: every one is imported. An accept
  // rule vpcguard cannot represent is dropped (reported): the session then mirrors less, never
  // more. A reject rule cannot be dropped alone (a later accept rule would then mirror what it
  // rejects), so the whole direction's rule list goes with it (reported): no rule then matches,
  // and that direction mirrors nothing.
  void convertMirrorFilters() {
    for (const auto& [id, item] : items(kMirrorFilters)) {
      const json& o = *item.object;
      checkKeys(item, id, o, kMirrorFilterKeys, "traffic mirror filter");
      if (!id.starts_with("tmf-")) {
        warn(item, id, "traffic mirror filter id does not start with tmf-: not imported");
        continue;
      }
      MirrorFilterOut out;
      out.id = id;
      out.description = getString(item, id, o, "Description").value_or("");
      for (const json& service : getArray(item, id, o, "NetworkServices")) {
        if (service == "amazon-dns") {
          out.network_services.emplace_back("amazon-dns");  // kept; no effect (docs/config.md)
        } else {
          warn(item, id, "network service " + service.dump() + " not understood: dropped");
        }
      }
      for (const bool egress : {false, true}) {
        auto& rules = egress ? out.egress_rules : out.ingress_rules;
        std::optional<std::string> dropped_reject;  // the first reject rule not converted
        for (const json& rule :
             getArray(item, id, o, egress ? "EgressFilterRules" : "IngressFilterRules")) {
          if (auto r = convertMirrorRule(item, id, rule, egress)) {
            rules.push_back(std::move(*r));
          } else if (!dropped_reject && isRejectRule(rule)) {
            const json* number = member(rule, "RuleNumber");
            dropped_reject = number != nullptr && number->is_number_integer()
                                 ? "rule " + number->dump()
                                 : std::string("a rule without a valid RuleNumber");
          }
        }
        if (dropped_reject) {
          const std::string direction = egress ? "egress" : "ingress";
          warn(item, id,
               direction + " " + *dropped_reject +
                   " is a reject rule that cannot be imported; dropping it alone would let a "
                   "later accept rule mirror what it rejects, so all " +
                   direction + " rules of the filter are dropped (" + std::to_string(rules.size()) +
                   " more) and its sessions mirror no " + direction +
                   " traffic: mirrors less, never more");
          rules.clear();
        }
        std::stable_sort(rules.begin(), rules.end(), [](const auto& a, const auto& b) {
          return a.rule_number < b.rule_number;
        });
      }
      mirror_filters_.push_back(std::move(out));
    }
  }

  // A rule whose RuleAction says reject, whatever else is wrong with it.
  static bool isRejectRule(const json& r) {
    const json* action = member(r, "RuleAction");
    return action != nullptr && action->is_string() && action->get<std::string>() == "reject";
  }

  std::optional<MirrorRuleOut> convertMirrorRule(const Item& item, const std::string& id,
                                                 const json& r, bool egress) {
    const std::string direction = egress ? "egress rule" : "ingress rule";
    checkKeys(item, id, r, kMirrorRuleKeys, "traffic mirror filter " + direction);
    MirrorRuleOut out;
    const auto number = getInt(item, id, r, "RuleNumber");
    if (!number || *number < 1 || *number > 32766) {
      warn(item, id, direction + " without a RuleNumber in 1..32766: dropped");
      return std::nullopt;
    }
    out.rule_number = *number;
    const std::string rule = direction + " " + std::to_string(out.rule_number);
    const auto action = getString(item, id, r, "RuleAction");
    if (action != "accept" && action != "reject") {
      warn(item, id, rule + ": RuleAction '" + action.value_or("") +
                         "' is neither accept nor reject: dropped");
      return std::nullopt;
    }
    out.rule_action = *action;
    if (const json* protocol = member(r, "Protocol")) {
      const int64_t p = protocol->is_number_integer() ? protocol->get<int64_t>() : -2;
      if (p < -1 || p > 255) {
        warn(item, id, rule + ": Protocol " + protocol->dump() + " is not a protocol number: "
                                                                 "dropped");
        return std::nullopt;
      }
      if (p != -1) out.protocol = p;
    }
    const auto source = getString(item, id, r, "SourceCidrBlock");
    const auto destination = getString(item, id, r, "DestinationCidrBlock");
    if (!source || !destination) {
      warn(item, id, rule + ": needs SourceCidrBlock and DestinationCidrBlock: dropped");
      return std::nullopt;
    }
    const IpFamily family = familyOf(*source);
    const auto s = cidr(item, id, *source, family, rule + " SourceCidrBlock");
    const auto d = cidr(item, id, *destination, family, rule + " DestinationCidrBlock");
    if (!s || !d) return std::nullopt;
    out.source_cidr_block = *s;
    out.destination_cidr_block = *d;
    if (!mirrorPorts(item, id, r, rule, "SourcePortRange", out.protocol, out.source_port_range) ||
        !mirrorPorts(item, id, r, rule, "DestinationPortRange", out.protocol,
                     out.destination_port_range)) {
      return std::nullopt;
    }
    out.description = getString(item, id, r, "Description").value_or("");
    return out;
  }

  // False (reported) when the port range under `key` cannot be represented.
  bool mirrorPorts(const Item& item, const std::string& id, const json& r, const std::string& rule,
                   const char* key, const std::optional<int64_t>& protocol, PortPair& out) {
    const json* range = member(r, key);
    if (range == nullptr) return true;
    if (protocol != model::kProtoTcp && protocol != model::kProtoUdp) {
      warn(item, id, rule + ": " + key + " on a protocol other than tcp (6) or udp (17): dropped");
      return false;
    }
    const auto from = getInt(item, id, *range, "FromPort");
    const auto to = getInt(item, id, *range, "ToPort");
    if (!from || !to || *from < 0 || *to > 65535 || *from > *to) {
      warn(item, id, rule + ": invalid " + key + ": dropped");
      return false;
    }
    out = std::pair(*from, *to);
    return true;
  }

  // describe-traffic-mirror-sessions: the sessions of imported interfaces whose target and
  // filter are imported.
  void convertMirrorSessions() {
    const std::set<std::string> interface_ids = importedInterfaceIds();
    std::set<std::string> target_ids;
    std::set<std::string> filter_ids;
    for (const MirrorTargetOut& t : mirror_targets_) target_ids.insert(t.id);
    for (const MirrorFilterOut& f : mirror_filters_) filter_ids.insert(f.id);
    for (const auto& [id, item] : items(kMirrorSessions)) {
      const json& o = *item.object;
      checkKeys(item, id, o, kMirrorSessionKeys, "traffic mirror session");
      MirrorSessionOut out;
      out.id = id;
      out.network_interface_id = getString(item, id, o, "NetworkInterfaceId").value_or("");
      out.traffic_mirror_target_id = getString(item, id, o, "TrafficMirrorTargetId").value_or("");
      out.traffic_mirror_filter_id = getString(item, id, o, "TrafficMirrorFilterId").value_or("");
      const auto number = getInt(item, id, o, "SessionNumber");
      std::string why;
      if (!id.starts_with("tms-")) {
        why = "traffic mirror session id does not start with tms-";
      } else if (interface_ids.count(out.network_interface_id) == 0) {
        why = "session of '" + out.network_interface_id +
              "', which is not one of the imported interfaces";
      } else if (target_ids.count(out.traffic_mirror_target_id) == 0) {
        why = "its target '" + out.traffic_mirror_target_id + "' is not imported";
      } else if (filter_ids.count(out.traffic_mirror_filter_id) == 0) {
        why = "its filter '" + out.traffic_mirror_filter_id + "' is not imported";
      } else if (!number || *number < 1 || *number > 32766) {
        why = "no SessionNumber in 1..32766";
      }
      if (!why.empty()) {
        warn(item, id, why + ": not imported");
        continue;
      }
      out.session_number = *number;
      out.packet_length = packetLength(item, id, o);
      out.virtual_network_id = getInt(item, id, o, "VirtualNetworkId");
      if (out.virtual_network_id &&
          (*out.virtual_network_id < 0 || *out.virtual_network_id > kMaxVirtualNetworkId)) {
        warn(item, id, "VirtualNetworkId " + std::to_string(*out.virtual_network_id) +
                           " is not a 24-bit VNI: left out, so a unique one is chosen");
        out.virtual_network_id.reset();
      }
      out.description = getString(item, id, o, "Description").value_or("");
      mirror_sessions_.push_back(std::move(out));
    }
  }

  std::optional<int64_t> packetLength(const Item& item, const std::string& id, const json& o) {
    const auto length = getInt(item, id, o, "PacketLength");
    if (!length || (*length >= kMinPacketLength && *length <= kMaxPacketLength)) return length;
    if (*length >= 1 && *length < kMinPacketLength) {
      warn(item, id, "PacketLength " + std::to_string(*length) + " is below the 14-byte Ethernet "
                     "header, which Open vSwitch cannot truncate below: packet_length = 14");
      return kMinPacketLength;
    }
    warn(item, id, "PacketLength " + std::to_string(*length) + " is outside 1..8500: left out, so "
                   "whole packets are mirrored");
    return std::nullopt;
  }

  // Interface features that change what the VM can send or receive but have no vpcguard field.
  void reportUnrepresented(const Item& item, const std::string& id, const json& o) {
    // "interface" is an ordinary ENI; EFA's OS-bypass traffic and trunk/branch ENIs of ECS do
    // not cross an OVS port the way plain IP traffic does.
    const auto type = getString(item, id, o, "InterfaceType").value_or("interface");
    if (type != "interface") {
      warn(item, id, "interface type '" + type + "' imported as a plain interface: "
                     "what is special about it is not represented");
    }
    for (const char* key : {"Ipv4Prefixes", "Ipv6Prefixes"}) {
      if (!getArray(item, id, o, key).empty()) {
        warn(item, id, std::string(key) + " (prefix delegation) cannot be represented: the "
                                          "prefixes are not imported");
      }
    }
    const json* assoc = member(o, "Association");
    const json* addresses = member(o, "PrivateIpAddresses");
    // AWS repeats the primary address's association at the interface level; readAddresses()
    // has reported it already then.
    const bool per_address =
        addresses != nullptr && addresses->is_array() &&
        std::any_of(addresses->begin(), addresses->end(),
                    [](const json& a) { return member(a, "Association") != nullptr; });
    if (assoc != nullptr && !per_address) {
      warn(item, id, "public IPv4 address associated: vpcguard has no internet gateway/NAT: "
                     "not imported");
    }
  }

  void reportMissingKinds() {
    if (seen_kinds_.count("NetworkAcls") == 0) {
      warn("", vpc_.id, "no describe-network-acls output: every subnet gets the default NACL, "
                        "which allows all traffic; custom NACLs of the VPC are lost");
    }
    if (seen_kinds_.count("SecurityGroups") == 0 && !interfaces_.empty()) {
      warn("", vpc_.id, "no describe-security-groups output: interfaces fall back to the "
                        "default group");
    }
  }

  // An AWS account may have raised quotas that vpcguard's defaults (AWS's defaults) would then
  // reject; say which [quotas] key the config needs rather than let the loader fail later.
  void reportQuotas() {
    const model::Quotas defaults;
    auto over = [&](const std::string& id, const std::string& what, size_t count, int limit,
                    const char* key) {
      if (count > static_cast<size_t>(limit)) {
        warn("", id, what + ": " + std::to_string(count) + " exceed the default quota of " +
                         std::to_string(limit) + ": add [quotas] " + key + " = " +
                         std::to_string(count) + " to the config");
      }
    };
    auto maxEntries = [&](const std::string& list_id) {
      for (const auto& p : prefix_lists_) {
        if (p.id == list_id) return static_cast<size_t>(std::max<int64_t>(p.max_entries, 1));
      }
      return size_t{1};
    };
    for (const SecurityGroupOut& g : security_groups_) {
      for (const bool egress : {false, true}) {
        // AWS counts IPv4 and IPv6 rules apart; a prefix list counts as its max_entries.
        size_t v4 = 0;
        size_t v6 = 0;
        for (const SgRule& r : egress ? g.egress : g.ingress) {
          if (r.peer_key == "cidr_ipv6") {
            ++v6;
          } else if (r.peer_key == "prefix_list_id") {
            v4 += maxEntries(r.peer_value);
          } else {
            ++v4;
          }
        }
        const std::string dir = egress ? "outbound" : "inbound";
        over(g.id, dir + " IPv4 rules", v4, defaults.rules_per_security_group,
             "rules_per_security_group");
        over(g.id, dir + " IPv6 rules", v6, defaults.rules_per_security_group,
             "rules_per_security_group");
      }
    }
    for (const NetworkAclOut& n : network_acls_) {
      for (const bool egress : {false, true}) {
        const auto count = static_cast<size_t>(
            std::count_if(n.entries.begin(), n.entries.end(),
                          [&](const NaclEntryOut& e) { return e.egress == egress; }));
        over(n.id, std::string(egress ? "outbound" : "inbound") + " entries", count,
             defaults.rules_per_network_acl, "rules_per_network_acl");
      }
    }
    for (const InterfaceOut& i : interfaces_) {
      over(i.id, "security groups", i.security_group_ids.size(),
           defaults.security_groups_per_interface, "security_groups_per_interface");
      const auto sessions = static_cast<size_t>(
          std::count_if(mirror_sessions_.begin(), mirror_sessions_.end(),
                        [&](const MirrorSessionOut& s) { return s.network_interface_id == i.id; }));
      over(i.id, "traffic mirror sessions", sessions, defaults.traffic_mirror_sessions_per_interface,
           "traffic_mirror_sessions_per_interface");
    }
    for (const MirrorFilterOut& f : mirror_filters_) {
      over(f.id, "ingress rules", f.ingress_rules.size(), defaults.traffic_mirror_filter_rules,
           "traffic_mirror_filter_rules");
      over(f.id, "egress rules", f.egress_rules.size(), defaults.traffic_mirror_filter_rules,
           "traffic_mirror_filter_rules");
    }
  }

  // --- output -------------------------------------------------------------------------------

  std::string write() {
    TomlWriter w;
    w.comment("vpcguard configuration imported from AWS by `vpcguardctl import-aws`.");
    w.comment("Sources:");
    for (const AwsDocument& doc : documents_) w.comment("  " + doc.source);
    w.comment("Mapping and the meaning of each field: docs/import-aws.md.");
    if (warnings_.empty()) {
      w.comment("No warnings: everything in the sources for " + vpc_.id + " is represented.");
    } else {
      w.comment(std::to_string(warnings_.size()) +
                " warning(s): these parts of the sources are NOT represented here:");
      for (const ImportWarning& warning : warnings_) w.comment("  " + formatWarning(warning));
    }
    w.blankLine();

    w.table("vpc");
    w.keyValue("id", vpc_.id);
    w.keyValue("account_id", vpc_.account_id);
    w.keyValue("region", vpc_.region);
    w.keyArray("cidr_blocks", vpc_.cidr_blocks);
    w.keyArray("ipv6_cidr_blocks", vpc_.ipv6_cidr_blocks);

    for (const SubnetOut& s : subnets_) {
      w.blankLine();
      if (!s.name.empty()) w.comment(s.name);
      w.arrayTable("subnets");
      w.keyValue("id", s.id);
      w.keyValue("cidr_block", s.cidr_block);
      if (s.ipv6_cidr_block) w.keyValue("ipv6_cidr_block", *s.ipv6_cidr_block);
      if (s.network_acl_id) w.keyValue("network_acl_id", *s.network_acl_id);
    }

    for (const InterfaceOut& i : interfaces_) {
      w.blankLine();
      if (!i.comment.empty()) w.comment(i.comment);
      w.arrayTable("network_interfaces");
      w.keyValue("id", i.id);
      w.keyValue("subnet_id", i.subnet_id);
      w.keyValue("mac_address", i.mac_address);
      w.keyArray("private_ip_addresses", i.private_ip_addresses);
      w.keyArray("ipv6_addresses", i.ipv6_addresses);
      w.keyArray("security_group_ids", i.security_group_ids);
      w.keyValue("source_dest_check", i.source_dest_check);
      if (!i.connection_tracking.empty()) w.keyInline("connection_tracking", i.connection_tracking);
    }

    for (const SecurityGroupOut& g : security_groups_) {
      w.blankLine();
      w.arrayTable("security_groups");
      w.keyValue("id", g.id);
      w.keyValue("name", g.name);
      w.keyValue("description", g.description);
      // The loader knows the default group by its name ("default"); AWS names it so too.
      // An empty list must be written as a key, before any [[security_groups.*]] header;
      // a missing `egress` would mean AWS's allow-all default to the loader.
      if (g.ingress.empty()) w.keyArray("ingress", {});
      if (g.egress.empty()) w.keyArray("egress", {});
      for (const bool egress : {false, true}) {
        for (const SgRule& r : egress ? g.egress : g.ingress) {
          w.arrayTable(egress ? "security_groups.egress" : "security_groups.ingress");
          w.keyValue("ip_protocol", r.ip_protocol);
          if (r.from_port) w.keyValue("from_port", *r.from_port);
          if (r.to_port) w.keyValue("to_port", *r.to_port);
          w.keyValue(r.peer_key, r.peer_value);
          if (!r.description.empty()) w.keyValue("description", r.description);
        }
      }
    }

    for (const PrefixListOut& p : prefix_lists_) {
      w.blankLine();
      w.arrayTable("prefix_lists");
      w.keyValue("id", p.id);
      w.keyValue("name", p.name);
      w.keyValue("max_entries", p.max_entries);
      w.keyArray("entries", p.entries);
    }

    for (const NetworkAclOut& n : network_acls_) {
      w.blankLine();
      w.arrayTable("network_acls");
      w.keyValue("id", n.id);
      if (n.is_default) w.keyValue("is_default", true);
      if (n.entries.empty()) w.keyArray("entries", {});
      for (const NaclEntryOut& e : n.entries) {
        w.arrayTable("network_acls.entries");
        w.keyValue("rule_number", e.rule_number);
        w.keyValue("egress", e.egress);
        w.keyValue("protocol", e.protocol);
        w.keyValue("rule_action", e.rule_action);
        w.keyValue(e.cidr_key, e.cidr);
        if (e.port_range) {
          w.keyInline("port_range",
                      {{"from", e.port_range->first}, {"to", e.port_range->second}});
        }
        if (e.icmp_type_code) {
          w.keyInline("icmp_type_code",
                      {{"type", e.icmp_type_code->first}, {"code", e.icmp_type_code->second}});
        }
      }
    }

    for (const FlowLogOut& f : flow_logs_) {
      w.blankLine();
      w.comment("AWS delivered to " + f.aws_destination);
      w.arrayTable("flow_logs");
      w.keyValue("id", f.id);
      w.keyValue("resource_id", f.resource_id);
      w.keyValue("traffic_type", f.traffic_type);
      w.keyValue("log_destination", std::string(kFlowLogDestination));
      if (f.log_format) w.keyValue("log_format", *f.log_format);
      if (f.max_aggregation_interval) {
        w.keyValue("max_aggregation_interval", *f.max_aggregation_interval);
      }
    }
    writeMirroring(w);
    return w.take();
  }

  void writeMirroring(TomlWriter& w) const {
    for (const MirrorTargetOut& t : mirror_targets_) {
      w.blankLine();
      if (!t.aws_target.empty()) {
        w.comment("AWS sent the copies to " + t.aws_target + ": no local equivalent.");
        w.comment("Set vxlan_remote_ip to the appliance's IPv4 address; the config does not "
                  "load until then.");
      }
      w.arrayTable("traffic_mirror_targets");
      w.keyValue("id", t.id);
      if (t.network_interface_id) {
        w.keyValue("network_interface_id", *t.network_interface_id);
      } else if (t.vxlan_remote_ip) {
        w.keyValue("vxlan_remote_ip", *t.vxlan_remote_ip);
      } else {
        w.comment("vxlan_remote_ip = \"<the appliance's IPv4 address>\"");
      }
      if (!t.description.empty()) w.keyValue("description", t.description);
    }
    for (const MirrorFilterOut& f : mirror_filters_) {
      w.blankLine();
      w.arrayTable("traffic_mirror_filters");
      w.keyValue("id", f.id);
      if (!f.description.empty()) w.keyValue("description", f.description);
      if (!f.network_services.empty()) w.keyArray("network_services", f.network_services);
      for (const bool egress : {false, true}) {
        for (const MirrorRuleOut& r : egress ? f.egress_rules : f.ingress_rules) {
          w.arrayTable(egress ? "traffic_mirror_filters.egress_rules"
                              : "traffic_mirror_filters.ingress_rules");
          writeMirrorRule(w, r);
        }
      }
    }
    for (const MirrorSessionOut& s : mirror_sessions_) {
      w.blankLine();
      w.arrayTable("traffic_mirror_sessions");
      w.keyValue("id", s.id);
      w.keyValue("network_interface_id", s.network_interface_id);
      w.keyValue("traffic_mirror_target_id", s.traffic_mirror_target_id);
      w.keyValue("traffic_mirror_filter_id", s.traffic_mirror_filter_id);
      w.keyValue("session_number", s.session_number);
      if (s.packet_length) w.keyValue("packet_length", *s.packet_length);
      if (s.virtual_network_id) w.keyValue("virtual_network_id", *s.virtual_network_id);
      if (!s.description.empty()) w.keyValue("description", s.description);
    }
  }

  static void writeMirrorRule(TomlWriter& w, const MirrorRuleOut& r) {
    w.keyValue("rule_number", r.rule_number);
    w.keyValue("rule_action", r.rule_action);
    if (r.protocol) w.keyValue("protocol", *r.protocol);
    w.keyValue("source_cidr_block", r.source_cidr_block);
    w.keyValue("destination_cidr_block", r.destination_cidr_block);
    for (const auto& [key, range] : {std::pair("source_port_range", &r.source_port_range),
                                     std::pair("destination_port_range",
                                               &r.destination_port_range)}) {
      if (*range) {
        w.keyInline(key, {{"from_port", (*range)->first}, {"to_port", (*range)->second}});
      }
    }
    if (!r.description.empty()) w.keyValue("description", r.description);
  }

  const std::vector<AwsDocument>& documents_;
  const ImportAwsOptions& options_;
  std::vector<ImportWarning> warnings_;

  std::map<std::string, std::map<std::string, Item>> objects_;  // top key -> id -> object
  std::map<std::string, Item> extra_entries_;                  // prefix list id -> Entries doc
  std::set<std::string> seen_kinds_;
  const Item* vpc_record_ = nullptr;
  std::set<std::string> group_ids_;   // groups of the imported VPC
  std::set<std::string> subnet_ids_;  // subnets actually written
  std::map<std::string, std::string> subnet_nacl_;
  std::string default_nacl_;

  VpcOut vpc_;
  std::vector<SubnetOut> subnets_;
  std::vector<InterfaceOut> interfaces_;
  std::vector<SecurityGroupOut> security_groups_;
  std::vector<PrefixListOut> prefix_lists_;
  std::vector<NetworkAclOut> network_acls_;
  std::vector<FlowLogOut> flow_logs_;
  std::vector<MirrorTargetOut> mirror_targets_;
  std::vector<MirrorFilterOut> mirror_filters_;
  std::vector<MirrorSessionOut> mirror_sessions_;
};

// --- file I/O for the command --------------------------------------------------------------

Result<std::string> readInput(const std::string& path) {
  if (path == "-") {
    std::ostringstream text;
    text << std::cin.rdbuf();
    if (std::cin.bad()) return makeError("standard input: read error");
    return text.str();
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return makeError(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(path + ": " + std::strerror(errno));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return makeError(path + ": read error");
  return text;
}

// Written beside the target and renamed over it, so a failed run never leaves half a config.
Result<void> writeOutput(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return makeError(tmp + ": " + std::strerror(errno));
    out << text;
    out.flush();
    if (!out) return makeError(tmp + ": write error");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return makeError(path + ": " + ec.message());
  }
  return {};
}

}  // namespace

Result<AwsDocument> parseAwsDocument(std::string source, std::string_view text) {
  try {
    return AwsDocument{source, json::parse(text.begin(), text.end())};
  } catch (const json::parse_error& e) {
    // e.byte counts the bytes read, the offending one included; turn it into line:column
    // so editors can jump there.
    const size_t offset = e.byte > 0 ? std::min<size_t>(e.byte - 1, text.size()) : 0;
    const std::string_view before = text.substr(0, offset);
    const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
    const size_t last_newline = before.rfind('\n');
    const size_t column = last_newline == std::string_view::npos ? offset + 1
                                                                 : offset - last_newline;
    return makeError(source + ":" + std::to_string(line) + ":" + std::to_string(column) +
                     ": malformed JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
}

Result<ImportAwsOutput> importAws(const std::vector<AwsDocument>& documents,
                                  const ImportAwsOptions& options) {
  // Every access is type-checked, so nothing should throw; this keeps a missed check from
  // escaping the component as an exception all the same.
  try {
    return Importer(documents, options).run();
  } catch (const nlohmann::json::exception& e) {
    return makeError(std::string("import-aws: unexpected JSON shape: ") + e.what());
  }
}

std::string formatWarning(const ImportWarning& warning) {
  std::string out = "warning: ";
  if (!warning.object_id.empty()) out += warning.object_id + ": ";
  out += warning.message;
  if (!warning.source.empty()) out += " [" + warning.source + "]";
  return out;
}

int runImportAws(const ImportAwsCommand& command, std::ostream& out, std::ostream& err) {
  constexpr const char* kPrefix = "vpcguardctl import-aws: ";
  std::vector<AwsDocument> documents;
  bool unreadable = false;
  bool malformed = false;
  for (const std::string& file : command.files) {
    auto text = readInput(file);
    if (!text) {
      err << kPrefix << "error: cannot read " << text.error().message << "\n";
      unreadable = true;
      continue;
    }
    auto doc = parseAwsDocument(file == "-" ? "<stdin>" : file, *text);
    if (!doc) {
      err << kPrefix << "error: " << doc.error().message << "\n";
      malformed = true;
      continue;
    }
    documents.push_back(std::move(*doc));
  }
  if (unreadable) return kImportIoError;
  if (malformed) return kImportBadInput;

  auto result = importAws(documents, command.options);
  if (!result) {
    err << kPrefix << "error: " << result.error().message << "\n";
    return kImportBadInput;
  }
  for (const ImportWarning& warning : result->warnings) {
    err << kPrefix << formatWarning(warning) << "\n";
  }
  if (command.strict && !result->warnings.empty()) {
    err << kPrefix << "error: " << result->warnings.size()
        << " warning(s) and --strict: no configuration written\n";
    return kImportBadInput;
  }
  if (command.output.empty() || command.output == "-") {
    out << result->toml;
    out.flush();
    if (!out) {
      err << kPrefix << "error: cannot write to standard output\n";
      return kImportIoError;
    }
  } else if (auto written = writeOutput(command.output, result->toml); !written) {
    err << kPrefix << "error: cannot write " << written.error().message << "\n";
    return kImportIoError;
  }
  if (!result->warnings.empty()) {
    err << kPrefix << result->warnings.size()
        << " warning(s): the configuration leaves out what they name\n";
  }
  return kImportOk;
}

}  // namespace vpcguard
