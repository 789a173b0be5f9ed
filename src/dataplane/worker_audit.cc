// The worker's consistency audit: every count, list and port the worker
// keeps, recomputed from the flow table. Slow (a walk of the whole table);
// run on a stopped worker (at shutdown, and by the tests and the fuzzer).
#include <rte_byteorder.h>

#include <string>
#include <vector>

#include "l4lb/dataplane/worker.h"

namespace l4lb::dataplane {

std::vector<std::string> Worker::audit() const {
  std::vector<std::string> problems;
  const auto say = [&](std::string s) { problems.push_back(std::move(s)); };
  const uint32_t first = snat_.first_port();
  const uint32_t slice = snat_.slice();
  std::vector<std::vector<uint8_t>> holders(snat_.max_pools());  // per pool, per port: flows + free
  std::vector<uint32_t> pool_unconfirmed(snat_.max_pools());
  std::vector<uint64_t> by_state(static_cast<size_t>(FlowState::kCount));
  std::vector<uint64_t> held_by_slot(kMaxSnatAddresses);
  std::vector<uint32_t> by_vip(kMaxVips);
  uint64_t unconfirmed = 0, active = 0;
  for (uint32_t i = 0; i < flows_.capacity(); ++i) {
    const FlowEntry& e = flows_.entry(i);
    if (e.state == FlowState::kFree) continue;
    ++active;
    ++by_state[static_cast<size_t>(e.state)];
    if (!e.confirmed()) {
      ++unconfirmed;
      ++by_vip[e.vip_id];
    }
    if (e.snat_pool == SnatPools::kNoPool) continue;
    if (e.snat_pool >= snat_.max_pools() || snat_.pool(e.snat_pool).key == 0) {
      say("flow " + std::to_string(i) + " holds a port of pool " + std::to_string(e.snat_pool) + ", not in use");
      continue;
    }
    if (snat_.pool(e.snat_pool).slot != e.snat_slot)
      say("flow " + std::to_string(i) + ": SNAT slot " + std::to_string(e.snat_slot) + " but its pool's is " +
          std::to_string(snat_.pool(e.snat_pool).slot));
    const uint32_t port = rte_be_to_cpu_16(e.snat_port);
    if (port < first || port - first >= slice) {
      say("flow " + std::to_string(i) + " holds SNAT port " + std::to_string(port) + " outside this worker's slice");
      continue;
    }
    auto& h = holders[e.snat_pool];
    if (h.empty()) h.assign(slice, 0);
    ++h[port - first];
    ++held_by_slot[e.snat_slot];
    pool_unconfirmed[e.snat_pool] += !e.confirmed();
  }
  for (uint32_t slot = 0; slot < kMaxSnatAddresses; ++slot)
    if (held_by_slot[slot] != counters_.snat_in_use[slot].get())
      say("slot " + std::to_string(slot) + ": " + std::to_string(held_by_slot[slot]) + " ports held by flows, " +
          std::to_string(counters_.snat_in_use[slot].get()) + " counted in use");
  uint32_t pools_used = 0;
  for (uint32_t pool = 0; pool < snat_.max_pools(); ++pool) {
    const SnatPortPool& sp = snat_.pool(static_cast<uint16_t>(pool));
    if (sp.key == 0) continue;
    ++pools_used;
    auto& h = holders[pool];
    if (h.empty()) h.assign(slice, 0);
    uint32_t held = 0;
    for (uint8_t n : h) held += n;
    if (held != sp.in_use)
      say("pool " + std::to_string(pool) + ": " + std::to_string(held) + " ports held by flows, pool says " +
          std::to_string(sp.in_use));
    snat_.for_each_free(static_cast<uint16_t>(pool), [&](uint16_t port) { ++h[port - first]; });
    for (uint32_t p = 0; p < slice; ++p)
      if (h[p] != 1)
        say("pool " + std::to_string(pool) + " port " + std::to_string(first + p) + ": " + std::to_string(h[p]) +
            " owners (flows + free), want exactly 1");
    uint32_t listed = 0;
    for (uint32_t i = pool_unconfirmed_[pool].oldest; i != FlowTable::kMiss && listed <= active;
         i = flows_.entry(i).pool_next) {
      ++listed;
      if (flows_.entry(i).snat_pool != pool || flows_.entry(i).confirmed())
        say("flow " + std::to_string(i) + " is on pool " + std::to_string(pool) + "'s unconfirmed list wrongly");
    }
    if (listed != pool_unconfirmed[pool])
      say("pool " + std::to_string(pool) + ": " + std::to_string(listed) + " flows listed unconfirmed, " +
          std::to_string(pool_unconfirmed[pool]) + " are");
  }
  if (pools_used != snat_.pools_in_use()) say("pools in use disagree");
  uint64_t listed = 0;
  uint32_t previous = FlowTable::kMiss;
  for (uint32_t i = unconfirmed_.oldest; i != FlowTable::kMiss && listed <= active;
       i = flows_.entry(i).unconfirmed_next) {
    ++listed;
    if (flows_.entry(i).state == FlowState::kFree || flows_.entry(i).confirmed())
      say("flow " + std::to_string(i) + " is on the unconfirmed list but not an unconfirmed flow");
    if (flows_.entry(i).unconfirmed_prev != previous) say("unconfirmed list links broken at " + std::to_string(i));
    previous = i;
  }
  if (previous != unconfirmed_.newest) say("unconfirmed list's newest is not its last");
  if (listed != unconfirmed)
    say(std::to_string(listed) + " flows on the unconfirmed list, " + std::to_string(unconfirmed) + " unconfirmed");
  if (unconfirmed != counters_.flows_embryonic.get()) say("flows_embryonic (unconfirmed) counter disagrees");
  for (uint32_t v = 0; v < kMaxVips; ++v)
    if (by_vip[v] != unconfirmed_by_vip_[v])
      say("vip " + std::to_string(v) + ": " + std::to_string(by_vip[v]) + " unconfirmed flows, counted " +
          std::to_string(unconfirmed_by_vip_[v]));
  for (size_t st = 1; st < by_state.size(); ++st)
    if (by_state[st] != counters_.flows_by_state[st].get())
      say(std::string("state ") + kFlowStateNames[st] + ": " + std::to_string(by_state[st]) + " flows, gauge says " +
          std::to_string(counters_.flows_by_state[st].get()));
  if (active != flows_.active() || active != counters_.flows_active.get())
    say("active flows: " + std::to_string(active) + " in use, table says " + std::to_string(flows_.active()) +
        ", counter " + std::to_string(counters_.flows_active.get()));
  return problems;
}

}  // namespace l4lb::dataplane
