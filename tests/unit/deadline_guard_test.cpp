// DeadlineGuard: a call blocked on a socket past its deadline is ended (the socket is shut
// down), a call that returns in time is left alone, and findPeerSocket() names the socket of a
// connection by its peer.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ovs-plugin/deadline_guard.h"

namespace vpcguard::ovs {
namespace {

using Clock = std::chrono::steady_clock;

TEST(DeadlineGuardTest, ABlockedReadEndsAtTheDeadline) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  const auto start = Clock::now();
  char c = 0;
  ssize_t n = -1;
  bool fired = false;
  {
    DeadlineGuard guard(fds[0], start + std::chrono::milliseconds(200));
    n = ::recv(fds[0], &c, 1, 0);  // the peer never writes
    fired = guard.fired();
  }
  const auto waited = Clock::now() - start;
  EXPECT_EQ(n, 0) << "the socket was shut down, so the read sees end of file";
  EXPECT_TRUE(fired);
  EXPECT_GE(waited, std::chrono::milliseconds(190));
  EXPECT_LT(waited, std::chrono::seconds(5));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(DeadlineGuardTest, ACallThatReturnsInTimeIsLeftAlone) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  {
    DeadlineGuard guard(fds[0], Clock::now() + std::chrono::seconds(2));
    ASSERT_EQ(::send(fds[1], "x", 1, 0), 1);
    char c = 0;
    EXPECT_EQ(::recv(fds[0], &c, 1, 0), 1);
    EXPECT_FALSE(guard.fired());
  }
  // Disarmed: after its deadline the socket still works both ways.
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  ASSERT_EQ(::send(fds[1], "y", 1, MSG_NOSIGNAL), 1);
  ASSERT_EQ(::send(fds[0], "z", 1, MSG_NOSIGNAL), 1);
  char c = 0;
  EXPECT_EQ(::recv(fds[0], &c, 1, 0), 1);
  EXPECT_EQ(c, 'y');
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(DeadlineGuardTest, GuardsOfSeveralCallsFireInDeadlineOrder) {
  int x[2];
  int y[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, x), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, y), 0);
  {
    DeadlineGuard later(y[0], Clock::now() + std::chrono::seconds(30));
    DeadlineGuard soon(x[0], Clock::now() + std::chrono::milliseconds(100));
    char c = 0;
    EXPECT_EQ(::recv(x[0], &c, 1, 0), 0);
    EXPECT_TRUE(soon.fired());
    EXPECT_FALSE(later.fired());
  }
  ASSERT_EQ(::send(y[1], "y", 1, MSG_NOSIGNAL), 1);
  char c = 0;
  EXPECT_EQ(::recv(y[0], &c, 1, 0), 1) << "the later guard's socket was not touched";
  for (int fd : {x[0], x[1], y[0], y[1]}) {
    ::close(fd);
  }
}

TEST(DeadlineGuardTest, FindPeerSocketNamesTheNewConnectionToTheTarget) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("vg-dg-" + std::to_string(::getpid()) + ".sock")).string();
  ::unlink(path.c_str());
  const int server = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(server, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(server, 4), 0);
  const auto before = openSockets();
  const int client = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(findPeerSocket("unix:" + path, before), client);
  EXPECT_EQ(findPeerSocket("unix:/elsewhere.sock", before), -1);
  EXPECT_EQ(findPeerSocket("unix:" + path, openSockets()), -1) << "not new";
  ::close(client);
  ::close(server);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace vpcguard::ovs
