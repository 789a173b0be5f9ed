#include "l4lb/controlplane/stats_view.h"

namespace l4lb::controlplane {

void CounterSums::add(const dataplane::WorkerCounters& c) {
  rx_packets += c.rx_packets.get();
  tx_packets += c.tx_packets.get();
  forward_packets += c.forward_packets.get();
  reverse_packets += c.reverse_packets.get();
  slow_path_packets += c.slow_path_packets.get();
  control_packets += c.control_packets.get();
  injected_packets += c.injected_packets.get();
  flows_created += c.flows_created.get();
  flows_expired += c.flows_expired.get();
  flows_closed += c.flows_closed.get();
  flows_active += c.flows_active.get();
  flows_reset += c.flows_reset.get();
  flows_evicted += c.flows_evicted.get();
  flows_evicted_for_port += c.flows_evicted_for_port.get();
  flows_embryonic += c.flows_embryonic.get();
  closed_port_rejects += c.closed_port_rejects.get();
  redirected_packets += c.redirected_packets.get();
  stateless_reverse_packets += c.stateless_reverse_packets.get();
  icmp_errors_translated += c.icmp_errors_translated.get();
  fragment_datagrams += c.fragment_datagrams.get();
  fragments_followed += c.fragments_followed.get();
  fragments_held += c.fragments_held.get();
  handoffs_in += c.handoffs_in.get();
  for (size_t st = 1; st < flows_by_state.size(); ++st) flows_by_state[st] += c.flows_by_state[st].get();
  for (size_t w = 0; w < handoffs_out.size(); ++w) handoffs_out[w] += c.handoffs_out[w].get();
  for (size_t r = 0; r < drops.size(); ++r) drops[r] += c.drops[r].get();
}

uint64_t CounterSums::handoffs_out_total() const {
  uint64_t sum = 0;
  for (const uint64_t n : handoffs_out) sum += n;
  return sum;
}

StatsView gather_stats(std::span<const WorkerSource> workers) {
  StatsView view;
  view.vips = std::make_unique<VipTraffic[]>(kMaxVips);
  view.backends = std::make_unique<BackendFlows[]>(kMaxBackends);
  for (const WorkerSource& w : workers) {
    const dataplane::WorkerCounters& c = *w.counters;
    WorkerStats& one = view.workers.emplace_back();
    one.index = w.index;
    one.counters.add(c);
    view.total.add(c);
    for (size_t id = 0; id < kMaxVips; ++id) {
      VipTraffic& v = view.vips[id];
      v.new_flows += c.vips[id].new_flows.get();
      v.forward_packets += c.vips[id].forward_packets.get();
      v.forward_bytes += c.vips[id].forward_bytes.get();
      v.reverse_packets += c.vips[id].reverse_packets.get();
      v.reverse_bytes += c.vips[id].reverse_bytes.get();
    }
    for (size_t id = 0; id < kMaxBackends; ++id) {
      view.backends[id].active += c.backends[id].active_flows.get();
      view.backends[id].created += c.backends[id].new_flows.get();
    }
    for (size_t slot = 0; slot < kMaxSnatAddresses; ++slot) {
      const uint64_t pools = c.snat_pools[slot].get();
      view.snat[slot].pools += pools;
      view.snat[slot].ports += pools * w.snat_ports_per_pool;
      view.snat[slot].in_use += c.snat_in_use[slot].get();
    }
  }
  return view;
}

}  // namespace l4lb::controlplane
