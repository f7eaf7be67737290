// Per-rule hit counters (explain/hits.h) from the sample policy's own translation: every flow of
// the translation becomes a FlowStats with counters made up here, and the sums per rule are
// checked against what the pipeline says a rule's flows are (docs/pipeline.md), written out
// independently of the implementation: NACL entries by table and priority, SG rules by their
// `conj_id=N` commit flows in the evaluation tables.
#include "explain/hits.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/harness/sample_policy.h"
#include "translator/pipeline.h"
#include "translator/translate.h"

namespace vpcguard::explain {
namespace {

constexpr uint16_t kGeneration = 7;
constexpr uint64_t kIgnored = 1'000'000;  // counters of flows that must not be counted

class HitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = test::samplePolicy();
    policy_.security_groups[1].ingress[0].location = {"lab.toml", 12, 3};  // sg-web ingress #1
    TranslateInput in;
    in.policy = &policy_;
    in.ofports = {{"eni-web1", 1}, {"eni-bastion", 2}, {"eni-db1", 3}};
    in.interface_index = {{"eni-web1", 1}, {"eni-bastion", 2}, {"eni-db1", 3}};
    in.generation = kGeneration;
    auto t = translate(in);
    ASSERT_TRUE(t.has_value()) << t.error().message;
    translation_ = std::move(*t);
    // Every flow: 1 packet of 100 bytes, installed 500 s ago, except the SG rules' flows outside
    // the evaluation tables (their conj_id flows in the dispatch tables count established
    // packets, which are conntrack's hits, not the rule's) and the shared clause flows.
    for (const auto& f : translation_.flows) {
      FlowStats s{f, 1, 100, 500};
      const uint64_t kind = (f.cookie >> 24) & 0xff;
      const bool eval = f.table == pipeline::kSgEgressEval || f.table == pipeline::kSgIngressEval;
      if ((kind == static_cast<uint64_t>(pipeline::CookieKind::kSgRule) && !eval) ||
          kind == static_cast<uint64_t>(pipeline::CookieKind::kSgClause)) {
        s.n_packets = kIgnored;
        s.n_bytes = kIgnored;
      }
      flows_.push_back(s);
    }
  }

  // The conjunction id the translation gave a rule ("sg-web ingress #0": 0-based).
  uint32_t conjId(const std::string& name) const {
    for (const auto& [id, n] : translation_.rule_names) {
      if (n == name) {
        return id;
      }
    }
    ADD_FAILURE() << "no conjunction for " << name;
    return 0;
  }
  // How many commit flows a rule has: `conj_id=N` in the evaluation table of its direction.
  size_t commitFlows(uint32_t id, bool egress) const {
    const std::string needle = "conj_id=" + std::to_string(id);
    size_t n = 0;
    for (const auto& f : translation_.flows) {
      const auto pos = f.match.find(needle);
      const size_t end = pos + needle.size();
      if (f.table == (egress ? pipeline::kSgEgressEval : pipeline::kSgIngressEval) &&
          pos != std::string::npos && (end == f.match.size() || f.match[end] == ',')) {
        ++n;
      }
    }
    return n;
  }
  static const RuleHits* find(const std::vector<RuleHits>& hits, const std::string& id,
                              bool egress, int index) {
    for (const auto& h : hits) {
      if (h.object_id == id && h.egress == egress && h.index == index) {
        return &h;
      }
    }
    return nullptr;
  }
  // Flows of NACL `nacl_index` (1-based position) in one direction at one priority.
  template <typename F>
  void forNaclFlows(uint32_t nacl_index, bool egress, uint16_t priority, F&& f) {
    for (auto& s : flows_) {
      if (s.flow.table == (egress ? pipeline::kNaclOut : pipeline::kNaclIn) &&
          s.flow.priority == priority &&
          s.flow.cookie == pipeline::makeCookie(kGeneration, pipeline::CookieKind::kNacl,
                                                nacl_index)) {
        f(s);
      }
    }
  }

  model::Policy policy_;
  Translation translation_;
  std::vector<FlowStats> flows_;
};

constexpr uint16_t prio(int rule_number) {
  return static_cast<uint16_t>(pipeline::kNaclBasePriority - rule_number);
}
constexpr int kStar = static_cast<int>(pipeline::kNaclStarRule);

TEST_F(HitsTest, ListsEveryRuleInConfigOrder) {
  const auto hits = ruleHits(policy_, translation_, flows_);
  std::vector<std::string> got;
  for (const auto& h : hits) {
    got.push_back(h.rule);
  }
  const std::vector<std::string> want = {
      "sg-default ingress #1: all from sg-default",
      "sg-default egress #1: all to 0.0.0.0/0",
      "sg-default egress #2: all to ::/0",
      "sg-web ingress #1: tcp 80 from 0.0.0.0/0",
      "sg-web ingress #2: tcp 443 from 0.0.0.0/0",
      "sg-web ingress #3: tcp 80 from ::/0",
      "sg-web ingress #4: tcp 22 from sg-bastion",
      "sg-web egress #1: all to 0.0.0.0/0",
      "sg-web egress #2: all to ::/0",
      "sg-bastion ingress #1: tcp 22 from 0.0.0.0/0",
      "sg-bastion egress #1: all to 0.0.0.0/0",
      "sg-bastion egress #2: all to ::/0",
      "sg-db ingress #1: tcp 5432 from sg-web",
      "sg-db ingress #2: tcp 22 from sg-bastion",
      "sg-db ingress #3: icmp from 10.0.0.0/16",
      "sg-db egress #1: all to 0.0.0.0/0",
      "sg-db egress #2: all to ::/0",
      "acl-default outbound rule 100: allow all to 0.0.0.0/0",
      "acl-default outbound rule 101: allow all to ::/0",
      "acl-default outbound rule *: deny all",
      "acl-default inbound rule 100: allow all from 0.0.0.0/0",
      "acl-default inbound rule 101: allow all from ::/0",
      "acl-default inbound rule *: deny all",
      "acl-private outbound rule 100: allow tcp 1024-65535 to 10.0.1.0/24",
      "acl-private outbound rule 110: allow icmp to 10.0.0.0/16",
      "acl-private outbound rule *: deny all",
      "acl-private inbound rule 100: allow tcp 5432 from 10.0.1.0/24",
      "acl-private inbound rule 110: allow tcp 22 from 10.0.1.0/24",
      "acl-private inbound rule 120: allow tcp 1024-65535 from 0.0.0.0/0",
      "acl-private inbound rule 130: allow icmp from 10.0.0.0/16",
      "acl-private inbound rule *: deny all",
  };
  EXPECT_EQ(got, want);
  const RuleHits* web = find(hits, "sg-web", false, 0);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->kind, RuleHits::Kind::kSgRule);
  EXPECT_EQ(web->location.file, "lab.toml");
  const RuleHits* star = find(hits, "acl-private", false, kStar);
  ASSERT_NE(star, nullptr);
  EXPECT_EQ(star->kind, RuleHits::Kind::kNaclEntry);
}

TEST_F(HitsTest, SumsTheFlowsOfOneNaclEntry) {
  // acl-private (NACL index 2) inbound rule 120, tcp 1024-65535: one flow per port mask (6).
  int k = 0;
  forNaclFlows(2, false, prio(120), [&](FlowStats& s) {
    ++k;
    s.n_packets = static_cast<uint64_t>(k);
    s.n_bytes = static_cast<uint64_t>(10 * k);
    s.duration_sec = static_cast<uint32_t>(600 - 10 * k);
  });
  ASSERT_EQ(k, 6);
  const auto hits = ruleHits(policy_, translation_, flows_);
  const RuleHits* h = find(hits, "acl-private", false, 120);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->flows, 6U);
  EXPECT_EQ(h->packets, 21U);  // 1 + 2 + ... + 6
  EXPECT_EQ(h->bytes, 210U);
  EXPECT_EQ(h->since_seconds, 540U);  // the youngest flow
  // The same rule number in the other direction is another entry.
  const RuleHits* out = find(hits, "acl-private", true, 100);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->flows, 6U);
  EXPECT_EQ(out->packets, 6U);
}

TEST_F(HitsTest, StarRulesPerDirection) {
  forNaclFlows(2, true, pipeline::kNaclStarPriority, [](FlowStats& s) {
    s.n_packets = 7;
    s.n_bytes = 700;
  });
  forNaclFlows(2, false, pipeline::kNaclStarPriority, [](FlowStats& s) {
    s.n_packets = 9;
    s.n_bytes = 900;
  });
  const auto hits = ruleHits(policy_, translation_, flows_);
  const RuleHits* out = find(hits, "acl-private", true, kStar);
  const RuleHits* in = find(hits, "acl-private", false, kStar);
  ASSERT_NE(out, nullptr);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(out->flows, 1U);
  EXPECT_EQ(out->packets, 7U);
  EXPECT_EQ(in->flows, 1U);
  EXPECT_EQ(in->packets, 9U);
  EXPECT_EQ(in->bytes, 900U);
  EXPECT_EQ(in->since_seconds, 500U);
}

TEST_F(HitsTest, SgRulesCountTheirCommitFlowsOnly) {
  const auto hits = ruleHits(policy_, translation_, flows_);
  struct Want {
    std::string group;
    bool egress;
    int index;
  };
  const std::vector<Want> rules = {{"sg-web", false, 0},    {"sg-web", false, 3},
                                   {"sg-web", true, 0},     {"sg-bastion", false, 0},
                                   {"sg-db", false, 0},     {"sg-db", false, 2},
                                   {"sg-db", true, 1}};
  for (const auto& w : rules) {
    const std::string name = w.group + (w.egress ? " egress #" : " ingress #") +
                             std::to_string(w.index);
    const size_t commits = commitFlows(conjId(name), w.egress);
    const RuleHits* h = find(hits, w.group, w.egress, w.index);
    ASSERT_NE(h, nullptr) << name;
    EXPECT_GE(commits, 1U) << name;
    EXPECT_EQ(h->flows, commits) << name;
    EXPECT_EQ(h->packets, commits) << name;  // 1 each; dispatch and clause flows not counted
    EXPECT_EQ(h->bytes, 100 * commits) << name;
    EXPECT_EQ(h->since_seconds, 500U) << name;
  }
}

TEST_F(HitsTest, RulesWithoutFlowsHaveZeroFlows) {
  // acl-default inbound 101 not on the switch (say, a dump taken mid-change).
  std::erase_if(flows_, [](const FlowStats& s) {
    return s.flow.table == pipeline::kNaclIn && s.flow.priority == prio(101) &&
           s.flow.cookie == pipeline::makeCookie(kGeneration, pipeline::CookieKind::kNacl, 1);
  });
  const auto hits = ruleHits(policy_, translation_, flows_);
  // sg-default has no member: the translation made nothing for its rules.
  for (const RuleHits* h : {find(hits, "sg-default", false, 0), find(hits, "sg-default", true, 1),
                            find(hits, "acl-default", false, 101)}) {
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->flows, 0U) << h->rule;
    EXPECT_EQ(h->packets, 0U) << h->rule;
    EXPECT_EQ(h->bytes, 0U) << h->rule;
    EXPECT_EQ(h->since_seconds, 0U) << h->rule;
  }
}

TEST_F(HitsTest, IgnoresGenerationAndForeignFlows) {
  // A flow adopted from an earlier start (older generation) counts; a flow that is not ours
  // (no magic in its cookie) does not, even at the entry's table and priority.
  FlowStats adopted;
  adopted.flow = {pipeline::kNaclOut, prio(100),
                  pipeline::makeCookie(3, pipeline::CookieKind::kNacl, 1), "reg6=1,ip", "drop"};
  adopted.n_packets = 40;
  adopted.n_bytes = 4000;
  adopted.duration_sec = 20;
  FlowStats foreign = adopted;
  foreign.flow.cookie = 0x1234;
  foreign.n_packets = kIgnored;
  flows_.push_back(adopted);
  flows_.push_back(foreign);
  const auto hits = ruleHits(policy_, translation_, flows_);
  const RuleHits* h = find(hits, "acl-default", true, 100);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->flows, 2U);
  EXPECT_EQ(h->packets, 41U);
  EXPECT_EQ(h->bytes, 4100U);
  EXPECT_EQ(h->since_seconds, 20U);
}

TEST_F(HitsTest, TextTable) {
  std::erase_if(flows_, [](const FlowStats& s) {  // acl-private inbound 120: not installed
    return s.flow.table == pipeline::kNaclIn && s.flow.priority == prio(120);
  });
  auto hits = ruleHits(policy_, translation_, flows_);
  hits[0].flows = 1;  // pretend: shows its age
  hits[0].since_seconds = 3 * 86400 + 4 * 3600;
  hits[1].flows = 1;
  hits[1].since_seconds = 2 * 3600 + 5 * 60;
  const std::string text = renderHitsText(hits);
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), hits.size() + 1);
  EXPECT_EQ(lines[0].rfind("OBJECT", 0), 0U) << lines[0];
  for (const char* column : {"DIRECTION", "RULE", "PACKETS", "BYTES", "FLOWS", "SINCE"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_NE(lines[1].find("3d04h"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("2h05m"), std::string::npos) << lines[2];
  // Columns line up: every row has its PACKETS column end where the header's does.
  const size_t packets_end = lines[0].find("PACKETS") + std::string("PACKETS").size();
  for (size_t i = 0; i < hits.size(); ++i) {
    const std::string packets = std::to_string(hits[i].packets);
    EXPECT_EQ(lines[i + 1].substr(packets_end - packets.size(), packets.size()), packets)
        << lines[i + 1];
    EXPECT_EQ(lines[i + 1].rfind(hits[i].object_id, 0), 0U) << lines[i + 1];
  }
  // An inbound entry with no flow: "-" for its age; the rule's match ends the line.
  const std::string& private120 = lines[lines.size() - 3];
  EXPECT_NE(private120.find(" inbound "), std::string::npos) << private120;
  EXPECT_NE(private120.find(" 120 "), std::string::npos) << private120;
  EXPECT_NE(private120.find(" - "), std::string::npos) << private120;
  EXPECT_TRUE(private120.ends_with("allow tcp 1024-65535 from 0.0.0.0/0")) << private120;
  EXPECT_NE(lines.back().find(" * "), std::string::npos) << lines.back();
  EXPECT_NE(lines[4].find(" #1 "), std::string::npos) << lines[4];  // sg-web ingress #1
}

TEST_F(HitsTest, Json) {
  const auto hits = ruleHits(policy_, translation_, flows_);
  const auto j = nlohmann::json::parse(renderHitsJson(hits));
  ASSERT_TRUE(j.contains("rules"));
  ASSERT_EQ(j["rules"].size(), hits.size());
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto& r = j["rules"][i];
    const auto& h = hits[i];
    const bool sg = h.kind == RuleHits::Kind::kSgRule;
    EXPECT_EQ(r["kind"], sg ? "sg-rule" : "nacl-entry");
    EXPECT_EQ(r["id"], h.object_id);
    EXPECT_EQ(r["direction"],
              sg ? (h.egress ? "egress" : "ingress") : (h.egress ? "outbound" : "inbound"));
    EXPECT_EQ(r[sg ? "index" : "rule_number"], h.index);
    EXPECT_FALSE(r.contains(sg ? "rule_number" : "index"));
    EXPECT_EQ(r["rule"], h.rule);
    EXPECT_EQ(r["packets"], h.packets);
    EXPECT_EQ(r["bytes"], h.bytes);
    EXPECT_EQ(r["flows"], h.flows);
    EXPECT_EQ(r["since_seconds"], h.since_seconds);
  }
  EXPECT_EQ(j["rules"][3]["location"], "lab.toml:12:3");  // sg-web ingress #1
  EXPECT_TRUE(j["rules"][0]["location"].is_null());
  EXPECT_EQ(j["rules"].back()["rule_number"], 32767);  // `*`, AWS's number for it
}

// A minimal reader of the Prometheus text format: `name{k="v",...} value` samples, with the
// label escapes of the format (\\, \", \n) undone.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  uint64_t value = 0;
};
std::optional<Sample> parseSample(const std::string& line) {
  Sample s;
  size_t i = line.find('{');
  if (i == std::string::npos) {
    return std::nullopt;
  }
  s.name = line.substr(0, i);
  ++i;
  while (i < line.size() && line[i] != '}') {
    const size_t eq = line.find("=\"", i);
    if (eq == std::string::npos) {
      return std::nullopt;
    }
    const std::string key = line.substr(i, eq - i);
    std::string value;
    for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        const char c = line[++i];
        value += c == 'n' ? '\n' : c;
      } else {
        value += line[i];
      }
    }
    if (i >= line.size()) {
      return std::nullopt;
    }
    s.labels[key] = value;
    ++i;  // closing quote
    if (i < line.size() && line[i] == ',') {
      ++i;
    }
  }
  if (i + 2 > line.size() || line[i + 1] != ' ') {
    return std::nullopt;
  }
  s.value = std::stoull(line.substr(i + 2));
  return s;
}

void checkPrometheus(const std::vector<RuleHits>& hits) {
  const std::string text = renderHitsPrometheus(hits);
  std::istringstream in(text);
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::vector<Sample> samples;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string rest = line.substr(7);
      help[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      type[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
    } else {
      auto s = parseSample(line);
      ASSERT_TRUE(s.has_value()) << "not a sample: " << line;
      samples.push_back(*s);
    }
  }
  const std::vector<std::string> metrics = {"vpcguard_rule_hit_packets_total",
                                            "vpcguard_rule_hit_bytes_total"};
  for (const auto& m : metrics) {
    EXPECT_EQ(type[m], "counter") << m;
    EXPECT_FALSE(help[m].empty()) << m;
  }
  ASSERT_EQ(samples.size(), 2 * hits.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& h = hits[i % hits.size()];
    const bool bytes = i >= hits.size();
    const auto& s = samples[i];
    const bool sg = h.kind == RuleHits::Kind::kSgRule;
    EXPECT_EQ(s.name, metrics[bytes ? 1 : 0]);
    const std::map<std::string, std::string> labels = {
        {"kind", sg ? "sg-rule" : "nacl-entry"},
        {"id", h.object_id},
        {"direction", sg ? (h.egress ? "egress" : "ingress") : (h.egress ? "outbound" : "inbound")},
        {"rule", h.rule}};
    EXPECT_EQ(s.labels, labels);
    EXPECT_EQ(s.value, bytes ? h.bytes : h.packets) << h.rule;
  }
}

TEST_F(HitsTest, Prometheus) {
  forNaclFlows(2, false, prio(120), [](FlowStats& s) { s.n_packets = 5; });
  checkPrometheus(ruleHits(policy_, translation_, flows_));
}

TEST(HitsRender, PrometheusEscapesLabelValues) {
  RuleHits h;
  h.object_id = "sg-\"odd\"";
  h.rule = "a \\ b\nc \"d\"";
  h.packets = 3;
  h.bytes = 18446744073709551615ULL;
  const std::string text = renderHitsPrometheus({h});
  EXPECT_NE(text.find(R"(id="sg-\"odd\"")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(rule="a \\ b\nc \"d\"")"), std::string::npos) << text;
  checkPrometheus({h});
}

TEST(HitsRender, EmptyPolicy) {
  EXPECT_EQ(nlohmann::json::parse(renderHitsJson({})), nlohmann::json::parse(R"({"rules": []})"));
  EXPECT_EQ(renderHitsText({}).find('\n'), renderHitsText({}).size() - 1);  // header only
  checkPrometheus({});
}

}  // namespace
}  // namespace vpcguard::explain
