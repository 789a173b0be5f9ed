#include "l4lb/dataplane/worker.h"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <algorithm>
#include <bit>

#include "l4lb/dataplane/classify.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/icmp_unreachable.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/tcp_reset.h"

namespace l4lb::dataplane {

namespace {

// How far ahead the parse loop prefetches packet data (l3fwd uses 3-8).
constexpr uint16_t kPrefetchAhead = 4;

// A new flow's choices both come from one hash of its tuple (DESIGN §5): the
// Maglev slot, and the first SNAT address FNAT tries. handle_new_flow decides
// with these and prefetch_reverse_buckets predicts with them, so the two
// cannot drift apart.
inline uint16_t maglev_choice(const std::vector<uint16_t>& table, uint64_t hash) {
  return table[hash % table.size()];
}
inline size_t first_snat_choice(uint64_t hash, size_t snat_count) { return (hash >> 32) % snat_count; }

// Whether the backend may still hold the tuple of a flow that ends now: it
// sits in TIME_WAIT when it sent the first FIN, and may still have the
// connection when an established flow just went idle. Not after a RST, a
// close the client started, or a handshake that never completed.
inline bool backend_may_hold_tuple(const FlowEntry& e) {
  if (e.proto != kProtoTcp || !e.confirmed() || e.state == FlowState::kClose) return false;  // UDP: no TIME_WAIT
  return (e.flags & kFlowBackendClosedFirst) || !(e.flags & kFlowFinClient);
}

}  // namespace

Worker::Worker(const WorkerSetup& setup, const Snapshot* initial)
    : setup_(setup),
      partition_(setup.snat_port_min, setup.snat_port_max, setup.worker_count),
      snapshot_(initial),
      flows_("l4lb_flows_" + std::to_string(setup.index), setup.flow_capacity, setup.socket_id),
      snat_(partition_, setup.index, setup.snat_pools, setup.socket_id, counters_.snat_pools) {
  if (setup.worker_count == 0 || setup.worker_count > kMaxWorkers || setup.index >= setup.worker_count)
    throw std::invalid_argument("worker " + std::to_string(setup.index) + " of " + std::to_string(setup.worker_count));
  unconfirmed_by_vip_ = std::make_unique<uint32_t[]>(kMaxVips);
  pool_unconfirmed_ = std::make_unique<AgeList[]>(snat_.max_pools());
  rejects_.init(rte_get_tsc_hz(), kRejectsPerSecond, kRejectBurst);
  slow_path_budget_.init(rte_get_tsc_hz(), kSlowPathPerSecond, kSlowPathBurst);
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

// Inlined into the burst loop: the common packet of a known flow needs no
// call. Anything that changes a TCP flow's state goes out of line.
[[gnu::always_inline]] inline void Worker::handle_flow_packet(rte_mbuf* m, const ParsedPacket& p, uint32_t value,
                                                             uint32_t vip_index) {
  const uint32_t index = FlowTable::entry_of(value);
  FlowEntry& e = flows_.entry(index);
  const bool reverse = FlowTable::is_reverse(value);
  const Snapshot& snap = *snapshot_;
  if (e.proto == kProtoTcp) {
    const uint8_t sender = reverse ? kFlowAckBackend : kFlowAckClient;
    if (e.state == FlowState::kEstablished && (p.tcp_flags & (kTcpSyn | kTcpFin | kTcpRst | kTcpAck)) == kTcpAck &&
        (e.flags & (sender | kFlowResetOnDown)) == sender) [[likely]] {
      // Nearly every packet: no transition to make, only the ACK to carry.
      e.ack_hi[reverse] = advance_ack_hi(e.ack_hi[reverse], p.tcp_ack);
    } else if (!track_tcp(m, p, index, reverse, vip_index)) {
      return;
    }
  } else {
    if (e.flags & kFlowResetOnDown) [[unlikely]] {
      if (!backend_alive(e.backend_id)) return reset_flow(m, p, index, reverse);
    }
    if (reverse && e.state == FlowState::kUdpUnreplied) {
      e.flags |= kFlowConfirmed;
      leave_unconfirmed(index);
      set_state(index, FlowState::kUdp);
    }
  }
  e.last_seen = now_;
  VipCounters& vc = counters_.vips[e.vip_id];
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  if (!reverse) {
    // Every snapshot covers every backend id given out since start (ids are
    // never reused), so a flow's id is always in range.
    const NextHop& hop = snap.next_hop[e.backend_id];
    if (!hop.known) return drop(m, DropReason::kNeighbourUnresolved);
    rewrite_ipv4_tuple(frame, p, Ipv4Tuple{e.snat_ip, e.backend_ip, e.snat_port, e.backend_port});
    set_ethernet_addresses(frame, hop.mac, snap.port_mac);
    counters_.forward_packets.add();
    vc.forward_packets.add();
    vc.forward_bytes.add(rte_pktmbuf_pkt_len(m));
  } else {
    rewrite_ipv4_tuple(frame, p, Ipv4Tuple{e.vip_ip, e.client_ip, e.vip_port, e.client_port});
    set_ethernet_addresses(frame, e.client_mac, snap.port_mac);
    counters_.reverse_packets.add();
    vc.reverse_packets.add();
    vc.reverse_bytes.add(rte_pktmbuf_pkt_len(m));
  }
  to_tx(m);
}

void Worker::process_burst(rte_mbuf** pkts, uint16_t n, uint64_t now, bool handed_off) {
  while (n > kBurstSize) {
    process_burst(pkts, kBurstSize, now, handed_off);
    pkts += kBurstSize;
    n -= kBurstSize;
  }
  const Snapshot& snap = *snapshot_;
  now_ = flow_clock(now);

  // Every slot is written by parse_packet before it is read: left
  // uninitialised, rather than have ParsedPacket's member initialisers
  // zero the whole array every burst (a memset perf showed).
  union ParsedSlot {
    ParsedSlot() {}
    ParsedPacket p;
  };
  ParsedSlot parsed[kBurstSize];
  FlowKey keys[kBurstSize];
  const FlowKey* key_ptrs[kBurstSize];
  uint16_t packet_of[kBurstSize];  // key index -> packet index
  uint32_t vip_of[kBurstSize];     // key index -> VIP (forward) or kNotFound (reverse)
  uint16_t key_count = 0;

  for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));

  for (uint16_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
    rte_mbuf* m = pkts[i];
    const ParsedPacket& p = parsed[i].p =
        parse_packet(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
    const Classification c = classify(snap, p, partition_, setup_.worker_count);
    switch (c.verdict) {
      case Verdict::kDrop:
        drop(m, c.drop);
        continue;
      case Verdict::kControl:
        to_control(m);
        continue;
      case Verdict::kSlowPath:
        // Best effort and bounded: each costs the kernel a write and maybe
        // an answer, so a flood to the appliance stops here (control
        // traffic has its own ring and no limit).
        if (slow_path_budget_.take(now))
          to_slow_path(m);
        else
          drop(m, DropReason::kSlowPathLimit);
        continue;
      case Verdict::kClosedPort:
        answer_closed_port(m, p, now);
        continue;
      case Verdict::kForward:
      case Verdict::kReverse:
        break;
    }
    if (c.owner != kAnyOwner && c.owner != setup_.index && !handed_off) {
      hand_off(m, c.owner);
      continue;
    }
    keys[key_count] = make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto);
    key_ptrs[key_count] = &keys[key_count];
    packet_of[key_count] = i;
    vip_of[key_count] = c.vip;
    ++key_count;
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
      const ParsedPacket& p = parsed[packet_of[k]].p;
      // The burst was looked up before any of it ran. Once an earlier packet
      // created a flow a miss may have become a hit; once one removed a flow
      // (reset, eviction) a hit's entry may be gone or reused. Look again.
      const bool hit = hits & (1ull << k);
      uint32_t value = hit ? values[k] : FlowTable::kMiss;
      if (hit ? removed_in_burst_ : created_in_burst_) value = flows_.lookup(keys[k]);
      if (value != FlowTable::kMiss)
        handle_flow_packet(m, p, value, vip_of[k]);
      else if (vip_of[k] != LookupTable::kNotFound)
        handle_new_flow(m, p, vip_of[k]);
      else
        drop(m, DropReason::kReverseNoFlow);
    }
  }
  flush();
}

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

bool Worker::backend_alive(uint32_t backend_id) const {
  const auto& alive = snapshot_->backend_alive;
  return backend_id < alive.size() && alive[backend_id];
}

bool Worker::track_tcp(rte_mbuf* m, const ParsedPacket& p, uint32_t index, bool reverse, uint32_t vip_index) {
  FlowEntry& e = flows_.entry(index);
  if ((e.flags & kFlowResetOnDown) && !backend_alive(e.backend_id)) {
    // A pure SYN on a closing flow is a new connection (below), not a
    // packet of this one: it gets fresh choices, not a RST.
    uint8_t flags = e.flags;
    if (!tcp_transition(e.state, p.tcp_flags, reverse, flags).restart) {
      reset_flow(m, p, index, reverse);
      return false;
    }
  }
  // A RST is believed only near where its receiver's last ACK says it
  // expects data (DESIGN §3); other segments carry the sender's ACK along.
  const uint8_t sender = reverse ? kFlowAckBackend : kFlowAckClient;
  const uint8_t receiver = reverse ? kFlowAckClient : kFlowAckBackend;
  if (p.tcp_flags & kTcpRst) {
    if ((e.flags & receiver) && !rst_in_window(p.tcp_seq, e.ack_hi[!reverse])) {
      drop(m, DropReason::kRstOutOfWindow);
      return false;
    }
  } else if (p.tcp_flags & kTcpAck) {
    uint16_t& ack_hi = e.ack_hi[reverse];
    if (e.flags & sender) {
      ack_hi = advance_ack_hi(ack_hi, p.tcp_ack);
    } else {
      ack_hi = static_cast<uint16_t>(p.tcp_ack >> 16);
      e.flags |= sender;
    }
  }
  const uint8_t flags_before = e.flags;
  const TcpStep step = tcp_transition(e.state, p.tcp_flags, reverse, e.flags);
  if (step.restart) {
    // A new connection on a closed flow's tuple: new choices, new port.
    expire(index, true);
    handle_new_flow(m, p, vip_index);
    return false;
  }
  if ((e.flags ^ flags_before) & kFlowConfirmed) leave_unconfirmed(index);
  if (step.next != e.state) set_state(index, step.next);
  return true;
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

void Worker::answer_closed_port(rte_mbuf* m, const ParsedPacket& p, uint64_t now_tsc) {
  if (!snapshot_->reject_closed_ports || (p.proto == kProtoTcp && (p.tcp_flags & kTcpRst)))
    return drop(m, DropReason::kClosedVipPort);
  if (!rejects_.take(now_tsc)) return drop(m, DropReason::kClosedVipPort);
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  MacAddress client_mac;
  std::memcpy(client_mac.bytes, frame + 6, 6);
  uint32_t len;
  if (p.proto == kProtoTcp) {
    len = make_tcp_reset_reply(frame, p, client_mac, snapshot_->port_mac);
  } else {
    // The ICMP error quotes the datagram's first bytes after new headers.
    const uint32_t want = icmp_port_unreachable_length(p);
    if (rte_pktmbuf_data_len(m) < want && !rte_pktmbuf_append(m, static_cast<uint16_t>(want - rte_pktmbuf_data_len(m))))
      return drop(m, DropReason::kClosedVipPort);
    len = make_icmp_port_unreachable(rte_pktmbuf_mtod(m, uint8_t*), p, client_mac, snapshot_->port_mac);
  }
  rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - len));
  counters_.closed_port_rejects.add();
  to_tx(m);
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

void Worker::handle_new_flow(rte_mbuf* m, const ParsedPacket& p, uint32_t vip_index) {
  const Snapshot& snap = *snapshot_;
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
  std::memcpy(e.client_mac.bytes, rte_pktmbuf_mtod_offset(m, const uint8_t*, 6), 6);
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
  handle_flow_packet(m, p, index << 1, vip_index);
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
  // Control first: if both share one ring (no control ring), ARP and probe
  // answers still get the room before the rest.
  if (control_count_) {
    rte_ring* ring = setup_.control_ring ? setup_.control_ring : setup_.slow_path_ring;
    enqueue_or_drop(ring, control_, control_count_, counters_.control_packets, DropReason::kControlPathFull);
    control_count_ = 0;
  }
  if (slow_count_) {
    enqueue_or_drop(setup_.slow_path_ring, slow_, slow_count_, counters_.slow_path_packets,
                    DropReason::kSlowPathFull);
    slow_count_ = 0;
  }
}

void Worker::enqueue_or_drop(rte_ring* ring, rte_mbuf** pkts, uint16_t count, Counter& queued_counter,
                             DropReason full) {
  const unsigned queued = rte_ring_sp_enqueue_burst(ring, reinterpret_cast<void**>(pkts), count, nullptr);
  queued_counter.add(queued);
  if (queued < count) {
    rte_pktmbuf_free_bulk(pkts + queued, count - queued);
    counters_.drop(full, count - queued);
  }
}

}  // namespace l4lb::dataplane
