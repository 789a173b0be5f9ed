// How much DPDK memory there is, and what pools and rings take of it: for
// refusing at start a config whose tables cannot fit (issue 13), before
// anything large is allocated. Slow path, after rte_eal_init; main lcore.
#pragma once

#include <cstdint>
#include <string>

namespace l4lb::dpdk {

struct SocketMemory {
  uint64_t heap_free = 0;       // free bytes in DPDK's heap on the socket now
  uint64_t hugepages_free = 0;  // bytes of free hugepages the heap may still map
  std::string detail;           // e.g. "heap 40.2 MiB free + 512 free 2.0 MiB hugepages"
  uint64_t total() const { return heap_free + hugepages_free; }
};

// What DPDK can still allocate on `socket_id`: its heap's free bytes plus,
// when memory grows on demand (hugepages without --legacy-mem), the free
// hugepages of the sizes it maps on that socket (sysfs; pages reserved by
// other processes excluded where the kernel says so). With --no-huge or
// --legacy-mem the heap is all there is. --socket-limit is not taken into
// account. Other processes may take free hugepages meanwhile: this is an
// estimate for a clear early error, not a reservation.
SocketMemory socket_memory(int socket_id);

// Bytes a pktmbuf pool of `count` mbufs with the default data room takes
// on `socket_id` (objects with their headers, laid out in pages as the
// mempool does; the pool's ring; its per-lcore caches), as
// make_pktmbuf_pool() creates it.
uint64_t pktmbuf_pool_bytes(unsigned count, int socket_id);

// Bytes an rte_ring of `size` (a power of two) slots takes.
uint64_t ring_bytes(unsigned size);

// "1.5 GiB", "100.0 MiB", "512 B": for messages.
std::string format_bytes(uint64_t bytes);

}  // namespace l4lb::dpdk
