// Turns a UDP datagram to a port nobody serves into the ICMP port
// unreachable that answers it (RFC 792; RFC 1122 §3.2.2.1), in place: what a
// host says for a closed UDP port (closed_vip_ports: reject). Pure and
// header-only; rare and rate-limited, so checksums are computed in full.
#pragma once

#include <cstdint>
#include <cstring>

#include "l4lb/common/checksum.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dataplane {

inline constexpr uint32_t kIcmpQuoteBytes = 20 + 8;  // the IPv4 header and 8 bytes of what follows

// Frame length of the answer to `p` (the frame must hold this many bytes).
inline uint32_t icmp_port_unreachable_length(const ParsedPacket& p) { return p.l3_offset + 20u + 8u + kIcmpQuoteBytes; }

// `frame` holds the parsed IPv4 packet `p` (no IP options: the parser
// refuses them) and has room for icmp_port_unreachable_length(p) bytes.
// Rewrites it into the ICMP error from the packet's destination back to its
// source, sent to `to_mac` from `from_mac`. Returns the new frame length.
inline uint32_t make_icmp_port_unreachable(uint8_t* frame, const ParsedPacket& p, const MacAddress& to_mac,
                                           const MacAddress& from_mac) {
  uint8_t* ip = frame + p.l3_offset;
  uint8_t* icmp = ip + 20;
  uint8_t quote[kIcmpQuoteBytes];
  std::memcpy(quote, ip, sizeof quote);
  std::memcpy(icmp + 8, quote, sizeof quote);

  set_ethernet_addresses(frame, to_mac, from_mac);
  const uint16_t total = 20 + 8 + kIcmpQuoteBytes;
  ip[0] = 0x45;
  ip[1] = 0;
  ip[2] = static_cast<uint8_t>(total >> 8);
  ip[3] = static_cast<uint8_t>(total);
  ip[4] = ip[5] = 0;  // id
  ip[6] = ip[7] = 0;  // no fragmentation flags
  ip[8] = 64;         // TTL
  ip[9] = kProtoIcmp;
  ip[10] = ip[11] = 0;
  std::memcpy(ip + 12, &p.dst_ip, 4);
  std::memcpy(ip + 16, &p.src_ip, 4);
  const uint16_t ip_sum = static_cast<uint16_t>(~csum_fold(csum_partial(ip, 20)));
  std::memcpy(ip + 10, &ip_sum, 2);

  icmp[0] = 3;  // destination unreachable
  icmp[1] = 3;  // port unreachable
  icmp[2] = icmp[3] = 0;
  icmp[4] = icmp[5] = icmp[6] = icmp[7] = 0;
  const uint16_t icmp_sum = static_cast<uint16_t>(~csum_fold(csum_partial(icmp, 8 + kIcmpQuoteBytes)));
  std::memcpy(icmp + 2, &icmp_sum, 2);
  return icmp_port_unreachable_length(p);
}

}  // namespace l4lb::dataplane
