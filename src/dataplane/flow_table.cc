#include "l4lb/dataplane/flow_table.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <stdexcept>

namespace l4lb::dataplane {

FlowTable::FlowTable(const std::string& name, uint32_t capacity, int socket_id)
    : capacity_(capacity) {
  if (capacity == 0) throw std::invalid_argument("flow table capacity must be > 0");
  rte_hash_parameters params{};
  params.name = name.c_str();
  params.entries = capacity * 2;  // one key per direction
  params.key_len = sizeof(FlowKey);
  params.hash_func = rte_hash_crc;
  params.hash_func_init_val = 0;
  params.socket_id = socket_id;
  // The extendable bucket table guarantees an insert succeeds while the
  // table holds fewer than `entries` keys, whatever the cuckoo layout.
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  hash_ = rte_hash_create(&params);
  if (!hash_) throw std::runtime_error("rte_hash_create(" + name + ") failed: " + rte_strerror(rte_errno));

  entries_ = static_cast<FlowEntry*>(
      rte_zmalloc_socket("l4lb_flows", sizeof(FlowEntry) * size_t{capacity}, 64, socket_id));
  free_list_ = static_cast<uint32_t*>(
      rte_malloc_socket("l4lb_flow_free", sizeof(uint32_t) * size_t{capacity}, 64, socket_id));
  if (!entries_ || !free_list_) {
    rte_free(entries_);
    rte_free(free_list_);
    rte_hash_free(hash_);
    throw std::runtime_error("out of DPDK memory for " + std::to_string(capacity) + " flows");
  }
  // Hand out low indices first so a lightly loaded table stays compact.
  for (uint32_t i = 0; i < capacity; ++i) free_list_[i] = capacity - 1 - i;
  free_count_ = capacity;
}

FlowTable::~FlowTable() {
  rte_hash_free(hash_);
  rte_free(entries_);
  rte_free(free_list_);
}

uint64_t FlowTable::lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* values) const {
  void* data[kMaxBulk];
  uint64_t hits = 0;
  rte_hash_lookup_bulk_data(hash_, reinterpret_cast<const void**>(const_cast<const FlowKey**>(keys)),
                            n, &hits, data);
  for (uint32_t i = 0; i < n; ++i)
    if (hits & (1ull << i)) values[i] = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data[i]));
  return hits;
}

uint32_t FlowTable::lookup(const FlowKey& key) const {
  void* data = nullptr;
  if (rte_hash_lookup_data(hash_, &key, &data) < 0) return kMiss;
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
}

uint32_t FlowTable::allocate() {
  if (free_count_ == 0) return kMiss;
  return free_list_[--free_count_];
}

void FlowTable::release_unused(uint32_t index) {
  entries_[index].state = FlowState::kFree;
  free_list_[free_count_++] = index;
}

bool FlowTable::insert(uint32_t index) {
  const FlowEntry& e = entries_[index];
  const FlowKey fwd = forward_key(e);
  const FlowKey rev = reverse_key(e);
  const uintptr_t value = uintptr_t{index} << 1;
  if (rte_hash_add_key_data(hash_, &fwd, reinterpret_cast<void*>(value)) < 0) {
    release_unused(index);
    return false;
  }
  if (rte_hash_add_key_data(hash_, &rev, reinterpret_cast<void*>(value | 1)) < 0) {
    rte_hash_del_key(hash_, &fwd);
    release_unused(index);
    return false;
  }
  return true;
}

void FlowTable::remove(uint32_t index) {
  const FlowEntry& e = entries_[index];
  const FlowKey fwd = forward_key(e);
  const FlowKey rev = reverse_key(e);
  rte_hash_del_key(hash_, &fwd);
  rte_hash_del_key(hash_, &rev);
  release_unused(index);
}

}  // namespace l4lb::dataplane
