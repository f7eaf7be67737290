// `vpcguardctl import-aws`: the conversion on the AWS CLI fixtures in tests/data/aws/ (a
// two-subnet VPC with web, db and bastion), each unrepresentable case, and the CLI end to end.
// The generated TOML is checked by parsing it with toml++, never by comparing text, so the
// layout may change without breaking these tests.
#include "daemon/import_aws.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include "daemon/config_loader.h"
#include "tests/harness/paths.h"
#include "translator/flow_log_format.h"

namespace vpcguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string flowlogDefault() { return std::string(flowlog::kDefaultFormat); }

std::string fixturePath(const std::string& name) {
  return test::sourceDir() + "/tests/data/aws/" + name;
}

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

AwsDocument fixture(const std::string& name) {
  auto doc = parseAwsDocument(name, readText(fixturePath(name)));
  EXPECT_TRUE(doc.has_value()) << (doc ? "" : doc.error().message);
  return doc ? *doc : AwsDocument{name, json::object()};
}

const std::vector<std::string> kRealisticFiles = {
    "describe-vpcs.json",
    "describe-subnets.json",
    "describe-security-groups.json",
    "describe-network-acls.json",
    "describe-network-interfaces.json",
    "describe-managed-prefix-lists.json",
    "prefix-list-entries-branch-offices.json",
};

std::vector<AwsDocument> realisticDocs() {
  std::vector<AwsDocument> docs;
  for (const auto& name : kRealisticFiles) docs.push_back(fixture(name));
  return docs;
}

toml::table parseToml(const std::string& text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& e) {
    ADD_FAILURE() << "generated TOML does not parse: " << e.description() << " at line "
                  << e.source().begin.line << "\n"
                  << text;
    return {};
  }
}

ImportAwsOutput importOk(const std::vector<AwsDocument>& docs, ImportAwsOptions options = {}) {
  auto out = importAws(docs, options);
  EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message);
  return out ? *out : ImportAwsOutput{};
}

// The table of array `array` whose `id` is `id`, or nullptr.
const toml::table* findById(const toml::table& root, std::string_view array, std::string_view id) {
  const toml::array* items = root[array].as_array();
  if (items == nullptr) return nullptr;
  for (const toml::node& node : *items) {
    const toml::table* t = node.as_table();
    if (t != nullptr && (*t)["id"].value<std::string>() == id) return t;
  }
  return nullptr;
}

// Views from const and non-const tables have different types; both work here.
template <typename View>
std::vector<std::string> strings(const View& view) {
  std::vector<std::string> out;
  if (const toml::array* a = view.as_array()) {
    for (const toml::node& n : *a) out.push_back(n.value<std::string>().value_or("<not a string>"));
  }
  return out;
}

template <typename View>
size_t arraySize(const View& view) {
  const toml::array* a = view.as_array();
  return a == nullptr ? 0 : a->size();
}

bool hasWarning(const std::vector<ImportWarning>& warnings, const std::string& id,
                const std::string& fragment) {
  return std::any_of(warnings.begin(), warnings.end(), [&](const ImportWarning& w) {
    return w.object_id == id && w.message.find(fragment) != std::string::npos;
  });
}

std::string dumpWarnings(const std::vector<ImportWarning>& warnings) {
  std::string out;
  for (const auto& w : warnings) out += formatWarning(w) + "\n";
  return out;
}

// A realistic import done once; the TOML checks below read it.
class RealisticImport : public ::testing::Test {
 protected:
  void SetUp() override {
    output_ = importOk(realisticDocs());
    root_ = parseToml(output_.toml);
  }
  ImportAwsOutput output_;
  toml::table root_;
};

constexpr const char* kVpc = "vpc-0a1b2c3d4e5f60718";
constexpr const char* kWebSubnet = "subnet-0a11e0b5c8d9e0f12";
constexpr const char* kDbSubnet = "subnet-0b22f1c6d9e0f1a23";
constexpr const char* kDefaultSg = "sg-0d5f1e2a3b4c5d6e7";
constexpr const char* kWebSg = "sg-0e1c2d3f4a5b6c7d8";
constexpr const char* kBastionSg = "sg-0b4a5c6d7e8f90a1b";
constexpr const char* kDbSg = "sg-0c7d8e9f0a1b2c3d4";
constexpr const char* kDefaultNacl = "acl-0a2b3c4d5e6f70819";
constexpr const char* kDbNacl = "acl-0f9e8d7c6b5a40312";
constexpr const char* kWebEni = "eni-0a9b8c7d6e5f4a3b2";
constexpr const char* kBastionEni = "eni-0b1c2d3e4f5a6b7c8";
constexpr const char* kDbEni = "eni-0d3c2b1a098f7e6d5";
constexpr const char* kNatEni = "eni-0f0e0d0c0b0a09080";
constexpr const char* kOfficeList = "pl-0f3e2d1c0b9a87654";
constexpr const char* kS3List = "pl-63a5400a";

TEST_F(RealisticImport, VpcFromDescribeVpcs) {
  EXPECT_EQ(root_["vpc"]["id"].value<std::string>(), kVpc);
  EXPECT_EQ(root_["vpc"]["account_id"].value<std::string>(), "123456789012");
  EXPECT_EQ(root_["vpc"]["region"].value<std::string>(), "us-east-1");  // from us-east-1a/b
  EXPECT_EQ(strings(root_["vpc"]["cidr_blocks"]), std::vector<std::string>{"10.0.0.0/16"});
  EXPECT_EQ(strings(root_["vpc"]["ipv6_cidr_blocks"]),
            std::vector<std::string>{"2600:1f18:4a3:6e00::/56"});
  EXPECT_FALSE(root_["vpc"]["strict_revocation"]);
}

TEST_F(RealisticImport, HeaderNamesEverySourceFile) {
  for (const auto& name : kRealisticFiles) {
    EXPECT_NE(output_.toml.find("#   " + name + "\n"), std::string::npos) << name;
  }
  EXPECT_EQ(output_.toml.rfind("# vpcguard configuration", 0), 0u);
}

TEST_F(RealisticImport, SubnetsNameOnlyTheirCustomNacl) {
  ASSERT_EQ(arraySize(root_["subnets"]), 2u);
  const toml::table* web = findById(root_, "subnets", kWebSubnet);
  const toml::table* db = findById(root_, "subnets", kDbSubnet);
  ASSERT_NE(web, nullptr);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ((*web)["cidr_block"].value<std::string>(), "10.0.1.0/24");
  EXPECT_EQ((*web)["ipv6_cidr_block"].value<std::string>(), "2600:1f18:4a3:6e01::/64");
  // The web subnet is associated with the default NACL: the key is left out on purpose.
  EXPECT_FALSE((*web)["network_acl_id"]);
  EXPECT_EQ((*db)["cidr_block"].value<std::string>(), "10.0.2.0/24");
  EXPECT_FALSE((*db)["ipv6_cidr_block"]);
  EXPECT_EQ((*db)["network_acl_id"].value<std::string>(), kDbNacl);
}

TEST_F(RealisticImport, InterfacesKeepIdsMacsAndAddresses) {
  EXPECT_EQ(arraySize(root_["network_interfaces"]), 3u);  // the NAT gateway's is not a VM
  EXPECT_EQ(findById(root_, "network_interfaces", kNatEni), nullptr);

  const toml::table* web = findById(root_, "network_interfaces", kWebEni);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ((*web)["subnet_id"].value<std::string>(), kWebSubnet);
  EXPECT_EQ((*web)["mac_address"].value<std::string>(), "12:7b:3c:4d:5e:6f");  // lower-cased
  EXPECT_EQ(strings((*web)["private_ip_addresses"]),
            (std::vector<std::string>{"10.0.1.10", "10.0.1.11"}));
  EXPECT_EQ(strings((*web)["ipv6_addresses"]),
            std::vector<std::string>{"2600:1f18:4a3:6e01:8f2a:1b3c:4d5e:6f70"});
  EXPECT_EQ(strings((*web)["security_group_ids"]),
            (std::vector<std::string>{kWebSg, kDefaultSg}));
  EXPECT_EQ((*web)["source_dest_check"].value<bool>(), true);
  EXPECT_FALSE((*web)["connection_tracking"]);

  const toml::table* db = findById(root_, "network_interfaces", kDbEni);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ((*db)["connection_tracking"]["tcp_established_timeout"].value<int64_t>(), 3600);
  EXPECT_EQ((*db)["connection_tracking"]["udp_timeout"].value<int64_t>(), 60);
  EXPECT_EQ((*db)["connection_tracking"]["udp_stream_timeout"].value<int64_t>(), 120);

  const toml::table* bastion = findById(root_, "network_interfaces", kBastionEni);
  ASSERT_NE(bastion, nullptr);
  EXPECT_EQ(strings((*bastion)["security_group_ids"]), std::vector<std::string>{kBastionSg});
}

TEST_F(RealisticImport, MultiPeerPermissionsBecomeOneRulePerPeer) {
  const toml::table* web = findById(root_, "security_groups", kWebSg);
  ASSERT_NE(web, nullptr);
  // 443 from 0.0.0.0/0 and ::/0 (one permission), 22 from the bastion group, icmp.
  const toml::array* ingress = (*web)["ingress"].as_array();
  ASSERT_NE(ingress, nullptr);
  ASSERT_EQ(ingress->size(), 4u);
  const toml::table& https4 = *(*ingress)[0].as_table();
  const toml::table& https6 = *(*ingress)[1].as_table();
  EXPECT_EQ(https4["ip_protocol"].value<std::string>(), "tcp");
  EXPECT_EQ(https4["from_port"].value<int64_t>(), 443);
  EXPECT_EQ(https4["to_port"].value<int64_t>(), 443);
  EXPECT_EQ(https4["cidr_ipv4"].value<std::string>(), "0.0.0.0/0");
  EXPECT_EQ(https4["description"].value<std::string>(), "HTTPS from the internet");
  EXPECT_EQ(https6["cidr_ipv6"].value<std::string>(), "::/0");
  EXPECT_FALSE(https6["cidr_ipv4"]);
  const toml::table& ssh = *(*ingress)[2].as_table();
  EXPECT_EQ(ssh["referenced_group_id"].value<std::string>(), kBastionSg);
  const toml::table& ping = *(*ingress)[3].as_table();
  EXPECT_EQ(ping["ip_protocol"].value<std::string>(), "icmp");
  EXPECT_EQ(ping["from_port"].value<int64_t>(), -1);
  EXPECT_EQ(ping["to_port"].value<int64_t>(), -1);

  // Two CIDRs and a prefix list in one permission: three rules.
  const toml::table* bastion = findById(root_, "security_groups", kBastionSg);
  ASSERT_NE(bastion, nullptr);
  const toml::array* b_in = (*bastion)["ingress"].as_array();
  ASSERT_NE(b_in, nullptr);
  ASSERT_EQ(b_in->size(), 3u);
  EXPECT_EQ((*b_in)[0].as_table()->at_path("cidr_ipv4").value<std::string>(), "203.0.113.0/24");
  EXPECT_EQ((*b_in)[1].as_table()->at_path("cidr_ipv4").value<std::string>(), "198.51.100.7/32");
  EXPECT_EQ((*b_in)[2].as_table()->at_path("prefix_list_id").value<std::string>(), kOfficeList);

  // Two groups in one permission: two rules.
  const toml::table* db = findById(root_, "security_groups", kDbSg);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(arraySize((*db)["ingress"]), 2u);
}

TEST_F(RealisticImport, EveryRuleHasExactlyOnePeer) {
  const toml::array* groups = root_["security_groups"].as_array();
  ASSERT_NE(groups, nullptr);
  for (const toml::node& g : *groups) {
    for (const char* dir : {"ingress", "egress"}) {
      const toml::array* rules = g.as_table()->at_path(dir).as_array();
      ASSERT_NE(rules, nullptr) << "ingress/egress must always be written";
      for (const toml::node& r : *rules) {
        int peers = 0;
        for (const char* key :
             {"cidr_ipv4", "cidr_ipv6", "referenced_group_id", "prefix_list_id"}) {
          if (r.as_table()->contains(key)) ++peers;
        }
        EXPECT_EQ(peers, 1);
        const bool all = r.as_table()->at_path("ip_protocol").value<std::string>() == "all";
        if (all) {
          EXPECT_FALSE(r.as_table()->contains("from_port"));
        }
      }
    }
  }
}

TEST_F(RealisticImport, EgressIsAlwaysExplicit) {
  // The loader reads a missing egress as AWS's allow-all default: an empty list must stay empty.
  const toml::table* db = findById(root_, "security_groups", kDbSg);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE((*db)["egress"].is_array());
  EXPECT_EQ(arraySize((*db)["egress"]), 0u);

  const toml::table* def = findById(root_, "security_groups", kDefaultSg);
  ASSERT_NE(def, nullptr);
  // The loader knows the default group by its name; no flag is written.
  EXPECT_FALSE((*def)["is_default"]);
  EXPECT_EQ((*def)["name"].value<std::string>(), "default");
  const toml::array* egress = (*def)["egress"].as_array();
  ASSERT_NE(egress, nullptr);
  ASSERT_EQ(egress->size(), 2u);
  EXPECT_EQ((*egress)[0].as_table()->at_path("ip_protocol").value<std::string>(), "all");
  EXPECT_EQ((*egress)[0].as_table()->at_path("cidr_ipv4").value<std::string>(), "0.0.0.0/0");
  EXPECT_EQ((*egress)[1].as_table()->at_path("cidr_ipv6").value<std::string>(), "::/0");
  const toml::array* ingress = (*def)["ingress"].as_array();
  ASSERT_NE(ingress, nullptr);
  ASSERT_EQ(ingress->size(), 1u);
  EXPECT_EQ((*ingress)[0].as_table()->at_path("referenced_group_id").value<std::string>(),
            kDefaultSg);

  const toml::table* web = findById(root_, "security_groups", kWebSg);
  ASSERT_NE(web, nullptr);
  EXPECT_FALSE((*web)["is_default"]);
}

TEST_F(RealisticImport, ImplicitStarEntriesAreNotWritten) {
  ASSERT_EQ(arraySize(root_["network_acls"]), 2u);
  const toml::table* def = findById(root_, "network_acls", kDefaultNacl);
  ASSERT_NE(def, nullptr);
  EXPECT_EQ((*def)["is_default"].value<bool>(), true);
  const toml::array* entries = (*def)["entries"].as_array();
  ASSERT_NE(entries, nullptr);
  EXPECT_EQ(entries->size(), 4u);  // 100 and 101, in and out; not 32767/32768
  for (const auto* acl : {def, findById(root_, "network_acls", kDbNacl)}) {
    ASSERT_NE(acl, nullptr);
    for (const toml::node& e : *(*acl)["entries"].as_array()) {
      const auto number = e.as_table()->at_path("rule_number").value<int64_t>();
      ASSERT_TRUE(number.has_value());
      EXPECT_GE(*number, 1);
      EXPECT_LE(*number, 32766);
    }
  }
}

TEST_F(RealisticImport, CustomNaclEntriesKeepPortsIcmpAndOrder) {
  const toml::table* acl = findById(root_, "network_acls", kDbNacl);
  ASSERT_NE(acl, nullptr);
  EXPECT_FALSE((*acl)["is_default"]);
  const toml::array* entries = (*acl)["entries"].as_array();
  ASSERT_NE(entries, nullptr);
  ASSERT_EQ(entries->size(), 9u);
  // Inbound first, each direction by rule number.
  std::vector<std::pair<bool, int64_t>> order;
  for (const toml::node& e : *entries) {
    order.emplace_back(e.as_table()->at_path("egress").value<bool>().value_or(true),
                       e.as_table()->at_path("rule_number").value<int64_t>().value_or(0));
  }
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));

  const toml::table& pg = *(*entries)[0].as_table();
  EXPECT_EQ(pg["rule_number"].value<int64_t>(), 100);
  EXPECT_EQ(pg["egress"].value<bool>(), false);
  EXPECT_EQ(pg["protocol"].value<std::string>(), "tcp");
  EXPECT_EQ(pg["rule_action"].value<std::string>(), "allow");
  EXPECT_EQ(pg["cidr_block"].value<std::string>(), "10.0.1.0/24");
  EXPECT_EQ(pg["port_range"]["from"].value<int64_t>(), 5432);
  EXPECT_EQ(pg["port_range"]["to"].value<int64_t>(), 5432);

  const toml::table& ephemeral = *(*entries)[2].as_table();
  EXPECT_EQ(ephemeral["port_range"]["from"].value<int64_t>(), 1024);
  EXPECT_EQ(ephemeral["port_range"]["to"].value<int64_t>(), 65535);

  const toml::table& mtu = *(*entries)[3].as_table();
  EXPECT_EQ(mtu["protocol"].value<std::string>(), "icmp");
  EXPECT_EQ(mtu["icmp_type_code"]["type"].value<int64_t>(), 3);
  EXPECT_EQ(mtu["icmp_type_code"]["code"].value<int64_t>(), 4);
  EXPECT_FALSE(mtu["port_range"]);

  const toml::table& deny = *(*entries)[5].as_table();
  EXPECT_EQ(deny["rule_number"].value<int64_t>(), 200);
  EXPECT_EQ(deny["protocol"].value<std::string>(), "all");
  EXPECT_EQ(deny["rule_action"].value<std::string>(), "deny");
  EXPECT_FALSE(deny["port_range"]);

  const toml::table& ntp = *(*entries)[8].as_table();
  EXPECT_EQ(ntp["egress"].value<bool>(), true);
  EXPECT_EQ(ntp["protocol"].value<std::string>(), "udp");
}

TEST_F(RealisticImport, PrefixListsWithKnownAndUnknownEntries) {
  const toml::table* office = findById(root_, "prefix_lists", kOfficeList);
  ASSERT_NE(office, nullptr);
  EXPECT_EQ((*office)["name"].value<std::string>(), "branch-offices");
  EXPECT_EQ((*office)["max_entries"].value<int64_t>(), 5);
  EXPECT_EQ(strings((*office)["entries"]),
            (std::vector<std::string>{"192.0.2.0/27", "192.0.2.64/27"}));

  const toml::table* s3 = findById(root_, "prefix_lists", kS3List);
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ((*s3)["name"].value<std::string>(), "com.amazonaws.us-east-1.s3");
  ASSERT_TRUE((*s3)["entries"].is_array());
  EXPECT_EQ(arraySize((*s3)["entries"]), 0u);
  EXPECT_TRUE(hasWarning(output_.warnings, kS3List, "entries unknown"));
}

TEST_F(RealisticImport, WarningsNameExactlyTheUnrepresentableParts) {
  std::multiset<std::string> ids;
  for (const auto& w : output_.warnings) ids.insert(w.object_id);
  EXPECT_EQ(ids, (std::multiset<std::string>{kS3List, kS3List, kBastionEni, kNatEni}))
      << dumpWarnings(output_.warnings);
  EXPECT_TRUE(hasWarning(output_.warnings, kNatEni, "requester-managed"));
  EXPECT_TRUE(hasWarning(output_.warnings, kBastionEni, "public IPv4"));
  for (const auto& w : output_.warnings) {
    EXPECT_FALSE(w.source.empty()) << formatWarning(w);
    // The header repeats every warning, so the file documents what it leaves out.
    EXPECT_NE(output_.toml.find(formatWarning(w)), std::string::npos);
  }
}

// describe-flow-logs beside the realistic VPC: the VPC's flow log to S3 (custom format, Parquet
// options), the web subnet's to CloudWatch Logs, the db interface's to Firehose (60 s), and one
// on the NAT gateway's interface, which is not imported.
constexpr const char* kVpcFlowLog = "fl-0a1b2c3d4e5f6a7b8";
constexpr const char* kSubnetFlowLog = "fl-0b2c3d4e5f6a7b8c9";
constexpr const char* kEniFlowLog = "fl-0c3d4e5f6a7b8c9d0";
constexpr const char* kNatFlowLog = "fl-0d4e5f6a7b8c9d0e1";
constexpr const char* kFlowLogDir = "file:///var/log/vpcguard/flowlogs";

std::vector<AwsDocument> withFlowLogs() {
  auto docs = realisticDocs();
  docs.push_back(fixture("describe-flow-logs.json"));
  return docs;
}

TEST(ImportAwsFlowLogs, KeepWhatTheyRecordAndWriteToALocalDirectory) {
  const auto root = parseToml(importOk(withFlowLogs()).toml);
  EXPECT_EQ(arraySize(root["flow_logs"]), 3u);
  EXPECT_EQ(findById(root, "flow_logs", kNatFlowLog), nullptr);  // its interface is not a VM

  const toml::table* vpc = findById(root, "flow_logs", kVpcFlowLog);
  ASSERT_NE(vpc, nullptr);
  EXPECT_EQ((*vpc)["resource_id"].value<std::string>(), kVpc);
  EXPECT_EQ((*vpc)["traffic_type"].value<std::string>(), "ALL");
  EXPECT_EQ((*vpc)["log_destination"].value<std::string>(), kFlowLogDir);
  EXPECT_EQ((*vpc)["log_format"].value<std::string>(),
            "${version} ${vpc-id} ${subnet-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} "
            "${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${tcp-flags} "
            "${flow-direction} ${log-status}");
  EXPECT_EQ((*vpc)["max_aggregation_interval"].value<int64_t>(), 600);

  // AWS prints the default format when none was chosen: left out, which means the same.
  const toml::table* subnet = findById(root, "flow_logs", kSubnetFlowLog);
  ASSERT_NE(subnet, nullptr);
  EXPECT_EQ((*subnet)["resource_id"].value<std::string>(), kWebSubnet);
  EXPECT_EQ((*subnet)["traffic_type"].value<std::string>(), "REJECT");
  EXPECT_EQ((*subnet)["log_destination"].value<std::string>(), kFlowLogDir);
  EXPECT_FALSE((*subnet)["log_format"]);

  const toml::table* eni = findById(root, "flow_logs", kEniFlowLog);
  ASSERT_NE(eni, nullptr);
  EXPECT_EQ((*eni)["resource_id"].value<std::string>(), kDbEni);
  EXPECT_EQ((*eni)["traffic_type"].value<std::string>(), "ACCEPT");
  EXPECT_EQ((*eni)["max_aggregation_interval"].value<int64_t>(), 60);
  EXPECT_FALSE((*eni)["log_format"]);
  EXPECT_FALSE((*eni)["ipfix_collector"]);
}

TEST(ImportAwsFlowLogs, EveryAwsDestinationIsReportedByFlowLogId) {
  const auto base = importOk(realisticDocs());
  const auto out = importOk(withFlowLogs());
  std::multiset<std::string> flow_log_ids;
  for (const auto& w : out.warnings) {
    if (w.object_id.rfind("fl-", 0) == 0) {
      flow_log_ids.insert(w.object_id);
      EXPECT_EQ(w.source, "describe-flow-logs.json") << formatWarning(w);
    }
  }
  // One warning per flow log and nothing else new.
  EXPECT_EQ(flow_log_ids, (std::multiset<std::string>{kVpcFlowLog, kSubnetFlowLog, kEniFlowLog,
                                                       kNatFlowLog}))
      << dumpWarnings(out.warnings);
  EXPECT_EQ(out.warnings.size(), base.warnings.size() + 4) << dumpWarnings(out.warnings);
  const std::string instead =
      "cannot be reproduced here: log_destination = \"" + std::string(kFlowLogDir) + "\" instead";
  EXPECT_TRUE(hasWarning(out.warnings, kVpcFlowLog,
                         "delivers to s3 arn:aws:s3:::shop-flow-logs/vpc (with "
                         "DestinationOptions), which " + instead));
  EXPECT_TRUE(hasWarning(out.warnings, kSubnetFlowLog,
                         "delivers to cloud-watch-logs arn:aws:logs:us-east-1:123456789012:"
                         "log-group:/shop/flow-logs/web, which " + instead));
  EXPECT_TRUE(hasWarning(out.warnings, kEniFlowLog,
                         "delivers to kinesis-data-firehose arn:aws:firehose:us-east-1:"
                         "123456789012:deliverystream/shop-db-flows, which " + instead));
  EXPECT_TRUE(hasWarning(out.warnings, kNatFlowLog, "eni-0f0e0d0c0b0a09080"));
  EXPECT_TRUE(hasWarning(out.warnings, kNatFlowLog, "not imported"));
  // The config says where AWS delivered, beside each flow log.
  EXPECT_NE(out.toml.find("# AWS delivered to s3 arn:aws:s3:::shop-flow-logs/vpc\n[[flow_logs]]\n"
                          "id = \"" + std::string(kVpcFlowLog) + "\""),
            std::string::npos)
      << out.toml;
}

TEST(ImportAwsFlowLogs, WhatCannotBeImportedIsReported) {
  auto flowLog = [](const char* id, const char* resource) {
    return json{{"FlowLogId", id},       {"ResourceId", resource},
                {"TrafficType", "ALL"},  {"LogDestinationType", "s3"},
                {"LogDestination", "arn:aws:s3:::b"}, {"LogFormat", flowlogDefault()},
                {"MaxAggregationInterval", 600}};
  };
  json doc = {{"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "1"}, {"CidrBlock", "10.0.0.0/16"}}}},
              {"FlowLogs", json::array()}};
  auto& logs = doc["FlowLogs"];
  logs.push_back(flowLog("fl-tgw", "tgw-0123456789abcdef0"));  // a transit gateway's
  logs.push_back(flowLog("fl-other", "vpc-2"));
  logs.push_back(flowLog("fl-no-traffic", "vpc-1"));
  logs.back().erase("TrafficType");
  logs.push_back(flowLog("fl-new-field", "vpc-1"));
  logs.back()["LogFormat"] = "${version} ${srcaddr} ${ecs-future-field}";
  logs.push_back(flowLog("fl-300", "vpc-1"));
  logs.back()["MaxAggregationInterval"] = 300;
  logs.push_back(flowLog("fl-old", "vpc-1"));  // before LogDestinationType existed
  logs.back().erase("LogDestinationType");
  logs.back().erase("LogDestination");
  logs.back()["LogGroupName"] = "/old/group";
  logs.back()["FancyNewField"] = 1;
  logs.push_back(flowLog("flowlog-1", "vpc-1"));

  const auto out = importOk({AwsDocument{"inline", doc}});
  EXPECT_TRUE(hasWarning(out.warnings, "fl-tgw", "tgw-0123456789abcdef0"));
  EXPECT_TRUE(hasWarning(out.warnings, "fl-other", "'vpc-2', which is not vpc-1"));
  EXPECT_TRUE(hasWarning(out.warnings, "fl-no-traffic", "TrafficType '' is not ACCEPT"));
  EXPECT_TRUE(hasWarning(out.warnings, "fl-new-field",
                         "LogFormat not understood (unknown field 'ecs-future-field')"));
  EXPECT_TRUE(hasWarning(out.warnings, "fl-300", "MaxAggregationInterval 300 is not 60 or 600"));
  EXPECT_TRUE(hasWarning(out.warnings, "fl-old", "delivers to cloud-watch-logs /old/group"));
  EXPECT_TRUE(hasWarning(out.warnings, "fl-old", "unknown key 'FancyNewField'"));
  EXPECT_TRUE(hasWarning(out.warnings, "flowlog-1", "does not start with fl-"));

  const auto root = parseToml(out.toml);
  std::set<std::string> written;
  for (const toml::node& n : *root["flow_logs"].as_array()) {
    written.insert(n.as_table()->at_path("id").value<std::string>().value_or(""));
  }
  EXPECT_EQ(written, (std::set<std::string>{"fl-new-field", "fl-300", "fl-old"}));
  EXPECT_FALSE(findById(root, "flow_logs", "fl-new-field")->contains("log_format"));
  EXPECT_FALSE(findById(root, "flow_logs", "fl-300")->contains("max_aggregation_interval"));
}

// Reverses every top-level array, so objects arrive in another order.
std::vector<AwsDocument> reversed(std::vector<AwsDocument> docs) {
  for (auto& doc : docs) {
    for (auto& [key, value] : doc.json.items()) {
      if (value.is_array()) std::reverse(value.begin(), value.end());
    }
  }
  return docs;
}

// The whole output for the realistic VPC, so a reviewer sees what a change does to it.
// Regenerate after an intended change with:
//   VPCGUARD_UPDATE_GOLDEN=1 build/tests/unit_import_aws --gtest_filter='*Golden*'
TEST(ImportAws, GoldenOutputForTheRealisticVpc) {
  const std::string golden = fixturePath("expected-import.toml");
  const std::string toml = importOk(realisticDocs()).toml;
  if (std::getenv("VPCGUARD_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden, std::ios::binary) << toml;
  }
  EXPECT_EQ(toml, readText(golden)) << "regenerate: see the comment above this test";
}

TEST(ImportAws, OutputDoesNotDependOnObjectOrder) {
  const auto a = importOk(realisticDocs());
  const auto b = importOk(reversed(realisticDocs()));
  EXPECT_EQ(a.toml, b.toml);
  EXPECT_EQ(importOk(realisticDocs()).toml, a.toml);
}

TEST(ImportAws, OneFileMayHoldSeveralKinds) {
  json merged = json::object();
  for (const auto& doc : realisticDocs()) {
    for (const auto& [key, value] : doc.json.items()) {
      if (key != "Entries" && key != "PrefixListId") merged[key] = value;
    }
  }
  const auto out = importOk({AwsDocument{"all.json", merged},
                             fixture("prefix-list-entries-branch-offices.json")});
  const auto root = parseToml(out.toml);
  EXPECT_EQ(arraySize(root["subnets"]), 2u);
  EXPECT_EQ(arraySize(root["network_interfaces"]), 3u);
  EXPECT_EQ(arraySize(root["security_groups"]), 4u);
  EXPECT_EQ(arraySize(root["network_acls"]), 2u);
  EXPECT_EQ(arraySize(root["prefix_lists"]), 2u);
}

// describe-traffic-mirror-* beside the realistic VPC: an IDS on the bastion host (a target on its
// interface) gets the web interface's HTTPS and DNS traffic and the db interface's traffic from
// the web subnet, truncated; the NAT gateway's interface has a session too, not imported.
// traffic-mirror-load-balancer-targets.json adds AWS's other kinds of target and a session to one.
constexpr const char* kIdsTarget = "tmt-0a1b2c3d4e5f6a7b8";
constexpr const char* kWebFilter = "tmf-0a1b2c3d4e5f6a7b8";
constexpr const char* kDbFilter = "tmf-0b2c3d4e5f6a7b8c9";
constexpr const char* kWebSession = "tms-0a1b2c3d4e5f6a7b8";
constexpr const char* kDbSession = "tms-0b2c3d4e5f6a7b8c9";
constexpr const char* kNatSession = "tms-0c3d4e5f6a7b8c9d0";
constexpr const char* kNlbTarget = "tmt-0c3d4e5f6a7b8c9d0";
constexpr const char* kGwlbTarget = "tmt-0d4e5f6a7b8c9d0e1";
constexpr const char* kNlbSession = "tms-0d4e5f6a7b8c9d0e1";

std::vector<AwsDocument> withMirroring() {
  auto docs = realisticDocs();
  for (const char* name :
       {"describe-traffic-mirror-targets.json", "describe-traffic-mirror-filters.json",
        "describe-traffic-mirror-sessions.json"}) {
    docs.push_back(fixture(name));
  }
  return docs;
}

// The loader's verdict on an imported config: the policy, or every diagnostic as text.
tl::expected<model::Policy, std::string> load(const std::string& toml) {
  auto policy = config::loadPolicyFromDocuments({config::Document{"imported.toml", toml}});
  if (policy) return std::move(*policy);
  std::string all;
  for (const auto& d : policy.error().diagnostics) all += formatDiagnostic(d) + "\n";
  return tl::unexpected(all);
}

TEST(ImportAwsMirroring, KeepsTargetsFiltersAndSessions) {
  const auto root = parseToml(importOk(withMirroring()).toml);
  ASSERT_EQ(arraySize(root["traffic_mirror_targets"]), 1u);
  const toml::table* target = findById(root, "traffic_mirror_targets", kIdsTarget);
  ASSERT_NE(target, nullptr);
  EXPECT_EQ((*target)["network_interface_id"].value<std::string>(), kBastionEni);
  EXPECT_EQ((*target)["description"].value<std::string>(), "Suricata on the bastion host");
  EXPECT_FALSE((*target)["vxlan_remote_ip"]);

  ASSERT_EQ(arraySize(root["traffic_mirror_filters"]), 2u);
  const toml::table* web = findById(root, "traffic_mirror_filters", kWebFilter);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(strings((*web)["network_services"]), std::vector<std::string>{"amazon-dns"});
  EXPECT_EQ((*web)["description"].value<std::string>(), "web: HTTPS in, DNS out");
  ASSERT_EQ(arraySize((*web)["ingress_rules"]), 3u);
  // Sorted by rule number, as AWS evaluates them.
  const auto in = [&](size_t i) { return (*web)["ingress_rules"][i]; };
  EXPECT_EQ(in(0)["rule_number"].value<int64_t>(), 50);
  EXPECT_EQ(in(0)["rule_action"].value<std::string>(), "reject");
  EXPECT_EQ(in(0)["protocol"].value<int64_t>(), 6);
  EXPECT_EQ(in(0)["source_cidr_block"].value<std::string>(), "10.0.0.0/16");
  EXPECT_EQ(in(0)["destination_port_range"]["from_port"].value<int64_t>(), 443);
  EXPECT_EQ(in(0)["destination_port_range"]["to_port"].value<int64_t>(), 443);
  EXPECT_FALSE(in(0)["source_port_range"]);
  EXPECT_EQ(in(1)["rule_number"].value<int64_t>(), 100);
  EXPECT_EQ(in(1)["description"].value<std::string>(), "HTTPS from anywhere");
  EXPECT_EQ(in(2)["source_cidr_block"].value<std::string>(), "::/0");
  EXPECT_EQ(in(2)["destination_cidr_block"].value<std::string>(), "2600:1f18:4a3:6e01::/64");
  ASSERT_EQ(arraySize((*web)["egress_rules"]), 1u);
  const auto out = (*web)["egress_rules"][0];
  EXPECT_EQ(out["protocol"].value<int64_t>(), 17);
  EXPECT_EQ(out["source_port_range"]["from_port"].value<int64_t>(), 1024);
  EXPECT_EQ(out["source_port_range"]["to_port"].value<int64_t>(), 65535);
  EXPECT_EQ(out["destination_port_range"]["to_port"].value<int64_t>(), 53);

  const toml::table* db = findById(root, "traffic_mirror_filters", kDbFilter);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE((*db)["network_services"]);
  EXPECT_FALSE((*db)["egress_rules"]);
  EXPECT_FALSE((*db)["ingress_rules"][0]["protocol"]);  // no Protocol: all protocols

  ASSERT_EQ(arraySize(root["traffic_mirror_sessions"]), 2u);
  EXPECT_EQ(findById(root, "traffic_mirror_sessions", kNatSession), nullptr);
  const toml::table* ws = findById(root, "traffic_mirror_sessions", kWebSession);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ((*ws)["network_interface_id"].value<std::string>(), kWebEni);
  EXPECT_EQ((*ws)["traffic_mirror_target_id"].value<std::string>(), kIdsTarget);
  EXPECT_EQ((*ws)["traffic_mirror_filter_id"].value<std::string>(), kWebFilter);
  EXPECT_EQ((*ws)["session_number"].value<int64_t>(), 1);
  EXPECT_EQ((*ws)["virtual_network_id"].value<int64_t>(), 7159709);
  EXPECT_FALSE((*ws)["packet_length"]);
  EXPECT_EQ((*ws)["description"].value<std::string>(), "web to the IDS");
  const toml::table* ds = findById(root, "traffic_mirror_sessions", kDbSession);
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ((*ds)["packet_length"].value<int64_t>(), 128);
  EXPECT_EQ((*ds)["traffic_mirror_filter_id"].value<std::string>(), kDbFilter);
}

TEST(ImportAwsMirroring, ImportedConfigLoads) {
  const auto policy = load(importOk(withMirroring()).toml);
  ASSERT_TRUE(policy.has_value()) << policy.error();
  EXPECT_EQ(policy->traffic_mirror_targets.size(), 1u);
  EXPECT_EQ(policy->traffic_mirror_filters.size(), 2u);
  ASSERT_EQ(policy->traffic_mirror_sessions.size(), 2u);
  for (const auto& s : policy->traffic_mirror_sessions) {
    EXPECT_TRUE(s.virtual_network_id.has_value()) << s.id;
  }
}

// Nothing new is reported but the NAT gateway's session: its interface is not imported.
TEST(ImportAwsMirroring, OnlyTheNatGatewaysSessionIsReported) {
  const auto base = importOk(realisticDocs());
  const auto out = importOk(withMirroring());
  EXPECT_EQ(out.warnings.size(), base.warnings.size() + 1) << dumpWarnings(out.warnings);
  EXPECT_TRUE(hasWarning(out.warnings, kNatSession,
                         "session of '" + std::string(kNatEni) +
                             "', which is not one of the imported interfaces: not imported"))
      << dumpWarnings(out.warnings);
}

TEST(ImportAwsMirroring, OutputDoesNotDependOnObjectOrder) {
  EXPECT_EQ(importOk(withMirroring()).toml, importOk(reversed(withMirroring())).toml);
}

// AWS's load balancer targets have no local equivalent: each is reported by id and written
// without an address, so the config does not load until the user gives vxlan_remote_ip; the
// session that uses one is kept whole.
TEST(ImportAwsMirroring, LoadBalancerTargetsNeedTheAppliancesAddress) {
  auto docs = withMirroring();
  docs.push_back(fixture("traffic-mirror-load-balancer-targets.json"));
  const auto out = importOk(docs);
  const std::string fix =
      "which has no local equivalent: set vxlan_remote_ip to the appliance's "
      "IPv4 address";
  EXPECT_TRUE(hasWarning(out.warnings, kNlbTarget,
                         "AWS sends the copies to Network Load Balancer arn:aws:"
                         "elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/"
                         "shop-monitoring/0a1b2c3d4e5f6a7b, " +
                             fix))
      << dumpWarnings(out.warnings);
  EXPECT_TRUE(hasWarning(out.warnings, kGwlbTarget,
                         "AWS sends the copies to Gateway Load Balancer endpoint "
                         "vpce-0a1b2c3d4e5f6a7b8, " +
                             fix))
      << dumpWarnings(out.warnings);
  const auto root = parseToml(out.toml);
  const toml::table* nlb = findById(root, "traffic_mirror_targets", kNlbTarget);
  ASSERT_NE(nlb, nullptr);
  EXPECT_FALSE((*nlb)["vxlan_remote_ip"]);
  EXPECT_FALSE((*nlb)["network_interface_id"]);
  EXPECT_NE(findById(root, "traffic_mirror_sessions", kNlbSession), nullptr);

  // The loader names both targets and says what to add.
  const auto refused = load(out.toml);
  ASSERT_FALSE(refused.has_value());
  // Targets are written in id order: the IDS, then the NLB and the GWLB endpoint.
  for (const char* path : {"traffic_mirror_targets[1]: ", "traffic_mirror_targets[2]: "}) {
    EXPECT_NE(refused.error().find(std::string(path) +
                                   "traffic mirror target has neither network_interface_id nor "
                                   "vxlan_remote_ip"),
              std::string::npos)
        << refused.error();
  }
  EXPECT_EQ(std::count(refused.error().begin(), refused.error().end(), '\n'), 2) << refused.error();

  // With the appliance's address filled in where the comment says, it loads.
  std::string fixed = out.toml;
  const std::string placeholder = "# vxlan_remote_ip = \"<the appliance's IPv4 address>\"";
  for (size_t at = fixed.find(placeholder); at != std::string::npos; at = fixed.find(placeholder)) {
    fixed.replace(at, placeholder.size(), "vxlan_remote_ip = \"192.0.2.10\"");
  }
  const auto loaded = load(fixed);
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  EXPECT_EQ(loaded->traffic_mirror_sessions.size(), 3u);
}

TEST(ImportAwsMirroring, WhatCannotBeImportedIsReported) {
  json doc = {
      {"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "123456789012"}, {"CidrBlock", "10.0.0.0/16"}}}},
      {"Subnets", {{{"SubnetId", "subnet-1"}, {"VpcId", "vpc-1"}, {"CidrBlock", "10.0.1.0/24"}}}},
      {"NetworkInterfaces",
       {{{"NetworkInterfaceId", "eni-1"},
         {"SubnetId", "subnet-1"},
         {"VpcId", "vpc-1"},
         {"MacAddress", "02:00:00:00:00:01"},
         {"PrivateIpAddress", "10.0.1.10"}},
        {{"NetworkInterfaceId", "eni-2"},
         {"SubnetId", "subnet-1"},
         {"VpcId", "vpc-1"},
         {"MacAddress", "02:00:00:00:00:02"},
         {"PrivateIpAddress", "10.0.1.20"}}}}};
  doc["TrafficMirrorTargets"] = {
      {{"TrafficMirrorTargetId", "tmt-ok"}, {"NetworkInterfaceId", "eni-2"}},
      {{"TrafficMirrorTargetId", "tmt-elsewhere"}, {"NetworkInterfaceId", "eni-9"}},
      {{"TrafficMirrorTargetId", "target-1"}, {"NetworkInterfaceId", "eni-2"}}};
  auto rule = [](int number) {
    return json{{"RuleNumber", number},
                {"RuleAction", "accept"},
                {"SourceCidrBlock", "0.0.0.0/0"},
                {"DestinationCidrBlock", "0.0.0.0/0"}};
  };
  json rules = json::array();
  rules.push_back(rule(1));
  rules.back()["RuleAction"] = "allow";
  rules.push_back(rule(2));
  rules.back()["Protocol"] = "tcp";
  rules.push_back(rule(3));
  rules.back()["Protocol"] = 1;
  rules.back()["DestinationPortRange"] = {{"FromPort", 0}, {"ToPort", 8}};
  rules.push_back(rule(4));
  rules.back()["DestinationCidrBlock"] = "::/0";
  rules.push_back(rule(5));
  rules.back()["Protocol"] = 6;
  rules.back()["SourcePortRange"] = {{"FromPort", 9}, {"ToPort", 1}};
  rules.push_back(rule(40000));
  rules.push_back(rule(6));
  rules.back().erase("SourceCidrBlock");
  rules.push_back(rule(7));  // the only one kept
  rules.back()["Protocol"] = -1;
  rules.back()["FancyNewField"] = true;
  doc["TrafficMirrorFilters"] = {{{"TrafficMirrorFilterId", "tmf-1"},
                                  {"IngressFilterRules", rules},
                                  {"NetworkServices", {"amazon-dns", "amazon-ntp"}}}};
  auto session = [](const char* id, const char* target, const char* filter) {
    return json{{"TrafficMirrorSessionId", id},
                {"NetworkInterfaceId", "eni-1"},
                {"TrafficMirrorTargetId", target},
                {"TrafficMirrorFilterId", filter},
                {"SessionNumber", 1}};
  };
  json sessions = json::array();
  sessions.push_back(session("tms-short", "tmt-ok", "tmf-1"));
  sessions.back()["PacketLength"] = 5;
  sessions.back()["SessionNumber"] = 1;
  sessions.push_back(session("tms-long", "tmt-ok", "tmf-1"));
  sessions.back()["PacketLength"] = 9001;
  sessions.back()["VirtualNetworkId"] = 16777216;
  sessions.back()["SessionNumber"] = 2;
  sessions.push_back(session("tms-no-target", "tmt-elsewhere", "tmf-1"));
  sessions.push_back(session("tms-no-filter", "tmt-ok", "tmf-missing"));
  sessions.push_back(session("tms-no-number", "tmt-ok", "tmf-1"));
  sessions.back().erase("SessionNumber");
  doc["TrafficMirrorSessions"] = sessions;

  const auto out = importOk({AwsDocument{"inline", doc}});
  const std::pair<const char*, const char*> expected[] = {
      {"tmt-elsewhere", "target interface eni-9 is not one of the imported interfaces"},
      {"target-1", "does not start with tmt-: not imported"},
      {"tmf-1", "ingress rule 1: RuleAction 'allow' is neither accept nor reject: dropped"},
      {"tmf-1", "ingress rule 2: Protocol \"tcp\" is not a protocol number: dropped"},
      {"tmf-1",
       "ingress rule 3: DestinationPortRange on a protocol other than tcp (6) or udp "
       "(17): dropped"},
      {"tmf-1", "ingress rule 4 DestinationCidrBlock: '::/0' is not an IPv4 CIDR: dropped"},
      {"tmf-1", "ingress rule 5: invalid SourcePortRange: dropped"},
      {"tmf-1", "ingress rule without a RuleNumber in 1..32766: dropped"},
      {"tmf-1", "ingress rule 6: needs SourceCidrBlock and DestinationCidrBlock: dropped"},
      {"tmf-1", "unknown key 'FancyNewField'"},
      {"tmf-1", "network service \"amazon-ntp\" not understood: dropped"},
      {"tms-short",
       "PacketLength 5 is below the 14-byte Ethernet header, which Open vSwitch "
       "cannot truncate below: packet_length = 14"},
      {"tms-long",
       "PacketLength 9001 is outside 1..8500: left out, so whole packets are "
       "mirrored"},
      {"tms-long", "VirtualNetworkId 16777216 is not a 24-bit VNI: left out"},
      {"tms-no-target", "its target 'tmt-elsewhere' is not imported: not imported"},
      {"tms-no-filter", "its filter 'tmf-missing' is not imported: not imported"},
      {"tms-no-number", "no SessionNumber in 1..32766: not imported"},
  };
  size_t mirror_warnings = 0;
  for (const auto& w : out.warnings) {
    if (w.object_id.starts_with("tm") || w.object_id.starts_with("target")) ++mirror_warnings;
  }
  for (const auto& [id, fragment] : expected) {
    EXPECT_TRUE(hasWarning(out.warnings, id, fragment)) << id << ": " << fragment << "\n"
                                                        << dumpWarnings(out.warnings);
  }
  EXPECT_EQ(mirror_warnings, std::size(expected)) << dumpWarnings(out.warnings);

  const auto root = parseToml(out.toml);
  const toml::table* filter = findById(root, "traffic_mirror_filters", "tmf-1");
  ASSERT_NE(filter, nullptr);
  ASSERT_EQ(arraySize((*filter)["ingress_rules"]), 1u);
  EXPECT_EQ((*filter)["ingress_rules"][0]["rule_number"].value<int64_t>(), 7);
  EXPECT_FALSE((*filter)["ingress_rules"][0]["protocol"]);  // -1: all, written as absent
  EXPECT_EQ(strings((*filter)["network_services"]), std::vector<std::string>{"amazon-dns"});
  EXPECT_EQ(arraySize(root["traffic_mirror_targets"]), 1u);
  EXPECT_EQ(findById(root, "traffic_mirror_sessions", "tms-short")
                ->at_path("packet_length")
                .value<int64_t>(),
            14);
  const toml::table* long_session = findById(root, "traffic_mirror_sessions", "tms-long");
  ASSERT_NE(long_session, nullptr);
  EXPECT_FALSE((*long_session)["packet_length"]);
  EXPECT_FALSE((*long_session)["virtual_network_id"]);
  EXPECT_EQ(arraySize(root["traffic_mirror_sessions"]), 2u);
  // What is written loads (eni-1 has two sessions, within AWS's 3).
  const auto policy = load(out.toml);
  EXPECT_TRUE(policy.has_value()) << policy.error();
}

// A reject rule that cannot be imported takes its direction's other rules with it: dropped alone,
// the accept rule after it would mirror what AWS does not. An accept rule that cannot be
// imported goes alone, and the other direction is kept.
TEST(ImportAwsMirroring, AnUnimportableRejectRuleDropsItsDirection) {
  auto rule = [](int number, const char* action) {
    return json{{"RuleNumber", number},
                {"RuleAction", action},
                {"SourceCidrBlock", "0.0.0.0/0"},
                {"DestinationCidrBlock", "0.0.0.0/0"}};
  };
  json ingress = json::array();
  ingress.push_back(rule(10, "reject"));  // tcp/22 not mirrored, but not representable
  ingress.back()["Protocol"] = 6;
  ingress.back()["DestinationPortRange"] = {{"FromPort", 22}, {"ToPort", 9}};
  ingress.push_back(rule(20, "accept"));  // everything else
  ingress.push_back(rule(30, "reject"));  // a second broken reject: one warning is enough
  ingress.back()["Protocol"] = "tcp";
  json egress = json::array();
  egress.push_back(rule(10, "accept"));  // broken accept: dropped alone
  egress.back()["Protocol"] = "udp";
  egress.push_back(rule(20, "reject"));
  egress.back()["Protocol"] = 17;
  egress.push_back(rule(30, "accept"));
  json doc = {
      {"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "123456789012"}, {"CidrBlock", "10.0.0.0/16"}}}},
      {"TrafficMirrorFilters",
       {{{"TrafficMirrorFilterId", "tmf-1"},
         {"IngressFilterRules", ingress},
         {"EgressFilterRules", egress}}}}};

  const auto out = importOk({AwsDocument{"inline", doc}});
  EXPECT_TRUE(hasWarning(out.warnings, "tmf-1", "ingress rule 10: invalid DestinationPortRange"))
      << dumpWarnings(out.warnings);
  EXPECT_TRUE(hasWarning(out.warnings, "tmf-1",
                         "ingress rule 10 is a reject rule that cannot be imported; dropping it "
                         "alone would let a later accept rule mirror what it rejects, so all "
                         "ingress rules of the filter are dropped (1 more) and its sessions mirror "
                         "no ingress traffic: mirrors less, never more"))
      << dumpWarnings(out.warnings);
  EXPECT_FALSE(hasWarning(out.warnings, "tmf-1", "ingress rule 30 is a reject rule"))
      << dumpWarnings(out.warnings);
  EXPECT_FALSE(hasWarning(out.warnings, "tmf-1", "egress rule 10 is a reject rule"))
      << dumpWarnings(out.warnings);

  const auto root = parseToml(out.toml);
  const toml::table* filter = findById(root, "traffic_mirror_filters", "tmf-1");
  ASSERT_NE(filter, nullptr);
  EXPECT_EQ(arraySize((*filter)["ingress_rules"]), 0u);
  ASSERT_EQ(arraySize((*filter)["egress_rules"]), 2u);
  EXPECT_EQ((*filter)["egress_rules"][0]["rule_number"].value<int64_t>(), 20);
  EXPECT_EQ((*filter)["egress_rules"][0]["rule_action"].value<std::string>(), "reject");
  EXPECT_EQ((*filter)["egress_rules"][1]["rule_number"].value<int64_t>(), 30);
  const auto policy = load(out.toml);
  EXPECT_TRUE(policy.has_value()) << policy.error();
}

// Every unrepresentable case in unrepresentable.json is reported, naming its object.
TEST(ImportAws, EachUnrepresentableCaseIsReported) {
  const auto out = importOk({fixture("unrepresentable.json")});
  struct Case {
    const char* id;
    const char* fragment;
  };
  const Case cases[] = {
      {"", "unknown top-level key 'ResponseMetadata'"},
      {"sg-0a0000000000000a1", "unknown key 'FancyNewField'"},
      {"sg-0a0000000000000a1", "ingress permission 0 (tcp 8080-8080) references "
                               "sg-0999999999999999f of account 210987654321"},
      {"sg-0a0000000000000a1", "egress permission 1 (tcp 25-25) references sg-0999999999999999f "
                               "of account 210987654321"},
      {"sg-0a0000000000000a1", "pcx-0a1b2c3d4e5f6a7b8"},
      {"sg-0a0000000000000a1", "sg-0777777777777777d, which is not in the input"},
      {"sg-0a0000000000000a1", "::/0: IPv6 rule in a VPC without IPv6"},
      {"sg-0a0000000000000a1", "pl-0deadbeefdeadbeef, which is not in the input"},
      {"sg-0a0000000000000a1", "IpProtocol 'gre' not understood"},
      {"acl-0c0ffee0c0ffee001", "ingress rule 101 for ::/0: IPv6 rule in a VPC without IPv6"},
      {"subnet-0c0ffee000000001a", "in a VPC without IPv6"},
      {"eni-0c0ffee00000000a1", "IPv6 address 2a05:d018:1:100::5 in a VPC without IPv6"},
      {"eni-0c0ffee00000000a1", "Ipv4Prefixes"},
      {"eni-0other0000000000b2", "belongs to vpc-0other000000000001"},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(hasWarning(out.warnings, c.id, c.fragment))
        << c.id << ": " << c.fragment << "\n" << dumpWarnings(out.warnings);
  }
  EXPECT_EQ(out.warnings.size(), std::size(cases)) << dumpWarnings(out.warnings);

  // What can be represented is still imported.
  const auto root = parseToml(out.toml);
  EXPECT_EQ(root["vpc"]["region"].value<std::string>(), "eu-west-1");
  const toml::table* app = findById(root, "security_groups", "sg-0a0000000000000a1");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(arraySize((*app)["ingress"]), 1u);  // 443 from 0.0.0.0/0
  EXPECT_EQ(arraySize((*app)["egress"]), 1u);   // all to 0.0.0.0/0
  const toml::table* eni = findById(root, "network_interfaces", "eni-0c0ffee00000000a1");
  ASSERT_NE(eni, nullptr);
  EXPECT_EQ((*eni)["source_dest_check"].value<bool>(), false);
  EXPECT_EQ(arraySize((*eni)["ipv6_addresses"]), 0u);
  EXPECT_EQ(findById(root, "network_interfaces", "eni-0other0000000000b2"), nullptr);
  const toml::table* subnet = findById(root, "subnets", "subnet-0c0ffee000000001a");
  ASSERT_NE(subnet, nullptr);
  EXPECT_FALSE((*subnet)["ipv6_cidr_block"]);
  EXPECT_FALSE((*subnet)["network_acl_id"]);  // the default NACL
}

TEST(ImportAws, SeveralVpcsNeedVpcId) {
  auto out = importAws({fixture("two-vpcs.json")}, {});
  ASSERT_FALSE(out.has_value());
  EXPECT_NE(out.error().message.find("--vpc-id"), std::string::npos);
  EXPECT_NE(out.error().message.find("vpc-0aaaa1111bbbb2222"), std::string::npos);
  EXPECT_NE(out.error().message.find("vpc-0cccc3333dddd4444"), std::string::npos);
}

TEST(ImportAws, VpcIdChoosesOneVpcAndReportsTheOthers) {
  ImportAwsOptions options;
  options.vpc_id = "vpc-0aaaa1111bbbb2222";
  options.region = "eu-central-1";
  const auto out = importOk({fixture("two-vpcs.json")}, options);
  const auto root = parseToml(out.toml);
  EXPECT_EQ(root["vpc"]["id"].value<std::string>(), "vpc-0aaaa1111bbbb2222");
  EXPECT_EQ(root["vpc"]["region"].value<std::string>(), "eu-central-1");
  // Secondary block kept, the disassociated one left out.
  EXPECT_EQ(strings(root["vpc"]["cidr_blocks"]),
            (std::vector<std::string>{"10.1.0.0/16", "100.64.0.0/16"}));
  EXPECT_TRUE(hasWarning(out.warnings, "vpc-0cccc3333dddd4444", "not imported"));
}

TEST(ImportAws, UnknownVpcIdIsAnError) {
  ImportAwsOptions options;
  options.vpc_id = "vpc-0000000000000000f";
  auto out = importAws({fixture("two-vpcs.json")}, options);
  ASSERT_FALSE(out.has_value());
  EXPECT_NE(out.error().message.find("vpc-0000000000000000f"), std::string::npos);
}

TEST(ImportAws, NoVpcAtAllIsAnError) {
  auto out = importAws({fixture("describe-managed-prefix-lists.json")}, {});
  EXPECT_FALSE(out.has_value());
}

TEST(ImportAws, VpcInferredFromObjectsWhenDescribeVpcsIsMissing) {
  const auto out = importOk({fixture("describe-subnets.json")});
  const auto root = parseToml(out.toml);
  EXPECT_EQ(root["vpc"]["id"].value<std::string>(), kVpc);
  EXPECT_EQ(root["vpc"]["account_id"].value<std::string>(), "123456789012");
  EXPECT_TRUE(hasWarning(out.warnings, kVpc, "describe-vpcs"));
  EXPECT_TRUE(hasWarning(out.warnings, kVpc, "describe-network-acls"));
}

// A VPC with one security group holding one permission, for table-driven cases.
json vpcWithPermission(const json& permission) {
  return json{
      {"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "123456789012"}, {"CidrBlock", "10.0.0.0/16"}}}},
      {"SecurityGroups",
       {{{"GroupId", "sg-1"},
         {"GroupName", "g"},
         {"Description", "d"},
         {"VpcId", "vpc-1"},
         {"IpPermissions", {permission}},
         {"IpPermissionsEgress", json::array()}}}}};
}

TEST(ImportAws, SecurityGroupProtocolVocabulary) {
  struct Case {
    const char* aws;
    const char* expected;
    bool has_ports;
  };
  for (const Case& c : {Case{"-1", "all", false}, Case{"tcp", "tcp", true},
                        Case{"6", "tcp", true}, Case{"udp", "udp", true},
                        Case{"17", "udp", true}, Case{"icmp", "icmp", true},
                        Case{"icmpv6", "icmpv6", true}, Case{"58", "icmpv6", true},
                        Case{"50", "50", false}}) {
    json permission = {{"IpProtocol", c.aws}, {"IpRanges", {{{"CidrIp", "10.0.0.0/8"}}}}};
    if (c.has_ports) {
      permission["FromPort"] = 8;
      permission["ToPort"] = 0;
      if (std::string(c.expected) == "tcp" || std::string(c.expected) == "udp") {
        permission["FromPort"] = 1000;
        permission["ToPort"] = 2000;
      }
    }
    const auto out = importOk({AwsDocument{"inline", vpcWithPermission(permission)}});
    const auto root = parseToml(out.toml);
    const toml::table* rule = root["security_groups"][0]["ingress"][0].as_table();
    ASSERT_NE(rule, nullptr) << c.aws;
    EXPECT_EQ((*rule)["ip_protocol"].value<std::string>(), c.expected) << c.aws;
    EXPECT_EQ((*rule).contains("from_port"), c.has_ports) << c.aws;
    EXPECT_EQ((*rule).contains("to_port"), c.has_ports) << c.aws;
  }
}

TEST(ImportAws, RaisedAwsQuotasAreReported) {
  json permission = {{"IpProtocol", "tcp"}, {"FromPort", 443}, {"ToPort", 443},
                     {"IpRanges", json::array()}};
  for (int i = 0; i < 61; ++i) {
    permission["IpRanges"].push_back({{"CidrIp", "10.0." + std::to_string(i) + ".0/24"}});
  }
  const auto out = importOk({AwsDocument{"inline", vpcWithPermission(permission)}});
  EXPECT_TRUE(hasWarning(out.warnings, "sg-1", "rules_per_security_group = 61"))
      << dumpWarnings(out.warnings);
  const auto root = parseToml(out.toml);
  EXPECT_EQ(arraySize(root["security_groups"][0]["ingress"]), 61u);  // all still written
}

TEST(ImportAws, TcpWithoutPortsIsReported) {
  const json permission = {{"IpProtocol", "tcp"}, {"IpRanges", {{{"CidrIp", "10.0.0.0/8"}}}}};
  const auto out = importOk({AwsDocument{"inline", vpcWithPermission(permission)}});
  EXPECT_TRUE(hasWarning(out.warnings, "sg-1", "FromPort/ToPort"));
}

TEST(ImportAws, NaclProtocolVocabulary) {
  struct Case {
    const char* aws;
    const char* expected;
  };
  for (const Case& c : {Case{"-1", "all"}, Case{"6", "tcp"}, Case{"17", "udp"},
                        Case{"1", "icmp"}, Case{"58", "icmpv6"}, Case{"4", "4"}}) {
    const json doc = {
        {"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "1"}, {"CidrBlock", "10.0.0.0/16"}}}},
        {"NetworkAcls",
         {{{"NetworkAclId", "acl-1"},
           {"VpcId", "vpc-1"},
           {"IsDefault", false},
           {"Associations", json::array()},
           {"Entries",
            {{{"RuleNumber", 10},
              {"Egress", false},
              {"Protocol", c.aws},
              {"RuleAction", "deny"},
              {"CidrBlock", "0.0.0.0/0"}}}}}}}};
    const auto root = parseToml(importOk({AwsDocument{"inline", doc}}).toml);
    EXPECT_EQ(root["network_acls"][0]["entries"][0]["protocol"].value<std::string>(), c.expected)
        << c.aws;
  }
}

TEST(ImportAws, TextIsEscapedAndSurvivesTheRoundTrip) {
  const std::string tricky = "say \"hi\"\\ to\tthe\nnext line — café \x01";
  json permission = {{"IpProtocol", "-1"},
                     {"IpRanges", {{{"CidrIp", "10.0.0.0/8"}, {"Description", tricky}}}}};
  json doc = vpcWithPermission(permission);
  doc["SecurityGroups"][0]["Description"] = tricky;
  const auto out = importOk({AwsDocument{"inline", doc}});
  const auto root = parseToml(out.toml);
  EXPECT_EQ(root["security_groups"][0]["description"].value<std::string>(), tricky);
  EXPECT_EQ(root["security_groups"][0]["ingress"][0]["description"].value<std::string>(), tricky);
}

TEST(ImportAws, RegionFromLocalZoneOrOptionOrDefault) {
  auto withAz = [](const char* az) {
    return json{
        {"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "1"}, {"CidrBlock", "10.0.0.0/16"}}}},
        {"Subnets",
         {{{"SubnetId", "subnet-1"}, {"VpcId", "vpc-1"}, {"CidrBlock", "10.0.0.0/24"},
           {"AvailabilityZone", az}}}}};
  };
  auto region = [](const ImportAwsOutput& out) {
    return parseToml(out.toml)["vpc"]["region"].value<std::string>().value_or("");
  };
  EXPECT_EQ(region(importOk({AwsDocument{"x", withAz("us-west-2-lax-1a")}})), "us-west-2");
  EXPECT_EQ(region(importOk({AwsDocument{"x", withAz("us-gov-west-1b")}})), "us-gov-west-1");
  EXPECT_EQ(region(importOk({AwsDocument{"x", withAz("ap-southeast-2c")}})), "ap-southeast-2");
  EXPECT_EQ(region(importOk({AwsDocument{"x", withAz("us-east-1-wl1-bos-wlz-1")}})), "us-east-1");
  const auto odd = importOk({AwsDocument{"x", withAz("rack-7")}});
  EXPECT_EQ(region(odd), "us-east-1");
  EXPECT_TRUE(hasWarning(odd.warnings, "subnet-1", "does not name a region"));
  EXPECT_TRUE(hasWarning(odd.warnings, "vpc-1", "region unknown"));
  ImportAwsOptions options;
  options.region = "lab-1";
  EXPECT_EQ(region(importOk({AwsDocument{"x", withAz("us-east-1a")}}, options)), "lab-1");

  const auto out = importOk({fixture("describe-vpcs.json")});
  EXPECT_EQ(region(out), "us-east-1");
  EXPECT_TRUE(hasWarning(out.warnings, kVpc, "region unknown"));
}

TEST(ImportAws, PrimaryAddressFirstAndSourceDestCheckFalse) {
  const json doc = {
      {"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "1"}, {"CidrBlock", "10.0.0.0/16"}}}},
      {"Subnets", {{{"SubnetId", "subnet-1"}, {"VpcId", "vpc-1"}, {"CidrBlock", "10.0.0.0/24"}}}},
      {"NetworkInterfaces",
       {{{"NetworkInterfaceId", "eni-1"},
         {"VpcId", "vpc-1"},
         {"SubnetId", "subnet-1"},
         {"MacAddress", "02:00:00:00:00:01"},
         {"PrivateIpAddress", "10.0.0.5"},
         {"PrivateIpAddresses",
          {{{"Primary", false}, {"PrivateIpAddress", "10.0.0.9"}},
           {{"Primary", true}, {"PrivateIpAddress", "10.0.0.5"}},
           {{"Primary", false}, {"PrivateIpAddress", "10.0.0.7"}}}},
         {"Groups", {{{"GroupId", "sg-missing"}, {"GroupName", "x"}}}},
         {"InterfaceType", "efa"},
         {"SourceDestCheck", false}}}}};
  const auto out = importOk({AwsDocument{"inline", doc}});
  EXPECT_TRUE(hasWarning(out.warnings, "eni-1", "interface type 'efa'"));
  const auto root = parseToml(out.toml);
  const toml::table* eni = findById(root, "network_interfaces", "eni-1");
  ASSERT_NE(eni, nullptr);
  EXPECT_EQ(strings((*eni)["private_ip_addresses"]),
            (std::vector<std::string>{"10.0.0.5", "10.0.0.9", "10.0.0.7"}));
  EXPECT_EQ((*eni)["source_dest_check"].value<bool>(), false);
  EXPECT_EQ(arraySize((*eni)["security_group_ids"]), 0u);
  EXPECT_TRUE(hasWarning(out.warnings, "eni-1", "sg-missing"));
}

TEST(ImportAws, PrefixListEntriesNeedAListId) {
  const json entries = {{"Entries", {{{"Cidr", "192.0.2.0/24"}}}}};
  const auto out = importOk({fixture("describe-vpcs.json"), AwsDocument{"entries.json", entries}});
  EXPECT_TRUE(std::any_of(out.warnings.begin(), out.warnings.end(), [](const ImportWarning& w) {
    return w.source == "entries.json" && w.message.find("PrefixListId") != std::string::npos;
  })) << dumpWarnings(out.warnings);
}

TEST(ImportAws, EntriesAloneMakeAPrefixList) {
  const auto out =
      importOk({fixture("describe-vpcs.json"), fixture("prefix-list-entries-branch-offices.json")});
  const auto root = parseToml(out.toml);
  const toml::table* list = findById(root, "prefix_lists", kOfficeList);
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(arraySize((*list)["entries"]), 2u);
  EXPECT_EQ((*list)["max_entries"].value<int64_t>(), 2);
  EXPECT_TRUE(hasWarning(out.warnings, kOfficeList, "no describe-managed-prefix-lists record"));
}

TEST(ImportAws, SameObjectInTwoFilesIsFineDifferentContentIsReported) {
  const auto same = importOk({fixture("describe-vpcs.json"), fixture("describe-vpcs.json")});
  EXPECT_FALSE(hasWarning(same.warnings, kVpc, "different content"));

  AwsDocument changed = fixture("describe-vpcs.json");
  changed.source = "later.json";
  changed.json["Vpcs"][0]["CidrBlock"] = "10.9.0.0/16";
  const auto differ = importOk({fixture("describe-vpcs.json"), changed});
  EXPECT_TRUE(hasWarning(differ.warnings, kVpc, "different content"));
}

TEST(ImportAws, TruncatedOutputIsReported) {
  AwsDocument doc = fixture("describe-vpcs.json");
  doc.json["NextToken"] = "eyJuZXh0IjogMn0=";
  const auto out = importOk({doc});
  EXPECT_TRUE(std::any_of(out.warnings.begin(), out.warnings.end(), [](const ImportWarning& w) {
    return w.message.find("NextToken") != std::string::npos;
  }));
}

TEST(ImportAws, MalformedJsonNamesFileAndLocation) {
  const std::string path = fixturePath("malformed.json");
  auto doc = parseAwsDocument(path, readText(path));
  ASSERT_FALSE(doc.has_value());
  // The stray comma is on line 5, column 40 (byte 112).
  EXPECT_NE(doc.error().message.find(path + ":5:40"), std::string::npos) << doc.error().message;
  EXPECT_NE(doc.error().message.find("byte 112"), std::string::npos) << doc.error().message;

  auto empty = parseAwsDocument("empty.json", "");
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message.find("empty.json:1:1"), std::string::npos)
      << empty.error().message;
}

TEST(ImportAws, TopLevelThatIsNotAnObjectIsReported) {
  const auto out =
      importOk({fixture("describe-vpcs.json"), AwsDocument{"list.json", json::array()}});
  EXPECT_TRUE(std::any_of(out.warnings.begin(), out.warnings.end(),
                          [](const ImportWarning& w) { return w.source == "list.json"; }));
}

// --- the CLI, end to end through the built binary ---------------------------------------------

std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// tests/CMakeLists.txt passes both variables in one ENVIRONMENT property, and ctest receives
// only VPCGUARD_SOURCE_DIR (the second lands in a property of its own). Until the harness is
// fixed, find the build tree from this test program's own path: <build>/tests/<program>.
std::string vpcguardctlPath() {
  if (std::getenv("VPCGUARD_BINARY_DIR") != nullptr) return test::programPath("vpcguardctl");
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return test::programPath("vpcguardctl");
  return (self.parent_path().parent_path() / "daemon" / "vpcguardctl").string();
}

class ImportAwsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(vpcguardctlPath())) << vpcguardctlPath();
    std::string pattern = (fs::temp_directory_path() / "vpcguard-import-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs vpcguardctl with `args`; returns its exit code, stdout and stderr land in files.
  int run(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
    std::string cmd = quote(vpcguardctlPath());
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " >" + quote(stdoutPath()) + " 2>" + quote(stderrPath()) + " <" + quote(stdin_path);
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  [[nodiscard]] std::string stdoutPath() const { return (dir_ / "stdout").string(); }
  [[nodiscard]] std::string stderrPath() const { return (dir_ / "stderr").string(); }
  [[nodiscard]] std::string errText() const { return readText(stderrPath()); }

  std::vector<std::string> realisticArgs() {
    std::vector<std::string> args = {"import-aws"};
    for (const auto& name : kRealisticFiles) args.push_back(fixturePath(name));
    return args;
  }

  fs::path dir_;
};

TEST_F(ImportAwsCli, WritesTheConfigGivenWithOutputOption) {
  const std::string out = (dir_ / "vpc.toml").string();
  auto args = realisticArgs();
  args.insert(args.end(), {"-o", out});
  ASSERT_EQ(run(args), kImportOk) << errText();
  EXPECT_TRUE(readText(stdoutPath()).empty());
  const auto root = parseToml(readText(out));
  EXPECT_EQ(root["vpc"]["id"].value<std::string>(), kVpc);
  EXPECT_EQ(arraySize(root["security_groups"]), 4u);
  // Warnings go to stderr and name their objects.
  EXPECT_NE(errText().find(kNatEni), std::string::npos);
  EXPECT_NE(errText().find(kS3List), std::string::npos);
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST_F(ImportAwsCli, WritesToStdoutByDefault) {
  ASSERT_EQ(run(realisticArgs()), kImportOk) << errText();
  const auto root = parseToml(readText(stdoutPath()));
  EXPECT_EQ(arraySize(root["subnets"]), 2u);
}

TEST_F(ImportAwsCli, ReadsStandardInputForDash) {
  ASSERT_EQ(run({"import-aws", "-", fixturePath("describe-subnets.json")},
                fixturePath("describe-vpcs.json")),
            kImportOk)
      << errText();
  const std::string toml = readText(stdoutPath());
  EXPECT_NE(toml.find("#   <stdin>\n"), std::string::npos);
  EXPECT_EQ(parseToml(toml)["vpc"]["cidr_blocks"][0].value<std::string>(), "10.0.0.0/16");
}

TEST_F(ImportAwsCli, StrictFailsOnWarningsAndWritesNothing) {
  const std::string out = (dir_ / "vpc.toml").string();
  auto args = realisticArgs();
  args.insert(args.end(), {"--strict", "-o", out});
  EXPECT_EQ(run(args), kImportBadInput);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(errText().find("--strict"), std::string::npos);
}

TEST_F(ImportAwsCli, MalformedJsonExitsOneNamingFileAndLine) {
  const std::string path = fixturePath("malformed.json");
  EXPECT_EQ(run({"import-aws", fixturePath("describe-vpcs.json"), path}), kImportBadInput);
  EXPECT_NE(errText().find(path + ":5:40"), std::string::npos) << errText();
}

TEST_F(ImportAwsCli, UnreadableFileExitsTwo) {
  const std::string missing = (dir_ / "no-such.json").string();
  EXPECT_EQ(run({"import-aws", fixturePath("describe-vpcs.json"), missing}), kImportIoError);
  EXPECT_NE(errText().find(missing), std::string::npos) << errText();
  EXPECT_EQ(run({"import-aws", dir_.string()}), kImportIoError);
}

TEST_F(ImportAwsCli, SeveralVpcsWithoutVpcIdExitOne) {
  EXPECT_EQ(run({"import-aws", fixturePath("two-vpcs.json")}), kImportBadInput);
  EXPECT_NE(errText().find("--vpc-id"), std::string::npos);
  EXPECT_EQ(run({"import-aws", fixturePath("two-vpcs.json"), "--vpc-id", "vpc-0cccc3333dddd4444",
                 "--region", "eu-west-3"}),
            kImportOk)
      << errText();
  const auto root = parseToml(readText(stdoutPath()));
  EXPECT_EQ(root["vpc"]["id"].value<std::string>(), "vpc-0cccc3333dddd4444");
  EXPECT_EQ(root["vpc"]["region"].value<std::string>(), "eu-west-3");
}

// The flow logs' AWS destinations are warnings like any other: --strict refuses them.
TEST_F(ImportAwsCli, StrictFailsOnAFlowLogsAwsDestination) {
  json doc = {{"Vpcs", {{{"VpcId", "vpc-1"}, {"OwnerId", "123456789012"},
                         {"CidrBlock", "10.0.0.0/16"}}}},
              {"NetworkAcls", json::array()}};
  const std::string clean = (dir_ / "clean.json").string();
  std::ofstream(clean) << doc.dump(4);
  ASSERT_EQ(run({"import-aws", "--strict", "--region", "lab-1", clean}), kImportOk) << errText();

  doc["FlowLogs"] = {{{"FlowLogId", "fl-0123456789abcdef0"},
                      {"ResourceId", "vpc-1"},
                      {"TrafficType", "ALL"},
                      {"LogDestinationType", "s3"},
                      {"LogDestination", "arn:aws:s3:::bucket"}}};
  const std::string with_flow_log = (dir_ / "flow-log.json").string();
  std::ofstream(with_flow_log) << doc.dump(4);
  const std::string out = (dir_ / "vpc.toml").string();
  EXPECT_EQ(run({"import-aws", "--strict", "--region", "lab-1", with_flow_log, "-o", out}),
            kImportBadInput);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(errText().find("fl-0123456789abcdef0: delivers to s3"), std::string::npos) << errText();
}

// Imported flow logs are accepted by `vpcguardctl check`: their resources are imported too.
TEST_F(ImportAwsCli, ImportedFlowLogsPassCheck) {
  const std::string out = (dir_ / "vpc.toml").string();
  auto args = realisticArgs();
  args.insert(args.end(), {fixturePath("describe-flow-logs.json"), "-o", out});
  ASSERT_EQ(run(args), kImportOk) << errText();
  EXPECT_EQ(arraySize(parseToml(readText(out))["flow_logs"]), 3u);
  EXPECT_EQ(run({"check", out}), 0) << errText() << readText(stdoutPath());
}

// Imported traffic mirroring passes `vpcguardctl check`, which counts the sessions.
TEST_F(ImportAwsCli, ImportedMirroringPassesCheck) {
  const std::string out = (dir_ / "vpc.toml").string();
  auto args = realisticArgs();
  for (const char* name :
       {"describe-traffic-mirror-targets.json", "describe-traffic-mirror-filters.json",
        "describe-traffic-mirror-sessions.json"}) {
    args.push_back(fixturePath(name));
  }
  args.insert(args.end(), {"-o", out});
  ASSERT_EQ(run(args), kImportOk) << errText();
  EXPECT_NE(errText().find(std::string(kNatSession) + ": session of"), std::string::npos)
      << errText();
  EXPECT_EQ(run({"check", out}), 0) << errText() << readText(stdoutPath());
  EXPECT_NE(readText(stdoutPath()).find(", 2 traffic mirror sessions"), std::string::npos)
      << readText(stdoutPath());
}

// An imported config is accepted by the loader and validator (`vpcguardctl check`).
TEST_F(ImportAwsCli, ImportedConfigPassesCheck) {
  const std::string out = (dir_ / "vpc.toml").string();
  auto args = realisticArgs();
  args.insert(args.end(), {"-o", out});
  ASSERT_EQ(run(args), kImportOk) << errText();
  const auto check = std::vector<std::string>{"check", out};
  EXPECT_EQ(run(check), 0) << errText() << readText(stdoutPath());
}

}  // namespace
}  // namespace vpcguard
