// --mode churn: whole TCP connections on fresh 5-tuples, both ends played
// here (generator.h). The client's packets start from its slot's state; the
// backend's are the received packet answered in place. Every step is a
// reaction to the previous packet's return through the DUT, so at most two
// packets of a connection are in the rings at a time, and a connection whose
// packet the DUT lost stops where it was and fails at --conn-timeout.
//
//   client-first (default)            backend-first (--close backend)
//   C SYN            seq C            C SYN            seq C
//   B SYN+ACK        seq B, ack C+1   B SYN+ACK        seq B, ack C+1
//   C ACK, C data    seq C+1          C ACK, C data    seq C+1
//   B data+ACK       seq B+1          B data+ACK, B FIN+ACK
//   C FIN+ACK                         C FIN+ACK
//   B FIN+ACK                         B ACK   (complete at the client)
//   C ACK   (complete at the backend)
//
// C = slot << 16 | (generation & 7) << 13, B = C ^ 0xffff0000: a client
// packet's seq and a backend packet's ack name the slot; a client packet's
// generation bits and a backend packet's client tuple tell an earlier
// connection of the slot from the current one.
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "generator.h"

namespace l4lb::pktgen {

namespace {

constexpr uint8_t kFlagsOf = kTcpSyn | kTcpAck | kTcpFin | kTcpRst;
// The low bits of an ISN that the offsets of one connection use (payload <
// 8 KiB; the generation sits above them).
constexpr uint32_t kIsnOffsetMask = 0x1FFF;

void set_length(rte_mbuf* m, uint16_t len) {
  m->data_len = len;
  m->pkt_len = len;
}

}  // namespace

void Generator::init_churn_templates() {
  FrameSpec spec;
  spec.proto = kProtoTcp;
  spec.vlan = opt_.vlan;
  spec.src_mac = our_mac_;
  spec.dst_mac = dut_mac_;
  spec.frame_len = opt_.frame_len;
  spec.l4_payload = 0;
  spec.tcp_flags = kTcpSyn;
  churn_syn_.init(spec);
  spec.tcp_flags = kTcpAck;
  churn_ack_.init(spec);
  spec.tcp_flags = kTcpFin | kTcpAck;
  churn_fin_.init(spec);
  spec.l4_payload = kFillFrame;
  spec.tcp_flags = kTcpPsh | kTcpAck;
  churn_data_.init(spec);
}

bool Generator::queue_reaction(rte_mbuf* m, const Tuple& t, BurstTally& tally) {
  TxQueue& q = txq_[tx_queue_of(queues_, t.src_ip, t.dst_ip, t.src_port, t.dst_port, kProtoTcp)];
  if (q.answer_count == kAnswerBacklog) {
    ++tally.answer_drops;
    rte_pktmbuf_free(m);
    return false;
  }
  q.answers[q.answer_count++] = m;
  return true;
}

uint16_t Generator::churn_open(uint8_t* frame, uint64_t now, uint16_t& queue) {
  if (free_slots_.empty()) return 0;
  const uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  ChurnConn& c = conns_[slot];
  c.tuple = new_next_;
  if (++new_next_ == flows_.capacity()) {
    new_next_ = flows_.flows();
    ++measure_->new_wrapped;
  }
  ++c.gen;
  c.step = ChurnStep::kSyn;
  c.start = now;
  c.handshake_acked = false;
  const Tuple t = flows_.client_tuple(c.tuple);
  queue = tx_queue_of(queues_, t.src_ip, t.dst_ip, t.src_port, t.dst_port, kProtoTcp);
  churn_syn_.build_tcp(frame, t, churn_client_isn(slot, c.gen), 0, now, 0, slot);
  ChurnResult& r = measure_->churn;
  ++r.opened;
  ++r.client_packets;
  r.in_flight_peak = std::max(r.in_flight_peak, static_cast<uint32_t>(conns_.size() - free_slots_.size()));
  live_.conns_opened.add();
  return churn_syn_.length();
}

void Generator::churn_finish(uint32_t slot, uint64_t now, bool ok) {
  ChurnConn& c = conns_[slot];
  ChurnResult& r = measure_->churn;
  if (ok) {
    ++r.completed;
    live_.conns_completed.add();
    measure_->rtt.record(now - c.start);
    if (now < churn_end_) {
      ++r.completed_in_window;
      const uint64_t second = (now - churn_t0_) / hz_;
      if (second < r.per_second.size()) ++r.per_second[second];
    }
  } else {
    ++r.failed;
    live_.conns_failed.add();
  }
  c.step = ChurnStep::kFree;
  free_slots_.push_back(slot);
}

void Generator::churn_expire(uint64_t now, uint32_t budget) {
  const uint64_t timeout = static_cast<uint64_t>(opt_.conn_timeout_s * static_cast<double>(hz_));
  const auto n = static_cast<uint32_t>(conns_.size());
  for (uint32_t i = 0; i < budget; ++i) {
    const uint32_t slot = expire_cursor_;
    if (++expire_cursor_ == n) expire_cursor_ = 0;
    const ChurnConn& c = conns_[slot];
    if (c.step != ChurnStep::kFree && now - c.start > timeout) churn_finish(slot, now, false);
  }
}

// One received TCP packet of the churn: the next step of its connection.
// Returns true when `m` was taken (queued as the reaction), false when the
// caller frees it.
bool Generator::handle_churn(rte_mbuf* m, uint8_t* frame, const dataplane::ParsedPacket& p, bool to_client,
                             uint64_t now, BurstTally& tally) {
  ChurnResult& r = measure_->churn;
  if (to_client)
    ++tally.returned;
  else
    ++tally.forwarded;
  if (!dut_mac_known_) {
    std::memcpy(dut_mac_.bytes, frame + 6, 6);
    dut_mac_known_ = true;
    init_churn_templates();
  }
  uint32_t offset, length;
  payload_of(frame, p, offset, length);
  const uint32_t ack = tcp_ack_of(frame, p);
  // What the reaction acknowledges: the segment's payload, plus one each for
  // SYN and FIN.
  const uint32_t next_ack = p.tcp_seq + length + ((p.tcp_flags & kTcpSyn) ? 1 : 0) + ((p.tcp_flags & kTcpFin) ? 1 : 0);
  const uint8_t flags = p.tcp_flags & kFlagsOf;

  if (to_client) {
    const uint32_t slot = ack >> 16;
    if (slot >= conns_.size() || conns_[slot].step == ChurnStep::kFree) {
      ++r.stale;
      return false;
    }
    ChurnConn& c = conns_[slot];
    const Tuple t = flows_.client_tuple(c.tuple);
    if (p.dst_ip != t.src_ip || p.dst_port != t.src_port) {
      ++r.stale;
      return false;
    }
    // The client's next segment: seq = what the backend acknowledged, ack =
    // the end of the backend's segment.
    auto react = [&](const PacketTemplate& tpl, ChurnStep next) {
      tpl.build_tcp(frame, t, ack, next_ack, now, 0, slot);
      set_length(m, tpl.length());
      c.step = next;
      ++r.client_packets;
      queue_reaction(m, t, tally);
      return true;
    };
    switch (c.step) {
      case ChurnStep::kSynAck: {
        if (flags != (kTcpSyn | kTcpAck)) break;
        // The handshake ACK in this mbuf, the data right behind it.
        rte_mbuf* d = rte_pktmbuf_alloc(pool_);
        if (!d) {
          live_.alloc_failures.add();
          return false;  // the connection fails at its timeout
        }
        churn_data_.build_tcp(rte_pktmbuf_mtod(d, uint8_t*), t, ack, next_ack, now, 0, slot);
        set_length(d, churn_data_.length());
        react(churn_ack_, ChurnStep::kData);
        ++r.client_packets;
        queue_reaction(d, t, tally);
        return true;
      }
      case ChurnStep::kDataAck:
        if (flags != kTcpAck || length == 0) break;
        if (opt_.backend_closes_first) {
          c.step = ChurnStep::kBackendFin;  // its FIN follows
          return false;
        }
        return react(churn_fin_, ChurnStep::kFin);
      case ChurnStep::kFinAck:
        if (flags != (kTcpFin | kTcpAck)) break;
        return react(churn_ack_, ChurnStep::kLastAck);
      case ChurnStep::kBackendFin:
        if (flags != (kTcpFin | kTcpAck)) break;
        return react(churn_fin_, ChurnStep::kClientFin);
      case ChurnStep::kBackendAck:
        if (flags != kTcpAck || length != 0) break;
        churn_finish(slot, now, c.handshake_acked);
        return false;
      default:
        break;
    }
    ++r.unexpected;
    return false;
  }

  // At the backend: the slot and generation from the client's seq.
  const uint32_t slot = p.tcp_seq >> 16;
  if (slot >= conns_.size()) {
    ++r.stale;
    return false;
  }
  ChurnConn& c = conns_[slot];
  if (c.step == ChurnStep::kFree || (p.tcp_seq >> 13 & 7) != (c.gen & 7u)) {
    ++r.stale;
    return false;
  }
  const uint32_t client_isn = p.tcp_seq & ~kIsnOffsetMask;
  const uint32_t backend_isn = churn_backend_isn(client_isn);
  if (flags == kTcpAck && length == 0 && ack == backend_isn + 1) {
    // The handshake ACK (whenever it arrives): nothing to answer.
    if (c.handshake_acked) ++r.unexpected;
    c.handshake_acked = true;
    return false;
  }
  const Tuple back{p.dst_ip, p.src_ip, p.dst_port, p.src_port};  // the backend's packets' tuple
  auto answer = [&](uint8_t out_flags, uint32_t seq, ChurnStep next) {
    answer_tcp_in_place(frame, p, our_mac_, out_flags, seq, next_ack);
    c.step = next;
    ++r.backend_packets;
    queue_reaction(m, back, tally);
    return true;
  };
  switch (c.step) {
    case ChurnStep::kSyn:
      if (flags != kTcpSyn) break;
      return answer(kTcpSyn | kTcpAck, backend_isn, ChurnStep::kSynAck);
    case ChurnStep::kData:
      if (flags != kTcpAck || length == 0) break;
      if (opt_.backend_closes_first) {
        // The data's answer, then the backend's FIN right behind it.
        rte_mbuf* f = rte_pktmbuf_alloc(pool_);
        if (!f) {
          live_.alloc_failures.add();
          return false;
        }
        churn_fin_.build_tcp(rte_pktmbuf_mtod(f, uint8_t*), back, ack + length, next_ack, now, 0, slot);
        set_length(f, churn_fin_.length());
        answer(kTcpAck | kTcpPsh, ack, ChurnStep::kDataAck);
        ++r.backend_packets;
        queue_reaction(f, back, tally);
        return true;
      }
      return answer(kTcpAck | kTcpPsh, ack, ChurnStep::kDataAck);
    case ChurnStep::kFin:
      if (flags != (kTcpFin | kTcpAck)) break;
      return answer(kTcpFin | kTcpAck, ack, ChurnStep::kFinAck);
    case ChurnStep::kLastAck:
      if (flags != kTcpAck || length != 0) break;
      churn_finish(slot, now, c.handshake_acked);
      return false;
    case ChurnStep::kClientFin:
      if (flags != (kTcpFin | kTcpAck)) break;
      return answer(kTcpAck, ack, ChurnStep::kBackendAck);
    default:
      break;
  }
  ++r.unexpected;
  return false;
}

}  // namespace l4lb::pktgen
