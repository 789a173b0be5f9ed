// A worker's FNAT source ports. A reply's 5-tuple only has to be unique per
// backend, so ports are kept per (SNAT address, backend address:port) pair,
// as the Linux NAT and DPVS do: capacity is SNAT addresses x ports x
// backends. One pool per pair, inside this worker's slice of the range
// (flow_owner.h, so replies still find their owner by port), made the first
// time a flow needs it, out of an arena preallocated on the slow path.
//
// A pool hands out ports it has never handed out first, then released ports
// oldest first. A released port carries the time it may be handed out
// again: at once when the backend holds nothing for the old connection (it
// ended in a RST, the client closed first, it never got established), or
// after the hold when the backend closed first and sits in TIME_WAIT.
//
// Memory: 6 bytes per port of the worker's slice per pool (a port and its
// ready time) plus 64 bytes; 135 KiB per pool for the default range on one
// worker. The arena holds `max_pools` (dataplane.snat_pools_per_worker); a
// pool whose ports are all back and past their hold is reused for another
// pair when the arena runs out.
#pragma once

#include <cstdint>
#include <memory>

#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/worker_counters.h"

namespace l4lb::dataplane {

struct SnatPortPool {
  uint64_t key = 0;           // 0: unused; else pool_key()
  uint32_t fresh = 0;         // ports first+fresh.. last not handed out since the pool was made
  uint32_t head = 0;          // released ports: a ring of `count` from `head`
  uint32_t count = 0;
  uint32_t in_use = 0;
  uint32_t last_release = 0;  // flow_clock() of the newest give_back
  uint8_t slot = 0;
  uint16_t* ports = nullptr;  // host order
  uint32_t* ready_at = nullptr;
};

class SnatPools {
 public:
  static constexpr uint16_t kNoPool = 0xFFFF;

  // Slow path: allocates the arena on `socket_id`. Throws std::invalid_argument
  // on bad parameters, std::runtime_error when DPDK memory is short.
  // `pools_by_slot` (kMaxSnatAddresses gauges, may be null) counts the pools
  // in use per SNAT slot for the management core to read.
  SnatPools(const SnatPartition& partition, uint32_t worker_index, uint32_t max_pools, int socket_id,
            Counter* pools_by_slot = nullptr);
  ~SnatPools();
  SnatPools(const SnatPools&) = delete;
  SnatPools& operator=(const SnatPools&) = delete;

  // Fast path. The pool of (SNAT slot, backend address:port), wire order,
  // made if it does not exist. kNoPool when the arena is full and no pool is
  // idle past `hold_ticks` (an idle pool's ports might still be in a
  // backend's TIME_WAIT, so it is reused only after the hold).
  uint16_t pool_for(uint8_t slot, uint32_t backend_ip, uint16_t backend_port, uint32_t now, uint32_t hold_ticks);
  uint16_t find(uint8_t slot, uint32_t backend_ip, uint16_t backend_port) const;

  // Fast path. A port that may be handed out at `now`; false when none may.
  bool take(uint16_t pool, uint32_t now, uint16_t& port_host_order) {
    SnatPortPool& p = pools_[pool];
    if (p.fresh < slice_) {
      port_host_order = static_cast<uint16_t>(first_ + p.fresh++);
    } else if (p.count && static_cast<int32_t>(now - p.ready_at[p.head]) >= 0) {
      port_host_order = p.ports[p.head];
      if (++p.head == slice_) p.head = 0;
      --p.count;
    } else {
      return false;
    }
    ++p.in_use;
    return true;
  }
  // Fast path. A port back from a flow, ready again at `ready_at`. Ports
  // ready at once go to the front, held ones to the back, so the queue
  // stays in ready order while the hold stays the same.
  void give_back(uint16_t pool, uint16_t port_host_order, uint32_t now, uint32_t ready_at) {
    SnatPortPool& p = pools_[pool];
    uint32_t at;
    if (static_cast<int32_t>(ready_at - now) <= 0) {
      p.head = p.head ? p.head - 1 : slice_ - 1;
      at = p.head;
    } else {
      at = p.head + p.count;
      if (at >= slice_) at -= slice_;
    }
    p.ports[at] = port_host_order;
    p.ready_at[at] = ready_at;
    ++p.count;
    --p.in_use;
    p.last_release = now;
  }
  // Fast path: the port the n-th take() from now would likely return. A
  // prefetch hint only.
  bool peek(uint16_t pool, uint32_t n, uint16_t& port_host_order) const {
    const SnatPortPool& p = pools_[pool];
    if (p.fresh + n < slice_) {
      port_host_order = static_cast<uint16_t>(first_ + p.fresh + n);
      return true;
    }
    n -= slice_ - p.fresh;
    if (n >= p.count) return false;
    const uint32_t at = p.head + n;
    port_host_order = p.ports[at >= slice_ ? at - slice_ : at];
    return true;
  }

  const SnatPortPool& pool(uint16_t index) const { return pools_[index]; }
  uint32_t max_pools() const { return max_pools_; }
  uint32_t pools_in_use() const { return max_pools_ - free_count_; }
  uint32_t slice() const { return slice_; }
  uint16_t first_port() const { return first_; }
  uint16_t last_port() const { return static_cast<uint16_t>(first_ + slice_ - 1); }
  // Ports of `pool` not held by a flow (fresh or released, ready or not).
  uint32_t free_count(uint16_t pool) const { return slice_ - pools_[pool].in_use; }
  // Slow path (audits): f(port) for every port of `pool` no flow holds.
  template <typename F>
  void for_each_free(uint16_t pool, F&& f) const {
    const SnatPortPool& p = pools_[pool];
    for (uint32_t i = p.fresh; i < slice_; ++i) f(static_cast<uint16_t>(first_ + i));
    for (uint32_t i = 0; i < p.count; ++i) f(p.ports[(p.head + i) % slice_]);
  }
  // DPDK memory held (arena and index).
  size_t memory_bytes() const { return memory_for(slice_, max_pools_); }
  // What SnatPools of `max_pools` pools over `slice` ports allocate
  // (start-up memory checks compute it without building one).
  static size_t memory_for(uint32_t slice, uint32_t max_pools);

 private:
  static uint64_t pool_key(uint8_t slot, uint32_t ip, uint16_t port) {
    return (uint64_t{slot} + 1) << 48 | uint64_t{ip} << 16 | port;
  }
  uint32_t home(uint64_t key) const { return static_cast<uint32_t>(fmix64(key)) & index_mask_; }
  uint16_t reuse_idle(uint32_t now, uint32_t hold_ticks);
  // A pool's ports and ready times, rounded to a cache line.
  static size_t bytes_per_pool(uint32_t slice) {
    return (size_t{slice} * (sizeof(uint16_t) + sizeof(uint32_t)) + 63) & ~size_t{63};
  }
  static uint32_t index_size(uint32_t max_pools);
  void unindex(uint64_t key);

  Counter* pools_by_slot_ = nullptr;
  SnatPortPool* pools_ = nullptr;
  uint16_t* free_list_ = nullptr;  // stack of unused pool indices
  uint32_t free_count_ = 0;
  uint16_t* index_ = nullptr;      // open addressing, linear probing: pool index or kNoPool
  uint32_t index_mask_ = 0;
  uint8_t* storage_ = nullptr;     // every pool's ports and ready times
  uint32_t max_pools_ = 0;
  uint32_t slice_ = 0;
  uint16_t first_ = 0;
};

}  // namespace l4lb::dataplane
