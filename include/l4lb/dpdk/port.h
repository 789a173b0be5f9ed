// An Ethernet port configured and started with a given number of queues,
// stopped and closed on destruction. Slow path only.
#pragma once

#include <rte_ether.h>

#include <cstdint>
#include <string>

struct rte_mempool;

namespace l4lb::dpdk {

struct PortQueues {
  uint16_t rx = 1;
  uint16_t tx = 1;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  // Spread flows over the rx queues with RSS (IP + TCP/UDP ports) where the
  // PMD offers it; ignored with one queue.
  bool rss = true;
};

class Port {
 public:
  // Resolves a device name ("net_tap0", "0000:3b:00.0") or a decimal port
  // index to a port id. Throws std::runtime_error if there is none.
  static uint16_t find(const std::string& name_or_index);

  // Configures, sets up queues from `pool`, enables promiscuous mode where
  // the PMD supports it, and starts. Throws std::runtime_error.
  Port(uint16_t port_id, const PortQueues& queues, rte_mempool* pool);
  ~Port();
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  uint16_t id() const { return id_; }
  const rte_ether_addr& mac() const { return mac_; }
  // The RSS hash types in force (0: the device or its driver picks queues).
  uint64_t rss_hash_types() const { return rss_hf_; }
  std::string driver() const { return driver_; }
  std::string name() const;

 private:
  uint16_t id_;
  rte_ether_addr mac_{};
  uint64_t rss_hf_ = 0;
  std::string driver_;
};

std::string format_mac(const rte_ether_addr& mac);

}  // namespace l4lb::dpdk
