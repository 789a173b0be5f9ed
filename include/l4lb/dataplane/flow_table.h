// A worker's private flow table: one FlowEntry per connection, reachable from
// both directions' 5-tuples. Single writer (its worker), no locks; created
// and destroyed on the slow path.
//
// The index is ours, not rte_hash: a bucket is one cache line of 7 slots,
// each a 32-bit tag (hash bits) and a 32-bit value (entry index and
// direction). Keys are not stored in the index: a tag match is confirmed
// against the entry itself, which the packet needs next anyway. A hit thus
// costs two cache lines (bucket, entry) instead of rte_hash's three (bucket,
// key store, our entry), and a flow costs 64 B of entry plus 32 B of index.
//
// Each key has two candidate buckets (two-choice hashing). It goes to its
// first unless that is full; a bucket counts the keys that overflowed from
// it, so a miss in a bucket with no overflow is final after one cache line.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rte_prefetch.h>

#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/snapshot.h"

namespace l4lb::dataplane {

// Both directions of one connection in one cache line. For DNAT the "snat"
// fields hold the client's own address and port, so the reverse key is always
// (backend, snat) and the reverse rewrite needs no branch on mode. The next
// hop towards the backend is not stored: it comes from the snapshot by
// backend id, so a neighbour's new MAC reaches the flows already using it.
struct alignas(64) FlowEntry {
  uint32_t client_ip;
  uint32_t vip_ip;
  uint32_t backend_ip;
  uint32_t snat_ip;
  uint16_t client_port;
  uint16_t vip_port;
  uint16_t backend_port;
  uint16_t snat_port;
  uint32_t last_seen;      // flow_clock() of the last packet
  MacAddress client_mac;   // previous hop of the forward direction: where replies go
  uint8_t proto;
  FlowState state;
  uint8_t flags;           // kFlow* (flow_state.h)
  uint8_t snat_slot;       // kMaxSnatAddresses when the flow holds no SNAT port
  uint16_t vip_id;         // stable ids (snapshot.h): counters, policy, next hop
  uint16_t backend_id;
  // Per side (0 client, 1 backend): top 16 bits of the last ACK it sent,
  // valid once kFlowAckClient / kFlowAckBackend is set (RST window).
  uint16_t ack_hi[2];
  uint16_t snat_pool;      // the worker's pool the port came from (SnatPools)
  // Unconfirmed flows are listed oldest first, all of them and per SNAT
  // pool, so that the worker finds the one to evict for a table slot or for
  // a port of one pool in O(1).
  uint32_t unconfirmed_prev;
  uint32_t unconfirmed_next;
  uint32_t pool_prev;
  uint32_t pool_next;

  bool dnat() const { return flags & kFlowDnat; }
  bool confirmed() const { return flags & kFlowConfirmed; }
};
static_assert(sizeof(FlowEntry) == 64, "a flow must fit one cache line");
// FlowTable::matches reads a direction's key at these offsets.
static_assert(offsetof(FlowEntry, backend_ip) == offsetof(FlowEntry, client_ip) + 8 &&
              offsetof(FlowEntry, snat_ip) == offsetof(FlowEntry, vip_ip) + 8 &&
              offsetof(FlowEntry, backend_port) == offsetof(FlowEntry, client_port) + 4 &&
              offsetof(FlowEntry, snat_port) == offsetof(FlowEntry, vip_port) + 4);
static_assert(offsetof(FlowKey, dst_ip) == offsetof(FlowKey, src_ip) + 4 &&
              offsetof(FlowKey, dst_port) == offsetof(FlowKey, src_port) + 2);

inline FlowKey forward_key(const FlowEntry& e) {
  return make_flow_key(e.client_ip, e.vip_ip, e.client_port, e.vip_port, e.proto);
}
inline FlowKey reverse_key(const FlowEntry& e) {
  return make_flow_key(e.backend_ip, e.snat_ip, e.backend_port, e.snat_port, e.proto);
}

// One cache line of the index. A free slot has tag 0 and value kEmpty; real
// tags are odd, so a free slot never matches.
struct alignas(64) FlowBucket {
  static constexpr uint32_t kSlots = 7;
  static constexpr uint32_t kEmpty = ~0u;
  uint32_t tags[kSlots];
  uint32_t overflowed;  // keys whose first bucket is this one, living in their second
  uint32_t values[kSlots];
  uint32_t away;        // bit s: slot s holds a key whose first bucket is the other one
};
static_assert(sizeof(FlowBucket) == 64);

class FlowTable {
 public:
  static constexpr uint32_t kMiss = ~0u;
  static constexpr uint32_t kMaxBulk = 64;
  static constexpr uint32_t kMaxCapacity = 1u << 30;

  // A value packs the entry index and the direction the key belongs to.
  static uint32_t entry_of(uint32_t value) { return value >> 1; }
  static bool is_reverse(uint32_t value) { return value & 1; }

  // Slow path. `name` labels the DPDK allocations. Throws std::runtime_error
  // when DPDK memory is short. `seed` keys the hash; 0 picks a random one
  // so that remote peers cannot aim their tuples at one bucket.
  FlowTable(const std::string& name, uint32_t capacity, int socket_id, uint64_t seed = 0);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Fast path. Looks up n <= kMaxBulk keys; bit i of the result is set when
  // keys[i] hit, and then values[i] holds its packed value. Every bucket is
  // prefetched before the first is read, and every candidate entry before
  // the first is compared, so a burst pays about one memory latency per
  // stage rather than per key. Hit entries are in cache on return.
  uint64_t lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* values) const;
  uint32_t lookup(const FlowKey& key) const { return find(key, hash(key)); }
  // Starts loading the bucket an insert of `key` will write.
  void prefetch(const FlowKey& key) const { rte_prefetch0(&buckets_[first_bucket(hash(key))]); }

  // Fast path. Takes a free entry, or kMiss when the table is full. The
  // caller fills it, then calls insert(); or release_unused() to give it back.
  // The entry after it starts loading now: the next new flow writes it cold.
  uint32_t allocate() {
    if (free_count_ == 0) return kMiss;
    const uint32_t index = free_list_[--free_count_];
    if (free_count_) rte_prefetch0(&entries_[free_list_[free_count_ - 1]]);
    return index;
  }
  void release_unused(uint32_t index) {
    entries_[index].state = FlowState::kFree;
    free_list_[free_count_++] = index;
  }
  // Publishes both keys of a filled entry. False (entry released) when both
  // candidate buckets of a key are full and no resident can move aside.
  bool insert(uint32_t index);
  // Removes both keys and frees the entry.
  void remove(uint32_t index);

  FlowEntry& entry(uint32_t index) { return entries_[index]; }
  const FlowEntry& entry(uint32_t index) const { return entries_[index]; }
  uint32_t capacity() const { return capacity_; }
  uint32_t active() const { return capacity_ - free_count_; }
  uint32_t bucket_count() const { return bucket_count_; }
  // DPDK memory this table holds (entries, index, free list).
  size_t memory_bytes() const;
  // Keys living in their second bucket: a health figure for tests and stats.
  uint64_t overflowed_keys() const;
  // The 64-bit hash behind a key's buckets and tag (tests, diagnostics).
  uint64_t hash_of(const FlowKey& key) const { return hash(key); }
  // Buckets by number of used slots (0..kSlots): how even the layout is.
  std::array<uint64_t, FlowBucket::kSlots + 1> fill_histogram() const;

 private:
  uint64_t hash(const FlowKey& key) const {
    uint64_t w0, w1;
    std::memcpy(&w0, &key, 8);
    std::memcpy(&w1, reinterpret_cast<const uint8_t*>(&key) + 8, 8);
    // Two independent products folded by fmix64: a bijection of a value that
    // differs for any two distinct keys but with probability 2^-64.
    return fmix64(((w0 ^ seed_) * 0x9E3779B97F4A7C15ull) ^ ((w1 + seed_) * 0xC2B2AE3D27D4EB4Full));
  }
  // Low half picks the first bucket, high half is the tag: independent bits.
  uint32_t first_bucket(uint64_t h) const {
    return static_cast<uint32_t>((uint64_t{static_cast<uint32_t>(h)} * bucket_count_) >> 32);
  }
  static uint32_t tag_of(uint64_t h) { return static_cast<uint32_t>(h >> 32) | 1; }
  // Bit s set when slot s holds `tag`: no branch per slot, so where in the
  // bucket a key sits costs no misprediction.
  static uint32_t tag_matches(const FlowBucket& b, uint32_t tag) {
#if defined(__SSE2__)
    const __m128i want = _mm_set1_epi32(static_cast<int>(tag));
    const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(&b.tags[0]));
    const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(&b.tags[4]));  // lane 3: overflowed
    const uint32_t m = static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(lo, want)))) |
                       static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(hi, want)))) << 4;
    return m & ((1u << FlowBucket::kSlots) - 1);
#else
    uint32_t m = 0;
    for (uint32_t s = 0; s < FlowBucket::kSlots; ++s) m |= uint32_t{b.tags[s] == tag} << s;
    return m;
#endif
  }
  // The other candidate of a key with this tag living in `bucket`. Symmetric
  // (other(other(b)) == b), so a resident can move without knowing its hash.
  // Never `bucket` itself: the bucket count is even and the pivot odd, so
  // pivot - b == b (mod count) has no solution.
  uint32_t other_bucket(uint32_t bucket, uint32_t tag) const {
    const uint32_t pivot = static_cast<uint32_t>((uint64_t{tag * 0x9E3779B1u} * bucket_count_) >> 32) | 1;
    return pivot >= bucket ? pivot - bucket : pivot + bucket_count_ - bucket;
  }
  // The entry keeps each direction's addresses and ports side by side (see
  // FlowEntry), so a key compares as one 8-byte and one 4-byte load.
  bool matches(uint32_t value, const FlowKey& key) const {
    const auto* e = reinterpret_cast<const uint8_t*>(&entries_[entry_of(value)]);
    const uint32_t dir = is_reverse(value);
    uint64_t addresses, key_addresses;
    uint32_t ports, key_ports;
    std::memcpy(&addresses, e + offsetof(FlowEntry, client_ip) + 8 * dir, 8);
    std::memcpy(&ports, e + offsetof(FlowEntry, client_port) + 4 * dir, 4);
    std::memcpy(&key_addresses, &key.src_ip, 8);
    std::memcpy(&key_ports, &key.src_port, 4);
    return ((addresses ^ key_addresses) | (ports ^ key_ports) |
            (e[offsetof(FlowEntry, proto)] ^ key.proto)) == 0;
  }
  uint32_t find_in(const FlowBucket& b, uint32_t tag, const FlowKey& key) const;
  uint32_t find(const FlowKey& key, uint64_t h) const;
  bool place(uint64_t h, uint32_t value);
  void unplace(uint64_t h, uint32_t value);
  static int free_slot(const FlowBucket& b);
  void put(uint32_t bucket, int slot, uint32_t tag, uint32_t value, bool away);

  FlowBucket* buckets_ = nullptr;
  FlowEntry* entries_ = nullptr;
  uint32_t* free_list_ = nullptr;  // stack of free entry indices
  uint32_t free_count_ = 0;
  uint32_t capacity_ = 0;
  uint32_t bucket_count_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace l4lb::dataplane
