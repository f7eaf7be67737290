// Property: after every step of a random sequence of policy changes, IncrementalTranslator's
// flows equal translate()'s for the same input and rule ids, flow by flow (and so do the stats
// and rule names), and the delta it returned turns the previous set into the new one.
// Plus the stable-id properties of RuleIdAllocator that make the deltas small.

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/unit/model_generator.h"
#include "translator/defaults.h"
#include "translator/incremental.h"
#include "translator/pipeline.h"
#include "translator/translate.h"
#include "translator/validate.h"

namespace vpcguard {
namespace {

using Identity = std::tuple<uint8_t, uint16_t, std::string>;

std::map<Identity, Flow> byIdentity(const std::vector<Flow>& flows) {
  std::map<Identity, Flow> out;
  for (const auto& f : flows) {
    out.emplace(Identity{f.table, f.priority, f.match}, f);
  }
  return out;
}

// Random changes to a valid, defaults-resolved policy. Each may make the policy invalid; the
// caller then undoes it (the daemon never translates an invalid policy either).
class Mutator {
 public:
  Mutator(uint32_t seed, test::ModelGenerator& gen) : rng_(seed), gen_(gen) {}

  std::string mutate(model::Policy& p, std::map<std::string, int>& ofports, int& next_port,
                     std::map<std::string, uint16_t>& indices) {
    switch (uniform(0, 15)) {
      case 0:
      case 1: {  // add a rule (anywhere in the list: later rules move)
        if (p.security_groups.empty()) {
          return "none";
        }
        auto& g = pick(p.security_groups);
        auto& list = chance(0.5) ? g.egress : g.ingress;
        const auto at = list.begin() + uniform(0, static_cast<int>(list.size()));
        list.insert(at, gen_.rule(groupIds(p), p.prefix_lists));
        return "add rule " + g.id;
      }
      case 2:
      case 3: {  // remove a rule
        if (p.security_groups.empty()) {
          return "none";
        }
        auto& g = pick(p.security_groups);
        auto& list = chance(0.5) ? g.egress : g.ingress;
        if (list.empty()) {
          return "none";
        }
        list.erase(list.begin() + uniform(0, static_cast<int>(list.size()) - 1));
        return "remove rule " + g.id;
      }
      case 4: {  // change a rule in place
        if (p.security_groups.empty()) {
          return "none";
        }
        auto& g = pick(p.security_groups);
        auto& list = chance(0.5) ? g.egress : g.ingress;
        if (list.empty()) {
          return "none";
        }
        pick(list) = gen_.rule(groupIds(p), p.prefix_lists);
        return "change rule " + g.id;
      }
      case 5:
      case 6: {  // membership: join or leave a group
        if (p.network_interfaces.empty() || p.security_groups.empty()) {
          return "none";
        }
        auto& e = pick(p.network_interfaces);
        auto& groups = e.security_group_ids;
        if (groups.size() > 1 && chance(0.5)) {
          groups.erase(groups.begin() + uniform(0, static_cast<int>(groups.size()) - 1));
          return "leave " + e.id;
        }
        const std::string g = pick(p.security_groups).id;
        if (std::find(groups.begin(), groups.end(), g) == groups.end()) {
          groups.push_back(g);
        }
        return "join " + e.id + " " + g;
      }
      case 7: {  // attach, detach or re-plug an interface
        if (p.network_interfaces.empty()) {
          return "none";
        }
        const auto& e = pick(p.network_interfaces);
        if (ofports.count(e.id) != 0 && chance(0.6)) {
          ofports.erase(e.id);
          return "detach " + e.id;
        }
        ofports[e.id] = next_port++;
        return "attach " + e.id;
      }
      case 8: {  // NACL entry added, removed or changed
        if (p.network_acls.empty()) {
          return "none";
        }
        auto& a = pick(p.network_acls);
        const auto fresh = gen_.acl(0, !p.vpc.ipv6_cidr_blocks.empty(), false);
        if (!a.entries.empty() && chance(0.4)) {
          a.entries.erase(a.entries.begin() + uniform(0, static_cast<int>(a.entries.size()) - 1));
        } else if (!fresh.entries.empty()) {
          a.entries.push_back(fresh.entries.front());
        }
        return "nacl " + a.id;
      }
      case 9: {  // prefix list entries
        if (p.prefix_lists.empty()) {
          return "none";
        }
        auto& pl = pick(p.prefix_lists);
        if (!pl.entries.empty() && chance(0.5)) {
          pl.entries.pop_back();
        } else {
          pl.entries.push_back(
              *Cidr::parse("172.17." + std::to_string(uniform(0, 255)) + ".0/24", false));
        }
        return "prefix list " + pl.id;
      }
      case 10: {  // an interface's addresses
        if (p.network_interfaces.empty()) {
          return "none";
        }
        auto& e = pick(p.network_interfaces);
        if (e.private_ip_addresses.size() > 1 && chance(0.5)) {
          e.private_ip_addresses.pop_back();
        } else {
          e.private_ip_addresses.push_back(e.private_ip_addresses.front().plus(uniform(100, 140)));
        }
        return "addresses " + e.id;
      }
      case 11: {  // an interface comes or goes
        if (!p.network_interfaces.empty() && chance(0.5)) {
          const auto i =
              static_cast<size_t>(uniform(0, static_cast<int>(p.network_interfaces.size()) - 1));
          ofports.erase(p.network_interfaces[i].id);
          p.network_interfaces.erase(p.network_interfaces.begin() + static_cast<long>(i));
          return "remove interface";
        }
        model::NetworkInterface e;
        e.id = "eni-new-" + std::to_string(next_port);
        const auto& s = pick(p.subnets);
        e.subnet_id = s.id;
        e.mac_address = "02:00:00:00:01:" + test::ModelGenerator::hex2(next_port % 256);
        e.private_ip_addresses = {s.cidr_block.first().plus(150 + next_port % 90)};
        if (!p.security_groups.empty()) {
          e.security_group_ids = {pick(p.security_groups).id};
        }
        if (chance(0.7)) {
          ofports[e.id] = next_port;
        }
        ++next_port;
        p.network_interfaces.push_back(e);
        return "add interface " + e.id;
      }
      case 12: {  // a subnet changes its NACL
        auto& s = pick(p.subnets);
        if (!p.network_acls.empty()) {
          s.network_acl_id = pick(p.network_acls).id;
        }
        return "subnet nacl " + s.id;
      }
      case 13: {  // an interface gets another index (vpcguardd rolls back a rejected change)
        if (p.network_interfaces.empty()) {
          return "none";
        }
        const auto& e = pick(p.network_interfaces);
        uint16_t highest = 0;
        for (const auto& [id, index] : indices) {
          highest = std::max(highest, index);
        }
        indices[e.id] = static_cast<uint16_t>(highest + 1);
        return "reindex " + e.id;
      }
      case 14: {  // a flow log on the VPC, a subnet or an interface comes or goes
        if (!p.flow_logs.empty() && chance(0.5)) {
          p.flow_logs.erase(p.flow_logs.begin() +
                            uniform(0, static_cast<int>(p.flow_logs.size()) - 1));
          return "flow log removed";
        }
        model::FlowLog fl;
        fl.id = "fl-" + std::to_string(next_port++);
        fl.log_destination = "file:///tmp/x";
        const int kind = uniform(0, 2);
        if (kind == 0 || p.network_interfaces.empty()) {
          fl.resource_id = kind == 1 && !p.subnets.empty() ? pick(p.subnets).id : p.vpc.id;
        } else {
          fl.resource_id = kind == 1 ? pick(p.subnets).id : pick(p.network_interfaces).id;
        }
        p.flow_logs.push_back(fl);
        return "flow log on " + fl.resource_id;
      }
      default: {  // rarely: strict revocation flips (every rule's flows change)
        if (chance(0.3)) {
          p.vpc.strict_revocation = !p.vpc.strict_revocation;
          return "strict";
        }
        return "none";
      }
    }
  }

 private:
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  T& pick(std::vector<T>& v) {
    return v[static_cast<size_t>(uniform(0, static_cast<int>(v.size()) - 1))];
  }
  static std::vector<std::string> groupIds(const model::Policy& p) {
    std::vector<std::string> out;
    for (const auto& g : p.security_groups) {
      out.push_back(g.id);
    }
    return out;
  }

  std::mt19937 rng_;
  test::ModelGenerator& gen_;
};

// Compares the incremental result with a full translation and checks the delta.
void expectSame(IncrementalTranslator& inc, const TranslateInput& in,
                const std::vector<Flow>& before, const FlowDelta& delta, const std::string& where) {
  TranslateInput full_in = in;
  full_in.rule_ids = &inc.ruleIds();
  auto full = translate(full_in);
  ASSERT_TRUE(full.has_value()) << where << ": " << full.error().message;
  const std::vector<Flow> now = inc.flows();
  ASSERT_EQ(now.size(), full->flows.size()) << where;
  for (size_t i = 0; i < now.size(); ++i) {
    ASSERT_EQ(now[i], full->flows[i])
        << where << ": flow " << i << "\n  incremental: " << toOfctlText(now[i])
        << "\n  full:        " << toOfctlText(full->flows[i]);
  }
  EXPECT_EQ(inc.stats().flows, full->stats.flows) << where;
  EXPECT_EQ(inc.stats().sg_rules, full->stats.sg_rules) << where;
  EXPECT_EQ(inc.stats().sg_clause_flows, full->stats.sg_clause_flows) << where;
  EXPECT_EQ(inc.stats().nacl_flows, full->stats.nacl_flows) << where;
  EXPECT_EQ(inc.stats().sg_flows_without_conjunction, full->stats.sg_flows_without_conjunction)
      << where;
  EXPECT_EQ(inc.ruleNames(), full->rule_names) << where;

  // previous set - removed + added == new set; every removed flow was there, every added one
  // was not (or changed).
  auto set = byIdentity(before);
  for (const auto& f : delta.removed) {
    auto it = set.find(Identity{f.table, f.priority, f.match});
    ASSERT_TRUE(it != set.end() && it->second == f) << where << ": removed " << toOfctlText(f);
    set.erase(it);
  }
  for (const auto& f : delta.added) {
    ASSERT_TRUE(set.emplace(Identity{f.table, f.priority, f.match}, f).second)
        << where << ": added twice " << toOfctlText(f);
  }
  EXPECT_EQ(set, byIdentity(now)) << where;
}

TEST(IncrementalProperty, EqualsFullTranslationAfterEveryChange) {
  constexpr int kModels = 60;
  constexpr int kSteps = 30;
  int applied = 0;
  for (int seed = 1; seed <= kModels; ++seed) {
    test::ModelGenerator gen(static_cast<uint32_t>(seed));
    const model::Policy raw = gen.next();
    if (!validatePolicy(raw).empty()) {
      continue;
    }
    auto resolved = resolveDefaults(raw);
    ASSERT_TRUE(resolved.has_value());
    model::Policy p = std::move(*resolved);
    std::map<std::string, int> ofports;
    int next_port = 1;
    for (const auto& e : p.network_interfaces) {
      if (gen.chance(0.8)) {
        ofports[e.id] = next_port;
      }
      ++next_port;
    }
    std::map<std::string, uint16_t> indices = *assignInterfaceIndices(p, {});
    IncrementalTranslator inc;
    std::vector<Flow> before;
    Mutator mutator(static_cast<uint32_t>(seed) * 7919U, gen);
    for (int step = 0; step <= kSteps; ++step) {
      std::string what = "initial";
      if (step > 0) {
        const model::Policy last = p;
        const auto last_ports = ofports;
        const auto last_indices = indices;
        what = mutator.mutate(p, ofports, next_port, indices);
        if (!validatePolicy(p).empty()) {
          p = last;
          ofports = last_ports;
          indices = last_indices;
          continue;
        }
      }
      indices = *assignInterfaceIndices(p, indices);
      TranslateInput in;
      in.policy = &p;
      in.ofports = ofports;
      in.interface_index = indices;
      in.generation = 1;
      auto delta = inc.update(in);
      const std::string where =
          "seed " + std::to_string(seed) + " step " + std::to_string(step) + " (" + what + ")";
      ASSERT_TRUE(delta.has_value()) << where << ": " << delta.error().message;
      ASSERT_NO_FATAL_FAILURE(expectSame(inc, in, before, *delta, where));
      if (HasFailure()) {
        return;
      }
      before = inc.flows();
      ++applied;
    }
  }
  EXPECT_GE(applied, kModels * 5) << "too few changes were valid to mean much";
}

// A generation change renumbers every cookie: the delta is a full replacement, still equal.
TEST(IncrementalProperty, GenerationChangeReplacesEveryCookie) {
  test::ModelGenerator gen(5);
  model::Policy raw = gen.next();
  for (uint32_t seed = 6; !validatePolicy(raw).empty(); ++seed) {
    raw = test::ModelGenerator(seed).next();
  }
  model::Policy p = *resolveDefaults(raw);
  TranslateInput in;
  in.policy = &p;
  in.interface_index = *assignInterfaceIndices(p, {});
  in.generation = 1;
  IncrementalTranslator inc;
  ASSERT_TRUE(inc.update(in).has_value());
  const auto before = inc.flows();
  in.generation = 2;
  auto delta = inc.update(in);
  ASSERT_TRUE(delta.has_value());
  EXPECT_EQ(delta->removed.size(), before.size());
  expectSame(inc, in, before, *delta, "generation 2");
}

model::Policy smallPolicy() {
  model::Policy p;
  p.vpc.id = "vpc-1";
  p.vpc.cidr_blocks = {*Cidr::parse("10.0.0.0/16")};
  model::Subnet s;
  s.id = "subnet-1";
  s.cidr_block = *Cidr::parse("10.0.1.0/24");
  p.subnets.push_back(s);
  for (int g = 0; g < 3; ++g) {
    model::SecurityGroup sg;
    sg.id = "sg-" + std::to_string(g);
    sg.name = "g" + std::to_string(g);
    for (int r = 0; r < 10; ++r) {
      model::SecurityGroupRule rule;
      rule.ip_protocol = model::kProtoTcp;
      rule.ports = model::PortRange{1000 + r, 1000 + r};
      rule.peer = *Cidr::parse("192.168." + std::to_string(r) + ".0/24");
      sg.ingress.push_back(rule);
    }
    p.security_groups.push_back(sg);
  }
  for (int i = 0; i < 4; ++i) {
    model::NetworkInterface e;
    e.id = "eni-" + std::to_string(i);
    e.subnet_id = "subnet-1";
    e.mac_address = "02:00:00:00:00:0" + std::to_string(i);
    e.private_ip_addresses = {*IpAddress::parse("10.0.1." + std::to_string(10 + i))};
    e.security_group_ids = {"sg-" + std::to_string(i % 3)};
    p.network_interfaces.push_back(e);
  }
  return *resolveDefaults(p);
}

TEST(RuleIds, InsertingARuleKeepsEveryOtherId) {
  model::Policy p = smallPolicy();
  RuleIdAllocator ids;
  ASSERT_TRUE(ids.update(p).has_value());
  const std::vector<uint32_t> before = *ids.ids("sg-1", false);
  model::SecurityGroupRule r;
  r.ip_protocol = model::kProtoUdp;
  r.peer = *Cidr::parse("172.16.0.0/12");
  auto& ingress = p.security_groups[1].ingress;
  ingress.insert(ingress.begin(), r);
  ASSERT_TRUE(ids.update(p).has_value());
  const std::vector<uint32_t> after = *ids.ids("sg-1", false);
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), after.begin() + 1));
  EXPECT_EQ(std::count(before.begin(), before.end(), after[0]), 0);
  // Removing it frees its id and keeps the rest.
  ingress.erase(ingress.begin());
  ASSERT_TRUE(ids.update(p).has_value());
  EXPECT_EQ(*ids.ids("sg-1", false), before);
}

TEST(RuleIds, ARestartedAllocatorGivesTheSameIds) {
  // The daemon starts with no allocator state: ids must not depend on the order rules were
  // added in, nor on where they stand in the config.
  model::Policy p = smallPolicy();
  RuleIdAllocator grown;
  model::Policy partial = p;
  for (auto& g : partial.security_groups) {
    g.ingress.resize(3);
  }
  ASSERT_TRUE(grown.update(partial).has_value());
  ASSERT_TRUE(grown.update(p).has_value());
  model::Policy reordered = p;
  for (auto& g : reordered.security_groups) {
    std::reverse(g.ingress.begin(), g.ingress.end());
  }
  RuleIdAllocator fresh;
  ASSERT_TRUE(fresh.update(reordered).has_value());
  for (const auto& g : p.security_groups) {
    std::vector<uint32_t> reversed = *fresh.ids(g.id, false);
    std::reverse(reversed.begin(), reversed.end());
    EXPECT_EQ(*grown.ids(g.id, false), reversed) << g.id;
  }
  // Every id unique, inside the range the cookie can carry.
  std::set<uint32_t> all;
  for (const auto& g : p.security_groups) {
    for (bool egress : {false, true}) {
      for (uint32_t id : *fresh.ids(g.id, egress)) {
        EXPECT_TRUE(all.insert(id).second);
        EXPECT_GE(id, pipeline::kConjIdBase);
        EXPECT_LT(id, kRuleIdLimit);
      }
    }
  }
}

TEST(RuleIds, GroupIndicesAreUniqueStableAndTheSameAfterARestart) {
  model::Policy p = smallPolicy();
  RuleIdAllocator ids;
  ASSERT_TRUE(ids.update(p).has_value());
  std::map<std::string, uint16_t> before;
  std::set<uint16_t> seen;
  for (const auto& g : p.security_groups) {
    const uint16_t index = ids.groupIndex(g.id);
    EXPECT_NE(index, 0) << g.id;
    EXPECT_TRUE(seen.insert(index).second) << g.id;
    before[g.id] = index;
  }
  EXPECT_EQ(ids.groupIndex("sg-unknown"), 0);
  // A rule change keeps every index.
  auto sg1 = std::find_if(p.security_groups.begin(), p.security_groups.end(),
                          [](const auto& g) { return g.id == "sg-1"; });
  ASSERT_NE(sg1, p.security_groups.end());
  ASSERT_FALSE(sg1->ingress.empty());
  sg1->ingress.pop_back();
  ASSERT_TRUE(ids.update(p).has_value());
  for (const auto& [id, index] : before) {
    EXPECT_EQ(ids.groupIndex(id), index) << id;
  }
  // A removed group loses its index, the others keep theirs.
  model::Policy fewer = p;
  const std::string gone = "sg-1";
  fewer.security_groups.erase(fewer.security_groups.begin() + (sg1 - p.security_groups.begin()));
  ASSERT_TRUE(ids.update(fewer).has_value());
  EXPECT_EQ(ids.groupIndex(gone), 0);
  for (const auto& g : fewer.security_groups) {
    EXPECT_EQ(ids.groupIndex(g.id), before[g.id]) << g.id;
  }
  // A restarted daemon (no allocator state) gives the same indices.
  RuleIdAllocator fresh;
  ASSERT_TRUE(fresh.update(p).has_value());
  for (const auto& [id, index] : before) {
    EXPECT_EQ(fresh.groupIndex(id), index) << id;
  }
}

// `p` with every interface attached (ofport = its index), generation 1.
TranslateInput attachedInput(const model::Policy& p) {
  TranslateInput in;
  in.policy = &p;
  in.interface_index = *assignInterfaceIndices(p, {});
  for (const auto& e : p.network_interfaces) {
    in.ofports[e.id] = in.interface_index.at(e.id);
  }
  in.generation = 1;
  return in;
}

// The rule the one-rule change tests add: SSH from a documentation prefix.
model::SecurityGroupRule sshRule() {
  model::SecurityGroupRule r;
  r.ip_protocol = model::kProtoTcp;
  r.ports = model::PortRange{22, 22};
  r.peer = *Cidr::parse("203.0.113.0/24");
  return r;
}

TEST(IncrementalTranslator, OneRuleChangesOnlyItsOwnFlows) {
  model::Policy p = smallPolicy();
  const TranslateInput in = attachedInput(p);
  IncrementalTranslator inc;
  ASSERT_TRUE(inc.update(in).has_value());
  const auto before = inc.flows();
  auto& ingress = p.security_groups[0].ingress;
  ingress.insert(ingress.begin(), sshRule());
  auto delta = inc.update(in);
  ASSERT_TRUE(delta.has_value());
  expectSame(inc, in, before, *delta, "insert first rule");
  // New: the rule's commit flow, its peer and protocol clauses. Changed: sg-0's member clause
  // (one more conjunction action): eni-0 and eni-3 hold sg-0 in the same slot, so one flow.
  // Nothing else.
  EXPECT_EQ(delta->added.size(), 3 + 1U);
  EXPECT_EQ(delta->removed.size(), 1U);
  EXPECT_EQ(inc.lastWork().rules, 1U);
}

TEST(IncrementalTranslator, ARuleChangeCostsTheSameFlowsWithTenOrTwoHundredMembers) {
  // Member clauses per group slot, not per member (translator/pipeline.h, "Group slots"): a
  // one-rule change rewrites the same number of flows however many interfaces the group has.
  const auto ruleChangeDelta = [](int n_enis) {
    model::Policy p = smallPolicy();
    p.network_interfaces.clear();
    for (int i = 0; i < n_enis; ++i) {
      model::NetworkInterface e;
      e.id = "eni-" + std::to_string(i);
      e.subnet_id = "subnet-1";
      e.mac_address = fmt::format("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256);
      e.private_ip_addresses = {*IpAddress::parse(fmt::format("10.0.1.{}", 10 + i % 200))};
      // Every one in sg-0, with one or two of the others: sg-0 sits in more than one slot.
      e.security_group_ids = {"sg-0", i % 2 == 0 ? "sg-1" : "sg-2"};
      if (i % 3 == 0) {
        e.security_group_ids.emplace_back(model::kDefaultSecurityGroupId);
      }
      p.network_interfaces.push_back(e);
    }
    const TranslateInput in = attachedInput(p);
    IncrementalTranslator inc;
    EXPECT_TRUE(inc.update(in).has_value());
    const auto before = inc.flows();
    p.security_groups[0].ingress.push_back(sshRule());
    auto delta = inc.update(in);
    EXPECT_TRUE(delta.has_value());
    if (!delta) {
      return size_t{0};
    }
    expectSame(inc, in, before, *delta, fmt::format("{} members", n_enis));
    return delta->size();
  };
  const size_t small = ruleChangeDelta(10);
  const size_t large = ruleChangeDelta(200);
  EXPECT_GT(small, 0U);
  EXPECT_EQ(small, large);
  EXPECT_LE(large, 3 + 2 * pipeline::kGroupSlots);
}

}  // namespace
}  // namespace vpcguard
