// The exception path (DESIGN §6): a kernel TAP interface per data port that
// mirrors the port's MAC and carries the appliance's own addresses and the
// VIPs, so the kernel answers ARP and ping and resolves neighbours. Packets
// the workers do not handle (ARP, ICMP to us, traffic to our addresses) are
// written to it; what the kernel sends out of it is transmitted on the data
// port. Management core only.
#pragma once

#include <rte_ether.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/dpdk/port.h"

struct rte_mempool;
struct rte_ring;

namespace l4lb::controlplane {

class ExceptionPath {
 public:
  // Creates the TAP device `iface` with `mac`, brings it up and adds
  // `addresses` (the port's own, with their prefixes) and `vips` (/32).
  // With a `gateway` (the port's), adds a last-resort default route through
  // it on `iface` (kernel_interface.h: add_default_route), so health probes
  // reach backends outside the port's subnets. Throws std::runtime_error.
  ExceptionPath(const std::string& iface, const rte_ether_addr& mac, rte_mempool* pool,
                const std::vector<config::Ipv4Cidr>& addresses, const std::vector<uint32_t>& vips,
                std::optional<uint32_t> gateway = std::nullopt);
  ~ExceptionPath();
  ExceptionPath(const ExceptionPath&) = delete;
  ExceptionPath& operator=(const ExceptionPath&) = delete;

  // Moves up to a few bursts from each worker's control ring and then one
  // burst from each slow-path ring into the kernel, and one burst from the
  // kernel into `inject_ring` (a worker transmits it). Never blocks. Returns
  // the number of packets moved.
  unsigned relay(std::span<rte_ring* const> control_rings, std::span<rte_ring* const> slow_path_rings,
                 rte_ring* inject_ring);

  const std::string& iface() const { return iface_; }
  uint64_t to_kernel() const { return to_kernel_; }
  uint64_t from_kernel() const { return from_kernel_; }
  uint64_t dropped() const { return dropped_; }

 private:
  std::string iface_;
  std::string vdev_name_;
  std::unique_ptr<dpdk::Port> port_;
  uint64_t to_kernel_ = 0;
  uint64_t from_kernel_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace l4lb::controlplane
