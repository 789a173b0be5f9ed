// A worker's FNAT source ports: for each SNAT address slot, a FIFO of free
// ports from this worker's own slice of the configured range. FIFO rather
// than a stack so a released port is reused as late as possible: the backend
// may still hold the old connection in TIME_WAIT.
#pragma once

#include <cstdint>
#include <memory>

#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/snapshot.h"

namespace l4lb::dataplane {

class SnatPortFifo {
 public:
  SnatPortFifo() = default;
  // Slow path: fills with [first, last] (host order).
  void reset(uint16_t first, uint16_t last);

  // Fast path. Returns false when every port is in use.
  bool take(uint16_t& port_host_order) {
    if (count_ == 0) return false;
    port_host_order = ports_[head_];
    if (++head_ == capacity_) head_ = 0;  // no division on the fast path
    --count_;
    return true;
  }
  void give_back(uint16_t port_host_order) {
    ports_[wrap(head_ + count_)] = port_host_order;
    ++count_;
  }
  // Fast path: the port the n-th take() from now would return, if any. A
  // hint for prefetching; takes nothing.
  bool peek(uint32_t n, uint16_t& port_host_order) const {
    if (n >= count_) return false;
    port_host_order = ports_[wrap(head_ + n)];
    return true;
  }
  uint32_t free_count() const { return count_; }
  uint32_t capacity() const { return capacity_; }
  // Slow path (audits): calls f(port) for every free port.
  template <typename F>
  void for_each_free(F&& f) const {
    for (uint32_t i = 0; i < count_; ++i) f(ports_[(head_ + i) % capacity_]);
  }

 private:
  uint32_t wrap(uint32_t i) const { return i >= capacity_ ? i - capacity_ : i; }  // i < 2 * capacity_

  std::unique_ptr<uint16_t[]> ports_;
  uint32_t capacity_ = 0;
  uint32_t head_ = 0;
  uint32_t count_ = 0;
};

// A worker's slice of the SNAT port range (see flow_owner.h) for every SNAT
// address slot.
class SnatPool {
 public:
  SnatPool(const SnatPartition& partition, uint32_t worker_index);

  bool take(uint8_t slot, uint16_t& port) { return fifos_[slot].take(port); }
  bool peek(uint8_t slot, uint32_t n, uint16_t& port) const { return fifos_[slot].peek(n, port); }
  void give_back(uint8_t slot, uint16_t port) { fifos_[slot].give_back(port); }
  uint32_t free_count(uint8_t slot) const { return fifos_[slot].free_count(); }
  const SnatPortFifo& fifo(uint8_t slot) const { return fifos_[slot]; }
  uint32_t size() const { return uint32_t{last_} - first_ + 1; }
  uint16_t first_port() const { return first_; }
  uint16_t last_port() const { return last_; }

 private:
  SnatPortFifo fifos_[kMaxSnatAddresses];
  uint16_t first_ = 0;
  uint16_t last_ = 0;
};

}  // namespace l4lb::dataplane
