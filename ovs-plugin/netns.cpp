#include "ovs-plugin/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace vpcguard::ovs {

std::optional<std::string> vswitchdNetns(const std::string& rundir) {
  std::ifstream pidfile(rundir + "/ovs-vswitchd.pid");
  long pid = 0;
  if (!(pidfile >> pid) || pid <= 0) {
    return std::nullopt;
  }
  const std::string theirs = "/proc/" + std::to_string(pid) + "/ns/net";
  struct stat a{};
  struct stat b{};
  if (::stat(theirs.c_str(), &a) != 0 || ::stat("/proc/self/ns/net", &b) != 0 ||
      (a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
    return std::nullopt;
  }
  return theirs;
}

Result<void> inNetns(const std::optional<std::string>& netns, const std::function<void()>& fn) {
  if (!netns) {
    fn();
    return {};
  }
  const int ours = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int theirs = ::open(netns->c_str(), O_RDONLY | O_CLOEXEC);
  if (ours < 0 || theirs < 0 || ::setns(theirs, CLONE_NEWNET) != 0) {
    const std::string why = std::strerror(errno);
    for (int fd : {ours, theirs}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
    return makeError("enter ovs-vswitchd's network namespace " + *netns + ": " + why);
  }
  fn();
  const int back = ::setns(ours, CLONE_NEWNET);
  const int saved = errno;
  ::close(ours);
  ::close(theirs);
  if (back != 0) {
    std::fprintf(stderr, "vpcguard: cannot return to our own network namespace: %s\n",
                 std::strerror(saved));
    std::abort();
  }
  return {};
}

}  // namespace vpcguard::ovs
