// The generator's one DPDK port and its mbuf pool. Slow path only: created
// before the poll lcore starts, destroyed after it stops (RAII).
#pragma once

#include <rte_ether.h>

#include <cstdint>
#include <string>

#include "l4lb/common/address_text.h"  // format_mac, for the callers

struct rte_mempool;

namespace l4lb::pktgen {

class GenPort {
 public:
  // `name_or_index`: a DPDK device name (net_memif0) or index; empty = the
  // first port. `queues` RX and as many TX queues (memif: the peer must
  // offer as many). Throws std::runtime_error.
  GenPort(const std::string& name_or_index, unsigned mbufs, uint16_t descriptors, uint16_t queues = 1);
  ~GenPort();
  GenPort(const GenPort&) = delete;
  GenPort& operator=(const GenPort&) = delete;

  // Polls the link state until it is up or `timeout_s` passes. Returns
  // whether it came up (memif: the peer connected).
  bool wait_link(double timeout_s) const;

  uint16_t id() const { return id_; }
  uint16_t queues() const { return queues_; }
  const std::string& name() const { return name_; }
  const rte_ether_addr& mac() const { return mac_; }
  rte_mempool* pool() const { return pool_; }

 private:
  uint16_t id_ = 0;
  uint16_t queues_ = 1;
  std::string name_;
  rte_ether_addr mac_{};
  rte_mempool* pool_ = nullptr;
  bool started_ = false;
};

}  // namespace l4lb::pktgen
