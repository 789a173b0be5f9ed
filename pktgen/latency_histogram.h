// Latency histogram in TSC cycles, log-linear (as HdrHistogram): exact below
// 64 cycles, then 64 sub-buckets per power of two, so any recorded value is
// within 1/64 (1.6 %) of its bucket's bounds. Fixed size (about 30 KB), no
// allocation after construction; record() is a few instructions. Single
// writer (the poll lcore); read after it stops.
#pragma once

#include <array>
#include <cstdint>

namespace l4lb::pktgen {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 6;
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kBuckets = (64 - kSubBits + 1) * kSub;

  void record(uint64_t cycles) {
    ++counts_[index_of(cycles)];
    ++total_;
    sum_ += cycles;
    if (cycles < min_) min_ = cycles;
    if (cycles > max_) max_ = cycles;
  }

  void clear();
  uint64_t count() const { return total_; }
  uint64_t min() const { return total_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }

  // The upper bound (in cycles) of the bucket holding the q-quantile
  // (0 < q <= 1), clamped to the largest value recorded; 0 when empty.
  uint64_t quantile(double q) const;

  static unsigned index_of(uint64_t v) {
    if (v < kSub) return static_cast<unsigned>(v);
    const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    const unsigned shift = msb - kSubBits;
    return (shift + 1) * kSub + static_cast<unsigned>((v >> shift) - kSub);
  }
  // Largest value that maps to bucket `index`.
  static uint64_t upper_bound(unsigned index);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = ~0ull;
  uint64_t max_ = 0;
};

}  // namespace l4lb::pktgen
