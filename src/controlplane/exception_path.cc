#include "l4lb/controlplane/exception_path.h"

#include <rte_bus_vdev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <stdexcept>

#include "l4lb/controlplane/kernel_interface.h"
#include "l4lb/dataplane/worker.h"

namespace l4lb::controlplane {

namespace {
// The largest metric: the host's own default route, whatever its metric,
// is preferred for everything not bound to the exception interface.
constexpr uint32_t kGatewayRouteMetric = 0xffffffff;
}  // namespace

ExceptionPath::ExceptionPath(const std::string& iface, const rte_ether_addr& mac, rte_mempool* pool,
                             const std::vector<config::Ipv4Cidr>& addresses,
                             const std::vector<uint32_t>& vips, std::optional<uint32_t> gateway)
    : iface_(iface), vdev_name_("net_tap_x" + iface) {
  const std::string args = "iface=" + iface + ",mac=" + dpdk::format_mac(mac);
  if (rte_vdev_init(vdev_name_.c_str(), args.c_str()) != 0)
    throw std::runtime_error("cannot create exception interface " + iface + " (" + vdev_name_ + "," + args +
                             "); is /dev/net/tun available and the name free?");
  try {
    port_ = std::make_unique<dpdk::Port>(dpdk::Port::find(vdev_name_), dpdk::PortQueues{1, 1, 512, 512}, pool);
    set_link_up(iface);
    disable_ipv6(iface);
    for (const auto& a : addresses) add_ipv4_address(iface, a.address, a.prefix_len);
    for (uint32_t vip : vips) add_ipv4_address(iface, vip, 32);
    if (gateway) {
      add_default_route(iface, *gateway, kGatewayRouteMetric);
      set_loose_reverse_path(iface);
    }
  } catch (...) {
    port_.reset();
    rte_vdev_uninit(vdev_name_.c_str());
    throw;
  }
}

ExceptionPath::~ExceptionPath() {
  port_.reset();
  rte_vdev_uninit(vdev_name_.c_str());
}

unsigned ExceptionPath::relay(std::span<rte_ring* const> control_rings, std::span<rte_ring* const> slow_path_rings,
                              rte_ring* inject_ring) {
  constexpr unsigned kBurst = dataplane::kBurstSize;
  // Control (ARP, probe answers) drains several bursts a loop, the rest one:
  // a flood to the appliance fills its own ring and is dropped there.
  constexpr unsigned kControlBursts = 4;
  rte_mbuf* pkts[kBurst];
  unsigned moved = 0;
  const auto to_kernel = [&](rte_ring* ring) {
    const unsigned n = rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(pkts), kBurst, nullptr);
    if (!n) return 0u;
    const uint16_t sent = rte_eth_tx_burst(port_->id(), 0, pkts, static_cast<uint16_t>(n));
    if (sent < n) rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    to_kernel_ += sent;
    dropped_ += n - sent;
    moved += n;
    return n;
  };
  for (rte_ring* ring : control_rings)
    for (unsigned b = 0; b < kControlBursts && to_kernel(ring) == kBurst; ++b) {
    }
  for (rte_ring* ring : slow_path_rings) to_kernel(ring);
  const uint16_t n = rte_eth_rx_burst(port_->id(), 0, pkts, kBurst);
  if (n) {
    const unsigned queued = rte_ring_sp_enqueue_burst(inject_ring, reinterpret_cast<void**>(pkts), n, nullptr);
    if (queued < n) rte_pktmbuf_free_bulk(pkts + queued, n - queued);
    from_kernel_ += queued;
    dropped_ += n - queued;
    moved += n;
  }
  return moved;
}

}  // namespace l4lb::controlplane
