#pragma once
// The project's one error type. Components return Result<T>; nothing throws across a component
// boundary. An Error carries a message and, while it travels up, context is prepended
// ("apply bundle: connect unix:/run/br0.mgmt: connection refused").

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace vpcguard {

struct Error {
  std::string message;

  [[nodiscard]] Error withContext(const std::string& context) const {
    return Error{context + ": " + message};
  }
};

template <typename T>
using Result = tl::expected<T, Error>;

[[nodiscard]] inline tl::unexpected<Error> makeError(std::string message) {
  return tl::unexpected<Error>(Error{std::move(message)});
}

}  // namespace vpcguard
