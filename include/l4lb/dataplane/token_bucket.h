// A token bucket on the TSC: `rate` tokens a second, at most `burst` saved.
// Limits what a worker sends on behalf of traffic it does not forward
// (closed-port answers, packets for the kernel), so a flood costs the
// appliance a bounded amount. Pure and header-only; one owner (a worker).
#pragma once

#include <algorithm>
#include <cstdint>

namespace l4lb::dataplane {

class TokenBucket {
 public:
  void init(uint64_t tsc_hz, uint32_t rate, uint32_t burst) {
    tsc_per_token_ = std::max<uint64_t>(1, tsc_hz / std::max<uint32_t>(1, rate));
    burst_ = burst;
    tokens_ = burst;
    last_tsc_ = 0;
  }
  // Fast path: one division, and only once a token's worth of time passed.
  // The time of a token not yet whole is kept (last_tsc_ moves by whole
  // tokens): dropping it at every refill would cut the rate by up to half
  // when calls come more often than tokens.
  bool take(uint64_t now_tsc) {
    if (now_tsc - last_tsc_ >= tsc_per_token_) {
      const uint64_t earned = (now_tsc - last_tsc_) / tsc_per_token_;
      if (tokens_ + earned >= burst_) {
        tokens_ = burst_;
        last_tsc_ = now_tsc;
      } else {
        tokens_ += static_cast<uint32_t>(earned);
        last_tsc_ += earned * tsc_per_token_;
      }
    }
    if (tokens_ == 0) return false;
    --tokens_;
    return true;
  }

 private:
  uint64_t tsc_per_token_ = 1;
  uint64_t last_tsc_ = 0;
  uint32_t tokens_ = 0;
  uint32_t burst_ = 0;
};

}  // namespace l4lb::dataplane
