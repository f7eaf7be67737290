#include "tests/harness/sample_policy.h"

#include <stdexcept>

namespace vpcguard::test {

IpAddress ip(const char* text) {
  auto r = IpAddress::parse(text);
  if (!r) {
    throw std::invalid_argument(r.error().message);
  }
  return *r;
}

Cidr cidr(const char* text) {
  auto r = Cidr::parse(text);
  if (!r) {
    throw std::invalid_argument(r.error().message);
  }
  return *r;
}

namespace {

model::SecurityGroupRule tcpFrom(int from, int to, model::Peer peer) {
  model::SecurityGroupRule r;
  r.ip_protocol = model::kProtoTcp;
  r.ports = model::PortRange{from, to};
  r.peer = std::move(peer);
  return r;
}

model::SecurityGroupRule allTo(const char* c) {
  model::SecurityGroupRule r;
  r.ip_protocol = model::kProtoAll;
  r.peer = cidr(c);
  return r;
}

}  // namespace

model::NetworkAclEntry naclEntry(int number, bool egress, int proto, bool allow, const char* c,
                                 std::optional<model::PortRange> ports) {
  model::NetworkAclEntry e;
  e.rule_number = number;
  e.egress = egress;
  e.protocol = proto;
  e.allow = allow;
  e.cidr = cidr(c);
  e.port_range = ports;
  return e;
}

model::Policy samplePolicy() {
  model::Policy p;
  p.vpc.id = "vpc-lab";
  p.vpc.account_id = "123456789012";
  p.vpc.region = "us-east-1";
  p.vpc.cidr_blocks = {cidr("10.0.0.0/16")};
  p.vpc.ipv6_cidr_blocks = {cidr("2600:1f18:abcd:1200::/56")};

  model::Subnet pub;
  pub.id = "subnet-public";
  pub.cidr_block = cidr("10.0.1.0/24");
  pub.ipv6_cidr_block = cidr("2600:1f18:abcd:1201::/64");
  pub.network_acl_id = "acl-default";
  model::Subnet priv;
  priv.id = "subnet-private";
  priv.cidr_block = cidr("10.0.2.0/24");
  priv.ipv6_cidr_block = cidr("2600:1f18:abcd:1202::/64");
  priv.network_acl_id = "acl-private";
  p.subnets = {pub, priv};

  const auto eni = [](const char* id, const char* subnet, const char* mac, const char* v4,
                      const char* v6, std::vector<std::string> groups) {
    model::NetworkInterface e;
    e.id = id;
    e.subnet_id = subnet;
    e.mac_address = mac;
    e.private_ip_addresses = {ip(v4)};
    e.ipv6_addresses = {ip(v6)};
    e.security_group_ids = std::move(groups);
    return e;
  };
  p.network_interfaces = {
      eni("eni-web1", "subnet-public", "02:00:00:00:01:0a", "10.0.1.10", "2600:1f18:abcd:1201::10",
          {"sg-web"}),
      eni("eni-bastion", "subnet-public", "02:00:00:00:01:14", "10.0.1.20",
          "2600:1f18:abcd:1201::20", {"sg-bastion"}),
      eni("eni-db1", "subnet-private", "02:00:00:00:02:0a", "10.0.2.10", "2600:1f18:abcd:1202::10",
          {"sg-db"}),
  };

  model::SecurityGroup def;
  def.id = "sg-default";
  def.name = "default";
  def.is_default = true;
  model::SecurityGroupRule self;
  self.peer = model::GroupRef{"sg-default"};
  def.ingress = {self};
  def.egress = {allTo("0.0.0.0/0"), allTo("::/0")};

  model::SecurityGroup web;
  web.id = "sg-web";
  web.name = "web";
  web.ingress = {tcpFrom(80, 80, cidr("0.0.0.0/0")), tcpFrom(443, 443, cidr("0.0.0.0/0")),
                 tcpFrom(80, 80, cidr("::/0")), tcpFrom(22, 22, model::GroupRef{"sg-bastion"})};
  web.egress = {allTo("0.0.0.0/0"), allTo("::/0")};

  model::SecurityGroup bastion;
  bastion.id = "sg-bastion";
  bastion.name = "bastion";
  bastion.ingress = {tcpFrom(22, 22, cidr("0.0.0.0/0"))};
  bastion.egress = {allTo("0.0.0.0/0"), allTo("::/0")};

  model::SecurityGroup db;
  db.id = "sg-db";
  db.name = "db";
  model::SecurityGroupRule icmp;
  icmp.ip_protocol = model::kProtoIcmp;
  icmp.icmp = model::IcmpTypeCode{-1, -1};
  icmp.peer = cidr("10.0.0.0/16");
  db.ingress = {tcpFrom(5432, 5432, model::GroupRef{"sg-web"}),
                tcpFrom(22, 22, model::GroupRef{"sg-bastion"}), icmp};
  db.egress = {allTo("0.0.0.0/0"), allTo("::/0")};
  p.security_groups = {def, web, bastion, db};

  model::NetworkAcl acl_default;
  acl_default.id = "acl-default";
  acl_default.is_default = true;
  acl_default.entries = {naclEntry(100, false, model::kProtoAll, true, "0.0.0.0/0"),
                         naclEntry(100, true, model::kProtoAll, true, "0.0.0.0/0"),
                         naclEntry(101, false, model::kProtoAll, true, "::/0"),
                         naclEntry(101, true, model::kProtoAll, true, "::/0")};
  model::NetworkAcl acl_private;
  acl_private.id = "acl-private";
  acl_private.entries = {
      naclEntry(100, false, model::kProtoTcp, true, "10.0.1.0/24", model::PortRange{5432, 5432}),
      naclEntry(110, false, model::kProtoTcp, true, "10.0.1.0/24", model::PortRange{22, 22}),
      naclEntry(120, false, model::kProtoTcp, true, "0.0.0.0/0", model::PortRange{1024, 65535}),
      naclEntry(130, false, model::kProtoIcmp, true, "10.0.0.0/16"),
      naclEntry(100, true, model::kProtoTcp, true, "10.0.1.0/24", model::PortRange{1024, 65535}),
      naclEntry(110, true, model::kProtoIcmp, true, "10.0.0.0/16"),
  };
  p.network_acls = {acl_default, acl_private};
  return p;
}

}  // namespace vpcguard::test
