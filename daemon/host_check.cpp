#include "daemon/host_check.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <nlohmann/json.hpp>

#include "ovs-plugin/ovsdb_client.h"
#include "ovs-plugin/vswitch_db.h"

namespace vpcguard {
namespace {

using ovs::Json;

constexpr const char* kModuleMessage =
    "the openvswitch kernel module is not loaded (modprobe openvswitch)";

HostCheckItem item(std::string name, CheckStatus status, std::string reason) {
  return HostCheckItem{std::move(name), status, std::move(reason)};
}

// An optional string column: "x" or ["set", []].
std::string optionalString(const Json& value) {
  if (value.is_string()) {
    return value.get<std::string>();
  }
  return {};
}

// A map column string -> uuid: ["map", [["netdev", ["uuid", U]], ...]].
std::map<std::string, std::string> uuidMap(const Json& value) {
  std::map<std::string, std::string> out;
  if (!value.is_array() || value.size() != 2 || value[0] != "map" || !value[1].is_array()) {
    return out;
  }
  for (const auto& pair : value[1]) {
    if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_array() &&
        pair[1].size() == 2 && pair[1][1].is_string()) {
      out[pair[0].get<std::string>()] = pair[1][1].get<std::string>();
    }
  }
  return out;
}

// A set of strings: "x" (one member) or ["set", ["a", "b"]].
std::vector<std::string> stringSet(const Json& value) {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
  } else if (value.is_array() && value.size() == 2 && value[0] == "set" && value[1].is_array()) {
    for (const auto& member : value[1]) {
      if (member.is_string()) {
        out.push_back(member.get<std::string>());
      }
    }
  }
  return out;
}

// Number of keys of a map column whatever its value type: ["map", [[k, v], ...]].
size_t mapSize(const Json& value) {
  if (value.is_array() && value.size() == 2 && value[0] == "map" && value[1].is_array()) {
    return value[1].size();
  }
  return 0;
}

const Json& rowsOf(const Json& results, size_t index) {
  static const Json kEmpty = Json::array();
  if (results.is_array() && index < results.size() && results[index].contains("rows")) {
    return results[index]["rows"];
  }
  return kEmpty;
}

const Json& column(const Json& row, const char* name) {
  static const Json kNull;
  auto it = row.find(name);
  return it == row.end() ? kNull : *it;
}

std::string defaultRunDir(const HostCheckOptions& options) {
  if (!options.run_dir.empty()) {
    return options.run_dir;
  }
  if (options.ovsdb.rfind("unix:", 0) == 0) {
    const std::string path = options.ovsdb.substr(5);
    const auto slash = path.rfind('/');
    if (slash != std::string::npos) {
      return slash == 0 ? "/" : path.substr(0, slash);
    }
    return ".";
  }
  return "/var/run/openvswitch";
}

// The bridge's OpenFlow management socket: present, a socket, and someone listening.
HostCheckItem checkMgmtSocket(const std::string& path, const std::string& bridge) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return item("openflow-socket", CheckStatus::kFail,
                path +
                    " does not exist: ovs-vswitchd is not running (against this database), or "
                    "it failed to create bridge " +
                    bridge +
                    " (see ovs-vswitchd.log); pass --run-dir "
                    "if ovs-vswitchd keeps its sockets elsewhere");
  }
  if (!S_ISSOCK(st.st_mode)) {
    return item("openflow-socket", CheckStatus::kFail, path + " exists but is not a socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return item("openflow-socket", CheckStatus::kWarn,
                path + " exists; path too long to connect to (" + std::to_string(path.size()) +
                    " bytes), not probed");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return item("openflow-socket", CheckStatus::kWarn,
                path + " exists; socket(): " + std::strerror(errno));
  }
  // Non-blocking: a full backlog (EAGAIN) still means someone listens.
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int saved = errno;
  ::close(fd);
  if (rc != 0 && saved != EAGAIN && saved != EINPROGRESS) {
    return item("openflow-socket", CheckStatus::kFail,
                path + ": connect: " + std::strerror(saved) +
                    " (a stale socket: ovs-vswitchd is not running)");
  }
  return item("openflow-socket", CheckStatus::kOk, path + " accepts connections");
}

HostCheckItem checkKernel(const KernelDatapathProbe& probe, std::optional<bool> kernel_bridge,
                          const std::string& bridge) {
  const bool available = probe.genl_family;
  std::string seen = std::string("/sys/module/openvswitch ") +
                     (probe.sysfs_module ? "present" : "absent") +
                     (probe.builtin ? ", built into the kernel" : "") +
                     ", generic-netlink family ovs_datapath " +
                     (!probe.probed ? "not looked up (that would load the module)"
                      : probe.genl_family ? "resolves"
                                          : "missing") +
                     (probe.genl_detail.empty() || !probe.probed ? ""
                                                                  : " (" + probe.genl_detail + ")");
  if (kernel_bridge.value_or(false)) {
    if (available) {
      return item("kernel-datapath", CheckStatus::kOk,
                  "kernel datapath available for " + bridge + ": " + seen);
    }
    if (probe.probed) {
      return item("kernel-datapath", CheckStatus::kFail,
                  "the openvswitch module is loaded but its datapath family does not resolve (" +
                      seen + "); check dmesg for openvswitch errors");
    }
    return item("kernel-datapath", CheckStatus::kFail,
                std::string(kModuleMessage) + "; " + bridge +
                    " has datapath_type=system, which needs it (" + seen + ")");
  }
  if (!kernel_bridge.has_value()) {
    return item("kernel-datapath", available ? CheckStatus::kOk : CheckStatus::kWarn,
                (available ? "kernel datapath available: "
                           : "kernel datapath absent (needed only by datapath_type=system "
                             "bridges): ") +
                    seen);
  }
  return item("kernel-datapath", CheckStatus::kOk,
              "not needed: " + bridge + " uses the userspace datapath (" + seen + ")");
}

std::string escapeJson(const std::string& s) { return Json(s).dump(); }

}  // namespace

const char* toString(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk:
      return "ok";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kFail:
      return "fail";
  }
  return "?";
}

KernelDatapathProbe probeKernelDatapath() {
  KernelDatapathProbe probe;
  struct stat st {};
  probe.sysfs_module = ::stat("/sys/module/openvswitch", &st) == 0 && S_ISDIR(st.st_mode);
  // A built-in openvswitch need not have a /sys/module entry; it is listed here instead.
  if (utsname uts{}; ::uname(&uts) == 0) {
    std::ifstream builtin(std::string("/lib/modules/") + uts.release + "/modules.builtin");
    for (std::string line; std::getline(builtin, line);) {
      if (line.ends_with("/openvswitch.ko")) {
        probe.builtin = true;
        break;
      }
    }
  }
  if (!probe.sysfs_module && !probe.builtin) {
    // Resolving the family would make the kernel load the module: host-check changes nothing.
    probe.genl_detail = "not probed: the openvswitch module is not loaded";
    return probe;
  }
  probe.probed = true;
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) {
    probe.genl_detail = "nl_socket_alloc failed";
    return probe;
  }
  if (const int rc = genl_connect(sock); rc < 0) {
    probe.genl_detail = std::string("genl_connect: ") + nl_geterror(rc);
  } else if (const int family = genl_ctrl_resolve(sock, "ovs_datapath"); family < 0) {
    probe.genl_detail = nl_geterror(family);
  } else {
    probe.genl_family = true;
  }
  nl_socket_free(sock);
  return probe;
}

std::vector<HostCheckItem> runHostChecks(const HostCheckOptions& options) {
  std::vector<HostCheckItem> items;
  const KernelDatapathProbe kernel = probeKernelDatapath();
  const std::string timeout_text = std::to_string(options.timeout.count()) + " ms";

  ovs::OvsdbOptions ovsdb_options;
  ovsdb_options.connect_timeout = options.timeout;
  ovsdb_options.request_timeout = options.timeout;
  auto client = ovs::connectOvsdb(options.ovsdb, ovsdb_options);
  if (!client) {
    items.push_back(item("ovsdb", CheckStatus::kFail,
                         "cannot reach OVSDB at " + options.ovsdb + " within " + timeout_text +
                             ": " + client.error().message +
                             " (is ovsdb-server running? on the host: systemctl status "
                             "openvswitch-switch; elsewhere pass --ovsdb)"));
    items.push_back(checkKernel(kernel, std::nullopt, options.bridge));
    return items;
  }
  const Json ops = Json::array({
      Json{{"op", "select"},
           {"table", "Open_vSwitch"},
           {"where", Json::array()},
           {"columns", {"ovs_version", "other_config", "datapaths", "datapath_types"}}},
      Json{{"op", "select"},
           {"table", "Bridge"},
           {"where", Json::array({Json::array({"name", "==", options.bridge})})},
           {"columns", {"datapath_type", "fail_mode"}}},
      Json{{"op", "select"},
           {"table", "Interface"},
           {"where", Json::array({Json::array({"name", "==", options.bridge})})},
           {"columns", {"error", "ofport"}}},
      Json{{"op", "select"},
           {"table", "Datapath"},
           {"where", Json::array()},
           {"columns", {"_uuid", "capabilities", "ct_zones"}}},
  });
  auto results = (*client)->transact(ovs::VswitchDb::kDb, ops);
  if (!results) {
    items.push_back(item("ovsdb", CheckStatus::kFail,
                         "OVSDB at " + options.ovsdb + " did not answer a read of the " +
                             ovs::VswitchDb::kDb + " database within " + timeout_text + ": " +
                             results.error().message));
    items.push_back(checkKernel(kernel, std::nullopt, options.bridge));
    return items;
  }

  // --- OVSDB and version.
  const Json& ovs_rows = rowsOf(*results, 0);
  if (ovs_rows.empty()) {
    items.push_back(item("ovsdb", CheckStatus::kFail,
                         "reachable at " + options.ovsdb +
                             " but the Open_vSwitch table is empty: run `ovs-vsctl init` (the "
                             "openvswitch-switch service does it)"));
    items.push_back(checkKernel(kernel, std::nullopt, options.bridge));
    return items;
  }
  const Json& ovs_row = ovs_rows[0];
  const std::string version = optionalString(column(ovs_row, "ovs_version"));
  items.push_back(item("ovsdb", CheckStatus::kOk,
                       "reachable at " + options.ovsdb + "; Open vSwitch " +
                           (version.empty() ? "version not recorded (ovs_version is set by "
                                              "ovs-ctl; a hand-started switch leaves it empty)"
                                            : version)));

  // --- The bridge and its datapath type.
  const Json& bridge_rows = rowsOf(*results, 1);
  std::optional<bool> kernel_bridge;
  std::string dp_type;
  if (bridge_rows.empty()) {
    items.push_back(item("bridge", CheckStatus::kFail,
                         "bridge " + options.bridge +
                             " does not exist: create it before guests "
                             "start (libvirt plugs their ports into it): ovs-vsctl add-br " +
                             options.bridge + " (vpcguardd also creates it at start)"));
  } else {
    dp_type = optionalString(column(bridge_rows[0], "datapath_type"));
    const std::string shown = dp_type.empty() ? "\"\" (= system)" : dp_type;
    if (dp_type.empty()) {
      dp_type = "system";
    }
    const auto supported = stringSet(column(ovs_row, "datapath_types"));
    const bool listed = std::find(supported.begin(), supported.end(), dp_type) != supported.end();
    const Json& iface_rows = rowsOf(*results, 2);
    std::string iface_error;
    if (!iface_rows.empty()) {
      iface_error = optionalString(column(iface_rows[0], "error"));
    }
    if (dp_type == "system") {
      kernel_bridge = true;
      items.push_back(item("bridge", CheckStatus::kOk,
                           options.bridge + " exists, datapath_type=" + shown +
                               ": the kernel datapath (kernel conntrack)"));
    } else if (dp_type == "netdev") {
      kernel_bridge = false;
      items.push_back(item("bridge", CheckStatus::kOk,
                           options.bridge + " exists, datapath_type=netdev: the userspace "
                                            "datapath (OVS's own conntrack)"));
    } else {
      kernel_bridge = false;
      items.push_back(item("bridge", CheckStatus::kWarn,
                           options.bridge + " exists, datapath_type=" + dp_type +
                               ": not a production datapath (expected system or netdev)"));
    }
    if (!supported.empty() && !listed) {
      items.back() = item(
          "bridge", CheckStatus::kFail,
          options.bridge + " has datapath_type=" + dp_type +
              ", which this ovs-vswitchd does not support (it has: " +
              [&] {
                std::string all;
                for (const auto& t : supported) {
                  all += (all.empty() ? "" : ", ") + t;
                }
                return all;
              }() +
              ")");
    } else if (!iface_error.empty()) {
      items.back().status = CheckStatus::kFail;
      items.back().reason += "; its internal interface has an error: " + iface_error;
    }
  }

  // --- Kernel datapath (detected, never assumed).
  items.push_back(checkKernel(kernel, kernel_bridge, options.bridge));

  // --- Datapath row: capabilities, CT zones and timeout policies.
  if (!dp_type.empty()) {
    const auto datapaths = uuidMap(column(ovs_row, "datapaths"));
    const auto dp = datapaths.find(dp_type);
    const Json* dp_row = nullptr;
    if (dp != datapaths.end()) {
      for (const auto& row : rowsOf(*results, 3)) {
        const Json& uuid = column(row, "_uuid");
        if (uuid.is_array() && uuid.size() == 2 && uuid[1] == dp->second) {
          dp_row = &row;
        }
      }
    }
    const std::string create_hint =
        "ovs-vsctl -- --id=@d create Datapath datapath_version=0 -- "
        "set Open_vSwitch . datapaths:" +
        dp_type + "=@d";
    if (dp_row == nullptr) {
      items.push_back(item("datapath-capabilities", CheckStatus::kWarn,
                           "no Datapath row for " + dp_type +
                               " in Open_vSwitch.datapaths: "
                               "capabilities are not reported and conntrack timeout policies "
                               "(CT_Timeout_Policy) cannot be set; vpcguardd creates it when a "
                               "policy has conntrack timeouts, or: " +
                               create_hint + " (ovs-appctl dpif/show-dp-features " +
                               options.bridge + " shows the features meanwhile)"));
    } else {
      const auto caps = ovs::ovsdb_value::stringMap(column(*dp_row, "capabilities"));
      if (caps.empty()) {
        items.push_back(item("datapath-capabilities", CheckStatus::kWarn,
                             "the Datapath row for " + dp_type +
                                 " has no capabilities: "
                                 "ovs-vswitchd fills them once, when it first sees the row while a "
                                 "bridge of that type exists (restart ovs-vswitchd, or see "
                                 "ovs-appctl dpif/show-dp-features " +
                                 options.bridge + ")"));
      } else {
        std::vector<std::string> missing;
        for (const char* needed : {"recirc", "ct_state", "ct_zone"}) {
          auto it = caps.find(needed);
          if (it == caps.end() || it->second != "true") {
            missing.emplace_back(needed);
          }
        }
        if (!missing.empty()) {
          std::string list;
          for (const auto& m : missing) {
            list += (list.empty() ? "" : ", ") + m;
          }
          items.push_back(item("datapath-capabilities", CheckStatus::kFail,
                               "the " + dp_type + " datapath lacks " + list +
                                   ": vpcguard's stateful rules need conntrack with zones and "
                                   "recirculation (kernel: nf_conntrack; a newer kernel/OVS)"));
        } else {
          items.push_back(item("datapath-capabilities", CheckStatus::kOk,
                               "the " + dp_type + " datapath has recirc, ct_state, ct_zone"));
        }
      }
      const size_t zones = mapSize(column(*dp_row, "ct_zones"));
      const auto ct_timeout = caps.find("ct_timeout");
      if (!caps.empty() && (ct_timeout == caps.end() || ct_timeout->second != "true")) {
        items.push_back(item("ct-timeout-policies", CheckStatus::kWarn,
                             "the " + dp_type + " datapath cannot apply CT_Timeout_Policy (" +
                                 std::to_string(zones) +
                                 " zone(s) configured): conntrack "
                                 "timeouts stay at the defaults (kernel: needs Linux >= 5.2 "
                                 "with nf_conntrack_timeout)"));
      } else {
        items.push_back(item(
            "ct-timeout-policies", CheckStatus::kOk,
            std::to_string(zones) + " CT zone(s) configured on the " + dp_type + " datapath" +
                (caps.empty() ? " (support unknown: no capabilities)" : "; ct_timeout supported")));
      }
    }
  }

  // --- OpenFlow management socket.
  if (!bridge_rows.empty()) {
    items.push_back(
        checkMgmtSocket(defaultRunDir(options) + "/" + options.bridge + ".mgmt", options.bridge));
  }

  // --- flow-restore-wait.
  const auto other_config = ovs::ovsdb_value::stringMap(column(ovs_row, "other_config"));
  const auto frw = other_config.find("flow-restore-wait");
  if (frw != other_config.end() && frw->second == "true") {
    items.push_back(
        item("flow-restore-wait", CheckStatus::kWarn,
             "other_config:flow-restore-wait=true: ovs-vswitchd keeps the old "
             "datapath flows but handles no new packets and talks to no controller "
             "until it is cleared; a running vpcguardd clears it once its flows are back "
             "(after --flow-restore-grace). Without vpcguardd: ovs-vsctl remove "
             "Open_vSwitch . other_config flow-restore-wait"));
  } else {
    items.push_back(item("flow-restore-wait", CheckStatus::kOk, "not set"));
  }
  return items;
}

int runHostCheckCommand(const HostCheckOptions& options, std::ostream& out, std::ostream& err) {
  if (options.output != "text" && options.output != "json") {
    err << "vpcguardctl host-check: --output must be text or json, not '" << options.output
        << "'\n";
    return 2;
  }
  if (options.timeout.count() <= 0) {
    err << "vpcguardctl host-check: --timeout must be positive\n";
    return 2;
  }
  const auto items = runHostChecks(options);
  CheckStatus worst = CheckStatus::kOk;
  for (const auto& i : items) {
    if (static_cast<int>(i.status) > static_cast<int>(worst)) {
      worst = i.status;
    }
  }
  if (options.output == "json") {
    out << "{\"ovsdb\": " << escapeJson(options.ovsdb)
        << ", \"bridge\": " << escapeJson(options.bridge) << ", \"result\": \"" << toString(worst)
        << "\", \"checks\": [";
    for (size_t n = 0; n < items.size(); ++n) {
      out << (n == 0 ? "\n  " : ",\n  ") << "{\"name\": " << escapeJson(items[n].name)
          << ", \"status\": \"" << toString(items[n].status)
          << "\", \"reason\": " << escapeJson(items[n].reason) << "}";
    }
    out << "\n]}\n";
  } else {
    for (const auto& i : items) {
      out << toString(i.status) << std::string(6 - std::strlen(toString(i.status)), ' ') << i.name
          << std::string(i.name.size() < 23 ? 23 - i.name.size() : 1, ' ') << i.reason << "\n";
    }
    out << "result: " << toString(worst) << "\n";
  }
  return worst == CheckStatus::kFail ? 1 : 0;
}

}  // namespace vpcguard
