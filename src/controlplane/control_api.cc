#include "l4lb/controlplane/control_api.h"

#include <rte_telemetry.h>

#include <ctime>

namespace l4lb::controlplane {

namespace {

std::atomic<const ControlState*> g_state{nullptr};

struct Totals {
  uint64_t rx = 0, tx = 0, fwd = 0, rev = 0, slow = 0, injected = 0;
  uint64_t created = 0, expired = 0, closed = 0, active = 0;
  uint64_t drops[static_cast<size_t>(dataplane::DropReason::kCount)] = {};

  void add(const dataplane::WorkerCounters& c) {
    rx += c.rx_packets.get();
    tx += c.tx_packets.get();
    fwd += c.forward_packets.get();
    rev += c.reverse_packets.get();
    slow += c.slow_path_packets.get();
    injected += c.injected_packets.get();
    created += c.flows_created.get();
    expired += c.flows_expired.get();
    closed += c.flows_closed.get();
    active += c.flows_active.get();
    for (size_t i = 0; i < std::size(drops); ++i) drops[i] += c.drops[i].get();
  }

  void write(rte_tel_data* d) const {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "rx_packets", rx);
    rte_tel_data_add_dict_u64(d, "tx_packets", tx);
    rte_tel_data_add_dict_u64(d, "forward_packets", fwd);
    rte_tel_data_add_dict_u64(d, "reverse_packets", rev);
    rte_tel_data_add_dict_u64(d, "slow_path_packets", slow);
    rte_tel_data_add_dict_u64(d, "injected_packets", injected);
    rte_tel_data_add_dict_u64(d, "flows_created", created);
    rte_tel_data_add_dict_u64(d, "flows_expired", expired);
    rte_tel_data_add_dict_u64(d, "flows_closed", closed);
    rte_tel_data_add_dict_u64(d, "flows_active", active);
    // Telemetry allows one level of nesting, so drop reasons are flattened.
    for (size_t i = 0; i < std::size(drops); ++i) {
      const std::string name = std::string("drop_") + dataplane::kDropReasonNames[i];
      rte_tel_data_add_dict_u64(d, name.c_str(), drops[i]);
    }
  }
};

int stats_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "workers", static_cast<int>(s->workers.size()));
  Totals total;
  for (const auto* w : s->workers) {
    Totals one;
    one.add(w->counters());
    total.add(w->counters());
    rte_tel_data* c = rte_tel_data_alloc();
    one.write(c);
    rte_tel_data_add_dict_container(d, ("worker" + std::to_string(w->index())).c_str(), c, 0);
  }
  rte_tel_data* c = rte_tel_data_alloc();
  total.write(c);
  rte_tel_data_add_dict_container(d, "total", c, 0);
  return 0;
}

int status_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "version", s->version.c_str());
  rte_tel_data_add_dict_string(d, "config", s->config_path.c_str());
  rte_tel_data_add_dict_u64(d, "uptime_s", static_cast<uint64_t>(std::time(nullptr)) - s->start_time_s);
  rte_tel_data_add_dict_int(d, "workers", static_cast<int>(s->workers.size()));
  rte_tel_data_add_dict_u64(d, "snapshot_generation", s->snapshot_generation.load());
  rte_tel_data_add_dict_u64(d, "vips", s->vip_count.load());
  rte_tel_data_add_dict_u64(d, "backends", s->backend_count.load());
  rte_tel_data_add_dict_u64(d, "backends_resolved", s->backends_resolved.load());
  rte_tel_data_add_dict_u64(d, "exception_to_kernel", s->exception_to_kernel.load());
  rte_tel_data_add_dict_u64(d, "exception_from_kernel", s->exception_from_kernel.load());
  uint64_t active = 0;
  for (const auto* w : s->workers) active += w->counters().flows_active.get();
  rte_tel_data_add_dict_u64(d, "flows_active", active);
  return 0;
}

}  // namespace

void install_control_api(const ControlState* state) {
  static bool registered = false;
  g_state.store(state, std::memory_order_release);
  if (registered || !state) return;
  registered = true;
  rte_telemetry_register_cmd("/l4lb/status", status_cb, "Appliance status. No parameters");
  rte_telemetry_register_cmd("/l4lb/stats", stats_cb,
                             "Per-worker and total packet, flow and drop counters. No parameters");
}

}  // namespace l4lb::controlplane
