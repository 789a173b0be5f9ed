// The immutable configuration a worker reads: VIPs, backends with next-hop
// MACs, Maglev tables, SNAT addresses, timeouts. Built by the management core
// (controlplane/snapshot_builder), handed to workers over an SPSC ring, and
// freed only after every worker has acknowledged a newer generation
// (controlplane/snapshot_publisher). Workers never write to it.
#pragma once

#include <array>
#include <memory>
#include <cstdint>
#include <vector>

#include "l4lb/common/limits.h"
#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/lookup_table.h"
#include "l4lb/dataplane/nat_rewrite.h"

namespace l4lb::dataplane {

enum class NatMode : uint8_t { kFnat, kDnat };

inline constexpr uint16_t kNoBackendSlot = 0xFFFF;
// SNAT addresses get a stable slot for the life of the process, so a worker's
// port pools survive reloads (see controlplane/snapshot_builder). VIPs and
// backends also get ids that stay the same across snapshots, so per-worker
// counters and flows refer to them by id (never reused). The limits live in
// common/limits.h so the config loader (no DPDK) enforces the same numbers.
using l4lb::kMaxBackends;
using l4lb::kMaxSnatAddresses;
using l4lb::kMaxVips;

struct SnapshotBackend {
  uint32_t ip = 0;    // wire order
  uint16_t port = 0;  // wire order
  bool has_mac = false;
  MacAddress mac{};   // next hop towards the backend
  uint16_t id = 0;    // stable backend id
};

struct SnapshotVip {
  uint32_t ip = 0;    // wire order
  uint16_t port = 0;  // wire order
  uint8_t proto = 0;
  NatMode mode = NatMode::kFnat;
  bool drop_tcp_miss = false;
  bool reset_on_down = false;       // down_policy: reset
  uint32_t max_embryonic = 0;       // per worker; 0 = no limit
  bool fail_open = false;           // every backend is down: health is ignored
  uint16_t id = 0;                  // stable VIP id
  std::vector<uint8_t> snat_slots;  // into Snapshot::snat_addresses
  std::vector<SnapshotBackend> backends;
  // slot -> index into backends, or kNoBackendSlot. Shared by consecutive
  // snapshots while the VIP's backends and weights stay the same, so a
  // snapshot rebuild only recomputes the tables of VIPs that changed.
  std::shared_ptr<const std::vector<uint16_t>> maglev;
};

// The next hop towards a backend, by stable backend id. Flows look it up per
// packet instead of keeping a copy, so a neighbour's new MAC reaches them.
struct NextHop {
  MacAddress mac{};
  bool known = false;
};

// Snapshot::addresses values. Own addresses and VIPs never coincide (the
// loader refuses it), so one lookup answers both questions.
inline constexpr uint32_t kAddressOwn = 1;  // the appliance's own (ports[].address)
inline constexpr uint32_t kAddressVip = 2;  // a VIP's

struct Snapshot {
  uint64_t generation = 0;
  MacAddress port_mac{};
  std::vector<SnapshotVip> vips;
  // The other appliances' MACs (bgp.appliances, those resolved). A packet
  // one of them passed here (its drain, DESIGN §12) came from the routers:
  // its flow answers the client through the gateway (gateway_mac), not
  // back through that appliance.
  std::vector<MacAddress> appliance_macs;
  MacAddress gateway_mac{};
  bool has_gateway_mac = false;
  // While this appliance drains: appliance_macs. A packet that would open
  // a flow here goes to one of them instead, unless it came from one of
  // them. Empty: no redirect.
  std::vector<MacAddress> redirect_macs;
  // Classification (Worker::classify, DESIGN §3), all wire order:
  LookupTable vip_by_service;          // service_key(vip ip, port, proto) -> vips index
  LookupTable dnat_vip_by_backend;     // service_key(backend ip, port, proto) -> vips index; kept
                                       // for removed DNAT backends so their flows drain
  LookupTable stateless_reverse_vip;   // service_key(backend ip, port, proto) -> vips index, for
                                       // the DNAT VIPs with dnat_reverse: stateless (a reply with
                                       // no flow here is translated to that VIP)
  LookupTable addresses;               // address_key(own or VIP address) -> kAddress* bits
  LookupTable control_sources;         // address_key(backend or gateway) -> 1: what they send the
                                       // appliance (probe answers) is control traffic
  LookupTable snat_slot_by_address;    // address_key(snat ip) -> slot; every SNAT address used
                                       // since start, so replies of removed ones drain
  std::array<uint32_t, kMaxSnatAddresses> snat_addresses{};  // slot -> wire-order ip
  uint16_t snat_port_min = 0;          // host order, inclusive
  uint16_t snat_port_max = 0;
  bool reject_closed_ports = false;    // dataplane.closed_vip_ports: reject
  bool translate_icmp_errors = true;   // dataplane.icmp_errors: translate
  // Idle timeouts by state and the SNAT port hold, in flow_clock() ticks.
  std::array<uint32_t, static_cast<size_t>(FlowState::kCount)> timeout_ticks{};
  uint32_t snat_hold_ticks = 0;
  // How long a fragmented datagram is followed (fragment_table.h), in TSC
  // cycles: finer than flow_clock(), which would round 2 s to one tick.
  uint64_t fragment_timeout_tsc = 0;
  // By backend id: 1 while the backend is configured and not down by health.
  // Flows of VIPs with reset_on_down check it (draining backends stay alive).
  std::vector<uint8_t> backend_alive;
  // By backend id; removed backends keep their last known next hop.
  std::vector<NextHop> next_hop;
  // By vips index: the fingerprint of vips[i].maglev (maglev::table_fingerprint,
  // DESIGN §5), for the management core's reports (l4lbctl vips). Kept with
  // the generation so a report always names the table in force; workers never
  // read it.
  std::vector<uint64_t> maglev_fingerprints;

  // kAddress* bits of a wire-order address, 0 for any other.
  uint32_t address_kind(uint32_t ip) const {
    const uint32_t kind = addresses.find(address_key(ip));
    return kind == LookupTable::kNotFound ? 0 : kind;
  }
};

}  // namespace l4lb::dataplane
