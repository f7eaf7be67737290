#include "ovs-plugin/vswitch_db.h"

#include "translator/pipeline.h"

namespace vpcguard::ovs {
namespace {

constexpr const char* kInterfaceMonitorId = "vpcguard-interfaces";

Json whereName(const std::string& name) { return Json::array({Json::array({"name", "==", name})}); }

// The columns ensureBridge() owns on a Bridge row.
Json bridgeSettings(const std::string& datapath_type) {
  return Json{{"datapath_type", datapath_type},
              {"fail_mode", "secure"},
              {"protocols", Json::array({"set", {"OpenFlow13", "OpenFlow14", "OpenFlow15"}})}};
}

// The bridge's own port answers to the VPC router's MAC, so the traffic the pipeline hands to
// the host (AWS-unfiltered services) is addressed to it. A mutation, so other keys stay.
Json hwaddrMutations(const std::string& name) {
  const Json where = Json::array({Json::array({"name", "==", name})});
  return Json::array(
      {Json{{"op", "mutate"},
            {"table", "Bridge"},
            {"where", where},
            {"mutations", Json::array({Json::array(
                              {"other_config", "delete", Json::array({"set", Json::array({"hwaddr"})})})})}},
       Json{{"op", "mutate"},
            {"table", "Bridge"},
            {"where", where},
            {"mutations",
             Json::array({Json::array(
                 {"other_config", "insert",
                  Json::array({"map", Json::array({Json::array(
                                          {"hwaddr", pipeline::kRouterMac})})})})})}}});
}

}  // namespace

const char* toString(InterfaceEventKind kind) {
  switch (kind) {
    case InterfaceEventKind::kAttached:
      return "attached";
    case InterfaceEventKind::kDetached:
      return "detached";
    case InterfaceEventKind::kOfportChanged:
      return "ofport-changed";
  }
  return "?";
}

namespace ovsdb_value {

std::map<std::string, std::string> stringMap(const Json& value) {
  std::map<std::string, std::string> out;
  if (!value.is_array() || value.size() != 2 || value[0] != "map" || !value[1].is_array()) {
    return out;
  }
  for (const auto& pair : value[1]) {
    if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
      out[pair[0].get<std::string>()] = pair[1].get<std::string>();
    }
  }
  return out;
}

std::optional<int64_t> optionalInteger(const Json& value) {
  if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  if (value.is_array() && value.size() == 2 && value[0] == "set" && value[1].is_array() &&
      value[1].size() == 1 && value[1][0].is_number_integer()) {
    return value[1][0].get<int64_t>();
  }
  return std::nullopt;
}

InterfaceInfo interfaceFromRow(const std::string& uuid, const Json& row) {
  InterfaceInfo info;
  info.uuid = uuid;
  if (row.contains("name") && row["name"].is_string()) {
    info.name = row["name"].get<std::string>();
  }
  if (row.contains("ofport")) {
    const auto port = optionalInteger(row["ofport"]);
    info.ofport = port && *port > 0 && *port < 0xff00 ? static_cast<int>(*port) : -1;
  }
  if (row.contains("external_ids")) {
    const auto ids = stringMap(row["external_ids"]);
    if (auto it = ids.find("iface-id"); it != ids.end()) {
      info.iface_id = it->second;
    }
  }
  return info;
}

}  // namespace ovsdb_value

VswitchDb::VswitchDb(std::unique_ptr<OvsdbClient> client) : client_(std::move(client)) {}

Result<void> VswitchDb::ensureBridge(const std::string& name, const std::string& datapath_type) {
  // Two attempts: if another client creates the bridge between our select and insert, the
  // insert's `wait` fails and the second attempt takes the update path.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto found = client_->transact(
        kDb, Json::array({Json{{"op", "select"},
                               {"table", "Bridge"},
                               {"where", whereName(name)},
                               {"columns", Json::array({"_uuid"})}}}));
    if (!found) {
      return tl::unexpected(found.error().withContext("ensure bridge " + name));
    }
    const bool exists = !(*found)[0].value("rows", Json::array()).empty();
    Json ops;
    if (exists) {
      // An existing bridge keeps its datapath type: changing it recreates every port (an
      // outage), which only an operator should decide.
      Json settings = bridgeSettings(datapath_type);
      settings.erase("datapath_type");
      ops = Json::array({Json{{"op", "update"},
                              {"table", "Bridge"},
                              {"where", whereName(name)},
                              {"row", settings}}});
      for (auto& op : hwaddrMutations(name)) {
        ops.push_back(op);
      }
    } else {
      // What `ovs-vsctl add-br` writes: the bridge, its internal port and interface (named
      // like the bridge), and a reference from the root row, without which the rows would be
      // garbage-collected.
      Json bridge_row = bridgeSettings(datapath_type);
      bridge_row["name"] = name;
      bridge_row["other_config"] = Json::array(
          {"map", Json::array({Json::array({"hwaddr", pipeline::kRouterMac})})});
      bridge_row["ports"] = Json::array({"named-uuid", "port"});
      ops = Json::array({
          Json{{"op", "wait"},
               {"table", "Bridge"},
               {"where", whereName(name)},
               {"columns", Json::array({"name"})},
               {"until", "=="},
               {"rows", Json::array()},
               {"timeout", 0}},
          Json{{"op", "insert"},
               {"table", "Interface"},
               {"row", Json{{"name", name}, {"type", "internal"}}},
               {"uuid-name", "iface"}},
          Json{{"op", "insert"},
               {"table", "Port"},
               {"row", Json{{"name", name}, {"interfaces", Json::array({"named-uuid", "iface"})}}},
               {"uuid-name", "port"}},
          Json{{"op", "insert"}, {"table", "Bridge"}, {"row", bridge_row}, {"uuid-name", "br"}},
          Json{{"op", "mutate"},
               {"table", "Open_vSwitch"},
               {"where", Json::array()},
               {"mutations",
                Json::array({Json::array(
                    {"bridges", "insert",
                     Json::array({"set", Json::array({Json::array({"named-uuid", "br"})})})})})}},
      });
    }
    auto done = client_->transact(kDb, ops);
    if (done) {
      return {};
    }
    if (exists || attempt == 1) {
      return tl::unexpected(done.error().withContext("ensure bridge " + name));
    }
  }
  return makeError("ensure bridge " + name + ": unreachable");
}

Result<void> VswitchDb::setFlowRestoreWait(bool enabled) {
  // Delete then insert: an OVSDB map "insert" leaves an existing key's value alone.
  Json ops = Json::array({Json{
      {"op", "mutate"},
      {"table", "Open_vSwitch"},
      {"where", Json::array()},
      {"mutations", Json::array({Json::array(
                        {"other_config", "delete",
                         Json::array({"set", Json::array({"flow-restore-wait"})})})})}}});
  if (enabled) {
    ops.push_back(Json{
        {"op", "mutate"},
        {"table", "Open_vSwitch"},
        {"where", Json::array()},
        {"mutations",
         Json::array({Json::array(
             {"other_config", "insert",
              Json::array({"map", Json::array({Json::array({"flow-restore-wait", "true"})})})})})}});
  }
  auto r = client_->transact(kDb, ops);
  if (!r) {
    return tl::unexpected(r.error().withContext(std::string(enabled ? "set" : "clear") +
                                                " flow-restore-wait"));
  }
  return {};
}

Result<void> VswitchDb::setFlowSampling(const std::string& bridge, uint32_t set_id,
                                        const std::vector<std::string>& targets) {
  const std::string what = "flow sampling on " + bridge;
  auto found = client_->transact(kDb, Json::array({Json{{"op", "select"},
                                                        {"table", "Bridge"},
                                                        {"where", whereName(bridge)},
                                                        {"columns", Json::array({"_uuid"})}}}));
  if (!found) {
    return tl::unexpected(found.error().withContext(what));
  }
  const Json rows = (*found)[0].value("rows", Json::array());
  if (rows.empty()) {
    return makeError(what + ": no such bridge");
  }
  const Json bridge_ref = rows[0]["_uuid"];
  // The IPFIX row goes with its collector set (unreferenced IPFIX rows are garbage collected).
  Json ops = Json::array({Json{{"op", "delete"},
                               {"table", "Flow_Sample_Collector_Set"},
                               {"where", Json::array({Json::array({"id", "==", set_id}),
                                                      Json::array({"bridge", "==", bridge_ref})})}}});
  if (!targets.empty()) {
    ops.push_back(Json{{"op", "insert"},
                       {"table", "IPFIX"},
                       {"uuid-name", "vg_ipfix"},
                       {"row", {{"targets", Json::array({"set", targets})}}}});
    ops.push_back(Json{{"op", "insert"},
                       {"table", "Flow_Sample_Collector_Set"},
                       {"row",
                        {{"id", set_id},
                         {"bridge", bridge_ref},
                         {"ipfix", Json::array({"named-uuid", "vg_ipfix"})},
                         {"external_ids",
                          Json::array({"map", Json::array({Json::array(
                                                  {"vpcguard", "flow-logs"})})})}}}});
  }
  if (auto r = client_->transact(kDb, ops); !r) {
    return tl::unexpected(r.error().withContext(what));
  }
  return {};
}

Result<bool> VswitchDb::flowRestoreWait() {
  auto root = client_->transact(kDb, Json::array({Json{{"op", "select"},
                                                       {"table", "Open_vSwitch"},
                                                       {"where", Json::array()},
                                                       {"columns", Json::array({"other_config"})}}}));
  if (!root) {
    return tl::unexpected(root.error().withContext("read flow-restore-wait"));
  }
  for (const auto& row : (*root)[0].value("rows", Json::array())) {
    auto config = ovsdb_value::stringMap(row["other_config"]);
    if (auto it = config.find("flow-restore-wait"); it != config.end() && it->second == "true") {
      return true;
    }
  }
  return false;
}

Result<void> VswitchDb::setConntrackTimeouts(
    const std::string& datapath_type,
    const std::map<uint16_t, std::map<std::string, int64_t>>& policies,
    const std::set<uint16_t>& owned) {
  const std::string what = "set conntrack timeout policies on datapath " + datapath_type;
  // 1. The Datapath row of this type (created the way `ovs-vsctl add-zone-tp` would need it).
  std::string dp_uuid;
  for (int attempt = 0; attempt < 2 && dp_uuid.empty(); ++attempt) {
    auto root = client_->transact(
        kDb, Json::array({Json{{"op", "select"},
                               {"table", "Open_vSwitch"},
                               {"where", Json::array()},
                               {"columns", Json::array({"datapaths"})}}}));
    if (!root) {
      return tl::unexpected(root.error().withContext(what));
    }
    for (const auto& row : (*root)[0].value("rows", Json::array())) {
      const Json& dps = row["datapaths"];
      if (dps.is_array() && dps.size() == 2 && dps[0] == "map") {
        for (const auto& pair : dps[1]) {
          if (pair[0] == datapath_type && pair[1].is_array() && pair[1].size() == 2) {
            dp_uuid = pair[1][1].get<std::string>();
          }
        }
      }
    }
    if (!dp_uuid.empty()) {
      break;
    }
    auto created = client_->transact(
        kDb,
        Json::array({Json{{"op", "insert"},
                          {"table", "Datapath"},
                          {"row", Json{{"datapath_version", "0"}}},
                          {"uuid-name", "dp"}},
                     Json{{"op", "mutate"},
                          {"table", "Open_vSwitch"},
                          {"where", Json::array()},
                          {"mutations",
                           Json::array({Json::array(
                               {"datapaths", "insert",
                                Json::array({"map", Json::array({Json::array(
                                                        {datapath_type,
                                                         Json::array({"named-uuid", "dp"})})})})})})}}}));
    if (!created) {
      return tl::unexpected(created.error().withContext(what));
    }
  }
  if (dp_uuid.empty()) {
    return makeError(what + ": no Datapath row for " + datapath_type);
  }
  // 2. Replace our zones' entries; CT_Zone and CT_Timeout_Policy are not root tables, so the
  // rows a zone no longer references are garbage-collected by ovsdb-server.
  Json ops = Json::array();
  Json keys = Json::array();
  Json zones = Json::array();
  for (uint16_t z : owned) {
    keys.push_back(z);
  }
  for (const auto& [zone, timeouts] : policies) {
    if (owned.count(zone) == 0) {
      keys.push_back(zone);
    }
    Json map = Json::array();
    for (const auto& [name, seconds] : timeouts) {
      map.push_back(Json::array({name, seconds}));
    }
    const std::string tp = "tp" + std::to_string(zone);
    const std::string zn = "zone" + std::to_string(zone);
    ops.push_back(Json{{"op", "insert"},
                       {"table", "CT_Timeout_Policy"},
                       {"row", Json{{"timeouts", Json::array({"map", map})},
                                    {"external_ids",
                                     Json::array({"map", Json::array({Json::array(
                                                             {"vpcguard-zone", std::to_string(zone)})})})}}},
                       {"uuid-name", tp}});
    ops.push_back(Json{{"op", "insert"},
                       {"table", "CT_Zone"},
                       {"row", Json{{"timeout_policy", Json::array({"named-uuid", tp})}}},
                       {"uuid-name", zn}});
    zones.push_back(Json::array({zone, Json::array({"named-uuid", zn})}));
  }
  const Json where = Json::array({Json::array({"_uuid", "==", Json::array({"uuid", dp_uuid})})});
  ops.push_back(Json{{"op", "mutate"},
                     {"table", "Datapath"},
                     {"where", where},
                     {"mutations", Json::array({Json::array({"ct_zones", "delete",
                                                             Json::array({"set", keys})})})}});
  if (!zones.empty()) {
    ops.push_back(Json{{"op", "mutate"},
                       {"table", "Datapath"},
                       {"where", where},
                       {"mutations", Json::array({Json::array({"ct_zones", "insert",
                                                               Json::array({"map", zones})})})}});
  }
  auto r = client_->transact(kDb, ops);
  if (!r) {
    return tl::unexpected(r.error().withContext(what));
  }
  return {};
}

Result<void> VswitchDb::awaitApplied(std::chrono::milliseconds timeout) {
  auto bumped = client_->transact(
      kDb, Json::array({Json{{"op", "mutate"},
                             {"table", "Open_vSwitch"},
                             {"where", Json::array()},
                             {"mutations", Json::array({Json::array({"next_cfg", "+=", 1})})}},
                        Json{{"op", "select"},
                             {"table", "Open_vSwitch"},
                             {"where", Json::array()},
                             {"columns", Json::array({"next_cfg"})}}}));
  if (!bumped) {
    return tl::unexpected(bumped.error().withContext("await ovs-vswitchd"));
  }
  const Json rows = (*bumped)[1].value("rows", Json::array());
  if (rows.size() != 1 || !rows[0].contains("next_cfg") || !rows[0]["next_cfg"].is_number_integer()) {
    return makeError("await ovs-vswitchd: no Open_vSwitch row");
  }
  const int64_t target = rows[0]["next_cfg"].get<int64_t>();
  auto applied = client_->transact(
      kDb, Json::array({Json{{"op", "wait"},
                             {"table", "Open_vSwitch"},
                             {"where", Json::array()},
                             {"columns", Json::array({"cur_cfg"})},
                             {"until", "=="},
                             {"rows", Json::array({Json{{"cur_cfg", target}}})},
                             {"timeout", timeout.count()}}}));
  if (!applied) {
    return tl::unexpected(applied.error().withContext(
        "ovs-vswitchd did not apply configuration " + std::to_string(target) + " within " +
        std::to_string(timeout.count()) + " ms"));
  }
  return {};
}

Result<std::set<std::string>> VswitchDb::interfacesOnBridge(const std::string& bridge) {
  auto r = client_->transact(
      kDb, Json::array({Json{{"op", "select"},
                             {"table", "Bridge"},
                             {"where", whereName(bridge)},
                             {"columns", Json::array({"ports"})}},
                        Json{{"op", "select"},
                             {"table", "Port"},
                             {"where", Json::array()},
                             {"columns", Json::array({"_uuid", "interfaces"})}}}));
  if (!r) {
    return tl::unexpected(r.error().withContext("interfaces of bridge " + bridge));
  }
  // A set column is a bare ["uuid", U] when it has one member, ["set", [...]] otherwise.
  const auto uuids = [](const Json& value) {
    std::set<std::string> out;
    if (value.is_array() && value.size() == 2 && value[0] == "uuid") {
      out.insert(value[1].get<std::string>());
    } else if (value.is_array() && value.size() == 2 && value[0] == "set") {
      for (const auto& u : value[1]) {
        if (u.is_array() && u.size() == 2 && u[0] == "uuid") {
          out.insert(u[1].get<std::string>());
        }
      }
    }
    return out;
  };
  std::set<std::string> ports;
  for (const auto& row : (*r)[0].value("rows", Json::array())) {
    ports = uuids(row["ports"]);
  }
  std::set<std::string> out;
  for (const auto& row : (*r)[1].value("rows", Json::array())) {
    const Json& uuid = row["_uuid"];
    if (uuid.is_array() && uuid.size() == 2 && ports.count(uuid[1].get<std::string>()) != 0) {
      auto ifaces = uuids(row["interfaces"]);
      out.insert(ifaces.begin(), ifaces.end());
    }
  }
  return out;
}

Result<std::vector<InterfaceInfo>> VswitchDb::listInterfaces() {
  auto r = client_->transact(
      kDb, Json::array({Json{{"op", "select"},
                             {"table", "Interface"},
                             {"where", Json::array()},
                             {"columns", Json::array({"_uuid", "name", "ofport", "external_ids"})}}}));
  if (!r) {
    return tl::unexpected(r.error().withContext("list interfaces"));
  }
  std::vector<InterfaceInfo> out;
  for (const auto& row : (*r)[0].value("rows", Json::array())) {
    std::string uuid;
    if (row.contains("_uuid") && row["_uuid"].is_array() && row["_uuid"].size() == 2 &&
        row["_uuid"][1].is_string()) {
      uuid = row["_uuid"][1].get<std::string>();
    }
    auto info = ovsdb_value::interfaceFromRow(uuid, row);
    if (!info.iface_id.empty()) {
      out.push_back(std::move(info));
    }
  }
  return out;
}

Result<std::vector<InterfaceEvent>> VswitchDb::startInterfaceMonitor() {
  interfaces_.clear();
  auto initial = client_->monitor(kDb, kInterfaceMonitorId,
                                  {{"Interface", {"name", "ofport", "external_ids"}}});
  if (!initial) {
    return tl::unexpected(initial.error().withContext("monitor interfaces"));
  }
  return applyInterfaceUpdates(*initial);
}

Result<std::vector<InterfaceEvent>> VswitchDb::pollInterfaceEvents(
    std::chrono::milliseconds timeout) {
  auto updates = client_->poll(timeout);
  if (!updates) {
    return tl::unexpected(updates.error().withContext("interface monitor"));
  }
  std::vector<InterfaceEvent> events;
  for (const auto& update : *updates) {
    if (update.monitor_id != kInterfaceMonitorId) {
      continue;
    }
    auto more = applyInterfaceUpdates(update.table_updates);
    events.insert(events.end(), more.begin(), more.end());
  }
  return events;
}

std::vector<InterfaceEvent> VswitchDb::applyInterfaceUpdates(const Json& table_updates) {
  std::vector<InterfaceEvent> events;
  if (!table_updates.is_object() || !table_updates.contains("Interface") ||
      !table_updates["Interface"].is_object()) {
    return events;
  }
  for (const auto& [uuid, change] : table_updates["Interface"].items()) {
    std::optional<InterfaceInfo> before;
    if (auto it = interfaces_.find(uuid); it != interfaces_.end()) {
      before = it->second;
    }
    std::optional<InterfaceInfo> after;
    // A monitor's "new" carries every monitored column (only "old" is partial), so it is the
    // whole row; no "new" means the row was deleted.
    if (change.is_object() && change.contains("new") && change["new"].is_object()) {
      after = ovsdb_value::interfaceFromRow(uuid, change["new"]);
    }
    const bool was = before && before->attached();
    const bool is = after && after->attached();
    if (was && is && before->iface_id == after->iface_id) {
      if (before->ofport != after->ofport) {
        events.push_back({InterfaceEventKind::kOfportChanged, *after, before->ofport});
      }
    } else {
      if (was) {
        events.push_back({InterfaceEventKind::kDetached, *before, -1});
      }
      if (is) {
        events.push_back({InterfaceEventKind::kAttached, *after, -1});
      }
    }
    if (after) {
      interfaces_[uuid] = *after;
    } else {
      interfaces_.erase(uuid);
    }
  }
  return events;
}

}  // namespace vpcguard::ovs
