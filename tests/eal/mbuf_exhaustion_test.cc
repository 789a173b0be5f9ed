// Issue 8, mbuf pool exhaustion: RX stalls gracefully, the counters show
// it, and forwarding recovers when buffers come back; no mbuf leaks.
//
// A real PMD that allocates on RX is needed (net_ring never does), so this
// runs a Worker on its own lcore over a net_tap port with the test's own
// small pool. The TAP PMD reads each frame into a buffer it holds and swaps
// in a freshly allocated one; when the pool is empty it counts rx_nombuf and
// drops the frame, keeping its buffer. Frames are injected from the kernel
// side of the TAP through an AF_PACKET socket bound to the interface, and
// the frames the worker forwards come back on the same socket.
//
//   1. traffic flows: UDP to the dns VIP is FNATed to a backend;
//   2. the test takes every free mbuf: each injected frame raises the port's
//      rx_nombuf, the worker receives and forwards nothing, and it keeps
//      polling (it picks up and acknowledges a new snapshot);
//   3. the test gives the mbufs back: traffic flows again, no rx_nombuf;
//      after the worker and the port stop, the pool's in-use count is back
//      at its start.
//
// The pool has no per-lcore cache, so "every free mbuf" is exactly what
// rte_pktmbuf_alloc() returns until it fails: no buffer can hide in the
// worker lcore's cache. The TAP interface is named l4lbx<pid>; the test
// creates it and it goes away with the port (nothing else is touched).
// The PMD logs that it cannot add a multiq qdisc (no rte_flow needed here)
// and cannot tell secondary processes about the start (--no-shconf): both
// harmless for this test.
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../common/packet_builder.h"
#include "forwarding_config.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/port.h"
#include "test_eal.h"

using namespace l4lb;
using namespace std::chrono_literals;

namespace {

constexpr unsigned kPoolSize = 511;
constexpr uint16_t kRxDescriptors = 64;  // the TAP PMD holds this many mbufs per rx queue
constexpr uint16_t kTxDescriptors = 64;
constexpr int kFrames = 16;  // per phase
constexpr unsigned kWorkerLcore = 1;

rte_mempool* g_pool;

// Polls `done` every millisecond for up to `limit`; true once it held.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The kernel side of the TAP: an AF_PACKET socket bound to the interface.
// What it sends leaves the interface, so the PMD receives it; what the PMD
// transmits arrives on the interface, so the socket receives it.
class KernelSide {
 public:
  explicit KernelSide(const std::string& iface) {
    ifindex_ = static_cast<int>(if_nametoindex(iface.c_str()));
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (ifindex_ == 0 || fd_ < 0) return;
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex_;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~KernelSide() {
    if (fd_ >= 0) close(fd_);
  }
  KernelSide(const KernelSide&) = delete;
  KernelSide& operator=(const KernelSide&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool send(const std::vector<uint8_t>& frame) {
    return ::send(fd_, frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size());
  }

  // Every frame that arrived on the interface within `limit` (frames the
  // kernel itself sent out are skipped), handed to `on_frame`; stops early
  // when it returns true.
  void receive(std::chrono::milliseconds limit,
               const std::function<bool(const std::vector<uint8_t>&)>& on_frame) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::vector<uint8_t> buf(2048);
    while (std::chrono::steady_clock::now() < deadline) {
      sockaddr_ll from{};
      socklen_t from_len = sizeof from;
      const ssize_t n =
          recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n >= 0) {
        if (from.sll_pkttype != PACKET_OUTGOING &&
            on_frame(std::vector<uint8_t>(buf.begin(), buf.begin() + n)))
          return;
        continue;
      }
      pollfd p{fd_, POLLIN, 0};
      poll(&p, 1, 10);
    }
  }

 private:
  int ifindex_ = 0;
  int fd_ = -1;
};

bool set_link_up(const std::string& iface) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface.c_str());
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  if (ok && !(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  close(fd);
  return ok;
}

// The test's frames carry "mbx <phase> <index>" as UDP payload; FNAT
// rewrites headers only, so a forwarded frame still has it.
std::string tag(int phase, int index) {
  return "mbx " + std::to_string(phase) + " " + std::to_string(index);
}

// The phase and index of a frame the worker forwarded to a backend, or
// {-1, -1} for anything else.
std::pair<int, int> forwarded_tag(const std::vector<uint8_t>& frame) {
  const dataplane::ParsedPacket p =
      dataplane::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()));
  if (p.kind != dataplane::PacketKind::kIpv4 || p.proto != dataplane::kProtoUdp ||
      p.src_ip != test::ip("10.99.0.1") || p.dst_port != test::port(80))
    return {-1, -1};
  const std::string payload(frame.begin() + p.l4_offset + 8, frame.end());
  int phase = -1, index = -1;
  if (std::sscanf(payload.c_str(), "mbx %d %d", &phase, &index) != 2) return {-1, -1};
  return {phase, index};
}

struct WorkerLaunch {
  dataplane::Worker* worker;
  std::atomic<bool>* stop;
};

int run_worker(void* arg) {
  auto* launch = static_cast<WorkerLaunch*>(arg);
  launch->worker->run(*launch->stop);
  return 0;
}

class MbufExhaustion : public ::testing::Test {
 protected:
  void SetUp() override {
    in_use_at_start_ = rte_mempool_in_use_count(g_pool);
    iface_ = "l4lbx" + std::to_string(getpid());
    device_ = "net_tap_" + iface_;
    ASSERT_EQ(rte_vdev_init(device_.c_str(), ("iface=" + iface_).c_str()), 0) << device_;
    device_created_ = true;
    // No IPv6 on our interface: its router solicitations and MLD reports
    // would be traffic of the kernel's own on the data port.
    std::ofstream(("/proc/sys/net/ipv6/conf/" + iface_ + "/disable_ipv6").c_str()) << "1\n";
    port_ = std::make_unique<dpdk::Port>(dpdk::Port::find(device_),
                                         dpdk::PortQueues{1, 1, kRxDescriptors, kTxDescriptors}, g_pool);
    ASSERT_TRUE(set_link_up(iface_)) << iface_;
    kernel_ = std::make_unique<KernelSide>(iface_);
    ASSERT_TRUE(kernel_->ok()) << "AF_PACKET socket on " << iface_ << ": " << std::strerror(errno);

    config_ = test::make_config();
    neighbours_ = test::neighbours();
    snapshots_.push_back(build(1));
    snapshot_ring_ = rte_ring_create("mbx_snap", 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    slow_ring_ = rte_ring_create("mbx_slow", 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    inject_ring_ = rte_ring_create("mbx_inject", 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_TRUE(snapshot_ring_ && slow_ring_ && inject_ring_);

    dataplane::WorkerSetup s;
    s.port_id = port_->id();
    s.snapshot_ring = snapshot_ring_;
    s.slow_path_ring = slow_ring_;
    s.inject_ring = inject_ring_;
    s.flow_capacity = 1024;
    s.snat_port_min = config_.dataplane.snat_port_min;
    s.snat_port_max = config_.dataplane.snat_port_max;
    s.idle_sleep_us = 100;  // a shared 2-core machine: do not spin when idle
    worker_ = std::make_unique<dataplane::Worker>(s, snapshots_.back().get());
    launch_ = {worker_.get(), &stop_};
    ASSERT_EQ(rte_eal_remote_launch(run_worker, &launch_, kWorkerLcore), 0);
    running_ = true;
  }

  void TearDown() override {
    stop_worker();
    if (worker_) {
      for (const auto& problem : worker_->audit()) ADD_FAILURE() << "audit: " << problem;
    }
    worker_.reset();
    for (rte_mbuf* m : held_) rte_pktmbuf_free(m);
    held_.clear();
    for (rte_ring* r : {slow_ring_, inject_ring_}) drain(r);
    kernel_.reset();
    port_.reset();  // stops and closes the port: the PMD's rx buffers go back
    if (device_created_) {
      EXPECT_EQ(rte_vdev_uninit(device_.c_str()), 0);
    }
    EXPECT_EQ(if_nametoindex(iface_.c_str()), 0u) << iface_ << " outlived its port";
    for (rte_ring* r : {snapshot_ring_, slow_ring_, inject_ring_}) rte_ring_free(r);
    // Nothing leaked: not by the PMD, the worker, or the exhaustion.
    EXPECT_EQ(rte_mempool_in_use_count(g_pool), in_use_at_start_);
  }

  void stop_worker() {
    if (!running_) return;
    stop_.store(true);
    rte_eal_wait_lcore(kWorkerLcore);
    running_ = false;
  }

  std::unique_ptr<dataplane::Snapshot> build(uint64_t generation) {
    const rte_ether_addr& mac = port_->mac();
    MacAddress port_mac{};
    std::memcpy(port_mac.bytes, mac.addr_bytes, 6);
    controlplane::SnapshotInputs in{&config_, &neighbours_, port_mac, rte_get_tsc_hz(), generation};
    return controlplane::build_snapshot(in, build_state_);
  }

  static void drain(rte_ring* r) {
    if (!r) return;
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }

  // A UDP packet from a client to the dns VIP, addressed to the port's MAC.
  std::vector<uint8_t> frame(int phase, int index) const {
    test::PacketSpec s;
    std::memcpy(s.dst_mac, port_->mac().addr_bytes, 6);
    s.proto = dataplane::kProtoUdp;
    s.dst_port = test::port(53);
    s.src_port = test::port(static_cast<uint16_t>(41000 + phase * 100 + index));
    s.payload = tag(phase, index);
    return test::build_packet(s);
  }

  // Frames the worker forwarded within `limit`, recorded by phase; stops
  // early once every frame of `phase` has come back.
  void collect(int phase, std::chrono::milliseconds limit) {
    kernel_->receive(limit, [&](const std::vector<uint8_t>& f) {
      const auto [p, i] = forwarded_tag(f);
      if (p >= 0 && p < 4) seen_[p].insert(i);
      return phase >= 0 && seen_[phase].size() == kFrames;
    });
  }

  rte_eth_stats port_stats() const {
    rte_eth_stats st{};
    rte_eth_stats_get(port_->id(), &st);
    return st;
  }

  // Takes every free mbuf. Buffers the worker is still sending come back
  // to the pool a little later, so sweep until a sweep finds none twice.
  void take_every_free_mbuf() {
    for (int quiet = 0; quiet < 2;) {
      size_t taken = 0;
      while (rte_mbuf* m = rte_pktmbuf_alloc(g_pool)) {
        held_.push_back(m);
        ++taken;
      }
      quiet = taken == 0 ? quiet + 1 : 0;
      std::this_thread::sleep_for(20ms);
    }
  }

  std::string iface_, device_;
  bool device_created_ = false;
  std::unique_ptr<dpdk::Port> port_;
  std::unique_ptr<KernelSide> kernel_;
  config::Config config_;
  controlplane::NeighbourMap neighbours_;
  controlplane::BuildState build_state_;
  std::vector<std::unique_ptr<dataplane::Snapshot>> snapshots_;  // alive until the worker stops
  rte_ring *snapshot_ring_ = nullptr, *slow_ring_ = nullptr, *inject_ring_ = nullptr;
  std::unique_ptr<dataplane::Worker> worker_;
  std::atomic<bool> stop_{false};
  WorkerLaunch launch_{};
  bool running_ = false;
  std::vector<rte_mbuf*> held_;
  std::set<int> seen_[4];  // by phase: indexes of frames seen forwarded
  unsigned in_use_at_start_ = 0;
};

TEST_F(MbufExhaustion, RxStallsCountsAndRecovers) {
  const dataplane::WorkerCounters& counters = worker_->counters();

  // Phase 1: traffic flows.
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(kernel_->send(frame(1, i))) << std::strerror(errno);
  collect(1, 5s);
  EXPECT_EQ(seen_[1].size(), size_t{kFrames}) << "phase 1: frames forwarded back to the kernel side";
  EXPECT_GE(counters.rx_packets.get(), uint64_t{kFrames});
  EXPECT_GE(counters.forward_packets.get(), uint64_t{kFrames});
  EXPECT_EQ(port_stats().rx_nombuf, 0u);
  std::printf("phase 1: %zu/%d forwarded, worker rx_packets %lu, pool in use %u of %u\n", seen_[1].size(),
              kFrames, static_cast<unsigned long>(counters.rx_packets.get()),
              rte_mempool_in_use_count(g_pool), kPoolSize);
  ASSERT_EQ(seen_[1].size(), size_t{kFrames});

  // Phase 2: the pool is empty. Every frame costs the PMD an allocation that
  // fails: counted, dropped, nothing reaches the worker.
  drain(slow_ring_);  // (whatever the kernel sent us counts as free buffers too)
  take_every_free_mbuf();
  ASSERT_EQ(rte_mempool_avail_count(g_pool), 0u);
  const uint64_t rx_before = counters.rx_packets.get();
  const uint64_t forwarded_before = counters.forward_packets.get();
  const rte_eth_stats before = port_stats();
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_TRUE(kernel_->send(frame(2, i))) << std::strerror(errno);
    // One at a time: each frame is read, finds no buffer, and is counted.
    ASSERT_TRUE(wait_for([&] { return port_stats().rx_nombuf >= before.rx_nombuf + i + 1; }))
        << "phase 2: rx_nombuf did not count frame " << i << " (rx_nombuf " << port_stats().rx_nombuf << ")";
  }
  // The worker still polls: it picks up and acknowledges a new generation.
  snapshots_.push_back(build(2));
  ASSERT_EQ(rte_ring_enqueue(snapshot_ring_, snapshots_.back().get()), 0);
  EXPECT_TRUE(wait_for([&] { return worker_->acked_generation() == 2; }))
      << "phase 2: the worker stopped polling";
  EXPECT_EQ(rte_eal_get_lcore_state(kWorkerLcore), RUNNING);
  collect(-1, 300ms);
  const rte_eth_stats during = port_stats();
  EXPECT_GE(during.rx_nombuf - before.rx_nombuf, uint64_t{kFrames});
  EXPECT_EQ(during.ipackets, before.ipackets) << "phase 2: the PMD delivered packets without buffers";
  EXPECT_EQ(counters.rx_packets.get(), rx_before);
  EXPECT_EQ(counters.forward_packets.get(), forwarded_before);
  EXPECT_TRUE(seen_[2].empty()) << "phase 2: " << seen_[2].size() << " frames forwarded with an empty pool";
  std::printf(
      "phase 2: held %zu mbufs, rx_nombuf +%lu for %d frames, worker rx_packets +%lu, forwarded %zu\n",
      held_.size(), static_cast<unsigned long>(during.rx_nombuf - before.rx_nombuf), kFrames,
      static_cast<unsigned long>(counters.rx_packets.get() - rx_before), seen_[2].size());

  // Phase 3: the buffers come back and so does the traffic.
  for (rte_mbuf* m : held_) rte_pktmbuf_free(m);
  held_.clear();
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(kernel_->send(frame(3, i))) << std::strerror(errno);
  collect(3, 5s);
  const rte_eth_stats after = port_stats();
  EXPECT_EQ(seen_[3].size(), size_t{kFrames}) << "phase 3: forwarding did not recover";
  EXPECT_GE(counters.rx_packets.get(), rx_before + kFrames);
  EXPECT_EQ(after.rx_nombuf, during.rx_nombuf) << "phase 3: allocations still fail";
  // A frame dropped for want of a buffer is gone, not delivered late.
  EXPECT_TRUE(seen_[2].empty()) << seen_[2].size() << " phase-2 frames were forwarded after recovery";
  std::printf("phase 3: %zu/%d forwarded, rx_nombuf %lu (unchanged), worker rx_packets %lu\n",
              seen_[3].size(), kFrames, static_cast<unsigned long>(after.rx_nombuf),
              static_cast<unsigned long>(counters.rx_packets.get()));

  // No leak: checked in TearDown once the worker and the port have stopped.
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("mbuf_exhaustion_test", "256", "0,1")) return 1;
  // No per-lcore cache: see the top of the file.
  g_pool = l4lb::test::make_test_pool("mbx_mbufs", kPoolSize);
  if (!g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(g_pool);
  rte_eal_cleanup();
  return rc;
}
