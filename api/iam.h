#pragma once
// Who may do what (docs/iam.md): AWS IAM policy documents (Effect, Action, Resource; NotAction
// and Condition are refused as unsupported) attached to principals. A request is allowed when
// some statement of some policy attached to one of the caller's names allows every Permission
// it needs and no statement denies any of them: explicit Deny wins, and the default is deny.
//
// Configuration: a directory with one IAM policy document per file (`<policy-name>.json`) and
// `bindings.json`:
//   {"Bindings": [{"Principal": "user:root", "Policies": ["network-admin"]},
//                 {"Principal": "group:vpcguard-audit", "Policies": ["security-auditor"]}]}
// Principal names: "user:NAME", "uid:N", "group:NAME", "gid:N" (Unix socket peers), "cert:SUBJECT"
// (TLS clients, the subject in OpenSSL's one-line RFC 2253 form, e.g. "cert:CN=ops,O=Example").
// Errors name the file, line and field.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/actions.h"
#include "translator/result.h"

namespace vpcguard::api {

// The caller as the transport knows it: every name it can be bound by.
struct Principal {
  std::string display;             // "user:alice" / "cert:CN=ops": for messages and audit
  std::vector<std::string> names;  // {"user:alice", "uid:1001", "group:netops", "gid:3001", ...}
  std::string source;              // "unix:pid=123" / "tls:198.51.100.7:40112"
};

// The Unix user and groups of a process with these credentials (names from the passwd and group
// databases where they exist; the numeric forms always).
[[nodiscard]] Principal unixPrincipal(uid_t uid, gid_t gid, const std::vector<gid_t>& groups,
                                      pid_t pid);

struct IamStatement {
  bool allow = false;
  std::vector<std::string> actions;    // "ec2:Describe*", "*"; matched case-insensitively
  std::vector<std::string> resources;  // ARN patterns with * and ?
  std::string where;                   // "iam/network-admin.json:12:7" for explanations
};

struct IamPolicy {
  std::string name;
  std::vector<IamStatement> statements;
  nlohmann::json document;  // as written (stored in the database)
};

struct IamBinding {
  std::string principal;
  std::vector<std::string> policies;
};

struct Decision {
  bool allowed = false;
  // When refused: the first Permission refused, and why ("explicitly denied by
  // instance-operator statement 2" / "no statement allows it").
  Permission refused;
  std::string reason;
};

class IamConfig {
 public:
  // Reads a directory as described above. Error: "iam/bindings.json:4:18: Bindings[1].Policies[0]:
  // no policy named 'net-admin' (files: network-admin.json, ...)".
  [[nodiscard]] static Result<IamConfig> load(const std::filesystem::path& dir);
  // The same from in-memory documents (name -> text) and the bindings text.
  [[nodiscard]] static Result<IamConfig> parse(
      const std::vector<std::pair<std::string, std::string>>& policy_files,
      const std::string& bindings_name, const std::string& bindings_text);

  [[nodiscard]] Decision evaluate(const Principal& principal,
                                  const std::vector<Permission>& needed) const;

  // Whether some statement bound to the caller allows `action` on any resource at all. The
  // server asks this before telling a caller that a resource does not exist, so that callers
  // with no right to the action learn nothing about which ids exist.
  [[nodiscard]] bool mayAttempt(const Principal& principal, const std::string& action) const;

  [[nodiscard]] const std::vector<IamPolicy>& policies() const { return policies_; }
  [[nodiscard]] const std::vector<IamBinding>& bindings() const { return bindings_; }

 private:
  [[nodiscard]] std::vector<const IamPolicy*> attachedTo(const Principal& principal) const;

  std::vector<IamPolicy> policies_;
  std::vector<IamBinding> bindings_;
};

// Case-insensitive glob with * and ? (IAM's action matching; resources are case-sensitive).
[[nodiscard]] bool globMatch(std::string_view pattern, std::string_view text, bool ignore_case);

}  // namespace vpcguard::api
