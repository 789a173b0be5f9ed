// A flow's first packet: the Maglev pick, an SNAT port from the pool of
// (SNAT address, backend) or, when short, the port of that pool's oldest
// unconfirmed flow, then both keys into the table (DESIGN §3). Also the
// prediction that warms a burst's reverse buckets before the inserts.
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/worker.h"

namespace l4lb::dataplane {

namespace {

// A new flow's choices both come from one hash of its tuple (DESIGN §5): the
// Maglev slot, and the first SNAT address FNAT tries. handle_new_flow decides
// with these and prefetch_reverse_buckets predicts with them, so the two
// cannot drift apart.
inline uint16_t maglev_choice(const std::vector<uint16_t>& table, uint64_t hash) {
  return table[hash % table.size()];
}
inline size_t first_snat_choice(uint64_t hash, size_t snat_count) { return (hash >> 32) % snat_count; }

}  // namespace

void Worker::prefetch_reverse_buckets(uint64_t misses, const FlowKey* keys, const uint32_t* vip_of) {
  // A new flow's insert writes two buckets: its forward key's, warm from the
  // lookup, and its reverse key's, cold. Predict each reverse key now (the
  // Maglev pick, and for FNAT the port its pool will hand out next) and
  // start the loads, so the burst's inserts overlap them. Only a hint: a
  // wrong guess costs a wasted load, never a wrong flow.
  const Snapshot& snap = *snapshot_;
  // Ports already predicted per pool in this burst, direct-mapped by pool.
  constexpr uint32_t kSlots = 16;
  uint16_t pool_seen[kSlots];
  uint16_t taken[kSlots];
  bool counting = false;
  for (; misses; misses &= misses - 1) {
    const uint32_t k = static_cast<uint32_t>(std::countr_zero(misses));
    if (vip_of[k] == LookupTable::kNotFound) continue;
    const SnapshotVip& vip = snap.vips[vip_of[k]];
    const std::vector<uint16_t>& table = *vip.maglev;
    if (table.empty()) continue;
    const FlowKey& key = keys[k];
    const uint64_t hash = maglev_flow_hash(key.src_ip, key.src_port, key.dst_ip, key.dst_port, key.proto);
    const uint16_t b = maglev_choice(table, hash);
    if (b == kNoBackendSlot) continue;
    const SnapshotBackend& backend = vip.backends[b];
    if (vip.mode == NatMode::kDnat) {
      flows_.prefetch(make_flow_key(backend.ip, key.src_ip, backend.port, key.src_port, key.proto));
      continue;
    }
    if (vip.snat_slots.empty()) continue;
    const uint8_t slot = vip.snat_slots[first_snat_choice(hash, vip.snat_slots.size())];
    const uint16_t pool = snat_.find(slot, backend.ip, backend.port);
    if (pool == SnatPools::kNoPool) continue;
    if (!counting) {
      std::fill(std::begin(pool_seen), std::end(pool_seen), SnatPools::kNoPool);
      counting = true;
    }
    const uint32_t at = pool % kSlots;
    if (pool_seen[at] != pool) {
      pool_seen[at] = pool;
      taken[at] = 0;
    }
    uint16_t port;
    if (snat_.peek(pool, taken[at]++, port))
      flows_.prefetch(make_flow_key(backend.ip, snap.snat_addresses[slot], backend.port, rte_cpu_to_be_16(port),
                                    key.proto));
  }
}

bool Worker::take_snat_port(const SnapshotVip& vip, const SnapshotBackend& backend, uint64_t hash, uint8_t& slot,
                            uint16_t& pool, uint16_t& port, DropReason& why) {
  const uint32_t hold = snapshot_->snat_hold_ticks;
  const size_t count = vip.snat_slots.size();
  const size_t first = first_snat_choice(hash, count);
  uint16_t short_pool = SnatPools::kNoPool;
  uint8_t short_slot = 0;
  why = DropReason::kSnatExhausted;
  for (size_t k = 0; k < count; ++k) {
    slot = vip.snat_slots[(first + k) % count];
    pool = snat_.pool_for(slot, backend.ip, backend.port, now_, hold);
    if (pool == SnatPools::kNoPool) {
      why = DropReason::kSnatPoolsFull;
      continue;
    }
    if (snat_.take(pool, now_, port)) return true;
    if (short_pool == SnatPools::kNoPool) {
      short_pool = pool;
      short_slot = slot;
    }
  }
  // No address has a port ready towards this backend: the oldest
  // unconfirmed flow holding one of the first short pool's ports gives it up
  // (no hold: the backend keeps nothing for a connection that never
  // completed).
  if (short_pool == SnatPools::kNoPool || !setup_.evict_unconfirmed) return false;
  const uint32_t victim = pool_unconfirmed_[short_pool].oldest;
  if (victim == FlowTable::kMiss) return false;
  evict(victim);
  counters_.flows_evicted_for_port.add();
  slot = short_slot;
  pool = short_pool;
  return snat_.take(pool, now_, port);
}

// The appliance drains (DESIGN §12): what would open a flow here goes, as
// it is, to another appliance, which sees it as if the router had sent it
// there; flows this appliance already holds stay.
void Worker::redirect_to_appliance(rte_mbuf* m, const ParsedPacket& p) {
  const Snapshot& snap = *snapshot_;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  // The same appliance for every packet of a connection.
  const uint64_t hash = maglev_flow_hash(p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.proto);
  const MacAddress& to = snap.redirect_macs[hash % snap.redirect_macs.size()];
  std::memcpy(eth->dst_addr.addr_bytes, to.bytes, sizeof to.bytes);
  std::memcpy(eth->src_addr.addr_bytes, snap.port_mac.bytes, sizeof snap.port_mac.bytes);
  counters_.redirected_packets.add();
  to_tx(m);
}

// A reply with no flow here (DESIGN §3, rule 6). With several appliances
// behind ECMP, a DNAT backend's reply may come back through one that did not
// see the connection open; for a VIP with dnat_reverse: stateless it is
// translated from the config alone (the backend serves one VIP) and sent to
// the gateway, the way the client's packets came in.
void Worker::reverse_without_flow(rte_mbuf* m, const ParsedPacket& p) {
  const Snapshot& snap = *snapshot_;
  const uint32_t vip_index = snap.stateless_reverse_vip.find(service_key(p.src_ip, p.src_port, p.proto));
  if (vip_index == LookupTable::kNotFound) return drop(m, DropReason::kReverseNoFlow);
  if (!snap.has_gateway_mac) return drop(m, DropReason::kNeighbourUnresolved);
  const SnapshotVip& vip = snap.vips[vip_index];
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  rewrite_ipv4_tuple(frame, p, Ipv4Tuple{vip.ip, p.dst_ip, vip.port, p.dst_port});
  set_ethernet_addresses(frame, snap.gateway_mac, snap.port_mac);
  counters_.stateless_reverse_packets.add();
  counters_.reverse_packets.add();
  VipCounters& vc = counters_.vips[vip.id];
  vc.reverse_packets.add();
  vc.reverse_bytes.add(rte_pktmbuf_pkt_len(m));
  to_tx(m);
}

void Worker::handle_new_flow(rte_mbuf* m, const ParsedPacket& p, uint32_t vip_index) {
  const Snapshot& snap = *snapshot_;
  // Passed here by another appliance's drain: taken, never sent back (two
  // draining appliances would bounce it), and answered through the gateway.
  const MacAddress& from = *rte_pktmbuf_mtod_offset(m, const MacAddress*, 6);
  const bool from_appliance = !snap.appliance_macs.empty() &&
                              std::find(snap.appliance_macs.begin(), snap.appliance_macs.end(), from) !=
                                  snap.appliance_macs.end();
  if (!snap.redirect_macs.empty() && !from_appliance) return redirect_to_appliance(m, p);
  const SnapshotVip& vip = snap.vips[vip_index];
  FlowState state = FlowState::kUdpUnreplied;
  if (p.proto == kProtoTcp) {
    if ((p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn) {
      state = FlowState::kSynSent;
    } else {
      // A mid-connection packet we hold no state for (restart, ECMP change).
      // Forwarded to the Maglev choice in case the backend still has the
      // connection, as an unconfirmed flow; an RST never opens a flow.
      if (vip.drop_tcp_miss || (p.tcp_flags & kTcpRst)) return drop(m, DropReason::kTcpMissPolicy);
      state = FlowState::kMidstream;
    }
  }
  if (vip.max_embryonic && unconfirmed_by_vip_[vip.id] >= vip.max_embryonic) return drop(m, DropReason::kSynLimit);

  const std::vector<uint16_t>& table = *vip.maglev;
  if (table.empty()) return drop(m, DropReason::kNoBackend);
  const uint64_t hash = maglev_flow_hash(p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.proto);
  const uint16_t b = maglev_choice(table, hash);
  if (b == kNoBackendSlot) return drop(m, DropReason::kNoBackend);
  const SnapshotBackend& backend = vip.backends[b];
  if (!backend.has_mac) return drop(m, DropReason::kNeighbourUnresolved);

  // The port first: taking it may evict an unconfirmed flow, which also
  // frees a table slot.
  uint8_t slot = kMaxSnatAddresses;
  uint16_t pool = SnatPools::kNoPool;
  uint16_t port = 0;
  if (vip.mode == NatMode::kFnat) {
    DropReason why;
    if (!take_snat_port(vip, backend, hash, slot, pool, port, why)) return drop(m, why);
  }
  uint32_t index = flows_.allocate();
  if (index == FlowTable::kMiss && setup_.evict_unconfirmed && unconfirmed_.oldest != FlowTable::kMiss) {
    evict(unconfirmed_.oldest);
    index = flows_.allocate();
  }
  const auto give_port_back = [&] {
    if (pool != SnatPools::kNoPool) snat_.give_back(pool, port, now_, now_);
  };
  if (index == FlowTable::kMiss) {
    give_port_back();
    return drop(m, DropReason::kFlowTableFull);
  }
  FlowEntry& e = flows_.entry(index);
  e.client_ip = p.src_ip;
  e.vip_ip = p.dst_ip;
  e.backend_ip = backend.ip;
  e.client_port = p.src_port;
  e.vip_port = p.dst_port;
  e.backend_port = backend.port;
  if (pool != SnatPools::kNoPool) {
    e.snat_ip = snap.snat_addresses[slot];
    e.snat_port = rte_cpu_to_be_16(port);
  } else {
    e.snat_ip = p.src_ip;
    e.snat_port = p.src_port;
  }
  e.last_seen = now_;
  e.client_mac = from_appliance && snap.has_gateway_mac ? snap.gateway_mac : from;
  e.proto = p.proto;
  e.state = FlowState::kFree;  // set_state below, once the flow is in the table
  e.flags = static_cast<uint8_t>((vip.mode == NatMode::kDnat ? kFlowDnat : 0) |
                                 (vip.reset_on_down ? kFlowResetOnDown : 0));
  e.snat_slot = slot;
  e.snat_pool = pool;
  e.vip_id = vip.id;
  e.backend_id = backend.id;
  e.ack_hi[0] = e.ack_hi[1] = 0;
  if (!flows_.insert(index)) {
    give_port_back();
    return drop(m, DropReason::kFlowTableFull);
  }
  if (pool != SnatPools::kNoPool) counters_.snat_in_use[slot].add();
  set_state(index, state);
  join_unconfirmed(index);
  ++created_in_burst_;
  counters_.flows_created.add();
  counters_.flows_active.add();
  counters_.vips[e.vip_id].new_flows.add();
  counters_.backends[e.backend_id].new_flows.add();
  counters_.backends[e.backend_id].active_flows.add();
  forward_created(m, p, index, vip_index);
}

}  // namespace l4lb::dataplane
