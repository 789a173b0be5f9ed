// The fingerprint l4lbd reports per VIP (l4lbctl vips, column maglev) is the
// one l4lb-maglev prints for the VIP's backends that are in service, with
// their effective weights (DESIGN §5): independent of the order the config
// lists them in, and following health and neighbour resolution, because it
// is of the table in force. snapshot_builder is the DPDK-free control core:
// no librte_*, no EAL.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/maglev/maglev.h"

namespace l4lb::controlplane {
namespace {

// Two VIPs with the same three backends listed in different orders.
constexpr const char* kConfig = R"(ports:
  - {name: p0, address: 10.0.0.1/24}
vips:
  - name: abc
    address: 10.0.1.1
    port: 80
    snat: [10.0.0.1]
    table_size: 251
    backends:
      - {address: 10.0.0.11, port: 80}
      - {address: 10.0.0.12, port: 80, weight: 2}
      - {address: 10.0.0.13, port: 80}
  - name: cab
    address: 10.0.1.2
    port: 80
    snat: [10.0.0.1]
    table_size: 251
    backends:
      - {address: 10.0.0.13, port: 80}
      - {address: 10.0.0.11, port: 80}
      - {address: 10.0.0.12, port: 80, weight: 2}
)";

// What l4lb-maglev computes for `backends` (ADDR:PORT, weight) at M=251.
uint64_t tool_fingerprint(const std::vector<maglev::Backend>& backends) {
  return maglev::table_fingerprint(maglev::build_table(backends, 251), backends);
}

class SnapshotFingerprint : public ::testing::Test {
 protected:
  SnapshotFingerprint() : config_(config::parse_config(kConfig, "fingerprint.yaml")) {
    for (const char* ip : {"10.0.0.11", "10.0.0.12", "10.0.0.13"}) {
      uint32_t address = 0;
      EXPECT_TRUE(config::parse_ipv4(ip, address));
      all_resolved_[address] = MacAddress{{2, 0, 0, 0, 0, static_cast<uint8_t>(address & 0xff)}};
    }
  }

  std::unique_ptr<dataplane::Snapshot> build(const NeighbourMap& neighbours,
                                             const std::map<std::string, bool>* health = nullptr,
                                             const std::map<std::string, uint32_t>* admin = nullptr) {
    SnapshotInputs in;
    in.config = &config_;
    in.neighbours = &neighbours;
    in.tsc_hz = 1000000000;
    in.generation = ++generation_;
    in.health = health;
    in.admin_weights = admin;
    return build_snapshot(in, state_);
  }

  config::Config config_;
  NeighbourMap all_resolved_;
  BuildState state_;
  uint64_t generation_ = 0;
};

TEST_F(SnapshotFingerprint, IsWhatTheToolPrintsWhateverTheConfigOrder) {
  const auto snap = build(all_resolved_);
  ASSERT_EQ(snap->maglev_fingerprints.size(), 2u);
  const uint64_t expected = tool_fingerprint({{"10.0.0.11:80", 1}, {"10.0.0.12:80", 2}, {"10.0.0.13:80", 1}});
  EXPECT_EQ(snap->maglev_fingerprints[0], expected);
  EXPECT_EQ(snap->maglev_fingerprints[1], expected);
  // The workers' tables hold indices in config order, so they differ; the
  // backends they pick do not.
  EXPECT_NE(*snap->vips[0].maglev, *snap->vips[1].maglev);
}

TEST_F(SnapshotFingerprint, FollowsHealthOverridesAndNeighbours) {
  const uint64_t all_up = build(all_resolved_)->maglev_fingerprints[0];

  // One backend down by health: its slots go to the others, as when the tool
  // is given it with weight 0.
  const std::map<std::string, bool> one_down = {{"abc/10.0.0.12:80", false}};
  const uint64_t without_12 =
      tool_fingerprint({{"10.0.0.11:80", 1}, {"10.0.0.12:80", 0}, {"10.0.0.13:80", 1}});
  EXPECT_NE(without_12, all_up);
  auto snap = build(all_resolved_, &one_down);
  EXPECT_EQ(snap->maglev_fingerprints[0], without_12);
  EXPECT_EQ(snap->maglev_fingerprints[1], all_up) << "the other VIP's backend of that address is its own";

  // The operator's weight counts, as the tool's WEIGHT does.
  const std::map<std::string, uint32_t> heavier = {{"abc/10.0.0.11:80", 3}};
  snap = build(all_resolved_, nullptr, &heavier);
  EXPECT_EQ(snap->maglev_fingerprints[0],
            tool_fingerprint({{"10.0.0.11:80", 3}, {"10.0.0.12:80", 2}, {"10.0.0.13:80", 1}}));

  // A backend whose next hop is unresolved is out of the table.
  NeighbourMap two = all_resolved_;
  uint32_t address = 0;
  ASSERT_TRUE(config::parse_ipv4("10.0.0.13", address));
  two.erase(address);
  EXPECT_EQ(build(two)->maglev_fingerprints[0], tool_fingerprint({{"10.0.0.11:80", 1}, {"10.0.0.12:80", 2}}));

  // Nothing resolved: no backend takes new flows, the empty table's value.
  EXPECT_EQ(build(NeighbourMap{})->maglev_fingerprints[0], maglev::kEmptyTableFingerprint);

  // Back to all up: the same table, the same fingerprint.
  EXPECT_EQ(build(all_resolved_)->maglev_fingerprints[0], all_up);
}

TEST_F(SnapshotFingerprint, FailOpenIsTheTableWithHealthIgnored) {
  const uint64_t all_up = build(all_resolved_)->maglev_fingerprints[0];
  const std::map<std::string, bool> all_down = {
      {"abc/10.0.0.11:80", false}, {"abc/10.0.0.12:80", false}, {"abc/10.0.0.13:80", false}};
  const auto snap = build(all_resolved_, &all_down);
  ASSERT_TRUE(snap->vips[0].fail_open);
  EXPECT_EQ(snap->maglev_fingerprints[0], all_up);
}

}  // namespace
}  // namespace l4lb::controlplane
