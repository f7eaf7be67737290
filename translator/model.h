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
  int traffic_mirror_sessions_per_interface = 3;  // AWS: sessions per source interface
  int traffic_mirror_filter_rules = 10;          // AWS: rules per filter direction
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

// Traffic mirroring (AWS Traffic Mirroring; docs/mirroring.md): copies of the packets an
// interface sends and receives, as VXLAN, to a monitoring appliance.
//
// A target: a local interface (copies are addressed to its primary private IPv4 address and its
// MAC, so a UDP socket on port 4789 inside that VM receives them) or a VXLAN endpoint reached
// over the host's underlay network. Exactly one of the two.
struct TrafficMirrorTarget {
  std::string id;  // "tmt-..."
  std::optional<std::string> network_interface_id;
  std::optional<IpAddress> vxlan_remote_ip;  // IPv4
  std::string description;
  SourceLocation location;
};

// One rule of a filter. Rules of one direction are evaluated lowest rule_number first; the first
// that matches decides (accept: mirror, reject: not by this session). No match: not mirrored by
// this session.
struct TrafficMirrorFilterRule {
  int rule_number = 0;  // 1..32766, unique per filter direction
  bool accept = false;  // rule_action
  int protocol = kProtoAll;  // IANA number; absent = all
  Cidr source_cidr_block;       // required; both CIDRs of one family
  Cidr destination_cidr_block;  // required
  std::optional<PortRange> source_port_range;       // tcp/udp only; absent = all
  std::optional<PortRange> destination_port_range;  // tcp/udp only; absent = all
  std::string description;
  SourceLocation location;
};

struct TrafficMirrorFilter {
  std::string id;  // "tmf-..."
  std::vector<TrafficMirrorFilterRule> ingress_rules;  // packets the source interface receives
  std::vector<TrafficMirrorFilterRule> egress_rules;   // packets it sends
  // AWS's "amazon-dns" (mirror the traffic to the VPC's DNS resolver): accepted, no effect here
  // (there is no Amazon DNS resolver behind this switch).
  std::vector<std::string> network_services;
  std::string description;
  SourceLocation location;
};

struct TrafficMirrorSession {
  std::string id;  // "tms-..."
  std::string network_interface_id;  // the source: a local interface
  std::string traffic_mirror_target_id;
  std::string traffic_mirror_filter_id;
  int session_number = 0;  // 1..32766, unique per source interface; lowest first
  std::optional<int> packet_length;  // bytes of each packet copied (after the VXLAN header)
  // VXLAN network identifier, 0..16777215. Absent in the config: resolveDefaults() picks one no
  // other session uses (stable: derived from the session id), as AWS picks a unique one.
  std::optional<uint32_t> virtual_network_id;
  std::string description;
  SourceLocation location;
};

// Plain port mirroring (vpcguard's own, not AWS): OVS's Mirror table copies every packet an
// interface sends and receives, whole and unfiltered (also packets the policy then drops), to
// a dedicated local OVS port (SPAN). docs/mirroring.md.
struct PortMirror {
  std::string id;                    // "pm-..."
  std::string network_interface_id;  // the source: a local interface
  std::string output_port;           // an OVS port on the bridge that no interface uses
  SourceLocation location;
};

struct Policy {
  Vpc vpc;
  std::vector<Subnet> subnets;
  std::vector<NetworkInterface> network_interfaces;
  std::vector<SecurityGroup> security_groups;
  std::vector<PrefixList> prefix_lists;
  std::vector<NetworkAcl> network_acls;
  Quotas quotas;
  std::vector<FlowLog> flow_logs;
  std::vector<TrafficMirrorTarget> traffic_mirror_targets;
  std::vector<TrafficMirrorFilter> traffic_mirror_filters;
  std::vector<TrafficMirrorSession> traffic_mirror_sessions;
  std::vector<PortMirror> port_mirrors;

  // Where each field was written, keyed by its path ("security_groups[2].ingress[0].cidr_ipv4"),
  // so validation can point at the exact line. Filled by the config loader; models built in code
  // may leave it empty (validation then falls back to the objects' own `location`).
  std::map<std::string, SourceLocation, std::less<>> field_locations;
};

}  // namespace vpcguard::model
