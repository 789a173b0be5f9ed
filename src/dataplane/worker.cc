// The worker's packet path (DESIGN §3): poll, parse and classify, look the
// burst up, forward known flows, flush. New flows (worker_new_flow.cc), how
// flows end (worker_aging.cc) and the consistency audit (worker_audit.cc)
// are methods of the same class in files of their own.
#include "l4lb/dataplane/worker.h"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <algorithm>
#include <bit>
#include <new>

#include "l4lb/dataplane/classify.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/icmp_unreachable.h"
#include "l4lb/dataplane/icmp_error.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/tcp_reset.h"

namespace l4lb::dataplane {

namespace {

// How far ahead the parse loop prefetches packet data (l3fwd uses 3-8).
constexpr uint16_t kPrefetchAhead = 4;

}  // namespace

void* Worker::operator new(size_t size, int socket_id) {
  void* p = rte_malloc_socket("l4lb_worker", size, RTE_CACHE_LINE_SIZE, socket_id);
  if (!p) throw std::bad_alloc();
  return p;
}

void Worker::operator delete(void* p) { rte_free(p); }

Worker::Worker(const WorkerSetup& setup, const Snapshot* initial)
    : setup_(setup),
      partition_(setup.snat_port_min, setup.snat_port_max, setup.worker_count),
      snapshot_(initial),
      flows_("l4lb_flows_" + std::to_string(setup.index), setup.flow_capacity, setup.socket_id),
      snat_(partition_, setup.index, setup.snat_pools, setup.socket_id, counters_.snat_pools),
      fragments_(setup.fragment_datagrams, setup.fragments_held) {
  if (setup.worker_count == 0 || setup.worker_count > kMaxWorkers || setup.index >= setup.worker_count)
    throw std::invalid_argument("worker " + std::to_string(setup.index) + " of " + std::to_string(setup.worker_count));
  unconfirmed_by_vip_ = std::make_unique<uint32_t[]>(kMaxVips);
  static const rte_mbuf_dynfield kIcmpHops = {"l4lb_icmp_error_hops", sizeof(uint8_t), alignof(uint8_t), 0};
  icmp_hops_offset_ = rte_mbuf_dynfield_register(&kIcmpHops);
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
  if (fragments_.size()) [[unlikely]] expire_fragments(now_tsc);
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

// A new flow's first packet continues as a known flow's would
// (worker_new_flow.cc calls this: the inlined body lives in this file).
void Worker::forward_created(rte_mbuf* m, const ParsedPacket& p, uint32_t index, uint32_t vip_index) {
  handle_flow_packet(m, p, index << 1, vip_index);
}

// Every verdict of classify() but a flow's: dropped, to the kernel,
// answered, or handed to the flow's owner. kFlow: the flow is this worker's.
[[gnu::always_inline]] inline Worker::Path Worker::take_classified(rte_mbuf* m, const ParsedPacket& p,
                                                                  const Classification& c, bool handed_off,
                                                                  uint64_t now) {
  switch (c.verdict) {
    case Verdict::kDrop:
      drop(m, c.drop);
      return Path::kDropped;
    case Verdict::kControl:
      to_control(m);
      return Path::kControl;
    case Verdict::kSlowPath:
      // Best effort and bounded: each costs the kernel a write and maybe
      // an answer, so a flood to the appliance stops here (control
      // traffic has its own ring and no limit).
      if (!slow_path_budget_.take(now)) {
        drop(m, DropReason::kSlowPathLimit);
        return Path::kDropped;
      }
      to_slow_path(m);
      return Path::kSlowPath;
    case Verdict::kClosedPort:
      answer_closed_port(m, p, now);
      return Path::kDropped;
    case Verdict::kForward:
    case Verdict::kReverse:
      break;
  }
  if (c.owner != kAnyOwner && c.owner != setup_.index && !handed_off) {
    hand_off(m, c.owner);
    return Path::kHandedOff;
  }
  return Path::kFlow;
}

// A packet of a flow's path once its key is looked up (`value`).
[[gnu::always_inline]] inline void Worker::handle_looked_up(rte_mbuf* m, const ParsedPacket& p, uint32_t value,
                                                           uint32_t vip_index) {
  if (value != FlowTable::kMiss)
    handle_flow_packet(m, p, value, vip_index);
  else if (vip_index != LookupTable::kNotFound)
    handle_new_flow(m, p, vip_index);
  else
    reverse_without_flow(m, p);
}

Worker::Path Worker::process_one(rte_mbuf* m, const ParsedPacket& p, bool handed_off, uint64_t now,
                                 uint32_t& owner) {
  const Classification c = classify(*snapshot_, p, partition_, setup_.worker_count);
  owner = c.owner;
  const Path path = take_classified(m, p, c, handed_off, now);
  if (path == Path::kFlow)
    handle_looked_up(m, p, flows_.lookup(make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto)), c.vip);
  return path;
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
    // Built in its slot (guaranteed elision): assigning from a temporary
    // made the compiler copy it through the stack, reading wide what the
    // parser had just written narrow, a store-forwarding stall per packet.
    const ParsedPacket& p = *::new (&parsed[i].p)
        ParsedPacket(parse_packet(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)));
    if (p.is_fragment() && p.kind == PacketKind::kIpv4) [[unlikely]] {
      handle_fragment(m, p, handed_off, now);
      continue;
    }
    if (p.proto == kProtoIcmp && is_icmp_error(p.icmp_type)) [[unlikely]] {
      if (handle_icmp_error(m, p, handed_off)) continue;
    }
    const Classification c = classify(snap, p, partition_, setup_.worker_count);
    if (take_classified(m, p, c, handed_off, now) != Path::kFlow) continue;
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
      handle_looked_up(m, p, value, vip_of[k]);
    }
  }
  flush();
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
