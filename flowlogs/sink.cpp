#include "flowlogs/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "translator/hash.h"

namespace vpcguard::flowlog {
namespace {

namespace fs = std::filesystem;

std::string errnoText(int err) { return std::strerror(err); }

// Closes a descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Result<void> writeAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return makeError(fmt::format("write {}: {}", path, errnoText(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> fsyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return makeError(fmt::format("open {}: {}", dir, errnoText(errno)));
  }
  if (::fsync(fd.get()) != 0) {
    return makeError(fmt::format("fsync {}: {}", dir, errnoText(errno)));
  }
  return {};
}

// Writes `data` to `path` so that it appears whole or not at all.
Result<void> writeAtomically(const fs::path& path, const std::string& data) {
  const fs::path dir = path.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return makeError(fmt::format("create directory {}: {}", dir.string(), ec.message()));
  }
  std::string tmp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    return makeError(fmt::format("create {}: {}", tmp, errnoText(errno)));
  }
  auto fail = [&](Error e) -> Result<void> {
    ::unlink(tmp.c_str());
    return tl::unexpected(std::move(e));
  };
  if (::fchmod(fd.get(), 0644) != 0) {
    return fail(Error{fmt::format("chmod {}: {}", tmp, errnoText(errno))});
  }
  if (auto w = writeAll(fd.get(), data, tmp); !w) {
    return fail(w.error());
  }
  if (::fsync(fd.get()) != 0) {
    return fail(Error{fmt::format("fsync {}: {}", tmp, errnoText(errno))});
  }
  if (::close(fd.release()) != 0) {
    return fail(Error{fmt::format("close {}: {}", tmp, errnoText(errno))});
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(Error{fmt::format("rename {} to {}: {}", tmp, path.string(), errnoText(errno))});
  }
  return fsyncDir(dir.string());
}

}  // namespace

std::string fileText(const LogFile& file) {
  std::string text = file.header + "\n";
  for (const auto& line : file.lines) {
    text += line;
    text += '\n';
  }
  return text;
}

namespace {
// A path component from config values (account, region, flow-log id): only what AWS's own
// names use, so a value cannot climb out of the destination ("..", "/").
std::string pathSafe(const std::string& value) {
  std::string out = value.empty() ? "-" : value;
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    c = ok ? c : '_';
  }
  return out;
}
}  // namespace

std::string objectKey(const LogFile& file, const std::string& text) {
  using namespace std::chrono;
  const sys_seconds t{seconds{file.interval_start}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  const auto y = static_cast<int>(ymd.year());
  const auto m = static_cast<unsigned>(ymd.month());
  const auto d = static_cast<unsigned>(ymd.day());
  return fmt::format(
      "AWSLogs/{0}/vpcflowlogs/{1}/{2:04}/{3:02}/{4:02}/"
      "{0}_vpcflowlogs_{1}_{5}_{2:04}{3:02}{4:02}T{6:02}{7:02}Z_{8:08x}.log.gz",
      pathSafe(file.account_id), pathSafe(file.region), y, m, d, pathSafe(file.flow_log_id),
      hms.hours().count(),
      hms.minutes().count(), fnv1a(text));
}

Result<std::string> gzipCompress(const std::string& data) {
  z_stream zs{};
  // 15 + 16: a gzip wrapper (header with mtime 0) instead of zlib's.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return makeError("gzip: deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
  // zlib's API is not const-correct: next_in is read only.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t written = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return makeError(fmt::format("gzip: deflate failed ({})", rc));
  }
  out.resize(written);
  return out;
}

Result<std::string> FileSink::publish(const LogFile& file) {
  if (file.lines.empty()) {
    return std::string();
  }
  const std::string text = fileText(file);
  const fs::path path = fs::path(dir_) / objectKey(file, text);
  auto gz = gzipCompress(text);
  if (!gz) {
    return tl::unexpected(gz.error().withContext(path.string()));
  }
  if (auto w = writeAtomically(path, *gz); !w) {
    return tl::unexpected(w.error().withContext("publish " + path.string()));
  }
  return path.string();
}

Result<std::unique_ptr<RecordSink>> makeSink(const std::string& destination) {
  constexpr std::string_view kFile = "file://";
  if (destination.rfind(kFile, 0) == 0) {
    std::string dir = destination.substr(kFile.size());
    if (dir.empty() || dir[0] != '/') {
      return makeError(fmt::format(
          "flow-log destination '{}': a file destination is file:///absolute/dir", destination));
    }
    return std::unique_ptr<RecordSink>(std::make_unique<FileSink>(std::move(dir)));
  }
  return makeError(fmt::format(
      "flow-log destination '{}': unsupported (only file:///dir has a sink)", destination));
}

}  // namespace vpcguard::flowlog
