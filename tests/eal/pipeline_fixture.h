// The worker rigs of the EAL tests: one worker on a net_ring port whose rx
// ring the test fills and whose tx ring it drains (Pipeline), and two
// workers on one two-queue port joined by hand-off rings (TwoWorkers). Both
// build their snapshot with the real builder and check at teardown that
// every mbuf went back to the pool. The test binary's main() creates
// g_pool after starting the EAL.
#pragma once

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../common/packet_builder.h"
#include "forwarding_config.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/port.h"

namespace l4lb::test {

using namespace l4lb::dataplane;

inline constexpr uint64_t kHz = 1'000'000;  // fake TSC: one tick per microsecond
inline constexpr uint64_t kSecond = kHz;

inline rte_mempool* g_pool;

// The backend's answer to a forwarded frame (addresses swapped).
inline std::vector<uint8_t> reply_to(const std::vector<uint8_t>& forwarded, uint8_t flags,
                                     const std::string& payload = "") {
  const ParsedPacket p = parse_packet(forwarded.data(), static_cast<uint32_t>(forwarded.size()));
  PacketSpec r;
  std::memcpy(r.src_mac, forwarded.data(), 6);
  std::memcpy(r.dst_mac, forwarded.data() + 6, 6);
  r.proto = p.proto;
  r.src_ip = p.dst_ip;
  r.dst_ip = p.src_ip;
  r.src_port = p.dst_port;
  r.dst_port = p.src_port;
  r.tcp_flags = flags;
  r.payload = payload;
  return build_packet(r);
}

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override { start(config::TcpMissPolicy::kForward); }

  void start(config::TcpMissPolicy miss, bool evict_unconfirmed = true) {
    in_use_at_start_ = rte_mempool_in_use_count(g_pool);
    static int instance = 0;
    const std::string n = std::to_string(instance++);
    rx_ = rte_ring_create(("rx" + n).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx_ = rte_ring_create(("tx" + n).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    snap_ring_ = rte_ring_create(("sn" + n).c_str(), 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    slow_ = rte_ring_create(("sl" + n).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    inject_ = rte_ring_create(("in" + n).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_TRUE(rx_ && tx_ && snap_ring_ && slow_ && inject_);
    const int port_id = rte_eth_from_rings(("ring" + n).c_str(), &rx_, 1, &tx_, 1, 0);
    ASSERT_GE(port_id, 0);
    port_ = std::make_unique<dpdk::Port>(static_cast<uint16_t>(port_id), dpdk::PortQueues{1, 1, 256, 256}, g_pool);
    port_id_ = port_->id();

    config_ = make_config(miss);
    neighbours_ = neighbours();
    controlplane::SnapshotInputs in{&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 1};
    snapshot_ = controlplane::build_snapshot(in, snat_slots_);

    WorkerSetup s;
    s.port_id = port_id_;
    s.snapshot_ring = snap_ring_;
    s.slow_path_ring = slow_;
    s.inject_ring = inject_;
    s.flow_capacity = 1024;
    s.snat_port_min = config_.dataplane.snat_port_min;
    s.snat_port_max = config_.dataplane.snat_port_max;
    s.snat_pools = 16;
    s.evict_unconfirmed = evict_unconfirmed;
    s.fragment_datagrams = fragment_datagrams_;
    worker_ = std::make_unique<Worker>(s, snapshot_.get());
  }

  void TearDown() override {
    // Whatever the test did, table, SNAT pool and counters must agree.
    if (worker_)
      for (const auto& problem : worker_->audit()) ADD_FAILURE() << "audit: " << problem;
    worker_.reset();  // frees the flow table
    drain(tx_);
    drain(slow_);
    drain(inject_);
    drain(rx_);
    port_.reset();
    for (rte_ring* r : {rx_, tx_, snap_ring_, slow_, inject_}) rte_ring_free(r);
    // Every mbuf the test allocated went back to the pool.
    EXPECT_EQ(rte_mempool_in_use_count(g_pool), in_use_at_start_);
  }

  static void drain(rte_ring* r) {
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }

  // Sends one frame through a worker loop iteration at time `now`.
  void send(const std::vector<uint8_t>& frame, uint64_t now = 1000) {
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    ASSERT_NE(m, nullptr);
    // An empty frame is a test case too; memcpy from its null data is not.
    if (!frame.empty())
      std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    ASSERT_EQ(rte_ring_enqueue(rx_, m), 0);
    worker_->poll_once(now);
  }

  // The next frame the worker transmitted, or empty.
  std::vector<uint8_t> sent() {
    void* p;
    if (rte_ring_dequeue(tx_, &p) != 0) return {};
    auto* m = static_cast<rte_mbuf*>(p);
    const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
    std::vector<uint8_t> out(d, d + rte_pktmbuf_data_len(m));
    rte_pktmbuf_free(m);
    return out;
  }

  uint64_t drops(DropReason r) const { return worker_->counters().drops[static_cast<size_t>(r)].get(); }

  // Ports no flow holds in the pool of SNAT slot 0 towards the backend a
  // forwarded frame went to.
  uint32_t free_ports(const std::vector<uint8_t>& forwarded) {
    const ParsedPacket f = parse(forwarded);
    const uint16_t pool = worker_->snat_pools().find(0, f.dst_ip, f.dst_port);
    EXPECT_NE(pool, SnatPools::kNoPool);
    return pool == SnatPools::kNoPool ? 0 : worker_->snat_pools().free_count(pool);
  }

  ParsedPacket parse(const std::vector<uint8_t>& f) { return parse_packet(f.data(), static_cast<uint32_t>(f.size())); }

  // Client SYN in; returns the forwarded frame.
  std::vector<uint8_t> open_flow(uint16_t client_port, uint64_t now = 1000) {
    PacketSpec s;
    s.src_port = port(client_port);
    send(build_packet(s), now);
    return sent();
  }

  // SYN-ACK from the backend, then the client's ACK: the flow is established.
  void complete_handshake(const std::vector<uint8_t>& fwd, uint16_t client_port, uint64_t now = 1000) {
    send(reply_to(fwd, kTcpSyn | kTcpAck), now);
    sent();
    PacketSpec ack;
    ack.src_port = port(client_port);
    ack.tcp_flags = kTcpAck;
    send(build_packet(ack), now);
    sent();
  }

  std::unique_ptr<dpdk::Port> port_;
  uint16_t port_id_ = 0;
  rte_ring *rx_ = nullptr, *tx_ = nullptr, *snap_ring_ = nullptr, *slow_ = nullptr, *inject_ = nullptr;
  config::Config config_;
  controlplane::NeighbourMap neighbours_;
  controlplane::BuildState snat_slots_;
  std::unique_ptr<Snapshot> snapshot_;
  std::unique_ptr<Worker> worker_;
  uint32_t fragment_datagrams_ = 4096;
  unsigned in_use_at_start_ = 0;
};

// Two workers on one two-queue ring port, joined by hand-off rings: packets
// that reach the wrong worker must be delivered once, by the owner.
class TwoWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    in_use_at_start_ = rte_mempool_in_use_count(g_pool);
    static int instance = 0;
    const std::string n = "tw" + std::to_string(instance++);
    auto ring = [&](const std::string& name) {
      rte_ring* r = rte_ring_create((n + name).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
      owned_.push_back(r);
      return r;
    };
    for (int q = 0; q < 2; ++q) {
      rx_[q] = ring("rx" + std::to_string(q));
      tx_[q] = ring("tx" + std::to_string(q));
    }
    const int port_id = rte_eth_from_rings(n.c_str(), rx_, 2, tx_, 2, 0);
    ASSERT_GE(port_id, 0);
    port_ = std::make_unique<dpdk::Port>(static_cast<uint16_t>(port_id), dpdk::PortQueues{2, 2, 256, 256, false},
                                         g_pool);
    config_ = make_config();
    config_.dataplane.workers = 2;
    config::VipConfig dnat = config_.vips[0];
    dnat.name = "dnat";
    dnat.port = 9090;
    dnat.mode = config::NatMode::kDnat;
    dnat.snat.clear();
    dnat.backends = {{host_ip("10.99.0.31"), 9090, 1, 0}};
    config_.vips.push_back(dnat);
    config::VipConfig dnat_udp = dnat;
    dnat_udp.name = "dnat-udp";
    dnat_udp.port = 9091;
    dnat_udp.protocol = config::Protocol::kUdp;
    dnat_udp.backends = {{host_ip("10.99.0.31"), 9091, 1, 0}};
    config_.vips.push_back(dnat_udp);
    neighbours_ = neighbours();
    neighbours_[host_ip("10.99.0.31")] = {{0x02, 0, 0, 0, 0, 31}};
    snapshot_ = controlplane::build_snapshot({&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 1}, slots_);
    rte_ring* handoff[2][2] = {{nullptr, ring("h01")}, {ring("h10"), nullptr}};
    for (uint32_t w = 0; w < 2; ++w) {
      WorkerSetup s;
      s.index = w;
      s.worker_count = 2;
      s.port_id = port_->id();
      s.rx_queue = s.tx_queue = static_cast<uint16_t>(w);
      s.snapshot_ring = ring("sn" + std::to_string(w));
      s.slow_path_ring = ring("sl" + std::to_string(w));
      s.inject_ring = ring("in" + std::to_string(w));
      for (uint32_t o = 0; o < 2; ++o) {
        s.handoff_out[o] = handoff[w][o];
        s.handoff_in[o] = handoff[o][w];
      }
      s.flow_capacity = 1024;
      s.snat_port_min = config_.dataplane.snat_port_min;
      s.snat_port_max = config_.dataplane.snat_port_max;
      s.snat_pools = 16;
      workers_[w] = std::make_unique<Worker>(s, snapshot_.get());
    }
  }

  void TearDown() override {
    for (auto& w : workers_) w.reset();
    port_.reset();
    for (rte_ring* r : owned_) {
      void* m;
      if (std::string(r->name).find("sn") == std::string::npos)
        while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
    }
    EXPECT_EQ(rte_mempool_in_use_count(g_pool), in_use_at_start_);
  }

  // Frame into queue q, then one loop of both workers (receiver first).
  void send(int q, const std::vector<uint8_t>& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    ASSERT_EQ(rte_ring_enqueue(rx_[q], m), 0);
    workers_[q]->poll_once(1000);
    workers_[1 - q]->poll_once(1000);
  }
  std::vector<uint8_t> sent(int q) {
    void* p;
    if (rte_ring_dequeue(tx_[q], &p) != 0) return {};
    auto* m = static_cast<rte_mbuf*>(p);
    std::vector<uint8_t> out(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_mtod(m, uint8_t*) + rte_pktmbuf_data_len(m));
    rte_pktmbuf_free(m);
    return out;
  }
  static ParsedPacket parse(const std::vector<uint8_t>& f) {
    return parse_packet(f.data(), static_cast<uint32_t>(f.size()));
  }

  rte_ring* rx_[2];
  rte_ring* tx_[2];
  std::vector<rte_ring*> owned_;
  std::unique_ptr<dpdk::Port> port_;
  config::Config config_;
  controlplane::NeighbourMap neighbours_;
  controlplane::BuildState slots_;
  std::unique_ptr<Snapshot> snapshot_;
  std::unique_ptr<Worker> workers_[2];
  unsigned in_use_at_start_ = 0;
};

}  // namespace l4lb::test
