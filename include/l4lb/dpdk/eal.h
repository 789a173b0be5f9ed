// RAII around the DPDK Environment Abstraction Layer. Slow path only.
#pragma once

#include <string>
#include <vector>

namespace l4lb::dpdk {

class Eal {
 public:
  // Initialises the EAL with `args` (args[0] is the program name). Throws
  // std::runtime_error with rte_strerror() text on failure.
  explicit Eal(const std::vector<std::string>& args);
  ~Eal();  // rte_eal_cleanup()
  Eal(const Eal&) = delete;
  Eal& operator=(const Eal&) = delete;
};

}  // namespace l4lb::dpdk
