#include "l4lb/controlplane/mgmt_core.h"

#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <set>
#include <thread>

#include "l4lb/common/address_text.h"
#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/config_diff.h"
#include "l4lb/controlplane/fd_limit.h"
#include "l4lb/controlplane/kernel_interface.h"
#include "l4lb/controlplane/prometheus.h"

namespace l4lb::controlplane {

namespace {

// The management core's one clock (CLOCK_MONOTONIC, as sd_notify wants it).
uint64_t now_ms() { return monotonic_usec() / 1000; }

std::string kernel_iface_of(const config::Config& c) {
  return c.ports.at(0).kernel_iface.empty() ? "l4lbk0" : c.ports.at(0).kernel_iface;
}

std::set<uint32_t> vip_addresses(const config::Config& c) {
  std::set<uint32_t> out;
  for (const auto& v : c.vips) out.insert(v.address);
  return out;
}

}  // namespace

ManagementCore::ManagementCore(config::Config config, std::string config_path, uint16_t port_id,
                               const rte_ether_addr& port_mac, rte_mempool* pool, std::vector<WorkerRings> rings)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      port_id_(port_id),
      pool_(pool),
      rings_(std::move(rings)),
      neighbours_(kernel_iface_of(config_)),
      health_(kernel_iface_of(config_)),
      publisher_(
          [&] {
            std::vector<rte_ring*> r;
            for (const auto& w : rings_) r.push_back(w.snapshot);
            return r;
          }(),
          [this](size_t i) { return workers_.at(i)->acked_generation(); }) {
  std::memcpy(port_mac_.bytes, port_mac.addr_bytes, 6);
  for (const auto& w : rings_) {
    slow_path_rings_.push_back(w.slow_path);
    if (w.control) control_rings_.push_back(w.control);
  }
  const auto vips = vip_addresses(config_);
  exception_ = std::make_unique<ExceptionPath>(
      kernel_iface_of(config_), port_mac, pool, config_.ports[0].addresses,
      std::vector<uint32_t>(vips.begin(), vips.end()), config_.ports[0].gateway);
  spdlog::info("exception path: kernel interface {} with MAC {}", exception_->iface(), dpdk::format_mac(port_mac));
  if (config_.ports[0].gateway)
    spdlog::info(
        "exception path: last-resort default route via {} on {}, for probes to backends behind the gateway",
        format_ipv4(*config_.ports[0].gateway), exception_->iface());
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
  check_probe_fds(config_);
  set_health_targets(now_ms());
  {
    const FdLimit limit = fd_limit();
    spdlog::info("health: {} probed backends; RLIMIT_NOFILE soft {} hard {}, {} descriptors open",
                 probe_count(config_), limit.soft, limit.hard, count_open_fds());
  }
  ++generation_;
  publisher_.adopt_initial(build_snapshot(inputs(), build_state_));
  show_snat_addresses();
  if (!config_.metrics_listen.empty()) {
    metrics_ = std::make_unique<MetricsServer>(
        config_.metrics_listen, [this] { return render_metrics(); }, [this] { return readiness(); });
    spdlog::info("metrics: Prometheus text at http://{}:{}/metrics", config_.metrics_listen.substr(
                                                                            0, config_.metrics_listen.rfind(':')),
                 metrics_->port());
  }
  control_.version = "0.1.0";
  control_.config_path = config_path_;
  control_.start_time_s = static_cast<uint64_t>(std::time(nullptr));
  control_.queue = &queue_;
  control_.hooks.reload = [this] { return reload_config(); };
  control_.hooks.backend_admin = [this](const std::string& verb, const std::string& vip, const std::string& backend,
                                        uint32_t weight) { return backend_admin(verb, vip, backend, weight); };
  control_.hooks.vips = [this](size_t start, size_t max) { return vip_rows(start, max); };
  control_.hooks.backends = [this](const std::string& vip, size_t start, size_t max) {
    return backend_rows(vip, start, max);
  };
  control_.hooks.routes = [this](size_t start, size_t max) { return route_rows(start, max); };
  control_.hooks.drain = [this](uint32_t seconds) { return request_drain(seconds); };
  if (config_.bgp.enabled) {
    bird_ = std::make_unique<BirdAnnouncer>(
        BirdAnnouncerOptions{config_.bgp.bird_socket, config_.bgp.routes_file, kernel_iface_of(config_)});
    control_.bgp_enabled = 1;
    // Nothing is announced before the workers run; this first exchange
    // empties what a crashed l4lbd may have left in the file.
    bird_->poll(now_ms());
    spdlog::info("bgp: routes for BIRD in {}, its control socket {}", config_.bgp.routes_file,
                 config_.bgp.bird_socket);
  }
}

ManagementCore::~ManagementCore() { install_control_api(nullptr); }

void ManagementCore::attach_workers(std::vector<const dataplane::Worker*> workers) {
  workers_ = std::move(workers);
  control_.workers = workers_;
  update_status();
  install_control_api(&control_);
}

SnapshotInputs ManagementCore::inputs() {
  SnapshotInputs in{&config_,    &neighbours_.map(), port_mac_,      rte_get_tsc_hz(),
                    generation_, &health_up_,        &admin_weights_};
  in.draining = draining_;
  return in;
}

void ManagementCore::publish_snapshot() {
  ++generation_;
  auto next = build_snapshot(inputs(), build_state_);
  const dataplane::Snapshot* previous = publisher_.current();
  for (size_t i = 0; i < next->vips.size() && i < config_.vips.size(); ++i) {
    const bool was = previous && i < previous->vips.size() && previous->vips[i].id == next->vips[i].id &&
                     previous->vips[i].fail_open;
    if (next->vips[i].fail_open && !was)
      spdlog::error("VIP {}: every backend is down by health; failing open (ignoring health) until one is up",
                    config_.vips[i].name);
    else if (!next->vips[i].fail_open && was)
      spdlog::info("VIP {}: a backend is up again; health applies", config_.vips[i].name);
  }
  publisher_.publish(std::move(next));
  // Bounded by what the workers have not acknowledged, even if /healthz is never asked.
  uint64_t oldest_ack = UINT64_MAX;
  for (const auto* w : workers_) oldest_ack = std::min(oldest_ack, w->acked_generation());
  std::erase_if(publications_, [&](const Publication& p) { return p.generation <= oldest_ack; });
  publications_.push_back({generation_, now_ms()});
  show_snat_addresses();
  rebuild_due_ = false;
  next_announce_ms_ = 0;  // what to announce may have changed with it
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

void ManagementCore::set_health_targets(uint64_t now) {
  // Unprobed (`none`) backends are targets too, always up and never probed,
  // so that a reload giving their VIP a probe keeps them in service until
  // the probe says otherwise (HealthChecker::set_targets).
  std::vector<ProbeTarget> targets;
  for (const auto& v : config_.vips)
    for (const auto& b : v.backends)
      targets.push_back({backend_key(v.name, b.address, b.port), b.address, b.port, v.health});
  health_.set_targets(targets, now);
  health_up_.clear();
  for (const auto& t : targets) {
    if (t.config.type == config::HealthType::kNone) continue;
    const ProbeStatus* st = health_.status(t.key);
    health_up_[t.key] = st && st->state == HealthState::kUp;
  }
}

void ManagementCore::check_probe_fds(const config::Config& config) const {
  const uint64_t open = count_open_fds();
  const auto shortfall =
      probe_fd_shortfall(config, open - std::min<uint64_t>(open, health_.sockets_open()), fd_limit().hard);
  if (shortfall) throw config::ConfigError(config_path_, shortfall->key, shortfall->line, shortfall->message);
}

void ManagementCore::apply_health_changes(uint64_t now) {
  for (const HealthChange& c : health_.poll(now)) {
    health_up_[c.key] = c.state == HealthState::kUp;
    ++health_changes_;
    rebuild_due_ = true;
    const ProbeStatus* st = health_.status(c.key);
    if (c.state == HealthState::kUp)
      spdlog::info("backend {} is up: {} (probe latency {} us)", c.key, c.reason, st ? st->last_latency_us : -1);
    else
      spdlog::warn("backend {} is down: {}", c.key, c.reason);
  }
}

std::string ManagementCore::reload_config() {
  if (notifier_) notifier_->reloading("reloading " + config_path_);
  const std::string error = apply_reload();
  if (notifier_) notifier_->ready(error.empty() ? status_line() : "reload rejected, running config stays; " + status_line());
  return error;
}

std::string ManagementCore::status_line() const {
  return "serving " + std::to_string(config_.vips.size()) + " VIPs, " + std::to_string(control_.backend_count.load()) +
         " backends, " + std::to_string(workers_.size()) + " workers, snapshot generation " +
         std::to_string(generation_) + ", reloads " + std::to_string(reloads_ok_) + " applied " +
         std::to_string(reloads_failed_) + " rejected";
}

std::string ManagementCore::apply_reload() {
  config::Config next;
  try {
    next = config::load_config_file(config_path_);
  } catch (const config::ConfigError& e) {
    ++reloads_failed_;
    spdlog::error("reload rejected, running config stays: {}", e.what());
    return e.what();
  }
  if (const std::string key = restart_only_change(config_, next); !key.empty()) {
    ++reloads_failed_;
    const std::string msg = config_path_ + ": " + key + ": changed, but it needs a restart; reload rejected";
    spdlog::error("{}", msg);
    return msg;
  }
  try {
    check_probe_fds(next);
  } catch (const config::ConfigError& e) {
    ++reloads_failed_;
    spdlog::error("reload rejected, running config stays: {}", e.what());
    return e.what();
  }
  const std::string diff = describe_diff(config_, next);
  config::Config previous = std::move(config_);
  config_ = std::move(next);
  try {
    neighbours_.set_static(config_.neighbors);
    set_health_targets(now_ms());
    // Operator overrides of backends that are gone go with them.
    std::set<std::string> keys;
    for (const auto& v : config_.vips)
      for (const auto& b : v.backends) keys.insert(backend_key(v.name, b.address, b.port));
    std::erase_if(admin_weights_, [&](const auto& kv) { return !keys.count(kv.first); });
    publish_snapshot();
  } catch (const std::exception& e) {
    config_ = std::move(previous);
    set_health_targets(now_ms());
    ++reloads_failed_;
    spdlog::error("reload rejected, running config stays: {}", e.what());
    return e.what();
  }
  // VIP addresses on the kernel side, so ARP and ping answer for exactly the VIPs in force.
  const auto old_vips = vip_addresses(previous), new_vips = vip_addresses(config_);
  for (uint32_t vip : new_vips)
    if (!old_vips.count(vip)) try {
        add_ipv4_address(exception_->iface(), vip, 32);
      } catch (const std::exception& e) {
        spdlog::warn("VIP address on {}: {}", exception_->iface(), e.what());
      }
  for (uint32_t vip : old_vips)
    if (!new_vips.count(vip)) try {
        remove_ipv4_address(exception_->iface(), vip, 32);
      } catch (const std::exception& e) {
        spdlog::warn("VIP address on {}: {}", exception_->iface(), e.what());
      }
  // main() sets the level from the file at start; a reload is the only other time it may change.
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
  ++reloads_ok_;
  spdlog::info("config reloaded from {}: {}; {} VIPs, snapshot generation {}", config_path_, diff,
               config_.vips.size(), generation_);
  return "";
}

std::string ManagementCore::backend_admin(const std::string& verb, const std::string& vip_name,
                                          const std::string& backend, uint32_t weight) {
  const auto vip = std::find_if(config_.vips.begin(), config_.vips.end(),
                                [&](const auto& v) { return v.name == vip_name; });
  if (vip == config_.vips.end()) return "no VIP named '" + vip_name + "'";
  const auto b = std::find_if(vip->backends.begin(), vip->backends.end(),
                              [&](const auto& bc) { return format_endpoint(bc.address, bc.port) == backend; });
  if (b == vip->backends.end()) return "VIP '" + vip_name + "' has no backend " + backend;
  const std::string key = backend_key(vip_name, b->address, b->port);
  if (verb == "set-weight") {
    admin_weights_[key] = weight;
  } else if (verb == "drain") {
    admin_weights_[key] = 0;
  } else if (verb == "enable") {
    admin_weights_.erase(key);
  } else {
    return "unknown verb '" + verb + "' (set-weight, drain, enable)";
  }
  publish_snapshot();
  spdlog::info("backend {}: {}{} by the operator (snapshot generation {})", key, verb,
               verb == "set-weight" ? " " + std::to_string(weight) : "", generation_);
  return "";
}

void ManagementCore::show_snat_addresses() {
  for (const auto& [address, slot] : build_state_.snat.slots())
    control_.snat_address_by_slot[slot].store(htonl(address), std::memory_order_relaxed);
}

void ManagementCore::sample_rates(uint64_t now) {
  if (now - last_sample_ms_ < 1000) return;
  const size_t n = build_state_.ids.backend_count();
  std::vector<uint64_t> totals(n, 0);
  for (const auto* w : workers_)
    for (size_t id = 0; id < n; ++id) totals[id] += w->counters().backends[id].new_flows.get();
  new_flows_rate_.assign(n, 0.0);
  if (last_sample_ms_ != 0)
    for (size_t id = 0; id < n && id < new_flows_sample_.size(); ++id)
      new_flows_rate_[id] = static_cast<double>(totals[id] - new_flows_sample_[id]) * 1000.0 /
                            static_cast<double>(now - last_sample_ms_);
  new_flows_sample_ = std::move(totals);
  last_sample_ms_ = now;
}

std::string ManagementCore::readiness() {
  std::vector<WorkerProgress> progress;
  uint64_t oldest_ack = UINT64_MAX;
  for (const auto* w : workers_) {
    progress.push_back({w->index(), w->acked_generation()});
    oldest_ack = std::min(oldest_ack, progress.back().acked_generation);
  }
  std::erase_if(publications_, [&](const Publication& p) { return p.generation <= oldest_ack; });
  return readiness_problem(progress, publications_, now_ms());
}

void ManagementCore::refresh_port_and_pool_stats() {
  control_.mbufs_in_use = rte_mempool_in_use_count(pool_);
  control_.mbufs_total = pool_->size;
  rte_eth_stats st{};
  if (rte_eth_stats_get(port_id_, &st) == 0) {
    control_.port_rx_packets = st.ipackets;
    control_.port_tx_packets = st.opackets;
    control_.port_rx_missed = st.imissed;
    control_.port_rx_nombuf = st.rx_nombuf;
    control_.port_rx_errors = st.ierrors;
    control_.port_tx_errors = st.oerrors;
  }
  rte_eth_link link{};
  if (rte_eth_link_get_nowait(port_id_, &link) == 0) port_up_ = link.link_status == RTE_ETH_LINK_UP;
}

void ManagementCore::run(const std::atomic<bool>& stop, std::atomic<bool>& reload,
                         const std::function<void()>& each_loop) {
  constexpr uint64_t kNeighbourPeriodMs = 100;
  uint64_t next_neighbour_ms = 0;
  size_t last_resolved = ~size_t{0};
  while (!stop.load(std::memory_order_relaxed)) {
    const unsigned moved = exception_->relay(control_rings_, slow_path_rings_, rings_.at(0).inject);
    const uint64_t now = now_ms();
    if (now >= next_neighbour_ms) {
      next_neighbour_ms = now + kNeighbourPeriodMs;
      std::vector<uint32_t> hops;
      for (const auto& v : config_.vips)
        for (const auto& b : v.backends) hops.push_back(next_hop_for(config_, b.address));
      // Resolved before a drain needs them (DESIGN §12).
      for (const uint32_t appliance : config_.bgp.appliances) hops.push_back(next_hop_for(config_, appliance));
      // The gateway's MAC: where a drain's passed flows and stateless DNAT
      // replies answer the client.
      const bool stateless_reverse = std::any_of(config_.vips.begin(), config_.vips.end(), [](const auto& v) {
        return v.dnat_reverse == config::DnatReverse::kStateless;
      });
      if ((!config_.bgp.appliances.empty() || stateless_reverse) && config_.ports[0].gateway)
        hops.push_back(*config_.ports[0].gateway);
      if (neighbours_.refresh(hops, now)) rebuild_due_ = true;
      control_.exception_to_kernel = exception_->to_kernel();
      control_.exception_from_kernel = exception_->from_kernel();
      refresh_port_and_pool_stats();
    }
    apply_health_changes(now);
    if (rebuild_due_) {
      publish_snapshot();
      if (control_.backends_resolved != last_resolved) {
        last_resolved = control_.backends_resolved;
        spdlog::info("neighbours: {}/{} backend next hops resolved (snapshot generation {})", last_resolved,
                     control_.backend_count.load(), generation_);
      }
    }
    if (reload.exchange(false)) reload_config();
    announce_routes(now);
    queue_.run_pending();
    if (metrics_) {
      try {
        metrics_->poll();
      } catch (const std::exception& e) {
        spdlog::error("metrics: {}", e.what());
      }
    }
    sample_rates(now);
    publisher_.poll();
    // Fed here, so a loop that wedges (a syscall that hangs, a livelock)
    // stops the pings and the supervisor restarts l4lbd.
    if (notifier_) notifier_->watchdog_tick(monotonic_usec());
    if (each_loop) each_loop();
    // Nothing to relay: yield the CPU briefly; the workers do not depend on us.
    if (!moved) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace l4lb::controlplane
