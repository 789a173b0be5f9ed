// Next-hop MACs for backends and the gateway: static entries from config,
// else what the kernel learned on the exception interface. Management core
// only. A MAC once learned is kept until the kernel reports a different one,
// so a neighbour entry aging out of the kernel does not stop traffic; learned
// entries are re-validated periodically so a changed MAC is noticed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/controlplane/snapshot_builder.h"

namespace l4lb::controlplane {

class Neighbours {
 public:
  explicit Neighbours(std::string iface) : iface_(std::move(iface)) {}

  // Replaces the static entries (config `neighbors`). Returns true if the
  // resulting map changed.
  bool set_static(const std::vector<config::NeighborConfig>& entries);

  // Re-reads the kernel's table and asks the kernel to resolve each wanted
  // address still missing (at most once per `retry_ms`), and to re-validate
  // each learned one every `revalidate_ms`. Returns true if the map changed
  // (the caller rebuilds the snapshot, and flows follow the new MAC).
  // Syscalls: call every ~100 ms, not per packet.
  bool refresh(const std::vector<uint32_t>& wanted, uint64_t now_ms, uint64_t retry_ms = 1000,
               uint64_t revalidate_ms = 30000);

  const NeighbourMap& map() const { return merged_; }

 private:
  bool rebuild();

  std::string iface_;
  NeighbourMap static_;
  NeighbourMap learned_;
  NeighbourMap merged_;
  std::map<uint32_t, uint64_t> last_solicit_ms_;
};

}  // namespace l4lb::controlplane
