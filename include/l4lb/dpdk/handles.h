// Owning handles for DPDK objects, freed with their rte_*_free. Slow path only.
#pragma once

#include <rte_mempool.h>
#include <rte_ring.h>

#include <memory>
#include <string>

namespace l4lb::dpdk {

struct MempoolDeleter {
  void operator()(rte_mempool* p) const { rte_mempool_free(p); }
};
struct RingDeleter {
  void operator()(rte_ring* r) const { rte_ring_free(r); }
};
using MempoolPtr = std::unique_ptr<rte_mempool, MempoolDeleter>;
using RingPtr = std::unique_ptr<rte_ring, RingDeleter>;

// Packet mbuf pool; throws std::runtime_error on failure.
MempoolPtr make_pktmbuf_pool(const std::string& name, unsigned count, int socket_id);

// Single-producer/single-consumer ring of `size` (power of two) pointers;
// throws std::runtime_error on failure.
RingPtr make_spsc_ring(const std::string& name, unsigned size, int socket_id);

}  // namespace l4lb::dpdk
