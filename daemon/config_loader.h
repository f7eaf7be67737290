#pragma once
// Reads the policy users write (TOML; one file, or a directory of *.toml files merged) into a
// model::Policy. Design: reading files, turning TOML into the model, and validating are three
// steps; the first is the only one that touches the filesystem, so the others are tested (and
// fuzzed) on strings. Every problem becomes a Diagnostic with file:line:column, so a user sees all
// of them at once. toml++ throws on syntax errors; its exceptions are caught here and never leave
// this component.
//
// Merging a directory: the files are read in name order; their arrays ([[subnets]], ...) are
// concatenated; [vpc] and [quotas] may each appear in one file only.

#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "translator/diagnostic.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::config {

struct Document {
  std::string name;  // shown in diagnostics, e.g. "configs/lab.toml"
  std::string text;
};

struct ParseOutput {
  model::Policy policy;  // as written: defaults not resolved, not validated
  std::vector<Diagnostic> diagnostics;
  // Fields the diagnostics cover; validation skips checks that read them (validate.h).
  std::set<std::string> reported_paths;
  // False when a document is not valid TOML: validation is then skipped (see loadPolicy).
  bool complete = true;
};

// TOML -> model. Never throws; problems go to `diagnostics`.
[[nodiscard]] ParseOutput parseDocuments(const std::vector<Document>& documents);

// A file, or every *.toml directly inside a directory (in name order). Fails on a nonexistent
// or unreadable path and on a directory without *.toml files.
[[nodiscard]] Result<std::vector<Document>> readDocuments(const std::filesystem::path& path);

// The first config file (the file, or a *.toml directly inside the directory) that some process
// holds open for writing, if any: a file still being written may be valid TOML and yet only half
// of what its writer means, so the daemon does not read it until it is closed. Asked of the
// kernel without reading (a read lease cannot be taken on a file open for writing). Where leases
// are unavailable (another owner without CAP_LEASE, a filesystem without them) the answer is
// nullopt, as for a file nobody writes: saving by rename is then the only safe way.
[[nodiscard]] std::optional<std::filesystem::path> openForWriting(const std::filesystem::path& path);

// Why a policy could not be loaded: either the files could not be read (`io`), or they hold
// errors (`diagnostics`, sorted by location).
struct LoadError {
  std::optional<Error> io;
  std::vector<Diagnostic> diagnostics;

  // One line for callers that only want an Error ("3 errors in the config; first: ...").
  [[nodiscard]] Error toError() const;
};

// parse + validate + resolveDefaults: the only way the daemon gets a Policy, so a configuration
// that fails validation is never applied.
[[nodiscard]] tl::expected<model::Policy, LoadError> loadPolicy(const std::filesystem::path& path);
[[nodiscard]] tl::expected<model::Policy, LoadError> loadPolicyFromDocuments(
    const std::vector<Document>& documents);

// loadPolicy() for a daemon that loads the same path again and again: it keeps each file's parsed
// objects, so that a reload of a directory parses only the files whose content changed (at 100k
// flows a one-rule change otherwise spends most of its time parsing files it has seen). The
// merged policy is validated as a whole every time. A load with any problem, and the first load,
// is the same as loadPolicy(): same result, same diagnostics. Files that failed are not kept.
// A single file (not a directory) is parsed whole every time, as by loadPolicy().
// It holds every file's text and parsed objects (a second copy of the policy's objects), and a
// load copies the reused ones into the merged policy.
class PolicyLoader {
 public:
  PolicyLoader();
  ~PolicyLoader();
  PolicyLoader(const PolicyLoader&) = delete;
  PolicyLoader& operator=(const PolicyLoader&) = delete;

  [[nodiscard]] tl::expected<model::Policy, LoadError> load(const std::filesystem::path& path);
  [[nodiscard]] tl::expected<model::Policy, LoadError> loadDocuments(
      const std::vector<Document>& documents);

  // What the last load did: files parsed, and files whose content was unchanged and reused.
  struct Counts {
    size_t parsed = 0;
    size_t reused = 0;
  };
  [[nodiscard]] Counts lastCounts() const { return counts_; }

 private:
  struct CachedFile;
  std::map<std::string, std::shared_ptr<const CachedFile>, std::less<>> cache_;  // by name
  Counts counts_;
};

// loadPolicy() for a command-line tool: on failure prints the I/O error or every diagnostic
// ("file:line:col: error: ...") to `err`, prefixed by `tool`, and returns the exit status to use:
// kLoadIoStatus when nothing could be read, kLoadInvalidStatus when the files hold errors.
inline constexpr int kLoadInvalidStatus = 1;
inline constexpr int kLoadIoStatus = 2;
[[nodiscard]] tl::expected<model::Policy, int> loadPolicyReporting(
    const std::filesystem::path& path, std::ostream& err, std::string_view tool = "vpcguardctl");

}  // namespace vpcguard::config
