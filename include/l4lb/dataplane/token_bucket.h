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
  bool take(uint64_t now_tsc) {
    if (now_tsc - last_tsc_ >= tsc_per_token_) {
      const uint64_t earned = (now_tsc - last_tsc_) / tsc_per_token_;
      tokens_ = static_cast<uint32_t>(std::min<uint64_t>(burst_, tokens_ + earned));
      last_tsc_ = now_tsc;
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
