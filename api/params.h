#pragma once
// Internal to api/: reading AWS-shaped request parameters with AWS's errors
// ("MissingParameter: The request must contain the parameter GroupId",
//  "InvalidParameterValue: Value (abc) for parameter RuleNumber is invalid. Expected an integer").

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/request.h"

namespace vpcguard::api {

template <typename T>
using ApiResult = tl::expected<T, ApiError>;

[[nodiscard]] inline tl::unexpected<ApiError> apiError(std::string code, std::string message) {
  return tl::unexpected<ApiError>(ApiError{std::move(code), std::move(message)});
}

[[nodiscard]] ApiResult<std::string> requiredString(const Json& params, std::string_view name);
[[nodiscard]] ApiResult<std::optional<std::string>> optionalString(const Json& params,
                                                                   std::string_view name);
// A list of strings ("GroupIds": ["sg-1", "sg-2"]); absent = empty (or MissingParameter when
// `required`).
[[nodiscard]] ApiResult<std::vector<std::string>> stringList(const Json& params,
                                                             std::string_view name,
                                                             bool required = false);
// Integers may come as JSON numbers or decimal strings (the AWS CLI sends both shapes).
[[nodiscard]] ApiResult<long long> requiredInt(const Json& params, std::string_view name);
[[nodiscard]] ApiResult<std::optional<long long>> optionalInt(const Json& params,
                                                              std::string_view name);
[[nodiscard]] ApiResult<std::optional<bool>> optionalBool(const Json& params,
                                                          std::string_view name);
// An optional object or array parameter (absent = null Json).
[[nodiscard]] ApiResult<Json> optionalStructure(const Json& params, std::string_view name,
                                                bool array);

}  // namespace vpcguard::api
