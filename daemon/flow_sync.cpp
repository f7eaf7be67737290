#include "daemon/flow_sync.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "translator/pipeline.h"

// Header-only: no library to link or ship.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace vpcguard {
namespace {

bool isOurs(uint64_t cookie) {
  return (cookie & pipeline::kCookieMagicMask) == pipeline::kCookieMagic;
}

uint64_t withoutGeneration(uint64_t cookie) {
  return cookie & ~pipeline::kCookieGenerationMask;
}

// Whether the flow the switch has (`have`) must be replaced by `want` of the same identity:
// other actions, or a cookie that differs beyond its generation. (A flow that differs only in
// the generation is adopted as it is.) The replacement is an add, which swaps the flow in one
// step with its statistics; not modify-strict, which from OpenFlow 1.1 on cannot change a
// cookie.
bool mustRewrite(const Flow& have, const Flow& want) {
  return have.actions != want.actions ||
         withoutGeneration(have.cookie) != withoutGeneration(want.cookie);
}

// The mods of a bundle, referring to the flows (which must outlive the bundle), as one exactly
// sized vector: at 100k flows, growing vectors of copied mods was tens of MiB of the start-up
// peak. Stale flows go out before new ones come in. The bundle is atomic and versioned (no
// packet sees a half-applied change whatever the order), but the switch counts a table's flows
// per flow mod: deleting first frees the room a table at its operator-set flow_limit
// (Flow_Table, no eviction) needs to swap flows, which adds first would overflow.
std::vector<ovs::FlowMod> bundleOf(std::span<const Flow* const> deletes,
                                   std::span<const Flow* const> adds) {
  std::vector<ovs::FlowMod> mods;
  mods.reserve(deletes.size() + adds.size());
  for (const Flow* f : deletes) {
    mods.push_back(ovs::FlowMod::referring(ovs::FlowCommand::kDeleteStrict, *f));
  }
  for (const Flow* f : adds) {
    mods.push_back(ovs::FlowMod::referring(ovs::FlowCommand::kAdd, *f));
  }
  return mods;
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
      out += " in flow: " + toOfctlText(mods[*e.index].target());
    }
    out += "]";
  }
  return out;
}

// Whether `actions` is a list of conjunction actions only ("conjunction(7,1/3),..."), the
// actions of the translator's clause flows.
bool conjunctionsOnly(std::string_view actions) {
  static constexpr std::string_view kPrefix = "conjunction(";
  size_t i = 0;
  const auto number = [&] {
    const size_t from = i;
    while (i < actions.size() && actions[i] >= '0' && actions[i] <= '9') {
      ++i;
    }
    return i > from;
  };
  const auto expect = [&](char c) {
    if (i < actions.size() && actions[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  while (actions.substr(i).starts_with(kPrefix)) {
    i += kPrefix.size();
    if (!number() || !expect(',') || !number() || !expect('/') || !number() || !expect(')')) {
      return false;
    }
    if (i == actions.size()) {
      return true;
    }
    if (!expect(',')) {
      return false;
    }
  }
  return false;
}

}  // namespace

std::map<uint8_t, size_t> FlowSync::installedPerTable() const {
  std::map<uint8_t, size_t> out;
  for (size_t table = 0; table < per_table_.size(); ++table) {
    if (per_table_[table] != 0) {
      out.emplace(static_cast<uint8_t>(table), per_table_[table]);
    }
  }
  return out;
}

void FlowSync::recountPerTable() {
  per_table_.fill(0);
  for (const auto& flow : installed_) {
    ++per_table_[flow.table];
  }
}

Result<FlowSync::Table> FlowSync::normalized(std::span<const Flow* const> flows) {
  Table out;
  std::unordered_map<TextDigest, CachedForm, TextDigestHash> cache;
  cache.reserve(flows.size());
  for (const Flow* flow : flows) {
    const Flow& f = *flow;
    // Our flows are compared with the switch's dumps, so they must be in the switch's text.
    TextDigest text;
    CachedForm base;
    auto n = normalizedOne(f, text, base);
    if (!n) {
      return tl::unexpected(n.error());
    }
    if (!out.insert(std::move(*n)).second) {
      return makeError("duplicate flow identity: " + toOfctlText(f));
    }
    cache.emplace(text, std::move(base));
  }
  // Keep only what the current policy uses, so the cache cannot grow without bound.
  normalized_cache_ = std::move(cache);
  return out;
}

Result<void> FlowSync::readInstalled() {
  // Every flow, not only ours: foreign flows in our tables are drift as well.
  beforeSwitchCall();
  auto dumped = channel_.dumpFlows(ovs::DumpFilter{});
  if (!dumped) {
    return tl::unexpected(dumped.error().withContext("read installed flows"));
  }
  installed_.clear();
  for (auto& f : *dumped) {
    if (!isOurs(f.flow.cookie) && !pipeline::isOwnedTable(f.flow.table)) {
      continue;
    }
    installed_.insert(std::move(f.flow));
  }
  installed_unknown_ = false;
  recountPerTable();
  return {};
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
  auto it = installed_.find(Id{f.table, f.priority, f.match});
  const bool current = update.kind == Kind::kRemoved
                           ? it == installed_.end()
                           : it != installed_.end() && it->cookie == f.cookie && it->actions == f.actions;
  if (recent_.empty()) {
    return current;
  }
  // Also when it is the current version: that consumes what we wrote before it.
  return consumeWritten(Id{f.table, f.priority, f.match}, versionOf(update)) || current;
}

FlowSync::Version FlowSync::versionOf(const ovs::FlowUpdate& update) {
  if (update.kind == ovs::FlowUpdateKind::kRemoved) {
    return std::nullopt;
  }
  return std::make_pair(update.flow.cookie, update.flow.actions);
}

namespace {
std::vector<const Flow*> refsOf(const std::vector<Flow>& flows) {
  std::vector<const Flow*> out;
  out.reserve(flows.size());
  for (const auto& f : flows) {
    out.push_back(&f);
  }
  return out;
}
}  // namespace

Result<SyncReport> FlowSync::syncFull(const std::vector<Flow>& desired) {
  return syncFull(refsOf(desired));
}

Result<SyncReport> FlowSync::applyDesired(const std::vector<Flow>& desired) {
  return applyDesired(refsOf(desired));
}

Result<SyncReport> FlowSync::syncFull(std::span<const Flow* const> desired) {
  // What the switch says replaces what we believed; holding both was the peak of a full compare.
  installed_ = Table{};
  per_table_.fill(0);
  installed_unknown_ = true;
  auto normalized_target = normalized(desired);
  if (!normalized_target) {
    return tl::unexpected(normalized_target.error());
  }
  Table& target = *normalized_target;

  // The switch's flows, compared as they arrive. What the switch has and `target` lacks is kept
  // (to delete, and to know the switch's table should the bundle fail); for the rest only which
  // target flow it matched, and the switch's version where it differs.
  const ByIdentity less;
  std::vector<Flow> stale;                              // ours to delete, or foreign in our tables
  std::vector<const Flow*> matched;                     // target flows the switch has
  std::vector<std::pair<Table::iterator, Flow>> changed;  // ... with other actions or cookie
  std::vector<std::pair<Table::iterator, uint64_t>> adopted;  // right but for the generation
  beforeSwitchCall();
  auto dumped = channel_.dumpFlowsTo(ovs::DumpFilter{}, [&](ovs::InstalledFlow&& f) {
    // Every flow, not only ours: foreign flows in our tables are drift as well.
    if (!isOurs(f.flow.cookie) && !pipeline::isOwnedTable(f.flow.table)) {
      return;
    }
    const auto it = target.find(ByIdentity::id(f.flow));
    if (it == target.end()) {
      stale.push_back(std::move(f.flow));
      return;
    }
    matched.push_back(&*it);
    if (mustRewrite(f.flow, *it)) {
      changed.emplace_back(it, std::move(f.flow));
    } else if (it->cookie != f.flow.cookie) {
      adopted.emplace_back(it, f.flow.cookie);
    }
  });
  if (!dumped) {
    return tl::unexpected(dumped.error().withContext("read installed flows"));
  }
  const auto compared = std::chrono::steady_clock::now();

  // Target flows the switch does not have, in identity order.
  std::sort(matched.begin(), matched.end(),
            [&](const Flow* a, const Flow* b) { return less(*a, *b); });
  std::vector<Table::iterator> missing;
  auto m = matched.begin();
  for (auto t = target.begin(); t != target.end(); ++t) {
    if (m != matched.end() && *m == &*t) {
      ++m;
    } else {
      missing.push_back(t);
    }
  }
  SyncReport report;
  report.deleted = stale.size();
  report.modified = changed.size();
  report.added = missing.size();
  std::vector<const Flow*> deletes;
  deletes.reserve(stale.size());
  for (const Flow& f : stale) {
    deletes.push_back(&f);
  }
  std::vector<const Flow*> adds;
  adds.reserve(changed.size() + missing.size());
  for (const auto& [it, theirs] : changed) {
    adds.push_back(&*it);
  }
  for (const auto& it : missing) {
    adds.push_back(&*it);
  }
  auto mods = bundleOf(deletes, adds);
  const auto setCookie = [&](Table::iterator it, uint64_t cookie) {
    const auto next = std::next(it);
    auto node = target.extract(it);
    node.value().cookie = cookie;
    target.insert(next, std::move(node));
  };
  auto sent = sendBundle(mods, report, /*installed_is_before=*/false);  // installed_ was dropped
  mods.clear();
  if (!sent) {
    // Nothing changed in the switch: it holds what it sent, which is the installed state now.
    for (const auto& it : missing) {
      target.erase(it);
    }
    for (auto& [it, theirs] : changed) {
      const auto next = std::next(it);
      auto node = target.extract(it);
      node.value() = std::move(theirs);
      target.insert(next, std::move(node));
    }
    for (auto& f : stale) {
      target.insert(std::move(f));
    }
  }
  for (const auto& [it, cookie] : adopted) {
    setCookie(it, cookie);
  }
  installed_ = std::move(target);
  installed_unknown_ = false;
  recountPerTable();
  report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - compared);
  if (!sent) {
    return tl::unexpected(sent.error());
  }
  return report;
}

Result<uint16_t> FlowSync::readNewestGeneration() {
  uint16_t newest = 0;
  beforeSwitchCall();
  auto dumped = channel_.dumpFlowsTo(ovs::DumpFilter{}, [&](ovs::InstalledFlow&& f) {
    if (isOurs(f.flow.cookie)) {
      newest = std::max(newest, pipeline::cookieGeneration(f.flow.cookie));
    }
  });
  if (!dumped) {
    return tl::unexpected(dumped.error().withContext("read installed flows"));
  }
  return newest;
}

Result<SyncReport> FlowSync::applyDesired(std::span<const Flow* const> desired) {
  if (installed_unknown_) {
    return syncFull(desired);
  }
  auto target = normalized(desired);
  if (!target) {
    return tl::unexpected(target.error());
  }
  return applyDiff(std::move(*target));
}

Result<SyncReport> FlowSync::applyDiff(Table target) {
  const auto start = std::chrono::steady_clock::now();
  SyncReport report;
  // The flows to send, as pointers into installed_ and target (both alive until the bundle is
  // done).
  std::vector<const Flow*> adds;
  std::vector<const Flow*> deletes;
  // Adopted flows: right but for the generation in their cookie, written by an earlier start.
  // They stay as they are, so the installed state takes their cookie.
  std::vector<std::pair<Table::iterator, uint64_t>> adopted;
  const ByIdentity less;
  // Both tables are sorted by identity: one merge pass finds adds, modifies and deletes.
  auto i = installed_.begin();
  auto t = target.begin();
  while (i != installed_.end() || t != target.end()) {
    if (t == target.end() || (i != installed_.end() && less(*i, *t))) {
      deletes.push_back(&*i);
      ++report.deleted;
      ++i;
    } else if (i == installed_.end() || less(*t, *i)) {
      adds.push_back(&*t);
      ++report.added;
      ++t;
    } else {
      if (mustRewrite(*i, *t)) {
        adds.push_back(&*t);
        ++report.modified;
      } else if (t->cookie != i->cookie) {
        adopted.emplace_back(t, i->cookie);
      }
      ++i;
      ++t;
    }
  }
  if (auto sent = sendBundle(bundleOf(deletes, adds), report); !sent) {
    return tl::unexpected(sent.error());
  }
  for (auto& [it, cookie] : adopted) {
    const auto next = std::next(it);
    auto node = target.extract(it);
    node.value().cookie = cookie;
    target.insert(next, std::move(node));
  }
  installed_ = std::move(target);
  recountPerTable();
  report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  return report;
}

Result<void> FlowSync::sendBundle(const std::vector<ovs::FlowMod>& mods, SyncReport& report,
                                  bool installed_is_before) {
  if (mods.empty()) {
    return {};
  }
  beforeSwitchCall();
  const auto start = std::chrono::steady_clock::now();
  auto outcome = channel_.applyBundle(mods);
  report.bundle_duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  if (!outcome) {
    return tl::unexpected(outcome.error().withContext("install flows"));
  }
  if (!outcome->committed) {
    return makeError(describeErrors(*outcome, mods));
  }
  rememberWritten(mods, installed_is_before);
  return {};
}

void FlowSync::rememberWritten(const std::vector<ovs::FlowMod>& mods, bool installed_is_before) {
  const auto now = std::chrono::steady_clock::now();
  const auto after = [](const ovs::FlowMod& m) -> Version {
    if (m.command == ovs::FlowCommand::kDeleteStrict || m.command == ovs::FlowCommand::kDelete) {
      return std::nullopt;
    }
    return std::make_pair(m.target().cookie, m.target().actions);
  };
  // The version before a mod (nullopt: unknown, installed_ does not hold the switch's flows).
  const auto before = [&](const ovs::FlowMod& m) -> std::optional<Version> {
    if (!installed_is_before) {
      return std::nullopt;
    }
    const Flow& f = m.target();
    auto it = installed_.find(Id{f.table, f.priority, f.match});
    return it == installed_.end() ? Version{} : Version{std::make_pair(it->cookie, it->actions)};
  };
  if (now - recent_pruned_ >= std::chrono::seconds(1)) {
    recent_pruned_ = now;
    for (auto it = recent_.begin(); it != recent_.end();) {
      auto& list = it->second;
      std::erase_if(list, [&](const Written& w) { return now - w.at >= kRecentFor; });
      it = list.empty() ? recent_.erase(it) : std::next(it);
    }
  }
  const bool remember = mods.size() <= kRecentLimit;
  if (!recording_ && !remember) {
    return;
  }
  for (const auto& m : mods) {
    const Flow& f = m.target();
    Key key{f.table, f.priority, f.match};
    std::optional<Version> was = before(m);
    Version now_is = after(m);
    if (recording_) {
      record(key, was, now_is);
    }
    if (remember) {
      recent_[std::move(key)].push_back(Written{std::move(now_is), std::move(was), now});
    }
  }
}

void FlowSync::record(Key key, const std::optional<Version>& before, const Version& after) {
  Recorded& r = recorded_[std::move(key)];
  if (!before) {
    r.any = true;
    return;
  }
  r.versions.push_back(*before);
  r.versions.push_back(after);
}

bool FlowSync::consumeWritten(const Id& id, const Version& version) const {
  auto it = recent_.find(id);
  if (it == recent_.end()) {
    return false;
  }
  auto& list = it->second;
  const auto now = std::chrono::steady_clock::now();
  const auto live = [&](const Written& w) { return now - w.at < kRecentFor; };
  // A version one of our writes wrote. Outside a pause the switch reports changes in the order
  // it made them: the writes before this one were seen or folded into it.
  for (size_t k = 0; k < list.size(); ++k) {
    if (live(list[k]) && list[k].version == version) {
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(k) + 1);
      if (list.empty()) {
        recent_.erase(it);
      }
      return true;
    }
  }
  // The version the oldest pending write replaced, while that write's own update is still to
  // come: the switch sent this update before our write (a large install's update, read after
  // the change that followed it; or a replay taken before it), and ours overwrote it. Only the
  // oldest: a version reported after a later write of ours is someone writing it back. Pending
  // writes lose this when a paused monitor resumes (recordChanges(false)): their own updates may
  // never come.
  for (size_t k = 0; k < list.size(); ++k) {
    if (!live(list[k])) {
      continue;
    }
    if (list[k].before && *list[k].before == version) {
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(k));  // expired ones
      return true;
    }
    break;
  }
  return false;
}

void FlowSync::recordChanges(bool on) {
  recording_ = on;
  recorded_.clear();
  if (!on) {
    // Resumed: the replay stood for the updates of the writes made until then, and a flow they
    // added and deleted meanwhile is never reported. What they replaced is no longer to come.
    for (auto& [key, list] : recent_) {
      for (Written& w : list) {
        w.before.reset();
      }
    }
  }
}

bool FlowSync::changedWhileRecording(const ovs::FlowUpdate& update) const {
  if (!recording_) {
    return false;
  }
  const Flow& f = update.flow;
  auto it = recorded_.find(Id{f.table, f.priority, f.match});
  if (it == recorded_.end()) {
    return false;
  }
  const Version v = versionOf(update);
  return it->second.any ||
         std::find(it->second.versions.begin(), it->second.versions.end(), v) !=
             it->second.versions.end();
}

Result<Flow> FlowSync::normalizedOne(const Flow& flow, TextDigest& key, CachedForm& base) {
  const bool clause = conjunctionsOnly(flow.actions);
  // What OVS parses: a clause flow's match with "drop", else the flow itself. Empty actions are
  // written "drop" here as in its text, so one text (one digest) always stands for one Flow.
  const bool rewrite = clause || flow.actions.empty();
  const Flow rewritten = rewrite ? Flow{flow.table, flow.priority, flow.cookie, flow.match, "drop"}
                                 : Flow{};
  const Flow& parsed = rewrite ? rewritten : flow;
  const std::string text = toOfctlText(parsed);
  const XXH128_hash_t digest = XXH3_128bits(text.data(), text.size());
  key = TextDigest{digest.low64, digest.high64};
  if (auto hit = normalized_cache_.find(key); hit != normalized_cache_.end()) {
    base = hit->second;
  } else {
    auto n = ovs::normalizeFlow(parsed);
    if (!n) {
      return tl::unexpected(n.error());
    }
    if (*n == parsed) {
      base.reset();  // already canonical: nothing to keep
    } else {
      base = std::make_shared<const Flow>(std::move(*n));
    }
  }
  Flow out = base ? *base : parsed;
  if (clause) {
    out.actions = flow.actions;
  }
  return out;
}

Result<SyncReport> FlowSync::applyDelta(const FlowDelta& delta) {
  const auto start = std::chrono::steady_clock::now();
  SyncReport report;
  // Per identity (in the switch's canonical text): what goes and what comes. A changed flow is
  // in both lists of the delta and becomes one modify.
  struct Change {
    bool removed = false;
    std::optional<Flow> next;
  };
  std::map<Key, Change> changes;
  std::vector<TextDigest> dropped_texts;
  std::vector<std::pair<TextDigest, CachedForm>> new_texts;
  dropped_texts.reserve(delta.removed.size());
  new_texts.reserve(delta.added.size());
  for (const auto& f : delta.removed) {
    TextDigest text;
    CachedForm base;
    auto n = normalizedOne(f, text, base);
    if (!n) {
      return tl::unexpected(n.error());
    }
    changes[Key{n->table, n->priority, n->match}].removed = true;
    dropped_texts.push_back(text);
  }
  for (const auto& f : delta.added) {
    TextDigest text;
    CachedForm base;
    auto n = normalizedOne(f, text, base);
    if (!n) {
      return tl::unexpected(n.error());
    }
    auto& change = changes[Key{n->table, n->priority, n->match}];
    if (change.next) {
      return makeError("duplicate flow identity: " + toOfctlText(f));
    }
    change.next = std::move(*n);
    new_texts.emplace_back(text, std::move(base));
  }
  std::vector<const Flow*> adds;
  std::vector<const Flow*> deletes;
  for (auto& [key, change] : changes) {
    auto installed = installed_.find(idOf(key));
    if (change.next) {
      if (installed == installed_.end()) {
        adds.push_back(&*change.next);
        ++report.added;
      } else if (mustRewrite(*installed, *change.next)) {
        adds.push_back(&*change.next);
        ++report.modified;
      } else {
        change.next->cookie = installed->cookie;  // adopted, see applyDiff()
      }
    } else if (installed != installed_.end()) {
      deletes.push_back(&*installed);
      ++report.deleted;
    }
  }
  if (auto sent = sendBundle(bundleOf(deletes, adds), report); !sent) {
    return tl::unexpected(sent.error());
  }
  for (auto& [key, change] : changes) {
    if (auto it = installed_.find(idOf(key)); it != installed_.end()) {
      --per_table_[it->table];
      installed_.erase(it);
    }
    if (change.next) {
      ++per_table_[change.next->table];
      installed_.insert(std::move(*change.next));
    }
  }
  for (const auto& text : dropped_texts) {
    normalized_cache_.erase(text);
  }
  for (auto& [text, form] : new_texts) {
    normalized_cache_.insert_or_assign(text, std::move(form));
  }
  report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  return report;
}

}  // namespace vpcguard
