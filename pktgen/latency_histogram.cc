#include "latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace l4lb::pktgen {

void LatencyHistogram::clear() {
  counts_.fill(0);
  total_ = 0;
  sum_ = 0;
  min_ = ~0ull;
  max_ = 0;
}

uint64_t LatencyHistogram::upper_bound(unsigned index) {
  if (index < kSub) return index;
  const unsigned shift = index / kSub - 1;
  const uint64_t mantissa = kSub + index % kSub;
  return ((mantissa + 1) << shift) - 1;
}

uint64_t LatencyHistogram::quantile(double q) const {
  if (total_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(total_)));
  uint64_t seen = 0;
  for (unsigned i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= std::max<uint64_t>(rank, 1)) return std::min(upper_bound(i), max_);
  }
  return max_;
}

}  // namespace l4lb::pktgen
