// resolveDefaults(): AWS's implicit default group and NACL become explicit objects.

#include <algorithm>
#include <string>
#include <variant>

#include <gtest/gtest.h>

#include "daemon/config_loader.h"
#include "translator/defaults.h"
#include "translator/validate.h"

namespace vpcguard {
namespace {

Cidr cidr(const char* text) { return *Cidr::parse(text); }

model::Policy minimal(bool with_ipv6) {
  model::Policy p;
  p.vpc.id = "vpc-1";
  p.vpc.cidr_blocks = {cidr("10.0.0.0/16")};
  if (with_ipv6) {
    p.vpc.ipv6_cidr_blocks = {cidr("2600:1f18:abcd:1200::/56")};
  }
  model::Subnet s;
  s.id = "s1";
  s.cidr_block = cidr("10.0.1.0/24");
  p.subnets.push_back(s);
  model::NetworkInterface eni;
  eni.id = "eni-1";
  eni.subnet_id = "s1";
  eni.mac_address = "02:00:00:00:00:01";
  eni.private_ip_addresses = {*IpAddress::parse("10.0.1.10")};
  p.network_interfaces.push_back(eni);
  return p;
}

const model::SecurityGroup* findGroup(const model::Policy& p, std::string_view id) {
  auto it = std::find_if(p.security_groups.begin(), p.security_groups.end(),
                         [&](const auto& g) { return g.id == id; });
  return it == p.security_groups.end() ? nullptr : &*it;
}
const model::NetworkAcl* findAcl(const model::Policy& p, std::string_view id) {
  auto it = std::find_if(p.network_acls.begin(), p.network_acls.end(),
                         [&](const auto& a) { return a.id == id; });
  return it == p.network_acls.end() ? nullptr : &*it;
}

TEST(ResolveDefaults, AddsTheDefaultGroupAsAwsDefinesIt) {
  auto p = resolveDefaults(minimal(false));
  ASSERT_TRUE(p.has_value()) << p.error().message;
  const auto* g = findGroup(*p, model::kDefaultSecurityGroupId);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->is_default);
  EXPECT_EQ(g->name, "default");
  // Ingress: all traffic from members of the group itself.
  ASSERT_EQ(g->ingress.size(), 1u);
  EXPECT_EQ(g->ingress[0].ip_protocol, model::kProtoAll);
  EXPECT_EQ(std::get<model::GroupRef>(g->ingress[0].peer).group_id, g->id);
  // Egress: all to 0.0.0.0/0 and ::/0.
  ASSERT_EQ(g->egress.size(), 2u);
  EXPECT_EQ(std::get<Cidr>(g->egress[0].peer).toString(), "0.0.0.0/0");
  EXPECT_EQ(std::get<Cidr>(g->egress[1].peer).toString(), "::/0");
}

TEST(ResolveDefaults, DefaultNaclAllowsAllIpv4OnlyWithoutIpv6Blocks) {
  auto p = resolveDefaults(minimal(false));
  ASSERT_TRUE(p.has_value());
  const auto* acl = findAcl(*p, model::kDefaultNetworkAclId);
  ASSERT_NE(acl, nullptr);
  EXPECT_TRUE(acl->is_default);
  ASSERT_EQ(acl->entries.size(), 2u);  // rule 100 in and out
  for (const auto& e : acl->entries) {
    EXPECT_EQ(e.rule_number, 100);
    EXPECT_TRUE(e.allow);
    EXPECT_EQ(e.protocol, model::kProtoAll);
    EXPECT_EQ(e.cidr.toString(), "0.0.0.0/0");
    EXPECT_FALSE(e.port_range.has_value());
  }
  EXPECT_NE(acl->entries[0].egress, acl->entries[1].egress);
}

TEST(ResolveDefaults, DefaultNaclAllowsIpv6WhenTheVpcHasIpv6) {
  auto p = resolveDefaults(minimal(true));
  ASSERT_TRUE(p.has_value());
  const auto* acl = findAcl(*p, model::kDefaultNetworkAclId);
  ASSERT_NE(acl, nullptr);
  ASSERT_EQ(acl->entries.size(), 4u);
  int v6 = 0;
  for (const auto& e : acl->entries) {
    if (e.cidr.family() == IpFamily::kV6) {
      ++v6;
      EXPECT_EQ(e.rule_number, 101);  // AWS's number for the IPv6 allow-all
      EXPECT_EQ(e.cidr.toString(), "::/0");
    }
  }
  EXPECT_EQ(v6, 2);
}

TEST(ResolveDefaults, FillsInterfacesAndSubnets) {
  auto in = minimal(false);
  model::Subnet s2;
  s2.id = "s2";
  s2.cidr_block = cidr("10.0.2.0/24");
  s2.network_acl_id = "acl-custom";
  in.subnets.push_back(s2);
  model::NetworkAcl custom;
  custom.id = "acl-custom";
  in.network_acls.push_back(custom);
  model::SecurityGroup one;
  one.id = "sg-1";
  one.name = "one";
  in.security_groups.push_back(one);
  auto eni2 = in.network_interfaces[0];
  eni2.id = "eni-2";
  eni2.security_group_ids = {"sg-1"};
  in.network_interfaces.push_back(eni2);

  auto p = resolveDefaults(in);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->network_interfaces[0].security_group_ids,
            std::vector<std::string>{std::string(model::kDefaultSecurityGroupId)});
  EXPECT_EQ(p->network_interfaces[1].security_group_ids, std::vector<std::string>{"sg-1"});
  EXPECT_EQ(p->subnets[0].network_acl_id, model::kDefaultNetworkAclId);
  EXPECT_EQ(p->subnets[1].network_acl_id, "acl-custom");
  // A new custom NACL stays empty: it denies everything (the `*` rule is the table miss).
  EXPECT_TRUE(findAcl(*p, "acl-custom")->entries.empty());
}

TEST(ResolveDefaults, GroupNamedDefaultOverridesTheDefaultGroup) {
  auto in = minimal(false);
  model::SecurityGroup mine;
  mine.id = "sg-0abc";
  mine.name = "default";
  in.security_groups.push_back(mine);
  auto p = resolveDefaults(in);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(findGroup(*p, model::kDefaultSecurityGroupId), nullptr);
  ASSERT_EQ(p->security_groups.size(), 1u);
  EXPECT_TRUE(p->security_groups[0].is_default);
  EXPECT_TRUE(p->security_groups[0].ingress.empty());  // exactly the rules written
  EXPECT_EQ(p->network_interfaces[0].security_group_ids, std::vector<std::string>{"sg-0abc"});
}

TEST(ResolveDefaults, NaclWithIsDefaultOverridesTheDefaultNacl) {
  auto in = minimal(false);
  model::NetworkAcl mine;
  mine.id = "acl-0abc";
  mine.is_default = true;
  in.network_acls.push_back(mine);
  auto p = resolveDefaults(in);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(findAcl(*p, model::kDefaultNetworkAclId), nullptr);
  EXPECT_EQ(p->subnets[0].network_acl_id, "acl-0abc");
}

TEST(ResolveDefaults, RejectsTwoDefaults) {
  auto in = minimal(false);
  for (const char* id : {"a1", "a2"}) {
    model::NetworkAcl acl;
    acl.id = id;
    acl.is_default = true;
    in.network_acls.push_back(acl);
  }
  auto p = resolveDefaults(in);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message.find("both the VPC's default network ACL"), std::string::npos);
}

TEST(ResolveDefaults, ResolvedPolicyStillValidates) {
  auto p = resolveDefaults(minimal(true));
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(validatePolicy(*p).empty());
}

TEST(ResolveDefaults, ConfigMayReferenceTheImplicitDefaultGroup) {
  auto result = config::loadPolicyFromDocuments({config::Document{"d.toml", R"(
[vpc]
id = "vpc-1"
cidr_blocks = ["10.0.0.0/16"]

[[security_groups]]
id = "sg-app"
ingress = [{ ip_protocol = "tcp", from_port = 8080, to_port = 8080, referenced_group_id = "sg-default" }]
)"}});
  ASSERT_TRUE(result.has_value());
  EXPECT_NE(findGroup(*result, model::kDefaultSecurityGroupId), nullptr);
}

}  // namespace
}  // namespace vpcguard
