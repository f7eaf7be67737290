#include "translator/translate.h"
#include "translator/validate.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"
#include "translator/rule_ids.h"
#include "translator/units.h"

namespace vpcguard {
namespace {

TranslateInput inputFor(const model::Policy& p, bool attach_all = true) {
  TranslateInput in;
  in.policy = &p;
  in.interface_index = *assignInterfaceIndices(p, {});
  int port = 1;
  if (attach_all) {
    for (const auto& e : p.network_interfaces) {
      in.ofports[e.id] = port++;
    }
  }
  in.generation = 7;
  return in;
}

size_t countMatching(const std::vector<Flow>& flows, uint8_t table, const std::string& needle) {
  return static_cast<size_t>(std::count_if(flows.begin(), flows.end(), [&](const Flow& f) {
    return f.table == table && (f.match + " " + f.actions).find(needle) != std::string::npos;
  }));
}

TEST(PortRangeMasks, SinglePortIsExact) {
  auto m = portRangeMasks(80, 80);
  ASSERT_EQ(m.size(), 1U);
  EXPECT_EQ(m[0].value, 80);
  EXPECT_EQ(m[0].mask, 0xffff);
}

TEST(PortRangeMasks, EphemeralRangeIsMinimal) {
  auto m = portRangeMasks(1024, 65535);
  // 1024-2047, 2048-4095, 4096-8191, 8192-16383, 16384-32767, 32768-65535
  ASSERT_EQ(m.size(), 6U);
  EXPECT_EQ(m[0].value, 1024);
  EXPECT_EQ(m[0].mask, 0xfc00);
  EXPECT_EQ(m[5].value, 32768);
  EXPECT_EQ(m[5].mask, 0x8000);
}

TEST(PortRangeMasks, MasksCoverExactlyTheRange) {
  for (auto [from, to] : {std::pair{0, 65535}, std::pair{1, 65534}, std::pair{32768, 60999},
                          std::pair{22, 23}, std::pair{1000, 1999}}) {
    std::vector<int> covered(65536, 0);
    for (const auto& m : portRangeMasks(static_cast<uint16_t>(from), static_cast<uint16_t>(to))) {
      for (int p = 0; p < 65536; ++p) {
        if ((p & m.mask) == m.value) {
          ++covered[static_cast<size_t>(p)];
        }
      }
    }
    for (int p = 0; p < 65536; ++p) {
      ASSERT_EQ(covered[static_cast<size_t>(p)], (p >= from && p <= to) ? 1 : 0)
          << "range " << from << "-" << to << " port " << p;
    }
  }
}

TEST(LinkLocal, Eui64FromMac) {
  EXPECT_EQ(linkLocalFromMac("02:00:00:00:01:0a").toString(), "fe80::ff:fe00:10a");
}

TEST(InterfaceIndices, StableAcrossChanges) {
  auto p = test::samplePolicy();
  auto first = *assignInterfaceIndices(p, {});
  // Remove the first interface and add a new one: the others keep their indices, the new one
  // takes the freed index.
  auto removed = p.network_interfaces.front();
  p.network_interfaces.erase(p.network_interfaces.begin());
  auto added = removed;
  added.id = "eni-new";
  p.network_interfaces.push_back(added);
  auto second = *assignInterfaceIndices(p, first);
  EXPECT_EQ(second["eni-bastion"], first["eni-bastion"]);
  EXPECT_EQ(second["eni-db1"], first["eni-db1"]);
  EXPECT_EQ(second["eni-new"], first[removed.id]);
}

TEST(Translate, DeterministicAndCookiesCarryGeneration) {
  auto p = test::samplePolicy();
  auto a = translate(inputFor(p));
  auto b = translate(inputFor(p));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b);
  EXPECT_EQ(a->flows, b->flows);
  for (const auto& f : a->flows) {
    EXPECT_EQ(f.cookie & pipeline::kCookieMagicMask, pipeline::kCookieMagic);
    EXPECT_EQ(pipeline::cookieGeneration(f.cookie), 7);
  }
}

TEST(Translate, NoDuplicateFlowIdentities) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  for (size_t i = 1; i < t->flows.size(); ++i) {
    const auto& x = t->flows[i - 1];
    const auto& y = t->flows[i];
    EXPECT_FALSE(x.table == y.table && x.priority == y.priority && x.match == y.match)
        << x.match << " appears twice in table " << int{x.table};
  }
}

TEST(Translate, ClauseFlowsAreSharedBetweenRules) {
  auto p = test::samplePolicy();
  RuleIdAllocator ids;
  ASSERT_TRUE(ids.update(p));
  auto in = inputFor(p);
  in.rule_ids = &ids;
  auto t = translate(in);
  ASSERT_TRUE(t);
  // sg-web's egress member clause (the slot web1, its only member, holds it in) carries both of
  // the group's egress rules.
  const uint16_t web = ids.groupIndex("sg-web");
  const std::string member =
      units::memberClauseMatch(true, units::memberClauseOf(units::assignSlots({web}), web, 1));
  EXPECT_NE(member.find("/0xffff"), std::string::npos) << "a slot, not reg0=1: " << member;
  auto it = std::find_if(t->flows.begin(), t->flows.end(), [&](const Flow& f) {
    return f.table == pipeline::kSgEgressEval && f.match == member;
  });
  ASSERT_NE(it, t->flows.end());
  EXPECT_EQ(std::count(it->actions.begin(), it->actions.end(), '('), 2) << it->actions;
  // Shared clause flows: fewer than one flow per (rule, peer), the only way to stay below that.
  size_t peer_terms = 0;
  for (const auto& f : t->flows) {
    if (f.actions.find("/3)") != std::string::npos || f.actions.find("/2)") != std::string::npos) {
      peer_terms += static_cast<size_t>(std::count(f.actions.begin(), f.actions.end(), '('));
    }
  }
  EXPECT_LT(t->stats.sg_clause_flows, peer_terms) << "no clause flow carries several rules";
}

TEST(GroupSlots, LowestIndexFirstFromItsOwnSlotAndTheSixthGroupOverflows) {
  // 2, 7 and 12 all start at slot 2 (index % 5): the lowest takes it, the others the next ones.
  const units::GroupSlots s = units::assignSlots({7, 2, 12, 7});
  EXPECT_EQ(s.slotOf(2), 2);
  EXPECT_EQ(s.slotOf(7), 3);
  EXPECT_EQ(s.slotOf(12), 4);
  EXPECT_EQ(s.slotOf(5), pipeline::kNoSlot);
  EXPECT_TRUE(s.overflow.empty());
  EXPECT_EQ(units::assignSlots({12, 2, 7}), s) << "a function of the set, not of the order";
  const units::GroupSlots full = units::assignSlots({1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(full.overflow, (std::vector<uint16_t>{6, 7}));
  EXPECT_EQ(units::memberClauseOf(full, 6, 9), (units::MemberClause{pipeline::kNoSlot, 9}));
  EXPECT_EQ(units::memberClauseOf(full, 3, 9), (units::MemberClause{3, 3}));
  // Egress slots in reg11..reg13's low half, ingress slots after them.
  EXPECT_EQ(units::memberClauseMatch(true, {1, 0x23}), "reg11=0x230000/0xffff0000");
  EXPECT_EQ(units::memberClauseMatch(false, {0, 0x23}), "reg13=0x230000/0xffff0000");
  EXPECT_EQ(units::memberClauseMatch(false, {4, 0x23}), "reg15=0x230000/0xffff0000");
  EXPECT_EQ(units::memberClauseMatch(false, {pipeline::kNoSlot, 9}), "reg1=9");
}

TEST(Translate, GroupsBeyondAnInterfacesSlotsMatchItByIndex) {
  // web1 in sg-web and five more groups (AWS allows up to 16 with a raised quota): five groups
  // get slots, one matches web1 by its index.
  auto p = test::samplePolicy();
  p.quotas.security_groups_per_interface = 16;
  auto& web1 = p.network_interfaces[0];
  for (int i = 0; i < 5; ++i) {
    model::SecurityGroup g;
    g.id = fmt::format("sg-extra{}", i);
    g.name = g.id;
    model::SecurityGroupRule r;
    r.ip_protocol = model::kProtoTcp;
    r.ports = model::PortRange{8000 + i, 8000 + i};
    r.peer = *Cidr::parse("10.0.0.0/16");
    g.ingress = {r};
    p.security_groups.push_back(g);
    web1.security_group_ids.push_back(g.id);
  }
  RuleIdAllocator ids;
  ASSERT_TRUE(ids.update(p));
  auto in = inputFor(p);
  in.rule_ids = &ids;
  auto t = translate(in);
  ASSERT_TRUE(t) << t.error().message;
  const uint16_t z = in.interface_index.at(web1.id);
  std::vector<uint16_t> indices;
  for (const auto& g : web1.security_group_ids) {
    indices.push_back(ids.groupIndex(g));
  }
  const units::GroupSlots slots = units::assignSlots(indices);
  ASSERT_EQ(slots.overflow.size(), 1U);
  const auto flowOf = [&](uint8_t table, const std::string& match) -> const Flow* {
    for (const auto& f : t->flows) {
      if (f.table == table && f.match == match) {
        return &f;
      }
    }
    return nullptr;
  };
  // Every group's ingress rules hang on its own clause: a slot, or web1's index.
  for (const auto& g : web1.security_group_ids) {
    const uint16_t gi = ids.groupIndex(g);
    const units::MemberClause m = units::memberClauseOf(slots, gi, z);
    EXPECT_EQ(m.slot == pipeline::kNoSlot, gi == slots.overflow[0]) << g;
    const Flow* f = flowOf(pipeline::kSgIngressEval, units::memberClauseMatch(false, m));
    ASSERT_NE(f, nullptr) << g;
    for (uint32_t id : *ids.ids(g, false)) {
      EXPECT_NE(f->actions.find(fmt::format("conjunction({},1/", id)), std::string::npos)
          << g << ": " << f->actions;
    }
  }
  // Classification loads the five egress slots, the lookup the five ingress slots.
  const auto loads = [](const Flow& f) {
    int n = 0;
    for (int reg = 11; reg <= 15; ++reg) {
      const std::string to = fmt::format("->reg{},", reg);
      for (size_t at = f.actions.find(to); at != std::string::npos; at = f.actions.find(to, at + 1)) {
        ++n;
      }
    }
    return n;
  };
  const Flow* classify = flowOf(pipeline::kClassify, fmt::format("in_port={}", in.ofports.at(web1.id)));
  ASSERT_NE(classify, nullptr);
  EXPECT_EQ(loads(*classify), 5) << classify->actions;
  const Flow* lookup = flowOf(pipeline::kL3Lookup, "ip,nw_dst=10.0.1.10");
  ASSERT_NE(lookup, nullptr);
  EXPECT_EQ(loads(*lookup), 5) << lookup->actions;
}

TEST(Translate, UnattachedInterfacesGetNoPortFlowsButStayPeers) {
  auto p = test::samplePolicy();
  auto in = inputFor(p, false);
  in.ofports["eni-db1"] = 5;
  auto t = translate(in);
  ASSERT_TRUE(t);
  EXPECT_EQ(countMatching(t->flows, pipeline::kClassify, "in_port=5"), 1U);
  // sg-db allows 5432 from sg-web members: web1's address is a peer though web1 is elsewhere.
  EXPECT_EQ(countMatching(t->flows, pipeline::kSgIngressEval, "nw_src=10.0.1.10"), 1U);
}

TEST(Translate, NaclPriorityFollowsRuleNumberAndEndsInStarDeny) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  uint16_t p100 = 0;
  uint16_t p130 = 0;
  bool star = false;
  for (const auto& f : t->flows) {
    if (f.table != pipeline::kNaclIn || f.match.find("reg7=2") == std::string::npos) {
      continue;
    }
    if (f.match.find("tp_dst=5432") != std::string::npos) {
      p100 = f.priority;
    }
    if (f.match.find("icmp") != std::string::npos) {
      p130 = f.priority;
    }
    if (f.priority == pipeline::kNaclStarPriority) {
      star = f.actions.find("0x6007fff") != std::string::npos;
    }
  }
  EXPECT_GT(p100, p130);
  EXPECT_TRUE(star);
}

TEST(ConntrackTimeouts, AwsDefaultsAndPerInterfaceOverrides) {
  auto p = test::samplePolicy();
  p.network_interfaces[1].connection_tracking.tcp_established_timeout = 3600;
  p.network_interfaces[1].connection_tracking.udp_stream_timeout = 120;
  const auto indices = *assignInterfaceIndices(p, {});
  const auto t = conntrackTimeouts(p, indices);
  ASSERT_EQ(t.size(), 3U);
  const auto& web = t.at(indices.at("eni-web1"));
  EXPECT_EQ(web.at("tcp_established"), 432000);
  EXPECT_EQ(web.at("udp_single"), 30);
  EXPECT_EQ(web.at("udp_multiple"), 180);
  const auto& bastion = t.at(indices.at("eni-bastion"));
  EXPECT_EQ(bastion.at("tcp_established"), 3600);
  EXPECT_EQ(bastion.at("udp_first"), 30);
  EXPECT_EQ(bastion.at("udp_multiple"), 120);
}

// The daemon asks conntrackTimeoutsAre() on every change instead of building the map: it must
// say "different" for any change the map would show.
TEST(ConntrackTimeouts, AreSaysWhatComparingTheBuiltMapsSays) {
  auto p = test::samplePolicy();
  auto indices = *assignInterfaceIndices(p, {});
  const auto applied = conntrackTimeouts(p, indices);
  EXPECT_TRUE(conntrackTimeoutsAre(applied, p, indices));
  EXPECT_FALSE(conntrackTimeoutsAre({}, p, indices));

  auto longer = p;
  longer.network_interfaces[2].connection_tracking.udp_timeout = 45;
  EXPECT_FALSE(conntrackTimeoutsAre(applied, longer, indices));
  EXPECT_TRUE(conntrackTimeoutsAre(conntrackTimeouts(longer, indices), longer, indices));

  auto fewer = p;
  fewer.network_interfaces.pop_back();
  const auto fewer_indices = *assignInterfaceIndices(fewer, indices);
  EXPECT_FALSE(conntrackTimeoutsAre(applied, fewer, fewer_indices));

  auto renumbered = indices;
  renumbered.begin()->second = 40;
  EXPECT_FALSE(conntrackTimeoutsAre(applied, p, renumbered));
}

// A change that keeps every interface keeps every index (the daemon's usual case, answered
// without building a new map), and one that adds an interface still gives it a free index.
TEST(InterfaceIndices, UnchangedInterfacesKeepThemAndANewOneGetsAFreeOne) {
  auto p = test::samplePolicy();
  const auto first = *assignInterfaceIndices(p, {});
  EXPECT_EQ(*assignInterfaceIndices(p, first), first);
  auto added = p.network_interfaces.front();
  added.id = "eni-new";
  p.network_interfaces.push_back(added);
  const auto second = *assignInterfaceIndices(p, first);
  ASSERT_EQ(second.size(), first.size() + 1);
  for (const auto& [id, index] : first) {
    EXPECT_EQ(second.at(id), index) << id;
  }
  EXPECT_EQ(second.at("eni-new"), first.size() + 1);
  // An index 0 (none yet) is assigned, not kept.
  auto zero = first;
  zero.begin()->second = 0;
  p.network_interfaces.pop_back();
  EXPECT_NE(assignInterfaceIndices(p, zero)->at(zero.begin()->first), 0);
}

// MACs as the state database may hold them (not lower-cased by the config loader): messages
// show the canonical spelling, and two spellings of one MAC are one MAC.
TEST(ValidateMacs, OtherSpellingsAreCanonicalisedInChecksAndMessages) {
  auto p = test::samplePolicy();
  ASSERT_GE(p.network_interfaces.size(), 3u);
  ASSERT_TRUE(validatePolicy(p).empty());
  p.network_interfaces[0].mac_address = "02:00:00:00:0a:01";
  p.network_interfaces[1].mac_address = "02:00:00:00:0A:01";
  p.network_interfaces[2].mac_address = "0B:00:00:00:00:01";
  std::vector<std::string> messages;
  for (const auto& d : validatePolicy(p)) {
    messages.push_back(d.message);
  }
  const auto has = [&](const std::string& text) {
    return std::any_of(messages.begin(), messages.end(),
                       [&](const std::string& m) { return m.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("MAC address 02:00:00:00:0a:01 is already used by interface '" +
                  p.network_interfaces[0].id + "'"))
      << ::testing::PrintToString(messages);
  EXPECT_TRUE(has("'0b:00:00:00:00:01' is a multicast MAC address"))
      << ::testing::PrintToString(messages);
  EXPECT_EQ(messages.size(), 2u) << ::testing::PrintToString(messages);
}

// Two interfaces on one zone (not something the daemon makes): the answer is still the built
// map's, where the later interface's timeouts win.
TEST(ConntrackTimeouts, AreFollowsTheBuiltMapWhenInterfacesShareAZone) {
  auto p = test::samplePolicy();
  auto indices = *assignInterfaceIndices(p, {});
  const auto applied = conntrackTimeouts(p, indices);
  auto shared = indices;
  shared[p.network_interfaces[1].id] = indices.at(p.network_interfaces[0].id);
  EXPECT_EQ(conntrackTimeoutsAre(applied, p, shared), conntrackTimeouts(p, shared) == applied);
  EXPECT_FALSE(conntrackTimeoutsAre(applied, p, shared));
  EXPECT_TRUE(conntrackTimeoutsAre(conntrackTimeouts(p, shared), p, shared));
}

TEST(Translate, AttachingAnInterfaceDoesNotRenumberRules) {
  auto p = test::samplePolicy();
  auto only_db = inputFor(p, false);
  only_db.ofports["eni-db1"] = 3;
  auto partial = translate(only_db);
  auto full = translate(inputFor(p));
  ASSERT_TRUE(partial && full);
  // Every rule enforced in both keeps its conjunction id (and so its flows and ct labels).
  size_t common = 0;
  for (const auto& [id, name] : partial->rule_names) {
    auto it = full->rule_names.find(id);
    ASSERT_NE(it, full->rule_names.end()) << name;
    EXPECT_EQ(it->second, name);
    ++common;
  }
  EXPECT_GT(common, 0U);
  EXPECT_GT(full->rule_names.size(), partial->rule_names.size());
}

TEST(Translate, RejectsMissingIndex) {
  auto p = test::samplePolicy();
  TranslateInput in;
  in.policy = &p;
  auto t = translate(in);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("no index"), std::string::npos);
}

// ---- revocation: which commits are "checked" -------------------------------------------------
// The decision is per (rule, ENI, protocol): a rule's commit flows in the evaluation table
// (plain, and reg8-guarded ones above it) and the ENI's reg8 bits together say which label a
// connection gets. These helpers replay that from the flows, as OVS would.

model::SecurityGroup& group(model::Policy& p, const std::string& id) {
  return *std::find_if(p.security_groups.begin(), p.security_groups.end(),
                       [&](const auto& g) { return g.id == id; });
}

model::SecurityGroupRule allFrom(const char* c) {
  model::SecurityGroupRule r;
  r.peer = test::cidr(c);
  return r;
}

model::SecurityGroupRule protoRule(int proto, int from, int to, const char* c) {
  model::SecurityGroupRule r;
  r.ip_protocol = proto;
  if (proto == model::kProtoTcp || proto == model::kProtoUdp) {
    r.ports = model::PortRange{from, to};
  } else {
    r.icmp = model::IcmpTypeCode{from, to};
  }
  r.peer = test::cidr(c);
  return r;
}

uint32_t conjId(const Translation& t, const std::string& name) {
  for (const auto& [id, n] : t.rule_names) {
    if (n == name) {
      return id;
    }
  }
  ADD_FAILURE() << "no rule " << name;
  return 0;
}

// "0x...->ct_label" of an action list; empty when the flow sets none.
std::string labelOf(const std::string& actions) {
  const auto end = actions.find("->ct_label");
  if (end == std::string::npos) {
    return {};
  }
  const auto begin = actions.rfind(':', end) + 1;
  return actions.substr(begin, end - begin);
}

bool isChecked(const std::string& label) {
  // The low 64 bits are the last 16 hex digits; bit 32 is the checked bit.
  const std::string digits = label.substr(2);
  const std::string low = digits.size() > 16 ? digits.substr(digits.size() - 16) : digits;
  return ((std::stoull(low, nullptr, 16) >> pipeline::kCtLabelCheckedBit) & 1U) != 0;
}

// The reg8 bits the pipeline gives packets of `eni` (index = its ofport in inputFor()):
// the source nibble at classification, the destination nibble at lookup.
uint32_t openBitsOf(const Translation& t, int index) {
  uint32_t bits = 0;
  for (const auto& f : t.flows) {
    const bool mine = (f.table == pipeline::kClassify && f.match == fmt::format("in_port={}", index)) ||
                      (f.table == pipeline::kL3Lookup &&
                       f.actions.find(fmt::format("set_field:{}->reg1,", index)) == 0);
    const auto at = f.actions.find("->reg8");
    if (!mine || at == std::string::npos) {
      continue;
    }
    const auto begin = f.actions.rfind(':', at) + 1;
    bits |= static_cast<uint32_t>(std::stoul(f.actions.substr(begin, at - begin), nullptr, 16));
  }
  return bits;
}

// The label a connection of `proto` ("tcp", "udp", "icmp", "tcp6"...) allowed by rule `name`
// on ENI `index` is committed with: the highest-priority commit flow of the rule that matches.
std::string commitLabel(const Translation& t, const std::string& name, int index,
                        const std::string& proto) {
  const uint32_t id = conjId(t, name);
  const uint32_t open = openBitsOf(t, index);
  const std::string prefix = fmt::format("conj_id={},", id);
  const Flow* best = nullptr;
  for (const auto& f : t.flows) {
    if ((f.table != pipeline::kSgEgressEval && f.table != pipeline::kSgIngressEval) ||
        f.match.rfind(prefix, 0) != 0) {
      continue;
    }
    const std::string rest = f.match.substr(prefix.size());
    const bool v6 = proto.back() == '6';
    bool matches = rest == (v6 ? "ipv6" : "ip");
    if (rest.rfind(proto + ",reg8=", 0) == 0) {
      const auto bit = static_cast<uint32_t>(
          std::stoul(rest.substr(rest.find('=') + 1), nullptr, 16));
      matches = (open & bit) != 0;
    }
    if (matches && (best == nullptr || f.priority > best->priority)) {
      best = &f;
    }
  }
  if (best == nullptr) {
    ADD_FAILURE() << "no commit flow of " << name << " for " << proto;
    return "0x0";
  }
  return labelOf(best->actions);
}

bool checked(const Translation& t, const std::string& name, int index, const std::string& proto) {
  return isChecked(commitLabel(t, name, index, proto));
}

// ENIs in inputFor(samplePolicy()): web1 = 1, bastion = 2, db1 = 3.
constexpr int kWeb1 = 1;
constexpr int kBastion = 2;
constexpr int kDb1 = 3;

struct CheckedCase {
  std::string name;
  std::function<void(model::Policy&)> mutate;
  std::string rule;
  int eni;
  std::string proto;
  bool checked;
};

void PrintTo(const CheckedCase& c, std::ostream* os) { *os << c.name; }

class CheckedCommit : public ::testing::TestWithParam<CheckedCase> {};

TEST_P(CheckedCommit, LabelHasCheckedBitExactlyWhenAwsWouldNotTrack) {
  const auto& c = GetParam();
  auto p = test::samplePolicy();
  if (c.mutate) {
    c.mutate(p);
  }
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(checked(*t, c.rule, c.eni, c.proto), c.checked)
      << "label " << commitLabel(*t, c.rule, c.eni, c.proto);
}

std::vector<CheckedCase> checkedCases() {
  using model::kProtoIcmp;
  using model::kProtoTcp;
  using model::kProtoUdp;
  const auto strict = [](model::Policy& p) { p.vpc.strict_revocation = true; };
  const auto webOpenIngress = [](model::Policy& p) {
    group(p, "sg-web").ingress.push_back(allFrom("0.0.0.0/0"));
  };
  return {
      // sg-web's egress allows all to 0.0.0.0/0 and ::/0: its 0.0.0.0/0 ingress rules are
      // untracked on web1.
      {"ZeroCidrTcpRuleWithOpenEgress", nullptr, "sg-web ingress #0", kWeb1, "tcp", true},
      {"ZeroCidrIpv6RuleWithOpenIpv6Egress", nullptr, "sg-web ingress #2", kWeb1, "tcp6", true},
      {"BastionSshFromAnywhere", nullptr, "sg-bastion ingress #0", kBastion, "tcp", true},
      {"GroupPeerIsTracked", nullptr, "sg-web ingress #3", kWeb1, "tcp", false},
      {"CidrPeerNotZeroIsTracked", nullptr, "sg-db ingress #2", kDb1, "icmp", false},
      // web1's ingress does not allow all ports from 0.0.0.0/0: its allow-all egress is tracked.
      {"OppositeDirectionNotOpen", nullptr, "sg-web egress #0", kWeb1, "tcp", false},
      {"OppositeDirectionOpenTcp", webOpenIngress, "sg-web egress #0", kWeb1, "tcp", true},
      {"OppositeDirectionOpenUdp", webOpenIngress, "sg-web egress #0", kWeb1, "udp", true},
      {"IcmpAlwaysTracked", webOpenIngress, "sg-web egress #0", kWeb1, "icmp", false},
      {"IcmpRuleFromAnywhereTracked",
       [](model::Policy& p) { group(p, "sg-web").ingress.push_back(protoRule(kProtoIcmp, -1, -1, "0.0.0.0/0")); },
       "sg-web ingress #4", kWeb1, "icmp", false},
      {"OppositeOpenOnlyForV4",
       [](model::Policy& p) { group(p, "sg-web").egress = {allFrom("0.0.0.0/0")}; },
       "sg-web ingress #2", kWeb1, "tcp6", false},
      {"OppositeAllowsSomePortsOnly",
       [](model::Policy& p) { group(p, "sg-web").egress = {protoRule(kProtoTcp, 443, 443, "0.0.0.0/0")}; },
       "sg-web ingress #0", kWeb1, "tcp", false},
      {"OppositeAllowsAllTcpPorts",
       [](model::Policy& p) { group(p, "sg-web").egress = {protoRule(kProtoTcp, 0, 65535, "0.0.0.0/0")}; },
       "sg-web ingress #0", kWeb1, "tcp", true},
      {"OppositeAllowsAllUdpOnly",
       [](model::Policy& p) { group(p, "sg-web").egress = {protoRule(kProtoUdp, 0, 65535, "0.0.0.0/0")}; },
       "sg-web ingress #0", kWeb1, "tcp", false},
      {"OppositeAllToACidrNotZero",
       [](model::Policy& p) { group(p, "sg-web").egress = {allFrom("10.0.0.0/8")}; },
       "sg-web ingress #0", kWeb1, "tcp", false},
      {"OppositeOpenedByAnotherGroup",
       [](model::Policy& p) {
         group(p, "sg-web").egress.clear();
         group(p, "sg-bastion").egress = {allFrom("0.0.0.0/0")};
         p.network_interfaces[0].security_group_ids = {"sg-web", "sg-bastion"};
       },
       "sg-web ingress #0", kWeb1, "tcp", true},
      // The same rule on two ENIs: untracked where the ENI is open, tracked where not.
      {"SameRuleOtherEniNotOpen",
       [](model::Policy& p) {
         group(p, "sg-bastion").egress.clear();
         group(p, "sg-db").egress.clear();
         group(p, "sg-db").ingress.push_back(protoRule(kProtoTcp, 8080, 8080, "0.0.0.0/0"));
         p.network_interfaces[1].security_group_ids = {"sg-bastion", "sg-db"};  // not open
         p.network_interfaces[2].security_group_ids = {"sg-db", "sg-web"};      // open egress
       },
       "sg-db ingress #3", kBastion, "tcp", false},
      {"SameRuleOpenEni",
       [](model::Policy& p) {
         group(p, "sg-bastion").egress.clear();
         group(p, "sg-db").egress.clear();
         group(p, "sg-db").ingress.push_back(protoRule(kProtoTcp, 8080, 8080, "0.0.0.0/0"));
         p.network_interfaces[1].security_group_ids = {"sg-bastion", "sg-db"};
         p.network_interfaces[2].security_group_ids = {"sg-db", "sg-web"};
       },
       "sg-db ingress #3", kDb1, "tcp", true},
      // Strict revocation: every commit is checked, ICMP and group peers included.
      {"StrictGroupPeer", strict, "sg-web ingress #3", kWeb1, "tcp", true},
      {"StrictIcmp", strict, "sg-db ingress #2", kDb1, "icmp", true},
      {"StrictEgress", strict, "sg-web egress #0", kWeb1, "udp", true},
  };
}

INSTANTIATE_TEST_SUITE_P(Revocation, CheckedCommit, ::testing::ValuesIn(checkedCases()),
                         [](const ::testing::TestParamInfo<CheckedCase>& param) { return param.param.name; });

TEST(Revocation, StrictModeNeedsNoOpenBits) {
  auto p = test::samplePolicy();
  p.vpc.strict_revocation = true;
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  for (const auto& f : t->flows) {
    EXPECT_EQ((f.match + f.actions).find("reg8"), std::string::npos) << f.match << " " << f.actions;
  }
}

// The fingerprint (label bits 64..95) names the rule by what it allows, not by its position.
TEST(Revocation, FingerprintSurvivesReorderingAndFollowsTheRulesEffect) {
  auto p = test::samplePolicy();
  p.vpc.strict_revocation = true;
  auto before = translate(inputFor(p));
  ASSERT_TRUE(before);
  const auto high = [](const std::string& label) { return label.substr(0, label.size() - 16); };
  const std::string ssh = commitLabel(*before, "sg-web ingress #3", kWeb1, "tcp");

  // The rule moves to the front and a new rule comes before it: neither its conjunction id
  // (stable ids, translator/rule_ids.h) nor its fingerprint changes.
  auto& ingress = group(p, "sg-web").ingress;
  std::rotate(ingress.begin(), ingress.begin() + 3, ingress.begin() + 4);
  group(p, "sg-web").egress.push_back(protoRule(model::kProtoTcp, 1, 1, "10.0.0.0/8"));
  auto shifted = translate(inputFor(p));
  ASSERT_TRUE(shifted);
  EXPECT_EQ(conjId(*before, "sg-web ingress #3"), conjId(*shifted, "sg-web ingress #0"));
  EXPECT_EQ(high(commitLabel(*shifted, "sg-web ingress #0", kWeb1, "tcp")), high(ssh));

  // A new member of the peer group changes what the rule allows.
  p.network_interfaces[2].security_group_ids.push_back("sg-bastion");
  auto grown = translate(inputFor(p));
  ASSERT_TRUE(grown);
  EXPECT_NE(high(commitLabel(*grown, "sg-web ingress #0", kWeb1, "tcp")), high(ssh));
}

// Live flows in the dispatch tables: one per checked rule and one per ENI, not per pair.
TEST(Revocation, StrictDispatchFlowsFollowTheGroupSlotsNotTheMembers) {
  const auto dispatchFlows = [](size_t extra_webs) {
    auto p = test::samplePolicy();
    p.vpc.strict_revocation = true;
    for (size_t i = 0; i < extra_webs; ++i) {
      auto e = p.network_interfaces[0];
      e.id = fmt::format("eni-web-x{}", i);
      e.mac_address = fmt::format("02:00:00:00:03:{:02x}", i);
      e.private_ip_addresses = {test::ip(fmt::format("10.0.1.{}", 100 + i).c_str())};
      e.ipv6_addresses.clear();
      p.network_interfaces.push_back(e);
    }
    auto t = translate(inputFor(p));
    EXPECT_TRUE(t);
    return countMatching(t->flows, pipeline::kSgEgress, "") +
           countMatching(t->flows, pipeline::kSgIngress, "");
  };
  const size_t ten = dispatchFlows(10);
  const size_t twenty = dispatchFlows(20);
  // Every web ENI holds sg-web in the same slot: its rules' interface clause in tables 31 and 51
  // is that slot's flow, so more members add no dispatch flow.
  EXPECT_GT(ten, 0U);
  EXPECT_EQ(twenty, ten);
}

TEST(Revocation, RevokedRepliesDropWithTheirOwnVerdict) {
  auto p = test::samplePolicy();
  auto t = translate(inputFor(p));
  ASSERT_TRUE(t);
  for (auto [dispatch, verdict] : {std::pair{pipeline::kSgEgress, pipeline::kVerdictSgEgressRevoked},
                                   std::pair{pipeline::kSgIngress, pipeline::kVerdictSgIngressRevoked}}) {
    const auto table = dispatch;  // clang 14 cannot capture structured bindings
    const auto it = std::find_if(t->flows.begin(), t->flows.end(), [&](const Flow& f) {
      return f.table == table && f.match.find("+rpl") != std::string::npos;
    });
    ASSERT_NE(it, t->flows.end());
    EXPECT_EQ(it->actions, fmt::format("set_field:{:#x}->reg4,goto_table:{}", verdict,
                                       static_cast<int>(pipeline::kDrop)));
  }
}

// Flow logs: a logged interface gets its counting flows; the rest of the policy's flows are the
// same with or without flow logs (adding or removing a flow log touches no SG or NACL flow).
TEST(FlowLogs, OnlyTheLoggedInterfacesGetCountingFlows) {
  auto p = test::samplePolicy();
  auto plain = translate(inputFor(p));
  ASSERT_TRUE(plain);
  model::FlowLog fl;
  fl.id = "fl-1";
  fl.resource_id = "eni-db1";
  fl.log_destination = "file:///tmp/x";
  p.flow_logs.push_back(fl);
  auto logged = translate(inputFor(p));
  ASSERT_TRUE(logged);
  std::vector<Flow> added;
  std::set_difference(logged->flows.begin(), logged->flows.end(), plain->flows.begin(),
                      plain->flows.end(), std::back_inserter(added), units::FlowOrder{});
  ASSERT_FALSE(added.empty());
  const auto index = assignInterfaceIndices(p, {});
  ASSERT_TRUE(index);
  const uint16_t db = index->at("eni-db1");
  size_t rejects = 0;
  for (const auto& f : added) {
    if (f.table == pipeline::kDrop) {
      // Rejects are sampled in the drop table, behind the meter, per verdict (the SG kinds;
      // every NACL's `*` and deny entries by rule number).
      ++rejects;
      EXPECT_EQ(f.cookie, pipeline::makeCookie(7, pipeline::CookieKind::kFlowLog, 0)) << f.match;
      EXPECT_EQ(f.actions.rfind(fmt::format("meter:{},sample(", pipeline::kRejectMeterId), 0), 0U)
          << f.actions;
      continue;
    }
    EXPECT_TRUE(f.table == pipeline::kFlowLogEgress || f.table == pipeline::kFlowLogIngress) << f.match;
    EXPECT_EQ(f.cookie, pipeline::makeCookie(7, pipeline::CookieKind::kFlowLog, db)) << f.match;
  }
  EXPECT_EQ(rejects, units::flowLogRejectVerdicts(p).size());
  EXPECT_GE(rejects, 6U);  // 4 SG kinds, 2 `*` rules
  EXPECT_EQ(logged->flows.size(), plain->flows.size() + added.size());
}

}  // namespace
}  // namespace vpcguard
