// A small immutable open-addressing map from a 64-bit key to a 32-bit value,
// built on the management core and read by workers (snapshot VIP and address
// lookups). Linear probing over a power-of-two array at most half full, so a
// lookup touches one or two cache lines and never allocates.
#pragma once

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

 private:
  struct Slot {
    uint64_t key;
    uint32_t value;
  };

  size_t index_of(uint64_t key) const {
    // Fibonacci hashing: multiply by 2^64/phi and keep the high bits.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 40) & mask_;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{kEmptyKey, 0});
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (const Slot& s : old)
      if (s.key != kEmptyKey) insert(s.key, s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// Keys used in snapshots; all fields in wire order as read from the packet.
inline uint64_t service_key(uint32_t ip, uint16_t port, uint8_t proto) {
  return (uint64_t{ip} << 32) | (uint64_t{port} << 8) | proto;
}
inline uint64_t address_key(uint32_t ip) { return ip; }

}  // namespace l4lb::dataplane
