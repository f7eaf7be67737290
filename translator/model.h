#pragma once
// The desired state users write: one VPC with its subnets, network interfaces (ENIs), security
// groups, managed prefix lists and network ACLs, with AWS's semantics (shared/docs/semantics.md
// in the steering repo; docs/config.md here documents every field).
//
// A Policy comes out of the config loader (daemon/config_loader) and is checked by
// validatePolicy() (translator/validate.h). After validation, resolveDefaults() makes AWS's
// implicit objects explicit, so the translator never has to know about them:
//  - the VPC's default security group (ingress: all from itself; egress: all) and default
//    network ACL (rule 100 allow all in and out) exist as objects with is_default = true;
//  - every interface names at least one group (the default group when it named none);
//  - every subnet names its NACL (the default NACL when it named none).
// The final `*` deny of every NACL stays implicit: it is the table miss of the NACL stage.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "translator/ip.h"

namespace vpcguard::model {

// Where an object or field came from, for error messages ("lab.toml:12:3").
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

// Ids of the VPC's implicit defaults, used when the config does not define its own (a security
// group named "default", a network ACL with is_default = true). Config rules may reference them.
inline constexpr std::string_view kDefaultSecurityGroupId = "sg-default";
inline constexpr std::string_view kDefaultSecurityGroupName = "default";  // AWS's reserved name
inline constexpr std::string_view kDefaultNetworkAclId = "acl-default";

// IP protocol numbers as AWS writes them: -1 = all, otherwise 0..255.
inline constexpr int kProtoAll = -1;
inline constexpr int kProtoIcmp = 1;
inline constexpr int kProtoTcp = 6;
inline constexpr int kProtoUdp = 17;
inline constexpr int kProtoIcmpv6 = 58;

struct PortRange {
  int from = 0;  // inclusive, 0..65535
  int to = 65535;
  auto operator<=>(const PortRange&) const = default;
};

// ICMP type/code; -1 = any.
struct IcmpTypeCode {
  int type = -1;
  int code = -1;
  auto operator<=>(const IcmpTypeCode&) const = default;
};

struct GroupRef {
  std::string group_id;
  auto operator<=>(const GroupRef&) const = default;
};
struct PrefixListRef {
  std::string prefix_list_id;
  auto operator<=>(const PrefixListRef&) const = default;
};
// Exactly one of cidr_ipv4 / cidr_ipv6 (both as Cidr), referenced_group_id, prefix_list_id.
using Peer = std::variant<Cidr, GroupRef, PrefixListRef>;

struct SecurityGroupRule {
  int ip_protocol = kProtoAll;
  // tcp/udp: port range. icmp/icmpv6: type/code (AWS puts them in from_port/to_port).
  // Absent for other protocols and for "all".
  std::optional<PortRange> ports;
  std::optional<IcmpTypeCode> icmp;
  Peer peer;
  std::string description;
  SourceLocation location;
};

struct SecurityGroup {
  std::string id;
  std::string name;
  std::string description;
  std::vector<SecurityGroupRule> ingress;
  std::vector<SecurityGroupRule> egress;
  bool is_default = false;  // the VPC's default group
  SourceLocation location;
};

struct PrefixList {
  std::string id;
  std::string name;
  int max_entries = 0;  // counts against rule quotas when referenced, as in AWS
  std::vector<Cidr> entries;
  SourceLocation location;
};

struct NetworkAclEntry {
  int rule_number = 0;  // 1..32766, lowest first
  bool egress = false;
  int protocol = kProtoAll;
  bool allow = false;  // rule_action
  Cidr cidr;           // cidr_block or ipv6_cidr_block
  std::optional<PortRange> port_range;        // tcp/udp only; absent = all ports
  std::optional<IcmpTypeCode> icmp_type_code;  // icmp/icmpv6 only; absent = all
  SourceLocation location;
};

struct NetworkAcl {
  std::string id;
  std::vector<NetworkAclEntry> entries;
  bool is_default = false;
  SourceLocation location;
};

struct ConnectionTracking {
  std::optional<int> tcp_established_timeout;  // seconds, 60..432000 (default 432000)
  std::optional<int> udp_timeout;              // 30..60 (default 30)
  std::optional<int> udp_stream_timeout;       // 60..180 (default 180)
};

struct NetworkInterface {
  std::string id;  // == OVS Interface external_ids:iface-id
  std::string subnet_id;
  std::string mac_address;                   // canonical lower case
  std::vector<IpAddress> private_ip_addresses;  // first = primary
  std::vector<IpAddress> ipv6_addresses;
  std::vector<std::string> security_group_ids;
  bool source_dest_check = true;
  ConnectionTracking connection_tracking;
  SourceLocation location;
};

struct Subnet {
  std::string id;
  Cidr cidr_block;
  std::optional<Cidr> ipv6_cidr_block;
  std::string network_acl_id;  // empty before resolveDefaults() = the default NACL
  SourceLocation location;
};

struct Vpc {
  std::string id;
  std::string account_id;
  std::string region;
  std::vector<Cidr> cidr_blocks;
  std::vector<Cidr> ipv6_cidr_blocks;
  bool strict_revocation = false;  // end tracked connections no rule allows any more
  SourceLocation location;
};

// AWS default quotas; [quotas] in the config overrides them.
struct Quotas {
  int rules_per_security_group = 60;  // per direction, IPv4 and IPv6 counted apart
  int security_groups_per_interface = 5;
  int rules_per_interface = 1000;  // groups x rules per ENI
  int rules_per_network_acl = 20;  // per direction
  int network_acls_per_vpc = 200;
  int security_groups_per_vpc = 2500;
  int prefix_list_max_entries = 1000;
};

// A VPC flow log (AWS CreateFlowLogs): which interfaces it covers, which verdicts it records,
// where its records go and in which format. docs/flowlogs.md explains how records are made.
enum class FlowLogTrafficType { kAccept, kReject, kAll };

struct FlowLog {
  std::string id;           // "fl-..."
  std::string resource_id;  // the VPC, a subnet or an interface: every interface inside, now and later
  FlowLogTrafficType traffic_type = FlowLogTrafficType::kAll;
  // Where records go: "file:///dir" (records under dir/AWSLogs/...). Other schemes are refused
  // until a sink for them exists (flowlogs/sink.h).
  std::string log_destination;
  // AWS `${field}` syntax (translator/flow_log_format.h); empty = the version 2 default format.
  std::string log_format;
  int max_aggregation_interval = 600;  // seconds: 60 or 600 (AWS's two choices)
  // "host:port": OVS also sends its raw IPFIX there (an external collector such as nfcapd).
  std::optional<std::string> ipfix_collector;
  SourceLocation location;
};

// Reserved for the traffic-mirroring issue: its objects live here when built.
struct TrafficMirrorSession {};

struct Policy {
  Vpc vpc;
  std::vector<Subnet> subnets;
  std::vector<NetworkInterface> network_interfaces;
  std::vector<SecurityGroup> security_groups;
  std::vector<PrefixList> prefix_lists;
  std::vector<NetworkAcl> network_acls;
  Quotas quotas;
  std::vector<FlowLog> flow_logs;
  std::vector<TrafficMirrorSession> traffic_mirror_sessions;

  // Where each field was written, keyed by its path ("security_groups[2].ingress[0].cidr_ipv4"),
  // so validation can point at the exact line. Filled by the config loader; models built in code
  // may leave it empty (validation then falls back to the objects' own `location`).
  std::map<std::string, SourceLocation, std::less<>> field_locations;
};

}  // namespace vpcguard::model
