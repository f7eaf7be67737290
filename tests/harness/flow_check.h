#pragma once
// "The switch's flow table equals the desired one", computed independently of the daemon: the
// desired flows come from the translator (policy + the ports OVSDB reports + the interface
// indices the test expects), normalised by OVS's parser; the installed ones are a dump of the
// bridge. Installed = every flow with vpcguard's cookie magic, plus every flow of any cookie in
// one of the pipeline's tables (a foreign flow there changes what our pipeline does, so it
// counts as a difference). Flows of other cookies in other tables are not ours to judge. The
// generation bits of our cookies are not compared (a restarted vpcguardd adopts right flows of
// earlier generations).
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/harness/ovs_sandbox.h"
#include "translator/flow.h"
#include "translator/model.h"
#include "translator/result.h"

namespace vpcguard::test {

// The tables of translator/pipeline.h (pipeline::kOwnedTables).
[[nodiscard]] const std::vector<uint8_t>& pipelineTables();

// iface-id -> ofport of the interfaces on `bridge` that have an iface-id and a valid ofport, as
// ovs-vsctl reports them (when two ports claim one iface-id, the lower port, as vpcguardd does).
[[nodiscard]] Result<std::map<std::string, int>> bridgeOfports(const OvsSandbox& sandbox,
                                                               const std::string& bridge);

// translate() for `ofports` and `indices`, each flow normalised to the switch's text, generation
// bits cleared; sorted.
[[nodiscard]] Result<std::vector<Flow>> desiredFlows(
    const model::Policy& policy, const std::map<std::string, int>& ofports,
    const std::map<std::string, uint16_t>& indices);

// The bridge's flows that count (see above), sorted.
[[nodiscard]] Result<std::vector<Flow>> installedFlows(const OvsSandbox& sandbox,
                                                       const std::string& bridge);

// Empty when equal; otherwise the missing and unexpected flows (ovs-ofctl text, at most
// `max_lines` of each).
[[nodiscard]] std::string flowDiff(const std::vector<Flow>& desired,
                                   const std::vector<Flow>& installed, size_t max_lines = 20);

// The whole check in one: success, or a failure that shows the difference.
[[nodiscard]] ::testing::AssertionResult switchEqualsDesired(
    const OvsSandbox& sandbox, const std::string& bridge, const model::Policy& policy,
    const std::map<std::string, uint16_t>& indices);

}  // namespace vpcguard::test
