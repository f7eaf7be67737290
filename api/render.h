#pragma once
// vpcguardctl's output formats for an API result (docs/cli.md), the AWS CLI's three:
//   json  - the result pretty-printed with a 4-space indent;
//   text  - tab-separated lines: scalars of an object on one line in key order; each object of a
//           list on its own line prefixed by the list's key upper-cased (SECURITYGROUPS\t...);
//           nested lists and objects follow as further lines prefixed by their own key;
//   table - boxed sections: a title row with the operation name, key|value rows for an object's
//           scalars, column headers for a list of objects, one nesting level ('|') per level of
//           the result.
// All three are deterministic (keys sorted, widths computed from the content, not the terminal),
// so golden tests can compare them byte for byte.

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "api/request.h"

namespace vpcguard::api {

enum class OutputFormat { kJson, kTable, kText };

[[nodiscard]] std::optional<OutputFormat> parseOutputFormat(std::string_view name);

[[nodiscard]] std::string renderJson(const Json& result);
[[nodiscard]] std::string renderText(const Json& result);
// `operation` titles the table ("DescribeSecurityGroups").
[[nodiscard]] std::string renderTable(const Json& result, std::string_view operation);

// Prints `result` in `format`. An empty result ({} as for a call that returns nothing) prints
// nothing in text and table formats, as the AWS CLI.
void render(const Json& result, std::string_view operation, OutputFormat format,
            std::ostream& out);

}  // namespace vpcguard::api
