#include "daemon/flow_logs_command.h"

#include <algorithm>
#include <ostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "flowlogs/reader.h"

namespace vpcguard {
namespace {

// One table per format (consecutive runs of records sharing a header would interleave when
// formats are mixed; grouping keeps each table's columns meaningful).
void printTables(const std::vector<flowlog::ReadRecord>& records, std::ostream& out) {
  std::vector<const std::vector<std::string>*> formats;
  for (const auto& r : records) {
    const auto* names = r.names.get();
    if (std::none_of(formats.begin(), formats.end(), [&](const auto* f) { return *f == *names; })) {
      formats.push_back(names);
    }
  }
  bool first = true;
  for (const auto* names : formats) {
    std::vector<const flowlog::ReadRecord*> rows;
    std::vector<size_t> width(names->size());
    for (size_t i = 0; i < names->size(); ++i) {
      width[i] = (*names)[i].size();
    }
    for (const auto& r : records) {
      if (*r.names == *names) {
        rows.push_back(&r);
        for (size_t i = 0; i < r.values.size(); ++i) {
          width[i] = std::max(width[i], r.values[i].size());
        }
      }
    }
    if (!first) {
      out << "\n";
    }
    first = false;
    auto printRow = [&](const std::vector<std::string>& cells) {
      std::string line;
      for (size_t i = 0; i < cells.size(); ++i) {
        line += cells[i];
        if (i + 1 < cells.size()) {
          line += std::string(width[i] - cells[i].size() + 2, ' ');
        }
      }
      out << line << "\n";
    };
    printRow(*names);
    for (const auto* r : rows) {
      printRow(r->values);
    }
  }
}

}  // namespace

int runFlowLogsCommand(const FlowLogsCommandOptions& options, std::ostream& out,
                       std::ostream& err) {
  flowlog::ReadFilter filter;
  if (!options.interface_id.empty()) {
    filter.interface_id = options.interface_id;
  }
  if (!options.action.empty()) {
    filter.action = options.action;
  }
  if (!options.flow_log_id.empty()) {
    filter.flow_log_id = options.flow_log_id;
  }
  for (auto [text, bound, name] : {std::tuple{&options.since, &filter.since, "--since"},
                                   std::tuple{&options.until, &filter.until, "--until"}}) {
    if (text->empty()) {
      continue;
    }
    auto t = flowlog::parseTime(*text);
    if (!t) {
      err << "vpcguardctl flow-logs: " << name << " " << t.error().message << "\n";
      return 2;
    }
    *bound = *t;
  }
  auto result = flowlog::readFlowLogs(options.dir, filter);
  if (!result) {
    err << "vpcguardctl flow-logs: " << result.error().message << "\n";
    return 2;
  }
  if (options.output == "json") {
    for (const auto& r : result->records) {
      nlohmann::ordered_json object = nlohmann::ordered_json::object();
      for (size_t i = 0; i < r.names->size(); ++i) {
        object[(*r.names)[i]] = r.values[i];
      }
      out << object.dump() << "\n";
    }
  } else if (options.output == "text") {
    for (const auto& r : result->records) {
      out << r.line << "\n";
    }
  } else {
    printTables(result->records, out);
  }
  for (const auto& e : result->errors) {
    err << "vpcguardctl flow-logs: " << e.message << "\n";
  }
  return result->errors.empty() ? 0 : 1;
}

}  // namespace vpcguard
