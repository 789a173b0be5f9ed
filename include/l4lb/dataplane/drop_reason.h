// Why the fast path dropped a packet. Every drop is counted under one reason.
#pragma once

#include <cstdint>

namespace l4lb::dataplane {

enum class DropReason : uint8_t {
  // parse: the packet itself is malformed
  kTruncatedEthernet,
  kTruncatedVlan,
  kTruncatedIpv4,
  kBadIpVersion,
  kBadIhl,
  kIpOptions,
  kBadIpLength,
  kBadFragment,        // empty, or a non-last fragment not a multiple of 8 bytes
  kFragmentOversized,  // ends past 65535 bytes
  kTruncatedL4,
  kTruncatedIpv6,
  kIpv6ExtensionHeaders,  // truncated, too many, hop-by-hop not first, two fragment headers
  kIpv6RoutingHeader,     // segments left: source routing through the appliance
  kBadTcpOffset,
  kBadUdpLength,
  kUnsupportedEthertype,
  kBadSourceAddress,   // multicast, broadcast, 0.0.0.0/8 or loopback source
  kSpoofedSource,      // source is one of our own addresses or a VIP
  kLand,               // source == destination
  // classify / flow: well-formed but nothing to do with it
  kNotForUs,
  kReverseNoFlow,
  kTcpMissPolicy,
  kFlowTableFull,
  kSnatExhausted,
  kNoBackend,
  kNeighbourUnresolved,
  kBackendDown,  // a flow of a down backend under down_policy: reset (non-TCP or reply side)
  kSynLimit,     // the VIP's max_embryonic (unconfirmed flows) is reached
  kClosedVipPort,   // a VIP address on a port/protocol no VIP serves (or past the reject rate)
  kRstOutOfWindow,  // a RST far from its sender's tracked sequence: spoofed or stale
  kSnatPoolsFull,   // no SNAT pool left for a new (SNAT address, backend) pair
  kIcmpErrorNoFlow,  // an ICMP error quoting a packet of a flow this appliance does not hold
  // fragments (fragment_table.h): each counts the fragments it dropped
  kFragmentOverlap,     // overlaps a fragment already seen: the datagram is dropped
  kFragmentTimeout,     // held for a first fragment that did not come in time
  kFragmentTableFull,   // held by the oldest datagram, evicted for a new one
  kFragmentLimit,       // the datagram needs more than the tracker holds (pieces, held fragments)
  kFragmentOfDropped,   // a later fragment of a datagram whose first was dropped (counted there)
  // queues
  kSlowPathFull,
  kSlowPathLimit,   // best-effort packets for the kernel past the worker's rate limit
  kControlPathFull,
  kHandoffFull,
  kTxFull,
  kCount
};

inline constexpr const char* kDropReasonNames[] = {
    "truncated_ethernet", "truncated_vlan",  "truncated_ipv4",    "bad_ip_version",
    "bad_ihl",            "ip_options",      "bad_ip_length",     "bad_fragment",       "fragment_oversized",
    "truncated_l4",       "truncated_ipv6",  "ipv6_extension_headers", "ipv6_routing_header",
    "bad_tcp_offset",  "bad_udp_length",    "unsupported_ethertype",
    "bad_source_address", "spoofed_source",  "land",
    "not_for_us",         "reverse_no_flow", "tcp_miss_policy",   "flow_table_full",
    "snat_exhausted",     "no_backend",      "neighbour_unresolved", "backend_down",         "syn_limit",
    "closed_vip_port",    "rst_out_of_window", "snat_pools_full",   "icmp_error_no_flow",
    "fragment_overlap",   "fragment_timeout",  "fragment_table_full", "fragment_limit",     "fragment_of_dropped",
    "slow_path_full",     "slow_path_limit",   "control_path_full",
    "handoff_full",       "tx_full",
};
static_assert(sizeof(kDropReasonNames) / sizeof(kDropReasonNames[0]) ==
              static_cast<size_t>(DropReason::kCount));

inline const char* drop_reason_name(DropReason r) {
  return kDropReasonNames[static_cast<size_t>(r)];
}

}  // namespace l4lb::dataplane
