#include "l4lb/dataplane/snat_pool.h"

#include <rte_malloc.h>

#include <bit>
#include <stdexcept>
#include <string>

namespace l4lb::dataplane {

SnatPools::SnatPools(const SnatPartition& partition, uint32_t worker_index, uint32_t max_pools, int socket_id,
                     Counter* pools_by_slot)
    : pools_by_slot_(pools_by_slot), max_pools_(max_pools), first_(partition.first_port(worker_index)) {
  if (worker_index >= partition.workers() || partition.first_port(worker_index) > partition.last_port(worker_index))
    throw std::invalid_argument("bad SNAT pool parameters");
  if (max_pools == 0 || max_pools >= kNoPool)
    throw std::invalid_argument("SNAT pools per worker must be in 1.." + std::to_string(kNoPool - 1));
  slice_ = uint32_t{partition.last_port(worker_index)} - first_ + 1;
  const uint32_t index_entries = index_size(max_pools);
  index_mask_ = index_entries - 1;
  const size_t per_pool = bytes_per_pool(slice_);
  pools_ = static_cast<SnatPortPool*>(rte_zmalloc_socket("l4lb_snat_pools", sizeof(SnatPortPool) * max_pools, 64, socket_id));
  free_list_ = static_cast<uint16_t*>(rte_malloc_socket("l4lb_snat_pools", sizeof(uint16_t) * max_pools, 0, socket_id));
  index_ = static_cast<uint16_t*>(rte_malloc_socket("l4lb_snat_pools", sizeof(uint16_t) * index_entries, 64, socket_id));
  storage_ = static_cast<uint8_t*>(rte_malloc_socket("l4lb_snat_pools", per_pool * max_pools, 64, socket_id));
  if (!pools_ || !free_list_ || !index_ || !storage_) {
    rte_free(pools_);
    rte_free(free_list_);
    rte_free(index_);
    rte_free(storage_);
    throw std::runtime_error("out of DPDK memory for " + std::to_string(max_pools) + " SNAT pools of " +
                             std::to_string(slice_) + " ports");
  }
  for (uint32_t i = 0; i <= index_mask_; ++i) index_[i] = kNoPool;
  for (uint32_t i = 0; i < max_pools; ++i) {
    SnatPortPool& p = pools_[i];
    p = SnatPortPool{};
    p.ready_at = reinterpret_cast<uint32_t*>(storage_ + per_pool * i);
    p.ports = reinterpret_cast<uint16_t*>(storage_ + per_pool * i + sizeof(uint32_t) * slice_);
    free_list_[i] = static_cast<uint16_t>(max_pools - 1 - i);
  }
  free_count_ = max_pools;
}

SnatPools::~SnatPools() {
  rte_free(pools_);
  rte_free(free_list_);
  rte_free(index_);
  rte_free(storage_);
}

uint32_t SnatPools::index_size(uint32_t max_pools) { return std::bit_ceil(max_pools * 2); }

size_t SnatPools::memory_for(uint32_t slice, uint32_t max_pools) {
  return (sizeof(SnatPortPool) + sizeof(uint16_t) + bytes_per_pool(slice)) * size_t{max_pools} +
         sizeof(uint16_t) * size_t{index_size(max_pools)};
}

uint16_t SnatPools::find(uint8_t slot, uint32_t backend_ip, uint16_t backend_port) const {
  const uint64_t key = pool_key(slot, backend_ip, backend_port);
  for (uint32_t i = home(key);; i = (i + 1) & index_mask_) {
    const uint16_t pool = index_[i];
    if (pool == kNoPool || pools_[pool].key == key) return pool;
  }
}

uint16_t SnatPools::pool_for(uint8_t slot, uint32_t backend_ip, uint16_t backend_port, uint32_t now,
                             uint32_t hold_ticks) {
  const uint64_t key = pool_key(slot, backend_ip, backend_port);
  uint32_t i = home(key);
  for (;; i = (i + 1) & index_mask_) {
    const uint16_t pool = index_[i];
    if (pool == kNoPool) break;
    if (pools_[pool].key == key) return pool;
  }
  uint16_t pool;
  if (free_count_) {
    pool = free_list_[--free_count_];
  } else {
    pool = reuse_idle(now, hold_ticks);
    if (pool == kNoPool) return kNoPool;
    // Unindexing moved entries: find this key's empty slot again.
    for (i = home(key); index_[i] != kNoPool; i = (i + 1) & index_mask_) {
    }
  }
  SnatPortPool& p = pools_[pool];
  if (pools_by_slot_) pools_by_slot_[slot].add();
  p.key = key;
  p.slot = slot;
  p.fresh = p.head = p.count = p.in_use = 0;
  p.last_release = now;
  index_[i] = pool;
  return pool;
}

// Rare: only when more pairs have been used than the arena holds (reloads
// that changed backends). A pool may go once every port is back and the
// newest came back longer ago than the hold.
uint16_t SnatPools::reuse_idle(uint32_t now, uint32_t hold_ticks) {
  for (uint32_t pool = 0; pool < max_pools_; ++pool) {
    const SnatPortPool& p = pools_[pool];
    if (p.in_use == 0 && (hold_ticks == 0 || flow_clock_elapsed(now, p.last_release, hold_ticks))) {
      unindex(p.key);
      if (pools_by_slot_) pools_by_slot_[p.slot].sub();
      return static_cast<uint16_t>(pool);
    }
  }
  return kNoPool;
}

// Linear probing without tombstones: close the gap by moving later entries
// of the run back when their home allows it.
void SnatPools::unindex(uint64_t key) {
  uint32_t i = home(key);
  while (pools_[index_[i]].key != key) i = (i + 1) & index_mask_;
  uint32_t gap = i;
  for (uint32_t j = (gap + 1) & index_mask_; index_[j] != kNoPool; j = (j + 1) & index_mask_) {
    const uint32_t h = home(pools_[index_[j]].key);
    // Movable to the gap when its home is not inside (gap, j].
    if (((j - h) & index_mask_) >= ((j - gap) & index_mask_)) {
      index_[gap] = index_[j];
      gap = j;
    }
  }
  index_[gap] = kNoPool;
}

}  // namespace l4lb::dataplane
