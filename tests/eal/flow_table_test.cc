// The flow table's index against a plain std::map model: inserts, lookups
// (single and bulk, hits, misses and tag collisions), removals, overflow into
// second buckets, a table filled to capacity, and churn at full capacity.
// DPDK memory comes from an EAL started with --no-huge.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_memory.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "l4lb/dataplane/flow_table.h"
#include "test_eal.h"

namespace l4lb::dataplane {
namespace {

// Wire-order-agnostic: the table never interprets key fields.
FlowEntry flow(uint32_t i) {
  FlowEntry e{};
  e.client_ip = 0x0A000000u + i;
  e.vip_ip = 0xC0A80064u;
  e.client_port = static_cast<uint16_t>(1024 + (i % 50000));
  e.vip_port = 80;
  e.backend_ip = 0x0B000000u + (i >> 8);
  e.backend_port = 8080;
  e.snat_ip = 0x0C000001u;
  e.snat_port = static_cast<uint16_t>(i & 0xFF);
  e.proto = 6;
  e.state = FlowState::kEstablished;
  return e;
}

struct Model {
  FlowTable table;
  std::map<uint32_t, uint32_t> live;  // flow number -> entry index

  Model(uint32_t capacity, uint64_t seed) : table("test", capacity, SOCKET_ID_ANY, seed) {}

  bool add(uint32_t i) {
    const uint32_t idx = table.allocate();
    if (idx == FlowTable::kMiss) return false;
    table.entry(idx) = flow(i);
    if (!table.insert(idx)) return false;
    live[i] = idx;
    return true;
  }
  void drop(uint32_t i) {
    table.remove(live.at(i));
    live.erase(i);
  }
  // Both keys of flow i resolve to its entry in the right direction, or
  // neither resolves when it is not live.
  void expect_consistent(uint32_t i) const {
    const FlowEntry e = flow(i);
    const uint32_t f = table.lookup(forward_key(e)), r = table.lookup(reverse_key(e));
    auto it = live.find(i);
    if (it == live.end()) {
      EXPECT_EQ(f, FlowTable::kMiss) << "flow " << i;
      EXPECT_EQ(r, FlowTable::kMiss) << "flow " << i;
    } else {
      EXPECT_EQ(f, it->second << 1) << "flow " << i;
      EXPECT_EQ(r, (it->second << 1) | 1) << "flow " << i;
    }
  }
};

TEST(FlowTable, InsertLookupRemove) {
  Model m(1024, 1);
  ASSERT_TRUE(m.add(7));
  m.expect_consistent(7);
  m.expect_consistent(8);
  EXPECT_EQ(m.table.active(), 1u);
  m.drop(7);
  m.expect_consistent(7);
  EXPECT_EQ(m.table.active(), 0u);
}

TEST(FlowTable, FillsToCapacityWithoutRefusal) {
  // Every seed gives a different layout; none may refuse below capacity.
  for (const uint64_t seed : {1ull, 2ull, 0xDEADBEEFull}) {
    constexpr uint32_t kCap = 200000;
    Model m(kCap, seed);
    for (uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(m.add(i)) << "refused flow " << i << " seed " << seed;
    EXPECT_EQ(m.table.allocate(), FlowTable::kMiss);  // full means full
    EXPECT_GT(m.table.overflowed_keys(), 0u);          // second buckets are exercised
    for (uint32_t i = 0; i < kCap; i += 97) m.expect_consistent(i);
    for (uint32_t i = kCap; i < kCap + 1000; ++i) m.expect_consistent(i);
  }
}

TEST(FlowTable, ChurnAtFullCapacityMatchesModel) {
  constexpr uint32_t kCap = 50000;
  Model m(kCap, 42);
  std::mt19937 rng(7);
  uint32_t next = 0;
  for (; next < kCap; ++next) ASSERT_TRUE(m.add(next));
  for (int round = 0; round < 300000; ++round) {
    auto it = m.live.begin();
    std::advance(it, rng() % 64);  // remove an old one, add a fresh one
    m.drop(it->first);
    if (!m.add(next++)) {
      std::string fill;
      for (auto n : m.table.fill_histogram()) fill.append(1, ' ').append(std::to_string(n));
      FAIL() << "round " << round << " refused; buckets by fill:" << fill << "; overflowed "
             << m.table.overflowed_keys();
    }
  }
  for (const auto& [i, idx] : m.live) m.expect_consistent(i);
  for (uint32_t i = 0; i < next; i += 13) m.expect_consistent(i);
  // Removing everything leaves no overflow count behind.
  while (!m.live.empty()) m.drop(m.live.begin()->first);
  EXPECT_EQ(m.table.overflowed_keys(), 0u);
  EXPECT_EQ(m.table.active(), 0u);
}

TEST(FlowTable, BulkLookupAgreesWithSingle) {
  constexpr uint32_t kCap = 100000;
  Model m(kCap, 9);
  for (uint32_t i = 0; i < kCap; i += 2) ASSERT_TRUE(m.add(i));
  std::mt19937 rng(3);
  for (int burst = 0; burst < 2000; ++burst) {
    FlowKey keys[FlowTable::kMaxBulk];
    const FlowKey* ptrs[FlowTable::kMaxBulk];
    const uint32_t n = 1 + rng() % FlowTable::kMaxBulk;
    for (uint32_t k = 0; k < n; ++k) {
      const FlowEntry e = flow(rng() % kCap);
      keys[k] = (rng() & 1) ? forward_key(e) : reverse_key(e);
      ptrs[k] = &keys[k];
    }
    uint32_t values[FlowTable::kMaxBulk];
    const uint64_t hits = m.table.lookup_bulk(ptrs, n, values);
    for (uint32_t k = 0; k < n; ++k) {
      const uint32_t single = m.table.lookup(keys[k]);
      ASSERT_EQ(bool(hits & (1ull << k)), single != FlowTable::kMiss);
      if (single != FlowTable::kMiss) {
        ASSERT_EQ(values[k], single);
      }
    }
  }
}

TEST(FlowTable, SameTagSameBucketIsConfirmedAgainstTheEntry) {
  // Two keys whose 32 tag bits and first bucket agree: the index alone
  // cannot tell them apart, the entry must. Found by search over a table of
  // two buckets (the tag is the hash's high half with its low bit set).
  Model m(2, 77);
  ASSERT_EQ(m.table.bucket_count(), 2u);
  auto tag = [&](uint32_t i) { return static_cast<uint32_t>(m.table.hash_of(forward_key(flow(i))) >> 32) | 1; };
  auto bucket = [&](uint32_t i) { return static_cast<uint32_t>(m.table.hash_of(forward_key(flow(i)))) >> 31; };
  std::map<uint64_t, uint32_t> seen;
  uint32_t a = 0, b = 0;
  for (uint32_t i = 0; i < 2000000 && !b; ++i) {
    auto [it, fresh] = seen.emplace((uint64_t{tag(i)} << 1) | bucket(i), i);
    if (!fresh) a = it->second, b = i;
  }
  ASSERT_NE(b, 0u) << "no colliding pair found";
  const FlowKey ka = forward_key(flow(a)), kb = forward_key(flow(b));
  ASSERT_TRUE(m.add(a));
  EXPECT_EQ(m.table.lookup(kb), FlowTable::kMiss);
  const FlowKey* both[] = {&kb, &ka};
  uint32_t values[2];
  EXPECT_EQ(m.table.lookup_bulk(both, 2, values), 0b10u);
  ASSERT_TRUE(m.add(b));
  EXPECT_EQ(m.table.lookup_bulk(both, 2, values), 0b11u);
  EXPECT_EQ(values[0], m.live.at(b) << 1);
  EXPECT_EQ(values[1], m.live.at(a) << 1);
  m.drop(a);
  EXPECT_EQ(m.table.lookup_bulk(both, 2, values), 0b01u);
  EXPECT_EQ(values[0], m.live.at(b) << 1);
}

TEST(FlowTable, MemoryPerFlowWithinBudget) {
  FlowTable t("mem", 1u << 20, SOCKET_ID_ANY, 1);
  const double per_flow = static_cast<double>(t.memory_bytes()) / t.capacity();
  EXPECT_LE(per_flow, 128.0);  // DESIGN §10: both directions in at most 128 B
  EXPECT_GE(per_flow, 64.0);   // at least the entry itself: the count is real
}

}  // namespace
}  // namespace l4lb::dataplane

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("flow_table_test", "512", "0")) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
