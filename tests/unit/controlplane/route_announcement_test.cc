// Which routes an appliance announces (route_announcement.h): readiness,
// draining, each VIP address's backends as this appliance sees them, the
// when_no_backend policy and SNAT addresses. Pure: a parsed config and
// hand-made health, neighbour and weight maps.
#include "l4lb/controlplane/route_announcement.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "../../common/packet_builder.h"
#include "l4lb/common/address_text.h"
#include "l4lb/config/config_loader.h"

namespace l4lb::controlplane {
namespace {

using test::host_ip;

// web (fnat, two backends) and dns (dnat) on their own addresses; ssh on
// web's address, with a backend of its own.
const char* const kConfig = R"(ports: [{name: p0, address: 10.0.0.1/24}]
vips:
  - {name: web, address: 10.0.0.100, port: 80, snat: [10.0.0.1, 10.0.0.2], health: {type: tcp},
     backends: [{address: 10.0.0.21, port: 80}, {address: 10.0.0.22, port: 80}]}
  - {name: ssh, address: 10.0.0.100, port: 22, snat: [10.0.0.2], health: {type: tcp},
     backends: [{address: 10.0.0.23, port: 22}]}
  - {name: dns, address: 10.0.0.101, port: 53, protocol: udp, mode: dnat,
     backends: [{address: 10.0.0.31, port: 53}]}
bgp: {enabled: true}
)";

struct Fixture {
  config::Config config = config::parse_config(kConfig, "test.yaml");
  NeighbourMap neighbours;
  std::map<std::string, bool> health;
  std::map<std::string, uint32_t> weights;

  Fixture() {
    for (const char* b : {"10.0.0.21", "10.0.0.22", "10.0.0.23", "10.0.0.31"}) neighbours[host_ip(b)] = MacAddress{};
    for (const char* key : {"web/10.0.0.21:80", "web/10.0.0.22:80", "ssh/10.0.0.23:22"}) health[key] = true;
  }
  SnapshotInputs inputs() const {
    SnapshotInputs in;
    in.config = &config;
    in.neighbours = &neighbours;
    in.health = &health;
    in.admin_weights = &weights;
    return in;
  }
  std::map<std::string, std::string> decide(ApplianceState state = {}) const {
    std::map<std::string, std::string> out;  // address -> "+" or "-reason"
    for (const RouteDecision& d : decide_routes(inputs(), state))
      out[format_ipv4(d.prefix)] = d.announce ? "+" : "-" + d.reason;
    return out;
  }
};

TEST(RouteAnnouncement, ReadyApplianceAnnouncesEveryVipAddressAndSnatAddressOnce) {
  Fixture f;
  const auto decisions = decide_routes(f.inputs(), {});
  ASSERT_EQ(decisions.size(), 4u);  // 10.0.0.1, .2 (snat), .100 (web+ssh), .101 (dns)
  EXPECT_EQ(format_ipv4(decisions[0].prefix), "10.0.0.1");
  EXPECT_EQ(decisions[0].owner, "snat");
  EXPECT_EQ(decisions[2].owner, "vip web, vip ssh");
  for (const RouteDecision& d : decisions) EXPECT_TRUE(d.announce) << format_ipv4(d.prefix) << ": " << d.reason;
  EXPECT_EQ(announced_prefixes(decisions).size(), 4u);
}

TEST(RouteAnnouncement, DisabledAnnouncesNothing) {
  Fixture f;
  f.config.bgp.enabled = false;
  EXPECT_TRUE(decide_routes(f.inputs(), {}).empty());
}

TEST(RouteAnnouncement, NotReadyWithdrawsEverything) {
  Fixture f;
  for (const auto& [address, verdict] : f.decide({"worker 0 missed snapshot generation 7 for 1200 ms", false}))
    EXPECT_EQ(verdict, "-not ready: worker 0 missed snapshot generation 7 for 1200 ms") << address;
}

TEST(RouteAnnouncement, DrainingWithdrawsVipsAndKeepsSnatAddresses) {
  Fixture f;
  const auto d = f.decide({"", true});
  EXPECT_EQ(d.at("10.0.0.100"), "-draining");
  EXPECT_EQ(d.at("10.0.0.101"), "-draining");
  EXPECT_EQ(d.at("10.0.0.1"), "+");
  EXPECT_EQ(d.at("10.0.0.2"), "+");
}

TEST(RouteAnnouncement, AnAddressGoesOnlyWhenNoServiceOnItHasABackendUp) {
  Fixture f;
  f.health["web/10.0.0.21:80"] = false;
  f.health["web/10.0.0.22:80"] = false;
  EXPECT_EQ(f.decide().at("10.0.0.100"), "+") << "ssh on the same address still has its backend";
  f.health["ssh/10.0.0.23:22"] = false;
  EXPECT_EQ(f.decide().at("10.0.0.100"), "-no backend up");
  EXPECT_EQ(f.decide().at("10.0.0.101"), "+") << "another VIP address is not touched";
}

TEST(RouteAnnouncement, UnresolvedAndDrainedBackendsAreNotUp) {
  Fixture f;
  f.neighbours.erase(host_ip("10.0.0.31"));
  EXPECT_EQ(f.decide().at("10.0.0.101"), "-no backend up");
  f.neighbours[host_ip("10.0.0.31")] = MacAddress{};
  f.weights["dns/10.0.0.31:53"] = 0;  // l4lbctl backend drain
  EXPECT_EQ(f.decide().at("10.0.0.101"), "-no backend up");
  f.weights.clear();
  EXPECT_EQ(f.decide().at("10.0.0.101"), "+");
}

TEST(RouteAnnouncement, WhenNoBackendAnnounceKeepsTheVip) {
  Fixture f;
  f.config.bgp.when_no_backend = config::NoBackendPolicy::kAnnounce;
  f.neighbours.clear();
  EXPECT_EQ(f.decide().at("10.0.0.101"), "+");
  EXPECT_EQ(f.decide({"", true}).at("10.0.0.101"), "-draining") << "a drain still withdraws";
}

TEST(RouteAnnouncement, SnatAddressesOnlyWithAnnounceSnat) {
  Fixture f;
  f.config.bgp.announce_snat = false;
  const auto d = f.decide();
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.count("10.0.0.1"), 0u);
}

}  // namespace
}  // namespace l4lb::controlplane

namespace l4lb::controlplane {
namespace {

// The snapshot's side of a drain (DESIGN §12): the other appliances' MACs
// always (to answer what they pass here through the gateway), and as the
// redirect targets only while draining, and only with the gateway resolved.
TEST(DrainRedirect, SnapshotNamesTheOtherAppliancesWhileDraining) {
  const config::Config c = config::parse_config(
      "ports: [{name: p0, address: 10.0.0.1/24, gateway: 10.0.0.254}]\n"
      "vips: [{name: web, address: 10.0.0.100, port: 80, snat: 10.0.0.1,"
      " backends: [{address: 10.0.0.21, port: 80}]}]\n"
      "bgp: {enabled: true, appliances: [10.0.0.2, 10.0.0.3]}\n",
      "test.yaml");
  NeighbourMap neighbours;
  const MacAddress a2{{2, 0, 0, 0, 0, 2}}, gw{{2, 0, 0, 0, 0, 0xfe}};
  neighbours[host_ip("10.0.0.2")] = a2;  // 10.0.0.3 unresolved
  neighbours[host_ip("10.0.0.21")] = MacAddress{{2, 0, 0, 0, 0, 0x21}};
  SnapshotInputs in;
  in.config = &c;
  in.neighbours = &neighbours;
  in.tsc_hz = 1000000000;
  BuildState state;
  auto snap = build_snapshot(in, state);
  EXPECT_EQ(snap->appliance_macs, std::vector<MacAddress>{a2});
  EXPECT_FALSE(snap->has_gateway_mac);
  EXPECT_TRUE(snap->redirect_macs.empty());
  in.draining = true;
  snap = build_snapshot(in, state);
  EXPECT_TRUE(snap->redirect_macs.empty()) << "no redirect without the gateway's MAC to answer through";
  neighbours[host_ip("10.0.0.254")] = gw;
  snap = build_snapshot(in, state);
  EXPECT_TRUE(snap->has_gateway_mac);
  EXPECT_EQ(snap->gateway_mac, gw);
  EXPECT_EQ(snap->redirect_macs, std::vector<MacAddress>{a2});
  in.draining = false;
  EXPECT_TRUE(build_snapshot(in, state)->redirect_macs.empty());
}

}  // namespace
}  // namespace l4lb::controlplane
