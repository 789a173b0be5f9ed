// Maglev lookup-table population (Eisenbud et al., NSDI 2016, section 3.4,
// "Pseudocode 1: Populate Maglev hashing lookup table"), extended with weights
// that count in every round. Runs on the management core only; allocates and
// may throw, so it must never be called from a worker.
#include "l4lb/maglev/maglev.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>

#include "l4lb/common/hash.h"
#include "l4lb/common/prime.h"

namespace l4lb::maglev {
namespace {

// ---------------------------------------------------------------------------
// The hash (part of the cross-appliance contract: two appliances with the same
// backends must build the same table, so this must never change silently;
// tests/unit/maglev pins known values).
//
//   hash_key(key, seed) = fmix64(fnv1a64(key, basis = kFnvOffsetBasis ^ fmix64(seed)))
//
// - fnv1a64: FNV-1a over the key's bytes (for each byte b: h ^= b; h *= kFnvPrime),
//   with the standard 64-bit constants (common/hash.h). FNV-1a is byte-order independent,
//   so the result is the same on any machine.
// - The seed is run through fmix64 before it is XORed into the offset basis so
//   that two seeds differing in a few bits give unrelated starting states.
// - fmix64 is MurmurHash3's 64-bit finaliser (shifts 33 and multipliers
//   0xff51afd7ed558ccd, 0xc4ceb9fe1a85ec53). FNV-1a alone has weak low bits for
//   short keys that differ only in their last byte ("10.0.0.1:80" vs
//   "10.0.0.2:80"), and the table takes hashes modulo M, so the finaliser is
//   what makes offsets and skips of neighbouring keys independent.
//
// Seeds (declared in maglev.h so tests can use them): kOffsetSeed is the ASCII
// bytes "maglev-o" read as a big-endian integer, kSkipSeed is "maglev-s" and
// kPhaseSeed (initial weight credit, see build_table) is "maglev-p".
// ---------------------------------------------------------------------------

// One backend's state while the table fills. Only weighted backends get one.
struct Turn {
  uint64_t credit;  // weight accumulated and not yet spent on a slot
  uint32_t weight;
  uint32_t pos;     // permutation[next]: the next slot this backend prefers
  uint32_t skip;
  uint32_t index;   // the caller's position of this backend
};

}  // namespace

uint64_t hash_key(std::string_view key, uint64_t seed) { return fmix64(fnv1a64(key, kFnvOffsetBasis ^ fmix64(seed))); }

std::vector<uint32_t> build_table(std::span<const Backend> backends, uint32_t table_size) {
  // A prime M makes every skip in [1, M-1] coprime with M, so each backend's
  // permutation visits every slot (paper §3.4); Envoy refuses non-primes too.
  if (table_size > kMaxTableSize || !is_prime(table_size)) {
    throw std::invalid_argument("maglev: table size " + std::to_string(table_size) +
                                " is not a prime in [2, " + std::to_string(kMaxTableSize) + "]");
  }
  if (backends.size() >= kNoBackend) {
    throw std::invalid_argument("maglev: too many backends");
  }
  const uint32_t m = table_size;

  // Visit backends in key order, never in the caller's order: the order of
  // turns decides who wins contested slots, and the table must depend only on
  // the set of (key, weight). std::string compares bytes as unsigned char, so
  // this order is the same on every machine.
  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].key < backends[b].key; });
  uint32_t max_weight = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Backend& b = backends[order[i]];
    if (i > 0 && backends[order[i - 1]].key == b.key) {
      throw std::invalid_argument("maglev: duplicate backend key '" + b.key + "'");
    }
    max_weight = std::max(max_weight, b.weight);
  }

  std::vector<uint32_t> table(m, kNoBackend);
  if (max_weight == 0) return table;  // nobody may take traffic

  // Weights: every round each backend earns `weight` credit and claims one
  // slot per `max_weight` of credit held. A backend of the largest weight thus
  // claims exactly one slot per round (the unweighted paper algorithm when all
  // weights are equal) and a backend of weight w claims w/max_weight slots per
  // round over the WHOLE fill, not only in the first round (the flaw of
  // Katran's first MaglevHash).
  //
  // Initial credit is a per-backend phase in [0, max_weight) from a third
  // seeded hash. With a common start value every backend of one weight would
  // claim in the same rounds, so all of them would lose (or gain) the same
  // fraction of a slot when the fill stops part-way through a round: at
  // N=1000, weights 1..4, M=65537, the weight-1 class got 0.8% less than its
  // share. A spread of phases makes each backend's count its exact share
  // rounded up or down without bias (Hermite's identity: the mean of
  // floor((c + x) / m) over c = 0..m-1 is x / m), so class totals are exact to
  // within noise. With equal weights the phase has no effect.
  std::vector<Turn> turns;
  turns.reserve(order.size());
  for (uint32_t idx : order) {
    const Backend& b = backends[idx];
    if (b.weight == 0) continue;  // weight 0 takes no slots and no turns
    Turn t;
    t.credit = hash_key(b.key, kPhaseSeed) % max_weight;
    t.weight = b.weight;
    t.pos = static_cast<uint32_t>(hash_key(b.key, kOffsetSeed) % m);
    t.skip = static_cast<uint32_t>(hash_key(b.key, kSkipSeed) % (m - 1) + 1);
    t.index = idx;
    turns.push_back(t);
  }

  // permutation[i][j] = (offset + j * skip) % M is computed on the fly as a
  // running position (pos += skip, wrapped once since pos, skip < M) instead of
  // an N x M permutation array (1000 backends at M=65537 would need 250 MiB).
  // Termination: the max-weight backend claims a slot every round and each
  // permutation covers all M slots, so the table fills after at most M rounds.
  uint32_t filled = 0;
  for (;;) {
    for (Turn& t : turns) {
      t.credit += t.weight;
      while (t.credit >= max_weight) {
        t.credit -= max_weight;
        while (table[t.pos] != kNoBackend) {
          t.pos += t.skip;
          if (t.pos >= m) t.pos -= m;
        }
        table[t.pos] = t.index;
        t.pos += t.skip;
        if (t.pos >= m) t.pos -= m;
        if (++filled == m) return table;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// The fingerprint (part of the cross-appliance contract, like the hash above:
// appliances compare it, so it must not change silently; tests/unit/maglev
// pins a known value).
//
//   word(slot) = fnv1a64(key of the slot's backend), the "ADDR:PORT" text, or
//                fnv1a64("") (= kFnvOffsetBasis) for a slot without a backend
//   f = kFnvOffsetBasis; for slot = 0 .. M-1: f = fmix64(f ^ word(slot))
//   fingerprint = f, or kEmptyTableFingerprint (0) when no slot has a backend
//
// Both pieces are common/hash.h's. Each step XORs a slot's word into the state
// and applies fmix64, a bijection, so changing one slot to a backend whose key
// hashes differently always changes the result (two distinct keys with equal
// FNV-1a hashes would be needed to hide it). Slots are taken in order: the
// same backends in other slots, or a table of another size, give another
// value but for a 2^-64 chance. An empty table is given 0 rather than its
// fold so that "routes nothing" reads the same at any size; a non-empty
// table folding to 0 is a 2^-64 chance too.
// ---------------------------------------------------------------------------
uint64_t table_fingerprint(std::span<const uint32_t> table, std::span<const Backend> backends) {
  // One FNV-1a per backend, not per slot: M is up to 16M, backends few.
  std::vector<uint64_t> words(backends.size());
  for (size_t i = 0; i < backends.size(); ++i) words[i] = fnv1a64(backends[i].key);
  const uint64_t no_backend = fnv1a64("");
  uint64_t f = kFnvOffsetBasis;
  bool any = false;
  for (const uint32_t entry : table) {
    uint64_t word = no_backend;
    if (entry != kNoBackend) {
      if (entry >= words.size()) {
        throw std::out_of_range("maglev: table entry " + std::to_string(entry) + " names no backend (" +
                                std::to_string(words.size()) + " given)");
      }
      word = words[entry];
      any = true;
    }
    f = fmix64(f ^ word);
  }
  return any ? f : kEmptyTableFingerprint;
}

std::string format_fingerprint(uint64_t fingerprint) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(fingerprint));
  return text;
}

}  // namespace l4lb::maglev
