// The few things the management core asks of the Linux kernel about the
// exception-path interface: bring it up, give it addresses, read its
// neighbour table, and make it resolve a neighbour. Management core only;
// all calls are syscalls and may block briefly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "l4lb/common/mac_address.h"

namespace l4lb::controlplane {

// Throws std::runtime_error with errno text on failure.
void set_link_up(const std::string& iface);
// Adds address/prefix (host order); an address already present is fine.
void add_ipv4_address(const std::string& iface, uint32_t address, uint8_t prefix_len);
// Removes address/prefix; an address not present is fine.
void remove_ipv4_address(const std::string& iface, uint32_t address, uint8_t prefix_len);
// Best effort: the appliance forwards IPv4 only, so keep IPv6 noise off the link.
void disable_ipv6(const std::string& iface);
// Adds "default via `gateway` dev `iface` metric `metric`" to the main table
// (host order; an identical route already there is fine). With the largest
// metric it is the host's last resort: the host's own default route, if any,
// still wins for unbound sockets, while sockets bound to `iface`
// (SO_BINDTODEVICE: the health probes) match only routes through `iface`
// and so reach addresses behind the gateway. It goes with the interface.
void add_default_route(const std::string& iface, uint32_t gateway, uint32_t metric);
// Best effort: reverse-path filtering in loose mode on `iface`, so replies
// from addresses behind its gateway are accepted even when the host's own
// default route leaves through another interface (strict mode would drop them).
void set_loose_reverse_path(const std::string& iface);

struct KernelNeighbour {
  uint32_t address;  // host order
  MacAddress mac;
};
// Complete entries of /proc/net/arp on `iface` (the caller's network namespace).
std::vector<KernelNeighbour> read_arp_table(const std::string& iface);

// The kernel's ephemeral source-port range (net.ipv4.ip_local_port_range in
// the caller's namespace); {0, 0} if unreadable.
struct PortRange {
  uint16_t first;
  uint16_t last;
};
PortRange kernel_ephemeral_ports();

// Makes the kernel ARP for `address` by sending one empty UDP datagram to
// the discard port (9) out of `iface`. Returns false if the send failed.
bool solicit_neighbour(const std::string& iface, uint32_t address);

}  // namespace l4lb::controlplane
