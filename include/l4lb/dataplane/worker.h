// The worker lcore's loop: rx burst -> parse -> classify -> flow lookup
// (miss: Maglev pick + SNAT port + insert) -> NAT rewrite -> tx burst.
// One Worker per worker lcore; everything it writes is its own (flow table,
// SNAT pool, counters). It talks to the management core only through SPSC
// rings: snapshots in, slow-path packets out, packets to transmit in.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/flow_table.h"
#include "l4lb/dataplane/fragment_table.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/snapshot.h"
#include "l4lb/dataplane/snat_pool.h"
#include "l4lb/dataplane/token_bucket.h"
#include "l4lb/dataplane/worker_counters.h"

struct rte_mbuf;
struct rte_ring;

namespace l4lb::dataplane {

struct Classification;  // classify.h

inline constexpr uint16_t kBurstSize = 64;

struct WorkerSetup {
  uint32_t index = 0;        // 0-based worker index
  uint32_t worker_count = 1;
  uint16_t port_id = 0;
  uint16_t rx_queue = 0;
  uint16_t tx_queue = 0;
  rte_ring* snapshot_ring = nullptr;   // mgmt -> worker: const Snapshot*
  rte_ring* slow_path_ring = nullptr;  // worker -> mgmt: rte_mbuf* for the kernel
  // worker -> mgmt: ARP and probe answers, drained first so a flood to the
  // appliance cannot starve them. Null: they share slow_path_ring.
  rte_ring* control_ring = nullptr;
  rte_ring* inject_ring = nullptr;     // mgmt -> worker: rte_mbuf* to transmit
  // Packets that reached the wrong worker go to their owner (DESIGN §4):
  // handoff_out[i] carries ours to worker i, handoff_in[i] worker i's to us.
  rte_ring* handoff_out[kMaxWorkers] = {};
  rte_ring* handoff_in[kMaxWorkers] = {};
  uint32_t flow_capacity = 1u << 20;
  uint16_t snat_port_min = 10240;
  uint16_t snat_port_max = 32767;
  uint32_t snat_pools = 1024;    // config::DataplaneConfig::snat_pools_per_worker
  int socket_id = 0;
  uint32_t idle_sleep_us = 0;  // see config::DataplaneConfig::idle_sleep_us
  bool evict_unconfirmed = true;  // table_full policy, for table slots and SNAT ports
  // Fragmented datagrams followed at once, and fragments held for their
  // first (fragment_table.h); held ones take mbufs from the RX pool.
  uint32_t fragment_datagrams = 4096;
  uint32_t fragments_held = 1024;
};

class Worker {
 public:
  // A worker lives in DPDK memory of its lcore's NUMA socket
  // (`new (socket) Worker(...)`): its counters and TX buffers are written
  // per packet by that core. Plain `new` takes memory from any socket.
  static void* operator new(size_t size, int socket_id);
  static void* operator new(size_t size) { return operator new(size, -1 /* SOCKET_ID_ANY */); }
  static void operator delete(void* p);
  static void operator delete(void* p, int) { operator delete(p); }  // a constructor that throws

  // Aging sweeps the whole table once per second whatever the packet rate
  // (a flow goes at most 1 s past its timeout), in steps of at least
  // kAgingStep entries so the scan runs in runs the prefetcher can follow.
  static constexpr double kAgingSweepSeconds = 1.0;
  static constexpr uint32_t kAgingStep = 32;
  // Answers to closed VIP ports (closed_vip_ports: reject), per worker:
  // enough for a scan to see closed ports, too few to reflect a flood.
  static constexpr uint32_t kRejectsPerSecond = 1000;
  static constexpr uint32_t kRejectBurst = 100;
  // Best-effort packets to the kernel (ICMP, SSH, anything to the
  // appliance's own addresses but control), per worker: each costs the
  // management core a TAP write and the kernel its answer. Control traffic
  // (ARP, probe answers) is not limited.
  static constexpr uint32_t kSlowPathPerSecond = 5000;
  static constexpr uint32_t kSlowPathBurst = 256;

  // Slow path: allocates the flow table and SNAT pools. `initial` must stay
  // alive until the worker acknowledges a newer generation.
  Worker(const WorkerSetup& setup, const Snapshot* initial);
  // Frees the fragments still held.
  ~Worker();

  // The lcore loop; returns when `stop` becomes true.
  void run(const std::atomic<bool>& stop);

  // One loop iteration, exposed so tests can step the worker. Returns the
  // number of packets it moved (received, handed in, or injected).
  unsigned poll_once(uint64_t now_tsc);

  // Handles a burst already received; consumes every mbuf (sent, queued for
  // the slow path, handed to its owner, or freed and counted). Packets
  // `handed_off` by another worker are ours by construction and are never
  // passed on again.
  void process_burst(rte_mbuf** pkts, uint16_t n, uint64_t now_tsc, bool handed_off = false);

  // Examines up to `budget` flow entries and removes those idle past their
  // state's timeout.
  void age_flows(uint64_t now_tsc, uint32_t budget);
  // How many entries the sweep owes at `now_tsc` (0 until a step is due).
  uint32_t aging_due(uint64_t now_tsc);

  // The newest snapshot generation this worker has switched to. The
  // management core may free any older snapshot once every worker's ack has
  // passed it.
  uint64_t acked_generation() const { return acked_generation_.load(std::memory_order_acquire); }

  // Debug check that the flow table, the SNAT pools and the counters agree:
  // every SNAT port of a pool is either free or held by exactly one flow,
  // per-slot and per-pool in-use counts match, the unconfirmed lists (all,
  // per pool, per VIP) hold exactly the unconfirmed flows, per-state gauges
  // match. Returns the disagreements found (empty = consistent). Scans the
  // whole table: only on a stopped worker or from its own lcore.
  std::vector<std::string> audit() const;

  const WorkerCounters& counters() const { return counters_; }
  const FlowTable& flows() const { return flows_; }
  const FragmentTable& fragments() const { return fragments_; }
  const SnatPools& snat_pools() const { return snat_; }
  uint32_t index() const { return setup_.index; }

 private:
  // Oldest-first list of unconfirmed flows, linked through FlowEntry.
  struct AgeList {
    uint32_t oldest = FlowTable::kMiss;
    uint32_t newest = FlowTable::kMiss;
  };

  void pick_up_snapshot();
  unsigned transmit_injected();
  unsigned receive_handoffs(uint64_t now);
  void hand_off(rte_mbuf* m, uint32_t owner) { handoff_[owner][handoff_count_[owner]++] = m; }
  void handle_flow_packet(rte_mbuf* m, const ParsedPacket& p, uint32_t value, uint32_t vip_index);
  void forward_created(rte_mbuf* m, const ParsedPacket& p, uint32_t index, uint32_t vip_index);
  // Where a packet went once classified (take_classified): its flow's path,
  // or one of the others.
  enum class Path : uint8_t { kFlow, kDropped, kControl, kSlowPath, kHandedOff };
  Path take_classified(rte_mbuf* m, const ParsedPacket& p, const Classification& c, bool handed_off, uint64_t now);
  void handle_looked_up(rte_mbuf* m, const ParsedPacket& p, uint32_t value, uint32_t vip_index);
  // The burst path for one packet, out of line (fragments' first): where it
  // went, and the owner classify() named.
  Path process_one(rte_mbuf* m, const ParsedPacket& p, bool handed_off, uint64_t now, uint32_t& owner);
  // A TCP segment that may change its flow's state (anything but an ACK of
  // an established flow): false when it was consumed (dropped, reset, or a
  // new connection that replaced the flow).
  bool track_tcp(rte_mbuf* m, const ParsedPacket& p, uint32_t index, bool reverse, uint32_t vip_index);
  bool backend_alive(uint32_t backend_id) const;
  void prefetch_reverse_buckets(uint64_t misses, const FlowKey* keys, const uint32_t* vip_of);
  void handle_new_flow(rte_mbuf* m, const ParsedPacket& p, uint32_t vip_index);
  void redirect_to_appliance(rte_mbuf* m, const ParsedPacket& p);
  void reverse_without_flow(rte_mbuf* m, const ParsedPacket& p);
  // An ICMP error quoting a packet of a flow: translated and sent on, or
  // handed to the flow's owner, or dropped (no such flow); false when it
  // quotes nothing l4lbd translated (the normal path has it).
  bool handle_icmp_error(rte_mbuf* m, const ParsedPacket& p, bool handed_off);
  // A fragment (worker_fragment.cc): the first goes the way a whole packet
  // would, the others follow it or wait for it.
  void handle_fragment(rte_mbuf* m, const ParsedPacket& p, bool handed_off, uint64_t now_tsc);
  FragmentVerdict route_first_fragment(rte_mbuf* m, const ParsedPacket& p, bool handed_off, uint64_t now_tsc,
                                       FragmentRewrite& rewrite);
  void follow_first_fragment(rte_mbuf* m, const FragmentTable::Datagram& d, uint64_t now_tsc);
  void drop_held_fragments(uint32_t index, DropReason reason);
  void expire_fragments(uint64_t now_tsc);
  // Fragment paths can queue more than one packet per packet received:
  // they flush first when a queue is half full (the queues hold two bursts).
  void make_room();
  // An SNAT port towards `backend` for a flow whose Maglev hash is `hash`:
  // the first SNAT address of the VIP with a port ready, else the oldest
  // unconfirmed flow of the first address's pool gives up its port.
  bool take_snat_port(const SnapshotVip& vip, const SnapshotBackend& backend, uint64_t hash, uint8_t& slot,
                      uint16_t& pool, uint16_t& port, DropReason& why);
  void reset_flow(rte_mbuf* m, const ParsedPacket& p, uint32_t index, bool reverse);
  void answer_closed_port(rte_mbuf* m, const ParsedPacket& p, uint64_t now_tsc);
  // Every state change goes through here, so the per-state gauges stay exact.
  void set_state(uint32_t index, FlowState next);
  // Unconfirmed bookkeeping: a new flow joins the lists; a confirmed or
  // removed one leaves them.
  void join_unconfirmed(uint32_t index);
  void leave_unconfirmed(uint32_t index);
  void evict(uint32_t index);
  void expire(uint32_t index, bool closed);
  void drop(rte_mbuf* m, DropReason reason);
  void to_slow_path(rte_mbuf* m) { slow_[slow_count_++] = m; }
  void to_control(rte_mbuf* m) { control_[control_count_++] = m; }
  void to_tx(rte_mbuf* m) { tx_[tx_count_++] = m; }
  void flush();
  void enqueue_or_drop(rte_ring* ring, rte_mbuf** pkts, uint16_t count, Counter& queued_counter, DropReason full);

  WorkerSetup setup_;
  SnatPartition partition_;
  const Snapshot* snapshot_;
  WorkerCounters counters_;  // before snat_, which counts its pools into it
  FlowTable flows_;
  SnatPools snat_;
  uint32_t now_ = 0;  // flow_clock() of the burst being handled
  uint32_t aging_cursor_ = 0;
  uint64_t aging_last_tsc_ = 0;
  uint64_t aging_sweep_tsc_ = 0;  // one pass over the whole table takes this long
  uint64_t aging_step_tsc_ = 0;   // the time kAgingStep entries are due in
  // Table changes made by the burst being handled (see process_burst).
  uint32_t created_in_burst_ = 0;
  uint32_t removed_in_burst_ = 0;
  // Unconfirmed flows: all of them, per SNAT pool, and counted per VIP id
  // (max_embryonic).
  AgeList unconfirmed_;
  std::unique_ptr<AgeList[]> pool_unconfirmed_;
  std::unique_ptr<uint32_t[]> unconfirmed_by_vip_;
  // An mbuf field (rte_mbuf_dyn.h) counting the workers an ICMP error
  // about an FNAT flow has left to visit (worker_icmp.cc); -1: none, and
  // such errors are dropped where no flow is found.
  int icmp_hops_offset_ = -1;
  TokenBucket rejects_;           // closed-port answers
  TokenBucket slow_path_budget_;  // best-effort packets for the kernel

  rte_mbuf* tx_[kBurstSize * 2];
  uint16_t tx_count_ = 0;
  FragmentTable fragments_;

  rte_mbuf* slow_[kBurstSize * 2];
  uint16_t slow_count_ = 0;
  rte_mbuf* control_[kBurstSize * 2];
  uint16_t control_count_ = 0;
  rte_mbuf* handoff_[kMaxWorkers][kBurstSize * 2];
  uint16_t handoff_count_[kMaxWorkers] = {};

  alignas(64) std::atomic<uint64_t> acked_generation_{0};
};

}  // namespace l4lb::dataplane
