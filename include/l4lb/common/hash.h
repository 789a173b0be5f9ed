// The hashes two appliances must agree on (DESIGN §5). Both the flow hash
// (dataplane/flow_key.h: which Maglev slot a 5-tuple reads) and the backend
// hash (maglev/maglev.cc: each backend's permutation) are built from these
// two pieces, so there is one copy of each to keep stable: a change here
// changes every table and every flow's backend, and tests/unit/maglev and
// tests/unit/common pin known values.
//
// Nothing here may depend on the machine: no seeds chosen at run time, no
// CRC or AES instructions, no byte-order dependence.
#pragma once

#include <cstdint>
#include <string_view>

namespace l4lb {

// MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.
constexpr uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDull;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ull;
  k ^= k >> 33;
  return k;
}

inline constexpr uint64_t kFnvOffsetBasis = 0xCBF29CE484222325ull;
inline constexpr uint64_t kFnvPrime = 0x100000001B3ull;

// FNV-1a over bytes (for each byte b: h ^= b; h *= prime) from `basis`. It
// reads bytes one at a time, so the result is the same on any machine.
constexpr uint64_t fnv1a64(std::string_view bytes, uint64_t basis = kFnvOffsetBasis) {
  uint64_t h = basis;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
  return h;
}

// Added to a word before it is mixed, so that a zero word does not mix to
// zero (2^64 / golden ratio, odd).
inline constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

}  // namespace l4lb
