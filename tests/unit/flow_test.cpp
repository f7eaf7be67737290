#include "translator/flow.h"

#include <gtest/gtest.h>

namespace vpcguard {
namespace {

TEST(FlowText, FormatsAllFields) {
  Flow f{3, 100, 0xab, "ip,nw_src=10.0.0.1", "drop"};
  EXPECT_EQ(toOfctlText(f), "table=3,priority=100,cookie=0xab,ip,nw_src=10.0.0.1,actions=drop");
}

TEST(FlowText, EmptyMatchAndActions) {
  Flow f{0, 0, 0, "", ""};
  EXPECT_EQ(toOfctlText(f), "table=0,priority=0,cookie=0x0,actions=drop");
}

TEST(FlowIdentity, OrderedByTablePriorityMatch) {
  Flow a{1, 10, 0, "ip", "drop"};
  Flow b{1, 20, 0, "ip", "drop"};
  EXPECT_LT(a, b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace vpcguard
