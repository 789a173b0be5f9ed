// The stats view (controlplane/stats_view.h) without EAL: counter blocks
// filled by hand, gathered once, and every sum checked against them.
#include <gtest/gtest.h>

#include <memory>

#include "l4lb/controlplane/stats_view.h"

namespace l4lb::controlplane {
namespace {

using dataplane::DropReason;
using dataplane::FlowState;
using dataplane::WorkerCounters;

constexpr size_t kEstablished = static_cast<size_t>(FlowState::kEstablished);
constexpr size_t kNoBackend = static_cast<size_t>(DropReason::kNoBackend);

TEST(StatsView, SumsPerWorkerAndInTotal) {
  auto a = std::make_unique<WorkerCounters>();
  auto b = std::make_unique<WorkerCounters>();
  a->rx_packets.add(3);
  b->rx_packets.add(5);
  a->flows_active.add(2);
  b->flows_active.add(7);
  a->flows_by_state[kEstablished].add(2);
  b->flows_by_state[kEstablished].add(6);
  a->drop(DropReason::kNoBackend, 4);
  b->drop(DropReason::kNoBackend, 1);
  a->handoffs_out[1].add(11);
  b->handoffs_out[0].add(13);
  const WorkerSource sources[] = {{0, a.get(), 100}, {1, b.get(), 50}};

  const StatsView view = gather_stats(sources);
  ASSERT_EQ(view.workers.size(), 2u);
  EXPECT_EQ(view.workers[0].index, 0u);
  EXPECT_EQ(view.workers[1].index, 1u);
  EXPECT_EQ(view.workers[0].counters.rx_packets, 3u);
  EXPECT_EQ(view.workers[1].counters.rx_packets, 5u);
  EXPECT_EQ(view.total.rx_packets, 8u);
  EXPECT_EQ(view.total.flows_active, 9u);
  EXPECT_EQ(view.total.flows_by_state[kEstablished], 8u);
  EXPECT_EQ(view.workers[1].counters.flows_by_state[kEstablished], 6u);
  EXPECT_EQ(view.total.drops[kNoBackend], 5u);
  EXPECT_EQ(view.workers[0].counters.drops[kNoBackend], 4u);
  EXPECT_EQ(view.workers[0].counters.handoffs_out[1], 11u);
  EXPECT_EQ(view.total.handoffs_out_total(), 24u);
  EXPECT_EQ(view.total.handoffs_out[0], 13u);
}

TEST(StatsView, SumsPerVipBackendAndSnatAddress) {
  auto a = std::make_unique<WorkerCounters>();
  auto b = std::make_unique<WorkerCounters>();
  a->vips[7].forward_packets.add(10);
  b->vips[7].forward_packets.add(20);
  b->vips[7].reverse_bytes.add(1500);
  a->vips[kMaxVips - 1].new_flows.add(1);
  a->backends[300].active_flows.add(4);
  b->backends[300].active_flows.add(1);
  b->backends[kMaxBackends - 1].new_flows.add(9);
  a->snat_pools[2].add(2);
  b->snat_pools[2].add(1);
  a->snat_in_use[2].add(30);
  b->snat_in_use[2].add(5);
  const WorkerSource sources[] = {{0, a.get(), 100}, {1, b.get(), 50}};

  const StatsView view = gather_stats(sources);
  EXPECT_EQ(view.vip(7).forward_packets, 30u);
  EXPECT_EQ(view.vip(7).reverse_bytes, 1500u);
  EXPECT_EQ(view.vip(8).forward_packets, 0u);
  EXPECT_EQ(view.vip(kMaxVips - 1).new_flows, 1u);
  EXPECT_EQ(view.backend(300).active, 5u);
  EXPECT_EQ(view.backend(kMaxBackends - 1).created, 9u);
  // Ports: each worker's pools times its own pool size.
  EXPECT_EQ(view.snat[2].pools, 3u);
  EXPECT_EQ(view.snat[2].ports, 2u * 100 + 1u * 50);
  EXPECT_EQ(view.snat[2].in_use, 35u);
  EXPECT_EQ(view.snat[2].free(), 215u);
  EXPECT_EQ(view.snat[3].ports, 0u);
}

TEST(StatsView, NoWorkersGivesZeros) {
  const StatsView view = gather_stats({});
  EXPECT_TRUE(view.workers.empty());
  EXPECT_EQ(view.total.rx_packets, 0u);
  EXPECT_EQ(view.vip(0).new_flows, 0u);
  EXPECT_EQ(view.backend(0).active, 0u);
  EXPECT_EQ(view.snat[0].free(), 0u);
}

TEST(StatsView, FreeNeverWrapsBelowZero) {
  // Gauges read at different moments may briefly disagree.
  SnatUsage u{1, 10, 12};
  EXPECT_EQ(u.free(), 0u);
}

}  // namespace
}  // namespace l4lb::controlplane
