#include "tests/harness/random_policy.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "explain/describe.h"
#include "translator/defaults.h"
#include "translator/diagnostic.h"
#include "translator/validate.h"

namespace vpcguard::test {

size_t Rng::weighted(std::initializer_list<int> weights) {
  int roll = uniform(1, std::accumulate(weights.begin(), weights.end(), 0));
  size_t index = 0;
  for (int w : weights) {
    if (roll <= w) {
      return index;
    }
    roll -= w;
    ++index;
  }
  return weights.size() - 1;
}

namespace {

Cidr parseCidr(const std::string& text) { return *Cidr::parse(text); }
IpAddress parseIp(const std::string& text) { return *IpAddress::parse(text); }

// The block of length `len` that holds `a` (host bits cleared, so validation finds it canonical).
Cidr blockOf(const IpAddress& a, int len) {
  Cidr c{a, len};
  for (int bit = len; bit < a.bitWidth(); ++bit) {
    auto& byte = c.address.bytes[static_cast<size_t>(bit / 8)];
    byte = static_cast<uint8_t>(byte & ~(0x80U >> static_cast<unsigned>(bit % 8)));
  }
  return c;
}

std::string hex2(int v) {
  const char* digits = "0123456789abcdef";
  return {digits[(v >> 4) & 15], digits[v & 15]};
}

constexpr const char* kVpcV4 = "10.0.0.0/16";
constexpr const char* kVpcV6 = "2600:1f18:abcd:1200::/56";
// Subnets take their third octet (and IPv6 subnet byte) from 1..200; 250 stays free, so
// 10.0.250.0/24 and 2600:1f18:abcd:12fa::/64 are inside the VPC but in no subnet.
constexpr int kFreeSubnetByte = 250;
const std::vector<int> kServicePorts = {22, 53, 80, 123, 443, 3306, 5432, 6379, 8080, 8443};

bool isPortProtocol(int p) { return p == model::kProtoTcp || p == model::kProtoUdp; }
bool isIcmpProtocol(int p) { return p == model::kProtoIcmp || p == model::kProtoIcmpv6; }

// Builds one policy; each part reads what the parts before it made.
class PolicyBuilder {
 public:
  explicit PolicyBuilder(uint32_t seed) : rng_(seed) {}

  model::Policy build() {
    p_.vpc.id = "vpc-rand";
    p_.vpc.account_id = "123456789012";
    p_.vpc.region = "us-east-1";
    p_.vpc.cidr_blocks = {parseCidr(kVpcV4)};
    p_.vpc.ipv6_cidr_blocks = {parseCidr(kVpcV6)};
    p_.vpc.strict_revocation = rng_.chance(0.25);
    std::vector<int> ports = kServicePorts;
    std::shuffle(ports.begin(), ports.end(), rng_.engine());
    ports.resize(static_cast<size_t>(rng_.uniform(3, 5)));
    ports_ = ports;
    group_ids_.clear();
    // Now and then more groups than an interface has slots (translator/pipeline.h, "Group
    // slots"), so some interfaces match some groups' rules by their index instead.
    const bool many_groups = rng_.chance(0.2);
    const int n_groups = many_groups ? rng_.uniform(6, 8) : rng_.uniform(2, 4);
    if (many_groups) {
      p_.quotas.security_groups_per_interface = 16;  // AWS's highest; its default is 5
    }
    for (int i = 0; i < n_groups; ++i) {
      group_ids_.push_back("sg-" + std::to_string(i));
    }
    const int n_acls = rng_.uniform(1, 2);
    for (int i = 0; i < n_acls; ++i) {
      acl_ids_.push_back(std::string("acl-") + static_cast<char>('a' + i));
    }
    subnets();
    interfaces();
    prefixLists();
    groups();
    acls();
    return p_;
  }

 private:
  void subnets() {
    std::vector<int> bytes(200);
    std::iota(bytes.begin(), bytes.end(), 1);
    std::shuffle(bytes.begin(), bytes.end(), rng_.engine());
    const int n = rng_.uniform(2, 3);
    for (int i = 0; i < n; ++i) {
      const int b = bytes[static_cast<size_t>(i)];
      model::Subnet s;
      s.id = "subnet-" + std::to_string(i);
      s.cidr_block = parseCidr("10.0." + std::to_string(b) + ".0/24");
      if (rng_.chance(0.8)) {
        s.ipv6_cidr_block = parseCidr("2600:1f18:abcd:12" + hex2(b) + "::/64");
      }
      // Some on the default NACL (empty until resolveDefaults()), the rest on a custom one.
      if (rng_.chance(0.6)) {
        s.network_acl_id = rng_.pick(acl_ids_);
      }
      p_.subnets.push_back(s);
    }
  }

  void interfaces() {
    const int n = rng_.uniform(3, 6);
    std::map<std::string, std::set<int>> used;  // subnet -> host offsets taken
    const auto freshOffset = [&](const std::string& subnet, int lo, int hi) {
      int offset = 0;
      do {
        offset = rng_.uniform(lo, hi);
      } while (!used[subnet].insert(offset).second);
      return offset;
    };
    for (int i = 0; i < n; ++i) {
      model::NetworkInterface e;
      e.id = "eni-" + std::to_string(i);
      // The first ones cover every subnet, so cross-subnet traffic always exists.
      const auto& s =
          i < std::ssize(p_.subnets) ? p_.subnets[static_cast<size_t>(i)] : rng_.pick(p_.subnets);
      e.subnet_id = s.id;
      e.mac_address = "02:00:00:00:00:" + hex2(0x10 + i);
      // .0-.3 are reserved and .255 is the broadcast address.
      e.private_ip_addresses = {s.cidr_block.first().plus(freshOffset(s.id, 4, 254))};
      if (rng_.chance(0.3)) {
        e.private_ip_addresses.push_back(s.cidr_block.first().plus(freshOffset(s.id, 4, 254)));
      }
      if (s.ipv6_cidr_block && rng_.chance(0.7)) {
        e.ipv6_addresses = {s.ipv6_cidr_block->first().plus(freshOffset(s.id + "/6", 4, 0xfff))};
      }
      if (!rng_.chance(0.12)) {
        std::vector<std::string> ids = group_ids_;
        std::shuffle(ids.begin(), ids.end(), rng_.engine());
        const int most = std::min(rng_.chance(0.5) ? 7 : 3, static_cast<int>(ids.size()));
        ids.resize(static_cast<size_t>(rng_.uniform(1, most)));
        if (rng_.chance(0.1)) {
          ids.emplace_back(model::kDefaultSecurityGroupId);
        }
        e.security_group_ids = ids;
      }
      e.source_dest_check = !rng_.chance(0.08);
      p_.network_interfaces.push_back(e);
    }
  }

  void prefixLists() {
    const auto makeList = [&](const std::string& id, bool v6) {
      model::PrefixList pl;
      pl.id = id;
      pl.name = id + "-name";
      const int n = rng_.uniform(1, 3);
      for (int i = 0; i < n; ++i) {
        const Cidr c = peerCidr(v6);
        if (std::find(pl.entries.begin(), pl.entries.end(), c) == pl.entries.end()) {
          pl.entries.push_back(c);
        }
      }
      pl.max_entries = static_cast<int>(pl.entries.size()) + rng_.uniform(0, 3);
      p_.prefix_lists.push_back(pl);
    };
    if (rng_.chance(0.5)) {
      makeList("pl-v4", false);
    }
    if (rng_.chance(0.2)) {
      makeList("pl-v6", true);
    }
  }

  // A CIDR a rule or NACL entry may name: the whole internet, the VPC, a subnet or half of one,
  // one interface address, a block of random length around one, or somewhere outside.
  Cidr peerCidr(bool v6) {
    std::vector<IpAddress> hosts;
    for (const auto& e : p_.network_interfaces) {
      const auto& list = v6 ? e.ipv6_addresses : e.private_ip_addresses;
      hosts.insert(hosts.end(), list.begin(), list.end());
    }
    std::vector<Cidr> blocks;
    for (const auto& s : p_.subnets) {
      if (!v6) {
        blocks.push_back(s.cidr_block);
      } else if (s.ipv6_cidr_block) {
        blocks.push_back(*s.ipv6_cidr_block);
      }
    }
    const int width = v6 ? 128 : 32;
    switch (rng_.weighted({20, 12, 15, 6, 12, 14, 11, 10})) {
      case 0:
        return parseCidr(v6 ? "::/0" : "0.0.0.0/0");
      case 1:
        return parseCidr(v6 ? kVpcV6 : kVpcV4);
      case 2:
        if (!blocks.empty()) {
          return rng_.pick(blocks);
        }
        break;
      case 3:
        if (!blocks.empty()) {
          // One half of a subnet: the prefix one longer, with or without its next bit.
          Cidr half = rng_.pick(blocks);
          if (rng_.chance(0.5)) {
            auto& byte = half.address.bytes[static_cast<size_t>(half.prefix_len / 8)];
            byte =
                static_cast<uint8_t>(byte | (0x80U >> static_cast<unsigned>(half.prefix_len % 8)));
          }
          half.prefix_len += 1;
          return half;
        }
        break;
      case 4:
        if (!hosts.empty()) {
          return blockOf(rng_.pick(hosts), width);
        }
        break;
      case 5:
        if (!hosts.empty()) {
          return blockOf(rng_.pick(hosts), v6 ? rng_.uniform(48, 128) : rng_.uniform(8, 32));
        }
        break;
      case 6:
        return rng_.pick(v6 ? std::vector<Cidr>{parseCidr("2001:db8::/32"),
                                                parseCidr("2600:1f18:abcd:1300::/56"),
                                                parseCidr("2000::/3")}
                            : std::vector<Cidr>{parseCidr("192.168.0.0/16"),
                                                parseCidr("172.16.0.0/12"), parseCidr("8.8.8.0/24"),
                                                parseCidr("10.0.0.0/8"), parseCidr("10.1.0.0/16")});
      default:
        break;
    }
    // A block of random length anywhere.
    IpAddress a = parseIp(v6 ? "2600:1f18:abcd:1200::" : "10.0.0.0");
    // Only the family's bytes: an IPv4 address keeps bytes 4..15 zero, as parse() makes it.
    for (int i = 0; i < width / 8; ++i) {
      a.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(rng_.uniform(0, 255));
    }
    if (v6) {
      // Mostly near the VPC, so it sometimes covers an interface.
      const IpAddress vpc = parseIp("2600:1f18:abcd:1200::");
      std::copy_n(vpc.bytes.begin(), rng_.uniform(0, 7), a.bytes.begin());
    }
    return blockOf(a, rng_.uniform(0, width));
  }

  model::PortRange portRange() {
    const int service = rng_.pick(ports_);
    switch (rng_.weighted({40, 15, 10, 10, 5, 20})) {
      case 0:
        return {service, service};
      case 1:
        return {std::max(0, service - rng_.uniform(0, 50)),
                std::min(65535, service + rng_.uniform(0, 50))};
      case 2:
        return {1024, 65535};
      case 3:
        return {0, 65535};
      case 4:
        return {32768, 65535};
      default: {
        const int from = rng_.uniform(0, 65535);
        return {from, std::min(65535, from + rng_.uniform(0, 5000))};
      }
    }
  }

  model::IcmpTypeCode icmpTypeCode(bool v6) {
    const std::vector<model::IcmpTypeCode> choices =
        v6 ? std::vector<model::IcmpTypeCode>{{-1, -1}, {128, -1}, {129, -1}, {1, -1},
                                              {1, 4},   {2, 0},    {3, -1},   {128, 0}}
           : std::vector<model::IcmpTypeCode>{{-1, -1}, {8, -1}, {0, -1}, {3, -1},
                                              {3, 4},   {11, 0}, {8, 0},  {13, -1}};
    if (rng_.chance(0.1)) {
      return {rng_.uniform(0, 255), rng_.chance(0.5) ? -1 : rng_.uniform(0, 255)};
    }
    return rng_.pick(choices);
  }

  int protocol() {
    return std::vector<int>{
        model::kProtoTcp,    model::kProtoUdp, model::kProtoIcmp,
        model::kProtoIcmpv6, model::kProtoAll, 47}[rng_.weighted({35, 18, 12, 6, 14, 5})];
  }

  model::SecurityGroupRule sgRule() {
    model::SecurityGroupRule r;
    r.ip_protocol = protocol();
    if (isPortProtocol(r.ip_protocol)) {
      r.ports = portRange();
    }
    const bool icmp = isIcmpProtocol(r.ip_protocol);
    const bool v6 = r.ip_protocol == model::kProtoIcmpv6 ||
                    (r.ip_protocol != model::kProtoIcmp && rng_.chance(0.25));
    if (icmp && rng_.chance(0.85)) {
      r.icmp = icmpTypeCode(v6);
    }
    switch (rng_.weighted({65, 25, 10})) {
      case 1: {
        std::vector<std::string> groups = group_ids_;
        groups.emplace_back(model::kDefaultSecurityGroupId);
        r.peer = model::GroupRef{rng_.pick(groups)};
        return r;
      }
      case 2:
        for (const auto& pl : p_.prefix_lists) {
          if ((pl.id == "pl-v6") == v6) {
            r.peer = model::PrefixListRef{pl.id};
            return r;
          }
        }
        break;
      default:
        break;
    }
    r.peer = peerCidr(v6);
    return r;
  }

  // AWS rejects duplicate rules: a rule equal to one already there is left out.
  static void addUnique(std::vector<model::SecurityGroupRule>& rules, model::SecurityGroupRule r) {
    const bool duplicate = std::any_of(rules.begin(), rules.end(), [&](const auto& o) {
      return o.ip_protocol == r.ip_protocol && o.ports == r.ports && o.icmp == r.icmp &&
             o.peer == r.peer;
    });
    if (!duplicate) {
      rules.push_back(std::move(r));
    }
  }

  std::vector<model::SecurityGroupRule> sgRules(int lo, int hi) {
    std::vector<model::SecurityGroupRule> out;
    const int n = rng_.uniform(lo, hi);
    for (int i = 0; i < n; ++i) {
      addUnique(out, sgRule());
    }
    return out;
  }

  void groups() {
    for (const auto& id : group_ids_) {
      model::SecurityGroup g;
      g.id = id;
      g.name = "group-" + id;
      g.ingress = sgRules(1, 6);
      // Now and then a broad one (all from the VPC or from a group), so that much traffic
      // inside the VPC gets through and the later stages decide.
      if (rng_.chance(0.35)) {
        model::SecurityGroupRule broad;
        broad.ip_protocol = rng_.chance(0.5) ? model::kProtoAll : model::kProtoTcp;
        if (broad.ip_protocol == model::kProtoTcp) {
          broad.ports = model::PortRange{0, 65535};
        }
        if (rng_.chance(0.5)) {
          broad.peer = parseCidr(kVpcV4);
        } else {
          broad.peer = model::GroupRef{rng_.pick(group_ids_)};
        }
        addUnique(g.ingress, broad);
      }
      g.egress = rng_.chance(0.4) ? allowAllEgressRules({}) : sgRules(rng_.chance(0.05) ? 0 : 1, 5);
      p_.security_groups.push_back(g);
    }
  }

  model::NetworkAclEntry naclEntry(bool egress, int rule_number) {
    model::NetworkAclEntry e;
    e.egress = egress;
    e.rule_number = rule_number;
    e.allow = rng_.chance(0.65);
    e.protocol = protocol();
    const bool v6 =
        e.protocol == model::kProtoIcmpv6 || (e.protocol != model::kProtoIcmp && rng_.chance(0.2));
    e.cidr = peerCidr(v6);
    if (isPortProtocol(e.protocol) && rng_.chance(0.75)) {
      e.port_range = rng_.chance(0.3) ? model::PortRange{1024, 65535} : portRange();
    }
    if (isIcmpProtocol(e.protocol) && rng_.chance(0.5)) {
      e.icmp_type_code = icmpTypeCode(v6);
    }
    return e;
  }

  void acls() {
    for (const auto& id : acl_ids_) {
      model::NetworkAcl acl;
      acl.id = id;
      for (const bool egress : {false, true}) {
        std::set<int> numbers;
        const int n = rng_.uniform(1, 10);
        for (int i = 0; i < n; ++i) {
          const int number = rng_.chance(0.6) ? 10 * rng_.uniform(1, 50) : rng_.uniform(1, 32766);
          if (numbers.insert(number).second) {
            acl.entries.push_back(naclEntry(egress, number));
          }
        }
        // Often a catch-all allow behind them, so more than the first entries decide.
        if (rng_.chance(0.6)) {
          for (const char* all : {"0.0.0.0/0", "::/0"}) {
            model::NetworkAclEntry e;
            e.egress = egress;
            e.rule_number = 32700;
            while (!numbers.insert(e.rule_number).second) {
              ++e.rule_number;
            }
            e.allow = true;
            e.protocol = model::kProtoAll;
            e.cidr = parseCidr(all);
            acl.entries.push_back(e);
          }
        }
      }
      std::shuffle(acl.entries.begin(), acl.entries.end(), rng_.engine());
      p_.network_acls.push_back(acl);
    }
  }

  Rng rng_;
  model::Policy p_;
  std::vector<int> ports_;
  std::vector<std::string> group_ids_;
  std::vector<std::string> acl_ids_;
};

}  // namespace

Result<model::Policy> randomPolicy(uint32_t seed) {
  model::Policy policy = PolicyBuilder(seed).build();
  const auto diagnostics = validatePolicy(policy);
  if (!diagnostics.empty()) {
    std::string message = "random policy of seed " + std::to_string(seed) + " is invalid:";
    for (const auto& d : diagnostics) {
      message += "\n  " + formatDiagnostic(d);
    }
    return makeError(message);
  }
  return resolveDefaults(std::move(policy));
}

// ---- packets ----------------------------------------------------------------------------------

RandomPackets::RandomPackets(const model::Policy& policy, uint32_t seed,
                             RandomPacketOptions options)
    : policy_(policy), rng_(seed), options_(options) {
  std::set<int> ports;
  const auto addRange = [&](const model::PortRange& r) {
    for (int p : {r.from - 1, r.from, r.to, r.to + 1}) {
      if (p >= 1 && p <= 65535) {
        ports.insert(p);
      }
    }
  };
  std::set<int> types;
  const auto addType = [&](const std::optional<model::IcmpTypeCode>& t) {
    if (t && t->type >= 0) {
      types.insert(t->type);
    }
  };
  for (const auto& g : policy.security_groups) {
    for (const auto* rules : {&g.ingress, &g.egress}) {
      for (const auto& r : *rules) {
        if (r.ports) {
          addRange(*r.ports);
        }
        addType(r.icmp);
      }
    }
  }
  for (const auto& acl : policy.network_acls) {
    for (const auto& e : acl.entries) {
      if (e.port_range) {
        addRange(*e.port_range);
      }
      addType(e.icmp_type_code);
    }
  }
  ports_.assign(ports.begin(), ports.end());
  icmp_types_.assign(types.begin(), types.end());
}

int RandomPackets::port() {
  switch (rng_.weighted({65, 10, 25})) {
    case 0:
      if (!ports_.empty()) {
        return rng_.pick(ports_);
      }
      [[fallthrough]];
    case 1:
      return rng_.pick(kServicePorts);
    default:
      return rng_.uniform(1, 65535);
  }
}

std::string RandomPackets::protocolSpec(bool v6, bool& echo) {
  echo = false;
  const size_t kind =
      options_.sendable ? rng_.weighted({35, 20, 45, 0}) : rng_.weighted({45, 25, 22, 8});
  switch (kind) {
    case 0:
      return "tcp/" + std::to_string(port());
    case 1:
      return "udp/" + std::to_string(port());
    case 2:
      break;
    default:
      return "47";
  }
  const std::string name = v6 ? "icmpv6" : "icmp";
  const int echo_request = v6 ? 128 : 8;
  switch (rng_.weighted({options_.sendable ? 65 : 50, 10, 15, 10, 10})) {
    case 0:
      echo = true;
      return name + "/" + std::to_string(echo_request);
    case 1:
      return name + "/" + std::to_string(v6 ? 129 : 0);
    case 2:
      // Destination unreachable with a code.
      return name + "/" + std::to_string(v6 ? 1 : 3) + "/" + std::to_string(rng_.uniform(0, 6));
    case 3:
      if (!icmp_types_.empty()) {
        return name + "/" + std::to_string(rng_.pick(icmp_types_));
      }
      [[fallthrough]];
    default: {
      // Anything but neighbour discovery and MLD, which the switch answers itself.
      int type = 0;
      do {
        type = rng_.uniform(0, 255);
      } while (v6 && ((type >= 130 && type <= 137) || type == 143));
      return name + "/" + std::to_string(type);
    }
  }
}

std::string RandomPackets::interfaceDestination(const model::NetworkInterface& src, bool v6,
                                                std::string& from) {
  std::vector<const model::NetworkInterface*> peers;
  for (const auto& e : policy_.network_interfaces) {
    if (e.id != src.id && (!v6 || !e.ipv6_addresses.empty())) {
      peers.push_back(&e);
    }
  }
  if (peers.empty()) {
    return "";
  }
  const auto& dst = *rng_.pick(peers);
  const auto address = [&](const model::NetworkInterface& e) {
    const auto& list = v6 ? e.ipv6_addresses : e.private_ip_addresses;
    return (options_.sendable ? list.front() : rng_.pick(list)).toString();
  };
  // IPv6 is named by address on both ends; an interface id stands for its primary IPv4 address.
  const bool by_address = v6 || options_.sendable;
  from = by_address || rng_.chance(0.4) ? address(src) : src.id;
  return by_address || rng_.chance(0.5) ? address(dst) : dst.id;
}

std::string RandomPackets::unfilteredDestination(const model::NetworkInterface& src, bool v6) {
  const model::Subnet* subnet = nullptr;
  for (const auto& s : policy_.subnets) {
    if (s.id == src.subnet_id) {
      subnet = &s;
    }
  }
  if (v6) {
    if (subnet != nullptr && subnet->ipv6_cidr_block && rng_.chance(0.5)) {
      return subnet->ipv6_cidr_block->first().plus(rng_.uniform(0, 3)).toString();
    }
    return rng_.pick(std::vector<std::string>{"fe80::1", "fe80::ff:fe00:1", "ff02::1", "ff02::fb"});
  }
  switch (rng_.weighted({45, 10, 45})) {
    case 0:
      if (subnet != nullptr) {
        return subnet->cidr_block.first().plus(rng_.uniform(0, 3)).toString();
      }
      break;
    case 1:
      if (subnet != nullptr) {
        return subnet->cidr_block.last().toString();
      }
      break;
    default:
      break;
  }
  return rng_.pick(std::vector<std::string>{"169.254.169.254", "169.254.169.253", "169.254.169.123",
                                            "169.254.7.7"});
}

std::string RandomPackets::hostSource(bool v6) {
  const auto& subnet = rng_.pick(policy_.subnets);
  if (rng_.chance(0.6)) {
    if (!v6) {
      return subnet.cidr_block.first().plus(rng_.uniform(1, 3)).toString();
    }
    if (subnet.ipv6_cidr_block) {
      return subnet.ipv6_cidr_block->first().plus(rng_.uniform(1, 3)).toString();
    }
  }
  return rng_.pick(v6 ? std::vector<std::string>{"fe80::1", "fe80::a9fe:a9fe"}
                      : std::vector<std::string>{"169.254.169.254", "169.254.169.123"});
}

std::string RandomPackets::unroutedDestination(bool v6) {
  // An address of a subnet that no interface has.
  std::set<IpAddress> taken;
  for (const auto& e : policy_.network_interfaces) {
    taken.insert(e.private_ip_addresses.begin(), e.private_ip_addresses.end());
    taken.insert(e.ipv6_addresses.begin(), e.ipv6_addresses.end());
  }
  const auto& subnet = rng_.pick(policy_.subnets);
  if (rng_.chance(0.4) && (!v6 || subnet.ipv6_cidr_block)) {
    const Cidr& block = v6 ? *subnet.ipv6_cidr_block : subnet.cidr_block;
    IpAddress a;
    do {
      a = block.first().plus(rng_.uniform(4, 254));
    } while (taken.count(a) != 0);
    return a.toString();
  }
  if (v6) {
    return rng_.pick(std::vector<std::string>{"2001:db8::1",
                                              "2600:1f18:abcd:12" + hex2(kFreeSubnetByte) + "::5",
                                              "2600:1f18:abcd:1300::1", "2606:4700::1111"});
  }
  return rng_.pick(std::vector<std::string>{"8.8.8.8", "192.168.1.10",
                                            "10.0." + std::to_string(kFreeSubnetByte) + ".7",
                                            "10.1.0.5", "224.0.0.251", "100.64.0.1"});
}

explain::TraceRequest RandomPackets::next() {
  explain::TraceRequest req;
  const auto& src = rng_.pick(policy_.network_interfaces);
  const bool v6 = !src.ipv6_addresses.empty() && rng_.chance(options_.sendable ? 0.3 : 0.25);
  const auto sourceAddress = [&] {
    return rng_.pick(v6 ? src.ipv6_addresses : src.private_ip_addresses).toString();
  };
  const size_t kind = options_.sendable ? 0 : rng_.weighted({68, 13, 10, 9});
  if (kind == 3) {
    // From the host (the bridge's own port), which may send from what AWS never filters, to the
    // interface picked above.
    req.from = hostSource(v6);
    req.to = rng_.chance(0.5) && !v6 ? src.id : sourceAddress();
  } else if (kind == 0) {
    req.to = interfaceDestination(src, v6, req.from);
    if (req.to.empty()) {  // nobody else has IPv6: IPv4 then
      req.to = interfaceDestination(src, false, req.from);
    }
  } else {
    req.from = v6 || rng_.chance(0.3) ? sourceAddress() : src.id;
    req.to = kind == 1 ? unfilteredDestination(src, v6) : unroutedDestination(v6);
  }
  const bool v6_packet = req.to.find(':') != std::string::npos;
  bool echo = false;
  req.protocol = protocolSpec(v6_packet, echo);
  const bool ports = req.protocol.starts_with("tcp") || req.protocol.starts_with("udp");
  if (ports && (options_.sendable || rng_.chance(0.5))) {
    req.source_port =
        rng_.chance(0.5) || ports_.empty() ? rng_.uniform(1024, 65535) : rng_.pick(ports_);
  }
  if (!options_.sendable) {
    req.reply = rng_.chance(ports || echo ? 0.15 : 0.05);
  }
  return req;
}

// ---- failure messages -------------------------------------------------------------------------

std::string describeRequest(const explain::TraceRequest& request) {
  std::string out = "from " + request.from + " to " + request.to + " " + request.protocol;
  if (request.source_port) {
    out += " source port " + std::to_string(*request.source_port);
  }
  return request.reply ? out + ", reply" : out;
}

std::string describePolicyFor(const model::Policy& policy, const explain::TracePacket& packet) {
  std::string out =
      "  strict_revocation = " + std::string(policy.vpc.strict_revocation ? "true" : "false") +
      "\n";
  std::set<std::string> subnets;
  for (const auto& id : {packet.src_interface, packet.dst_interface}) {
    const auto eni =
        std::find_if(policy.network_interfaces.begin(), policy.network_interfaces.end(),
                     [&](const auto& e) { return e.id == id; });
    if (id.empty() || eni == policy.network_interfaces.end()) {
      continue;
    }
    out += "  " + eni->id + ": " + eni->subnet_id + ", " + eni->mac_address + ",";
    for (const auto* list : {&eni->private_ip_addresses, &eni->ipv6_addresses}) {
      for (const auto& a : *list) {
        out += " " + a.toString();
      }
    }
    out += eni->source_dest_check ? "" : ", source_dest_check = false";
    out += "\n";
    subnets.insert(eni->subnet_id);
    for (const auto& group_id : eni->security_group_ids) {
      for (const auto& g : policy.security_groups) {
        if (g.id != group_id) {
          continue;
        }
        for (const bool egress : {false, true}) {
          const auto& rules = egress ? g.egress : g.ingress;
          for (size_t i = 0; i < rules.size(); ++i) {
            out += "    " + explain::describeSgRule(g.id, egress, i, rules[i]) + "\n";
          }
        }
      }
    }
  }
  for (const auto& s : policy.subnets) {
    if (subnets.count(s.id) == 0) {
      continue;
    }
    out += "  " + s.id + ": " + s.cidr_block.toString() +
           (s.ipv6_cidr_block ? " " + s.ipv6_cidr_block->toString() : "") + ", " +
           s.network_acl_id + "\n";
    for (const auto& acl : policy.network_acls) {
      if (acl.id != s.network_acl_id) {
        continue;
      }
      auto entries = acl.entries;
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return std::tie(a.egress, a.rule_number) < std::tie(b.egress, b.rule_number);
      });
      for (const auto& e : entries) {
        out += "    " + explain::describeNaclEntry(acl.id, e) + "\n";
      }
    }
  }
  return out;
}

}  // namespace vpcguard::test
