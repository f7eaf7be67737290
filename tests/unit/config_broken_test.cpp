// One broken configuration per validation rule. Each case marks the line the error must point at
// with "#<" and names the field path and a piece of the message; a case fails if that exact
// diagnostic is missing or points elsewhere.

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/config_loader.h"

namespace vpcguard::config {
namespace {

// A valid VPC the cases extend (BaseIsValid checks it stays valid).
const std::string kBase = R"([vpc]
id = "vpc-1"
cidr_blocks = ["10.0.0.0/16"]
ipv6_cidr_blocks = ["2600:1f18:abcd:1200::/56"]

[[subnets]]
id = "subnet-a"
cidr_block = "10.0.1.0/24"
ipv6_cidr_block = "2600:1f18:abcd:1201::/64"

[[security_groups]]
id = "sg-a"
)";

// An interface in subnet-a, with the given extra lines.
std::string eni(const std::string& id, const std::string& extra) {
  return "\n[[network_interfaces]]\nid = \"" + id + "\"\nsubnet_id = \"subnet-a\"\n" + extra;
}

using Fields = std::vector<std::pair<std::string, std::string>>;

// A table `header` with valid `fields` (key, value). `key`'s line is replaced by `line` (left out
// when `line` is empty), and `extra` lines are added.
std::string table(const std::string& header, const Fields& fields, const std::string& extra,
                  const std::string& key, const std::string& line) {
  std::string out = "\n" + header + "\n";
  for (const auto& [k, value] : fields) {
    if (k != key) {
      out += k + " = " + value + "\n";
    } else if (!line.empty()) {
      out += line + "\n";
    }
  }
  return out + extra;
}

// A valid flow log on the VPC.
std::string flowLog(const std::string& extra, const std::string& key = "",
                    const std::string& line = "") {
  return table("[[flow_logs]]",
               {{"id", "\"fl-1\""},
                {"resource_id", "\"vpc-1\""},
                {"traffic_type", "\"ALL\""},
                {"log_destination", "\"file:///var/log/vpcguard/flowlogs\""}},
               extra, key, line);
}

// Traffic mirroring: kBase with two interfaces, eni-src and eni-dst, a target on eni-dst
// (tmt-1), a VXLAN target (tmt-2) and a filter without rules (tmf-1), last, so that rule tables
// may follow. MirrorBaseIsValid checks it stays valid.
const std::string kMirrorBase =
    kBase +
    eni("eni-src",
        "mac_address = \"02:00:00:00:00:01\"\nprivate_ip_addresses = [\"10.0.1.10\"]\n") +
    eni("eni-dst",
        "mac_address = \"02:00:00:00:00:02\"\nprivate_ip_addresses = [\"10.0.1.20\"]\n") +
    "\n[[traffic_mirror_targets]]\nid = \"tmt-1\"\nnetwork_interface_id = \"eni-dst\"\n"
    "\n[[traffic_mirror_targets]]\nid = \"tmt-2\"\nvxlan_remote_ip = \"192.0.2.10\"\n"
    "\n[[traffic_mirror_filters]]\nid = \"tmf-1\"\n";

// A valid rule of tmf-1 in `direction` ("ingress" or "egress").
std::string mirrorRule(const std::string& direction, const std::string& extra,
                       const std::string& key = "", const std::string& line = "") {
  return table("[[traffic_mirror_filters." + direction + "_rules]]",
               {{"rule_number", "100"},
                {"rule_action", "\"accept\""},
                {"source_cidr_block", "\"0.0.0.0/0\""},
                {"destination_cidr_block", "\"10.0.1.0/24\""}},
               extra, key, line);
}

// A valid session: eni-src to tmt-1 through tmf-1.
std::string mirrorSession(const std::string& extra, const std::string& key = "",
                          const std::string& line = "") {
  return table("[[traffic_mirror_sessions]]",
               {{"id", "\"tms-1\""},
                {"network_interface_id", "\"eni-src\""},
                {"traffic_mirror_target_id", "\"tmt-1\""},
                {"traffic_mirror_filter_id", "\"tmf-1\""},
                {"session_number", "1"}},
               extra, key, line);
}

// Marks the header line of a table made by table() as the expected place of the error.
std::string markHeader(std::string text) {
  text.insert(text.find('\n', 1), " #<");
  return text;
}

// tms-2 to the VXLAN target tmt-2, from `source` with `number` (TOML values).
std::string secondSession(const std::string& source, const std::string& number) {
  return table("[[traffic_mirror_sessions]]",
               {{"id", "\"tms-2\""},
                {"network_interface_id", source},
                {"traffic_mirror_target_id", "\"tmt-2\""},
                {"traffic_mirror_filter_id", "\"tmf-1\""},
                {"session_number", number}},
               "", "", "");
}

std::string portMirror(const std::string& extra, const std::string& key = "",
                       const std::string& line = "") {
  return table(
      "[[port_mirrors]]",
      {{"id", "\"pm-1\""}, {"network_interface_id", "\"eni-src\""}, {"output_port", "\"mirror0\""}},
      extra, key, line);
}

// kMirrorBase, sessions from eni-src (tms-1 to tmt-1 on eni-dst, and one to a second target on
// eni-dst, which shares its address) and `extra` more local targets, each on its own interface
// in subnet-m and used by a session of its own. The line of the `marked`th new target's
// network_interface_id (counted from 1) gets "#<".
std::string localTargets(int extra, int marked) {
  std::string out = "[quotas]\ntraffic_mirror_sessions_per_interface = 1000\n" + kMirrorBase +
                    mirrorSession("") +
                    "\n[[traffic_mirror_targets]]\nid = \"tmt-same\"\n"
                    "network_interface_id = \"eni-dst\"\n"
                    "\n[[traffic_mirror_sessions]]\nid = \"tms-same\"\n"
                    "network_interface_id = \"eni-src\"\ntraffic_mirror_target_id = \"tmt-same\"\n"
                    "traffic_mirror_filter_id = \"tmf-1\"\nsession_number = 2000\n"
                    "\n[[subnets]]\nid = \"subnet-m\"\ncidr_block = \"10.0.4.0/22\"\n";
  for (int i = 1; i <= extra; ++i) {
    const std::string n = std::to_string(i);
    char mac[32];
    std::snprintf(mac, sizeof mac, "02:00:00:01:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
    out += "\n[[network_interfaces]]\nid = \"eni-t" + n + "\"\nsubnet_id = \"subnet-m\"\n" +
           "mac_address = \"" + mac + "\"\nprivate_ip_addresses = [\"10.0." +
           std::to_string(4 + (10 + i) / 256) + "." + std::to_string((10 + i) % 256) + "\"]\n" +
           "\n[[traffic_mirror_targets]]\nid = \"tmt-l" + n + "\"\nnetwork_interface_id = \"eni-t" +
           n + "\"" + (i == marked ? " #<" : "") + "\n" +
           "\n[[traffic_mirror_sessions]]\nid = \"tms-l" + n +
           "\"\nnetwork_interface_id = \"eni-src\"\ntraffic_mirror_target_id = \"tmt-l" + n +
           "\"\ntraffic_mirror_filter_id = \"tmf-1\"\nsession_number = " + std::to_string(1 + i) +
           "\n";
  }
  return out;
}

struct BrokenCase {
  BrokenCase(std::string name_, std::string toml_, std::string path_, std::string message_,
             int column_ = 0, std::string hint_ = "")
      : name(std::move(name_)),
        toml(std::move(toml_)),
        path(std::move(path_)),
        message(std::move(message_)),
        column(column_),
        hint(std::move(hint_)) {}

  std::string name;
  std::string toml;
  std::string path;     // field path of the expected diagnostic
  std::string message;  // part of its message
  int column = 0;       // 0 = not checked (e.g. toml++'s own syntax positions)
  std::string hint;     // part of its hint; every diagnostic must have one anyway
};

std::vector<BrokenCase> cases() {
  const std::string mac = "mac_address = \"02:00:00:00:00:01\"\n";
  return {
      // --- TOML and structure -----------------------------------------------------------------
      {"SyntaxError", kBase + "\nnot toml at all #<\n", "", "TOML syntax error"},
      // toml++ 3.3 has undefined behaviour on some of these; the loader catches them first.
      {"NonAsciiOutsideStrings",
       kBase + "description = \"caf\u00e9\" # \u00e9 in a comment\n\u00e9t\u00e9 = 1 #<\n", "",
       "non-ASCII character outside a string or comment", 1},
      {"NonAsciiAfterMultilineStrings",
       kBase + "description = \"\"\"\nsay \"\"caf\u00e9\"\" \\\"\n\"\"\"\nname = '''x'\u00e9'''\n"
               "x = 1 \u00a0#<\n",
       "", "non-ASCII character outside a string or comment", 7},
      {"UnknownTopLevelTable", kBase + "\n[vpcs] #<\nid = 1\n", "vpcs", "unknown field 'vpcs'", 2,
       "did you mean 'vpc'"},
      {"UnknownFieldInSubnet",
       kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.2.0/24\"\nzone = \"a\" #<\n",
       "subnets[1].zone", "unknown field 'zone'", 1},
      {"UnknownFieldInRuleSuggestsSpelling",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"tcp\"\nfrom_port = 1\nto_port = 2\n"
               "cidr_ipv4 = \"0.0.0.0/0\"\nfrom_prot = 1 #<\n",
       "security_groups[0].ingress[0].from_prot", "unknown field", 1, "did you mean 'from_port'"},
      {"UnknownQuota", kBase + "\n[quotas]\nrules_per_group = 100 #<\n", "quotas.rules_per_group",
       "unknown field", 1},
      {"WrongTypePortAsString",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"tcp\"\nfrom_port = \"80\" #<\n"
               "to_port = 80\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].from_port", "expected an integer, found a string", 13},
      {"WrongTypeIdAsInteger", kBase + "\n[[security_groups]]\nid = 5 #<\n",
       "security_groups[1].id", "expected a string, found an integer", 6},
      {"WrongTypeBool",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "source_dest_check = \"yes\" #<\n"),
       "network_interfaces[0].source_dest_check", "expected true or false", 21},
      {"WrongTypeNotArrayOfTables", "network_acls = \"acl-1\" #<\n" + kBase, "network_acls",
       "expected an array of tables", 16},
      {"IntegerOutOfRange",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"tcp\"\nfrom_port = 99999999999 #<\n"
               "to_port = 80\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].from_port", "out of range", 13},
      {"MissingRequiredField", kBase + "\n[[subnets]] #<\nid = \"s2\"\n", "subnets[1].cidr_block",
       "missing required field 'cidr_block'", 1},
      {"VpcNotATable", "vpc = \"vpc-1\" #<\n", "vpc", "expected a table, found a string", 7},
      {"MissingVpc", "# nothing but a comment #<\n", "vpc", "no [vpc] table", 1},
      // --- CIDRs and addresses
      // --------------------------------------------------------------------
      {"MalformedCidr", kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.300.0/24\" #<\n",
       "subnets[1].cidr_block", "not a valid CIDR", 14},
      {"NonCanonicalCidr",
       kBase + "[[security_groups.ingress]]\nip_protocol = -1\ncidr_ipv4 = \"10.0.1.5/24\" #<\n",
       "security_groups[0].ingress[0].cidr_ipv4", "not a canonical CIDR", 13, "10.0.1.0/24"},
      {"CidrOfWrongFamily",
       kBase + "[[security_groups.ingress]]\nip_protocol = -1\ncidr_ipv4 = \"::/0\" #<\n",
       "security_groups[0].ingress[0].cidr_ipv4", "is not an IPv4 block", 13},
      {"MalformedAddress", kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[0]", "not a valid IPv4 address", 25},
      {"Ipv6AddressInIpv4List",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"2600:1f18:abcd:1201::10\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[0]", "is not an IPv4 address", 25},
      {"VpcBlockTooLarge", "[vpc]\nid = \"v\"\ncidr_blocks = [\"10.0.0.0/8\"] #<\n",
       "vpc.cidr_blocks[0]", "between /16 and /28", 16},
      {"AccountIdNotTwelveDigits",
       "[vpc]\nid = \"v\"\naccount_id = \"1234\" #<\ncidr_blocks = [\"10.0.0.0/16\"]\n",
       "vpc.account_id", "is not 12 digits", 14},
      {"SubnetOutsideVpc", kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.1.0.0/24\" #<\n",
       "subnets[1].cidr_block", "outside the VPC", 14},
      {"SubnetIpv6OutsideVpc",
       kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.2.0/24\"\n"
               "ipv6_cidr_block = \"2600:1f18:abcd:1300::/64\" #<\n",
       "subnets[1].ipv6_cidr_block", "outside the VPC's IPv6 blocks", 19},
      {"SubnetTooSmall", kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.2.0/29\" #<\n",
       "subnets[1].cidr_block", "between /16 and /28", 14},
      {"OverlappingSubnets",
       kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.1.128/25\" #<\n",
       "subnets[1].cidr_block", "overlaps subnet 'subnet-a'", 14},
      // --- ids and references
      // ---------------------------------------------------------------------
      {"DuplicateSubnetId",
       kBase + "\n[[subnets]]\nid = \"subnet-a\" #<\ncidr_block = \"10.0.2.0/24\"\n",
       "subnets[1].id", "duplicate subnet id 'subnet-a'", 6},
      {"DuplicateGroupId", kBase + "\n[[security_groups]]\nid = \"sg-a\" #<\nname = \"other\"\n",
       "security_groups[1].id", "duplicate security group id", 6},
      {"DuplicateInterfaceId",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n") +
           "\n[[network_interfaces]]\nid = \"eni-1\" #<\nsubnet_id = \"subnet-a\"\n"
           "mac_address = \"02:00:00:00:00:02\"\nprivate_ip_addresses = [\"10.0.1.11\"]\n",
       "network_interfaces[1].id", "duplicate network interface id", 6},
      {"DuplicateNetworkAclId",
       kBase + "\n[[network_acls]]\nid = \"acl-1\"\n[[network_acls]]\nid = \"acl-1\" #<\n",
       "network_acls[1].id", "duplicate network ACL id", 6},
      {"DuplicateGroupName", kBase + "\n[[security_groups]]\nid = \"sg-b\"\nname = \"sg-a\" #<\n",
       "security_groups[1].name", "already used by 'sg-a'", 8},
      {"DanglingInterfaceGroup",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "security_group_ids = [\"sg-a\", \"sg-nope\"] #<\n"),
       "network_interfaces[0].security_group_ids[1]", "security group 'sg-nope' does not exist",
       31},
      {"DanglingReferencedGroup",
       kBase + "[[security_groups.ingress]]\nip_protocol = -1\nreferenced_group_id = \"sg-x\" #<\n",
       "security_groups[0].ingress[0].referenced_group_id", "'sg-x' does not exist", 23},
      {"DanglingSubnetAcl",
       kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.2.0/24\"\nnetwork_acl_id = "
               "\"acl-x\" #<\n",
       "subnets[1].network_acl_id", "network ACL 'acl-x' does not exist", 18},
      {"DanglingPrefixList",
       kBase + "[[security_groups.ingress]]\nip_protocol = -1\nprefix_list_id = \"pl-x\" #<\n",
       "security_groups[0].ingress[0].prefix_list_id", "prefix list 'pl-x' does not exist", 18},
      {"DanglingInterfaceSubnet",
       kBase + "\n[[network_interfaces]]\nid = \"e\"\nsubnet_id = \"subnet-x\" #<\n" + mac +
           "private_ip_addresses = [\"10.0.1.10\"]\n",
       "network_interfaces[0].subnet_id", "subnet 'subnet-x' does not exist", 13},
      {"GroupListedTwice",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "security_group_ids = [\"sg-a\", \"sg-a\"] #<\n"),
       "network_interfaces[0].security_group_ids[1]", "listed twice", 31},
      {"TwoDefaultGroups",
       kBase + "\n[[security_groups]]\nid = \"sg-d1\"\nname = \"default\"\n"
               "[[security_groups]]\nid = \"sg-d2\"\nname = \"default\" #<\n",
       "security_groups[2].name", "second security group named \"default\"", 8},
      {"ReservedDefaultGroupId",
       kBase + "\n[[security_groups]]\nid = \"sg-default\" #<\nname = \"x\"\n",
       "security_groups[1].id", "reserved for the VPC's implicit default group", 6},
      {"TwoDefaultNetworkAcls",
       kBase + "\n[[network_acls]]\nid = \"a1\"\nis_default = true\n"
               "[[network_acls]]\nid = \"a2\"\nis_default = true #<\n",
       "network_acls[1].is_default", "second default network ACL", 14},
      // --- security group rules
      // -------------------------------------------------------------------
      {"UnknownProtocolName",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"tpc\" #<\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].ip_protocol", "unknown protocol 'tpc'", 15},
      {"TwoPeers",
       kBase + "[[security_groups.ingress]]\nip_protocol = -1\ncidr_ipv4 = \"0.0.0.0/0\"\n"
               "referenced_group_id = \"sg-a\" #<\n",
       "security_groups[0].ingress[0].referenced_group_id",
       "both cidr_ipv4 and referenced_group_id", 23},
      {"NoPeer", kBase + "[[security_groups.ingress]] #<\nip_protocol = -1\n",
       "security_groups[0].ingress[0]", "rule has no peer", 1},
      {"PortsOnProtocolWithoutPorts",
       kBase +
           "[[security_groups.ingress]]\nip_protocol = \"all\"\nfrom_port = 80 #<\nto_port = 80\n"
           "cidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].from_port", "which has no ports", 13},
      {"TcpWithoutPorts",
       kBase + "[[security_groups.egress]] #<\nip_protocol = \"tcp\"\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].egress[0].from_port", "needs from_port and to_port", 1},
      {"MissingToPort",
       kBase + "[[security_groups.ingress]] #<\nip_protocol = \"udp\"\nfrom_port = 53\n"
               "cidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].to_port", "missing to_port", 1},
      {"FromPortAboveToPort",
       kBase +
           "[[security_groups.ingress]]\nip_protocol = \"tcp\"\nfrom_port = 90 #<\nto_port = 80\n"
           "cidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].from_port", "greater than to port", 13},
      {"PortAbove65535",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"tcp\"\nfrom_port = 80\n"
               "to_port = 70000 #<\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].to_port", "port 70000 is out of range", 11},
      {"IcmpTypeOutOfRange",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"icmp\"\nfrom_port = 300 #<\n"
               "to_port = -1\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].from_port", "ICMP type 300 is out of range", 13},
      {"IcmpCodeWithAllTypes",
       kBase + "[[security_groups.ingress]]\nip_protocol = \"icmp\"\nfrom_port = -1\n"
               "to_port = 3 #<\ncidr_ipv4 = \"0.0.0.0/0\"\n",
       "security_groups[0].ingress[0].to_port", "given for all types", 11},
      {"Icmpv6WithIpv4Peer",
       kBase +
           "[[security_groups.ingress]]\nip_protocol = \"icmpv6\"\ncidr_ipv4 = \"0.0.0.0/0\" #<\n",
       "security_groups[0].ingress[0].cidr_ipv4", "icmpv6 with an IPv4 peer", 13},
      {"DuplicateRule",
       kBase + "[[security_groups.ingress]]\nip_protocol = 6\nfrom_port = 22\nto_port = 22\n"
               "cidr_ipv4 = \"10.0.0.0/8\"\n[[security_groups.ingress]] #<\nip_protocol = \"tcp\"\n"
               "from_port = 22\nto_port = 22\ncidr_ipv4 = \"10.0.0.0/8\"\n",
       "security_groups[0].ingress[1]", "duplicate of rule security_groups[0].ingress[0]", 1},
      // --- network ACLs
      // ---------------------------------------------------------------------------
      {"BadRuleAction",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = -1\nrule_action = \"permit\" #<\ncidr_block = \"0.0.0.0/0\"\n",
       "network_acls[0].entries[0].rule_action", "must be allow or deny", 15},
      {"AclProtocolOutOfRange",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = 256 #<\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n",
       "network_acls[0].entries[0].protocol", "protocol 256 is out of range", 12},
      {"AclBothCidrs",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = -1\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n"
               "ipv6_cidr_block = \"::/0\" #<\n",
       "network_acls[0].entries[0].ipv6_cidr_block", "both cidr_block and ipv6_cidr_block", 19},
      {"AclNoCidr",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]] #<\nrule_number = 1\n"
               "protocol = -1\nrule_action = \"allow\"\n",
       "network_acls[0].entries[0].cidr_block", "neither cidr_block nor ipv6_cidr_block", 1},
      {"DuplicateRuleNumber",
       kBase +
           "\n[[network_acls]]\nid = \"a\"\n"
           "[[network_acls.entries]]\nrule_number = 100\nprotocol = -1\nrule_action = \"allow\"\n"
           "cidr_block = \"0.0.0.0/0\"\n"
           "[[network_acls.entries]]\nrule_number = 100\negress = true\nprotocol = -1\n"
           "rule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n"
           "[[network_acls.entries]]\nrule_number = 100 #<\nprotocol = 6\n"
           "rule_action = \"deny\"\ncidr_block = \"10.0.0.0/8\"\n",
       "network_acls[0].entries[2].rule_number", "inbound rule number 100 is already used", 15},
      {"RuleNumberZero",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 0 #<\n"
               "protocol = -1\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n",
       "network_acls[0].entries[0].rule_number", "outside 1..32766", 15},
      {"RuleNumberTooLarge",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 32767 #<\n"
               "protocol = -1\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n",
       "network_acls[0].entries[0].rule_number", "outside 1..32766", 15},
      {"AclPortRangeOnIcmp",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = \"icmp\"\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n"
               "port_range = { from = 1, to = 2 } #<\n",
       "network_acls[0].entries[0].port_range", "port_range on icmp", 14},
      {"AclIcmpTypeCodeOnTcp",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = \"tcp\"\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n"
               "icmp_type_code = { type = 8, code = 0 } #<\n",
       "network_acls[0].entries[0].icmp_type_code", "icmp_type_code on tcp", 18},
      {"AclFromAboveTo",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = \"tcp\"\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n"
               "port_range = { from = 2000, to = 1024 } #<\n",
       "network_acls[0].entries[0].port_range.from", "greater than to port", 23},
      {"AclIcmpOnIpv6Block",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = \"icmp\" #<\nrule_action = \"deny\"\nipv6_cidr_block = \"::/0\"\n",
       "network_acls[0].entries[0].protocol", "icmp with an IPv6 block matches nothing", 0,
       "icmpv6"},
      {"AclIcmpCodeOutOfRange",
       kBase + "\n[[network_acls]]\nid = \"a\"\n[[network_acls.entries]]\nrule_number = 1\n"
               "protocol = 1\nrule_action = \"allow\"\ncidr_block = \"0.0.0.0/0\"\n"
               "icmp_type_code = { type = 3, code = 256 } #<\n",
       "network_acls[0].entries[0].icmp_type_code.code", "ICMP code 256 is out of range", 37},
      // --- interfaces
      // -----------------------------------------------------------------------------
      {"BadMac",
       kBase + eni("eni-1",
                   "mac_address = \"02:00:00:00:01\" #<\nprivate_ip_addresses = [\"10.0.1.10\"]\n"),
       "network_interfaces[0].mac_address", "is not a MAC address", 15},
      {"MacWithSign",
       kBase +
           eni("eni-1",
               "mac_address = \"-1:00:00:00:00:01\" #<\nprivate_ip_addresses = [\"10.0.1.10\"]\n"),
       "network_interfaces[0].mac_address", "is not a MAC address", 15},
      {"AddressWithNul",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\\u0000junk\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[0]", "not a valid address", 25},
      {"MulticastMac",
       kBase +
           eni("eni-1",
               "mac_address = \"03:00:00:00:00:01\" #<\nprivate_ip_addresses = [\"10.0.1.10\"]\n"),
       "network_interfaces[0].mac_address", "multicast", 15},
      {"DuplicateMac",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n") +
           eni("eni-2",
               "mac_address = \"02:00:00:00:00:01\" #<\nprivate_ip_addresses = [\"10.0.1.11\"]\n"),
       "network_interfaces[1].mac_address", "already used by interface 'eni-1'", 15},
      // Spelled in upper case (the loader writes MACs in lower case, so messages show that),
      // multicast, and a duplicate written in another case.
      {"UpperCaseMulticastMac",
       kBase +
           eni("eni-1",
               "mac_address = \"0B:00:00:00:00:01\" #<\nprivate_ip_addresses = [\"10.0.1.10\"]\n"),
       "network_interfaces[0].mac_address", "'0b:00:00:00:00:01' is a multicast MAC address", 15},
      {"DuplicateMacInAnotherCase",
       kBase + eni("eni-1", "mac_address = \"02:00:00:00:0a:01\"\nprivate_ip_addresses = "
                            "[\"10.0.1.10\"]\n") +
           eni("eni-2",
               "mac_address = \"02:00:00:00:0A:01\" #<\nprivate_ip_addresses = [\"10.0.1.11\"]\n"),
       "network_interfaces[1].mac_address",
       "MAC address 02:00:00:00:0a:01 is already used by interface 'eni-1'", 15},
      {"DuplicateAddress",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n") +
           eni("eni-2",
               "mac_address = \"02:00:00:00:00:02\"\nprivate_ip_addresses = [\"10.0.1.11\", "
               "\"10.0.1.10\"] #<\n"),
       "network_interfaces[1].private_ip_addresses[1]",
       "10.0.1.10 is already used by interface 'eni-1'", 38},
      {"NoPrimaryAddress", kBase + eni("eni-1", mac + "private_ip_addresses = [] #<\n"),
       "network_interfaces[0].private_ip_addresses", "no private IPv4 address", 24},
      {"AddressOutsideSubnet",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.2.10\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[0]", "outside subnet 'subnet-a'", 25},
      {"ReservedNetworkAddress",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.0\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[0]", "is reserved", 25, "10.0.1.4"},
      {"ReservedRouterAddress",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.1\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[0]", "is reserved", 25},
      {"ReservedBroadcastAddress",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\", \"10.0.1.255\"] #<\n"),
       "network_interfaces[0].private_ip_addresses[1]", "broadcast address", 38},
      {"ReservedIpv6Address",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "ipv6_addresses = [\"2600:1f18:abcd:1201::3\"] #<\n"),
       "network_interfaces[0].ipv6_addresses[0]", "is reserved", 19},
      {"Ipv6AddressWithoutSubnetBlock",
       kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.2.0/24\"\n" +
           "\n[[network_interfaces]]\nid = \"e\"\nsubnet_id = \"s2\"\n" + mac +
           "private_ip_addresses = [\"10.0.2.10\"]\nipv6_addresses = [\"2600:1f18:abcd:1202::10\"] "
           "#<\n",
       "network_interfaces[0].ipv6_addresses[0]", "has no ipv6_cidr_block", 19},
      {"TcpTimeoutTooShort",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "connection_tracking = { tcp_established_timeout = 59 } #<\n"),
       "network_interfaces[0].connection_tracking.tcp_established_timeout", "outside 60..432000",
       51},
      {"UdpTimeoutTooLong",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "connection_tracking = { udp_timeout = 61 } #<\n"),
       "network_interfaces[0].connection_tracking.udp_timeout", "outside 30..60", 39},
      {"UdpStreamTimeoutTooShort",
       kBase + eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                                  "connection_tracking = { udp_stream_timeout = 59 } #<\n"),
       "network_interfaces[0].connection_tracking.udp_stream_timeout", "outside 60..180", 46},
      // --- prefix lists and quotas
      // ----------------------------------------------------------------
      {"PrefixListOverMaxEntries",
       kBase + "\n[[prefix_lists]]\nid = \"pl-1\"\nmax_entries = 1\n"
               "entries = [\"10.1.0.0/16\", \"10.2.0.0/16\"] #<\n",
       "prefix_lists[0].entries", "2 entries but max_entries = 1", 11},
      {"PrefixListMixedFamilies",
       kBase + "\n[[prefix_lists]]\nid = \"pl-1\"\nmax_entries = 5\n"
               "entries = [\"10.1.0.0/16\", \"2001:db8::/32\"] #<\n",
       "prefix_lists[0].entries[1]", "mixes IPv4 and IPv6", 27},
      {"QuotaPrefixListMaxEntries",
       kBase + "\n[quotas]\nprefix_list_max_entries = 10\n[[prefix_lists]]\nid = \"pl-1\"\n"
               "max_entries = 11 #<\n",
       "prefix_lists[0].max_entries", "exceeds quota prefix_list_max_entries = 10", 15},
      {"QuotaRulesPerGroup",
       kBase + "[[security_groups.ingress]] #<\nip_protocol = -1\ncidr_ipv4 = \"10.1.0.0/16\"\n"
               "[[security_groups.ingress]]\nip_protocol = -1\ncidr_ipv4 = \"10.2.0.0/16\"\n"
               "\n[quotas]\nrules_per_security_group = 1\n",
       "security_groups[0].ingress", "exceeds quota rules_per_security_group = 1", 0},
      {"QuotaRulesPerGroupCountsPrefixListMaxEntries",
       kBase + "[[security_groups.ingress]] #<\nip_protocol = -1\nprefix_list_id = \"pl-1\"\n"
               "\n[[prefix_lists]]\nid = \"pl-1\"\nmax_entries = 61\nentries = [\"10.1.0.0/16\"]\n",
       "security_groups[0].ingress", "(61) exceeds quota rules_per_security_group = 60", 0},
      {"QuotaGroupsPerInterface",
       kBase + "\n[[security_groups]]\nid = \"sg-b\"\n" +
           eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                              "security_group_ids = [\"sg-a\", \"sg-b\"] #<\n") +
           "\n[quotas]\nsecurity_groups_per_interface = 1\n",
       "network_interfaces[0].security_group_ids",
       "exceeds quota security_groups_per_interface = 1", 22},
      {"QuotaRulesPerInterface",
       kBase + "\n[[security_groups]]\nid = \"sg-b\"\n" +
           eni("eni-1", mac + "private_ip_addresses = [\"10.0.1.10\"]\n"
                              "security_group_ids = [\"sg-a\", \"sg-b\"] #<\n") +
           "\n[quotas]\nrules_per_interface = 1\n",
       "network_interfaces[0].security_group_ids", "exceeds quota rules_per_interface = 1", 22},
      {"QuotaRulesPerNetworkAcl",
       kBase +
           "\n[quotas]\nrules_per_network_acl = 1\n[[network_acls]]\nid = \"a\"\n"
           "[[network_acls.entries]] #<\nrule_number = 1\nprotocol = -1\nrule_action = \"allow\"\n"
           "cidr_block = \"0.0.0.0/0\"\n"
           "[[network_acls.entries]]\nrule_number = 2\nprotocol = -1\nrule_action = \"allow\"\n"
           "cidr_block = \"10.0.0.0/8\"\n",
       "network_acls[0].entries", "inbound entries (2) exceeds quota rules_per_network_acl = 1", 1},
      {"QuotaNetworkAclsPerVpc",
       kBase + "\n[quotas]\nnetwork_acls_per_vpc = 1\n[[network_acls]] #<\nid = \"a\"\n",
       "network_acls[0]", "exceeds quota network_acls_per_vpc = 1", 1},
      {"QuotaSecurityGroupsPerVpc",
       kBase + "\n[quotas]\nsecurity_groups_per_vpc = 1\n[[security_groups]] #<\nid = \"sg-b\"\n",
       "security_groups[1]", "exceeds quota security_groups_per_vpc = 1", 1},
      {"QuotaNotPositive", kBase + "\n[quotas]\nrules_per_interface = 0 #<\n",
       "quotas.rules_per_interface", "at least 1", 23},
      // --- flow logs
      // ------------------------------------------------------------------------------
      {"FlowLogUnknownField", kBase + flowLog("log_destination_type = \"s3\" #<\n"),
       "flow_logs[0].log_destination_type", "unknown field 'log_destination_type'", 1,
       "log_destination"},
      {"FlowLogMissingTrafficType",
       kBase + "\n[[flow_logs]] #<\nid = \"fl-1\"\nresource_id = \"vpc-1\"\n"
               "log_destination = \"file:///var/log/vpcguard/flowlogs\"\n",
       "flow_logs[0].traffic_type", "missing required field 'traffic_type'", 1},
      {"FlowLogBadTrafficType", kBase + flowLog("", "traffic_type", "traffic_type = \"BOTH\" #<"),
       "flow_logs[0].traffic_type", "traffic_type must be ACCEPT, REJECT or ALL, not 'BOTH'", 16},
      {"FlowLogIntervalAsString", kBase + flowLog("max_aggregation_interval = \"60\" #<\n"),
       "flow_logs[0].max_aggregation_interval", "expected an integer, found a string", 28},
      {"FlowLogIdWithoutPrefix", kBase + flowLog("", "id", "id = \"flow-1\" #<"), "flow_logs[0].id",
       "flow log id 'flow-1' does not start with \"fl-\"", 6, "fl-flow-1"},
      {"DuplicateFlowLogId", kBase + flowLog("") + flowLog("", "id", "id = \"fl-1\" #<"),
       "flow_logs[1].id", "duplicate flow log id 'fl-1'", 6},
      {"FlowLogDanglingResource",
       kBase + flowLog("", "resource_id", "resource_id = \"subnet-x\" #<"),
       "flow_logs[0].resource_id",
       "resource 'subnet-x' is not the VPC, a subnet or a network interface", 15, "vpc-1"},
      {"FlowLogEmptyResource", kBase + flowLog("", "resource_id", "resource_id = \"\" #<"),
       "flow_logs[0].resource_id", "empty resource_id", 15},
      {"FlowLogS3Destination",
       kBase + flowLog("", "log_destination", "log_destination = \"s3://bucket/logs\" #<"),
       "flow_logs[0].log_destination", "scheme 's3' is not supported yet", 19, "flowlogs/sink.h"},
      {"FlowLogDestinationNotAUrl",
       kBase + flowLog("", "log_destination", "log_destination = \"/var/log/fl\" #<"),
       "flow_logs[0].log_destination", "'/var/log/fl' is not a file:// URL", 19},
      {"FlowLogDestinationNotAbsolute",
       kBase + flowLog("", "log_destination", "log_destination = \"file://var/log/fl\" #<"),
       "flow_logs[0].log_destination", "does not name an absolute directory", 19, "file:///"},
      {"FlowLogFormatUnknownField",
       kBase + flowLog("log_format = \"${version} ${srcadr} ${action}\" #<\n"),
       "flow_logs[0].log_format", "unknown field 'srcadr' (did you mean 'srcaddr'?)", 14},
      {"FlowLogFormatNotSpaceSeparated",
       kBase + flowLog("log_format = \"${version},${srcaddr}\" #<\n"), "flow_logs[0].log_format",
       "(at character 11: ',${srcaddr}')", 14},
      {"FlowLogFormatUnclosedField", kBase + flowLog("log_format = \"${version} ${srcaddr\" #<\n"),
       "flow_logs[0].log_format", "without a closing '}' (at character 12: '${srcaddr')", 14},
      {"FlowLogAggregationInterval", kBase + flowLog("max_aggregation_interval = 300 #<\n"),
       "flow_logs[0].max_aggregation_interval", "must be 60 or 600 seconds, not 300", 28},
      {"FlowLogCollectorWithoutPort", kBase + flowLog("ipfix_collector = \"192.0.2.10\" #<\n"),
       "flow_logs[0].ipfix_collector", "'192.0.2.10' has no port", 19},
      {"FlowLogCollectorPortOutOfRange",
       kBase + flowLog("ipfix_collector = \"192.0.2.10:65536\" #<\n"),
       "flow_logs[0].ipfix_collector", "port '65536' is not a port 1..65535", 19},
      {"FlowLogCollectorPortZero", kBase + flowLog("ipfix_collector = \"collector.lab:0\" #<\n"),
       "flow_logs[0].ipfix_collector", "port '0' is not a port 1..65535", 19},
      {"FlowLogCollectorBadHostname",
       kBase + flowLog("ipfix_collector = \"collector_1.lab:4739\" #<\n"),
       "flow_logs[0].ipfix_collector",
       "host 'collector_1.lab' is neither an IPv4 address nor a hostname", 19},
      {"FlowLogCollectorBadIpv4", kBase + flowLog("ipfix_collector = \"192.0.2.300:4739\" #<\n"),
       "flow_logs[0].ipfix_collector", "host '192.0.2.300' is neither", 19},
      {"FlowLogCollectorIpv6WithoutBrackets",
       kBase + flowLog("ipfix_collector = \"2001:db8::10:4739\" #<\n"),
       "flow_logs[0].ipfix_collector", "an IPv6 address must be in brackets", 19,
       "[2001:db8::10]:4739"},
      {"FlowLogCollectorBadIpv6", kBase + flowLog("ipfix_collector = \"[2001:db8::zz]:4739\" #<\n"),
       "flow_logs[0].ipfix_collector", "host '2001:db8::zz' is not an IPv6 address", 19},
      // --- traffic mirroring: targets -----------------------------------------------------------
      {"MirrorTargetIdWithoutPrefix",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"target-3\" #<\n"
                     "vxlan_remote_ip = \"192.0.2.11\"\n",
       "traffic_mirror_targets[2].id",
       "traffic mirror target id 'target-3' does not start with \"tmt-\"", 6, "tmt-target-3"},
      {"MirrorTargetUnknownField",
       kMirrorBase +
           "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\nvxlan_remote_ip = \"192.0.2.11\"\n"
           "network_load_balancer_arn = \"arn:aws:x\" #<\n",
       "traffic_mirror_targets[2].network_load_balancer_arn",
       "unknown field 'network_load_balancer_arn'", 1},
      {"MirrorTargetNeitherInterfaceNorRemote",
       kMirrorBase + "\n[[traffic_mirror_targets]] #<\nid = \"tmt-3\"\ndescription = \"x\"\n",
       "traffic_mirror_targets[2]", "has neither network_interface_id nor vxlan_remote_ip", 1,
       "vxlan_remote_ip"},
      {"MirrorTargetBothInterfaceAndRemote",
       kMirrorBase +
           "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\nnetwork_interface_id = \"eni-dst\"\n"
           "vxlan_remote_ip = \"192.0.2.11\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "has both network_interface_id and vxlan_remote_ip", 19},
      {"MirrorTargetIpv6Remote",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "vxlan_remote_ip = \"2001:db8::10\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "'2001:db8::10' is an IPv6 address: an IPv6 underlay is not supported here", 19, "IPv4"},
      {"MirrorTargetRemoteUnspecified",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "vxlan_remote_ip = \"0.0.0.0\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "vxlan_remote_ip '0.0.0.0' is in 0.0.0.0/8 (\"this network\"), not a host to send to", 19,
       "unicast IPv4 address"},
      {"MirrorTargetRemoteLoopback",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "vxlan_remote_ip = \"127.0.0.1\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "vxlan_remote_ip '127.0.0.1' is a loopback address (127.0.0.0/8)", 19,
       "unicast IPv4 address"},
      {"MirrorTargetRemoteMulticast",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "vxlan_remote_ip = \"239.1.2.3\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "vxlan_remote_ip '239.1.2.3' is a multicast address (224.0.0.0/4)", 19},
      {"MirrorTargetRemoteBroadcast",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "vxlan_remote_ip = \"255.255.255.255\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "vxlan_remote_ip '255.255.255.255' is the broadcast address", 19},
      {"MirrorTargetRemoteLinkLocal",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "vxlan_remote_ip = \"169.254.118.7\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip",
       "vxlan_remote_ip '169.254.118.7' is link-local (169.254.0.0/16): link-local is where "
       "vpcguardd routes local-target copies",
       19, "network_interface_id"},
      // tmt-1 and tmt-same share eni-dst's address: 1 + 253 new ones is one too many; the 254th
      // new one is over the limit too, but only the first is reported.
      {"MirrorTooManyLocalTargets", localTargets(254, 253),
       "traffic_mirror_targets[255].network_interface_id",
       "traffic mirror target 'tmt-l253' (10.0.5.7) brings the local target addresses sessions "
       "use to 254, more than the 253 possible",
       24, "vxlan_remote_ip"},
      {"MirrorTargetMalformedRemote",
       kMirrorBase +
           "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\nvxlan_remote_ip = \"192.0.2\" #<\n",
       "traffic_mirror_targets[2].vxlan_remote_ip", "'192.0.2' is not a valid IPv4 address", 19},
      {"MirrorTargetDanglingInterface",
       kMirrorBase + "\n[[traffic_mirror_targets]]\nid = \"tmt-3\"\n"
                     "network_interface_id = \"eni-x\" #<\n",
       "traffic_mirror_targets[2].network_interface_id", "network interface 'eni-x' does not exist",
       24, "[[network_interfaces]]"},
      {"DuplicateMirrorTargetId",
       kMirrorBase +
           "\n[[traffic_mirror_targets]]\nid = \"tmt-2\" #<\nvxlan_remote_ip = \"192.0.2.11\"\n",
       "traffic_mirror_targets[2].id", "duplicate traffic mirror target id 'tmt-2'", 6},
      // --- traffic mirroring: filters -----------------------------------------------------------
      {"MirrorFilterIdWithoutPrefix",
       kMirrorBase + "\n[[traffic_mirror_filters]]\nid = \"filter-2\" #<\n",
       "traffic_mirror_filters[1].id",
       "traffic mirror filter id 'filter-2' does not start with \"tmf-\"", 6},
      {"MirrorFilterUnknownNetworkService",
       kMirrorBase + "network_services = [\"amazon-dns\", \"dns\"] #<\n",
       "traffic_mirror_filters[0].network_services[1]", "network service 'dns' is not amazon-dns",
       35, "amazon-dns"},
      {"MirrorRuleNumberOutOfRange",
       kMirrorBase + mirrorRule("ingress", "", "rule_number", "rule_number = 32767 #<"),
       "traffic_mirror_filters[0].ingress_rules[0].rule_number",
       "rule number 32767 is outside 1..32766", 15},
      {"MirrorRuleNumberTwiceInOneDirection",
       kMirrorBase + mirrorRule("egress", "") +
           mirrorRule("egress", "", "rule_number", "rule_number = 100 #<"),
       "traffic_mirror_filters[0].egress_rules[1].rule_number",
       "egress rule number 100 is already used by traffic_mirror_filters[0].egress_rules[0]", 15,
       "unique per filter direction"},
      {"MirrorRuleBadAction",
       kMirrorBase + mirrorRule("ingress", "", "rule_action", "rule_action = \"allow\" #<"),
       "traffic_mirror_filters[0].ingress_rules[0].rule_action",
       "rule_action must be accept or reject, not 'allow'", 15},
      {"MirrorRuleProtocolOutOfRange", kMirrorBase + mirrorRule("ingress", "protocol = 256 #<\n"),
       "traffic_mirror_filters[0].ingress_rules[0].protocol", "protocol 256 is out of range", 12},
      {"MirrorRuleMissingCidr",
       kMirrorBase + "\n[[traffic_mirror_filters.ingress_rules]] #<\nrule_number = 1\n"
                     "rule_action = \"reject\"\ndestination_cidr_block = \"0.0.0.0/0\"\n",
       "traffic_mirror_filters[0].ingress_rules[0].source_cidr_block",
       "missing required field 'source_cidr_block'", 1},
      {"MirrorRuleNonCanonicalCidr",
       kMirrorBase +
           mirrorRule("ingress", "", "source_cidr_block", "source_cidr_block = \"10.0.1.5/24\" #<"),
       "traffic_mirror_filters[0].ingress_rules[0].source_cidr_block", "not a canonical CIDR", 21},
      {"MirrorRuleMixedFamilies",
       kMirrorBase + mirrorRule("ingress", "", "destination_cidr_block",
                                "destination_cidr_block = \"::/0\" #<"),
       "traffic_mirror_filters[0].ingress_rules[0].destination_cidr_block",
       "destination_cidr_block '::/0' is IPv6 but source_cidr_block '0.0.0.0/0' is IPv4", 26},
      {"MirrorRulePortsOnIcmp",
       kMirrorBase + mirrorRule("ingress",
                                "protocol = 1\n"
                                "destination_port_range = { from_port = 0, to_port = 8 } #<\n"),
       "traffic_mirror_filters[0].ingress_rules[0].destination_port_range",
       "destination_port_range is given for protocol 1 (icmp): port ranges apply to tcp (6) and "
       "udp (17) only",
       26, "AWS refuses"},
      {"MirrorRulePortsOnAllProtocols",
       kMirrorBase +
           mirrorRule("egress", "source_port_range = { from_port = 1, to_port = 2 } #<\n"),
       "traffic_mirror_filters[0].egress_rules[0].source_port_range",
       "source_port_range is given for protocol -1 (all)", 21},
      {"MirrorRulePortsReversed",
       kMirrorBase + mirrorRule("ingress",
                                "protocol = 6\n"
                                "destination_port_range = { from_port = 443, to_port = 80 } #<\n"),
       "traffic_mirror_filters[0].ingress_rules[0].destination_port_range.from_port",
       "from port 443 is greater than to port 80", 40},
      {"MirrorRulePortRangeMissingToPort",
       kMirrorBase +
           mirrorRule("ingress", "protocol = 17\nsource_port_range = { from_port = 53 } #<\n"),
       "traffic_mirror_filters[0].ingress_rules[0].source_port_range.to_port",
       "missing required field 'to_port'", 21},
      {"MirrorFilterRuleQuota",
       "[quotas]\ntraffic_mirror_filter_rules = 1\n" + kMirrorBase + mirrorRule("ingress", "") +
           markHeader(mirrorRule("ingress", "", "rule_number", "rule_number = 200")),
       "traffic_mirror_filters[0].ingress_rules[1]",
       "ingress rules (2) exceeds quota traffic_mirror_filter_rules = 1", 1,
       "raise traffic_mirror_filter_rules in [quotas]"},
      {"MirrorQuotaBelowOne", kBase + "\n[quotas]\ntraffic_mirror_sessions_per_interface = 0 #<\n",
       "quotas.traffic_mirror_sessions_per_interface", "quota must be at least 1, not 0", 41},
      // --- traffic mirroring: sessions ----------------------------------------------------------
      {"MirrorSessionIdWithoutPrefix",
       kMirrorBase + mirrorSession("", "id", "id = \"session-1\" #<"),
       "traffic_mirror_sessions[0].id",
       "traffic mirror session id 'session-1' does not start with \"tms-\"", 6},
      {"MirrorSessionDanglingInterface",
       kMirrorBase +
           mirrorSession("", "network_interface_id", "network_interface_id = \"eni-x\" #<"),
       "traffic_mirror_sessions[0].network_interface_id",
       "network interface 'eni-x' does not exist", 24},
      {"MirrorSessionDanglingTarget",
       kMirrorBase +
           mirrorSession("", "traffic_mirror_target_id", "traffic_mirror_target_id = \"tmt-x\" #<"),
       "traffic_mirror_sessions[0].traffic_mirror_target_id",
       "traffic mirror target 'tmt-x' does not exist", 28, "[[traffic_mirror_targets]]"},
      {"MirrorSessionDanglingFilter",
       kMirrorBase +
           mirrorSession("", "traffic_mirror_filter_id", "traffic_mirror_filter_id = \"tmf-x\" #<"),
       "traffic_mirror_sessions[0].traffic_mirror_filter_id",
       "traffic mirror filter 'tmf-x' does not exist", 28, "[[traffic_mirror_filters]]"},
      {"MirrorSessionMissingNumber", kMirrorBase + markHeader(mirrorSession("", "session_number")),
       "traffic_mirror_sessions[0].session_number", "missing required field 'session_number'", 1},
      {"MirrorSessionNumberOutOfRange",
       kMirrorBase + mirrorSession("", "session_number", "session_number = 0 #<"),
       "traffic_mirror_sessions[0].session_number", "session number 0 is outside 1..32766", 18},
      {"MirrorSessionNumberTwicePerInterface",
       kMirrorBase + mirrorSession("") + secondSession("\"eni-src\"", "1 #<"),
       "traffic_mirror_sessions[1].session_number",
       "session number 1 is already used by traffic_mirror_sessions[0] ('tms-1') on interface "
       "'eni-src'",
       18, "unique per source interface"},
      {"MirrorSessionQuota",
       "[quotas]\ntraffic_mirror_sessions_per_interface = 1\n" + kMirrorBase + mirrorSession("") +
           secondSession("\"eni-src\" #<", "2"),
       "traffic_mirror_sessions[1].network_interface_id",
       "traffic mirror sessions of interface 'eni-src' (2) exceeds quota "
       "traffic_mirror_sessions_per_interface = 1",
       24},
      {"MirrorSessionPacketLengthBelowEthernetHeader",
       kMirrorBase + mirrorSession("packet_length = 13 #<\n"),
       "traffic_mirror_sessions[0].packet_length",
       "packet_length 13 is below 14: Open vSwitch cannot truncate a packet below its 14-byte "
       "Ethernet header",
       17, "leave packet_length out"},
      {"MirrorSessionPacketLengthTooLong", kMirrorBase + mirrorSession("packet_length = 8501 #<\n"),
       "traffic_mirror_sessions[0].packet_length", "packet_length 8501 is outside 1..8500", 17},
      {"MirrorSessionVniTooLarge",
       kMirrorBase + mirrorSession("virtual_network_id = 16777216 #<\n"),
       "traffic_mirror_sessions[0].virtual_network_id",
       "virtual_network_id 16777216 is outside 0..16777215", 22},
      {"MirrorSessionVniNegative", kMirrorBase + mirrorSession("virtual_network_id = -1 #<\n"),
       "traffic_mirror_sessions[0].virtual_network_id",
       "virtual_network_id -1 is outside 0..16777215", 22},
      {"MirrorSessionSourceIsItsOwnTarget",
       kMirrorBase +
           mirrorSession("", "network_interface_id", "network_interface_id = \"eni-dst\" #<"),
       "traffic_mirror_sessions[0].network_interface_id",
       "interface 'eni-dst' is the target of its own session (through target 'tmt-1')", 24},
      {"MirrorSessionSourceIsAnotherSessionsTarget",
       kMirrorBase + mirrorSession("") + secondSession("\"eni-dst\" #<", "1"),
       "traffic_mirror_sessions[1].network_interface_id",
       "interface 'eni-dst' is the mirror target of session 'tms-1', so it cannot be a mirror "
       "source",
       24, "cannot be a traffic mirror source"},
      {"MirrorSessionUnknownField", kMirrorBase + mirrorSession("vni = 7 #<\n"),
       "traffic_mirror_sessions[0].vni", "unknown field 'vni'", 1},
      // --- port mirrors -----------------------------------------------------------------------
      {"PortMirrorIdWithoutPrefix", kMirrorBase + portMirror("", "id", "id = \"mirror-1\" #<"),
       "port_mirrors[0].id", "port mirror id 'mirror-1' does not start with \"pm-\"", 6,
       "pm-mirror-1"},
      {"PortMirrorDanglingInterface",
       kMirrorBase + portMirror("", "network_interface_id", "network_interface_id = \"eni-x\" #<"),
       "port_mirrors[0].network_interface_id", "network interface 'eni-x' does not exist", 24},
      {"PortMirrorEmptyOutputPort",
       kMirrorBase + portMirror("", "output_port", "output_port = \"\" #<"),
       "port_mirrors[0].output_port", "output_port is empty", 15},
      {"PortMirrorOutputPortTooLong",
       kMirrorBase + portMirror("", "output_port", "output_port = \"mirror-of-eni-src\" #<"),
       "port_mirrors[0].output_port",
       "output_port 'mirror-of-eni-src' is longer than 15 characters (a Linux interface name)", 15},
      {"PortMirrorOutputPortIsTheTunnel",
       kMirrorBase + portMirror("", "output_port", "output_port = \"vg-mirror\" #<"),
       "port_mirrors[0].output_port", "is the VXLAN port vpcguardd sends mirror copies through",
       15},
      {"PortMirrorOutputPortWithSlash",
       kMirrorBase + portMirror("", "output_port", "output_port = \"mirror/0\" #<"),
       "port_mirrors[0].output_port", "'mirror/0' is not a valid Linux interface name", 15},
      {"PortMirrorTwicePerInterface",
       kMirrorBase + portMirror("") +
           table("[[port_mirrors]]",
                 {{"id", "\"pm-2\""},
                  {"network_interface_id", "\"eni-src\" #<"},
                  {"output_port", "\"mirror1\""}},
                 "", "", ""),
       "port_mirrors[1].network_interface_id", "interface 'eni-src' already has port mirror 'pm-1'",
       24, "at most one port mirror"},
  };
}

int markedLine(const std::string& text) {
  const auto pos = text.find("#<");
  if (pos == std::string::npos) {
    return -1;
  }
  return static_cast<int>(
             std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n')) +
         1;
}

std::string dump(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) {
    out += "  " + formatDiagnostic(d) + "\n";
  }
  return out;
}

// Test names come from the case name; this keeps gtest from printing the case as bytes.
void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.name; }

class BrokenConfig : public testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenConfig, ReportsTheErrorWhereItIs) {
  const BrokenCase& c = GetParam();
  const int line = markedLine(c.toml);
  ASSERT_GT(line, 0) << "case has no #< marker";
  auto result = loadPolicyFromDocuments({Document{"case.toml", c.toml}});
  ASSERT_FALSE(result.has_value()) << "config was accepted:\n" << c.toml;
  ASSERT_FALSE(result.error().io.has_value());
  const auto& diags = result.error().diagnostics;
  auto it = std::find_if(diags.begin(), diags.end(), [&](const Diagnostic& d) {
    return d.path == c.path && d.message.find(c.message) != std::string::npos;
  });
  ASSERT_NE(it, diags.end()) << "no diagnostic for '" << c.path << "' with '" << c.message
                             << "'; got:\n"
                             << dump(diags);
  EXPECT_EQ(it->location.file, "case.toml");
  EXPECT_EQ(it->location.line, line) << formatDiagnostic(*it);
  if (c.column != 0) {
    EXPECT_EQ(it->location.column, c.column) << formatDiagnostic(*it);
  }
  EXPECT_FALSE(it->hint.empty()) << formatDiagnostic(*it);
  EXPECT_NE(it->hint.find(c.hint), std::string::npos) << formatDiagnostic(*it);
}

INSTANTIATE_TEST_SUITE_P(Table, BrokenConfig, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<BrokenCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(BrokenConfigTable, HasAtLeastFortyCases) { EXPECT_GE(cases().size(), 40u); }

TEST(BrokenConfigTable, BaseIsValid) {
  auto result = loadPolicyFromDocuments({Document{"base.toml", kBase}});
  ASSERT_TRUE(result.has_value()) << dump(result.error().diagnostics);
}

// What the mirroring cases extend, with each valid piece they modify.
TEST(BrokenConfigTable, MirrorBaseIsValid) {
  const std::string text = kMirrorBase + mirrorRule("ingress", "protocol = 6\n") +
                           mirrorRule("egress", "") + mirrorSession("") + portMirror("");
  auto result = loadPolicyFromDocuments({Document{"base.toml", text}});
  ASSERT_TRUE(result.has_value()) << dump(result.error().diagnostics);
}

// Every case must break only what it means to: one mistake, one error.
TEST(BrokenConfigTable, EachCaseReportsOneError) {
  for (const auto& c : cases()) {
    auto result = loadPolicyFromDocuments({Document{"case.toml", c.toml}});
    ASSERT_FALSE(result.has_value()) << c.name;
    EXPECT_EQ(result.error().diagnostics.size(), 1u) << c.name << ":\n"
                                                     << dump(result.error().diagnostics);
  }
}

// 253 local target addresses fit kMirrorHostSubnet; targets a session does not use, and
// targets sharing an address, do not count.
TEST(BrokenConfigTable, LocalTargetsUpToTheLimitAreValid) {
  const std::string text = localTargets(252, 0) +
                           "\n[[network_interfaces]]\nid = \"eni-unused\"\nsubnet_id = "
                           "\"subnet-m\"\nmac_address = \"02:00:00:00:ff:ff\"\n"
                           "private_ip_addresses = [\"10.0.6.10\"]\n"
                           "\n[[traffic_mirror_targets]]\nid = \"tmt-unused\"\n"
                           "network_interface_id = \"eni-unused\"\n";
  auto result = loadPolicyFromDocuments({Document{"targets.toml", text}});
  ASSERT_TRUE(result.has_value()) << dump(result.error().diagnostics);
}

TEST(Diagnostics, AllErrorsAtOnce) {
  const std::string text = kBase +
                           "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"10.9.0.0/24\"\n"
                           "network_acl_id = \"acl-x\"\n"
                           "[[security_groups.ingress]]\nip_protocol = \"tpc\"\n"
                           "cidr_ipv4 = \"10.0.1.5/24\"\nbogus = 1\n";
  auto result = loadPolicyFromDocuments({Document{"many.toml", text}});
  ASSERT_FALSE(result.has_value());
  const auto& diags = result.error().diagnostics;
  EXPECT_EQ(diags.size(), 5u) << dump(diags);
  // Sorted by position in the file.
  for (size_t i = 1; i < diags.size(); ++i) {
    EXPECT_LE(diags[i - 1].location.line, diags[i].location.line);
  }
}

TEST(Diagnostics, BadFieldIsReportedOnceNotAgainByValidation) {
  // The malformed block must not also be reported as "outside the VPC" or "overlapping".
  auto result = loadPolicyFromDocuments(
      {Document{"x.toml", kBase + "\n[[subnets]]\nid = \"s2\"\ncidr_block = \"banana\"\n"}});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().diagnostics.size(), 1u) << dump(result.error().diagnostics);
}

TEST(Diagnostics, FormatIsFileLineColPathMessageHint) {
  Diagnostic d{{"lab.toml", 12, 3}, "subnets[0].cidr_block", "bad block", "fix it"};
  EXPECT_EQ(formatDiagnostic(d),
            "lab.toml:12:3: error: subnets[0].cidr_block: bad block (hint: fix it)");
  d.hint.clear();
  d.path.clear();
  EXPECT_EQ(formatDiagnostic(d), "lab.toml:12:3: error: bad block");
}

}  // namespace
}  // namespace vpcguard::config
