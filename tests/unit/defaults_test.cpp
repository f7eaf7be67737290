// resolveDefaults(): AWS's implicit default group and NACL become explicit objects.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

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

// --- traffic mirror sessions: virtual network ids ------------------------------------------

model::TrafficMirrorSession session(const std::string& id,
                                    std::optional<uint32_t> vni = std::nullopt) {
  model::TrafficMirrorSession s;
  s.id = id;
  s.virtual_network_id = vni;
  return s;
}

// id -> assigned VNI, after resolveDefaults().
std::map<std::string, uint32_t> vnis(std::vector<model::TrafficMirrorSession> sessions) {
  model::Policy p = minimal(false);
  p.traffic_mirror_sessions = std::move(sessions);
  auto resolved = resolveDefaults(std::move(p));
  EXPECT_TRUE(resolved.has_value()) << resolved.error().message;
  std::map<std::string, uint32_t> out;
  if (resolved) {
    for (const auto& s : resolved->traffic_mirror_sessions) {
      EXPECT_TRUE(s.virtual_network_id.has_value()) << s.id;
      out[s.id] = s.virtual_network_id.value_or(0);
    }
  }
  return out;
}

// Two ids whose hashes are equal (a birthday search: 24 bits collide within a few thousand).
std::pair<std::string, std::string> collidingIds() {
  std::map<uint32_t, std::string> seen;
  for (int i = 0;; ++i) {
    const std::string id = "tms-" + std::to_string(i);
    auto [it, inserted] = seen.emplace(virtualNetworkIdHash(id), id);
    if (!inserted) {
      return {it->second, id};
    }
  }
}

TEST(ResolveDefaults, VniHashIs24BitFnv1a) {
  // FNV-1a 32 of "" is 0x811c9dc5 and of "a" 0xe40c292c; xor-folded: high byte ^ low 24 bits.
  EXPECT_EQ(virtualNetworkIdHash(""), 0x1c9dc5u ^ 0x81u);
  EXPECT_EQ(virtualNetworkIdHash("a"), 0x0c292cu ^ 0xe4u);
  for (const char* id : {"tms-1", "tms-0123456789abcdef0", "x"}) {
    EXPECT_LE(virtualNetworkIdHash(id), 0xffffffu) << id;
  }
}

TEST(ResolveDefaults, SessionsWithoutVniGetUniqueOnes) {
  std::vector<model::TrafficMirrorSession> sessions;
  for (int i = 0; i < 500; ++i) {
    sessions.push_back(session("tms-" + std::to_string(i)));
  }
  const auto assigned = vnis(sessions);
  ASSERT_EQ(assigned.size(), 500u);
  std::set<uint32_t> distinct;
  for (const auto& [id, vni] : assigned) {
    EXPECT_LE(vni, 0xffffffu) << id;
    distinct.insert(vni);
  }
  EXPECT_EQ(distinct.size(), 500u);
  // Without collisions, each is its id's hash.
  EXPECT_EQ(vnis({session("tms-only")}).at("tms-only"), virtualNetworkIdHash("tms-only"));
}

TEST(ResolveDefaults, VniDoesNotDependOnSessionOrder) {
  const auto [first, second] = collidingIds();
  std::vector<model::TrafficMirrorSession> sessions = {session("tms-b"), session(second),
                                                       session("tms-a"), session(first)};
  const auto forward = vnis(sessions);
  std::reverse(sessions.begin(), sessions.end());
  EXPECT_EQ(vnis(sessions), forward);
  // Colliding hashes: the id that sorts first keeps the hash, the other takes the next value.
  const uint32_t hash = virtualNetworkIdHash(first);
  const auto& [low, high] = first < second ? std::pair(first, second) : std::pair(second, first);
  EXPECT_EQ(forward.at(low), hash);
  EXPECT_EQ(forward.at(high), (hash + 1) & 0xffffffu);
}

TEST(ResolveDefaults, VniSkipsExplicitOnesAndKeepsThem) {
  const uint32_t hash = virtualNetworkIdHash("tms-auto");
  // The hash and the value after it are taken by explicit VNIs (of sessions sorting before and
  // after tms-auto): the search goes on to the next free value.
  const auto assigned = vnis({session("tms-x", hash), session("tms-auto"),
                              session("tms-a", (hash + 1) & 0xffffffu), session("tms-z", 7)});
  EXPECT_EQ(assigned.at("tms-x"), hash);
  EXPECT_EQ(assigned.at("tms-a"), (hash + 1) & 0xffffffu);
  EXPECT_EQ(assigned.at("tms-z"), 7u);
  EXPECT_EQ(assigned.at("tms-auto"), (hash + 2) & 0xffffffu);
  // Two explicit equal VNIs stay as written (AWS allows them).
  const auto twice = vnis({session("tms-1", 9), session("tms-2", 9)});
  EXPECT_EQ(twice.at("tms-1"), 9u);
  EXPECT_EQ(twice.at("tms-2"), 9u);
}

TEST(ResolveDefaults, VniSearchWrapsAroundAt24Bits) {
  const std::string id = "tms-1060597";  // found by search: its hash is near the top
  const uint32_t hash = virtualNetworkIdHash(id);
  ASSERT_EQ(hash, 0xfffffdu);
  // Every value from the hash to the top is taken: the next free one is 0.
  std::vector<model::TrafficMirrorSession> sessions = {session(id)};
  for (uint32_t v = hash; v <= 0xffffffu; ++v) {
    sessions.push_back(session("tms-taken-" + std::to_string(v), v));
  }
  EXPECT_EQ(vnis(sessions).at(id), 0u);
}

}  // namespace
}  // namespace vpcguard
