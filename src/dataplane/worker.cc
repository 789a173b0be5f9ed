#include "l4lb/dataplane/worker.h"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <algorithm>
#include <bit>

#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/tcp_reset.h"

namespace l4lb::dataplane {

namespace {

// How far ahead the parse loop prefetches packet data (l3fwd uses 3-8).
constexpr uint16_t kPrefetchAhead = 4;

// TCP state transitions seen from the middle of the path (DESIGN §3). We are
// not an endpoint, so this is deliberately coarse: enough to pick a timeout.
// A source address no host on the wire can legitimately use: 0.0.0.0/8,
// 127.0.0.0/8, multicast and reserved 224.0.0.0/3 (incl. 255.255.255.255).
// Wire order: the first octet is the lowest byte on little-endian hosts.
inline bool is_valid_source(uint32_t ip_wire) {
  const uint8_t first = reinterpret_cast<const uint8_t*>(&ip_wire)[0];
  return first != 0 && first != 127 && first < 224;
}

inline FlowState next_tcp_state(FlowState state, uint8_t flags, bool reverse) {
  if (flags & (kTcpRst | kTcpFin)) return FlowState::kClosing;
  if (reverse) {
    if (state == FlowState::kSynSent && (flags & kTcpSyn) && (flags & kTcpAck)) return FlowState::kSynRecv;
  } else if ((flags & (kTcpSyn | kTcpAck)) == kTcpAck && state == FlowState::kSynRecv) {
    return FlowState::kEstablished;  // the client's ACK completes the handshake
  } else if ((flags & (kTcpSyn | kTcpAck)) == kTcpSyn && state == FlowState::kClosing) {
    return FlowState::kSynSent;  // the client reuses a closing tuple
  }
  return state;
}

// A new flow's choices both come from one hash of its tuple (DESIGN §5): the
// Maglev slot, and the first SNAT address FNAT tries. handle_new_flow decides
// with these and prefetch_reverse_buckets predicts with them, so the two
// cannot drift apart.
inline uint16_t maglev_choice(const std::vector<uint16_t>& table, uint64_t hash) {
  return table[hash % table.size()];
}
inline size_t first_snat_choice(uint64_t hash, size_t snat_count) { return (hash >> 32) % snat_count; }

}  // namespace

Worker::Worker(const WorkerSetup& setup, const Snapshot* initial)
    : setup_(setup),
      partition_(setup.snat_port_min, setup.snat_port_max, setup.worker_count),
      snapshot_(initial),
      flows_("l4lb_flows_" + std::to_string(setup.index), setup.flow_capacity, setup.socket_id),
      snat_(partition_, setup.index) {
  if (setup.worker_count == 0 || setup.worker_count > kMaxWorkers || setup.index >= setup.worker_count)
    throw std::invalid_argument("worker " + std::to_string(setup.index) + " of " + std::to_string(setup.worker_count));
  embryonic_by_vip_ = std::make_unique<uint32_t[]>(kMaxVips);
  aging_sweep_tsc_ = std::max<uint64_t>(1, static_cast<uint64_t>(kAgingSweepSeconds * static_cast<double>(rte_get_tsc_hz())));
  aging_step_tsc_ = aging_sweep_tsc_ * std::min<uint64_t>(kAgingStep, setup.flow_capacity) / std::max<uint64_t>(1, setup.flow_capacity);
  acked_generation_.store(initial->generation, std::memory_order_release);
  counters_.snapshot_generation.add(initial->generation);
}

void Worker::run(const std::atomic<bool>& stop) {
  // Idle back-off only when configured (shared CPUs): after this many empty
  // polls in a row, about 1 ms of busy polling, sleep between polls.
  constexpr uint32_t kIdlePollsBeforeSleep = 4096;
  uint32_t idle_polls = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    if (poll_once(rte_rdtsc())) {
      idle_polls = 0;
    } else if (setup_.idle_sleep_us && ++idle_polls >= kIdlePollsBeforeSleep) {
      rte_delay_us_sleep(setup_.idle_sleep_us);
    }
  }
}

unsigned Worker::poll_once(uint64_t now_tsc) {
  pick_up_snapshot();
  unsigned moved = transmit_injected();
  rte_mbuf* pkts[kBurstSize];
  const uint16_t n = rte_eth_rx_burst(setup_.port_id, setup_.rx_queue, pkts, kBurstSize);
  if (n) {
    counters_.rx_packets.add(n);
    process_burst(pkts, n, now_tsc);
  }
  moved += n + receive_handoffs(now_tsc);
  age_flows(now_tsc, aging_due(now_tsc));
  return moved;
}

unsigned Worker::receive_handoffs(uint64_t now) {
  unsigned total = 0;
  for (uint32_t w = 0; w < setup_.worker_count; ++w) {
    rte_ring* ring = setup_.handoff_in[w];
    if (!ring) continue;
    rte_mbuf* pkts[kBurstSize];
    const unsigned n = rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(pkts), kBurstSize, nullptr);
    if (!n) continue;
    counters_.handoffs_in.add(n);
    process_burst(pkts, static_cast<uint16_t>(n), now, true);
    total += n;
  }
  return total;
}

void Worker::pick_up_snapshot() {
  void* latest = nullptr;
  void* next;
  // Several may be queued if the worker was slow; only the newest matters.
  while (rte_ring_sc_dequeue(setup_.snapshot_ring, &next) == 0) latest = next;
  if (!latest) return;
  snapshot_ = static_cast<const Snapshot*>(latest);
  counters_.snapshot_generation.add(snapshot_->generation - counters_.snapshot_generation.get());
  // Release: the management core may free older snapshots once it sees this.
  acked_generation_.store(snapshot_->generation, std::memory_order_release);
}

unsigned Worker::transmit_injected() {
  rte_mbuf* pkts[kBurstSize];
  const unsigned n = rte_ring_sc_dequeue_burst(setup_.inject_ring, reinterpret_cast<void**>(pkts),
                                               kBurstSize, nullptr);
  if (!n) return 0;
  const uint16_t sent = rte_eth_tx_burst(setup_.port_id, setup_.tx_queue, pkts, static_cast<uint16_t>(n));
  counters_.injected_packets.add(sent);
  counters_.tx_packets.add(sent);
  if (sent < n) {
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    counters_.drop(DropReason::kTxFull, n - sent);
  }
  return n;
}

void Worker::process_burst(rte_mbuf** pkts, uint16_t n, uint64_t now, bool handed_off) {
  while (n > kBurstSize) {
    process_burst(pkts, kBurstSize, now, handed_off);
    pkts += kBurstSize;
    n -= kBurstSize;
  }
  const Snapshot& snap = *snapshot_;

  ParsedPacket parsed[kBurstSize];
  FlowKey keys[kBurstSize];
  const FlowKey* key_ptrs[kBurstSize];
  uint16_t packet_of[kBurstSize];  // key index -> packet index
  uint32_t vip_of[kBurstSize];     // key index -> VIP (forward) or kNotFound (reverse)
  uint16_t key_count = 0;

  for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));

  for (uint16_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
    rte_mbuf* m = pkts[i];
    const ParsedPacket& p = parsed[i] =
        parse_packet(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
    switch (p.kind) {
      case PacketKind::kDrop:
        drop(m, p.drop);
        continue;
      case PacketKind::kArp:
      case PacketKind::kIpv6:
        to_slow_path(m);
        continue;
      case PacketKind::kIpv4:
        break;
    }
    // Sources no real peer can have: dropped before any state is touched.
    if (!is_valid_source(p.src_ip)) {
      drop(m, DropReason::kBadSourceAddress);
      continue;
    }
    if (p.src_ip == p.dst_ip) {
      drop(m, DropReason::kLand);
      continue;
    }
    if (snap.local_addresses.find(address_key(p.src_ip)) != LookupTable::kNotFound) {
      drop(m, DropReason::kSpoofedSource);
      continue;
    }
    if (p.proto == kProtoTcp || p.proto == kProtoUdp) {
      const uint32_t vip = snap.vip_by_service.find(service_key(p.dst_ip, p.dst_port, p.proto));
      uint32_t owner = setup_.index;
      if (vip != LookupTable::kNotFound) {
        if (snap.vips[vip].mode == NatMode::kDnat) owner = dnat_owner(p.src_ip, p.src_port, setup_.worker_count);
      } else {
        // FNAT replies come to an SNAT address and a port of our range; DNAT
        // replies come from a backend of a DNAT VIP.
        const uint16_t dport = rte_be_to_cpu_16(p.dst_port);
        if (partition_.contains(dport) &&
            snap.snat_slot_by_address.find(address_key(p.dst_ip)) != LookupTable::kNotFound) {
          owner = partition_.owner(dport);
        } else if (snap.dnat_vip_by_backend.find(service_key(p.src_ip, p.src_port, p.proto)) !=
                   LookupTable::kNotFound) {
          owner = dnat_owner(p.dst_ip, p.dst_port, setup_.worker_count);
        } else {
          if (snap.local_addresses.find(address_key(p.dst_ip)) != LookupTable::kNotFound)
            to_slow_path(m);
          else
            drop(m, DropReason::kNotForUs);
          continue;
        }
      }
      if (owner != setup_.index && !handed_off) {
        hand_off(m, owner);
        continue;
      }
      keys[key_count] = make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto);
      key_ptrs[key_count] = &keys[key_count];
      packet_of[key_count] = i;
      vip_of[key_count] = vip;
      ++key_count;
    } else if (snap.local_addresses.find(address_key(p.dst_ip)) != LookupTable::kNotFound) {
      to_slow_path(m);  // ICMP to the appliance or a VIP: the kernel answers
    } else {
      drop(m, DropReason::kNotForUs);
    }
  }

  if (key_count) {
    uint32_t values[kBurstSize];
    // Hit entries come back in cache: the lookup confirmed each against it.
    const uint64_t hits = flows_.lookup_bulk(key_ptrs, key_count, values);
    if (const uint64_t misses = ~hits & ((key_count == 64 ? 0 : (1ull << key_count)) - 1))
      prefetch_reverse_buckets(misses, keys, vip_of);
    created_in_burst_ = removed_in_burst_ = 0;
    for (uint16_t k = 0; k < key_count; ++k) {
      rte_mbuf* m = pkts[packet_of[k]];
      const ParsedPacket& p = parsed[packet_of[k]];
      // The burst was looked up before any of it ran. Once an earlier packet
      // created a flow a miss may have become a hit; once one removed a flow
      // (reset, eviction) a hit's entry may be gone or reused. Look again.
      const bool hit = hits & (1ull << k);
      uint32_t value = hit ? values[k] : FlowTable::kMiss;
      if (hit ? removed_in_burst_ : created_in_burst_) value = flows_.lookup(keys[k]);
      if (value != FlowTable::kMiss)
        handle_flow_packet(m, p, value, now);
      else if (vip_of[k] != LookupTable::kNotFound)
        handle_new_flow(m, p, vip_of[k], now);
      else
        drop(m, DropReason::kReverseNoFlow);
    }
  }
  flush();
}

void Worker::prefetch_reverse_buckets(uint64_t misses, const FlowKey* keys, const uint32_t* vip_of) {
  // A new flow's insert writes two buckets: its forward key's, warm from the
  // lookup, and its reverse key's, cold. Predict each reverse key now (the
  // Maglev pick, and for FNAT the port the SNAT FIFO will hand out next) and
  // start the loads, so the burst's inserts overlap them. Only a hint: a
  // wrong guess costs a wasted load, never a wrong flow.
  const Snapshot& snap = *snapshot_;
  uint16_t taken[kMaxSnatAddresses];
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
    if (!counting) {
      std::fill(std::begin(taken), std::end(taken), uint16_t{0});
      counting = true;
    }
    const uint8_t slot = vip.snat_slots[first_snat_choice(hash, vip.snat_slots.size())];
    uint16_t port;
    if (snat_.peek(slot, taken[slot]++, port))
      flows_.prefetch(make_flow_key(backend.ip, snap.snat_addresses[slot], backend.port, rte_cpu_to_be_16(port),
                                    key.proto));
  }
}

void Worker::handle_flow_packet(rte_mbuf* m, const ParsedPacket& p, uint32_t value, uint64_t now) {
  const uint32_t index = FlowTable::entry_of(value);
  FlowEntry& e = flows_.entry(index);
  const bool reverse = FlowTable::is_reverse(value);
  if (e.reset_on_down) {
    const auto& alive = snapshot_->backend_alive;
    if (e.backend_id >= alive.size() || !alive[e.backend_id]) return reset_flow(m, p, index, reverse);
  }
  e.last_seen_tsc = now;
  VipCounters& vc = counters_.vips[e.vip_id];
  if (e.proto == kProtoTcp) {
    const FlowState next = next_tcp_state(e.state, p.tcp_flags, reverse);
    if (next != e.state) set_state(index, next);
  }
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  if (!reverse) {
    rewrite_ipv4_tuple(frame, p, Ipv4Tuple{e.snat_ip, e.backend_ip, e.snat_port, e.backend_port});
    set_ethernet_addresses(frame, e.backend_mac, snapshot_->port_mac);
    counters_.forward_packets.add();
    vc.forward_packets.add();
    vc.forward_bytes.add(rte_pktmbuf_pkt_len(m));
  } else {
    rewrite_ipv4_tuple(frame, p, Ipv4Tuple{e.vip_ip, e.client_ip, e.vip_port, e.client_port});
    set_ethernet_addresses(frame, e.client_mac, snapshot_->port_mac);
    counters_.reverse_packets.add();
    vc.reverse_packets.add();
    vc.reverse_bytes.add(rte_pktmbuf_pkt_len(m));
  }
  to_tx(m);
}

void Worker::reset_flow(rte_mbuf* m, const ParsedPacket& p, uint32_t index, bool reverse) {
  const FlowEntry& e = flows_.entry(index);
  const MacAddress client_mac = e.client_mac;
  const bool answer_client = e.proto == kProtoTcp && !reverse && !(p.tcp_flags & kTcpRst);
  expire(index, true);
  counters_.flows_reset.add();
  if (!answer_client) return drop(m, DropReason::kBackendDown);
  const uint32_t len = make_tcp_reset_reply(rte_pktmbuf_mtod(m, uint8_t*), p, client_mac, snapshot_->port_mac);
  rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - len));
  to_tx(m);
}

void Worker::handle_new_flow(rte_mbuf* m, const ParsedPacket& p, uint32_t vip_index, uint64_t now) {
  const Snapshot& snap = *snapshot_;
  const SnapshotVip& vip = snap.vips[vip_index];
  FlowState state = FlowState::kUdp;
  if (p.proto == kProtoTcp) {
    if ((p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn) {
      state = FlowState::kSynSent;
    } else {
      // A mid-connection packet we hold no state for (restart, ECMP change).
      // Forwarding it to the Maglev choice keeps DNAT connections alive; an
      // RST never opens a flow.
      if (vip.drop_tcp_miss || (p.tcp_flags & kTcpRst)) return drop(m, DropReason::kTcpMissPolicy);
      state = FlowState::kEstablished;
    }
  }
  if (is_embryonic(state) && vip.max_embryonic && embryonic_by_vip_[vip.id] >= vip.max_embryonic)
    return drop(m, DropReason::kSynLimit);

  const std::vector<uint16_t>& table = *vip.maglev;
  if (table.empty()) return drop(m, DropReason::kNoBackend);
  const uint64_t hash = maglev_flow_hash(p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.proto);
  const uint16_t b = maglev_choice(table, hash);
  if (b == kNoBackendSlot) return drop(m, DropReason::kNoBackend);
  const SnapshotBackend& backend = vip.backends[b];
  if (!backend.has_mac) return drop(m, DropReason::kNeighbourUnresolved);

  uint32_t index = flows_.allocate();
  if (index == FlowTable::kMiss && setup_.evict_embryonic && evict_oldest_embryonic()) index = flows_.allocate();
  if (index == FlowTable::kMiss) return drop(m, DropReason::kFlowTableFull);
  FlowEntry& e = flows_.entry(index);
  e.client_ip = p.src_ip;
  e.vip_ip = p.dst_ip;
  e.backend_ip = backend.ip;
  e.client_port = p.src_port;
  e.vip_port = p.dst_port;
  e.backend_port = backend.port;
  e.last_seen_tsc = now;
  std::memcpy(e.client_mac.bytes, rte_pktmbuf_mtod_offset(m, const uint8_t*, 6), 6);
  e.backend_mac = backend.mac;
  e.proto = p.proto;
  e.state = FlowState::kFree;  // set_state below, once the flow is in the table
  e.mode = vip.mode;
  e.vip_id = vip.id;
  e.backend_id = backend.id;
  e.reset_on_down = vip.reset_on_down;
  e.snat_slot = kMaxSnatAddresses;
  if (vip.mode == NatMode::kFnat) {
    const size_t count = vip.snat_slots.size();
    const size_t first = first_snat_choice(hash, count);
    for (size_t k = 0; k < count; ++k) {
      const uint8_t slot = vip.snat_slots[(first + k) % count];
      uint16_t port;
      if (snat_.take(slot, port)) {
        counters_.snat_in_use[slot].add();
        e.snat_slot = slot;
        e.snat_ip = snap.snat_addresses[slot];
        e.snat_port = rte_cpu_to_be_16(port);
        break;
      }
    }
    if (e.snat_slot == kMaxSnatAddresses) {
      flows_.release_unused(index);
      return drop(m, DropReason::kSnatExhausted);
    }
  } else {
    e.snat_ip = p.src_ip;
    e.snat_port = p.src_port;
  }
  const uint8_t slot = e.snat_slot;
  const uint16_t snat_port = rte_be_to_cpu_16(e.snat_port);
  if (!flows_.insert(index)) {
    if (slot < kMaxSnatAddresses) {
      snat_.give_back(slot, snat_port);
      counters_.snat_in_use[slot].sub();
    }
    return drop(m, DropReason::kFlowTableFull);
  }
  set_state(index, state);
  ++created_in_burst_;
  counters_.flows_created.add();
  counters_.flows_active.add();
  counters_.vips[e.vip_id].new_flows.add();
  counters_.backends[e.backend_id].new_flows.add();
  counters_.backends[e.backend_id].active_flows.add();
  handle_flow_packet(m, p, index << 1, now);
}

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

void Worker::age_flows(uint64_t now, uint32_t budget) {
  const auto& timeout = snapshot_->timeout_tsc;
  const uint32_t capacity = flows_.capacity();
  for (uint32_t i = 0; i < budget; ++i) {
    const FlowEntry& e = flows_.entry(aging_cursor_);
    if (e.state != FlowState::kFree && now > e.last_seen_tsc &&
        now - e.last_seen_tsc > timeout[static_cast<size_t>(e.state)])
      expire(aging_cursor_, e.state == FlowState::kClosing);
    if (++aging_cursor_ == capacity) aging_cursor_ = 0;
  }
}

void Worker::set_state(uint32_t index, FlowState next) {
  FlowEntry& e = flows_.entry(index);
  const bool was = is_embryonic(e.state), will = is_embryonic(next);
  if (was && !will) {  // unlink
    --embryonic_by_vip_[e.vip_id];
    counters_.flows_embryonic.sub();
    if (e.embryonic_prev != FlowTable::kMiss)
      flows_.entry(e.embryonic_prev).embryonic_next = e.embryonic_next;
    else
      embryonic_head_ = e.embryonic_next;
    if (e.embryonic_next != FlowTable::kMiss)
      flows_.entry(e.embryonic_next).embryonic_prev = e.embryonic_prev;
    else
      embryonic_tail_ = e.embryonic_prev;
  }
  if (will && !was) {  // append: the newest is the last to go
    ++embryonic_by_vip_[e.vip_id];
    counters_.flows_embryonic.add();
    e.embryonic_prev = embryonic_tail_;
    e.embryonic_next = FlowTable::kMiss;
    if (embryonic_tail_ != FlowTable::kMiss)
      flows_.entry(embryonic_tail_).embryonic_next = index;
    else
      embryonic_head_ = index;
    embryonic_tail_ = index;
  }
  e.state = next;
}

bool Worker::evict_oldest_embryonic() {
  if (embryonic_head_ == FlowTable::kMiss) return false;
  expire(embryonic_head_, false);
  counters_.flows_evicted.add();
  counters_.flows_expired.sub();  // counted as evicted, not as expired
  return true;
}

void Worker::expire(uint32_t index, bool closed) {
  set_state(index, FlowState::kFree);
  const FlowEntry& e = flows_.entry(index);
  if (e.snat_slot < kMaxSnatAddresses) {
    snat_.give_back(e.snat_slot, rte_be_to_cpu_16(e.snat_port));
    counters_.snat_in_use[e.snat_slot].sub();
  }
  counters_.backends[e.backend_id].active_flows.sub();
  flows_.remove(index);
  ++removed_in_burst_;
  counters_.flows_active.sub();
  (closed ? counters_.flows_closed : counters_.flows_expired).add();
}

std::vector<std::string> Worker::audit() const {
  std::vector<std::string> problems;
  const uint32_t first = snat_.first_port();
  const uint32_t span = uint32_t{snat_.last_port()} - first + 1;
  std::vector<std::vector<uint8_t>> holders(kMaxSnatAddresses);  // per slot, per port: flows + free
  uint64_t embryonic = 0, active = 0;
  for (uint32_t i = 0; i < flows_.capacity(); ++i) {
    const FlowEntry& e = flows_.entry(i);
    if (e.state == FlowState::kFree) continue;
    ++active;
    embryonic += is_embryonic(e.state);
    if (e.snat_slot >= kMaxSnatAddresses) continue;
    const uint32_t port = rte_be_to_cpu_16(e.snat_port);
    if (port < first || port - first >= span) {
      problems.push_back("flow " + std::to_string(i) + " holds SNAT port " + std::to_string(port) +
                         " outside this worker's slice");
      continue;
    }
    auto& h = holders[e.snat_slot];
    if (h.empty()) h.assign(span, 0);
    ++h[port - first];
  }
  for (uint32_t slot = 0; slot < kMaxSnatAddresses; ++slot) {
    auto& h = holders[slot];
    uint64_t held = 0;
    for (uint8_t n : h) held += n;
    if (held != counters_.snat_in_use[slot].get())
      problems.push_back("slot " + std::to_string(slot) + ": " + std::to_string(held) + " ports held by flows, " +
                         std::to_string(counters_.snat_in_use[slot].get()) + " counted in use");
    if (h.empty()) h.assign(span, 0);
    snat_.fifo(static_cast<uint8_t>(slot)).for_each_free([&](uint16_t port) { ++h[port - first]; });
    for (uint32_t p = 0; p < span; ++p)
      if (h[p] != 1)
        problems.push_back("slot " + std::to_string(slot) + " port " + std::to_string(first + p) + ": " +
                           std::to_string(h[p]) + " owners (flows + free list), want exactly 1");
  }
  uint64_t listed = 0;
  for (uint32_t i = embryonic_head_; i != FlowTable::kMiss && listed <= active; i = flows_.entry(i).embryonic_next) {
    ++listed;
    if (!is_embryonic(flows_.entry(i).state))
      problems.push_back("flow " + std::to_string(i) + " is on the embryonic list but not embryonic");
  }
  if (listed != embryonic) problems.push_back(std::to_string(listed) + " flows on the embryonic list, " +
                                              std::to_string(embryonic) + " embryonic flows");
  if (embryonic != counters_.flows_embryonic.get()) problems.push_back("flows_embryonic counter disagrees");
  if (active != flows_.active() || active != counters_.flows_active.get())
    problems.push_back("active flows: " + std::to_string(active) + " in use, table says " +
                       std::to_string(flows_.active()) + ", counter " + std::to_string(counters_.flows_active.get()));
  return problems;
}

void Worker::drop(rte_mbuf* m, DropReason reason) {
  counters_.drop(reason);
  rte_pktmbuf_free(m);
}

void Worker::flush() {
  for (uint32_t w = 0; w < setup_.worker_count; ++w) {
    const uint16_t count = handoff_count_[w];
    if (!count) continue;
    handoff_count_[w] = 0;
    const unsigned queued =
        rte_ring_sp_enqueue_burst(setup_.handoff_out[w], reinterpret_cast<void**>(handoff_[w]), count, nullptr);
    counters_.handoffs_out[w].add(queued);
    if (queued < count) {
      rte_pktmbuf_free_bulk(handoff_[w] + queued, count - queued);
      counters_.drop(DropReason::kHandoffFull, count - queued);
    }
  }
  if (tx_count_) {
    const uint16_t sent = rte_eth_tx_burst(setup_.port_id, setup_.tx_queue, tx_, tx_count_);
    counters_.tx_packets.add(sent);
    if (sent < tx_count_) {
      rte_pktmbuf_free_bulk(tx_ + sent, tx_count_ - sent);
      counters_.drop(DropReason::kTxFull, tx_count_ - sent);
    }
    tx_count_ = 0;
  }
  if (slow_count_) {
    const unsigned queued = rte_ring_sp_enqueue_burst(setup_.slow_path_ring, reinterpret_cast<void**>(slow_),
                                                      slow_count_, nullptr);
    counters_.slow_path_packets.add(queued);
    if (queued < slow_count_) {
      rte_pktmbuf_free_bulk(slow_ + queued, slow_count_ - queued);
      counters_.drop(DropReason::kSlowPathFull, slow_count_ - queued);
    }
    slow_count_ = 0;
  }
}

}  // namespace l4lb::dataplane
