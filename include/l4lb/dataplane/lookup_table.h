// A small immutable open-addressing map from a 64-bit key to a 32-bit value,
// built on the management core and read by workers (snapshot VIP and address
// lookups). Linear probing over a power-of-two array at most half full, so a
// lookup touches one or two cache lines and never allocates.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace l4lb::dataplane {

class LookupTable {
 public:
  static constexpr uint64_t kEmptyKey = ~0ull;
  static constexpr uint32_t kNotFound = ~0u;

  // Slow path: sizes the table for `expected` keys.
  explicit LookupTable(size_t expected = 0) { reserve(expected); }

  void reserve(size_t expected) {
    size_t capacity = 8;
    while (capacity < expected * 2) capacity <<= 1;
    slots_.assign(capacity, Slot{kEmptyKey, 0});
    mask_ = capacity - 1;
    shift_ = shift_for(capacity);
    size_ = 0;
  }

  // Slow path. Returns false if the key was already present (value unchanged).
  bool insert(uint64_t key, uint32_t value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    for (size_t i = index_of(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
      if (slots_[i].key == kEmptyKey) {
        slots_[i] = Slot{key, value};
        ++size_;
        return true;
      }
    }
  }

  // Fast path.
  uint32_t find(uint64_t key) const {
    for (size_t i = index_of(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return slots_[i].value;
      if (slots_[i].key == kEmptyKey) return kNotFound;
    }
  }

  size_t size() const { return size_; }

  // Slow path (tests, diagnostics): the most slots any present key's lookup
  // examines, 1 when no key collides.
  size_t longest_probe() const {
    size_t longest = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].key == kEmptyKey) continue;
      const size_t home = index_of(slots_[i].key);
      longest = std::max(longest, ((i - home) & mask_) + 1);
    }
    return longest;
  }

 private:
  struct Slot {
    uint64_t key;
    uint32_t value;
  };

  size_t index_of(uint64_t key) const {
    // Fibonacci hashing: multiply by 2^64/phi and keep the top log2(size)
    // bits, the only ones every key bit reaches. (A fixed middle slice
    // ignored the key's top byte: the last octet of a wire-order address,
    // so every backend of a /24 landed on one probe chain.)
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  static unsigned shift_for(size_t capacity) { return 64 - static_cast<unsigned>(std::countr_zero(capacity)); }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{kEmptyKey, 0});
    mask_ = slots_.size() - 1;
    shift_ = shift_for(slots_.size());
    size_ = 0;
    for (const Slot& s : old)
      if (s.key != kEmptyKey) insert(s.key, s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t size_ = 0;
};

// Keys used in snapshots; all fields in wire order as read from the packet.
inline uint64_t service_key(uint32_t ip, uint16_t port, uint8_t proto) {
  return (uint64_t{ip} << 32) | (uint64_t{port} << 8) | proto;
}
inline uint64_t address_key(uint32_t ip) { return ip; }

}  // namespace l4lb::dataplane
