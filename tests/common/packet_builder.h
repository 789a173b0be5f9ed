// Builds Ethernet/IPv4/TCP-UDP frames for tests, with correct checksums
// computed from scratch (never incrementally), and an independent checker.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace l4lb::test {

inline uint32_t ip(const char* dotted) {
  in_addr a{};
  inet_pton(AF_INET, dotted, &a);
  return a.s_addr;  // wire order
}
inline uint32_t host_ip(const char* dotted) { return ntohl(ip(dotted)); }
inline uint16_t port(uint16_t host) { return htons(host); }

// Full recomputation (RFC 1071) over a byte range, big-endian word order.
inline uint16_t full_checksum(const uint8_t* data, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (len & 1) sum += uint32_t{data[len - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

struct PacketSpec {
  uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x10};
  bool vlan = false;
  uint16_t vlan_id = 100;
  uint8_t proto = 6;
  uint32_t src_ip = ip("10.99.0.10");
  uint32_t dst_ip = ip("10.99.0.100");
  uint16_t src_port = port(40000);
  uint16_t dst_port = port(8080);
  uint8_t tcp_flags = 0x02;       // SYN
  uint32_t tcp_seq = 0x11000000;  // host order
  uint32_t tcp_ack = 0;           // host order; sent as is (the ACK flag is tcp_flags')
  uint16_t tcp_window = 0xFF00;
  uint8_t ttl = 64;
  std::string payload;
  bool udp_zero_checksum = false;
};

inline std::vector<uint8_t> build_packet(const PacketSpec& s) {
  std::vector<uint8_t> f;
  f.insert(f.end(), s.dst_mac, s.dst_mac + 6);
  f.insert(f.end(), s.src_mac, s.src_mac + 6);
  if (s.vlan) {
    f.push_back(0x81);
    f.push_back(0x00);
    f.push_back(static_cast<uint8_t>(s.vlan_id >> 8));
    f.push_back(static_cast<uint8_t>(s.vlan_id));
  }
  f.push_back(0x08);
  f.push_back(0x00);
  const size_t l3 = f.size();
  const size_t l4_len = (s.proto == 6 ? 20 : s.proto == 17 ? 8 : 8) + s.payload.size();
  const size_t total = 20 + l4_len;
  f.resize(l3 + total, 0);
  uint8_t* ip4 = f.data() + l3;
  ip4[0] = 0x45;
  ip4[2] = static_cast<uint8_t>(total >> 8);
  ip4[3] = static_cast<uint8_t>(total);
  ip4[4] = 0x12;
  ip4[5] = 0x34;
  ip4[6] = 0x40;  // DF
  ip4[8] = s.ttl;
  ip4[9] = s.proto;
  std::memcpy(ip4 + 12, &s.src_ip, 4);
  std::memcpy(ip4 + 16, &s.dst_ip, 4);
  const uint16_t ipsum = full_checksum(ip4, 20);
  ip4[10] = static_cast<uint8_t>(ipsum >> 8);
  ip4[11] = static_cast<uint8_t>(ipsum);
  uint8_t* l4 = ip4 + 20;
  if (s.proto == 6 || s.proto == 17) {
    std::memcpy(l4, &s.src_port, 2);
    std::memcpy(l4 + 2, &s.dst_port, 2);
  }
  const size_t hdr = s.proto == 6 ? 20 : 8;
  std::memcpy(l4 + hdr, s.payload.data(), s.payload.size());
  if (s.proto == 6) {
    for (int i = 0; i < 4; ++i) {
      l4[4 + i] = static_cast<uint8_t>(s.tcp_seq >> (24 - 8 * i));
      l4[8 + i] = static_cast<uint8_t>(s.tcp_ack >> (24 - 8 * i));
    }
    l4[12] = 0x50;  // data offset 5
    l4[13] = s.tcp_flags;
    l4[14] = static_cast<uint8_t>(s.tcp_window >> 8);
    l4[15] = static_cast<uint8_t>(s.tcp_window);
  } else if (s.proto == 17) {
    l4[4] = static_cast<uint8_t>(l4_len >> 8);
    l4[5] = static_cast<uint8_t>(l4_len);
  } else {
    l4[0] = 8;  // ICMP echo request
  }
  if (s.proto == 6 || s.proto == 17) {
    uint32_t pseudo = 0;
    pseudo += (ntohl(s.src_ip) >> 16) + (ntohl(s.src_ip) & 0xFFFF);
    pseudo += (ntohl(s.dst_ip) >> 16) + (ntohl(s.dst_ip) & 0xFFFF);
    pseudo += s.proto + static_cast<uint32_t>(l4_len);
    uint16_t sum = full_checksum(l4, l4_len, pseudo);
    if (s.proto == 17 && sum == 0) sum = 0xFFFF;
    if (s.proto == 17 && s.udp_zero_checksum) sum = 0;
    const size_t at = s.proto == 6 ? 16 : 6;
    l4[at] = static_cast<uint8_t>(sum >> 8);
    l4[at + 1] = static_cast<uint8_t>(sum);
  } else {
    const uint16_t sum = full_checksum(l4, l4_len);
    l4[2] = static_cast<uint8_t>(sum >> 8);
    l4[3] = static_cast<uint8_t>(sum);
  }
  return f;
}

// An ICMP error from `src` to `dst` (type, code; `rest`, host order, the
// header's last 4 bytes, e.g. the next-hop MTU of "fragmentation needed")
// quoting the first `quote_len` bytes (at most all) of the IPv4 packet in the Ethernet
// frame `quoted`, with the given MACs.
inline std::vector<uint8_t> build_icmp_error(uint32_t src, uint32_t dst, uint8_t type, uint8_t code, uint32_t rest,
                                             const std::vector<uint8_t>& quoted, size_t quote_len,
                                             const uint8_t* dst_mac, const uint8_t* src_mac) {
  PacketSpec s;
  std::memcpy(s.dst_mac, dst_mac, 6);
  std::memcpy(s.src_mac, src_mac, 6);
  s.proto = 1;
  s.src_ip = src;
  s.dst_ip = dst;
  quote_len = std::min(quote_len, quoted.size() - 14);  // a router quotes at most the whole packet
  s.payload.assign(quoted.begin() + 14, quoted.begin() + 14 + static_cast<std::ptrdiff_t>(quote_len));
  std::vector<uint8_t> f = build_packet(s);
  uint8_t* icmp = f.data() + 14 + 20;
  icmp[0] = type;
  icmp[1] = code;
  for (int i = 0; i < 4; ++i) icmp[4 + i] = static_cast<uint8_t>(rest >> (24 - 8 * i));
  icmp[2] = icmp[3] = 0;
  const uint16_t sum = full_checksum(icmp, f.size() - 14 - 20);
  icmp[2] = static_cast<uint8_t>(sum >> 8);
  icmp[3] = static_cast<uint8_t>(sum);
  return f;
}

// True when the IPv4 header checksum and the TCP/UDP checksum (pseudo-header
// included) verify from scratch. A UDP checksum of 0 counts as valid.
inline bool checksums_valid(const uint8_t* frame, size_t len) {
  size_t l3 = 14;
  if (len >= 18 && frame[12] == 0x81 && frame[13] == 0x00) l3 = 18;
  if (len < l3 + 20) return false;
  const uint8_t* ip4 = frame + l3;
  if (full_checksum(ip4, 20) != 0) return false;
  const size_t total = size_t{ip4[2]} << 8 | ip4[3];
  const uint8_t proto = ip4[9];
  const uint8_t* l4 = ip4 + 20;
  const size_t l4_len = total - 20;
  if (proto != 6 && proto != 17) return true;
  if (proto == 17 && l4[6] == 0 && l4[7] == 0) return true;
  uint32_t pseudo = 0;
  for (int i = 12; i < 20; i += 2) pseudo += uint32_t{ip4[i]} << 8 | ip4[i + 1];
  pseudo += proto + static_cast<uint32_t>(l4_len);
  return full_checksum(l4, l4_len, pseudo) == 0;
}

// Cuts the IPv4 packet in `frame` (no VLAN tag) into fragments of at most
// `payload_per_fragment` bytes of its payload (rounded down to a multiple
// of 8), in order, each with its own header (DF clear, MF and offset set,
// header checksum recomputed).
inline std::vector<std::vector<uint8_t>> fragment_frame(const std::vector<uint8_t>& frame, size_t payload_per_fragment) {
  const size_t l3 = 14;
  const size_t total = size_t{frame[l3 + 2]} << 8 | frame[l3 + 3];
  const size_t payload = total - 20;
  const size_t step = payload_per_fragment / 8 * 8;
  std::vector<std::vector<uint8_t>> out;
  for (size_t offset = 0; offset < payload; offset += step) {
    const size_t len = std::min(step, payload - offset);
    std::vector<uint8_t> f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + 20));
    f.insert(f.end(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + 20 + offset),
             frame.begin() + static_cast<std::ptrdiff_t>(l3 + 20 + offset + len));
    uint8_t* ip4 = f.data() + l3;
    ip4[2] = static_cast<uint8_t>((20 + len) >> 8);
    ip4[3] = static_cast<uint8_t>(20 + len);
    const uint16_t field = static_cast<uint16_t>((offset + len < payload ? 0x2000 : 0) | offset / 8);
    ip4[6] = static_cast<uint8_t>(field >> 8);
    ip4[7] = static_cast<uint8_t>(field);
    ip4[10] = ip4[11] = 0;
    const uint16_t sum = full_checksum(ip4, 20);
    ip4[10] = static_cast<uint8_t>(sum >> 8);
    ip4[11] = static_cast<uint8_t>(sum);
    out.push_back(std::move(f));
  }
  return out;
}

// The whole packet back from its fragments (any order, no VLAN tag), with
// the first fragment's Ethernet and IP header; empty if a piece is missing.
inline std::vector<uint8_t> reassemble_frames(const std::vector<std::vector<uint8_t>>& fragments) {
  const size_t l3 = 14;
  std::vector<uint8_t> payload;
  std::vector<bool> have;
  const std::vector<uint8_t>* first = nullptr;
  size_t end = 0;
  for (const auto& f : fragments) {
    const uint8_t* ip4 = f.data() + l3;
    const size_t len = (size_t{ip4[2]} << 8 | ip4[3]) - 20;
    const size_t offset = (size_t{ip4[6] & 0x1Fu} << 8 | ip4[7]) * 8;
    if (offset == 0) first = &f;
    if (!(ip4[6] & 0x20)) end = offset + len;
    if (payload.size() < offset + len) {
      payload.resize(offset + len);
      have.resize(offset + len);
    }
    std::copy(ip4 + 20, ip4 + 20 + len, payload.begin() + static_cast<std::ptrdiff_t>(offset));
    std::fill(have.begin() + static_cast<std::ptrdiff_t>(offset), have.begin() + static_cast<std::ptrdiff_t>(offset + len), true);
  }
  if (!first || !end || payload.size() != end || std::find(have.begin(), have.end(), false) != have.end()) return {};
  std::vector<uint8_t> whole(l3 + 20 + end);
  std::copy(first->begin(), first->begin() + static_cast<std::ptrdiff_t>(l3 + 20), whole.begin());
  std::copy(payload.begin(), payload.end(), whole.begin() + static_cast<std::ptrdiff_t>(l3 + 20));
  uint8_t* ip4 = whole.data() + l3;
  ip4[2] = static_cast<uint8_t>((20 + end) >> 8);
  ip4[3] = static_cast<uint8_t>(20 + end);
  ip4[6] = ip4[7] = 0;
  ip4[10] = ip4[11] = 0;
  const uint16_t sum = full_checksum(ip4, 20);
  ip4[10] = static_cast<uint8_t>(sum >> 8);
  ip4[11] = static_cast<uint8_t>(sum);
  return whole;
}

// IPv6 frames (RFC 8200): the fixed header, `extensions` in order (each
// given as its type and the bytes after its next-header byte: a fragment
// header's 7, another's 1 + 8n with the length byte first), then TCP, UDP
// or ICMPv6 with its checksum over the IPv6 pseudo-header (RFC 8200 §8.1:
// over the upper-layer packet, so only right for a whole datagram).
struct Ipv6Spec {
  uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00};
  uint8_t proto = 6;
  uint16_t src_port = port(40000);
  uint16_t dst_port = port(8080);
  uint8_t tcp_flags = 0x02;
  uint8_t icmp_type = 128;  // echo request
  std::string payload;
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> extensions;
};

// An extension header's bytes after the next-header byte: `units` 8-byte
// units in all (its length byte says units - 1), padded with zeros.
inline std::vector<uint8_t> ipv6_options(uint8_t units) {
  std::vector<uint8_t> body(size_t{units} * 8 - 1, 0);
  body[0] = static_cast<uint8_t>(units - 1);
  return body;
}
// A fragment header's bytes after its next-header byte.
inline std::vector<uint8_t> ipv6_fragment(uint16_t offset, bool more, uint32_t id = 0x01020304) {
  const uint16_t field = static_cast<uint16_t>((offset & 0xFFF8) | (more ? 1 : 0));
  return {0, static_cast<uint8_t>(field >> 8), static_cast<uint8_t>(field), static_cast<uint8_t>(id >> 24),
          static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)};
}

inline std::vector<uint8_t> build_packet6(const Ipv6Spec& s) {
  std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x10, 0x86, 0xDD};
  std::vector<uint8_t> l4;
  if (s.proto == 6) {
    l4.assign(20, 0);
    l4[12] = 0x50;
    l4[13] = s.tcp_flags;
    l4[14] = 0xFF;
  } else if (s.proto == 17) {
    l4.assign(8, 0);
  } else {
    l4.assign(8, 0);
    l4[0] = s.icmp_type;
  }
  if (s.proto == 6 || s.proto == 17) {
    std::memcpy(l4.data(), &s.src_port, 2);
    std::memcpy(l4.data() + 2, &s.dst_port, 2);
  }
  l4.insert(l4.end(), s.payload.begin(), s.payload.end());
  if (s.proto == 17) {
    l4[4] = static_cast<uint8_t>(l4.size() >> 8);
    l4[5] = static_cast<uint8_t>(l4.size());
  }
  uint32_t pseudo = 0;
  for (int i = 0; i < 16; i += 2) pseudo += (uint32_t{s.src[i]} << 8 | s.src[i + 1]) + (uint32_t{s.dst[i]} << 8 | s.dst[i + 1]);
  pseudo += static_cast<uint32_t>(l4.size()) + s.proto;
  uint16_t sum = full_checksum(l4.data(), l4.size(), pseudo);
  if (s.proto == 17 && sum == 0) sum = 0xFFFF;
  const size_t at = s.proto == 6 ? 16 : s.proto == 17 ? 6 : 2;
  l4[at] = static_cast<uint8_t>(sum >> 8);
  l4[at + 1] = static_cast<uint8_t>(sum);
  std::vector<uint8_t> ext;
  for (size_t i = 0; i < s.extensions.size(); ++i) {
    ext.push_back(i + 1 < s.extensions.size() ? s.extensions[i + 1].first : s.proto);
    ext.insert(ext.end(), s.extensions[i].second.begin(), s.extensions[i].second.end());
  }
  const size_t payload = ext.size() + l4.size();
  const uint8_t first = s.extensions.empty() ? s.proto : s.extensions[0].first;
  const uint8_t fixed[8] = {0x60, 0, 0, 0, static_cast<uint8_t>(payload >> 8), static_cast<uint8_t>(payload), first, 64};
  f.insert(f.end(), fixed, fixed + 8);
  f.insert(f.end(), s.src, s.src + 16);
  f.insert(f.end(), s.dst, s.dst + 16);
  f.insert(f.end(), ext.begin(), ext.end());
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

}  // namespace l4lb::test
