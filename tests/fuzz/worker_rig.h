// The packet fuzzer's second half: the real Worker (src/dataplane, compiled
// into the target with the fuzzer's instrumentation), fresh for every
// input, on a net_ring port in an EAL started once (--no-huge --no-pci, as
// the EAL tests do). An input becomes a short scenario: its frame, then
// either a fixed follow-up (the backend's answer, RSTs out of and inside
// the window, the frame again, time past every timeout) or the steps the
// input spells out (packet_fuzz.cc explains the layout). After every packet
// the rig checks, besides agreeing with the model (packet_model.h):
//  - the packet ended in exactly one place (transmitted, a slow-path ring,
//    a hand-off ring, or one drop counter), and no mbuf is left in use;
//  - Worker::audit() finds nothing;
//  - a RST outside the tracked window is dropped as rst_out_of_window and
//    changes no flow at all; one inside closes its flow;
//  - nothing addressed to a VIP's unserved port reaches a kernel ring;
//  - confirmed flows are never evicted, and each flow that disappears while
//    a packet is handled is an unconfirmed one, counted as evicted;
//  - states, confirmation and tracked sequence edges follow the model;
//    sending flows idle past their state's timeout away, and only those.
// Only packet_fuzz.cc includes this; it aborts through L4LB_FUZZ_CHECK.
#pragma once

#include <arpa/inet.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_random.h>
#include <rte_ring.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../common/packet_builder.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/classify.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/port.h"
#include "packet_model.h"

namespace l4lb::fuzz {

using namespace l4lb::dataplane;

// The fake TSC's rate, and so the snapshots' (SnapshotInputs::tsc_hz).
inline constexpr uint64_t kTscHz = 1'000'000'000;
inline constexpr uint32_t kMaxRigWorkers = 4;
inline constexpr uint32_t kMaxFrame = 2000;  // fits one mbuf's data room
inline const MacAddress kPortMac{{0x02, 0, 0, 0, 0, 0x01}};

// Recomputes the IPv4 header and TCP/UDP checksums from scratch (over the
// datagram as checksums_valid reads it). keep_udp_zero: a zero UDP checksum
// stays (RFC 768: none was computed).
inline void fix_checksums(uint8_t* frame, const ParsedPacket& p, bool keep_udp_zero) {
  uint8_t* ip4 = frame + p.l3_offset;
  ip4[10] = ip4[11] = 0;
  const uint16_t ip_sum = test::full_checksum(ip4, 20);
  ip4[10] = static_cast<uint8_t>(ip_sum >> 8);
  ip4[11] = static_cast<uint8_t>(ip_sum);
  uint8_t* l4 = frame + p.l4_offset;
  const size_t at = p.proto == kProtoTcp ? 16 : 6;
  if (p.proto == kProtoUdp && keep_udp_zero && l4[6] == 0 && l4[7] == 0) return;
  const size_t l4_len = p.ip_total_length - 20u;
  l4[at] = l4[at + 1] = 0;
  uint32_t pseudo = 0;
  for (int i = 12; i < 20; i += 2) pseudo += uint32_t{ip4[i]} << 8 | ip4[i + 1];
  pseudo += p.proto + static_cast<uint32_t>(l4_len);
  uint16_t sum = test::full_checksum(l4, l4_len, pseudo);
  if (p.proto == kProtoUdp && sum == 0) sum = 0xFFFF;
  l4[at] = static_cast<uint8_t>(sum >> 8);
  l4[at + 1] = static_cast<uint8_t>(sum);
}

// L4LB_FUZZ_TRACE=1 in the environment: one line per packet and step, to
// read what a reproducer does.
inline bool trace() {
  static const bool on = std::getenv("L4LB_FUZZ_TRACE") != nullptr;
  return on;
}
inline std::string ip_text(uint32_t wire) {
  const auto* b = reinterpret_cast<const uint8_t*>(&wire);
  return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
         std::to_string(b[3]);
}

// ------------------------------------------------------------ process-wide

// What every input's worker runs on: made once by start_rig().
struct Rig {
  rte_mempool* pool = nullptr;
  std::unique_ptr<dpdk::Port> port;
  rte_ring* rx = nullptr;  // the ring port's queues
  rte_ring* tx = nullptr;
  rte_ring* slow = nullptr;
  rte_ring* control = nullptr;
  rte_ring* inject = nullptr;
  rte_ring* snapshots = nullptr;
  rte_ring* handoff[kMaxRigWorkers] = {};  // to worker i
};

inline Rig& rig() {
  static Rig r;
  return r;
}

inline rte_ring* make_ring(const char* name) {
  rte_ring* r = rte_ring_create(name, 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  L4LB_FUZZ_CHECK(r != nullptr);
  return r;
}

// Starts the EAL and makes the port, rings and mbuf pool. Aborts when it
// cannot: a fuzzer that silently skipped the worker would check nothing.
inline void start_rig() {
  const char* args[] = {"packet_fuzz",    "--no-huge",   "--no-pci", "-m", "256", "--no-shconf",
                        "--no-telemetry", "--log-level", "*:error",  "-l", "0"};
  if (rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) < 0) {
    std::fprintf(stderr, "packet_fuzz: cannot start the EAL\n");
    std::abort();
  }
  Rig& r = rig();
  // No per-lcore cache, so the in-use count is exact.
  r.pool = rte_pktmbuf_pool_create("fuzz_mbufs", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  L4LB_FUZZ_CHECK(r.pool != nullptr);
  r.rx = make_ring("fuzz_rx");
  r.tx = make_ring("fuzz_tx");
  r.slow = make_ring("fuzz_slow");
  r.control = make_ring("fuzz_control");
  r.inject = make_ring("fuzz_inject");
  r.snapshots = make_ring("fuzz_snapshots");
  for (uint32_t w = 0; w < kMaxRigWorkers; ++w)
    r.handoff[w] = make_ring(("fuzz_handoff" + std::to_string(w)).c_str());
  const int id = rte_eth_from_rings("fuzz_port", &r.rx, 1, &r.tx, 1, 0);
  L4LB_FUZZ_CHECK(id >= 0);
  r.port = std::make_unique<dpdk::Port>(static_cast<uint16_t>(id), dpdk::PortQueues{1, 1, 256, 256, false},
                                        r.pool);
}

// The sequence space a TCP segment occupies: its payload, and one each
// for SYN and FIN.
inline uint32_t sequence_space(const uint8_t* frame, const ParsedPacket& p) {
  if (p.kind != PacketKind::kIpv4 || p.proto != kProtoTcp) return 0;
  const uint32_t header = (frame[p.l4_offset + 12] >> 4) * 4u;
  return p.ip_total_length - 20u - header + ((p.tcp_flags & kTcpSyn) ? 1 : 0) +
         ((p.tcp_flags & kTcpFin) ? 1 : 0);
}

// A translated ICMP error is still one, and its ICMP checksum (computed
// afresh) checks out. The IPv4 checksums are updated incrementally, so they
// stay as right or wrong as the fuzzer made them.
inline bool icmp_checksums_valid(const std::vector<uint8_t>& f) {
  const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
  if (p.kind != PacketKind::kIpv4 || p.proto != kProtoIcmp) return false;
  const size_t end = p.l3_offset + size_t{p.ip_total_length};
  return static_cast<uint16_t>(~l4lb::csum_fold(l4lb::csum_partial(f.data() + p.l4_offset, end - p.l4_offset))) == 0;
}

inline std::vector<std::vector<uint8_t>> drain(rte_ring* ring) {
  std::vector<std::vector<uint8_t>> frames;
  void* p;
  while (rte_ring_dequeue(ring, &p) == 0) {
    auto* m = static_cast<rte_mbuf*>(p);
    L4LB_FUZZ_CHECK(m->nb_segs == 1);
    const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
    frames.emplace_back(d, d + rte_pktmbuf_data_len(m));
    rte_pktmbuf_free(m);
  }
  return frames;
}

// ------------------------------------------------------------ one input

// How the worker and its config are set up for an input.
struct RigOptions {
  bool reject = false;         // closed_vip_ports: reject
  bool refuse = false;         // table_full: refuse (no eviction)
  uint32_t capacity = 64;      // flows
  uint32_t pools = 4;          // SNAT pools
  uint32_t max_embryonic = 0;  // on every VIP
};

// One input's step: see packet_fuzz.cc for the encoding.
enum class Op : uint8_t { kClient, kBackend, kWait, kReload, kRaw, kCount };
struct Step {
  Op op = Op::kRaw;
  uint8_t flags = 0;   // TCP flags of the segment sent
  uint32_t delta = 0;  // its sequence number, relative to the sender's next
  uint8_t pause = 0;   // time before the step, in 50 ms
  uint8_t arg = 0;     // kClient/kBackend: which flow (source port offset); kWait: seconds; kReload: what
};

class Scenario {
 public:
  // `base`: the config; `frame`: the input's frame (any bytes).
  Scenario(const config::Config& base, const RigOptions& o, uint32_t workers, uint32_t self,
           const uint8_t* frame, uint32_t len)
      : config_(base),
        view_(config_),
        workers_(workers),
        self_(self),
        partition_(base.dataplane.snat_port_min, base.dataplane.snat_port_max, workers),
        frame_(frame, frame + len),
        base_(parse_packet(frame_.data(), len)) {
    config_.dataplane.closed_vip_ports =
        o.reject ? config::ClosedVipPortPolicy::kReject : config::ClosedVipPortPolicy::kDrop;
    config_.dataplane.table_full =
        o.refuse ? config::TableFullPolicy::kRefuse : config::TableFullPolicy::kEvictEmbryonic;
    for (auto& v : config_.vips) v.max_embryonic = o.max_embryonic;
    for (const auto& n : config_.neighbors) std::memcpy(neighbours_[n.address].bytes, n.mac.data(), 6);
    view_.learn(config_);
    publish();
    WorkerSetup s;
    s.index = self;
    s.worker_count = workers;
    s.port_id = rig().port->id();
    s.snapshot_ring = rig().snapshots;
    s.slow_path_ring = rig().slow;
    s.control_ring = rig().control;
    s.inject_ring = rig().inject;
    for (uint32_t w = 0; w < workers; ++w)
      if (w != self) s.handoff_out[w] = rig().handoff[w];
    s.flow_capacity = o.capacity;
    s.snat_port_min = base.dataplane.snat_port_min;
    s.snat_port_max = base.dataplane.snat_port_max;
    s.snat_pools = o.pools;
    s.evict_unconfirmed = !o.refuse;
    rte_srand(0x5eed);  // the flow table's hash seed: the same run for the same input
    void* stale;
    while (rte_ring_dequeue(rig().snapshots, &stale) == 0) {
    }
    worker_ = ::new (worker_storage()) Worker(s, current());  // global placement new: Worker's own takes a socket
    base_valid_ = base_.kind == PacketKind::kIpv4 && test::checksums_valid(frame_.data(), frame_.size());
  }

  ~Scenario() {
    worker_->~Worker();
    worker_ = nullptr;
    void* stale;
    while (rte_ring_dequeue(rig().snapshots, &stale) == 0) {
    }
    for (rte_ring* r : {rig().tx, rig().slow, rig().control, rig().rx}) drain(r);
    for (rte_ring* r : rig().handoff) drain(r);
    L4LB_FUZZ_CHECK(rte_mempool_in_use_count(rig().pool) == 0);
  }

  bool usable() const { return frame_.size() <= kMaxFrame; }

  // The fixed follow-up of an input that spells out no steps. Audited at
  // the end (and at the sweep): a full audit costs more than the rest of
  // the input, and what breaks the books stays broken until it runs.
  void default_script() {
    audit_each_packet_ = false;
    send(frame_);
    check_audit();
    if (!l4()) return wait(1000);
    const bool tcp = base_.proto == kProtoTcp;
    const bool syn = tcp && (base_.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
    run(Step{Op::kBackend, static_cast<uint8_t>(syn ? kTcpSyn | kTcpAck : kTcpAck), 0, 0, 0});
    if (tcp) {
      // The client ACKs, so both sides' ACKs are known: RSTs are judged.
      run(Step{Op::kClient, kTcpAck, 0, 0, 0});
      run(Step{Op::kClient, kTcpRst | kTcpAck, 0x80000000u, 0, 0});  // far outside the window
      run(Step{Op::kBackend, kTcpRst, 0x00200000u, 0, 0});           // 2 MiB past the client's ACK: outside
      run(Step{Op::kBackend, kTcpRst, 0xFFFF0000u, 0, 0});           // 64 KiB behind it: inside
      run(Step{Op::kClient, kTcpSyn, 0, 0, 0});                      // a new connection on the tuple
    }
    check_audit();
    wait(1000);
  }

  void run(const Step& s) {
    now_ += uint64_t{s.pause} * kTscHz / 20;
    if (trace() && (s.op == Op::kWait || s.op == Op::kReload))
      std::fprintf(stderr, "packet_fuzz: t=%.2fs %s %u\n", double(now_) / kTscHz,
                   s.op == Op::kWait ? "wait" : "reload", s.arg);
    switch (s.op) {
      case Op::kClient:
        return client(s);
      case Op::kBackend:
        return backend(s);
      case Op::kWait:
        return wait(s.arg);
      case Op::kReload:
        return reload(s.arg);
      case Op::kRaw:
      case Op::kCount:
        return send(frame_);
    }
  }

 private:
  // What the sender of each direction of a flow has sent so far.
  struct Track {
    uint32_t next[2] = {0, 0x22000000};  // next sequence number: client, backend
    bool known = false;                  // reverse tuple below seen in the worker
    FlowKey reverse{};                   // the backend's side: (backend, snat) as it last was
  };

  // Flow `variant`'s senders; the client starts where the input's frame does.
  Track& track(uint8_t variant) {
    auto [it, made] = tracks_.try_emplace(variant);
    if (made) it->second.next[0] = base_.tcp_seq;
    return it->second;
  }

  bool l4() const {
    return base_.kind == PacketKind::kIpv4 && (base_.proto == kProtoTcp || base_.proto == kProtoUdp) &&
           frame_.size() >= base_.l4_offset + 8u;
  }
  const Snapshot* current() const { return snapshots_.back().get(); }

  void publish() {
    controlplane::SnapshotInputs in{&config_, &neighbours_, kPortMac, kTscHz, ++generation_, &health_};
    snapshots_.push_back(controlplane::build_snapshot(in, state_));
    if (worker_) L4LB_FUZZ_CHECK(rte_ring_enqueue(rig().snapshots, const_cast<Snapshot*>(current())) == 0);
  }

  // The client's segment of flow `variant`: the input's frame from a source
  // port `variant` higher, with the step's flags and sequence number, and
  // with ACK, acknowledging what the backend sent.
  void client(const Step& s) {
    if (!l4()) return send(frame_);
    std::vector<uint8_t> f = frame_;
    Track& t = track(s.arg);
    uint8_t* l4h = f.data() + base_.l4_offset;
    const uint16_t sport = static_cast<uint16_t>(ntohs(base_.src_port) + s.arg);
    l4h[0] = static_cast<uint8_t>(sport >> 8);
    l4h[1] = static_cast<uint8_t>(sport);
    uint32_t seq = 0;
    if (base_.proto == kProtoTcp) {
      seq = t.next[0] + s.delta;
      for (int i = 0; i < 4; ++i) l4h[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
      if (s.flags & kTcpAck)
        for (int i = 0; i < 4; ++i) l4h[8 + i] = static_cast<uint8_t>(t.next[1] >> (24 - 8 * i));
      l4h[13] = s.flags;
    }
    const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    if (base_valid_) fix_checksums(f.data(), p, true);
    send(f);
    if (!(s.flags & kTcpRst)) t.next[0] = seq + sequence_space(f.data(), p);
    remember(s.arg, p);
  }

  // The backend's answer on flow `variant`: to the SNAT address and port
  // (FNAT) or the client (DNAT) its flow had, even after the flow is gone.
  void backend(const Step& s) {
    if (!l4()) return send(frame_);
    const uint16_t sport = static_cast<uint16_t>(ntohs(base_.src_port) + s.arg);
    const FlowKey fwd = make_flow_key(base_.src_ip, base_.dst_ip, htons(sport), base_.dst_port, base_.proto);
    remember(s.arg, fwd);
    Track& t = track(s.arg);
    if (!t.known) return send(frame_);
    test::PacketSpec r;
    std::memcpy(r.dst_mac, kPortMac.bytes, 6);
    r.proto = t.reverse.proto;
    r.src_ip = t.reverse.src_ip;
    r.dst_ip = t.reverse.dst_ip;
    r.src_port = t.reverse.src_port;
    r.dst_port = t.reverse.dst_port;
    r.tcp_flags = s.flags;
    r.tcp_seq = t.next[1] + s.delta;
    r.tcp_ack = t.next[0];
    r.payload.assign(s.pause & 7, 'x');
    const std::vector<uint8_t> f = test::build_packet(r);
    send(f);
    const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    if (!(s.flags & kTcpRst)) t.next[1] = r.tcp_seq + sequence_space(f.data(), p);
  }

  // Notes the reverse tuple of the flow that a forward packet hit or made.
  void remember(uint8_t variant, const ParsedPacket& p) {
    remember(variant, make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto));
  }
  void remember(uint8_t variant, const FlowKey& fwd) {
    const uint32_t v = worker_->flows().lookup(fwd);
    if (v == FlowTable::kMiss || FlowTable::is_reverse(v)) return;
    track(variant).reverse = reverse_key(worker_->flows().entry(FlowTable::entry_of(v)));
    track(variant).known = true;
  }

  // A new generation of the config (DESIGN §6 reload), picked up by the
  // worker before its next packet. `what`: bits 0-2 the change, bits 3-5
  // which VIP (mod their number), bits 6-7 which backend or address.
  void reload(uint8_t what) {
    const uint32_t n = static_cast<uint32_t>(config_.vips.size());
    config::VipConfig& vip = config_.vips[((what >> 3) & 7) % n];
    const uint32_t which = what >> 6;
    switch (what & 7) {
      case 0:  // a backend removed (its flows drain)
        if (vip.backends.size() > 1) vip.backends.erase(vip.backends.begin() + which % vip.backends.size());
        break;
      case 1:  // every neighbour moves to a new MAC (existing flows follow)
        for (auto& [address, mac] : neighbours_) mac.bytes[4] = static_cast<uint8_t>(generation_);
        break;
      case 2:  // an FNAT VIP moves to another SNAT address (the old one's flows drain)
        if (vip.mode == config::NatMode::kFnat) vip.snat = {0x0A630000u + 3 + which};  // 10.99.0.3+
        break;
      case 3:
        config_.dataplane.closed_vip_ports =
            config_.dataplane.closed_vip_ports == config::ClosedVipPortPolicy::kDrop
                ? config::ClosedVipPortPolicy::kReject
                : config::ClosedVipPortPolicy::kDrop;
        break;
      case 4: {  // health flips a backend
        const auto& b = vip.backends[which % vip.backends.size()];
        const std::string key = controlplane::backend_key(vip.name, b.address, b.port);
        const bool up = health_.count(key) ? health_[key] : true;
        health_[key] = !up;
        break;
      }
      case 5: {  // a VIP's backends replaced by a new one (DNAT: the old ones' replies drain)
        const uint32_t address = 0x0A630000u + 50 + generation_ % 8;  // 10.99.0.50+
        vip.backends = {{address, vip.port, 1, 0}};
        neighbours_[address] = {{0x02, 0, 0, 0, 1, static_cast<uint8_t>(address)}};
        break;
      }
      case 6:  // weights change: Maglev moves some slots
        for (auto& b : vip.backends) b.weight = 1 + (b.weight + which) % 3;
        break;
      default:  // the same config again
        break;
    }
    view_.learn(config_);
    publish();
  }

  // Time passes; one full aging sweep. Exactly the flows idle past their
  // state's timeout (the model's, from the config) go.
  void wait(uint32_t seconds) {
    now_ += uint64_t{seconds} * kTscHz;
    worker_->poll_once(now_);
    drain_outputs();
    const std::vector<FlowEntry> before = entries();
    const WorkerCounters& c = worker_->counters();
    const uint64_t gone_before = c.flows_expired.get() + c.flows_closed.get();
    worker_->age_flows(now_, worker_->flows().capacity());
    const uint32_t now = flow_clock(now_);
    uint64_t expected_gone = 0;
    for (uint32_t i = 0; i < before.size(); ++i) {
      const FlowEntry& e = before[i];
      if (e.state == FlowState::kFree) continue;
      const uint32_t limit = flow_clock_ticks(model_timeout_s(config_.timeouts, e.state), kTscHz);
      const int32_t idle = static_cast<int32_t>(now - e.last_seen);
      const bool due = idle > 0 && static_cast<uint32_t>(idle) > limit;
      expected_gone += due;
      const FlowEntry& after = worker_->flows().entry(i);
      L4LB_FUZZ_CHECK((after.state == FlowState::kFree) == due);
      // A flow kept is untouched but for its links in the unconfirmed lists
      // (a neighbour on them may have gone).
      if (!due) L4LB_FUZZ_CHECK(std::memcmp(&after, &e, offsetof(FlowEntry, unconfirmed_prev)) == 0);
    }
    L4LB_FUZZ_CHECK(c.flows_expired.get() + c.flows_closed.get() - gone_before == expected_gone);
    check_audit();
  }

  std::vector<FlowEntry> entries() const {
    std::vector<FlowEntry> v(worker_->flows().capacity());
    for (uint32_t i = 0; i < v.size(); ++i) v[i] = worker_->flows().entry(i);
    return v;
  }

  void drain_outputs() {
    for (rte_ring* r : {rig().tx, rig().slow, rig().control}) drain(r);
    for (rte_ring* r : rig().handoff) drain(r);
  }

  void check_audit() {
    const auto problems = worker_->audit();
    for (const auto& problem : problems) std::fprintf(stderr, "packet_fuzz: audit: %s\n", problem.c_str());
    L4LB_FUZZ_CHECK(problems.empty());
    L4LB_FUZZ_CHECK(rte_mempool_in_use_count(rig().pool) == held());
  }

  // Fragments waiting for their first: the only mbufs the worker keeps.
  unsigned held() const { return static_cast<unsigned>(worker_->counters().fragments_held.get()); }

  struct Counts {
    std::array<uint64_t, static_cast<size_t>(DropReason::kCount)> drops;
    uint64_t created, closed, expired, evicted, evicted_for_port, reset, rejects, control, slow, handoffs,
        icmp_translated;
  };
  Counts counts() const {
    const WorkerCounters& c = worker_->counters();
    Counts k{};
    for (size_t i = 0; i < k.drops.size(); ++i) k.drops[i] = c.drops[i].get();
    k.created = c.flows_created.get();
    k.closed = c.flows_closed.get();
    k.expired = c.flows_expired.get();
    k.evicted = c.flows_evicted.get();
    k.evicted_for_port = c.flows_evicted_for_port.get();
    k.reset = c.flows_reset.get();
    k.rejects = c.closed_port_rejects.get();
    k.icmp_translated = c.icmp_errors_translated.get();
    k.control = c.control_packets.get();
    k.slow = c.slow_path_packets.get();
    for (uint32_t w = 0; w < kMaxWorkers; ++w) k.handoffs += c.handoffs_out[w].get();
    return k;
  }

  // One frame through the worker, and every check on what it did.
  void send(const std::vector<uint8_t>& frame) {
    worker_->poll_once(now_);  // picks up a new snapshot; ages what is due
    drain_outputs();
    const Snapshot& snap = *current();
    L4LB_FUZZ_CHECK(worker_->acked_generation() == snap.generation);
    const auto len = static_cast<uint32_t>(frame.size());
    const ParsedPacket p = parse_packet(frame.data(), len);
    Expected ex = model_classify(view_, partition_, workers_, self_, false, p);
    check_oracle(snap, p, ex);  // classify() is the list after step 0
    if (p.kind == PacketKind::kIpv4 && p.is_fragment()) return send_fragment(frame, p, ex);
    model_icmp_error(view_, partition_, workers_, self_, false, p, frame.data(), ex);

    const std::vector<FlowEntry> before = entries();
    const Counts b = counts();
    const FlowKey key = make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto);
    const bool flow_route = (ex.route == Route::kForward || ex.route == Route::kReverse) && !ex.hand_off;
    const uint32_t hit = flow_route ? worker_->flows().lookup(key) : FlowTable::kMiss;

    rte_mbuf* m = rte_pktmbuf_alloc(rig().pool);
    L4LB_FUZZ_CHECK(m != nullptr);
    if (len) std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(len)), frame.data(), len);
    worker_->process_burst(&m, 1, now_);

    const auto tx = drain(rig().tx);
    const auto slow = drain(rig().slow);
    const auto control = drain(rig().control);
    size_t handed[kMaxRigWorkers] = {};
    for (uint32_t w = 0; w < kMaxRigWorkers; ++w) handed[w] = drain(rig().handoff[w]).size();
    const Counts a = counts();
    uint64_t dropped = 0;
    for (size_t i = 0; i < a.drops.size(); ++i) dropped += a.drops[i] - b.drops[i];
    const auto drop_of = [&](DropReason r) { return a.drops[size_t(r)] - b.drops[size_t(r)]; };
    size_t handed_total = 0;
    for (size_t n : handed) handed_total += n;

    if (trace()) {
      const char* where = !tx.empty()        ? "sent"
                          : !slow.empty()    ? "slow path"
                          : !control.empty() ? "control"
                          : handed_total     ? "handed off"
                                             : "dropped";
      const char* why = "";
      for (size_t i = 0; i < a.drops.size(); ++i)
        if (a.drops[i] != b.drops[i]) why = kDropReasonNames[i];
      const uint32_t v = worker_->flows().lookup(key);
      const char* state = v == FlowTable::kMiss
                              ? "-"
                              : kFlowStateNames[size_t(worker_->flows().entry(FlowTable::entry_of(v)).state)];
      std::fprintf(
          stderr,
          "packet_fuzz: t=%.2fs proto %u flags %02x seq %08x %s:%u > %s:%u: %s %s; its flow %s; %u flows\n",
          double(now_) / kTscHz, p.proto, p.tcp_flags, p.tcp_seq, ip_text(p.src_ip).c_str(),
          ntohs(p.src_port), ip_text(p.dst_ip).c_str(), ntohs(p.dst_port), where, why, state,
          worker_->flows().active());
    }
    // Exactly one place for the packet, and the counters say which.
    L4LB_FUZZ_CHECK(tx.size() + slow.size() + control.size() + handed_total + dropped == 1);
    L4LB_FUZZ_CHECK(a.slow - b.slow == slow.size() && a.control - b.control == control.size());
    L4LB_FUZZ_CHECK(a.handoffs - b.handoffs == handed_total);
    // Nothing to a VIP's unserved port reaches the kernel.
    if (to_unserved_vip_port(view_, p)) L4LB_FUZZ_CHECK(slow.empty() && control.empty() && handed_total == 0);

    if (ex.hand_off) {
      L4LB_FUZZ_CHECK(handed[ex.owner] == 1);
    } else {
      switch (ex.route) {
        case Route::kDrop:
          L4LB_FUZZ_CHECK(drop_of(ex.drop) == 1);
          break;
        case Route::kControl:
          L4LB_FUZZ_CHECK(control.size() == 1);
          break;
        case Route::kSlowPath:
          L4LB_FUZZ_CHECK(slow.size() == 1);
          break;
        case Route::kClosedPort:
          if (tx.empty()) {
            L4LB_FUZZ_CHECK(drop_of(DropReason::kClosedVipPort) == 1);
          } else {
            L4LB_FUZZ_CHECK(snap.reject_closed_ports && a.rejects - b.rejects == 1);
            check_reject(frame, p, tx[0]);
          }
          break;
        case Route::kIcmpError:
          // Translated (a valid ICMP checksum) or dropped for want of the
          // flow or its next hop; without the flow, one from the client's
          // side about FNAT goes on to the next worker.
          L4LB_FUZZ_CHECK(slow.empty() && control.empty());
          if (handed_total) {
            L4LB_FUZZ_CHECK(ex.round && handed[(self_ + 1) % workers_] == 1 && tx.empty());
            break;
          }
          if (tx.empty())
            L4LB_FUZZ_CHECK(drop_of(DropReason::kIcmpErrorNoFlow) == 1 ||
                            drop_of(DropReason::kNeighbourUnresolved) == 1);
          else
            L4LB_FUZZ_CHECK(a.icmp_translated - b.icmp_translated == 1 && icmp_checksums_valid(tx[0]));
          break;
        case Route::kForward:
        case Route::kReverse:
          L4LB_FUZZ_CHECK(slow.empty() && control.empty() && handed_total == 0);
          if (tx.empty()) L4LB_FUZZ_CHECK(flow_drop(b, a, ex.route));
          check_flow(snap, frame, p, ex, hit, before, b, a, tx);
          break;
      }
    }
    check_departures(before, hit, b, a);
    L4LB_FUZZ_CHECK(rte_mempool_in_use_count(rig().pool) == held());
    if (audit_each_packet_) check_audit();
  }

  // A fragment (DESIGN §3 step 2a). Which way it goes depends on the other
  // fragments of its datagram seen so far, which the model does not track;
  // what must hold whatever they were: every mbuf is sent, queued, held or
  // dropped exactly once (held ones later), for a reason a fragment or its
  // first fragment can have, and what is sent has a valid IPv4 header.
  void send_fragment(const std::vector<uint8_t>& frame, const ParsedPacket& p, const Expected& ex) {
    const Counts b = counts();
    const unsigned held_before = held();
    rte_mbuf* m = rte_pktmbuf_alloc(rig().pool);
    L4LB_FUZZ_CHECK(m != nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    worker_->process_burst(&m, 1, now_);
    const auto tx = drain(rig().tx);
    const size_t queued = tx.size() + drain(rig().slow).size() + drain(rig().control).size();
    size_t handed = 0;
    for (uint32_t w = 0; w < kMaxRigWorkers; ++w) handed += drain(rig().handoff[w]).size();
    const Counts a = counts();
    uint64_t dropped = 0;
    for (size_t i = 0; i < a.drops.size(); ++i) {
      const uint64_t n = a.drops[i] - b.drops[i];
      dropped += n;
      if (!n) continue;
      const auto r = static_cast<DropReason>(i);
      const bool fragment_reason = r == DropReason::kFragmentOverlap || r == DropReason::kFragmentTimeout ||
                                   r == DropReason::kFragmentTableFull || r == DropReason::kFragmentLimit ||
                                   r == DropReason::kFragmentOfDropped;
      // The first fragment's own fate: its classification's or its flow's.
      const bool first_reason = p.fragment_offset() == 0 &&
                                ((ex.route == Route::kDrop && r == ex.drop) || flow_drop(b, a, ex.route) ||
                                 r == DropReason::kClosedVipPort || r == DropReason::kSlowPathLimit);
      L4LB_FUZZ_CHECK(fragment_reason || first_reason || r == DropReason::kSlowPathLimit);
    }
    const unsigned held_after = held();
    L4LB_FUZZ_CHECK(int64_t(queued + handed + dropped) == 1 + int64_t(held_before) - int64_t(held_after));
    // A later fragment's header is rewritten whole (valid checksum); a
    // first one's is updated, so it is valid when the one received was.
    const bool valid_in = test::full_checksum(frame.data() + p.l3_offset, 20) == 0;
    for (const auto& f : tx) {
      const ParsedPacket out = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
      L4LB_FUZZ_CHECK(out.kind == PacketKind::kIpv4);
      if (out.fragment_offset() || valid_in) L4LB_FUZZ_CHECK(test::full_checksum(f.data() + out.l3_offset, 20) == 0);
    }
    L4LB_FUZZ_CHECK(rte_mempool_in_use_count(rig().pool) == held_after);
    if (audit_each_packet_) check_audit();
  }

  // The worker's own classify() agrees with the model.
  void check_oracle(const Snapshot& snap, const ParsedPacket& p, const Expected& ex) {
    const Classification c = classify(snap, p, partition_, workers_);
    Route r = Route::kDrop;
    switch (c.verdict) {
      case Verdict::kDrop:
        r = Route::kDrop;
        break;
      case Verdict::kControl:
        r = Route::kControl;
        break;
      case Verdict::kSlowPath:
        r = Route::kSlowPath;
        break;
      case Verdict::kForward:
        r = Route::kForward;
        break;
      case Verdict::kReverse:
        r = Route::kReverse;
        break;
      case Verdict::kClosedPort:
        r = Route::kClosedPort;
        break;
    }
    L4LB_FUZZ_CHECK(r == ex.route);
    if (r == Route::kDrop) L4LB_FUZZ_CHECK(c.drop == ex.drop);
    if (r == Route::kForward) L4LB_FUZZ_CHECK(c.vip == ex.vip);
    if (r == Route::kForward || r == Route::kReverse)
      L4LB_FUZZ_CHECK((c.owner == kAnyOwner ? self_ : c.owner) == ex.owner);
  }

  // A forward or reverse packet the worker dropped: only for a reason of the
  // flow stage (never a parse or classification one).
  static bool flow_drop(const Counts& b, const Counts& a, Route route) {
    for (size_t i = 0; i < a.drops.size(); ++i) {
      if (a.drops[i] == b.drops[i]) continue;
      switch (static_cast<DropReason>(i)) {
        case DropReason::kReverseNoFlow:
        case DropReason::kBackendDown:
        case DropReason::kRstOutOfWindow:
        case DropReason::kNeighbourUnresolved:
          return true;
        case DropReason::kTcpMissPolicy:
        case DropReason::kFlowTableFull:
        case DropReason::kSnatExhausted:
        case DropReason::kSnatPoolsFull:
        case DropReason::kNoBackend:
        case DropReason::kSynLimit:
          return route == Route::kForward;
        default:
          return false;
      }
    }
    return false;
  }

  // The answer to a closed VIP port: a RST or an ICMP port unreachable from
  // the packet's destination back to its source and MAC, checksums valid.
  static void check_reject(const std::vector<uint8_t>& in, const ParsedPacket& p,
                           const std::vector<uint8_t>& out) {
    const ParsedPacket r = parse_packet(out.data(), static_cast<uint32_t>(out.size()));
    L4LB_FUZZ_CHECK(r.kind == PacketKind::kIpv4 && r.src_ip == p.dst_ip && r.dst_ip == p.src_ip);
    L4LB_FUZZ_CHECK(std::memcmp(out.data(), in.data() + 6, 6) == 0 &&
                    std::memcmp(out.data() + 6, kPortMac.bytes, 6) == 0);
    L4LB_FUZZ_CHECK(test::checksums_valid(out.data(), out.size()));
    if (p.proto == kProtoTcp) {
      L4LB_FUZZ_CHECK(r.proto == kProtoTcp && (r.tcp_flags & kTcpRst) && !(p.tcp_flags & kTcpRst));
      L4LB_FUZZ_CHECK(r.src_port == p.dst_port && r.dst_port == p.src_port);
      return;
    }
    L4LB_FUZZ_CHECK(r.proto == kProtoIcmp && r.ip_total_length == 20 + 8 + 28);
    const uint8_t* icmp = out.data() + r.l4_offset;
    L4LB_FUZZ_CHECK(icmp[0] == 3 && icmp[1] == 3 && test::full_checksum(icmp, 36) == 0);
    // The quote: the datagram's IPv4 header and first 8 bytes, as they came.
    const size_t quoted = std::min<size_t>(28, in.size() - p.l3_offset);
    L4LB_FUZZ_CHECK(std::memcmp(icmp + 8, in.data() + p.l3_offset, quoted) == 0);
  }

  // What a forward or reverse packet did to its flow, against the model.
  void check_flow(const Snapshot& snap, const std::vector<uint8_t>& frame, const ParsedPacket& p,
                  const Expected& ex, uint32_t hit, const std::vector<FlowEntry>& before, const Counts& b,
                  const Counts& a, const std::vector<std::vector<uint8_t>>& tx) {
    const bool tcp = p.proto == kProtoTcp;
    const auto drop_of = [&](DropReason r) { return a.drops[size_t(r)] - b.drops[size_t(r)]; };
    if (hit == FlowTable::kMiss) return check_miss(snap, frame, p, ex, b, a, tx);
    const uint32_t index = FlowTable::entry_of(hit);
    const bool reverse = FlowTable::is_reverse(hit);
    const FlowEntry& old = before[index];
    const FlowEntry& e = worker_->flows().entry(index);
    // down_policy: reset ends a down backend's flow at its next packet, but
    // a pure SYN on a closing flow is a new connection, not that packet.
    uint8_t fins0 = 0;
    bool confirmed0 = false;
    const bool restart = tcp && model_tcp(old.state, p.tcp_flags, reverse, fins0, confirmed0).restart;
    const bool down = (old.flags & kFlowResetOnDown) && !restart &&
                      (old.backend_id >= snap.backend_alive.size() || !snap.backend_alive[old.backend_id]);
    if (down) {
      L4LB_FUZZ_CHECK(a.reset - b.reset == 1 && e.state == FlowState::kFree);
      if (tcp && !reverse && !(p.tcp_flags & kTcpRst)) {
        L4LB_FUZZ_CHECK(tx.size() == 1);
        const ParsedPacket r = parse_packet(tx[0].data(), static_cast<uint32_t>(tx[0].size()));
        L4LB_FUZZ_CHECK(r.kind == PacketKind::kIpv4 && (r.tcp_flags & kTcpRst) && r.dst_ip == p.src_ip);
        L4LB_FUZZ_CHECK(test::checksums_valid(tx[0].data(), tx[0].size()));
      } else {
        L4LB_FUZZ_CHECK(drop_of(DropReason::kBackendDown) == 1);
      }
      return;
    }
    if (!tcp) {
      L4LB_FUZZ_CHECK(tx.size() == 1 || drop_of(DropReason::kNeighbourUnresolved) == 1);
      const bool now_replied = reverse || old.state == FlowState::kUdp;
      L4LB_FUZZ_CHECK(e.state == (now_replied ? FlowState::kUdp : FlowState::kUdpUnreplied));
      L4LB_FUZZ_CHECK(e.confirmed() == now_replied);
      if (!tx.empty()) check_sent(snap, frame, p, e, reverse, tx[0]);
      return;
    }
    // The RST window is the receiver's: the last ACK the other side sent.
    const uint8_t sender = reverse ? kFlowAckBackend : kFlowAckClient;
    const uint8_t receiver = reverse ? kFlowAckClient : kFlowAckBackend;
    const bool rst = p.tcp_flags & kTcpRst;
    if (rst && (old.flags & receiver) && !model_rst_in_window(p.tcp_seq, old.ack_hi[!reverse])) {
      // A RST from far off: dropped, and no flow changes at all.
      L4LB_FUZZ_CHECK(drop_of(DropReason::kRstOutOfWindow) == 1 && tx.empty());
      const std::vector<FlowEntry> after = entries();
      L4LB_FUZZ_CHECK(std::memcmp(after.data(), before.data(), sizeof(FlowEntry) * after.size()) == 0);
      return;
    }
    L4LB_FUZZ_CHECK(drop_of(DropReason::kRstOutOfWindow) == 0);
    uint8_t fins = static_cast<uint8_t>(((old.flags & kFlowFinClient) ? 1 : 0) |
                                        ((old.flags & kFlowFinBackend) ? 2 : 0));
    bool confirmed = old.confirmed();
    const ModelStep step = model_tcp(old.state, p.tcp_flags, reverse, fins, confirmed);
    if (step.restart) {  // the old flow closed, not reset; the SYN is a new connection
      L4LB_FUZZ_CHECK(a.closed - b.closed == 1 && a.reset == b.reset);
      if (ex.route == Route::kForward) check_miss(snap, frame, p, ex, b, a, tx);
      return;
    }
    L4LB_FUZZ_CHECK(e.state == step.next && e.confirmed() == confirmed);
    L4LB_FUZZ_CHECK(bool(e.flags & kFlowFinClient) == bool(fins & 1) &&
                    bool(e.flags & kFlowFinBackend) == bool(fins & 2));
    // Any segment but a RST carries its sender's ACK along (when it has one).
    const bool acks = !rst && (p.tcp_flags & kTcpAck);
    uint16_t ack = old.ack_hi[reverse];
    if (acks)
      ack = (old.flags & sender) ? model_advance(ack, p.tcp_ack) : static_cast<uint16_t>(p.tcp_ack >> 16);
    L4LB_FUZZ_CHECK(e.ack_hi[reverse] == ack && e.ack_hi[!reverse] == old.ack_hi[!reverse]);
    L4LB_FUZZ_CHECK(bool(e.flags & sender) == (bool(old.flags & sender) || acks));
    L4LB_FUZZ_CHECK(bool(e.flags & receiver) == bool(old.flags & receiver));
    if (tx.empty()) {
      L4LB_FUZZ_CHECK(drop_of(DropReason::kNeighbourUnresolved) == 1);
      return;
    }
    L4LB_FUZZ_CHECK(e.last_seen == flow_clock(now_));
    check_sent(snap, frame, p, e, reverse, tx[0]);
  }

  // A forward or reverse packet that found no flow (or a pure SYN that
  // closed the flow it found): a new flow as the model says, or a refusal.
  void check_miss(const Snapshot& snap, const std::vector<uint8_t>& frame, const ParsedPacket& p,
                  const Expected& ex, const Counts& b, const Counts& a,
                  const std::vector<std::vector<uint8_t>>& tx) {
    const bool tcp = p.proto == kProtoTcp;
    const auto drop_of = [&](DropReason r) { return a.drops[size_t(r)] - b.drops[size_t(r)]; };
    L4LB_FUZZ_CHECK(drop_of(DropReason::kRstOutOfWindow) == 0);
    if (ex.route == Route::kReverse) {
      L4LB_FUZZ_CHECK(drop_of(DropReason::kReverseNoFlow) == 1);
      return;
    }
    const FlowState start =
        model_new_flow_state(p, config_.vips[ex.vip].tcp_miss == config::TcpMissPolicy::kDrop);
    if (start == FlowState::kFree) {
      L4LB_FUZZ_CHECK(drop_of(DropReason::kTcpMissPolicy) == 1);
      return;
    }
    if (a.created == b.created) {  // refused: flow_drop() said why
      L4LB_FUZZ_CHECK(tx.empty());
      return;
    }
    L4LB_FUZZ_CHECK(a.created - b.created == 1 && tx.size() == 1);
    const uint32_t v =
        worker_->flows().lookup(make_flow_key(p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.proto));
    L4LB_FUZZ_CHECK(v != FlowTable::kMiss && !FlowTable::is_reverse(v));
    const FlowEntry& e = worker_->flows().entry(FlowTable::entry_of(v));
    uint8_t fins = 0;
    bool confirmed = false;
    const FlowState next = tcp ? model_tcp(start, p.tcp_flags, false, fins, confirmed).next : start;
    L4LB_FUZZ_CHECK(e.state == next && !e.confirmed());
    check_new_flow(snap, ex, e);
    if (tcp)
      L4LB_FUZZ_CHECK(bool(e.flags & kFlowAckClient) == bool(p.tcp_flags & kTcpAck) &&
                      (!(p.tcp_flags & kTcpAck) || e.ack_hi[0] == uint16_t(p.tcp_ack >> 16)));
    return check_sent(snap, frame, p, e, false, tx[0]);
  }

  // A new flow's choices: a backend of its VIP that may take new flows, a
  // port of this worker's slice of one of the VIP's SNAT addresses.
  void check_new_flow(const Snapshot& snap, const Expected& ex, const FlowEntry& e) {
    const SnapshotVip& vip = snap.vips[ex.vip];
    bool in_vip = false;
    for (const auto& bk : vip.backends)
      in_vip |= bk.ip == e.backend_ip && bk.port == e.backend_port && bk.has_mac;
    L4LB_FUZZ_CHECK(in_vip && e.vip_id == vip.id && e.vip_ip == vip.ip && e.vip_port == vip.port);
    if (vip.mode == NatMode::kDnat) {
      L4LB_FUZZ_CHECK(e.snat_ip == e.client_ip && e.snat_port == e.client_port && e.dnat());
      return;
    }
    const uint16_t port = ntohs(e.snat_port);
    L4LB_FUZZ_CHECK(port >= partition_.first_port(self_) && port <= partition_.last_port(self_));
    L4LB_FUZZ_CHECK(partition_.owner(port) == self_);
    bool ours = false;
    for (uint32_t s : config_.vips[ex.vip].snat) ours |= htonl(s) == e.snat_ip;
    L4LB_FUZZ_CHECK(ours);
  }

  // The frame the worker sent for flow `e`: the rewritten tuple, the next hop
  // the snapshot has now (forward) or the client's MAC (reverse), checksums
  // as valid as they came.
  void check_sent(const Snapshot& snap, const std::vector<uint8_t>& in, const ParsedPacket& p,
                  const FlowEntry& e, bool reverse, const std::vector<uint8_t>& out) {
    L4LB_FUZZ_CHECK(out.size() == in.size());
    const ParsedPacket q = parse_packet(out.data(), static_cast<uint32_t>(out.size()));
    L4LB_FUZZ_CHECK(q.kind == PacketKind::kIpv4 && q.proto == p.proto && q.tcp_flags == p.tcp_flags);
    if (reverse) {
      L4LB_FUZZ_CHECK(q.src_ip == e.vip_ip && q.src_port == e.vip_port && q.dst_ip == e.client_ip &&
                      q.dst_port == e.client_port);
      L4LB_FUZZ_CHECK(std::memcmp(out.data(), e.client_mac.bytes, 6) == 0);
    } else {
      L4LB_FUZZ_CHECK(q.src_ip == e.snat_ip && q.src_port == e.snat_port && q.dst_ip == e.backend_ip &&
                      q.dst_port == e.backend_port);
      L4LB_FUZZ_CHECK(e.backend_id < snap.next_hop.size() && snap.next_hop[e.backend_id].known);
      L4LB_FUZZ_CHECK(std::memcmp(out.data(), snap.next_hop[e.backend_id].mac.bytes, 6) == 0);
    }
    L4LB_FUZZ_CHECK(std::memcmp(out.data() + 6, snap.port_mac.bytes, 6) == 0);
    if (test::checksums_valid(in.data(), in.size()))
      L4LB_FUZZ_CHECK(test::checksums_valid(out.data(), out.size()));
  }

  // Flows other than the packet's own that are gone after it: only
  // unconfirmed ones, each counted as evicted (for a slot or a port).
  void check_departures(const std::vector<FlowEntry>& before, uint32_t hit, const Counts& b,
                        const Counts& a) {
    const uint32_t own = hit == FlowTable::kMiss ? FlowTable::kMiss : FlowTable::entry_of(hit);
    uint64_t gone = 0;
    for (uint32_t i = 0; i < before.size(); ++i) {
      const FlowEntry& e = before[i];
      if (e.state == FlowState::kFree || i == own) continue;
      const FlowEntry& now = worker_->flows().entry(i);
      const bool same =
          now.state != FlowState::kFree && std::memcmp(&now, &e, offsetof(FlowEntry, client_port) + 8) == 0;
      if (same) continue;
      L4LB_FUZZ_CHECK(!e.confirmed());  // a confirmed flow is never evicted for a new one
      ++gone;
    }
    L4LB_FUZZ_CHECK(a.evicted - b.evicted == gone);
    L4LB_FUZZ_CHECK(a.evicted_for_port - b.evicted_for_port <= a.evicted - b.evicted);
    L4LB_FUZZ_CHECK(a.expired == b.expired);  // a packet never ages a flow out
  }

  config::Config config_;
  ModelView view_;
  uint32_t workers_;
  uint32_t self_;
  SnatPartition partition_;
  std::vector<uint8_t> frame_;
  ParsedPacket base_;
  bool base_valid_ = false;
  controlplane::NeighbourMap neighbours_;
  std::map<std::string, bool> health_;
  controlplane::BuildState state_;
  std::vector<std::unique_ptr<Snapshot>> snapshots_;
  uint64_t generation_ = 0;
  // A Worker is a few hundred KiB (its counters): made in the same place
  // for every input rather than mapped and unmapped each time.
  static void* worker_storage() {
    alignas(Worker) static unsigned char storage[sizeof(Worker)];
    return storage;
  }
  Worker* worker_ = nullptr;
  uint64_t now_ = kTscHz;
  std::map<uint8_t, Track> tracks_;
  bool audit_each_packet_ = true;
};

}  // namespace l4lb::fuzz
