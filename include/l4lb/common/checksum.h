// Internet checksum arithmetic (RFC 1071) and incremental update (RFC 1624).
// Pure and header-only: used per packet on the fast path and by tests.
//
// The ones'-complement sum is independent of byte order (RFC 1071 §2(B)), so
// every function here works on 16-bit words exactly as they sit in the packet:
// callers pass wire-order values loaded with memcpy and store results back
// the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace l4lb {

// Folds a 32-bit accumulator into 16 bits with end-around carry.
inline uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xFFFF) + (sum >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Sum of 16-bit words of `len` bytes (odd tail padded with zero), not complemented.
inline uint32_t csum_partial(const void* data, size_t len, uint32_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0;
    std::memcpy(&w, p, 1);
    sum += w;
  }
  return (sum & 0xFFFF) + (sum >> 16);
}

// Folds a 64-bit accumulator of 16- or 32-bit words into 16 bits: the
// ones'-complement sum may be taken over wider words (RFC 1071 §2(C)).
inline uint16_t csum_fold64(uint64_t sum) {
  sum = (sum & 0xFFFFFFFF) + (sum >> 32);
  sum = (sum & 0xFFFFFFFF) + (sum >> 32);
  return csum_fold(static_cast<uint32_t>(sum));
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field change.
inline uint16_t csum_update16(uint16_t check, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~check);
  sum += static_cast<uint16_t>(~old_word);
  sum += new_word;
  return static_cast<uint16_t>(~csum_fold(sum));
}

// Same for a 32-bit field (an IPv4 address), as two 16-bit words.
inline uint16_t csum_update32(uint16_t check, uint32_t old_value, uint32_t new_value) {
  uint32_t sum = static_cast<uint16_t>(~check);
  sum += static_cast<uint16_t>(~old_value) + static_cast<uint16_t>(~(old_value >> 16));
  sum += (new_value & 0xFFFF) + (new_value >> 16);
  return static_cast<uint16_t>(~csum_fold(sum));
}

}  // namespace l4lb
