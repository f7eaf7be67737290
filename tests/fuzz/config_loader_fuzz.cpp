// libFuzzer target: any bytes through the whole config path (TOML parse -> model -> validation ->
// defaults). The loader promises diagnostics, never a crash, a leak, a hang or an exception.
//
// Input containing the line "#---" is split there into several documents, so the directory merge
// ([vpc]/[quotas] in one file only, arrays concatenated) is fuzzed too.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<vpcguard::config::Document> docs;
  constexpr std::string_view kSplit = "\n#---\n";
  size_t begin = 0;
  while (docs.size() < 8) {
    const size_t end = input.find(kSplit, begin);
    docs.push_back(
        {"fuzz" + std::to_string(docs.size()) + ".toml",
         std::string(input.substr(begin, end == std::string_view::npos ? end : end - begin))});
    if (end == std::string_view::npos) {
      break;
    }
    begin = end + kSplit.size();
  }
  auto result = vpcguard::config::loadPolicyFromDocuments(docs);
  if (!result) {
    // Every diagnostic must be located in one of the documents.
    for (const auto& d : result.error().diagnostics) {
      if (d.location.line < 1 || d.location.column < 1 || d.location.file.empty()) {
        std::abort();
      }
      (void)vpcguard::formatDiagnostic(d);
    }
  }
  return 0;
}
