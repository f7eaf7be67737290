#include "ovs-plugin/json_stream.h"

#include <gtest/gtest.h>

namespace vpcguard::ovs {
namespace {

std::vector<std::string> feedAll(JsonStreamSplitter& s, std::string_view bytes) {
  auto r = s.feed(bytes);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return r ? *r : std::vector<std::string>{};
}

TEST(JsonStreamSplitter, SplitsBackToBackMessages) {
  JsonStreamSplitter s;
  auto out = feedAll(s, R"({"id":1,"result":[]}{"id":2,"result":{}} [1,2])");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], R"({"id":1,"result":[]})");
  EXPECT_EQ(out[1], R"({"id":2,"result":{}})");
  EXPECT_EQ(out[2], "[1,2]");
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(JsonStreamSplitter, BracketsAndEscapesInsideStringsDoNotCount) {
  JsonStreamSplitter s;
  const std::string msg = R"({"details":"a } b ] \" { [ \\","x":1})";
  auto out = feedAll(s, msg);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], msg);
}

TEST(JsonStreamSplitter, ReassemblesAMessageSplitAtEveryByte) {
  JsonStreamSplitter s;
  const std::string msg = R"({"method":"update","params":["m",{"T":{"u":{"new":{"s":"\"}"}}}}]})";
  std::vector<std::string> out;
  for (char c : msg + "\n" + msg) {
    auto more = feedAll(s, std::string_view(&c, 1));
    out.insert(out.end(), more.begin(), more.end());
  }
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], msg);
  EXPECT_EQ(out[1], msg);
}

TEST(JsonStreamSplitter, RejectsWhatCannotBeJsonRpc) {
  JsonStreamSplitter scalar;
  EXPECT_FALSE(scalar.feed("42").has_value());
  JsonStreamSplitter unbalanced;
  EXPECT_FALSE(unbalanced.feed("{}]").has_value());
}

}  // namespace
}  // namespace vpcguard::ovs
