// Per-worker counters: written by exactly one worker, read by the management
// core and the telemetry thread. Each counter is a relaxed atomic updated with
// load+store (no locked instruction: the writer is alone), so readers see
// whole values without a data race.
#pragma once

#include <atomic>
#include <cstdint>

#include "l4lb/dataplane/drop_reason.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/snapshot.h"

namespace l4lb::dataplane {

class Counter {
 public:
  void add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct VipCounters {
  Counter forward_packets;
  Counter forward_bytes;
  Counter reverse_packets;
  Counter reverse_bytes;
  Counter new_flows;
};

struct BackendCounters {
  Counter new_flows;
  Counter active_flows;
};

struct alignas(64) WorkerCounters {
  Counter rx_packets;
  Counter tx_packets;
  Counter forward_packets;
  Counter reverse_packets;
  Counter slow_path_packets;  // to the kernel, best effort
  Counter control_packets;    // to the kernel ahead of the rest (ARP, probe answers)
  Counter injected_packets;  // sent on behalf of the management core
  Counter flows_created;
  Counter flows_expired;     // idle past their timeout
  Counter flows_closed;      // removed after FIN/RST
  Counter flows_active;
  Counter snapshot_generation;
  Counter handoffs_in;                   // packets another worker passed to us
  Counter handoffs_out[kMaxWorkers];     // packets we passed to worker i
  Counter drops[static_cast<size_t>(DropReason::kCount)];
  Counter flows_reset;                   // ended by down_policy: reset
  Counter flows_evicted;                 // unconfirmed flows evicted for a table slot or a port
  Counter flows_evicted_for_port;        // ... of them, for a port of their SNAT pool
  Counter flows_embryonic;               // gauge: unconfirmed flows (flow_state.h)
  Counter flows_by_state[static_cast<size_t>(FlowState::kCount)];  // gauges ([0] unused)
  Counter closed_port_rejects;           // RSTs / ICMP unreachables sent for closed VIP ports
  Counter redirected_packets;            // passed to another appliance while draining (DESIGN §12)
  Counter stateless_reverse_packets;     // DNAT replies translated without a flow (dnat_reverse)
  Counter icmp_errors_translated;        // ICMP errors about a flow, sent on to its other side
  Counter fragment_datagrams;            // fragmented datagrams followed (fragment_table.h)
  Counter fragments_followed;            // later fragments sent the way of their first
  Counter fragments_held;                // gauge: fragments waiting for their first
  Counter snat_in_use[kMaxSnatAddresses];  // gauge: ports held, by SNAT slot
  Counter snat_pools[kMaxSnatAddresses];   // gauge: pools (one per backend) by SNAT slot
  VipCounters vips[kMaxVips];            // by stable VIP id
  BackendCounters backends[kMaxBackends];  // by stable backend id

  void drop(DropReason r, uint64_t n = 1) { drops[static_cast<size_t>(r)].add(n); }
};

}  // namespace l4lb::dataplane
