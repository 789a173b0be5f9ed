// The config's cross-field rules; see config_checks.h. Messages name the
// entry a value clashes with by key and line, so an operator finds both.
#include "l4lb/config/config_checks.h"

#include <algorithm>

#include "l4lb/common/limits.h"
#include "l4lb/common/prime.h"
#include "l4lb/config/config_loader.h"

namespace l4lb::config {
namespace {

std::string also(const std::string& key, int line) {
  return " (also " + key + ", line " + std::to_string(line) + ")";
}

}  // namespace

void ConfigChecks::snat_range_covers_workers(const DataplaneConfig& dp, const Field& blame) const {
  const uint32_t range_size = uint32_t{dp.snat_port_max} - dp.snat_port_min + 1;
  if (range_size < dp.workers) {
    reader_.fail(blame, "snat_port_range has " + std::to_string(range_size) + " ports, fewer than the " +
                            std::to_string(dp.workers) + " workers that each need a slice");
  }
}

void ConfigChecks::unique_port_name(const Field& name, const std::string& port_name,
                                    const std::vector<PortConfig>& earlier) const {
  for (size_t other = 0; other < earlier.size(); ++other) {
    if (earlier[other].name == port_name) {
      reader_.fail(name, "duplicate port name '" + port_name + "'" +
                             also("ports[" + std::to_string(other) + "]", earlier[other].line));
    }
  }
}

void ConfigChecks::add_own_address(const Field& field, uint32_t address) {
  if (auto owner = own_addresses_.find(address); owner != own_addresses_.end()) {
    reader_.fail(field, format_ipv4(address) + " is already an own address (" + owner->second + ")");
  }
  own_addresses_.emplace(address, field.key);
}

void ConfigChecks::gateway_on_link(const Field& field, uint32_t gateway, const PortConfig& port) const {
  const bool on_link = std::any_of(port.addresses.begin(), port.addresses.end(), [&](const Ipv4Cidr& c) {
    const uint32_t mask = prefix_mask(c.prefix_len);
    return (gateway & mask) == (c.address & mask);
  });
  if (!on_link)
    reader_.fail(field, format_ipv4(gateway) + " is not inside any of this port's address subnets");
  if (own_addresses_.count(gateway) != 0) {
    reader_.fail(field, format_ipv4(gateway) + " is one of the appliance's own addresses");
  }
}

void ConfigChecks::add_kernel_iface(const std::string& key, int line, const std::string& iface,
                                    const std::string& port_key) {
  if (auto owner = iface_owner_.find(iface); owner != iface_owner_.end()) {
    reader_.fail(key, line, "interface name '" + iface + "' is already used by " + owner->second);
  }
  iface_owner_.emplace(iface, port_key);
}

void ConfigChecks::not_own_address(const Field& field, uint32_t address) const {
  if (auto owner = own_addresses_.find(address); owner != own_addresses_.end()) {
    reader_.fail(field,
                 format_ipv4(address) + " is one of the appliance's own addresses (" + owner->second + ")");
  }
}

void ConfigChecks::unique_neighbor(const Field& address, uint32_t neighbor_address,
                                   const std::vector<NeighborConfig>& earlier) const {
  for (size_t other = 0; other < earlier.size(); ++other) {
    if (earlier[other].address == neighbor_address) {
      reader_.fail(address, "duplicate neighbor " + format_ipv4(neighbor_address) +
                                also("neighbors[" + std::to_string(other) + "]", earlier[other].line));
    }
  }
}

void ConfigChecks::vip_fits(const Field& item, size_t index) const {
  if (index >= kMaxVips) {
    reader_.fail(item, "the data plane holds at most " + std::to_string(kMaxVips) + " vips; this is vip " +
                           std::to_string(index + 1));
  }
}

void ConfigChecks::unique_vip(const Field& item, const Field& name, const VipConfig& vip,
                              const std::vector<VipConfig>& earlier) const {
  for (size_t other = 0; other < earlier.size(); ++other) {
    const VipConfig& prev = earlier[other];
    const std::string other_key = "vips[" + std::to_string(other) + "]";
    if (prev.name == vip.name)
      reader_.fail(name, "duplicate vip name '" + vip.name + "'" + also(other_key, prev.line));
    if (prev.address == vip.address && prev.port == vip.port && prev.protocol == vip.protocol) {
      reader_.fail(item, "duplicate vip " + format_ipv4(vip.address) + ":" + std::to_string(vip.port) + "/" +
                             (vip.protocol == Protocol::kTcp ? "tcp" : "udp") +
                             also(other_key + " '" + prev.name + "'", prev.line));
    }
  }
}

void ConfigChecks::snat_matches_mode(const Mapping& m, const VipConfig& vip) const {
  const std::optional<Field> snat = m.get("snat");
  if (vip.mode == NatMode::kDnat && snat) reader_.fail(*snat, "not allowed with mode dnat");
  if (vip.mode == NatMode::kFnat && !snat)
    reader_.fail(m.field().key + ".snat", m.field().line, "required for mode fnat");
}

void ConfigChecks::add_snat_address(const Field& field, uint32_t address, const VipConfig& vip) {
  if (std::find(vip.snat.begin(), vip.snat.end(), address) != vip.snat.end()) {
    reader_.fail(field, "duplicate snat address " + format_ipv4(address));
  }
  // Each distinct address takes a lifetime slot, shared by every VIP that
  // lists it (controlplane/snapshot_builder).
  if (snat_addresses_.count(address) != 0) return;
  if (snat_addresses_.size() == kMaxSnatAddresses) {
    reader_.fail(field, "the data plane holds at most " + std::to_string(kMaxSnatAddresses) +
                            " distinct snat addresses across all vips; " + format_ipv4(address) +
                            " would be number " + std::to_string(kMaxSnatAddresses + 1));
  }
  snat_addresses_.insert(address);
}

void ConfigChecks::snat_not_empty(const Field& snat, const VipConfig& vip) const {
  if (vip.snat.empty()) reader_.fail(snat, "at least one snat address is required for mode fnat");
}

void ConfigChecks::table_size_prime(const Field& field, uint32_t table_size) const {
  if (!is_prime(table_size)) reader_.fail(field, std::to_string(table_size) + " is not prime");
}

void ConfigChecks::tcp_only(const Field& field, const VipConfig& vip) const {
  if (vip.protocol != Protocol::kTcp) reader_.fail(field, "only applies to protocol tcp");
}

void ConfigChecks::dnat_only(const Field& field, const VipConfig& vip) const {
  if (vip.mode != NatMode::kDnat) reader_.fail(field, "only applies to mode dnat");
}

void ConfigChecks::stateless_reverse_unambiguous(const Field& backends, const VipConfig& vip,
                                                 const std::vector<VipConfig>& earlier) const {
  if (vip.mode != NatMode::kDnat) return;
  for (const VipConfig& other : earlier) {
    if (other.mode != NatMode::kDnat || other.protocol != vip.protocol) continue;
    if (vip.dnat_reverse != DnatReverse::kStateless && other.dnat_reverse != DnatReverse::kStateless) continue;
    for (const BackendConfig& b : vip.backends)
      for (const BackendConfig& o : other.backends)
        if (b.address == o.address && b.port == o.port)
          reader_.fail(backends, "backend " + format_ipv4(b.address) + ":" + std::to_string(b.port) +
                                     " also serves dnat vip '" + other.name + "' (line " +
                                     std::to_string(other.line) +
                                     "): with dnat_reverse: stateless a reply without a flow must name "
                                     "one vip by its backend");
  }
}

void ConfigChecks::http_only(const Field& field, const HealthConfig& health) const {
  if (health.type != HealthType::kHttp) reader_.fail(field, "only applies to type http");
}

void ConfigChecks::timeout_below_interval(const Field& blame, const HealthConfig& health) const {
  if (health.timeout_ms >= health.interval_ms) {
    reader_.fail(blame, "timeout_ms (" + std::to_string(health.timeout_ms) +
                            ") must be less than interval_ms (" + std::to_string(health.interval_ms) + ")");
  }
}

void ConfigChecks::backends_not_empty(const Field& backends, const std::vector<Field>& items) const {
  if (items.empty()) reader_.fail(backends, "at least one backend is required");
}

void ConfigChecks::add_backend(const Field& list, const Field& item, const BackendConfig& backend,
                               const VipConfig& vip) {
  for (size_t other = 0; other < vip.backends.size(); ++other) {
    const BackendConfig& prev = vip.backends[other];
    // Maglev keys backends by address:port (DESIGN §5), so two entries would be one.
    if (prev.address == backend.address && prev.port == backend.port) {
      reader_.fail(item, "duplicate backend " + format_ipv4(backend.address) + ":" +
                             std::to_string(backend.port) +
                             also(list.key + "[" + std::to_string(other) + "]", prev.line));
    }
  }
  // Each (vip, address:port) takes a lifetime id (controlplane/snapshot_builder):
  // an address:port listed under two vips counts twice.
  if (backend_count_ == kMaxBackends) {
    reader_.fail(item, "the data plane holds at most " + std::to_string(kMaxBackends) +
                           " backends in total across all vips (an address:port under two vips counts "
                           "twice); this is backend " +
                           std::to_string(backend_count_ + 1));
  }
  ++backend_count_;
}

void ConfigChecks::table_fits_backends(const Field& blame, const VipConfig& vip) const {
  if (vip.backends.size() > vip.table_size) {
    reader_.fail(blame, "table_size " + std::to_string(vip.table_size) + " is smaller than the " +
                            std::to_string(vip.backends.size()) + " backends");
  }
}

void ConfigChecks::add_snat_pools(const Field& backends, const VipConfig& vip, uint32_t pools_per_worker) {
  if (vip.mode != NatMode::kFnat) return;
  for (uint32_t snat : vip.snat)
    for (const BackendConfig& b : vip.backends) snat_pools_.insert({snat, b.address, b.port});
  if (snat_pools_.size() > pools_per_worker) {
    reader_.fail(backends,
                 "FNAT needs " + std::to_string(snat_pools_.size()) +
                     " SNAT port pools (one per SNAT address and backend address:port) up to this vip, "
                     "more than dataplane.snat_pools_per_worker (" +
                     std::to_string(pools_per_worker) + ")");
  }
}

}  // namespace l4lb::config
