#include "l4lb/controlplane/snapshot_publisher.h"

#include <rte_ring.h>

#include <algorithm>
#include <limits>

namespace l4lb::controlplane {

SnapshotPublisher::SnapshotPublisher(std::vector<rte_ring*> rings, AckReader ack)
    : rings_(std::move(rings)), ack_(std::move(ack)), pending_(rings_.size(), nullptr) {}

SnapshotPublisher::~SnapshotPublisher() = default;

const dataplane::Snapshot* SnapshotPublisher::adopt_initial(std::unique_ptr<dataplane::Snapshot> first) {
  live_.push_back(std::move(first));
  return live_.back().get();
}

void SnapshotPublisher::publish(std::unique_ptr<dataplane::Snapshot> next) {
  live_.push_back(std::move(next));
  const dataplane::Snapshot* s = live_.back().get();
  for (size_t i = 0; i < rings_.size(); ++i) pending_[i] = s;  // a newer one replaces an unsent older
  poll();
}

void SnapshotPublisher::poll() {
  for (size_t i = 0; i < rings_.size(); ++i) {
    if (!pending_[i]) continue;
    if (rte_ring_sp_enqueue(rings_[i], const_cast<dataplane::Snapshot*>(pending_[i])) == 0) pending_[i] = nullptr;
  }
  uint64_t oldest_acked = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < rings_.size(); ++i) oldest_acked = std::min(oldest_acked, ack_(i));
  // Keep the newest always; free every older one all workers have moved past.
  while (live_.size() > 1 && live_.front()->generation < oldest_acked) {
    live_.pop_front();
    ++freed_;
  }
}

}  // namespace l4lb::controlplane
