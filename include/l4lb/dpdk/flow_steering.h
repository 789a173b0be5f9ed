// Hardware steering of FNAT reply traffic (DESIGN §4): rte_flow rules that
// send each worker's SNAT port slice to that worker's rx queue, so replies
// need no worker-to-worker hand-off. Slow path, at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "l4lb/dataplane/flow_owner.h"

namespace l4lb::dpdk {

struct SteeringResult {
  bool hardware = false;  // rules installed: replies arrive at their owner
  std::string detail;     // what is in force, for the log and l4lbctl
};

// For every SNAT address (wire order) x {TCP, UDP} x worker, validates and
// installs "dst ip == addr, dst port in slice -> queue worker". All or
// nothing: if the PMD refuses any rule, none stay and software hand-off is
// used. With one worker there is nothing to steer.
SteeringResult steer_snat_replies(uint16_t port_id, const std::vector<uint32_t>& snat_addresses,
                                  const dataplane::SnatPartition& partition);

}  // namespace l4lb::dpdk
