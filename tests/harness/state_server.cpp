#include "tests/harness/state_server.h"

#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "ovs-plugin/ovsdb_client.h"

namespace vpcguard::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(20);

}  // namespace

std::optional<std::string> StateServer::unavailableReason() {
  for (const char* tool : {"ovsdb-server", "ovsdb-tool"}) {
    if (!run(std::string("command -v ") + tool).ok()) {
      return std::string("needs ") + tool + " (apt-get install openvswitch-switch)";
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<StateServer>> StateServer::start() {
  std::unique_ptr<StateServer> server(new StateServer());
  char tmpl[] = "/tmp/vgt.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return makeError("state server: mkdtemp /tmp/vgt.XXXXXX failed");
  }
  server->dir_ = tmpl;  // mkdtemp makes it 0700
  StateServer* raw = server.get();
  server->signal_cleanup_id_ = SignalCleanup::add([raw] { raw->cleanup(); });
  if (auto r = runChecked("ovsdb-tool create " + shellQuote(server->dbPath()) + " " +
                          shellQuote(VPCGUARD_SCHEMA_SOURCE));
      !r) {
    return tl::unexpected(r.error().withContext("state server " + server->dir_));
  }
  if (auto r = server->startServer(); !r) {
    return tl::unexpected(r.error().withContext("state server " + server->dir_));
  }
  return server;
}

StateServer::~StateServer() {
  SignalCleanup::remove(signal_cleanup_id_);
  cleanup();
}

pid_t StateServer::pid() const { return server_ ? server_->pid() : 0; }

Result<void> StateServer::startServer() {
  ChildProcess::Options opts;
  // umask 077 through a shell that execs in place (same pid, PDEATHSIG kept), so the socket is
  // never more than owner-accessible; the chmod below then makes it exactly 0600.
  const std::string command =
      "umask 077; exec ovsdb-server --no-chdir --pidfile=" + shellQuote(dir_ + "/ovsdb-server.pid") +
      " --log-file=" + shellQuote(dir_ + "/ovsdb-server.log") +
      " --unixctl=" + shellQuote(dir_ + "/ovsdb-server.ctl") + " -vconsole:off" +
      " --remote=punix:" + shellQuote(socketPath()) + " " + shellQuote(dbPath());
  opts.argv = {"sh", "-c", command};
  opts.output_path = dir_ + "/ovsdb-server.out";
  auto child = ChildProcess::spawn(opts);
  if (!child) {
    return tl::unexpected(child.error().withContext("start ovsdb-server"));
  }
  server_ = std::move(*child);
  std::string last;
  const bool up = waitFor(
      [&] {
        if (!server_->running()) {
          return true;  // reported below
        }
        // The socket of a killed server stays behind until the new one replaces it: only an
        // answer to list_dbs says this server is up.
        auto client = ovs::connectOvsdb(target(), {std::chrono::seconds(1), std::chrono::seconds(2)});
        if (!client) {
          last = client.error().message;
          return false;
        }
        auto dbs = (*client)->listDbs();
        if (!dbs) {
          last = dbs.error().message;
          return false;
        }
        return true;
      },
      kStartTimeout, std::chrono::milliseconds(20));
  if (!up || !server_->running()) {
    return makeError("ovsdb-server did not come up: " + last + " (see " + dir_ +
                     "/ovsdb-server.log and ovsdb-server.out)");
  }
  if (::chmod(socketPath().c_str(), 0600) != 0) {
    return makeError("chmod 0600 " + socketPath() + " failed");
  }
  return {};
}

void StateServer::kill9() {
  if (server_) {
    server_->kill();
  }
  server_.reset();
}

Result<void> StateServer::restart() {
  if (server_) {
    server_->signal(SIGTERM);
    if (!server_->waitExit(std::chrono::seconds(5))) {
      server_->kill();
    }
    server_.reset();
  }
  return startServer();
}

void StateServer::cleanup() {
  if (server_) {
    server_->kill();
    server_.reset();
  }
  if (!dir_.empty()) {
    if (std::getenv("VPCGUARD_KEEP_SANDBOX") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

}  // namespace vpcguard::test

namespace vpcguard::test {
namespace {

using nlohmann::json;

json optionalJson(const std::optional<model::PortRange>& r) {
  return r ? json::array({r->from, r->to}) : json(nullptr);
}
json optionalJson(const std::optional<model::IcmpTypeCode>& r) {
  return r ? json::array({r->type, r->code}) : json(nullptr);
}
template <typename T>
json optionalJson(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
json addressesJson(const std::vector<IpAddress>& v) {
  json out = json::array();
  for (const auto& a : v) {
    out.push_back(a.toString());
  }
  return out;
}
json cidrsJson(const std::vector<Cidr>& v) {
  json out = json::array();
  for (const auto& c : v) {
    out.push_back(c.toString());
  }
  return out;
}
json peerJson(const model::Peer& peer) {
  if (const auto* c = std::get_if<Cidr>(&peer)) {
    return {{"cidr", c->toString()}};
  }
  if (const auto* g = std::get_if<model::GroupRef>(&peer)) {
    return {{"group", g->group_id}};
  }
  return {{"prefix_list", std::get<model::PrefixListRef>(peer).prefix_list_id}};
}
json groupRulesJson(const std::vector<model::SecurityGroupRule>& rules) {
  json out = json::array();
  for (const auto& r : rules) {
    out.push_back({{"ip_protocol", r.ip_protocol},
                   {"ports", optionalJson(r.ports)},
                   {"icmp", optionalJson(r.icmp)},
                   {"peer", peerJson(r.peer)},
                   {"description", r.description}});
  }
  return out;
}
json mirrorRulesJson(const std::vector<model::TrafficMirrorFilterRule>& rules) {
  json out = json::array();
  for (const auto& r : rules) {
    out.push_back({{"rule_number", r.rule_number},
                   {"accept", r.accept},
                   {"protocol", r.protocol},
                   {"source", r.source_cidr_block.toString()},
                   {"destination", r.destination_cidr_block.toString()},
                   {"source_ports", optionalJson(r.source_port_range)},
                   {"destination_ports", optionalJson(r.destination_port_range)},
                   {"description", r.description}});
  }
  return out;
}
template <typename T, typename Fn>
json sortedById(const std::vector<T>& objects, Fn to_json) {
  std::vector<const T*> sorted;
  for (const auto& o : objects) {
    sorted.push_back(&o);
  }
  std::sort(sorted.begin(), sorted.end(), [](const T* a, const T* b) { return a->id < b->id; });
  json out = json::array();
  for (const T* o : sorted) {
    out.push_back(to_json(*o));
  }
  return out;
}

}  // namespace

std::string policyContent(const model::Policy& p) {
  json out;
  out["vpc"] = {{"id", p.vpc.id},
                {"account_id", p.vpc.account_id},
                {"region", p.vpc.region},
                {"cidr_blocks", cidrsJson(p.vpc.cidr_blocks)},
                {"ipv6_cidr_blocks", cidrsJson(p.vpc.ipv6_cidr_blocks)},
                {"strict_revocation", p.vpc.strict_revocation}};
  const auto& q = p.quotas;
  out["quotas"] = json::array({q.rules_per_security_group, q.security_groups_per_interface,
                               q.rules_per_interface, q.rules_per_network_acl,
                               q.network_acls_per_vpc, q.security_groups_per_vpc,
                               q.prefix_list_max_entries, q.traffic_mirror_sessions_per_interface,
                               q.traffic_mirror_filter_rules});
  out["subnets"] = sortedById(p.subnets, [](const model::Subnet& s) {
    return json{{"id", s.id},
                {"cidr_block", s.cidr_block.toString()},
                {"ipv6_cidr_block",
                 s.ipv6_cidr_block ? json(s.ipv6_cidr_block->toString()) : json(nullptr)},
                {"network_acl_id", s.network_acl_id}};
  });
  out["network_interfaces"] = sortedById(p.network_interfaces, [](const model::NetworkInterface& n) {
    return json{{"id", n.id},
                {"subnet_id", n.subnet_id},
                {"mac_address", n.mac_address},
                {"private_ip_addresses", addressesJson(n.private_ip_addresses)},
                {"ipv6_addresses", addressesJson(n.ipv6_addresses)},
                {"security_group_ids", n.security_group_ids},
                {"source_dest_check", n.source_dest_check},
                {"tcp_established_timeout",
                 optionalJson(n.connection_tracking.tcp_established_timeout)},
                {"udp_timeout", optionalJson(n.connection_tracking.udp_timeout)},
                {"udp_stream_timeout", optionalJson(n.connection_tracking.udp_stream_timeout)}};
  });
  out["security_groups"] = sortedById(p.security_groups, [](const model::SecurityGroup& g) {
    return json{{"id", g.id},
                {"name", g.name},
                {"description", g.description},
                {"is_default", g.is_default},
                {"ingress", groupRulesJson(g.ingress)},
                {"egress", groupRulesJson(g.egress)}};
  });
  out["prefix_lists"] = sortedById(p.prefix_lists, [](const model::PrefixList& l) {
    return json{{"id", l.id},
                {"name", l.name},
                {"max_entries", l.max_entries},
                {"entries", cidrsJson(l.entries)}};
  });
  out["network_acls"] = sortedById(p.network_acls, [](const model::NetworkAcl& a) {
    json entries = json::array();
    for (const auto& e : a.entries) {
      entries.push_back({{"rule_number", e.rule_number},
                         {"egress", e.egress},
                         {"protocol", e.protocol},
                         {"allow", e.allow},
                         {"cidr", e.cidr.toString()},
                         {"port_range", optionalJson(e.port_range)},
                         {"icmp_type_code", optionalJson(e.icmp_type_code)}});
    }
    return json{{"id", a.id}, {"is_default", a.is_default}, {"entries", entries}};
  });
  out["flow_logs"] = sortedById(p.flow_logs, [](const model::FlowLog& f) {
    return json{{"id", f.id},
                {"resource_id", f.resource_id},
                {"traffic_type", static_cast<int>(f.traffic_type)},
                {"log_destination", f.log_destination},
                {"log_format", f.log_format},
                {"max_aggregation_interval", f.max_aggregation_interval},
                {"ipfix_collector", optionalJson(f.ipfix_collector)}};
  });
  out["traffic_mirror_targets"] =
      sortedById(p.traffic_mirror_targets, [](const model::TrafficMirrorTarget& t) {
        return json{{"id", t.id},
                    {"network_interface_id", optionalJson(t.network_interface_id)},
                    {"vxlan_remote_ip",
                     t.vxlan_remote_ip ? json(t.vxlan_remote_ip->toString()) : json(nullptr)},
                    {"description", t.description}};
      });
  out["traffic_mirror_filters"] =
      sortedById(p.traffic_mirror_filters, [](const model::TrafficMirrorFilter& f) {
        return json{{"id", f.id},
                    {"ingress_rules", mirrorRulesJson(f.ingress_rules)},
                    {"egress_rules", mirrorRulesJson(f.egress_rules)},
                    {"network_services", f.network_services},
                    {"description", f.description}};
      });
  out["traffic_mirror_sessions"] =
      sortedById(p.traffic_mirror_sessions, [](const model::TrafficMirrorSession& s) {
        return json{{"id", s.id},
                    {"network_interface_id", s.network_interface_id},
                    {"traffic_mirror_target_id", s.traffic_mirror_target_id},
                    {"traffic_mirror_filter_id", s.traffic_mirror_filter_id},
                    {"session_number", s.session_number},
                    {"packet_length", optionalJson(s.packet_length)},
                    {"virtual_network_id", optionalJson(s.virtual_network_id)},
                    {"description", s.description}};
      });
  out["port_mirrors"] = sortedById(p.port_mirrors, [](const model::PortMirror& m) {
    return json{{"id", m.id},
                {"network_interface_id", m.network_interface_id},
                {"output_port", m.output_port}};
  });
  return out.dump(1, ' ', false, json::error_handler_t::replace);
}

}  // namespace vpcguard::test
