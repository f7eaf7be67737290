#include "daemon/status.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vpcguard {

using nlohmann::json;

std::string nowIso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string defaultStatusFile(const std::string& bridge) {
  return "/var/run/vpcguard/" + bridge + ".status.json";
}

std::string statusToJson(const DaemonStatus& s) {
  json flows = json::object();
  size_t total = 0;
  for (const auto& [table, n] : s.flows_per_table) {
    flows[std::to_string(table)] = n;
    total += n;
  }
  json j = {{"pid", s.pid},
            {"version", s.version},
            {"bridge", s.bridge},
            {"ovsdb", s.ovsdb},
            {"openflow", s.openflow},
            {"config", s.config},
            {"connected", s.connected},
            {"generation", s.generation},
            {"flows_total", total},
            {"flows_per_table", flows},
            {"interfaces_attached", s.interfaces_attached},
            {"last_sync", s.last_sync},
            {"last_sync_ms", s.last_sync_ms},
            {"last_sync_reason", s.last_sync_reason},
            {"drift_repairs", s.drift_repairs},
            {"last_repair", s.last_repair},
            {"flow_monitor", s.flow_monitor},
            {"flow_restore_wait", s.flow_restore_wait},
            {"unresponsive", s.unresponsive},
            {"controller_fight", s.controller_fight},
            {"config_loaded", s.config_loaded},
            {"last_error", s.last_error},
            {"last_error_time", s.last_error_time},
            {"updated", s.updated},
            {"source", s.source}};
  if (s.source.starts_with("state:")) {
    j["state_generation"] = s.state_generation;
    j["state_connection"] = s.state_connection;
    j["state_error"] = s.state_error;
    j["state_waiting"] = s.state_waiting;
  }
  return j.dump(2) + "\n";
}

Result<DaemonStatus> statusFromJson(const std::string& text) {
  try {
    const json j = json::parse(text);
    DaemonStatus s;
    s.pid = j.value("pid", 0);
    s.version = j.value("version", "");
    s.bridge = j.value("bridge", "");
    s.ovsdb = j.value("ovsdb", "");
    s.openflow = j.value("openflow", "");
    s.config = j.value("config", "");
    s.connected = j.value("connected", false);
    s.generation = j.value("generation", uint16_t{0});
    if (auto it = j.find("flows_per_table"); it != j.end() && it->is_object()) {
      for (auto t = it->begin(); t != it->end(); ++t) {
        s.flows_per_table[std::stoi(t.key())] = t.value().get<size_t>();
      }
    }
    s.interfaces_attached = j.value("interfaces_attached", size_t{0});
    s.last_sync = j.value("last_sync", "");
    s.last_repair = j.value("last_repair", "");
    s.flow_monitor = j.value("flow_monitor", false);
    s.flow_restore_wait = j.value("flow_restore_wait", false);
    s.last_sync_ms = j.value("last_sync_ms", 0.0);
    s.last_sync_reason = j.value("last_sync_reason", "");
    s.drift_repairs = j.value("drift_repairs", uint64_t{0});
    s.config_loaded = j.value("config_loaded", "");
    s.last_error = j.value("last_error", "");
    s.unresponsive = j.value("unresponsive", "");
    s.controller_fight = j.value("controller_fight", "");
    s.last_error_time = j.value("last_error_time", "");
    s.updated = j.value("updated", "");
    s.source = j.value("source", "");
    s.state_generation = j.value("state_generation", int64_t{0});
    s.state_connection = j.value("state_connection", "");
    s.state_error = j.value("state_error", "");
    s.state_waiting = j.value("state_waiting", false);
    return s;
  } catch (const std::exception& e) {
    return makeError(std::string("malformed status: ") + e.what());
  }
}

Result<void> writeStatusFile(const std::string& path, const DaemonStatus& status) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) {
      return makeError("cannot write " + tmp);
    }
    out << statusToJson(status);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return makeError("cannot rename " + tmp + " to " + path);
  }
  return {};
}

Result<DaemonStatus> readStatusFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return makeError("no status at " + path + " (is vpcguardd running? see --status-file)");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto status = statusFromJson(text.str());
  if (!status) {
    return makeError(path + ": " + status.error().message);
  }
  return status;
}

int runStatusCommand(const StatusCommandOptions& options, std::ostream& out, std::ostream& err) {
  const std::string path =
      options.status_file.empty() ? defaultStatusFile(options.bridge) : options.status_file;
  std::ifstream in(path);
  if (!in) {
    err << "vpcguardctl: no status at " << path
        << " (is vpcguardd running for bridge " << options.bridge << "? see --status-file)\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto status = statusFromJson(text.str());
  if (!status) {
    err << "vpcguardctl: " << path << ": " << status.error().message << "\n";
    return 2;
  }
  const bool running = status->pid > 0 && ::kill(status->pid, 0) == 0;
  if (options.output == "json") {
    auto j = json::parse(text.str());
    j["running"] = running;
    out << j.dump(2) << "\n";
  } else {
    size_t total = 0;
    std::string per_table;
    for (const auto& [table, n] : status->flows_per_table) {
      total += n;
      per_table += fmt::format(" {}:{}", table, n);
    }
    out << fmt::format("vpcguardd      {} (pid {}, version {})\n",
                       running ? "running" : "NOT RUNNING (status is from its last run)",
                       status->pid, status->version);
    out << fmt::format("bridge         {}  ovsdb {}  openflow {}\n", status->bridge, status->ovsdb,
                       status->openflow);
    out << fmt::format("connection     {}{}\n", status->connected ? "connected" : "DISCONNECTED",
                       status->unresponsive.empty()
                           ? ""
                           : ", BUT THE SWITCH DOES NOT RESPOND: " + status->unresponsive);
    if (!status->source.empty()) {
      out << fmt::format("source         {}\n", status->source);
    }
    if (status->source.starts_with("state:")) {
      out << fmt::format("state          {}, generation {} applied (loaded {}){}\n",
                         status->state_connection, status->state_generation,
                         status->config_loaded,
                         status->state_error.empty() ? "" : ", last error: " + status->state_error);
      if (status->state_waiting) {
        out << "               waiting for desired state (the database is empty; flows from "
               "before are kept)\n";
      }
    } else {
      out << fmt::format("config         {} (loaded {})\n", status->config, status->config_loaded);
    }
    out << fmt::format("generation     {}\n", status->generation);
    out << fmt::format("flows          {} (per table:{})\n", total, per_table);
    out << fmt::format("interfaces     {} attached\n", status->interfaces_attached);
    out << fmt::format("last sync      {} ({}, {:.1f} ms)\n", status->last_sync,
                       status->last_sync_reason, status->last_sync_ms);
    out << fmt::format("drift repairs  {}{}  (flow monitor {})\n", status->drift_repairs,
                       status->last_repair.empty() ? "" : ", last " + status->last_repair,
                       status->flow_monitor ? "on" : "OFF: only the periodic check sees drift");
    if (!status->controller_fight.empty()) {
      out << fmt::format("FIGHT          {}\n", status->controller_fight);
    }
    if (status->flow_restore_wait) {
      out << "flow-restore-wait  STILL SET: ovs-vswitchd is not forwarding\n";
    }
    out << fmt::format("last error     {}\n", status->last_error.empty()
                                                   ? std::string("none")
                                                   : status->last_error_time + " " + status->last_error);
    out << fmt::format("updated        {}\n", status->updated);
  }
  // A state database that is not connected is a problem too (changes do not arrive).
  const bool state_ok =
      !status->source.starts_with("state:") || status->state_connection == "connected";
  return running && status->connected && status->unresponsive.empty() &&
                 status->controller_fight.empty() &&
                 status->last_error.empty() && !status->flow_restore_wait && state_ok
             ? 0
             : 1;
}

}  // namespace vpcguard
