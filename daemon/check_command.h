#pragma once
// `vpcguardctl check FILE|DIR`: loads and validates a configuration without applying it.

#include <iosfwd>
#include <string>

#include "translator/model.h"

namespace vpcguard::config {

// Exit codes, so scripts can tell a broken config from a missing one.
inline constexpr int kCheckOk = 0;
inline constexpr int kCheckInvalid = 1;  // the files hold errors (each printed)
inline constexpr int kCheckIoError = 2;  // nothing to check: missing, unreadable, empty dir

// Prints every error to `err` as "file:line:col: error: <path>: <message> (hint: ...)", or a
// one-line summary to `out`; returns the exit code.
[[nodiscard]] int runCheck(const std::string& path, std::ostream& out, std::ostream& err);

// "2 subnets, 3 network interfaces, ..." of a loaded (defaults resolved) policy.
[[nodiscard]] std::string summarize(const model::Policy& policy);

}  // namespace vpcguard::config
