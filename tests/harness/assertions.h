#pragma once
// gtest helpers for Result<T>: on failure they print the error message (with its context chain)
// instead of "has_value() is false".
#include <gtest/gtest.h>

#define VGT_CONCAT_INNER(a, b) a##b
#define VGT_CONCAT(a, b) VGT_CONCAT_INNER(a, b)

// ASSERT that a Result holds a value.
#define VGT_ASSERT_OK(expr)                                                   \
  do {                                                                        \
    const auto& vgt_result_ = (expr);                                         \
    ASSERT_TRUE(vgt_result_.has_value()) << #expr << ": " << vgt_result_.error().message; \
  } while (0)

// `lhs = *expr`, or fail the test with the error.
#define VGT_ASSIGN_OR_FAIL(lhs, expr)                                          \
  auto VGT_CONCAT(vgt_r_, __LINE__) = (expr);                                  \
  ASSERT_TRUE(VGT_CONCAT(vgt_r_, __LINE__).has_value())                        \
      << #expr << ": " << VGT_CONCAT(vgt_r_, __LINE__).error().message;        \
  lhs = std::move(*VGT_CONCAT(vgt_r_, __LINE__))
