#pragma once
// The OpenFlow pipeline of vpcguard: every table, register, conntrack use and cookie field is
// defined here and nowhere else. docs/pipeline.md explains it for operators; keep both in step.
//
// A packet from a VM walks the stages in AWS's order:
//
//   CLASSIFY(0) -> PORT_SECURITY(10) -> L3_LOOKUP(20) -> L3_FORWARD(21) -> SG_EGRESS_CT(30)
//   -> SG_EGRESS(31)
//   [-> SG_EGRESS_EVAL(32)] -> NACL_OUT(40) -> NACL_IN(41) -> SG_INGRESS_CT(50)
//   -> SG_INGRESS(51) [-> SG_INGRESS_EVAL(52)] -> OUTPUT(60)
//
// Each SG stage is a dispatch table (31/51: what conntrack already knows decides) and an
// evaluation table (32/52: the rules, as conjunctions). New connections and "checked"
// connections whose rule is gone are evaluated; everything else established is dispatched.
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
  kL3Lookup = 20,      // ARP/ND responders; destination interface by address; the VPC router
  kL3Forward = 21,     // per destination interface: switched, routed in its subnet, or across
  kNdReply = 22,       // finishes the neighbour advertisements the responders in 20 build
  kSgEgressCt = 30,    // conntrack in the source ENI's zone
  kSgEgress = 31,      // SG egress dispatch: invalid, established, checked-and-live, revoked
  kSgEgressEval = 32,  // security-group egress rules of the source ENI (conjunctions), commit
  kNaclOut = 40,       // NACL outbound of the source subnet (only when crossing subnets)
  kNaclIn = 41,        // NACL inbound of the destination subnet (only when crossing subnets)
  kSgIngressCt = 50,   // conntrack in the destination ENI's zone
  kSgIngress = 51,     // SG ingress dispatch, as kSgEgress in the destination ENI's zone
  kSgIngressEval = 52, // security-group ingress rules of the destination ENI, commit
  kOutput = 60,        // router rewrite (TTL, MACs) and delivery
  kUnfiltered = 70,    // AWS-unfiltered traffic to and from the host (LOCAL port)
  kDrop = 90,          // verdict drops; reg4 says why
  // Flow-log counting (docs/flowlogs.md). Reached by resubmit only, never by goto_table: the
  // egress side from NACL_OUT once the packet left the source subnet (or skipped the NACLs), the
  // ingress side from OUTPUT when the packet is delivered. Each side has a table of ours (the
  // per-interface flows that learn a counting flow per connection and sample what no counting
  // flow counted yet) and a table of learned flows only (not ours: their cookie is
  // kLearnedCookieMagic, they come and go with connections, and they are never drift).
  kFlowLogEgress = 92,
  kFlowLogEgressLearned = 93,
  kFlowLogEgressMark = 94,
  kFlowLogIngress = 96,
  kFlowLogIngressLearned = 97,
  kFlowLogIngressMark = 98,
  // Traffic mirroring (docs/mirroring.md). Reached by resubmit from the same two points as the
  // flow-log counting (an accepted packet leaving its source / delivered to its destination):
  // per source interface (reg0 / reg1) and session rank (kRegMirrorRank), the session filter
  // rules; an accepting rule copies the packet in a clone() (VNI, tunnel destination, truncation)
  // to the mirror tunnel port, a rejecting rule or no match tries the next session.
  kMirrorEgress = 100,
  kMirrorIngress = 101,
};

// The tables vpcguard owns on its bridge: any flow in them that vpcguard did not install is
// drift and is removed. Flows in other tables are left alone.
inline constexpr Table kOwnedTables[] = {
    kClassify,   kPortSecurity, kL3Lookup,    kL3Forward, kNdReply, kSgEgressCt, kSgEgress,
    kSgEgressEval, kNaclOut,    kNaclIn,      kSgIngressCt, kSgIngress, kSgIngressEval,
    kOutput,     kUnfiltered,   kDrop,        kFlowLogEgress, kFlowLogEgressMark,
    kFlowLogIngress, kFlowLogIngressMark, kMirrorEgress, kMirrorIngress};
[[nodiscard]] constexpr bool isOwnedTable(uint8_t table) {
  for (Table t : kOwnedTables) {
    if (t == table) {
      return true;
    }
  }
  return false;
}

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
inline constexpr const char* kRegOpen = "reg8";        // kOpen* bits: ENIs open to the internet
inline constexpr const char* kNxmScratch = "NXM_NX_REG9";  // scratch within one action list
// The rank (0, 1, 2: by session number) of the mirror session whose filter is being evaluated.
inline constexpr const char* kRegMirrorRank = "reg10";
// Group slots (docs/pipeline.md "Group slots"): an interface's security groups, by their
// bridge-wide group index (RuleIdAllocator::groupIndex, 1..65535; 0 = empty slot), in 16-bit
// slots of reg11..reg15. Egress slots (the source interface's groups, loaded at CLASSIFY) are
// bits 0..79, ingress slots (the destination's, loaded at L3_LOOKUP) bits 80..159, so both are
// set before either evaluation table. A group's member clause is then one flow per slot it
// occupies on this bridge, not one per member: a rule change rewrites O(1) flows. A group that
// finds no free slot on an interface (more than kGroupSlots groups) matches that interface by
// its index (reg0 / reg1), as every member did before slots.
inline constexpr size_t kGroupSlots = 5;
inline constexpr uint8_t kNoSlot = 0xff;
struct SlotField {
  int reg;    // 11..15
  int shift;  // 0 or 16
};
[[nodiscard]] constexpr SlotField groupSlotField(bool egress, size_t slot) {
  const size_t bit = (egress ? 0 : kGroupSlots * 16) + slot * 16;
  return SlotField{11 + static_cast<int>(bit / 32), static_cast<int>(bit % 32)};
}
static_assert(groupSlotField(false, kGroupSlots - 1).reg == 15, "slots fit reg11..reg15");
inline constexpr const char* kNxmSrcEni = "NXM_NX_REG0";
inline constexpr const char* kNxmDstEni = "NXM_NX_REG1";

// reg5 bits.
inline constexpr uint32_t kFlagRouted = 0x1;   // crosses a subnet boundary: NACLs apply
inline constexpr uint32_t kFlagRewrite = 0x2;  // came through the router MAC: TTL and MACs rewritten
// From the host (LOCAL), in UNFILTERED: the source is one AWS leaves unfiltered for this
// destination (link-local, or a reserved address of the destination's subnet). Set by one flow
// per such source (and subnet), then the packet is looked up again in the same table, where one
// flow per VM address delivers it: per address, not per address x source.
inline constexpr uint32_t kFlagHostSourceOk = 0x4;

// reg4: high byte = kind, low 24 bits = detail (NACL rule number, 32767 for the `*` rule).
inline constexpr uint32_t kVerdictPortSecurity = 0x01000000;
inline constexpr uint32_t kVerdictNoRoute = 0x02000000;
inline constexpr uint32_t kVerdictSgEgressMiss = 0x03000000;
inline constexpr uint32_t kVerdictSgIngressMiss = 0x04000000;
inline constexpr uint32_t kVerdictNaclOutDeny = 0x05000000;
inline constexpr uint32_t kVerdictNaclInDeny = 0x06000000;
inline constexpr uint32_t kVerdictCtInvalid = 0x07000000;
// A reply of a checked connection whose allowing rule is gone (see the conntrack section).
inline constexpr uint32_t kVerdictSgEgressRevoked = 0x08000000;
inline constexpr uint32_t kVerdictSgIngressRevoked = 0x09000000;
inline constexpr uint32_t kNaclStarRule = 32767;

// ---- conntrack -----------------------------------------------------------------------------
// Zone = ENI index (1..65535), so each interface has its own connection table and its own
// timeout policy. ct_label[0..31] = the conjunction id of the security-group rule that allowed
// the connection (see kConjIdBase): connections can be traced to, and revoked by, their rule.
inline constexpr const char* kCtLabelRuleField = "NXM_NX_CT_LABEL[0..31]";
//
// ct_label layout (128 bits):
//   [0..31]   conjunction id of the rule that committed the connection (traces only; ids are
//             stable per rule, translator/rule_ids.h, but a freed id may name a later rule)
//   [32]      checked: the connection ends as soon as its rule no longer allows it. Set for
//             AWS-untracked flows and for every connection under Vpc::strict_revocation
//   [64..95]  rule fingerprint (checked connections only): a hash of what the rule allows
//             (group, direction, protocol, ports/ICMP, resolved peer addresses). It does not
//             depend on the conjunction id (nor on any daemon state: it survives restarts), and
//             it changes when the rule's effect changes (a peer group gains or loses a
//             member), which re-checks its connections
// A checked connection is "live" while the dispatch table has a flow for its fingerprint and
// its ENI still is a member of a group that has the rule (and, outside strict mode, is still
// open in the opposite direction, see kRegOpen); otherwise the original direction is evaluated
// again (another rule may re-commit it) and the reply direction is dropped (kVerdict*Revoked):
// rules describe the original direction only. No conntrack flush is involved.
inline constexpr uint32_t kCtLabelCheckedBit = 32;
inline constexpr uint32_t kCtLabelFingerprintShift = 64;

// reg8: which ENIs have an "opposite direction" open to the whole internet, per protocol and
// family. AWS does not track a TCP/UDP flow allowed by a 0.0.0.0/0 (::/0) rule when the ENI's
// opposite direction allows all ports of that protocol to/from 0.0.0.0/0 (::/0); such flows
// are committed as checked. A per-ENI bit (set with the ENI's registers) keeps this a sum, not
// a product, of rules and ENIs: a rule gets one extra commit flow per (family, protocol).
//   bits 0..3: the SOURCE ENI's ingress is open (consulted at SG egress)
//   bits 4..7: the DESTINATION ENI's egress is open (consulted at SG ingress)
//   within each nibble: bit 0 tcp/IPv4, bit 1 udp/IPv4, bit 2 tcp/IPv6, bit 3 udp/IPv6
// Only set when strict revocation is off (strict mode checks every connection anyway).
inline constexpr uint32_t kOpenSrcMask = 0x0f;  // the source ENI's nibble
inline constexpr uint32_t kOpenDstMask = 0xf0;  // the destination ENI's nibble
[[nodiscard]] constexpr uint32_t openBit(bool ingress_stage, bool ipv6, bool udp) {
  return 1U << ((ingress_stage ? 4 : 0) + (ipv6 ? 2 : 0) + (udp ? 1 : 0));
}

// ---- priorities ----------------------------------------------------------------------------
// SG dispatch tables (kSgEgress, kSgIngress), highest first.
inline constexpr uint16_t kDispatchInvalidPriority = 200;  // +inv: dropped
inline constexpr uint16_t kDispatchLivePriority = 180;     // checked, rule still there: go on
inline constexpr uint16_t kDispatchRevokedPriority = 170;  // checked, rule gone: eval / drop
inline constexpr uint16_t kDispatchTrackedPriority = 160;  // other established/related: go on
// SG evaluation tables: the conjunctions and the plain commit flow of a rule, and above it
// the commit flows that mark AWS-untracked flows as checked.
inline constexpr uint16_t kEvalPriority = 100;
inline constexpr uint16_t kEvalUntrackedPriority = 110;

// NACL entries: lower rule number = higher priority. Rule n -> kNaclBasePriority - n, so rule 1
// is 40000-1 and rule 32766 is 7234; the `*` deny is kNaclStarPriority.
inline constexpr uint16_t kNaclBasePriority = 40000;
inline constexpr uint16_t kNaclStarPriority = 1;

// ---- cookies -------------------------------------------------------------------------------
// 64-bit cookie layout:
//   [63..48] kCookieMagic: "this flow belongs to vpcguard" (dump/delete by this mask only)
//   [47..32] generation: which vpcguardd start wrote the flow. A start adopts the flows that
//            are already right (they keep their generation) and writes what differs with the
//            next generation; flows of older generations it no longer wants are removed in the
//            same atomic bundle, after the new ones (docs/design.md)
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
  kRouter = 6,    // gateway ARP/ND responders, routing inside the subnet (21), unfiltered traffic
  kFlowLog = 7,   // per-interface flow-log counting flows; index = ENI index
  kMirror = 8,    // traffic-mirror filter flows; index = the source ENI index
};

[[nodiscard]] constexpr uint64_t makeCookie(uint16_t generation, CookieKind kind, uint32_t index) {
  return kCookieMagic | (uint64_t{generation} << 32) | (uint64_t{static_cast<uint8_t>(kind)} << 24) |
         (index & 0xffffffULL);
}
[[nodiscard]] constexpr uint16_t cookieGeneration(uint64_t cookie) {
  return static_cast<uint16_t>((cookie >> 32) & 0xffff);
}

// ---- flow logs -----------------------------------------------------------------------------
// sample() actions send IPFIX to Flow_Sample_Collector_Set kCollectorSetId (vpcguardd creates it
// while any flow log exists; without it OVS ignores sample() entirely, so the actions cost
// nothing when no flow log is configured). What a sample means is in its observation domain id:
//   [31..24] kind: a reg4 verdict kind (kVerdict* >> 24) for rejects, or kObs* below
//   [23..0]  for rejects: the reg4 detail (NACL rule number); for kObsCount: bit 16 =
//            ingress side, bits 0..15 = the interface index; for kObsRule: bit 16 = ingress
// and the observation point id is the committing rule's conjunction id for kObsRule, else 0.
inline constexpr uint32_t kCollectorSetId = 0x7667;
// Rejected packets are sampled in kDrop behind this meter (packets per second; vpcguardd creates
// it before any flow names it). A flood of rejects then cannot starve the switch or the
// collector: beyond the rate the meter drops the (rejected anyway) packet without its sample,
// and its band counter says how many were not logged (SKIPDATA).
inline constexpr uint32_t kRejectMeterId = 0x7667;
inline constexpr uint32_t kObsRule = 0x10;   // a connection was committed by this rule (no count)
inline constexpr uint32_t kObsCount = 0x11;  // counted packets no learned flow counted
inline constexpr uint32_t kObsIngressBit = 1U << 16;
// Learned counting flows (tables kFlowLog*Learned) carry this magic, not kCookieMagic: they are
// the switch's per-connection state, never compared with the desired flows.
inline constexpr uint64_t kLearnedCookieMagic = 0x7666ULL << 48;  // "vf"
// Idle timeout of a learned counting flow. vpcguardd reads their counters more often than
// this (kFlowLogPollSeconds), so a flow that expires had no packet since the last read: its
// last counts were already taken and expiry loses nothing.
inline constexpr int kLearnedIdleTimeout = 30;
// ct_mark bits (per zone: the egress side marks in the source ENI's zone, the ingress side in
// the destination's): this direction of the connection went through the miss path (learned a
// counting flow). Its later packets then differ from the miss path's datapath flow in ct_mark,
// so they never run that flow's sample() again: OVS credits such packets to the learned flow
// once it exists (the revalidator re-translates the datapath flow), and they would be counted
// twice. The miss path toggles the bit, so a re-learn after an idle expiry works the same way.
inline constexpr uint32_t kCtMarkOriginalLearned = 0x1;
inline constexpr uint32_t kCtMarkReplyLearned = 0x2;
inline constexpr int kFlowLogPollSeconds = 10;

// ---- traffic mirroring ---------------------------------------------------------------------
// The VXLAN port copies leave through: one per bridge, created by vpcguardd while a session
// exists, `options:remote_ip=flow, key=flow` (each copy sets its VNI and destination). vpcguardd
// marks it with external_ids:vpcguard-role=mirror-tunnel; its OpenFlow port number reaches the
// translator in TranslateInput::ofports under kMirrorTunnelKey (never a valid interface id).
inline constexpr const char* kMirrorTunnelPort = "vg-mirror";
inline constexpr const char* kMirrorTunnelRole = "mirror-tunnel";
inline constexpr const char* kMirrorTunnelKey = "@mirror-tunnel";
// Copies are cut to fit a 1500-byte MTU at the target (or on the underlay) after the 36 bytes of
// outer IPv4, UDP and VXLAN headers, as AWS cuts copies to the target's MTU: a longer one would
// not be sent at all, and on the userspace datapath it would take the copies queued behind it
// in the same output batch with it. packet_length cuts shorter.
inline constexpr int kMirrorMtu = 1500;
inline constexpr int kMirrorMaxCopyBytes = kMirrorMtu - 36;
// Filter rule n of a session has priority kMirrorRuleBasePriority - n (lowest number first, as
// NACLs); a session's "no rule matched" flow has kMirrorMissPriority.
inline constexpr uint16_t kMirrorRuleBasePriority = 40000;
inline constexpr uint16_t kMirrorMissPriority = 1;
// Local targets: copies to an interface on this bridge are routed (ovs-vswitchd's own route
// table, `ovs/route/add`) back into this bridge through its LOCAL port, from kMirrorHostAddress
// (on the bridge's internal device), through a per-target next hop in kMirrorHostSubnet whose
// neighbour entry is the target's MAC. Table UNFILTERED then delivers them like any link-local
// packet from the host.
inline constexpr const char* kMirrorHostSubnet = "169.254.118.0/24";
inline constexpr const char* kMirrorHostAddress = "169.254.118.1";
// Copies to local targets carry this packet mark, and their routes match it (ovs-vswitchd's
// routes are keyed by mark, exactly): a copy whose route is missing (not yet added, being
// replaced, lost with an ovs-vswitchd restart) finds no route and is dropped, instead of
// following the host's own routes out of the machine. VMs cannot reach kMirrorHostSubnet
// (dropped in L3_LOOKUP).
inline constexpr uint32_t kMirrorPktMark = 0x76670001;

// Conjunction ids of SG rules start here (ids below are free for other uses); they end below
// 2^24 (translator/rule_ids.h), so the cookie's index field holds them whole.
inline constexpr uint32_t kConjIdBase = 1000;

// The router's MAC address (the VPC router answers ARP/ND for every subnet's .1).
inline constexpr const char* kRouterMac = "02:76:67:00:00:01";

}  // namespace vpcguard::pipeline
