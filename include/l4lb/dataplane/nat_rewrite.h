// In-place L2/L3/L4 rewrites with incremental checksum updates (RFC 1624).
// Pure and header-only; called per packet by the worker once a flow is known.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "l4lb/common/checksum.h"
#include "l4lb/common/mac_address.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dataplane {

// The wire-order endpoints a packet leaves with.
struct Ipv4Tuple {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
};
static_assert(offsetof(Ipv4Tuple, dst_port) == offsetof(Ipv4Tuple, src_port) + 2);

inline void set_ethernet_addresses(uint8_t* frame, const MacAddress& dst, const MacAddress& src) {
  std::memcpy(frame, dst.bytes, 6);
  std::memcpy(frame + 6, src.bytes, 6);
}

// Rewrites addresses and ports of a parsed IPv4 TCP/UDP packet to `to`, fixing
// the IPv4 header checksum and the L4 checksum (whose pseudo-header covers the
// addresses). A UDP checksum of zero means "none" (RFC 768) and stays zero.
inline void rewrite_ipv4_tuple(uint8_t* frame, const ParsedPacket& p, const Ipv4Tuple& to) {
  uint8_t* ip = frame + p.l3_offset;
  uint8_t* l4 = frame + p.l4_offset;

  // RFC 1624 eqn. 3 for all changed words at once, summed in 32-bit words:
  // ~m + m' for both addresses (they are in the IPv4 header and in the L4
  // pseudo-header), then for both ports (L4 only). One fold per checksum.
  const uint64_t address_change = uint64_t{~p.src_ip} + uint32_t{~p.dst_ip} + to.src_ip + to.dst_ip;
  uint32_t old_ports, new_ports;
  std::memcpy(&old_ports, l4, 4);
  std::memcpy(&new_ports, &to.src_port, 4);  // src_port, dst_port: adjacent in Ipv4Tuple as on the wire

  uint16_t ip_check;
  std::memcpy(&ip_check, ip + 10, 2);
  ip_check = static_cast<uint16_t>(~csum_fold64(uint16_t(~ip_check) + address_change));
  std::memcpy(ip + 10, &ip_check, 2);
  std::memcpy(ip + 12, &to.src_ip, 4);
  std::memcpy(ip + 16, &to.dst_ip, 4);

  const size_t check_at = p.proto == kProtoTcp ? 16 : 6;
  uint16_t l4_check;
  std::memcpy(&l4_check, l4 + check_at, 2);
  const bool udp_without_checksum = p.proto == kProtoUdp && l4_check == 0;
  if (!udp_without_checksum) {
    l4_check = static_cast<uint16_t>(
        ~csum_fold64(uint16_t(~l4_check) + address_change + uint32_t{~old_ports} + new_ports));
    // In UDP a computed zero is sent as all ones (RFC 768).
    if (p.proto == kProtoUdp && l4_check == 0) l4_check = 0xFFFF;
    std::memcpy(l4 + check_at, &l4_check, 2);
  }
  std::memcpy(l4, &new_ports, 4);
}

}  // namespace l4lb::dataplane
