// The config loader: field mapping, AWS defaults written by omission, reading files and merging
// directories.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/check_command.h"
#include "daemon/config_loader.h"
#include "tests/harness/paths.h"
#include "translator/ip.h"

namespace vpcguard::config {
namespace {

namespace fs = std::filesystem;

// A temporary directory removed at the end of the test, also when it fails.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vpcguard-config-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    const fs::path p = path_ / name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  fs::path path_;
};

const char* kVpc = R"([vpc]
id = "vpc-1"
account_id = "123456789012"
region = "eu-lab-1"
cidr_blocks = ["10.0.0.0/16"]
strict_revocation = true
)";

model::Policy mustLoad(const std::string& text) {
  auto result = loadPolicyFromDocuments({Document{"t.toml", text}});
  if (!result) {
    std::string all;
    for (const auto& d : result.error().diagnostics) {
      all += formatDiagnostic(d) + "\n";
    }
    ADD_FAILURE() << "config rejected:\n" << all;
    return {};
  }
  return *result;
}

const model::SecurityGroup* group(const model::Policy& p, const std::string& id) {
  for (const auto& g : p.security_groups) {
    if (g.id == id) {
      return &g;
    }
  }
  return nullptr;
}

TEST(ConfigLoader, MapsVpcFields) {
  const auto p = mustLoad(kVpc);
  EXPECT_EQ(p.vpc.id, "vpc-1");
  EXPECT_EQ(p.vpc.account_id, "123456789012");
  EXPECT_EQ(p.vpc.region, "eu-lab-1");
  ASSERT_EQ(p.vpc.cidr_blocks.size(), 1u);
  EXPECT_EQ(p.vpc.cidr_blocks[0].toString(), "10.0.0.0/16");
  EXPECT_TRUE(p.vpc.strict_revocation);
  EXPECT_EQ(p.vpc.location.file, "t.toml");
  EXPECT_EQ(p.vpc.location.line, 1);
}

TEST(ConfigLoader, ProtocolsAcceptNamesNumbersAndNumericStrings) {
  const std::string text = std::string(kVpc) + R"(
[[security_groups]]
id = "sg-1"
ingress = [
  { ip_protocol = "tcp", from_port = 1, to_port = 2, cidr_ipv4 = "10.1.0.0/16" },
  { ip_protocol = "6", from_port = 3, to_port = 4, cidr_ipv4 = "10.1.0.0/16" },
  { ip_protocol = 17, from_port = 5, to_port = 6, cidr_ipv4 = "10.1.0.0/16" },
  { ip_protocol = "UDP", from_port = 7, to_port = 8, cidr_ipv4 = "10.1.0.0/16" },
  { ip_protocol = "all", cidr_ipv4 = "10.2.0.0/16" },
  { ip_protocol = "-1", cidr_ipv4 = "10.3.0.0/16" },
  { ip_protocol = -1, from_port = -1, to_port = -1, cidr_ipv4 = "10.4.0.0/16" },
  { ip_protocol = "47", cidr_ipv4 = "10.5.0.0/16" },
  { ip_protocol = "icmpv6", cidr_ipv6 = "::/0" },
]
)";
  const auto p = mustLoad(text);
  const auto* g = group(p, "sg-1");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->ingress.size(), 9u);
  const int expected[] = {6, 6, 17, 17, -1, -1, -1, 47, 58};
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(g->ingress[i].ip_protocol, expected[i]) << i;
  }
  EXPECT_EQ(g->ingress[1].ports, (model::PortRange{3, 4}));
  // AWS writes "no ports" as -1/-1: accepted, and no ports are stored.
  EXPECT_FALSE(g->ingress[6].ports.has_value());
  EXPECT_FALSE(g->ingress[7].ports.has_value());
  // An ICMP rule without type/code means all of them.
  EXPECT_EQ(g->ingress[8].icmp, (model::IcmpTypeCode{-1, -1}));
}

TEST(ConfigLoader, IcmpRulesTakeTypeAndCodeFromPorts) {
  const auto p = mustLoad(std::string(kVpc) + R"(
[[security_groups]]
id = "sg-1"
  [[security_groups.ingress]]
  ip_protocol = "icmp"
  from_port = 3
  to_port = 4
  cidr_ipv4 = "0.0.0.0/0"
)");
  const auto& r = group(p, "sg-1")->ingress.at(0);
  EXPECT_EQ(r.icmp, (model::IcmpTypeCode{3, 4}));
  EXPECT_FALSE(r.ports.has_value());
}

TEST(ConfigLoader, PeersOfEveryKind) {
  const auto p = mustLoad(std::string(kVpc) + R"(
[[prefix_lists]]
id = "pl-office"
max_entries = 5
entries = ["198.51.100.0/24", "203.0.113.0/24"]

[[security_groups]]
id = "sg-1"
ingress = [
  { ip_protocol = -1, cidr_ipv4 = "10.1.0.0/16" },
  { ip_protocol = -1, cidr_ipv6 = "2001:db8::/32" },
  { ip_protocol = -1, referenced_group_id = "sg-1" },
  { ip_protocol = -1, prefix_list_id = "pl-office", description = "office" },
]
)");
  const auto& in = group(p, "sg-1")->ingress;
  ASSERT_EQ(in.size(), 4u);
  EXPECT_EQ(std::get<Cidr>(in[0].peer).toString(), "10.1.0.0/16");
  EXPECT_EQ(std::get<Cidr>(in[1].peer).toString(), "2001:db8::/32");
  EXPECT_EQ(std::get<model::GroupRef>(in[2].peer).group_id, "sg-1");
  EXPECT_EQ(std::get<model::PrefixListRef>(in[3].peer).prefix_list_id, "pl-office");
  EXPECT_EQ(in[3].description, "office");
  ASSERT_EQ(p.prefix_lists.size(), 1u);
  EXPECT_EQ(p.prefix_lists[0].max_entries, 5);
  EXPECT_EQ(p.prefix_lists[0].entries.size(), 2u);
}

TEST(ConfigLoader, MissingEgressKeyMeansAllowAllButEmptyEgressMeansNone) {
  const auto p = mustLoad(std::string(kVpc) + R"(
[[security_groups]]
id = "sg-open"

[[security_groups]]
id = "sg-closed"
egress = []
)");
  const auto* open = group(p, "sg-open");
  ASSERT_NE(open, nullptr);
  ASSERT_EQ(open->egress.size(), 2u);
  EXPECT_EQ(std::get<Cidr>(open->egress[0].peer).toString(), "0.0.0.0/0");
  EXPECT_EQ(std::get<Cidr>(open->egress[1].peer).toString(), "::/0");
  EXPECT_EQ(open->egress[0].ip_protocol, model::kProtoAll);
  EXPECT_TRUE(open->ingress.empty());
  EXPECT_TRUE(group(p, "sg-closed")->egress.empty());
}

TEST(ConfigLoader, InterfaceFieldsAndDefaults) {
  const auto p = mustLoad(std::string(kVpc) + R"(
[[subnets]]
id = "s1"
cidr_block = "10.0.1.0/24"

[[network_interfaces]]
id = "eni-1"
subnet_id = "s1"
mac_address = "02:AB:00:00:00:01"
private_ip_addresses = ["10.0.1.10", "10.0.1.11"]

[[network_interfaces]]
id = "eni-2"
subnet_id = "s1"
mac_address = "02:ab:00:00:00:02"
private_ip_addresses = ["10.0.1.12"]
source_dest_check = false
connection_tracking = { tcp_established_timeout = 60, udp_timeout = 60, udp_stream_timeout = 60 }
)");
  ASSERT_EQ(p.network_interfaces.size(), 2u);
  const auto& e1 = p.network_interfaces[0];
  EXPECT_EQ(e1.mac_address, "02:ab:00:00:00:01");  // canonical lower case
  ASSERT_EQ(e1.private_ip_addresses.size(), 2u);
  EXPECT_EQ(e1.private_ip_addresses[0].toString(), "10.0.1.10");  // primary first
  EXPECT_TRUE(e1.source_dest_check);
  EXPECT_FALSE(e1.connection_tracking.tcp_established_timeout.has_value());
  const auto& e2 = p.network_interfaces[1];
  EXPECT_FALSE(e2.source_dest_check);
  EXPECT_EQ(e2.connection_tracking.tcp_established_timeout, 60);
  EXPECT_EQ(e2.connection_tracking.udp_timeout, 60);
  EXPECT_EQ(e2.connection_tracking.udp_stream_timeout, 60);
}

TEST(ConfigLoader, NetworkAclEntries) {
  const auto p = mustLoad(std::string(kVpc) + R"(
[[network_acls]]
id = "acl-1"
  [[network_acls.entries]]
  rule_number = 100
  protocol = "tcp"
  rule_action = "allow"
  cidr_block = "0.0.0.0/0"
  port_range = { from = 1024, to = 65535 }
  [[network_acls.entries]]
  rule_number = 100
  egress = true
  protocol = "icmpv6"
  rule_action = "DENY"
  ipv6_cidr_block = "::/0"
  icmp_type_code = { type = 128, code = 0 }
)");
  const model::NetworkAcl* acl = nullptr;
  for (const auto& a : p.network_acls) {
    if (a.id == "acl-1") {
      acl = &a;
    }
  }
  ASSERT_NE(acl, nullptr);
  EXPECT_FALSE(acl->is_default);
  ASSERT_EQ(acl->entries.size(), 2u);
  EXPECT_EQ(acl->entries[0].protocol, 6);
  EXPECT_TRUE(acl->entries[0].allow);
  EXPECT_FALSE(acl->entries[0].egress);
  EXPECT_EQ(acl->entries[0].port_range, (model::PortRange{1024, 65535}));
  EXPECT_TRUE(acl->entries[1].egress);
  EXPECT_FALSE(acl->entries[1].allow);
  EXPECT_EQ(acl->entries[1].cidr.toString(), "::/0");
  EXPECT_EQ(acl->entries[1].icmp_type_code, (model::IcmpTypeCode{128, 0}));
}

TEST(ConfigLoader, FlowLogsMapEveryField) {
  const auto p = mustLoad(std::string(kVpc) + R"(
[[subnets]]
id = "s1"
cidr_block = "10.0.1.0/24"

[[network_interfaces]]
id = "eni-1"
subnet_id = "s1"
mac_address = "02:00:00:00:00:01"
private_ip_addresses = ["10.0.1.10"]

[[flow_logs]]
id = "fl-all"
resource_id = "vpc-1"
traffic_type = "ALL"
log_destination = "file:///var/log/vpcguard/flowlogs"
log_format = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${action} ${tcp-flags}"
max_aggregation_interval = 60
ipfix_collector = "[2001:db8::10]:4739"

[[flow_logs]]
id = "fl-rejects"
resource_id = "s1"
traffic_type = "REJECT"
log_destination = "file:///tmp/fl"

[[flow_logs]]   # a second flow log on an interface already covered: AWS allows it
id = "fl-eni"
resource_id = "eni-1"
traffic_type = "accept"
log_destination = "file:///tmp/fl-eni"
ipfix_collector = "collector.lab:2055"
)");
  ASSERT_EQ(p.flow_logs.size(), 3u);
  const auto& all = p.flow_logs[0];
  EXPECT_EQ(all.id, "fl-all");
  EXPECT_EQ(all.resource_id, "vpc-1");
  EXPECT_EQ(all.traffic_type, model::FlowLogTrafficType::kAll);
  EXPECT_EQ(all.log_destination, "file:///var/log/vpcguard/flowlogs");
  EXPECT_EQ(all.log_format,
            "${version} ${interface-id} ${srcaddr} ${dstaddr} ${action} ${tcp-flags}");
  EXPECT_EQ(all.max_aggregation_interval, 60);
  EXPECT_EQ(all.ipfix_collector, "[2001:db8::10]:4739");
  EXPECT_EQ(all.location.line, 18);
  // Defaults: the version 2 format (empty), 600 s, no collector.
  const auto& rejects = p.flow_logs[1];
  EXPECT_EQ(rejects.traffic_type, model::FlowLogTrafficType::kReject);
  EXPECT_EQ(rejects.resource_id, "s1");
  EXPECT_EQ(rejects.log_format, "");
  EXPECT_EQ(rejects.max_aggregation_interval, 600);
  EXPECT_FALSE(rejects.ipfix_collector.has_value());
  const auto& eni = p.flow_logs[2];
  EXPECT_EQ(eni.traffic_type, model::FlowLogTrafficType::kAccept);  // any case, as rule_action
  EXPECT_EQ(eni.ipfix_collector, "collector.lab:2055");
}

TEST(ConfigLoader, RecordsFlowLogFieldLocations) {
  auto parsed = parseDocuments({Document{"f.toml", std::string(kVpc) + R"(
[[flow_logs]]
id = "fl-1"
resource_id = "vpc-1"
traffic_type = "ALL"
log_destination = "file:///tmp/fl"
  log_format = "${version}"
)"}});
  ASSERT_TRUE(parsed.diagnostics.empty());
  const auto& locs = parsed.policy.field_locations;
  ASSERT_EQ(locs.count("flow_logs[0].log_format"), 1u);
  EXPECT_EQ(locs.at("flow_logs[0].log_format").line, 13);
  EXPECT_EQ(locs.at("flow_logs[0].log_format").column, 16);
  ASSERT_EQ(locs.count("flow_logs[0]"), 1u);
  EXPECT_EQ(locs.at("flow_logs[0]").line, 8);
}

// Traffic mirroring: a monitoring VM (eni-ids) gets the web server's HTTPS traffic in and all
// its IPv6 traffic out, an appliance on the underlay a truncated copy; plus a port mirror.
const char* kMirroring = R"(
[[subnets]]
id = "s1"
cidr_block = "10.0.1.0/24"

[[network_interfaces]]
id = "eni-web"
subnet_id = "s1"
mac_address = "02:00:00:00:00:01"
private_ip_addresses = ["10.0.1.10"]

[[network_interfaces]]
id = "eni-ids"
subnet_id = "s1"
mac_address = "02:00:00:00:00:02"
private_ip_addresses = ["10.0.1.20"]

[[traffic_mirror_targets]]
id = "tmt-ids"
network_interface_id = "eni-ids"
description = "IDS VM"

[[traffic_mirror_targets]]
id = "tmt-appliance"
vxlan_remote_ip = "192.0.2.50"

[[traffic_mirror_filters]]
id = "tmf-web"
description = "HTTPS in, IPv6 out"
network_services = ["amazon-dns"]

  [[traffic_mirror_filters.ingress_rules]]
  rule_number = 200
  rule_action = "REJECT"          # any case, as rule_action elsewhere
  protocol = 6
  source_cidr_block = "10.0.0.0/16"
  destination_cidr_block = "0.0.0.0/0"

  [[traffic_mirror_filters.ingress_rules]]
  rule_number = 100
  rule_action = "accept"
  protocol = 6
  source_cidr_block = "0.0.0.0/0"
  destination_cidr_block = "10.0.1.10/32"
  source_port_range = { from_port = 1024, to_port = 65535 }
  destination_port_range = { from_port = 443, to_port = 443 }
  description = "HTTPS"

  [[traffic_mirror_filters.egress_rules]]
  rule_number = 100                 # the same number in the other direction: fine
  rule_action = "accept"
  protocol = -1
  source_cidr_block = "::/0"
  destination_cidr_block = "2600:1f18:abcd:1201::/64"

[[traffic_mirror_filters]]
id = "tmf-none"                     # no rules: mirrors nothing

[[traffic_mirror_sessions]]
id = "tms-web-ids"
network_interface_id = "eni-web"
traffic_mirror_target_id = "tmt-ids"
traffic_mirror_filter_id = "tmf-web"
session_number = 1
description = "to the IDS"

[[traffic_mirror_sessions]]
id = "tms-web-appliance"
network_interface_id = "eni-web"
traffic_mirror_target_id = "tmt-appliance"
traffic_mirror_filter_id = "tmf-web"
session_number = 2
packet_length = 128
virtual_network_id = 4242

[[port_mirrors]]
id = "pm-web"
network_interface_id = "eni-web"
output_port = "span0"

[quotas]
traffic_mirror_sessions_per_interface = 2
traffic_mirror_filter_rules = 5
)";

TEST(ConfigLoader, TrafficMirroringMapsEveryField) {
  const auto p = mustLoad(std::string(kVpc) + kMirroring);
  ASSERT_EQ(p.traffic_mirror_targets.size(), 2u);
  const auto& ids = p.traffic_mirror_targets[0];
  EXPECT_EQ(ids.id, "tmt-ids");
  EXPECT_EQ(ids.network_interface_id, "eni-ids");
  EXPECT_FALSE(ids.vxlan_remote_ip.has_value());
  EXPECT_EQ(ids.description, "IDS VM");
  EXPECT_EQ(ids.location.line, 24);
  const auto& appliance = p.traffic_mirror_targets[1];
  EXPECT_FALSE(appliance.network_interface_id.has_value());
  ASSERT_TRUE(appliance.vxlan_remote_ip.has_value());
  EXPECT_EQ(appliance.vxlan_remote_ip->toString(), "192.0.2.50");

  ASSERT_EQ(p.traffic_mirror_filters.size(), 2u);
  const auto& f = p.traffic_mirror_filters[0];
  EXPECT_EQ(f.id, "tmf-web");
  EXPECT_EQ(f.description, "HTTPS in, IPv6 out");
  EXPECT_EQ(f.network_services, std::vector<std::string>{"amazon-dns"});
  ASSERT_EQ(f.ingress_rules.size(), 2u);  // as written; evaluation order is the translator's
  const auto& reject = f.ingress_rules[0];
  EXPECT_EQ(reject.rule_number, 200);
  EXPECT_FALSE(reject.accept);
  EXPECT_EQ(reject.protocol, model::kProtoTcp);
  EXPECT_EQ(reject.source_cidr_block.toString(), "10.0.0.0/16");
  EXPECT_FALSE(reject.source_port_range.has_value());
  EXPECT_FALSE(reject.destination_port_range.has_value());
  const auto& https = f.ingress_rules[1];
  EXPECT_EQ(https.rule_number, 100);
  EXPECT_TRUE(https.accept);
  EXPECT_EQ(https.destination_cidr_block.toString(), "10.0.1.10/32");
  EXPECT_EQ(https.source_port_range, (model::PortRange{1024, 65535}));
  EXPECT_EQ(https.destination_port_range, (model::PortRange{443, 443}));
  EXPECT_EQ(https.description, "HTTPS");
  EXPECT_EQ(https.location.line, 45);
  ASSERT_EQ(f.egress_rules.size(), 1u);
  EXPECT_EQ(f.egress_rules[0].protocol, model::kProtoAll);
  EXPECT_EQ(f.egress_rules[0].source_cidr_block.toString(), "::/0");
  EXPECT_EQ(f.egress_rules[0].destination_cidr_block.family(), IpFamily::kV6);
  EXPECT_TRUE(p.traffic_mirror_filters[1].ingress_rules.empty());
  EXPECT_TRUE(p.traffic_mirror_filters[1].network_services.empty());

  ASSERT_EQ(p.traffic_mirror_sessions.size(), 2u);
  const auto& s1 = p.traffic_mirror_sessions[0];
  EXPECT_EQ(s1.id, "tms-web-ids");
  EXPECT_EQ(s1.network_interface_id, "eni-web");
  EXPECT_EQ(s1.traffic_mirror_target_id, "tmt-ids");
  EXPECT_EQ(s1.traffic_mirror_filter_id, "tmf-web");
  EXPECT_EQ(s1.session_number, 1);
  EXPECT_FALSE(s1.packet_length.has_value());      // whole packets
  EXPECT_TRUE(s1.virtual_network_id.has_value());  // chosen by resolveDefaults()
  EXPECT_EQ(s1.description, "to the IDS");
  const auto& s2 = p.traffic_mirror_sessions[1];
  EXPECT_EQ(s2.session_number, 2);
  EXPECT_EQ(s2.packet_length, 128);
  EXPECT_EQ(s2.virtual_network_id, 4242u);
  EXPECT_NE(s1.virtual_network_id, s2.virtual_network_id);

  ASSERT_EQ(p.port_mirrors.size(), 1u);
  EXPECT_EQ(p.port_mirrors[0].id, "pm-web");
  EXPECT_EQ(p.port_mirrors[0].network_interface_id, "eni-web");
  EXPECT_EQ(p.port_mirrors[0].output_port, "span0");

  EXPECT_EQ(p.quotas.traffic_mirror_sessions_per_interface, 2);
  EXPECT_EQ(p.quotas.traffic_mirror_filter_rules, 5);
  EXPECT_EQ(config::summarize(p),
            "1 subnet, 2 network interfaces, 1 security group (3 rules), 0 prefix lists, "
            "1 network ACL (2 entries), 2 traffic mirror sessions, 1 port mirror");
}

TEST(ConfigLoader, TrafficMirroringDefaultsAndFieldLocations) {
  const auto p = mustLoad(std::string(kVpc) + kMirroring);
  EXPECT_EQ(p.quotas.rules_per_network_acl, 20);
  // AWS's quotas when [quotas] does not name them.
  EXPECT_EQ(model::Quotas{}.traffic_mirror_sessions_per_interface, 3);
  EXPECT_EQ(model::Quotas{}.traffic_mirror_filter_rules, 10);
  // A valid load keeps no field locations (only diagnostics need them); the parser records them.
  EXPECT_TRUE(p.field_locations.empty());
  const auto parsed = parseDocuments({Document{"t.toml", std::string(kVpc) + kMirroring}});
  ASSERT_TRUE(parsed.diagnostics.empty());
  const auto& locs = parsed.policy.field_locations;
  ASSERT_EQ(locs.count("traffic_mirror_filters[0].ingress_rules[1].destination_port_range"), 1u);
  EXPECT_EQ(locs.at("traffic_mirror_filters[0].ingress_rules[1].destination_port_range").line, 52);
  ASSERT_EQ(locs.count("traffic_mirror_filters[0].ingress_rules[1].destination_port_range.to_port"),
            1u);
  ASSERT_EQ(locs.count("traffic_mirror_sessions[1].packet_length"), 1u);
  EXPECT_EQ(locs.at("traffic_mirror_sessions[1].packet_length").line, 79);
  EXPECT_EQ(locs.at("traffic_mirror_sessions[1].packet_length").column, 17);
  EXPECT_EQ(locs.at("port_mirrors[0].output_port").line, 85);
}

TEST(ConfigLoader, QuotasOverrideDefaults) {
  const auto p = mustLoad(std::string(kVpc) + "[quotas]\nrules_per_network_acl = 40\n");
  EXPECT_EQ(p.quotas.rules_per_network_acl, 40);
  EXPECT_EQ(p.quotas.rules_per_security_group, 60);  // untouched: AWS default
}

TEST(ConfigLoader, RecordsFieldLocations) {
  auto parsed = parseDocuments({Document{"f.toml", std::string(kVpc) + R"(
[[subnets]]
id = "s1"
  cidr_block = "10.0.1.0/24"
)"}});
  ASSERT_TRUE(parsed.diagnostics.empty());
  const auto& locs = parsed.policy.field_locations;
  ASSERT_EQ(locs.count("subnets[0].cidr_block"), 1u);
  EXPECT_EQ(locs.at("subnets[0].cidr_block").line, 10);
  EXPECT_EQ(locs.at("subnets[0].cidr_block").column, 16);
  EXPECT_EQ(locs.at("subnets[0]").line, 8);
  EXPECT_EQ(parsed.policy.subnets[0].location.line, 8);
}

TEST(ConfigLoader, NeverThrowsOnGarbage) {
  for (const std::string& text :
       {std::string("\x00\xff\xfe", 3), std::string("[[[["), std::string("\x80\x80 = 1"),
        std::string("a = \"\\u0000\""), std::string("vpc = 1\nsubnets = 2\nquotas = []"),
        std::string("[vpc]\ncidr_blocks = [1, true, \"x\"]\n[[subnets]]\n[[security_groups]]\n"
                    "ingress = [1, {}]\n[[network_acls]]\nentries = [{port_range = 3}]"),
        std::string("[[traffic_mirror_filters]]\ningress_rules = [1, {source_port_range = 3, "
                    "protocol = []}]\negress_rules = 2\nnetwork_services = [1]\n"
                    "[[traffic_mirror_sessions]]\nvirtual_network_id = -99999999999\n"
                    "packet_length = \"x\"\n[[traffic_mirror_targets]]\nvxlan_remote_ip = 5\n"
                    "network_interface_id = []\n[[port_mirrors]]\noutput_port = 1\n"
                    "traffic_mirror_sessions = 3")}) {
    auto result = loadPolicyFromDocuments({Document{"g.toml", text}});
    EXPECT_FALSE(result.has_value());
    if (!result) {
      EXPECT_FALSE(result.error().diagnostics.empty());
      for (const auto& d : result.error().diagnostics) {
        EXPECT_EQ(d.location.file, "g.toml");
        EXPECT_GE(d.location.line, 1);
        EXPECT_GE(d.location.column, 1) << formatDiagnostic(d);
      }
    }
  }
}

TEST(ConfigLoader, NonAsciiInStringsAndCommentsIsFine) {
  const auto p = mustLoad(std::string(kVpc) + R"(
# Ça va: comments may hold any text
[[security_groups]]
id = "sg-1"
name = 'café'
description = """
Multi-line, with "quotes", ""double quotes"", \\ and ü.
"""
ingress = [{ ip_protocol = -1, cidr_ipv4 = "10.1.0.0/16", description = "naïve \" é" }]
)");
  const auto* g = group(p, "sg-1");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->name, "café");
  EXPECT_NE(g->description.find("\"\"double quotes\"\""), std::string::npos);
  EXPECT_EQ(g->ingress.at(0).description, "naïve \" é");
}

// --- files and directories ------------------------------------------------------------------

TEST(ConfigFiles, LoadsTheLabConfig) {
  auto result = loadPolicy(test::sourceDir() + "/configs/lab.toml");
  ASSERT_TRUE(result.has_value()) << result.error().toError().message;
  const auto& p = *result;
  EXPECT_EQ(p.subnets.size(), 2u);
  EXPECT_EQ(p.network_interfaces.size(), 3u);
  ASSERT_NE(group(p, "sg-web"), nullptr);
  ASSERT_NE(group(p, std::string(model::kDefaultSecurityGroupId)), nullptr);  // made explicit
  EXPECT_EQ(p.subnets[0].network_acl_id, model::kDefaultNetworkAclId);
  EXPECT_EQ(p.subnets[1].network_acl_id, "acl-private");
}

TEST(ConfigFiles, NonexistentPathIsAnIoError) {
  auto result = loadPolicy("/nonexistent/vpcguard.toml");
  ASSERT_FALSE(result.has_value());
  ASSERT_TRUE(result.error().io.has_value());
  EXPECT_NE(result.error().io->message.find("no such file or directory"), std::string::npos);
}

TEST(ConfigFiles, EmptyDirectoryIsAnIoError) {
  TempDir dir;
  dir.write("README.md", "not a config");
  auto result = loadPolicy(dir.path());
  ASSERT_FALSE(result.has_value());
  ASSERT_TRUE(result.error().io.has_value());
  EXPECT_NE(result.error().io->message.find("no *.toml files"), std::string::npos);
}

TEST(ConfigFiles, UnreadableFileIsAnIoError) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root reads any file";
  }
  TempDir dir;
  const auto f = dir.write("a.toml", kVpc);
  fs::permissions(f, fs::perms::none);
  auto result = loadPolicy(f);
  ASSERT_FALSE(result.has_value());
  ASSERT_TRUE(result.error().io.has_value());
  EXPECT_NE(result.error().io->message.find("cannot read"), std::string::npos);
}

TEST(ConfigFiles, DirectoryMergesArraysInNameOrder) {
  TempDir dir;
  dir.write("00-vpc.toml", std::string(kVpc) + "[quotas]\nrules_per_network_acl = 30\n");
  dir.write("10-subnets.toml",
            "[[subnets]]\nid = \"s1\"\ncidr_block = \"10.0.1.0/24\"\n"
            "[[subnets]]\nid = \"s2\"\ncidr_block = \"10.0.2.0/24\"\n");
  dir.write("20-more.toml",
            "[[subnets]]\nid = \"s3\"\ncidr_block = \"10.0.3.0/24\"\n"
            "[[security_groups]]\nid = \"sg-1\"\n");
  dir.write("notes.txt", "ignored");
  auto result = loadPolicy(dir.path());
  ASSERT_TRUE(result.has_value()) << result.error().toError().message;
  ASSERT_EQ(result->subnets.size(), 3u);
  EXPECT_EQ(result->subnets[0].id, "s1");
  EXPECT_EQ(result->subnets[2].id, "s3");
  EXPECT_EQ(result->quotas.rules_per_network_acl, 30);
  // Each object remembers its own file.
  EXPECT_EQ(fs::path(result->subnets[2].location.file).filename(), "20-more.toml");
  EXPECT_EQ(result->subnets[2].location.line, 1);
}

// Mirroring objects may be spread over files and reference each other across them, as the
// other tables do; their errors name the right file.
TEST(ConfigFiles, TrafficMirroringMergesAcrossFiles) {
  TempDir dir;
  dir.write("00-vpc.toml", std::string(kVpc) +
                               "[[subnets]]\nid = \"s1\"\ncidr_block = \"10.0.1.0/24\"\n"
                               "[[network_interfaces]]\nid = \"eni-1\"\nsubnet_id = \"s1\"\n"
                               "mac_address = \"02:00:00:00:00:01\"\n"
                               "private_ip_addresses = [\"10.0.1.10\"]\n");
  dir.write("10-targets.toml",
            "[[traffic_mirror_targets]]\nid = \"tmt-a\"\nvxlan_remote_ip = \"192.0.2.1\"\n"
            "[[traffic_mirror_filters]]\nid = \"tmf-a\"\n"
            "[[traffic_mirror_filters.egress_rules]]\nrule_number = 1\nrule_action = \"accept\"\n"
            "source_cidr_block = \"0.0.0.0/0\"\ndestination_cidr_block = \"0.0.0.0/0\"\n");
  dir.write("20-sessions.toml",
            "[[traffic_mirror_filters]]\nid = \"tmf-b\"\n"
            "[[traffic_mirror_sessions]]\nid = \"tms-a\"\nnetwork_interface_id = \"eni-1\"\n"
            "traffic_mirror_target_id = \"tmt-a\"\ntraffic_mirror_filter_id = \"tmf-a\"\n"
            "session_number = 1\n"
            "[[port_mirrors]]\nid = \"pm-a\"\nnetwork_interface_id = \"eni-1\"\n"
            "output_port = \"span0\"\n");
  auto result = loadPolicy(dir.path());
  ASSERT_TRUE(result.has_value()) << result.error().toError().message;
  ASSERT_EQ(result->traffic_mirror_filters.size(), 2u);
  EXPECT_EQ(result->traffic_mirror_filters[0].egress_rules.size(), 1u);
  EXPECT_EQ(result->traffic_mirror_filters[1].id, "tmf-b");
  ASSERT_EQ(result->traffic_mirror_sessions.size(), 1u);
  EXPECT_EQ(fs::path(result->traffic_mirror_sessions[0].location.file).filename(),
            "20-sessions.toml");
  EXPECT_EQ(result->port_mirrors.size(), 1u);

  // A session in a third file naming a filter that no file defines.
  dir.write("30-more.toml",
            "\n[[traffic_mirror_sessions]]\nid = \"tms-b\"\nnetwork_interface_id = \"eni-1\"\n"
            "traffic_mirror_target_id = \"tmt-a\"\ntraffic_mirror_filter_id = \"tmf-x\"\n"
            "session_number = 2\n");
  auto broken = loadPolicy(dir.path());
  ASSERT_FALSE(broken.has_value());
  const auto& diags = broken.error().diagnostics;
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].path, "traffic_mirror_sessions[1].traffic_mirror_filter_id");
  EXPECT_EQ(fs::path(diags[0].location.file).filename(), "30-more.toml");
  EXPECT_EQ(diags[0].location.line, 6);
  EXPECT_NE(diags[0].message.find("traffic mirror filter 'tmf-x' does not exist"),
            std::string::npos);
}

TEST(ConfigFiles, MergedErrorsPointIntoTheRightFile) {
  TempDir dir;
  dir.write("a.toml",
            std::string(kVpc) + "[[subnets]]\nid = \"s1\"\ncidr_block = \"10.0.1.0/24\"\n");
  dir.write("b.toml", "\n[[subnets]]\nid = \"s1\"\ncidr_block = \"10.0.2.0/24\"\n");
  auto result = loadPolicy(dir.path());
  ASSERT_FALSE(result.has_value());
  const auto& diags = result.error().diagnostics;
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].path, "subnets[1].id");  // index in the merged array
  EXPECT_EQ(fs::path(diags[0].location.file).filename(), "b.toml");
  EXPECT_EQ(diags[0].location.line, 3);
  EXPECT_NE(diags[0].message.find("duplicate subnet id 's1'"), std::string::npos);
}

TEST(ConfigFiles, VpcInTwoFilesIsAnError) {
  TempDir dir;
  dir.write("a.toml", kVpc);
  dir.write("b.toml", "# second\n[vpc]\nid = \"vpc-2\"\ncidr_blocks = [\"10.1.0.0/16\"]\n");
  auto result = loadPolicy(dir.path());
  ASSERT_FALSE(result.has_value());
  const auto& diags = result.error().diagnostics;
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].path, "vpc");
  EXPECT_EQ(fs::path(diags[0].location.file).filename(), "b.toml");
  EXPECT_EQ(diags[0].location.line, 2);
  EXPECT_NE(diags[0].message.find("already defined at"), std::string::npos);
}

TEST(ConfigFiles, QuotasInTwoFilesIsAnError) {
  TempDir dir;
  dir.write("a.toml", std::string(kVpc) + "[quotas]\nrules_per_network_acl = 30\n");
  dir.write("b.toml", "[quotas]\nrules_per_network_acl = 40\n");
  auto result = loadPolicy(dir.path());
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().diagnostics.size(), 1u);
  EXPECT_EQ(result.error().diagnostics[0].path, "quotas");
}

TEST(ConfigFiles, SyntaxErrorInOneFileStillReportsOthers) {
  TempDir dir;
  dir.write("a.toml", std::string(kVpc) + "bogus = 1\n");
  dir.write("b.toml", "[[subnets]\n");
  auto result = loadPolicy(dir.path());
  ASSERT_FALSE(result.has_value());
  const auto& diags = result.error().diagnostics;
  ASSERT_EQ(diags.size(), 2u);
  EXPECT_EQ(diags[0].path, "vpc.bogus");
  EXPECT_EQ(fs::path(diags[1].location.file).filename(), "b.toml");
  EXPECT_EQ(diags[1].location.line, 1);
}

// What validation (also of models that did not come from TOML: the API, import-aws) accepts as a
// MAC: six pairs of hex digits and colons, nothing sscanf would also have taken.
TEST(CanonicalMac, SixPairsOfHexDigitsLowerCased) {
  auto mac = canonicalMac("02:0A:bC:00:ff:10");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(*mac, "02:0a:bc:00:ff:10");
  for (const char* bad : {"", "02:00:00:00:00", "02:00:00:00:00:1", "02:00:00:00:00:100",
                          " 2:00:00:00:00:01", "+2:00:00:00:00:01", "02-00-00-00-00-01",
                          "0x:00:00:00:00:01", "02:00:00:00:00:0g", "02:00:00:00:00:01 "}) {
    auto r = canonicalMac(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message.find("is not a MAC address"), std::string::npos);
  }
}

}  // namespace
}  // namespace vpcguard::config
