// SNAT port pools per (SNAT address, backend) (dataplane/snat_pool.h):
// order of hand-out, holds, reuse of idle pools, and the pool index checked
// against a std::map model under churn. EAL for rte_malloc only.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "l4lb/dataplane/snat_pool.h"
#include "test_eal.h"

using namespace l4lb::dataplane;

namespace {

constexpr uint32_t kIp = 0x1500630A;  // 10.99.0.21, wire order
constexpr uint16_t kPort = 0x5000;    // 80, wire order

TEST(SnatPools, NeverUsedPortsFirstThenReleasedOnesOldestFirst) {
  SnatPools pools(SnatPartition(1000, 1003, 1), 0, 4, 0);
  const uint16_t p = pools.pool_for(0, kIp, kPort, 100, 0);
  ASSERT_NE(p, SnatPools::kNoPool);
  uint16_t port;
  std::vector<uint16_t> got;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pools.take(p, 100, port));
    got.push_back(port);
  }
  EXPECT_EQ(got, (std::vector<uint16_t>{1000, 1001, 1002, 1003}));
  EXPECT_FALSE(pools.take(p, 100, port)) << "all four are out";
  EXPECT_EQ(pools.free_count(p), 0u);
  // Two held (backend in TIME_WAIT) until 200, one ready now.
  pools.give_back(p, 1001, 100, 200);
  pools.give_back(p, 1003, 100, 210);
  pools.give_back(p, 1000, 100, 100);
  EXPECT_EQ(pools.free_count(p), 3u);
  ASSERT_TRUE(pools.take(p, 150, port));
  EXPECT_EQ(port, 1000) << "a port the backend holds nothing for comes first";
  EXPECT_FALSE(pools.take(p, 150, port)) << "the rest are still held";
  ASSERT_TRUE(pools.take(p, 205, port));
  EXPECT_EQ(port, 1001);
  EXPECT_FALSE(pools.take(p, 205, port));
  ASSERT_TRUE(pools.take(p, 211, port));
  EXPECT_EQ(port, 1003);
}

TEST(SnatPools, APoolPerBackendAndSnatAddressEachWithTheWholeSlice) {
  SnatPools pools(SnatPartition(1000, 1009, 2), 1, 8, 0);  // worker 1 of 2: ports 1005-1009
  EXPECT_EQ(pools.first_port(), 1005);
  EXPECT_EQ(pools.slice(), 5u);
  const uint16_t a = pools.pool_for(0, kIp, kPort, 0, 0);
  const uint16_t b = pools.pool_for(0, kIp + 1, kPort, 0, 0);
  const uint16_t c = pools.pool_for(1, kIp, kPort, 0, 0);
  const uint16_t d = pools.pool_for(0, kIp, kPort + 1, 0, 0);
  EXPECT_EQ(std::set<uint16_t>({a, b, c, d}).size(), 4u) << "address, slot and port each make a pool";
  EXPECT_EQ(pools.pool_for(0, kIp, kPort, 0, 0), a) << "found again, not made twice";
  EXPECT_EQ(pools.find(1, kIp, kPort), c);
  EXPECT_EQ(pools.find(2, kIp, kPort), SnatPools::kNoPool);
  uint16_t port;
  for (uint16_t pool : {a, b, c, d}) {
    ASSERT_TRUE(pools.take(pool, 0, port));
    EXPECT_EQ(port, 1005) << "every pool starts at the slice's first port";
  }
  EXPECT_EQ(pools.pools_in_use(), 4u);
}

TEST(SnatPools, AFullArenaReusesOnlyAPoolIdlePastTheHold) {
  l4lb::dataplane::Counter by_slot[l4lb::kMaxSnatAddresses];
  SnatPools pools(SnatPartition(1000, 1003, 1), 0, 2, 0, by_slot);
  const uint16_t a = pools.pool_for(0, kIp, kPort, 0, 50);
  const uint16_t b = pools.pool_for(1, kIp, kPort, 0, 50);
  EXPECT_EQ(by_slot[0].get(), 1u);
  EXPECT_EQ(by_slot[1].get(), 1u);
  uint16_t port;
  ASSERT_TRUE(pools.take(a, 0, port));
  ASSERT_TRUE(pools.take(b, 0, port));
  pools.give_back(b, port, 10, 10);  // b idle from t=10
  EXPECT_EQ(pools.pool_for(2, kIp, kPort, 20, 50), SnatPools::kNoPool) << "b's port came back too recently";
  const uint16_t c = pools.pool_for(2, kIp, kPort, 61, 50);
  EXPECT_EQ(c, b) << "b is idle past the hold: reused";
  EXPECT_EQ(pools.find(1, kIp, kPort), SnatPools::kNoPool) << "b's old pair is gone from the index";
  EXPECT_EQ(pools.find(0, kIp, kPort), a);
  EXPECT_EQ(by_slot[1].get(), 0u);
  EXPECT_EQ(by_slot[2].get(), 1u);
  ASSERT_TRUE(pools.take(c, 61, port));
  EXPECT_EQ(port, 1000) << "a reused pool starts fresh";
  EXPECT_EQ(pools.pool_for(3, kIp, kPort, 1000, 50), SnatPools::kNoPool) << "a holds a port: never reused";
}

// Pools made, used and reused at random against a model: the index always
// finds exactly the live pairs, and every port is either held or free.
TEST(SnatPools, IndexAndPortsAgreeWithAModelUnderChurn) {
  constexpr uint32_t kPools = 64;
  SnatPools pools(SnatPartition(2000, 2015, 1), 0, kPools, 0);
  std::mt19937 rng(7);
  using Pair = std::tuple<uint8_t, uint32_t, uint16_t>;
  std::map<Pair, uint16_t> live;                  // pair -> pool
  std::map<uint16_t, std::vector<uint16_t>> held;  // pool -> ports held
  uint32_t now = 1;
  for (int round = 0; round < 200000; ++round) {
    now += rng() % 3;
    const Pair pair{static_cast<uint8_t>(rng() % 4), kIp + rng() % 40, static_cast<uint16_t>(kPort + rng() % 2)};
    const auto [slot, ip, port_wire] = pair;
    if (rng() % 2) {
      const uint16_t pool = pools.pool_for(slot, ip, port_wire, now, 5);
      if (pool == SnatPools::kNoPool) {
        ASSERT_FALSE(live.count(pair));
        continue;
      }
      if (!live.count(pair)) {
        // A new pair: the pool it got must not be live for another pair.
        for (auto it = live.begin(); it != live.end();) {
          if (it->second == pool) {
            ASSERT_TRUE(held[pool].empty()) << "a pool was reused while holding ports";
            it = live.erase(it);
          } else {
            ++it;
          }
        }
        live[pair] = pool;
      }
      ASSERT_EQ(live[pair], pool);
      uint16_t port;
      if (pools.take(pool, now, port)) held[pool].push_back(port);
    } else if (auto it = live.find(pair); it != live.end() && !held[it->second].empty()) {
      auto& ports = held[it->second];
      const size_t k = rng() % ports.size();
      pools.give_back(it->second, ports[k], now, now + (rng() % 2 ? 3 : 0));
      ports.erase(ports.begin() + static_cast<long>(k));
    }
    if (round % 1000 == 0) {
      for (const auto& [p, pool] : live) {
        const auto [s, i, pt] = p;
        ASSERT_EQ(pools.find(s, i, pt), pool);
        std::multiset<uint16_t> all(held[pool].begin(), held[pool].end());
        pools.for_each_free(pool, [&](uint16_t port) { all.insert(port); });
        ASSERT_EQ(all.size(), pools.slice());
        ASSERT_EQ(std::set<uint16_t>(all.begin(), all.end()).size(), pools.slice()) << "a port twice";
        ASSERT_EQ(pools.pool(pool).in_use, held[pool].size());
      }
      ASSERT_EQ(pools.pools_in_use(), live.size());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("snat_pool_test", "128", "0")) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
