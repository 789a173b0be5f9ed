// One gathering of the workers' counters (DESIGN §6): summed per worker and
// in total, per VIP, per backend, per flow state, per SNAT address and per
// drop reason, into plain structs that both the telemetry commands
// (control_api.cc) and the Prometheus text (mgmt_core.cc) render, so the
// two can no longer sum differently. No DPDK: the inputs are the counter
// blocks themselves. Any thread may gather (counters are relaxed atomics
// with one writer each); a view is a moment's numbers, not one instant's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "l4lb/common/limits.h"
#include "l4lb/dataplane/drop_reason.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/worker_counters.h"

namespace l4lb::controlplane {

// A worker's counters and what its SNAT pools hold per pool.
struct WorkerSource {
  uint32_t index = 0;
  const dataplane::WorkerCounters* counters = nullptr;
  uint64_t snat_ports_per_pool = 0;  // SnatPools::slice()
};

// The packet, flow, hand-off and drop counters of one worker or of all.
struct CounterSums {
  uint64_t rx_packets = 0, tx_packets = 0, forward_packets = 0, reverse_packets = 0;
  uint64_t slow_path_packets = 0, control_packets = 0, injected_packets = 0;
  uint64_t flows_created = 0, flows_expired = 0, flows_closed = 0, flows_active = 0, flows_reset = 0;
  uint64_t flows_evicted = 0, flows_evicted_for_port = 0, flows_embryonic = 0;
  uint64_t closed_port_rejects = 0, handoffs_in = 0, redirected_packets = 0,
           stateless_reverse_packets = 0, icmp_errors_translated = 0;
  uint64_t fragment_datagrams = 0, fragments_followed = 0, fragments_held = 0;
  std::array<uint64_t, static_cast<size_t>(dataplane::FlowState::kCount)> flows_by_state{};  // [0] unused
  std::array<uint64_t, dataplane::kMaxWorkers> handoffs_out{};                               // to worker i
  std::array<uint64_t, static_cast<size_t>(dataplane::DropReason::kCount)> drops{};

  void add(const dataplane::WorkerCounters& c);
  uint64_t handoffs_out_total() const;
};

struct VipTraffic {
  uint64_t new_flows = 0, forward_packets = 0, forward_bytes = 0, reverse_packets = 0, reverse_bytes = 0;
};

struct BackendFlows {
  uint64_t active = 0;
  uint64_t created = 0;
};

// One SNAT address's pools and ports over all workers.
struct SnatUsage {
  uint64_t pools = 0;
  uint64_t ports = 0;   // in those pools
  uint64_t in_use = 0;  // held by flows
  uint64_t free() const { return ports >= in_use ? ports - in_use : 0; }
};

struct WorkerStats {
  uint32_t index = 0;
  CounterSums counters;
};

struct StatsView {
  std::vector<WorkerStats> workers;  // in the order given
  CounterSums total;
  // By stable id (snapshot_builder): every id, used or not.
  std::unique_ptr<VipTraffic[]> vips;               // kMaxVips
  std::unique_ptr<BackendFlows[]> backends;         // kMaxBackends
  std::array<SnatUsage, kMaxSnatAddresses> snat{};  // by SNAT slot

  const VipTraffic& vip(uint16_t id) const { return vips[id]; }
  const BackendFlows& backend(uint16_t id) const { return backends[id]; }
};

// Reads every counter of `workers` once. Any thread; allocates; never blocks.
StatsView gather_stats(std::span<const WorkerSource> workers);

}  // namespace l4lb::controlplane
