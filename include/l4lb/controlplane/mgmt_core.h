// The management core's loop (DESIGN §2, §6): relays the exception path,
// keeps neighbours resolved, rebuilds and publishes snapshots, reclaims old
// ones, and reloads the config on request. Runs on the EAL main lcore; it
// may block briefly (syscalls), workers never wait for it.
#pragma once

#include <rte_ether.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/controlplane/control_api.h"
#include "l4lb/controlplane/exception_path.h"
#include "l4lb/controlplane/neighbours.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/controlplane/snapshot_publisher.h"
#include "l4lb/dataplane/worker.h"

struct rte_mempool;
struct rte_ring;

namespace l4lb::controlplane {

struct WorkerRings {
  rte_ring* snapshot = nullptr;
  rte_ring* slow_path = nullptr;
  rte_ring* inject = nullptr;
};

class ManagementCore {
 public:
  // Creates the exception interface and builds the first snapshot. Throws
  // std::runtime_error.
  ManagementCore(config::Config config, std::string config_path, const rte_ether_addr& port_mac,
                 rte_mempool* pool, std::vector<WorkerRings> rings);
  ~ManagementCore();

  // The snapshot workers start with.
  const dataplane::Snapshot* initial_snapshot() const { return publisher_.current(); }

  // Must be called once the workers exist and before run().
  void attach_workers(std::vector<const dataplane::Worker*> workers);

  // Loops until `stop`; reloads the config whenever `reload` is set (and
  // clears it). Returns after the last relay.
  void run(const std::atomic<bool>& stop, std::atomic<bool>& reload);

  // Re-reads the config file. On any error the running config stays, the
  // error (with key and line) is logged and returned; "" means applied.
  std::string reload_config();

 private:
  std::vector<uint32_t> wanted_next_hops() const;
  void publish_snapshot();
  void update_status();

  config::Config config_;
  std::string config_path_;
  dataplane::MacAddress port_mac_{};
  std::vector<WorkerRings> rings_;
  std::vector<rte_ring*> slow_path_rings_;
  std::unique_ptr<ExceptionPath> exception_;
  Neighbours neighbours_;
  BuildState build_state_;
  SnapshotPublisher publisher_;
  std::vector<const dataplane::Worker*> workers_;
  ControlState control_;
  uint64_t generation_ = 0;
};

}  // namespace l4lb::controlplane
