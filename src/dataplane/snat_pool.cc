#include "l4lb/dataplane/snat_pool.h"

#include <stdexcept>

namespace l4lb::dataplane {

void SnatPortFifo::reset(uint16_t first, uint16_t last) {
  capacity_ = uint32_t{last} - first + 1;
  ports_ = std::make_unique<uint16_t[]>(capacity_);
  for (uint32_t i = 0; i < capacity_; ++i) ports_[i] = static_cast<uint16_t>(first + i);
  head_ = 0;
  count_ = capacity_;
}

SnatPool::SnatPool(uint16_t port_min, uint16_t port_max, uint32_t worker_index, uint32_t workers) {
  if (workers == 0 || worker_index >= workers || port_min > port_max)
    throw std::invalid_argument("bad SNAT pool parameters");
  const uint32_t total = uint32_t{port_max} - port_min + 1;
  const uint32_t share = total / workers;
  if (share == 0) throw std::invalid_argument("SNAT port range smaller than the number of workers");
  first_ = static_cast<uint16_t>(port_min + worker_index * share);
  // The last worker also takes the remainder.
  last_ = worker_index + 1 == workers ? port_max : static_cast<uint16_t>(first_ + share - 1);
  for (auto& fifo : fifos_) fifo.reset(first_, last_);
}

}  // namespace l4lb::dataplane
