#include "ovs-plugin/deadline_guard.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <mutex>
#include <thread>

namespace vpcguard::ovs {
namespace {

struct Armed {
  int fd;
  DeadlineGuard::Clock::time_point deadline;
};

// The one watcher of the process. Never destroyed (a detached thread may still wait on it at
// exit), so it is leaked on purpose.
class Watcher {
 public:
  static Watcher& instance() {
    static auto* watcher = new Watcher();
    return *watcher;
  }

  uint64_t arm(int fd, DeadlineGuard::Clock::time_point deadline) {
    std::lock_guard lock(mutex_);
    if (!started_) {
      std::thread([this] { run(); }).detach();  // throws: no guard, the caller sees it
      started_ = true;
    }
    const uint64_t id = ++next_id_;
    armed_.emplace(id, Armed{fd, deadline});
    wake_.notify_one();
    return id;
  }

  void disarm(uint64_t id) {
    std::lock_guard lock(mutex_);
    armed_.erase(id);
    fired_.erase(id);
  }

  bool fired(uint64_t id) {
    std::lock_guard lock(mutex_);
    return fired_.count(id) != 0;
  }

 private:
  void run() {
    // Signals are for the threads that handle them (the daemon's loop reads a signalfd): none
    // may be delivered here, whatever mask the thread that armed the first guard had.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    std::unique_lock lock(mutex_);
    for (;;) {
      if (armed_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto next = armed_.begin();
      for (auto it = armed_.begin(); it != armed_.end(); ++it) {
        if (it->second.deadline < next->second.deadline) {
          next = it;
        }
      }
      if (DeadlineGuard::Clock::now() < next->second.deadline) {
        wake_.wait_until(lock, next->second.deadline);
        continue;  // disarmed, re-armed or due: look again
      }
      // Under the lock: the owner cannot have closed the fd (it disarms first).
      ::shutdown(next->second.fd, SHUT_RDWR);
      fired_.insert(next->first);
      armed_.erase(next);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<uint64_t, Armed> armed_;
  std::set<uint64_t> fired_;
  uint64_t next_id_ = 0;
  bool started_ = false;
};

bool peerIs(int fd, const std::string& target) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    return false;
  }
  if (target.starts_with("unix:") && peer.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&peer);
    const size_t room = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    const void* nul = std::memchr(un->sun_path, '\0', room);
    const size_t path_len =
        nul != nullptr ? static_cast<size_t>(static_cast<const char*>(nul) - un->sun_path) : room;
    const std::string path(un->sun_path, path_len);
    const std::string want = target.substr(5);
    const auto name = [](const std::string& p) { return p.substr(p.rfind('/') + 1); };
    const auto dir = [](const std::string& p) {
      const auto slash = p.rfind('/');
      const std::string d = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
      char resolved[PATH_MAX];
      return ::realpath(d.c_str(), resolved) != nullptr ? std::string(resolved) : d;
    };
    if (path.empty() || name(path) != name(want)) {
      return false;
    }
    // OVS binds through /proc/self/fd/N/NAME when a path is too long for sun_path: only the name
    // is known then. Otherwise the directories, after symbolic links (/var/run -> /run).
    return path.starts_with("/proc/self/fd/") || path == want || dir(path) == dir(want);
  }
  if (target.starts_with("tcp:")) {
    const std::string rest = target.substr(4);
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return false;
    }
    std::string host = rest.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    const int port = std::atoi(rest.c_str() + colon + 1);
    char text[INET6_ADDRSTRLEN] = {};
    if (peer.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return ntohs(in->sin_port) == port && host == text;
    }
    if (peer.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      return ntohs(in6->sin6_port) == port && host == text;
    }
  }
  return false;
}

}  // namespace

DeadlineGuard::DeadlineGuard(int fd, Clock::time_point deadline) {
  if (fd >= 0) {
    id_ = Watcher::instance().arm(fd, deadline);
  }
}

DeadlineGuard::~DeadlineGuard() {
  if (id_ != 0) {
    Watcher::instance().disarm(id_);
  }
}

bool DeadlineGuard::fired() const { return id_ != 0 && Watcher::instance().fired(id_); }

namespace {
// The socket inode behind /proc/self/fd/NAME, if it is a socket.
std::optional<uint64_t> socketInode(const char* name) {
  char link[64] = {};
  const std::string path = std::string("/proc/self/fd/") + name;
  const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
  if (n <= 0 || std::strncmp(link, "socket:[", 8) != 0) {
    return std::nullopt;
  }
  return std::strtoull(link + 8, nullptr, 10);
}
}  // namespace

std::set<uint64_t> openSockets() {
  std::set<uint64_t> inodes;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return inodes;
  }
  while (const dirent* entry = ::readdir(dir)) {
    if (const auto inode = socketInode(entry->d_name)) {
      inodes.insert(*inode);
    }
  }
  ::closedir(dir);
  return inodes;
}

int findPeerSocket(const std::string& target, const std::set<uint64_t>& before) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return -1;
  }
  int found = -1;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') {
      continue;
    }
    const auto inode = socketInode(entry->d_name);
    if (inode && before.count(*inode) == 0 && peerIs(static_cast<int>(fd), target)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
  return found;
}

}  // namespace vpcguard::ovs
