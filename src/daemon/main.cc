// l4lbd: the appliance (DESIGN §2, §8).
//
// Start-up order, torn down in reverse:
//   1. options and config (no EAL needed: --check and --help stop here)
//   2. logging
//   3. EAL, packet capture (rte_pdump) for dpdk-pdump; a config whose
//      tables do not fit in DPDK memory is refused here
//   4. mbuf pool
//   5. data port: one rx and one tx queue per worker
//   6. rings per worker: snapshots in, slow path out, packets to inject in
//   7. management core: exception interface, neighbours, first snapshot
//   8. workers (flow table, SNAT pool), launched on their lcores
//   9. READY=1 to the supervisor; management loop until SIGTERM/SIGINT
//      (and the drain, if configured); SIGHUP reloads
// Teardown: the management core (control API, metrics, telemetry's view of
// the workers) goes before the worker objects it reads.
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pdump.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <set>
#include <vector>

#include "l4lb/common/cli_args.h"
#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/memory_budget.h"
#include "l4lb/controlplane/mgmt_core.h"
#include "l4lb/controlplane/service_notify.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/eal.h"
#include "l4lb/dpdk/flow_steering.h"
#include "l4lb/dpdk/handles.h"
#include "l4lb/dpdk/memory.h"
#include "l4lb/dpdk/port.h"
#include "options.h"

namespace {

// SIGTERM/SIGINT received so far: the first starts the shutdown (after a
// drain, if one is configured), the second cuts the drain short.
std::atomic<int> g_stop_signals{0};
std::atomic<bool> g_reload{false};
// The management loop stops first; the workers keep forwarding until it has.
std::atomic<bool> g_mgmt_stop{false};
std::atomic<bool> g_workers_stop{false};

void on_signal(int sig) {
  if (sig == SIGHUP)
    g_reload.store(true);
  else
    g_stop_signals.fetch_add(1);
}

void drain_mbufs(rte_ring* ring) {
  void* m;
  while (rte_ring_dequeue(ring, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

// Rings per worker, and per ordered pair of workers. The hand-off rings
// are deep enough to ride out the owner being descheduled for a few ms at
// line rate (lcores sharing a CPU), which a 1K ring could not (memif e2e).
constexpr unsigned kSnapshotRingSize = 64;
constexpr unsigned kSlowPathRingSize = 1024;
constexpr unsigned kInjectRingSize = 1024;
constexpr unsigned kHandoffRingSize = 8192;

// Refuses (config::ConfigError, with the key and line) a config whose flow
// tables, mbuf pool and rings cannot fit in the DPDK memory left on the
// NUMA socket each is placed on, before any of them is allocated.
void check_memory(const l4lb::config::Config& config, const std::string& path, int pool_socket,
                  const std::vector<int>& worker_socket) {
  using namespace l4lb;
  const uint64_t workers = config.dataplane.workers;
  std::set<int> sockets(worker_socket.begin(), worker_socket.end());
  sockets.insert(pool_socket);
  for (const int socket : sockets) {
    // This socket's share: its workers' tables and the rings they read
    // (hand-off rings sit with the worker that reads them), and the mbufs
    // if the pool is here.
    config::Config share = config;
    share.dataplane.workers = static_cast<uint32_t>(std::count(worker_socket.begin(), worker_socket.end(), socket));
    const uint64_t here = share.dataplane.workers;
    const uint64_t rings = here * (dpdk::ring_bytes(kSnapshotRingSize) + 2 * dpdk::ring_bytes(kSlowPathRingSize) +
                                   dpdk::ring_bytes(kInjectRingSize)) +
                           here * (workers - 1) * dpdk::ring_bytes(kHandoffRingSize);
    const uint64_t pool = socket == pool_socket ? dpdk::pktmbuf_pool_bytes(config.dataplane.mbufs, socket) : 0;
    const auto budget = controlplane::dataplane_budget(share, pool, rings);
    const dpdk::SocketMemory memory = dpdk::socket_memory(socket);
    if (auto error = controlplane::memory_problem(share, path, budget, memory.total(), memory.detail))
      throw *error;
    spdlog::info("memory: the data plane needs about {} of DPDK memory on socket {} ({} of {} workers{}), {} free ({})",
                 dpdk::format_bytes(budget.total()), socket, here, workers,
                 socket == pool_socket ? ", the mbuf pool" : "", dpdk::format_bytes(memory.total()), memory.detail);
  }
}

// The TAP PMD (net_tap) signals the process for each packet the kernel
// hands one of its queues: its receive trigger, a real-time signal it picks
// at start ("Using rt-signal N" in DPDK's debug log), so every packet queues
// one more. Under a flood on a TAP port that is tens of thousands a second,
// and a thread that takes them turns its loop many times slower (measured:
// the management core stopped answering l4lbctl for 5 s under a 50 kpps
// flood). The threads whose loops matter, the workers and the management
// core, leave those signals to the EAL's service threads (interrupt,
// telemetry, multi-process), which rte_eal_init created before and which
// sleep otherwise; the PMD's handler only bumps a counter, wherever it runs.
// Called once every TAP port exists (so its signal has its handler): real-
// time signals with a handler are the PMDs'; l4lbd installs none.
void leave_driver_signals_to_service_threads() {
  sigset_t driver_signals;
  sigemptyset(&driver_signals);
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig) {
    struct sigaction sa {};
    if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
      sigaddset(&driver_signals, sig);
  }
  sigaddset(&driver_signals, SIGIO);  // older TAP PMDs use SIGIO
  pthread_sigmask(SIG_BLOCK, &driver_signals, nullptr);
}

int worker_main(void* arg) {
  leave_driver_signals_to_service_threads();
  static_cast<l4lb::dataplane::Worker*>(arg)->run(g_workers_stop);
  return 0;
}

// Flows a drain waits for: connections that carry data (established,
// fin_wait: one side still sending, UDP with a reply). Not handshakes
// (syn_sent, syn_recv, midstream, unreplied UDP): new ones keep arriving
// while l4lbd is still in the path, and a client's retransmitted FIN of a
// connection that ended before the drain opens a midstream flow, so waiting
// for them could last the whole drain. Not time_wait or close either: they
// only wait out their timers.
uint64_t flows_in_use(const std::vector<std::unique_ptr<l4lb::dataplane::Worker>>& workers) {
  using l4lb::dataplane::FlowState;
  uint64_t flows = 0;
  for (const auto& w : workers)
    for (FlowState state : {FlowState::kEstablished, FlowState::kFinWait, FlowState::kUdp})
      flows += w->counters().flows_by_state[static_cast<size_t>(state)].get();
  return flows;
}

// Decides, once per management loop, when l4lbd stops after SIGTERM/SIGINT
// or `l4lbctl drain` (DESIGN §12). With bgp.appliances resolved, the
// workers first pass new flows to those appliances while the VIPs stay
// announced, until this appliance's own flows have ended or the drain's
// time is up; then (at once without them) the VIP routes are withdrawn:
// with bgp, until BIRD confirms, then bgp.withdraw_wait_ms so the routers
// stop sending; then the flows left drain until none carries data or the
// time (dataplane.shutdown_drain_s, or the time l4lbctl gave) is up. A
// second signal stops at once. Without bgp and a drain time it stops at once.
class Shutdown {
 public:
  // How long BIRD may take to confirm the withdrawal before l4lbd goes on.
  static constexpr uint64_t kWithdrawConfirmUsec = 3000000;

  Shutdown(l4lb::controlplane::ManagementCore& mgmt, const l4lb::controlplane::ServiceNotifier& notifier,
           const std::vector<std::unique_ptr<l4lb::dataplane::Worker>>& workers)
      : mgmt_(mgmt), notifier_(notifier), workers_(workers) {}

  void poll() {
    const int signals = g_stop_signals.load();
    const uint32_t requested_s = mgmt_.drain_requested_s();
    if ((signals == 0 && requested_s == 0) || g_mgmt_stop.load()) return;
    const uint64_t now = l4lb::controlplane::monotonic_usec();
    if (!started_) begin(now, requested_s);
    const uint64_t flows = flows_in_use(workers_);
    if (signals >= 2) {
      stop("stopping: second signal, drain cut short with " + std::to_string(flows) + " flows");
      return;
    }
    const uint64_t seconds_left = now >= deadline_usec_ ? 0 : (deadline_usec_ - now + 999999) / 1000000;
    mgmt_.set_drain_progress(flows, seconds_left);
    if (!withdraw_usec_) {
      // Passing new flows on: the VIPs stay until our own flows are gone.
      if (mgmt_.redirecting() && flows > 0 && now < deadline_usec_) return;
      if (mgmt_.redirecting())
        spdlog::info("drain: {}; withdrawing the VIPs", flows ? std::to_string(flows) + " flows left, time is up"
                                                             : std::string("no flow of ours left"));
      mgmt_.withdraw_vips();
      withdraw_usec_ = now;
    }
    if (!withdrawn_usec_ && (mgmt_.vip_routes_withdrawn() || now >= withdraw_usec_ + kWithdrawConfirmUsec)) {
      withdrawn_usec_ = now;
      if (mgmt_.config().bgp.enabled)
        spdlog::info("stopping: VIP routes withdrawn{}; forwarding on for at least {} ms (bgp.withdraw_wait_ms)",
                     mgmt_.vip_routes_withdrawn() ? "" : " (not confirmed by BIRD)",
                     mgmt_.config().bgp.withdraw_wait_ms);
    }
    const uint64_t wait_usec = mgmt_.config().bgp.enabled ? uint64_t{mgmt_.config().bgp.withdraw_wait_ms} * 1000 : 0;
    const bool routes_done = withdrawn_usec_ && now >= withdrawn_usec_ + wait_usec;
    if (!routes_done) return;
    if (flows == 0) {
      stop(drain_s_ == 0 ? "stopping" : "stopping: drained, no flows left");
    } else if (now >= deadline_usec_) {
      stop(drain_s_ == 0 ? "stopping" : "stopping: drain time is up, " + std::to_string(flows) + " flows left");
    } else if (now >= next_report_usec_) {
      next_report_usec_ = now + 1000000;
      notifier_.status("draining " + std::to_string(flows) + " flows, " + std::to_string(seconds_left) + " s left");
    }
  }

 private:
  void begin(uint64_t now, uint32_t requested_s) {
    started_ = true;
    drain_s_ = requested_s ? requested_s : mgmt_.config().dataplane.shutdown_drain_s;
    deadline_usec_ = now + uint64_t{drain_s_} * 1000000;
    next_report_usec_ = now + 1000000;
    mgmt_.begin_drain();
    const uint64_t flows = flows_in_use(workers_);
    if (drain_s_ > 0) {
      spdlog::info("{}: draining {} flows for up to {} s ({}); a second SIGTERM or SIGINT stops at once",
                   requested_s ? "drain" : "stopping", flows, drain_s_,
                   requested_s ? "l4lbctl drain" : "dataplane.shutdown_drain_s");
      notifier_.stopping("draining " + std::to_string(flows) + " flows for up to " + std::to_string(drain_s_) + " s");
    }
  }

  void stop(const std::string& why) {
    spdlog::info("{}", why);
    notifier_.stopping(why);
    g_mgmt_stop.store(true);
  }

  l4lb::controlplane::ManagementCore& mgmt_;
  const l4lb::controlplane::ServiceNotifier& notifier_;
  const std::vector<std::unique_ptr<l4lb::dataplane::Worker>>& workers_;
  bool started_ = false;
  uint32_t drain_s_ = 0;
  uint64_t withdraw_usec_ = 0;  // when the VIPs' withdrawal was asked
  uint64_t withdrawn_usec_ = 0;
  uint64_t deadline_usec_ = 0;
  uint64_t next_report_usec_ = 0;
};

int run(const l4lb::config::Config& config, const l4lb::daemon::Options& options,
        const std::vector<std::string>& eal_args, l4lb::controlplane::ServiceNotifier& notifier) {
  using namespace l4lb;
  if (config.ports.size() != 1)
    throw std::runtime_error("this version forwards on exactly one port (one-arm); ports has " +
                             std::to_string(config.ports.size()));
  const uint32_t workers = config.dataplane.workers;

  dpdk::Eal eal(eal_args);
  if (rte_lcore_count() < workers + 1)
    throw std::runtime_error("dataplane.workers is " + std::to_string(workers) + " but the EAL has " +
                             std::to_string(rte_lcore_count()) +
                             " lcores; give workers + 1 (e.g. -l 0-" + std::to_string(workers) +
                             ", or --lcores to map several onto one CPU)");
  // Lets dpdk-pdump, a secondary process with the same --file-prefix,
  // capture any port's rx/tx to a pcap while l4lbd runs.
  if (rte_pdump_init() != 0) spdlog::warn("packet capture unavailable: rte_pdump_init failed");
  // Each worker's flow table, SNAT pools, the rings it reads and the Worker
  // itself come from the NUMA socket of its lcore; the mbuf pool from the
  // port's (a virtual device has none: the first worker's).
  std::vector<unsigned> worker_lcores;
  for (unsigned l = rte_get_next_lcore(-1, 1, 0); worker_lcores.size() < workers; l = rte_get_next_lcore(l, 1, 0))
    worker_lcores.push_back(l);
  std::vector<int> worker_socket;
  for (const unsigned l : worker_lcores) worker_socket.push_back(static_cast<int>(rte_lcore_to_socket_id(l)));
  const uint16_t port_id = dpdk::Port::find(config.ports[0].name);
  const int port_socket = rte_eth_dev_socket_id(port_id) >= 0 ? rte_eth_dev_socket_id(port_id) : worker_socket[0];
  check_memory(config, options.config_path, port_socket, worker_socket);
  auto pool = dpdk::make_pktmbuf_pool("l4lb_mbufs", config.dataplane.mbufs, port_socket);

  const auto queues = static_cast<uint16_t>(workers);
  dpdk::Port port(port_id, dpdk::PortQueues{queues, queues, 1024, 1024}, pool.get());
  spdlog::info("port {} ({}, driver {}) up: MAC {}, {} rx/tx queues, {}", port.id(), port.name(), port.driver(),
               dpdk::format_mac(port.mac()), queues,
               queues == 1              ? "one queue"
               : port.rss_hash_types() ? "RSS on IP+TCP/UDP ports spreads flows"
                                       : "no RSS: the device picks the queue");

  std::vector<dpdk::RingPtr> owned_rings;
  std::vector<controlplane::WorkerRings> rings;
  for (uint32_t w = 0; w < workers; ++w) {
    const std::string n = std::to_string(w);
    controlplane::WorkerRings r;
    const int socket = worker_socket[w];
    r.snapshot =
        owned_rings.emplace_back(dpdk::make_spsc_ring("l4lb_snap_" + n, kSnapshotRingSize, socket)).get();
    r.slow_path =
        owned_rings.emplace_back(dpdk::make_spsc_ring("l4lb_slow_" + n, kSlowPathRingSize, socket)).get();
    r.control =
        owned_rings.emplace_back(dpdk::make_spsc_ring("l4lb_ctrl_" + n, kSlowPathRingSize, socket)).get();
    r.inject =
        owned_rings.emplace_back(dpdk::make_spsc_ring("l4lb_inject_" + n, kInjectRingSize, socket)).get();
    rings.push_back(r);
  }

  {
    std::vector<uint32_t> snat_addresses;
    for (const auto& v : config.vips)
      for (uint32_t a : v.snat)
        if (std::find(snat_addresses.begin(), snat_addresses.end(), htonl(a)) == snat_addresses.end())
          snat_addresses.push_back(htonl(a));
    const auto steering = dpdk::steer_snat_replies(
        port.id(), snat_addresses,
        dataplane::SnatPartition(config.dataplane.snat_port_min, config.dataplane.snat_port_max, workers));
    spdlog::info("port {} steering: {}", port.id(), steering.detail);
  }

  // Worker -> worker rings for packets that reached the wrong core.
  rte_ring* handoff[dataplane::kMaxWorkers][dataplane::kMaxWorkers] = {};
  for (uint32_t from = 0; from < workers; ++from)
    for (uint32_t to = 0; to < workers; ++to)
      if (from != to)
        handoff[from][to] = owned_rings
                                .emplace_back(dpdk::make_spsc_ring(
                                    "l4lb_ho_" + std::to_string(from) + "_" + std::to_string(to), kHandoffRingSize, worker_socket[to]))
                                .get();

  // Declared before the management core so that they outlive it: the
  // control API and the metrics read their counters until it is gone.
  std::vector<std::unique_ptr<dataplane::Worker>> worker_objs;
  controlplane::ManagementCore mgmt(config, options.config_path, port.id(), port.mac(), pool.get(), rings);
  mgmt.set_service_notifier(&notifier);

  std::vector<const dataplane::Worker*> worker_views;
  for (uint32_t w = 0; w < workers; ++w) {
    dataplane::WorkerSetup s;
    s.index = w;
    s.worker_count = workers;
    s.port_id = port.id();
    s.rx_queue = static_cast<uint16_t>(w);
    s.tx_queue = static_cast<uint16_t>(w);
    s.snapshot_ring = rings[w].snapshot;
    s.slow_path_ring = rings[w].slow_path;
    s.control_ring = rings[w].control;
    s.inject_ring = rings[w].inject;
    for (uint32_t other = 0; other < workers; ++other) {
      s.handoff_out[other] = handoff[w][other];
      s.handoff_in[other] = handoff[other][w];
    }
    s.flow_capacity = config.dataplane.flows_per_worker;
    s.snat_port_min = config.dataplane.snat_port_min;
    s.snat_port_max = config.dataplane.snat_port_max;
    s.socket_id = worker_socket[w];
    s.idle_sleep_us = config.dataplane.idle_sleep_us;
    s.snat_pools = config.dataplane.snat_pools_per_worker;
    s.evict_unconfirmed = config.dataplane.table_full == config::TableFullPolicy::kEvictEmbryonic;
    // Held fragments keep RX mbufs: at most an eighth of the pool in all.
    s.fragments_held = std::min<uint32_t>(s.fragments_held, config.dataplane.mbufs / (8 * workers));
    worker_objs.emplace_back(new (s.socket_id) dataplane::Worker(s, mgmt.initial_snapshot()));
    worker_views.push_back(worker_objs.back().get());
  }
  mgmt.attach_workers(worker_views);

  std::vector<unsigned> launched;
  for (auto& w : worker_objs) {
    const unsigned lcore = worker_lcores[w->index()];
    if (rte_eal_remote_launch(worker_main, w.get(), lcore) != 0)
      throw std::runtime_error("cannot launch worker on lcore " + std::to_string(lcore));
    spdlog::info("worker {} on lcore {}: port {} queue {}, {} flows, SNAT ports {}-{}", w->index(), lcore,
                 port.id(), w->index(), config.dataplane.flows_per_worker, w->snat_pools().first_port(),
                 w->snat_pools().last_port());
    launched.push_back(lcore);
  }
  spdlog::info("l4lbd ready: {} VIPs, {} workers, config {}", config.vips.size(), workers, options.config_path);
  if (!notifier.ready(mgmt.status_line())) spdlog::warn("could not tell the service manager READY=1 (NOTIFY_SOCKET)");
  if (notifier.watchdog_interval_usec())
    spdlog::info("watchdog: WATCHDOG=1 every {} ms from the management loop", notifier.watchdog_interval_usec() / 1000);

  leave_driver_signals_to_service_threads();
  Shutdown shutdown(mgmt, notifier, worker_objs);
  try {
    mgmt.run(g_mgmt_stop, g_reload, [&shutdown] { shutdown.poll(); });
  } catch (...) {
    g_workers_stop.store(true);
    rte_eal_mp_wait_lcore();
    throw;
  }
  // SNAT routes too, and an empty routes file for a BIRD that outlives us.
  mgmt.withdraw_all_routes(1000);
  g_workers_stop.store(true);
  spdlog::info("stopping: waiting for workers");
  rte_pdump_uninit();
  rte_eal_mp_wait_lcore();
  for (const auto& w : worker_objs) {
    // Stopped workers: a full consistency check is safe now and cheap next to a restart.
    const auto problems = w->audit();
    if (problems.empty())
      spdlog::info("worker {}: flow table, SNAT pool and counters agree", w->index());
    for (const auto& problem : problems) spdlog::error("worker {} audit: {}", w->index(), problem);
    const auto& c = w->counters();
    spdlog::info("worker {}: rx {} tx {} forward {} reverse {} slow-path {} flows created {} active {}", w->index(),
                 c.rx_packets.get(), c.tx_packets.get(), c.forward_packets.get(), c.reverse_packets.get(),
                 c.slow_path_packets.get(), c.flows_created.get(), c.flows_active.get());
  }
  // Packets still queued go back to the pool before it is freed.
  for (const auto& r : rings) {
    drain_mbufs(r.slow_path);
    drain_mbufs(r.control);
    drain_mbufs(r.inject);
  }
  for (uint32_t from = 0; from < workers; ++from)
    for (uint32_t to = 0; to < workers; ++to)
      if (handoff[from][to]) drain_mbufs(handoff[from][to]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace l4lb;
  const auto split = cli::split_eal_args(argc, argv, "l4lbd");
  const std::string program = argc > 0 ? argv[0] : "l4lbd";
  daemon::Options options;
  try {
    options = daemon::parse_options(split.app);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n\n%s", program.c_str(), e.what(), daemon::usage(program).c_str());
    return 2;
  }
  if (options.help) {
    std::fputs(daemon::usage(program).c_str(), stdout);
    return 0;
  }
  config::Config config;
  try {
    config = config::load_config_file(options.config_path);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s: invalid config: %s\n", program.c_str(), e.what());
    return 1;
  }
  if (options.check_only) {
    std::printf("%s: config OK (%zu VIPs)\n", options.config_path.c_str(), config.vips.size());
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  controlplane::ServiceNotifier notifier;
  try {
    notifier = controlplane::ServiceNotifier::from_environment();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
  try {
    const int rc = run(config, options, split.eal, notifier);
    spdlog::info("l4lbd stopped");
    return rc;
  } catch (const config::ConfigError& e) {
    // Found only at start (memory, descriptors): reported like a load error.
    std::fprintf(stderr, "%s: invalid config: %s\n", program.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
