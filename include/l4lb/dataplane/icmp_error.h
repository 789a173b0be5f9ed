// ICMP errors about a NATed flow (DESIGN §3): a router that cannot forward
// one of the flow's packets (fragmentation needed, time exceeded, ...)
// sends the error to the packet's source and quotes the packet. For a
// flow l4lbd translates, that source is an address l4lbd wrote, so the
// error must be translated like the flow's packets (outer and quoted
// headers) and sent to the side that sent the original: path-MTU discovery
// through the appliance depends on it. Pure and header-only: parsing the
// quote, and rewriting the error in place.
#pragma once

#include <cstdint>
#include <cstring>

#include "l4lb/common/checksum.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dataplane {

inline constexpr uint8_t kIcmpDestinationUnreachable = 3;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpParameterProblem = 12;

// The error types that quote the packet they are about (RFC 792).
inline bool is_icmp_error(uint8_t type) {
  return type == kIcmpDestinationUnreachable || type == kIcmpTimeExceeded || type == kIcmpParameterProblem;
}

// The quoted packet: its IPv4 header and at least the 8 bytes after it,
// which hold a TCP or UDP packet's ports. Offsets are from the frame's
// start; addresses and ports in wire order.
struct IcmpQuote {
  uint16_t l3_offset = 0;   // the quoted IPv4 header
  uint16_t l4_offset = 0;   // the quoted TCP/UDP header
  uint16_t end = 0;         // end of the ICMP message
  uint8_t proto = 0;
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

// Reads the quote of an ICMP error `p` (parse_packet said IPv4/ICMP and
// is_icmp_error(p.icmp_type)). True when the quote is a TCP or UDP packet
// l4lbd could have sent (an IPv4 header without options, then its ports);
// anything else is no error of a flow (the kernel, or a drop, has it).
inline bool parse_icmp_quote(const uint8_t* frame, const ParsedPacket& p, IcmpQuote& q) {
  const uint32_t icmp = p.l4_offset;
  const uint32_t end = p.l3_offset + uint32_t{p.ip_total_length};
  const uint32_t inner = icmp + 8;
  if (end < inner + 20 + 8) return false;
  const uint8_t* ip = frame + inner;
  if (ip[0] != 0x45) return false;  // IPv4, no options: what l4lbd sends
  q.proto = ip[9];
  if (q.proto != kProtoTcp && q.proto != kProtoUdp) return false;
  q.l3_offset = static_cast<uint16_t>(inner);
  q.l4_offset = static_cast<uint16_t>(inner + 20);
  q.end = static_cast<uint16_t>(end);
  std::memcpy(&q.src_ip, ip + 12, 4);
  std::memcpy(&q.dst_ip, ip + 16, 4);
  std::memcpy(&q.src_port, ip + 20, 2);
  std::memcpy(&q.dst_port, ip + 22, 2);
  return true;
}

// What an error, after translation, says and where it goes: the outer
// addresses, and the quoted packet's endpoints as the receiver sent it.
struct IcmpTranslation {
  uint32_t outer_src = 0, outer_dst = 0;
  uint32_t quote_src_ip = 0, quote_dst_ip = 0;
  uint16_t quote_src_port = 0, quote_dst_port = 0;
};

// Rewrites the error in place: the outer addresses (IPv4 checksum updated),
// the quoted header's addresses and ports (its IPv4 checksum updated; its
// L4 checksum too when the quote holds it, as the receiver may check it),
// and the ICMP checksum, computed afresh over the message (errors are rare
// and their quotes short).
inline void rewrite_icmp_error(uint8_t* frame, const ParsedPacket& p, const IcmpQuote& q, const IcmpTranslation& t) {
  uint8_t* outer = frame + p.l3_offset;
  uint16_t check;
  std::memcpy(&check, outer + 10, 2);
  check = csum_update32(check, p.src_ip, t.outer_src);
  check = csum_update32(check, p.dst_ip, t.outer_dst);
  std::memcpy(outer + 10, &check, 2);
  std::memcpy(outer + 12, &t.outer_src, 4);
  std::memcpy(outer + 16, &t.outer_dst, 4);

  uint8_t* inner = frame + q.l3_offset;
  uint8_t* l4 = frame + q.l4_offset;
  std::memcpy(&check, inner + 10, 2);
  check = csum_update32(check, q.src_ip, t.quote_src_ip);
  check = csum_update32(check, q.dst_ip, t.quote_dst_ip);
  std::memcpy(inner + 10, &check, 2);
  const uint32_t check_at = q.proto == kProtoTcp ? 16 : 6;
  if (q.l4_offset + check_at + 2 <= q.end) {
    std::memcpy(&check, l4 + check_at, 2);
    if (!(q.proto == kProtoUdp && check == 0)) {
      check = csum_update32(check, q.src_ip, t.quote_src_ip);
      check = csum_update32(check, q.dst_ip, t.quote_dst_ip);
      check = csum_update16(check, q.src_port, t.quote_src_port);
      check = csum_update16(check, q.dst_port, t.quote_dst_port);
      if (q.proto == kProtoUdp && check == 0) check = 0xFFFF;
      std::memcpy(l4 + check_at, &check, 2);
    }
  }
  std::memcpy(inner + 12, &t.quote_src_ip, 4);
  std::memcpy(inner + 16, &t.quote_dst_ip, 4);
  std::memcpy(l4, &t.quote_src_port, 2);
  std::memcpy(l4 + 2, &t.quote_dst_port, 2);

  uint8_t* icmp = frame + p.l4_offset;
  icmp[2] = icmp[3] = 0;
  const uint16_t sum = static_cast<uint16_t>(~csum_fold(csum_partial(icmp, q.end - p.l4_offset)));
  std::memcpy(icmp + 2, &sum, 2);
}

}  // namespace l4lb::dataplane
