#pragma once
// Where the tests find the source tree (configs, golden files) and the built programs.
#include <string>

namespace vpcguard::test {

std::string sourceDir();  // VPCGUARD_SOURCE_DIR, set by ctest
std::string binaryDir();  // VPCGUARD_BINARY_DIR, set by ctest
std::string programPath(const std::string& name);  // e.g. "vpcguardd" -> <binary>/daemon/vpcguardd

}  // namespace vpcguard::test
