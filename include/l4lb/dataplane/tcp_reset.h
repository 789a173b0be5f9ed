// Turns a client's TCP segment into the RST that answers it (RFC 793 §3.4,
// "Reset Generation"), in place. Used when a flow's backend is gone and the
// VIP's down_policy is reset: the client learns at once instead of timing
// out. Pure and header-only; rare, so checksums are computed in full.
#pragma once

#include <cstdint>
#include <cstring>

#include "l4lb/common/checksum.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dataplane {

// `frame` holds the parsed segment `p` from the client. Rewrites it into a
// RST from the segment's destination back to its source, sent to `to_mac`
// from `from_mac`. Returns the new frame length (headers only: l4 + 20).
inline uint32_t make_tcp_reset_reply(uint8_t* frame, const ParsedPacket& p, const MacAddress& to_mac,
                                     const MacAddress& from_mac) {
  uint8_t* ip = frame + p.l3_offset;
  uint8_t* tcp = frame + p.l4_offset;
  const auto load32 = [](const uint8_t* b) {
    return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
  };
  const auto store32 = [](uint8_t* b, uint32_t v) {
    b[0] = static_cast<uint8_t>(v >> 24);
    b[1] = static_cast<uint8_t>(v >> 16);
    b[2] = static_cast<uint8_t>(v >> 8);
    b[3] = static_cast<uint8_t>(v);
  };
  const uint32_t doff = (tcp[12] >> 4) * 4u;
  const uint32_t payload = p.ip_total_length - (p.l4_offset - p.l3_offset) - doff;
  const uint32_t seq = load32(tcp + 4);
  const uint32_t ack = load32(tcp + 8);
  const uint8_t flags = tcp[13];

  set_ethernet_addresses(frame, to_mac, from_mac);
  // IPv4: swap addresses, 40-byte datagram, fresh header checksum.
  std::memcpy(ip + 12, &p.dst_ip, 4);
  std::memcpy(ip + 16, &p.src_ip, 4);
  ip[2] = 0;
  ip[3] = 40;
  ip[8] = 64;  // TTL
  ip[10] = ip[11] = 0;
  const uint16_t ip_sum = static_cast<uint16_t>(~csum_fold(csum_partial(ip, 20)));
  std::memcpy(ip + 10, &ip_sum, 2);

  // TCP: swap ports; RFC 793: if the segment has ACK, RST takes seq = its
  // ack; otherwise seq 0 and ACK of everything the segment occupied.
  std::memcpy(tcp, &p.dst_port, 2);
  std::memcpy(tcp + 2, &p.src_port, 2);
  if (flags & kTcpAck) {
    store32(tcp + 4, ack);
    store32(tcp + 8, 0);
    tcp[13] = kTcpRst;
  } else {
    const uint32_t occupied = payload + ((flags & kTcpSyn) ? 1 : 0) + ((flags & kTcpFin) ? 1 : 0);
    store32(tcp + 4, 0);
    store32(tcp + 8, seq + occupied);
    tcp[13] = kTcpRst | kTcpAck;
  }
  tcp[12] = 5 << 4;
  tcp[14] = tcp[15] = 0;  // window
  tcp[16] = tcp[17] = 0;  // checksum
  tcp[18] = tcp[19] = 0;  // urgent pointer
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = kProtoTcp;
  pseudo[10] = 0;
  pseudo[11] = 20;
  const uint16_t tcp_sum = static_cast<uint16_t>(~csum_fold(csum_partial(tcp, 20, csum_partial(pseudo, 12))));
  std::memcpy(tcp + 16, &tcp_sum, 2);
  return p.l4_offset + 20u;
}

}  // namespace l4lb::dataplane
