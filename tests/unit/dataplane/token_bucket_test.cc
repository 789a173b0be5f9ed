// The worker's rate limits (closed-port answers, the slow path) hold their
// configured rate, whatever the spacing of the calls.
#include <gtest/gtest.h>

#include "l4lb/dataplane/token_bucket.h"

namespace l4lb::dataplane {
namespace {

constexpr uint64_t kHz = 1'000'000;  // one tick per microsecond

// Tokens granted over `seconds` to calls every `gap_us`, after the burst
// saved at the start is spent.
uint32_t granted(uint32_t rate, uint32_t burst, uint64_t gap_us, uint64_t seconds) {
  TokenBucket b;
  b.init(kHz, rate, burst);
  uint64_t t = 1;
  while (b.take(t)) {}  // spend the initial burst at t = 1 us
  uint32_t n = 0;
  for (; t <= seconds * kHz; t += gap_us) n += b.take(t) ? 1 : 0;
  return n;
}

TEST(TokenBucket, CallsMoreOftenThanTokensGetTheFullRate) {
  // Every 600 us against 1000 tokens a second: each refill finds 1.2 tokens'
  // worth of time; keeping the fraction gives 1000 a second, not 833.
  EXPECT_NEAR(granted(1000, 8, 600, 10), 10'000, 2);
  EXPECT_NEAR(granted(1000, 1, 1900, 10), 5263, 2);   // slower than the rate: every call
  EXPECT_NEAR(granted(5000, 32, 150, 10), 50'000, 2);
}

TEST(TokenBucket, SavesAtMostTheBurst) {
  TokenBucket b;
  b.init(kHz, 1000, 5);
  int n = 0;
  while (b.take(10 * kHz)) ++n;  // ten idle seconds save 5, not 10000
  EXPECT_EQ(n, 5);
  EXPECT_FALSE(b.take(10 * kHz + 999));
  EXPECT_TRUE(b.take(10 * kHz + 1000));
}

TEST(TokenBucket, StartsFull) {
  TokenBucket b;
  b.init(kHz, 10, 3);
  EXPECT_TRUE(b.take(0));
  EXPECT_TRUE(b.take(0));
  EXPECT_TRUE(b.take(0));
  EXPECT_FALSE(b.take(0));
}

}  // namespace
}  // namespace l4lb::dataplane
