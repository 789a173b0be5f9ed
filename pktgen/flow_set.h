// The generator's flows: flow index i <-> one client 5-tuple, computed, not
// stored, so 10 M flows cost no memory. Client address and port come from the
// index (2^15 source ports per client address), the service (VIP:port) is
// services[i % count]. Pure: no DPDK.
//
//   client ip   = first client address + (i >> 15)
//   client port = 1024 + (i & 0x7fff)
//
// Indices [0, flows) are the established set; "new" mode draws fresh tuples
// from indices >= flows, so they never collide with an established flow.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

namespace l4lb::pktgen {

struct Service {
  uint32_t ip = 0;    // wire order
  uint16_t port = 0;  // wire order
};

// Wire-order endpoints of one packet.
struct Tuple {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

class FlowSet {
 public:
  static constexpr uint32_t kPortBits = 15;
  static constexpr uint32_t kFirstPort = 1024;
  static constexpr uint64_t kNone = ~0ull;

  // Slow path. `client_net`/`prefix_len` (host order) is the client address
  // block; its first and last addresses are not used. Throws
  // std::invalid_argument if the block cannot hold `flows` flows or there is
  // no service.
  FlowSet(uint32_t client_net, uint32_t prefix_len, std::vector<Service> services, uint64_t flows);

  uint64_t flows() const { return flows_; }
  // How many distinct client tuples the block holds (established + new).
  uint64_t capacity() const { return capacity_; }
  const std::vector<Service>& services() const { return services_; }

  // Fast path: the client -> service tuple of flow i (i < capacity()).
  Tuple client_tuple(uint64_t i) const {
    Tuple t;
    t.src_ip = htonl(first_client_ + static_cast<uint32_t>(i >> kPortBits));
    t.src_port = htons(static_cast<uint16_t>(kFirstPort + (i & ((1u << kPortBits) - 1))));
    const Service& s = services_.size() == 1 ? services_[0] : services_[i % services_.size()];
    t.dst_ip = s.ip;
    t.dst_port = s.port;
    return t;
  }

  // Fast path: is this wire-order address one of our clients?
  bool is_client(uint32_t ip_wire) const { return ntohl(ip_wire) - first_client_ < client_count_; }

  // Fast path: the flow index of a client address and port, or kNone.
  uint64_t index_of(uint32_t ip_wire, uint16_t port_wire) const {
    const uint32_t host = ntohl(ip_wire) - first_client_;
    const uint32_t port = ntohs(port_wire) - kFirstPort;
    if (host >= client_count_ || port >= (1u << kPortBits)) return kNone;
    return (uint64_t{host} << kPortBits) | port;
  }

 private:
  std::vector<Service> services_;
  uint32_t first_client_ = 0;  // host order
  uint32_t client_count_ = 0;
  uint64_t capacity_ = 0;
  uint64_t flows_ = 0;
};

// Slow path: `length` flow indices drawn from a Zipf distribution with
// exponent `s` over [0, flows) (rank r is flow r: low indices are hot), by
// inverting the exact CDF. Deterministic for a given seed. `length` must be a
// power of two so the fast path can cycle through it with a mask.
std::vector<uint32_t> make_zipf_sequence(uint64_t flows, double s, size_t length, uint64_t seed);

// Slow path helpers for options: "10.99.0.100:8080", "10.100.0.0/16".
Service parse_service(const std::string& text);
void parse_cidr(const std::string& text, uint32_t& net_host, uint32_t& prefix_len);

}  // namespace l4lb::pktgen
