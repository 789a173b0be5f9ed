#include "generator.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <cstring>

namespace l4lb::pktgen {

namespace {

// How far ahead the receive loop prefetches packet data (as l3fwd).
constexpr uint16_t kPrefetchAhead = 4;
constexpr size_t kZipfLength = size_t{1} << 20;
constexpr uint64_t kZipfSeed = 0x4c344c42;  // fixed: the same run picks the same flows

}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kStarting:
      return "starting";
    case Phase::kWarmup:
      return "warmup";
    case Phase::kWarmupDrain:
      return "warmup-drain";
    case Phase::kMeasure:
      return "measure";
    case Phase::kDrain:
      return "drain";
    case Phase::kDone:
      return "done";
  }
  return "?";
}

CounterValues CounterValues::operator-(const CounterValues& b) const {
  CounterValues d;
  d.tx = tx - b.tx;
  d.answered = answered - b.answered;
  d.answer_drops = answer_drops - b.answer_drops;
  d.rx = rx - b.rx;
  d.forwarded = forwarded - b.forwarded;
  d.returned = returned - b.returned;
  d.ended = ended - b.ended;
  d.other = other - b.other;
  d.late = late - b.late;
  d.alloc_failures = alloc_failures - b.alloc_failures;
  return d;
}

CounterValues LiveCounters::values() const {
  CounterValues v;
  v.tx = tx.get();
  v.answered = answered.get();
  v.answer_drops = answer_drops.get();
  v.rx = rx.get();
  v.forwarded = forwarded.get();
  v.returned = returned.get();
  v.ended = ended.get();
  v.other = other.get();
  v.late = late.get();
  v.alloc_failures = alloc_failures.get();
  return v;
}

Generator::Generator(const Options& options, const FlowSet& flows, uint16_t port_id, rte_mempool* pool,
                     const Mac& our_mac, uint64_t tsc_hz)
    : opt_(options),
      flows_(flows),
      port_(port_id),
      pool_(pool),
      our_mac_(our_mac),
      dut_mac_(options.dst_mac),
      dut_mac_known_(options.dst_mac_set),
      hz_(tsc_hz),
      queues_(std::max<uint16_t>(1, options.queues)),
      txq_(queues_),
      measure_(std::make_unique<MeasureResult>()) {
  const bool vlan = opt_.vlan != 0;
  FrameSpec spec;
  spec.proto = opt_.proto;
  spec.vlan = opt_.vlan;
  spec.src_mac = our_mac_;
  spec.dst_mac = dut_mac_;
  spec.frame_len = std::max<uint16_t>(opt_.frame_len, header_bytes(opt_.proto, vlan) + kStampFull);
  spec.tcp_flags = kTcpSyn;
  opener_.init(spec);
  spec.frame_len = opt_.frame_len;
  syn_new_.init(spec);
  spec.tcp_flags = kTcpAck | kTcpPsh;
  data_.init(spec);
  backend_.init(spec);  // MACs fixed up once the DUT's is learned

  if (opt_.mode != Mode::kReverse) {
    opened_.assign((flows_.flows() + 63) / 64, 0);
    if (opt_.from_backend) {
      learned_bits_.assign((flows_.flows() + 63) / 64, 0);
      learned_.assign(flows_.flows(), Learned{});
    }
    if (opt_.pattern == Pattern::kZipf)
      zipf_ = make_zipf_sequence(flows_.flows(), opt_.zipf_s, kZipfLength, kZipfSeed);
  }
  new_next_ = flows_.flows();
  if (opt_.mode == Mode::kChurn) {
    init_churn_templates();
    conns_.assign(opt_.in_flight, ChurnConn{});
    free_slots_.reserve(opt_.in_flight);
    for (uint32_t slot = opt_.in_flight; slot-- > 0;) free_slots_.push_back(slot);  // slot 0 first
    if (opt_.duration_s > 0) measure_->churn.per_second.assign(static_cast<size_t>(opt_.duration_s) + 1, 0);
  }
}

void Generator::run(const std::atomic<bool>& stop) {
  if (opt_.mode == Mode::kReverse) {
    run_responder(stop);
  } else {
    if (opt_.warmup) run_warmup(stop);
    if (!stop.load(std::memory_order_relaxed)) {
      if (opt_.mode == Mode::kChurn)
        run_churn(stop);
      else
        run_measure(stop);
    }
  }
  if (stop.load(std::memory_order_relaxed)) measure_->stopped_early = true;
  // Answers still queued: give the port one last chance, then free them.
  flush_answers();
  for (TxQueue& t : txq_)
    if (t.answer_count) {
      rte_pktmbuf_free_bulk(t.answers, t.answer_count);
      live_.answer_drops.add(t.answer_count);
      t.answer_count = 0;
    }
  free_held();
  live_.phase.store(static_cast<int>(Phase::kDone), std::memory_order_release);
}

// ---------------------------------------------------------------- receive

uint32_t Generator::receive() {
  uint32_t n = 0;
  for (uint16_t q = 0; q < queues_; ++q) n += receive_queue(q);
  flush_answers();
  return n;
}

uint16_t Generator::receive_queue(uint16_t q) {
  rte_mbuf* pkts[kRxBurst];
  const uint16_t n = rte_eth_rx_burst(port_, q, pkts, kRxBurst);
  if (n == 0) return 0;
  const uint64_t now = rte_rdtsc();
  last_rx_tsc_ = now;
  rte_mbuf* done[kRxBurst];  // to free in one go
  uint16_t done_count = 0;
  BurstTally tally;
  for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
    if (!handle(pkts[i], now, tally)) done[done_count++] = pkts[i];
  }
  if (done_count) rte_pktmbuf_free_bulk(done, done_count);
  live_.rx.add(n);
  if (tally.returned) live_.returned.add(tally.returned);
  if (tally.forwarded) live_.forwarded.add(tally.forwarded);
  if (const uint32_t ended = tally.returned + (opt_.answer ? 0 : tally.forwarded)) live_.ended.add(ended);
  if (tally.other) live_.other.add(tally.other);
  if (tally.late) live_.late.add(tally.late);
  if (tally.answer_drops) live_.answer_drops.add(tally.answer_drops);
  return n;
}

// One received packet: count it, take its latency, learn from it in the
// warm-up, and answer it if it went to a backend. Returns true when the
// packet was kept (queued as an answer), false when the caller frees it.
bool Generator::handle(rte_mbuf* m, uint64_t now, BurstTally& tally) {
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  const dataplane::ParsedPacket p = dataplane::parse_packet(frame, rte_pktmbuf_data_len(m));
  if (p.kind != dataplane::PacketKind::kIpv4 || (p.proto != kProtoTcp && p.proto != kProtoUdp)) {
    ++tally.other;
    return false;
  }
  uint32_t offset, length;
  payload_of(frame, p, offset, length);
  Stamp stamp;
  const bool stamped = read_stamp(frame + offset, length, stamp) && stamp.tsc <= now;
  // Sent in an earlier phase (a warm-up answer that took its time): still
  // answered below, so the DUT sees the flow complete, but not counted.
  const bool late = stamped && stamp.tsc < phase_start_tsc_;
  if (late) ++tally.late;
  if (churning_ && !late && p.proto == kProtoTcp)
    return handle_churn(m, frame, p, flows_.is_client(p.dst_ip), now, tally);

  if (flows_.is_client(p.dst_ip)) {
    // Back at a client: the end of the loop.
    if (!late) ++tally.returned;
    if (measuring_ && stamped && !late) measure_->rtt.record(now - stamp.tsc);
    if (warming_) {
      const uint64_t i = flows_.index_of(p.dst_ip, p.dst_port);
      if (i < flows_.flows() && !test_bit(opened_, i)) {
        opened_[i >> 6] |= 1ull << (i & 63);
        live_.opened.add();
      }
    }
    return false;
  }

  // Forwarded towards a backend (or bounced by a plain forwarder).
  if (!late) ++tally.forwarded;
  if (measuring_ && stamped && !late) measure_->backend.record(now - stamp.tsc);
  if (warming_) {
    if (!dut_mac_known_) {
      std::memcpy(dut_mac_.bytes, frame + 6, 6);
      dut_mac_known_ = true;
    }
    if (!learned_.empty() && stamped && stamp.full && stamp.flow < flows_.flows() &&
        !test_bit(learned_bits_, stamp.flow)) {
      learned_[stamp.flow] = Learned{p.dst_ip, p.src_ip, p.dst_port, p.src_port};
      learned_bits_[stamp.flow >> 6] |= 1ull << (stamp.flow & 63);
      live_.learned.add();
    }
  }
  if (!opt_.answer || !make_answer(frame, p, our_mac_)) return false;
  // The answer's tuple is the received one swapped.
  TxQueue& t = txq_[tx_queue_of(queues_, p.dst_ip, p.src_ip, p.dst_port, p.src_port, p.proto)];
  if (t.answer_count == kAnswerBacklog) {
    ++tally.answer_drops;
    return false;
  }
  t.answers[t.answer_count++] = m;
  return true;
}

void Generator::flush_answers() {
  for (uint16_t q = 0; q < queues_; ++q) {
    TxQueue& t = txq_[q];
    if (!t.answer_count) continue;
    const uint16_t sent = rte_eth_tx_burst(port_, q, t.answers, t.answer_count);
    live_.answered.add(sent);
    if (sent && sent < t.answer_count)
      std::memmove(t.answers, t.answers + sent, sizeof(rte_mbuf*) * (t.answer_count - sent));
    t.answer_count = static_cast<uint16_t>(t.answer_count - sent);
  }
}

// ---------------------------------------------------------------- send

bool Generator::retry_held() {
  bool clear = true;
  for (uint16_t q = 0; q < queues_; ++q) {
    TxQueue& t = txq_[q];
    if (!t.held_count) continue;
    const uint16_t sent = rte_eth_tx_burst(port_, q, t.held + t.held_off, t.held_count);
    live_.tx.add(sent);
    t.held_off = static_cast<uint16_t>(t.held_off + sent);
    t.held_count = static_cast<uint16_t>(t.held_count - sent);
    clear = clear && t.held_count == 0;
  }
  return clear;
}

void Generator::free_held() {
  for (TxQueue& t : txq_) {
    if (!t.held_count) continue;
    rte_pktmbuf_free_bulk(t.held + t.held_off, t.held_count);
    measure_->unsent += t.held_count;
    t.held_count = 0;
  }
}

// Sends our own packets on queue q; what the port refuses is held (the
// queue's held list is empty here: send() retried it first).
void Generator::transmit(uint16_t q, rte_mbuf** pkts, uint16_t n) {
  const uint16_t sent = rte_eth_tx_burst(port_, q, pkts, n);
  live_.tx.add(sent);
  if (sent < n) {
    TxQueue& t = txq_[q];
    t.held_count = static_cast<uint16_t>(n - sent);
    t.held_off = 0;
    std::memcpy(t.held, pkts + sent, sizeof(rte_mbuf*) * t.held_count);
  }
}

// Builds up to `want` packets (as the limiter allows) with fill(frame, now,
// queue) -> length (0: nothing more to send; `queue` := its TX queue),
// transmits them, and keeps what the port refused for the next call.
// Returns how many were built.
template <class Fill>
uint32_t Generator::send(uint64_t now, uint32_t want, RateLimiter& limiter, Fill&& fill) {
  // Answers the port refused go first: new load waits while the DUT is
  // behind, so a stalled DUT costs rate, not our own answers.
  if (answers_pending() || !retry_held()) return 0;
  if (opt_.window) {
    // Closed loop: at most `window` of our packets unanswered at a time.
    // Late answers of an earlier phase may make `back` run ahead of `sent`.
    // Packets lost for good would close the window forever, so after a
    // second without anything received the outstanding ones are written off
    // (a DUT descheduled for milliseconds is slow, not lossy: waiting for it
    // is the point of the window).
    const uint64_t sent = live_.tx.get() - window_tx_base_;
    const uint64_t back = window_back_->get() - window_back_base_;
    uint64_t out = sent > back ? sent - back : 0;
    if (out >= opt_.window && now > last_rx_tsc_ + hz_) {
      open_window(*window_back_);
      out = 0;
    }
    if (out >= opt_.window) return 0;
    want = static_cast<uint32_t>(std::min<uint64_t>(want, opt_.window - out));
  }
  const uint32_t n = limiter.allowance(now, std::min<uint32_t>(want, kTxBurst));
  if (n == 0) return 0;
  rte_mbuf* pkts[kTxBurst];
  if (rte_pktmbuf_alloc_bulk(pool_, pkts, n) != 0) {
    live_.alloc_failures.add();
    return 0;
  }
  uint16_t queue_of[kTxBurst];
  uint32_t built = 0;
  for (; built < n; ++built) {
    rte_mbuf* m = pkts[built];
    const uint16_t len = fill(rte_pktmbuf_mtod(m, uint8_t*), now, queue_of[built]);
    if (len == 0) break;
    m->data_len = len;
    m->pkt_len = len;
  }
  if (built < n) rte_pktmbuf_free_bulk(pkts + built, n - built);
  if (built == 0) return 0;
  limiter.consume(built);
  if (queues_ == 1) {
    transmit(0, pkts, static_cast<uint16_t>(built));
  } else {
    // One burst per queue, each in the order built (a flow keeps its order).
    rte_mbuf* group[kTxBurst];
    for (uint16_t q = 0; q < queues_; ++q) {
      uint16_t g = 0;
      for (uint32_t i = 0; i < built; ++i)
        if (queue_of[i] == q) group[g++] = pkts[i];
      if (g) transmit(q, group, g);
    }
  }
  return built;
}

void Generator::open_window(const Counter& back) {
  window_back_ = &back;
  window_back_base_ = back.get();
  window_tx_base_ = live_.tx.get();
}

// Receives (and answers) until `counter` reaches `target` (and nothing is
// left to transmit), or nothing arrived for `quiet_cycles`, or `max_cycles`
// passed.
void Generator::drain(const std::atomic<bool>& stop, const Counter& counter, uint64_t target,
                      uint64_t max_cycles, uint64_t quiet_cycles) {
  const uint64_t start = rte_rdtsc();
  uint64_t quiet_since = start;
  while (!stop.load(std::memory_order_relaxed)) {
    retry_held();
    if (receive()) quiet_since = rte_rdtsc();
    const uint64_t now = rte_rdtsc();
    if (counter.get() >= target && !answers_pending() && !held_pending()) break;
    if (now - quiet_since > quiet_cycles || now - start > max_cycles) break;
  }
}

// ---------------------------------------------------------------- phases

void Generator::run_warmup(const std::atomic<bool>& stop) {
  warmup_.ran = true;
  warmup_.flows = flows_.flows();
  const CounterValues base = live_.values();
  const uint64_t t0 = rte_rdtsc();
  const uint64_t warmup_pps = opt_.warmup_rate_pps ? opt_.warmup_rate_pps : opt_.rate_pps;
  RateLimiter limiter(warmup_pps, hz_, bucket_depth(warmup_pps));
  warming_ = true;
  phase_start_tsc_ = t0;
  const uint64_t flows = flows_.flows();
  for (uint32_t pass = 1; pass <= kMaxWarmupPasses && !stop.load(std::memory_order_relaxed); ++pass) {
    warmup_.passes = pass;
    live_.pass.store(pass, std::memory_order_relaxed);
    live_.phase.store(static_cast<int>(Phase::kWarmup), std::memory_order_relaxed);
    uint64_t cursor = 0;
    limiter.start(rte_rdtsc());
    open_window(live_.ended);
    auto opener = [&](uint8_t* frame, uint64_t now, uint16_t& queue) -> uint16_t {
      while (cursor < flows) {
        const uint64_t word = opened_[cursor >> 6];
        if (word == ~0ull && (cursor & 63) == 0) {
          cursor += 64;
          continue;
        }
        if (!(word >> (cursor & 63) & 1)) break;
        ++cursor;
      }
      if (cursor >= flows) return 0;
      const uint64_t i = cursor++;
      const Tuple t = flows_.client_tuple(i);
      queue = tx_queue_of(queues_, t.src_ip, t.dst_ip, t.src_port, t.dst_port, opt_.proto);
      opener_.build(frame, t, now, 0, static_cast<uint32_t>(i), seq_++);
      return opener_.length();
    };
    while (!stop.load(std::memory_order_relaxed)) {
      receive();
      if (cursor >= flows) {
        if (retry_held()) break;
        continue;
      }
      send(rte_rdtsc(), kTxBurst, limiter, opener);
    }
    live_.phase.store(static_cast<int>(Phase::kWarmupDrain), std::memory_order_relaxed);
    // Every flow's opener answered, or quiet for 100 ms (the rest are lost).
    drain(stop, live_.opened, flows, hz_ * 2, hz_ / 10);
    if (live_.opened.get() >= flows) break;
  }
  // Answers to openers that arrive after this are "late" in the measured
  // phase (their stamps are older than it), not counted as its traffic.
  warming_ = false;
  warmup_.opened = live_.opened.get();
  warmup_.learned = live_.learned.get();
  warmup_.seconds = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz_);
  warmup_.counters = live_.values() - base;
  if (opt_.from_backend) {
    FrameSpec spec;
    spec.proto = opt_.proto;
    spec.vlan = opt_.vlan;
    spec.src_mac = our_mac_;
    spec.dst_mac = dut_mac_;
    spec.frame_len = opt_.frame_len;
    spec.tcp_flags = kTcpAck | kTcpPsh;
    backend_.init(spec);
  }
}

void Generator::run_measure(const std::atomic<bool>& stop) {
  MeasureResult& r = *measure_;
  r.rtt.clear();
  r.backend.clear();
  const CounterValues base = live_.values();
  RateLimiter limiter(opt_.rate_pps, hz_, bucket_depth(opt_.rate_pps));
  const uint64_t flows = flows_.flows();
  const uint64_t capacity = flows_.capacity();

  auto established = [&](uint8_t* frame, uint64_t now, uint16_t& queue) -> uint16_t {
    const uint64_t i = next_index();
    const Tuple t = flows_.client_tuple(i);
    queue = tx_queue_of(queues_, t.src_ip, t.dst_ip, t.src_port, t.dst_port, opt_.proto);
    data_.build(frame, t, now, 0, static_cast<uint32_t>(i), seq_++);
    return data_.length();
  };
  auto fresh = [&](uint8_t* frame, uint64_t now, uint16_t& queue) -> uint16_t {
    const uint64_t i = new_next_;
    if (++new_next_ == capacity) {
      new_next_ = flows;
      ++r.new_wrapped;
    }
    const Tuple t = flows_.client_tuple(i);
    queue = tx_queue_of(queues_, t.src_ip, t.dst_ip, t.src_port, t.dst_port, opt_.proto);
    syn_new_.build(frame, t, now, kStampRefuse, static_cast<uint32_t>(i), seq_++);
    return syn_new_.length();
  };
  auto from_backend = [&](uint8_t* frame, uint64_t now, uint16_t& queue) -> uint16_t {
    // Skip flows whose tuple the warm-up did not learn (bounded, counted).
    for (int tries = 0; tries < 8; ++tries) {
      const uint64_t i = next_index();
      if (!test_bit(learned_bits_, i)) {
        ++r.skipped;
        continue;
      }
      const Learned& l = learned_[i];
      Tuple t;
      t.src_ip = l.backend_ip;
      t.dst_ip = l.peer_ip;
      t.src_port = l.backend_port;
      t.dst_port = l.peer_port;
      queue = tx_queue_of(queues_, t.src_ip, t.dst_ip, t.src_port, t.dst_port, opt_.proto);
      backend_.build(frame, t, now, 0, static_cast<uint32_t>(i), seq_++);
      return backend_.length();
    }
    return 0;
  };

  live_.phase.store(static_cast<int>(Phase::kMeasure), std::memory_order_relaxed);
  measuring_ = true;
  const uint64_t t0 = rte_rdtsc();
  phase_start_tsc_ = t0;
  const uint64_t end =
      opt_.duration_s > 0 ? t0 + static_cast<uint64_t>(opt_.duration_s * static_cast<double>(hz_)) : ~0ull;
  limiter.start(t0);
  open_window(live_.ended);
  last_rx_tsc_ = t0;
  uint64_t built = 0;
  uint64_t now = t0;
  if (opt_.from_backend && live_.learned.get() == 0) {
    // Nothing to send from the backend side: measure nothing, say so.
    r.skipped = 1;
  } else {
    while (!stop.load(std::memory_order_relaxed)) {
      receive();
      now = rte_rdtsc();
      if (now >= end || (opt_.count && built >= opt_.count)) break;
      const uint32_t want =
          opt_.count ? static_cast<uint32_t>(std::min<uint64_t>(kTxBurst, opt_.count - built)) : kTxBurst;
      if (opt_.mode == Mode::kNew)
        built += send(now, want, limiter, fresh);
      else if (opt_.from_backend)
        built += send(now, want, limiter, from_backend);
      else
        built += send(now, want, limiter, established);
    }
  }
  const uint64_t send_end = now;
  live_.phase.store(static_cast<int>(Phase::kDrain), std::memory_order_relaxed);
  // Everything we built should end its trip here (held packets are retried
  // while draining): back at a client, or, when nothing answers on this
  // port, as the forwarded copy.
  drain(stop, live_.ended, base.ended + built, static_cast<uint64_t>(opt_.drain_s * static_cast<double>(hz_)),
        hz_ / 20);
  measuring_ = false;
  free_held();
  r.counters = live_.values() - base;
  r.send_seconds = static_cast<double>(send_end - t0) / static_cast<double>(hz_);
  r.rx_seconds = static_cast<double>((last_rx_tsc_ > t0 ? last_rx_tsc_ : t0) - t0) / static_cast<double>(hz_);
}

// --mode churn's measured phase: opens connections as slots free up (at
// --rate connections/s), and generator_churn.cc plays each one's steps as
// its packets return.
void Generator::run_churn(const std::atomic<bool>& stop) {
  MeasureResult& r = *measure_;
  r.rtt.clear();
  r.backend.clear();
  const CounterValues base = live_.values();
  RateLimiter limiter(opt_.rate_pps, hz_, bucket_depth(opt_.rate_pps));
  auto open = [&](uint8_t* frame, uint64_t now, uint16_t& queue) -> uint16_t {
    return churn_open(frame, now, queue);
  };

  live_.phase.store(static_cast<int>(Phase::kMeasure), std::memory_order_relaxed);
  const uint64_t t0 = rte_rdtsc();
  const uint64_t end =
      opt_.duration_s > 0 ? t0 + static_cast<uint64_t>(opt_.duration_s * static_cast<double>(hz_)) : ~0ull;
  measuring_ = true;
  churning_ = true;
  phase_start_tsc_ = t0;
  churn_t0_ = t0;
  churn_end_ = end;
  limiter.start(t0);
  last_rx_tsc_ = t0;
  uint64_t opened = 0;
  uint64_t now = t0;
  while (!stop.load(std::memory_order_relaxed)) {
    receive();
    now = rte_rdtsc();
    if (now >= end || (opt_.count && opened >= opt_.count)) break;
    churn_expire(now, kChurnExpirePerPoll);
    uint64_t want = std::min<uint64_t>(kTxBurst, free_slots_.size());
    if (opt_.count) want = std::min(want, opt_.count - opened);
    if (want) opened += send(now, static_cast<uint32_t>(want), limiter, open);
  }
  const uint64_t send_end = now;
  churn_end_ = send_end;  // completions from here on are the drain's
  live_.phase.store(static_cast<int>(Phase::kDrain), std::memory_order_relaxed);
  // The open connections complete or time out (each within --conn-timeout
  // of its SYN).
  const uint64_t drain_end =
      send_end + static_cast<uint64_t>(std::max(opt_.drain_s, opt_.conn_timeout_s) * static_cast<double>(hz_));
  while (!stop.load(std::memory_order_relaxed)) {
    retry_held();
    receive();
    now = rte_rdtsc();
    if (free_slots_.size() == conns_.size() && !answers_pending() && !held_pending()) break;
    if (now > drain_end) break;
    churn_expire(now, kChurnExpirePerPoll);
  }
  for (uint32_t slot = 0; slot < conns_.size(); ++slot)
    if (conns_[slot].step != ChurnStep::kFree) churn_finish(slot, now, false);
  churning_ = false;
  measuring_ = false;
  free_held();
  r.counters = live_.values() - base;
  r.send_seconds = static_cast<double>(send_end - t0) / static_cast<double>(hz_);
  r.rx_seconds = static_cast<double>((last_rx_tsc_ > t0 ? last_rx_tsc_ : t0) - t0) / static_cast<double>(hz_);
}

void Generator::run_responder(const std::atomic<bool>& stop) {
  MeasureResult& r = *measure_;
  const CounterValues base = live_.values();
  live_.phase.store(static_cast<int>(Phase::kMeasure), std::memory_order_relaxed);
  measuring_ = true;
  const uint64_t t0 = rte_rdtsc();
  const uint64_t end =
      opt_.duration_s > 0 ? t0 + static_cast<uint64_t>(opt_.duration_s * static_cast<double>(hz_)) : ~0ull;
  last_rx_tsc_ = t0;
  uint64_t now = t0;
  while (!stop.load(std::memory_order_relaxed) && now < end) {
    receive();
    now = rte_rdtsc();
  }
  measuring_ = false;
  r.counters = live_.values() - base;
  r.send_seconds = static_cast<double>(now - t0) / static_cast<double>(hz_);
  r.rx_seconds = static_cast<double>((last_rx_tsc_ > t0 ? last_rx_tsc_ : t0) - t0) / static_cast<double>(hz_);
}

}  // namespace l4lb::pktgen
