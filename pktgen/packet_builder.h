// Building the generator's frames and turning received ones into a backend's
// answer. Pure and header-only (no DPDK): the same code fills mbufs on the
// poll lcore and buffers for --pcap, and is unit-testable on plain bytes.
//
// A PacketTemplate is a complete frame (Ethernet [+ 802.1Q] / IPv4 / TCP or
// UDP / zero payload) whose per-packet fields (addresses, ports, TCP sequence,
// stamp) are zero, plus the ones'-complement sums of its constant parts. A
// packet is the template copied, the variable fields stored, and both
// checksums finished from the precomputed sums plus the variable words (the
// sum is linear, RFC 1071), so sent packets carry valid IPv4 and L4 checksums
// at the cost of a few adds.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "flow_set.h"
#include "l4lb/common/checksum.h"
#include "l4lb/dataplane/packet_parser.h"
#include "stamp.h"

namespace l4lb::pktgen {

using dataplane::kProtoTcp;
using dataplane::kProtoUdp;
using dataplane::kTcpAck;
using dataplane::kTcpFin;
using dataplane::kTcpRst;
using dataplane::kTcpSyn;

inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint16_t kMaxFrame = 1518;  // without FCS, with one VLAN tag
inline constexpr uint16_t kEthHeader = 14;
inline constexpr uint16_t kVlanHeader = 4;
inline constexpr uint16_t kIpv4Header = 20;
inline constexpr uint16_t kTcpHeader = 20;
inline constexpr uint16_t kUdpHeader = 8;

struct Mac {
  uint8_t bytes[6] = {0, 0, 0, 0, 0, 0};
};

inline constexpr int kFillFrame = -1;

struct FrameSpec {
  uint16_t frame_len = 64;  // bytes without FCS
  uint8_t proto = kProtoTcp;
  uint8_t tcp_flags = kTcpAck;
  // L4 payload bytes; kFillFrame: the rest of the frame. A shorter payload
  // leaves zero padding after the IP packet (a pure ACK in a 64-byte frame).
  int l4_payload = kFillFrame;
  uint16_t vlan = 0;  // 802.1Q VID; 0 = untagged
  Mac src_mac;
  Mac dst_mac;
};

// Headers only, for the smallest frame that carries a short stamp.
inline uint16_t header_bytes(uint8_t proto, bool vlan) {
  return static_cast<uint16_t>(kEthHeader + (vlan ? kVlanHeader : 0) + kIpv4Header +
                               (proto == kProtoTcp ? kTcpHeader : kUdpHeader));
}
inline uint16_t min_frame(uint8_t proto, bool vlan) {
  return static_cast<uint16_t>(header_bytes(proto, vlan) + kStampShort);
}

class PacketTemplate {
 public:
  // Slow path (or between phases). The caller has checked
  // min_frame(proto, vlan) <= frame_len <= kMaxFrame.
  void init(const FrameSpec& spec) {
    std::memset(bytes_, 0, sizeof bytes_);
    proto_ = spec.proto;
    len_ = spec.frame_len;
    uint8_t* f = bytes_;
    std::memcpy(f, spec.dst_mac.bytes, 6);
    std::memcpy(f + 6, spec.src_mac.bytes, 6);
    uint16_t off = 12;
    if (spec.vlan) {
      store16(f + off, dataplane::kEtherTypeVlan);
      store16(f + off + 2, spec.vlan & 0x0FFF);
      off += 4;
    }
    store16(f + off, dataplane::kEtherTypeIpv4);
    l3_ = static_cast<uint16_t>(off + 2);
    l4_ = static_cast<uint16_t>(l3_ + kIpv4Header);
    const uint16_t l4_header = proto_ == kProtoTcp ? kTcpHeader : kUdpHeader;
    payload_ = static_cast<uint16_t>(l4_ + l4_header);
    room_ = static_cast<uint16_t>(len_ - payload_);
    if (spec.l4_payload != kFillFrame && spec.l4_payload < room_) room_ = static_cast<uint16_t>(spec.l4_payload);
    const auto ip_total = static_cast<uint16_t>(payload_ + room_ - l3_);
    const auto l4_len = static_cast<uint16_t>(payload_ + room_ - l4_);

    uint8_t* ip = f + l3_;
    ip[0] = 0x45;
    store16(ip + 2, ip_total);
    store16(ip + 6, 0x4000);  // DF
    ip[8] = 64;               // TTL
    ip[9] = proto_;
    uint8_t* l4 = f + l4_;
    if (proto_ == kProtoTcp) {
      store32(l4 + 8, (spec.tcp_flags & kTcpAck) ? 1u : 0u);  // ack number
      l4[12] = 0x50;                                          // data offset 5 words
      l4[13] = spec.tcp_flags;
      store16(l4 + 14, 0xFFFF);  // window
      check_at_ = 16;
    } else {
      store16(l4 + 4, l4_len);
      check_at_ = 6;
    }
    ip_sum_ = csum_partial(ip, kIpv4Header);
    uint8_t pseudo[12] = {};
    pseudo[9] = proto_;
    store16(pseudo + 10, l4_len);
    l4_sum_ = csum_partial(l4, l4_len, csum_partial(pseudo, sizeof pseudo));
    if (proto_ == kProtoTcp) {
      // build_tcp() stores its own ack number: the sum without the template's.
      uint8_t ack[4];
      std::memcpy(ack, l4 + 8, 4);
      std::memset(l4 + 8, 0, 4);
      l4_sum_no_ack_ = csum_partial(l4, l4_len, csum_partial(pseudo, sizeof pseudo));
      std::memcpy(l4 + 8, ack, 4);
    }
  }

  uint16_t length() const { return len_; }
  uint16_t stamp_room() const { return room_; }

  // Fast path: writes one frame of length() bytes to `out`.
  void build(uint8_t* out, const Tuple& t, uint64_t tsc, uint8_t kind, uint32_t flow, uint32_t seq) const {
    std::memcpy(out, bytes_, len_);
    uint8_t* ip = out + l3_;
    uint8_t* l4 = out + l4_;
    std::memcpy(ip + 12, &t.src_ip, 4);
    std::memcpy(ip + 16, &t.dst_ip, 4);
    const uint32_t addr_sum = csum_partial(ip + 12, 8);
    const uint16_t ip_check = static_cast<uint16_t>(~csum_fold(ip_sum_ + addr_sum));
    std::memcpy(ip + 10, &ip_check, 2);
    std::memcpy(l4, &t.src_port, 2);
    std::memcpy(l4 + 2, &t.dst_port, 2);
    uint32_t sum = l4_sum_ + addr_sum + csum_partial(l4, 4);
    if (proto_ == kProtoTcp) {
      const uint32_t seq_wire = htonl(seq);
      std::memcpy(l4 + 4, &seq_wire, 4);
      sum += csum_partial(l4 + 4, 4);
    }
    if (room_ >= kStampShort) {
      write_stamp(out + payload_, room_, tsc, kind, flow, seq);
      sum += csum_partial(out + payload_, std::min<uint16_t>(room_, kStampFull));
    }
    uint16_t check = static_cast<uint16_t>(~csum_fold(sum));
    if (proto_ == kProtoUdp && check == 0) check = 0xFFFF;  // RFC 768
    std::memcpy(l4 + check_at_, &check, 2);
  }

  // Fast path, TCP templates: one frame with its own sequence and
  // acknowledgment numbers (host order); the stamp's flow and sequence
  // fields carry `flow` and `seq` when the payload has room for a stamp.
  void build_tcp(uint8_t* out, const Tuple& t, uint32_t seq, uint32_t ack, uint64_t tsc, uint8_t kind,
                 uint32_t flow) const {
    std::memcpy(out, bytes_, len_);
    uint8_t* ip = out + l3_;
    uint8_t* l4 = out + l4_;
    std::memcpy(ip + 12, &t.src_ip, 4);
    std::memcpy(ip + 16, &t.dst_ip, 4);
    const uint32_t addr_sum = csum_partial(ip + 12, 8);
    const uint16_t ip_check = static_cast<uint16_t>(~csum_fold(ip_sum_ + addr_sum));
    std::memcpy(ip + 10, &ip_check, 2);
    std::memcpy(l4, &t.src_port, 2);
    std::memcpy(l4 + 2, &t.dst_port, 2);
    store32(l4 + 4, seq);
    store32(l4 + 8, ack);
    uint32_t sum = l4_sum_no_ack_ + addr_sum + csum_partial(l4, 12);
    if (room_ >= kStampShort) {
      write_stamp(out + payload_, room_, tsc, kind, flow, seq);
      sum += csum_partial(out + payload_, std::min<uint16_t>(room_, kStampFull));
    }
    const uint16_t check = static_cast<uint16_t>(~csum_fold(sum));
    std::memcpy(l4 + check_at_, &check, 2);
  }

 private:
  static void store16(uint8_t* p, uint16_t host) {
    const uint16_t v = htons(host);
    std::memcpy(p, &v, 2);
  }
  static void store32(uint8_t* p, uint32_t host) {
    const uint32_t v = htonl(host);
    std::memcpy(p, &v, 4);
  }

  uint8_t bytes_[kMaxFrame];
  uint32_t ip_sum_ = 0;
  uint32_t l4_sum_ = 0;
  uint32_t l4_sum_no_ack_ = 0;  // TCP: l4_sum_ with the ack number zero
  uint16_t len_ = 0;
  uint16_t l3_ = 0;
  uint16_t l4_ = 0;
  uint16_t payload_ = 0;
  uint16_t room_ = 0;
  uint16_t check_at_ = 0;
  uint8_t proto_ = 0;
};

// Where the payload (and so the stamp) of a parsed TCP/UDP packet starts, and
// how many payload bytes the IP length says it has.
inline void payload_of(const uint8_t* frame, const dataplane::ParsedPacket& p, uint32_t& offset,
                       uint32_t& length) {
  const uint32_t l4_len = p.ip_total_length - (p.l4_offset - p.l3_offset);
  const uint32_t header = p.proto == kProtoTcp ? (frame[p.l4_offset + 12] >> 4) * 4u : kUdpHeader;
  offset = p.l4_offset + header;
  length = l4_len - header;
}

// Fast path: turns a received IPv4 TCP packet, in place, into its peer's
// next segment: Ethernet to the sender's MAC from ours (VLAN tag kept),
// addresses and ports swapped (the checksums do not change under a swap, the
// sum being commutative), then the TCP flags, sequence and acknowledgment
// numbers (host order) stored with the checksum updated incrementally (RFC
// 1624). The payload, and so any stamp, stays.
inline void answer_tcp_in_place(uint8_t* frame, const dataplane::ParsedPacket& p, const Mac& our_mac,
                                uint8_t out_flags, uint32_t seq, uint32_t ack) {
  std::memcpy(frame, frame + 6, 6);
  std::memcpy(frame + 6, our_mac.bytes, 6);
  uint8_t* ip = frame + p.l3_offset;
  uint8_t* l4 = frame + p.l4_offset;
  std::memcpy(ip + 12, &p.dst_ip, 4);
  std::memcpy(ip + 16, &p.src_ip, 4);
  std::memcpy(l4, &p.dst_port, 2);
  std::memcpy(l4 + 2, &p.src_port, 2);
  uint32_t seq_wire, ack_wire;
  std::memcpy(&seq_wire, l4 + 4, 4);
  std::memcpy(&ack_wire, l4 + 8, 4);
  const uint32_t new_seq = htonl(seq);
  const uint32_t new_ack = htonl(ack);
  uint16_t check;
  std::memcpy(&check, l4 + 16, 2);
  uint16_t old_word, new_word;
  std::memcpy(&old_word, l4 + 12, 2);
  l4[13] = out_flags;
  std::memcpy(&new_word, l4 + 12, 2);
  check = csum_update16(check, old_word, new_word);
  check = csum_update32(check, seq_wire, new_seq);
  check = csum_update32(check, ack_wire, new_ack);
  std::memcpy(l4 + 4, &new_seq, 4);
  std::memcpy(l4 + 8, &new_ack, 4);
  std::memcpy(l4 + 16, &check, 2);
}

// A received TCP packet's acknowledgment number, host order.
inline uint32_t tcp_ack_of(const uint8_t* frame, const dataplane::ParsedPacket& p) {
  uint32_t ack_wire;
  std::memcpy(&ack_wire, frame + p.l4_offset + 8, 4);
  return ntohl(ack_wire);
}

// Fast path: rewrites a received IPv4 TCP/UDP packet in place into what a
// backend would answer (DESIGN: closed loop without the kernel):
//   - Ethernet: to the sender's MAC, from ours (VLAN tag kept);
//   - IPv4 and L4: source and destination swapped (the checksums are
//     unchanged by a swap, the sum being commutative);
//   - TCP: SYN -> SYN+ACK (RST+ACK if the stamp asks for a refusal), RST ->
//     no answer, FIN -> FIN+ACK, anything else -> ACK; seq := the peer's ack,
//     ack := the peer's seq + payload (+1 for SYN/FIN); checksum updated
//     incrementally (RFC 1624).
// The payload, and so the stamp, travels back unchanged. Returns false when a
// backend would not answer (the caller frees the packet).
inline bool make_answer(uint8_t* frame, const dataplane::ParsedPacket& p, const Mac& our_mac) {
  if (p.proto != kProtoTcp) {
    std::memcpy(frame, frame + 6, 6);
    std::memcpy(frame + 6, our_mac.bytes, 6);
    uint8_t* ip = frame + p.l3_offset;
    uint8_t* l4 = frame + p.l4_offset;
    std::memcpy(ip + 12, &p.dst_ip, 4);
    std::memcpy(ip + 16, &p.src_ip, 4);
    std::memcpy(l4, &p.dst_port, 2);
    std::memcpy(l4 + 2, &p.src_port, 2);
    return true;
  }
  const uint8_t in = p.tcp_flags;
  if (in & kTcpRst) return false;
  uint32_t offset, length;
  payload_of(frame, p, offset, length);
  uint8_t out;
  uint32_t advance = length;
  if ((in & (kTcpSyn | kTcpAck)) == kTcpSyn) {
    Stamp s;
    const bool refuse = read_stamp(frame + offset, length, s) && (s.kind & kStampRefuse);
    out = refuse ? (kTcpRst | kTcpAck) : (kTcpSyn | kTcpAck);
    advance += 1;
  } else if (in & kTcpFin) {
    out = kTcpFin | kTcpAck;
    advance += 1;
  } else {
    out = static_cast<uint8_t>(kTcpAck | (in & kTcpPsh));
  }
  answer_tcp_in_place(frame, p, our_mac, out, tcp_ack_of(frame, p), p.tcp_seq + advance);
  return true;
}

}  // namespace l4lb::pktgen
