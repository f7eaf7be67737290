#pragma once
// The OpenFlow pipeline of vpcguard: every table, register, conntrack use and cookie field is
// defined here and nowhere else. docs/pipeline.md explains it for operators; keep both in step.
//
// A packet from a VM walks the stages in AWS's order:
//
//   CLASSIFY(0) -> PORT_SECURITY(10) -> L3_LOOKUP(20) -> SG_EGRESS_CT(30) -> SG_EGRESS(31)
//   -> NACL_OUT(40) -> NACL_IN(41) -> SG_INGRESS_CT(50) -> SG_INGRESS(51) -> OUTPUT(60)
//
// with UNFILTERED(70) for what AWS never filters (link-local, reserved subnet addresses, DHCP)
// and DROP(90) as the one place packets are dropped after a verdict (so later stages can count,
// sample and log drops there). Numbers leave room for stages added later (flow logs, mirroring).

#include <cstdint>

namespace vpcguard::pipeline {

// ---- tables --------------------------------------------------------------------------------
enum Table : uint8_t {
  kClassify = 0,       // in_port -> source ENI, subnet, NACL registers; unknown ports dropped
  kPortSecurity = 10,  // source/destination check: own MAC and addresses only (ARP, ND too)
  kL3Lookup = 20,      // ARP/ND responders, same-subnet switching, the VPC router
  kNdReply = 22,       // finishes the neighbour advertisements the responders in 20 build
  kSgEgressCt = 30,    // conntrack in the source ENI's zone
  kSgEgress = 31,      // security-group egress rules of the source ENI (conjunctions)
  kNaclOut = 40,       // NACL outbound of the source subnet (only when crossing subnets)
  kNaclIn = 41,        // NACL inbound of the destination subnet (only when crossing subnets)
  kSgIngressCt = 50,   // conntrack in the destination ENI's zone
  kSgIngress = 51,     // security-group ingress rules of the destination ENI
  kOutput = 60,        // router rewrite (TTL, MACs) and delivery
  kUnfiltered = 70,    // AWS-unfiltered traffic to and from the host (LOCAL port)
  kDrop = 90,          // verdict drops; reg4 says why
};

// ---- registers -----------------------------------------------------------------------------
// OVS NXM register fields as written in flow text.
inline constexpr const char* kRegSrcEni = "reg0";      // source ENI index (== its ct zone)
inline constexpr const char* kRegDstEni = "reg1";      // destination ENI index (== its ct zone)
inline constexpr const char* kRegSrcSubnet = "reg2";   // source subnet index
inline constexpr const char* kRegDstSubnet = "reg3";   // destination subnet index
inline constexpr const char* kRegVerdict = "reg4";     // why a packet was dropped (kVerdict*)
inline constexpr const char* kRegFlags = "reg5";       // kFlag* bits
inline constexpr const char* kRegSrcNacl = "reg6";     // NACL index of the source subnet
inline constexpr const char* kRegDstNacl = "reg7";     // NACL index of the destination subnet
inline constexpr const char* kNxmSrcEni = "NXM_NX_REG0";
inline constexpr const char* kNxmDstEni = "NXM_NX_REG1";

// reg5 bits.
inline constexpr uint32_t kFlagRouted = 0x1;  // crosses a subnet boundary: NACLs apply

// reg4: high byte = kind, low 24 bits = detail (NACL rule number, 32767 for the `*` rule).
inline constexpr uint32_t kVerdictPortSecurity = 0x01000000;
inline constexpr uint32_t kVerdictNoRoute = 0x02000000;
inline constexpr uint32_t kVerdictSgEgressMiss = 0x03000000;
inline constexpr uint32_t kVerdictSgIngressMiss = 0x04000000;
inline constexpr uint32_t kVerdictNaclOutDeny = 0x05000000;
inline constexpr uint32_t kVerdictNaclInDeny = 0x06000000;
inline constexpr uint32_t kVerdictCtInvalid = 0x07000000;
inline constexpr uint32_t kNaclStarRule = 32767;

// ---- conntrack -----------------------------------------------------------------------------
// Zone = ENI index (1..65535), so each interface has its own connection table and its own
// timeout policy. ct_label[0..31] = the conjunction id of the security-group rule that allowed
// the connection (see kConjIdBase): connections can be traced to, and revoked by, their rule.
inline constexpr const char* kCtLabelRuleField = "NXM_NX_CT_LABEL[0..31]";

// ---- priorities ----------------------------------------------------------------------------
// NACL entries: lower rule number = higher priority. Rule n -> kNaclBasePriority - n, so rule 1
// is 40000-1 and rule 32766 is 7234; the `*` deny is kNaclStarPriority.
inline constexpr uint16_t kNaclBasePriority = 40000;
inline constexpr uint16_t kNaclStarPriority = 1;

// ---- cookies -------------------------------------------------------------------------------
// 64-bit cookie layout:
//   [63..48] kCookieMagic: "this flow belongs to vpcguard" (dump/delete by this mask only)
//   [47..32] generation: a restarted daemon installs generation g+1, then deletes g
//   [31..24] CookieKind: which part of the policy made the flow
//   [23..0]  object index within that kind (ENI index, NACL index, SG rule conj id...)
inline constexpr uint64_t kCookieMagic = 0x7667ULL << 48;  // "vg"
inline constexpr uint64_t kCookieMagicMask = 0xffffULL << 48;
inline constexpr uint64_t kCookieGenerationMask = 0xffffULL << 32;

enum class CookieKind : uint8_t {
  kInfra = 1,     // table defaults, ct dispatch, drops
  kInterface = 2, // per-ENI classify, port security, lookup, output
  kSgRule = 3,    // SG rule conjunction flows; index = conj id
  kSgClause = 4,  // shared conjunction clause flows
  kNacl = 5,      // NACL entries; index = NACL index
  kRouter = 6,    // gateway ARP/ND responders, unfiltered traffic
};

[[nodiscard]] constexpr uint64_t makeCookie(uint16_t generation, CookieKind kind, uint32_t index) {
  return kCookieMagic | (uint64_t{generation} << 32) | (uint64_t{static_cast<uint8_t>(kind)} << 24) |
         (index & 0xffffffULL);
}
[[nodiscard]] constexpr uint16_t cookieGeneration(uint64_t cookie) {
  return static_cast<uint16_t>((cookie >> 32) & 0xffff);
}

// Conjunction ids of SG rules start here (ids below are free for other uses).
inline constexpr uint32_t kConjIdBase = 1000;

// The router's MAC address (the VPC router answers ARP/ND for every subnet's .1).
inline constexpr const char* kRouterMac = "02:76:67:00:00:01";

}  // namespace vpcguard::pipeline
