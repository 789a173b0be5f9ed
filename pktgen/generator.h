// The poll loop: one lcore, one port, every RX and TX queue of it
// (--queues N, 1 by default). It sends client
// traffic for a mode, answers as a backend what the DUT forwards to a backend,
// and counts and times what the DUT returns to a client:
//
//   client packet --> DUT --> "to a backend" (dst is not a client address):
//                                 counted as forwarded, answered in place
//   answer        --> DUT --> "to a client" (dst in the client block):
//                                 counted as returned, latency from the stamp
//
// Phases, each driven by TSC deadlines on the poll lcore:
//   warm-up   open every flow once (TCP SYN, or a UDP packet), up to three
//             passes over the flows whose answer has not come back; learns
//             each flow's NAT'd tuple from the forwarded copy (flow index in
//             the stamp) for --from-backend
//   measure   the mode's traffic for --duration or --count, at --rate
//   drain     no more sending; wait until everything is back, or quiet for
//             50 ms, or --drain seconds
// --mode churn replaces the measured phase's sender: it opens whole TCP
// connections (generator_churn.cc) and plays both of their ends, each step
// reacting to the previous packet's return; its drain waits for the open
// connections to complete or time out.
// Fast path rules: no allocation, lock, syscall or log in the loop; bursts of
// 32 (TX) / 64 (RX); the next packets' headers are prefetched.
//
// Several queues (--queues N > 1): each RX queue is polled in turn, and every
// packet, originated or answered, goes out on TX queue tx_queue_of(its
// 5-tuple): one direction of a flow always uses the same queue (the DUT's
// receiving worker owns the flows it opens, DESIGN §4), while the answers a
// backend sends, addressed to the DUT's SNAT address and port, pick their
// queue by their own tuple, so without steering about (N-1)/N of them reach
// a worker that does not own the flow and must be handed over.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "flow_set.h"
#include "latency_histogram.h"
#include "options.h"
#include "packet_builder.h"
#include "rate_limiter.h"

struct rte_mbuf;
struct rte_mempool;

namespace l4lb::pktgen {

// Written by the poll lcore only (load + store, no locked instruction), read
// by the main lcore for progress lines.
class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

enum class Phase : int { kStarting, kWarmup, kWarmupDrain, kMeasure, kDrain, kDone };
const char* phase_name(Phase p);

// A plain copy of the counters, for differences between two moments.
struct CounterValues {
  uint64_t tx = 0;            // packets we originated that the port took
  uint64_t answered = 0;      // answers (as a backend) the port took
  uint64_t answer_drops = 0;  // answers dropped: port full and backlog full
  uint64_t rx = 0;            // every packet received
  uint64_t forwarded = 0;     // received, addressed to a non-client (a backend)
  uint64_t returned = 0;      // received, addressed to one of our clients
  uint64_t ended = 0;         // trips that ended here: returned, plus forwarded when not answering
  uint64_t other = 0;         // received, not IPv4 TCP/UDP (ARP, IPv6, ...)
  uint64_t late = 0;          // received, stamped before the current phase began (not counted above)
  uint64_t alloc_failures = 0;
  CounterValues operator-(const CounterValues& b) const;
};

struct alignas(64) LiveCounters {
  Counter tx, answered, answer_drops, rx, forwarded, returned, ended, other, late, alloc_failures;
  Counter opened;   // warm-up: flows whose opener came back
  Counter learned;  // warm-up: flows whose NAT'd tuple is known
  // churn: connections whose SYN was sent / that completed / that failed
  Counter conns_opened, conns_completed, conns_failed;
  std::atomic<int> phase{static_cast<int>(Phase::kStarting)};
  std::atomic<uint32_t> pass{0};
  CounterValues values() const;
};

struct WarmupResult {
  bool ran = false;
  uint64_t flows = 0;
  uint64_t opened = 0;
  uint64_t learned = 0;
  uint32_t passes = 0;
  double seconds = 0.0;
  CounterValues counters;
};

// --mode churn's connections (the packets are in MeasureResult::counters).
struct ChurnResult {
  uint64_t opened = 0;               // SYNs sent
  uint64_t completed = 0;            // every packet back, by the end of the drain
  uint64_t completed_in_window = 0;  // ... while the sending window was open
  uint64_t failed = 0;               // not complete --conn-timeout after the SYN (or at the end)
  uint64_t stale = 0;                // received for a connection that had failed or ended
  uint64_t unexpected = 0;           // received for a live connection, not the packet its step expects
  uint64_t client_packets = 0;       // built as the client (SYN, ACK, data, FIN, ACK)
  uint64_t backend_packets = 0;      // built as the backend (SYN+ACK, data+ACK, FIN+ACK, ACK)
  uint32_t in_flight_peak = 0;
  std::vector<uint64_t> per_second;  // completed in each whole second of the window
};

struct MeasureResult {
  double send_seconds = 0.0;  // first to last packet sent
  double rx_seconds = 0.0;    // first packet sent to last packet received
  CounterValues counters;
  uint64_t unsent = 0;         // built but never taken by the port (freed at the end)
  uint64_t skipped = 0;        // --from-backend: picks of flows whose tuple was not learned
  uint64_t new_wrapped = 0;    // new mode: times the fresh-tuple space wrapped
  bool stopped_early = false;  // SIGINT
  LatencyHistogram rtt;        // returned packets: stamp -> back at the client (churn: SYN -> complete)
  LatencyHistogram backend;    // forwarded packets: stamp -> at the backend
  ChurnResult churn;
};

// Fast path: the TX queue, of `queues`, of a packet with this wire-order
// 5-tuple. A fixed mix of the tuple (not symmetric: each direction picks its
// own queue), reduced by multiply-shift (no division).
inline uint16_t tx_queue_of(uint16_t queues, uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                            uint16_t dst_port, uint8_t proto) {
  if (queues <= 1) return 0;
  uint64_t h = (uint64_t{src_ip} << 32 | dst_ip) * 0x9e3779b97f4a7c15ull;
  h ^= (uint64_t{proto} << 32 | uint64_t{src_port} << 16 | dst_port) * 0xc2b2ae3d27d4eb4full;
  h ^= h >> 31;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<uint16_t>(((h & 0xffffffffull) * queues) >> 32);
}

class Generator {
 public:
  // Slow path: allocates the flow bitmaps, learned tuples and Zipf sequence.
  Generator(const Options& options, const FlowSet& flows, uint16_t port_id, rte_mempool* pool,
            const Mac& our_mac, uint64_t tsc_hz);

  // The poll loop; returns when done or when `stop` becomes true.
  void run(const std::atomic<bool>& stop);

  const LiveCounters& live() const { return live_; }
  const WarmupResult& warmup() const { return warmup_; }
  const MeasureResult& measure() const { return *measure_; }

 private:
  static constexpr uint16_t kTxBurst = 32;
  static constexpr uint16_t kRxBurst = 64;
  static constexpr uint16_t kAnswerBacklog = 2048;
  static constexpr uint32_t kMaxWarmupPasses = 3;
  // churn: slots checked for --conn-timeout per poll (each is looked at
  // every in-flight / 8 polls, far more often than a 1 s timeout needs)
  static constexpr uint32_t kChurnExpirePerPoll = 8;

  struct Learned {
    uint32_t backend_ip;  // wire order, as forwarded by the DUT
    uint32_t peer_ip;     // the DUT's source towards the backend (SNAT, or the client for DNAT)
    uint16_t backend_port;
    uint16_t peer_port;
  };

  void run_warmup(const std::atomic<bool>& stop);
  void run_measure(const std::atomic<bool>& stop);
  void run_responder(const std::atomic<bool>& stop);

  struct BurstTally {
    uint32_t returned = 0;
    uint32_t forwarded = 0;
    uint32_t other = 0;
    uint32_t late = 0;
    uint32_t answer_drops = 0;
  };

  // One TX queue's packets the port refused: our own (sent first next time)
  // and answers (sent before any new load).
  struct TxQueue {
    rte_mbuf* held[kTxBurst];
    uint16_t held_off = 0;
    uint16_t held_count = 0;
    uint16_t answer_count = 0;
    rte_mbuf* answers[kAnswerBacklog];
  };

  uint32_t receive();  // every RX queue once, then the answers
  uint16_t receive_queue(uint16_t q);
  bool handle(rte_mbuf* m, uint64_t now, BurstTally& tally);
  void flush_answers();
  bool answers_pending() const {
    for (const TxQueue& t : txq_)
      if (t.answer_count) return true;
    return false;
  }
  bool held_pending() const {
    for (const TxQueue& t : txq_)
      if (t.held_count) return true;
    return false;
  }
  void transmit(uint16_t q, rte_mbuf** pkts, uint16_t n);  // our packets; the refused are held
  bool retry_held();
  template <class Fill>
  uint32_t send(uint64_t now, uint32_t want, RateLimiter& limiter, Fill&& fill);
  void drain(const std::atomic<bool>& stop, const Counter& counter, uint64_t target, uint64_t max_cycles,
             uint64_t quiet_cycles);
  void free_held();
  // Starts counting outstanding packets for --window: what we send from now
  // on, minus what `back` counts from now on.
  void open_window(const Counter& back);

  // --mode churn (generator_churn.cc). A connection lives in a slot; its
  // client ISN is slot << 16 | (generation & 7) << 13, so every packet names
  // its slot (a client packet by its seq, a backend packet by its ack) and a
  // packet of an earlier connection in the same slot is told apart (by the
  // client tuple, or the generation bits of its seq).
  enum class ChurnStep : uint8_t {
    kFree,
    kSyn,         // SYN on its way to the backend
    kSynAck,      // SYN+ACK on its way to the client
    kData,        // handshake ACK and data on their way to the backend
    kDataAck,     // the backend's data+ACK on its way to the client
    kFin,         // client-first: the client's FIN+ACK on its way to the backend
    kFinAck,      // client-first: the backend's FIN+ACK on its way to the client
    kLastAck,     // client-first: the client's last ACK on its way to the backend
    kBackendFin,  // backend-first: the backend's FIN+ACK on its way to the client
    kClientFin,   // backend-first: the client's FIN+ACK on its way to the backend
    kBackendAck,  // backend-first: the backend's last ACK on its way to the client
  };
  struct ChurnConn {
    uint64_t tuple = 0;  // flow index of its client tuple
    uint64_t start = 0;  // TSC when its SYN was built
    ChurnStep step = ChurnStep::kFree;
    uint8_t gen = 0;
    bool handshake_acked = false;  // the client's handshake ACK reached the backend
  };
  static uint32_t churn_client_isn(uint32_t slot, uint8_t gen) {
    return slot << 16 | uint32_t{gen & 7u} << 13;
  }
  static uint32_t churn_backend_isn(uint32_t client_isn) { return client_isn ^ 0xFFFF0000u; }
  void init_churn_templates();
  void run_churn(const std::atomic<bool>& stop);
  uint16_t churn_open(uint8_t* frame, uint64_t now, uint16_t& queue);
  bool handle_churn(rte_mbuf* m, uint8_t* frame, const dataplane::ParsedPacket& p, bool to_client, uint64_t now,
                    BurstTally& tally);
  void churn_finish(uint32_t slot, uint64_t now, bool ok);
  void churn_expire(uint64_t now, uint32_t budget);
  // Queues a built packet (rte_mbuf with data) as the next thing to send on
  // its tuple's TX queue; false when the backlog is full (freed, counted).
  bool queue_reaction(rte_mbuf* m, const Tuple& t, BurstTally& tally);

  uint64_t next_index() {
    if (zipf_.empty()) {
      const uint64_t i = rr_;
      if (++rr_ == flows_.flows()) rr_ = 0;
      return i;
    }
    return zipf_[zipf_pos_++ & (zipf_.size() - 1)];
  }
  bool test_bit(const std::vector<uint64_t>& bits, uint64_t i) const { return bits[i >> 6] >> (i & 63) & 1; }

  Options opt_;
  const FlowSet& flows_;
  uint16_t port_;
  rte_mempool* pool_;
  Mac our_mac_;
  Mac dut_mac_;
  bool dut_mac_known_;
  uint64_t hz_;

  PacketTemplate opener_;   // warm-up: SYN or UDP, long enough for the full stamp
  PacketTemplate data_;     // established: ACK or UDP
  PacketTemplate syn_new_;  // new: SYN that asks the responder to refuse
  PacketTemplate backend_;  // --from-backend: ACK or UDP from the backend side
  // churn: pure SYN / ACK / FIN+ACK (no payload, padded to --size) and the
  // client's data (PSH+ACK filling --size)
  PacketTemplate churn_syn_, churn_ack_, churn_fin_, churn_data_;
  std::vector<ChurnConn> conns_;
  std::vector<uint32_t> free_slots_;  // a stack
  uint32_t expire_cursor_ = 0;
  uint64_t churn_t0_ = 0;
  uint64_t churn_end_ = 0;  // the sending window's end (TSC)
  bool churning_ = false;

  std::vector<uint64_t> opened_;  // warm-up: one bit per flow
  std::vector<uint64_t> learned_bits_;
  std::vector<Learned> learned_;
  std::vector<uint32_t> zipf_;
  uint64_t zipf_pos_ = 0;
  uint64_t rr_ = 0;
  uint64_t new_next_ = 0;
  uint32_t seq_ = 0;

  const Counter* window_back_ = nullptr;
  uint64_t window_back_base_ = 0;
  uint64_t window_tx_base_ = 0;

  uint64_t phase_start_tsc_ = 0;  // packets stamped earlier are counted as late
  bool warming_ = false;
  bool measuring_ = false;
  uint64_t last_rx_tsc_ = 0;

  uint16_t queues_ = 1;
  std::vector<TxQueue> txq_;  // one per TX queue

  LiveCounters live_;
  WarmupResult warmup_;
  std::unique_ptr<MeasureResult> measure_;
};

}  // namespace l4lb::pktgen
