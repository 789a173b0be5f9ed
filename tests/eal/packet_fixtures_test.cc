// Golden packet fixtures (Katran's way, STYLE "fixtures before fixes"): a
// table of {name, config tweak, frames in order with their side and time,
// what must come out of each (the exact frame, or the ring or drop reason),
// counters at the end}, each run through the real Worker on a net_ring port
// as worker_pipeline_test does, on a fresh worker, with audit() empty and
// every mbuf back after it. Together they pin each rule of DESIGN §3 as of
// issue 13: the classification order, the flow states and their timeouts,
// the RST window, a SYN on a closing flow, SNAT pools per backend, eviction
// of unconfirmed flows, the port hold, neighbour changes and draining after
// a reload.
//
// Expected frames are built from scratch by the packet builder (checksums
// computed in full), never by the code under test, and compared byte for
// byte. Counters not named by a fixture (flows created, closed, expired,
// evicted, reset, closed-port answers, and every drop reason) must stay 0.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../common/packet_builder.h"
#include "forwarding_config.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/port.h"
#include "test_eal.h"

using namespace l4lb;
using namespace l4lb::dataplane;
using test::build_packet;
using test::host_ip;
using test::ip;
using test::PacketSpec;
using test::port;

namespace {

constexpr uint64_t kHz = 1'000'000'000;  // the fake TSC and the snapshots' clock: 1 ns per cycle
rte_mempool* g_pool;

const MacAddress kPortMac{{0x02, 0xAA, 0, 0, 0, 1}};
constexpr uint8_t kClientMac[6] = {0x02, 0, 0, 0, 0, 0x10};  // PacketSpec's default source MAC
constexpr uint32_t kClientSeq = 0x11000000;                  // each side's first sequence number
constexpr uint32_t kBackendSeq = 0x22000000;

// The fixtures' config: forwarding_config.h's web (FNAT 10.99.0.100:8080/tcp
// from 10.99.0.1 to 10.99.0.21-23:80) and dns (the same for :53/udp), plus a
// DNAT VIP api 10.99.0.101:9090/tcp to 10.99.0.31:9090, a gateway, and a
// distinct timeout per state so a fixture can tell them apart.
config::Config fixture_config() {
  config::Config c = test::make_config();
  c.ports[0].gateway = host_ip("10.99.0.254");
  c.dataplane.snat_pools_per_worker = 16;
  config::VipConfig api;
  api.name = "api";
  api.address = host_ip("10.99.0.101");
  api.port = 9090;
  api.mode = config::NatMode::kDnat;
  api.table_size = 251;
  api.backends = {{host_ip("10.99.0.31"), 9090, 1, 0}};
  c.vips.push_back(api);
  config::Timeouts& t = c.timeouts;
  t.tcp_syn_s = 3;
  t.tcp_syn_recv_s = 4;
  t.tcp_established_s = 50;
  t.tcp_fin_wait_s = 6;
  t.tcp_time_wait_s = 7;
  t.tcp_close_s = 2;
  t.udp_unreplied_s = 8;
  t.udp_s = 40;
  t.snat_port_hold_s = 60;
  return c;
}

controlplane::NeighbourMap fixture_neighbours() {
  controlplane::NeighbourMap n = test::neighbours();  // .21-.23
  for (uint8_t last : {31, 32, 254})
    n[host_ip(("10.99.0." + std::to_string(last)).c_str())] = {{0x02, 0, 0, 0, 0, last}};
  return n;
}

std::string hex(const std::vector<uint8_t>& f) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < f.size(); ++i) {
    std::snprintf(b, sizeof b, "%02x", f[i]);
    s += b;
    if (i + 1 < f.size()) s += (i % 16 == 15) ? "\n" : " ";
  }
  return s;
}

// ------------------------------------------------------------ what comes out

struct Expect {
  enum Kind { kForward, kForwardAnew, kToClient, kControl, kSlowPath, kDrop, kRst, kIcmpUnreachable } kind;
  DropReason reason = DropReason::kCount;
  const char* backend = nullptr;      // forward: to this backend (address)
  const char* not_backend = nullptr;  // forward: to any but this one
  int snat_port = -1;                 // forward (FNAT): from this port
  int port_of = -1;                   // forward (FNAT): from the port flow `port_of` had
};
// Forwarded on the packet's flow: to the backend and from the SNAT address
// and port it had; for the flow's first packet, to one of the VIP's
// backends from one of its SNAT addresses.
Expect forwarded(const char* backend = nullptr) {
  return {Expect::kForward, DropReason::kCount, backend};
}
// Forwarded as a new connection on the flow's tuple: new choices.
Expect forwarded_anew(const char* backend = nullptr) {
  return {Expect::kForwardAnew, DropReason::kCount, backend};
}
Expect forwarded_not_to(const char* backend) {
  Expect e{Expect::kForwardAnew};
  e.not_backend = backend;
  return e;
}
Expect forwarded_from_port(int snat_port) {
  Expect e{Expect::kForward};
  e.snat_port = snat_port;
  return e;
}
Expect forwarded_from_port_of(int flow) {
  Expect e{Expect::kForward};
  e.port_of = flow;
  return e;
}
Expect to_client() {
  return {Expect::kToClient};
}
Expect to_control() {
  return {Expect::kControl};
}
Expect to_slow_path() {
  return {Expect::kSlowPath};
}
Expect dropped(DropReason r) {
  return {Expect::kDrop, r};
}
Expect rst_to_client() {
  return {Expect::kRst};
}
Expect port_unreachable() {
  return {Expect::kIcmpUnreachable};
}

// ------------------------------------------------------------ the run

class Rig;
struct Step {
  std::string what;
  std::function<void(Rig&)> run;
};

// Counters at the end of a fixture (a fresh worker starts at 0).
struct Count {
  std::string name;
  std::function<uint64_t(const WorkerCounters&)> get;
  uint64_t want;
};

struct Fixture {
  std::string name;
  std::function<void(config::Config&)> tweak;
  std::vector<Step> steps;
  std::vector<Count> counts;
};

// What the test knows of flow n: its client side, and the backend side the
// worker gave it (learned from the first forwarded frame).
struct FlowRec {
  uint32_t client_ip = ip("10.99.0.10");
  uint16_t client_port = 0;  // wire order; 0 until the first packet
  uint32_t vip_ip = 0;
  uint16_t vip_port = 0;
  uint8_t proto = kProtoTcp;
  bool forwarded = false;
  uint32_t snat_ip = 0, backend_ip = 0;
  uint16_t snat_port = 0, backend_port = 0;
  uint32_t next[2] = {kClientSeq, kBackendSeq};  // each side's next sequence number
};

class Rig {
 public:
  explicit Rig(const Fixture& f) {
    static int instance = 0;
    const std::string n = "fx" + std::to_string(instance++);
    const auto ring = [&](const char* what) {
      rte_ring* r = rte_ring_create((n + what).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
      EXPECT_NE(r, nullptr);
      rings_.push_back(r);
      return r;
    };
    rx_ = ring("rx");
    tx_ = ring("tx");
    snapshots_ring_ = ring("sn");
    slow_ = ring("sl");
    control_ = ring("ct");
    inject_ = ring("in");
    const int id = rte_eth_from_rings(n.c_str(), &rx_, 1, &tx_, 1, 0);
    EXPECT_GE(id, 0);
    port_ = std::make_unique<dpdk::Port>(static_cast<uint16_t>(id), dpdk::PortQueues{1, 1, 256, 256}, g_pool);
    config = fixture_config();
    if (f.tweak) f.tweak(config);
    neighbours = fixture_neighbours();
    publish();
    WorkerSetup s;
    s.port_id = port_->id();
    s.snapshot_ring = snapshots_ring_;
    s.slow_path_ring = slow_;
    s.control_ring = control_;
    s.inject_ring = inject_;
    s.flow_capacity = config.dataplane.flows_per_worker;
    s.snat_port_min = config.dataplane.snat_port_min;
    s.snat_port_max = config.dataplane.snat_port_max;
    s.snat_pools = config.dataplane.snat_pools_per_worker;
    s.evict_unconfirmed = config.dataplane.table_full != config::TableFullPolicy::kRefuse;
    worker = std::make_unique<Worker>(s, snapshots_.back().get());
  }

  ~Rig() {
    worker.reset();
    port_.reset();
    for (rte_ring* r : rings_) {
      if (r != snapshots_ring_) drain(r);
      rte_ring_free(r);
    }
  }

  // ---- used by steps

  config::Config config;
  controlplane::NeighbourMap neighbours;
  std::map<std::string, bool> health;
  std::unique_ptr<Worker> worker;
  uint64_t now = kHz;  // t = 1 s
  std::map<int, FlowRec> flows;

  // A new snapshot of config/neighbours/health, picked up at the next packet.
  void publish() {
    controlplane::SnapshotInputs in{&config, &neighbours, kPortMac, kHz, snapshots_.size() + 1, &health};
    snapshots_.push_back(controlplane::build_snapshot(in, state_));
    if (worker) {
      ASSERT_EQ(rte_ring_enqueue(snapshots_ring_, snapshots_.back().get()), 0);
    }
  }
  const Snapshot& snapshot() const { return *snapshots_.back(); }

  const config::VipConfig& vip(const char* name) const {
    for (const auto& v : config.vips)
      if (v.name == name) return v;
    ADD_FAILURE() << "no VIP " << name;
    return config.vips[0];
  }

  // A client port (wire order) for a new flow from `client_ip` to `vip`
  // that the VIP's Maglev table, as it is now, gives to `backend`; none of
  // the test's other flows uses it.
  uint16_t port_toward(const char* vip_name, uint32_t client_ip, const char* backend) {
    const config::VipConfig& vc = vip(vip_name);
    const uint8_t proto = vc.protocol == config::Protocol::kTcp ? kProtoTcp : kProtoUdp;
    const SnapshotVip* sv = nullptr;
    for (const auto& v : snapshot().vips)
      if (v.ip == htonl(vc.address) && v.port == htons(vc.port) && v.proto == proto) sv = &v;
    EXPECT_NE(sv, nullptr);
    for (uint32_t p = 20000; sv && p < 60000; ++p) {
      bool used = false;
      for (const auto& [n, rec] : flows) used |= rec.client_port == htons(static_cast<uint16_t>(p));
      if (used) continue;
      const uint64_t h =
          maglev_flow_hash(client_ip, htons(static_cast<uint16_t>(p)), sv->ip, sv->port, proto);
      const uint16_t b = (*sv->maglev)[h % sv->maglev->size()];
      if (b != kNoBackendSlot && sv->backends[b].ip == ip(backend)) return htons(static_cast<uint16_t>(p));
    }
    ADD_FAILURE() << "no client port goes to " << backend;
    return 0;
  }

  // Sends one frame through a loop of the worker; returns what came out.
  struct Out {
    std::vector<std::vector<uint8_t>> tx, control, slow;
    std::vector<uint64_t> drops;  // per reason, during this packet
  };
  Out send(const std::vector<uint8_t>& frame) {
    std::vector<uint64_t> before(static_cast<size_t>(DropReason::kCount));
    for (size_t i = 0; i < before.size(); ++i) before[i] = worker->counters().drops[i].get();
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    EXPECT_NE(m, nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    EXPECT_EQ(rte_ring_enqueue(rx_, m), 0);
    worker->poll_once(now);
    Out out{drain(tx_), drain(control_), drain(slow_), before};
    for (size_t i = 0; i < before.size(); ++i) out.drops[i] = worker->counters().drops[i].get() - before[i];
    return out;
  }

  // Moves the clock to `t` seconds and sweeps the whole table, so that what
  // is due at `t` is gone before the next packet (the loop's own sweep
  // would get there within a second).
  void at(double t) {
    now = static_cast<uint64_t>(t * static_cast<double>(kHz));
    worker->age_flows(now, worker->flows().capacity());
  }

  // The entry of flow n, or null.
  const FlowEntry* entry(int n) const {
    auto it = flows.find(n);
    if (it == flows.end()) return nullptr;
    const FlowRec& r = it->second;
    const uint32_t v =
        worker->flows().lookup(make_flow_key(r.client_ip, r.vip_ip, r.client_port, r.vip_port, r.proto));
    return v == FlowTable::kMiss ? nullptr : &worker->flows().entry(FlowTable::entry_of(v));
  }

 private:
  static std::vector<std::vector<uint8_t>> drain(rte_ring* r) {
    std::vector<std::vector<uint8_t>> frames;
    void* p;
    while (rte_ring_dequeue(r, &p) == 0) {
      auto* m = static_cast<rte_mbuf*>(p);
      const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
      frames.emplace_back(d, d + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
    }
    return frames;
  }

  std::unique_ptr<dpdk::Port> port_;
  rte_ring *rx_, *tx_, *snapshots_ring_, *slow_, *control_, *inject_;
  std::vector<rte_ring*> rings_;
  controlplane::BuildState state_;
  std::vector<std::unique_ptr<Snapshot>> snapshots_;
};

// ------------------------------------------------------------ checking one packet

void check_one_place(const Rig::Out& out, const char* where) {
  size_t dropped = 0;
  for (uint64_t d : out.drops) dropped += d;
  EXPECT_EQ(out.tx.size() + out.control.size() + out.slow.size() + dropped, 1u)
      << "the packet ends in one place";
  EXPECT_EQ(std::string(where), !out.tx.empty()        ? "sent"
                                : !out.control.empty() ? "control"
                                : !out.slow.empty()    ? "slow path"
                                                       : "dropped");
}

void expect_frame(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  EXPECT_TRUE(test::checksums_valid(got.data(), got.size()));
  EXPECT_EQ(got, want) << "got:\n" << hex(got) << "\nwant:\n" << hex(want);
}

// The RST a host answers `in` with (RFC 793 §3.4 "Reset Generation"): to a
// segment with ACK, <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
// <CTL=RST,ACK>; from the segment's destination, window 0, TTL 64.
std::vector<uint8_t> rst_answering(const PacketSpec& in) {
  PacketSpec r = in;
  std::memcpy(r.dst_mac, in.src_mac, 6);
  std::memcpy(r.src_mac, kPortMac.bytes, 6);
  r.src_ip = in.dst_ip;
  r.dst_ip = in.src_ip;
  r.src_port = in.dst_port;
  r.dst_port = in.src_port;
  r.payload.clear();
  r.ttl = 64;
  r.tcp_window = 0;
  if (in.tcp_flags & kTcpAck) {
    r.tcp_flags = kTcpRst;
    r.tcp_seq = in.tcp_ack;
    r.tcp_ack = 0;
  } else {
    r.tcp_flags = kTcpRst | kTcpAck;
    r.tcp_seq = 0;
    r.tcp_ack = in.tcp_seq + static_cast<uint32_t>(in.payload.size()) + ((in.tcp_flags & kTcpSyn) ? 1 : 0) +
                ((in.tcp_flags & kTcpFin) ? 1 : 0);
  }
  return build_packet(r);
}

// ICMP destination unreachable, port unreachable (RFC 792) for a UDP
// datagram, built by hand: a fresh IPv4 header from the datagram's
// destination, quoting its IPv4 header and first 8 bytes (RFC 1122 3.2.2).
std::vector<uint8_t> port_unreachable_for(const std::vector<uint8_t>& in) {
  std::vector<uint8_t> f(in.begin() + 6, in.begin() + 12);  // to the client's MAC
  f.insert(f.end(), kPortMac.bytes, kPortMac.bytes + 6);
  f.insert(f.end(), {0x08, 0x00});
  const uint8_t ip4[20] = {0x45, 0, 0, 56, 0, 0, 0, 0, 64, kProtoIcmp, 0, 0};
  f.insert(f.end(), ip4, ip4 + 20);
  std::memcpy(&f[14 + 12], &in[14 + 16], 4);  // from the datagram's destination
  std::memcpy(&f[14 + 16], &in[14 + 12], 4);  // to its source
  const uint16_t ip_sum = test::full_checksum(&f[14], 20);
  f[14 + 10] = static_cast<uint8_t>(ip_sum >> 8);
  f[14 + 11] = static_cast<uint8_t>(ip_sum);
  f.insert(f.end(), {3, 3, 0, 0, 0, 0, 0, 0});
  f.insert(f.end(), in.begin() + 14, in.begin() + 14 + 28);
  const uint16_t icmp_sum = test::full_checksum(&f[34], 36);
  f[36] = static_cast<uint8_t>(icmp_sum >> 8);
  f[37] = static_cast<uint8_t>(icmp_sum);
  return f;
}

// ------------------------------------------------------------ frames in

// A frame from a client of flow n, or from its backend, or any frame.
struct Send {
  enum Who { kClient, kBackend, kRaw } who = kClient;
  int flow = 0;
  uint8_t flags = kTcpSyn;
  int64_t seq_delta = 0;               // from the sender's next sequence number
  std::optional<uint32_t> seq_number;  // ... or this one
  std::optional<uint32_t> ack_number;  // with ACK: what the sender acknowledges (default: all it got)
  std::string payload;
  const char* vip = "web";         // the flow's service (its first packet)
  const char* toward = nullptr;    // the flow's client port is one Maglev gives this backend
  uint32_t client_ip = 0;          // the flow's client address (default 10.99.0.10)
  PacketSpec raw;                  // kRaw
  std::vector<uint8_t> raw_bytes;  // kRaw, when not empty
  Expect expect{Expect::kForward};

  Send seq(int64_t delta) const {
    Send s = *this;
    s.seq_delta = delta;
    return s;
  }
  Send seq_is(uint32_t n) const {
    Send s = *this;
    s.seq_number = n;
    return s;
  }
  Send acking(uint32_t n) const {
    Send s = *this;
    s.ack_number = n;
    return s;
  }
  Send data(std::string p) const {
    Send s = *this;
    s.payload = std::move(p);
    return s;
  }
  Send to(const char* v) const {
    Send s = *this;
    s.vip = v;
    return s;
  }
  Send via(const char* backend) const {
    Send s = *this;
    s.toward = backend;
    return s;
  }
  Send from(const char* client) const {
    Send s = *this;
    s.client_ip = ip(client);
    return s;
  }
  Send operator>>(Expect e) const {
    Send s = *this;
    s.expect = e;
    return s;
  }
  operator Step() const;
};

Send client(int flow, uint8_t flags) {
  Send s;
  s.flow = flow;
  s.flags = flags;
  return s;
}
Send backend(int flow, uint8_t flags) {
  Send s = client(flow, flags);
  s.who = Send::kBackend;
  return s;
}
Send raw(const PacketSpec& spec) {
  Send s;
  s.who = Send::kRaw;
  s.raw = spec;
  return s;
}
Send raw_bytes(std::vector<uint8_t> bytes) {
  Send s;
  s.who = Send::kRaw;
  s.raw_bytes = std::move(bytes);
  return s;
}
PacketSpec from_to(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                   uint8_t proto = kProtoTcp, uint8_t flags = kTcpSyn) {
  PacketSpec s;
  s.src_ip = ip(src);
  s.dst_ip = ip(dst);
  s.src_port = port(sport);
  s.dst_port = port(dport);
  s.proto = proto;
  s.tcp_flags = flags;
  if (proto == kProtoIcmp) s.payload = "abcdefgh";
  return s;
}

const char* describe(const Send& s) {
  switch (s.who) {
    case Send::kClient:
      return "client";
    case Send::kBackend:
      return "backend";
    case Send::kRaw:
      return "frame";
  }
  return "?";
}

void run_send(Rig& run, const Send& s) {
  PacketSpec spec;
  FlowRec* rec = nullptr;
  if (s.who == Send::kRaw) {
    spec = s.raw;
  } else {
    rec = &run.flows[s.flow];
    if (rec->client_port == 0) {  // the flow's first packet fixes its client side
      const config::VipConfig& v = run.vip(s.vip);
      if (s.client_ip) rec->client_ip = s.client_ip;
      rec->vip_ip = htonl(v.address);
      rec->vip_port = htons(v.port);
      rec->proto = v.protocol == config::Protocol::kTcp ? kProtoTcp : kProtoUdp;
      rec->client_port = s.toward ? run.port_toward(s.vip, rec->client_ip, s.toward)
                                  : port(static_cast<uint16_t>(40000 + s.flow));
    }
    const bool from_client = s.who == Send::kClient;
    if (!from_client) {
      ASSERT_TRUE(rec->forwarded) << "flow " << s.flow << " has no backend side yet";
    }
    spec.proto = rec->proto;
    spec.src_ip = from_client ? rec->client_ip : rec->backend_ip;
    spec.dst_ip = from_client ? rec->vip_ip : rec->snat_ip;
    spec.src_port = from_client ? rec->client_port : rec->backend_port;
    spec.dst_port = from_client ? rec->vip_port : rec->snat_port;
    if (!from_client) {
      std::memcpy(spec.src_mac, run.neighbours.at(ntohl(rec->backend_ip)).bytes, 6);
      std::memcpy(spec.dst_mac, kPortMac.bytes, 6);
    }
    spec.tcp_flags = s.flags;
    spec.tcp_seq =
        s.seq_number ? *s.seq_number : static_cast<uint32_t>(rec->next[from_client ? 0 : 1] + s.seq_delta);
    spec.tcp_ack = !(s.flags & kTcpAck) ? 0 : s.ack_number ? *s.ack_number : rec->next[from_client ? 1 : 0];
    spec.payload = s.payload;
    if (spec.proto == kProtoTcp && !(s.flags & kTcpRst))
      rec->next[from_client ? 0 : 1] = spec.tcp_seq + static_cast<uint32_t>(s.payload.size()) +
                                       ((s.flags & kTcpSyn) ? 1 : 0) + ((s.flags & kTcpFin) ? 1 : 0);
  }
  const std::vector<uint8_t> frame = s.raw_bytes.empty() ? build_packet(spec) : s.raw_bytes;
  const Rig::Out out = run.send(frame);
  const Expect& e = s.expect;
  switch (e.kind) {
    case Expect::kForward:
    case Expect::kForwardAnew: {
      check_one_place(out, "sent");
      if (out.tx.size() != 1) return;
      const ParsedPacket q = parse_packet(out.tx[0].data(), static_cast<uint32_t>(out.tx[0].size()));
      ASSERT_EQ(q.kind, PacketKind::kIpv4);
      ASSERT_NE(rec, nullptr) << "forwarded expectations are for flows";
      const bool anew = e.kind == Expect::kForwardAnew || !rec->forwarded;
      if (!anew) {  // the flow's own backend and SNAT side, whatever the config says now
        EXPECT_EQ(q.dst_ip, rec->backend_ip) << "the flow keeps its backend";
        EXPECT_EQ(q.dst_port, rec->backend_port);
        EXPECT_EQ(q.src_ip, rec->snat_ip) << "the flow keeps its SNAT address";
        EXPECT_EQ(q.src_port, rec->snat_port) << "... and port";
      } else {  // new choices: one of the VIP's backends, one of its SNAT addresses and ports
        const config::VipConfig* vc = nullptr;
        for (const auto& v : run.config.vips)
          if (htonl(v.address) == rec->vip_ip && htons(v.port) == rec->vip_port) vc = &v;
        ASSERT_NE(vc, nullptr);
        bool known = false;
        for (const auto& b : vc->backends)
          known |= htonl(b.address) == q.dst_ip && htons(b.port) == q.dst_port;
        EXPECT_TRUE(known) << "forwarded to one of the VIP's backends";
        if (vc->mode == config::NatMode::kDnat) {
          EXPECT_EQ(q.src_ip, rec->client_ip) << "DNAT keeps the client's address";
          EXPECT_EQ(q.src_port, rec->client_port);
        } else {
          bool ours = false;
          for (uint32_t a : vc->snat) ours |= htonl(a) == q.src_ip;
          EXPECT_TRUE(ours) << "from one of the VIP's SNAT addresses";
          EXPECT_GE(ntohs(q.src_port), run.config.dataplane.snat_port_min);
          EXPECT_LE(ntohs(q.src_port), run.config.dataplane.snat_port_max);
        }
        rec->forwarded = true;
        rec->backend_ip = q.dst_ip;
        rec->backend_port = q.dst_port;
        rec->snat_ip = q.src_ip;
        rec->snat_port = q.src_port;
        rec->next[1] = kBackendSeq;
      }
      if (e.backend) {
        EXPECT_EQ(q.dst_ip, ip(e.backend)) << "to backend " << e.backend;
      }
      if (e.not_backend) {
        EXPECT_NE(q.dst_ip, ip(e.not_backend)) << "to any backend but " << e.not_backend;
      }
      if (e.snat_port >= 0) {
        EXPECT_EQ(ntohs(q.src_port), e.snat_port);
      }
      if (e.port_of >= 0) {
        EXPECT_EQ(q.src_port, run.flows[e.port_of].snat_port) << "the port flow " << e.port_of << " had";
      }
      // The golden frame: the client's, to the backend's next hop as the
      // neighbour table has it now, from the port's MAC, the tuple rewritten.
      PacketSpec want = spec;
      const auto hop = run.neighbours.find(ntohl(q.dst_ip));
      ASSERT_NE(hop, run.neighbours.end()) << "sent to an address with no next hop";
      std::memcpy(want.dst_mac, hop->second.bytes, 6);
      std::memcpy(want.src_mac, kPortMac.bytes, 6);
      want.src_ip = rec->snat_ip;
      want.src_port = rec->snat_port;
      want.dst_ip = rec->backend_ip;
      want.dst_port = rec->backend_port;
      expect_frame(out.tx[0], build_packet(want));
      return;
    }
    case Expect::kToClient: {
      check_one_place(out, "sent");
      if (out.tx.size() != 1) return;
      ASSERT_NE(rec, nullptr);
      PacketSpec want = spec;
      std::memcpy(want.dst_mac, kClientMac, 6);
      std::memcpy(want.src_mac, kPortMac.bytes, 6);
      want.src_ip = rec->vip_ip;
      want.src_port = rec->vip_port;
      want.dst_ip = rec->client_ip;
      want.dst_port = rec->client_port;
      expect_frame(out.tx[0], build_packet(want));
      return;
    }
    case Expect::kControl:
      check_one_place(out, "control");
      if (out.control.size() == 1) {
        EXPECT_EQ(out.control[0], frame) << "the kernel gets the frame as it came";
      }
      return;
    case Expect::kSlowPath:
      check_one_place(out, "slow path");
      if (out.slow.size() == 1) {
        EXPECT_EQ(out.slow[0], frame) << "the kernel gets the frame as it came";
      }
      return;
    case Expect::kDrop:
      check_one_place(out, "dropped");
      EXPECT_EQ(out.drops[static_cast<size_t>(e.reason)], 1u) << "dropped as " << drop_reason_name(e.reason);
      return;
    case Expect::kRst:
      check_one_place(out, "sent");
      if (out.tx.size() == 1) expect_frame(out.tx[0], rst_answering(spec));
      return;
    case Expect::kIcmpUnreachable:
      check_one_place(out, "sent");
      if (out.tx.size() == 1) expect_frame(out.tx[0], port_unreachable_for(frame));
      return;
  }
}

Send::operator Step() const {
  std::string what = std::string(describe(*this)) + (who == kRaw ? "" : " of flow " + std::to_string(flow));
  return Step{what, [s = *this](Rig& run) { run_send(run, s); }};
}

// ------------------------------------------------------------ other steps

// Time moves to `t` seconds; everything due by then has been swept.
Step at(double t) {
  return Step{"at " + std::to_string(t) + " s", [t](Rig& run) { run.at(t); }};
}
// A reload: `change` edits the config, neighbours or health; the worker
// gets the new snapshot with its next packet.
Step reload(const std::string& what, std::function<void(Rig&)> change) {
  return Step{"reload: " + what, [change](Rig& run) {
                change(run);
                run.publish();
              }};
}
Step in_state(int flow, FlowState state, bool confirmed) {
  return Step{"flow " + std::to_string(flow) + " is " + kFlowStateNames[static_cast<size_t>(state)],
              [=](Rig& run) {
                const FlowEntry* e = run.entry(flow);
                ASSERT_NE(e, nullptr) << "flow " << flow << " is gone";
                EXPECT_EQ(e->state, state) << "is " << kFlowStateNames[static_cast<size_t>(e->state)];
                EXPECT_EQ(e->confirmed(), confirmed) << (confirmed ? "not confirmed" : "confirmed");
              }};
}
Step gone(int flow) {
  return Step{"flow " + std::to_string(flow) + " is gone",
              [=](Rig& run) { EXPECT_EQ(run.entry(flow), nullptr) << "flow " << flow << " is still there"; }};
}
// The TCP handshake of flow n: SYN, the backend's SYN-ACK, the client's ACK.
std::vector<Step> handshake(int flow, const char* toward = nullptr, const char* vip = "web") {
  return {client(flow, kTcpSyn).to(vip).via(toward) >> forwarded(toward),
          backend(flow, kTcpSyn | kTcpAck) >> to_client(), client(flow, kTcpAck) >> forwarded()};
}

// Counters a fixture names.
Count count(const char* name, Counter WorkerCounters::*c, uint64_t n) {
  return {name, [c](const WorkerCounters& w) { return (w.*c).get(); }, n};
}
Count created(uint64_t n) {
  return count("flows_created", &WorkerCounters::flows_created, n);
}
Count closed(uint64_t n) {
  return count("flows_closed", &WorkerCounters::flows_closed, n);
}
Count expired(uint64_t n) {
  return count("flows_expired", &WorkerCounters::flows_expired, n);
}
Count evicted(uint64_t n) {
  return count("flows_evicted", &WorkerCounters::flows_evicted, n);
}
Count evicted_for_port(uint64_t n) {
  return count("flows_evicted_for_port", &WorkerCounters::flows_evicted_for_port, n);
}
Count reset(uint64_t n) {
  return count("flows_reset", &WorkerCounters::flows_reset, n);
}
Count rejects(uint64_t n) {
  return count("closed_port_rejects", &WorkerCounters::closed_port_rejects, n);
}
Count unconfirmed(uint64_t n) {
  return count("flows_embryonic", &WorkerCounters::flows_embryonic, n);
}
Count active(uint64_t n) {
  return count("flows_active", &WorkerCounters::flows_active, n);
}
Count control(uint64_t n) {
  return count("control_packets", &WorkerCounters::control_packets, n);
}
Count slow_path(uint64_t n) {
  return count("slow_path_packets", &WorkerCounters::slow_path_packets, n);
}
Count drops(DropReason r, uint64_t n) {
  return {std::string("drop ") + drop_reason_name(r),
          [r](const WorkerCounters& w) { return w.drops[static_cast<size_t>(r)].get(); }, n};
}
Count state_gauge(FlowState s, uint64_t n) {
  return {std::string("flows in ") + kFlowStateNames[static_cast<size_t>(s)],
          [s](const WorkerCounters& w) { return w.flows_by_state[static_cast<size_t>(s)].get(); }, n};
}

// Counters that must be 0 unless a fixture names them.
std::vector<Count> watched() {
  std::vector<Count> w = {created(0),          closed(0), expired(0), evicted(0),
                          evicted_for_port(0), reset(0),  rejects(0)};
  for (size_t r = 0; r < static_cast<size_t>(DropReason::kCount); ++r)
    w.push_back(drops(static_cast<DropReason>(r), 0));
  return w;
}

// Appends steps (for building a fixture's list from pieces).
std::vector<Step> operator+(std::vector<Step> a, const std::vector<Step>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ============================================================ the table

// Config tweaks several fixtures share.
void no_tweak(config::Config&) {}
void reject_closed_ports(config::Config& c) {
  c.dataplane.closed_vip_ports = config::ClosedVipPortPolicy::kReject;
}
// Four SNAT ports / one, all this (only) worker's.
void four_ports(config::Config& c) {
  c.dataplane.snat_port_min = 10240;
  c.dataplane.snat_port_max = 10243;
}
void one_port(config::Config& c) {
  c.dataplane.snat_port_min = c.dataplane.snat_port_max = 10240;
}
using F = FlowState;

void add_classification(std::vector<Fixture>& t) {
  auto arp = build_packet(PacketSpec{});
  arp[12] = 0x08;
  arp[13] = 0x06;
  // ---- classification, in DESIGN §3's order
  t.push_back(
      {"syn to a VIP is full-NATed to its Maglev backend",
       no_tweak,
       {client(0, kTcpSyn).via("10.99.0.22") >> forwarded("10.99.0.22"), in_state(0, F::kSynSent, false)},
       {created(1), unconfirmed(1), active(1)}});
  t.push_back({"the first flow to a backend gets the first port of the range",
               no_tweak,
               {client(0, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240),
                client(1, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10241),
                client(2, kTcpSyn).via("10.99.0.23") >> forwarded_from_port(10240)},
               {created(3)}});
  t.push_back({"snat reply is reversed to the client",
               no_tweak,
               {client(0, kTcpSyn) >> forwarded(), backend(0, kTcpSyn | kTcpAck).data("hi") >> to_client()},
               {created(1)}});
  t.push_back(
      {"dnat forward keeps the client and its reply is reversed",
       no_tweak,
       {client(0, kTcpSyn).to("api") >> forwarded("10.99.0.31"), backend(0, kTcpSyn | kTcpAck) >> to_client(),
        client(0, kTcpAck).data("GET /") >> forwarded()},
       {created(1)}});
  // A DNAT reply that comes back through an appliance that did not see the
  // connection open (several appliances behind ECMP, DESIGN §12).
  const PacketSpec stray_reply = from_to("10.99.0.31", 9090, "198.51.100.7", 45000, kProtoTcp, kTcpAck);
  const auto stateless = [](config::Config& c) { c.vips[2].dnat_reverse = config::DnatReverse::kStateless; };
  const Count translated = count("stateless_reverse_packets", &WorkerCounters::stateless_reverse_packets, 1);
  const Count not_translated = count("stateless_reverse_packets", &WorkerCounters::stateless_reverse_packets, 0);
  t.push_back({"a dnat reply with no flow is dropped",
               no_tweak,
               {raw(stray_reply) >> dropped(DropReason::kReverseNoFlow)},
               {not_translated, created(0), drops(DropReason::kReverseNoFlow, 1)}});
  t.push_back({"dnat_reverse stateless: a reply with no flow leaves from its vip towards the gateway",
               stateless,
               {Step{"translated by the config alone, no flow made",
                     [stray_reply](Rig& r) {
                       const Rig::Out out = r.send(build_packet(stray_reply));
                       ASSERT_EQ(out.tx.size(), 1u);
                       PacketSpec want = stray_reply;
                       want.src_ip = ip("10.99.0.101");
                       want.src_port = port(9090);
                       const uint8_t gateway_mac[6] = {0x02, 0, 0, 0, 0, 254};
                       std::memcpy(want.dst_mac, gateway_mac, 6);
                       std::memcpy(want.src_mac, kPortMac.bytes, 6);
                       expect_frame(out.tx[0], build_packet(want));
                     }}},
               {translated, created(0)}});
  t.push_back({"dnat_reverse stateless: a reply whose flow is here goes by the flow",
               stateless,
               handshake(0, "10.99.0.31", "api") +
                   std::vector<Step>{backend(0, kTcpAck).data("hi") >> to_client()},
               {not_translated, created(1)}});
  t.push_back({"dnat_reverse stateless: without the gateway's MAC a reply with no flow is dropped",
               [stateless](config::Config& c) {
                 stateless(c);
                 c.ports[0].gateway.reset();
               },
               {raw(stray_reply) >> dropped(DropReason::kNeighbourUnresolved)},
               {not_translated, drops(DropReason::kNeighbourUnresolved, 1)}});
  t.push_back(
      {"dnat backend answering the appliance probe goes to control",
       no_tweak,
       {raw(from_to("10.99.0.31", 9090, "10.99.0.1", 45000, kProtoTcp, kTcpSyn | kTcpAck)) >> to_control()},
       {control(1)}});
  t.push_back(
      {"fnat backend and gateway answers to the appliance go to control",
       no_tweak,
       {raw(from_to("10.99.0.21", 80, "10.99.0.1", 45001, kProtoTcp, kTcpSyn | kTcpAck)) >> to_control(),
        raw(from_to("10.99.0.254", 179, "10.99.0.1", 45002)) >> to_control()},
       {control(2)}});
  t.push_back({"arp goes to control", no_tweak, {raw_bytes(arp) >> to_control()}, {control(1)}});
  t.push_back({"tcp from a client to the appliance goes to the slow path",
               no_tweak,
               {raw(from_to("10.99.0.10", 40000, "10.99.0.1", 22)) >> to_slow_path(),
                raw(from_to("10.99.0.10", 0, "10.99.0.1", 0, kProtoIcmp)) >> to_slow_path()},
               {slow_path(2)}});
  t.push_back({"snat range port to the appliance without a flow is reverse_no_flow",
               no_tweak,
               {raw(from_to("10.99.0.21", 80, "10.99.0.1", 12000, kProtoTcp, kTcpAck)) >>
                dropped(DropReason::kReverseNoFlow)},
               {drops(DropReason::kReverseNoFlow, 1)}});
  t.push_back({"tcp and udp to an unserved vip port are dropped",
               no_tweak,
               {raw(from_to("10.99.0.10", 40000, "10.99.0.100", 2222)) >> dropped(DropReason::kClosedVipPort),
                raw(from_to("10.99.0.10", 40000, "10.99.0.100", 8080, kProtoUdp)) >>
                    dropped(DropReason::kClosedVipPort),
                raw(from_to("10.99.0.10", 40000, "10.99.0.101", 22)) >> dropped(DropReason::kClosedVipPort),
                raw(from_to("10.99.0.10", 0, "10.99.0.100", 0, 47)) >> dropped(DropReason::kClosedVipPort)},
               {drops(DropReason::kClosedVipPort, 4), slow_path(0), control(0)}});
  {
    PacketSpec syn = from_to("10.99.0.10", 40000, "10.99.0.100", 2222);
    PacketSpec ack = from_to("10.99.0.10", 40001, "10.99.0.100", 2222, kProtoTcp, kTcpAck | 0x08);
    ack.tcp_ack = 0x01020304;
    ack.payload = "data";
    PacketSpec rst = from_to("10.99.0.10", 40002, "10.99.0.100", 2222, kProtoTcp, kTcpRst);
    PacketSpec udp = from_to("10.99.0.10", 40003, "10.99.0.100", 5353, kProtoUdp);
    udp.payload = "a question longer than eight bytes";
    t.push_back({"reject answers closed tcp ports with a rst and udp with port unreachable",
                 reject_closed_ports,
                 {raw(syn) >> rst_to_client(), raw(ack) >> rst_to_client(), raw(udp) >> port_unreachable(),
                  raw(rst) >> dropped(DropReason::kClosedVipPort)},
                 {rejects(3), drops(DropReason::kClosedVipPort, 1), slow_path(0), control(0)}});
  }
  {
    // The reject answers are rate-limited: a burst of 100, then 1000 a second.
    std::vector<Step> s;
    for (int i = 0; i < 100; ++i)
      s.push_back(raw(from_to("10.99.0.10", 40000, "10.99.0.100", 2222)) >> rst_to_client());
    s.push_back(raw(from_to("10.99.0.10", 40000, "10.99.0.100", 2222)) >>
                dropped(DropReason::kClosedVipPort));
    t.push_back({"closed port answers stop after a burst of 100",
                 reject_closed_ports,
                 s,
                 {rejects(100), drops(DropReason::kClosedVipPort, 1)}});
  }
  t.push_back({"icmp echo to a vip goes to the slow path, elsewhere is not for us",
               no_tweak,
               {raw(from_to("10.99.0.10", 0, "10.99.0.100", 0, kProtoIcmp)) >> to_slow_path(),
                raw(from_to("10.99.0.10", 0, "192.0.2.1", 0, kProtoIcmp)) >> dropped(DropReason::kNotForUs),
                raw(from_to("10.99.0.10", 40000, "192.0.2.1", 80)) >> dropped(DropReason::kNotForUs)},
               {slow_path(1), drops(DropReason::kNotForUs, 2)}});
  t.push_back(
      {"land spoofed and impossible sources are dropped",
       no_tweak,
       {raw(from_to("10.99.0.50", 40000, "10.99.0.50", 8080)) >> dropped(DropReason::kLand),
        raw(from_to("10.99.0.100", 8080, "10.99.0.100", 8080)) >> dropped(DropReason::kLand),
        raw(from_to("10.99.0.100", 40000, "10.99.0.1", 22)) >> dropped(DropReason::kSpoofedSource),
        raw(from_to("10.99.0.1", 40000, "10.99.0.100", 8080)) >> dropped(DropReason::kSpoofedSource),
        raw(from_to("10.99.0.101", 40000, "10.99.0.100", 8080)) >> dropped(DropReason::kSpoofedSource),
        raw(from_to("0.1.2.3", 40000, "10.99.0.100", 8080)) >> dropped(DropReason::kBadSourceAddress),
        raw(from_to("127.0.0.1", 40000, "10.99.0.100", 8080)) >> dropped(DropReason::kBadSourceAddress),
        raw(from_to("224.0.0.5", 40000, "10.99.0.100", 8080)) >> dropped(DropReason::kBadSourceAddress),
        raw(from_to("255.255.255.255", 40000, "10.99.0.1", 22)) >> dropped(DropReason::kBadSourceAddress)},
       {drops(DropReason::kLand, 2), drops(DropReason::kSpoofedSource, 3),
        drops(DropReason::kBadSourceAddress, 4)}});
}

void add_flow_states(std::vector<Fixture>& t) {
  // ---- flow states
  t.push_back({"syn_sent then syn_recv then established only on the client ack",
               no_tweak,
               {client(0, kTcpSyn) >> forwarded(), in_state(0, F::kSynSent, false),
                backend(0, kTcpSyn | kTcpAck) >> to_client(), in_state(0, F::kSynRecv, false),
                client(0, kTcpAck) >> forwarded(), in_state(0, F::kEstablished, true),
                client(0, kTcpAck | 0x08).data("GET /") >> forwarded(),
                backend(0, kTcpAck).data("200") >> to_client()},
               {created(1), unconfirmed(0), state_gauge(F::kEstablished, 1)}});
  t.push_back({"a backend syn-ack alone does not confirm",
               no_tweak,
               {client(0, kTcpSyn) >> forwarded(), backend(0, kTcpSyn | kTcpAck) >> to_client(),
                backend(0, kTcpAck).data("x") >> to_client(), in_state(0, F::kSynRecv, false)},
               {created(1), unconfirmed(1)}});
  t.push_back({"a non-syn miss is midstream until the backend answers",
               no_tweak,
               {client(0, kTcpAck).data("more") >> forwarded(), in_state(0, F::kMidstream, false),
                client(0, kTcpAck).data("more") >> forwarded(), in_state(0, F::kMidstream, false),
                backend(0, kTcpAck) >> to_client(), in_state(0, F::kEstablished, true)},
               {created(1), unconfirmed(0)}});
  t.push_back({"a rst miss makes no flow",
               no_tweak,
               {client(0, kTcpRst) >> dropped(DropReason::kTcpMissPolicy), gone(0)},
               {drops(DropReason::kTcpMissPolicy, 1)}});
  t.push_back(
      {"fin then fin is time_wait",
       no_tweak,
       handshake(0) +
           std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(), in_state(0, F::kFinWait, true),
                             backend(0, kTcpFin | kTcpAck) >> to_client(), in_state(0, F::kTimeWait, true),
                             client(0, kTcpAck) >> forwarded(), in_state(0, F::kTimeWait, true)},
       {created(1)}});
  t.push_back({"a rst closes",
               no_tweak,
               handshake(0) + std::vector<Step>{backend(0, kTcpRst) >> to_client(),
                                                in_state(0, F::kClose, true), at(1 + 2.5), gone(0)},
               {created(1), closed(1)}});
  t.push_back({"udp is unreplied until a reply",
               no_tweak,
               {client(0, 0).to("dns").data("q") >> forwarded(), in_state(0, F::kUdpUnreplied, false),
                client(0, 0).data("q2") >> forwarded(), in_state(0, F::kUdpUnreplied, false),
                backend(0, 0).data("a") >> to_client(), in_state(0, F::kUdp, true)},
               {created(1), unconfirmed(0)}});

  // Each state's timeout: kept just before it, gone just after.
  struct Timed {
    FlowState state;
    double timeout;
    std::vector<Step> reach;
    bool closing;
  };
  const std::vector<Timed> timed = {
      {F::kSynSent, 3, {client(0, kTcpSyn) >> forwarded()}, false},
      {F::kSynRecv,
       4,
       {client(0, kTcpSyn) >> forwarded(), backend(0, kTcpSyn | kTcpAck) >> to_client()},
       false},
      {F::kMidstream, 4, {client(0, kTcpAck) >> forwarded()}, false},
      {F::kEstablished, 50, handshake(0), false},
      {F::kFinWait, 6, handshake(0) + std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded()}, true},
      {F::kTimeWait, 7,
       handshake(0) + std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(),
                                        backend(0, kTcpFin | kTcpAck) >> to_client()},
       true},
      {F::kClose, 2, handshake(0) + std::vector<Step>{client(0, kTcpRst | kTcpAck) >> forwarded()}, true},
      {F::kUdpUnreplied, 8, {client(0, 0).to("dns") >> forwarded()}, false},
      {F::kUdp, 40, {client(0, 0).to("dns") >> forwarded(), backend(0, 0) >> to_client()}, false},
  };
  for (const Timed& s : timed) {
    const bool confirmed = s.state != F::kSynSent && s.state != F::kSynRecv && s.state != F::kMidstream &&
                           s.state != F::kUdpUnreplied;
    t.push_back(
        {std::string(kFlowStateNames[static_cast<size_t>(s.state)]) + " expires after its timeout",
         no_tweak,
         s.reach + std::vector<Step>{in_state(0, s.state, confirmed), at(1 + s.timeout - 0.1),
                                     in_state(0, s.state, confirmed), at(1 + s.timeout + 0.1), gone(0)},
         {created(1), s.closing ? closed(1) : expired(1), active(0)}});
  }
}

void add_rst_window(std::vector<Fixture>& t) {
  // ---- the RST window
  t.push_back({"a rst inside the window closes the flow",
               no_tweak,
               handshake(0) + std::vector<Step>{backend(0, kTcpRst).seq(-0x8000) >> to_client(),
                                                in_state(0, F::kClose, true)},
               {created(1)}});
  t.push_back({"a rst up to 1 MiB past the receiver's ack closes the flow",
               no_tweak,
               handshake(0) + std::vector<Step>{client(0, kTcpRst).seq(0xF0000) >> forwarded(),
                                                in_state(0, F::kClose, true)},
               {created(1)}});
  // A backend still half-open on a reused port answers a new SYN with its
  // old SYN-ACK; the client answers that with a RST at the SYN-ACK's ack
  // (RFC 793 §3.4), far from the client's own sequence but at what the
  // backend expects: it must reach the backend, or the port stays stuck.
  t.push_back(
      {"a client's rst for a stale syn-ack reaches the backend",
       no_tweak,
       {client(0, kTcpSyn) >> forwarded(), backend(0, kTcpSyn | kTcpAck).acking(0x55550000) >> to_client(),
        client(0, kTcpRst).seq_is(0x55550000) >> forwarded(), in_state(0, F::kClose, false)},
       {created(1)}});
  t.push_back({"a rst outside the window is dropped and the flow stays",
               no_tweak,
               handshake(0) +
                   std::vector<Step>{
                       backend(0, kTcpRst).seq(0x80000000) >> dropped(DropReason::kRstOutOfWindow),
                       client(0, kTcpRst | kTcpAck).seq(0x00200000) >> dropped(DropReason::kRstOutOfWindow),
                       client(0, kTcpRst).seq(-0x00110000) >> dropped(DropReason::kRstOutOfWindow),
                       in_state(0, F::kEstablished, true), client(0, kTcpAck).data("still") >> forwarded(),
                       backend(0, kTcpAck).data("here") >> to_client(), in_state(0, F::kEstablished, true)},
               {created(1), drops(DropReason::kRstOutOfWindow, 3)}});
}

void add_syn_on_closing(std::vector<Fixture>& t) {
  // ---- a pure SYN on a closing flow is a new connection
  t.push_back(
      {"syn on time_wait takes a fresh maglev choice after its backend is removed",
       no_tweak,
       handshake(0, "10.99.0.22") +
           std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(),
                             backend(0, kTcpFin | kTcpAck) >> to_client(), in_state(0, F::kTimeWait, true),
                             reload("10.99.0.22 removed",
                                    [](Rig& r) {
                                      auto& b = r.config.vips[0].backends;
                                      b.erase(b.begin() + 1);
                                    }),
                             client(0, kTcpSyn).seq(0x10000) >> forwarded_not_to("10.99.0.22"),
                             in_state(0, F::kSynSent, false)},
       {created(2), closed(1), unconfirmed(1)}});
  t.push_back({"syn on time_wait after its backend is removed is a new connection under down_policy reset",
               [](config::Config& c) { c.vips[0].down_policy = config::DownPolicy::kReset; },
               handshake(0, "10.99.0.22") +
                   std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(),
                                     backend(0, kTcpFin | kTcpAck) >> to_client(),
                                     reload("10.99.0.22 removed",
                                            [](Rig& r) {
                                              auto& b = r.config.vips[0].backends;
                                              b.erase(b.begin() + 1);
                                            }),
                                     client(0, kTcpSyn).seq(0x10000) >> forwarded_not_to("10.99.0.22"),
                                     in_state(0, F::kSynSent, false)},
               {created(2), closed(1), unconfirmed(1)}});
  t.push_back({"an established flow of a removed backend is reset under down_policy reset",
               [](config::Config& c) { c.vips[0].down_policy = config::DownPolicy::kReset; },
               handshake(0, "10.99.0.22") +
                   std::vector<Step>{reload("10.99.0.22 removed",
                                            [](Rig& r) {
                                              auto& b = r.config.vips[0].backends;
                                              b.erase(b.begin() + 1);
                                            }),
                                     client(0, kTcpAck).data("GET /") >> rst_to_client(), gone(0)},
               {created(1), closed(1), reset(1)}});
  t.push_back({"syn on time_wait to the same backend takes a new snat port",
               no_tweak,
               handshake(0, "10.99.0.22") +
                   std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(),
                                     backend(0, kTcpFin | kTcpAck) >> to_client(),
                                     client(0, kTcpSyn).seq(0x10000) >> forwarded_anew("10.99.0.22"),
                                     Step{"the new flow's port is the next one",
                                          [](Rig& r) { EXPECT_EQ(ntohs(r.flows[0].snat_port), 10241); }}},
               {created(2), closed(1), unconfirmed(1)}});
  t.push_back({"syn on a closed flow is a new connection",
               no_tweak,
               handshake(0) + std::vector<Step>{client(0, kTcpRst | kTcpAck) >> forwarded(),
                                                in_state(0, F::kClose, true),
                                                client(0, kTcpSyn).seq(0x10000) >> forwarded_anew(),
                                                in_state(0, F::kSynSent, false)},
               {created(2), closed(1), unconfirmed(1)}});
  t.push_back(
      {"syn on time_wait counts against max_embryonic",
       [](config::Config& c) { c.vips[0].max_embryonic = 1; },
       handshake(0) + std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(),
                                        backend(0, kTcpFin | kTcpAck) >> to_client(),
                                        client(1, kTcpSyn) >> forwarded(),
                                        client(0, kTcpSyn).seq(0x10000) >> dropped(DropReason::kSynLimit),
                                        gone(0), in_state(1, F::kSynSent, false)},
       {created(2), closed(1), unconfirmed(1), drops(DropReason::kSynLimit, 1)}});
}

void add_snat_pools(std::vector<Fixture>& t) {
  // ---- SNAT pools per backend
  {
    std::vector<Step> s;
    const char* backends[] = {"10.99.0.21", "10.99.0.22", "10.99.0.23"};
    for (int b = 0; b < 3; ++b)
      for (int k = 0; k < 4; ++k) s = s + handshake(b * 4 + k, backends[b]);
    s.push_back(client(12, kTcpSyn).via("10.99.0.21") >> dropped(DropReason::kSnatExhausted));
    s.push_back(client(13, kTcpSyn).via("10.99.0.22") >> dropped(DropReason::kSnatExhausted));
    for (int n = 0; n < 12; ++n) s.push_back(in_state(n, F::kEstablished, true));
    t.push_back({"four snat ports and three backends hold twelve confirmed flows",
                 four_ports,
                 s,
                 {created(12), drops(DropReason::kSnatExhausted, 2), state_gauge(F::kEstablished, 12),
                  unconfirmed(0)}});
  }
  t.push_back({"a port short pool evicts its oldest unconfirmed flow never a confirmed one",
               four_ports,
               std::vector<Step>{client(9, kTcpSyn).via("10.99.0.22") >> forwarded("10.99.0.22")} +
                   handshake(0, "10.99.0.21") +
                   std::vector<Step>{
                       client(1, kTcpSyn).via("10.99.0.21") >> forwarded(),
                       client(2, kTcpSyn).via("10.99.0.21") >> forwarded(),
                       client(3, kTcpSyn).via("10.99.0.21") >> forwarded(),
                       client(4, kTcpSyn).via("10.99.0.21") >> forwarded_from_port_of(1), gone(1),
                       in_state(2, F::kSynSent, false), in_state(3, F::kSynSent, false),
                       in_state(4, F::kSynSent, false), in_state(9, F::kSynSent, false),
                       client(0, kTcpAck).data("alive") >> forwarded(), in_state(0, F::kEstablished, true),
                       client(5, kTcpSyn).via("10.99.0.21") >> forwarded_from_port_of(2), gone(2)},
               {created(7), evicted(2), evicted_for_port(2), unconfirmed(4)}});
  t.push_back(
      {"a full table evicts the globally oldest unconfirmed flow",
       [](config::Config& c) { c.dataplane.flows_per_worker = 4; },
       handshake(0) + std::vector<Step>{client(1, kTcpSyn).via("10.99.0.21") >> forwarded(),
                                        client(2, kTcpSyn).via("10.99.0.22") >> forwarded(),
                                        client(3, kTcpSyn).via("10.99.0.23") >> forwarded(),
                                        client(4, kTcpSyn).via("10.99.0.23") >> forwarded(), gone(1),
                                        in_state(0, F::kEstablished, true), in_state(2, F::kSynSent, false),
                                        in_state(3, F::kSynSent, false), in_state(4, F::kSynSent, false)},
       {created(5), evicted(1), evicted_for_port(0), active(4)}});
  t.push_back(
      {"a full table under refuse evicts nothing",
       [](config::Config& c) {
         c.dataplane.flows_per_worker = 4;
         c.dataplane.table_full = config::TableFullPolicy::kRefuse;
       },
       handshake(0) + std::vector<Step>{client(1, kTcpSyn) >> forwarded(), client(2, kTcpSyn) >> forwarded(),
                                        client(3, kTcpSyn) >> forwarded(),
                                        client(4, kTcpSyn) >> dropped(DropReason::kFlowTableFull),
                                        in_state(1, F::kSynSent, false)},
       {created(4), drops(DropReason::kFlowTableFull, 1), active(4)}});

  t.push_back(
      {"a full table of confirmed flows refuses new ones and keeps the port",
       [](config::Config& c) { c.dataplane.flows_per_worker = 2; },
       handshake(0, "10.99.0.21") + handshake(1, "10.99.0.21") +
           std::vector<Step>{client(2, kTcpSyn).via("10.99.0.21") >> dropped(DropReason::kFlowTableFull),
                             Step{"the refused flow's port went back",
                                  [](Rig& r) {
                                    const SnatPools& p = r.worker->snat_pools();
                                    const uint16_t pool = p.find(0, ip("10.99.0.21"), port(80));
                                    ASSERT_NE(pool, SnatPools::kNoPool);
                                    EXPECT_EQ(p.pool(pool).in_use, 2u);
                                  }}},
       {created(2), drops(DropReason::kFlowTableFull, 1), unconfirmed(0)}});
  t.push_back({"midstream flows count against max_embryonic",
               [](config::Config& c) { c.vips[0].max_embryonic = 2; },
               {client(0, kTcpAck) >> forwarded(), client(1, kTcpAck) >> forwarded(),
                client(2, kTcpAck) >> dropped(DropReason::kSynLimit),
                client(3, kTcpSyn) >> dropped(DropReason::kSynLimit), backend(0, kTcpAck) >> to_client(),
                client(3, kTcpSyn) >> forwarded()},
               {created(3), unconfirmed(2), drops(DropReason::kSynLimit, 2)}});
  t.push_back({"pools past the arena wait for an idle one",
               [](config::Config& c) { c.dataplane.snat_pools_per_worker = 2; },
               {client(0, kTcpSyn).via("10.99.0.21") >> forwarded(),
                client(1, kTcpSyn).via("10.99.0.22") >> forwarded(),
                client(2, kTcpSyn).via("10.99.0.23") >> dropped(DropReason::kSnatPoolsFull), at(4.5), gone(0),
                gone(1), client(3, kTcpSyn).via("10.99.0.23") >> dropped(DropReason::kSnatPoolsFull),
                at(4.5 + 60 + 0.1), client(4, kTcpSyn).via("10.99.0.23") >> forwarded_from_port(10240),
                client(5, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240)},
               {created(4), expired(2), drops(DropReason::kSnatPoolsFull, 2)}});
}

void add_port_hold(std::vector<Fixture>& t) {
  // ---- the port hold
  t.push_back(
      {"a port of a flow idle while established is held",
       one_port,
       handshake(0, "10.99.0.21") +
           std::vector<Step>{at(1 + 50 + 0.1), gone(0),
                             client(1, kTcpSyn).via("10.99.0.21") >> dropped(DropReason::kSnatExhausted),
                             at(51.1 + 60 + 0.1),
                             client(2, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240)},
       {created(2), expired(1), drops(DropReason::kSnatExhausted, 1)}});
  t.push_back(
      {"a port whose backend closed first is held for snat_port_hold_s",
       one_port,
       handshake(0, "10.99.0.21") +
           std::vector<Step>{
               backend(0, kTcpFin | kTcpAck) >> to_client(), client(0, kTcpFin | kTcpAck) >> forwarded(),
               backend(0, kTcpAck) >> to_client(), in_state(0, F::kTimeWait, true), at(8.5), gone(0),
               client(1, kTcpSyn).via("10.99.0.21") >> dropped(DropReason::kSnatExhausted),
               client(2, kTcpSyn).via("10.99.0.22") >> forwarded_from_port(10240),
               // The hold runs from the flow's end (8.5 s).
               at(8.5 + 60 - 1), client(3, kTcpSyn).via("10.99.0.21") >> dropped(DropReason::kSnatExhausted),
               at(8.5 + 60 + 0.1), client(4, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240)},
       {created(3), closed(1), expired(1), drops(DropReason::kSnatExhausted, 2)}});
  t.push_back(
      {"with two ports a held one leaves the other",
       [](config::Config& c) {
         c.dataplane.snat_port_min = 10240;
         c.dataplane.snat_port_max = 10241;
       },
       handshake(0, "10.99.0.21") +
           std::vector<Step>{backend(0, kTcpFin | kTcpAck) >> to_client(),
                             client(0, kTcpFin | kTcpAck) >> forwarded(), at(8.5), gone(0),
                             client(1, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10241),
                             backend(1, kTcpSyn | kTcpAck) >> to_client(), client(1, kTcpAck) >> forwarded(),
                             client(2, kTcpSyn).via("10.99.0.21") >> dropped(DropReason::kSnatExhausted)},
       {created(2), closed(1), drops(DropReason::kSnatExhausted, 1)}});
  t.push_back({"a port whose client closed first is free at once",
               one_port,
               handshake(0, "10.99.0.21") +
                   std::vector<Step>{client(0, kTcpFin | kTcpAck) >> forwarded(),
                                     backend(0, kTcpFin | kTcpAck) >> to_client(), at(8.5), gone(0),
                                     client(1, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240)},
               {created(2), closed(1)}});
  t.push_back({"a port of a reset flow is free at once",
               one_port,
               handshake(0, "10.99.0.21") +
                   std::vector<Step>{backend(0, kTcpRst) >> to_client(), at(1 + 2.5), gone(0),
                                     client(1, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240)},
               {created(2), closed(1)}});
  t.push_back({"a replied udp flow's port is free at once: udp has no TIME_WAIT",
               one_port,
               {client(0, 0).to("dns").data("q").via("10.99.0.21") >> forwarded(),
                backend(0, 0).data("a") >> to_client(), in_state(0, F::kUdp, true), at(1 + 40 + 1.5), gone(0),
                client(1, 0).to("dns").data("q").via("10.99.0.21") >> forwarded_from_port(10240)},
               {created(2), expired(1)}});
  t.push_back({"an unconfirmed flow's port is free at once",
               one_port,
               {client(0, kTcpSyn).via("10.99.0.21") >> forwarded(), at(1 + 3.5), gone(0),
                client(1, kTcpSyn).via("10.99.0.21") >> forwarded_from_port(10240)},
               {created(2), expired(1)}});
}

void add_reloads(std::vector<Fixture>& t) {
  // ---- reloads
  t.push_back({"a neighbour's new mac reaches existing flows",
               no_tweak,
               handshake(0, "10.99.0.22") +
                   std::vector<Step>{reload("10.99.0.22 moves to 02:00:00:00:01:22",
                                            [](Rig& r) {
                                              r.neighbours[host_ip("10.99.0.22")] = {{2, 0, 0, 0, 1, 0x22}};
                                            }),
                                     client(0, kTcpAck).data("after") >> forwarded("10.99.0.22")},
               {created(1)}});
  t.push_back(
      {"replies to a removed snat address still drain",
       no_tweak,
       handshake(0) + std::vector<Step>{reload("every SNAT address 10.99.0.1 becomes 10.99.0.5",
                                               [](Rig& r) {
                                                 for (auto& v : r.config.vips)
                                                   if (v.mode == config::NatMode::kFnat)
                                                     v.snat = {host_ip("10.99.0.5")};
                                               }),
                                        backend(0, kTcpAck).data("late") >> to_client(),
                                        client(0, kTcpAck).data("more") >> forwarded(),
                                        client(1, kTcpSyn) >> forwarded(),
                                        Step{"new flows use the new address",
                                             [](Rig& r) { EXPECT_EQ(r.flows[1].snat_ip, ip("10.99.0.5")); }}},
       {created(2)}});
  t.push_back(
      {"replies of a removed dnat backend still drain",
       no_tweak,
       handshake(0, "10.99.0.31", "api") +
           std::vector<Step>{reload("api's backend becomes 10.99.0.32",
                                    [](Rig& r) {
                                      r.config.vips[2].backends = {{host_ip("10.99.0.32"), 9090, 1, 0}};
                                    }),
                             backend(0, kTcpAck).data("late") >> to_client(),
                             client(0, kTcpAck).data("more") >> forwarded("10.99.0.31"),
                             client(1, kTcpSyn).to("api") >> forwarded("10.99.0.32")},
       {created(2)}});
}

// ------------------------------------------------------------ ICMP errors

// An ICMP error about one of flow 0's packets, sent from `router` to the
// packet's source: `toward_backend` quotes the packet l4lbd sent to the
// backend, otherwise the reply it sent to the client. `in` is the error as
// it arrives; `want` the error the other side's own packet would have met,
// which is what the worker must send on.
struct IcmpErrorCase {
  std::vector<uint8_t> in, want;
};
IcmpErrorCase icmp_error_about_flow(const Rig& r, bool toward_backend, const char* router) {
  const FlowRec& f = r.flows.at(0);
  const bool dnat = f.vip_ip == ip("10.99.0.101");
  PacketSpec sent;  // as it left l4lbd
  sent.tcp_flags = kTcpAck;
  sent.payload = "0123456789";
  PacketSpec origin = sent;  // as its sender sent it
  if (toward_backend) {
    sent.src_ip = f.snat_ip, sent.src_port = f.snat_port;
    sent.dst_ip = f.backend_ip, sent.dst_port = f.backend_port;
    origin.src_ip = f.client_ip, origin.src_port = f.client_port;
    origin.dst_ip = f.vip_ip, origin.dst_port = f.vip_port;
  } else {
    sent.src_ip = f.vip_ip, sent.src_port = f.vip_port;
    sent.dst_ip = f.client_ip, sent.dst_port = f.client_port;
    origin.src_ip = f.backend_ip, origin.src_port = f.backend_port;
    origin.dst_ip = f.snat_ip, origin.dst_port = f.snat_port;
  }
  const size_t quote = 20 + 20 + 4;  // as a router quotes: the header and 24 bytes
  const uint8_t from_router[6] = {0x02, 0, 0, 0, 0, 0xfe};
  IcmpErrorCase c;
  c.in = test::build_icmp_error(ip(router), sent.src_ip, 3, 4, 1280, build_packet(sent), quote, kPortMac.bytes,
                                from_router);
  if (toward_backend) {
    c.want = test::build_icmp_error(f.vip_ip, f.client_ip, 3, 4, 1280, build_packet(origin), quote, kClientMac,
                                    kPortMac.bytes);
  } else {
    const MacAddress& backend_mac = r.neighbours.at(ntohl(f.backend_ip));
    c.want = test::build_icmp_error(dnat ? f.vip_ip : f.snat_ip, f.backend_ip, 3, 4, 1280, build_packet(origin),
                                    quote, backend_mac.bytes, kPortMac.bytes);
  }
  return c;
}

Step icmp_error_step(const char* what, bool toward_backend, const char* router) {
  return Step{what, [toward_backend, router](Rig& r) {
                const IcmpErrorCase c = icmp_error_about_flow(r, toward_backend, router);
                const Rig::Out out = r.send(c.in);
                ASSERT_EQ(out.tx.size(), 1u) << "the error is sent on";
                expect_frame(out.tx[0], c.want);
              }};
}

void add_icmp_errors(std::vector<Fixture>& t) {
  const Count translated = count("icmp_errors_translated", &WorkerCounters::icmp_errors_translated, 1);
  t.push_back({"fnat: an icmp error about a packet to the backend reaches the client, from the vip",
               no_tweak,
               handshake(0) + std::vector<Step>{icmp_error_step("fragmentation needed", true, "10.99.0.254")},
               {created(1), translated}});
  t.push_back({"fnat: an icmp error about a reply to the client reaches the backend, from the snat address",
               no_tweak,
               handshake(0) + std::vector<Step>{icmp_error_step("fragmentation needed", false, "198.51.100.1")},
               {created(1), translated}});
  t.push_back({"dnat: an icmp error about a packet to the backend reaches the client, from the vip",
               no_tweak,
               handshake(0, "10.99.0.31", "api") +
                   std::vector<Step>{icmp_error_step("fragmentation needed", true, "10.99.0.254")},
               {created(1), translated}});
  t.push_back({"dnat: an icmp error about a reply to the client reaches the backend, from the vip",
               no_tweak,
               handshake(0, "10.99.0.31", "api") +
                   std::vector<Step>{icmp_error_step("fragmentation needed", false, "198.51.100.1")},
               {created(1), translated}});
  t.push_back({"with icmp_errors: ignore, an icmp error about a flow goes where any icmp would",
               [](config::Config& c) { c.dataplane.icmp_errors = config::IcmpErrorPolicy::kIgnore; },
               handshake(0) + std::vector<Step>{Step{"to the kernel, untranslated", [](Rig& r) {
                 const IcmpErrorCase c = icmp_error_about_flow(r, true, "10.99.0.254");
                 const Rig::Out out = r.send(c.in);
                 ASSERT_EQ(out.control.size(), 1u);
                 EXPECT_EQ(out.control[0], c.in);
               }}},
               {created(1), control(1)}});
  // The same errors with no flow to match, and one about the appliance's
  // own traffic (a probe from 10.99.0.1:45000, outside the SNAT range).
  const uint8_t router_mac[6] = {0x02, 0, 0, 0, 0, 0xfe};
  const auto error_about = [router_mac](const PacketSpec& sent) {
    return test::build_icmp_error(ip("10.99.0.254"), sent.src_ip, 3, 4, 1280, build_packet(sent), 44,
                                  kPortMac.bytes, router_mac);
  };
  t.push_back({"an icmp error about a flow the appliance does not hold is dropped",
               no_tweak,
               {raw_bytes(error_about(from_to("10.99.0.1", 10300, "10.99.0.21", 80, kProtoTcp, kTcpAck))) >>
                    dropped(DropReason::kIcmpErrorNoFlow),
                raw_bytes(error_about(from_to("10.99.0.100", 8080, "10.99.0.10", 40000, kProtoTcp, kTcpAck))) >>
                    dropped(DropReason::kIcmpErrorNoFlow)},
               {drops(DropReason::kIcmpErrorNoFlow, 2)}});
  t.push_back({"an icmp error about the appliance's own traffic goes to the kernel",
               no_tweak,
               {raw_bytes(error_about(from_to("10.99.0.1", 45000, "10.99.0.31", 9090, kProtoTcp, kTcpSyn))) >>
                    to_control()},
               {control(1)}});
}

std::vector<Fixture> fixtures() {
  std::vector<Fixture> t;
  add_classification(t);
  add_flow_states(t);
  add_rst_window(t);
  add_syn_on_closing(t);
  add_snat_pools(t);
  add_port_hold(t);
  add_reloads(t);
  add_icmp_errors(t);
  return t;
}

// ============================================================ running them

const std::vector<Fixture>& all_fixtures() {
  static const std::vector<Fixture> f = fixtures();
  return f;
}

class PacketFixture : public ::testing::TestWithParam<size_t> {};

TEST_P(PacketFixture, Holds) {
  const Fixture& f = all_fixtures()[GetParam()];
  const unsigned in_use = rte_mempool_in_use_count(g_pool);
  {
    Rig run(f);
    for (size_t i = 0; i < f.steps.size(); ++i) {
      SCOPED_TRACE("step " + std::to_string(i + 1) + ": " + f.steps[i].what);
      f.steps[i].run(run);
      if (::testing::Test::HasFatalFailure()) break;
    }
    std::map<std::string, const Count*> named;
    for (const Count& c : f.counts) named[c.name] = &c;
    for (const Count& c : f.counts) EXPECT_EQ(c.get(run.worker->counters()), c.want) << c.name;
    for (const Count& c : watched())
      if (!named.count(c.name)) {
        EXPECT_EQ(c.get(run.worker->counters()), 0u) << c.name << " (not named by the fixture)";
      }
    for (const auto& problem : run.worker->audit()) ADD_FAILURE() << "audit: " << problem;
  }
  EXPECT_EQ(rte_mempool_in_use_count(g_pool), in_use) << "every mbuf is back";
}

std::string fixture_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n;
  for (char c : all_fixtures()[info.param].name) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Dataplane, PacketFixture, ::testing::Range<size_t>(0, all_fixtures().size()),
                         fixture_name);

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("packet_fixtures_test", "512", "0")) return 1;
  g_pool = l4lb::test::make_test_pool("fixture_mbufs", 2047);
  if (!g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(g_pool);
  rte_eal_cleanup();
  return rc;
}
