#include "tests/harness/paths.h"

#include <cstdlib>

namespace vpcguard::test {
namespace {
std::string env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}
}  // namespace

// The environment wins (ctest sets it); the build tree's own paths are the fallback, so a test
// binary run by hand finds its files too.
std::string sourceDir() { return env("VPCGUARD_SOURCE_DIR", VPCGUARD_SOURCE_DIR_DEFAULT); }
std::string binaryDir() { return env("VPCGUARD_BINARY_DIR", VPCGUARD_BINARY_DIR_DEFAULT); }
std::string programPath(const std::string& name) { return binaryDir() + "/daemon/" + name; }

}  // namespace vpcguard::test
