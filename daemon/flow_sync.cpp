#include "daemon/flow_sync.h"

#include <algorithm>
#include <utility>

#include "translator/pipeline.h"

namespace vpcguard {
namespace {

bool isOurs(uint64_t cookie) {
  return (cookie & pipeline::kCookieMagicMask) == pipeline::kCookieMagic;
}

std::string describeErrors(const ovs::BundleOutcome& outcome, const std::vector<ovs::FlowMod>& mods) {
  std::string out = "the switch rejected the change (nothing was applied):";
  size_t shown = 0;
  for (const auto& e : outcome.errors) {
    if (++shown > 5) {
      out += " ...";
      break;
    }
    out += " [" + e.message;
    if (e.index && *e.index < mods.size()) {
      out += " in flow: " + toOfctlText(mods[*e.index].flow);
    }
    out += "]";
  }
  return out;
}

}  // namespace

std::map<uint8_t, size_t> FlowSync::installedPerTable() const {
  std::map<uint8_t, size_t> out;
  for (const auto& [key, flow] : installed_) {
    ++out[flow.table];
  }
  return out;
}

Result<FlowSync::Table> FlowSync::normalized(const std::vector<Flow>& flows) {
  Table out;
  std::unordered_map<std::string, Flow> cache;
  cache.reserve(flows.size());
  for (const auto& f : flows) {
    // Our flows are compared with the switch's dumps, so they must be in the switch's text.
    std::string text = toOfctlText(f);
    Flow n;
    if (auto hit = normalized_cache_.find(text); hit != normalized_cache_.end()) {
      n = hit->second;
    } else {
      auto parsed = ovs::normalizeFlow(f);
      if (!parsed) {
        return tl::unexpected(parsed.error());
      }
      n = std::move(*parsed);
    }
    Key key{n.table, n.priority, n.match};
    if (!out.emplace(std::move(key), n).second) {
      return makeError("duplicate flow identity: " + text);
    }
    cache.emplace(std::move(text), std::move(n));
  }
  // Keep only what the current policy uses, so the cache cannot grow without bound.
  normalized_cache_ = std::move(cache);
  return out;
}

Result<void> FlowSync::readInstalled() {
  // Every flow, not only ours: foreign flows in our tables are drift as well.
  auto dumped = channel_.dumpFlows(ovs::DumpFilter{});
  if (!dumped) {
    return tl::unexpected(dumped.error().withContext("read installed flows"));
  }
  installed_.clear();
  for (auto& f : *dumped) {
    if (!isOurs(f.flow.cookie) && !pipeline::isOwnedTable(f.flow.table)) {
      continue;
    }
    Key key{f.flow.table, f.flow.priority, f.flow.match};
    installed_.emplace(std::move(key), std::move(f.flow));
  }
  return {};
}

uint16_t FlowSync::newestInstalledGeneration() const {
  uint16_t newest = 0;
  for (const auto& [key, flow] : installed_) {
    if (isOurs(flow.cookie)) {
      newest = std::max(newest, pipeline::cookieGeneration(flow.cookie));
    }
  }
  return newest;
}

bool FlowSync::explains(const ovs::FlowUpdate& update) const {
  using Kind = ovs::FlowUpdateKind;
  if (update.kind == Kind::kPaused || update.kind == Kind::kResumed) {
    return false;
  }
  const Flow& f = update.flow;
  if (!isOurs(f.cookie) && !pipeline::isOwnedTable(f.table)) {
    return true;
  }
  auto it = installed_.find(Key{f.table, f.priority, f.match});
  if (update.kind == Kind::kRemoved) {
    return it == installed_.end();
  }
  return it != installed_.end() && it->second.cookie == f.cookie &&
         it->second.actions == f.actions;
}

Result<SyncReport> FlowSync::syncFull(const std::vector<Flow>& desired) {
  if (auto r = readInstalled(); !r) {
    return tl::unexpected(r.error());
  }
  auto target = normalized(desired);
  if (!target) {
    return tl::unexpected(target.error());
  }
  return applyDiff(std::move(*target));
}

Result<SyncReport> FlowSync::applyDesired(const std::vector<Flow>& desired) {
  auto target = normalized(desired);
  if (!target) {
    return tl::unexpected(target.error());
  }
  return applyDiff(std::move(*target));
}

Result<SyncReport> FlowSync::applyDiff(Table target) {
  const auto start = std::chrono::steady_clock::now();
  SyncReport report;
  std::vector<ovs::FlowMod> mods;
  std::vector<ovs::FlowMod> deletes;
  // Both tables are sorted by key: one merge pass finds adds, modifies and deletes.
  auto i = installed_.begin();
  auto t = target.begin();
  while (i != installed_.end() || t != target.end()) {
    if (t == target.end() || (i != installed_.end() && i->first < t->first)) {
      deletes.push_back(ovs::FlowMod{ovs::FlowCommand::kDeleteStrict, i->second, 0});
      ++report.deleted;
      ++i;
    } else if (i == installed_.end() || t->first < i->first) {
      mods.push_back(ovs::FlowMod{ovs::FlowCommand::kAdd, t->second, 0});
      ++report.added;
      ++t;
    } else {
      const uint64_t kIgnoreGeneration = ~pipeline::kCookieGenerationMask;
      if (i->second.actions != t->second.actions ||
          (i->second.cookie & kIgnoreGeneration) != (t->second.cookie & kIgnoreGeneration)) {
        // An add replaces the flow with the same identity in one step (statistics kept). Not
        // modify-strict: from OpenFlow 1.1 on, it cannot change a flow's cookie.
        mods.push_back(ovs::FlowMod{ovs::FlowCommand::kAdd, t->second, 0});
        ++report.modified;
      } else {
        t->second.cookie = i->second.cookie;  // adopted: right, written by an earlier start
      }
      ++i;
      ++t;
    }
  }
  // New and changed flows first, stale ones last: the bundle is atomic anyway, but this way the
  // new generation is in before the old one goes even if it were ever applied in parts.
  mods.insert(mods.end(), std::make_move_iterator(deletes.begin()),
              std::make_move_iterator(deletes.end()));
  if (!mods.empty()) {
    auto outcome = channel_.applyBundle(mods);
    if (!outcome) {
      return tl::unexpected(outcome.error().withContext("install flows"));
    }
    if (!outcome->committed) {
      return makeError(describeErrors(*outcome, mods));
    }
  }
  installed_ = std::move(target);
  report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  return report;
}

}  // namespace vpcguard
