#include "l4lb/controlplane/memory_budget.h"

#include <algorithm>
#include <cstdio>

#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/flow_table.h"
#include "l4lb/dataplane/snat_pool.h"
#include "l4lb/dpdk/memory.h"

namespace l4lb::controlplane {

namespace {
constexpr uint32_t kMinFlowsPerWorker = 1024;  // the loader's lower bound

int line_of(const config::Config& config, const std::string& key) {
  const auto& lines = config.dataplane.key_lines;
  if (auto it = lines.find(key); it != lines.end()) return it->second;
  if (auto it = lines.find(""); it != lines.end()) return it->second;  // the dataplane section
  return 0;
}
}  // namespace

uint64_t flow_table_bytes(uint32_t capacity) {
  const uint64_t buckets = std::max<uint64_t>(2, ((uint64_t{capacity} * 2 + 3) / 4 + 1) & ~uint64_t{1});
  return buckets * sizeof(dataplane::FlowBucket) +
         uint64_t{capacity} * (sizeof(dataplane::FlowEntry) + sizeof(uint32_t));
}

MemoryBudget dataplane_budget(const config::Config& config, uint64_t mbuf_pool_bytes, uint64_t ring_bytes) {
  MemoryBudget b;
  b.workers = config.dataplane.workers;
  b.flows_per_worker = config.dataplane.flows_per_worker;
  b.flow_table = flow_table_bytes(config.dataplane.flows_per_worker);
  const dataplane::SnatPartition partition(config.dataplane.snat_port_min, config.dataplane.snat_port_max,
                                           b.workers);
  const uint32_t last = b.workers ? b.workers - 1 : 0;  // the last worker's slice takes the remainder
  b.snat_pools = dataplane::SnatPools::memory_for(
      uint32_t{partition.last_port(last)} - partition.first_port(last) + 1, config.dataplane.snat_pools_per_worker);
  b.mbuf_pool = mbuf_pool_bytes;
  b.rings = ring_bytes;
  return b;
}

std::optional<config::ConfigError> memory_problem(const config::Config& config, const std::string& source,
                                                  const MemoryBudget& budget, uint64_t available,
                                                  const std::string& available_detail) {
  if (budget.total() <= available) return std::nullopt;
  using dpdk::format_bytes;
  const double per_flow =
      budget.flows_per_worker ? static_cast<double>(budget.flow_table) / budget.flows_per_worker : 0.0;
  char per_flow_text[32];
  std::snprintf(per_flow_text, sizeof per_flow_text, "%.0f B", per_flow);
  const std::string parts =
      "flow tables " + std::to_string(budget.workers) + (budget.workers == 1 ? " worker x " : " workers x ") +
      std::to_string(budget.flows_per_worker) + " flows x " + per_flow_text + " = " +
      format_bytes(uint64_t{budget.workers} * budget.flow_table) + ", SNAT port pools " +
      std::to_string(budget.workers) + " x " + std::to_string(config.dataplane.snat_pools_per_worker) + " = " +
      format_bytes(uint64_t{budget.workers} * budget.snat_pools) + ", mbuf pool " +
      std::to_string(config.dataplane.mbufs) + " mbufs = " + format_bytes(budget.mbuf_pool) + ", rings " +
      format_bytes(budget.rings) + ", other " + format_bytes(budget.other);
  const std::string need = "the data plane needs " + format_bytes(budget.total()) + " of DPDK memory but " +
                           format_bytes(available) + " is free [" + available_detail + "]: " + parts;
  const uint64_t fixed = budget.mbuf_pool + budget.rings + budget.other + uint64_t{budget.workers} * budget.snat_pools;
  const uint64_t smallest = fixed + uint64_t{budget.workers} * flow_table_bytes(kMinFlowsPerWorker);
  if (smallest > available) {
    if (budget.mbuf_pool + budget.rings + budget.other + uint64_t{budget.workers} * flow_table_bytes(kMinFlowsPerWorker) <=
        available) {
      return config::ConfigError(source, "dataplane.snat_pools_per_worker", line_of(config, "snat_pools_per_worker"),
                                 need +
                                     "; even with the fewest flows the SNAT port pools do not fit: lower "
                                     "dataplane.snat_pools_per_worker, narrow dataplane.snat_port_range or "
                                     "reserve more hugepages");
    }
    return config::ConfigError(source, "dataplane.mbufs", line_of(config, "mbufs"),
                               need +
                                   "; even with the fewest flows the mbuf pool does not fit: lower "
                                   "dataplane.mbufs or reserve more hugepages");
  }
  // The largest capacity that fits, per worker (flow_table_bytes grows with it).
  const uint64_t room = (available - fixed) / std::max<uint32_t>(budget.workers, 1);
  uint64_t lo = kMinFlowsPerWorker, hi = budget.flows_per_worker;
  while (lo + 1 < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    (flow_table_bytes(static_cast<uint32_t>(mid)) <= room ? lo : hi) = mid;
  }
  return config::ConfigError(source, "dataplane.flows_per_worker", line_of(config, "flows_per_worker"),
                             need + "; at most " + std::to_string(lo) +
                                 " flows per worker fit: lower dataplane.flows_per_worker or reserve more "
                                 "hugepages");
}

}  // namespace l4lb::controlplane
