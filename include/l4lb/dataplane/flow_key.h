// The 5-tuple that keys the per-worker flow table, and the deterministic hash
// that indexes a VIP's Maglev table.
#pragma once

#include <cstdint>

#include "l4lb/common/hash.h"

namespace l4lb::dataplane {

// Wire-order fields exactly as they appear in the packet, padded to 16 bytes
// so the key compares as two 64-bit words.
struct FlowKey {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
  uint8_t pad[3];
};
static_assert(sizeof(FlowKey) == 16);

inline FlowKey make_flow_key(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                             uint16_t dst_port, uint8_t proto) {
  return FlowKey{src_ip, dst_ip, src_port, dst_port, proto, {0, 0, 0}};
}

// Maglev flow hash (DESIGN §5): must give the same value for a 5-tuple on any
// machine and any run, so two appliances with the same config pick the same
// backend. The tuple packed into two words, mixed with common/hash.h's
// fmix64; no seed is random, nothing depends on the CPU (no CRC
// instructions).
inline uint64_t maglev_flow_hash(uint32_t client_ip, uint16_t client_port, uint32_t vip_ip,
                                 uint16_t vip_port, uint8_t proto) {
  const uint64_t a = (uint64_t{client_ip} << 32) | vip_ip;
  const uint64_t b = (uint64_t{client_port} << 32) | (uint64_t{vip_port} << 16) | proto;
  return fmix64(a ^ fmix64(b + kGoldenGamma));
}

}  // namespace l4lb::dataplane
