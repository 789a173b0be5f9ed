// Where a parsed packet goes, decided in one place and in one order
// (DESIGN §3). Pure and header-only: the worker calls it per packet, the unit
// tests and the packet fuzzer call it without DPDK.
//
//  1. ARP -> control (the kernel answers; never starved by a flood).
//  2. Sources no peer can have (0/8, loopback, multicast/reserved, our own
//     addresses and VIPs, source == destination) -> drop.
//  3. To an appliance address, unless it is an SNAT reply (an SNAT address
//     and a port of the SNAT range) -> the kernel: control when it comes
//     from a backend or gateway (probe answers), the slow path otherwise.
//  4. A VIP's service -> forward direction of a flow.
//  5. An SNAT reply -> reverse direction (FNAT).
//  6. From a DNAT backend's service -> reverse direction (DNAT).
//  7. TCP/UDP to a VIP address on a port no VIP serves -> closed-port
//     policy; ICMP to a VIP -> the kernel (it answers echo).
//  8. Anything else -> drop (not_for_us).
#pragma once

#include <cstdint>

#include "l4lb/dataplane/drop_reason.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/lookup_table.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/snapshot.h"

namespace l4lb::dataplane {

enum class Verdict : uint8_t {
  kDrop,        // Classification::drop says why
  kControl,     // to the kernel, ahead of everything else
  kSlowPath,    // to the kernel, best effort
  kForward,     // client -> VIP: Classification::vip
  kReverse,     // backend -> us (FNAT) or -> client (DNAT)
  kClosedPort,  // a VIP address, a port nobody serves
};

inline constexpr uint32_t kAnyOwner = ~0u;  // the worker that received it owns it

struct Classification {
  Verdict verdict = Verdict::kDrop;
  DropReason drop = DropReason::kCount;
  uint32_t vip = LookupTable::kNotFound;  // kForward: index into Snapshot::vips
  uint32_t owner = kAnyOwner;             // kForward / kReverse: the worker holding the flow
};

// A source address no host on the wire can legitimately use: 0.0.0.0/8,
// 127.0.0.0/8, multicast and reserved 224.0.0.0/3 (incl. 255.255.255.255).
// Wire order: the first octet is the first byte in memory.
inline bool is_valid_source(uint32_t ip_wire) {
  const uint8_t first = reinterpret_cast<const uint8_t*>(&ip_wire)[0];
  return first != 0 && first != 127 && first < 224;
}

// Per packet on the worker, so forced inline; the rules are checked in an
// order that gives the same answers as the list above with the fewest
// lookups for the common cases (a VIP service: two lookups, an SNAT reply:
// three): a VIP service or an SNAT reply is never to an own address that
// rule 3 would claim (VIPs and own addresses are disjoint; SNAT replies are
// its exception), so they may go first.
[[gnu::always_inline]] inline Classification classify(const Snapshot& snap, const ParsedPacket& p,
                                                      const SnatPartition& partition, uint32_t workers) {
  const auto verdict = [](Verdict v) { return Classification{v, DropReason::kCount, LookupTable::kNotFound, kAnyOwner}; };
  const auto drop = [](DropReason r) { return Classification{Verdict::kDrop, r, LookupTable::kNotFound, kAnyOwner}; };
  switch (p.kind) {
    case PacketKind::kDrop:
      return drop(p.drop);
    case PacketKind::kArp:
      return verdict(Verdict::kControl);
    case PacketKind::kIpv6:
      // Neighbour discovery is IPv6's ARP: control, never rate-limited.
      if (p.proto == kProtoIcmpv6 && p.icmp_type >= kIcmpv6RouterSolicitation &&
          p.icmp_type <= kIcmpv6Redirect && !p.is_fragment())
        return verdict(Verdict::kControl);
      return verdict(Verdict::kSlowPath);
    case PacketKind::kIpv4:
      break;
  }
  constexpr uint32_t kNotFound = LookupTable::kNotFound;
  if (!is_valid_source(p.src_ip)) return drop(DropReason::kBadSourceAddress);
  if (p.src_ip == p.dst_ip) return drop(DropReason::kLand);
  if (snap.address_kind(p.src_ip)) return drop(DropReason::kSpoofedSource);

  const bool l4 = p.proto == kProtoTcp || p.proto == kProtoUdp;
  if (l4) {
    const uint32_t vip = snap.vip_by_service.find(service_key(p.dst_ip, p.dst_port, p.proto));
    if (vip != kNotFound) {
      const uint32_t owner =
          snap.vips[vip].mode == NatMode::kDnat ? dnat_owner(p.src_ip, p.src_port, workers) : kAnyOwner;
      return Classification{Verdict::kForward, DropReason::kCount, vip, owner};
    }
    const uint16_t dport = be16_to_host(p.dst_port);
    if (partition.contains(dport) && snap.snat_slot_by_address.find(address_key(p.dst_ip)) != kNotFound)
      return Classification{Verdict::kReverse, DropReason::kCount, kNotFound, partition.owner(dport)};
  }
  const uint32_t dst_kind = snap.address_kind(p.dst_ip);
  if (dst_kind & kAddressOwn)
    return verdict(snap.control_sources.find(address_key(p.src_ip)) != kNotFound ? Verdict::kControl
                                                                                 : Verdict::kSlowPath);
  if (l4 && snap.dnat_vip_by_backend.find(service_key(p.src_ip, p.src_port, p.proto)) != kNotFound)
    return Classification{Verdict::kReverse, DropReason::kCount, kNotFound, dnat_owner(p.dst_ip, p.dst_port, workers)};
  if (dst_kind & kAddressVip)
    return l4 ? verdict(Verdict::kClosedPort)
              : p.proto == kProtoIcmp ? verdict(Verdict::kSlowPath) : drop(DropReason::kClosedVipPort);
  return drop(DropReason::kNotForUs);
}

}  // namespace l4lb::dataplane
