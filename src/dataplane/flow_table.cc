#include "l4lb/dataplane/flow_table.h"

#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_random.h>

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace l4lb::dataplane {

namespace {

// Two keys per flow over 7-slot buckets: about 4 keys per bucket when the
// table is full, 57 % of its slots. First buckets then overflow rarely
// (a few per cent), and a second bucket with room is all but certain.
constexpr uint32_t kKeysPerBucket = 4;

template <typename T>
T* dpdk_array(const char* what, size_t count, int socket_id) {
  return static_cast<T*>(rte_zmalloc_socket(what, sizeof(T) * count, 64, socket_id));
}

}  // namespace

FlowTable::FlowTable(const std::string& name, uint32_t capacity, int socket_id, uint64_t seed)
    : capacity_(capacity) {
  if (capacity == 0 || capacity > kMaxCapacity)
    throw std::invalid_argument("flow table capacity must be in 1.." + std::to_string(kMaxCapacity));
  const uint64_t buckets = (uint64_t{capacity} * 2 + kKeysPerBucket - 1) / kKeysPerBucket;
  bucket_count_ = static_cast<uint32_t>(std::max<uint64_t>(2, (buckets + 1) & ~uint64_t{1}));  // even: other_bucket
  seed_ = seed ? seed : rte_rand();
  const std::string label = "l4lb_" + name;
  buckets_ = dpdk_array<FlowBucket>(label.c_str(), bucket_count_, socket_id);
  entries_ = dpdk_array<FlowEntry>(label.c_str(), capacity, socket_id);
  free_list_ = dpdk_array<uint32_t>(label.c_str(), capacity, socket_id);
  if (!buckets_ || !entries_ || !free_list_) {
    rte_free(buckets_);
    rte_free(entries_);
    rte_free(free_list_);
    throw std::runtime_error("out of DPDK memory for " + std::to_string(capacity) + " flows (" + name + ")");
  }
  for (uint32_t b = 0; b < bucket_count_; ++b)
    for (uint32_t s = 0; s < FlowBucket::kSlots; ++s) buckets_[b].values[s] = FlowBucket::kEmpty;
  // Hand out low indices first so a lightly loaded table stays compact.
  for (uint32_t i = 0; i < capacity; ++i) free_list_[i] = capacity - 1 - i;
  free_count_ = capacity;
}

FlowTable::~FlowTable() {
  rte_free(buckets_);
  rte_free(entries_);
  rte_free(free_list_);
}

size_t FlowTable::memory_bytes() const {
  return sizeof(FlowBucket) * size_t{bucket_count_} + (sizeof(FlowEntry) + sizeof(uint32_t)) * size_t{capacity_};
}

uint64_t FlowTable::overflowed_keys() const {
  uint64_t n = 0;
  for (uint32_t b = 0; b < bucket_count_; ++b) n += buckets_[b].overflowed;
  return n;
}

std::array<uint64_t, FlowBucket::kSlots + 1> FlowTable::fill_histogram() const {
  std::array<uint64_t, FlowBucket::kSlots + 1> h{};
  for (uint32_t b = 0; b < bucket_count_; ++b) {
    uint32_t used = 0;
    for (uint32_t s = 0; s < FlowBucket::kSlots; ++s) used += buckets_[b].values[s] != FlowBucket::kEmpty;
    ++h[used];
  }
  return h;
}

uint32_t FlowTable::find_in(const FlowBucket& b, uint32_t tag, const FlowKey& key) const {
  for (uint32_t m = tag_matches(b, tag); m; m &= m - 1) {
    const uint32_t v = b.values[std::countr_zero(m)];
    if (matches(v, key)) return v;
  }
  return kMiss;
}

uint32_t FlowTable::find(const FlowKey& key, uint64_t h) const {
  const uint32_t first = first_bucket(h), tag = tag_of(h);
  const uint32_t v = find_in(buckets_[first], tag, key);
  if (v != kMiss || buckets_[first].overflowed == 0) return v;
  return find_in(buckets_[other_bucket(first, tag)], tag, key);
}

uint64_t FlowTable::lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* values) const {
  uint64_t hashes[kMaxBulk];
  uint32_t candidate[kMaxBulk];
  // Stage 1: hash every key and start loading its first bucket.
  for (uint32_t i = 0; i < n; ++i) {
    hashes[i] = hash(*keys[i]);
    rte_prefetch0(&buckets_[first_bucket(hashes[i])]);
  }
  // Stage 2: the first tag match of each bucket; start loading its entry.
  // A key absent from a bucket that overflowed may be in its second one:
  // start loading that bucket too.
  uint64_t second = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const FlowBucket& b = buckets_[first_bucket(hashes[i])];
    const uint32_t m = tag_matches(b, tag_of(hashes[i]));
    candidate[i] = kMiss;
    if (m) {
      candidate[i] = b.values[std::countr_zero(m)];
      rte_prefetch0(&entries_[entry_of(candidate[i])]);
    } else if (b.overflowed) {
      second |= 1ull << i;
      rte_prefetch0(&buckets_[other_bucket(first_bucket(hashes[i]), tag_of(hashes[i]))]);
    }
  }
  // Stage 2b: the same in the second buckets, for the few keys that need it.
  for (uint64_t rest = second; rest; rest &= rest - 1) {
    const uint32_t i = static_cast<uint32_t>(std::countr_zero(rest));
    const uint32_t tag = tag_of(hashes[i]);
    const FlowBucket& b = buckets_[other_bucket(first_bucket(hashes[i]), tag)];
    if (const uint32_t m = tag_matches(b, tag)) {
      candidate[i] = b.values[std::countr_zero(m)];
      rte_prefetch0(&entries_[entry_of(candidate[i])]);
    }
  }
  // Stage 3: confirm against the entry. A wrong candidate (another key with
  // the same 32 tag bits) or an overflowed bucket takes the full search.
  uint64_t hits = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t v = candidate[i];
    // Both buckets were searched (or the first sufficed) unless a candidate
    // turned out to be another key with the same tag: then search fully.
    if (v != kMiss && !matches(v, *keys[i])) v = find(*keys[i], hashes[i]);
    if (v != kMiss) {
      values[i] = v;
      hits |= 1ull << i;
    }
  }
  return hits;
}

int FlowTable::free_slot(const FlowBucket& b) {
  const uint32_t free = tag_matches(b, 0);  // free slots hold tag 0
  return free ? std::countr_zero(free) : -1;
}

void FlowTable::put(uint32_t bucket, int slot, uint32_t tag, uint32_t value, bool away) {
  FlowBucket& b = buckets_[bucket];
  b.tags[slot] = tag;
  b.values[slot] = value;
  b.away = away ? (b.away | (1u << slot)) : (b.away & ~(1u << slot));
}

bool FlowTable::place(uint64_t h, uint32_t value) {
  const uint32_t tag = tag_of(h);
  const uint32_t first = first_bucket(h);
  if (const int s = free_slot(buckets_[first]); s >= 0) {
    put(first, s, tag, value, false);
    return true;
  }
  const uint32_t second = other_bucket(first, tag);
  if (const int s = free_slot(buckets_[second]); s >= 0) {
    put(second, s, tag, value, true);
    ++buckets_[first].overflowed;
    return true;
  }
  // Both full: move one resident of either bucket to its other candidate,
  // then take its slot. One step is enough at our load; deeper cuckoo
  // chains would cost time on a path a flood can drive.
  for (const uint32_t bucket : {first, second}) {
    FlowBucket& b = buckets_[bucket];
    for (uint32_t s = 0; s < FlowBucket::kSlots; ++s) {
      const uint32_t other = other_bucket(bucket, b.tags[s]);
      const int to = free_slot(buckets_[other]);
      if (to < 0) continue;
      const bool was_away = b.away & (1u << s);
      // A resident away from its first bucket goes home; one at home leaves.
      if (was_away) {
        put(other, to, b.tags[s], b.values[s], false);
        --buckets_[other].overflowed;
      } else {
        put(other, to, b.tags[s], b.values[s], true);
        ++b.overflowed;
      }
      put(bucket, static_cast<int>(s), tag, value, bucket != first);
      if (bucket != first) ++buckets_[first].overflowed;
      return true;
    }
  }
  return false;
}

void FlowTable::unplace(uint64_t h, uint32_t value) {
  const uint32_t first = first_bucket(h);
  const uint32_t second = other_bucket(first, tag_of(h));
  for (const uint32_t bucket : {first, second}) {
    FlowBucket& b = buckets_[bucket];
    for (uint32_t s = 0; s < FlowBucket::kSlots; ++s) {
      if (b.values[s] != value) continue;
      b.tags[s] = 0;
      b.values[s] = FlowBucket::kEmpty;
      b.away &= ~(1u << s);
      if (bucket != first) --buckets_[first].overflowed;
      return;
    }
  }
}

bool FlowTable::insert(uint32_t index) {
  const FlowEntry& e = entries_[index];
  const uint64_t fwd = hash(forward_key(e));
  const uint64_t rev = hash(reverse_key(e));
  const uint32_t value = index << 1;
  if (!place(fwd, value)) {
    release_unused(index);
    return false;
  }
  if (!place(rev, value | 1)) {
    unplace(fwd, value);
    release_unused(index);
    return false;
  }
  return true;
}

void FlowTable::remove(uint32_t index) {
  const FlowEntry& e = entries_[index];
  unplace(hash(forward_key(e)), index << 1);
  unplace(hash(reverse_key(e)), (index << 1) | 1);
  release_unused(index);
}

}  // namespace l4lb::dataplane
