// How flows end: the incremental aging sweep, the per-state gauges, the
// oldest-first lists of unconfirmed flows, eviction and expiry (which hands
// the SNAT port back, held while the backend may keep the tuple).
#include <rte_byteorder.h>

#include <algorithm>

#include "l4lb/dataplane/worker.h"

namespace l4lb::dataplane {

namespace {

// Whether the backend may still hold the tuple of a flow that ends now: it
// sits in TIME_WAIT when it sent the first FIN, and may still have the
// connection when an established flow just went idle. Not after a RST, a
// close the client started, or a handshake that never completed.
inline bool backend_may_hold_tuple(const FlowEntry& e) {
  if (e.proto != kProtoTcp || !e.confirmed() || e.state == FlowState::kClose) return false;  // UDP: no TIME_WAIT
  return (e.flags & kFlowBackendClosedFirst) || !(e.flags & kFlowFinClient);
}

}  // namespace

uint32_t Worker::aging_due(uint64_t now) {
  if (now <= aging_last_tsc_ || aging_last_tsc_ == 0) {  // first call, or a clock a test set back
    aging_last_tsc_ = now;
    return 0;
  }
  const uint64_t elapsed = now - aging_last_tsc_;
  if (elapsed < aging_step_tsc_) return 0;  // the common case: no division per poll
  const uint64_t capacity = flows_.capacity();
  const uint64_t due = std::min(elapsed, aging_sweep_tsc_) * capacity / aging_sweep_tsc_;
  aging_last_tsc_ = now;
  return static_cast<uint32_t>(due);
}

void Worker::age_flows(uint64_t now_tsc, uint32_t budget) {
  const auto& timeout = snapshot_->timeout_ticks;
  const uint32_t capacity = flows_.capacity();
  now_ = flow_clock(now_tsc);
  for (uint32_t i = 0; i < budget; ++i) {
    const FlowEntry& e = flows_.entry(aging_cursor_);
    if (e.state != FlowState::kFree &&
        flow_clock_elapsed(now_, e.last_seen, timeout[static_cast<size_t>(e.state)]))
      expire(aging_cursor_, is_closing(e.state));
    if (++aging_cursor_ == capacity) aging_cursor_ = 0;
  }
}

void Worker::set_state(uint32_t index, FlowState next) {
  FlowEntry& e = flows_.entry(index);
  if (e.state != FlowState::kFree) counters_.flows_by_state[static_cast<size_t>(e.state)].sub();
  if (next != FlowState::kFree) counters_.flows_by_state[static_cast<size_t>(next)].add();
  e.state = next;
}

namespace {

// Appends `index` as the newest of `list`, linked through the entry's
// (prev, next) pair chosen by the member pointers.
template <uint32_t FlowEntry::*Prev, uint32_t FlowEntry::*Next, typename List>
void list_append(FlowTable& flows, List& list, uint32_t index) {
  FlowEntry& e = flows.entry(index);
  e.*Prev = list.newest;
  e.*Next = FlowTable::kMiss;
  if (list.newest != FlowTable::kMiss)
    flows.entry(list.newest).*Next = index;
  else
    list.oldest = index;
  list.newest = index;
}

template <uint32_t FlowEntry::*Prev, uint32_t FlowEntry::*Next, typename List>
void list_unlink(FlowTable& flows, List& list, uint32_t index) {
  const FlowEntry& e = flows.entry(index);
  if (e.*Prev != FlowTable::kMiss)
    flows.entry(e.*Prev).*Next = e.*Next;
  else
    list.oldest = e.*Next;
  if (e.*Next != FlowTable::kMiss)
    flows.entry(e.*Next).*Prev = e.*Prev;
  else
    list.newest = e.*Prev;
}

}  // namespace

void Worker::join_unconfirmed(uint32_t index) {
  const FlowEntry& e = flows_.entry(index);
  list_append<&FlowEntry::unconfirmed_prev, &FlowEntry::unconfirmed_next>(flows_, unconfirmed_, index);
  if (e.snat_pool != SnatPools::kNoPool)
    list_append<&FlowEntry::pool_prev, &FlowEntry::pool_next>(flows_, pool_unconfirmed_[e.snat_pool], index);
  ++unconfirmed_by_vip_[e.vip_id];
  counters_.flows_embryonic.add();
}

void Worker::leave_unconfirmed(uint32_t index) {
  const FlowEntry& e = flows_.entry(index);
  list_unlink<&FlowEntry::unconfirmed_prev, &FlowEntry::unconfirmed_next>(flows_, unconfirmed_, index);
  if (e.snat_pool != SnatPools::kNoPool)
    list_unlink<&FlowEntry::pool_prev, &FlowEntry::pool_next>(flows_, pool_unconfirmed_[e.snat_pool], index);
  --unconfirmed_by_vip_[e.vip_id];
  counters_.flows_embryonic.sub();
}

void Worker::evict(uint32_t index) {
  expire(index, false);
  counters_.flows_evicted.add();
  counters_.flows_expired.sub();  // counted as evicted, not as expired
}

void Worker::expire(uint32_t index, bool closed) {
  const FlowEntry& e = flows_.entry(index);
  if (!e.confirmed()) leave_unconfirmed(index);
  if (e.snat_pool != SnatPools::kNoPool) {
    const uint32_t ready_at = backend_may_hold_tuple(e) ? now_ + snapshot_->snat_hold_ticks : now_;
    snat_.give_back(e.snat_pool, rte_be_to_cpu_16(e.snat_port), now_, ready_at);
    counters_.snat_in_use[e.snat_slot].sub();
  }
  set_state(index, FlowState::kFree);
  counters_.backends[e.backend_id].active_flows.sub();
  flows_.remove(index);
  ++removed_in_burst_;
  counters_.flows_active.sub();
  (closed ? counters_.flows_closed : counters_.flows_expired).add();
}

}  // namespace l4lb::dataplane
