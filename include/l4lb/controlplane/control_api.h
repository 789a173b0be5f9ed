// The control API: commands registered with DPDK telemetry, so both
// l4lbctl and dpdk-telemetry.py can query a running l4lbd (DESIGN §8).
// Callbacks run on DPDK's telemetry thread and only read: counters are
// single-writer atomics, the rest is published by the management core.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "l4lb/dataplane/worker.h"

namespace l4lb::controlplane {

struct ControlState {
  std::string version;
  std::string config_path;
  uint64_t start_time_s = 0;
  std::vector<const dataplane::Worker*> workers;
  std::atomic<uint64_t> snapshot_generation{0};
  std::atomic<uint64_t> vip_count{0};
  std::atomic<uint64_t> backend_count{0};
  std::atomic<uint64_t> backends_resolved{0};
  std::atomic<uint64_t> exception_to_kernel{0};
  std::atomic<uint64_t> exception_from_kernel{0};
};

// Registers /l4lb/status and /l4lb/stats (once per process) and points them
// at `state`; pass nullptr before `state` goes away. Management core only.
void install_control_api(const ControlState* state);

}  // namespace l4lb::controlplane
