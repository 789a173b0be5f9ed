// How every EAL test binary starts DPDK: plain memory (no hugepages), no PCI,
// no shared config, quiet logs. An EAL that cannot start fails the binary;
// it never skips.
#pragma once

#include <rte_eal.h>
#include <rte_mbuf.h>

#include <cstdio>
#include <iterator>

namespace l4lb::test {

// Starts the EAL with `memory_mb` MiB on `lcores` (an -l list). False, with
// a FAIL line on stderr, when it cannot.
inline bool start_test_eal(const char* program, const char* memory_mb, const char* lcores) {
  const char* args[] = {program,       "--no-huge",   "--no-pci",        "-m", memory_mb,
                        "--no-shconf", "--log-level", "lib.eal:warning", "-l", lcores};
  if (rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) < 0) {
    std::fprintf(stderr, "FAIL: cannot start the EAL\n");
    return false;
  }
  return true;
}

// The test's own mbuf pool with no per-lcore cache, so the in-use count a
// test checks for leaks is exact. Null, with a FAIL line, when it cannot.
inline rte_mempool* make_test_pool(const char* name, unsigned count) {
  rte_mempool* pool = rte_pktmbuf_pool_create(name, count, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (!pool) std::fprintf(stderr, "FAIL: cannot create mbuf pool\n");
  return pool;
}

}  // namespace l4lb::test
