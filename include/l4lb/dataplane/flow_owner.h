// Which worker owns a flow (DESIGN §4). Both directions of a flow must be
// handled by the worker holding its state, and the owner must be computable
// from either direction's packet alone:
//  - FNAT forward: the worker that saw the first packet (the NIC's RSS or
//    the virtual device's queue choice keeps a flow on one queue);
//  - FNAT reverse: the SNAT port, because each worker allocates source ports
//    only from its own contiguous slice of the configured range;
//  - DNAT, both directions: a hash of the client's address and port, which
//    both directions carry (as source, then as destination).
// Pure and header-only.
#pragma once

#include <cstdint>

#include "l4lb/common/limits.h"
#include "l4lb/dataplane/flow_key.h"

namespace l4lb::dataplane {

using l4lb::kMaxWorkers;  // defined with the other id limits (common/limits.h)

class SnatPartition {
 public:
  // Splits [port_min, port_max] (host order) into `workers` contiguous
  // slices; the last also takes the remainder. Requires at least one port
  // per worker (the config loader enforces it).
  SnatPartition(uint16_t port_min, uint16_t port_max, uint32_t workers)
      : min_(port_min), max_(port_max), workers_(workers ? workers : 1),
        share_((uint32_t{port_max} - port_min + 1) / workers_) {
    if (share_ == 0) share_ = 1;
  }

  uint16_t first_port(uint32_t worker) const { return static_cast<uint16_t>(min_ + worker * share_); }
  uint16_t last_port(uint32_t worker) const {
    return worker + 1 == workers_ ? max_ : static_cast<uint16_t>(first_port(worker) + share_ - 1);
  }
  // Owner of a port inside [min, max].
  uint32_t owner(uint16_t port_host_order) const {
    const uint32_t w = (uint32_t{port_host_order} - min_) / share_;
    return w < workers_ ? w : workers_ - 1;
  }
  bool contains(uint16_t port_host_order) const { return port_host_order >= min_ && port_host_order <= max_; }
  uint32_t workers() const { return workers_; }

 private:
  uint16_t min_;
  uint16_t max_;
  uint32_t workers_;
  uint32_t share_;
};

// Owner of a DNAT flow from the client's side of the tuple (wire order).
inline uint32_t dnat_owner(uint32_t client_ip, uint16_t client_port, uint32_t workers) {
  if (workers <= 1) return 0;
  return static_cast<uint32_t>(fmix64((uint64_t{client_ip} << 16) | client_port) % workers);
}

}  // namespace l4lb::dataplane
