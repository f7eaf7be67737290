#pragma once
// One problem found in a configuration: where (file:line:column), which field (its path in the
// model, e.g. "security_groups[2].ingress[0].cidr_ipv4"), what is wrong, and how to fix it.
// The loader and the validator both produce them, so that a user sees every error at once.

#include <string>
#include <vector>

#include "translator/model.h"

namespace vpcguard {

struct Diagnostic {
  model::SourceLocation location;
  std::string path;     // field path; "" for the document as a whole (e.g. a syntax error)
  std::string message;  // what is wrong
  std::string hint;     // how to fix it; may be empty
};

// "file:line:col: error: <path>: <message> (hint: <hint>)", the format compilers use, so editors
// can jump to the place.
[[nodiscard]] std::string formatDiagnostic(const Diagnostic& diagnostic);

// Orders by file, line, column (stable otherwise), the order a reader goes through the files.
void sortDiagnostics(std::vector<Diagnostic>& diagnostics);

// The parent of a field path: "a[2].b" -> "a[2]" -> "a" -> "". Used to find the nearest
// recorded location and to know which fields an earlier error already covers.
[[nodiscard]] std::string parentPath(const std::string& path);

}  // namespace vpcguard
