// A worker's private flow table: one FlowEntry per connection, reachable from
// both directions' 5-tuples through one rte_hash. Single writer (its worker),
// no locks; created and destroyed on the slow path.
#pragma once

#include <cstdint>
#include <string>

#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/snapshot.h"

struct rte_hash;

namespace l4lb::dataplane {

// Both directions of one connection in one cache line. For DNAT the "snat"
// fields hold the client's own address and port, so the reverse key is always
// (backend, snat) and the reverse rewrite needs no branch on mode.
struct alignas(64) FlowEntry {
  uint32_t client_ip;
  uint32_t vip_ip;
  uint32_t backend_ip;
  uint32_t snat_ip;
  uint16_t client_port;
  uint16_t vip_port;
  uint16_t backend_port;
  uint16_t snat_port;
  uint64_t last_seen_tsc;
  MacAddress client_mac;   // previous hop of the forward direction: where replies go
  MacAddress backend_mac;  // next hop towards the backend
  uint8_t proto;
  FlowState state;
  NatMode mode;
  uint8_t snat_slot;       // kMaxSnatAddresses when the flow holds no SNAT port
  uint16_t vip_id;         // stable ids (snapshot.h): counters and policy
  uint16_t backend_id;
  bool reset_on_down;
  // Embryonic (syn_sent) flows form a list in the order they entered that
  // state, oldest first: the worker evicts from its head when full.
  uint32_t embryonic_prev;
  uint32_t embryonic_next;
};
static_assert(sizeof(FlowEntry) == 64, "a flow must fit one cache line");

inline FlowKey forward_key(const FlowEntry& e) {
  return make_flow_key(e.client_ip, e.vip_ip, e.client_port, e.vip_port, e.proto);
}
inline FlowKey reverse_key(const FlowEntry& e) {
  return make_flow_key(e.backend_ip, e.snat_ip, e.backend_port, e.snat_port, e.proto);
}

class FlowTable {
 public:
  static constexpr uint32_t kMiss = ~0u;
  static constexpr uint32_t kMaxBulk = 64;  // RTE_HASH_LOOKUP_BULK_MAX

  // A hash value packs the entry index and the direction the key belongs to.
  static uint32_t entry_of(uint32_t value) { return value >> 1; }
  static bool is_reverse(uint32_t value) { return value & 1; }

  // Slow path. `name` must be unique among rte_hash objects. Throws
  // std::runtime_error when DPDK memory is short.
  FlowTable(const std::string& name, uint32_t capacity, int socket_id);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Fast path. Looks up n <= kMaxBulk keys; bit i of the result is set when
  // keys[i] hit, and then values[i] holds its packed value.
  uint64_t lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* values) const;
  uint32_t lookup(const FlowKey& key) const;

  // Fast path. Takes a free entry, or kMiss when the table is full. The
  // caller fills it, then calls insert(); or release_unused() to give it back.
  uint32_t allocate();
  void release_unused(uint32_t index);
  // Publishes both keys of a filled entry. False (entry released) if the hash
  // refused either key.
  bool insert(uint32_t index);
  // Removes both keys and frees the entry.
  void remove(uint32_t index);

  FlowEntry& entry(uint32_t index) { return entries_[index]; }
  const FlowEntry& entry(uint32_t index) const { return entries_[index]; }
  uint32_t capacity() const { return capacity_; }
  uint32_t active() const { return capacity_ - free_count_; }

 private:
  rte_hash* hash_ = nullptr;
  FlowEntry* entries_ = nullptr;
  uint32_t* free_list_ = nullptr;  // stack of free entry indices
  uint32_t free_count_ = 0;
  uint32_t capacity_ = 0;
};

}  // namespace l4lb::dataplane
