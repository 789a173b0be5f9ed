// What the management core reports about itself: the rows of the VIP and
// backend tables (telemetry: l4lbctl vips/backends) and the Prometheus
// text of /metrics. Both read the stats view, the config and the health
// state; nothing here changes them.
#include "l4lb/controlplane/mgmt_core.h"

#include <rte_mempool.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "l4lb/common/address_text.h"
#include "l4lb/controlplane/prometheus.h"
#include "l4lb/maglev/maglev.h"

namespace l4lb::controlplane {

ControlRowPage ManagementCore::vip_rows(size_t start, size_t max) const {
  ControlRowPage page;
  page.total = config_.vips.size();
  auto& rows = page.rows;
  const dataplane::Snapshot* snap = publisher_.current();
  const SnapshotInputs in{&config_, &neighbours_.map(), port_mac_, 0, 0, &health_up_, &admin_weights_};
  const StatsView stats = gather_stats(worker_sources(workers_));
  for (size_t i = start; i < config_.vips.size() && rows.size() < max; ++i) {
    const auto& v = config_.vips[i];
    const VipTraffic& traffic = stats.vip(snap->vips[i].id);
    uint64_t up = 0;
    for (const auto& b : v.backends) up += describe_backend(in, v, b).effective > 0;
    rows.push_back({{"name", v.name},
                    {"vip", format_endpoint(v.address, v.port)},
                    {"protocol", std::string(v.protocol == config::Protocol::kTcp ? "tcp" : "udp")},
                    {"mode", std::string(v.mode == config::NatMode::kFnat ? "fnat" : "dnat")},
                    {"table_size", uint64_t{v.table_size}},
                    {"backends", uint64_t{v.backends.size()}},
                    {"backends_in_service", up},
                    {"fail_open", uint64_t{snap->vips[i].fail_open}},
                    // The table in force now: it follows health, neighbours
                    // and overrides (DESIGN §5), so it can differ between
                    // appliances with the same config.
                    {"maglev", maglev::format_fingerprint(snap->maglev_fingerprints[i])},
                    {"new_flows", traffic.new_flows},
                    {"forward_packets", traffic.forward_packets},
                    {"forward_bytes", traffic.forward_bytes},
                    {"reverse_packets", traffic.reverse_packets},
                    {"reverse_bytes", traffic.reverse_bytes}});
  }
  return page;
}

ControlRowPage ManagementCore::backend_rows(const std::string& vip_filter, size_t start, size_t max) const {
  ControlRowPage page;
  auto& rows = page.rows;
  const dataplane::Snapshot* snap = publisher_.current();
  const SnapshotInputs in{&config_, &neighbours_.map(), port_mac_, 0, 0, &health_up_, &admin_weights_};
  const StatsView stats = gather_stats(worker_sources(workers_));
  for (size_t i = 0; i < config_.vips.size(); ++i) {
    const auto& v = config_.vips[i];
    if (!vip_filter.empty() && v.name != vip_filter) continue;
    for (size_t j = 0; j < v.backends.size(); ++j) {
      // Counted whole, built only within the page.
      const size_t row = page.total++;
      if (row < start || rows.size() >= max) continue;
      const auto& b = v.backends[j];
      const BackendView view = describe_backend(in, v, b);
      const uint16_t id = snap->vips[i].backends[j].id;
      const BackendFlows& flows = stats.backend(id);
      const ProbeStatus* st = health_.status(view.key);
      const double rate = id < new_flows_rate_.size() ? new_flows_rate_[id] : 0.0;
      rows.push_back({{"vip", v.name},
                      {"backend", format_endpoint(b.address, b.port)},
                      {"state", std::string(view.state())},
                      {"weight", uint64_t{b.weight}},
                      {"admin_weight", view.admin_override ? ControlValue(uint64_t{view.weight})
                                                           : ControlValue(std::string("-"))},
                      {"effective_weight", uint64_t{view.effective}},
                      {"active_flows", flows.active},
                      {"new_flows", flows.created},
                      {"new_flows_per_s", static_cast<uint64_t>(rate + 0.5)},
                      {"probe", std::string(v.health.type == config::HealthType::kNone  ? "none"
                                            : v.health.type == config::HealthType::kTcp ? "tcp"
                                                                                        : "http")},
                      {"probe_latency_us", int64_t{st ? st->last_latency_us : -1}},
                      {"probes", uint64_t{st ? st->probes : 0}},
                      {"probe_failures", uint64_t{st ? st->failures : 0}},
                      {"last_error", st ? st->last_error : std::string()}});
    }
  }
  return page;
}

std::string ManagementCore::render_metrics() const {
  PrometheusWriter w;
  const dataplane::Snapshot* snap = publisher_.current();
  const SnapshotInputs in{&config_, &neighbours_.map(), port_mac_, 0, 0, &health_up_, &admin_weights_};
  const StatsView stats = gather_stats(worker_sources(workers_));

  w.family("l4lb_packets_total", "counter", "Packets forwarded per VIP and direction");
  for (size_t i = 0; i < config_.vips.size(); ++i) {
    const std::string& name = config_.vips[i].name;
    const VipTraffic& t = stats.vip(snap->vips[i].id);
    w.sample("l4lb_packets_total", {{"vip", name}, {"direction", "forward"}}, t.forward_packets);
    w.sample("l4lb_packets_total", {{"vip", name}, {"direction", "reverse"}}, t.reverse_packets);
  }
  w.family("l4lb_bytes_total", "counter", "Bytes forwarded per VIP and direction");
  for (size_t i = 0; i < config_.vips.size(); ++i) {
    const std::string& name = config_.vips[i].name;
    const VipTraffic& t = stats.vip(snap->vips[i].id);
    w.sample("l4lb_bytes_total", {{"vip", name}, {"direction", "forward"}}, t.forward_bytes);
    w.sample("l4lb_bytes_total", {{"vip", name}, {"direction", "reverse"}}, t.reverse_bytes);
  }
  w.family("l4lb_vip_fail_open", "gauge", "1 while every backend of the VIP is down and health is ignored");
  for (size_t i = 0; i < config_.vips.size(); ++i)
    w.sample("l4lb_vip_fail_open", {{"vip", config_.vips[i].name}}, uint64_t{snap->vips[i].fail_open});
  w.family("l4lb_vip_flows_created_total", "counter", "New flows per VIP");
  for (size_t i = 0; i < config_.vips.size(); ++i)
    w.sample("l4lb_vip_flows_created_total", {{"vip", config_.vips[i].name}},
             stats.vip(snap->vips[i].id).new_flows);

  struct BackendSample {
    std::string vip, backend;
    BackendView view;
    BackendFlows flows;
    const ProbeStatus* probe = nullptr;
  };
  std::vector<BackendSample> backends;
  for (size_t i = 0; i < config_.vips.size(); ++i)
    for (size_t j = 0; j < config_.vips[i].backends.size(); ++j) {
      const auto& b = config_.vips[i].backends[j];
      BackendSample s{config_.vips[i].name, format_endpoint(b.address, b.port),
                      describe_backend(in, config_.vips[i], b), stats.backend(snap->vips[i].backends[j].id)};
      if (config_.vips[i].health.type != config::HealthType::kNone) s.probe = health_.status(s.view.key);
      backends.push_back(std::move(s));
    }
  w.family("l4lb_backend_up", "gauge", "1 if the backend is healthy (unprobed backends count as healthy)");
  for (const auto& s : backends)
    w.sample("l4lb_backend_up", {{"vip", s.vip}, {"backend", s.backend}}, uint64_t{s.view.healthy});
  w.family("l4lb_backend_weight", "gauge", "Maglev weight in force (0: down, unresolved or drained)");
  for (const auto& s : backends)
    w.sample("l4lb_backend_weight", {{"vip", s.vip}, {"backend", s.backend}}, uint64_t{s.view.effective});
  w.family("l4lb_backend_flows_active", "gauge", "Flows to the backend in the flow tables");
  for (const auto& s : backends)
    w.sample("l4lb_backend_flows_active", {{"vip", s.vip}, {"backend", s.backend}}, s.flows.active);
  w.family("l4lb_backend_flows_created_total", "counter", "Flows created to the backend");
  for (const auto& s : backends)
    w.sample("l4lb_backend_flows_created_total", {{"vip", s.vip}, {"backend", s.backend}}, s.flows.created);
  w.family("l4lb_backend_probe_latency_seconds", "gauge", "Duration of the last answered health probe");
  for (const auto& s : backends)
    if (s.probe && s.probe->last_latency_us >= 0)
      w.sample("l4lb_backend_probe_latency_seconds", {{"vip", s.vip}, {"backend", s.backend}},
               static_cast<double>(s.probe->last_latency_us) / 1e6);
  w.family("l4lb_backend_probe_failures_total", "counter", "Failed health probes");
  for (const auto& s : backends)
    if (s.probe)
      w.sample("l4lb_backend_probe_failures_total", {{"vip", s.vip}, {"backend", s.backend}}, s.probe->failures);

  w.family("l4lb_flows_active", "gauge", "Flows in each worker's table");
  for (const auto& wk : stats.workers)
    w.sample("l4lb_flows_active", {{"worker", std::to_string(wk.index)}}, wk.counters.flows_active);
  // Beside flows_active, so a dashboard or alert can say how full a table is.
  w.family("l4lb_flows_capacity", "gauge", "Flow-table entries per worker (dataplane.flows_per_worker)");
  for (const auto* wk : workers_)
    w.sample("l4lb_flows_capacity", {{"worker", std::to_string(wk->index())}},
             uint64_t{wk->flows().capacity()});
  w.family("l4lb_flows_created_total", "counter", "Flows created per worker");
  for (const auto& wk : stats.workers)
    w.sample("l4lb_flows_created_total", {{"worker", std::to_string(wk.index)}}, wk.counters.flows_created);
  w.family("l4lb_flows_ended_total", "counter", "Flows removed per worker, by why");
  for (const auto& wk : stats.workers) {
    const std::string id = std::to_string(wk.index);
    w.sample("l4lb_flows_ended_total", {{"worker", id}, {"reason", "expired"}}, wk.counters.flows_expired);
    w.sample("l4lb_flows_ended_total", {{"worker", id}, {"reason", "closed"}}, wk.counters.flows_closed);
    w.sample("l4lb_flows_ended_total", {{"worker", id}, {"reason", "reset"}}, wk.counters.flows_reset);
    w.sample("l4lb_flows_ended_total", {{"worker", id}, {"reason", "evicted"}}, wk.counters.flows_evicted);
  }
  w.family("l4lb_worker_packets_total", "counter", "Packets per worker: received, sent, to the kernel, from the kernel");
  for (const auto& wk : stats.workers) {
    const std::string id = std::to_string(wk.index);
    const CounterSums& c = wk.counters;
    w.sample("l4lb_worker_packets_total", {{"worker", id}, {"kind", "rx"}}, c.rx_packets);
    w.sample("l4lb_worker_packets_total", {{"worker", id}, {"kind", "tx"}}, c.tx_packets);
    w.sample("l4lb_worker_packets_total", {{"worker", id}, {"kind", "slow_path"}}, c.slow_path_packets);
    w.sample("l4lb_worker_packets_total", {{"worker", id}, {"kind", "control"}}, c.control_packets);
    w.sample("l4lb_worker_packets_total", {{"worker", id}, {"kind", "injected"}}, c.injected_packets);
  }
  w.family("l4lb_drops_total", "counter", "Packets dropped, by reason");
  for (size_t r = 0; r < stats.total.drops.size(); ++r)
    w.sample("l4lb_drops_total", {{"reason", dataplane::kDropReasonNames[r]}}, stats.total.drops[r]);
  w.family("l4lb_handoffs_total", "counter", "Packets passed from the worker that received them to the owner");
  for (const auto& from : stats.workers)
    for (const auto& to : stats.workers)
      if (from.index != to.index)
        w.sample("l4lb_handoffs_total",
                 {{"from", std::to_string(from.index)}, {"to", std::to_string(to.index)}},
                 from.counters.handoffs_out[to.index]);
  w.family("l4lb_mbufs_in_use", "gauge", "Packet buffers taken from the pool");
  w.sample("l4lb_mbufs_in_use", {}, uint64_t{rte_mempool_in_use_count(pool_)});
  w.family("l4lb_mbufs_capacity", "gauge", "Packet buffers in the pool");
  w.sample("l4lb_mbufs_capacity", {}, uint64_t{pool_->size});
  w.family("l4lb_port_packets_total", "counter", "Data port counters from the PMD");
  w.sample("l4lb_port_packets_total", {{"kind", "rx"}}, control_.port_rx_packets.load());
  w.sample("l4lb_port_packets_total", {{"kind", "tx"}}, control_.port_tx_packets.load());
  w.sample("l4lb_port_packets_total", {{"kind", "rx_missed"}}, control_.port_rx_missed.load());
  w.sample("l4lb_port_packets_total", {{"kind", "rx_nombuf"}}, control_.port_rx_nombuf.load());
  w.sample("l4lb_port_packets_total", {{"kind", "rx_errors"}}, control_.port_rx_errors.load());
  w.sample("l4lb_port_packets_total", {{"kind", "tx_errors"}}, control_.port_tx_errors.load());
  // A family with one sample per worker, of one of its counters.
  const auto per_worker = [&](const char* name, const char* type, const char* help, uint64_t CounterSums::*value) {
    w.family(name, type, help);
    for (const auto& wk : stats.workers) w.sample(name, {{"worker", std::to_string(wk.index)}}, wk.counters.*value);
  };
  per_worker("l4lb_flows_embryonic", "gauge",
             "Unconfirmed flows per worker: handshake not complete in both directions (any state)",
             &CounterSums::flows_embryonic);
  w.family("l4lb_flows", "gauge", "Flows per worker and state");
  for (const auto& wk : stats.workers)
    for (size_t st = 1; st < wk.counters.flows_by_state.size(); ++st)
      w.sample("l4lb_flows",
               {{"worker", std::to_string(wk.index)}, {"state", dataplane::kFlowStateNames[st]}},
               wk.counters.flows_by_state[st]);
  per_worker("l4lb_flows_evicted_for_port_total", "counter",
             "Unconfirmed flows evicted so a new flow could have their SNAT port", &CounterSums::flows_evicted_for_port);
  per_worker("l4lb_closed_port_rejects_total", "counter", "RSTs and ICMP port unreachables sent for closed VIP ports",
             &CounterSums::closed_port_rejects);
  per_worker("l4lb_redirected_packets_total", "counter",
             "Packets passed to another appliance (bgp.appliances) while this one drains",
             &CounterSums::redirected_packets);
  per_worker("l4lb_stateless_reverse_packets_total", "counter",
             "DNAT replies translated without a flow on this appliance (dnat_reverse: stateless)",
             &CounterSums::stateless_reverse_packets);
  per_worker("l4lb_icmp_errors_translated_total", "counter",
             "ICMP errors about a flow (fragmentation needed, time exceeded, ...) translated to its other side",
             &CounterSums::icmp_errors_translated);
  per_worker("l4lb_fragment_datagrams_total", "counter",
             "Fragmented IPv4 datagrams followed (each fragment goes the way of the datagram's first)",
             &CounterSums::fragment_datagrams);
  per_worker("l4lb_fragments_followed_total", "counter", "Later fragments sent the way of their first fragment",
             &CounterSums::fragments_followed);
  per_worker("l4lb_fragments_held", "gauge", "Fragments waiting for their datagram's first fragment",
             &CounterSums::fragments_held);
  w.family("l4lb_snat_pools", "gauge", "FNAT source port pools (one per backend reached) per SNAT address, all workers");
  w.family("l4lb_snat_ports_in_use", "gauge", "FNAT source ports held by flows, per SNAT address");
  w.family("l4lb_snat_ports_capacity", "gauge", "FNAT source ports in the SNAT address's pools (all workers)");
  w.family("l4lb_snat_ports_free", "gauge", "FNAT source ports of the SNAT address's pools no flow holds");
  for (const auto& [address, slot] : build_state_.snat.slots()) {
    const SnatUsage& u = stats.snat[slot];
    const std::string a = format_ipv4(address);
    w.sample("l4lb_snat_pools", {{"address", a}}, u.pools);
    w.sample("l4lb_snat_ports_capacity", {{"address", a}}, u.ports);
    w.sample("l4lb_snat_ports_in_use", {{"address", a}}, u.in_use);
    w.sample("l4lb_snat_ports_free", {{"address", a}}, u.free());
  }
  w.family("l4lb_snapshot_generation", "gauge", "Config snapshot generation in force");
  w.sample("l4lb_snapshot_generation", {}, snap->generation);
  render_route_metrics(w);
  w.family("l4lb_config_reloads_total", "counter", "Config reloads by result");
  w.sample("l4lb_config_reloads_total", {{"result", "applied"}}, reloads_ok_);
  w.sample("l4lb_config_reloads_total", {{"result", "rejected"}}, reloads_failed_);
  w.family("l4lb_health_changes_total", "counter", "Backend health state changes");
  w.sample("l4lb_health_changes_total", {}, health_changes_);
  w.family("l4lb_exception_packets_total", "counter", "Packets through the kernel exception interface");
  w.sample("l4lb_exception_packets_total", {{"direction", "to_kernel"}}, exception_->to_kernel());
  w.sample("l4lb_exception_packets_total", {{"direction", "from_kernel"}}, exception_->from_kernel());
  return w.take();
}

}  // namespace l4lb::controlplane
