#include "l4lb/dpdk/handles.h"

#include <rte_errno.h>
#include <rte_mbuf.h>

#include <stdexcept>

namespace l4lb::dpdk {

MempoolPtr make_pktmbuf_pool(const std::string& name, unsigned count, int socket_id) {
  // Per-lcore cache keeps most alloc/free off the shared ring (DPDK's mempool guide).
  constexpr unsigned kCache = 256;
  rte_mempool* pool =
      rte_pktmbuf_pool_create(name.c_str(), count, kCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket_id);
  if (!pool)
    throw std::runtime_error("cannot create mbuf pool '" + name + "' of " + std::to_string(count) +
                             " mbufs: " + rte_strerror(rte_errno) + " (are hugepages reserved?)");
  return MempoolPtr(pool);
}

RingPtr make_spsc_ring(const std::string& name, unsigned size, int socket_id) {
  rte_ring* r = rte_ring_create(name.c_str(), size, socket_id, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!r) throw std::runtime_error("cannot create ring '" + name + "': " + rte_strerror(rte_errno));
  return RingPtr(r);
}

}  // namespace l4lb::dpdk
