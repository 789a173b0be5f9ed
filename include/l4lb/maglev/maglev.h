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

// The fingerprint of a built table (DESIGN §5, "Agreement across
// appliances"): 64 bits over the table's slots in order, each slot
// contributing the KEY of its backend, never its index, so two processes that
// list the same backends in different orders and build the same table get the
// same fingerprint, and a table that differs in one slot gets another
// (defined in maglev.cc). `table` is build_table's result for `backends`
// (entries are indices into `backends` or kNoBackend). A table with no
// backend in any slot (nothing takes traffic) has kEmptyTableFingerprint.
// Throws std::out_of_range for an entry that is not a backend of `backends`.
// Pure; called by l4lb-maglev and, on the management core, by the snapshot
// builder's MaglevCache when it builds a VIP's table.
inline constexpr uint64_t kEmptyTableFingerprint = 0;
uint64_t table_fingerprint(std::span<const uint32_t> table, std::span<const Backend> backends);

// A fingerprint as operators see it wherever it is printed (l4lb-maglev,
// l4lbctl vips): 16 lowercase hex digits, "0000000000000000" for an empty
// table.
std::string format_fingerprint(uint64_t fingerprint);

}  // namespace l4lb::maglev
