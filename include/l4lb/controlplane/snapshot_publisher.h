// Hands immutable snapshots to workers and frees them safely (DESIGN §2).
//
// Each worker has an SPSC ring (this publisher the only producer, the worker
// the only consumer). A worker switches to the newest snapshot it dequeues
// and then stores that generation in its ack. A snapshot is freed once every
// worker has acked a strictly newer generation: from then on no worker holds
// a pointer to it (its only reference is the current one, replaced before the
// ack). Management core only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "l4lb/dataplane/snapshot.h"

struct rte_ring;

namespace l4lb::controlplane {

class SnapshotPublisher {
 public:
  using AckReader = std::function<uint64_t(size_t worker)>;

  // `rings[i]` feeds worker i; `ack(i)` reads worker i's acked generation.
  SnapshotPublisher(std::vector<rte_ring*> rings, AckReader ack);
  ~SnapshotPublisher();

  // Keeps `first` as the snapshot workers start with (passed to them directly).
  const dataplane::Snapshot* adopt_initial(std::unique_ptr<dataplane::Snapshot> first);

  // Queues `next` to every worker. Never blocks: a worker whose ring is full
  // gets it on a later call to poll().
  void publish(std::unique_ptr<dataplane::Snapshot> next);

  // Retries pending hand-offs and frees snapshots every worker has passed.
  void poll();

  const dataplane::Snapshot* current() const { return live_.empty() ? nullptr : live_.back().get(); }
  size_t live_count() const { return live_.size(); }
  uint64_t freed_count() const { return freed_; }

 private:
  std::vector<rte_ring*> rings_;
  AckReader ack_;
  std::vector<const dataplane::Snapshot*> pending_;  // per worker, nullptr if none
  std::deque<std::unique_ptr<dataplane::Snapshot>> live_;  // oldest first
  uint64_t freed_ = 0;
};

}  // namespace l4lb::controlplane
