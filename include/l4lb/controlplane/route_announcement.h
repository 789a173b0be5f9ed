// Which routes an appliance announces (DESIGN §12), decided from what the
// management core knows: whether the data plane runs the config in force,
// whether the appliance is draining, and each VIP's backends as this
// appliance sees them (health, neighbour resolution, operator weights).
// Pure; management core only. BirdAnnouncer (bird_announcer.h) carries the
// decision to BIRD.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "l4lb/controlplane/snapshot_builder.h"

namespace l4lb::controlplane {

struct ApplianceState {
  // "" when every worker runs the config in force and the port is up;
  // otherwise why not (readiness.h), which withdraws everything.
  std::string not_ready;
  bool draining = false;  // VIPs withdrawn, SNAT addresses kept
};

// One /32 and what l4lbd decided for it.
struct RouteDecision {
  uint32_t prefix = 0;  // host byte order
  std::string owner;    // "vip web", "vip web, vip dns" (one address, two services), "snat"
  bool announce = false;
  std::string reason;   // why not announced ("" when announced)
};

// One decision per distinct address, sorted by address: every VIP address
// (announced while ready, not draining and, unless bgp.when_no_backend is
// announce, while one of its services at that address has a backend up:
// healthy, resolved and of weight above 0), then, with bgp.announce_snat,
// every SNAT address that is not a VIP address (announced while ready or
// draining). With bgp disabled, none.
std::vector<RouteDecision> decide_routes(const SnapshotInputs& in, const ApplianceState& state);

// The prefixes of the decisions to announce.
std::vector<uint32_t> announced_prefixes(const std::vector<RouteDecision>& decisions);

}  // namespace l4lb::controlplane
