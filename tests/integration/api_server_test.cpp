// vpcguard-apid against a real ovsdb-server with the vpcguard schema (tests/harness/state_server.h):
// the built binary runs as our child, clients are raw sockets speaking newline-delimited JSON
// (deliberately not api/client.h, so the wire format is checked from outside). Covers identity
// (SO_PEERCRED of a forked client with another uid, TLS client certificates), IAM refusals and
// explicit deny, commits and their audit records, concurrent clients on two servers, the request
// timeout, and kill -9 of the server in the middle of a stream of changes.

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/audit.h"
#include "state/store.h"
#include "tests/harness/paths.h"
#include "tests/harness/process.h"
#include "tests/harness/sample_policy.h"
#include "tests/harness/state_server.h"

namespace vpcguard {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using test::ChildProcess;
using test::StateServer;

constexpr uid_t kUser = 54321;
constexpr gid_t kGroup = 54321;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Raw clients.

int connectUnix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

bool sendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one line (without '\n'); nullopt on EOF, error or timeout. `buffer` keeps what follows.
std::optional<std::string> readLine(int fd, std::string& buffer) {
  for (;;) {
    if (auto nl = buffer.find('\n'); nl != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return line;
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

Json request(const std::string& action, Json parameters, const std::string& id = "t") {
  return Json{{"RequestId", id}, {"Action", action}, {"Parameters", std::move(parameters)}};
}

// Sends each request on one connection and returns the parsed responses (a missing one is
// null).
std::vector<Json> callUnix(const std::string& socket, const std::vector<Json>& requests) {
  std::vector<Json> responses;
  const int fd = connectUnix(socket);
  if (fd < 0) return std::vector<Json>(requests.size());
  std::string buffer;
  for (const auto& r : requests) {
    if (!sendAll(fd, r.dump() + "\n")) break;
    auto line = readLine(fd, buffer);
    if (!line) break;
    responses.push_back(Json::parse(*line, nullptr, false));
  }
  ::close(fd);
  responses.resize(requests.size());
  return responses;
}

Json callOne(const std::string& socket, const Json& r) { return callUnix(socket, {r}).at(0); }

// The same from a forked process with other credentials (no passwd entry for kUser), so the
// server sees them through SO_PEERCRED / SO_PEERGROUPS.
std::vector<Json> callAs(uid_t uid, gid_t gid, std::vector<gid_t> groups, const std::string& socket,
                         const std::vector<Json>& requests) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return std::vector<Json>(requests.size());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      ::_exit(3);
    }
    std::string out;
    for (const auto& response : callUnix(socket, requests)) out += response.dump() + "\n";
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::write(pipe_fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string text;
  char chunk[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], chunk, sizeof chunk)) > 0;) {
    text.append(chunk, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::vector<Json> responses;
  for (const auto& line : lines(text)) responses.push_back(Json::parse(line, nullptr, false));
  responses.resize(requests.size());
  return responses;
}

struct TlsOutcome {
  bool handshake = false;
  std::optional<Json> response;
  std::string error;
};

// One request over TLS to 127.0.0.1:port, verifying the server against `ca`, presenting
// `cert`/`key` when given.
TlsOutcome callTls(int port, const std::string& ca, const std::string& cert,
                   const std::string& key, const Json& r) {
  TlsOutcome outcome;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!cert.empty()) {
    if (SSL_CTX_use_certificate_file(ctx.get(), cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
      outcome.error = "client certificate not loadable";
      return outcome;
    }
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    outcome.error = "connect failed";
    return outcome;
  }
  SSL* ssl = SSL_new(ctx.get());
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    outcome.handshake = true;
    const std::string line = r.dump() + "\n";
    if (SSL_write(ssl, line.data(), static_cast<int>(line.size())) > 0) {
      std::string buffer;
      char chunk[4096];
      for (;;) {
        const int n = SSL_read(ssl, chunk, sizeof chunk);
        if (n <= 0) {
          outcome.error = "read failed (alert or close)";
          break;
        }
        buffer.append(chunk, static_cast<size_t>(n));
        if (auto nl = buffer.find('\n'); nl != std::string::npos) {
          outcome.response = Json::parse(buffer.substr(0, nl), nullptr, false);
          break;
        }
      }
    }
  } else {
    outcome.error = "handshake failed";
  }
  SSL_free(ssl);
  ::close(fd);
  return outcome;
}

int freeTcpPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

Json ingress(int port, const std::string& cidr = "192.0.2.0/24") {
  return Json::array({{{"IpProtocol", "tcp"},
                       {"FromPort", port},
                       {"ToPort", port},
                       {"IpRanges", Json::array({{{"CidrIp", cidr}}})}}});
}

Json authorize(const std::string& group, int port) {
  return request("AuthorizeSecurityGroupIngress",
                 {{"GroupId", group}, {"IpPermissions", ingress(port)}});
}

bool isError(const Json& response, const std::string& code) {
  return response.is_object() && response.contains("Error") &&
         response["Error"].value("Code", "") == code;
}
bool isResult(const Json& response) { return response.is_object() && response.contains("Result"); }

// What the database holds.
struct Snapshot {
  model::Policy policy;
  std::vector<state::AuditRecord> audit;
};

std::optional<Snapshot> snapshot(const std::string& target) {
  auto store = state::StateStore::open(target);
  if (!store) return std::nullopt;
  auto policy = state::policyFromReplica((*store)->replica());
  if (!policy) return std::nullopt;
  return Snapshot{std::move(*policy), state::auditRecords((*store)->replica())};
}

const model::SecurityGroup* group(const model::Policy& policy, const std::string& id) {
  for (const auto& g : policy.security_groups) {
    if (g.id == id) return &g;
  }
  return nullptr;
}

// Ports of the group's tcp ingress rules with a single port.
std::set<int> ingressPorts(const model::Policy& policy, const std::string& id) {
  std::set<int> ports;
  if (const auto* g = group(policy, id)) {
    for (const auto& rule : g->ingress) {
      if (rule.ip_protocol == model::kProtoTcp && rule.ports && rule.ports->from == rule.ports->to) {
        ports.insert(rule.ports->from);
      }
    }
  }
  return ports;
}

// ---------------------------------------------------------------------------------------------
// The fixture: a state database seeded with the sample policy, an IAM directory, and servers.

struct Apid {
  std::string socket;
  std::string audit_log;
  std::string output;
  std::vector<std::string> extra;
  std::unique_ptr<ChildProcess> process;
};

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = StateServer::unavailableReason()) GTEST_SKIP() << *why;
    auto state = StateServer::start();
    ASSERT_TRUE(state) << state.error().message;
    state_ = std::move(*state);
    char templ[] = "/tmp/vgt.apiXXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    // The unprivileged client must reach the socket inside.
    ::chmod(dir_.c_str(), 0755);
    writeIam();
    auto store = state::StateStore::open(state_->target());
    ASSERT_TRUE(store) << store.error().message;
    auto committed = (*store)->commit(test::samplePolicy());
    ASSERT_TRUE(committed) << committed.error().message;
    ASSERT_EQ(committed->status, state::StateStore::CommitStatus::kCommitted);
  }

  void TearDown() override {
    for (auto& apid : servers_) {
      if (apid.process) apid.process->kill();
      if (HasFailure()) {
        std::cerr << "---- " << apid.output << "\n" << readFile(apid.output) << "\n";
      }
    }
    servers_.clear();
    state_.reset();
    if (!dir_.empty() && std::getenv("VPCGUARD_KEEP_SANDBOX") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Policies: admin (everything) for root and the TLS client "CN=ops,O=Example"; for uid 54321
  // a reader that may authorize ingress on any group but is explicitly denied sg-db.
  void writeIam() {
    iam_ = dir_ + "/iam";
    std::filesystem::create_directories(iam_);
    writeFile(iam_ + "/admin.json", R"({"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": "*", "Resource": "*"}]})");
    writeFile(iam_ + "/reader.json", R"({"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]})");
    writeFile(iam_ + "/ingress-editor.json", R"({"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": "ec2:AuthorizeSecurityGroupIngress",
       "Resource": "arn:vpcguard:ec2:*:*:security-group/*"}]})");
    writeFile(iam_ + "/not-db.json", R"({"Version": "2012-10-17", "Statement": [
      {"Effect": "Deny", "Action": "ec2:*SecurityGroup*",
       "Resource": "arn:vpcguard:ec2:*:*:security-group/sg-db"}]})");
    writeFile(iam_ + "/bindings.json", R"({"Bindings": [
      {"Principal": "user:root", "Policies": ["admin"]},
      {"Principal": "cert:CN=ops,O=Example", "Policies": ["admin"]},
      {"Principal": "uid:54321", "Policies": ["reader", "ingress-editor", "not-db"]}]})");
  }

  // Starts a server; `name` keeps the files of several apart.
  Apid& startApid(const std::string& name, std::vector<std::string> extra = {}) {
    Apid apid;
    apid.socket = dir_ + "/" + name + ".sock";
    apid.audit_log = dir_ + "/" + name + "-audit.log";
    apid.output = dir_ + "/" + name + ".out";
    apid.extra = std::move(extra);
    servers_.push_back(std::move(apid));
    Apid& added = servers_.back();
    EXPECT_TRUE(launch(added));
    return added;
  }

  [[nodiscard]] bool launch(Apid& apid) {
    std::vector<std::string> argv = {
        test::binaryDir() + "/api/vpcguard-apid", "--socket", apid.socket, "--state",
        state_->target(), "--iam", iam_, "--audit-log", apid.audit_log, "--log-level", "debug"};
    argv.insert(argv.end(), apid.extra.begin(), apid.extra.end());
    if (socket_group_) {
      argv.push_back("--socket-group");
      argv.push_back(*socket_group_);
    }
    auto child = ChildProcess::spawn({argv, {}, apid.output});
    if (!child) {
      ADD_FAILURE() << child.error().message;
      return false;
    }
    apid.process = std::move(*child);
    // Ready once it answers a request.
    const bool ready = test::waitFor(
        [&] {
          return isResult(callOne(apid.socket, request("DescribeSecurityGroups", Json::object())));
        },
        20s, 50ms);
    if (!ready) {
      ADD_FAILURE() << "vpcguard-apid did not answer on " << apid.socket;
    }
    return ready;
  }

  std::vector<Json> auditFile(const Apid& apid) {
    std::vector<Json> out;
    for (const auto& line : lines(readFile(apid.audit_log))) out.push_back(Json::parse(line));
    return out;
  }

  std::unique_ptr<StateServer> state_;
  std::string dir_;
  std::string iam_;
  std::optional<std::string> socket_group_;
  std::deque<Apid> servers_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(ApiServerTest, RootDescribesAndAuthorizesAndTheChangeIsCommittedAndAudited) {
  Apid& apid = startApid("a");
  const Json described =
      callOne(apid.socket, request("DescribeSecurityGroups", {{"GroupIds", {"sg-web"}}}, "d1"));
  ASSERT_TRUE(isResult(described)) << described.dump();
  EXPECT_EQ(described["RequestId"], "d1");
  ASSERT_EQ(described["Result"]["SecurityGroups"].size(), 1u) << described.dump();
  EXPECT_EQ(described["Result"]["SecurityGroups"][0]["GroupId"], "sg-web");

  const Json authorized = callOne(apid.socket, authorize("sg-web", 8080));
  ASSERT_TRUE(isResult(authorized)) << authorized.dump();

  auto snap = snapshot(state_->target());
  ASSERT_TRUE(snap);
  EXPECT_TRUE(ingressPorts(snap->policy, "sg-web").count(8080));
  // The change's record, in the table and in the file (the file line is the record's line).
  ASSERT_FALSE(snap->audit.empty());
  const auto& last = snap->audit.back();
  EXPECT_EQ(last.action, "ec2:AuthorizeSecurityGroupIngress");
  EXPECT_EQ(last.result, "allowed");
  EXPECT_EQ(last.principal, "user:root");
  EXPECT_EQ(last.generation, (*state::StateStore::open(state_->target()))->generation());
  const auto file = lines(readFile(apid.audit_log));
  ASSERT_EQ(file.size(), snap->audit.size());
  for (size_t i = 0; i < file.size(); ++i) {
    EXPECT_EQ(file[i], api::auditLine(snap->audit[i]));
  }
  const Json line = Json::parse(file.back());
  EXPECT_EQ(line["eventName"], "AuthorizeSecurityGroupIngress");
  EXPECT_EQ(line["eventSource"], "vpcguard");
  EXPECT_EQ(line["userIdentity"]["type"], "Unix");
  EXPECT_EQ(line["requestParameters"]["GroupId"], "sg-web");
  EXPECT_EQ(line["eventID"], last.sequence);

  // Unknown actions and garbage are refused, and recorded too.
  EXPECT_TRUE(isError(callOne(apid.socket, request("LaunchRockets", Json::object())),
                      "InvalidAction"));
  const int fd = connectUnix(apid.socket);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, "this is not json\n"));
  std::string buffer;
  auto garbage = readLine(fd, buffer);
  ::close(fd);
  ASSERT_TRUE(garbage);
  EXPECT_TRUE(isError(Json::parse(*garbage), "MalformedRequest")) << *garbage;
  auto after = snapshot(state_->target());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->audit.size(), snap->audit.size() + 2);
  EXPECT_EQ(after->audit.back().result, "failed");
}

TEST_F(ApiServerTest, UnprivilegedUserGetsOnlyWhatItsBindingAllowsAndRefusalsAreAudited) {
  // The socket is 0660: the user reaches it through a group it is in.
  const struct group* g = ::getgrnam("nogroup");
  if (g == nullptr) g = ::getgrnam("users");
  ASSERT_NE(g, nullptr) << "no group 'nogroup' or 'users' to own the socket";
  socket_group_ = g->gr_name;
  const gid_t socket_gid = g->gr_gid;
  Apid& apid = startApid("a");

  struct stat st {};
  ASSERT_EQ(::stat(apid.socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, socket_gid);

  const auto responses = callAs(
      kUser, kGroup, {kGroup, socket_gid}, apid.socket,
      {request("DescribeSecurityGroups", Json::object(), "r1"),          // reader
       authorize("sg-web", 9090),                                        // ingress-editor
       request("CreateSecurityGroup",                                    // nothing allows it
               {{"GroupName", "mine"}, {"Description", "x"}}, "r3"),
       request("ModifyNetworkInterfaceAttribute",                        // nor this
               {{"NetworkInterfaceId", "eni-web1"}, {"Groups", {"sg-db"}}}, "r4"),
       authorize("sg-db", 9091)});                                       // explicitly denied
  ASSERT_EQ(responses.size(), 5u);
  EXPECT_TRUE(isResult(responses[0])) << responses[0].dump();
  EXPECT_TRUE(isResult(responses[1])) << responses[1].dump();
  for (size_t i : {2u, 3u, 4u}) {
    ASSERT_TRUE(isError(responses[i], "UnauthorizedOperation")) << responses[i].dump();
    const std::string message = responses[i]["Error"]["Message"];
    EXPECT_NE(message.find("You are not authorized to perform: ec2:"), std::string::npos);
    EXPECT_NE(message.find("uid:54321"), std::string::npos) << message;
  }
  EXPECT_NE(responses[2]["Error"]["Message"].get<std::string>().find("ec2:CreateSecurityGroup"),
            std::string::npos);
  EXPECT_NE(responses[4]["Error"]["Message"].get<std::string>().find("security-group/sg-db"),
            std::string::npos);

  auto snap = snapshot(state_->target());
  ASSERT_TRUE(snap);
  EXPECT_TRUE(ingressPorts(snap->policy, "sg-web").count(9090));
  EXPECT_FALSE(ingressPorts(snap->policy, "sg-db").count(9091));
  for (const auto& sg : snap->policy.security_groups) EXPECT_NE(sg.name, "mine");

  // Each refusal once in the table and once in the file, with who and what.
  std::map<std::string, int> denied_table;
  for (const auto& r : snap->audit) {
    if (r.principal == "uid:54321" && r.result == "denied") {
      ++denied_table[r.action];
      EXPECT_EQ(r.error_code, "UnauthorizedOperation");
      EXPECT_EQ(r.source.rfind("unix:pid=", 0), 0u) << r.source;
    }
  }
  EXPECT_EQ(denied_table, (std::map<std::string, int>{{"ec2:AuthorizeSecurityGroupIngress", 1},
                                                      {"ec2:CreateSecurityGroup", 1},
                                                      {"ec2:ModifyNetworkInterfaceAttribute", 1}}));
  std::map<std::string, int> denied_file;
  for (const auto& line : auditFile(apid)) {
    if (line["userIdentity"]["principal"] == "uid:54321" && line["result"] == "denied") {
      ++denied_file[line["eventName"].get<std::string>()];
      EXPECT_TRUE(line["errorMessage"].is_string());
    }
  }
  EXPECT_EQ(denied_file, (std::map<std::string, int>{{"AuthorizeSecurityGroupIngress", 1},
                                                     {"CreateSecurityGroup", 1},
                                                     {"ModifyNetworkInterfaceAttribute", 1}}));
}

TEST_F(ApiServerTest, TwentyConcurrentClientsOnTwoServersLoseNoChange) {
  // Two servers on one database: their changes race on the generation and their records on the
  // audit sequence; both must retry, not lose or duplicate.
  Apid& a = startApid("a");
  Apid& b = startApid("b");
  const std::string vpc = test::samplePolicy().vpc.id;
  std::vector<std::string> groups;
  for (int i = 0; i < 20; ++i) {
    const Json created = callOne(
        a.socket, request("CreateSecurityGroup", {{"GroupName", "load-" + std::to_string(i)},
                                                  {"Description", "load test"},
                                                  {"VpcId", vpc}}));
    ASSERT_TRUE(isResult(created)) << created.dump();
    groups.push_back(created["Result"]["GroupId"]);
  }
  std::vector<Json> responses(20);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      responses[i] = callOne(i % 2 == 0 ? a.socket : b.socket,
                             authorize(groups[i], 7000 + static_cast<int>(i)));
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < 20; ++i) EXPECT_TRUE(isResult(responses[i])) << i << ": " << responses[i];

  auto snap = snapshot(state_->target());
  ASSERT_TRUE(snap);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(ingressPorts(snap->policy, groups[i]), std::set<int>{7000 + static_cast<int>(i)})
        << groups[i];
  }
  // Sequences are 1..N without gaps or duplicates; each file is in order and holds only records
  // of the table, and together they hold all of the changes.
  std::set<int64_t> table;
  for (const auto& r : snap->audit) table.insert(r.sequence);
  EXPECT_EQ(table.size(), snap->audit.size());
  EXPECT_EQ(*table.rbegin(), static_cast<int64_t>(table.size()));
  std::set<int64_t> in_files;
  for (const Apid* apid : {&a, &b}) {
    int64_t previous = 0;
    for (const auto& line : auditFile(*apid)) {
      const int64_t id = line["eventID"];
      EXPECT_GT(id, previous) << apid->audit_log;
      previous = id;
      EXPECT_TRUE(table.count(id)) << id;
      in_files.insert(id);
    }
  }
  int changes = 0;
  for (const auto& r : snap->audit) {
    if (r.action == "ec2:AuthorizeSecurityGroupIngress" && r.result == "allowed") {
      ++changes;
      EXPECT_TRUE(in_files.count(r.sequence)) << r.sequence;
    }
  }
  EXPECT_EQ(changes, 20);
}

TEST_F(ApiServerTest, SlowClientIsCutOffWhileOthersAreServed) {
  Apid& apid = startApid("a", {"--request-timeout-ms", "1500"});
  const int slow = connectUnix(apid.socket);
  ASSERT_GE(slow, 0);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(sendAll(slow, R"({"RequestId": "slow", "Action": "DescribeSec)"));

  // Served meanwhile, promptly.
  const auto before = std::chrono::steady_clock::now();
  const Json other = callOne(apid.socket, request("DescribeSecurityGroups", Json::object()));
  EXPECT_TRUE(isResult(other)) << other.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1000ms);

  std::string buffer;
  auto answer = readLine(slow, buffer);
  const auto cut = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(answer) << "no answer before the connection closed";
  EXPECT_TRUE(isError(Json::parse(*answer, nullptr, false), "RequestTimeout")) << *answer;
  EXPECT_GE(cut, 1400ms);
  EXPECT_LT(cut, 5000ms);
  // ... and then closed.
  char byte;
  EXPECT_EQ(::recv(slow, &byte, 1, 0), 0);
  ::close(slow);
}

TEST_F(ApiServerTest, TlsClientsNeedACertificateSignedByTheCa) {
  const std::string d = dir_ + "/pki";
  std::filesystem::create_directories(d);
  writeFile(d + "/server.ext", "subjectAltName=IP:127.0.0.1\n");
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "set -e; cd " + test::shellQuote(d) + "; " +
      "openssl req -x509 " + key + " -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca; " +
      "openssl req -x509 " + key + " -keyout rogue-ca.key -out rogue-ca.crt -days 2 "
      "-subj /CN=rogue-ca; " +
      "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost; " +
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
      "-out server.crt -days 2 -extfile server.ext; " +
      "openssl req " + key + " -keyout ops.key -out ops.csr -subj /O=Example/CN=ops; " +
      "openssl x509 -req -in ops.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out ops.crt "
      "-days 2; " +
      "openssl req " + key + " -keyout rogue.key -out rogue.csr -subj /O=Example/CN=ops; " +
      "openssl x509 -req -in rogue.csr -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial "
      "-out rogue.crt -days 2";
  auto made = test::runChecked(script);
  ASSERT_TRUE(made) << made.error().message;

  const int port = freeTcpPort();
  Apid& apid = startApid(
      "a", {"--tls-listen", "127.0.0.1:" + std::to_string(port), "--tls-cert", d + "/server.crt",
            "--tls-key", d + "/server.key", "--tls-ca", d + "/ca.crt"});
  const Json describe = request("DescribeSecurityGroups", Json::object(), "tls");

  const auto ok = callTls(port, d + "/ca.crt", d + "/ops.crt", d + "/ops.key", describe);
  ASSERT_TRUE(ok.handshake) << ok.error;
  ASSERT_TRUE(ok.response) << ok.error;
  EXPECT_TRUE(isResult(*ok.response)) << ok.response->dump();
  // A change over TLS is recorded under the certificate's subject.
  const auto changed =
      callTls(port, d + "/ca.crt", d + "/ops.crt", d + "/ops.key", authorize("sg-web", 6443));
  ASSERT_TRUE(changed.response) << changed.error;
  EXPECT_TRUE(isResult(*changed.response)) << changed.response->dump();
  auto snap = snapshot(state_->target());
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->audit.back().principal, "cert:CN=ops,O=Example");
  EXPECT_EQ(snap->audit.back().source.rfind("tls:127.0.0.1:", 0), 0u) << snap->audit.back().source;
  const Json line = Json::parse(lines(readFile(apid.audit_log)).back());
  EXPECT_EQ(line["userIdentity"]["type"], "Certificate");
  EXPECT_EQ(line["sourceIPAddress"], "127.0.0.1");

  // No certificate, or one of another CA (same subject!): no answer. With TLS 1.3 the client may
  // finish its side of the handshake before the server's alert arrives; it never gets a response.
  const auto none = callTls(port, d + "/ca.crt", "", "", describe);
  EXPECT_FALSE(none.response) << none.response->dump();
  const auto rogue = callTls(port, d + "/ca.crt", d + "/rogue.crt", d + "/rogue.key", describe);
  EXPECT_FALSE(rogue.response) << rogue.response->dump();
  // The server is still fine.
  EXPECT_TRUE(callTls(port, d + "/ca.crt", d + "/ops.crt", d + "/ops.key", describe).response);
}

TEST_F(ApiServerTest, KillNineMidStreamLeavesDatabaseAuditTableAndFileInAgreement) {
  Apid& apid = startApid("a");
  std::mt19937 rng(std::random_device{}());
  // Three rounds, one group each (50 rules fit a group's quota of 60 once).
  const std::vector<std::string> groups = {"sg-web", "sg-bastion", "sg-db"};
  std::set<std::pair<std::string, int>> acknowledged;
  for (const auto& target : groups) {
    const int kill_after = std::uniform_int_distribution<int>(3, 40)(rng);
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 8000)(rng));
    std::cerr << target << ": killing " << delay.count() << " us after " << kill_after
              << " responses\n";
    // All 50 requests written at once, so the server is busy with the next one when it dies.
    const int fd = connectUnix(apid.socket);
    ASSERT_GE(fd, 0);
    std::string batch;
    for (int i = 0; i < 50; ++i) batch += authorize(target, 10000 + i).dump() + "\n";
    std::thread writer([&] { (void)sendAll(fd, batch); });
    std::string buffer;
    for (int i = 0; i < kill_after; ++i) {
      auto line = readLine(fd, buffer);
      if (!line || !isResult(Json::parse(*line, nullptr, false))) {
        ADD_FAILURE() << "response " << i << ": " << line.value_or("none");
        break;
      }
      acknowledged.insert({target, 10000 + i});
    }
    std::this_thread::sleep_for(delay);
    apid.process->kill();  // SIGKILL
    ::shutdown(fd, SHUT_RDWR);
    writer.join();
    ::close(fd);
    ASSERT_TRUE(launch(apid));  // same socket (a stale file now) and the same audit log

    auto snap = snapshot(state_->target());
    ASSERT_TRUE(snap);
    std::set<std::pair<std::string, int>> committed;
    for (const auto& g : groups) {
      for (int port : ingressPorts(snap->policy, g)) {
        if (port >= 10000) committed.insert({g, port});
      }
    }
    std::set<std::pair<std::string, int>> recorded;
    for (const auto& r : snap->audit) {
      if (r.action == "ec2:AuthorizeSecurityGroupIngress" && r.result == "allowed") {
        const Json params = Json::parse(r.request_parameters);
        recorded.insert({params["GroupId"], params["IpPermissions"][0]["FromPort"].get<int>()});
      }
    }
    std::cerr << "acknowledged " << acknowledged.size() << ", committed " << committed.size()
              << "\n";
    EXPECT_TRUE(std::includes(committed.begin(), committed.end(), acknowledged.begin(),
                              acknowledged.end()));
    // Every committed rule has its "allowed" record, and no record is without its change.
    EXPECT_EQ(committed, recorded);
    // The file is the table, line for line (the ready-check describes included).
    const auto file = lines(readFile(apid.audit_log));
    ASSERT_EQ(file.size(), snap->audit.size());
    for (size_t i = 0; i < file.size(); ++i) {
      EXPECT_EQ(file[i], api::auditLine(snap->audit[i])) << "line " << i + 1;
    }
  }
}

TEST_F(ApiServerTest, TornAuditLineIsRepairedFromTheDatabaseAtStart) {
  Apid& apid = startApid("a");
  ASSERT_TRUE(isResult(callOne(apid.socket, authorize("sg-web", 8081))));
  apid.process->kill();
  // A crash in the middle of an append, and one record never written.
  std::string text = readFile(apid.audit_log);
  auto all = lines(text);
  ASSERT_GE(all.size(), 2u);
  text.resize(text.size() - all.back().size() / 2 - 1);
  writeFile(apid.audit_log, text);
  ASSERT_TRUE(launch(apid));
  auto snap = snapshot(state_->target());
  ASSERT_TRUE(snap);
  const auto file = lines(readFile(apid.audit_log));
  ASSERT_EQ(file.size(), snap->audit.size());
  for (size_t i = 0; i < file.size(); ++i) {
    EXPECT_EQ(file[i], api::auditLine(snap->audit[i])) << "line " << i + 1;
  }
}

TEST_F(ApiServerTest, StartUpErrorsAreClear) {
  const std::string apid = test::binaryDir() + "/api/vpcguard-apid";
  const std::string common = " --state " + state_->target() + " --audit-log " +
                             test::shellQuote(dir_ + "/x-audit.log");
  // A bad IAM directory.
  std::filesystem::create_directories(dir_ + "/bad-iam");
  writeFile(dir_ + "/bad-iam/bindings.json", R"({"Bindings": [{"Principal": "user:root",
    "Policies": ["missing"]}]})");
  auto bad = test::run(apid + " --socket " + dir_ + "/x.sock --iam " + dir_ + "/bad-iam" + common,
                       20s);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("missing"), std::string::npos) << bad.output;
  // A missing socket group.
  auto group = test::run(apid + " --socket " + dir_ + "/x.sock --iam " + iam_ +
                             " --socket-group no-such-group-vgt" + common,
                         20s);
  EXPECT_EQ(group.exit_code, 1) << group.output;
  EXPECT_NE(group.output.find("no-such-group-vgt"), std::string::npos) << group.output;
  // A live socket is not taken over.
  Apid& running = startApid("a");
  auto second = test::run(apid + " --socket " + running.socket + " --iam " + iam_ + common, 20s);
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("another vpcguard-apid is running"), std::string::npos)
      << second.output;
  EXPECT_TRUE(isResult(callOne(running.socket, request("DescribeSecurityGroups", Json::object()))));
  // SIGTERM stops it cleanly and removes its socket.
  running.process->signal(SIGTERM);
  EXPECT_TRUE(running.process->waitExit(10s));
  EXPECT_FALSE(std::filesystem::exists(running.socket));
}

TEST_F(ApiServerTest, StateDatabaseLossGivesServiceUnavailableThenRecovers) {
  Apid& apid = startApid("a");
  state_->kill9();
  EXPECT_TRUE(test::waitFor(
      [&] {
        return isError(callOne(apid.socket, request("DescribeSecurityGroups", Json::object())),
                       "ServiceUnavailable");
      },
      10s, 100ms));
  ASSERT_TRUE(state_->restart());
  EXPECT_TRUE(test::waitFor(
      [&] { return isResult(callOne(apid.socket, authorize("sg-web", 8082))); }, 20s, 100ms));
  auto snap = snapshot(state_->target());
  ASSERT_TRUE(snap);
  EXPECT_TRUE(ingressPorts(snap->policy, "sg-web").count(8082));
}

}  // namespace
}  // namespace vpcguard
