// Snapshot building and hand-off: what the builder resolves, and that the
// publisher frees a snapshot only after every worker acknowledged a newer one.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_ring.h>

#include <arpa/inet.h>

#include <set>

#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/controlplane/snapshot_publisher.h"
#include "test_eal.h"

using namespace l4lb;

namespace {

uint32_t host_ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return ntohl(a.s_addr);
}

config::Config two_backends() {
  config::Config c;
  config::PortConfig p;
  p.name = "x";
  p.addresses = {{host_ip("10.99.0.1"), 24}};
  p.gateway = host_ip("10.99.0.254");
  c.ports.push_back(p);
  config::VipConfig v;
  v.name = "web";
  v.address = host_ip("10.99.0.100");
  v.port = 80;
  v.snat = {host_ip("10.99.0.1")};
  v.table_size = 13;
  v.backends = {{host_ip("10.99.0.21"), 80, 1, 0}, {host_ip("192.0.2.5"), 80, 1, 0}};
  c.vips.push_back(v);
  return c;
}

TEST(SnapshotBuilder, OnlyResolvedBackendsGetSlots) {
  const auto cfg = two_backends();
  controlplane::BuildState slots;
  controlplane::NeighbourMap none;
  auto s = controlplane::build_snapshot({&cfg, &none, {}, 1000, 1}, slots);
  for (uint16_t b : *s->vips[0].maglev) EXPECT_EQ(b, dataplane::kNoBackendSlot);

  // 10.99.0.21 is on-link; 192.0.2.5 is reached through the gateway.
  EXPECT_EQ(controlplane::next_hop_for(cfg, host_ip("10.99.0.21")), host_ip("10.99.0.21"));
  EXPECT_EQ(controlplane::next_hop_for(cfg, host_ip("192.0.2.5")), host_ip("10.99.0.254"));
  controlplane::NeighbourMap gw_only{{host_ip("10.99.0.254"), {{2, 0, 0, 0, 0, 0xFE}}}};
  s = controlplane::build_snapshot({&cfg, &gw_only, {}, 1000, 2}, slots);
  for (uint16_t b : *s->vips[0].maglev) EXPECT_EQ(b, 1) << "only the backend behind the gateway is usable";
  EXPECT_EQ(s->vips[0].backends[1].mac.bytes[5], 0xFE);
  EXPECT_FALSE(s->vips[0].backends[0].has_mac);
}

TEST(SnapshotBuilder, SnatSlotsAreStableAcrossRebuilds) {
  auto cfg = two_backends();
  controlplane::BuildState slots;
  controlplane::NeighbourMap none;
  auto a = controlplane::build_snapshot({&cfg, &none, {}, 1000, 1}, slots);
  cfg.vips[0].snat = {host_ip("10.99.0.2"), host_ip("10.99.0.1")};
  auto b = controlplane::build_snapshot({&cfg, &none, {}, 1000, 2}, slots);
  EXPECT_EQ(a->vips[0].snat_slots, std::vector<uint8_t>{0});
  EXPECT_EQ(b->vips[0].snat_slots, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(b->snat_addresses[0], htonl(host_ip("10.99.0.1")));
}

TEST(SnapshotBuilder, OnlyChangedVipsGetANewMaglevTable) {
  auto cfg = two_backends();
  config::VipConfig other = cfg.vips[0];
  other.name = "other";
  other.port = 81;
  cfg.vips.push_back(other);
  controlplane::BuildState state;
  controlplane::NeighbourMap all{{host_ip("10.99.0.21"), {{2, 0, 0, 0, 0, 0x21}}},
                                 {host_ip("10.99.0.254"), {{2, 0, 0, 0, 0, 0xFE}}}};
  auto a = controlplane::build_snapshot({&cfg, &all, {}, 1000, 1}, state);
  EXPECT_EQ(state.maglev.built(), 2u);
  // Drain one backend of "web" only: "other" keeps its table object.
  std::map<std::string, uint32_t> drain{{controlplane::backend_key("web", host_ip("10.99.0.21"), 80), 0}};
  auto b = controlplane::build_snapshot({&cfg, &all, {}, 1000, 2, nullptr, &drain}, state);
  EXPECT_EQ(state.maglev.built(), 3u);
  EXPECT_EQ(a->vips[1].maglev.get(), b->vips[1].maglev.get());
  EXPECT_NE(a->vips[0].maglev.get(), b->vips[0].maglev.get());
  for (uint16_t slot : *b->vips[0].maglev) EXPECT_EQ(slot, 1) << "a drained backend takes no new flows";
  EXPECT_TRUE(b->backend_alive[b->vips[0].backends[0].id]) << "draining is not down: its flows live on";
  // Stable ids across rebuilds.
  EXPECT_EQ(a->vips[1].id, b->vips[1].id);
  EXPECT_EQ(a->vips[0].backends[1].id, b->vips[0].backends[1].id);
  EXPECT_NE(b->vips[0].backends[0].id, b->vips[1].backends[0].id) << "ids are per VIP and backend";
}

TEST(SnapshotBuilder, EveryBackendDownFailsOpen) {
  const auto cfg = two_backends();
  controlplane::BuildState state;
  controlplane::NeighbourMap all{{host_ip("10.99.0.21"), {{2, 0, 0, 0, 0, 0x21}}},
                                 {host_ip("10.99.0.254"), {{2, 0, 0, 0, 0, 0xFE}}}};
  std::map<std::string, bool> one_down{{controlplane::backend_key("web", host_ip("10.99.0.21"), 80), false}};
  auto s = controlplane::build_snapshot({&cfg, &all, {}, 1000, 1, &one_down}, state);
  EXPECT_FALSE(s->vips[0].fail_open);
  for (uint16_t slot : *s->vips[0].maglev) EXPECT_EQ(slot, 1);
  std::map<std::string, bool> all_down = one_down;
  all_down[controlplane::backend_key("web", host_ip("192.0.2.5"), 80)] = false;
  s = controlplane::build_snapshot({&cfg, &all, {}, 1000, 2, &all_down}, state);
  EXPECT_TRUE(s->vips[0].fail_open);
  std::set<uint16_t> used(s->vips[0].maglev->begin(), s->vips[0].maglev->end());
  EXPECT_EQ(used, (std::set<uint16_t>{0, 1})) << "health ignored: both resolved backends serve";
  EXPECT_TRUE(s->backend_alive[s->vips[0].backends[0].id]) << "no resets while failing open";
}

class Handoff : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    for (int i = 0; i < 2; ++i) {
      rings_[i] = rte_ring_create(("ho" + std::to_string(n++)).c_str(), 4, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
      ASSERT_NE(rings_[i], nullptr);
    }
    publisher_ = std::make_unique<controlplane::SnapshotPublisher>(
        std::vector<rte_ring*>{rings_[0], rings_[1]}, [this](size_t i) { return acked_[i]; });
  }
  void TearDown() override {
    publisher_.reset();
    for (auto* r : rings_) rte_ring_free(r);
  }
  static std::unique_ptr<dataplane::Snapshot> snap(uint64_t g) {
    auto s = std::make_unique<dataplane::Snapshot>();
    s->generation = g;
    return s;
  }
  // What a worker does: take the newest, acknowledge it.
  void worker_picks_up(int i) {
    void* p;
    while (rte_ring_dequeue(rings_[i], &p) == 0) acked_[i] = static_cast<dataplane::Snapshot*>(p)->generation;
  }
  rte_ring* rings_[2];
  uint64_t acked_[2] = {1, 1};
  std::unique_ptr<controlplane::SnapshotPublisher> publisher_;
};

TEST_F(Handoff, OldSnapshotLivesUntilEveryWorkerMovedOn) {
  publisher_->adopt_initial(snap(1));
  publisher_->publish(snap(2));
  EXPECT_EQ(publisher_->live_count(), 2u);
  worker_picks_up(0);
  publisher_->poll();
  EXPECT_EQ(publisher_->live_count(), 2u) << "worker 1 may still read generation 1";
  worker_picks_up(1);
  publisher_->poll();
  EXPECT_EQ(publisher_->live_count(), 1u);
  EXPECT_EQ(publisher_->current()->generation, 2u);
  EXPECT_EQ(publisher_->freed_count(), 1u);
}

TEST_F(Handoff, FullRingDefersAndNewestWins) {
  publisher_->adopt_initial(snap(1));
  // Ring size 4 holds 3; worker 1 is stalled.
  for (uint64_t g = 2; g <= 6; ++g) {
    publisher_->publish(snap(g));
    worker_picks_up(0);
  }
  EXPECT_EQ(rte_ring_count(rings_[1]), 3u);
  EXPECT_EQ(publisher_->live_count(), 6u) << "nothing freed while worker 1 is on generation 1";
  worker_picks_up(1);  // takes 2,3,4, acks 4
  publisher_->poll();  // hands over 6 (5 was superseded)
  EXPECT_EQ(acked_[1], 4u);
  EXPECT_EQ(publisher_->current()->generation, 6u);
  worker_picks_up(1);
  EXPECT_EQ(acked_[1], 6u);
  publisher_->poll();
  EXPECT_EQ(publisher_->live_count(), 1u);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("snapshot_handoff_test", "128", "0")) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
