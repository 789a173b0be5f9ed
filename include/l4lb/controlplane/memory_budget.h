// The DPDK memory a config's data plane allocates at start, and the error
// when it cannot fit (issue 13): refused before any worker allocates, naming
// dataplane.flows_per_worker (or dataplane.mbufs) with its line and the
// numbers, rather than failing halfway with "out of DPDK memory".
// Pure arithmetic over sizes the caller measures (dpdk/memory.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "l4lb/config/config.h"
#include "l4lb/config/config_loader.h"

namespace l4lb::controlplane {

// Bytes a dataplane::FlowTable of `capacity` flows allocates, i.e. its
// memory_bytes(), computed without building one (the bucket count follows
// flow_table.cc: two keys per flow, four keys per 64-byte bucket, even).
// An EAL test pins the two together.
uint64_t flow_table_bytes(uint32_t capacity);

// Rings, port queues, the exception path's TAP queue and packet capture:
// small DPDK allocations not counted one by one (about 1 MiB in all for one
// worker), with room to spare.
inline constexpr uint64_t kOtherDataplaneBytes = 16ull << 20;

struct MemoryBudget {
  uint32_t workers = 0;
  uint32_t flows_per_worker = 0;
  uint64_t flow_table = 0;  // one worker's
  uint64_t snat_pools = 0;  // one worker's SNAT port pool arena (the largest slice)
  uint64_t mbuf_pool = 0;
  uint64_t rings = 0;  // per-worker and hand-off rings
  uint64_t other = kOtherDataplaneBytes;
  uint64_t total() const { return uint64_t{workers} * (flow_table + snat_pools) + mbuf_pool + rings + other; }
};

// What `config`'s data plane takes: flow tables from its dataplane keys;
// the mbuf pool and the rings as measured by the caller.
MemoryBudget dataplane_budget(const config::Config& config, uint64_t mbuf_pool_bytes, uint64_t ring_bytes);

// nullopt when `budget` fits in `available` bytes. Otherwise the error for
// `source` (the config file): key dataplane.mbufs when the mbuf pool does
// not fit even beside the smallest flow tables, else
// dataplane.flows_per_worker, with the key's line, the numbers and how many
// flows per worker would fit. `available_detail` says where `available`
// comes from.
std::optional<config::ConfigError> memory_problem(const config::Config& config, const std::string& source,
                                                  const MemoryBudget& budget, uint64_t available,
                                                  const std::string& available_detail);

}  // namespace l4lb::controlplane
