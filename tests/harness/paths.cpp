#include "tests/harness/paths.h"

#include <cstdlib>

namespace vpcguard::test {
namespace {
std::string env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}
}  // namespace

std::string sourceDir() { return env("VPCGUARD_SOURCE_DIR", "."); }
std::string binaryDir() { return env("VPCGUARD_BINARY_DIR", "."); }
std::string programPath(const std::string& name) { return binaryDir() + "/daemon/" + name; }

}  // namespace vpcguard::test
