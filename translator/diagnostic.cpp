#include "translator/diagnostic.h"

#include <algorithm>
#include <tuple>

namespace vpcguard {

std::string formatDiagnostic(const Diagnostic& diagnostic) {
  const auto& loc = diagnostic.location;
  std::string out = (loc.file.empty() ? std::string("<config>") : loc.file) + ":" +
                    std::to_string(loc.line) + ":" + std::to_string(loc.column) + ": error: ";
  if (!diagnostic.path.empty()) {
    out += diagnostic.path + ": ";
  }
  out += diagnostic.message;
  if (!diagnostic.hint.empty()) {
    out += " (hint: " + diagnostic.hint + ")";
  }
  return out;
}

void sortDiagnostics(std::vector<Diagnostic>& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.location.file, a.location.line, a.location.column) <
                            std::tie(b.location.file, b.location.line, b.location.column);
                   });
}

std::string parentPath(const std::string& path) {
  const auto pos = path.find_last_of(".[");
  if (pos == std::string::npos) {
    return "";
  }
  return path.substr(0, pos);
}

}  // namespace vpcguard
