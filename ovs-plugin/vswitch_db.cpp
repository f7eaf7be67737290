#include "ovs-plugin/vswitch_db.h"

#include <charconv>

#include "translator/pipeline.h"

namespace vpcguard::ovs {
namespace {

constexpr const char* kInterfaceMonitorId = "vpcguard-interfaces";

Json whereName(const std::string& name) { return Json::array({Json::array({"name", "==", name})}); }

Json uuidRef(const std::string& uuid) { return Json::array({"uuid", uuid}); }

Json whereUuid(const std::string& uuid) {
  return Json::array({Json::array({"_uuid", "==", uuidRef(uuid)})});
}

Json uuidSetValue(const std::set<std::string>& uuids) {
  Json members = Json::array();
  for (const auto& u : uuids) {
    members.push_back(uuidRef(u));
  }
  return Json::array({"set", members});
}

Json stringMapValue(const std::map<std::string, std::string>& map) {
  Json pairs = Json::array();
  for (const auto& [k, v] : map) {
    pairs.push_back(Json::array({k, v}));
  }
  return Json::array({"map", pairs});
}

// The _uuid column of a selected row ("" when missing).
std::string rowUuid(const Json& row) {
  if (row.is_object() && row.contains("_uuid") && row["_uuid"].is_array() &&
      row["_uuid"].size() == 2 && row["_uuid"][1].is_string()) {
    return row["_uuid"][1].get<std::string>();
  }
  return "";
}

std::string stringColumn(const Json& row, const char* column) {
  return row.is_object() && row.contains(column) && row[column].is_string()
             ? row[column].get<std::string>()
             : "";
}

// An empty optional/set column (["set", []]); a column the row does not have counts as empty.
bool isEmptySet(const Json& row, const char* column) {
  if (!row.is_object() || !row.contains(column)) {
    return true;
  }
  const Json& v = row[column];
  return v.is_array() && v.size() == 2 && v[0] == "set" && v[1].is_array() && v[1].empty();
}

// A column of a selected row; null when the row does not have it (a const nlohmann::json's
// operator[] must not be asked for a missing key).
const Json& columnOf(const Json& row, const char* column) {
  static const Json kNull;
  if (!row.is_object()) {
    return kNull;
  }
  const auto it = row.find(column);
  return it == row.end() ? kNull : *it;
}

Json rowsOf(const Json& results, size_t index) {
  if (!results.is_array() || results.size() <= index || !results[index].is_object()) {
    return Json::array();
  }
  return results[index].value("rows", Json::array());
}

// Marks vpcguard's own interfaces (external_ids) by what they are for.
constexpr const char* kRoleKey = "vpcguard-role";

// What the mirror tunnel's Interface row must say (translator/pipeline.h).
const std::map<std::string, std::string>& tunnelOptions() {
  static const std::map<std::string, std::string> options{{"key", "flow"}, {"remote_ip", "flow"}};
  return options;
}
const std::map<std::string, std::string>& tunnelExternalIds() {
  static const std::map<std::string, std::string> ids{{kRoleKey, pipeline::kMirrorTunnelRole}};
  return ids;
}
Json tunnelInterfaceSettings() {
  return Json{{"type", "vxlan"},
              {"options", stringMapValue(tunnelOptions())},
              {"external_ids", stringMapValue(tunnelExternalIds())}};
}

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
    } else if (auto role = ids.find(kRoleKey);
               role != ids.end() && role->second == pipeline::kMirrorTunnelRole) {
      // Reported like a VM interface so its ofport reaches the translator through the same
      // monitor (TranslateInput::ofports[kMirrorTunnelKey]).
      info.iface_id = pipeline::kMirrorTunnelKey;
    }
  }
  return info;
}

std::set<std::string> uuidSet(const Json& value) {
  std::set<std::string> out;
  if (!value.is_array() || value.size() != 2) {
    return out;
  }
  if (value[0] == "uuid" && value[1].is_string()) {
    out.insert(value[1].get<std::string>());
  } else if (value[0] == "set" && value[1].is_array()) {
    for (const auto& u : value[1]) {
      if (u.is_array() && u.size() == 2 && u[0] == "uuid" && u[1].is_string()) {
        out.insert(u[1].get<std::string>());
      }
    }
  }
  return out;
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

Result<void> VswitchDb::setMirrorTunnel(const std::string& bridge, bool present) {
  const std::string port_name = pipeline::kMirrorTunnelPort;
  const std::string what = std::string(present ? "add" : "remove") + " mirror tunnel port " +
                           port_name + " on bridge " + bridge;
  // Two attempts: a concurrent writer (another port named like ours appearing, the bridge's
  // ports changing) makes the write fail; the second attempt decides on fresh rows.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto read = client_->transact(
        kDb, Json::array(
                 {Json{{"op", "select"},
                       {"table", "Bridge"},
                       {"where", Json::array()},
                       {"columns", Json::array({"_uuid", "name", "ports"})}},
                  Json{{"op", "select"},
                       {"table", "Port"},
                       {"where", whereName(port_name)},
                       {"columns", Json::array({"_uuid", "interfaces"})}},
                  Json{{"op", "select"},
                       {"table", "Interface"},
                       {"where", whereName(port_name)},
                       {"columns", Json::array({"_uuid", "type", "options", "external_ids"})}}}));
    if (!read) {
      return tl::unexpected(read.error().withContext(what));
    }
    std::string bridge_uuid;
    std::string port_uuid;
    std::string port_owner;  // name of the bridge holding the port, if any
    const Json ports = rowsOf(*read, 1);
    if (!ports.empty()) {
      port_uuid = rowUuid(ports[0]);
    }
    for (const auto& row : rowsOf(*read, 0)) {
      if (stringColumn(row, "name") == bridge) {
        bridge_uuid = rowUuid(row);
      }
      if (!port_uuid.empty() &&
          ovsdb_value::uuidSet(columnOf(row, "ports")).count(port_uuid) != 0) {
        port_owner = stringColumn(row, "name");
      }
    }
    if (bridge_uuid.empty()) {
      return makeError(what + ": no such bridge");
    }
    const Json ifaces = rowsOf(*read, 2);
    const Json iface = ifaces.empty() ? Json() : ifaces[0];
    const std::string iface_uuid = ifaces.empty() ? "" : rowUuid(iface);

    Json ops = Json::array();
    if (!present) {
      if (port_uuid.empty() || port_owner != bridge) {
        return {};  // not on our bridge (another bridge's port of that name is not ours)
      }
      // Unreferenced, the Port and its Interface are garbage-collected.
      ops.push_back(
          Json{{"op", "mutate"},
               {"table", "Bridge"},
               {"where", whereUuid(bridge_uuid)},
               {"mutations",
                Json::array({Json::array({"ports", "delete", uuidSetValue({port_uuid})})})}});
    } else if (!port_uuid.empty() && port_owner != bridge) {
      return makeError(
          what + ": a port of that name is on " +
          (port_owner.empty() ? std::string("another bridge") : "bridge " + port_owner));
    } else if (!port_uuid.empty()) {
      // Ours already: repair what differs, if anything.
      const auto members = ovsdb_value::uuidSet(columnOf(ports[0], "interfaces"));
      if (!iface_uuid.empty() && members.count(iface_uuid) == 0) {
        return makeError(what + ": its interface name is taken by another port");
      }
      const bool settings_ok =
          !iface_uuid.empty() && stringColumn(iface, "type") == "vxlan" &&
          ovsdb_value::stringMap(columnOf(iface, "options")) == tunnelOptions() &&
          ovsdb_value::stringMap(columnOf(iface, "external_ids")) == tunnelExternalIds();
      if (settings_ok && members.size() == 1) {
        return {};
      }
      if (iface_uuid.empty()) {
        Json row = tunnelInterfaceSettings();
        row["name"] = port_name;
        ops.push_back(Json{
            {"op", "insert"}, {"table", "Interface"}, {"row", row}, {"uuid-name", "vg_iface"}});
      } else if (!settings_ok) {
        ops.push_back(Json{{"op", "update"},
                           {"table", "Interface"},
                           {"where", whereUuid(iface_uuid)},
                           {"row", tunnelInterfaceSettings()}});
      }
      if (members.size() != 1 || iface_uuid.empty()) {
        // Any other interface on the port goes (garbage-collected).
        ops.push_back(Json{
            {"op", "update"},
            {"table", "Port"},
            {"where", whereUuid(port_uuid)},
            {"row", Json{{"interfaces", iface_uuid.empty() ? Json::array({"named-uuid", "vg_iface"})
                                                           : uuidRef(iface_uuid)}}}});
      }
    } else if (!iface_uuid.empty()) {
      return makeError(what + ": its interface name is taken by another port");
    } else {
      // What `ovs-vsctl add-port BRIDGE vg-mirror -- set interface vg-mirror type=vxlan ...`
      // writes. The name indexes of Port and Interface make a concurrent creator's commit or
      // ours fail, so there is never a second one.
      Json iface_row = tunnelInterfaceSettings();
      iface_row["name"] = port_name;
      ops.push_back(Json{
          {"op", "insert"}, {"table", "Interface"}, {"row", iface_row}, {"uuid-name", "vg_iface"}});
      ops.push_back(Json{{"op", "insert"},
                         {"table", "Port"},
                         {"row", Json{{"name", port_name},
                                      {"interfaces", Json::array({"named-uuid", "vg_iface"})}}},
                         {"uuid-name", "vg_port"}});
      ops.push_back(Json{
          {"op", "mutate"},
          {"table", "Bridge"},
          {"where", whereUuid(bridge_uuid)},
          {"mutations",
           Json::array({Json::array(
               {"ports", "insert",
                Json::array({"set", Json::array({Json::array({"named-uuid", "vg_port"})})})})})}});
    }
    auto done = client_->transact(kDb, ops);
    if (done) {
      // Adding to a bridge deleted meanwhile matches nothing (the new rows would be
      // garbage-collected): not done.
      const Json last = done->is_array() && !done->empty() ? done->back() : Json();
      if (present && ops.back()["table"] == "Bridge" && last.is_object() &&
          last.value("count", 1) == 0) {
        if (attempt == 1) {
          return makeError(what + ": the bridge disappeared");
        }
        continue;
      }
      return {};
    }
    if (attempt == 1) {
      return tl::unexpected(done.error().withContext(what));
    }
  }
  return makeError(what + ": unreachable");
}

Result<std::vector<std::string>> VswitchDb::setPortMirrors(
    const std::string& bridge, const std::vector<PortMirrorSpec>& mirrors) {
  const std::string what = "set port mirrors on bridge " + bridge;
  const std::string prefix = kPortMirrorPrefix;
  // Two attempts: the write is guarded by a `wait` on the bridge's ports and mirrors as read,
  // so a port or mirror added or removed meanwhile makes it fail, and the second attempt
  // decides again on fresh rows.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto read = client_->transact(
        kDb, Json::array({Json{{"op", "select"},
                               {"table", "Bridge"},
                               {"where", whereName(bridge)},
                               {"columns", Json::array({"_uuid", "ports", "mirrors"})}},
                          Json{{"op", "select"},
                               {"table", "Port"},
                               {"where", Json::array()},
                               {"columns", Json::array({"_uuid", "name", "interfaces"})}},
                          Json{{"op", "select"},
                               {"table", "Interface"},
                               {"where", Json::array()},
                               {"columns", Json::array({"_uuid", "name", "external_ids"})}},
                          // Every column, so that whatever this OVS version's schema has is
                          // compared (e.g. snaplen).
                          Json{{"op", "select"}, {"table", "Mirror"}, {"where", Json::array()}}}));
    if (!read) {
      return tl::unexpected(read.error().withContext(what));
    }
    const Json bridges = rowsOf(*read, 0);
    if (bridges.empty()) {
      return makeError(what + ": no such bridge");
    }
    const Json& bridge_row = bridges[0];
    const std::string bridge_uuid = rowUuid(bridge_row);
    const auto bridge_ports = ovsdb_value::uuidSet(columnOf(bridge_row, "ports"));
    const auto bridge_mirrors = ovsdb_value::uuidSet(columnOf(bridge_row, "mirrors"));

    struct IfaceRow {
      std::string name;
      std::string iface_id;
      std::string role;  // external_ids:vpcguard-role
    };
    std::map<std::string, IfaceRow> ifaces;  // by uuid
    for (const auto& row : rowsOf(*read, 2)) {
      const auto ids = ovsdb_value::stringMap(columnOf(row, "external_ids"));
      const auto it = ids.find("iface-id");
      const auto role = ids.find(kRoleKey);
      ifaces[rowUuid(row)] = {stringColumn(row, "name"), it == ids.end() ? "" : it->second,
                              role == ids.end() ? "" : role->second};
    }
    std::map<std::string, std::string> port_by_name;                 // on the bridge
    std::map<std::string, std::set<std::string>> ports_by_iface_id;  // on the bridge
    std::map<std::string, std::string> vm_iface_of_port;             // port uuid -> iface
    std::map<std::string, std::string> role_iface_of_port;           // port uuid -> iface
    for (const auto& row : rowsOf(*read, 1)) {
      const std::string uuid = rowUuid(row);
      if (bridge_ports.count(uuid) == 0) {
        continue;
      }
      port_by_name[stringColumn(row, "name")] = uuid;
      for (const auto& member : ovsdb_value::uuidSet(columnOf(row, "interfaces"))) {
        const auto it = ifaces.find(member);
        if (it == ifaces.end()) {
          continue;
        }
        if (!it->second.iface_id.empty()) {
          ports_by_iface_id[it->second.iface_id].insert(uuid);
          vm_iface_of_port[uuid] =
              "interface " + it->second.name + " has iface-id " + it->second.iface_id;
        }
        if (!it->second.role.empty()) {
          role_iface_of_port[uuid] = "interface " + it->second.name +
                                     " has external_ids:" + kRoleKey + "=" + it->second.role;
        }
      }
    }

    // What the specs ask for, by Mirror.name; the problems of those that cannot be applied.
    std::vector<std::string> problems;
    std::map<std::string, Json> desired;
    for (const auto& spec : mirrors) {
      const std::string label = "port mirror " + (spec.name.empty() ? "\"\"" : spec.name) + ": ";
      std::vector<std::string> why;
      if (spec.name.empty()) {
        why.push_back("a name is required");
      } else if (desired.count(prefix + spec.name) != 0) {
        why.push_back("listed more than once (the first one is applied)");
      }
      const auto src = ports_by_iface_id.find(spec.source_iface_id);
      if (src == ports_by_iface_id.end()) {
        why.push_back("source interface \"" + spec.source_iface_id +
                      "\" (external_ids:iface-id) is not on bridge " + bridge);
      }
      const auto out = port_by_name.find(spec.output_port);
      if (out == port_by_name.end()) {
        why.push_back("output port \"" + spec.output_port + "\" is not on bridge " + bridge);
      } else if (spec.output_port == bridge) {
        // OVS drops everything received on a mirror output port: here all traffic from the host,
        // local-target mirror copies included (they enter the bridge through LOCAL).
        why.push_back("output port \"" + spec.output_port +
                      "\" is the bridge's own internal port: OVS would drop all traffic from the "
                      "host, local-target mirror copies included");
      } else if (auto role = role_iface_of_port.find(out->second);
                 role != role_iface_of_port.end()) {
        why.push_back("output port \"" + spec.output_port + "\" is vpcguard's own (" +
                      role->second + "), e.g. the mirror tunnel: not an output port");
      } else if (auto vm = vm_iface_of_port.find(out->second); vm != vm_iface_of_port.end()) {
        why.push_back("output port \"" + spec.output_port + "\" is a VM port (" + vm->second +
                      "): OVS would stop delivering its own traffic");
      }
      if (!why.empty()) {
        std::string line = label;
        for (size_t i = 0; i < why.size(); ++i) {
          line += (i == 0 ? "" : "; ") + why[i];
        }
        problems.push_back(line);
        continue;
      }
      desired[prefix + spec.name] = Json{{"name", prefix + spec.name},
                                         {"select_all", false},
                                         {"select_src_port", uuidSetValue(src->second)},
                                         {"select_dst_port", uuidSetValue(src->second)},
                                         {"select_vlan", Json::array({"set", Json::array()})},
                                         {"output_port", uuidRef(out->second)},
                                         {"output_vlan", Json::array({"set", Json::array()})}};
    }

    // Our rows on this bridge: kept when right, updated in place when not, dropped when not
    // wanted (or a second row of one name). Unreferenced Mirror rows are garbage-collected.
    std::set<std::string> matched;
    std::set<std::string> drop;
    Json ops = Json::array(
        {Json{{"op", "wait"},
              {"table", "Bridge"},
              {"where", whereUuid(bridge_uuid)},
              {"columns", Json::array({"ports", "mirrors"})},
              {"until", "=="},
              {"rows", Json::array({Json{{"ports", columnOf(bridge_row, "ports")},
                                         {"mirrors", columnOf(bridge_row, "mirrors")}}})},
              {"timeout", 0}}});
    for (const auto& row : rowsOf(*read, 3)) {
      const std::string uuid = rowUuid(row);
      const std::string name = stringColumn(row, "name");
      if (bridge_mirrors.count(uuid) == 0 || name.rfind(prefix, 0) != 0) {
        continue;  // another bridge's, or not ours
      }
      const auto want = desired.find(name);
      if (want == desired.end() || matched.count(name) != 0) {
        drop.insert(uuid);
        continue;
      }
      matched.insert(name);
      const Json& w = want->second;
      const bool same = row.value("select_all", false) == false &&
                        ovsdb_value::uuidSet(columnOf(row, "select_src_port")) ==
                            ovsdb_value::uuidSet(w["select_src_port"]) &&
                        ovsdb_value::uuidSet(columnOf(row, "select_dst_port")) ==
                            ovsdb_value::uuidSet(w["select_dst_port"]) &&
                        ovsdb_value::uuidSet(columnOf(row, "output_port")) ==
                            ovsdb_value::uuidSet(w["output_port"]) &&
                        isEmptySet(row, "select_vlan") && isEmptySet(row, "output_vlan") &&
                        isEmptySet(row, "snaplen");
      if (!same) {
        Json update = w;
        if (row.contains("snaplen")) {
          update["snaplen"] = Json::array({"set", Json::array()});
        }
        ops.push_back(Json{
            {"op", "update"}, {"table", "Mirror"}, {"where", whereUuid(uuid)}, {"row", update}});
      }
    }
    Json added = Json::array();
    for (const auto& [name, row] : desired) {
      if (matched.count(name) != 0) {
        continue;
      }
      const std::string id = "vg_mirror" + std::to_string(added.size());
      ops.push_back(Json{{"op", "insert"}, {"table", "Mirror"}, {"row", row}, {"uuid-name", id}});
      added.push_back(Json::array({"named-uuid", id}));
    }
    Json mutations = Json::array();
    if (!drop.empty()) {
      mutations.push_back(Json::array({"mirrors", "delete", uuidSetValue(drop)}));
    }
    if (!added.empty()) {
      mutations.push_back(Json::array({"mirrors", "insert", Json::array({"set", added})}));
    }
    if (!mutations.empty()) {
      ops.push_back(Json{{"op", "mutate"},
                         {"table", "Bridge"},
                         {"where", whereUuid(bridge_uuid)},
                         {"mutations", mutations}});
    }
    if (ops.size() == 1) {
      return problems;  // already as asked: nothing to write
    }
    auto done = client_->transact(kDb, ops);
    if (done) {
      return problems;
    }
    if (attempt == 1) {
      return tl::unexpected(done.error().withContext(what));
    }
  }
  return makeError(what + ": unreachable");
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
  // 2. Which zones are ours: `owned`, and every zone whose timeout policy carries our
  // external_ids:vpcguard-zone (written below). The second covers interfaces removed while
  // vpcguardd was not running, which no one else would ever clean up.
  std::set<uint16_t> ours = owned;
  auto tps = client_->transact(
      kDb, Json::array({Json{{"op", "select"},
                             {"table", "CT_Timeout_Policy"},
                             {"where", Json::array()},
                             {"columns", Json::array({"external_ids"})}}}));
  if (!tps) {
    return tl::unexpected(tps.error().withContext(what));
  }
  for (const auto& row : (*tps)[0].value("rows", Json::array())) {
    const auto ids = ovsdb_value::stringMap(row.value("external_ids", Json()));
    if (auto it = ids.find("vpcguard-zone"); it != ids.end()) {
      int zone = 0;
      const auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), zone);
      if (ec == std::errc() && ptr == it->second.data() + it->second.size() && zone > 0 &&
          zone <= 65535) {
        ours.insert(static_cast<uint16_t>(zone));
      }
    }
  }
  // 3. Replace our zones' entries; CT_Zone and CT_Timeout_Policy are not root tables, so the
  // rows a zone no longer references are garbage-collected by ovsdb-server.
  Json ops = Json::array();
  Json keys = Json::array();
  Json zones = Json::array();
  for (uint16_t z : ours) {
    keys.push_back(z);
  }
  for (const auto& [zone, timeouts] : policies) {
    if (ours.count(zone) == 0) {
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
  std::set<std::string> ports;
  for (const auto& row : rowsOf(*r, 0)) {
    ports = ovsdb_value::uuidSet(columnOf(row, "ports"));
  }
  std::set<std::string> out;
  for (const auto& row : rowsOf(*r, 1)) {
    if (ports.count(rowUuid(row)) != 0) {
      auto ifaces = ovsdb_value::uuidSet(columnOf(row, "interfaces"));
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
