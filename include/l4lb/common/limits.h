// The data plane's lifetime limits on stable ids. Plain constants, no DPDK:
// the config loader refuses a file past them (with its key and line) and the
// data plane sizes its per-id arrays by them (dataplane/snapshot.h,
// worker_counters.h, snat_pool.h), so the two cannot disagree.
//
// Counted as controlplane/snapshot_builder assigns the ids, which are never
// reused while the process runs:
//   SNAT addresses  distinct addresses across all VIPs (one slot each)
//   VIPs            distinct VIP names
//   backends        distinct (VIP name, address:port) pairs: the same
//                   address:port under two VIPs is two backends
#pragma once

#include <cstdint>

namespace l4lb {

// Worker lcores: the loader's dataplane.workers range, the size of the
// per-worker arrays (hand-off rings, counters) and of flow-owner steering.
inline constexpr uint32_t kMaxWorkers = 64;
inline constexpr uint32_t kMaxSnatAddresses = 64;
inline constexpr uint32_t kMaxVips = 1024;
inline constexpr uint32_t kMaxBackends = 16384;

}  // namespace l4lb
