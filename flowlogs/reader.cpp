#include "flowlogs/reader.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <tuple>

#include <fmt/format.h>

namespace vpcguard::flowlog {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> splitFields(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
      ++i;
    }
    if (i >= line.size()) {
      break;
    }
    const size_t j = line.find_first_of(" \t", i);
    const size_t end = j == std::string_view::npos ? line.size() : j;
    out.emplace_back(line.substr(i, end - i));
    i = end;
  }
  return out;
}

template <typename T>
std::optional<T> parseNumber(std::string_view text) {
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

bool keep(const ReadRecord& r, const ReadFilter& f) {
  if (f.interface_id &&
      r.value("interface-id") != std::optional<std::string_view>(*f.interface_id)) {
    return false;
  }
  if (f.action && r.value("action") != std::optional<std::string_view>(*f.action)) {
    return false;
  }
  if (f.since) {
    const auto end = r.number("end");
    if (!end || *end < *f.since) {
      return false;
    }
  }
  if (f.until) {
    const auto start = r.number("start");
    if (!start || *start > *f.until) {
      return false;
    }
  }
  return true;
}

void readOne(const fs::path& path, const ReadFilter& filter, ReadResult& out) {
  auto text = readGzipFile(path.string());
  if (!text) {
    out.errors.push_back(text.error());
    return;
  }
  std::string_view rest = *text;
  size_t line_number = 0;
  std::shared_ptr<const std::vector<std::string>> names;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;
    }
    if (!names) {
      names = std::make_shared<const std::vector<std::string>>(splitFields(line));
      continue;
    }
    ReadRecord r;
    r.path = path.string();
    r.line_number = line_number;
    r.names = names;
    r.values = splitFields(line);
    r.line = std::string(line);
    if (r.values.size() != names->size()) {
      out.errors.push_back(
          Error{fmt::format("{}:{}: {} values for the header's {} fields", path.string(),
                            line_number, r.values.size(), names->size())});
      continue;
    }
    if (keep(r, filter)) {
      out.records.push_back(std::move(r));
    }
  }
  if (!names) {
    out.errors.push_back(Error{fmt::format("{}: empty (no header line)", path.string())});
  }
}

}  // namespace

std::optional<std::string_view> ReadRecord::value(std::string_view name) const {
  if (!names) {
    return std::nullopt;
  }
  for (size_t i = 0; i < names->size() && i < values.size(); ++i) {
    if ((*names)[i] == name) {
      return std::string_view(values[i]);
    }
  }
  return std::nullopt;
}

std::optional<int64_t> ReadRecord::number(std::string_view name) const {
  const auto v = value(name);
  if (!v) {
    return std::nullopt;
  }
  return parseNumber<int64_t>(*v);
}

Result<std::string> gunzip(const std::string& data) {
  z_stream zs{};
  // 15 + 32: accept gzip (and zlib) headers.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) {
    return makeError("gunzip: inflateInit2 failed");
  }
  // zlib's API is not const-correct: next_in is read only.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::vector<char> buf(size_t{1} << 16);
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) {
        break;
      }
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc != Z_OK) {
      break;
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      rc = Z_DATA_ERROR;  // input ended inside a stream: truncated
      break;
    }
  }
  const char* msg = zs.msg;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return makeError(fmt::format("not a valid gzip file ({})", msg != nullptr ? msg
                                                               : rc == Z_DATA_ERROR
                                                                   ? "truncated"
                                                                   : "inflate error"));
  }
  return out;
}

Result<std::string> readGzipFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return makeError(fmt::format("{}: cannot open", path));
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return makeError(fmt::format("{}: read error", path));
  }
  if (data.size() > std::numeric_limits<uInt>::max()) {
    return makeError(fmt::format("{}: too large", path));
  }
  auto text = gunzip(data);
  if (!text) {
    return tl::unexpected(text.error().withContext(path));
  }
  return text;
}

std::optional<std::string> flowLogIdFromFileName(std::string_view name) {
  constexpr std::string_view kSuffix = ".log.gz";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  name.remove_suffix(kSuffix.size());
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (true) {
    const size_t j = name.find('_', i);
    parts.push_back(name.substr(i, j == std::string_view::npos ? name.npos : j - i));
    if (j == std::string_view::npos) {
      break;
    }
    i = j + 1;
  }
  if (parts.size() < 6 || parts[1] != "vpcflowlogs") {
    return std::nullopt;
  }
  std::string id;
  for (size_t k = 3; k + 2 < parts.size(); ++k) {
    if (!id.empty()) {
      id += '_';
    }
    id += parts[k];
  }
  return id;
}

Result<int64_t> parseTime(std::string_view text) {
  if (auto n = parseNumber<int64_t>(text)) {
    return *n;
  }
  auto bad = [&] {
    return makeError(
        fmt::format("'{}': expected Unix seconds or ISO 8601 UTC like 2026-12-06T10:00:00Z", text));
  };
  std::string_view s = text;
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) {
    s.remove_suffix(1);
  }
  auto part = [&](size_t pos, size_t len) -> std::optional<int> {
    if (pos + len > s.size()) {
      return std::nullopt;
    }
    return parseNumber<int>(s.substr(pos, len));
  };
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') {
    return bad();
  }
  const auto y = part(0, 4);
  const auto mo = part(5, 2);
  const auto d = part(8, 2);
  int h = 0;
  int mi = 0;
  int sec = 0;
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != ' ') || (s.size() != 16 && s.size() != 19) || s[13] != ':') {
      return bad();
    }
    const auto hh = part(11, 2);
    const auto mm = part(14, 2);
    if (!hh || !mm || *hh > 23 || *mm > 59) {
      return bad();
    }
    h = *hh;
    mi = *mm;
    if (s.size() == 19) {
      const auto ss = part(17, 2);
      if (s[16] != ':' || !ss || *ss > 60) {
        return bad();
      }
      sec = *ss;
    }
  }
  if (!y || !mo || !d) {
    return bad();
  }
  using namespace std::chrono;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) {
    return bad();
  }
  const sys_seconds t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec};
  return static_cast<int64_t>(t.time_since_epoch().count());
}

Result<ReadResult> readFlowLogs(const std::string& dir, const ReadFilter& filter) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return makeError(fmt::format("{}: no such directory", dir));
  }
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    return makeError(fmt::format("{}: {}", dir, ec.message()));
  }
  ReadResult out;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      out.errors.push_back(Error{fmt::format("{}: {}", dir, ec.message())});
      break;
    }
    const std::string name = it->path().filename().string();
    // Temp files of a publish in progress start with '.'.
    if (name.empty() || name[0] == '.' || !it->is_regular_file(ec)) {
      continue;
    }
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".log.gz") == 0) {
      if (filter.flow_log_id && flowLogIdFromFileName(name) != *filter.flow_log_id) {
        continue;
      }
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    readOne(f, filter, out);
  }
  auto key = [](const ReadRecord& r) {
    return std::make_tuple(r.number("start").value_or(std::numeric_limits<int64_t>::min()),
                           r.value("interface-id").value_or(""), std::string_view(r.path),
                           r.line_number);
  };
  std::stable_sort(out.records.begin(), out.records.end(),
                   [&](const ReadRecord& a, const ReadRecord& b) { return key(a) < key(b); });
  return out;
}

}  // namespace vpcguard::flowlog
