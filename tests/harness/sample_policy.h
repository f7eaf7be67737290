#pragma once
// A small policy built in code (no config file), shaped like configs/lab.toml: two subnets,
// web/bastion/db interfaces, a custom NACL on the private subnet. Tests of the translator and
// the pipeline use it without depending on the config loader.
#include <optional>

#include "translator/model.h"

namespace vpcguard::test {

// Interfaces: eni-web1 10.0.1.10, eni-bastion 10.0.1.20 (public subnet, default NACL),
// eni-db1 10.0.2.10 (private subnet, nacl-private). Groups: sg-web (tcp 80,443 from anywhere;
// tcp 22 from sg-bastion), sg-bastion (tcp 22 from 0.0.0.0/0), sg-db (tcp 5432 from sg-web,
// tcp 22 from sg-bastion, icmp from 10.0.0.0/16). Defaults already resolved.
model::Policy samplePolicy();

[[nodiscard]] IpAddress ip(const char* text);
// A NACL entry (protocol numbers as in model.h; cidr as text).
[[nodiscard]] model::NetworkAclEntry naclEntry(int number, bool egress, int proto, bool allow,
                                               const char* cidr,
                                               std::optional<model::PortRange> ports = std::nullopt);
[[nodiscard]] Cidr cidr(const char* text);

}  // namespace vpcguard::test
