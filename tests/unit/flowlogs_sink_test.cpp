// flowlogs/sink.h and reader.h: the exact AWS path and gzip text, atomic publication, errors,
// and the round trip sink -> reader with filters.

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "flowlogs/aggregator.h"
#include "flowlogs/reader.h"
#include "flowlogs/sink.h"
#include "translator/hash.h"

namespace vpcguard::flowlog {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vpcguard-flowlogs-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Independent of the reader under test: zlib's own gz* API.
std::string gunzipWithZlib(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    ADD_FAILURE() << "gzopen " << path;
    return "";
  }
  std::string out;
  std::vector<char> buf(4096);
  int n = 0;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
    out.append(buf.data(), static_cast<size_t>(n));
  }
  EXPECT_EQ(n, 0) << "gzread error";
  gzclose(f);
  return out;
}

std::vector<std::string> filesUnder(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out.push_back(fs::relative(e.path(), dir).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

LogFile sampleFile() {
  LogFile f;
  f.flow_log_id = "fl-0abc";
  f.account_id = "123456789012";
  f.region = "us-east-1";
  f.interval_start = 1620000000;  // 2021-05-03T00:00:00Z
  f.header = headerLine(*parseFormat(""));
  f.lines = {
      "2 123456789012 eni-1 10.0.1.5 10.0.2.10 49152 443 6 10 840 1620000005 1620000050 "
      "ACCEPT OK",
      "2 123456789012 eni-2 - - - - - - - 1620000000 1620000060 - NODATA"};
  return f;
}

TEST(FlowLogSink, WritesGzipTextAtTheAwsPath) {
  TempDir dir;
  FileSink sink(dir.path().string());
  const LogFile file = sampleFile();
  const std::string text = file.header + "\n" + file.lines[0] + "\n" + file.lines[1] + "\n";
  const std::string expected_rel = fmt::format(
      "AWSLogs/123456789012/vpcflowlogs/us-east-1/2021/05/03/"
      "123456789012_vpcflowlogs_us-east-1_fl-0abc_20210503T0000Z_{:08x}.log.gz",
      fnv1a(text));
  auto published = sink.publish(file);
  ASSERT_TRUE(published.has_value()) << published.error().message;
  EXPECT_EQ(*published, (dir.path() / expected_rel).string());
  // Exactly one file: no temp file left behind.
  EXPECT_EQ(filesUnder(dir.path()), std::vector<std::string>{expected_rel});
  EXPECT_EQ(gunzipWithZlib(*published), text);
}

TEST(FlowLogSink, TimeInTheNameIsTheIntervalStartInUtc) {
  LogFile f = sampleFile();
  f.interval_start = 1765015800;  // 2025-12-06T10:10:00Z
  const std::string key = objectKey(f, "x");
  EXPECT_NE(key.find("/2025/12/06/"), std::string::npos) << key;
  EXPECT_NE(key.find("_20251206T1010Z_"), std::string::npos) << key;
}

TEST(FlowLogSink, SameMinuteDifferentContentDoesNotCollide) {
  TempDir dir;
  FileSink sink(dir.path().string());
  LogFile a = sampleFile();
  LogFile b = sampleFile();
  b.lines.pop_back();
  ASSERT_TRUE(sink.publish(a).has_value());
  ASSERT_TRUE(sink.publish(b).has_value());
  EXPECT_EQ(filesUnder(dir.path()).size(), 2U);
}

TEST(FlowLogSink, NoRecordsNoFile) {
  TempDir dir;
  FileSink sink(dir.path().string());
  LogFile f = sampleFile();
  f.lines.clear();
  auto published = sink.publish(f);
  ASSERT_TRUE(published.has_value());
  EXPECT_EQ(*published, "");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(FlowLogSink, UnwritableDestinationIsAnErrorNamingThePath) {
  TempDir dir;
  // Under a regular file: fails even as root.
  const fs::path blocker = dir.path() / "not-a-dir";
  std::ofstream(blocker) << "x";
  FileSink sink((blocker / "logs").string());
  auto published = sink.publish(sampleFile());
  ASSERT_FALSE(published.has_value());
  EXPECT_NE(published.error().message.find((blocker / "logs").string()), std::string::npos)
      << published.error().message;
  EXPECT_EQ(filesUnder(dir.path()), std::vector<std::string>{"not-a-dir"});
}

TEST(FlowLogSink, MakeSink) {
  auto file = makeSink("file:///var/log/vpcguard");
  ASSERT_TRUE(file.has_value());
  auto* fs_sink = dynamic_cast<FileSink*>(file->get());
  ASSERT_NE(fs_sink, nullptr);
  EXPECT_EQ(fs_sink->dir(), "/var/log/vpcguard");
  EXPECT_FALSE(makeSink("s3://bucket/prefix").has_value());
  EXPECT_FALSE(makeSink("file://relative/dir").has_value());
}

TEST(FlowLogReader, ParseTime) {
  EXPECT_EQ(parseTime("1620000000").value_or(0), 1620000000);
  EXPECT_EQ(parseTime("2021-05-03T00:00:00Z").value_or(0), 1620000000);
  EXPECT_EQ(parseTime("2021-05-03T00:01Z").value_or(0), 1620000060);
  EXPECT_EQ(parseTime("2021-05-03").value_or(0), 1620000000);
  EXPECT_FALSE(parseTime("2021-13-03T00:00:00Z").has_value());
  EXPECT_FALSE(parseTime("yesterday").has_value());
}

TEST(FlowLogReader, FlowLogIdFromFileName) {
  EXPECT_EQ(flowLogIdFromFileName(
                "123456789012_vpcflowlogs_us-east-1_fl-0abc_20210503T0000Z_0a1b2c3d.log.gz"),
            std::optional<std::string>("fl-0abc"));
  EXPECT_EQ(flowLogIdFromFileName("other.log.gz"), std::nullopt);
}

// Aggregator -> sink -> reader, two flow logs in two formats.
class FlowLogRoundTrip : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sink = makeSink("file://" + dir_.path().string());
    ASSERT_TRUE(sink.has_value());
    std::map<std::string, InterfaceInfo> ifs;
    for (const char* id : {"eni-1", "eni-2"}) {
      ifs[id] = InterfaceInfo{id, "subnet-app", "vpc-lab", "123456789012", "us-east-1", ""};
    }
    Aggregator all("fl-all", model::FlowLogTrafficType::kAll, 60, *parseFormat(""));
    Aggregator custom("fl-custom", model::FlowLogTrafficType::kAll, 60,
                      *parseFormat("${interface-id} ${start} ${end} ${action} ${flow-direction} "
                                   "${log-status} ${vpcguard-reason}"));
    for (Aggregator* a : {&all, &custom}) {
      a->setInterfaces(ifs, kT0);
      a->add(observation("eni-1", Action::kAccept, kT0 + 5));
      a->add(observation("eni-2", Action::kReject, kT0 + 10));
      a->add(observation("eni-1", Action::kReject, kT0 + 70));
      for (const auto& batch : a->flush(kT0 + 130, 5)) {
        for (const auto& file : toLogFiles(batch, a->fields())) {
          auto p = (*sink)->publish(file);
          ASSERT_TRUE(p.has_value()) << p.error().message;
        }
      }
    }
  }

  static Observation observation(const std::string& eni, Action action, int64_t t) {
    Observation o;
    o.interface_id = eni;
    o.action = action;
    o.key = FlowKey{*IpAddress::parse("10.0.1.5"), *IpAddress::parse("10.0.2.10"), 40000, 22, 6};
    o.packets = 2;
    o.bytes = 120;
    o.first_seen = t;
    o.last_seen = t + 1;
    if (action == Action::kReject) {
      o.reason = "sg-ingress-miss";
    }
    return o;
  }

  [[nodiscard]] ReadResult read(const ReadFilter& filter) const {
    auto r = readFlowLogs(dir_.path().string(), filter);
    EXPECT_TRUE(r.has_value());
    return r.value_or(ReadResult{});
  }

  static constexpr int64_t kT0 = 1620000000;
  TempDir dir_;
};

TEST_F(FlowLogRoundTrip, ReadsEveryRecordOfMixedFormats) {
  const ReadResult all = read({});
  EXPECT_TRUE(all.errors.empty());
  // Per flow log: interval 1: eni-1 OK, eni-2 OK; interval 2: eni-1 OK, eni-2 NODATA.
  ASSERT_EQ(all.records.size(), 8U);
  for (size_t i = 1; i < all.records.size(); ++i) {
    EXPECT_LE(all.records[i - 1].number("start"), all.records[i].number("start"));
  }
  size_t custom = 0;
  for (const auto& r : all.records) {
    if (r.names->size() == 7) {
      ++custom;
      EXPECT_EQ(r.values.size(), 7U);
    }
  }
  EXPECT_EQ(custom, 4U);
}

TEST_F(FlowLogRoundTrip, Filters) {
  ReadFilter by_interface;
  by_interface.interface_id = "eni-2";
  const auto eni2 = read(by_interface);
  ASSERT_EQ(eni2.records.size(), 4U);  // REJECT + NODATA, in both flow logs
  for (const auto& r : eni2.records) {
    EXPECT_EQ(r.value("interface-id"), std::optional<std::string_view>("eni-2"));
  }

  ReadFilter rejects;
  rejects.action = "REJECT";
  rejects.flow_log_id = "fl-custom";
  const auto rej = read(rejects);
  ASSERT_EQ(rej.records.size(), 2U);
  EXPECT_EQ(rej.records[0].value("vpcguard-reason"),
            std::optional<std::string_view>("sg-ingress-miss"));

  ReadFilter second_interval;
  second_interval.since = kT0 + 60;
  second_interval.until = kT0 + 119;
  const auto late = read(second_interval);
  ASSERT_EQ(late.records.size(), 4U);
  for (const auto& r : late.records) {
    EXPECT_GE(r.number("start").value_or(0), kT0 + 60);
  }
}

TEST_F(FlowLogRoundTrip, CorruptFileIsNamedAndTheOthersAreStillRead) {
  const fs::path bad = dir_.path() / "AWSLogs" / "broken.log.gz";
  std::ofstream(bad) << "this is not gzip";
  const ReadResult r = read({});
  EXPECT_EQ(r.records.size(), 8U);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_NE(r.errors[0].message.find(bad.string()), std::string::npos) << r.errors[0].message;
}

TEST(FlowLogReader, MissingDirectoryIsAnError) {
  auto r = readFlowLogs("/nonexistent/vpcguard-flowlogs", {});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("/nonexistent/vpcguard-flowlogs"), std::string::npos);
}

}  // namespace
}  // namespace vpcguard::flowlog
