// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4), with weights.
// Pure C++: no DPDK, no I/O. Built on the management core only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/common/prime.h"  // is_prime, kMaxTableSize: one rule for loader, builder and tools

namespace l4lb::maglev {

struct Backend {
  std::string key;      // stable identity, "ADDR:PORT"; never the list position
  uint32_t weight = 1;  // 0 = takes no slots
};

inline constexpr uint32_t kNoBackend = 0xFFFFFFFFu;
inline constexpr uint32_t kDefaultTableSize = 65537;

// Deterministic 64-bit hash of a byte string with a seed (documented in maglev.cc).
uint64_t hash_key(std::string_view key, uint64_t seed);

// Seeds of the per-backend hashes (section 3.4 plus weights):
//   offset = hash_key(key, kOffsetSeed) % M
//   skip   = hash_key(key, kSkipSeed) % (M - 1) + 1
//   phase  = hash_key(key, kPhaseSeed) % max_weight  (initial weight credit)
// Part of the table's identity: changing any of them reshuffles every table
// (and so every flow) on upgrade.
inline constexpr uint64_t kOffsetSeed = 0x6d61676c65762d6fULL;  // "maglev-o"
inline constexpr uint64_t kSkipSeed = 0x6d61676c65762d73ULL;    // "maglev-s"
inline constexpr uint64_t kPhaseSeed = 0x6d61676c65762d70ULL;   // "maglev-p"

// Builds the lookup table of `table_size` slots (must be prime, > 0).
// table[i] is an index into `backends` as given by the caller, or kNoBackend
// when no backend has a non-zero weight. The result depends only on the set of
// (key, weight) pairs, never on their order in `backends`.
// Throws std::invalid_argument for a non-prime size or duplicate keys.
std::vector<uint32_t> build_table(std::span<const Backend> backends, uint32_t table_size);

}  // namespace l4lb::maglev
