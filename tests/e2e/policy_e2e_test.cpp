// Real TCP, UDP and ICMP between VMs (network namespaces) under the sample policy
// (configs/lab.toml), through the full pipeline on the userspace datapath: router, NACLs and
// stateful security groups with OVS's conntrack.
#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "tests/harness/assertions.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/sample_policy.h"

namespace vpcguard::test {
namespace {

constexpr const char* kDb = "10.0.2.10";
constexpr const char* kWeb = "10.0.1.10";

class PolicyE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = config::loadPolicy(sourceDir() + "/configs/lab.toml");
    ASSERT_TRUE(loaded) << loaded.error().toError().message;
    policy_ = std::move(*loaded);
  }

  void startLab() {
    VGT_ASSIGN_OR_FAIL(lab_, PolicyLab::start(policy_));
    VGT_ASSERT_OK(lab_->install(policy_));
  }

  model::SecurityGroup& group(const std::string& id) {
    for (auto& g : policy_.security_groups) {
      if (g.id == id) {
        return g;
      }
    }
    throw std::runtime_error("no group " + id);
  }
  model::NetworkAcl& acl(const std::string& id) {
    for (auto& a : policy_.network_acls) {
      if (a.id == id) {
        return a;
      }
    }
    throw std::runtime_error("no acl " + id);
  }

  // A TCP server in `eni` that answers every connection with "pong"; returns the file where
  // what it received lands.
  std::string tcpServer(const std::string& eni, int port) {
    const std::string out = lab_->sandbox().dir() + "/tcp-" + std::to_string(port) + ".out";
    auto r = lab_->exec(eni, "(echo pong | timeout 30 nc -l " + std::to_string(port) + " > " +
                                 out + " 2>&1) > /dev/null 2>&1 &");
    EXPECT_TRUE(r.ok()) << r.output;
    EXPECT_TRUE(waitFor([&] { return listening(eni, "t", port); }, std::chrono::seconds(10)));
    return out;
  }
  std::string udpServer(const std::string& eni, int port) {
    const std::string out = lab_->sandbox().dir() + "/udp-" + std::to_string(port) + ".out";
    auto r = lab_->exec(eni, "(timeout 30 nc -u -l " + std::to_string(port) + " > " + out +
                                 " 2>&1 < /dev/null) > /dev/null 2>&1 &");
    EXPECT_TRUE(r.ok()) << r.output;
    EXPECT_TRUE(waitFor([&] { return listening(eni, "u", port); }, std::chrono::seconds(10)));
    return out;
  }
  bool listening(const std::string& eni, const char* proto, int port) {
    return lab_->exec(eni, std::string("ss -l") + proto + "nH 'sport = :" + std::to_string(port) +
                               "' | grep -q .")
        .ok();
  }
  static bool fileHas(const std::string& file, const std::string& text,
                      std::chrono::seconds timeout = std::chrono::seconds(5)) {
    return waitFor([&] { return run("cat " + file).output.find(text) != std::string::npos; },
                   timeout);
  }

  model::Policy policy_;
  std::unique_ptr<PolicyLab> lab_;
};

TEST_F(PolicyE2e, PingAcrossSubnetsThroughTheRouter) {
  startLab();
  auto web = lab_->exec("eni-web1", std::string("ping -c 2 -i 0.2 -W 2 ") + kDb);
  EXPECT_TRUE(web.ok()) << web.output;
  auto bastion = lab_->exec("eni-bastion", std::string("ping -c 2 -i 0.2 -W 2 ") + kDb);
  EXPECT_TRUE(bastion.ok()) << bastion.output;
  // sg-web allows no ICMP in: the database cannot ping the web server.
  auto back = lab_->exec("eni-db1", std::string("ping -c 2 -i 0.2 -W 1 ") + kWeb);
  EXPECT_FALSE(back.ok()) << back.output;
}

TEST_F(PolicyE2e, AllowedTcpConnectionAndItsReplies) {
  startLab();
  const std::string received = tcpServer("eni-db1", 5432);
  auto client = lab_->exec("eni-web1", std::string("echo hello | timeout 10 nc -w 3 ") + kDb + " 5432");
  EXPECT_TRUE(client.ok()) << client.output;
  EXPECT_NE(client.output.find("pong"), std::string::npos) << "the reply did not come back: " << client.output;
  EXPECT_TRUE(fileHas(received, "hello"));
}

TEST_F(PolicyE2e, BlockedTcpConnectionFails) {
  startLab();
  (void)tcpServer("eni-db1", 5432);
  // sg-db allows 5432 from sg-web only; the bastion is not in it.
  auto client = lab_->exec("eni-bastion", std::string("timeout 10 nc -z -w 2 ") + kDb + " 5432");
  EXPECT_FALSE(client.ok()) << client.output;
  // Same subnet, web tier: 80 allowed from anywhere; 8080 not.
  (void)tcpServer("eni-web1", 80);
  (void)tcpServer("eni-web1", 8080);
  EXPECT_TRUE(lab_->exec("eni-bastion", std::string("timeout 10 nc -z -w 2 ") + kWeb + " 80").ok());
  EXPECT_FALSE(lab_->exec("eni-bastion", std::string("timeout 10 nc -z -w 2 ") + kWeb + " 8080").ok());
}

TEST_F(PolicyE2e, UdpAllowedAndBlocked) {
  model::SecurityGroupRule rule;
  rule.ip_protocol = model::kProtoUdp;
  rule.ports = model::PortRange{5353, 5353};
  rule.peer = model::GroupRef{"sg-web"};
  group("sg-db").ingress.push_back(rule);
  model::NetworkAclEntry in;
  in.rule_number = 140;
  in.protocol = model::kProtoUdp;
  in.allow = true;
  in.cidr = *Cidr::parse("10.0.1.0/24");
  in.port_range = model::PortRange{5353, 5354};
  acl("acl-private").entries.push_back(in);
  startLab();
  const std::string allowed = udpServer("eni-db1", 5353);
  const std::string blocked = udpServer("eni-db1", 5354);
  for (int i = 0; i < 3; ++i) {
    (void)lab_->exec("eni-web1", std::string("echo datagram-ok | nc -u -w 1 ") + kDb + " 5353");
    (void)lab_->exec("eni-web1", std::string("echo datagram-blocked | nc -u -w 1 ") + kDb + " 5354");
  }
  EXPECT_TRUE(fileHas(allowed, "datagram-ok"));
  EXPECT_FALSE(fileHas(blocked, "datagram-blocked", std::chrono::seconds(1)));
}

TEST_F(PolicyE2e, NaclWithoutEphemeralPortRuleBreaksReplies) {
  startLab();
  (void)tcpServer("eni-db1", 5432);
  EXPECT_TRUE(lab_->exec("eni-web1", std::string("timeout 10 nc -z -w 2 ") + kDb + " 5432").ok());

  // Outbound rule 100 lets the database's replies (to ephemeral ports) leave the subnet.
  std::erase_if(acl("acl-private").entries,
                [](const auto& e) { return e.egress && e.rule_number == 100; });
  VGT_ASSERT_OK(lab_->install(policy_));
  (void)tcpServer("eni-db1", 5432);
  auto broken = lab_->exec("eni-web1", std::string("timeout 10 nc -z -w 2 ") + kDb + " 5432");
  EXPECT_FALSE(broken.ok()) << "the SYN-ACK must be denied by the NACL: " << broken.output;
}

TEST_F(PolicyE2e, MembershipChangeTakesEffectWithoutRestart) {
  startLab();
  (void)tcpServer("eni-db1", 5432);
  EXPECT_FALSE(lab_->exec("eni-bastion", std::string("timeout 10 nc -z -w 2 ") + kDb + " 5432").ok());
  for (auto& eni : policy_.network_interfaces) {
    if (eni.id == "eni-bastion") {
      eni.security_group_ids.push_back("sg-web");
    }
  }
  VGT_ASSIGN_OR_FAIL(SyncReport report, lab_->install(policy_));
  EXPECT_GT(report.changes(), 0U);
  (void)tcpServer("eni-db1", 5432);
  auto now = lab_->exec("eni-bastion", std::string("timeout 10 nc -z -w 2 ") + kDb + " 5432");
  EXPECT_TRUE(now.ok()) << now.output;
}

}  // namespace
}  // namespace vpcguard::test

namespace vpcguard::test {
namespace {

// IPv6 with real packets: neighbour discovery is answered by the switch (no multicast reaches
// the other VMs), and the security group's ::/0 rule lets TCP through.
TEST(PolicyE2eIpv6, NeighbourDiscoveryAndTcpOverIpv6) {
  model::Policy policy = samplePolicy();
  VGT_ASSIGN_OR_FAIL(auto lab, PolicyLab::start(policy));
  VGT_ASSERT_OK(lab->install(policy));
  // The VMs' IPv6 addresses need duplicate address detection to finish first.
  ASSERT_TRUE(waitFor([&] { return !lab->exec("eni-web1", "ip -6 addr show dev eth0 tentative | grep -q inet6").ok(); },
                      std::chrono::seconds(10)));
  ASSERT_TRUE(waitFor([&] { return !lab->exec("eni-bastion", "ip -6 addr show dev eth0 tentative | grep -q inet6").ok(); },
                      std::chrono::seconds(10)));
  auto server = lab->exec("eni-web1", "(echo pong6 | timeout 30 nc -6 -l 80 > /dev/null 2>&1) > /dev/null 2>&1 &");
  ASSERT_TRUE(server.ok()) << server.output;
  ASSERT_TRUE(waitFor([&] { return lab->exec("eni-web1", "ss -ltnH 'sport = :80' | grep -q .").ok(); },
                      std::chrono::seconds(10)));
  auto client = lab->exec("eni-bastion", "echo hi | timeout 10 nc -6 -w 3 2600:1f18:abcd:1201::10 80");
  EXPECT_TRUE(client.ok()) << client.output;
  EXPECT_NE(client.output.find("pong6"), std::string::npos) << client.output;
  auto neigh = lab->exec("eni-bastion", "ip -6 neigh show 2600:1f18:abcd:1201::10");
  EXPECT_NE(neigh.output.find("02:00:00:00:01:0a"), std::string::npos)
      << "the switch's neighbour advertisement carries web1's MAC: " << neigh.output;
  // 443 is allowed from 0.0.0.0/0 only, not ::/0.
  auto blocked = lab->exec("eni-bastion", "timeout 10 nc -6 -z -w 2 2600:1f18:abcd:1201::10 443");
  EXPECT_FALSE(blocked.ok()) << blocked.output;
}

// IPv6 link-local between the host (the bridge's own port in ovs-vswitchd's namespace) and a VM
// works both ways, as the VM's link-local traffic to the host always did: each side's neighbour
// solicitation reaches the other (multicast), the advertisements come back (unicast), and so do
// pings. The host's link-local unicast to the VM is what DHCPv6 replies use too.
TEST(PolicyE2eIpv6, LinkLocalBetweenTheHostAndAVmWorksBothWays) {
  model::Policy policy = samplePolicy();
  VGT_ASSIGN_OR_FAIL(auto lab, PolicyLab::start(policy));
  VGT_ASSERT_OK(lab->install(policy));
  auto& sandbox = lab->sandbox();
  const std::string bridge = "br-int";
  auto up = sandbox.execInNetns("ip link set " + bridge + " up");
  ASSERT_TRUE(up.ok()) << up.output;
  // Both ends' link-local addresses need duplicate address detection to finish first.
  ASSERT_TRUE(waitFor([&] { return !lab->exec("eni-web1", "ip -6 addr show dev eth0 tentative | grep -q inet6").ok(); },
                      std::chrono::seconds(10)));
  std::string host_ll;
  ASSERT_TRUE(waitFor([&] {
    auto r = sandbox.execInNetns("ip -6 -o addr show dev " + bridge + " scope link -tentative");
    const auto at = r.output.find("fe80::");
    if (!r.ok() || at == std::string::npos) {
      return false;
    }
    host_ll = r.output.substr(at, r.output.find('/', at) - at);
    return true;
  }, std::chrono::seconds(10))) << "the bridge's port has no link-local address";
  const std::string web_ll = "fe80::ff:fe00:10a";  // EUI-64 of web1's MAC 02:00:00:00:01:0a

  auto from_host = sandbox.execInNetns("ping -6 -c2 -i0.2 -W2 " + web_ll + "%" + bridge);
  EXPECT_TRUE(from_host.ok()) << "host -> VM link-local:\n" << from_host.output;
  auto from_vm = lab->exec("eni-web1", "ping -6 -c2 -i0.2 -W2 " + host_ll + "%eth0");
  EXPECT_TRUE(from_vm.ok()) << "VM -> host link-local:\n" << from_vm.output;
  auto neigh = sandbox.execInNetns("ip -6 neigh show " + web_ll + " dev " + bridge);
  EXPECT_NE(neigh.output.find("02:00:00:00:01:0a"), std::string::npos)
      << "the host learnt web1's MAC by neighbour discovery: " << neigh.output;
}

}  // namespace
}  // namespace vpcguard::test
