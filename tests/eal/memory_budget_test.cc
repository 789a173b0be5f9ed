// Issue 13: a config whose tables do not fit in DPDK memory is refused at
// start with the key and line. The sizes the check adds up must be what
// DPDK really takes: flow_table_bytes() against FlowTable::memory_bytes(),
// pktmbuf_pool_bytes() against the heap a real pool takes; socket_memory()
// against the EAL's -m; then the decision and its message.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include <cstdio>
#include <string>

#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/memory_budget.h"
#include "l4lb/dataplane/flow_table.h"
#include "l4lb/dataplane/snat_pool.h"
#include "l4lb/dpdk/handles.h"
#include "l4lb/dpdk/memory.h"
#include "test_eal.h"

using namespace l4lb;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

uint64_t heap_free() {
  rte_malloc_socket_stats stats{};
  rte_malloc_get_socket_stats(0, &stats);
  return stats.heap_freesz_bytes;
}

TEST(MemoryBudget, FlowTableBytesAreWhatAFlowTableTakes) {
  for (uint32_t capacity : {1024u, 1025u, 1027u, 4096u, 100000u, 262143u}) {
    SCOPED_TRACE(capacity);
    dataplane::FlowTable table("budget", capacity, 0, 1);
    EXPECT_EQ(controlplane::flow_table_bytes(capacity), table.memory_bytes());
  }
  // 100 B per flow, as DESIGN §3 says.
  EXPECT_NEAR(static_cast<double>(controlplane::flow_table_bytes(1 << 20)) / (1 << 20), 100.0, 0.5);
}

TEST(MemoryBudget, MbufPoolBytesCoverWhatThePoolTakes) {
  for (unsigned count : {1024u, 4095u}) {
    SCOPED_TRACE(count);
    const uint64_t before = heap_free();
    {
      auto pool = dpdk::make_pktmbuf_pool("budget_pool_" + std::to_string(count), count, 0);
      const uint64_t taken = before - heap_free();
      const uint64_t estimate = dpdk::pktmbuf_pool_bytes(count, 0);
      std::printf("[ figures  ] %u mbufs: pool takes %.2f MiB, estimate %.2f MiB (%lld B apart)\n", count,
                  static_cast<double>(taken) / kMiB, static_cast<double>(estimate) / kMiB,
                  static_cast<long long>(estimate) - static_cast<long long>(taken));
      EXPECT_GE(estimate, taken);
      EXPECT_LE(estimate, taken + taken / 20 + kMiB);  // close: within 5 % and 1 MiB
    }
  }
}

TEST(MemoryBudget, SocketMemoryWithoutHugepagesIsTheHeap) {
  const dpdk::SocketMemory m = dpdk::socket_memory(0);
  EXPECT_EQ(m.hugepages_free, 0u);  // --no-huge: -m is all there is
  EXPECT_EQ(m.heap_free, heap_free());
  EXPECT_LE(m.total(), 128 * kMiB);
  EXPECT_GE(m.total(), 64 * kMiB);  // what the EAL itself took is small
  EXPECT_NE(m.detail.find("no hugepages"), std::string::npos) << m.detail;
}

// dataplane.flows_per_worker on line 4, mbufs on line 5, SNAT pools on 6.
const char* kConfig = R"(# a comment
dataplane:
  workers: 2
  flows_per_worker: 1048576
  mbufs: 8192
  snat_pools_per_worker: 16
ports:
  - {name: net_tap0, address: 10.99.0.1/24}
vips:
  - {name: web, address: 10.99.0.100, port: 80, snat: [10.99.0.1], backends: [{address: 10.99.0.21, port: 80}]}
)";

TEST(MemoryBudget, RefusalNamesFlowsPerWorkerWithItsLineAndTheNumbers) {
  const config::Config c = config::parse_config(kConfig, "lb.yaml");
  const auto budget = controlplane::dataplane_budget(c, 20 * kMiB, kMiB);
  EXPECT_EQ(budget.flow_table, controlplane::flow_table_bytes(1048576));
  EXPECT_EQ(budget.snat_pools, dataplane::SnatPools::memory_for(11264, 16)) << "the default range over 2 workers";
  EXPECT_EQ(budget.total(), 2 * (budget.flow_table + budget.snat_pools) + 20 * kMiB + kMiB +
                                controlplane::kOtherDataplaneBytes);
  EXPECT_FALSE(controlplane::memory_problem(c, "lb.yaml", budget, budget.total(), "test").has_value());

  const uint64_t available = 128 * kMiB;
  const auto error = controlplane::memory_problem(c, "lb.yaml", budget, available, "heap 128.0 MiB free");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->key(), "dataplane.flows_per_worker");
  EXPECT_EQ(error->line(), 4);
  const std::string what = error->what();
  EXPECT_EQ(what.rfind("lb.yaml:4: dataplane.flows_per_worker: the data plane needs ", 0), 0u) << what;
  for (const std::string part : {"but 128.0 MiB is free [heap 128.0 MiB free]",
                                 "flow tables 2 workers x 1048576 flows x 100 B = 200.0 MiB",
                                 "mbuf pool 8192 mbufs = 20.0 MiB", "rings 1.0 MiB", "other 16.0 MiB"})
    EXPECT_NE(what.find(part), std::string::npos) << "no '" << part << "' in: " << what;
  // The flows per worker it offers fit, one more would not.
  const size_t at = what.find("at most ");
  ASSERT_NE(at, std::string::npos) << what;
  const uint64_t fit = std::stoull(what.substr(at + 8));
  const uint64_t room =
      (available - 20 * kMiB - kMiB - controlplane::kOtherDataplaneBytes - 2 * budget.snat_pools) / 2;
  EXPECT_LE(controlplane::flow_table_bytes(static_cast<uint32_t>(fit)), room);
  EXPECT_GT(controlplane::flow_table_bytes(static_cast<uint32_t>(fit + 1)), room);
}

TEST(MemoryBudget, RefusalNamesMbufsWhenThePoolAloneDoesNotFit) {
  const config::Config c = config::parse_config(kConfig, "lb.yaml");
  const auto budget = controlplane::dataplane_budget(c, 200 * kMiB, 0);
  const auto error = controlplane::memory_problem(c, "lb.yaml", budget, 100 * kMiB, "test");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->key(), "dataplane.mbufs");
  EXPECT_EQ(error->line(), 5);
}

TEST(MemoryBudget, RefusalNamesSnatPoolsWhenTheirArenaAloneDoesNotFit) {
  config::Config c = config::parse_config(kConfig, "lb.yaml");
  c.dataplane.snat_pools_per_worker = 4096;  // 4096 x 66 KiB per worker
  const auto budget = controlplane::dataplane_budget(c, 20 * kMiB, kMiB);
  const auto error = controlplane::memory_problem(c, "lb.yaml", budget, 256 * kMiB, "test");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->key(), "dataplane.snat_pools_per_worker");
  EXPECT_EQ(error->line(), 6);
  EXPECT_NE(std::string(error->what()).find("SNAT port pools 2 x 4096"), std::string::npos) << error->what();
}

TEST(MemoryBudget, DefaultFlowsAreBlamedAtTheSectionOrTheDocument) {
  // No flows_per_worker key: the dataplane section's line; no section: 0.
  config::Config c = config::parse_config(
      "dataplane: {workers: 1, snat_pools_per_worker: 16}\n"
      "ports: [{name: p, address: 10.99.0.1/24}]\n"
      "vips: [{name: w, address: 10.99.0.100, port: 80, snat: [10.99.0.1], backends: [{address: 10.99.0.21, "
      "port: 80}]}]\n",
      "lb.yaml");
  auto budget = controlplane::dataplane_budget(c, kMiB, 0);
  auto error = controlplane::memory_problem(c, "lb.yaml", budget, 64 * kMiB, "test");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->key(), "dataplane.flows_per_worker");
  EXPECT_EQ(error->line(), 1);
  c.dataplane.key_lines.clear();
  error = controlplane::memory_problem(c, "lb.yaml", budget, 64 * kMiB, "test");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line(), 0);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("memory_budget_test", "128", "0")) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
