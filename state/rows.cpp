// Policy <-> rows of vpcguard.ovsschema (docs/state.md has the schema table by table).
//
// Design:
//  - Top-level objects (subnets, interfaces, groups, ...) are root rows found by their `id`
//    column (an index: the server refuses duplicates). Rules and entries are child rows with a
//    `position` column, strongly referenced from their parent, so the parent's row plus its
//    children is one object and deleting the parent garbage-collects them.
//  - Ordered lists of scalars (a VPC's CIDR blocks, an interface's addresses, whose first is the
//    primary) are maps position -> value: OVSDB sets are unordered, maps keep their keys sorted.
//    Optional pairs (port ranges, ICMP type/code, connection tracking timeouts, quotas) are maps
//    with named keys, so absent is an empty map, not a magic -1.
//  - changeOperations() compares model objects, not OVSDB JSON: the replica's rows are decoded
//    and compared field by field with the desired objects (ignoring SourceLocation), so the
//    server's canonical forms (a one-element set written as its atom, sorted sets and maps) never
//    make an unchanged object look changed. Only differing objects are encoded; a changed object
//    keeps the child rows that are identical at the same position (an appended rule inserts one
//    row), the others are inserted anew and the old ones are garbage-collected by the server.
//  - Comparing decoded objects costs as much as reading the whole policy (every row decoded), so
//    every top-level row also stores a `digest` of its object's content (FNV-1a 64 over every
//    field, children included, computed from the model without allocating). An object whose
//    digest equals its row's is unchanged and is not decoded; a row without a digest (written
//    by hand, by an older version) or with another one is decoded and compared field by field.
//    The digest is a change detector, not a security check: a collision would at worst leave one
//    object's row as it was.
//  - Decoding never throws: a RowReader records the first malformed column (table, uuid,
//    column) and hands back neutral values, and the caller checks it once per row.

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "state/store.h"

namespace vpcguard::state {
namespace {

using model::Policy;

constexpr const char* kVpcTable = "VPC";
constexpr const char* kSubnetTable = "Subnet";
constexpr const char* kInterfaceTable = "Network_Interface";
constexpr const char* kGroupTable = "Security_Group";
constexpr const char* kGroupRuleTable = "Security_Group_Rule";
constexpr const char* kPrefixListTable = "Prefix_List";
constexpr const char* kNaclTable = "Network_Acl";
constexpr const char* kNaclEntryTable = "Network_Acl_Entry";
constexpr const char* kFlowLogTable = "Flow_Log";
constexpr const char* kMirrorTargetTable = "Traffic_Mirror_Target";
constexpr const char* kMirrorFilterTable = "Traffic_Mirror_Filter";
constexpr const char* kMirrorFilterRuleTable = "Traffic_Mirror_Filter_Rule";
constexpr const char* kMirrorSessionTable = "Traffic_Mirror_Session";
constexpr const char* kPortMirrorTable = "Port_Mirror";
constexpr const char* kAuditTable = "Audit";

// Tables holding top-level policy objects (besides VPC): a database without a VPC row but with
// rows here is malformed, not empty.
constexpr const char* kObjectTables[] = {
    kSubnetTable,       kInterfaceTable,    kGroupTable,         kPrefixListTable,
    kNaclTable,         kFlowLogTable,      kMirrorTargetTable,  kMirrorFilterTable,
    kMirrorSessionTable, kPortMirrorTable};

struct QuotaField {
  const char* name;
  int model::Quotas::*member;
};
constexpr QuotaField kQuotaFields[] = {
    {"rules_per_security_group", &model::Quotas::rules_per_security_group},
    {"security_groups_per_interface", &model::Quotas::security_groups_per_interface},
    {"rules_per_interface", &model::Quotas::rules_per_interface},
    {"rules_per_network_acl", &model::Quotas::rules_per_network_acl},
    {"network_acls_per_vpc", &model::Quotas::network_acls_per_vpc},
    {"security_groups_per_vpc", &model::Quotas::security_groups_per_vpc},
    {"prefix_list_max_entries", &model::Quotas::prefix_list_max_entries},
    {"traffic_mirror_sessions_per_interface",
     &model::Quotas::traffic_mirror_sessions_per_interface},
    {"traffic_mirror_filter_rules", &model::Quotas::traffic_mirror_filter_rules},
};

struct TimeoutField {
  const char* name;
  std::optional<int> model::ConnectionTracking::*member;
};
constexpr TimeoutField kTimeoutFields[] = {
    {"tcp_established_timeout", &model::ConnectionTracking::tcp_established_timeout},
    {"udp_timeout", &model::ConnectionTracking::udp_timeout},
    {"udp_stream_timeout", &model::ConnectionTracking::udp_stream_timeout},
};

const std::map<std::string, Json>* rowsOf(const Replica& replica, const char* table) {
  auto it = replica.find(table);
  return it == replica.end() ? nullptr : &it->second;
}

model::SourceLocation rowLocation(const char* table, const std::string& id) {
  return model::SourceLocation{std::string("db:") + table + "/" + id, 0, 0};
}

// ---------------------------------------------------------------------------------------------
// Equality of model objects, ignoring SourceLocation (the database does not keep it).

bool same(const model::SecurityGroupRule& a, const model::SecurityGroupRule& b) {
  return a.ip_protocol == b.ip_protocol && a.ports == b.ports && a.icmp == b.icmp &&
         a.peer == b.peer && a.description == b.description;
}
bool same(const model::NetworkAclEntry& a, const model::NetworkAclEntry& b) {
  return a.rule_number == b.rule_number && a.egress == b.egress && a.protocol == b.protocol &&
         a.allow == b.allow && a.cidr == b.cidr && a.port_range == b.port_range &&
         a.icmp_type_code == b.icmp_type_code;
}
bool same(const model::TrafficMirrorFilterRule& a, const model::TrafficMirrorFilterRule& b) {
  return a.rule_number == b.rule_number && a.accept == b.accept && a.protocol == b.protocol &&
         a.source_cidr_block == b.source_cidr_block &&
         a.destination_cidr_block == b.destination_cidr_block &&
         a.source_port_range == b.source_port_range &&
         a.destination_port_range == b.destination_port_range && a.description == b.description;
}
template <typename T>
bool sameAll(const std::vector<T>& a, const std::vector<T>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const T& x, const T& y) { return same(x, y); });
}
bool same(const model::SecurityGroup& a, const model::SecurityGroup& b) {
  return a.id == b.id && a.name == b.name && a.description == b.description &&
         a.is_default == b.is_default && sameAll(a.ingress, b.ingress) &&
         sameAll(a.egress, b.egress);
}
bool same(const model::NetworkAcl& a, const model::NetworkAcl& b) {
  return a.id == b.id && a.is_default == b.is_default && sameAll(a.entries, b.entries);
}
bool same(const model::TrafficMirrorFilter& a, const model::TrafficMirrorFilter& b) {
  return a.id == b.id && a.network_services == b.network_services &&
         a.description == b.description && sameAll(a.ingress_rules, b.ingress_rules) &&
         sameAll(a.egress_rules, b.egress_rules);
}
bool same(const model::Subnet& a, const model::Subnet& b) {
  return a.id == b.id && a.cidr_block == b.cidr_block && a.ipv6_cidr_block == b.ipv6_cidr_block &&
         a.network_acl_id == b.network_acl_id;
}
bool same(const model::NetworkInterface& a, const model::NetworkInterface& b) {
  return a.id == b.id && a.subnet_id == b.subnet_id && a.mac_address == b.mac_address &&
         a.private_ip_addresses == b.private_ip_addresses && a.ipv6_addresses == b.ipv6_addresses &&
         a.security_group_ids == b.security_group_ids &&
         a.source_dest_check == b.source_dest_check &&
         a.connection_tracking.tcp_established_timeout ==
             b.connection_tracking.tcp_established_timeout &&
         a.connection_tracking.udp_timeout == b.connection_tracking.udp_timeout &&
         a.connection_tracking.udp_stream_timeout == b.connection_tracking.udp_stream_timeout;
}
bool same(const model::PrefixList& a, const model::PrefixList& b) {
  return a.id == b.id && a.name == b.name && a.max_entries == b.max_entries &&
         a.entries == b.entries;
}
bool same(const model::FlowLog& a, const model::FlowLog& b) {
  return a.id == b.id && a.resource_id == b.resource_id && a.traffic_type == b.traffic_type &&
         a.log_destination == b.log_destination && a.log_format == b.log_format &&
         a.max_aggregation_interval == b.max_aggregation_interval &&
         a.ipfix_collector == b.ipfix_collector;
}
bool same(const model::TrafficMirrorTarget& a, const model::TrafficMirrorTarget& b) {
  return a.id == b.id && a.network_interface_id == b.network_interface_id &&
         a.vxlan_remote_ip == b.vxlan_remote_ip && a.description == b.description;
}
bool same(const model::TrafficMirrorSession& a, const model::TrafficMirrorSession& b) {
  return a.id == b.id && a.network_interface_id == b.network_interface_id &&
         a.traffic_mirror_target_id == b.traffic_mirror_target_id &&
         a.traffic_mirror_filter_id == b.traffic_mirror_filter_id &&
         a.session_number == b.session_number && a.packet_length == b.packet_length &&
         a.virtual_network_id == b.virtual_network_id && a.description == b.description;
}
bool same(const model::PortMirror& a, const model::PortMirror& b) {
  return a.id == b.id && a.network_interface_id == b.network_interface_id &&
         a.output_port == b.output_port;
}
bool sameQuotas(const model::Quotas& a, const model::Quotas& b) {
  return std::all_of(std::begin(kQuotaFields), std::end(kQuotaFields),
                     [&](const QuotaField& f) { return a.*f.member == b.*f.member; });
}
bool sameVpc(const model::Vpc& a, const model::Vpc& b) {
  return a.id == b.id && a.account_id == b.account_id && a.region == b.region &&
         a.cidr_blocks == b.cidr_blocks && a.ipv6_cidr_blocks == b.ipv6_cidr_blocks &&
         a.strict_revocation == b.strict_revocation;
}

// ---------------------------------------------------------------------------------------------
// Content digests: FNV-1a 64 over every field that is stored (not SourceLocation), each value
// framed (lengths, presence flags, list sizes) so that different contents do not run together.

class Digest {
 public:
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      hash_ = (hash_ ^ p[i]) * 0x100000001b3ULL;
    }
  }
  void add(int64_t v) { bytes(&v, sizeof v); }
  void add(bool v) { add(static_cast<int64_t>(v ? 1 : 0)); }
  void add(std::string_view v) {
    add(static_cast<int64_t>(v.size()));
    bytes(v.data(), v.size());
  }
  void add(const IpAddress& a) {
    add(static_cast<int64_t>(a.family));
    bytes(a.bytes.data(), a.bytes.size());
  }
  void add(const Cidr& c) {
    add(c.address);
    add(static_cast<int64_t>(c.prefix_len));
  }
  void add(const model::PortRange& r) {
    add(static_cast<int64_t>(r.from));
    add(static_cast<int64_t>(r.to));
  }
  void add(const model::IcmpTypeCode& r) {
    add(static_cast<int64_t>(r.type));
    add(static_cast<int64_t>(r.code));
  }
  template <typename T>
  void add(const std::optional<T>& v) {
    add(v.has_value());
    if (v) {
      add(*v);
    }
  }
  void add(const std::optional<int>& v) {
    add(v.has_value());
    if (v) {
      add(static_cast<int64_t>(*v));
    }
  }
  template <typename T>
  void add(const std::vector<T>& items) {
    add(static_cast<int64_t>(items.size()));
    for (const auto& item : items) {
      add(item);
    }
  }
  void add(const model::SecurityGroupRule& r) {
    add(static_cast<int64_t>(r.ip_protocol));
    add(r.ports);
    add(r.icmp);
    add(static_cast<int64_t>(r.peer.index()));
    if (const auto* c = std::get_if<Cidr>(&r.peer)) {
      add(*c);
    } else if (const auto* g = std::get_if<model::GroupRef>(&r.peer)) {
      add(g->group_id);
    } else if (const auto* l = std::get_if<model::PrefixListRef>(&r.peer)) {
      add(l->prefix_list_id);
    }
    add(r.description);
  }
  void add(const model::NetworkAclEntry& e) {
    add(static_cast<int64_t>(e.rule_number));
    add(e.egress);
    add(static_cast<int64_t>(e.protocol));
    add(e.allow);
    add(e.cidr);
    add(e.port_range);
    add(e.icmp_type_code);
  }
  void add(const model::TrafficMirrorFilterRule& r) {
    add(static_cast<int64_t>(r.rule_number));
    add(r.accept);
    add(static_cast<int64_t>(r.protocol));
    add(r.source_cidr_block);
    add(r.destination_cidr_block);
    add(r.source_port_range);
    add(r.destination_port_range);
    add(r.description);
  }
  void add(const std::string& v) { add(std::string_view(v)); }

  [[nodiscard]] std::string hex() const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 0; i < 16; ++i) {
      out[static_cast<size_t>(15 - i)] = kHex[(hash_ >> (4 * i)) & 0xF];
    }
    return out;
  }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

std::string digestOf(const model::Subnet& s) {
  Digest d;
  d.add(s.id);
  d.add(s.cidr_block);
  d.add(s.ipv6_cidr_block);
  d.add(s.network_acl_id);
  return d.hex();
}
std::string digestOf(const model::NetworkInterface& n) {
  Digest d;
  d.add(n.id);
  d.add(n.subnet_id);
  d.add(n.mac_address);
  d.add(n.private_ip_addresses);
  d.add(n.ipv6_addresses);
  d.add(n.security_group_ids);
  d.add(n.source_dest_check);
  d.add(n.connection_tracking.tcp_established_timeout);
  d.add(n.connection_tracking.udp_timeout);
  d.add(n.connection_tracking.udp_stream_timeout);
  return d.hex();
}
std::string digestOf(const model::SecurityGroup& g) {
  Digest d;
  d.add(g.id);
  d.add(g.name);
  d.add(g.description);
  d.add(g.ingress);
  d.add(g.egress);
  d.add(g.is_default);
  return d.hex();
}
std::string digestOf(const model::PrefixList& p) {
  Digest d;
  d.add(p.id);
  d.add(p.name);
  d.add(static_cast<int64_t>(p.max_entries));
  d.add(p.entries);
  return d.hex();
}
std::string digestOf(const model::NetworkAcl& a) {
  Digest d;
  d.add(a.id);
  d.add(a.entries);
  d.add(a.is_default);
  return d.hex();
}
std::string digestOf(const model::FlowLog& f) {
  Digest d;
  d.add(f.id);
  d.add(f.resource_id);
  d.add(static_cast<int64_t>(f.traffic_type));
  d.add(f.log_destination);
  d.add(f.log_format);
  d.add(static_cast<int64_t>(f.max_aggregation_interval));
  d.add(f.ipfix_collector);
  return d.hex();
}
std::string digestOf(const model::TrafficMirrorTarget& t) {
  Digest d;
  d.add(t.id);
  d.add(t.network_interface_id);
  d.add(t.vxlan_remote_ip);
  d.add(t.description);
  return d.hex();
}
std::string digestOf(const model::TrafficMirrorFilter& f) {
  Digest d;
  d.add(f.id);
  d.add(f.ingress_rules);
  d.add(f.egress_rules);
  d.add(f.network_services);
  d.add(f.description);
  return d.hex();
}
std::string digestOf(const model::TrafficMirrorSession& s) {
  Digest d;
  d.add(s.id);
  d.add(s.network_interface_id);
  d.add(s.traffic_mirror_target_id);
  d.add(s.traffic_mirror_filter_id);
  d.add(static_cast<int64_t>(s.session_number));
  d.add(s.packet_length);
  d.add(s.virtual_network_id.has_value());
  if (s.virtual_network_id) {
    d.add(static_cast<int64_t>(*s.virtual_network_id));
  }
  d.add(s.description);
  return d.hex();
}
std::string digestOf(const model::PortMirror& m) {
  Digest d;
  d.add(m.id);
  d.add(m.network_interface_id);
  d.add(m.output_port);
  return d.hex();
}

// ---------------------------------------------------------------------------------------------
// Encoding: model -> OVSDB JSON values (RFC 7047 5.1).

Json emptySet() { return Json::array({"set", Json::array()}); }
Json emptyMap() { return Json::array({"map", Json::array()}); }

Json optionalValue(const std::optional<std::string>& value) {
  return value ? Json(*value) : emptySet();
}

// An ordered list as a map position -> value.
template <typename T, typename ToString>
Json listColumn(const std::vector<T>& values, ToString to_string) {
  Json pairs = Json::array();
  for (size_t i = 0; i < values.size(); ++i) {
    pairs.push_back(Json::array({static_cast<int64_t>(i), to_string(values[i])}));
  }
  return Json::array({"map", std::move(pairs)});
}
Json stringList(const std::vector<std::string>& values) {
  return listColumn(values, [](const std::string& s) { return s; });
}
Json cidrList(const std::vector<Cidr>& values) {
  return listColumn(values, [](const Cidr& c) { return c.toString(); });
}
Json addressList(const std::vector<IpAddress>& values) {
  return listColumn(values, [](const IpAddress& a) { return a.toString(); });
}

Json rangeColumn(const std::optional<model::PortRange>& range) {
  if (!range) {
    return emptyMap();
  }
  return Json::array(
      {"map", Json::array({Json::array({"from", range->from}), Json::array({"to", range->to})})});
}
Json icmpColumn(const std::optional<model::IcmpTypeCode>& icmp) {
  if (!icmp) {
    return emptyMap();
  }
  return Json::array(
      {"map", Json::array({Json::array({"code", icmp->code}), Json::array({"type", icmp->type})})});
}

Json uuidAtom(const std::string& uuid) { return Json::array({"uuid", uuid}); }
Json whereUuid(const std::string& uuid) {
  return Json::array({Json::array({"_uuid", "==", uuidAtom(uuid)})});
}

// Collects the operations of one transaction; child rows get uuid-names unique in it.
class OpsBuilder {
 public:
  Json& ops() { return ops_; }

  // Inserts a child row before its parent's operation and returns the reference to it.
  Json insertChild(const char* table, Json row) {
    std::string name = "row" + std::to_string(next_name_++);
    ops_.push_back(Json{{"op", "insert"}, {"table", table}, {"row", std::move(row)},
                        {"uuid-name", name}});
    return Json::array({"named-uuid", std::move(name)});
  }
  void insert(const char* table, Json row) {
    ops_.push_back(Json{{"op", "insert"}, {"table", table}, {"row", std::move(row)}});
  }
  void update(const char* table, const std::string& uuid, Json row) {
    ops_.push_back(
        Json{{"op", "update"}, {"table", table}, {"where", whereUuid(uuid)}, {"row", std::move(row)}});
  }
  void remove(const char* table, const std::string& uuid) {
    ops_.push_back(Json{{"op", "delete"}, {"table", table}, {"where", whereUuid(uuid)}});
  }

 private:
  Json ops_ = Json::array();
  int next_name_ = 0;
};

// A child row as found in the replica: its uuid and stored position (parallel to the decoded
// children, which are sorted by position).
struct ChildRow {
  std::string uuid;
  int64_t position = 0;
};
// One list per child column of the parent (e.g. ingress, egress).
using ChildRows = std::vector<std::vector<ChildRow>>;

// References to the rows of `desired` children: an existing row where the current child at the
// same position is identical, a new row otherwise.
template <typename T, typename RowFn>
Json childColumn(OpsBuilder& builder, const char* table, const std::vector<T>& desired,
                 const std::vector<T>* current, const std::vector<ChildRow>* current_rows,
                 RowFn row_fn) {
  Json refs = Json::array();
  for (size_t i = 0; i < desired.size(); ++i) {
    const bool reuse = current != nullptr && current_rows != nullptr && i < current->size() &&
                       i < current_rows->size() &&
                       (*current_rows)[i].position == static_cast<int64_t>(i) &&
                       same((*current)[i], desired[i]);
    refs.push_back(reuse ? uuidAtom((*current_rows)[i].uuid)
                         : builder.insertChild(table, row_fn(desired[i], static_cast<int64_t>(i))));
  }
  return Json::array({"set", std::move(refs)});
}

Json vpcRow(const model::Vpc& vpc, const model::Quotas& quotas) {
  Json quota_pairs = Json::array();
  for (const auto& f : kQuotaFields) {
    quota_pairs.push_back(Json::array({f.name, quotas.*f.member}));
  }
  return Json{{"id", vpc.id},
              {"account_id", vpc.account_id},
              {"region", vpc.region},
              {"cidr_blocks", cidrList(vpc.cidr_blocks)},
              {"ipv6_cidr_blocks", cidrList(vpc.ipv6_cidr_blocks)},
              {"strict_revocation", vpc.strict_revocation},
              {"quotas", Json::array({"map", std::move(quota_pairs)})}};
}

Json subnetRow(const model::Subnet& s) {
  return Json{{"id", s.id},
              {"cidr_block", s.cidr_block.toString()},
              {"ipv6_cidr_block", s.ipv6_cidr_block
                                      ? Json(s.ipv6_cidr_block->toString())
                                      : emptySet()},
              {"network_acl_id", s.network_acl_id}};
}

Json interfaceRow(const model::NetworkInterface& n) {
  Json timeouts = Json::array();
  for (const auto& f : kTimeoutFields) {
    if (const auto& v = n.connection_tracking.*f.member) {
      timeouts.push_back(Json::array({f.name, *v}));
    }
  }
  return Json{{"id", n.id},
              {"subnet_id", n.subnet_id},
              {"mac_address", n.mac_address},
              {"private_ip_addresses", addressList(n.private_ip_addresses)},
              {"ipv6_addresses", addressList(n.ipv6_addresses)},
              {"security_group_ids", stringList(n.security_group_ids)},
              {"source_dest_check", n.source_dest_check},
              {"connection_tracking", Json::array({"map", std::move(timeouts)})}};
}

Json groupRuleRow(const model::SecurityGroupRule& r, int64_t position) {
  Json row{{"position", position},
           {"ip_protocol", r.ip_protocol},
           {"ports", rangeColumn(r.ports)},
           {"icmp", icmpColumn(r.icmp)},
           {"cidr_ipv4", emptySet()},
           {"cidr_ipv6", emptySet()},
           {"referenced_group_id", emptySet()},
           {"prefix_list_id", emptySet()},
           {"description", r.description}};
  if (const auto* c = std::get_if<Cidr>(&r.peer)) {
    row[c->family() == IpFamily::kV4 ? "cidr_ipv4" : "cidr_ipv6"] = c->toString();
  } else if (const auto* g = std::get_if<model::GroupRef>(&r.peer)) {
    row["referenced_group_id"] = g->group_id;
  } else if (const auto* p = std::get_if<model::PrefixListRef>(&r.peer)) {
    row["prefix_list_id"] = p->prefix_list_id;
  }
  return row;
}

Json groupRow(const model::SecurityGroup& g, const model::SecurityGroup* current,
              const ChildRows* rows, OpsBuilder& builder) {
  const bool have = current != nullptr && rows != nullptr && rows->size() == 2;
  return Json{{"id", g.id},
              {"name", g.name},
              {"description", g.description},
              {"ingress", childColumn(builder, kGroupRuleTable, g.ingress,
                                      have ? &current->ingress : nullptr,
                                      have ? &(*rows)[0] : nullptr, groupRuleRow)},
              {"egress", childColumn(builder, kGroupRuleTable, g.egress,
                                     have ? &current->egress : nullptr,
                                     have ? &(*rows)[1] : nullptr, groupRuleRow)},
              {"is_default", g.is_default}};
}

Json prefixListRow(const model::PrefixList& p) {
  return Json{{"id", p.id},
              {"name", p.name},
              {"max_entries", p.max_entries},
              {"entries", cidrList(p.entries)}};
}

Json naclEntryRow(const model::NetworkAclEntry& e, int64_t position) {
  const bool v4 = e.cidr.family() == IpFamily::kV4;
  return Json{{"position", position},
              {"rule_number", e.rule_number},
              {"egress", e.egress},
              {"protocol", e.protocol},
              {"rule_action", e.allow ? "allow" : "deny"},
              {"cidr_block", v4 ? Json(e.cidr.toString()) : emptySet()},
              {"ipv6_cidr_block", v4 ? emptySet() : Json(e.cidr.toString())},
              {"port_range", rangeColumn(e.port_range)},
              {"icmp_type_code", icmpColumn(e.icmp_type_code)}};
}

Json naclRow(const model::NetworkAcl& a, const model::NetworkAcl* current, const ChildRows* rows,
             OpsBuilder& builder) {
  const bool have = current != nullptr && rows != nullptr && rows->size() == 1;
  return Json{{"id", a.id},
              {"entries", childColumn(builder, kNaclEntryTable, a.entries,
                                      have ? &current->entries : nullptr,
                                      have ? &(*rows)[0] : nullptr, naclEntryRow)},
              {"is_default", a.is_default}};
}

const char* trafficTypeName(model::FlowLogTrafficType t) {
  switch (t) {
    case model::FlowLogTrafficType::kAccept:
      return "ACCEPT";
    case model::FlowLogTrafficType::kReject:
      return "REJECT";
    case model::FlowLogTrafficType::kAll:
      break;
  }
  return "ALL";
}

Json flowLogRow(const model::FlowLog& f) {
  return Json{{"id", f.id},
              {"resource_id", f.resource_id},
              {"traffic_type", trafficTypeName(f.traffic_type)},
              {"log_destination", f.log_destination},
              {"log_format", f.log_format},
              {"max_aggregation_interval", f.max_aggregation_interval},
              {"ipfix_collector", optionalValue(f.ipfix_collector)}};
}

Json mirrorTargetRow(const model::TrafficMirrorTarget& t) {
  return Json{{"id", t.id},
              {"network_interface_id", optionalValue(t.network_interface_id)},
              {"vxlan_remote_ip", t.vxlan_remote_ip ? Json(t.vxlan_remote_ip->toString())
                                                    : emptySet()},
              {"description", t.description}};
}

Json mirrorFilterRuleRow(const model::TrafficMirrorFilterRule& r, int64_t position) {
  return Json{{"position", position},
              {"rule_number", r.rule_number},
              {"rule_action", r.accept ? "accept" : "reject"},
              {"protocol", r.protocol},
              {"source_cidr_block", r.source_cidr_block.toString()},
              {"destination_cidr_block", r.destination_cidr_block.toString()},
              {"source_port_range", rangeColumn(r.source_port_range)},
              {"destination_port_range", rangeColumn(r.destination_port_range)},
              {"description", r.description}};
}

Json mirrorFilterRow(const model::TrafficMirrorFilter& f, const model::TrafficMirrorFilter* current,
                     const ChildRows* rows, OpsBuilder& builder) {
  const bool have = current != nullptr && rows != nullptr && rows->size() == 2;
  return Json{{"id", f.id},
              {"ingress_rules", childColumn(builder, kMirrorFilterRuleTable, f.ingress_rules,
                                            have ? &current->ingress_rules : nullptr,
                                            have ? &(*rows)[0] : nullptr, mirrorFilterRuleRow)},
              {"egress_rules", childColumn(builder, kMirrorFilterRuleTable, f.egress_rules,
                                           have ? &current->egress_rules : nullptr,
                                           have ? &(*rows)[1] : nullptr, mirrorFilterRuleRow)},
              {"network_services", stringList(f.network_services)},
              {"description", f.description}};
}

Json mirrorSessionRow(const model::TrafficMirrorSession& s) {
  return Json{{"id", s.id},
              {"network_interface_id", s.network_interface_id},
              {"traffic_mirror_target_id", s.traffic_mirror_target_id},
              {"traffic_mirror_filter_id", s.traffic_mirror_filter_id},
              {"session_number", s.session_number},
              {"packet_length", s.packet_length ? Json(*s.packet_length) : emptySet()},
              {"virtual_network_id",
               s.virtual_network_id ? Json(static_cast<int64_t>(*s.virtual_network_id))
                                    : emptySet()},
              {"description", s.description}};
}

Json portMirrorRow(const model::PortMirror& m) {
  return Json{{"id", m.id},
              {"network_interface_id", m.network_interface_id},
              {"output_port", m.output_port}};
}

// ---------------------------------------------------------------------------------------------
// Decoding: OVSDB JSON values -> model.

// The elements of an OVSDB set value: an atom stands for a one-element set.
bool setElements(const Json& value, std::vector<const Json*>& out) {
  out.clear();
  if (value.is_array() && value.size() == 2 && value[0] == "set") {
    if (!value[1].is_array()) {
      return false;
    }
    for (const auto& e : value[1]) {
      out.push_back(&e);
    }
    return true;
  }
  if (value.is_array() && !(value.size() == 2 && value[0] == "uuid")) {
    return false;  // a map, or garbage
  }
  out.push_back(&value);
  return true;
}

class RowReader {
 public:
  RowReader(const char* table, const std::string& uuid, const Json& row, std::string& error)
      : table_(table), uuid_(uuid), row_(row), error_(error) {}

  [[nodiscard]] bool ok() const { return error_.empty(); }
  [[nodiscard]] std::string& errorSink() { return error_; }
  [[nodiscard]] const char* table() const { return table_; }

  void fail(const char* column, const std::string& what) {
    if (error_.empty()) {
      error_ = std::string(table_) + " row " + uuid_ + ": column " + column + ": " + what;
    }
  }

  const Json* column(const char* name) {
    if (!row_.is_object()) {
      fail(name, "row is not a JSON object");
      return nullptr;
    }
    auto it = row_.find(name);
    if (it == row_.end()) {
      fail(name, "missing");
      return nullptr;
    }
    return &*it;
  }

  std::string string(const char* name) {
    const Json* v = column(name);
    if (v == nullptr) {
      return {};
    }
    if (!v->is_string()) {
      fail(name, "expected a string, got " + shortDump(*v));
      return {};
    }
    return v->get<std::string>();
  }

  int64_t integer(const char* name) {
    const Json* v = column(name);
    if (v == nullptr) {
      return 0;
    }
    return integerOf(name, *v);
  }

  int smallInteger(const char* name) { return narrow(name, integer(name)); }

  bool boolean(const char* name) {
    const Json* v = column(name);
    if (v == nullptr) {
      return false;
    }
    if (!v->is_boolean()) {
      fail(name, "expected a boolean, got " + shortDump(*v));
      return false;
    }
    return v->get<bool>();
  }

  std::optional<std::string> optionalString(const char* name) {
    const Json* e = optionalAtom(name);
    if (e == nullptr) {
      return std::nullopt;
    }
    if (!e->is_string()) {
      fail(name, "expected a string, got " + shortDump(*e));
      return std::nullopt;
    }
    return e->get<std::string>();
  }

  std::optional<int64_t> optionalInteger(const char* name) {
    const Json* e = optionalAtom(name);
    if (e == nullptr) {
      return std::nullopt;
    }
    return integerOf(name, *e);
  }

  // A map position -> string, as the list of values in position order.
  std::vector<std::string> list(const char* name) {
    std::vector<std::pair<int64_t, std::string>> items;
    for (const auto& [k, v] : mapPairs(name)) {
      if (!k->is_number_integer() || !v->is_string()) {
        fail(name, "expected a map integer -> string");
        return {};
      }
      items.emplace_back(k->get<int64_t>(), v->get<std::string>());
    }
    std::sort(items.begin(), items.end());
    std::vector<std::string> out;
    out.reserve(items.size());
    for (auto& item : items) {
      out.push_back(std::move(item.second));
    }
    return out;
  }

  // A map name -> integer.
  std::map<std::string, int64_t> keyedIntegers(const char* name) {
    std::map<std::string, int64_t> out;
    for (const auto& [k, v] : mapPairs(name)) {
      if (!k->is_string() || !v->is_number_integer()) {
        fail(name, "expected a map string -> integer");
        return {};
      }
      out[k->get<std::string>()] = v->get<int64_t>();
    }
    return out;
  }

  std::optional<model::PortRange> range(const char* name) {
    auto m = keyedIntegers(name);
    if (m.empty()) {
      return std::nullopt;
    }
    if (m.size() != 2 || !m.contains("from") || !m.contains("to")) {
      fail(name, "expected keys \"from\" and \"to\"");
      return std::nullopt;
    }
    return model::PortRange{narrow(name, m["from"]), narrow(name, m["to"])};
  }

  std::optional<model::IcmpTypeCode> icmp(const char* name) {
    auto m = keyedIntegers(name);
    if (m.empty()) {
      return std::nullopt;
    }
    if (m.size() != 2 || !m.contains("type") || !m.contains("code")) {
      fail(name, "expected keys \"type\" and \"code\"");
      return std::nullopt;
    }
    return model::IcmpTypeCode{narrow(name, m["type"]), narrow(name, m["code"])};
  }

  // A set of strings.
  std::vector<std::string> strings(const char* name) {
    std::vector<std::string> out;
    const Json* v = column(name);
    std::vector<const Json*> elements;
    if (v == nullptr) {
      return out;
    }
    if (!setElements(*v, elements)) {
      fail(name, "expected a set, got " + shortDump(*v));
      return out;
    }
    for (const Json* e : elements) {
      if (!e->is_string()) {
        fail(name, "expected a set of strings");
        return {};
      }
      out.push_back(e->get<std::string>());
    }
    return out;
  }

  // A set of references: the uuids.
  std::vector<std::string> uuids(const char* name) {
    std::vector<std::string> out;
    const Json* v = column(name);
    std::vector<const Json*> elements;
    if (v == nullptr) {
      return out;
    }
    if (!setElements(*v, elements)) {
      fail(name, "expected a set of uuids, got " + shortDump(*v));
      return out;
    }
    for (const Json* e : elements) {
      if (!(e->is_array() && e->size() == 2 && (*e)[0] == "uuid" && (*e)[1].is_string())) {
        fail(name, "expected a set of uuids, got " + shortDump(*e));
        return {};
      }
      out.push_back((*e)[1].get<std::string>());
    }
    return out;
  }

  Cidr cidrFrom(const char* name, const std::string& text) {
    auto c = Cidr::parse(text);
    if (!c) {
      fail(name, "'" + text + "': " + c.error().message);
      return Cidr{};
    }
    return *c;
  }
  Cidr cidr(const char* name) { return cidrFrom(name, string(name)); }
  std::vector<Cidr> cidrs(const char* name) {
    std::vector<Cidr> out;
    for (const auto& text : list(name)) {
      out.push_back(cidrFrom(name, text));
    }
    return out;
  }
  IpAddress addressFrom(const char* name, const std::string& text) {
    auto a = IpAddress::parse(text);
    if (!a) {
      fail(name, "'" + text + "': " + a.error().message);
      return IpAddress{};
    }
    return *a;
  }
  std::vector<IpAddress> addresses(const char* name) {
    std::vector<IpAddress> out;
    for (const auto& text : list(name)) {
      out.push_back(addressFrom(name, text));
    }
    return out;
  }

  int narrow(const char* name, int64_t v) {
    if (v < INT_MIN || v > INT_MAX) {
      fail(name, "integer " + std::to_string(v) + " out of range");
      return 0;
    }
    return static_cast<int>(v);
  }

 private:
  static std::string shortDump(const Json& v) {
    std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
  }

  int64_t integerOf(const char* name, const Json& v) {
    if (!v.is_number_integer()) {
      fail(name, "expected an integer, got " + shortDump(v));
      return 0;
    }
    return v.get<int64_t>();
  }

  // The element of a set of at most one, nullptr when empty (or malformed: then failed).
  const Json* optionalAtom(const char* name) {
    const Json* v = column(name);
    if (v == nullptr) {
      return nullptr;
    }
    std::vector<const Json*> elements;
    if (!setElements(*v, elements) || elements.size() > 1) {
      fail(name, "expected an optional value, got " + shortDump(*v));
      return nullptr;
    }
    return elements.empty() ? nullptr : elements[0];
  }

  std::vector<std::pair<const Json*, const Json*>> mapPairs(const char* name) {
    std::vector<std::pair<const Json*, const Json*>> out;
    const Json* v = column(name);
    if (v == nullptr) {
      return out;
    }
    if (!(v->is_array() && v->size() == 2 && (*v)[0] == "map" && (*v)[1].is_array())) {
      fail(name, "expected a map, got " + shortDump(*v));
      return out;
    }
    for (const auto& pair : (*v)[1]) {
      if (!(pair.is_array() && pair.size() == 2)) {
        fail(name, "expected [key, value] pairs");
        return {};
      }
      out.emplace_back(&pair[0], &pair[1]);
    }
    return out;
  }

  const char* table_;
  const std::string& uuid_;
  const Json& row_;
  std::string& error_;
};

// Decodes the child rows a parent's `column` references, in position order (ties by uuid, so
// the order is deterministic even for rows no writer of ours made). `rows` receives the
// children's uuids and stored positions in the same order.
template <typename T, typename DecodeFn>
std::vector<T> readChildren(RowReader& parent, const char* column, const char* child_table,
                            const Replica& replica, std::vector<ChildRow>* rows,
                            DecodeFn decode_child) {
  const std::vector<std::string> uuids = parent.uuids(column);
  const auto* table = rowsOf(replica, child_table);
  struct Item {
    int64_t position;
    const std::string* uuid;
    T value;
  };
  std::vector<Item> items;
  items.reserve(uuids.size());
  for (const auto& uuid : uuids) {
    auto it = table == nullptr ? std::map<std::string, Json>::const_iterator{}
                               : table->find(uuid);
    if (table == nullptr || it == table->end()) {
      parent.fail(column, std::string("references a missing ") + child_table + " row " + uuid);
      return {};
    }
    RowReader child(child_table, it->first, it->second, parent.errorSink());
    const int64_t position = child.integer("position");
    T value = decode_child(child);
    if (!child.ok()) {
      return {};
    }
    items.push_back(Item{position, &it->first, std::move(value)});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.position != b.position ? a.position < b.position : *a.uuid < *b.uuid;
  });
  std::vector<T> out;
  out.reserve(items.size());
  for (auto& item : items) {
    if (rows != nullptr) {
      rows->push_back(ChildRow{*item.uuid, item.position});
    }
    out.push_back(std::move(item.value));
  }
  return out;
}

model::SecurityGroupRule decodeGroupRule(RowReader& r, const model::SourceLocation& location) {
  model::SecurityGroupRule rule;
  rule.ip_protocol = r.smallInteger("ip_protocol");
  rule.ports = r.range("ports");
  rule.icmp = r.icmp("icmp");
  auto v4 = r.optionalString("cidr_ipv4");
  auto v6 = r.optionalString("cidr_ipv6");
  auto group = r.optionalString("referenced_group_id");
  auto prefix_list = r.optionalString("prefix_list_id");
  const int peers = int(v4.has_value()) + int(v6.has_value()) + int(group.has_value()) +
                    int(prefix_list.has_value());
  if (peers != 1 && r.ok()) {
    r.fail("cidr_ipv4", "expected exactly one of cidr_ipv4, cidr_ipv6, referenced_group_id, "
                        "prefix_list_id");
  }
  if (v4) {
    rule.peer = r.cidrFrom("cidr_ipv4", *v4);
  } else if (v6) {
    rule.peer = r.cidrFrom("cidr_ipv6", *v6);
  } else if (group) {
    rule.peer = model::GroupRef{*group};
  } else if (prefix_list) {
    rule.peer = model::PrefixListRef{*prefix_list};
  }
  rule.description = r.string("description");
  rule.location = location;
  return rule;
}

model::SecurityGroup decodeGroup(RowReader& r, const Replica& replica, ChildRows* rows) {
  model::SecurityGroup g;
  g.id = r.string("id");
  g.location = rowLocation(kGroupTable, g.id);
  g.name = r.string("name");
  g.description = r.string("description");
  g.is_default = r.boolean("is_default");
  if (rows != nullptr) {
    rows->assign(2, {});
  }
  auto decode = [&](RowReader& c) { return decodeGroupRule(c, g.location); };
  g.ingress = readChildren<model::SecurityGroupRule>(r, "ingress", kGroupRuleTable, replica,
                                                     rows ? &(*rows)[0] : nullptr, decode);
  g.egress = readChildren<model::SecurityGroupRule>(r, "egress", kGroupRuleTable, replica,
                                                    rows ? &(*rows)[1] : nullptr, decode);
  return g;
}

model::NetworkAclEntry decodeNaclEntry(RowReader& r, const model::SourceLocation& location) {
  model::NetworkAclEntry e;
  e.rule_number = r.smallInteger("rule_number");
  e.egress = r.boolean("egress");
  e.protocol = r.smallInteger("protocol");
  const std::string action = r.string("rule_action");
  if (action != "allow" && action != "deny" && r.ok()) {
    r.fail("rule_action", "expected \"allow\" or \"deny\", got \"" + action + "\"");
  }
  e.allow = action == "allow";
  auto v4 = r.optionalString("cidr_block");
  auto v6 = r.optionalString("ipv6_cidr_block");
  if (v4.has_value() == v6.has_value() && r.ok()) {
    r.fail("cidr_block", "expected exactly one of cidr_block, ipv6_cidr_block");
  } else if (v4) {
    e.cidr = r.cidrFrom("cidr_block", *v4);
  } else if (v6) {
    e.cidr = r.cidrFrom("ipv6_cidr_block", *v6);
  }
  e.port_range = r.range("port_range");
  e.icmp_type_code = r.icmp("icmp_type_code");
  e.location = location;
  return e;
}

model::NetworkAcl decodeNacl(RowReader& r, const Replica& replica, ChildRows* rows) {
  model::NetworkAcl a;
  a.id = r.string("id");
  a.location = rowLocation(kNaclTable, a.id);
  a.is_default = r.boolean("is_default");
  if (rows != nullptr) {
    rows->assign(1, {});
  }
  a.entries = readChildren<model::NetworkAclEntry>(
      r, "entries", kNaclEntryTable, replica, rows ? &(*rows)[0] : nullptr,
      [&](RowReader& c) { return decodeNaclEntry(c, a.location); });
  return a;
}

model::TrafficMirrorFilterRule decodeMirrorFilterRule(RowReader& r,
                                                      const model::SourceLocation& location) {
  model::TrafficMirrorFilterRule rule;
  rule.rule_number = r.smallInteger("rule_number");
  const std::string action = r.string("rule_action");
  if (action != "accept" && action != "reject" && r.ok()) {
    r.fail("rule_action", "expected \"accept\" or \"reject\", got \"" + action + "\"");
  }
  rule.accept = action == "accept";
  rule.protocol = r.smallInteger("protocol");
  rule.source_cidr_block = r.cidr("source_cidr_block");
  rule.destination_cidr_block = r.cidr("destination_cidr_block");
  rule.source_port_range = r.range("source_port_range");
  rule.destination_port_range = r.range("destination_port_range");
  rule.description = r.string("description");
  rule.location = location;
  return rule;
}

model::TrafficMirrorFilter decodeMirrorFilter(RowReader& r, const Replica& replica,
                                              ChildRows* rows) {
  model::TrafficMirrorFilter f;
  f.id = r.string("id");
  f.location = rowLocation(kMirrorFilterTable, f.id);
  f.network_services = r.list("network_services");
  f.description = r.string("description");
  if (rows != nullptr) {
    rows->assign(2, {});
  }
  auto decode = [&](RowReader& c) { return decodeMirrorFilterRule(c, f.location); };
  f.ingress_rules = readChildren<model::TrafficMirrorFilterRule>(
      r, "ingress_rules", kMirrorFilterRuleTable, replica, rows ? &(*rows)[0] : nullptr, decode);
  f.egress_rules = readChildren<model::TrafficMirrorFilterRule>(
      r, "egress_rules", kMirrorFilterRuleTable, replica, rows ? &(*rows)[1] : nullptr, decode);
  return f;
}

model::Subnet decodeSubnet(RowReader& r, const Replica& /*replica*/, ChildRows* /*rows*/) {
  model::Subnet s;
  s.id = r.string("id");
  s.location = rowLocation(kSubnetTable, s.id);
  s.cidr_block = r.cidr("cidr_block");
  if (auto v6 = r.optionalString("ipv6_cidr_block")) {
    s.ipv6_cidr_block = r.cidrFrom("ipv6_cidr_block", *v6);
  }
  s.network_acl_id = r.string("network_acl_id");
  return s;
}

model::NetworkInterface decodeInterface(RowReader& r, const Replica& /*replica*/,
                                        ChildRows* /*rows*/) {
  model::NetworkInterface n;
  n.id = r.string("id");
  n.location = rowLocation(kInterfaceTable, n.id);
  n.subnet_id = r.string("subnet_id");
  n.mac_address = r.string("mac_address");
  n.private_ip_addresses = r.addresses("private_ip_addresses");
  n.ipv6_addresses = r.addresses("ipv6_addresses");
  n.security_group_ids = r.list("security_group_ids");
  n.source_dest_check = r.boolean("source_dest_check");
  for (const auto& entry : r.keyedIntegers("connection_tracking")) {
    const std::string& key = entry.first;  // not a structured binding: lambdas capture it
    const int64_t value = entry.second;
    const auto* f = std::find_if(std::begin(kTimeoutFields), std::end(kTimeoutFields),
                                 [&](const TimeoutField& t) { return key == t.name; });
    if (f == std::end(kTimeoutFields)) {
      r.fail("connection_tracking", "unknown key \"" + key + "\"");
      break;
    }
    n.connection_tracking.*f->member = r.narrow("connection_tracking", value);
  }
  return n;
}

model::PrefixList decodePrefixList(RowReader& r, const Replica& /*replica*/, ChildRows* /*rows*/) {
  model::PrefixList p;
  p.id = r.string("id");
  p.location = rowLocation(kPrefixListTable, p.id);
  p.name = r.string("name");
  p.max_entries = r.smallInteger("max_entries");
  p.entries = r.cidrs("entries");
  return p;
}

model::FlowLog decodeFlowLog(RowReader& r, const Replica& /*replica*/, ChildRows* /*rows*/) {
  model::FlowLog f;
  f.id = r.string("id");
  f.location = rowLocation(kFlowLogTable, f.id);
  f.resource_id = r.string("resource_id");
  const std::string type = r.string("traffic_type");
  if (type == "ACCEPT") {
    f.traffic_type = model::FlowLogTrafficType::kAccept;
  } else if (type == "REJECT") {
    f.traffic_type = model::FlowLogTrafficType::kReject;
  } else if (type == "ALL") {
    f.traffic_type = model::FlowLogTrafficType::kAll;
  } else if (r.ok()) {
    r.fail("traffic_type", "expected ACCEPT, REJECT or ALL, got \"" + type + "\"");
  }
  f.log_destination = r.string("log_destination");
  f.log_format = r.string("log_format");
  f.max_aggregation_interval = r.smallInteger("max_aggregation_interval");
  f.ipfix_collector = r.optionalString("ipfix_collector");
  return f;
}

model::TrafficMirrorTarget decodeMirrorTarget(RowReader& r, const Replica& /*replica*/,
                                              ChildRows* /*rows*/) {
  model::TrafficMirrorTarget t;
  t.id = r.string("id");
  t.location = rowLocation(kMirrorTargetTable, t.id);
  t.network_interface_id = r.optionalString("network_interface_id");
  if (auto ip = r.optionalString("vxlan_remote_ip")) {
    t.vxlan_remote_ip = r.addressFrom("vxlan_remote_ip", *ip);
  }
  t.description = r.string("description");
  return t;
}

model::TrafficMirrorSession decodeMirrorSession(RowReader& r, const Replica& /*replica*/,
                                                ChildRows* /*rows*/) {
  model::TrafficMirrorSession s;
  s.id = r.string("id");
  s.location = rowLocation(kMirrorSessionTable, s.id);
  s.network_interface_id = r.string("network_interface_id");
  s.traffic_mirror_target_id = r.string("traffic_mirror_target_id");
  s.traffic_mirror_filter_id = r.string("traffic_mirror_filter_id");
  s.session_number = r.smallInteger("session_number");
  if (auto len = r.optionalInteger("packet_length")) {
    s.packet_length = r.narrow("packet_length", *len);
  }
  if (auto vni = r.optionalInteger("virtual_network_id")) {
    if (*vni < 0 || *vni > 0xFFFFFF) {
      r.fail("virtual_network_id", "out of range: " + std::to_string(*vni));
    } else {
      s.virtual_network_id = static_cast<uint32_t>(*vni);
    }
  }
  s.description = r.string("description");
  return s;
}

model::PortMirror decodePortMirror(RowReader& r, const Replica& /*replica*/, ChildRows* /*rows*/) {
  model::PortMirror m;
  m.id = r.string("id");
  m.location = rowLocation(kPortMirrorTable, m.id);
  m.network_interface_id = r.string("network_interface_id");
  m.output_port = r.string("output_port");
  return m;
}

void decodeVpc(RowReader& r, model::Vpc& vpc, model::Quotas& quotas) {
  vpc.id = r.string("id");
  vpc.location = rowLocation(kVpcTable, vpc.id);
  vpc.account_id = r.string("account_id");
  vpc.region = r.string("region");
  vpc.cidr_blocks = r.cidrs("cidr_blocks");
  vpc.ipv6_cidr_blocks = r.cidrs("ipv6_cidr_blocks");
  vpc.strict_revocation = r.boolean("strict_revocation");
  // Quotas not stored keep AWS's defaults (a schema older than a new quota).
  quotas = model::Quotas{};
  for (const auto& entry : r.keyedIntegers("quotas")) {
    const std::string& key = entry.first;  // not a structured binding: lambdas capture it
    const int64_t value = entry.second;
    const auto* f = std::find_if(std::begin(kQuotaFields), std::end(kQuotaFields),
                                 [&](const QuotaField& q) { return key == q.name; });
    if (f == std::end(kQuotaFields)) {
      r.fail("quotas", "unknown key \"" + key + "\"");
      break;
    }
    quotas.*f->member = r.narrow("quotas", value);
  }
}

// A decoded top-level object kept by PolicyDecoder: valid while its row and every child row it
// was decoded from still carry the versions they had then.
template <typename T>
struct CachedRow {
  uint64_t version = 0;
  std::vector<std::pair<std::string, uint64_t>> children;  // child uuid, its version then
  T value;
};
template <typename T>
using RowCache = std::unordered_map<std::string, CachedRow<T>>;  // by the row's uuid

// Every row of `table` decoded, sorted by id. With `versions` and `cache`, a row whose version
// and whose children's versions are those of its cached object is not decoded again, and the
// cache ends up holding the rows of `table` that are numbered, children included (emptied on an
// error).
template <typename T, typename DecodeFn>
Result<std::vector<T>> decodeTable(const Replica& replica, const char* table, DecodeFn decode,
                                   const RowVersions* versions = nullptr,
                                   RowCache<T>* cache = nullptr,
                                   PolicyDecoder::Counts* counts = nullptr) {
  std::vector<T> out;
  const auto* rows = rowsOf(replica, table);
  RowCache<T> next;
  if (rows == nullptr) {
    if (cache != nullptr) {
      cache->clear();
    }
    return out;
  }
  out.reserve(rows->size());
  const bool caching = versions != nullptr && cache != nullptr;
  if (caching) {
    next.reserve(rows->size());
  }
  std::string error;
  ChildRows child_rows;
  for (const auto& [uuid, row] : *rows) {
    const uint64_t version = caching ? versions->of(uuid) : 0;
    if (version != 0) {
      auto it = cache->find(uuid);
      if (it != cache->end() && it->second.version == version &&
          std::all_of(it->second.children.begin(), it->second.children.end(),
                      [&](const auto& child) { return versions->of(child.first) == child.second; })) {
        out.push_back(it->second.value);
        next.emplace(uuid, std::move(it->second));
        cache->erase(it);
        if (counts != nullptr) {
          ++counts->reused;
        }
        continue;
      }
    }
    RowReader reader(table, uuid, row, error);
    child_rows.clear();
    T value = decode(reader, replica, caching ? &child_rows : nullptr);
    if (!error.empty()) {
      if (cache != nullptr) {
        cache->clear();
      }
      return makeError(error);
    }
    if (version != 0) {
      CachedRow<T> cached{version, {}, value};
      bool numbered = true;
      for (const auto& column : child_rows) {
        for (const auto& child : column) {
          const uint64_t child_version = versions->of(child.uuid);
          numbered = numbered && child_version != 0;
          cached.children.emplace_back(child.uuid, child_version);
        }
      }
      if (numbered) {
        next.emplace(uuid, std::move(cached));
      }
    }
    if (counts != nullptr) {
      ++counts->decoded;
    }
    out.push_back(std::move(value));
  }
  if (cache != nullptr) {
    *cache = std::move(next);
  }
  std::sort(out.begin(), out.end(), [](const T& a, const T& b) { return a.id < b.id; });
  return out;
}

// Adds the operations that turn the rows of `table` into `desired` (compared by id, then by
// content). A row whose id is missing or duplicated cannot be matched and is deleted; a row that
// does not decode is rewritten whole.
template <typename T, typename DecodeFn, typename EncodeFn>
void diffTable(OpsBuilder& builder, const Replica& current, const char* table,
               const std::vector<T>& desired, DecodeFn decode, EncodeFn encode,
               const std::vector<T>* known = nullptr) {
  struct Existing {
    const std::string* uuid;
    const Json* row;
    bool wanted = false;
  };
  std::unordered_map<std::string_view, Existing> by_id;
  std::vector<const std::string*> unmatched;  // rows without a usable id
  if (const auto* rows = rowsOf(current, table)) {
    by_id.reserve(rows->size());
    for (const auto& [uuid, row] : *rows) {
      auto id = row.is_object() ? row.find("id") : row.end();
      if (!row.is_object() || id == row.end() || !id->is_string() ||
          !by_id.emplace(id->template get_ref<const std::string&>(), Existing{&uuid, &row}).second) {
        unmatched.push_back(&uuid);
      }
    }
  }

  // The objects `current` holds, when the caller has them decoded: one of those with the same
  // content is unchanged without computing its digest (at 100k flows the digests of every
  // object were the larger part of an API change's diff).
  std::unordered_map<std::string_view, const T*> known_by_id;
  if (known != nullptr) {
    known_by_id.reserve(known->size());
    for (const auto& obj : *known) {
      known_by_id.emplace(obj.id, &obj);
    }
  }

  std::vector<const T*> ordered;
  ordered.reserve(desired.size());
  for (const auto& obj : desired) {
    ordered.push_back(&obj);
  }
  std::sort(ordered.begin(), ordered.end(), [](const T* a, const T* b) { return a->id < b->id; });

  for (const T* obj : ordered) {
    auto it = by_id.find(obj->id);
    if (known != nullptr && it != by_id.end()) {
      if (auto k = known_by_id.find(obj->id); k != known_by_id.end() && same(*k->second, *obj)) {
        it->second.wanted = true;
        continue;
      }
    }
    std::string digest = digestOf(*obj);
    if (it == by_id.end()) {
      Json row = encode(*obj, nullptr, nullptr, builder);
      row["digest"] = std::move(digest);
      builder.insert(table, std::move(row));
      continue;
    }
    it->second.wanted = true;
    const Json& current_row = *it->second.row;
    if (auto d = current_row.find("digest");
        d != current_row.end() && d->is_string() && d->template get_ref<const std::string&>() == digest) {
      continue;
    }
    std::string error;
    RowReader reader(table, *it->second.uuid, *it->second.row, error);
    ChildRows child_rows;
    T existing = decode(reader, current, &child_rows);
    if (error.empty() && same(existing, *obj)) {
      // Same content under a missing or stale digest: only the digest is written.
      builder.update(table, *it->second.uuid, Json{{"digest", std::move(digest)}});
      continue;
    }
    Json row = encode(*obj, error.empty() ? &existing : nullptr,
                      error.empty() ? &child_rows : nullptr, builder);
    row["digest"] = std::move(digest);
    builder.update(table, *it->second.uuid, std::move(row));
  }

  // Deletions in uuid order, so the operations do not depend on hash order.
  std::vector<const std::string*> removed = unmatched;
  for (const auto& [id, existing] : by_id) {
    if (!existing.wanted) {
      removed.push_back(existing.uuid);
    }
  }
  std::sort(removed.begin(), removed.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (const std::string* uuid : removed) {
    builder.remove(table, *uuid);
  }
}

// Adapts a row function without children to diffTable's encode signature.
template <typename T>
auto plainEncoder(Json (*row_fn)(const T&)) {
  return [row_fn](const T& obj, const T* /*current*/, const ChildRows* /*rows*/,
                  OpsBuilder& /*builder*/) { return row_fn(obj); };
}

}  // namespace

uint64_t RowVersions::of(const std::string& uuid) const {
  auto it = by_uuid_.find(uuid);
  return it == by_uuid_.end() ? 0 : it->second;
}

void RowVersions::touch(const std::string& uuid) {
  static std::atomic<uint64_t> next{1};
  by_uuid_[uuid] = next.fetch_add(1, std::memory_order_relaxed);
}

void RowVersions::forget(const std::string& uuid) { by_uuid_.erase(uuid); }

void applyTableUpdates(Replica& replica, const Json& table_updates, RowVersions* versions) {
  if (!table_updates.is_object()) {
    return;
  }
  for (const auto& [table, rows] : table_updates.items()) {
    if (!rows.is_object()) {
      continue;
    }
    auto& table_rows = replica[table];
    for (const auto& [uuid, update] : rows.items()) {
      if (update.is_object() && update.contains("new") && update["new"].is_object()) {
        table_rows[uuid] = update["new"];
        if (versions != nullptr) {
          versions->touch(uuid);
        }
      } else {
        table_rows.erase(uuid);
        if (versions != nullptr) {
          versions->forget(uuid);
        }
      }
    }
  }
}

int64_t generationOf(const Replica& replica) {
  const auto* rows = rowsOf(replica, kVpcTable);
  if (rows == nullptr || rows->empty()) {
    return 0;
  }
  const Json& row = rows->begin()->second;
  if (!row.is_object()) {
    return 0;
  }
  auto it = row.find("generation");
  return it != row.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

namespace {

// The policy in `replica`, each table's rows decoded by
// decode_table(policy.<field>, table, decode function) -> Result<void>.
template <typename DecodeTable>
Result<model::Policy> decodePolicy(const Replica& replica, DecodeTable&& decode_table) {
  Policy policy;
  const auto* vpc_rows = rowsOf(replica, kVpcTable);
  if (vpc_rows == nullptr || vpc_rows->empty()) {
    for (const char* table : kObjectTables) {
      if (const auto* rows = rowsOf(replica, table); rows != nullptr && !rows->empty()) {
        return makeError(std::string("no VPC row, but ") + table + " has " +
                         std::to_string(rows->size()) + " row(s)");
      }
    }
    return policy;  // an empty database: nothing committed yet
  }
  if (vpc_rows->size() != 1) {
    return makeError("VPC: expected one row, found " + std::to_string(vpc_rows->size()));
  }
  {
    std::string error;
    RowReader reader(kVpcTable, vpc_rows->begin()->first, vpc_rows->begin()->second, error);
    decodeVpc(reader, policy.vpc, policy.quotas);
    if (!error.empty()) {
      return makeError(error);
    }
  }

#define VPCGUARD_DECODE(field, table, fn)                                \
  if (auto decoded = decode_table(policy.field, table, fn); !decoded) { \
    return tl::unexpected(decoded.error());                             \
  }
  VPCGUARD_DECODE(subnets, kSubnetTable, decodeSubnet)
  VPCGUARD_DECODE(network_interfaces, kInterfaceTable, decodeInterface)
  VPCGUARD_DECODE(security_groups, kGroupTable, decodeGroup)
  VPCGUARD_DECODE(prefix_lists, kPrefixListTable, decodePrefixList)
  VPCGUARD_DECODE(network_acls, kNaclTable, decodeNacl)
  VPCGUARD_DECODE(flow_logs, kFlowLogTable, decodeFlowLog)
  VPCGUARD_DECODE(traffic_mirror_targets, kMirrorTargetTable, decodeMirrorTarget)
  VPCGUARD_DECODE(traffic_mirror_filters, kMirrorFilterTable, decodeMirrorFilter)
  VPCGUARD_DECODE(traffic_mirror_sessions, kMirrorSessionTable, decodeMirrorSession)
  VPCGUARD_DECODE(port_mirrors, kPortMirrorTable, decodePortMirror)
#undef VPCGUARD_DECODE
  return policy;
}

// Moves a decoded table into its field of the policy.
template <typename T>
Result<void> into(std::vector<T>& field, Result<std::vector<T>> decoded) {
  if (!decoded) {
    return tl::unexpected(decoded.error());
  }
  field = std::move(*decoded);
  return {};
}

}  // namespace

Result<model::Policy> policyFromReplica(const Replica& replica) {
  return decodePolicy(replica, [&](auto& field, const char* table, auto fn) {
    using T = typename std::decay_t<decltype(field)>::value_type;
    return into(field, decodeTable<T>(replica, table, fn));
  });
}

struct PolicyDecoder::Caches {
  std::tuple<RowCache<model::Subnet>, RowCache<model::NetworkInterface>,
             RowCache<model::SecurityGroup>, RowCache<model::PrefixList>,
             RowCache<model::NetworkAcl>, RowCache<model::FlowLog>,
             RowCache<model::TrafficMirrorTarget>, RowCache<model::TrafficMirrorFilter>,
             RowCache<model::TrafficMirrorSession>, RowCache<model::PortMirror>>
      tables;
};

PolicyDecoder::PolicyDecoder() : caches_(std::make_unique<Caches>()) {}
PolicyDecoder::~PolicyDecoder() = default;

Result<model::Policy> PolicyDecoder::decode(const Replica& replica, const RowVersions& versions) {
  counts_ = {};
  auto policy = decodePolicy(replica, [&](auto& field, const char* table, auto fn) {
    using T = typename std::decay_t<decltype(field)>::value_type;
    return into(field, decodeTable<T>(replica, table, fn, &versions,
                                      &std::get<RowCache<T>>(caches_->tables), &counts_));
  });
  if (!policy) {
    // The failed table forgot its rows; the others are valid but are forgotten too, so that a
    // decoder that failed holds nothing it cannot vouch for.
    *caches_ = Caches{};
  }
  return policy;
}

model::Policy asCommitted(model::Policy policy) {
  policy.field_locations.clear();
  policy.vpc.location = rowLocation(kVpcTable, policy.vpc.id);
  const auto rows = [](auto& objects, const char* table) {
    for (auto& o : objects) {
      o.location = rowLocation(table, o.id);
    }
    std::sort(objects.begin(), objects.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
  };
  rows(policy.subnets, kSubnetTable);
  rows(policy.network_interfaces, kInterfaceTable);
  rows(policy.security_groups, kGroupTable);
  rows(policy.prefix_lists, kPrefixListTable);
  rows(policy.network_acls, kNaclTable);
  rows(policy.flow_logs, kFlowLogTable);
  rows(policy.traffic_mirror_targets, kMirrorTargetTable);
  rows(policy.traffic_mirror_filters, kMirrorFilterTable);
  rows(policy.traffic_mirror_sessions, kMirrorSessionTable);
  rows(policy.port_mirrors, kPortMirrorTable);
  const auto children = [](auto& list, const model::SourceLocation& parent) {
    for (auto& c : list) {
      c.location = parent;
    }
  };
  for (auto& g : policy.security_groups) {
    children(g.ingress, g.location);
    children(g.egress, g.location);
  }
  for (auto& a : policy.network_acls) {
    children(a.entries, a.location);
  }
  for (auto& f : policy.traffic_mirror_filters) {
    children(f.ingress_rules, f.location);
    children(f.egress_rules, f.location);
  }
  return policy;
}

Json changeOperations(const Replica& current, const model::Policy& desired,
                      const model::Policy* current_policy) {
  OpsBuilder builder;
  const int64_t generation = generationOf(current);
  const auto* vpc_rows = rowsOf(current, kVpcTable);
  if (vpc_rows == nullptr || vpc_rows->empty()) {
    // An empty database: the guard is that it is still empty (a concurrent first writer makes
    // this wait fail, as a generation guard would).
    builder.ops().push_back(Json{{"op", "wait"},
                                 {"table", kVpcTable},
                                 {"where", Json::array()},
                                 {"columns", Json::array({"generation"})},
                                 {"until", "=="},
                                 {"rows", Json::array()},
                                 {"timeout", 0}});
    Json row = vpcRow(desired.vpc, desired.quotas);
    row["generation"] = 1;
    builder.insert(kVpcTable, std::move(row));
  } else {
    const std::string& uuid = vpc_rows->begin()->first;
    builder.ops().push_back(
        Json{{"op", "wait"},
             {"table", kVpcTable},
             {"where", Json::array()},
             {"columns", Json::array({"generation"})},
             {"until", "=="},
             {"rows", Json::array({Json{{"generation", generation}}})},
             {"timeout", 0}});
    std::string error;
    RowReader reader(kVpcTable, uuid, vpc_rows->begin()->second, error);
    model::Vpc vpc;
    model::Quotas quotas;
    decodeVpc(reader, vpc, quotas);
    Json row = error.empty() && sameVpc(vpc, desired.vpc) && sameQuotas(quotas, desired.quotas)
                   ? Json::object()
                   : vpcRow(desired.vpc, desired.quotas);
    row["generation"] = generation + 1;
    builder.update(kVpcTable, uuid, std::move(row));
  }

  const model::Policy* k = current_policy;
  diffTable(builder, current, kSubnetTable, desired.subnets, decodeSubnet,
            plainEncoder(&subnetRow), k ? &k->subnets : nullptr);
  diffTable(builder, current, kInterfaceTable, desired.network_interfaces, decodeInterface,
            plainEncoder(&interfaceRow), k ? &k->network_interfaces : nullptr);
  diffTable(builder, current, kGroupTable, desired.security_groups, decodeGroup, groupRow,
            k ? &k->security_groups : nullptr);
  diffTable(builder, current, kPrefixListTable, desired.prefix_lists, decodePrefixList,
            plainEncoder(&prefixListRow), k ? &k->prefix_lists : nullptr);
  diffTable(builder, current, kNaclTable, desired.network_acls, decodeNacl, naclRow,
            k ? &k->network_acls : nullptr);
  diffTable(builder, current, kFlowLogTable, desired.flow_logs, decodeFlowLog,
            plainEncoder(&flowLogRow), k ? &k->flow_logs : nullptr);
  diffTable(builder, current, kMirrorTargetTable, desired.traffic_mirror_targets,
            decodeMirrorTarget, plainEncoder(&mirrorTargetRow),
            k ? &k->traffic_mirror_targets : nullptr);
  diffTable(builder, current, kMirrorFilterTable, desired.traffic_mirror_filters,
            decodeMirrorFilter, mirrorFilterRow, k ? &k->traffic_mirror_filters : nullptr);
  diffTable(builder, current, kMirrorSessionTable, desired.traffic_mirror_sessions,
            decodeMirrorSession, plainEncoder(&mirrorSessionRow),
            k ? &k->traffic_mirror_sessions : nullptr);
  diffTable(builder, current, kPortMirrorTable, desired.port_mirrors, decodePortMirror,
            plainEncoder(&portMirrorRow), k ? &k->port_mirrors : nullptr);
  return std::move(builder.ops());
}

Json auditInsertOperation(const AuditRecord& record) {
  return Json{{"op", "insert"},
              {"table", kAuditTable},
              {"row",
               {{"sequence", record.sequence},
                {"event_time", record.event_time},
                {"principal", record.principal},
                {"source", record.source},
                {"action", record.action},
                {"request_parameters", record.request_parameters},
                {"result", record.result},
                {"error_code", record.error_code},
                {"error_message", record.error_message},
                {"generation", record.generation}}}};
}

std::vector<AuditRecord> auditRecords(const Replica& replica) {
  std::vector<AuditRecord> out;
  const auto* rows = rowsOf(replica, kAuditTable);
  if (rows == nullptr) {
    return out;
  }
  out.reserve(rows->size());
  for (const auto& [uuid, row] : *rows) {
    // A malformed audit row still shows what it holds (missing columns read as empty): the log
    // is for people, and dropping a record would hide a request.
    std::string error;
    RowReader r(kAuditTable, uuid, row, error);
    AuditRecord a;
    a.sequence = r.integer("sequence");
    a.event_time = r.string("event_time");
    a.principal = r.string("principal");
    a.source = r.string("source");
    a.action = r.string("action");
    a.request_parameters = r.string("request_parameters");
    a.result = r.string("result");
    a.error_code = r.string("error_code");
    a.error_message = r.string("error_message");
    a.generation = r.integer("generation");
    out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(), [](const AuditRecord& a, const AuditRecord& b) {
    return a.sequence < b.sequence;
  });
  return out;
}

}  // namespace vpcguard::state
