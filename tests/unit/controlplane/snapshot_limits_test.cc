// The config loader and the snapshot builder agree on the data plane's
// lifetime id limits (common/limits.h): a file the loader accepts at a limit
// builds, and one entry more of the kind that takes a new id, which the
// loader refuses (tests/unit/config), also makes the builder throw. So
// `l4lbd --check` refuses exactly the first configs l4lbd could not start
// with. snapshot_builder.cc is compiled in: no librte_*, no EAL.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "../../common/limit_configs.h"
#include "../../common/packet_builder.h"
#include "l4lb/common/limits.h"
#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/snapshot_builder.h"

namespace l4lb::controlplane {
namespace {

using test::host_ip;

// l4lbd's first snapshot: fresh registries, no neighbour MACs yet.
std::unique_ptr<dataplane::Snapshot> build_first(const config::Config& c, BuildState& state) {
  const NeighbourMap neighbours;
  SnapshotInputs in;
  in.config = &c;
  in.neighbours = &neighbours;
  in.tsc_hz = 1000000000;
  in.generation = 1;
  return build_snapshot(in, state);
}

// Loads a document the loader must accept and builds it.
config::Config load_at_limit(const test::LimitDoc& doc) {
  try {
    return config::parse_config(doc.yaml, "limits.yaml");
  } catch (const config::ConfigError& e) {
    ADD_FAILURE() << e.what();
    return {};
  }
}

void expect_loader_refuses(const test::LimitDoc& doc) {
  EXPECT_THROW(config::parse_config(doc.yaml, "limits.yaml"), config::ConfigError);
}

TEST(SnapshotLimits, VipsAtTheLimitBuildAndOneMoreDoesNot) {
  const config::Config c = load_at_limit(test::vips_doc(kMaxVips));
  ASSERT_EQ(c.vips.size(), kMaxVips);
  BuildState state;
  const auto snap = build_first(c, state);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->vips.size(), kMaxVips);

  expect_loader_refuses(test::vips_doc(kMaxVips + 1));
  config::Config over = c;
  config::VipConfig extra = c.vips[0];
  extra.name = "one-more";
  extra.address = host_ip(test::limit_address(1, kMaxVips).c_str());
  over.vips.push_back(extra);
  BuildState fresh;
  EXPECT_THROW(build_first(over, fresh), std::runtime_error);
}

TEST(SnapshotLimits, BackendsAtTheLimitBuildAndOneMoreDoesNot) {
  const config::Config c = load_at_limit(test::backends_doc(kMaxBackends));
  ASSERT_EQ(c.vips.size(), 2u);
  BuildState state;
  ASSERT_TRUE(build_first(c, state));
  // The same address:ports under both vips: one id per (vip, address:port).
  EXPECT_EQ(state.ids.backend_count(), kMaxBackends);

  expect_loader_refuses(test::backends_doc(kMaxBackends + 1));
  config::Config over = c;
  over.vips[1].backends.push_back({host_ip(test::limit_address(2, kMaxBackends / 2).c_str()), 8080, 1, 0});
  BuildState fresh;
  EXPECT_THROW(build_first(over, fresh), std::runtime_error);
}

TEST(SnapshotLimits, SnatAddressesAtTheLimitBuildAndOneMoreDoesNot) {
  const config::Config c = load_at_limit(test::snat_doc(kMaxSnatAddresses));
  ASSERT_EQ(c.vips.size(), 2u);
  BuildState state;
  ASSERT_TRUE(build_first(c, state));
  // 84 entries, 64 distinct addresses: shared ones take one slot.
  EXPECT_EQ(state.snat.size(), kMaxSnatAddresses);

  expect_loader_refuses(test::snat_doc(kMaxSnatAddresses + 1));
  config::Config over = c;
  over.vips[1].snat.push_back(host_ip(test::limit_address(3, kMaxSnatAddresses).c_str()));
  BuildState fresh;
  EXPECT_THROW(build_first(over, fresh), std::runtime_error);
}

}  // namespace
}  // namespace l4lb::controlplane
