// Ethernet (+ one 802.1Q tag) / IPv4 or IPv6 / TCP-UDP-ICMP(v6) parsing over
// a byte span.
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
inline constexpr uint8_t kProtoIcmpv6 = 58;
// ICMPv6 neighbour discovery (RFC 4861): router solicitation .. redirect.
inline constexpr uint8_t kIcmpv6RouterSolicitation = 133;
inline constexpr uint8_t kIcmpv6Redirect = 137;
// IPv6 extension headers walked by the parser.
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6DestinationOptions = 60;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

enum class PacketKind : uint8_t {
  kDrop,   // see ParsedPacket::drop
  kArp,    // for the kernel (exception path)
  kIpv6,   // l3/l4 fields as for IPv4 but the addresses (read from the frame); for the kernel
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
  // Fragments: this one's payload offset in bytes, with bit 0 set when
  // more follow (0: not a fragment), and the datagram's id (IPv4: 16 bits,
  // IPv6: 32, wire order). A later fragment (offset > 0) has no L4 fields.
  // Packed so that the whole stays 40 bytes: a burst's 64 are written per
  // packet.
  uint16_t fragment = 0;
  uint32_t fragment_id = 0;

  bool is_fragment() const { return fragment != 0; }
  bool more_fragments() const { return fragment & 1; }
  uint16_t fragment_offset() const { return fragment & 0xFFF8; }
};
static_assert(sizeof(ParsedPacket) == 40);

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

// The TCP, UDP or ICMP(v6) header at `h`, followed by `l4_len` bytes of the
// datagram (of a first fragment: of this fragment). kCount when well formed.
[[gnu::always_inline]] inline DropReason parse_l4(const uint8_t* h, uint32_t l4_len, ParsedPacket& p) {
  if (p.proto == kProtoTcp) {
    if (l4_len < 20) return DropReason::kTruncatedL4;
    const uint32_t doff = (h[12] >> 4) * 4u;
    if (doff < 20 || doff > l4_len) return DropReason::kBadTcpOffset;
    std::memcpy(&p.src_port, h, 2);
    std::memcpy(&p.dst_port, h + 2, 2);
    p.tcp_flags = h[13];
    p.tcp_seq = load_be32(h + 4);
    p.tcp_ack = load_be32(h + 8);
  } else if (p.proto == kProtoUdp) {
    if (l4_len < 8) return DropReason::kTruncatedL4;
    const uint16_t udp_len = load_be16(h + 4);
    // A first fragment holds only the start of what udp_len covers.
    if (udp_len < 8 || (udp_len > l4_len && !p.is_fragment())) return DropReason::kBadUdpLength;
    std::memcpy(&p.src_port, h, 2);
    std::memcpy(&p.dst_port, h + 2, 2);
  } else if (p.proto == kProtoIcmp || p.proto == kProtoIcmpv6) {
    if (l4_len < 8) return DropReason::kTruncatedL4;
    p.icmp_type = h[0];
    p.icmp_code = h[1];
  }
  return DropReason::kCount;
}

// A fragment's place (payload bytes from `offset`, `length` of them):
// kCount when it can be part of a datagram.
inline DropReason check_fragment(uint32_t offset, uint32_t length, bool more, uint32_t max_end) {
  // Only the last fragment may end off an 8-byte boundary; an empty one
  // carries nothing.
  if (length == 0 || (more && length % 8)) return DropReason::kBadFragment;
  if (offset + length > max_end) return DropReason::kFragmentOversized;
  return DropReason::kCount;
}

// IPv6 (RFC 8200) after the Ethernet header at `l3`: the extension headers
// a host must process are walked, each within the payload, at most
// kMaxIpv6ExtensionHeaders of them, to the upper-layer header. Policy
// (DESIGN §3 step 2): hop-by-hop only first; a routing header with
// segments left (source routing through us) and a second fragment header
// are refused; ESP, AH and the rest end the walk like an unknown protocol.
inline constexpr uint32_t kMaxIpv6ExtensionHeaders = 8;

// Out of line: IPv4 is the fast path's case, and this must not crowd it.
// Builds its own result, returned straight into the caller's (a packet
// passed in by value or by address would have to live in memory, and the
// IPv4 path's stores would stall reading it back).
[[gnu::noinline]] inline ParsedPacket parse_ipv6(const uint8_t* frame, uint32_t len, uint32_t l3) {
  ParsedPacket p;
  p.l3_offset = static_cast<uint16_t>(l3);
  if (len < l3 + 40) return drop(DropReason::kTruncatedIpv6);
  const uint8_t* ip = frame + l3;
  if ((ip[0] >> 4) != 6) return drop(DropReason::kBadIpVersion);
  const uint32_t payload = load_be16(ip + 4);
  // Zero is a jumbogram's (RFC 2675): no link here carries one.
  if (payload == 0 || l3 + 40 + payload > len) return drop(DropReason::kBadIpLength);
  p.kind = PacketKind::kIpv6;
  p.ip_total_length = static_cast<uint16_t>(40 + payload);
  const uint32_t end = l3 + 40 + payload;
  uint32_t at = l3 + 40;
  uint8_t next = ip[6];
  uint32_t fragmentable = 0;  // where a fragment's data starts
  for (uint32_t count = 0;; ++count) {
    const bool extension = next == kIpv6HopByHop || next == kIpv6Routing || next == kIpv6Fragment ||
                           next == kIpv6DestinationOptions;
    if (!extension) break;
    if (count == kMaxIpv6ExtensionHeaders || at + 8 > end) return drop(DropReason::kIpv6ExtensionHeaders);
    const uint8_t* x = frame + at;
    if (next == kIpv6Fragment) {
      if (fragmentable) return drop(DropReason::kIpv6ExtensionHeaders);
      const uint16_t field = load_be16(x + 2);
      fragmentable = at + 8;
      // An atomic fragment (offset 0, no more) is a whole packet (RFC 6946).
      if (field & 0xFFF9) {
        p.fragment = static_cast<uint16_t>(field & 0xFFF9);
        std::memcpy(&p.fragment_id, x + 4, 4);
      }
      next = x[0];
      at += 8;
      // A later fragment's data is no header of ours.
      if (p.fragment_offset()) break;
      continue;
    }
    if (next == kIpv6HopByHop && at != l3 + 40) return drop(DropReason::kIpv6ExtensionHeaders);
    const uint32_t size = (x[1] + 1u) * 8u;
    if (at + size > end) return drop(DropReason::kIpv6ExtensionHeaders);
    if (next == kIpv6Routing && x[3] != 0) return drop(DropReason::kIpv6RoutingHeader);
    next = x[0];
    at += size;
  }
  p.proto = next;
  p.l4_offset = static_cast<uint16_t>(at);
  if (p.is_fragment()) {
    const DropReason why = check_fragment(p.fragment_offset(), end - fragmentable, p.more_fragments(), 65535);
    if (why != DropReason::kCount) return drop(why);
    if (p.fragment_offset()) return p;
  }
  if (const DropReason why = parse_l4(frame + at, end - at, p); why != DropReason::kCount) return drop(why);
  return p;
}
}  // namespace detail

// Inlined into the burst loop (it was, by itself, until IPv6 made it big).
[[gnu::always_inline]] inline ParsedPacket parse_packet(const uint8_t* frame, uint32_t len) {
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
  if (ether_type == kEtherTypeIpv6) return detail::parse_ipv6(frame, len, l3);
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
    if (const DropReason why = detail::check_fragment(offset, l4_len, more, 65535 - ihl); why != DropReason::kCount)
      return drop(why);
    p.fragment = static_cast<uint16_t>(offset | more);
    uint16_t id;
    std::memcpy(&id, ip + 4, 2);
    p.fragment_id = id;
    if (offset) return p;
  }
  if (const DropReason why = detail::parse_l4(frame + l4, l4_len, p); why != DropReason::kCount) return drop(why);
  return p;
}

}  // namespace l4lb::dataplane
