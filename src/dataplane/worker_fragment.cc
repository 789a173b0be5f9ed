// IPv4 fragments (DESIGN §3 step 2a): the first fragment goes the way the
// whole datagram would, and the later ones follow it, or wait for it when
// they come first. The bookkeeping is fragment_table.h's.
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <cstring>

#include "l4lb/common/checksum.h"
#include "l4lb/dataplane/worker.h"

namespace l4lb::dataplane {

namespace {

// Still the fragment that came in (not an answer built in its place: a RST,
// an ICMP unreachable)?
bool is_same_fragment(const uint8_t* frame, const ParsedPacket& p) {
  const uint8_t* ip = frame + p.l3_offset;
  uint16_t id;
  std::memcpy(&id, ip + 4, 2);
  return id == static_cast<uint16_t>(p.fragment_id) && ((ip[6] & 0x3F) | ip[7]);
}

uint32_t l2_length(const uint8_t* frame) { return frame[12] == 0x81 && frame[13] == 0x00 ? 18 : 14; }

}  // namespace

void Worker::make_room() {
  bool full = tx_count_ >= kBurstSize || slow_count_ >= kBurstSize || control_count_ >= kBurstSize;
  for (uint32_t w = 0; w < setup_.worker_count && !full; ++w) full = handoff_count_[w] >= kBurstSize;
  if (full) flush();
}

void Worker::handle_fragment(rte_mbuf* m, const ParsedPacket& p, bool handed_off, uint64_t now_tsc) {
  const FragmentKey key{p.src_ip, p.dst_ip, static_cast<uint16_t>(p.fragment_id), p.proto};
  if (!handed_off && setup_.worker_count > 1) {
    const uint32_t owner = fragment_owner(key, setup_.worker_count);
    if (owner != setup_.index) {
      make_room();
      return hand_off(m, owner);
    }
  }
  uint32_t index = fragments_.find(key);
  if (index == FragmentTable::kNone) {
    if (fragments_.full()) {
      const uint32_t oldest = fragments_.oldest();
      drop_held_fragments(oldest, DropReason::kFragmentTableFull);
      fragments_.remove(oldest);
    }
    index = fragments_.insert(key, now_tsc);
    counters_.fragment_datagrams.add();
  }
  FragmentTable::Datagram& d = fragments_.at(index);
  const uint32_t length = p.ip_total_length - (p.l4_offset - p.l3_offset);
  const FragmentTable::Piece piece = fragments_.add_piece(index, p.fragment_offset(), length, !p.more_fragments());
  if (piece == FragmentTable::Piece::kOverlap || piece == FragmentTable::Piece::kTooMany) {
    const DropReason why =
        piece == FragmentTable::Piece::kOverlap ? DropReason::kFragmentOverlap : DropReason::kFragmentLimit;
    drop(m, why);
    drop_held_fragments(index, why);
    d.verdict = FragmentVerdict::kDrop;
    return;
  }
  if (d.verdict == FragmentVerdict::kDrop) {
    drop(m, DropReason::kFragmentOfDropped);
  } else if (p.fragment_offset() == 0) {
    d.verdict = route_first_fragment(m, p, handed_off, now_tsc, d.rewrite);
    while (void* held = fragments_.release(index)) {
      counters_.fragments_held.sub();
      follow_first_fragment(static_cast<rte_mbuf*>(held), d, now_tsc);
    }
  } else if (d.verdict == FragmentVerdict::kPending) {
    if (fragments_.hold(index, m)) {
      counters_.fragments_held.add();
      return;
    }
    drop(m, DropReason::kFragmentLimit);
    drop_held_fragments(index, DropReason::kFragmentLimit);
    d.verdict = FragmentVerdict::kDrop;
    return;
  } else {
    follow_first_fragment(m, d, now_tsc);
  }
  // Every byte seen and sent on: nothing more can belong to it.
  if (piece == FragmentTable::Piece::kComplete) fragments_.remove(index);
}

FragmentVerdict Worker::route_first_fragment(rte_mbuf* m, const ParsedPacket& p, bool handed_off,
                                             uint64_t now_tsc, FragmentRewrite& rewrite) {
  make_room();
  const uint16_t queued = tx_count_;
  uint32_t owner;
  switch (process_one(m, p, handed_off, now_tsc, owner)) {
    case Path::kDropped:
      return FragmentVerdict::kDrop;
    case Path::kControl:
      return FragmentVerdict::kControl;
    case Path::kSlowPath:
      return FragmentVerdict::kSlowPath;
    case Path::kHandedOff:
      rewrite.owner = static_cast<uint8_t>(owner);
      return FragmentVerdict::kHandOff;
    case Path::kFlow:
      break;
  }
  // Dropped (m may be freed: look no further), reset or answered: the rest
  // has nowhere to go.
  if (tx_count_ == queued || tx_[tx_count_ - 1] != m) return FragmentVerdict::kDrop;
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  if (!is_same_fragment(frame, p)) return FragmentVerdict::kDrop;
  rewrite.l2_len = static_cast<uint8_t>(p.l3_offset);
  std::memcpy(rewrite.l2, frame, p.l3_offset);
  std::memcpy(&rewrite.src_ip, frame + p.l3_offset + 12, 4);
  std::memcpy(&rewrite.dst_ip, frame + p.l3_offset + 16, 4);
  rewrite.vip_id = FragmentRewrite::kNoVip;
  const FlowKey key = make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto);
  if (const uint32_t value = flows_.lookup(key); value != FlowTable::kMiss) {
    rewrite.vip_id = flows_.entry(FlowTable::entry_of(value)).vip_id;
    rewrite.reverse = FlowTable::is_reverse(value);
  }
  return FragmentVerdict::kForward;
}

void Worker::follow_first_fragment(rte_mbuf* m, const FragmentTable::Datagram& d, uint64_t now_tsc) {
  make_room();
  const FragmentRewrite& rewrite = d.rewrite;
  switch (d.verdict) {
    case FragmentVerdict::kForward: {
      uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
      // A datagram's fragments all come with or all without the VLAN tag;
      // one that does not matches nothing the first was sent with.
      if (l2_length(frame) != rewrite.l2_len) return drop(m, DropReason::kFragmentOfDropped);
      std::memcpy(frame, rewrite.l2, rewrite.l2_len);
      auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + rewrite.l2_len);
      std::memcpy(&ip->src_addr, &rewrite.src_ip, 4);
      std::memcpy(&ip->dst_addr, &rewrite.dst_ip, 4);
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
      counters_.fragments_followed.add();
      Counter& packets = rewrite.reverse ? counters_.reverse_packets : counters_.forward_packets;
      packets.add();
      if (rewrite.vip_id != FragmentRewrite::kNoVip) {
        VipCounters& vc = counters_.vips[rewrite.vip_id];
        (rewrite.reverse ? vc.reverse_packets : vc.forward_packets).add();
        (rewrite.reverse ? vc.reverse_bytes : vc.forward_bytes).add(rte_pktmbuf_pkt_len(m));
      }
      return to_tx(m);
    }
    case FragmentVerdict::kHandOff:
      return hand_off(m, rewrite.owner);
    case FragmentVerdict::kSlowPath:
      if (!slow_path_budget_.take(now_tsc)) return drop(m, DropReason::kSlowPathLimit);
      return to_slow_path(m);
    case FragmentVerdict::kControl:
      return to_control(m);
    case FragmentVerdict::kPending:
    case FragmentVerdict::kDrop:
      return drop(m, DropReason::kFragmentOfDropped);
  }
}

void Worker::drop_held_fragments(uint32_t index, DropReason reason) {
  while (void* held = fragments_.release(index)) {
    counters_.fragments_held.sub();
    drop(static_cast<rte_mbuf*>(held), reason);
  }
}

void Worker::expire_fragments(uint64_t now_tsc) {
  const uint64_t timeout = snapshot_->fragment_timeout_tsc;
  for (uint32_t i = fragments_.oldest(); i != FragmentTable::kNone && fragments_.expired(i, now_tsc, timeout);
       i = fragments_.oldest()) {
    drop_held_fragments(i, DropReason::kFragmentTimeout);
    fragments_.remove(i);
  }
}

Worker::~Worker() {
  for (uint32_t i = fragments_.oldest(); i != FragmentTable::kNone; i = fragments_.oldest()) {
    while (void* held = fragments_.release(i)) rte_pktmbuf_free(static_cast<rte_mbuf*>(held));
    fragments_.remove(i);
  }
}

}  // namespace l4lb::dataplane
