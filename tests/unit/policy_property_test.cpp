// Property: every random model that validation accepts goes through resolveDefaults() without
// error, comes out with every default made explicit, still validates, and translates into flows
// with no two sharing an identity (table, priority, match), which the switch would refuse.

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "tests/unit/model_generator.h"
#include "translator/defaults.h"
#include "translator/translate.h"
#include "translator/validate.h"

namespace vpcguard {
namespace {

using test::ModelGenerator;

TEST(PolicyProperty, ValidModelsResolveDefaults) {
  constexpr int kModels = 400;
  int valid = 0;
  for (int seed = 1; seed <= kModels; ++seed) {
    ModelGenerator gen(static_cast<uint32_t>(seed));
    const model::Policy p = gen.next();
    if (!validatePolicy(p).empty()) {
      continue;
    }
    ++valid;
    auto resolved = resolveDefaults(p);
    ASSERT_TRUE(resolved.has_value()) << "seed " << seed << ": " << resolved.error().message;
    // Every default made explicit: exactly one default group and NACL, every interface in a
    // group, every subnet with a NACL, and all of it existing.
    EXPECT_EQ(std::count_if(resolved->security_groups.begin(), resolved->security_groups.end(),
                            [](const auto& g) { return g.is_default; }),
              1)
        << "seed " << seed;
    EXPECT_EQ(std::count_if(resolved->network_acls.begin(), resolved->network_acls.end(),
                            [](const auto& a) { return a.is_default; }),
              1)
        << "seed " << seed;
    for (const auto& e : resolved->network_interfaces) {
      EXPECT_FALSE(e.security_group_ids.empty()) << "seed " << seed;
    }
    for (const auto& s : resolved->subnets) {
      EXPECT_FALSE(s.network_acl_id.empty()) << "seed " << seed;
    }
    const auto again = validatePolicy(*resolved);
    EXPECT_TRUE(again.empty()) << "seed " << seed << ": resolved policy is invalid: "
                               << (again.empty() ? "" : formatDiagnostic(again.front()));
    TranslateInput in;
    in.policy = &*resolved;
    in.interface_index = *assignInterfaceIndices(*resolved, {});
    int port = 1;
    for (const auto& eni : resolved->network_interfaces) {
      in.ofports[eni.id] = port++;
    }
    auto flows = translate(in);
    ASSERT_TRUE(flows.has_value()) << "seed " << seed << ": " << flows.error().message;
    std::set<std::tuple<uint8_t, uint16_t, std::string>> identities;
    for (const auto& f : flows->flows) {
      EXPECT_TRUE(identities.emplace(f.table, f.priority, f.match).second)
          << "seed " << seed << ": duplicate flow " << toOfctlText(f);
    }
    // Resolving twice changes nothing.
    auto twice = resolveDefaults(*resolved);
    ASSERT_TRUE(twice.has_value());
    EXPECT_EQ(twice->security_groups.size(), resolved->security_groups.size());
    EXPECT_EQ(twice->network_acls.size(), resolved->network_acls.size());
  }
  // The property means little if the generator rarely makes valid models.
  EXPECT_GE(valid, kModels / 3) << "only " << valid << " of " << kModels << " models were valid";
  EXPECT_LT(valid, kModels) << "the generator never makes a mistake: the filter is untested";
}

}  // namespace
}  // namespace vpcguard
