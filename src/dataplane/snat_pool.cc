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

SnatPool::SnatPool(const SnatPartition& partition, uint32_t worker_index)
    : first_(partition.first_port(worker_index)), last_(partition.last_port(worker_index)) {
  if (worker_index >= partition.workers() || first_ > last_)
    throw std::invalid_argument("bad SNAT pool parameters");
  for (auto& fifo : fifos_) fifo.reset(first_, last_);
}

}  // namespace l4lb::dataplane
