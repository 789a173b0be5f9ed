#include "l4lb/controlplane/route_announcement.h"

#include <map>

namespace l4lb::controlplane {

namespace {

struct AddressFacts {
  std::string owner;
  bool vip = false;
  bool backend_up = false;  // some service of this VIP address has one
};

void add_owner(AddressFacts& facts, const std::string& name) {
  facts.owner += (facts.owner.empty() ? "" : ", ") + name;
}

}  // namespace

std::vector<RouteDecision> decide_routes(const SnapshotInputs& in, const ApplianceState& state) {
  const config::Config& config = *in.config;
  std::vector<RouteDecision> out;
  if (!config.bgp.enabled) return out;
  std::map<uint32_t, AddressFacts> addresses;
  for (const config::VipConfig& vip : config.vips) {
    AddressFacts& facts = addresses[vip.address];
    facts.vip = true;
    add_owner(facts, "vip " + vip.name);
    for (const config::BackendConfig& backend : vip.backends)
      if (!facts.backend_up && std::string_view(describe_backend(in, vip, backend).state()) == "up")
        facts.backend_up = true;
  }
  if (config.bgp.announce_snat)
    for (const config::VipConfig& vip : config.vips)
      for (const uint32_t snat : vip.snat) {
        AddressFacts& facts = addresses[snat];
        if (!facts.vip && facts.owner.empty()) add_owner(facts, "snat");
      }
  const bool withdraw_without_backend = config.bgp.when_no_backend == config::NoBackendPolicy::kWithdraw;
  for (const auto& [address, facts] : addresses) {
    RouteDecision d;
    d.prefix = address;
    d.owner = facts.owner;
    if (!state.not_ready.empty())
      d.reason = "not ready: " + state.not_ready;
    else if (facts.vip && state.draining)
      d.reason = "draining";
    else if (facts.vip && withdraw_without_backend && !facts.backend_up)
      d.reason = "no backend up";
    d.announce = d.reason.empty();
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<uint32_t> announced_prefixes(const std::vector<RouteDecision>& decisions) {
  std::vector<uint32_t> out;
  for (const RouteDecision& d : decisions)
    if (d.announce) out.push_back(d.prefix);
  return out;
}

}  // namespace l4lb::controlplane
