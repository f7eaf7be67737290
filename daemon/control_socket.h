#pragma once
// vpcguardd's control socket: a Unix stream socket (mode 0600, root only) beside the status file
// (/var/run/vpcguard/<bridge>.ctl). One request line, one reply line, then the daemon closes:
//
//   log-level          -> "ok info"           the current level of every logger
//   log-level debug    -> "ok debug"          sets it (logged), or "error unknown log level ..."
//   version            -> "ok vpcguardd 1.2.3"
//   anything else      -> "error unknown request ..."
//
// It lives in the daemon's poll loop, so nothing here may block it: the sockets are
// non-blocking, a request is at most kMaxRequest bytes, at most kMaxClients are open at once,
// and a client that has not finished within kClientTimeout is dropped; accept() failing for lack
// of resources (EMFILE, ...) leaves the listener out of the poll for kAcceptPause, so the loop
// does not spin on a listener that stays readable. A socket file left by a
// killed daemon (nobody accepts on it) is replaced at start; the file is removed on a clean exit.
#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "translator/result.h"

namespace vpcguard {

// The reply (without newline) to one request line: the protocol above.
[[nodiscard]] std::string handleControlRequest(std::string_view line);

// Where vpcguardd listens when --control-socket is not given: beside its status file.
[[nodiscard]] std::string defaultControlSocket(const std::string& status_file,
                                               const std::string& bridge);

class ControlSocket {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<std::string(std::string_view)>;

  static constexpr size_t kMaxRequest = 256;
  static constexpr size_t kMaxClients = 16;
  static constexpr std::chrono::milliseconds kClientTimeout{2000};
  static constexpr std::chrono::milliseconds kAcceptPause{250};

  // Binds `path` (creating its directory), mode 0600 (through the umask, which is process-wide:
  // call this before the process starts threads). Refused when a live process serves it or it
  // is not a socket.
  [[nodiscard]] static Result<std::unique_ptr<ControlSocket>> open(
      const std::string& path, Handler handler = handleControlRequest);
  ~ControlSocket();  // closes everything; removes the socket file if it is still ours
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  // The descriptors to poll (listener and clients) with the events wanted.
  void appendPollFds(std::vector<pollfd>& fds) const;
  // Accepts, reads, answers and expires clients; `fds` is what poll() returned (entries that are
  // not ours are ignored). Never blocks.
  void service(const std::vector<pollfd>& fds, Clock::time_point now = Clock::now());
  [[nodiscard]] size_t clients() const { return clients_.size(); }
  // How long the owner may sleep before service() has a deadline to enforce (a client's, or the
  // end of an accept pause); nullopt: none.
  [[nodiscard]] std::optional<std::chrono::milliseconds> untilNextDeadline(
      Clock::time_point now = Clock::now()) const;

 private:
  struct Client {
    int fd = -1;
    std::string in;
    std::string out;  // a reply not yet written completely
    Clock::time_point deadline;
  };
  ControlSocket(std::string path, int fd, dev_t dev, ino_t ino, Handler handler)
      : path_(std::move(path)), fd_(fd), dev_(dev), ino_(ino), handler_(std::move(handler)) {}
  void accept(Clock::time_point now);
  // False when the client is done (answered or gone) and can be closed.
  bool read(Client& c);
  bool write(Client& c);

  std::string path_;
  int fd_;
  dev_t dev_;
  ino_t ino_;
  Handler handler_;
  std::vector<Client> clients_;
  Clock::time_point accept_paused_until_{};  // the listener is not polled before this
};

// One request to a control socket; the reply line. Errors say what is wrong in terms of the
// daemon (not running, no socket, permission denied) with the path.
[[nodiscard]] Result<std::string> controlRequest(const std::string& path, const std::string& line,
                                                 std::chrono::milliseconds timeout);

}  // namespace vpcguard
