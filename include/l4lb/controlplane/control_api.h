// The control API: commands registered with DPDK telemetry, so both
// l4lbctl and dpdk-telemetry.py can query a running l4lbd (DESIGN §8).
// Callbacks run on DPDK's telemetry thread and only read: counters are
// single-writer atomics, the rest is published by the management core.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "l4lb/common/limits.h"
#include "l4lb/controlplane/control_queue.h"
#include "l4lb/controlplane/stats_view.h"
#include "l4lb/dataplane/worker.h"

namespace l4lb::controlplane {

// One row of a table answer (a VIP, a backend): name -> value.
using ControlValue = std::variant<uint64_t, int64_t, std::string>;
using ControlRow = std::vector<std::pair<std::string, ControlValue>>;

// Rows [start, start + rows.size()) of a table of `total` rows. Tables are
// answered a page at a time because a telemetry answer holds at most
// RTE_TEL_MAX_DICT_ENTRIES entries and 16 KiB of JSON (DESIGN §8).
struct ControlRowPage {
  std::vector<ControlRow> rows;
  size_t total = 0;
};

// What only the management core can answer. Each runs on the management
// core (through ControlQueue); an empty string means success, any other
// string is the error to show the operator.
struct ControlHooks {
  std::function<std::string()> reload;
  // verb: set-weight | drain | enable; weight only for set-weight.
  std::function<std::string(const std::string& verb, const std::string& vip, const std::string& backend,
                            uint32_t weight)>
      backend_admin;
  // At most `max` rows from row `start` on.
  std::function<ControlRowPage(size_t start, size_t max)> vips;
  std::function<ControlRowPage(const std::string& vip, size_t start, size_t max)> backends;  // vip "" = all
  // The routes l4lbd decided on (bgp): address, owner, announced, reason.
  std::function<ControlRowPage(size_t start, size_t max)> routes;
  // Begins the appliance's drain (DESIGN §12): at most `seconds` (0: the
  // config's shutdown_drain_s, or 60 s without one), then l4lbd exits.
  std::function<std::string(uint32_t seconds)> drain;
};

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
  // Refreshed by the management core every ~100 ms.
  std::atomic<uint64_t> mbufs_in_use{0};
  std::atomic<uint64_t> mbufs_total{0};
  std::atomic<uint64_t> port_rx_packets{0};
  std::atomic<uint64_t> port_tx_packets{0};
  std::atomic<uint64_t> port_rx_missed{0};   // dropped by the NIC: rx ring full
  std::atomic<uint64_t> port_rx_nombuf{0};   // rx stalled: mbuf pool empty
  std::atomic<uint64_t> port_rx_errors{0};
  std::atomic<uint64_t> port_tx_errors{0};
  // The appliance's drain and route announcement (DESIGN §12).
  std::atomic<uint64_t> draining{0};
  std::atomic<uint64_t> drain_flows_left{0};
  std::atomic<uint64_t> drain_seconds_left{0};
  std::atomic<uint64_t> bgp_enabled{0};
  std::atomic<uint64_t> routes_wanted{0};
  std::atomic<uint64_t> routes_announced{0};  // as BIRD last confirmed
  std::atomic<uint64_t> routes_in_sync{0};
  // Wire-order SNAT address by slot (0: unused), set by the management core
  // when it builds a snapshot, so /l4lb/snat reads the workers' gauges
  // without waiting for it (it must answer during a flood too).
  std::atomic<uint32_t> snat_address_by_slot[l4lb::kMaxSnatAddresses] = {};
  ControlQueue* queue = nullptr;
  ControlHooks hooks;
};

// The stats view's inputs for these workers (stats_view.h). Any thread.
std::vector<WorkerSource> worker_sources(const std::vector<const dataplane::Worker*>& workers);

// Registers the /l4lb/* telemetry commands (once per process) and points
// them at `state`; pass nullptr before `state` goes away: it returns once no
// command still reads the old state (a command waiting for the management
// core can hold it up to those 5 s). Management core only. Commands that
// need the management core wait for it at most 5 s.
void install_control_api(const ControlState* state);

}  // namespace l4lb::controlplane
