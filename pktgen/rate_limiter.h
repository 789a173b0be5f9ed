// A token bucket on the TSC, asked once per burst: how many packets may go
// now. Credit accrues at `pps` packets per second up to `depth` packets, so a
// generator that fell behind (the port was full, the CPU was taken away)
// catches up by at most one bucket instead of bursting the whole backlog.
// Fixed point (16 fractional bits of a cycle) keeps rates like 1 Mpps on a
// 2.1 GHz TSC exact over long runs. Owned by the poll lcore; no locks.
#pragma once

#include <algorithm>
#include <cstdint>

namespace l4lb::pktgen {

class RateLimiter {
 public:
  // pps == 0: unlimited.
  RateLimiter(uint64_t pps, uint64_t tsc_hz, uint32_t depth)
      : unlimited_(pps == 0),
        cost_(pps == 0 ? 0 : std::max<uint64_t>(1, (tsc_hz << kFrac) / pps)),
        depth_(uint64_t{depth} * cost_) {}

  void start(uint64_t now_tsc) {
    start_ = now_tsc;
    next_ = 0;
  }

  // Packets that may be sent at `now` (at most `want`). Call consume() with
  // what was actually sent.
  uint32_t allowance(uint64_t now_tsc, uint32_t want) {
    if (unlimited_) return want;
    const uint64_t now = (now_tsc - start_) << kFrac;
    if (now < next_) return 0;
    if (now - next_ > depth_) next_ = now - depth_;  // forget credit beyond one bucket
    const uint64_t n = (now - next_) / cost_ + 1;
    return static_cast<uint32_t>(std::min<uint64_t>(n, want));
  }

  void consume(uint32_t n) { next_ += uint64_t{n} * cost_; }

 private:
  static constexpr unsigned kFrac = 16;
  bool unlimited_;
  uint64_t cost_;   // cycles per packet << kFrac
  uint64_t depth_;  // bucket depth in the same unit
  uint64_t start_ = 0;
  uint64_t next_ = 0;  // when the next packet may go, relative to start_, << kFrac
};

// Token bucket depth: 1 ms of credit (at least two bursts), so a poll loop
// that lost the CPU for up to a millisecond still averages the rate asked
// for; longer gaps are lost, and the achieved rate is what the report shows.
inline uint32_t bucket_depth(uint64_t pps) {
  return static_cast<uint32_t>(std::max<uint64_t>(64, pps / 1000));
}

}  // namespace l4lb::pktgen
