// vpcguardd --metrics-listen (issue 14): the real daemon enforces configs/lab.toml on a
// userspace-datapath bridge with one namespace "VM" per interface; every scrape is parsed whole by
// python3's prometheus_client parser (a parse error fails the test). Asserts that the contract's
// families are there, that traffic an SG rule allows moves that rule's hit counter, that a config
// change is counted and timed, that vpcguard_flows matches the switch, that the dashboard in
// docs/grafana/ uses only metrics a real scrape has, and that a bad address or a busy port stops
// the start with a clear error.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/harness/assertions.h"
#include "tests/harness/ns_lab.h"
#include "tests/harness/ovs_sandbox.h"
#include "tests/harness/paths.h"
#include "tests/harness/policy_lab.h"
#include "tests/harness/process.h"
#include "tests/harness/vpcguardd.h"
#include "daemon/config_loader.h"
#include "translator/pipeline.h"

namespace vpcguard::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kBridge = "br-int";
constexpr const char* kWeb = "eni-web1";
constexpr const char* kDbIp = "10.0.2.10";

// Fetches the URL and parses it with prometheus_client; prints {"families": {name: type},
// "samples": [[name, labels, value], ...]}. Exits non-zero (with the parser's error) on a body
// the parser refuses.
constexpr const char* kScraper = R"(
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    ctype = r.headers.get("Content-Type", "")
    body = r.read().decode("utf-8")
out = {"content_type": ctype, "families": {}, "samples": []}
for fam in text_string_to_metric_families(body):
    out["families"][fam.name] = fam.type
    for s in fam.samples:
        out["samples"].append([s.name, s.labels, s.value])
print(json.dumps(out))
)";

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A TCP port on 127.0.0.1 that nobody listens on (bound once by the kernel's choice).
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    return 0;
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

struct Scrape {
  std::string content_type;
  std::map<std::string, std::string> families;  // as the parser names them (counters lose _total)
  struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
  };
  std::vector<Sample> samples;

  // Every name an expression may use: sample names, family names and counters' _total names.
  [[nodiscard]] std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& [name, type] : families) {
      out.insert(name);
      if (type == "counter") {
        out.insert(name + "_total");
      }
    }
    for (const auto& s : samples) {
      out.insert(s.name);
    }
    return out;
  }
  // Sum of the samples named `name` whose labels include `match`.
  [[nodiscard]] double sum(const std::string& name,
                           const std::map<std::string, std::string>& match = {}) const {
    double total = 0;
    for (const auto& s : samples) {
      if (s.name != name) {
        continue;
      }
      bool ok = true;
      for (const auto& [k, v] : match) {
        auto it = s.labels.find(k);
        ok = ok && it != s.labels.end() && it->second == v;
      }
      if (ok) {
        total += s.value;
      }
    }
    return total;
  }
};

class MetricsIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NsLab::unavailableReason()) {
      GTEST_SKIP() << *why;
    }
    // Debian's interpreter first: the package is python3-prometheus-client (a python3 earlier
    // on PATH, e.g. pyenv's, may not have it).
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      if (run(std::string(py) + " -c 'import prometheus_client.parser' 2>/dev/null").ok()) {
        python_ = py;
        break;
      }
    }
    // A missing parser fails (a skip could never fail on a machine without it).
    ASSERT_FALSE(python_.empty())
        << "python3's prometheus_client is missing: install the Debian package "
           "python3-prometheus-client (scripts/deps.sh does; /usr/bin/python3 is tried first)";
    VGT_ASSIGN_OR_FAIL(sandbox_, OvsSandbox::start());
    VGT_ASSIGN_OR_FAIL(lab_, NsLab::create(*sandbox_, kBridge));
    config_ = sandbox_->dir() + "/policy/policy.toml";
    std::filesystem::create_directories(sandbox_->dir() + "/policy");
    lab_toml_ = readFile(sourceDir() + "/configs/lab.toml");
    ASSERT_FALSE(lab_toml_.empty());
    writeConfig(lab_toml_);
    auto policy = config::loadPolicy(config_);
    ASSERT_TRUE(policy.has_value()) << policy.error().toError().message;
    VGT_ASSERT_OK(addPolicyVms(*lab_, *policy));
    scraper_ = sandbox_->dir() + "/scrape.py";
    std::ofstream(scraper_) << kScraper;
  }

  void TearDown() override {
    if (HasFailure() && daemon_) {
      std::cerr << daemon_->logTail(60);
    }
    daemon_.reset();
    lab_.reset();
    sandbox_.reset();
  }

  void writeConfig(const std::string& text) {
    const std::string tmp = config_ + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), config_.c_str()), 0);
  }

  void startDaemon(std::vector<std::string> extra) {
    Vpcguardd::Options o;
    o.config = config_;
    o.bridge = kBridge;
    o.datapath_type = "netdev";
    o.extra = std::move(extra);
    daemon_ = std::make_unique<Vpcguardd>(*sandbox_, o);
    VGT_ASSERT_OK(daemon_->start());
    ASSERT_TRUE(daemon_->waitSynced(30s)) << daemon_->logTail();
  }

  [[nodiscard]] Result<Scrape> scrape() const {
    auto r = run(fmt::format("{} {} http://127.0.0.1:{}/metrics", python_, scraper_, port_), 30s);
    if (!r.ok()) {
      return tl::unexpected(Error{"scrape failed: " + r.output});
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(r.output);
    } catch (const std::exception& e) {
      return tl::unexpected(Error{std::string("scrape output: ") + e.what() + ": " + r.output});
    }
    Scrape s;
    s.content_type = j["content_type"].get<std::string>();
    for (const auto& [name, type] : j["families"].items()) {
      s.families[name] = type.get<std::string>();
    }
    for (const auto& sample : j["samples"]) {
      s.samples.push_back({sample[0].get<std::string>(),
                           sample[1].get<std::map<std::string, std::string>>(),
                           sample[2].get<double>()});
    }
    return s;
  }

  // Scrapes until `done` holds (deadline `timeout`); the last scrape either way.
  template <typename Pred>
  Result<Scrape> scrapeUntil(Pred done, std::chrono::seconds timeout) const {
    const auto until = Clock::now() + timeout;
    for (;;) {
      auto s = scrape();
      if (!s || done(*s) || Clock::now() >= until) {
        return s;
      }
      std::this_thread::sleep_for(250ms);
    }
  }

  std::unique_ptr<OvsSandbox> sandbox_;
  std::unique_ptr<NsLab> lab_;
  std::unique_ptr<Vpcguardd> daemon_;
  std::string config_;
  std::string lab_toml_;
  std::string scraper_;
  std::string python_;
  int port_ = 0;
};

// sg-db's ICMP echo rule (lab.toml: ingress, icmp from 10.0.0.0/16); -1 while the scrape does
// not have it (the counters are read in the background, after a first scrape asks).
double icmpRuleHits(const Scrape& s) {
  double total = -1;
  for (const auto& x : s.samples) {
    if (x.name == "vpcguard_rule_hit_packets_total" && x.labels.count("id") != 0 &&
        x.labels.at("id") == "sg-db" && x.labels.at("direction") == "ingress" &&
        x.labels.at("rule").find("icmp") != std::string::npos) {
      total = std::max(total, 0.0) + x.value;
    }
  }
  return total;
}

TEST_F(MetricsIntegration, ScrapeHitsConfigChangeFlowsAndDashboard) {
  port_ = freePort();
  ASSERT_GT(port_, 0);
  ASSERT_NO_FATAL_FAILURE(startDaemon({"--metrics-listen", fmt::format("127.0.0.1:{}", port_)}));

  VGT_ASSIGN_OR_FAIL(auto first, scrape());
  EXPECT_NE(first.content_type.find("text/plain; version=0.0.4"), std::string::npos)
      << first.content_type;
  const auto names = first.names();
  for (const char* required :
       {"vpcguard_up", "vpcguard_build_info", "vpcguard_flows",
        "vpcguard_change_duration_seconds_bucket", "vpcguard_change_duration_seconds_count",
        "vpcguard_change_duration_seconds_sum", "vpcguard_syncs_total",
        "vpcguard_drift_repairs_total", "vpcguard_reconnects_total", "vpcguard_errors_total",
        "vpcguard_config_reloads_total", "vpcguard_switch_connected",
        "vpcguard_mirror_sessions", "vpcguard_flow_log_records_total",
        "vpcguard_flow_log_skipped_records_total",
        "vpcguard_flow_log_rate_limited_packets_total",
        "vpcguard_flow_log_reject_samples_dropped_total",
        "vpcguard_rule_hit_packets_total", "vpcguard_rule_hit_bytes_total"}) {
    EXPECT_EQ(names.count(required), 1u) << required;
  }
  EXPECT_EQ(first.sum("vpcguard_up"), 1);
  EXPECT_EQ(first.sum("vpcguard_switch_connected"), 1);
  EXPECT_EQ(first.sum("vpcguard_build_info"), 1);
  EXPECT_EQ(first.sum("vpcguard_syncs_total", {{"reason", "startup"}}), 1);
  EXPECT_EQ(first.sum("vpcguard_change_duration_seconds_count", {{"trigger", "startup"}}), 1);

  // vpcguard_flows against the switch, table by table: every flow in our tables.
  {
    std::set<int> owned;
    for (auto t : pipeline::kOwnedTables) {
      owned.insert(static_cast<int>(t));
    }
    VGT_ASSIGN_OR_FAIL(auto dump, sandbox_->dumpFlows(kBridge));
    static const std::regex kTable(R"(table=(\d+))");
    std::map<std::string, double> on_switch;
    std::istringstream in(dump);
    for (std::string line; std::getline(in, line);) {
      if (line.find("actions=") == std::string::npos) {
        continue;  // a header line
      }
      std::smatch m;
      // ovs-ofctl leaves out "table=0".
      const int table = std::regex_search(line, m, kTable) ? std::stoi(m[1]) : 0;
      if (owned.count(table) != 0) {
        on_switch[std::to_string(table)] += 1;
      }
    }
    std::map<std::string, double> scraped;
    for (const auto& x : first.samples) {
      if (x.name == "vpcguard_flows" && x.value != 0) {
        scraped[x.labels.at("table")] += x.value;
      }
    }
    EXPECT_FALSE(on_switch.empty());
    EXPECT_EQ(scraped, on_switch);
  }

  // Traffic the ICMP rule of sg-db allows moves its counter (read at most every 5 s).
  VGT_ASSIGN_OR_FAIL(auto with_hits,
                     scrapeUntil([](const Scrape& s) { return icmpRuleHits(s) >= 0; }, 20s));
  const double before = icmpRuleHits(with_hits);
  ASSERT_GE(before, 0) << "no hit counter for sg-db's ICMP rule";
  auto ping = lab_->exec(kWeb, fmt::format("ping -n -c 3 -i 0.2 -W 2 {}", kDbIp));
  ASSERT_TRUE(ping.ok()) << ping.output;
  VGT_ASSIGN_OR_FAIL(auto after, scrapeUntil([&](const Scrape& s) { return icmpRuleHits(s) > before; },
                                             20s));
  EXPECT_GT(icmpRuleHits(after), before) << "the rule's hit counter did not move";

  // A config change: counted as a reload and a sync, and timed.
  const double syncs = after.sum("vpcguard_syncs_total", {{"reason", "config"}});
  const double timed = after.sum("vpcguard_change_duration_seconds_count", {{"trigger", "config"}});
  std::string changed = lab_toml_;
  const std::string anchor = "  cidr_ipv4 = \"10.0.0.0/16\"\n\n# --- network ACLs";
  const auto at = changed.find(anchor);
  ASSERT_NE(at, std::string::npos);
  changed.insert(at + anchor.find("\n\n") + 1,
                 "\n  [[security_groups.ingress]]\n  ip_protocol = \"tcp\"\n  from_port = 6379\n"
                 "  to_port = 6379\n  cidr_ipv4 = \"10.0.0.0/16\"\n");
  writeConfig(changed);
  VGT_ASSIGN_OR_FAIL(auto reloaded, scrapeUntil([&](const Scrape& s) {
    return s.sum("vpcguard_syncs_total", {{"reason", "config"}}) > syncs;
  }, 20s));
  EXPECT_EQ(reloaded.sum("vpcguard_syncs_total", {{"reason", "config"}}), syncs + 1);
  EXPECT_EQ(reloaded.sum("vpcguard_change_duration_seconds_count", {{"trigger", "config"}}),
            timed + 1);
  EXPECT_EQ(reloaded.sum("vpcguard_config_reloads_total", {{"result", "applied"}}), 1);
  EXPECT_GT(reloaded.sum("vpcguard_change_duration_seconds_sum", {{"trigger", "config"}}), 0);
  // A config with an error: refused and counted.
  writeConfig(changed + "\n[[security_groups]]\nid = \n");
  VGT_ASSIGN_OR_FAIL(auto refused, scrapeUntil([&](const Scrape& s) {
    return s.sum("vpcguard_config_reloads_total", {{"result", "refused"}}) > 0;
  }, 20s));
  EXPECT_EQ(refused.sum("vpcguard_config_reloads_total", {{"result", "refused"}}), 1);
  EXPECT_GE(refused.sum("vpcguard_errors_total", {{"kind", "config_refused"}}), 1);

  // Drift: one of our flows deleted by hand is repaired, counted and timed.
  const double repairs = refused.sum("vpcguard_drift_repairs_total");
  const double drift_timed =
      refused.sum("vpcguard_change_duration_seconds_count", {{"trigger", "drift"}});
  VGT_ASSERT_OK(sandbox_->ofctl(fmt::format("del-flows {} table=0", kBridge)));
  VGT_ASSIGN_OR_FAIL(auto repaired, scrapeUntil([&](const Scrape& s) {
    return s.sum("vpcguard_drift_repairs_total") > repairs;
  }, 20s));
  EXPECT_EQ(repaired.sum("vpcguard_drift_repairs_total"), repairs + 1);
  EXPECT_EQ(repaired.sum("vpcguard_change_duration_seconds_count", {{"trigger", "drift"}}),
            drift_timed + 1);

  // ovs-vswitchd restarted: the OpenFlow connection is lost and opened again.
  VGT_ASSERT_OK(sandbox_->restartVswitchd());
  VGT_ASSIGN_OR_FAIL(auto reconnected, scrapeUntil([&](const Scrape& s) {
    return s.sum("vpcguard_reconnects_total", {{"connection", "openflow"}}) > 0 &&
           s.sum("vpcguard_switch_connected") == 1 &&
           s.sum("vpcguard_syncs_total", {{"reason", "reconnect"}}) > 0;
  }, 30s));
  EXPECT_EQ(reconnected.sum("vpcguard_reconnects_total", {{"connection", "openflow"}}), 1);
  EXPECT_EQ(reconnected.sum("vpcguard_switch_connected"), 1);
  EXPECT_GE(reconnected.sum("vpcguard_errors_total", {{"kind", "connection_lost"}}), 1);

  // The dashboard uses only metrics a real scrape has.
  const std::string dashboard = readFile(sourceDir() + "/docs/grafana/vpcguard-dashboard.json");
  ASSERT_FALSE(dashboard.empty());
  const auto json = nlohmann::json::parse(dashboard);
  const auto all = reconnected.names();
  size_t exprs = 0;
  static const std::regex kMetric(R"(\bvpcguard_[a-z0-9_]+)");
  for (const auto& panel : json.at("panels")) {
    if (!panel.contains("targets")) {
      continue;
    }
    for (const auto& target : panel.at("targets")) {
      const std::string expr = target.at("expr").get<std::string>();
      ++exprs;
      for (std::sregex_iterator it(expr.begin(), expr.end(), kMetric), end; it != end; ++it) {
        EXPECT_EQ(all.count(it->str()), 1u)
            << "the dashboard's panel \"" << panel.value("title", "") << "\" uses " << it->str()
            << ", which a scrape does not have";
      }
    }
  }
  EXPECT_GE(exprs, 6u);
}

// Flow-log records written are counted per flow log and action. Intervals end on wall-clock
// minutes and close a few seconds later, so this takes from seconds to about 65 s.
TEST_F(MetricsIntegration, FlowLogRecordsAreCounted) {
  const std::string out = sandbox_->dir() + "/flowlogs";
  writeConfig(lab_toml_ + fmt::format(R"(
[[flow_logs]]
id = "fl-all"
resource_id = "vpc-lab"
traffic_type = "ALL"
log_destination = "file://{}"
max_aggregation_interval = 60
)",
                                      out));
  port_ = freePort();
  ASSERT_GT(port_, 0);
  // Per-rule hit reads off (the knob for large hosts): no hit series, the rest unchanged.
  ASSERT_NO_FATAL_FAILURE(startDaemon({"--metrics-listen", fmt::format("127.0.0.1:{}", port_),
                                       "--metrics-rule-hits-interval", "0"}));
  auto ping = lab_->exec(kWeb, fmt::format("ping -n -c 3 -i 0.2 -W 2 {}", kDbIp));
  ASSERT_TRUE(ping.ok()) << ping.output;
  VGT_ASSIGN_OR_FAIL(auto s, scrapeUntil([](const Scrape& x) {
    return x.sum("vpcguard_flow_log_records_total", {{"flow_log_id", "fl-all"}, {"action", "ACCEPT"}}) > 0;
  }, 120s));
  const double accepted =
      s.sum("vpcguard_flow_log_records_total", {{"flow_log_id", "fl-all"}, {"action", "ACCEPT"}});
  EXPECT_GT(accepted, 0) << "no ACCEPT record counted";
  EXPECT_EQ(std::count_if(s.samples.begin(), s.samples.end(),
                          [](const auto& x) { return x.name == "vpcguard_rule_hit_packets_total"; }),
            0)
      << "--metrics-rule-hits-interval 0 still read per-rule hits";
  // As many records as the published files hold (the metric counts a batch once it is written).
  const double counted = s.sum("vpcguard_flow_log_records_total", {{"flow_log_id", "fl-all"}});
  auto lines = run(fmt::format(
      "find {} -type f ! -name '*.tmp' -exec zcat -f {{}} + | grep -vc '^version' || true", out));
  ASSERT_TRUE(lines.ok()) << lines.output;
  EXPECT_EQ(counted, std::stod(lines.output)) << lines.output;
}

TEST_F(MetricsIntegration, BadAddressOrBusyPortStopsTheStart) {
  const std::string vpcguardd = binaryDir() + "/daemon/vpcguardd";
  const std::string common = fmt::format(
      "{} --config {} --bridge {} --ovsdb unix:{}/db.sock --connect-timeout 5 --status-file "
      "{}/m.status.json ",
      vpcguardd, config_, kBridge, sandbox_->dir(), sandbox_->dir());
  auto bad = run(common + "--metrics-listen localhost:9733 2>&1", 30s);
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--metrics-listen"), std::string::npos) << bad.output;

  // A port somebody else listens on.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  auto busy = run(common + fmt::format("--metrics-listen 127.0.0.1:{} 2>&1", ntohs(sa.sin_port)),
                  30s);
  ::close(fd);
  EXPECT_EQ(busy.exit_code, 1) << busy.output;
  EXPECT_NE(busy.output.find("in use"), std::string::npos) << busy.output;
}

}  // namespace
}  // namespace vpcguard::test
