// The management core's loop (DESIGN §2, §6): relays the exception path,
// keeps neighbours resolved, runs health probes, answers the control API,
// serves metrics, rebuilds and publishes snapshots, reclaims old ones, and
// reloads the config on request. Runs on the EAL main lcore; it may block
// briefly (syscalls), workers never wait for it.
#pragma once

#include <rte_ether.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/controlplane/bird_announcer.h"
#include "l4lb/controlplane/control_api.h"
#include "l4lb/controlplane/control_queue.h"
#include "l4lb/controlplane/exception_path.h"
#include "l4lb/controlplane/health.h"
#include "l4lb/controlplane/metrics_server.h"
#include "l4lb/controlplane/neighbours.h"
#include "l4lb/controlplane/prometheus.h"
#include "l4lb/controlplane/readiness.h"
#include "l4lb/controlplane/route_announcement.h"
#include "l4lb/controlplane/service_notify.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/controlplane/snapshot_publisher.h"
#include "l4lb/dataplane/worker.h"

struct rte_mempool;
struct rte_ring;

namespace l4lb::controlplane {

struct WorkerRings {
  rte_ring* snapshot = nullptr;
  rte_ring* slow_path = nullptr;
  rte_ring* control = nullptr;  // worker -> mgmt, drained first (ARP, probe answers)
  rte_ring* inject = nullptr;
};

class ManagementCore {
 public:
  // Creates the exception interface, the metrics endpoint and the first
  // snapshot. Throws std::runtime_error; config::ConfigError (one) when
  // the hard RLIMIT_NOFILE cannot cover the config's probes.
  ManagementCore(config::Config config, std::string config_path, uint16_t port_id, const rte_ether_addr& port_mac,
                 rte_mempool* pool, std::vector<WorkerRings> rings);
  ~ManagementCore();

  // The snapshot workers start with.
  const dataplane::Snapshot* initial_snapshot() const { return publisher_.current(); }

  // Must be called once the workers exist and before run().
  void attach_workers(std::vector<const dataplane::Worker*> workers);

  // Where READY/RELOADING/STATUS and the watchdog go (service_notify.h);
  // `notifier` must outlive run(). Before run().
  void set_service_notifier(ServiceNotifier* notifier) { notifier_ = notifier; }

  // Loops until `stop`; reloads the config whenever `reload` is set (and
  // clears it); feeds the watchdog; calls `each_loop` (if any) once per
  // iteration, on this core, e.g. to decide when a shutdown drain is over.
  void run(const std::atomic<bool>& stop, std::atomic<bool>& reload, const std::function<void()>& each_loop = {});

  // Re-reads the config file. On any error the running config stays, the
  // error (with key and line) is logged once and returned; "" means applied.
  // The supervisor sees RELOADING=1 before and READY=1 after, either way.
  std::string reload_config();

  // The config in force (changes at a reload). Management core only.
  const config::Config& config() const { return config_; }

  // The appliance's drain (DESIGN §12). main()'s shutdown logic starts it
  // when a stop or an `l4lbctl drain` begins: with bgp.appliances resolved,
  // the workers pass new flows to them and the VIPs stay announced until
  // withdraw_vips(); without, the VIPs are withdrawn at once. SNAT routes
  // stay either way. It also reports the drain's progress.
  void begin_drain();
  bool redirecting() const;
  void withdraw_vips();
  void set_drain_progress(uint64_t flows_left, uint64_t seconds_left);
  // Seconds an `l4lbctl drain` asked the drain to last at most; 0 until asked.
  uint32_t drain_requested_s() const { return drain_requested_s_; }
  // True when no VIP route is announced as far as BIRD confirmed (always
  // with bgp off).
  bool vip_routes_withdrawn() const;
  // At exit: an empty routes file and a `configure`, waiting at most
  // `timeout_ms` for BIRD (so the SNAT routes go too, and a BIRD restarted
  // later announces nothing of this l4lbd).
  void withdraw_all_routes(uint64_t timeout_ms);
  // One line for the supervisor's STATUS=.
  std::string status_line() const;

 private:
  std::string apply_reload();
  SnapshotInputs inputs();
  void publish_snapshot();
  void update_status();
  void set_health_targets(uint64_t now_ms);
  // Throws config::ConfigError naming the first backend of `config` whose
  // probe cannot have a file descriptor under the hard RLIMIT_NOFILE.
  void check_probe_fds(const config::Config& config) const;
  void apply_health_changes(uint64_t now_ms);
  void sample_rates(uint64_t now_ms);
  void refresh_port_and_pool_stats();
  std::string backend_admin(const std::string& verb, const std::string& vip, const std::string& backend,
                            uint32_t weight);
  // Rows [start, start + max) of the VIP and backend tables (l4lbctl pages).
  ControlRowPage vip_rows(size_t start, size_t max) const;
  ControlRowPage backend_rows(const std::string& vip, size_t start, size_t max) const;
  // Tells the control API which address each SNAT slot is (after a build).
  void show_snat_addresses();
  std::string render_metrics() const;
  void render_route_metrics(PrometheusWriter& w) const;
  // Re-decides what to announce and moves the exchange with BIRD along.
  void announce_routes(uint64_t now);
  ControlRowPage route_rows(size_t start, size_t max) const;
  std::string request_drain(uint32_t seconds);
  // /healthz: "" when every worker runs the snapshot in force (readiness.h).
  std::string readiness();

  config::Config config_;
  std::string config_path_;
  uint16_t port_id_;
  MacAddress port_mac_{};
  rte_mempool* pool_;
  std::vector<WorkerRings> rings_;
  std::vector<rte_ring*> slow_path_rings_;
  std::vector<rte_ring*> control_rings_;
  std::unique_ptr<ExceptionPath> exception_;
  Neighbours neighbours_;
  HealthChecker health_;
  std::map<std::string, bool> health_up_;        // backend_key -> up, for probed backends
  std::map<std::string, uint32_t> admin_weights_;  // backend_key -> operator's weight
  BuildState build_state_;
  SnapshotPublisher publisher_;
  std::vector<const dataplane::Worker*> workers_;
  ControlQueue queue_;
  ControlState control_;
  std::unique_ptr<MetricsServer> metrics_;
  ServiceNotifier* notifier_ = nullptr;
  uint64_t generation_ = 0;
  // Generations some worker may not have acknowledged yet, oldest first.
  std::vector<Publication> publications_;
  bool rebuild_due_ = false;
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
  uint64_t health_changes_ = 0;
  // new flows per backend id: last sample and rate per second
  std::vector<uint64_t> new_flows_sample_;
  std::vector<double> new_flows_rate_;
  uint64_t last_sample_ms_ = 0;
  // Route announcement (bgp.enabled) and the appliance's drain.
  std::unique_ptr<BirdAnnouncer> bird_;
  std::vector<RouteDecision> routes_;
  uint64_t next_announce_ms_ = 0;
  bool port_up_ = true;
  bool draining_ = false;
  bool vips_withdrawn_ = false;
  uint32_t drain_requested_s_ = 0;
};

}  // namespace l4lb::controlplane
