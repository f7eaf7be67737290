#pragma once
// What the daemon needs from the Open_vSwitch database: its bridge configured the way vpcguard's
// pipeline expects, the flow-restore-wait switch for restarts, flow sampling and mirroring
// (the mirror tunnel port, OVS Mirror rows), and which VM interfaces (external_ids:iface-id)
// are attached on which OpenFlow port, as a snapshot and as events.

#include <chrono>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ovs-plugin/ovsdb_client.h"
#include "translator/result.h"

namespace vpcguard::ovs {

struct InterfaceInfo {
  std::string uuid;
  std::string name;
  // external_ids:iface-id; pipeline::kMirrorTunnelKey for the mirror tunnel; empty otherwise.
  std::string iface_id;
  int ofport = -1;       // -1 until ovs-vswitchd assigns one (or when it failed to)

  // Attached = a VM interface (or the mirror tunnel) vpcguard can write flows for.
  [[nodiscard]] bool attached() const { return !iface_id.empty() && ofport > 0; }
  bool operator==(const InterfaceInfo&) const = default;
};

enum class InterfaceEventKind {
  kAttached,       // an interface with an iface-id got a valid ofport (or appeared with one)
  kDetached,       // it was deleted, lost its iface-id, or its ofport became invalid
  kOfportChanged,  // still attached, on a different ofport
};

struct InterfaceEvent {
  InterfaceEventKind kind;
  InterfaceInfo iface;      // the state after the change (before it, for kDetached)
  int previous_ofport = -1;  // for kOfportChanged
};

[[nodiscard]] const char* toString(InterfaceEventKind kind);

// One OVS Mirror row vpcguard owns: every packet the VM interface `source_iface_id`
// (external_ids:iface-id) sends or receives is copied to the port `output_port` (a monitoring
// port, e.g. a tap or veth of an IDS; OVS uses a Mirror's output port for nothing else).
struct PortMirrorSpec {
  std::string name;  // the row is named kPortMirrorPrefix + name
  std::string source_iface_id;
  std::string output_port;  // a Port name on the same bridge
  bool operator==(const PortMirrorSpec&) const = default;
};

class VswitchDb {
 public:
  static constexpr const char* kDb = "Open_vSwitch";
  // Mirror rows whose name starts with this are vpcguard's (setPortMirrors).
  static constexpr const char* kPortMirrorPrefix = "vpcguard:";

  // `client` must be connected to an Open_vSwitch database.
  explicit VswitchDb(std::unique_ptr<OvsdbClient> client);

  // Creates the bridge (with its internal port) if missing, and in any case sets
  // datapath_type, fail_mode=secure and protocols=OpenFlow13,14,15. Idempotent.
  [[nodiscard]] Result<void> ensureBridge(const std::string& name,
                                          const std::string& datapath_type);
  // other_config:flow-restore-wait=true keeps ovs-vswitchd from flushing or forwarding with an
  // empty table while the daemon restores flows after a restart; cleared when flows are back.
  [[nodiscard]] Result<void> setFlowRestoreWait(bool enabled);
  // Whether other_config:flow-restore-wait is "true" now.
  [[nodiscard]] Result<bool> flowRestoreWait();

  // Zone-based conntrack timeout policies (CT_Zone / CT_Timeout_Policy rows of the Datapath of
  // `datapath_type`, created if missing): every zone in `policies` gets exactly those timeouts
  // ("tcp_established", "udp_first", ...); zones in `owned`, and zones whose policy vpcguard
  // wrote earlier (external_ids:vpcguard-zone, also by a previous run), without a policy lose
  // theirs; other zones are left alone. ovs-vswitchd applies a zone's policy to that zone's connections.
  [[nodiscard]] Result<void> setConntrackTimeouts(
      const std::string& datapath_type,
      const std::map<uint16_t, std::map<std::string, int64_t>>& policies,
      const std::set<uint16_t>& owned);
  // Flow-based IPFIX export for flow logs: a Flow_Sample_Collector_Set with `set_id` on
  // `bridge` whose IPFIX row sends to `targets` ("127.0.0.1:4739", ...); empty `targets`
  // removes it (sample() actions then cost nothing). Replaces what was there for `set_id`.
  [[nodiscard]] Result<void> setFlowSampling(const std::string& bridge, uint32_t set_id,
                                             const std::vector<std::string>& targets);

  // The VXLAN port mirror copies leave through (pipeline::kMirrorTunnelPort, see
  // translator/pipeline.h): present -> the Port and its Interface exist on `bridge` with
  // type=vxlan, options exactly {remote_ip=flow, key=flow} and external_ids exactly
  // {vpcguard-role=mirror-tunnel} (created, or repaired when they differ; nothing written when
  // they do not); !present -> removed from `bridge` if it is there. Other ports are never
  // touched; error when the name is taken by a port on another bridge.
  [[nodiscard]] Result<void> setMirrorTunnel(const std::string& bridge, bool present);

  // Makes `bridge`'s Mirror rows named kPortMirrorPrefix* exactly `mirrors` (select_src_port =
  // select_dst_port = the port holding the interface with that iface-id, output_port = the
  // named port), in one transaction; other Mirror rows are left alone. A spec that cannot be
  // applied is skipped and described in the result (one line each, naming the mirror): its
  // source interface or output port is not on the bridge, its output port is a VM port (OVS
  // would stop delivering that VM's own traffic), the bridge's internal port (OVS drops what a
  // mirror output port receives: all host->VM traffic and local-target mirror copies, which enter
  // from LOCAL) or vpcguard's own (external_ids:vpcguard-role set, e.g. the mirror tunnel), or
  // its name is empty or repeated. The rest are applied; an error only when the database could
  // not be read or written.
  [[nodiscard]] Result<std::vector<std::string>> setPortMirrors(
      const std::string& bridge, const std::vector<PortMirrorSpec>& mirrors);

  // Returns once ovs-vswitchd has applied everything written to the database so far (the
  // `next_cfg`/`cur_cfg` handshake ovs-vsctl uses), e.g. so a bridge's OpenFlow socket exists
  // right after ensureBridge(). Waits inside ovsdb-server (a `wait` operation), not by polling.
  [[nodiscard]] Result<void> awaitApplied(std::chrono::milliseconds timeout);

  // UUIDs of the Interface rows on `bridge` (through its Port rows). OpenFlow port numbers are
  // per bridge, so only these interfaces' ofports mean anything on our bridge.
  [[nodiscard]] Result<std::set<std::string>> interfacesOnBridge(const std::string& bridge);

  // Every Interface with an external_ids:iface-id, and the mirror tunnel (iface_id
  // pipeline::kMirrorTunnelKey, see ovsdb_value::interfaceFromRow).
  [[nodiscard]] Result<std::vector<InterfaceInfo>> listInterfaces();

  // Starts monitoring interfaces; returns kAttached for those already attached.
  [[nodiscard]] Result<std::vector<InterfaceEvent>> startInterfaceMonitor();
  // Events since the last call, waiting up to `timeout` for one. Error when the connection is
  // lost (the owner reconnects and calls startInterfaceMonitor() again on a new VswitchDb).
  [[nodiscard]] Result<std::vector<InterfaceEvent>> pollInterfaceEvents(
      std::chrono::milliseconds timeout);
  [[nodiscard]] int fd() const { return client_->fd(); }
  [[nodiscard]] OvsdbClient& client() { return *client_; }

 private:
  std::vector<InterfaceEvent> applyInterfaceUpdates(const Json& table_updates);

  std::unique_ptr<OvsdbClient> client_;
  std::map<std::string, InterfaceInfo> interfaces_;  // by uuid, as last reported
};

// Parsing helpers for OVSDB's JSON encoding of values (RFC 7047 section 5.1), exposed for tests.
namespace ovsdb_value {
// {"k": "v"} from ["map", [["k","v"], ...]].
[[nodiscard]] std::map<std::string, std::string> stringMap(const Json& value);
// An optional integer column: 5 or ["set", []].
[[nodiscard]] std::optional<int64_t> optionalInteger(const Json& value);
// The members of a set of uuids: ["uuid", U] (one member) or ["set", [["uuid", U], ...]].
[[nodiscard]] std::set<std::string> uuidSet(const Json& value);
// Interface row (name, ofport, external_ids) to InterfaceInfo. The mirror tunnel (an interface
// with external_ids:vpcguard-role=mirror-tunnel and no iface-id) gets iface_id
// pipeline::kMirrorTunnelKey, so the daemon learns its OpenFlow port like a VM interface's.
[[nodiscard]] InterfaceInfo interfaceFromRow(const std::string& uuid, const Json& row);
}  // namespace ovsdb_value

}  // namespace vpcguard::ovs
