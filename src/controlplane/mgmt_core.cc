#include "l4lb/controlplane/mgmt_core.h"

#include <rte_cycles.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/kernel_interface.h"

namespace l4lb::controlplane {

namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string kernel_iface_of(const config::Config& c) {
  return c.ports.at(0).kernel_iface.empty() ? "l4lbk0" : c.ports.at(0).kernel_iface;
}

std::vector<uint32_t> vip_addresses(const config::Config& c) {
  std::vector<uint32_t> out;
  for (const auto& v : c.vips) out.push_back(v.address);
  return out;
}

// Keys that need a restart (marked so in config/l4lb.example.yaml).
std::string restart_only_change(const config::Config& a, const config::Config& b) {
  if (a.dataplane.workers != b.dataplane.workers) return "dataplane.workers";
  if (a.dataplane.flows_per_worker != b.dataplane.flows_per_worker) return "dataplane.flows_per_worker";
  if (a.dataplane.mbufs != b.dataplane.mbufs) return "dataplane.mbufs";
  if (a.dataplane.snat_port_min != b.dataplane.snat_port_min ||
      a.dataplane.snat_port_max != b.dataplane.snat_port_max)
    return "dataplane.snat_port_range";
  if (a.ports.size() != b.ports.size()) return "ports";
  for (size_t i = 0; i < a.ports.size(); ++i) {
    const auto& p = a.ports[i];
    const auto& q = b.ports[i];
    if (p.name != q.name || p.kernel_iface != q.kernel_iface || p.gateway != q.gateway ||
        p.addresses.size() != q.addresses.size())
      return "ports[" + std::to_string(i) + "]";
    for (size_t j = 0; j < p.addresses.size(); ++j)
      if (p.addresses[j].address != q.addresses[j].address || p.addresses[j].prefix_len != q.addresses[j].prefix_len)
        return "ports[" + std::to_string(i) + "].address";
  }
  if (a.metrics_listen != b.metrics_listen) return "metrics.listen";
  return "";
}

}  // namespace

ManagementCore::ManagementCore(config::Config config, std::string config_path, const rte_ether_addr& port_mac,
                               rte_mempool* pool, std::vector<WorkerRings> rings)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      rings_(std::move(rings)),
      neighbours_(kernel_iface_of(config_)),
      publisher_(
          [&] {
            std::vector<rte_ring*> r;
            for (const auto& w : rings_) r.push_back(w.snapshot);
            return r;
          }(),
          [this](size_t i) { return workers_.at(i)->acked_generation(); }) {
  std::memcpy(port_mac_.bytes, port_mac.addr_bytes, 6);
  for (const auto& w : rings_) slow_path_rings_.push_back(w.slow_path);
  exception_ = std::make_unique<ExceptionPath>(kernel_iface_of(config_), port_mac, pool, config_.ports[0].addresses,
                                               vip_addresses(config_));
  spdlog::info("exception path: kernel interface {} with MAC {}", exception_->iface(), dpdk::format_mac(port_mac));
  // The SNAT address is usually also the appliance's own, so the kernel's
  // connections (health probes, BGP) must not draw source ports FNAT uses.
  const PortRange ephemeral = kernel_ephemeral_ports();
  if (ephemeral.last != 0 && ephemeral.first <= config_.dataplane.snat_port_max &&
      config_.dataplane.snat_port_min <= ephemeral.last)
    spdlog::warn("dataplane.snat_port_range {}-{} overlaps the kernel's ip_local_port_range {}-{}: the "
                 "kernel's own connections from an SNAT address may collide with NATed flows",
                 config_.dataplane.snat_port_min, config_.dataplane.snat_port_max, ephemeral.first,
                 ephemeral.last);
  neighbours_.set_static(config_.neighbors);
  SnapshotInputs in{&config_, &neighbours_.map(), port_mac_, rte_get_tsc_hz(), ++generation_};
  publisher_.adopt_initial(build_snapshot(in, build_state_));
  control_.version = "0.1.0";
  control_.config_path = config_path_;
  control_.start_time_s = static_cast<uint64_t>(std::time(nullptr));
}

ManagementCore::~ManagementCore() { install_control_api(nullptr); }

void ManagementCore::attach_workers(std::vector<const dataplane::Worker*> workers) {
  workers_ = std::move(workers);
  control_.workers = workers_;
  update_status();
  install_control_api(&control_);
}

std::vector<uint32_t> ManagementCore::wanted_next_hops() const {
  std::vector<uint32_t> out;
  for (const auto& v : config_.vips)
    for (const auto& b : v.backends) out.push_back(next_hop_for(config_, b.address));
  return out;
}

void ManagementCore::publish_snapshot() {
  SnapshotInputs in{&config_, &neighbours_.map(), port_mac_, rte_get_tsc_hz(), ++generation_};
  publisher_.publish(build_snapshot(in, build_state_));
  update_status();
}

void ManagementCore::update_status() {
  const dataplane::Snapshot* s = publisher_.current();
  uint64_t backends = 0, resolved = 0;
  for (const auto& v : s->vips)
    for (const auto& b : v.backends) {
      ++backends;
      resolved += b.has_mac;
    }
  control_.snapshot_generation = s->generation;
  control_.vip_count = s->vips.size();
  control_.backend_count = backends;
  control_.backends_resolved = resolved;
}

std::string ManagementCore::reload_config() {
  config::Config next;
  try {
    next = config::load_config_file(config_path_);
  } catch (const config::ConfigError& e) {
    spdlog::error("reload rejected, running config stays: {}", e.what());
    return e.what();
  }
  if (const std::string key = restart_only_change(config_, next); !key.empty()) {
    const std::string msg = config_path_ + ": " + key + ": changed, but it needs a restart; reload rejected";
    spdlog::error("{}", msg);
    return msg;
  }
  config::Config previous = std::move(config_);
  config_ = std::move(next);
  try {
    neighbours_.set_static(config_.neighbors);
    publish_snapshot();
  } catch (const std::exception& e) {
    config_ = std::move(previous);
    spdlog::error("reload rejected, running config stays: {}", e.what());
    return e.what();
  }
  // New VIPs need their address on the kernel side so ARP and ping answer.
  for (uint32_t vip : vip_addresses(config_)) {
    try {
      add_ipv4_address(exception_->iface(), vip, 32);
    } catch (const std::exception& e) {
      spdlog::warn("VIP address on {}: {}", exception_->iface(), e.what());
    }
  }
  spdlog::info("config reloaded from {}: {} VIPs, snapshot generation {}", config_path_, config_.vips.size(),
               generation_);
  return "";
}

void ManagementCore::run(const std::atomic<bool>& stop, std::atomic<bool>& reload) {
  constexpr uint64_t kNeighbourPeriodMs = 100;
  uint64_t next_neighbour_ms = 0;
  size_t last_resolved = ~size_t{0};
  while (!stop.load(std::memory_order_relaxed)) {
    const unsigned moved = exception_->relay(slow_path_rings_, rings_.at(0).inject);
    const uint64_t now = now_ms();
    if (now >= next_neighbour_ms) {
      next_neighbour_ms = now + kNeighbourPeriodMs;
      if (neighbours_.refresh(wanted_next_hops(), now)) {
        publish_snapshot();
        if (control_.backends_resolved != last_resolved) {
          last_resolved = control_.backends_resolved;
          spdlog::info("neighbours: {}/{} backend next hops resolved (snapshot generation {})", last_resolved,
                       control_.backend_count.load(), generation_);
        }
      }
      control_.exception_to_kernel = exception_->to_kernel();
      control_.exception_from_kernel = exception_->from_kernel();
    }
    if (reload.exchange(false)) reload_config();
    publisher_.poll();
    // Nothing to relay: yield the CPU briefly; the workers do not depend on us.
    if (!moved) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace l4lb::controlplane
