#pragma once
// Desired state in OVSDB (docs/state.md): vpcguard's own database, `vpcguard.ovsschema`, served
// by the OVS package's ovsdb-server. The API server (api/) writes it, vpcguardd follows it.
//
// Design:
//  - The database holds the *resolved* policy (translator/defaults.h: the default group and NACL
//    are rows with is_default = true, every interface names its groups, every subnet its NACL),
//    so a reader needs no knowledge of AWS's implicit objects and describe shows what applies.
//  - Every change is one OVSDB transaction guarded by the singleton VPC row's `generation`
//    (a "wait" on the value the writer read, then generation + 1): two writers never interleave,
//    the loser gets kConflict and retries on the newer state. ovsdb-server's own log makes each
//    transaction all-or-nothing across kill -9.
//  - Only what changed is written: top-level objects are compared by content and only those that
//    differ are updated, inserted or deleted (rules and entries are child rows, strong refs,
//    garbage-collected with their parent).
//  - Readers keep a Replica (every row, by table and uuid) from one monitor and rebuild the Policy
//    from it in memory; SourceLocation of a row's object is {"db:<Table>", 0, 0} with the id in
//    the path, so validation messages name the object.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "ovs-plugin/ovsdb_client.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::state {

using Json = nlohmann::json;

inline constexpr const char* kDatabase = "vpcguard";

// Every row of the database: table -> uuid -> row (column -> OVSDB JSON value, RFC 7047 5.1).
using Replica = std::map<std::string, std::map<std::string, Json>>;

// Versions of a replica's rows, kept by whoever applies the monitor's updates (StateStore), for
// readers that decode again only what changed (PolicyDecoder). Every row an update inserts or
// changes gets a new number; the numbers come from one counter for the whole process, so the
// rows of a new store (a reconnect) never carry a number an old row had.
class RowVersions {
 public:
  // 0: a row nobody numbered (a reader then always decodes it).
  [[nodiscard]] uint64_t of(const std::string& uuid) const;
  void touch(const std::string& uuid);
  void forget(const std::string& uuid);
  void clear() { by_uuid_.clear(); }

 private:
  std::unordered_map<std::string, uint64_t> by_uuid_;  // OVSDB uuids are unique across tables
};

// Applies one monitor <table-updates> object to `replica` ("new" replaces, no "new" deletes),
// numbering the rows it touches in `versions` when given.
void applyTableUpdates(Replica& replica, const Json& table_updates,
                       RowVersions* versions = nullptr);

// The policy the replica holds (resolved, as stored). Error when rows are malformed (a
// reference to a missing row, a value of the wrong shape): it names table, uuid and column.
[[nodiscard]] Result<model::Policy> policyFromReplica(const Replica& replica);

// policyFromReplica() for a reader that decodes its replica again after every update (vpcguardd
// following the database, the API server after another writer's commit). It keeps each decoded
// top-level object with the version of its row and of its child rows (rules, entries) and
// decodes again only the rows whose version, or whose children's, changed: a one-rule change at
// 100k flows decodes one group, not 2,000 interfaces. The result, errors included, is
// policyFromReplica()'s (StateStoreTest compares them over random change sequences). It holds a
// second copy of the policy's objects.
class PolicyDecoder {
 public:
  PolicyDecoder();
  ~PolicyDecoder();
  PolicyDecoder(const PolicyDecoder&) = delete;
  PolicyDecoder& operator=(const PolicyDecoder&) = delete;

  // `versions` must be the ones kept with `replica` (StateStore::rowVersions()).
  [[nodiscard]] Result<model::Policy> decode(const Replica& replica, const RowVersions& versions);

  // What the last decode did, in top-level rows.
  struct Counts {
    size_t decoded = 0;
    size_t reused = 0;
  };
  [[nodiscard]] Counts lastCounts() const { return counts_; }

 private:
  struct Caches;
  std::unique_ptr<Caches> caches_;
  Counts counts_;
};

// `policy` as policyFromReplica() returns it once it is committed: the top-level objects in id
// order, every object's location its row ("db:Security_Group/sg-1"; rules and entries their
// parent's), no field locations. A writer keeps this instead of decoding every row again after
// its own commit (at 100k flows the decode was most of an API change's time in vpcguard-apid).
[[nodiscard]] model::Policy asCommitted(model::Policy policy);

// The generation of the replica's VPC row (0: no VPC row yet, an empty database).
[[nodiscard]] int64_t generationOf(const Replica& replica);

// Operations (RFC 7047 transact array, without the database name) that turn the content of
// `current` into `desired`: only rows that differ are touched. Includes the generation guard
// (wait for generationOf(current), then +1). `desired` must be resolved and valid.
// `current_policy`, when given, must be the policy `current` holds (policyFromReplica()'s
// content, as the API server keeps it): an object of it with the desired content is then
// unchanged without computing its digest. The operations are the same either way, except that a
// row with a missing or stale digest whose object is unchanged keeps its digest.
[[nodiscard]] Json changeOperations(const Replica& current, const model::Policy& desired,
                                    const model::Policy* current_policy = nullptr);

// One audit record (api/audit.h makes them; CloudTrail-like fields, see docs/api.md).
struct AuditRecord {
  int64_t sequence = 0;     // assigned by the writer: 1 + the highest in the database
  std::string event_time;   // RFC 3339 UTC with milliseconds
  std::string principal;    // "user:alice", "cert:CN=ops,O=example"
  std::string source;       // "unix:pid=123" / "tls:198.51.100.7:40112"
  std::string action;       // "ec2:AuthorizeSecurityGroupIngress"
  std::string request_parameters;  // JSON text
  std::string result;       // "allowed" / "denied" / "failed"
  std::string error_code;   // "" or "UnauthorizedOperation", "InvalidGroup.NotFound", ...
  std::string error_message;
  int64_t generation = 0;   // the state generation after the request (allowed changes)
};
[[nodiscard]] Json auditInsertOperation(const AuditRecord& record);
[[nodiscard]] std::vector<AuditRecord> auditRecords(const Replica& replica);  // by sequence

// A live connection to the database with a full monitor: the owner calls poll() when fd() is
// readable (or on a timer) and reads replica(). Not thread-safe; one per thread.
class StateStore {
 public:
  // What the monitor covers. kPolicyOnly leaves out the Audit and IAM tables: readers of the
  // policy (vpcguardd, vpcguardctl trace) must not download the ever-growing audit history on
  // every (re)connect. Writers (the API server) need kEverything.
  enum class Scope { kEverything, kPolicyOnly };

  // Connects to `target` ("unix:PATH", "tcp:H:P") and waits for the initial monitor reply.
  [[nodiscard]] static Result<std::unique_ptr<StateStore>> open(
      const std::string& target, const ovs::OvsdbOptions& options = {},
      Scope scope = Scope::kEverything);
  // For tests: a store over a given client (e.g. a fake).
  explicit StateStore(std::unique_ptr<ovs::OvsdbClient> client);
  ~StateStore();

  [[nodiscard]] const Replica& replica() const { return replica_; }
  [[nodiscard]] const RowVersions& rowVersions() const { return versions_; }
  [[nodiscard]] int64_t generation() const { return generationOf(replica_); }

  // Reads updates that arrived (waiting up to `timeout` for the first). True when the replica
  // changed. Error when the connection is lost (the owner opens a new store).
  [[nodiscard]] Result<bool> poll(std::chrono::milliseconds timeout);

  enum class CommitStatus { kCommitted, kConflict };
  struct CommitResult {
    CommitStatus status = CommitStatus::kCommitted;
    int64_t generation = 0;  // after the commit
  };
  // Writes `desired` (plus `extra_operations`, e.g. an audit insert) in one transaction guarded
  // by the generation the replica holds. kConflict: someone else committed first; poll() and
  // retry on the newer replica. On kCommitted the replica is brought up to date before return.
  // `current_policy`: see changeOperations() (null when the caller does not hold it).
  [[nodiscard]] Result<CommitResult> commit(const model::Policy& desired,
                                            const Json& extra_operations = Json::array(),
                                            const model::Policy* current_policy = nullptr);
  // A transaction of other operations only (an audit record of a refused request).
  [[nodiscard]] Result<Json> transact(const Json& operations);

  [[nodiscard]] int fd() const;

 private:
  // Starts the monitor on first use (open() does it at once, so a store over a given client
  // starts it on its first poll/commit/transact).
  [[nodiscard]] Result<void> ensureMonitor();
  // Applies the monitor updates the client has (waiting up to `timeout` for the first).
  [[nodiscard]] Result<bool> applyUpdates(std::chrono::milliseconds timeout);

  std::unique_ptr<ovs::OvsdbClient> client_;
  Replica replica_;
  RowVersions versions_;
  bool monitoring_ = false;
  Scope scope_ = Scope::kEverything;
};

}  // namespace vpcguard::state
