// Ethernet (+ one 802.1Q tag) / IPv4 / TCP-UDP-ICMP parsing over a byte span.
// Pure and header-only: no DPDK, so it is unit-tested and fuzzed on plain
// buffers. Called per packet by the worker; never allocates, never throws.
//
// Policy (DESIGN §3): IPv4 options are refused (not something a client of a
// VIP sends in practice). Fragments are parsed as far as they go: the first
// carries the L4 header (it must hold all of it, RFC 1858), later ones only
// their place in the datagram; the worker makes them follow the first
// (fragment_table.h). Anything malformed gets one DropReason.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "l4lb/dataplane/drop_reason.h"

namespace l4lb::dataplane {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

enum class PacketKind : uint8_t {
  kDrop,   // see ParsedPacket::drop
  kArp,    // for the kernel (exception path)
  kIpv6,   // for the kernel (exception path)
  kIpv4,   // l3 fields valid; l4 fields valid when proto is TCP or UDP
};

// Offsets are from the start of the frame. Addresses and ports stay in wire
// byte order: the fast path compares them against wire-order snapshot values.
struct ParsedPacket {
  PacketKind kind = PacketKind::kDrop;
  DropReason drop = DropReason::kCount;
  uint8_t proto = 0;
  uint8_t tcp_flags = 0;
  uint16_t l3_offset = 0;
  uint16_t l4_offset = 0;
  uint16_t ip_total_length = 0;  // host order
  uint8_t icmp_type = 0;          // ICMP only
  uint8_t icmp_code = 0;
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  // TCP only, host order: sequence and acknowledgement numbers. A flow keeps
  // each side's last ACK to judge RSTs (DESIGN §3).
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  // Fragments (is_fragment): the datagram's IP id (wire order), this
  // fragment's payload offset in bytes and whether more follow. A later
  // fragment (offset > 0) has no L4 fields.
  bool is_fragment = false;
  bool more_fragments = false;
  uint16_t ip_id = 0;
  uint16_t fragment_offset = 0;
};

// A wire-order (big-endian) 16-bit field as a host-order number.
inline uint16_t be16_to_host(uint16_t wire) {
  if constexpr (std::endian::native == std::endian::little) return static_cast<uint16_t>(wire >> 8 | wire << 8);
  return wire;
}

namespace detail {
inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
  return v;
}
inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline ParsedPacket drop(DropReason reason) {
  ParsedPacket p;
  p.kind = PacketKind::kDrop;
  p.drop = reason;
  return p;
}
}  // namespace detail

inline ParsedPacket parse_packet(const uint8_t* frame, uint32_t len) {
  using detail::drop;
  using detail::load_be16;
  constexpr uint32_t kEthLen = 14;
  if (len < kEthLen) return drop(DropReason::kTruncatedEthernet);
  uint32_t l3 = kEthLen;
  uint16_t ether_type = load_be16(frame + 12);
  if (ether_type == kEtherTypeVlan) {
    if (len < kEthLen + 4) return drop(DropReason::kTruncatedVlan);
    ether_type = load_be16(frame + 16);
    l3 += 4;
  }
  ParsedPacket p;
  p.l3_offset = static_cast<uint16_t>(l3);
  if (ether_type == kEtherTypeArp) {
    p.kind = PacketKind::kArp;
    return p;
  }
  if (ether_type == kEtherTypeIpv6) {
    p.kind = PacketKind::kIpv6;
    return p;
  }
  if (ether_type != kEtherTypeIpv4) return drop(DropReason::kUnsupportedEthertype);

  if (len < l3 + 20) return drop(DropReason::kTruncatedIpv4);
  const uint8_t* ip = frame + l3;
  if ((ip[0] >> 4) != 4) return drop(DropReason::kBadIpVersion);
  const uint32_t ihl = (ip[0] & 0x0F) * 4u;
  if (ihl < 20) return drop(DropReason::kBadIhl);
  if (ihl > 20) return drop(DropReason::kIpOptions);
  const uint16_t total = load_be16(ip + 2);
  // Ethernet may pad short frames, so the frame can be longer than the datagram,
  // never shorter.
  if (total < ihl || l3 + total > len) return drop(DropReason::kBadIpLength);
  p.kind = PacketKind::kIpv4;
  p.proto = ip[9];
  p.ip_total_length = total;
  std::memcpy(&p.src_ip, ip + 12, 4);
  std::memcpy(&p.dst_ip, ip + 16, 4);
  const uint32_t l4 = l3 + ihl;
  p.l4_offset = static_cast<uint16_t>(l4);
  const uint32_t l4_len = total - ihl;

  const uint16_t frag = load_be16(ip + 6);
  if (frag & 0x3FFF) [[unlikely]] {  // MF set or offset != 0
    const uint32_t offset = (frag & 0x1FFFu) * 8u;
    const bool more = frag & 0x2000;
    // Only the last fragment may end off an 8-byte boundary; an empty one
    // carries nothing.
    if (l4_len == 0 || (more && l4_len % 8)) return drop(DropReason::kBadFragment);
    if (offset + l4_len + ihl > 65535) return drop(DropReason::kFragmentOversized);
    p.is_fragment = true;
    p.more_fragments = more;
    p.fragment_offset = static_cast<uint16_t>(offset);
    std::memcpy(&p.ip_id, ip + 4, 2);
    if (offset) return p;
  }
  const uint8_t* h = frame + l4;
  if (p.proto == kProtoTcp) {
    if (l4_len < 20) return drop(DropReason::kTruncatedL4);
    const uint32_t doff = (h[12] >> 4) * 4u;
    if (doff < 20 || doff > l4_len) return drop(DropReason::kBadTcpOffset);
    std::memcpy(&p.src_port, h, 2);
    std::memcpy(&p.dst_port, h + 2, 2);
    p.tcp_flags = h[13];
    p.tcp_seq = detail::load_be32(h + 4);
    p.tcp_ack = detail::load_be32(h + 8);
  } else if (p.proto == kProtoUdp) {
    if (l4_len < 8) return drop(DropReason::kTruncatedL4);
    const uint16_t udp_len = load_be16(h + 4);
    // A first fragment holds only the start of what udp_len covers.
    if (udp_len < 8 || (udp_len > l4_len && !p.is_fragment)) return drop(DropReason::kBadUdpLength);
    std::memcpy(&p.src_port, h, 2);
    std::memcpy(&p.dst_port, h + 2, 2);
  } else if (p.proto == kProtoIcmp) {
    if (l4_len < 8) return drop(DropReason::kTruncatedL4);
    p.icmp_type = h[0];
    p.icmp_code = h[1];
  }
  return p;
}

}  // namespace l4lb::dataplane
