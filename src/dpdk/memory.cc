#include "l4lb/dpdk/memory.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

namespace l4lb::dpdk {

namespace {

// The number in a sysfs file, or -1 when it cannot be read.
long long read_count(const std::string& path) {
  std::ifstream f(path);
  long long n = -1;
  if (!(f >> n)) return -1;
  return n;
}

// Free pages of `page_bytes` on NUMA node `socket_id`: the node's count
// where the kernel keeps one, else the machine's minus those reserved (by
// mappings not yet faulted in).
uint64_t free_hugepages(int socket_id, uint64_t page_bytes) {
  const std::string size = "hugepages-" + std::to_string(page_bytes / 1024) + "kB";
  const long long node = read_count("/sys/devices/system/node/node" + std::to_string(socket_id) +
                                    "/hugepages/" + size + "/free_hugepages");
  if (node >= 0) return static_cast<uint64_t>(node);
  const long long free = read_count("/sys/kernel/mm/hugepages/" + size + "/free_hugepages");
  const long long reserved = read_count("/sys/kernel/mm/hugepages/" + size + "/resv_hugepages");
  if (free < 0) return 0;
  return static_cast<uint64_t>(free > reserved && reserved > 0 ? free - reserved : free);
}

void no_event(rte_mem_event, const void*, size_t, void*) {}

// Whether the heap grows by mapping pages on demand (DPDK's dynamic memory
// mode); in legacy mode registering a memory event callback is refused
// with ENOTSUP.
bool memory_grows() {
  if (!rte_eal_has_hugepages()) return false;
  if (rte_mem_event_callback_register("l4lb_memory_probe", no_event, nullptr) != 0) return false;
  rte_mem_event_callback_unregister("l4lb_memory_probe", nullptr);
  return true;
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  else if (bytes >= (uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

SocketMemory socket_memory(int socket_id) {
  SocketMemory m;
  rte_malloc_socket_stats stats{};
  if (rte_malloc_get_socket_stats(socket_id, &stats) == 0) m.heap_free = stats.heap_freesz_bytes;
  m.detail = "heap " + format_bytes(m.heap_free) + " free";
  if (!memory_grows()) {
    m.detail += rte_eal_has_hugepages() ? ", legacy memory: nothing more is mapped"
                                        : ", no hugepages: -m is all there is";
    return m;
  }
  struct Walk {
    int socket;
    std::set<uint64_t> sizes;
  } walk{socket_id, {}};
  rte_memseg_list_walk(
      [](const rte_memseg_list* msl, void* arg) {
        auto* w = static_cast<Walk*>(arg);
        if (!msl->external && msl->socket_id == w->socket) w->sizes.insert(msl->page_sz);
        return 0;
      },
      &walk);
  for (uint64_t page : walk.sizes) {
    const uint64_t pages = free_hugepages(socket_id, page);
    m.hugepages_free += pages * page;
    m.detail += " + " + std::to_string(pages) + " free " + format_bytes(page) + " hugepages";
  }
  return m;
}

uint64_t pktmbuf_pool_bytes(unsigned count, int socket_id) {
  // rte_pktmbuf_pool_create(): elements of the mbuf header plus the data
  // room, no private area; the mempool adds a header and trailer to each.
  const uint32_t element = sizeof(rte_mbuf) + RTE_MBUF_DEFAULT_BUF_SIZE;
  rte_mempool_objsz sizes{};
  const uint64_t object = rte_mempool_calc_obj_size(element, 0, &sizes);
  // Objects of a pool that needs IOVA-contiguous objects (mbufs do) never
  // cross a page (rte_mempool_get_page_size(), the default calc_mem_size
  // op): the smallest page DPDK maps on the socket, or the system page
  // without hugepages, where each 2.4 KiB mbuf then takes a 4 KiB page.
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (rte_eal_has_hugepages()) {
    struct Walk {
      int socket;
      uint64_t smallest;
    } walk{socket_id, 0};
    rte_memseg_list_walk(
        [](const rte_memseg_list* msl, void* arg) {
          auto* w = static_cast<Walk*>(arg);
          if (!msl->external && msl->socket_id == w->socket &&
              (w->smallest == 0 || msl->page_sz < w->smallest))
            w->smallest = msl->page_sz;
          return 0;
        },
        &walk);
    if (walk.smallest) page = walk.smallest;
  }
  const uint64_t per_page = page / object;
  const uint64_t objects = per_page == 0 ? uint64_t{count} * ((object + page - 1) / page * page)
                                         : (count + per_page - 1) / per_page * page;
  // Its ring, its header with a cache for every possible lcore, and the
  // heap's own element headers and alignment for these few allocations
  // (about 1.6 KiB measured).
  const uint64_t ring = ring_bytes(rte_align32pow2(count + 1));
  const uint64_t header = sizeof(rte_mempool) + uint64_t{RTE_MAX_LCORE} * sizeof(rte_mempool_cache);
  constexpr uint64_t kHeapOverhead = 16 * 1024;
  return objects + ring + header + kHeapOverhead;
}

uint64_t ring_bytes(unsigned size) {
  const ssize_t bytes = rte_ring_get_memsize(size);
  return bytes > 0 ? static_cast<uint64_t>(bytes) : 0;
}

}  // namespace l4lb::dpdk
