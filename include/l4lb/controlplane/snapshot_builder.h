// Turns a validated Config plus the neighbour table into an immutable
// dataplane::Snapshot: wire-order addresses, Maglev tables, lookup tables,
// timeouts in TSC cycles. Management core only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>

#include "l4lb/config/config.h"
#include "l4lb/dataplane/snapshot.h"

namespace l4lb::controlplane {

// Host-order IPv4 -> next-hop MAC.
using NeighbourMap = std::map<uint32_t, dataplane::MacAddress>;

// Gives every SNAT address a slot that stays the same for the life of the
// process, so the workers' per-slot port pools (and the flows holding ports
// in them) survive reloads. Slots are never reused.
class SnatSlotRegistry {
 public:
  // Throws std::runtime_error past kMaxSnatAddresses distinct addresses.
  uint8_t slot_for(uint32_t host_order_address);
  size_t size() const { return slots_.size(); }

 private:
  std::map<uint32_t, uint8_t> slots_;
};

// Next hop for `address` on the first port: the address itself when it is
// inside one of the port's subnets, else the port's gateway (0 if none).
uint32_t next_hop_for(const config::Config& config, uint32_t address);

struct SnapshotInputs {
  const config::Config* config = nullptr;
  const NeighbourMap* neighbours = nullptr;
  dataplane::MacAddress port_mac{};
  uint64_t tsc_hz = 0;
  uint64_t generation = 0;
};

// Backends without a resolved next hop get no Maglev slots, so new flows
// only go where packets can be delivered. Throws std::runtime_error (e.g.
// SNAT registry full).
std::unique_ptr<dataplane::Snapshot> build_snapshot(const SnapshotInputs& in, SnatSlotRegistry& snat_slots);

}  // namespace l4lb::controlplane
