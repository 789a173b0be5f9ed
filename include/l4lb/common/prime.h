// Primality for Maglev table sizes (DESIGN §5: the table size M must be
// prime so that every skip in [1, M-1] visits every slot). One rule for the
// config loader, the table builder and l4lb-maglev, so they cannot disagree
// about which sizes are allowed.
#pragma once

#include <cstdint>

namespace l4lb {

// The largest table a VIP may have: the largest prime below 2^24. Slots hold
// 16-bit backend indexes, so a table costs 2 bytes a slot (32 MiB at most).
inline constexpr uint32_t kMaxTableSize = 16777213;

namespace detail {
constexpr uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}
constexpr uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
  uint64_t result = 1;
  base %= m;
  while (exp != 0) {
    if (exp & 1) result = mul_mod(result, base, m);
    base = mul_mod(base, base, m);
    exp >>= 1;
  }
  return result;
}
}  // namespace detail

// Deterministic Miller-Rabin: the first twelve primes as witnesses are exact
// for every n < 3.3e24, which covers all 64-bit integers (Sorenson and
// Webster, 2015). Constant time in practice; fine on the management core.
constexpr bool is_prime(uint64_t n) {
  if (n < 2) return false;
  constexpr uint64_t kWitnesses[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  for (const uint64_t p : kWitnesses)
    if (n % p == 0) return n == p;
  uint64_t d = n - 1;
  int r = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++r;
  }
  for (const uint64_t a : kWitnesses) {
    uint64_t x = detail::pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int i = 1; i < r; ++i) {
      x = detail::mul_mod(x, x, n);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

// The smallest prime >= n (n <= kMaxTableSize), for tools that suggest one.
constexpr uint64_t next_prime(uint64_t n) {
  while (!is_prime(n)) ++n;
  return n;
}

static_assert(is_prime(kMaxTableSize) && !is_prime(kMaxTableSize + 2ull) && is_prime(65537));

}  // namespace l4lb
