// StateStore: one OVSDB connection with one monitor of every table (docs/state.md).
//
// The monitor is the plain RFC 7047 "monitor" of every column, so each update's "new" is the
// whole row and the replica is a plain copy of the database. A commit is one transaction whose
// first operation is the generation guard (rows.cpp); a guard that does not hold is the server's
// "timed out" error on operation 0, which is a conflict, not a failure. ovsdb-server sends a
// session's monitor updates before the reply of the transaction that caused them, so after a
// commit the update is normally already queued; the store still waits (bounded) for the new
// generation so that replica() reflects the commit on return whatever the server's order.

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "state/store.h"

namespace vpcguard::state {
namespace {

constexpr const char* kMonitorId = "vpcguard-state";

// Every table of vpcguard.ovsschema: the monitor covers them all, every column.
constexpr const char* kAllTables[] = {
    "VPC",
    "Subnet",
    "Network_Interface",
    "Security_Group",
    "Security_Group_Rule",
    "Prefix_List",
    "Network_Acl",
    "Network_Acl_Entry",
    "Flow_Log",
    "Traffic_Mirror_Target",
    "Traffic_Mirror_Filter",
    "Traffic_Mirror_Filter_Rule",
    "Traffic_Mirror_Session",
    "Port_Mirror",
    "IAM_Policy",
    "IAM_Binding",
    "Audit",
};

// How long a commit waits for its own update to come back through the monitor.
constexpr auto kEchoTimeout = std::chrono::seconds(10);

// The client reports a failed operation as "operation <i> (<op> on <table>): <error>: ..."
// (ovs-plugin/ovsdb_client.cpp); the guard is always operation 0, a wait on VPC.
bool isGuardFailure(const std::string& message) {
  return message.find("operation 0 (wait on VPC): timed out") != std::string::npos;
}

}  // namespace

StateStore::StateStore(std::unique_ptr<ovs::OvsdbClient> client) : client_(std::move(client)) {}

StateStore::~StateStore() = default;

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& target,
                                                     const ovs::OvsdbOptions& options,
                                                     Scope scope) {
  auto client = ovs::connectOvsdb(target, options);
  if (!client) {
    return tl::unexpected(client.error().withContext("state database"));
  }
  auto store = std::make_unique<StateStore>(std::move(*client));
  store->scope_ = scope;
  if (auto r = store->ensureMonitor(); !r) {
    return tl::unexpected(r.error().withContext("state database " + target));
  }
  return store;
}

Result<void> StateStore::ensureMonitor() {
  if (monitoring_) {
    return {};
  }
  ovs::MonitorTables tables;
  for (const char* table : kAllTables) {
    const std::string_view name = table;
    if (scope_ == Scope::kPolicyOnly &&
        (name == "Audit" || name == "IAM_Policy" || name == "IAM_Binding")) {
      continue;
    }
    tables[table] = {};
  }
  auto initial = client_->monitor(kDatabase, kMonitorId, tables);
  if (!initial) {
    return tl::unexpected(initial.error());
  }
  replica_.clear();
  versions_.clear();
  applyTableUpdates(replica_, *initial, &versions_);
  monitoring_ = true;
  return {};
}

Result<bool> StateStore::applyUpdates(std::chrono::milliseconds timeout) {
  auto updates = client_->poll(timeout);
  if (!updates) {
    return tl::unexpected(updates.error().withContext("state database"));
  }
  bool changed = false;
  for (const auto& update : *updates) {
    if (update.monitor_id == kMonitorId) {
      applyTableUpdates(replica_, update.table_updates, &versions_);
      changed = true;
    }
  }
  return changed;
}

Result<bool> StateStore::poll(std::chrono::milliseconds timeout) {
  if (auto r = ensureMonitor(); !r) {
    return tl::unexpected(r.error().withContext("state database"));
  }
  return applyUpdates(timeout);
}

Result<StateStore::CommitResult> StateStore::commit(const model::Policy& desired,
                                                    const Json& extra_operations,
                                                    const model::Policy* current_policy) {
  if (auto r = ensureMonitor(); !r) {
    return tl::unexpected(r.error().withContext("state database"));
  }
  // The guard is the generation this replica holds: updates that arrived since the caller read
  // it must not be applied first, or the caller's change would silently overwrite them.
  const int64_t base = generationOf(replica_);
  Json operations = changeOperations(replica_, desired, current_policy);
  if (extra_operations.is_array()) {
    for (const auto& op : extra_operations) {
      operations.push_back(op);
    }
  }
  auto result = client_->transact(kDatabase, operations);
  if (!result) {
    if (isGuardFailure(result.error().message)) {
      return CommitResult{CommitStatus::kConflict, base};
    }
    return tl::unexpected(result.error().withContext("commit"));
  }
  const int64_t committed = base + 1;
  const auto deadline = std::chrono::steady_clock::now() + kEchoTimeout;
  while (generationOf(replica_) < committed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return makeError("commit: generation " + std::to_string(committed) +
                       " was committed, but the monitor did not deliver it within " +
                       std::to_string(kEchoTimeout.count()) + " s");
    }
    if (auto r = applyUpdates(left); !r) {
      return tl::unexpected(r.error().withContext("commit (generation " +
                                                  std::to_string(committed) + " committed)"));
    }
  }
  return CommitResult{CommitStatus::kCommitted, committed};
}

Result<Json> StateStore::transact(const Json& operations) {
  if (auto r = ensureMonitor(); !r) {
    return tl::unexpected(r.error().withContext("state database"));
  }
  auto result = client_->transact(kDatabase, operations);
  if (!result) {
    return tl::unexpected(result.error());
  }
  // Bring the replica up to date with what was inserted (an audit writer picks the next
  // sequence from it): wait, bounded, until every inserted row has come back.
  std::vector<std::pair<std::string, std::string>> inserted;  // table, uuid
  for (size_t i = 0; i < operations.size() && i < result->size(); ++i) {
    const Json& op = operations[i];
    const Json& res = (*result)[i];
    if (op.is_object() && op.value("op", "") == "insert" && op.contains("table") &&
        op["table"].is_string() && res.is_object() && res.contains("uuid") &&
        res["uuid"].is_array() && res["uuid"].size() == 2 && res["uuid"][1].is_string()) {
      inserted.emplace_back(op["table"].get<std::string>(), res["uuid"][1].get<std::string>());
    }
  }
  auto present = [&] {
    return std::all_of(inserted.begin(), inserted.end(), [&](const auto& row) {
      auto t = replica_.find(row.first);
      return t != replica_.end() && t->second.contains(row.second);
    });
  };
  if (auto r = applyUpdates(std::chrono::milliseconds(0)); !r) {
    return tl::unexpected(r.error());
  }
  const auto deadline = std::chrono::steady_clock::now() + kEchoTimeout;
  while (!present()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return makeError("transact: committed, but the monitor did not deliver the new rows");
    }
    if (auto r = applyUpdates(left); !r) {
      return tl::unexpected(r.error());
    }
  }
  return result;
}

int StateStore::fd() const { return client_->fd(); }

}  // namespace vpcguard::state
