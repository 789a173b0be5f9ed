// The config's semantic rules: those that relate one value to others (own
// addresses, duplicates, overlapping VIPs, SNAT ranges, the data plane's id
// limits). The loader calls each rule as it reads the entry concerned, so
// an error blames the first entry that breaks a rule, by key and line, and
// holds the running tallies the limits need. Management core only.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/config/yaml_reader.h"

namespace l4lb::config {

class ConfigChecks {
 public:
  explicit ConfigChecks(const YamlReader& reader) : reader_(reader) {}

  // Each worker owns a disjoint slice of the SNAT port range (DESIGN §4).
  void snat_range_covers_workers(const DataplaneConfig& dataplane, const Field& blame) const;

  void unique_port_name(const Field& name, const std::string& port_name,
                        const std::vector<PortConfig>& earlier) const;
  // Records one of the appliance's own addresses; each may be declared once.
  void add_own_address(const Field& field, uint32_t address);
  // The gateway is on one of the port's subnets and is not an own address.
  void gateway_on_link(const Field& field, uint32_t gateway, const PortConfig& port) const;
  // Records a port's kernel interface name; each may be used once.
  void add_kernel_iface(const std::string& key, int line, const std::string& iface,
                        const std::string& port_key);

  // Traffic to the appliance's own addresses goes to the kernel (DESIGN §3),
  // so no VIP, backend or static neighbour may claim one.
  void not_own_address(const Field& field, uint32_t address) const;

  void unique_neighbor(const Field& address, uint32_t neighbor_address,
                       const std::vector<NeighborConfig>& earlier) const;

  // Each VIP name takes a lifetime id (controlplane/snapshot_builder).
  void vip_fits(const Field& item, size_t index) const;
  void unique_vip(const Field& item, const Field& name, const VipConfig& vip,
                  const std::vector<VipConfig>& earlier) const;
  // Whether the vip's mode wants an snat list: FNAT needs one, DNAT keeps
  // the client's address so a list would be silently ignored.
  void snat_matches_mode(const Mapping& vip_mapping, const VipConfig& vip) const;
  // Records an snat address of `vip` (its earlier ones already in vip.snat).
  void add_snat_address(const Field& field, uint32_t address, const VipConfig& vip);
  void snat_not_empty(const Field& snat, const VipConfig& vip) const;
  // Maglev's permutation walk needs a prime table size (paper §3.4).
  void table_size_prime(const Field& field, uint32_t table_size) const;
  void tcp_only(const Field& field, const VipConfig& vip) const;
  void dnat_only(const Field& field, const VipConfig& vip) const;
  // A reply translated without a flow (dnat_reverse: stateless) is matched
  // to its VIP by the backend's address:port alone, so no other DNAT VIP of
  // the protocol may share one with it.
  void stateless_reverse_unambiguous(const Field& backends, const VipConfig& vip,
                                     const std::vector<VipConfig>& earlier) const;
  void http_only(const Field& field, const HealthConfig& health) const;
  // Overlapping probes to one backend would make rise/fall counting ambiguous.
  void timeout_below_interval(const Field& blame, const HealthConfig& health) const;
  void backends_not_empty(const Field& backends, const std::vector<Field>& items) const;
  // Records backend `backend` of `vip` (its earlier ones already in vip.backends).
  void add_backend(const Field& list, const Field& item, const BackendConfig& backend, const VipConfig& vip);
  void table_fits_backends(const Field& blame, const VipConfig& vip) const;
  // Each worker keeps an SNAT port pool per (SNAT address, backend
  // address:port) that FNAT flows use (dataplane/snat_pool.h), out of a
  // preallocated number: a config needing more is refused here rather than
  // refusing flows later.
  void add_snat_pools(const Field& backends, const VipConfig& vip, uint32_t pools_per_worker);

 private:
  const YamlReader& reader_;
  std::map<uint32_t, std::string> own_addresses_;   // address -> key of the port entry declaring it
  std::map<std::string, std::string> iface_owner_;  // kernel_iface -> key of the port using it
  // Against the data plane's id limits (common/limits.h).
  std::set<uint32_t> snat_addresses_;                              // distinct, across all vips
  uint32_t backend_count_ = 0;                                     // across all vips
  std::set<std::tuple<uint32_t, uint32_t, uint16_t>> snat_pools_;  // (snat, backend address, port)
};

}  // namespace l4lb::config
