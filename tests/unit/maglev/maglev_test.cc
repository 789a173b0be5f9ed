// Unit tests for the Maglev table builder (DESIGN §5): golden tables, a
// cross-check against the paper's pseudocode, and balance, weight, churn and
// build-time figures at N=1000, printed so they appear in the test log.
#include "l4lb/maglev/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace l4lb::maglev {
namespace {

// N distinct keys "10.B.C.D:80"; weight from `weight_of(i)`.
template <typename WeightFn>
std::vector<Backend> make_backends(uint32_t n, WeightFn weight_of) {
  std::vector<Backend> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    out.push_back({"10." + std::to_string((i >> 16) & 0xff) + "." + std::to_string((i >> 8) & 0xff) +
                       "." + std::to_string(i & 0xff) + ":80",
                   weight_of(i)});
  }
  return out;
}

std::vector<Backend> make_backends(uint32_t n) {
  return make_backends(n, [](uint32_t) { return 1u; });
}

// Slot -> owner key ("" for kNoBackend): compares tables built from lists in
// different orders or with different members.
std::vector<std::string> owners(const std::vector<uint32_t>& table, const std::vector<Backend>& bs) {
  std::vector<std::string> out(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    out[i] = table[i] == kNoBackend ? std::string() : bs.at(table[i]).key;
  }
  return out;
}

std::vector<uint32_t> entry_counts(const std::vector<uint32_t>& table, size_t n) {
  std::vector<uint32_t> counts(n, 0);
  for (uint32_t b : table) {
    if (b != kNoBackend) ++counts.at(b);
  }
  return counts;
}

// The paper's Pseudocode 1, written as literally as possible (explicit
// next[i], permutation computed as (offset + next * skip) % M in 64 bits,
// turn order = key order), plus the weight credits described in maglev.cc.
// An independent formulation for build_table's running-position loop.
std::vector<uint32_t> paper_populate(const std::vector<Backend>& bs, uint32_t m) {
  std::vector<size_t> order(bs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return bs[a].key < bs[b].key; });
  uint64_t max_weight = 0;
  for (const Backend& b : bs) max_weight = std::max<uint64_t>(max_weight, b.weight);
  std::vector<uint32_t> entry(m, kNoBackend);
  if (max_weight == 0) return entry;
  std::vector<uint64_t> offset(bs.size()), skip(bs.size()), next(bs.size(), 0), credit(bs.size());
  for (size_t i = 0; i < bs.size(); ++i) {
    offset[i] = hash_key(bs[i].key, kOffsetSeed) % m;
    skip[i] = hash_key(bs[i].key, kSkipSeed) % (m - 1) + 1;
    credit[i] = hash_key(bs[i].key, kPhaseSeed) % max_weight;
  }
  uint32_t n = 0;
  while (true) {
    for (size_t i : order) {
      credit[i] += bs[i].weight;
      while (credit[i] >= max_weight) {
        credit[i] -= max_weight;
        uint64_t c = (offset[i] + next[i] * skip[i]) % m;
        while (entry[c] != kNoBackend) {
          next[i] += 1;
          c = (offset[i] + next[i] * skip[i]) % m;
        }
        entry[c] = static_cast<uint32_t>(i);
        next[i] += 1;
        if (++n == m) return entry;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Hash: pinned values. These were computed by an independent Python model of
// the hash documented in maglev.cc (FNV-1a from basis 0xcbf29ce484222325 ^
// fmix64(seed), then fmix64). A change here changes every table and every
// flow's backend on upgrade, so it must be deliberate.
// ---------------------------------------------------------------------------
TEST(MaglevHash, SeedsAreTheDocumentedAscii) {
  EXPECT_EQ(kOffsetSeed, 0x6d61676c65762d6fULL);  // "maglev-o"
  EXPECT_EQ(kSkipSeed, 0x6d61676c65762d73ULL);    // "maglev-s"
  EXPECT_EQ(kPhaseSeed, 0x6d61676c65762d70ULL);   // "maglev-p"
}

TEST(MaglevHash, PinnedValues) {
  EXPECT_EQ(hash_key("", 0), 0xefd01f60ba992926ULL);
  EXPECT_EQ(hash_key("", kOffsetSeed), 0xca0a3e3f7645c6f3ULL);
  EXPECT_EQ(hash_key("a", 0), 0x82a2a958a9bece5bULL);
  EXPECT_EQ(hash_key("10.0.0.1:80", 0), 0x5ed8f8275e47a14aULL);
  EXPECT_EQ(hash_key("192.168.1.10:8080", kOffsetSeed), 0xe8e6bcb79a3a35a8ULL);
  EXPECT_EQ(hash_key("10.0.0.1:80", kOffsetSeed), 0x1d5396f9243946f5ULL);
  EXPECT_EQ(hash_key("10.0.0.1:80", kSkipSeed), 0x44bfda91d2e80853ULL);
  EXPECT_EQ(hash_key("10.0.0.1:80", kPhaseSeed), 0x0b96dfafdf3bd48dULL);
  EXPECT_EQ(hash_key("10.0.0.2:80", kOffsetSeed), 0x8d786de0fc31d4ceULL);
  EXPECT_EQ(hash_key("10.0.0.2:80", kSkipSeed), 0xc91124c3e2bc6e79ULL);
  EXPECT_EQ(hash_key("10.0.0.2:80", kPhaseSeed), 0xc7f0ad63242369c3ULL);
  EXPECT_EQ(hash_key("10.0.0.3:80", kOffsetSeed), 0x08eafe958881cc3dULL);
  EXPECT_EQ(hash_key("10.0.0.3:80", kSkipSeed), 0xa0876d8729039aaaULL);
  EXPECT_EQ(hash_key("10.0.0.3:80", kPhaseSeed), 0x261ba99b03a97877ULL);
  // A different seed must give an unrelated value (seeds really are mixed in).
  EXPECT_NE(hash_key("10.0.0.1:80", kOffsetSeed), hash_key("10.0.0.1:80", kSkipSeed));
}

// ---------------------------------------------------------------------------
// Golden tables at M=13, checkable by hand from the pinned hashes above.
// ---------------------------------------------------------------------------
TEST(MaglevGolden, ThreeBackendsM13) {
  // offset = h(kOffsetSeed) % 13, skip = h(kSkipSeed) % 12 + 1:
  //   A 10.0.0.1:80  offset 9  skip 4   permutation 9 0 4 8 12 3 7 11 2 6 10 1 5
  //   B 10.0.0.2:80  offset 5  skip 6   permutation 5 11 4 10 3 9 2 8 1 7 0 6 12
  //   C 10.0.0.3:80  offset 6  skip 11  permutation 6 4 2 0 11 9 7 5 3 1 12 10 8
  // Turns in key order A, B, C; each takes its next preferred empty slot:
  //   round 1: A 9,  B 5,  C 6
  //   round 2: A 0,  B 11, C 4
  //   round 3: A 8 (4 taken), B 10 (4 taken), C 2
  //   round 4: A 12, B 3,  C 7 (0, 11, 9 taken)
  //   round 5: A 1 (3, 7, 11, 2, 6, 10 taken) -> table full.
  const std::vector<Backend> bs = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 1}};
  ASSERT_EQ(hash_key(bs[0].key, kOffsetSeed) % 13, 9u);
  ASSERT_EQ(hash_key(bs[0].key, kSkipSeed) % 12 + 1, 4u);
  ASSERT_EQ(hash_key(bs[1].key, kOffsetSeed) % 13, 5u);
  ASSERT_EQ(hash_key(bs[1].key, kSkipSeed) % 12 + 1, 6u);
  ASSERT_EQ(hash_key(bs[2].key, kOffsetSeed) % 13, 6u);
  ASSERT_EQ(hash_key(bs[2].key, kSkipSeed) % 12 + 1, 11u);

  const std::vector<uint32_t> expected = {0, 0, 2, 1, 2, 1, 2, 2, 0, 0, 1, 1, 0};
  EXPECT_EQ(build_table(bs, 13), expected);

  // Same set, caller order C, A, B: same owners, indices follow the caller.
  const std::vector<Backend> shuffled = {bs[2], bs[0], bs[1]};
  const std::vector<uint32_t> expected_shuffled = {1, 1, 0, 2, 0, 2, 0, 0, 1, 1, 2, 2, 1};
  EXPECT_EQ(build_table(shuffled, 13), expected_shuffled);
}

TEST(MaglevGolden, WeightedThreeBackendsM13) {
  // Weights A=1, B=2, C=3; max_weight 3. Phase = h(kPhaseSeed) % 3:
  //   A 0x0b96dfafdf3bd48d % 3 = 0, B 0xc7f0ad63242369c3 % 3 = 2,
  //   C 0x261ba99b03a97877 % 3 = 2.
  // Each round a backend adds its weight and claims one slot per 3 credits
  // held. Credits after adding (A, B, C), claims, and slots taken:
  //   round 1: 1, 4, 5 -> B 5,  C 6
  //   round 2: 2, 3, 5 -> B 11, C 4
  //   round 3: 3, 2, 5 -> A 9,  C 2
  //   round 4: 1, 4, 5 -> B 10 (4 taken), C 0
  //   round 5: 2, 3, 5 -> B 3,  C 7 (11, 9 taken)
  //   round 6: 3, 2, 5 -> A 8 (0, 4 taken), C 1 (5, 3 taken)
  //   round 7: 1, 4    -> B 12 (9 2 8 1 7 0 6 taken) -> full.
  // A 2 slots, B 5, C 6 (exact shares 2.17, 4.33, 6.5).
  const std::vector<Backend> bs = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 2}, {"10.0.0.3:80", 3}};
  ASSERT_EQ(hash_key(bs[0].key, kPhaseSeed) % 3, 0u);
  ASSERT_EQ(hash_key(bs[1].key, kPhaseSeed) % 3, 2u);
  ASSERT_EQ(hash_key(bs[2].key, kPhaseSeed) % 3, 2u);
  const std::vector<uint32_t> expected = {2, 2, 2, 1, 2, 1, 2, 2, 0, 0, 1, 1, 1};
  EXPECT_EQ(build_table(bs, 13), expected);
}

TEST(MaglevGolden, SingleBackendTakesEverySlot) {
  const std::vector<Backend> bs = {{"10.0.0.1:80", 7}};
  EXPECT_EQ(build_table(bs, 2), (std::vector<uint32_t>{0, 0}));
  EXPECT_EQ(build_table(bs, 13), std::vector<uint32_t>(13, 0));
}

// build_table's fast loop must equal the paper's pseudocode exactly.
TEST(MaglevTable, MatchesPaperPseudocode) {
  std::mt19937 rng(12345);
  for (uint32_t m : {2u, 3u, 7u, 13u, 251u, 4099u, 65537u}) {
    for (uint32_t n : {1u, 2u, 5u, 37u, 300u}) {
      for (bool weighted : {false, true}) {
        std::uniform_int_distribution<uint32_t> w(0, 9);
        auto bs = make_backends(n, [&](uint32_t) { return weighted ? w(rng) : 1u; });
        if (weighted) bs[0].weight = 9;  // at least one backend takes slots
        std::shuffle(bs.begin(), bs.end(), rng);
        ASSERT_EQ(build_table(bs, m), paper_populate(bs, m))
            << "m=" << m << " n=" << n << " weighted=" << weighted;
      }
    }
  }
}

TEST(MaglevTable, OrderIndependent) {
  auto bs = make_backends(1000, [](uint32_t i) { return 1 + i % 4; });
  const auto reference = owners(build_table(bs, kDefaultTableSize), bs);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(bs.begin(), bs.end(), rng);
    const auto table = build_table(bs, kDefaultTableSize);
    ASSERT_EQ(owners(table, bs), reference) << "trial " << trial;
  }
  // Reversed small list: indices follow the caller, owners do not move.
  auto small = make_backends(5);
  const auto small_ref = owners(build_table(small, 251), small);
  std::reverse(small.begin(), small.end());
  EXPECT_EQ(owners(build_table(small, 251), small), small_ref);
}

// ---------------------------------------------------------------------------
// Fingerprint (DESIGN §5, agreement across appliances): over the slots' keys,
// so it follows the table, not the caller's list order.
// ---------------------------------------------------------------------------
TEST(MaglevFingerprint, PinnedValues) {
  // Computed by an independent Python model of the fold documented in
  // maglev.cc (f = 0xcbf29ce484222325; per slot f = fmix64(f ^ fnv1a64(key))),
  // over the golden tables above. A change here changes what every appliance
  // reports, so it must be deliberate.
  const std::vector<Backend> abc = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 1}};
  EXPECT_EQ(table_fingerprint(build_table(abc, 13), abc), 0x7c0b387d34973011ULL);
  const std::vector<Backend> weighted = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 2}, {"10.0.0.3:80", 3}};
  EXPECT_EQ(table_fingerprint(build_table(weighted, 13), weighted), 0x358a2138ccc59a31ULL);
  const std::vector<Backend> one = {{"10.0.0.1:80", 1}};
  EXPECT_EQ(table_fingerprint(build_table(one, 2), one), 0x1d9861242f437375ULL);
  EXPECT_EQ(table_fingerprint(build_table(one, 13), one), 0xd2b162fe0be698bbULL);
  EXPECT_EQ(format_fingerprint(0x7c0b387d34973011ULL), "7c0b387d34973011");
}

TEST(MaglevFingerprint, FormatIsSixteenLowercaseHexDigits) {
  EXPECT_EQ(format_fingerprint(0), "0000000000000000");
  EXPECT_EQ(format_fingerprint(0xABCull), "0000000000000abc");
  EXPECT_EQ(format_fingerprint(0x0123456789ABCDEFull), "0123456789abcdef");
  EXPECT_EQ(format_fingerprint(~0ull), "ffffffffffffffff");
}

TEST(MaglevFingerprint, SameTableFromPermutedInputSameFingerprint) {
  auto bs = make_backends(1000, [](uint32_t i) { return 1 + i % 4; });
  const auto reference_table = build_table(bs, kDefaultTableSize);
  const uint64_t reference = table_fingerprint(reference_table, bs);
  EXPECT_NE(reference, kEmptyTableFingerprint);
  std::mt19937 rng(11);
  for (int trial = 0; trial < 3; ++trial) {
    std::shuffle(bs.begin(), bs.end(), rng);
    const auto table = build_table(bs, kDefaultTableSize);
    // The indices differ (they follow the caller's list); the fingerprint may not.
    ASSERT_NE(table, reference_table) << "trial " << trial;
    EXPECT_EQ(table_fingerprint(table, bs), reference) << "trial " << trial;
  }
  const std::vector<Backend> abc = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 1}};
  const std::vector<Backend> cab = {abc[2], abc[0], abc[1]};
  EXPECT_EQ(table_fingerprint(build_table(cab, 13), cab), table_fingerprint(build_table(abc, 13), abc));
}

TEST(MaglevFingerprint, OneWeightChangedOrOneBackendRemovedDiffers) {
  const auto bs = make_backends(100);
  const uint64_t reference = table_fingerprint(build_table(bs, 4099), bs);

  auto heavier = bs;
  heavier[37].weight = 2;
  EXPECT_NE(table_fingerprint(build_table(heavier, 4099), heavier), reference);

  auto drained = bs;  // weight 0: the backend is still listed but takes no slots
  drained[37].weight = 0;
  const uint64_t drained_fp = table_fingerprint(build_table(drained, 4099), drained);
  EXPECT_NE(drained_fp, reference);

  auto removed = bs;
  removed.erase(removed.begin() + 37);
  // Draining and removing build the same table, so they agree.
  EXPECT_EQ(table_fingerprint(build_table(removed, 4099), removed), drained_fp);

  // Another table size is another table.
  EXPECT_NE(table_fingerprint(build_table(bs, 4093), bs), reference);
}

TEST(MaglevFingerprint, AnyOneSlotChangedChangesIt) {
  const std::vector<Backend> abc = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 1}};
  const auto table = build_table(abc, 13);
  const uint64_t reference = table_fingerprint(table, abc);
  for (size_t slot = 0; slot < table.size(); ++slot) {
    for (uint32_t other = 0; other < abc.size(); ++other) {
      if (other == table[slot]) continue;
      auto changed = table;
      changed[slot] = other;
      EXPECT_NE(table_fingerprint(changed, abc), reference) << "slot " << slot << " -> " << other;
    }
    auto emptied = table;
    emptied[slot] = kNoBackend;
    EXPECT_NE(table_fingerprint(emptied, abc), reference) << "slot " << slot << " emptied";
  }
  // Two slots swapped: the same keys in another order.
  auto swapped = table;
  ASSERT_NE(swapped[0], swapped[2]);
  std::swap(swapped[0], swapped[2]);
  EXPECT_NE(table_fingerprint(swapped, abc), reference);
}

TEST(MaglevFingerprint, EmptyTableIsZero) {
  // No backend takes traffic: every slot kNoBackend, at any size.
  const std::vector<Backend> zero = {{"10.0.0.1:80", 0}, {"10.0.0.2:80", 0}};
  EXPECT_EQ(table_fingerprint(build_table(zero, 13), zero), kEmptyTableFingerprint);
  EXPECT_EQ(table_fingerprint(build_table(std::vector<Backend>{}, 65537), {}), kEmptyTableFingerprint);
  EXPECT_EQ(kEmptyTableFingerprint, 0u);
  EXPECT_EQ(format_fingerprint(kEmptyTableFingerprint), "0000000000000000");
}

TEST(MaglevFingerprint, RejectsAnEntryThatNamesNoBackend) {
  const std::vector<Backend> one = {{"10.0.0.1:80", 1}};
  const std::vector<uint32_t> table = {0, 1, 0};
  EXPECT_THROW(table_fingerprint(table, one), std::out_of_range);
}

// ---------------------------------------------------------------------------
// Properties at scale (N=1000, M=65537, the defaults of DESIGN §5).
// ---------------------------------------------------------------------------
TEST(MaglevScale, BalanceN1000) {
  constexpr uint32_t kN = 1000;
  constexpr uint32_t kM = kDefaultTableSize;
  const auto bs = make_backends(kN);
  const auto counts = entry_counts(build_table(bs, kM), kN);
  const uint32_t lo = *std::min_element(counts.begin(), counts.end());
  const uint32_t hi = *std::max_element(counts.begin(), counts.end());
  const double fair = static_cast<double>(kM) / kN;
  double worst_rel = 0;
  for (uint32_t c : counts) {
    // Equal weights: one slot per backend per round, so the only imbalance is
    // the last, partial round.
    EXPECT_TRUE(c == kM / kN || c == kM / kN + 1) << c;
    worst_rel = std::max(worst_rel, std::abs(c - fair) / fair);
  }
  EXPECT_LT(worst_rel, 0.01);
  std::printf("[balance] N=%u M=%u entries min=%u max=%u mean=%.3f (fair %.3f), worst |dev|/fair=%.3f%%\n",
              kN, kM, lo, hi, fair, fair, 100 * worst_rel);
}

TEST(MaglevScale, WeightsN1000) {
  constexpr uint32_t kN = 1000;
  constexpr uint32_t kM = kDefaultTableSize;
  const auto bs = make_backends(kN, [](uint32_t i) { return 1 + i % 4; });
  const auto counts = entry_counts(build_table(bs, kM), kN);
  uint64_t total_weight = 0;
  for (const Backend& b : bs) total_weight += b.weight;

  std::map<uint32_t, uint64_t> class_slots, class_weight;
  double worst_slot_dev = 0;
  for (uint32_t i = 0; i < kN; ++i) {
    const double exact = static_cast<double>(kM) * bs[i].weight / total_weight;
    const double dev = std::abs(counts[i] - exact);
    worst_slot_dev = std::max(worst_slot_dev, dev);
    EXPECT_LE(dev, 2.0) << bs[i].key << " weight " << bs[i].weight << " has " << counts[i]
                        << " slots, exact share " << exact;
    class_slots[bs[i].weight] += counts[i];
    class_weight[bs[i].weight] += bs[i].weight;
  }
  std::printf("[weights] N=%u M=%u weights 1..4 (250 backends each)\n", kN, kM);
  for (const auto& [w, slots] : class_slots) {
    const double exact = static_cast<double>(kM) * class_weight[w] / total_weight;
    const double rel = (slots - exact) / exact;
    std::printf("[weights]   weight %u: %llu slots = %.3f%% of table, exact %.3f%%, relative error %+.3f%%\n", w,
                static_cast<unsigned long long>(slots), 100.0 * slots / kM, 100.0 * exact / kM, 100 * rel);
    EXPECT_LT(std::abs(rel), 0.01) << "weight class " << w;
  }
  std::printf("[weights]   worst backend |entries - exact share| = %.3f slots\n", worst_slot_dev);
}

TEST(MaglevScale, WeightsTwoBackends) {
  // 1:3 at N=2 as well as at scale: the share must hold over the whole fill.
  const std::vector<Backend> bs = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 3}};
  const auto counts = entry_counts(build_table(bs, kDefaultTableSize), 2);
  EXPECT_NEAR(counts[0], kDefaultTableSize / 4.0, 1.0);
  EXPECT_NEAR(counts[1], kDefaultTableSize * 3 / 4.0, 1.0);
}

struct Churn {
  uint32_t moved = 0;        // slots whose owner changed
  uint32_t unavoidable = 0;  // slots of the removed / gained by the added backend
};

Churn compare(const std::vector<std::string>& before, const std::vector<std::string>& after,
              const std::string& removed, const std::string& added) {
  Churn c;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] != after[i]) ++c.moved;
    if (before[i] == removed) {
      EXPECT_NE(after[i], removed) << "slot " << i << " still owned by the removed backend";
      ++c.unavoidable;
    } else if (after[i] == added) {
      ++c.unavoidable;
    }
  }
  return c;
}

// Removes each of `trials` backends in turn (one at a time) and reports the
// fraction of slots that changed owner. Returns {mean, max} of that fraction.
std::pair<double, double> removal_churn(uint32_t n, uint32_t m, int trials) {
  const auto bs = make_backends(n);
  const auto before = owners(build_table(bs, m), bs);
  double sum = 0, worst = 0, extra_sum = 0;
  for (int t = 0; t < trials; ++t) {
    auto fewer = bs;
    const std::string removed = fewer[t * n / trials].key;
    fewer.erase(fewer.begin() + t * n / trials);
    const Churn c = compare(before, owners(build_table(fewer, m), fewer), removed, "\x01");
    const double frac = static_cast<double>(c.moved) / m;
    sum += frac;
    worst = std::max(worst, frac);
    extra_sum += static_cast<double>(c.moved - c.unavoidable) / m;
  }
  std::printf("[disruption] remove 1 of N=%u, M=%u (%d trials): moved mean %.4f%% = %.2f/N, max %.4f%% = %.2f/N "
              "(ideal 1/N = %.4f%%; extra beyond the removed backend's slots: mean %.4f%%)\n",
              n, m, trials, 100 * sum / trials, sum / trials * n, 100 * worst, worst * n, 100.0 / n,
              100 * extra_sum / trials);
  return {sum / trials, worst};
}

TEST(MaglevScale, DisruptionRemoveOneN1000) {
  // At M/N ~ 65 the paper's algorithm moves several times the ideal 1/N: each
  // freed slot is taken by a backend earlier than planned, which shifts that
  // backend's later claims and frees another slot at the end of the fill.
  // Measured 6.6/N here; an independent simulation of the paper's pseudocode
  // with random (offset, skip) gives the same 6.6/N, so this is Maglev's
  // figure, not a property of our hash. Assert under 10/N (1% of the table).
  constexpr uint32_t kN = 1000;
  const auto [mean, worst] = removal_churn(kN, kDefaultTableSize, 10);
  EXPECT_GT(mean, 1.0 / kN);  // at least the removed backend's share moved
  EXPECT_LT(worst, 10.0 / kN);
}

TEST(MaglevScale, DisruptionRemoveOneM100N) {
  // With the paper's sizing rule M > 100 * N, churn is close to ideal:
  // measured 1.5/N at N=100, M=65537. Here the 3/N bound holds.
  constexpr uint32_t kN = 100;
  const auto [mean, worst] = removal_churn(kN, kDefaultTableSize, 10);
  EXPECT_GT(mean, 1.0 / kN);
  EXPECT_LT(worst, 3.0 / kN);
}

TEST(MaglevScale, DisruptionAddOneN1000) {
  constexpr uint32_t kN = 1000;
  constexpr uint32_t kM = kDefaultTableSize;
  const auto bs = make_backends(kN);
  const auto before = owners(build_table(bs, kM), bs);
  auto more = bs;
  more.push_back({"192.168.0.1:80", 1});
  const Churn c = compare(before, owners(build_table(more, kM), more), "\x01", "192.168.0.1:80");
  const double frac = static_cast<double>(c.moved) / kM;
  std::printf("[disruption] add 1 to N=%u, M=%u: moved %u slots = %.4f%% = %.2f/N; new backend got %u slots, "
              "extra moves %u (ideal 1/(N+1) = %.4f%%)\n",
              kN, kM, c.moved, 100 * frac, frac * kN, c.unavoidable, c.moved - c.unavoidable, 100.0 / (kN + 1));
  EXPECT_TRUE(c.unavoidable == kM / (kN + 1) || c.unavoidable == kM / (kN + 1) + 1) << c.unavoidable;
  EXPECT_LT(frac, 10.0 / kN);  // see DisruptionRemoveOneN1000 for why not 3/N
}

TEST(MaglevScale, DrainingIsTheSameAsRemoving) {
  // Weight 0 takes no turns, so setting a weight to 0 gives exactly the table
  // without that backend (a drain moves no other flow than removal would).
  auto bs = make_backends(100);
  auto without = bs;
  without.erase(without.begin() + 42);
  bs[42].weight = 0;
  EXPECT_EQ(owners(build_table(bs, 4099), bs), owners(build_table(without, 4099), without));
}

TEST(MaglevScale, RebuildTime) {
  const auto bs = make_backends(1000);
  for (uint32_t m : {kDefaultTableSize, 655373u}) {
    double best_ms = 1e9;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto table = build_table(bs, m);
      const auto t1 = std::chrono::steady_clock::now();
      ASSERT_EQ(table.size(), m);
      best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::printf("[rebuild] N=1000 M=%u: best of 5 = %.3f ms\n", m, best_ms);
    if (m == kDefaultTableSize) {
      EXPECT_LT(best_ms, 100.0);  // catches pathologies only
    }
  }
}

TEST(MaglevScale, LargeTable655373) {
  constexpr uint32_t kM = 655373;
  const auto bs = make_backends(1000);
  const auto counts = entry_counts(build_table(bs, kM), bs.size());
  for (uint32_t c : counts) EXPECT_TRUE(c == kM / 1000 || c == kM / 1000 + 1) << c;
}

// ---------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------
TEST(MaglevPrime, IsPrime) {
  // Against trial division for every n below 20000.
  for (uint64_t n = 0; n < 20000; ++n) {
    bool expect = n >= 2;
    for (uint64_t d = 2; d * d <= n && expect; ++d) expect = n % d != 0;
    ASSERT_EQ(is_prime(n), expect) << n;
  }
  EXPECT_TRUE(is_prime(65537));
  EXPECT_TRUE(is_prime(655373));
  EXPECT_TRUE(is_prime(kMaxTableSize));
  EXPECT_TRUE(is_prime(2147483647ULL));             // 2^31 - 1
  EXPECT_TRUE(is_prime(2305843009213693951ULL));    // 2^61 - 1
  EXPECT_TRUE(is_prime(18446744073709551557ULL));   // largest 64-bit prime
  EXPECT_FALSE(is_prime(65536));
  EXPECT_FALSE(is_prime(65535));
  EXPECT_FALSE(is_prime(561));                      // Carmichael numbers
  EXPECT_FALSE(is_prime(41041));
  EXPECT_FALSE(is_prime(3215031751ULL));            // strong pseudoprime to 2, 3, 5, 7
  EXPECT_FALSE(is_prime(3825123056546413051ULL));   // strong pseudoprime to 2..23
  EXPECT_FALSE(is_prime(18446744073709551615ULL));  // 2^64 - 1
  EXPECT_FALSE(is_prime(4294967297ULL));            // 2^32 + 1 = 641 * 6700417
}

TEST(MaglevTable, RejectsInvalidSizes) {
  const auto bs = make_backends(3);
  for (uint32_t m : {0u, 1u, 4u, 15u, 65535u, 65536u, 655371u}) {
    EXPECT_THROW(build_table(bs, m), std::invalid_argument) << m;
  }
  // A prime above kMaxTableSize is refused too.
  EXPECT_TRUE(is_prime(16777259));
  EXPECT_THROW(build_table(bs, 16777259), std::invalid_argument);
}

TEST(MaglevTable, RejectsDuplicateKeys) {
  const std::vector<Backend> bs = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.1:80", 2}};
  EXPECT_THROW(build_table(bs, 13), std::invalid_argument);
  try {
    build_table(bs, 13);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("10.0.0.1:80"), std::string::npos) << e.what();
  }
}

TEST(MaglevTable, AllZeroWeightsAndNoBackends) {
  const std::vector<Backend> zero = {{"10.0.0.1:80", 0}, {"10.0.0.2:80", 0}};
  EXPECT_EQ(build_table(zero, 13), std::vector<uint32_t>(13, kNoBackend));
  EXPECT_EQ(build_table(std::span<const Backend>(), 13), std::vector<uint32_t>(13, kNoBackend));
  // One non-zero weight takes everything; the zero-weight backend nothing.
  const std::vector<Backend> one = {{"10.0.0.1:80", 0}, {"10.0.0.2:80", 5}};
  EXPECT_EQ(build_table(one, 13), std::vector<uint32_t>(13, 1));
}

}  // namespace
}  // namespace l4lb::maglev
