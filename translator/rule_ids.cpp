#include "translator/rule_ids.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "translator/hash.h"
#include "translator/pipeline.h"

namespace vpcguard {
namespace {

bool sameRules(const std::vector<model::SecurityGroupRule>& a,
               const std::vector<model::SecurityGroupRule>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(),
                    [](const auto& x, const auto& y) { return sameRuleContent(x, y); });
}

}  // namespace

std::string ruleIdentity(const std::string& group_id, bool egress,
                         const model::SecurityGroupRule& rule) {
  std::string text =
      fmt::format("{}|{}|{}", group_id, egress ? "egress" : "ingress", rule.ip_protocol);
  if (rule.ports) {
    text += fmt::format("|ports={}-{}", rule.ports->from, rule.ports->to);
  }
  if (rule.icmp) {
    text += fmt::format("|icmp={}/{}", rule.icmp->type, rule.icmp->code);
  }
  if (const auto* c = std::get_if<Cidr>(&rule.peer)) {
    text += "|cidr=" + c->toString();
  } else if (const auto* g = std::get_if<model::GroupRef>(&rule.peer)) {
    text += "|group=" + g->group_id;
  } else if (const auto* p = std::get_if<model::PrefixListRef>(&rule.peer)) {
    text += "|prefix-list=" + p->prefix_list_id;
  }
  return text;
}

bool sameRuleContent(const model::SecurityGroupRule& a, const model::SecurityGroupRule& b) {
  return a.ip_protocol == b.ip_protocol && a.ports == b.ports && a.icmp == b.icmp &&
         a.peer == b.peer;
}

Result<void> RuleIdAllocator::update(const model::Policy& policy) {
  struct Change {
    const std::string* group_id;
    int dir;
    const std::vector<model::SecurityGroupRule>* rules;
    std::vector<std::string> identities;
  };
  std::vector<Change> changes;
  std::unordered_set<std::string_view> present;
  present.reserve(policy.security_groups.size());
  for (const auto& g : policy.security_groups) {
    present.insert(g.id);
    auto it = groups_.find(g.id);
    for (int d = 0; d < 2; ++d) {
      const auto& rules = d == 1 ? g.egress : g.ingress;
      if (it == groups_.end() || !sameRules(it->second.dir[d].rules, rules)) {
        changes.push_back(Change{&g.id, d, &rules, {}});
      }
    }
  }
  std::vector<std::string> removed_groups;
  for (const auto& [id, group] : groups_) {
    if (present.count(id) == 0) {
      removed_groups.push_back(id);
    }
  }
  if (changes.empty() && removed_groups.empty()) {
    return {};
  }

  // The identities of the changed directions. Validation rejects duplicate rules; should two
  // rules still say the same, the later ones get "#2", "#3"... so every rule has its own id.
  std::unordered_set<std::string> wanted;
  for (auto& c : changes) {
    for (const auto& r : *c.rules) {
      std::string identity = ruleIdentity(*c.group_id, c.dir == 1, r);
      if (wanted.count(identity) != 0) {
        for (int n = 2;; ++n) {
          std::string numbered = fmt::format("{}#{}", identity, n);
          if (wanted.count(numbered) == 0) {
            identity = std::move(numbered);
            break;
          }
        }
      }
      wanted.insert(identity);
      c.identities.push_back(std::move(identity));
    }
  }
  // Identities that leave: those of removed groups and of changed directions not wanted now.
  std::vector<std::string> freed;
  const auto collectFreed = [&](const Direction& dir) {
    for (const auto& identity : dir.identities) {
      if (wanted.count(identity) == 0) {
        freed.push_back(identity);
      }
    }
  };
  for (const auto& c : changes) {
    if (auto it = groups_.find(*c.group_id); it != groups_.end()) {
      collectFreed(it->second.dir[c.dir]);
    }
  }
  for (const auto& id : removed_groups) {
    for (const auto& dir : groups_.at(id).dir) {
      collectFreed(dir);
    }
  }
  std::vector<std::string> needed;
  for (const auto& identity : wanted) {
    if (by_identity_.count(identity) == 0) {
      needed.push_back(identity);
    }
  }
  const size_t capacity = kRuleIdLimit - pipeline::kConjIdBase;
  if (used_.size() - freed.size() + needed.size() > capacity) {
    return makeError(
        fmt::format("more than {} security-group rules: no conjunction id left", capacity));
  }
  // New groups (their two directions are adjacent changes), in id order like the rule ids.
  std::vector<std::string_view> new_groups;
  for (const auto& c : changes) {
    if (groups_.count(*c.group_id) == 0 &&
        (new_groups.empty() || new_groups.back() != *c.group_id)) {
      new_groups.emplace_back(*c.group_id);
    }
  }
  const size_t group_capacity = kGroupIndexLimit - 1;
  if (used_group_indices_.size() - removed_groups.size() + new_groups.size() > group_capacity) {
    return makeError(fmt::format("more than {} security groups: no group index left",
                                 group_capacity));
  }

  for (const auto& identity : freed) {
    auto it = by_identity_.find(identity);
    if (it != by_identity_.end()) {
      used_.erase(it->second);
      by_identity_.erase(it);
    }
  }
  // In identity order, so equal inputs give equal ids whatever order the config lists them in.
  std::sort(needed.begin(), needed.end());
  for (auto& identity : needed) {
    uint32_t id = pipeline::kConjIdBase + fnv1a(identity) % static_cast<uint32_t>(capacity);
    while (used_.count(id) != 0) {
      id = id + 1 == kRuleIdLimit ? pipeline::kConjIdBase : id + 1;
    }
    used_.insert(id);
    by_identity_.emplace(std::move(identity), id);
  }
  for (auto& c : changes) {
    Direction& dir = groups_[*c.group_id].dir[c.dir];
    dir.rules.assign(c.rules->begin(), c.rules->end());
    for (auto& r : dir.rules) {
      // Only the content is compared later; the rest need not be kept.
      r.description.clear();
      r.location = {};
    }
    dir.ids.clear();
    for (const auto& identity : c.identities) {
      dir.ids.push_back(by_identity_.at(identity));
    }
    dir.identities = std::move(c.identities);
  }
  for (const auto& id : removed_groups) {
    used_group_indices_.erase(groups_.at(id).index);
    groups_.erase(id);
  }
  std::sort(new_groups.begin(), new_groups.end());
  for (std::string_view id : new_groups) {
    auto index = static_cast<uint16_t>(1 + fnv1a(id) % group_capacity);
    while (used_group_indices_.count(index) != 0) {
      index = index == group_capacity ? 1 : index + 1;
    }
    used_group_indices_.insert(index);
    groups_.at(std::string(id)).index = index;
  }
  return {};
}

uint16_t RuleIdAllocator::groupIndex(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? 0 : it->second.index;
}

const std::vector<uint32_t>* RuleIdAllocator::ids(const std::string& group_id, bool egress) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) {
    return nullptr;
  }
  return &it->second.dir[egress ? 1 : 0].ids;
}

}  // namespace vpcguard
