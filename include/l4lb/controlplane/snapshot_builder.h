// Turns a validated Config plus what the management core knows at run time
// (neighbour MACs, health, operator weight overrides) into an immutable
// dataplane::Snapshot: wire-order addresses, Maglev tables, lookup tables,
// stable ids, timeouts in TSC cycles. Management core only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/dataplane/snapshot.h"
#include "l4lb/maglev/maglev.h"

namespace l4lb::controlplane {

// Host-order IPv4 -> next-hop MAC.
using NeighbourMap = std::map<uint32_t, MacAddress>;

// Gives every SNAT address a slot that stays the same for the life of the
// process, so the workers' per-slot port pools (and the flows holding ports
// in them) survive reloads. Slots are never reused.
class SnatSlotRegistry {
 public:
  // Throws std::runtime_error past kMaxSnatAddresses distinct addresses.
  uint8_t slot_for(uint32_t host_order_address);
  // The slot of an address slot_for() has seen (0 otherwise).
  uint8_t slot_of(uint32_t host_order_address) const {
    auto it = slots_.find(host_order_address);
    return it == slots_.end() ? 0 : it->second;
  }
  size_t size() const { return slots_.size(); }
  const std::map<uint32_t, uint8_t>& slots() const { return slots_; }

 private:
  std::map<uint32_t, uint8_t> slots_;
};

// Stable ids for VIPs (by name) and backends (by VIP name and ADDR:PORT),
// never reused during the process's life, so per-worker counters and flows
// keep meaning the same thing across reloads.
class IdRegistry {
 public:
  // Throw std::runtime_error past kMaxVips / kMaxBackends.
  uint16_t vip_id(const std::string& vip);
  uint16_t backend_id(const std::string& backend_key);
  size_t backend_count() const { return backends_.size(); }

 private:
  std::map<std::string, uint16_t> vips_;
  std::map<std::string, uint16_t> backends_;
};

// Maglev tables by their inputs (table size, backends and effective
// weights): a rebuild reuses the table of every VIP whose inputs did not
// change. Entries not used by the latest build are dropped.
class MaglevCache {
 public:
  // A built table: what workers read (slot -> index into `backends` as given
  // to get(), or kNoBackendSlot), and its maglev::table_fingerprint, computed
  // once when the table is built (DESIGN §5: l4lbctl vips shows it).
  struct Table {
    std::shared_ptr<const std::vector<uint16_t>> slots;
    uint64_t fingerprint = maglev::kEmptyTableFingerprint;
  };
  // `backends` are (ADDR:PORT, effective weight) in the VIP's order; `key`
  // names these inputs. Throws std::invalid_argument (maglev::build_table).
  Table get(const std::string& key, uint32_t table_size,
            const std::vector<std::pair<std::string, uint32_t>>& backends);
  void keep_only_used();
  size_t built() const { return built_; }  // tables computed since start

 private:
  std::map<std::string, Table> tables_;
  std::map<std::string, bool> used_;
  size_t built_ = 0;
};

struct BuildState {
  SnatSlotRegistry snat;
  IdRegistry ids;
  MaglevCache maglev;
  // What flows of removed backends still need (they drain, DESIGN §6): the
  // last next hop known per backend id, and every DNAT backend's
  // service_key since start, so replies keep being recognised.
  std::map<uint16_t, MacAddress> last_next_hop;
  std::map<uint64_t, uint32_t> dnat_backends;
};

// "VIPNAME/ADDR:PORT": how health state and operator overrides name a backend.
std::string backend_key(const std::string& vip_name, uint32_t address, uint16_t port);

// Next hop for `address` on the first port: the address itself when it is
// inside one of the port's subnets, else the port's gateway (0 if none).
uint32_t next_hop_for(const config::Config& config, uint32_t address);

struct SnapshotInputs {
  const config::Config* config = nullptr;
  const NeighbourMap* neighbours = nullptr;
  MacAddress port_mac{};
  uint64_t tsc_hz = 0;
  uint64_t generation = 0;
  // backend_key -> false while health says down (missing: up).
  const std::map<std::string, bool>* health = nullptr;
  // backend_key -> weight set by the operator (drain = 0), overriding config.
  const std::map<std::string, uint32_t>* admin_weights = nullptr;
  // The appliance drains: new flows go to bgp.appliances (those resolved).
  bool draining = false;
};

// What the inputs say about one backend, and so how it is shown and weighted.
struct BackendView {
  std::string key;            // backend_key()
  bool resolved = false;      // its next hop has a MAC
  bool healthy = true;        // not down by health (unprobed backends are healthy)
  bool admin_override = false;
  uint32_t weight = 0;        // operator's override, else configured
  uint32_t effective = 0;     // Maglev weight: 0 unless healthy and resolved
  const char* state() const {
    return !healthy ? "down" : !resolved ? "unresolved" : weight == 0 ? "draining" : "up";
  }
};
BackendView describe_backend(const SnapshotInputs& in, const config::VipConfig& vip,
                             const config::BackendConfig& backend);

// A backend takes Maglev slots in proportion to its effective weight:
// 0 while it is down, unresolved (no next-hop MAC) or drained; else the
// operator's override or its configured weight. When health has every
// backend of a VIP down while some could take traffic, the VIP fails open
// (SnapshotVip::fail_open): health is ignored for it, because a probe path
// that broke (the management core stalled, the probe port filtered) is
// likelier than every backend dying at once, and dropping all traffic is
// the worst answer either way. Throws std::runtime_error (registries full).
std::unique_ptr<dataplane::Snapshot> build_snapshot(const SnapshotInputs& in, BuildState& state);

}  // namespace l4lb::controlplane
