#pragma once
// Random policy models for property tests: shapes that validation mostly accepts (and now and
// then one it rejects, so that filters are exercised too). Used by policy_property_test.cpp and
// incremental_test.cpp.

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "translator/defaults.h"
#include "translator/model.h"

namespace vpcguard::test {

class ModelGenerator {
 public:
  explicit ModelGenerator(uint32_t seed) : rng_(seed) {}

  model::Policy next() {
    model::Policy p;
    p.vpc.id = "vpc-prop";
    p.vpc.cidr_blocks = {cidr("10.0.0.0/16")};
    const bool v6 = chance(0.5);
    if (v6) {
      p.vpc.ipv6_cidr_blocks = {cidr("2600:1f18:abcd:1200::/56")};
    }
    const int n_acls = uniform(0, 3);
    for (int i = 0; i < n_acls; ++i) {
      p.network_acls.push_back(acl(i, v6, i == 0 && chance(0.3)));
    }
    const int n_lists = uniform(0, 2);
    for (int i = 0; i < n_lists; ++i) {
      model::PrefixList pl;
      pl.id = "pl-" + std::to_string(i);
      const int n = uniform(0, 4);
      for (int j = 0; j < n; ++j) {
        pl.entries.push_back(cidr("172.16." + std::to_string(i * 16 + j) + ".0/24"));
      }
      pl.max_entries = n + uniform(1, 10);
      p.prefix_lists.push_back(pl);
    }
    const int n_subnets = uniform(1, 4);
    for (int i = 0; i < n_subnets; ++i) {
      model::Subnet s;
      s.id = "subnet-" + std::to_string(i);
      s.cidr_block = cidr("10.0." + std::to_string(i) + ".0/24");
      if (v6 && chance(0.7)) {
        s.ipv6_cidr_block = cidr("2600:1f18:abcd:12" + hex2(i) + "::/64");
      }
      if (n_acls > 0 && chance(0.6)) {
        s.network_acl_id = p.network_acls[static_cast<size_t>(uniform(0, n_acls - 1))].id;
      }
      p.subnets.push_back(s);
    }
    const int n_groups = uniform(0, 6);
    const bool own_default = n_groups > 0 && chance(0.3);
    std::vector<std::string> group_ids;
    for (int i = 0; i < n_groups; ++i) {
      group_ids.push_back("sg-" + std::to_string(i));
    }
    if (!own_default) {
      group_ids.push_back(std::string(model::kDefaultSecurityGroupId));
    }
    for (int i = 0; i < n_groups; ++i) {
      model::SecurityGroup g;
      g.id = group_ids[static_cast<size_t>(i)];
      g.name = own_default && i == 0 ? "default" : "group-" + std::to_string(i);
      g.is_default = own_default && i == 0;
      g.ingress = rules(group_ids, p.prefix_lists);
      g.egress = chance(0.3) ? allowAllEgressRules({}) : rules(group_ids, p.prefix_lists);
      p.security_groups.push_back(g);
    }
    const int n_enis = uniform(0, 10);
    for (int i = 0; i < n_enis; ++i) {
      model::NetworkInterface e;
      e.id = "eni-" + std::to_string(i);
      const auto& s = p.subnets[static_cast<size_t>(uniform(0, n_subnets - 1))];
      e.subnet_id = s.id;
      e.mac_address = "02:00:00:00:00:" + hex2(i);
      e.private_ip_addresses = {s.cidr_block.first().plus(10 + i)};
      if (chance(0.3)) {
        e.private_ip_addresses.push_back(s.cidr_block.first().plus(100 + i));
      }
      if (s.ipv6_cidr_block && chance(0.5)) {
        e.ipv6_addresses = {s.ipv6_cidr_block->first().plus(16 + i)};
      }
      const int n = uniform(0, std::min<int>(3, static_cast<int>(group_ids.size())));
      std::vector<std::string> ids = group_ids;
      std::shuffle(ids.begin(), ids.end(), rng_);
      e.security_group_ids.assign(ids.begin(), ids.begin() + n);
      if (chance(0.3)) {
        e.connection_tracking.tcp_established_timeout = uniform(60, 432000);
        e.connection_tracking.udp_timeout = uniform(30, 60);
        e.connection_tracking.udp_stream_timeout = uniform(60, 180);
      }
      e.source_dest_check = chance(0.8);
      p.network_interfaces.push_back(e);
    }
    // Now and then a mistake, so that the filter is exercised too.
    if (chance(0.2) && !p.network_interfaces.empty()) {
      p.network_interfaces.back().private_ip_addresses[0] =
          p.subnets[0].cidr_block.first().plus(uniform(0, 3));
    }
    return p;
  }

  // Public: the incremental property test mutates models with the same pieces.
  static Cidr cidr(const std::string& text) { return *Cidr::parse(text, false); }
  static std::string hex2(int v) {
    const char* digits = "0123456789abcdef";
    return {digits[(v >> 4) & 15], digits[v & 15]};
  }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  Cidr randomCidr(bool v6) {
    if (v6) {
      return cidr("2001:db8:" + hex2(uniform(0, 255)) + "::/" + std::to_string(uniform(0, 64)));
    }
    return cidr(std::to_string(uniform(0, 255)) + "." + std::to_string(uniform(0, 255)) + ".0.0/" +
                std::to_string(uniform(0, 32)));
  }

  int protocol() {
    const int choices[] = {model::kProtoAll,  model::kProtoTcp,    model::kProtoUdp,
                           model::kProtoIcmp, model::kProtoIcmpv6, 47};
    return choices[uniform(0, 5)];
  }

  std::vector<model::SecurityGroupRule> rules(const std::vector<std::string>& groups,
                                              const std::vector<model::PrefixList>& lists) {
    std::vector<model::SecurityGroupRule> out;
    const int n = uniform(0, 8);
    for (int i = 0; i < n; ++i) {
      out.push_back(rule(groups, lists));
    }
    return out;
  }

  model::SecurityGroupRule rule(const std::vector<std::string>& groups,
                                const std::vector<model::PrefixList>& lists) {
    {
      model::SecurityGroupRule r;
      r.ip_protocol = protocol();
      const int kind = uniform(0, 3);
      if (kind == 0 && !groups.empty()) {
        r.peer = model::GroupRef{
            groups[static_cast<size_t>(uniform(0, static_cast<int>(groups.size()) - 1))]};
      } else if (kind == 1 && !lists.empty()) {
        r.peer = model::PrefixListRef{
            lists[static_cast<size_t>(uniform(0, static_cast<int>(lists.size()) - 1))].id};
      } else {
        r.peer = randomCidr(r.ip_protocol == model::kProtoIcmpv6 ||
                            (r.ip_protocol != model::kProtoIcmp && chance(0.3)));
      }
      if (r.ip_protocol == model::kProtoTcp || r.ip_protocol == model::kProtoUdp) {
        const int from = uniform(0, 65535);
        r.ports = model::PortRange{from, uniform(from, 65535)};
      } else if (r.ip_protocol == model::kProtoIcmp || r.ip_protocol == model::kProtoIcmpv6) {
        const int type = uniform(-1, 255);
        r.icmp = model::IcmpTypeCode{type, type == -1 ? -1 : uniform(-1, 255)};
      }
      return r;
    }
  }

  model::NetworkAcl acl(int index, bool v6, bool is_default) {
    model::NetworkAcl a;
    a.id = "acl-" + std::to_string(index);
    a.is_default = is_default;
    std::set<std::pair<bool, int>> used;
    const int n = uniform(0, 20);
    for (int i = 0; i < n; ++i) {
      model::NetworkAclEntry e;
      e.egress = chance(0.5);
      e.rule_number = uniform(1, 32766);
      if (!used.emplace(e.egress, e.rule_number).second) {
        continue;
      }
      e.protocol = protocol();
      e.allow = chance(0.7);
      // icmp pairs with IPv4 blocks and icmpv6 with IPv6 ones (validation rejects the rest).
      const bool want_v6 = e.protocol == model::kProtoIcmpv6 ||
                           (e.protocol != model::kProtoIcmp && v6 && chance(0.3));
      if (want_v6 && !v6) {
        e.protocol = model::kProtoIcmp;
      }
      e.cidr = randomCidr(want_v6 && v6);
      if ((e.protocol == model::kProtoTcp || e.protocol == model::kProtoUdp) && chance(0.8)) {
        const int from = uniform(0, 65535);
        e.port_range = model::PortRange{from, uniform(from, 65535)};
      }
      if ((e.protocol == model::kProtoIcmp || e.protocol == model::kProtoIcmpv6) && chance(0.5)) {
        e.icmp_type_code = model::IcmpTypeCode{uniform(0, 255), uniform(-1, 255)};
      }
      if (std::count_if(a.entries.begin(), a.entries.end(),
                        [&](const auto& x) { return x.egress == e.egress; }) >= 20) {
        continue;
      }
      a.entries.push_back(e);
    }
    return a;
  }

  std::mt19937 rng_;
};

}  // namespace vpcguard::test
