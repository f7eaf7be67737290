#include "api/params.h"

#include <charconv>

namespace vpcguard::api {
namespace {

ApiError invalidValue(std::string_view name, const Json& value, std::string_view expected) {
  std::string shown = value.is_string() ? value.get<std::string>()
                                        : value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
  return ApiError{"InvalidParameterValue", "Value (" + shown + ") for parameter " +
                                               std::string(name) + " is invalid. Expected " +
                                               std::string(expected)};
}

ApiError missing(std::string_view name) {
  return ApiError{"MissingParameter",
                  "The request must contain the parameter " + std::string(name)};
}

const Json* find(const Json& params, std::string_view name) {
  if (!params.is_object()) return nullptr;
  auto it = params.find(std::string(name));
  if (it == params.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

ApiResult<std::string> requiredString(const Json& params, std::string_view name) {
  auto value = optionalString(params, name);
  if (!value) return tl::unexpected(value.error());
  if (!*value) return tl::unexpected(missing(name));
  return **value;
}

ApiResult<std::optional<std::string>> optionalString(const Json& params, std::string_view name) {
  const Json* value = find(params, name);
  if (value == nullptr) return std::optional<std::string>{};
  if (!value->is_string()) return tl::unexpected(invalidValue(name, *value, "a string"));
  return std::optional<std::string>(value->get<std::string>());
}

ApiResult<std::vector<std::string>> stringList(const Json& params, std::string_view name,
                                               bool required) {
  const Json* value = find(params, name);
  if (value == nullptr) {
    if (required) return tl::unexpected(missing(name));
    return std::vector<std::string>{};
  }
  if (value->is_string()) return std::vector<std::string>{value->get<std::string>()};
  if (!value->is_array()) return tl::unexpected(invalidValue(name, *value, "a list of strings"));
  std::vector<std::string> out;
  for (const auto& item : *value) {
    if (!item.is_string()) return tl::unexpected(invalidValue(name, item, "a string"));
    out.push_back(item.get<std::string>());
  }
  if (required && out.empty()) return tl::unexpected(missing(name));
  return out;
}

ApiResult<std::optional<long long>> optionalInt(const Json& params, std::string_view name) {
  const Json* value = find(params, name);
  if (value == nullptr) return std::optional<long long>{};
  if (value->is_number_integer()) return std::optional<long long>(value->get<long long>());
  if (value->is_string()) {
    const auto& text = value->get_ref<const std::string&>();
    long long parsed = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) {
      return std::optional<long long>(parsed);
    }
  }
  return tl::unexpected(invalidValue(name, *value, "an integer"));
}

ApiResult<long long> requiredInt(const Json& params, std::string_view name) {
  auto value = optionalInt(params, name);
  if (!value) return tl::unexpected(value.error());
  if (!*value) return tl::unexpected(missing(name));
  return **value;
}

ApiResult<std::optional<bool>> optionalBool(const Json& params, std::string_view name) {
  const Json* value = find(params, name);
  if (value == nullptr) return std::optional<bool>{};
  if (value->is_boolean()) return std::optional<bool>(value->get<bool>());
  if (value->is_string()) {
    if (*value == "true") return std::optional<bool>(true);
    if (*value == "false") return std::optional<bool>(false);
  }
  // {"Value": true}: AWS's AttributeBooleanValue (modify-network-interface-attribute).
  if (value->is_object() && value->contains("Value")) return optionalBool(*value, "Value");
  return tl::unexpected(invalidValue(name, *value, "a boolean"));
}

ApiResult<Json> optionalStructure(const Json& params, std::string_view name, bool array) {
  const Json* value = find(params, name);
  if (value == nullptr) return Json();
  if (array ? !value->is_array() : !value->is_object()) {
    return tl::unexpected(invalidValue(name, *value, array ? "a list" : "a structure"));
  }
  return *value;
}

}  // namespace vpcguard::api
